/* tune_cache.c - a small append-only key -> choice file with a mutex. */
#include "runtime/tune_cache.h"

#include "runtime/error.h"
#include "runtime/strmap.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Choices are few short words; they are stored as indices into this table so
 * the map (string -> int) can hold them. */
static const char *const choices[] = {"dense", "csr", "bsr", "2:4"};
#define N_CHOICES (int)(sizeof choices / sizeof choices[0])

struct sp_tune_cache {
    char *path;
    sp_strmap *map;
    pthread_mutex_t mu;
};

static int choice_index(const char *s)
{
    for (int i = 0; i < N_CHOICES; i++)
        if (!strcmp(s, choices[i]))
            return i;
    return -1;
}

sp_tune_cache *sp_tune_cache_open(const char *path)
{
    sp_tune_cache *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    c->path = sp_strdup(path);
    c->map = sp_strmap_create();
    if (!c->path || !c->map) {
        sp_tune_cache_close(c);
        return NULL;
    }
    pthread_mutex_init(&c->mu, NULL);
    FILE *f = fopen(path, "r");
    if (f) {
        char line[1024];
        while (fgets(line, sizeof line, f)) {
            char *tab = strchr(line, '\t');
            if (!tab || line[0] == '#')
                continue;
            *tab = '\0';
            char *choice = tab + 1, *end = strpbrk(choice, "\t\n");
            if (end)
                *end = '\0';
            int idx = choice_index(choice);
            if (idx >= 0)
                sp_strmap_put(c->map, line, idx); /* later lines win */
        }
        fclose(f);
    }
    return c;
}

void sp_tune_cache_close(sp_tune_cache *c)
{
    if (!c)
        return;
    if (c->map)
        pthread_mutex_destroy(&c->mu);
    sp_strmap_destroy(c->map);
    free(c->path);
    free(c);
}

int sp_tune_cache_get(sp_tune_cache *c, const char *key, char *choice, size_t len)
{
    pthread_mutex_lock(&c->mu);
    int idx = sp_strmap_get(c->map, key);
    pthread_mutex_unlock(&c->mu);
    if (idx < 0 || idx >= N_CHOICES)
        return 0;
    snprintf(choice, len, "%s", choices[idx]);
    return 1;
}

int sp_tune_cache_put(sp_tune_cache *c, const char *key, const char *choice, const char *note)
{
    int idx = choice_index(choice);
    if (idx < 0)
        return -1;
    pthread_mutex_lock(&c->mu);
    sp_strmap_put(c->map, key, idx);
    FILE *f = fopen(c->path, "a");
    int rc = -1;
    if (f) {
        rc = fprintf(f, "%s\t%s\t%s\n", key, choice, note ? note : "") > 0 ? 0 : -1;
        rc = fclose(f) == 0 ? rc : -1;
    }
    pthread_mutex_unlock(&c->mu);
    return rc;
}
