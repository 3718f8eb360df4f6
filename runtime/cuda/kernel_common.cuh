/*
 * kernel_common.cuh - device helpers shared by the backend's kernels:
 * typed loads/stores through fp32, index decomposition of strided views,
 * dtype dispatch and launch sizing.
 */
#ifndef SPRUN_KERNEL_COMMON_CUH
#define SPRUN_KERNEL_COMMON_CUH

#include "runtime/cuda/cuda_kernels.h"
#include "sprun.h"

#include <cuda_fp16.h>
#include <cuda_runtime.h>
#include <stdint.h>
#include <stdlib.h>

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

/* Programmatic dependent launch (sm_90+). A kernel launched through
 * launch() may start while the kernel before it in the stream is still
 * finishing, so every such kernel calls pdl_begin() first: it waits until
 * that kernel has completed and its writes are visible (griddepcontrol.wait;
 * a no-op when launched without the attribute, or before sm_90), then lets
 * the next kernel's CTAs start as soon as every CTA of this grid has begun
 * (launch_dependents: they in turn wait before touching memory). What this
 * saves is the gap between kernels in a CUDA graph: the next kernel's launch
 * and prologue overlap this one's tail. */
__device__ __forceinline__ void pdl_begin()
{
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
    asm volatile("griddepcontrol.wait;\n" ::: "memory");
    asm volatile("griddepcontrol.launch_dependents;\n" ::: "memory");
#endif
}

/* Whether launches use programmatic dependent launch: on unless the
 * environment sets SPRUN_CUDA_PDL=0 (for A/B measurements), read once. */
static inline bool pdl_enabled(void)
{
    static int on = -1; /* a race only repeats the read */
    if (on < 0) {
        const char *e = getenv("SPRUN_CUDA_PDL");
        on = !(e && e[0] == '0');
    }
    return on != 0;
}

/* Whether the current device takes programmatic dependent launches
 * (compute capability 9.0 or newer) and they are enabled; cached per
 * device (a race only repeats the query). */
static inline bool pdl_device(void)
{
    static signed char cached[64]; /* 0 unknown, 1 no, 2 yes */
    int dev = 0, major = 0;
    if (!pdl_enabled())
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
    cudaLaunchConfig_t lc = {};
    lc.gridDim = grid;
    lc.blockDim = block;
    lc.dynamicSmemBytes = smem;
    lc.stream = stream;
    cudaLaunchAttribute attr[1];
    attr[0].id = cudaLaunchAttributeProgrammaticStreamSerialization;
    attr[0].val.programmaticStreamSerializationAllowed = 1;
    lc.attrs = attr;
    lc.numAttrs = pdl_device() ? 1 : 0;
    return cudaLaunchKernelEx(&lc, kernel, args...);
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
