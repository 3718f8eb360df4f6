/*
 * sparsity_analysis.c - one pass over a dense [M, K] weight computing the
 * statistics of sparsity_analysis.h.
 *
 * Every block size is a multiple of 4 and of the previous one, so each row
 * is reduced once to its groups of 4 along K (the 2:4 groups); the 1 x b and
 * b x b block flags are ORs of those group flags. Work is O(M*K) compares
 * plus O(M*K/4) flag updates, whatever the number of block sizes.
 */
#include "loaders/sparsity_analysis.h"

#include "loaders/sparse_pack.h" /* sp_errbuf_set */
#include "sprun.h"

#include <stdlib.h>
#include <string.h>

const int sp_analysis_block_sizes[SP_ANALYSIS_NBLOCK] = {4, 8, 16, 32};

static int64_t count_zero_bytes(const uint8_t *f, int64_t n)
{
    int64_t z = 0;
    for (int64_t i = 0; i < n; i++)
        z += f[i] == 0;
    return z;
}

int sp_weight_analyze(const float *w, int64_t m, int64_t k, sp_weight_stats *out, char *err,
                      size_t errlen)
{
    if (!out || m < 0 || k < 0 || (!w && m > 0 && k > 0))
        return sp_errbuf_set(err, errlen, SPRUN_ERR_INVALID_ARGUMENT,
                             "sparsity analysis: bad arguments (w %p, [%lld, %lld], out %p)",
                             (const void *)w, (long long)m, (long long)k, (void *)out);
    sp_weight_stats st = {.m = m, .k = k, .is_24 = 1};
    const int64_t groups = (k + 3) / 4;
    int64_t nb[SP_ANALYSIS_NBLOCK];
    size_t scratch = 0;
    for (int l = 0; l < SP_ANALYSIS_NBLOCK; l++) {
        nb[l] = (k + sp_analysis_block_sizes[l] - 1) / sp_analysis_block_sizes[l];
        scratch += 2 * (size_t)nb[l];
    }
    /* Per level l (block size 4 << l): the current row's 1 x b flags and the
     * current block row's b x b flags, one byte per block column. */
    uint8_t *mem = calloc(scratch ? scratch : 1, 1);
    if (!mem)
        return sp_errbuf_set(err, errlen, SPRUN_ERR_OUT_OF_MEMORY,
                             "sparsity analysis: out of memory (%zu bytes)", scratch);
    uint8_t *rowf[SP_ANALYSIS_NBLOCK], *sqf[SP_ANALYSIS_NBLOCK];
    uint8_t *p = mem;
    for (int l = 0; l < SP_ANALYSIS_NBLOCK; l++) {
        rowf[l] = p;
        p += nb[l];
        sqf[l] = p;
        p += nb[l];
    }

    int64_t zero1x[SP_ANALYSIS_NBLOCK] = {0}, zerosq[SP_ANALYSIS_NBLOCK] = {0};
    const int64_t full = k / 4; /* groups entirely inside K */
    for (int64_t i = 0; i < m && k > 0; i++) { /* k == 0: w may be NULL */
        const float *row = w + i * k;
        for (int l = 0; l < SP_ANALYSIS_NBLOCK; l++)
            memset(rowf[l], 0, (size_t)nb[l]);
        for (int64_t g = 0; g < groups; g++) {
            int n;
            if (g < full) {
                const float *q = row + 4 * g;
                n = (q[0] != 0.0f) + (q[1] != 0.0f) + (q[2] != 0.0f) + (q[3] != 0.0f);
            } else {
                n = 0;
                for (int64_t j = 4 * g; j < k; j++)
                    n += row[j] != 0.0f;
            }
            st.nnz += n;
            st.groups_over_24 += n > 2;
            st.nnz_over_24 += n > 2 ? n - 2 : 0;
            const uint8_t nz = n != 0;
            for (int l = 0; l < SP_ANALYSIS_NBLOCK; l++)
                rowf[l][g >> l] |= nz;
        }
        for (int l = 0; l < SP_ANALYSIS_NBLOCK; l++) {
            const int64_t b = sp_analysis_block_sizes[l];
            zero1x[l] += count_zero_bytes(rowf[l], nb[l]);
            for (int64_t c = 0; c < nb[l]; c++)
                sqf[l][c] |= rowf[l][c];
            if (i % b == b - 1 || i == m - 1) { /* block row complete */
                zerosq[l] += count_zero_bytes(sqf[l], nb[l]);
                memset(sqf[l], 0, (size_t)nb[l]);
            }
        }
    }
    free(mem);

    st.is_24 = st.groups_over_24 == 0;
    if (m > 0 && k > 0) {
        st.density = (double)st.nnz / ((double)m * (double)k);
        for (int l = 0; l < SP_ANALYSIS_NBLOCK; l++) {
            const int64_t b = sp_analysis_block_sizes[l];
            st.zero_block_frac[l] = (double)zerosq[l] / ((double)((m + b - 1) / b) * (double)nb[l]);
            st.zero_block_frac_1x[l] = (double)zero1x[l] / ((double)m * (double)nb[l]);
        }
    }
    *out = st;
    return 0;
}

float *sp_transpose_f32(const float *a, int64_t rows, int64_t cols)
{
    if (rows < 0 || cols < 0 || (rows > 0 && (uint64_t)cols > SIZE_MAX / sizeof(float) / (uint64_t)rows))
        return NULL;
    const size_t n = (size_t)rows * (size_t)cols;
    float *t = malloc(n ? n * sizeof *t : 1);
    if (!t || n == 0)
        return t;
    /* 32 x 32 tiles: both the reads and the writes stay within a few cache
     * lines per tile, where a naive loop misses on every write. */
    enum { T = 32 };
    for (int64_t r0 = 0; r0 < rows; r0 += T)
        for (int64_t c0 = 0; c0 < cols; c0 += T) {
            const int64_t r1 = r0 + T < rows ? r0 + T : rows;
            const int64_t c1 = c0 + T < cols ? c0 + T : cols;
            for (int64_t r = r0; r < r1; r++)
                for (int64_t c = c0; c < c1; c++)
                    t[c * rows + r] = a[r * cols + c];
        }
    return t;
}
