# --- tiercache-dump: every live item of a server, or of a data dir (tools/dump) --
# dumpproto.c (pure parsers) and mcconn.c (the pipelined client) are a
# library of their own, so tests/integration/check_dump.c can test the
# parsers on strings. tc_storage is for --data-dir (datadir.h).
add_library(tc_dumptool STATIC
    ${CMAKE_CURRENT_LIST_DIR}/dumpproto.c
    ${CMAKE_CURRENT_LIST_DIR}/mcconn.c
    ${CMAKE_CURRENT_LIST_DIR}/dumpout.c)
target_include_directories(tc_dumptool PUBLIC ${CMAKE_CURRENT_LIST_DIR})
target_link_libraries(tc_dumptool PUBLIC tc_common)

add_executable(tiercache-dump ${CMAKE_CURRENT_LIST_DIR}/dump.c)
target_link_libraries(tiercache-dump PRIVATE tc_dumptool tc_storage)
