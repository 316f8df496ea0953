/*
 * test_kv_sequence.c - cluster-wide IDs (KV_CMD_SEQUENCE): blocks follow
 * log order, sequences are independent of each other and of the keys, the
 * counter survives reopening and snapshot install, a retried request id
 * gets its first block back, overflow and malformed commands are refused.
 */
#include <string.h>

#include "kv_internal.h"
#include "kv_test_util.h"

static uint8_t *seq_cmd(const char *name,
                        int64_t count,
                        uint64_t client_id,
                        uint64_t seq,
                        size_t *len)
{
    struct kv_cmd c;
    memset(&c, 0, sizeof(c));
    c.type = KV_CMD_SEQUENCE;
    c.op.type = KV_OP_SEQUENCE;
    c.op.key = (const uint8_t *)name;
    c.op.key_len = (uint32_t)strlen(name);
    c.op.delta = count;
    c.client_id = client_id;
    c.seq = client_id != 0 ? seq : 0;
    c.keep_result = client_id != 0;
    return kvt_encode(&c, len);
}

/* Applies a request for @count IDs of @name at @index; returns the last ID
 * of the block (0 if refused, with *@refusal set). */
static uint64_t take(struct kv_store *s,
                     raft_index index,
                     const char *name,
                     int64_t count,
                     uint64_t *refusal)
{
    size_t len;
    struct kv_apply_result res;
    uint8_t *d = seq_cmd(name, count, 0, 0, &len);
    kvt_apply_one(s, index, d, len, &res);
    const struct kv_entry_result *e = &res.entries[0];
    ck_assert_int_eq(e->code, 0);
    ck_assert_uint_eq(e->cmd_type, KV_CMD_SEQUENCE);
    ck_assert_uint_eq(e->n_ops, 1);
    ck_assert_uint_eq(e->ops[0].type, KV_OP_SEQUENCE);
    uint64_t last = 0;
    *refusal = e->ops[0].count;
    if (*refusal == KV_RMW_APPLIED) {
        ck_assert_uint_eq(e->ops[0].n_kvs, 1);
        ck_assert_uint_eq(e->ops[0].kvs[0].key_len, strlen(name));
        ck_assert(memcmp(e->ops[0].kvs[0].key, name, strlen(name)) == 0);
        last = e->ops[0].kvs[0].version;
    } else {
        ck_assert_uint_eq(e->ops[0].n_kvs, 0);
    }
    kv_apply_result_free(&res);
    return last;
}

static uint64_t last_of(struct kv_store *s, const char *name)
{
    uint64_t last = 99;
    ck_assert_int_eq(kv_sequence_last(s, (const uint8_t *)name,
                                      (uint32_t)strlen(name), &last),
                     0);
    return last;
}

/* IDs start at 1; blocks in one batch follow log order without gaps or
 * overlaps; two sequences count apart; none of it is a key, a revision or
 * a history event. */
START_TEST(test_sequence_blocks_follow_log_order)
{
    char *dir = kvt_mkdtemp();
    struct kv_store *s = kvt_open(dir, 0);
    struct kvt_batch b = {0};
    size_t len;
    const int64_t counts[] = {1, 5, 1, 1000, 2};
    for (raft_index i = 1; i <= 5; i++) {
        uint8_t *d = seq_cmd("orders", counts[i - 1], 0, 0, &len);
        kvt_batch_add(&b, i, d, len);
    }
    struct kv_apply_result res;
    ck_assert_int_eq(kv_apply(s, b.e, b.n, &res), 0);
    uint64_t next = 1;
    for (size_t i = 0; i < 5; i++) {
        const struct kv_op_result *o = &res.entries[i].ops[0];
        ck_assert_uint_eq(o->count, KV_RMW_APPLIED);
        /* The block is [create_revision, version]: contiguous. */
        ck_assert_uint_eq(o->kvs[0].create_revision, next);
        ck_assert_uint_eq(o->kvs[0].version - o->kvs[0].create_revision + 1,
                          (uint64_t)counts[i]);
        next = o->kvs[0].version + 1;
        ck_assert_uint_eq(res.entries[i].revision, 0);
    }
    kv_apply_result_free(&res);
    kvt_batch_clear(&b);
    ck_assert_uint_eq(last_of(s, "orders"), 1009);
    ck_assert_uint_eq(last_of(s, "users"), 0);

    uint64_t refusal;
    ck_assert_uint_eq(take(s, 6, "users", 1, &refusal), 1);
    ck_assert_uint_eq(take(s, 7, "orders", 1, &refusal), 1010);
    struct kv_status st;
    ck_assert_int_eq(kv_status(s, &st), 0);
    ck_assert_uint_eq(st.keys, 0);
    ck_assert_uint_eq(st.revision, 0);
    ck_assert_uint_eq(st.history_events, 0);
    /* A key of the same name is another thing entirely. */
    uint8_t *d = kvt_put("orders", "1", &len);
    kvt_apply_one(s, 8, d, len, &res);
    kv_apply_result_free(&res);
    ck_assert_uint_eq(take(s, 9, "orders", 1, &refusal), 1011);

    /* Reopened, the counter goes on: no ID is handed out twice. */
    kv_close(s);
    s = kvt_open(dir, 0);
    ck_assert_uint_eq(last_of(s, "orders"), 1011);
    ck_assert_uint_eq(take(s, 10, "orders", 3, &refusal), 1014);
    kv_close(s);
    kvt_rmdir(dir);
}
END_TEST

/* Places sequence @name's counter at @last directly in the store, as a
 * store would hold it after that many IDs (too many to hand out in a
 * test). White box: the "sequences" database of kv_internal.h. */
static void set_last(struct kv_store *s, const char *name, uint64_t last)
{
    MDB_txn *txn = NULL;
    uint8_t buf[8];
    kv_put_u64le(buf, last);
    MDB_val k = {strlen(name), (void *)name};
    MDB_val v = {sizeof(buf), buf};
    ck_assert_int_eq(mdb_txn_begin(s->env, NULL, 0, &txn), 0);
    ck_assert_int_eq(mdb_put(txn, s->dbi_seqs, &k, &v, 0), 0);
    ck_assert_int_eq(mdb_txn_commit(txn), 0);
}

/* A block that would pass INT64_MAX hands out nothing and leaves the
 * counter where it was; one that ends exactly at INT64_MAX fits, and after
 * it every request is refused. A damaged counter is corruption, not a
 * number to go on from. */
START_TEST(test_sequence_refuses_a_block_past_the_largest_id)
{
    char *dir = kvt_mkdtemp();
    struct kv_store *s = kvt_open(dir, 0);
    uint64_t refusal = 0;
    set_last(s, "big", (uint64_t)INT64_MAX - 3);
    ck_assert_uint_eq(take(s, 1, "big", 4, &refusal), 0);
    ck_assert_uint_eq(refusal, KV_RMW_OVERFLOW);
    ck_assert_uint_eq(last_of(s, "big"), (uint64_t)INT64_MAX - 3);
    ck_assert_uint_eq(take(s, 2, "big", 3, &refusal), (uint64_t)INT64_MAX);
    ck_assert_uint_eq(refusal, KV_RMW_APPLIED);
    take(s, 3, "big", 1, &refusal);
    ck_assert_uint_eq(refusal, KV_RMW_OVERFLOW);
    ck_assert_uint_eq(last_of(s, "big"), (uint64_t)INT64_MAX);

    set_last(s, "bad", (uint64_t)INT64_MAX + 1);
    uint64_t last = 0;
    ck_assert_int_eq(kv_sequence_last(s, (const uint8_t *)"bad", 3, &last),
                     KV_ECORRUPT);
    kv_close(s);
    kvt_rmdir(dir);
}
END_TEST

/* Counts outside 1..KV_SEQUENCE_BLOCK_MAX, an empty name, and a sequence
 * inside a transaction do not encode, and their bytes do not decode. */
START_TEST(test_sequence_malformed_commands_are_refused)
{
    struct kv_cmd c;
    uint8_t buf[256];
    size_t len;
    memset(&c, 0, sizeof(c));
    c.type = KV_CMD_SEQUENCE;
    c.op.type = KV_OP_SEQUENCE;
    c.op.key = (const uint8_t *)"s";
    c.op.key_len = 1;
    const int64_t bad[] = {0, -1, (int64_t)KV_SEQUENCE_BLOCK_MAX + 1,
                           INT64_MIN};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        c.op.delta = bad[i];
        ck_assert_int_eq(kv_cmd_encode(&c, buf, sizeof(buf), &len), KV_EINVAL);
    }
    c.op.delta = 1;
    c.op.key_len = 0;
    ck_assert_int_eq(kv_cmd_encode(&c, buf, sizeof(buf), &len), KV_EINVAL);
    c.op.key_len = 1;
    ck_assert_int_eq(kv_cmd_encode(&c, buf, sizeof(buf), &len), 0);

    /* A valid encoding with its count zeroed on the wire. */
    struct kv_cmd d;
    ck_assert_int_eq(kv_cmd_decode(buf, len, NULL, &d), 0);
    ck_assert_uint_eq(d.op.delta, 1);
    kv_cmd_free(&d, NULL);
    memset(buf + len - 8, 0, 8);
    ck_assert_int_eq(kv_cmd_decode(buf, len, NULL, &d), KV_EBADCMD);

    /* Inside a transaction's branch. */
    struct kv_cmd t;
    memset(&t, 0, sizeof(t));
    t.type = KV_CMD_TXN;
    t.then_ops = &c.op;
    t.n_then = 1;
    ck_assert_int_eq(kv_cmd_encode(&t, buf, sizeof(buf), &len), KV_EINVAL);
    /* The same bytes forged: a transaction holding a put, retyped. */
    struct kv_op put = {.type = KV_OP_INCRBY,
                        .key = (const uint8_t *)"s",
                        .key_len = 1,
                        .delta = 1};
    t.then_ops = &put;
    ck_assert_int_eq(kv_cmd_encode(&t, buf, sizeof(buf), &len), 0);
    /* version, type, n_cmps(2), n_then(2), then the op's type byte. */
    ck_assert_uint_eq(buf[6], KV_OP_INCRBY);
    buf[6] = KV_OP_SEQUENCE;
    ck_assert_int_eq(kv_cmd_decode(buf, len, NULL, &d), KV_EBADCMD);
}
END_TEST

/* A retried request id gets the block its first application got, not a
 * new one; the next seq gets the next block. */
START_TEST(test_sequence_retry_with_a_request_id_gets_the_same_block)
{
    char *dir = kvt_mkdtemp();
    struct kv_store *s = kvt_open(dir, 0);
    size_t len;
    struct kv_apply_result res;
    uint8_t *d = seq_cmd("ids", 10, 7, 1, &len);
    kvt_apply_one(s, 1, d, len, &res);
    ck_assert(!res.entries[0].duplicate);
    ck_assert_uint_eq(res.entries[0].ops[0].kvs[0].version, 10);
    kv_apply_result_free(&res);
    d = seq_cmd("ids", 10, 7, 1, &len);
    kvt_apply_one(s, 2, d, len, &res);
    ck_assert(res.entries[0].duplicate);
    ck_assert(res.entries[0].result_kept);
    ck_assert_uint_eq(res.entries[0].n_ops, 1);
    ck_assert_uint_eq(res.entries[0].ops[0].type, KV_OP_SEQUENCE);
    ck_assert_uint_eq(res.entries[0].ops[0].kvs[0].create_revision, 1);
    ck_assert_uint_eq(res.entries[0].ops[0].kvs[0].version, 10);
    kv_apply_result_free(&res);
    ck_assert_uint_eq(last_of(s, "ids"), 10);
    d = seq_cmd("ids", 1, 7, 2, &len);
    kvt_apply_one(s, 3, d, len, &res);
    ck_assert(!res.entries[0].duplicate);
    ck_assert_uint_eq(res.entries[0].ops[0].kvs[0].version, 11);
    kv_apply_result_free(&res);
    kv_close(s);
    kvt_rmdir(dir);
}
END_TEST

/* Sequences travel in snapshots: a follower that installs one goes on
 * from the leader's counter. */
START_TEST(test_sequence_survives_snapshot_install)
{
    char *src_dir = kvt_mkdtemp();
    char *dst_dir = kvt_mkdtemp();
    struct kv_store *src = kvt_open(src_dir, 0);
    struct kv_store *dst = kvt_open(dst_dir, 0);
    uint64_t refusal;
    ck_assert_uint_eq(take(src, 1, "ids", 41, &refusal), 41);
    kvt_snapshot_transfer(src, src_dir, dst);
    ck_assert_uint_eq(last_of(dst, "ids"), 41);
    ck_assert_uint_eq(take(dst, 2, "ids", 1, &refusal), 42);
    kv_close(src);
    kv_close(dst);
    kvt_rmdir(src_dir);
    kvt_rmdir(dst_dir);
}
END_TEST

Suite *kv_sequence_suite(void)
{
    Suite *s = suite_create("sequence");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_sequence_blocks_follow_log_order);
    tcase_add_test(tc, test_sequence_refuses_a_block_past_the_largest_id);
    tcase_add_test(tc, test_sequence_malformed_commands_are_refused);
    tcase_add_test(tc,
                   test_sequence_retry_with_a_request_id_gets_the_same_block);
    tcase_add_test(tc, test_sequence_survives_snapshot_install);
    suite_add_tcase(s, tc);
    return s;
}
