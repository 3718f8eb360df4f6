/*
 * error.h - internal error reporting.
 *
 * Internal functions return an int that is a sprun_code (0 = ok) and write
 * a message into an sp_err supplied by the caller. The public API copies
 * the message into the thread-local slot behind sprun_last_error().
 */
#ifndef SPRUN_ERROR_H
#define SPRUN_ERROR_H

#include "sprun.h"

#include <stddef.h>

#define SP_ERR_MSG_LEN 4096

typedef struct sp_err {
    int code;
    char msg[SP_ERR_MSG_LEN];
} sp_err;

/* Sets err (if not NULL) to code and a printf-style message; returns code so
 * callers can write `return sp_err_set(err, SPRUN_ERR_PARSE, "...")`. */
int sp_err_set(sp_err *err, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* Prepends "prefix: " to the message already in err (context while the error
 * travels up: "node conv1 (Conv): ..."); returns err->code. */
int sp_err_prefix(sp_err *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Appends to the message (used to list several unsupported ops at once). */
void sp_err_append(sp_err *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Stores err as this thread's last error and returns its code. */
int sp_err_publish(const sp_err *err);

/* Allocation helpers that never return NULL silently: on failure they set
 * err to SPRUN_ERR_OUT_OF_MEMORY naming `what` and the size. */
void *sp_malloc(size_t size, sp_err *err, const char *what);
void *sp_calloc(size_t n, size_t size, sp_err *err, const char *what);
char *sp_strdup(const char *s);

#endif
