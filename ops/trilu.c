/*
 * trilu.c - Trilu(input, k): keeps the upper (upper = 1, default) or lower
 * triangle of the last two dims, relative to diagonal k (default 0), zeroing
 * the rest. k does not change the output shape, so it may be a run-time
 * input: cpu_run reads it from in[1].
 */
#include "kernels/cpu/tensor_cpu.h"

#include <string.h>

static int trilu_check(const sp_graph *g, const sp_node *n, sp_err *err)
{
    (void)g;
    int rc = sp_check_io(n, 1, 2, 1, 1, err);
    if (rc)
        return rc;
    int64_t up = sp_attr_int(n, "upper", 1);
    if (up != 0 && up != 1)
        return sp_err_set(err, SPRUN_ERR_INVALID_ARGUMENT, "%s: attribute 'upper' must be 0 or 1, got %lld",
                          SP_LABEL(n), (long long)up);
    return 0;
}

static int trilu_infer(sp_graph *g, sp_node *n, sp_err *err)
{
    const sp_value *x = sp_node_in(g, n, 0);
    char s1[128];
    int rc;
    if ((rc = sp_check_dtype(g, n, 0, sp_dt_supported, "a numeric or bool tensor", err)))
        return rc;
    if (x->shape.rank < 2)
        return sp_err_set(err, SPRUN_ERR_SHAPE, "%s: input %s must have rank >= 2", SP_LABEL(n),
                          sp_shape_str(&x->shape, s1, sizeof s1));
    const sp_value *k = sp_node_in(g, n, 1);
    if (k && (!sp_dt_is_int(k->dtype) || sp_shape_numel(&k->shape) != 1))
        return sp_err_set(err, SPRUN_ERR_INVALID_ARGUMENT, "%s: k must be an integer scalar", SP_LABEL(n));
    sp_node_set_out(g, n, 0, x->dtype, &x->shape);
    return 0;
}

static int trilu_run(const sp_node *n, const sp_tensor *in, int n_in, sp_tensor *out, int n_out, const sp_cpu_ctx *ctx,
                     sp_err *err)
{
    (void)n_out; (void)ctx; (void)err;
    const sp_shape *xs = &in[0].shape;
    const int r = xs->rank;
    const int64_t rows = xs->d[r - 2], cols = xs->d[r - 1];
    const int64_t total = sp_shape_numel(xs);
    const size_t es = sp_dtype_size(in[0].dtype);
    int64_t k = 0;
    if (n_in >= 2 && in[1].data)
        k = sp_ld_i64(in[1].dtype, in[1].data, 0);
    const int upper = (int)sp_attr_int(n, "upper", 1);
    if (k > rows + cols) /* beyond every diagonal: avoids overflow below */
        k = rows + cols;
    if (k < -(rows + cols))
        k = -(rows + cols);
    if (total <= 0)
        return 0;
    const int64_t mats = total / (rows * cols);
    const char *x = in[0].data;
    char *y = out[0].data;
    for (int64_t m = 0; m < mats; m++) {
        for (int64_t i = 0; i < rows; i++) {
            const size_t off = (size_t)((m * rows + i) * cols) * es;
            /* keep j in [lo, hi) */
            int64_t lo, hi;
            if (upper) {
                lo = i + k; /* j - i >= k */
                hi = cols;
            } else {
                lo = 0;
                hi = i + k + 1; /* j - i <= k */
            }
            lo = lo < 0 ? 0 : (lo > cols ? cols : lo);
            hi = hi < lo ? lo : (hi > cols ? cols : hi);
            if (lo > 0)
                memset(y + off, 0, (size_t)lo * es);
            if (hi > lo)
                memmove(y + off + (size_t)lo * es, x + off + (size_t)lo * es, (size_t)(hi - lo) * es);
            if (hi < cols)
                memset(y + off + (size_t)hi * es, 0, (size_t)(cols - hi) * es);
        }
    }
    return 0;
}

static const sp_op_def op_trilu = {
    .op_type = "Trilu", .since_opset = 14, .flags = 0,
    .check = trilu_check, .infer = trilu_infer, .cpu_run = trilu_run,
};

const sp_op_def *const sp_ops_trilu[] = {&op_trilu, NULL};
