/*
 * harness.c - see harness.h.
 */
#include "harness.h"

#include <arpa/inet.h>
#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

uint64_t cl_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* ---- the client -------------------------------------------------------- */

void cl_reply_free(struct cl_reply *r)
{
    for (size_t i = 0; i < r->n_elems; i++) {
        cl_reply_free(&r->elems[i]);
    }
    free(r->elems);
    free(r->str);
    memset(r, 0, sizeof(*r));
}

int cl_connect(struct cl_conn *c, int port, int timeout_ms)
{
    struct sockaddr_in sa;
    memset(c, 0, sizeof(*c));
    c->fd = socket(AF_INET, SOCK_STREAM, 0);
    if (c->fd < 0) {
        return -1;
    }
    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t)port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    fcntl(c->fd, F_SETFL, O_NONBLOCK);
    int rv = connect(c->fd, (struct sockaddr *)&sa, sizeof(sa));
    if (rv != 0 && errno == EINPROGRESS) {
        struct pollfd p = {c->fd, POLLOUT, 0};
        int err = 0;
        socklen_t len = sizeof(err);
        if (poll(&p, 1, timeout_ms) == 1 &&
            getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len) == 0 &&
            err == 0) {
            rv = 0;
        }
    }
    if (rv != 0) {
        close(c->fd);
        c->fd = -1;
        return -1;
    }
    int one = 1;
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    return 0;
}

void cl_close(struct cl_conn *c)
{
    if (c->fd >= 0) {
        close(c->fd);
    }
    c->fd = -1;
}

static int write_all(struct cl_conn *c, const char *p, size_t n, int ms)
{
    uint64_t end = cl_now_ms() + (uint64_t)ms;
    while (n > 0) {
        ssize_t w = write(c->fd, p, n);
        if (w > 0) {
            p += w;
            n -= (size_t)w;
            continue;
        }
        if (w < 0 && errno != EAGAIN && errno != EINTR) {
            return -1;
        }
        uint64_t now = cl_now_ms();
        if (now >= end) {
            return -1;
        }
        struct pollfd pf = {c->fd, POLLOUT, 0};
        poll(&pf, 1, (int)(end - now));
    }
    return 0;
}

/* Makes sure @need bytes are buffered; -1 on timeout or EOF. */
static int fill(struct cl_conn *c, size_t need, uint64_t end)
{
    while (c->have < need) {
        if (need > sizeof(c->buf)) {
            return -1;
        }
        ssize_t r = read(c->fd, c->buf + c->have, sizeof(c->buf) - c->have);
        if (r > 0) {
            c->have += (size_t)r;
            continue;
        }
        if (r == 0 || (errno != EAGAIN && errno != EINTR)) {
            return -1;
        }
        uint64_t now = cl_now_ms();
        if (now >= end) {
            return -1;
        }
        struct pollfd pf = {c->fd, POLLIN, 0};
        poll(&pf, 1, (int)(end - now));
    }
    return 0;
}

/* Reads one line ending in \r\n; returns its length (without \r\n). */
static long read_line(struct cl_conn *c, uint64_t end)
{
    for (;;) {
        for (size_t i = 0; i + 1 < c->have; i++) {
            if (c->buf[i] == '\r' && c->buf[i + 1] == '\n') {
                return (long)i;
            }
        }
        if (fill(c, c->have + 1, end) != 0) {
            return -1;
        }
    }
}

static void consume(struct cl_conn *c, size_t n)
{
    memmove(c->buf, c->buf + n, c->have - n);
    c->have -= n;
}

static int read_reply(struct cl_conn *c, struct cl_reply *r, uint64_t end)
{
    memset(r, 0, sizeof(*r));
    long n = read_line(c, end);
    if (n < 1) {
        return -1;
    }
    char kind = c->buf[0];
    char line[512];
    size_t ln =
        (size_t)n - 1 < sizeof(line) - 1 ? (size_t)n - 1 : sizeof(line) - 1;
    memcpy(line, c->buf + 1, ln);
    line[ln] = '\0';
    consume(c, (size_t)n + 2);
    switch (kind) {
    case '+':
    case '-':
        r->type = kind == '+' ? CL_STATUS : CL_ERR;
        r->str = strdup(line);
        r->len = ln;
        return 0;
    case ':':
        r->type = CL_INT;
        r->integer = atoll(line);
        return 0;
    case '$': {
        long long len = atoll(line);
        if (len < 0) {
            r->type = CL_NIL;
            return 0;
        }
        if (fill(c, (size_t)len + 2, end) != 0) {
            return -1;
        }
        r->type = CL_BULK;
        r->str = malloc((size_t)len + 1);
        memcpy(r->str, c->buf, (size_t)len);
        r->str[len] = '\0';
        r->len = (size_t)len;
        consume(c, (size_t)len + 2);
        return 0;
    }
    case '*': {
        long long count = atoll(line);
        if (count < 0) {
            r->type = CL_NIL;
            return 0;
        }
        r->type = CL_ARRAY;
        r->elems = calloc((size_t)count + 1, sizeof(*r->elems));
        r->n_elems = (size_t)count;
        for (long long i = 0; i < count; i++) {
            if (read_reply(c, &r->elems[i], end) != 0) {
                return -1;
            }
        }
        return 0;
    }
    default:
        return -1;
    }
}

int cl_read_reply(struct cl_conn *c, int timeout_ms, struct cl_reply *r)
{
    memset(r, 0, sizeof(*r));
    if (c->fd < 0 ||
        read_reply(c, r, cl_now_ms() + (uint64_t)timeout_ms) != 0) {
        cl_reply_free(r);
        return -1;
    }
    return 0;
}

int cl_sendv(struct cl_conn *c,
             int timeout_ms,
             int argc,
             const char **argv,
             const size_t *lens)
{
    char head[64];
    if (c->fd < 0) {
        return -1;
    }
    snprintf(head, sizeof(head), "*%d\r\n", argc);
    if (write_all(c, head, strlen(head), timeout_ms) != 0) {
        return -1;
    }
    for (int i = 0; i < argc; i++) {
        size_t len = lens != NULL ? lens[i] : strlen(argv[i]);
        snprintf(head, sizeof(head), "$%zu\r\n", len);
        if (write_all(c, head, strlen(head), timeout_ms) != 0 ||
            write_all(c, argv[i], len, timeout_ms) != 0 ||
            write_all(c, "\r\n", 2, timeout_ms) != 0) {
            return -1;
        }
    }
    return 0;
}

int cl_callv(struct cl_conn *c,
             int timeout_ms,
             struct cl_reply *r,
             int argc,
             const char **argv,
             const size_t *lens)
{
    uint64_t end = cl_now_ms() + (uint64_t)timeout_ms;
    memset(r, 0, sizeof(*r));
    if (cl_sendv(c, timeout_ms, argc, argv, lens) != 0) {
        return -1;
    }
    if (read_reply(c, r, end) != 0) {
        cl_reply_free(r);
        return -1;
    }
    return 0;
}

int cl_call(struct cl_conn *c,
            int timeout_ms,
            struct cl_reply *r,
            int argc,
            const char **argv)
{
    return cl_callv(c, timeout_ms, r, argc, argv, NULL);
}

/* ---- processes --------------------------------------------------------- */

/* True if nothing listens on 127.0.0.1:@port (binding as libuv does,
 * with SO_REUSEADDR, so connections in TIME_WAIT do not count). */
static bool port_free(int port)
{
    struct sockaddr_in sa;
    int one = 1;
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) {
        return false;
    }
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t)port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    bool ok = bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0;
    close(fd);
    return ok;
}

/* Reserves a block of 20 ports below 32768 (Linux picks the ephemeral
 * ports of outgoing connections above it). A lock file per block, held
 * until this process exits, keeps concurrent test processes apart (ctest
 * -j); the bind check skips blocks something else uses. The pid only picks
 * where the search starts. */
static int reserve_ports(void)
{
    int start = (int)(getpid() % 600);
    for (int k = 0; k < 600; k++) {
        int base = 20000 + ((start + k) % 600) * 20;
        char path[64];
        snprintf(path, sizeof(path), "/tmp/ballot-test-ports-%d.lock", base);
        int fd = open(path, O_CREAT | O_RDWR, 0644);
        if (fd < 0) {
            continue;
        }
        if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
            close(fd);
            continue;
        }
        bool free_block = true;
        for (int p = base; p < base + 20 && free_block; p++) {
            free_block = port_free(p);
        }
        if (free_block) {
            return base; /* fd stays open: the lock lives with the process */
        }
        close(fd);
    }
    ck_abort_msg("no free block of 20 ports below 32768");
    return -1;
}

void cl_start_node(struct cluster *c, unsigned id)
{
    struct cl_node *n = &c->nodes[id - 1];
    char args[CL_MAX + 16][128];
    char tls[3][400];
    char *argv[2 * CL_MAX + 46];
    int a = 0;
    char log[600];

    snprintf(log, sizeof(log), "%s/node%u.log", c->root, id);
    snprintf(args[0], sizeof(args[0]), "%u", id);
    argv[a++] = (char *)c->ballotd;
    argv[a++] = "--id";
    argv[a++] = args[0];
    argv[a++] = "--data";
    argv[a++] = n->dir;
    unsigned listed = n->listed != 0 ? n->listed : c->n;
    for (unsigned i = 0; i < listed; i++) {
        snprintf(args[1 + i], sizeof(args[1 + i]), "%llu=127.0.0.1:%d:%d",
                 (unsigned long long)c->nodes[i].id, c->nodes[i].client_port,
                 c->nodes[i].peer_port);
        argv[a++] = "--member";
        argv[a++] = args[1 + i];
    }
    if (!c->no_bootstrap && !n->join) {
        argv[a++] = "--bootstrap";
    }
    if (c->password_file[0] != '\0') {
        argv[a++] = "--client_password_file";
        argv[a++] = c->password_file;
    }
    if (c->insecure) {
        argv[a++] = "--insecure_peers";
        argv[a++] = "true";
    } else {
        argv[a++] = "--cluster_secret_file";
        argv[a++] = c->secret_file;
    }
    if (c->tls_dir != NULL) {
        snprintf(tls[0], sizeof(tls[0]), "%s/node-%u.crt", c->tls_dir, id);
        snprintf(tls[1], sizeof(tls[1]), "%s/node-%u.key", c->tls_dir, id);
        snprintf(tls[2], sizeof(tls[2]), "%s/ca.crt", c->tls_dir);
        argv[a++] = "--tls_cert_file";
        argv[a++] = tls[0];
        argv[a++] = "--tls_key_file";
        argv[a++] = tls[1];
        argv[a++] = "--tls_ca_file";
        argv[a++] = tls[2];
    }
    snprintf(args[CL_MAX + 1], sizeof(args[CL_MAX + 1]), "%d", n->metrics_port);
    argv[a++] = "--metrics_port";
    argv[a++] = args[CL_MAX + 1];
    for (size_t i = 0; c->extra_args != NULL && c->extra_args[i] != NULL; i++) {
        ck_assert_int_lt(a, (int)(sizeof(argv) / sizeof(argv[0])) - 1);
        argv[a++] = (char *)c->extra_args[i];
    }
    argv[a] = NULL;

    pid_t parent = getpid();
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        /* If the test dies (a failed assertion ends its process), take the
         * node down with it: no process outlives the test. */
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent) {
            _exit(127);
        }
        int fd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0644);
        if (fd >= 0) {
            dup2(fd, 1);
            dup2(fd, 2);
            if (fd > 2) {
                close(fd);
            }
        }
        if (c->nofile != 0) {
            struct rlimit rl = {c->nofile, c->nofile};
            if (setrlimit(RLIMIT_NOFILE, &rl) != 0) {
                _exit(127);
            }
        }
        execv(c->ballotd, argv);
        _exit(127);
    }
    n->pid = pid;
}

void cl_start(struct cluster *c, unsigned n)
{
    cl_start_args(c, n, NULL);
}

void cl_start_args(struct cluster *c, unsigned n, const char *const *extra_args)
{
    cl_prepare_args(c, n, extra_args);
    for (unsigned i = 0; i < n; i++) {
        cl_start_node(c, i + 1);
    }
}

/* Writes a random cluster secret (64 hex digits) to root/cluster.secret,
 * readable by its owner only, as `ballotd secret` would. */
static void make_secret(struct cluster *c)
{
    uint8_t raw[32];
    char hex[2 * sizeof(raw) + 2];
    int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(read(fd, raw, sizeof(raw)), (ssize_t)sizeof(raw));
    close(fd);
    for (size_t i = 0; i < sizeof(raw); i++) {
        snprintf(hex + 2 * i, 3, "%02x", raw[i]);
    }
    hex[2 * sizeof(raw)] = '\n';
    snprintf(c->secret_file, sizeof(c->secret_file), "%s/cluster.secret",
             c->root);
    fd = open(c->secret_file, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(write(fd, hex, 2 * sizeof(raw) + 1),
                     (ssize_t)(2 * sizeof(raw) + 1));
    close(fd);
}

/* The process that runs the tests (cl_run_named()); 0 when a test binary
 * has its own main. Scratch roots carry its pid, so that it can remove the
 * roots of tests that failed: Check's fork mode ends a failed test with
 * _exit(), before it reaches cl_close_all(), and a timed-out one with
 * SIGKILL (its nodes die with it, by PR_SET_PDEATHSIG). */
static pid_t runner_pid;

/* Removes every scratch root this runner's tests left behind. */
static void remove_left_roots(void)
{
    char prefix[64];
    DIR *d = opendir("/tmp");
    struct dirent *e;
    if (d == NULL || runner_pid == 0) {
        if (d != NULL) {
            closedir(d);
        }
        return;
    }
    snprintf(prefix, sizeof(prefix), "ballot-cluster-%d-", (int)runner_pid);
    while ((e = readdir(d)) != NULL) {
        if (strncmp(e->d_name, prefix, strlen(prefix)) != 0) {
            continue;
        }
        char cmd[600];
        if (getenv("BALLOT_KEEP_TEST_DIR") != NULL) {
            fprintf(stderr, "kept /tmp/%.255s\n", e->d_name);
            continue;
        }
        snprintf(cmd, sizeof(cmd), "rm -rf '/tmp/%.255s'", e->d_name);
        if (system(cmd) != 0) {
            fprintf(stderr, "could not remove /tmp/%.255s\n", e->d_name);
        }
    }
    closedir(d);
}

void cl_prepare_args(struct cluster *c,
                     unsigned n,
                     const char *const *extra_args)
{
    memset(c, 0, sizeof(*c));
    c->n = n;
    c->extra_args = extra_args;
    c->ballotd = BALLOTD_PATH;
    snprintf(c->root, sizeof(c->root), "/tmp/ballot-cluster-%d-XXXXXX",
             (int)runner_pid);
    ck_assert_ptr_nonnull(mkdtemp(c->root));
    make_secret(c);
    int base = reserve_ports();
    for (unsigned i = 0; i < n; i++) {
        struct cl_node *nd = &c->nodes[i];
        nd->id = i + 1;
        nd->client_port = base + (int)i * 3;
        nd->peer_port = base + (int)i * 3 + 1;
        nd->metrics_port = base + (int)i * 3 + 2;
        snprintf(nd->dir, sizeof(nd->dir), "%s/n%u", c->root, i + 1);
    }
}

static int wait_pid(pid_t pid, int timeout_ms)
{
    uint64_t end = cl_now_ms() + (uint64_t)timeout_ms;
    int status;
    while (cl_now_ms() < end) {
        pid_t r = waitpid(pid, &status, WNOHANG);
        if (r == pid) {
            return WIFEXITED(status) ? WEXITSTATUS(status) : 128;
        }
        usleep(10000);
    }
    return -1;
}

void cl_kill(struct cluster *c, unsigned id)
{
    struct cl_node *n = &c->nodes[id - 1];
    if (n->pid > 0) {
        kill(n->pid, SIGKILL);
        (void)wait_pid(n->pid, 5000);
        n->pid = 0;
    }
}

int cl_term(struct cluster *c, unsigned id)
{
    struct cl_node *n = &c->nodes[id - 1];
    if (n->pid <= 0) {
        return -1;
    }
    kill(n->pid, SIGTERM);
    int rv = wait_pid(n->pid, 5000);
    if (rv < 0) {
        kill(n->pid, SIGKILL);
        (void)wait_pid(n->pid, 5000);
    }
    n->pid = 0;
    return rv;
}

void cl_close_all(struct cluster *c)
{
    char cmd[600];
    for (unsigned i = 0; i < c->n; i++) {
        cl_kill(c, i + 1);
    }
    if (getenv("BALLOT_KEEP_TEST_DIR") == NULL) {
        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", c->root);
        if (system(cmd) != 0) {
            fprintf(stderr, "could not remove %s\n", c->root);
        }
    } else {
        fprintf(stderr, "kept %s\n", c->root);
    }
}

int cl_cmd(struct cluster *c,
           unsigned id,
           int timeout_ms,
           struct cl_reply *r,
           int argc,
           const char **argv)
{
    struct cl_conn conn;
    memset(r, 0, sizeof(*r));
    if (cl_connect(&conn, c->nodes[id - 1].client_port, timeout_ms) != 0) {
        return -1;
    }
    if (c->password != NULL) {
        const char *auth[] = {"AUTH", c->password};
        struct cl_reply a;
        memset(&a, 0, sizeof(a));
        int ok =
            cl_call(&conn, timeout_ms, &a, 2, auth) == 0 && a.type == CL_STATUS;
        cl_reply_free(&a);
        if (!ok) {
            cl_close(&conn);
            return -1;
        }
    }
    int rv = cl_call(&conn, timeout_ms, r, argc, argv);
    cl_close(&conn);
    return rv;
}

int cl_write(struct cluster *c,
             unsigned *leader,
             const char *key,
             const char *value,
             uint64_t deadline)
{
    const char *argv[] = {"SET", key, value};
    unsigned id = *leader ? *leader : 1;
    while (cl_now_ms() < deadline) {
        struct cl_reply r;
        if (c->nodes[id - 1].pid != 0 &&
            cl_cmd(c, id, 1000, &r, 3, argv) == 0) {
            bool ok = r.type == CL_STATUS && strcmp(r.str, "OK") == 0;
            bool unknown =
                r.type == CL_ERR && strncmp(r.str, "UNKNOWN", 7) == 0;
            cl_reply_free(&r);
            if (ok) {
                *leader = id;
                return 1;
            }
            if (unknown) {
                return 0; /* maybe applied: not counted as acknowledged */
            }
        }
        id = id % c->n + 1;
        usleep(5000);
    }
    return 0;
}

bool cl_write_nth(struct cluster *c, unsigned *leader, int i)
{
    char key[32], val[32];
    snprintf(key, sizeof(key), "key:%d", i);
    snprintf(val, sizeof(val), "value:%d", i);
    return cl_write(c, leader, key, val, cl_now_ms() + 10000) == 1;
}

const char *cl_http_body(const char *resp)
{
    const char *p = resp != NULL ? strstr(resp, "\r\n\r\n") : NULL;
    return p != NULL ? p + 4 : "";
}

int cl_get(struct cluster *c,
           unsigned id,
           const char *key,
           int timeout_ms,
           char **value,
           char *err,
           size_t err_len)
{
    const char *argv[] = {"GET", key};
    uint64_t end = cl_now_ms() + (uint64_t)timeout_ms;
    *value = NULL;
    snprintf(err, err_len, "no connection");
    do {
        struct cl_reply r;
        int left = (int)(end - cl_now_ms());
        if (cl_cmd(c, id, left < 3000 ? (left > 100 ? left : 100) : 3000, &r, 2,
                   argv) == 0) {
            if (r.type == CL_BULK) {
                *value = strdup(r.str);
                cl_reply_free(&r);
                return 1;
            }
            if (r.type == CL_NIL) {
                cl_reply_free(&r);
                return 0;
            }
            snprintf(err, err_len, "%s",
                     r.type == CL_ERR && r.str != NULL ? r.str
                                                       : "an unexpected reply");
            cl_reply_free(&r);
        }
        usleep(50000);
    } while (cl_now_ms() < end);
    return -1;
}

void cl_assert_value(struct cluster *c,
                     unsigned id,
                     const char *key,
                     const char *want)
{
    char *got = NULL;
    char err[256];
    int rv = cl_get(c, id, key, 10000, &got, err, sizeof(err));
    ck_assert_msg(rv >= 0, "node %u: %s unreadable for 10 s: %s", id, key, err);
    ck_assert_msg(rv == 1 && strcmp(got, want) == 0,
                  "node %u lost acknowledged %s: holds %s", id, key,
                  rv == 1 ? got : "nothing");
    free(got);
}

int cl_export_files(struct cluster *c, unsigned id)
{
    char dir[600];
    int n = 0;
    snprintf(dir, sizeof(dir), "%s/export", c->nodes[id - 1].dir);
    DIR *d = opendir(dir);
    for (struct dirent *e; d != NULL && (e = readdir(d)) != NULL;) {
        n += e->d_name[0] != '.';
    }
    if (d != NULL) {
        closedir(d);
    }
    return n;
}

/* Followers learn of a new leader from its first append, a moment after
 * the leader reports itself: a test that talks to a follower right after
 * cl_wait_leader() expects it to know (a NOTLEADER naming the leader, a
 * read it forwards). Waits, for at most CL_AGREE_MS and never past @end,
 * until every node that answers names @leader; a node that does not answer
 * (stopped, cut off) or keeps naming another (partitioned on purpose) only
 * costs the wait. */
#define CL_AGREE_MS 2000
static void wait_all_know_leader(struct cluster *c,
                                 unsigned leader,
                                 uint64_t end)
{
    const char *argv[] = {"INFO", "raft"};
    char want[48];
    snprintf(want, sizeof(want), "\r\nleader:%u\r\n", leader);
    uint64_t until = cl_now_ms() + CL_AGREE_MS;
    if (until > end) {
        until = end;
    }
    while (cl_now_ms() < until) {
        bool all = true;
        for (unsigned i = 0; i < c->n && all; i++) {
            struct cl_reply r;
            if (i + 1 == leader || c->nodes[i].pid <= 0 ||
                cl_cmd(c, i + 1, 200, &r, 2, argv) != 0) {
                continue;
            }
            all = r.type == CL_BULK && strstr(r.str, want) != NULL;
            cl_reply_free(&r);
        }
        if (all) {
            return;
        }
        usleep(20000);
    }
}

unsigned cl_wait_leader(struct cluster *c, int timeout_ms)
{
    uint64_t end = cl_now_ms() + (uint64_t)timeout_ms;
    const char *argv[] = {"INFO", "raft"};
    while (cl_now_ms() < end) {
        for (unsigned i = 0; i < c->n; i++) {
            int status;
            if (c->nodes[i].pid > 0 &&
                waitpid(c->nodes[i].pid, &status, WNOHANG) == c->nodes[i].pid) {
                c->nodes[i].pid = 0;
                ck_abort_msg("node %u exited early; see %s/node%u.log", i + 1,
                             c->root, i + 1);
            }
        }
        for (unsigned i = 0; i < c->n; i++) {
            struct cl_reply r;
            if (c->nodes[i].pid == 0 ||
                cl_cmd(c, i + 1, 500, &r, 2, argv) != 0) {
                continue;
            }
            bool leader =
                r.type == CL_BULK && strstr(r.str, "role:leader") != NULL;
            cl_reply_free(&r);
            if (leader) {
                wait_all_know_leader(c, i + 1, end);
                return i + 1;
            }
        }
        usleep(20000);
    }
    return 0;
}

int cl_run(const char *const *argv,
           const char *stdin_path,
           char **out,
           size_t *out_len,
           int timeout_ms)
{
    char path[] = "/tmp/ballot-run-XXXXXX";
    int ofd = mkstemp(path);
    ck_assert_int_ge(ofd, 0);
    unlink(path);
    pid_t parent = getpid();
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent) {
            _exit(127);
        }
        int ifd = open(stdin_path ? stdin_path : "/dev/null", O_RDONLY);
        if (ifd < 0) {
            _exit(126);
        }
        dup2(ifd, 0);
        dup2(ofd, 1);
        dup2(ofd, 2);
        execvp(argv[0], (char *const *)argv);
        _exit(127);
    }
    int rv = -1;
    uint64_t end = cl_now_ms() + (uint64_t)timeout_ms;
    for (;;) {
        int status;
        pid_t r = waitpid(pid, &status, WNOHANG);
        if (r == pid) {
            rv = WIFEXITED(status) ? WEXITSTATUS(status)
                                   : 128 + WTERMSIG(status);
            break;
        }
        if (cl_now_ms() >= end) {
            kill(pid, SIGKILL);
            waitpid(pid, &status, 0);
            fprintf(stderr, "%s: timed out after %d ms\n", argv[0], timeout_ms);
            break;
        }
        usleep(10000);
    }
    off_t size = lseek(ofd, 0, SEEK_END);
    if (out != NULL) {
        char *buf = malloc((size_t)size + 1);
        ck_assert_ptr_nonnull(buf);
        ck_assert_int_eq(pread(ofd, buf, (size_t)size, 0), size);
        buf[size] = '\0';
        *out = buf;
        if (out_len != NULL) {
            *out_len = (size_t)size;
        }
    }
    close(ofd);
    return rv;
}

int cl_run_tests(const char *suite,
                 const struct cl_named_test *tests,
                 size_t n,
                 int timeout_s,
                 void (*teardown)(void),
                 int argc,
                 char **argv)
{
    signal(SIGPIPE, SIG_IGN);
    Suite *s = suite_create(suite);
    for (size_t i = 0; i < n; i++) {
        TCase *tc = tcase_create(tests[i].name);
        if (teardown != NULL) {
            tcase_add_checked_fixture(tc, NULL, teardown);
        }
        tcase_set_timeout(tc, timeout_s);
        tcase_add_test(tc, tests[i].test);
        suite_add_tcase(s, tc);
    }
    SRunner *sr = srunner_create(s);
    runner_pid = getpid();
    srunner_run(sr, NULL, argc > 1 ? argv[1] : NULL, CK_NORMAL);
    remove_left_roots();
    int ran = srunner_ntests_run(sr);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    if (ran == 0) {
        fprintf(stderr, "no test named %s\n", argc > 1 ? argv[1] : "");
        return 1;
    }
    return failed == 0 ? 0 : 1;
}

char *cl_http_get(struct cluster *c, unsigned id, const char *path)
{
    struct cl_conn conn;
    char req[512];
    if (cl_connect(&conn, c->nodes[id - 1].metrics_port, 2000) != 0) {
        return NULL;
    }
    int n = snprintf(req, sizeof(req), "GET %s HTTP/1.0\r\n\r\n", path);
    if (write(conn.fd, req, (size_t)n) != (ssize_t)n) {
        cl_close(&conn);
        return NULL;
    }
    size_t have = 0;
    char *buf = calloc(1, 65536);
    uint64_t end = cl_now_ms() + 3000;
    while (buf != NULL && have < 65535 && cl_now_ms() < end) {
        ssize_t r = read(conn.fd, buf + have, 65535 - have);
        if (r == 0) {
            break;
        }
        if (r > 0) {
            have += (size_t)r;
        } else {
            usleep(5000);
        }
    }
    cl_close(&conn);
    return buf;
}
