/*
 * test_transfer.c - leadership transfer (§3.10).
 */
#include <check.h>
#include <string.h>

#include "fixture.h"
#include "suites.h"

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

/* §3.10: when the target's log is already up to date, the leader sends it
 * TimeoutNow at once, and the target wins the next term. */
START_TEST(test_transfer_to_up_to_date_follower_sends_timeout_now_at_once)
{
    struct fx f;
    fx_init(&f, 3, 3, NULL);
    fx_elect(&f, 1);
    struct raft_node *r = fx_raft(&f, 1);
    raft_term term = raft_current_term(r);
    ck_assert_uint_eq(raft_match_index(r, 2), raft_last_index(r));
    ck_assert_int_eq(raft_transfer_leadership(r, 2), 0);
    ck_assert_uint_eq(raft_transfer_target(r), 2);
    struct raft_update u;
    ck_assert(raft_ready(r, &u));
    const struct raft_message *m = update_msg(&u, RAFT_MSG_TIMEOUT_NOW, 2);
    ck_assert_ptr_nonnull(m);
    ck_assert_uint_eq(m->term, term);
    ck_assert_ptr_null(update_msg(&u, RAFT_MSG_TIMEOUT_NOW, 3));
    fx_handle(&f, 1, &u);
    fx_settle(&f);
    ck_assert_int_eq(raft_state_of(fx_raft(&f, 2)), RAFT_LEADER);
    ck_assert_uint_eq(raft_current_term(fx_raft(&f, 2)), term + 1);
    ck_assert_int_eq(raft_state_of(r), RAFT_FOLLOWER);
    ck_assert_uint_eq(raft_leader(r), 2);
    ck_assert_uint_eq(raft_transfer_target(r), 0);
    ck_assert_int_eq(fx_propose(&f, 2, "new leader"), 0);
    fx_check_applied_agree(&f);
    fx_close(&f);
}
END_TEST

/* §3.10 step 2: a target that lags is first brought up to date, and only
 * then told to time out. */
START_TEST(test_transfer_to_lagging_follower_catches_it_up_first)
{
    struct fx f;
    fx_init(&f, 3, 3, NULL);
    fx_elect(&f, 1);
    struct raft_node *r = fx_raft(&f, 1);
    fx_isolate(&f, 3, true);
    for (int i = 0; i < 4; i++) {
        ck_assert_int_eq(fx_propose(&f, 1, "x"), 0);
    }
    fx_isolate(&f, 3, false);
    raft_index last = raft_last_index(r);
    ck_assert_uint_lt(raft_last_index(fx_raft(&f, 3)), last);
    f.hold = true;
    ck_assert_int_eq(raft_transfer_leadership(r, 3), 0);
    struct raft_update u;
    ck_assert(raft_ready(r, &u));
    ck_assert_ptr_null(update_msg(&u, RAFT_MSG_TIMEOUT_NOW, 3));
    ck_assert_ptr_nonnull(update_msg(&u, RAFT_MSG_APPEND, 3));
    fx_handle(&f, 1, &u);
    /* Deliver until TimeoutNow shows up; by then node 3 has everything. */
    for (int i = 0; i < 100 && fx_find(&f, RAFT_MSG_TIMEOUT_NOW, 1, 3) == NULL;
         i++) {
        ck_assert(f.n_queue > 0);
        fx_deliver_one(&f, 0);
        fx_settle(&f);
    }
    ck_assert_ptr_nonnull(fx_find(&f, RAFT_MSG_TIMEOUT_NOW, 1, 3));
    ck_assert_uint_eq(raft_last_index(fx_raft(&f, 3)), last);
    ck_assert_uint_eq(raft_match_index(r, 3), last);
    f.hold = false;
    fx_settle(&f);
    ck_assert_int_eq(raft_state_of(fx_raft(&f, 3)), RAFT_LEADER);
    fx_close(&f);
}
END_TEST

/* §3.10 and §4.2.3: the target's vote requests say they come from a
 * transfer, so voters that heard from the leader recently (CheckQuorum
 * stickiness) still grant them. */
START_TEST(test_transfer_target_campaign_bypasses_leader_stickiness)
{
    struct fx f;
    struct raft_config cfg;
    raft_config_default(&cfg, 1, 1);
    fx_init(&f, 3, 3, &cfg); /* check_quorum and pre_vote on */
    fx_elect(&f, 1);
    fx_tick(&f, 1, 1);
    struct raft_node *r = fx_raft(&f, 1);
    raft_term term = raft_current_term(r);
    ck_assert_uint_eq(raft_leader(fx_raft(&f, 3)), 1);
    f.hold = true;
    ck_assert_int_eq(raft_transfer_leadership(r, 2), 0);
    fx_settle(&f);
    struct fx_msg *tn = fx_find(&f, RAFT_MSG_TIMEOUT_NOW, 1, 2);
    ck_assert_ptr_nonnull(tn);
    fx_deliver_one(&f, (size_t)(tn - f.queue));
    fx_settle(&f);
    /* No pre-vote: the leader asked for this election. */
    ck_assert_int_eq(raft_state_of(fx_raft(&f, 2)), RAFT_CANDIDATE);
    ck_assert_ptr_null(fx_find(&f, RAFT_MSG_PREVOTE, 2, 0));
    struct fx_msg *v = fx_find(&f, RAFT_MSG_VOTE, 2, 3);
    ck_assert_ptr_nonnull(v);
    ck_assert(v->m.u.vote.transfer);
    ck_assert_uint_eq(v->m.term, term + 1);
    fx_deliver_one(&f, (size_t)(v - f.queue));
    fx_settle(&f);
    struct fx_msg *resp = fx_find(&f, RAFT_MSG_VOTE_RESP, 3, 2);
    ck_assert_ptr_nonnull(resp);
    ck_assert(resp->m.u.vote_resp.granted);
    f.hold = false;
    fx_settle(&f);
    ck_assert_int_eq(raft_state_of(fx_raft(&f, 2)), RAFT_LEADER);
    ck_assert_uint_eq(raft_current_term(fx_raft(&f, 2)), term + 1);
    ck_assert_uint_eq(raft_leader(fx_raft(&f, 3)), 2);
    fx_close(&f);
}
END_TEST

/* §3.10 step 1: "The prior leader stops accepting new client requests"
 * while the transfer is under way; if the target does not take over within
 * an election timeout, the transfer is aborted and requests are accepted
 * again. */
START_TEST(test_transfer_refuses_proposals_then_aborts_after_timeout)
{
    struct fx f;
    fx_init(&f, 4, 3, NULL);
    fx_elect(&f, 1);
    struct raft_node *r = fx_raft(&f, 1);
    fx_isolate(&f, 3, true);
    ck_assert_int_eq(fx_propose(&f, 1, "behind"), 0);
    ck_assert_int_eq(raft_transfer_leadership(r, 3), 0);
    ck_assert_int_eq(raft_propose(r, (const uint8_t *)"p", 1, NULL, NULL),
                     RAFT_ETRANSFER);
    ck_assert_int_eq(raft_propose_conf_change(r, RAFT_ADD_LEARNER, 4, NULL),
                     RAFT_ETRANSFER);
    /* Retargeting to node 2, whose TimeoutNow is lost, restarts the
     * clock. */
    fx_cut(&f, 1, 2, true);
    ck_assert_int_eq(raft_transfer_leadership(r, 2), 0);
    ck_assert_uint_eq(raft_transfer_target(r), 2);
    fx_settle(&f);
    fx_isolate(&f, 3, false);
    fx_cut(&f, 1, 2, true);
    fx_tick(&f, 1, f.cfg.election_ticks - 1);
    ck_assert_uint_eq(raft_transfer_target(r), 2);
    ck_assert_int_eq(raft_propose(r, (const uint8_t *)"p", 1, NULL, NULL),
                     RAFT_ETRANSFER);
    fx_tick(&f, 1, 1);
    ck_assert_uint_eq(raft_transfer_target(r), 0);
    ck_assert_int_eq(raft_state_of(r), RAFT_LEADER);
    raft_index last = raft_last_index(r);
    ck_assert_int_eq(fx_propose(&f, 1, "again"), 0);
    ck_assert_uint_eq(raft_last_index(r), last + 1);
    ck_assert_uint_eq(raft_commit_index(r), last + 1);
    fx_close(&f);
}
END_TEST

/* §3.10: only the leader transfers, and only to another voter. */
START_TEST(test_transfer_refused_for_self_non_voter_and_on_follower)
{
    struct fx f;
    fx_init(&f, 4, 3, NULL);
    fx_elect(&f, 1);
    struct raft_node *r = fx_raft(&f, 1);
    ck_assert_int_eq(raft_propose_conf_change(r, RAFT_ADD_LEARNER, 4, NULL), 0);
    fx_settle(&f);
    ck_assert_int_eq(raft_transfer_leadership(r, 1), RAFT_EINVAL);
    ck_assert_int_eq(raft_transfer_leadership(r, 4), RAFT_ENOTFOUND);
    ck_assert_int_eq(raft_transfer_leadership(r, 9), RAFT_ENOTFOUND);
    ck_assert_int_eq(raft_transfer_leadership(r, 0), RAFT_ENOTFOUND);
    ck_assert_uint_eq(raft_transfer_target(r), 0);
    ck_assert_int_eq(raft_transfer_leadership(fx_raft(&f, 2), 3),
                     RAFT_ENOTLEADER);
    /* A TimeoutNow from someone other than the leader is ignored. */
    struct raft_message m;
    memset(&m, 0, sizeof(m));
    m.type = RAFT_MSG_TIMEOUT_NOW;
    m.from = 3;
    m.to = 2;
    m.term = raft_current_term(r);
    ck_assert_int_eq(raft_step(fx_raft(&f, 2), &m), 0);
    ck_assert_int_eq(raft_state_of(fx_raft(&f, 2)), RAFT_FOLLOWER);
    ck_assert_int_eq(raft_propose(r, (const uint8_t *)"p", 1, NULL, NULL), 0);
    fx_settle(&f);
    fx_close(&f);
}
END_TEST

Suite *transfer_suite(void)
{
    Suite *s = suite_create("transfer");
    TCase *tc = tcase_create("core");
    tcase_add_test(
        tc, test_transfer_to_up_to_date_follower_sends_timeout_now_at_once);
    tcase_add_test(tc, test_transfer_to_lagging_follower_catches_it_up_first);
    tcase_add_test(tc,
                   test_transfer_target_campaign_bypasses_leader_stickiness);
    tcase_add_test(tc,
                   test_transfer_refuses_proposals_then_aborts_after_timeout);
    tcase_add_test(tc,
                   test_transfer_refused_for_self_non_voter_and_on_follower);
    suite_add_tcase(s, tc);
    return s;
}
