/*
 * cuda_check.h - turn a failing CUDA runtime call into a recorded status
 * instead of an abort.
 *
 * A library never exits on a device error: the call site records what failed
 * (the call's text, file, line and cudaGetErrorString) into an sp_cuda_status
 * that belongs to the caller (a context, a stream, a test), and returns the
 * cudaError_t so the caller can unwind. Only the FIRST error is kept: later
 * failures are usually consequences of the first one.
 *
 *     sp_cuda_status st = {0};
 *     SP_CUDA_TRY(&st, cudaMalloc(&p, bytes));        // returns on error
 *     if (SP_CUDA_CHECK(&st, cudaMemsetAsync(p, 0, bytes, s)) != cudaSuccess)
 *         goto fail;                                  // or unwind by hand
 *     SP_CUDA_TRY(&st, cudaGetLastError());           // after a launch
 *
 * Usable from C and CUDA C; the status pointer may be NULL (nothing is
 * recorded, the error is still returned). Thread safety: a status must not be
 * shared by threads without a lock.
 */
#ifndef SPRUN_CUDA_CHECK_H
#define SPRUN_CUDA_CHECK_H

#include <cuda_runtime_api.h>
#include <stdio.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct sp_cuda_status {
    int code;      /* 0 = ok, else the first cudaError_t (or an SP_CUDA_E_* code) */
    char msg[256]; /* "file:line: call: reason" of the first failure */
} sp_cuda_status;

/* Errors that are not CUDA runtime errors (bad arguments to a launcher).
 * Chosen far above every cudaError_t value. */
enum { SP_CUDA_E_INVALID = 100001, SP_CUDA_E_UNSUPPORTED = 100002 };

static inline int sp_cuda_status_ok(const sp_cuda_status *st) { return !st || st->code == 0; }

static inline cudaError_t sp_cuda_record(sp_cuda_status *st, cudaError_t e, const char *call,
                                         const char *file, int line) {
    if (e != cudaSuccess && st && st->code == 0) {
        st->code = (int)e;
        snprintf(st->msg, sizeof st->msg, "%s:%d: %s: %s", file, line, call,
                 cudaGetErrorString(e));
    }
    return e;
}

/* Records a non-CUDA failure (argument checks); returns the code as an int. */
static inline int sp_cuda_fail(sp_cuda_status *st, int code, const char *file, int line,
                               const char *what) {
    if (st && st->code == 0) {
        st->code = code;
        snprintf(st->msg, sizeof st->msg, "%s:%d: %s", file, line, what);
    }
    return code;
}

/* Evaluates to the call's cudaError_t after recording a failure. */
#define SP_CUDA_CHECK(st, call) sp_cuda_record((st), (call), #call, __FILE__, __LINE__)

/* Returns the cudaError_t from the enclosing function on failure. */
#define SP_CUDA_TRY(st, call)                                     \
    do {                                                          \
        cudaError_t sp_e_ = SP_CUDA_CHECK(st, call);              \
        if (sp_e_ != cudaSuccess) return sp_e_;                   \
    } while (0)

#define SP_CUDA_FAIL(st, code, what) sp_cuda_fail((st), (code), __FILE__, __LINE__, (what))

#ifdef __cplusplus
}
#endif
#endif
