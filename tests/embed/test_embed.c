/*
 * test_embed.c - the public API (include/ballot.h) as a program uses it: a
 * node on its own thread and on the program's loop, reads and writes,
 * request ids, misuse, and an embedded node in one cluster with two
 * ballotd processes. Ports and directories come from the cluster
 * harness, which also kills every ballotd it starts.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <uv.h>

#include "ballot.h"
#include "ballot/uv.h"
#include "harness.h"

static struct cluster cl;

/* A configuration for node @id of the prepared cluster @c (every node of
 * it a member), bootstrapping. */
static struct ballot_config *config_for(struct cluster *c, unsigned id)
{
    struct ballot_config *cfg;
    char v[128];
    ck_assert_int_eq(ballot_config_create(&cfg), 0);
    snprintf(v, sizeof(v), "%u", id);
    ck_assert_int_eq(ballot_config_set(cfg, "id", v), 0);
    ck_assert_int_eq(ballot_config_set(cfg, "data", c->nodes[id - 1].dir), 0);
    for (unsigned i = 0; i < c->n; i++) {
        snprintf(v, sizeof(v), "%u=127.0.0.1:%d:%d", i + 1,
                 c->nodes[i].client_port, c->nodes[i].peer_port);
        ck_assert_int_eq(ballot_config_set(cfg, "member", v), 0);
    }
    snprintf(v, sizeof(v), "%d", c->nodes[id - 1].metrics_port);
    ck_assert_int_eq(ballot_config_set(cfg, "metrics_port", v), 0);
    ck_assert_int_eq(ballot_config_set(cfg, "bootstrap", "true"), 0);
    ck_assert_int_eq(
        ballot_config_set(cfg, "cluster_secret_file", c->secret_file), 0);
    return cfg;
}

/* Waits (bounded) until @b knows a leader; returns its id. */
static uint64_t wait_leader(struct ballot *b)
{
    struct ballot_status st;
    for (int i = 0; i < 1000; i++) {
        ck_assert_int_eq(ballot_status(b, &st), 0);
        if (st.leader != 0) {
            return st.leader;
        }
        usleep(10000);
    }
    ck_abort_msg("no leader within 10 s");
    return 0;
}

static void expect_value(struct ballot *b, const char *key, const char *want)
{
    struct ballot_result *r;
    ck_assert_int_eq(
        ballot_get_wait(b, key, strlen(key), BALLOT_LINEARIZABLE, &r), 0);
    ck_assert_uint_eq(r->n_ops, 1);
    if (want == NULL) {
        ck_assert_uint_eq(r->ops[0].n_kvs, 0);
    } else {
        ck_assert_uint_eq(r->ops[0].n_kvs, 1);
        ck_assert_uint_eq(r->ops[0].kvs[0].value_len, strlen(want));
        ck_assert(memcmp(r->ops[0].kvs[0].value, want, strlen(want)) == 0);
    }
    ballot_result_free(r);
}

static struct ballot *open_single(void)
{
    struct ballot *b = NULL;
    char err[512] = "";
    cl_prepare_args(&cl, 1, NULL);
    struct ballot_config *cfg = config_for(&cl, 1);
    int rv = ballot_open(cfg, &b, err, sizeof(err));
    ballot_config_destroy(cfg);
    ck_assert_msg(rv == 0, "ballot_open: %s: %s", ballot_strerror(rv), err);
    ck_assert_uint_eq(wait_leader(b), 1);
    return b;
}

/* A node on its own thread: writes, linearizable and local reads, ranges
 * with their flags, both branches of a transaction, a delete, then a
 * clean close. */
START_TEST(test_embed_thread_node_reads_and_writes)
{
    struct ballot *b = open_single();
    struct ballot_result *r;

    ck_assert_int_eq(ballot_put_wait(b, "a/1", 3, "one", 3, NULL, &r), 0);
    uint64_t rev1 = r->revision;
    ck_assert_uint_gt(rev1, 0);
    ck_assert(!r->duplicate);
    ballot_result_free(r);
    ck_assert_int_eq(ballot_put_wait(b, "a/1", 3, "uno", 3, NULL, NULL), 0);
    ck_assert_int_eq(ballot_put_wait(b, "a/2", 3, "two", 3, NULL, NULL), 0);
    ck_assert_int_eq(ballot_put_wait(b, "b/1", 3, "", 0, NULL, NULL), 0);
    expect_value(b, "a/1", "uno");
    expect_value(b, "b/1", "");
    expect_value(b, "zzz", NULL);

    ck_assert_int_eq(ballot_get_wait(b, "a/1", 3, BALLOT_LOCAL, &r), 0);
    ck_assert_uint_eq(r->ops[0].kvs[0].version, 2);
    ck_assert_uint_eq(r->ops[0].kvs[0].create_revision, rev1);
    ck_assert_uint_gt(r->ops[0].kvs[0].mod_revision, rev1);
    ballot_result_free(r);

    /* Prefix "a/": two keys, in order; reversed with a limit of one. */
    ck_assert_int_eq(
        ballot_range_wait(b, "a/", 2, NULL, 0, 0, BALLOT_RANGE_PREFIX,
                          BALLOT_LINEARIZABLE, &r),
        0);
    ck_assert_uint_eq(r->ops[0].n_kvs, 2);
    ck_assert(memcmp(r->ops[0].kvs[0].key, "a/1", 3) == 0);
    ck_assert(memcmp(r->ops[0].kvs[1].key, "a/2", 3) == 0);
    ballot_result_free(r);
    ck_assert_int_eq(
        ballot_range_wait(b, "a/", 2, NULL, 0, 1,
                          BALLOT_RANGE_PREFIX | BALLOT_RANGE_REVERSE,
                          BALLOT_LOCAL, &r),
        0);
    ck_assert_uint_eq(r->ops[0].n_kvs, 1);
    ck_assert(r->ops[0].more);
    ck_assert(memcmp(r->ops[0].kvs[0].key, "a/2", 3) == 0);
    ballot_result_free(r);
    /* [a/2, b/2): a/2 and b/1. */
    ck_assert_int_eq(
        ballot_range_wait(b, "a/2", 3, "b/2", 3, 0, 0, BALLOT_LINEARIZABLE, &r),
        0);
    ck_assert_uint_eq(r->ops[0].n_kvs, 2);
    ck_assert_uint_eq(r->ops[0].count, 2);
    ballot_result_free(r);

    /* A transaction: compare a/1 == "uno", then put a/3 and get a/2. */
    struct ballot_cmp cmp = {
        BALLOT_CMP_VALUE, BALLOT_CMP_EQ, "a/1", 3, "uno", 3, 0};
    struct ballot_op then_ops[] = {
        {BALLOT_OP_PUT, "a/3", 3, "three", 5},
        {BALLOT_OP_GET, "a/2", 3, NULL, 0},
    };
    struct ballot_op else_ops[] = {{BALLOT_OP_DELETE, "a/2", 3, NULL, 0}};
    struct ballot_txn txn = {&cmp, 1, then_ops, 2, else_ops, 1};
    ck_assert_int_eq(ballot_txn_wait(b, &txn, NULL, &r), 0);
    ck_assert(r->succeeded);
    ck_assert_uint_eq(r->n_ops, 2);
    ck_assert_int_eq(r->ops[1].type, BALLOT_OP_GET);
    ck_assert_uint_eq(r->ops[1].n_kvs, 1);
    ck_assert(memcmp(r->ops[1].kvs[0].value, "two", 3) == 0);
    ballot_result_free(r);
    /* The same comparison fails once a/1 changes: the else branch runs. */
    ck_assert_int_eq(ballot_put_wait(b, "a/1", 3, "eins", 4, NULL, NULL), 0);
    ck_assert_int_eq(ballot_txn_wait(b, &txn, NULL, &r), 0);
    ck_assert(!r->succeeded);
    ck_assert_uint_eq(r->n_ops, 1);
    ck_assert_uint_eq(r->ops[0].count, 1);
    ballot_result_free(r);
    expect_value(b, "a/2", NULL);
    expect_value(b, "a/3", "three");

    ck_assert_int_eq(ballot_delete_wait(b, "a/3", 3, NULL, &r), 0);
    ck_assert_uint_eq(r->ops[0].count, 1);
    ballot_result_free(r);
    ck_assert_int_eq(ballot_delete_wait(b, "a/3", 3, NULL, &r), 0);
    ck_assert_uint_eq(r->ops[0].count, 0);
    ballot_result_free(r);
    ck_assert_int_eq(ballot_close(b), 0);
    cl_close_all(&cl);
}
END_TEST

/* A write retried with its request id is applied once: the retry is
 * answered with the first application's revision and result, even after
 * the key changed; an older seq is refused as stale. */
START_TEST(test_embed_request_id_retry_is_applied_once)
{
    struct ballot *b = open_single();
    struct ballot_result *r;
    struct ballot_reqid rid = {42, 1};
    struct ballot_cmp cmp = {
        BALLOT_CMP_VERSION, BALLOT_CMP_EQ, "n", 1, NULL, 0, 0};
    struct ballot_op put = {BALLOT_OP_PUT, "n", 1, "1", 1};
    struct ballot_op get = {BALLOT_OP_GET, "n", 1, NULL, 0};
    struct ballot_txn create = {&cmp, 1, &put, 1, &get, 1};

    ck_assert_int_eq(ballot_txn_wait(b, &create, &rid, &r), 0);
    ck_assert(r->succeeded && !r->duplicate);
    uint64_t rev = r->revision;
    ballot_result_free(r);
    ck_assert_int_eq(ballot_put_wait(b, "n", 1, "changed", 7, NULL, NULL), 0);
    /* The retry: the comparison would fail now, but it is not run again. */
    ck_assert_int_eq(ballot_txn_wait(b, &create, &rid, &r), 0);
    ck_assert(r->duplicate);
    ck_assert(r->succeeded);
    ck_assert_uint_eq(r->revision, rev);
    ballot_result_free(r);
    expect_value(b, "n", "changed");

    struct ballot_reqid next = {42, 2}, old = {42, 1};
    ck_assert_int_eq(ballot_put_wait(b, "m", 1, "x", 1, &next, NULL), 0);
    ck_assert_int_eq(ballot_put_wait(b, "m", 1, "y", 1, &old, NULL),
                     BALLOT_ESTALE);
    expect_value(b, "m", "x");
    ck_assert_int_eq(ballot_close(b), 0);
    cl_close_all(&cl);
}
END_TEST

/* Sequence IDs: blocks follow one another from 1, a request id's retry
 * gets its first block, bad arguments are refused before anything is
 * proposed, and the async form reports the block in its result. */
static void on_sequence(void *arg, const struct ballot_result *res)
{
    struct ballot_result *out = arg;
    if (res->status == 0) {
        ck_assert_uint_eq(res->n_ops, 1);
        ck_assert_int_eq(res->ops[0].type, BALLOT_OP_SEQUENCE);
        ck_assert_uint_eq(res->ops[0].count, 2);
        out->revision = res->ops[0].kvs[0].create_revision; /* first ID */
    }
    /* Published last: the test thread polls it. */
    __atomic_store_n(&out->status, res->status, __ATOMIC_RELEASE);
}

START_TEST(test_embed_sequence_ids_are_handed_out_once)
{
    struct ballot *b = open_single();
    uint64_t first = 0, last = 0;
    ck_assert_int_eq(ballot_sequence_wait(b, "ids", 3, 5, NULL, &first, &last),
                     0);
    ck_assert_uint_eq(first, 1);
    ck_assert_uint_eq(last, 5);
    struct ballot_reqid rid = {9, 1};
    ck_assert_int_eq(ballot_sequence_wait(b, "ids", 3, 1, &rid, &first, &last),
                     0);
    ck_assert_uint_eq(first, 6);
    ck_assert_int_eq(ballot_sequence_wait(b, "ids", 3, 1, &rid, &first, &last),
                     0);
    ck_assert_uint_eq(first, 6); /* the retry: the same ID, not 7 */
    ck_assert_uint_eq(last, 6);
    ck_assert_int_eq(ballot_sequence_wait(b, "ids", 3, 0, NULL, &first, &last),
                     BALLOT_EINVAL);
    ck_assert_int_eq(
        ballot_sequence_wait(b, "ids", 3, 1000001, NULL, &first, &last),
        BALLOT_EINVAL);
    ck_assert_int_eq(ballot_sequence_wait(b, "", 0, 1, NULL, &first, &last),
                     BALLOT_EINVAL);
    /* The callback form, on the node's thread. */
    struct ballot_result got;
    memset(&got, 0, sizeof(got));
    got.status = 1;
    ck_assert_int_eq(ballot_sequence(b, "ids", 3, 2, NULL, on_sequence, &got),
                     0);
    for (int i = 0;
         i < 500 && __atomic_load_n(&got.status, __ATOMIC_ACQUIRE) == 1; i++) {
        usleep(10000);
    }
    ck_assert_int_eq(got.status, 0);
    ck_assert_uint_eq(got.revision, 7);
    /* Sequences are not keys. */
    expect_value(b, "ids", NULL);
    ck_assert_int_eq(ballot_close(b), 0);
    cl_close_all(&cl);
}
END_TEST

/* ---- a node on the program's loop -------------------------------------- */

struct loop_run
{
    uv_loop_t loop;
    struct ballot *b;
    uv_timer_t timer;
    int step;
    int put_status, get_status, stopped, after_stop;
    char got[16];
    uint64_t leader_waits;
};

static void on_stop(void *arg)
{
    struct loop_run *lr = arg;
    lr->stopped++;
}

static void on_get(void *arg, const struct ballot_result *res)
{
    struct loop_run *lr = arg;
    lr->get_status = res->status;
    if (res->status == 0 && res->ops[0].n_kvs == 1) {
        snprintf(lr->got, sizeof(lr->got), "%.*s",
                 (int)res->ops[0].kvs[0].value_len,
                 (const char *)res->ops[0].kvs[0].value);
    }
    ck_assert_int_eq(ballot_stop(lr->b, on_stop, lr), 0);
    /* Stopping: everything is refused at once, and twice is an error. */
    lr->after_stop = ballot_put(lr->b, "k", 1, "v", 1, NULL, on_get, lr);
    ck_assert_int_eq(ballot_stop(lr->b, on_stop, lr), BALLOT_ECLOSED);
    uv_close((uv_handle_t *)&lr->timer, NULL);
}

static void on_put(void *arg, const struct ballot_result *res)
{
    struct loop_run *lr = arg;
    lr->put_status = res->status;
    ck_assert_int_eq(ballot_get(lr->b, "k", 1, BALLOT_LINEARIZABLE, on_get, lr),
                     0);
}

static void on_poll(uv_timer_t *t)
{
    struct loop_run *lr = t->data;
    struct ballot_status st;
    ck_assert_int_eq(ballot_status(lr->b, &st), 0);
    if (st.role != BALLOT_LEADER) {
        ck_assert_uint_lt(++lr->leader_waits, 1000);
        return;
    }
    uv_timer_stop(t);
    ck_assert_int_eq(ballot_put(lr->b, "k", 1, "loop", 4, NULL, on_put, lr), 0);
}

/* The node's handles live on the program's loop, callbacks run there, and
 * once stopped the node leaves no handle behind (uv_loop_close()
 * succeeds), which also means no leak under LeakSanitizer. */
START_TEST(test_embed_on_program_loop_leaves_no_handle)
{
    struct loop_run lr;
    char err[512] = "";
    memset(&lr, 0, sizeof(lr));
    lr.put_status = lr.get_status = 1;
    cl_prepare_args(&cl, 1, NULL);
    struct ballot_config *cfg = config_for(&cl, 1);
    ck_assert_int_eq(uv_loop_init(&lr.loop), 0);
    int rv = ballot_start(&lr.loop, cfg, &lr.b, err, sizeof(err));
    ballot_config_destroy(cfg);
    ck_assert_msg(rv == 0, "ballot_start: %s", err);
    /* A node started on a loop has no thread to wait on. */
    ck_assert_int_eq(ballot_put_wait(lr.b, "k", 1, "v", 1, NULL, NULL),
                     BALLOT_EWRONGTHREAD);
    ck_assert_int_eq(ballot_close(lr.b), BALLOT_EINVAL);
    uv_timer_init(&lr.loop, &lr.timer);
    lr.timer.data = &lr;
    uv_timer_start(&lr.timer, on_poll, 10, 10);
    uv_run(&lr.loop, UV_RUN_DEFAULT);
    ck_assert_int_eq(lr.put_status, 0);
    ck_assert_int_eq(lr.get_status, 0);
    ck_assert_str_eq(lr.got, "loop");
    ck_assert_int_eq(lr.after_stop, BALLOT_ECLOSED);
    ck_assert_int_eq(lr.stopped, 1);
    ck_assert_int_eq(uv_loop_close(&lr.loop), 0);
    cl_close_all(&cl);
}
END_TEST

/* ---- watches ----------------------------------------------------------- */

/* What a watch delivered, kept by its callback (on the node's thread)
 * for the test's thread. */
struct seen
{
    uv_mutex_t mu;
    char lines[512][64]; /* "put KEY=VALUE@REV" or "del KEY@REV" */
    size_t n;
    uint64_t progress; /* revision of the last progress notification */
    int ended;         /* status that ended it, 0 while open */
    uint64_t ended_rev;
    struct ballot *cancel_in_cb; /* cancel from inside at the 3rd event */
    struct ballot_watch *self;
    bool cancelled;   /* ... done */
    int after_cancel; /* calls that came after it: must stay 0 */
};

static void on_watch(void *arg,
                     int status,
                     const struct ballot_event *ev,
                     size_t n,
                     uint64_t revision)
{
    struct seen *s = arg;
    uv_mutex_lock(&s->mu);
    s->after_cancel += s->cancelled;
    if (status != 0) {
        s->ended = status;
        s->ended_rev = revision;
    } else if (n == 0) {
        s->progress = revision;
    }
    for (size_t i = 0; i < n && s->n < 512; i++) {
        if (ev[i].type == BALLOT_EVENT_PUT) {
            snprintf(s->lines[s->n++], 64, "put %.*s=%.*s@%llu",
                     (int)ev[i].kv.key_len, (const char *)ev[i].kv.key,
                     (int)ev[i].kv.value_len, (const char *)ev[i].kv.value,
                     (unsigned long long)ev[i].kv.mod_revision);
        } else {
            snprintf(s->lines[s->n++], 64, "del %.*s@%llu",
                     (int)ev[i].kv.key_len, (const char *)ev[i].kv.key,
                     (unsigned long long)ev[i].kv.mod_revision);
        }
    }
    bool cancel = s->cancel_in_cb != NULL && s->n >= 3;
    uv_mutex_unlock(&s->mu);
    if (cancel) {
        ck_assert_int_eq(ballot_watch_cancel(s->cancel_in_cb, s->self), 0);
        s->cancel_in_cb = NULL;
        s->cancelled = true;
    }
}

/* Waits (bounded) until @s has @n lines; returns how many it has. */
static size_t wait_seen(struct seen *s, size_t n)
{
    size_t have = 0;
    for (int i = 0; i < 500; i++) {
        uv_mutex_lock(&s->mu);
        have = s->n;
        uv_mutex_unlock(&s->mu);
        if (have >= n) {
            break;
        }
        usleep(10000);
    }
    return have;
}

static uint64_t put_rev(struct ballot *b, const char *k, const char *v)
{
    struct ballot_result *r;
    ck_assert_int_eq(ballot_put_wait(b, k, strlen(k), v, strlen(v), NULL, &r),
                     0);
    uint64_t rev = r->revision;
    ballot_result_free(r);
    return rev;
}

/* ---- misuse ------------------------------------------------------------ */

struct from_callback
{
    struct ballot *b;
    int wait_rc, close_rc;
    uv_sem_t done;
};

static void try_blocking(void *arg, const struct ballot_result *res)
{
    struct from_callback *fc = arg;
    (void)res;
    fc->wait_rc = ballot_put_wait(fc->b, "x", 1, "y", 1, NULL, NULL);
    fc->close_rc = ballot_close(fc->b);
    uv_sem_post(&fc->done);
}

struct other_thread
{
    struct ballot *b;
    int rc;
};

static void call_from_other_thread(void *arg)
{
    struct other_thread *ot = arg;
    struct ballot_status st;
    ot->rc = ballot_status(ot->b, &st);
}

static void never(void *arg, const struct ballot_result *res)
{
    (void)arg;
    (void)res;
    ck_abort_msg("a refused request's callback ran");
}

static void on_watch_never(void *arg,
                           int status,
                           const struct ballot_event *ev,
                           size_t n,
                           uint64_t revision)
{
    (void)arg;
    (void)status;
    (void)ev;
    (void)n;
    (void)revision;
    ck_abort_msg("a refused watch's callback ran");
}

/* Bad arguments, bad settings, blocking calls from the node's own thread,
 * calls off a loop's thread and a data directory of another cluster or
 * member each get their own clear error, and do nothing else. */
START_TEST(test_embed_misuse_gets_clear_errors)
{
    struct ballot_config *cfg;
    struct ballot *b = NULL;
    char err[512] = "";
    char big[BALLOT_KEY_MAX + 2];

    ck_assert_int_eq(ballot_config_create(NULL), BALLOT_EINVAL);
    ck_assert_int_eq(ballot_config_create(&cfg), 0);
    ck_assert_int_eq(ballot_config_set(cfg, "no_such_setting", "1"),
                     BALLOT_EINVAL);
    ck_assert_ptr_nonnull(strstr(ballot_config_errmsg(cfg), "no_such_setting"));
    ck_assert_ptr_nonnull(strstr(ballot_config_errmsg(cfg), "unknown"));
    ck_assert_int_eq(ballot_config_set(cfg, "tick_ms", "0"), BALLOT_EINVAL);
    ck_assert_ptr_nonnull(strstr(ballot_config_errmsg(cfg), "invalid"));
    ck_assert_int_eq(ballot_config_set(cfg, "member", "nonsense"),
                     BALLOT_EINVAL);
    ck_assert_int_eq(ballot_config_set(cfg, NULL, "1"), BALLOT_EINVAL);
    ck_assert_int_eq(ballot_config_load(cfg, "/nonexistent/ballot.conf"),
                     BALLOT_EINVAL);
    /* No id and no members: refused before anything is opened. */
    ck_assert_int_eq(ballot_open(cfg, &b, err, sizeof(err)), BALLOT_EINVAL);
    ck_assert_ptr_nonnull(strstr(err, "id"));
    ck_assert_ptr_null(b);
    ck_assert_int_eq(ballot_open(NULL, &b, err, sizeof(err)), BALLOT_EINVAL);
    ballot_config_destroy(cfg);
    ck_assert_str_eq(ballot_strerror(BALLOT_EUNKNOWN),
                     "outcome unknown: the write may or may not have been "
                     "applied");
    ck_assert_str_eq(ballot_strerror(12345), "unknown error");
    ck_assert(ballot_outcome_unknown(BALLOT_EUNKNOWN));
    ck_assert(!ballot_outcome_unknown(BALLOT_ENOTLEADER));

    b = open_single();
    memset(big, 'k', sizeof(big));
    ck_assert_int_eq(ballot_put(NULL, "k", 1, "v", 1, NULL, never, NULL),
                     BALLOT_EINVAL);
    ck_assert_int_eq(ballot_put(b, "k", 1, "v", 1, NULL, NULL, NULL),
                     BALLOT_EINVAL);
    ck_assert_int_eq(ballot_put(b, NULL, 0, "v", 1, NULL, never, NULL),
                     BALLOT_EINVAL);
    ck_assert_int_eq(ballot_put(b, big, sizeof(big), "v", 1, NULL, never, NULL),
                     BALLOT_ETOOBIG);
    struct ballot_reqid zero = {0, 1};
    ck_assert_int_eq(ballot_put(b, "k", 1, "v", 1, &zero, never, NULL),
                     BALLOT_EINVAL);
    ck_assert_int_eq(ballot_get(b, "k", 1, 7, never, NULL), BALLOT_EINVAL);
    ck_assert_int_eq(
        ballot_range(b, "", 0, NULL, 0, 0, 1 << 9, BALLOT_LOCAL, never, NULL),
        BALLOT_EINVAL);
    ck_assert_int_eq(ballot_txn(b, NULL, NULL, never, NULL), BALLOT_EINVAL);
    ck_assert_int_eq(ballot_member_add(b, 0, "127.0.0.1:1", true, never, NULL),
                     BALLOT_EINVAL);
    ck_assert_int_eq(ballot_member_add_wait(b, 9, "not an address", true),
                     BALLOT_EINVAL);
    ck_assert_int_eq(ballot_transfer_leader(b, 0), BALLOT_EINVAL);
    struct ballot_watch *w = NULL;
    ck_assert_int_eq(ballot_watch(b, "k", 1, NULL, 0, 0, 0, NULL, NULL, &w),
                     BALLOT_EINVAL);
    ck_assert_int_eq(ballot_watch(b, "k", 1, "z", 1, BALLOT_RANGE_PREFIX, 0,
                                  on_watch_never, NULL, &w),
                     BALLOT_EINVAL);
    ck_assert_int_eq(
        ballot_watch(b, NULL, 0, NULL, 0, 0, 0, on_watch_never, NULL, &w),
        BALLOT_EINVAL);
    ck_assert_int_eq(ballot_watch_cancel(b, NULL), BALLOT_EINVAL);
    ck_assert_int_eq(ballot_status(b, NULL), BALLOT_EINVAL);
    /* Removing the only voter is refused by the node. */
    ck_assert_int_eq(ballot_member_remove_wait(b, 1), BALLOT_EINVAL);

    /* From a callback (the node's thread): blocking calls and close would
     * wait on themselves, so they are refused. */
    struct from_callback fc;
    memset(&fc, 0, sizeof(fc));
    fc.b = b;
    ck_assert_int_eq(uv_sem_init(&fc.done, 0), 0);
    ck_assert_int_eq(ballot_get(b, "k", 1, BALLOT_LOCAL, try_blocking, &fc), 0);
    uv_sem_wait(&fc.done);
    uv_sem_destroy(&fc.done);
    ck_assert_int_eq(fc.wait_rc, BALLOT_EWRONGTHREAD);
    ck_assert_int_eq(fc.close_rc, BALLOT_EWRONGTHREAD);
    ck_assert_int_eq(ballot_stop(b, NULL, NULL), BALLOT_EINVAL);
    ck_assert_int_eq(ballot_close(b), 0);

    /* The data directory now belongs to member 1 of this cluster: opened
     * as another cluster, or as another member, it is refused, and the
     * message says whose it is. */
    cfg = config_for(&cl, 1);
    ck_assert_int_eq(ballot_config_set(cfg, "cluster_id", "4242"), 0);
    b = NULL;
    ck_assert_int_eq(ballot_open(cfg, &b, err, sizeof(err)), BALLOT_EOPEN);
    ck_assert_msg(strstr(err, "belongs to member 1 of cluster"), "%s", err);
    ck_assert_ptr_null(b);
    ballot_config_destroy(cfg);
    cfg = config_for(&cl, 1);
    char other[64];
    snprintf(other, sizeof(other), "2=127.0.0.1:%d:%d",
             cl.nodes[0].client_port + 10, cl.nodes[0].peer_port + 10);
    ck_assert_int_eq(ballot_config_set(cfg, "member", other), 0);
    ck_assert_int_eq(ballot_config_set(cfg, "id", "2"), 0);
    ck_assert_int_eq(ballot_open(cfg, &b, err, sizeof(err)), BALLOT_EOPEN);
    ck_assert_msg(strstr(err, "not to member 2"), "%s", err);
    ballot_config_destroy(cfg);
    cl_close_all(&cl);

    /* A node on a loop refuses calls from any other thread. */
    uv_loop_t loop;
    uv_thread_t th;
    struct other_thread ot = {NULL, 1};
    cl_prepare_args(&cl, 1, NULL);
    cfg = config_for(&cl, 1);
    ck_assert_int_eq(uv_loop_init(&loop), 0);
    ck_assert_int_eq(ballot_start(&loop, cfg, &ot.b, err, sizeof(err)), 0);
    ballot_config_destroy(cfg);
    ck_assert_int_eq(uv_thread_create(&th, call_from_other_thread, &ot), 0);
    uv_thread_join(&th);
    ck_assert_int_eq(ot.rc, BALLOT_EWRONGTHREAD);
    ck_assert_int_eq(ballot_stop(ot.b, NULL, NULL), 0);
    uv_run(&loop, UV_RUN_DEFAULT);
    ck_assert_int_eq(uv_loop_close(&loop), 0);
    cl_close_all(&cl);
}
END_TEST

/* ---- one cluster: an embedded node and two ballotd --------------------- */

/* Node 1 runs in this process, nodes 2 and 3 are ballotd processes: they
 * form one cluster, writes made through either kind are read back from
 * both, and the embedded node serves reads as a follower when the
 * leadership moves to a ballotd node. */
START_TEST(test_embed_node_and_two_ballotd_form_one_cluster)
{
    struct ballot *b = NULL;
    struct ballot_result *r;
    struct cl_reply rep;
    char err[512] = "";
    cl_prepare_args(&cl, 3, NULL);
    struct ballot_config *cfg = config_for(&cl, 1);
    ck_assert_int_eq(ballot_open(cfg, &b, err, sizeof(err)), 0);
    ballot_config_destroy(cfg);
    cl_start_node(&cl, 2);
    cl_start_node(&cl, 3);
    uint64_t leader = wait_leader(b);
    struct ballot_status st;
    ck_assert_int_eq(ballot_status(b, &st), 0);
    ck_assert_uint_eq(st.n_members, 3);
    /* A watch on the embedded node sees both writes below, across the
     * change of leader. */
    static struct seen ws;
    struct ballot_watch *w;
    memset(&ws, 0, sizeof(ws));
    uv_mutex_init(&ws.mu);
    ck_assert_int_eq(
        ballot_watch(b, "shared", 6, NULL, 0, 0, 0, on_watch, &ws, &w), 0);

    /* Move the leadership to the embedded node (if elsewhere) by asking
     * ballotd, then write through the embedded leader. */
    if (leader != 1) {
        const char *argv[] = {"BTRANSFER", "1"};
        ck_assert_int_eq(cl_cmd(&cl, (unsigned)leader, 5000, &rep, 2, argv), 0);
        cl_reply_free(&rep);
        for (int i = 0; i < 500 && leader != 1; i++) {
            usleep(10000);
            ck_assert_int_eq(ballot_status(b, &st), 0);
            leader = st.role == BALLOT_LEADER ? 1 : 0;
        }
    }
    ck_assert_int_eq(ballot_status(b, &st), 0);
    ck_assert_int_eq(st.role, BALLOT_LEADER);
    ck_assert_int_eq(
        ballot_put_wait(b, "shared", 6, "from-embedded", 13, NULL, NULL), 0);
    for (unsigned id = 2; id <= 3; id++) {
        const char *get[] = {"GET", "shared"};
        /* Just after the transfer a follower may not know the new leader
         * yet: it says TRYAGAIN, and a client does. */
        for (int tries = 0;; tries++) {
            ck_assert_int_eq(cl_cmd(&cl, id, 5000, &rep, 2, get), 0);
            if (rep.type != CL_ERR || strncmp(rep.str, "TRYAGAIN", 8) != 0 ||
                tries == 50) {
                break;
            }
            cl_reply_free(&rep);
            usleep(100000);
        }
        ck_assert_msg(rep.type == CL_BULK, "node %u: %s", id, rep.str);
        ck_assert_str_eq(rep.str, "from-embedded");
        cl_reply_free(&rep);
    }

    /* Leadership to ballotd node 2; a write there is read back here. */
    ck_assert_int_eq(ballot_transfer_leader(b, 2), 0);
    for (int i = 0; i < 500; i++) {
        ck_assert_int_eq(ballot_status(b, &st), 0);
        if (st.leader == 2) {
            break;
        }
        usleep(10000);
    }
    ck_assert_uint_eq(st.leader, 2);
    ck_assert_int_eq(ballot_put_wait(b, "x", 1, "y", 1, NULL, NULL),
                     BALLOT_ENOTLEADER);
    const char *set[] = {"SET", "shared", "from-ballotd"};
    ck_assert_int_eq(cl_cmd(&cl, 2, 5000, &rep, 3, set), 0);
    ck_assert_int_eq(rep.type, CL_STATUS);
    cl_reply_free(&rep);
    expect_value(b, "shared", "from-ballotd");
    ck_assert_int_eq(ballot_get_wait(b, "shared", 6, BALLOT_LOCAL, &r), 0);
    ck_assert_uint_eq(r->ops[0].kvs[0].version, 2);
    ballot_result_free(r);
    /* IDs minted by all three members without coordination: increasing
     * on each, each carrying its member's id, none shared. */
    uint64_t ids[3][50];
    ck_assert_int_eq(ballot_snowflake(b, ids[0], 50), 0);
    for (unsigned id = 2; id <= 3; id++) {
        const char *mint[] = {"BSNOWFLAKE", "50"};
        ck_assert_int_eq(cl_cmd(&cl, id, 5000, &rep, 2, mint), 0);
        ck_assert_int_eq(rep.type, CL_ARRAY);
        ck_assert_uint_eq(rep.n_elems, 50);
        for (size_t i = 0; i < 50; i++) {
            ids[id - 1][i] = (uint64_t)rep.elems[i].integer;
        }
        cl_reply_free(&rep);
    }
    for (unsigned m = 0; m < 3; m++) {
        for (size_t i = 0; i < 50; i++) {
            ck_assert_uint_eq((ids[m][i] >> 12) & 1023, m + 1);
            ck_assert(i == 0 || ids[m][i] > ids[m][i - 1]);
        }
    }
    ck_assert_int_eq(ballot_snowflake(b, ids[0], 0), BALLOT_EINVAL);
    ck_assert_uint_eq(wait_seen(&ws, 2), 2);
    ck_assert_ptr_nonnull(strstr(ws.lines[0], "put shared=from-embedded@"));
    ck_assert_ptr_nonnull(strstr(ws.lines[1], "put shared=from-ballotd@"));
    ck_assert_int_eq(ballot_watch_cancel(b, w), 0);
    ck_assert_int_eq(ballot_close(b), 0);
    cl_close_all(&cl);
}
END_TEST

/* Leases through the C API: a grant retried with its request id returns
 * the first id and grants nothing more; keys attach with
 * ballot_put_lease(); TTL, keep-alive and revoke (deleting the keys) give
 * their counts; an unrenewed lease ends by itself; bad input is refused. */
START_TEST(test_embed_lease_grant_keepalive_revoke_and_expiry)
{
    struct ballot *b = open_single();
    struct ballot_result *r = NULL;
    struct ballot_reqid rid = {77, 1};
    int rv = BALLOT_ETRYAGAIN;
    /* A leader that has just been elected may not know the clock yet. */
    for (int i = 0; i < 500 && rv == BALLOT_ETRYAGAIN; i++) {
        rv = ballot_lease_grant_wait(b, 60000, 0, &rid, &r);
        if (rv == BALLOT_ETRYAGAIN) {
            usleep(10000);
        }
    }
    ck_assert_int_eq(rv, 0);
    uint64_t id = r->ops[0].count;
    ck_assert_uint_ne(id, 0);
    ck_assert(!r->duplicate);
    ballot_result_free(r);
    ck_assert_int_eq(ballot_lease_grant_wait(b, 60000, 0, &rid, &r), 0);
    ck_assert_uint_eq(r->ops[0].count, id);
    ck_assert(r->duplicate);
    ballot_result_free(r);

    ck_assert_int_eq(ballot_put_lease_wait(b, "lk", 2, "v", 1, id, NULL, NULL),
                     0);
    ck_assert_int_eq(
        ballot_put_lease_wait(b, "lx", 2, "v", 1, 123456789, NULL, NULL),
        BALLOT_ENOLEASE);
    expect_value(b, "lx", NULL);
    ck_assert_int_eq(ballot_lease_ttl_wait(b, id, &r), 0);
    ck_assert_uint_eq(r->n_ops, 2);
    ck_assert_uint_le(r->ops[0].count, 60000);
    ck_assert_uint_gt(r->ops[0].count, 50000);
    ck_assert_uint_eq(r->ops[1].count, 60000);
    ck_assert_uint_eq(r->ops[0].n_kvs, 1);
    ck_assert(memcmp(r->ops[0].kvs[0].key, "lk", 2) == 0);
    ballot_result_free(r);
    ck_assert_int_eq(ballot_lease_keepalive_wait(b, id, &r), 0);
    ck_assert_uint_gt(r->ops[0].count, 50000);
    ballot_result_free(r);
    ck_assert_int_eq(ballot_lease_revoke_wait(b, id, NULL, &r), 0);
    ck_assert_uint_eq(r->ops[0].count, 1);
    ballot_result_free(r);
    expect_value(b, "lk", NULL);
    ck_assert_int_eq(ballot_lease_keepalive_wait(b, id, NULL), BALLOT_ENOLEASE);
    ck_assert_int_eq(ballot_lease_ttl_wait(b, id, NULL), BALLOT_ENOLEASE);
    ck_assert_int_eq(ballot_lease_revoke_wait(b, id, NULL, NULL),
                     BALLOT_ENOLEASE);

    /* Bad input. */
    ck_assert_int_eq(ballot_lease_grant_wait(b, 0, 0, NULL, NULL),
                     BALLOT_EINVAL);
    ck_assert_int_eq(
        ballot_lease_grant_wait(b, BALLOT_LEASE_TTL_MAX_MS + 1, 0, NULL, NULL),
        BALLOT_EINVAL);
    ck_assert_int_eq(ballot_lease_keepalive_wait(b, 0, NULL), BALLOT_EINVAL);
    ck_assert_int_eq(ballot_lease_grant_wait(b, 1000, 5, NULL, NULL), 0);
    ck_assert_int_eq(ballot_lease_grant_wait(b, 1000, 5, NULL, NULL),
                     BALLOT_ELEASEEXISTS);

    /* Lease 5 (1 s) is not renewed: its key goes by itself. */
    ck_assert_int_eq(
        ballot_put_lease_wait(b, "short", 5, "v", 1, 5, NULL, NULL), 0);
    uint64_t start = cl_now_ms();
    for (;;) {
        ck_assert_int_eq(
            ballot_get_wait(b, "short", 5, BALLOT_LINEARIZABLE, &r), 0);
        bool gone = r->ops[0].n_kvs == 0;
        ballot_result_free(r);
        if (gone) {
            break;
        }
        ck_assert_msg(cl_now_ms() - start < 10000, "lease 5 never ended");
        usleep(20000);
    }
    ck_assert_int_eq(ballot_close(b), 0);
    cl_close_all(&cl);
}
END_TEST

/* Grants lease @id (@ttl_ms), retrying while a new leader does not know
 * the lease clock yet. */
static void grant_lease(struct ballot *b, uint64_t id, uint64_t ttl_ms)
{
    int rv = BALLOT_ETRYAGAIN;
    for (int i = 0; i < 500 && rv == BALLOT_ETRYAGAIN; i++) {
        rv = ballot_lease_grant_wait(b, ttl_ms, id, NULL, NULL);
        if (rv == BALLOT_ETRYAGAIN) {
            usleep(10000);
        }
    }
    ck_assert_int_eq(rv, 0);
}

/* What an asynchronous acquire reported (set on the node's thread). */
struct acquired
{
    uv_mutex_t mu;
    bool done;
    int status;
    uint64_t token;
};

static void on_acquired(void *arg, const struct ballot_result *res)
{
    struct acquired *a = arg;
    uv_mutex_lock(&a->mu);
    a->done = true;
    a->status = res->status;
    a->token = res->status == 0 ? res->ops[0].count : 0;
    uv_mutex_unlock(&a->mu);
}

static bool acquired_done(struct acquired *a)
{
    uv_mutex_lock(&a->mu);
    bool done = a->done;
    uv_mutex_unlock(&a->mu);
    return done;
}

/* Locks through the C API: the first claim holds with its token, a try
 * finds it held, a second claim waits and is served on release with a
 * larger token; fenced puts apply only under the current token; a timed
 * out claim is withdrawn; the lease's end frees the lock; leases list in
 * pages; bad input is refused. */
START_TEST(test_embed_lock_tokens_fences_waits_and_lease_list)
{
    struct ballot *b = open_single();
    struct ballot_result *r = NULL;
    grant_lease(b, 11, 60000);
    grant_lease(b, 12, 60000);

    ck_assert_int_eq(ballot_lock_acquire_wait(b, "L", 1, 11, 0, 0, NULL, &r),
                     0);
    uint64_t t1 = r->ops[0].count;
    ck_assert_uint_gt(t1, 0);
    ballot_result_free(r);
    ck_assert_int_eq(
        ballot_lock_acquire_wait(b, "L", 1, 12, 0, BALLOT_LOCK_TRY, NULL, NULL),
        BALLOT_ELOCKED);
    struct acquired a;
    memset(&a, 0, sizeof(a));
    uv_mutex_init(&a.mu);
    ck_assert_int_eq(
        ballot_lock_acquire(b, "L", 1, 12, 0, 0, NULL, on_acquired, &a), 0);
    ck_assert_int_eq(
        ballot_put_fenced_wait(b, "k", 1, "a", 1, "L", 1, t1, NULL, NULL), 0);
    ck_assert_int_eq(ballot_put_fenced_wait(b, "k", 1, "b", 1, "L", 1,
                                            t1 + 1000, NULL, NULL),
                     BALLOT_EFENCED);
    expect_value(b, "k", "a");
    uint64_t end = cl_now_ms() + 10000;
    for (;;) { /* the second claim is in once it counts */
        ck_assert_int_eq(
            ballot_lock_owner_wait(b, "L", 1, BALLOT_LINEARIZABLE, &r), 0);
        ck_assert_uint_eq(r->ops[0].n_kvs, 1);
        ck_assert_uint_eq(r->ops[0].kvs[0].create_revision, t1);
        uint64_t n = r->ops[0].count;
        ballot_result_free(r);
        if (n == 2) {
            break;
        }
        ck_assert_msg(cl_now_ms() < end, "the second claim never came");
        usleep(10000);
    }
    ck_assert(!acquired_done(&a));

    ck_assert_int_eq(ballot_lock_release_wait(b, "L", 1, t1, NULL, &r), 0);
    ck_assert_uint_eq(r->ops[0].count, 1);
    ballot_result_free(r);
    while (!acquired_done(&a)) {
        ck_assert_msg(cl_now_ms() < end, "the waiter was never served");
        usleep(10000);
    }
    ck_assert_int_eq(a.status, 0);
    ck_assert_uint_gt(a.token, t1);
    ck_assert_int_eq(
        ballot_put_fenced_wait(b, "k", 1, "c", 1, "L", 1, t1, NULL, NULL),
        BALLOT_EFENCED);
    ck_assert_int_eq(
        ballot_put_fenced_wait(b, "k", 1, "d", 1, "L", 1, a.token, NULL, NULL),
        0);
    expect_value(b, "k", "d");

    /* A claim that times out is withdrawn. */
    uint64_t start = cl_now_ms();
    ck_assert_int_eq(
        ballot_lock_acquire_wait(b, "L", 1, 11, 200, 0, NULL, NULL),
        BALLOT_ETIMEDOUT);
    ck_assert_uint_ge(cl_now_ms() - start, 200);
    ck_assert_int_eq(ballot_lock_owner_wait(b, "L", 1, BALLOT_LINEARIZABLE, &r),
                     0);
    ck_assert_uint_eq(r->ops[0].count, 1);
    ballot_result_free(r);

    /* Leases in pages. */
    ck_assert_int_eq(ballot_lease_list_wait(b, 0, 1, BALLOT_LOCAL, &r), 0);
    ck_assert_uint_eq(r->n_ops, 1);
    ck_assert_uint_eq(r->ops[0].count, 11);
    ck_assert(r->ops[0].more);
    ballot_result_free(r);
    ck_assert_int_eq(ballot_lease_list_wait(b, 11, 10, BALLOT_LOCAL, &r), 0);
    ck_assert_uint_eq(r->n_ops, 1);
    ck_assert_uint_eq(r->ops[0].count, 12);
    ck_assert(!r->ops[0].more);
    ballot_result_free(r);

    /* Bad input. */
    ck_assert_int_eq(ballot_lock_release_wait(b, "L", 1, t1, NULL, NULL),
                     BALLOT_ENOTHELD);
    ck_assert_int_eq(ballot_lock_acquire_wait(b, "L", 1, 99, 0, 0, NULL, NULL),
                     BALLOT_ENOLEASE);
    ck_assert_int_eq(ballot_lock_acquire_wait(b, "L", 0, 11, 0, 0, NULL, NULL),
                     BALLOT_EINVAL);
    ck_assert_int_eq(ballot_lock_acquire_wait(b, "L", 1, 0, 0, 0, NULL, NULL),
                     BALLOT_EINVAL);
    char name[BALLOT_LOCK_NAME_MAX + 1];
    memset(name, 'n', sizeof(name));
    ck_assert_int_eq(
        ballot_lock_acquire_wait(b, name, sizeof(name), 11, 0, 0, NULL, NULL),
        BALLOT_EINVAL);
    ck_assert_int_eq(ballot_lease_list_wait(b, 0, 0, BALLOT_LOCAL, NULL),
                     BALLOT_EINVAL);
    ck_assert_int_eq(
        ballot_put_fenced_wait(b, "k", 1, "e", 1, "L", 1, 0, NULL, NULL),
        BALLOT_EINVAL);

    /* The holder's lease ends: the lock is free. */
    ck_assert_int_eq(ballot_lease_revoke_wait(b, 12, NULL, NULL), 0);
    ck_assert_int_eq(ballot_lock_owner_wait(b, "L", 1, BALLOT_LINEARIZABLE, &r),
                     0);
    ck_assert_uint_eq(r->ops[0].n_kvs, 0);
    ballot_result_free(r);
    uv_mutex_destroy(&a.mu);
    ck_assert_int_eq(ballot_close(b), 0);
    cl_close_all(&cl);
}
END_TEST

/* Elections through the C API: a campaign leads with its value; a
 * proclaim under the leader's token publishes a new one, under a stale
 * token or another lease it is refused; a second candidate is elected on
 * resignation with a larger token; the leader's lease ending leaves no
 * leader. */
START_TEST(test_embed_election_campaign_proclaim_resign)
{
    struct ballot *b = open_single();
    struct ballot_result *r = NULL;
    grant_lease(b, 21, 60000);
    grant_lease(b, 22, 60000);
    ck_assert_int_eq(ballot_campaign_wait(b, "E", 1, 21, "a", 1, 0, NULL, &r),
                     0);
    uint64_t t1 = r->ops[0].count;
    ballot_result_free(r);
    ck_assert_int_eq(ballot_proclaim_wait(b, "E", 1, 21, t1, "a2", 2, NULL, &r),
                     0);
    ballot_result_free(r);
    ck_assert_int_eq(
        ballot_proclaim_wait(b, "E", 1, 22, t1, "x", 1, NULL, NULL),
        BALLOT_EFENCED); /* not the leader's lease: no new claim either */
    ck_assert_int_eq(
        ballot_proclaim_wait(b, "E", 1, 21, t1 + 100, "x", 1, NULL, NULL),
        BALLOT_EFENCED);
    ck_assert_int_eq(ballot_leader_wait(b, "E", 1, BALLOT_LINEARIZABLE, &r), 0);
    ck_assert_uint_eq(r->ops[0].n_kvs, 1);
    ck_assert_uint_eq(r->ops[0].kvs[0].create_revision, t1);
    ck_assert_uint_eq(r->ops[0].kvs[0].value_len, 2);
    ck_assert(memcmp(r->ops[0].kvs[0].value, "a2", 2) == 0);
    ck_assert_uint_eq(r->ops[0].count, 1); /* one candidate */
    ballot_result_free(r);

    struct acquired a;
    memset(&a, 0, sizeof(a));
    uv_mutex_init(&a.mu);
    ck_assert_int_eq(
        ballot_campaign(b, "E", 1, 22, "b", 1, 0, NULL, on_acquired, &a), 0);
    uint64_t end = cl_now_ms() + 10000;
    for (;;) {
        ck_assert_int_eq(ballot_leader_wait(b, "E", 1, BALLOT_LINEARIZABLE, &r),
                         0);
        uint64_t n = r->ops[0].count;
        ballot_result_free(r);
        if (n == 2) {
            break;
        }
        ck_assert_msg(cl_now_ms() < end, "the second candidate never came");
        usleep(10000);
    }
    ck_assert_int_eq(ballot_resign_wait(b, "E", 1, t1, NULL, &r), 0);
    ck_assert_uint_eq(r->ops[0].count, 1);
    ballot_result_free(r);
    while (!acquired_done(&a)) {
        ck_assert_msg(cl_now_ms() < end, "the second candidate never led");
        usleep(10000);
    }
    ck_assert_int_eq(a.status, 0);
    ck_assert_uint_gt(a.token, t1);
    ck_assert_int_eq(ballot_leader_wait(b, "E", 1, BALLOT_LINEARIZABLE, &r), 0);
    ck_assert(memcmp(r->ops[0].kvs[0].value, "b", 1) == 0);
    ballot_result_free(r);
    ck_assert_int_eq(ballot_resign_wait(b, "E", 1, t1, NULL, NULL),
                     BALLOT_ENOTHELD);
    ck_assert_int_eq(ballot_lease_revoke_wait(b, 22, NULL, NULL), 0);
    ck_assert_int_eq(ballot_leader_wait(b, "E", 1, BALLOT_LINEARIZABLE, &r), 0);
    ck_assert_uint_eq(r->ops[0].n_kvs, 0);
    ballot_result_free(r);
    uv_mutex_destroy(&a.mu);
    ck_assert_int_eq(ballot_close(b), 0);
    cl_close_all(&cl);
}
END_TEST

/* A prefix watch from now gets every put and delete under the prefix, in
 * revision order, each once, with the revision it happened at; changes
 * outside the prefix, and before the watch, are not delivered; a
 * transaction's changes share one revision. An idle watch gets progress
 * notifications carrying the current revision. */
START_TEST(test_embed_watch_streams_every_change_in_order)
{
    struct ballot *b = open_single();
    struct seen s;
    struct ballot_watch *w;
    char want[8][64];
    memset(&s, 0, sizeof(s));
    ck_assert_int_eq(uv_mutex_init(&s.mu), 0);
    put_rev(b, "w/before", "x");
    ck_assert_int_eq(ballot_watch(b, "w/", 2, NULL, 0, BALLOT_RANGE_PREFIX, 0,
                                  on_watch, &s, &w),
                     0);
    uint64_t r1 = put_rev(b, "w/a", "1");
    put_rev(b, "other", "ignored");
    uint64_t r2 = put_rev(b, "w/b", "2");
    uint64_t r3 = put_rev(b, "w/a", "3");
    struct ballot_result *r;
    ck_assert_int_eq(ballot_delete_wait(b, "w/b", 3, NULL, &r), 0);
    uint64_t r4 = r->revision;
    ballot_result_free(r);
    struct ballot_op ops[] = {{BALLOT_OP_PUT, "w/c", 3, "5", 1},
                              {BALLOT_OP_DELETE, "w/a", 3, NULL, 0}};
    struct ballot_txn txn = {NULL, 0, ops, 2, NULL, 0};
    ck_assert_int_eq(ballot_txn_wait(b, &txn, NULL, &r), 0);
    uint64_t r5 = r->revision;
    ballot_result_free(r);
    snprintf(want[0], 64, "put w/a=1@%llu", (unsigned long long)r1);
    snprintf(want[1], 64, "put w/b=2@%llu", (unsigned long long)r2);
    snprintf(want[2], 64, "put w/a=3@%llu", (unsigned long long)r3);
    snprintf(want[3], 64, "del w/b@%llu", (unsigned long long)r4);
    snprintf(want[4], 64, "put w/c=5@%llu", (unsigned long long)r5);
    snprintf(want[5], 64, "del w/a@%llu", (unsigned long long)r5);
    ck_assert_uint_eq(wait_seen(&s, 6), 6);
    usleep(100000); /* nothing more may come */
    uv_mutex_lock(&s.mu);
    ck_assert_uint_eq(s.n, 6);
    for (size_t i = 0; i < 6; i++) {
        ck_assert_str_eq(s.lines[i], want[i]);
    }
    uv_mutex_unlock(&s.mu);
    /* Idle: a progress notification at the current revision. */
    for (int i = 0; i < 300; i++) {
        uv_mutex_lock(&s.mu);
        uint64_t p = s.progress;
        uv_mutex_unlock(&s.mu);
        if (p == r5) {
            break;
        }
        usleep(10000);
    }
    ck_assert_uint_eq(s.progress, r5);
    ck_assert_int_eq(ballot_watch_cancel(b, w), 0);
    /* Cancelled: nothing more arrives. */
    put_rev(b, "w/after", "x");
    usleep(100000);
    ck_assert_uint_eq(s.n, 6);
    ck_assert_int_eq(s.ended, 0);
    ck_assert_int_eq(ballot_close(b), 0);
    uv_mutex_destroy(&s.mu);
    cl_close_all(&cl);
}
END_TEST

/* A watch from a past revision replays the history from exactly there
 * (the way a reconnecting watcher resumes from the last revision it saw
 * plus one: no gap, no repeat), then goes on live; a single-key watch
 * sees only its key; a watch from a future revision waits for it; a
 * watch cancelled inside its own callback is not called again; one left
 * open is ended by the close. */
START_TEST(test_embed_watch_resumes_from_a_past_revision)
{
    struct ballot *b = open_single();
    struct seen all, one, future, inside;
    struct ballot_watch *wa, *wo, *wf, *wi;
    uint64_t revs[20];
    memset(&all, 0, sizeof(all));
    memset(&one, 0, sizeof(one));
    memset(&future, 0, sizeof(future));
    memset(&inside, 0, sizeof(inside));
    uv_mutex_init(&all.mu);
    uv_mutex_init(&one.mu);
    uv_mutex_init(&future.mu);
    uv_mutex_init(&inside.mu);
    for (int i = 0; i < 20; i++) {
        char k[16], v[16];
        snprintf(k, sizeof(k), "r/%d", i % 4);
        snprintf(v, sizeof(v), "%d", i);
        revs[i] = put_rev(b, k, v);
    }
    /* From the 11th write on (revision revs[10]). */
    ck_assert_int_eq(ballot_watch(b, "r/", 2, NULL, 0, BALLOT_RANGE_PREFIX,
                                  revs[10], on_watch, &all, &wa),
                     0);
    ck_assert_int_eq(
        ballot_watch(b, "r/1", 3, NULL, 0, 0, revs[0], on_watch, &one, &wo), 0);
    ck_assert_int_eq(ballot_watch(b, "r/", 2, NULL, 0, BALLOT_RANGE_PREFIX,
                                  revs[19] + 3, on_watch, &future, &wf),
                     0);
    inside.cancel_in_cb = b;
    ck_assert_int_eq(ballot_watch(b, "r/", 2, NULL, 0, BALLOT_RANGE_PREFIX,
                                  revs[0], on_watch, &inside, &wi),
                     0);
    inside.self = wi;
    ck_assert_uint_eq(wait_seen(&all, 10), 10);
    for (int i = 10; i < 20; i++) {
        char want[64];
        snprintf(want, sizeof(want), "put r/%d=%d@%llu", i % 4, i,
                 (unsigned long long)revs[i]);
        ck_assert_str_eq(all.lines[i - 10], want);
    }
    ck_assert_uint_eq(wait_seen(&one, 5), 5); /* writes 1, 5, 9, 13, 17 */
    ck_assert_ptr_nonnull(strstr(one.lines[4], "put r/1=17@"));
    ck_assert_ptr_nonnull(strstr(one.lines[0], "put r/1=1@"));
    /* Live after the replay, and the future watch starts at its
     * revision. */
    put_rev(b, "r/0", "20");
    put_rev(b, "r/0", "21");
    uint64_t r22 = put_rev(b, "r/2", "22");
    ck_assert_uint_eq(wait_seen(&all, 13), 13);
    ck_assert_uint_eq(wait_seen(&future, 1), 1);
    char want[64];
    snprintf(want, sizeof(want), "put r/2=22@%llu", (unsigned long long)r22);
    ck_assert_str_eq(future.lines[0], want);
    usleep(100000);
    ck_assert_uint_eq(future.n, 1);
    ck_assert_uint_eq(one.n, 5);
    /* Cancelled inside its callback once it had 3 events: never called
     * again, through the writes above. */
    ck_assert_uint_ge(inside.n, 3);
    ck_assert(inside.cancelled);
    ck_assert_int_eq(inside.after_cancel, 0);
    ck_assert_int_eq(ballot_watch_cancel(b, wa), 0);
    ck_assert_int_eq(ballot_watch_cancel(b, wo), 0);
    /* wf is left open: ballot_close() ends and releases it. */
    (void)wf;
    ck_assert_int_eq(ballot_close(b), 0);
    ck_assert_int_eq(future.ended, BALLOT_ECLOSED);
    cl_close_all(&cl);
}
END_TEST

/* ---- a storage failure ------------------------------------------------ */

struct halted
{
    uv_mutex_t mu;
    int calls;
    char why[256];
};

static void on_halt(void *arg, const char *why)
{
    struct halted *h = arg;
    uv_mutex_lock(&h->mu);
    h->calls++;
    snprintf(h->why, sizeof(h->why), "%s", why);
    uv_mutex_unlock(&h->mu);
}

/* A full disk under an embedded node: the library does not end the
 * process; it calls the program's halt callback once, with the reason,
 * refuses every later request with BALLOT_ESTORAGE, reports halted in its
 * status, and still closes cleanly. The data directory is a small tmpfs of
 * the test's own (root only; unmounted by the test). */
START_TEST(test_embed_full_disk_calls_halt_callback_not_exit)
{
    struct ballot *b = NULL;
    struct halted h;
    char err[512] = "", cmd[700];
    static char value[BALLOT_VALUE_MAX];
    if (geteuid() != 0) {
        fprintf(stderr, "skipped: mounting a tmpfs needs root\n");
        return;
    }
    memset(&h, 0, sizeof(h));
    ck_assert_int_eq(uv_mutex_init(&h.mu), 0);
    cl_prepare_args(&cl, 1, NULL);
    const char *dir = cl.nodes[0].dir;
    ck_assert_int_eq(mkdir(dir, 0755), 0);
    /* Named after the runner (this test's parent), which unmounts what a
     * failed test left behind. */
    snprintf(cmd, sizeof(cmd), "mount -t tmpfs -o size=160m ballot-embed-%d %s",
             (int)getppid(), dir);
    ck_assert_int_eq(system(cmd), 0);
    struct ballot_config *cfg = config_for(&cl, 1);
    ballot_config_set_halt(cfg, on_halt, &h);
    int rv = ballot_open(cfg, &b, err, sizeof(err));
    ballot_config_destroy(cfg);
    ck_assert_msg(rv == 0, "%s", err);
    wait_leader(b);
    memset(value, 'v', sizeof(value));
    int last = 0;
    for (int i = 0; i < 400 && last == 0; i++) {
        char key[32];
        snprintf(key, sizeof(key), "big/%d", i);
        last = ballot_put_wait(b, key, strlen(key), value, sizeof(value), NULL,
                               NULL);
    }
    ck_assert_msg(last == BALLOT_EUNKNOWN || last == BALLOT_ESTORAGE,
                  "the disk never filled: %s", ballot_strerror(last));
    /* The callback comes from the node's loop, soon after. */
    for (int i = 0; i < 500; i++) {
        uv_mutex_lock(&h.mu);
        int calls = h.calls;
        uv_mutex_unlock(&h.mu);
        if (calls > 0) {
            break;
        }
        usleep(10000);
    }
    ck_assert_int_eq(h.calls, 1);
    ck_assert_msg(h.why[0] != '\0', "no reason given");
    struct ballot_status st;
    ck_assert_int_eq(ballot_status(b, &st), 0);
    ck_assert(st.halted);
    ck_assert_int_eq(ballot_put_wait(b, "k", 1, "v", 1, NULL, NULL),
                     BALLOT_ESTORAGE);
    ck_assert_int_eq(ballot_close(b), 0);
    ck_assert_int_eq(h.calls, 1);
    uv_mutex_destroy(&h.mu);
    snprintf(cmd, sizeof(cmd), "umount %s", dir);
    ck_assert_int_eq(system(cmd), 0);
    cl_close_all(&cl);
}
END_TEST

int main(int argc, char **argv)
{
    Suite *s = suite_create("embed");
    struct
    {
        const char *name;
        const TTest *fn;
    } tests[] = {
        {"thread_node_reads_and_writes",
         test_embed_thread_node_reads_and_writes},
        {"request_id_retry_is_applied_once",
         test_embed_request_id_retry_is_applied_once},
        {"sequence_ids_are_handed_out_once",
         test_embed_sequence_ids_are_handed_out_once},
        {"on_program_loop_leaves_no_handle",
         test_embed_on_program_loop_leaves_no_handle},
        {"misuse_gets_clear_errors", test_embed_misuse_gets_clear_errors},
        {"node_and_two_ballotd_form_one_cluster",
         test_embed_node_and_two_ballotd_form_one_cluster},
        {"watch_streams_every_change_in_order",
         test_embed_watch_streams_every_change_in_order},
        {"watch_resumes_from_a_past_revision",
         test_embed_watch_resumes_from_a_past_revision},
        {"full_disk_calls_halt_callback_not_exit",
         test_embed_full_disk_calls_halt_callback_not_exit},
        {"lease_grant_keepalive_revoke_and_expiry",
         test_embed_lease_grant_keepalive_revoke_and_expiry},
        {"lock_tokens_fences_waits_and_lease_list",
         test_embed_lock_tokens_fences_waits_and_lease_list},
        {"election_campaign_proclaim_resign",
         test_embed_election_campaign_proclaim_resign},
    };
    for (size_t i = 0; i < sizeof(tests) / sizeof(tests[0]); i++) {
        if (argc > 1 && strcmp(argv[1], tests[i].name) != 0) {
            continue;
        }
        TCase *tc = tcase_create(tests[i].name);
        tcase_set_timeout(tc, 120);
        tcase_add_test(tc, tests[i].fn);
        suite_add_tcase(s, tc);
    }
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    if (geteuid() == 0) {
        char cmd[200];
        snprintf(cmd, sizeof(cmd),
                 "awk '$1 == \"ballot-embed-%d\" {print $2}' /proc/mounts | "
                 "xargs -r umount -l",
                 (int)getpid());
        if (system(cmd) != 0) {
            fprintf(stderr, "could not unmount a test's tmpfs\n");
        }
    }
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? 0 : 1;
}
