/* options.c - sprun_options: load-time settings copied into each model. */
#include "runtime/model.h"
#include "runtime/error.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifndef SPRUN_VERSION_STRING
#define SPRUN_VERSION_STRING "0.0.0"
#endif

const char *sprun_version(void) { return SPRUN_VERSION_STRING; }

static int bad(const char *what)
{
    sp_err e;
    sp_err_set(&e, SPRUN_ERR_INVALID_ARGUMENT, "%s", what);
    return sp_err_publish(&e);
}

sprun_code sprun_options_create(sprun_options **out)
{
    if (!out)
        return bad("sprun_options_create: out is NULL");
    sprun_options *o = calloc(1, sizeof *o);
    if (!o) {
        *out = NULL;
        sp_err e;
        sp_err_set(&e, SPRUN_ERR_OUT_OF_MEMORY, "sprun_options_create: out of memory");
        return sp_err_publish(&e);
    }
    o->backend = SPRUN_BACKEND_AUTO;
    o->precision = SPRUN_PRECISION_DEFAULT;
    o->format = SPRUN_FORMAT_AUTO;
    o->optimize = 1;
    *out = o;
    return SPRUN_OK;
}

void sprun_options_destroy(sprun_options *opt) { free(opt); }

sprun_code sprun_options_set_backend(sprun_options *o, sprun_backend b)
{
    if (!o || (b != SPRUN_BACKEND_AUTO && b != SPRUN_BACKEND_CPU && b != SPRUN_BACKEND_CUDA))
        return bad("sprun_options_set_backend: NULL options or unknown backend");
    o->backend = b;
    return SPRUN_OK;
}

sprun_code sprun_options_set_precision(sprun_options *o, sprun_precision p)
{
    if (!o || (p != SPRUN_PRECISION_DEFAULT && p != SPRUN_PRECISION_FP32 && p != SPRUN_PRECISION_FP16))
        return bad("sprun_options_set_precision: NULL options or unknown precision");
    o->precision = p;
    return SPRUN_OK;
}

sprun_code sprun_options_set_device(sprun_options *o, int32_t id)
{
    if (!o || id < 0)
        return bad("sprun_options_set_device: NULL options or negative device id");
    o->device_id = id;
    return SPRUN_OK;
}

sprun_code sprun_options_set_threads(sprun_options *o, int32_t t)
{
    if (!o || t < 0)
        return bad("sprun_options_set_threads: NULL options or negative thread count");
    o->threads = t;
    return SPRUN_OK;
}

sprun_code sprun_options_set_format(sprun_options *o, sprun_format f)
{
    if (!o || f < SPRUN_FORMAT_AUTO || f > SPRUN_FORMAT_24)
        return bad("sprun_options_set_format: NULL options or unknown format");
    o->format = f;
    return SPRUN_OK;
}

sprun_code sprun_options_set_optimize(sprun_options *o, int32_t enabled)
{
    if (!o)
        return bad("sprun_options_set_optimize: NULL options");
    o->optimize = enabled != 0;
    return SPRUN_OK;
}

sprun_code sprun_options_set_tuning(sprun_options *o, const char *cache_path)
{
    if (!o)
        return bad("sprun_options_set_tuning: NULL options");
    if (cache_path && strlen(cache_path) >= sizeof o->tune_path)
        return bad("sprun_options_set_tuning: cache path too long");
    snprintf(o->tune_path, sizeof o->tune_path, "%s", cache_path ? cache_path : "");
    return SPRUN_OK;
}

sprun_code sprun_options_set_calibration(sprun_options *o, const char *path)
{
    if (!o)
        return bad("sprun_options_set_calibration: NULL options");
    if (path && strlen(path) >= sizeof o->calibration_path)
        return bad("sprun_options_set_calibration: path too long");
    snprintf(o->calibration_path, sizeof o->calibration_path, "%s", path ? path : "");
    return SPRUN_OK;
}
