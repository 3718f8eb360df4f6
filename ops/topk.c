/*
 * topk.c - TopK: opset 1 (attribute k) and 10+ (input K), attributes axis
 * (default -1), largest (default 1) and sorted (output is always sorted).
 * Outputs Values (X's dtype) and Indices (int64). Ties keep the lower index
 * first, as the reference's stable sort does. K decides the shape and must
 * be constant.
 *
 * Each slice along axis is copied into (value, index) pairs in scratch and
 * sorted with qsort on a total order (value, then index), so equal values
 * stay in index order without a stable sort; values are compared as double
 * (int64 beyond 2^53 may order approximately) and copied out bitwise.
 */
#include "kernels/cpu/tensor_cpu.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static int tk_check(const sp_graph *g, const sp_node *n, sp_err *err)
{
    (void)g;
    return sp_check_io(n, 1, 2, 2, 2, err);
}

static int tk_k(const sp_graph *g, const sp_node *n, int64_t *k, sp_err *err)
{
    if (n->n_in < 2 || n->in[1] < 0) {
        *k = sp_attr_int(n, "k", -1);
        return 0;
    }
    int64_t cnt;
    int rc = sp_in_ints(g, n, 1, k, 1, &cnt, err);
    if (!rc && cnt != 1)
        return sp_err_set(err, SPRUN_ERR_SHAPE, "%s: K must hold one value", SP_LABEL(n));
    return rc;
}

static int tk_infer(sp_graph *g, sp_node *n, sp_err *err)
{
    int rc;
    if ((rc = sp_check_dtype(g, n, 0, sp_dt_numeric, "a numeric tensor", err)))
        return rc;
    const sp_value *x = sp_node_in(g, n, 0);
    const int r = x->shape.rank;
    const int axis = sp_axis(sp_attr_int(n, "axis", -1), r);
    if (axis < 0 || r == 0)
        return sp_err_set(err, SPRUN_ERR_INVALID_ARGUMENT, "%s: attribute 'axis' = %lld out of range for rank %d",
                          SP_LABEL(n), (long long)sp_attr_int(n, "axis", -1), r);
    int64_t k;
    if ((rc = tk_k(g, n, &k, err)))
        return rc;
    if (k < 0 || k > x->shape.d[axis])
        return sp_err_set(err, SPRUN_ERR_INVALID_ARGUMENT, "%s: k = %lld out of range for axis %d of size %lld",
                          SP_LABEL(n), (long long)k, axis, (long long)x->shape.d[axis]);
    sp_shape o = x->shape;
    o.d[axis] = k;
    sp_node_set_out(g, n, 0, x->dtype, &o);
    sp_node_set_out(g, n, 1, SPRUN_DTYPE_INT64, &o);
    return 0;
}

typedef struct tk_pair {
    double v;
    int64_t i;
} tk_pair;

static int tk_cmp_large(const void *a, const void *b)
{
    const tk_pair *p = a, *q = b;
    /* NaN sorts as the largest */
    int pn = isnan(p->v), qn = isnan(q->v);
    if (pn != qn)
        return qn - pn;
    if (!pn && p->v != q->v)
        return p->v > q->v ? -1 : 1;
    return p->i < q->i ? -1 : (p->i > q->i);
}

static int tk_cmp_small(const void *a, const void *b)
{
    const tk_pair *p = a, *q = b;
    int pn = isnan(p->v), qn = isnan(q->v);
    if (pn != qn)
        return pn - qn;
    if (!pn && p->v != q->v)
        return p->v < q->v ? -1 : 1;
    return p->i < q->i ? -1 : (p->i > q->i);
}

static size_t tk_scratch(const sp_graph *g, const sp_node *n, int nthreads)
{
    const sp_value *x = sp_node_in(g, n, 0);
    const int axis = sp_axis(sp_attr_int(n, "axis", -1), x->shape.rank);
    if (axis < 0)
        return 0;
    return (size_t)(nthreads > 0 ? nthreads : 1) * (size_t)x->shape.d[axis] * sizeof(tk_pair);
}

typedef struct tk_job {
    const char *x;
    char *y;
    int64_t *yi;
    int dt, large;
    size_t es;
    int64_t outer, inner, len, k, per_slot;
    int64_t nslots;
    tk_pair *buf;
} tk_job;

static void tk_range(void *arg, int64_t s0, int64_t s1)
{
    const tk_job *j = arg;
    const int64_t slices = j->outer * j->inner;
    for (int64_t s = s0; s < s1; s++) {
        tk_pair *p = j->buf + s * j->len;
        const int64_t u0 = slices * s / j->nslots, u1 = slices * (s + 1) / j->nslots;
        for (int64_t u = u0; u < u1; u++) {
            const int64_t base = (u / j->inner) * j->len * j->inner + u % j->inner;
            const int64_t obase = (u / j->inner) * j->k * j->inner + u % j->inner;
            for (int64_t t = 0; t < j->len; t++) {
                p[t].v = sp_ld_f64(j->dt, j->x, base + t * j->inner);
                p[t].i = t;
            }
            qsort(p, (size_t)j->len, sizeof *p, j->large ? tk_cmp_large : tk_cmp_small);
            for (int64_t t = 0; t < j->k; t++) {
                const int64_t o = obase + t * j->inner;
                memcpy(j->y + (size_t)o * j->es, j->x + (size_t)(base + p[t].i * j->inner) * j->es, j->es);
                j->yi[o] = p[t].i;
            }
        }
    }
}

static int tk_run(const sp_node *n, const sp_tensor *in, int n_in, sp_tensor *out, int n_out, const sp_cpu_ctx *ctx,
                  sp_err *err)
{
    (void)n_in; (void)n_out;
    const sp_shape *xs = &in[0].shape;
    const int axis = sp_axis(sp_attr_int(n, "axis", -1), xs->rank);
    int64_t outer, inner;
    sp_outer_inner(xs, axis, &outer, &inner);
    tk_job j = {.x = in[0].data, .y = out[0].data, .yi = out[1].data, .dt = in[0].dtype,
                .large = sp_attr_int(n, "largest", 1) != 0, .es = sp_dtype_size(in[0].dtype), .outer = outer,
                .inner = inner, .len = xs->d[axis], .k = out[0].shape.d[axis], .buf = ctx ? ctx->scratch : NULL};
    if (outer * inner == 0 || j.k == 0)
        return 0;
    /* one slice buffer per slot: as many slots as threads, slices and scratch allow */
    const size_t per = (size_t)j.len * sizeof(tk_pair);
    int64_t slots = ctx && ctx->nthreads > 0 ? ctx->nthreads : 1;
    if (slots > outer * inner)
        slots = outer * inner;
    if (ctx && per && (int64_t)(ctx->scratch_bytes / per) < slots)
        slots = (int64_t)(ctx->scratch_bytes / per);
    if (!j.buf || slots < 1)
        return sp_err_set(err, SPRUN_ERR_INTERNAL, "%s: needs %zu bytes of scratch, the plan gave %zu", SP_LABEL(n),
                          per, ctx ? ctx->scratch_bytes : 0);
    j.nslots = slots;
    sp_par_for(ctx, slots, 1, tk_range, &j);
    return 0;
}

static const sp_op_def op_topk = {
    .op_type = "TopK", .since_opset = 1, .flags = 0,
    .check = tk_check, .infer = tk_infer, .cpu_run = tk_run, .cpu_scratch = tk_scratch,
};

const sp_op_def *const sp_ops_topk[] = {&op_topk, NULL};
