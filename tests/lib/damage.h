/*
 * damage.h: test helpers that damage a data dir (Check assertions inside).
 */
#ifndef TC_TESTS_DAMAGE_H
#define TC_TESTS_DAMAGE_H

/*
 * Flip a byte 100 bytes into the first batch of the stopped data dir `dir`,
 * in every copy of it data.mdb holds (freed pages may keep stale ones), so
 * that the batch fails its checksum whichever copy is live.
 */
void td_flip_first_batch(const char *dir);

#endif
