/*
 * cuda_kernels.h - the CUDA kernels of the dense GPU backend, as C-callable
 * launchers (kernels/cuda/{copy,elementwise,reduce_norm,attention,pool,gather}.cu).
 *
 * Conventions shared by every launcher:
 *   - dtype is a sprun_dtype value (SPRUN_DTYPE_FLOAT16 / FLOAT for the
 *     float storage types; int64/int32/uint8/bool where stated);
 *   - every launch goes on `stream` and is capturable into a CUDA graph
 *     (no allocation, no synchronisation, no host reads of device memory);
 *   - arithmetic is fp32 whatever the storage type (LayerNorm and Softmax
 *     accumulate in fp32: fp16 accumulation overflows on real activations);
 *   - the return value is the cudaError_t of the launch (0 = ok), or
 *     SPK_E_UNSUPPORTED for a dtype or op the launcher does not handle.
 *
 * Strided views: tensors of up to SPK_MAX_RANK dims are described by
 * per-dim element strides, so one copy kernel does Transpose, Slice, Concat
 * (one call per input), Expand (stride 0), Cast and the NCHW <-> NHWC layout
 * changes. The host side orders dims so that the destination is written
 * contiguously and merges dims that are contiguous in every operand.
 */
#ifndef SPRUN_CUDA_KERNELS_H
#define SPRUN_CUDA_KERNELS_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define SPK_MAX_RANK 6
enum { SPK_E_UNSUPPORTED = 100002 };

typedef void *spk_stream; /* cudaStream_t */

/* Index space dims[0..rank) (last fastest) and up to three operands' element
 * strides over it: s[0] the destination, s[1..] the sources. */
typedef struct spk_view {
    int rank;
    int64_t dims[SPK_MAX_RANK];
    int64_t s[4][SPK_MAX_RANK];
} spk_view;

/* dst[s0] = (dst_dtype) src[s1] over v. */
int spk_copy(spk_stream st, void *dst, int dst_dtype, const void *src, int src_dtype, const spk_view *v);

/* Binary ops with NumPy broadcasting through strides (stride 0 broadcasts). */
enum spk_binop { SPK_ADD = 0, SPK_SUB, SPK_MUL, SPK_DIV, SPK_POW, SPK_MAX, SPK_MIN };
int spk_binary(spk_stream st, int op, int dtype, void *out, const void *a, const void *b, const spk_view *v);
/* out = cond ? x : y, cond is bool/uint8; strides in v.s[0..3] = out, cond, x, y. */
int spk_where(spk_stream st, int dtype, void *out, const uint8_t *cond, const void *x, const void *y,
              const spk_view *v);

/* Unary ops on n contiguous elements (layout-preserving). */
enum spk_unop {
    SPK_RELU = 0, SPK_ERF, SPK_SQRT, SPK_EXP, SPK_TANH, SPK_SIGMOID, SPK_NEG, SPK_ABS, SPK_RECIP, SPK_GELU,
    SPK_IDENTITY, SPK_LOG, SPK_CLIP, SPK_LEAKYRELU, SPK_HARDSWISH, SPK_HARDSIGMOID
};
int spk_unary(spk_stream st, int op, int dtype, void *out, const void *in, int64_t n, float alpha, float beta);

/* Epilogue on a [rows, cols] matrix in place: y = act(y + bias[col] +
 * residual[row, col]); bias and residual may be NULL. act is an sp_act. */
int spk_bias_act(spk_stream st, int dtype, void *y, int64_t rows, int64_t cols, const void *bias,
                 const void *residual, int act, float alpha, float beta);

/* Softmax over the last dim of [rows, cols]: out = softmax(in * scale +
 * mask), mask (may be NULL) broadcast as mask[(row / mask_div) % mask_mod *
 * cols + col] (covers BERT's [b,1,1,s] mask on [b,h,s,s] scores). */
int spk_softmax(spk_stream st, int dtype, void *out, const void *in, int64_t rows, int64_t cols, float scale,
                const void *mask, int64_t mask_div, int64_t mask_mod);

/* LayerNormalization over the last dim: out = (x + res - mean) / sqrt(var +
 * eps) * gamma + beta; res (same shape as x), gamma, beta may be NULL.
 * Adding res here fuses the residual Add that precedes BERT's LayerNorms. */
int spk_layernorm(spk_stream st, int dtype, void *out, const void *x, const void *res, const void *gamma,
                  const void *beta, int64_t rows, int64_t cols, float eps);

/* Fused scaled-dot-product attention, fp16 in and out, fp32 accumulation
 * and softmax: for every batch b, head h and query row i,
 *   out[b,h,i,:] = softmax_j(scale * q[b,h,i,:] . k[b,h,j,:] + mask[row, j]) v[b,h,j,:]
 * without materialising the [sq, sk] scores (one pass over the keys with a
 * running max and sum). Every operand is a strided view whose last dim
 * (d) is contiguous; strides are in elements over (batch, head, position)
 * and, like the bases, multiples of 8. mask (fp16, may be NULL) is
 * [.., sk] rows picked as Softmax's: row (b*heads + h)*sq + i reads mask row
 * (row / mask_div) % mask_mod. Values are clamped at -FLT_MAX as in
 * spk_softmax, so an all -inf mask row averages v like the unfused graph.
 * d is 32, 64 or 128 (else SPK_E_UNSUPPORTED); needs sm_80 or newer. */
typedef struct spk_attn {
    int64_t batch, heads, sq, sk;
    int d;
    int64_t q_s[3], k_s[3], v_s[3], o_s[3];
    float scale;
    int64_t mask_div, mask_mod;
} spk_attn;
int spk_attention(spk_stream st, void *out, const void *q, const void *k, const void *v, const void *mask,
                  const spk_attn *a);

/* Mean over the last dim: out[row] = mean(in[row, :]). */
int spk_reduce_mean(spk_stream st, int dtype, void *out, const void *in, int64_t rows, int64_t cols);

/* 2-D pooling with arbitrary strides per (n, c, h, w) of input and output. */
typedef struct spk_pool {
    int64_t n, c, h, w, oh, ow;
    int kh, kw, sh, sw, ph, pw, dh, dw;
    int64_t is[4], os[4]; /* element strides of n, c, h, w */
    int max;              /* 1 max, 0 average */
    int count_include_pad;
} spk_pool;
int spk_pool2d(spk_stream st, int dtype, void *out, const void *in, const spk_pool *p);
/* Global average/max pooling: out[n, c] over h*w; strides as above (h*w as
 * one dim of stride is[2], valid since h and w are contiguous together in
 * both NCHW and NHWC). */
int spk_global_pool(spk_stream st, int dtype, void *out, const void *in, int64_t n, int64_t c, int64_t hw,
                    const int64_t is[3], const int64_t os[2], int max);

/* Gather along one axis: out[o, i, r] = data[o, idx[i], r] for o < outer,
 * i < n_idx, r < inner; elem_size bytes per element (1, 2, 4 or 8); idx is
 * int64 or int32; negative indices count from axis_dim, out-of-range ones
 * are clamped (the CPU backend reports them; a kernel cannot). */
int spk_gather(spk_stream st, void *out, const void *data, int elem_size, const void *idx, int idx_dtype,
               int64_t outer, int64_t axis_dim, int64_t inner, int64_t n_idx);

/* NHWC convolution geometry (im2col). */
typedef struct spk_conv {
    int64_t n, h, w, c, oh, ow;
    int r, s, sh, sw, ph, pw, dh, dw;
    int64_t kpad; /* row length of the im2col matrix (>= r*s*c, zero tail) */
} spk_conv;
/* out[(n*oh + y)*ow + x][(r*s_ + s)*c + ch] = in[n, y*sh - ph + r*dh, x*sw - pw + s*dw, ch]
 * (zero outside): the [N*OH*OW, R*S*C] operand of a conv run as a GEMM
 * against KRSC weights. */
int spk_im2col_nhwc(spk_stream st, int dtype, void *out, const void *in, const spk_conv *g);

/* Fills n elements of dtype with value (NaN-poisoning in tests, zero bias). */
int spk_fill(spk_stream st, void *dst, int dtype, int64_t n, float value);

#ifdef __cplusplus
}
#endif
#endif
