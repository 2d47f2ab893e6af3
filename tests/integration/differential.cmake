# The differential test: the scripted byte sequences of diff_cases/*.txt sent
# to a real memcached and to tiercached, the replies compared byte for byte.
tc_add_check(check_differential
    SOURCES ${CMAKE_CURRENT_LIST_DIR}/check_differential.c
    LIBS tc_testutil
    TIMEOUT 120
    LABELS integration)
target_compile_definitions(check_differential PRIVATE
    DIFF_CASES_FILE="${CMAKE_CURRENT_LIST_DIR}/diff_cases/classic.txt")
