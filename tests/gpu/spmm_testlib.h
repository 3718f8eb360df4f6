/*
 * spmm_testlib.h - host helpers shared by the GPU SpMM test and benchmark:
 * random sparse weights of a chosen pattern, private packers into the
 * sparse_format.h layouts (same contract as loaders/sparse_pack.c, kept here
 * so these programs build on their own), fp16 rounding and a float64
 * reference. Header-only (static functions); include from one .cu file.
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
    __half h;
    memcpy(&h, &u, 2);
    return __half2float(h);
}
static float tl_round(float f) { return tl_f(tl_h(f)); }

/* ---- weight patterns (dense fp32 [m][k], values already fp16-exact) ----- */
enum { TL_RANDOM = 0, TL_EMPTY_ROWS = 1, TL_DENSE_ROW = 2, TL_SINGLE = 3 };

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
 * the matrix nonzero) */
static void tl_gen_blocks(float *w, int64_t m, int64_t k, int bs, double density, int pattern) {
    memset(w, 0, (size_t)(m * k) * 4);
    const int64_t mb = (m + bs - 1) / bs, kb = (k + bs - 1) / bs;
    for (int64_t i = 0; i < mb; i++)
        for (int64_t j = 0; j < kb; j++) {
            bool on = tl_unif() < density;
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

/* ---- private packers ----------------------------------------------------- */
static void *tl_store(const float *v, int64_t n, sp_sparse_vtype vt) {
    if (vt == SP_VT_F32) {
        float *o = (float *)malloc((size_t)(n ? n : 1) * 4);
        memcpy(o, v, (size_t)n * 4);
        return o;
    }
    uint16_t *o = (uint16_t *)malloc((size_t)(n ? n : 1) * 2);
    for (int64_t i = 0; i < n; i++) o[i] = tl_h(v[i]);
    return o;
}

static void tl_pack_csr(const float *w, int64_t m, int64_t k, sp_sparse_vtype vt, sp_csr *o) {
    memset(o, 0, sizeof *o);
    o->m = m;
    o->k = k;
    o->vtype = vt;
    o->row_ptr = (int32_t *)malloc((size_t)(m + 1) * 4);
    int64_t nnz = 0;
    for (int64_t i = 0; i < m * k; i++) nnz += w[i] != 0.0f;
    o->nnz = nnz;
    float *v = (float *)malloc((size_t)(nnz ? nnz : 1) * 4);
    if (k <= 65536) o->col_idx16 = (uint16_t *)malloc((size_t)(nnz ? nnz : 1) * 2);
    else o->col_idx32 = (int32_t *)malloc((size_t)(nnz ? nnz : 1) * 4);
    int64_t p = 0;
    for (int64_t r = 0; r < m; r++) {
        o->row_ptr[r] = (int32_t)p;
        for (int64_t c = 0; c < k; c++)
            if (w[r * k + c] != 0.0f) {
                v[p] = w[r * k + c];
                if (o->col_idx16) o->col_idx16[p] = (uint16_t)c;
                else o->col_idx32[p] = (int32_t)c;
                p++;
            }
    }
    o->row_ptr[m] = (int32_t)p;
    o->values = tl_store(v, nnz, vt);
    free(v);
    /* rows by decreasing length, ties by index (insertion into buckets) */
    o->row_order = (int32_t *)malloc((size_t)m * 4);
    int64_t maxlen = 0;
    for (int64_t r = 0; r < m; r++)
        if (o->row_ptr[r + 1] - o->row_ptr[r] > maxlen) maxlen = o->row_ptr[r + 1] - o->row_ptr[r];
    int64_t q = 0;
    for (int64_t len = maxlen; len >= 0; len--)
        for (int64_t r = 0; r < m; r++)
            if (o->row_ptr[r + 1] - o->row_ptr[r] == len) o->row_order[q++] = (int32_t)r;
}

static void tl_pack_bsr(const float *w, int64_t m, int64_t k, int bs, sp_bsr *o) {
    memset(o, 0, sizeof *o);
    o->m = m;
    o->k = k;
    o->br = o->bc = bs;
    o->mb = (m + bs - 1) / bs;
    o->kb = (k + bs - 1) / bs;
    o->vtype = SP_VT_F16;
    o->block_ptr = (int32_t *)malloc((size_t)(o->mb + 1) * 4);
    int64_t nb = 0;
    for (int64_t i = 0; i < o->mb; i++)
        for (int64_t j = 0; j < o->kb; j++) {
            bool any = false;
            for (int64_t r = i * bs; r < (i + 1) * bs && r < m && !any; r++)
                for (int64_t c = j * bs; c < (j + 1) * bs && c < k; c++)
                    if (w[r * k + c] != 0.0f) { any = true; break; }
            nb += any;
        }
    o->nblocks = nb;
    o->block_col = (int32_t *)malloc((size_t)(nb ? nb : 1) * 4);
    uint16_t *v = (uint16_t *)calloc((size_t)(nb ? nb : 1) * bs * bs, 2);
    int64_t b = 0;
    for (int64_t i = 0; i < o->mb; i++) {
        o->block_ptr[i] = (int32_t)b;
        for (int64_t j = 0; j < o->kb; j++) {
            bool any = false;
            for (int64_t r = i * bs; r < (i + 1) * bs && r < m && !any; r++)
                for (int64_t c = j * bs; c < (j + 1) * bs && c < k; c++)
                    if (w[r * k + c] != 0.0f) { any = true; break; }
            if (!any) continue;
            o->block_col[b] = (int32_t)j;
            for (int64_t r = 0; r < bs; r++)
                for (int64_t c = 0; c < bs; c++) {
                    const int64_t rr = i * bs + r, cc = j * bs + c;
                    v[b * bs * bs + r * bs + c] = (rr < m && cc < k) ? tl_h(w[rr * k + cc]) : 0;
                }
            b++;
        }
    }
    o->block_ptr[o->mb] = (int32_t)b;
    o->values = v;
}

/* returns 0, or -1 when a group has more than 2 nonzeros */
static int tl_pack_24(const float *w, int64_t m, int64_t k, sp_24 *o) {
    memset(o, 0, sizeof *o);
    o->m = m;
    o->k = k;
    o->kp = (k + 3) / 4 * 4;
    o->vtype = SP_VT_F16;
    const int64_t g = o->kp / 4;
    uint16_t *v = (uint16_t *)calloc((size_t)(m * g * 2), 2);
    o->meta = (uint8_t *)calloc((size_t)(m * g), 1);
    o->values = v;
    for (int64_t r = 0; r < m; r++)
        for (int64_t j = 0; j < g; j++) {
            int pos[4], n = 0;
            for (int t = 0; t < 4; t++) {
                const int64_t c = j * 4 + t;
                if (c < k && w[r * k + c] != 0.0f) {
                    if (n == 2) return -1;
                    pos[n++] = t;
                }
            }
            /* complete with the lowest unused positions, values 0 */
            for (int t = 0; t < 4 && n < 2; t++) {
                bool used = false;
                for (int u = 0; u < n; u++) used |= pos[u] == t;
                if (!used) pos[n++] = t;
            }
            if (pos[0] > pos[1]) { int t = pos[0]; pos[0] = pos[1]; pos[1] = t; }
            for (int s = 0; s < 2; s++) {
                const int64_t c = j * 4 + pos[s];
                v[(r * g + j) * 2 + s] = c < k ? tl_h(w[r * k + c]) : 0;
            }
            o->meta[r * g + j] = (uint8_t)(pos[0] | (pos[1] << 2));
        }
    return 0;
}

static void tl_free_csr(sp_csr *o) {
    free(o->row_ptr); free(o->col_idx16); free(o->col_idx32); free(o->row_order); free(o->values);
    memset(o, 0, sizeof *o);
}
static void tl_free_bsr(sp_bsr *o) {
    free(o->block_ptr); free(o->block_col); free(o->values);
    memset(o, 0, sizeof *o);
}
static void tl_free_24(sp_24 *o) {
    free(o->values); free(o->meta);
    memset(o, 0, sizeof *o);
}

/* ---- float64 reference: y[n][m] = act(W x[n] + bias + res) -------------- */
static void tl_reference(const float *w, int64_t m, int64_t k, const float *x, int64_t n,
                         const float *bias, const float *res, int act, double *y) {
    for (int64_t i = 0; i < n; i++)
        for (int64_t r = 0; r < m; r++) {
            double s = 0.0;
            const float *wr = w + r * k, *xr = x + i * k;
            for (int64_t c = 0; c < k; c++)
                if (wr[c] != 0.0f) s += (double)wr[c] * (double)xr[c];
            if (bias) s += bias[r];
            if (res) s += res[i * m + r];
            if (act == 1 && s < 0) s = 0;
            y[i * m + r] = s;
        }
}

#endif
