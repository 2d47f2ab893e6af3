# memccapable -a (libmemcached-tools) against tiercached.
tc_add_check(check_memccapable
    SOURCES ${CMAKE_CURRENT_LIST_DIR}/check_memccapable.c
    LIBS tc_testutil
    TIMEOUT 120
    LABELS integration)
