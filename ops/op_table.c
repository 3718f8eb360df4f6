/*
 * op_table.c - the registry of supported ONNX ops.
 *
 * Each op family file (ops/<family>.c) exports a NULL-terminated list
 * sp_ops_<family>[]; this file concatenates them and answers look-ups by op
 * type. Lookup is a linear scan over ~80 entries, done once per node at load.
 */
#include "ops/op.h"

#include <string.h>

extern const sp_op_def *const sp_ops_conv[];
extern const sp_op_def *const sp_ops_gemm[];
extern const sp_op_def *const sp_ops_pool[];
extern const sp_op_def *const sp_ops_norm[];
extern const sp_op_def *const sp_ops_activation[];
extern const sp_op_def *const sp_ops_softmax[];
extern const sp_op_def *const sp_ops_elementwise[];
extern const sp_op_def *const sp_ops_reduce[];
extern const sp_op_def *const sp_ops_shape_ops[];
extern const sp_op_def *const sp_ops_transpose[];
extern const sp_op_def *const sp_ops_concat_split[];
extern const sp_op_def *const sp_ops_slice[];
extern const sp_op_def *const sp_ops_gather[];
extern const sp_op_def *const sp_ops_cast[];
extern const sp_op_def *const sp_ops_where[];
extern const sp_op_def *const sp_ops_constant[];
extern const sp_op_def *const sp_ops_trilu[];
extern const sp_op_def *const sp_ops_argminmax[];
extern const sp_op_def *const sp_ops_unary_math[];
extern const sp_op_def *const sp_ops_pad[];
extern const sp_op_def *const sp_ops_resize[];
extern const sp_op_def *const sp_ops_cumsum[];
extern const sp_op_def *const sp_ops_space_depth[];
extern const sp_op_def *const sp_ops_onehot[];
extern const sp_op_def *const sp_ops_topk[];
extern const sp_op_def *const sp_ops_eyelike[];
extern const sp_op_def *const sp_ops_scatter_gather_nd[];

static const sp_op_def *const *const families[] = {
    sp_ops_conv,
    sp_ops_gemm,
    sp_ops_pool,
    sp_ops_norm,
    sp_ops_activation,
    sp_ops_softmax,
    sp_ops_elementwise,
    sp_ops_reduce,
    sp_ops_shape_ops,
    sp_ops_transpose,
    sp_ops_concat_split,
    sp_ops_slice,
    sp_ops_gather,
    sp_ops_cast,
    sp_ops_where,
    sp_ops_constant,
    sp_ops_trilu,
    sp_ops_argminmax,
    sp_ops_unary_math,
    sp_ops_pad,
    sp_ops_resize,
    sp_ops_cumsum,
    sp_ops_space_depth,
    sp_ops_onehot,
    sp_ops_topk,
    sp_ops_eyelike,
    sp_ops_scatter_gather_nd,
};

#define N_FAMILIES (sizeof families / sizeof families[0])

const sp_op_def *sp_op_find(const char *domain, const char *op_type)
{
    if (domain && domain[0] && strcmp(domain, "ai.onnx") != 0)
        return NULL;
    for (size_t f = 0; f < N_FAMILIES; f++)
        for (const sp_op_def *const *p = families[f]; *p; p++)
            if (strcmp((*p)->op_type, op_type) == 0)
                return *p;
    return NULL;
}

int sp_op_count(void)
{
    int n = 0;
    for (size_t f = 0; f < N_FAMILIES; f++)
        for (const sp_op_def *const *p = families[f]; *p; p++)
            n++;
    return n;
}

const sp_op_def *sp_op_at(int i)
{
    for (size_t f = 0; f < N_FAMILIES; f++)
        for (const sp_op_def *const *p = families[f]; *p; p++)
            if (i-- == 0)
                return *p;
    return NULL;
}
