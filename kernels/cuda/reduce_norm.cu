/*
 * reduce_norm.cu - Softmax (with BERT's scale and additive mask folded in),
 * LayerNormalization (with the preceding residual Add folded in) and
 * ReduceMean over the last dim, with fp32 accumulation: fp16 sums of 768
 * activations overflow, which is what users of other runtimes hit in fp16
 * LayerNorm.
 *
 * Rows of up to 32 lanes x 4 vectors (1024 halves, 512 floats) go to one
 * warp each, loaded in 4-16-byte vectors and reduced by shuffles alone: a
 * block per row, as before, spent its time in three __syncthreads
 * reductions and 2-byte loads (BERT-base at batch 32 on an H200: 63 us per
 * 49152 x 128 softmax, 17 us per 4096 x 768 LayerNorm). Longer rows, or
 * rows whose length or base is not a multiple of the vector, keep a block
 * per row.
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


/* VEC consecutive elements as one 4-, 8- or 16-byte access. */
template <int BYTES> struct raw_vec;
template <> struct raw_vec<2> { typedef unsigned short type; };
template <> struct raw_vec<4> { typedef unsigned type; };
template <> struct raw_vec<8> { typedef uint2 type; };
template <> struct raw_vec<16> { typedef uint4 type; };

/* The raw vector, converted later (loads issued early, registers kept packed). */
template <typename T, int VEC> __device__ __forceinline__ typename raw_vec<VEC * sizeof(T)>::type ld_raw(const T *p)
{
    return *reinterpret_cast<const typename raw_vec<VEC * sizeof(T)>::type *>(p);
}

template <typename T, int VEC>
__device__ __forceinline__ void unpack_vec(const typename raw_vec<VEC * sizeof(T)>::type &r, float (&f)[VEC])
{
    const T *e = reinterpret_cast<const T *>(&r);
#pragma unroll
    for (int i = 0; i < VEC; i++)
        f[i] = spk::ld(e + i);
}

template <typename T, int VEC> __device__ __forceinline__ void ld_vec(const T *p, float (&f)[VEC])
{
    unpack_vec<T, VEC>(ld_raw<T, VEC>(p), f);
}

template <typename T, int VEC> __device__ __forceinline__ void st_vec(T *p, const float (&f)[VEC])
{
    typedef typename raw_vec<VEC * sizeof(T)>::type R;
    R r;
    T *e = reinterpret_cast<T *>(&r);
#pragma unroll
    for (int i = 0; i < VEC; i++)
        spk::st(e + i, f[i]);
    *reinterpret_cast<R *>(p) = r;
}

/* One warp per row of at most 32 * VEC * NV elements; cols and every row's
 * base are multiples of VEC. Lane l holds vectors l, l + 32, ... */
template <typename T, int VEC, int NV>
__global__ void k_softmax_warp(T *__restrict__ out, const T *__restrict__ in, int64_t rows, int cols, float scale,
                               const T *__restrict__ mask, int64_t mdiv, int64_t mmod)
{
    spk::pdl_begin();
    const int lane = threadIdx.x & 31;
    const int64_t row = (int64_t)blockIdx.x * (blockDim.x >> 5) + (threadIdx.x >> 5);
    if (row >= rows)
        return;
    const T *x = in + row * cols;
    const T *m = mask ? mask + ((row / mdiv) % mmod) * cols : nullptr;
    float v[NV][VEC];
    float mx = -FLT_MAX;
#pragma unroll
    for (int k = 0; k < NV; k++) {
        const int c = (k * 32 + lane) * VEC;
        if (c < cols) {
            ld_vec<T, VEC>(x + c, v[k]);
            float mv[VEC];
            if (m)
                ld_vec<T, VEC>(m + c, mv);
#pragma unroll
            for (int i = 0; i < VEC; i++) {
                /* -inf masks (fp16 overflow of float min) stay finite */
                v[k][i] = fmaxf(v[k][i] * scale + (m ? mv[i] : 0.f), -FLT_MAX);
                mx = fmaxf(mx, v[k][i]);
            }
        }
    }
    mx = warp_max(mx);
    float sum = 0.f;
#pragma unroll
    for (int k = 0; k < NV; k++)
        if ((k * 32 + lane) * VEC < cols)
#pragma unroll
            for (int i = 0; i < VEC; i++) {
                v[k][i] = __expf(v[k][i] - mx);
                sum += v[k][i];
            }
    const float inv = 1.f / warp_sum(sum);
    T *y = out + row * cols;
#pragma unroll
    for (int k = 0; k < NV; k++) {
        const int c = (k * 32 + lane) * VEC;
        if (c < cols) {
#pragma unroll
            for (int i = 0; i < VEC; i++)
                v[k][i] *= inv;
            st_vec<T, VEC>(y + c, v[k]);
        }
    }
}

/* LayerNorm (of x + res when res) by one warp per row, as k_softmax_warp. */
template <typename T, int VEC, int NV>
__global__ void k_layernorm_warp(T *__restrict__ out, const T *__restrict__ x, const T *__restrict__ res,
                                 const T *__restrict__ gamma, const T *__restrict__ beta, int64_t rows, int cols,
                                 float eps)
{
    spk::pdl_begin();
    const int lane = threadIdx.x & 31;
    const int64_t row = (int64_t)blockIdx.x * (blockDim.x >> 5) + (threadIdx.x >> 5);
    if (row >= rows)
        return;
    const T *xr = x + row * cols;
    const T *rr = res ? res + row * cols : nullptr;
    /* gamma and beta are loaded with the row, before the reductions, so the
     * row costs one round trip to memory rather than two */
    typedef typename raw_vec<VEC * sizeof(T)>::type R;
    R gr[NV], br[NV];
#pragma unroll
    for (int k = 0; k < NV; k++) {
        const int c = (k * 32 + lane) * VEC;
        if (c < cols) {
            if (gamma)
                gr[k] = ld_raw<T, VEC>(gamma + c);
            if (beta)
                br[k] = ld_raw<T, VEC>(beta + c);
        }
    }
    float v[NV][VEC];
    float s = 0.f;
#pragma unroll
    for (int k = 0; k < NV; k++) {
        const int c = (k * 32 + lane) * VEC;
        if (c < cols) {
            ld_vec<T, VEC>(xr + c, v[k]);
            float r[VEC];
            if (rr)
                ld_vec<T, VEC>(rr + c, r);
#pragma unroll
            for (int i = 0; i < VEC; i++) {
                v[k][i] += rr ? r[i] : 0.f;
                s += v[k][i];
            }
        }
    }
    const float mean = warp_sum(s) / (float)cols;
    float q = 0.f;
#pragma unroll
    for (int k = 0; k < NV; k++)
        if ((k * 32 + lane) * VEC < cols)
#pragma unroll
            for (int i = 0; i < VEC; i++) {
                v[k][i] -= mean;
                q += v[k][i] * v[k][i];
            }
    const float rstd = rsqrtf(warp_sum(q) / (float)cols + eps);
    T *y = out + row * cols;
#pragma unroll
    for (int k = 0; k < NV; k++) {
        const int c = (k * 32 + lane) * VEC;
        if (c < cols) {
            float g[VEC], b[VEC];
            if (gamma)
                unpack_vec<T, VEC>(gr[k], g);
            if (beta)
                unpack_vec<T, VEC>(br[k], b);
#pragma unroll
            for (int i = 0; i < VEC; i++)
                v[k][i] = v[k][i] * rstd * (gamma ? g[i] : 1.f) + (beta ? b[i] : 0.f);
            st_vec<T, VEC>(y + c, v[k]);
        }
    }
}

/* The vector width (elements) for rows of cols elements at these bases:
 * the widest access (at most 16 bytes) that divides cols and every base,
 * narrowed while the row still fills the warp's lanes; and the vectors per
 * lane (1-4). Returns 0 when a row is too long for one warp. */
template <typename T> static int warp_row_shape(int64_t cols, const void *const *ptrs, int nptr, int *nv)
{
    int vec = 16 / (int)sizeof(T);
    for (;;) {
        bool ok = cols % vec == 0;
        for (int i = 0; i < nptr && ok; i++)
            ok = ((uintptr_t)ptrs[i] % (vec * sizeof(T))) == 0;
        if (ok || vec == 1)
            break;
        vec /= 2;
    }
    while (vec > 1 && 32 * (vec / 2) >= cols && cols % (vec / 2) == 0)
        vec /= 2;
    const int64_t per_lane = (cols + 32 * vec - 1) / (32 * vec);
    if (per_lane > 4)
        return 0;
    *nv = (int)per_lane;
    return vec;
}

/* Launches KERNEL<T, vec, nv> (4 warps, 4 rows a block) for the runtime vec
 * and nv (1-4). vec is 1, 2, 4 or 8 for fp16; at most 4 for fp32, whose
 * 8-case instantiates the 4 again (never reached: 16 bytes is 4 floats). */
#define SPK_WARP_ROW_LAUNCH(KERNEL, T, vec, nv, grid, st, ...)                                                      \
    do {                                                                                                           \
        switch ((vec) * 8 + (nv)) {                                                                                \
        case 8 + 1: spk::launch(KERNEL<T, 1, 1>, grid, 128, 0, st, __VA_ARGS__); break;                            \
        case 8 + 2: spk::launch(KERNEL<T, 1, 2>, grid, 128, 0, st, __VA_ARGS__); break;                            \
        case 8 + 3: spk::launch(KERNEL<T, 1, 3>, grid, 128, 0, st, __VA_ARGS__); break;                            \
        case 8 + 4: spk::launch(KERNEL<T, 1, 4>, grid, 128, 0, st, __VA_ARGS__); break;                            \
        case 16 + 1: spk::launch(KERNEL<T, 2, 1>, grid, 128, 0, st, __VA_ARGS__); break;                           \
        case 16 + 2: spk::launch(KERNEL<T, 2, 2>, grid, 128, 0, st, __VA_ARGS__); break;                           \
        case 16 + 3: spk::launch(KERNEL<T, 2, 3>, grid, 128, 0, st, __VA_ARGS__); break;                           \
        case 16 + 4: spk::launch(KERNEL<T, 2, 4>, grid, 128, 0, st, __VA_ARGS__); break;                           \
        case 32 + 1: spk::launch(KERNEL<T, 4, 1>, grid, 128, 0, st, __VA_ARGS__); break;                           \
        case 32 + 2: spk::launch(KERNEL<T, 4, 2>, grid, 128, 0, st, __VA_ARGS__); break;                           \
        case 32 + 3: spk::launch(KERNEL<T, 4, 3>, grid, 128, 0, st, __VA_ARGS__); break;                           \
        case 32 + 4: spk::launch(KERNEL<T, 4, 4>, grid, 128, 0, st, __VA_ARGS__); break;                           \
        case 64 + 1: spk::launch(KERNEL<T, (sizeof(T) == 2 ? 8 : 4), 1>, grid, 128, 0, st, __VA_ARGS__); break;         \
        case 64 + 2: spk::launch(KERNEL<T, (sizeof(T) == 2 ? 8 : 4), 2>, grid, 128, 0, st, __VA_ARGS__); break;         \
        case 64 + 3: spk::launch(KERNEL<T, (sizeof(T) == 2 ? 8 : 4), 3>, grid, 128, 0, st, __VA_ARGS__); break;         \
        case 64 + 4: spk::launch(KERNEL<T, (sizeof(T) == 2 ? 8 : 4), 4>, grid, 128, 0, st, __VA_ARGS__); break;         \
        default: return SPK_E_UNSUPPORTED;                                                                         \
        }                                                                                                          \
    } while (0)

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
    const void *bases[3] = {in, out, mask};
    int nv = 0;
    const int vec = warp_row_shape<T>(cols, bases, mask ? 3 : 2, &nv);
    if (vec > 0) {
        const unsigned grid = (unsigned)((rows + 3) / 4);
        SPK_WARP_ROW_LAUNCH(k_softmax_warp, T, vec, nv, grid, st, o, i, rows, (int)cols, scale, m, md, mm);
        return spk::ret();
    }
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
    const void *bases[5] = {out, x, res, g, b};
    int nv = 0;
    const int vec = warp_row_shape<T>(cols, bases, 5, &nv);
    if (vec > 0) {
        const unsigned grid = (unsigned)((rows + 3) / 4);
        SPK_WARP_ROW_LAUNCH(k_layernorm_warp, T, vec, nv, grid, st, o, xx, rr, gg, bb, rows, (int)cols, eps);
        return spk::ret();
    }
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
