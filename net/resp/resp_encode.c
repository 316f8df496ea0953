/*
 * resp_encode.c - the RESP2/RESP3 reply encoder into a growable buffer
 * (resp.h, docs/resp.md).
 */
#include "resp.h"

#include <assert.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "resp_internal.h"

/* ---------------------------------------------------------------------- */
/* Reply encoder                                                           */

static bool proto_valid(int proto)
{
    return proto == 2 || proto == 3;
}

int resp_buf_init(struct resp_buf *b,
                  size_t limit,
                  int proto,
                  const struct resp_allocator *alloc)
{
    memset(b, 0, sizeof(*b));
    if (!proto_valid(proto)) {
        return RESP_EINVAL;
    }
    b->limit = limit;
    b->proto = proto;
    return resp_alloc_copy(&b->alloc, alloc);
}

void resp_buf_close(struct resp_buf *b)
{
    resp_mem_free(&b->alloc, b->data);
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
}

int resp_buf_set_proto(struct resp_buf *b, int proto)
{
    if (!proto_valid(proto)) {
        return RESP_EINVAL;
    }
    b->proto = proto;
    return 0;
}

void resp_buf_consume(struct resp_buf *b, size_t n)
{
    assert(n <= b->len);
    if (n < b->len) {
        memmove(b->data, b->data + n, b->len - n);
    }
    b->len -= n;
}

/* Makes room for @n more bytes and returns where they go, or NULL with *rc
 * set. The limit is checked first, so a client that never reads costs at
 * most @limit bytes however many replies the server tries to queue. */
static char *reserve(struct resp_buf *b, size_t n, int *rc)
{
    if (b->len > b->limit || n > b->limit - b->len) {
        *rc = RESP_EOUTPUT;
        return NULL;
    }
    if (n > b->cap - b->len) {
        size_t want = b->cap < 64 ? 64 : b->cap;
        while (want - b->len < n) {
            want = want > SIZE_MAX / 2 ? SIZE_MAX : want * 2;
        }
        if (want > b->limit) {
            want = b->limit;
        }
        char *fresh = resp_mem_realloc(&b->alloc, b->data, want);
        if (fresh == NULL) {
            *rc = RESP_ENOMEM;
            return NULL;
        }
        b->data = fresh;
        b->cap = want;
    }
    *rc = 0;
    return b->data + b->len;
}

/* Writes @v in decimal; @dst has room for 20 bytes. Returns the length. */
static size_t fmt_u64(char *dst, uint64_t v)
{
    char tmp[20];
    size_t n = 0;
    do {
        tmp[n++] = (char)('0' + (int)(v % 10u));
        v /= 10u;
    } while (v != 0);
    for (size_t i = 0; i < n; i++) {
        dst[i] = tmp[n - 1 - i];
    }
    return n;
}

/* Writes @v in decimal; @dst has room for 21 bytes. Returns the length. */
static size_t fmt_i64(char *dst, int64_t v)
{
    if (v >= 0) {
        return fmt_u64(dst, (uint64_t)v);
    }
    dst[0] = '-';
    return 1 + fmt_u64(dst + 1, 0u - (uint64_t)v);
}

/* Appends a line made of a type byte and a number:
 *
 *   +------+----------------+------+
 *   | type | decimal number | \r\n |
 *   +------+----------------+------+
 */
static int put_number_line(struct resp_buf *b, char type, int64_t v)
{
    char line[24];
    size_t n = 0;
    int rc;
    line[n++] = type;
    n += fmt_i64(line + n, v);
    line[n++] = '\r';
    line[n++] = '\n';
    char *dst = reserve(b, n, &rc);
    if (dst == NULL) {
        return rc;
    }
    memcpy(dst, line, n);
    b->len += n;
    return 0;
}

/* Counts in RESP are signed 64-bit numbers on the wire. */
static int put_count_line(struct resp_buf *b, char type, size_t n)
{
    if ((uint64_t)n > (uint64_t)INT64_MAX) {
        return RESP_EINVAL;
    }
    return put_number_line(b, type, (int64_t)n);
}

/* Appends a line of text with no length prefix; "\r" and "\n" inside it
 * would end the line early and let the text forge further replies, so they
 * become spaces.
 *
 *   +------+------+------+
 *   | type | text | \r\n |
 *   +------+------+------+
 */
static int put_text_line(struct resp_buf *b,
                         char type,
                         const char *s,
                         size_t len)
{
    int rc;
    if (len > SIZE_MAX - 3) {
        return RESP_EOUTPUT;
    }
    char *dst = reserve(b, len + 3, &rc);
    if (dst == NULL) {
        return rc;
    }
    dst[0] = type;
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        dst[1 + i] = (c == '\r' || c == '\n') ? ' ' : c;
    }
    dst[1 + len] = '\r';
    dst[2 + len] = '\n';
    b->len += len + 3;
    return 0;
}

/* Appends a length-prefixed blob, with an optional prefix inside the
 * counted bytes (the verbatim string's "txt:"):
 *
 *   +------+--------------------+------+--------+------+------+
 *   | type | plen + len decimal | \r\n | prefix | data | \r\n |
 *   +------+--------------------+------+--------+------+------+
 */
static int put_blob(struct resp_buf *b,
                    char type,
                    const char *prefix,
                    size_t plen,
                    const void *data,
                    size_t len)
{
    char head[24];
    size_t h = 0;
    int rc;
    if (len > (uint64_t)INT64_MAX - plen) {
        return RESP_EOUTPUT;
    }
    head[h++] = type;
    h += fmt_u64(head + h, (uint64_t)(plen + len));
    head[h++] = '\r';
    head[h++] = '\n';
    if (plen + len > SIZE_MAX - h - 2) {
        return RESP_EOUTPUT;
    }
    size_t total = h + plen + len + 2;
    char *dst = reserve(b, total, &rc);
    if (dst == NULL) {
        return rc;
    }
    memcpy(dst, head, h);
    if (plen > 0) {
        memcpy(dst + h, prefix, plen);
    }
    if (len > 0) {
        memcpy(dst + h + plen, data, len);
    }
    dst[total - 2] = '\r';
    dst[total - 1] = '\n';
    b->len += total;
    return 0;
}

int resp_encode_simple(struct resp_buf *b, const char *s, size_t len)
{
    return put_text_line(b, '+', s, len);
}

int resp_encode_error(struct resp_buf *b, const char *msg, size_t len)
{
    return put_text_line(b, '-', msg, len);
}

int resp_encode_integer(struct resp_buf *b, int64_t v)
{
    return put_number_line(b, ':', v);
}

int resp_encode_bulk(struct resp_buf *b, const void *data, size_t len)
{
    return put_blob(b, '$', NULL, 0, data, len);
}

int resp_encode_null(struct resp_buf *b)
{
    if (b->proto == 3) {
        return put_text_line(b, '_', "", 0);
    }
    return put_number_line(b, '$', -1);
}

int resp_encode_null_array(struct resp_buf *b)
{
    if (b->proto == 3) {
        return put_text_line(b, '_', "", 0);
    }
    return put_number_line(b, '*', -1);
}

int resp_encode_array(struct resp_buf *b, size_t n)
{
    return put_count_line(b, '*', n);
}

int resp_encode_map(struct resp_buf *b, size_t npairs)
{
    if (b->proto == 3) {
        return put_count_line(b, '%', npairs);
    }
    if (npairs > SIZE_MAX / 2) {
        return RESP_EINVAL;
    }
    return put_count_line(b, '*', npairs * 2);
}

int resp_encode_set(struct resp_buf *b, size_t n)
{
    return put_count_line(b, b->proto == 3 ? '~' : '*', n);
}

int resp_encode_push(struct resp_buf *b, size_t n)
{
    return put_count_line(b, b->proto == 3 ? '>' : '*', n);
}

/* Formats @v with 15 significant digits, or 16 or 17 if strtod() would not
 * read fewer back as the same double; 17 always suffice. Assumes the "C"
 * locale, which the server never changes. */
static size_t fmt_double(char *dst, size_t size, double v)
{
    int n;
    if (isnan(v)) {
        n = snprintf(dst, size, "nan");
    } else if (isinf(v)) {
        n = snprintf(dst, size, v > 0 ? "inf" : "-inf");
    } else {
        /* A value whose shortest form has at most 15 digits prints
         * exactly so at precision 15, so the search starts there. */
        n = 0;
        for (int prec = 15; prec <= 17; prec++) {
            n = snprintf(dst, size, "%.*g", prec, v);
            if (strtod(dst, NULL) == v) {
                break;
            }
        }
    }
    assert(n > 0 && (size_t)n < size);
    return (size_t)n;
}

int resp_encode_double(struct resp_buf *b, double v)
{
    char text[40];
    size_t n = fmt_double(text, sizeof(text), v);
    if (b->proto == 3) {
        return put_text_line(b, ',', text, n);
    }
    return put_blob(b, '$', NULL, 0, text, n);
}

int resp_encode_bool(struct resp_buf *b, bool v)
{
    if (b->proto == 3) {
        return put_text_line(b, '#', v ? "t" : "f", 1);
    }
    return put_number_line(b, ':', v ? 1 : 0);
}

int resp_encode_bignum(struct resp_buf *b, const char *digits, size_t len)
{
    size_t i = (len > 0 && digits[0] == '-') ? 1 : 0;
    if (i == len) {
        return RESP_EINVAL;
    }
    for (; i < len; i++) {
        if (digits[i] < '0' || digits[i] > '9') {
            return RESP_EINVAL;
        }
    }
    if (b->proto == 3) {
        return put_text_line(b, '(', digits, len);
    }
    return put_blob(b, '$', NULL, 0, digits, len);
}

int resp_encode_verbatim(struct resp_buf *b,
                         const char *format,
                         const void *data,
                         size_t len)
{
    if (format == NULL || strnlen(format, 4) != 3) {
        return RESP_EINVAL;
    }
    if (b->proto != 3) {
        return put_blob(b, '$', NULL, 0, data, len);
    }
    char prefix[4];
    memcpy(prefix, format, 3);
    prefix[3] = ':';
    return put_blob(b, '=', prefix, sizeof(prefix), data, len);
}
