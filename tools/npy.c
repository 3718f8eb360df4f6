/* npy.c - a strict, bounds-checked .npy reader and a writer. */
#include "tools/npy.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const struct {
    const char *descr;
    sprun_dtype dtype;
} dtypes[] = {
    {"<f4", SPRUN_DTYPE_FLOAT}, {"<f2", SPRUN_DTYPE_FLOAT16}, {"<f8", SPRUN_DTYPE_DOUBLE},
    {"<i8", SPRUN_DTYPE_INT64}, {"<i4", SPRUN_DTYPE_INT32},   {"<i2", SPRUN_DTYPE_INT16},
    {"|i1", SPRUN_DTYPE_INT8},  {"|u1", SPRUN_DTYPE_UINT8},   {"|b1", SPRUN_DTYPE_BOOL},
    {"<u2", SPRUN_DTYPE_UINT16}, {"<u4", SPRUN_DTYPE_UINT32}, {"<u8", SPRUN_DTYPE_UINT64},
};

/* Finds `'key':` in the header dict and returns the text after it. */
static const char *dict_value(const char *hdr, size_t len, const char *key)
{
    size_t kl = strlen(key);
    for (size_t i = 0; i + kl + 2 < len; i++)
        if ((hdr[i] == '\'' || hdr[i] == '"') && !memcmp(hdr + i + 1, key, kl) && hdr[i + 1 + kl] == hdr[i]) {
            const char *p = hdr + i + kl + 2;
            while (p < hdr + len && (*p == ' ' || *p == ':'))
                p++;
            return p < hdr + len ? p : NULL;
        }
    return NULL;
}

int sprun_npy_parse(const void *vbuf, size_t size, sprun_tensor *t, char *err, size_t errlen)
{
    const unsigned char *buf = vbuf;
    memset(t, 0, sizeof *t);
    if (size < 10 || memcmp(buf, "\x93NUMPY", 6) != 0) {
        snprintf(err, errlen, "not an .npy file (bad magic)");
        return -1;
    }
    size_t hlen, hstart;
    if (buf[6] == 1) {
        hlen = (size_t)buf[8] | (size_t)buf[9] << 8;
        hstart = 10;
    } else if (buf[6] == 2 || buf[6] == 3) {
        if (size < 12) {
            snprintf(err, errlen, "truncated .npy header");
            return -1;
        }
        hlen = (size_t)buf[8] | (size_t)buf[9] << 8 | (size_t)buf[10] << 16 | (size_t)buf[11] << 24;
        hstart = 12;
    } else {
        snprintf(err, errlen, "unsupported .npy version %d", buf[6]);
        return -1;
    }
    if (hlen > size - hstart) {
        snprintf(err, errlen, "truncated .npy header (%zu bytes announced)", hlen);
        return -1;
    }
    const char *hdr = (const char *)buf + hstart;
    const char *d = dict_value(hdr, hlen, "descr");
    if (!d || (*d != '\'' && *d != '"')) {
        snprintf(err, errlen, ".npy header has no descr");
        return -1;
    }
    size_t remain = hlen - (size_t)(d + 1 - hdr);
    int found = 0;
    for (size_t i = 0; i < sizeof dtypes / sizeof dtypes[0]; i++)
        if (remain > 4 && !memcmp(d + 1, dtypes[i].descr, 3) && d[4] == *d) {
            t->dtype = dtypes[i].dtype;
            found = 1;
        }
    if (!found) {
        /* The header is not NUL-terminated: quote at most what it holds. */
        int shown = remain + 1 < 8 ? (int)remain + 1 : 8;
        snprintf(err, errlen, ".npy dtype %.*s is not supported (little-endian numeric types only)", shown, d);
        return -1;
    }
    const char *fo = dict_value(hdr, hlen, "fortran_order");
    if (!fo || (size_t)(hdr + hlen - fo) < 5 || memcmp(fo, "False", 5) != 0) {
        snprintf(err, errlen, ".npy fortran_order must be False");
        return -1;
    }
    const char *sh = dict_value(hdr, hlen, "shape");
    if (!sh || *sh != '(') {
        snprintf(err, errlen, ".npy header has no shape");
        return -1;
    }
    const char *end = hdr + hlen;
    const char *p = sh + 1;
    int rank = 0;
    uint64_t numel = 1;
    while (p < end && *p != ')') {
        while (p < end && (*p == ' ' || *p == ','))
            p++;
        if (p < end && *p == ')')
            break;
        uint64_t v = 0;
        int digits = 0;
        while (p < end && *p >= '0' && *p <= '9' && digits < 18) {
            v = v * 10 + (uint64_t)(*p++ - '0');
            digits++;
        }
        if (!digits || rank >= SPRUN_MAX_RANK) {
            snprintf(err, errlen, ".npy shape is malformed or has more than %d dims", SPRUN_MAX_RANK);
            return -1;
        }
        if (p < end && *p >= '0' && *p <= '9') { /* a 19th digit: not split into two dims */
            snprintf(err, errlen, ".npy shape has a dimension of more than 18 digits");
            return -1;
        }
        if (v && numel > UINT64_MAX / v) {
            snprintf(err, errlen, ".npy shape overflows");
            return -1;
        }
        t->dims[rank++] = (int64_t)v;
        numel *= v;
        while (p < end && *p == 'L')
            p++;
    }
    if (p >= end) {
        snprintf(err, errlen, ".npy shape is not closed");
        return -1;
    }
    t->rank = rank;
    size_t es = sprun_dtype_size(t->dtype);
    size_t data_off = hstart + hlen;
    if (numel > (SIZE_MAX / es)) {
        snprintf(err, errlen, ".npy shape is too large (%llu elements of %zu bytes)", (unsigned long long)numel, es);
        return -1;
    }
    if (numel * es != size - data_off) {
        snprintf(err, errlen, ".npy data is %zu bytes, shape and dtype need %llu", size - data_off,
                 (unsigned long long)(numel * es));
        return -1;
    }
    t->nbytes = (size_t)numel * es;
    t->data = (void *)(buf + data_off);
    return 0;
}

int sprun_npy_write(const char *path, const sprun_tensor *t, char *err, size_t errlen)
{
    const char *descr = NULL;
    for (size_t i = 0; i < sizeof dtypes / sizeof dtypes[0]; i++)
        if (dtypes[i].dtype == t->dtype)
            descr = dtypes[i].descr;
    if (!descr) {
        snprintf(err, errlen, "dtype %s cannot be written as .npy", sprun_dtype_name(t->dtype));
        return -1;
    }
    char dict[512];
    int n = snprintf(dict, sizeof dict, "{'descr': '%s', 'fortran_order': False, 'shape': (", descr);
    for (int i = 0; i < t->rank; i++)
        n += snprintf(dict + n, sizeof dict - (size_t)n, "%lld,%s", (long long)t->dims[i],
                      i + 1 < t->rank ? " " : "");
    n += snprintf(dict + n, sizeof dict - (size_t)n, "), }");
    size_t total = 10 + (size_t)n + 1;
    size_t pad = (64 - total % 64) % 64;
    FILE *f = fopen(path, "wb");
    if (!f) {
        snprintf(err, errlen, "cannot open '%s' for writing", path);
        return -1;
    }
    unsigned short hl = (unsigned short)((size_t)n + pad + 1);
    unsigned char pre[10] = {0x93, 'N', 'U', 'M', 'P', 'Y', 1, 0, (unsigned char)(hl & 0xff),
                             (unsigned char)(hl >> 8)};
    int ok = fwrite(pre, 1, 10, f) == 10 && fwrite(dict, 1, (size_t)n, f) == (size_t)n;
    for (size_t i = 0; ok && i < pad; i++)
        ok = fputc(' ', f) != EOF;
    ok = ok && fputc('\n', f) != EOF;
    ok = ok && (t->nbytes == 0 || fwrite(t->data, 1, t->nbytes, f) == t->nbytes);
    ok = (fclose(f) == 0) && ok;
    if (!ok)
        snprintf(err, errlen, "writing '%s' failed", path);
    return ok ? 0 : -1;
}
