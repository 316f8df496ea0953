/*
 * test_kv_lock.c - locks in the store: claims ordered by create revision,
 * tokens strictly increasing across holders, a lease's end freeing its
 * lock, the fence refusing a stale token at apply time, retries, bad input
 * and the encoding of fenced commands.
 */
#include <string.h>

#include "kv_test_util.h"

#define PFX "_lock/l/"

static int grant(struct kv_store *s, raft_index index, uint64_t id)
{
    struct kv_cmd c;
    struct kv_apply_result res;
    size_t len;
    memset(&c, 0, sizeof(c));
    c.type = KV_CMD_LEASE_GRANT;
    c.clock = 1;
    c.ttl_ms = 10000;
    c.lease_ids = &id;
    c.n_lease_ids = 1;
    uint8_t *d = kvt_encode(&c, &len);
    kvt_apply_one(s, index, d, len, &res);
    int code = res.entries[0].code;
    kv_apply_result_free(&res);
    return code;
}

/* The outcome of one lock command. */
struct outcome
{
    int code;
    bool succeeded;
    uint64_t count;
    uint64_t token; /* the create revision of the op's pair */
    uint64_t revision;
};

static struct outcome run(struct kv_store *s,
                          raft_index index,
                          uint8_t *d,
                          size_t len)
{
    struct kv_apply_result res;
    struct outcome o;
    memset(&o, 0, sizeof(o));
    kvt_apply_one(s, index, d, len, &res);
    const struct kv_entry_result *er = &res.entries[0];
    o.code = er->code;
    o.succeeded = er->succeeded;
    o.revision = er->revision;
    if (er->n_ops > 0) {
        o.count = er->ops[0].count;
        o.token = er->ops[0].n_kvs > 0 ? er->ops[0].kvs[0].create_revision : 0;
    }
    kv_apply_result_free(&res);
    return o;
}

static struct outcome acquire(struct kv_store *s,
                              raft_index index,
                              uint64_t lease,
                              bool try_only)
{
    struct kv_cmd c;
    size_t len;
    memset(&c, 0, sizeof(c));
    c.type = KV_CMD_LOCK_ACQUIRE;
    c.op.type = KV_OP_LOCK_ACQUIRE;
    c.op.key = (const uint8_t *)PFX;
    c.op.key_len = (uint32_t)strlen(PFX);
    c.op.lease = lease;
    c.op.flags = try_only ? KV_LOCK_TRY : 0;
    uint8_t *d = kvt_encode(&c, &len);
    return run(s, index, d, len);
}

static struct outcome release(struct kv_store *s,
                              raft_index index,
                              uint64_t token)
{
    struct kv_cmd c;
    size_t len;
    memset(&c, 0, sizeof(c));
    c.type = KV_CMD_LOCK_RELEASE;
    c.op.type = KV_OP_LOCK_RELEASE;
    c.op.key = (const uint8_t *)PFX;
    c.op.key_len = (uint32_t)strlen(PFX);
    c.op.delta = (int64_t)token;
    uint8_t *d = kvt_encode(&c, &len);
    return run(s, index, d, len);
}

/* A put of @key fenced by the lock's token @token. */
static struct outcome fenced_put(struct kv_store *s,
                                 raft_index index,
                                 const char *key,
                                 uint64_t token)
{
    struct kv_cmd c;
    size_t len;
    memset(&c, 0, sizeof(c));
    c.type = KV_CMD_PUT;
    c.op.type = KV_OP_PUT;
    c.op.key = (const uint8_t *)key;
    c.op.key_len = (uint32_t)strlen(key);
    c.op.value = (const uint8_t *)"v";
    c.op.value_len = 1;
    c.fence_key = (const uint8_t *)PFX;
    c.fence_key_len = (uint32_t)strlen(PFX);
    c.fence_token = token;
    uint8_t *d = kvt_encode(&c, &len);
    return run(s, index, d, len);
}

static uint64_t owner_token(struct kv_store *s, uint64_t *waiting)
{
    struct kv_range_result r;
    int rv = kv_lock_owner(s, (const uint8_t *)PFX, strlen(PFX), &r);
    uint64_t t = rv == 0 ? r.kvs[0].create_revision : 0;
    *waiting = r.count;
    ck_assert(rv == 0 || rv == KV_ENOTFOUND);
    kv_range_result_free(&r);
    return t;
}

/* Three leases claim one lock: the first holds, the others wait in order,
 * and each release hands the lock to the next with a larger token. */
START_TEST(test_lock_waiters_are_served_in_order_with_increasing_tokens)
{
    char *dir = kvt_mkdtemp();
    struct kv_store *s = kvt_open(dir, 0);
    uint64_t n = 0;
    for (uint64_t i = 1; i <= 3; i++) {
        ck_assert_int_eq(grant(s, i, i), 0);
    }
    struct outcome a = acquire(s, 4, 1, false);
    struct outcome b = acquire(s, 5, 2, false);
    struct outcome c = acquire(s, 6, 3, false);
    ck_assert_int_eq(a.code, 0);
    ck_assert_uint_eq(a.count, 1); /* holds */
    ck_assert_uint_eq(b.count, 0); /* waits */
    ck_assert_uint_eq(c.count, 0);
    ck_assert_uint_lt(a.token, b.token);
    ck_assert_uint_lt(b.token, c.token);
    ck_assert_uint_eq(owner_token(s, &n), a.token);
    ck_assert_uint_eq(n, 3);

    /* A retry of an acquire changes nothing and reports the same claim. */
    struct outcome again = acquire(s, 7, 2, false);
    ck_assert_uint_eq(again.token, b.token);
    ck_assert_uint_eq(again.count, 0);
    ck_assert_uint_eq(again.revision, c.revision);

    struct outcome r = release(s, 8, a.token);
    ck_assert_int_eq(r.code, 0);
    ck_assert_uint_eq(r.count, 1);
    ck_assert_uint_eq(owner_token(s, &n), b.token);
    ck_assert_uint_eq(n, 2);
    /* The waiter at the back leaves without ever holding. */
    r = release(s, 9, c.token);
    ck_assert_int_eq(r.code, 0);
    ck_assert_uint_eq(r.count, 0);
    ck_assert_uint_eq(owner_token(s, &n), b.token);
    r = release(s, 10, b.token);
    ck_assert_uint_eq(owner_token(s, &n), 0);
    ck_assert_uint_eq(n, 0);

    /* A new holder's token is above every earlier one. */
    struct outcome d = acquire(s, 11, 1, false);
    ck_assert_uint_eq(d.count, 1);
    ck_assert_uint_gt(d.token, c.token);
    kv_close(s);
    kvt_rmdir(dir);
}
END_TEST

/* The holder's lease is revoked (as expiry would end it): its claim goes in
 * that entry, the waiter holds, and a write fenced with the old token is
 * refused while the new token's is applied. */
START_TEST(test_lock_lease_end_frees_it_and_the_fence_refuses_the_old_token)
{
    char *dir = kvt_mkdtemp();
    struct kv_store *s = kvt_open(dir, 0);
    uint64_t n = 0;
    ck_assert_int_eq(grant(s, 1, 1), 0);
    ck_assert_int_eq(grant(s, 2, 2), 0);
    struct outcome a = acquire(s, 3, 1, false);
    struct outcome b = acquire(s, 4, 2, false);
    struct outcome w = fenced_put(s, 5, "data", a.token);
    ck_assert_int_eq(w.code, 0);
    ck_assert_uint_gt(w.revision, b.revision);
    w = fenced_put(s, 6, "data", b.token); /* a waiter's token */
    ck_assert_int_eq(w.code, KV_EFENCED);

    struct kv_cmd c;
    size_t len;
    uint64_t id = 1;
    memset(&c, 0, sizeof(c));
    c.type = KV_CMD_LEASE_REVOKE;
    c.lease_ids = &id;
    c.n_lease_ids = 1;
    uint8_t *d = kvt_encode(&c, &len);
    struct outcome rv = run(s, 7, d, len);
    ck_assert_int_eq(rv.code, 0);
    ck_assert_uint_eq(owner_token(s, &n), b.token);

    uint64_t before = rv.revision;
    w = fenced_put(s, 8, "data", a.token);
    ck_assert_int_eq(w.code, KV_EFENCED);
    ck_assert_uint_eq(w.revision, before); /* nothing applied */
    w = fenced_put(s, 9, "data", b.token);
    ck_assert_int_eq(w.code, 0);
    ck_assert_uint_eq(w.revision, before + 1);
    kv_close(s);
    kvt_rmdir(dir);
}
END_TEST

/* A try does not queue; unknown leases and tokens, and commands without a
 * lease, a token or room for the suffix, are refused. */
START_TEST(test_lock_try_and_bad_input)
{
    char *dir = kvt_mkdtemp();
    struct kv_store *s = kvt_open(dir, 0);
    uint64_t n = 0;
    ck_assert_int_eq(grant(s, 1, 1), 0);
    ck_assert_int_eq(grant(s, 2, 2), 0);
    struct outcome a = acquire(s, 3, 1, true);
    ck_assert(a.succeeded);
    ck_assert_uint_eq(a.count, 1);
    struct outcome b = acquire(s, 4, 2, true);
    ck_assert(!b.succeeded);
    ck_assert_uint_eq(b.count, 0);
    ck_assert_uint_eq(b.token, a.token); /* the holder's */
    ck_assert_uint_eq(owner_token(s, &n), a.token);
    ck_assert_uint_eq(n, 1);

    ck_assert_int_eq(acquire(s, 5, 99, false).code, KV_ENOLEASE);
    ck_assert_int_eq(release(s, 6, a.token + 100).code, KV_ELOCKNOTHELD);
    ck_assert_int_eq(release(s, 7, a.token).code, 0);
    ck_assert_int_eq(release(s, 8, a.token).code, KV_ELOCKNOTHELD);

    uint8_t buf[1024];
    struct kv_cmd c;
    memset(&c, 0, sizeof(c));
    c.type = KV_CMD_LOCK_ACQUIRE;
    c.op.type = KV_OP_LOCK_ACQUIRE;
    c.op.key = buf;
    c.op.key_len = 4;
    memset(buf, 'k', sizeof(buf));
    ck_assert_uint_eq(kv_cmd_encoded_size(&c), 0); /* no lease */
    c.op.lease = 1;
    ck_assert_uint_gt(kv_cmd_encoded_size(&c), 0);
    c.op.key_len = KV_LOCK_PREFIX_MAX + 1;
    ck_assert_uint_eq(kv_cmd_encoded_size(&c), 0);
    c.type = KV_CMD_LOCK_RELEASE;
    c.op.type = KV_OP_LOCK_RELEASE;
    c.op.key_len = 4;
    c.op.lease = 0;
    ck_assert_uint_eq(kv_cmd_encoded_size(&c), 0); /* no token */
    c.op.delta = -1;
    ck_assert_uint_eq(kv_cmd_encoded_size(&c), 0);
    /* Not inside a transaction. */
    struct kv_op op;
    memset(&op, 0, sizeof(op));
    op.type = KV_OP_LOCK_RELEASE;
    op.key = buf;
    op.key_len = 4;
    op.delta = 1;
    memset(&c, 0, sizeof(c));
    c.type = KV_CMD_TXN;
    c.then_ops = &op;
    c.n_then = 1;
    ck_assert_uint_eq(kv_cmd_encoded_size(&c), 0);
    kv_close(s);
    kvt_rmdir(dir);
}
END_TEST

/* A fence survives encoding, alone and inside an ACL envelope; a fence
 * without a token or key is refused; the space accounting sees through
 * it. */
START_TEST(test_lock_fence_round_trips_and_is_checked)
{
    struct kv_op ops[2];
    struct kv_cmd c, d;
    memset(ops, 0, sizeof(ops));
    for (int i = 0; i < 2; i++) {
        ops[i].type = KV_OP_PUT;
        ops[i].key = (const uint8_t *)"k";
        ops[i].key_len = 1;
    }
    memset(&c, 0, sizeof(c));
    c.type = KV_CMD_TXN;
    c.then_ops = ops;
    c.n_then = 2;
    c.fence_key = (const uint8_t *)PFX;
    c.fence_key_len = (uint32_t)strlen(PFX);
    c.fence_token = 42;
    for (int acl = 0; acl < 2; acl++) {
        if (acl) {
            c.acl_user = "alice";
            c.acl_user_len = 5;
            c.acl_cmd = "set";
            c.acl_cmd_len = 3;
        }
        size_t len;
        uint8_t *buf = kvt_encode(&c, &len);
        ck_assert_int_eq(kv_cmd_decode(buf, len, NULL, &d), 0);
        ck_assert_uint_eq(d.fence_key_len, strlen(PFX));
        ck_assert(memcmp(d.fence_key, PFX, strlen(PFX)) == 0);
        ck_assert_uint_eq(d.fence_token, 42);
        ck_assert_uint_eq(d.n_then, 2);
        ck_assert_uint_eq(d.acl_user_len, acl ? 5 : 0);
        kv_cmd_free(&d, NULL);
        ck_assert_uint_eq(kv_cmd_changes_max(buf, len), 2);
        ck_assert(kv_cmd_adds_data(buf, len));
        /* Every truncation is refused. */
        for (size_t cut = 0; cut < len; cut++) {
            ck_assert_int_ne(kv_cmd_decode(buf, cut, NULL, &d), 0);
        }
        free(buf);
    }
    c.fence_token = 0;
    ck_assert_uint_eq(kv_cmd_encoded_size(&c), 0);
    c.fence_token = 1;
    c.fence_key_len = 0;
    ck_assert_uint_eq(kv_cmd_encoded_size(&c), 0);
}
END_TEST

/* Applies @d (freed) at @index to both stores and returns the entry code,
 * checking both replicas decided alike. */
static int apply_both(struct kv_store *s1,
                      struct kv_store *s2,
                      raft_index index,
                      uint8_t *d,
                      size_t len)
{
    struct kv_apply_result r1, r2;
    uint8_t *copy = malloc(len);
    ck_assert_ptr_nonnull(copy);
    memcpy(copy, d, len);
    kvt_apply_one(s1, index, d, len, &r1);
    kvt_apply_one(s2, index, copy, len, &r2);
    int code = r1.entries[0].code;
    ck_assert_int_eq(code, r2.entries[0].code);
    ck_assert_uint_eq(r1.entries[0].revision, r2.entries[0].revision);
    ck_assert_int_eq(r1.entries[0].succeeded, r2.entries[0].succeeded);
    kv_apply_result_free(&r1);
    kv_apply_result_free(&r2);
    return code;
}

/* Random logs of grants, revokes, acquires, releases and fenced puts over
 * a few leases, applied to two replicas: both always agree; the holder's
 * token only ever moves up; a fenced put applies exactly when its token
 * is the holder's before the entry. */
START_TEST(test_lock_random_logs_keep_one_holder_and_increasing_tokens)
{
    char *d1 = kvt_mkdtemp(), *d2 = kvt_mkdtemp();
    struct kv_store *s1 = kvt_open(d1, 0), *s2 = kvt_open(d2, 0);
    uint64_t rng = 42, n = 0, holder = 0, top = 0;
    uint64_t tokens[8] = {0}; /* tokens seen, to fence with */
    raft_index index = 0;
    for (int step = 0; step < 600; step++) {
        struct kv_cmd c;
        size_t len;
        uint64_t lease = 1 + kvt_below(&rng, 4);
        uint64_t token = tokens[kvt_below(&rng, 8)];
        memset(&c, 0, sizeof(c));
        switch (kvt_below(&rng, 5)) {
        case 0:
            c.type = KV_CMD_LEASE_GRANT;
            c.clock = 1;
            c.ttl_ms = 10000;
            c.lease_ids = &lease;
            c.n_lease_ids = 1;
            break;
        case 1:
            c.type = KV_CMD_LEASE_REVOKE;
            c.lease_ids = &lease;
            c.n_lease_ids = 1;
            break;
        case 2:
            kv_lock_cmd_init(&c, KV_CMD_LOCK_ACQUIRE, (const uint8_t *)PFX,
                             (uint32_t)strlen(PFX), lease,
                             kvt_below(&rng, 2) == 0);
            break;
        case 3:
            kv_lock_cmd_init(&c, KV_CMD_LOCK_RELEASE, (const uint8_t *)PFX,
                             (uint32_t)strlen(PFX), token != 0 ? token : 1,
                             false);
            break;
        default:
            c.type = KV_CMD_PUT;
            c.op.type = KV_OP_PUT;
            c.op.key = (const uint8_t *)"data";
            c.op.key_len = 4;
            c.op.value = (const uint8_t *)"v";
            c.op.value_len = 1;
            c.fence_key = (const uint8_t *)PFX;
            c.fence_key_len = (uint32_t)strlen(PFX);
            c.fence_token = token != 0 ? token : 1;
            break;
        }
        bool fenced = c.fence_key != NULL;
        uint64_t fence = c.fence_token;
        uint8_t *d = kvt_encode(&c, &len);
        int code = apply_both(s1, s2, ++index, d, len);
        if (fenced) {
            ck_assert_int_eq(code, holder == fence ? 0 : KV_EFENCED);
        }
        uint64_t now = owner_token(s1, &n);
        ck_assert_uint_eq(owner_token(s2, &n), now);
        if (now != 0) {
            /* A new holder's token is above every earlier holder's. */
            ck_assert_uint_ge(now, top);
            ck_assert(now == holder || now > top || top == 0);
            top = now;
            tokens[kvt_below(&rng, 8)] = now;
        }
        holder = now;
    }
    ck_assert_uint_gt(top, 0);
    kv_close(s1);
    kv_close(s2);
    kvt_rmdir(d1);
    kvt_rmdir(d2);
}
END_TEST

Suite *kv_lock_suite(void)
{
    Suite *s = suite_create("lock");
    TCase *tc = tcase_create("lock");
    tcase_add_test(
        tc, test_lock_waiters_are_served_in_order_with_increasing_tokens);
    tcase_add_test(
        tc, test_lock_lease_end_frees_it_and_the_fence_refuses_the_old_token);
    tcase_add_test(tc, test_lock_try_and_bad_input);
    tcase_add_test(tc, test_lock_fence_round_trips_and_is_checked);
    tcase_add_test(tc,
                   test_lock_random_logs_keep_one_holder_and_increasing_tokens);
    suite_add_tcase(s, tc);
    return s;
}
