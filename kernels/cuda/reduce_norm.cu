/*
 * reduce_norm.cu - Softmax (with BERT's scale and additive mask folded in),
 * LayerNormalization (with the preceding residual Add folded in) and
 * ReduceMean over the last dim. One block per row, fp32 accumulation: fp16
 * sums of 768 activations overflow, which is what users of other runtimes
 * hit in fp16 LayerNorm.
 */
#include "runtime/cuda/kernel_common.cuh"

#include <float.h>

namespace {

__device__ __forceinline__ float warp_sum(float v)
{
#pragma unroll
    for (int o = 16; o > 0; o >>= 1)
        v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}

__device__ __forceinline__ float warp_max(float v)
{
#pragma unroll
    for (int o = 16; o > 0; o >>= 1)
        v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
    return v;
}

/* Block-wide reduction; every thread gets the result. */
template <bool MAX> __device__ float block_reduce(float v, float *sh)
{
    int lane = threadIdx.x & 31, w = threadIdx.x >> 5, nw = (blockDim.x + 31) >> 5;
    v = MAX ? warp_max(v) : warp_sum(v);
    __syncthreads(); /* sh may still be read from a previous reduction */
    if (lane == 0)
        sh[w] = v;
    __syncthreads();
    float r = lane < nw ? sh[lane] : (MAX ? -FLT_MAX : 0.f);
    if (w == 0) {
        r = MAX ? warp_max(r) : warp_sum(r);
        if (lane == 0)
            sh[32] = r;
    }
    __syncthreads();
    return sh[32];
}

/* Rows of up to PER * blockDim.x elements are held in registers. */
template <typename T, int PER>
__global__ void k_softmax(T *__restrict__ out, const T *__restrict__ in, int64_t cols, float scale,
                          const T *__restrict__ mask, int64_t mdiv, int64_t mmod)
{
    spk::pdl_begin();
    __shared__ float sh[33];
    int64_t row = blockIdx.x;
    const T *x = in + row * cols;
    const T *m = mask ? mask + ((row / mdiv) % mmod) * cols : nullptr;
    float v[PER];
    float mx = -FLT_MAX;
#pragma unroll
    for (int k = 0; k < PER; k++) {
        int64_t c = threadIdx.x + (int64_t)k * blockDim.x;
        float t = -FLT_MAX;
        if (c < cols) {
            t = spk::ld(x + c) * scale;
            if (m)
                t += spk::ld(m + c);
            t = fmaxf(t, -FLT_MAX); /* -inf masks (fp16 overflow of float min) stay finite */
        }
        v[k] = t;
        mx = fmaxf(mx, t);
    }
    mx = block_reduce<true>(mx, sh);
    float sum = 0.f;
#pragma unroll
    for (int k = 0; k < PER; k++) {
        int64_t c = threadIdx.x + (int64_t)k * blockDim.x;
        v[k] = c < cols ? __expf(v[k] - mx) : 0.f;
        sum += v[k];
    }
    sum = block_reduce<false>(sum, sh);
    float inv = 1.f / sum;
    T *y = out + row * cols;
#pragma unroll
    for (int k = 0; k < PER; k++) {
        int64_t c = threadIdx.x + (int64_t)k * blockDim.x;
        if (c < cols)
            spk::st(y + c, v[k] * inv);
    }
}

/* Any row length: three passes over global memory. */
template <typename T>
__global__ void k_softmax_long(T *__restrict__ out, const T *__restrict__ in, int64_t cols, float scale,
                               const T *__restrict__ mask, int64_t mdiv, int64_t mmod)
{
    spk::pdl_begin();
    __shared__ float sh[33];
    int64_t row = blockIdx.x;
    const T *x = in + row * cols;
    const T *m = mask ? mask + ((row / mdiv) % mmod) * cols : nullptr;
    float mx = -FLT_MAX;
    for (int64_t c = threadIdx.x; c < cols; c += blockDim.x)
        mx = fmaxf(mx, fmaxf(spk::ld(x + c) * scale + (m ? spk::ld(m + c) : 0.f), -FLT_MAX));
    mx = block_reduce<true>(mx, sh);
    float sum = 0.f;
    for (int64_t c = threadIdx.x; c < cols; c += blockDim.x)
        sum += __expf(fmaxf(spk::ld(x + c) * scale + (m ? spk::ld(m + c) : 0.f), -FLT_MAX) - mx);
    sum = block_reduce<false>(sum, sh);
    float inv = 1.f / sum;
    T *y = out + row * cols;
    for (int64_t c = threadIdx.x; c < cols; c += blockDim.x)
        spk::st(y + c, __expf(fmaxf(spk::ld(x + c) * scale + (m ? spk::ld(m + c) : 0.f), -FLT_MAX) - mx) * inv);
}

template <typename T>
int launch_softmax(void *out, const void *in, int64_t rows, int64_t cols, float scale, const void *mask, int64_t md,
                   int64_t mm, cudaStream_t st)
{
    if (rows == 0 || cols == 0)
        return 0;
    if (md <= 0)
        md = 1;
    if (mm <= 0)
        mm = 1;
    T *o = (T *)out;
    const T *i = (const T *)in, *m = (const T *)mask;
    if (rows > 2147483647LL)
        return SPK_E_UNSUPPORTED;
    if (cols <= 128)
        spk::launch(k_softmax<T, 1>, (unsigned)rows, 128, 0, st, o, i, cols, scale, m, md, mm);
    else if (cols <= 1024)
        spk::launch(k_softmax<T, 4>, (unsigned)rows, 256, 0, st, o, i, cols, scale, m, md, mm);
    else if (cols <= 8192)
        spk::launch(k_softmax<T, 8>, (unsigned)rows, 1024, 0, st, o, i, cols, scale, m, md, mm);
    else
        spk::launch(k_softmax_long<T>, (unsigned)rows, 1024, 0, st, o, i, cols, scale, m, md, mm);
    return spk::ret();
}

template <typename T, int PER>
__global__ void k_layernorm(T *__restrict__ out, const T *__restrict__ x, const T *__restrict__ res,
                            const T *__restrict__ gamma, const T *__restrict__ beta, int64_t cols, float eps)
{
    spk::pdl_begin();
    __shared__ float sh[33];
    int64_t row = blockIdx.x;
    const T *xr = x + row * cols;
    const T *rr = res ? res + row * cols : nullptr;
    float v[PER];
    float s = 0.f;
#pragma unroll
    for (int k = 0; k < PER; k++) {
        int64_t c = threadIdx.x + (int64_t)k * blockDim.x;
        float t = 0.f;
        if (c < cols) {
            t = spk::ld(xr + c);
            if (rr)
                t += spk::ld(rr + c);
        }
        v[k] = t;
        s += t;
    }
    float mean = block_reduce<false>(s, sh) / (float)cols;
    float q = 0.f;
#pragma unroll
    for (int k = 0; k < PER; k++) {
        int64_t c = threadIdx.x + (int64_t)k * blockDim.x;
        float d = c < cols ? v[k] - mean : 0.f;
        q += d * d;
    }
    float rstd = rsqrtf(block_reduce<false>(q, sh) / (float)cols + eps);
    T *y = out + row * cols;
#pragma unroll
    for (int k = 0; k < PER; k++) {
        int64_t c = threadIdx.x + (int64_t)k * blockDim.x;
        if (c < cols) {
            float t = (v[k] - mean) * rstd;
            if (gamma)
                t *= spk::ld(gamma + c);
            if (beta)
                t += spk::ld(beta + c);
            spk::st(y + c, t);
        }
    }
}

template <typename T>
__global__ void k_layernorm_long(T *__restrict__ out, const T *__restrict__ x, const T *__restrict__ res,
                                 const T *__restrict__ gamma, const T *__restrict__ beta, int64_t cols, float eps)
{
    spk::pdl_begin();
    __shared__ float sh[33];
    int64_t row = blockIdx.x;
    const T *xr = x + row * cols;
    const T *rr = res ? res + row * cols : nullptr;
    float s = 0.f;
    for (int64_t c = threadIdx.x; c < cols; c += blockDim.x)
        s += spk::ld(xr + c) + (rr ? spk::ld(rr + c) : 0.f);
    float mean = block_reduce<false>(s, sh) / (float)cols;
    float q = 0.f;
    for (int64_t c = threadIdx.x; c < cols; c += blockDim.x) {
        float d = spk::ld(xr + c) + (rr ? spk::ld(rr + c) : 0.f) - mean;
        q += d * d;
    }
    float rstd = rsqrtf(block_reduce<false>(q, sh) / (float)cols + eps);
    T *y = out + row * cols;
    for (int64_t c = threadIdx.x; c < cols; c += blockDim.x) {
        float t = (spk::ld(xr + c) + (rr ? spk::ld(rr + c) : 0.f) - mean) * rstd;
        if (gamma)
            t *= spk::ld(gamma + c);
        if (beta)
            t += spk::ld(beta + c);
        spk::st(y + c, t);
    }
}

template <typename T>
int launch_layernorm(void *out, const void *x, const void *res, const void *g, const void *b, int64_t rows,
                     int64_t cols, float eps, cudaStream_t st)
{
    if (rows == 0 || cols == 0)
        return 0;
    if (rows > 2147483647LL)
        return SPK_E_UNSUPPORTED;
    T *o = (T *)out;
    const T *xx = (const T *)x, *rr = (const T *)res, *gg = (const T *)g, *bb = (const T *)b;
    if (cols <= 256)
        spk::launch(k_layernorm<T, 2>, (unsigned)rows, 128, 0, st, o, xx, rr, gg, bb, cols, eps);
    else if (cols <= 1024)
        spk::launch(k_layernorm<T, 4>, (unsigned)rows, 256, 0, st, o, xx, rr, gg, bb, cols, eps);
    else if (cols <= 4096)
        spk::launch(k_layernorm<T, 8>, (unsigned)rows, 512, 0, st, o, xx, rr, gg, bb, cols, eps);
    else
        spk::launch(k_layernorm_long<T>, (unsigned)rows, 1024, 0, st, o, xx, rr, gg, bb, cols, eps);
    return spk::ret();
}

template <typename T> __global__ void k_mean(T *__restrict__ out, const T *__restrict__ in, int64_t cols)
{
    spk::pdl_begin();
    __shared__ float sh[33];
    const T *x = in + (int64_t)blockIdx.x * cols;
    float s = 0.f;
    for (int64_t c = threadIdx.x; c < cols; c += blockDim.x)
        s += spk::ld(x + c);
    s = block_reduce<false>(s, sh);
    if (threadIdx.x == 0)
        spk::st(out + blockIdx.x, s / (float)cols);
}

template <typename T> int launch_mean(void *out, const void *in, int64_t rows, int64_t cols, cudaStream_t st)
{
    if (rows == 0)
        return 0;
    if (rows > 2147483647LL)
        return SPK_E_UNSUPPORTED;
    spk::launch(k_mean<T>, (unsigned)rows, 256, 0, st, (T *)out, (const T *)in, cols);
    return spk::ret();
}

} // namespace

extern "C" int spk_softmax(spk_stream s, int dtype, void *out, const void *in, int64_t rows, int64_t cols, float scale,
                           const void *mask, int64_t md, int64_t mm)
{
    cudaStream_t st = (cudaStream_t)s;
    SPK_DISPATCH_FLOAT(dtype, return launch_softmax, out, in, rows, cols, scale, mask, md, mm, st);
    return 0;
}

extern "C" int spk_layernorm(spk_stream s, int dtype, void *out, const void *x, const void *res, const void *g,
                             const void *b, int64_t rows, int64_t cols, float eps)
{
    cudaStream_t st = (cudaStream_t)s;
    SPK_DISPATCH_FLOAT(dtype, return launch_layernorm, out, x, res, g, b, rows, cols, eps, st);
    return 0;
}

extern "C" int spk_reduce_mean(spk_stream s, int dtype, void *out, const void *in, int64_t rows, int64_t cols)
{
    cudaStream_t st = (cudaStream_t)s;
    SPK_DISPATCH_FLOAT(dtype, return launch_mean, out, in, rows, cols, st);
    return 0;
}
