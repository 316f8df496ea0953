/*
 * harness.h - runs a client port over the fake node on a loop in its own
 * thread, and a small blocking RESP client for the tests to talk to it
 * through real TCP on 127.0.0.1.
 */
#ifndef BALLOT_TESTS_SERVER_HARNESS_H
#define BALLOT_TESTS_SERVER_HARNESS_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <uv.h>

#include "fake_bnode.h"
#include "server.h"

struct harness
{
    char dir[64];
    uv_loop_t loop;
    uv_async_t wake;
    struct bnode *node;
    struct server *srv;
    int port;
    pthread_t thread;
    int stops_pending;
};

/* Starts the loop thread with @opts (NULL: defaults on 127.0.0.1, port
 * 0). */
void harness_start(struct harness *h, const struct server_options *opts);

/* Stops the server and the node from the loop thread, joins it, checks
 * that uv_loop_close() returns 0 and removes the directory. */
void harness_stop(struct harness *h);

/* A blocking client with a read buffer. */
struct cli
{
    int fd;
    char buf[1 << 16];
    size_t len;
    size_t off;
};

/* Growable bytes. */
struct dbuf
{
    char *data;
    size_t len;
    size_t cap;
};

void dbuf_put(struct dbuf *b, const void *p, size_t n);
void dbuf_free(struct dbuf *b);

/* Connects (5 s timeouts); aborts the test on failure. */
void cli_open(struct cli *c, int port);
void cli_close(struct cli *c);
void cli_send(struct cli *c, const void *data, size_t len);
/* Sends one multibulk request. */
void cli_sendv(struct cli *c, int argc, const char **argv, const size_t *lens);
/* Sends @line split at spaces as one multibulk request. */
void cli_send_line(struct cli *c, const char *line);
/* Reads one whole reply, raw, appended to @out. Returns 0, or -1 on EOF,
 * timeout or error. */
int cli_reply(struct cli *c, struct dbuf *out);
/* True if the server closed the connection (EOF within the timeout). */
bool cli_closed(struct cli *c);
/* Sends @line and returns the raw reply (valid until the next call). */
const char *q(struct cli *c, const char *line);
/* Same with explicit arguments. */
const char *qv(struct cli *c, int argc, const char **argv, const size_t *lens);

/* Frees the calling thread's reply buffer of q()/qv(). */
void q_release(void);

#endif
