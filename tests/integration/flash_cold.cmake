# Every command on a cold (flash-only) item answers byte for byte as on a hot
# one, and as memcached does, table-driven.
tc_add_check(check_flash_cold
    SOURCES ${CMAKE_CURRENT_LIST_DIR}/check_flash_cold.c
    LIBS tc_flash_testlib
    TIMEOUT 300
    LABELS integration flash)
