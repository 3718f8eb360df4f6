/*
 * gather.cu - Gather along one axis (embedding look-ups and the like).
 * Rows of `inner` elements are copied whole; a thread per element keeps
 * the copy coalesced for BERT's [vocab, 768] tables, and rows whose bytes
 * (and bases) come in 16 or 8 go as 16- or 8-byte elements (BERT-base's
 * word-embedding look-up at batch 32 took 29 us a 2-byte element at a time,
 * H100).
 */
#include "runtime/cuda/kernel_common.cuh"

namespace {

template <typename E, typename I>
__global__ void k_gather(E *__restrict__ out, const E *__restrict__ data, const I *__restrict__ idx, int64_t outer,
                         int64_t axis_dim, int64_t inner, int64_t n_idx)
{
    spk::pdl_begin();
    int64_t n = outer * n_idx * inner;
    SPK_GRID_STRIDE(t, n)
    {
        int64_t r = t % inner, q = t / inner;
        int64_t i = q % n_idx, o = q / n_idx;
        int64_t j = (int64_t)idx[i];
        if (j < 0)
            j += axis_dim;
        j = j < 0 ? 0 : (j >= axis_dim ? axis_dim - 1 : j);
        out[t] = data[(o * axis_dim + j) * inner + r];
    }
}

template <typename E>
int launch(void *out, const void *data, const void *idx, int idt, int64_t outer, int64_t ad, int64_t inner,
           int64_t ni, cudaStream_t st)
{
    int64_t n = outer * ni * inner;
    if (n == 0)
        return 0;
    if (idt == SPRUN_DTYPE_INT64)
        spk::launch(k_gather<E, int64_t>, spk::grid_for(n, 256), 256, 0, st, (E *)out, (const E *)data,
                                                                     (const int64_t *)idx, outer, ad, inner, ni);
    else if (idt == SPRUN_DTYPE_INT32)
        spk::launch(k_gather<E, int32_t>, spk::grid_for(n, 256), 256, 0, st, (E *)out, (const E *)data,
                                                                     (const int32_t *)idx, outer, ad, inner, ni);
    else
        return SPK_E_UNSUPPORTED;
    return spk::ret();
}

} // namespace

extern "C" int spk_gather(spk_stream s, void *out, const void *data, int es, const void *idx, int idt, int64_t outer,
                          int64_t ad, int64_t inner, int64_t ni)
{
    cudaStream_t st = (cudaStream_t)s;
    const uintptr_t al = (uintptr_t)out | (uintptr_t)data;
    if ((inner * es) % 16 == 0 && al % 16 == 0)
        return launch<uint4>(out, data, idx, idt, outer, ad, inner * es / 16, ni, st);
    if ((inner * es) % 8 == 0 && al % 8 == 0)
        return launch<uint2>(out, data, idx, idt, outer, ad, inner * es / 8, ni, st);
    switch (es) {
    case 1: return launch<uint8_t>(out, data, idx, idt, outer, ad, inner, ni, st);
    case 2: return launch<uint16_t>(out, data, idx, idt, outer, ad, inner, ni, st);
    case 4: return launch<uint32_t>(out, data, idx, idt, outer, ad, inner, ni, st);
    case 8: return launch<uint64_t>(out, data, idx, idt, outer, ad, inner, ni, st);
    default: return SPK_E_UNSUPPORTED;
    }
}
