/*
 * gemm.c - Gemm and MatMul through cblas_sgemm.
 *
 * Gemm: Y = alpha * A' * B' + beta * C, C unidirectionally broadcast to
 * [M, N] (scalar, [N], [1, N], [M, 1], [M, N]). MatMul: numpy semantics
 * (1-D operands promoted and their dim removed again, batch dims
 * broadcast); when B has no batch (the Linear-layer case) every batch of A
 * folds into one GEMM with batch*M rows.
 *
 * GEMMs are tiled over the pool (kernels/cpu/nn_cpu.h: sp_gemm_par);
 * batched MatMuls with at least one batch per thread run one batch per task.
 *
 * Fusion: a residual input (the fusion pass appends it; a MatMul's bias is a
 * residual of shape [N]) of the output's shape or of its trailing dims, then
 * the activation, applied per tile right after its GEMM; a residual that
 * shares the output's buffer is accumulated by the GEMM itself.
 */
#include "kernels/cpu/nn_cpu.h"
#include "ops/op.h"

#include <cblas.h>
#include <string.h>

static int io_check(const sp_graph *g, const sp_node *n, int min_in, int max_in, sp_err *err)
{
    char lb[256];
    int extra = sp_nn_residual_index(n, n->n_in) >= 0;
    if (n->n_in < min_in || n->n_in > max_in + extra)
        return sp_err_set(err, SPRUN_ERR_INVALID_ARGUMENT, "%s: %d inputs (expected %d to %d)",
                          sp_node_label(n, lb, sizeof lb), n->n_in, min_in, max_in);
    for (int i = 0; i < min_in; i++)
        if (!sp_node_in(g, n, i))
            return sp_err_set(err, SPRUN_ERR_INVALID_ARGUMENT, "%s: input %d is required",
                              sp_node_label(n, lb, sizeof lb), i);
    if (n->n_out != 1)
        return sp_err_set(err, SPRUN_ERR_INVALID_ARGUMENT, "%s: %d outputs (expected 1)",
                          sp_node_label(n, lb, sizeof lb), n->n_out);
    for (int i = 0; i < n->n_in; i++) {
        const sp_value *v = sp_node_in(g, n, i);
        if (v && v->dtype && !sp_nn_float_type(v->dtype))
            return sp_err_set(err, SPRUN_ERR_UNSUPPORTED, "%s: input %d has dtype %s (float32/float16 only)",
                              sp_node_label(n, lb, sizeof lb), i, sp_dtype_name(v->dtype));
    }
    return 0;
}

/* ------------------------------------------------------------------------ */
/* Gemm                                                                      */
/* ------------------------------------------------------------------------ */

static const sp_value *gemm_c(const sp_graph *g, const sp_node *n)
{
    return sp_nn_residual_index(n, n->n_in) == 2 ? NULL : sp_node_in(g, n, 2);
}

static int gemm_check(const sp_graph *g, const sp_node *n, sp_err *err)
{
    return io_check(g, n, 2, 3, err);
}

typedef struct gemm_dims {
    int64_t m, k, n, cm, cn; /* C broadcast dims (rank-2 view) */
} gemm_dims;

static int gemm_geometry(const sp_node *n, const sp_shape *a, const sp_shape *b, const sp_shape *c, gemm_dims *d,
                         sp_err *err)
{
    char lb[256], s1[128], s2[128], s3[128];
    const int ta = sp_attr_int(n, "transA", 0) != 0, tb = sp_attr_int(n, "transB", 0) != 0;
    if (a->rank != 2 || b->rank != 2)
        return sp_err_set(err, SPRUN_ERR_SHAPE, "%s: A %s and B %s must be 2-D", sp_node_label(n, lb, sizeof lb),
                          sp_shape_str(a, s1, sizeof s1), sp_shape_str(b, s2, sizeof s2));
    d->m = ta ? a->d[1] : a->d[0];
    d->k = ta ? a->d[0] : a->d[1];
    int64_t kb = tb ? b->d[1] : b->d[0];
    d->n = tb ? b->d[0] : b->d[1];
    if (kb != d->k)
        return sp_err_set(err, SPRUN_ERR_SHAPE, "%s: A %s (transA %d) and B %s (transB %d) disagree on K",
                          sp_node_label(n, lb, sizeof lb), sp_shape_str(a, s1, sizeof s1), ta,
                          sp_shape_str(b, s2, sizeof s2), tb);
    if (d->m > INT32_MAX || d->n > INT32_MAX || d->k > INT32_MAX) /* cblas takes int */
        return sp_err_set(err, SPRUN_ERR_UNSUPPORTED, "%s: M, N or K beyond 2^31 (A %s, B %s)",
                          sp_node_label(n, lb, sizeof lb), sp_shape_str(a, s1, sizeof s1),
                          sp_shape_str(b, s2, sizeof s2));
    d->cm = d->cn = 1;
    if (c) {
        int ok = c->rank <= 2;
        if (ok && c->rank == 2) {
            d->cm = c->d[0];
            d->cn = c->d[1];
        } else if (ok && c->rank == 1) {
            d->cn = c->d[0];
        }
        ok = ok && (d->cm == 1 || d->cm == d->m) && (d->cn == 1 || d->cn == d->n);
        if (!ok) {
            sp_shape y = sp_shape_make(2, (int64_t[]){d->m, d->n});
            return sp_err_set(err, SPRUN_ERR_SHAPE, "%s: C %s does not broadcast to the output %s",
                              sp_node_label(n, lb, sizeof lb), sp_shape_str(c, s3, sizeof s3),
                              sp_shape_str(&y, s1, sizeof s1));
        }
    }
    return 0;
}

static int gemm_infer(sp_graph *g, sp_node *n, sp_err *err)
{
    const sp_value *a = sp_node_in(g, n, 0), *b = sp_node_in(g, n, 1), *c = gemm_c(g, n);
    gemm_dims d;
    int rc = gemm_geometry(n, &a->shape, &b->shape, c ? &c->shape : NULL, &d, err);
    if (rc)
        return rc;
    sp_shape y = sp_shape_make(2, (int64_t[]){d.m, d.n});
    if ((rc = sp_nn_check_residual(g, n, &y, 1, err)))
        return rc;
    sp_node_set_out(g, n, 0, a->dtype, &y);
    return 0;
}

static int gemm_run_f32(const sp_node *n, const sp_tensor *in, int n_in, sp_tensor *out, int n_out,
                        const sp_cpu_ctx *ctx, sp_err *err)
{
    (void)n_out;
    const int ri = sp_nn_residual_index(n, n_in);
    const sp_tensor *c = (n_in > 2 && ri != 2 && in[2].data) ? &in[2] : NULL;
    gemm_dims d;
    int rc = gemm_geometry(n, &in[0].shape, &in[1].shape, c ? &c->shape : NULL, &d, err);
    if (rc)
        return rc;
    const int ta = sp_attr_int(n, "transA", 0) != 0, tb = sp_attr_int(n, "transB", 0) != 0;
    const float alpha = sp_attr_float(n, "alpha", 1.f), beta = sp_attr_float(n, "beta", 1.f);
    float *Y = out[0].data;
    sp_epi e;
    sp_epi_from_fusion(&e, n, in, n_in);
    const int accumulate = e.res && e.res == (const float *)Y && e.res_n == d.m * d.n;
    if (accumulate)
        e.res = NULL;
    const float *C = (c && beta != 0.f) ? c->data : NULL;
    if (C) { /* Y (+)= beta * C, then the GEMM accumulates */
        for (int64_t i = 0; i < d.m; i++) {
            const float *cr = C + (d.cm == 1 ? 0 : i * d.cn);
            float *yr = Y + i * d.n;
            if (d.cn == 1) {
                const float v = beta * cr[0];
                for (int64_t j = 0; j < d.n; j++)
                    yr[j] = accumulate ? yr[j] + v : v;
            } else {
                for (int64_t j = 0; j < d.n; j++)
                    yr[j] = accumulate ? yr[j] + beta * cr[j] : beta * cr[j];
            }
        }
    }
    sp_gemm_args ga = {ta, tb, d.m, d.n, d.k, alpha, in[0].data, ta ? d.m : d.k, in[1].data, tb ? d.k : d.n,
                       (C || accumulate) ? 1.f : 0.f, Y, d.n, &e, 0, 0};
    sp_gemm_par(ctx, &ga);
    return 0;
}

SP_NN_STAGED(gemm_run, gemm_run_f32)

/* ------------------------------------------------------------------------ */
/* MatMul                                                                    */
/* ------------------------------------------------------------------------ */

typedef struct mm_dims {
    int64_t m, k, n;
    int nbr;                        /* output batch rank */
    int64_t bd[SP_MAX_RANK];        /* output batch dims */
    int64_t as[SP_MAX_RANK], bs[SP_MAX_RANK]; /* batch strides in A, B (0 = broadcast) */
    int64_t nbatch;
    sp_shape y;
} mm_dims;

static int mm_geometry(const sp_node *n, const sp_shape *a, const sp_shape *b, mm_dims *d, sp_err *err)
{
    char lb[256], s1[128], s2[128];
    if (a->rank < 1 || b->rank < 1)
        return sp_err_set(err, SPRUN_ERR_SHAPE, "%s: MatMul of scalars (A %s, B %s)",
                          sp_node_label(n, lb, sizeof lb), sp_shape_str(a, s1, sizeof s1),
                          sp_shape_str(b, s2, sizeof s2));
    d->m = a->rank == 1 ? 1 : a->d[a->rank - 2];
    d->k = a->d[a->rank - 1];
    const int64_t kb = b->rank == 1 ? b->d[0] : b->d[b->rank - 2];
    d->n = b->rank == 1 ? 1 : b->d[b->rank - 1];
    if (kb != d->k)
        return sp_err_set(err, SPRUN_ERR_SHAPE, "%s: A %s and B %s disagree on K (%lld vs %lld)",
                          sp_node_label(n, lb, sizeof lb), sp_shape_str(a, s1, sizeof s1),
                          sp_shape_str(b, s2, sizeof s2), (long long)d->k, (long long)kb);
    if (d->m > INT32_MAX || d->n > INT32_MAX || d->k > INT32_MAX) /* cblas takes int */
        return sp_err_set(err, SPRUN_ERR_UNSUPPORTED, "%s: M, N or K beyond 2^31 (A %s, B %s)",
                          sp_node_label(n, lb, sizeof lb), sp_shape_str(a, s1, sizeof s1),
                          sp_shape_str(b, s2, sizeof s2));
    const int ar = a->rank > 2 ? a->rank - 2 : 0, br = b->rank > 2 ? b->rank - 2 : 0;
    d->nbr = ar > br ? ar : br;
    if (d->nbr + 2 > SP_MAX_RANK)
        return sp_err_set(err, SPRUN_ERR_UNSUPPORTED, "%s: rank too large", sp_node_label(n, lb, sizeof lb));
    int64_t sa = d->m * d->k, sb = d->k * d->n;
    d->nbatch = 1;
    for (int i = d->nbr - 1; i >= 0; i--) {
        const int ia = i - (d->nbr - ar), ib = i - (d->nbr - br);
        const int64_t da = ia >= 0 ? a->d[ia] : 1, db = ib >= 0 ? b->d[ib] : 1;
        if (da != db && da != 1 && db != 1)
            return sp_err_set(err, SPRUN_ERR_SHAPE, "%s: batch dims of A %s and B %s do not broadcast",
                              sp_node_label(n, lb, sizeof lb), sp_shape_str(a, s1, sizeof s1),
                              sp_shape_str(b, s2, sizeof s2));
        d->bd[i] = da == 1 ? db : da;
        d->as[i] = da == 1 ? 0 : sa;
        d->bs[i] = db == 1 ? 0 : sb;
        sa *= da;
        sb *= db;
        d->nbatch *= d->bd[i];
    }
    d->y.rank = 0;
    for (int i = 0; i < d->nbr; i++)
        d->y.d[d->y.rank++] = d->bd[i];
    if (a->rank > 1)
        d->y.d[d->y.rank++] = d->m;
    if (b->rank > 1)
        d->y.d[d->y.rank++] = d->n;
    return 0;
}

static int matmul_check(const sp_graph *g, const sp_node *n, sp_err *err)
{
    return io_check(g, n, 2, 2, err);
}

static int matmul_infer(sp_graph *g, sp_node *n, sp_err *err)
{
    const sp_value *a = sp_node_in(g, n, 0), *b = sp_node_in(g, n, 1);
    mm_dims d;
    int rc = mm_geometry(n, &a->shape, &b->shape, &d, err);
    if (rc)
        return rc;
    if ((rc = sp_nn_check_residual(g, n, &d.y, 1, err)))
        return rc;
    sp_node_set_out(g, n, 0, a->dtype, &d.y);
    return 0;
}

/* Offsets of batch bi's A and B matrices (broadcast batch dims stride 0). */
static void mm_batch_offsets(const mm_dims *d, int64_t bi, int64_t *ao, int64_t *bo)
{
    *ao = *bo = 0;
    for (int i = d->nbr - 1; i >= 0; i--) {
        const int64_t ix = bi % d->bd[i];
        bi /= d->bd[i];
        *ao += ix * d->as[i];
        *bo += ix * d->bs[i];
    }
}

typedef struct mm_batch_args {
    const mm_dims *d;
    const float *a, *b;
    float *y;
    float beta;
    const sp_epi *e;
} mm_batch_args;

/* Batches over the pool, one single-threaded GEMM + epilogue each. */
static void mm_batch_range(void *arg, int64_t b0, int64_t b1)
{
    const mm_batch_args *a = arg;
    const mm_dims *d = a->d;
    for (int64_t bi = b0; bi < b1; bi++) {
        int64_t ao, bo;
        mm_batch_offsets(d, bi, &ao, &bo);
        float *y = a->y + bi * d->m * d->n;
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)d->m, (int)d->n, (int)d->k, 1.f, a->a + ao,
                    (int)d->k, a->b + bo, (int)d->n, a->beta, y, (int)d->n);
        if (sp_epi_active(a->e))
            sp_epi_rows(a->e, y, d->m, d->n, d->n, bi * d->m * d->n, 0);
    }
}

static int matmul_run_f32(const sp_node *n, const sp_tensor *in, int n_in, sp_tensor *out, int n_out,
                          const sp_cpu_ctx *ctx, sp_err *err)
{
    (void)n_out;
    mm_dims d;
    int rc = mm_geometry(n, &in[0].shape, &in[1].shape, &d, err);
    if (rc)
        return rc;
    const float *A = in[0].data, *B = in[1].data;
    float *Y = out[0].data;
    sp_epi e;
    sp_epi_from_fusion(&e, n, in, n_in);
    const int accumulate = e.res && e.res == (const float *)Y && e.res_n == d.nbatch * d.m * d.n;
    if (accumulate)
        e.res = NULL;
    const float beta = accumulate ? 1.f : 0.f;

    int b_batched = 0;
    for (int i = 0; i < d.nbr; i++)
        b_batched |= d.bs[i] != 0;
    if (!b_batched || d.k == 0) { /* A's batches fold into M (A is never broadcast here) */
        sp_gemm_args ga = {0, 0, d.nbatch * d.m, d.n, d.k, 1.f, A, d.k, B, d.n, beta, Y, d.n, &e, 0, 0};
        sp_gemm_par(ctx, &ga);
    } else if (ctx->pool && ctx->nthreads > 1 && d.nbatch >= ctx->nthreads) {
        mm_batch_args a = {&d, A, B, Y, beta, &e};
        sp_nn_blas_threads(1);
        sp_parallel_for(ctx, d.nbatch, 1, mm_batch_range, &a);
    } else {
        for (int64_t bi = 0; bi < d.nbatch; bi++) {
            int64_t ao, bo;
            mm_batch_offsets(&d, bi, &ao, &bo);
            sp_gemm_args ga = {0, 0, d.m, d.n, d.k, 1.f, A + ao, d.k, B + bo, d.n, beta, Y + bi * d.m * d.n, d.n,
                               &e, bi * d.m * d.n, 0};
            sp_gemm_par(ctx, &ga);
        }
    }
    return 0;
}

SP_NN_STAGED(matmul_run, matmul_run_f32)

static const sp_op_def op_gemm = {
    .op_type = "Gemm",
    .since_opset = 1,
    .flags = SP_OPF_FUSABLE,
    .check = gemm_check,
    .infer = gemm_infer,
    .cpu_run = gemm_run,
    .cpu_scratch = sp_nn_stage_scratch,
};

static const sp_op_def op_matmul = {
    .op_type = "MatMul",
    .since_opset = 1,
    .flags = SP_OPF_FUSABLE,
    .check = matmul_check,
    .infer = matmul_infer,
    .cpu_run = matmul_run,
    .cpu_scratch = sp_nn_stage_scratch,
};

const sp_op_def *const sp_ops_gemm[] = {&op_gemm, &op_matmul, NULL};
