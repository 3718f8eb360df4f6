/*
 * spmm_cpu.c - CPU SpMM over CSR / BSR / 2:4 packed weights (spmm_cpu.h).
 *
 * Every format is handled by one row kernel: a row of W is first decoded
 * into (column, fp32 value) pairs in per-thread scratch - this is where
 * fp16 is widened and BSR/2:4 padding is dropped - and then multiplied with
 * X. Decoding costs O(stored elements of the row) once per row (once per
 * NS columns of Y in the strided path), while the product is O(nnz * N), so
 * one compute loop serves three layouts at little cost.
 * Stored zeros (inside BSR blocks, 2:4 filler) are skipped: they add
 * nothing for finite X.
 */
#include "kernels/cpu/spmm_cpu.h"

#include "loaders/sparse_pack.h" /* sp_sparse_value, sp_errbuf_set */
#include "ops/op.h"              /* sp_act_apply */
#include "sprun.h"

#include <pthread.h>

#include "ops/op.h"
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

/* Columns of Y computed per pass of the fast path: the accumulator tile
 * (4 KiB) stays in L1 while every nonzero of the row streams over it. */
enum { NT = 1024 };

typedef struct spmm_job {
    const sp_sparse_matrix *w;
    const sp_spmm_args *a;
    int64_t m;
    const int32_t *order; /* CSR: longest rows first (load balance); else NULL */
    int64_t chunk;        /* rows taken from `next` at a time */
    atomic_llong next;
} spmm_job;

typedef struct spmm_worker {
    spmm_job *job;
    int32_t *cols; /* decoded row: [maxlen] */
    float *vals;   /* [maxlen] */
    float *acc;    /* [NT] */
} spmm_worker;

/* Decodes row i of w into cols/vals (nonzero values only, increasing
 * columns); returns the count. Zeros are dropped without a branch (write,
 * then advance only for a nonzero): whether a stored value is zero is
 * unpredictable, and the strided path decodes each row several times. */
static int64_t decode_row(const sp_sparse_matrix *w, int64_t i, int32_t *cols, float *vals)
{
    int64_t n = 0;
    switch (w->kind) {
    case SP_SPARSE_CSR: {
        const sp_csr *c = &w->u.csr;
        for (int64_t p = c->row_ptr[i]; p < c->row_ptr[i + 1]; p++) {
            const float v = sp_sparse_value(c->values, p, c->vtype);
            cols[n] = c->col_idx16 ? c->col_idx16[p] : c->col_idx32[p];
            vals[n] = v;
            n += v != 0.0f;
        }
        break;
    }
    case SP_SPARSE_BSR: {
        const sp_bsr *b = &w->u.bsr;
        const int64_t bi = i / b->br, r = i % b->br;
        for (int64_t p = b->block_ptr[bi]; p < b->block_ptr[bi + 1]; p++) {
            const int64_t j0 = (int64_t)b->block_col[p] * b->bc;
            const int64_t base = (p * b->br + r) * b->bc;
            for (int64_t c = 0; c < b->bc && j0 + c < b->k; c++) {
                const float v = sp_sparse_value(b->values, base + c, b->vtype);
                cols[n] = (int32_t)(j0 + c);
                vals[n] = v;
                n += v != 0.0f;
            }
        }
        break;
    }
    case SP_SPARSE_24: {
        const sp_24 *t = &w->u.s24;
        const int64_t groups = t->kp / 4;
        for (int64_t g = 0; g < groups; g++) {
            const int64_t o = i * groups + g;
            const uint8_t meta = t->meta[o];
            for (int e = 0; e < 2; e++) {
                const int64_t j = 4 * g + ((meta >> (2 * e)) & 3);
                const float v = sp_sparse_value(t->values, 2 * o + e, t->vtype);
                cols[n] = (int32_t)j;
                vals[n] = v;
                n += j < t->k && v != 0.0f;
            }
        }
        break;
    }
    default:
        break;
    }
    return n;
}

/* Upper bound of decode_row's count over all rows (scratch size). */
static int64_t max_row_len(const sp_sparse_matrix *w)
{
    int64_t mx = 0;
    switch (w->kind) {
    case SP_SPARSE_CSR:
        for (int64_t i = 0; i < w->u.csr.m; i++) {
            const int64_t l = w->u.csr.row_ptr[i + 1] - w->u.csr.row_ptr[i];
            mx = l > mx ? l : mx;
        }
        break;
    case SP_SPARSE_BSR:
        for (int64_t bi = 0; bi < w->u.bsr.mb; bi++) {
            const int64_t l = w->u.bsr.block_ptr[bi + 1] - w->u.bsr.block_ptr[bi];
            mx = l > mx ? l : mx;
        }
        mx *= w->u.bsr.bc;
        break;
    case SP_SPARSE_24:
        mx = w->u.s24.kp / 2;
        break;
    default:
        break;
    }
    return mx;
}

static inline float act1(int act, float v, float alpha, float beta)
{
    switch (act) {
    case SP_ACT_NONE: return v;
    case SP_ACT_RELU: return v > 0.0f ? v : 0.0f;
    case SP_ACT_CLIP: return v < alpha ? alpha : (v > beta ? beta : v);
    default: return sp_act_apply(act, v, alpha, beta);
    }
}

/* y[t] = act(acc[t]); the common activations get their own loops so that
 * they vectorise. */
static void store_act(float *restrict y, const float *restrict acc, int64_t nt, int act,
                      float alpha, float beta)
{
    switch (act) {
    case SP_ACT_NONE:
        memcpy(y, acc, (size_t)nt * sizeof *y);
        break;
    case SP_ACT_RELU:
        for (int64_t t = 0; t < nt; t++)
            y[t] = acc[t] > 0.0f ? acc[t] : 0.0f;
        break;
    case SP_ACT_CLIP:
        for (int64_t t = 0; t < nt; t++)
            y[t] = acc[t] < alpha ? alpha : (acc[t] > beta ? beta : acc[t]);
        break;
    default:
        for (int64_t t = 0; t < nt; t++)
            y[t] = sp_act_apply(act, acc[t], alpha, beta);
        break;
    }
}

/* Fast path: X, Y and R unit-stride along n. Y's row tile accumulates in
 * private scratch, so a residual that aliases Y is read before any write. */
static void row_unit_n(const spmm_job *j, int64_t i, const int32_t *cols, const float *vals,
                       int64_t len, float *restrict acc)
{
    const sp_spmm_args *a = j->a;
    const float b = a->bias ? a->bias[i] : 0.0f;
    for (int64_t n0 = 0; n0 < a->n; n0 += NT) {
        const int64_t nt = a->n - n0 < NT ? a->n - n0 : NT;
        for (int64_t t = 0; t < nt; t++)
            acc[t] = b;
        int64_t e = 0;
        /* Four nonzeros per sweep: a quarter of the accumulator traffic. */
        for (; e + 4 <= len; e += 4) {
            const float v0 = vals[e], v1 = vals[e + 1], v2 = vals[e + 2], v3 = vals[e + 3];
            const float *restrict x0 = a->x + cols[e] * a->x_sk + n0;
            const float *restrict x1 = a->x + cols[e + 1] * a->x_sk + n0;
            const float *restrict x2 = a->x + cols[e + 2] * a->x_sk + n0;
            const float *restrict x3 = a->x + cols[e + 3] * a->x_sk + n0;
            for (int64_t t = 0; t < nt; t++)
                acc[t] += v0 * x0[t] + v1 * x1[t] + v2 * x2[t] + v3 * x3[t];
        }
        for (; e < len; e++) {
            const float v = vals[e];
            const float *restrict x0 = a->x + cols[e] * a->x_sk + n0;
            for (int64_t t = 0; t < nt; t++)
                acc[t] += v * x0[t];
        }
        if (a->residual) {
            const float *r = a->residual + i * a->r_sm + n0;
            for (int64_t t = 0; t < nt; t++)
                acc[t] += r[t];
        }
        store_act(a->y + i * a->y_sm + n0, acc, nt, a->act, a->alpha, a->beta);
    }
}

/* General strided path (the GPU's N-major layout among others): dot
 * products, four columns of Y at a time so each decoded nonzero is loaded
 * once for four FMAs. */
static inline void store_strided(const sp_spmm_args *a, int64_t i, int64_t n, float s)
{
    if (a->residual)
        s += a->residual[i * a->r_sm + n * a->r_sn];
    a->y[i * a->y_sm + n * a->y_sn] = act1(a->act, s, a->alpha, a->beta);
}

static void row_strided(const sp_spmm_args *a, int64_t i, const int32_t *cols,
                        const float *vals, int64_t len, int64_t n0, int64_t n1)
{
    const float b = a->bias ? a->bias[i] : 0.0f;
    int64_t n = n0;
    for (; n + 4 <= n1; n += 4) {
        const float *x0 = a->x + n * a->x_sn, *x1 = x0 + a->x_sn, *x2 = x1 + a->x_sn,
                    *x3 = x2 + a->x_sn;
        float s0 = b, s1 = b, s2 = b, s3 = b;
        for (int64_t e = 0; e < len; e++) {
            const int64_t c = cols[e] * a->x_sk;
            const float v = vals[e];
            s0 += v * x0[c];
            s1 += v * x1[c];
            s2 += v * x2[c];
            s3 += v * x3[c];
        }
        store_strided(a, i, n, s0);
        store_strided(a, i, n + 1, s1);
        store_strided(a, i, n + 2, s2);
        store_strided(a, i, n + 3, s3);
    }
    for (; n < n1; n++) {
        const float *xn = a->x + n * a->x_sn;
        float s = b;
        for (int64_t e = 0; e < len; e++)
            s += vals[e] * xn[cols[e] * a->x_sk];
        store_strided(a, i, n, s);
    }
}

/* Columns of Y per pass of the strided path: the X columns they read (NS
 * rows of X in the N-major layout) stay in cache while every row of the
 * chunk is multiplied with them, instead of all of X streaming past once
 * per row. Rows are decoded again per pass: O(len) for O(len * NS) FMAs. */
enum { NS = 32 };

static void *worker_main(void *arg)
{
    spmm_worker *wk = arg;
    spmm_job *j = wk->job;
    const sp_spmm_args *a = j->a;
    const int unit = a->x_sn == 1 && a->y_sn == 1 && (!a->residual || a->r_sn == 1);
    for (;;) {
        const int64_t start = atomic_fetch_add(&j->next, j->chunk);
        if (start >= j->m)
            break;
        const int64_t end = start + j->chunk < j->m ? start + j->chunk : j->m;
        if (unit) {
            for (int64_t r = start; r < end; r++) {
                const int64_t i = j->order ? j->order[r] : r;
                const int64_t len = decode_row(j->w, i, wk->cols, wk->vals);
                row_unit_n(j, i, wk->cols, wk->vals, len, wk->acc);
            }
            continue;
        }
        for (int64_t n0 = 0; n0 < a->n; n0 += NS) {
            const int64_t n1 = a->n - n0 < NS ? a->n : n0 + NS;
            for (int64_t r = start; r < end; r++) {
                const int64_t i = j->order ? j->order[r] : r;
                const int64_t len = decode_row(j->w, i, wk->cols, wk->vals);
                row_strided(a, i, wk->cols, wk->vals, len, n0, n1);
            }
        }
    }
    return NULL;
}

/* sp_parallel_for body: runs workers [b, e); each drains the shared row
 * counter, so a pool thread that gets two workers just runs the second on
 * an already-drained job. */
static void run_workers(void *arg, int64_t b, int64_t e)
{
    spmm_worker *wk = arg;
    for (int64_t t = b; t < e; t++)
        worker_main(&wk[t]);
}

int sp_spmm_cpu(const sp_sparse_matrix *w, const sp_spmm_args *a, char *err, size_t errlen)
{
    if (!w || !a)
        return sp_errbuf_set(err, errlen, SPRUN_ERR_INVALID_ARGUMENT, "CPU SpMM: %s is NULL",
                    !w ? "the weight" : "args");
    int64_t m, k;
    sp_sparse_vtype vt;
    switch (w->kind) {
    case SP_SPARSE_CSR: m = w->u.csr.m; k = w->u.csr.k; vt = w->u.csr.vtype; break;
    case SP_SPARSE_BSR: m = w->u.bsr.m; k = w->u.bsr.k; vt = w->u.bsr.vtype; break;
    case SP_SPARSE_24: m = w->u.s24.m; k = w->u.s24.k; vt = w->u.s24.vtype; break;
    default:
        return sp_errbuf_set(err, errlen, SPRUN_ERR_INVALID_ARGUMENT,
                    "CPU SpMM: weight kind %d is not a packed sparse layout", (int)w->kind);
    }
    if (vt != SP_VT_F32 && vt != SP_VT_F16)
        return sp_errbuf_set(err, errlen, SPRUN_ERR_INVALID_ARGUMENT, "CPU SpMM: unknown value type %d",
                    (int)vt);
    if (a->n < 0)
        return sp_errbuf_set(err, errlen, SPRUN_ERR_INVALID_ARGUMENT, "CPU SpMM: n = %lld is negative",
                    (long long)a->n);
    if (a->act < SP_ACT_NONE || a->act > SP_ACT_LEAKYRELU)
        return sp_errbuf_set(err, errlen, SPRUN_ERR_INVALID_ARGUMENT, "CPU SpMM: unknown activation %d",
                    a->act);
    if (m == 0 || a->n == 0)
        return 0;
    if (!a->y || (!a->x && k > 0))
        return sp_errbuf_set(err, errlen, SPRUN_ERR_INVALID_ARGUMENT, "CPU SpMM: %s is NULL",
                    !a->y ? "y" : "x");

    int nth = a->nthreads > 1 ? a->nthreads : 1;
    if (nth > m)
        nth = (int)m;
    const int64_t maxlen = max_row_len(w);
    /* One block per worker: decoded row (cols + vals) and the accumulator. */
    const size_t per = (size_t)(maxlen ? maxlen : 1) * (sizeof(int32_t) + sizeof(float)) +
                       NT * sizeof(float);
    spmm_worker *wk = calloc((size_t)nth, sizeof *wk);
    char *scratch = wk ? malloc(per * (size_t)nth) : NULL;
    pthread_t *tid = scratch ? malloc((size_t)nth * sizeof *tid) : NULL;
    if (!tid) {
        free(wk);
        free(scratch);
        return sp_errbuf_set(err, errlen, SPRUN_ERR_OUT_OF_MEMORY,
                    "CPU SpMM: out of memory for %d x %zu bytes of scratch", nth, per);
    }

    spmm_job job = {.w = w, .a = a, .m = m,
                    .order = w->kind == SP_SPARSE_CSR ? w->u.csr.row_order : NULL};
    /* About 8 chunks per thread: small enough to even out ragged rows,
     * large enough that the shared counter is not contended. */
    job.chunk = m / ((int64_t)nth * 8);
    if (job.chunk < 1)
        job.chunk = 1;
    atomic_init(&job.next, 0);
    for (int t = 0; t < nth; t++) {
        char *p = scratch + per * (size_t)t;
        wk[t].job = &job;
        wk[t].acc = (float *)p; /* first: float alignment guaranteed by malloc */
        wk[t].vals = (float *)(p + NT * sizeof(float));
        wk[t].cols = (int32_t *)(p + NT * sizeof(float) + (size_t)(maxlen ? maxlen : 1) * sizeof(float));
    }
    if (a->pool && a->pool->pool) {
        sp_parallel_for(a->pool, nth, 1, run_workers, wk);
        free(tid);
        free(scratch);
        free(wk);
        return 0;
    }
    int started = 0;
    for (int t = 1; t < nth; t++) {
        if (pthread_create(&tid[t], NULL, worker_main, &wk[t]) != 0)
            break; /* the threads already running and this one share its rows */
        started = t;
    }
    worker_main(&wk[0]);
    for (int t = 1; t <= started; t++)
        pthread_join(tid[t], NULL);
    free(tid);
    free(scratch);
    free(wk);
    return 0;
}
