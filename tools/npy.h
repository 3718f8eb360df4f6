/*
 * npy.h - reading and writing NumPy .npy files (format versions 1.0-3.0,
 * little-endian, C order) for the sprun CLI and tests.
 */
#ifndef SPRUN_NPY_H
#define SPRUN_NPY_H

#include "sprun.h"

#include <stddef.h>

/* Parses an .npy image in memory. On success fills *t (dtype, rank, dims,
 * data pointing INTO buf, nbytes) and returns 0; otherwise returns -1 and
 * writes a message naming the problem into err. Never reads past size. */
int sprun_npy_parse(const void *buf, size_t size, sprun_tensor *t, char *err, size_t errlen);

/* Writes t as an .npy file at path. Returns 0, or -1 with a message. */
int sprun_npy_write(const char *path, const sprun_tensor *t, char *err, size_t errlen);

#endif
