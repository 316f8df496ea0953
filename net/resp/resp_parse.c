/*
 * resp_parse.c - the RESP request parser: RESP2 multibulk and inline
 * requests, incrementally, under the configured limits (resp.h,
 * docs/resp.md).
 */
#include "resp.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "resp_internal.h"

/* ---------------------------------------------------------------------- */
/* Request parser                                                          */

/* Where the parser stands inside the current request. */
enum {
    ST_START,     /* before the first byte of a request */
    ST_MBULK_HDR, /* reading "*N\r\n" */
    ST_BULK_HDR,  /* reading "$N\r\n" of argument argc */
    ST_BULK_DATA, /* waiting for bulklen bytes and "\r\n" */
    ST_INLINE,    /* looking for the "\n" that ends an inline line */
};

/* After a request that needed more than this many argument slots or inline
 * bytes, the parser gives the memory back, so one large request does not pin
 * memory for the rest of a long-lived connection. */
#define ARGV_KEEP 64u
#define INLINE_KEEP 4096u

void resp_limits_default(struct resp_limits *limits)
{
    limits->args_max = RESP_ARGS_MAX_DEFAULT;
    limits->bulk_bytes_max = RESP_BULK_BYTES_MAX_DEFAULT;
    limits->inline_bytes_max = RESP_INLINE_BYTES_MAX_DEFAULT;
    limits->request_bytes_max = RESP_REQUEST_BYTES_MAX_DEFAULT;
}

int resp_parser_init(struct resp_parser *p,
                     const struct resp_limits *limits,
                     const struct resp_allocator *alloc)
{
    memset(p, 0, sizeof(*p));
    if (limits != NULL) {
        if (limits->args_max == 0 || limits->bulk_bytes_max == 0 ||
            limits->inline_bytes_max == 0 || limits->request_bytes_max == 0) {
            return RESP_EINVAL;
        }
        p->limits = *limits;
    } else {
        resp_limits_default(&p->limits);
    }
    p->state = ST_START;
    return resp_alloc_copy(&p->alloc, alloc);
}

static void release_args(struct resp_parser *p)
{
    resp_mem_free(&p->alloc, (void *)p->argv);
    resp_mem_free(&p->alloc, p->argvlen);
    resp_mem_free(&p->alloc, p->argoff);
    p->argv = NULL;
    p->argvlen = NULL;
    p->argoff = NULL;
    p->cap = 0;
}

static void release_inline(struct resp_parser *p)
{
    resp_mem_free(&p->alloc, p->inline_buf);
    p->inline_buf = NULL;
    p->inline_cap = 0;
}

void resp_parser_close(struct resp_parser *p)
{
    release_args(p);
    release_inline(p);
}

const char *resp_parser_errmsg(const struct resp_parser *p)
{
    return p->errmsg;
}

/* Parses a decimal integer as RESP writes one: an optional '-', then digits
 * with no leading zero (a lone "0" excepted; "-0" is refused). Anything else,
 * including a value outside int64_t, is refused rather than guessed at. */
static bool parse_i64(const char *s, size_t n, int64_t *out)
{
    size_t i = 0;
    bool neg = false;
    if (n > 0 && s[0] == '-') {
        neg = true;
        i = 1;
    }
    if (i == n) {
        return false;
    }
    if (s[i] == '0') {
        if (neg || n - i != 1) {
            return false;
        }
        *out = 0;
        return true;
    }
    uint64_t max = neg ? (uint64_t)INT64_MAX + 1u : (uint64_t)INT64_MAX;
    uint64_t v = 0;
    for (; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c < '0' || c > '9') {
            return false;
        }
        uint64_t d = (uint64_t)(c - '0');
        if (v > (max - d) / 10u) {
            return false;
        }
        v = v * 10u + d;
    }
    if (!neg) {
        *out = (int64_t)v;
    } else if (v == (uint64_t)INT64_MAX + 1u) {
        *out = INT64_MIN;
    } else {
        *out = -(int64_t)v;
    }
    return true;
}

/* Finds the end of the "*N" or "$N" line starting at @start. On success *n
 * is the line's length up to its "\r". The decision only ever depends on
 * the first RESP_HEADER_BYTES_MAX + 2 bytes of the line, so the result is
 * the same however the input was split into reads. */
static int header_line(const char *req,
                       size_t avail,
                       size_t start,
                       size_t *n,
                       int too_long,
                       int invalid)
{
    size_t have = avail - start;
    size_t look =
        have < RESP_HEADER_BYTES_MAX + 1 ? have : RESP_HEADER_BYTES_MAX + 1;
    const char *cr = memchr(req + start, '\r', look);
    if (cr == NULL) {
        return have > RESP_HEADER_BYTES_MAX ? too_long : RESP_INCOMPLETE;
    }
    size_t i = (size_t)(cr - (req + start));
    if (i + 1 >= have) {
        return RESP_INCOMPLETE;
    }
    if (cr[1] != '\n') {
        return invalid;
    }
    *n = i;
    return 0;
}

/* Records argument argc at offset @off. Slots grow by doubling up to
 * @bound, which never exceeds args_max: memory follows the bytes actually
 * received, not the count a client announced. */
static int push_arg(struct resp_parser *p, size_t off, size_t len, size_t bound)
{
    if (p->argc == p->cap) {
        size_t want = p->cap < 8 ? 8 : p->cap * 2;
        if (want > bound || want < p->cap) {
            want = bound;
        }
        assert(want > p->cap);
        int rc = resp_grow_array(&p->alloc, &p->argv, want, sizeof(*p->argv));
        if (rc == 0) {
            rc = resp_grow_array(&p->alloc, &p->argvlen, want,
                                 sizeof(*p->argvlen));
        }
        if (rc == 0) {
            rc = resp_grow_array(&p->alloc, &p->argoff, want,
                                 sizeof(*p->argoff));
        }
        if (rc != 0) {
            return rc;
        }
        p->cap = want;
    }
    p->argoff[p->argc] = off;
    p->argvlen[p->argc] = len;
    p->argc++;
    return 0;
}

/* The bytes that separate inline arguments: C's isspace() in the "C"
 * locale, spelled out so that no locale can change the protocol. */
static bool is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' ||
           c == '\f';
}

static int hex_value(char c)
{
    if (c >= '0' && c <= '9') {
        return c - '0';
    }
    if (c >= 'a' && c <= 'f') {
        return c - 'a' + 10;
    }
    if (c >= 'A' && c <= 'F') {
        return c - 'A' + 10;
    }
    return -1;
}

/* Splits one inline line (without its "\r\n") into arguments, unescaped
 * into p->inline_buf, following the quoting rules of docs/resp.md:
 * arguments are separated by white space; "..." understands \xHH, \n, \r,
 * \t, \b, \a and \<any>; '...' understands only \'; a closing quote must be
 * followed by white space or the end of the line. */
static int split_inline(struct resp_parser *p, const char *line, size_t n)
{
    p->argc = 0;
    if (n > p->inline_cap) {
        int rc = resp_grow_array(&p->alloc, &p->inline_buf, n, 1);
        if (rc != 0) {
            return rc;
        }
        p->inline_cap = n;
    }
    /* Unescaping never lengthens an argument, so n bytes always suffice. */
    char *dst = p->inline_buf;
    size_t i = 0;
    size_t w = 0;
    for (;;) {
        while (i < n && is_space(line[i])) {
            i++;
        }
        if (i == n) {
            return 0;
        }
        size_t start = w;
        char quote = 0;
        for (;;) {
            if (quote == 0) {
                if (i == n || is_space(line[i])) {
                    break;
                }
                if (line[i] == '"' || line[i] == '\'') {
                    quote = line[i++];
                } else {
                    dst[w++] = line[i++];
                }
                continue;
            }
            if (i == n) {
                return RESP_EQUOTES;
            }
            char c = line[i];
            if (c == quote) {
                /* "a"b would be ambiguous; demanding a separator keeps
                 * every argument's boundaries obvious. */
                if (i + 1 < n && !is_space(line[i + 1])) {
                    return RESP_EQUOTES;
                }
                i++;
                break;
            }
            if (c == '\\' && quote == '\'') {
                if (i + 1 < n && line[i + 1] == '\'') {
                    dst[w++] = '\'';
                    i += 2;
                } else {
                    dst[w++] = line[i++];
                }
                continue;
            }
            if (c == '\\' && n - i >= 4 && line[i + 1] == 'x' &&
                hex_value(line[i + 2]) >= 0 && hex_value(line[i + 3]) >= 0) {
                int v = hex_value(line[i + 2]) * 16 + hex_value(line[i + 3]);
                dst[w++] = (char)(unsigned char)v;
                i += 4;
                continue;
            }
            if (c == '\\' && n - i >= 2) {
                char e = line[i + 1];
                dst[w++] = e == 'n'   ? '\n'
                           : e == 'r' ? '\r'
                           : e == 't' ? '\t'
                           : e == 'b' ? '\b'
                           : e == 'a' ? '\a'
                                      : e;
                i += 2;
                continue;
            }
            dst[w++] = line[i++];
        }
        if (p->argc == p->limits.args_max) {
            return RESP_EINLINEARGS;
        }
        int rc = push_arg(p, start, w - start, p->limits.args_max);
        if (rc != 0) {
            return rc;
        }
    }
}

static void finish_request(struct resp_parser *p,
                           const char *base,
                           struct resp_request *out,
                           bool inline_form)
{
    for (size_t i = 0; i < p->argc; i++) {
        p->argv[i] = base + p->argoff[i];
    }
    out->argc = p->argc;
    out->argv = p->argv;
    out->argvlen = p->argvlen;
    out->inline_form = inline_form;
    p->state = ST_START;
    p->scan = 0;
}

static void set_error(struct resp_parser *p, int rc, char got)
{
    p->error = rc;
    if (rc != RESP_EDOLLAR) {
        snprintf(p->errmsg, sizeof(p->errmsg), "ERR %s", resp_strerror(rc));
    } else if (got >= ' ' && got < 0x7f) {
        snprintf(p->errmsg, sizeof(p->errmsg), "ERR %s, got '%c'",
                 resp_strerror(rc), got);
    } else {
        /* A raw control byte would break the reply line, so it is shown
         * escaped. */
        snprintf(p->errmsg, sizeof(p->errmsg), "ERR %s, got '\\x%02x'",
                 resp_strerror(rc), (unsigned)(unsigned char)got);
    }
}

/* Reads "*N\r\n". A count of zero or less is an empty request that is
 * skipped, as Redis does. */
static int parse_mbulk_header(struct resp_parser *p,
                              const char *req,
                              size_t avail,
                              size_t *skip)
{
    size_t n;
    int64_t count;
    int rc = header_line(req, avail, 0, &n, RESP_EMBULKHDR, RESP_EMBULKLEN);
    if (rc != 0) {
        return rc;
    }
    if (!parse_i64(req + 1, n - 1, &count) ||
        (count > 0 && (uint64_t)count > p->limits.args_max)) {
        return RESP_EMBULKLEN;
    }
    if (n + 2 > p->limits.request_bytes_max) {
        return RESP_EREQUEST;
    }
    if (count <= 0) {
        *skip = n + 2;
        p->state = ST_START;
        return 0;
    }
    p->expect = (size_t)count;
    p->argc = 0;
    p->scan = n + 2;
    p->state = ST_BULK_HDR;
    return 0;
}

/* Reads "$N\r\n" and checks N against both the argument and the request
 * limit before waiting for a single byte of data. */
static int parse_bulk_header(struct resp_parser *p,
                             const char *req,
                             size_t avail)
{
    size_t n;
    int64_t blen;
    if (avail <= p->scan) {
        return RESP_INCOMPLETE;
    }
    if (req[p->scan] != '$') {
        return RESP_EDOLLAR;
    }
    int rc = header_line(req, avail, p->scan, &n, RESP_EBULKHDR, RESP_EBULKLEN);
    if (rc != 0) {
        return rc;
    }
    if (!parse_i64(req + p->scan + 1, n - 1, &blen) || blen < 0 ||
        (uint64_t)blen > p->limits.bulk_bytes_max) {
        return RESP_EBULKLEN;
    }
    /* Written as subtractions so that no sum can wrap. */
    size_t max = p->limits.request_bytes_max;
    if (p->scan > max || max - p->scan < n + 2) {
        return RESP_EREQUEST;
    }
    size_t room = max - p->scan - (n + 2);
    if (room < 2 || room - 2 < (uint64_t)blen) {
        return RESP_EREQUEST;
    }
    p->scan += n + 2;
    p->bulklen = (size_t)blen;
    p->state = ST_BULK_DATA;
    return 0;
}

static int parse_bulk_data(struct resp_parser *p, const char *req, size_t avail)
{
    if (avail - p->scan < p->bulklen + 2) {
        return RESP_INCOMPLETE;
    }
    size_t end = p->scan + p->bulklen;
    if (req[end] != '\r' || req[end + 1] != '\n') {
        return RESP_EBULKEND;
    }
    int rc = push_arg(p, p->scan, p->bulklen, p->expect);
    if (rc != 0) {
        return rc;
    }
    p->scan = end + 2;
    p->state = ST_BULK_HDR;
    return 0;
}

/* Looks for the end of an inline line. The line may hold inline_bytes_max
 * bytes before its "\n" (and request_bytes_max in all); the search resumes
 * where the previous call stopped. */
static int parse_inline(struct resp_parser *p,
                        const char *req,
                        size_t avail,
                        size_t *line_end)
{
    size_t lim = p->limits.inline_bytes_max;
    if (lim > p->limits.request_bytes_max - 1) {
        lim = p->limits.request_bytes_max - 1;
    }
    size_t stop = avail < lim + 1 ? avail : lim + 1;
    const char *nl = NULL;
    if (p->scan < stop) {
        nl = memchr(req + p->scan, '\n', stop - p->scan);
    }
    if (nl == NULL) {
        if (avail > lim) {
            return RESP_EINLINE;
        }
        p->scan = avail;
        return RESP_INCOMPLETE;
    }
    size_t i = (size_t)(nl - req);
    size_t n = i;
    if (n > 0 && req[n - 1] == '\r') {
        n--;
    }
    int rc = split_inline(p, req, n);
    if (rc != 0) {
        return rc;
    }
    *line_end = i + 1;
    return 0;
}

int resp_parse(struct resp_parser *p,
               const char *buf,
               size_t len,
               struct resp_request *out,
               size_t *consumed)
{
    size_t base = 0;
    int rc = 0;

    *consumed = 0;
    if (p->error != 0) {
        return p->error;
    }
    /* Fewer bytes than were already examined means the caller dropped or
     * lost unconsumed input; going on would read outside @buf. */
    if (p->state != ST_START && len < p->scan) {
        return RESP_EINVAL;
    }
    if (p->state == ST_START) {
        /* The previous request's views die here (see resp.h), so this is
         * the moment to give back memory a large one needed. */
        if (p->cap > ARGV_KEEP) {
            release_args(p);
        }
        if (p->inline_cap > INLINE_KEEP) {
            release_inline(p);
        }
    }
    for (;;) {
        const char *req = buf + base;
        size_t avail = len - base;
        size_t skip = 0;
        switch (p->state) {
        case ST_START:
            if (avail == 0) {
                rc = RESP_INCOMPLETE;
                goto out;
            }
            p->scan = 0;
            p->argc = 0;
            p->state = req[0] == '*' ? ST_MBULK_HDR : ST_INLINE;
            break;
        case ST_MBULK_HDR:
            rc = parse_mbulk_header(p, req, avail, &skip);
            if (rc != 0) {
                goto out;
            }
            base += skip;
            break;
        case ST_BULK_HDR:
            rc = parse_bulk_header(p, req, avail);
            if (rc != 0) {
                goto out;
            }
            break;
        case ST_BULK_DATA:
            rc = parse_bulk_data(p, req, avail);
            if (rc != 0) {
                goto out;
            }
            if (p->argc == p->expect) {
                base += p->scan;
                finish_request(p, req, out, false);
                goto out;
            }
            break;
        case ST_INLINE:
            rc = parse_inline(p, req, avail, &skip);
            if (rc != 0) {
                goto out;
            }
            base += skip;
            if (p->argc == 0) {
                /* A blank line is an empty request; skip it. */
                p->state = ST_START;
                break;
            }
            finish_request(p, p->inline_buf, out, true);
            goto out;
        default:
            assert(0 && "resp parser in an unknown state");
            return RESP_EINVAL;
        }
    }
out:
    *consumed = base;
    if (rc != 0 && rc != RESP_INCOMPLETE && rc != RESP_ENOMEM) {
        const char *req = buf + base;
        set_error(p, rc, rc == RESP_EDOLLAR ? req[p->scan] : 0);
    }
    return rc;
}
