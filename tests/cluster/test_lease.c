/*
 * test_lease.c - leases on real ballotd processes: the expiry bound of
 * docs/coordination.md across a leader kill, measured from outside.
 */
#include <check.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"

static struct cluster cl;

static void teardown(void)
{
    cl_close_all(&cl);
}

/* The cluster's settings, which the bound is made of. */
#define TICK_MS 10
#define ELECTION_TICKS 30
#define CHECKPOINT_MS 500
/* E: the longest randomized election timeout (2 x election_ticks ticks). */
#define ELECTION_MS (2 * ELECTION_TICKS * TICK_MS)
/* What the machine adds on top: elections, commits and this test's own
 * polling on a loaded machine with two cores shared by many. */
#define SLACK_MS 1500

/* Runs @argv on whichever node leads, retrying until @timeout_ms passes;
 * returns 0 with the reply in @r (not an error reply), or -1. */
static int on_leader(int timeout_ms,
                     struct cl_reply *r,
                     int argc,
                     const char **argv)
{
    uint64_t end = cl_now_ms() + (uint64_t)timeout_ms;
    while (cl_now_ms() < end) {
        unsigned id = cl_wait_leader(&cl, 5000);
        if (id != 0 && cl_cmd(&cl, id, 5000, r, argc, argv) == 0) {
            if (r->type != CL_ERR) {
                return 0;
            }
            cl_reply_free(r);
        }
        usleep(50000);
    }
    return -1;
}

/* A lease kept alive and then left alone while its leader is killed: its
 * keys are readable on every surviving node until the deadline the last
 * keep-alive promised, and gone no later than that deadline plus the
 * checkpoint interval plus an election timeout (plus the machine's slack).
 * A new leader that reset the lease to its full TTL (etcd) would keep the
 * keys about 3 s too long; one that did not wait out the promise would
 * drop them early. */
START_TEST(test_lease_expiry_bound_holds_across_a_leader_kill)
{
    static const char *const extra[] = {
        "--lease_checkpoint_ms", "500", "--tick_ms", "10",
        "--election_ticks",      "30",  NULL};
    struct cl_reply r;
    cl_start_args(&cl, 3, extra);
    unsigned leader = cl_wait_leader(&cl, 20000);
    ck_assert_uint_ne(leader, 0);

    const char *grant[] = {"BLEASE", "GRANT", "6000", "ID", "77"};
    ck_assert_int_eq(on_leader(20000, &r, 5, grant), 0);
    cl_reply_free(&r);
    const char *put[] = {"BPUT", "lk", "v", "LEASE", "77"};
    ck_assert_int_eq(on_leader(20000, &r, 5, put), 0);
    cl_reply_free(&r);
    const char *put2[] = {"BPUT", "lk2", "v", "LEASE", "77"};
    ck_assert_int_eq(on_leader(20000, &r, 5, put2), 0);
    cl_reply_free(&r);

    /* The last keep-alive: the lease will not end before sent + R, and
     * ends by received + R + C + E. */
    leader = cl_wait_leader(&cl, 20000);
    const char *ka[] = {"BLEASE", "KEEPALIVE", "77"};
    uint64_t sent = cl_now_ms();
    ck_assert_int_eq(cl_cmd(&cl, leader, 5000, &r, 3, ka), 0);
    uint64_t received = cl_now_ms();
    ck_assert_msg(r.type == CL_INT, "keep-alive: %s", r.str ? r.str : "?");
    uint64_t remaining = (uint64_t)r.integer;
    cl_reply_free(&r);
    ck_assert_uint_gt(remaining, 5000);
    uint64_t not_before = sent + remaining;
    uint64_t not_after = received + remaining + CHECKPOINT_MS + ELECTION_MS;

    /* Let the old leader checkpoint its clock a few times, then kill it
     * half-way through the lease. */
    usleep(3000 * 1000);
    cl_kill(&cl, leader);

    /* Poll both survivors with follower-local reads. */
    struct cl_conn conns[CL_MAX];
    unsigned ids[CL_MAX];
    unsigned n = 0;
    for (unsigned i = 1; i <= cl.n; i++) {
        if (i == leader) {
            continue;
        }
        ck_assert_int_eq(
            cl_connect(&conns[n], cl.nodes[i - 1].client_port, 5000), 0);
        const char *ro[] = {"READONLY"};
        ck_assert_int_eq(cl_call(&conns[n], 5000, &r, 1, ro), 0);
        cl_reply_free(&r);
        ids[n++] = i;
    }
    uint64_t gone = 0;
    uint64_t last_seen = 0;
    while (gone == 0 && cl_now_ms() < not_after + 10000) {
        for (unsigned i = 0; i < n && gone == 0; i++) {
            const char *get[] = {"GET", "lk"};
            uint64_t before = cl_now_ms();
            ck_assert_int_eq(cl_call(&conns[i], 5000, &r, 2, get), 0);
            if (r.type == CL_NIL) {
                gone = before;
                fprintf(stderr, "node %u: lk gone\n", ids[i]);
            } else {
                ck_assert_int_eq(r.type, CL_BULK);
                last_seen = cl_now_ms();
            }
            cl_reply_free(&r);
        }
        usleep(20000);
    }
    fprintf(stderr,
            "lease expiry: promised %llu ms after the keep-alive was sent, "
            "last seen at +%llu, gone at +%llu, bound +%llu (+%d slack)\n",
            (unsigned long long)(not_before - sent),
            (unsigned long long)(last_seen - sent),
            (unsigned long long)(gone - sent),
            (unsigned long long)(not_after - sent), SLACK_MS);
    ck_assert_msg(gone != 0, "the keys never disappeared");
    ck_assert_msg(gone >= not_before, "expired %llu ms before the promise",
                  (unsigned long long)(not_before - gone));
    ck_assert_msg(gone <= not_after + SLACK_MS,
                  "expired %llu ms after the bound",
                  (unsigned long long)(gone - not_after));
    /* The other key went in the same entry, on every survivor. */
    for (unsigned i = 0; i < n; i++) {
        const char *get[] = {"GET", "lk2"};
        uint64_t end = cl_now_ms() + 5000;
        for (;;) {
            ck_assert_int_eq(cl_call(&conns[i], 5000, &r, 2, get), 0);
            bool nil = r.type == CL_NIL;
            cl_reply_free(&r);
            if (nil) {
                break;
            }
            ck_assert_msg(cl_now_ms() < end, "lk2 still on node %u", ids[i]);
            usleep(20000);
        }
        cl_close(&conns[i]);
    }
    const char *ttl[] = {"BLEASE", "TTL", "77"};
    unsigned now_leader = cl_wait_leader(&cl, 20000);
    ck_assert_uint_ne(now_leader, 0);
    ck_assert_int_eq(cl_cmd(&cl, now_leader, 5000, &r, 3, ttl), 0);
    ck_assert_int_eq(r.type, CL_ERR);
    ck_assert_str_eq(r.str, "ERR no such lease");
    cl_reply_free(&r);
}
END_TEST

/* A lease nobody keeps alive ends by itself on the leader's clock, with
 * no leader change, and a keep-alive after that says so. */
START_TEST(test_lease_unrenewed_lease_ends_on_time)
{
    struct cl_reply r;
    cl_start(&cl, 3);
    ck_assert_uint_ne(cl_wait_leader(&cl, 20000), 0);
    const char *grant[] = {"BLEASE", "GRANT", "1500"};
    uint64_t sent = cl_now_ms();
    ck_assert_int_eq(on_leader(20000, &r, 3, grant), 0);
    ck_assert_int_eq(r.type, CL_ARRAY);
    ck_assert_uint_eq(r.n_elems, 2);
    char id[32];
    snprintf(id, sizeof(id), "%lld", r.elems[0].integer);
    cl_reply_free(&r);
    const char *put[] = {"BPUT", "short", "v", "LEASE", id};
    ck_assert_int_eq(on_leader(20000, &r, 5, put), 0);
    cl_reply_free(&r);
    uint64_t gone = 0;
    while (gone == 0 && cl_now_ms() < sent + 15000) {
        const char *get[] = {"GET", "short"};
        ck_assert_int_eq(on_leader(10000, &r, 2, get), 0);
        if (r.type == CL_NIL) {
            gone = cl_now_ms();
        }
        cl_reply_free(&r);
        usleep(20000);
    }
    ck_assert_msg(gone != 0, "the key never disappeared");
    ck_assert_uint_ge(gone - sent, 1500);
    ck_assert_uint_le(gone - sent, 1500 + SLACK_MS);
    const char *ka[] = {"BLEASE", "KEEPALIVE", id};
    unsigned leader = cl_wait_leader(&cl, 20000);
    ck_assert_int_eq(cl_cmd(&cl, leader, 5000, &r, 3, ka), 0);
    ck_assert_int_eq(r.type, CL_ERR);
    ck_assert_str_eq(r.str, "ERR no such lease");
    cl_reply_free(&r);
}
END_TEST

/* A key whose Redis expiry has passed is gone from every read on every
 * node even while nothing can delete it: the leader is stopped (SIGSTOP)
 * before its expiry entry, and the followers, with a long election
 * timeout, elect no other. They still store the key (DBSIZE counts it)
 * but GET, EXISTS and TTL say it is gone; once the leader resumes, its
 * entry deletes it everywhere. */
START_TEST(test_lease_expired_keys_vanish_on_every_node_before_deletion)
{
    static const char *const extra[] = {"--election_ticks", "500", NULL};
    struct cl_reply r;
    cl_start_args(&cl, 3, extra);
    unsigned leader = cl_wait_leader(&cl, 30000);
    ck_assert_uint_ne(leader, 0);
    const char *put[] = {"SET", "ek", "v", "PX", "1500"};
    ck_assert_int_eq(on_leader(20000, &r, 5, put), 0);
    cl_reply_free(&r);
    leader = cl_wait_leader(&cl, 20000);
    /* Every follower has applied it (a stale read sees it). */
    struct cl_conn conns[CL_MAX];
    unsigned ids[CL_MAX], n = 0;
    for (unsigned i = 1; i <= cl.n; i++) {
        if (i == leader) {
            continue;
        }
        ck_assert_int_eq(
            cl_connect(&conns[n], cl.nodes[i - 1].client_port, 5000), 0);
        const char *ro[] = {"READONLY"};
        ck_assert_int_eq(cl_call(&conns[n], 5000, &r, 1, ro), 0);
        cl_reply_free(&r);
        ids[n++] = i;
    }
    uint64_t set_at = cl_now_ms();
    for (unsigned i = 0; i < n; i++) {
        const char *get[] = {"GET", "ek"};
        for (;;) {
            ck_assert_int_eq(cl_call(&conns[i], 5000, &r, 2, get), 0);
            bool have = r.type == CL_BULK;
            cl_reply_free(&r);
            if (have) {
                break;
            }
            ck_assert_msg(cl_now_ms() - set_at < 1000,
                          "node %u never applied the key", ids[i]);
            usleep(10000);
        }
    }
    /* Nothing may delete it now. */
    ck_assert_int_eq(kill(cl.nodes[leader - 1].pid, SIGSTOP), 0);
    usleep(2500 * 1000);
    for (unsigned i = 0; i < n; i++) {
        const char *dbsize[] = {"DBSIZE"};
        ck_assert_int_eq(cl_call(&conns[i], 5000, &r, 1, dbsize), 0);
        ck_assert_int_eq(r.type, CL_INT);
        ck_assert_int_eq(r.integer, 1); /* still stored */
        cl_reply_free(&r);
        const char *get[] = {"GET", "ek"};
        ck_assert_int_eq(cl_call(&conns[i], 5000, &r, 2, get), 0);
        ck_assert_msg(r.type == CL_NIL, "node %u returned an expired key",
                      ids[i]);
        cl_reply_free(&r);
        const char *exists[] = {"EXISTS", "ek"};
        ck_assert_int_eq(cl_call(&conns[i], 5000, &r, 2, exists), 0);
        ck_assert_int_eq(r.integer, 0);
        cl_reply_free(&r);
        const char *ttl[] = {"TTL", "ek"};
        ck_assert_int_eq(cl_call(&conns[i], 5000, &r, 2, ttl), 0);
        ck_assert_int_eq(r.integer, -2);
        cl_reply_free(&r);
    }
    ck_assert_int_eq(kill(cl.nodes[leader - 1].pid, SIGCONT), 0);
    /* The leader's expiry entry now deletes it on every node. */
    for (unsigned i = 0; i < n; i++) {
        const char *dbsize[] = {"DBSIZE"};
        uint64_t end = cl_now_ms() + 10000;
        for (;;) {
            ck_assert_int_eq(cl_call(&conns[i], 5000, &r, 1, dbsize), 0);
            long long keys = r.integer;
            cl_reply_free(&r);
            if (keys == 0) {
                break;
            }
            ck_assert_msg(cl_now_ms() < end, "node %u kept the key", ids[i]);
            usleep(20000);
        }
        cl_close(&conns[i]);
    }
}
END_TEST

int main(int argc, char **argv)
{
    const struct cl_named_test tests[] = {
        {"expiry_bound_holds_across_a_leader_kill",
         test_lease_expiry_bound_holds_across_a_leader_kill},
        {"unrenewed_lease_ends_on_time",
         test_lease_unrenewed_lease_ends_on_time},
        {"expired_keys_vanish_on_every_node_before_deletion",
         test_lease_expired_keys_vanish_on_every_node_before_deletion},
    };
    return cl_run_tests("lease", tests, sizeof(tests) / sizeof(tests[0]), 120,
                        teardown, argc, argv);
}
