/* nn_cpu.c - window geometry, fp16 staging, epilogue and Conv/pool loops. */
/* The loops over the nn_cpu.h math vectorise only when GCC may assume FP
 * operations do not trap (nothing here reads FP exception flags). */
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC optimize("no-trapping-math")
#endif
#include "kernels/cpu/nn_cpu.h"

#include "runtime/half.h"

#include <cblas.h>
#include <float.h>
#include <math.h>
#include <stdatomic.h>
#include <string.h>

static int64_t floor_div(int64_t a, int64_t b) { return a >= 0 ? a / b : -((-a + b - 1) / b); }
static int64_t ceil_div(int64_t a, int64_t b) { return -floor_div(-a, b); }
static int64_t min64(int64_t a, int64_t b) { return a < b ? a : b; }
static int64_t max64(int64_t a, int64_t b) { return a > b ? a : b; }

/* Outputs o in [0, out) whose input position o*s + off lies in [0, in):
 * the range [*lo, *hi) (empty: lo == hi). */
static void valid_range(int64_t off, int64_t s, int64_t in, int64_t out, int64_t *lo, int64_t *hi)
{
    int64_t l = off >= 0 ? 0 : ceil_div(-off, s);
    int64_t h = off > in - 1 ? 0 : floor_div(in - 1 - off, s) + 1;
    *lo = min64(l, out);
    *hi = max64(*lo, min64(h, out));
}

int sp_nn_residual_index(const sp_node *n, int n_in)
{
    const int r = n->fusion.residual_input;
    return (r >= 2 && r < n_in) ? r : -1;
}

/* ------------------------------------------------------------------------ */
/* Window geometry                                                           */
/* ------------------------------------------------------------------------ */

static const char *const auto_pads[] = {"NOTSET", "SAME_UPPER", "SAME_LOWER", "VALID"};

static int auto_pad_mode(const sp_node *n)
{
    const char *s = sp_attr_string(n, "auto_pad", "NOTSET");
    for (int i = 0; i < 4; i++)
        if (strcmp(s, auto_pads[i]) == 0)
            return i;
    return -1;
}

int sp_win_check(const sp_node *n, int nsp, int allow_dilations, sp_err *err)
{
    char lb[256];
    const int64_t *ks, *st, *dl, *pd;
    int64_t nk = sp_attr_ints(n, "kernel_shape", &ks);
    int64_t ns = sp_attr_ints(n, "strides", &st);
    int64_t nd = sp_attr_ints(n, "dilations", &dl);
    int64_t np = sp_attr_ints(n, "pads", &pd);

    if (auto_pad_mode(n) < 0)
        return sp_err_set(err, SPRUN_ERR_UNSUPPORTED, "%s: auto_pad '%s' is not one of NOTSET, SAME_UPPER, "
                          "SAME_LOWER, VALID", sp_node_label(n, lb, sizeof lb), sp_attr_string(n, "auto_pad", ""));
    if (nd >= 0 && !allow_dilations)
        for (int64_t i = 0; i < nd; i++)
            if (dl[i] != 1)
                return sp_err_set(err, SPRUN_ERR_UNSUPPORTED, "%s: dilations other than 1 are not supported",
                                  sp_node_label(n, lb, sizeof lb));
    if (nsp < 0)
        nsp = (int)(nk >= 0 ? nk : ns >= 0 ? ns : nd >= 0 ? nd : np >= 0 ? np / 2 : -1);
    if (nsp == 0 || nsp > 3)
        return sp_err_set(err, SPRUN_ERR_UNSUPPORTED, "%s: %d spatial dims (1 to 3 are supported)",
                          sp_node_label(n, lb, sizeof lb), nsp);
    if (nsp < 0)
        return 0;
    if ((nk >= 0 && nk != nsp) || (ns >= 0 && ns != nsp) || (nd >= 0 && nd != nsp) || (np >= 0 && np != 2 * nsp))
        return sp_err_set(err, SPRUN_ERR_INVALID_ARGUMENT,
                          "%s: attribute lengths disagree with %d spatial dims (kernel_shape %lld, strides %lld, "
                          "dilations %lld, pads %lld)", sp_node_label(n, lb, sizeof lb), nsp, (long long)nk,
                          (long long)ns, (long long)nd, (long long)np);
    /* Values up to 2^31 keep every window product below 2^63. */
    for (int i = 0; i < nsp; i++) {
        if ((nk >= 0 && (ks[i] < 1 || ks[i] > SP_WIN_MAX)) || (ns >= 0 && (st[i] < 1 || st[i] > SP_WIN_MAX)) ||
            (nd >= 0 && (dl[i] < 1 || dl[i] > SP_WIN_MAX)))
            return sp_err_set(err, SPRUN_ERR_INVALID_ARGUMENT,
                              "%s: kernel_shape, strides and dilations must be in [1, 2^31)",
                              sp_node_label(n, lb, sizeof lb));
    }
    for (int i = 0; np >= 0 && i < 2 * nsp; i++) {
        if (pd[i] < 0)
            return sp_err_set(err, SPRUN_ERR_UNSUPPORTED, "%s: negative pads are not supported",
                              sp_node_label(n, lb, sizeof lb));
        if (pd[i] > SP_WIN_MAX)
            return sp_err_set(err, SPRUN_ERR_INVALID_ARGUMENT, "%s: pads must be below 2^31",
                              sp_node_label(n, lb, sizeof lb));
    }
    return 0;
}

int sp_win_compute(const sp_node *n, int nsp, const int64_t *in, const int64_t *k, int ceil_mode, sp_win *w,
                   sp_err *err)
{
    char lb[256];
    const int64_t *st, *dl, *pd;
    int64_t ns = sp_attr_ints(n, "strides", &st);
    int64_t nd = sp_attr_ints(n, "dilations", &dl);
    int64_t np = sp_attr_ints(n, "pads", &pd);
    int mode = auto_pad_mode(n);
    int rc = sp_win_check(n, nsp, 1, err);
    if (rc)
        return rc;

    w->nsp = nsp;
    for (int i = 0; i < 3; i++) {
        w->in[i] = w->out[i] = w->k[i] = w->s[i] = w->d[i] = 1;
        w->pb[i] = w->pe[i] = 0;
    }
    for (int i = 0; i < nsp; i++) {
        if (in[i] < 1 || in[i] > SP_WIN_MAX || k[i] < 1 || k[i] > SP_WIN_MAX)
            return sp_err_set(err, SPRUN_ERR_SHAPE, "%s: spatial dim %d: input %lld, kernel %lld (each in [1, 2^31))",
                              sp_node_label(n, lb, sizeof lb), i, (long long)in[i], (long long)k[i]);
    }
    for (int i = 0; i < nsp; i++) {
        const int j = 3 - nsp + i;
        const int64_t s = ns >= 0 ? st[i] : 1, d = nd >= 0 ? dl[i] : 1;
        const int64_t dk = d * (k[i] - 1) + 1;
        int64_t pb = 0, pe = 0, out;
        if (mode == 1 || mode == 2) { /* SAME_UPPER / SAME_LOWER */
            out = ceil_div(in[i], s);
            int64_t total = max64(0, (out - 1) * s + dk - in[i]);
            pb = mode == 1 ? total / 2 : total - total / 2;
            pe = total - pb;
        } else {
            if (mode == 0 && np >= 0) {
                pb = pd[i];
                pe = pd[i + nsp];
            }
            int64_t span = in[i] + pb + pe - dk;
            if (span < 0) {
                char sb[64];
                sp_shape sh = sp_shape_make(nsp, in);
                return sp_err_set(err, SPRUN_ERR_SHAPE,
                                  "%s: kernel extent %lld (kernel %lld, dilation %lld) exceeds padded input %lld "
                                  "in spatial dim %d (input spatial %s)", sp_node_label(n, lb, sizeof lb),
                                  (long long)dk, (long long)k[i], (long long)d, (long long)(in[i] + pb + pe), i,
                                  sp_shape_str(&sh, sb, sizeof sb));
            }
            if (ceil_mode) {
                out = ceil_div(span, s) + 1;
                /* The last window must start inside the input or its left
                 * padding (PyTorch's and ONNX's rule). */
                if ((out - 1) * s >= in[i] + pb)
                    out--;
            } else {
                out = span / s + 1;
            }
        }
        if (out < 1)
            return sp_err_set(err, SPRUN_ERR_SHAPE, "%s: empty output in spatial dim %d",
                              sp_node_label(n, lb, sizeof lb), i);
        w->in[j] = in[i];
        w->out[j] = out;
        w->k[j] = k[i];
        w->s[j] = s;
        w->d[j] = d;
        w->pb[j] = pb;
        w->pe[j] = pe;
    }
    return 0;
}

/* ------------------------------------------------------------------------ */
/* fp16 staging                                                              */
/* ------------------------------------------------------------------------ */

/* Types staged through fp32: FLOAT16, and the 8-bit integers MaxPool takes
 * (exact in fp32). */
static int staged_type(int dt)
{
    return dt == SPRUN_DTYPE_FLOAT16 || dt == SPRUN_DTYPE_INT8 || dt == SPRUN_DTYPE_UINT8;
}

static void widen(int dt, const void *src, float *f, int64_t cnt)
{
    for (int64_t e = 0; e < cnt; e++)
        f[e] = dt == SPRUN_DTYPE_FLOAT16 ? sp_f16_to_f32(((const uint16_t *)src)[e])
               : dt == SPRUN_DTYPE_INT8  ? (float)((const int8_t *)src)[e]
                                         : (float)((const uint8_t *)src)[e];
}

static void narrow(int dt, const float *f, void *dst, int64_t cnt)
{
    for (int64_t e = 0; e < cnt; e++) {
        if (dt == SPRUN_DTYPE_FLOAT16)
            ((uint16_t *)dst)[e] = sp_f32_to_f16(f[e]);
        else if (dt == SPRUN_DTYPE_INT8)
            ((int8_t *)dst)[e] = (int8_t)lrintf(f[e]);
        else
            ((uint8_t *)dst)[e] = (uint8_t)lrintf(f[e]);
    }
}

size_t sp_nn_stage_bytes(const sp_graph *g, const sp_node *n)
{
    size_t b = 0;
    for (int i = 0; i < n->n_in; i++) {
        const sp_value *v = sp_node_in(g, n, i);
        if (v && staged_type(v->dtype) && sp_shape_known(&v->shape))
            b += sp_nn_align((size_t)sp_shape_numel(&v->shape) * sizeof(float));
    }
    for (int i = 0; i < n->n_out; i++) {
        const sp_value *v = sp_node_out(g, n, i);
        if (v && staged_type(v->dtype) && sp_shape_known(&v->shape))
            b += sp_nn_align((size_t)sp_shape_numel(&v->shape) * sizeof(float));
    }
    return b;
}

int sp_nn_need_scratch(const sp_node *n, const sp_cpu_ctx *ctx, size_t need, sp_err *err)
{
    char lb[256];
    if (need == 0 || (ctx->scratch && ctx->scratch_bytes >= need))
        return 0;
    return sp_err_set(err, SPRUN_ERR_INTERNAL, "%s: needs %zu bytes of scratch, the plan gave %zu",
                      sp_node_label(n, lb, sizeof lb), need, ctx->scratch ? ctx->scratch_bytes : 0);
}

int sp_nn_run_staged(sp_nn_run_fn fn, const sp_node *n, const sp_tensor *in, int n_in, sp_tensor *out, int n_out,
                     const sp_cpu_ctx *ctx, sp_err *err)
{
    int any = 0;
    for (int i = 0; i < n_in; i++)
        any |= in[i].data && staged_type(in[i].dtype);
    for (int i = 0; i < n_out; i++)
        any |= out[i].data && staged_type(out[i].dtype);
    if (!any)
        return fn(n, in, n_in, out, n_out, ctx, err);

    char lb[256];
    if (n_in > SP_NN_MAX_IO || n_out > SP_NN_MAX_IO)
        return sp_err_set(err, SPRUN_ERR_UNSUPPORTED, "%s: too many inputs/outputs for fp16 staging",
                          sp_node_label(n, lb, sizeof lb));
    sp_tensor in2[SP_NN_MAX_IO], out2[SP_NN_MAX_IO];
    size_t used = 0;
    for (int pass = 0; pass < 2; pass++) { /* pass 0 sizes, pass 1 fills */
        used = 0;
        for (int i = 0; i < n_in + n_out; i++) {
            const sp_tensor *t = i < n_in ? &in[i] : &out[i - n_in];
            sp_tensor *t2 = i < n_in ? &in2[i] : &out2[i - n_in];
            if (pass)
                *t2 = *t;
            if (!t->data || !staged_type(t->dtype))
                continue;
            int64_t cnt = sp_shape_numel(&t->shape);
            if (pass) {
                /* an empty tensor gets a valid dummy address: ctx->scratch
                 * may be NULL when nothing needs staging room */
                static float empty_f32;
                float *f = cnt > 0 ? (float *)((char *)ctx->scratch + used) : &empty_f32;
                t2->dtype = SPRUN_DTYPE_FLOAT;
                t2->data = f;
                if (i < n_in)
                    widen(t->dtype, t->data, f, cnt);
            }
            used += sp_nn_align((size_t)cnt * sizeof(float));
        }
        if (!pass) {
            int rc = sp_nn_need_scratch(n, ctx, used, err);
            if (rc)
                return rc;
        }
    }
    sp_cpu_ctx c2 = *ctx;
    c2.scratch = ctx->scratch ? (char *)ctx->scratch + used : NULL;
    c2.scratch_bytes = ctx->scratch ? ctx->scratch_bytes - used : 0;
    if (c2.scratch_bytes == 0)
        c2.scratch = NULL;
    int rc = fn(n, in2, n_in, out2, n_out, &c2, err);
    if (rc)
        return rc;
    for (int i = 0; i < n_out; i++) {
        if (out[i].data && staged_type(out[i].dtype))
            narrow(out[i].dtype, out2[i].data, out[i].data, sp_shape_numel(&out[i].shape));
    }
    return 0;
}

size_t sp_nn_stage_scratch(const sp_graph *g, const sp_node *n, int nthreads)
{
    (void)nthreads;
    return sp_nn_stage_bytes(g, n);
}

void sp_nn_par_rows(const sp_cpu_ctx *ctx, int64_t rows, int64_t len, sp_range_fn fn, void *arg)
{
    int64_t grain = len > 0 ? 16384 / len : 1;
    sp_parallel_for(ctx, rows, grain < 1 ? 1 : grain, fn, arg);
}

void sp_nn_blas_threads(int nthreads)
{
    static atomic_int current;
    if (nthreads < 1)
        nthreads = 1;
    if (atomic_exchange(&current, nthreads) != nthreads)
        openblas_set_num_threads(nthreads);
}

/* ------------------------------------------------------------------------ */
/* Epilogue                                                                  */
/* ------------------------------------------------------------------------ */

void sp_epi_from_fusion(sp_epi *e, const sp_node *n, const sp_tensor *in, int n_in)
{
    e->bias = NULL;
    e->res = NULL;
    e->res_n = 0;
    e->act = n->fusion.act;
    e->alpha = n->fusion.alpha;
    e->beta = n->fusion.beta;
    int r = sp_nn_residual_index(n, n_in);
    if (r >= 0 && in[r].data) {
        e->res = in[r].data;
        e->res_n = sp_shape_numel(&in[r].shape);
    }
}

SP_NN_HOT
static void epi_row(const sp_epi *e, float *y, int64_t len, float b, const float *r, int64_t rlen)
{
    /* r: residual for this row, repeating every rlen elements (rlen == len
     * for an exact or row-periodic residual). */
    if (r && rlen < len) {
        for (int64_t j0 = 0; j0 < len; j0 += rlen)
            epi_row(e, y + j0, min64(rlen, len - j0), b, r, rlen);
        return;
    }
    switch (e->act) {
    case SP_ACT_NONE:
        if (r)
            for (int64_t j = 0; j < len; j++)
                y[j] = y[j] + b + r[j];
        else
            for (int64_t j = 0; j < len; j++)
                y[j] += b;
        break;
    case SP_ACT_RELU:
        if (r)
            for (int64_t j = 0; j < len; j++) {
                float v = y[j] + b + r[j];
                y[j] = v > 0.f ? v : 0.f;
            }
        else
            for (int64_t j = 0; j < len; j++) {
                float v = y[j] + b;
                y[j] = v > 0.f ? v : 0.f;
            }
        break;
    case SP_ACT_GELU:
        for (int64_t j = 0; j < len; j++) {
            float v = y[j] + b + (r ? r[j] : 0.f);
            y[j] = 0.5f * v * (1.f + sp_erff(v * 0.70710678118654752f));
        }
        break;
    case SP_ACT_SIGMOID:
        for (int64_t j = 0; j < len; j++)
            y[j] = sp_sigmoidf(y[j] + b + (r ? r[j] : 0.f));
        break;
    case SP_ACT_CLIP: /* Relu6 of MobileNets */
        for (int64_t j = 0; j < len; j++) {
            float v = y[j] + b + (r ? r[j] : 0.f);
            v = v < e->alpha ? e->alpha : v;
            y[j] = v > e->beta ? e->beta : v;
        }
        break;
    default:
        for (int64_t j = 0; j < len; j++)
            y[j] = sp_act_apply(e->act, y[j] + b + (r ? r[j] : 0.f), e->alpha, e->beta);
        break;
    }
}

void sp_epi_rows(const sp_epi *e, float *y, int64_t rows, int64_t len, int64_t ld, int64_t base, int64_t row0)
{
    for (int64_t r = 0; r < rows; r++) {
        const float b = e->bias ? e->bias[row0 + r] : 0.f;
        float *yr = y + r * ld;
        if (!e->res) {
            epi_row(e, yr, len, b, NULL, len);
            continue;
        }
        const int64_t flat = base + r * ld, off = flat % e->res_n;
        if (off + len <= e->res_n) {
            epi_row(e, yr, len, b, e->res + off, len);
        } else if (off == 0 && len % e->res_n == 0) {
            epi_row(e, yr, len, b, e->res, e->res_n);
        } else { /* generic period */
            for (int64_t j = 0; j < len; j++)
                yr[j] = sp_act_apply(e->act, yr[j] + b + e->res[(flat + j) % e->res_n], e->alpha, e->beta);
        }
    }
}

int sp_nn_check_residual(const sp_graph *g, const sp_node *n, const sp_shape *out, int allow_suffix, sp_err *err)
{
    int r = sp_nn_residual_index(n, n->n_in);
    if (r < 0)
        return 0;
    const sp_value *v = sp_node_in(g, n, r);
    char lb[256], a[128], b[128];
    if (!v)
        return sp_err_set(err, SPRUN_ERR_INVALID_ARGUMENT, "%s: fused residual input %d is absent",
                          sp_node_label(n, lb, sizeof lb), r);
    if (!sp_nn_float_type(v->dtype))
        return sp_err_set(err, SPRUN_ERR_UNSUPPORTED, "%s: fused residual has dtype %s",
                          sp_node_label(n, lb, sizeof lb), sp_dtype_name(v->dtype));
    if (sp_shape_equal(&v->shape, out))
        return 0;
    if (allow_suffix) {
        int lead = 0;
        while (lead < v->shape.rank && v->shape.d[lead] == 1)
            lead++;
        int rr = v->shape.rank - lead, ok = rr <= out->rank;
        for (int i = 0; ok && i < rr; i++)
            ok = v->shape.d[lead + i] == out->d[out->rank - rr + i];
        if (ok)
            return 0;
    }
    return sp_err_set(err, SPRUN_ERR_SHAPE, "%s: fused residual shape %s does not match output %s%s",
                      sp_node_label(n, lb, sizeof lb), sp_shape_str(&v->shape, a, sizeof a),
                      sp_shape_str(out, b, sizeof b), allow_suffix ? " (nor its trailing dims)" : "");
}

/* ------------------------------------------------------------------------ */
/* im2col                                                                    */
/* ------------------------------------------------------------------------ */

/* Rows [r0, r1) of the im2col matrix, columns [c0, c1) (column q is output
 * position (od*OH + oh)*OW + ow), into dst with row stride ld. */
SP_NN_HOT
static void im2col_block(const float *x, const sp_win *w, int64_t r0, int64_t r1, int64_t c0, int64_t c1, float *dst,
                         int64_t ld)
{
    const int64_t KD = w->k[0], KH = w->k[1], KW = w->k[2];
    const int64_t ID = w->in[0], IH = w->in[1], IW = w->in[2];
    const int64_t OH = w->out[1], OW = w->out[2];
    for (int64_t r = r0; r < r1; r++) {
        int64_t kw = r % KW, t = r / KW;
        int64_t kh = t % KH;
        t /= KH;
        int64_t kd = t % KD, c = t / KD;
        float *drow = dst + (r - r0) * ld - c0;
        const float *xc = x + c * ID * IH * IW;
        const int64_t iw0 = kw * w->d[2] - w->pb[2];
        int64_t lo, hi; /* ow range whose iw = ow*s + iw0 lies in [0, IW) */
        valid_range(iw0, w->s[2], IW, OW, &lo, &hi);
        for (int64_t q = c0; q < c1;) {
            const int64_t orow = q / OW, ow0 = q % OW, ow1 = min64(OW, ow0 + (c1 - q));
            const int64_t od = orow / OH, oh = orow % OH;
            const int64_t id = od * w->s[0] - w->pb[0] + kd * w->d[0];
            const int64_t ih = oh * w->s[1] - w->pb[1] + kh * w->d[1];
            float *d = drow + q - ow0; /* d[ow] is column (orow, ow) */
            if (id < 0 || id >= ID || ih < 0 || ih >= IH) {
                for (int64_t ow = ow0; ow < ow1; ow++)
                    d[ow] = 0.f;
            } else {
                const float *src = xc + (id * IH + ih) * IW + iw0;
                const int64_t a = max64(lo, ow0), b = max64(a, min64(hi, ow1));
                for (int64_t ow = ow0; ow < a; ow++)
                    d[ow] = 0.f;
                if (w->s[2] == 1)
                    memcpy(d + a, src + a, sizeof(float) * (size_t)(b - a));
                else
                    for (int64_t ow = a; ow < b; ow++)
                        d[ow] = src[ow * w->s[2]];
                for (int64_t ow = b; ow < ow1; ow++)
                    d[ow] = 0.f;
            }
            q += ow1 - ow0;
        }
    }
}

typedef struct im2col_args {
    const float *x;
    const sp_win *w;
    float *col;
    int64_t ncol;
} im2col_args;

static void im2col_range(void *arg, int64_t r0, int64_t r1)
{
    const im2col_args *a = arg;
    im2col_block(a->x, a->w, r0, r1, 0, a->ncol, a->col + r0 * a->ncol, a->ncol);
}

void sp_im2col(const sp_cpu_ctx *ctx, const float *x, int64_t cg, const sp_win *w, float *col)
{
    const int64_t rows = cg * w->k[0] * w->k[1] * w->k[2];
    const int64_t ncol = w->out[0] * w->out[1] * w->out[2];
    im2col_args a = {x, w, col, ncol};
    int64_t grain = 32768 / (ncol > 0 ? ncol : 1);
    sp_parallel_for(ctx, rows, grain < 1 ? 1 : grain, im2col_range, &a);
}

/* col2im (ConvTranspose): the adjoint of im2col. col is [m*KD*KH*KW, ncol]
 * over the geometry w whose "input" is the image y [m, ID, IH, IW] and
 * whose "output" positions are the columns; every column value is added
 * into y. Parallel over image channels (a channel's rows touch only it). */
typedef struct col2im_args {
    const float *col;
    const sp_win *w;
    float *y;
} col2im_args;

static void col2im_range(void *arg, int64_t m0, int64_t m1)
{
    const col2im_args *a = arg;
    const sp_win *w = a->w;
    const int64_t KD = w->k[0], KH = w->k[1], KW = w->k[2], kvol = KD * KH * KW;
    const int64_t ID = w->in[0], IH = w->in[1], IW = w->in[2];
    const int64_t OD = w->out[0], OH = w->out[1], OW = w->out[2], ncol = OD * OH * OW;
    for (int64_t m = m0; m < m1; m++) {
        float *ym = a->y + m * ID * IH * IW;
        for (int64_t kk = 0; kk < kvol; kk++) {
            const int64_t kw = kk % KW, kh = (kk / KW) % KH, kd = kk / (KW * KH);
            const float *src = a->col + (m * kvol + kk) * ncol;
            const int64_t iw0 = kw * w->d[2] - w->pb[2];
            int64_t lo, hi;
            valid_range(iw0, w->s[2], IW, OW, &lo, &hi);
            for (int64_t od = 0; od < OD; od++) {
                const int64_t id = od * w->s[0] - w->pb[0] + kd * w->d[0];
                if (id < 0 || id >= ID)
                    continue;
                for (int64_t oh = 0; oh < OH; oh++) {
                    const int64_t ih = oh * w->s[1] - w->pb[1] + kh * w->d[1];
                    if (ih < 0 || ih >= IH)
                        continue;
                    float *yr = ym + (id * IH + ih) * IW + iw0;
                    const float *sr = src + (od * OH + oh) * OW;
                    for (int64_t ow = lo; ow < hi; ow++)
                        yr[ow * w->s[2]] += sr[ow];
                }
            }
        }
    }
}

void sp_col2im(const sp_cpu_ctx *ctx, const float *col, int64_t m, const sp_win *w, float *y)
{
    col2im_args a = {col, w, y};
    sp_parallel_for(ctx, m, 1, col2im_range, &a);
}

/* ------------------------------------------------------------------------ */
/* Tiled GEMM: one single-threaded sgemm + epilogue per tile, tiles over the  */
/* pool (OpenBLAS's own threads would spin beside ours between calls)        */
/* ------------------------------------------------------------------------ */

/* Tiles for an m x n product over nthreads: columns when each thread gets
 * >= 32 of them, else rows when each gets >= 8, else one tile. */
static int64_t gemm_tiles(int64_t m, int64_t n, int nthreads, int *by_cols)
{
    *by_cols = 1;
    if (nthreads <= 1)
        return 1;
    if (n / nthreads >= 32)
        return n / 32 < nthreads ? n / 32 : nthreads;
    *by_cols = 0;
    if (m / nthreads >= 8)
        return m / 8 < nthreads ? m / 8 : nthreads;
    return 1;
}

static void tile_bounds(int64_t total, int64_t ntile, int64_t t, int64_t *b, int64_t *e)
{
    *b = total * t / ntile;
    *e = total * (t + 1) / ntile;
}

typedef struct gemm_tile_args {
    const sp_gemm_args *g;
    int64_t ntile;
    int by_cols;
} gemm_tile_args;

static void gemm_tile_range(void *arg, int64_t t0, int64_t t1)
{
    const gemm_tile_args *a = arg;
    const sp_gemm_args *g = a->g;
    for (int64_t t = t0; t < t1; t++) {
        int64_t r0 = 0, r1 = g->m, c0 = 0, c1 = g->n;
        if (a->by_cols)
            tile_bounds(g->n, a->ntile, t, &c0, &c1);
        else
            tile_bounds(g->m, a->ntile, t, &r0, &r1);
        if (r1 <= r0 || c1 <= c0)
            continue;
        const float *A = g->ta ? g->a + r0 : g->a + r0 * g->lda;
        const float *B = g->tb ? g->b + c0 * g->ldb : g->b + c0;
        float *C = g->c + r0 * g->ldc + c0;
        if (g->k > 0)
            cblas_sgemm(CblasRowMajor, g->ta ? CblasTrans : CblasNoTrans, g->tb ? CblasTrans : CblasNoTrans,
                        (int)(r1 - r0), (int)(c1 - c0), (int)g->k, g->alpha, A, (int)g->lda, B, (int)g->ldb, g->beta,
                        C, (int)g->ldc);
        else if (g->beta == 0.f)
            for (int64_t i = 0; i < r1 - r0; i++)
                memset(C + i * g->ldc, 0, sizeof(float) * (size_t)(c1 - c0));
        if (g->e && sp_epi_active(g->e))
            sp_epi_rows(g->e, C, r1 - r0, c1 - c0, g->ldc, g->epi_base + r0 * g->ldc + c0, g->epi_row0 + r0);
    }
}

void sp_gemm_par(const sp_cpu_ctx *ctx, const sp_gemm_args *g)
{
    gemm_tile_args a = {g, 1, 1};
    a.ntile = gemm_tiles(g->m, g->n, ctx->pool ? ctx->nthreads : 1, &a.by_cols);
    sp_nn_blas_threads(1);
    sp_parallel_for(ctx, a.ntile, 1, gemm_tile_range, &a);
}

/* Conv tiles over output columns: each tile im2cols its own columns into
 * its slice of the scratch, multiplies and applies the epilogue while the
 * block is in cache. */
typedef struct conv_tile_args {
    const float *x, *wt;
    const sp_win *w;
    int64_t k, m, ncol, ntile;
    float *col, *y;
    float beta;
    const sp_epi *e;
    int64_t epi_base, epi_row0;
} conv_tile_args;

static void conv_tile_range(void *arg, int64_t t0, int64_t t1)
{
    const conv_tile_args *a = arg;
    for (int64_t t = t0; t < t1; t++) {
        int64_t c0, c1;
        tile_bounds(a->ncol, a->ntile, t, &c0, &c1);
        if (c1 <= c0)
            continue;
        float *col = a->col + a->k * c0;
        im2col_block(a->x, a->w, 0, a->k, c0, c1, col, c1 - c0);
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)a->m, (int)(c1 - c0), (int)a->k, 1.f, a->wt,
                    (int)a->k, col, (int)(c1 - c0), a->beta, a->y + c0, (int)a->ncol);
        if (sp_epi_active(a->e))
            sp_epi_rows(a->e, a->y + c0, a->m, c1 - c0, a->ncol, a->epi_base + c0, a->epi_row0);
    }
}

void sp_conv_im2col_gemm(const sp_cpu_ctx *ctx, const float *x, int64_t cg, const sp_win *w, const float *wt,
                         int64_t m, float *col, float *y, float beta, const sp_epi *e, int64_t epi_base,
                         int64_t epi_row0)
{
    const int64_t k = cg * w->k[0] * w->k[1] * w->k[2];
    const int64_t ncol = w->out[0] * w->out[1] * w->out[2];
    int by_cols;
    int64_t ntile = gemm_tiles(m, ncol, ctx->pool ? ctx->nthreads : 1, &by_cols);
    if (by_cols) {
        conv_tile_args a = {x, wt, w, k, m, ncol, ntile, col, y, beta, e, epi_base, epi_row0};
        sp_nn_blas_threads(1);
        sp_parallel_for(ctx, ntile, 1, conv_tile_range, &a);
        return;
    }
    /* Few columns (late layers): one shared im2col, tiles over rows. */
    sp_im2col(ctx, x, cg, w, col);
    sp_gemm_args g = {0, 0, m, ncol, k, 1.f, wt, k, col, ncol, beta, y, ncol, e, epi_base, epi_row0};
    sp_gemm_par(ctx, &g);
}

/* ------------------------------------------------------------------------ */
/* Depthwise convolution                                                     */
/* ------------------------------------------------------------------------ */

#define DW_CHUNK 256
#define KW_TAB 32 /* kernel widths whose per-tap ow ranges are tabulated */

/* For each kw, the ow range [lo, hi) whose input column ow*s + kw*d - pad
 * lies inside the input; fills lo/hi when KW <= KW_TAB, returns 0 if not. */
static int kw_ranges(const sp_win *w, int64_t *lo, int64_t *hi)
{
    if (w->k[2] > KW_TAB)
        return 0;
    for (int64_t kw = 0; kw < w->k[2]; kw++)
        valid_range(kw * w->d[2] - w->pb[2], w->s[2], w->in[2], w->out[2], &lo[kw], &hi[kw]);
    return 1;
}

/* The ow range of tap kw within the chunk [o0, o1). */
static void chunk_range(const sp_win *w, const int64_t *lo_tab, const int64_t *hi_tab, int64_t kw, int64_t o0,
                        int64_t o1, int64_t *lo, int64_t *hi)
{
    if (lo_tab) {
        *lo = lo_tab[kw];
        *hi = hi_tab[kw];
    } else {
        valid_range(kw * w->d[2] - w->pb[2], w->s[2], w->in[2], w->out[2], lo, hi);
    }
    *lo = max64(*lo, o0);
    *hi = max64(*lo, min64(*hi, o1));
}

typedef struct dw_args {
    const float *x, *wt;
    float *y;
    int64_t c, mult;
    const sp_win *w;
    const sp_epi *e;
    const int64_t *lo, *hi; /* kw_ranges, or NULL */
} dw_args;

SP_NN_HOT
static void dw_range(void *arg, int64_t p0, int64_t p1)
{
    const dw_args *a = arg;
    const sp_win *w = a->w;
    const int64_t IH = w->in[1], IW = w->in[2], OH = w->out[1], OW = w->out[2];
    const int64_t KH = w->k[1], KW = w->k[2], sh = w->s[1], sw = w->s[2], dh = w->d[1], dwd = w->d[2];
    const int64_t M = a->c * a->mult;
    /* Blocks of whole rows when rows are short (late layers: 7x7, 14x14),
     * else one row in DW_CHUNK pieces: the per-block overhead (bias fill,
     * epilogue, copy) is paid per DW_CHUNK outputs, not per row. */
    const int64_t rows_per = OW <= DW_CHUNK ? DW_CHUNK / OW : 1;
    float acc[DW_CHUNK];
    for (int64_t p = p0; p < p1; p++) {
        const int64_t nb = p / M, m = p % M, c = m / a->mult;
        const float *xc = a->x + (nb * a->c + c) * IH * IW;
        const float *wk = a->wt + m * KH * KW;
        float *yp = a->y + p * OH * OW;
        const float b = a->e->bias ? a->e->bias[m] : 0.f;
        for (int64_t oh0 = 0; oh0 < OH; oh0 += rows_per) {
            const int64_t oh1 = min64(OH, oh0 + rows_per);
            for (int64_t o0 = 0; o0 < OW; o0 += DW_CHUNK) {
                const int64_t o1 = min64(OW, o0 + DW_CHUNK), len = o1 - o0, n = (oh1 - oh0) * len;
                for (int64_t j = 0; j < n; j++)
                    acc[j] = b;
                for (int64_t kh = 0; kh < KH; kh++)
                    for (int64_t kw = 0; kw < KW; kw++) {
                        const float wv = wk[kh * KW + kw];
                        const int64_t iw0 = kw * dwd - w->pb[2];
                        int64_t lo, hi;
                        chunk_range(w, a->lo, a->hi, kw, o0, o1, &lo, &hi);
                        for (int64_t oh = oh0; oh < oh1; oh++) {
                            const int64_t ih = oh * sh - w->pb[1] + kh * dh;
                            if (ih < 0 || ih >= IH)
                                continue;
                            const float *xr = xc + ih * IW + iw0;
                            float *ar = acc + (oh - oh0) * len - o0;
                            if (sw == 1)
                                for (int64_t ow = lo; ow < hi; ow++)
                                    ar[ow] += wv * xr[ow];
                            else
                                for (int64_t ow = lo; ow < hi; ow++)
                                    ar[ow] += wv * xr[ow * sw];
                        }
                    }
                /* epilogue on the buffer, then one copy: a residual that
                 * shares y's memory is read before y is written. The block
                 * is contiguous in y (whole rows, or one piece of a row). */
                const int64_t off = oh0 * OW + o0;
                const float *r = a->e->res ? a->e->res + p * OH * OW + off : NULL; /* exact shape */
                epi_row(a->e, acc, n, 0.f, r, n);
                memcpy(yp + off, acc, sizeof(float) * (size_t)n);
            }
        }
    }
}

void sp_conv_depthwise(const sp_cpu_ctx *ctx, const float *x, const float *wt, float *y, int64_t nb, int64_t c,
                       int64_t mult, const sp_win *w, const sp_epi *e)
{
    int64_t lo[KW_TAB], hi[KW_TAB];
    const int tab = kw_ranges(w, lo, hi);
    dw_args a = {x, wt, y, c, mult, w, e, tab ? lo : NULL, tab ? hi : NULL};
    sp_parallel_for(ctx, nb * c * mult, 1, dw_range, &a);
}

/* ------------------------------------------------------------------------ */
/* Pooling                                                                   */
/* ------------------------------------------------------------------------ */

/* Taps kk in [0, k) with start + kk*d in [lo, hi) form the range [*a, *b). */
static void tap_range(int64_t start, int64_t d, int64_t k, int64_t lo, int64_t hi, int64_t *a, int64_t *b)
{
    int64_t x = start >= lo ? 0 : ceil_div(lo - start, d);
    int64_t y = start >= hi ? 0 : min64(k, floor_div(hi - 1 - start, d) + 1);
    *a = min64(x, k);
    *b = max64(*a, y);
}

/* Tap ranges of one output position along one dim: [a, b) inside the input,
 * [pa, pb) inside the padded extent (count_include_pad's divisor). */
typedef struct pool_taps {
    int32_t a, b, pa, pb;
} pool_taps;

#define POOL_TAB 512 /* outputs per dim whose taps are tabulated (24 KiB of stack in all) */

static pool_taps taps_at(const sp_win *w, int dim, int64_t o)
{
    int64_t st = o * w->s[dim] - w->pb[dim], a, b, pa, pb;
    tap_range(st, w->d[dim], w->k[dim], 0, w->in[dim], &a, &b);
    tap_range(st, w->d[dim], w->k[dim], -w->pb[dim], w->in[dim] + w->pe[dim], &pa, &pb);
    return (pool_taps){(int32_t)a, (int32_t)b, (int32_t)pa, (int32_t)pb};
}

typedef struct pool_args {
    int kind, include_pad;
    const float *x;
    float *y;
    const sp_win *w;
    const pool_taps *tab[3]; /* per dim, or NULL: computed per output */
    const int64_t *kwlo, *kwhi; /* kw_ranges, or NULL */
} pool_args;

static pool_taps taps(const pool_args *a, int dim, int64_t o)
{
    return a->tab[dim] ? a->tab[dim][o] : taps_at(a->w, dim, o);
}

static void pool_range(void *arg, int64_t p0, int64_t p1)
{
    const pool_args *a = arg;
    const sp_win *w = a->w;
    const int64_t IH = w->in[1], IW = w->in[2];
    const int64_t OD = w->out[0], OH = w->out[1], OW = w->out[2];
    const int64_t dd = w->d[0], dh = w->d[1], dw = w->d[2];
    for (int64_t p = p0; p < p1; p++) {
        const float *xp = a->x + p * w->in[0] * IH * IW;
        float *yp = a->y + p * OD * OH * OW;
        for (int64_t od = 0; od < OD; od++) {
            const pool_taps td = taps(a, 0, od);
            const int64_t sd = od * w->s[0] - w->pb[0];
            for (int64_t oh = 0; oh < OH; oh++) {
                const pool_taps th = taps(a, 1, oh);
                const int64_t sh = oh * w->s[1] - w->pb[1];
                for (int64_t ow = 0; ow < OW; ow++) {
                    const pool_taps tw = taps(a, 2, ow);
                    const float *base = xp + ow * w->s[2] - w->pb[2];
                    float out;
                    if (a->kind == 0) {
                        float m = -INFINITY;
                        for (int64_t kd = td.a; kd < td.b; kd++)
                            for (int64_t kh = th.a; kh < th.b; kh++) {
                                const float *row = base + ((sd + kd * dd) * IH + sh + kh * dh) * IW;
                                for (int64_t kw = tw.a; kw < tw.b; kw++) {
                                    float v = row[kw * dw];
                                    m = v > m || v != v ? v : m;
                                }
                            }
                        out = m;
                    } else {
                        double s = 0.0;
                        for (int64_t kd = td.a; kd < td.b; kd++)
                            for (int64_t kh = th.a; kh < th.b; kh++) {
                                const float *row = base + ((sd + kd * dd) * IH + sh + kh * dh) * IW;
                                for (int64_t kw = tw.a; kw < tw.b; kw++)
                                    s += row[kw * dw];
                            }
                        int64_t cnt = a->include_pad ? (int64_t)(td.pb - td.pa) * (th.pb - th.pa) * (tw.pb - tw.pa)
                                                     : (int64_t)(td.b - td.a) * (th.b - th.a) * (tw.b - tw.a);
                        out = cnt > 0 ? (float)(s / (double)cnt) : 0.f;
                    }
                    yp[(od * OH + oh) * OW + ow] = out;
                }
            }
        }
    }
}

/* 1-D/2-D pools: a row of outputs accumulates tap by tap in a stack buffer,
 * each (kh, kw) over the ow range it covers (vectorisable, no per-output
 * bounds checks). */
SP_NN_HOT
static void pool_rows_range(void *arg, int64_t p0, int64_t p1)
{
    const pool_args *a = arg;
    const sp_win *w = a->w;
    const int64_t IH = w->in[1], IW = w->in[2], OH = w->out[1], OW = w->out[2];
    const int64_t KW = w->k[2], sw = w->s[2], dw = w->d[2];
    const int is_max = a->kind == 0;
    float acc[DW_CHUNK];
    for (int64_t p = p0; p < p1; p++) {
        const float *xp = a->x + p * IH * IW;
        float *yp = a->y + p * OH * OW;
        for (int64_t oh = 0; oh < OH; oh++) {
            const pool_taps th = taps(a, 1, oh);
            const int64_t sh = oh * w->s[1] - w->pb[1];
            for (int64_t o0 = 0; o0 < OW; o0 += DW_CHUNK) {
                const int64_t o1 = min64(OW, o0 + DW_CHUNK), len = o1 - o0;
                for (int64_t j = 0; j < len; j++)
                    acc[j] = is_max ? -INFINITY : 0.f;
                for (int64_t kh = th.a; kh < th.b; kh++) {
                    const float *xr = xp + (sh + kh * w->d[1]) * IW;
                    for (int64_t kw = 0; kw < KW; kw++) {
                        const int64_t iw0 = kw * dw - w->pb[2];
                        int64_t lo, hi;
                        chunk_range(w, a->kwlo, a->kwhi, kw, o0, o1, &lo, &hi);
                        float *ac = acc - o0;
                        if (is_max)
                            for (int64_t ow = lo; ow < hi; ow++) {
                                const float v = xr[ow * sw + iw0];
                                ac[ow] = (v > ac[ow] || v != v) ? v : ac[ow];
                            }
                        else
                            for (int64_t ow = lo; ow < hi; ow++)
                                ac[ow] += xr[ow * sw + iw0];
                    }
                }
                float *yo = yp + oh * OW + o0;
                if (is_max) {
                    memcpy(yo, acc, sizeof(float) * (size_t)len);
                    continue;
                }
                for (int64_t j = 0; j < len; j++) {
                    const pool_taps tw = taps(a, 2, o0 + j);
                    const int64_t cnt = a->include_pad ? (int64_t)(th.pb - th.pa) * (tw.pb - tw.pa)
                                                       : (int64_t)(th.b - th.a) * (tw.b - tw.a);
                    yo[j] = cnt > 0 ? acc[j] / (float)cnt : 0.f;
                }
            }
        }
    }
}

typedef struct argmax_args {
    const float *x;
    float *y;
    int64_t *idx;
    const sp_win *w;
    int col_major;
} argmax_args;

/* MaxPool with Indices: the first maximum in scan order; its index into the
 * whole input, the plane's part row-major (storage_order 0) or
 * column-major (1). */
static void argmax_range(void *arg, int64_t p0, int64_t p1)
{
    const argmax_args *a = arg;
    const sp_win *w = a->w;
    const int64_t ID = w->in[0], IH = w->in[1], IW = w->in[2], plane = ID * IH * IW;
    const int64_t OD = w->out[0], OH = w->out[1], OW = w->out[2];
    for (int64_t p = p0; p < p1; p++)
        for (int64_t od = 0; od < OD; od++)
            for (int64_t oh = 0; oh < OH; oh++)
                for (int64_t ow = 0; ow < OW; ow++) {
                    const pool_taps td = taps_at(w, 0, od), th = taps_at(w, 1, oh), tw = taps_at(w, 2, ow);
                    float m = -INFINITY;
                    int64_t best = -1;
                    for (int64_t kd = td.a; kd < td.b; kd++)
                        for (int64_t kh = th.a; kh < th.b; kh++)
                            for (int64_t kw = tw.a; kw < tw.b; kw++) {
                                const int64_t id = od * w->s[0] - w->pb[0] + kd * w->d[0];
                                const int64_t ih = oh * w->s[1] - w->pb[1] + kh * w->d[1];
                                const int64_t iw = ow * w->s[2] - w->pb[2] + kw * w->d[2];
                                const float v = a->x[p * plane + (id * IH + ih) * IW + iw];
                                if (v > m || best < 0) {
                                    m = v;
                                    best = a->col_major ? id + ID * (ih + IH * iw) : (id * IH + ih) * IW + iw;
                                }
                            }
                    const int64_t o = ((p * OD + od) * OH + oh) * OW + ow;
                    a->y[o] = m;
                    a->idx[o] = best < 0 ? 0 : p * plane + best;
                }
}

void sp_pool_argmax(const sp_cpu_ctx *ctx, const float *x, float *y, int64_t *indices, int col_major,
                    int64_t planes, const sp_win *w)
{
    argmax_args a = {x, y, indices, w, col_major};
    sp_parallel_for(ctx, planes, 1, argmax_range, &a);
}

void sp_pool(const sp_cpu_ctx *ctx, int kind, int count_include_pad, const float *x, float *y, int64_t planes,
             const sp_win *w)
{
    pool_taps tab[3][POOL_TAB];
    int64_t kwlo[KW_TAB], kwhi[KW_TAB];
    const int kwtab = kw_ranges(w, kwlo, kwhi);
    pool_args a = {kind, count_include_pad, x, y, w, {NULL, NULL, NULL}, kwtab ? kwlo : NULL, kwtab ? kwhi : NULL};
    for (int d = 0; d < 3; d++) {
        if (w->out[d] > POOL_TAB)
            continue;
        for (int64_t o = 0; o < w->out[d]; o++)
            tab[d][o] = taps_at(w, d, o);
        a.tab[d] = tab[d];
    }
    const int rows = w->in[0] == 1 && w->k[0] == 1 && w->out[0] == 1;
    sp_parallel_for(ctx, planes, 1, rows ? pool_rows_range : pool_range, &a);
}
