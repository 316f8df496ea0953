/*
 * ballotd.c - one node of a ballot cluster: the node driver (raft, WAL,
 * LMDB, peer transport) and the Redis-protocol client port on one libuv
 * loop. SIGTERM or SIGINT stops it gracefully: in-flight requests are
 * answered or failed cleanly, LMDB is synced, every handle is closed.
 * `ballotd restore ...` builds a data directory offline (restore.h).
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "bnode.h"
#include "config.h"
#include "log.h"
#include "metrics.h"
#include "restore.h"
#include "server.h"

struct daemon
{
    uv_loop_t *loop;
    struct bnode *node;
    struct server *server;
    struct metrics *metrics;
    uv_signal_t sigterm;
    uv_signal_t sigint;
    bool stopping;
    int running; /* parts still stopping: server, node, metrics */
};

static void on_part_stopped(void *arg)
{
    struct daemon *d = arg;
    if (--d->running > 0) {
        return;
    }
    uv_close((uv_handle_t *)&d->sigterm, NULL);
    uv_close((uv_handle_t *)&d->sigint, NULL);
    blog(BLOG_INFO, "stopped");
}

static void on_signal(uv_signal_t *h, int signum)
{
    struct daemon *d = h->data;
    if (d->stopping) {
        blog(BLOG_WARN, "signal %d again: exiting at once", signum);
        exit(1);
    }
    d->stopping = true;
    blog(BLOG_INFO, "signal %d: stopping", signum);
    /* Both at once: the server lets running requests finish, and the node
     * answers or fails everything it holds (writes whose fate is unknown
     * get an outcome-unknown error), so the server's stop can complete. */
    d->running = d->metrics != NULL ? 3 : 2;
    if (d->metrics != NULL) {
        metrics_stop(d->metrics, on_part_stopped, d);
    }
    server_stop(d->server, on_part_stopped, d);
    bnode_stop(d->node, on_part_stopped, d);
}

int main(int argc, char **argv)
{
    struct ballotd_config cfg;
    struct daemon d;
    char err[512] = "";

    if (argc >= 2 && strcmp(argv[1], "restore") == 0) {
        return restore_main(argc - 1, argv + 1);
    }
    config_default(&cfg);
    int rv = config_from_args(&cfg, argc, argv, err, sizeof(err));
    if (rv == 1) {
        return 0;
    }
    if (rv != 0 || config_finish(&cfg, err, sizeof(err)) != 0) {
        fprintf(stderr, "ballotd: %s\n", err);
        return 2;
    }
    blog_set_level(cfg.verbose ? BLOG_DEBUG : BLOG_INFO);
    /* Each batch's fdatasync runs on libuv's thread pool (4 threads by
     * default), beside snapshot copies that take a while each: the node's
     * own and up to SERVER_EXPORTS_MAX exports. Room for all of them, so
     * that a batch never waits for a copy; an operator's setting wins. The
     * pool reads this at its first use. */
    setenv("UV_THREADPOOL_SIZE", "8", 0);
    /* A client that disconnects must not kill the server with SIGPIPE. */
    signal(SIGPIPE, SIG_IGN);

    memset(&d, 0, sizeof(d));
    d.loop = uv_default_loop();
    if (bnode_start(d.loop, &cfg.node, &d.node, err, sizeof(err)) != 0) {
        blog(BLOG_ERROR, "cannot start the node: %s", err);
        return 1;
    }
    struct server_options so;
    server_options_default(&so);
    so.host = cfg.client_host;
    so.port = cfg.client_port;
    so.max_clients = cfg.max_clients;
    so.output_bytes_max = cfg.max_output_bytes;
    so.pipeline_max = cfg.max_pipeline;
    so.limits.request_bytes_max = cfg.max_request_bytes;
    if (server_start(d.loop, d.node, &so, &d.server, err, sizeof(err)) != 0) {
        blog(BLOG_ERROR, "cannot listen for clients on %s:%d: %s",
             cfg.client_host, cfg.client_port, err);
        return 1;
    }
    if (cfg.metrics_port > 0 &&
        metrics_start(d.loop, cfg.client_host, cfg.metrics_port, d.node,
                      d.server, &d.metrics, err, sizeof(err)) != 0) {
        blog(BLOG_ERROR, "cannot serve metrics: %s", err);
        return 1;
    }
    uv_signal_init(d.loop, &d.sigterm);
    uv_signal_init(d.loop, &d.sigint);
    d.sigterm.data = &d;
    d.sigint.data = &d;
    uv_signal_start(&d.sigterm, on_signal, SIGTERM);
    uv_signal_start(&d.sigint, on_signal, SIGINT);
    blog(BLOG_INFO, "serving clients on %s:%d, data in %s", cfg.client_host,
         cfg.client_port, cfg.data_dir);

    uv_run(d.loop, UV_RUN_DEFAULT);
    rv = uv_loop_close(d.loop);
    if (rv != 0) {
        blog(BLOG_WARN, "loop closed with handles open: %s", uv_strerror(rv));
    }
    return 0;
}
