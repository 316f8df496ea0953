/*
 * harness.c - see harness.h.
 */
#include "harness.h"

#include <arpa/inet.h>
#include <check.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

static void *loop_main(void *arg)
{
    struct harness *h = arg;
    uv_run(&h->loop, UV_RUN_DEFAULT);
    return NULL;
}

static void on_wake_closed(uv_handle_t *hd)
{
    (void)hd;
}

static void one_stopped(void *arg)
{
    struct harness *h = arg;
    if (--h->stops_pending == 0) {
        uv_close((uv_handle_t *)&h->wake, on_wake_closed);
    }
}

static void on_wake(uv_async_t *a)
{
    struct harness *h = a->data;
    if (h->stops_pending > 0) {
        return;
    }
    h->stops_pending = 2;
    /* The node is stopped right after the server, not after it finished:
     * that fails whatever the node still holds, so the server's stop can
     * complete. */
    server_stop(h->srv, one_stopped, h);
    bnode_stop(h->node, one_stopped, h);
}

void harness_start(struct harness *h, const struct server_options *opts)
{
    struct server_options def;
    char err[256];
    memset(h, 0, sizeof(*h));
    /* Writing to a socket the peer closed raises SIGPIPE; a server
     * ignores it and handles EPIPE (ballotd must do the same). */
    signal(SIGPIPE, SIG_IGN);
    snprintf(h->dir, sizeof(h->dir), "/tmp/ballot-srv-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(h->dir));
    ck_assert_int_eq(uv_loop_init(&h->loop), 0);
    ck_assert_int_eq(fake_bnode_create(&h->loop, h->dir, &h->node), 0);
    if (opts == NULL) {
        server_options_default(&def);
        def.host = "127.0.0.1";
        def.port = 0;
        opts = &def;
    }
    int rc = server_start(&h->loop, h->node, opts, &h->srv, err, sizeof(err));
    ck_assert_msg(rc == 0, "server_start: %s", err);
    h->port = server_port(h->srv);
    ck_assert_int_gt(h->port, 0);
    uv_async_init(&h->loop, &h->wake, on_wake);
    h->wake.data = h;
    ck_assert_int_eq(pthread_create(&h->thread, NULL, loop_main, h), 0);
}

void harness_stop(struct harness *h)
{
    char cmd[128];
    uv_async_send(&h->wake);
    pthread_join(h->thread, NULL);
    ck_assert_int_eq(uv_loop_close(&h->loop), 0);
    snprintf(cmd, sizeof(cmd), "rm -rf %s", h->dir);
    ck_assert_int_eq(system(cmd), 0);
}

void dbuf_put(struct dbuf *b, const void *p, size_t n)
{
    if (b->cap - b->len < n + 1) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap - b->len < n + 1) {
            cap *= 2;
        }
        b->data = realloc(b->data, cap);
        ck_assert_ptr_nonnull(b->data);
        b->cap = cap;
    }
    memcpy(b->data + b->len, p, n);
    b->len += n;
    b->data[b->len] = '\0';
}

void dbuf_free(struct dbuf *b)
{
    free(b->data);
    memset(b, 0, sizeof(*b));
}

void cli_open(struct cli *c, int port)
{
    struct sockaddr_in a;
    struct timeval tv = {5, 0};
    int one = 1;
    memset(c, 0, sizeof(*c));
    c->fd = socket(AF_INET, SOCK_STREAM, 0);
    ck_assert_int_ge(c->fd, 0);
    setsockopt(c->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    setsockopt(c->fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    memset(&a, 0, sizeof(a));
    a.sin_family = AF_INET;
    a.sin_port = htons((uint16_t)port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ck_assert_int_eq(connect(c->fd, (struct sockaddr *)&a, sizeof(a)), 0);
}

void cli_close(struct cli *c)
{
    if (c->fd >= 0) {
        close(c->fd);
    }
    c->fd = -1;
}

void cli_send(struct cli *c, const void *data, size_t len)
{
    const char *p = data;
    while (len > 0) {
        ssize_t n = send(c->fd, p, len, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            return; /* the tests check what the server did with it */
        }
        p += n;
        len -= (size_t)n;
    }
}

void cli_sendv(struct cli *c, int argc, const char **argv, const size_t *lens)
{
    struct dbuf b = {0};
    char hdr[64];
    int n = snprintf(hdr, sizeof(hdr), "*%d\r\n", argc);
    dbuf_put(&b, hdr, (size_t)n);
    for (int i = 0; i < argc; i++) {
        size_t len = lens ? lens[i] : strlen(argv[i]);
        n = snprintf(hdr, sizeof(hdr), "$%zu\r\n", len);
        dbuf_put(&b, hdr, (size_t)n);
        dbuf_put(&b, argv[i], len);
        dbuf_put(&b, "\r\n", 2);
    }
    cli_send(c, b.data, b.len);
    dbuf_free(&b);
}

void cli_send_line(struct cli *c, const char *line)
{
    char *copy = strdup(line);
    const char *argv[1024];
    int argc = 0;
    char *save = NULL;
    for (char *t = strtok_r(copy, " ", &save); t != NULL && argc < 1024;
         t = strtok_r(NULL, " ", &save)) {
        argv[argc++] = t;
    }
    cli_sendv(c, argc, argv, NULL);
    free(copy);
}

/* Makes at least one more byte available; -1 on EOF or timeout. */
static int fill(struct cli *c)
{
    if (c->off == c->len) {
        c->off = c->len = 0;
    }
    if (c->len == sizeof(c->buf)) {
        memmove(c->buf, c->buf + c->off, c->len - c->off);
        c->len -= c->off;
        c->off = 0;
    }
    ssize_t n;
    do {
        n = recv(c->fd, c->buf + c->len, sizeof(c->buf) - c->len, 0);
    } while (n < 0 && errno == EINTR);
    if (n <= 0) {
        return -1;
    }
    c->len += (size_t)n;
    return 0;
}

static int read_line(struct cli *c, struct dbuf *out, struct dbuf *line)
{
    for (;;) {
        for (size_t i = c->off; i + 1 < c->len; i++) {
            if (c->buf[i] == '\r' && c->buf[i + 1] == '\n') {
                size_t n = i + 2 - c->off;
                dbuf_put(out, c->buf + c->off, n);
                line->len = 0;
                dbuf_put(line, c->buf + c->off, n - 2);
                c->off += n;
                return 0;
            }
        }
        if (fill(c) != 0) {
            return -1;
        }
    }
}

static int read_bytes(struct cli *c, struct dbuf *out, size_t n)
{
    while (n > 0) {
        if (c->off == c->len && fill(c) != 0) {
            return -1;
        }
        size_t k = c->len - c->off < n ? c->len - c->off : n;
        dbuf_put(out, c->buf + c->off, k);
        c->off += k;
        n -= k;
    }
    return 0;
}

int cli_reply(struct cli *c, struct dbuf *out)
{
    struct dbuf line = {0};
    int rc = read_line(c, out, &line);
    if (rc != 0 || line.len == 0) {
        dbuf_free(&line);
        return -1;
    }
    char t = line.data[0];
    long long n = atoll(line.data + 1);
    dbuf_free(&line);
    switch (t) {
    case '$':
    case '=':
    case '!':
        return n < 0 ? 0 : read_bytes(c, out, (size_t)n + 2);
    case '*':
    case '~':
    case '>':
    case '%':
        if (t == '%') {
            n *= 2;
        }
        for (long long i = 0; i < n; i++) {
            if (cli_reply(c, out) != 0) {
                return -1;
            }
        }
        return 0;
    default:
        return 0;
    }
}

bool cli_closed(struct cli *c)
{
    while (c->off < c->len) {
        c->off = c->len; /* unread replies do not count */
    }
    return fill(c) != 0;
}

/* Per thread: tests drive several clients from several threads. */
static _Thread_local struct dbuf last;

const char *q(struct cli *c, const char *line)
{
    cli_send_line(c, line);
    last.len = 0;
    dbuf_put(&last, "", 0);
    if (cli_reply(c, &last) != 0) {
        return "<closed>";
    }
    return last.data;
}

const char *qv(struct cli *c, int argc, const char **argv, const size_t *lens)
{
    cli_sendv(c, argc, argv, lens);
    last.len = 0;
    dbuf_put(&last, "", 0);
    if (cli_reply(c, &last) != 0) {
        return "<closed>";
    }
    return last.data;
}

void q_release(void)
{
    dbuf_free(&last);
}
