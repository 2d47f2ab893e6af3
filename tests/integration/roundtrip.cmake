# tiercache-dump then tiercache-restore end to end (SPEC §6, issue 6): from
# memcached into tiercached, tiercached into tiercached online (native, and
# text written to the socket) and offline (--data-dir both ways), tiercached
# into memcached; each destination compared with its source item by item
# (value bytes, flags, expiry within 2 s). TC_ROUNDTRIP_ITEMS (default 3000)
# scales it.
tc_add_check(check_roundtrip
    SOURCES ${CMAKE_CURRENT_LIST_DIR}/check_roundtrip.c
    LIBS tc_flash_testlib tc_dumptool Threads::Threads
    TIMEOUT 900
    LABELS integration flash tools)
target_compile_definitions(check_roundtrip PRIVATE
    DUMP_BIN="$<TARGET_FILE:tiercache-dump>"
    RESTORE_BIN="$<TARGET_FILE:tiercache-restore>")
add_dependencies(check_roundtrip tiercache-dump tiercache-restore)
