# lru_crawler metadump: the listing of every live key, against memcached and
# with a flash tier; and the lru_crawler replies byte for byte against
# memcached (the differential harness, on diff_cases/lru_crawler.txt).
tc_add_check(check_metadump
    SOURCES ${CMAKE_CURRENT_LIST_DIR}/check_metadump.c
    LIBS tc_testutil
    TIMEOUT 300
    LABELS integration flash)
add_test(NAME check_differential_lru_crawler
    COMMAND check_differential ${CMAKE_CURRENT_LIST_DIR}/diff_cases/lru_crawler.txt)
set_tests_properties(check_differential_lru_crawler PROPERTIES TIMEOUT 120
    ENVIRONMENT "CK_DEFAULT_TIMEOUT=120" LABELS integration)
