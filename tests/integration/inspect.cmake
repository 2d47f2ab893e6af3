# tiercache-inspect on the real tiercached's data dir: item count and a
# clean stop after SIGTERM, an unclean one after SIGKILL, refused while the
# server runs, --check exits 1 on a damaged batch.
tc_add_check(check_inspect
    SOURCES ${CMAKE_CURRENT_LIST_DIR}/check_inspect.c
    LIBS tc_flash_testlib tc_testdamage
    TIMEOUT 300
    LABELS integration flash)
target_compile_definitions(check_inspect PRIVATE
    TIERCACHE_INSPECT_BIN="$<TARGET_FILE:tiercache-inspect>")
add_dependencies(check_inspect tiercache-inspect)
