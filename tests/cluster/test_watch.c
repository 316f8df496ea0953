/*
 * test_watch.c - watches over the client protocol (BWATCH) and `ballot
 * watch`, against real ballotd processes.
 */
#include <check.h>
#include <cjson/cJSON.h>
#include <fcntl.h>
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

/* Starts `ballot --json --endpoints EPS watch ARGS...` writing to @out;
 * returns its pid. */
static pid_t start_watcher(const char *eps,
                           const char *out,
                           const char *const *args)
{
    const char *argv[24] = {BALLOT_PATH, "--json", "--endpoints", eps, "watch"};
    int n = 5;
    for (size_t i = 0; args[i] != NULL && n < 23; i++) {
        argv[n++] = args[i];
    }
    argv[n] = NULL;
    pid_t parent = getpid();
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent) {
            _exit(127);
        }
        int fd = open(out, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        dup2(fd, 1);
        execv(BALLOT_PATH, (char *const *)argv);
        _exit(127);
    }
    return pid;
}

/* Waits (bounded) for @pid; returns its exit code, or -1 (then killed). */
static int wait_exit(pid_t pid, int timeout_ms)
{
    uint64_t end = cl_now_ms() + (uint64_t)timeout_ms;
    int status;
    while (cl_now_ms() < end) {
        if (waitpid(pid, &status, WNOHANG) == pid) {
            return WIFEXITED(status) ? WEXITSTATUS(status) : 128;
        }
        usleep(20000);
    }
    kill(pid, SIGKILL);
    waitpid(pid, &status, 0);
    return -1;
}

/* Writes w/@i = @i through whichever node leads; 1 if acknowledged, 0
 * if refused or unknown (a kill in the middle). */
static int write_one(unsigned *leader, int i)
{
    char key[32], val[32];
    snprintf(key, sizeof(key), "w/%03d", i);
    snprintf(val, sizeof(val), "%d", i);
    return cl_write(&cl, leader, key, val, cl_now_ms() + 10000);
}

/* Lines in the file at @path (0 if it cannot be read yet). */
static int count_lines(const char *path)
{
    FILE *f = fopen(path, "r");
    int n = 0;
    int ch;
    if (f == NULL) {
        return 0;
    }
    while ((ch = fgetc(f)) != EOF) {
        n += ch == '\n';
    }
    fclose(f);
    return n;
}

/* A watcher on every node of a 3-node cluster while the leader is killed
 * in the middle of the writes: each stream (the killed node's watcher
 * resumes on another node from where it stopped) holds exactly the
 * committed writes, in revision order, each once. */
START_TEST(test_watch_streams_stay_complete_across_a_leader_kill)
{
    enum { N = 120 };
    char eps[3][256], out[3][600];
    pid_t watchers[3];
    cl_start(&cl, 3);
    unsigned leader = cl_wait_leader(&cl, 10000);
    ck_assert_uint_ne(leader, 0);
    /* Each watcher tries its own node first. */
    for (unsigned id = 1; id <= 3; id++) {
        snprintf(eps[id - 1], sizeof(eps[0]),
                 "127.0.0.1:%d,127.0.0.1:%d,"
                 "127.0.0.1:%d",
                 cl.nodes[id - 1].client_port, cl.nodes[id % 3].client_port,
                 cl.nodes[(id + 1) % 3].client_port);
        snprintf(out[id - 1], sizeof(out[0]), "%s/watch%u.jsonl", cl.root, id);
        const char *args[] = {"w/", "--prefix", "--rev", "1", NULL};
        watchers[id - 1] = start_watcher(eps[id - 1], out[id - 1], args);
    }
    usleep(300000);
    int acked = 0;
    for (int i = 0; i < N; i++) {
        if (i == N / 2) {
            cl_kill(&cl, leader);
            leader = leader % 3 + 1;
        }
        acked += write_one(&leader, i);
    }
    ck_assert_int_ge(acked, N - 3);
    /* What the cluster holds: the committed writes, each key once. */
    bool committed[N];
    int n_committed = 0;
    for (int i = 0; i < N; i++) {
        char key[32], *got = NULL, err[256];
        snprintf(key, sizeof(key), "w/%03d", i);
        int rv = cl_get(&cl, leader, key, 10000, &got, err, sizeof(err));
        ck_assert_msg(rv >= 0, "%s unreadable: %s", key, err);
        committed[i] = rv == 1;
        n_committed += committed[i];
        free(got);
    }
    /* The watchers catch up, the killed node's one resumes on another
     * node: wait until each file holds as many events as were committed
     * (or 20 s, and the check below says what is missing). */
    for (uint64_t end = cl_now_ms() + 20000; cl_now_ms() < end;) {
        bool all = true;
        for (unsigned w = 0; w < 3 && all; w++) {
            all = count_lines(out[w]) >= n_committed;
        }
        if (all) {
            break;
        }
        usleep(100000);
    }
    usleep(200000); /* an extra event (a duplicate) would show up now */
    for (unsigned w = 0; w < 3; w++) {
        kill(watchers[w], SIGTERM);
        wait_exit(watchers[w], 5000);
        FILE *f = fopen(out[w], "r");
        ck_assert_ptr_nonnull(f);
        char line[512];
        bool seen[N];
        memset(seen, 0, sizeof(seen));
        long long last = 0;
        int n = 0;
        while (fgets(line, sizeof(line), f) != NULL) {
            cJSON *j = cJSON_Parse(line);
            ck_assert_msg(j != NULL, "watcher %u: %s", w + 1, line);
            const char *key = cJSON_GetObjectItem(j, "key")->valuestring;
            long long rev =
                (long long)cJSON_GetObjectItem(j, "mod_revision")->valuedouble;
            int i = atoi(key + 2);
            ck_assert_msg(rev > last, "watcher %u: revision %lld after %lld",
                          w + 1, rev, last);
            ck_assert_msg(i >= 0 && i < N && committed[i] && !seen[i],
                          "watcher %u: %s unexpected or twice", w + 1, key);
            seen[i] = true;
            last = rev;
            n++;
            cJSON_Delete(j);
        }
        fclose(f);
        ck_assert_msg(n == n_committed, "watcher %u saw %d of %d writes", w + 1,
                      n, n_committed);
    }
}
END_TEST

/* Bad input gets a clear error and leaves the connection usable; a watch
 * from a compacted revision is refused naming it (one at the compaction
 * point is not); too many watches on one connection are refused. */
START_TEST(test_watch_bad_input_gets_clear_errors)
{
    cl_start(&cl, 1);
    ck_assert_uint_ne(cl_wait_leader(&cl, 10000), 0);
    struct cl_conn c;
    struct cl_reply r;
    ck_assert_int_eq(cl_connect(&c, cl.nodes[0].client_port, 2000), 0);
    const char *bad[][6] = {
        {"BWATCH", "k", "REV", "-1", NULL},
        {"BWATCH", "k", "PREFIX", "END", "z", NULL},
        {"BWATCH", "", NULL},
        {"BWATCH", "k", "BOGUS", NULL},
        {"BUNWATCH", "x", NULL},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        int argc = 0;
        while (bad[i][argc] != NULL) {
            argc++;
        }
        ck_assert_int_eq(cl_call(&c, 2000, &r, argc, bad[i]), 0);
        ck_assert_msg(r.type == CL_ERR, "case %zu accepted", i);
        cl_reply_free(&r);
    }
    const char *w[] = {"BWATCH", "k"};
    for (unsigned i = 0; i < 64; i++) {
        ck_assert_int_eq(cl_call(&c, 2000, &r, 2, w), 0);
        ck_assert_int_eq(r.type, CL_INT);
        cl_reply_free(&r);
    }
    ck_assert_int_eq(cl_call(&c, 2000, &r, 2, w), 0);
    ck_assert_msg(r.type == CL_ERR && strstr(r.str, "too many watches"), "%s",
                  r.str);
    cl_reply_free(&r);
    const char *un[] = {"BUNWATCH"};
    ck_assert_int_eq(cl_call(&c, 2000, &r, 1, un), 0);
    ck_assert_int_eq(r.type, CL_INT);
    ck_assert_int_eq(r.integer, 64);
    cl_reply_free(&r);
    /* A watch from a compacted revision is refused, naming it. */
    for (int i = 0; i < 5; i++) {
        const char *set[] = {"SET", "c", "v"};
        ck_assert_int_eq(cl_call(&c, 2000, &r, 3, set), 0);
        cl_reply_free(&r);
    }
    const char *compact[] = {"BCOMPACT", "4"};
    ck_assert_int_eq(cl_call(&c, 5000, &r, 2, compact), 0);
    ck_assert_msg(r.type != CL_ERR, "%s", r.str);
    cl_reply_free(&r);
    const char *old[] = {"BWATCH", "c", "REV", "2"};
    ck_assert_int_eq(cl_call(&c, 2000, &r, 4, old), 0);
    ck_assert_msg(r.type == CL_ERR && strncmp(r.str, "COMPACTED", 9) == 0 &&
                      strstr(r.str, "revision 2"),
                  "%s", r.str);
    cl_reply_free(&r);
    const char *at[] = {"BWATCH", "c", "REV", "4"};
    ck_assert_int_eq(cl_call(&c, 2000, &r, 4, at), 0);
    ck_assert_msg(r.type == CL_INT, "a watch at the compaction point: %s",
                  r.type == CL_ERR ? r.str : "");
    cl_reply_free(&r);
    /* The watch from revision 4 streams the events since then (RESP2
     * arrays, like SUBSCRIBE's messages), whenever the node sends them:
     * before or after PING's reply, which must still come. */
    const char *ping[] = {"PING"};
    ck_assert_int_eq(cl_call(&c, 2000, &r, 1, ping), 0);
    for (int events = 0; r.type == CL_ARRAY && events < 16; events++) {
        cl_reply_free(&r);
        ck_assert_int_eq(cl_read_reply(&c, 2000, &r), 0);
    }
    ck_assert_int_eq(r.type, CL_STATUS);
    cl_reply_free(&r);
    cl_close(&c);
}
END_TEST

int main(int argc, char **argv)
{
    const struct cl_named_test tests[] = {
        {"streams_stay_complete_across_a_leader_kill",
         test_watch_streams_stay_complete_across_a_leader_kill},
        {"bad_input_gets_clear_errors", test_watch_bad_input_gets_clear_errors},
    };
    return cl_run_tests("watch", tests, sizeof(tests) / sizeof(tests[0]), 120,
                        teardown, argc, argv);
}
