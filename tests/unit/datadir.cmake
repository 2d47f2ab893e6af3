# storage/datadir.c: a stopped engine's data dir read without a server
# (walk, info, check, the shared lock), on data dirs the engine makes.
tc_add_check(check_datadir SOURCES ${CMAKE_CURRENT_LIST_DIR}/check_datadir.c
    LIBS tc_storage tc_testdamage TIMEOUT 120 LABELS unit flash)
target_include_directories(check_datadir PRIVATE ${PROJECT_SOURCE_DIR}/storage)
