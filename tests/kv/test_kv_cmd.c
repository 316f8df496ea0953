/*
 * test_kv_cmd.c - the command encoding: round trips, limits and hostile
 * input.
 */
#include <string.h>

#include "kv_test_util.h"

static bool bytes_eq(const uint8_t *a,
                     uint32_t alen,
                     const uint8_t *b,
                     uint32_t blen)
{
    return alen == blen && (alen == 0 || memcmp(a, b, alen) == 0);
}

static bool op_eq(const struct kv_op *a, const struct kv_op *b)
{
    return a->type == b->type && a->flags == b->flags && a->limit == b->limit &&
           a->delta == b->delta &&
           bytes_eq(a->key, a->key_len, b->key, b->key_len) &&
           bytes_eq(a->end, a->end_len, b->end, b->end_len) &&
           bytes_eq(a->value, a->value_len, b->value, b->value_len);
}

static bool cmd_eq(const struct kv_cmd *a, const struct kv_cmd *b)
{
    if (a->type != b->type) {
        return false;
    }
    if (a->type != KV_CMD_TXN) {
        return op_eq(&a->op, &b->op);
    }
    if (a->n_cmps != b->n_cmps || a->n_then != b->n_then ||
        a->n_else != b->n_else) {
        return false;
    }
    for (uint32_t i = 0; i < a->n_cmps; i++) {
        const struct kv_cmp *x = &a->cmps[i], *y = &b->cmps[i];
        if (x->target != y->target || x->op != y->op ||
            x->number != y->number ||
            !bytes_eq(x->key, x->key_len, y->key, y->key_len) ||
            !bytes_eq(x->value, x->value_len, y->value, y->value_len)) {
            return false;
        }
    }
    for (uint32_t i = 0; i < a->n_then; i++) {
        if (!op_eq(&a->then_ops[i], &b->then_ops[i])) {
            return false;
        }
    }
    for (uint32_t i = 0; i < a->n_else; i++) {
        if (!op_eq(&a->else_ops[i], &b->else_ops[i])) {
            return false;
        }
    }
    return true;
}

static uint8_t all_bytes[256];
static uint8_t some_bytes[300];

/* A transaction that uses every target, operator and operation type. */
static void sample_txn(struct kv_cmd *c,
                       struct kv_cmp *cmps,
                       struct kv_op *then_ops,
                       struct kv_op *else_ops)
{
    for (int i = 0; i < 256; i++) {
        all_bytes[i] = (uint8_t)i;
    }
    for (int i = 0; i < 300; i++) {
        some_bytes[i] = (uint8_t)(255 - i % 256);
    }
    memset(c, 0, sizeof(*c));
    memset(cmps, 0, 5 * sizeof(*cmps));
    memset(then_ops, 0, 4 * sizeof(*then_ops));
    memset(else_ops, 0, 1 * sizeof(*else_ops));
    c->type = KV_CMD_TXN;
    for (int i = 0; i < 5; i++) {
        cmps[i].target = (uint8_t)(KV_CMP_VALUE + i);
        cmps[i].op = (uint8_t)(KV_CMP_EQ + (i % 4));
        cmps[i].key = all_bytes;
        cmps[i].key_len = 256;
        cmps[i].number = 7;
    }
    cmps[0].value = some_bytes;
    cmps[0].value_len = 300;
    cmps[0].number = 0; /* a value comparison carries no number */
    cmps[4].op = KV_CMP_NE;
    cmps[4].number = 1;
    then_ops[0] = (struct kv_op){.type = KV_OP_PUT,
                                 .flags = KV_FLAG_PREV_KV,
                                 .key = all_bytes,
                                 .key_len = 256,
                                 .value = all_bytes,
                                 .value_len = 256};
    then_ops[1] = (struct kv_op){
        .type = KV_OP_DELETE, .key = all_bytes + 1, .key_len = 3};
    then_ops[2] = (struct kv_op){.type = KV_OP_DELETE_RANGE,
                                 .flags = KV_FLAG_PREFIX,
                                 .key = all_bytes,
                                 .key_len = 0};
    then_ops[3] = (struct kv_op){.type = KV_OP_RANGE,
                                 .flags = KV_FLAG_REVERSE | KV_FLAG_KEYS_ONLY,
                                 .key = all_bytes,
                                 .key_len = 2,
                                 .end = all_bytes + 250,
                                 .end_len = 6,
                                 .limit = UINT64_MAX};
    else_ops[0] =
        (struct kv_op){.type = KV_OP_PUT, .key = all_bytes + 255, .key_len = 1};
    c->cmps = cmps;
    c->n_cmps = 5;
    c->then_ops = then_ops;
    c->n_then = 4;
    c->else_ops = else_ops;
    c->n_else = 1;
}

/* Every byte value in keys and values survives encode then decode. */
START_TEST(test_cmd_round_trips_all_byte_values)
{
    struct kv_cmd c, d;
    struct kv_cmp cmps[5];
    struct kv_op t[4], e[1];
    size_t len;
    sample_txn(&c, cmps, t, e);
    uint8_t *buf = kvt_encode(&c, &len);
    ck_assert_int_eq(kv_cmd_decode(buf, len, NULL, &d), 0);
    ck_assert(cmd_eq(&c, &d));
    kv_cmd_free(&d, NULL);
    free(buf);

    memset(&c, 0, sizeof(c));
    c.type = KV_CMD_PUT;
    c.op = t[0];
    buf = kvt_encode(&c, &len);
    ck_assert_int_eq(kv_cmd_decode(buf, len, NULL, &d), 0);
    ck_assert(cmd_eq(&c, &d));
    ck_assert_int_eq(memcmp(d.op.value, all_bytes, 256), 0);
    kv_cmd_free(&d, NULL);
    free(buf);
}
END_TEST

/* The read-modify-write commands (INCRBY with every sign and extreme of
 * delta, APPEND and INCRBYFLOAT with all byte values) round-trip, alone
 * and in a transaction's branches, with and without a kept result; an
 * empty key and a flag are refused. */
START_TEST(test_cmd_round_trips_read_modify_write_ops)
{
    static const int64_t deltas[] = {0, 1, -1, INT64_MAX, INT64_MIN, 42};
    struct kv_cmd c, d;
    size_t len;
    for (int i = 0; i < 256; i++) {
        all_bytes[i] = (uint8_t)i;
    }
    for (size_t i = 0; i < 3 * sizeof(deltas) / sizeof(deltas[0]); i++) {
        memset(&c, 0, sizeof(c));
        uint8_t type = (uint8_t)(KV_CMD_INCRBY + i % 3);
        c.type = type;
        c.op.type = type;
        c.op.key = all_bytes;
        c.op.key_len = 1 + (uint32_t)i;
        if (type == KV_CMD_INCRBY) {
            c.op.delta = deltas[i / 3];
        } else {
            c.op.value = all_bytes;
            c.op.value_len = 256;
        }
        if (i % 2 == 1) {
            c.client_id = 9;
            c.seq = i;
            c.keep_result = true;
        }
        uint8_t *buf = kvt_encode(&c, &len);
        ck_assert_int_eq(kv_cmd_decode(buf, len, NULL, &d), 0);
        ck_assert(cmd_eq(&c, &d));
        ck_assert_int_eq(d.keep_result, c.keep_result);
        kv_cmd_free(&d, NULL);
        free(buf);
    }
    struct kv_op ops[3];
    memset(ops, 0, sizeof(ops));
    ops[0] = (struct kv_op){
        .type = KV_OP_INCRBY, .key = all_bytes + 3, .key_len = 2, .delta = -7};
    ops[1] = (struct kv_op){.type = KV_OP_APPEND,
                            .key = all_bytes,
                            .key_len = 1,
                            .value = all_bytes,
                            .value_len = 0};
    ops[2] = (struct kv_op){.type = KV_OP_INCRBYFLOAT,
                            .key = all_bytes,
                            .key_len = 5,
                            .value = (const uint8_t *)"1.5e3",
                            .value_len = 5};
    memset(&c, 0, sizeof(c));
    c.type = KV_CMD_TXN;
    c.then_ops = ops;
    c.n_then = 2;
    c.else_ops = ops + 2;
    c.n_else = 1;
    uint8_t *buf = kvt_encode(&c, &len);
    ck_assert_int_eq(kv_cmd_decode(buf, len, NULL, &d), 0);
    ck_assert(cmd_eq(&c, &d));
    kv_cmd_free(&d, NULL);
    free(buf);

    uint8_t out[64];
    memset(&c, 0, sizeof(c));
    c.type = KV_CMD_INCRBY;
    c.op = ops[0];
    c.op.key_len = 0;
    ck_assert_int_eq(kv_cmd_encode(&c, out, sizeof(out), &len), KV_EINVAL);
    c.op = ops[0];
    c.op.flags = KV_FLAG_PREV_KV;
    ck_assert_int_eq(kv_cmd_encode(&c, out, sizeof(out), &len), KV_EINVAL);
    c.op = ops[1]; /* an append op under the incrby command type */
    ck_assert_int_eq(kv_cmd_encode(&c, out, sizeof(out), &len), KV_EINVAL);
}
END_TEST

/* Every proper prefix of a valid command is refused, never read past. */
START_TEST(test_cmd_decode_refuses_every_truncation)
{
    struct kv_cmd c, d;
    struct kv_cmp cmps[5];
    struct kv_op t[4], e[1];
    size_t len;
    sample_txn(&c, cmps, t, e);
    uint8_t *buf = kvt_encode(&c, &len);
    for (size_t n = 0; n < len; n++) {
        /* A fresh copy of exactly n bytes lets ASan catch any overread. */
        uint8_t *p = malloc(n ? n : 1);
        memcpy(p, buf, n);
        int rv = kv_cmd_decode(p, n, NULL, &d);
        ck_assert_msg(rv == KV_EBADCMD, "prefix %zu gave %d", n, rv);
        free(p);
    }
    free(buf);
}
END_TEST

/* Random bytes and bit-flipped commands never crash the decoder, and what it
 * accepts re-encodes to the same bytes (the encoding is canonical). */
START_TEST(test_cmd_decode_survives_random_and_flipped_input)
{
    uint64_t rng = 42;
    struct kv_cmd c, d;
    struct kv_cmp cmps[5];
    struct kv_op t[4], e[1];
    size_t len;
    sample_txn(&c, cmps, t, e);
    uint8_t *valid = kvt_encode(&c, &len);
    uint8_t *out = malloc(len + 64);
    size_t accepted = 0;
    for (int iter = 0; iter < 60000; iter++) {
        size_t n;
        uint8_t *p;
        if (iter % 2 == 0) {
            n = kvt_below(&rng, 48);
            p = malloc(n ? n : 1);
            for (size_t i = 0; i < n; i++) {
                p[i] = (uint8_t)kvt_rand(&rng);
            }
            /* Bias towards the valid version and types to go deeper. */
            if (n > 0) {
                p[0] = 1;
            }
            if (n > 1) {
                static const uint8_t types[] = {1, 2, 3, 4, 10, 11, 12};
                p[1] = types[kvt_below(&rng, sizeof(types))];
            }
            if (n > 2 && kvt_below(&rng, 2)) {
                p[2] = p[1];
            }
        } else {
            n = len;
            p = malloc(n);
            memcpy(p, valid, n);
            for (uint32_t f = 1 + kvt_below(&rng, 3); f > 0; f--) {
                uint32_t bit = kvt_below(&rng, (uint32_t)(n * 8));
                p[bit / 8] ^= (uint8_t)(1u << (bit % 8));
            }
        }
        int rv = kv_cmd_decode(p, n, NULL, &d);
        if (rv == 0) {
            size_t m = 0;
            accepted++;
            ck_assert_uint_eq(kv_cmd_encoded_size(&d), n);
            uint8_t *q = malloc(n);
            ck_assert_int_eq(kv_cmd_encode(&d, q, n, &m), 0);
            ck_assert_uint_eq(m, n);
            ck_assert_int_eq(memcmp(p, q, n), 0);
            free(q);
            kv_cmd_free(&d, NULL);
        } else {
            ck_assert(rv == KV_EBADCMD || rv == KV_ELIMIT || rv == KV_EVERSION);
        }
        free(p);
    }
    ck_assert_uint_gt(accepted, 0);
    free(out);
    free(valid);
}
END_TEST

static int n_allocs;
static int fail_at;
static void *counting_malloc(void *ctx, size_t size)
{
    (void)ctx;
    if (++n_allocs == fail_at) {
        return NULL;
    }
    return malloc(size);
}
static void *counting_realloc(void *ctx, void *p, size_t size)
{
    (void)ctx;
    if (++n_allocs == fail_at) {
        return NULL;
    }
    return realloc(p, size);
}
static void plain_free(void *ctx, void *p)
{
    (void)ctx;
    free(p);
}
static const struct kv_allocator counting = {NULL, counting_malloc,
                                             counting_realloc, plain_free};

/* Lengths and counts over the limits are refused before any allocation. */
START_TEST(test_cmd_decode_checks_limits_before_allocating)
{
    struct kv_cmd d;
    /* A put whose key length claims 4 GiB. */
    uint8_t huge[] = {1, KV_CMD_PUT, KV_OP_PUT, 0, 0xff, 0xff, 0xff, 0xff};
    n_allocs = 0;
    fail_at = 0;
    ck_assert_int_eq(kv_cmd_decode(huge, sizeof(huge), &counting, &d),
                     KV_ELIMIT);
    /* A key one byte over the limit. */
    uint8_t over[] = {1, KV_CMD_PUT, KV_OP_PUT, 0, 0x00, 0x02, 0, 0};
    ck_assert_int_eq(kv_cmd_decode(over, sizeof(over), &counting, &d),
                     KV_ELIMIT);
    /* A transaction claiming 65,535 comparisons. */
    uint8_t many[] = {1, KV_CMD_TXN, 0xff, 0xff};
    ck_assert_int_eq(kv_cmd_decode(many, sizeof(many), &counting, &d),
                     KV_ELIMIT);
    /* A transaction claiming 60 comparisons in 4 bytes. */
    uint8_t short_cmps[] = {1, KV_CMD_TXN, 60, 0, 0, 0};
    ck_assert_int_eq(
        kv_cmd_decode(short_cmps, sizeof(short_cmps), &counting, &d),
        KV_EBADCMD);
    ck_assert_int_eq(n_allocs, 0);

    /* The encoder applies the same limits. */
    uint8_t key[KV_KEY_BYTES_MAX + 1] = {0};
    struct kv_cmd c;
    memset(&c, 0, sizeof(c));
    c.type = KV_CMD_PUT;
    c.op.type = KV_OP_PUT;
    c.op.key = key;
    c.op.key_len = KV_KEY_BYTES_MAX + 1;
    ck_assert_uint_eq(kv_cmd_encoded_size(&c), 0);
    c.op.key_len = KV_KEY_BYTES_MAX;
    ck_assert_uint_gt(kv_cmd_encoded_size(&c), 0);
    struct kv_op ops[KV_TXN_OPS_MAX + 1];
    memset(ops, 0, sizeof(ops));
    for (size_t i = 0; i <= KV_TXN_OPS_MAX; i++) {
        ops[i].type = KV_OP_DELETE;
        ops[i].key = key;
        ops[i].key_len = 1;
    }
    memset(&c, 0, sizeof(c));
    c.type = KV_CMD_TXN;
    c.then_ops = ops;
    c.n_then = KV_TXN_OPS_MAX + 1;
    uint8_t buf[4096];
    size_t len;
    ck_assert_int_eq(kv_cmd_encode(&c, buf, sizeof(buf), &len), KV_ELIMIT);
    c.n_then = KV_TXN_OPS_MAX;
    ck_assert_int_eq(kv_cmd_encode(&c, buf, sizeof(buf), &len), 0);
}
END_TEST

/* Unknown versions, types, flags and operators, and trailing bytes, are
 * refused with the matching code. */
START_TEST(test_cmd_decode_refuses_malformed_commands)
{
    struct kv_cmd d;
    size_t len;
    uint8_t *p = kvt_put("k", "v", &len);
    p[0] = KV_CMD_VERSION_SESSION_RESULT + 1;
    ck_assert_int_eq(kv_cmd_decode(p, len, NULL, &d), KV_EVERSION);
    p[0] = KV_CMD_VERSION_SESSION; /* the request id is missing */
    ck_assert_int_eq(kv_cmd_decode(p, len, NULL, &d), KV_EBADCMD);
    p[0] = KV_CMD_VERSION_SESSION_RESULT;
    ck_assert_int_eq(kv_cmd_decode(p, len, NULL, &d), KV_EBADCMD);
    p[0] = 1;
    p[1] = 9;
    ck_assert_int_eq(kv_cmd_decode(p, len, NULL, &d), KV_EBADCMD);
    p[1] = KV_CMD_PUT;
    p[3] = KV_FLAG_REVERSE; /* not a put flag */
    ck_assert_int_eq(kv_cmd_decode(p, len, NULL, &d), KV_EBADCMD);
    p[3] = 0;
    ck_assert_int_eq(kv_cmd_decode(p, len, NULL, &d), 0);
    kv_cmd_free(&d, NULL);
    uint8_t *q = malloc(len + 1);
    memcpy(q, p, len);
    q[len] = 0;
    ck_assert_int_eq(kv_cmd_decode(q, len + 1, NULL, &d), KV_EBADCMD);
    /* An empty key cannot be put. */
    uint8_t empty[] = {1, KV_CMD_PUT, KV_OP_PUT, 0, 0, 0, 0, 0, 0, 0, 0, 0};
    ck_assert_int_eq(kv_cmd_decode(empty, sizeof(empty), NULL, &d), KV_EBADCMD);
    /* An existence comparison with < is meaningless. */
    uint8_t cmp[] = {1,         KV_CMD_TXN, 1, 0, KV_CMP_EXISTS,
                     KV_CMP_LT, 1,          0, 0, 0,
                     'k',       1,          0, 0, 0,
                     0,         0,          0, 0, 0,
                     0,         0,          0};
    ck_assert_int_eq(kv_cmd_decode(cmp, sizeof(cmp), NULL, &d), KV_EBADCMD);
    cmp[5] = KV_CMP_EQ;
    ck_assert_int_eq(kv_cmd_decode(cmp, sizeof(cmp), NULL, &d), 0);
    kv_cmd_free(&d, NULL);
    free(q);
    free(p);
}
END_TEST

/* Failing each allocation of a decode in turn fails cleanly and leaks
 * nothing (ASan checks the leaks). */
START_TEST(test_cmd_decode_fails_cleanly_on_each_allocation)
{
    struct kv_cmd c, d;
    struct kv_cmp cmps[5];
    struct kv_op t[4], e[1];
    size_t len;
    sample_txn(&c, cmps, t, e);
    uint8_t *buf = kvt_encode(&c, &len);
    for (fail_at = 1;; fail_at++) {
        n_allocs = 0;
        int rv = kv_cmd_decode(buf, len, &counting, &d);
        if (rv == 0) {
            kv_cmd_free(&d, &counting);
            break;
        }
        ck_assert_int_eq(rv, KV_ENOMEM);
    }
    ck_assert_int_eq(fail_at, 4);
    free(buf);
}
END_TEST

Suite *kv_cmd_suite(void)
{
    Suite *s = suite_create("cmd");
    TCase *tc = tcase_create("cmd");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_cmd_round_trips_all_byte_values);
    tcase_add_test(tc, test_cmd_round_trips_read_modify_write_ops);
    tcase_add_test(tc, test_cmd_decode_refuses_every_truncation);
    tcase_add_test(tc, test_cmd_decode_survives_random_and_flipped_input);
    tcase_add_test(tc, test_cmd_decode_checks_limits_before_allocating);
    tcase_add_test(tc, test_cmd_decode_refuses_malformed_commands);
    tcase_add_test(tc, test_cmd_decode_fails_cleanly_on_each_allocation);
    suite_add_tcase(s, tc);
    return s;
}
