# "Larger than RAM": TC_FLASH_LARGE_MB (default 600) MB of verifiable items
# through a 64 MB RAM tier into flash, read back, overwritten and deleted.
tc_add_check(check_flash_larger
    SOURCES ${CMAKE_CURRENT_LIST_DIR}/check_flash_larger.c
    LIBS tc_flash_testlib
    TIMEOUT 600
    LABELS integration flash)
