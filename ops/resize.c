/*
 * resize.c - Resize (opset 10; 11+ with roi, scales or sizes; 18+ axes and
 * keep_aspect_ratio_policy) and Upsample (opset 7 scales attribute, 9 scales
 * input). Modes nearest (round_prefer_floor, round_prefer_ceil, floor,
 * ceil), linear and cubic (cubic_coeff_a, exclude_outside) over any number
 * of dims; every coordinate_transformation_mode (half_pixel,
 * half_pixel_symmetric, pytorch_half_pixel, align_corners, asymmetric,
 * tf_half_pixel_for_nn, tf_crop_and_resize with extrapolation_value).
 * antialias = 1 is refused (SPRUN_ERR_UNSUPPORTED). Resize-10 and Upsample
 * use the asymmetric transform and the "simple" nearest rule (floor when
 * upsampling, ceil when downsampling), as onnxruntime does.
 *
 * Scales/sizes decide the output shape and must be constant; roi may be a
 * run-time input. Interpolation is separable: cpu_run tabulates, for every
 * dim and output coordinate, up to 4 source indices and weights in scratch,
 * then every output element sums the product of its dims' taps (dims that
 * are not resized have a single tap of weight 1). Nearest copies elements of
 * any dtype; linear and cubic compute in double for FLOAT, FLOAT16 and
 * DOUBLE.
 */
#include "kernels/cpu/nn_cpu.h"
#include "kernels/cpu/tensor_cpu.h"

#include <math.h>
#include <string.h>

enum { RM_NEAREST, RM_LINEAR, RM_CUBIC };
enum { CT_HALF_PIXEL, CT_HALF_PIXEL_SYM, CT_PYTORCH, CT_ALIGN, CT_ASYM, CT_TF_NN, CT_TF_CROP };
enum { NM_FLOOR_HALF, NM_CEIL_HALF, NM_FLOOR, NM_CEIL, NM_SIMPLE };

typedef struct rs_cfg {
    int mode, ct, nm, exclude, legacy;
    double a, extrap;
} rs_cfg;

static int str_index(const char *s, const char *const *names, int n)
{
    for (int i = 0; i < n; i++)
        if (!strcmp(s, names[i]))
            return i;
    return -1;
}

static const char *const mode_names[] = {"nearest", "linear", "cubic"};
static const char *const ct_names[] = {"half_pixel", "half_pixel_symmetric", "pytorch_half_pixel", "align_corners",
                                       "asymmetric", "tf_half_pixel_for_nn", "tf_crop_and_resize"};
static const char *const nm_names[] = {"round_prefer_floor", "round_prefer_ceil", "floor", "ceil"};

/* Resize-10 and Upsample take X and scales only. */
static int rs_legacy(const sp_node *n) { return strcmp(n->op_type, "Upsample") == 0 || n->n_in <= 2; }

static int rs_config(const sp_node *n, rs_cfg *c, sp_err *err)
{
    const char *m = sp_attr_string(n, "mode", "nearest");
    if (!strcmp(m, "bilinear")) /* Upsample-7 spelling */
        m = "linear";
    c->mode = str_index(m, mode_names, 3);
    c->legacy = rs_legacy(n);
    const char *ct = sp_attr_string(n, "coordinate_transformation_mode", "half_pixel");
    const char *nm = sp_attr_string(n, "nearest_mode", "round_prefer_floor");
    c->ct = c->legacy ? CT_ASYM : str_index(ct, ct_names, 7);
    c->nm = c->legacy ? NM_SIMPLE : str_index(nm, nm_names, 4);
    c->a = sp_attr_float(n, "cubic_coeff_a", -0.75f);
    c->exclude = (int)sp_attr_int(n, "exclude_outside", 0);
    c->extrap = sp_attr_float(n, "extrapolation_value", 0.f);
    if (c->mode < 0 || (c->legacy && c->mode == RM_CUBIC))
        return sp_err_set(err, SPRUN_ERR_UNSUPPORTED, "%s: mode='%s' is not supported", SP_LABEL(n), m);
    if (c->ct < 0)
        return sp_err_set(err, SPRUN_ERR_UNSUPPORTED, "%s: coordinate_transformation_mode='%s' is not supported",
                          SP_LABEL(n), ct);
    if (c->nm < 0)
        return sp_err_set(err, SPRUN_ERR_UNSUPPORTED, "%s: nearest_mode='%s' is not supported", SP_LABEL(n), nm);
    if (sp_attr_int(n, "antialias", 0) != 0)
        return sp_err_set(err, SPRUN_ERR_UNSUPPORTED, "%s: antialias=1 is not supported", SP_LABEL(n));
    const char *kp = sp_attr_string(n, "keep_aspect_ratio_policy", "stretch");
    if (strcmp(kp, "stretch") && strcmp(kp, "not_larger") && strcmp(kp, "not_smaller"))
        return sp_err_set(err, SPRUN_ERR_UNSUPPORTED, "%s: keep_aspect_ratio_policy='%s' is not supported",
                          SP_LABEL(n), kp);
    return 0;
}

static int rs_check(const sp_graph *g, const sp_node *n, sp_err *err)
{
    (void)g;
    rs_cfg c;
    int rc = strcmp(n->op_type, "Upsample") == 0 ? sp_check_io(n, 1, 2, 1, 1, err) : sp_check_io(n, 1, 4, 1, 1, err);
    return rc ? rc : rs_config(n, &c, err);
}

/* Input positions of scales and sizes (-1: none). */
static void rs_inputs(const sp_node *n, int *si, int *zi)
{
    if (rs_legacy(n)) {
        *si = n->n_in >= 2 ? 1 : -1;
        *zi = -1;
    } else {
        *si = 2;
        *zi = n->n_in >= 4 ? 3 : -1;
    }
}

/* Output shape and per-dim scales from X's shape and the scales (ns
 * values, -1: none) or sizes (nz values, -1: none). */
static int rs_geom(const sp_node *n, const sp_shape *xs, const double *sc, int64_t ns, const int64_t *sz, int64_t nz,
                   sp_shape *out, double *scale, sp_err *err)
{
    const int r = xs->rank;
    int ax[SP_MAX_RANK];
    const int64_t *axv;
    int64_t na = sp_attr_ints(n, "axes", &axv);
    if (na < 0) {
        na = r;
        for (int k = 0; k < r; k++)
            ax[k] = k;
    } else {
        if (na > r)
            return sp_err_set(err, SPRUN_ERR_INVALID_ARGUMENT, "%s: %lld axes for rank %d", SP_LABEL(n),
                              (long long)na, r);
        for (int64_t i = 0; i < na; i++)
            if ((ax[i] = sp_axis(axv[i], r)) < 0)
                return sp_err_set(err, SPRUN_ERR_INVALID_ARGUMENT, "%s: axis %lld out of range", SP_LABEL(n),
                                  (long long)axv[i]);
    }
    *out = *xs;
    for (int k = 0; k < r; k++)
        scale[k] = 1.0;
    if (ns == 0)
        ns = -1;
    if (nz == 0)
        nz = -1;
    if (ns > 0 && nz > 0)
        return sp_err_set(err, SPRUN_ERR_INVALID_ARGUMENT, "%s: both scales and sizes are given", SP_LABEL(n));
    if (ns > 0) {
        if (ns != na)
            return sp_err_set(err, SPRUN_ERR_SHAPE, "%s: %lld scales for %lld axes", SP_LABEL(n), (long long)ns,
                              (long long)na);
        for (int64_t i = 0; i < na; i++) {
            if (!(sc[i] > 0.0))
                return sp_err_set(err, SPRUN_ERR_INVALID_ARGUMENT, "%s: scale %g must be positive", SP_LABEL(n),
                                  sc[i]);
            scale[ax[i]] = sc[i];
            const double od = floor((double)xs->d[ax[i]] * sc[i]);
            if (!(od < 72057594037927936.0)) /* 2^56, as sp_check_numel */
                return sp_err_set(err, SPRUN_ERR_SHAPE, "%s: scale %g makes dim %d too large", SP_LABEL(n), sc[i],
                                  ax[i]);
            out->d[ax[i]] = (int64_t)od;
        }
    } else if (nz > 0) {
        if (nz != na)
            return sp_err_set(err, SPRUN_ERR_SHAPE, "%s: %lld sizes for %lld axes", SP_LABEL(n), (long long)nz,
                              (long long)na);
        const char *kp = sp_attr_string(n, "keep_aspect_ratio_policy", "stretch");
        double s = strcmp(kp, "not_larger") == 0 ? INFINITY : 0.0;
        for (int64_t i = 0; i < na; i++) {
            if (sz[i] < 0)
                return sp_err_set(err, SPRUN_ERR_INVALID_ARGUMENT, "%s: negative size", SP_LABEL(n));
            double q = xs->d[ax[i]] ? (double)sz[i] / (double)xs->d[ax[i]] : 1.0;
            scale[ax[i]] = q;
            out->d[ax[i]] = sz[i];
            if (strcmp(kp, "not_larger") == 0 && q < s)
                s = q;
            if (strcmp(kp, "not_smaller") == 0 && q > s)
                s = q;
        }
        if (strcmp(kp, "stretch") != 0)
            for (int64_t i = 0; i < na; i++) {
                const double od = nearbyint(s * (double)xs->d[ax[i]]);
                if (!(od < 72057594037927936.0))
                    return sp_err_set(err, SPRUN_ERR_SHAPE, "%s: sizes make dim %d too large", SP_LABEL(n), ax[i]);
                scale[ax[i]] = s;
                out->d[ax[i]] = (int64_t)od;
            }
    } else {
        return sp_err_set(err, SPRUN_ERR_INVALID_ARGUMENT, "%s: neither scales nor sizes is given", SP_LABEL(n));
    }
    return sp_check_numel(n, out, err);
}

static int rs_infer(sp_graph *g, sp_node *n, sp_err *err)
{
    int rc;
    rs_cfg c;
    if ((rc = rs_config(n, &c, err)))
        return rc;
    if ((rc = sp_check_dtype(g, n, 0, sp_dt_numeric, "a numeric tensor", err)))
        return rc;
    const sp_value *x = sp_node_in(g, n, 0);
    if (c.mode != RM_NEAREST && !sp_dt_is_float(x->dtype))
        return sp_err_set(err, SPRUN_ERR_UNSUPPORTED, "%s: %s mode on %s (float types only)", SP_LABEL(n),
                          mode_names[c.mode], sp_dtype_name(x->dtype));
    int si, zi;
    rs_inputs(n, &si, &zi);
    double sc[SP_MAX_RANK];
    int64_t ns = -1, sz[SP_MAX_RANK], nz = -1;
    if (si < 0 && !strcmp(n->op_type, "Upsample")) {
        const float *fv;
        ns = sp_attr_floats(n, "scales", &fv);
        if (ns > SP_MAX_RANK)
            ns = SP_MAX_RANK + 1;
        for (int64_t i = 0; i < ns && i < SP_MAX_RANK; i++)
            sc[i] = fv[i];
    }
    const sp_value *sv = si >= 0 ? sp_node_in(g, n, si) : NULL;
    if (sv && sp_shape_numel(&sv->shape) > 0) {
        const void *d = sp_node_const(g, n, si);
        if (!d)
            return sp_err_datadep(err, g, n, si);
        if (!sp_dt_is_float(sv->dtype))
            return sp_err_set(err, SPRUN_ERR_INVALID_ARGUMENT, "%s: scales must be float", SP_LABEL(n));
        ns = sp_shape_numel(&sv->shape);
        if (ns > SP_MAX_RANK)
            return sp_err_set(err, SPRUN_ERR_SHAPE, "%s: too many scales", SP_LABEL(n));
        for (int64_t i = 0; i < ns; i++)
            sc[i] = sp_ld_f64(sv->dtype, d, i);
    }
    if (zi >= 0 && (rc = sp_in_ints(g, n, zi, sz, SP_MAX_RANK, &nz, err)))
        return rc;
    sp_shape out;
    double scale[SP_MAX_RANK];
    if ((rc = rs_geom(n, &x->shape, sc, ns, sz, nz, &out, scale, err)))
        return rc;
    sp_node_set_out(g, n, 0, x->dtype, &out);
    return 0;
}

/* One output coordinate's taps along one dim. */
typedef struct rs_tap {
    int64_t idx[4];
    double w[4];
    int nt;     /* taps used */
    int extrap; /* outside the roi crop: extrapolation_value */
} rs_tap;

static size_t rs_scratch(const sp_graph *g, const sp_node *n, int nthreads)
{
    (void)nthreads;
    const sp_value *y = sp_node_out(g, n, 0);
    int64_t t = 0;
    for (int k = 0; k < y->shape.rank; k++)
        t += y->shape.d[k];
    return (size_t)(t + 1) * sizeof(rs_tap);
}

static void cubic_coeffs(double t, double A, double *c)
{
    double x = t + 1.0;
    c[0] = ((A * x - 5.0 * A) * x + 8.0 * A) * x - 4.0 * A;
    c[1] = ((A + 2.0) * t - (A + 3.0)) * t * t + 1.0;
    x = 1.0 - t;
    c[2] = ((A + 2.0) * x - (A + 3.0)) * x * x + 1.0;
    x = 2.0 - t;
    c[3] = ((A * x - 5.0 * A) * x + 8.0 * A) * x - 4.0 * A;
}

static inline int64_t clampi(int64_t i, int64_t len) { return i < 0 ? 0 : (i >= len ? len - 1 : i); }

static void rs_make_taps(const rs_cfg *c, int64_t o, int64_t lin, int64_t lout, double scale, double r0, double r1,
                         rs_tap *t)
{
    const double x = (double)o;
    double xo;
    switch (c->ct) {
    case CT_HALF_PIXEL: xo = (x + 0.5) / scale - 0.5; break;
    case CT_HALF_PIXEL_SYM: {
        const double adj = (double)lout / (scale * (double)lin), center = (double)lin / 2.0;
        xo = center * (1.0 - adj) + (x + 0.5) / scale - 0.5;
        break;
    }
    case CT_PYTORCH: xo = lout > 1 ? (x + 0.5) / scale - 0.5 : 0.0; break;
    case CT_ALIGN: { /* the reference divides by the unrounded output length */
        const double lf = scale * (double)lin;
        xo = lf == 1.0 ? 0.0 : x * (double)(lin - 1) / (lf - 1.0);
        break;
    }
    case CT_TF_NN: xo = (x + 0.5) / scale; break;
    case CT_TF_CROP:
        xo = lout > 1 ? r0 * (double)(lin - 1) + x * (r1 - r0) * (double)(lin - 1) / (double)(lout - 1)
                      : 0.5 * (r0 + r1) * (double)(lin - 1);
        break;
    default: xo = x / scale; break;
    }
    t->extrap = c->ct == CT_TF_CROP && (xo < 0.0 || xo > (double)(lin - 1));
    if (c->mode == RM_NEAREST) {
        double f = floor(xo);
        int64_t i;
        switch (c->nm) {
        case NM_FLOOR_HALF: i = (int64_t)(xo - f == 0.5 ? f : nearbyint(xo)); break;
        case NM_CEIL_HALF: i = (int64_t)(xo - f == 0.5 ? f + 1.0 : nearbyint(xo)); break;
        case NM_FLOOR: i = (int64_t)f; break;
        case NM_CEIL: i = (int64_t)ceil(xo); break;
        default: i = (int64_t)(scale < 1.0 ? ceil(xo) : f); break;
        }
        t->nt = 1;
        t->idx[0] = clampi(i, lin);
        t->w[0] = 1.0;
        return;
    }
    const double f = floor(xo), fr = xo - f;
    const int64_t i0 = (int64_t)f;
    if (fr == 0.0 && i0 >= 0 && i0 < lin) { /* exact hit: one tap */
        t->nt = 1;
        t->idx[0] = i0;
        t->w[0] = 1.0;
        return;
    }
    if (c->mode == RM_LINEAR) {
        t->nt = 2;
        t->idx[0] = clampi(i0, lin);
        t->idx[1] = clampi(i0 + 1, lin);
        t->w[0] = 1.0 - fr;
        t->w[1] = fr;
        return;
    }
    cubic_coeffs(fr, c->a, t->w);
    double sum = 0.0;
    t->nt = 4;
    for (int k = 0; k < 4; k++) {
        const int64_t i = i0 - 1 + k;
        if (c->exclude && (i < 0 || i >= lin))
            t->w[k] = 0.0;
        sum += t->w[k];
        t->idx[k] = clampi(i, lin);
    }
    if (c->exclude && sum != 0.0)
        for (int k = 0; k < 4; k++)
            t->w[k] /= sum;
}

#define RS_MAX_COMBOS 4096

typedef struct rs_job {
    const rs_cfg *c;
    int r, dt;
    size_t es;
    const char *x;
    char *y;
    const sp_shape *xs, *ys;
    int64_t xst[SP_MAX_RANK];
    rs_tap *taps[SP_MAX_RANK];
    int last_simple; /* every last-dim tap is one index of weight 1, none extrapolated */
    int last_extrap; /* some last-dim tap is extrapolated */
    int last_nt;     /* 2 when every last-dim tap has exactly 2 taps, else 0 */
    int bad;
} rs_job;

/* Copies element lt[i].idx[0] of the source row at base into y[i]. */
#define RS_GATHER(T)                                                                                               \
    do {                                                                                                           \
        const T *xs_ = (const T *)j->x + base;                                                                     \
        T *ys_ = (T *)y;                                                                                           \
        for (int64_t i = 0; i < ow; i++)                                                                           \
            ys_[i] = xs_[lt[i].idx[0]];                                                                            \
    } while (0)

/* Widest row blended on the stack (wider rows sum the taps per element). */
#define RS_ROW 2048

static void rs_range(void *arg, int64_t b, int64_t e)
{
    rs_job *j = arg;
    const int r = j->r;
    const int64_t ow = j->ys->d[r - 1];
    /* combos of the outer dims' taps for the current row */
    int64_t coff[RS_MAX_COMBOS];
    double cw[RS_MAX_COMBOS];
    unsigned char fill[16] = {0};
    if (sp_dt_is_float(j->dt))
        sp_st_f64(j->dt, fill, 0, j->c->extrap);
    else
        sp_st_i64(j->dt, fill, 0, (int64_t)j->c->extrap);
    for (int64_t row = b; row < e; row++) {
        int64_t o[SP_MAX_RANK], rem = row;
        for (int k = r - 2; k >= 0; k--) {
            o[k] = rem % j->ys->d[k];
            rem /= j->ys->d[k];
        }
        int nc = 1, extrap = 0;
        coff[0] = 0;
        cw[0] = 1.0;
        for (int k = 0; k < r - 1 && nc > 0; k++) {
            const rs_tap *t = &j->taps[k][o[k]];
            extrap |= t->extrap;
            if (nc * t->nt > RS_MAX_COMBOS) {
                j->bad = 1;
                nc = 0;
                break;
            }
            for (int c = nc - 1; c >= 0; c--)
                for (int q = t->nt - 1; q >= 0; q--) {
                    coff[c * t->nt + q] = coff[c] + t->idx[q] * j->xst[k];
                    cw[c * t->nt + q] = cw[c] * t->w[q];
                }
            nc *= t->nt;
        }
        char *y = j->y + (size_t)(row * ow) * j->es;
        if (extrap || nc == 0) {
            for (int64_t i = 0; i < ow; i++)
                memcpy(y + (size_t)i * j->es, fill, j->es);
            continue;
        }
        const rs_tap *lt = j->taps[r - 1];
        if (nc == 1 && cw[0] == 1.0 && j->last_simple) { /* nearest: a gather along the row */
            const int64_t base = coff[0];
            switch (j->es) {
            case 1: RS_GATHER(uint8_t); break;
            case 2: RS_GATHER(uint16_t); break;
            case 4: RS_GATHER(uint32_t); break;
            default: RS_GATHER(uint64_t); break;
            }
            continue;
        }
        /* blend the nc source rows first, then interpolate along the row */
        double tmp[RS_ROW];
        const int64_t iw = j->xs->d[r - 1];
        if (iw <= RS_ROW) {
            for (int64_t k = 0; k < iw; k++)
                tmp[k] = 0.0;
            for (int c = 0; c < nc; c++) {
                if (j->dt == SPRUN_DTYPE_FLOAT) {
                    const float *xr = (const float *)j->x + coff[c];
                    for (int64_t k = 0; k < iw; k++)
                        tmp[k] += cw[c] * xr[k];
                } else {
                    for (int64_t k = 0; k < iw; k++)
                        tmp[k] += cw[c] * sp_ld_f64(j->dt, j->x, coff[c] + k);
                }
            }
        }
        if (iw <= RS_ROW && j->dt == SPRUN_DTYPE_FLOAT && !j->last_extrap) { /* the common case, branch-free */
            float *yf = (float *)j->y + row * ow;
            if (j->last_nt == 2)
                for (int64_t i = 0; i < ow; i++)
                    yf[i] = (float)(lt[i].w[0] * tmp[lt[i].idx[0]] + lt[i].w[1] * tmp[lt[i].idx[1]]);
            else
                for (int64_t i = 0; i < ow; i++) {
                    double acc = 0.0;
                    for (int q = 0; q < lt[i].nt; q++)
                        acc += lt[i].w[q] * tmp[lt[i].idx[q]];
                    yf[i] = (float)acc;
                }
            continue;
        }
        for (int64_t i = 0; i < ow; i++) {
            const rs_tap *t = &lt[i];
            if (t->extrap) {
                memcpy(y + (size_t)i * j->es, fill, j->es);
                continue;
            }
            double acc = 0.0;
            if (iw <= RS_ROW) {
                if (t->nt == 2) /* linear */
                    acc = t->w[0] * tmp[t->idx[0]] + t->w[1] * tmp[t->idx[1]];
                else
                    for (int q = 0; q < t->nt; q++)
                        acc += t->w[q] * tmp[t->idx[q]];
            } else {
                for (int c = 0; c < nc; c++) {
                    double s = 0.0;
                    for (int q = 0; q < t->nt; q++)
                        s += t->w[q] * sp_ld_f64(j->dt, j->x, coff[c] + t->idx[q]);
                    acc += cw[c] * s;
                }
            }
            if (j->dt == SPRUN_DTYPE_FLOAT)
                ((float *)j->y)[row * ow + i] = (float)acc;
            else
                sp_st_f64(j->dt, j->y, row * ow + i, acc);
        }
    }
}

static int rs_run(const sp_node *n, const sp_tensor *in, int n_in, sp_tensor *out, int n_out, const sp_cpu_ctx *ctx,
                  sp_err *err)
{
    (void)n_out;
    rs_cfg c;
    int rc;
    if ((rc = rs_config(n, &c, err)))
        return rc;
    const sp_shape *xs = &in[0].shape, *ys = &out[0].shape;
    const int r = xs->rank;
    int si, zi;
    rs_inputs(n, &si, &zi);
    double sc[SP_MAX_RANK], scale[SP_MAX_RANK];
    int64_t ns = -1, sz[SP_MAX_RANK], nz = -1;
    if (si < 0 && !strcmp(n->op_type, "Upsample")) {
        const float *fv;
        ns = sp_attr_floats(n, "scales", &fv);
        for (int64_t i = 0; i < ns && i < SP_MAX_RANK; i++)
            sc[i] = fv[i];
    }
    if (si >= 0 && si < n_in && in[si].data && sp_shape_numel(&in[si].shape) > 0) {
        ns = sp_shape_numel(&in[si].shape);
        if (ns > SP_MAX_RANK)
            return sp_err_set(err, SPRUN_ERR_SHAPE, "%s: too many scales", SP_LABEL(n));
        for (int64_t i = 0; i < ns; i++)
            sc[i] = sp_ld_f64(in[si].dtype, in[si].data, i);
    }
    if (zi >= 0 && zi < n_in && (rc = sp_tensor_ints(n, &in[zi], sz, SP_MAX_RANK, &nz, err)))
        return rc;
    sp_shape os;
    if ((rc = rs_geom(n, xs, sc, ns, sz, nz, &os, scale, err)))
        return rc;
    if (!sp_shape_equal(&os, ys))
        return sp_err_set(err, SPRUN_ERR_SHAPE, "%s: output shape changed since planning", SP_LABEL(n));
    /* roi: [starts..., ends...] over the axes (all dims without 'axes') */
    double r0[SP_MAX_RANK], r1[SP_MAX_RANK];
    for (int k = 0; k < r; k++)
        r0[k] = 0.0, r1[k] = 1.0;
    if (c.ct == CT_TF_CROP && !c.legacy && n_in > 1 && in[1].data) {
        const int64_t nr = sp_shape_numel(&in[1].shape);
        const int64_t *axv;
        int64_t na = sp_attr_ints(n, "axes", &axv);
        if (nr != 2 * (na < 0 ? r : na))
            return sp_err_set(err, SPRUN_ERR_SHAPE, "%s: roi has %lld values", SP_LABEL(n), (long long)nr);
        for (int64_t i = 0; i < nr / 2; i++) {
            int a = na < 0 ? (int)i : sp_axis(axv[i], r);
            r0[a] = sp_ld_f64(in[1].dtype, in[1].data, i);
            r1[a] = sp_ld_f64(in[1].dtype, in[1].data, nr / 2 + i);
        }
    }
    const int64_t total = sp_shape_numel(ys);
    if (total <= 0)
        return 0;
    if (sp_shape_numel(xs) == 0)
        return sp_err_set(err, SPRUN_ERR_SHAPE, "%s: cannot resize an empty tensor", SP_LABEL(n));
    int64_t ntaps = 0;
    for (int k = 0; k < r; k++)
        ntaps += ys->d[k];
    if ((rc = sp_nn_need_scratch(n, ctx, (size_t)(ntaps + 1) * sizeof(rs_tap), err)))
        return rc;
    rs_job j = {.c = &c, .r = r, .dt = in[0].dtype, .es = sp_dtype_size(in[0].dtype), .x = in[0].data,
                .y = out[0].data, .xs = xs, .ys = ys};
    sp_shape_strides(xs, j.xst);
    rs_tap *t = ctx->scratch;
    for (int k = 0; k < r; k++) {
        j.taps[k] = t;
        for (int64_t o = 0; o < ys->d[k]; o++)
            rs_make_taps(&c, o, xs->d[k], ys->d[k], scale[k], r0[k], r1[k], &t[o]);
        t += ys->d[k];
    }
    j.last_simple = 1;
    j.last_nt = 2;
    for (int64_t o = 0; o < ys->d[r - 1]; o++) {
        const rs_tap *lt = &j.taps[r - 1][o];
        if (lt->nt != 1 || lt->w[0] != 1.0 || lt->extrap)
            j.last_simple = 0;
        if (lt->nt != 2)
            j.last_nt = 0;
        j.last_extrap |= lt->extrap;
    }
    sp_par_for(ctx, total / ys->d[r - 1], 1 + 8192 / (ys->d[r - 1] + 1), rs_range, &j);
    if (j.bad)
        return sp_err_set(err, SPRUN_ERR_UNSUPPORTED, "%s: too many interpolated dims (over %d taps)", SP_LABEL(n),
                          RS_MAX_COMBOS);
    return 0;
}

static const sp_op_def op_resize = {
    .op_type = "Resize", .since_opset = 10, .flags = 0,
    .check = rs_check, .infer = rs_infer, .cpu_run = rs_run, .cpu_scratch = rs_scratch,
};
static const sp_op_def op_upsample = {
    .op_type = "Upsample", .since_opset = 7, .flags = 0,
    .check = rs_check, .infer = rs_infer, .cpu_run = rs_run, .cpu_scratch = rs_scratch,
};

const sp_op_def *const sp_ops_resize[] = {&op_resize, &op_upsample, NULL};
