/*
 * pdl.cuh - programmatic dependent launch (sm_90+), shared by the backend's
 * kernels (runtime/cuda/kernel_common.cuh) and the sparse kernels.
 *
 * A kernel launched with cudaLaunchAttributeProgrammaticStreamSerialization
 * may start while the kernel before it in the stream is still finishing.
 * pdl_wait() (griddepcontrol.wait) blocks the calling thread until that
 * kernel has completed and its writes are visible; it is a no-op when the
 * kernel was launched without the attribute, and compiles to nothing before
 * sm_90. So every thread of such a kernel waits before it reads what an
 * earlier kernel wrote or writes anything; only constant data (weights) may
 * be read before. pdl_launch_dependents() lets the next kernel's CTAs start
 * once every CTA of this grid has issued it or exited; that kernel in turn
 * waits before touching memory. In a CUDA graph this overlaps a kernel's
 * launch and prologue with the previous kernel's tail.
 *
 * SPRUN_CUDA_PDL=0 in the environment turns it off (A/B timing).
 */
#ifndef SPRUN_PDL_CUH
#define SPRUN_PDL_CUH

#include <cuda_runtime.h>
#include <stdlib.h>

__device__ __forceinline__ void pdl_wait()
{
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
    asm volatile("griddepcontrol.wait;\n" ::: "memory");
#endif
}

__device__ __forceinline__ void pdl_launch_dependents()
{
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
    asm volatile("griddepcontrol.launch_dependents;\n" ::: "memory");
#endif
}

/* Whether the environment allows programmatic dependent launch: on unless
 * SPRUN_CUDA_PDL=0; read once per translation unit (a race only repeats
 * the read). */
static inline bool pdl_env_enabled(void)
{
    static int on = -1;
    if (on < 0) {
        const char *e = getenv("SPRUN_CUDA_PDL");
        on = !(e && e[0] == '0');
    }
    return on != 0;
}

/* kernel<<<grid, block, smem, stream>>>(args...), with the programmatic
 * stream serialization attribute when pdl is true (the kernel must then
 * call pdl_wait() before it touches memory an earlier kernel may use), and
 * in CTA clusters of cluster_z CTAs along the grid's z when cluster_z > 1
 * (it must divide grid.z). Returns the launch's error (also left for
 * cudaGetLastError). */
template <typename... KArgs, typename... Args>
static inline cudaError_t pdl_launch_cluster(bool pdl, unsigned cluster_z, void (*kernel)(KArgs...), dim3 grid,
                                             dim3 block, size_t smem, cudaStream_t stream, Args... args)
{
    cudaLaunchConfig_t lc = {};
    lc.gridDim = grid;
    lc.blockDim = block;
    lc.dynamicSmemBytes = smem;
    lc.stream = stream;
    cudaLaunchAttribute attr[2];
    unsigned na = 0;
    if (pdl) {
        attr[na].id = cudaLaunchAttributeProgrammaticStreamSerialization;
        attr[na].val.programmaticStreamSerializationAllowed = 1;
        na++;
    }
    if (cluster_z > 1) {
        attr[na].id = cudaLaunchAttributeClusterDimension;
        attr[na].val.clusterDim.x = 1;
        attr[na].val.clusterDim.y = 1;
        attr[na].val.clusterDim.z = cluster_z;
        na++;
    }
    lc.attrs = attr;
    lc.numAttrs = na;
    return cudaLaunchKernelEx(&lc, kernel, args...);
}

/* pdl_launch_cluster without clusters */
template <typename... KArgs, typename... Args>
static inline cudaError_t pdl_launch(bool pdl, void (*kernel)(KArgs...), dim3 grid, dim3 block, size_t smem,
                                     cudaStream_t stream, Args... args)
{
    return pdl_launch_cluster(pdl, 1, kernel, grid, block, smem, stream, args...);
}

#endif
