/*
 * test_alloc.c - allocation failure, SQLite style: a scripted scenario is
 * run again and again with the Nth allocation of the core failing, for
 * N = 1, 2, ... until a run needs no more than N - 1 allocations. Every
 * call must succeed or return RAFT_ENOMEM, the cluster must still get
 * through the whole scenario, and nothing may leak.
 */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "raft.h"
#include "suites.h"

/* ---- the failing allocator -------------------------------------------- */

struct fail_alloc
{
    uint64_t calls;   /* malloc and realloc calls so far */
    uint64_t fail_at; /* the call that fails (once); 0: none */
    bool failed;
    int64_t live; /* blocks allocated and not freed */
};

static bool should_fail(struct fail_alloc *a)
{
    a->calls++;
    if (a->calls == a->fail_at) {
        a->failed = true;
        return true;
    }
    return false;
}

static void *fa_malloc(void *ctx, size_t size)
{
    struct fail_alloc *a = ctx;
    if (should_fail(a)) {
        return NULL;
    }
    void *p = malloc(size ? size : 1);
    ck_assert_ptr_nonnull(p);
    a->live++;
    return p;
}

static void *fa_realloc(void *ctx, void *ptr, size_t size)
{
    struct fail_alloc *a = ctx;
    ck_assert_uint_gt(size, 0); /* realloc(p, 0) is implementation-defined */
    if (should_fail(a)) {
        return NULL;
    }
    void *p = realloc(ptr, size);
    ck_assert_ptr_nonnull(p);
    if (ptr == NULL) {
        a->live++;
    }
    return p;
}

static void fa_free(void *ctx, void *ptr)
{
    struct fail_alloc *a = ctx;
    if (ptr != NULL) {
        a->live--;
        free(ptr);
    }
}

/* ---- a small cluster driver ------------------------------------------- */

#define N_NODES 4 /* 1..3 bootstrap as voters, 4 joins as a learner */

struct q_msg
{
    struct raft_message m;
    struct raft_entry *entries;
};

struct cluster
{
    struct fail_alloc alloc;
    struct raft_node *r[N_NODES + 1];
    bool cut[N_NODES + 1];
    struct q_msg *q;
    size_t n, cap;
    uint64_t read_ok[N_NODES + 1]; /* ctx of the last successful read */
};

static uint8_t snapshot_bytes[128];

static void expect_ok_or_nomem(int rv, const char *what)
{
    ck_assert_msg(rv == 0 || rv == RAFT_ENOMEM, "%s returned %d", what, rv);
}

static void push(struct cluster *c, const struct raft_message *m)
{
    if (c->n == c->cap) {
        c->cap = c->cap ? c->cap * 2 : 64;
        c->q = realloc(c->q, c->cap * sizeof(*c->q));
        ck_assert_ptr_nonnull(c->q);
    }
    struct q_msg *q = &c->q[c->n++];
    q->m = *m;
    q->entries = NULL;
    if (m->type == RAFT_MSG_APPEND && m->u.append.n_entries > 0) {
        q->entries = malloc(m->u.append.n_entries * sizeof(*q->entries));
        ck_assert_ptr_nonnull(q->entries);
        for (uint32_t i = 0; i < m->u.append.n_entries; i++) {
            q->entries[i] = m->u.append.entries[i];
            if (q->entries[i].len > 0) {
                uint8_t *d = malloc(q->entries[i].len);
                ck_assert_ptr_nonnull(d);
                memcpy(d, m->u.append.entries[i].data, q->entries[i].len);
                q->entries[i].data = d;
            }
        }
        q->m.u.append.entries = q->entries;
    }
    if (m->type == RAFT_MSG_SNAPSHOT) {
        ck_assert_uint_le(m->u.snapshot.offset + m->u.snapshot.len,
                          sizeof(snapshot_bytes));
        q->m.u.snapshot.data = snapshot_bytes + m->u.snapshot.offset;
    }
}

static void free_msg(struct q_msg *q)
{
    if (q->entries != NULL) {
        for (uint32_t i = 0; i < q->m.u.append.n_entries; i++) {
            free((void *)q->entries[i].data);
        }
        free(q->entries);
    }
}

static void ready_all(struct cluster *c)
{
    for (raft_id id = 1; id <= N_NODES; id++) {
        struct raft_update u;
        while (raft_ready(c->r[id], &u)) {
            for (size_t i = 0; i < u.n_messages; i++) {
                push(c, &u.messages[i]);
            }
            for (size_t i = 0; i < u.n_messages_after_persist; i++) {
                push(c, &u.messages_after_persist[i]);
            }
            for (size_t i = 0; i < u.n_reads; i++) {
                if (u.reads[i].ok) {
                    c->read_ok[id] = u.reads[i].ctx;
                }
            }
            raft_advance(c->r[id], &u);
        }
    }
}

/* One round: every node ticks, then messages flow until the network is
 * empty. A message whose step fails for lack of memory is lost, as it
 * would be in a real driver. */
static void round_trip(struct cluster *c)
{
    for (raft_id id = 1; id <= N_NODES; id++) {
        raft_tick(c->r[id]);
    }
    ready_all(c);
    for (int i = 0; i < 100 && c->n > 0; i++) {
        size_t n = c->n;
        struct q_msg *batch = malloc(n * sizeof(*batch));
        ck_assert_ptr_nonnull(batch);
        memcpy(batch, c->q, n * sizeof(*batch));
        c->n = 0;
        for (size_t k = 0; k < n; k++) {
            const struct raft_message *m = &batch[k].m;
            if (!c->cut[m->from] && !c->cut[m->to]) {
                expect_ok_or_nomem(raft_step(c->r[m->to], m), "raft_step");
            }
            free_msg(&batch[k]);
        }
        free(batch);
        ready_all(c);
    }
}

static raft_id leader_of(struct cluster *c)
{
    raft_id best = 0;
    for (raft_id id = 1; id <= N_NODES; id++) {
        if (raft_state_of(c->r[id]) == RAFT_LEADER &&
            (best == 0 ||
             raft_current_term(c->r[id]) > raft_current_term(c->r[best]))) {
            best = id;
        }
    }
    return best;
}

#define ROUNDS_MAX 300

/* Runs rounds until @cond holds; fails the test (naming @what) if it does
 * not within ROUNDS_MAX rounds. */
#define PUMP_UNTIL(c, cond, what)                                   \
    do {                                                            \
        int rounds_ = 0;                                            \
        while (!(cond)) {                                           \
            ck_assert_msg(rounds_++ < ROUNDS_MAX,                   \
                          "fail_at %lu: stuck waiting for %s",      \
                          (unsigned long)(c)->alloc.fail_at, what); \
            round_trip(c);                                          \
        }                                                           \
    } while (0)

/* Proposes on whoever leads until a proposal is accepted; returns its
 * index. */
static raft_index propose(struct cluster *c, const char *text)
{
    raft_index idx = 0;
    for (int tries = 0; tries < ROUNDS_MAX; tries++) {
        raft_id l = leader_of(c);
        if (l != 0) {
            int rv = raft_propose(c->r[l], (const uint8_t *)text,
                                  (uint32_t)strlen(text), &idx, NULL);
            ck_assert_msg(rv == 0 || rv == RAFT_ENOMEM || rv == RAFT_ENOTLEADER,
                          "raft_propose returned %d", rv);
            if (rv == 0) {
                return idx;
            }
        }
        round_trip(c);
    }
    ck_abort_msg("fail_at %lu: no proposal accepted",
                 (unsigned long)c->alloc.fail_at);
    return 0;
}

static bool all_committed(struct cluster *c, raft_index idx, raft_id upto);

/* Writes @text and waits until nodes 1..@upto applied it. A proposal can
 * be lost when leadership changes before it is replicated (Raft promises
 * nothing for it), so it is proposed again until its entry commits with
 * the term it was proposed in. */
static raft_index write(struct cluster *c, const char *text, raft_id upto)
{
    for (int tries = 0; tries < 20; tries++) {
        raft_index idx = propose(c, text);
        raft_id l = leader_of(c);
        raft_term term = raft_term_at(c->r[l], idx);
        for (int i = 0; i < ROUNDS_MAX; i++) {
            if (all_committed(c, idx, upto) &&
                raft_term_at(c->r[l], idx) == term) {
                return idx;
            }
            if (raft_term_at(c->r[l], idx) != term) {
                break; /* overwritten by a newer leader */
            }
            round_trip(c);
        }
    }
    ck_abort_msg("fail_at %lu: write never committed",
                 (unsigned long)c->alloc.fail_at);
    return 0;
}

static bool all_committed(struct cluster *c, raft_index idx, raft_id upto)
{
    for (raft_id id = 1; id <= upto; id++) {
        if (!c->cut[id] && raft_applied_index(c->r[id]) < idx) {
            return false;
        }
    }
    return true;
}

/* Reads through node @id until one is confirmed. */
static void read_through(struct cluster *c, raft_id id, uint64_t ctx)
{
    for (int tries = 0; tries < 20; tries++) {
        int rv = raft_read_index(c->r[id], ctx);
        expect_ok_or_nomem(rv, "raft_read_index");
        for (int i = 0; i < 10 && c->read_ok[id] != ctx; i++) {
            round_trip(c);
        }
        if (c->read_ok[id] == ctx) {
            return;
        }
    }
    ck_abort_msg("fail_at %lu: read through %lu never confirmed",
                 (unsigned long)c->alloc.fail_at, (unsigned long)id);
}

/* The scenario. Returns true if the injected failure happened. */
static bool run(uint64_t fail_at)
{
    struct cluster *c = calloc(1, sizeof(*c));
    ck_assert_ptr_nonnull(c);
    c->alloc.fail_at = fail_at;

    /* Create and bootstrap: on failure nothing changed, so retry. */
    struct raft_conf conf;
    memset(&conf, 0, sizeof(conf));
    conf.n = 3;
    for (uint32_t i = 0; i < 3; i++) {
        conf.members[i].id = i + 1;
        conf.members[i].role = RAFT_VOTER;
    }
    for (raft_id id = 1; id <= N_NODES; id++) {
        struct raft_config cfg;
        raft_config_default(&cfg, id, 11);
        cfg.snapshot_chunk_bytes = 32;
        cfg.snapshot_trailing = 0;
        cfg.allocator.ctx = &c->alloc;
        cfg.allocator.malloc_fn = fa_malloc;
        cfg.allocator.realloc_fn = fa_realloc;
        cfg.allocator.free_fn = fa_free;
        int rv = raft_node_create(&cfg, &c->r[id]);
        expect_ok_or_nomem(rv, "raft_node_create");
        if (rv != 0) {
            ck_assert_int_eq(raft_node_create(&cfg, &c->r[id]), 0);
        }
        if (id <= 3) {
            rv = raft_bootstrap(c->r[id], &conf);
            expect_ok_or_nomem(rv, "raft_bootstrap");
            if (rv != 0) {
                ck_assert_int_eq(raft_bootstrap(c->r[id], &conf), 0);
            }
        }
    }

    /* Elect, propose, replicate. */
    PUMP_UNTIL(c, leader_of(c) != 0, "a leader");
    raft_index idx = 0;
    for (int i = 0; i < 3; i++) {
        idx = write(c, "value", 3);
    }

    /* A follower misses entries that the leader compacts: it needs the
     * snapshot. */
    raft_id l = leader_of(c);
    raft_id lag = l == 3 ? 2 : 3;
    c->cut[lag] = true;
    for (int i = 0; i < 3; i++) {
        idx = write(c, "more", 3);
    }
    l = leader_of(c);
    raft_index applied = raft_applied_index(c->r[l]);
    ck_assert_int_eq(raft_snapshot_taken(c->r[l], applied, 100), 0);
    ck_assert_uint_gt(raft_first_index(c->r[l]), raft_last_index(c->r[lag]));
    c->cut[lag] = false;
    PUMP_UNTIL(c, raft_applied_index(c->r[lag]) >= applied, "the snapshot");

    /* A learner joins. */
    for (int tries = 0;; tries++) {
        ck_assert_int_lt(tries, ROUNDS_MAX);
        l = leader_of(c);
        if (l != 0) {
            int rv =
                raft_propose_conf_change(c->r[l], RAFT_ADD_LEARNER, 4, &idx);
            ck_assert_msg(rv == 0 || rv == RAFT_ENOMEM ||
                              rv == RAFT_ECONFPENDING || rv == RAFT_ENOTLEADER,
                          "conf change returned %d", rv);
            if (rv == 0) {
                break;
            }
        }
        round_trip(c);
    }
    PUMP_UNTIL(c, all_committed(c, idx, N_NODES), "the learner");

    /* Reads on the leader and through a follower. */
    l = leader_of(c);
    read_through(c, l, 1000);
    read_through(c, l == 1 ? 2 : 1, 2000);

    /* A final write everybody sees. */
    write(c, "last", N_NODES);

    for (size_t i = 0; i < c->n; i++) {
        free_msg(&c->q[i]);
    }
    free(c->q);
    for (raft_id id = 1; id <= N_NODES; id++) {
        raft_node_destroy(c->r[id]);
    }
    ck_assert_msg(c->alloc.live == 0, "fail_at %lu: %ld blocks leaked",
                  (unsigned long)fail_at, (long)c->alloc.live);
    bool failed = c->alloc.failed;
    free(c);
    return failed;
}

/* SQLite-style fault loop over the whole scenario: create, bootstrap,
 * elect, propose, replicate, snapshot, change membership, read. */
START_TEST(test_alloc_every_failing_allocation_is_survived_without_leaks)
{
    ck_assert(!run(0)); /* the scenario works with no failure at all */
    uint64_t n;
    for (n = 1; n < 100000; n++) {
        if (!run(n)) {
            break;
        }
    }
    /* The loop ended because a run needed fewer than n allocations. */
    ck_assert_uint_gt(n, 10);
    ck_assert_uint_lt(n, 100000);
}
END_TEST

Suite *alloc_suite(void)
{
    Suite *s = suite_create("alloc");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 600);
    tcase_add_test(
        tc, test_alloc_every_failing_allocation_is_survived_without_leaks);
    suite_add_tcase(s, tc);
    return s;
}
