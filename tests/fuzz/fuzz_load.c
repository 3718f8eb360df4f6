/*
 * fuzz_load.c - libFuzzer target over sprun_model_load_buffer and, when the
 * bytes load, one run of the model on deterministic inputs.
 *
 * Inputs get the declared shapes with every symbolic or unknown dim set to 1
 * (an input of unknown rank becomes a scalar). Their contents are small
 * values (0, 1, 2 for integer types: valid indices and shapes more often
 * than not). Models whose inputs would exceed SP_FUZZ_MAX_INPUT_BYTES are
 * loaded but not run, to keep one execution in the millisecond range.
 *
 * Anything is allowed to fail with an error status; nothing may crash, leak,
 * trip a sanitizer, or return an error without a message.
 *
 * The body is sp_fuzz_load_one(); tests/unit/test_fuzz_regressions.c
 * includes this file with SP_FUZZ_NO_ENTRY defined (no libFuzzer there) to
 * replay every saved crasher in the normal build.
 */
#include "sprun.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SP_FUZZ_MAX_INPUTS 16
#define SP_FUZZ_MAX_INPUT_BYTES (1u << 20)

/* A failing call must say why: an empty message is a bug too. */
static void check_message(sprun_code rc, const char *what)
{
    if (rc != SPRUN_OK && sprun_last_error()[0] == '\0') {
        fprintf(stderr, "fuzz_load: %s returned %s with an empty message\n", what, sprun_code_name(rc));
        abort();
    }
}

static void fill(void *data, size_t nbytes, sprun_dtype dtype)
{
    size_t es = sprun_dtype_size(dtype), n = es ? nbytes / es : 0;
    for (size_t i = 0; i < n; i++) {
        int v = (int)(i % 3); /* 0, 1, 2 */
        switch (dtype) {
        case SPRUN_DTYPE_FLOAT: ((float *)data)[i] = (float)v * 0.5f - 0.25f; break;
        case SPRUN_DTYPE_DOUBLE: ((double *)data)[i] = (double)v * 0.5 - 0.25; break;
        case SPRUN_DTYPE_FLOAT16: ((uint16_t *)data)[i] = (uint16_t)(0x3800 + v * 0x400); break; /* .5, 1, 2 */
        case SPRUN_DTYPE_BFLOAT16: ((uint16_t *)data)[i] = (uint16_t)(0x3f00 + v * 0x80); break;
        case SPRUN_DTYPE_BOOL: ((uint8_t *)data)[i] = (uint8_t)(v & 1); break;
        case SPRUN_DTYPE_INT64:
        case SPRUN_DTYPE_UINT64: ((int64_t *)data)[i] = v; break;
        case SPRUN_DTYPE_INT32:
        case SPRUN_DTYPE_UINT32: ((int32_t *)data)[i] = v; break;
        case SPRUN_DTYPE_INT16:
        case SPRUN_DTYPE_UINT16: ((int16_t *)data)[i] = (int16_t)v; break;
        default: ((uint8_t *)data)[i] = (uint8_t)v; break;
        }
    }
}

static void run_once(const sprun_model *m)
{
    size_t n_in = sprun_model_input_count(m);
    if (n_in > SP_FUZZ_MAX_INPUTS)
        return;
    sprun_tensor in[SP_FUZZ_MAX_INPUTS];
    void *bufs[SP_FUZZ_MAX_INPUTS] = {0};
    size_t total = 0;
    int runnable = 1;
    memset(in, 0, sizeof in);
    for (size_t i = 0; i < n_in; i++) {
        sprun_tensor_info info;
        if (sprun_model_input_info(m, i, &info) != SPRUN_OK) {
            fprintf(stderr, "fuzz_load: input_info(%zu) failed on a loaded model: %s\n", i, sprun_last_error());
            abort();
        }
        in[i].name = info.name;
        in[i].dtype = info.dtype;
        in[i].rank = info.rank < 0 ? 0 : info.rank;
        uint64_t numel = 1;
        for (int d = 0; d < in[i].rank; d++) {
            in[i].dims[d] = info.dims[d] < 0 ? 1 : info.dims[d];
            if (in[i].dims[d] > (int64_t)SP_FUZZ_MAX_INPUT_BYTES)
                runnable = 0;
            else
                numel *= (uint64_t)in[i].dims[d];
            if (numel > SP_FUZZ_MAX_INPUT_BYTES)
                runnable = 0;
        }
        size_t es = sprun_dtype_size(info.dtype);
        if (!runnable || !es || numel * es > SP_FUZZ_MAX_INPUT_BYTES || total + numel * es > SP_FUZZ_MAX_INPUT_BYTES) {
            runnable = 0;
            break;
        }
        in[i].nbytes = (size_t)numel * es;
        total += in[i].nbytes;
        bufs[i] = malloc(in[i].nbytes ? in[i].nbytes : 1);
        if (!bufs[i]) {
            runnable = 0;
            break;
        }
        in[i].data = bufs[i];
        fill(bufs[i], in[i].nbytes, info.dtype);
    }
    if (runnable) {
        sprun_session *s = NULL;
        sprun_code rc = sprun_session_create(m, &s);
        check_message(rc, "sprun_session_create");
        if (rc == SPRUN_OK) {
            rc = sprun_session_run(s, in, n_in);
            check_message(rc, "sprun_session_run");
            if (rc == SPRUN_OK) {
                /* Read every output byte so ASan sees a short buffer. */
                volatile unsigned char sink = 0;
                for (size_t o = 0; o < sprun_model_output_count(m); o++) {
                    sprun_tensor out;
                    if (sprun_session_output(s, o, &out) != SPRUN_OK) {
                        fprintf(stderr, "fuzz_load: output %zu missing after a successful run: %s\n", o,
                                sprun_last_error());
                        abort();
                    }
                    for (size_t b = 0; b < out.nbytes; b++)
                        sink ^= ((const unsigned char *)out.data)[b];
                }
                /* Second run: the cached plan must give the same bytes. */
                rc = sprun_session_run(s, in, n_in);
                check_message(rc, "sprun_session_run (cached plan)");
                (void)sink;
            }
        }
        sprun_session_destroy(s);
    }
    for (size_t i = 0; i < n_in; i++)
        free(bufs[i]);
}

int sp_fuzz_load_one(const uint8_t *data, size_t size);
int sp_fuzz_load_one(const uint8_t *data, size_t size)
{
    static sprun_options *opt;
    if (!opt) {
        if (sprun_options_create(&opt) != SPRUN_OK)
            abort();
        sprun_options_set_backend(opt, SPRUN_BACKEND_CPU);
        sprun_options_set_threads(opt, 1);
    }
    sprun_model *m = NULL;
    sprun_code rc = sprun_model_load_buffer(data, size, opt, &m);
    check_message(rc, "sprun_model_load_buffer");
    if (rc != SPRUN_OK) {
        if (m) {
            fprintf(stderr, "fuzz_load: load failed but returned a model\n");
            abort();
        }
        return 0;
    }
    /* The static queries must hold on anything that loaded. */
    char desc[256];
    for (size_t i = 0; i < sprun_model_node_count(m); i++)
        if (sprun_model_node_describe(m, i, desc, sizeof desc) != SPRUN_OK)
            abort();
    for (size_t i = 0; i < sprun_model_weight_count(m); i++) {
        sprun_weight_info w;
        if (sprun_model_weight_info(m, i, &w) != SPRUN_OK)
            abort();
    }
    for (size_t i = 0; i < sprun_model_output_count(m); i++) {
        sprun_tensor_info info;
        if (sprun_model_output_info(m, i, &info) != SPRUN_OK)
            abort();
    }
    run_once(m);
    sprun_model_destroy(m);
    return 0;
}

#ifndef SP_FUZZ_NO_ENTRY
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) { return sp_fuzz_load_one(data, size); }
#endif
