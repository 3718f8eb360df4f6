/*
 * im2col.cu - patch gather for sparse k x k convolutions on NHWC fp16
 * activations (the index arithmetic is im2col_gather.h, shared with the CPU
 * tests). Column order is the packed weight's: ONNX's (ci, ky, kx), or
 * (ky, kx, ci) for weights pruned 2:4 along their input channels.
 * Each thread writes V consecutive columns of one row: 16-byte stores when
 * K % 8 == 0 and the buffer is 16-byte aligned (coalesced across the warp),
 * single elements otherwise. In (ky, kx, ci) order with C % 8 == 0 the 8
 * columns are one 16-byte load of 8 channels; in ONNX order reads hit the few
 * input pixels of a patch, which the neighbouring threads share through L1.
 */
#include <cuda_fp16.h>
#include <stdint.h>

#include "kernels/cuda/im2col_gather.h"
#include "runtime/cuda/kernel_common.cuh"
#include "runtime/cuda/cuda_sparse.h"

template <int V, bool RUN8>
__global__ void im2col_nhwc_kernel(const uint16_t *__restrict__ x, uint16_t *__restrict__ col, int64_t chunks,
                                   int32_t kchunks, sp_im2col_geom g)
{
    spk::pdl_begin();
    const int32_t K = g.c * g.kh * g.kw;
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < chunks; i += (int64_t)gridDim.x * blockDim.x) {
        const int64_t row = i / kchunks;
        const int32_t j0 = (int32_t)(i - row * kchunks) * V;
        if (V == 8 && RUN8) {
            const int64_t off = sp_im2col_rsc_run8(&g, row, j0);
            const uint4 v = off >= 0 ? __ldg(reinterpret_cast<const uint4 *>(x + off)) : make_uint4(0, 0, 0, 0);
            *reinterpret_cast<uint4 *>(col + row * K + j0) = v;
        } else if (V == 8) {
            uint4 v;
            sp_im2col_gather(x, &g, row, j0, 8, reinterpret_cast<uint16_t *>(&v));
            *reinterpret_cast<uint4 *>(col + row * K + j0) = v;
        } else {
            uint16_t v[V];
            sp_im2col_gather(x, &g, row, j0, V, v);
            for (int q = 0; q < V; q++)
                col[row * K + j0 + q] = v[q];
        }
    }
}

extern "C" int sp_cuda_im2col_nhwc(const void *x, void *col, int64_t b, int64_t h, int64_t w, int64_t c, int64_t kh,
                                   int64_t kw, int64_t sh, int64_t sw, int64_t ph, int64_t pw, int64_t dh, int64_t dw,
                                   int64_t oh, int64_t ow, int rsc, void *stream)
{
    const int64_t rows = b * oh * ow, K = c * kh * kw;
    if (rows <= 0 || K <= 0)
        return 0;
    if (K > INT32_MAX || h > INT32_MAX || w > INT32_MAX || oh > INT32_MAX || ow > INT32_MAX)
        return (int)cudaErrorInvalidValue;
    const sp_im2col_geom g = {(int32_t)h,  (int32_t)w,  (int32_t)c,  (int32_t)kh, (int32_t)kw, (int32_t)sh, (int32_t)sw,
                              (int32_t)ph, (int32_t)pw, (int32_t)dh, (int32_t)dw, (int32_t)oh, (int32_t)ow, rsc != 0};
    const bool vec = K % 8 == 0 && ((uintptr_t)col & 15) == 0;
    const bool run8 = vec && rsc && c % 8 == 0 && ((uintptr_t)x & 15) == 0;
    const int32_t kchunks = (int32_t)(vec ? K / 8 : K);
    const int64_t chunks = rows * kchunks;
    const int threads = 256;
    int64_t blocks = (chunks + threads - 1) / threads;
    if (blocks > 65535LL * 32)
        blocks = 65535LL * 32;
    cudaStream_t s = (cudaStream_t)stream;
    if (run8)
        spk::launch(im2col_nhwc_kernel<8, true>, (unsigned)blocks, threads, 0, s, (const uint16_t *)x, (uint16_t *)col,
                                                                         chunks, kchunks, g);
    else if (vec)
        spk::launch(im2col_nhwc_kernel<8, false>, (unsigned)blocks, threads, 0, s, (const uint16_t *)x, (uint16_t *)col,
                                                                          chunks, kchunks, g);
    else
        spk::launch(im2col_nhwc_kernel<1, false>, (unsigned)blocks, threads, 0, s, (const uint16_t *)x, (uint16_t *)col,
                                                                          chunks, kchunks, g);
    return (int)cudaGetLastError();
}
