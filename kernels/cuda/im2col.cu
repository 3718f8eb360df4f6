/*
 * im2col.cu - patch gather for sparse k x k convolutions on NHWC fp16
 * activations. Output column order is ONNX's weight order (ci, ky, kx), so a
 * weight pruned 2:4 along ONNX's K stays 2:4 in the GEMM the SpMM computes.
 * Threads walk (row, ky, kx, ci) with ci fastest: reads of the input are
 * coalesced (C contiguous in NHWC); writes are strided by kh*kw.
 */
#include <cuda_fp16.h>
#include <stdint.h>

#include "runtime/cuda/cuda_sparse.h"

__global__ void im2col_nhwc_kernel(const __half *__restrict__ x, __half *__restrict__ col, int64_t total, int64_t h,
                                   int64_t w, int64_t c, int64_t kh, int64_t kw, int64_t sh, int64_t sw, int64_t ph,
                                   int64_t pw, int64_t dh, int64_t dw, int64_t oh, int64_t ow)
{
    const int64_t K = c * kh * kw;
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < total; i += (int64_t)gridDim.x * blockDim.x) {
        int64_t ci = i % c;
        int64_t t = i / c;
        int64_t kx = t % kw;
        t /= kw;
        int64_t ky = t % kh;
        int64_t row = t / kh;
        int64_t ox = row % ow;
        int64_t oy = (row / ow) % oh;
        int64_t b = row / (ow * oh);
        int64_t iy = oy * sh - ph + ky * dh, ix = ox * sw - pw + kx * dw;
        __half v = __float2half(0.f);
        if (iy >= 0 && iy < h && ix >= 0 && ix < w)
            v = x[((b * h + iy) * w + ix) * c + ci];
        col[row * K + (ci * kh + ky) * kw + kx] = v;
    }
}

extern "C" int sp_cuda_im2col_nhwc(const void *x, void *col, int64_t b, int64_t h, int64_t w, int64_t c, int64_t kh,
                                   int64_t kw, int64_t sh, int64_t sw, int64_t ph, int64_t pw, int64_t dh, int64_t dw,
                                   int64_t oh, int64_t ow, void *stream)
{
    int64_t total = b * oh * ow * kh * kw * c;
    if (total <= 0)
        return 0;
    int threads = 256;
    int64_t blocks = (total + threads - 1) / threads;
    if (blocks > 65535LL * 32)
        blocks = 65535LL * 32;
    im2col_nhwc_kernel<<<(unsigned)blocks, threads, 0, (cudaStream_t)stream>>>(
        (const __half *)x, (__half *)col, total, h, w, c, kh, kw, sh, sw, ph, pw, dh, dw, oh, ow);
    return (int)cudaGetLastError();
}
