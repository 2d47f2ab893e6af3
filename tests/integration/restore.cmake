# tiercache-restore (SPEC §6) on the real binaries: into tiercached and into a
# real memcached, from a damaged dump, and into a data dir (--data-dir).
tc_add_check(check_restore
    SOURCES ${CMAKE_CURRENT_LIST_DIR}/check_restore.c
    LIBS tc_flash_testlib tc_common
    TIMEOUT 300
    LABELS integration tools)
target_compile_definitions(check_restore PRIVATE RESTORE_BIN="$<TARGET_FILE:tiercache-restore>")
add_dependencies(check_restore tiercache-restore)
