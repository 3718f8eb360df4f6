/* compare.h - `sprun --compare`: dense vs sparse plan of one model. */
#ifndef SPRUN_TOOLS_COMPARE_H
#define SPRUN_TOOLS_COMPARE_H

#include "sprun.h"

typedef struct compare_opts {
    sprun_backend backend;
    sprun_precision precision;
    sprun_format format; /* of the sparse plan (AUTO: cost model) */
    int threads, runs, warmup;
    double tolerance;    /* max rel-L2 between the plans' outputs */
    const char *json_path;
    const char *tune_path; /* tuning cache for the sparse plan, or NULL */
    const char *calibration_path; /* cost-model table, or NULL */
} compare_opts;

/* Loads model_path twice (dense, and with o->format), runs both on inputs,
 * prints agreement, latency and the per-layer table. Returns a CLI exit
 * code: 0 ok, 2 load failed, 4 run failed or outputs disagree. */
int sprun_cli_compare(const char *model_path, const sprun_tensor *inputs, size_t n_inputs, const compare_opts *o);

#endif
