/*
 * main.c: tiercached's entry point. Exit codes (SPEC §1): 0 after a clean
 * stop or --help/--version, 2 on bad usage, 1 on a runtime failure.
 */
#include <stdio.h>

#include "log.h"
#include "server.h"
#include "settings.h"

int main(int argc, char **argv)
{
    tc_log_init("tiercached");
    struct server_settings set;
    int r = settings_parse(&set, argc, argv);
    if (r > 0)
        return 0;
    if (r < 0)
        return 2;
    tc_log_set_level(TC_LOG_WARN + (set.verbose > 2 ? 2 : set.verbose));

    struct server srv;
    int rc = server_init(&srv, &set);
    if (rc == 0)
        rc = server_run(&srv);
    server_deinit(&srv);
    return rc == 0 ? 0 : 1;
}
