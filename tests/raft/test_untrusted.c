/*
 * test_untrusted.c - every message from the network is untrusted: the
 * core validates before it changes anything, counts what it drops, and
 * survives random and mutated input.
 */
#include <check.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "fixture.h"
#include "suites.h"

/* ---- targeted rejections ---------------------------------------------- */

struct observed
{
    raft_term term;
    raft_id vote;
    raft_index first, last, commit;
    raft_term last_term;
    uint8_t state;
    raft_id leader;
    unsigned conf_n;
};

static struct observed observe(struct raft_node *r)
{
    struct observed o;
    memset(&o, 0, sizeof(o));
    o.term = raft_current_term(r);
    o.vote = raft_voted_for(r);
    o.first = raft_first_index(r);
    o.last = raft_last_index(r);
    o.commit = raft_commit_index(r);
    o.last_term = raft_term_at(r, o.last);
    o.state = (uint8_t)raft_state_of(r);
    o.leader = raft_leader(r);
    o.conf_n = raft_conf_of(r)->n;
    return o;
}

/* One more entries than node.h's RAFT_MSG_ENTRIES_MAX allows. */
#define ENTRIES_MAX_PLUS_ONE 65537u

#define STAT(field) offsetof(struct raft_stats, field)

static uint64_t stat_at(struct raft_node *r, size_t off)
{
    uint64_t v;
    memcpy(&v, (const char *)raft_stats_of(r) + off, sizeof(v));
    return v;
}

/* Steps @m into node @id and checks it is refused as invalid, counted in
 * the stats field at @off, and changes nothing at all. */
static void expect_rejected(struct fx *f,
                            raft_id id,
                            const struct raft_message *m,
                            size_t off,
                            const char *what)
{
    struct raft_node *r = fx_raft(f, id);
    struct observed before = observe(r);
    uint64_t counter = stat_at(r, off);
    uint64_t total = raft_stats_of(r)->msgs_rejected;
    ck_assert_msg(raft_step(r, m) == RAFT_EINVAL, "%s: not refused", what);
    ck_assert_msg(stat_at(r, off) == counter + 1, "%s: wrong counter", what);
    ck_assert_msg(raft_stats_of(r)->msgs_rejected == total + 1,
                  "%s: not counted", what);
    struct observed after = observe(r);
    ck_assert_msg(memcmp(&before, &after, sizeof(before)) == 0,
                  "%s: state changed", what);
    struct raft_update u;
    ck_assert_msg(!raft_ready(r, &u), "%s: produced output", what);
}

static struct raft_message base(uint8_t type,
                                raft_id from,
                                raft_id to,
                                raft_term term)
{
    struct raft_message m;
    memset(&m, 0, sizeof(m));
    m.type = type;
    m.from = from;
    m.to = to;
    m.term = term;
    return m;
}

static struct raft_entry entry(raft_term term, raft_index index)
{
    struct raft_entry e;
    memset(&e, 0, sizeof(e));
    e.term = term;
    e.index = index;
    e.type = RAFT_ENTRY_NORMAL;
    return e;
}

/* A cluster of three voters led by node 1 in term 2, log 1..3 committed,
 * plus learner 4. */
static void live_cluster(struct fx *f)
{
    fx_init(f, 4, 3, NULL);
    fx_elect(f, 1);
    ck_assert_int_eq(
        raft_propose_conf_change(fx_raft(f, 1), RAFT_ADD_LEARNER, 4, NULL), 0);
    fx_settle(f);
    fx_tick(f, 1, 1);
    ck_assert_uint_eq(raft_commit_index(fx_raft(f, 2)), 3);
}

/* The message header (type, sender, receiver, term) is checked before
 * anything else. */
START_TEST(test_untrusted_bad_header_is_rejected)
{
    struct fx f;
    live_cluster(&f);
    raft_term t = 2;
    struct raft_message m = base(0, 1, 2, t);
    expect_rejected(&f, 2, &m, STAT(msgs_bad_type), "type 0");
    m = base(RAFT_MSG_TYPE_MAX + 1, 1, 2, t);
    expect_rejected(&f, 2, &m, STAT(msgs_bad_type), "type max+1");
    m = base(255, 1, 2, t + 1);
    expect_rejected(&f, 2, &m, STAT(msgs_bad_type), "type 255");
    m = base(RAFT_MSG_HEARTBEAT, 1, 3, t + 1);
    expect_rejected(&f, 2, &m, STAT(msgs_bad_sender), "to another node");
    m = base(RAFT_MSG_HEARTBEAT, 0, 2, t + 1);
    expect_rejected(&f, 2, &m, STAT(msgs_bad_sender), "from 0");
    m = base(RAFT_MSG_HEARTBEAT, 2, 2, t + 1);
    expect_rejected(&f, 2, &m, STAT(msgs_bad_sender), "from self");
    m = base(RAFT_MSG_HEARTBEAT, 1, 2, 0);
    expect_rejected(&f, 2, &m, STAT(msgs_bad_index), "term 0");
    m = base(RAFT_MSG_HEARTBEAT, 1, 2, UINT64_MAX);
    expect_rejected(&f, 2, &m, STAT(msgs_bad_index), "term at max");
    m = base(RAFT_MSG_HEARTBEAT, 1, 2, UINT64_MAX / 2 + 1);
    expect_rejected(&f, 2, &m, STAT(msgs_bad_index), "term near max");
    fx_close(&f);
}
END_TEST

/* Figure 2's Log Matching property relies on entries being contiguous,
 * with non-decreasing terms no newer than the leader's; entries must also
 * respect the configured limits and carry valid configurations. */
START_TEST(test_untrusted_malformed_append_is_rejected)
{
    struct fx f;
    live_cluster(&f);
    raft_term t = 3; /* a newer term: accepting would change ours */
    static uint8_t junk[16];
    struct raft_entry es[3];
    struct raft_message m = base(RAFT_MSG_APPEND, 1, 2, t);
    m.u.append.prev_index = 3;
    m.u.append.prev_term = 2;
    m.u.append.commit = 3;
    m.u.append.entries = es;

    es[0] = entry(3, 4);
    es[1] = entry(3, 6);
    m.u.append.n_entries = 2;
    expect_rejected(&f, 2, &m, STAT(msgs_bad_entries), "index gap");
    es[1] = entry(3, 4);
    expect_rejected(&f, 2, &m, STAT(msgs_bad_entries), "index repeated");
    es[0] = entry(3, 5);
    m.u.append.n_entries = 1;
    expect_rejected(&f, 2, &m, STAT(msgs_bad_entries), "first != prev + 1");
    es[0] = entry(3, 4);
    es[1] = entry(2, 5);
    m.u.append.n_entries = 2;
    expect_rejected(&f, 2, &m, STAT(msgs_bad_entries), "decreasing terms");
    es[0] = entry(1, 4);
    m.u.append.n_entries = 1;
    expect_rejected(&f, 2, &m, STAT(msgs_bad_entries), "term below prev");
    es[0] = entry(4, 4);
    expect_rejected(&f, 2, &m, STAT(msgs_bad_entries), "term > msg term");
    es[0] = entry(0, 4);
    m.u.append.prev_index = 0;
    m.u.append.prev_term = 0;
    es[0].index = 1;
    expect_rejected(&f, 2, &m, STAT(msgs_bad_entries), "entry term 0");
    m.u.append.prev_index = 3;
    m.u.append.prev_term = 2;
    m.u.append.n_entries = ENTRIES_MAX_PLUS_ONE;
    expect_rejected(&f, 2, &m, STAT(msgs_bad_entries), "too many entries");
    m.u.append.n_entries = UINT32_MAX;
    expect_rejected(&f, 2, &m, STAT(msgs_bad_entries), "n_entries max");
    m.u.append.n_entries = 1;
    m.u.append.entries = NULL;
    expect_rejected(&f, 2, &m, STAT(msgs_bad_entries), "entries NULL");
    m.u.append.entries = es;
    es[0] = entry(3, 4);
    es[0].len = f.cfg.max_entry_bytes + 1;
    es[0].data = junk; /* never read: the length is checked first */
    expect_rejected(&f, 2, &m, STAT(msgs_bad_entries), "entry too big");
    es[0].len = 4;
    es[0].data = NULL;
    expect_rejected(&f, 2, &m, STAT(msgs_bad_entries), "data NULL");
    es[0].data = junk;
    es[0].type = 7;
    expect_rejected(&f, 2, &m, STAT(msgs_bad_entries), "entry type");
    es[0].type = RAFT_ENTRY_CONF;
    expect_rejected(&f, 2, &m, STAT(msgs_bad_entries), "bad conf entry");
    es[0].len = 0;
    es[0].data = NULL;
    expect_rejected(&f, 2, &m, STAT(msgs_bad_entries), "empty conf entry");
    m.u.append.n_entries = 0;
    m.u.append.prev_term = 4;
    expect_rejected(&f, 2, &m, STAT(msgs_bad_entries), "prev_term > term");
    m.u.append.prev_index = 0;
    m.u.append.prev_term = 2;
    expect_rejected(&f, 2, &m, STAT(msgs_bad_entries), "prev 0 with a term");
    m.u.append.prev_index = 3;
    m.u.append.prev_term = 0;
    expect_rejected(&f, 2, &m, STAT(msgs_bad_entries), "prev without term");
    m.u.append.prev_index = UINT64_MAX;
    m.u.append.prev_term = 2;
    expect_rejected(&f, 2, &m, STAT(msgs_bad_entries), "prev_index wraps");
    fx_close(&f);
}
END_TEST

/* Figure 5.3: a chunk must lie inside the snapshot it describes, say done
 * exactly on its last chunk, and describe a snapshot the sender's term can
 * have produced, with a usable configuration. */
START_TEST(test_untrusted_malformed_snapshot_chunk_is_rejected)
{
    struct fx f;
    live_cluster(&f);
    static uint8_t data[64];
    raft_term t = 3;
    struct raft_message good = base(RAFT_MSG_SNAPSHOT, 1, 2, t);
    good.u.snapshot.meta.index = 10;
    good.u.snapshot.meta.term = 3;
    good.u.snapshot.meta.size = 100;
    good.u.snapshot.meta.conf = *raft_conf_of(fx_raft(&f, 1));
    good.u.snapshot.offset = 0;
    good.u.snapshot.len = 32;
    good.u.snapshot.data = data;

    struct raft_message m = good;
    m.u.snapshot.offset = 80;
    expect_rejected(&f, 2, &m, STAT(msgs_bad_index), "offset+len > size");
    m.u.snapshot.offset = UINT64_MAX - 8;
    expect_rejected(&f, 2, &m, STAT(msgs_bad_index), "offset wraps");
    m = good;
    m.u.snapshot.done = true;
    expect_rejected(&f, 2, &m, STAT(msgs_bad_index), "done too early");
    m = good;
    m.u.snapshot.offset = 68;
    m.u.snapshot.done = false;
    expect_rejected(&f, 2, &m, STAT(msgs_bad_index), "last chunk not done");
    m = good;
    m.u.snapshot.meta.term = 4;
    expect_rejected(&f, 2, &m, STAT(msgs_bad_index), "meta.term > term");
    m = good;
    m.u.snapshot.meta.index = 0;
    expect_rejected(&f, 2, &m, STAT(msgs_bad_index), "meta.index 0");
    m = good;
    m.u.snapshot.data = NULL;
    expect_rejected(&f, 2, &m, STAT(msgs_bad_index), "data NULL");
    m = good;
    m.u.snapshot.meta.conf.members[1].id = m.u.snapshot.meta.conf.members[0].id;
    expect_rejected(&f, 2, &m, STAT(msgs_bad_index), "duplicate member");
    m = good;
    memset(&m.u.snapshot.meta.conf, 0, sizeof(m.u.snapshot.meta.conf));
    expect_rejected(&f, 2, &m, STAT(msgs_bad_index), "no voters");
    m = good;
    m.u.snapshot.meta.conf.n = RAFT_CONF_MAX + 1;
    expect_rejected(&f, 2, &m, STAT(msgs_bad_index), "conf too large");
    fx_close(&f);
}
END_TEST

/* Responses and requests are only taken from members; votes only from
 * voters (§4.2.3: servers outside the configuration must not disrupt it);
 * a leader trusts no acknowledgement of entries it never had, and no
 * second leader in its own term (§5.2, Election Safety). */
START_TEST(test_untrusted_impossible_senders_and_acks_are_rejected)
{
    struct fx f;
    live_cluster(&f);
    raft_term t = 2;
    struct raft_message m = base(RAFT_MSG_VOTE, 9, 2, t + 1);
    m.u.vote.last_log_index = 100;
    m.u.vote.last_log_term = t + 1;
    /* Vote requests from outside the configuration are not invalid
     * (§4.1: a new voter may not know it is one); see test_membership.c. */
    m.from = 3;
    m.u.vote.last_log_term = t + 2;
    expect_rejected(&f, 2, &m, STAT(msgs_bad_index), "last_log_term > term");

    m = base(RAFT_MSG_VOTE_RESP, 9, 1, t);
    m.u.vote_resp.granted = true;
    expect_rejected(&f, 1, &m, STAT(msgs_bad_sender), "grant from stranger");
    m = base(RAFT_MSG_APPEND_RESP, 9, 1, t);
    m.u.append_resp.success = true;
    m.u.append_resp.index = 3;
    expect_rejected(&f, 1, &m, STAT(msgs_bad_sender), "ack from stranger");
    m = base(RAFT_MSG_READ_INDEX, 9, 1, t);
    expect_rejected(&f, 1, &m, STAT(msgs_bad_sender), "read from stranger");

    m = base(RAFT_MSG_APPEND_RESP, 2, 1, t);
    m.u.append_resp.success = true;
    m.u.append_resp.index = raft_last_index(fx_raft(&f, 1)) + 1;
    expect_rejected(&f, 1, &m, STAT(msgs_bad_index), "ack beyond log");
    m.u.append_resp.index = UINT64_MAX;
    expect_rejected(&f, 1, &m, STAT(msgs_bad_index), "ack at max");

    struct raft_entry e = entry(t, 4);
    m = base(RAFT_MSG_APPEND, 2, 1, t);
    m.u.append.prev_index = 3;
    m.u.append.prev_term = t;
    m.u.append.commit = 4;
    m.u.append.entries = &e;
    m.u.append.n_entries = 1;
    expect_rejected(&f, 1, &m, STAT(msgs_bad_sender), "append to leader");
    m = base(RAFT_MSG_HEARTBEAT, 3, 1, t);
    m.u.heartbeat.commit = 100;
    expect_rejected(&f, 1, &m, STAT(msgs_bad_sender), "heartbeat to leader");
    m = base(RAFT_MSG_SNAPSHOT, 3, 1, t);
    static uint8_t data[4];
    m.u.snapshot.meta.index = 50;
    m.u.snapshot.meta.term = t;
    m.u.snapshot.meta.size = 4;
    m.u.snapshot.meta.conf = *raft_conf_of(fx_raft(&f, 1));
    m.u.snapshot.len = 4;
    m.u.snapshot.done = true;
    m.u.snapshot.data = data;
    expect_rejected(&f, 1, &m, STAT(msgs_bad_sender), "snapshot to leader");

    /* After all that the cluster works as before. */
    ck_assert_int_eq(fx_propose(&f, 1, "still fine"), 0);
    ck_assert_uint_eq(raft_commit_index(fx_raft(&f, 1)), 4);
    fx_check_applied_agree(&f);
    fx_close(&f);
}
END_TEST

/* No index a message carries may exceed RAFT_INDEX_MAX (node.h): a
 * snapshot claiming index 2^64 - 3, once installed, would make the node's
 * log indexes wrap through 2^64 - 1 to 0 as soon as it led. */
START_TEST(test_untrusted_indexes_beyond_the_maximum_are_rejected)
{
    struct fx f;
    live_cluster(&f);
    static uint8_t data[4];
    raft_term t = 2;
    const raft_index huge = UINT64_MAX - 2;
    const raft_index over = UINT64_MAX / 2 + 1;

    struct raft_message m = base(RAFT_MSG_SNAPSHOT, 1, 2, t);
    m.u.snapshot.meta.index = huge;
    m.u.snapshot.meta.term = t;
    m.u.snapshot.meta.size = 4;
    m.u.snapshot.meta.conf = *raft_conf_of(fx_raft(&f, 1));
    m.u.snapshot.len = 4;
    m.u.snapshot.done = true;
    m.u.snapshot.data = data;
    expect_rejected(&f, 2, &m, STAT(msgs_bad_index), "snapshot at 2^64-3");
    m.u.snapshot.meta.index = over;
    expect_rejected(&f, 2, &m, STAT(msgs_bad_index), "snapshot above max");

    struct raft_entry e = entry(t, over);
    m = base(RAFT_MSG_APPEND, 1, 2, t);
    m.u.append.prev_index = over - 1;
    m.u.append.prev_term = t;
    m.u.append.entries = &e;
    m.u.append.n_entries = 1;
    expect_rejected(&f, 2, &m, STAT(msgs_bad_entries), "entry above max");
    m.u.append.prev_index = 3;
    m.u.append.n_entries = 0;
    m.u.append.commit = huge;
    expect_rejected(&f, 2, &m, STAT(msgs_bad_entries), "append commit");

    m = base(RAFT_MSG_HEARTBEAT, 1, 2, t);
    m.u.heartbeat.commit = huge;
    expect_rejected(&f, 2, &m, STAT(msgs_bad_index), "heartbeat commit");
    m = base(RAFT_MSG_PREVOTE, 3, 2, t + 1);
    m.u.vote.last_log_index = huge;
    m.u.vote.last_log_term = t;
    expect_rejected(&f, 2, &m, STAT(msgs_bad_index), "vote last index");
    m = base(RAFT_MSG_APPEND_RESP, 2, 1, t);
    m.u.append_resp.hint_index = huge;
    expect_rejected(&f, 1, &m, STAT(msgs_bad_index), "hint index");
    m = base(RAFT_MSG_APPEND_RESP, 2, 1, t);
    m.u.append_resp.hint_term = UINT64_MAX;
    expect_rejected(&f, 1, &m, STAT(msgs_bad_index), "hint term");
    m = base(RAFT_MSG_SNAPSHOT_RESP, 2, 1, t);
    m.u.snapshot_resp.index = huge;
    expect_rejected(&f, 1, &m, STAT(msgs_bad_index), "snapshot ack");
    m = base(RAFT_MSG_READ_INDEX_RESP, 1, 2, t);
    m.u.read_index.index = huge;
    expect_rejected(&f, 2, &m, STAT(msgs_bad_index), "read index");

    ck_assert_int_eq(fx_propose(&f, 1, "still fine"), 0);
    fx_check_applied_agree(&f);
    fx_close(&f);
}
END_TEST

/* Steps @m into node @id and checks it was dropped for its term: counted
 * in msgs_bad_term, no answer, nothing changed. */
static void expect_term_refused(struct fx *f,
                                raft_id id,
                                const struct raft_message *m,
                                const char *what)
{
    struct raft_node *r = fx_raft(f, id);
    struct observed before = observe(r);
    uint64_t counter = raft_stats_of(r)->msgs_bad_term;
    ck_assert_msg(raft_step(r, m) == 0, "%s: failed", what);
    ck_assert_msg(raft_stats_of(r)->msgs_bad_term == counter + 1,
                  "%s: not counted", what);
    struct observed after = observe(r);
    ck_assert_msg(memcmp(&before, &after, sizeof(before)) == 0,
                  "%s: state changed", what);
    struct raft_update u;
    ck_assert_msg(!raft_ready(r, &u), "%s: produced output", what);
}

/* The attack of issue 12: one vote request with an enormous term used to
 * push a node's term to the top of the range, where no campaign could
 * succeed again (term + 1 is invalid), leaving the cluster leaderless for
 * good. Now (step.c, "Untrusted terms") a vote request raises a term by at
 * most RAFT_TERM_JUMP_MAX, and with PreVote only after a pre-vote this
 * node granted to the same candidate for the same term (§9.6); a
 * transfer's vote (§3.10) only by one. Nothing changes, the drop is
 * counted, and the cluster goes on electing and committing. */
START_TEST(test_untrusted_forged_vote_with_enormous_term_has_no_lasting_effect)
{
    struct fx f;
    live_cluster(&f);
    raft_term t = raft_current_term(fx_raft(&f, 2));
    const raft_term enormous = UINT64_MAX / 2;

    struct raft_message m = base(RAFT_MSG_VOTE, 3, 2, enormous);
    m.u.vote.last_log_index = 100;
    m.u.vote.last_log_term = enormous - 1;
    expect_term_refused(&f, 2, &m, "vote at 2^63-1");
    m.type = RAFT_MSG_PREVOTE;
    expect_term_refused(&f, 2, &m, "pre-vote at 2^63-1");
    m.term = t + 65536 + 1;
    m.u.vote.last_log_term = t;
    expect_term_refused(&f, 2, &m, "pre-vote one beyond the jump");
    m.type = RAFT_MSG_VOTE;
    m.term = t + 1;
    expect_term_refused(&f, 2, &m, "vote without a pre-vote");
    m.u.vote.transfer = true;
    m.term = t + 2;
    expect_term_refused(&f, 2, &m, "transfer vote two terms ahead");
    /* A pre-vote granted to node 3 does not let node 1 (or anyone
     * claiming to be it) use it. */
    m = base(RAFT_MSG_PREVOTE, 3, 2, t + 1);
    m.u.vote.last_log_index = 100;
    m.u.vote.last_log_term = t;
    f.hold = true;
    ck_assert_int_eq(raft_step(fx_raft(&f, 2), &m), 0);
    fx_settle(&f);
    fx_drop_all(&f);
    m.type = RAFT_MSG_VOTE;
    m.from = 1;
    expect_term_refused(&f, 2, &m, "vote after another's pre-vote");
    m.term = t + 2;
    m.from = 3;
    expect_term_refused(&f, 2, &m, "vote for another term than pre-voted");
    ck_assert_uint_eq(raft_current_term(fx_raft(&f, 2)), t);

    /* The honest path still works: the pre-voted candidate's vote for
     * that very term is granted. */
    m.term = t + 1;
    ck_assert_int_eq(raft_step(fx_raft(&f, 2), &m), 0);
    ck_assert_uint_eq(raft_current_term(fx_raft(&f, 2)), t + 1);
    ck_assert_uint_eq(raft_voted_for(fx_raft(&f, 2)), 3);
    fx_drop_all(&f);
    f.hold = false;

    /* And the cluster elects a leader and commits as before. */
    fx_elect(&f, 1);
    ck_assert_int_eq(fx_propose(&f, 1, "after the attack"), 0);
    fx_settle(&f);
    ck_assert_uint_lt(raft_current_term(fx_raft(&f, 1)), t + 10);
    fx_check_applied_agree(&f);
    fx_close(&f);
}
END_TEST

/* ---- randomized input ------------------------------------------------- */

/* A minimal driver: no fixture checks on state-machine content, since
 * forged snapshots and entries are allowed to be nonsense here. */
#define FZ_NODES 3

struct fz_msg
{
    struct raft_message m;
    struct raft_entry *entries;
};

struct fz
{
    struct raft_node *r[FZ_NODES + 1];
    struct fz_msg *q;
    size_t n, cap;
    uint64_t rng;
    struct raft_conf conf;
};

static uint8_t fz_bytes[256]; /* every payload the driver hands out */

static uint64_t fz_rand(struct fz *c)
{
    /* xorshift64*: a seeded, reproducible stream. */
    c->rng ^= c->rng >> 12;
    c->rng ^= c->rng << 25;
    c->rng ^= c->rng >> 27;
    return c->rng * 0x2545f4914f6cdd1dULL;
}

static uint64_t fz_below(struct fz *c, uint64_t n)
{
    return n == 0 ? 0 : fz_rand(c) % n;
}

static void fz_push(struct fz *c, const struct raft_message *m)
{
    if (c->n == c->cap) {
        c->cap = c->cap ? c->cap * 2 : 64;
        c->q = realloc(c->q, c->cap * sizeof(*c->q));
        ck_assert_ptr_nonnull(c->q);
    }
    struct fz_msg *q = &c->q[c->n++];
    q->m = *m;
    q->entries = NULL;
    if (m->type == RAFT_MSG_APPEND && m->u.append.n_entries > 0) {
        q->entries = malloc(m->u.append.n_entries * sizeof(*q->entries));
        ck_assert_ptr_nonnull(q->entries);
        for (uint32_t i = 0; i < m->u.append.n_entries; i++) {
            q->entries[i] = m->u.append.entries[i];
            /* Payloads are copied into fz_bytes-sized buffers. */
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
        ck_assert_uint_le(m->u.snapshot.len, sizeof(fz_bytes));
        q->m.u.snapshot.data = fz_bytes;
    }
}

static void fz_free(struct fz_msg *q)
{
    if (q->entries != NULL) {
        for (uint32_t i = 0; i < q->m.u.append.n_entries; i++) {
            free((void *)q->entries[i].data);
        }
        free(q->entries);
    }
}

static void fz_check(struct raft_node *r)
{
    ck_assert_uint_le(raft_commit_index(r), raft_last_index(r));
    ck_assert_uint_le(raft_applied_index(r), raft_commit_index(r));
    ck_assert_uint_le(raft_first_index(r), raft_last_index(r) + 1);
    ck_assert_uint_le(raft_snapshot_of(r)->index, raft_commit_index(r));
}

static void fz_step(struct fz *c, const struct raft_message *m)
{
    raft_id to = m->to;
    if (to < 1 || to > FZ_NODES) {
        to = 1 + fz_below(c, FZ_NODES);
    }
    int rv = raft_step(c->r[to], m);
    ck_assert_msg(rv == 0 || rv == RAFT_EINVAL, "step returned %d", rv);
    fz_check(c->r[to]);
}

static void fz_ready_all(struct fz *c)
{
    for (raft_id id = 1; id <= FZ_NODES; id++) {
        struct raft_update u;
        while (raft_ready(c->r[id], &u)) {
            for (size_t i = 0; i < u.n_messages; i++) {
                fz_push(c, &u.messages[i]);
            }
            for (size_t i = 0; i < u.n_messages_after_persist; i++) {
                fz_push(c, &u.messages_after_persist[i]);
            }
            raft_advance(c->r[id], &u);
        }
    }
}

/* A decoder hands the core real bools; after a mutation reinterpreted the
 * body, make the type's flag a bool again (anything else would be the
 * driver's undefined behaviour, not a peer's). */
static void fz_fix_bools(struct raft_message *m)
{
    bool *flag = NULL;
    switch (m->type) {
    case RAFT_MSG_PREVOTE:
    case RAFT_MSG_VOTE:
        flag = &m->u.vote.transfer;
        break;
    case RAFT_MSG_PREVOTE_RESP:
    case RAFT_MSG_VOTE_RESP:
        flag = &m->u.vote_resp.granted;
        break;
    case RAFT_MSG_APPEND_RESP:
        flag = &m->u.append_resp.success;
        break;
    case RAFT_MSG_SNAPSHOT:
        flag = &m->u.snapshot.done;
        break;
    case RAFT_MSG_SNAPSHOT_RESP:
        flag = &m->u.snapshot_resp.done;
        break;
    case RAFT_MSG_READ_INDEX:
    case RAFT_MSG_READ_INDEX_RESP:
        flag = &m->u.read_index.ok;
        break;
    default:
        return;
    }
    uint8_t raw;
    memcpy(&raw, flag, 1);
    *flag = raw != 0;
}

/* Mutates a real message a little: one or two fields made wrong. */
static void fz_mutate(struct fz *c, struct raft_message *m)
{
    switch (fz_below(c, 10)) {
    case 0: {
        uint8_t type = (uint8_t)fz_below(c, RAFT_MSG_TYPE_MAX + 2);
        if (type != m->type &&
            (type == RAFT_MSG_APPEND || type == RAFT_MSG_SNAPSHOT)) {
            /* Never reinterpret another body as pointers and lengths:
             * that would be the driver lying about memory, not a peer. */
            memset(&m->u, 0, sizeof(m->u));
        }
        m->type = type;
        break;
    }
    case 1:
        m->from = fz_below(c, FZ_NODES + 2);
        break;
    case 2:
        m->term = m->term + fz_below(c, 3) - 1;
        break;
    case 3:
        m->u.append.prev_index += fz_below(c, 5) - 2;
        break;
    case 4:
        m->u.append.commit += fz_below(c, 10);
        break;
    case 5:
        if (m->type == RAFT_MSG_APPEND && m->u.append.n_entries > 0) {
            /* Entry arrays belong to the queue copy: change terms/indexes
             * in place, or claim fewer entries. */
            struct raft_entry *e =
                (struct raft_entry *)&m->u.append
                    .entries[fz_below(c, m->u.append.n_entries)];
            e->term += fz_below(c, 3) - 1;
            e->index += fz_below(c, 3) - 1;
            if (fz_below(c, 2) && e->len > 0) {
                e->len--;
            }
        }
        break;
    case 6:
        m->u.snapshot_resp.next_offset = fz_below(c, 200);
        break;
    case 7:
        if (m->type == RAFT_MSG_APPEND_RESP) {
            m->u.append_resp.success = !m->u.append_resp.success;
        }
        break;
    case 8:
        m->u.vote.last_log_index += fz_below(c, 5);
        break;
    default:
        m->u.heartbeat.read_seq += fz_below(c, 3);
        break;
    }
}

/* A message made from scratch, near the cluster's real term and log. */
static void fz_forge(struct fz *c,
                     struct raft_message *m,
                     struct raft_entry *pool,
                     uint8_t *conf_buf,
                     size_t conf_len)
{
    raft_id to = 1 + fz_below(c, FZ_NODES);
    struct raft_node *r = c->r[to];
    raft_term term = raft_current_term(r);
    raft_index last = raft_last_index(r);
    memset(m, 0, sizeof(*m));
    m->type = (uint8_t)fz_below(c, RAFT_MSG_TYPE_MAX + 2);
    m->from = fz_below(c, FZ_NODES + 2);
    m->to = fz_below(c, 8) == 0 ? fz_below(c, FZ_NODES + 2) : to;
    m->term = fz_below(c, 16) == 0 ? fz_rand(c) % 4 : term + fz_below(c, 3);
    if (m->term > 0 && fz_below(c, 2)) {
        m->term--;
    }
    switch (m->type) {
    case RAFT_MSG_PREVOTE:
    case RAFT_MSG_VOTE:
        m->u.vote.last_log_index = last + fz_below(c, 5) - 2;
        m->u.vote.last_log_term = m->term - fz_below(c, 2);
        m->u.vote.transfer = fz_below(c, 4) == 0;
        break;
    case RAFT_MSG_APPEND: {
        uint32_t n = (uint32_t)fz_below(c, 5);
        raft_index prev = last + fz_below(c, 7) - 4;
        if (prev > last + 10) {
            prev = 0;
        }
        m->u.append.prev_index = prev;
        m->u.append.prev_term = prev == 0 ? 0 : m->term - fz_below(c, 2);
        m->u.append.commit = prev + fz_below(c, 6);
        m->u.append.n_entries = n;
        m->u.append.entries = n > 0 || fz_below(c, 2) ? pool : NULL;
        for (uint32_t i = 0; i < n; i++) {
            struct raft_entry *e = &pool[i];
            memset(e, 0, sizeof(*e));
            e->index = prev + 1 + i + (fz_below(c, 20) == 0);
            e->term = m->term - (fz_below(c, 4) == 0);
            e->type = RAFT_ENTRY_NORMAL;
            e->len = (uint32_t)fz_below(c, 32);
            e->data = fz_below(c, 30) == 0 ? NULL : fz_bytes;
            if (fz_below(c, 10) == 0) {
                /* A configuration: the real one (so the cluster keeps its
                 * members) or a mangled copy of it. */
                e->type = RAFT_ENTRY_CONF;
                e->data = conf_buf;
                e->len = (uint32_t)conf_len;
                if (fz_below(c, 2)) {
                    e->len = (uint32_t)fz_below(c, conf_len + 1);
                }
            } else if (fz_below(c, 30) == 0) {
                e->type = (uint8_t)fz_below(c, 256);
            }
        }
        break;
    }
    case RAFT_MSG_APPEND_RESP:
        m->u.append_resp.success = fz_below(c, 2);
        m->u.append_resp.index = last + fz_below(c, 5) - 3;
        m->u.append_resp.hint_term = term - fz_below(c, 3);
        m->u.append_resp.hint_index = fz_below(c, last + 2);
        break;
    case RAFT_MSG_HEARTBEAT:
        m->u.heartbeat.commit = last + fz_below(c, 5) - 2;
        m->u.heartbeat.read_seq = fz_below(c, 1000);
        break;
    case RAFT_MSG_HEARTBEAT_RESP:
        m->u.heartbeat_resp.read_seq = fz_below(c, 1000);
        break;
    case RAFT_MSG_SNAPSHOT: {
        struct raft_msg_snapshot *s = &m->u.snapshot;
        s->meta.index = last + fz_below(c, 8) - 4;
        s->meta.term = m->term - fz_below(c, 2);
        s->meta.size = fz_below(c, 101);
        s->meta.conf = c->conf;
        if (fz_below(c, 8) == 0) {
            s->meta.conf.members[0].role = 9;
        }
        s->offset = fz_below(c, 4) * 32;
        s->len = (uint32_t)fz_below(c, 40);
        if (fz_below(c, 2) && s->offset <= s->meta.size) {
            uint64_t left = s->meta.size - s->offset;
            s->len = (uint32_t)(left < 32 ? left : 32);
        }
        s->done = s->offset + s->len == s->meta.size;
        if (fz_below(c, 10) == 0) {
            s->done = !s->done;
        }
        s->data = fz_below(c, 20) == 0 ? NULL : fz_bytes;
        break;
    }
    case RAFT_MSG_SNAPSHOT_RESP:
        m->u.snapshot_resp.index = last + fz_below(c, 5) - 3;
        m->u.snapshot_resp.next_offset = fz_below(c, 140);
        m->u.snapshot_resp.done = fz_below(c, 3) == 0;
        break;
    case RAFT_MSG_READ_INDEX:
    case RAFT_MSG_READ_INDEX_RESP:
        m->u.read_index.ctx = fz_below(c, 8);
        m->u.read_index.index = last + fz_below(c, 5) - 2;
        m->u.read_index.ok = fz_below(c, 2);
        break;
    default:
        break;
    }
}

enum fz_mode {
    FZ_QUIET,   /* deliver everything, in order */
    FZ_FAULTY,  /* lose, duplicate and delay messages */
    FZ_HOSTILE, /* also corrupt them */
};

static void fz_deliver_all(struct fz *c, enum fz_mode mode)
{
    bool faulty = mode != FZ_QUIET;
    for (int round = 0; round < 100 && c->n > 0; round++) {
        size_t n = c->n;
        struct fz_msg *batch = malloc(n * sizeof(*batch));
        ck_assert_ptr_nonnull(batch);
        memcpy(batch, c->q, n * sizeof(*batch));
        c->n = 0;
        for (size_t i = 0; i < n; i++) {
            struct raft_message m = batch[i].m;
            if (faulty && fz_below(c, 20) == 0) {
                continue; /* lost */
            }
            if (faulty && fz_below(c, 10) == 0) {
                /* Delayed: it goes to the back of the queue, and the queue
                 * now owns its entries. */
                if (c->n == c->cap) {
                    c->cap = c->cap ? c->cap * 2 : 64;
                    c->q = realloc(c->q, c->cap * sizeof(*c->q));
                    ck_assert_ptr_nonnull(c->q);
                }
                c->q[c->n++] = batch[i];
                batch[i].entries = NULL;
                continue;
            }
            if (mode == FZ_HOSTILE && fz_below(c, 6) == 0) {
                fz_fix_bools(&m);
                fz_mutate(c, &m);
                fz_fix_bools(&m);
            }
            fz_step(c, &m);
            if (faulty && fz_below(c, 20) == 0) {
                fz_step(c, &batch[i].m); /* duplicated */
            }
        }
        for (size_t i = 0; i < n; i++) {
            fz_free(&batch[i]);
        }
        free(batch);
        fz_ready_all(c);
    }
}

/* Makes a forged message one that no honest server could be fooled by:
 * from an older term than its receiver's, or with a broken header. */
static void fz_defang(struct fz *c, struct raft_message *m)
{
    raft_id to = m->to >= 1 && m->to <= FZ_NODES ? m->to : 1;
    raft_term term = raft_current_term(c->r[to]);
    if (term > 1 && fz_below(c, 2)) {
        m->term = 1 + fz_below(c, term - 1);
        return;
    }
    switch (fz_below(c, 4)) {
    case 0:
        m->type = fz_below(c, 2) ? 0 : RAFT_MSG_TYPE_MAX + 1;
        break;
    case 1:
        m->from = 0;
        break;
    case 2:
        m->from = to;
        m->to = to;
        break;
    default:
        m->term = 0;
        break;
    }
}

static raft_id fz_leader(struct fz *c)
{
    raft_id best = 0;
    for (raft_id id = 1; id <= FZ_NODES; id++) {
        if (raft_state_of(c->r[id]) == RAFT_LEADER &&
            (best == 0 ||
             raft_current_term(c->r[id]) > raft_current_term(c->r[best]))) {
            best = id;
        }
    }
    return best;
}

static void fz_tick_all(struct fz *c)
{
    for (raft_id id = 1; id <= FZ_NODES; id++) {
        raft_tick(c->r[id]);
    }
    fz_ready_all(c);
}

/* Runs a 3-node cluster for 4000 ticks while thousands of random messages
 * (and, in FZ_HOSTILE mode, corrupted real ones) are stepped into it, then
 * heals the network; returns whether a leader then commits a new entry.
 * Every step must return 0 or RAFT_EINVAL and keep basic invariants. */
static bool fz_run(uint64_t seed, enum fz_mode mode)
{
    struct fz c;
    memset(&c, 0, sizeof(c));
    c.rng = 0x9e3779b97f4a7c15ULL ^ seed;
    for (size_t i = 0; i < sizeof(fz_bytes); i++) {
        fz_bytes[i] = (uint8_t)(i * 7);
    }
    c.conf.n = FZ_NODES;
    for (uint32_t i = 0; i < FZ_NODES; i++) {
        c.conf.members[i].id = i + 1;
        c.conf.members[i].role = RAFT_VOTER;
    }
    uint8_t conf_buf[RAFT_CONF_ENCODED_MAX];
    size_t conf_len;
    raft_conf_encode(&c.conf, conf_buf, &conf_len);
    for (raft_id id = 1; id <= FZ_NODES; id++) {
        struct raft_config cfg;
        raft_config_default(&cfg, id, 7);
        cfg.snapshot_chunk_bytes = 32;
        cfg.snapshot_trailing = 2;
        cfg.max_entry_bytes = 64;
        ck_assert_int_eq(raft_node_create(&cfg, &c.r[id]), 0);
        ck_assert_int_eq(raft_bootstrap(c.r[id], &c.conf), 0);
    }

    struct raft_entry pool[8];
    for (int step = 0; step < 4000; step++) {
        fz_tick_all(&c);
        raft_id l = fz_leader(&c);
        if (l != 0 && fz_below(&c, 3) == 0) {
            (void)raft_propose(c.r[l], fz_bytes, (uint32_t)fz_below(&c, 16),
                               NULL, NULL);
        }
        if (l != 0 && fz_below(&c, 50) == 0) {
            (void)raft_snapshot_taken(c.r[l], raft_applied_index(c.r[l]), 100);
        }
        if (fz_below(&c, 40) == 0) {
            (void)raft_read_index(c.r[1 + fz_below(&c, FZ_NODES)], 1);
        }
        for (int k = 0; k < 3; k++) {
            struct raft_message m;
            fz_forge(&c, &m, pool, conf_buf, conf_len);
            if (mode != FZ_HOSTILE) {
                fz_defang(&c, &m);
            }
            fz_step(&c, &m);
        }
        fz_ready_all(&c);
        fz_deliver_all(&c, mode);
    }

    /* Quiet network: a leader emerges and commits a new entry. */
    bool committed = false;
    raft_id l = 0;
    raft_index idx = 0;
    raft_term term = 0;
    for (int t = 0; t < 2000 && !committed; t++) {
        fz_tick_all(&c);
        fz_deliver_all(&c, FZ_QUIET);
        raft_id now = fz_leader(&c);
        if (now != 0 && (now != l || raft_current_term(c.r[now]) != term)) {
            l = now;
            term = raft_current_term(c.r[l]);
            if (raft_propose(c.r[l], (const uint8_t *)"live", 4, &idx, NULL) !=
                0) {
                l = 0;
            }
            fz_ready_all(&c);
            fz_deliver_all(&c, FZ_QUIET);
        }
        if (l != 0 && raft_commit_index(c.r[l]) >= idx &&
            raft_term_at(c.r[l], idx) == term) {
            committed = true;
        }
    }
    for (size_t i = 0; i < c.n; i++) {
        fz_free(&c.q[i]);
    }
    free(c.q);
    for (raft_id id = 1; id <= FZ_NODES; id++) {
        raft_node_destroy(c.r[id]);
    }
    return committed;
}

/* Thousands of seeded random and corrupted messages, many of them
 * plausible enough to be accepted, never crash a node (the sanitizer build
 * checks memory and arithmetic) nor break its basic invariants. Raft does
 * not tolerate Byzantine peers, so a forged but well-formed append may
 * leave logs that cannot be reconciled: liveness is not asserted here. */
START_TEST(test_untrusted_random_messages_never_crash)
{
    (void)fz_run((uint64_t)_i + 1, FZ_HOSTILE);
}
END_TEST

/* Random messages that are malformed or from stale terms, on top of a
 * network that loses, duplicates and delays messages, leave the cluster
 * able to elect a leader and commit once the network heals. */
START_TEST(test_untrusted_random_noise_does_not_stop_the_cluster)
{
    ck_assert_msg(fz_run((uint64_t)_i + 100, FZ_FAULTY),
                  "seed %d: no commit after the noise stopped", _i + 100);
}
END_TEST

Suite *untrusted_suite(void)
{
    Suite *s = suite_create("untrusted");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_untrusted_bad_header_is_rejected);
    tcase_add_test(tc, test_untrusted_malformed_append_is_rejected);
    tcase_add_test(tc, test_untrusted_malformed_snapshot_chunk_is_rejected);
    tcase_add_test(tc, test_untrusted_impossible_senders_and_acks_are_rejected);
    tcase_add_test(tc, test_untrusted_indexes_beyond_the_maximum_are_rejected);
    tcase_add_test(
        tc,
        test_untrusted_forged_vote_with_enormous_term_has_no_lasting_effect);
    suite_add_tcase(s, tc);
    TCase *fuzz = tcase_create("random");
    tcase_set_timeout(fuzz, 120);
    tcase_add_loop_test(fuzz, test_untrusted_random_messages_never_crash, 0, 4);
    tcase_add_loop_test(
        fuzz, test_untrusted_random_noise_does_not_stop_the_cluster, 0, 4);
    suite_add_tcase(s, fuzz);
    return s;
}
