# Helpers shared by the flash integration tests (check_flash_*.c).
add_library(tc_flash_testlib STATIC ${CMAKE_CURRENT_LIST_DIR}/flash_testlib.c)
target_link_libraries(tc_flash_testlib PUBLIC tc_testutil Threads::Threads)
