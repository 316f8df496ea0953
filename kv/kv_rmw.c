/*
 * kv_rmw.c - the read-modify-write operations the state machine evaluates
 * at apply time (KV_OP_INCRBY, KV_OP_APPEND, KV_OP_INCRBYFLOAT).
 *
 * A client's INCR used to be a read on the leader followed by a write
 * guarded by the key's revision: one Raft round per increment of a hot
 * key, since every increment had to see the previous one applied. Here
 * the new value is computed from whatever the key holds when the entry is
 * applied, so any number of increments of one key can share a Raft round,
 * each getting the value it produced, exactly as if run one by one in log
 * order. The evaluation depends only on the old value and the op's bytes,
 * so every replica computes the same result. It follows Redis's rules
 * (t_string.c: string2ll, incrbyfloatCommand, ld2string) so that replies
 * match Redis's; a refusal (not an integer, overflow, too large, not a
 * number) writes nothing and is reported in the result.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kv_internal.h"

#define RMW_FLOAT_TEXT_MAX KV_RMW_TEXT_MAX
/* Longest canonical decimal of a 64-bit integer ("-9223372036854775808"). */
#define RMW_INT_TEXT_MAX 20u

int kv_rmw_parse_i64(const uint8_t *s, size_t len, int64_t *out)
{
    /* Redis's string2ll: an optional '-', then digits without leading
     * zeros ("0" alone is fine); no spaces, no '+'. */
    if (len == 0 || len > RMW_INT_TEXT_MAX) {
        return -1;
    }
    size_t i = 0;
    bool neg = false;
    if (s[0] == '-') {
        neg = true;
        i = 1;
        if (len == 1) {
            return -1;
        }
    }
    if (s[i] == '0' && len > i + 1) {
        return -1;
    }
    if (s[i] == '0' && neg) {
        return -1; /* "-0" is not canonical */
    }
    uint64_t v = 0;
    for (; i < len; i++) {
        if (s[i] < '0' || s[i] > '9') {
            return -1;
        }
        uint64_t d = (uint64_t)(s[i] - '0');
        if (v > (UINT64_MAX - d) / 10u) {
            return -1;
        }
        v = v * 10u + d;
    }
    if (neg) {
        if (v > (uint64_t)INT64_MAX + 1u) {
            return -1;
        }
        *out = v == (uint64_t)INT64_MAX + 1u ? INT64_MIN : -(int64_t)v;
    } else {
        if (v > (uint64_t)INT64_MAX) {
            return -1;
        }
        *out = (int64_t)v;
    }
    return 0;
}

/* Redis's string2ld: the whole text as a long double, no leading space,
 * not NaN, no overflow. */
static int parse_ld(const uint8_t *s, size_t len, long double *out)
{
    char buf[RMW_FLOAT_TEXT_MAX + 1];
    if (len == 0 || len >= sizeof(buf)) {
        return -1;
    }
    memcpy(buf, s, len);
    buf[len] = '\0';
    if (memchr(buf, '\0', len) != NULL) {
        return -1; /* an embedded NUL would end the number early */
    }
    char *end = NULL;
    errno = 0;
    long double v = strtold(buf, &end);
    if (buf[0] == ' ' || (buf[0] >= '\t' && buf[0] <= '\r') || *end != '\0' ||
        (errno == ERANGE &&
         (v == HUGE_VALL || v == -HUGE_VALL || fpclassify(v) == FP_ZERO)) ||
        isnan(v)) {
        return -1;
    }
    *out = v;
    return 0;
}

/* Redis's ld2string in human-friendly mode: "%.17Lf" without trailing
 * zeros (and without a trailing '.'), "-0" as "0". Returns the length or
 * -1. */
static int format_ld(long double v, char *buf, size_t cap)
{
    int l = snprintf(buf, cap, "%.17Lf", v);
    if (l < 0 || (size_t)l + 1 > cap) {
        return -1;
    }
    if (strchr(buf, '.') != NULL) {
        char *p = buf + l - 1;
        while (*p == '0') {
            p--;
            l--;
        }
        if (*p == '.') {
            l--;
        }
    }
    if (l == 2 && buf[0] == '-' && buf[1] == '0') {
        buf[0] = '0';
        l = 1;
    }
    return l;
}

int kv_rmw_eval_number(uint8_t type,
                       const uint8_t *old,
                       uint32_t old_len,
                       bool exists,
                       int64_t delta,
                       const uint8_t *incr,
                       uint32_t incr_len,
                       char *out,
                       size_t cap,
                       uint32_t *out_len,
                       uint64_t *refusal)
{
    int n;
    *out_len = 0;
    *refusal = KV_RMW_APPLIED;
    if (type == KV_OP_INCRBY) {
        int64_t cur = 0;
        if (exists && kv_rmw_parse_i64(old, old_len, &cur) != 0) {
            *refusal = KV_RMW_NOT_INTEGER;
            return 0;
        }
        int64_t d = delta;
        if ((d < 0 && cur < 0 && d < INT64_MIN - cur) ||
            (d > 0 && cur > 0 && d > INT64_MAX - cur)) {
            *refusal = KV_RMW_OVERFLOW;
            return 0;
        }
        n = snprintf(out, cap, "%lld", (long long)(cur + d));
    } else {
        long double cur = 0, inc = 0;
        if ((exists && parse_ld(old, old_len, &cur) != 0) ||
            parse_ld(incr, incr_len, &inc) != 0) {
            *refusal = KV_RMW_NOT_FLOAT;
            return 0;
        }
        cur += inc;
        if (isnan(cur) || isinf(cur)) {
            *refusal = KV_RMW_NAN_OR_INF;
            return 0;
        }
        n = format_ld(cur, out, cap);
    }
    if (n <= 0 || (size_t)n >= cap) {
        *refusal = type == KV_OP_INCRBY ? KV_RMW_OVERFLOW : KV_RMW_NOT_FLOAT;
        return 0;
    }
    *out_len = (uint32_t)n;
    return 0;
}

int kv_rmw_eval(const struct kv_op *op,
                const struct kv_kv *old,
                const struct kv_allocator *alloc,
                uint8_t **out,
                uint32_t *out_len,
                uint64_t *refusal)
{
    struct kv_allocator resolved;
    const struct kv_allocator *a = &resolved;
    kv_allocator_resolve(alloc, &resolved);
    *out = NULL;
    *out_len = 0;
    *refusal = KV_RMW_APPLIED;
    if (old != NULL && old->type != KV_TYPE_STRING) {
        *refusal = KV_RMW_WRONGTYPE;
        return 0;
    }
    switch (op->type) {
    case KV_OP_INCRBY:
    case KV_OP_INCRBYFLOAT: {
        char buf[RMW_FLOAT_TEXT_MAX];
        uint32_t n = 0;
        int rv = kv_rmw_eval_number(
            op->type, old != NULL ? old->value : NULL,
            old != NULL ? old->value_len : 0, old != NULL, op->delta, op->value,
            op->value_len, buf, sizeof(buf), &n, refusal);
        if (rv != 0 || *refusal != KV_RMW_APPLIED) {
            return rv;
        }
        if ((*out = kv_malloc(a, n)) == NULL) {
            return KV_ENOMEM;
        }
        memcpy(*out, buf, n);
        *out_len = n;
        return 0;
    }
    case KV_OP_APPEND: {
        uint64_t before = old != NULL ? old->value_len : 0;
        uint64_t total = before + op->value_len;
        if (total > KV_VALUE_BYTES_MAX) {
            *refusal = KV_RMW_TOO_LARGE;
            return 0;
        }
        if ((*out = kv_malloc(a, total > 0 ? (size_t)total : 1)) == NULL) {
            return KV_ENOMEM;
        }
        if (before > 0) {
            memcpy(*out, old->value, (size_t)before);
        }
        if (op->value_len > 0) {
            memcpy(*out + before, op->value, op->value_len);
        }
        *out_len = (uint32_t)total;
        return 0;
    }
    default:
        return KV_EBADCMD;
    }
}
