/*
 * kernel_common.cuh - device helpers shared by the backend's kernels:
 * typed loads/stores through fp32, index decomposition of strided views,
 * dtype dispatch and launch sizing.
 */
#ifndef SPRUN_KERNEL_COMMON_CUH
#define SPRUN_KERNEL_COMMON_CUH

#include "kernels/cuda/pdl.cuh"
#include "runtime/cuda/cuda_kernels.h"
#include "sprun.h"

#include <cuda_fp16.h>
#include <cuda_runtime.h>
#include <stdint.h>

namespace spk {

template <typename T> __device__ __forceinline__ float ld(const T *p) { return (float)*p; }
template <> __device__ __forceinline__ float ld<__half>(const __half *p) { return __half2float(*p); }
template <typename T> __device__ __forceinline__ void st(T *p, float v) { *p = (T)v; }
template <> __device__ __forceinline__ void st<__half>(__half *p, float v) { *p = __float2half_rn(v); }

/* Offsets of linear index i in up to 4 strided operands over view v. */
template <int NOPS>
__device__ __forceinline__ void offsets(const spk_view &v, int64_t i, int64_t off[NOPS])
{
#pragma unroll
    for (int k = 0; k < NOPS; k++)
        off[k] = 0;
    for (int d = v.rank - 1; d >= 0; d--) {
        int64_t c = i % v.dims[d];
        i /= v.dims[d];
#pragma unroll
        for (int k = 0; k < NOPS; k++)
            off[k] += c * v.s[k][d];
    }
}

static inline int64_t numel(const spk_view *v)
{
    int64_t n = 1;
    for (int d = 0; d < v->rank; d++)
        n *= v->dims[d];
    return n;
}

static inline unsigned grid_for(int64_t n, int block)
{
    int64_t g = (n + block - 1) / block;
    if (g > 65535LL * 32)
        g = 65535LL * 32; /* grid-stride loops cover the rest */
    return (unsigned)(g > 0 ? g : 1);
}

static inline int ret(void) { return (int)cudaGetLastError(); }

/* View v over its first nops operands (bases[k] their addresses) seen in
 * vectors of vec elements: possible when the fastest dim is contiguous in
 * every operand, its length and every other stride are multiples of vec,
 * and every base is aligned to vec_bytes. Fills *w and returns true, else
 * false. (Strided copies and binary ops move 16 bytes a thread through it.) */
static inline bool vector_view(const spk_view *v, int nops, const void *const *bases, int64_t vec, int64_t vec_bytes,
                               spk_view *w)
{
    const int r = v->rank;
    if (vec <= 1 || r < 1 || v->dims[r - 1] % vec)
        return false;
    for (int k = 0; k < nops; k++)
        if (v->s[k][r - 1] != 1 || (uintptr_t)bases[k] % (uintptr_t)vec_bytes)
            return false;
    *w = *v;
    w->dims[r - 1] /= vec;
    for (int d = 0; d < r - 1; d++)
        for (int k = 0; k < nops; k++) {
            if (v->s[k][d] % vec)
                return false;
            w->s[k][d] /= vec;
        }
    return true;
}

/* Every kernel launched through launch() begins with pdl_begin(): it waits
 * for the kernel before it (pdl_wait, kernels/cuda/pdl.cuh), then lets the
 * next one's CTAs start as soon as every CTA of this grid has begun. */
__device__ __forceinline__ void pdl_begin()
{
    pdl_wait();
    pdl_launch_dependents();
}

/* Whether the current device takes programmatic dependent launches
 * (compute capability 9.0 or newer) and the environment allows them;
 * cached per device (a race only repeats the query). */
static inline bool pdl_device(void)
{
    static signed char cached[64]; /* 0 unknown, 1 no, 2 yes */
    int dev = 0, major = 0;
    if (!pdl_env_enabled())
        return false;
    if (cudaGetDevice(&dev) != cudaSuccess || dev < 0)
        return false;
    if (dev < 64 && cached[dev])
        return cached[dev] == 2;
    const bool ok = cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, dev) == cudaSuccess &&
                    major >= 9;
    if (dev < 64)
        cached[dev] = ok ? 2 : 1;
    return ok;
}

/* kernel<<<grid, block, smem, stream>>>(args...), with programmatic
 * dependent launch where the device has it; the kernel must begin with
 * pdl_begin(). Returns the launch's error (also left for cudaGetLastError). */
template <typename... KArgs, typename... Args>
static inline cudaError_t launch(void (*kernel)(KArgs...), dim3 grid, dim3 block, size_t smem, cudaStream_t stream,
                                 Args... args)
{
    return pdl_launch(pdl_device(), kernel, grid, block, smem, stream, args...);
}

} // namespace spk

#define SPK_GRID_STRIDE(i, n) for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < (n); i += (int64_t)gridDim.x * blockDim.x)

/* Calls F<T>(...) for the float storage types. */
#define SPK_DISPATCH_FLOAT(dtype, F, ...)                                                 \
    do {                                                                                  \
        if ((dtype) == SPRUN_DTYPE_FLOAT16)                                               \
            F<__half>(__VA_ARGS__);                                                       \
        else if ((dtype) == SPRUN_DTYPE_FLOAT)                                            \
            F<float>(__VA_ARGS__);                                                        \
        else                                                                              \
            return SPK_E_UNSUPPORTED;                                                     \
    } while (0)

#endif
