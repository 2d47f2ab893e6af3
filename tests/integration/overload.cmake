# Hardening (issue 8): -c, --idle-timeout (-o idle_timeout), --max-conn-output,
# --max-multiget-keys and the line limits, each on its own, then all the
# hostile clients at once (a flood past -c, slowloris, garbage, multigets
# never read) while a well-behaved client's p99 and the server's RSS are
# measured. About 40 s (more under ASan).
tc_add_check(check_overload
    SOURCES ${CMAKE_CURRENT_LIST_DIR}/check_overload.c
    LIBS tc_flash_testlib Threads::Threads
    TIMEOUT 240
    LABELS integration)
