/*
 * test_kv_space.c - the store's long-run life: compaction through the log
 * (KV_CMD_COMPACT and kv_compact_step), the space figures a quota is
 * checked against, free pages reused under steady overwrites, and a map
 * that grows instead of failing.
 */
#include <stdio.h>
#include <string.h>

#include "kv_test_util.h"

static uint8_t *compact_cmd(uint64_t revision, size_t *len)
{
    struct kv_cmd c;
    memset(&c, 0, sizeof(c));
    c.type = KV_CMD_COMPACT;
    c.revision = revision;
    return kvt_encode(&c, len);
}

/* Applies one compaction entry at @index and returns its result code, and
 * the point after it in *@point. */
static int apply_compact(struct kv_store *s,
                         raft_index index,
                         uint64_t revision,
                         uint64_t *point)
{
    struct kv_apply_result res;
    size_t len;
    uint8_t *d = compact_cmd(revision, &len);
    kvt_apply_one(s, index, d, len, &res);
    int code = res.entries[0].code;
    ck_assert_uint_eq(res.entries[0].cmd_type, KV_CMD_COMPACT);
    *point = res.entries[0].compact_revision;
    kv_apply_result_free(&res);
    return code;
}

static int history_from(struct kv_store *s, uint64_t rev, uint64_t *point)
{
    struct kv_history_result h;
    int rv = kv_history_read(s, (struct kv_history_pos){rev, 0}, 10, &h, point);
    kv_history_result_free(&h);
    return rv;
}

/* The compaction command round-trips through its encoding, and a
 * compaction to revision 0 is malformed. */
START_TEST(test_compact_command_round_trips_and_refuses_revision_zero)
{
    size_t len;
    uint8_t *d = compact_cmd(123456789, &len);
    struct kv_cmd c;
    ck_assert_uint_eq(len, 10);
    ck_assert_int_eq(kv_cmd_decode(d, len, NULL, &c), 0);
    ck_assert_uint_eq(c.type, KV_CMD_COMPACT);
    ck_assert_uint_eq(c.revision, 123456789);
    kv_cmd_free(&c, NULL);
    for (size_t cut = 0; cut < len; cut++) {
        ck_assert_int_ne(kv_cmd_decode(d, cut, NULL, &c), 0);
    }
    memset(d + 2, 0, 8);
    ck_assert_int_eq(kv_cmd_decode(d, len, NULL, &c), KV_EBADCMD);
    free(d);
    memset(&c, 0, sizeof(c));
    c.type = KV_CMD_COMPACT;
    ck_assert_uint_eq(kv_cmd_encoded_size(&c), 0);
}
END_TEST

/* Only commands that can make the store larger are refused over a quota:
 * puts and transactions with a put, not deletes, compactions, member
 * records or read-only transactions. */
START_TEST(test_only_commands_that_add_data_count_against_a_quota)
{
    size_t len;
    uint8_t *d = kvt_put("k", "v", &len);
    ck_assert(kv_cmd_adds_data(d, len));
    free(d);
    d = kvt_del("k", &len);
    ck_assert(!kv_cmd_adds_data(d, len));
    free(d);
    d = compact_cmd(5, &len);
    ck_assert(!kv_cmd_adds_data(d, len));
    free(d);
    struct kv_cmd c;
    uint8_t key[8];
    kv_cmd_member(&c, key, 2, "h:1:2", 5);
    d = kvt_encode(&c, &len);
    ck_assert(!kv_cmd_adds_data(d, len));
    free(d);
    struct kv_op then_op = {
        .type = KV_OP_DELETE, .key = (const uint8_t *)"a", .key_len = 1};
    struct kv_op else_op = {.type = KV_OP_PUT,
                            .key = (const uint8_t *)"a",
                            .key_len = 1,
                            .value = (const uint8_t *)"x",
                            .value_len = 1};
    memset(&c, 0, sizeof(c));
    c.type = KV_CMD_TXN;
    c.then_ops = &then_op;
    c.n_then = 1;
    d = kvt_encode(&c, &len);
    ck_assert(!kv_cmd_adds_data(d, len));
    free(d);
    c.else_ops = &else_op;
    c.n_else = 1;
    d = kvt_encode(&c, &len);
    ck_assert(kv_cmd_adds_data(d, len));
    free(d);
    ck_assert(kv_cmd_adds_data(NULL, 0));
}
END_TEST

/* Two replicas applying the same log, compaction entry included, refuse
 * the same history reads from the same entry on, naming the point, and
 * delete the records below it step by step, each step bounded. */
START_TEST(test_compact_entry_moves_the_point_alike_on_every_replica)
{
    char *dirs[2] = {kvt_mkdtemp(), kvt_mkdtemp()};
    struct kv_store *s[2];
    struct kv_options o;
    memset(&o, 0, sizeof(o));
    o.compact_batch = 64;
    for (int r = 0; r < 2; r++) {
        ck_assert_int_eq(kv_open(dirs[r], &o, &s[r], NULL, 0), 0);
        kvt_apply_puts(s[r], 1, 1000, "k", 16);
        uint64_t point = 0;
        ck_assert_int_eq(apply_compact(s[r], 1001, 700, &point), 0);
        ck_assert_uint_eq(point, 700);
        /* The point holds at once, before any record is deleted. */
        ck_assert_int_eq(history_from(s[r], 699, &point), KV_ECOMPACTED);
        ck_assert_uint_eq(point, 700);
        ck_assert_int_eq(history_from(s[r], 700, &point), 0);
        struct kv_status st;
        ck_assert_int_eq(kv_status(s[r], &st), 0);
        ck_assert(st.compaction_pending);
        ck_assert_uint_eq(st.history_events, 1000);
        ck_assert_uint_eq(st.revision, 1000); /* compaction is no write */
        ck_assert_uint_eq(st.applied, 1001);
    }
    /* Replica 0 deletes at once, replica 1 lags: reads agree anyway. */
    bool pending = true;
    int steps = 0;
    while (pending) {
        uint64_t before, after;
        struct kv_status st;
        ck_assert_int_eq(kv_status(s[0], &st), 0);
        before = st.history_events;
        ck_assert_int_eq(kv_compact_step(s[0], &pending), 0);
        ck_assert_int_eq(kv_status(s[0], &st), 0);
        after = st.history_events;
        ck_assert_uint_le(before - after, 64);
        steps++;
    }
    ck_assert_int_eq(steps, 11); /* 699 records, 64 at a time */
    struct kv_status st0, st1;
    ck_assert_int_eq(kv_status(s[0], &st0), 0);
    ck_assert_int_eq(kv_status(s[1], &st1), 0);
    ck_assert_uint_eq(st0.history_events, 301);
    ck_assert(!st0.compaction_pending);
    ck_assert(st1.compaction_pending);
    for (uint64_t rev = 690; rev < 710; rev++) {
        uint64_t p0 = 0, p1 = 0;
        ck_assert_int_eq(history_from(s[0], rev, &p0),
                         history_from(s[1], rev, &p1));
        ck_assert_uint_eq(p0, p1);
    }
    char *d0 = kvt_dump(s[0]), *d1 = kvt_dump(s[1]);
    ck_assert_str_eq(d0, d1);
    free(d0);
    free(d1);
    /* Nothing pending: a step is a no-op. */
    ck_assert_int_eq(kv_compact_step(s[0], &pending), 0);
    ck_assert(!pending);
    for (int r = 0; r < 2; r++) {
        kv_close(s[r]);
        kvt_rmdir(dirs[r]);
    }
}
END_TEST

/* A compaction beyond the store revision is refused with KV_EFUTURE as
 * the entry's own outcome (every replica agrees), and a lower one than
 * the point leaves the point where it is. */
START_TEST(
    test_compact_entry_beyond_the_revision_is_refused_and_never_moves_back)
{
    char *dir = kvt_mkdtemp();
    struct kv_store *s = kvt_open(dir, 0);
    uint64_t point = 0;
    kvt_apply_puts(s, 1, 100, "k", 8);
    ck_assert_int_eq(apply_compact(s, 101, 101, &point), KV_EFUTURE);
    ck_assert_uint_eq(point, 0);
    ck_assert_int_eq(apply_compact(s, 102, 100, &point), 0);
    ck_assert_uint_eq(point, 100);
    ck_assert_int_eq(apply_compact(s, 103, 50, &point), 0);
    ck_assert_uint_eq(point, 100);
    ck_assert_int_eq(history_from(s, 99, &point), KV_ECOMPACTED);
    ck_assert_uint_eq(point, 100);
    kv_close(s);
    kvt_rmdir(dir);
}
END_TEST

/* Under steady overwrites of the same keys with the history compacted
 * behind them, LMDB reuses the freed pages: the file stops growing, and
 * the free pages are counted. Without compaction it keeps growing. */
START_TEST(test_overwrites_with_compaction_reuse_free_pages)
{
    char *dir = kvt_mkdtemp();
    struct kv_store *s = kvt_open(dir, 0);
    struct kv_space sp;
    raft_index index = 1;
    uint64_t file_after_warmup = 0;
    for (int round = 0; round < 40; round++) {
        struct kvt_batch b = {0};
        for (int i = 0; i < 500; i++) {
            char key[32], value[200];
            size_t len;
            snprintf(key, sizeof(key), "key%03d", i % 200);
            memset(value, 'a' + round % 26, sizeof(value) - 1);
            value[sizeof(value) - 1] = 0;
            kvt_batch_add(&b, index++, kvt_put(key, value, &len), len);
        }
        ck_assert_int_eq(kv_apply(s, b.e, b.n, NULL), 0);
        kvt_batch_clear(&b);
        struct kv_status st;
        ck_assert_int_eq(kv_status(s, &st), 0);
        if (st.revision > 1000) {
            uint64_t point = 0;
            ck_assert_int_eq(
                apply_compact(s, index++, st.revision - 1000, &point), 0);
            bool pending = true;
            while (pending) {
                ck_assert_int_eq(kv_compact_step(s, &pending), 0);
            }
        }
        ck_assert_int_eq(kv_space(s, true, &sp), 0);
        ck_assert_uint_le(sp.free_bytes, sp.file_bytes);
        if (round == 10) {
            file_after_warmup = sp.file_bytes;
        }
    }
    ck_assert_uint_gt(file_after_warmup, 0);
    /* 20,000 writes of 200 bytes went by: without reuse the file would be
     * several megabytes; with it, it stays near its size after warm-up. */
    ck_assert_uint_le(sp.file_bytes, file_after_warmup * 3 / 2);
    ck_assert_uint_gt(sp.free_bytes, 0);
    kv_close(s);
    kvt_rmdir(dir);
}
END_TEST

/* A store whose map is full fails the batch whole with KV_EFULL; once the
 * map is grown, the same batch applies, and a reopen keeps the size. */
START_TEST(test_a_full_map_grows_and_the_same_batch_then_applies)
{
    char *dir = kvt_mkdtemp();
    struct kv_store *s = kvt_open(dir, 1u << 20);
    struct kv_space sp;
    raft_index index = 1;
    int rv = 0;
    while (rv == 0) {
        struct kvt_batch b = {0};
        for (int i = 0; i < 100; i++) {
            char key[32];
            size_t len;
            snprintf(key, sizeof(key), "k%06llu", (unsigned long long)index);
            kvt_batch_add(&b, index + (raft_index)i,
                          kvt_put(key, "0123456789abcdef0123456789", &len),
                          len);
        }
        rv = kv_apply(s, b.e, b.n, NULL);
        if (rv == 0) {
            index += 100;
            kvt_batch_clear(&b);
            continue;
        }
        ck_assert_int_eq(rv, KV_EFULL);
        ck_assert_int_eq(kv_space(s, false, &sp), 0);
        ck_assert_uint_eq(sp.map_bytes, 1u << 20);
        /* Smaller than what is used: refused. */
        ck_assert_int_eq(kv_map_grow(s, 4096), KV_EINVAL);
        ck_assert_int_eq(kv_map_grow(s, 2u << 20), 0);
        ck_assert_int_eq(kv_apply(s, b.e, b.n, NULL), 0);
        kvt_batch_clear(&b);
        index += 100;
        break;
    }
    struct kv_status st;
    ck_assert_int_eq(kv_status(s, &st), 0);
    ck_assert_uint_eq(st.applied, index - 1);
    kv_close(s);
    s = kvt_open(dir, 1u << 20);
    ck_assert_int_eq(kv_space(s, false, &sp), 0);
    ck_assert_uint_ge(sp.map_bytes, 2u << 20);
    kv_close(s);
    kvt_rmdir(dir);
}
END_TEST

/* After a burst that was deleted and compacted away, an offline defrag
 * gives the free pages back: the data file shrinks, the state (every pair
 * with its metadata, the revision, the applied index) is the same, and
 * the store takes writes again. */
START_TEST(test_defrag_gives_free_pages_back_and_keeps_the_state)
{
    char *dir = kvt_mkdtemp();
    struct kv_store *s = kvt_open(dir, 0);
    raft_index index = 1;
    kvt_apply_puts(s, index, 4000, "burst", 2000);
    index += 4000;
    struct kv_cmd c;
    memset(&c, 0, sizeof(c));
    c.type = KV_CMD_DELETE_RANGE;
    c.op.type = KV_OP_DELETE_RANGE;
    c.op.key = (const uint8_t *)"burst";
    c.op.key_len = 5;
    c.op.flags = KV_FLAG_PREFIX;
    size_t len;
    struct kv_apply_result res;
    uint8_t *d = kvt_encode(&c, &len);
    kvt_apply_one(s, index++, d, len, &res);
    ck_assert_int_eq(res.entries[0].code, 0);
    ck_assert_uint_eq(res.entries[0].ops[0].count, 4000);
    kv_apply_result_free(&res);
    kvt_apply_puts(s, index, 100, "keep", 100);
    index += 100;
    struct kv_status st;
    ck_assert_int_eq(kv_status(s, &st), 0);
    uint64_t point = 0;
    ck_assert_int_eq(apply_compact(s, index++, st.revision, &point), 0);
    bool pending = true;
    while (pending) {
        ck_assert_int_eq(kv_compact_step(s, &pending), 0);
    }
    raft_index durable = 0;
    ck_assert_int_eq(kv_checkpoint(s, &durable), 0);
    char *want = kvt_dump(s);
    kv_close(s);

    uint64_t before = 0, after = 0;
    char err[256] = "";
    ck_assert_msg(kv_defrag(dir, NULL, &before, &after, err, sizeof(err)) == 0,
                  "%s", err);
    ck_assert_uint_gt(before, 4000u * 2000u);
    ck_assert_uint_lt(after, before / 4);
    s = kvt_open(dir, 0);
    char *got = kvt_dump(s);
    ck_assert_str_eq(got, want);
    kvt_apply_puts(s, index, 10, "after", 10);
    ck_assert_int_eq(kv_status(s, &st), 0);
    ck_assert_uint_eq(st.applied, index + 9);
    kv_close(s);
    /* Writes after the last checkpoint: refused (a node may run on it). */
    ck_assert_int_eq(kv_defrag(dir, NULL, NULL, NULL, err, sizeof(err)),
                     KV_ESTATE);
    ck_assert_ptr_nonnull(strstr(err, "stop the node"));
    s = kvt_open(dir, 0);
    free(want);
    free(got);
    kv_close(s);
    kvt_rmdir(dir);
}
END_TEST

Suite *kv_space_suite(void)
{
    Suite *s = suite_create("space");
    TCase *tc = tcase_create("space");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc,
                   test_compact_command_round_trips_and_refuses_revision_zero);
    tcase_add_test(tc, test_only_commands_that_add_data_count_against_a_quota);
    tcase_add_test(tc,
                   test_compact_entry_moves_the_point_alike_on_every_replica);
    tcase_add_test(
        tc,
        test_compact_entry_beyond_the_revision_is_refused_and_never_moves_back);
    tcase_add_test(tc, test_overwrites_with_compaction_reuse_free_pages);
    tcase_add_test(tc, test_a_full_map_grows_and_the_same_batch_then_applies);
    tcase_add_test(tc, test_defrag_gives_free_pages_back_and_keeps_the_state);
    suite_add_tcase(s, tc);
    return s;
}
