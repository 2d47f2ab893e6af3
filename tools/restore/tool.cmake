# --- tiercache-restore: loads a native dump into a server or a data dir ------
# tc_storage for --data-dir (the engine, in process); tc_common for the dump
# format and the option table.
add_executable(tiercache-restore ${CMAKE_CURRENT_LIST_DIR}/restore.c)
target_link_libraries(tiercache-restore PRIVATE tc_storage tc_common Threads::Threads)
