# Several tiercached behind twemproxy (nutcracker, Debian package
# `nutcracker`) and with client-side ketama (tiercache-bench
# --distribution=ketama): both send every key to the same backend; a
# backend's graceful stop and warm restart as the proxy's clients see it
# (docs/DEPLOYMENT.md quotes its figures). Fails with a message if
# /usr/sbin/nutcracker (or $NUTCRACKER_BIN) is missing.
tc_add_check(check_proxy
    SOURCES ${CMAKE_CURRENT_LIST_DIR}/check_proxy.c
    LIBS tc_flash_testlib tc_bench
    TIMEOUT 240
    LABELS integration proxy)
target_compile_definitions(check_proxy PRIVATE
    TIERCACHE_BENCH_BIN="$<TARGET_FILE:tiercache-bench>")
add_dependencies(check_proxy tiercache-bench tiercached)
