/*
 * tune_memo.c - the CUDA backend's plan-time tuning decisions (cuBLASLt
 * algorithm per GEMM, conv as GEMM or through cuDNN), remembered for the
 * life of the process and keyed by device and layer signature.
 *
 * Why: a decision comes from timing a few launches, and one noisy timing
 * can pick a variant several times slower (measured on the H100 at
 * ResNet-50 batch 32: the same 3x3 conv at 27 us in one plan and 609 us in
 * another). Two plans of one model in one process (sprun --compare's dense
 * and sparse plans, or a session per stream) then run the same kernels for
 * the same layers, and a layer is timed once.
 */
#include "runtime/cuda/tune_memo.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

typedef struct memo_entry {
    char *key;
    int choice;
} memo_entry;

static pthread_mutex_t g_mu = PTHREAD_MUTEX_INITIALIZER;
static memo_entry *g_e;
static int g_n, g_cap;

int sp_cuda_tune_memo_get(const char *key, int *choice)
{
    int found = 0;
    pthread_mutex_lock(&g_mu);
    for (int i = 0; i < g_n && !found; i++)
        if (!strcmp(g_e[i].key, key)) {
            *choice = g_e[i].choice;
            found = 1;
        }
    pthread_mutex_unlock(&g_mu);
    return found;
}

void sp_cuda_tune_memo_put(const char *key, int choice)
{
    pthread_mutex_lock(&g_mu);
    for (int i = 0; i < g_n; i++)
        if (!strcmp(g_e[i].key, key)) {
            g_e[i].choice = choice;
            pthread_mutex_unlock(&g_mu);
            return;
        }
    if (g_n == g_cap) {
        int cap = g_cap ? 2 * g_cap : 64;
        memo_entry *e = realloc(g_e, (size_t)cap * sizeof *e);
        if (!e) { /* a decision not remembered is only timed again */
            pthread_mutex_unlock(&g_mu);
            return;
        }
        g_e = e;
        g_cap = cap;
    }
    size_t len = strlen(key) + 1;
    char *k = malloc(len);
    if (k) {
        memcpy(k, key, len);
        g_e[g_n].key = k;
        g_e[g_n].choice = choice;
        g_n++;
    }
    pthread_mutex_unlock(&g_mu);
}
