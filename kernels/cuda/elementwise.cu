/*
 * elementwise.cu - binary ops with broadcasting, Where, unary ops, and the
 * bias + residual + activation epilogue of convolutions and matmuls.
 *
 * Arithmetic in fp32 whatever the storage type. Broadcasting is expressed
 * as strides (0 on broadcast dims); the common same-shape and
 * scalar-operand cases take a flat kernel without index arithmetic.
 */
#include "kernels/cuda/gelu.cuh"
#include "runtime/cuda/kernel_common.cuh"

#include <math.h>

namespace {

__device__ __forceinline__ float binop(int op, float a, float b)
{
    switch (op) {
    case SPK_ADD: return a + b;
    case SPK_SUB: return a - b;
    case SPK_MUL: return a * b;
    case SPK_DIV: return a / b;
    case SPK_POW: return (b == 2.f) ? a * a : powf(a, b);
    case SPK_MAX: return fmaxf(a, b);
    case SPK_MIN: return fminf(a, b);
    default: return 0.f;
    }
}

__device__ __forceinline__ int64_t binop_i(int op, int64_t a, int64_t b)
{
    switch (op) {
    case SPK_ADD: return a + b;
    case SPK_SUB: return a - b;
    case SPK_MUL: return a * b;
    case SPK_DIV: return b ? a / b : 0;
    case SPK_MAX: return a > b ? a : b;
    case SPK_MIN: return a < b ? a : b;
    default: return 0;
    }
}

__device__ __forceinline__ float act(int a, float x, float alpha, float beta)
{
    switch (a) {
    case 1: return x > 0.f ? x : 0.f;                           /* RELU */
    case 2: return fminf(fmaxf(x, alpha), beta);                /* CLIP */
    case 3: return 1.f / (1.f + __expf(-x));                    /* SIGMOID */
    case 4: return sp_gelu(x);                                  /* GELU */
    case 5: return tanhf(x);                                    /* TANH */
    case 6: { float t = fminf(fmaxf(x / 6.f + 0.5f, 0.f), 1.f); return x * t; }
    case 7: return fminf(fmaxf(alpha * x + beta, 0.f), 1.f);
    case 8: return x >= 0.f ? x : alpha * x;
    default: return x;
    }
}

template <typename T>
__global__ void k_binary(int op, T *__restrict__ out, const T *__restrict__ a, const T *__restrict__ b, spk_view v,
                         int64_t n)
{
    spk::pdl_begin();
    SPK_GRID_STRIDE(i, n)
    {
        int64_t off[3];
        spk::offsets<3>(v, i, off);
        spk::st(out + off[0], binop(op, spk::ld(a + off[1]), spk::ld(b + off[2])));
    }
}

/* Flat: a and b contiguous like out, or a scalar (stride flag 0). */
template <typename T>
__global__ void k_binary_flat(int op, T *__restrict__ out, const T *__restrict__ a, const T *__restrict__ b,
                              int a_step, int b_step, int64_t n)
{
    spk::pdl_begin();
    SPK_GRID_STRIDE(i, n) spk::st(out + i, binop(op, spk::ld(a + i * a_step), spk::ld(b + i * b_step)));
}

__global__ void k_binary_i64(int op, int64_t *out, const int64_t *a, const int64_t *b, spk_view v, int64_t n)
{
    spk::pdl_begin();
    SPK_GRID_STRIDE(i, n)
    {
        int64_t off[3];
        spk::offsets<3>(v, i, off);
        out[off[0]] = binop_i(op, a[off[1]], b[off[2]]);
    }
}

/* 16 bytes of every operand a thread: the view's fastest dim contiguous in
 * all three (other dims may broadcast), strides and bases in whole vectors
 * (BERT's embedding sums at batch 32: 18-25 us each element-wise, H100). */
template <typename T>
__global__ void k_binary_vec(int op, uint4 *__restrict__ out, const uint4 *__restrict__ a, const uint4 *__restrict__ b,
                             spk_view v, int64_t n)
{
    spk::pdl_begin();
    constexpr int V = 16 / sizeof(T);
    SPK_GRID_STRIDE(i, n)
    {
        int64_t off[3];
        spk::offsets<3>(v, i, off);
        const uint4 ra = a[off[1]], rb = b[off[2]];
        uint4 r;
        const T *ea = reinterpret_cast<const T *>(&ra), *eb = reinterpret_cast<const T *>(&rb);
        T *er = reinterpret_cast<T *>(&r);
#pragma unroll
        for (int k = 0; k < V; k++)
            spk::st(er + k, binop(op, spk::ld(ea + k), spk::ld(eb + k)));
        out[off[0]] = r;
    }
}

template <typename T> int launch_binary(int op, void *out, const void *a, const void *b, const spk_view *v, cudaStream_t st)
{
    int64_t n = spk::numel(v);
    if (n == 0)
        return 0;
    const int64_t V = 16 / (int64_t)sizeof(T);
    const void *bases[3] = {out, a, b};
    spk_view w;
    if (spk::vector_view(v, 3, bases, V, 16, &w)) {
        spk::launch(k_binary_vec<T>, spk::grid_for(n / V, 256), 256, 0, st, op, (uint4 *)out, (const uint4 *)a,
                    (const uint4 *)b, w, n / V);
        return spk::ret();
    }
    if (v->rank == 1 && v->s[0][0] == 1 && (v->s[1][0] == 1 || v->s[1][0] == 0) &&
        (v->s[2][0] == 1 || v->s[2][0] == 0))
        spk::launch(k_binary_flat<T>, spk::grid_for(n, 256), 256, 0, st, op, (T *)out, (const T *)a, (const T *)b,
                                                                 (int)v->s[1][0], (int)v->s[2][0], n);
    else
        spk::launch(k_binary<T>, spk::grid_for(n, 256), 256, 0, st, op, (T *)out, (const T *)a, (const T *)b, *v, n);
    return spk::ret();
}

template <typename T>
__global__ void k_where(T *out, const uint8_t *c, const T *x, const T *y, spk_view v, int64_t n)
{
    spk::pdl_begin();
    SPK_GRID_STRIDE(i, n)
    {
        int64_t off[4];
        spk::offsets<4>(v, i, off);
        out[off[0]] = c[off[1]] ? x[off[2]] : y[off[3]];
    }
}

__device__ __forceinline__ float unop(int op, float x, float alpha, float beta)
{
    switch (op) {
    case SPK_RELU: return x > 0.f ? x : 0.f;
    case SPK_ERF: return erff(x);
    case SPK_SQRT: return sqrtf(x);
    case SPK_EXP: return expf(x);
    case SPK_TANH: return tanhf(x);
    case SPK_SIGMOID: return 1.f / (1.f + expf(-x));
    case SPK_NEG: return -x;
    case SPK_ABS: return fabsf(x);
    case SPK_RECIP: return 1.f / x;
    case SPK_GELU: return sp_gelu(x);
    case SPK_LOG: return logf(x);
    case SPK_CLIP: return fminf(fmaxf(x, alpha), beta);
    case SPK_LEAKYRELU: return x >= 0.f ? x : alpha * x;
    case SPK_HARDSWISH: { float t = fminf(fmaxf(x / 6.f + 0.5f, 0.f), 1.f); return x * t; }
    case SPK_HARDSIGMOID: return fminf(fmaxf(alpha * x + beta, 0.f), 1.f);
    default: return x;
    }
}

template <typename T>
__global__ void k_unary(int op, T *__restrict__ out, const T *__restrict__ in, int64_t n, float alpha, float beta)
{
    spk::pdl_begin();
    SPK_GRID_STRIDE(i, n) spk::st(out + i, unop(op, spk::ld(in + i), alpha, beta));
}

/* Vectorised fp16 path: 8 halves (16 bytes) per thread. */
__global__ void k_unary_h8(int op, uint4 *__restrict__ out, const uint4 *__restrict__ in, int64_t n8, float alpha,
                           float beta)
{
    spk::pdl_begin();
    SPK_GRID_STRIDE(i, n8)
    {
        uint4 v = in[i];
        __half2 *h = reinterpret_cast<__half2 *>(&v);
#pragma unroll
        for (int k = 0; k < 4; k++) {
            float2 f = __half22float2(h[k]);
            f.x = unop(op, f.x, alpha, beta);
            f.y = unop(op, f.y, alpha, beta);
            h[k] = __floats2half2_rn(f.x, f.y);
        }
        out[i] = v;
    }
}

template <typename T> int launch_unary(int op, void *out, const void *in, int64_t n, float a, float b, cudaStream_t st)
{
    if (n == 0)
        return 0;
    spk::launch(k_unary<T>, spk::grid_for(n, 256), 256, 0, st, op, (T *)out, (const T *)in, n, a, b);
    return spk::ret();
}

template <typename T>
__global__ void k_bias_act(T *__restrict__ y, int64_t rows, int64_t cols, const T *__restrict__ bias,
                           const T *__restrict__ res, int a, float alpha, float beta)
{
    spk::pdl_begin();
    int64_t n = rows * cols;
    SPK_GRID_STRIDE(i, n)
    {
        float v = spk::ld(y + i);
        if (bias)
            v += spk::ld(bias + i % cols);
        if (res)
            v += spk::ld(res + i);
        spk::st(y + i, act(a, v, alpha, beta));
    }
}

/* Vectorised fp16 path of k_bias_act: 8 halves (16 bytes) of y, the bias
 * and the residual per thread, one column index per 8 elements (the scalar
 * kernel's 64-bit modulo and 2-byte accesses per element made it run at
 * under a fifth of the memory bandwidth: 60 us for BERT-base's 4096 x 3072
 * GELU on the H200). Needs cols % 8 == 0 and 16-byte aligned pointers. */
__global__ void k_bias_act_h8(uint4 *__restrict__ y, int64_t n8, int64_t cols8, const uint4 *__restrict__ bias,
                              const uint4 *__restrict__ res, int a, float alpha, float beta)
{
    spk::pdl_begin();
    SPK_GRID_STRIDE(i, n8)
    {
        uint4 v = y[i];
        const uint4 b = bias ? bias[i % cols8] : make_uint4(0, 0, 0, 0);
        const uint4 r = res ? res[i] : make_uint4(0, 0, 0, 0);
        __half2 *h = reinterpret_cast<__half2 *>(&v);
        const __half2 *hb = reinterpret_cast<const __half2 *>(&b);
        const __half2 *hr = reinterpret_cast<const __half2 *>(&r);
#pragma unroll
        for (int k = 0; k < 4; k++) {
            const float2 f = __half22float2(h[k]), fb = __half22float2(hb[k]), fr = __half22float2(hr[k]);
            h[k] = __floats2half2_rn(act(a, f.x + fb.x + fr.x, alpha, beta), act(a, f.y + fb.y + fr.y, alpha, beta));
        }
        y[i] = v;
    }
}

template <typename T>
int launch_bias_act(void *y, int64_t rows, int64_t cols, const void *bias, const void *res, int a, float alpha,
                    float beta, cudaStream_t st)
{
    int64_t n = rows * cols;
    if (n == 0)
        return 0;
    if (sizeof(T) == 2 && cols % 8 == 0 && ((uintptr_t)y & 15) == 0 && ((uintptr_t)bias & 15) == 0 &&
        ((uintptr_t)res & 15) == 0) {
        spk::launch(k_bias_act_h8, spk::grid_for(n / 8, 256), 256, 0, st, (uint4 *)y, n / 8, cols / 8,
                    (const uint4 *)bias, (const uint4 *)res, a, alpha, beta);
        return spk::ret();
    }
    spk::launch(k_bias_act<T>, spk::grid_for(n, 256), 256, 0, st, (T *)y, rows, cols, (const T *)bias, (const T *)res, a,
                                                          alpha, beta);
    return spk::ret();
}

} // namespace

extern "C" int spk_binary(spk_stream s, int op, int dtype, void *out, const void *a, const void *b, const spk_view *v)
{
    cudaStream_t st = (cudaStream_t)s;
    if (dtype == SPRUN_DTYPE_INT64) {
        int64_t n = spk::numel(v);
        if (n == 0 || op == SPK_POW)
            return n == 0 ? 0 : SPK_E_UNSUPPORTED;
        spk::launch(k_binary_i64, spk::grid_for(n, 256), 256, 0, st, op, (int64_t *)out, (const int64_t *)a,
                                                             (const int64_t *)b, *v, n);
        return spk::ret();
    }
    SPK_DISPATCH_FLOAT(dtype, return launch_binary, op, out, a, b, v, st);
    return 0;
}

extern "C" int spk_where(spk_stream s, int dtype, void *out, const uint8_t *c, const void *x, const void *y,
                         const spk_view *v)
{
    cudaStream_t st = (cudaStream_t)s;
    int64_t n = spk::numel(v);
    if (n == 0)
        return 0;
    switch (dtype) {
    case SPRUN_DTYPE_FLOAT16:
        spk::launch(k_where<uint16_t>, spk::grid_for(n, 256), 256, 0, st, (uint16_t *)out, c, (const uint16_t *)x,
                                                                  (const uint16_t *)y, *v, n);
        break;
    case SPRUN_DTYPE_FLOAT:
    case SPRUN_DTYPE_INT32:
        spk::launch(k_where<uint32_t>, spk::grid_for(n, 256), 256, 0, st, (uint32_t *)out, c, (const uint32_t *)x,
                                                                  (const uint32_t *)y, *v, n);
        break;
    case SPRUN_DTYPE_INT64:
        spk::launch(k_where<uint64_t>, spk::grid_for(n, 256), 256, 0, st, (uint64_t *)out, c, (const uint64_t *)x,
                                                                  (const uint64_t *)y, *v, n);
        break;
    default: return SPK_E_UNSUPPORTED;
    }
    return spk::ret();
}

extern "C" int spk_unary(spk_stream s, int op, int dtype, void *out, const void *in, int64_t n, float a, float b)
{
    cudaStream_t st = (cudaStream_t)s;
    if (dtype == SPRUN_DTYPE_FLOAT16 && n % 8 == 0 && ((uintptr_t)out % 16) == 0 && ((uintptr_t)in % 16) == 0) {
        if (n == 0)
            return 0;
        spk::launch(k_unary_h8, spk::grid_for(n / 8, 256), 256, 0, st, op, (uint4 *)out, (const uint4 *)in, n / 8, a, b);
        return spk::ret();
    }
    SPK_DISPATCH_FLOAT(dtype, return launch_unary, op, out, in, n, a, b, st);
    return 0;
}

extern "C" int spk_bias_act(spk_stream s, int dtype, void *y, int64_t rows, int64_t cols, const void *bias,
                            const void *res, int a, float alpha, float beta)
{
    cudaStream_t st = (cudaStream_t)s;
    SPK_DISPATCH_FLOAT(dtype, return launch_bias_act, y, rows, cols, bias, res, a, alpha, beta, st);
    return 0;
}
