/* clock.h - wall-clock timing helpers shared by the CLI's timing modes. */
#ifndef SPRUN_TOOLS_CLOCK_H
#define SPRUN_TOOLS_CLOCK_H

#include <time.h>

/* Monotonic time in microseconds. */
static inline double sprun_now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e6 + ts.tv_nsec * 1e-3;
}

/* qsort comparator for doubles, ascending. */
static inline int sprun_cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

#endif
