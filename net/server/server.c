/*
 * server.c - client connections: accept, read, parse, dispatch in order,
 * write replies in order, enforce the limits of struct server_options, and
 * stop gracefully. The commands themselves are in commands*.c.
 *
 * A connection is freed only when its handle is closed, no request of it
 * is still waiting for the node and no write is in flight, so a client
 * that disconnects while its requests run costs nothing but their memory
 * until the node calls back.
 */
#include "server.h"

#include <arpa/inet.h>
#include <assert.h>
#include <netinet/in.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "acl.h"
#include "commands.h"
#include "tls.h"

/* Bytes a read asks libuv to have room for. */
#define CONN_READ_CHUNK (64u * 1024u)

struct conn
{
    uv_tcp_t tcp; /* first: the handle's data is not needed */
    struct server *srv;
    struct conn *prev;
    struct conn *next;
    struct cmd_client client;
    struct resp_parser parser;
    /* Input: bytes [in_off, in_len) are received and not consumed. */
    char *in;
    size_t in_len;
    size_t in_cap;
    /* Requests in arrival order; replies leave from the head. */
    struct cmd_req *head;
    struct cmd_req *tail;
    unsigned n_pending;
    unsigned inflight[4]; /* dispatched, not done, by enum cmd_order */
    /* A parsed request waiting for the ordering gate (copied). */
    struct cmd_queued held;
    bool has_held;
    /* Output: replies staged, and the buffer being written. */
    char *out;
    size_t out_len;
    size_t out_cap;
    uv_write_t wreq;
    char *wbuf;
    size_t wlen;
    bool writing;
    bool reading;
    bool stop_parse; /* QUIT, protocol error, stop: no more requests */
    bool eof;        /* the client closed its side */
    bool drained;    /* the last parse found no complete request */
    bool closing;    /* uv_close() called */
    bool closed;     /* the close callback ran */
    bool counted;    /* counts in env.n_clients */
    bool in_process;
    /* When the client last completed something (a request parsed, a reply
     * written): bytes of an unfinished request do not count, so a client
     * that trickles one looks idle. */
    uint64_t last_ms;
    /* Since when unconsumed input (an unfinished request) is buffered; 0
     * if none. */
    uint64_t partial_ms;
    /* Bytes this connection holds (input, output, replies being built,
     * MULTI queue), counted in env.mem_used; wcap is wbuf's size. */
    size_t mem;
    size_t wcap;
    bool mem_refused; /* the budget refused it something */
    /* The TLS layer, or NULL: the connection then reads and writes its
     * socket directly. */
    struct tls_stream *tls;
};

struct server
{
    uv_loop_t *loop;
    uv_tcp_t listener;
    uv_timer_t timer;
    bool timer_on;
    struct cmd_env env;
    /* Every connection object, refused ones too, the most recently active
     * first (conn_touch), so the tail is the one idle the longest. */
    struct conn *conns;
    struct conn *conns_tail;
    unsigned n_conns;
    bool stopping;
    unsigned handles_open; /* listener and timer */
    void (*stop_cb)(void *arg);
    void *stop_arg;
};

static void conn_process(struct conn *c);
static void conn_close(struct conn *c);

void server_options_default(struct server_options *opts)
{
    memset(opts, 0, sizeof(*opts));
    opts->host = "0.0.0.0";
    opts->port = SERVER_PORT_DEFAULT;
    opts->max_clients = SERVER_MAX_CLIENTS_DEFAULT;
    resp_limits_default(&opts->limits);
    opts->output_bytes_max = SERVER_OUTPUT_BYTES_MAX_DEFAULT;
    opts->pipeline_max = SERVER_PIPELINE_MAX_DEFAULT;
    opts->idle_timeout_ms = SERVER_IDLE_TIMEOUT_MS_DEFAULT;
    opts->request_timeout_ms = SERVER_REQUEST_TIMEOUT_MS_DEFAULT;
    opts->export_idle_ms = SERVER_EXPORT_IDLE_MS_DEFAULT;
    opts->memory_max = SERVER_MEMORY_MAX_DEFAULT;
}

unsigned server_fds_max(unsigned max_clients)
{
    return max_clients + SERVER_REFUSING_MAX + 2;
}

static struct conn *conn_of(struct cmd_client *cl)
{
    return (struct conn *)((char *)cl - offsetof(struct conn, client));
}

static void conns_unlink(struct server *s, struct conn *c)
{
    if (c->prev != NULL) {
        c->prev->next = c->next;
    } else {
        s->conns = c->next;
    }
    if (c->next != NULL) {
        c->next->prev = c->prev;
    } else {
        s->conns_tail = c->prev;
    }
    c->prev = c->next = NULL;
}

static void conns_push_front(struct server *s, struct conn *c)
{
    c->prev = NULL;
    c->next = s->conns;
    if (s->conns != NULL) {
        s->conns->prev = c;
    } else {
        s->conns_tail = c;
    }
    s->conns = c;
}

/* ---------------------------------------------------------------------- */
/* Memory                                                                  */

/* Charges @n bytes to @c. Beyond SERVER_CLIENT_SHARE_MIN a connection
 * gets more only while every client together stays within memory_max;
 * @force charges anyway (memory that moves from one use to another). */
static bool mem_charge(struct conn *c, size_t n, bool force)
{
    struct cmd_env *e = &c->srv->env;
    if (!force && c->mem + n > SERVER_CLIENT_SHARE_MIN &&
        e->mem_used + n > e->opts.memory_max) {
        c->mem_refused = true;
        e->mem_refused++;
        return false;
    }
    c->mem += n;
    e->mem_used += n;
    return true;
}

static void mem_release(struct conn *c, size_t n)
{
    assert(c->mem >= n);
    c->mem -= n;
    c->srv->env.mem_used -= n;
}

static bool env_mem_charge(struct cmd_client *cl, size_t n)
{
    return mem_charge(conn_of(cl), n, false);
}

static void env_mem_release(struct cmd_client *cl, size_t n)
{
    mem_release(conn_of(cl), n);
}

/* Replies are built through this allocator, so each is charged as it
 * grows and refused (RESP_ENOMEM) beyond the connection's share. A header
 * before each block keeps its size. */
#define REPLY_HDR 16u
#define REPLY_SMALL 4096u

static void *reply_realloc(void *ctx, void *ptr, size_t size)
{
    struct conn *c = ctx;
    char *h = ptr != NULL ? (char *)ptr - REPLY_HDR : NULL;
    size_t old = 0;
    if (h != NULL) {
        memcpy(&old, h, sizeof(old));
    }
    /* A small reply (an error, a status) is never refused: the client must
     * be told why it got nothing else. */
    if (size > old && !mem_charge(c, size - old, size <= REPLY_SMALL)) {
        return NULL;
    }
    char *nh = realloc(h, size + REPLY_HDR);
    if (nh == NULL) {
        if (size > old) {
            mem_release(c, size - old);
        }
        return NULL;
    }
    if (size < old) {
        mem_release(c, old - size);
    }
    memcpy(nh, &size, sizeof(size));
    return nh + REPLY_HDR;
}

static void reply_free(void *ctx, void *ptr)
{
    if (ptr == NULL) {
        return;
    }
    char *h = (char *)ptr - REPLY_HDR;
    size_t size;
    memcpy(&size, h, sizeof(size));
    mem_release(ctx, size);
    free(h);
}

/* The client completed something: it is the most recently active. */
static void conn_touch(struct conn *c)
{
    c->last_ms = cmd_now_ms();
    if (c->srv->conns != c) {
        conns_unlink(c->srv, c);
        conns_push_front(c->srv, c);
    }
}

/* ---------------------------------------------------------------------- */
/* Stopping                                                                */

static void server_maybe_stopped(struct server *s)
{
    if (!s->stopping || s->conns != NULL || s->handles_open > 0) {
        return;
    }
    void (*cb)(void *) = s->stop_cb;
    void *arg = s->stop_arg;
    cmd_cursors_free(&s->env);
    acl_close(&s->env);
    acl_limits_close(&s->env);
    acl_audit_close(&s->env);
    free((void *)s->env.opts.host);
    free(s);
    if (cb != NULL) {
        cb(arg);
    }
}

static void conn_maybe_free(struct conn *c)
{
    if (!c->closed || c->n_pending > 0 || c->writing) {
        return;
    }
    struct server *s = c->srv;
    conns_unlink(s, c);
    s->n_conns--;
    cmd_client_close(&c->client);
    resp_parser_close(&c->parser);
    free((void *)c->held.argv);
    free(c->in);
    free(c->out);
    free(c->wbuf);
    /* Input, output and queue: everything else was released already. */
    s->env.mem_used -= c->mem;
    free(c);
    server_maybe_stopped(s);
}

static void on_conn_closed(uv_handle_t *h)
{
    struct conn *c = (struct conn *)h;
    /* Writes that waited for the handshake are cancelled first. */
    tls_stream_destroy(c->tls);
    c->tls = NULL;
    c->closed = true;
    conn_maybe_free(c);
}

static void conn_close(struct conn *c)
{
    if (c->closing) {
        return;
    }
    c->closing = true;
    c->stop_parse = true;
    c->client.gone = true;
    if (c->counted) {
        c->counted = false;
        c->srv->env.n_clients--;
    }
    /* Pending writes are cancelled; their callbacks still run. */
    uv_close((uv_handle_t *)&c->tcp, on_conn_closed);
}

/* Closes the connection once nothing more will be sent on it. */
static void conn_maybe_close(struct conn *c)
{
    if (c->closing || c->n_pending > 0 || c->writing || c->out_len > 0) {
        return;
    }
    if (c->stop_parse || (c->eof && c->drained && !c->has_held)) {
        conn_close(c);
    }
}

/* ---------------------------------------------------------------------- */
/* Output                                                                  */

static void conn_flush(struct conn *c);

static void on_write(uv_write_t *w, int status)
{
    struct conn *c = w->data;
    c->writing = false;
    c->wlen = 0;
    free(c->wbuf);
    c->wbuf = NULL;
    mem_release(c, c->wcap);
    c->wcap = 0;
    if (status < 0) {
        conn_close(c);
    } else if (!c->closing) {
        conn_touch(c);
    }
    conn_flush(c);
    conn_maybe_close(c);
    conn_maybe_free(c);
}

/* Starts writing what is staged, if no write is running. */
static void conn_flush(struct conn *c)
{
    if (c->writing || c->closing || c->out_len == 0) {
        return;
    }
    free(c->wbuf);
    c->wbuf = c->out;
    c->wlen = c->out_len;
    c->wcap = c->out_cap;
    c->out = NULL;
    c->out_len = 0;
    c->out_cap = 0;
    uv_buf_t b = uv_buf_init(c->wbuf, (unsigned)c->wlen);
    c->wreq.data = c;
    int rv = c->tls != NULL
                 ? tls_stream_write(c->tls, &c->wreq, &b, 1, on_write)
                 : uv_write(&c->wreq, (uv_stream_t *)&c->tcp, &b, 1, on_write);
    if (rv != 0) {
        conn_close(c);
        return;
    }
    c->writing = true;
}

/* Stages @len bytes of replies; a client over the output limit is not
 * reading its replies and is disconnected. Returns -1 if closed. */
static int conn_stage(struct conn *c, const char *data, size_t len)
{
    size_t limit = c->srv->env.opts.output_bytes_max;
    if (c->closing) {
        return -1;
    }
    if (c->out_len + c->wlen + len > limit) {
        conn_close(c);
        return -1;
    }
    if (c->out_cap - c->out_len < len) {
        size_t cap = c->out_cap ? c->out_cap : 4096;
        while (cap - c->out_len < len) {
            cap *= 2;
        }
        char *p = realloc(c->out, cap);
        if (p == NULL) {
            conn_close(c);
            return -1;
        }
        /* A reply moving to the output was charged as it was built, and
         * is released right after: charged whatever the budget. */
        (void)mem_charge(c, cap - c->out_cap, true);
        c->out = p;
        c->out_cap = cap;
    }
    memcpy(c->out + c->out_len, data, len);
    c->out_len += len;
    return 0;
}

/* env.push: a whole out-of-band frame, staged between replies (a reply is
 * staged whole by conn_collect(), so the frame never splits one). */
static int conn_push(struct cmd_client *cl,
                     const char *data,
                     size_t len,
                     bool force)
{
    struct conn *c = conn_of(cl);
    if (c->closing) {
        return -1;
    }
    const struct cmd_env *e = &c->srv->env;
    if (!force && (c->out_len + c->wlen + len > e->opts.output_bytes_max / 2 ||
                   (c->mem + len > SERVER_CLIENT_SHARE_MIN &&
                    e->mem_used + len > e->opts.memory_max))) {
        /* Over the output limit's half, or over the client's share of the
         * memory budget: the stream waits. */
        return 1;
    }
    if (conn_stage(c, data, len) != 0) {
        return -1;
    }
    conn_flush(c);
    return 0;
}

/* Moves every finished reply at the head of the queue to the output. */
static void conn_collect(struct conn *c)
{
    while (c->head != NULL && c->head->done) {
        struct cmd_req *r = c->head;
        c->head = r->next;
        if (c->head == NULL) {
            c->tail = NULL;
        }
        c->n_pending--;
        if (!c->closing) {
            if (r->reply_err != 0) {
                char msg[160];
                int n = snprintf(msg, sizeof(msg), "-ERR %s\r\n",
                                 r->reply_err == RESP_EOUTPUT
                                     ? "reply too large for the output "
                                       "buffer limit"
                                 : c->mem_refused
                                     ? "reply too large for this client's "
                                       "share of the server's client memory "
                                       "(max_client_memory)"
                                     : "out of memory");
                (void)conn_stage(c, msg, (size_t)n);
            } else {
                (void)conn_stage(c, r->reply.data, r->reply.len);
            }
            if (r->close_after) {
                c->stop_parse = true;
            }
        }
        resp_buf_close(&r->reply);
        free(r);
    }
}

/* ---------------------------------------------------------------------- */
/* Requests                                                                */

static struct cmd_req *slot_new(struct conn *c, int order)
{
    struct cmd_req *r = calloc(1, sizeof(*r));
    if (r == NULL) {
        return NULL;
    }
    struct resp_allocator alloc = {c, reply_realloc, reply_free};
    if (resp_buf_init(&r->reply, c->srv->env.opts.output_bytes_max,
                      c->client.proto, &alloc) != 0) {
        free(r);
        return NULL;
    }
    r->client = &c->client;
    r->order = order;
    if (c->tail != NULL) {
        c->tail->next = r;
    } else {
        c->head = r;
    }
    c->tail = r;
    c->n_pending++;
    return r;
}

/* Called by cmd_req_finish(), possibly from inside cmd_dispatch(). */
static void req_done(struct cmd_req *r)
{
    struct conn *c = conn_of(r->client);
    assert(c->inflight[r->order] > 0);
    c->inflight[r->order]--;
    conn_collect(c);
    if (c->in_process) {
        return; /* conn_process() goes on with the rest */
    }
    conn_process(c);
    conn_maybe_free(c);
}

static bool gate_open(const struct conn *c, int order)
{
    const unsigned *f = c->inflight;
    switch (order) {
    case CMD_ORDER_FREE:
        return f[CMD_ORDER_SERIAL] == 0;
    case CMD_ORDER_READ:
        return f[CMD_ORDER_WRITE] == 0 && f[CMD_ORDER_SERIAL] == 0;
    case CMD_ORDER_WRITE:
        return f[CMD_ORDER_READ] == 0 && f[CMD_ORDER_SERIAL] == 0;
    default:
        return f[CMD_ORDER_FREE] == 0 && f[CMD_ORDER_READ] == 0 &&
               f[CMD_ORDER_WRITE] == 0 && f[CMD_ORDER_SERIAL] == 0;
    }
}

static int dispatch(struct conn *c, const struct resp_request *req, int order)
{
    struct cmd_req *r = slot_new(c, order);
    if (r == NULL) {
        return -1;
    }
    c->inflight[order]++;
    conn_touch(c);
    cmd_dispatch(r, req);
    return 0;
}

static int hold(struct conn *c, const struct resp_request *req)
{
    if (cmd_queued_copy(&c->held, NULL, req->argc, req->argv, req->argvlen) !=
        0) {
        return -1;
    }
    c->has_held = true;
    return 0;
}

/* Adds a finished reply holding one error (protocol errors). */
static void reply_error_slot(struct conn *c, const char *msg)
{
    struct cmd_req *r = slot_new(c, CMD_ORDER_FREE);
    if (r == NULL) {
        conn_close(c);
        return;
    }
    (void)resp_encode_error(&r->reply, msg, strlen(msg));
    r->done = true;
    r->close_after = true;
    conn_collect(c);
}

static void update_reading(struct conn *c);

/* Parses and dispatches as many requests as the ordering gate and the
 * pipeline limit allow, then starts writing what is ready. */
static void conn_process(struct conn *c)
{
    struct server *s = c->srv;
    size_t off = 0;
    if (c->in_process) {
        return;
    }
    c->in_process = true;
    while (!c->closing && !c->stop_parse) {
        if (c->has_held) {
            struct resp_request req = {c->held.argc, c->held.argv,
                                       c->held.argvlen, false};
            int order = cmd_order_of(&c->client, &req);
            if (!gate_open(c, order)) {
                break;
            }
            c->has_held = false;
            if (dispatch(c, &req, order) != 0) {
                conn_close(c);
            }
            free((void *)c->held.argv);
            memset(&c->held, 0, sizeof(c->held));
            continue;
        }
        if (c->n_pending >= s->env.opts.pipeline_max) {
            break;
        }
        if (off == c->in_len) {
            c->drained = true; /* nothing buffered: wait for input */
            break;
        }
        struct resp_request req;
        size_t used = 0;
        int rc =
            resp_parse(&c->parser, c->in + off, c->in_len - off, &req, &used);
        if (rc == RESP_INCOMPLETE) {
            off += used;
            c->drained = true;
            break;
        }
        c->drained = false;
        if (rc == RESP_ENOMEM) {
            conn_close(c);
            break;
        }
        if (rc != 0) {
            reply_error_slot(c, resp_parser_errmsg(&c->parser));
            c->stop_parse = true;
            break;
        }
        int order = cmd_order_of(&c->client, &req);
        int failed =
            gate_open(c, order) ? dispatch(c, &req, order) : hold(c, &req);
        off += used;
        if (failed != 0) {
            conn_close(c);
        }
    }
    if (off > 0) {
        memmove(c->in, c->in + off, c->in_len - off);
        c->in_len -= off;
    }
    if (c->in_len == 0) {
        c->partial_ms = 0;
    } else if (off > 0 || c->partial_ms == 0) {
        c->partial_ms = cmd_now_ms(); /* a new unfinished request */
    }
    if (c->in_len == 0 && c->in_cap > 4 * CONN_READ_CHUNK) {
        /* One big request must not pin its buffer for the connection's
         * life. */
        free(c->in);
        mem_release(c, c->in_cap);
        c->in = NULL;
        c->in_cap = 0;
    }
    c->in_process = false;
    conn_collect(c);
    update_reading(c);
    conn_flush(c);
    conn_maybe_close(c);
}

/* ---------------------------------------------------------------------- */
/* Input                                                                   */

static void on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
    struct conn *c = (struct conn *)h;
    (void)hint;
    if (c->in_cap - c->in_len < CONN_READ_CHUNK) {
        /* Grow geometrically, so a big request arriving in many reads is
         * copied O(log n) times, not O(n / chunk). */
        size_t cap = c->in_len + CONN_READ_CHUNK;
        if (cap < c->in_cap * 2) {
            cap = c->in_cap * 2;
        }
        if (!mem_charge(c, cap - c->in_cap, false)) {
            /* An unfinished request may not pin more than its share: the
             * client is told and disconnected (on_read). */
            *buf = uv_buf_init(NULL, 0); /* libuv reports UV_ENOBUFS */
            return;
        }
        char *p = realloc(c->in, cap);
        if (p == NULL) {
            mem_release(c, cap - c->in_cap);
            *buf = uv_buf_init(NULL, 0);
            return;
        }
        c->in = p;
        c->in_cap = cap;
    }
    *buf = uv_buf_init(c->in + c->in_len, (unsigned)(c->in_cap - c->in_len));
}

static void on_read(uv_stream_t *st, ssize_t nread, const uv_buf_t *buf)
{
    struct conn *c = (struct conn *)st;
    (void)buf;
    if (nread > 0) {
        c->in_len += (size_t)nread;
        conn_process(c);
    } else if (nread == UV_EOF) {
        c->eof = true;
        c->client.hung_up = true;
        update_reading(c);
        conn_process(c);
    } else if (nread == UV_ENOBUFS && c->mem_refused && !c->stop_parse) {
        /* After the replies already due, an error, then the close. */
        reply_error_slot(c,
                         "ERR request too large for this client's share "
                         "of the server's client memory "
                         "(max_client_memory)");
        c->stop_parse = true;
        update_reading(c);
        conn_flush(c);
        conn_maybe_close(c);
    } else if (nread < 0) {
        conn_close(c);
    }
}

static void update_reading(struct conn *c)
{
    bool want = !c->closing && !c->stop_parse && !c->eof && !c->has_held &&
                c->n_pending < c->srv->env.opts.pipeline_max;
    if (want && !c->reading) {
        int rv = c->tls != NULL
                     ? tls_stream_read_start(c->tls, on_alloc, on_read)
                     : uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
        if (rv == 0) {
            c->reading = true;
        } else {
            conn_close(c);
        }
    } else if (!want && c->reading) {
        if (c->tls != NULL) {
            tls_stream_read_stop(c->tls);
        } else if (!c->closing) {
            uv_read_stop((uv_stream_t *)&c->tcp);
        }
        c->reading = false;
    }
}

/* ---------------------------------------------------------------------- */
/* Accepting                                                               */

/* A client that is doing nothing: no request in flight or waiting, no
 * reply being written. */
static bool conn_is_idle(const struct conn *c)
{
    return !c->closing && c->n_pending == 0 && !c->has_held && !c->writing &&
           c->out_len == 0;
}

/* At max_clients: closes the client idle the longest, if it has been idle
 * for SERVER_EVICT_IDLE_MIN_MS, to make room for a new one. Returns true
 * if one was closed. */
static bool evict_idle(struct server *s, uint64_t now)
{
    unsigned looked = 0;
    for (struct conn *c = s->conns_tail;
         c != NULL && looked < SERVER_EVICT_SCAN_MAX; c = c->prev, looked++) {
        if (now - c->last_ms < SERVER_EVICT_IDLE_MIN_MS) {
            return false; /* the rest were active more recently */
        }
        if (c->counted && conn_is_idle(c)) {
            s->env.evicted_connections++;
            conn_close(c);
            return true;
        }
    }
    return false;
}

/* Writes "ip:port" of @sa into @out (empty if it is not IPv4 or IPv6). */
static void format_addr(const struct sockaddr_storage *sa,
                        char *out,
                        size_t cap)
{
    char ip[64] = "";
    int port = 0;
    if (sa->ss_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
        uv_ip4_name(in, ip, sizeof(ip));
        port = ntohs(in->sin_port);
    } else if (sa->ss_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;
        uv_ip6_name(in6, ip, sizeof(ip));
        port = ntohs(in6->sin6_port);
    }
    snprintf(out, cap, "%s:%d", ip, port);
}

/* Records the connection's addresses and socket for CLIENT LIST. */
static void conn_describe(struct conn *c)
{
    struct sockaddr_storage sa;
    int len = sizeof(sa);
    if (uv_tcp_getpeername(&c->tcp, (struct sockaddr *)&sa, &len) == 0) {
        format_addr(&sa, c->client.addr, sizeof(c->client.addr));
    }
    len = sizeof(sa);
    if (uv_tcp_getsockname(&c->tcp, (struct sockaddr *)&sa, &len) == 0) {
        format_addr(&sa, c->client.laddr, sizeof(c->client.laddr));
    }
    uv_os_fd_t fd;
    if (uv_fileno((const uv_handle_t *)&c->tcp, &fd) == 0) {
        c->client.fd = fd;
    }
}

static void on_connection(uv_stream_t *l, int status)
{
    struct server *s = l->data;
    if (status < 0) {
        /* Accepting failed (out of descriptors: libuv then accepts and
         * closes what waits in the backlog). The node is not affected. */
        s->env.rejected_connections++;
        return;
    }
    struct conn *c = calloc(1, sizeof(*c));
    if (c == NULL) {
        return; /* the connection stays in the backlog for a retry */
    }
    c->srv = s;
    if (uv_tcp_init(s->loop, &c->tcp) != 0) {
        free(c);
        return;
    }
    cmd_client_init(&c->client, &s->env);
    if (resp_parser_init(&c->parser, &s->env.opts.limits, NULL) != 0) {
        /* The limits were checked at start. */
        assert(0);
    }
    conns_push_front(s, c);
    s->n_conns++;
    c->last_ms = cmd_now_ms();
    if (uv_accept(l, (uv_stream_t *)&c->tcp) != 0) {
        conn_close(c);
        return;
    }
    s->env.total_connections++;
    if (s->env.opts.tls != NULL &&
        tls_stream_create(
            s->env.opts.tls, (uv_stream_t *)&c->tcp,
            s->env.opts.tls_auth_clients ? TLS_ACCEPT_CERT : TLS_ACCEPT, 0,
            &c->tls) != 0) {
        conn_close(c);
        return;
    }
    (void)uv_tcp_nodelay(&c->tcp, 1);
    (void)uv_tcp_keepalive(&c->tcp, 1, SERVER_KEEPALIVE_S);
    if (s->env.n_clients >= s->env.opts.max_clients) {
        (void)evict_idle(s, c->last_ms);
    }
    conn_describe(c);
    if (s->env.n_clients >= s->env.opts.max_clients) {
        static const char msg[] = "-ERR max number of clients reached\r\n";
        s->env.rejected_connections++;
        if (s->n_conns - s->env.n_clients > SERVER_REFUSING_MAX ||
            c->tls != NULL) {
            /* Enough refusals are being written already: this one is
             * closed at once, so its descriptor is freed at once. With
             * TLS the refusal could leave only after a handshake, which
             * a stranger need never finish. */
            conn_close(c);
            return;
        }
        c->stop_parse = true;
        (void)conn_stage(c, msg, sizeof(msg) - 1);
        conn_flush(c);
        conn_maybe_close(c);
        return;
    }
    c->counted = true;
    s->env.n_clients++;
    update_reading(c);
}

/* Closes idle clients and clients with a request unfinished for too long,
 * and releases snapshot exports nobody reads. */
/* CLIENT KILL: the connection stops taking requests, and closes once the
 * replies of those it took are out (at once if there are none). */
static void client_kill(struct cmd_client *cl)
{
    struct conn *c = conn_of(cl);
    c->stop_parse = true;
    conn_maybe_close(c);
}

static void on_timer(uv_timer_t *t)
{
    struct server *s = t->data;
    const struct server_options *o = &s->env.opts;
    uint64_t now = cmd_now_ms();
    struct conn *next;
    for (struct conn *c = s->conns; c != NULL; c = next) {
        next = c->next;
        if (o->export_idle_ms > 0 && c->client.exports != NULL &&
            c->n_pending == 0) {
            cmd_client_exports_expire(&c->client, now, o->export_idle_ms);
        }
        if (!conn_is_idle(c)) {
            continue;
        }
        if (o->idle_timeout_ms > 0 && now - c->last_ms >= o->idle_timeout_ms) {
            s->env.timedout_connections++;
            conn_close(c);
        } else if (o->request_timeout_ms > 0 && c->in_len > 0 &&
                   now - c->partial_ms >= o->request_timeout_ms) {
            s->env.timedout_connections++;
            conn_close(c);
        }
    }
}

/* How often on_timer runs: often enough for the shortest timeout. */
static uint64_t timer_every_ms(const struct server_options *o)
{
    uint64_t every = 1000;
    const uint64_t t[] = {o->idle_timeout_ms, o->request_timeout_ms,
                          o->export_idle_ms};
    for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
        if (t[i] > 0 && t[i] / 2 < every) {
            every = t[i] / 2;
        }
    }
    return every < 10 ? 10 : every;
}

static void on_handle_closed(uv_handle_t *h)
{
    struct server *s = h->data;
    s->handles_open--;
    server_maybe_stopped(s);
}

int server_start(uv_loop_t *loop,
                 struct bnode *node,
                 const struct server_options *opts,
                 struct server **out,
                 char *errmsg,
                 size_t errmsg_len)
{
    struct sockaddr_storage addr;
    char dummy[1];
    if (errmsg == NULL) {
        errmsg = dummy;
        errmsg_len = sizeof(dummy);
    }
    if (opts->max_clients == 0 || opts->pipeline_max == 0 ||
        opts->output_bytes_max == 0 || opts->limits.args_max == 0 ||
        opts->limits.bulk_bytes_max == 0 ||
        opts->limits.inline_bytes_max == 0 ||
        opts->limits.request_bytes_max == 0 || opts->port < 0 ||
        opts->port > 65535) {
        snprintf(errmsg, errmsg_len, "server: invalid options");
        return SERVER_EINVAL;
    }
    const char *host = opts->host ? opts->host : "0.0.0.0";
    if (uv_ip4_addr(host, opts->port, (struct sockaddr_in *)&addr) != 0 &&
        uv_ip6_addr(host, opts->port, (struct sockaddr_in6 *)&addr) != 0) {
        snprintf(errmsg, errmsg_len, "server: bad address %s", host);
        return SERVER_EINVAL;
    }
    struct server *s = calloc(1, sizeof(*s));
    char *host_copy = s ? strdup(host) : NULL;
    if (host_copy == NULL) {
        free(s);
        snprintf(errmsg, errmsg_len, "server: out of memory");
        return SERVER_ENOMEM;
    }
    s->loop = loop;
    s->env.loop = loop;
    s->env.node = node;
    s->env.opts = *opts;
    s->env.opts.host = host_copy;
    s->env.start_ms = cmd_now_ms();
    s->env.req_done = req_done;
    s->env.push = conn_push;
    s->env.mem_charge = env_mem_charge;
    s->env.mem_release = env_mem_release;
    s->env.client_kill = client_kill;
    if (acl_init(&s->env, errmsg, errmsg_len) != 0) {
        free(host_copy);
        free(s);
        return SERVER_EINVAL;
    }
    if (acl_limits_init(&s->env) != 0) {
        acl_close(&s->env);
        free(host_copy);
        free(s);
        snprintf(errmsg, errmsg_len, "server: out of memory");
        return SERVER_ENOMEM;
    }
    if (acl_audit_open(&s->env, errmsg, errmsg_len) != 0) {
        acl_limits_close(&s->env);
        acl_close(&s->env);
        free(host_copy);
        free(s);
        return SERVER_EINVAL;
    }
    uv_tcp_init(loop, &s->listener);
    s->listener.data = s;
    s->handles_open = 1;
    int rc = uv_tcp_bind(&s->listener, (const struct sockaddr *)&addr, 0);
    if (rc == 0) {
        rc = uv_listen((uv_stream_t *)&s->listener, 511, on_connection);
    }
    if (rc != 0) {
        snprintf(errmsg, errmsg_len, "server: listen on %s:%d: %s", host,
                 opts->port, uv_strerror(rc));
        /* Close the listener and free the server once libuv lets go. */
        s->stopping = true;
        uv_close((uv_handle_t *)&s->listener, on_handle_closed);
        return SERVER_ELISTEN;
    }
    struct sockaddr_storage bound;
    int blen = sizeof(bound);
    if (uv_tcp_getsockname(&s->listener, (struct sockaddr *)&bound, &blen) ==
        0) {
        s->env.port = ntohs(((struct sockaddr_in *)&bound)->sin_port);
    }
    uint64_t every = timer_every_ms(opts);
    uv_timer_init(loop, &s->timer);
    s->timer.data = s;
    s->timer_on = true;
    s->handles_open++;
    uv_timer_start(&s->timer, on_timer, every, every);
    *out = s;
    return 0;
}

int server_port(const struct server *srv)
{
    return srv->env.port;
}

unsigned server_clients(const struct server *srv)
{
    return srv->env.n_clients;
}

void server_stats(const struct server *srv, struct server_stats *out)
{
    const struct cmd_env *e = &srv->env;
    out->clients = e->n_clients;
    out->max_clients = e->opts.max_clients;
    out->connections_total = e->total_connections;
    out->rejected = e->rejected_connections;
    out->evicted = e->evicted_connections;
    out->timedout = e->timedout_connections;
    out->exports_expired = e->expired_exports;
    out->memory_used = e->mem_used;
    out->memory_refused = e->mem_refused;
    out->rate_limited_conn = e->rate_limited_conn;
    out->rate_limited_user = e->rate_limited_user;
    out->commands_total = e->total_commands;
    struct tls_stats ts = {0};
    if (e->opts.tls != NULL) {
        tls_ctx_stats(e->opts.tls, &ts);
    }
    out->tls_handshakes = ts.handshakes;
    out->tls_handshake_failures = ts.handshake_failures;
    out->tls_reloads = ts.reloads;
    out->tls_reload_failures = ts.reload_failures;
}

const struct histo *server_latency(const struct server *srv,
                                   enum server_req_class klass)
{
    return &srv->env
                .req_us[klass < SERVER_REQ_CLASSES ? klass : SERVER_REQ_OTHER];
}

void server_stop(struct server *s, void (*cb)(void *arg), void *arg)
{
    assert(!s->stopping);
    s->stopping = true;
    s->env.stopping = true;
    s->stop_cb = cb;
    s->stop_arg = arg;
    uv_close((uv_handle_t *)&s->listener, on_handle_closed);
    if (s->timer_on) {
        uv_close((uv_handle_t *)&s->timer, on_handle_closed);
    }
    /* Requests already dispatched finish and are answered; nothing new is
     * read. Connections close once their replies are written. */
    struct conn *next;
    for (struct conn *c = s->conns; c != NULL; c = next) {
        next = c->next;
        c->stop_parse = true;
        update_reading(c);
        conn_maybe_close(c);
    }
    server_maybe_stopped(s);
}
