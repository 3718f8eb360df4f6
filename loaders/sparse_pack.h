/*
 * sparse_pack.h - pack a dense weight (GEMM view, row-major [M, K] float)
 * into the layouts of sparse_format.h, and back.
 *
 * Conventions shared by every function here:
 *  - An element is "nonzero" iff (w != 0.0f): -0.0f counts as zero, NaN as
 *    nonzero. The sparsity pattern is decided on the fp32 input even when the
 *    values are stored as fp16, so a tiny value that rounds to 0 in fp16 is
 *    still stored (as 0): the pattern, not the half value, is what the kernels
 *    and the cost model see.
 *  - fp16 values are rounded to nearest-even (runtime/half.h).
 *  - Return 0 (SPRUN_OK) on success. On failure return a non-zero sprun_code
 *    (SPRUN_ERR_INVALID_ARGUMENT, SPRUN_ERR_UNSUPPORTED for a matrix that
 *    cannot take the layout, SPRUN_ERR_OUT_OF_MEMORY) and, when err is not
 *    NULL, write a NUL-terminated message of at most errlen bytes naming what
 *    failed; *out is then zeroed and owns nothing. Never aborts.
 *  - Ownership: on success *out owns freshly malloc'd arrays; wrap it in an
 *    sp_sparse_matrix and release it with sp_sparse_free(). The input w is
 *    only read and never retained.
 *  - Thread safety: no global state; concurrent calls are safe as long as
 *    they do not write the same *out.
 *  - Limits (from the int32 index arrays of the layout): M, K, the number of
 *    nonzeros (CSR) and of stored blocks (BSR) must each be <= INT32_MAX.
 */
#ifndef SPRUN_SPARSE_PACK_H
#define SPRUN_SPARSE_PACK_H

#include "loaders/sparse_format.h"
#include "runtime/half.h"

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* CSR. row_order: rows by decreasing nnz, ties by increasing row index.
 * Column indices are 16-bit when k <= 65536, else 32-bit. Within a row the
 * columns are increasing. */
int sp_pack_csr(const float *w, int64_t m, int64_t k, sp_sparse_vtype vt, sp_csr *out,
                char *err, size_t errlen);

/* BSR with br x bc blocks (br, bc >= 1). A block is stored iff any of its
 * elements inside the matrix is nonzero; elements of a stored block that lie
 * in the padding past M or K are zero. Block columns increase within a block
 * row. */
int sp_pack_bsr(const float *w, int64_t m, int64_t k, int br, int bc, sp_sparse_vtype vt,
                sp_bsr *out, char *err, size_t errlen);

/* 2:4 along K. Fails with SPRUN_ERR_UNSUPPORTED and a message such as
 * "2:4 packing: row 3 group 5 has 3 nonzeros" (0-based, group g covers
 * columns 4g..4g+3) when some group has more than 2 nonzeros.
 * A group with fewer than 2 nonzeros is completed with the lowest positions
 * not already kept, whose stored values are 0, so meta always holds two
 * distinct positions, first < second (e.g. a lone nonzero at position 2 is
 * stored as positions {0, 2} with values {0, w}; an empty group as {0, 1}).
 * Positions >= k in the last, padded group are never nonzero. */
int sp_pack_24(const float *w, int64_t m, int64_t k, sp_sparse_vtype vt, sp_24 *out,
               char *err, size_t errlen);

/* An unstructured weight as a 2:4 part plus an overflow CSR, base +
 * overflow == w exactly: in each group of 4 columns of a row the two
 * nonzeros of lowest column go to base (completed as sp_pack_24 does), any
 * third and fourth to overflow (columns increasing within a row, row_order
 * as sp_pack_csr's, same index width and value type as w). The sparse
 * tensor cores then run the bulk and a CUDA-core pass the rest
 * (sp_cuda_csr_spmm's SP_CUDA_CSR_SPLIT24 path). Values are copied bit for
 * bit. Same contract as the packers above (both outputs zeroed on failure).
 * w must hold columns increasing within each row, as sp_pack_csr makes. */
int sp_csr_split24(const sp_csr *w, sp_24 *base, sp_csr *overflow, char *err, size_t errlen);

/* Nonzeros of w beyond the first two of their group of 4 columns: the
 * overflow's nnz in sp_csr_split24. 0 for NULL. Thread-safe. */
int64_t sp_csr_overflow24(const sp_csr *w);

/* Dispatch on kind (CSR, BSR, 2:4) and fill a whole sp_sparse_matrix; br/bc
 * are used only for BSR. SP_SPARSE_DENSE is rejected (a dense weight is not
 * packed). Same contract as the packers above. */
int sp_pack(const float *w, int64_t m, int64_t k, sp_sparse_kind kind, int br, int bc,
            sp_sparse_vtype vt, sp_sparse_matrix *out, char *err, size_t errlen);

/* Inverse of packing: writes the dense row-major [m, k] matrix (fp16 values
 * widened exactly) into w_out, which the caller owns and sizes m*k floats.
 * Returns 0, or SPRUN_ERR_INVALID_ARGUMENT for NULL pointers or a kind that
 * holds no packed data (SP_SPARSE_DENSE). Reads s only: thread-safe. */
int sp_unpack_dense(const sp_sparse_matrix *s, float *w_out);

/* Bytes of the packed matrix as stored: values + indices + metadata
 * (CSR: row_ptr, col_idx, row_order; BSR: block_ptr, block_col; 2:4: meta).
 * This is what a kernel must read for W, the input of the cost model.
 * 0 for NULL or SP_SPARSE_DENSE. Thread-safe. */
size_t sp_sparse_bytes(const sp_sparse_matrix *s);

/* Bytes of one stored value: 4 for SP_VT_F32, 2 for SP_VT_F16. */
size_t sp_vtype_size(sp_sparse_vtype vt);

/* Element i of a packed values array as fp32 (fp16 widened exactly). */
static inline float sp_sparse_value(const void *values, int64_t i, sp_sparse_vtype vt)
{
    return vt == SP_VT_F16 ? sp_f16_to_f32(((const uint16_t *)values)[i])
                           : ((const float *)values)[i];
}

/* printf into a caller's (err, errlen) message buffer when err is not NULL
 * and errlen > 0 (truncated, always NUL-terminated); returns code so that
 * `return sp_errbuf_set(err, errlen, SPRUN_ERR_..., "...")` reads as one
 * statement. Shared by the packers, the analysis and the CPU SpMM, whose
 * APIs report errors this way. Thread-safe (writes err only). */
int sp_errbuf_set(char *err, size_t errlen, int code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* sp_sparse_free() (declared in sparse_format.h) is defined in
 * sparse_pack.c. */

#ifdef __cplusplus
}
#endif
#endif
