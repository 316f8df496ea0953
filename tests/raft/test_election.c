/*
 * test_election.c - §5.2 leader election, §5.4.1 election restriction,
 * §9.6 PreVote and §6.2 CheckQuorum.
 */
#include <check.h>
#include <string.h>

#include "fixture.h"
#include "suites.h"

static struct raft_config quorum_config(void)
{
    struct raft_config cfg;
    raft_config_default(&cfg, 1, 1);
    return cfg;
}

static struct raft_config plain_config(void)
{
    struct raft_config cfg;
    raft_config_default(&cfg, 1, 1);
    cfg.pre_vote = false;
    cfg.check_quorum = false;
    return cfg;
}

/* Ticks node @id (without settling) until it leaves the follower state;
 * returns the number of ticks it took. */
static unsigned tick_until_campaign(struct fx *f, raft_id id)
{
    unsigned ticks = 0;
    while (raft_state_of(fx_raft(f, id)) == RAFT_FOLLOWER && ticks < 100) {
        raft_tick(fx_raft(f, id));
        ticks++;
    }
    return ticks;
}

/* §5.2: a follower that hears nothing for an election timeout increments
 * its term, votes for itself and asks every other voter for a vote. */
START_TEST(test_election_follower_times_out_and_becomes_candidate)
{
    struct fx f;
    struct raft_config cfg = plain_config();
    fx_init(&f, 3, 3, &cfg);
    unsigned ticks = tick_until_campaign(&f, 1);
    ck_assert_uint_ge(ticks, cfg.election_ticks);
    ck_assert_uint_lt(ticks, 2 * cfg.election_ticks);

    struct raft_node *r = fx_raft(&f, 1);
    ck_assert_int_eq(raft_state_of(r), RAFT_CANDIDATE);
    ck_assert_uint_eq(raft_current_term(r), 2);
    ck_assert_uint_eq(raft_voted_for(r), 1);

    struct raft_update u;
    ck_assert(raft_ready(r, &u));
    /* The vote requests depend on the new term and vote being durable. */
    ck_assert(u.hard_state_changed);
    ck_assert_uint_eq(u.hard_state.term, 2);
    ck_assert_uint_eq(u.hard_state.vote, 1);
    ck_assert_uint_eq(u.n_messages, 0);
    ck_assert_uint_eq(u.n_messages_after_persist, 2);
    for (size_t i = 0; i < 2; i++) {
        const struct raft_message *m = &u.messages_after_persist[i];
        ck_assert_uint_eq(m->type, RAFT_MSG_VOTE);
        ck_assert_uint_eq(m->from, 1);
        ck_assert_uint_eq(m->to, i + 2);
        ck_assert_uint_eq(m->term, 2);
        ck_assert_uint_eq(m->u.vote.last_log_index, 1);
        ck_assert_uint_eq(m->u.vote.last_log_term, 1);
    }
    fx_handle(&f, 1, &u);
    fx_close(&f);
}
END_TEST

/* §5.2: a candidate that receives votes from a majority becomes leader and
 * the others learn of it from its first AppendEntries. */
START_TEST(test_election_candidate_with_majority_becomes_leader)
{
    struct fx f;
    struct raft_config cfg = plain_config();
    fx_init(&f, 3, 3, &cfg);
    fx_elect(&f, 1);
    ck_assert_int_eq(raft_state_of(fx_raft(&f, 1)), RAFT_LEADER);
    ck_assert_uint_eq(raft_current_term(fx_raft(&f, 1)), 2);
    for (raft_id id = 2; id <= 3; id++) {
        ck_assert_int_eq(raft_state_of(fx_raft(&f, id)), RAFT_FOLLOWER);
        ck_assert_uint_eq(raft_leader(fx_raft(&f, id)), 1);
        ck_assert_uint_eq(raft_current_term(fx_raft(&f, id)), 2);
        ck_assert_uint_eq(raft_voted_for(fx_raft(&f, id)), 1);
    }
    fx_close(&f);
}
END_TEST

/* §5.2: each server votes for at most one candidate in a given term. */
START_TEST(test_election_grants_at_most_one_vote_per_term)
{
    struct fx f;
    struct raft_config cfg = plain_config();
    fx_init(&f, 3, 3, &cfg);
    struct raft_message m;
    memset(&m, 0, sizeof(m));
    m.type = RAFT_MSG_VOTE;
    m.to = 3;
    m.term = 5;
    m.u.vote.last_log_index = 1;
    m.u.vote.last_log_term = 1;

    f.hold = true;
    m.from = 1;
    ck_assert_int_eq(raft_step(fx_raft(&f, 3), &m), 0);
    fx_settle(&f);
    struct fx_msg *resp = fx_find(&f, RAFT_MSG_VOTE_RESP, 3, 1);
    ck_assert_ptr_nonnull(resp);
    ck_assert(resp->m.u.vote_resp.granted);
    ck_assert_uint_eq(fx_node(&f, 3)->hs.vote, 1); /* persisted */

    m.from = 2;
    ck_assert_int_eq(raft_step(fx_raft(&f, 3), &m), 0);
    fx_settle(&f);
    resp = fx_find(&f, RAFT_MSG_VOTE_RESP, 3, 2);
    ck_assert_ptr_nonnull(resp);
    ck_assert(!resp->m.u.vote_resp.granted);
    ck_assert_uint_eq(raft_voted_for(fx_raft(&f, 3)), 1);

    /* A repeated request from the candidate it voted for is granted again
     * (the first answer may have been lost). */
    m.from = 1;
    ck_assert_int_eq(raft_step(fx_raft(&f, 3), &m), 0);
    fx_settle(&f);
    fx_drop_all(&f);
    fx_close(&f);
}
END_TEST

/* §5.4.1: a voter denies its vote to a candidate whose log is less
 * up-to-date than its own (lower last term, or same term and shorter). */
START_TEST(test_election_rejects_vote_if_log_is_stale)
{
    struct fx f;
    fx_init(&f, 3, 3, NULL); /* no CheckQuorum: node 2 may answer */
    fx_elect(&f, 1);
    ck_assert_int_eq(fx_propose(&f, 1, "x"), 0);
    /* Every node now holds entries 1-3 (bootstrap, blank, x) of terms 1, 2,
     * 2. */
    ck_assert_uint_eq(raft_last_index(fx_raft(&f, 2)), 3);

    struct
    {
        raft_index last_index;
        raft_term last_term;
        bool granted;
    } cases[] = {
        {2, 2, false}, /* same last term, shorter log */
        {9, 1, false}, /* longer log, older last term */
        {3, 2, true},  /* identical */
        {1, 3, true},  /* newer last term wins even if shorter */
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct raft_message m;
        memset(&m, 0, sizeof(m));
        m.type = RAFT_MSG_VOTE;
        m.from = 3;
        m.to = 2;
        m.term = 10 + i; /* a fresh term each time: no earlier vote */
        m.u.vote.last_log_index = cases[i].last_index;
        m.u.vote.last_log_term = cases[i].last_term;
        f.hold = true;
        /* §9.6: the pre-vote asks the same question; the vote that
         * follows a granted pre-vote is answered in the new term, and one
         * after a refused pre-vote is not heard at all (step.c). */
        m.type = RAFT_MSG_PREVOTE;
        ck_assert_int_eq(raft_step(fx_raft(&f, 2), &m), 0);
        m.type = RAFT_MSG_VOTE;
        ck_assert_int_eq(raft_step(fx_raft(&f, 2), &m), 0);
        fx_settle(&f);
        struct fx_msg *resp = fx_find(&f, RAFT_MSG_PREVOTE_RESP, 2, 3);
        ck_assert_ptr_nonnull(resp);
        ck_assert_msg(resp->m.u.vote_resp.granted == cases[i].granted,
                      "case %zu (pre-vote)", i);
        resp = fx_find(&f, RAFT_MSG_VOTE_RESP, 2, 3);
        ck_assert_msg((resp != NULL) == cases[i].granted, "case %zu", i);
        if (resp == NULL) {
            fx_drop_all(&f);
            continue;
        }
        ck_assert_msg(resp->m.u.vote_resp.granted == cases[i].granted,
                      "case %zu", i);
        fx_drop_all(&f);
    }
    fx_close(&f);
}
END_TEST

/* Figure 2: a leader that sees a higher term steps down to follower. */
START_TEST(test_election_leader_steps_down_on_higher_term)
{
    struct fx f;
    struct raft_config cfg;
    raft_config_default(&cfg, 1, 1);
    cfg.check_quorum = false; /* only nodes 1 and 2 tick */
    fx_init(&f, 3, 3, &cfg);
    fx_elect(&f, 1);
    fx_isolate(&f, 1, true);
    fx_elect(&f, 2);
    ck_assert_uint_eq(raft_current_term(fx_raft(&f, 2)), 3);
    fx_isolate(&f, 1, false);
    fx_tick(&f, 2, cfg.heartbeat_ticks); /* heartbeat reaches node 1 */
    ck_assert_int_eq(raft_state_of(fx_raft(&f, 1)), RAFT_FOLLOWER);
    ck_assert_uint_eq(raft_current_term(fx_raft(&f, 1)), 3);
    ck_assert_uint_eq(raft_leader(fx_raft(&f, 1)), 2);
    fx_close(&f);
}
END_TEST

/* §4.2.1: learners receive the log but their votes never count. A voter
 * with one learner vote and no other grant must not win. */
START_TEST(test_election_learner_vote_does_not_count)
{
    struct fx f;
    struct raft_config cfg = plain_config();
    fx_init(&f, 4, 3, &cfg);
    fx_elect(&f, 1);
    ck_assert_int_eq(
        raft_propose_conf_change(fx_raft(&f, 1), RAFT_ADD_LEARNER, 4, NULL), 0);
    fx_settle(&f);
    ck_assert_uint_eq(raft_last_index(fx_raft(&f, 4)),
                      raft_last_index(fx_raft(&f, 1)));

    /* Node 2 campaigns; only the learner (4) hears it. */
    fx_isolate(&f, 2, true);
    fx_cut(&f, 2, 4, false);
    tick_until_campaign(&f, 2);
    fx_settle(&f);
    ck_assert_int_eq(raft_state_of(fx_raft(&f, 2)), RAFT_CANDIDATE);
    /* Feed it a forged grant from the learner as well. */
    struct raft_message m;
    memset(&m, 0, sizeof(m));
    m.type = RAFT_MSG_VOTE_RESP;
    m.from = 4;
    m.to = 2;
    m.term = raft_current_term(fx_raft(&f, 2));
    m.u.vote_resp.granted = true;
    ck_assert_int_eq(raft_step(fx_raft(&f, 2), &m), 0);
    ck_assert_int_eq(raft_state_of(fx_raft(&f, 2)), RAFT_CANDIDATE);
    fx_close(&f);
}
END_TEST

/* §9.6: with PreVote, a partitioned server does not increase its term, so
 * it cannot depose the leader when it rejoins. */
START_TEST(test_prevote_partitioned_node_does_not_disrupt_on_rejoin)
{
    struct fx f;
    struct raft_config cfg;
    raft_config_default(&cfg, 1, 1);
    cfg.check_quorum = false; /* PreVote alone must be enough */
    fx_init(&f, 3, 3, &cfg);
    fx_elect(&f, 1);
    raft_term term = raft_current_term(fx_raft(&f, 1));
    fx_isolate(&f, 3, true);
    fx_tick(&f, 3, 10 * cfg.election_ticks);
    ck_assert_uint_eq(raft_current_term(fx_raft(&f, 3)), term);
    ck_assert_int_eq(raft_state_of(fx_raft(&f, 3)), RAFT_PRE_CANDIDATE);
    fx_isolate(&f, 3, false);
    fx_tick(&f, 1, cfg.heartbeat_ticks);
    ck_assert_int_eq(raft_state_of(fx_raft(&f, 1)), RAFT_LEADER);
    ck_assert_uint_eq(raft_current_term(fx_raft(&f, 1)), term);
    ck_assert_int_eq(raft_state_of(fx_raft(&f, 3)), RAFT_FOLLOWER);
    ck_assert_uint_eq(raft_leader(fx_raft(&f, 3)), 1);
    fx_close(&f);
}
END_TEST

/* §9.6: a pre-vote is refused to a candidate whose log is behind, and the
 * refusing voter's term does not change. */
START_TEST(test_prevote_refused_for_stale_log_without_term_change)
{
    struct fx f;
    fx_init(&f, 3, 3, NULL);
    fx_elect(&f, 1);
    ck_assert_int_eq(fx_propose(&f, 1, "a"), 0);
    raft_term term = raft_current_term(fx_raft(&f, 2));
    struct raft_message m;
    memset(&m, 0, sizeof(m));
    m.type = RAFT_MSG_PREVOTE;
    m.from = 3;
    m.to = 2;
    m.term = term + 1;
    m.u.vote.last_log_index = 1;
    m.u.vote.last_log_term = 1;
    /* Let node 2's leader contact expire so stickiness does not apply. */
    fx_isolate(&f, 2, true);
    fx_tick(&f, 2, 2 * f.cfg.election_ticks);
    fx_isolate(&f, 2, false);
    f.hold = true;
    term = raft_current_term(fx_raft(&f, 2));
    m.term = term + 1;
    ck_assert_int_eq(raft_step(fx_raft(&f, 2), &m), 0);
    fx_settle(&f);
    struct fx_msg *resp = fx_find(&f, RAFT_MSG_PREVOTE_RESP, 2, 3);
    ck_assert_ptr_nonnull(resp);
    ck_assert(!resp->m.u.vote_resp.granted);
    ck_assert_uint_eq(raft_current_term(fx_raft(&f, 2)), term);
    fx_drop_all(&f);
    fx_close(&f);
}
END_TEST

/* §6.2: a leader that cannot hear from a majority for an election timeout
 * steps down. */
START_TEST(test_check_quorum_leader_steps_down_without_majority)
{
    struct fx f;
    struct raft_config cfg = quorum_config();
    fx_init(&f, 3, 3, &cfg);
    fx_elect(&f, 1);
    fx_isolate(&f, 1, true);
    fx_tick(&f, 1, 2 * f.cfg.election_ticks);
    ck_assert_int_eq(raft_state_of(fx_raft(&f, 1)), RAFT_FOLLOWER);
    ck_assert_uint_eq(raft_leader(fx_raft(&f, 1)), 0);
    fx_close(&f);
}
END_TEST

/* §4.2.3/§6.2: while a follower hears from its leader it ignores vote
 * requests, so a server with a higher term cannot depose a healthy leader. */
START_TEST(test_check_quorum_follower_ignores_votes_while_leader_alive)
{
    struct fx f;
    struct raft_config cfg = quorum_config();
    fx_init(&f, 3, 3, &cfg);
    fx_elect(&f, 1);
    raft_term term = raft_current_term(fx_raft(&f, 2));
    struct raft_message m;
    memset(&m, 0, sizeof(m));
    m.type = RAFT_MSG_VOTE;
    m.from = 3;
    m.to = 2;
    m.term = term + 5;
    m.u.vote.last_log_index = 100;
    m.u.vote.last_log_term = term;
    ck_assert_int_eq(raft_step(fx_raft(&f, 2), &m), 0);
    ck_assert_uint_eq(raft_current_term(fx_raft(&f, 2)), term);
    ck_assert_uint_eq(raft_leader(fx_raft(&f, 2)), 1);
    fx_close(&f);
}
END_TEST

/* §5.2: timeouts are random, drawn per node from the seed: two nodes with
 * different ids do not all time out on the same tick, and a node is
 * reproducible given its seed. */
START_TEST(test_election_timeouts_are_randomized_and_reproducible)
{
    unsigned first[8], again[8];
    for (int round = 0; round < 2; round++) {
        for (raft_id id = 1; id <= 8; id++) {
            struct raft_config cfg;
            struct raft_node *r;
            raft_config_default(&cfg, id, 42);
            ck_assert_int_eq(raft_node_create(&cfg, &r), 0);
            struct raft_conf conf = {.n = 1};
            conf.members[0].id = id;
            conf.members[0].role = RAFT_VOTER;
            ck_assert_int_eq(raft_bootstrap(r, &conf), 0);
            unsigned t = 0;
            while (raft_state_of(r) == RAFT_FOLLOWER && t < 100) {
                raft_tick(r);
                t++;
            }
            ck_assert_uint_ge(t, cfg.election_ticks);
            ck_assert_uint_lt(t, 2 * cfg.election_ticks);
            unsigned *dst = round == 0 ? first : again;
            dst[id - 1] = t;
            raft_node_destroy(r);
        }
    }
    bool differ = false;
    for (int i = 0; i < 8; i++) {
        ck_assert_uint_eq(first[i], again[i]);
        differ |= first[i] != first[0];
    }
    ck_assert(differ);
}
END_TEST

Suite *election_suite(void)
{
    Suite *s = suite_create("election");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_election_follower_times_out_and_becomes_candidate);
    tcase_add_test(tc, test_election_candidate_with_majority_becomes_leader);
    tcase_add_test(tc, test_election_grants_at_most_one_vote_per_term);
    tcase_add_test(tc, test_election_rejects_vote_if_log_is_stale);
    tcase_add_test(tc, test_election_leader_steps_down_on_higher_term);
    tcase_add_test(tc, test_election_learner_vote_does_not_count);
    tcase_add_test(tc,
                   test_prevote_partitioned_node_does_not_disrupt_on_rejoin);
    tcase_add_test(tc, test_prevote_refused_for_stale_log_without_term_change);
    tcase_add_test(tc, test_check_quorum_leader_steps_down_without_majority);
    tcase_add_test(tc,
                   test_check_quorum_follower_ignores_votes_while_leader_alive);
    tcase_add_test(tc, test_election_timeouts_are_randomized_and_reproducible);
    suite_add_tcase(s, tc);
    return s;
}
