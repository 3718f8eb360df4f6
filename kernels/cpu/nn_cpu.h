/*
 * nn_cpu.h - shared pieces of the CPU NN ops (ops/conv.c, gemm.c, pool.c,
 * norm.c, activation.c, softmax.c): sliding-window geometry, the fused
 * epilogue, fp16 staging, vectorisable math, the tiled GEMM and the
 * Conv/pool loops.
 *
 * fp16. The kernels compute in fp32. An op whose tensors include FLOAT16
 * ones (or INT8/UINT8: MaxPool) runs through sp_nn_run_staged(): every such
 * input is widened into the front of ctx->scratch, the fp32 kernel runs on
 * fp32 copies, and those outputs are narrowed back (fp16: round to nearest
 * even). The op's cpu_scratch must therefore add sp_nn_stage_bytes() to its
 * own needs; the kernel sees ctx->scratch advanced past the staging area.
 * Pure-fp32 nodes pay nothing (the wrapper calls straight through).
 *
 * Residuals (n->fusion). A fused residual arrives as in[n->fusion.residual_input].
 * The NN ops never place their own operands at index 0 or 1 of a fusion, so
 * only residual_input >= 2 counts (a zero-initialised fusion is "none").
 */
#ifndef SPRUN_NN_CPU_H
#define SPRUN_NN_CPU_H

#include "ops/op.h"

#include <stddef.h>
#include <stdint.h>
#include <math.h>
#include <string.h>

#define SP_NN_MAX_IO 16 /* inputs/outputs a staged node may have */

/* Hot loops get an AVX2 clone picked at load time (ifunc) beside the
 * baseline SSE2 one: the build targets plain x86-64. No FMA clone, so both
 * clones round identically. */
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__)) && !defined(SPRUN_NO_CLONES)
#define SP_NN_HOT __attribute__((target_clones("avx2", "default")))
#else
#define SP_NN_HOT
#endif

/* Round a byte count up to the 64-byte alignment scratch pieces keep. */
static inline size_t sp_nn_align(size_t b) { return (b + 63u) & ~(size_t)63u; }

/* Index of the fused residual among n's inputs, or -1. */
int sp_nn_residual_index(const sp_node *n, int n_in);

/* --- vectorisable math ------------------------------------------------------
 * Branch-free float approximations that GCC auto-vectorises (libm's expf,
 * erff and tanhf are scalar calls and dominated Softmax, Erf and GELU).
 * GCC vectorises them only under -fno-trapping-math (the clamps otherwise
 * split the loop into paths): files using them in loops set it by pragma.
 * Accuracy, measured against double over [-100, 100]: sp_expf <= 2 ulp for
 * x in [-87.6, 88], clamped outside (exp(-87.6) ~ 1e-38 below, exp(88)
 * above: no denormals, no inf); sp_erff and sp_tanhf <= 4e-7 absolute
 * (tanh <= 3e-7 relative near 0). NaN stays NaN. */
static inline float sp_expf(float x)
{
    const float xc = x < -87.6f ? -87.6f : (x > 88.f ? 88.f : x);
    /* Round x*log2(e) to an integer n by adding 1.5 * 2^23: the sum's low
     * mantissa bits then hold 0x400000 + n, read as bits below. No
     * float-to-int cast: a NaN x (which the clamp lets through) must not
     * reach one (UB); it gives some p, and y stays NaN. */
    const float t = xc * 1.44269504088896341f + 12582912.f;
    const float fx = t - 12582912.f;
    uint32_t tb;
    memcpy(&tb, &t, sizeof tb);
    const float r = xc - fx * 0.693359375f + fx * 2.12194440e-4f;
    float y = 1.9875691500e-4f;
    y = y * r + 1.3981999507e-3f;
    y = y * r + 8.3334519073e-3f;
    y = y * r + 4.1665795894e-2f;
    y = y * r + 1.6666665459e-1f;
    y = y * r + 5.0000001201e-1f;
    y = y * (r * r) + r + 1.f;
    const uint32_t bits = (tb - 0x4B400000u + 127u) << 23; /* 2^n, unsigned wrap-around */
    float p;
    memcpy(&p, &bits, sizeof p);
    return y * p;
}

static inline float sp_sigmoidf(float x)
{
    return 1.f / (1.f + sp_expf(-x)); /* exp clamps at exp(88): no inf */
}

static inline float sp_erff(float x)
{
    const float c = x < -4.f ? -4.f : (x > 4.f ? 4.f : x), x2 = c * c;
    float p = x2 * -2.72614225801306e-10f + 2.77068142495902e-08f;
    p = p * x2 - 2.10102402082508e-06f;
    p = p * x2 - 5.69250639462346e-05f;
    p = p * x2 - 7.34990630326855e-04f;
    p = p * x2 - 2.95459980854025e-03f;
    p = p * x2 - 1.60960333262415e-02f;
    float q = x2 * -1.45660718464996e-05f - 2.13374055278905e-04f;
    q = q * x2 - 1.68282697438203e-03f;
    q = q * x2 - 7.37332916720468e-03f;
    q = q * x2 - 1.42647390514189e-02f;
    return c * p / q;
}

static inline float sp_tanhf(float x)
{
    const float c = x < -7.90531110763549805f ? -7.90531110763549805f
                    : (x > 7.90531110763549805f ? 7.90531110763549805f : x);
    const float x2 = c * c;
    float p = x2 * -2.76076847742355e-16f + 2.00018790482477e-13f;
    p = p * x2 - 8.60467152213735e-11f;
    p = p * x2 + 5.12229709037114e-08f;
    p = p * x2 + 1.48572235717979e-05f;
    p = p * x2 + 6.37261928875436e-04f;
    p = p * x2 + 4.89352455891786e-03f;
    float q = x2 * 1.19825839466702e-06f + 1.18534705686654e-04f;
    q = q * x2 + 2.26843463243900e-03f;
    q = q * x2 + 4.89352518554385e-03f;
    return c * p / q;
}

/* Row reductions with independent lanes (4 doubles, 8 floats), so the
 * additions overlap and vectorise without reassociation flags; results do
 * not depend on the thread count (one row, one fixed order). */
static inline double sp_sum_f64(const float *x, int64_t n)
{
    double l[4] = {0.0, 0.0, 0.0, 0.0};
    int64_t i = 0;
    for (; i + 4 <= n; i += 4)
        for (int k = 0; k < 4; k++)
            l[k] += x[i + k];
    for (; i < n; i++)
        l[0] += x[i];
    return (l[0] + l[1]) + (l[2] + l[3]);
}

/* Sum of (x - mu)^2 in double. */
static inline double sp_sqdev_f64(const float *x, int64_t n, double mu)
{
    double l[4] = {0.0, 0.0, 0.0, 0.0};
    int64_t i = 0;
    for (; i + 4 <= n; i += 4)
        for (int k = 0; k < 4; k++) {
            const double t = x[i + k] - mu;
            l[k] += t * t;
        }
    for (; i < n; i++) {
        const double t = x[i] - mu;
        l[0] += t * t;
    }
    return (l[0] + l[1]) + (l[2] + l[3]);
}

/* Largest element (NaNs skipped unless all are NaN or n == 0: -inf). */
static inline float sp_max_f32(const float *x, int64_t n)
{
    float l[8] = {-INFINITY, -INFINITY, -INFINITY, -INFINITY, -INFINITY, -INFINITY, -INFINITY, -INFINITY};
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        for (int k = 0; k < 8; k++)
            l[k] = x[i + k] > l[k] ? x[i + k] : l[k];
    for (; i < n; i++)
        l[0] = x[i] > l[0] ? x[i] : l[0];
    float m = l[0];
    for (int k = 1; k < 8; k++)
        m = l[k] > m ? l[k] : m;
    return m;
}

/* --- sliding windows (Conv, MaxPool, AveragePool) ------------------------
 * Spatial dims are right-aligned into 3 slots (D, H, W); unused leading
 * slots have size 1, kernel 1, stride 1, no padding. */
typedef struct sp_win {
    int nsp; /* spatial rank, 1..3 */
    int64_t in[3], out[3], k[3], s[3], d[3], pb[3], pe[3];
} sp_win;

/* Largest spatial size, kernel, stride, dilation or pad a window accepts:
 * below 2^31, so no product in the window arithmetic overflows. */
#define SP_WIN_MAX ((int64_t)INT32_MAX)

/* Checks the attributes strides, dilations, pads and auto_pad of a Conv or
 * pool node without shapes (lengths consistent, values positive, auto_pad
 * known). nsp < 0: spatial rank not yet known. */
int sp_win_check(const sp_node *n, int nsp, int allow_dilations, sp_err *err);

/* Computes the output geometry for input spatial dims in[0..nsp) and kernel
 * k[0..nsp). ceil_mode applies to pools. Errors name the node and dims. */
int sp_win_compute(const sp_node *n, int nsp, const int64_t *in, const int64_t *k, int ceil_mode, sp_win *w,
                   sp_err *err);

/* --- fp16 staging ---------------------------------------------------------- */
typedef int (*sp_nn_run_fn)(const sp_node *n, const sp_tensor *in, int n_in, sp_tensor *out, int n_out,
                            const sp_cpu_ctx *ctx, sp_err *err);

/* Scratch bytes the staging of n's FLOAT16 inputs/outputs takes (0 when
 * none is FLOAT16), from the graph's value shapes. */
size_t sp_nn_stage_bytes(const sp_graph *g, const sp_node *n);
/* Runs fn directly, or through fp32 copies when a tensor is FLOAT16 (or
 * INT8/UINT8, exact in fp32). */
int sp_nn_run_staged(sp_nn_run_fn fn, const sp_node *n, const sp_tensor *in, int n_in, sp_tensor *out, int n_out,
                     const sp_cpu_ctx *ctx, sp_err *err);

/* cpu_scratch of an op that needs nothing but the fp16 staging. */
size_t sp_nn_stage_scratch(const sp_graph *g, const sp_node *n, int nthreads);

/* Defines `static int wrapper(...)`, an sp_op_def.cpu_run that runs the fp32
 * kernel fn through sp_nn_run_staged. */
#define SP_NN_STAGED(wrapper, fn)                                                                                  \
    static int wrapper(const sp_node *n, const sp_tensor *in, int n_in, sp_tensor *out, int n_out,                 \
                       const sp_cpu_ctx *ctx, sp_err *err)                                                         \
    {                                                                                                              \
        return sp_nn_run_staged(fn, n, in, n_in, out, n_out, ctx, err);                                            \
    }

/* sp_parallel_for over `rows` items of `len` elements each, with a grain of
 * about 16K elements per chunk. */
void sp_nn_par_rows(const sp_cpu_ctx *ctx, int64_t rows, int64_t len, sp_range_fn fn, void *arg);

/* True for the float types the NN ops accept (FLOAT, FLOAT16). */
static inline int sp_nn_float_type(int dt) { return dt == SPRUN_DTYPE_FLOAT || dt == SPRUN_DTYPE_FLOAT16; }

/* Checks ctx->scratch holds `need` bytes; an error naming the node if not. */
int sp_nn_need_scratch(const sp_node *n, const sp_cpu_ctx *ctx, size_t need, sp_err *err);

/* Sets OpenBLAS's thread count to nthreads (only when it changes). */
void sp_nn_blas_threads(int nthreads);

/* --- the fused epilogue -----------------------------------------------------
 * y = act(y + bias[row] + res[flat % res_n]), flat being the element's
 * index in the whole output: res_n = the output's size for an exact-shape
 * residual, N for a last-dim broadcast ([N] bias of a MatMul), the size of
 * the trailing dims in general; res NULL for none, bias NULL for none. */
typedef struct sp_epi {
    const float *bias; /* per row, or NULL */
    const float *res;  /* residual base (flat over the whole output), or NULL */
    int64_t res_n;     /* residual numel (suffix-broadcast period) */
    int act;
    float alpha, beta;
} sp_epi;

static inline int sp_epi_active(const sp_epi *e)
{
    return e->bias || e->res || e->act != SP_ACT_NONE;
}

/* Applies the epilogue to a rows x len block of the output, rows ld apart
 * (y points at the block); element (r, j) has flat output index
 * base + r*ld + j (the residual's index modulo res_n); row r's bias is
 * bias[row0 + r]. */
void sp_epi_rows(const sp_epi *e, float *y, int64_t rows, int64_t len, int64_t ld, int64_t base, int64_t row0);

/* Fills e from n->fusion and the inputs (res_n from the residual's numel). */
void sp_epi_from_fusion(sp_epi *e, const sp_node *n, const sp_tensor *in, int n_in);

/* Checks a residual's shape against the output shape: exact, or (when
 * allow_suffix) equal to the output's trailing dims after dropping leading
 * 1s (scalar, [N], [M, N] per batch...). */
int sp_nn_check_residual(const sp_graph *g, const sp_node *n, const sp_shape *out, int allow_suffix, sp_err *err);

/* --- kernels ----------------------------------------------------------------
 * BLAS threading: the pool drives every parallel GEMM (tiles of one
 * single-threaded cblas_sgemm each, epilogue applied per tile while hot);
 * OpenBLAS is kept at one thread, so its idle workers never spin beside
 * the pool's between calls. */

typedef struct sp_gemm_args {
    int ta, tb;            /* op(A) = A^T / op(B) = B^T */
    int64_t m, n, k;
    float alpha;
    const float *a;
    int64_t lda;
    const float *b;
    int64_t ldb;
    float beta;
    float *c;
    int64_t ldc;
    const sp_epi *e;       /* NULL: none */
    int64_t epi_base;      /* flat output index of c[0] */
    int64_t epi_row0;      /* bias index of row 0 */
} sp_gemm_args;

/* Row-major C = alpha * op(A) op(B) + beta * C, then e, tiled over the pool. */
void sp_gemm_par(const sp_cpu_ctx *ctx, const sp_gemm_args *g);

/* Conv as im2col + GEMM for one batch item and group: x [Cg, ID, IH, IW],
 * wt [m, Cg*KD*KH*KW], y [m, OD*OH*OW] (beta 1 accumulates into y), col
 * scratch of Cg*KD*KH*KW * OD*OH*OW floats, epilogue e. */
void sp_conv_im2col_gemm(const sp_cpu_ctx *ctx, const float *x, int64_t cg, const sp_win *w, const float *wt,
                         int64_t m, float *col, float *y, float beta, const sp_epi *e, int64_t epi_base,
                         int64_t epi_row0);

/* im2col of one group: x is [Cg, ID, IH, IW], col [Cg*KD*KH*KW, OD*OH*OW]. */
void sp_im2col(const sp_cpu_ctx *ctx, const float *x, int64_t cg, const sp_win *w, float *col);

/* col2im, the adjoint of sp_im2col, for ConvTranspose: adds col
 * [m*KD*KH*KW, OD*OH*OW] into the image y [m, ID, IH, IW] of geometry w
 * (w's "input" is the image, its "output" the column positions). */
void sp_col2im(const sp_cpu_ctx *ctx, const float *col, int64_t m, const sp_win *w, float *y);

/* Depthwise (Cg == 1) 1-D/2-D convolution of a whole batch: x [N, C, IH, IW],
 * wt [M, 1, KH, KW] with M = C * mult, y [N, M, OH, OW], epilogue e with
 * per-channel bias. Parallel over N*M planes. */
void sp_conv_depthwise(const sp_cpu_ctx *ctx, const float *x, const float *wt, float *y, int64_t nb, int64_t c,
                       int64_t mult, const sp_win *w, const sp_epi *e);

/* Pools over planes: x [planes, ID, IH, IW] -> y [planes, OD, OH, OW].
 * kind 0 max, 1 average (count_include_pad as given). */
void sp_pool(const sp_cpu_ctx *ctx, int kind, int count_include_pad, const float *x, float *y, int64_t planes,
             const sp_win *w);

/* MaxPool that also writes Indices: flat positions in the whole input x
 * (planes * ID*IH*IW), the in-plane part row-major or (col_major) column-
 * major as ONNX's storage_order says. Ties: the first in scan order. */
void sp_pool_argmax(const sp_cpu_ctx *ctx, const float *x, float *y, int64_t *indices, int col_major,
                    int64_t planes, const sp_win *w);

#endif
