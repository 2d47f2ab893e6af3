# The engine's walk over every live key of both tiers (lru_crawler metadump).
tc_add_check(check_walk SOURCES ${CMAKE_CURRENT_LIST_DIR}/check_walk.c LIBS tc_storage TIMEOUT 120
    LABELS unit)
target_include_directories(check_walk PRIVATE ${PROJECT_SOURCE_DIR}/storage)
