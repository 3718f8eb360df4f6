/*
 * conv.c - Conv (opset 1/11 semantics) and ConvTranspose, NCHW, 1-D/2-D/3-D.
 *
 * Lowering, per batch item and group:
 *   - 1x1, stride 1, no padding: Y_g = W_g * X_g straight from the input
 *     (X_g viewed as [Cg, spatial]), a tiled GEMM, no copy;
 *   - depthwise (group > 1, one input channel per group), 1-D/2-D: a direct
 *     kernel parallel over output channels (kernels/cpu/nn_cpu.c);
 *   - otherwise im2col into ctx->scratch and GEMM, tiled over the pool's
 *     threads by output columns (each tile im2cols, multiplies and finishes
 *     its own block) or, for few columns, by output channels.
 * The bias, a fused residual (exact output shape) and the fused activation
 * are applied per tile right after its GEMM; a residual that shares the
 * output's buffer is accumulated by the GEMM itself (beta = 1).
 */
#include "kernels/cpu/nn_cpu.h"
#include "ops/op.h"

#include <string.h>

/* Input slots other than the fused residual. */
static const sp_value *conv_in(const sp_graph *g, const sp_node *n, int i)
{
    return i == sp_nn_residual_index(n, n->n_in) ? NULL : sp_node_in(g, n, i);
}

static int conv_check(const sp_graph *g, const sp_node *n, sp_err *err)
{
    char lb[256];
    int rc;
    (void)g;
    if (n->n_in < 2 || !sp_node_in(g, n, 0) || !sp_node_in(g, n, 1))
        return sp_err_set(err, SPRUN_ERR_INVALID_ARGUMENT, "%s: needs inputs X and W",
                          sp_node_label(n, lb, sizeof lb));
    int extra = sp_nn_residual_index(n, n->n_in) >= 0;
    if (n->n_in > 3 + extra)
        return sp_err_set(err, SPRUN_ERR_INVALID_ARGUMENT, "%s: %d inputs (at most X, W, B)",
                          sp_node_label(n, lb, sizeof lb), n->n_in);
    if (n->n_out != 1)
        return sp_err_set(err, SPRUN_ERR_INVALID_ARGUMENT, "%s: %d outputs (expected 1)",
                          sp_node_label(n, lb, sizeof lb), n->n_out);
    if (sp_attr_int(n, "group", 1) < 1)
        return sp_err_set(err, SPRUN_ERR_INVALID_ARGUMENT, "%s: group %lld must be >= 1",
                          sp_node_label(n, lb, sizeof lb), (long long)sp_attr_int(n, "group", 1));
    if ((rc = sp_win_check(n, -1, 1, err)))
        return rc;
    for (int i = 0; i < n->n_in && i < 3; i++) {
        const sp_value *v = conv_in(g, n, i);
        if (v && v->dtype && !sp_nn_float_type(v->dtype))
            return sp_err_set(err, SPRUN_ERR_UNSUPPORTED, "%s: input %d has dtype %s (float32/float16 only)",
                              sp_node_label(n, lb, sizeof lb), i, sp_dtype_name(v->dtype));
    }
    return 0;
}

/* Geometry of a Conv from its input shapes. */
typedef struct conv_geom {
    int64_t nb, c, m, group, cg, mg, kvol, ncol;
    sp_win w;
} conv_geom;

static int conv_geometry(const sp_node *n, const sp_shape *xs, const sp_shape *ws, const sp_shape *bs,
                         conv_geom *cg, sp_err *err)
{
    char lb[256], a[128], b[128];
    if (xs->rank < 3 || xs->rank > 5)
        return sp_err_set(err, SPRUN_ERR_UNSUPPORTED, "%s: X has shape %s (rank 3 to 5 supported)",
                          sp_node_label(n, lb, sizeof lb), sp_shape_str(xs, a, sizeof a));
    if (ws->rank != xs->rank)
        return sp_err_set(err, SPRUN_ERR_SHAPE, "%s: W shape %s has a different rank from X shape %s",
                          sp_node_label(n, lb, sizeof lb), sp_shape_str(ws, a, sizeof a),
                          sp_shape_str(xs, b, sizeof b));
    const int nsp = xs->rank - 2;
    cg->nb = xs->d[0];
    cg->c = xs->d[1];
    cg->m = ws->d[0];
    cg->group = sp_attr_int(n, "group", 1);
    if (cg->c % cg->group || cg->m % cg->group || ws->d[1] * cg->group != cg->c)
        return sp_err_set(err, SPRUN_ERR_SHAPE,
                          "%s: X shape %s has %lld channels but W shape %s with group %lld expects %lld (and %lld "
                          "output channels must divide by the group)",
                          sp_node_label(n, lb, sizeof lb), sp_shape_str(xs, a, sizeof a), (long long)cg->c,
                          sp_shape_str(ws, b, sizeof b), (long long)cg->group, (long long)(ws->d[1] * cg->group),
                          (long long)cg->m);
    cg->cg = cg->c / cg->group;
    cg->mg = cg->m / cg->group;
    const int64_t *ks;
    int64_t nk = sp_attr_ints(n, "kernel_shape", &ks);
    if (nk >= 0) {
        if (nk != nsp)
            return sp_err_set(err, SPRUN_ERR_SHAPE, "%s: kernel_shape has %lld dims, X has %d spatial dims",
                              sp_node_label(n, lb, sizeof lb), (long long)nk, nsp);
        for (int i = 0; i < nsp; i++)
            if (ks[i] != ws->d[2 + i])
                return sp_err_set(err, SPRUN_ERR_SHAPE, "%s: kernel_shape disagrees with W shape %s",
                                  sp_node_label(n, lb, sizeof lb), sp_shape_str(ws, a, sizeof a));
    }
    if (bs && (bs->rank != 1 || bs->d[0] != cg->m))
        return sp_err_set(err, SPRUN_ERR_SHAPE, "%s: B shape %s, expected [%lld]", sp_node_label(n, lb, sizeof lb),
                          sp_shape_str(bs, a, sizeof a), (long long)cg->m);
    int rc = sp_win_compute(n, nsp, xs->d + 2, ws->d + 2, 0, &cg->w, err);
    if (rc)
        return rc;
    cg->kvol = cg->w.k[0] * cg->w.k[1] * cg->w.k[2];
    cg->ncol = cg->w.out[0] * cg->w.out[1] * cg->w.out[2];
    int64_t cols;
    if (__builtin_mul_overflow(cg->kvol, cg->ncol, &cols) || __builtin_mul_overflow(cols, cg->cg, &cols) ||
        cols > ((int64_t)1 << 40))
        return sp_err_set(err, SPRUN_ERR_SHAPE, "%s: X %s with W %s needs an im2col matrix beyond 2^40 elements",
                          sp_node_label(n, lb, sizeof lb), sp_shape_str(xs, a, sizeof a),
                          sp_shape_str(ws, b, sizeof b));
    return 0;
}

static int conv_infer(sp_graph *g, sp_node *n, sp_err *err)
{
    const sp_value *x = conv_in(g, n, 0), *w = conv_in(g, n, 1), *b = conv_in(g, n, 2);
    char lb[256];
    if (!sp_nn_float_type(x->dtype) || !sp_nn_float_type(w->dtype) || (b && !sp_nn_float_type(b->dtype)))
        return sp_err_set(err, SPRUN_ERR_UNSUPPORTED, "%s: dtypes %s/%s (float32/float16 only)",
                          sp_node_label(n, lb, sizeof lb), sp_dtype_name(x->dtype), sp_dtype_name(w->dtype));
    conv_geom cg;
    int rc = conv_geometry(n, &x->shape, &w->shape, b ? &b->shape : NULL, &cg, err);
    if (rc)
        return rc;
    sp_shape o = x->shape;
    o.d[1] = cg.m;
    for (int i = 0; i < cg.w.nsp; i++)
        o.d[2 + i] = cg.w.out[3 - cg.w.nsp + i];
    if ((rc = sp_nn_check_residual(g, n, &o, 0, err)))
        return rc;
    sp_node_set_out(g, n, 0, x->dtype, &o);
    return 0;
}

static int use_direct_1x1(const conv_geom *cg)
{
    const sp_win *w = &cg->w;
    for (int i = 0; i < 3; i++)
        if (w->k[i] != 1 || w->s[i] != 1 || w->pb[i] || w->pe[i])
            return 0;
    return 1;
}

static int use_depthwise(const conv_geom *cg) { return cg->group > 1 && cg->cg == 1 && cg->w.nsp <= 2; }

static size_t conv_scratch(const sp_graph *g, const sp_node *n, int nthreads)
{
    (void)nthreads;
    const sp_value *x = conv_in(g, n, 0), *w = conv_in(g, n, 1), *b = conv_in(g, n, 2);
    size_t stage = sp_nn_stage_bytes(g, n);
    conv_geom cg;
    sp_err e;
    if (!x || !w || conv_geometry(n, &x->shape, &w->shape, b ? &b->shape : NULL, &cg, &e))
        return stage;
    if (use_direct_1x1(&cg) || use_depthwise(&cg))
        return stage;
    return stage + sp_nn_align((size_t)(cg.cg * cg.kvol * cg.ncol) * sizeof(float));
}

static int conv_run_f32(const sp_node *n, const sp_tensor *in, int n_in, sp_tensor *out, int n_out,
                        const sp_cpu_ctx *ctx, sp_err *err)
{
    (void)n_out;
    const int ri = sp_nn_residual_index(n, n_in);
    const sp_tensor *x = &in[0], *wt = &in[1];
    const sp_tensor *b = (n_in > 2 && ri != 2 && in[2].data) ? &in[2] : NULL;
    conv_geom cg;
    int rc = conv_geometry(n, &x->shape, &wt->shape, b ? &b->shape : NULL, &cg, err);
    if (rc)
        return rc;
    sp_epi e;
    sp_epi_from_fusion(&e, n, in, n_in);
    e.bias = b ? b->data : NULL;
    const float *X = x->data, *W = wt->data;
    float *Y = out[0].data;

    if (use_depthwise(&cg)) {
        sp_conv_depthwise(ctx, X, W, Y, cg.nb, cg.c, cg.mg, &cg.w, &e);
        return 0;
    }

    const int direct = use_direct_1x1(&cg);
    const int64_t K = cg.cg * cg.kvol;
    const int64_t xsz = cg.c * cg.w.in[0] * cg.w.in[1] * cg.w.in[2];
    float *col = NULL;
    if (!direct) {
        size_t need = (size_t)(K * cg.ncol) * sizeof(float);
        if ((rc = sp_nn_need_scratch(n, ctx, need, err)))
            return rc;
        col = ctx->scratch;
    }
    /* A residual sharing the output buffer is accumulated by the GEMM. */
    const int accumulate = e.res && e.res == (const float *)Y;
    if (accumulate)
        e.res = NULL;
    const float beta = accumulate ? 1.f : 0.f;
    for (int64_t nb = 0; nb < cg.nb; nb++) {
        for (int64_t gi = 0; gi < cg.group; gi++) {
            const float *xg = X + nb * xsz + gi * cg.cg * (xsz / cg.c), *wg = W + gi * cg.mg * K;
            float *yg = Y + (nb * cg.m + gi * cg.mg) * cg.ncol;
            const int64_t base = (nb * cg.m + gi * cg.mg) * cg.ncol, row0 = gi * cg.mg;
            if (direct) {
                sp_gemm_args ga = {0, 0, cg.mg, cg.ncol, K, 1.f, wg, K, xg, cg.ncol, beta, yg, cg.ncol, &e, base, row0};
                sp_gemm_par(ctx, &ga);
            } else {
                sp_conv_im2col_gemm(ctx, xg, cg.cg, &cg.w, wg, cg.mg, col, yg, beta, &e, base, row0);
            }
        }
    }
    return 0;
}

SP_NN_STAGED(conv_run, conv_run_f32)

/* ------------------------------------------------------------------------ */
/* ConvTranspose: col = W_g^T X_g (a GEMM), then col2im adds col into Y.     */
/* ------------------------------------------------------------------------ */

typedef struct convt_geom {
    int64_t nb, c, m, group, cg, mg, kvol, isz, osz;
    int nsp;
    int64_t out[3];
    sp_win w; /* col2im geometry: "in" = Y's spatial dims, "out" = X's */
} convt_geom;

static int convt_geometry(const sp_node *n, const sp_shape *xs, const sp_shape *ws, const sp_shape *bs,
                          convt_geom *g, sp_err *err)
{
    char lb[256], a[128], b[128];
    if (xs->rank < 3 || xs->rank > 5 || ws->rank != xs->rank)
        return sp_err_set(err, SPRUN_ERR_SHAPE, "%s: X %s and W %s must have the same rank, 3 to 5",
                          sp_node_label(n, lb, sizeof lb), sp_shape_str(xs, a, sizeof a),
                          sp_shape_str(ws, b, sizeof b));
    const int nsp = xs->rank - 2;
    g->nsp = nsp;
    g->nb = xs->d[0];
    g->c = xs->d[1];
    g->group = sp_attr_int(n, "group", 1);
    if (ws->d[0] != g->c || g->c % g->group)
        return sp_err_set(err, SPRUN_ERR_SHAPE, "%s: X %s has %lld channels, W %s (group %lld) expects %lld",
                          sp_node_label(n, lb, sizeof lb), sp_shape_str(xs, a, sizeof a), (long long)g->c,
                          sp_shape_str(ws, b, sizeof b), (long long)g->group, (long long)ws->d[0]);
    g->cg = g->c / g->group;
    g->mg = ws->d[1];
    g->m = g->mg * g->group;
    if (bs && (bs->rank != 1 || bs->d[0] != g->m))
        return sp_err_set(err, SPRUN_ERR_SHAPE, "%s: B %s, expected [%lld]", sp_node_label(n, lb, sizeof lb),
                          sp_shape_str(bs, a, sizeof a), (long long)g->m);
    const int64_t *ks, *st, *dl, *pd, *op, *os;
    const int64_t nk = sp_attr_ints(n, "kernel_shape", &ks), ns = sp_attr_ints(n, "strides", &st);
    const int64_t nd = sp_attr_ints(n, "dilations", &dl), np = sp_attr_ints(n, "pads", &pd);
    const int64_t nop = sp_attr_ints(n, "output_padding", &op), nos = sp_attr_ints(n, "output_shape", &os);
    if ((nk >= 0 && nk != nsp) || (ns >= 0 && ns != nsp) || (nd >= 0 && nd != nsp) || (np >= 0 && np != 2 * nsp) ||
        (nop >= 0 && nop != nsp) || (nos >= 0 && nos != nsp && nos != nsp + 2))
        return sp_err_set(err, SPRUN_ERR_INVALID_ARGUMENT,
                          "%s: kernel_shape/strides/dilations/pads/output_padding/output_shape lengths disagree "
                          "with %d spatial dims", sp_node_label(n, lb, sizeof lb), nsp);
    const char *ap = sp_attr_string(n, "auto_pad", "NOTSET");
    const int same = !strcmp(ap, "SAME_UPPER") || !strcmp(ap, "SAME_LOWER"), upper = !strcmp(ap, "SAME_UPPER");
    sp_win *w = &g->w;
    w->nsp = nsp;
    for (int i = 0; i < 3; i++) {
        w->in[i] = w->out[i] = w->k[i] = w->s[i] = w->d[i] = g->out[i] = 1;
        w->pb[i] = w->pe[i] = 0;
    }
    g->kvol = g->isz = g->osz = 1;
    for (int i = 0; i < nsp; i++) {
        const int j = 3 - nsp + i;
        const int64_t in = xs->d[2 + i], k = ws->d[2 + i], s = ns >= 0 ? st[i] : 1, d = nd >= 0 ? dl[i] : 1;
        const int64_t opad = nop >= 0 ? op[i] : 0;
        if ((nk >= 0 && ks[i] != k) || s < 1 || d < 1 || opad < 0 || s > SP_WIN_MAX || d > SP_WIN_MAX ||
            opad > SP_WIN_MAX || in < 1 || in > SP_WIN_MAX || k < 1 || k > SP_WIN_MAX ||
            (np >= 0 && (pd[i] < 0 || pd[i + nsp] < 0 || pd[i] > SP_WIN_MAX || pd[i + nsp] > SP_WIN_MAX)) ||
            (nos >= 0 && (os[nos - nsp + i] < 1 || os[nos - nsp + i] > SP_WIN_MAX)))
            return sp_err_set(err, SPRUN_ERR_INVALID_ARGUMENT,
                              "%s: kernel_shape disagrees with W %s, or a stride, dilation, pad, output_padding, "
                              "output_shape or dim is outside its range ([0 or 1, 2^31))",
                              sp_node_label(n, lb, sizeof lb), sp_shape_str(ws, a, sizeof a));
        const int64_t full = s * (in - 1) + opad + d * (k - 1) + 1;
        int64_t out, pb, pe;
        if (nos >= 0 || same) {
            out = nos >= 0 ? os[nos - nsp + i] : in * s;
            /* total < 0 (output_shape beyond the full output) extends the
             * end: floor division, as the ONNX reference computes it */
            const int64_t total = full - out, half = total >= 0 ? total / 2 : -((-total + 1) / 2);
            pb = upper ? half : total - half;
            pe = total - pb;
        } else {
            pb = (np >= 0 && strcmp(ap, "VALID") != 0) ? pd[i] : 0;
            pe = (np >= 0 && strcmp(ap, "VALID") != 0) ? pd[i + nsp] : 0;
            out = full - pb - pe;
        }
        if (out < 1)
            return sp_err_set(err, SPRUN_ERR_SHAPE, "%s: empty output in spatial dim %d",
                              sp_node_label(n, lb, sizeof lb), i);
        g->out[j] = out;
        w->in[j] = out;
        w->out[j] = in;
        w->k[j] = k;
        w->s[j] = s;
        w->d[j] = d;
        w->pb[j] = pb;
        w->pe[j] = pe;
        g->kvol *= k;
        g->isz *= in;
        g->osz *= out;
    }
    return 0;
}

static int convt_check(const sp_graph *g, const sp_node *n, sp_err *err)
{
    char lb[256];
    if (n->n_in < 2 || n->n_in > 3 || !sp_node_in(g, n, 0) || !sp_node_in(g, n, 1) || n->n_out != 1)
        return sp_err_set(err, SPRUN_ERR_INVALID_ARGUMENT, "%s: expects X, W, optional B and one output",
                          sp_node_label(n, lb, sizeof lb));
    if (sp_attr_int(n, "group", 1) < 1)
        return sp_err_set(err, SPRUN_ERR_INVALID_ARGUMENT, "%s: group must be >= 1", sp_node_label(n, lb, sizeof lb));
    const char *ap = sp_attr_string(n, "auto_pad", "NOTSET");
    if (strcmp(ap, "NOTSET") && strcmp(ap, "SAME_UPPER") && strcmp(ap, "SAME_LOWER") && strcmp(ap, "VALID"))
        return sp_err_set(err, SPRUN_ERR_UNSUPPORTED, "%s: auto_pad '%s' is not one of NOTSET, SAME_UPPER, "
                          "SAME_LOWER, VALID", sp_node_label(n, lb, sizeof lb), ap);
    for (int i = 0; i < n->n_in; i++) {
        const sp_value *v = sp_node_in(g, n, i);
        if (v && v->dtype && !sp_nn_float_type(v->dtype))
            return sp_err_set(err, SPRUN_ERR_UNSUPPORTED, "%s: input %d has dtype %s (float32/float16 only)",
                              sp_node_label(n, lb, sizeof lb), i, sp_dtype_name(v->dtype));
    }
    return 0;
}

static int convt_infer(sp_graph *g, sp_node *n, sp_err *err)
{
    const sp_value *x = sp_node_in(g, n, 0), *w = sp_node_in(g, n, 1), *b = sp_node_in(g, n, 2);
    convt_geom cg;
    int rc = convt_geometry(n, &x->shape, &w->shape, b ? &b->shape : NULL, &cg, err);
    if (rc)
        return rc;
    sp_shape o = x->shape;
    o.d[1] = cg.m;
    for (int i = 0; i < cg.nsp; i++)
        o.d[2 + i] = cg.out[3 - cg.nsp + i];
    sp_node_set_out(g, n, 0, x->dtype, &o);
    return 0;
}

static size_t convt_scratch(const sp_graph *g, const sp_node *n, int nthreads)
{
    (void)nthreads;
    const sp_value *x = sp_node_in(g, n, 0), *w = sp_node_in(g, n, 1), *b = sp_node_in(g, n, 2);
    size_t stage = sp_nn_stage_bytes(g, n);
    convt_geom cg;
    sp_err e;
    if (!x || !w || convt_geometry(n, &x->shape, &w->shape, b ? &b->shape : NULL, &cg, &e))
        return stage;
    return stage + sp_nn_align((size_t)(cg.mg * cg.kvol * cg.isz) * sizeof(float));
}

static int convt_run_f32(const sp_node *n, const sp_tensor *in, int n_in, sp_tensor *out, int n_out,
                         const sp_cpu_ctx *ctx, sp_err *err)
{
    (void)n_out;
    const sp_tensor *b = n_in > 2 && in[2].data ? &in[2] : NULL;
    convt_geom cg;
    int rc = convt_geometry(n, &in[0].shape, &in[1].shape, b ? &b->shape : NULL, &cg, err);
    if (rc)
        return rc;
    const int64_t rows = cg.mg * cg.kvol;
    if ((rc = sp_nn_need_scratch(n, ctx, (size_t)(rows * cg.isz) * sizeof(float), err)))
        return rc;
    const float *X = in[0].data, *W = in[1].data, *B = b ? b->data : NULL;
    float *Y = out[0].data, *col = ctx->scratch;
    for (int64_t nb = 0; nb < cg.nb; nb++)
        for (int64_t gi = 0; gi < cg.group; gi++) {
            float *yg = Y + (nb * cg.m + gi * cg.mg) * cg.osz;
            for (int64_t m = 0; m < cg.mg; m++) {
                const float bv = B ? B[gi * cg.mg + m] : 0.f;
                for (int64_t i = 0; i < cg.osz; i++)
                    yg[m * cg.osz + i] = bv;
            }
            sp_gemm_args ga = {1, 0, rows, cg.isz, cg.cg, 1.f, W + gi * cg.cg * rows, rows,
                               X + (nb * cg.c + gi * cg.cg) * cg.isz, cg.isz, 0.f, col, cg.isz, NULL, 0, 0};
            sp_gemm_par(ctx, &ga);
            sp_col2im(ctx, col, cg.mg, &cg.w, yg);
        }
    return 0;
}

SP_NN_STAGED(convt_run, convt_run_f32)

static const sp_op_def op_convtranspose = {
    .op_type = "ConvTranspose",
    .since_opset = 1,
    .check = convt_check,
    .infer = convt_infer,
    .cpu_run = convt_run,
    .cpu_scratch = convt_scratch,
};

static const sp_op_def op_conv = {
    .op_type = "Conv",
    .since_opset = 1,
    .flags = SP_OPF_FUSABLE,
    .check = conv_check,
    .infer = conv_infer,
    .cpu_run = conv_run,
    .cpu_scratch = conv_scratch,
};

const sp_op_def *const sp_ops_conv[] = {&op_conv, &op_convtranspose, NULL};
