/*
 * conv.c - Conv (opset 1/11 semantics), NCHW, 1-D/2-D/3-D.
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

static const sp_op_def op_conv = {
    .op_type = "Conv",
    .since_opset = 1,
    .flags = SP_OPF_FUSABLE,
    .check = conv_check,
    .infer = conv_infer,
    .cpu_run = conv_run,
    .cpu_scratch = conv_scratch,
};

const sp_op_def *const sp_ops_conv[] = {&op_conv, NULL};
