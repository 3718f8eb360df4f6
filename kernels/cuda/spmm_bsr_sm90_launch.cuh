/*
 * spmm_bsr_sm90_launch.cuh - the launch the two sm_90 BSR kernels share
 * (spmm_bsr_sm90.cu over w->wg, spmm_bsr_tall_sm90.cu over w->tall): a CTA
 * per group of the layout x BN tokens, X's tensor map, the shared-memory
 * limit, split-K (plan_split: in the CTA cluster where it fits, else
 * through the workspace) and the launch with programmatic dependent launch.
 */
#ifndef SPRUN_SPMM_BSR_SM90_LAUNCH_CUH
#define SPRUN_SPMM_BSR_SM90_LAUNCH_CUH

#include "kernels/cuda/pdl.cuh"
#include "kernels/cuda/sm90_common.cuh"
#include "kernels/cuda/spmm_bsr_sm90.h"

namespace spmm {

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
