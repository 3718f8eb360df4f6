/*
 * space_depth.c - DepthToSpace (mode DCR or CRD) and SpaceToDepth on
 * [N, C, H, W] tensors of any dtype: pure index permutations, one memcpy
 * per output element run along W.
 */
#include "kernels/cpu/tensor_cpu.h"

#include <string.h>

static int sd_d2s(const sp_node *n) { return n->op_type[0] == 'D'; }

static int sd_check(const sp_graph *g, const sp_node *n, sp_err *err)
{
    (void)g;
    int rc = sp_check_io(n, 1, 1, 1, 1, err);
    if (rc)
        return rc;
    if (sp_attr_int(n, "blocksize", 0) < 1)
        return sp_err_set(err, SPRUN_ERR_INVALID_ARGUMENT, "%s: attribute 'blocksize' must be >= 1", SP_LABEL(n));
    const char *m = sp_attr_string(n, "mode", "DCR");
    if (sd_d2s(n) && strcmp(m, "DCR") && strcmp(m, "CRD"))
        return sp_err_set(err, SPRUN_ERR_UNSUPPORTED, "%s: mode='%s' (DCR or CRD)", SP_LABEL(n), m);
    return 0;
}

static int sd_infer(sp_graph *g, sp_node *n, sp_err *err)
{
    int rc;
    char s1[128];
    if ((rc = sp_check_dtype(g, n, 0, sp_dt_supported, "a numeric or bool tensor", err)))
        return rc;
    const sp_value *x = sp_node_in(g, n, 0);
    const int64_t b = sp_attr_int(n, "blocksize", 1);
    if (x->shape.rank != 4)
        return sp_err_set(err, SPRUN_ERR_SHAPE, "%s: input %s must have rank 4", SP_LABEL(n),
                          sp_shape_str(&x->shape, s1, sizeof s1));
    if (b > (sd_d2s(n) ? x->shape.d[1] : (x->shape.d[2] > x->shape.d[3] ? x->shape.d[2] : x->shape.d[3])) &&
        sp_shape_numel(&x->shape) > 0)
        return sp_err_set(err, SPRUN_ERR_SHAPE, "%s: blocksize %lld is larger than the dims of %s", SP_LABEL(n),
                          (long long)b, sp_shape_str(&x->shape, s1, sizeof s1));
    if (b > (int64_t)1 << 28)
        return sp_err_set(err, SPRUN_ERR_SHAPE, "%s: blocksize %lld is too large", SP_LABEL(n), (long long)b);
    sp_shape o = x->shape;
    if (sd_d2s(n)) {
        if (x->shape.d[1] % (b * b))
            return sp_err_set(err, SPRUN_ERR_SHAPE, "%s: channels of %s not divisible by blocksize^2 = %lld",
                              SP_LABEL(n), sp_shape_str(&x->shape, s1, sizeof s1), (long long)(b * b));
        o.d[1] /= b * b;
        o.d[2] *= b;
        o.d[3] *= b;
    } else {
        if (x->shape.d[2] % b || x->shape.d[3] % b)
            return sp_err_set(err, SPRUN_ERR_SHAPE, "%s: spatial dims of %s not divisible by blocksize %lld",
                              SP_LABEL(n), sp_shape_str(&x->shape, s1, sizeof s1), (long long)b);
        o.d[1] *= b * b;
        o.d[2] /= b;
        o.d[3] /= b;
    }
    sp_node_set_out(g, n, 0, x->dtype, &o);
    return 0;
}

typedef struct sd_job {
    const char *x;
    char *y;
    size_t es;
    int d2s, crd;
    int64_t b, C, H, W; /* the depth-side tensor: [N, C, H, W] with C = c*b*b */
} sd_job;

/* One unit: (n, c, h) of the space-side tensor [N, c, H*b, W*b] row by row;
 * element (n, c, hh, ww) maps to depth-side channel ch and pixel (h, w). */
static void sd_range(void *arg, int64_t u0, int64_t u1)
{
    const sd_job *j = arg;
    const int64_t b = j->b, c = j->C / (b * b), HB = j->H * b, WB = j->W * b;
    for (int64_t u = u0; u < u1; u++) {
        const int64_t hh = u % HB, ci = (u / HB) % c, nb = u / (HB * c);
        const int64_t h = hh / b, bh = hh % b;
        for (int64_t ww = 0; ww < WB; ww++) {
            const int64_t w = ww / b, bw = ww % b;
            const int64_t ch = j->crd ? (ci * b + bh) * b + bw : (bh * b + bw) * c + ci;
            const int64_t dep = ((nb * j->C + ch) * j->H + h) * j->W + w;
            const int64_t spa = u * WB + ww;
            if (j->d2s)
                memcpy(j->y + (size_t)spa * j->es, j->x + (size_t)dep * j->es, j->es);
            else
                memcpy(j->y + (size_t)dep * j->es, j->x + (size_t)spa * j->es, j->es);
        }
    }
}

static int sd_run(const sp_node *n, const sp_tensor *in, int n_in, sp_tensor *out, int n_out, const sp_cpu_ctx *ctx,
                  sp_err *err)
{
    (void)n_in; (void)n_out; (void)err;
    const int d2s = sd_d2s(n);
    const sp_shape *dep = d2s ? &in[0].shape : &out[0].shape;
    sd_job j = {.x = in[0].data, .y = out[0].data, .es = sp_dtype_size(in[0].dtype), .d2s = d2s,
                .crd = d2s && !strcmp(sp_attr_string(n, "mode", "DCR"), "CRD"), .b = sp_attr_int(n, "blocksize", 1),
                .C = dep->d[1], .H = dep->d[2], .W = dep->d[3]};
    const int64_t units = dep->d[0] * (j.C / (j.b * j.b)) * j.H * j.b;
    if (units <= 0 || j.W == 0)
        return 0;
    sp_par_for(ctx, units, 1 + 16384 / (j.W * j.b + 1), sd_range, &j);
    return 0;
}

static const sp_op_def op_d2s = {
    .op_type = "DepthToSpace", .since_opset = 1, .flags = 0,
    .check = sd_check, .infer = sd_infer, .cpu_run = sd_run,
};
static const sp_op_def op_s2d = {
    .op_type = "SpaceToDepth", .since_opset = 1, .flags = 0,
    .check = sd_check, .infer = sd_infer, .cpu_run = sd_run,
};

const sp_op_def *const sp_ops_space_depth[] = {&op_d2s, &op_s2d, NULL};
