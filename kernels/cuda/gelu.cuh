/*
 * gelu.cuh - GELU for the CUDA kernels (ONNX Gelu with approximate = "none":
 * 0.5 x (1 + erf(x / sqrt 2)), the function the CPU backend computes with
 * erff), shared by the elementwise kernels and the sparse kernels'
 * epilogues.
 *
 * erf by Abramowitz & Stegun 7.1.26, written for its complement:
 * q = erfc(z) ~ t P(t) exp(-z^2), t = 1 / (1 + 0.3275911 z), z = |x| / sqrt 2,
 * and GELU(x) = 0.5 x (2 - q) for x >= 0, 0.5 x q below: one exponential, one
 * reciprocal, five FMAs and no branch, against erff's polynomial branches.
 * The 2:4 kernel's bias + GELU epilogue runs after its main loop with nothing
 * to hide it (H100, BERT's 3072 x 768 weight at 4096 tokens: 44.9 us with
 * erff, 43.1 us with this, 35.8 us without the epilogue; most of what is
 * left is the tile's trip through shared memory and its stores, see
 * bench/results/spmm24-tiles-h100-2026-11-26.md). Against double precision
 * over [-12, 12] in steps
 * of 1e-4 (host check, libm expf): largest error 4.2e-7 absolute (erff's
 * form: 4.5e-7); below x = -5 the erfc form keeps its digits where
 * 1 + erff(x) cancels (x = -6: -5.94e-9 against -5.92e-9; erff's form 0).
 */
#ifndef SPRUN_GELU_CUH
#define SPRUN_GELU_CUH

__device__ __forceinline__ float sp_gelu(float x)
{
    const float z = fabsf(x) * 0.70710678118654752f;
    const float t = __fdividef(1.0f, fmaf(0.3275911f, z, 1.0f));
    float p = fmaf(1.061405429f, t, -1.453152027f);
    p = fmaf(p, t, 1.421413741f);
    p = fmaf(p, t, -0.284496736f);
    p = fmaf(p, t, 0.254829592f);
    const float q = p * t * __expf(-z * z);
    return 0.5f * x * (x >= 0.0f ? 2.0f - q : q);
}

#endif
