/*
 * fuzz_inputs.c - libFuzzer target over the input parsers the CLI feeds
 * untrusted files to: sprun_npy_parse (tools/npy.c) and
 * sp_onnx_tensor_from_buffer (ONNX TensorProto .pb files).
 *
 * Both get the same bytes. Whatever they accept must be self-consistent
 * (nbytes = product of dims x element size, data inside the buffer for .npy),
 * and every byte they hand out is read so that ASan sees a short buffer;
 * whatever they reject must come with a message.
 *
 * The body is sp_fuzz_inputs_one(); tests/unit/test_fuzz_regressions.c
 * includes this file with SP_FUZZ_NO_ENTRY defined to replay crashers.
 */
#include "loaders/onnx_tensor.h"
#include "sprun.h"
#include "tools/npy.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void fuzz_fail(const char *what)
{
    fprintf(stderr, "fuzz_inputs: %s\n", what);
    abort();
}

/* numel of dims[0..rank) or UINT64_MAX when it overflows or a dim is < 0;
 * a zero dim makes any shape empty, however large the others. */
static uint64_t checked_numel(int rank, const int64_t *dims)
{
    uint64_t n = 1;
    for (int d = 0; d < rank; d++) {
        if (dims[d] < 0)
            return UINT64_MAX;
        if (dims[d] == 0)
            return 0;
    }
    for (int d = 0; d < rank; d++) {
        if (dims[d] && n > UINT64_MAX / (uint64_t)dims[d])
            return UINT64_MAX;
        n *= (uint64_t)dims[d];
    }
    return n;
}

static unsigned char read_all(const void *p, size_t n)
{
    unsigned char x = 0;
    for (size_t i = 0; i < n; i++)
        x ^= ((const unsigned char *)p)[i];
    return x;
}

int sp_fuzz_inputs_one(const uint8_t *data, size_t size);
int sp_fuzz_inputs_one(const uint8_t *data, size_t size)
{
    volatile unsigned char sink = 0;

    sprun_tensor t;
    char err[256];
    memset(err, 0x7f, sizeof err);
    if (sprun_npy_parse(data, size, &t, err, sizeof err) == 0) {
        if (t.rank < 0 || t.rank > SPRUN_MAX_RANK)
            fuzz_fail("npy: rank out of range");
        uint64_t numel = checked_numel(t.rank, t.dims);
        size_t es = sprun_dtype_size(t.dtype);
        if (!es || numel == UINT64_MAX || numel * es != t.nbytes)
            fuzz_fail("npy: nbytes does not match dims x dtype");
        const uint8_t *p = t.data;
        if (t.nbytes && (p < data || p > data + size || t.nbytes > (size_t)(data + size - p)))
            fuzz_fail("npy: data outside the buffer");
        sink ^= read_all(t.data, t.nbytes);
    } else if (!memchr(err, '\0', sizeof err) || err[0] == '\0') {
        fuzz_fail("npy: rejected without a terminated message");
    }

    sp_value v;
    sp_err e;
    memset(&e, 0, sizeof e);
    if (sp_onnx_tensor_from_buffer(data, size, &v, &e) == SPRUN_OK) {
        if (v.kind != SP_VAL_CONST || !v.data || !v.owns_data)
            fuzz_fail("pb: not an owned constant");
        if (v.shape.rank < 0 || v.shape.rank > SPRUN_MAX_RANK)
            fuzz_fail("pb: rank out of range");
        uint64_t numel = checked_numel(v.shape.rank, v.shape.d);
        size_t es = sprun_dtype_size(v.dtype);
        if (!es || numel == UINT64_MAX || numel * es != v.nbytes)
            fuzz_fail("pb: nbytes does not match dims x dtype");
        sink ^= read_all(v.data, v.nbytes);
        if (v.name)
            sink ^= (unsigned char)strlen(v.name);
    } else {
        if (e.code == SPRUN_OK || e.msg[0] == '\0')
            fuzz_fail("pb: rejected without a code and message");
        if (v.data || v.name)
            fuzz_fail("pb: *out not zeroed on failure");
    }
    sp_onnx_tensor_release(&v);
    (void)sink;
    return 0;
}

#ifndef SP_FUZZ_NO_ENTRY
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) { return sp_fuzz_inputs_one(data, size); }
#endif
