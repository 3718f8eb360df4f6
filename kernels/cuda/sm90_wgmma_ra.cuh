/*
 * sm90_wgmma_ra.cuh - Hopper warpgroup MMAs with A in registers
 * (wgmma.mma_async m64nNk16, fp16 in, fp32 accumulate, B K-major in shared
 * memory through a matrix descriptor) and the plain bulk copy that feeds
 * them, for the kernels whose A operand a warp builds itself: the tiled
 * CSR kernel (spmm_csr_sm90.cu: W's tiles expanded into registers) and the
 * BSR kernel (spmm_bsr_sm90.cu: X's fragments loaded with ldmatrix).
 * A warp w of the warpgroup supplies rows 16w .. 16w + 15 of A in the
 * m16n8k16 A-fragment layout of mma.sync.
 */
#ifndef SPRUN_SM90_WGMMA_RA_CUH
#define SPRUN_SM90_WGMMA_RA_CUH

#include "kernels/cuda/sm90_common.cuh"

namespace spmm {

#ifdef SP_WGMMA_OK
/* D[64 x 16] += A(64 x 16, registers) * B(16 x 16, shared, K-major) */
__device__ __forceinline__ void wgmma_ra_m64n16k16(float (&d)[8], const uint32_t (&a)[4], uint64_t bdesc) {
    asm volatile(
        "{\n.reg .pred p;\nsetp.ne.b32 p, 1, 0;\n"
        "wgmma.mma_async.sync.aligned.m64n16k16.f32.f16.f16 "
        "{%0, %1, %2, %3, %4, %5, %6, %7}, "
        "{%8, %9, %10, %11}, %12, p, 1, 1, 0;\n}\n"
        : SP_ACC8(0)
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(bdesc));
}

/* D[64 x 32] += A(64 x 16, registers) * B(16 x 32, shared, K-major) */
__device__ __forceinline__ void wgmma_ra_m64n32k16(float (&d)[16], const uint32_t (&a)[4], uint64_t bdesc) {
    asm volatile(
        "{\n.reg .pred p;\nsetp.ne.b32 p, 1, 0;\n"
        "wgmma.mma_async.sync.aligned.m64n32k16.f32.f16.f16 "
        "{%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15}, "
        "{%16, %17, %18, %19}, %20, p, 1, 1, 0;\n}\n"
        : SP_ACC16(0)
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(bdesc));
}

/* D[64 x 64] += A(64 x 16, registers) * B(16 x 64, shared, K-major) */
__device__ __forceinline__ void wgmma_ra_m64n64k16(float (&d)[32], const uint32_t (&a)[4], uint64_t bdesc) {
    asm volatile(
        "{\n.reg .pred p;\nsetp.ne.b32 p, 1, 0;\n"
        "wgmma.mma_async.sync.aligned.m64n64k16.f32.f16.f16 "
        "{%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, %16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31}, "
        "{%32, %33, %34, %35}, %36, p, 1, 1, 0;\n}\n"
        : SP_ACC32(0)
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(bdesc));
}

/* D[64 x 128] += A(64 x 16, registers) * B(16 x 128, shared, K-major) */
__device__ __forceinline__ void wgmma_ra_m64n128k16(float (&d)[64], const uint32_t (&a)[4], uint64_t bdesc) {
    asm volatile(
        "{\n.reg .pred p;\nsetp.ne.b32 p, 1, 0;\n"
        "wgmma.mma_async.sync.aligned.m64n128k16.f32.f16.f16 "
        "{%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, %16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31, %32, %33, %34, %35, %36, %37, %38, %39, %40, %41, %42, %43, %44, %45, %46, %47, %48, %49, %50, %51, %52, %53, %54, %55, %56, %57, %58, %59, %60, %61, %62, %63}, "
        "{%64, %65, %66, %67}, %68, p, 1, 1, 0;\n}\n"
        : SP_ACC64(0)
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(bdesc));
}

/* D[64 x 256] += A(64 x 16, registers) * B(16 x 256, shared, K-major) */
__device__ __forceinline__ void wgmma_ra_m64n256k16(float (&d)[128], const uint32_t (&a)[4], uint64_t bdesc) {
    asm volatile(
        "{\n.reg .pred p;\nsetp.ne.b32 p, 1, 0;\n"
        "wgmma.mma_async.sync.aligned.m64n256k16.f32.f16.f16 "
        "{%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, %16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31, %32, %33, %34, %35, %36, %37, %38, %39, %40, %41, %42, %43, %44, %45, %46, %47, %48, %49, %50, %51, %52, %53, %54, %55, %56, %57, %58, %59, %60, %61, %62, %63, %64, %65, %66, %67, %68, %69, %70, %71, %72, %73, %74, %75, %76, %77, %78, %79, %80, %81, %82, %83, %84, %85, %86, %87, %88, %89, %90, %91, %92, %93, %94, %95, %96, %97, %98, %99, %100, %101, %102, %103, %104, %105, %106, %107, %108, %109, %110, %111, %112, %113, %114, %115, %116, %117, %118, %119, %120, %121, %122, %123, %124, %125, %126, %127}, "
        "{%128, %129, %130, %131}, %132, p, 1, 1, 0;\n}\n"
        : SP_ACC128
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(bdesc));
}

template <int BN>
__device__ __forceinline__ void wgmma_ra(float (&d)[BN / 2], const uint32_t (&a)[4], uint64_t b) {
    if constexpr (BN == 16) wgmma_ra_m64n16k16(d, a, b);
    else if constexpr (BN == 32) wgmma_ra_m64n32k16(d, a, b);
    else if constexpr (BN == 64) wgmma_ra_m64n64k16(d, a, b);
    else if constexpr (BN == 128) wgmma_ra_m64n128k16(d, a, b);
    else wgmma_ra_m64n256k16(d, a, b);
}

/* bytes (a multiple of 16) from global src to shared dst, completing on mbarrier bar */
__device__ __forceinline__ void bulk_load(uint32_t dst, const void *src, uint32_t bytes, uint32_t bar) {
    asm volatile("cp.async.bulk.shared::cluster.global.mbarrier::complete_tx::bytes [%0], [%1], %2, [%3];\n" ::"r"(
                     dst),
                 "l"(src), "r"(bytes), "r"(bar)
                 : "memory");
}
#endif

} // namespace spmm

#endif
