/*
 * test_operations.c - what operators and their tools rely on, against
 * real ballotd processes: the health endpoints a load balancer or an
 * orchestrator polls, rolling restarts, format versions and `ballot
 * check`. What a node tells about itself (metrics, the dashboard, log
 * lines) is in test_observability.c.
 */
#include <check.h>
#include <ctype.h>
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>
#include <xxhash.h>

#include "harness.h"

static struct cluster cl;

static void teardown(void)
{
    cl_close_all(&cl);
}

/* Polls @path on node @id until its status line starts with @want;
 * returns true if it did within @timeout_ms. */
static bool wait_http(unsigned id,
                      const char *path,
                      const char *want,
                      int timeout_ms)
{
    uint64_t end = cl_now_ms() + (uint64_t)timeout_ms;
    do {
        char *r = cl_http_get(&cl, id, path);
        bool ok = r != NULL && strncmp(r, want, strlen(want)) == 0;
        free(r);
        if (ok) {
            return true;
        }
        usleep(50000);
    } while (cl_now_ms() < end);
    return false;
}

/* /health, /ready and /status on every node of a healthy cluster; then
 * node 1 is cut off (the other two are killed): /ready turns 503 with the
 * reason while /health stays 200, and both are 200 again once the others
 * are back. */
START_TEST(test_operations_ready_flips_when_a_node_is_cut_off)
{
    cl_start(&cl, 3);
    unsigned leader = cl_wait_leader(&cl, 10000);
    ck_assert_uint_ne(leader, 0);
    for (unsigned id = 1; id <= 3; id++) {
        ck_assert(wait_http(id, "/ready", "HTTP/1.0 200", 10000));
        char *r = cl_http_get(&cl, id, "/health");
        ck_assert_msg(r != NULL && strncmp(r, "HTTP/1.0 200", 12) == 0, "%s",
                      r);
        free(r);
        r = cl_http_get(&cl, id, "/status");
        ck_assert_ptr_nonnull(r);
        ck_assert_ptr_nonnull(strstr(r, "Content-Type: application/json"));
        cJSON *j = cJSON_Parse(cl_http_body(r));
        ck_assert_msg(j != NULL, "not JSON: %s", r);
        ck_assert_int_eq((int)cJSON_GetObjectItem(j, "id")->valuedouble,
                         (int)id);
        ck_assert_int_eq((int)cJSON_GetObjectItem(j, "leader")->valuedouble,
                         (int)leader);
        ck_assert_int_eq(cJSON_GetArraySize(cJSON_GetObjectItem(j, "members")),
                         3);
        ck_assert_str_eq(cJSON_GetObjectItem(j, "role")->valuestring,
                         id == leader ? "leader" : "follower");
        cJSON_Delete(j);
        free(r);
    }
    char *r = cl_http_get(&cl, 1, "/nowhere");
    ck_assert_msg(r != NULL && strncmp(r, "HTTP/1.0 404", 12) == 0, "%s", r);
    free(r);

    cl_kill(&cl, 2);
    cl_kill(&cl, 3);
    ck_assert_msg(wait_http(1, "/ready", "HTTP/1.0 503", 10000),
                  "node 1 still ready without a quorum");
    r = cl_http_get(&cl, 1, "/ready");
    ck_assert_msg(strstr(cl_http_body(r), "not ready: no leader known"), "%s",
                  r);
    free(r);
    r = cl_http_get(&cl, 1, "/health");
    ck_assert_msg(r != NULL && strncmp(r, "HTTP/1.0 200", 12) == 0, "%s", r);
    free(r);

    cl_start_node(&cl, 2);
    cl_start_node(&cl, 3);
    ck_assert_msg(wait_http(1, "/ready", "HTTP/1.0 200", 15000),
                  "node 1 not ready again after the others came back");
}
END_TEST

/* Restarting each node of a loaded cluster in turn (SIGTERM, start again,
 * wait until it has caught up) loses no acknowledged write, and each
 * restart costs at most about one election of unavailability: the longest
 * gap between acknowledged writes is printed and bounded. */
START_TEST(test_operations_rolling_restart_under_load_loses_nothing)
{
    enum { N = 600, PER_NODE = 150 };
    static bool acked[N];
    uint64_t worst_gap = 0;
    cl_start(&cl, 3);
    unsigned leader = cl_wait_leader(&cl, 10000);
    ck_assert_uint_ne(leader, 0);
    uint64_t last_ack = cl_now_ms();
    unsigned restarted = 0;
    for (int i = 0; i < N; i++) {
        if (i > 0 && i % PER_NODE == 0 && restarted < 3) {
            unsigned id = ++restarted;
            ck_assert_int_eq(cl_term(&cl, id), 0); /* a graceful stop */
            cl_start_node(&cl, id);
        }
        acked[i] = cl_write_nth(&cl, &leader, i);
        if (acked[i]) {
            uint64_t now = cl_now_ms();
            worst_gap = now - last_ack > worst_gap ? now - last_ack : worst_gap;
            last_ack = now;
        }
    }
    int n_acked = 0;
    for (int i = 0; i < N; i++) {
        n_acked += acked[i];
    }
    fprintf(stderr,
            "rolling restart: %d of %d writes acknowledged, longest gap %llu "
            "ms\n",
            n_acked, N, (unsigned long long)worst_gap);
    ck_assert_int_ge(n_acked, N - 5);
    /* Election timeout is 300-600 ms; a leader's restart costs one
     * election plus the new leader's first commit. Generous for a loaded
     * machine, far below "unavailable until an operator acts". */
    ck_assert_msg(worst_gap < 4000, "writes stalled %llu ms",
                  (unsigned long long)worst_gap);
    for (unsigned id = 1; id <= 3; id++) {
        for (int i = 0; i < N; i++) {
            char key[32], want[32];
            if (!acked[i]) {
                continue;
            }
            snprintf(key, sizeof(key), "key:%d", i);
            snprintf(want, sizeof(want), "value:%d", i);
            cl_assert_value(&cl, id, key, want);
        }
    }
}
END_TEST

/* A WAL segment of a format version this build does not know (written by
 * a newer release, say) is refused at start with a message that says so,
 * and nothing is changed. */
START_TEST(test_operations_unknown_format_version_is_refused)
{
    char path[700], *log = NULL;
    uint8_t hdr[64];
    cl_start(&cl, 1);
    ck_assert_uint_ne(cl_wait_leader(&cl, 10000), 0);
    ck_assert_int_eq(cl_term(&cl, 1), 0);
    snprintf(path, sizeof(path), "%s/wal/0000000000000001.seg",
             cl.nodes[0].dir);
    FILE *f = fopen(path, "r+b");
    ck_assert_msg(f != NULL, "no segment %s", path);
    ck_assert_uint_eq(fread(hdr, 1, sizeof(hdr), f), sizeof(hdr));
    hdr[8] = 2; /* version, little endian u32 */
    uint64_t sum = XXH3_64bits(hdr, 56);
    for (int b = 0; b < 8; b++) {
        hdr[56 + b] = (uint8_t)(sum >> (8 * b));
    }
    ck_assert_int_eq(fseek(f, 0, SEEK_SET), 0);
    ck_assert_uint_eq(fwrite(hdr, 1, sizeof(hdr), f), sizeof(hdr));
    fclose(f);
    cl_start_node(&cl, 1);
    uint64_t end = cl_now_ms() + 10000;
    int status = -1;
    while (cl_now_ms() < end) {
        pid_t r = waitpid(cl.nodes[0].pid, &status, WNOHANG);
        if (r == cl.nodes[0].pid) {
            cl.nodes[0].pid = 0;
            break;
        }
        usleep(20000);
    }
    ck_assert_msg(cl.nodes[0].pid == 0, "the node started on a newer format");
    ck_assert(WIFEXITED(status) && WEXITSTATUS(status) != 0);
    snprintf(path, sizeof(path), "%s/node1.log", cl.root);
    const char *argv[] = {"cat", path, NULL};
    cl_run(argv, NULL, &log, NULL, 5000);
    ck_assert_msg(
        log != NULL && strstr(log, "unsupported segment format version"), "%s",
        log != NULL ? log : "(no log)");
    free(log);
}
END_TEST

/* ---- ballot check ------------------------------------------------------ */

/* "127.0.0.1:P1,127.0.0.1:P2,127.0.0.1:P3" for `ballot --endpoints`. */
static void endpoints_of(char *buf, size_t len)
{
    size_t n = 0;
    buf[0] = '\0';
    for (unsigned id = 1; id <= cl.n; id++) {
        n += (size_t)snprintf(buf + n, len - n, "%s127.0.0.1:%d",
                              id > 1 ? "," : "", cl.nodes[id - 1].client_port);
    }
}

/* Runs `ballot --endpoints ALL --timeout 1000 ARGS...` (@args ends with
 * NULL); returns its exit code, output in *@out. */
static int run_ballot(const char *const *args, char **out)
{
    char eps[256];
    const char *argv[32] = {BALLOT_PATH, "--endpoints", eps, "--timeout",
                            "1000"};
    int n = 5;
    endpoints_of(eps, sizeof(eps));
    for (int i = 0; args[i] != NULL && n < 31; i++) {
        argv[n++] = args[i];
    }
    argv[n] = NULL;
    return cl_run(argv, NULL, out, NULL, 60000);
}

/* `ballot check` on a healthy cluster: a line per node, "cluster ok",
 * exit 0. Two nodes cut off (SIGSTOP): the third's /ready turns 503 (no
 * leader), and check names each problem and exits 7. Resumed, both are
 * good again. */
START_TEST(test_operations_check_fails_while_nodes_are_cut_off)
{
    char *out = NULL;
    cl_start(&cl, 3);
    ck_assert_uint_ne(cl_wait_leader(&cl, 10000), 0);
    for (unsigned id = 1; id <= 3; id++) {
        ck_assert(wait_http(id, "/ready", "HTTP/1.0 200", 10000));
    }
    const char *check[] = {"check", NULL};
    int rc = run_ballot(check, &out);
    ck_assert_msg(rc == 0 && strstr(out, "cluster ok: 3 of 3") != NULL,
                  "%d: %s", rc, out);
    free(out);
    const char *check_json[] = {"--json", "check", NULL};
    rc = run_ballot(check_json, &out);
    cJSON *j = cJSON_Parse(out);
    ck_assert_msg(rc == 0 && j != NULL, "%d: %s", rc, out);
    ck_assert(cJSON_IsTrue(cJSON_GetObjectItem(j, "ok")));
    ck_assert_int_eq(cJSON_GetArraySize(cJSON_GetObjectItem(j, "nodes")), 3);
    cJSON_Delete(j);
    free(out);

    ck_assert_int_eq(kill(cl.nodes[1].pid, SIGSTOP), 0);
    ck_assert_int_eq(kill(cl.nodes[2].pid, SIGSTOP), 0);
    bool flipped = wait_http(1, "/ready", "HTTP/1.0 503", 10000);
    rc = run_ballot(check, &out);
    ck_assert_int_eq(kill(cl.nodes[1].pid, SIGCONT), 0);
    ck_assert_int_eq(kill(cl.nodes[2].pid, SIGCONT), 0);
    ck_assert_msg(flipped, "node 1 still ready with the others stopped");
    ck_assert_msg(rc == 7, "check passed with two nodes stopped: %d: %s", rc,
                  out);
    ck_assert_msg(strstr(out, "cluster NOT ok") != NULL &&
                      strstr(out, "down: ") != NULL &&
                      strstr(out, "not ready: no leader known") != NULL,
                  "%s", out);
    free(out);

    for (unsigned id = 1; id <= 3; id++) {
        ck_assert(wait_http(id, "/ready", "HTTP/1.0 200", 15000));
    }
    rc = run_ballot(check, &out);
    ck_assert_msg(rc == 0, "%d: %s", rc, out);
    free(out);
}
END_TEST

/* `ballot check perf`: a short load, then the nodes' fsync and peer
 * round-trip p99, the clients' p99 and throughput, each PASS or FAIL
 * against its threshold, the verdict consistent with them and with the
 * exit code; an impossible threshold fails; the load's keys are gone. */
START_TEST(test_operations_check_perf_reports_figures_against_thresholds)
{
    char *out = NULL;
    cl_start(&cl, 3);
    ck_assert_uint_ne(cl_wait_leader(&cl, 10000), 0);
    const char *perf[] = {"--json", "check",     "perf", "--seconds",
                          "2",      "--clients", "8",    NULL};
    int rc = run_ballot(perf, &out);
    cJSON *j = cJSON_Parse(out);
    ck_assert_msg((rc == 0 || rc == 7) && j != NULL, "%d: %s", rc, out);
    cJSON *checks = cJSON_GetObjectItem(j, "checks");
    ck_assert_int_eq(cJSON_GetArraySize(checks), 4);
    bool all = true;
    for (int i = 0; i < 4; i++) {
        cJSON *c = cJSON_GetArrayItem(checks, i);
        double v = cJSON_GetObjectItem(c, "value")->valuedouble;
        double lim = cJSON_GetObjectItem(c, "limit")->valuedouble;
        bool pass = cJSON_IsTrue(cJSON_GetObjectItem(c, "pass"));
        const char *what = cJSON_GetObjectItem(c, "check")->valuestring;
        ck_assert_msg(v > 0, "%s not measured: %s", what, out);
        ck_assert_msg(
            pass == (strcmp(what, "throughput") == 0 ? v >= lim : v <= lim),
            "%s: %s", what, out);
        all &= pass;
    }
    ck_assert_msg(cJSON_GetObjectItem(j, "writes")->valuedouble > 0, "%s", out);
    bool verdict = cJSON_IsTrue(cJSON_GetObjectItem(j, "pass"));
    ck_assert_msg(verdict == all && (rc == 0) == verdict, "%d: %s", rc, out);
    fprintf(stderr, "check perf: %s\n", out);
    cJSON_Delete(j);
    free(out);

    const char *strict[] = {"check",     "perf", "--seconds",          "1",
                            "--clients", "4",    "--max-fsync-p99-ms", "0",
                            NULL};
    rc = run_ballot(strict, &out);
    ck_assert_msg(rc == 7 && strstr(out, "FAIL: fsync p99") != NULL &&
                      strstr(out, "\nFAIL: ") != NULL,
                  "%d: %s", rc, out);
    free(out);

    struct cl_reply r;
    const char *keys[] = {"KEYS", "__ballot_check_perf/*"};
    ck_assert_int_eq(cl_cmd(&cl, 1, 5000, &r, 2, keys), 0);
    ck_assert_msg(r.type == CL_ARRAY && r.n_elems == 0,
                  "check perf left %zu keys", r.n_elems);
    cl_reply_free(&r);
}
END_TEST

int main(int argc, char **argv)
{
    const struct cl_named_test tests[] = {
        {"ready_flips_when_a_node_is_cut_off",
         test_operations_ready_flips_when_a_node_is_cut_off},
        {"rolling_restart_under_load_loses_nothing",
         test_operations_rolling_restart_under_load_loses_nothing},
        {"unknown_format_version_is_refused",
         test_operations_unknown_format_version_is_refused},
        {"check_fails_while_nodes_are_cut_off",
         test_operations_check_fails_while_nodes_are_cut_off},
        {"check_perf_reports_figures_against_thresholds",
         test_operations_check_perf_reports_figures_against_thresholds},
    };
    return cl_run_tests("operations", tests, sizeof(tests) / sizeof(tests[0]),
                        120, teardown, argc, argv);
}
