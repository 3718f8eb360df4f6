/*
 * tune_cache.h - measured kernel choices, kept in a text file across loads.
 *
 * With tuning on (sprun_options_set_tuning / `sprun --tune FILE`), a backend
 * times every candidate kernel of a sparse-capable layer the first time it
 * plans that layer, keeps the fastest, and records the decision here under a
 * key naming the device, the GEMM shape and the weight's sparsity. Later
 * loads with the same file reuse the decision without timing. One line per
 * decision: "key<TAB>choice<TAB>free text (the times measured)".
 *
 * Thread safety: one cache belongs to a model; sessions of that model may
 * plan on several threads, so every call takes the cache's mutex.
 */
#ifndef SPRUN_TUNE_CACHE_H
#define SPRUN_TUNE_CACHE_H

#include <stddef.h>

typedef struct sp_tune_cache sp_tune_cache;

/* Opens (reading what exists) the cache at path; the file is created on the
 * first put. NULL on out-of-memory. */
sp_tune_cache *sp_tune_cache_open(const char *path);
void sp_tune_cache_close(sp_tune_cache *c);

/* Copies the choice recorded for key into choice (NUL-terminated); returns
 * 1 if found, 0 if not. */
int sp_tune_cache_get(sp_tune_cache *c, const char *key, char *choice, size_t len);

/* Records a decision in memory and appends it to the file. Returns 0, or -1
 * if the file could not be written (the decision is still kept in memory). */
int sp_tune_cache_put(sp_tune_cache *c, const char *key, const char *choice, const char *note);

#endif
