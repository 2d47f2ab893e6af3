# storage/meta_ops.c: the engine's meta operations (mg ms md ma me) on both
# tiers, with the flash-tier fixture shared with check_tiered.
tc_add_check(check_meta_ops SOURCES ${CMAKE_CURRENT_LIST_DIR}/check_meta_ops.c
    ${CMAKE_CURRENT_LIST_DIR}/tiered_fixture.c LIBS tc_storage TIMEOUT 120 LABELS unit flash)
target_include_directories(check_meta_ops PRIVATE ${PROJECT_SOURCE_DIR}/storage)
