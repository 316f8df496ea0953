/*
 * test_replication.c - §5.3 log replication, §5.4 safety (including the
 * Figure 8 commitment rule), §10.2 batching and pipelining.
 */
#include <check.h>
#include <string.h>

#include "fixture.h"
#include "suites.h"

static struct raft_entry entry(raft_term term, raft_index index)
{
    struct raft_entry e;
    memset(&e, 0, sizeof(e));
    e.term = term;
    e.index = index;
    e.type = RAFT_ENTRY_NORMAL;
    return e;
}

static struct raft_message append_msg(raft_id from,
                                      raft_id to,
                                      raft_term term,
                                      raft_index prev_index,
                                      raft_term prev_term,
                                      raft_index commit,
                                      const struct raft_entry *entries,
                                      uint32_t n)
{
    struct raft_message m;
    memset(&m, 0, sizeof(m));
    m.type = RAFT_MSG_APPEND;
    m.from = from;
    m.to = to;
    m.term = term;
    m.u.append.prev_index = prev_index;
    m.u.append.prev_term = prev_term;
    m.u.append.commit = commit;
    m.u.append.entries = entries;
    m.u.append.n_entries = n;
    return m;
}

/* §5.4.2: a new leader appends a blank entry of its own term and, once a
 * majority stores it, commits it and everything before it. */
START_TEST(test_replication_new_leader_commits_blank_entry)
{
    struct fx f;
    fx_init(&f, 3, 3, NULL);
    fx_elect(&f, 1);
    struct raft_node *r = fx_raft(&f, 1);
    ck_assert_uint_eq(raft_last_index(r), 2);
    ck_assert_uint_eq(raft_term_at(r, 2), raft_current_term(r));
    ck_assert_uint_eq(raft_entry_at(r, 2)->len, 0);
    ck_assert_uint_eq(raft_commit_index(r), 2);
    for (raft_id id = 1; id <= 3; id++) {
        ck_assert_uint_eq(fx_node(&f, id)->applied, 2);
    }
    fx_check_applied_agree(&f);
    fx_close(&f);
}
END_TEST

/* §5.3: an entry is committed once the leader has replicated it on a
 * majority; the leader then applies it and followers learn the commit
 * index. A minority alone cannot commit. */
START_TEST(test_replication_commits_on_majority_only)
{
    struct fx f;
    fx_init(&f, 5, 5, NULL);
    fx_elect(&f, 1);
    raft_index before = raft_commit_index(fx_raft(&f, 1));
    fx_isolate(&f, 4, true);
    fx_isolate(&f, 5, true);
    fx_cut(&f, 1, 2, true);
    /* Only 1 and 3 connected: 2 of 5 is not a majority. */
    ck_assert_int_eq(fx_propose(&f, 1, "a"), 0);
    ck_assert_uint_eq(raft_commit_index(fx_raft(&f, 1)), before);
    ck_assert_uint_eq(raft_last_index(fx_raft(&f, 3)), before + 1);
    fx_cut(&f, 1, 2, false);
    fx_tick(&f, 1, 1);
    ck_assert_uint_eq(raft_commit_index(fx_raft(&f, 1)), before + 1);
    ck_assert_uint_eq(fx_node(&f, 1)->applied, before + 1);
    fx_tick(&f, 1, 1);
    ck_assert_uint_eq(raft_commit_index(fx_raft(&f, 2)), before + 1);
    fx_check_applied_agree(&f);
    fx_close(&f);
}
END_TEST

/* §10.2.1: the leader sends its appends while it persists, but counts
 * itself toward a majority only once its own write is durable. */
START_TEST(test_replication_leader_counts_itself_after_persisting)
{
    struct fx f;
    fx_init(&f, 3, 3, NULL);
    fx_elect(&f, 1);
    struct raft_node *r = fx_raft(&f, 1);
    raft_index commit = raft_commit_index(r);
    raft_index idx;
    raft_term term;
    ck_assert_int_eq(raft_propose(r, (const uint8_t *)"v", 1, &idx, &term), 0);
    ck_assert_uint_eq(idx, commit + 1);
    ck_assert_uint_eq(term, raft_current_term(r));
    struct raft_update u;
    ck_assert(raft_ready(r, &u));
    ck_assert_uint_eq(u.n_entries, 1);
    ck_assert_uint_eq(u.entries[0].index, idx);
    /* Both appends may leave before the entry is durable. */
    ck_assert_uint_eq(u.n_messages, 2);
    ck_assert_uint_eq(u.messages[0].type, RAFT_MSG_APPEND);
    ck_assert_uint_eq(u.messages[0].u.append.n_entries, 1);
    ck_assert_uint_eq(u.messages[0].u.append.prev_index, commit);
    ck_assert_uint_eq(raft_match_index(r, 1), commit);
    /* Only once the caller persisted and advanced does the leader's own
     * match move. */
    fx_handle(&f, 1, &u);
    ck_assert_uint_eq(raft_match_index(r, 1), idx);
    fx_settle(&f);
    ck_assert_uint_eq(raft_commit_index(r), idx);
    fx_close(&f);
}
END_TEST

/* A one-voter cluster commits only after its own write is durable: nothing
 * is reported committed in the same update that carries the entry. */
START_TEST(test_replication_single_node_commits_after_persist)
{
    struct fx f;
    fx_init(&f, 1, 1, NULL);
    fx_elect(&f, 1);
    struct raft_node *r = fx_raft(&f, 1);
    raft_index idx;
    ck_assert_int_eq(raft_propose(r, (const uint8_t *)"v", 1, &idx, NULL), 0);
    struct raft_update u;
    ck_assert(raft_ready(r, &u));
    ck_assert_uint_eq(u.n_entries, 1);
    ck_assert_uint_eq(u.n_committed, 0);
    fx_handle(&f, 1, &u);
    ck_assert(raft_ready(r, &u));
    ck_assert_uint_eq(u.n_committed, 1);
    ck_assert_uint_eq(u.committed[0].index, idx);
    fx_handle(&f, 1, &u);
    fx_close(&f);
}
END_TEST

/* §5.3 consistency check: a follower refuses entries whose predecessor it
 * lacks, and tells the leader where its log ends. */
START_TEST(test_replication_follower_rejects_missing_predecessor)
{
    struct fx f;
    fx_init(&f, 3, 3, NULL);
    f.hold = true;
    struct raft_entry e = entry(2, 6);
    struct raft_message m = append_msg(1, 2, 2, 5, 2, 0, &e, 1);
    ck_assert_int_eq(raft_step(fx_raft(&f, 2), &m), 0);
    fx_settle(&f);
    struct fx_msg *r = fx_find(&f, RAFT_MSG_APPEND_RESP, 2, 1);
    ck_assert_ptr_nonnull(r);
    ck_assert(!r->m.u.append_resp.success);
    ck_assert_uint_eq(r->m.u.append_resp.index, 5);
    ck_assert_uint_eq(r->m.u.append_resp.hint_term, 0);
    ck_assert_uint_eq(r->m.u.append_resp.hint_index, 2);
    ck_assert_uint_eq(raft_last_index(fx_raft(&f, 2)), 1);
    fx_drop_all(&f);
    fx_close(&f);
}
END_TEST

/* §5.3: "If an existing entry conflicts with a new one (same index but
 * different terms), delete the existing entry and all that follow it." */
START_TEST(test_replication_conflicting_suffix_is_truncated)
{
    struct fx f;
    fx_init(&f, 3, 3, NULL);
    struct raft_node *r = fx_raft(&f, 2);
    struct raft_entry old[3] = {entry(2, 2), entry(2, 3), entry(2, 4)};
    struct raft_message m = append_msg(1, 2, 2, 1, 1, 1, old, 3);
    ck_assert_int_eq(raft_step(r, &m), 0);
    fx_settle(&f);
    ck_assert_uint_eq(raft_last_index(r), 4);
    ck_assert_uint_eq(fx_node(&f, 2)->n_entries, 4);

    /* A leader of term 3 has a different entry at index 3. */
    struct raft_entry newer[1] = {entry(3, 3)};
    m = append_msg(3, 2, 3, 2, 2, 1, newer, 1);
    ck_assert_int_eq(raft_step(r, &m), 0);
    struct raft_update u;
    ck_assert(raft_ready(r, &u));
    ck_assert_uint_eq(u.n_entries, 1);
    ck_assert_uint_eq(u.entries[0].index, 3);
    ck_assert_uint_eq(u.entries[0].term, 3);
    fx_handle(&f, 2, &u);
    ck_assert_uint_eq(raft_last_index(r), 3);
    ck_assert_uint_eq(raft_term_at(r, 3), 3);
    ck_assert_uint_eq(raft_term_at(r, 4), 0);
    /* The fixture disk followed the contract: entry 4 is gone. */
    ck_assert_uint_eq(fx_node(&f, 2)->n_entries, 3);
    ck_assert_uint_eq(fx_node(&f, 2)->entries[2].term, 3);
    fx_drop_all(&f);
    fx_close(&f);
}
END_TEST

/* Figure 2, AppendEntries receiver step 5: "set commitIndex =
 * min(leaderCommit, index of last new entry)". Entries after the last one
 * the leader sent may be a stale suffix the leader has not overwritten
 * yet; committing them would apply entries no leader ever committed. */
START_TEST(test_replication_follower_commits_only_up_to_last_new_entry)
{
    struct fx f;
    fx_init(&f, 3, 3, NULL);
    struct raft_node *r = fx_raft(&f, 2);
    /* Entries 2-4 of term 2 from an old leader. */
    struct raft_entry old[3] = {entry(2, 2), entry(2, 3), entry(2, 4)};
    struct raft_message m = append_msg(1, 2, 2, 1, 1, 1, old, 3);
    ck_assert_int_eq(raft_step(r, &m), 0);
    fx_settle(&f);
    /* A term-3 leader whose log agrees up to 3 (and has another entry 4)
     * sends only entry 2, with its commit index at 4. */
    m = append_msg(3, 2, 3, 1, 1, 4, old, 1);
    ck_assert_int_eq(raft_step(r, &m), 0);
    ck_assert_uint_eq(raft_commit_index(r), 2);
    fx_settle(&f);
    ck_assert_uint_le(fx_node(&f, 2)->applied, 2);
    fx_drop_all(&f);
    fx_close(&f);
}
END_TEST

/* §5.3: an append whose entries the follower already has (a duplicate or
 * reordered message) must not truncate anything after them. */
START_TEST(test_replication_stale_append_does_not_truncate)
{
    struct fx f;
    fx_init(&f, 3, 3, NULL);
    struct raft_node *r = fx_raft(&f, 2);
    struct raft_entry es[3] = {entry(2, 2), entry(2, 3), entry(2, 4)};
    struct raft_message m = append_msg(1, 2, 2, 1, 1, 1, es, 3);
    ck_assert_int_eq(raft_step(r, &m), 0);
    fx_settle(&f);
    m = append_msg(1, 2, 2, 1, 1, 1, es, 1); /* the first one again */
    ck_assert_int_eq(raft_step(r, &m), 0);
    fx_settle(&f);
    ck_assert_uint_eq(raft_last_index(r), 4);
    fx_close(&f);
}
END_TEST

/* §5.3 optimization: the rejection carries the conflicting term and the
 * first index of it, so the leader skips a whole term per round trip. */
START_TEST(test_replication_fast_backtracking_skips_conflicting_term)
{
    struct fx f;
    fx_init(&f, 3, 3, NULL);
    f.hold = true;
    struct raft_node *r = fx_raft(&f, 3);
    /* Node 3 holds entries 2..6 of term 2 from a deposed leader. */
    struct raft_entry es[5] = {entry(2, 2), entry(2, 3), entry(2, 4),
                               entry(2, 5), entry(2, 6)};
    struct raft_message m = append_msg(1, 3, 2, 1, 1, 1, es, 5);
    ck_assert_int_eq(raft_step(r, &m), 0);
    fx_settle(&f);
    fx_drop_all(&f);
    /* A term-4 leader probes at prev (6, term 4). */
    m = append_msg(2, 3, 4, 6, 4, 1, NULL, 0);
    ck_assert_int_eq(raft_step(r, &m), 0);
    fx_settle(&f);
    struct fx_msg *resp = fx_find(&f, RAFT_MSG_APPEND_RESP, 3, 2);
    ck_assert_ptr_nonnull(resp);
    ck_assert(!resp->m.u.append_resp.success);
    ck_assert_uint_eq(resp->m.u.append_resp.index, 6);
    ck_assert_uint_eq(resp->m.u.append_resp.hint_term, 2);
    ck_assert_uint_eq(resp->m.u.append_resp.hint_index, 2);
    fx_drop_all(&f);
    fx_close(&f);
}
END_TEST

/* End to end: a follower with a long divergent suffix converges to the
 * leader's log, and the leader needs few probes to find the match. */
START_TEST(test_replication_divergent_follower_converges)
{
    struct fx f;
    fx_init(&f, 3, 3, NULL);
    fx_elect(&f, 1);
    /* Node 1 appends 20 entries nobody else gets, then loses leadership. */
    fx_isolate(&f, 1, true);
    for (int i = 0; i < 20; i++) {
        ck_assert_int_eq(fx_propose(&f, 1, "lost"), 0);
    }
    fx_elect(&f, 2);
    for (int i = 0; i < 5; i++) {
        ck_assert_int_eq(fx_propose(&f, 2, "kept"), 0);
    }
    fx_isolate(&f, 1, false);
    fx_tick(&f, 2, 3);
    ck_assert_uint_eq(raft_last_index(fx_raft(&f, 1)),
                      raft_last_index(fx_raft(&f, 2)));
    for (raft_index i = 1; i <= raft_last_index(fx_raft(&f, 2)); i++) {
        ck_assert_uint_eq(raft_term_at(fx_raft(&f, 1), i),
                          raft_term_at(fx_raft(&f, 2), i));
    }
    fx_check_applied_agree(&f);
    fx_close(&f);
}
END_TEST

/* §5.4.2, Figure 8: the leader's blank entry is withheld from followers,
 * so only the earlier-term entry reaches a majority: commit must not move. */
START_TEST(test_replication_figure8_withheld_blank_entry_blocks_commit)
{
    struct fx f;
    fx_init(&f, 3, 3, NULL);
    fx_elect(&f, 1);
    raft_index base = raft_commit_index(fx_raft(&f, 1));
    /* Leader 1 (term 2) appends idx but nobody receives it. */
    fx_isolate(&f, 1, true);
    ck_assert_int_eq(fx_propose(&f, 1, "old"), 0);
    raft_index idx = base + 1;
    /* Node 1 is deposed by a higher term (node 3's refusal of a vote in
     * term 5), then regains leadership with node 3's vote while node 2 is
     * away. */
    fx_isolate(&f, 1, false);
    fx_isolate(&f, 2, true);
    f.hold = true;
    struct raft_message vote;
    memset(&vote, 0, sizeof(vote));
    vote.type = RAFT_MSG_VOTE_RESP;
    vote.from = 3;
    vote.to = 1;
    vote.term = 5;
    vote.u.vote_resp.granted = false;
    ck_assert_int_eq(raft_step(fx_raft(&f, 1), &vote), 0);
    ck_assert_int_eq(raft_state_of(fx_raft(&f, 1)), RAFT_FOLLOWER);
    fx_settle(&f);
    fx_drop_all(&f);
    unsigned guard = 0;
    while (raft_state_of(fx_raft(&f, 1)) != RAFT_LEADER && guard++ < 200) {
        raft_tick(fx_raft(&f, 1));
        fx_settle(&f);
        /* Deliver only election traffic. */
        for (size_t i = 0; i < f.n_queue;) {
            uint8_t t = f.queue[i].m.type;
            if (t == RAFT_MSG_APPEND || t == RAFT_MSG_HEARTBEAT) {
                i++;
                continue;
            }
            fx_deliver_one(&f, i);
        }
    }
    ck_assert_int_eq(raft_state_of(fx_raft(&f, 1)), RAFT_LEADER);
    struct raft_node *r = fx_raft(&f, 1);
    raft_term term = raft_current_term(r);
    ck_assert_uint_gt(term, 2);
    fx_drop_all(&f);
    /* Forge node 3's acknowledgement of idx alone: idx (term 2) is now on
     * 2 of 3 nodes, a majority, but it is not of the current term. */
    struct raft_message ack;
    memset(&ack, 0, sizeof(ack));
    ack.type = RAFT_MSG_APPEND_RESP;
    ack.from = 3;
    ack.to = 1;
    ack.term = term;
    ack.u.append_resp.success = true;
    ack.u.append_resp.index = idx;
    ck_assert_int_eq(raft_step(r, &ack), 0);
    fx_settle(&f);
    ck_assert_uint_eq(raft_commit_index(r), base);
    /* Acknowledging the blank entry of the current term commits both. */
    ack.u.append_resp.index = idx + 1;
    ck_assert_uint_eq(raft_term_at(r, idx + 1), term);
    ck_assert_int_eq(raft_step(r, &ack), 0);
    fx_settle(&f);
    ck_assert_uint_eq(raft_commit_index(r), idx + 1);
    fx_drop_all(&f);
    fx_close(&f);
}
END_TEST

/* §10.2: proposals made in one cycle leave in one AppendEntries per
 * follower (batching). */
START_TEST(test_replication_batches_proposals_of_one_cycle)
{
    struct fx f;
    fx_init(&f, 3, 3, NULL);
    fx_elect(&f, 1);
    struct raft_node *r = fx_raft(&f, 1);
    for (int i = 0; i < 10; i++) {
        ck_assert_int_eq(raft_propose(r, (const uint8_t *)"b", 1, NULL, NULL),
                         0);
    }
    struct raft_update u;
    ck_assert(raft_ready(r, &u));
    ck_assert_uint_eq(u.n_entries, 10);
    ck_assert_uint_eq(u.n_messages, 2);
    ck_assert_uint_eq(u.messages[0].u.append.n_entries, 10);
    ck_assert_uint_eq(u.messages[1].u.append.n_entries, 10);
    fx_handle(&f, 1, &u);
    fx_settle(&f);
    fx_close(&f);
}
END_TEST

/* §10.2.2: appends are pipelined to a follower in REPLICATE state, up to
 * max_inflight unacknowledged messages; then the leader waits. */
START_TEST(test_replication_pipelining_is_bounded_by_max_inflight)
{
    struct fx f;
    struct raft_config cfg;
    raft_config_default(&cfg, 1, 1);
    cfg.max_inflight = 3;
    cfg.max_append_entries = 1;
    fx_init(&f, 2, 2, &cfg);
    fx_elect(&f, 1);
    struct raft_node *r = fx_raft(&f, 1);
    for (int i = 0; i < 10; i++) {
        ck_assert_int_eq(raft_propose(r, (const uint8_t *)"p", 1, NULL, NULL),
                         0);
    }
    struct raft_update u;
    ck_assert(raft_ready(r, &u));
    size_t appends = 0;
    for (size_t i = 0; i < u.n_messages; i++) {
        appends += u.messages[i].type == RAFT_MSG_APPEND;
    }
    ck_assert_uint_eq(appends, 3);
    fx_handle(&f, 1, &u);
    fx_settle(&f);
    ck_assert_uint_eq(raft_match_index(r, 2), raft_last_index(r));
    fx_close(&f);
}
END_TEST

/* Proposals are refused with a clear code on followers, and bounded on
 * the leader when followers cannot keep up. */
START_TEST(test_replication_proposals_refused_when_not_leader_or_backlogged)
{
    struct fx f;
    struct raft_config cfg;
    raft_config_default(&cfg, 1, 1);
    cfg.max_uncommitted_bytes = 100;
    cfg.max_entry_bytes = 64;
    fx_init(&f, 3, 3, &cfg);
    fx_elect(&f, 1);
    uint8_t buf[64] = {0};
    ck_assert_int_eq(raft_propose(fx_raft(&f, 2), buf, 1, NULL, NULL),
                     RAFT_ENOTLEADER);
    ck_assert_int_eq(raft_propose(fx_raft(&f, 1), buf, 65, NULL, NULL),
                     RAFT_ETOOBIG);
    fx_isolate(&f, 1, true);
    ck_assert_int_eq(raft_propose(fx_raft(&f, 1), buf, 60, NULL, NULL), 0);
    ck_assert_int_eq(raft_propose(fx_raft(&f, 1), buf, 60, NULL, NULL),
                     RAFT_EBUSY);
    fx_settle(&f);
    fx_isolate(&f, 1, false);
    fx_tick(&f, 1, 1);
    fx_settle(&f);
    /* Once committed, the backlog is free again. */
    ck_assert_int_eq(raft_propose(fx_raft(&f, 1), buf, 60, NULL, NULL), 0);
    fx_settle(&f);
    fx_close(&f);
}
END_TEST

/* Figure 2 persistence: a restarted node recovers its term, vote and log
 * from durable state and replays committed entries to its state machine. */
START_TEST(test_replication_restart_recovers_durable_state)
{
    struct fx f;
    fx_init(&f, 3, 3, NULL);
    fx_elect(&f, 1);
    for (int i = 0; i < 5; i++) {
        ck_assert_int_eq(fx_propose(&f, 1, "durable"), 0);
    }
    fx_tick(&f, 1, 1);
    struct raft_node *r = fx_raft(&f, 2);
    raft_term term = raft_current_term(r);
    raft_index last = raft_last_index(r);
    uint64_t hash = fx_node(&f, 2)->hash;
    raft_index applied = fx_node(&f, 2)->applied;
    fx_crash(&f, 2);
    fx_restart(&f, 2);
    r = fx_raft(&f, 2);
    ck_assert_uint_eq(raft_current_term(r), term);
    ck_assert_uint_eq(raft_voted_for(r), 1);
    ck_assert_uint_eq(raft_last_index(r), last);
    fx_tick(&f, 1, 1);
    ck_assert_uint_eq(fx_node(&f, 2)->applied, applied);
    ck_assert_uint_eq(fx_node(&f, 2)->hash, hash);
    fx_close(&f);
}
END_TEST

/* Figure 2 persistence under a torn batch: the entries of a new term
 * reached the disk but the hard state naming that term did not. The node
 * must not run in a term older than its log; it takes the log's term with
 * no vote (it never acknowledged anything of that batch). */
START_TEST(test_replication_restart_with_entries_newer_than_hard_state)
{
    struct raft_config cfg;
    struct raft_node *r;
    raft_config_default(&cfg, 2, 7);
    ck_assert_int_eq(raft_node_create(&cfg, &r), 0);
    uint8_t conf_buf[RAFT_CONF_ENCODED_MAX];
    size_t conf_len;
    struct raft_conf conf = {.n = 3};
    for (uint32_t i = 0; i < 3; i++) {
        conf.members[i].id = i + 1;
        conf.members[i].role = RAFT_VOTER;
    }
    raft_conf_encode(&conf, conf_buf, &conf_len);
    struct raft_entry es[3] = {entry(1, 1), entry(2, 2), entry(5, 3)};
    es[0].type = RAFT_ENTRY_CONF;
    es[0].data = conf_buf;
    es[0].len = (uint32_t)conf_len;
    struct raft_hard_state hs = {.term = 2, .vote = 1, .commit = 2};
    ck_assert_int_eq(raft_restore(r, &hs, NULL, es, 3, 0), 0);
    ck_assert_uint_eq(raft_current_term(r), 5);
    ck_assert_uint_eq(raft_voted_for(r), 0);
    ck_assert_uint_eq(raft_last_index(r), 3);
    ck_assert_uint_eq(raft_commit_index(r), 2);
    raft_node_destroy(r);
}
END_TEST

Suite *replication_suite(void)
{
    Suite *s = suite_create("replication");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_replication_new_leader_commits_blank_entry);
    tcase_add_test(tc, test_replication_commits_on_majority_only);
    tcase_add_test(tc, test_replication_leader_counts_itself_after_persisting);
    tcase_add_test(tc, test_replication_single_node_commits_after_persist);
    tcase_add_test(tc, test_replication_follower_rejects_missing_predecessor);
    tcase_add_test(tc, test_replication_conflicting_suffix_is_truncated);
    tcase_add_test(tc, test_replication_stale_append_does_not_truncate);
    tcase_add_test(tc,
                   test_replication_follower_commits_only_up_to_last_new_entry);
    tcase_add_test(tc,
                   test_replication_fast_backtracking_skips_conflicting_term);
    tcase_add_test(tc, test_replication_divergent_follower_converges);
    tcase_add_test(tc,
                   test_replication_figure8_withheld_blank_entry_blocks_commit);
    tcase_add_test(tc, test_replication_batches_proposals_of_one_cycle);
    tcase_add_test(tc, test_replication_pipelining_is_bounded_by_max_inflight);
    tcase_add_test(
        tc, test_replication_proposals_refused_when_not_leader_or_backlogged);
    tcase_add_test(tc, test_replication_restart_recovers_durable_state);
    tcase_add_test(tc,
                   test_replication_restart_with_entries_newer_than_hard_state);
    suite_add_tcase(s, tc);
    return s;
}
