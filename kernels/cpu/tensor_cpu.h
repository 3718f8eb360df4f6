/*
 * tensor_cpu.h - helpers shared by the CPU tensor-op families (elementwise,
 * reduce, shape_ops, transpose, concat_split, slice, gather, cast, where,
 * constant, trilu).
 *
 * Element access by dtype. Kernels that are not on a hot path compute in one
 * of three domains and convert on the way in and out:
 *   float  - FLOAT and FLOAT16 (fp16 is stored as uint16 bits)
 *   double - DOUBLE
 *   int64  - every integer type and BOOL (UINT64 is not supported)
 * Conversions to integer types truncate (C semantics, wrap-around for
 * out-of-range values computed through unsigned arithmetic, never UB).
 *
 * Shape inputs. Ops whose output shape depends on the data of an input
 * (Reshape's shape, Slice's starts...) read it with sp_in_ints() at infer
 * time; a non-constant input gives SPRUN_ERR_UNSUPPORTED:
 *     "data-dependent shape: input 'x' of node 'y' is not constant".
 * cpu_run re-reads the same values from in[i] with sp_tensor_ints().
 */
#ifndef SPRUN_TENSOR_CPU_H
#define SPRUN_TENSOR_CPU_H

#include "ops/op.h"
#include "runtime/half.h"

#include <stddef.h>
#include <stdint.h>

/* Node label for messages inside one expression:
 *   sp_err_set(err, code, "%s: ...", SP_LABEL(n)). */
#define SP_LABEL(n) sp_node_label((n), (char[192]){0}, 192)

/* dtype classes */
int sp_dt_is_float(int dt);   /* FLOAT, FLOAT16, DOUBLE */
int sp_dt_is_int(int dt);     /* INT8..INT64, UINT8..UINT32 (not BOOL) */
int sp_dt_is_signed(int dt);  /* float types and signed ints */
int sp_dt_numeric(int dt);    /* float or int (not BOOL) */
int sp_dt_supported(int dt);  /* anything the tensor ops compute on (numeric or BOOL) */

/* Single-element access (slow path, also used for constants). */
double sp_ld_f64(int dt, const void *p, int64_t i);
int64_t sp_ld_i64(int dt, const void *p, int64_t i);
void sp_st_f64(int dt, void *p, int64_t i, double v);
void sp_st_i64(int dt, void *p, int64_t i, int64_t v);

/* Runs of n elements starting at element i0 with element stride s (0: the
 * same element n times), converted into / out of a domain buffer. */
void sp_ld_f32_run(int dt, const void *p, int64_t i0, int64_t s, float *dst, int64_t n);
void sp_ld_f64_run(int dt, const void *p, int64_t i0, int64_t s, double *dst, int64_t n);
void sp_ld_i64_run(int dt, const void *p, int64_t i0, int64_t s, int64_t *dst, int64_t n);
void sp_st_f32_run(int dt, void *p, int64_t i0, const float *src, int64_t n);
void sp_st_f64_run(int dt, void *p, int64_t i0, const double *src, int64_t n);
void sp_st_i64_run(int dt, void *p, int64_t i0, const int64_t *src, int64_t n);

/* Sets err to the data-dependent-shape error for input i of n; returns
 * SPRUN_ERR_UNSUPPORTED. */
int sp_err_datadep(sp_err *err, const sp_graph *g, const sp_node *n, int i);

/* Reads input i of n (infer time) as a list of at most max integers:
 * *count gets the element count. Absent input: *count = -1, returns 0.
 * Not constant: the data-dependent error. Non-integer dtype or more than
 * max elements: SPRUN_ERR_UNSUPPORTED / SPRUN_ERR_SHAPE naming the node. */
int sp_in_ints(const sp_graph *g, const sp_node *n, int i, int64_t *vals, int64_t max, int64_t *count,
               sp_err *err);
/* Same for a tensor handed to cpu_run (absent: data NULL, *count = -1). */
int sp_tensor_ints(const sp_node *n, const sp_tensor *t, int64_t *vals, int64_t max, int64_t *count, sp_err *err);

/* Input-count and output-count checks with a message naming the node. */
int sp_check_io(const sp_node *n, int min_in, int max_in, int min_out, int max_out, sp_err *err);
/* Input i must be present with a known dtype among those allowed by pred
 * (checked at infer time); returns 0 or SPRUN_ERR_UNSUPPORTED. */
int sp_check_dtype(const sp_graph *g, const sp_node *n, int i, int (*pred)(int), const char *what, sp_err *err);

/* sp_parallel_for that also accepts ctx == NULL (runs inline). */
void sp_par_for(const sp_cpu_ctx *ctx, int64_t n, int64_t grain, sp_range_fn fn, void *arg);

/* Fails with SPRUN_ERR_SHAPE (naming n) unless every dim of s is >= 0 and
 * the element count stays below 2^56: shapes read from tensor data
 * (Reshape, Expand, Tile, ConstantOfShape, Range), or that grow from an
 * empty tensor with huge other dims (Gather, Reduce with keepdims), cannot
 * overflow later size arithmetic, whatever a malformed model says. */
int sp_check_numel(const sp_node *n, const sp_shape *s, sp_err *err);

/* Elements before and after `axis` of s: s viewed as [outer, d[axis], inner]. */
void sp_outer_inner(const sp_shape *s, int axis, int64_t *outer, int64_t *inner);

/* Row-major element strides of s into st[rank]. */
void sp_shape_strides(const sp_shape *s, int64_t *st);

/* Copies nbytes with memmove semantics; a tiny wrapper so shape ops that
 * alias input and output (Reshape on one buffer) stay correct. */
void sp_copy_bytes(void *dst, const void *src, size_t nbytes);

#endif
