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
    pid_t pid; /* 0 when not running */
    char dir[512];
};

struct cluster
{
    unsigned n;
    struct cl_node nodes[CL_MAX];
    char root[256];
    const char *ballotd;
};

/* Creates a temporary directory and starts @n nodes bootstrapping a new
 * cluster. */
void cl_start(struct cluster *c, unsigned n);
/* Starts (or restarts) node @id (1-based) from its data directory. */
void cl_start_node(struct cluster *c, unsigned id);
/* SIGKILLs node @id and waits for it. */
void cl_kill(struct cluster *c, unsigned id);
/* SIGTERMs node @id and waits (bounded) for a clean exit; returns its exit
 * status, or -1 if it had to be killed. */
int cl_term(struct cluster *c, unsigned id);
/* Kills every node and removes the directory. */
void cl_close_all(struct cluster *c);

/* Waits until some running node reports itself leader in INFO; returns its
 * id, or 0 after @timeout_ms. */
unsigned cl_wait_leader(struct cluster *c, int timeout_ms);

/* One-shot command against node @id; returns 0 or -1. */
int cl_cmd(struct cluster *c,
           unsigned id,
           int timeout_ms,
           struct cl_reply *r,
           int argc,
           const char **argv);

uint64_t cl_now_ms(void);

#endif
