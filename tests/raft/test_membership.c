/*
 * test_membership.c - cluster membership changes one server at a time
 * (dissertation chapter 4) and the configuration encoding.
 */
#include <check.h>
#include <string.h>

#include "fixture.h"
#include "suites.h"

static int change(struct fx *f, raft_id leader, int kind, raft_id id)
{
    int rv = raft_propose_conf_change(fx_raft(f, leader),
                                      (enum raft_conf_change)kind, id, NULL);
    fx_settle(f);
    return rv;
}

static uint8_t role_of(struct fx *f, raft_id on, raft_id id)
{
    const struct raft_member *m =
        raft_conf_get(raft_conf_of(fx_raft(f, on)), id);
    return m != NULL ? m->role : 0;
}

/* §4.2.1: a learner receives the log but does not count toward a
 * majority: with two of three voters away, leader plus learner cannot
 * commit. */
START_TEST(test_membership_learner_gets_log_but_never_counts_for_commit)
{
    struct fx f;
    fx_init(&f, 4, 3, NULL);
    fx_elect(&f, 1);
    ck_assert_int_eq(change(&f, 1, RAFT_ADD_LEARNER, 4), 0);
    struct raft_node *r = fx_raft(&f, 1);
    ck_assert_uint_eq(raft_conf_of(r)->n, 4);
    ck_assert_uint_eq(raft_conf_voters(raft_conf_of(r)), 3);
    ck_assert_uint_eq(role_of(&f, 1, 4), RAFT_LEARNER);
    ck_assert_uint_eq(role_of(&f, 4, 4), RAFT_LEARNER);
    ck_assert_uint_eq(raft_last_index(fx_raft(&f, 4)), raft_last_index(r));
    ck_assert_uint_eq(fx_node(&f, 4)->applied, fx_node(&f, 1)->applied);

    /* One voter down of three: leader and node 2 commit. */
    fx_isolate(&f, 3, true);
    ck_assert_int_eq(fx_propose(&f, 1, "a"), 0);
    ck_assert_uint_eq(raft_commit_index(r), raft_last_index(r));

    /* Two voters down: the learner's copy does not make a majority. */
    fx_isolate(&f, 2, true);
    raft_index before = raft_commit_index(r);
    ck_assert_int_eq(fx_propose(&f, 1, "b"), 0);
    ck_assert_uint_eq(raft_match_index(r, 4), before + 1);
    ck_assert_uint_eq(raft_last_index(fx_raft(&f, 4)), before + 1);
    ck_assert_uint_eq(raft_commit_index(r), before);
    fx_isolate(&f, 2, false);
    fx_tick(&f, 1, 1);
    ck_assert_uint_eq(raft_commit_index(r), before + 1);
    /* A learner never campaigns. */
    fx_tick(&f, 4, 5 * f.cfg.election_ticks);
    ck_assert_int_eq(raft_state_of(fx_raft(&f, 4)), RAFT_FOLLOWER);
    ck_assert_uint_eq(raft_stats_of(fx_raft(&f, 4))->elections_started, 0);
    fx_check_applied_agree(&f);
    fx_close(&f);
}
END_TEST

/* §4.2.1: once promoted, the former learner counts: with four voters a
 * majority is three, and with nodes 3 and 4 away nothing commits until
 * node 4 is back. */
START_TEST(test_membership_promoted_learner_counts_for_commit)
{
    struct fx f;
    fx_init(&f, 4, 3, NULL);
    fx_elect(&f, 1);
    ck_assert_int_eq(change(&f, 1, RAFT_ADD_LEARNER, 4), 0);
    ck_assert_int_eq(change(&f, 1, RAFT_PROMOTE, 4), 0);
    struct raft_node *r = fx_raft(&f, 1);
    ck_assert_uint_eq(raft_conf_voters(raft_conf_of(r)), 4);
    ck_assert_uint_eq(role_of(&f, 1, 4), RAFT_VOTER);
    ck_assert_uint_eq(role_of(&f, 4, 4), RAFT_VOTER);
    ck_assert_uint_eq(raft_commit_index(r), raft_last_index(r));

    fx_isolate(&f, 3, true);
    fx_isolate(&f, 4, true);
    raft_index before = raft_commit_index(r);
    ck_assert_int_eq(fx_propose(&f, 1, "p"), 0);
    ck_assert_uint_eq(raft_commit_index(r), before);
    fx_isolate(&f, 4, false);
    fx_tick(&f, 1, 1);
    ck_assert_uint_eq(raft_commit_index(r), before + 1);
    fx_close(&f);
}
END_TEST

/* §4.1: "a server always uses the latest configuration in its log,
 * regardless of whether the entry is committed": adding a voter raises
 * the majority for the very entry that adds it. */
START_TEST(test_membership_added_voter_counts_from_the_append_on)
{
    struct fx f;
    fx_init(&f, 4, 3, NULL);
    fx_elect(&f, 1);
    struct raft_node *r = fx_raft(&f, 1);
    fx_isolate(&f, 3, true);
    fx_isolate(&f, 4, true);
    raft_index before = raft_commit_index(r);
    raft_index at = 0;
    ck_assert_int_eq(raft_propose_conf_change(r, RAFT_ADD_VOTER, 4, &at), 0);
    ck_assert_uint_eq(at, before + 1);
    ck_assert_uint_eq(raft_conf_voters(raft_conf_of(r)), 4);
    fx_settle(&f);
    /* Leader and node 2 are two of four: not a majority any more. */
    ck_assert_uint_eq(raft_conf_voters(raft_conf_of(fx_raft(&f, 2))), 4);
    ck_assert_uint_eq(raft_commit_index(r), before);
    fx_isolate(&f, 4, false);
    fx_tick(&f, 1, 2);
    ck_assert_uint_eq(raft_commit_index(r), at);
    ck_assert_uint_eq(raft_last_index(fx_raft(&f, 4)), at);
    ck_assert_uint_eq(role_of(&f, 4, 4), RAFT_VOTER);
    fx_close(&f);
}
END_TEST

/* §4.2.2/§4.2.3: a removed follower is no longer replicated to (the leader
 * drops it as soon as the entry is appended, so it may never learn of its
 * removal), and its campaigns cannot disrupt the cluster: its log falls
 * behind, so its pre-votes are refused and no term moves. */
START_TEST(test_membership_removed_follower_is_dropped_and_cannot_disrupt)
{
    struct fx f;
    fx_init(&f, 3, 3, NULL);
    fx_elect(&f, 1);
    struct raft_node *r = fx_raft(&f, 1);
    raft_index last3 = raft_last_index(fx_raft(&f, 3));
    ck_assert_int_eq(change(&f, 1, RAFT_REMOVE, 3), 0);
    ck_assert_uint_eq(raft_conf_of(r)->n, 2);
    ck_assert_ptr_null(raft_conf_get(raft_conf_of(r), 3));
    ck_assert_ptr_null(raft_conf_get(raft_conf_of(fx_raft(&f, 2)), 3));
    ck_assert_uint_eq(raft_commit_index(r), raft_last_index(r));
    ck_assert_uint_eq(raft_match_index(r, 3), 0);
    ck_assert_int_eq(fx_propose(&f, 1, "without 3"), 0);
    f.hold = true;
    fx_tick(&f, 1, 1);
    ck_assert_ptr_null(fx_find(&f, RAFT_MSG_HEARTBEAT, 1, 3));
    ck_assert_ptr_null(fx_find(&f, RAFT_MSG_APPEND, 1, 3));
    fx_drop_all(&f);
    f.hold = false;
    ck_assert_uint_eq(raft_last_index(fx_raft(&f, 3)), last3);

    raft_term term = raft_current_term(r);
    fx_tick(&f, 3, 5 * f.cfg.election_ticks);
    ck_assert_uint_gt(raft_stats_of(fx_raft(&f, 3))->elections_started, 0);
    ck_assert_int_eq(raft_state_of(r), RAFT_LEADER);
    ck_assert_uint_eq(raft_current_term(r), term);
    ck_assert_uint_eq(raft_current_term(fx_raft(&f, 2)), term);
    ck_assert_uint_eq(raft_leader(fx_raft(&f, 2)), 1);
    /* Two voters: both are needed. */
    fx_isolate(&f, 2, true);
    raft_index before = raft_commit_index(r);
    ck_assert_int_eq(fx_propose(&f, 1, "stuck"), 0);
    ck_assert_uint_eq(raft_commit_index(r), before);
    fx_close(&f);
}
END_TEST

/* §4.1: "a server grants its vote to a candidate that is not part of the
 * server's latest configuration (if the candidate has a sufficiently
 * up-to-date log and a current term)": a voter that has not yet learned
 * of a new member must still be able to elect it. */
START_TEST(test_membership_vote_granted_to_candidate_outside_configuration)
{
    struct fx f;
    fx_init(&f, 3, 3, NULL);
    struct raft_node *r = fx_raft(&f, 2);
    raft_term term = raft_current_term(r);
    f.hold = true;
    struct raft_message m;
    memset(&m, 0, sizeof(m));
    m.type = RAFT_MSG_PREVOTE; /* §9.6: it asks first */
    m.from = 7;                /* unknown to node 2 */
    m.to = 2;
    m.term = term + 1;
    m.u.vote.last_log_index = 5;
    m.u.vote.last_log_term = term + 1;
    ck_assert_int_eq(raft_step(r, &m), 0);
    m.type = RAFT_MSG_VOTE;
    ck_assert_int_eq(raft_step(r, &m), 0);
    fx_settle(&f);
    ck_assert_uint_eq(raft_current_term(r), term + 1);
    ck_assert_uint_eq(raft_voted_for(r), 7);
    ck_assert_uint_eq(raft_stats_of(r)->msgs_rejected, 0);
    struct fx_msg *resp = fx_find(&f, RAFT_MSG_VOTE_RESP, 2, 7);
    ck_assert_ptr_nonnull(resp);
    ck_assert(resp->m.u.vote_resp.granted);
    fx_drop_all(&f);
    fx_close(&f);
}
END_TEST

/* §4.2.2: a leader removing itself keeps replicating, without counting
 * itself, until the entry commits; then it steps down and hands over with
 * TimeoutNow so the cluster does not wait for an election timeout. */
START_TEST(test_membership_leader_removing_itself_steps_down_after_commit)
{
    struct fx f;
    fx_init(&f, 3, 3, NULL);
    fx_elect(&f, 1);
    struct raft_node *r = fx_raft(&f, 1);
    raft_term term = raft_current_term(r);
    fx_isolate(&f, 3, true);
    raft_index at = 0;
    ck_assert_int_eq(raft_propose_conf_change(r, RAFT_REMOVE, 1, &at), 0);
    fx_settle(&f);
    /* Leader and node 2 hold the entry, but the new configuration is {2,
     * 3} and only node 2 of it has it. */
    ck_assert_uint_eq(raft_match_index(r, 2), at);
    ck_assert_uint_eq(raft_commit_index(r), at - 1);
    ck_assert_int_eq(raft_state_of(r), RAFT_LEADER);
    ck_assert_int_eq(raft_propose(r, (const uint8_t *)"m", 1, NULL, NULL), 0);
    fx_settle(&f);
    ck_assert_uint_eq(raft_commit_index(r), at - 1);

    fx_isolate(&f, 3, false);
    f.hold = true;
    fx_tick(&f, 1, 1);
    for (int i = 0; i < 50 && raft_state_of(r) == RAFT_LEADER; i++) {
        ck_assert(f.n_queue > 0);
        fx_deliver_one(&f, 0);
        fx_settle(&f);
    }
    ck_assert_int_eq(raft_state_of(r), RAFT_FOLLOWER);
    ck_assert_uint_ge(raft_commit_index(r), at);
    struct fx_msg *tn = fx_find(&f, RAFT_MSG_TIMEOUT_NOW, 1, 0);
    ck_assert_ptr_nonnull(tn);
    raft_id next = tn->m.to;
    ck_assert(next == 2 || next == 3);
    /* Nobody else ticks: the handover alone elects the next leader. */
    f.hold = false;
    fx_settle(&f);
    ck_assert_int_eq(raft_state_of(fx_raft(&f, next)), RAFT_LEADER);
    ck_assert_uint_eq(raft_current_term(fx_raft(&f, next)), term + 1);
    ck_assert_ptr_null(raft_conf_get(raft_conf_of(fx_raft(&f, next)), 1));
    ck_assert_int_eq(fx_propose(&f, next, "after"), 0);
    raft_id other = next == 2 ? 3 : 2;
    ck_assert_uint_eq(raft_commit_index(fx_raft(&f, next)),
                      raft_last_index(fx_raft(&f, other)));
    /* The removed node no longer campaigns. */
    fx_tick(&f, 1, 5 * f.cfg.election_ticks);
    ck_assert_int_eq(raft_state_of(r), RAFT_FOLLOWER);
    fx_close(&f);
}
END_TEST

/* §4.1: only one change may be uncommitted at a time; the next one is
 * refused until the previous commits. */
START_TEST(test_membership_one_uncommitted_change_at_a_time)
{
    struct fx f;
    fx_init(&f, 5, 3, NULL);
    fx_elect(&f, 1);
    struct raft_node *r = fx_raft(&f, 1);
    ck_assert_int_eq(raft_propose_conf_change(r, RAFT_ADD_LEARNER, 4, NULL), 0);
    ck_assert_int_eq(raft_propose_conf_change(r, RAFT_ADD_LEARNER, 5, NULL),
                     RAFT_ECONFPENDING);
    ck_assert_int_eq(raft_propose_conf_change(r, RAFT_REMOVE, 3, NULL),
                     RAFT_ECONFPENDING);
    ck_assert_uint_eq(raft_conf_of(r)->n, 4);
    fx_settle(&f);
    ck_assert_int_eq(raft_propose_conf_change(r, RAFT_ADD_LEARNER, 5, NULL), 0);
    fx_settle(&f);
    ck_assert_uint_eq(raft_conf_of(r)->n, 5);
    fx_close(&f);
}
END_TEST

/* §4.1 and the 2015 raft-dev correction: a new leader may not change the
 * configuration before it has committed an entry of its own term. */
START_TEST(test_membership_no_change_before_leader_commits_in_its_term)
{
    struct fx f;
    fx_init(&f, 3, 3, NULL);
    struct raft_node *r = fx_raft(&f, 1);
    f.hold = true;
    while (raft_state_of(r) != RAFT_LEADER) {
        ck_assert_uint_lt(raft_current_term(r), 10);
        raft_tick(r);
        fx_settle(&f);
        for (size_t i = 0; i < f.n_queue;) {
            uint8_t t = f.queue[i].m.type;
            if (t == RAFT_MSG_APPEND || t == RAFT_MSG_HEARTBEAT) {
                i++;
                continue;
            }
            fx_deliver_one(&f, i);
            fx_settle(&f);
        }
    }
    fx_drop_all(&f);
    ck_assert_uint_eq(raft_commit_index(r), 1);
    ck_assert_int_eq(raft_propose_conf_change(r, RAFT_REMOVE, 3, NULL),
                     RAFT_ECONFPENDING);
    f.hold = false;
    fx_tick(&f, 1, 1);
    ck_assert_uint_eq(raft_commit_index(r), 2);
    ck_assert_int_eq(raft_propose_conf_change(r, RAFT_REMOVE, 3, NULL), 0);
    fx_settle(&f);
    fx_close(&f);
}
END_TEST

/* Chapter 4: invalid requests are refused without touching the log. */
START_TEST(test_membership_invalid_changes_are_refused)
{
    struct fx f;
    fx_init(&f, 2, 1, NULL);
    fx_elect(&f, 1);
    struct raft_node *r = fx_raft(&f, 1);
    ck_assert_int_eq(change(&f, 1, RAFT_ADD_LEARNER, 2), 0);
    raft_index last = raft_last_index(r);
    struct
    {
        int kind;
        raft_id id;
        int rv;
    } cases[] = {
        {RAFT_REMOVE, 9, RAFT_ENOTFOUND},   /* not a member */
        {RAFT_PROMOTE, 9, RAFT_ENOTFOUND},  /* not a member */
        {RAFT_REMOVE, 1, RAFT_EINVAL},      /* the last voter */
        {RAFT_ADD_VOTER, 2, RAFT_EINVAL},   /* already present */
        {RAFT_ADD_LEARNER, 1, RAFT_EINVAL}, /* already present */
        {RAFT_PROMOTE, 1, RAFT_EINVAL},     /* already a voter */
        {RAFT_ADD_VOTER, 0, RAFT_EINVAL},   /* id 0 is nobody */
        {99, 3, RAFT_EINVAL},               /* no such change */
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        ck_assert_msg(
            raft_propose_conf_change(r, (enum raft_conf_change)cases[i].kind,
                                     cases[i].id, NULL) == cases[i].rv,
            "case %zu", i);
        ck_assert_uint_eq(raft_last_index(r), last);
        ck_assert_uint_eq(raft_conf_of(r)->n, 2);
    }
    ck_assert_int_eq(
        raft_propose_conf_change(fx_raft(&f, 2), RAFT_ADD_VOTER, 3, NULL),
        RAFT_ENOTLEADER);
    /* A full configuration takes nobody else. */
    fx_close(&f);
}
END_TEST

/* §4.1: the configuration takes effect when appended, and a follower
 * whose uncommitted configuration entry is overwritten by a new leader
 * goes back to the previous configuration. */
START_TEST(test_membership_truncated_conf_entry_is_rolled_back)
{
    struct fx f;
    fx_init(&f, 5, 5, NULL);
    fx_elect(&f, 1);
    struct raft_node *r1 = fx_raft(&f, 1);
    struct raft_node *r2 = fx_raft(&f, 2);
    raft_index commit = raft_commit_index(r1);
    f.hold = true;
    raft_index at = 0;
    ck_assert_int_eq(raft_propose_conf_change(r1, RAFT_REMOVE, 5, &at), 0);
    ck_assert_uint_eq(raft_conf_of(r1)->n, 4);
    fx_settle(&f);

    {
        struct fx_msg *m = fx_find(&f, RAFT_MSG_APPEND, 1, 2);
        ck_assert_ptr_nonnull(m);
        fx_deliver_one(&f, (size_t)(m - f.queue));
        fx_settle(&f);
        fx_drop_all(&f);
    }
    /* Node 2 uses the configuration before it commits. */
    ck_assert_uint_eq(raft_last_index(r2), at);
    ck_assert_uint_eq(raft_commit_index(r2), commit);
    ck_assert_uint_eq(raft_conf_of(r2)->n, 4);
    ck_assert_ptr_null(raft_conf_get(raft_conf_of(r2), 5));

    /* Node 3 wins a new term without the entry, and overwrites it. */
    f.hold = false;
    fx_isolate(&f, 1, true);
    fx_isolate(&f, 2, true);
    fx_elect(&f, 3);
    ck_assert_uint_eq(raft_conf_of(fx_raft(&f, 3))->n, 5);
    fx_isolate(&f, 2, false);
    fx_tick(&f, 3, 2);
    ck_assert_uint_eq(raft_term_at(r2, at), raft_current_term(fx_raft(&f, 3)));
    ck_assert_uint_eq(raft_conf_of(r2)->n, 5);
    ck_assert_ptr_nonnull(raft_conf_get(raft_conf_of(r2), 5));
    /* So does the old leader once it rejoins. */
    fx_isolate(&f, 1, false);
    fx_tick(&f, 3, 2);
    ck_assert_int_eq(raft_state_of(r1), RAFT_FOLLOWER);
    ck_assert_uint_eq(raft_conf_of(r1)->n, 5);
    fx_check_applied_agree(&f);
    fx_close(&f);
}
END_TEST

/* The configuration encoding round-trips, and every malformed encoding is
 * refused without touching the output. */
START_TEST(test_membership_conf_encoding_round_trips_and_rejects_garbage)
{
    struct raft_conf conf, out;
    uint8_t buf[RAFT_CONF_ENCODED_MAX + 16];
    size_t len;
    memset(&conf, 0, sizeof(conf));
    for (uint32_t i = 0; i < RAFT_CONF_MAX; i++) {
        conf.members[i].id = 0x0102030405060708ULL * (i + 1);
        conf.members[i].role = i % 3 == 0 ? RAFT_LEARNER : RAFT_VOTER;
    }
    for (uint32_t n = 0; n <= RAFT_CONF_MAX; n++) {
        conf.n = n;
        raft_conf_encode(&conf, buf, &len);
        ck_assert_uint_eq(len, 8 + 9 * n);
        memset(&out, 0xab, sizeof(out));
        ck_assert_int_eq(raft_conf_decode(buf, len, &out), 0);
        ck_assert_uint_eq(out.n, n);
        for (uint32_t i = 0; i < n; i++) {
            ck_assert_uint_eq(out.members[i].id, conf.members[i].id);
            ck_assert_uint_eq(out.members[i].role, conf.members[i].role);
        }
    }
    conf.n = 3;
    raft_conf_encode(&conf, buf, &len);
    ck_assert_uint_eq(len, 35);
    struct raft_conf sentinel;
    memset(&sentinel, 0x5a, sizeof(sentinel));

    uint8_t bad[64];
#define EXPECT_BAD(bytes, n)                                                 \
    do {                                                                     \
        out = sentinel;                                                      \
        ck_assert_int_eq(raft_conf_decode((bytes), (n), &out), RAFT_EINVAL); \
        ck_assert_mem_eq(&out, &sentinel, sizeof(out));                      \
    } while (0)
    EXPECT_BAD(NULL, 35);
    EXPECT_BAD(buf, 0);
    EXPECT_BAD(buf, 7);
    EXPECT_BAD(buf, 34); /* short by one */
    memcpy(bad, buf, len);
    bad[len] = 0;
    EXPECT_BAD(bad, 36); /* trailing byte */
    memcpy(bad, buf, len);
    bad[0] = 2; /* unknown version */
    EXPECT_BAD(bad, 35);
    memcpy(bad, buf, len);
    bad[4] = RAFT_CONF_MAX + 1; /* too many members for the length too */
    EXPECT_BAD(bad, 35);
    memcpy(bad, buf, len);
    bad[7] = 0x80; /* n huge: 8 + 9n must not wrap around */
    EXPECT_BAD(bad, 35);
    memcpy(bad, buf, len);
    bad[16] = 0; /* role 0 */
    EXPECT_BAD(bad, 35);
    bad[16] = 3; /* unknown role */
    EXPECT_BAD(bad, 35);
    memcpy(bad, buf, len);
    memset(bad + 8, 0, 8); /* id 0 */
    EXPECT_BAD(bad, 35);
    memcpy(bad, buf, len);
    memcpy(bad + 17, bad + 8, 8); /* duplicate id */
    EXPECT_BAD(bad, 35);
#undef EXPECT_BAD
}
END_TEST

Suite *membership_suite(void)
{
    Suite *s = suite_create("membership");
    TCase *tc = tcase_create("core");
    tcase_add_test(
        tc, test_membership_learner_gets_log_but_never_counts_for_commit);
    tcase_add_test(tc, test_membership_promoted_learner_counts_for_commit);
    tcase_add_test(tc, test_membership_added_voter_counts_from_the_append_on);
    tcase_add_test(
        tc, test_membership_removed_follower_is_dropped_and_cannot_disrupt);
    tcase_add_test(
        tc, test_membership_vote_granted_to_candidate_outside_configuration);
    tcase_add_test(
        tc, test_membership_leader_removing_itself_steps_down_after_commit);
    tcase_add_test(tc, test_membership_one_uncommitted_change_at_a_time);
    tcase_add_test(tc,
                   test_membership_no_change_before_leader_commits_in_its_term);
    tcase_add_test(tc, test_membership_invalid_changes_are_refused);
    tcase_add_test(tc, test_membership_truncated_conf_entry_is_rolled_back);
    tcase_add_test(
        tc, test_membership_conf_encoding_round_trips_and_rejects_garbage);
    suite_add_tcase(s, tc);
    return s;
}
