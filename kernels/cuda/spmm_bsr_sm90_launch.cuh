/*
 * spmm_bsr_sm90_launch.cuh - the grid the two sm_90 BSR kernels share
 * (spmm_bsr_sm90.cu over w->wg, spmm_bsr_tall_sm90.cu over w->tall): a CTA
 * per group of the layout x BN tokens. The launch: X's tensor map, the
 * shared-memory limit, split-K (plan_split: in the CTA cluster where it
 * fits, else through the workspace) and programmatic dependent launch. The
 * CTA's side: its pipeline's stages and its share of the group's chunks.
 */
#ifndef SPRUN_SPMM_BSR_SM90_LAUNCH_CUH
#define SPRUN_SPMM_BSR_SM90_LAUNCH_CUH

#include "kernels/cuda/pdl.cuh"
#include "kernels/cuda/sm90_common.cuh"
#include "kernels/cuda/spmm_bsr_sm90.h"

namespace spmm {

/* The shared memory of a kernel on a units layout, CPS CTAs per SM: as many
 * stages of STB bytes as fit (at most MAXST), then the stages' "full" and
 * "empty" barriers after the stages or after the CBYTES the output tile
 * takes once the main loop is done, whichever ends later */
template <int STB, int CBYTES, int CPS> struct UnitsPipe {
    using Smem = SmemPlan<CPS>;
    static constexpr int FIT = Smem::ROOM / STB;
    static constexpr int STAGES = FIT < Smem::MAXST ? FIT : Smem::MAXST;
    static constexpr int BARS = STAGES * STB > CBYTES ? STAGES * STB : CBYTES;
    static constexpr int SMEM = BARS + 2 * STAGES * 8 + 1024;
    static constexpr bool FITS = STAGES >= 2 && SMEM <= Smem::CAP;
};

/* This CTA's part of the grid: the group blockIdx.x names (longest groups
 * first, p.gorder), the pipeline over its share of the group's chunks
 * (split-K over gridDim.z, pipe_start), those chunks, and the first row of
 * W (m0) and of X (n0) of its output tile */
struct UnitsCta {
    PipeStart ps;
    const int4 *ch;
    int64_t m0, n0;
};
template <int STAGES, int BM, int BN>
__device__ __forceinline__ UnitsCta units_cta(const BsrWgParams &p, int bars, int nc) {
    const int grp = __ldg(p.gorder + blockIdx.x);
    const int cbase = __ldg(p.gptr + grp);
    UnitsCta c;
    c.ps = pipe_start<STAGES>(bars, __ldg(p.gptr + grp + 1) - cbase, 1, nc);
    c.ch = p.chunks + cbase + c.ps.j0;
    c.m0 = (int64_t)grp * BM;
    c.n0 = (int64_t)blockIdx.y * BN;
    return c;
}

/* Launches entry (KT's kernel) over layout u of w. KT gives BN, KS (k16
 * steps per chunk: X's box is KS * 16 columns, in the swizzle of that
 * width, bsr_wg_swizzle), NT, SMEM and CPS_. The caches are per
 * instantiation of KT. 0, or the error recorded in st. */
template <class KT>
static int launch_bsr_units(void (*entry)(CUtensorMap, BsrWgParams, Epi), const sp_cuda_bsr_units &u,
                            const sp_cuda_bsr *w, const sp_cuda_spmm_args *a, const Epi &e, sp_cuda_status *st) {
    const int64_t gx = u.ngroups;
    const int64_t gy = (a->n + KT::BN - 1) / KT::BN;
    if (gx <= 0 || gy <= 0) return 0;
    if (gy > 65535 || gx > INT32_MAX) return SP_CUDA_FAIL(st, SP_CUDA_E_UNSUPPORTED, "bsr spmm: n or m too large");
    CUtensorMap xmap;
    /* X: [n][k] fp16, rows ldx apart */
    const CUtensorMapSwizzle sw = KT::KS == 1   ? CU_TENSOR_MAP_SWIZZLE_32B
                                  : KT::KS == 2 ? CU_TENSOR_MAP_SWIZZLE_64B
                                                : CU_TENSOR_MAP_SWIZZLE_128B;
    if (const int rc = encode_f16_rows(&xmap, a->x, a->n, w->k, a->ldx, KT::KS * 16, KT::BN, sw, "bsr spmm", st))
        return rc;
    static int occ_cache[kDevSlots]; /* raises the limit to SMEM once */
    int occ = 0;
    const int orc = occupancy_once(entry, KT::NT, KT::SMEM, occ_cache, &occ, st);
    if (orc) return orc;
    Epi ek = e;
    ek.h_stage = 1;
    static int cl_cache[kDevSlots][9];
    const int z = plan_split(entry, KT::NT, KT::SMEM, cl_cache, gx * gy, u.max, sm_count() * KT::CPS_, 4, &ek);
    BsrWgParams p;
    p.blocks = (const uint4 *)u.blocks;
    p.chunks = (const int4 *)u.chunks;
    p.gptr = u.ptr;
    p.gorder = u.order;
    return (int)SP_CUDA_CHECK(st, pdl_launch_cluster(pdl_env_enabled(), ek.csplit ? (unsigned)z : 1u, entry,
                                                     dim3((unsigned)gx, (unsigned)gy, (unsigned)z), dim3(KT::NT),
                                                     KT::SMEM, (cudaStream_t)a->stream, xmap, p, ek));
}

} // namespace spmm

#endif
