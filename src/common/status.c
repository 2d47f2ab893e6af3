/*
 * status.c: texts for tc_status_e (see include/tiercache/status.h).
 */
#include <tiercache/status.h>

static const char *const status_text[TC_STATUS_COUNT] = {
    [TC_OK] = "ok",
    [TC_NOT_FOUND] = "not found",
    [TC_NOT_STORED] = "not stored",
    [TC_EXISTS] = "exists",
    [TC_TOO_LARGE] = "too large",
    [TC_NO_MEMORY] = "out of memory",
    [TC_NON_NUMERIC] = "not a number",
    [TC_INVALID] = "invalid argument",
    [TC_NEED_MORE] = "need more input",
    [TC_IO_ERROR] = "i/o error",
    [TC_BUSY] = "busy",
};

const char *tc_strerror(tc_status_e status)
{
    if ((unsigned)status >= TC_STATUS_COUNT || status_text[status] == 0)
        return "unknown status";
    return status_text[status];
}
