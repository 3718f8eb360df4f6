/*
 * csr_tiles.cuh - expanding one 16 x 64 tile of the tiled CSR layouts
 * (spmm_csr.cu's header comment: the position layout "TB16x64" and the pair
 * layout "TP16x64") from shared memory into a warp's A registers, in the
 * A-fragment order of four m16n8k16 steps. The same registers feed the
 * mma.sync kernel (spmm_csr.cu) and, being also the fragment layout of a
 * warp's 16 rows in a wgmma with A in registers, the sm_90 one
 * (spmm_csr_sm90.cu). Internal: only those files include it.
 */
#ifndef SPRUN_CSR_TILES_CUH
#define SPRUN_CSR_TILES_CUH

#include "kernels/cuda/spmm_common.cuh"

namespace spmm {

/* The fp16 bits at shared address ad if `set` is nonzero (ad then moves to
 * the next value), else 0: a predicate, a predicated load and a predicated
 * add per position. (Indexing a generic pointer by a running count, as
 * before, compiled to about 9 instructions per position.) Volatile: the load
 * must stay after the barrier that published the stage. */
__device__ __forceinline__ uint32_t take16(uint32_t set, uint32_t &ad) {
    uint32_t v;
    asm volatile("{\n.reg .pred p;\n"
                 "setp.ne.u32 p, %2, 0;\n"
                 "mov.u32 %0, 0;\n"
                 "@p ld.shared.u16 %0, [%1];\n"
                 "@p add.u32 %1, %1, 2;\n}\n"
                 : "=r"(v), "+r"(ad)
                 : "r"(set));
    return v;
}
/* take16 for a pair of fp16 values (the pair layout's positions): the 32
 * bits at ad if `set`, else 0 */
__device__ __forceinline__ uint32_t take32(uint32_t set, uint32_t &ad) {
    uint32_t v;
    asm volatile("{\n.reg .pred p;\n"
                 "setp.ne.u32 p, %2, 0;\n"
                 "mov.u32 %0, 0;\n"
                 "@p ld.shared.u32 %0, [%1];\n"
                 "@p add.u32 %1, %1, 4;\n}\n"
                 : "=r"(v), "+r"(ad)
                 : "r"(set));
    return v;
}

/* exclusive prefix of cnt over the warp's lanes */
__device__ __forceinline__ int lane_excl_prefix(int cnt, int lane) {
    int incl = cnt;
#pragma unroll
    for (int d = 1; d < 32; d <<= 1) {
        const int o = __shfl_up_sync(0xffffffffu, incl, d);
        if (lane >= d) incl += o;
    }
    return incl - cnt;
}

/* The position layout: lane l's 32 positions from its bitmap word; each
 * byte's run starts popc(lower bytes) values in; four independent chains of
 * 32-bit shared addresses. a[kk][reg]: 16-column step kk, A register reg. */
__device__ __forceinline__ void expand_positions(const unsigned char *slot, uint32_t (&a)[4][4], int lane) {
    const uint32_t bits = reinterpret_cast<const uint32_t *>(slot)[lane];
    const uint32_t v0 = smem_u32(slot + 128) + 2u * (uint32_t)lane_excl_prefix(__popc(bits), lane);
    uint32_t ad[4] = {v0, v0 + 2u * __popc(bits & 0xffu), v0 + 2u * __popc(bits & 0xffffu),
                      v0 + 2u * __popc(bits & 0xffffffu)};
#pragma unroll
    for (int g = 0; g < 4; g++)
#pragma unroll
        for (int r = 0; r < 4; r++) {
            const uint32_t lo = take16(bits & (1u << (8 * g + 2 * r)), ad[g]);
            const uint32_t hi = take16(bits & (2u << (8 * g + 2 * r)), ad[g]);
            a[g][r] = lo | (hi << 16);
        }
}
/* The pair layout ("TP16x64"): lane l's bitmap is a 16-bit word whose bit
 * j = 4*kk + reg stands for its A register reg of 16-column step kk
 * (positions 2j and 2j + 1, two adjacent columns of one row); a pair with
 * either value nonzero is stored whole (both halves, 4 bytes). One
 * predicated 32-bit shared load per register instead of two 16-bit ones
 * and their merge. */
__device__ __forceinline__ void expand_pairs(const unsigned char *slot, uint32_t (&a)[4][4], int lane) {
    const uint32_t bits = reinterpret_cast<const uint16_t *>(slot)[lane];
    const uint32_t v0 = smem_u32(slot + 64) + 4u * (uint32_t)lane_excl_prefix(__popc(bits), lane);
    uint32_t ad[4] = {v0, v0 + 4u * __popc(bits & 0xfu), v0 + 4u * __popc(bits & 0xffu),
                      v0 + 4u * __popc(bits & 0xfffu)};
#pragma unroll
    for (int g = 0; g < 4; g++)
#pragma unroll
        for (int r = 0; r < 4; r++) a[g][r] = take32(bits & (1u << (4 * g + r)), ad[g]);
}
/* the tile at slot in the layout the weight was built with */
template <bool PAIR>
__device__ __forceinline__ void expand_tile(const unsigned char *slot, uint32_t (&a)[4][4], int lane) {
    if constexpr (PAIR) expand_pairs(slot, a, lane);
    else expand_positions(slot, a, lane);
}

} // namespace spmm

#endif
