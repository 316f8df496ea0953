/*
 * test_kv_lease.c - the store's lease table: grant, attach keys, refresh,
 * expiry decided against the replicated lease clock, revoke deleting every
 * attached key in one entry (seen by the history), the bounds, the
 * encoding, and survival across a snapshot install.
 */
#include <string.h>

#include "kv_test_util.h"

static uint8_t *lease_cmd(uint8_t type,
                          uint64_t clock,
                          uint64_t ttl_ms,
                          uint64_t *ids,
                          uint32_t n,
                          size_t *len)
{
    struct kv_cmd c;
    memset(&c, 0, sizeof(c));
    c.type = type;
    c.clock = clock;
    c.ttl_ms = ttl_ms;
    c.lease_ids = ids;
    c.n_lease_ids = n;
    return kvt_encode(&c, len);
}

static uint8_t *put_leased(const char *key,
                           const char *val,
                           uint64_t lease,
                           size_t *len)
{
    struct kv_cmd c;
    memset(&c, 0, sizeof(c));
    c.type = KV_CMD_PUT;
    c.op.type = KV_OP_PUT;
    c.op.key = (const uint8_t *)key;
    c.op.key_len = (uint32_t)strlen(key);
    c.op.value = (const uint8_t *)val;
    c.op.value_len = (uint32_t)strlen(val);
    c.op.lease = lease;
    return kvt_encode(&c, len);
}

/* Applies one command at @index and returns its entry code; the first op's
 * count goes to *@count (if not NULL). */
static int apply(struct kv_store *s,
                 raft_index index,
                 uint8_t *d,
                 size_t len,
                 uint64_t *count)
{
    struct kv_apply_result res;
    kvt_apply_one(s, index, d, len, &res);
    int code = res.entries[0].code;
    if (count != NULL) {
        *count = res.entries[0].n_ops > 0 ? res.entries[0].ops[0].count : 0;
    }
    kv_apply_result_free(&res);
    return code;
}

static int grant(struct kv_store *s,
                 raft_index index,
                 uint64_t id,
                 uint64_t ttl,
                 uint64_t clock)
{
    size_t len;
    uint64_t ids[1] = {id};
    uint8_t *d = lease_cmd(KV_CMD_LEASE_GRANT, clock, ttl, ids, 1, &len);
    return apply(s, index, d, len, NULL);
}

static bool key_exists(struct kv_store *s, const char *key)
{
    struct kv_range_result r;
    int rv = kv_get(s, (const uint8_t *)key, (uint32_t)strlen(key), &r);
    kv_range_result_free(&r);
    return rv == 0;
}

START_TEST(test_lease_revoke_deletes_attached_keys_in_one_entry)
{
    char *dir = kvt_mkdtemp();
    struct kv_store *s = kvt_open(dir, 0);
    size_t len;
    uint64_t n = 0;
    ck_assert_int_eq(grant(s, 1, 7, 5000, 100), 0);
    uint8_t *d = put_leased("a", "1", 7, &len);
    ck_assert_int_eq(apply(s, 2, d, len, NULL), 0);
    d = put_leased("b", "2", 7, &len);
    ck_assert_int_eq(apply(s, 3, d, len, NULL), 0);
    d = kvt_put("c", "3", &len); /* not attached */
    ck_assert_int_eq(apply(s, 4, d, len, NULL), 0);

    struct kv_lease l;
    ck_assert_int_eq(kv_lease_get(s, 7, &l), 0);
    ck_assert_uint_eq(l.ttl_ms, 5000);
    ck_assert_uint_eq(l.deadline, 5100);
    ck_assert_uint_eq(l.keys, 2);
    struct kv_range_result kr;
    ck_assert_int_eq(kv_lease_keys(s, 7, 0, &kr), 0);
    ck_assert_uint_eq(kr.n_kvs, 2);
    ck_assert(memcmp(kr.kvs[0].key, "a", 1) == 0);
    ck_assert(memcmp(kr.kvs[1].key, "b", 1) == 0);
    kv_range_result_free(&kr);
    struct kv_range_result g;
    ck_assert_int_eq(kv_get(s, (const uint8_t *)"a", 1, &g), 0);
    ck_assert_uint_eq(g.kvs[0].lease, 7);
    kv_range_result_free(&g);

    uint64_t ids[1] = {7};
    d = lease_cmd(KV_CMD_LEASE_REVOKE, 0, 0, ids, 1, &len);
    ck_assert_int_eq(apply(s, 5, d, len, &n), 0);
    ck_assert_uint_eq(n, 2);
    ck_assert(!key_exists(s, "a"));
    ck_assert(!key_exists(s, "b"));
    ck_assert(key_exists(s, "c"));
    ck_assert_int_eq(kv_lease_get(s, 7, &l), KV_ENOTFOUND);

    /* Both deletions are one revision of the history, for watchers. */
    /* The grant changed no key: the puts are revisions 1..3. */
    struct kv_history_pos from = {4, 0};
    struct kv_history_result h;
    ck_assert_int_eq(kv_history_read(s, from, 0, &h, NULL), 0);
    ck_assert_uint_eq(h.n_events, 2);
    ck_assert_uint_eq(h.events[0].type, KV_EVENT_DELETE);
    ck_assert_uint_eq(h.events[1].type, KV_EVENT_DELETE);
    ck_assert_uint_eq(h.events[0].kv.mod_revision, 4);
    ck_assert_uint_eq(h.events[1].kv.mod_revision, 4);
    kv_history_result_free(&h);

    /* Revoking it again is refused, the same on every replica. */
    d = lease_cmd(KV_CMD_LEASE_REVOKE, 0, 0, ids, 1, &len);
    ck_assert_int_eq(apply(s, 6, d, len, NULL), KV_ENOLEASE);
    kv_close(s);
    kvt_rmdir(dir);
}
END_TEST

START_TEST(test_lease_expire_skips_leases_refreshed_since_the_decision)
{
    char *dir = kvt_mkdtemp();
    struct kv_store *s = kvt_open(dir, 0);
    size_t len;
    uint64_t n = 0;
    ck_assert_int_eq(grant(s, 1, 1, 1000, 0), 0);
    ck_assert_int_eq(grant(s, 2, 2, 1000, 0), 0);
    uint8_t *d = put_leased("k1", "v", 1, &len);
    ck_assert_int_eq(apply(s, 3, d, len, NULL), 0);
    d = put_leased("k2", "v", 2, &len);
    ck_assert_int_eq(apply(s, 4, d, len, NULL), 0);

    /* Nothing is due before the deadline on the lease clock. */
    uint64_t due[4];
    size_t nd = 0;
    ck_assert_int_eq(kv_lease_due(s, 999, due, 4, &nd), 0);
    ck_assert_uint_eq(nd, 0);
    ck_assert_int_eq(kv_lease_due(s, 1000, due, 4, &nd), 0);
    ck_assert_uint_eq(nd, 2);

    /* Lease 2 is kept alive at clock 900: its deadline becomes 1900. */
    uint64_t two[1] = {2};
    d = lease_cmd(KV_CMD_LEASE_REFRESH, 900, 0, two, 1, &len);
    ck_assert_int_eq(apply(s, 5, d, len, &n), 0);
    ck_assert_uint_eq(n, 1900);

    /* An expiry decided at 1000 for both ends only lease 1. */
    uint64_t both[2] = {1, 2};
    d = lease_cmd(KV_CMD_LEASE_EXPIRE, 1000, 0, both, 2, &len);
    ck_assert_int_eq(apply(s, 6, d, len, &n), 0);
    ck_assert_uint_eq(n, 1);
    ck_assert(!key_exists(s, "k1"));
    ck_assert(key_exists(s, "k2"));
    struct kv_lease l;
    ck_assert_int_eq(kv_lease_get(s, 1, &l), KV_ENOTFOUND);
    ck_assert_int_eq(kv_lease_get(s, 2, &l), 0);

    /* The clock only moves forward. */
    uint64_t clock = 0, leases = 0;
    ck_assert_int_eq(kv_lease_clock(s, &clock, &leases), 0);
    ck_assert_uint_eq(clock, 1000);
    ck_assert_uint_eq(leases, 1);
    d = lease_cmd(KV_CMD_LEASE_CLOCK, 500, 0, NULL, 0, &len);
    ck_assert_int_eq(apply(s, 7, d, len, NULL), 0);
    ck_assert_int_eq(kv_lease_clock(s, &clock, NULL), 0);
    ck_assert_uint_eq(clock, 1000);

    /* Refreshing a lease that ended reports it gone (0). */
    uint64_t one[1] = {1};
    d = lease_cmd(KV_CMD_LEASE_REFRESH, 1100, 0, one, 1, &len);
    ck_assert_int_eq(apply(s, 8, d, len, &n), 0);
    ck_assert_uint_eq(n, 0);
    kv_close(s);
    kvt_rmdir(dir);
}
END_TEST

START_TEST(test_lease_put_moves_keys_between_leases_and_detaches)
{
    char *dir = kvt_mkdtemp();
    struct kv_store *s = kvt_open(dir, 0);
    size_t len;
    struct kv_lease l;
    ck_assert_int_eq(grant(s, 1, 1, 1000, 0), 0);
    ck_assert_int_eq(grant(s, 2, 2, 1000, 0), 0);
    uint8_t *d = put_leased("k", "v", 1, &len);
    ck_assert_int_eq(apply(s, 3, d, len, NULL), 0);
    d = put_leased("k", "v2", 2, &len);
    ck_assert_int_eq(apply(s, 4, d, len, NULL), 0);
    ck_assert_int_eq(kv_lease_get(s, 1, &l), 0);
    ck_assert_uint_eq(l.keys, 0);
    ck_assert_int_eq(kv_lease_get(s, 2, &l), 0);
    ck_assert_uint_eq(l.keys, 1);
    /* A plain put detaches: revoking lease 2 leaves the key. */
    d = kvt_put("k", "v3", &len);
    ck_assert_int_eq(apply(s, 5, d, len, NULL), 0);
    ck_assert_int_eq(kv_lease_get(s, 2, &l), 0);
    ck_assert_uint_eq(l.keys, 0);
    uint64_t two[1] = {2};
    d = lease_cmd(KV_CMD_LEASE_REVOKE, 0, 0, two, 1, &len);
    ck_assert_int_eq(apply(s, 6, d, len, NULL), 0);
    ck_assert(key_exists(s, "k"));
    /* A deleted key is detached too. */
    d = put_leased("j", "v", 1, &len);
    ck_assert_int_eq(apply(s, 7, d, len, NULL), 0);
    d = kvt_del("j", &len);
    ck_assert_int_eq(apply(s, 8, d, len, NULL), 0);
    ck_assert_int_eq(kv_lease_get(s, 1, &l), 0);
    ck_assert_uint_eq(l.keys, 0);
    /* A put naming a lease that does not exist changes nothing. */
    d = put_leased("x", "v", 99, &len);
    ck_assert_int_eq(apply(s, 9, d, len, NULL), KV_ENOLEASE);
    ck_assert(!key_exists(s, "x"));
    kv_close(s);
    kvt_rmdir(dir);
}
END_TEST

START_TEST(test_lease_grant_refuses_duplicates_and_bad_input)
{
    char *dir = kvt_mkdtemp();
    struct kv_store *s = kvt_open(dir, 0);
    ck_assert_int_eq(grant(s, 1, 5, 1000, 0), 0);
    ck_assert_int_eq(grant(s, 2, 5, 1000, 0), KV_ELEASEEXISTS);
    struct kv_cmd c;
    uint64_t id = 1;
    memset(&c, 0, sizeof(c));
    c.type = KV_CMD_LEASE_GRANT;
    c.lease_ids = &id;
    c.n_lease_ids = 1;
    c.ttl_ms = 0;
    ck_assert_uint_eq(kv_cmd_encoded_size(&c), 0);
    c.ttl_ms = KV_LEASE_TTL_MS_MAX + 1;
    ck_assert_uint_eq(kv_cmd_encoded_size(&c), 0);
    c.ttl_ms = KV_LEASE_TTL_MS_MAX;
    ck_assert_uint_gt(kv_cmd_encoded_size(&c), 0);
    id = 0;
    ck_assert_uint_eq(kv_cmd_encoded_size(&c), 0);
    /* A refresh batch is bounded. */
    memset(&c, 0, sizeof(c));
    c.type = KV_CMD_LEASE_REFRESH;
    uint64_t *many = calloc(KV_LEASE_BATCH_MAX + 1, sizeof(uint64_t));
    for (uint32_t i = 0; i <= KV_LEASE_BATCH_MAX; i++) {
        many[i] = i + 1;
    }
    c.lease_ids = many;
    c.n_lease_ids = KV_LEASE_BATCH_MAX + 1;
    uint8_t buf[64];
    size_t len = 0;
    ck_assert_int_eq(kv_cmd_encode(&c, buf, sizeof(buf), &len), KV_ELIMIT);
    c.n_lease_ids = KV_LEASE_BATCH_MAX;
    size_t size = kv_cmd_encoded_size(&c);
    ck_assert_uint_gt(size, 0);
    uint8_t *enc = malloc(size);
    ck_assert_int_eq(kv_cmd_encode(&c, enc, size, &len), 0);
    /* Round trip, then every truncation is refused. */
    struct kv_cmd back;
    ck_assert_int_eq(kv_cmd_decode(enc, len, NULL, &back), 0);
    ck_assert_uint_eq(back.n_lease_ids, KV_LEASE_BATCH_MAX);
    ck_assert_uint_eq(back.lease_ids[KV_LEASE_BATCH_MAX - 1],
                      KV_LEASE_BATCH_MAX);
    kv_cmd_free(&back, NULL);
    for (size_t cut = 0; cut < 40; cut++) {
        ck_assert_int_ne(kv_cmd_decode(enc, cut, NULL, &back), 0);
    }
    free(enc);
    free(many);
    /* A put with lease 0 and no expiry written as op 25 is not
     * canonical. */
    size_t plen;
    uint8_t *p = put_leased("k", "v", 3, &plen);
    memset(p + plen - 16, 0, 16);
    ck_assert_int_eq(kv_cmd_decode(p, plen, NULL, &back), KV_EBADCMD);
    free(p);
    kv_close(s);
    kvt_rmdir(dir);
}
END_TEST

START_TEST(test_lease_table_survives_snapshot_install)
{
    char *src_dir = kvt_mkdtemp();
    char *dst_dir = kvt_mkdtemp();
    struct kv_store *src = kvt_open(src_dir, 0);
    size_t len;
    ck_assert_int_eq(grant(src, 1, 9, 3000, 50), 0);
    uint8_t *d = put_leased("k", "v", 9, &len);
    ck_assert_int_eq(apply(src, 2, d, len, NULL), 0);
    struct kv_store *dst = kvt_open(dst_dir, 0);
    kvt_snapshot_transfer(src, src_dir, dst);
    struct kv_lease l;
    ck_assert_int_eq(kv_lease_get(dst, 9, &l), 0);
    ck_assert_uint_eq(l.deadline, 3050);
    ck_assert_uint_eq(l.keys, 1);
    uint64_t clock = 0;
    ck_assert_int_eq(kv_lease_clock(dst, &clock, NULL), 0);
    ck_assert_uint_eq(clock, 50);
    uint64_t ids[1] = {9};
    d = lease_cmd(KV_CMD_LEASE_EXPIRE, 3050, 0, ids, 1, &len);
    ck_assert_int_eq(apply(dst, 3, d, len, NULL), 0);
    ck_assert(!key_exists(dst, "k"));
    kv_close(src);
    kv_close(dst);
    kvt_rmdir(src_dir);
    kvt_rmdir(dst_dir);
}
END_TEST

START_TEST(test_lease_many_leases_list_in_pages)
{
    char *dir = kvt_mkdtemp();
    struct kv_store *s = kvt_open(dir, 0);
    for (uint64_t i = 1; i <= 300; i++) {
        ck_assert_int_eq(grant(s, i, i * 3, 1000 + i, 0), 0);
    }
    uint64_t ids[128];
    size_t n = 0, total = 0;
    bool more = true;
    uint64_t after = 0;
    while (more) {
        ck_assert_int_eq(kv_lease_list(s, after, ids, 128, &n, &more), 0);
        for (size_t i = 0; i < n; i++) {
            ck_assert_uint_eq(ids[i], (total + i + 1) * 3);
        }
        total += n;
        after = n > 0 ? ids[n - 1] : after;
    }
    ck_assert_uint_eq(total, 300);
    /* Due leases come earliest deadline first. */
    ck_assert_int_eq(kv_lease_due(s, 1010, ids, 128, &n), 0);
    ck_assert_uint_eq(n, 10);
    ck_assert_uint_eq(ids[0], 3);
    ck_assert_uint_eq(ids[9], 30);
    kv_close(s);
    kvt_rmdir(dir);
}
END_TEST

/* A put with an expiry (Unix ms) and KEEPTTL, EXPIRE's conditions. */
static uint8_t *put_exp(const char *key,
                        const char *val,
                        uint64_t at,
                        uint8_t flags,
                        size_t *len)
{
    struct kv_cmd c;
    memset(&c, 0, sizeof(c));
    c.type = KV_CMD_PUT;
    c.op.type = KV_OP_PUT;
    c.op.flags = flags;
    c.op.key = (const uint8_t *)key;
    c.op.key_len = (uint32_t)strlen(key);
    c.op.value = (const uint8_t *)val;
    c.op.value_len = (uint32_t)strlen(val);
    c.op.expire_at = at;
    return kvt_encode(&c, len);
}

static uint8_t *expire_cmd(const char *key,
                           uint64_t at,
                           uint8_t flags,
                           size_t *len)
{
    struct kv_cmd c;
    memset(&c, 0, sizeof(c));
    c.type = KV_CMD_EXPIRE;
    c.op.type = KV_OP_EXPIRE;
    c.op.flags = flags;
    c.op.key = (const uint8_t *)key;
    c.op.key_len = (uint32_t)strlen(key);
    c.op.expire_at = at;
    return kvt_encode(&c, len);
}

static uint64_t expiry_of(struct kv_store *s, const char *key)
{
    struct kv_range_result r;
    int rv = kv_get(s, (const uint8_t *)key, (uint32_t)strlen(key), &r);
    uint64_t at = rv == 0 ? r.kvs[0].expire_at : UINT64_MAX;
    kv_range_result_free(&r);
    return at;
}

/* A key whose expiry has passed is skipped by every read, though its
 * record is still there; the leader's expiry entry deletes it (with a
 * history event) but not a key given a later expiry since. */
START_TEST(test_expire_reads_skip_expired_keys_before_their_deletion)
{
    char *dir = kvt_mkdtemp();
    struct kv_store *s = kvt_open(dir, 0);
    size_t len;
    uint64_t now = kv_wall_ms();
    uint8_t *d = put_exp("gone", "1", now - 10, 0, &len);
    ck_assert_int_eq(apply(s, 1, d, len, NULL), 0);
    d = put_exp("later", "2", now + 600000, 0, &len);
    ck_assert_int_eq(apply(s, 2, d, len, NULL), 0);
    d = kvt_put("plain", "3", &len);
    ck_assert_int_eq(apply(s, 3, d, len, NULL), 0);
    ck_assert(!key_exists(s, "gone"));
    ck_assert(key_exists(s, "later"));
    ck_assert_uint_eq(expiry_of(s, "later"), now + 600000);
    ck_assert_uint_eq(expiry_of(s, "plain"), 0);
    struct kv_range_req req;
    memset(&req, 0, sizeof(req));
    req.flags = KV_FLAG_PREFIX;
    struct kv_range_result rr;
    ck_assert_int_eq(kv_range(s, &req, &rr), 0);
    ck_assert_uint_eq(rr.count, 2);
    ck_assert_uint_eq(rr.n_kvs, 2);
    kv_range_result_free(&rr);
    struct kv_status st;
    ck_assert_int_eq(kv_status(s, &st), 0);
    ck_assert_uint_eq(st.keys, 3); /* still stored */

    /* The leader's scan finds it; its expiry entry deletes only it. */
    struct kv_range_result due;
    ck_assert_int_eq(kv_expire_due(s, now, 100, &due), 0);
    ck_assert_uint_eq(due.n_kvs, 1);
    ck_assert(memcmp(due.kvs[0].key, "gone", 4) == 0);
    kv_range_result_free(&due);
    struct kv_op ops[2];
    memset(ops, 0, sizeof(ops));
    ops[0].type = KV_OP_DELETE;
    ops[0].key = (const uint8_t *)"gone";
    ops[0].key_len = 4;
    ops[1].type = KV_OP_DELETE;
    ops[1].key = (const uint8_t *)"later";
    ops[1].key_len = 5;
    struct kv_cmd c;
    memset(&c, 0, sizeof(c));
    c.type = KV_CMD_EXPIRE_KEYS;
    c.clock = now;
    c.then_ops = ops;
    c.n_then = 2;
    d = kvt_encode(&c, &len);
    struct kv_apply_result res;
    kvt_apply_one(s, 4, d, len, &res);
    ck_assert_int_eq(res.entries[0].code, 0);
    ck_assert_uint_eq(res.entries[0].ops[0].count, 1);
    ck_assert_uint_eq(res.entries[0].ops[1].count, 0);
    ck_assert_uint_eq(res.entries[0].revision, 4);
    kv_apply_result_free(&res);
    ck_assert_int_eq(kv_status(s, &st), 0);
    ck_assert_uint_eq(st.keys, 2);
    ck_assert_int_eq(kv_expire_due(s, now, 100, &due), 0);
    ck_assert_uint_eq(due.n_kvs, 0);
    kv_range_result_free(&due);
    kv_close(s);
    kvt_rmdir(dir);
}
END_TEST

/* EXPIRE's conditions (NX, XX, GT, LT), PERSIST, a past time deleting the
 * key; a plain put clears the expiry, KEEPTTL and INCR keep it. */
START_TEST(test_expire_conditions_persist_and_keepttl)
{
    char *dir = kvt_mkdtemp();
    struct kv_store *s = kvt_open(dir, 0);
    size_t len;
    uint64_t count = 0;
    uint64_t t = kv_wall_ms() + 600000;
    uint8_t *d = kvt_put("k", "5", &len);
    ck_assert_int_eq(apply(s, 1, d, len, NULL), 0);
    d = expire_cmd("k", t, KV_EXPIRE_XX, &len); /* no expiry yet */
    ck_assert_int_eq(apply(s, 2, d, len, &count), 0);
    ck_assert_uint_eq(count, 0);
    d = expire_cmd("k", t, KV_EXPIRE_GT, &len); /* none counts as later */
    ck_assert_int_eq(apply(s, 3, d, len, &count), 0);
    ck_assert_uint_eq(count, 0);
    d = expire_cmd("k", t, KV_EXPIRE_NX, &len);
    ck_assert_int_eq(apply(s, 4, d, len, &count), 0);
    ck_assert_uint_eq(count, 1);
    ck_assert_uint_eq(expiry_of(s, "k"), t);
    d = expire_cmd("k", t + 1, KV_EXPIRE_LT, &len);
    ck_assert_int_eq(apply(s, 5, d, len, &count), 0);
    ck_assert_uint_eq(count, 0);
    d = expire_cmd("k", t + 1, KV_EXPIRE_GT, &len);
    ck_assert_int_eq(apply(s, 6, d, len, &count), 0);
    ck_assert_uint_eq(count, 1);
    ck_assert_uint_eq(expiry_of(s, "k"), t + 1);
    /* INCR keeps it (the revision moves, the expiry stays). */
    struct kv_cmd c;
    memset(&c, 0, sizeof(c));
    c.type = KV_CMD_INCRBY;
    c.op.type = KV_OP_INCRBY;
    c.op.key = (const uint8_t *)"k";
    c.op.key_len = 1;
    c.op.delta = 1;
    d = kvt_encode(&c, &len);
    ck_assert_int_eq(apply(s, 7, d, len, NULL), 0);
    ck_assert_uint_eq(expiry_of(s, "k"), t + 1);
    d = put_exp("k", "v", 0, KV_FLAG_KEEP_TTL, &len);
    ck_assert_int_eq(apply(s, 8, d, len, NULL), 0);
    ck_assert_uint_eq(expiry_of(s, "k"), t + 1);
    /* PERSIST: expiry 0 if it has one. */
    d = expire_cmd("k", 0, KV_EXPIRE_XX, &len);
    ck_assert_int_eq(apply(s, 9, d, len, &count), 0);
    ck_assert_uint_eq(count, 1);
    ck_assert_uint_eq(expiry_of(s, "k"), 0);
    d = put_exp("k", "v", t, 0, &len);
    ck_assert_int_eq(apply(s, 10, d, len, NULL), 0);
    d = kvt_put("k", "w", &len); /* a plain put clears it */
    ck_assert_int_eq(apply(s, 11, d, len, NULL), 0);
    ck_assert_uint_eq(expiry_of(s, "k"), 0);
    struct kv_range_result due;
    ck_assert_int_eq(kv_expire_due(s, UINT64_MAX - 1, 100, &due), 0);
    ck_assert_uint_eq(due.n_kvs, 0); /* the index followed every change */
    kv_range_result_free(&due);
    /* A time already past deletes the key. */
    d = expire_cmd("k", 1, KV_EXPIRE_DELETE, &len);
    ck_assert_int_eq(apply(s, 12, d, len, &count), 0);
    ck_assert_uint_eq(count, 1);
    ck_assert(!key_exists(s, "k"));
    d = expire_cmd("k", t, 0, &len); /* a missing key */
    ck_assert_int_eq(apply(s, 13, d, len, &count), 0);
    ck_assert_uint_eq(count, 0);
    /* KEEPTTL with an expiry of its own is malformed. */
    memset(&c, 0, sizeof(c));
    c.type = KV_CMD_PUT;
    c.op.type = KV_OP_PUT;
    c.op.flags = KV_FLAG_KEEP_TTL;
    c.op.key = (const uint8_t *)"k";
    c.op.key_len = 1;
    c.op.expire_at = 5;
    ck_assert_uint_eq(kv_cmd_encoded_size(&c), 0);
    kv_close(s);
    kvt_rmdir(dir);
}
END_TEST

Suite *kv_lease_suite(void)
{
    Suite *s = suite_create("lease");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_lease_revoke_deletes_attached_keys_in_one_entry);
    tcase_add_test(tc,
                   test_lease_expire_skips_leases_refreshed_since_the_decision);
    tcase_add_test(tc, test_lease_put_moves_keys_between_leases_and_detaches);
    tcase_add_test(tc, test_lease_grant_refuses_duplicates_and_bad_input);
    tcase_add_test(tc, test_lease_table_survives_snapshot_install);
    tcase_add_test(tc, test_lease_many_leases_list_in_pages);
    tcase_add_test(tc,
                   test_expire_reads_skip_expired_keys_before_their_deletion);
    tcase_add_test(tc, test_expire_conditions_persist_and_keepttl);
    suite_add_tcase(s, tc);
    return s;
}
