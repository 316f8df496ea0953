/*
 * harness.h - real ballotd processes on loopback for integration tests.
 *
 * Each node listens on 127.0.0.1 with ports derived from the test's pid,
 * so concurrent test binaries (ctest -j) do not collide. Every process the
 * harness starts is killed by pid when the cluster is closed, and every
 * wait is bounded.
 */
#ifndef BALLOT_TESTS_CLUSTER_HARNESS_H
#define BALLOT_TESTS_CLUSTER_HARNESS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <check.h>

#define CL_MAX 5

/* A RESP reply, parsed. */
enum cl_type {
    CL_ERROR = 0, /* also: no reply (timeout, connection lost) */
    CL_STATUS,
    CL_ERR,
    CL_INT,
    CL_BULK,
    CL_NIL,
    CL_ARRAY,
};

struct cl_reply
{
    enum cl_type type;
    long long integer;
    char *str; /* STATUS, ERR, BULK: NUL-terminated copy; len below */
    size_t len;
    struct cl_reply *elems;
    size_t n_elems;
};

void cl_reply_free(struct cl_reply *r);

/* A blocking client connection with a timeout on every call. */
struct cl_conn
{
    int fd;
    char buf[1 << 16];
    size_t have;
};

int cl_connect(struct cl_conn *c, int port, int timeout_ms);
void cl_close(struct cl_conn *c);
/* Sends one command (argv of @argc NUL-terminated strings) and reads its
 * reply. Returns 0, or -1 on timeout or a lost connection. */
int cl_call(struct cl_conn *c,
            int timeout_ms,
            struct cl_reply *r,
            int argc,
            const char **argv);
/* Sends one command without reading its reply (to pipeline several).
 * Returns 0 or -1. */
int cl_sendv(struct cl_conn *c,
             int timeout_ms,
             int argc,
             const char **argv,
             const size_t *lens);
/* Reads one reply without sending anything. Returns 0 or -1. */
int cl_read_reply(struct cl_conn *c, int timeout_ms, struct cl_reply *r);
/* The same with binary arguments. */
int cl_callv(struct cl_conn *c,
             int timeout_ms,
             struct cl_reply *r,
             int argc,
             const char **argv,
             const size_t *lens);

struct cl_node
{
    uint64_t id;
    int client_port;
    int peer_port;
    int metrics_port;
    pid_t pid; /* 0 when not running */
    char dir[512];
    /* How the node is started: the first @listed nodes of the cluster are
     * its `member` lines (0: all of them); @join leaves out --bootstrap
     * (it waits to be added). */
    unsigned listed;
    bool join;
};

struct cluster
{
    unsigned n;
    struct cl_node nodes[CL_MAX];
    char root[256];
    const char *ballotd;
    /* Extra ballotd flags given to every node (NULL-terminated, borrowed
     * for the cluster's life); NULL for none. */
    const char *const *extra_args;
    /* Start nodes without --bootstrap (e.g. from restored data
     * directories). */
    bool no_bootstrap;
    /* If not 0, nodes run with RLIMIT_NOFILE at this (soft and hard), as
     * under `ulimit -n`. */
    unsigned nofile;
    /* The cluster secret every node is started with (made by
     * cl_prepare_args(), mode 600, in @root). */
    char secret_file[300];
    /* Start nodes with --insecure_peers true and no secret instead. */
    bool insecure;
    /* The client password (NULL: none): cl_prepare_args() leaves it
     * unset; set it and @password_file (a `ballotd passwd` file) before
     * cl_start_node(), and cl_cmd() authenticates with it. */
    const char *password;
    char password_file[300];
    /* If set, a directory of scripts/tls-certs.sh: node ID is started with
     * TLS on every port, DIR/node-ID.crt and .key, and DIR/ca.crt
     * (cl_cmd() and cl_wait_leader() do not speak TLS). */
    const char *tls_dir;
};

/* Creates a temporary directory and starts @n nodes bootstrapping a new
 * cluster. */
void cl_start(struct cluster *c, unsigned n);
/* The same, passing @extra_args (NULL-terminated, e.g. {"--max_clients",
 * "50", NULL}; borrowed until cl_close_all()) to every node. */
void cl_start_args(struct cluster *c,
                   unsigned n,
                   const char *const *extra_args);
/* Like cl_start_args() without starting anything: ports, directories and
 * per-node settings are ready for cl_start_node(). */
void cl_prepare_args(struct cluster *c,
                     unsigned n,
                     const char *const *extra_args);
/* Starts (or restarts) node @id (1-based) from its data directory. */
void cl_start_node(struct cluster *c, unsigned id);
/* SIGKILLs node @id and waits for it. */
void cl_kill(struct cluster *c, unsigned id);
/* SIGTERMs node @id and waits (bounded) for a clean exit; returns its exit
 * status, or -1 if it had to be killed. */
int cl_term(struct cluster *c, unsigned id);
/* Kills every node and removes the directory. */
void cl_close_all(struct cluster *c);

/* Files in node @id's DATA/export: copies of the store made for clients
 * (BSNAPSHOT) that the node still holds. */
int cl_export_files(struct cluster *c, unsigned id);

/* Waits until some running node reports itself leader in INFO, then
 * (briefly, at most 2 s) until the other nodes that answer name it too;
 * returns its id, or 0 after @timeout_ms. */
unsigned cl_wait_leader(struct cluster *c, int timeout_ms);

/* One-shot command against node @id; returns 0 or -1. */
int cl_cmd(struct cluster *c,
           unsigned id,
           int timeout_ms,
           struct cl_reply *r,
           int argc,
           const char **argv);

uint64_t cl_now_ms(void);

/* SET @key @value through the node believed to lead (*@leader, 0: node
 * 1), trying the others in turn until @deadline (cl_now_ms()). Returns 1
 * once acknowledged (*@leader is then the node that answered), 0 if not
 * acknowledged: refused everywhere until @deadline, or answered UNKNOWN
 * (maybe applied; not retried, not counted). */
int cl_write(struct cluster *c,
             unsigned *leader,
             const char *key,
             const char *value,
             uint64_t deadline);

/* cl_write() of key:@i = value:@i with 10 s to go: the writes tests
 * count and check afterwards; true if acknowledged. */
bool cl_write_nth(struct cluster *c, unsigned *leader, int i);

/* The body of an HTTP response from cl_http_get() (after the blank line;
 * "" if there is none). */
const char *cl_http_body(const char *resp);

/* GET @key on node @id as a client would: retries, for up to @timeout_ms,
 * while the node gives no answer about the key (no connection, or an error
 * reply: TRYAGAIN, NOTLEADER, LOADING... during an election or a restart).
 * Returns 1 with the value in *@value (free it), 0 if the key is absent,
 * or -1 if no answer came, the last error in @err. A test that checks an
 * acknowledged write tells "lost" (0, or another value) from "could not
 * read" (-1) with it. */
int cl_get(struct cluster *c,
           unsigned id,
           const char *key,
           int timeout_ms,
           char **value,
           char *err,
           size_t err_len);

/* Fails the test unless node @id holds @want at @key (cl_get(), 10 s):
 * "lost" if it holds something else or nothing, "unreadable" if it never
 * answered. */
void cl_assert_value(struct cluster *c,
                     unsigned id,
                     const char *key,
                     const char *want);

/* One process-level test, run alone by ctest under its name. */
struct cl_named_test
{
    const char *name;
    const TTest *test;
};

/* Runs the test named argv[1] (every test without an argument), each in a
 * Check case of its own with @timeout_s and the optional @teardown.
 * Ignores SIGPIPE (servers close misbehaving connections). Returns the
 * process exit code: 0 if all ran passed, 1 on a failure or when no test
 * has that name (so a typo in ctest cannot pass by running nothing). */
int cl_run_tests(const char *suite,
                 const struct cl_named_test *tests,
                 size_t n,
                 int timeout_s,
                 void (*teardown)(void),
                 int argc,
                 char **argv);

/* GET @path on node @id's metrics port: the whole HTTP response (status
 * line, headers, body; malloc'ed), or NULL if it could not connect. */
char *cl_http_get(struct cluster *c, unsigned id, const char *path);

/* Runs a program (argv[0] is a path or a name looked up in PATH) with
 * stdin from @stdin_path (NULL: /dev/null) and stdout and stderr captured
 * into *out (malloc'ed, NUL-terminated; may be NULL if unwanted). The
 * child dies with the test (PR_SET_PDEATHSIG) and is SIGKILLed by pid
 * after @timeout_ms. Returns its exit status, 128 + signal if it was
 * killed by one, or -1 on timeout. */
int cl_run(const char *const *argv,
           const char *stdin_path,
           char **out,
           size_t *out_len,
           int timeout_ms);

#endif
