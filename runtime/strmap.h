/*
 * strmap.h - string -> int hash map (open addressing), used for value-name
 * lookup while loading graphs with tens of thousands of values.
 * Keys are copied. Not thread-safe.
 */
#ifndef SPRUN_STRMAP_H
#define SPRUN_STRMAP_H

#include <stddef.h>

typedef struct sp_strmap sp_strmap;

sp_strmap *sp_strmap_create(void);
void sp_strmap_destroy(sp_strmap *m);
/* Returns 0, or -1 on out-of-memory. Overwrites an existing key. */
int sp_strmap_put(sp_strmap *m, const char *key, int value);
/* Value for key, or -1. */
int sp_strmap_get(const sp_strmap *m, const char *key);

#endif
