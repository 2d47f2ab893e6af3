# Eight clients setting, appending, incrementing, deleting and reading
# overlapping keys while RAM is under eviction pressure: no stale, lost or
# corrupt value (TC_FLASH_RACE_SECONDS, default 10); and every value size
# storable with a 4 MB RAM tier.
tc_add_check(check_flash_race
    SOURCES ${CMAKE_CURRENT_LIST_DIR}/check_flash_race.c
    LIBS tc_flash_testlib
    TIMEOUT 300
    LABELS integration flash)
