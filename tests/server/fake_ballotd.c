/*
 * fake_ballotd.c - the client port over the fake node, as a process: for
 * trying redis-cli and redis-benchmark against the command table before
 * the real node exists. Not a test.
 *
 *     fake_ballotd PORT DIR     (DIR must exist; SIGINT or SIGTERM stops it)
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>

#include "fake_bnode.h"
#include "server.h"

static uv_signal_t sig_int;
static uv_signal_t sig_term;
static struct server *srv;
static struct bnode *node;

static void stopped(void *arg)
{
    (void)arg;
}

static void on_signal(uv_signal_t *s, int signum)
{
    (void)s;
    (void)signum;
    uv_close((uv_handle_t *)&sig_int, NULL);
    uv_close((uv_handle_t *)&sig_term, NULL);
    server_stop(srv, stopped, NULL);
    bnode_stop(node, stopped, NULL);
}

int main(int argc, char **argv)
{
    struct server_options o;
    char err[256];
    if (argc != 3) {
        fprintf(stderr, "usage: fake_ballotd PORT DIR\n");
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    uv_loop_t *loop = uv_default_loop();
    if (fake_bnode_create(loop, argv[2], &node) != 0) {
        return 1;
    }
    server_options_default(&o);
    o.host = "127.0.0.1";
    o.port = atoi(argv[1]);
    if (server_start(loop, node, &o, &srv, err, sizeof(err)) != 0) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    uv_signal_init(loop, &sig_int);
    uv_signal_start(&sig_int, on_signal, SIGINT);
    uv_signal_init(loop, &sig_term);
    uv_signal_start(&sig_term, on_signal, SIGTERM);
    uv_run(loop, UV_RUN_DEFAULT);
    return uv_loop_close(loop) == 0 ? 0 : 1;
}
