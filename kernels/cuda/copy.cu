/*
 * copy.cu - the strided copy behind Transpose, Slice, Concat, Expand, Cast
 * and the NCHW <-> NHWC layout changes of the GPU backend, plus fill.
 *
 * One kernel: each thread maps a linear index of the destination-ordered
 * view to a source and destination offset. The host merges and orders dims
 * so that the destination is contiguous in the fastest dim; a rank-1 view
 * is a plain (converting) memcpy. Same-type copies whose fastest dim is
 * contiguous on both sides and whose strides and bases allow it move 16-byte
 * vectors instead of elements (Split's slices of BERT's fused query/key/value
 * at batch 32 on an H100: 62 us for three element-wise copies).
 */
#include "runtime/cuda/kernel_common.cuh"

namespace {

template <typename S, typename D> __device__ __forceinline__ D conv(S v) { return (D)v; }
template <> __device__ __forceinline__ __half conv<float, __half>(float v) { return __float2half_rn(v); }
template <> __device__ __forceinline__ float conv<__half, float>(__half v) { return __half2float(v); }
template <> __device__ __forceinline__ __half conv<int64_t, __half>(int64_t v) { return __float2half_rn((float)v); }
template <> __device__ __forceinline__ int64_t conv<__half, int64_t>(__half v) { return (int64_t)__half2float(v); }
template <> __device__ __forceinline__ __half conv<int32_t, __half>(int32_t v) { return __float2half_rn((float)v); }
template <> __device__ __forceinline__ int32_t conv<__half, int32_t>(__half v) { return (int32_t)__half2float(v); }
template <> __device__ __forceinline__ __half conv<uint8_t, __half>(uint8_t v) { return __float2half_rn((float)v); }
template <> __device__ __forceinline__ uint8_t conv<__half, uint8_t>(__half v) { return __half2float(v) != 0.f; }
template <> __device__ __forceinline__ __half conv<double, __half>(double v) { return __float2half_rn((float)v); }
template <> __device__ __forceinline__ double conv<__half, double>(__half v) { return (double)__half2float(v); }
template <> __device__ __forceinline__ __half conv<__half, __half>(__half v) { return v; }
template <> __device__ __forceinline__ uint8_t conv<float, uint8_t>(float v) { return v != 0.f; }
template <> __device__ __forceinline__ uint8_t conv<double, uint8_t>(double v) { return v != 0.0; }

template <typename S, typename D>
__global__ void k_copy(D *__restrict__ dst, const S *__restrict__ src, spk_view v, int64_t n)
{
    spk::pdl_begin();
    SPK_GRID_STRIDE(i, n)
    {
        int64_t off[2];
        spk::offsets<2>(v, i, off);
        dst[off[0]] = conv<S, D>(src[off[1]]);
    }
}

template <typename S, typename D>
__global__ void k_copy_flat(D *__restrict__ dst, const S *__restrict__ src, int64_t n)
{
    spk::pdl_begin();
    SPK_GRID_STRIDE(i, n) dst[i] = conv<S, D>(src[i]);
}

template <typename A, typename B> struct same_type { static const bool value = false; };
template <typename A> struct same_type<A, A> { static const bool value = true; };

template <typename S, typename D> int launch(void *dst, const void *src, const spk_view *v, cudaStream_t st)
{
    int64_t n = spk::numel(v);
    if (n == 0)
        return 0;
    spk_view w;
    const void *bases[2] = {dst, src};
    if (same_type<S, D>::value && spk::vector_view(v, 2, bases, 16 / (int64_t)sizeof(S), 16, &w)) {
        const int64_t nv = n / (16 / (int64_t)sizeof(S));
        spk::launch(k_copy<uint4, uint4>, spk::grid_for(nv, 256), 256, 0, st, (uint4 *)dst, (const uint4 *)src, w, nv);
        return spk::ret();
    }
    int flat = v->rank == 1 && v->s[0][0] == 1 && v->s[1][0] == 1;
    if (flat)
        spk::launch(k_copy_flat<S, D>, spk::grid_for(n, 256), 256, 0, st, (D *)dst, (const S *)src, n);
    else
        spk::launch(k_copy<S, D>, spk::grid_for(n, 256), 256, 0, st, (D *)dst, (const S *)src, *v, n);
    return spk::ret();
}

template <typename S> int launch_from(void *dst, int dd, const void *src, const spk_view *v, cudaStream_t st)
{
    switch (dd) {
    case SPRUN_DTYPE_FLOAT16: return launch<S, __half>(dst, src, v, st);
    case SPRUN_DTYPE_FLOAT: return launch<S, float>(dst, src, v, st);
    case SPRUN_DTYPE_DOUBLE: return launch<S, double>(dst, src, v, st);
    case SPRUN_DTYPE_INT64: return launch<S, int64_t>(dst, src, v, st);
    case SPRUN_DTYPE_INT32: return launch<S, int32_t>(dst, src, v, st);
    case SPRUN_DTYPE_BOOL:
    case SPRUN_DTYPE_UINT8: return launch<S, uint8_t>(dst, src, v, st);
    default: return SPK_E_UNSUPPORTED;
    }
}

/* Same-size types copy as raw words: no conversion instantiations needed. */
int launch_raw(void *dst, const void *src, int size, const spk_view *v, cudaStream_t st)
{
    switch (size) {
    case 1: return launch<uint8_t, uint8_t>(dst, src, v, st);
    case 2: return launch<uint16_t, uint16_t>(dst, src, v, st);
    case 4: return launch<uint32_t, uint32_t>(dst, src, v, st);
    case 8: return launch<uint64_t, uint64_t>(dst, src, v, st);
    default: return SPK_E_UNSUPPORTED;
    }
}

int dsize(int dt)
{
    switch (dt) {
    case SPRUN_DTYPE_FLOAT16: case SPRUN_DTYPE_INT16: case SPRUN_DTYPE_UINT16: case SPRUN_DTYPE_BFLOAT16: return 2;
    case SPRUN_DTYPE_FLOAT: case SPRUN_DTYPE_INT32: case SPRUN_DTYPE_UINT32: return 4;
    case SPRUN_DTYPE_DOUBLE: case SPRUN_DTYPE_INT64: case SPRUN_DTYPE_UINT64: return 8;
    case SPRUN_DTYPE_BOOL: case SPRUN_DTYPE_UINT8: case SPRUN_DTYPE_INT8: return 1;
    default: return 0;
    }
}

template <typename T> __global__ void k_fill(T *dst, int64_t n, float v)
{
    spk::pdl_begin();
    SPK_GRID_STRIDE(i, n) spk::st(dst + i, v);
}

} // namespace

extern "C" int spk_copy(spk_stream s, void *dst, int dd, const void *src, int sd, const spk_view *v)
{
    cudaStream_t st = (cudaStream_t)s;
    if (dd == sd || (dd == SPRUN_DTYPE_BOOL && sd == SPRUN_DTYPE_UINT8) ||
        (dd == SPRUN_DTYPE_UINT8 && sd == SPRUN_DTYPE_BOOL))
        return launch_raw(dst, src, dsize(dd), v, st);
    switch (sd) {
    case SPRUN_DTYPE_FLOAT16: return launch_from<__half>(dst, dd, src, v, st);
    case SPRUN_DTYPE_FLOAT: return launch_from<float>(dst, dd, src, v, st);
    case SPRUN_DTYPE_DOUBLE: return launch_from<double>(dst, dd, src, v, st);
    case SPRUN_DTYPE_INT64: return launch_from<int64_t>(dst, dd, src, v, st);
    case SPRUN_DTYPE_INT32: return launch_from<int32_t>(dst, dd, src, v, st);
    case SPRUN_DTYPE_BOOL:
    case SPRUN_DTYPE_UINT8: return launch_from<uint8_t>(dst, dd, src, v, st);
    default: return SPK_E_UNSUPPORTED;
    }
}

extern "C" int spk_fill(spk_stream s, void *dst, int dtype, int64_t n, float value)
{
    cudaStream_t st = (cudaStream_t)s;
    if (n <= 0)
        return 0;
    switch (dtype) {
    case SPRUN_DTYPE_FLOAT16: spk::launch(k_fill<__half>, spk::grid_for(n, 256), 256, 0, st, (__half *)dst, n, value); break;
    case SPRUN_DTYPE_FLOAT: spk::launch(k_fill<float>, spk::grid_for(n, 256), 256, 0, st, (float *)dst, n, value); break;
    default: return SPK_E_UNSUPPORTED;
    }
    return spk::ret();
}

/* im2col for NHWC convolutions run as one GEMM (small batches, where a
 * cuDNN call costs more than the arithmetic): row (n, oh, ow), column
 * (r, s, c) in KRSC weight order; padding reads as zero. */
namespace {
template <typename T>
__global__ void k_im2col(T *__restrict__ out, const T *__restrict__ in, spk_conv g, int64_t n)
{
    spk::pdl_begin();
    int64_t cols = g.kpad, real = (int64_t)g.r * g.s * g.c;
    SPK_GRID_STRIDE(t, n)
    {
        int64_t col = t % cols, row = t / cols;
        if (col >= real) {
            out[t] = T(0.f);
            continue;
        }
        int64_t c = col % g.c, q = col / g.c;
        int64_t s = q % g.s, r = q / g.s;
        int64_t ow = row % g.ow, q2 = row / g.ow;
        int64_t oh = q2 % g.oh, b = q2 / g.oh;
        int64_t h = oh * g.sh - g.ph + r * g.dh, w = ow * g.sw - g.pw + s * g.dw;
        T v = T(0.f);
        if (h >= 0 && h < g.h && w >= 0 && w < g.w)
            v = in[((b * g.h + h) * g.w + w) * g.c + c];
        out[t] = v;
    }
}
} // namespace

extern "C" int spk_im2col_nhwc(spk_stream s, int dtype, void *out, const void *in, const spk_conv *g)
{
    cudaStream_t st = (cudaStream_t)s;
    int64_t n = g->n * g->oh * g->ow * g->kpad;
    if (n == 0)
        return 0;
    if (dtype == SPRUN_DTYPE_FLOAT16)
        spk::launch(k_im2col<__half>, spk::grid_for(n, 256), 256, 0, st, (__half *)out, (const __half *)in, *g, n);
    else if (dtype == SPRUN_DTYPE_FLOAT)
        spk::launch(k_im2col<float>, spk::grid_for(n, 256), 256, 0, st, (float *)out, (const float *)in, *g, n);
    else
        return SPK_E_UNSUPPORTED;
    return spk::ret();
}
