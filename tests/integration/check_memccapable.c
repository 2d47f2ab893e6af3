/*
 * check_memccapable.c: libmemcached's protocol conformance tool,
 * `memccapable -a` (every ASCII test), run against tiercached.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "testutil.h"

START_TEST(test_memccapable_ascii)
{
    struct tserver s;
    ck_assert_int_eq(ts_start_tiercached(&s, (const char *const[]){"-t", "2", NULL}), 0);

    char cmd[256];
    snprintf(cmd, sizeof(cmd), "memccapable -a -h 127.0.0.1 -p %d -t 10 2>&1", s.port);
    FILE *p = popen(cmd, "r");
    ck_assert_ptr_nonnull(p);
    char out[16384];
    size_t n = fread(out, 1, sizeof(out) - 1, p);
    out[n] = '\0';
    int st = pclose(p);
    ck_assert_int_eq(ts_stop(&s), 0); /* a clean stop: exit 0 */

    ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0, "memccapable failed:\n%s", out);
    ck_assert_msg(strstr(out, "All tests passed") != NULL, "memccapable output:\n%s", out);
    ck_assert_msg(strstr(out, "[fail]") == NULL, "memccapable output:\n%s", out);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("memccapable");
    TCase *tc = tcase_create("ascii");
    tcase_add_test(tc, test_memccapable_ascii);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
