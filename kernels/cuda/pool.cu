/*
 * pool.cu - MaxPool / AveragePool and their global forms, for any strides
 * of (n, c, h, w), so NHWC (the backend's conv layout) and NCHW take the
 * same kernel; threads walk the output in its memory order, which keeps
 * NHWC reads coalesced along c. NHWC tensors whose channels come in whole
 * 16-byte vectors take a kernel with a thread per 16 bytes of output
 * channels (ResNet-50's stem MaxPool at batch 32 on an H200: 133 us with a
 * thread and a 2-byte load per element and tap).
 */
#include "runtime/cuda/kernel_common.cuh"

#include <float.h>

namespace {

/* I is the index type: 32-bit when the tensors allow it (the divisions
 * dominate a pooling kernel's cost). */
template <typename T, typename I>
__global__ void k_pool(T *__restrict__ out, const T *__restrict__ in, spk_pool p, int nhwc)
{
    spk::pdl_begin();
    I n = (I)(p.n * p.c * p.oh * p.ow);
    I C = (I)p.c, OH = (I)p.oh, OW = (I)p.ow, H = (I)p.h, W = (I)p.w;
    for (I t = (I)blockIdx.x * blockDim.x + threadIdx.x; t < n; t += (I)gridDim.x * blockDim.x) {
        I b, c, y, x, q = t;
        if (nhwc) {
            c = q % C; q /= C;
            x = q % OW; q /= OW;
            y = q % OH; b = q / OH;
        } else {
            x = q % OW; q /= OW;
            y = q % OH; q /= OH;
            c = q % C; b = q / C;
        }
        const T *base = in + (I)(b * (I)p.is[0] + c * (I)p.is[1]);
        float acc = p.max ? -FLT_MAX : 0.f;
        int cnt = 0;
        for (int i = 0; i < p.kh; i++) {
            I h = y * p.sh - p.ph + (I)i * p.dh;
            for (int j = 0; j < p.kw; j++) {
                I w = x * p.sw - p.pw + (I)j * p.dw;
                if (h < 0 || h >= H || w < 0 || w >= W) {
                    cnt += p.count_include_pad;
                    continue;
                }
                float v = spk::ld(base + h * (I)p.is[2] + w * (I)p.is[3]);
                acc = p.max ? fmaxf(acc, v) : acc + v;
                cnt++;
            }
        }
        if (!p.max)
            acc = cnt ? acc / (float)cnt : 0.f;
        spk::st(out + (b * (I)p.os[0] + c * (I)p.os[1] + y * (I)p.os[2] + x * (I)p.os[3]), acc);
    }
}

/* NHWC with c a multiple of V = 16 / sizeof(T): thread per V channels of
 * one output pixel, 16-byte loads and stores, fp32 arithmetic. */
template <typename T, typename I>
__global__ void k_pool_nhwc_vec(T *__restrict__ out, const T *__restrict__ in, spk_pool p)
{
    spk::pdl_begin();
    constexpr int V = 16 / sizeof(T);
    const I CV = (I)(p.c / V), OH = (I)p.oh, OW = (I)p.ow, H = (I)p.h, W = (I)p.w;
    const I n = (I)(p.n * p.oh * p.ow) * CV;
    for (I t = (I)blockIdx.x * blockDim.x + threadIdx.x; t < n; t += (I)gridDim.x * blockDim.x) {
        I q = t;
        const I cv = q % CV;
        q /= CV;
        const I x = q % OW;
        q /= OW;
        const I y = q % OH, b = q / OH;
        const T *base = in + (I)(b * (I)p.is[0]) + cv * V;
        float acc[V];
#pragma unroll
        for (int e = 0; e < V; e++)
            acc[e] = p.max ? -FLT_MAX : 0.f;
        int cnt = 0;
        for (int i = 0; i < p.kh; i++) {
            const I h = y * p.sh - p.ph + (I)i * p.dh;
            for (int j = 0; j < p.kw; j++) {
                const I w = x * p.sw - p.pw + (I)j * p.dw;
                if (h < 0 || h >= H || w < 0 || w >= W) {
                    cnt += p.count_include_pad;
                    continue;
                }
                const uint4 r = *reinterpret_cast<const uint4 *>(base + h * (I)p.is[2] + w * (I)p.is[3]);
                const T *e = reinterpret_cast<const T *>(&r);
#pragma unroll
                for (int k = 0; k < V; k++)
                    acc[k] = p.max ? fmaxf(acc[k], spk::ld(e + k)) : acc[k] + spk::ld(e + k);
                cnt++;
            }
        }
        uint4 r;
        T *e = reinterpret_cast<T *>(&r);
#pragma unroll
        for (int k = 0; k < V; k++)
            spk::st(e + k, p.max ? acc[k] : (cnt ? acc[k] / (float)cnt : 0.f));
        *reinterpret_cast<uint4 *>(out + (b * (I)p.os[0] + cv * V + y * (I)p.os[2] + x * (I)p.os[3])) = r;
    }
}

template <typename T> int launch_pool(void *out, const void *in, const spk_pool *p, cudaStream_t st)
{
    int64_t n = p->n * p->c * p->oh * p->ow;
    if (n == 0)
        return 0;
    /* 32-bit index arithmetic while every offset and thread index fits */
    const bool i32 = (p->n * p->is[0] > n ? p->n * p->is[0] : n) < 2147483647LL / 2;
    const int64_t V = 16 / (int64_t)sizeof(T);
    if (p->is[1] == 1 && p->os[1] == 1 && p->c % V == 0 && p->is[0] % V == 0 && p->is[2] % V == 0 &&
        p->is[3] % V == 0 && p->os[0] % V == 0 && p->os[2] % V == 0 && p->os[3] % V == 0 &&
        ((uintptr_t)in | (uintptr_t)out) % 16 == 0) {
        const int64_t nv = n / V;
        if (i32)
            spk::launch(k_pool_nhwc_vec<T, int>, spk::grid_for(nv, 256), 256, 0, st, (T *)out, (const T *)in, *p);
        else
            spk::launch(k_pool_nhwc_vec<T, int64_t>, spk::grid_for(nv, 256), 256, 0, st, (T *)out, (const T *)in, *p);
        return spk::ret();
    }
    int nhwc = p->os[1] == 1 && p->c > 1;
    if (i32)
        spk::launch(k_pool<T, int>, spk::grid_for(n, 256), 256, 0, st, (T *)out, (const T *)in, *p, nhwc);
    else
        spk::launch(k_pool<T, int64_t>, spk::grid_for(n, 256), 256, 0, st, (T *)out, (const T *)in, *p, nhwc);
    return spk::ret();
}

/* Thread per (n, c); consecutive threads take consecutive c. */
template <typename T>
__global__ void k_gpool(T *__restrict__ out, const T *__restrict__ in, int64_t N, int64_t C, int64_t hw, int64_t is0,
                        int64_t is1, int64_t is2, int64_t os0, int64_t os1, int mx)
{
    spk::pdl_begin();
    SPK_GRID_STRIDE(t, N * C)
    {
        int64_t c = t % C, b = t / C;
        const T *p = in + b * is0 + c * is1;
        float acc = mx ? -FLT_MAX : 0.f;
        for (int64_t i = 0; i < hw; i++) {
            float v = spk::ld(p + i * is2);
            acc = mx ? fmaxf(acc, v) : acc + v;
        }
        spk::st(out + b * os0 + c * os1, mx ? acc : acc / (float)hw);
    }
}

template <typename T>
int launch_gpool(void *out, const void *in, int64_t N, int64_t C, int64_t hw, const int64_t *is, const int64_t *os,
                 int mx, cudaStream_t st)
{
    if (N * C == 0)
        return 0;
    spk::launch(k_gpool<T>, spk::grid_for(N * C, 128), 128, 0, st, (T *)out, (const T *)in, N, C, hw, is[0], is[1], is[2],
                                                           os[0], os[1], mx);
    return spk::ret();
}

} // namespace

extern "C" int spk_pool2d(spk_stream s, int dtype, void *out, const void *in, const spk_pool *p)
{
    cudaStream_t st = (cudaStream_t)s;
    SPK_DISPATCH_FLOAT(dtype, return launch_pool, out, in, p, st);
    return 0;
}

extern "C" int spk_global_pool(spk_stream s, int dtype, void *out, const void *in, int64_t n, int64_t c, int64_t hw,
                               const int64_t is[3], const int64_t os[2], int mx)
{
    cudaStream_t st = (cudaStream_t)s;
    SPK_DISPATCH_FLOAT(dtype, return launch_gpool, out, in, n, c, hw, is, os, mx, st);
    return 0;
}
