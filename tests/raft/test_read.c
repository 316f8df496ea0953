/*
 * test_read.c - linearizable reads without log writes (§6.4 ReadIndex,
 * §6.4.1 lease reads).
 */
#include <check.h>
#include <string.h>

#include "fixture.h"
#include "suites.h"

/* Delivers the first queued message of @type from @from to @to (which must
 * exist), then runs ready cycles; returns a copy of the message. */
static struct raft_message deliver(struct fx *f,
                                   uint8_t type,
                                   raft_id from,
                                   raft_id to)
{
    struct fx_msg *q = fx_find(f, type, from, to);
    ck_assert_msg(q != NULL, "no message of type %d %lu->%lu", type,
                  (unsigned long)from, (unsigned long)to);
    struct raft_message m = q->m;
    fx_deliver_one(f, (size_t)(q - f->queue));
    fx_settle(f);
    return m;
}

/* Makes @id leader while every append it sends is lost: its blank entry
 * stays uncommitted. Leaves f->hold set and the queue empty. */
static void elect_without_commit(struct fx *f, raft_id id)
{
    f->hold = true;
    for (int guard = 0;
         raft_state_of(fx_raft(f, id)) != RAFT_LEADER && guard < 200; guard++) {
        raft_tick(fx_raft(f, id));
        fx_settle(f);
        for (size_t i = 0; i < f->n_queue;) {
            uint8_t t = f->queue[i].m.type;
            if (t == RAFT_MSG_APPEND || t == RAFT_MSG_HEARTBEAT) {
                i++;
                continue;
            }
            fx_deliver_one(f, i);
            fx_settle(f);
        }
    }
    ck_assert_int_eq(raft_state_of(fx_raft(f, id)), RAFT_LEADER);
    fx_settle(f);
    fx_drop_all(f);
}

/* §6.4 step 3: the leader records its commit index and answers only after
 * a round of heartbeats sent after the request is acknowledged by a
 * majority, which proves no newer leader exists. */
START_TEST(test_read_leader_answers_after_majority_heartbeat_round)
{
    struct fx f;
    fx_init(&f, 3, 3, NULL);
    fx_elect(&f, 1);
    ck_assert_int_eq(fx_propose(&f, 1, "a"), 0);
    struct raft_node *r = fx_raft(&f, 1);
    ck_assert_uint_eq(raft_commit_index(r), 3);
    f.hold = true;
    ck_assert_int_eq(raft_read_index(r, 7), 0);
    fx_settle(&f);
    ck_assert_uint_eq(fx_node(&f, 1)->n_reads, 0);
    struct fx_msg *hb2 = fx_find(&f, RAFT_MSG_HEARTBEAT, 1, 2);
    struct fx_msg *hb3 = fx_find(&f, RAFT_MSG_HEARTBEAT, 1, 3);
    ck_assert_ptr_nonnull(hb2);
    ck_assert_ptr_nonnull(hb3);
    uint64_t seq = hb2->m.u.heartbeat.read_seq;
    ck_assert_uint_eq(hb3->m.u.heartbeat.read_seq, seq);
    /* The write committed meanwhile does not change the read point. */
    deliver(&f, RAFT_MSG_HEARTBEAT, 1, 2);
    ck_assert_uint_eq(fx_node(&f, 1)->n_reads, 0);
    struct raft_message ack = deliver(&f, RAFT_MSG_HEARTBEAT_RESP, 2, 1);
    ck_assert_uint_eq(ack.u.heartbeat_resp.read_seq, seq);
    /* Leader plus node 2 is a majority of three. */
    ck_assert_uint_eq(fx_node(&f, 1)->n_reads, 1);
    ck_assert_uint_eq(fx_node(&f, 1)->reads[0].ctx, 7);
    ck_assert_uint_eq(fx_node(&f, 1)->reads[0].index, 3);
    ck_assert(fx_node(&f, 1)->reads[0].ok);
    /* Node 3's late answer does not produce a second read state. */
    deliver(&f, RAFT_MSG_HEARTBEAT, 1, 3);
    deliver(&f, RAFT_MSG_HEARTBEAT_RESP, 3, 1);
    ck_assert_uint_eq(fx_node(&f, 1)->n_reads, 1);
    fx_drop_all(&f);
    fx_close(&f);
}
END_TEST

/* §6.4 step 1: a new leader does not know the latest commit index until an
 * entry of its own term commits, so reads wait for its blank entry. */
START_TEST(test_read_new_leader_waits_for_entry_of_its_term)
{
    struct fx f;
    fx_init(&f, 3, 3, NULL);
    elect_without_commit(&f, 1);
    struct raft_node *r = fx_raft(&f, 1);
    ck_assert_uint_eq(raft_commit_index(r), 1);
    ck_assert_uint_eq(raft_last_index(r), 2);
    ck_assert_int_eq(raft_read_index(r, 5), 0);
    fx_settle(&f);
    ck_assert_uint_eq(fx_node(&f, 1)->n_reads, 0);
    /* A heartbeat round alone does not help: nothing of term 2 commits. */
    fx_drop_all(&f);
    raft_tick(r);
    fx_settle(&f);
    for (size_t i = 0; i < f.n_queue;) {
        uint8_t t = f.queue[i].m.type;
        if (t == RAFT_MSG_HEARTBEAT || t == RAFT_MSG_HEARTBEAT_RESP) {
            fx_deliver_one(&f, i);
            fx_settle(&f);
        } else {
            i++;
        }
    }
    fx_drop_all(&f);
    ck_assert_uint_eq(raft_commit_index(r), 1);
    ck_assert_uint_eq(fx_node(&f, 1)->n_reads, 0);
    /* Let the blank entry through: the read gets its commit index. */
    f.hold = false;
    fx_tick(&f, 1, 1);
    ck_assert_uint_eq(raft_commit_index(r), 2);
    ck_assert_uint_eq(fx_node(&f, 1)->n_reads, 1);
    ck_assert_uint_eq(fx_node(&f, 1)->reads[0].ctx, 5);
    ck_assert_uint_eq(fx_node(&f, 1)->reads[0].index, 2);
    ck_assert(fx_node(&f, 1)->reads[0].ok);
    fx_close(&f);
}
END_TEST

/* §6.4: a follower asks the leader for the read index and serves the read
 * itself once it has applied that index. */
START_TEST(test_read_on_follower_is_forwarded_to_leader)
{
    struct fx f;
    fx_init(&f, 3, 3, NULL);
    fx_elect(&f, 1);
    ck_assert_int_eq(fx_propose(&f, 1, "a"), 0);
    f.hold = true;
    ck_assert_int_eq(raft_read_index(fx_raft(&f, 2), 9), 0);
    fx_settle(&f);
    struct raft_message req = deliver(&f, RAFT_MSG_READ_INDEX, 2, 1);
    ck_assert_uint_eq(req.u.read_index.ctx, 9);
    ck_assert_uint_eq(req.term, 2);
    ck_assert_ptr_null(fx_find(&f, RAFT_MSG_READ_INDEX_RESP, 1, 2));
    deliver(&f, RAFT_MSG_HEARTBEAT, 1, 3);
    deliver(&f, RAFT_MSG_HEARTBEAT_RESP, 3, 1);
    struct raft_message resp = deliver(&f, RAFT_MSG_READ_INDEX_RESP, 1, 2);
    ck_assert_uint_eq(resp.u.read_index.ctx, 9);
    ck_assert_uint_eq(resp.u.read_index.index, 3);
    ck_assert(resp.u.read_index.ok);
    ck_assert_uint_eq(fx_node(&f, 1)->n_reads, 0);
    ck_assert_uint_eq(fx_node(&f, 2)->n_reads, 1);
    ck_assert_uint_eq(fx_node(&f, 2)->reads[0].ctx, 9);
    ck_assert_uint_eq(fx_node(&f, 2)->reads[0].index, 3);
    ck_assert(fx_node(&f, 2)->reads[0].ok);
    fx_drop_all(&f);
    fx_close(&f);
}
END_TEST

/* §6.4: with no known leader nobody can confirm a read; it fails at once
 * so the client can retry elsewhere. */
START_TEST(test_read_without_known_leader_fails_at_once)
{
    struct fx f;
    fx_init(&f, 3, 3, NULL);
    struct raft_node *r = fx_raft(&f, 2);
    ck_assert_uint_eq(raft_leader(r), 0);
    ck_assert_int_eq(raft_read_index(r, 4), 0);
    struct raft_update u;
    ck_assert(raft_ready(r, &u));
    ck_assert_uint_eq(u.n_reads, 1);
    ck_assert_uint_eq(u.reads[0].ctx, 4);
    ck_assert(!u.reads[0].ok);
    ck_assert_uint_eq(u.n_messages + u.n_messages_after_persist, 0);
    fx_handle(&f, 2, &u);
    fx_close(&f);
}
END_TEST

/* §6.4: a leader that steps down before confirming its reads fails them;
 * so does a follower whose leader changes before it answered. */
START_TEST(test_read_pending_reads_fail_when_leadership_is_lost)
{
    struct fx f;
    fx_init(&f, 3, 3, NULL);
    fx_elect(&f, 1);
    f.hold = true;
    ck_assert_int_eq(raft_read_index(fx_raft(&f, 1), 1), 0);
    ck_assert_int_eq(raft_read_index(fx_raft(&f, 3), 3), 0);
    fx_settle(&f);
    fx_drop_all(&f); /* heartbeats and the forwarded request are lost */
    ck_assert_uint_eq(fx_node(&f, 1)->n_reads, 0);
    ck_assert_uint_eq(fx_node(&f, 3)->n_reads, 0);

    /* Node 2 wins term 3 (with node 3's vote). */
    f.hold = false;
    fx_isolate(&f, 1, true);
    fx_elect(&f, 2);
    ck_assert_uint_eq(fx_node(&f, 3)->n_reads, 1);
    ck_assert_uint_eq(fx_node(&f, 3)->reads[0].ctx, 3);
    ck_assert(!fx_node(&f, 3)->reads[0].ok);
    ck_assert_uint_eq(fx_node(&f, 1)->n_reads, 0);
    fx_isolate(&f, 1, false);
    fx_tick(&f, 2, 1);
    ck_assert_int_eq(raft_state_of(fx_raft(&f, 1)), RAFT_FOLLOWER);
    ck_assert_uint_eq(fx_node(&f, 1)->n_reads, 1);
    ck_assert_uint_eq(fx_node(&f, 1)->reads[0].ctx, 1);
    ck_assert(!fx_node(&f, 1)->reads[0].ok);
    fx_close(&f);
}
END_TEST

/* §6.4: a deposed leader cut off from the majority cannot complete a
 * heartbeat round, so it never serves a stale read. */
START_TEST(test_read_partitioned_old_leader_cannot_confirm)
{
    struct fx f;
    fx_init(&f, 3, 3, NULL);
    fx_elect(&f, 1);
    fx_isolate(&f, 1, true);
    fx_elect(&f, 2);
    ck_assert_int_eq(fx_propose(&f, 2, "newer"), 0);
    struct raft_node *old = fx_raft(&f, 1);
    ck_assert_int_eq(raft_state_of(old), RAFT_LEADER);
    ck_assert_int_eq(raft_read_index(old, 8), 0);
    fx_tick(&f, 1, 3 * f.cfg.election_ticks);
    ck_assert_uint_eq(fx_node(&f, 1)->n_reads, 0);
    fx_isolate(&f, 1, false);
    fx_tick(&f, 1, 1);
    /* Its heartbeat is answered with the newer term: it steps down and the
     * read fails instead of returning the old commit index. */
    ck_assert_int_eq(raft_state_of(old), RAFT_FOLLOWER);
    ck_assert_uint_eq(fx_node(&f, 1)->n_reads, 1);
    ck_assert_uint_eq(fx_node(&f, 1)->reads[0].ctx, 8);
    ck_assert(!fx_node(&f, 1)->reads[0].ok);
    fx_close(&f);
}
END_TEST

/* §6.4.1: with a lease (and CheckQuorum) the leader answers at once, for
 * an election timeout minus a margin after the round a majority
 * acknowledged; afterwards reads need a heartbeat round again. */
START_TEST(test_read_lease_answers_at_once_until_it_lapses)
{
    struct fx f;
    struct raft_config cfg;
    raft_config_default(&cfg, 1, 1);
    cfg.lease_reads = true;
    fx_init(&f, 3, 3, &cfg);
    fx_elect(&f, 1);
    struct raft_node *r = fx_raft(&f, 1);
    fx_tick(&f, 1, 1); /* a round the majority acknowledges */
    raft_index commit = raft_commit_index(r);
    fx_isolate(&f, 1, true);
    unsigned served = 0;
    for (uint64_t ctx = 1; ctx <= f.cfg.election_ticks; ctx++) {
        f.hold = true;
        ck_assert_int_eq(raft_read_index(r, ctx), 0);
        struct raft_update u;
        ck_assert(raft_ready(r, &u));
        if (u.n_reads == 1) {
            ck_assert_uint_eq(u.reads[0].ctx, ctx);
            ck_assert_uint_eq(u.reads[0].index, commit);
            ck_assert(u.reads[0].ok);
            served++;
        } else {
            ck_assert_uint_eq(u.n_reads, 0);
        }
        fx_handle(&f, 1, &u);
        fx_drop_all(&f);
        f.hold = false;
        if (u.n_reads == 0) {
            break;
        }
        fx_tick(&f, 1, 1);
    }
    /* The round was sent at one tick; the lease lasts election_ticks - 1
     * ticks from it. */
    ck_assert_uint_eq(served, f.cfg.election_ticks - 1);
    ck_assert_int_eq(raft_state_of(r), RAFT_LEADER);
    /* Healing lets the next round confirm the pending read normally. */
    fx_node(&f, 1)->n_reads = 0;
    fx_isolate(&f, 1, false);
    fx_tick(&f, 1, 1);
    ck_assert_uint_eq(fx_node(&f, 1)->n_reads, 1);
    ck_assert_uint_eq(fx_node(&f, 1)->reads[0].ctx, served + 1);
    ck_assert(fx_node(&f, 1)->reads[0].ok);
    fx_close(&f);
}
END_TEST

/* §3.10/§6.4.1: once a TimeoutNow went out, the target may win an election
 * whenever it arrives (it bypasses stickiness), even after the transfer
 * was abandoned, so the old leader stops trusting its lease for the rest
 * of the term. */
START_TEST(test_read_lease_is_given_up_after_timeout_now)
{
    struct fx f;
    struct raft_config cfg;
    raft_config_default(&cfg, 1, 1);
    cfg.lease_reads = true;
    fx_init(&f, 3, 3, &cfg);
    fx_elect(&f, 1);
    struct raft_node *r = fx_raft(&f, 1);
    fx_tick(&f, 1, 1);
    f.hold = true;
    ck_assert_int_eq(raft_read_index(r, 1), 0);
    fx_settle(&f);
    ck_assert_uint_eq(fx_node(&f, 1)->n_reads, 1); /* lease holds */
    ck_assert_int_eq(raft_transfer_leadership(r, 2), 0);
    fx_settle(&f);
    ck_assert_ptr_nonnull(fx_find(&f, RAFT_MSG_TIMEOUT_NOW, 1, 2));
    fx_drop_all(&f); /* the TimeoutNow is "delayed" */
    f.hold = false;
    /* Heartbeats flow (renewing what would be the lease) while the
     * transfer is abandoned. */
    fx_tick(&f, 1, f.cfg.election_ticks);
    ck_assert_uint_eq(raft_transfer_target(r), 0);
    ck_assert_int_eq(raft_state_of(r), RAFT_LEADER);
    fx_node(&f, 1)->n_reads = 0;
    f.hold = true;
    ck_assert_int_eq(raft_read_index(r, 2), 0);
    fx_settle(&f);
    ck_assert_uint_eq(fx_node(&f, 1)->n_reads, 0); /* needs a round now */
    fx_drop_all(&f);
    f.hold = false;
    fx_tick(&f, 1, 1);
    ck_assert_uint_eq(fx_node(&f, 1)->n_reads, 1);
    ck_assert_uint_eq(fx_node(&f, 1)->reads[0].ctx, 2);
    fx_close(&f);
}
END_TEST

/* §6.4 with §4.2.2: a leader that removed itself may be left with a single
 * voter that is not itself. A quorum of one is then somebody else, so the
 * leader may not answer a read on its own (simulator seed 327304). */
START_TEST(test_read_leader_removing_itself_needs_the_remaining_voter)
{
    struct fx f;
    fx_init(&f, 2, 2, NULL);
    fx_elect(&f, 1);
    struct raft_node *r = fx_raft(&f, 1);
    f.hold = true;
    ck_assert_int_eq(raft_propose_conf_change(r, RAFT_REMOVE, 1, NULL), 0);
    fx_settle(&f);
    fx_drop_all(&f); /* node 2 never hears of it */
    ck_assert_uint_eq(raft_conf_voters(raft_conf_of(r)), 1);
    ck_assert_int_eq(raft_state_of(r), RAFT_LEADER);
    fx_node(&f, 1)->n_reads = 0;
    ck_assert_int_eq(raft_read_index(r, 5), 0);
    fx_settle(&f);
    ck_assert_uint_eq(fx_node(&f, 1)->n_reads, 0);
    fx_drop_all(&f);
    fx_close(&f);
}
END_TEST

/* §6.4: a single voter is a majority by itself and answers at once. */
START_TEST(test_read_single_voter_answers_immediately)
{
    struct fx f;
    fx_init(&f, 1, 1, NULL);
    fx_elect(&f, 1);
    ck_assert_int_eq(fx_propose(&f, 1, "solo"), 0);
    struct raft_node *r = fx_raft(&f, 1);
    ck_assert_int_eq(raft_read_index(r, 42), 0);
    struct raft_update u;
    ck_assert(raft_ready(r, &u));
    ck_assert_uint_eq(u.n_reads, 1);
    ck_assert_uint_eq(u.reads[0].ctx, 42);
    ck_assert_uint_eq(u.reads[0].index, 3);
    ck_assert(u.reads[0].ok);
    fx_handle(&f, 1, &u);
    fx_close(&f);
}
END_TEST

/* The fixture's configuration with forwarded reads resent after @retry
 * ticks and failed after @timeout. */
static void read_cfg(struct raft_config *cfg, unsigned retry, unsigned timeout)
{
    raft_config_default(cfg, 1, 1);
    cfg->check_quorum = false;
    cfg->snapshot_chunk_bytes = 32;
    cfg->snapshot_trailing = 0;
    cfg->read_retry_ticks = retry;
    cfg->read_timeout_ticks = timeout;
}

/* §6.4: a follower whose forwarded read request is lost asks the leader
 * again after read_retry_ticks, and the second answer serves the read;
 * one lost message does not hang it until the leader changes. */
START_TEST(test_read_follower_resends_a_lost_request)
{
    struct fx f;
    struct raft_config cfg;
    read_cfg(&cfg, 3, 8);
    fx_init(&f, 3, 3, &cfg);
    fx_elect(&f, 1);
    ck_assert_int_eq(fx_propose(&f, 1, "a"), 0);
    f.hold = true;
    ck_assert_int_eq(raft_read_index(fx_raft(&f, 2), 9), 0);
    fx_settle(&f);
    ck_assert_ptr_nonnull(fx_find(&f, RAFT_MSG_READ_INDEX, 2, 1));
    fx_drop_all(&f); /* the request is lost */
    f.hold = false;
    fx_tick(&f, 2, 2);
    ck_assert_uint_eq(fx_node(&f, 2)->n_reads, 0);
    ck_assert_uint_eq(raft_stats_of(fx_raft(&f, 2))->read_retries, 0);
    fx_tick(&f, 2, 1); /* the third tick resends it */
    ck_assert_uint_eq(raft_stats_of(fx_raft(&f, 2))->read_retries, 1);
    ck_assert_uint_eq(fx_node(&f, 2)->n_reads, 1);
    ck_assert_uint_eq(fx_node(&f, 2)->reads[0].ctx, 9);
    ck_assert_uint_eq(fx_node(&f, 2)->reads[0].index, 3);
    ck_assert(fx_node(&f, 2)->reads[0].ok);
    /* Answered: nothing is resent any more. */
    fx_tick(&f, 2, 6);
    ck_assert_uint_eq(raft_stats_of(fx_raft(&f, 2))->read_retries, 1);
    ck_assert_uint_eq(fx_node(&f, 2)->n_reads, 1);
    fx_close(&f);
}
END_TEST

/* §6.4: a forwarded read that no answer completes fails after
 * read_timeout_ticks, while the follower still follows its leader (here
 * before its election timeout of at least 10 ticks). */
START_TEST(test_read_follower_fails_an_unanswered_read_after_timeout)
{
    struct fx f;
    struct raft_config cfg;
    read_cfg(&cfg, 3, 8);
    fx_init(&f, 3, 3, &cfg);
    fx_elect(&f, 1);
    fx_cut(&f, 1, 2, true);
    ck_assert_int_eq(raft_read_index(fx_raft(&f, 2), 5), 0);
    fx_settle(&f);
    fx_tick(&f, 2, 7);
    ck_assert_uint_eq(fx_node(&f, 2)->n_reads, 0);
    ck_assert_uint_eq(raft_stats_of(fx_raft(&f, 2))->read_retries, 2);
    fx_tick(&f, 2, 1);
    ck_assert_uint_eq(fx_node(&f, 2)->n_reads, 1);
    ck_assert_uint_eq(fx_node(&f, 2)->reads[0].ctx, 5);
    ck_assert(!fx_node(&f, 2)->reads[0].ok);
    ck_assert_int_eq(raft_state_of(fx_raft(&f, 2)), RAFT_FOLLOWER);
    ck_assert_uint_eq(raft_leader(fx_raft(&f, 2)), 1);
    fx_close(&f);
}
END_TEST

/* §6.4, §9.6: a follower cut from its leader (but not from the other
 * follower) starts campaigning; the reads it forwarded to that leader fail
 * at that moment, not once a leader is known again (which a partial
 * partition may postpone indefinitely). */
START_TEST(test_read_forwarded_reads_fail_when_the_follower_campaigns)
{
    struct fx f;
    struct raft_config cfg;
    read_cfg(&cfg, 5, 1000);
    cfg.check_quorum = true; /* node 3 stays loyal to its leader */
    fx_init(&f, 3, 3, &cfg);
    fx_elect(&f, 1);
    fx_cut(&f, 1, 2, true);
    ck_assert_int_eq(raft_read_index(fx_raft(&f, 2), 6), 0);
    fx_settle(&f);
    struct raft_node *r = fx_raft(&f, 2);
    for (int i = 0; i < 40 && raft_stats_of(r)->elections_started == 0; i++) {
        ck_assert_uint_eq(fx_node(&f, 2)->n_reads, 0);
        fx_tick(&f, 2, 1);
    }
    ck_assert_uint_eq(raft_stats_of(r)->elections_started, 1);
    ck_assert_int_ne(raft_state_of(r), RAFT_LEADER);
    ck_assert_uint_eq(raft_leader(r), 0);
    ck_assert_uint_eq(fx_node(&f, 2)->n_reads, 1);
    ck_assert_uint_eq(fx_node(&f, 2)->reads[0].ctx, 6);
    ck_assert(!fx_node(&f, 2)->reads[0].ok);
    fx_close(&f);
}
END_TEST

Suite *read_suite(void)
{
    Suite *s = suite_create("read");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_read_leader_answers_after_majority_heartbeat_round);
    tcase_add_test(tc, test_read_new_leader_waits_for_entry_of_its_term);
    tcase_add_test(tc, test_read_on_follower_is_forwarded_to_leader);
    tcase_add_test(tc, test_read_without_known_leader_fails_at_once);
    tcase_add_test(tc, test_read_pending_reads_fail_when_leadership_is_lost);
    tcase_add_test(tc, test_read_partitioned_old_leader_cannot_confirm);
    tcase_add_test(tc, test_read_lease_answers_at_once_until_it_lapses);
    tcase_add_test(tc, test_read_lease_is_given_up_after_timeout_now);
    tcase_add_test(tc,
                   test_read_leader_removing_itself_needs_the_remaining_voter);
    tcase_add_test(tc, test_read_single_voter_answers_immediately);
    tcase_add_test(tc, test_read_follower_resends_a_lost_request);
    tcase_add_test(tc,
                   test_read_follower_fails_an_unanswered_read_after_timeout);
    tcase_add_test(tc,
                   test_read_forwarded_reads_fail_when_the_follower_campaigns);
    suite_add_tcase(s, tc);
    return s;
}
