# Concurrency: 8 client threads hammering overlapping keys with mixed,
# pipelined commands against tiercached -t 4, every reply checked (a roomy
# server, a small evicting one, and many connections opened and closed).
# TC_CONCURRENCY_SECONDS=N lengthens each case (default 5) for local runs.
# Sources: the cases and the run in check_concurrency.c, the rest in
# concurrency/ (see concurrency/concurrency.h).
tc_add_check(check_concurrency
    SOURCES ${CMAKE_CURRENT_LIST_DIR}/check_concurrency.c
            ${CMAKE_CURRENT_LIST_DIR}/concurrency/values.c
            ${CMAKE_CURRENT_LIST_DIR}/concurrency/client.c
            ${CMAKE_CURRENT_LIST_DIR}/concurrency/batch.c
            ${CMAKE_CURRENT_LIST_DIR}/concurrency/replies.c
            ${CMAKE_CURRENT_LIST_DIR}/concurrency/workload.c
    LIBS tc_testutil Threads::Threads
    TIMEOUT 120
    LABELS integration)
