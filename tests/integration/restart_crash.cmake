# Warm restart, crash loop: SIGKILL at random moments while a client sets,
# overwrites and deletes (--flash-sync=always, -m 4), restart, check every
# key against what was acknowledged and committed; no stale, corrupt or
# never-written value, no CAS reused; a final graceful stop keeps
# everything. TC_RESTART_CRASH_CYCLES (20), TC_RESTART_CRASH_KEYS (3000),
# TC_RESTART_CRASH_SEED (printed) tune it.
tc_add_check(check_restart_crash
    SOURCES ${CMAKE_CURRENT_LIST_DIR}/check_restart_crash.c
    LIBS tc_flash_testlib
    TIMEOUT 300
    LABELS integration flash)
