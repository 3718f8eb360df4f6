/* error.c - sp_err helpers and the thread-local last-error slot. */
#include "runtime/error.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static _Thread_local char last_error[SP_ERR_MSG_LEN];

int sp_err_set(sp_err *err, int code, const char *fmt, ...)
{
    if (err) {
        err->code = code;
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err->msg, sizeof err->msg, fmt, ap);
        va_end(ap);
    }
    return code;
}

int sp_err_prefix(sp_err *err, const char *fmt, ...)
{
    if (!err)
        return SPRUN_ERR_INTERNAL;
    char prefix[512], old[SP_ERR_MSG_LEN];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(prefix, sizeof prefix, fmt, ap);
    va_end(ap);
    memcpy(old, err->msg, sizeof old);
    /* prefix + ": " + old, truncated to the buffer */
    size_t pl = strnlen(prefix, sizeof prefix), ol = strnlen(old, sizeof old);
    size_t cap = sizeof err->msg - 1, n = 0;
    memcpy(err->msg, prefix, pl < cap ? pl : cap);
    n = pl < cap ? pl : cap;
    if (n + 2 <= cap) {
        memcpy(err->msg + n, ": ", 2);
        n += 2;
    }
    size_t take = ol < cap - n ? ol : cap - n;
    memcpy(err->msg + n, old, take);
    err->msg[n + take] = '\0';
    return err->code;
}

void sp_err_append(sp_err *err, const char *fmt, ...)
{
    if (!err)
        return;
    size_t used = strnlen(err->msg, sizeof err->msg);
    if (used + 1 >= sizeof err->msg)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->msg + used, sizeof err->msg - used, fmt, ap);
    va_end(ap);
}

int sp_err_publish(const sp_err *err)
{
    if (!err || err->code == SPRUN_OK) {
        last_error[0] = '\0';
        return SPRUN_OK;
    }
    snprintf(last_error, sizeof last_error, "%s", err->msg);
    return err->code;
}

const char *sprun_last_error(void) { return last_error; }

void *sp_malloc(size_t size, sp_err *err, const char *what)
{
    void *p = malloc(size ? size : 1);
    if (!p)
        sp_err_set(err, SPRUN_ERR_OUT_OF_MEMORY, "out of host memory allocating %zu bytes for %s", size, what);
    return p;
}

void *sp_calloc(size_t n, size_t size, sp_err *err, const char *what)
{
    void *p = calloc(n ? n : 1, size ? size : 1);
    if (!p)
        sp_err_set(err, SPRUN_ERR_OUT_OF_MEMORY, "out of host memory allocating %zu x %zu bytes for %s", n, size,
                   what);
    return p;
}

char *sp_strdup(const char *s)
{
    if (!s)
        return NULL;
    size_t n = strlen(s) + 1;
    char *p = malloc(n);
    if (p)
        memcpy(p, s, n);
    return p;
}

const char *sprun_code_name(sprun_code code)
{
    switch (code) {
    case SPRUN_OK: return "SPRUN_OK";
    case SPRUN_ERR_INVALID_ARGUMENT: return "SPRUN_ERR_INVALID_ARGUMENT";
    case SPRUN_ERR_IO: return "SPRUN_ERR_IO";
    case SPRUN_ERR_PARSE: return "SPRUN_ERR_PARSE";
    case SPRUN_ERR_UNSUPPORTED: return "SPRUN_ERR_UNSUPPORTED";
    case SPRUN_ERR_SHAPE: return "SPRUN_ERR_SHAPE";
    case SPRUN_ERR_OUT_OF_MEMORY: return "SPRUN_ERR_OUT_OF_MEMORY";
    case SPRUN_ERR_BACKEND: return "SPRUN_ERR_BACKEND";
    case SPRUN_ERR_NO_DEVICE: return "SPRUN_ERR_NO_DEVICE";
    case SPRUN_ERR_INTERNAL: return "SPRUN_ERR_INTERNAL";
    }
    return "SPRUN_ERR_UNKNOWN";
}
