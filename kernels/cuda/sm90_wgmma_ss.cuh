/*
 * sm90_wgmma_ss.cuh - Hopper warpgroup MMAs with both operands in shared
 * memory (wgmma.mma_async m64nNk16, fp16 in, fp32 accumulate, A and B
 * K-major through matrix descriptors), for the kernels whose weight tile is
 * wgmma's A operand as stored: the dense sm_90 GEMM (gemm_sm90.cu) and the
 * BSR kernel on 64-row units (spmm_bsr_tall_sm90.cu); and the descriptor
 * of a K-major tile whose rows are 16, 32 or 64 fp16 wide.
 */
#ifndef SPRUN_SM90_WGMMA_SS_CUH
#define SPRUN_SM90_WGMMA_SS_CUH

#include "kernels/cuda/sm90_common.cuh"

namespace spmm {

#ifdef SP_WGMMA_OK
/* D[64 x 64] += A(64 x 16, shared) * B(16 x 64, shared), both K-major */
__device__ __forceinline__ void wgmma_m64n64k16(float (&d)[32], uint64_t adesc, uint64_t bdesc) {
    asm volatile(
        "{\n.reg .pred p;\nsetp.ne.b32 p, 1, 0;\n"
        "wgmma.mma_async.sync.aligned.m64n64k16.f32.f16.f16 "
        "{%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, %16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31}, "
        "%32, %33, p, 1, 1, 0, 0;\n}\n"
        : SP_ACC32(0)
        : "l"(adesc), "l"(bdesc));
}

/* D[64 x 128] += A(64 x 16, shared) * B(16 x 128, shared), both K-major */
__device__ __forceinline__ void wgmma_m64n128k16(float (&d)[64], uint64_t adesc, uint64_t bdesc) {
    asm volatile(
        "{\n.reg .pred p;\nsetp.ne.b32 p, 1, 0;\n"
        "wgmma.mma_async.sync.aligned.m64n128k16.f32.f16.f16 "
        "{%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, %16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31, %32, %33, %34, %35, %36, %37, %38, %39, %40, %41, %42, %43, %44, %45, %46, %47, %48, %49, %50, %51, %52, %53, %54, %55, %56, %57, %58, %59, %60, %61, %62, %63}, "
        "%64, %65, p, 1, 1, 0, 0;\n}\n"
        : SP_ACC64(0)
        : "l"(adesc), "l"(bdesc));
}

/* D[64 x 256] += A(64 x 16, shared) * B(16 x 256, shared), both K-major */
__device__ __forceinline__ void wgmma_m64n256k16(float (&d)[128], uint64_t adesc, uint64_t bdesc) {
    asm volatile(
        "{\n.reg .pred p;\nsetp.ne.b32 p, 1, 0;\n"
        "wgmma.mma_async.sync.aligned.m64n256k16.f32.f16.f16 "
        "{%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, %16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31, %32, %33, %34, %35, %36, %37, %38, %39, %40, %41, %42, %43, %44, %45, %46, %47, %48, %49, %50, %51, %52, %53, %54, %55, %56, %57, %58, %59, %60, %61, %62, %63, %64, %65, %66, %67, %68, %69, %70, %71, %72, %73, %74, %75, %76, %77, %78, %79, %80, %81, %82, %83, %84, %85, %86, %87, %88, %89, %90, %91, %92, %93, %94, %95, %96, %97, %98, %99, %100, %101, %102, %103, %104, %105, %106, %107, %108, %109, %110, %111, %112, %113, %114, %115, %116, %117, %118, %119, %120, %121, %122, %123, %124, %125, %126, %127}, "
        "%128, %129, p, 1, 1, 0, 0;\n}\n"
        : SP_ACC128
        : "l"(adesc), "l"(bdesc));
}

template <int BN>
__device__ __forceinline__ void wgmma_ss(float (&d)[BN / 2], uint64_t a, uint64_t b) {
    if constexpr (BN == 64) wgmma_m64n64k16(d, a, b);
    else if constexpr (BN == 128) wgmma_m64n128k16(d, a, b);
    else wgmma_m64n256k16(d, a, b);
}

/* smem matrix descriptor of a K-major tile of W fp16 columns (W = 16, 32
 * or 64), rows 2 * W bytes apart in the swizzle of that width (8-row
 * groups 16 * W bytes apart), as TMA writes it and bsr_wg_swizzle
 * (spmm_bsr_sm90.h) describes it; the tile aligned to 1024 bytes */
template <int W> __device__ __forceinline__ uint64_t desc_kmajor(uint32_t saddr) {
    uint64_t d = (uint64_t)((saddr & 0x3FFFF) >> 4);
    d |= (uint64_t)1 << 16; /* leading byte offset: unused with swizzle */
    d |= (uint64_t)((16 * W) >> 4) << 32;
    d |= (uint64_t)(W == 64 ? 1 : W == 32 ? 2 : 3) << 62; /* 128-, 64-, 32-byte swizzle */
    return d;
}
#endif

} // namespace spmm

#endif
