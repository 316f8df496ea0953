/*
 * test_snapshot.c - log compaction and InstallSnapshot (dissertation
 * chapter 5, paper §7).
 */
#include <check.h>
#include <string.h>

#include "fixture.h"
#include "suites.h"

/* Returns the message of @type to @to that update @u carries (in either
 * list), or NULL. */
static const struct raft_message *update_msg(const struct raft_update *u,
                                             uint8_t type,
                                             raft_id to)
{
    for (size_t i = 0; i < u->n_messages; i++) {
        if (u->messages[i].type == type && u->messages[i].to == to) {
            return &u->messages[i];
        }
    }
    for (size_t i = 0; i < u->n_messages_after_persist; i++) {
        const struct raft_message *m = &u->messages_after_persist[i];
        if (m->type == type && m->to == to) {
            return m;
        }
    }
    return NULL;
}

/* Runs ready cycles and delivers messages (like fx_settle) until node @id
 * produces an update carrying a message of @type to @to; that update is
 * left unhandled in @u. Fails the test if it never comes. */
static void settle_until(struct fx *f,
                         raft_id id,
                         uint8_t type,
                         raft_id to,
                         struct raft_update *u)
{
    for (int round = 0; round < 1000; round++) {
        for (raft_id i = 1; i <= f->n; i++) {
            if (i != id) {
                while (fx_ready(f, i)) {
                }
            }
        }
        while (raft_ready(fx_raft(f, id), u)) {
            if (update_msg(u, type, to) != NULL) {
                return;
            }
            fx_handle(f, id, u);
        }
        while (f->n_queue > 0) {
            fx_deliver_one(f, 0);
        }
    }
    ck_abort_msg("no message of type %d from %lu", type, (unsigned long)id);
}

/* Delivers the first queued message of @type from @from to @to (which must
 * exist) and returns a copy of its header and body. */
static struct raft_message deliver(struct fx *f,
                                   uint8_t type,
                                   raft_id from,
                                   raft_id to)
{
    struct fx_msg *q = fx_find(f, type, from, to);
    ck_assert_msg(q != NULL, "no message of type %d %lu->%lu", type,
                  (unsigned long)from, (unsigned long)to);
    struct raft_message m = q->m;
    m.u.snapshot.data = NULL; /* freed on delivery */
    fx_deliver_one(f, (size_t)(q - f->queue));
    return m;
}

/* Builds a 3-node cluster led by node 1 in which node 3 missed @n entries
 * that node 1 then compacted into a snapshot (no trailing entries). */
static void lagging_follower(struct fx *f, int n)
{
    fx_init(f, 3, 3, NULL);
    fx_elect(f, 1);
    fx_isolate(f, 3, true);
    for (int i = 0; i < n; i++) {
        ck_assert_int_eq(fx_propose(f, 1, "entry"), 0);
    }
    fx_snapshot(f, 1, 0);
    ck_assert_uint_eq(raft_first_index(fx_raft(f, 1)),
                      raft_last_index(fx_raft(f, 1)) + 1);
    fx_isolate(f, 3, false);
}

/* Snapshot bytes as fixture snapshots hold them: the applied index and the
 * state-machine hash first. */
static void fill_snapshot(uint8_t *buf, raft_index applied, uint64_t hash)
{
    memset(buf, 0, FX_SNAPSHOT_BYTES);
    memcpy(buf, &applied, sizeof(applied));
    memcpy(buf + 8, &hash, sizeof(hash));
}

static struct raft_message chunk_msg(raft_id from,
                                     raft_id to,
                                     raft_term term,
                                     const struct raft_snapshot_meta *meta,
                                     const uint8_t *data,
                                     uint64_t offset,
                                     uint32_t len)
{
    struct raft_message m;
    memset(&m, 0, sizeof(m));
    m.type = RAFT_MSG_SNAPSHOT;
    m.from = from;
    m.to = to;
    m.term = term;
    m.u.snapshot.meta = *meta;
    m.u.snapshot.offset = offset;
    m.u.snapshot.len = len;
    m.u.snapshot.done = offset + len == meta->size;
    m.u.snapshot.data = data + offset;
    return m;
}

static struct raft_snapshot_meta three_voter_meta(raft_index index,
                                                  raft_term term)
{
    struct raft_snapshot_meta meta;
    memset(&meta, 0, sizeof(meta));
    meta.index = index;
    meta.term = term;
    meta.size = FX_SNAPSHOT_BYTES;
    meta.conf.n = 3;
    for (uint32_t i = 0; i < 3; i++) {
        meta.conf.members[i].id = i + 1;
        meta.conf.members[i].role = RAFT_VOTER;
    }
    return meta;
}

/* §5.1 (dissertation): taking a snapshot discards the log up to its index,
 * except snapshot_trailing entries kept for slightly lagging followers. */
START_TEST(test_snapshot_taken_compacts_log_keeping_trailing_entries)
{
    struct fx f;
    struct raft_config cfg;
    raft_config_default(&cfg, 1, 1);
    cfg.check_quorum = false;
    cfg.snapshot_chunk_bytes = 32;
    cfg.snapshot_trailing = 2;
    fx_init(&f, 3, 3, &cfg);
    fx_elect(&f, 1);
    for (int i = 0; i < 5; i++) {
        ck_assert_int_eq(fx_propose(&f, 1, "c"), 0);
    }
    struct raft_node *r = fx_raft(&f, 1);
    ck_assert_uint_eq(raft_last_index(r), 7);
    ck_assert_uint_eq(raft_applied_index(r), 7);
    ck_assert_uint_eq(raft_first_index(r), 1);

    /* Past what was applied, or below the log's start: refused. */
    ck_assert_int_eq(raft_snapshot_taken(r, 8, FX_SNAPSHOT_BYTES), RAFT_EINVAL);

    ck_assert_int_eq(raft_snapshot_taken(r, 6, FX_SNAPSHOT_BYTES), 0);
    const struct raft_snapshot_meta *s = raft_snapshot_of(r);
    ck_assert_uint_eq(s->index, 6);
    ck_assert_uint_eq(s->term, 2);
    ck_assert_uint_eq(s->size, FX_SNAPSHOT_BYTES);
    ck_assert_uint_eq(s->conf.n, 3);
    /* Entries 1..4 are gone, 5..7 stay. */
    ck_assert_uint_eq(raft_first_index(r), 5);
    ck_assert_uint_eq(raft_last_index(r), 7);
    ck_assert_ptr_null(raft_entry_at(r, 4));
    ck_assert_ptr_nonnull(raft_entry_at(r, 5));
    ck_assert_uint_eq(raft_term_at(r, 4), 2); /* the offset's term is kept */
    ck_assert_uint_eq(raft_term_at(r, 3), 0);

    /* An older snapshot than the one we have changes nothing. */
    ck_assert_int_eq(raft_snapshot_taken(r, 5, FX_SNAPSHOT_BYTES), 0);
    ck_assert_uint_eq(raft_snapshot_of(r)->index, 6);
    ck_assert_uint_eq(raft_first_index(r), 5);
    ck_assert_int_eq(raft_snapshot_taken(r, 3, FX_SNAPSHOT_BYTES), RAFT_EINVAL);

    ck_assert_int_eq(raft_snapshot_taken(r, 7, FX_SNAPSHOT_BYTES), 0);
    ck_assert_uint_eq(raft_first_index(r), 6);

    /* The cluster goes on as before. */
    ck_assert_int_eq(fx_propose(&f, 1, "d"), 0);
    ck_assert_uint_eq(raft_commit_index(fx_raft(&f, 2)), 8);
    fx_check_applied_agree(&f);
    fx_close(&f);
}
END_TEST

/* §7 / Figure 5.3: a follower whose next entries were compacted receives
 * the snapshot in chunks, acknowledges each, installs it when done, and
 * then catches up from the log. */
START_TEST(test_snapshot_sent_in_chunks_to_follower_behind_compaction)
{
    struct fx f;
    lagging_follower(&f, 5);
    struct raft_node *leader = fx_raft(&f, 1);
    struct raft_node *r3 = fx_raft(&f, 3);
    const struct raft_snapshot_meta snap = *raft_snapshot_of(leader);
    ck_assert_uint_eq(snap.index, 7);
    ck_assert_uint_eq(raft_last_index(r3), 2);

    f.hold = true;
    raft_tick(leader); /* a heartbeat: node 3 answers, leader probes it */
    struct raft_update u;
    settle_until(&f, 1, RAFT_MSG_SNAPSHOT, 3, &u);

    static const struct
    {
        uint64_t offset;
        uint32_t len;
        bool done;
    } chunks[] = {
        {0, 32, false}, {32, 32, false}, {64, 32, false}, {96, 4, true}};
    for (size_t i = 0; i < 4; i++) {
        /* The core names the bytes; the driver reads and sends them. */
        const struct raft_message *m = update_msg(&u, RAFT_MSG_SNAPSHOT, 3);
        ck_assert_ptr_nonnull(m);
        ck_assert_uint_eq(m->from, 1);
        ck_assert_uint_eq(m->term, raft_current_term(leader));
        ck_assert_uint_eq(m->u.snapshot.meta.index, snap.index);
        ck_assert_uint_eq(m->u.snapshot.meta.term, snap.term);
        ck_assert_uint_eq(m->u.snapshot.meta.size, FX_SNAPSHOT_BYTES);
        ck_assert_uint_eq(m->u.snapshot.meta.conf.n, 3);
        ck_assert_uint_eq(m->u.snapshot.offset, chunks[i].offset);
        ck_assert_uint_eq(m->u.snapshot.len, chunks[i].len);
        ck_assert(m->u.snapshot.done == chunks[i].done);
        ck_assert_ptr_null(m->u.snapshot.data);
        fx_handle(&f, 1, &u);
        deliver(&f, RAFT_MSG_SNAPSHOT, 1, 3);

        /* The follower stages the chunk and acknowledges it only after
         * persisting it. */
        struct raft_update u3;
        ck_assert(raft_ready(r3, &u3));
        ck_assert_uint_eq(u3.n_snapshot_chunks, 1);
        ck_assert_uint_eq(u3.snapshot_chunks[0].offset, chunks[i].offset);
        ck_assert_uint_eq(u3.snapshot_chunks[0].len, chunks[i].len);
        ck_assert_uint_eq(u3.snapshot_chunks[0].meta.index, snap.index);
        ck_assert_mem_eq(u3.snapshot_chunks[0].data,
                         fx_node(&f, 1)->snap_data + chunks[i].offset,
                         chunks[i].len);
        ck_assert_uint_eq(u3.n_messages, 0);
        const struct raft_message *ack =
            update_msg(&u3, RAFT_MSG_SNAPSHOT_RESP, 1);
        ck_assert_ptr_nonnull(ack);
        ck_assert_uint_eq(ack->u.snapshot_resp.index, snap.index);
        ck_assert_uint_eq(ack->u.snapshot_resp.next_offset,
                          chunks[i].offset + chunks[i].len);
        ck_assert(ack->u.snapshot_resp.done == chunks[i].done);
        if (!chunks[i].done) {
            ck_assert_ptr_null(u3.snapshot);
            fx_handle(&f, 3, &u3);
            deliver(&f, RAFT_MSG_SNAPSHOT_RESP, 3, 1);
            ck_assert(raft_ready(leader, &u));
            continue;
        }
        /* The last chunk completes the snapshot: its log (entries 1-2, of
         * which entry 2 differs from nothing the snapshot holds) is
         * replaced. */
        ck_assert_ptr_nonnull(u3.snapshot);
        ck_assert_uint_eq(u3.snapshot->index, snap.index);
        ck_assert_uint_eq(u3.snapshot->term, snap.term);
        ck_assert_uint_eq(u3.snapshot->size, FX_SNAPSHOT_BYTES);
        ck_assert(u3.snapshot_reset_log);
        ck_assert_uint_eq(u3.n_committed, 0);
        ck_assert_uint_eq(u3.hard_state.commit, snap.index);
        fx_handle(&f, 3, &u3);
    }
    ck_assert_uint_eq(raft_first_index(r3), snap.index + 1);
    ck_assert_uint_eq(raft_last_index(r3), snap.index);
    ck_assert_uint_eq(raft_commit_index(r3), snap.index);
    ck_assert_uint_eq(raft_snapshot_of(r3)->index, snap.index);
    ck_assert_uint_eq(raft_stats_of(r3)->snapshots_installed, 1);
    ck_assert_uint_eq(fx_node(&f, 3)->n_entries, 0);

    /* The leader learns it is done and replicates from the log again. */
    f.hold = false;
    fx_settle(&f);
    ck_assert_uint_eq(raft_match_index(leader, 3), snap.index);
    ck_assert_int_eq(fx_propose(&f, 1, "after"), 0);
    fx_tick(&f, 1, 1);
    ck_assert_uint_eq(raft_last_index(r3), snap.index + 1);
    ck_assert_uint_eq(raft_commit_index(r3), snap.index + 1);
    ck_assert_uint_eq(fx_node(&f, 3)->applied, snap.index + 1);
    ck_assert_uint_eq(fx_node(&f, 3)->hash, fx_node(&f, 1)->hash);
    ck_assert_uint_eq(raft_stats_of(leader)->snapshots_sent, 1);
    ck_assert_uint_eq(raft_stats_of(r3)->snapshots_installed, 1);
    fx_check_applied_agree(&f);
    fx_close(&f);
}
END_TEST

/* Figure 5.3 receiver step 6: "If existing log entry has same index and
 * term as snapshot's last included entry, retain log entries following
 * it and reply." */
START_TEST(test_snapshot_follower_keeps_entries_after_matching_snapshot)
{
    struct fx f;
    fx_init(&f, 3, 3, NULL);
    struct raft_node *r = fx_raft(&f, 3);
    /* Node 3 holds uncommitted entries 2..5 of term 2 from leader 1. */
    struct raft_entry es[4];
    memset(es, 0, sizeof(es));
    for (int i = 0; i < 4; i++) {
        es[i].term = 2;
        es[i].index = (raft_index)(2 + i);
        es[i].type = RAFT_ENTRY_NORMAL;
    }
    struct raft_message m;
    memset(&m, 0, sizeof(m));
    m.type = RAFT_MSG_APPEND;
    m.from = 1;
    m.to = 3;
    m.term = 2;
    m.u.append.prev_index = 1;
    m.u.append.prev_term = 1;
    m.u.append.commit = 1;
    m.u.append.n_entries = 4;
    m.u.append.entries = es;
    ck_assert_int_eq(raft_step(r, &m), 0);
    f.hold = true;
    fx_settle(&f);
    fx_drop_all(&f);
    ck_assert_uint_eq(raft_commit_index(r), 1);

    /* The leader sends a snapshot at index 3 (term 2). */
    uint8_t data[FX_SNAPSHOT_BYTES];
    /* The state machine of the fixture had applied entry 1 only; a
     * snapshot at 3 claims 3 applied entries: fake its bytes. */
    fill_snapshot(data, 3, 0x1234);
    struct raft_snapshot_meta meta = three_voter_meta(3, 2);
    for (uint64_t off = 0; off < FX_SNAPSHOT_BYTES; off += 32) {
        uint32_t len =
            (uint32_t)(FX_SNAPSHOT_BYTES - off < 32 ? FX_SNAPSHOT_BYTES - off
                                                    : 32);
        m = chunk_msg(1, 3, 2, &meta, data, off, len);
        ck_assert_int_eq(raft_step(r, &m), 0);
    }
    struct raft_update u;
    ck_assert(raft_ready(r, &u));
    ck_assert_uint_eq(u.n_snapshot_chunks, 4);
    ck_assert_ptr_nonnull(u.snapshot);
    ck_assert_uint_eq(u.snapshot->index, 3);
    ck_assert(!u.snapshot_reset_log);
    ck_assert_uint_eq(u.n_entries, 0);
    const struct raft_message *ack = update_msg(&u, RAFT_MSG_SNAPSHOT_RESP, 1);
    ck_assert_ptr_nonnull(ack);
    fx_handle(&f, 3, &u);
    fx_drop_all(&f);
    ck_assert_uint_eq(raft_first_index(r), 4);
    ck_assert_uint_eq(raft_last_index(r), 5);
    ck_assert_uint_eq(raft_term_at(r, 3), 2);
    ck_assert_uint_eq(raft_term_at(r, 5), 2);
    ck_assert_uint_eq(raft_commit_index(r), 3);
    /* The fixture disk kept entries 4 and 5 as the contract says. */
    ck_assert_uint_eq(fx_node(&f, 3)->n_entries, 2);
    ck_assert_uint_eq(fx_node(&f, 3)->entries[0].index, 4);
    ck_assert_uint_eq(fx_node(&f, 3)->applied, 3);
    fx_close(&f);
}
END_TEST

/* Figure 5.3 receiver step 2 ("Create new snapshot file if first chunk")
 * and 3 ("Write data into snapshot file at given offset"): a chunk out of
 * order or seen before is not staged, and the answer names the offset the
 * follower expects, so the leader resumes from there. */
START_TEST(test_snapshot_out_of_order_and_duplicate_chunks_are_not_staged)
{
    struct fx f;
    fx_init(&f, 3, 3, NULL);
    f.hold = true;
    struct raft_node *r = fx_raft(&f, 3);
    uint8_t data[FX_SNAPSHOT_BYTES];
    fill_snapshot(data, 9, 0x99);
    struct raft_snapshot_meta meta = three_voter_meta(9, 2);
    struct
    {
        uint64_t offset; /* chunk sent */
        uint64_t expect; /* next_offset answered */
        size_t staged;   /* chunks in the update */
    } steps[] = {
        {32, 0, 0},               /* before the first chunk */
        {0, 32, 1},               /* the first chunk */
        {64, 32, 0},              /* skips a chunk */
        {32, 64, 1},              /* the expected one */
        {32, 64, 0},              /* duplicate */
        {64, 96, 1}, {64, 96, 0}, /* duplicate again */
    };
    for (size_t i = 0; i < sizeof(steps) / sizeof(steps[0]); i++) {
        struct raft_message m =
            chunk_msg(1, 3, 2, &meta, data, steps[i].offset, 32);
        ck_assert_int_eq(raft_step(r, &m), 0);
        struct raft_update u;
        ck_assert(raft_ready(r, &u));
        ck_assert_msg(u.n_snapshot_chunks == steps[i].staged, "step %zu", i);
        const struct raft_message *ack =
            update_msg(&u, RAFT_MSG_SNAPSHOT_RESP, 1);
        ck_assert_ptr_nonnull(ack);
        ck_assert_uint_eq(ack->u.snapshot_resp.index, 9);
        ck_assert_msg(ack->u.snapshot_resp.next_offset == steps[i].expect,
                      "step %zu: next_offset %lu", i,
                      (unsigned long)ack->u.snapshot_resp.next_offset);
        ck_assert(!ack->u.snapshot_resp.done);
        ck_assert_ptr_null(u.snapshot);
        fx_handle(&f, 3, &u);
        fx_drop_all(&f);
    }
    /* The last chunk completes the install with exactly the right bytes. */
    struct raft_message m = chunk_msg(1, 3, 2, &meta, data, 96, 4);
    ck_assert_int_eq(raft_step(r, &m), 0);
    fx_settle(&f);
    fx_drop_all(&f);
    ck_assert_uint_eq(raft_snapshot_of(r)->index, 9);
    ck_assert_mem_eq(fx_node(&f, 3)->snap_data, data, FX_SNAPSHOT_BYTES);
    ck_assert_uint_eq(fx_node(&f, 3)->applied, 9);
    ck_assert_uint_eq(raft_stats_of(r)->snapshots_installed, 1);
    fx_close(&f);
}
END_TEST

/* Chapter 5 under the update contract: when one batch completes a
 * snapshot, a chunk at offset 0 of a newer snapshot arriving in the same
 * batch must not be staged (it would discard the staging area the caller
 * is about to install from); it is refused with next_offset 0 and resent
 * later (simulator seed 433848). */
START_TEST(test_snapshot_newer_chunk_refused_while_install_pending)
{
    struct fx f;
    fx_init(&f, 3, 3, NULL);
    f.hold = true;
    struct raft_node *r = fx_raft(&f, 3);
    uint8_t data[FX_SNAPSHOT_BYTES], newer[FX_SNAPSHOT_BYTES];
    fill_snapshot(data, 9, 0x99);
    fill_snapshot(newer, 12, 0x12);
    struct raft_snapshot_meta meta = three_voter_meta(9, 2);
    struct raft_snapshot_meta meta2 = three_voter_meta(12, 2);
    for (uint64_t off = 0; off < 96; off += 32) {
        struct raft_message m = chunk_msg(1, 3, 2, &meta, data, off, 32);
        ck_assert_int_eq(raft_step(r, &m), 0);
        fx_settle(&f);
        fx_drop_all(&f);
    }
    /* The last chunk of 9 and the first of 12 arrive in one batch. */
    struct raft_message last = chunk_msg(1, 3, 2, &meta, data, 96, 4);
    struct raft_message first = chunk_msg(1, 3, 2, &meta2, newer, 0, 32);
    ck_assert_int_eq(raft_step(r, &last), 0);
    ck_assert_int_eq(raft_step(r, &first), 0);
    struct raft_update u;
    ck_assert(raft_ready(r, &u));
    ck_assert_ptr_nonnull(u.snapshot);
    ck_assert_uint_eq(u.snapshot->index, 9);
    ck_assert_uint_eq(u.n_snapshot_chunks, 1);
    ck_assert_uint_eq(u.snapshot_chunks[0].meta.index, 9);
    bool refused = false;
    for (size_t i = 0; i < u.n_messages_after_persist; i++) {
        const struct raft_message *a = &u.messages_after_persist[i];
        if (a->type == RAFT_MSG_SNAPSHOT_RESP &&
            a->u.snapshot_resp.index == 12) {
            refused =
                !a->u.snapshot_resp.done && a->u.snapshot_resp.next_offset == 0;
        }
    }
    ck_assert(refused);
    fx_handle(&f, 3, &u);
    fx_drop_all(&f);
    ck_assert_mem_eq(fx_node(&f, 3)->snap_data, data, FX_SNAPSHOT_BYTES);
    ck_assert_uint_eq(fx_node(&f, 3)->applied, 9);
    /* Once installed, the newer snapshot's first chunk is taken. */
    ck_assert_int_eq(raft_step(r, &first), 0);
    ck_assert(raft_ready(r, &u));
    ck_assert_uint_eq(u.n_snapshot_chunks, 1);
    ck_assert_uint_eq(u.snapshot_chunks[0].meta.index, 12);
    fx_handle(&f, 3, &u);
    fx_drop_all(&f);
    fx_close(&f);
}
END_TEST

/* Chapter 5: InstallSnapshot chunks travel one at a time; if a chunk or
 * its answer is lost, the leader sends it again after an election timeout
 * of silence, from the last acknowledged offset. */
START_TEST(test_snapshot_lost_chunk_is_resent_after_idle_timeout)
{
    struct fx f;
    lagging_follower(&f, 3);
    struct raft_node *leader = fx_raft(&f, 1);
    f.hold = true;
    raft_tick(leader);
    struct raft_update u;
    settle_until(&f, 1, RAFT_MSG_SNAPSHOT, 3, &u);
    fx_handle(&f, 1, &u);
    /* The first chunk arrives and is acknowledged. */
    deliver(&f, RAFT_MSG_SNAPSHOT, 1, 3);
    fx_settle(&f);
    deliver(&f, RAFT_MSG_SNAPSHOT_RESP, 3, 1);
    ck_assert(raft_ready(leader, &u));
    const struct raft_message *m = update_msg(&u, RAFT_MSG_SNAPSHOT, 3);
    ck_assert_ptr_nonnull(m);
    ck_assert_uint_eq(m->u.snapshot.offset, 32);
    fx_handle(&f, 1, &u);
    /* The second one is lost. */
    fx_drop_all(&f);
    for (unsigned t = 1; t < f.cfg.election_ticks; t++) {
        raft_tick(leader);
        if (raft_ready(leader, &u)) {
            ck_assert_ptr_null(update_msg(&u, RAFT_MSG_SNAPSHOT, 3));
            fx_handle(&f, 1, &u);
        }
        fx_drop_all(&f);
    }
    raft_tick(leader);
    ck_assert(raft_ready(leader, &u));
    m = update_msg(&u, RAFT_MSG_SNAPSHOT, 3);
    ck_assert_ptr_nonnull(m);
    ck_assert_uint_eq(m->u.snapshot.offset, 32);
    ck_assert_uint_eq(m->u.snapshot.len, 32);
    fx_handle(&f, 1, &u);
    /* From there the transfer completes. */
    f.hold = false;
    fx_settle(&f);
    fx_tick(&f, 1, 1);
    struct raft_node *r3 = fx_raft(&f, 3);
    ck_assert_uint_eq(raft_snapshot_of(r3)->index,
                      raft_snapshot_of(leader)->index);
    ck_assert_uint_eq(raft_commit_index(r3), raft_commit_index(leader));
    ck_assert_uint_eq(fx_node(&f, 3)->hash, fx_node(&f, 1)->hash);
    ck_assert_uint_eq(raft_stats_of(r3)->snapshots_installed, 1);
    fx_close(&f);
}
END_TEST

/* Figure 5.3: a snapshot that holds nothing the follower has not already
 * committed is not installed; the follower answers done with its commit
 * index so the leader moves on. */
START_TEST(test_snapshot_older_than_commit_is_answered_done_without_install)
{
    struct fx f;
    fx_init(&f, 3, 3, NULL);
    fx_elect(&f, 1);
    for (int i = 0; i < 3; i++) {
        ck_assert_int_eq(fx_propose(&f, 1, "x"), 0);
    }
    fx_tick(&f, 1, 1);
    struct raft_node *r = fx_raft(&f, 2);
    ck_assert_uint_eq(raft_commit_index(r), 5);
    raft_index last = raft_last_index(r);
    f.hold = true;
    uint8_t data[FX_SNAPSHOT_BYTES];
    fill_snapshot(data, 4, 0);
    struct raft_snapshot_meta meta = three_voter_meta(4, 2);
    struct raft_message m = chunk_msg(1, 2, 2, &meta, data, 0, 32);
    ck_assert_int_eq(raft_step(r, &m), 0);
    struct raft_update u;
    ck_assert(raft_ready(r, &u));
    ck_assert_uint_eq(u.n_snapshot_chunks, 0);
    ck_assert_ptr_null(u.snapshot);
    const struct raft_message *ack = update_msg(&u, RAFT_MSG_SNAPSHOT_RESP, 1);
    ck_assert_ptr_nonnull(ack);
    ck_assert(ack->u.snapshot_resp.done);
    ck_assert_uint_eq(ack->u.snapshot_resp.index, 5);
    fx_handle(&f, 2, &u);
    fx_drop_all(&f);
    ck_assert_uint_eq(raft_last_index(r), last);
    ck_assert_uint_eq(raft_first_index(r), 1);
    ck_assert_uint_eq(raft_snapshot_of(r)->index, 0);
    ck_assert_uint_eq(raft_stats_of(r)->snapshots_installed, 0);
    fx_close(&f);
}
END_TEST

/* §5.1: after a crash a server restarts from its latest snapshot plus the
 * log entries that follow it, and rejoins replication. */
START_TEST(test_snapshot_restart_from_snapshot_and_entries)
{
    struct fx f;
    fx_init(&f, 3, 3, NULL);
    fx_elect(&f, 1);
    for (int i = 0; i < 4; i++) {
        ck_assert_int_eq(fx_propose(&f, 1, "pre"), 0);
    }
    fx_tick(&f, 1, 1);
    fx_snapshot(&f, 2, 0);
    ck_assert_uint_eq(raft_snapshot_of(fx_raft(&f, 2))->index, 6);
    for (int i = 0; i < 3; i++) {
        ck_assert_int_eq(fx_propose(&f, 1, "post"), 0);
    }
    fx_tick(&f, 1, 1);
    struct raft_node *r = fx_raft(&f, 2);
    raft_term term = raft_current_term(r);
    raft_index last = raft_last_index(r);
    raft_index commit = raft_commit_index(r);
    uint64_t hash = fx_node(&f, 2)->hash;
    ck_assert_uint_eq(last, 9);
    ck_assert_uint_eq(fx_node(&f, 2)->n_entries, 3);

    fx_crash(&f, 2);
    fx_restart(&f, 2);
    r = fx_raft(&f, 2);
    ck_assert_uint_eq(raft_snapshot_of(r)->index, 6);
    ck_assert_uint_eq(raft_snapshot_of(r)->term, 2);
    ck_assert_uint_eq(raft_snapshot_of(r)->conf.n, 3);
    ck_assert_uint_eq(raft_first_index(r), 7);
    ck_assert_uint_eq(raft_last_index(r), last);
    ck_assert_uint_eq(raft_current_term(r), term);
    ck_assert_uint_eq(raft_voted_for(r), 1);
    ck_assert_uint_eq(raft_conf_of(r)->n, 3);
    /* The entries after the snapshot are applied again on restart. */
    ck_assert_uint_eq(raft_commit_index(r), commit);
    ck_assert_uint_eq(fx_node(&f, 2)->applied, commit);
    ck_assert_uint_eq(fx_node(&f, 2)->hash, hash);

    ck_assert_int_eq(fx_propose(&f, 1, "again"), 0);
    fx_tick(&f, 1, 1);
    ck_assert_uint_eq(raft_last_index(r), last + 1);
    ck_assert_uint_eq(fx_node(&f, 2)->applied, last + 1);
    fx_check_applied_agree(&f);
    fx_close(&f);
}
END_TEST

Suite *snapshot_suite(void)
{
    Suite *s = suite_create("snapshot");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc,
                   test_snapshot_taken_compacts_log_keeping_trailing_entries);
    tcase_add_test(tc,
                   test_snapshot_sent_in_chunks_to_follower_behind_compaction);
    tcase_add_test(
        tc, test_snapshot_follower_keeps_entries_after_matching_snapshot);
    tcase_add_test(
        tc, test_snapshot_out_of_order_and_duplicate_chunks_are_not_staged);
    tcase_add_test(tc, test_snapshot_newer_chunk_refused_while_install_pending);
    tcase_add_test(tc, test_snapshot_lost_chunk_is_resent_after_idle_timeout);
    tcase_add_test(
        tc, test_snapshot_older_than_commit_is_answered_done_without_install);
    tcase_add_test(tc, test_snapshot_restart_from_snapshot_and_entries);
    suite_add_tcase(s, tc);
    return s;
}
