/*
 * reduce.c - ReduceMean, ReduceSum, ReduceMax, ReduceMin, ReduceProd,
 * ReduceSumSquare, ReduceL1, ReduceL2, ReduceLogSum, ReduceLogSumExp.
 *
 * axes: the attribute before opset 18 (ReduceSum: before 13), the optional
 * second input from then on (must be constant: it decides the output shape).
 * keepdims (default 1) and noop_with_empty_axes (no axes + noop = identity;
 * no axes otherwise = reduce everything).
 *
 * Accumulation is in double for float types (fp16 included: no overflow,
 * as users of other runtimes ask) and in int64 for integer types. The
 * reduced dims are coalesced; one reduced run with the input's float data
 * is the fast path (ReduceMean over the hidden dim of a decomposed
 * LayerNorm, ReduceMean over H*W of a global pool). Empty reductions give
 * the identity of the op (0, 1, -inf/+inf, NaN for Mean).
 */
#include "kernels/cpu/tensor_cpu.h"

#include <math.h>
#include <string.h>

enum { R_SUM, R_MEAN, R_MAX, R_MIN, R_PROD, R_SUMSQ, R_L1, R_L2, R_LOGSUM, R_LOGSUMEXP };

static int red_code(const sp_node *n)
{
    static const char *const names[] = {"ReduceSum", "ReduceMean", "ReduceMax", "ReduceMin", "ReduceProd",
                                        "ReduceSumSquare", "ReduceL1", "ReduceL2", "ReduceLogSum",
                                        "ReduceLogSumExp"};
    for (int k = 0; k < (int)(sizeof names / sizeof names[0]); k++)
        if (!strcmp(n->op_type, names[k]))
            return k;
    return R_SUM;
}

/* Opset from which axes is an input. */
static int axes_input_opset(const sp_node *n) { return red_code(n) == R_SUM ? 13 : 18; }

static int red_check(const sp_graph *g, const sp_node *n, sp_err *err)
{
    const int inp = g->opset >= axes_input_opset(n);
    int rc = sp_check_io(n, 1, inp ? 2 : 1, 1, 1, err);
    if (rc)
        return rc;
    if (inp && sp_attr_find(n, "axes"))
        return sp_err_set(err, SPRUN_ERR_INVALID_ARGUMENT, "%s: attribute 'axes' is not allowed at opset %lld "
                          "(axes is an input)", SP_LABEL(n), (long long)g->opset);
    return 0;
}

/* Reduced-dim mask for input rank r; *identity when noop_with_empty_axes
 * applies. Axes come from `ax` (cnt entries, cnt < 0: none). */
static int red_mask(const sp_node *n, int r, const int64_t *ax, int64_t cnt, int *mask, int *identity, sp_err *err)
{
    *identity = 0;
    memset(mask, 0, sizeof(int) * SP_MAX_RANK);
    if (cnt <= 0) {
        if (sp_attr_int(n, "noop_with_empty_axes", 0)) {
            *identity = 1;
            return 0;
        }
        for (int k = 0; k < r; k++)
            mask[k] = 1;
        return 0;
    }
    for (int64_t i = 0; i < cnt; i++) {
        int a = sp_axis(ax[i], r);
        if (a < 0)
            return sp_err_set(err, SPRUN_ERR_INVALID_ARGUMENT, "%s: axis %lld out of range for rank %d", SP_LABEL(n),
                              (long long)ax[i], r);
        mask[a] = 1;
    }
    return 0;
}

static int attr_axes(const sp_node *n, int64_t *ax, int64_t *cnt, sp_err *err)
{
    const int64_t *v;
    *cnt = sp_attr_ints(n, "axes", &v);
    if (*cnt > SP_MAX_RANK)
        return sp_err_set(err, SPRUN_ERR_INVALID_ARGUMENT, "%s: attribute 'axes' has %lld entries", SP_LABEL(n),
                          (long long)*cnt);
    for (int64_t k = 0; k < *cnt; k++)
        ax[k] = v[k];
    return 0;
}

static int red_infer(sp_graph *g, sp_node *n, sp_err *err)
{
    const sp_value *x = sp_node_in(g, n, 0);
    int64_t ax[SP_MAX_RANK], cnt;
    int rc;
    if ((rc = sp_check_dtype(g, n, 0, sp_dt_numeric, "a numeric tensor", err)))
        return rc;
    if (g->opset >= axes_input_opset(n))
        rc = sp_in_ints(g, n, 1, ax, SP_MAX_RANK, &cnt, err);
    else
        rc = attr_axes(n, ax, &cnt, err);
    if (rc)
        return rc;
    int mask[SP_MAX_RANK], ident;
    if ((rc = red_mask(n, x->shape.rank, ax, cnt, mask, &ident, err)))
        return rc;
    if (ident) {
        sp_node_set_out(g, n, 0, x->dtype, &x->shape);
        return 0;
    }
    const int keep = sp_attr_int(n, "keepdims", 1) != 0;
    sp_shape out = {.rank = 0};
    for (int k = 0; k < x->shape.rank; k++) {
        if (!mask[k])
            out.d[out.rank++] = x->shape.d[k];
        else if (keep)
            out.d[out.rank++] = 1;
    }
    if ((rc = sp_check_numel(n, &out, err)))
        return rc;
    sp_node_set_out(g, n, 0, x->dtype, &out);
    return 0;
}

typedef struct red_job {
    int op, dt;
    const void *x;
    void *y;
    int nk, nr;                         /* kept / reduced (coalesced) dims */
    int64_t kd[SP_MAX_RANK], ks[SP_MAX_RANK];
    int64_t rd[SP_MAX_RANK], rs[SP_MAX_RANK];
    int64_t rtotal;
} red_job;

static double fin_f(int op, double acc, double mx, int64_t cnt)
{
    switch (op) {
    case R_MEAN: return acc / (double)cnt;
    case R_L2: return sqrt(acc);
    case R_LOGSUM: return log(acc);
    case R_LOGSUMEXP: return mx + log(acc);
    default: return acc;
    }
}

static double init_f(int op)
{
    switch (op) {
    case R_PROD: return 1.0;
    case R_MAX: return -INFINITY;
    case R_MIN: return INFINITY;
    default: return 0.0;
    }
}

static inline double step_f(int op, double acc, double v, double mx)
{
    switch (op) {
    case R_MAX: return v > acc || v != v ? v : acc;
    case R_MIN: return v < acc || v != v ? v : acc;
    case R_PROD: return acc * v;
    case R_SUMSQ: case R_L2: return acc + v * v;
    case R_L1: return acc + fabs(v);
    case R_LOGSUMEXP: return acc + exp(v - mx);
    default: return acc + v;
    }
}

static inline int64_t step_i(int op, int64_t acc, int64_t v)
{
    switch (op) {
    case R_MAX: return v > acc ? v : acc;
    case R_MIN: return v < acc ? v : acc;
    case R_PROD: return (int64_t)((uint64_t)acc * (uint64_t)v);
    case R_SUMSQ: return (int64_t)((uint64_t)acc + (uint64_t)v * (uint64_t)v);
    case R_L1: return (int64_t)((uint64_t)acc + (uint64_t)(v < 0 ? -(uint64_t)v : (uint64_t)v));
    default: return (int64_t)((uint64_t)acc + (uint64_t)v);
    }
}

/* Sum (or sum of squares) of a contiguous float run: 8 float lanes over
 * blocks of 256 elements (vectorisable), blocks added in double, so the
 * error stays that of a 256-term float sum. */
static double sum_f32(const float *x, int64_t R, int square)
{
    double acc = 0.0;
    for (int64_t b = 0; b < R; b += 256) {
        const int64_t e = b + 256 < R ? b + 256 : R;
        float l[8] = {0};
        int64_t r = b;
        if (square)
            for (; r + 8 <= e; r += 8)
                for (int k = 0; k < 8; k++)
                    l[k] += x[r + k] * x[r + k];
        else
            for (; r + 8 <= e; r += 8)
                for (int k = 0; k < 8; k++)
                    l[k] += x[r + k];
        float t = ((l[0] + l[1]) + (l[2] + l[3])) + ((l[4] + l[5]) + (l[6] + l[7]));
        for (; r < e; r++)
            t += square ? x[r] * x[r] : x[r];
        acc += t;
    }
    return acc;
}

/* Offset of reduced element r (odometer-free: division; used when nr > 1). */
static inline int64_t red_off(const red_job *j, int64_t r)
{
    int64_t off = 0;
    for (int k = j->nr - 1; k >= 0; k--) {
        off += (r % j->rd[k]) * j->rs[k];
        r /= j->rd[k];
    }
    return off;
}

static void red_range(void *arg, int64_t b, int64_t e)
{
    const red_job *j = arg;
    const int op = j->op, dt = j->dt;
    const int useint = sp_dt_is_int(dt) && op != R_L2 && op != R_LOGSUM && op != R_LOGSUMEXP;
    const int64_t R = j->rtotal;
    const int one = j->nr == 1;
    const int64_t rs0 = one ? j->rs[0] : 0;
    for (int64_t o = b; o < e; o++) {
        int64_t base = 0, t = o;
        for (int k = j->nk - 1; k >= 0; k--) {
            base += (t % j->kd[k]) * j->ks[k];
            t /= j->kd[k];
        }
        if (useint) {
            int64_t acc = op == R_PROD ? 1 : op == R_MAX ? INT64_MIN : op == R_MIN ? INT64_MAX : 0;
            for (int64_t r = 0; r < R; r++)
                acc = step_i(op, acc, sp_ld_i64(dt, j->x, base + (one ? r * rs0 : red_off(j, r))));
            if (op == R_MEAN)
                acc = R ? acc / R : 0;
            sp_st_i64(dt, j->y, o, acc);
            continue;
        }
        double mx = 0.0;
        if (op == R_LOGSUMEXP) {
            mx = -INFINITY;
            for (int64_t r = 0; r < R; r++) {
                double v = sp_ld_f64(dt, j->x, base + (one ? r * rs0 : red_off(j, r)));
                mx = v > mx ? v : mx;
            }
            if (!isfinite(mx))
                mx = 0.0;
        }
        double acc = init_f(op);
        if (dt == SPRUN_DTYPE_FLOAT && one && op != R_LOGSUMEXP) {
            const float *x = (const float *)j->x + base;
            if (rs0 == 1 && (op == R_SUM || op == R_MEAN || op == R_SUMSQ || op == R_L2)) {
                acc = sum_f32(x, R, op == R_SUMSQ || op == R_L2);
            } else {
                for (int64_t r = 0; r < R; r++)
                    acc = step_f(op, acc, x[r * rs0], mx);
            }
        } else {
            for (int64_t r = 0; r < R; r++)
                acc = step_f(op, acc, sp_ld_f64(dt, j->x, base + (one ? r * rs0 : red_off(j, r))), mx);
        }
        sp_st_f64(dt, j->y, o, fin_f(op, acc, mx, R));
    }
}

static int red_run(const sp_node *n, const sp_tensor *in, int n_in, sp_tensor *out, int n_out, const sp_cpu_ctx *ctx,
                   sp_err *err)
{
    (void)n_out;
    const sp_shape *xs = &in[0].shape;
    int64_t ax[SP_MAX_RANK], cnt;
    int rc;
    /* The graph's opset decides the form at infer time; here an axes input
     * that is present wins, else the attribute. */
    if (n_in >= 2 && in[1].data)
        rc = sp_tensor_ints(n, &in[1], ax, SP_MAX_RANK, &cnt, err);
    else if (n_in >= 2 && n->n_in >= 2 && n->in[1] >= 0)
        cnt = 0, rc = 0; /* an empty axes tensor */
    else
        rc = attr_axes(n, ax, &cnt, err);
    if (rc)
        return rc;
    int mask[SP_MAX_RANK], ident;
    if ((rc = red_mask(n, xs->rank, ax, cnt, mask, &ident, err)))
        return rc;
    const int64_t ototal = sp_shape_numel(&out[0].shape);
    if (ident) {
        sp_copy_bytes(out[0].data, in[0].data, (size_t)ototal * sp_dtype_size(in[0].dtype));
        return 0;
    }
    red_job j = {.op = red_code(n), .dt = in[0].dtype, .x = in[0].data, .y = out[0].data, .rtotal = 1};
    int64_t st[SP_MAX_RANK];
    sp_shape_strides(xs, st);
    /* coalesce: neighbouring dims of the same kind merge (row-major) */
    int last = -1;
    for (int k = 0; k < xs->rank; k++) {
        if (xs->d[k] == 1)
            continue;
        if (mask[k]) {
            if (last == 1)
                j.rd[j.nr - 1] *= xs->d[k], j.rs[j.nr - 1] = st[k];
            else
                j.rd[j.nr] = xs->d[k], j.rs[j.nr] = st[k], j.nr++;
            j.rtotal *= xs->d[k];
            last = 1;
        } else {
            if (last == 0)
                j.kd[j.nk - 1] *= xs->d[k], j.ks[j.nk - 1] = st[k];
            else
                j.kd[j.nk] = xs->d[k], j.ks[j.nk] = st[k], j.nk++;
            last = 0;
        }
    }
    if (j.nr == 0) { /* reducing only size-1 dims: one element each */
        j.rd[0] = 1;
        j.rs[0] = 0;
        j.nr = 1;
    }
    if (ototal <= 0)
        return 0;
    sp_par_for(ctx, ototal, 1 + 16384 / (j.rtotal + 1), red_range, &j);
    return 0;
}

#define RED_OP(var, name)                                                                             \
    static const sp_op_def var = {.op_type = name, .since_opset = 1, .flags = 0, .check = red_check, \
                                  .infer = red_infer, .cpu_run = red_run}

RED_OP(op_rsum, "ReduceSum");
RED_OP(op_rmean, "ReduceMean");
RED_OP(op_rmax, "ReduceMax");
RED_OP(op_rmin, "ReduceMin");
RED_OP(op_rprod, "ReduceProd");
RED_OP(op_rsumsq, "ReduceSumSquare");
RED_OP(op_rl1, "ReduceL1");
RED_OP(op_rl2, "ReduceL2");
RED_OP(op_rlogsum, "ReduceLogSum");
RED_OP(op_rlse, "ReduceLogSumExp");

const sp_op_def *const sp_ops_reduce[] = {
    &op_rsum, &op_rmean, &op_rmax, &op_rmin, &op_rprod, &op_rsumsq, &op_rl1, &op_rl2, &op_rlogsum, &op_rlse, NULL,
};
