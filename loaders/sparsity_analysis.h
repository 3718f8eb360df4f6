/*
 * sparsity_analysis.h - per-weight sparsity statistics, the input of kernel
 * selection (dense / CSR / BSR / 2:4) and of `sprun --info`.
 *
 * Everything is computed on the GEMM view of a weight: a dense row-major
 * [M, K] float matrix, M = output features, K = reduction dimension. The
 * graph code reshapes Conv weights [M, C/g, kh, kw] to [M, C/g*kh*kw]
 * itself (a no-op on the data) and transposes MatMul's [K, N] constants with
 * sp_transpose_f32().
 *
 * "Nonzero" means (w != 0.0f), as in sparse_pack.h: -0.0f is zero, NaN is
 * nonzero.
 */
#ifndef SPRUN_SPARSITY_ANALYSIS_H
#define SPRUN_SPARSITY_ANALYSIS_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The block sizes the *_block_frac arrays are indexed by: 4, 8, 16, 32. */
#define SP_ANALYSIS_NBLOCK 4
extern const int sp_analysis_block_sizes[SP_ANALYSIS_NBLOCK];

typedef struct sp_weight_stats {
    int64_t m, k;
    int64_t nnz;
    double density; /* nnz / (m * k); 0 for an empty matrix */
    /* 1 iff every group of 4 consecutive K elements of every row has at most
     * 2 nonzeros (K padded to a multiple of 4 with zeros), i.e. the weight
     * packs into SP_SPARSE_24 as it is, without pruning. */
    int is_24;
    int64_t groups_over_24; /* number of groups with 3 or 4 nonzeros */
    int64_t nnz_over_24;    /* their nonzeros past the first two: what a 2:4
                               part cannot hold (sp_csr_split24's overflow) */
    /* Fraction of all-zero b x b blocks, b = sp_analysis_block_sizes[i],
     * over ceil(M/b) * ceil(K/b) blocks. An edge block that sticks out of
     * the matrix is judged on its part inside (what BSR would store). */
    double zero_block_frac[SP_ANALYSIS_NBLOCK];
    /* Same for 1 x b blocks (one row, b consecutive K elements), over
     * M * ceil(K/b) blocks: the structure of vector-wise pruning. */
    double zero_block_frac_1x[SP_ANALYSIS_NBLOCK];
} sp_weight_stats;

/*
 * Computes the statistics of the dense [m, k] matrix w in one pass over it
 * (scratch memory O(k)). Returns 0, or non-zero (a sprun_code) with a
 * message in err (when not NULL) for bad arguments or out of memory; *out
 * is fully written on success only. w is read, not retained; no global
 * state, so concurrent calls are thread-safe.
 */
int sp_weight_analyze(const float *w, int64_t m, int64_t k, sp_weight_stats *out, char *err,
                      size_t errlen);

/*
 * Returns a new malloc'd [cols, rows] matrix, the transpose of the row-major
 * [rows, cols] matrix a (for MatMul's [K, N] weights: rows = K, cols = N
 * gives the GEMM view [N, K]). The caller frees it with free(). NULL on out
 * of memory or a negative/overflowing size; an empty matrix gives a valid
 * (1-byte) allocation, so NULL always means failure. Thread-safe.
 */
float *sp_transpose_f32(const float *a, int64_t rows, int64_t cols);

#ifdef __cplusplus
}
#endif
#endif
