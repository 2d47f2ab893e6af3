# Warm restart (SPEC §5) on the real binary: a graceful stop keeps every
# item with its bytes, flags, expiry and CAS; flush_all, deletes and
# overwrites survive SIGTERM and a committed SIGKILL; items expire while the
# server is down; a held data dir is refused; damaged or foreign data is
# moved aside; -m, -I and --flash-size may change between runs.
# TC_RESTART_ITEMS (default 60000) sizes the round trip.
tc_add_check(check_restart
    SOURCES ${CMAKE_CURRENT_LIST_DIR}/check_restart.c
    LIBS tc_flash_testlib PkgConfig::LMDB
    TIMEOUT 300
    LABELS integration flash)
target_compile_definitions(check_restart PRIVATE TIERCACHED_BIN_PATH="$<TARGET_FILE:tiercached>")
