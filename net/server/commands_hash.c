/*
 * commands_hash.c - Redis's hash commands (docs/protocol.md, "Hashes").
 *
 * Writes are one kv command each, evaluated by the state machine when the
 * entry is applied (kv_hash.c), so they propose at once like a plain SET
 * and many of them on one hot hash share a Raft round:
 *
 *   HSET, HMSET, HSETNX   KV_CMD_HSET (HSETNX with KV_HASH_NX)
 *   HDEL                  KV_CMD_HDEL
 *   HINCRBY               KV_CMD_HINCRBY
 *   HINCRBYFLOAT          KV_CMD_HINCRBYFLOAT
 *
 * The reply comes from the entry's result: the op's answer, or its
 * refusal (WRONGTYPE when the key holds a string). Reads (HGET, HMGET,
 * HEXISTS, HLEN, HSTRLEN, HGETALL, HKEYS, HVALS, HSCAN) run behind a read
 * barrier on kv_hash_read(). Hash commands are not run between MULTI and
 * EXEC (the transaction's view holds strings only): WATCH on a hash key,
 * though, aborts an EXEC after any change of the hash.
 */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "commands.h"
#include "glob.h"
#include "kv.h"

/* What a write's reply is built from. */
enum hash_reply {
    HASH_REPLY_INT,  /* HSET, HSETNX, HDEL, HINCRBY: the answer */
    HASH_REPLY_OK,   /* HMSET */
    HASH_REPLY_BULK, /* HINCRBYFLOAT: the new value */
};

struct hash_req
{
    struct cmd_req *r;
    uint8_t op_type;
    enum hash_reply reply;
    uint8_t *packed; /* the packed list, freed once proposed */
};

static void rep_hash_refusal(struct cmd_req *r, uint64_t refusal)
{
    switch (refusal) {
    case KV_RMW_WRONGTYPE:
        rep_error(r, kv_strerror(KV_EWRONGTYPE));
        break;
    case KV_RMW_NOT_INTEGER:
        rep_error(r, "ERR hash value is not an integer");
        break;
    case KV_RMW_OVERFLOW:
        rep_error(r, "ERR increment or decrement would overflow");
        break;
    case KV_RMW_NOT_FLOAT:
        rep_error(r, "ERR hash value is not a float");
        break;
    case KV_RMW_NAN_OR_INF:
        rep_error(r, "ERR increment would produce NaN or Infinity");
        break;
    case KV_RMW_HASH_FULL:
        rep_errorf(r, "ERR hash full: ballot's limit is %u fields",
                   KV_HASH_FIELDS_MAX);
        break;
    default:
        rep_errorf(r, "ERR hash update refused (%llu)",
                   (unsigned long long)refusal);
        break;
    }
}

static void hash_done(void *arg, int status, const struct kv_entry_result *res)
{
    struct hash_req q = *(struct hash_req *)arg;
    struct cmd_req *r = q.r;
    free(arg);
    if (!cmd_kept_result_ok(r, status, res, 0, 0)) {
        cmd_req_finish(r);
        return;
    }
    if (res->n_ops != 1 || res->ops[0].type != q.op_type) {
        rep_applied_by_another(r, res);
        cmd_req_finish(r);
        return;
    }
    const struct kv_op_result *o = &res->ops[0];
    if (o->count != KV_RMW_APPLIED || o->n_kvs != 1) {
        rep_hash_refusal(r, o->count);
    } else if (q.reply == HASH_REPLY_OK) {
        rep_ok(r);
    } else if (q.reply == HASH_REPLY_BULK) {
        rep_bulk(r, o->kvs[0].value, o->kvs[0].value_len);
    } else {
        int64_t v = 0;
        (void)cmd_parse_i64((const char *)o->kvs[0].value, o->kvs[0].value_len,
                            &v);
        rep_int(r, v);
    }
    cmd_req_finish(r);
}

/* Checks a field's length against the key it goes with; replies and
 * returns false if it does not fit. */
static bool check_field(struct cmd_req *r, size_t key_len, size_t field_len)
{
    if (field_len > KV_KEY_BYTES_MAX ||
        !kv_hash_field_fits((uint32_t)key_len, (uint32_t)field_len)) {
        rep_errorf(r,
                   "ERR hash field too long: ballot's limit is %u bytes for "
                   "the key and the field together",
                   KV_KEY_BYTES_MAX - KV_HASH_FIELD_KEY_OVERHEAD);
        return false;
    }
    return true;
}

/* Redis's string2ld on an increment: the whole argument is a finite
 * number, without leading space. */
static bool valid_float(const char *s, size_t len)
{
    char buf[512];
    if (len == 0 || len >= sizeof(buf) || s[0] == ' ' ||
        (s[0] >= '\t' && s[0] <= '\r')) {
        return false;
    }
    memcpy(buf, s, len);
    buf[len] = '\0';
    if (strlen(buf) != len) {
        return false;
    }
    char *end = NULL;
    errno = 0;
    long double v = strtold(buf, &end);
    return *end == '\0' && !isnan(v) && !isinf(v) && errno != ERANGE;
}

/* Packs argv[@from..@argc) (fields, or field value pairs) into a new
 * allocation for KV_OP_HSET/KV_OP_HDEL; NULL after replying if a field
 * does not fit, the list exceeds KV_VALUE_BYTES_MAX or memory runs out. */
static uint8_t *pack(struct cmd_req *r,
                     size_t argc,
                     const char *const *argv,
                     const size_t *argvlen,
                     size_t from,
                     bool pairs,
                     uint32_t *len)
{
    size_t step = pairs ? 2 : 1;
    size_t n = (argc - from) / step;
    uint64_t total = 0;
    for (size_t i = from; i < argc; i += step) {
        if (!check_field(r, argvlen[1], argvlen[i])) {
            return NULL;
        }
        total += 4 + (uint64_t)argvlen[i];
        if (pairs) {
            total += 4 + (uint64_t)argvlen[i + 1];
        }
    }
    if (total > KV_VALUE_BYTES_MAX) {
        rep_errorf(r,
                   "ERR hash update too large: ballot's limit is %u bytes of "
                   "fields and values in one command",
                   KV_VALUE_BYTES_MAX);
        return NULL;
    }
    uint8_t *out = malloc(total > 0 ? (size_t)total : 1);
    const uint8_t **f = malloc(n * sizeof(*f) + 1);
    const uint8_t **v = malloc(n * sizeof(*v) + 1);
    size_t *fl = malloc(n * sizeof(*fl) + 1);
    size_t *vl = malloc(n * sizeof(*vl) + 1);
    if (out != NULL && f != NULL && v != NULL && fl != NULL && vl != NULL) {
        for (size_t i = 0; i < n; i++) {
            f[i] = (const uint8_t *)argv[from + step * i];
            fl[i] = argvlen[from + step * i];
            if (pairs) {
                v[i] = (const uint8_t *)argv[from + step * i + 1];
                vl[i] = argvlen[from + step * i + 1];
            }
        }
        kv_hash_pairs_encode(n, f, fl, pairs ? v : NULL, vl, out);
        *len = (uint32_t)total;
    } else {
        free(out);
        out = NULL;
        rep_error(r, "ERR out of memory");
    }
    free(f);
    free(v);
    free(fl);
    free(vl);
    return out;
}

static bool name_is(const char *const *argv,
                    const size_t *argvlen,
                    const char *word)
{
    return cmd_arg_is(argv[0], argvlen[0], word);
}

CMD_DECL(cmd_hash_write)
{
    struct hash_req q;
    struct kv_cmd cmd;
    memset(&q, 0, sizeof(q));
    memset(&cmd, 0, sizeof(cmd));
    q.r = r;
    q.reply = HASH_REPLY_INT;
    if (!cmd_check_key(r, argvlen[1])) {
        goto reply;
    }
    cmd.op.key = (const uint8_t *)argv[1];
    cmd.op.key_len = (uint32_t)argvlen[1];
    if (name_is(argv, argvlen, "hset") || name_is(argv, argvlen, "hmset") ||
        name_is(argv, argvlen, "hsetnx")) {
        bool nx = name_is(argv, argvlen, "hsetnx");
        if ((argc - 2) % 2 != 0 || (nx && argc != 4)) {
            rep_arity_error(r, nx                               ? "hsetnx"
                               : name_is(argv, argvlen, "hset") ? "hset"
                                                                : "hmset");
            goto reply;
        }
        q.op_type = KV_OP_HSET;
        q.reply =
            name_is(argv, argvlen, "hmset") ? HASH_REPLY_OK : HASH_REPLY_INT;
        cmd.op.flags = nx ? KV_HASH_NX : 0;
        q.packed = pack(r, argc, argv, argvlen, 2, true, &cmd.op.value_len);
    } else if (name_is(argv, argvlen, "hdel")) {
        q.op_type = KV_OP_HDEL;
        q.packed = pack(r, argc, argv, argvlen, 2, false, &cmd.op.value_len);
    } else {
        bool flt = name_is(argv, argvlen, "hincrbyfloat");
        if (!check_field(r, argvlen[1], argvlen[2])) {
            goto reply;
        }
        cmd.op.end = (const uint8_t *)argv[2];
        cmd.op.end_len = (uint32_t)argvlen[2];
        if (flt) {
            if (!valid_float(argv[3], argvlen[3])) {
                rep_error(r, "ERR value is not a valid float");
                goto reply;
            }
            q.op_type = KV_OP_HINCRBYFLOAT;
            q.reply = HASH_REPLY_BULK;
            cmd.op.value = (const uint8_t *)argv[3];
            cmd.op.value_len = (uint32_t)argvlen[3];
        } else {
            if (cmd_parse_i64(argv[3], argvlen[3], &cmd.op.delta) != 0) {
                rep_error(r, "ERR value is not an integer or out of range");
                goto reply;
            }
            q.op_type = KV_OP_HINCRBY;
        }
    }
    if ((q.op_type == KV_OP_HSET || q.op_type == KV_OP_HDEL) &&
        q.packed == NULL) {
        goto reply; /* pack() replied */
    }
    cmd.type = q.op_type;
    cmd.op.type = q.op_type;
    cmd.op.value = q.packed != NULL ? q.packed : cmd.op.value;
    struct hash_req *p = malloc(sizeof(*p));
    if (p == NULL) {
        rep_error(r, "ERR out of memory");
        goto reply;
    }
    *p = q;
    p->packed = NULL;
    cmd_propose(r, &cmd, hash_done, p);
    free(q.packed);
    return;
reply:
    free(q.packed);
    cmd_req_finish(r);
}

/* ---------------------------------------------------------------------- */
/* Reads                                                                   */

/* Replies with a store error of a hash read; true if there was one. A
 * missing key is no error: it reads as an empty hash. */
static bool read_failed(struct cmd_req *r, int rv)
{
    if (rv == 0 || rv == KV_ENOTFOUND) {
        return false;
    }
    if (rv == KV_EWRONGTYPE) {
        rep_error(r, kv_strerror(KV_EWRONGTYPE));
    } else {
        rep_errorf(r, "ERR store read failed: %s", kv_strerror(rv));
    }
    return true;
}

static bool key_storable(size_t len)
{
    return len > 0 && len <= KV_KEY_BYTES_MAX;
}

/* HGET, HMGET, HEXISTS, HSTRLEN: fields by name. */
static void fields_read(struct cmd_req *r,
                        struct kv_store *kv,
                        size_t argc,
                        const char *const *argv,
                        const size_t *argvlen)
{
    size_t n = name_is(argv, argvlen, "hmget") ? argc - 2 : 1;
    const uint8_t **f = malloc(n * sizeof(*f));
    uint32_t *fl = malloc(n * sizeof(*fl));
    struct kv_range_result res;
    memset(&res, 0, sizeof(res));
    int rv = KV_ENOTFOUND;
    if (f == NULL || fl == NULL) {
        rep_error(r, "ERR out of memory");
        goto done;
    }
    for (size_t i = 0; i < n; i++) {
        f[i] = (const uint8_t *)argv[2 + i];
        fl[i] = argvlen[2 + i] > KV_KEY_BYTES_MAX ? KV_KEY_BYTES_MAX + 1
                                                  : (uint32_t)argvlen[2 + i];
    }
    if (key_storable(argvlen[1])) {
        rv = kv_hash_read(kv, (const uint8_t *)argv[1], (uint32_t)argvlen[1], f,
                          fl, n, NULL, 0, 0, false, &res);
    }
    if (read_failed(r, rv)) {
        goto done;
    }
    bool found = rv == 0;
    if (name_is(argv, argvlen, "hmget")) {
        rep_array(r, n);
    }
    for (size_t i = 0; i < n; i++) {
        const struct kv_kv *p = found ? &res.kvs[i] : NULL;
        bool has = p != NULL && p->value != NULL;
        if (name_is(argv, argvlen, "hexists")) {
            rep_int(r, has ? 1 : 0);
        } else if (name_is(argv, argvlen, "hstrlen")) {
            rep_int(r, has ? p->value_len : 0);
        } else if (has) {
            rep_bulk(r, p->value, p->value_len);
        } else {
            rep_null(r);
        }
    }
done:
    kv_range_result_free(&res);
    free(f);
    free(fl);
}

static void hlen_read(struct cmd_req *r,
                      struct kv_store *kv,
                      size_t argc,
                      const char *const *argv,
                      const size_t *argvlen)
{
    struct kv_range_result res;
    (void)argc;
    memset(&res, 0, sizeof(res));
    int rv = KV_ENOTFOUND;
    if (key_storable(argvlen[1])) {
        /* One field past the end: only the count is wanted. */
        rv = kv_hash_read(kv, (const uint8_t *)argv[1], (uint32_t)argvlen[1],
                          NULL, NULL, 0, NULL, 0, 1, true, &res);
    }
    if (!read_failed(r, rv)) {
        rep_int(r, rv == 0 ? (int64_t)res.count : 0);
    }
    kv_range_result_free(&res);
}

/* Every field of a hash, page by page (each page one read transaction of
 * at most KV_RANGE_BYTES_MAX; a hash larger than that is not read at one
 * point in time, like KEYS). The pages are kept in @pages (room for
 * CMD_HASH_PAGES_MAX). Returns the number of pages, 0 for a missing key,
 * or -1 after replying. */
#define CMD_HASH_PAGES_MAX 64u
static int read_all(struct cmd_req *r,
                    struct kv_store *kv,
                    const char *key,
                    size_t key_len,
                    bool keys_only,
                    struct kv_range_result *pages)
{
    int n = 0;
    const uint8_t *after = NULL;
    uint32_t after_len = 0;
    if (!key_storable(key_len)) {
        return 0;
    }
    for (;;) {
        if (n == (int)CMD_HASH_PAGES_MAX) {
            rep_errorf(r,
                       "ERR hash too large to read whole (over %u pages of "
                       "%u bytes): read it with HSCAN or HMGET",
                       CMD_HASH_PAGES_MAX, KV_RANGE_BYTES_MAX);
            return -1;
        }
        struct kv_range_result *p = &pages[n];
        int rv = kv_hash_read(kv, (const uint8_t *)key, (uint32_t)key_len, NULL,
                              NULL, 0, after, after_len, 0, keys_only, p);
        if (rv == KV_ENOTFOUND && n > 0) {
            /* The hash went between pages: what was read stands. */
            kv_range_result_free(p);
            return n;
        }
        if (read_failed(r, rv)) {
            kv_range_result_free(p);
            return -1;
        }
        if (rv == KV_ENOTFOUND) {
            kv_range_result_free(p);
            return 0;
        }
        n++;
        if (!p->more || p->n_kvs == 0) {
            return n;
        }
        after = p->kvs[p->n_kvs - 1].key;
        after_len = p->kvs[p->n_kvs - 1].key_len;
    }
}

/* HGETALL, HKEYS, HVALS; HSCAN (one call returns the whole hash, cursor
 * 0, as Redis does for small hashes; MATCH filters, COUNT is a hint). */
static void all_read(struct cmd_req *r,
                     struct kv_store *kv,
                     size_t argc,
                     const char *const *argv,
                     const size_t *argvlen)
{
    bool scan = name_is(argv, argvlen, "hscan");
    bool keys = name_is(argv, argvlen, "hkeys");
    bool vals = name_is(argv, argvlen, "hvals");
    struct glob *g = NULL;
    struct kv_range_result *pages = calloc(CMD_HASH_PAGES_MAX, sizeof(*pages));
    if (pages == NULL) {
        rep_error(r, "ERR out of memory");
        return;
    }
    if (scan) {
        for (size_t i = 3; i < argc; i += 2) {
            int64_t count = 0;
            if (i + 1 >= argc) {
                rep_error(r, "ERR syntax error");
                goto done;
            }
            if (cmd_arg_is(argv[i], argvlen[i], "match")) {
                glob_free(g);
                g = NULL;
                if (glob_compile(argv[i + 1], argvlen[i + 1], KV_KEY_BYTES_MAX,
                                 false, &g) != 0) {
                    rep_error(r, "ERR out of memory");
                    goto done;
                }
            } else if (cmd_arg_is(argv[i], argvlen[i], "count")) {
                if (cmd_parse_i64(argv[i + 1], argvlen[i + 1], &count) != 0) {
                    rep_error(r, "ERR value is not an integer or out of range");
                    goto done;
                }
                if (count < 1) {
                    rep_error(r, "ERR syntax error");
                    goto done;
                }
            } else {
                rep_error(r, "ERR syntax error");
                goto done;
            }
        }
    }
    int n = read_all(r, kv, argv[1], argvlen[1], keys, pages);
    if (n < 0) {
        goto done;
    }
    size_t total = 0;
    for (int i = 0; i < n; i++) {
        for (size_t j = 0; j < pages[i].n_kvs; j++) {
            const struct kv_kv *p = &pages[i].kvs[j];
            total +=
                g == NULL || glob_match(g, (const char *)p->key, p->key_len);
        }
    }
    if (scan) {
        rep_array(r, 2);
        rep_bulk(r, "0", 1);
        rep_array(r, 2 * total);
    } else if (keys || vals) {
        rep_array(r, total);
    } else {
        rep_map(r, total);
    }
    for (int i = 0; i < n; i++) {
        for (size_t j = 0; j < pages[i].n_kvs; j++) {
            const struct kv_kv *p = &pages[i].kvs[j];
            if (g != NULL && !glob_match(g, (const char *)p->key, p->key_len)) {
                continue;
            }
            if (!vals) {
                rep_bulk(r, p->key, p->key_len);
            }
            if (!keys) {
                rep_bulk(r, p->value, p->value_len);
            }
        }
    }
done:
    for (unsigned i = 0; i < CMD_HASH_PAGES_MAX; i++) {
        kv_range_result_free(&pages[i]);
    }
    free(pages);
    glob_free(g);
}

CMD_DECL(cmd_hash_read)
{
    cmd_read_fn fn = all_read;
    if (name_is(argv, argvlen, "hget") || name_is(argv, argvlen, "hmget") ||
        name_is(argv, argvlen, "hexists") ||
        name_is(argv, argvlen, "hstrlen")) {
        fn = fields_read;
    } else if (name_is(argv, argvlen, "hlen")) {
        fn = hlen_read;
    } else if (name_is(argv, argvlen, "hscan")) {
        /* Redis checks the cursor before anything else. */
        int64_t cur = 0;
        if (cmd_parse_i64(argv[2], argvlen[2], &cur) != 0 || cur < 0) {
            rep_error(r, "ERR invalid cursor");
            cmd_req_finish(r);
            return;
        }
    }
    cmd_read_start(r, fn, argc, argv, argvlen);
}
