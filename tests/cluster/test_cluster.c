/*
 * test_cluster.c - real 3- and 5-node ballotd clusters on loopback:
 * election, replication, reads from every node, leader and minority
 * crashes under write load, and full restarts. The promise under test:
 * no write that was acknowledged is ever lost.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"

#define LEADER_TIMEOUT_MS 10000

static int count_acked(const bool *acked, int n)
{
    int k = 0;
    for (int i = 0; i < n; i++) {
        k += acked[i];
    }
    return k;
}

static char *read_kv(struct cluster *c, unsigned id, const char *key)
{
    const char *argv[] = {"GET", key};
    struct cl_reply r;
    /* TRYAGAIN says the read was not confirmed (the node had no leader
     * for a moment, e.g. a follower of a loaded machine campaigned) and
     * asks for a retry: a client does so, within a bound. */
    uint64_t end = cl_now_ms() + 5000;
    for (;;) {
        if (cl_cmd(c, id, 3000, &r, 2, argv) != 0) {
            return NULL;
        }
        if (r.type != CL_ERR || strncmp(r.str, "TRYAGAIN", 8) != 0 ||
            cl_now_ms() >= end) {
            break;
        }
        cl_reply_free(&r);
        usleep(50000);
    }
    char *v = r.type == CL_BULK ? strdup(r.str) : NULL;
    if (r.type == CL_ERR) {
        fprintf(stderr, "GET %s on n%u: -%s\n", key, id, r.str);
    }
    cl_reply_free(&r);
    return v;
}

/* Waits until node @id reads @key (a restarted node caught up), for at
 * most 10 s. */
static void wait_for_key(struct cluster *c, unsigned id, const char *key)
{
    uint64_t end = cl_now_ms() + 10000;
    char *got = NULL;
    while (cl_now_ms() < end) {
        free(got);
        got = read_kv(c, id, key);
        if (got != NULL) {
            break;
        }
        usleep(50000);
    }
    free(got);
}

/* SIGKILLs every node, starts them all again from their data directories
 * and waits for a leader, which it returns. */
static unsigned restart_all(struct cluster *c)
{
    for (unsigned id = 1; id <= c->n; id++) {
        cl_kill(c, id);
    }
    for (unsigned id = 1; id <= c->n; id++) {
        cl_start_node(c, id);
    }
    unsigned leader = cl_wait_leader(c, LEADER_TIMEOUT_MS);
    ck_assert(leader != 0);
    return leader;
}

/* Checks that every acknowledged key reads back, through node @id. */
static void check_acked(struct cluster *c,
                        unsigned id,
                        const bool *acked,
                        int n)
{
    for (int i = 0; i < n; i++) {
        if (!acked[i]) {
            continue;
        }
        char key[32], want[32];
        snprintf(key, sizeof(key), "key:%d", i);
        snprintf(want, sizeof(want), "value:%d", i);
        cl_assert_value(c, id, key, want);
    }
}

static void elect_write_read(unsigned n)
{
    struct cluster c;
    cl_start(&c, n);
    unsigned leader = cl_wait_leader(&c, LEADER_TIMEOUT_MS);
    ck_assert_msg(leader != 0, "no leader elected");
    unsigned l = leader;
    ck_assert_int_eq(cl_write(&c, &l, "greeting", "hello", cl_now_ms() + 5000),
                     1);
    for (unsigned i = 1; i <= n; i++) {
        char *v = read_kv(&c, i, "greeting");
        ck_assert_msg(v != NULL && strcmp(v, "hello") == 0, "node %u read %s",
                      i, v ? v : "(nil)");
        free(v);
    }
    /* The metrics endpoint agrees with INFO: one leader, which reports
     * itself. */
    unsigned leaders = 0;
    for (unsigned i = 1; i <= n; i++) {
        char *m = cl_http_get(&c, i, "/metrics");
        ck_assert_msg(m != NULL && strncmp(m, "HTTP/1.0 200 OK", 15) == 0,
                      "metrics of node %u: %s", i, m ? m : "(none)");
        ck_assert_ptr_nonnull(strstr(m, "\nballot_raft_term "));
        ck_assert_ptr_nonnull(strstr(m, "\nballot_raft_commit_index "));
        leaders += strstr(m, "\nballot_raft_is_leader 1\n") != NULL;
        free(m);
    }
    ck_assert_uint_eq(leaders, 1);
    cl_close_all(&c);
}

/* A 3-node cluster elects a leader, and a write to it reads back
 * (linearizably) from every node. */
START_TEST(test_cluster_three_nodes_elect_write_read_everywhere)
{
    elect_write_read(3);
}
END_TEST

/* The same with five nodes. */
START_TEST(test_cluster_five_nodes_elect_write_read_everywhere)
{
    elect_write_read(5);
}
END_TEST

/* Writes flow while nodes are SIGKILLed: the leader (a new one must serve
 * within 3 s) and then a minority; every acknowledged write is present
 * afterwards. */
static void kill_under_load(unsigned n, bool kill_leader)
{
    enum { N = 300 };
    static bool acked[N];
    struct cluster c;
    memset(acked, 0, sizeof(acked));
    cl_start(&c, n);
    unsigned leader = cl_wait_leader(&c, LEADER_TIMEOUT_MS);
    ck_assert(leader != 0);
    unsigned victims[CL_MAX];
    unsigned n_victims = 0;
    uint64_t killed_at = 0, recovered_ms = 0;
    for (int i = 0; i < N; i++) {
        if (i == N / 3) {
            if (kill_leader) {
                victims[n_victims++] = leader;
            } else {
                /* A minority of followers. */
                for (unsigned id = 1; id <= n && n_victims < (n - 1) / 2;
                     id++) {
                    if (id != leader) {
                        victims[n_victims++] = id;
                    }
                }
            }
            for (unsigned v = 0; v < n_victims; v++) {
                cl_kill(&c, victims[v]);
            }
            killed_at = cl_now_ms();
            if (kill_leader) {
                leader = victims[0] % n + 1;
            }
        }
        acked[i] = cl_write_nth(&c, &leader, i);
        if (killed_at != 0 && recovered_ms == 0 && acked[i]) {
            recovered_ms = cl_now_ms() - killed_at;
        }
    }
    ck_assert_int_ge(count_acked(acked, N), N - 10);
    ck_assert_msg(recovered_ms > 0 && recovered_ms < 3000,
                  "writes resumed %llu ms after the kill",
                  (unsigned long long)recovered_ms);
    check_acked(&c, leader, acked, N);
    /* The victims come back and catch up. */
    for (unsigned v = 0; v < n_victims; v++) {
        cl_start_node(&c, victims[v]);
    }
    for (unsigned v = 0; v < n_victims; v++) {
        wait_for_key(&c, victims[v], "key:0");
        check_acked(&c, victims[v], acked, N);
    }
    cl_close_all(&c);
}

START_TEST(test_cluster_leader_killed_under_load_loses_no_ack)
{
    kill_under_load(3, true);
}
END_TEST

START_TEST(test_cluster_minority_killed_under_load_loses_no_ack)
{
    kill_under_load(5, false);
}
END_TEST

/* Every node is stopped (first cleanly, then with SIGKILL) and restarted
 * from its data directory: all data is back. */
START_TEST(test_cluster_full_restart_keeps_all_data)
{
    enum { N = 100 };
    static bool acked[N];
    struct cluster c;
    cl_start(&c, 3);
    unsigned leader = cl_wait_leader(&c, LEADER_TIMEOUT_MS);
    ck_assert(leader != 0);
    for (int i = 0; i < N; i++) {
        acked[i] = cl_write_nth(&c, &leader, i);
        ck_assert(acked[i]);
    }
    for (unsigned id = 1; id <= 3; id++) {
        ck_assert_int_eq(cl_term(&c, id), 0);
    }
    for (unsigned id = 1; id <= 3; id++) {
        cl_start_node(&c, id);
    }
    leader = cl_wait_leader(&c, LEADER_TIMEOUT_MS);
    ck_assert(leader != 0);
    check_acked(&c, leader, acked, N);
    leader = restart_all(&c);
    check_acked(&c, leader, acked, N);
    cl_close_all(&c);
}
END_TEST

/* Sends BMEMBER @sub @id to whichever node leads; true once applied. */
static bool member_change(struct cluster *c,
                          unsigned *leader,
                          const char *sub,
                          unsigned id,
                          const char *addr)
{
    char ids[16];
    snprintf(ids, sizeof(ids), "%u", id);
    const char *argv[] = {"BMEMBER", sub, ids, addr};
    int argc = addr != NULL ? 4 : 3;
    uint64_t end = cl_now_ms() + 10000;
    unsigned at = *leader ? *leader : 1;
    while (cl_now_ms() < end) {
        struct cl_reply r;
        if (c->nodes[at - 1].pid != 0 &&
            cl_cmd(c, at, 3000, &r, argc, argv) == 0) {
            bool ok = r.type == CL_STATUS;
            bool busy = r.type == CL_ERR && strncmp(r.str, "BUSY", 4) == 0;
            if (!ok && !busy && r.type == CL_ERR &&
                strncmp(r.str, "NOTLEADER", 9) != 0) {
                fprintf(stderr, "BMEMBER %s %u: -%s\n", sub, id, r.str);
            }
            cl_reply_free(&r);
            if (ok) {
                *leader = at;
                return true;
            }
            if (busy) {
                usleep(50000);
                continue;
            }
        }
        at = at % c->n + 1;
        usleep(20000);
    }
    return false;
}

/* Chapter 4 online: with writes flowing, a fourth node joins as a learner,
 * catches up, is promoted, then a follower and finally the leader itself
 * are removed. Every acknowledged write survives, on every member. */
START_TEST(test_cluster_membership_changes_under_load_lose_no_ack)
{
    enum { N = 400 };
    static bool acked[N];
    static const char *const args[] = {"--voters", "1,2,3", NULL};
    struct cluster c;
    memset(acked, 0, sizeof(acked));
    cl_start_args(&c, 4, args);
    unsigned leader = cl_wait_leader(&c, LEADER_TIMEOUT_MS);
    ck_assert(leader != 0 && leader != 4);
    unsigned removed_follower = 0, removed_leader = 0;
    for (int i = 0; i < N; i++) {
        if (i == 50) {
            ck_assert(member_change(&c, &leader, "ADDLEARNER", 4, NULL));
        } else if (i == 150) {
            ck_assert(member_change(&c, &leader, "PROMOTE", 4, NULL));
        } else if (i == 250) {
            removed_follower = leader % 3 + 1; /* a follower among 1-3 */
            ck_assert(
                member_change(&c, &leader, "REMOVE", removed_follower, NULL));
        } else if (i == 320) {
            removed_leader = leader;
            ck_assert(
                member_change(&c, &leader, "REMOVE", removed_leader, NULL));
            leader = removed_leader == 4 ? 2 : 4;
        }
        acked[i] = cl_write_nth(&c, &leader, i);
    }
    ck_assert_int_ge(count_acked(acked, N), N - 10);
    ck_assert(leader != removed_leader && leader != removed_follower);
    /* Every remaining member serves every acknowledged write. */
    for (unsigned id = 1; id <= 4; id++) {
        if (id != removed_leader && id != removed_follower) {
            check_acked(&c, id, acked, N);
        }
    }
    cl_close_all(&c);
}
END_TEST

/* Asks the leader to hand leadership to @target until @target reports
 * itself leader (at most 15 s). */
static bool transfer_to(struct cluster *c, unsigned *leader, unsigned target)
{
    char ids[16];
    snprintf(ids, sizeof(ids), "%u", target);
    const char *argv[] = {"BTRANSFER", ids};
    uint64_t end = cl_now_ms() + 15000;
    while (cl_now_ms() < end) {
        unsigned at = cl_wait_leader(c, 3000);
        if (at == target) {
            *leader = target;
            return true;
        }
        struct cl_reply r;
        if (at != 0 && cl_cmd(c, at, 3000, &r, 2, argv) == 0) {
            cl_reply_free(&r);
        }
        usleep(200000);
    }
    return false;
}

/* A member whose address no running node was configured with joins
 * online: BMEMBER ADDLEARNER with its address records it through the log,
 * the leader replicates to it, it is promoted and counts in a quorum that
 * survives losing the old leader, and a node restarted from its old
 * configuration file (which does not list it) still knows where it is. */
START_TEST(test_cluster_member_added_at_a_new_address_online)
{
    enum { N = 120 };
    static bool acked[N];
    struct cluster c;
    unsigned killed = 0;
    memset(acked, 0, sizeof(acked));
    cl_prepare_args(&c, 4, NULL);
    for (unsigned id = 1; id <= 3; id++) {
        c.nodes[id - 1].listed = 3;
        cl_start_node(&c, id);
    }
    unsigned leader = cl_wait_leader(&c, LEADER_TIMEOUT_MS);
    ck_assert(leader != 0 && leader != 4);
    char key[32], val[32];
    for (int i = 0; i < N; i++) {
        if (i == 40) {
            c.nodes[3].join = true;
            cl_start_node(&c, 4);
            char addr[64];
            snprintf(addr, sizeof(addr), "127.0.0.1:%d:%d",
                     c.nodes[3].client_port, c.nodes[3].peer_port);
            ck_assert(member_change(&c, &leader, "ADDLEARNER", 4, addr));
            ck_assert(member_change(&c, &leader, "PROMOTE", 4, NULL));
        } else if (i == 80) {
            /* Four voters: without the old leader, a quorum of three needs
             * node 4. */
            killed = leader;
            ck_assert(killed != 4);
            cl_kill(&c, killed);
            leader = 4;
        } else if (i == 100) {
            cl_start_node(&c, killed); /* from its 3-member configuration */
            /* Node 4 leads: the restarted node can follow it only if it
             * learned node 4's address from its own store. */
            ck_assert(transfer_to(&c, &leader, 4));
        }
        snprintf(key, sizeof(key), "key:%d", i);
        snprintf(val, sizeof(val), "value:%d", i);
        acked[i] = cl_write(&c, &leader, key, val, cl_now_ms() + 15000) == 1;
    }
    int n_acked = 0;
    for (int i = 0; i < N; i++) {
        n_acked += acked[i];
    }
    ck_assert_int_ge(n_acked, N - 5);
    /* Every node, the new one and the restarted one included, serves every
     * acknowledged write (a linearizable GET on a follower goes through
     * the leader, so it also shows the node is connected). */
    int first = 0;
    while (!acked[first]) {
        first++;
    }
    snprintf(key, sizeof(key), "key:%d", first);
    for (unsigned id = 1; id <= 4; id++) {
        wait_for_key(&c, id, key);
        check_acked(&c, id, acked, N);
    }
    const char *argv[] = {"BMEMBER", "LIST"};
    struct cl_reply r;
    ck_assert_int_eq(cl_cmd(&c, leader, 3000, &r, 2, argv), 0);
    ck_assert_int_eq(r.type, CL_ARRAY);
    ck_assert_uint_eq(r.n_elems, 4);
    cl_reply_free(&r);
    cl_close_all(&c);
}
END_TEST

/* Chapter 5 in ballotd: nodes snapshot and compact their logs as they
 * go; a follower that was down while the log moved past it is brought back
 * with InstallSnapshot (sent in chunks from the leader's snapshot file),
 * and a full restart starts from the snapshots. Nothing acknowledged is
 * lost on the way. */
START_TEST(test_cluster_snapshot_catches_up_a_follower_and_survives_restart)
{
    enum { N = 600 };
    static bool acked[N];
    static const char *const args[] = {"--snapshot_every", "100",
                                       "--snapshot_trailing", "20", NULL};
    struct cluster c;
    memset(acked, 0, sizeof(acked));
    cl_start_args(&c, 3, args);
    unsigned leader = cl_wait_leader(&c, LEADER_TIMEOUT_MS);
    ck_assert(leader != 0);
    unsigned lagger = leader % 3 + 1;
    cl_kill(&c, lagger);
    for (int i = 0; i < N; i++) {
        acked[i] = cl_write_nth(&c, &leader, i);
        ck_assert(acked[i]);
    }
    /* The leader's log no longer starts at 1. */
    const char *info[] = {"INFO", "raft"};
    struct cl_reply r;
    ck_assert_int_eq(cl_cmd(&c, leader, 3000, &r, 2, info), 0);
    ck_assert(r.type == CL_BULK);
    const char *fi = strstr(r.str, "first_index:");
    ck_assert_ptr_nonnull(fi);
    ck_assert_int_gt(atoi(fi + strlen("first_index:")), 100);
    cl_reply_free(&r);
    /* The lagging follower comes back and catches up from a snapshot. */
    cl_start_node(&c, lagger);
    wait_for_key(&c, lagger, "key:599");
    check_acked(&c, lagger, acked, N);
    /* Everyone restarts from snapshot + WAL. */
    leader = restart_all(&c);
    for (unsigned id = 1; id <= 3; id++) {
        check_acked(&c, id, acked, N);
    }
    cl_close_all(&c);
}
END_TEST

/* Makes stopped node @id look as if its machine lost power while LMDB had
 * unsynced writes: DIRTY names another boot, and the data file is garbage
 * (a torn store must not be read at all). */
static void fake_machine_crash(struct cluster *c, unsigned id)
{
    char path[700], cmd[800];
    snprintf(path, sizeof(path), "%s/kv/DIRTY", c->nodes[id - 1].dir);
    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    fputs("00000000-0000-0000-0000-000000000000\n", f);
    fclose(f);
    snprintf(cmd, sizeof(cmd),
             "for f in %s/kv/env-*/data.mdb; do "
             "dd if=/dev/urandom of=$f bs=4096 count=4 conv=notrunc "
             "status=none; done",
             c->nodes[id - 1].dir);
    ck_assert_int_eq(system(cmd), 0);
}

/* Whether node @id's log holds @text. */
static bool log_has(struct cluster *c, unsigned id, const char *text)
{
    char path[400], line[1024];
    bool found = false;
    snprintf(path, sizeof(path), "%s/node%u.log", c->root, id);
    FILE *f = fopen(path, "r");
    while (f != NULL && !found && fgets(line, sizeof(line), f) != NULL) {
        found = strstr(line, text) != NULL;
    }
    if (f != NULL) {
        fclose(f);
    }
    return found;
}

/* A machine crash with unsynced LMDB writes leaves a store that may be
 * torn: the node rebuilds it at start, from an empty store when its log
 * starts at index 1, or from its newest snapshot file, and the log brings
 * it back; nothing acknowledged is lost and the node serves again. */
START_TEST(test_cluster_torn_store_is_rebuilt_from_snapshot_and_log)
{
    enum { N = 260 };
    static bool acked[N];
    static const char *const args[] = {"--snapshot_every", "50",
                                       "--snapshot_trailing", "10", NULL};
    struct cluster c;
    char key[32], val[32];
    memset(acked, 0, sizeof(acked));
    cl_start_args(&c, 3, args);
    unsigned leader = cl_wait_leader(&c, LEADER_TIMEOUT_MS);
    ck_assert(leader != 0);
    unsigned rebuilt[2] = {0, 0};
    for (int i = 0; i < N; i++) {
        if (i == 30 || i == 250) {
            unsigned victim = leader % 3 + 1;
            if (victim == rebuilt[0]) {
                victim = victim % 3 + 1;
            }
            if (victim == leader) {
                victim = victim % 3 + 1;
            }
            rebuilt[i == 30 ? 0 : 1] = victim;
            cl_kill(&c, victim);
            fake_machine_crash(&c, victim);
            cl_start_node(&c, victim);
        }
        snprintf(key, sizeof(key), "key:%d", i);
        snprintf(val, sizeof(val), "value:%d", i);
        acked[i] = cl_write(&c, &leader, key, val, cl_now_ms() + 10000) == 1;
    }
    ck_assert(rebuilt[0] != rebuilt[1]);
    for (unsigned v = 0; v < 2; v++) {
        wait_for_key(&c, rebuilt[v], "key:259");
        check_acked(&c, rebuilt[v], acked, N);
    }
    /* The first rebuild had no snapshot yet (index ~32 < 50), the second
     * one had. */
    ck_assert(log_has(&c, rebuilt[0], "rebuilt the store from an empty"));
    ck_assert(log_has(&c, rebuilt[1], "rebuilt the store from snapshot"));
    cl_close_all(&c);
}
END_TEST

/* True once no running node's store has a DIRTY marker, within @ms. */
static bool wait_all_clean(struct cluster *c, int ms)
{
    uint64_t end = cl_now_ms() + (uint64_t)ms;
    while (cl_now_ms() < end) {
        bool clean = true;
        for (unsigned id = 1; id <= c->n; id++) {
            char path[600];
            snprintf(path, sizeof(path), "%s/kv/DIRTY", c->nodes[id - 1].dir);
            clean &= c->nodes[id - 1].pid == 0 || access(path, F_OK) != 0;
        }
        if (clean) {
            return true;
        }
        usleep(50000);
    }
    return false;
}

/* LMDB checkpoints every 20 entries run on a worker while writes go on,
 * snapshots wait for them before the log is compacted, and the leader is
 * SIGKILLed in the middle: every acknowledged write survives, each store
 * ends clean once writes stop (the idle checkpoint), and a restart of every
 * node from those stores loses nothing. */
START_TEST(test_cluster_checkpoints_while_writing_lose_nothing_and_end_clean)
{
    enum { N = 400 };
    static bool acked[N];
    static const char *const args[] = {"--checkpoint_every",
                                       "20",
                                       "--checkpoint_idle_ms",
                                       "200",
                                       "--snapshot_every",
                                       "150",
                                       "--snapshot_trailing",
                                       "10",
                                       NULL};
    struct cluster c;
    memset(acked, 0, sizeof(acked));
    cl_start_args(&c, 3, args);
    unsigned leader = cl_wait_leader(&c, LEADER_TIMEOUT_MS);
    ck_assert(leader != 0);
    unsigned victim = 0;
    for (int i = 0; i < N; i++) {
        if (i == N / 2) {
            victim = leader;
            cl_kill(&c, victim);
            leader = victim % 3 + 1;
        }
        acked[i] = cl_write_nth(&c, &leader, i);
    }
    ck_assert_int_ge(count_acked(acked, N), N - 10);
    check_acked(&c, leader, acked, N);
    ck_assert_msg(wait_all_clean(&c, 10000), "a store stayed dirty");
    cl_start_node(&c, victim);
    wait_for_key(&c, victim, "key:399");
    check_acked(&c, victim, acked, N);
    ck_assert_msg(wait_all_clean(&c, 10000), "a store stayed dirty");
    (void)restart_all(&c);
    for (unsigned id = 1; id <= 3; id++) {
        check_acked(&c, id, acked, N);
    }
    cl_close_all(&c);
}
END_TEST

/* Many writers at once, so that batches hold several entries and an
 * update often both commits entries and brings new ones: rounds of 16
 * pipelined SETs on each of 8 connections to the leader, whose replies are
 * read back; the leader is SIGKILLed halfway (its pending writes are then
 * unknown, not acknowledged). Every acknowledged write must be on every
 * node afterwards. @inline_max is the nodes' persist_inline_max: "0" makes
 * every batch go through the disk thread (applying committed entries while
 * it persists), a large value persists every batch on the loop when the
 * thread is idle. */
static void pipelined_writers(const char *inline_max)
{
    enum { CONNS = 8, DEPTH = 16, ROUNDS = 24, N = CONNS * DEPTH * ROUNDS };
    static bool acked[N];
    const char *const args[] = {"--persist_inline_max", inline_max, NULL};
    struct cluster c;
    memset(acked, 0, sizeof(acked));
    cl_start_args(&c, 3, args);
    unsigned leader = cl_wait_leader(&c, LEADER_TIMEOUT_MS);
    ck_assert(leader != 0);
    for (int round = 0; round < ROUNDS; round++) {
        struct cl_conn conns[CONNS];
        if (round == ROUNDS / 2) {
            unsigned victim = leader;
            cl_kill(&c, victim);
            leader = cl_wait_leader(&c, LEADER_TIMEOUT_MS);
            ck_assert(leader != 0 && leader != victim);
        }
        for (int k = 0; k < CONNS; k++) {
            ck_assert_int_eq(
                cl_connect(&conns[k], c.nodes[leader - 1].client_port, 3000),
                0);
        }
        for (int d = 0; d < DEPTH; d++) {
            for (int k = 0; k < CONNS; k++) {
                int i = (round * CONNS + k) * DEPTH + d;
                char key[32], val[32];
                snprintf(key, sizeof(key), "key:%d", i);
                snprintf(val, sizeof(val), "value:%d", i);
                const char *argv[] = {"SET", key, val};
                (void)cl_sendv(&conns[k], 3000, 3, argv, NULL);
            }
        }
        for (int k = 0; k < CONNS; k++) {
            for (int d = 0; d < DEPTH; d++) {
                int i = (round * CONNS + k) * DEPTH + d;
                struct cl_reply r;
                if (cl_read_reply(&conns[k], 10000, &r) == 0) {
                    acked[i] = r.type == CL_STATUS && strcmp(r.str, "OK") == 0;
                    cl_reply_free(&r);
                }
            }
            cl_close(&conns[k]);
        }
    }
    int n_acked = 0;
    for (int i = 0; i < N; i++) {
        n_acked += acked[i];
    }
    /* Some writes of the rounds after the kill may fail while the new
     * leader settles, not most. */
    ck_assert_int_ge(n_acked, N / 2);
    for (unsigned id = 1; id <= 3; id++) {
        if (c.nodes[id - 1].pid == 0) {
            cl_start_node(&c, id);
        }
    }
    for (unsigned id = 1; id <= 3; id++) {
        wait_for_key(&c, id, "key:0");
        check_acked(&c, id, acked, N);
    }
    cl_close_all(&c);
}

START_TEST(test_cluster_pipelined_writers_through_the_disk_thread_lose_no_ack)
{
    pipelined_writers("0");
}
END_TEST

START_TEST(test_cluster_pipelined_writers_persisted_on_the_loop_lose_no_ack)
{
    pipelined_writers("1000000");
}
END_TEST

static void wait_exports(struct cluster *c, unsigned id, int n)
{
    uint64_t end = cl_now_ms() + 5000;
    while (cl_export_files(c, id) != n && cl_now_ms() < end) {
        usleep(10000);
    }
    ck_assert_int_eq(cl_export_files(c, id), n);
}

/* BSNAPSHOT CREATE on @conn: returns the token. */
static long long export_create(struct cl_conn *conn)
{
    const char *argv[] = {"BSNAPSHOT", "CREATE"};
    struct cl_reply r;
    long long token = 0;
    ck_assert_int_eq(cl_call(conn, 10000, &r, 2, argv), 0);
    ck_assert_msg(r.type == CL_ARRAY, "CREATE: %s", r.str);
    for (size_t i = 0; i + 1 < r.n_elems; i += 2) {
        if (strcmp(r.elems[i].str, "token") == 0) {
            token = r.elems[i + 1].integer;
        }
    }
    cl_reply_free(&r);
    ck_assert_int_gt(token, 0);
    return token;
}

/* A copy of the store made for a client (BSNAPSHOT) is deleted when the
 * client disconnects in the middle of its download, and a copy a killed
 * node left behind is deleted when the node starts again. */
START_TEST(test_cluster_snapshot_export_is_deleted_when_its_client_leaves)
{
    struct cluster c;
    struct cl_conn conn;
    struct cl_reply r;
    char key[32], tok[32];
    cl_start(&c, 3);
    unsigned leader = cl_wait_leader(&c, LEADER_TIMEOUT_MS);
    ck_assert(leader != 0);
    for (int i = 0; i < 20; i++) {
        snprintf(key, sizeof(key), "key:%d", i);
        ck_assert(cl_write(&c, &leader, key, "v", cl_now_ms() + 10000) == 1);
    }
    unsigned id = leader % 3 + 1; /* followers serve copies too */
    ck_assert_int_eq(cl_connect(&conn, c.nodes[id - 1].client_port, 3000), 0);
    snprintf(tok, sizeof(tok), "%lld", export_create(&conn));
    const char *read[] = {"BSNAPSHOT", "READ", tok, "0", "1000"};
    ck_assert_int_eq(cl_call(&conn, 5000, &r, 5, read), 0);
    ck_assert_int_eq(r.type, CL_BULK);
    ck_assert_uint_eq(r.len, 1000);
    cl_reply_free(&r);
    ck_assert_int_eq(cl_export_files(&c, id), 1);
    cl_close(&conn);
    wait_exports(&c, id, 0);

    /* Killed while holding one: the file stays until the next start. */
    ck_assert_int_eq(cl_connect(&conn, c.nodes[id - 1].client_port, 3000), 0);
    (void)export_create(&conn);
    cl_kill(&c, id);
    cl_close(&conn);
    ck_assert_int_eq(cl_export_files(&c, id), 1);
    cl_start_node(&c, id);
    wait_exports(&c, id, 0);
    char *got = NULL;
    for (uint64_t end = cl_now_ms() + 10000;
         got == NULL && cl_now_ms() < end;) {
        got = read_kv(&c, id, "key:19");
        usleep(got == NULL ? 20000 : 0);
    }
    ck_assert_ptr_nonnull(got);
    ck_assert_str_eq(got, "v");
    free(got);

    /* A clean stop while a client holds one deletes it, and frees
     * everything (a leak fails the exit status under the sanitizers). */
    ck_assert_int_eq(cl_connect(&conn, c.nodes[id - 1].client_port, 3000), 0);
    (void)export_create(&conn);
    ck_assert_int_eq(cl_export_files(&c, id), 1);
    ck_assert_int_eq(cl_term(&c, id), 0);
    cl_close(&conn);
    ck_assert_int_eq(cl_export_files(&c, id), 0);

    /* A stop while the copy is being written (a store of some 10 MB):
     * the node waits for the worker, deletes the copy and exits
     * cleanly. */
    cl_start_node(&c, id);
    static char value[1024];
    memset(value, 'x', sizeof(value) - 1);
    for (int batch = 0; batch < 100; batch++) {
        const char *argv[1 + 2 * 100];
        char keys[100][32];
        argv[0] = "MSET";
        for (int i = 0; i < 100; i++) {
            snprintf(keys[i], sizeof(keys[i]), "big:%d:%d", batch, i);
            argv[1 + 2 * i] = keys[i];
            argv[2 + 2 * i] = value;
        }
        /* Through whichever node leads (a loaded machine may hold an
         * election meanwhile); MSET again is harmless. */
        bool ok = false;
        for (uint64_t end = cl_now_ms() + 20000; !ok && cl_now_ms() < end;
             leader = leader % c.n + 1) {
            if (c.nodes[leader - 1].pid != 0 &&
                cl_cmd(&c, leader, 10000, &r, 201, argv) == 0) {
                ok = r.type == CL_STATUS;
                cl_reply_free(&r);
            }
            if (ok) {
                break;
            }
            usleep(20000);
        }
        ck_assert_msg(ok, "MSET batch %d not acknowledged in 20 s", batch);
    }
    got = NULL;
    for (uint64_t end = cl_now_ms() + 10000;
         got == NULL && cl_now_ms() < end;) {
        got = read_kv(&c, id, "big:99:99");
        usleep(got == NULL ? 20000 : 0);
    }
    ck_assert_ptr_nonnull(got);
    free(got);
    ck_assert_int_eq(cl_connect(&conn, c.nodes[id - 1].client_port, 3000), 0);
    const char *create[] = {"BSNAPSHOT", "CREATE"};
    ck_assert_int_eq(cl_call(&conn, 1, &r, 2, create), -1); /* no wait */
    ck_assert_int_eq(cl_term(&c, id), 0);
    cl_close(&conn);
    ck_assert_int_eq(cl_export_files(&c, id), 0);
    cl_close_all(&c);
}
END_TEST

/* Sends BREQ 7 @seq INCR c until some node answers with an integer,
 * trying the nodes in turn (followers refuse writes, a new leader may not
 * be elected yet, an -UNKNOWN outcome is retried with the same id). */
static long long breq_incr(struct cluster *c,
                           unsigned *leader,
                           const char *seq,
                           uint64_t deadline)
{
    const char *argv[] = {"BREQ", "7", seq, "INCR", "c"};
    unsigned id = *leader ? *leader : 1;
    while (cl_now_ms() < deadline) {
        struct cl_reply r;
        if (c->nodes[id - 1].pid != 0 &&
            cl_cmd(c, id, 2000, &r, 5, argv) == 0) {
            bool ok = r.type == CL_INT;
            long long v = r.integer;
            cl_reply_free(&r);
            if (ok) {
                *leader = id;
                return v;
            }
        }
        id = id % c->n + 1;
        usleep(20000);
    }
    ck_abort_msg("BREQ 7 %s INCR c never answered", seq);
    return -1;
}

/* BREQ across leader crashes: a request id is applied at most once and a
 * retry, to any node, gets the original reply. The third request is sent
 * and the leader killed before its reply can be read: whether or not it
 * was applied before the crash, the retry leaves the counter incremented
 * exactly once. */
START_TEST(test_cluster_breq_retry_across_leader_crash_applies_once)
{
    struct cluster c;
    cl_start(&c, 3);
    unsigned leader = cl_wait_leader(&c, LEADER_TIMEOUT_MS);
    ck_assert_msg(leader != 0, "no leader elected");
    uint64_t deadline = cl_now_ms() + 60000;
    ck_assert_int_eq(breq_incr(&c, &leader, "1", deadline), 1);
    /* The same request again, to every node: always the original reply. */
    for (unsigned i = 0; i < 3; i++) {
        ck_assert_int_eq(breq_incr(&c, &leader, "1", deadline), 1);
    }
    ck_assert_int_eq(breq_incr(&c, &leader, "2", deadline), 2);
    cl_kill(&c, leader);
    leader = 0;
    ck_assert_int_eq(breq_incr(&c, &leader, "2", deadline), 2);
    char *v = read_kv(&c, leader, "c");
    ck_assert_msg(v != NULL && strcmp(v, "2") == 0, "c = %s", v ? v : "nil");
    free(v);
    for (unsigned i = 1; i <= 3; i++) {
        if (c.nodes[i - 1].pid == 0) {
            cl_start_node(&c, i);
        }
    }
    leader = cl_wait_leader(&c, LEADER_TIMEOUT_MS);
    ck_assert_msg(leader != 0, "no leader after restart");

    /* Request 3: sent, then the leader dies before the reply is read. */
    struct cl_conn conn;
    ck_assert_int_eq(cl_connect(&conn, c.nodes[leader - 1].client_port, 2000),
                     0);
    static const char req[] =
        "*5\r\n$4\r\nBREQ\r\n$1\r\n7\r\n$1\r\n3\r\n"
        "$4\r\nINCR\r\n$1\r\nc\r\n";
    ck_assert_int_eq(write(conn.fd, req, sizeof(req) - 1),
                     (ssize_t)(sizeof(req) - 1));
    usleep(2000);
    cl_kill(&c, leader);
    cl_close(&conn);
    leader = 0;
    ck_assert_int_eq(breq_incr(&c, &leader, "3", deadline), 3);
    ck_assert_int_eq(breq_incr(&c, &leader, "3", deadline), 3);
    v = read_kv(&c, leader, "c");
    ck_assert_msg(v != NULL && strcmp(v, "3") == 0, "c = %s", v ? v : "nil");
    free(v);
    /* An older request id is refused, not applied. */
    const char *old[] = {"BREQ", "7", "1", "INCR", "c"};
    struct cl_reply r;
    ck_assert_int_eq(cl_cmd(&c, leader, 3000, &r, 5, old), 0);
    ck_assert_int_eq(r.type, CL_ERR);
    ck_assert_ptr_nonnull(strstr(r.str, "superseded"));
    cl_reply_free(&r);
    cl_close_all(&c);
}
END_TEST

/* WATCH x, then another client's INCR x races the EXEC that writes x
 * blindly: either EXEC aborts (null) or the INCR comes after it. The EXEC
 * whose guard lost to the INCR used to be retried without its watch, so it
 * overwrote the increment (found by jepsen/'s bank workload). */
START_TEST(test_cluster_watch_aborts_exec_beaten_by_a_concurrent_write)
{
    struct cluster c;
    cl_start(&c, 3);
    unsigned leader = cl_wait_leader(&c, LEADER_TIMEOUT_MS);
    ck_assert_msg(leader != 0, "no leader elected");
    int port = c.nodes[leader - 1].client_port;
    struct cl_conn a, b;
    ck_assert_int_eq(cl_connect(&a, port, 2000), 0);
    ck_assert_int_eq(cl_connect(&b, port, 2000), 0);
    struct cl_reply r;
    const char *set0[] = {"SET", "x", "0"};
    ck_assert_int_eq(cl_call(&a, 5000, &r, 3, set0), 0);
    cl_reply_free(&r);
    int lost = 0;
    int aborted = 0;
    for (int i = 0; i < 40; i++) {
        const char *watch[] = {"WATCH", "x"};
        const char *get[] = {"GET", "x"};
        const char *incr[] = {"INCR", "x"};
        const char *multi[] = {"MULTI"};
        const char *exec[] = {"EXEC"};
        ck_assert_int_eq(cl_call(&a, 5000, &r, 2, watch), 0);
        cl_reply_free(&r);
        ck_assert_int_eq(cl_call(&a, 5000, &r, 2, get), 0);
        ck_assert_msg(r.type == CL_BULK, "GET x: %s", r.str ? r.str : "?");
        long long v = atoll(r.str);
        cl_reply_free(&r);
        ck_assert_int_eq(cl_sendv(&b, 5000, 2, incr, NULL), 0);
        char next[32];
        snprintf(next, sizeof(next), "%lld", v + 10);
        const char *set[] = {"SET", "x", next};
        /* Pipelined, so that EXEC loads x before the INCR is applied. */
        ck_assert_int_eq(cl_sendv(&a, 5000, 1, multi, NULL), 0);
        ck_assert_int_eq(cl_sendv(&a, 5000, 3, set, NULL), 0);
        ck_assert_int_eq(cl_sendv(&a, 5000, 1, exec, NULL), 0);
        for (int j = 0; j < 2; j++) {
            ck_assert_int_eq(cl_read_reply(&a, 5000, &r), 0);
            cl_reply_free(&r);
        }
        ck_assert_int_eq(cl_read_reply(&a, 5000, &r), 0);
        bool ran = r.type == CL_ARRAY;
        ck_assert_msg(ran || r.type == CL_NIL, "EXEC: type %d", r.type);
        cl_reply_free(&r);
        ck_assert_int_eq(cl_read_reply(&b, 5000, &r), 0);
        ck_assert_int_eq(r.type, CL_INT);
        long long inc = r.integer;
        cl_reply_free(&r);
        aborted += !ran;
        if (ran) {
            /* The INCR must have come after the EXEC's write. */
            lost += inc != v + 11;
        } else {
            ck_assert_int_eq(inc, v + 1);
        }
    }
    ck_assert_msg(lost == 0, "%d of 40 increments lost to EXEC (%d aborted)",
                  lost, aborted);
    cl_close(&a);
    cl_close(&b);
    cl_close_all(&c);
}
END_TEST

int main(int argc, char **argv)
{
    const struct cl_named_test tests[] = {
        {"three_nodes_elect_write_read_everywhere",
         test_cluster_three_nodes_elect_write_read_everywhere},
        {"five_nodes_elect_write_read_everywhere",
         test_cluster_five_nodes_elect_write_read_everywhere},
        {"leader_killed_under_load_loses_no_ack",
         test_cluster_leader_killed_under_load_loses_no_ack},
        {"minority_killed_under_load_loses_no_ack",
         test_cluster_minority_killed_under_load_loses_no_ack},
        {"full_restart_keeps_all_data",
         test_cluster_full_restart_keeps_all_data},
        {"membership_changes_under_load_lose_no_ack",
         test_cluster_membership_changes_under_load_lose_no_ack},
        {"member_added_at_a_new_address_online",
         test_cluster_member_added_at_a_new_address_online},
        {"snapshot_catches_up_a_follower_and_survives_restart",
         test_cluster_snapshot_catches_up_a_follower_and_survives_restart},
        {"breq_retry_across_leader_crash_applies_once",
         test_cluster_breq_retry_across_leader_crash_applies_once},
        {"snapshot_export_is_deleted_when_its_client_leaves",
         test_cluster_snapshot_export_is_deleted_when_its_client_leaves},
        {"torn_store_is_rebuilt_from_snapshot_and_log",
         test_cluster_torn_store_is_rebuilt_from_snapshot_and_log},
        {"checkpoints_while_writing_lose_nothing_and_end_clean",
         test_cluster_checkpoints_while_writing_lose_nothing_and_end_clean},
        {"pipelined_writers_through_the_disk_thread_lose_no_ack",
         test_cluster_pipelined_writers_through_the_disk_thread_lose_no_ack},
        {"pipelined_writers_persisted_on_the_loop_lose_no_ack",
         test_cluster_pipelined_writers_persisted_on_the_loop_lose_no_ack},
        {"watch_aborts_exec_beaten_by_a_concurrent_write",
         test_cluster_watch_aborts_exec_beaten_by_a_concurrent_write},
    };
    return cl_run_tests("cluster", tests, sizeof(tests) / sizeof(tests[0]), 150,
                        NULL, argc, argv);
}
