/*
 * test_cli.c - the `ballot` CLI against a real 3-node cluster.
 *
 * Every test starts its own cluster with the harness of tests/cluster and
 * runs the CLI as a child process (cl_run: bounded in time, killed by
 * pid), then parses its --json output with cJSON and checks it field by
 * field, and its exit code.
 */
#include <check.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cJSON.h>

#include "harness.h"

#define CLI_TIMEOUT_MS 30000

static struct cluster cl;
static char eps_all[256];

static void addr_of(unsigned id, char *buf, size_t n)
{
    snprintf(buf, n, "127.0.0.1:%d", cl.nodes[id - 1].client_port);
}

static unsigned start_cluster(void)
{
    unsigned leader;
    char a[64], b[64], c[64];
    cl.ballotd = BALLOTD_PATH;
    cl_start(&cl, 3);
    leader = cl_wait_leader(&cl, 10000);
    ck_assert_uint_ne(leader, 0);
    addr_of(1, a, sizeof(a));
    addr_of(2, b, sizeof(b));
    addr_of(3, c, sizeof(c));
    snprintf(eps_all, sizeof(eps_all), "%s,%s,%s", a, b, c);
    return leader;
}

/* Runs `ballot --endpoints EPS --timeout 3000 ARGS...` (NULL-terminated)
 * with stdin from @in (NULL: /dev/null). Returns the exit code; *out
 * gets stdout and stderr together. */
static int run_in(const char *eps, const char *in, char **out, ...)
{
    const char *argv[64];
    int n = 0, rc;
    va_list ap;
    argv[n++] = BALLOT_PATH;
    argv[n++] = "--endpoints";
    argv[n++] = eps;
    argv[n++] = "--timeout";
    argv[n++] = "3000";
    va_start(ap, out);
    for (const char *a; n < 63 && (a = va_arg(ap, const char *)) != NULL;) {
        argv[n++] = a;
    }
    va_end(ap);
    argv[n] = NULL;
    rc = cl_run(argv, in, out, NULL, CLI_TIMEOUT_MS);
    ck_assert_int_ne(rc, -1);
    return rc;
}

#define run(eps, out, ...) run_in(eps, NULL, out, __VA_ARGS__, NULL)

/* The first line of @out that is a JSON object (stderr shares the
 * stream), parsed. */
static cJSON *json_of(const char *out)
{
    for (const char *p = out; p != NULL && *p != '\0';) {
        const char *nl = strchr(p, '\n');
        if (*p == '{') {
            size_t n = nl ? (size_t)(nl - p) : strlen(p);
            char *line = strndup(p, n);
            cJSON *j = cJSON_Parse(line);
            free(line);
            ck_assert_msg(j != NULL, "not JSON: %s", out);
            return j;
        }
        p = nl ? nl + 1 : NULL;
    }
    ck_abort_msg("no JSON in: %s", out);
    return NULL;
}

static double num(const cJSON *o, const char *name)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);
    ck_assert_msg(cJSON_IsNumber(v), "%s is not a number", name);
    return v->valuedouble;
}

static const char *str(const cJSON *o, const char *name)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);
    ck_assert_msg(cJSON_IsString(v), "%s is not a string", name);
    return v->valuestring;
}

static bool boolean(const cJSON *o, const char *name)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);
    ck_assert_msg(cJSON_IsBool(v), "%s is not a boolean", name);
    return cJSON_IsTrue(v);
}

/* Runs a --json command that must succeed and returns its object. */
static cJSON *ok_json6(const char *eps,
                       const char *a,
                       const char *b,
                       const char *c,
                       const char *d,
                       const char *e,
                       const char *f)
{
    char *out = NULL;
    int rc = run(eps, &out, "--json", a, b, c, d, e, f);
    cJSON *j;
    ck_assert_msg(rc == 0, "rc %d: %s", rc, out);
    j = json_of(out);
    free(out);
    return j;
}

static cJSON *ok_json(const char *eps,
                      const char *a,
                      const char *b,
                      const char *c,
                      const char *d,
                      const char *e)
{
    return ok_json6(eps, a, b, c, d, e, NULL);
}

static void teardown(void)
{
    cl_close_all(&cl);
}

/* put, get, del, range and txn, checked through their JSON output. */
START_TEST(test_cli_kv_commands_print_json)
{
    cJSON *j, *kvs, *kv;
    double rev;
    start_cluster();

    j = ok_json(eps_all, "put", "user:1", "alice", NULL, NULL);
    ck_assert_str_eq(str(j, "key"), "user:1");
    rev = num(j, "revision");
    ck_assert(rev >= 1);
    cJSON_Delete(j);
    j = ok_json(eps_all, "put", "user:2", "bob", NULL, NULL);
    ck_assert(num(j, "revision") == rev + 1);
    cJSON_Delete(j);
    j = ok_json(eps_all, "put", "zzz", "last", NULL, NULL);
    cJSON_Delete(j);

    j = ok_json(eps_all, "get", "user:1", NULL, NULL, NULL);
    ck_assert_str_eq(str(j, "key"), "user:1");
    ck_assert(boolean(j, "found"));
    ck_assert_str_eq(str(j, "value"), "alice");
    cJSON_Delete(j);

    j = ok_json(eps_all, "range", "user:", "--prefix", NULL, NULL);
    ck_assert(num(j, "count") == 2);
    ck_assert(!boolean(j, "more"));
    ck_assert(num(j, "revision") == rev + 2);
    kvs = cJSON_GetObjectItem(j, "kvs");
    ck_assert_int_eq(cJSON_GetArraySize(kvs), 2);
    kv = cJSON_GetArrayItem(kvs, 1);
    ck_assert_str_eq(str(kv, "key"), "user:2");
    ck_assert_str_eq(str(kv, "value"), "bob");
    cJSON_Delete(j);

    /* LIMIT and REVERSE over the whole key space; count is the total. */
    j = ok_json6(eps_all, "range", "", "--prefix", "--limit", "1", "--reverse");
    ck_assert(num(j, "count") == 3);
    ck_assert(boolean(j, "more"));
    kv = cJSON_GetArrayItem(cJSON_GetObjectItem(j, "kvs"), 0);
    ck_assert_str_eq(str(kv, "key"), "zzz");
    cJSON_Delete(j);
    j = ok_json(eps_all, "range", "user:", "user:2", "--keys-only", NULL);
    kvs = cJSON_GetObjectItem(j, "kvs");
    ck_assert_int_eq(cJSON_GetArraySize(kvs), 1);
    kv = cJSON_GetArrayItem(kvs, 0);
    ck_assert_str_eq(str(kv, "key"), "user:1");
    ck_assert_ptr_null(cJSON_GetObjectItem(kv, "value"));
    cJSON_Delete(j);

    /* A compare-and-swap that holds, then one that does not. */
    {
        char *out = NULL;
        int rc = run(eps_all, &out, "--json", "txn", "value", "user:1", "=",
                     "alice", "then", "put", "user:1", "carol", "get", "user:1",
                     "else", "get", "user:1");
        ck_assert_msg(rc == 0, "%s", out);
        j = json_of(out);
        free(out);
        ck_assert(boolean(j, "succeeded"));
        kvs = cJSON_GetObjectItem(j, "results");
        ck_assert_int_eq(cJSON_GetArraySize(kvs), 2);
        ck_assert_str_eq(cJSON_GetArrayItem(kvs, 0)->valuestring, "OK");
        ck_assert_str_eq(cJSON_GetArrayItem(kvs, 1)->valuestring, "carol");
        cJSON_Delete(j);
        rc = run(eps_all, &out, "--json", "txn", "value", "user:1", "=",
                 "alice", "then", "put", "user:1", "dave", "else", "get",
                 "user:1", "get", "nope");
        ck_assert_msg(rc == 0, "%s", out);
        j = json_of(out);
        free(out);
        ck_assert(!boolean(j, "succeeded"));
        kvs = cJSON_GetObjectItem(j, "results");
        ck_assert_str_eq(cJSON_GetArrayItem(kvs, 0)->valuestring, "carol");
        ck_assert(cJSON_IsNull(cJSON_GetArrayItem(kvs, 1)));
        cJSON_Delete(j);
    }

    j = ok_json(eps_all, "del", "user:2", NULL, NULL, NULL);
    ck_assert(num(j, "deleted") == 1);
    cJSON_Delete(j);
    j = ok_json(eps_all, "del", "user:2", NULL, NULL, NULL);
    ck_assert(num(j, "deleted") == 0);
    cJSON_Delete(j);
    j = ok_json(eps_all, "range", "user:", "--prefix", "--count-only", NULL);
    ck_assert(num(j, "count") == 1);
    ck_assert_int_eq(cJSON_GetArraySize(cJSON_GetObjectItem(j, "kvs")), 0);
    cJSON_Delete(j);
}
END_TEST

/* txn -i reads compares, success and failure operations from stdin; put -
 * reads the value from stdin; stale reads work. */
START_TEST(test_cli_txn_interactive_and_stdin_value)
{
    char path[] = "/tmp/ballot-cli-in-XXXXXX";
    int fd;
    FILE *f;
    char *out = NULL;
    cJSON *j, *res;
    int rc;
    start_cluster();
    fd = mkstemp(path);
    ck_assert_int_ge(fd, 0);
    f = fdopen(fd, "w");
    fputs("exists lock = 0\n\nput lock me\nget lock\n\nget lock\n", f);
    fclose(f);
    rc = run_in(eps_all, path, &out, "--json", "txn", "-i", NULL);
    ck_assert_msg(rc == 0, "%s", out);
    j = json_of(out);
    free(out);
    ck_assert(boolean(j, "succeeded"));
    res = cJSON_GetObjectItem(j, "results");
    ck_assert_int_eq(cJSON_GetArraySize(res), 2);
    ck_assert_str_eq(cJSON_GetArrayItem(res, 1)->valuestring, "me");
    cJSON_Delete(j);
    /* The same again fails: the lock exists now. */
    rc = run_in(eps_all, path, &out, "--json", "txn", "-i", NULL);
    j = json_of(out);
    free(out);
    ck_assert(!boolean(j, "succeeded"));
    cJSON_Delete(j);

    f = fopen(path, "w");
    fputs("line one\nline two\n", f);
    fclose(f);
    rc = run_in(eps_all, path, &out, "put", "doc", "-", NULL);
    ck_assert_msg(rc == 0, "%s", out);
    free(out);
    rc = run(eps_all, &out, "--json", "--consistency", "l", "get", "doc");
    j = json_of(out);
    free(out);
    ck_assert_str_eq(str(j, "value"), "line one\nline two\n");
    cJSON_Delete(j);
    unlink(path);
}
END_TEST

/* member list, status and leader transfer. */
START_TEST(test_cli_member_status_and_leader_transfer)
{
    unsigned leader = start_cluster(), target = leader % 3 + 1;
    cJSON *j, *arr;
    char id[16], addr[64], *out = NULL;
    int rc;

    j = ok_json(eps_all, "member", "list", NULL, NULL, NULL);
    arr = cJSON_GetObjectItem(j, "members");
    ck_assert_int_eq(cJSON_GetArraySize(arr), 3);
    for (int i = 0; i < 3; i++) {
        cJSON *m = cJSON_GetArrayItem(arr, i);
        unsigned mid = (unsigned)num(m, "id");
        ck_assert(mid >= 1 && mid <= 3);
        ck_assert_str_eq(str(m, "role"), "voter");
        addr_of(mid, addr, sizeof(addr));
        ck_assert_str_eq(str(m, "address"), addr);
    }
    cJSON_Delete(j);

    j = ok_json(eps_all, "put", "k", "v", NULL, NULL);
    cJSON_Delete(j);
    j = ok_json(eps_all, "status", NULL, NULL, NULL, NULL);
    arr = cJSON_GetObjectItem(j, "endpoints");
    ck_assert_int_eq(cJSON_GetArraySize(arr), 3);
    for (int i = 0; i < 3; i++) {
        cJSON *s = cJSON_GetArrayItem(arr, i);
        addr_of((unsigned)i + 1, addr, sizeof(addr));
        ck_assert_str_eq(str(s, "endpoint"), addr);
        ck_assert(num(s, "id") == i + 1);
        ck_assert_str_eq(str(s, "role"),
                         (unsigned)i + 1 == leader ? "leader" : "follower");
        ck_assert(num(s, "term") >= 1);
        ck_assert(num(s, "leader") == leader);
        ck_assert(num(s, "commit") >= num(s, "applied"));
        ck_assert(num(s, "lag") >= 0);
        ck_assert(num(s, "revision") <= 1);
        ck_assert(num(s, "keys") <= 1);
        /* At least LMDB's two meta pages and a root. */
        ck_assert(num(s, "db_bytes") >= 3 * 4096);
        ck_assert_str_eq(str(s, "version"), "0.1.0");
    }
    cJSON_Delete(j);

    /* --cluster finds every member from one endpoint. */
    addr_of(leader, addr, sizeof(addr));
    j = ok_json(addr, "status", "--cluster", NULL, NULL, NULL);
    ck_assert_int_eq(cJSON_GetArraySize(cJSON_GetObjectItem(j, "endpoints")),
                     3);
    cJSON_Delete(j);

    /* Transfer, sent to a follower first: the CLI follows the redirect. */
    snprintf(id, sizeof(id), "%u", target);
    addr_of(target, addr, sizeof(addr));
    rc = run(addr, &out, "--json", "leader", "transfer", id);
    ck_assert_msg(rc == 0, "%s", out);
    free(out);
    for (int i = 0; i < 100; i++) {
        if (cl_wait_leader(&cl, 1000) == target) {
            break;
        }
        usleep(50000);
    }
    ck_assert_uint_eq(cl_wait_leader(&cl, 1000), target);
}
END_TEST

/* compact drops the history below a revision on every member and prints
 * the compaction point; a revision beyond the store's fails. */
START_TEST(test_cli_compact_prints_the_compaction_point)
{
    (void)start_cluster();
    cJSON *j;
    char *out = NULL;
    for (int i = 0; i < 3; i++) {
        j = ok_json(eps_all, "put", "k", "v", NULL, NULL);
        cJSON_Delete(j);
    }
    j = ok_json(eps_all, "compact", "2", NULL, NULL, NULL);
    ck_assert(num(j, "compact_revision") == 2);
    cJSON_Delete(j);
    int rc = run(eps_all, &out, "compact", "999", NULL, NULL, NULL, NULL);
    ck_assert_msg(rc != 0 && strstr(out, "beyond") != NULL, "%d: %s", rc, out);
    free(out);
}
END_TEST

/* A dead first endpoint is skipped; writes sent to a follower follow the
 * NOTLEADER redirect. */
START_TEST(test_cli_endpoint_failover_and_redirect)
{
    unsigned leader = start_cluster();
    unsigned follower = leader % 3 + 1, other = follower % 3 + 1;
    char dead[64], fol[64], eps[160];
    cJSON *j;

    /* Only a follower named: the write is redirected to the leader. */
    addr_of(follower, fol, sizeof(fol));
    j = ok_json(fol, "put", "redirected", "yes", NULL, NULL);
    cJSON_Delete(j);
    j = ok_json(fol, "get", "redirected", NULL, NULL, NULL);
    ck_assert_str_eq(str(j, "value"), "yes");
    cJSON_Delete(j);

    /* Kill the other follower and name it first. */
    cl_kill(&cl, other);
    addr_of(other, dead, sizeof(dead));
    snprintf(eps, sizeof(eps), "%s,%s", dead, fol);
    j = ok_json(eps, "get", "redirected", NULL, NULL, NULL);
    ck_assert_str_eq(str(j, "value"), "yes");
    cJSON_Delete(j);
    j = ok_json(eps, "put", "after", "failover", NULL, NULL);
    cJSON_Delete(j);
    j = ok_json(eps, "--consistency", "s", "get", "after", NULL);
    ck_assert_str_eq(str(j, "value"), "failover");
    cJSON_Delete(j);
}
END_TEST

/* Exit codes: 1 missing key, 2 usage, 3 unreachable, 4 rejected. */
START_TEST(test_cli_exit_codes)
{
    char *out = NULL, longkey[600];
    cJSON *j, *e;
    int rc;
    start_cluster();

    rc = run(eps_all, &out, "--json", "get", "missing");
    ck_assert_int_eq(rc, 1);
    j = json_of(out);
    free(out);
    ck_assert(!boolean(j, "found"));
    cJSON_Delete(j);

    ck_assert_int_eq(run(eps_all, &out, "get"), 2);
    free(out);
    ck_assert_int_eq(run(eps_all, &out, "frobnicate"), 2);
    free(out);
    ck_assert_int_eq(run(eps_all, &out, "range", "a", "--bogus"), 2);
    free(out);
    ck_assert_int_eq(run(eps_all, &out, "txn", "value", "k"), 2);
    free(out);
    ck_assert_int_eq(run(eps_all, &out, "--consistency", "x", "get", "k"), 2);
    free(out);

    /* Nothing listens on port 1. */
    rc = run("127.0.0.1:1", &out, "--json", "get", "k");
    ck_assert_int_eq(rc, 3);
    j = json_of(out);
    free(out);
    e = cJSON_GetObjectItem(j, "error");
    ck_assert(num(e, "exit_code") == 3);
    cJSON_Delete(j);
    ck_assert_int_eq(run("127.0.0.1:1", &out, "put", "k", "v"), 3);
    free(out);

    /* member add --addr: a missing value is a usage error, a malformed
     * address the server's. */
    ck_assert_int_eq(run(eps_all, &out, "member", "add", "9", "--addr"), 2);
    free(out);
    rc = run(eps_all, &out, "member", "add", "9", "--learner", "--addr", "x");
    ck_assert_int_eq(rc, 4);
    ck_assert_ptr_nonnull(strstr(out, "host:client-port[:peer-port]"));
    free(out);

    memset(longkey, 'k', sizeof(longkey) - 1);
    longkey[sizeof(longkey) - 1] = '\0';
    ck_assert_int_eq(run(eps_all, &out, "put", longkey, "v"), 4);
    free(out);
    ck_assert_int_eq(run(eps_all, &out, "member", "remove", "9"), 4);
    free(out);
    ck_assert_int_eq(run(eps_all, &out, "snapshot", "load", "x"), 2);
    free(out);
    ck_assert_int_eq(run(eps_all, &out, "snapshot", "save"), 2);
    free(out);
}
END_TEST

/* ---- snapshot save and restore ----------------------------------------- */

/* Node @id's answer to @argc/@argv, which must succeed. */
static struct cl_reply node_cmd(unsigned id, int argc, const char **argv)
{
    struct cl_reply r;
    ck_assert_int_eq(cl_cmd(&cl, id, 3000, &r, argc, argv), 0);
    ck_assert_msg(r.type != CL_ERR, "%s: %s", argv[0], r.str);
    return r;
}

/* The integer @name of node @id's BSTATUS. */
static long long status_of(unsigned id, const char *name)
{
    const char *argv[] = {"BSTATUS"};
    struct cl_reply r = node_cmd(id, 1, argv);
    long long v = -1;
    for (size_t i = 0; i + 1 < r.n_elems; i += 2) {
        if (strcmp(r.elems[i].str, name) == 0) {
            v = r.elems[i + 1].integer;
        }
    }
    cl_reply_free(&r);
    return v;
}

/* BMETA @key on node @id as "create mod version bytes", or "nil". */
static void meta_of(unsigned id, const char *key, char *buf, size_t len)
{
    const char *argv[] = {"BMETA", key};
    struct cl_reply r = node_cmd(id, 2, argv);
    if (r.type != CL_ARRAY) {
        snprintf(buf, len, "nil");
    } else {
        ck_assert_uint_eq(r.n_elems, 8);
        snprintf(buf, len, "%lld %lld %lld %lld", r.elems[1].integer,
                 r.elems[3].integer, r.elems[5].integer, r.elems[7].integer);
    }
    cl_reply_free(&r);
}

static bool file_exists(const char *path)
{
    return access(path, F_OK) == 0;
}

enum { SNAP_KEYS = 300 };

/* Writes SNAP_KEYS keys through the leader, rewrites some and deletes
 * one, so that revisions, versions and create revisions differ. */
static void write_snap_keys(unsigned leader)
{
    struct cl_conn conn;
    char key[32], val[32];
    ck_assert_int_eq(cl_connect(&conn, cl.nodes[leader - 1].client_port, 3000),
                     0);
    for (int pass = 0; pass < 2; pass++) {
        for (int i = 0; i < (pass == 0 ? SNAP_KEYS : 50); i++) {
            const char *argv[] = {"SET", key, val};
            struct cl_reply r;
            snprintf(key, sizeof(key), "snap:%03d", i);
            snprintf(val, sizeof(val), "%s-%d", pass ? "again" : "first", i);
            ck_assert_int_eq(cl_call(&conn, 5000, &r, 3, argv), 0);
            ck_assert_msg(r.type == CL_STATUS, "SET: %s", r.str);
            cl_reply_free(&r);
        }
    }
    const char *del[] = {"DEL", "snap:299"};
    struct cl_reply r;
    ck_assert_int_eq(cl_call(&conn, 5000, &r, 2, del), 0);
    ck_assert(r.type == CL_INT && r.integer == 1);
    cl_reply_free(&r);
    cl_close(&conn);
}

/* Runs `ballot --json snapshot restore FILE --data DIR --id ID --member
 * ...` for the cluster's members (plus @extra, NULL-terminated words);
 * returns its exit code and output. */
static int restore_node(const char *file,
                        const char *dir,
                        unsigned id,
                        const char *const *extra,
                        char **out)
{
    const char *argv[40];
    char ids[16], members[CL_MAX][64];
    int n = 0;
    snprintf(ids, sizeof(ids), "%u", id);
    argv[n++] = BALLOT_PATH;
    argv[n++] = "--json";
    argv[n++] = "snapshot";
    argv[n++] = "restore";
    argv[n++] = file;
    argv[n++] = "--data";
    argv[n++] = dir;
    argv[n++] = "--id";
    argv[n++] = ids;
    for (unsigned i = 0; i < cl.n; i++) {
        snprintf(members[i], sizeof(members[i]), "%u=127.0.0.1:%d:%d", i + 1,
                 cl.nodes[i].client_port, cl.nodes[i].peer_port);
        argv[n++] = "--member";
        argv[n++] = members[i];
    }
    for (size_t i = 0; extra != NULL && extra[i] != NULL; i++) {
        argv[n++] = extra[i];
    }
    argv[n] = NULL;
    int rc = cl_run(argv, NULL, out, NULL, CLI_TIMEOUT_MS);
    ck_assert_int_ne(rc, -1);
    return rc;
}

/* The etcd procedure: save a snapshot from a running cluster, stop it,
 * restore three fresh data directories from the file, start them as a
 * new cluster (no --bootstrap): every key is there on every node with its
 * metadata and the store revision, and the new cluster takes writes. */
START_TEST(test_cli_snapshot_save_and_restore_a_new_cluster)
{
    char path[400], part[420], dirs[3][400], meta[3][64], got[64];
    const char *sample[] = {"snap:000", "snap:049", "snap:050", "snap:298",
                            "snap:299"};
    char *out = NULL;
    unsigned leader = start_cluster();
    write_snap_keys(leader);
    long long revision = status_of(leader, "revision");
    ck_assert_int_eq(revision, SNAP_KEYS + 50 + 1);
    for (size_t i = 0; i < 3; i++) {
        meta_of(leader, sample[i + 1], meta[i], sizeof(meta[i]));
    }

    snprintf(path, sizeof(path), "%s/backup.snap", cl.root);
    snprintf(part, sizeof(part), "%s.part", path);
    cJSON *j = ok_json(eps_all, "snapshot", "save", path, NULL, NULL);
    ck_assert_str_eq(str(j, "file"), path);
    long long index = (long long)num(j, "index");
    ck_assert_int_gt(index, SNAP_KEYS);
    ck_assert(num(j, "term") >= 1);
    ck_assert(num(j, "revision") == revision);
    ck_assert(num(j, "size") > 64);
    ck_assert_uint_eq(strlen(str(j, "checksum")), 16);
    cJSON_Delete(j);
    ck_assert(file_exists(path));
    ck_assert(!file_exists(part));
    /* Text output too, from a follower. */
    char fol[64];
    addr_of(leader % 3 + 1, fol, sizeof(fol));
    snprintf(part, sizeof(part), "%s/backup2.snap", cl.root);
    ck_assert_int_eq(run(fol, &out, "snapshot", "save", part), 0);
    ck_assert_msg(strstr(out, "saved ") == out && strstr(out, "revision "),
                  "%s", out);
    free(out);

    /* The old cluster goes away. */
    for (unsigned id = 1; id <= 3; id++) {
        ck_assert_int_eq(cl_term(&cl, id), 0);
    }
    for (unsigned id = 1; id <= 3; id++) {
        snprintf(dirs[id - 1], sizeof(dirs[id - 1]), "%s/restored%u", cl.root,
                 id);
        ck_assert_int_eq(restore_node(path, dirs[id - 1], id, NULL, &out), 0);
        j = json_of(out);
        free(out);
        ck_assert(num(j, "index") == index);
        ck_assert(num(j, "revision") == revision);
        ck_assert(num(j, "id") == id);
        ck_assert_int_eq(cJSON_GetArraySize(cJSON_GetObjectItem(j, "voters")),
                         3);
        cJSON_Delete(j);
        snprintf(cl.nodes[id - 1].dir, sizeof(cl.nodes[id - 1].dir), "%.400s",
                 dirs[id - 1]);
    }
    cl.no_bootstrap = true;
    for (unsigned id = 1; id <= 3; id++) {
        cl_start_node(&cl, id);
    }
    leader = cl_wait_leader(&cl, 10000);
    ck_assert_uint_ne(leader, 0);

    /* Every node has every key, with its metadata, before any write. */
    for (unsigned id = 1; id <= 3; id++) {
        const char *ro[] = {"READONLY"};
        struct cl_conn conn;
        struct cl_reply r;
        ck_assert_int_eq(status_of(id, "revision"), revision);
        ck_assert_int_eq(cl_connect(&conn, cl.nodes[id - 1].client_port, 3000),
                         0);
        ck_assert_int_eq(cl_call(&conn, 3000, &r, 1, ro), 0);
        cl_reply_free(&r);
        for (int i = 0; i < SNAP_KEYS; i++) {
            char key[32], want[32];
            const char *get[] = {"GET", key};
            snprintf(key, sizeof(key), "snap:%03d", i);
            snprintf(want, sizeof(want), "%s-%d", i < 50 ? "again" : "first",
                     i);
            ck_assert_int_eq(cl_call(&conn, 3000, &r, 2, get), 0);
            if (i == SNAP_KEYS - 1) {
                ck_assert_int_eq(r.type, CL_NIL);
            } else {
                ck_assert_msg(r.type == CL_BULK && strcmp(r.str, want) == 0,
                              "node %u %s: %s", id, key, r.str);
            }
            cl_reply_free(&r);
        }
        cl_close(&conn);
        for (size_t i = 0; i < 3; i++) {
            meta_of(id, sample[i + 1], got, sizeof(got));
            ck_assert_str_eq(got, meta[i]);
        }
        meta_of(id, sample[4], got, sizeof(got));
        ck_assert_str_eq(got, "nil");
    }
    /* The new cluster takes writes, which continue the revisions. */
    j = ok_json(eps_all, "put", "after-restore", "yes", NULL, NULL);
    ck_assert(num(j, "revision") == revision + 1);
    cJSON_Delete(j);
    const char *want[][2] = {{"after-restore", "yes"}, {"snap:007", "again-7"}};
    for (size_t i = 0; i < 2; i++) {
        j = ok_json(eps_all, "get", want[i][0], NULL, NULL, NULL);
        ck_assert_str_eq(str(j, "value"), want[i][1]);
        cJSON_Delete(j);
    }
}
END_TEST

/* Flips one byte of @path at @off. */
static void flip_byte(const char *path, long off)
{
    FILE *f = fopen(path, "r+b");
    ck_assert_ptr_nonnull(f);
    ck_assert_int_eq(fseek(f, off, SEEK_SET), 0);
    int b = fgetc(f);
    ck_assert_int_ne(b, EOF);
    ck_assert_int_eq(fseek(f, off, SEEK_SET), 0);
    fputc(b ^ 0x40, f);
    fclose(f);
}

/* A damaged or cut snapshot file, a directory that is not empty, a node
 * that is not a voter and missing settings are refused with a clear
 * error, leaving nothing behind; a save that cannot write its file or
 * reach a node fails with its exit code and leaves no .part file and no
 * copy on the node. */
START_TEST(test_cli_snapshot_refuses_what_it_cannot_do)
{
    char path[400], dir[400], *out = NULL;
    start_cluster();
    cJSON_Delete(ok_json(eps_all, "put", "k", "v", NULL, NULL));
    snprintf(path, sizeof(path), "%s/backup.snap", cl.root);
    cJSON_Delete(ok_json(eps_all, "snapshot", "save", path, NULL, NULL));
    snprintf(dir, sizeof(dir), "%s/restored", cl.root);

    /* A flipped payload byte: refused, nothing created. */
    struct stat st;
    ck_assert_int_eq(stat(path, &st), 0);
    flip_byte(path, (long)st.st_size / 2);
    ck_assert_int_eq(restore_node(path, dir, 1, NULL, &out), 6);
    ck_assert_msg(strstr(out, "payload checksum mismatch") != NULL, "%s", out);
    cJSON *j = json_of(out);
    ck_assert(num(cJSON_GetObjectItem(j, "error"), "exit_code") == 6);
    cJSON_Delete(j);
    free(out);
    ck_assert(!file_exists(dir));
    flip_byte(path, (long)st.st_size / 2);
    /* Cut short. */
    ck_assert_int_eq(truncate(path, st.st_size - 100), 0);
    ck_assert_int_eq(restore_node(path, dir, 1, NULL, &out), 6);
    ck_assert_msg(strstr(out, "header announces") != NULL, "%s", out);
    free(out);
    ck_assert(!file_exists(dir));
    /* Not a snapshot at all. */
    FILE *f = fopen(path, "w");
    fputs(
        "this is not a snapshot, but it is long enough to hold a header "
        "of sixty-four bytes",
        f);
    fclose(f);
    ck_assert_int_eq(restore_node(path, dir, 1, NULL, &out), 6);
    ck_assert_msg(strstr(out, "bad magic") != NULL, "%s", out);
    free(out);
    ck_assert(!file_exists(dir));

    /* A good file, into a directory that is not empty. */
    cJSON_Delete(ok_json(eps_all, "snapshot", "save", path, NULL, NULL));
    ck_assert_int_eq(mkdir(dir, 0755), 0);
    char keep[450];
    snprintf(keep, sizeof(keep), "%s/keep", dir);
    f = fopen(keep, "w");
    fclose(f);
    ck_assert_int_eq(restore_node(path, dir, 1, NULL, &out), 6);
    ck_assert_msg(strstr(out, "is not empty") != NULL, "%s", out);
    free(out);
    ck_assert(file_exists(keep));
    unlink(keep);
    rmdir(dir);
    /* Settings: not a voter, no id. */
    const char *voters[] = {"--voters", "2,3", NULL};
    ck_assert_int_eq(restore_node(path, dir, 1, voters, &out), 2);
    ck_assert_msg(strstr(out, "is not a voter") != NULL, "%s", out);
    free(out);
    ck_assert_int_eq(
        run(eps_all, &out, "snapshot", "restore", path, "--data", dir), 2);
    free(out);
    ck_assert(!file_exists(dir));

    /* save: a directory that does not exist, then no node to ask. */
    char bad[450];
    snprintf(bad, sizeof(bad), "%s/no/such/dir/x.snap", cl.root);
    ck_assert_int_eq(run(eps_all, &out, "snapshot", "save", bad), 6);
    free(out);
    for (unsigned id = 1; id <= 3; id++) {
        for (int i = 0; i < 200 && cl_export_files(&cl, id) > 0; i++) {
            usleep(10000);
        }
        ck_assert_int_eq(cl_export_files(&cl, id), 0);
    }
    snprintf(bad, sizeof(bad), "%s/unreachable.snap", cl.root);
    ck_assert_int_eq(run("127.0.0.1:1", &out, "snapshot", "save", bad), 3);
    free(out);
    ck_assert(!file_exists(bad));
    snprintf(bad, sizeof(bad), "%s/unreachable.snap.part", cl.root);
    ck_assert(!file_exists(bad));
}
END_TEST

/* The shell reads commands from a non-terminal stdin too. */
START_TEST(test_cli_shell_runs_commands)
{
    char path[] = "/tmp/ballot-cli-sh-XXXXXX";
    int fd;
    FILE *f;
    char *out = NULL;
    int rc;
    start_cluster();
    fd = mkstemp(path);
    ck_assert_int_ge(fd, 0);
    f = fdopen(fd, "w");
    fputs("put s \"two words\"\nget s\n--json get s\nquit\n", f);
    fclose(f);
    rc = run_in(eps_all, path, &out, "shell", NULL);
    ck_assert_msg(rc == 0, "%s", out);
    ck_assert_ptr_nonnull(strstr(out, "two words\n"));
    ck_assert_ptr_nonnull(strstr(out, "\"value\":\"two words\""));
    free(out);
    unlink(path);
}
END_TEST

/* A small bench: every request is accounted for and the keys it wrote are
 * all there with the values it documents. */
START_TEST(test_cli_bench_small_run_accounts_for_every_request)
{
    char *out = NULL;
    cJSON *j, *lat;
    int rc;
    start_cluster();
    rc = run(eps_all, &out, "--json", "bench", "put", "--total", "2000",
             "--clients", "20", "--conns", "4", "--key-space", "2000",
             "--key-dist", "sequential", "--value-size", "16", "--key-prefix",
             "b:");
    ck_assert_msg(rc == 0, "rc %d: %s", rc, out);
    j = json_of(out);
    free(out);
    ck_assert_str_eq(str(j, "workload"), "put");
    ck_assert(num(j, "sent") == 2000);
    ck_assert(num(j, "sent") == num(j, "succeeded") + num(j, "failed"));
    ck_assert(num(j, "failed") == 0);
    ck_assert(num(j, "throughput") > 0);
    lat = cJSON_GetObjectItem(j, "latency_ms");
    ck_assert(num(lat, "p50") <= num(lat, "p90"));
    ck_assert(num(lat, "p90") <= num(lat, "p99"));
    ck_assert(num(lat, "p99") <= num(lat, "p99_9"));
    ck_assert(num(lat, "p99_9") <= num(lat, "max"));
    ck_assert(num(cJSON_GetObjectItem(j, "cpu"), "percent_of_one_core") >= 0);
    cJSON_Delete(j);

    j = ok_json(eps_all, "range", "b:", "--prefix", "--count-only", NULL);
    ck_assert(num(j, "count") == 2000);
    cJSON_Delete(j);
    /* Keys are zero-padded to the key space's width; values are the key
     * padded with 'x'. */
    j = ok_json(eps_all, "get", "b:0000", NULL, NULL, NULL);
    ck_assert_str_eq(str(j, "value"), "b:0000xxxxxxxxxx");
    cJSON_Delete(j);
    j = ok_json(eps_all, "get", "b:1999", NULL, NULL, NULL);
    ck_assert_str_eq(str(j, "value"), "b:1999xxxxxxxxxx");
    cJSON_Delete(j);

    /* Reads, mixed and txn workloads run clean too. */
    rc = run(eps_all, &out, "--json", "--consistency", "s", "bench", "get",
             "--total", "1000", "--clients", "10", "--key-space", "2000",
             "--key-prefix", "b:");
    ck_assert_msg(rc == 0, "rc %d: %s", rc, out);
    j = json_of(out);
    free(out);
    ck_assert(num(j, "succeeded") == 1000);
    cJSON_Delete(j);
    rc = run(eps_all, &out, "--json", "bench", "mixed", "--ratio", "0.5",
             "--total", "1000", "--clients", "10", "--key-dist", "zipfian");
    ck_assert_msg(rc == 0, "rc %d: %s", rc, out);
    j = json_of(out);
    free(out);
    ck_assert(num(j, "succeeded") == 1000);
    cJSON_Delete(j);
    rc = run(eps_all, &out, "--json", "bench", "txn", "--duration", "1",
             "--rate", "500", "--clients", "5");
    ck_assert_msg(rc == 0, "rc %d: %s", rc, out);
    j = json_of(out);
    free(out);
    ck_assert(num(j, "sent") == num(j, "succeeded"));
    ck_assert(num(j, "sent") <= 600);
    cJSON_Delete(j);

    /* incr on one hot key from 50 clients: the counter ends at exactly
     * the number of INCRs sent (each applied once, none lost). */
    rc = run(eps_all, &out, "--json", "bench", "incr", "--total", "3000",
             "--clients", "50", "--conns", "10", "--key-space", "1",
             "--key-prefix", "hot:");
    ck_assert_msg(rc == 0, "rc %d: %s", rc, out);
    j = json_of(out);
    free(out);
    ck_assert_str_eq(str(j, "workload"), "incr");
    ck_assert(num(j, "succeeded") == 3000);
    cJSON_Delete(j);
    j = ok_json(eps_all, "get", "hot:0", NULL, NULL, NULL);
    ck_assert_str_eq(str(j, "value"), "3000");
    cJSON_Delete(j);

    /* seq: 500 blocks of 10 IDs of one sequence; the next ID is 5001. */
    rc = run(eps_all, &out, "--json", "bench", "seq", "--total", "500",
             "--clients", "20", "--conns", "4", "--key-space", "1",
             "--key-prefix", "ids", "--block", "10");
    ck_assert_msg(rc == 0, "rc %d: %s", rc, out);
    j = json_of(out);
    free(out);
    ck_assert(num(j, "succeeded") == 500);
    cJSON_Delete(j);
    rc = run(eps_all, &out, "id", "--name", "ids0");
    ck_assert_msg(rc == 0, "rc %d: %s", rc, out);
    ck_assert_str_eq(out, "5001\n");
    free(out);
}
END_TEST

/* Runs @argv (NULL-terminated) as it is; returns the exit code. */
static int run_plain(const char *const *argv, char **out)
{
    int rc = cl_run(argv, NULL, out, NULL, CLI_TIMEOUT_MS);
    ck_assert_int_ne(rc, -1);
    return rc;
}

/* The conventions users of GNU tools and etcdctl expect: --flag=value
 * anywhere (global and per-command flags, ballot and ballotd), -h/--help
 * and --version, endpoints from BALLOT_ENDPOINTS and from a defaults file
 * with flags winning over both, "did you mean" for a misspelt command,
 * and a bash completion script generated from the command table. */
START_TEST(test_cli_follows_gnu_conventions)
{
    char *out = NULL, conf[512], eq[300];
    start_cluster();
    snprintf(eq, sizeof(eq), "--endpoints=%s", eps_all);

    /* The = form overrides the run()'s --endpoints (nothing on port 1). */
    ck_assert_int_eq(run("127.0.0.1:1", &out, eq, "put", "conv/a", "1"), 0);
    free(out);
    ck_assert_int_eq(run(eps_all, &out, "put", "conv/b", "2"), 0);
    free(out);
    ck_assert_int_eq(run(eps_all, &out, "--consistency=s", "range", "conv/",
                         "--prefix", "--limit=1", "--keys-only"),
                     0);
    ck_assert_msg(strstr(out, "conv/a") && !strstr(out, "conv/b"), "%s", out);
    free(out);
    ck_assert_int_eq(run(eps_all, &out, "--timeout=0", "get", "conv/a"), 2);
    ck_assert_ptr_nonnull(strstr(out, "bad timeout"));
    free(out);

    const char *help[] = {BALLOT_PATH, "--help", NULL};
    ck_assert_int_eq(run_plain(help, &out), 0);
    ck_assert_ptr_nonnull(strstr(out, "usage: ballot [FLAGS] COMMAND"));
    free(out);
    const char *put_help[] = {BALLOT_PATH, "put", "-h", NULL};
    ck_assert_int_eq(run_plain(put_help, &out), 0);
    ck_assert_ptr_nonnull(strstr(out, "usage: ballot [FLAGS] put KEY"));
    free(out);
    const char *version[] = {BALLOT_PATH, "--version", NULL};
    ck_assert_int_eq(run_plain(version, &out), 0);
    ck_assert_ptr_nonnull(strstr(out, "ballot 0."));
    free(out);
    const char *typo[] = {BALLOT_PATH, "stauts", NULL};
    ck_assert_int_eq(run_plain(typo, &out), 2);
    ck_assert_ptr_nonnull(strstr(out, "did you mean 'status'?"));
    free(out);

    /* BALLOT_ENDPOINTS, then a flag over it. */
    const char *get[] = {BALLOT_PATH, "get", "conv/a", NULL};
    setenv("BALLOT_ENDPOINTS", eps_all, 1);
    ck_assert_int_eq(run_plain(get, &out), 0);
    ck_assert_ptr_nonnull(strstr(out, "1"));
    free(out);
    setenv("BALLOT_ENDPOINTS", "127.0.0.1:1", 1);
    const char *get_timeout[] = {BALLOT_PATH, "--timeout", "500",
                                 "get",       "conv/a",    NULL};
    ck_assert_int_eq(run_plain(get_timeout, &out), 3);
    free(out);
    const char *get_flag[] = {BALLOT_PATH, eq, "get", "conv/a", NULL};
    ck_assert_int_eq(run_plain(get_flag, &out), 0);
    free(out);
    unsetenv("BALLOT_ENDPOINTS");

    /* A defaults file; the environment wins over it. */
    snprintf(conf, sizeof(conf), "%s/cli.conf", cl.root);
    FILE *f = fopen(conf, "w");
    ck_assert_ptr_nonnull(f);
    fprintf(f, "# defaults\nendpoints = %s\n  json = true  \n", eps_all);
    fclose(f);
    setenv("BALLOT_CONFIG", conf, 1);
    ck_assert_int_eq(run_plain(get, &out), 0);
    ck_assert_ptr_nonnull(strstr(out, "\"value\""));
    free(out);
    setenv("BALLOT_ENDPOINTS", "127.0.0.1:1", 1);
    ck_assert_int_eq(run_plain(get_timeout, &out), 3);
    free(out);
    unsetenv("BALLOT_ENDPOINTS");
    f = fopen(conf, "w");
    fprintf(f, "endpoints %s\n", eps_all);
    fclose(f);
    ck_assert_int_eq(run_plain(get, &out), 2);
    ck_assert_msg(strstr(out, "cli.conf:1: expected 'name = value'"), "%s",
                  out);
    free(out);
    unsetenv("BALLOT_CONFIG");

    /* The completion script is valid bash and knows the table's words. */
    char script[600];
    snprintf(script, sizeof(script),
             "eval \"$(%s completion bash)\" && complete -p ballot && "
             "COMP_WORDS=(ballot member a); COMP_CWORD=2; _ballot; "
             "echo \"${COMPREPLY[*]}\"",
             BALLOT_PATH);
    const char *bash[] = {"bash", "-c", script, NULL};
    ck_assert_int_eq(run_plain(bash, &out), 0);
    ck_assert_msg(strstr(out, "-F _ballot ballot") && strstr(out, "\nadd\n"),
                  "%s", out);
    free(out);

    /* Unique IDs, one per line; the JSON form keeps them as strings. */
    ck_assert_int_eq(run(eps_all, &out, "id", "--snowflake", "--count=3"), 0);
    unsigned long long a, b2, c;
    ck_assert_int_eq(sscanf(out, "%llu\n%llu\n%llu", &a, &b2, &c), 3);
    ck_assert(a < b2 && b2 < c);
    free(out);
    /* Without --snowflake: the next IDs of a cluster-wide sequence. */
    ck_assert_int_eq(run(eps_all, &out, "id", "--count", "2"), 0);
    ck_assert_str_eq(out, "1\n2\n");
    free(out);
    ck_assert_int_eq(run(eps_all, &out, "id", "--count", "0"), 2);
    free(out);

    /* ballotd too. */
    const char *dv[] = {BALLOTD_PATH, "--version", NULL};
    ck_assert_int_eq(run_plain(dv, &out), 0);
    ck_assert_ptr_nonnull(strstr(out, "ballotd 0."));
    free(out);
    const char *dbad[] = {BALLOTD_PATH, "--id=1", "--tick_ms=0", NULL};
    ck_assert_int_eq(run_plain(dbad, &out), 2);
    ck_assert_ptr_nonnull(strstr(out, "--tick_ms=0: invalid value"));
    free(out);
}
END_TEST

/* `ballot bench` rides through a leader change: the leader is SIGKILLed
 * 2 s into a 10 s write run; the bench finds the new leader, carries on to
 * the end, and accounts for the interruption: every failed request lies
 * in a reported outage, one outage covers the kill and is bounded, and
 * writes succeeded after it. */
START_TEST(test_cli_bench_follows_the_leader_through_a_kill)
{
    unsigned leader = start_cluster();
    pid_t victim = cl.nodes[leader - 1].pid;
    pid_t killer = fork();
    ck_assert_int_ge(killer, 0);
    if (killer == 0) {
        usleep(2000 * 1000);
        kill(victim, SIGKILL);
        _exit(0);
    }
    char *out = NULL;
    int rc = run(eps_all, &out, "--json", "bench", "put", "--duration", "10",
                 "--clients", "20", "--conns", "4", "--value-size", "16",
                 "--key-prefix", "f:");
    int st;
    ck_assert_int_eq(waitpid(killer, &st, 0), killer);
    cl_kill(&cl, leader); /* reaps it */
    ck_assert_msg(rc == 0 || rc == 4, "rc %d: %s", rc, out);
    cJSON *j = json_of(out);
    ck_assert_msg(num(j, "leader_changes") >= 1, "%s", out);
    ck_assert_msg(num(j, "elapsed_s") > 9.5, "the run ended early: %s", out);
    ck_assert_msg(num(j, "succeeded_since_last_outage") > 0, "%s", out);
    ck_assert(num(j, "sent") == num(j, "succeeded") + num(j, "failed"));
    const cJSON *outs = cJSON_GetObjectItem(j, "outages");
    ck_assert(cJSON_IsArray(outs));
    double failed = 0;
    bool covers_kill = false;
    const cJSON *o;
    cJSON_ArrayForEach(o, outs)
    {
        failed += num(o, "failed");
        if (num(o, "start_s") > 1.0 && num(o, "start_s") < 4.5 &&
            num(o, "ms") < 5000) {
            covers_kill = true;
        }
    }
    ck_assert_msg(failed == num(j, "failed"), "%s", out);
    ck_assert_msg(covers_kill, "no bounded outage at the kill: %s", out);
    char dead[64];
    addr_of(leader, dead, sizeof(dead));
    const cJSON *targets = cJSON_GetObjectItem(j, "targets");
    ck_assert_msg(
        strcmp(cJSON_GetArrayItem(targets, 0)->valuestring, dead) != 0,
        "still aimed at the dead leader: %s", out);
    cJSON_Delete(j);
    free(out);
}
END_TEST

/* `ballot lease`: grant with an id, attach a key with put --lease, ttl
 * --keys, one keep-alive, list, revoke (the key goes), then errors; and a
 * continuous keep-alive that holds a short lease for several TTLs until
 * it is interrupted, after which the lease ends by itself. */
START_TEST(test_cli_lease_commands_grant_keepalive_revoke)
{
    start_cluster();
    char *out = NULL;
    cJSON *j = ok_json(eps_all, "lease", "grant", "60000", "--id", "5");
    ck_assert_str_eq(str(j, "id"), "5");
    ck_assert(num(j, "ttl_ms") == 60000);
    cJSON_Delete(j);
    ck_assert_int_eq(run(eps_all, &out, "put", "lk", "v", "--lease", "5"), 0);
    free(out);
    j = ok_json6(eps_all, "lease", "ttl", "5", "--keys", NULL, NULL);
    ck_assert(num(j, "remaining_ms") > 50000);
    ck_assert(num(j, "granted_ms") == 60000);
    ck_assert(num(j, "keys") == 1);
    const cJSON *att = cJSON_GetObjectItemCaseSensitive(j, "attached");
    ck_assert_int_eq(cJSON_GetArraySize(att), 1);
    ck_assert_str_eq(cJSON_GetArrayItem(att, 0)->valuestring, "lk");
    cJSON_Delete(j);
    ck_assert_int_eq(run(eps_all, &out, "lease", "keepalive", "5", "--once"),
                     0);
    ck_assert_msg(strncmp(out, "5 ", 2) == 0 && atol(out + 2) > 50000, "%s",
                  out);
    free(out);
    ck_assert_int_eq(run(eps_all, &out, "lease", "list"), 0);
    ck_assert_str_eq(out, "5\n");
    free(out);
    ck_assert_int_eq(run(eps_all, &out, "lease", "revoke", "5"), 0);
    ck_assert_str_eq(out, "1\n");
    free(out);
    ck_assert_int_eq(run(eps_all, &out, "get", "lk"), 1); /* not found */
    free(out);
    /* Errors: clear messages and a non-zero exit. */
    ck_assert_int_eq(run(eps_all, &out, "lease", "revoke", "5"), 4);
    ck_assert_ptr_nonnull(strstr(out, "no such lease"));
    free(out);
    ck_assert_int_eq(run(eps_all, &out, "lease", "grant", "0"), 4);
    ck_assert_ptr_nonnull(strstr(out, "lease TTL must be positive"));
    free(out);
    ck_assert_int_eq(run(eps_all, &out, "lease", "grant"), 2);
    free(out);
    ck_assert_int_eq(run(eps_all, &out, "put", "x", "v", "--lease", "99"), 4);
    ck_assert_ptr_nonnull(strstr(out, "no such lease"));
    free(out);

    /* A 1.5 s lease held by `ballot lease keepalive` for 4 s. */
    ck_assert_int_eq(run(eps_all, &out, "lease", "grant", "1500"), 0);
    char id[32];
    snprintf(id, sizeof(id), "%llu", strtoull(out, NULL, 10));
    free(out);
    ck_assert_int_eq(run(eps_all, &out, "put", "held", "v", "--lease", id), 0);
    free(out);
    pid_t parent = getpid();
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent) {
            _exit(127);
        }
        int fd = open("/dev/null", O_WRONLY);
        dup2(fd, 1);
        execl(BALLOT_PATH, BALLOT_PATH, "--endpoints", eps_all, "lease",
              "keepalive", id, (char *)NULL);
        _exit(127);
    }
    usleep(4000 * 1000);
    ck_assert_int_eq(run(eps_all, &out, "get", "held"), 0);
    free(out);
    ck_assert_int_eq(kill(pid, SIGINT), 0);
    int status = 0;
    uint64_t end = cl_now_ms() + 10000;
    while (waitpid(pid, &status, WNOHANG) != pid) {
        if (cl_now_ms() > end) {
            kill(pid, SIGKILL);
            waitpid(pid, &status, 0);
            ck_abort_msg("keepalive did not stop on SIGINT");
        }
        usleep(20000);
    }
    ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    end = cl_now_ms() + 10000;
    for (;;) {
        int rc = run(eps_all, &out, "get", "held");
        free(out);
        if (rc == 1) {
            break;
        }
        ck_assert_msg(cl_now_ms() < end, "the lease outlived its keep-alive");
        usleep(100000);
    }
}
END_TEST

int main(int argc, char **argv)
{
    const struct cl_named_test tests[] = {
        {"follows_gnu_conventions", test_cli_follows_gnu_conventions},
        {"kv_commands_print_json", test_cli_kv_commands_print_json},
        {"txn_interactive_and_stdin_value",
         test_cli_txn_interactive_and_stdin_value},
        {"member_status_and_leader_transfer",
         test_cli_member_status_and_leader_transfer},
        {"endpoint_failover_and_redirect",
         test_cli_endpoint_failover_and_redirect},
        {"compact_prints_the_compaction_point",
         test_cli_compact_prints_the_compaction_point},
        {"exit_codes", test_cli_exit_codes},
        {"snapshot_save_and_restore_a_new_cluster",
         test_cli_snapshot_save_and_restore_a_new_cluster},
        {"snapshot_refuses_what_it_cannot_do",
         test_cli_snapshot_refuses_what_it_cannot_do},
        {"shell_runs_commands", test_cli_shell_runs_commands},
        {"bench_small_run_accounts_for_every_request",
         test_cli_bench_small_run_accounts_for_every_request},
        {"bench_follows_the_leader_through_a_kill",
         test_cli_bench_follows_the_leader_through_a_kill},
        {"lease_commands_grant_keepalive_revoke",
         test_cli_lease_commands_grant_keepalive_revoke},
    };
    return cl_run_tests("cli", tests, sizeof(tests) / sizeof(tests[0]), 120,
                        teardown, argc, argv);
}
