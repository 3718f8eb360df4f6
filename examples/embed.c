/*
 * embed.c - embedding sprun in a serving process.
 *
 * One immutable model, shared by several worker threads; each worker owns a
 * session (its execution state) and runs its own requests. Inputs are
 * random, shaped from the model's declared inputs (symbolic dims = 1).
 *
 *   sprun_embed MODEL.onnx [threads] [requests-per-thread]
 */
#include "sprun.h"

#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct worker {
    const sprun_model *model;
    int id, requests;
    int failed;
    double checksum;
} worker;

static void fill_random(sprun_tensor *t, unsigned *seed)
{
    size_t es = sprun_dtype_size(t->dtype), n = t->nbytes / (es ? es : 1);
    for (size_t i = 0; i < n; i++) {
        *seed = *seed * 1103515245u + 12345u;
        float v = ((*seed >> 9) & 0x3fff) / 16384.0f - 0.5f;
        switch (t->dtype) {
        case SPRUN_DTYPE_FLOAT: ((float *)t->data)[i] = v; break;
        case SPRUN_DTYPE_INT64: ((int64_t *)t->data)[i] = (*seed >> 16) % 2; break;
        case SPRUN_DTYPE_INT32: ((int32_t *)t->data)[i] = (*seed >> 16) % 2; break;
        default: ((unsigned char *)t->data)[i * es] = (unsigned char)(*seed >> 24); break;
        }
    }
}

static void *serve(void *arg)
{
    worker *w = arg;
    sprun_session *sess = NULL;
    if (sprun_session_create(w->model, &sess) != SPRUN_OK) {
        fprintf(stderr, "worker %d: %s\n", w->id, sprun_last_error());
        w->failed = 1;
        return NULL;
    }
    size_t n_in = sprun_model_input_count(w->model);
    sprun_tensor in[16];
    unsigned seed = 1234u + (unsigned)w->id;
    for (size_t i = 0; i < n_in && i < 16; i++) {
        sprun_tensor_info info;
        sprun_model_input_info(w->model, i, &info);
        memset(&in[i], 0, sizeof in[i]);
        in[i].name = info.name;
        in[i].dtype = info.dtype;
        in[i].rank = info.rank;
        size_t numel = 1;
        for (int d = 0; d < info.rank; d++) {
            in[i].dims[d] = info.dims[d] >= 0 ? info.dims[d] : 1; /* symbolic dims: 1 */
            numel *= (size_t)in[i].dims[d];
        }
        in[i].nbytes = numel * sprun_dtype_size(info.dtype);
        in[i].data = malloc(in[i].nbytes ? in[i].nbytes : 1);
    }
    for (int r = 0; r < w->requests && !w->failed; r++) {
        for (size_t i = 0; i < n_in; i++)
            fill_random(&in[i], &seed);
        if (sprun_session_run(sess, in, n_in) != SPRUN_OK) {
            fprintf(stderr, "worker %d: %s\n", w->id, sprun_last_error());
            w->failed = 1;
            break;
        }
        sprun_tensor out;
        sprun_session_output(sess, 0, &out);
        if (out.dtype == SPRUN_DTYPE_FLOAT)
            for (size_t i = 0; i < out.nbytes / sizeof(float); i++)
                w->checksum += ((const float *)out.data)[i];
    }
    for (size_t i = 0; i < n_in; i++)
        free(in[i].data);
    sprun_session_destroy(sess);
    return NULL;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: %s MODEL.onnx [threads] [requests-per-thread]\n", argv[0]);
        return 1;
    }
    int threads = argc > 2 ? atoi(argv[2]) : 2, requests = argc > 3 ? atoi(argv[3]) : 4;
    if (threads < 1 || threads > 64 || requests < 1) {
        fprintf(stderr, "threads must be 1..64 and requests >= 1\n");
        return 1;
    }
    sprun_options *opt = NULL;
    sprun_options_create(&opt);
    sprun_options_set_threads(opt, 1); /* parallelism comes from the workers */
    sprun_model *model = NULL;
    if (sprun_model_load(argv[1], opt, &model) != SPRUN_OK) {
        fprintf(stderr, "load: %s\n", sprun_last_error());
        sprun_options_destroy(opt);
        return 2;
    }
    sprun_options_destroy(opt);
    worker w[64];
    pthread_t tid[64];
    for (int t = 0; t < threads; t++) {
        w[t] = (worker){.model = model, .id = t, .requests = requests};
        pthread_create(&tid[t], NULL, serve, &w[t]);
    }
    int failed = 0;
    for (int t = 0; t < threads; t++) {
        pthread_join(tid[t], NULL);
        failed |= w[t].failed;
        printf("worker %d: %d requests, output checksum %.6g\n", t, requests, w[t].checksum);
    }
    sprun_model_destroy(model);
    return failed ? 4 : 0;
}
