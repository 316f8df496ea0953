/*
 * embed.c - the lifecycle of an embedded node (include/ballot.h,
 * include/ballot/uv.h): starting the node, its client server and metrics
 * endpoint on a loop, the thread of a node opened with ballot_open() and
 * the queue other threads call it through, and stopping it all.
 */
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "embed_internal.h"
#include "fdlimit.h"
#include "looplag.h"
#include "metrics.h"
#include "server.h"
#include "tls.h"
#include "transport.h"

bool embed_on_loop(const struct ballot *b)
{
    return pthread_equal(b->loop_thread, pthread_self()) != 0;
}

/* ---- starting on a loop ------------------------------------------------ */

static void on_node_log(void *arg, int level, const char *msg)
{
    struct ballot *b = arg;
    if (b->log != NULL) {
        b->log(b->log_arg, level, msg);
    }
}

static void on_halt_timer(uv_timer_t *t)
{
    struct ballot *b = t->data;
    if (b->halt != NULL) {
        b->halt(b->halt_arg, b->halt_why);
    }
}

static void on_node_halt(void *arg, const char *why)
{
    struct ballot *b = arg;
    b->halted = true;
    snprintf(b->halt_why, sizeof(b->halt_why), "%s", why);
    /* Told from a timer, not from inside the node's cycle, so that the
     * program may stop the node from its callback. */
    uv_timer_start(&b->halt_timer, on_halt_timer, 0, 0);
}

#if defined(__GNUC__)
__attribute__((format(printf, 3, 4)))
#endif
static void
set_err(char *errmsg, size_t len, const char *fmt, ...)
{
    va_list ap;
    if (errmsg != NULL && len > 0) {
        va_start(ap, fmt);
        vsnprintf(errmsg, len, fmt, ap);
        va_end(ap);
    }
}

#if defined(__GNUC__)
__attribute__((format(printf, 3, 4)))
#endif
static void
logf_(struct ballot *b, int level, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    if (b->log == NULL) {
        return;
    }
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    b->log(b->log_arg, level, msg);
}

static void on_slow_loop(void *arg, uint64_t busy_ms, uint64_t unreported)
{
    struct ballot *b = arg;
    logf_(b, BALLOT_LOG_WARN,
          "the event loop was busy for %llu ms in one turn (loop_warn_ms "
          "%llu): clients, heartbeats and elections waited meanwhile; %llu "
          "more such turns since the last line",
          (unsigned long long)busy_ms, (unsigned long long)b->cfg.loop_warn_ms,
          (unsigned long long)unreported);
}

/* Every descriptor the node and its ports may hold must fit under
 * RLIMIT_NOFILE before anything opens, so that clients can never take the
 * ones the node needs (fdlimit.h): raises the soft limit, or lowers
 * max_clients. */
static int fit_descriptors(struct ballot *b, char *errmsg, size_t errmsg_len)
{
    struct ballotd_config *cfg = &b->cfg;
    struct fdlimit_plan fds;
    char err[512];
    unsigned fixed = FDLIMIT_NODE_RESERVE + TRANSPORT_FDS_MAX;
    unsigned clients = 0;
    if (cfg->serve_clients) {
        fixed +=
            server_fds_max(0) + (cfg->metrics_port > 0 ? METRICS_FDS_MAX : 0);
        clients = cfg->max_clients;
    }
    if (fdlimit_apply(fixed, clients, &fds, err, sizeof(err)) != 0) {
        set_err(errmsg, errmsg_len, "cannot start the node: %s", err);
        return BALLOT_EOPEN;
    }
    if (fds.raised) {
        logf_(
            b, BALLOT_LOG_INFO, "raised the descriptor limit from %llu to %llu",
            (unsigned long long)fds.soft_before, (unsigned long long)fds.soft);
    }
    if (fds.lowered) {
        logf_(b, BALLOT_LOG_WARN,
              "max_clients lowered from %u to %u: the descriptor limit is "
              "%llu (hard %llu) and the node keeps %u for itself and its "
              "ports; raise it (ulimit -n, LimitNOFILE=) for more clients",
              cfg->max_clients, fds.max_clients, (unsigned long long)fds.soft,
              (unsigned long long)fds.hard, fixed);
        cfg->max_clients = fds.max_clients;
    }
    return 0;
}

/* Starts the node and its listeners on @b->loop (the calling thread). */
static int start_parts(struct ballot *b, char *errmsg, size_t errmsg_len)
{
    struct ballotd_config *cfg = &b->cfg;
    char err[512] = "";
    int rc = fit_descriptors(b, errmsg, errmsg_len);
    if (rc != 0) {
        return rc;
    }
    cfg->node.data_dir = cfg->data_dir;
    cfg->node.log = on_node_log;
    cfg->node.log_arg = b;
    cfg->node.halt = on_node_halt;
    cfg->node.halt_arg = b;
    b->loop_thread = pthread_self();
    if (cfg->tls_cert_file[0] != '\0') {
        struct tls_options to = {cfg->tls_cert_file, cfg->tls_key_file,
                                 cfg->tls_ca_file};
        rc = tls_ctx_create(b->loop, &to, &b->tls, err, sizeof(err));
        if (rc != 0) {
            set_err(errmsg, errmsg_len, "%s", err);
            return rc == TLS_ENOMEM ? BALLOT_ENOMEM : BALLOT_EINVAL;
        }
        cfg->node.peer_tls = b->tls;
    }
    int rv = bnode_start(b->loop, &cfg->node, &b->node, err, sizeof(err));
    if (rv != 0) {
        set_err(errmsg, errmsg_len, "cannot start the node: %s", err);
        return rv == BNODE_ENOMEM ? BALLOT_ENOMEM : BALLOT_EOPEN;
    }
    uv_timer_init(b->loop, &b->halt_timer);
    b->halt_timer.data = b;
    b->parts_running = 1;
    rv = looplag_start(b->loop, cfg->loop_warn_ms, on_slow_loop, b, &b->lag);
    if (rv != 0) {
        logf_(b, BALLOT_LOG_WARN,
              "cannot measure the event loop's busy time: %s", uv_strerror(rv));
        b->lag = NULL;
    }
    if (cfg->serve_clients) {
        struct server_options so;
        server_options_default(&so);
        so.host = cfg->client_host;
        so.port = cfg->client_port;
        so.max_clients = cfg->max_clients;
        so.output_bytes_max = cfg->max_output_bytes;
        so.pipeline_max = cfg->max_pipeline;
        so.limits.request_bytes_max = cfg->max_request_bytes;
        so.idle_timeout_ms = cfg->idle_timeout_ms;
        so.request_timeout_ms = cfg->request_timeout_ms;
        so.export_idle_ms = cfg->export_idle_ms;
        so.memory_max = cfg->max_client_memory;
        _Static_assert(
            sizeof(so.password_hash) == sizeof(cfg->client_password_hash),
            "password hash sizes differ");
        memcpy(so.password_hash, cfg->client_password_hash,
               sizeof(so.password_hash));
        _Static_assert(
            sizeof(so.default_user_rules) == sizeof(cfg->default_user_rules),
            "default user rules sizes differ");
        memcpy(so.default_user_rules, cfg->default_user_rules,
               sizeof(so.default_user_rules));
        so.password_iterations = cfg->password_iterations;
        so.rate_conn_requests = cfg->client_rate_requests;
        so.rate_conn_bytes = cfg->client_rate_bytes;
        so.rate_user_requests = cfg->user_rate_requests;
        so.rate_user_bytes = cfg->user_rate_bytes;
        _Static_assert(sizeof(so.audit_file) == sizeof(cfg->audit_log_file),
                       "audit file sizes differ");
        memcpy(so.audit_file, cfg->audit_log_file, sizeof(so.audit_file));
        so.log = on_node_log;
        so.log_arg = b;
        so.tls = b->tls;
        so.tls_auth_clients = cfg->tls_auth_clients;
        if (server_start(b->loop, b->node, &so, &b->server, err, sizeof(err)) !=
            0) {
            set_err(errmsg, errmsg_len,
                    "cannot listen for clients on %s:%d: %s", cfg->client_host,
                    cfg->client_port, err);
            return BALLOT_EOPEN;
        }
        b->parts_running++;
    }
    if (b->log != NULL && cfg->serve_clients) {
        char line[BNODE_HOST_MAX + sizeof(cfg->data_dir) + 64];
        snprintf(line, sizeof(line), "serving clients on %s:%d, data in %s",
                 cfg->client_host, cfg->client_port, cfg->data_dir);
        b->log(b->log_arg, BALLOT_LOG_INFO, line);
    }
    if (cfg->serve_clients && cfg->metrics_port > 0) {
        if (metrics_start(b->loop, cfg->client_host, cfg->metrics_port, b->node,
                          b->server, b->lag, &b->metrics, err,
                          sizeof(err)) != 0) {
            set_err(errmsg, errmsg_len, "cannot serve metrics: %s", err);
            return BALLOT_EOPEN;
        }
        if (b->tls != NULL) {
            metrics_set_tls(b->metrics, b->tls, cfg->tls_auth_clients);
        }
        b->parts_running++;
    }
    return 0;
}

static struct ballot *ballot_alloc(const struct ballot_config *cfg)
{
    struct ballot *b = calloc(1, sizeof(*b));
    if (b == NULL) {
        return NULL;
    }
    b->cfg = cfg->d;
    /* The program's lowest level, raised by the operator's log_level
     * setting (verbose: debug, as far as the program takes it). */
    b->cfg.node.log_level = cfg->d.verbose || cfg->d.log_level < cfg->log_level
                                ? cfg->log_level
                                : cfg->d.log_level;
    b->log = cfg->log;
    b->log_arg = cfg->log_arg;
    b->halt = cfg->halt;
    b->halt_arg = cfg->halt_arg;
    return b;
}

/* The configuration's final checks (ballotd's config_finish()) and its
 * cluster secret (config_peer_auth(): a node never talks to peers
 * unauthenticated by accident), on a copy so that the caller's stays as it
 * was. */
static int check_config(struct ballot *b, char *errmsg, size_t errmsg_len)
{
    char err[512];
    if (config_finish(&b->cfg, err, sizeof(err)) != 0 ||
        config_peer_auth(&b->cfg, err, sizeof(err)) != 0) {
        set_err(errmsg, errmsg_len, "%s", err);
        return BALLOT_EINVAL;
    }
    return 0;
}

static void on_halt_timer_closed(uv_handle_t *h)
{
    struct ballot *b = h->data;
    if (b->stop_cb != NULL) {
        b->stop_cb(b->stop_arg);
    }
}

static void on_part_stopped(void *arg)
{
    struct ballot *b = arg;
    if (--b->parts_running > 0) {
        return;
    }
    if (b->lag != NULL) {
        looplag_stop(b->lag);
        b->lag = NULL;
    }
    tls_ctx_destroy(b->tls);
    b->tls = NULL;
    /* The last handle of ours; @b may be freed once it is closed. */
    uv_close((uv_handle_t *)&b->halt_timer, on_halt_timer_closed);
}

void embed_stop_parts(struct ballot *b)
{
    b->stopping = true;
    uv_timer_stop(&b->halt_timer);
    /* All at once: the server lets running requests finish, and the node
     * answers or fails everything it holds (writes whose fate is unknown
     * get an outcome-unknown error), so the server's stop can complete. */
    int parts = b->parts_running;
    if (b->metrics != NULL) {
        metrics_stop(b->metrics, on_part_stopped, b);
    }
    if (b->server != NULL) {
        server_stop(b->server, on_part_stopped, b);
    }
    if (parts > 0) {
        bnode_stop(b->node, on_part_stopped, b);
    }
}

int ballot_start(uv_loop_t *loop,
                 const struct ballot_config *cfg,
                 struct ballot **out,
                 char *errmsg,
                 size_t errmsg_len)
{
    if (loop == NULL || cfg == NULL || out == NULL) {
        set_err(errmsg, errmsg_len, "%s", "loop, config and out are needed");
        return BALLOT_EINVAL;
    }
    struct ballot *b = ballot_alloc(cfg);
    if (b == NULL) {
        return BALLOT_ENOMEM;
    }
    b->loop = loop;
    int rv = check_config(b, errmsg, errmsg_len);
    if (rv == 0) {
        rv = start_parts(b, errmsg, errmsg_len);
        if (rv != 0 && b->parts_running > 0) {
            /* Something after the node failed: stop what runs, then free
             * (the loop must run for the handles to close). */
            b->stop_cb = free;
            b->stop_arg = b;
            embed_stop_parts(b);
            return rv;
        }
    }
    if (rv != 0) {
        tls_ctx_destroy(b->tls); /* its handle closes on the loop */
        free(b);
        return rv;
    }
    *out = b;
    return 0;
}

int ballot_tls_reload(struct ballot *b, char *errmsg, size_t errmsg_len)
{
    if (b == NULL || b->threaded) {
        return BALLOT_EINVAL;
    }
    if (!embed_on_loop(b)) {
        return BALLOT_EWRONGTHREAD;
    }
    if (b->tls == NULL) {
        set_err(errmsg, errmsg_len, "%s", "TLS is off (no tls_cert_file)");
        return BALLOT_EINVAL;
    }
    char err[512] = "";
    int rv = tls_ctx_reload(b->tls, err, sizeof(err));
    if (rv != 0) {
        set_err(errmsg, errmsg_len, "%s (the old files stay in use)", err);
        return BALLOT_EINVAL;
    }
    return 0;
}

struct stop_ctx
{
    struct ballot *b;
    ballot_stop_cb cb;
    void *arg;
};

static void on_stopped_free(void *arg)
{
    struct stop_ctx *s = arg;
    ballot_stop_cb cb = s->cb;
    void *cb_arg = s->arg;
    embed_watch_release_all(s->b);
    free(s->b);
    free(s);
    if (cb != NULL) {
        cb(cb_arg);
    }
}

int ballot_stop(struct ballot *b, ballot_stop_cb cb, void *arg)
{
    if (b == NULL || b->threaded || b->stopping) {
        return b != NULL && b->stopping ? BALLOT_ECLOSED : BALLOT_EINVAL;
    }
    if (!embed_on_loop(b)) {
        return BALLOT_EWRONGTHREAD;
    }
    struct stop_ctx *s = calloc(1, sizeof(*s));
    if (s == NULL) {
        return BALLOT_ENOMEM;
    }
    s->b = b;
    s->cb = cb;
    s->arg = arg;
    b->stop_cb = on_stopped_free;
    b->stop_arg = s;
    embed_stop_parts(b);
    return 0;
}

bool ballot_halted(const struct ballot *b)
{
    return b != NULL && b->halted;
}

/* ---- a node on its own thread ------------------------------------------ */

/* Takes the queued calls (under the lock) and runs them on the loop. */
static void on_wake(uv_async_t *h)
{
    struct ballot *b = h->data;
    uv_mutex_lock(&b->mu);
    struct embed_call *c = b->q_head;
    b->q_head = b->q_tail = NULL;
    uv_mutex_unlock(&b->mu);
    while (c != NULL) {
        struct embed_call *next = c->next;
        c->next = NULL;
        if (c->kind == EMBED_STOP) {
            if (!b->stopping) {
                embed_stop_parts(b);
            }
            embed_call_free(c);
        } else if (c->kind == EMBED_WATCH) {
            embed_watch_run(b, c);
        } else if (c->kind == EMBED_STATUS || c->kind == EMBED_TRANSFER ||
                   c->kind == EMBED_WATCH_CANCEL) {
            int rc = b->stopping && c->kind != EMBED_WATCH_CANCEL
                         ? BALLOT_ECLOSED
                         : 0;
            if (rc == 0 && c->kind == EMBED_STATUS) {
                embed_status_fill(b, c->status_out);
            } else if (rc == 0 && c->kind == EMBED_WATCH_CANCEL) {
                embed_watch_release(b, c->watch);
            } else if (rc == 0) {
                rc = embed_error(bnode_transfer(b->node, c->id));
            }
            *c->rc_out = rc;
            c->cb(c->arg, NULL); /* wakes the waiting caller */
            embed_call_free(c);
        } else {
            int rv = embed_call_run(b, c);
            if (rv != 0) {
                embed_call_fail(c, rv);
            }
        }
        c = next;
    }
}

static void on_thread_stopped(void *arg)
{
    struct ballot *b = arg;
    /* Nothing may be queued any more: fail what slipped in. */
    uv_mutex_lock(&b->mu);
    b->closed = true;
    struct embed_call *c = b->q_head;
    b->q_head = b->q_tail = NULL;
    uv_mutex_unlock(&b->mu);
    while (c != NULL) {
        struct embed_call *next = c->next;
        if (c->kind == EMBED_STATUS || c->kind == EMBED_TRANSFER ||
            c->kind == EMBED_WATCH_CANCEL) {
            /* A cancelled watch is released with the others below. */
            *c->rc_out = c->kind == EMBED_WATCH_CANCEL ? 0 : BALLOT_ECLOSED;
            c->cb(c->arg, NULL);
            embed_call_free(c);
        } else if (c->kind == EMBED_WATCH) {
            embed_watch_run(b, c); /* ends it: the node is stopped */
        } else if (c->kind == EMBED_STOP) {
            embed_call_free(c);
        } else {
            embed_call_fail(c, BALLOT_ECLOSED);
        }
        c = next;
    }
    embed_watch_release_all(b);
    uv_close((uv_handle_t *)&b->wake, NULL);
}

static void thread_main(void *arg)
{
    struct ballot *b = arg;
    sigset_t all;
    /* Signals are the program's business: this thread takes none. */
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, NULL);
    b->start_rc = start_parts(b, b->start_err, sizeof(b->start_err));
    uv_async_init(b->loop, &b->wake, on_wake);
    b->wake.data = b;
    b->stop_cb = on_thread_stopped;
    b->stop_arg = b;
    if (b->start_rc != 0) {
        if (b->parts_running > 0) {
            embed_stop_parts(b);
        } else {
            on_thread_stopped(b);
        }
    }
    uv_sem_post(&b->started);
    uv_run(b->loop, UV_RUN_DEFAULT);
    int rv = uv_loop_close(b->loop);
    if (rv != 0 && b->log != NULL) {
        b->log(b->log_arg, BALLOT_LOG_WARN,
               "the node's loop closed with handles open");
    }
}

int ballot_open(const struct ballot_config *cfg,
                struct ballot **out,
                char *errmsg,
                size_t errmsg_len)
{
    if (cfg == NULL || out == NULL) {
        set_err(errmsg, errmsg_len, "%s", "config and out are needed");
        return BALLOT_EINVAL;
    }
    struct ballot *b = ballot_alloc(cfg);
    if (b == NULL) {
        return BALLOT_ENOMEM;
    }
    int rv = check_config(b, errmsg, errmsg_len);
    if (rv != 0) {
        free(b);
        return rv;
    }
    b->threaded = true;
    b->loop = &b->own_loop;
    if (uv_loop_init(b->loop) != 0 || uv_mutex_init(&b->mu) != 0 ||
        uv_sem_init(&b->started, 0) != 0) {
        free(b);
        return BALLOT_ENOMEM;
    }
    if (uv_thread_create(&b->thread, thread_main, b) != 0) {
        uv_loop_close(b->loop);
        uv_mutex_destroy(&b->mu);
        uv_sem_destroy(&b->started);
        free(b);
        return BALLOT_ENOMEM;
    }
    uv_sem_wait(&b->started);
    if (b->start_rc != 0) {
        rv = b->start_rc;
        set_err(errmsg, errmsg_len, "%s", b->start_err);
        uv_thread_join(&b->thread);
        uv_mutex_destroy(&b->mu);
        uv_sem_destroy(&b->started);
        free(b);
        return rv;
    }
    *out = b;
    return 0;
}

int ballot_close(struct ballot *b)
{
    if (b == NULL || !b->threaded) {
        return BALLOT_EINVAL;
    }
    if (embed_on_loop(b)) {
        return BALLOT_EWRONGTHREAD;
    }
    struct embed_call *stop = calloc(1, sizeof(*stop));
    if (stop == NULL) {
        return BALLOT_ENOMEM;
    }
    stop->kind = EMBED_STOP;
    uv_mutex_lock(&b->mu);
    if (b->closed) {
        free(stop);
    } else if (b->q_tail != NULL) {
        b->q_tail->next = stop;
        b->q_tail = stop;
    } else {
        b->q_head = b->q_tail = stop;
    }
    if (!b->closed) {
        uv_async_send(&b->wake);
    }
    uv_mutex_unlock(&b->mu);
    uv_thread_join(&b->thread);
    uv_mutex_destroy(&b->mu);
    uv_sem_destroy(&b->started);
    free(b);
    return 0;
}

int embed_submit(struct ballot *b, struct embed_call *c)
{
    if (embed_on_loop(b)) {
        int rv = embed_call_run(b, c);
        if (rv != 0) {
            embed_call_free(c);
        }
        return rv;
    }
    if (!b->threaded) {
        embed_call_free(c);
        return BALLOT_EWRONGTHREAD;
    }
    uv_mutex_lock(&b->mu);
    if (b->closed) {
        uv_mutex_unlock(&b->mu);
        embed_call_free(c);
        return BALLOT_ECLOSED;
    }
    c->b = b;
    if (b->q_tail != NULL) {
        b->q_tail->next = c;
    } else {
        b->q_head = c;
    }
    b->q_tail = c;
    uv_async_send(&b->wake);
    uv_mutex_unlock(&b->mu);
    return 0;
}
