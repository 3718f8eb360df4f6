/* strmap.c - FNV-1a hashed open-addressing map from strings to ints. */
#include "runtime/strmap.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

struct sp_strmap {
    char **keys;
    int *vals;
    size_t cap, count;
};

static uint64_t hash_str(const char *s)
{
    uint64_t h = 1469598103934665603ull;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h;
}

sp_strmap *sp_strmap_create(void)
{
    sp_strmap *m = calloc(1, sizeof *m);
    if (!m)
        return NULL;
    m->cap = 64;
    m->keys = calloc(m->cap, sizeof *m->keys);
    m->vals = calloc(m->cap, sizeof *m->vals);
    if (!m->keys || !m->vals) {
        sp_strmap_destroy(m);
        return NULL;
    }
    return m;
}

void sp_strmap_destroy(sp_strmap *m)
{
    if (!m)
        return;
    if (m->keys)
        for (size_t i = 0; i < m->cap; i++)
            free(m->keys[i]);
    free(m->keys);
    free(m->vals);
    free(m);
}

static int grow(sp_strmap *m)
{
    size_t ncap = m->cap * 2;
    char **nk = calloc(ncap, sizeof *nk);
    int *nv = calloc(ncap, sizeof *nv);
    if (!nk || !nv) {
        free(nk);
        free(nv);
        return -1;
    }
    for (size_t i = 0; i < m->cap; i++) {
        if (!m->keys[i])
            continue;
        size_t j = hash_str(m->keys[i]) & (ncap - 1);
        while (nk[j])
            j = (j + 1) & (ncap - 1);
        nk[j] = m->keys[i];
        nv[j] = m->vals[i];
    }
    free(m->keys);
    free(m->vals);
    m->keys = nk;
    m->vals = nv;
    m->cap = ncap;
    return 0;
}

int sp_strmap_put(sp_strmap *m, const char *key, int value)
{
    if ((m->count + 1) * 2 > m->cap && grow(m) != 0)
        return -1;
    size_t j = hash_str(key) & (m->cap - 1);
    while (m->keys[j]) {
        if (strcmp(m->keys[j], key) == 0) {
            m->vals[j] = value;
            return 0;
        }
        j = (j + 1) & (m->cap - 1);
    }
    size_t n = strlen(key) + 1;
    m->keys[j] = malloc(n);
    if (!m->keys[j])
        return -1;
    memcpy(m->keys[j], key, n);
    m->vals[j] = value;
    m->count++;
    return 0;
}

int sp_strmap_get(const sp_strmap *m, const char *key)
{
    if (!m)
        return -1;
    size_t j = hash_str(key) & (m->cap - 1);
    while (m->keys[j]) {
        if (strcmp(m->keys[j], key) == 0)
            return m->vals[j];
        j = (j + 1) & (m->cap - 1);
    }
    return -1;
}
