/*
 * check_lru.c: unit tests for storage/lru.c: linking, unlinking and moving
 * items keep every segment's head, tail, links and count right.
 */
#include <check.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lru.h"

#define NITEMS 64

static struct item *items[NITEMS];

static void setup(void)
{
    for (int i = 0; i < NITEMS; i++) {
        char key[16];
        int n = snprintf(key, sizeof(key), "k%d", i);
        items[i] = calloc(1, ITEM_HEADER_SIZE + (size_t)n);
        item_init(items[i], 1, key, (size_t)n, 0, 0, 0, 0);
    }
}

static void teardown(void)
{
    for (int i = 0; i < NITEMS; i++)
        free(items[i]);
}

/*
 * Whether the segment holds exactly want[0..n) from head to tail: forward
 * and backward links agree, head and tail are the ends, the count is n, and
 * every item says it is in `seg`. Returns NULL or what is wrong. (Plain
 * comparisons: the random test runs this many thousand times.)
 */
static const char *seg_wrong(const struct lru *l, enum lru_seg seg, struct item *const *want,
                             size_t n)
{
    if (l->count[seg] != n)
        return "count";
    if (n == 0)
        return l->head[seg] == NULL && l->tail[seg] == NULL ? NULL : "empty ends";
    if (l->head[seg] != want[0])
        return "head";
    if (l->tail[seg] != want[n - 1])
        return "tail";
    if (want[0]->prev != NULL || want[n - 1]->next != NULL)
        return "ends not terminated";
    for (size_t i = 0; i < n; i++) {
        if (item_lru(want[i]) != seg)
            return "item's segment";
        if (i + 1 < n && (want[i]->next != want[i + 1] || want[i + 1]->prev != want[i]))
            return "links";
    }
    return NULL;
}

#define ck_seg(l, seg, want, n)                                                                    \
    do {                                                                                           \
        const char *wrong_ = seg_wrong(l, seg, want, n);                                           \
        ck_assert_msg(wrong_ == NULL, "segment %d: wrong %s", (int)(seg), wrong_);                 \
    } while (0)

START_TEST(test_empty)
{
    struct lru l = {0};
    ck_assert_uint_eq(lru_total(&l), 0);
    for (int s = 0; s < LRU_NSEGS; s++)
        ck_seg(&l, (enum lru_seg)s, NULL, 0);
}
END_TEST

START_TEST(test_link_puts_at_head)
{
    struct lru l = {0};
    lru_link(&l, items[0], LRU_HOT);
    struct item *w1[] = {items[0]};
    ck_seg(&l, LRU_HOT, w1, 1);
    lru_link(&l, items[1], LRU_HOT);
    lru_link(&l, items[2], LRU_HOT);
    struct item *w3[] = {items[2], items[1], items[0]};
    ck_seg(&l, LRU_HOT, w3, 3);
    ck_seg(&l, LRU_WARM, NULL, 0);
    ck_seg(&l, LRU_COLD, NULL, 0);
    ck_assert_uint_eq(lru_total(&l), 3);
}
END_TEST

START_TEST(test_segments_are_independent)
{
    struct lru l = {0};
    lru_link(&l, items[0], LRU_HOT);
    lru_link(&l, items[1], LRU_WARM);
    lru_link(&l, items[2], LRU_COLD);
    lru_link(&l, items[3], LRU_COLD);
    lru_link(&l, items[4], LRU_WARM);
    struct item *hot[] = {items[0]};
    struct item *warm[] = {items[4], items[1]};
    struct item *cold[] = {items[3], items[2]};
    ck_seg(&l, LRU_HOT, hot, 1);
    ck_seg(&l, LRU_WARM, warm, 2);
    ck_seg(&l, LRU_COLD, cold, 2);
    ck_assert_uint_eq(lru_total(&l), 5);
}
END_TEST

START_TEST(test_unlink_head_middle_tail)
{
    struct lru l = {0};
    for (int i = 0; i < 5; i++)
        lru_link(&l, items[i], LRU_WARM);
    /* head..tail: 4 3 2 1 0 */
    lru_unlink(&l, items[4]); /* head */
    struct item *a[] = {items[3], items[2], items[1], items[0]};
    ck_seg(&l, LRU_WARM, a, 4);
    ck_assert_ptr_null(items[4]->prev);
    ck_assert_ptr_null(items[4]->next);

    lru_unlink(&l, items[0]); /* tail */
    struct item *b[] = {items[3], items[2], items[1]};
    ck_seg(&l, LRU_WARM, b, 3);
    ck_assert_ptr_null(items[0]->prev);
    ck_assert_ptr_null(items[0]->next);

    lru_unlink(&l, items[2]); /* middle */
    struct item *c[] = {items[3], items[1]};
    ck_seg(&l, LRU_WARM, c, 2);
    ck_assert_ptr_null(items[2]->prev);
    ck_assert_ptr_null(items[2]->next);

    lru_unlink(&l, items[3]);
    lru_unlink(&l, items[1]); /* the only one */
    ck_seg(&l, LRU_WARM, NULL, 0);
    ck_assert_uint_eq(lru_total(&l), 0);

    /* The list is usable again. */
    lru_link(&l, items[2], LRU_WARM);
    struct item *d[] = {items[2]};
    ck_seg(&l, LRU_WARM, d, 1);
}
END_TEST

START_TEST(test_move_between_segments)
{
    struct lru l = {0};
    for (int i = 0; i < 4; i++)
        lru_link(&l, items[i], LRU_HOT);
    /* HOT: 3 2 1 0. Move the tail to COLD, a middle one to WARM. */
    lru_move(&l, items[0], LRU_COLD);
    lru_move(&l, items[2], LRU_WARM);
    struct item *hot[] = {items[3], items[1]};
    struct item *warm[] = {items[2]};
    struct item *cold[] = {items[0]};
    ck_seg(&l, LRU_HOT, hot, 2);
    ck_seg(&l, LRU_WARM, warm, 1);
    ck_seg(&l, LRU_COLD, cold, 1);
    ck_assert_uint_eq(lru_total(&l), 4);

    /* Moving lands at the head of the target. */
    lru_move(&l, items[3], LRU_COLD);
    struct item *cold2[] = {items[3], items[0]};
    struct item *hot2[] = {items[1]};
    ck_seg(&l, LRU_COLD, cold2, 2);
    ck_seg(&l, LRU_HOT, hot2, 1);
}
END_TEST

START_TEST(test_move_within_segment)
{
    struct lru l = {0};
    for (int i = 0; i < 3; i++)
        lru_link(&l, items[i], LRU_WARM);
    /* WARM: 2 1 0. Tail to head, head to head, middle to head. */
    lru_move(&l, items[0], LRU_WARM);
    struct item *a[] = {items[0], items[2], items[1]};
    ck_seg(&l, LRU_WARM, a, 3);
    lru_move(&l, items[0], LRU_WARM);
    ck_seg(&l, LRU_WARM, a, 3);
    lru_move(&l, items[2], LRU_WARM);
    struct item *b[] = {items[2], items[0], items[1]};
    ck_seg(&l, LRU_WARM, b, 3);
    /* A single item moved onto itself. */
    struct lru m = {0};
    lru_link(&m, items[5], LRU_COLD);
    lru_move(&m, items[5], LRU_COLD);
    struct item *c[] = {items[5]};
    ck_seg(&m, LRU_COLD, c, 1);
}
END_TEST

/*
 * Random operations against a model: each segment as an array, head first.
 */
struct model {
    struct item *seg[LRU_NSEGS][NITEMS];
    size_t n[LRU_NSEGS];
    int where[NITEMS]; /* -1 if not linked */
};

static void model_remove(struct model *m, int idx)
{
    int s = m->where[idx];
    for (size_t i = 0; i < m->n[s]; i++) {
        if (m->seg[s][i] == items[idx]) {
            memmove(&m->seg[s][i], &m->seg[s][i + 1], (m->n[s] - i - 1) * sizeof(struct item *));
            m->n[s]--;
            break;
        }
    }
    m->where[idx] = -1;
}

static void model_push(struct model *m, int idx, int s)
{
    memmove(&m->seg[s][1], &m->seg[s][0], m->n[s] * sizeof(struct item *));
    m->seg[s][0] = items[idx];
    m->n[s]++;
    m->where[idx] = s;
}

START_TEST(test_random_against_model)
{
    struct lru l = {0};
    struct model m;
    memset(&m, 0, sizeof(m));
    for (int i = 0; i < NITEMS; i++)
        m.where[i] = -1;
    uint64_t rng = 0x9e3779b97f4a7c15ULL;
    for (int step = 0; step < 20000; step++) {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        int idx = (int)(rng % NITEMS);
        int seg = (int)((rng >> 8) % LRU_NSEGS);
        if (m.where[idx] < 0) {
            lru_link(&l, items[idx], (enum lru_seg)seg);
            model_push(&m, idx, seg);
        } else if ((rng >> 16) % 2 == 0) {
            lru_unlink(&l, items[idx]);
            model_remove(&m, idx);
        } else {
            lru_move(&l, items[idx], (enum lru_seg)seg);
            model_remove(&m, idx);
            model_push(&m, idx, seg);
        }
        for (int s = 0; s < LRU_NSEGS; s++) {
            const char *wrong = seg_wrong(&l, (enum lru_seg)s, m.seg[s], m.n[s]);
            if (wrong != NULL)
                ck_abort_msg("step %d: segment %d: wrong %s", step, s, wrong);
        }
        if (lru_total(&l) != m.n[0] + m.n[1] + m.n[2])
            ck_abort_msg("step %d: total", step);
    }
}
END_TEST

static Suite *lru_suite(void)
{
    Suite *s = suite_create("lru");
    TCase *tc = tcase_create("lists");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_empty);
    tcase_add_test(tc, test_link_puts_at_head);
    tcase_add_test(tc, test_segments_are_independent);
    tcase_add_test(tc, test_unlink_head_middle_tail);
    tcase_add_test(tc, test_move_between_segments);
    tcase_add_test(tc, test_move_within_segment);
    tcase_add_test(tc, test_random_against_model);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(lru_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
