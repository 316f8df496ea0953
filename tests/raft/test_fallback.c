/*
 * test_fallback.c - raft_force_conf(): a configuration forced on one node
 * outside consensus, the core of the primary-replica fallback
 * (docs/modes.md). The only voter commits on its own durable write,
 * learners follow its log, older terms are fenced, and a member that
 * committed entries the forced primary lacks refuses to be counted.
 */
#include <check.h>
#include <string.h>

#include "fixture.h"
#include "suites.h"

/* {primary voter, every other id in 1..n a learner}. */
static struct raft_conf primary_conf(unsigned n, raft_id primary)
{
    struct raft_conf c;
    memset(&c, 0, sizeof(c));
    for (raft_id id = 1; id <= n; id++) {
        c.members[c.n].id = id;
        c.members[c.n].role = id == primary ? RAFT_VOTER : RAFT_LEARNER;
        c.n++;
    }
    return c;
}

static int force(struct fx *f, raft_id on, raft_id primary, raft_term min_term)
{
    struct raft_conf c = primary_conf(f->n, primary);
    int rv = raft_force_conf(fx_raft(f, on), &c, min_term, NULL, NULL);
    fx_settle(f);
    return rv;
}

/* Two of three voters are gone for good: the survivor cannot commit. Forced
 * to be the only voter, it leads at once in a term above every term it saw
 * and commits alone, its earlier uncommitted entry included. */
START_TEST(test_fallback_forced_only_voter_leads_and_commits_alone)
{
    struct fx f;
    fx_init(&f, 3, 3, NULL);
    fx_elect(&f, 1);
    ck_assert_int_eq(fx_propose(&f, 1, "a"), 0);
    fx_crash(&f, 2);
    fx_crash(&f, 3);
    struct raft_node *r = fx_raft(&f, 1);
    ck_assert_int_eq(fx_propose(&f, 1, "b"), 0);
    raft_index uncommitted = raft_last_index(r);
    ck_assert_uint_lt(raft_commit_index(r), uncommitted);
    raft_term old = raft_current_term(r);

    raft_term t = 0;
    raft_index at = 0;
    struct raft_conf c = primary_conf(3, 1);
    ck_assert_int_eq(raft_force_conf(r, &c, 0, &t, &at), 0);
    ck_assert_uint_gt(t, old);
    ck_assert_uint_eq(at, uncommitted + 1);
    ck_assert_int_eq(raft_state_of(r), RAFT_LEADER);
    ck_assert_uint_eq(raft_current_term(r), t);
    ck_assert_uint_eq(raft_voted_for(r), 1);
    fx_settle(&f);
    /* The forced entry, the blank entry, and everything before them. */
    ck_assert_uint_eq(raft_commit_index(r), raft_last_index(r));
    ck_assert_uint_eq(raft_term_at(r, at), t);
    ck_assert_uint_eq(raft_conf_voters(raft_conf_of(r)), 1);
    ck_assert_int_eq(fx_propose(&f, 1, "c"), 0);
    ck_assert_uint_eq(raft_commit_index(r), raft_last_index(r));
    fx_close(&f);
}
END_TEST

/* The term is above @min_term too, so a caller can put the new epoch
 * beyond terms it knows of from elsewhere. */
START_TEST(test_fallback_forced_term_is_above_the_minimum_given)
{
    struct fx f;
    fx_init(&f, 3, 3, NULL);
    fx_elect(&f, 1);
    ck_assert_int_eq(force(&f, 1, 1, 500), 0);
    ck_assert_uint_eq(raft_current_term(fx_raft(&f, 1)), 501);
    fx_close(&f);
}
END_TEST

/* Members that come back receive the primary's log, adopt the forced
 * configuration as learners (their stale one with three voters is
 * superseded), apply the same entries, and never campaign. */
START_TEST(test_fallback_returning_members_become_learners_and_never_campaign)
{
    struct fx f;
    fx_init(&f, 3, 3, NULL);
    fx_elect(&f, 1);
    ck_assert_int_eq(fx_propose(&f, 1, "a"), 0);
    fx_isolate(&f, 2, true);
    fx_isolate(&f, 3, true);
    ck_assert_int_eq(fx_propose(&f, 1, "b"), 0);
    ck_assert_int_eq(force(&f, 1, 1, 0), 0);
    ck_assert_int_eq(fx_propose(&f, 1, "c"), 0);
    fx_isolate(&f, 2, false);
    fx_isolate(&f, 3, false);
    fx_tick(&f, 1, 2);
    struct raft_node *r = fx_raft(&f, 1);
    for (raft_id id = 2; id <= 3; id++) {
        struct raft_node *l = fx_raft(&f, id);
        ck_assert_uint_eq(raft_last_index(l), raft_last_index(r));
        ck_assert_uint_eq(raft_current_term(l), raft_current_term(r));
        ck_assert_uint_eq(raft_conf_get(raft_conf_of(l), id)->role,
                          RAFT_LEARNER);
        ck_assert_uint_eq(raft_match_index(r, id), raft_last_index(r));
    }
    fx_check_applied_agree(&f);
    uint64_t before = raft_stats_of(fx_raft(&f, 2))->elections_started;
    fx_isolate(&f, 1, true);
    fx_tick(&f, 2, 5 * f.cfg.election_ticks);
    fx_tick(&f, 3, 5 * f.cfg.election_ticks);
    ck_assert_uint_eq(raft_stats_of(fx_raft(&f, 2))->elections_started, before);
    ck_assert_int_eq(raft_state_of(fx_raft(&f, 2)), RAFT_FOLLOWER);
    ck_assert_int_eq(raft_state_of(fx_raft(&f, 3)), RAFT_FOLLOWER);
    fx_close(&f);
}
END_TEST

/* The forced configuration and its term are in the log and hard state:
 * after a crash the primary is still the only voter, elects itself and
 * goes on committing alone, in a term at least as high. */
START_TEST(test_fallback_forced_configuration_survives_a_restart)
{
    struct fx f;
    fx_init(&f, 3, 3, NULL);
    fx_elect(&f, 1);
    fx_crash(&f, 2);
    fx_crash(&f, 3);
    ck_assert_int_eq(force(&f, 1, 1, 0), 0);
    raft_term epoch = raft_current_term(fx_raft(&f, 1));
    fx_crash(&f, 1);
    fx_restart(&f, 1);
    struct raft_node *r = fx_raft(&f, 1);
    ck_assert_uint_eq(raft_conf_voters(raft_conf_of(r)), 1);
    fx_elect(&f, 1);
    ck_assert_uint_ge(raft_current_term(r), epoch);
    ck_assert_int_eq(fx_propose(&f, 1, "d"), 0);
    ck_assert_uint_eq(raft_commit_index(r), raft_last_index(r));
    fx_close(&f);
}
END_TEST

/* Fencing: a leader of the old configuration and an older term (the
 * majority the operator believed lost) is told the newer term and steps
 * down; its followers accept nothing from it any more. */
START_TEST(test_fallback_leader_of_an_older_term_is_fenced)
{
    struct fx f;
    fx_init(&f, 3, 3, NULL);
    fx_elect(&f, 2);
    ck_assert_int_eq(fx_propose(&f, 2, "a"), 0);
    fx_isolate(&f, 1, true);
    ck_assert_int_eq(force(&f, 1, 1, 100), 0);
    fx_isolate(&f, 1, false);
    /* Node 2 still believes it leads term < 101; node 1's heartbeat
     * carries 101. */
    fx_tick(&f, 1, 1);
    fx_tick(&f, 2, 1);
    ck_assert_int_ne(raft_state_of(fx_raft(&f, 2)), RAFT_LEADER);
    ck_assert_uint_eq(raft_current_term(fx_raft(&f, 2)), 101);
    ck_assert_uint_eq(raft_current_term(fx_raft(&f, 3)), 101);
    ck_assert_uint_eq(raft_leader(fx_raft(&f, 3)), 1);
    fx_check_applied_agree(&f);
    fx_close(&f);
}
END_TEST

/* A member that committed entries the forced primary never got (the
 * operator forced while a majority was still alive, or promoted a lagging
 * replica) refuses the conflicting appends instead of answering "I match
 * up to my commit index", and counts it: the primary never believes it
 * holds entries it does not. */
START_TEST(test_fallback_member_that_committed_more_refuses_and_is_not_counted)
{
    struct fx f;
    fx_init(&f, 3, 3, NULL);
    fx_elect(&f, 2);
    fx_isolate(&f, 1, true);
    const char *more[] = {"x", "y", "z", "w", "v"};
    for (int i = 0; i < 5; i++) {
        ck_assert_int_eq(fx_propose(&f, 2, more[i]), 0);
    }
    struct raft_node *old = fx_raft(&f, 2);
    raft_index committed = raft_commit_index(old);
    ck_assert_uint_eq(committed, raft_last_index(old));
    ck_assert_uint_lt(raft_last_index(fx_raft(&f, 1)), committed);
    ck_assert_int_eq(force(&f, 1, 1, 100), 0);
    for (int i = 0; i < 8; i++) {
        ck_assert_int_eq(fx_propose(&f, 1, "p"), 0);
    }
    fx_isolate(&f, 1, false);
    for (int i = 0; i < 20; i++) {
        fx_tick(&f, 1, 1);
    }
    struct raft_node *p = fx_raft(&f, 1);
    ck_assert_uint_gt(raft_stats_of(old)->diverged, 0);
    ck_assert_uint_gt(raft_stats_of(fx_raft(&f, 3))->diverged, 0);
    /* Never counted as holding the primary's entries past the fork. */
    ck_assert_uint_lt(raft_match_index(p, 2), committed);
    ck_assert_uint_lt(raft_match_index(p, 3), committed);
    /* Their committed entries stay as they were, and the leader's probes
     * walked back to the first index where they differ from it. */
    ck_assert_uint_eq(raft_commit_index(old), committed);
    ck_assert_uint_gt(raft_diverged_at(old), 0);
    ck_assert_uint_le(raft_diverged_at(old), committed);
    ck_assert_uint_ne(raft_term_at(old, raft_diverged_at(old)),
                      raft_term_at(p, raft_diverged_at(old)));
    ck_assert_uint_eq(raft_term_at(old, raft_diverged_at(old) - 1),
                      raft_term_at(p, raft_diverged_at(old) - 1));
    fx_close(&f);
}
END_TEST

/* Bad input changes nothing: a configuration without this node, without a
 * voter, with a duplicate id; a node that never joined a cluster; a term
 * at the maximum; a call between ready and advance. */
START_TEST(test_fallback_force_refuses_bad_input_and_changes_nothing)
{
    struct fx f;
    fx_init(&f, 4, 3, NULL);
    fx_elect(&f, 1);
    struct raft_node *r = fx_raft(&f, 1);
    raft_term term = raft_current_term(r);
    raft_index last = raft_last_index(r);
    struct raft_conf c = primary_conf(3, 2);
    c.members[0].id = 9; /* node 1 is not a member */
    ck_assert_int_eq(raft_force_conf(r, &c, 0, NULL, NULL), RAFT_EINVAL);
    c = primary_conf(3, 1);
    c.members[0].role = RAFT_LEARNER; /* no voter */
    ck_assert_int_eq(raft_force_conf(r, &c, 0, NULL, NULL), RAFT_EINVAL);
    c = primary_conf(3, 1);
    c.members[2].id = 2; /* duplicate */
    ck_assert_int_eq(raft_force_conf(r, &c, 0, NULL, NULL), RAFT_EINVAL);
    ck_assert_int_eq(raft_force_conf(r, NULL, 0, NULL, NULL), RAFT_EINVAL);
    c = primary_conf(3, 1);
    ck_assert_int_eq(raft_force_conf(r, &c, UINT64_MAX / 2, NULL, NULL),
                     RAFT_EINVAL);
    /* Node 4 was never bootstrapped nor contacted. */
    struct raft_conf c4 = primary_conf(4, 4);
    ck_assert_int_eq(raft_force_conf(fx_raft(&f, 4), &c4, 0, NULL, NULL),
                     RAFT_ESTATE);
    ck_assert_int_eq(fx_propose(&f, 1, "a"), 0);
    last = raft_last_index(r);
    ck_assert_int_eq(raft_propose(r, (const uint8_t *)"b", 1, NULL, NULL), 0);
    struct raft_update u;
    ck_assert(raft_ready(r, &u));
    ck_assert_int_eq(raft_force_conf(r, &c, 0, NULL, NULL), RAFT_ESTATE);
    fx_handle(&f, 1, &u);
    fx_settle(&f);
    ck_assert_uint_eq(raft_current_term(r), term);
    ck_assert_uint_eq(raft_last_index(r), last + 1);
    ck_assert_uint_eq(raft_conf_voters(raft_conf_of(r)), 3);
    ck_assert_int_eq(raft_state_of(r), RAFT_LEADER);
    fx_close(&f);
}
END_TEST

/* Semi-sync: with k learners required, an entry of the only voter
 * commits once k learners hold it too, not on the voter's own write;
 * lowering k commits at once what the new rule allows. */
START_TEST(test_fallback_semi_sync_commits_only_once_k_learners_hold_it)
{
    struct fx f;
    fx_init(&f, 3, 3, NULL);
    fx_elect(&f, 1);
    ck_assert_int_eq(force(&f, 1, 1, 0), 0);
    fx_tick(&f, 1, 2);
    struct raft_node *p = fx_raft(&f, 1);
    ck_assert_int_eq(raft_set_commit_learners(p, 1), 0);
    fx_isolate(&f, 2, true);
    fx_isolate(&f, 3, true);
    ck_assert_int_eq(fx_propose(&f, 1, "a"), 0);
    raft_index a = raft_last_index(p);
    ck_assert_uint_lt(raft_commit_index(p), a);
    fx_isolate(&f, 2, false);
    fx_tick(&f, 1, 2);
    ck_assert_uint_eq(raft_commit_index(p), a);
    ck_assert_int_eq(raft_set_commit_learners(p, 2), 0);
    ck_assert_int_eq(fx_propose(&f, 1, "b"), 0);
    fx_tick(&f, 1, 2);
    raft_index b = raft_last_index(p);
    ck_assert_uint_lt(raft_commit_index(p), b);
    /* Degraded to async: the only voter's write is enough again. */
    ck_assert_int_eq(raft_set_commit_learners(p, 0), 0);
    fx_settle(&f);
    ck_assert_uint_eq(raft_commit_index(p), b);
    fx_close(&f);
}
END_TEST

/* Two primaries, fenced: node 1, a primary cut off, learns a newer
 * term from node 2, promoted elsewhere and a learner in node 1's
 * configuration. That configuration still makes node 1 the only voter,
 * yet it does not campaign for many election timeouts (it would out-term
 * the newer primary); it follows node 2 once it hears from it, and takes
 * node 2's configuration. */
START_TEST(test_fallback_old_primary_told_a_newer_term_holds_off_campaigning)
{
    struct fx f;
    fx_init(&f, 3, 3, NULL);
    fx_elect(&f, 1);
    ck_assert_int_eq(force(&f, 1, 1, 0), 0);
    fx_tick(&f, 1, 2);
    fx_isolate(&f, 1, true);
    /* Node 2 is promoted (node 1 a learner in its configuration). */
    ck_assert_int_eq(force(&f, 2, 2, 1000), 0);
    raft_term epoch = raft_current_term(fx_raft(&f, 2));
    /* Node 1 hears only node 2's answer to its heartbeat, not a leader's
     * message: a response carrying the newer term. */
    fx_isolate(&f, 1, false);
    f.hold = true;
    fx_drop_all(&f);
    fx_tick(&f, 1, 1);
    struct fx_msg *hb = fx_find(&f, RAFT_MSG_HEARTBEAT, 1, 2);
    ck_assert_ptr_nonnull(hb);
    fx_deliver_one(&f, (size_t)(hb - f.queue));
    while (fx_ready(&f, 2)) {
    }
    struct fx_msg *resp = fx_find(&f, RAFT_MSG_APPEND_RESP, 2, 1);
    ck_assert_ptr_nonnull(resp);
    ck_assert_uint_eq(resp->m.term, epoch);
    struct raft_message m = resp->m;
    fx_drop_all(&f);
    ck_assert_int_eq(raft_step(fx_raft(&f, 1), &m), 0);
    while (fx_ready(&f, 1)) {
    }
    fx_drop_all(&f);
    f.hold = false;
    fx_isolate(&f, 1, true);
    struct raft_node *old = fx_raft(&f, 1);
    ck_assert_int_eq(raft_state_of(old), RAFT_FOLLOWER);
    uint64_t elections = raft_stats_of(old)->elections_started;
    fx_tick(&f, 1, 9 * f.cfg.election_ticks);
    ck_assert_uint_eq(raft_stats_of(old)->elections_started, elections);
    ck_assert_uint_eq(raft_current_term(old), epoch);
    /* Once node 2 reaches it, it follows and becomes a learner. */
    fx_isolate(&f, 1, false);
    fx_tick(&f, 2, 2);
    ck_assert_uint_eq(raft_leader(old), 2);
    ck_assert_uint_eq(raft_conf_get(raft_conf_of(old), 1)->role, RAFT_LEARNER);
    fx_close(&f);
}
END_TEST

Suite *fallback_suite(void)
{
    Suite *s = suite_create("fallback");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_fallback_forced_only_voter_leads_and_commits_alone);
    tcase_add_test(tc, test_fallback_forced_term_is_above_the_minimum_given);
    tcase_add_test(
        tc, test_fallback_returning_members_become_learners_and_never_campaign);
    tcase_add_test(tc, test_fallback_forced_configuration_survives_a_restart);
    tcase_add_test(tc, test_fallback_leader_of_an_older_term_is_fenced);
    tcase_add_test(
        tc,
        test_fallback_member_that_committed_more_refuses_and_is_not_counted);
    tcase_add_test(tc,
                   test_fallback_force_refuses_bad_input_and_changes_nothing);
    tcase_add_test(
        tc, test_fallback_semi_sync_commits_only_once_k_learners_hold_it);
    tcase_add_test(
        tc, test_fallback_old_primary_told_a_newer_term_holds_off_campaigning);
    suite_add_tcase(s, tc);
    return s;
}
