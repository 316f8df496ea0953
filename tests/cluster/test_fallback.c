/*
 * test_fallback.c - the primary-replica fallback (docs/modes.md) on real
 * ballotd processes: entering it is refused while a quorum lives; a
 * cluster of three that lost two members for good continues with the
 * survivor as primary, a member that comes back becomes its replica
 * (applies the log, serves stale reads, refuses writes naming the
 * primary, answers ROLE and INFO replication like a Redis replica), and
 * the mode survives a restart of the primary.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"

static struct cluster cl;

static void teardown(void)
{
    cl_close_all(&cl);
}

/* The integer field @name of node @id's BSTATUS (a flat map), or -1. */
static long long bstatus_int(unsigned id, const char *name)
{
    const char *argv[] = {"BSTATUS"};
    struct cl_reply r;
    long long v = -1;
    if (cl_cmd(&cl, id, 5000, &r, 1, argv) != 0) {
        return -1;
    }
    for (size_t i = 0; r.type == CL_ARRAY && i + 1 < r.n_elems; i += 2) {
        if (r.elems[i].str != NULL && strcmp(r.elems[i].str, name) == 0) {
            v = r.elems[i + 1].type == CL_INT ? r.elems[i + 1].integer : -1;
        }
    }
    cl_reply_free(&r);
    return v;
}

/* Node @id's BSTATUS string field @name into @buf ("" if absent). */
static void bstatus_str(unsigned id, const char *name, char *buf, size_t len)
{
    const char *argv[] = {"BSTATUS"};
    struct cl_reply r;
    buf[0] = '\0';
    if (cl_cmd(&cl, id, 5000, &r, 1, argv) != 0) {
        return;
    }
    for (size_t i = 0; r.type == CL_ARRAY && i + 1 < r.n_elems; i += 2) {
        if (r.elems[i].str != NULL && strcmp(r.elems[i].str, name) == 0 &&
            r.elems[i + 1].str != NULL) {
            snprintf(buf, len, "%s", r.elems[i + 1].str);
        }
    }
    cl_reply_free(&r);
}

/* INFO @section of node @id (malloc'ed), or NULL. */
static char *info(unsigned id, const char *section)
{
    const char *argv[] = {"INFO", section};
    struct cl_reply r;
    if (cl_cmd(&cl, id, 5000, &r, 2, argv) != 0) {
        return NULL;
    }
    char *s = r.type == CL_BULK ? strdup(r.str) : NULL;
    cl_reply_free(&r);
    return s;
}

/* Polls INFO @section of node @id until it contains @want. */
static bool wait_info(unsigned id,
                      const char *section,
                      const char *want,
                      int timeout_ms)
{
    uint64_t end = cl_now_ms() + (uint64_t)timeout_ms;
    do {
        char *s = info(id, section);
        bool ok = s != NULL && strstr(s, want) != NULL;
        free(s);
        if (ok) {
            return true;
        }
        usleep(50000);
    } while (cl_now_ms() < end);
    return false;
}

/* One command on node @id; the reply (caller frees) in @r. */
static void call(unsigned id, struct cl_reply *r, int argc, const char **argv)
{
    ck_assert_msg(cl_cmd(&cl, id, 5000, r, argc, argv) == 0,
                  "%s %s on node %u: no reply", argv[0],
                  argc > 1 ? argv[1] : "", id);
}

static void set_ok(unsigned id, const char *key, const char *value)
{
    const char *argv[] = {"SET", key, value};
    struct cl_reply r;
    call(id, &r, 3, argv);
    ck_assert_msg(r.type == CL_STATUS, "SET %s on %u: %s", key, id,
                  r.str != NULL ? r.str : "(no reply)");
    cl_reply_free(&r);
}

/* Runs `ballot --endpoints @eps --timeout 2000 ARGS...` (@args ends with
 * NULL); returns its exit code, its output in *@out. */
static int run_ballot_on(const char *eps, const char *const *args, char **out)
{
    const char *argv[16] = {BALLOT_PATH, "--endpoints", eps, "--timeout",
                            "2000"};
    int n = 5;
    for (int i = 0; args[i] != NULL && n < 15; i++) {
        argv[n++] = args[i];
    }
    argv[n] = NULL;
    return cl_run(argv, NULL, out, NULL, 30000);
}

/* The same against node @id alone. */
static int run_ballot(unsigned id, const char *const *args, char **out)
{
    char ep[64];
    snprintf(ep, sizeof(ep), "127.0.0.1:%d", cl.nodes[id - 1].client_port);
    return run_ballot_on(ep, args, out);
}

/* The same against every node, retried until it succeeds or @timeout_ms
 * passed (a node just restarted may not listen yet); returns its output
 * (malloc'ed), or fails the test. */
static char *ballot_until_ok(const char *const *args, int timeout_ms)
{
    char eps[256];
    snprintf(eps, sizeof(eps), "127.0.0.1:%d,127.0.0.1:%d,127.0.0.1:%d",
             cl.nodes[0].client_port, cl.nodes[1].client_port,
             cl.nodes[2].client_port);
    uint64_t end = cl_now_ms() + (uint64_t)timeout_ms;
    char *out = NULL;
    int rc;
    do {
        free(out);
        out = NULL;
        rc = run_ballot_on(eps, args, &out);
    } while (rc != 0 && cl_now_ms() < end && usleep(200000) == 0);
    ck_assert_msg(rc == 0, "ballot %s %s: %d %s", args[0], args[1], rc,
                  out != NULL ? out : "");
    return out;
}

/* With every member up, BFALLBACK ENTER is refused on the leader and on a
 * follower (a quorum is reachable), on the wrong node, and with bad
 * arguments; nothing changes: the cluster stays in Raft mode. */
START_TEST(test_fallback_enter_is_refused_while_a_quorum_is_alive)
{
    cl_start(&cl, 3);
    unsigned leader = cl_wait_leader(&cl, 10000);
    ck_assert_uint_ne(leader, 0);
    set_ok(leader, "k", "v");
    for (unsigned id = 1; id <= 3; id++) {
        char self[16], other[16];
        snprintf(self, sizeof(self), "%u", id);
        snprintf(other, sizeof(other), "%u", id % 3 + 1);
        const char *enter[] = {"BFALLBACK", "ENTER", self};
        struct cl_reply r;
        call(id, &r, 3, enter);
        ck_assert_int_eq(r.type, CL_ERR);
        ck_assert_msg(strstr(r.str, "quorum looks reachable") != NULL, "%s",
                      r.str);
        cl_reply_free(&r);
        const char *wrong[] = {"BFALLBACK", "ENTER", other};
        call(id, &r, 3, wrong);
        ck_assert_int_eq(r.type, CL_ERR);
        ck_assert_msg(strstr(r.str, "this is node") != NULL, "%s", r.str);
        cl_reply_free(&r);
    }
    const char *bad1[] = {"BFALLBACK", "ENTER", "x"};
    const char *bad2[] = {"BFALLBACK", "ENTER", "1", "please"};
    const char *bad3[] = {"BFALLBACK", "SIDEWAYS", "1"};
    const char *const *bads[] = {bad1, bad2, bad3};
    const int nbad[] = {3, 4, 3};
    for (int i = 0; i < 3; i++) {
        struct cl_reply r;
        call(leader, &r, nbad[i], (const char **)bads[i]);
        ck_assert_int_eq(r.type, CL_ERR);
        cl_reply_free(&r);
    }
    /* The CLI refuses without --yes, and says why with it. */
    char *out = NULL;
    char self[16];
    snprintf(self, sizeof(self), "%u", leader);
    const char *no_yes[] = {"fallback", "enter", "--primary", self, NULL};
    int rc = run_ballot(leader, no_yes, &out);
    ck_assert_msg(rc != 0 && out != NULL && strstr(out, "--yes") != NULL,
                  "%d %s", rc, out != NULL ? out : "");
    free(out);
    out = NULL;
    const char *yes[] = {"fallback", "enter", "--primary", self, "--yes", NULL};
    rc = run_ballot(leader, yes, &out);
    ck_assert_msg(rc != 0 && out != NULL && strstr(out, "quorum") != NULL,
                  "%d %s", rc, out != NULL ? out : "");
    free(out);
    for (unsigned id = 1; id <= 3; id++) {
        char mode[32];
        bstatus_str(id, "mode", mode, sizeof(mode));
        ck_assert_str_eq(mode, "raft");
    }
    set_ok(leader, "k", "w");
}
END_TEST

/* Two of three members die for good. The survivor, entered with `ballot
 * fallback enter`, takes writes alone; a member that comes back is its
 * replica: it catches up, serves stale reads, refuses writes naming the
 * primary, and ROLE, INFO replication, BSTATUS and `ballot status` show
 * the mode. The primary restarts still primary, with every write. */
START_TEST(
    test_fallback_survivor_becomes_primary_and_a_returning_member_its_replica)
{
    cl_start(&cl, 3);
    unsigned p = cl_wait_leader(&cl, 10000);
    ck_assert_uint_ne(p, 0);
    unsigned a = p % 3 + 1, b = a % 3 + 1;
    char key[32], val[32];
    for (int i = 0; i < 10; i++) {
        snprintf(key, sizeof(key), "k%d", i);
        snprintf(val, sizeof(val), "v%d", i);
        set_ok(p, key, val);
    }
    long long old_term = bstatus_int(p, "term");
    cl_kill(&cl, a);
    cl_kill(&cl, b);
    /* CheckQuorum: the survivor stops leading once it hears nobody. */
    ck_assert(wait_info(p, "raft", "role:follower", 15000) ||
              wait_info(p, "raft", "candidate", 1000));

    char *out = NULL;
    char self[16];
    snprintf(self, sizeof(self), "%u", p);
    const char *enter[] = {"fallback", "enter", "--primary",
                           self,       "--yes", NULL};
    int rc = run_ballot(p, enter, &out);
    ck_assert_msg(rc == 0 && strstr(out, "is now the primary, epoch") != NULL,
                  "%d %s", rc, out != NULL ? out : "");
    free(out);
    char mode[32];
    bstatus_str(p, "mode", mode, sizeof(mode));
    ck_assert_str_eq(mode, "primary-replica");
    long long epoch = bstatus_int(p, "epoch");
    ck_assert_int_gt(epoch, old_term);
    ck_assert_int_eq(bstatus_int(p, "primary"), p);
    ck_assert_int_gt(bstatus_int(p, "entered_last_index"), 0);
    ck_assert(wait_info(p, "raft", "role:leader", 5000));

    for (int i = 10; i < 60; i++) {
        snprintf(key, sizeof(key), "k%d", i);
        snprintf(val, sizeof(val), "v%d", i);
        set_ok(p, key, val);
    }
    char path[600];
    snprintf(path, sizeof(path), "%s/node%u.log", cl.root, p);
    const char *cat[] = {"cat", path, NULL};
    char *log = NULL;
    cl_run(cat, NULL, &log, NULL, 5000);
    ck_assert_msg(
        log != NULL &&
            strstr(log, "now the primary of a primary-replica") != NULL,
        "%s", log != NULL ? log : "(no log)");
    free(log);

    /* A member comes back: it becomes a replica and catches up. */
    cl_start_node(&cl, a);
    long long last = bstatus_int(p, "last_index");
    char want[64];
    snprintf(want, sizeof(want), "master_host:127.0.0.1");
    ck_assert(wait_info(a, "replication", "role:slave", 15000));
    ck_assert(wait_info(a, "replication", want, 15000));
    uint64_t end = cl_now_ms() + 15000;
    while (bstatus_int(a, "applied") < last && cl_now_ms() < end) {
        usleep(50000);
    }
    ck_assert_int_ge(bstatus_int(a, "applied"), last);
    bstatus_str(a, "mode", mode, sizeof(mode));
    ck_assert_str_eq(mode, "primary-replica");
    ck_assert_int_eq(bstatus_int(a, "epoch"), epoch);
    ck_assert_int_eq(bstatus_int(a, "primary"), p);
    ck_assert_int_eq(bstatus_int(a, "diverged"), 0);

    /* Stale reads on the replica (READONLY), on one connection. */
    struct cl_conn c;
    struct cl_reply r;
    ck_assert_int_eq(cl_connect(&c, cl.nodes[a - 1].client_port, 5000), 0);
    const char *ro[] = {"READONLY"};
    ck_assert_int_eq(cl_call(&c, 5000, &r, 1, ro), 0);
    cl_reply_free(&r);
    const char *get[] = {"GET", "k59"};
    ck_assert_int_eq(cl_call(&c, 5000, &r, 2, get), 0);
    ck_assert_int_eq(r.type, CL_BULK);
    ck_assert_str_eq(r.str, "v59");
    cl_reply_free(&r);
    /* Writes are refused, naming the primary and where it is. */
    const char *set[] = {"SET", "x", "y"};
    ck_assert_int_eq(cl_call(&c, 5000, &r, 3, set), 0);
    ck_assert_int_eq(r.type, CL_ERR);
    char at[128];
    snprintf(at, sizeof(at), "the primary, node %u at 127.0.0.1:%d", p,
             cl.nodes[p - 1].client_port);
    ck_assert_msg(strncmp(r.str, "NOTLEADER this node is a replica", 32) == 0 &&
                      strstr(r.str, at) != NULL,
                  "%s", r.str);
    cl_reply_free(&r);
    /* ROLE like a Redis replica. */
    const char *role[] = {"ROLE"};
    ck_assert_int_eq(cl_call(&c, 5000, &r, 1, role), 0);
    ck_assert_int_eq(r.type, CL_ARRAY);
    ck_assert_str_eq(r.elems[0].str, "slave");
    ck_assert_int_eq(r.elems[2].integer, cl.nodes[p - 1].client_port);
    cl_reply_free(&r);
    cl_close(&c);

    /* The primary: ROLE master with the replica, INFO's slave0 line. */
    call(p, &r, 1, role);
    ck_assert_int_eq(r.type, CL_ARRAY);
    ck_assert_str_eq(r.elems[0].str, "master");
    cl_reply_free(&r);
    char *repl = info(p, "replication");
    ck_assert_ptr_nonnull(repl);
    char port[32];
    snprintf(port, sizeof(port), "port=%d,state=online",
             cl.nodes[a - 1].client_port);
    ck_assert_msg(strstr(repl, "role:master") != NULL &&
                      strstr(repl, "ballot_mode:primary-replica") != NULL &&
                      strstr(repl, port) != NULL,
                  "%s", repl);
    free(repl);
    /* The metrics port too. */
    char *metrics = cl_http_get(&cl, p, "/metrics");
    char line[64];
    snprintf(line, sizeof(line), "ballot_fallback_primary %u\n", p);
    ck_assert_msg(metrics != NULL &&
                      strstr(metrics, "ballot_fallback_mode 1\n") != NULL &&
                      strstr(metrics, line) != NULL,
                  "%s", metrics != NULL ? metrics : "(no metrics)");
    free(metrics);
    /* `ballot status` names the mode. */
    out = NULL;
    const char *status[] = {"status", NULL};
    rc = run_ballot(p, status, &out);
    ck_assert_msg(rc == 0 && strstr(out, "primary-replica mode, epoch") &&
                      strstr(out, "primary"),
                  "%d %s", rc, out != NULL ? out : "");
    free(out);

    /* The primary restarts: still the primary, nothing lost. */
    cl_kill(&cl, p);
    cl_start_node(&cl, p);
    ck_assert(wait_info(p, "raft", "role:leader", 15000));
    bstatus_str(p, "mode", mode, sizeof(mode));
    ck_assert_str_eq(mode, "primary-replica");
    ck_assert_int_ge(bstatus_int(p, "epoch"), epoch);
    for (int i = 0; i < 60; i++) {
        snprintf(key, sizeof(key), "k%d", i);
        snprintf(val, sizeof(val), "v%d", i);
        const char *g[] = {"GET", key};
        call(p, &r, 2, g);
        ck_assert_msg(r.type == CL_BULK && strcmp(r.str, val) == 0, "%s lost",
                      key);
        cl_reply_free(&r);
    }
    set_ok(p, "after", "restart");
}
END_TEST

/* Waits for node @id's process to exit by itself (a halt); reaps it. */
static bool wait_exit(unsigned id, int timeout_ms)
{
    uint64_t end = cl_now_ms() + (uint64_t)timeout_ms;
    do {
        int status;
        if (waitpid(cl.nodes[id - 1].pid, &status, WNOHANG) ==
            cl.nodes[id - 1].pid) {
            cl.nodes[id - 1].pid = 0;
            return true;
        }
        usleep(50000);
    } while (cl_now_ms() < end);
    return false;
}

/* The contents of the first file in node @id's data directory whose name
 * starts with @prefix (malloc'ed), or NULL. */
static char *data_file(unsigned id, const char *prefix)
{
    char path[1024];
    DIR *d = opendir(cl.nodes[id - 1].dir);
    struct dirent *e;
    char *text = NULL;
    while (d != NULL && text == NULL && (e = readdir(d)) != NULL) {
        if (strncmp(e->d_name, prefix, strlen(prefix)) != 0 ||
            strstr(e->d_name, ".txt") == NULL) {
            continue;
        }
        snprintf(path, sizeof(path), "%s/%s", cl.nodes[id - 1].dir, e->d_name);
        const char *cat[] = {"cat", path, NULL};
        cl_run(cat, NULL, &text, NULL, 5000);
    }
    if (d != NULL) {
        closedir(d);
    }
    return text;
}

static void wait_applied(unsigned id, long long index)
{
    uint64_t end = cl_now_ms() + 15000;
    while (bstatus_int(id, "applied") < index && cl_now_ms() < end) {
        usleep(50000);
    }
    ck_assert_int_ge(bstatus_int(id, "applied"), index);
}

/* GET @key on node @id with READONLY (a replica's own state): the value,
 * or NULL for nil (malloc'ed). */
static char *stale_get(unsigned id, const char *key)
{
    struct cl_conn c;
    struct cl_reply r;
    const char *ro[] = {"READONLY"};
    const char *get[] = {"GET", key};
    ck_assert_int_eq(cl_connect(&c, cl.nodes[id - 1].client_port, 5000), 0);
    ck_assert_int_eq(cl_call(&c, 5000, &r, 1, ro), 0);
    cl_reply_free(&r);
    ck_assert_int_eq(cl_call(&c, 5000, &r, 2, get), 0);
    char *v = r.type == CL_BULK ? strdup(r.str) : NULL;
    ck_assert_msg(r.type == CL_BULK || r.type == CL_NIL, "GET %s on %u", key,
                  id);
    cl_reply_free(&r);
    cl_close(&c);
    return v;
}

/* The primary's replica is down while the primary acknowledges five
 * writes (async), then the primary dies and the replica comes back. Promoting
 * the replica is refused while the primary is heard, and done at a new epoch
 * once it is gone; the new primary takes writes. The old primary comes back:
 * fenced by the newer epoch, it saves the five writes it acknowledged that the
 * new primary never got to a file in its data directory, says so in its log,
 * halts, and on its next start rejoins as an empty replica that catches
 * up, with the cut reported in BSTATUS. */
START_TEST(
    test_fallback_former_primary_returns_as_replica_and_reports_what_was_cut)
{
    cl_start(&cl, 3);
    unsigned p = cl_wait_leader(&cl, 10000);
    ck_assert_uint_ne(p, 0);
    unsigned a = p % 3 + 1, b = a % 3 + 1;
    set_ok(p, "k0", "v0");
    cl_kill(&cl, a);
    cl_kill(&cl, b);
    ck_assert(wait_info(p, "raft", "role:follower", 15000) ||
              wait_info(p, "raft", "candidate", 1000));
    char ps[16], as[16];
    snprintf(ps, sizeof(ps), "%u", p);
    snprintf(as, sizeof(as), "%u", a);
    const char *enter[] = {"BFALLBACK", "ENTER", ps};
    struct cl_reply r;
    call(p, &r, 3, enter);
    ck_assert_msg(r.type == CL_ARRAY, "%s", r.str != NULL ? r.str : "?");
    cl_reply_free(&r);
    long long epoch1 = bstatus_int(p, "epoch");
    ck_assert(wait_info(p, "raft", "role:leader", 5000));
    set_ok(p, "k1", "v1");
    cl_start_node(&cl, a);
    wait_applied(a, bstatus_int(p, "last_index"));

    /* The primary is alive: promoting its replica is refused. */
    const char *promote[] = {"BFALLBACK", "PROMOTE", as};
    call(a, &r, 3, promote);
    ck_assert_msg(r.type == CL_ERR && strstr(r.str, "was heard") != NULL, "%s",
                  r.str != NULL ? r.str : "?");
    cl_reply_free(&r);

    /* Acknowledged by the primary alone while its replica is down (a
     * paused one would still find them in its socket buffers). */
    cl_kill(&cl, a);
    char key[32];
    for (int i = 1; i <= 5; i++) {
        snprintf(key, sizeof(key), "lost%d", i);
        set_ok(p, key, "acked-by-the-old-primary");
    }
    cl_kill(&cl, p);
    cl_start_node(&cl, a);

    /* `ballot fallback promote` picks the only replica that answers. */
    const char *promote_cli[] = {"fallback", "promote", NULL};
    char *out = ballot_until_ok(promote_cli, 15000);
    ck_assert_msg(strstr(out, "is now the primary") != NULL, "%s", out);
    free(out);
    ck_assert(wait_info(a, "raft", "role:leader", 5000));
    ck_assert_int_ge(bstatus_int(a, "epoch"), epoch1 + 1000);
    ck_assert_int_eq(bstatus_int(a, "primary"), a);
    set_ok(a, "after", "promotion");

    /* The old primary comes back, is fenced, saves the cut and halts. */
    cl_start_node(&cl, p);
    ck_assert(wait_exit(p, 20000));
    char *cut = data_file(p, "fallback-cut-");
    ck_assert_msg(cut != NULL && strstr(cut, "lost1") != NULL &&
                      strstr(cut, "lost5") != NULL,
                  "%s", cut != NULL ? cut : "(no file)");
    free(cut);
    char path[600];
    snprintf(path, sizeof(path), "%s/node%u.log", cl.root, p);
    const char *cat[] = {"cat", path, NULL};
    char *log = NULL;
    cl_run(cat, NULL, &log, NULL, 5000);
    ck_assert_msg(log != NULL && strstr(log, "diverged from primary") != NULL,
                  "%s", log != NULL ? log : "(no log)");
    free(log);

    /* Restarted, it rejoins as an empty replica and catches up. */
    cl_start_node(&cl, p);
    ck_assert(wait_info(p, "replication", "role:slave", 15000));
    wait_applied(p, bstatus_int(a, "last_index"));
    ck_assert_int_eq(bstatus_int(p, "primary"), a);
    ck_assert_int_gt(bstatus_int(p, "cut_first"), 0);
    ck_assert_int_ge(bstatus_int(p, "cut_last"), bstatus_int(p, "cut_first"));
    char *metrics = cl_http_get(&cl, p, "/metrics");
    ck_assert_msg(
        metrics != NULL &&
            strstr(metrics, "ballot_fallback_cut_entries 0\n") == NULL &&
            strstr(metrics, "ballot_fallback_cut_entries ") != NULL,
        "%s", metrics != NULL ? metrics : "(no metrics)");
    free(metrics);
    char file[160];
    bstatus_str(p, "cut_file", file, sizeof(file));
    ck_assert_msg(strncmp(file, "fallback-cut-", 13) == 0, "%s", file);
    char *v = stale_get(p, "after");
    ck_assert_msg(v != NULL && strcmp(v, "promotion") == 0, "%s", v);
    free(v);
    v = stale_get(p, "k1");
    ck_assert_msg(v != NULL && strcmp(v, "v1") == 0, "%s", v);
    free(v);
    /* Async: what only the old primary had is gone from the group, and
     * exactly that is in the file. */
    ck_assert_ptr_null(stale_get(p, "lost1"));
    ck_assert_ptr_null(stale_get(a, "lost5"));
    set_ok(a, "still", "writable");
}
END_TEST

/* Semi-sync with k = 1 and a 1 s timeout. Without a replica a write
 * waits, then fails as unknown (its entry commits once a replica holds
 * it); with one it is acknowledged, and WAIT counts the replicas holding
 * the primary's log. The primary dies just after an acknowledgement: the
 * promoted replica has the write. Restarted with the degrade policy, the
 * primary degrades to async after the timeout (shown in BSTATUS) and
 * returns to semi-sync once a replica caught up. */
START_TEST(test_fallback_semi_sync_waits_for_a_replica_then_fails_or_degrades)
{
    static const char *const fail_args[] = {"--fallback_ack", "semi-sync",
                                            "--fallback_ack_timeout_ms", "1000",
                                            NULL};
    static const char *const degrade_args[] = {"--fallback_ack",
                                               "semi-sync",
                                               "--fallback_ack_timeout_ms",
                                               "1000",
                                               "--fallback_ack_on_timeout",
                                               "async",
                                               NULL};
    cl_start_args(&cl, 3, fail_args);
    unsigned p = cl_wait_leader(&cl, 10000);
    ck_assert_uint_ne(p, 0);
    unsigned a = p % 3 + 1, b = a % 3 + 1;
    cl_kill(&cl, a);
    cl_kill(&cl, b);
    ck_assert(wait_info(p, "raft", "role:follower", 15000) ||
              wait_info(p, "raft", "candidate", 1000));
    char ps[16];
    snprintf(ps, sizeof(ps), "%u", p);
    const char *enter[] = {"BFALLBACK", "ENTER", ps};
    struct cl_reply r;
    call(p, &r, 3, enter);
    ck_assert(r.type == CL_ARRAY);
    cl_reply_free(&r);
    ck_assert(wait_info(p, "raft", "role:leader", 5000));
    char mode[32];
    bstatus_str(p, "ack", mode, sizeof(mode));
    ck_assert_str_eq(mode, "semi-sync");

    /* No replica: the write's outcome is unknown after the timeout. */
    uint64_t t0 = cl_now_ms();
    const char *set1[] = {"SET", "unsure", "1"};
    call(p, &r, 3, set1);
    ck_assert_msg(r.type == CL_ERR && strncmp(r.str, "UNKNOWN", 7) == 0, "%s",
                  r.str != NULL ? r.str : "?");
    ck_assert_uint_ge(cl_now_ms() - t0, 900);
    cl_reply_free(&r);

    /* A replica is back: the earlier entry commits, writes are acked. */
    cl_start_node(&cl, a);
    uint64_t end = cl_now_ms() + 15000;
    char *v = NULL;
    do {
        free(v);
        usleep(100000);
        v = stale_get(p, "unsure");
    } while (v == NULL && cl_now_ms() < end);
    ck_assert_msg(v != NULL && strcmp(v, "1") == 0, "%s", v);
    free(v);
    set_ok(p, "sure", "2");
    const char *wait1[] = {"WAIT", "1", "2000"};
    call(p, &r, 3, wait1);
    ck_assert_int_eq(r.type, CL_INT);
    ck_assert_int_eq(r.integer, 1);
    cl_reply_free(&r);
    const char *wait2[] = {"WAIT", "2", "300"};
    t0 = cl_now_ms();
    call(p, &r, 3, wait2);
    ck_assert_int_eq(r.type, CL_INT);
    ck_assert_int_eq(r.integer, 1);
    ck_assert_uint_ge(cl_now_ms() - t0, 250);
    cl_reply_free(&r);
    call(a, &r, 3, wait1);
    ck_assert_msg(r.type == CL_ERR && strstr(r.str, "replica") != NULL, "%s",
                  r.str != NULL ? r.str : "?");
    cl_reply_free(&r);
    set_ok(p, "surer", "3");

    /* The primary dies right after acknowledging: the replica, promoted,
     * has every acknowledged write. In semi-sync it commits (and serves
     * linearizable reads) again once a replica holds its log: the old
     * primary, back as its replica. */
    cl_kill(&cl, p);
    char as[16];
    snprintf(as, sizeof(as), "%u", a);
    const char *promote[] = {"BFALLBACK", "PROMOTE", as, "FORCE"};
    call(a, &r, 4, promote);
    ck_assert_msg(r.type == CL_ARRAY, "%s", r.str != NULL ? r.str : "?");
    cl_reply_free(&r);
    ck_assert(wait_info(a, "raft", "role:leader", 5000));
    cl_start_node(&cl, p);
    ck_assert(wait_info(p, "replication", "role:slave", 15000));
    const char *get[] = {"GET", "surer"};
    ck_assert_int_eq(cl_cmd(&cl, a, 15000, &r, 2, get), 0);
    ck_assert_msg(r.type == CL_BULK && strcmp(r.str, "3") == 0,
                  "an acknowledged write is lost");
    cl_reply_free(&r);
    ck_assert_int_eq(bstatus_int(p, "diverged"), 0);

    /* The degrade policy: acknowledged alone after the timeout, back to
     * semi-sync once a replica holds the whole log. */
    cl_kill(&cl, p);
    cl_kill(&cl, a);
    cl.extra_args = degrade_args;
    cl_start_node(&cl, a);
    ck_assert(wait_info(a, "raft", "role:leader", 15000));
    t0 = cl_now_ms();
    set_ok(a, "degraded", "4");
    ck_assert_uint_ge(cl_now_ms() - t0, 900);
    ck_assert_int_eq(bstatus_int(a, "ack_degraded"), 1);
    bstatus_str(a, "ack_on_timeout", mode, sizeof(mode));
    ck_assert_str_eq(mode, "async");
    set_ok(a, "fast", "5");
    cl.extra_args = fail_args;
    cl_start_node(&cl, p);
    end = cl_now_ms() + 15000;
    while (bstatus_int(a, "ack_degraded") != 0 && cl_now_ms() < end) {
        usleep(100000);
    }
    ck_assert_int_eq(bstatus_int(a, "ack_degraded"), 0);
    set_ok(a, "semi", "6");
}
END_TEST

/* ---- the runbook, end to end ------------------------------------------- */

/* Writes w0, w1, ... to the node in @target one at a time, remembering
 * which were acknowledged; a refused or unknown write is simply not
 * counted (its key may or may not exist). */
#define RUNBOOK_WRITES_MAX 100000
struct writer
{
    pthread_t thread;
    atomic_uint target;
    atomic_bool stop;
    unsigned n;  /* writes sent */
    bool *acked; /* by write number */
    unsigned n_acked;
};

static void *writer_main(void *arg)
{
    struct writer *w = arg;
    char key[32], val[32];
    while (!atomic_load(&w->stop) && w->n < RUNBOOK_WRITES_MAX) {
        unsigned id = atomic_load(&w->target);
        snprintf(key, sizeof(key), "w%u", w->n);
        snprintf(val, sizeof(val), "v%u", w->n);
        const char *argv[] = {"SET", key, val};
        struct cl_reply r;
        if (cl_cmd(&cl, id, 3000, &r, 3, argv) == 0) {
            if (r.type == CL_STATUS) {
                w->acked[w->n] = true;
                w->n_acked++;
            }
            cl_reply_free(&r);
        }
        w->n++;
        usleep(r.type == CL_STATUS ? 2000 : 50000);
    }
    return NULL;
}

/* docs/operations.md's runbook "Two of three machines died", as an
 * operator runs it, in semi-sync mode (k = 1, failing writes on timeout)
 * under a steady write load: two members die, `ballot fallback enter`,
 * one comes back as a replica, the primary dies, `ballot fallback
 * promote`, the others come back, `ballot fallback exit`; then every
 * acknowledged write is on all three members, back in Raft mode. */
START_TEST(test_fallback_runbook_two_of_three_died_loses_no_acknowledged_write)
{
    static const char *const args[] = {"--fallback_ack", "semi-sync",
                                       "--fallback_ack_timeout_ms", "1000",
                                       NULL};
    cl_start_args(&cl, 3, args);
    unsigned p = cl_wait_leader(&cl, 10000);
    ck_assert_uint_ne(p, 0);
    unsigned a = p % 3 + 1, b = a % 3 + 1;
    struct writer w;
    memset(&w, 0, sizeof(w));
    w.acked = calloc(RUNBOOK_WRITES_MAX, sizeof(bool));
    ck_assert_ptr_nonnull(w.acked);
    atomic_store(&w.target, p);
    ck_assert_int_eq(pthread_create(&w.thread, NULL, writer_main, &w), 0);
    usleep(300000);

    /* Two of three die for good; the survivor stops leading. */
    cl_kill(&cl, a);
    cl_kill(&cl, b);
    ck_assert(wait_info(p, "raft", "role:follower", 15000) ||
              wait_info(p, "raft", "candidate", 1000));
    char ps[16];
    snprintf(ps, sizeof(ps), "%u", p);
    const char *enter[] = {"fallback", "enter", "--primary", ps, "--yes", NULL};
    free(ballot_until_ok(enter, 10000));

    /* One comes back as a replica; semi-sync acknowledges again. */
    cl_start_node(&cl, a);
    ck_assert(wait_info(a, "replication", "role:slave", 15000));
    unsigned before = w.n_acked;
    uint64_t end = cl_now_ms() + 15000;
    while (w.n_acked < before + 20 && cl_now_ms() < end) {
        usleep(50000);
    }
    ck_assert_uint_ge(w.n_acked, before + 20);

    /* The primary dies under load; the replica is promoted. */
    cl_kill(&cl, p);
    const char *promote[] = {"fallback", "promote", NULL};
    char *out = ballot_until_ok(promote, 15000);
    ck_assert_msg(strstr(out, "is now the primary") != NULL, "%s", out);
    free(out);
    atomic_store(&w.target, a);

    /* The others come back as its replicas, the old primary last: it
     * restarts as the only voter of its own epoch, and a replica that
     * found it before the new primary would follow it (docs/modes.md). */
    char master[64];
    snprintf(master, sizeof(master), "master_id:%u", a);
    cl_start_node(&cl, b);
    ck_assert(wait_info(b, "replication", master, 15000));
    cl_start_node(&cl, p);
    ck_assert(wait_info(p, "replication", master, 15000));
    before = w.n_acked;
    end = cl_now_ms() + 15000;
    while (w.n_acked < before + 20 && cl_now_ms() < end) {
        usleep(50000);
    }
    ck_assert_uint_ge(w.n_acked, before + 20);

    /* Back to Raft. */
    const char *exit_[] = {"fallback", "exit", NULL};
    out = ballot_until_ok(exit_, 15000);
    ck_assert_msg(strstr(out, "back to Raft") != NULL, "%s", out);
    free(out);
    atomic_store(&w.stop, true);
    pthread_join(w.thread, NULL);
    char mode[32];
    bstatus_str(a, "mode", mode, sizeof(mode));
    ck_assert_str_eq(mode, "raft");
    set_ok(a, "raft", "again");

    /* Every acknowledged write, on every member. */
    long long commit = bstatus_int(a, "commit");
    for (unsigned id = 1; id <= 3; id++) {
        wait_applied(id, commit);
        ck_assert_int_eq(bstatus_int(id, "diverged"), 0);
        struct cl_conn c;
        struct cl_reply r;
        const char *ro[] = {"READONLY"};
        ck_assert_int_eq(cl_connect(&c, cl.nodes[id - 1].client_port, 5000), 0);
        ck_assert_int_eq(cl_call(&c, 5000, &r, 1, ro), 0);
        cl_reply_free(&r);
        for (unsigned i = 0; i < w.n; i++) {
            if (!w.acked[i]) {
                continue;
            }
            char key[32], val[32];
            snprintf(key, sizeof(key), "w%u", i);
            snprintf(val, sizeof(val), "v%u", i);
            const char *get[] = {"GET", key};
            ck_assert_int_eq(cl_call(&c, 5000, &r, 2, get), 0);
            ck_assert_msg(r.type == CL_BULK && strcmp(r.str, val) == 0,
                          "acknowledged %s missing on node %u", key, id);
            cl_reply_free(&r);
        }
        cl_close(&c);
    }
    fprintf(stderr, "runbook: %u writes, %u acknowledged\n", w.n, w.n_acked);
    free(w.acked);
}
END_TEST

/* Bad input, each a clear error with nothing changed: exit with too few
 * members caught up, promote an unknown node, the primary itself, or
 * through the CLI a node that does not answer; enter twice; WAIT with bad
 * arguments. */
START_TEST(test_fallback_bad_input_is_refused_with_a_clear_error)
{
    cl_start(&cl, 3);
    unsigned p = cl_wait_leader(&cl, 10000);
    ck_assert_uint_ne(p, 0);
    unsigned a = p % 3 + 1, b = a % 3 + 1;
    struct cl_reply r;
    const char *exit_[] = {"BFALLBACK", "EXIT"};
    call(p, &r, 2, exit_);
    ck_assert_msg(r.type == CL_ERR && strstr(r.str, "not the primary"), "%s",
                  r.str != NULL ? r.str : "?");
    cl_reply_free(&r);
    cl_kill(&cl, a);
    cl_kill(&cl, b);
    ck_assert(wait_info(p, "raft", "role:follower", 15000) ||
              wait_info(p, "raft", "candidate", 1000));
    char ps[16];
    snprintf(ps, sizeof(ps), "%u", p);
    const char *enter[] = {"BFALLBACK", "ENTER", ps};
    call(p, &r, 3, enter);
    ck_assert(r.type == CL_ARRAY);
    cl_reply_free(&r);
    call(p, &r, 3, enter);
    ck_assert_msg(
        r.type == CL_ERR && strstr(r.str, "already in primary-replica mode"),
        "%s", r.str != NULL ? r.str : "?");
    cl_reply_free(&r);
    /* One of three holds the log: a Raft cluster of three needs two. */
    call(p, &r, 2, exit_);
    ck_assert_msg(r.type == CL_ERR && strstr(r.str, "1 of the 3 members"), "%s",
                  r.str != NULL ? r.str : "?");
    cl_reply_free(&r);
    const char *promote_self[] = {"BFALLBACK", "PROMOTE", ps};
    call(p, &r, 3, promote_self);
    ck_assert_msg(r.type == CL_ERR && strstr(r.str, "is not a replica"), "%s",
                  r.str != NULL ? r.str : "?");
    cl_reply_free(&r);
    const char *promote_unknown[] = {"BFALLBACK", "PROMOTE", "9"};
    call(p, &r, 3, promote_unknown);
    ck_assert_msg(r.type == CL_ERR && strstr(r.str, "this is node"), "%s",
                  r.str != NULL ? r.str : "?");
    cl_reply_free(&r);
    char *out = NULL;
    const char *cli_promote[] = {"fallback", "promote", "9", NULL};
    int rc = run_ballot(p, cli_promote, &out);
    ck_assert_msg(rc != 0 && out != NULL &&
                      strstr(out, "did not answer as a replica") != NULL,
                  "%d %s", rc, out != NULL ? out : "");
    free(out);
    const char *wait_bad[] = {"WAIT", "x", "1"};
    call(p, &r, 3, wait_bad);
    ck_assert_int_eq(r.type, CL_ERR);
    cl_reply_free(&r);
    const char *wait_neg[] = {"WAIT", "1", "-1"};
    call(p, &r, 3, wait_neg);
    ck_assert_msg(r.type == CL_ERR && strstr(r.str, "negative"), "%s",
                  r.str != NULL ? r.str : "?");
    cl_reply_free(&r);
    /* Nothing changed: still the primary, taking writes. */
    char mode[32];
    bstatus_str(p, "mode", mode, sizeof(mode));
    ck_assert_str_eq(mode, "primary-replica");
    ck_assert_int_eq(bstatus_int(p, "primary"), p);
    set_ok(p, "still", "fine");
}
END_TEST

int main(int argc, char **argv)
{
    const struct cl_named_test tests[] = {
        {"enter_is_refused_while_a_quorum_is_alive",
         test_fallback_enter_is_refused_while_a_quorum_is_alive},
        {"survivor_becomes_primary_and_a_returning_member_its_replica",
         test_fallback_survivor_becomes_primary_and_a_returning_member_its_replica},
        {"former_primary_returns_as_replica_and_reports_what_was_cut",
         test_fallback_former_primary_returns_as_replica_and_reports_what_was_cut},
        {"semi_sync_waits_for_a_replica_then_fails_or_degrades",
         test_fallback_semi_sync_waits_for_a_replica_then_fails_or_degrades},
        {"runbook_two_of_three_died_loses_no_acknowledged_write",
         test_fallback_runbook_two_of_three_died_loses_no_acknowledged_write},
        {"bad_input_is_refused_with_a_clear_error",
         test_fallback_bad_input_is_refused_with_a_clear_error},
    };
    return cl_run_tests("fallback", tests, sizeof(tests) / sizeof(tests[0]),
                        120, teardown, argc, argv);
}
