/*
 * test_lock.c - locks with server-enforced fencing on real ballotd
 * processes (docs/coordination.md, "Locks"): a SIGSTOPped holder fenced
 * out after its lease ends, `ballot lock` protecting a shared counter file
 * across a leader kill, and every bad input.
 */
#include <check.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"

static struct cluster cl;

static void teardown(void)
{
    cl_close_all(&cl);
}

/* "127.0.0.1:P1,127.0.0.1:P2,..." for every node. */
static void endpoints(char *buf, size_t cap)
{
    size_t n = 0;
    buf[0] = '\0';
    for (unsigned i = 0; i < cl.n; i++) {
        n += (size_t)snprintf(buf + n, cap - n, "%s127.0.0.1:%d",
                              i > 0 ? "," : "", cl.nodes[i].client_port);
    }
}

/* Runs @argv on whichever node leads, retrying redirects and elections
 * until @timeout_ms passes; returns 0 with the reply in @r (which may be
 * an error reply other than NOTLEADER/TRYAGAIN), or -1. */
static int on_leader(int timeout_ms,
                     struct cl_reply *r,
                     int argc,
                     const char **argv)
{
    uint64_t end = cl_now_ms() + (uint64_t)timeout_ms;
    while (cl_now_ms() < end) {
        unsigned id = cl_wait_leader(&cl, 5000);
        if (id != 0 && cl_cmd(&cl, id, timeout_ms, r, argc, argv) == 0) {
            if (r->type != CL_ERR || (strncmp(r->str, "NOTLEADER", 9) != 0 &&
                                      strncmp(r->str, "TRYAGAIN", 8) != 0)) {
                return 0;
            }
            cl_reply_free(r);
        }
        usleep(50000);
    }
    return -1;
}

/* Expects @argv on the leader to answer with an error containing @want. */
static void expect_error(const char *want, int argc, const char **argv)
{
    struct cl_reply r;
    ck_assert_int_eq(on_leader(10000, &r, argc, argv), 0);
    ck_assert_msg(r.type == CL_ERR && strstr(r.str, want) != NULL,
                  "%s %s: wanted an error with '%s', got type %d '%s'", argv[0],
                  argv[1], want, (int)r.type, r.str ? r.str : "");
    cl_reply_free(&r);
}

/* Starts `sh -c SCRIPT` in a process group of its own (so that it and
 * everything it starts can be stopped and killed through its pid), with
 * B (the ballot binary), E (the endpoints) and D (the cluster's
 * directory) in its environment. */
static pid_t start_group(const char *script)
{
    char eps[256];
    endpoints(eps, sizeof(eps));
    pid_t parent = getpid();
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent) {
            _exit(127);
        }
        setpgid(0, 0);
        setenv("B", BALLOT_PATH, 1);
        setenv("E", eps, 1);
        setenv("D", cl.root, 1);
        execl("/bin/sh", "sh", "-c", script, (char *)NULL);
        _exit(127);
    }
    setpgid(pid, pid); /* whichever of the two runs first */
    return pid;
}

/* Waits (bounded) for the group leader @pid; returns its exit status, or
 * -1 after killing the group. */
static int wait_group(pid_t pid, int timeout_ms)
{
    uint64_t end = cl_now_ms() + (uint64_t)timeout_ms;
    int status;
    while (cl_now_ms() < end) {
        if (waitpid(pid, &status, WNOHANG) == pid) {
            kill(-pid, SIGKILL); /* anything it left behind */
            return WIFEXITED(status) ? WEXITSTATUS(status) : 128;
        }
        usleep(20000);
    }
    kill(-pid, SIGKILL);
    waitpid(pid, &status, 0);
    return -1;
}

/* Reads a whole small file of the cluster directory; NULL if missing. */
static char *read_file(const char *name)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/%s", cl.root, name);
    FILE *f = fopen(path, "r");
    if (f == NULL) {
        return NULL;
    }
    char *buf = calloc(1, 65536);
    ck_assert_ptr_nonnull(buf);
    size_t n = fread(buf, 1, 65535, f);
    buf[n] = '\0';
    fclose(f);
    return buf;
}

static void write_file(const char *name, const char *text)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/%s", cl.root, name);
    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    fputs(text, f);
    fclose(f);
}

/* The holder, run by `ballot lock`: it records its token, and a moment
 * later (after it has been stopped and resumed) writes with its fence. It
 * ignores SIGTERM, which `ballot lock` sends once it finds the lease
 * gone, so that the fenced write is what decides. */
static const char holder_sh[] =
    "trap '' TERM\n"
    "echo \"$BALLOT_LOCK_TOKEN\" > \"$D/tok.tmp\" && mv \"$D/tok.tmp\" "
    "\"$D/tok\"\n"
    "sleep 1\n"
    "\"$B\" --endpoints \"$E\" put k old --fence L \"$BALLOT_LOCK_TOKEN\"\n"
    "echo $? > \"$D/rc.tmp\" && mv \"$D/rc.tmp\" \"$D/rc\"\n";

/* A `ballot lock` holder is SIGSTOPped past its lease's TTL: the lease
 * ends through the log, the next holder gets a larger token, and when the
 * old holder resumes, its fenced write is refused by the server (exit 4)
 * while the new holder's stands. */
START_TEST(test_lock_sigstopped_holder_is_fenced_out_after_its_lease_ends)
{
    struct cl_reply r;
    cl_start(&cl, 3);
    ck_assert_uint_ne(cl_wait_leader(&cl, 20000), 0);
    write_file("holder.sh", holder_sh);
    pid_t holder = start_group(
        "exec \"$B\" --endpoints \"$E\" lock L --ttl 1000 -- sh "
        "\"$D/holder.sh\"");
    char *tok = NULL;
    uint64_t end = cl_now_ms() + 20000;
    while ((tok = read_file("tok")) == NULL && cl_now_ms() < end) {
        usleep(10000);
    }
    ck_assert_msg(tok != NULL, "the holder never got the lock");
    ck_assert_int_eq(kill(-holder, SIGSTOP), 0);
    long long old_token = atoll(tok);
    free(tok);
    ck_assert_int_gt(old_token, 0);

    /* The next holder waits for the stopped holder's lease to end. */
    const char *grant[] = {"BLEASE", "GRANT", "20000", "ID", "500"};
    ck_assert_int_eq(on_leader(10000, &r, 5, grant), 0);
    ck_assert_int_eq(r.type, CL_ARRAY);
    cl_reply_free(&r);
    uint64_t asked = cl_now_ms();
    const char *acq[] = {"BLOCK", "ACQUIRE", "L", "500", "TIMEOUT", "15000"};
    ck_assert_int_eq(on_leader(20000, &r, 6, acq), 0);
    ck_assert_msg(r.type == CL_INT, "acquire: type %d %s", (int)r.type,
                  r.str ? r.str : "");
    long long new_token = r.integer;
    cl_reply_free(&r);
    ck_assert_int_gt(new_token, old_token);
    /* Not before the old lease could have ended (TTL 1000 ms). */
    ck_assert_uint_ge(cl_now_ms() - asked, 500);
    char tbuf[24];
    snprintf(tbuf, sizeof(tbuf), "%lld", new_token);
    const char *put[] = {"BFENCE", "L", tbuf, "SET", "k", "new"};
    ck_assert_int_eq(on_leader(10000, &r, 6, put), 0);
    ck_assert_msg(r.type == CL_STATUS, "new holder's write: %s",
                  r.str ? r.str : "");
    cl_reply_free(&r);

    ck_assert_int_eq(kill(-holder, SIGCONT), 0);
    (void)wait_group(holder, 30000);
    char *rc = read_file("rc");
    ck_assert_msg(rc != NULL, "the resumed holder never wrote");
    ck_assert_msg(atoi(rc) == 4, "the stale fenced write exited %s", rc);
    free(rc);
    const char *get[] = {"GET", "k"};
    ck_assert_int_eq(on_leader(10000, &r, 2, get), 0);
    ck_assert_int_eq(r.type, CL_BULK);
    ck_assert_str_eq(r.str, "new");
    cl_reply_free(&r);
}
END_TEST

/* Each worker adds one to a counter file six times, each time under
 * `ballot lock`, and logs the token it held. */
static const char worker_sh[] =
    "i=0; tries=0\n"
    "while [ $i -lt 6 ] && [ $tries -lt 100 ]; do\n"
    "  tries=$((tries+1))\n"
    "  if \"$B\" --endpoints \"$E\" lock ctr --ttl 4000 -- sh -c '"
    "n=$(cat \"$D/cnt\"); echo $((n+1)) > \"$D/cnt.tmp\"; "
    "mv \"$D/cnt.tmp\" \"$D/cnt\"; "
    "echo \"$BALLOT_LOCK_TOKEN\" >> \"$D/log\"'; then i=$((i+1)); fi\n"
    "done\n"
    "[ $i -eq 6 ]\n";

static unsigned count_lines(const char *s)
{
    unsigned n = 0;
    for (; s != NULL && *s != '\0'; s++) {
        n += *s == '\n';
    }
    return n;
}

/* Three processes contend with `ballot lock` for a read-increment-write of
 * a shared file, and the leader is SIGKILLed while they do: no increment
 * is lost (the counter equals the increments logged) and the tokens the
 * increments ran under strictly increase in the order they ran. */
START_TEST(test_lock_ballot_lock_loses_no_increment_across_a_leader_kill)
{
    cl_start(&cl, 3);
    unsigned leader = cl_wait_leader(&cl, 20000);
    ck_assert_uint_ne(leader, 0);
    write_file("cnt", "0\n");
    write_file("log", "");
    write_file("worker.sh", worker_sh);
    pid_t w[3];
    for (int i = 0; i < 3; i++) {
        w[i] = start_group("exec sh \"$D/worker.sh\"");
    }
    /* A third of the way, kill the leader. */
    uint64_t end = cl_now_ms() + 60000;
    for (;;) {
        char *log = read_file("log");
        unsigned n = count_lines(log);
        free(log);
        if (n >= 6 || cl_now_ms() > end) {
            break;
        }
        usleep(20000);
    }
    leader = cl_wait_leader(&cl, 20000);
    ck_assert_uint_ne(leader, 0);
    cl_kill(&cl, leader);
    for (int i = 0; i < 3; i++) {
        ck_assert_int_eq(wait_group(w[i], 120000), 0);
    }
    char *cnt = read_file("cnt");
    char *log = read_file("log");
    unsigned lines = count_lines(log);
    ck_assert_uint_ge(lines, 18);
    ck_assert_msg((unsigned)atoi(cnt) == lines,
                  "counter %s after %u increments", cnt, lines);
    long long prev = 0;
    for (char *p = log; *p != '\0';) {
        long long t = atoll(p);
        ck_assert_msg(t > prev, "token %lld after %lld", t, prev);
        prev = t;
        p = strchr(p, '\n') + 1;
    }
    free(cnt);
    free(log);
}
END_TEST

/* Every bad input gets a clear error and changes nothing. */
START_TEST(test_lock_bad_input_gets_clear_errors)
{
    struct cl_reply r;
    cl_start(&cl, 1);
    ck_assert_uint_ne(cl_wait_leader(&cl, 20000), 0);
    const char *grant[] = {"BLEASE", "GRANT", "20000", "ID", "7"};
    ck_assert_int_eq(on_leader(10000, &r, 5, grant), 0);
    cl_reply_free(&r);

    const char *unknown[] = {"BLOCK", "ACQUIRE", "L", "99"};
    expect_error("no such lease", 4, unknown);
    const char *zero[] = {"BLOCK", "ACQUIRE", "L", "0"};
    expect_error("lease id must be", 4, zero);
    const char *neg[] = {"BLOCK", "ACQUIRE", "L", "-3"};
    expect_error("lease id must be", 4, neg);
    const char *timeout[] = {"BLOCK", "ACQUIRE", "L",
                             "7",     "TIMEOUT", "99999999999"};
    expect_error("TIMEOUT must be", 6, timeout);
    const char *neg_timeout[] = {"BLOCK", "ACQUIRE", "L", "7", "TIMEOUT", "-1"};
    expect_error("TIMEOUT must be", 6, neg_timeout);
    const char *syntax[] = {"BLOCK", "ACQUIRE", "L", "7", "SOON"};
    expect_error("syntax", 5, syntax);
    char name[600];
    memset(name, 'n', sizeof(name) - 1);
    name[sizeof(name) - 1] = '\0';
    const char *long_name[] = {"BLOCK", "ACQUIRE", name, "7"};
    expect_error("lock name must be", 4, long_name);
    const char *empty_name[] = {"BLOCK", "ACQUIRE", "", "7"};
    expect_error("lock name must be", 4, empty_name);
    const char *sub[] = {"BLOCK", "STEAL", "L"};
    expect_error("unknown BLOCK subcommand", 3, sub);

    /* Releasing a lock one does not hold, before and after holding it. */
    const char *rel_none[] = {"BLOCK", "RELEASE", "L", "12345"};
    expect_error("no holder or waiter", 4, rel_none);
    const char *acq[] = {"BLOCK", "ACQUIRE", "L", "7"};
    ck_assert_int_eq(on_leader(10000, &r, 4, acq), 0);
    ck_assert_int_eq(r.type, CL_INT);
    char tbuf[24], other[24];
    snprintf(tbuf, sizeof(tbuf), "%lld", r.integer);
    snprintf(other, sizeof(other), "%lld", r.integer + 1000);
    cl_reply_free(&r);
    const char *rel_other[] = {"BLOCK", "RELEASE", "L", other};
    expect_error("no holder or waiter", 4, rel_other);
    const char *rel_bad[] = {"BLOCK", "RELEASE", "L", "x"};
    expect_error("token must be", 4, rel_bad);

    /* Fences: a read, an unknown command, a bad or stale token. */
    const char *fence_read[] = {"BFENCE", "L", tbuf, "GET", "k"};
    expect_error("cannot run inside BFENCE", 5, fence_read);
    const char *fence_ka[] = {"BFENCE", "L", tbuf, "BLEASE", "KEEPALIVE", "7"};
    expect_error("cannot run inside BFENCE", 6, fence_ka);
    const char *fence_unknown[] = {"BFENCE", "L", tbuf, "NOPE", "k"};
    expect_error("unknown command", 5, fence_unknown);
    const char *fence_bad[] = {"BFENCE", "L", "-1", "SET", "k", "v"};
    expect_error("token must be", 6, fence_bad);
    const char *fence_stale[] = {"BFENCE", "L", other, "SET", "k", "v"};
    expect_error("FENCED", 6, fence_stale);
    const char *fence_other[] = {"BFENCE", "M", tbuf, "SET", "k", "v"};
    expect_error("FENCED", 6, fence_other);
    const char *get[] = {"GET", "k"};
    ck_assert_int_eq(on_leader(10000, &r, 2, get), 0);
    ck_assert_int_eq(r.type, CL_NIL); /* nothing fenced out was applied */
    cl_reply_free(&r);

    /* After the lease is revoked, its token releases nothing. */
    const char *revoke[] = {"BLEASE", "REVOKE", "7"};
    ck_assert_int_eq(on_leader(10000, &r, 3, revoke), 0);
    ck_assert_int_eq(r.type, CL_INT);
    cl_reply_free(&r);
    const char *rel[] = {"BLOCK", "RELEASE", "L", tbuf};
    expect_error("no holder or waiter", 4, rel);
    const char *fence_gone[] = {"BFENCE", "L", tbuf, "SET", "k", "v"};
    expect_error("FENCED", 6, fence_gone);

    /* The CLI's TTLs: zero is a usage error, beyond the maximum refused. */
    char eps[256];
    endpoints(eps, sizeof(eps));
    const char *zero_ttl[] = {BALLOT_PATH, "--endpoints", eps,  "lock", "L",
                              "--ttl",     "0",           "--", "true", NULL};
    ck_assert_int_eq(cl_run(zero_ttl, NULL, NULL, NULL, 20000), 2);
    const char *huge_ttl[] = {
        BALLOT_PATH, "--endpoints",     eps,  "lock", "L",
        "--ttl",     "999999999999999", "--", "true", NULL};
    char *out = NULL;
    ck_assert_int_eq(cl_run(huge_ttl, NULL, &out, NULL, 20000), 4);
    ck_assert_msg(strstr(out, "maximum") != NULL, "%s", out);
    free(out);
    /* A command that cannot run: 127, and the lock is free again. */
    const char *missing[] = {BALLOT_PATH, "--endpoints",      eps, "lock", "L",
                             "--",        "/nonexistent/cmd", NULL};
    ck_assert_int_eq(cl_run(missing, NULL, NULL, NULL, 20000), 127);
    const char *owner[] = {"BLOCK", "OWNER", "L"};
    ck_assert_int_eq(on_leader(10000, &r, 3, owner), 0);
    ck_assert_int_eq(r.type, CL_NIL);
    cl_reply_free(&r);
}
END_TEST

/* The number of claims on lock @name (holder and waiters), 0 if free. */
static long long claims(const char *name)
{
    struct cl_reply r;
    const char *owner[] = {"BLOCK", "OWNER", name};
    ck_assert_int_eq(on_leader(10000, &r, 3, owner), 0);
    long long n = r.type == CL_ARRAY ? r.elems[2].integer : 0;
    cl_reply_free(&r);
    return n;
}

/* A wait that times out answers nil and withdraws its claim; so does one
 * whose connection goes away; a waiter served after them gets the lock
 * with a larger token. */
START_TEST(test_lock_timed_out_and_abandoned_waits_withdraw_their_claims)
{
    struct cl_reply r;
    cl_start(&cl, 1);
    unsigned id = cl_wait_leader(&cl, 20000);
    ck_assert_uint_ne(id, 0);
    const char *g1[] = {"BLEASE", "GRANT", "30000", "ID", "1"};
    const char *g2[] = {"BLEASE", "GRANT", "30000", "ID", "2"};
    const char *g3[] = {"BLEASE", "GRANT", "30000", "ID", "3"};
    const char **grants[] = {g1, g2, g3};
    for (int i = 0; i < 3; i++) {
        ck_assert_int_eq(on_leader(10000, &r, 5, grants[i]), 0);
        cl_reply_free(&r);
    }
    const char *a1[] = {"BLOCK", "ACQUIRE", "L", "1"};
    ck_assert_int_eq(on_leader(10000, &r, 4, a1), 0);
    ck_assert_int_eq(r.type, CL_INT);
    long long t1 = r.integer;
    cl_reply_free(&r);

    uint64_t start = cl_now_ms();
    const char *a2[] = {"BLOCK", "ACQUIRE", "L", "2", "TIMEOUT", "300"};
    ck_assert_int_eq(on_leader(10000, &r, 6, a2), 0);
    ck_assert_int_eq(r.type, CL_NIL);
    cl_reply_free(&r);
    ck_assert_uint_ge(cl_now_ms() - start, 300);
    ck_assert_int_eq(claims("L"), 1);

    /* A waiter that hangs up. */
    struct cl_conn c;
    ck_assert_int_eq(cl_connect(&c, cl.nodes[id - 1].client_port, 5000), 0);
    const char *a3[] = {"BLOCK", "ACQUIRE", "L", "3"};
    size_t lens[] = {5, 7, 1, 1};
    ck_assert_int_eq(cl_sendv(&c, 5000, 4, a3, lens), 0);
    uint64_t end = cl_now_ms() + 10000;
    while (claims("L") != 2 && cl_now_ms() < end) {
        usleep(20000);
    }
    ck_assert_int_eq(claims("L"), 2);
    cl_close(&c);
    while (claims("L") != 1 && cl_now_ms() < end) {
        usleep(20000);
    }
    ck_assert_int_eq(claims("L"), 1);

    /* The next claim waits its turn and gets a larger token. */
    const char *rel[4] = {"BLOCK", "RELEASE", "L", NULL};
    char tbuf[24];
    snprintf(tbuf, sizeof(tbuf), "%lld", t1);
    rel[3] = tbuf;
    ck_assert_int_eq(on_leader(10000, &r, 4, rel), 0);
    ck_assert_int_eq(r.type, CL_INT);
    ck_assert_int_eq(r.integer, 1);
    cl_reply_free(&r);
    ck_assert_int_eq(on_leader(10000, &r, 6, a2), 0);
    ck_assert_int_eq(r.type, CL_INT);
    ck_assert_int_gt(r.integer, t1);
    cl_reply_free(&r);
}
END_TEST

/* Elections: the first candidate leads with its value and can proclaim a
 * new one; a stale token cannot; a second candidate waits and leads once
 * the first resigns, with a larger token; the leader's lease ending
 * leaves no leader; `ballot elect --listen` prints each leader in turn;
 * bad input gets clear errors. */
START_TEST(test_lock_election_campaign_proclaim_resign_and_listen)
{
    struct cl_reply r;
    cl_start(&cl, 1);
    unsigned id = cl_wait_leader(&cl, 20000);
    ck_assert_uint_ne(id, 0);
    const char *g1[] = {"BLEASE", "GRANT", "30000", "ID", "1"};
    const char *g2[] = {"BLEASE", "GRANT", "30000", "ID", "2"};
    ck_assert_int_eq(on_leader(10000, &r, 5, g1), 0);
    cl_reply_free(&r);
    ck_assert_int_eq(on_leader(10000, &r, 5, g2), 0);
    cl_reply_free(&r);
    pid_t listener = start_group(
        "exec \"$B\" --json --endpoints \"$E\" elect E --listen > "
        "\"$D/listen\"");

    const char *c1[] = {"BELECT", "CAMPAIGN", "E", "1", "a"};
    ck_assert_int_eq(on_leader(10000, &r, 5, c1), 0);
    ck_assert_int_eq(r.type, CL_INT);
    long long t1 = r.integer;
    cl_reply_free(&r);
    char t1s[24], stale[24];
    snprintf(t1s, sizeof(t1s), "%lld", t1);
    snprintf(stale, sizeof(stale), "%lld", t1 + 1000);
    usleep(300000);
    const char *p1[] = {"BELECT", "PROCLAIM", "E", t1s, "a2"};
    ck_assert_int_eq(on_leader(10000, &r, 5, p1), 0);
    ck_assert_int_eq(r.type, CL_STATUS);
    cl_reply_free(&r);
    const char *p_stale[] = {"BELECT", "PROCLAIM", "E", stale, "x"};
    expect_error("FENCED", 5, p_stale);
    const char *lead[] = {"BELECT", "LEADER", "E"};
    ck_assert_int_eq(on_leader(10000, &r, 3, lead), 0);
    ck_assert_int_eq(r.type, CL_ARRAY);
    ck_assert_int_eq(r.elems[0].integer, t1);
    ck_assert_int_eq(r.elems[1].integer, 1);
    ck_assert_str_eq(r.elems[2].str, "a2");
    cl_reply_free(&r);
    usleep(300000);

    /* The second candidate waits on a connection of its own. */
    struct cl_conn c;
    ck_assert_int_eq(cl_connect(&c, cl.nodes[id - 1].client_port, 5000), 0);
    const char *c2[] = {"BELECT", "CAMPAIGN", "E", "2", "b"};
    size_t lens[] = {6, 8, 1, 1, 1};
    ck_assert_int_eq(cl_sendv(&c, 5000, 5, c2, lens), 0);
    usleep(200000);
    const char *resign[] = {"BELECT", "RESIGN", "E", t1s};
    ck_assert_int_eq(on_leader(10000, &r, 4, resign), 0);
    ck_assert_int_eq(r.type, CL_INT);
    ck_assert_int_eq(r.integer, 1);
    cl_reply_free(&r);
    ck_assert_int_eq(cl_read_reply(&c, 10000, &r), 0);
    ck_assert_int_eq(r.type, CL_INT);
    ck_assert_int_gt(r.integer, t1);
    cl_reply_free(&r);
    cl_close(&c);
    ck_assert_int_eq(on_leader(10000, &r, 3, lead), 0);
    ck_assert_str_eq(r.elems[2].str, "b");
    cl_reply_free(&r);
    usleep(300000);
    const char *revoke[] = {"BLEASE", "REVOKE", "2"};
    ck_assert_int_eq(on_leader(10000, &r, 3, revoke), 0);
    cl_reply_free(&r);
    ck_assert_int_eq(on_leader(10000, &r, 3, lead), 0);
    ck_assert_int_eq(r.type, CL_NIL);
    cl_reply_free(&r);

    /* The listener saw a, a2, b, then no leader, in that order. */
    const char *want[] = {"\"value\":\"a\"", "\"value\":\"a2\"",
                          "\"value\":\"b\"", "\"value\":null"};
    uint64_t end = cl_now_ms() + 10000;
    bool seen = false;
    while (!seen && cl_now_ms() < end) {
        char *out = read_file("listen");
        const char *at = out;
        seen = out != NULL;
        for (size_t i = 0; seen && i < 4; i++) {
            const char *hit = strstr(at, want[i]);
            seen = hit != NULL;
            at = hit != NULL ? hit + 1 : at;
        }
        free(out);
        if (!seen) {
            usleep(50000);
        }
    }
    kill(-listener, SIGTERM);
    (void)wait_group(listener, 10000);
    ck_assert_msg(seen, "the listener missed a leader");

    const char *no_value[] = {"BELECT", "CAMPAIGN", "E", "1"};
    expect_error("syntax", 4, no_value);
    const char *resign_none[] = {"BELECT", "RESIGN", "E", stale};
    expect_error("no holder or waiter", 4, resign_none);
    const char *sub[] = {"BELECT", "RIG", "E"};
    expect_error("unknown BELECT subcommand", 3, sub);
    char name[600];
    memset(name, 'n', sizeof(name) - 1);
    name[sizeof(name) - 1] = '\0';
    const char *long_name[] = {"BELECT", "LEADER", name};
    expect_error("election name must be", 3, long_name);
}
END_TEST

int main(int argc, char **argv)
{
    const struct cl_named_test tests[] = {
        {"sigstopped_holder_is_fenced_out_after_its_lease_ends",
         test_lock_sigstopped_holder_is_fenced_out_after_its_lease_ends},
        {"ballot_lock_loses_no_increment_across_a_leader_kill",
         test_lock_ballot_lock_loses_no_increment_across_a_leader_kill},
        {"bad_input_gets_clear_errors", test_lock_bad_input_gets_clear_errors},
        {"timed_out_and_abandoned_waits_withdraw_their_claims",
         test_lock_timed_out_and_abandoned_waits_withdraw_their_claims},
        {"election_campaign_proclaim_resign_and_listen",
         test_lock_election_campaign_proclaim_resign_and_listen},
    };
    return cl_run_tests("lock", tests, sizeof(tests) / sizeof(tests[0]), 150,
                        teardown, argc, argv);
}
