/*
 * threadpool.h - a small persistent pthread pool for the CPU backend.
 *
 * One pool per session (sessions are single-threaded by contract, so a pool
 * runs one parallel loop at a time). Work is split into chunks handed out
 * through an atomic counter; the calling thread works too, so a pool of
 * n threads starts n - 1 workers.
 */
#ifndef SPRUN_THREADPOOL_H
#define SPRUN_THREADPOOL_H

#include "ops/op.h"

typedef struct sp_threadpool sp_threadpool;

/* Creates a pool using nthreads threads in total (caller included); NULL on
 * failure or when nthreads <= 1 (callers then run loops inline). */
sp_threadpool *sp_threadpool_create(int nthreads);
void sp_threadpool_destroy(sp_threadpool *pool);
int sp_threadpool_size(const sp_threadpool *pool);

/* Number of online CPUs (at least 1). */
int sp_cpu_count(void);

#endif
