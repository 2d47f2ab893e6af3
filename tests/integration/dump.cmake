# tiercache-dump (SPEC §6) on the real binaries: from a real memcached (the
# migration path; native read back, text loaded into a fresh memcached),
# from tiercached with a flash tier far beyond RAM, values never torn under
# concurrent overwrites, --data-dir after a stop (and refused while the
# server runs), and the exit codes. TC_DUMP_ITEMS (default 4000) scales it.
tc_add_check(check_dump
    SOURCES ${CMAKE_CURRENT_LIST_DIR}/check_dump.c
    LIBS tc_flash_testlib tc_dumptool Threads::Threads
    TIMEOUT 600
    LABELS integration flash)
target_compile_definitions(check_dump PRIVATE DUMP_BIN="$<TARGET_FILE:tiercache-dump>")
add_dependencies(check_dump tiercache-dump)
