/*
 * op.h - the contract every ONNX op implements.
 *
 * One file per op family under ops/ defines `const sp_op_def` entries and a
 * NULL-terminated list `sp_ops_<family>[]` that ops/op_table.c registers.
 * Each entry says, for one ONNX op type:
 *   check     - at load: input/output counts, attributes, dtypes that can be
 *               checked without shapes. Unsupported attribute values give
 *               SPRUN_ERR_UNSUPPORTED naming the attribute.
 *   infer     - at plan time (and when folding constants at load): the
 *               output dtypes and concrete shapes from the inputs' dtypes and
 *               shapes, reading constant inputs' data where the op needs them
 *               (Reshape's shape, Slice's starts...). Every input shape is
 *               concrete when infer runs. A shape input that is not constant
 *               is SPRUN_ERR_UNSUPPORTED ("data-dependent shape").
 *   cpu_run   - compute on the CPU from dense row-major tensors. in[i].data
 *               is NULL for an absent optional input. Outputs are
 *               preallocated with the inferred shapes. Applies n->fusion
 *               when the op has SP_OPF_FUSABLE.
 *   cpu_scratch - optional: bytes of scratch cpu_run needs (im2col...), given
 *               concrete shapes; the planner reserves it once.
 *
 * Kernels never allocate inside cpu_run except through ctx->scratch; a
 * kernel that cannot work within that returns an error, never aborts.
 */
#ifndef SPRUN_OP_H
#define SPRUN_OP_H

#include "runtime/error.h"
#include "runtime/graph.h"

#include <stddef.h>
#include <stdint.h>

/* Parallel loop over [0, n): fn is called with disjoint [begin, end) ranges
 * from up to ctx->nthreads threads; returns when all are done. */
typedef void (*sp_range_fn)(void *arg, int64_t begin, int64_t end);

typedef struct sp_cpu_ctx {
    int nthreads;
    struct sp_threadpool *pool; /* NULL: run inline */
    void *scratch;              /* cpu_scratch() bytes, 64-byte aligned */
    size_t scratch_bytes;
    const sp_graph *graph;      /* the (specialised) graph being run */
} sp_cpu_ctx;

/* Splits [0, n) into chunks of at least `grain` items over the pool. */
void sp_parallel_for(const sp_cpu_ctx *ctx, int64_t n, int64_t grain, sp_range_fn fn, void *arg);

enum sp_op_flags {
    SP_OPF_NONE = 0,
    /* Output 0 is input 0's data reinterpreted (Reshape, Flatten, Squeeze,
     * Unsqueeze, Identity, Dropout): the planner may give both one buffer and
     * the executor then skips cpu_run. */
    SP_OPF_ALIAS = 1u << 0,
    /* Foldable once input 0's *shape* is known (Shape, Size): its data is
     * not needed. */
    SP_OPF_SHAPE_ONLY = 1u << 1,
    /* Accepts n->fusion (bias/residual/activation epilogue). */
    SP_OPF_FUSABLE = 1u << 2,
    /* Never fold at load/plan time even with constant inputs. */
    SP_OPF_NO_FOLD = 1u << 3,
};

typedef struct sp_op_def {
    const char *op_type; /* ONNX op type in the default domain */
    int since_opset;     /* lowest opset whose semantics this implements */
    unsigned flags;
    int (*check)(const sp_graph *g, const sp_node *n, sp_err *err);
    int (*infer)(sp_graph *g, sp_node *n, sp_err *err);
    int (*cpu_run)(const sp_node *n, const sp_tensor *in, int n_in, sp_tensor *out, int n_out, const sp_cpu_ctx *ctx,
                   sp_err *err);
    size_t (*cpu_scratch)(const sp_graph *g, const sp_node *n, int nthreads);
} sp_op_def;

/* Finds the definition for (domain, op_type); domain "" and "ai.onnx" are
 * the default domain. NULL when unsupported. Thread-safe (static table). */
const sp_op_def *sp_op_find(const char *domain, const char *op_type);

/* Number of supported ops and the i-th one (for --help listings). */
int sp_op_count(void);
const sp_op_def *sp_op_at(int i);

/* Applies an activation to one value (scalar reference of the epilogues). */
static inline float sp_act_apply(int act, float x, float alpha, float beta);

#include <math.h>
static inline float sp_act_apply(int act, float x, float alpha, float beta)
{
    switch (act) {
    case SP_ACT_RELU: return x > 0.f ? x : 0.f;
    case SP_ACT_CLIP: return x < alpha ? alpha : (x > beta ? beta : x);
    case SP_ACT_SIGMOID: return 1.f / (1.f + expf(-x));
    case SP_ACT_GELU: return 0.5f * x * (1.f + erff(x * 0.70710678118654752f));
    case SP_ACT_TANH: return tanhf(x);
    case SP_ACT_HARDSWISH: {
        float t = x / 6.f + 0.5f;
        t = t < 0.f ? 0.f : (t > 1.f ? 1.f : t);
        return x * t;
    }
    case SP_ACT_HARDSIGMOID: {
        float t = alpha * x + beta;
        return t < 0.f ? 0.f : (t > 1.f ? 1.f : t);
    }
    case SP_ACT_LEAKYRELU: return x >= 0.f ? x : alpha * x;
    default: return x;
    }
}

/* Applies n's fusion epilogue in place to y (count elements, contiguous),
 * adding the residual tensor (same shape) first when present. Ops whose
 * kernels cannot fold the epilogue into their inner loop call this. */
void sp_fusion_apply(const sp_node *n, const sp_tensor *in, float *y, int64_t count, const sp_cpu_ctx *ctx);

#endif
