# src/proto/meta.c: the meta command parser (mg ms md ma mn me), on strings.
tc_add_check(check_meta_parse SOURCES ${CMAKE_CURRENT_LIST_DIR}/check_meta_parse.c
    LIBS tc_proto TIMEOUT 30 LABELS unit)
