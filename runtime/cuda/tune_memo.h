/* tune_memo.h - process-wide memo of the CUDA backend's plan-time tuning
 * decisions (see tune_memo.c). Thread-safe. Keys are strings naming the
 * device and the layer (op, node, shapes, dtype, which decision); the
 * memo copies them. */
#ifndef SPRUN_RUNTIME_CUDA_TUNE_MEMO_H
#define SPRUN_RUNTIME_CUDA_TUNE_MEMO_H

/* 1 and the remembered choice in *choice, or 0 when key was never put. */
int sp_cuda_tune_memo_get(const char *key, int *choice);

/* Remembers choice for key (replacing an earlier one). Out of memory: not
 * remembered, the next plan times it again. */
void sp_cuda_tune_memo_put(const char *key, int choice);

#endif
