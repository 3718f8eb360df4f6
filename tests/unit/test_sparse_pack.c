/*
 * test_sparse_pack.c - runtime/half.h conversions and the CSR / BSR / 2:4
 * packers of loaders/sparse_pack.c: round trips over many shapes, layout
 * invariants, 2:4 rejection, sizes, errors.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "loaders/sparse_pack.h"
#include "runtime/half.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------------ */
/* Helpers                                                                   */
/* ------------------------------------------------------------------------ */

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;

static uint32_t rng_u32(void)
{
    /* xorshift64*: deterministic across platforms, unlike rand(). */
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return (uint32_t)((rng_state * 0x2545f4914f6cdd1dull) >> 32);
}

static double rng_unit(void) { return rng_u32() / 4294967296.0; }

/* Elements to allocate for [m, k]: at least 1 so that NULL means failure. */
static size_t alloc_count(int64_t m, int64_t k) { return m > 0 && k > 0 ? (size_t)(m * k) : 1; }

/* A nonzero value in +-[0.5, 1.5): never 0, so the pattern is exact. */
static float rng_nonzero(void)
{
    const float v = 0.5f + (float)rng_unit();
    return (rng_u32() & 1) ? v : -v;
}

/* Random [m, k] matrix: each element nonzero with probability density;
 * row r is forced empty when r % 7 == 3 and fully dense when r % 11 == 5,
 * so every shape with enough rows has both kinds of rows. */
static float *random_matrix(int64_t m, int64_t k, double density)
{
    float *w = malloc(alloc_count(m, k) * sizeof *w);
    assert_non_null(w);
    for (int64_t i = 0; i < m; i++)
        for (int64_t j = 0; j < k; j++) {
            float v = rng_unit() < density ? rng_nonzero() : 0.0f;
            if (i % 7 == 3)
                v = 0.0f;
            else if (i % 11 == 5)
                v = rng_nonzero();
            w[i * k + j] = v;
        }
    return w;
}

/* The dense matrix as the packed fp16 values represent it. */
static void round_to_half(float *w, int64_t n)
{
    for (int64_t i = 0; i < n; i++)
        w[i] = sp_f16_to_f32(sp_f32_to_f16(w[i]));
}

static void assert_unpacks_to(const sp_sparse_matrix *s, const float *w, int64_t m, int64_t k,
                              sp_sparse_vtype vt)
{
    float *expect = malloc(alloc_count(m, k) * sizeof *expect);
    float *got = malloc(alloc_count(m, k) * sizeof *got);
    assert_non_null(expect);
    assert_non_null(got);
    memcpy(expect, w, (size_t)(m * k) * sizeof *w);
    if (vt == SP_VT_F16)
        round_to_half(expect, m * k);
    for (int64_t i = 0; i < m * k; i++)
        got[i] = NAN; /* poison: every element must be written */
    assert_int_equal(sp_unpack_dense(s, got), 0);
    assert_memory_equal(expect, got, (size_t)(m * k) * sizeof *got);
    free(expect);
    free(got);
}

static const int64_t shapes[][2] = {
    {1, 1}, {1, 7}, {7, 1}, {3, 4}, {5, 13}, {16, 16}, {17, 33}, {64, 64},
    {33, 127}, {100, 36}, {31, 257}, {128, 9}, {0, 5}, {5, 0}, {0, 0},
};
static const double densities[] = {0.0, 0.05, 0.3, 0.7, 1.0};
#define NSHAPES (sizeof shapes / sizeof shapes[0])
#define NDENS (sizeof densities / sizeof densities[0])

/* ------------------------------------------------------------------------ */
/* half.h                                                                    */
/* ------------------------------------------------------------------------ */

static float bits_f32(uint32_t b)
{
    float f;
    memcpy(&f, &b, sizeof f);
    return f;
}

static void test_half_known_values(void **state)
{
    (void)state;
    assert_int_equal(sp_f32_to_f16(0.0f), 0x0000);
    assert_int_equal(sp_f32_to_f16(-0.0f), 0x8000);
    assert_int_equal(sp_f32_to_f16(1.0f), 0x3c00);
    assert_int_equal(sp_f32_to_f16(-2.0f), 0xc000);
    assert_int_equal(sp_f32_to_f16(65504.0f), 0x7bff);    /* largest half */
    assert_int_equal(sp_f32_to_f16(65519.996f), 0x7bff);  /* below the tie */
    assert_int_equal(sp_f32_to_f16(65520.0f), 0x7c00);    /* tie rounds to even = inf */
    assert_int_equal(sp_f32_to_f16(1e10f), 0x7c00);
    assert_int_equal(sp_f32_to_f16(-INFINITY), 0xfc00);
    assert_int_equal(sp_f32_to_f16(ldexpf(1.0f, -14)), 0x0400); /* smallest normal */
    assert_int_equal(sp_f32_to_f16(ldexpf(1.0f, -24)), 0x0001); /* smallest subnormal */
    assert_int_equal(sp_f32_to_f16(ldexpf(1.0f, -25)), 0x0000); /* tie to even: 0 */
    assert_int_equal(sp_f32_to_f16(ldexpf(1.5f, -25)), 0x0001);
    assert_int_equal(sp_f32_to_f16(ldexpf(3.0f, -25)), 0x0002); /* 1.5 ulp: tie to 2 */
    assert_int_equal(sp_f32_to_f16(ldexpf(5.0f, -25)), 0x0002); /* 2.5 ulp: tie to 2 */
    assert_int_equal(sp_f32_to_f16(ldexpf(1023.5f, -24)), 0x0400); /* carry to normal */
    assert_int_equal(sp_f32_to_f16(1.0f + ldexpf(1.0f, -11)), 0x3c00); /* tie to even */
    assert_int_equal(sp_f32_to_f16(1.0f + ldexpf(3.0f, -11)), 0x3c02); /* tie to even */
    const uint16_t qnan = sp_f32_to_f16(NAN);
    assert_true((qnan & 0x7c00) == 0x7c00 && (qnan & 0x3ff) != 0);
    /* A signalling NaN whose payload is only in the low bits stays a NaN. */
    const uint16_t snan = sp_f32_to_f16(bits_f32(0x7f800001u));
    assert_true((snan & 0x7c00) == 0x7c00 && (snan & 0x3ff) != 0);

    assert_true(sp_f16_to_f32(0x0001) == ldexpf(1.0f, -24));
    assert_true(sp_f16_to_f32(0x03ff) == ldexpf(1023.0f, -24));
    assert_true(sp_f16_to_f32(0x7bff) == 65504.0f);
    assert_true(isinf(sp_f16_to_f32(0x7c00)) && sp_f16_to_f32(0x7c00) > 0);
    assert_true(isnan(sp_f16_to_f32(0x7e00)));
    assert_true(signbit(sp_f16_to_f32(0x8000)));
}

/* Every half survives half -> float -> half unchanged (NaNs stay NaNs). */
static void test_half_round_trip_all(void **state)
{
    (void)state;
    for (uint32_t h = 0; h < 0x10000u; h++) {
        const float f = sp_f16_to_f32((uint16_t)h);
        const uint16_t back = sp_f32_to_f16(f);
        if ((h & 0x7c00) == 0x7c00 && (h & 0x3ff)) {
            assert_true(isnan(f));
            assert_true((back & 0x7c00) == 0x7c00 && (back & 0x3ff));
            assert_int_equal(back & 0x8000, h & 0x8000);
        } else {
            assert_int_equal(back, h);
        }
    }
}

/* Round-to-nearest-even against exact arithmetic: for a float f, the chosen
 * half must be at least as close as its neighbours, and on a tie even. */
static void test_half_rounding_sampled(void **state)
{
    (void)state;
    for (uint64_t b = 0; b < 0x100000000ull; b += 4099) { /* prime stride: ~1M floats of every exponent */
        const float f = bits_f32((uint32_t)b);
        if (isnan(f))
            continue;
        const uint16_t h = sp_f32_to_f16(f);
        const double af = fabs((double)f);
        const uint16_t ah = h & 0x7fff;
        assert_int_equal(h & 0x8000, signbit(f) ? 0x8000 : 0);
        if (ah == 0x7c00) { /* inf: only for |f| >= 65520 */
            assert_true(af >= 65520.0);
            continue;
        }
        const double got = sp_f16_to_f32(ah);
        const double err = fabs(got - af);
        /* Neighbours of ah: both must be no closer (ties -> even mantissa). */
        if (ah > 0) {
            const double lo = sp_f16_to_f32((uint16_t)(ah - 1));
            const double elo = fabs(lo - af);
            assert_true(err < elo || (err == elo && (ah & 1) == 0));
        }
        if (ah < 0x7bff) {
            const double hi = sp_f16_to_f32((uint16_t)(ah + 1));
            const double ehi = fabs(hi - af);
            assert_true(err < ehi || (err == ehi && (ah & 1) == 0));
        } else {
            assert_true(af < 65520.0);
        }
    }
}

/* ------------------------------------------------------------------------ */
/* CSR                                                                       */
/* ------------------------------------------------------------------------ */

static void check_csr_invariants(const sp_csr *c, const float *w)
{
    assert_int_equal(c->row_ptr[0], 0);
    assert_int_equal(c->row_ptr[c->m], c->nnz);
    assert_true((c->k <= 65536) == (c->col_idx16 != NULL));
    assert_true((c->k <= 65536) == (c->col_idx32 == NULL));
    for (int64_t i = 0; i < c->m; i++) {
        int64_t expect = 0;
        for (int64_t j = 0; j < c->k; j++)
            expect += w[i * c->k + j] != 0.0f;
        assert_int_equal(c->row_ptr[i + 1] - c->row_ptr[i], expect);
        for (int64_t p = c->row_ptr[i] + 1; p < c->row_ptr[i + 1]; p++) {
            const int64_t a = c->col_idx16 ? c->col_idx16[p - 1] : c->col_idx32[p - 1];
            const int64_t b = c->col_idx16 ? c->col_idx16[p] : c->col_idx32[p];
            assert_true(a < b);
        }
    }
    /* row_order: a permutation, by decreasing length, ties by index. */
    char *seen = calloc((size_t)c->m + 1, 1);
    assert_non_null(seen);
    for (int64_t t = 0; t < c->m; t++) {
        const int32_t r = c->row_order[t];
        assert_true(r >= 0 && r < c->m && !seen[r]);
        seen[r] = 1;
        if (t > 0) {
            const int32_t q = c->row_order[t - 1];
            const int64_t lq = c->row_ptr[q + 1] - c->row_ptr[q];
            const int64_t lr = c->row_ptr[r + 1] - c->row_ptr[r];
            assert_true(lq > lr || (lq == lr && q < r));
        }
    }
    free(seen);
}

static void csr_case(int64_t m, int64_t k, double density, sp_sparse_vtype vt)
{
    float *w = random_matrix(m, k, density);
    char err[256] = "";
    sp_sparse_matrix s;
    assert_int_equal(sp_pack(w, m, k, SP_SPARSE_CSR, 0, 0, vt, &s, err, sizeof err), 0);
    assert_int_equal(s.kind, SP_SPARSE_CSR);
    check_csr_invariants(&s.u.csr, w);
    assert_unpacks_to(&s, w, m, k, vt);

    /* Deterministic: a second packing is byte-identical. */
    sp_sparse_matrix s2;
    assert_int_equal(sp_pack(w, m, k, SP_SPARSE_CSR, 0, 0, vt, &s2, err, sizeof err), 0);
    const int64_t nnz = s.u.csr.nnz;
    assert_memory_equal(s.u.csr.row_ptr, s2.u.csr.row_ptr, (size_t)(m + 1) * 4);
    assert_memory_equal(s.u.csr.row_order, s2.u.csr.row_order, (size_t)m * 4);
    assert_memory_equal(s.u.csr.values, s2.u.csr.values, (size_t)nnz * sp_vtype_size(vt));
    sp_sparse_free(&s2);
    sp_sparse_free(&s);
    assert_int_equal(s.kind, SP_SPARSE_DENSE); /* zeroed */
    assert_null(s.u.csr.values);
    free(w);
}

static void test_csr_round_trip(void **state)
{
    (void)state;
    for (size_t si = 0; si < NSHAPES; si++)
        for (size_t di = 0; di < NDENS; di++)
            for (int vt = 0; vt < 2; vt++)
                csr_case(shapes[si][0], shapes[si][1], densities[di], (sp_sparse_vtype)vt);
}

/* The 2:4 split: base (2:4) + overflow (CSR) unpack to exactly the weight,
 * the overflow holds only third and fourth nonzeros of their group, and its
 * size is sp_csr_overflow24's count. */
static void split24_case(int64_t m, int64_t k, double density, sp_sparse_vtype vt)
{
    float *w = random_matrix(m, k, density);
    char err[256] = "";
    sp_csr c;
    assert_int_equal(sp_pack_csr(w, m, k, vt, &c, err, sizeof err), 0);
    sp_sparse_matrix b = {.kind = SP_SPARSE_24}, o = {.kind = SP_SPARSE_CSR};
    assert_int_equal(sp_csr_split24(&c, &b.u.s24, &o.u.csr, err, sizeof err), 0);
    assert_int_equal(o.u.csr.nnz, sp_csr_overflow24(&c));
    float *wb = malloc((size_t)(m * k + 1) * sizeof *wb), *wo = malloc((size_t)(m * k + 1) * sizeof *wo);
    assert_non_null(wb);
    assert_non_null(wo);
    assert_int_equal(sp_unpack_dense(&b, wb), 0);
    assert_int_equal(sp_unpack_dense(&o, wo), 0);
    check_csr_invariants(&o.u.csr, wo);
    for (int64_t i = 0; i < m; i++)
        for (int64_t j = 0; j < k; j++) {
            const float want = vt == SP_VT_F16 ? sp_f16_to_f32(sp_f32_to_f16(w[i * k + j])) : w[i * k + j];
            const float got_b = wb[i * k + j], got_o = wo[i * k + j];
            assert_true(got_b == 0.0f || got_o == 0.0f); /* each nonzero in one part */
            assert_true(got_b + got_o == want);
            if (got_o != 0.0f) { /* at least two nonzeros of its group precede it */
                int before = 0;
                for (int64_t q = j / 4 * 4; q < j; q++)
                    before += w[i * k + q] != 0.0f;
                assert_true(before >= 2);
            }
        }
    free(wb);
    free(wo);
    sp_sparse_free(&b);
    sp_sparse_free(&o);
    sp_sparse_matrix cs = {.kind = SP_SPARSE_CSR, .u.csr = c};
    sp_sparse_free(&cs);
    free(w);
}

static void test_csr_split24(void **state)
{
    (void)state;
    for (size_t si = 0; si < NSHAPES; si++)
        for (size_t di = 0; di < NDENS; di++)
            for (int vt = 0; vt < 2; vt++)
                split24_case(shapes[si][0], shapes[si][1], densities[di], (sp_sparse_vtype)vt);
    split24_case(3, 70001, 0.6, SP_VT_F32); /* 32-bit columns */
    /* a full row: groups of four, two of each in the overflow */
    float w[2 * 8] = {1, 2, 3, 4, 5, 6, 7, 8, 0, 0, 0, 9, 0, 0, 0, 0};
    sp_csr c;
    assert_int_equal(sp_pack_csr(w, 2, 8, SP_VT_F32, &c, NULL, 0), 0);
    sp_24 b;
    sp_csr o;
    assert_int_equal(sp_csr_split24(&c, &b, &o, NULL, 0), 0);
    assert_int_equal(o.nnz, 4);
    assert_int_equal(o.row_ptr[1], 4);
    assert_int_equal(o.row_ptr[2], 4);
    assert_int_equal(o.col_idx16[0], 2);
    assert_int_equal(o.col_idx16[3], 7);
    assert_int_equal(b.meta[0], 0 | (1 << 2));
    assert_int_equal(b.meta[2], 0 | (3 << 2)); /* row 1 group 0: a lone 9 at 3, completed with 0 */
    assert_true(((float *)b.values)[5] == 9.0f);
    sp_sparse_matrix sb = {.kind = SP_SPARSE_24, .u.s24 = b}, so = {.kind = SP_SPARSE_CSR, .u.csr = o},
                     sc = {.kind = SP_SPARSE_CSR, .u.csr = c};
    sp_sparse_free(&sb);
    sp_sparse_free(&so);
    sp_sparse_free(&sc);
    assert_int_not_equal(sp_csr_split24(NULL, &b, &o, NULL, 0), 0);
}

/* K = 65536 still fits 16-bit columns; K = 65537 and beyond take 32-bit. */
static void test_csr_wide_k(void **state)
{
    (void)state;
    csr_case(3, 65536, 0.01, SP_VT_F32);
    csr_case(4, 70001, 0.01, SP_VT_F32);
    csr_case(2, 70001, 0.001, SP_VT_F16);

    /* The very last column of a wide row is representable. */
    const int64_t k = 70001;
    float *w = calloc((size_t)k, sizeof *w);
    assert_non_null(w);
    w[k - 1] = 3.0f;
    w[65536] = -1.0f;
    sp_csr c;
    assert_int_equal(sp_pack_csr(w, 1, k, SP_VT_F32, &c, NULL, 0), 0);
    assert_non_null(c.col_idx32);
    assert_int_equal(c.nnz, 2);
    assert_int_equal(c.col_idx32[0], 65536);
    assert_int_equal(c.col_idx32[1], k - 1);
    sp_sparse_matrix s = {.kind = SP_SPARSE_CSR, .u.csr = c};
    sp_sparse_free(&s);
    free(w);
}

static void test_csr_single_nonzero(void **state)
{
    (void)state;
    float w[5 * 9] = {0};
    w[3 * 9 + 8] = 2.5f;
    sp_csr c;
    assert_int_equal(sp_pack_csr(w, 5, 9, SP_VT_F32, &c, NULL, 0), 0);
    assert_int_equal(c.nnz, 1);
    assert_int_equal(c.col_idx16[0], 8);
    assert_true(((float *)c.values)[0] == 2.5f);
    const int32_t order[5] = {3, 0, 1, 2, 4};
    assert_memory_equal(c.row_order, order, sizeof order);
    const int32_t ptr[6] = {0, 0, 0, 0, 1, 1};
    assert_memory_equal(c.row_ptr, ptr, sizeof ptr);
    sp_sparse_matrix s = {.kind = SP_SPARSE_CSR, .u.csr = c};
    /* (m+1) row_ptr + m row_order + nnz * (2-byte col + 4-byte value) */
    assert_int_equal(sp_sparse_bytes(&s), 6 * 4 + 5 * 4 + 1 * (2 + 4));
    sp_sparse_free(&s);
}

/* ------------------------------------------------------------------------ */
/* BSR                                                                       */
/* ------------------------------------------------------------------------ */

static const int blocks[][2] = {{1, 1}, {4, 4}, {8, 8}, {16, 16}, {32, 32},
                                {1, 8}, {8, 1}, {3, 5}, {1, 32}};
#define NBLOCKS (sizeof blocks / sizeof blocks[0])

static void bsr_case(int64_t m, int64_t k, double density, int br, int bc, sp_sparse_vtype vt)
{
    float *w = random_matrix(m, k, density);
    char err[256] = "";
    sp_sparse_matrix s;
    assert_int_equal(sp_pack(w, m, k, SP_SPARSE_BSR, br, bc, vt, &s, err, sizeof err), 0);
    const sp_bsr *b = &s.u.bsr;
    assert_int_equal(b->mb, (m + br - 1) / br);
    assert_int_equal(b->kb, (k + bc - 1) / bc);
    int64_t expect = 0;
    for (int64_t bi = 0; bi < b->mb; bi++) {
        for (int64_t bj = 0; bj < b->kb; bj++) {
            int any = 0;
            for (int64_t i = bi * br; i < (bi + 1) * br && i < m; i++)
                for (int64_t j = bj * bc; j < (bj + 1) * bc && j < k; j++)
                    any |= w[i * k + j] != 0.0f;
            expect += any;
        }
        assert_int_equal(b->block_ptr[bi + 1], expect);
        for (int64_t p = b->block_ptr[bi] + 1; p < b->block_ptr[bi + 1]; p++)
            assert_true(b->block_col[p - 1] < b->block_col[p]);
    }
    assert_int_equal(b->nblocks, expect);
    /* Padding elements of stored blocks are zero. */
    for (int64_t bi = 0; bi < b->mb; bi++)
        for (int64_t p = b->block_ptr[bi]; p < b->block_ptr[bi + 1]; p++)
            for (int r = 0; r < br; r++)
                for (int c = 0; c < bc; c++)
                    if (bi * br + r >= m || (int64_t)b->block_col[p] * bc + c >= k) {
                        const size_t o = (size_t)((p * br + r) * bc + c);
                        if (vt == SP_VT_F16)
                            assert_int_equal(((uint16_t *)b->values)[o], 0);
                        else
                            assert_true(((float *)b->values)[o] == 0.0f);
                    }
    assert_unpacks_to(&s, w, m, k, vt);
    assert_int_equal(sp_sparse_bytes(&s),
                     (size_t)(b->mb + 1) * 4 + (size_t)b->nblocks * 4 +
                         (size_t)b->nblocks * br * bc * sp_vtype_size(vt));
    sp_sparse_free(&s);
    free(w);
}

static void test_bsr_round_trip(void **state)
{
    (void)state;
    for (size_t si = 0; si < NSHAPES; si++)
        for (size_t bi = 0; bi < NBLOCKS; bi++)
            for (size_t di = 0; di < NDENS; di += 2)
                bsr_case(shapes[si][0], shapes[si][1], densities[di], blocks[bi][0],
                         blocks[bi][1], (sp_sparse_vtype)((si + bi) & 1));
}

/* A block is stored iff it holds a nonzero: a lone element keeps one. */
static void test_bsr_structure(void **state)
{
    (void)state;
    float w[10 * 10] = {0};
    w[9 * 10 + 9] = 1.0f; /* in the ragged corner block (8..9, 8..9) */
    w[0] = -1.0f;
    sp_bsr b;
    assert_int_equal(sp_pack_bsr(w, 10, 10, 4, 4, SP_VT_F32, &b, NULL, 0), 0);
    assert_int_equal(b.mb, 3);
    assert_int_equal(b.kb, 3);
    assert_int_equal(b.nblocks, 2);
    const int32_t ptr[4] = {0, 1, 1, 2}, col[2] = {0, 2};
    assert_memory_equal(b.block_ptr, ptr, sizeof ptr);
    assert_memory_equal(b.block_col, col, sizeof col);
    const float *v = b.values;
    assert_true(v[0] == -1.0f);
    assert_true(v[16 + 1 * 4 + 1] == 1.0f); /* row 9 = block row 2, r 1; col 9 = c 1 */
    sp_sparse_matrix s = {.kind = SP_SPARSE_BSR, .u.bsr = b};
    sp_sparse_free(&s);
}

/* ------------------------------------------------------------------------ */
/* 2:4                                                                       */
/* ------------------------------------------------------------------------ */

/* Random matrix satisfying 2:4 along K: each group keeps 0, 1 or 2 random
 * positions (full 2 most of the time). */
static float *random_24(int64_t m, int64_t k)
{
    float *w = calloc(alloc_count(m, k), sizeof *w);
    assert_non_null(w);
    for (int64_t i = 0; i < m; i++)
        for (int64_t g = 0; g < k; g += 4) {
            const int want = (int)(rng_u32() % 5); /* 0,1: that many; else 2 */
            const int n = want < 2 ? want : 2;
            for (int t = 0; t < n; t++) {
                const int64_t j = g + rng_u32() % 4;
                if (j < k)
                    w[i * k + j] = rng_nonzero();
            }
        }
    return w;
}

static void s24_case(int64_t m, int64_t k, sp_sparse_vtype vt)
{
    float *w = random_24(m, k);
    char err[256] = "";
    sp_sparse_matrix s;
    assert_int_equal(sp_pack(w, m, k, SP_SPARSE_24, 0, 0, vt, &s, err, sizeof err), 0);
    const sp_24 *t = &s.u.s24;
    assert_int_equal(t->kp, (k + 3) / 4 * 4);
    for (int64_t o = 0; o < m * t->kp / 4; o++) {
        const int a = t->meta[o] & 3, b = (t->meta[o] >> 2) & 3;
        assert_true(a < b);
        assert_int_equal(t->meta[o] >> 4, 0);
    }
    assert_unpacks_to(&s, w, m, k, vt);
    assert_int_equal(sp_sparse_bytes(&s),
                     (size_t)(m * t->kp / 2) * sp_vtype_size(vt) + (size_t)(m * t->kp / 4));
    sp_sparse_free(&s);
    free(w);
}

static void test_24_round_trip(void **state)
{
    (void)state;
    for (size_t si = 0; si < NSHAPES; si++)
        for (int vt = 0; vt < 2; vt++)
            s24_case(shapes[si][0], shapes[si][1], (sp_sparse_vtype)vt);
}

/* Fill positions: lone nonzero at q keeps {0, q} (or {0, 1} for q = 0, 1);
 * an empty group keeps {0, 1}; padded tail positions are never chosen for
 * a real value. */
static void test_24_meta_convention(void **state)
{
    (void)state;
    /* k = 6: groups {0..3} and {4, 5, pad, pad} */
    const float w[4 * 6] = {
        0, 0, 7, 0, /**/ 0, 0,
        0, 0, 0, 0, /**/ 0, 5,
        3, 0, 0, 4, /**/ 2, 0,
        0, 9, 8, 0, /**/ 1, 6,
    };
    sp_24 t;
    assert_int_equal(sp_pack_24(w, 4, 6, SP_VT_F32, &t, NULL, 0), 0);
    assert_int_equal(t.kp, 8);
    const uint8_t meta[8] = {
        0 | 2 << 2, 0 | 1 << 2, /* row 0: {0,2}; empty group {0,1} */
        0 | 1 << 2, 0 | 1 << 2, /* row 1: empty {0,1}; lone at 1 -> {0,1} */
        0 | 3 << 2, 0 | 1 << 2, /* row 2: {0,3}; lone at 0 -> {0,1} */
        1 | 2 << 2, 0 | 1 << 2, /* row 3: {1,2}; {0,1} */
    };
    assert_memory_equal(t.meta, meta, sizeof meta);
    const float vals[16] = {0, 7, 0, 0, 0, 0, 0, 5, 3, 4, 2, 0, 9, 8, 1, 6};
    assert_memory_equal(t.values, vals, sizeof vals);
    sp_sparse_matrix s = {.kind = SP_SPARSE_24, .u.s24 = t};
    sp_sparse_free(&s);
}

static void test_24_rejects_dense_group(void **state)
{
    (void)state;
    const int64_t m = 6, k = 30;
    float *w = calloc((size_t)(m * k), sizeof *w);
    assert_non_null(w);
    w[3 * k + 20] = w[3 * k + 21] = w[3 * k + 23] = 1.0f; /* row 3, group 5 */
    char err[128] = "";
    sp_24 t;
    memset(&t, 0xab, sizeof t);
    assert_int_not_equal(sp_pack_24(w, m, k, SP_VT_F32, &t, err, sizeof err), 0);
    assert_string_equal(err, "2:4 packing: row 3 group 5 has 3 nonzeros");
    assert_null(t.values); /* *out zeroed, owns nothing */
    assert_null(t.meta);

    /* The ragged last group (columns 28, 29) counts only what is inside. */
    memset(w, 0, (size_t)(m * k) * sizeof *w);
    w[0 * k + 28] = w[0 * k + 29] = 1.0f;
    assert_int_equal(sp_pack_24(w, m, k, SP_VT_F16, &t, err, sizeof err), 0);
    sp_sparse_matrix s = {.kind = SP_SPARSE_24, .u.s24 = t};
    sp_sparse_free(&s);

    /* Four nonzeros, and a tiny errlen truncates but stays terminated. */
    w[5 * k + 0] = w[5 * k + 1] = w[5 * k + 2] = w[5 * k + 3] = 2.0f;
    char small[8];
    assert_int_not_equal(sp_pack_24(w, m, k, SP_VT_F32, &t, small, sizeof small), 0);
    assert_string_equal(small, "2:4 pac");
    assert_int_not_equal(sp_pack_24(w, m, k, SP_VT_F32, &t, err, sizeof err), 0);
    assert_string_equal(err, "2:4 packing: row 5 group 0 has 4 nonzeros");
    free(w);
}

/* ------------------------------------------------------------------------ */
/* Errors and edge cases                                                     */
/* ------------------------------------------------------------------------ */

static void test_bad_arguments(void **state)
{
    (void)state;
    const float w[4] = {1, 0, 0, 1};
    char err[128];
    sp_sparse_matrix s;
    sp_csr c;
    sp_bsr b;
    assert_int_not_equal(sp_pack_csr(NULL, 2, 2, SP_VT_F32, &c, err, sizeof err), 0);
    assert_non_null(strstr(err, "w is NULL"));
    assert_int_not_equal(sp_pack_csr(w, 2, 2, SP_VT_F32, NULL, err, sizeof err), 0);
    assert_int_not_equal(sp_pack_csr(w, -1, 2, SP_VT_F32, &c, err, sizeof err), 0);
    assert_int_not_equal(sp_pack_csr(w, 2, 2, (sp_sparse_vtype)7, &c, err, sizeof err), 0);
    assert_int_not_equal(sp_pack_bsr(w, 2, 2, 0, 4, SP_VT_F32, &b, err, sizeof err), 0);
    assert_non_null(strstr(err, "block 0x4"));
    assert_int_not_equal(sp_pack(w, 2, 2, SP_SPARSE_DENSE, 0, 0, SP_VT_F32, &s, err, sizeof err), 0);
    assert_int_equal(s.kind, SP_SPARSE_DENSE);
    assert_int_not_equal(sp_unpack_dense(&s, (float[4]){0}), 0);
    assert_int_not_equal(sp_unpack_dense(NULL, (float[4]){0}), 0);
    assert_int_equal(sp_sparse_bytes(NULL), 0);
    assert_int_equal(sp_sparse_bytes(&s), 0);
    sp_sparse_free(NULL);
    sp_sparse_free(&s); /* a zeroed/dense matrix frees nothing */
    /* A NULL w is fine when the matrix is empty. */
    assert_int_equal(sp_pack(NULL, 0, 8, SP_SPARSE_CSR, 0, 0, SP_VT_F32, &s, err, sizeof err), 0);
    assert_int_equal(s.u.csr.nnz, 0);
    sp_sparse_free(&s);
}

/* Under AddressSanitizer an impossible allocation must return NULL, as it
 * does in a normal build, instead of aborting the test. */
const char *__asan_default_options(void);
const char *__asan_default_options(void) { return "allocator_may_return_null=1"; }

/* An allocation that cannot succeed (one 2^30 x 2^30 block: 4 EiB of
 * values) is reported as out of memory, nothing leaks, nothing crashes. */
static void test_out_of_memory(void **state)
{
    (void)state;
    const float one = 1.0f;
    char err[128] = "";
    sp_bsr b;
    const int rc = sp_pack_bsr(&one, 1, 1, 1 << 30, 1 << 30, SP_VT_F32, &b, err, sizeof err);
    assert_int_not_equal(rc, 0);
    assert_non_null(strstr(err, "out of memory"));
    assert_null(b.values);
    assert_null(b.block_ptr);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_half_known_values),
        cmocka_unit_test(test_half_round_trip_all),
        cmocka_unit_test(test_half_rounding_sampled),
        cmocka_unit_test(test_csr_round_trip),
        cmocka_unit_test(test_csr_wide_k),
        cmocka_unit_test(test_csr_single_nonzero),
        cmocka_unit_test(test_csr_split24),
        cmocka_unit_test(test_bsr_round_trip),
        cmocka_unit_test(test_bsr_structure),
        cmocka_unit_test(test_24_round_trip),
        cmocka_unit_test(test_24_meta_convention),
        cmocka_unit_test(test_24_rejects_dense_group),
        cmocka_unit_test(test_bad_arguments),
        cmocka_unit_test(test_out_of_memory),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
