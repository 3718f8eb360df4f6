/*
 * pad.c - Pad: opset 2-10 (attributes pads, mode, value) and opset 11+
 * (inputs data, pads, optional constant_value, optional axes from opset 18).
 * Modes constant, reflect, edge and wrap; negative pads crop. pads and axes
 * decide the output shape, so they must be constant (the data-dependent
 * error otherwise); constant_value may be a run-time input.
 *
 * Each output row (last dim) maps back to one source row, or to the fill
 * value in constant mode. Negative pads crop first and the mode then pads
 * the cropped view, as the reference does. The in-range middle of a row is
 * one memcpy; only the padded borders are mapped element by element.
 */
#include "kernels/cpu/tensor_cpu.h"

#include <string.h>

enum { PAD_CONSTANT, PAD_REFLECT, PAD_EDGE, PAD_WRAP };

static int pad_mode(const sp_node *n)
{
    const char *m = sp_attr_string(n, "mode", "constant");
    if (!strcmp(m, "constant")) return PAD_CONSTANT;
    if (!strcmp(m, "reflect")) return PAD_REFLECT;
    if (!strcmp(m, "edge")) return PAD_EDGE;
    if (!strcmp(m, "wrap")) return PAD_WRAP;
    return -1;
}

static int pad_attr_form(const sp_node *n) { return sp_attr_find(n, "pads") != NULL || n->n_in < 2 || n->in[1] < 0; }

static int pad_check(const sp_graph *g, const sp_node *n, sp_err *err)
{
    (void)g;
    int rc = sp_check_io(n, 1, 4, 1, 1, err);
    if (rc)
        return rc;
    if (pad_mode(n) < 0)
        return sp_err_set(err, SPRUN_ERR_UNSUPPORTED, "%s: mode='%s' (constant, reflect, edge or wrap)",
                          SP_LABEL(n), sp_attr_string(n, "mode", ""));
    return 0;
}

/* Turns the raw pads (and axes, count -1 when absent) into per-dim begin and
 * end pads for rank r. */
static int pad_resolve(const sp_node *n, int r, const int64_t *pads, int64_t np, const int64_t *axes, int64_t na,
                       int64_t *pb, int64_t *pe, sp_err *err)
{
    const int64_t lim = (int64_t)1 << 56; /* as sp_check_numel: dim + pads cannot overflow */
    for (int64_t i = 0; i < np; i++)
        if (pads[i] > lim || pads[i] < -lim)
            return sp_err_set(err, SPRUN_ERR_SHAPE, "%s: pad %lld is out of range", SP_LABEL(n), (long long)pads[i]);
    for (int k = 0; k < r; k++)
        pb[k] = pe[k] = 0;
    if (na < 0) {
        if (np != 2 * r)
            return sp_err_set(err, SPRUN_ERR_SHAPE, "%s: %lld pads for rank %d (expected %d)", SP_LABEL(n),
                              (long long)np, r, 2 * r);
        for (int k = 0; k < r; k++) {
            pb[k] = pads[k];
            pe[k] = pads[r + k];
        }
        return 0;
    }
    if (np != 2 * na)
        return sp_err_set(err, SPRUN_ERR_SHAPE, "%s: %lld pads for %lld axes", SP_LABEL(n), (long long)np,
                          (long long)na);
    for (int64_t i = 0; i < na; i++) {
        int a = sp_axis(axes[i], r);
        if (a < 0)
            return sp_err_set(err, SPRUN_ERR_INVALID_ARGUMENT, "%s: axis %lld out of range for rank %d", SP_LABEL(n),
                              (long long)axes[i], r);
        pb[a] = pads[i];
        pe[a] = pads[na + i];
    }
    return 0;
}

static int pad_infer(sp_graph *g, sp_node *n, sp_err *err)
{
    int rc;
    if ((rc = sp_check_dtype(g, n, 0, sp_dt_supported, "a numeric or bool tensor", err)))
        return rc;
    const sp_value *x = sp_node_in(g, n, 0);
    const int r = x->shape.rank;
    int64_t pads[2 * SP_MAX_RANK], axes[SP_MAX_RANK], np, na = -1, pb[SP_MAX_RANK], pe[SP_MAX_RANK];
    if (pad_attr_form(n)) {
        const int64_t *pv;
        np = sp_attr_ints(n, "pads", &pv);
        if (np < 0 || np > 2 * SP_MAX_RANK)
            return sp_err_set(err, SPRUN_ERR_INVALID_ARGUMENT, "%s: attribute 'pads' missing or too long",
                              SP_LABEL(n));
        memcpy(pads, pv, (size_t)np * sizeof *pads);
    } else {
        if ((rc = sp_in_ints(g, n, 1, pads, 2 * SP_MAX_RANK, &np, err)) ||
            (rc = sp_in_ints(g, n, 3, axes, SP_MAX_RANK, &na, err)))
            return rc;
        const sp_value *cv = sp_node_in(g, n, 2);
        if (cv && cv->dtype && cv->dtype != x->dtype)
            return sp_err_set(err, SPRUN_ERR_INVALID_ARGUMENT, "%s: constant_value dtype %s differs from data %s",
                              SP_LABEL(n), sp_dtype_name(cv->dtype), sp_dtype_name(x->dtype));
        if (cv && sp_shape_numel(&cv->shape) > 1)
            return sp_err_set(err, SPRUN_ERR_SHAPE, "%s: constant_value must be a scalar", SP_LABEL(n));
    }
    if ((rc = pad_resolve(n, r, pads, np, axes, na, pb, pe, err)))
        return rc;
    const int mode = pad_mode(n);
    sp_shape out = {.rank = r};
    for (int k = 0; k < r; k++) {
        out.d[k] = x->shape.d[k] + pb[k] + pe[k];
        if (out.d[k] < 0)
            return sp_err_set(err, SPRUN_ERR_SHAPE, "%s: pads make dim %d negative", SP_LABEL(n), k);
        const int64_t kept = x->shape.d[k] + (pb[k] < 0 ? pb[k] : 0) + (pe[k] < 0 ? pe[k] : 0);
        if (mode != PAD_CONSTANT && out.d[k] > 0 && kept <= 0)
            return sp_err_set(err, SPRUN_ERR_SHAPE, "%s: cannot pad an empty dim %d in this mode", SP_LABEL(n), k);
    }
    if ((rc = sp_check_numel(n, &out, err)))
        return rc;
    sp_node_set_out(g, n, 0, x->dtype, &out);
    return 0;
}

/* Source index of output position o (pre-shift by the begin pad) along a dim
 * of size len, or -1 for the fill value. */
static inline int64_t pad_src(int mode, int64_t i, int64_t len)
{
    if (i >= 0 && i < len)
        return i;
    switch (mode) {
    case PAD_EDGE: return i < 0 ? 0 : len - 1;
    case PAD_WRAP: {
        int64_t m = i % len;
        return m < 0 ? m + len : m;
    }
    case PAD_REFLECT: {
        if (len == 1)
            return 0;
        const int64_t p = 2 * (len - 1);
        int64_t m = i % p;
        if (m < 0)
            m += p;
        return m < len ? m : p - m;
    }
    default: return -1;
    }
}

typedef struct pad_job {
    const char *x;
    char *y;
    size_t es;
    int r, mode;
    const int64_t *yd;
    int64_t xd[SP_MAX_RANK]; /* the cropped view's dims */
    int64_t pb[SP_MAX_RANK]; /* positive begin pads */
    int64_t cb[SP_MAX_RANK]; /* elements cropped at the begin */
    int64_t xst[SP_MAX_RANK];
    unsigned char fill[16];
} pad_job;

static void pad_fill(char *dst, const unsigned char *fill, size_t es, int64_t cnt)
{
    for (int64_t i = 0; i < cnt; i++)
        memcpy(dst + (size_t)i * es, fill, es);
}

static void pad_range(void *arg, int64_t b, int64_t e)
{
    const pad_job *j = arg;
    const int r = j->r;
    const int64_t ow = j->yd[r - 1], iw = j->xd[r - 1], pw = j->pb[r - 1];
    const size_t es = j->es;
    for (int64_t row = b; row < e; row++) {
        char *y = j->y + (size_t)(row * ow) * es;
        int64_t off = 0, rem = row;
        int fill = 0;
        for (int k = r - 2; k >= 0; k--) {
            const int64_t o = rem % j->yd[k];
            rem /= j->yd[k];
            const int64_t s = pad_src(j->mode, o - j->pb[k], j->xd[k]);
            if (s < 0) {
                fill = 1;
                break;
            }
            off += (s + j->cb[k]) * j->xst[k];
        }
        if (fill) {
            pad_fill(y, j->fill, es, ow);
            continue;
        }
        const char *x = j->x + (size_t)(off + j->cb[r - 1]) * es;
        /* middle: output o with 0 <= o - pw < iw */
        int64_t lo = pw < 0 ? 0 : pw, hi = pw + iw;
        if (hi > ow)
            hi = ow;
        if (lo > hi)
            lo = hi;
        if (hi > lo)
            memcpy(y + (size_t)lo * es, x + (size_t)(lo - pw) * es, (size_t)(hi - lo) * es);
        for (int64_t o = 0; o < ow; o++) {
            if (o == lo && hi > lo) {
                o = hi - 1;
                continue;
            }
            const int64_t s = pad_src(j->mode, o - pw, iw);
            if (s < 0)
                memcpy(y + (size_t)o * es, j->fill, es);
            else
                memcpy(y + (size_t)o * es, x + (size_t)s * es, es);
        }
    }
}

static int pad_run(const sp_node *n, const sp_tensor *in, int n_in, sp_tensor *out, int n_out, const sp_cpu_ctx *ctx,
                   sp_err *err)
{
    (void)n_out;
    const sp_shape *xs = &in[0].shape;
    const int r = xs->rank;
    int64_t pads[2 * SP_MAX_RANK], axes[SP_MAX_RANK], np, na = -1, pb[SP_MAX_RANK], pe[SP_MAX_RANK];
    pad_job j = {.x = in[0].data, .y = out[0].data, .es = sp_dtype_size(in[0].dtype), .r = r, .mode = pad_mode(n),
                 .yd = out[0].shape.d};
    int rc;
    if (pad_attr_form(n)) {
        const int64_t *pv;
        np = sp_attr_ints(n, "pads", &pv);
        memcpy(pads, pv, (size_t)np * sizeof *pads);
        if (sp_dt_is_float(in[0].dtype))
            sp_st_f64(in[0].dtype, j.fill, 0, sp_attr_float(n, "value", 0.f));
        else
            sp_st_i64(in[0].dtype, j.fill, 0, (int64_t)sp_attr_float(n, "value", 0.f));
    } else {
        if ((rc = sp_tensor_ints(n, &in[1], pads, 2 * SP_MAX_RANK, &np, err)) ||
            (n_in > 3 && (rc = sp_tensor_ints(n, &in[3], axes, SP_MAX_RANK, &na, err))))
            return rc;
        if (n_in > 2 && in[2].data && sp_shape_numel(&in[2].shape) == 1)
            memcpy(j.fill, in[2].data, j.es);
    }
    if ((rc = pad_resolve(n, r, pads, np, axes, na, pb, pe, err)))
        return rc;
    const int64_t total = sp_shape_numel(&out[0].shape);
    if (total <= 0)
        return 0;
    if (r == 0) {
        memcpy(j.y, j.x, j.es);
        return 0;
    }
    sp_shape_strides(xs, j.xst);
    for (int k = 0; k < r; k++) { /* negative pads crop first, then the mode pads the cropped view */
        j.cb[k] = pb[k] < 0 ? -pb[k] : 0;
        j.pb[k] = pb[k] > 0 ? pb[k] : 0;
        j.xd[k] = xs->d[k] - j.cb[k] - (pe[k] < 0 ? -pe[k] : 0);
        if (j.xd[k] < 0) /* overcropped (constant mode only): all fill */
            j.xd[k] = 0;
    }
    const int64_t rows = total / out[0].shape.d[r - 1];
    sp_par_for(ctx, rows, 1 + 16384 / (out[0].shape.d[r - 1] + 1), pad_range, &j);
    return 0;
}

static const sp_op_def op_pad = {
    .op_type = "Pad", .since_opset = 2, .flags = 0,
    .check = pad_check, .infer = pad_infer, .cpu_run = pad_run,
};

const sp_op_def *const sp_ops_pad[] = {&op_pad, NULL};
