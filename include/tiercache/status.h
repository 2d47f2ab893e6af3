/*
 * status.h: the status codes every fallible tiercache function returns.
 *
 * 0 is success. Functions return a tc_status_e and give results through
 * out-parameters; the caller decides what a status means to its user (the
 * protocol layer maps them to memcached replies in one place, compose.c).
 */
#ifndef TIERCACHE_STATUS_H
#define TIERCACHE_STATUS_H

typedef enum tc_status {
    TC_OK = 0,      /* done */
    TC_NOT_FOUND,   /* no such key (or it expired / was flushed) */
    TC_NOT_STORED,  /* add on an existing key, replace/append/prepend on a missing one */
    TC_EXISTS,      /* cas: the item changed since the client read it */
    TC_TOO_LARGE,   /* the item can never fit (bigger than the item size limit) */
    TC_NO_MEMORY,   /* no memory now: nothing could be evicted to make room */
    TC_NON_NUMERIC, /* incr/decr on a value that is not a decimal number */
    TC_INVALID,     /* a bad argument from the caller */
    TC_NEED_MORE,   /* a parser needs more bytes before it can decide */
    TC_IO_ERROR,    /* a system call failed; errno was logged where it happened */
    TC_BUSY,        /* held by someone else (a locked data dir), or not possible yet: retry */
    TC_STATUS_COUNT
} tc_status_e;

/* A short, static, human-readable text for a status ("not found"). Never NULL. */
const char *tc_strerror(tc_status_e status);

#endif
