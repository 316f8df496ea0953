/*
 * test_kv_session.c - client sessions: a command with a request id is
 * applied at most once, a retry gets the stored reply back, older ids are
 * refused, sessions survive reopening and snapshot install, and the table
 * is bounded with deterministic eviction.
 */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "kv_test_util.h"

/* A put of @key = @value with request id (@client, @seq) and @reply. */
static uint8_t *sess_put(const char *key,
                         const char *value,
                         uint64_t client,
                         uint64_t seq,
                         const char *reply,
                         size_t *len)
{
    struct kv_cmd c;
    memset(&c, 0, sizeof(c));
    c.type = KV_CMD_PUT;
    c.op.type = KV_OP_PUT;
    c.op.key = (const uint8_t *)key;
    c.op.key_len = (uint32_t)strlen(key);
    c.op.value = (const uint8_t *)value;
    c.op.value_len = (uint32_t)strlen(value);
    c.client_id = client;
    c.seq = seq;
    c.reply = (const uint8_t *)reply;
    c.reply_len = (uint32_t)strlen(reply);
    return kvt_encode(&c, len);
}

/* Applies one entry and copies its result's essentials. */
struct one
{
    int code;
    bool succeeded, duplicate, superseded;
    uint8_t refusal;
    uint64_t revision, session_seq, session_revision;
    char reply[64];
};

static struct one apply_one(struct kv_store *s,
                            raft_index index,
                            uint8_t *d,
                            size_t len)
{
    struct kv_apply_result res;
    struct one o;
    memset(&o, 0, sizeof(o));
    kvt_apply_one(s, index, d, len, &res);
    const struct kv_entry_result *er = &res.entries[0];
    o.code = er->code;
    o.succeeded = er->succeeded;
    o.duplicate = er->duplicate;
    o.superseded = er->superseded;
    o.refusal = er->session_refusal;
    o.revision = er->revision;
    o.session_seq = er->session_seq;
    o.session_revision = er->session_revision;
    ck_assert_uint_lt(er->reply_len, sizeof(o.reply));
    if (er->reply_len > 0) {
        memcpy(o.reply, er->reply, er->reply_len);
    }
    kv_apply_result_free(&res);
    return o;
}

static void check_value(struct kv_store *s, const char *key, const char *want)
{
    struct kv_range_result r;
    ck_assert_int_eq(kv_get(s, (const uint8_t *)key, (uint32_t)strlen(key), &r),
                     0);
    ck_assert_uint_eq(r.kvs[0].value_len, strlen(want));
    ck_assert(memcmp(r.kvs[0].value, want, strlen(want)) == 0);
    kv_range_result_free(&r);
}

/* The encoding round-trips; bad ids are refused both ways. */
START_TEST(test_session_cmd_round_trip_and_bad_ids)
{
    size_t len;
    struct kv_cmd d;
    uint8_t *p = sess_put("k", "v", 7, 3, "+OK\r\n", &len);
    ck_assert_uint_eq(p[0], KV_CMD_VERSION_SESSION);
    ck_assert_int_eq(kv_cmd_decode(p, len, NULL, &d), 0);
    ck_assert_uint_eq(d.client_id, 7);
    ck_assert_uint_eq(d.seq, 3);
    ck_assert_uint_eq(d.reply_len, 5);
    ck_assert(memcmp(d.reply, "+OK\r\n", 5) == 0);
    kv_cmd_free(&d, NULL);
    /* Truncated anywhere in the trailer, or with a byte too many. */
    for (size_t cut = 1; cut <= 21; cut++) {
        ck_assert_int_eq(kv_cmd_decode(p, len - cut, NULL, &d), KV_EBADCMD);
    }
    uint8_t *q = malloc(len + 1);
    memcpy(q, p, len);
    q[len] = 0;
    ck_assert_int_eq(kv_cmd_decode(q, len + 1, NULL, &d), KV_EBADCMD);
    /* seq 0 on the wire */
    memcpy(q, p, len);
    memset(q + len - 5 - 4 - 8, 0, 8);
    ck_assert_int_eq(kv_cmd_decode(q, len, NULL, &d), KV_EBADCMD);
    /* client id above 2^63 */
    memcpy(q, p, len);
    memset(q + len - 5 - 4 - 16, 0xff, 8);
    ck_assert_int_eq(kv_cmd_decode(q, len, NULL, &d), KV_EBADCMD);
    /* an oversized reply length is a limit */
    memcpy(q, p, len);
    memset(q + len - 5 - 4, 0xff, 4);
    ck_assert_int_eq(kv_cmd_decode(q, len, NULL, &d), KV_ELIMIT);
    free(q);
    free(p);
    /* The encoder refuses a seq without a client, and a client without a
     * seq. */
    struct kv_cmd c;
    uint8_t buf[256];
    memset(&c, 0, sizeof(c));
    c.type = KV_CMD_DELETE;
    c.op.type = KV_OP_DELETE;
    c.op.key = (const uint8_t *)"k";
    c.op.key_len = 1;
    c.seq = 1;
    ck_assert_int_eq(kv_cmd_encode(&c, buf, sizeof(buf), &len), KV_EINVAL);
    c.seq = 0;
    c.client_id = 1;
    ck_assert_int_eq(kv_cmd_encode(&c, buf, sizeof(buf), &len), KV_EINVAL);
    c.seq = 1;
    c.client_id = KV_SESSION_CLIENT_MAX + 1;
    ck_assert_int_eq(kv_cmd_encode(&c, buf, sizeof(buf), &len), KV_EINVAL);
    c.client_id = KV_SESSION_CLIENT_MAX;
    ck_assert_int_eq(kv_cmd_encode(&c, buf, sizeof(buf), &len), 0);
}
END_TEST

/* The same request twice: the second is not executed and returns the
 * stored reply; an older seq is superseded; a newer one runs. Sessions
 * survive closing and reopening. */
START_TEST(test_session_duplicate_returns_original_and_survives_reopen)
{
    char *dir = kvt_mkdtemp();
    struct kv_store *s = kvt_open(dir, 0);
    size_t len;
    uint8_t *d = sess_put("k", "one", 7, 1, ":1\r\n", &len);
    struct one a = apply_one(s, 1, d, len);
    ck_assert(a.succeeded && !a.duplicate && !a.superseded);
    ck_assert_uint_eq(a.revision, 1);
    ck_assert_uint_eq(a.session_seq, 1);

    /* The retry carries another value (a recomputed attempt): it must not
     * be executed. */
    d = sess_put("k", "two", 7, 1, ":2\r\n", &len);
    struct one b = apply_one(s, 2, d, len);
    ck_assert(b.duplicate && b.succeeded && !b.superseded);
    ck_assert_str_eq(b.reply, ":1\r\n");
    ck_assert_uint_eq(b.session_revision, 1);
    ck_assert_uint_eq(b.revision, 1); /* nothing changed */
    check_value(s, "k", "one");

    d = sess_put("k", "three", 7, 2, ":3\r\n", &len);
    struct one c = apply_one(s, 3, d, len);
    ck_assert(c.succeeded && !c.duplicate);
    check_value(s, "k", "three");

    d = sess_put("k", "old", 7, 1, ":9\r\n", &len);
    struct one o = apply_one(s, 4, d, len);
    ck_assert(o.superseded && !o.duplicate);
    ck_assert_uint_eq(o.session_seq, 2);
    check_value(s, "k", "three");

    /* Another client is independent. */
    d = sess_put("j", "x", 8, 1, "+OK\r\n", &len);
    ck_assert(!apply_one(s, 5, d, len).duplicate);

    struct kv_status st;
    ck_assert_int_eq(kv_status(s, &st), 0);
    ck_assert_uint_eq(st.sessions, 2);
    kv_close(s);

    s = kvt_open(dir, 0);
    d = sess_put("k", "again", 7, 2, ":4\r\n", &len);
    struct one r = apply_one(s, 6, d, len);
    ck_assert(r.duplicate);
    ck_assert_str_eq(r.reply, ":3\r\n");
    check_value(s, "k", "three");
    kv_close(s);
    kvt_rmdir(dir);
}
END_TEST

/* A transaction whose comparison fails does not consume its seq: the same
 * request id applies once the guard holds. */
START_TEST(test_session_failed_guard_does_not_consume_the_seq)
{
    char *dir = kvt_mkdtemp();
    struct kv_store *s = kvt_open(dir, 0);
    struct kv_cmp cmp = {.target = KV_CMP_MOD_REVISION,
                         .op = KV_CMP_EQ,
                         .key = (const uint8_t *)"c",
                         .key_len = 1,
                         .number = 0};
    struct kv_op put = {.type = KV_OP_PUT,
                        .key = (const uint8_t *)"c",
                        .key_len = 1,
                        .value = (const uint8_t *)"1",
                        .value_len = 1};
    struct kv_cmd c = {.type = KV_CMD_TXN,
                       .cmps = &cmp,
                       .n_cmps = 1,
                       .then_ops = &put,
                       .n_then = 1,
                       .client_id = 5,
                       .seq = 1,
                       .reply = (const uint8_t *)":1\r\n",
                       .reply_len = 4};
    size_t len;
    uint8_t *d = kvt_put("c", "0", &len);
    apply_one(s, 1, d, len); /* c exists: mod_revision 1, guard fails */
    d = kvt_encode(&c, &len);
    struct one a = apply_one(s, 2, d, len);
    ck_assert(!a.succeeded && !a.duplicate);
    cmp.number = 1;
    d = kvt_encode(&c, &len);
    struct one b = apply_one(s, 3, d, len);
    ck_assert(b.succeeded && !b.duplicate);
    check_value(s, "c", "1");
    d = kvt_encode(&c, &len);
    struct one r = apply_one(s, 4, d, len);
    ck_assert(r.duplicate);
    ck_assert_str_eq(r.reply, ":1\r\n");
    kv_close(s);
    kvt_rmdir(dir);
}
END_TEST

/* Beyond session_max the session idle the longest goes, and only it. */
START_TEST(test_session_table_is_bounded)
{
    char *dir = kvt_mkdtemp();
    struct kv_options o;
    struct kv_store *s = NULL;
    memset(&o, 0, sizeof(o));
    o.session_max = 3;
    o.session_evict_after = 1; /* any session may make room */
    ck_assert_int_eq(kv_open(dir, &o, &s, NULL, 0), 0);
    size_t len;
    raft_index i = 1;
    for (uint64_t client = 1; client <= 3; client++) {
        uint8_t *d = sess_put("k", "v", client, 1, "+OK\r\n", &len);
        apply_one(s, i++, d, len);
    }
    /* Client 1 writes again: client 2 is now the idlest. */
    uint8_t *d = sess_put("k", "v", 1, 2, "+OK\r\n", &len);
    apply_one(s, i++, d, len);
    d = sess_put("k", "v", 4, 1, "+OK\r\n", &len);
    apply_one(s, i++, d, len);
    struct kv_status st;
    ck_assert_int_eq(kv_status(s, &st), 0);
    ck_assert_uint_eq(st.sessions, 3);
    /* 1, 3 and 4 are remembered; 2 was evicted and runs again. */
    d = sess_put("k", "v", 1, 2, "+OK\r\n", &len);
    ck_assert(apply_one(s, i++, d, len).duplicate);
    d = sess_put("k", "v", 3, 1, "+OK\r\n", &len);
    ck_assert(apply_one(s, i++, d, len).duplicate);
    d = sess_put("k", "v", 4, 1, "+OK\r\n", &len);
    ck_assert(apply_one(s, i++, d, len).duplicate);
    d = sess_put("k", "v", 2, 1, "+OK\r\n", &len);
    struct one r = apply_one(s, i++, d, len);
    ck_assert(!r.duplicate && r.succeeded);
    kv_close(s);
    kvt_rmdir(dir);
}
END_TEST

/* A snapshot carries the sessions to the store that installs it. */
START_TEST(test_session_survives_snapshot_install)
{
    char *src_dir = kvt_mkdtemp();
    char *dst_dir = kvt_mkdtemp();
    struct kv_store *src = kvt_open(src_dir, 0);
    struct kv_store *dst = kvt_open(dst_dir, 0);
    size_t len;
    uint8_t *d = sess_put("k", "u", 42, 1, "+OK\r\n", &len);
    apply_one(src, 1, d, len);
    d = sess_put("k", "v", 42, 9, "$1\r\nv\r\n", &len);
    apply_one(src, 2, d, len);
    kvt_snapshot_transfer(src, src_dir, dst);
    d = sess_put("k", "w", 42, 9, "-ERR\r\n", &len);
    struct one r = apply_one(dst, 3, d, len);
    ck_assert(r.duplicate);
    ck_assert_str_eq(r.reply, "$1\r\nv\r\n");
    check_value(dst, "k", "v");
    d = sess_put("k", "w", 42, 8, "-ERR\r\n", &len);
    ck_assert(apply_one(dst, 4, d, len).superseded);
    kv_close(src);
    kv_close(dst);
    kvt_rmdir(src_dir);
    kvt_rmdir(dst_dir);
}
END_TEST

/* A transaction that keeps its result under request id (7, @seq):
 *   if exists(k) then get k, put log = @value  else put k = @value, get k */
static uint8_t *kept_txn(uint64_t seq, const char *value, size_t *len)
{
    static struct kv_cmp cmp;
    static struct kv_op then_ops[2], else_ops[2];
    struct kv_cmd c;
    memset(&c, 0, sizeof(c));
    memset(&cmp, 0, sizeof(cmp));
    memset(then_ops, 0, sizeof(then_ops));
    memset(else_ops, 0, sizeof(else_ops));
    cmp.target = KV_CMP_EXISTS;
    cmp.op = KV_CMP_EQ;
    cmp.key = (const uint8_t *)"k";
    cmp.key_len = 1;
    cmp.number = 1;
    then_ops[0].type = KV_OP_RANGE;
    then_ops[0].key = (const uint8_t *)"k";
    then_ops[0].key_len = 1;
    then_ops[1].type = KV_OP_PUT;
    then_ops[1].key = (const uint8_t *)"log";
    then_ops[1].key_len = 3;
    then_ops[1].value = (const uint8_t *)value;
    then_ops[1].value_len = (uint32_t)strlen(value);
    else_ops[0] = then_ops[1];
    else_ops[0].key = (const uint8_t *)"k";
    else_ops[0].key_len = 1;
    else_ops[1] = then_ops[0];
    c.type = KV_CMD_TXN;
    c.cmps = &cmp;
    c.n_cmps = 1;
    c.then_ops = then_ops;
    c.n_then = 2;
    c.else_ops = else_ops;
    c.n_else = 2;
    c.client_id = 7;
    c.seq = seq;
    c.keep_result = true;
    return kvt_encode(&c, len);
}

/* The essentials of a kept result, for comparing a retry with the first
 * application. */
struct kept
{
    bool duplicate, result_kept, succeeded;
    uint64_t revision, session_revision;
    size_t n_ops;
    uint8_t types[2];
    size_t n_kvs[2];
    char value[2][16];
    uint64_t mod[2];
};

static struct kept apply_kept(struct kv_store *s,
                              raft_index index,
                              uint8_t *d,
                              size_t len)
{
    struct kv_apply_result res;
    struct kept k;
    memset(&k, 0, sizeof(k));
    kvt_apply_one(s, index, d, len, &res);
    const struct kv_entry_result *er = &res.entries[0];
    ck_assert_int_eq(er->code, 0);
    ck_assert(er->reply == NULL);
    k.duplicate = er->duplicate;
    k.result_kept = er->result_kept;
    k.succeeded = er->succeeded;
    k.revision = er->revision;
    k.session_revision = er->session_revision;
    k.n_ops = er->n_ops;
    ck_assert_uint_le(er->n_ops, 2);
    for (size_t i = 0; i < er->n_ops; i++) {
        const struct kv_op_result *o = &er->ops[i];
        k.types[i] = o->type;
        k.n_kvs[i] = o->n_kvs;
        if (o->n_kvs > 0) {
            ck_assert_uint_lt(o->kvs[0].value_len, 16);
            memcpy(k.value[i], o->kvs[0].value, o->kvs[0].value_len);
            k.mod[i] = o->kvs[0].mod_revision;
        }
    }
    kv_apply_result_free(&res);
    return k;
}

static void check_same_result(const struct kept *first,
                              const struct kept *retry)
{
    ck_assert(retry->duplicate && retry->result_kept);
    ck_assert_int_eq(retry->succeeded, first->succeeded);
    ck_assert_uint_eq(retry->session_revision, first->revision);
    ck_assert_uint_eq(retry->n_ops, first->n_ops);
    for (size_t i = 0; i < first->n_ops; i++) {
        ck_assert_uint_eq(retry->types[i], first->types[i]);
        ck_assert_uint_eq(retry->n_kvs[i], first->n_kvs[i]);
        ck_assert_str_eq(retry->value[i], first->value[i]);
        ck_assert_uint_eq(retry->mod[i], first->mod[i]);
    }
}

/* Version 3 carries the request id without a reply, and the encoder
 * refuses a kept result that also has a reply or has no request id. */
START_TEST(test_session_kept_result_encoding)
{
    size_t len;
    struct kv_cmd d;
    uint8_t *p = kept_txn(3, "v", &len);
    ck_assert_uint_eq(p[0], KV_CMD_VERSION_SESSION_RESULT);
    ck_assert_int_eq(kv_cmd_decode(p, len, NULL, &d), 0);
    ck_assert(d.keep_result);
    ck_assert_uint_eq(d.client_id, 7);
    ck_assert_uint_eq(d.seq, 3);
    ck_assert_uint_eq(d.reply_len, 0);
    struct kv_cmd again = d;
    uint8_t buf[256];
    size_t n2 = 0;
    ck_assert_int_eq(kv_cmd_encode(&again, buf, sizeof(buf), &n2), 0);
    ck_assert_uint_eq(n2, len);
    ck_assert(memcmp(buf, p, len) == 0);
    again.reply = (const uint8_t *)"+OK\r\n";
    again.reply_len = 5;
    ck_assert_uint_eq(kv_cmd_encoded_size(&again), 0);
    again.reply = NULL;
    again.reply_len = 0;
    again.client_id = 0;
    again.seq = 0;
    ck_assert_uint_eq(kv_cmd_encoded_size(&again), 0);
    kv_cmd_free(&d, NULL);
    /* Truncated in the request id, or with a byte too many. */
    for (size_t cut = 1; cut <= 16; cut++) {
        ck_assert_int_eq(kv_cmd_decode(p, len - cut, NULL, &d), KV_EBADCMD);
    }
    uint8_t *q = malloc(len + 1);
    memcpy(q, p, len);
    q[len] = 0;
    ck_assert_int_eq(kv_cmd_decode(q, len + 1, NULL, &d), KV_EBADCMD);
    free(q);
    free(p);
}
END_TEST

/* A transaction that keeps its result: whichever branch ran consumes the
 * seq, and a retry (even after reopening) gets exactly the first
 * application's branch, revision and reads, not what a re-run would see. */
START_TEST(test_session_kept_result_is_returned_to_a_retry)
{
    char *dir = kvt_mkdtemp();
    struct kv_store *s = kvt_open(dir, 0);
    size_t len;
    /* k is missing: the else branch puts k = one and reads it back. */
    uint8_t *d = kept_txn(1, "one", &len);
    struct kept a = apply_kept(s, 1, d, len);
    ck_assert(!a.duplicate && !a.succeeded);
    ck_assert_uint_eq(a.revision, 1);
    ck_assert_uint_eq(a.n_ops, 2);
    ck_assert_uint_eq(a.types[0], KV_OP_PUT);
    ck_assert_uint_eq(a.types[1], KV_OP_RANGE);
    ck_assert_str_eq(a.value[1], "one");

    /* The retry would now take the then branch; it must not run. */
    d = kept_txn(1, "two", &len);
    struct kept b = apply_kept(s, 2, d, len);
    check_same_result(&a, &b);
    ck_assert_uint_eq(b.revision, 1);
    check_value(s, "k", "one");

    /* seq 2 runs the then branch: reads k, writes log. */
    d = kept_txn(2, "three", &len);
    struct kept c = apply_kept(s, 3, d, len);
    ck_assert(!c.duplicate && c.succeeded);
    ck_assert_str_eq(c.value[0], "one");
    ck_assert_uint_eq(c.mod[0], 1);
    check_value(s, "log", "three");
    kv_close(s);

    s = kvt_open(dir, 0);
    d = kept_txn(2, "four", &len);
    struct kept r = apply_kept(s, 4, d, len);
    check_same_result(&c, &r);
    check_value(s, "log", "three");
    kv_close(s);
    kvt_rmdir(dir);
}
END_TEST

/* A result larger than a session may hold is kept as "applied" alone: the
 * retry is still not executed, and says so with result_elided. */
START_TEST(test_session_kept_result_too_large_is_elided)
{
    char *dir = kvt_mkdtemp();
    struct kv_store *s = kvt_open(dir, 0);
    uint8_t *big = malloc(KV_VALUE_BYTES_MAX);
    memset(big, 'b', KV_VALUE_BYTES_MAX);
    struct kv_op puts[2], reads[2];
    memset(puts, 0, sizeof(puts));
    memset(reads, 0, sizeof(reads));
    const char *keys[2] = {"a", "b"};
    for (int i = 0; i < 2; i++) {
        puts[i].type = KV_OP_PUT;
        puts[i].key = (const uint8_t *)keys[i];
        puts[i].key_len = 1;
        puts[i].value = big;
        puts[i].value_len = KV_VALUE_BYTES_MAX;
        reads[i].type = KV_OP_RANGE;
        reads[i].key = (const uint8_t *)keys[i];
        reads[i].key_len = 1;
    }
    struct kv_cmd c;
    memset(&c, 0, sizeof(c));
    c.type = KV_CMD_TXN;
    c.then_ops = puts;
    c.n_then = 2;
    size_t len;
    struct kvt_batch b = {0};
    uint8_t *d = kvt_encode(&c, &len);
    kvt_batch_add(&b, 1, d, len);
    c.then_ops = reads;
    c.client_id = 9;
    c.seq = 1;
    c.keep_result = true;
    for (raft_index i = 2; i <= 3; i++) {
        d = kvt_encode(&c, &len);
        kvt_batch_add(&b, i, d, len);
    }
    struct kv_apply_result res;
    ck_assert_int_eq(kv_apply(s, b.e, b.n, &res), 0);
    ck_assert_int_eq(res.entries[0].code, 0);
    const struct kv_entry_result *first = &res.entries[1];
    ck_assert_int_eq(first->code, 0);
    ck_assert(!first->duplicate && first->succeeded);
    ck_assert_uint_eq(first->n_ops, 2);
    ck_assert_uint_eq(first->ops[1].kvs[0].value_len, KV_VALUE_BYTES_MAX);
    const struct kv_entry_result *retry = &res.entries[2];
    ck_assert(retry->duplicate && retry->result_kept && retry->result_elided);
    ck_assert(retry->succeeded);
    ck_assert_uint_eq(retry->n_ops, 0);
    ck_assert_uint_eq(retry->session_revision, first->revision);
    kv_apply_result_free(&res);
    kvt_batch_clear(&b);
    free(big);
    kv_close(s);
    kvt_rmdir(dir);
}
END_TEST

/* A client's first seq is 1. A request of a client id without a session
 * and a higher seq is a retry of a session that expired: it is refused as
 * expired, never run (Raft dissertation, section 6.3), and leaves no
 * session behind. */
START_TEST(test_session_unknown_client_with_a_later_seq_is_expired)
{
    char *dir = kvt_mkdtemp();
    struct kv_store *s = kvt_open(dir, 0);
    size_t len;
    uint8_t *d = sess_put("k", "v", 5, 3, "+OK\r\n", &len);
    struct one r = apply_one(s, 1, d, len);
    ck_assert(r.superseded && !r.succeeded);
    ck_assert_uint_eq(r.refusal, KV_SESSION_EXPIRED);
    struct kv_range_result g;
    ck_assert_int_eq(kv_get(s, (const uint8_t *)"k", 1, &g), KV_ENOTFOUND);
    kv_range_result_free(&g);
    struct kv_status st;
    ck_assert_int_eq(kv_status(s, &st), 0);
    ck_assert_uint_eq(st.sessions, 0);
    d = sess_put("k", "v", 5, 1, "+OK\r\n", &len);
    r = apply_one(s, 2, d, len);
    ck_assert(r.succeeded && !r.superseded);
    kv_close(s);
    kvt_rmdir(dir);
}
END_TEST

/* 100,000 writes of other clients (the default table) used to evict every
 * session, after which a retry ran again. Now a session is dropped only
 * once it is session_evict_after log entries old: until then new sessions
 * are refused (BUSY), and a retry after the drop is refused as expired. */
START_TEST(test_session_other_clients_cannot_make_a_retry_run_twice)
{
    char *dir = kvt_mkdtemp();
    struct kv_options o;
    struct kv_store *s = NULL;
    memset(&o, 0, sizeof(o));
    o.session_max = 4;
    o.session_evict_after = 100;
    ck_assert_int_eq(kv_open(dir, &o, &s, NULL, 0), 0);
    size_t len;
    raft_index i = 1;
    uint8_t *d = sess_put("n", "1", 1, 1, "+OK\r\n", &len);
    apply_one(s, i++, d, len);
    d = sess_put("n", "2", 1, 2, "+OK\r\n", &len);
    apply_one(s, i++, d, len);
    /* Other clients fill the table; the next new one is refused. */
    for (uint64_t client = 2; client <= 4; client++) {
        d = sess_put("x", "y", client, 1, "+OK\r\n", &len);
        ck_assert(apply_one(s, i++, d, len).succeeded);
    }
    d = sess_put("x", "z", 99, 1, "+OK\r\n", &len);
    struct one r = apply_one(s, i++, d, len);
    ck_assert(r.superseded && r.refusal == KV_SESSION_FULL);
    check_value(s, "x", "y");
    /* Client 1 retries its seq 2: still a duplicate. */
    d = sess_put("n", "2", 1, 2, "+OK\r\n", &len);
    ck_assert(apply_one(s, i++, d, len).duplicate);
    /* 100 entries later client 1's session may be dropped for a new one;
     * its retry is then refused as expired, not run again. */
    for (int n = 0; n < 100; n++) {
        d = sess_put("p", "q", 0, 0, "", &len); /* no request id */
        ck_assert(apply_one(s, i++, d, len).succeeded);
    }
    d = sess_put("x", "z", 99, 1, "+OK\r\n", &len);
    ck_assert(apply_one(s, i++, d, len).succeeded);
    d = sess_put("n", "3", 1, 2, "+OK\r\n", &len);
    r = apply_one(s, i++, d, len);
    ck_assert(r.superseded && r.refusal == KV_SESSION_EXPIRED);
    check_value(s, "n", "2");
    kv_close(s);
    kvt_rmdir(dir);
}
END_TEST

/* seq 2^64-1 used to take a client id's last seq to the top, so that every
 * later request was superseded. A seq more than 2^32 past the last one is
 * refused instead, and the id keeps working. */
START_TEST(test_session_huge_seq_cannot_use_up_a_client_id)
{
    char *dir = kvt_mkdtemp();
    struct kv_store *s = kvt_open(dir, 0);
    size_t len;
    uint8_t *d = sess_put("k", "1", 8, 1, "+OK\r\n", &len);
    apply_one(s, 1, d, len);
    d = sess_put("k", "2", 8, UINT64_MAX, "+OK\r\n", &len);
    struct one r = apply_one(s, 2, d, len);
    ck_assert(r.superseded && r.refusal == KV_SESSION_TOO_FAR);
    ck_assert_uint_eq(r.session_seq, 1);
    d = sess_put("k", "3", 8, 1 + KV_SESSION_SEQ_STEP_MAX, "+OK\r\n", &len);
    ck_assert(apply_one(s, 3, d, len).succeeded);
    d = sess_put("k", "4", 8, 2 + KV_SESSION_SEQ_STEP_MAX, "+OK\r\n", &len);
    ck_assert(apply_one(s, 4, d, len).succeeded);
    check_value(s, "k", "4");
    kv_close(s);
    kvt_rmdir(dir);
}
END_TEST

Suite *kv_session_suite(void)
{
    Suite *s = suite_create("session");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_session_cmd_round_trip_and_bad_ids);
    tcase_add_test(tc,
                   test_session_duplicate_returns_original_and_survives_reopen);
    tcase_add_test(tc, test_session_failed_guard_does_not_consume_the_seq);
    tcase_add_test(tc, test_session_table_is_bounded);
    tcase_add_test(tc, test_session_survives_snapshot_install);
    tcase_add_test(tc, test_session_kept_result_encoding);
    tcase_add_test(tc, test_session_kept_result_is_returned_to_a_retry);
    tcase_add_test(tc, test_session_kept_result_too_large_is_elided);
    tcase_add_test(tc, test_session_unknown_client_with_a_later_seq_is_expired);
    tcase_add_test(tc,
                   test_session_other_clients_cannot_make_a_retry_run_twice);
    tcase_add_test(tc, test_session_huge_seq_cannot_use_up_a_client_id);
    suite_add_tcase(s, tc);
    return s;
}
