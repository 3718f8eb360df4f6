/*
 * sparse_format.h - packed layouts of sparse weight matrices, shared by the
 * packers (loaders/sparse_pack.c), the CPU kernels (kernels/cpu/spmm_*.c)
 * and the CUDA kernels (kernels/cuda/spmm_*.cu).
 *
 * Every layout describes a weight W in the GEMM view: W is [M, K] where
 * M = output features (Conv output channels, Gemm/MatMul output columns) and
 * K = the reduction dimension (Conv: C/group * kh * kw in ONNX order c,kh,kw;
 * MatMul's [K, N] constant weights are transposed into this view).
 *
 * The problem every sparse kernel solves is
 *     Y = act(W * X + bias [+ residual])
 * with activations stored "N-major" on the GPU: X is [N, K] row-major
 * (K contiguous) and Y is [N, M] row-major (M contiguous); N = batch x
 * spatial positions (NHWC) or tokens. That is the layout the runtime keeps
 * activations in on the GPU, and the one in which cuSPARSELt is fastest on
 * the H100 (../shared/anchors). CPU kernels take explicit strides so they
 * serve both that layout and the NCHW/[K, N] layout of the CPU backend.
 *
 * All arrays are owned by the struct that holds them and are released with
 * sp_sparse_free(). Packing is deterministic: the same dense matrix always
 * gives byte-identical packed arrays.
 */
#ifndef SPRUN_SPARSE_FORMAT_H
#define SPRUN_SPARSE_FORMAT_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum sp_sparse_kind {
    SP_SPARSE_DENSE = 0, /* not packed: plain row-major [M, K] */
    SP_SPARSE_CSR = 1,   /* unstructured, compressed sparse rows */
    SP_SPARSE_BSR = 2,   /* block sparse rows, blocks of br x bc */
    SP_SPARSE_24 = 3,    /* 2:4 structured along K (sparse tensor cores) */
} sp_sparse_kind;

/* Element type of the stored nonzero values. */
typedef enum sp_sparse_vtype {
    SP_VT_F32 = 0,
    SP_VT_F16 = 1, /* IEEE half, stored as uint16_t bit patterns on the host */
} sp_sparse_vtype;

/*
 * CSR: row_ptr[M+1], col_idx[nnz], values[nnz].
 * col_idx is 16-bit when K <= 65536 (col_idx16 set, col_idx32 NULL), else
 * 32-bit. row_order[M] lists rows by decreasing length (load balance; the
 * GPU kernel's blocks walk rows in that order), ties by row index.
 */
typedef struct sp_csr {
    int64_t m, k, nnz;
    int32_t *row_ptr;    /* [m + 1] */
    uint16_t *col_idx16; /* [nnz] when k <= 65536, else NULL */
    int32_t *col_idx32;  /* [nnz] when k > 65536, else NULL */
    int32_t *row_order;  /* [m] rows sorted by decreasing nnz */
    sp_sparse_vtype vtype;
    void *values;        /* [nnz] float or uint16_t (fp16 bits) */
} sp_csr;

/*
 * BSR with blocks of br x bc (br rows of M, bc columns of K).
 * M and K are padded up to block multiples (mb = ceil(m/br),
 * kb = ceil(k/bc)); padding elements inside stored blocks are zero.
 * block_ptr[mb+1], block_col[nblocks] (block column index), values are
 * nblocks blocks of br*bc elements, each block row-major.
 */
typedef struct sp_bsr {
    int64_t m, k;
    int32_t br, bc;
    int64_t mb, kb, nblocks;
    int32_t *block_ptr; /* [mb + 1] */
    int32_t *block_col; /* [nblocks] */
    sp_sparse_vtype vtype;
    void *values;       /* [nblocks * br * bc] */
} sp_bsr;

/*
 * 2:4 along K: in every group of 4 consecutive K elements of a row at most
 * 2 are nonzero. K is padded to a multiple of 4 (kp = round_up(k, 4)).
 * values: [m, kp/2] row-major, the kept elements of each group in K order
 *         (a group with fewer than 2 nonzeros stores zeros for the rest).
 * meta:   [m, kp/4] bytes, one per group: bits 0-1 = position (0..3) of the
 *         first kept element, bits 2-3 = position of the second, first <
 *         second (the order mma.sp expects). The CUDA kernel may re-pack
 *         this into its own register layout at upload time.
 */
typedef struct sp_24 {
    int64_t m, k, kp;
    sp_sparse_vtype vtype;
    void *values;  /* [m * kp / 2] */
    uint8_t *meta; /* [m * kp / 4] */
} sp_24;

typedef struct sp_sparse_matrix {
    sp_sparse_kind kind;
    union {
        sp_csr csr;
        sp_bsr bsr;
        sp_24 s24;
    } u;
} sp_sparse_matrix;

/* Releases every array of a packed matrix; accepts NULL and zeroes *s. */
void sp_sparse_free(sp_sparse_matrix *s);

#ifdef __cplusplus
}
#endif
#endif
