# tiercached's option table (src/server/settings.c): the connection limits
# of issue 8, their spellings (-o idle_timeout, memcached's), bounds,
# messages and `stats settings` lines.
tc_add_check(check_settings SOURCES ${CMAKE_CURRENT_LIST_DIR}/check_settings.c LIBS tc_server
    TIMEOUT 30 LABELS unit)
