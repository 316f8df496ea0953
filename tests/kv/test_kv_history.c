/*
 * test_kv_history.c - the history read by watches and its compaction.
 */
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "kv_test_util.h"

/* Applies n entries: puts over 30 keys, a delete-range every 25th entry. */
static void apply_mixed(struct kv_store *s, raft_index first, size_t n)
{
    struct kvt_batch b = {0};
    for (size_t i = 0; i < n; i++) {
        raft_index index = first + i;
        char key[32], value[32];
        size_t len;
        uint8_t *d;
        if (index % 25 == 0) {
            struct kv_cmd c;
            memset(&c, 0, sizeof(c));
            c.type = KV_CMD_DELETE_RANGE;
            c.op.type = KV_OP_DELETE_RANGE;
            c.op.key = (const uint8_t *)"k1";
            c.op.key_len = 2;
            c.op.flags = KV_FLAG_PREFIX;
            d = kvt_encode(&c, &len);
        } else {
            snprintf(key, sizeof(key), "k%llu",
                     (unsigned long long)(index % 30));
            snprintf(value, sizeof(value), "%llu", (unsigned long long)index);
            d = kvt_put(key, value, &len);
        }
        kvt_batch_add(&b, index, d, len);
    }
    ck_assert_int_eq(kv_apply(s, b.e, b.n, NULL), 0);
    kvt_batch_clear(&b);
}

struct ev
{
    uint64_t rev;
    uint32_t seq;
    uint8_t type;
};

/* Reads every event from @from, @step at a time. */
static size_t read_all(struct kv_store *s,
                       struct kv_history_pos from,
                       size_t step,
                       struct ev *out,
                       size_t cap)
{
    size_t n = 0;
    for (;;) {
        struct kv_history_result h;
        ck_assert_int_eq(kv_history_read(s, from, step, &h, NULL), 0);
        for (size_t i = 0; i < h.n_events; i++) {
            ck_assert_uint_lt(n, cap);
            out[n].rev = h.events[i].kv.mod_revision;
            out[n].seq = h.events[i].seq;
            out[n].type = h.events[i].type;
            n++;
        }
        from = h.next;
        bool more = h.more;
        kv_history_result_free(&h);
        if (!more) {
            return n;
        }
    }
}

/* Events come in (revision, seq) order; reading one at a time gives the same
 * list as one read; resuming at any revision gives exactly the suffix. */
START_TEST(test_history_is_ordered_and_resumes_from_any_revision)
{
    char *dir = kvt_mkdtemp();
    struct kv_store *s = kvt_open(dir, 0);
    apply_mixed(s, 1, 120);
    apply_mixed(s, 121, 80);
    static struct ev all[4096], part[4096];
    size_t n = read_all(s, (struct kv_history_pos){0, 0}, 0, all, 4096);
    size_t m = read_all(s, (struct kv_history_pos){0, 0}, 1, part, 4096);
    ck_assert_uint_eq(n, m);
    ck_assert_int_eq(memcmp(all, part, n * sizeof(all[0])), 0);
    bool saw_multi = false;
    for (size_t i = 1; i < n; i++) {
        ck_assert(
            all[i].rev > all[i - 1].rev ||
            (all[i].rev == all[i - 1].rev && all[i].seq == all[i - 1].seq + 1));
        saw_multi |= all[i].rev == all[i - 1].rev;
    }
    ck_assert(saw_multi); /* the delete-ranges */
    struct kv_status st;
    ck_assert_int_eq(kv_status(s, &st), 0);
    for (uint64_t r = 1; r <= st.revision + 1; r++) {
        size_t first = 0;
        while (first < n && all[first].rev < r) {
            first++;
        }
        size_t k = read_all(s, (struct kv_history_pos){r, 0}, 7, part, 4096);
        ck_assert_uint_eq(k, n - first);
        ck_assert_int_eq(memcmp(part, all + first, k * sizeof(all[0])), 0);
    }
    kv_close(s);
    kvt_rmdir(dir);
}
END_TEST

/* Reads below the compaction point fail with KV_ECOMPACTED and the point;
 * the point never moves back; the future is refused too. */
START_TEST(test_history_refuses_a_compacted_revision)
{
    char *dir = kvt_mkdtemp();
    struct kv_store *s = kvt_open(dir, 0);
    struct kv_history_result h;
    uint64_t point = 0;
    apply_mixed(s, 1, 100);
    struct kv_status st;
    ck_assert_int_eq(kv_status(s, &st), 0);
    ck_assert_int_eq(kv_compact(s, 50), 0);
    ck_assert_int_eq(
        kv_history_read(s, (struct kv_history_pos){49, 0}, 0, &h, &point),
        KV_ECOMPACTED);
    kv_history_result_free(&h);
    ck_assert_uint_eq(point, 50);
    char msg[256];
    kv_errmsg(s, msg, sizeof(msg));
    ck_assert_ptr_nonnull(strstr(msg, "compacted"));
    ck_assert_int_eq(
        kv_history_read(s, (struct kv_history_pos){50, 0}, 1, &h, NULL), 0);
    ck_assert_uint_eq(h.n_events, 1);
    ck_assert_uint_eq(h.events[0].kv.mod_revision, 50);
    kv_history_result_free(&h);
    ck_assert_int_eq(kv_compact(s, 10), 0);
    ck_assert_int_eq(kv_status(s, &st), 0);
    ck_assert_uint_eq(st.compact_revision, 50);
    ck_assert_int_eq(kv_compact(s, st.revision + 1), KV_EFUTURE);
    ck_assert_int_eq(
        kv_history_read(s, (struct kv_history_pos){st.revision + 2, 0}, 0, &h,
                        NULL),
        KV_EFUTURE);
    kv_history_result_free(&h);
    ck_assert_int_eq(
        kv_history_read(s, (struct kv_history_pos){st.revision + 1, 0}, 0, &h,
                        NULL),
        0);
    ck_assert_uint_eq(h.n_events, 0);
    ck_assert(!h.more);
    kv_history_result_free(&h);
    kv_close(s);
    kvt_rmdir(dir);
}
END_TEST

struct reader_arg
{
    struct kv_store *s;
    volatile int stop;
    uint64_t reads;
    uint64_t keys;
    int bad;
};

static void *reader_main(void *p)
{
    struct reader_arg *a = p;
    while (!a->stop) {
        struct kv_range_result r;
        struct kv_range_req req = {(const uint8_t *)"k",
                                   NULL,
                                   1,
                                   0,
                                   KV_FLAG_PREFIX | KV_FLAG_COUNT_ONLY,
                                   0};
        if (kv_range(a->s, &req, &r) != 0 || r.count != a->keys) {
            a->bad++;
        }
        kv_range_result_free(&r);
        struct kv_history_result h;
        uint64_t point = 0;
        int rv = kv_history_read(a->s, (struct kv_history_pos){1, 0}, 10, &h,
                                 &point);
        if (rv == KV_ECOMPACTED) {
            kv_history_result_free(&h);
            rv = kv_history_read(a->s, (struct kv_history_pos){point, 0}, 10,
                                 &h, NULL);
            /* Whatever the compaction has reached, what the point promises
             * is there: the first event is at the point. */
            if (rv == 0 &&
                (h.n_events == 0 || h.events[0].kv.mod_revision != point)) {
                a->bad++;
            }
        }
        if (rv != 0) {
            a->bad++;
        }
        kv_history_result_free(&h);
        a->reads++;
    }
    return NULL;
}

static int batches;
static int stop_after;
static int count_batches(void *arg, int step)
{
    (void)arg;
    if (step == KV_STEP_COMPACT_BATCH) {
        batches++;
        if (stop_after != 0 && batches == stop_after) {
            return 1;
        }
    }
    return 0;
}

/* Compaction deletes in bounded batches while a reader keeps reading a
 * consistent store and history. */
START_TEST(test_compaction_in_batches_runs_alongside_reads)
{
    char *dir = kvt_mkdtemp();
    struct kv_options o;
    struct kv_store *s = NULL;
    memset(&o, 0, sizeof(o));
    o.compact_batch = 100;
    o.step_hook = count_batches;
    batches = 0;
    stop_after = 0;
    ck_assert_int_eq(kv_open(dir, &o, &s, NULL, 0), 0);
    for (int i = 0; i < 5; i++) {
        kvt_apply_puts(s, (raft_index)(1 + i * 1000), 1000, "k", 16);
    }
    struct reader_arg a = {s, 0, 0, 1000, 0};
    pthread_t t;
    pthread_create(&t, NULL, reader_main, &a);
    ck_assert_int_eq(kv_compact(s, 4000), 0);
    /* Keep the reader going a little past the end. */
    while (a.reads < 50) {
        sched_yield();
    }
    a.stop = 1;
    pthread_join(t, NULL);
    ck_assert_int_eq(a.bad, 0);
    ck_assert_int_ge(batches, 39);
    struct kv_status st;
    ck_assert_int_eq(kv_status(s, &st), 0);
    ck_assert_uint_eq(st.history_events, 1001);
    ck_assert(!st.compaction_pending);
    kv_close(s);
    kvt_rmdir(dir);
}
END_TEST

/* A compaction stopped after some batches (a crash) is pending after a
 * restart, refuses reads below its point already, and resumes. */
START_TEST(test_compaction_resumes_after_a_crash)
{
    char *dir = kvt_mkdtemp();
    struct kv_options o;
    struct kv_store *s = NULL;
    memset(&o, 0, sizeof(o));
    o.compact_batch = 50;
    o.step_hook = count_batches;
    batches = 0;
    stop_after = 3;
    ck_assert_int_eq(kv_open(dir, &o, &s, NULL, 0), 0);
    kvt_apply_puts(s, 1, 1000, "k", 8);
    ck_assert_int_eq(kv_compact(s, 900), KV_ESTOPPED);
    kv_close(s);
    stop_after = 0;
    ck_assert_int_eq(kv_open(dir, &o, &s, NULL, 0), 0);
    struct kv_status st;
    ck_assert_int_eq(kv_status(s, &st), 0);
    ck_assert(st.compaction_pending);
    ck_assert_uint_eq(st.compact_revision, 900);
    ck_assert_uint_eq(st.history_events, 1000 - 150);
    struct kv_history_result h;
    ck_assert_int_eq(
        kv_history_read(s, (struct kv_history_pos){200, 0}, 0, &h, NULL),
        KV_ECOMPACTED);
    kv_history_result_free(&h);
    ck_assert_int_eq(kv_compact(s, 0), 0);
    ck_assert_int_eq(kv_status(s, &st), 0);
    ck_assert(!st.compaction_pending);
    ck_assert_uint_eq(st.history_events, 101);
    kv_close(s);
    kvt_rmdir(dir);
}
END_TEST

Suite *kv_history_suite(void)
{
    Suite *s = suite_create("history");
    TCase *tc = tcase_create("history");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_history_is_ordered_and_resumes_from_any_revision);
    tcase_add_test(tc, test_history_refuses_a_compacted_revision);
    tcase_add_test(tc, test_compaction_in_batches_runs_alongside_reads);
    tcase_add_test(tc, test_compaction_resumes_after_a_crash);
    suite_add_tcase(s, tc);
    return s;
}
