# Slab calcification (issue 8): -m 16 filled with small values, then large
# ones; pages move, the hit ratio recovers, and with flash no key is lost.
tc_add_check(check_memory_pressure
    SOURCES ${CMAKE_CURRENT_LIST_DIR}/check_memory_pressure.c
    LIBS tc_flash_testlib
    TIMEOUT 180
    LABELS integration flash)
