/*
 * slice.c - Slice: opset 10+ (starts, ends, axes, steps as inputs) and
 * opset 1 (starts, ends, axes as attributes).
 *
 * Clamping follows the ONNX spec exactly: negative starts/ends get the dim
 * added; then for step > 0 both are clamped to [0, d], for step < 0 start to
 * [0, d-1] and end to [-1, d-1]; the count is max(0, ceil((end-start)/step)).
 * INT64_MAX / INT64_MIN ends (exporters' "to the end") clamp without overflow.
 */
#include "kernels/cpu/tensor_cpu.h"

#include <string.h>

typedef struct slice_par {
    int64_t start[SP_MAX_RANK], step[SP_MAX_RANK];
    sp_shape out;
} slice_par;

/* Computes the per-dim start/step and the output shape. */
static int slice_compute(const sp_node *n, const sp_shape *xs, const int64_t *st, int64_t nst, const int64_t *en,
                         int64_t nen, const int64_t *ax, int64_t nax, const int64_t *sp, int64_t nsp, slice_par *p,
                         sp_err *err)
{
    const int r = xs->rank;
    if (nst != nen)
        return sp_err_set(err, SPRUN_ERR_INVALID_ARGUMENT, "%s: starts has %lld entries, ends %lld", SP_LABEL(n),
                          (long long)nst, (long long)nen);
    if (nax >= 0 && nax != nst)
        return sp_err_set(err, SPRUN_ERR_INVALID_ARGUMENT, "%s: axes has %lld entries, starts %lld", SP_LABEL(n),
                          (long long)nax, (long long)nst);
    if (nsp >= 0 && nsp != nst)
        return sp_err_set(err, SPRUN_ERR_INVALID_ARGUMENT, "%s: steps has %lld entries, starts %lld", SP_LABEL(n),
                          (long long)nsp, (long long)nst);
    if (nst > r)
        return sp_err_set(err, SPRUN_ERR_INVALID_ARGUMENT, "%s: %lld slice entries for rank %d", SP_LABEL(n),
                          (long long)nst, r);
    p->out = *xs;
    int seen[SP_MAX_RANK] = {0};
    for (int k = 0; k < r; k++) {
        p->start[k] = 0;
        p->step[k] = 1;
    }
    for (int64_t i = 0; i < nst; i++) {
        const int a = nax >= 0 ? sp_axis(ax[i], r) : (int)i;
        if (a < 0)
            return sp_err_set(err, SPRUN_ERR_INVALID_ARGUMENT, "%s: axis %lld out of range for rank %d", SP_LABEL(n),
                              (long long)ax[i], r);
        if (seen[a]++)
            return sp_err_set(err, SPRUN_ERR_INVALID_ARGUMENT, "%s: axis %d repeated", SP_LABEL(n), a);
        const int64_t d = xs->d[a];
        const int64_t step = nsp >= 0 ? sp[i] : 1;
        if (step == 0)
            return sp_err_set(err, SPRUN_ERR_INVALID_ARGUMENT, "%s: step 0 on axis %d", SP_LABEL(n), a);
        int64_t s = st[i], e = en[i];
        if (s < 0)
            s += d; /* no overflow: s < 0 and d >= 0 */
        if (e < 0)
            e += d;
        int64_t cnt;
        if (step > 0) {
            s = s < 0 ? 0 : (s > d ? d : s);
            e = e < 0 ? 0 : (e > d ? d : e);
            cnt = e > s ? (e - s - 1) / step + 1 : 0;
        } else {
            s = s < 0 ? 0 : (s > d - 1 ? d - 1 : s);
            e = e < -1 ? -1 : (e > d - 1 ? d - 1 : e);
            cnt = s > e ? (int64_t)((uint64_t)(s - e - 1) / (0u - (uint64_t)step)) + 1 : 0;
        }
        p->start[a] = s;
        p->step[a] = step;
        p->out.d[a] = cnt;
    }
    return 0;
}

static int slice_check(const sp_graph *g, const sp_node *n, sp_err *err)
{
    if (g->opset < 10) {
        int rc = sp_check_io(n, 1, 1, 1, 1, err);
        if (rc)
            return rc;
        if (!sp_attr_find(n, "starts") || !sp_attr_find(n, "ends"))
            return sp_err_set(err, SPRUN_ERR_INVALID_ARGUMENT, "%s: attributes 'starts' and 'ends' are required",
                              SP_LABEL(n));
        return 0;
    }
    return sp_check_io(n, 3, 5, 1, 1, err);
}

static int attr_list(const sp_node *n, const char *name, int64_t *v, int64_t *cnt, sp_err *err)
{
    const int64_t *p;
    *cnt = sp_attr_ints(n, name, &p);
    if (*cnt > SP_MAX_RANK)
        return sp_err_set(err, SPRUN_ERR_INVALID_ARGUMENT, "%s: attribute '%s' has %lld entries", SP_LABEL(n), name,
                          (long long)*cnt);
    for (int64_t k = 0; k < *cnt; k++)
        v[k] = p[k];
    return 0;
}

static int slice_infer(sp_graph *g, sp_node *n, sp_err *err)
{
    const sp_value *x = sp_node_in(g, n, 0);
    int64_t v[4][SP_MAX_RANK], c[4] = {-1, -1, -1, -1};
    int rc;
    if ((rc = sp_check_dtype(g, n, 0, sp_dt_supported, "a numeric or bool tensor", err)))
        return rc;
    if (n->n_in >= 2) {
        for (int i = 0; i < 4; i++)
            if ((rc = sp_in_ints(g, n, i + 1, v[i], SP_MAX_RANK, &c[i], err)))
                return rc;
    } else if ((rc = attr_list(n, "starts", v[0], &c[0], err)) || (rc = attr_list(n, "ends", v[1], &c[1], err)) ||
               (rc = attr_list(n, "axes", v[2], &c[2], err))) {
        return rc;
    }
    slice_par p;
    if ((rc = slice_compute(n, &x->shape, v[0], c[0], v[1], c[1], v[2], c[2], v[3], c[3], &p, err)))
        return rc;
    sp_node_set_out(g, n, 0, x->dtype, &p.out);
    return 0;
}

static int slice_run(const sp_node *n, const sp_tensor *in, int n_in, sp_tensor *out, int n_out, const sp_cpu_ctx *ctx,
                     sp_err *err)
{
    (void)n_out; (void)ctx;
    int64_t v[4][SP_MAX_RANK], c[4] = {-1, -1, -1, -1};
    int rc;
    if (n->n_in >= 2) {
        for (int i = 0; i < 4; i++)
            if (i + 1 < n_in && (rc = sp_tensor_ints(n, &in[i + 1], v[i], SP_MAX_RANK, &c[i], err)))
                return rc;
    } else if ((rc = attr_list(n, "starts", v[0], &c[0], err)) || (rc = attr_list(n, "ends", v[1], &c[1], err)) ||
               (rc = attr_list(n, "axes", v[2], &c[2], err))) {
        return rc;
    }
    slice_par p;
    const sp_shape *xs = &in[0].shape;
    if ((rc = slice_compute(n, xs, v[0], c[0], v[1], c[1], v[2], c[2], v[3], c[3], &p, err)))
        return rc;
    const int64_t total = sp_shape_numel(&p.out);
    if (total <= 0)
        return 0;
    const size_t es = sp_dtype_size(in[0].dtype);
    const int r = xs->rank;
    if (r == 0) {
        memcpy(out[0].data, in[0].data, es);
        return 0;
    }
    int64_t xst[SP_MAX_RANK];
    sp_shape_strides(xs, xst);
    const int64_t inner = p.out.d[r - 1], istep = p.step[r - 1] * xst[r - 1];
    const int64_t rows = total / inner;
    int64_t idx[SP_MAX_RANK] = {0};
    int64_t base = 0;
    for (int k = 0; k < r; k++)
        base += p.start[k] * xst[k];
    const char *x = in[0].data;
    char *y = out[0].data;
    int64_t off = base;
    for (int64_t row = 0; row < rows; row++) {
        char *yr = y + (size_t)(row * inner) * es;
        if (istep == 1) {
            memcpy(yr, x + (size_t)off * es, (size_t)inner * es);
        } else {
            for (int64_t j = 0; j < inner; j++)
                memcpy(yr + (size_t)j * es, x + (size_t)(off + j * istep) * es, es);
        }
        for (int k = r - 2; k >= 0; k--) {
            off += p.step[k] * xst[k];
            if (++idx[k] < p.out.d[k])
                break;
            off -= p.step[k] * xst[k] * p.out.d[k];
            idx[k] = 0;
        }
    }
    return 0;
}

static const sp_op_def op_slice = {
    .op_type = "Slice", .since_opset = 1, .flags = 0,
    .check = slice_check, .infer = slice_infer, .cpu_run = slice_run,
};

const sp_op_def *const sp_ops_slice[] = {&op_slice, NULL};
