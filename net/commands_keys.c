/*
 * commands_keys.c - commands over many keys (DEL, KEYS, SCAN, DBSIZE) and
 * the native ones Redis lacks (BRANGE, BTXN). Each builds one kv read or
 * one kv command directly, without the view of commands_view.c.
 */
#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bnode.h"
#include "commands.h"
#include "kv.h"

/* ---------------------------------------------------------------------- */
/* Glob matching                                                           */

static unsigned char fold(unsigned char c, bool nocase)
{
    return nocase && c >= 'A' && c <= 'Z' ? (unsigned char)(c + 32) : c;
}

/* Matches one bracket class at @p (just after '['); advances *pi past the
 * closing ']' (or to the end if there is none) and returns whether @c is
 * in the class. */
static bool match_class(const char *p,
                        size_t plen,
                        size_t *pi,
                        unsigned char c,
                        bool nocase)
{
    size_t i = *pi;
    bool neg = false;
    bool hit = false;
    if (i < plen && p[i] == '^') {
        neg = true;
        i++;
    }
    for (; i < plen && p[i] != ']'; i++) {
        if (p[i] == '\\' && i + 1 < plen) {
            i++;
            hit |= fold((unsigned char)p[i], nocase) == fold(c, nocase);
        } else if (i + 2 < plen && p[i + 1] == '-' && p[i + 2] != ']') {
            unsigned char lo = fold((unsigned char)p[i], nocase);
            unsigned char hi = fold((unsigned char)p[i + 2], nocase);
            unsigned char x = fold(c, nocase);
            if (lo > hi) {
                unsigned char t = lo;
                lo = hi;
                hi = t;
            }
            hit |= x >= lo && x <= hi;
            i += 2;
        } else {
            hit |= fold((unsigned char)p[i], nocase) == fold(c, nocase);
        }
    }
    *pi = i < plen ? i + 1 : i;
    return neg ? !hit : hit;
}

bool cmd_glob_match(const char *p,
                    size_t plen,
                    const char *s,
                    size_t slen,
                    bool nocase)
{
    /* Iterative matching with one backtrack point for the last '*': linear
     * in practice and never recursive, so a hostile pattern cannot blow the
     * stack. */
    size_t pi = 0, si = 0;
    size_t star_p = SIZE_MAX, star_s = 0;
    while (si < slen) {
        if (pi < plen) {
            char pc = p[pi];
            if (pc == '*') {
                while (pi < plen && p[pi] == '*') {
                    pi++;
                }
                if (pi == plen) {
                    return true;
                }
                star_p = pi;
                star_s = si;
                continue;
            }
            if (pc == '?') {
                pi++;
                si++;
                continue;
            }
            if (pc == '[') {
                size_t next = pi + 1;
                if (match_class(p, plen, &next, (unsigned char)s[si], nocase)) {
                    pi = next;
                    si++;
                    continue;
                }
            } else {
                size_t at = pi;
                if (pc == '\\' && pi + 1 < plen) {
                    at = pi + 1;
                }
                if (fold((unsigned char)p[at], nocase) ==
                    fold((unsigned char)s[si], nocase)) {
                    pi = at + 1;
                    si++;
                    continue;
                }
            }
        }
        if (star_p == SIZE_MAX) {
            return false;
        }
        pi = star_p;
        si = ++star_s;
    }
    while (pi < plen && p[pi] == '*') {
        pi++;
    }
    return pi == plen;
}

/* The literal bytes a pattern's matches must start with. */
static size_t glob_prefix(const char *p, size_t plen)
{
    size_t i = 0;
    while (i < plen && p[i] != '*' && p[i] != '?' && p[i] != '[' &&
           p[i] != '\\') {
        i++;
    }
    return i;
}

/* The first key after every key starting with @prefix, or an empty end
 * (0: no bound) if the prefix is all 0xff. */
static size_t prefix_end(const uint8_t *prefix, size_t len, uint8_t *out)
{
    memcpy(out, prefix, len);
    while (len > 0 && out[len - 1] == 0xff) {
        len--;
    }
    if (len > 0) {
        out[len - 1]++;
    }
    return len;
}

/* ---------------------------------------------------------------------- */
/* Reads behind a barrier                                                  */

typedef void (*read_fn)(struct cmd_req *r,
                        struct kv_store *kv,
                        size_t argc,
                        const char *const *argv,
                        const size_t *argvlen);

struct read_run
{
    struct cmd_req *r;
    read_fn fn;
    size_t argc;
    const char **argv;
    size_t *argvlen;
};

static void read_on_barrier(void *arg, int status)
{
    struct read_run *run = arg;
    struct cmd_req *r = run->r;
    if (status != 0) {
        rep_node_error(r, status, false);
    } else {
        run->fn(r, bnode_kv(r->client->env->node), run->argc, run->argv,
                run->argvlen);
    }
    free(run->argv);
    free(run);
    cmd_req_finish(r);
}

/* Copies the arguments and runs @fn behind a read barrier (linearizable
 * unless the connection asked for READONLY). */
static void read_start(struct cmd_req *r,
                       read_fn fn,
                       size_t argc,
                       const char *const *argv,
                       const size_t *argvlen)
{
    struct read_run *run = calloc(1, sizeof(*run));
    size_t bytes = argc * (sizeof(char *) + sizeof(size_t));
    for (size_t i = 0; i < argc; i++) {
        bytes += argvlen[i] + 1;
    }
    char *mem = run ? malloc(bytes) : NULL;
    if (mem == NULL) {
        free(run);
        rep_error(r, "ERR out of memory");
        cmd_req_finish(r);
        return;
    }
    run->r = r;
    run->fn = fn;
    run->argc = argc;
    run->argv = (const char **)mem;
    run->argvlen = (size_t *)(mem + argc * sizeof(char *));
    char *p = (char *)(run->argvlen + argc);
    for (size_t i = 0; i < argc; i++) {
        memcpy(p, argv[i], argvlen[i]);
        p[argvlen[i]] = '\0';
        run->argv[i] = p;
        run->argvlen[i] = argvlen[i];
        p += argvlen[i] + 1;
    }
    int rc = bnode_read(r->client->env->node, !r->client->readonly,
                        read_on_barrier, run);
    if (rc != 0) {
        free(run->argv);
        free(run);
        rep_node_error(r, rc, false);
        cmd_req_finish(r);
    }
}

/* ---------------------------------------------------------------------- */
/* DBSIZE, KEYS                                                            */

static void dbsize_read(struct cmd_req *r,
                        struct kv_store *kv,
                        size_t argc,
                        const char *const *argv,
                        const size_t *argvlen)
{
    struct kv_status st;
    (void)argc;
    (void)argv;
    (void)argvlen;
    int rc = kv_status(kv, &st);
    if (rc != 0) {
        rep_errorf(r, "ERR store read failed: %s", kv_strerror(rc));
        return;
    }
    rep_int(r, (int64_t)st.keys);
}

CMD_DECL(cmd_dbsize)
{
    read_start(r, dbsize_read, argc, argv, argvlen);
}

struct key_list
{
    struct
    {
        uint8_t *key;
        uint32_t len;
    } * v;
    size_t n, cap, bytes;
};

static int key_list_add(struct key_list *l, const uint8_t *k, uint32_t len)
{
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 16;
        void *nv = realloc(l->v, cap * sizeof(*l->v));
        if (nv == NULL) {
            return -1;
        }
        l->v = nv;
        l->cap = cap;
    }
    l->v[l->n].key = malloc(len ? len : 1);
    if (l->v[l->n].key == NULL) {
        return -1;
    }
    memcpy(l->v[l->n].key, k, len);
    l->v[l->n].len = len;
    l->n++;
    l->bytes += len + 16;
    return 0;
}

static void key_list_free(struct key_list *l)
{
    for (size_t i = 0; i < l->n; i++) {
        free(l->v[i].key);
    }
    free(l->v);
    memset(l, 0, sizeof(*l));
}

static void keys_read(struct cmd_req *r,
                      struct kv_store *kv,
                      size_t argc,
                      const char *const *argv,
                      const size_t *argvlen)
{
    const char *pat = argv[1];
    size_t plen = argvlen[1];
    size_t pre = glob_prefix(pat, plen);
    uint8_t start[KV_KEY_BYTES_MAX];
    uint8_t end[KV_KEY_BYTES_MAX];
    size_t start_len = 0;
    size_t end_len = 0;
    bool skip_first = false;
    struct key_list out = {0};
    (void)argc;
    if (pre > KV_KEY_BYTES_MAX) {
        rep_array(r, 0); /* no stored key is that long */
        return;
    }
    memcpy(start, pat, pre);
    start_len = pre;
    end_len = prefix_end(start, pre, end);
    if (end_len == 0) {
        end[0] = 0; /* one zero byte: no upper bound */
        end_len = 1;
    }
    /* A range read stops at KV_RANGE_BYTES_MAX; continue from its last
     * key (returned again, and skipped) until the range is done. */
    for (;;) {
        struct kv_range_req req = {start,
                                   end,
                                   (uint32_t)start_len,
                                   (uint32_t)end_len,
                                   KV_FLAG_KEYS_ONLY,
                                   0};
        struct kv_range_result res;
        int rc = kv_range(kv, &req, &res);
        if (rc != 0) {
            kv_range_result_free(&res);
            key_list_free(&out);
            rep_errorf(r, "ERR store read failed: %s", kv_strerror(rc));
            return;
        }
        for (size_t i = 0; i < res.n_kvs; i++) {
            const struct kv_kv *p = &res.kvs[i];
            if (i == 0 && skip_first && p->key_len == start_len &&
                memcmp(p->key, start, start_len) == 0) {
                continue;
            }
            if (cmd_glob_match(pat, plen, (const char *)p->key, p->key_len,
                               false) &&
                key_list_add(&out, p->key, p->key_len) != 0) {
                kv_range_result_free(&res);
                key_list_free(&out);
                rep_error(r, "ERR out of memory");
                return;
            }
        }
        bool more = res.more && res.n_kvs > 0;
        if (more) {
            const struct kv_kv *last = &res.kvs[res.n_kvs - 1];
            memcpy(start, last->key, last->key_len);
            start_len = last->key_len;
            skip_first = true;
        }
        kv_range_result_free(&res);
        if (out.bytes > r->client->env->opts.output_bytes_max) {
            key_list_free(&out);
            rep_error(r, "ERR reply too large for the output buffer limit");
            return;
        }
        if (!more) {
            break;
        }
    }
    rep_array(r, out.n);
    for (size_t i = 0; i < out.n; i++) {
        rep_bulk(r, out.v[i].key, out.v[i].len);
    }
    key_list_free(&out);
}

CMD_DECL(cmd_keys)
{
    read_start(r, keys_read, argc, argv, argvlen);
}

/* ---------------------------------------------------------------------- */
/* SCAN                                                                    */

/* SCAN cursors are small integers naming the last key returned, kept in a
 * server-wide ring so that every Redis client (many parse the cursor as an
 * unsigned 64-bit number) can use them. A cursor stays valid until
 * SCAN_CURSORS_MAX newer ones were handed out. */
#define SCAN_CURSORS_MAX 4096u
#define SCAN_COUNT_MAX 100000

struct cmd_cursors
{
    uint64_t next;
    struct
    {
        uint64_t id;
        uint8_t *key;
        uint32_t len;
    } e[SCAN_CURSORS_MAX];
};

void cmd_cursors_free(struct cmd_env *env)
{
    if (env->cursors == NULL) {
        return;
    }
    for (size_t i = 0; i < SCAN_CURSORS_MAX; i++) {
        free(env->cursors->e[i].key);
    }
    free(env->cursors);
    env->cursors = NULL;
}

static uint64_t cursor_save(struct cmd_env *env, const uint8_t *k, size_t len)
{
    if (env->cursors == NULL) {
        env->cursors = calloc(1, sizeof(*env->cursors));
        if (env->cursors == NULL) {
            return 0;
        }
    }
    struct cmd_cursors *cs = env->cursors;
    uint64_t id = ++cs->next;
    size_t slot = (size_t)(id % SCAN_CURSORS_MAX);
    uint8_t *copy = malloc(len ? len : 1);
    if (copy == NULL) {
        return 0;
    }
    memcpy(copy, k, len);
    free(cs->e[slot].key);
    cs->e[slot].id = id;
    cs->e[slot].key = copy;
    cs->e[slot].len = (uint32_t)len;
    return id;
}

static int cursor_find(struct cmd_env *env,
                       uint64_t id,
                       const uint8_t **k,
                       uint32_t *len)
{
    if (env->cursors == NULL) {
        return -1;
    }
    size_t slot = (size_t)(id % SCAN_CURSORS_MAX);
    if (env->cursors->e[slot].id != id || env->cursors->e[slot].key == NULL) {
        return -1;
    }
    *k = env->cursors->e[slot].key;
    *len = env->cursors->e[slot].len;
    return 0;
}

struct scan_args
{
    uint64_t cursor;
    const char *match;
    size_t match_len;
    int64_t count;
    bool type_other; /* TYPE names a type ballot does not have */
};

/* Parses SCAN's arguments; replies and returns -1 on an error. */
static int scan_parse(struct cmd_req *r,
                      size_t argc,
                      const char *const *argv,
                      const size_t *argvlen,
                      struct scan_args *a)
{
    int64_t cur;
    memset(a, 0, sizeof(*a));
    a->count = 10;
    if (cmd_parse_i64(argv[1], argvlen[1], &cur) != 0 || cur < 0) {
        rep_error(r, "ERR invalid cursor");
        return -1;
    }
    a->cursor = (uint64_t)cur;
    for (size_t i = 2; i < argc; i += 2) {
        if (i + 1 >= argc) {
            rep_error(r, "ERR syntax error");
            return -1;
        }
        if (cmd_arg_is(argv[i], argvlen[i], "match")) {
            a->match = argv[i + 1];
            a->match_len = argvlen[i + 1];
        } else if (cmd_arg_is(argv[i], argvlen[i], "count")) {
            if (cmd_parse_i64(argv[i + 1], argvlen[i + 1], &a->count) != 0) {
                rep_error(r, "ERR value is not an integer or out of range");
                return -1;
            }
            if (a->count < 1) {
                rep_error(r, "ERR syntax error");
                return -1;
            }
            if (a->count > SCAN_COUNT_MAX) {
                a->count = SCAN_COUNT_MAX;
            }
        } else if (cmd_arg_is(argv[i], argvlen[i], "type")) {
            a->type_other = !cmd_arg_is(argv[i + 1], argvlen[i + 1], "string");
        } else {
            rep_error(r, "ERR syntax error");
            return -1;
        }
    }
    const uint8_t *k;
    uint32_t kl;
    if (a->cursor != 0 &&
        cursor_find(r->client->env, a->cursor, &k, &kl) != 0) {
        rep_error(r, "ERR invalid cursor");
        return -1;
    }
    return 0;
}

static void scan_read(struct cmd_req *r,
                      struct kv_store *kv,
                      size_t argc,
                      const char *const *argv,
                      const size_t *argvlen)
{
    struct cmd_env *env = r->client->env;
    struct scan_args a;
    uint8_t start[KV_KEY_BYTES_MAX];
    uint32_t start_len = 0;
    const uint8_t one_zero[1] = {0};
    if (scan_parse(r, argc, argv, argvlen, &a) != 0) {
        return;
    }
    if (a.cursor != 0) {
        const uint8_t *k;
        if (cursor_find(env, a.cursor, &k, &start_len) != 0) {
            rep_error(r, "ERR invalid cursor");
            return;
        }
        memcpy(start, k, start_len);
    }
    /* The cursor's key was returned already: ask for one more and skip
     * it if it is still there. */
    struct kv_range_req req = {
        start, one_zero,          start_len,
        1,     KV_FLAG_KEYS_ONLY, (uint64_t)a.count + (a.cursor != 0)};
    struct kv_range_result res;
    int rc = kv_range(kv, &req, &res);
    if (rc != 0) {
        kv_range_result_free(&res);
        rep_errorf(r, "ERR store read failed: %s", kv_strerror(rc));
        return;
    }
    size_t first = 0;
    if (a.cursor != 0 && res.n_kvs > 0 && res.kvs[0].key_len == start_len &&
        memcmp(res.kvs[0].key, start, start_len) == 0) {
        first = 1;
    }
    size_t matched = 0;
    for (size_t i = first; i < res.n_kvs; i++) {
        matched +=
            !a.type_other &&
            (a.match == NULL ||
             cmd_glob_match(a.match, a.match_len, (const char *)res.kvs[i].key,
                            res.kvs[i].key_len, false));
    }
    uint64_t next = 0;
    if (res.more && res.n_kvs > 0) {
        const struct kv_kv *last = &res.kvs[res.n_kvs - 1];
        next = cursor_save(env, last->key, last->key_len);
        if (next == 0) {
            kv_range_result_free(&res);
            rep_error(r, "ERR out of memory");
            return;
        }
    }
    char buf[24];
    int n = snprintf(buf, sizeof(buf), "%llu", (unsigned long long)next);
    rep_array(r, 2);
    rep_bulk(r, buf, (size_t)n);
    rep_array(r, matched);
    for (size_t i = first; i < res.n_kvs; i++) {
        if (!a.type_other &&
            (a.match == NULL ||
             cmd_glob_match(a.match, a.match_len, (const char *)res.kvs[i].key,
                            res.kvs[i].key_len, false))) {
            rep_bulk(r, res.kvs[i].key, res.kvs[i].key_len);
        }
    }
    kv_range_result_free(&res);
}

CMD_DECL(cmd_scan)
{
    struct scan_args a;
    if (scan_parse(r, argc, argv, argvlen, &a) != 0) {
        cmd_req_finish(r);
        return;
    }
    read_start(r, scan_read, argc, argv, argvlen);
}

/* ---------------------------------------------------------------------- */
/* BRANGE                                                                  */

struct brange_args
{
    uint8_t flags;
    uint64_t limit;
};

static int brange_parse(struct cmd_req *r,
                        size_t argc,
                        const char *const *argv,
                        const size_t *argvlen,
                        struct brange_args *a)
{
    memset(a, 0, sizeof(*a));
    if (argvlen[1] > KV_KEY_BYTES_MAX || argvlen[2] > KV_KEY_BYTES_MAX) {
        rep_errorf(r, "ERR key too long: ballot's limit is %u bytes",
                   KV_KEY_BYTES_MAX);
        return -1;
    }
    for (size_t i = 3; i < argc; i++) {
        const char *s = argv[i];
        size_t n = argvlen[i];
        if (cmd_arg_is(s, n, "limit") && i + 1 < argc) {
            int64_t l;
            if (cmd_parse_i64(argv[i + 1], argvlen[i + 1], &l) != 0 || l < 0) {
                rep_error(r, "ERR value is not an integer or out of range");
                return -1;
            }
            a->limit = (uint64_t)l;
            i++;
        } else if (cmd_arg_is(s, n, "prefix")) {
            a->flags |= KV_FLAG_PREFIX;
        } else if (cmd_arg_is(s, n, "reverse")) {
            a->flags |= KV_FLAG_REVERSE;
        } else if (cmd_arg_is(s, n, "keysonly")) {
            a->flags |= KV_FLAG_KEYS_ONLY;
        } else if (cmd_arg_is(s, n, "countonly")) {
            a->flags |= KV_FLAG_COUNT_ONLY;
        } else {
            rep_error(r, "ERR syntax error");
            return -1;
        }
    }
    if ((a->flags & KV_FLAG_PREFIX) && argvlen[2] != 0) {
        rep_error(r, "ERR BRANGE with PREFIX takes an empty end");
        return -1;
    }
    return 0;
}

static void brange_read(struct cmd_req *r,
                        struct kv_store *kv,
                        size_t argc,
                        const char *const *argv,
                        const size_t *argvlen)
{
    struct brange_args a;
    const uint8_t one_zero[1] = {0};
    if (brange_parse(r, argc, argv, argvlen, &a) != 0) {
        return;
    }
    /* An empty end means "to the end of the key space". */
    struct kv_range_req req = {
        (const uint8_t *)argv[1],
        argvlen[2] ? (const uint8_t *)argv[2] : one_zero,
        (uint32_t)argvlen[1],
        argvlen[2] ? (uint32_t)argvlen[2] : 1,
        a.flags,
        a.limit,
    };
    struct kv_range_result res;
    int rc = kv_range(kv, &req, &res);
    if (rc != 0) {
        kv_range_result_free(&res);
        rep_errorf(r, "ERR store read failed: %s", kv_strerror(rc));
        return;
    }
    bool keys_only = (a.flags & KV_FLAG_KEYS_ONLY) != 0;
    rep_array(r, 4);
    rep_int(r, (int64_t)res.revision);
    rep_int(r, (int64_t)res.count);
    rep_int(r, res.more ? 1 : 0);
    rep_array(r, res.n_kvs * (keys_only ? 1 : 2));
    for (size_t i = 0; i < res.n_kvs; i++) {
        rep_bulk(r, res.kvs[i].key, res.kvs[i].key_len);
        if (!keys_only) {
            rep_bulk(r, res.kvs[i].value, res.kvs[i].value_len);
        }
    }
    kv_range_result_free(&res);
}

CMD_DECL(cmd_brange)
{
    struct brange_args a;
    if (brange_parse(r, argc, argv, argvlen, &a) != 0) {
        cmd_req_finish(r);
        return;
    }
    read_start(r, brange_read, argc, argv, argvlen);
}

/* ---------------------------------------------------------------------- */
/* Proposals: DEL and BTXN                                                 */

/* Encodes @cmd and proposes it with @cb; on failure replies and finishes. */
static void propose(struct cmd_req *r,
                    const struct kv_cmd *cmd,
                    bnode_write_cb cb)
{
    size_t size = kv_cmd_encoded_size(cmd);
    if (size == 0) {
        rep_error(r, "ERR the command exceeds ballot's limits");
        cmd_req_finish(r);
        return;
    }
    uint8_t *buf = malloc(size);
    size_t len = 0;
    if (buf == NULL || kv_cmd_encode(cmd, buf, size, &len) != 0) {
        free(buf);
        rep_error(r, "ERR could not encode the command");
        cmd_req_finish(r);
        return;
    }
    int rc = bnode_propose(r->client->env->node, buf, len, cb, r);
    free(buf); /* bnode_propose copies it */
    if (rc != 0) {
        rep_node_error(r, rc, true);
        cmd_req_finish(r);
    }
}

/* Common checks of a write's completion; false if it replied. */
static bool write_ok(struct cmd_req *r,
                     int status,
                     const struct kv_entry_result *res)
{
    if (status != 0) {
        rep_node_error(r, status, true);
        return false;
    }
    if (res->code != 0) {
        rep_errorf(r, "ERR the state machine refused the command: %s",
                   kv_strerror(res->code));
        return false;
    }
    return true;
}

static void del_done(void *arg, int status, const struct kv_entry_result *res)
{
    struct cmd_req *r = arg;
    if (write_ok(r, status, res)) {
        uint64_t n = 0;
        for (size_t i = 0; i < res->n_ops; i++) {
            n += res->ops[i].count;
        }
        rep_int(r, (int64_t)n);
    }
    cmd_req_finish(r);
}

CMD_DECL(cmd_del)
{
    struct kv_op ops[KV_TXN_OPS_MAX];
    size_t n = 0;
    if (argc - 1 > KV_TXN_OPS_MAX) {
        rep_errorf(r, "ERR a write may change at most %u keys in ballot",
                   KV_TXN_OPS_MAX);
        cmd_req_finish(r);
        return;
    }
    for (size_t i = 1; i < argc; i++) {
        if (argvlen[i] == 0 || argvlen[i] > KV_KEY_BYTES_MAX) {
            continue; /* never stored, so never deleted */
        }
        memset(&ops[n], 0, sizeof(ops[n]));
        ops[n].type = KV_OP_DELETE;
        ops[n].key = (const uint8_t *)argv[i];
        ops[n].key_len = (uint32_t)argvlen[i];
        n++;
    }
    if (n == 0) {
        rep_int(r, 0);
        cmd_req_finish(r);
        return;
    }
    struct kv_cmd cmd;
    memset(&cmd, 0, sizeof(cmd));
    cmd.type = KV_CMD_TXN;
    cmd.then_ops = ops;
    cmd.n_then = (uint32_t)n;
    propose(r, &cmd, del_done);
}

static void btxn_done(void *arg, int status, const struct kv_entry_result *res)
{
    struct cmd_req *r = arg;
    if (!write_ok(r, status, res)) {
        cmd_req_finish(r);
        return;
    }
    rep_array(r, 3);
    rep_int(r, res->succeeded ? 1 : 0);
    rep_int(r, (int64_t)res->revision);
    rep_array(r, res->n_ops);
    for (size_t i = 0; i < res->n_ops; i++) {
        const struct kv_op_result *o = &res->ops[i];
        switch (o->type) {
        case KV_OP_PUT:
            rep_ok(r);
            break;
        case KV_OP_RANGE:
            if (o->n_kvs > 0) {
                rep_bulk(r, o->kvs[0].value, o->kvs[0].value_len);
            } else {
                rep_null(r);
            }
            break;
        default:
            rep_int(r, (int64_t)o->count);
            break;
        }
    }
    cmd_req_finish(r);
}

/* Parses "<n> op..." of BTXN at *i into @ops; -1 after replying. */
static int btxn_ops(struct cmd_req *r,
                    size_t argc,
                    const char *const *argv,
                    const size_t *argvlen,
                    size_t *i,
                    struct kv_op *ops,
                    uint32_t *n_ops)
{
    static const uint8_t one_zero[1] = {0};
    int64_t n;
    if (*i >= argc || cmd_parse_i64(argv[*i], argvlen[*i], &n) != 0 || n < 0) {
        rep_error(r, "ERR BTXN: expected an operation count");
        return -1;
    }
    if (n > (int64_t)KV_TXN_OPS_MAX) {
        rep_errorf(r, "ERR BTXN: at most %u operations per branch",
                   KV_TXN_OPS_MAX);
        return -1;
    }
    (*i)++;
    for (int64_t k = 0; k < n; k++) {
        struct kv_op *op = &ops[k];
        memset(op, 0, sizeof(*op));
        size_t a = *i;
        size_t need;
        if (a >= argc) {
            rep_error(r, "ERR BTXN: missing operation");
            return -1;
        }
        if (cmd_arg_is(argv[a], argvlen[a], "put")) {
            op->type = KV_OP_PUT;
            need = 3;
        } else if (cmd_arg_is(argv[a], argvlen[a], "del")) {
            op->type = KV_OP_DELETE;
            need = 2;
        } else if (cmd_arg_is(argv[a], argvlen[a], "delrange")) {
            op->type = KV_OP_DELETE_RANGE;
            need = 3;
        } else if (cmd_arg_is(argv[a], argvlen[a], "get")) {
            op->type = KV_OP_RANGE;
            need = 2;
        } else {
            rep_errorf(r, "ERR BTXN: unknown operation '%.*s'",
                       (int)(argvlen[a] > 64 ? 64 : argvlen[a]), argv[a]);
            return -1;
        }
        if (a + need > argc) {
            rep_error(r, "ERR BTXN: missing operation arguments");
            return -1;
        }
        op->key = (const uint8_t *)argv[a + 1];
        op->key_len = (uint32_t)argvlen[a + 1];
        if (op->type != KV_OP_DELETE_RANGE &&
            !cmd_check_key(r, argvlen[a + 1])) {
            return -1;
        }
        if (argvlen[a + 1] > KV_KEY_BYTES_MAX) {
            (void)cmd_check_key(r, argvlen[a + 1]);
            return -1;
        }
        if (op->type == KV_OP_PUT) {
            if (!cmd_check_value(r, argvlen[a + 2])) {
                return -1;
            }
            op->value = (const uint8_t *)argv[a + 2];
            op->value_len = (uint32_t)argvlen[a + 2];
        } else if (op->type == KV_OP_DELETE_RANGE) {
            if (argvlen[a + 2] > KV_KEY_BYTES_MAX) {
                (void)cmd_check_key(r, argvlen[a + 2]);
                return -1;
            }
            op->end = argvlen[a + 2] ? (const uint8_t *)argv[a + 2] : one_zero;
            op->end_len = argvlen[a + 2] ? (uint32_t)argvlen[a + 2] : 1;
        }
        *i = a + need;
    }
    *n_ops = (uint32_t)n;
    return 0;
}

CMD_DECL(cmd_btxn)
{
    struct kv_cmp cmps[KV_TXN_CMPS_MAX];
    struct kv_op then_ops[KV_TXN_OPS_MAX];
    struct kv_op else_ops[KV_TXN_OPS_MAX];
    struct kv_cmd cmd;
    int64_t n;
    size_t i = 1;
    memset(&cmd, 0, sizeof(cmd));
    cmd.type = KV_CMD_TXN;
    if (cmd_parse_i64(argv[i], argvlen[i], &n) != 0 || n < 0) {
        rep_error(r, "ERR BTXN: expected a comparison count");
        goto fail;
    }
    if (n > (int64_t)KV_TXN_CMPS_MAX) {
        rep_errorf(r, "ERR BTXN: at most %u comparisons", KV_TXN_CMPS_MAX);
        goto fail;
    }
    i++;
    for (int64_t k = 0; k < n; k++, i += 4) {
        struct kv_cmp *c = &cmps[k];
        memset(c, 0, sizeof(*c));
        if (i + 4 > argc) {
            rep_error(r, "ERR BTXN: missing comparison arguments");
            goto fail;
        }
        const char *t = argv[i];
        size_t tl = argvlen[i];
        if (cmd_arg_is(t, tl, "value")) {
            c->target = KV_CMP_VALUE;
        } else if (cmd_arg_is(t, tl, "version")) {
            c->target = KV_CMP_VERSION;
        } else if (cmd_arg_is(t, tl, "create")) {
            c->target = KV_CMP_CREATE_REVISION;
        } else if (cmd_arg_is(t, tl, "mod")) {
            c->target = KV_CMP_MOD_REVISION;
        } else if (cmd_arg_is(t, tl, "exists")) {
            c->target = KV_CMP_EXISTS;
        } else {
            rep_errorf(r, "ERR BTXN: unknown comparison target '%.*s'",
                       (int)(tl > 64 ? 64 : tl), t);
            goto fail;
        }
        if (!cmd_check_key(r, argvlen[i + 1])) {
            goto fail;
        }
        c->key = (const uint8_t *)argv[i + 1];
        c->key_len = (uint32_t)argvlen[i + 1];
        const char *o = argv[i + 2];
        size_t ol = argvlen[i + 2];
        if (ol == 1 && o[0] == '=') {
            c->op = KV_CMP_EQ;
        } else if (ol == 2 && o[0] == '!' && o[1] == '=') {
            c->op = KV_CMP_NE;
        } else if (ol == 1 && o[0] == '<') {
            c->op = KV_CMP_LT;
        } else if (ol == 1 && o[0] == '>') {
            c->op = KV_CMP_GT;
        } else {
            rep_error(r,
                      "ERR BTXN: comparison operator must be =, !=, < "
                      "or >");
            goto fail;
        }
        if (c->target == KV_CMP_VALUE) {
            if (!cmd_check_value(r, argvlen[i + 3])) {
                goto fail;
            }
            c->value = (const uint8_t *)argv[i + 3];
            c->value_len = (uint32_t)argvlen[i + 3];
        } else {
            int64_t num;
            if (cmd_parse_i64(argv[i + 3], argvlen[i + 3], &num) != 0 ||
                num < 0) {
                rep_error(r, "ERR value is not an integer or out of range");
                goto fail;
            }
            if (c->target == KV_CMP_EXISTS &&
                (num > 1 || c->op == KV_CMP_LT || c->op == KV_CMP_GT)) {
                rep_error(r, "ERR BTXN: EXISTS takes = or != and 0 or 1");
                goto fail;
            }
            c->number = (uint64_t)num;
        }
    }
    cmd.cmps = cmps;
    cmd.n_cmps = (uint32_t)n;
    if (btxn_ops(r, argc, argv, argvlen, &i, then_ops, &cmd.n_then) != 0 ||
        btxn_ops(r, argc, argv, argvlen, &i, else_ops, &cmd.n_else) != 0) {
        goto fail;
    }
    if (i != argc) {
        rep_error(r, "ERR BTXN: unexpected arguments after the else branch");
        goto fail;
    }
    cmd.then_ops = then_ops;
    cmd.else_ops = else_ops;
    propose(r, &cmd, btxn_done);
    return;
fail:
    cmd_req_finish(r);
}
