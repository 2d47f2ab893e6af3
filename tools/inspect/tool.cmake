# --- tiercache-inspect: offline look at a stopped server's data dir (tools/inspect) --
# Reads the data dir through include/tiercache/datadir.h (tc_storage), under
# the dir's lock taken shared: it refuses a dir a tiercached holds.
add_executable(tiercache-inspect ${CMAKE_CURRENT_LIST_DIR}/inspect.c)
target_link_libraries(tiercache-inspect PRIVATE tc_storage)
