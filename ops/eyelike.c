/*
 * eyelike.c - EyeLike(input) with attributes dtype (default: input's) and
 * k: a 2-D tensor of input's shape with ones on diagonal k, zeros elsewhere.
 */
#include "kernels/cpu/tensor_cpu.h"

#include <string.h>

static int eye_check(const sp_graph *g, const sp_node *n, sp_err *err)
{
    (void)g;
    int rc = sp_check_io(n, 1, 1, 1, 1, err);
    if (rc)
        return rc;
    const sp_attr *a = sp_attr_find(n, "dtype");
    if (a && !sp_dt_supported((int)a->i))
        return sp_err_set(err, SPRUN_ERR_UNSUPPORTED, "%s: dtype %lld is not supported", SP_LABEL(n),
                          (long long)a->i);
    return 0;
}

static int eye_infer(sp_graph *g, sp_node *n, sp_err *err)
{
    int rc;
    char s1[128];
    if ((rc = sp_check_dtype(g, n, 0, sp_dt_supported, "a numeric or bool tensor", err)))
        return rc;
    const sp_value *x = sp_node_in(g, n, 0);
    if (x->shape.rank != 2)
        return sp_err_set(err, SPRUN_ERR_SHAPE, "%s: input %s must be 2-D", SP_LABEL(n),
                          sp_shape_str(&x->shape, s1, sizeof s1));
    sp_node_set_out(g, n, 0, (int)sp_attr_int(n, "dtype", x->dtype), &x->shape);
    return 0;
}

static int eye_run(const sp_node *n, const sp_tensor *in, int n_in, sp_tensor *out, int n_out, const sp_cpu_ctx *ctx,
                   sp_err *err)
{
    (void)in; (void)n_in; (void)n_out; (void)ctx; (void)err;
    const int64_t rows = out[0].shape.d[0], cols = out[0].shape.d[1], k = sp_attr_int(n, "k", 0);
    const int dt = out[0].dtype;
    memset(out[0].data, 0, (size_t)(rows * cols) * sp_dtype_size(dt));
    if (k >= cols || k <= -rows) /* no diagonal inside (and i + k cannot overflow below) */
        return 0;
    for (int64_t i = 0; i < rows; i++) {
        const int64_t j = i + k;
        if (j < 0 || j >= cols)
            continue;
        if (sp_dt_is_float(dt))
            sp_st_f64(dt, out[0].data, i * cols + j, 1.0);
        else
            sp_st_i64(dt, out[0].data, i * cols + j, 1);
    }
    return 0;
}

static const sp_op_def op_eyelike = {
    .op_type = "EyeLike", .since_opset = 9, .flags = 0,
    .check = eye_check, .infer = eye_infer, .cpu_run = eye_run,
};

const sp_op_def *const sp_ops_eyelike[] = {&op_eyelike, NULL};
