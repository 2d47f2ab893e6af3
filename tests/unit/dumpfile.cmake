# src/common/dumpfile.c: the native dump format (docs/DUMP_FORMAT.md), its
# round trip and every kind of damage it must report.
tc_add_check(check_dumpfile SOURCES ${CMAKE_CURRENT_LIST_DIR}/check_dumpfile.c
    LIBS tc_common TIMEOUT 120 LABELS unit)
