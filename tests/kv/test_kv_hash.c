/*
 * test_kv_hash.c - Redis hashes in the store (kv_hash.c): field updates
 * evaluated at apply time with Redis's answers, the hash as one key with
 * revisions and history, WRONGTYPE both ways, a string write or a delete
 * dropping the fields, and the field table covered by the digest, the
 * scrub and snapshots.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "kv_internal.h"
#include "kv_test_util.h"

/* Encodes a hash op on @key: for HSET/HDEL the NULL-terminated list of
 * strings (field, value pairs for HSET; fields for HDEL); for HINCRBY
 * @field and @delta; for HINCRBYFLOAT @field and @incr. */
static uint8_t *hash_cmd(uint8_t type,
                         uint8_t flags,
                         const char *key,
                         const char *field,
                         int64_t delta,
                         const char *incr,
                         size_t *len,
                         ...)
{
    const uint8_t *items[64];
    size_t lens[64];
    size_t n = 0;
    va_list ap;
    va_start(ap, len);
    const char *a;
    while ((a = va_arg(ap, const char *)) != NULL) {
        items[n] = (const uint8_t *)a;
        lens[n] = strlen(a);
        n++;
    }
    va_end(ap);
    /* Pairs are encoded as alternating items of one list: the field and
     * value of a pair are consecutive, exactly as kv_hash_pairs_encode()
     * interleaves them. */
    const uint8_t *f[32], *v[32];
    size_t fl[32], vl[32];
    size_t np = type == KV_OP_HSET ? n / 2 : n;
    for (size_t i = 0; i < np; i++) {
        size_t at = type == KV_OP_HSET ? 2 * i : i;
        f[i] = items[at];
        fl[i] = lens[at];
        if (type == KV_OP_HSET) {
            v[i] = items[at + 1];
            vl[i] = lens[at + 1];
        }
    }
    uint8_t packed[4096];
    struct kv_cmd c;
    memset(&c, 0, sizeof(c));
    c.type = type;
    c.op.type = type;
    c.op.flags = flags;
    c.op.key = (const uint8_t *)key;
    c.op.key_len = (uint32_t)strlen(key);
    if (type == KV_OP_HSET || type == KV_OP_HDEL) {
        bool values = type == KV_OP_HSET;
        uint64_t size = kv_hash_pairs_size(np, fl, values ? vl : NULL);
        ck_assert_uint_le(size, sizeof(packed));
        kv_hash_pairs_encode(np, f, fl, values ? v : NULL, vl, packed);
        c.op.value = packed;
        c.op.value_len = (uint32_t)size;
    } else {
        c.op.end = (const uint8_t *)field;
        c.op.end_len = (uint32_t)strlen(field);
        c.op.delta = delta;
        if (incr != NULL) {
            c.op.value = (const uint8_t *)incr;
            c.op.value_len = (uint32_t)strlen(incr);
        }
    }
    return kvt_encode(&c, len);
}

/* Applies @data at @index; returns the op's refusal and copies its answer
 * (the value of its one pair) into @answer. */
static uint64_t run(struct kv_store *s,
                    raft_index index,
                    uint8_t *data,
                    size_t len,
                    char *answer,
                    size_t cap)
{
    struct kv_apply_result res;
    kvt_apply_one(s, index, data, len, &res);
    const struct kv_entry_result *e = &res.entries[0];
    ck_assert_int_eq(e->code, 0);
    ck_assert_uint_eq(e->n_ops, 1);
    uint64_t refusal = e->ops[0].count;
    if (answer != NULL) {
        answer[0] = '\0';
    }
    if (refusal == KV_RMW_APPLIED) {
        ck_assert_uint_eq(e->ops[0].n_kvs, 1);
        const struct kv_kv *kv = &e->ops[0].kvs[0];
        ck_assert_uint_lt(kv->value_len, cap);
        memcpy(answer, kv->value, kv->value_len);
        answer[kv->value_len] = '\0';
    } else {
        ck_assert_uint_eq(e->ops[0].n_kvs, 0);
    }
    kv_apply_result_free(&res);
    return refusal;
}

#define HSET(s, i, key, ans, ...)                                        \
    do {                                                                 \
        size_t len_;                                                     \
        uint8_t *d_ = hash_cmd(KV_OP_HSET, 0, key, NULL, 0, NULL, &len_, \
                               __VA_ARGS__, NULL);                       \
        ck_assert_uint_eq(run(s, i, d_, len_, ans, sizeof(ans)),         \
                          KV_RMW_APPLIED);                               \
    } while (0)

/* The value of @field in hash @key ("" and false if missing). */
static bool hget(struct kv_store *s,
                 const char *key,
                 const char *field,
                 char *out,
                 size_t cap)
{
    struct kv_range_result r;
    const uint8_t *f = (const uint8_t *)field;
    uint32_t fl = (uint32_t)strlen(field);
    out[0] = '\0';
    int rv = kv_hash_read(s, (const uint8_t *)key, (uint32_t)strlen(key), &f,
                          &fl, 1, NULL, 0, 0, false, &r);
    ck_assert_int_eq(rv, 0);
    ck_assert_uint_eq(r.n_kvs, 1);
    bool found = r.kvs[0].value != NULL;
    if (found) {
        ck_assert_uint_lt(r.kvs[0].value_len, cap);
        memcpy(out, r.kvs[0].value, r.kvs[0].value_len);
        out[r.kvs[0].value_len] = '\0';
    }
    kv_range_result_free(&r);
    return found;
}

/* The hash as "f=v,f=v," in field order, and its count. */
static uint64_t hgetall(struct kv_store *s,
                        const char *key,
                        char *out,
                        size_t cap)
{
    struct kv_range_result r;
    size_t len = 0;
    ck_assert_int_eq(
        kv_hash_read(s, (const uint8_t *)key, (uint32_t)strlen(key), NULL, NULL,
                     0, NULL, 0, 0, false, &r),
        0);
    out[0] = '\0';
    for (size_t i = 0; i < r.n_kvs; i++) {
        len += (size_t)snprintf(out + len, cap - len, "%.*s=%.*s,",
                                (int)r.kvs[i].key_len, r.kvs[i].key,
                                (int)r.kvs[i].value_len, r.kvs[i].value);
    }
    uint64_t count = r.count;
    ck_assert_uint_eq(count, r.n_kvs);
    kv_range_result_free(&r);
    return count;
}

/* HSET answers the fields that were new, overwrites the others, and the
 * hash reads back in field order with its count. */
START_TEST(test_hash_hset_answers_new_fields_and_reads_back)
{
    char *dir = kvt_mkdtemp();
    struct kv_store *s = kvt_open(dir, 0);
    char ans[64], all[256], v[64];
    HSET(s, 1, "h", ans, "b", "2", "a", "1");
    ck_assert_str_eq(ans, "2");
    HSET(s, 2, "h", ans, "a", "3", "c", "4");
    ck_assert_str_eq(ans, "1");
    ck_assert_uint_eq(hgetall(s, "h", all, sizeof(all)), 3);
    ck_assert_str_eq(all, "a=3,b=2,c=4,");
    ck_assert(hget(s, "h", "b", v, sizeof(v)));
    ck_assert_str_eq(v, "2");
    ck_assert(!hget(s, "h", "zz", v, sizeof(v)));
    /* The key is a hash with the count as value, two versions old. */
    struct kv_range_result r;
    ck_assert_int_eq(kv_get(s, (const uint8_t *)"h", 1, &r), 0);
    ck_assert_uint_eq(r.kvs[0].type, KV_TYPE_HASH);
    ck_assert_uint_eq(r.kvs[0].version, 2);
    ck_assert_uint_eq(r.kvs[0].create_revision, 1);
    ck_assert_uint_eq(r.kvs[0].mod_revision, 2);
    ck_assert_int_eq(memcmp(r.kvs[0].value, "3", 1), 0);
    kv_range_result_free(&r);
    kv_close(s);
    kvt_rmdir(dir);
}
END_TEST

/* The hash key's record stays a few bytes however many fields the hash
 * has: a field's update writes the field and that small record, never the
 * whole hash. */
START_TEST(test_hash_a_field_update_does_not_rewrite_the_hash)
{
    char *dir = kvt_mkdtemp();
    struct kv_store *s = kvt_open(dir, 0);
    char ans[64], f[32], v[64];
    struct kvt_batch b = {0};
    for (unsigned i = 0; i < 500; i++) {
        size_t len;
        snprintf(f, sizeof(f), "field%04u", i);
        snprintf(v, sizeof(v), "value-%u-%s", i, "xxxxxxxxxxxxxxxxxxxxxxxx");
        uint8_t *d =
            hash_cmd(KV_OP_HSET, 0, "big", NULL, 0, NULL, &len, f, v, NULL);
        kvt_batch_add(&b, i + 1, d, len);
    }
    ck_assert_int_eq(kv_apply(s, b.e, b.n, NULL), 0);
    kvt_batch_clear(&b);
    struct kv_range_result r;
    ck_assert_int_eq(kv_get(s, (const uint8_t *)"big", 3, &r), 0);
    ck_assert_uint_eq(r.kvs[0].value_len, 3); /* "500" */
    ck_assert_uint_eq(r.kvs[0].version, 500);
    kv_range_result_free(&r);
    HSET(s, 501, "big", ans, "field0007", "new");
    ck_assert_str_eq(ans, "0");
    ck_assert(hget(s, "big", "field0007", v, sizeof(v)));
    ck_assert_str_eq(v, "new");
    kv_close(s);
    kvt_rmdir(dir);
}
END_TEST

/* HDEL answers the fields removed; removing the last field removes the
 * hash (a deletion event), and removing nothing changes no revision. */
START_TEST(test_hash_hdel_removes_fields_and_then_the_hash)
{
    char *dir = kvt_mkdtemp();
    struct kv_store *s = kvt_open(dir, 0);
    char ans[64], all[256];
    size_t len;
    HSET(s, 1, "h", ans, "a", "1", "b", "2");
    uint8_t *d =
        hash_cmd(KV_OP_HDEL, 0, "h", NULL, 0, NULL, &len, "a", "x", NULL);
    ck_assert_uint_eq(run(s, 2, d, len, ans, sizeof(ans)), KV_RMW_APPLIED);
    ck_assert_str_eq(ans, "1");
    ck_assert_uint_eq(hgetall(s, "h", all, sizeof(all)), 1);
    d = hash_cmd(KV_OP_HDEL, 0, "h", NULL, 0, NULL, &len, "nope", NULL);
    ck_assert_uint_eq(run(s, 3, d, len, ans, sizeof(ans)), KV_RMW_APPLIED);
    ck_assert_str_eq(ans, "0");
    struct kv_status st;
    ck_assert_int_eq(kv_status(s, &st), 0);
    ck_assert_uint_eq(st.revision, 2); /* the HDEL of nothing made none */
    d = hash_cmd(KV_OP_HDEL, 0, "h", NULL, 0, NULL, &len, "b", NULL);
    ck_assert_uint_eq(run(s, 4, d, len, ans, sizeof(ans)), KV_RMW_APPLIED);
    ck_assert_str_eq(ans, "1");
    struct kv_range_result r;
    ck_assert_int_eq(kv_get(s, (const uint8_t *)"h", 1, &r), KV_ENOTFOUND);
    kv_range_result_free(&r);
    ck_assert_int_eq(kv_hash_read(s, (const uint8_t *)"h", 1, NULL, NULL, 0,
                                  NULL, 0, 0, false, &r),
                     KV_ENOTFOUND);
    kv_range_result_free(&r);
    struct kv_history_result h;
    ck_assert_int_eq(
        kv_history_read(s, (struct kv_history_pos){3, 0}, 0, &h, NULL), 0);
    ck_assert_uint_eq(h.n_events, 1);
    ck_assert_uint_eq(h.events[0].type, KV_EVENT_DELETE);
    kv_history_result_free(&h);
    kv_close(s);
    kvt_rmdir(dir);
}
END_TEST

/* HINCRBY and HINCRBYFLOAT follow INCRBY's and INCRBYFLOAT's rules on the
 * field; HSETNX sets only a missing field. */
START_TEST(test_hash_increments_and_hsetnx_follow_redis)
{
    char *dir = kvt_mkdtemp();
    struct kv_store *s = kvt_open(dir, 0);
    char ans[64], v[64];
    size_t len;
    uint8_t *d = hash_cmd(KV_OP_HINCRBY, 0, "h", "n", 5, NULL, &len, NULL);
    ck_assert_uint_eq(run(s, 1, d, len, ans, sizeof(ans)), KV_RMW_APPLIED);
    ck_assert_str_eq(ans, "5");
    d = hash_cmd(KV_OP_HINCRBY, 0, "h", "n", -7, NULL, &len, NULL);
    ck_assert_uint_eq(run(s, 2, d, len, ans, sizeof(ans)), KV_RMW_APPLIED);
    ck_assert_str_eq(ans, "-2");
    d = hash_cmd(KV_OP_HINCRBY, 0, "h", "n", INT64_MAX, NULL, &len, NULL);
    ck_assert_uint_eq(run(s, 3, d, len, ans, sizeof(ans)), KV_RMW_APPLIED);
    d = hash_cmd(KV_OP_HINCRBY, 0, "h", "n", 10, NULL, &len, NULL);
    ck_assert_uint_eq(run(s, 4, d, len, ans, sizeof(ans)), KV_RMW_OVERFLOW);
    HSET(s, 5, "h", ans, "text", "abc");
    d = hash_cmd(KV_OP_HINCRBY, 0, "h", "text", 1, NULL, &len, NULL);
    ck_assert_uint_eq(run(s, 6, d, len, ans, sizeof(ans)), KV_RMW_NOT_INTEGER);
    d = hash_cmd(KV_OP_HINCRBYFLOAT, 0, "h", "f", 0, "10.5", &len, NULL);
    ck_assert_uint_eq(run(s, 7, d, len, ans, sizeof(ans)), KV_RMW_APPLIED);
    ck_assert_str_eq(ans, "10.5");
    d = hash_cmd(KV_OP_HINCRBYFLOAT, 0, "h", "f", 0, "0.1", &len, NULL);
    ck_assert_uint_eq(run(s, 8, d, len, ans, sizeof(ans)), KV_RMW_APPLIED);
    ck_assert_str_eq(ans, "10.6");
    d = hash_cmd(KV_OP_HINCRBYFLOAT, 0, "h", "text", 0, "1", &len, NULL);
    ck_assert_uint_eq(run(s, 9, d, len, ans, sizeof(ans)), KV_RMW_NOT_FLOAT);
    d = hash_cmd(KV_OP_HSET, KV_HASH_NX, "h", NULL, 0, NULL, &len, "f", "x",
                 NULL);
    ck_assert_uint_eq(run(s, 10, d, len, ans, sizeof(ans)), KV_RMW_APPLIED);
    ck_assert_str_eq(ans, "0");
    d = hash_cmd(KV_OP_HSET, KV_HASH_NX, "h", NULL, 0, NULL, &len, "g", "x",
                 NULL);
    ck_assert_uint_eq(run(s, 11, d, len, ans, sizeof(ans)), KV_RMW_APPLIED);
    ck_assert_str_eq(ans, "1");
    ck_assert(hget(s, "h", "f", v, sizeof(v)));
    ck_assert_str_eq(v, "10.6");
    kv_close(s);
    kvt_rmdir(dir);
}
END_TEST

/* A hash op on a string is refused with KV_RMW_WRONGTYPE and changes
 * nothing; INCR and APPEND on a hash are refused the same way; reading a
 * string as a hash is KV_EWRONGTYPE. */
START_TEST(test_hash_and_string_ops_refuse_the_other_type)
{
    char *dir = kvt_mkdtemp();
    struct kv_store *s = kvt_open(dir, 0);
    char ans[64];
    size_t len;
    struct kv_apply_result res;
    uint8_t *d = kvt_put("str", "v", &len);
    kvt_apply_one(s, 1, d, len, &res);
    kv_apply_result_free(&res);
    d = hash_cmd(KV_OP_HSET, 0, "str", NULL, 0, NULL, &len, "f", "v", NULL);
    ck_assert_uint_eq(run(s, 2, d, len, ans, sizeof(ans)), KV_RMW_WRONGTYPE);
    d = hash_cmd(KV_OP_HINCRBY, 0, "str", "f", 1, NULL, &len, NULL);
    ck_assert_uint_eq(run(s, 3, d, len, ans, sizeof(ans)), KV_RMW_WRONGTYPE);
    HSET(s, 4, "h", ans, "f", "1");
    struct kv_cmd c;
    memset(&c, 0, sizeof(c));
    c.type = KV_CMD_INCRBY;
    c.op.type = KV_OP_INCRBY;
    c.op.key = (const uint8_t *)"h";
    c.op.key_len = 1;
    c.op.delta = 1;
    d = kvt_encode(&c, &len);
    ck_assert_uint_eq(run(s, 5, d, len, ans, sizeof(ans)), KV_RMW_WRONGTYPE);
    c.type = KV_CMD_APPEND;
    c.op.type = KV_OP_APPEND;
    c.op.value = (const uint8_t *)"x";
    c.op.value_len = 1;
    d = kvt_encode(&c, &len);
    ck_assert_uint_eq(run(s, 6, d, len, ans, sizeof(ans)), KV_RMW_WRONGTYPE);
    struct kv_range_result r;
    ck_assert_int_eq(kv_hash_read(s, (const uint8_t *)"str", 3, NULL, NULL, 0,
                                  NULL, 0, 0, false, &r),
                     KV_EWRONGTYPE);
    kv_range_result_free(&r);
    struct kv_status st;
    ck_assert_int_eq(kv_status(s, &st), 0);
    ck_assert_uint_eq(st.revision, 2); /* the put and the one HSET */
    kv_close(s);
    kvt_rmdir(dir);
}
END_TEST

/* A plain put on a hash key replaces the hash with a string, and a delete
 * (or delete-range) removes the hash: either way its fields go, so a new
 * hash under the same key starts empty and the digest still sums. */
START_TEST(test_hash_a_put_or_delete_drops_the_fields)
{
    char *dir = kvt_mkdtemp();
    struct kv_store *s = kvt_open(dir, 0);
    char ans[64], all[256];
    struct kv_apply_result res;
    size_t len;
    HSET(s, 1, "h", ans, "a", "1", "b", "2");
    uint8_t *d = kvt_put("h", "plain", &len);
    kvt_apply_one(s, 2, d, len, &res);
    kv_apply_result_free(&res);
    struct kv_range_result r;
    ck_assert_int_eq(kv_get(s, (const uint8_t *)"h", 1, &r), 0);
    ck_assert_uint_eq(r.kvs[0].type, KV_TYPE_STRING);
    kv_range_result_free(&r);
    d = kvt_del("h", &len);
    kvt_apply_one(s, 3, d, len, &res);
    kv_apply_result_free(&res);
    HSET(s, 4, "h", ans, "c", "3");
    ck_assert_uint_eq(hgetall(s, "h", all, sizeof(all)), 1);
    ck_assert_str_eq(all, "c=3,");
    /* A delete-range over it. */
    struct kv_cmd c;
    memset(&c, 0, sizeof(c));
    c.type = KV_CMD_DELETE_RANGE;
    c.op.type = KV_OP_DELETE_RANGE;
    c.op.key = (const uint8_t *)"a";
    c.op.key_len = 1;
    c.op.end = (const uint8_t *)"z";
    c.op.end_len = 1;
    d = kvt_encode(&c, &len);
    kvt_apply_one(s, 5, d, len, &res);
    kv_apply_result_free(&res);
    HSET(s, 6, "h", ans, "d", "4");
    ck_assert_uint_eq(hgetall(s, "h", all, sizeof(all)), 1);
    ck_assert_str_eq(all, "d=4,");
    /* Nothing of the dropped fields is left for the scrub to count. */
    struct kv_scrub *sc = NULL;
    bool done = false;
    ck_assert_int_eq(kv_scrub_create(s, &sc), 0);
    ck_assert_int_eq(kv_scrub_step(s, sc, 0, &done), 0);
    ck_assert(done);
    struct kv_scrub_stats stats;
    kv_scrub_get_stats(sc, &stats);
    ck_assert_uint_eq(stats.digest_checks, 1);
    kv_scrub_destroy(sc);
    kv_close(s);
    kvt_rmdir(dir);
}
END_TEST

/* Every change of a hash is a put event of the hash key in the history
 * (its value the field count), and moves the key's mod_revision, so a
 * transaction guarded by the revision it read (WATCH) fails after another
 * client's HSET. */
START_TEST(test_hash_changes_are_history_events_and_fail_a_watch_guard)
{
    char *dir = kvt_mkdtemp();
    struct kv_store *s = kvt_open(dir, 0);
    char ans[64];
    HSET(s, 1, "h", ans, "a", "1");
    HSET(s, 2, "h", ans, "b", "2");
    struct kv_history_result h;
    ck_assert_int_eq(
        kv_history_read(s, (struct kv_history_pos){1, 0}, 0, &h, NULL), 0);
    ck_assert_uint_eq(h.n_events, 2);
    ck_assert_uint_eq(h.events[1].type, KV_EVENT_PUT);
    ck_assert_uint_eq(h.events[1].kv.key_len, 1);
    ck_assert_int_eq(memcmp(h.events[1].kv.key, "h", 1), 0);
    ck_assert_uint_eq(h.events[1].kv.mod_revision, 2);
    ck_assert_uint_eq(h.events[1].kv.version, 2);
    ck_assert_int_eq(memcmp(h.events[1].kv.value, "2", 1), 0);
    kv_history_result_free(&h);
    /* WATCH saw mod_revision 2; another client's HSET moves it. */
    HSET(s, 3, "h", ans, "a", "9");
    struct kv_cmp cmp;
    struct kv_op put;
    memset(&cmp, 0, sizeof(cmp));
    memset(&put, 0, sizeof(put));
    cmp.target = KV_CMP_MOD_REVISION;
    cmp.op = KV_CMP_EQ;
    cmp.key = (const uint8_t *)"h";
    cmp.key_len = 1;
    cmp.number = 2;
    put.type = KV_OP_PUT;
    put.key = (const uint8_t *)"other";
    put.key_len = 5;
    struct kv_cmd c;
    memset(&c, 0, sizeof(c));
    c.type = KV_CMD_TXN;
    c.cmps = &cmp;
    c.n_cmps = 1;
    c.then_ops = &put;
    c.n_then = 1;
    size_t len;
    uint8_t *d = kvt_encode(&c, &len);
    struct kv_apply_result res;
    kvt_apply_one(s, 4, d, len, &res);
    ck_assert(!res.entries[0].succeeded);
    kv_apply_result_free(&res);
    kv_close(s);
    kvt_rmdir(dir);
}
END_TEST

/* Applies a log mixing hash ops, puts and deletes of the same keys. */
static void apply_mixed(struct kv_store *s, uint64_t seed, size_t n)
{
    struct kvt_batch b = {0};
    char key[16], f[16], v[32];
    for (size_t i = 0; i < n; i++) {
        size_t len = 0;
        uint8_t *d;
        snprintf(key, sizeof(key), "k%u", kvt_below(&seed, 6));
        snprintf(f, sizeof(f), "f%u", kvt_below(&seed, 20));
        snprintf(v, sizeof(v), "v%zu", i);
        switch (kvt_below(&seed, 8)) {
        case 0:
            d = kvt_put(key, v, &len);
            break;
        case 1:
            d = kvt_del(key, &len);
            break;
        case 2:
            d = hash_cmd(KV_OP_HDEL, 0, key, NULL, 0, NULL, &len, f, NULL);
            break;
        case 3:
            d = hash_cmd(KV_OP_HINCRBY, 0, key, f, 3, NULL, &len, NULL);
            break;
        default:
            d = hash_cmd(KV_OP_HSET, 0, key, NULL, 0, NULL, &len, f, v, "g", v,
                         NULL);
            break;
        }
        kvt_batch_add(&b, i + 1, d, len);
    }
    ck_assert_int_eq(kv_apply(s, b.e, b.n, NULL), 0);
    kvt_batch_clear(&b);
}

static uint64_t digest_of(struct kv_store *s)
{
    struct kv_status st;
    ck_assert_int_eq(kv_status(s, &st), 0);
    return st.digest;
}

/* Two replicas applying the same log have the same digest, which changes
 * with a field's value; a snapshot carries the fields to a third, whose
 * dump, digest and scrub agree. */
START_TEST(test_hash_digest_and_snapshot_cover_the_fields)
{
    char *da = kvt_mkdtemp(), *db = kvt_mkdtemp(), *dc = kvt_mkdtemp();
    struct kv_store *a = kvt_open(da, 0), *b = kvt_open(db, 0);
    struct kv_store *c = kvt_open(dc, 0);
    apply_mixed(a, 42, 300);
    apply_mixed(b, 42, 300);
    ck_assert_uint_eq(digest_of(a), digest_of(b));
    /* One field differs: so does the digest. */
    char ans[64];
    HSET(a, 301, "zz", ans, "f", "1");
    HSET(b, 301, "zz", ans, "f", "2");
    ck_assert_uint_ne(digest_of(a), digest_of(b));
    kvt_snapshot_transfer(a, da, c);
    char *dump_a = kvt_dump(a), *dump_c = kvt_dump(c);
    ck_assert_str_eq(dump_a, dump_c);
    ck_assert_ptr_nonnull(strstr(dump_a, " t1\n")); /* hashes are in it */
    ck_assert_uint_eq(digest_of(a), digest_of(c));
    struct kv_scrub *sc = NULL;
    bool done = false;
    ck_assert_int_eq(kv_scrub_create(c, &sc), 0);
    while (!done) {
        ck_assert_int_eq(kv_scrub_step(c, sc, 200, &done), 0);
    }
    struct kv_scrub_stats st;
    kv_scrub_get_stats(sc, &st);
    ck_assert_uint_eq(st.digest_checks, 1);
    kv_scrub_destroy(sc);
    free(dump_a);
    free(dump_c);
    kv_close(a);
    kv_close(b);
    kv_close(c);
    kvt_rmdir(da);
    kvt_rmdir(db);
    kvt_rmdir(dc);
}
END_TEST

/* The codec round-trips every hash op and refuses a malformed list, a
 * field too long for its key, an HSETNX of two pairs; HDEL frees space
 * (a store over quota takes it) and a hash op counts its fields among
 * the changes it reserves room for. */
START_TEST(test_hash_ops_round_trip_and_bad_ones_are_refused)
{
    size_t len;
    struct kv_cmd d;
    uint8_t *buf =
        hash_cmd(KV_OP_HINCRBYFLOAT, 0, "h", "fld", 0, "1.5", &len, NULL);
    ck_assert_int_eq(kv_cmd_decode(buf, len, NULL, &d), 0);
    ck_assert_uint_eq(d.op.type, KV_OP_HINCRBYFLOAT);
    ck_assert_uint_eq(d.op.end_len, 3);
    ck_assert_uint_eq(d.op.value_len, 3);
    kv_cmd_free(&d, NULL);
    free(buf);
    buf = hash_cmd(KV_OP_HINCRBY, 0, "h", "f", -3, NULL, &len, NULL);
    ck_assert_int_eq(kv_cmd_decode(buf, len, NULL, &d), 0);
    ck_assert_int_eq(d.op.delta, -3);
    kv_cmd_free(&d, NULL);
    free(buf);
    buf = hash_cmd(KV_OP_HSET, 0, "h", NULL, 0, NULL, &len, "a", "1", "b", "2",
                   NULL);
    ck_assert_uint_eq(kv_cmd_changes_max(buf, len), 3);
    ck_assert(kv_cmd_adds_data(buf, len));
    /* Cut short: malformed. */
    ck_assert_int_eq(kv_cmd_decode(buf, len - 1, NULL, &d), KV_EBADCMD);
    free(buf);
    buf = hash_cmd(KV_OP_HDEL, 0, "h", NULL, 0, NULL, &len, "a", NULL);
    ck_assert(!kv_cmd_adds_data(buf, len));
    free(buf);
    /* HSETNX takes one pair only. */
    struct kv_cmd c;
    uint8_t packed[64], out[256];
    const uint8_t *f[2] = {(const uint8_t *)"a", (const uint8_t *)"b"};
    size_t fl[2] = {1, 1};
    memset(&c, 0, sizeof(c));
    c.type = KV_CMD_HSET;
    c.op.type = KV_OP_HSET;
    c.op.flags = KV_HASH_NX;
    c.op.key = (const uint8_t *)"h";
    c.op.key_len = 1;
    kv_hash_pairs_encode(2, f, fl, f, fl, packed);
    c.op.value = packed;
    c.op.value_len = (uint32_t)kv_hash_pairs_size(2, fl, fl);
    ck_assert_int_eq(kv_cmd_encode(&c, out, sizeof(out), &len), KV_EINVAL);
    /* A field that does not fit beside its key. */
    ck_assert(kv_hash_field_fits(1, KV_KEY_BYTES_MAX - 3));
    ck_assert(!kv_hash_field_fits(1, KV_KEY_BYTES_MAX - 2));
    ck_assert(!kv_hash_field_fits(0, 1));
}
END_TEST

Suite *kv_hash_suite(void)
{
    Suite *s = suite_create("hash");
    TCase *tc = tcase_create("hash");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_hash_hset_answers_new_fields_and_reads_back);
    tcase_add_test(tc, test_hash_a_field_update_does_not_rewrite_the_hash);
    tcase_add_test(tc, test_hash_hdel_removes_fields_and_then_the_hash);
    tcase_add_test(tc, test_hash_increments_and_hsetnx_follow_redis);
    tcase_add_test(tc, test_hash_and_string_ops_refuse_the_other_type);
    tcase_add_test(tc, test_hash_a_put_or_delete_drops_the_fields);
    tcase_add_test(tc,
                   test_hash_changes_are_history_events_and_fail_a_watch_guard);
    tcase_add_test(tc, test_hash_digest_and_snapshot_cover_the_fields);
    tcase_add_test(tc, test_hash_ops_round_trip_and_bad_ones_are_refused);
    suite_add_tcase(s, tc);
    return s;
}
