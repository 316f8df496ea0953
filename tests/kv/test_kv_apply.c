/*
 * test_kv_apply.c - applying entries: exact replay, refused commands, gaps,
 * a full map, checkpoints, allocation failures and transaction semantics.
 */
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "kv_test_util.h"

/* Entries 1..n: puts and deletes over 20 keys, deterministic. */
static void make_entries(struct kvt_batch *b, raft_index first, raft_index last)
{
    char key[32], value[32];
    for (raft_index i = first; i <= last; i++) {
        size_t len;
        uint8_t *d;
        snprintf(key, sizeof(key), "k%02llu", (unsigned long long)(i % 20));
        if (i % 7 == 0) {
            d = kvt_del(key, &len);
        } else {
            snprintf(value, sizeof(value), "v%llu", (unsigned long long)i);
            d = kvt_put(key, value, &len);
        }
        kvt_batch_add(b, i, d, len);
    }
}

static void apply_range(struct kv_store *s, raft_index first, raft_index last)
{
    struct kvt_batch b = {0};
    make_entries(&b, first, last);
    ck_assert_int_eq(kv_apply(s, b.e, b.n, NULL), 0);
    kvt_batch_clear(&b);
}

/* What kv_get_many() handed to its callback. */
struct got
{
    size_t n;
    size_t idx[8];
    char val[8][16];
    bool found[8];
    size_t stop_at; /* returns 1 at this index (SIZE_MAX: never) */
};

static int got_key(void *arg, size_t i, const struct kv_kv *p)
{
    struct got *g = arg;
    if (i == g->stop_at) {
        return 1;
    }
    g->idx[g->n] = i;
    g->found[g->n] = p != NULL;
    if (p != NULL) {
        snprintf(g->val[g->n], sizeof(g->val[0]), "%.*s", (int)p->value_len,
                 (const char *)p->value);
    }
    g->n++;
    return 0;
}

/* kv_get_many() reads every key in order, in one transaction: present keys
 * with their values, absent ones as NULL, repeats as often as asked; a bad
 * key is refused before anything is read, and the callback can stop it. */
START_TEST(test_get_many_reads_each_key_in_order)
{
    char *dir = kvt_mkdtemp();
    struct kv_store *s = kvt_open(dir, 0);
    struct kvt_batch b = {0};
    size_t len;
    uint8_t *d = kvt_put("a", "1", &len);
    kvt_batch_add(&b, 1, d, len);
    d = kvt_put("b", "2", &len);
    kvt_batch_add(&b, 2, d, len);
    ck_assert_int_eq(kv_apply(s, b.e, b.n, NULL), 0);
    kvt_batch_clear(&b);

    const uint8_t *keys[4] = {(const uint8_t *)"b", (const uint8_t *)"zz",
                              (const uint8_t *)"a", (const uint8_t *)"b"};
    uint32_t lens[4] = {1, 2, 1, 1};
    struct got g = {.stop_at = SIZE_MAX};
    ck_assert_int_eq(kv_get_many(s, 4, keys, lens, got_key, &g), 0);
    ck_assert_uint_eq(g.n, 4);
    ck_assert(g.found[0] && strcmp(g.val[0], "2") == 0 && g.idx[0] == 0);
    ck_assert(!g.found[1] && g.idx[1] == 1);
    ck_assert(g.found[2] && strcmp(g.val[2], "1") == 0);
    ck_assert(g.found[3] && strcmp(g.val[3], "2") == 0 && g.idx[3] == 3);

    memset(&g, 0, sizeof(g));
    g.stop_at = 2;
    ck_assert_int_eq(kv_get_many(s, 4, keys, lens, got_key, &g), 1);
    ck_assert_uint_eq(g.n, 2);

    memset(&g, 0, sizeof(g));
    g.stop_at = SIZE_MAX;
    lens[3] = 0;
    ck_assert_int_eq(kv_get_many(s, 4, keys, lens, got_key, &g), KV_EINVAL);
    ck_assert_uint_eq(g.n, 0);
    ck_assert_int_eq(kv_get_many(s, 0, keys, lens, got_key, &g), 0);
    kv_close(s);
    kvt_rmdir(dir);
}
END_TEST

/* A process that dies without closing or syncing the store, then restarts
 * and is fed overlapping entries again, skips exactly those it applied and
 * ends in the same state as a store that applied each entry once. */
START_TEST(test_apply_replay_after_crash_is_exact)
{
    char *dir = kvt_mkdtemp();
    char *ref_dir = kvt_mkdtemp();
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        struct kv_store *s = kvt_open(dir, 0);
        for (raft_index i = 1; i <= 100; i += 10) {
            apply_range(s, i, i + 9);
        }
        _exit(0); /* a crash: no close, no checkpoint */
    }
    int status = 0;
    waitpid(pid, &status, 0);
    ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);

    struct kv_store *s = kvt_open(dir, 0);
    struct kv_status st;
    ck_assert_int_eq(kv_status(s, &st), 0);
    ck_assert_uint_eq(st.applied, 100);
    /* The driver replays from its last known checkpoint, overlapping. */
    struct kvt_batch b = {0};
    make_entries(&b, 61, 150);
    struct kv_apply_result res;
    ck_assert_int_eq(kv_apply(s, b.e, b.n, &res), 0);
    for (size_t i = 0; i < res.n_entries; i++) {
        ck_assert_int_eq(res.entries[i].skipped, b.e[i].index <= 100);
    }
    ck_assert_uint_eq(res.applied, 150);
    kv_apply_result_free(&res);
    kvt_batch_clear(&b);

    struct kv_store *ref = kvt_open(ref_dir, 0);
    apply_range(ref, 1, 150);
    char *a = kvt_dump(s), *c = kvt_dump(ref);
    ck_assert_str_eq(a, c);
    free(a);
    free(c);
    kv_close(ref);
    kv_close(s);
    kvt_rmdir(dir);
    kvt_rmdir(ref_dir);
}
END_TEST

/* Entries that leave a hole after the applied index are refused whole. */
START_TEST(test_apply_refuses_a_gap)
{
    char *dir = kvt_mkdtemp();
    struct kv_store *s = kvt_open(dir, 0);
    apply_range(s, 1, 10);
    struct kvt_batch b = {0};
    make_entries(&b, 12, 13);
    ck_assert_int_eq(kv_apply(s, b.e, b.n, NULL), KV_EGAP);
    kvt_batch_clear(&b);
    /* Non-contiguous entries inside one batch as well. */
    make_entries(&b, 11, 11);
    make_entries(&b, 13, 13);
    ck_assert_int_eq(kv_apply(s, b.e, b.n, NULL), KV_EGAP);
    kvt_batch_clear(&b);
    struct kv_status st;
    ck_assert_int_eq(kv_status(s, &st), 0);
    ck_assert_uint_eq(st.applied, 10);
    kv_close(s);
    kvt_rmdir(dir);
}
END_TEST

/* A malformed command, a configuration entry and an empty entry advance the
 * applied index without changing keys or the revision, and the rest of the
 * batch still applies. */
START_TEST(test_apply_bad_command_yields_an_error_result_only)
{
    char *dir = kvt_mkdtemp();
    struct kv_store *s = kvt_open(dir, 0);
    struct kvt_batch b = {0};
    size_t len;
    {
        uint8_t *d_ = kvt_put("a", "1", &len);
        kvt_batch_add(&b, 1, d_, len);
    }
    uint8_t *junk = malloc(3);
    memcpy(junk, "\x01\x09\x00", 3);
    kvt_batch_add(&b, 2, junk, 3);
    kvt_batch_add(&b, 3, NULL, 0);
    uint8_t *conf = malloc(4);
    memset(conf, 0, 4);
    kvt_batch_add(&b, 4, conf, 4);
    b.e[3].type = RAFT_ENTRY_CONF;
    uint8_t *big = malloc(8);
    memcpy(big, "\x01\x01\x01\x00\xff\xff\xff\x7f", 8);
    kvt_batch_add(&b, 5, big, 8);
    {
        uint8_t *d_ = kvt_put("b", "2", &len);
        kvt_batch_add(&b, 6, d_, len);
    }
    struct kv_apply_result res;
    ck_assert_int_eq(kv_apply(s, b.e, b.n, &res), 0);
    ck_assert_int_eq(res.entries[0].code, 0);
    ck_assert_uint_eq(res.entries[0].revision, 1);
    ck_assert_int_eq(res.entries[1].code, KV_EBADCMD);
    ck_assert_uint_eq(res.entries[1].revision, 1);
    ck_assert(res.entries[2].noop);
    ck_assert(res.entries[3].noop);
    ck_assert_int_eq(res.entries[4].code, KV_ELIMIT);
    ck_assert_int_eq(res.entries[5].code, 0);
    ck_assert_uint_eq(res.entries[5].revision, 2);
    ck_assert_uint_eq(res.applied, 6);
    ck_assert_uint_eq(res.revision, 2);
    kv_apply_result_free(&res);
    kvt_batch_clear(&b);
    kv_close(s);
    kvt_rmdir(dir);
}
END_TEST

/* Filling the map fails the batch with KV_EFULL and a message; the store
 * keeps its last state, serves reads and applies small batches again. */
START_TEST(test_apply_map_full_is_efull_and_store_stays_readable)
{
    char *dir = kvt_mkdtemp();
    struct kv_store *s = kvt_open(dir, 1u << 20);
    raft_index index = 0;
    int rv = 0;
    char *value = malloc(20001);
    memset(value, 'x', 20000);
    value[20000] = 0;
    while (rv == 0) {
        struct kvt_batch b = {0};
        char key[32];
        size_t len;
        snprintf(key, sizeof(key), "key%06llu", (unsigned long long)index + 1);
        {
            uint8_t *d_ = kvt_put(key, value, &len);
            kvt_batch_add(&b, index + 1, d_, len);
        }
        rv = kv_apply(s, b.e, b.n, NULL);
        if (rv == 0) {
            index++;
        }
        kvt_batch_clear(&b);
        ck_assert_uint_lt(index, 1000);
    }
    ck_assert_int_eq(rv, KV_EFULL);
    char msg[256];
    kv_errmsg(s, msg, sizeof(msg));
    ck_assert_ptr_nonnull(strstr(msg, "kv: "));
    ck_assert_uint_gt(index, 5);
    struct kv_range_result r;
    ck_assert_int_eq(kv_get(s, (const uint8_t *)"key000001", 9, &r), 0);
    ck_assert_uint_eq(r.kvs[0].value_len, 20000);
    ck_assert_uint_eq(r.applied, index);
    kv_range_result_free(&r);
    /* Deleting makes room again. */
    struct kvt_batch b = {0};
    size_t len;
    {
        uint8_t *d_ = kvt_del("key000001", &len);
        kvt_batch_add(&b, index + 1, d_, len);
    }
    ck_assert_int_eq(kv_apply(s, b.e, b.n, NULL), 0);
    kvt_batch_clear(&b);
    free(value);
    kv_close(s);
    kvt_rmdir(dir);
}
END_TEST

/* A checkpoint reports the applied index that the sync covered. */
START_TEST(test_checkpoint_reports_the_durable_index)
{
    char *dir = kvt_mkdtemp();
    struct kv_store *s = kvt_open(dir, 0);
    raft_index durable = 99;
    ck_assert_int_eq(kv_checkpoint(s, &durable), 0);
    ck_assert_uint_eq(durable, 0);
    apply_range(s, 1, 42);
    ck_assert_int_eq(kv_checkpoint(s, &durable), 0);
    ck_assert_uint_eq(durable, 42);
    kv_close(s);
    kvt_rmdir(dir);
}
END_TEST

/* A store with writes after its last checkpoint, found after the machine
 * restarted (another boot id), is refused as possibly torn; one that was
 * checkpointed, or that only lost its process, opens. */
START_TEST(test_open_refuses_a_store_dirty_from_another_boot)
{
    char *dir = kvt_mkdtemp();
    char path[600], err[256] = "";
    struct kv_store *s = kvt_open(dir, 0);
    apply_range(s, 1, 10);
    kv_close(s);
    /* Same boot: the process crashed, the page cache kept everything. */
    s = kvt_open(dir, 0);
    kv_close(s);
    snprintf(path, sizeof(path), "%s/DIRTY", dir);
    FILE *f = fopen(path, "w");
    fputs("00000000-0000-0000-0000-000000000000\n", f);
    fclose(f);
    ck_assert_int_eq(kv_open(dir, NULL, &s, err, sizeof(err)), KV_ETORN);
    ck_assert_ptr_nonnull(strstr(err, "machine restarted"));
    remove(path);
    s = kvt_open(dir, 0);
    apply_range(s, 11, 20);
    raft_index durable = 0;
    ck_assert_int_eq(kv_checkpoint(s, &durable), 0);
    ck_assert_uint_eq(durable, 20);
    ck_assert_int_ne(access(path, F_OK), 0);
    kv_close(s);
    kvt_rmdir(dir);
}
END_TEST

static int n_allocs, fail_at;
static void *fail_malloc(void *ctx, size_t n)
{
    (void)ctx;
    return ++n_allocs == fail_at ? NULL : malloc(n);
}
static void *fail_realloc(void *ctx, void *p, size_t n)
{
    (void)ctx;
    return ++n_allocs == fail_at ? NULL : realloc(p, n);
}
static void plain_free(void *ctx, void *p)
{
    (void)ctx;
    free(p);
}

/* Failing each allocation of an apply in turn applies nothing, leaks
 * nothing, and the next attempt succeeds. */
START_TEST(test_apply_fails_cleanly_on_each_allocation)
{
    char *dir = kvt_mkdtemp();
    struct kv_allocator a = {NULL, fail_malloc, fail_realloc, plain_free};
    struct kv_options o;
    struct kv_store *s = NULL;
    memset(&o, 0, sizeof(o));
    o.alloc = &a;
    fail_at = 0;
    ck_assert_int_eq(kv_open(dir, &o, &s, NULL, 0), 0);
    apply_range(s, 1, 30);
    char *before = kvt_dump(s);
    /* A transaction with a range read and prev-kv returns allocates. */
    struct kv_op ops[2];
    memset(ops, 0, sizeof(ops));
    ops[0].type = KV_OP_DELETE_RANGE;
    ops[0].flags = KV_FLAG_PREV_KV | KV_FLAG_PREFIX;
    ops[0].key = (const uint8_t *)"k1";
    ops[0].key_len = 2;
    ops[1].type = KV_OP_RANGE;
    ops[1].key = (const uint8_t *)"k";
    ops[1].key_len = 1;
    ops[1].flags = KV_FLAG_PREFIX;
    struct kv_cmd c;
    memset(&c, 0, sizeof(c));
    c.type = KV_CMD_TXN;
    c.then_ops = ops;
    c.n_then = 2;
    int rv;
    for (fail_at = 1;; fail_at++) {
        struct kvt_batch b = {0};
        struct kv_apply_result res;
        size_t len;
        {
            uint8_t *d_ = kvt_encode(&c, &len);
            kvt_batch_add(&b, 31, d_, len);
        }
        n_allocs = 0;
        rv = kv_apply(s, b.e, b.n, &res);
        kvt_batch_clear(&b);
        if (rv == 0) {
            ck_assert_uint_gt(res.entries[0].ops[0].n_kvs, 0);
            kv_apply_result_free(&res);
            break;
        }
        ck_assert_int_eq(rv, KV_ENOMEM);
        char *now = kvt_dump(s);
        ck_assert_str_eq(now, before);
        free(now);
    }
    ck_assert_int_gt(fail_at, 2);
    free(before);
    kv_close(s);
    kvt_rmdir(dir);
}
END_TEST

/* Failing each allocation of a range read and a history read in turn fails
 * cleanly (KV_ENOMEM, nothing leaked) until the read succeeds. */
START_TEST(test_reads_fail_cleanly_on_each_allocation)
{
    char *dir = kvt_mkdtemp();
    struct kv_allocator a = {NULL, fail_malloc, fail_realloc, plain_free};
    struct kv_options o;
    struct kv_store *s = NULL;
    memset(&o, 0, sizeof(o));
    o.alloc = &a;
    fail_at = 0;
    ck_assert_int_eq(kv_open(dir, &o, &s, NULL, 0), 0);
    kvt_apply_puts(s, 1, 3000, "k", 40);
    struct kv_range_req req = {(const uint8_t *)"k", NULL, 1, 0,
                               KV_FLAG_PREFIX,       0};
    int rv;
    for (fail_at = 1;; fail_at++) {
        struct kv_range_result r;
        n_allocs = 0;
        rv = kv_range(s, &req, &r);
        if (rv == 0) {
            ck_assert_uint_eq(r.n_kvs, 3000);
            kv_range_result_free(&r);
            break;
        }
        ck_assert_int_eq(rv, KV_ENOMEM);
        kv_range_result_free(&r);
    }
    ck_assert_int_gt(fail_at, 3);
    for (fail_at = 1;; fail_at++) {
        struct kv_history_result h;
        n_allocs = 0;
        rv = kv_history_read(s, (struct kv_history_pos){1, 0}, 5000, &h, NULL);
        if (rv == 0) {
            ck_assert_uint_eq(h.n_events, 3000);
            kv_history_result_free(&h);
            break;
        }
        ck_assert_int_eq(rv, KV_ENOMEM);
        kv_history_result_free(&h);
    }
    ck_assert_int_gt(fail_at, 3);
    fail_at = 0;
    kv_close(s);
    kvt_rmdir(dir);
}
END_TEST

/* A CURRENT pointer that does not parse is reported, not guessed at. */
START_TEST(test_open_refuses_a_malformed_current_pointer)
{
    char *dir = kvt_mkdtemp();
    char path[600], err[256] = "";
    struct kv_store *s = kvt_open(dir, 0);
    kv_close(s);
    snprintf(path, sizeof(path), "%s/CURRENT", dir);
    FILE *f = fopen(path, "w");
    fputs("env-x\n", f);
    fclose(f);
    ck_assert_int_eq(kv_open(dir, NULL, &s, err, sizeof(err)), KV_ECORRUPT);
    ck_assert_ptr_nonnull(strstr(err, "CURRENT: malformed pointer"));
    kvt_rmdir(dir);
}
END_TEST

/* A create-if-absent transaction: the first succeeds, the second takes the
 * else branch; every change of one transaction shares one revision. */
START_TEST(test_txn_changes_share_one_revision)
{
    char *dir = kvt_mkdtemp();
    struct kv_store *s = kvt_open(dir, 0);
    struct kv_cmp cmp = {KV_CMP_EXISTS,           KV_CMP_EQ, 4, 0, 0,
                         (const uint8_t *)"lock", NULL};
    struct kv_op then_ops[2], else_ops[1];
    memset(then_ops, 0, sizeof(then_ops));
    memset(else_ops, 0, sizeof(else_ops));
    then_ops[0] = (struct kv_op){.type = KV_OP_PUT,
                                 .key = (const uint8_t *)"lock",
                                 .key_len = 4,
                                 .value = (const uint8_t *)"me",
                                 .value_len = 2};
    then_ops[1] = (struct kv_op){.type = KV_OP_PUT,
                                 .key = (const uint8_t *)"owner",
                                 .key_len = 5,
                                 .value = (const uint8_t *)"me",
                                 .value_len = 2};
    else_ops[0] = (struct kv_op){
        .type = KV_OP_RANGE, .key = (const uint8_t *)"lock", .key_len = 4};
    struct kv_cmd c = {.type = KV_CMD_TXN,
                       .cmps = &cmp,
                       .n_cmps = 1,
                       .then_ops = then_ops,
                       .n_then = 2,
                       .else_ops = else_ops,
                       .n_else = 1};
    struct kvt_batch b = {0};
    size_t len;
    {
        uint8_t *d_ = kvt_encode(&c, &len);
        kvt_batch_add(&b, 1, d_, len);
    }
    {
        uint8_t *d_ = kvt_encode(&c, &len);
        kvt_batch_add(&b, 2, d_, len);
    }
    struct kv_apply_result res;
    ck_assert_int_eq(kv_apply(s, b.e, b.n, &res), 0);
    ck_assert(res.entries[0].succeeded);
    ck_assert_uint_eq(res.entries[0].revision, 1);
    ck_assert(!res.entries[1].succeeded);
    ck_assert_uint_eq(res.entries[1].revision, 1);
    ck_assert_uint_eq(res.entries[1].ops[0].n_kvs, 1);
    ck_assert_uint_eq(res.entries[1].ops[0].kvs[0].mod_revision, 1);
    kv_apply_result_free(&res);
    kvt_batch_clear(&b);
    struct kv_range_result r;
    ck_assert_int_eq(kv_get(s, (const uint8_t *)"owner", 5, &r), 0);
    ck_assert_uint_eq(r.kvs[0].create_revision, 1);
    ck_assert_uint_eq(r.kvs[0].version, 1);
    kv_range_result_free(&r);
    ck_assert_int_eq(kv_get(s, (const uint8_t *)"none", 4, &r), KV_ENOTFOUND);
    kv_range_result_free(&r);
    kv_close(s);
    kvt_rmdir(dir);
}
END_TEST

/* Encodes a read-modify-write command of @type on @key. */
static uint8_t *rmw_cmd(uint8_t type,
                        const char *key,
                        int64_t delta,
                        const char *value,
                        size_t *len)
{
    struct kv_cmd c;
    memset(&c, 0, sizeof(c));
    c.type = type;
    c.op.type = type;
    c.op.key = (const uint8_t *)key;
    c.op.key_len = (uint32_t)strlen(key);
    c.op.delta = delta;
    if (value != NULL) {
        c.op.value = (const uint8_t *)value;
        c.op.value_len = (uint32_t)strlen(value);
    }
    return kvt_encode(&c, len);
}

/* Applies one read-modify-write and checks its outcome: @want_value is the
 * new value (then the refusal must be 0), or NULL with @want_refusal. */
static void rmw_expect(struct kv_store *s,
                       raft_index index,
                       uint8_t *data,
                       size_t len,
                       uint64_t want_refusal,
                       const char *want_value)
{
    struct kv_apply_result res;
    kvt_apply_one(s, index, data, len, &res);
    const struct kv_entry_result *e = &res.entries[0];
    ck_assert_msg(e->code == 0, "index %llu: code %d",
                  (unsigned long long)index, e->code);
    ck_assert_uint_eq(e->n_ops, 1);
    ck_assert_uint_eq(e->ops[0].count, want_refusal);
    if (want_value == NULL) {
        ck_assert_uint_eq(e->ops[0].n_kvs, 0);
    } else {
        ck_assert_uint_eq(e->ops[0].n_kvs, 1);
        const struct kv_kv *kv = &e->ops[0].kvs[0];
        ck_assert_msg(kv->value_len == strlen(want_value) &&
                          memcmp(kv->value, want_value, kv->value_len) == 0,
                      "index %llu: got '%.*s' want '%s'",
                      (unsigned long long)index, (int)kv->value_len,
                      (const char *)kv->value, want_value);
        ck_assert_uint_eq(kv->mod_revision, e->revision);
    }
    kv_apply_result_free(&res);
}

/* Read-modify-writes are evaluated at apply time from the value the key
 * holds at that point of the log: five increments of one key in one batch
 * each get their own value (1..5, five revisions); refusals (not an
 * integer, overflow, a value over the limit, not a float, infinity) write
 * nothing and leave the revision alone; numbers and floats follow Redis's
 * parsing and formatting. */
START_TEST(test_apply_read_modify_writes_follow_log_order)
{
    char *dir = kvt_mkdtemp();
    struct kv_store *s = kvt_open(dir, 0);
    struct kvt_batch b = {0};
    size_t len;
    for (raft_index i = 1; i <= 5; i++) {
        uint8_t *d = rmw_cmd(KV_CMD_INCRBY, "c", 1, NULL, &len);
        kvt_batch_add(&b, i, d, len);
    }
    struct kv_apply_result res;
    ck_assert_int_eq(kv_apply(s, b.e, b.n, &res), 0);
    for (size_t i = 0; i < 5; i++) {
        const struct kv_entry_result *e = &res.entries[i];
        char want[8];
        snprintf(want, sizeof(want), "%zu", i + 1);
        ck_assert_uint_eq(e->revision, i + 1);
        ck_assert_uint_eq(e->ops[0].count, KV_RMW_APPLIED);
        ck_assert_uint_eq(e->ops[0].kvs[0].value_len, 1);
        ck_assert_int_eq(e->ops[0].kvs[0].value[0], want[0]);
        ck_assert_uint_eq(e->ops[0].kvs[0].version, i + 1);
        ck_assert_uint_eq(e->ops[0].kvs[0].create_revision, 1);
    }
    kv_apply_result_free(&res);
    kvt_batch_clear(&b);

    raft_index i = 6;
    uint8_t *d = rmw_cmd(KV_CMD_INCRBY, "c", -10, NULL, &len);
    rmw_expect(s, i++, d, len, 0, "-5");
    d = rmw_cmd(KV_CMD_INCRBY, "new", INT64_MIN, NULL, &len);
    rmw_expect(s, i++, d, len, 0, "-9223372036854775808");
    d = rmw_cmd(KV_CMD_INCRBY, "new", -1, NULL, &len);
    rmw_expect(s, i++, d, len, KV_RMW_OVERFLOW, NULL);
    d = kvt_put("t", "12 ", &len);
    kvt_apply_one(s, i++, d, len, &res);
    uint64_t rev = res.entries[0].revision;
    kv_apply_result_free(&res);
    d = rmw_cmd(KV_CMD_INCRBY, "t", 1, NULL, &len);
    rmw_expect(s, i++, d, len, KV_RMW_NOT_INTEGER, NULL);
    d = kvt_put("t", "007", &len);
    kvt_apply_one(s, i++, d, len, &res);
    kv_apply_result_free(&res);
    d = rmw_cmd(KV_CMD_INCRBY, "t", 1, NULL, &len);
    rmw_expect(s, i++, d, len, KV_RMW_NOT_INTEGER, NULL);
    /* A refusal changes nothing, not even the revision. */
    struct kv_status st;
    ck_assert_int_eq(kv_status(s, &st), 0);
    ck_assert_uint_eq(st.revision, rev + 1);

    d = rmw_cmd(KV_CMD_APPEND, "a", 0, "xy", &len);
    rmw_expect(s, i++, d, len, 0, "xy");
    d = rmw_cmd(KV_CMD_APPEND, "a", 0, "z", &len);
    rmw_expect(s, i++, d, len, 0, "xyz");
    d = rmw_cmd(KV_CMD_APPEND, "a", 0, "", &len);
    rmw_expect(s, i++, d, len, 0, "xyz");
    char *big = malloc(KV_VALUE_BYTES_MAX - 1);
    memset(big, 'b', KV_VALUE_BYTES_MAX - 2);
    big[KV_VALUE_BYTES_MAX - 2] = '\0';
    d = rmw_cmd(KV_CMD_APPEND, "a", 0, big, &len);
    rmw_expect(s, i++, d, len, KV_RMW_TOO_LARGE, NULL);
    free(big);

    d = rmw_cmd(KV_CMD_INCRBYFLOAT, "f", 0, "10.50", &len);
    rmw_expect(s, i++, d, len, 0, "10.5");
    d = rmw_cmd(KV_CMD_INCRBYFLOAT, "f", 0, "0.1", &len);
    rmw_expect(s, i++, d, len, 0, "10.6");
    d = rmw_cmd(KV_CMD_INCRBYFLOAT, "f", 0, "-5", &len);
    rmw_expect(s, i++, d, len, 0, "5.6");
    d = rmw_cmd(KV_CMD_INCRBYFLOAT, "g", 0, "5.0e3", &len);
    rmw_expect(s, i++, d, len, 0, "5000");
    d = rmw_cmd(KV_CMD_INCRBYFLOAT, "g", 0, "2.0e2", &len);
    rmw_expect(s, i++, d, len, 0, "5200");
    d = rmw_cmd(KV_CMD_INCRBYFLOAT, "g", 0, "-5200", &len);
    rmw_expect(s, i++, d, len, 0, "0");
    d = rmw_cmd(KV_CMD_INCRBYFLOAT, "g", 0, "abc", &len);
    rmw_expect(s, i++, d, len, KV_RMW_NOT_FLOAT, NULL);
    d = rmw_cmd(KV_CMD_INCRBYFLOAT, "g", 0, " 1", &len);
    rmw_expect(s, i++, d, len, KV_RMW_NOT_FLOAT, NULL);
    d = rmw_cmd(KV_CMD_INCRBYFLOAT, "g", 0, "inf", &len);
    rmw_expect(s, i++, d, len, KV_RMW_NAN_OR_INF, NULL);
    d = rmw_cmd(KV_CMD_INCRBYFLOAT, "a", 0, "1", &len);
    rmw_expect(s, i++, d, len, KV_RMW_NOT_FLOAT, NULL);
    /* An integer value takes float increments too, as in Redis. */
    d = rmw_cmd(KV_CMD_INCRBYFLOAT, "c", 0, "0.5", &len);
    rmw_expect(s, i++, d, len, 0, "-4.5");
    kv_close(s);
    kvt_rmdir(dir);
}
END_TEST

/* A range or history read over large values stops at KV_RANGE_BYTES_MAX
 * and says more. */
START_TEST(test_range_stops_at_the_byte_limit)
{
    char *dir = kvt_mkdtemp();
    struct kv_store *s = kvt_open(dir, 64u << 20);
    kvt_apply_puts(s, 1, 5, "big", KV_VALUE_BYTES_MAX);
    /* The data file in use holds the five values (and fits the map). */
    struct kv_status st;
    ck_assert_int_eq(kv_status(s, &st), 0);
    ck_assert_uint_ge(st.db_bytes, 5ull * KV_VALUE_BYTES_MAX);
    ck_assert_uint_le(st.db_bytes, 64ull << 20);
    struct kv_range_req req = {(const uint8_t *)"big", NULL, 3, 0,
                               KV_FLAG_PREFIX,         0};
    struct kv_range_result r;
    ck_assert_int_eq(kv_range(s, &req, &r), 0);
    ck_assert_uint_eq(r.count, 5);
    ck_assert_uint_eq(r.n_kvs, 3);
    ck_assert(r.more);
    kv_range_result_free(&r);
    /* Without the total, the scan stops at the pair that did not fit. */
    req.flags |= KV_RANGE_NO_TOTAL;
    ck_assert_int_eq(kv_range(s, &req, &r), 0);
    ck_assert_uint_eq(r.count, 3);
    ck_assert_uint_eq(r.n_kvs, 3);
    ck_assert(r.more);
    kv_range_result_free(&r);
    req.flags = KV_FLAG_PREFIX | KV_FLAG_KEYS_ONLY;
    ck_assert_int_eq(kv_range(s, &req, &r), 0);
    ck_assert_uint_eq(r.n_kvs, 5);
    ck_assert(!r.more);
    kv_range_result_free(&r);
    /* Watches catching up are bounded the same way, and resume. */
    struct kv_history_result h;
    ck_assert_int_eq(
        kv_history_read(s, (struct kv_history_pos){0, 0}, 100, &h, NULL), 0);
    ck_assert_uint_eq(h.n_events, 3);
    ck_assert(h.more);
    struct kv_history_pos next = h.next;
    kv_history_result_free(&h);
    ck_assert_int_eq(kv_history_read(s, next, 100, &h, NULL), 0);
    ck_assert_uint_eq(h.n_events, 2);
    ck_assert(!h.more);
    kv_history_result_free(&h);
    kv_close(s);
    kvt_rmdir(dir);
}
END_TEST

/* KV_RANGE_NO_TOTAL: a page of a range, in either order, with "more" but
 * without counting the rest; it is refused inside a command. */
START_TEST(test_range_page_without_total)
{
    char *dir = kvt_mkdtemp();
    struct kv_store *s = kvt_open(dir, 0);
    kvt_apply_puts(s, 1, 5, "p", 8);
    struct kv_range_req req = {(const uint8_t *)"p",
                               NULL,
                               1,
                               0,
                               KV_FLAG_PREFIX | KV_RANGE_NO_TOTAL,
                               2};
    struct kv_range_result r;
    uint8_t order[2] = {0, KV_FLAG_REVERSE};
    for (int o = 0; o < 2; o++) {
        req.flags = KV_FLAG_PREFIX | KV_RANGE_NO_TOTAL | order[o];
        for (uint64_t limit = 0; limit <= 6; limit++) {
            req.limit = limit;
            ck_assert_int_eq(kv_range(s, &req, &r), 0);
            uint64_t want = limit == 0 || limit > 5 ? 5 : limit;
            ck_assert_uint_eq(r.n_kvs, want);
            ck_assert_uint_eq(r.count, want);
            ck_assert_int_eq(r.more, want < 5);
            kv_range_result_free(&r);
        }
    }
    req.flags = KV_FLAG_PREFIX | KV_FLAG_COUNT_ONLY | KV_RANGE_NO_TOTAL;
    ck_assert_int_eq(kv_range(s, &req, &r), 0);
    ck_assert_uint_eq(r.count, 5);
    kv_range_result_free(&r);
    /* Not a flag a replicated operation may carry. */
    struct kv_cmd c;
    memset(&c, 0, sizeof(c));
    c.type = KV_CMD_TXN;
    struct kv_op op = {0};
    op.type = KV_OP_RANGE;
    op.flags = KV_RANGE_NO_TOTAL;
    op.key = (const uint8_t *)"p";
    op.key_len = 1;
    c.then_ops = &op;
    c.n_then = 1;
    ck_assert_uint_eq(kv_cmd_encoded_size(&c), 0);
    kv_close(s);
    kvt_rmdir(dir);
}
END_TEST

Suite *kv_apply_suite(void)
{
    Suite *s = suite_create("apply");
    TCase *tc = tcase_create("apply");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_apply_replay_after_crash_is_exact);
    tcase_add_test(tc, test_get_many_reads_each_key_in_order);
    tcase_add_test(tc, test_apply_refuses_a_gap);
    tcase_add_test(tc, test_apply_bad_command_yields_an_error_result_only);
    tcase_add_test(tc, test_apply_map_full_is_efull_and_store_stays_readable);
    tcase_add_test(tc, test_checkpoint_reports_the_durable_index);
    tcase_add_test(tc, test_open_refuses_a_store_dirty_from_another_boot);
    tcase_add_test(tc, test_apply_fails_cleanly_on_each_allocation);
    tcase_add_test(tc, test_reads_fail_cleanly_on_each_allocation);
    tcase_add_test(tc, test_open_refuses_a_malformed_current_pointer);
    tcase_add_test(tc, test_txn_changes_share_one_revision);
    tcase_add_test(tc, test_apply_read_modify_writes_follow_log_order);
    tcase_add_test(tc, test_range_stops_at_the_byte_limit);
    tcase_add_test(tc, test_range_page_without_total);
    suite_add_tcase(s, tc);
    return s;
}
