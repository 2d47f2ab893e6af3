# The meta commands (mg ms md ma mn me) byte for byte against memcached:
# the differential harness (check_differential, defined by
# differential.cmake) on diff_cases/meta.txt. To validate the cases without
# tiercached, run the harness with DIFF_BOTH_MEMCACHED=1 (see meta.txt).
add_test(NAME check_differential_meta
    COMMAND check_differential ${CMAKE_CURRENT_LIST_DIR}/diff_cases/meta.txt)
set_tests_properties(check_differential_meta PROPERTIES TIMEOUT 120
    ENVIRONMENT "CK_DEFAULT_TIMEOUT=120" LABELS integration)
