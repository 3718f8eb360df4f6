/*
 * onnx_tensor.c - TensorProto -> sp_value, and the guarded protobuf unpack.
 * See onnx_tensor.h for the contract.
 */
#include "loaders/onnx_tensor.h"

#include "onnx.pb-c.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* raw_data and external data are little-endian by the spec and are used
 * as they are. */
_Static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "the ONNX loader assumes a little-endian host");

/* protobuf's own default recursion limit; real models nest a handful of
 * levels (Model > Graph > Node > Attribute > Graph for If/Loop bodies...). */
#define PB_MAX_DEPTH 100

/* ------------------------------------------------------------------------ */
/* Wire-format pre-scan                                                      */
/* ------------------------------------------------------------------------ */

enum { SCAN_OK = 0, SCAN_TRUNCATED, SCAN_BAD_WIRE, SCAN_TOO_DEEP };

typedef struct pb_scan {
    size_t at;      /* absolute offset of the problem */
    uint64_t claim; /* SCAN_TRUNCATED: bytes the field claims ... */
    size_t remain;  /* ... and bytes that were left */
} pb_scan;

/* Reads a varint at p[*i]; 0 when it runs off the end (or past 10 bytes). */
static int read_varint(const uint8_t *p, size_t n, size_t *i, uint64_t *v)
{
    uint64_t r = 0;
    for (unsigned k = 0; k < 10; k++) {
        if (*i >= n)
            return 0;
        uint8_t b = p[(*i)++];
        r |= (uint64_t)(b & 0x7f) << (7 * k);
        if (!(b & 0x80)) {
            *v = r;
            return 1;
        }
    }
    return 0;
}

/* Walks one message's fields; recurses (depth-limited) into the fields the
 * descriptor declares as messages. Bytes fields are skipped, not read. */
static int scan_message(const uint8_t *p, size_t n, size_t base, const ProtobufCMessageDescriptor *d, int depth,
                        pb_scan *s)
{
    size_t i = 0;
    while (i < n) {
        size_t field_at = i;
        uint64_t tag, len;
        if (!read_varint(p, n, &i, &tag)) {
            s->at = base + field_at;
            return i >= n ? SCAN_TRUNCATED : SCAN_BAD_WIRE;
        }
        uint64_t id = tag >> 3;
        unsigned wt = (unsigned)(tag & 7);
        if (id == 0 || id > 536870911u) {
            s->at = base + field_at;
            return SCAN_BAD_WIRE;
        }
        switch (wt) {
        case 0: /* varint */
            if (!read_varint(p, n, &i, &len)) {
                s->at = base + field_at;
                return i >= n ? SCAN_TRUNCATED : SCAN_BAD_WIRE;
            }
            break;
        case 1: /* fixed64 */
        case 5: /* fixed32 */ {
            size_t w = wt == 1 ? 8 : 4;
            if (n - i < w) {
                s->at = base + field_at, s->claim = w, s->remain = n - i;
                return SCAN_TRUNCATED;
            }
            i += w;
            break;
        }
        case 2: { /* length-delimited: bytes, string, packed array or message */
            if (!read_varint(p, n, &i, &len)) {
                s->at = base + field_at;
                return i >= n ? SCAN_TRUNCATED : SCAN_BAD_WIRE;
            }
            if (len > n - i) {
                s->at = base + field_at, s->claim = len, s->remain = n - i;
                return SCAN_TRUNCATED;
            }
            const ProtobufCFieldDescriptor *f = protobuf_c_message_descriptor_get_field(d, (unsigned)id);
            if (f && f->type == PROTOBUF_C_TYPE_MESSAGE) {
                if (depth + 1 >= PB_MAX_DEPTH) {
                    s->at = base + field_at;
                    return SCAN_TOO_DEEP;
                }
                int rc = scan_message(p + i, (size_t)len, base + i, f->descriptor, depth + 1, s);
                if (rc != SCAN_OK)
                    return rc;
            }
            i += (size_t)len;
            break;
        }
        default: /* 3/4: groups (protobuf-c rejects them), 6/7: invalid */
            s->at = base + field_at;
            return SCAN_BAD_WIRE;
        }
    }
    return SCAN_OK;
}

/* Does the buffer start like a message of descriptor d: a valid tag of a
 * field d declares? Tells "this is some other file" from "corrupt". */
static int starts_like(const uint8_t *p, size_t n, const ProtobufCMessageDescriptor *d)
{
    size_t i = 0;
    uint64_t tag;
    if (!read_varint(p, n, &i, &tag))
        return i >= n; /* cut inside the first tag: let the truncation message speak */
    unsigned wt = (unsigned)(tag & 7);
    if ((tag >> 3) == 0 || (tag >> 3) > 536870911u || (wt != 0 && wt != 1 && wt != 2 && wt != 5))
        return 0;
    return protobuf_c_message_descriptor_get_field(d, (unsigned)(tag >> 3)) != NULL;
}

void *sp_onnx_unpack(sp_onnx_msg which, const void *data, size_t size, sp_err *err)
{
    const ProtobufCMessageDescriptor *d =
        which == SP_ONNX_MODEL ? &onnx__model_proto__descriptor : &onnx__tensor_proto__descriptor;
    const char *kind = which == SP_ONNX_MODEL ? "ONNX model" : "ONNX TensorProto";
    if (!data || size == 0) {
        sp_err_set(err, SPRUN_ERR_PARSE, "empty input (0 bytes): not an %s", kind);
        return NULL;
    }
    const uint8_t *p = data;
    if (!starts_like(p, size, d)) {
        sp_err_set(err, SPRUN_ERR_PARSE, "not an %s (protobuf parse failed at byte 0)", kind);
        return NULL;
    }
    pb_scan s = {0};
    switch (scan_message(p, size, 0, d, 0, &s)) {
    case SCAN_TRUNCATED:
        if (s.claim)
            sp_err_set(err, SPRUN_ERR_PARSE,
                       "truncated or corrupt %s: the field at byte %zu claims %llu bytes but only %zu remain "
                       "(file size %zu)",
                       kind, s.at, (unsigned long long)s.claim, s.remain, size);
        else
            sp_err_set(err, SPRUN_ERR_PARSE, "truncated or corrupt %s: input ends inside the field at byte %zu",
                       kind, s.at);
        return NULL;
    case SCAN_BAD_WIRE:
        sp_err_set(err, SPRUN_ERR_PARSE, "truncated or corrupt %s: invalid protobuf field at byte %zu", kind, s.at);
        return NULL;
    case SCAN_TOO_DEEP:
        sp_err_set(err, SPRUN_ERR_PARSE, "corrupt %s: messages nested more than %d levels deep (at byte %zu)", kind,
                   PB_MAX_DEPTH, s.at);
        return NULL;
    default: break;
    }
    void *msg = protobuf_c_message_unpack(d, NULL, size, p);
    if (!msg)
        sp_err_set(err, SPRUN_ERR_PARSE,
                   "not an %s or corrupt (protobuf parse failed: a field has the wrong type, or out of memory)", kind);
    return msg;
}

/* ------------------------------------------------------------------------ */
/* TensorProto -> sp_value                                                   */
/* ------------------------------------------------------------------------ */

const char *sp_onnx_dtype_name(int dt)
{
    const ProtobufCEnumValue *ev = protobuf_c_enum_descriptor_get_value(&onnx__tensor_proto__data_type__descriptor, dt);
    if (ev)
        return ev->name;
    /* Types newer than the onnx.proto we are built against. */
    static const char *const newer[] = {"FLOAT8E4M3FN", "FLOAT8E4M3FNUZ", "FLOAT8E5M2", "FLOAT8E5M2FNUZ",
                                        "UINT4",        "INT4",           "FLOAT4E2M1"};
    if (dt >= 17 && dt < 17 + (int)(sizeof newer / sizeof newer[0]))
        return newer[dt - 17];
    return "unknown";
}

int sp_onnx_dtype_supported(int dt)
{
    switch (dt) {
    case SPRUN_DTYPE_FLOAT: case SPRUN_DTYPE_FLOAT16: case SPRUN_DTYPE_BFLOAT16: case SPRUN_DTYPE_DOUBLE:
    case SPRUN_DTYPE_INT8: case SPRUN_DTYPE_INT16: case SPRUN_DTYPE_INT32: case SPRUN_DTYPE_INT64:
    case SPRUN_DTYPE_UINT8: case SPRUN_DTYPE_UINT16: case SPRUN_DTYPE_UINT32: case SPRUN_DTYPE_UINT64:
    case SPRUN_DTYPE_BOOL:
        return 1;
    default:
        return 0;
    }
}

/* The element sizes are fixed by the format, not by the host. */
static size_t elem_size(int dt)
{
    switch (dt) {
    case SPRUN_DTYPE_INT8: case SPRUN_DTYPE_UINT8: case SPRUN_DTYPE_BOOL: return 1;
    case SPRUN_DTYPE_FLOAT16: case SPRUN_DTYPE_BFLOAT16: case SPRUN_DTYPE_INT16: case SPRUN_DTYPE_UINT16: return 2;
    case SPRUN_DTYPE_FLOAT: case SPRUN_DTYPE_INT32: case SPRUN_DTYPE_UINT32: return 4;
    case SPRUN_DTYPE_DOUBLE: case SPRUN_DTYPE_INT64: case SPRUN_DTYPE_UINT64: return 8;
    default: return 0;
    }
}

/* Parses a decimal external-data "offset"/"length" value. */
static int parse_u64(const char *s, uint64_t *v)
{
    if (!s || !*s)
        return 0;
    uint64_t r = 0;
    for (; *s; s++) {
        if (*s < '0' || *s > '9' || r > (UINT64_MAX - 9) / 10)
            return 0;
        r = r * 10 + (uint64_t)(*s - '0');
    }
    *v = r;
    return 1;
}

/* A location must name a file under the model's directory: no absolute path,
 * no ".." component. The check is lexical on purpose: symbolic links inside
 * the directory are followed, because model caches (Hugging Face's among
 * them) link each file of a snapshot to a blob stored elsewhere. */
static int location_is_safe(const char *loc)
{
    if (!loc[0] || loc[0] == '/')
        return 0;
    for (const char *c = loc; *c;) {
        const char *e = strchr(c, '/');
        size_t len = e ? (size_t)(e - c) : strlen(c);
        if (len == 2 && c[0] == '.' && c[1] == '.')
            return 0;
        c += len;
        if (*c == '/')
            c++;
    }
    return 1;
}

/* Reads nbytes of t's external data into a new malloc'ed buffer. */
static int read_external(const Onnx__TensorProto *t, const char *base_dir, const char *what, size_t nbytes,
                         void **out, sp_err *err)
{
    const char *loc = NULL;
    uint64_t offset = 0, length = 0;
    int has_length = 0;
    for (size_t i = 0; i < t->n_external_data; i++) {
        const Onnx__StringStringEntryProto *kv = t->external_data[i];
        if (!kv || !kv->key)
            continue;
        const char *val = kv->value ? kv->value : "";
        if (strcmp(kv->key, "location") == 0) {
            loc = val;
        } else if (strcmp(kv->key, "offset") == 0) {
            if (!parse_u64(val, &offset))
                return sp_err_set(err, SPRUN_ERR_PARSE, "%s: external data offset '%s' is not a number", what, val);
        } else if (strcmp(kv->key, "length") == 0) {
            if (!parse_u64(val, &length))
                return sp_err_set(err, SPRUN_ERR_PARSE, "%s: external data length '%s' is not a number", what, val);
            has_length = 1;
        } /* "checksum" and unknown keys: ignored */
    }
    if (!loc)
        return sp_err_set(err, SPRUN_ERR_PARSE, "%s: external data without a 'location'", what);
    if (!base_dir)
        return sp_err_set(err, SPRUN_ERR_PARSE,
                          "%s: external data '%s' cannot be resolved (no model directory for this input)", what, loc);
    if (!location_is_safe(loc))
        return sp_err_set(err, SPRUN_ERR_PARSE,
                          "%s: external data location '%s' leaves the model directory (absolute path or '..')", what,
                          loc);
    if (has_length && length != nbytes)
        return sp_err_set(err, SPRUN_ERR_PARSE, "%s: external data length %llu does not match its shape (%zu bytes)",
                          what, (unsigned long long)length, nbytes);

    size_t plen = strlen(base_dir) + strlen(loc) + 2;
    char *path = sp_malloc(plen, err, "external data path");
    if (!path)
        return SPRUN_ERR_OUT_OF_MEMORY;
    snprintf(path, plen, "%s/%s", base_dir, loc);

    int rc = SPRUN_OK;
    char *buf = NULL;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    struct stat st;
    if (fd < 0) {
        rc = sp_err_set(err, SPRUN_ERR_IO, "%s: cannot open external data file '%s': %s", what, path, strerror(errno));
        goto done;
    }
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        rc = sp_err_set(err, SPRUN_ERR_IO, "%s: external data '%s' is not a regular file", what, path);
        goto done;
    }
    if (offset > (uint64_t)st.st_size || nbytes > (uint64_t)st.st_size - offset) {
        rc = sp_err_set(err, SPRUN_ERR_PARSE,
                        "%s: external data file '%s' is too short: %zu bytes needed at offset %llu, file has %lld",
                        what, path, nbytes, (unsigned long long)offset, (long long)st.st_size);
        goto done;
    }
    buf = sp_malloc(nbytes ? nbytes : 1, err, what);
    if (!buf) {
        rc = SPRUN_ERR_OUT_OF_MEMORY;
        goto done;
    }
    for (size_t got = 0; got < nbytes;) {
        ssize_t r = pread(fd, buf + got, nbytes - got, (off_t)(offset + got));
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0) {
            rc = sp_err_set(err, r < 0 ? SPRUN_ERR_IO : SPRUN_ERR_PARSE,
                            "%s: short read of external data file '%s' (%zu of %zu bytes at offset %llu)%s%s", what,
                            path, got, nbytes, (unsigned long long)offset, r < 0 ? ": " : "",
                            r < 0 ? strerror(errno) : "");
            goto done;
        }
        got += (size_t)r;
    }
done:
    if (fd >= 0)
        close(fd);
    free(path);
    if (rc != SPRUN_OK) {
        free(buf);
        return rc;
    }
    *out = buf;
    return SPRUN_OK;
}

/* Takes over a protobuf-c array or bytes buffer: protobuf-c frees a field
 * only when its pointer is non-NULL (protobuf_c_message_free_unpacked), so
 * clearing it hands the malloc'ed block to us. */
#define TAKE(dst, field, count) \
    do {                            \
        (dst) = (void *)(field);    \
        (field) = NULL;             \
        (count) = 0;                \
    } while (0)

/* Narrows int32_data (ONNX's carrier for every type of <= 16 bits) into the
 * element type's width; fp16/bf16 are stored as their bit patterns. */
static void narrow_int32(const int32_t *src, size_t count, int dt, void *dst)
{
    for (size_t i = 0; i < count; i++) {
        switch (dt) {
        case SPRUN_DTYPE_BOOL: ((uint8_t *)dst)[i] = src[i] != 0; break;
        case SPRUN_DTYPE_INT8: ((int8_t *)dst)[i] = (int8_t)src[i]; break;
        case SPRUN_DTYPE_UINT8: ((uint8_t *)dst)[i] = (uint8_t)src[i]; break;
        default: ((uint16_t *)dst)[i] = (uint16_t)src[i]; break; /* int16/uint16/fp16/bf16 */
        }
    }
}

int sp_onnx_tensor_convert(Onnx__TensorProto *t, const char *base_dir, const char *what, sp_value *out, sp_err *err)
{
    out->data = NULL;
    out->nbytes = 0;
    if (!t)
        return sp_err_set(err, SPRUN_ERR_PARSE, "%s: missing tensor", what);
    int dt = t->has_data_type ? t->data_type : 0;
    if (dt == SPRUN_DTYPE_UNDEFINED)
        return sp_err_set(err, SPRUN_ERR_PARSE, "%s has no data_type", what);
    if (!sp_onnx_dtype_supported(dt))
        return sp_err_set(err, SPRUN_ERR_UNSUPPORTED, "%s has unsupported data type %s (%d)", what,
                          sp_onnx_dtype_name(dt), dt);
    if (t->segment)
        return sp_err_set(err, SPRUN_ERR_UNSUPPORTED, "%s is a segment of a tensor (not supported)", what);
    if (t->n_dims > SP_MAX_RANK)
        return sp_err_set(err, SPRUN_ERR_UNSUPPORTED, "%s has rank %zu (at most %d supported)", what, t->n_dims,
                          SP_MAX_RANK);

    /* Shape and element count, guarded against overflow: a crafted file must
     * not make us compute a small size from huge dims. */
    sp_shape shape = {.rank = (int32_t)t->n_dims};
    int has_zero = 0;
    for (size_t i = 0; i < t->n_dims; i++) {
        if (t->dims[i] < 0)
            return sp_err_set(err, SPRUN_ERR_PARSE, "%s has negative dimension %lld at axis %zu", what,
                              (long long)t->dims[i], i);
        shape.d[i] = t->dims[i];
        has_zero |= t->dims[i] == 0;
    }
    size_t esize = elem_size(dt);
    uint64_t numel = 1;
    if (has_zero) {
        numel = 0;
    } else {
        const uint64_t limit = (uint64_t)PTRDIFF_MAX / 8;
        for (size_t i = 0; i < t->n_dims; i++) {
            if (numel > limit / (uint64_t)t->dims[i])
                return sp_err_set(err, SPRUN_ERR_PARSE, "%s is impossibly large (element count overflows)", what);
            numel *= (uint64_t)t->dims[i];
        }
    }
    size_t nbytes = (size_t)numel * esize;

    void *data = NULL;
    int rc;
    if (t->has_data_location && t->data_location == ONNX__TENSOR_PROTO__DATA_LOCATION__EXTERNAL) {
        rc = read_external(t, base_dir, what, nbytes, &data, err);
        if (rc)
            return rc;
    } else if (t->has_raw_data || t->raw_data.len) {
        if (t->raw_data.len != nbytes)
            return sp_err_set(err, SPRUN_ERR_PARSE,
                              "%s: raw_data has %zu bytes, its shape and type (%s) need %zu", what, t->raw_data.len,
                              sp_onnx_dtype_name(dt), nbytes);
        TAKE(data, t->raw_data.data, t->raw_data.len);
        t->has_raw_data = 0;
    } else {
        /* Typed fields: which one carries dt is fixed by the spec. */
        size_t count;
        const char *field;
        switch (dt) {
        case SPRUN_DTYPE_FLOAT: count = t->n_float_data, field = "float_data"; break;
        case SPRUN_DTYPE_DOUBLE: count = t->n_double_data, field = "double_data"; break;
        case SPRUN_DTYPE_INT64: count = t->n_int64_data, field = "int64_data"; break;
        case SPRUN_DTYPE_UINT32: case SPRUN_DTYPE_UINT64: count = t->n_uint64_data, field = "uint64_data"; break;
        default: count = t->n_int32_data, field = "int32_data"; break;
        }
        if (count != numel)
            return sp_err_set(err, SPRUN_ERR_PARSE, "%s: %s has %zu values, its shape needs %llu%s", what, field,
                              count, (unsigned long long)numel, count ? "" : " (no data at all)");
        if (numel == 0) {
            data = NULL; /* allocated below */
        } else if (dt == SPRUN_DTYPE_FLOAT) {
            TAKE(data, t->float_data, t->n_float_data);
        } else if (dt == SPRUN_DTYPE_DOUBLE) {
            TAKE(data, t->double_data, t->n_double_data);
        } else if (dt == SPRUN_DTYPE_INT64) {
            TAKE(data, t->int64_data, t->n_int64_data);
        } else if (dt == SPRUN_DTYPE_UINT64) {
            TAKE(data, t->uint64_data, t->n_uint64_data);
        } else if (dt == SPRUN_DTYPE_INT32) {
            TAKE(data, t->int32_data, t->n_int32_data);
        } else if (dt == SPRUN_DTYPE_UINT32) {
            uint32_t *d = sp_malloc(nbytes, err, what);
            if (!d)
                return SPRUN_ERR_OUT_OF_MEMORY;
            for (size_t i = 0; i < count; i++)
                d[i] = (uint32_t)t->uint64_data[i];
            data = d;
        } else {
            data = sp_malloc(nbytes, err, what);
            if (!data)
                return SPRUN_ERR_OUT_OF_MEMORY;
            narrow_int32(t->int32_data, count, dt, data);
        }
    }
    if (!data) { /* empty tensor: see "NULL means not a constant" in the header */
        data = sp_malloc(1, err, what);
        if (!data)
            return SPRUN_ERR_OUT_OF_MEMORY;
    }
    out->dtype = dt;
    out->shape = shape;
    out->data = data;
    out->nbytes = nbytes;
    out->owns_data = 1;
    out->kind = SP_VAL_CONST;
    return SPRUN_OK;
}

/* ------------------------------------------------------------------------ */
/* Standalone TensorProto                                                    */
/* ------------------------------------------------------------------------ */

void sp_onnx_tensor_release(sp_value *v)
{
    if (!v)
        return;
    free(v->name);
    for (int i = 0; i < SP_MAX_RANK; i++)
        free(v->dim_param[i]);
    if (v->owns_data)
        free(v->data);
    memset(v, 0, sizeof *v);
    v->producer = -1;
}

int sp_onnx_tensor_from_buffer(const void *data, size_t size, sp_value *out, sp_err *err)
{
    if (!out)
        return sp_err_set(err, SPRUN_ERR_INVALID_ARGUMENT, "sp_onnx_tensor_from_buffer: out is NULL");
    memset(out, 0, sizeof *out);
    out->producer = -1;
    Onnx__TensorProto *t = sp_onnx_unpack(SP_ONNX_TENSOR, data, size, err);
    if (!t)
        return err ? err->code : SPRUN_ERR_PARSE;
    const char *name = t->name ? t->name : "";
    char what[300];
    snprintf(what, sizeof what, "tensor '%.256s'", name);
    int rc = sp_onnx_tensor_convert(t, NULL, what, out, err);
    if (rc == SPRUN_OK) {
        out->name = sp_strdup(name);
        if (!out->name)
            rc = sp_err_set(err, SPRUN_ERR_OUT_OF_MEMORY, "out of memory copying a tensor name");
    }
    onnx__tensor_proto__free_unpacked(t, NULL);
    if (rc != SPRUN_OK)
        sp_onnx_tensor_release(out);
    return rc;
}
