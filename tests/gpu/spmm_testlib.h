/*
 * spmm_testlib.h - host helpers shared by the GPU SpMM test and benchmark:
 * random sparse weights of a chosen pattern, packing through
 * loaders/sparse_pack.c (link it), fp16 rounding and a float64 reference.
 * Header-only (static functions); include from one .cu file.
 */
#ifndef SPRUN_SPMM_TESTLIB_H
#define SPRUN_SPMM_TESTLIB_H

#include <cuda_fp16.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "loaders/sparse_format.h"
#include "loaders/sparse_pack.h"

/* A CUDA runtime call that must succeed: else print where and exit(1). */
#define CK(call)                                                                                          \
    do {                                                                                                  \
        cudaError_t e_ = (call);                                                                          \
        if (e_ != cudaSuccess) {                                                                          \
            printf("CUDA error %s at %s:%d: %s\n", cudaGetErrorString(e_), __FILE__, __LINE__, #call);    \
            exit(1);                                                                                      \
        }                                                                                                 \
    } while (0)

/* ---- random numbers (xorshift64*, deterministic per seed) ---------------- */
static uint64_t tl_state = 0x9E3779B97F4A7C15ull;
static void tl_seed(uint64_t s) { tl_state = s * 0x9E3779B97F4A7C15ull + 1; }
static uint64_t tl_next(void) {
    tl_state ^= tl_state >> 12;
    tl_state ^= tl_state << 25;
    tl_state ^= tl_state >> 27;
    return tl_state * 0x2545F4914F6CDD1Dull;
}
static double tl_unif(void) { return (double)(tl_next() >> 11) * (1.0 / 9007199254740992.0); }
/* nonzero value in +-[0.25, 1.25): never zero, so patterns are exact */
static float tl_val(void) {
    const float v = (float)(0.25 + tl_unif());
    return (tl_next() & 1) ? v : -v;
}

static uint16_t tl_h(float f) {
    __half h = __float2half_rn(f);
    uint16_t u;
    memcpy(&u, &h, 2);
    return u;
}
static float tl_f(uint16_t u) {
    __half_raw r;
    r.x = u;
    return __half2float(__half(r));
}
static float tl_round(float f) { return tl_f(tl_h(f)); }

/* ---- weight patterns (dense fp32 [m][k], values already fp16-exact) ----- */
enum { TL_RANDOM = 0, TL_EMPTY_ROWS = 1, TL_DENSE_ROW = 2, TL_SINGLE = 3, TL_GAPS = 4 };

/* unstructured: each element nonzero with probability density */
static void tl_gen_unstructured(float *w, int64_t m, int64_t k, double density, int pattern) {
    for (int64_t i = 0; i < m * k; i++) w[i] = tl_unif() < density ? tl_round(tl_val()) : 0.0f;
    if (pattern == TL_EMPTY_ROWS)
        for (int64_t r = 0; r < m; r += 3) memset(w + r * k, 0, (size_t)k * 4);
    if (pattern == TL_DENSE_ROW)
        for (int64_t c = 0; c < k; c++) w[(m / 2) * k + c] = tl_round(tl_val());
    if (pattern == TL_SINGLE) {
        memset(w, 0, (size_t)(m * k) * 4);
        w[(int64_t)(tl_unif() * m) * k + (int64_t)(tl_unif() * k)] = tl_round(tl_val());
    }
}

/* 2:4: every group of 4 keeps 2 (random positions); patterns as above, with
 * "dense row" = a row where every group keeps 2, "empty rows" every 3rd row,
 * and RANDOM also leaves ~20 % of groups with fewer than 2 */
static void tl_gen_24(float *w, int64_t m, int64_t k, int pattern) {
    memset(w, 0, (size_t)(m * k) * 4);
    for (int64_t r = 0; r < m; r++)
        for (int64_t g = 0; g * 4 < k; g++) {
            int a = (int)(tl_next() % 4), b = (int)(tl_next() % 3);
            if (b >= a) b++;
            const double u = tl_unif();
            const int keep = (pattern == TL_DENSE_ROW && r == m / 2) ? 2 : (u < 0.1 ? 0 : u < 0.2 ? 1 : 2);
            if (keep >= 1 && g * 4 + a < k) w[r * k + g * 4 + a] = tl_round(tl_val());
            if (keep >= 2 && g * 4 + b < k) w[r * k + g * 4 + b] = tl_round(tl_val());
        }
    if (pattern == TL_EMPTY_ROWS)
        for (int64_t r = 0; r < m; r += 3) memset(w + r * k, 0, (size_t)k * 4);
    if (pattern == TL_SINGLE) {
        memset(w, 0, (size_t)(m * k) * 4);
        w[(int64_t)(tl_unif() * m) * k + (int64_t)(tl_unif() * k)] = tl_round(tl_val());
    }
}

/* blocks of bs x bs present with probability density (all elements inside
 * the matrix nonzero). TL_GAPS (blocks only; density unused): in every 128
 * rows, the first 64 have a block in every block column, the other 64 only
 * in block columns 0, 1, 3, 6, 10, ... (gaps of 1, 2, 3, ...): for a kernel
 * whose CTA or warpgroup owns 64 rows, a run without its blocks of every
 * length up to the last gap, so that one equals its pipeline's stage count */
static void tl_gen_blocks(float *w, int64_t m, int64_t k, int bs, double density, int pattern) {
    memset(w, 0, (size_t)(m * k) * 4);
    const int64_t mb = (m + bs - 1) / bs, kb = (k + bs - 1) / bs;
    for (int64_t i = 0; i < mb; i++)
        for (int64_t j = 0; j < kb; j++) {
            bool on = tl_unif() < density;
            if (pattern == TL_GAPS) {
                on = (i * bs) % 128 < 64;
                for (int64_t t = 0, tri = 0; !on && tri <= j; tri += ++t) on = tri == j;
            }
            if (pattern == TL_EMPTY_ROWS && i % 3 == 0) on = false;
            if (pattern == TL_DENSE_ROW && i == mb / 2) on = true;
            if (!on) continue;
            for (int64_t r = i * bs; r < (i + 1) * bs && r < m; r++)
                for (int64_t c = j * bs; c < (j + 1) * bs && c < k; c++)
                    w[r * k + c] = tl_round(tl_val());
        }
    if (pattern == TL_SINGLE) {
        memset(w, 0, (size_t)(m * k) * 4);
        w[(int64_t)(tl_unif() * m) * k + (int64_t)(tl_unif() * k)] = tl_round(tl_val());
    }
}

/* ---- packers: the project's (loaders/sparse_pack.c), which produced
 * byte-identical layouts to the private packers these programs started with
 * on every pattern generated here (checked 2026-11-25); a failure to pack
 * is fatal for a test program ------------------------------------------- */
static void tl_pack_csr(const float *w, int64_t m, int64_t k, sp_sparse_vtype vt, sp_csr *o) {
    char err[256];
    if (sp_pack_csr(w, m, k, vt, o, err, sizeof err)) {
        fprintf(stderr, "sp_pack_csr: %s\n", err);
        exit(1);
    }
}
static void tl_pack_bsr(const float *w, int64_t m, int64_t k, int bs, sp_bsr *o) {
    char err[256];
    if (sp_pack_bsr(w, m, k, bs, bs, SP_VT_F16, o, err, sizeof err)) {
        fprintf(stderr, "sp_pack_bsr: %s\n", err);
        exit(1);
    }
}
/* returns 0, or -1 when a group has more than 2 nonzeros */
static int tl_pack_24(const float *w, int64_t m, int64_t k, sp_24 *o) {
    char err[256];
    return sp_pack_24(w, m, k, SP_VT_F16, o, err, sizeof err) ? -1 : 0;
}
static void tl_free_csr(sp_csr *o) {
    sp_sparse_matrix s;
    s.kind = SP_SPARSE_CSR;
    s.u.csr = *o;
    sp_sparse_free(&s);
    memset(o, 0, sizeof *o);
}
static void tl_free_bsr(sp_bsr *o) {
    sp_sparse_matrix s;
    s.kind = SP_SPARSE_BSR;
    s.u.bsr = *o;
    sp_sparse_free(&s);
    memset(o, 0, sizeof *o);
}
static void tl_free_24(sp_24 *o) {
    sp_sparse_matrix s;
    s.kind = SP_SPARSE_24;
    s.u.s24 = *o;
    sp_sparse_free(&s);
    memset(o, 0, sizeof *o);
}

/* ---- float64 reference: y[n][m] = act(W x[n] + bias + res) -------------- */
/* the epilogue activations (SP_CUDA_ACT_* = the IR's SP_ACT_*), in double */
static double tl_act(int act, double v, double alpha, double beta) {
    switch (act) {
    case 1: return v > 0 ? v : 0;                                        /* relu */
    case 2: return v < alpha ? alpha : (v > beta ? beta : v);             /* clip */
    case 3: return 1.0 / (1.0 + exp(-v));                                 /* sigmoid */
    case 4: return 0.5 * v * (1.0 + erf(v / sqrt(2.0)));                  /* gelu */
    case 5: return tanh(v);                                               /* tanh */
    case 6: return v * fmin(1.0, fmax(0.0, v / 6.0 + 0.5));               /* hardswish */
    case 7: return fmin(1.0, fmax(0.0, alpha * v + beta));                /* hardsigmoid */
    case 8: return v >= 0 ? v : alpha * v;                                /* leakyrelu */
    default: return v;
    }
}

static void tl_reference(const float *w, int64_t m, int64_t k, const float *x, int64_t n,
                         const float *bias, const float *res, int act, double *y,
                         double alpha = 0.0, double beta = 0.0) {
    for (int64_t i = 0; i < n; i++)
        for (int64_t r = 0; r < m; r++) {
            double s = 0.0;
            const float *wr = w + r * k, *xr = x + i * k;
            for (int64_t c = 0; c < k; c++)
                if (wr[c] != 0.0f) s += (double)wr[c] * (double)xr[c];
            if (bias) s += bias[r];
            if (res) s += res[i * m + r];
            y[i * m + r] = tl_act(act, s, alpha, beta);
        }
}

#endif
