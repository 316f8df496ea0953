/*
 * commands_keys.c - commands that read many keys (KEYS, SCAN, DBSIZE), the
 * glob matcher they share, and the read barrier helper used by every read
 * that is not run on a view.
 */
#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bnode.h"
#include "commands.h"
#include "glob.h"
#include "kv.h"

/* ---------------------------------------------------------------------- */
/* Glob matching                                                           */

bool cmd_glob_match(const char *p,
                    size_t plen,
                    const char *s,
                    size_t slen,
                    bool nocase)
{
    struct glob *g;
    if (glob_compile(p, plen, slen, nocase, &g) != 0) {
        return false;
    }
    bool hit = glob_match(g, s, slen);
    glob_free(g);
    return hit;
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

struct read_run
{
    struct cmd_req *r;
    cmd_read_fn fn;
    bool owned; /* @fn finishes @r itself */
    size_t argc;
    const char **argv;
    size_t *argvlen;
};

static void read_on_barrier(void *arg, int status)
{
    struct read_run *run = arg;
    struct cmd_req *r = run->r;
    bool owned = run->owned && status == 0;
    if (status != 0) {
        rep_node_error(r, status, false);
    } else {
        run->fn(r, bnode_kv(r->client->env->node), run->argc, run->argv,
                run->argvlen);
    }
    free(run->argv);
    free(run);
    if (!owned) {
        cmd_req_finish(r);
    }
}

static void read_start(struct cmd_req *r,
                       cmd_read_fn fn,
                       bool owned,
                       size_t argc,
                       const char *const *argv,
                       const size_t *argvlen);

/* Copies the arguments and runs @fn behind a read barrier (linearizable
 * unless the connection asked for READONLY). */
void cmd_read_start(struct cmd_req *r,
                    cmd_read_fn fn,
                    size_t argc,
                    const char *const *argv,
                    const size_t *argvlen)
{
    read_start(r, fn, false, argc, argv, argvlen);
}

/* The same, but @fn finishes @r itself (later, e.g. after slices). */
static void cmd_read_start_owned(struct cmd_req *r,
                                 cmd_read_fn fn,
                                 size_t argc,
                                 const char *const *argv,
                                 const size_t *argvlen)
{
    read_start(r, fn, true, argc, argv, argvlen);
}

static void read_start(struct cmd_req *r,
                       cmd_read_fn fn,
                       bool owned,
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
    run->owned = owned;
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
    cmd_read_start(r, dbsize_read, argc, argv, argvlen);
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

/* KEYS over a large store is done in slices of KEYS_SLICE_KEYS keys, one
 * per loop turn (a timer of 0 ms lets every other client's I/O run in
 * between), so that no KEYS holds the loop for long. Like SCAN, and unlike
 * Redis, a KEYS over more than one slice is therefore not a point-in-time
 * view: keys written or deleted meanwhile may or may not appear. */
#define KEYS_SLICE_KEYS 4096u

struct keys_job
{
    struct cmd_req *r;
    struct kv_store *kv;
    uv_timer_t timer;
    struct glob *g;
    uint8_t start[KV_KEY_BYTES_MAX];
    uint8_t end[KV_KEY_BYTES_MAX];
    size_t start_len;
    size_t end_len;
    bool skip_first;
    bool failed; /* the reply (an error) is written */
    struct key_list out;
};

static void keys_job_closed(uv_handle_t *h)
{
    struct keys_job *job = h->data;
    struct cmd_req *r = job->r;
    glob_free(job->g);
    key_list_free(&job->out);
    free(job);
    cmd_req_finish(r);
}

static void keys_job_end(struct keys_job *job)
{
    struct cmd_req *r = job->r;
    if (!job->failed && !r->client->gone) {
        rep_array(r, job->out.n);
        for (size_t i = 0; i < job->out.n; i++) {
            rep_bulk(r, job->out.v[i].key, job->out.v[i].len);
        }
    }
    uv_close((uv_handle_t *)&job->timer, keys_job_closed);
}

/* One slice; returns true when the job is done. */
static bool keys_slice(struct keys_job *job)
{
    struct cmd_req *r = job->r;
    if (r->client->gone) {
        return true; /* nobody reads the answer */
    }
    struct kv_range_req req = {job->start,
                               job->end,
                               (uint32_t)job->start_len,
                               (uint32_t)job->end_len,
                               KV_FLAG_KEYS_ONLY | KV_RANGE_NO_TOTAL,
                               KEYS_SLICE_KEYS + job->skip_first};
    struct kv_range_result res;
    int rc = kv_range(job->kv, &req, &res);
    if (rc != 0) {
        kv_range_result_free(&res);
        rep_errorf(r, "ERR store read failed: %s", kv_strerror(rc));
        job->failed = true;
        return true;
    }
    for (size_t i = 0; i < res.n_kvs; i++) {
        const struct kv_kv *p = &res.kvs[i];
        /* The slice starts at the previous one's last key. */
        if (i == 0 && job->skip_first && p->key_len == job->start_len &&
            memcmp(p->key, job->start, job->start_len) == 0) {
            continue;
        }
        if (glob_match(job->g, (const char *)p->key, p->key_len) &&
            key_list_add(&job->out, p->key, p->key_len) != 0) {
            kv_range_result_free(&res);
            rep_error(r, "ERR out of memory");
            job->failed = true;
            return true;
        }
    }
    bool more = res.more && res.n_kvs > 0;
    if (more) {
        const struct kv_kv *last = &res.kvs[res.n_kvs - 1];
        memcpy(job->start, last->key, last->key_len);
        job->start_len = last->key_len;
        job->skip_first = true;
    }
    kv_range_result_free(&res);
    if (job->out.bytes > r->client->env->opts.output_bytes_max) {
        rep_error(r, "ERR reply too large for the output buffer limit");
        job->failed = true;
        return true;
    }
    return !more;
}

static void keys_on_timer(uv_timer_t *t)
{
    struct keys_job *job = t->data;
    if (job->r->client->env->stopping) {
        /* The node stops with the server: its store may be gone. */
        rep_node_error(job->r, BNODE_ESTOPPED, false);
        job->failed = true;
        keys_job_end(job);
        return;
    }
    /* The store may have been replaced (a snapshot installed) since the
     * last slice: take it again. */
    job->kv = bnode_kv(job->r->client->env->node);
    if (keys_slice(job)) {
        keys_job_end(job);
    } else {
        uv_timer_start(&job->timer, keys_on_timer, 0, 0);
    }
}

/* Runs behind the read barrier; owns @r from here (finishes it). */
static void keys_read(struct cmd_req *r,
                      struct kv_store *kv,
                      size_t argc,
                      const char *const *argv,
                      const size_t *argvlen)
{
    const char *pat = argv[1];
    size_t plen = argvlen[1];
    size_t pre = glob_prefix(pat, plen);
    (void)argc;
    if (pre > KV_KEY_BYTES_MAX) {
        rep_array(r, 0); /* no stored key is that long */
        cmd_req_finish(r);
        return;
    }
    struct keys_job *job = calloc(1, sizeof(*job));
    if (job == NULL ||
        glob_compile(pat, plen, KV_KEY_BYTES_MAX, false, &job->g) != 0) {
        free(job);
        rep_error(r, "ERR out of memory");
        cmd_req_finish(r);
        return;
    }
    job->r = r;
    job->kv = kv;
    memcpy(job->start, pat, pre);
    job->start_len = pre;
    job->end_len = prefix_end(job->start, pre, job->end);
    if (job->end_len == 0) {
        job->end[0] = 0; /* one zero byte: no upper bound */
        job->end_len = 1;
    }
    uv_timer_init(r->client->env->loop, &job->timer);
    job->timer.data = job;
    if (keys_slice(job)) {
        keys_job_end(job);
    } else {
        uv_timer_start(&job->timer, keys_on_timer, 0, 0);
    }
}

CMD_DECL(cmd_keys)
{
    cmd_read_start_owned(r, keys_read, argc, argv, argvlen);
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
    int type;        /* TYPE string or hash: enum kv_value_type; -1: any */
};

/* Whether SCAN returns @kv: its type and (with @g) its name match. */
static bool scan_hit(const struct scan_args *a,
                     const struct glob *g,
                     const struct kv_kv *kv)
{
    return !a->type_other && (a->type < 0 || kv->type == a->type) &&
           (g == NULL || glob_match(g, (const char *)kv->key, kv->key_len));
}

/* Parses SCAN's arguments; replies and returns -1 on an error. */
static int scan_parse(struct cmd_req *r,
                      size_t argc,
                      const char *const *argv,
                      const size_t *argvlen,
                      struct scan_args *a)
{
    int64_t cur;
    memset(a, 0, sizeof(*a));
    a->type = -1;
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
            bool str = cmd_arg_is(argv[i + 1], argvlen[i + 1], "string");
            bool hash = cmd_arg_is(argv[i + 1], argvlen[i + 1], "hash");
            a->type_other = !str && !hash;
            a->type = str ? KV_TYPE_STRING : KV_TYPE_HASH;
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
    struct kv_range_req req = {start,
                               one_zero,
                               start_len,
                               1,
                               KV_FLAG_KEYS_ONLY | KV_RANGE_NO_TOTAL,
                               (uint64_t)a.count + (a.cursor != 0)};
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
    struct glob *g = NULL;
    if (a.match != NULL &&
        glob_compile(a.match, a.match_len, KV_KEY_BYTES_MAX, false, &g) != 0) {
        kv_range_result_free(&res);
        rep_error(r, "ERR out of memory");
        return;
    }
    /* Matched twice (to count, then to reply): each costs the key's
     * length times the pattern's tokens / 64 word operations at most. */
    size_t matched = 0;
    for (size_t i = first; i < res.n_kvs; i++) {
        matched += scan_hit(&a, g, &res.kvs[i]);
    }
    uint64_t next = 0;
    if (res.more && res.n_kvs > 0) {
        const struct kv_kv *last = &res.kvs[res.n_kvs - 1];
        next = cursor_save(env, last->key, last->key_len);
        if (next == 0) {
            kv_range_result_free(&res);
            glob_free(g);
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
        if (scan_hit(&a, g, &res.kvs[i])) {
            rep_bulk(r, res.kvs[i].key, res.kvs[i].key_len);
        }
    }
    glob_free(g);
    kv_range_result_free(&res);
}

CMD_DECL(cmd_scan)
{
    struct scan_args a;
    if (scan_parse(r, argc, argv, argvlen, &a) != 0) {
        cmd_req_finish(r);
        return;
    }
    cmd_read_start(r, scan_read, argc, argv, argvlen);
}
