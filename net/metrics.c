/*
 * metrics.c - see metrics.h.
 */
#include "metrics.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bnode.h"
#include "looplag.h"
#include "metrics_text.h"
#include "server.h"
#include "tls.h"

#define METRICS_REQUEST_MAX 8192
/* The answers other than /metrics (health, readiness, status). */
#define METRICS_BODY_MAX 8192
/* An answer's status line and headers. */
#define METRICS_HEAD_MAX 256
/* /ready tolerates this many committed entries not yet applied: under
 * load the apply trails the commit by a batch or two. */
#define METRICS_READY_LAG_MAX 10000

struct metrics_conn
{
    uv_tcp_t handle; /* first: a handle pointer is a connection pointer */
    uv_write_t write;
    struct metrics *m;
    struct tls_stream *tls; /* NULL without TLS */
    struct metrics_conn *prev, *next;
    char in[METRICS_REQUEST_MAX];
    size_t len;
    char *out; /* the answer being written (heap) */
    bool answered;
    uint64_t since; /* uv_now() when accepted */
};

struct metrics
{
    uv_loop_t *loop;
    uv_tcp_t listener;
    uv_timer_t timer; /* closes connections over METRICS_TIMEOUT_MS */
    unsigned n_conns;
    struct bnode *node;
    struct server *srv;
    struct looplag *lag;
    struct tls_ctx *tls;
    bool tls_auth_clients;
    struct metrics_conn *conns;
    int open_handles;
    void (*stop_cb)(void *arg);
    void *stop_arg;
};

static void handle_closed(struct metrics *m)
{
    /* The listener stays open until metrics_stop() (or a failed start), so
     * the count reaches zero only then. */
    if (--m->open_handles > 0) {
        return;
    }
    void (*cb)(void *) = m->stop_cb;
    void *arg = m->stop_arg;
    free(m);
    if (cb != NULL) {
        cb(arg);
    }
}

static void on_conn_closed(uv_handle_t *h)
{
    struct metrics_conn *c = (struct metrics_conn *)h;
    struct metrics *m = c->m;
    tls_stream_destroy(c->tls);
    if (c->prev != NULL) {
        c->prev->next = c->next;
    } else {
        m->conns = c->next;
    }
    if (c->next != NULL) {
        c->next->prev = c->prev;
    }
    m->n_conns--;
    free(c->out);
    free(c);
    handle_closed(m);
}

static void conn_close(struct metrics_conn *c)
{
    if (!uv_is_closing((uv_handle_t *)&c->handle)) {
        uv_close((uv_handle_t *)&c->handle, on_conn_closed);
    }
}

#if defined(__GNUC__)
__attribute__((format(printf, 3, 4)))
#endif
static void
add(char *body, size_t *len, const char *fmt, ...)
{
    va_list ap;
    if (*len >= METRICS_BODY_MAX) {
        return;
    }
    va_start(ap, fmt);
    int n = vsnprintf(body + *len, METRICS_BODY_MAX - *len, fmt, ap);
    va_end(ap);
    if (n > 0) {
        *len += (size_t)n;
        if (*len > METRICS_BODY_MAX) {
            *len = METRICS_BODY_MAX;
        }
    }
}

/* GET /health: the process serves and its storage works. */
static const char *health(struct metrics *m, char *body, size_t *len)
{
    struct bnode_status st;
    bnode_status(m->node, &st);
    if (st.halted) {
        add(body, len, "halted: storage failed\n");
        return "503 Service Unavailable";
    }
    add(body, len, "ok\n");
    return "200 OK";
}

/* GET /ready: the node can serve linearizable requests now: it knows a
 * leader, has applied nearly all it knows is committed (a node that
 * restarts, installs a snapshot or was cut off is behind by far more),
 * and is not over its quota (it would refuse writes). */
static const char *ready(struct metrics *m, char *body, size_t *len)
{
    struct bnode_status st;
    bnode_status(m->node, &st);
    if (st.halted) {
        add(body, len, "not ready: storage failed\n");
    } else if (st.leader == 0) {
        add(body, len, "not ready: no leader known\n");
    } else if (st.commit > st.applied + METRICS_READY_LAG_MAX) {
        add(body, len, "not ready: applied %llu of %llu committed entries\n",
            (unsigned long long)st.applied, (unsigned long long)st.commit);
    } else if (st.over_quota) {
        add(body, len, "not ready: over its quota (%llu bytes)\n",
            (unsigned long long)st.quota_bytes);
    } else {
        add(body, len, "ready: leader %llu, applied %llu\n",
            (unsigned long long)st.leader, (unsigned long long)st.applied);
        return "200 OK";
    }
    return "503 Service Unavailable";
}

/* Appends @s as a JSON string (member addresses: printable ASCII). */
static void add_json_string(char *body, size_t *len, const char *s)
{
    add(body, len, "\"");
    for (; *s != '\0'; s++) {
        if (*s == '"' || *s == '\\') {
            add(body, len, "\\%c", *s);
        } else if ((unsigned char)*s >= 0x20 && (unsigned char)*s < 0x7f) {
            add(body, len, "%c", *s);
        }
    }
    add(body, len, "\"");
}

/* GET /status: what `ballot status` shows, as JSON. */
static void status_json(struct metrics *m, char *body, size_t *len)
{
    static const char *roles[] = {"unknown", "follower", "pre-candidate",
                                  "candidate", "leader"};
    struct bnode_status st;
    bnode_status(m->node, &st);
    const char *la = bnode_leader_addr(m->node);
    add(body, len,
        "{\"id\":%llu,\"role\":\"%s\",\"term\":%llu,\"leader\":%llu,"
        "\"leader_addr\":",
        (unsigned long long)st.id, roles[st.state <= 4 ? st.state : 0],
        (unsigned long long)st.term, (unsigned long long)st.leader);
    add_json_string(body, len, la != NULL ? la : "");
    add(body, len,
        ",\"commit\":%llu,\"applied\":%llu,\"last_index\":%llu,"
        "\"first_index\":%llu,\"snapshot_index\":%llu,\"revision\":%llu,"
        "\"db_bytes\":%llu,\"halted\":%s,\"clients\":%llu,\"members\":[",
        (unsigned long long)st.commit, (unsigned long long)st.applied,
        (unsigned long long)st.last_index, (unsigned long long)st.first_index,
        (unsigned long long)st.snapshot_index, (unsigned long long)st.revision,
        (unsigned long long)st.db_bytes, st.halted ? "true" : "false",
        (unsigned long long)(m->srv != NULL ? server_clients(m->srv) : 0));
    for (uint32_t i = 0; i < st.conf.n; i++) {
        const struct bnode_member *a =
            bnode_member_addr(m->node, st.conf.members[i].id);
        char addr[BNODE_HOST_MAX + 16] = "";
        if (a != NULL) {
            snprintf(addr, sizeof(addr), "%s:%d", a->host, a->client_port);
        }
        add(body, len,
            "%s{\"id\":%llu,\"voter\":%s,\"addr\":", i > 0 ? "," : "",
            (unsigned long long)st.conf.members[i].id,
            st.conf.members[i].role == RAFT_VOTER ? "true" : "false");
        add_json_string(body, len, addr);
        add(body, len, "}");
    }
    add(body, len, "]}\n");
}

/* True if the request line asks for GET @path (with or without a query). */
static bool is_get(const char *req, const char *path)
{
    size_t n = strlen(path);
    return strncmp(req, "GET ", 4) == 0 && strncmp(req + 4, path, n) == 0 &&
           (req[4 + n] == ' ' || req[4 + n] == '?');
}

static void on_written(uv_write_t *req, int status)
{
    (void)status;
    conn_close(req->data);
}

static void answer(struct metrics_conn *c)
{
    /* Room for the largest body, /metrics's, after the head. */
    size_t cap = METRICS_HEAD_MAX + METRICS_TEXT_MAX;
    size_t blen = 0;
    const char *status = "404 Not Found";
    const char *type = "text/plain";
    c->answered = true;
    if (c->tls != NULL) {
        tls_stream_read_stop(c->tls);
    } else {
        uv_read_stop((uv_stream_t *)&c->handle);
    }
    c->out = malloc(cap);
    if (c->out == NULL) {
        conn_close(c);
        return;
    }
    char *body = c->out + METRICS_HEAD_MAX;
    if (is_get(c->in, "/metrics")) {
        struct metrics_text_port port = {c->m->n_conns};
        status = "200 OK";
        type = "text/plain; version=0.0.4";
        blen = metrics_text_render(c->m->node, c->m->srv, c->m->lag, &port,
                                   body, METRICS_TEXT_MAX);
    } else if (is_get(c->in, "/health")) {
        status = health(c->m, body, &blen);
    } else if (is_get(c->in, "/ready")) {
        status = ready(c->m, body, &blen);
    } else if (is_get(c->in, "/status")) {
        status = "200 OK";
        type = "application/json";
        status_json(c->m, body, &blen);
    } else {
        blen = (size_t)snprintf(body, METRICS_BODY_MAX,
                                "try GET /metrics, /health, /ready or "
                                "/status\n");
    }
    char head[METRICS_HEAD_MAX];
    int n = snprintf(head, sizeof(head),
                     "HTTP/1.0 %s\r\n"
                     "Content-Type: %s\r\n"
                     "Content-Length: %zu\r\n"
                     "Connection: close\r\n\r\n",
                     status, type, blen);
    size_t hlen = (size_t)n;
    /* The head goes right before the body, which is already in place. */
    memcpy(body - hlen, head, hlen);
    uv_buf_t buf = uv_buf_init(body - hlen, (unsigned)(hlen + blen));
    c->write.data = c;
    int rv = c->tls != NULL
                 ? tls_stream_write(c->tls, &c->write, &buf, 1, on_written)
                 : uv_write(&c->write, (uv_stream_t *)&c->handle, &buf, 1,
                            on_written);
    if (rv != 0) {
        conn_close(c);
    }
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    struct metrics_conn *c = (struct metrics_conn *)h;
    (void)suggested;
    *buf = uv_buf_init(c->in + c->len, (unsigned)(sizeof(c->in) - 1 - c->len));
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    struct metrics_conn *c = (struct metrics_conn *)s;
    (void)buf;
    if (nread < 0) {
        conn_close(c);
        return;
    }
    c->len += (size_t)nread;
    c->in[c->len] = '\0';
    /* A request ends with an empty line; one that never does is cut off
     * at the buffer's size and answered as not found. */
    if (!c->answered &&
        (strstr(c->in, "\r\n\r\n") != NULL || c->len == sizeof(c->in) - 1)) {
        answer(c);
    }
}

static void on_connection(uv_stream_t *server, int status)
{
    struct metrics *m = server->data;
    if (status != 0) {
        return;
    }
    struct metrics_conn *c = calloc(1, sizeof(*c));
    if (c == NULL) {
        return;
    }
    c->m = m;
    c->since = uv_now(m->loop);
    uv_tcp_init(m->loop, &c->handle);
    m->open_handles++;
    m->n_conns++;
    c->next = m->conns;
    if (m->conns != NULL) {
        m->conns->prev = c;
    }
    m->conns = c;
    /* Over the limit the connection is accepted only to be closed at once:
     * its descriptor is freed at once. */
    if (uv_accept(server, (uv_stream_t *)&c->handle) != 0 ||
        m->n_conns > METRICS_CONNS_MAX ||
        uv_tcp_keepalive(&c->handle, 1, METRICS_KEEPALIVE_S) != 0) {
        conn_close(c);
        return;
    }
    int rv = 0;
    if (m->tls != NULL) {
        rv = tls_stream_create(
            m->tls, (uv_stream_t *)&c->handle,
            m->tls_auth_clients ? TLS_ACCEPT_CERT : TLS_ACCEPT, 0, &c->tls);
        if (rv == 0) {
            rv = tls_stream_read_start(c->tls, on_alloc, on_read);
        }
    } else {
        rv = uv_read_start((uv_stream_t *)&c->handle, on_alloc, on_read);
    }
    if (rv != 0) {
        conn_close(c);
    }
}

void metrics_set_tls(struct metrics *m, struct tls_ctx *tls, bool auth_clients)
{
    m->tls = tls;
    m->tls_auth_clients = auth_clients;
}

static void on_timer(uv_timer_t *t)
{
    struct metrics *m = t->data;
    uint64_t now = uv_now(m->loop);
    for (struct metrics_conn *c = m->conns; c != NULL; c = c->next) {
        if (now - c->since >= METRICS_TIMEOUT_MS) {
            conn_close(c);
        }
    }
}

static void on_listener_closed(uv_handle_t *h)
{
    handle_closed(h->data);
}

int metrics_start(uv_loop_t *loop,
                  const char *host,
                  int port,
                  struct bnode *node,
                  struct server *srv,
                  struct looplag *lag,
                  struct metrics **out,
                  char *errmsg,
                  size_t errmsg_len)
{
    struct sockaddr_in addr;
    int rv = uv_ip4_addr(host, port, &addr);
    if (rv != 0) {
        snprintf(errmsg, errmsg_len, "bad address %s:%d", host, port);
        return -1;
    }
    struct metrics *m = calloc(1, sizeof(*m));
    if (m == NULL) {
        snprintf(errmsg, errmsg_len, "out of memory");
        return -1;
    }
    m->loop = loop;
    m->node = node;
    m->srv = srv;
    m->lag = lag;
    uv_tcp_init(loop, &m->listener);
    m->listener.data = m;
    uv_timer_init(loop, &m->timer);
    m->timer.data = m;
    m->open_handles = 2;
    rv = uv_tcp_bind(&m->listener, (const struct sockaddr *)&addr, 0);
    if (rv == 0) {
        rv = uv_listen((uv_stream_t *)&m->listener, 64, on_connection);
    }
    if (rv != 0) {
        snprintf(errmsg, errmsg_len, "listen on %s:%d: %s", host, port,
                 uv_strerror(rv));
        /* Closed through the loop like any handle; nothing waits for it. */
        uv_close((uv_handle_t *)&m->timer, on_listener_closed);
        uv_close((uv_handle_t *)&m->listener, on_listener_closed);
        return -1;
    }
    uv_timer_start(&m->timer, on_timer, METRICS_TIMEOUT_MS / 4,
                   METRICS_TIMEOUT_MS / 4);
    *out = m;
    return 0;
}

void metrics_stop(struct metrics *m, void (*cb)(void *arg), void *arg)
{
    m->stop_cb = cb;
    m->stop_arg = arg;
    for (struct metrics_conn *c = m->conns; c != NULL; c = c->next) {
        conn_close(c);
    }
    uv_close((uv_handle_t *)&m->timer, on_listener_closed);
    uv_close((uv_handle_t *)&m->listener, on_listener_closed);
}
