# Flash failure paths by fault injection (TIERCACHE_FLASH_FAULT) and a really
# full map: degrade to RAM, log once, count, recover, never a wrong answer.
tc_add_check(check_flash_faults
    SOURCES ${CMAKE_CURRENT_LIST_DIR}/check_flash_faults.c
    LIBS tc_flash_testlib
    TIMEOUT 400
    LABELS integration flash)
