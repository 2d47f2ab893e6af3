# Slab pages move between classes as item sizes shift (storage/rebalance.c).
tc_add_check(check_rebalance SOURCES ${CMAKE_CURRENT_LIST_DIR}/check_rebalance.c LIBS tc_storage
    TIMEOUT 300 LABELS unit)
