/*
 * cumsum.c - CumSum(x, axis) with attributes exclusive and reverse. axis is
 * a scalar int32/int64 tensor that may be fed at run time (it does not
 * change the shape). Float types accumulate in double, integer types in
 * int64 (stored back with wrap-around).
 */
#include "kernels/cpu/tensor_cpu.h"

static int cs_dt(int dt) { return sp_dt_numeric(dt); }

static int cs_check(const sp_graph *g, const sp_node *n, sp_err *err)
{
    (void)g;
    return sp_check_io(n, 2, 2, 1, 1, err);
}

static int cs_infer(sp_graph *g, sp_node *n, sp_err *err)
{
    int rc;
    if ((rc = sp_check_dtype(g, n, 0, cs_dt, "a numeric tensor", err)) ||
        (rc = sp_check_dtype(g, n, 1, sp_dt_is_int, "int32 or int64", err)))
        return rc;
    const sp_value *x = sp_node_in(g, n, 0), *a = sp_node_in(g, n, 1);
    if (sp_shape_numel(&a->shape) != 1)
        return sp_err_set(err, SPRUN_ERR_SHAPE, "%s: axis must be a scalar", SP_LABEL(n));
    const void *ad = sp_node_const(g, n, 1);
    if (ad) {
        int64_t av = sp_ld_i64(a->dtype, ad, 0);
        if (sp_axis(av, x->shape.rank) < 0)
            return sp_err_set(err, SPRUN_ERR_INVALID_ARGUMENT, "%s: axis %lld out of range for rank %d",
                              SP_LABEL(n), (long long)av, x->shape.rank);
    }
    sp_node_set_out(g, n, 0, x->dtype, &x->shape);
    return 0;
}

typedef struct cs_job {
    const void *x;
    void *y;
    int dt, excl, rev, fl;
    int64_t len, inner;
} cs_job;

static void cs_range(void *arg, int64_t b, int64_t e)
{
    const cs_job *j = arg;
    for (int64_t u = b; u < e; u++) {
        const int64_t base = (u / j->inner) * j->len * j->inner + u % j->inner;
        double sf = 0.0;
        uint64_t si = 0;
        for (int64_t t = 0; t < j->len; t++) {
            const int64_t k = j->rev ? j->len - 1 - t : t, off = base + k * j->inner;
            if (j->fl) {
                const double v = sp_ld_f64(j->dt, j->x, off);
                if (!j->excl)
                    sf += v;
                sp_st_f64(j->dt, j->y, off, sf);
                if (j->excl)
                    sf += v;
            } else {
                const uint64_t v = (uint64_t)sp_ld_i64(j->dt, j->x, off);
                if (!j->excl)
                    si += v;
                sp_st_i64(j->dt, j->y, off, (int64_t)si);
                if (j->excl)
                    si += v;
            }
        }
    }
}

static int cs_run(const sp_node *n, const sp_tensor *in, int n_in, sp_tensor *out, int n_out, const sp_cpu_ctx *ctx,
                  sp_err *err)
{
    (void)n_in; (void)n_out;
    const sp_shape *xs = &in[0].shape;
    const int64_t av = sp_ld_i64(in[1].dtype, in[1].data, 0);
    const int axis = sp_axis(av, xs->rank);
    if (axis < 0)
        return sp_err_set(err, SPRUN_ERR_INVALID_ARGUMENT, "%s: axis %lld out of range for rank %d", SP_LABEL(n),
                          (long long)av, xs->rank);
    int64_t outer, inner;
    sp_outer_inner(xs, axis, &outer, &inner);
    cs_job j = {.x = in[0].data, .y = out[0].data, .dt = in[0].dtype, .excl = sp_attr_int(n, "exclusive", 0) != 0,
                .rev = sp_attr_int(n, "reverse", 0) != 0, .fl = sp_dt_is_float(in[0].dtype), .len = xs->d[axis],
                .inner = inner};
    if (outer * inner * j.len <= 0)
        return 0;
    sp_par_for(ctx, outer * inner, 1 + 16384 / (j.len + 1), cs_range, &j);
    return 0;
}

static const sp_op_def op_cumsum = {
    .op_type = "CumSum", .since_opset = 11, .flags = 0,
    .check = cs_check, .infer = cs_infer, .cpu_run = cs_run,
};

const sp_op_def *const sp_ops_cumsum[] = {&op_cumsum, NULL};
