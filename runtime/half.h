/*
 * half.h - IEEE 754 binary16 <-> binary32 conversion on the host.
 *
 * Portable C (no F16C, no _Float16) so it builds everywhere the runtime does
 * and gives bit-identical results on every host: packed fp16 weights must be
 * byte-identical whatever machine packed them (sparse_format.h).
 *
 *   sp_f32_to_f16: round to nearest, ties to even (what the GPU's cvt.rn
 *                  does), overflow to +-inf, gradual underflow to half
 *                  subnormals, NaN stays NaN (quiet, sign and top payload
 *                  bits kept).
 *   sp_f16_to_f32: exact (every half is representable as a float).
 *
 * Both are pure functions: thread-safe, no state, no allocation.
 */
#ifndef SPRUN_HALF_H
#define SPRUN_HALF_H

#include <stdint.h>
#include <string.h>

static inline uint16_t sp_f32_to_f16(float f)
{
    uint32_t x;
    memcpy(&x, &f, sizeof x); /* memcpy, not a union or cast: no aliasing UB */
    const uint32_t sign = (x >> 16) & 0x8000u;
    const uint32_t ax = x & 0x7fffffffu;

    if (ax >= 0x7f800000u) { /* inf or NaN */
        if (ax == 0x7f800000u)
            return (uint16_t)(sign | 0x7c00u);
        /* Quiet NaN; keep the top mantissa bits so payloads survive a
         * round trip where they fit. 0x200 guarantees a nonzero mantissa. */
        return (uint16_t)(sign | 0x7e00u | ((ax >> 13) & 0x3ffu));
    }
    /* 65520 = 65504 + half an ulp: ties to even round up to 2^16 = inf. */
    if (ax >= 0x477ff000u)
        return (uint16_t)(sign | 0x7c00u);
    if (ax >= 0x38800000u) { /* >= 2^-14: normal half */
        /* Adding 0xfff plus the lowest kept bit rounds the 13 dropped bits to
         * nearest-even; a carry into the exponent is the correct result. */
        uint32_t r = ax + 0xfffu + ((ax >> 13) & 1u);
        r -= (uint32_t)(127 - 15) << 23; /* rebias the exponent */
        return (uint16_t)(sign | (r >> 13));
    }
    if (ax < 0x33000000u) /* <= 2^-25 (half the smallest subnormal): to +-0 */
        return (uint16_t)sign;
    /* Subnormal half: value = mant * 2^-24 with mant < 1024. The float is
     * (1.m) * 2^(e-127), i.e. full * 2^(e-150); shift = 126 - e >= 14. */
    {
        const uint32_t e = ax >> 23;
        const uint32_t full = (ax & 0x7fffffu) | 0x800000u;
        const uint32_t shift = 126u - e; /* 14 .. 24 */
        uint32_t h = full >> shift;
        const uint32_t rem = full & ((1u << shift) - 1u);
        const uint32_t halfway = 1u << (shift - 1u);
        if (rem > halfway || (rem == halfway && (h & 1u)))
            h++; /* may carry into 0x400 = the smallest normal: still right */
        return (uint16_t)(sign | h);
    }
}

static inline float sp_f16_to_f32(uint16_t h)
{
    const uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
    const uint32_t exp = (h >> 10) & 0x1fu;
    const uint32_t mant = h & 0x3ffu;
    uint32_t bits;
    float f;

    if (exp == 0) {
        /* Zero or subnormal: mant * 2^-24, exact in float arithmetic. */
        f = (float)mant * 5.9604644775390625e-08f;
        return sign ? -f : f;
    }
    if (exp == 31)
        bits = sign | 0x7f800000u | (mant << 13); /* inf, or NaN with payload */
    else
        bits = sign | ((exp + (127 - 15)) << 23) | (mant << 13);
    memcpy(&f, &bits, sizeof f);
    return f;
}

#endif
