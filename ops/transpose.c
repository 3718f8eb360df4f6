/*
 * transpose.c - Transpose (perm, default reversed).
 *
 * The permutation is first simplified: size-1 dims are dropped and input
 * dims that stay neighbours in the output are merged, so
 *     [B,S,H,D] -> [B,H,S,D]  becomes  [B, S, H, D*] with perm (0,2,1,3)
 *     NCHW -> NHWC            becomes  [N, C, HW] with perm (0,2,1)
 * Then one of two loops runs, parallel over independent pieces:
 *   - the innermost dim is unchanged: contiguous row copies (memcpy of the
 *     D elements of each head row in the BERT case);
 *   - otherwise: a 2-D transpose between the input's innermost dim and the
 *     output's innermost dim, in 32x32 tiles (cache-friendly on both sides),
 *     for every index of the remaining dims.
 */
#include "kernels/cpu/tensor_cpu.h"

#include <string.h>
#if defined(__SSE2__)
#include <xmmintrin.h>
#endif

#ifndef TILE
#define TILE 32
#endif

static int transpose_check(const sp_graph *g, const sp_node *n, sp_err *err)
{
    (void)g;
    return sp_check_io(n, 1, 1, 1, 1, err);
}

static int get_perm(const sp_node *n, int r, int *perm, sp_err *err)
{
    const int64_t *p;
    int64_t c = sp_attr_ints(n, "perm", &p);
    if (c < 0) {
        for (int k = 0; k < r; k++)
            perm[k] = r - 1 - k;
        return 0;
    }
    if (c != r)
        return sp_err_set(err, SPRUN_ERR_INVALID_ARGUMENT, "%s: attribute 'perm' has %lld entries for rank %d",
                          SP_LABEL(n), (long long)c, r);
    int seen[SP_MAX_RANK] = {0};
    for (int k = 0; k < r; k++) {
        int a = sp_axis(p[k], r);
        if (a < 0 || seen[a]++)
            return sp_err_set(err, SPRUN_ERR_INVALID_ARGUMENT, "%s: attribute 'perm' is not a permutation of 0..%d",
                              SP_LABEL(n), r - 1);
        perm[k] = a;
    }
    return 0;
}

static int transpose_infer(sp_graph *g, sp_node *n, sp_err *err)
{
    const sp_value *x = sp_node_in(g, n, 0);
    int perm[SP_MAX_RANK];
    int rc;
    if ((rc = sp_check_dtype(g, n, 0, sp_dt_supported, "a numeric or bool tensor", err)) ||
        (rc = get_perm(n, x->shape.rank, perm, err)))
        return rc;
    sp_shape out = {.rank = x->shape.rank};
    for (int k = 0; k < out.rank; k++)
        out.d[k] = x->shape.d[perm[k]];
    sp_node_set_out(g, n, 0, x->dtype, &out);
    return 0;
}

typedef struct tr_job {
    int r;                     /* simplified rank */
    int64_t xd[SP_MAX_RANK];   /* simplified input dims */
    int64_t xst[SP_MAX_RANK];  /* input strides */
    int perm[SP_MAX_RANK];
    int64_t yd[SP_MAX_RANK], yst[SP_MAX_RANK];
    /* outer dims walked per piece (output dims, minus the tiled ones) */
    int no;
    int64_t od[SP_MAX_RANK], oxs[SP_MAX_RANK], oys[SP_MAX_RANK];
    size_t es;
    const char *x;
    char *y;
    /* tiled case */
    int64_t ni, nj, xs_j, ys_i; /* i: input-contiguous dim; j: output-contiguous dim */
    int64_t nib;                /* i blocks per outer index */
    int64_t inner;              /* row-copy case: contiguous elements */
} tr_job;

static void outer_offsets(const tr_job *j, int64_t o, int64_t *xo, int64_t *yo)
{
    int64_t a = 0, b = 0;
    for (int k = j->no - 1; k >= 0; k--) {
        int64_t i = o % j->od[k];
        o /= j->od[k];
        a += i * j->oxs[k];
        b += i * j->oys[k];
    }
    *xo = a;
    *yo = b;
}

static void rows_range(void *arg, int64_t b, int64_t e)
{
    const tr_job *j = arg;
    const size_t rb = (size_t)j->inner * j->es;
    int64_t idx[SP_MAX_RANK], xo = 0, yo = 0, t = b;
    for (int k = j->no - 1; k >= 0; k--) { /* seek once, then an odometer */
        idx[k] = t % j->od[k];
        t /= j->od[k];
        xo += idx[k] * j->oxs[k];
        yo += idx[k] * j->oys[k];
    }
    for (int64_t o = b; o < e; o++) {
        memcpy(j->y + (size_t)yo * j->es, j->x + (size_t)xo * j->es, rb);
        for (int k = j->no - 1; k >= 0; k--) {
            xo += j->oxs[k];
            yo += j->oys[k];
            if (++idx[k] < j->od[k])
                break;
            xo -= j->oxs[k] * j->od[k];
            yo -= j->oys[k] * j->od[k];
            idx[k] = 0;
        }
    }
}

#if defined(__SSE2__)
/* 4-byte elements: 4 x 4 register transposes (SSE shuffles move bits
 * unchanged, so this serves int32 and NaN payloads as well as floats). */
static void tile_4byte(const float *x, float *y, int64_t ib, int64_t ie, int64_t nj, int64_t xsj, int64_t ysi)
{
    for (int64_t jb = 0; jb < nj; jb += TILE) {
        const int64_t je = jb + TILE < nj ? jb + TILE : nj;
        int64_t i0 = ib;
        for (; i0 + 4 <= ie; i0 += 4) {
            int64_t j0 = jb;
            for (; j0 + 4 <= je; j0 += 4) {
                const float *xp = x + j0 * xsj + i0;
                __m128 r0 = _mm_loadu_ps(xp), r1 = _mm_loadu_ps(xp + xsj);
                __m128 r2 = _mm_loadu_ps(xp + 2 * xsj), r3 = _mm_loadu_ps(xp + 3 * xsj);
                _MM_TRANSPOSE4_PS(r0, r1, r2, r3);
                float *yp = y + i0 * ysi + j0;
                _mm_storeu_ps(yp, r0);
                _mm_storeu_ps(yp + ysi, r1);
                _mm_storeu_ps(yp + 2 * ysi, r2);
                _mm_storeu_ps(yp + 3 * ysi, r3);
            }
            for (int64_t i = i0; i < i0 + 4; i++)
                for (int64_t jj = j0; jj < je; jj++)
                    y[i * ysi + jj] = x[jj * xsj + i];
        }
        for (int64_t i = i0; i < ie; i++)
            for (int64_t jj = jb; jj < je; jj++)
                y[i * ysi + jj] = x[jj * xsj + i];
    }
}
#endif

/* One TILE-wide block of i (input-contiguous) against all of j
 * (output-contiguous), in TILE x TILE tiles made of 8 x 8 blocks that go
 * through a local array: each side is touched as 8 contiguous elements per
 * row, which keeps power-of-two row strides from thrashing one cache set.
 * Strides live in locals so the compiler keeps them in registers. */
#define TILE_LOOP(T)                                                                              \
    do {                                                                                          \
        const T *x = (const T *)j->x + xo;                                                        \
        T *y = (T *)j->y + yo;                                                                    \
        const int64_t ysi = j->ys_i, xsj = j->xs_j, nj = j->nj;                                   \
        for (int64_t jb = 0; jb < nj; jb += TILE) {                                               \
            const int64_t je = jb + TILE < nj ? jb + TILE : nj;                                   \
            int64_t i0 = ib;                                                                      \
            for (; i0 + 8 <= ie; i0 += 8) {                                                       \
                int64_t j0 = jb;                                                                  \
                for (; j0 + 8 <= je; j0 += 8) {                                                   \
                    T t[8][8];                                                                    \
                    for (int a = 0; a < 8; a++)                                                   \
                        for (int b = 0; b < 8; b++)                                               \
                            t[b][a] = x[(j0 + a) * xsj + i0 + b];                                 \
                    for (int b = 0; b < 8; b++)                                                   \
                        for (int a = 0; a < 8; a++)                                               \
                            y[(i0 + b) * ysi + j0 + a] = t[b][a];                                 \
                }                                                                                 \
                for (int64_t i = i0; i < i0 + 8; i++)                                             \
                    for (int64_t jj = j0; jj < je; jj++)                                          \
                        y[i * ysi + jj] = x[jj * xsj + i];                                        \
            }                                                                                     \
            for (int64_t i = i0; i < ie; i++)                                                     \
                for (int64_t jj = jb; jj < je; jj++)                                              \
                    y[i * ysi + jj] = x[jj * xsj + i];                                            \
        }                                                                                         \
    } while (0)

static void tiles_range(void *arg, int64_t b, int64_t e)
{
    const tr_job *j = arg;
    for (int64_t u = b; u < e; u++) {
        const int64_t o = u / j->nib, ib = (u % j->nib) * TILE;
        const int64_t ie = ib + TILE < j->ni ? ib + TILE : j->ni;
        int64_t xo, yo;
        outer_offsets(j, o, &xo, &yo);
        switch (j->es) {
        case 1: TILE_LOOP(uint8_t); break;
        case 2: TILE_LOOP(uint16_t); break;
        case 4:
#if defined(__SSE2__)
            tile_4byte((const float *)j->x + xo, (float *)j->y + yo, ib, ie, j->nj, j->xs_j, j->ys_i);
#else
            TILE_LOOP(uint32_t);
#endif
            break;
        default: TILE_LOOP(uint64_t); break;
        }
    }
}

static int transpose_run(const sp_node *n, const sp_tensor *in, int n_in, sp_tensor *out, int n_out,
                         const sp_cpu_ctx *ctx, sp_err *err)
{
    (void)n_in; (void)n_out;
    const sp_shape *xs = &in[0].shape;
    int perm0[SP_MAX_RANK];
    int rc = get_perm(n, xs->rank, perm0, err);
    if (rc)
        return rc;
    const int64_t total = sp_shape_numel(xs);
    const size_t es = sp_dtype_size(in[0].dtype);
    if (total <= 0)
        return 0;

    /* 1. drop size-1 input dims */
    int map[SP_MAX_RANK], r = 0;
    int64_t d1[SP_MAX_RANK];
    for (int k = 0; k < xs->rank; k++) {
        map[k] = xs->d[k] == 1 ? -1 : r;
        if (xs->d[k] != 1)
            d1[r++] = xs->d[k];
    }
    int p1[SP_MAX_RANK], r1 = 0;
    for (int k = 0; k < xs->rank; k++)
        if (map[perm0[k]] >= 0)
            p1[r1++] = map[perm0[k]];
    /* 2. merge input dims a, a+1 that are adjacent in the output order */
    tr_job j = {.es = es, .x = in[0].data, .y = out[0].data};
    int grp_of[SP_MAX_RANK] = {0}; /* input dim -> merged group */
    int head[SP_MAX_RANK];   /* output position k starts a group? */
    for (int k = 0; k < r1; k++)
        head[k] = !(k > 0 && p1[k] == p1[k - 1] + 1);
    /* groups in output order; group g covers input dims p1[k..] */
    int ng = 0;
    int64_t gdim[SP_MAX_RANK];
    for (int k = 0; k < r1; k++) {
        if (head[k]) {
            gdim[ng] = 1;
            ng++;
        }
        gdim[ng - 1] *= d1[p1[k]];
        grp_of[p1[k]] = ng - 1;
    }
    /* input order of the groups: sort groups by their first input dim */
    int in_order[SP_MAX_RANK] = {0}, m = 0;
    for (int a = 0; a < r; a++)
        if (a == 0 || grp_of[a] != grp_of[a - 1])
            in_order[m++] = grp_of[a];
    j.r = ng;
    int pos_in[SP_MAX_RANK] = {0}; /* group -> input position */
    for (int k = 0; k < ng; k++) {
        j.xd[k] = gdim[in_order[k]];
        pos_in[in_order[k]] = k;
    }
    for (int k = 0; k < ng; k++)
        j.perm[k] = pos_in[k];
    if (ng <= 1) {
        sp_copy_bytes(out[0].data, in[0].data, (size_t)total * es);
        return 0;
    }
    {
        int64_t acc = 1;
        for (int k = ng - 1; k >= 0; k--) {
            j.xst[k] = acc;
            acc *= j.xd[k];
        }
        acc = 1;
        for (int k = ng - 1; k >= 0; k--) {
            j.yd[k] = j.xd[j.perm[k]];
            j.yst[k] = acc;
            acc *= j.yd[k];
        }
    }
    const int R = ng;
    if (j.perm[R - 1] == R - 1) { /* innermost dim unchanged: row copies */
        j.inner = j.yd[R - 1];
        for (int k = 0; k < R - 1; k++) {
            j.od[j.no] = j.yd[k];
            j.oxs[j.no] = j.xst[j.perm[k]];
            j.oys[j.no] = j.yst[k];
            j.no++;
        }
        const int64_t rows = total / j.inner;
        sp_par_for(ctx, rows, 1 + 32768 / (j.inner + 1), rows_range, &j);
        return 0;
    }
    /* tiled: i = input's last dim (at output position q), jdim = output's last */
    int q = 0;
    for (int k = 0; k < R; k++)
        if (j.perm[k] == R - 1)
            q = k;
    const int a = j.perm[R - 1];
    j.ni = j.xd[R - 1];
    j.nj = j.xd[a];
    j.xs_j = j.xst[a];
    j.ys_i = j.yst[q];
    for (int k = 0; k < R; k++) {
        if (k == q || k == R - 1)
            continue;
        j.od[j.no] = j.yd[k];
        j.oxs[j.no] = j.xst[j.perm[k]];
        j.oys[j.no] = j.yst[k];
        j.no++;
    }
    j.nib = (j.ni + TILE - 1) / TILE;
    const int64_t units = total / (j.ni * j.nj) * j.nib;
    sp_par_for(ctx, units, 1 + 16384 / (TILE * j.nj + 1), tiles_range, &j);
    return 0;
}

static const sp_op_def op_transpose = {
    .op_type = "Transpose", .since_opset = 1, .flags = 0,
    .check = transpose_check, .infer = transpose_infer, .cpu_run = transpose_run,
};

const sp_op_def *const sp_ops_transpose[] = {&op_transpose, NULL};
