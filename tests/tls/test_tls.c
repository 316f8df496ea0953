/*
 * test_tls.c - the TLS layer over libuv streams (net/tls): a client and a
 * server on one loop over 127.0.0.1, with certificates made by
 * scripts/tls-certs.sh; refused certificates (none, another CA, expired,
 * another member id), reloading, plaintext held while the owner does not
 * read, and the member-id parser.
 *
 * Each test runs its own loop and ends with uv_loop_close() == 0, so a
 * leaked handle fails it; every wait is bounded by a watchdog.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tls.h"
#include "tls_certs.h"

#define WAIT_MS 10000
#define BIG_BYTES (40u * 1024u) /* three records, one read */

/* One end of a connection. */
struct end
{
    uv_tcp_t tcp; /* first: a handle pointer is an end pointer */
    struct tls_stream *tls;
    char *in;
    size_t in_len;
    size_t in_cap;
    ssize_t err; /* the first negative nread */
    bool closed;
    unsigned writes_ok;
    unsigned writes_failed;
    /* Stop reading after this many bytes (0: never). */
    size_t pause_at;
    bool paused;
};

static uv_loop_t loop;
static uv_timer_t watchdog;
static uv_tcp_t listener;
static bool listening;
static int port;
static bool expired;
static struct tls_ctx *srv_ctx;
static enum tls_role srv_role;
static struct end srv;  /* the accepted end */
static struct end cli;  /* the dialing end */
static struct end srv2; /* a second accepted end (reload test) */
static struct end *next_accept;
static uv_connect_t connect_req;

static void on_watchdog(uv_timer_t *t)
{
    (void)t;
    expired = true;
}

static bool run_until(bool (*pred)(void), unsigned ms)
{
    expired = false;
    uv_timer_start(&watchdog, on_watchdog, ms, 0);
    while (!pred() && !expired) {
        uv_run(&loop, UV_RUN_ONCE);
    }
    uv_timer_stop(&watchdog);
    return pred();
}

static void on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
    struct end *e = (struct end *)h;
    if (e->in_cap - e->in_len < hint) {
        e->in_cap = e->in_len + hint;
        e->in = realloc(e->in, e->in_cap);
        ck_assert_ptr_nonnull(e->in);
    }
    *buf = uv_buf_init(e->in + e->in_len, (unsigned)(e->in_cap - e->in_len));
}

static void on_read(uv_stream_t *st, ssize_t nread, const uv_buf_t *buf)
{
    struct end *e = (struct end *)st;
    (void)buf;
    if (nread < 0) {
        if (e->err == 0) {
            e->err = nread;
        }
        if (!uv_is_closing((uv_handle_t *)st)) {
            tls_stream_read_stop(e->tls);
        }
        return;
    }
    e->in_len += (size_t)nread;
    if (e->pause_at > 0 && e->in_len >= e->pause_at && !e->paused) {
        e->paused = true;
        tls_stream_read_stop(e->tls);
    }
}

static void on_closed(uv_handle_t *h)
{
    struct end *e = (struct end *)h;
    tls_stream_destroy(e->tls);
    e->tls = NULL;
    e->closed = true;
}

static void end_close(struct end *e)
{
    if (!uv_is_closing((uv_handle_t *)&e->tcp)) {
        uv_close((uv_handle_t *)&e->tcp, on_closed);
    }
}

static void on_written(uv_write_t *w, int status)
{
    struct end *e = w->data;
    if (status == 0) {
        e->writes_ok++;
    } else {
        e->writes_failed++;
    }
    free(w);
}

static void end_write(struct end *e, const char *data, size_t len)
{
    uv_write_t *w = malloc(sizeof(*w));
    ck_assert_ptr_nonnull(w);
    w->data = e;
    uv_buf_t b = uv_buf_init((char *)data, (unsigned)len);
    ck_assert_int_eq(tls_stream_write(e->tls, w, &b, 1, on_written), 0);
}

static void on_connection(uv_stream_t *l, int status)
{
    ck_assert_int_eq(status, 0);
    struct end *e = next_accept;
    ck_assert_ptr_nonnull(e);
    next_accept = NULL;
    ck_assert_int_eq(uv_tcp_init(&loop, &e->tcp), 0);
    ck_assert_int_eq(uv_accept(l, (uv_stream_t *)&e->tcp), 0);
    ck_assert_int_eq(tls_stream_create(srv_ctx, (uv_stream_t *)&e->tcp,
                                       srv_role, 0, &e->tls),
                     0);
    ck_assert_int_eq(tls_stream_read_start(e->tls, on_alloc, on_read), 0);
}

/* Makes a context from files of the test certificates (@cert NULL: no
 * certificate). */
static struct tls_ctx *ctx_of(const char *sub, const char *cert, const char *ca)
{
    char c[512], k[512], a[512];
    struct tls_ctx *t = NULL;
    char err[512] = "";
    if (cert != NULL) {
        tls_certs_pair(sub, cert, c, k, sizeof(c));
    }
    tls_certs_path(a, sizeof(a), ca, "ca.crt");
    struct tls_options o = {cert != NULL ? c : NULL, cert != NULL ? k : NULL,
                            a};
    int rv = tls_ctx_create(&loop, &o, &t, err, sizeof(err));
    ck_assert_msg(rv == 0, "%s", err);
    return t;
}

static void serve(struct tls_ctx *ctx, enum tls_role role)
{
    srv_ctx = ctx;
    srv_role = role;
    ck_assert_int_eq(uv_tcp_init(&loop, &listener), 0);
    listening = true;
    struct sockaddr_in a;
    uv_ip4_addr("127.0.0.1", 0, &a);
    ck_assert_int_eq(uv_tcp_bind(&listener, (struct sockaddr *)&a, 0), 0);
    ck_assert_int_eq(uv_listen((uv_stream_t *)&listener, 8, on_connection), 0);
    struct sockaddr_storage bound;
    int len = sizeof(bound);
    uv_tcp_getsockname(&listener, (struct sockaddr *)&bound, &len);
    port = ntohs(((struct sockaddr_in *)&bound)->sin_port);
}

struct dial
{
    struct end *e;
    struct tls_ctx *ctx;
    uint64_t expect;
    const char *first; /* written at once, before the handshake is over */
};

static struct dial the_dial;

static void on_connect(uv_connect_t *req, int status)
{
    struct dial *d = req->data;
    ck_assert_int_eq(status, 0);
    ck_assert_int_eq(tls_stream_create(d->ctx, (uv_stream_t *)&d->e->tcp,
                                       TLS_CONNECT, d->expect, &d->e->tls),
                     0);
    ck_assert_int_eq(tls_stream_read_start(d->e->tls, on_alloc, on_read), 0);
    if (d->first != NULL) {
        /* In three writes, which must arrive whole and in order. */
        size_t n = strlen(d->first);
        end_write(d->e, d->first, 1);
        end_write(d->e, d->first + 1, n / 2);
        end_write(d->e, d->first + 1 + n / 2, n - 1 - n / 2);
    }
}

static void dial(struct end *e,
                 struct end *accepted,
                 struct tls_ctx *ctx,
                 uint64_t expect,
                 const char *first)
{
    next_accept = accepted;
    the_dial = (struct dial){e, ctx, expect, first};
    ck_assert_int_eq(uv_tcp_init(&loop, &e->tcp), 0);
    struct sockaddr_in a;
    uv_ip4_addr("127.0.0.1", port, &a);
    connect_req.data = &the_dial;
    ck_assert_int_eq(uv_tcp_connect(&connect_req, &e->tcp,
                                    (struct sockaddr *)&a, on_connect),
                     0);
}

static struct end *want_end;
static size_t want_len;

static bool end_has(void)
{
    return want_end->in_len >= want_len;
}

static bool end_failed(void)
{
    return want_end->err < 0;
}

static bool both_failed_or_refused(void)
{
    return cli.err < 0 && srv.err < 0;
}

static void expect_bytes(struct end *e, const char *text)
{
    want_end = e;
    want_len = strlen(text);
    ck_assert_msg(run_until(end_has, WAIT_MS), "got %zu of %zu bytes",
                  e->in_len, want_len);
    ck_assert_uint_eq(e->in_len, want_len);
    ck_assert_int_eq(memcmp(e->in, text, want_len), 0);
}

static void setup(void)
{
    ck_assert_int_eq(uv_loop_init(&loop), 0);
    ck_assert_int_eq(uv_timer_init(&loop, &watchdog), 0);
    memset(&srv, 0, sizeof(srv));
    memset(&srv2, 0, sizeof(srv2));
    memset(&cli, 0, sizeof(cli));
}

static void teardown(void)
{
    struct end *ends[] = {&srv, &srv2, &cli};
    for (size_t i = 0; i < 3; i++) {
        if (ends[i]->tcp.loop != NULL) {
            end_close(ends[i]);
        }
    }
    if (listening) {
        uv_close((uv_handle_t *)&listener, NULL);
        listening = false;
    }
    uv_close((uv_handle_t *)&watchdog, NULL);
    uv_run(&loop, UV_RUN_DEFAULT);
    for (size_t i = 0; i < 3; i++) {
        free(ends[i]->in);
    }
    tls_ctx_destroy(srv_ctx);
    srv_ctx = NULL;
    uv_run(&loop, UV_RUN_DEFAULT);
    ck_assert_int_eq(uv_loop_close(&loop), 0);
}

/* A client with a certificate of the CA talks to a server that requires
 * one, both ways; writes made before the handshake arrive whole and in
 * order; each side sees the other's member id. */
START_TEST(test_tls_a_client_with_a_certificate_of_the_ca_talks_both_ways)
{
    serve(ctx_of("a", "node-1", "a"), TLS_ACCEPT_CERT);
    struct tls_ctx *c = ctx_of("a", "node-2", "a");
    dial(&cli, &srv, c, 1, "hello, server");
    expect_bytes(&srv, "hello, server");
    ck_assert_uint_eq(cli.writes_ok, 3);
    end_write(&srv, "hello, client", 13);
    expect_bytes(&cli, "hello, client");
    uint64_t id = 0;
    ck_assert_int_eq(tls_stream_member(srv.tls, &id), 0);
    ck_assert_uint_eq(id, 2);
    ck_assert_int_eq(tls_stream_member(cli.tls, &id), 0);
    ck_assert_uint_eq(id, 1);
    struct tls_stats st;
    tls_ctx_stats(srv_ctx, &st);
    ck_assert_uint_eq(st.handshakes, 1);
    ck_assert_uint_eq(st.handshake_failures, 0);
    end_close(&cli);
    end_close(&srv);
    uv_run(&loop, UV_RUN_NOWAIT);
    tls_ctx_destroy(c);
}
END_TEST

/* Connects a client made from @sub/@cert (trusting @ca) and checks that
 * the server refuses it: the server gets no byte of plaintext, the client
 * is told, and the server counts a failed handshake. (With TLS 1.3 the
 * client finishes its side before the server checks its certificate, so
 * its first writes may leave; the server never decrypts them.) */
static void expect_refused(const char *sub, const char *cert, const char *ca)
{
    struct tls_ctx *c = ctx_of(sub, cert, ca);
    dial(&cli, &srv, c, 0, "secret data");
    ck_assert(run_until(both_failed_or_refused, WAIT_MS));
    ck_assert_uint_eq(srv.in_len, 0);
    ck_assert_uint_eq(cli.in_len, 0);
    end_close(&cli);
    end_close(&srv);
    uv_run(&loop, UV_RUN_NOWAIT);
    ck_assert_uint_eq(cli.writes_ok + cli.writes_failed, 3);
    struct tls_stats st;
    tls_ctx_stats(srv_ctx, &st);
    ck_assert_uint_eq(st.handshakes, 0);
    ck_assert_uint_eq(st.handshake_failures, 1);
    tls_ctx_destroy(c);
}

/* A server that requires a certificate refuses a client without one. */
START_TEST(test_tls_refuses_a_client_without_a_certificate)
{
    serve(ctx_of("a", "node-1", "a"), TLS_ACCEPT_CERT);
    expect_refused("a", NULL, "a");
}
END_TEST

/* A client certificate of another CA is refused, even where a certificate
 * is optional. */
START_TEST(test_tls_refuses_a_certificate_of_another_ca)
{
    serve(ctx_of("a", "node-1", "a"), TLS_ACCEPT);
    expect_refused("b", "client", "a");
}
END_TEST

/* An expired certificate of the right CA is refused. */
START_TEST(test_tls_refuses_an_expired_certificate)
{
    serve(ctx_of("a", "node-1", "a"), TLS_ACCEPT_CERT);
    expect_refused("expired", "client", "a");
}
END_TEST

/* Dials with @c (expecting member @expect) and checks that the dialer
 * hangs up on the server before a byte of its plaintext leaves: its writes
 * are cancelled and it counts a failed handshake. */
static void expect_dialer_refuses(struct tls_ctx *c, uint64_t expect)
{
    dial(&cli, &srv, c, expect, "secret data");
    want_end = &cli;
    ck_assert(run_until(end_failed, WAIT_MS));
    end_close(&cli);
    want_end = &srv;
    ck_assert(run_until(end_failed, WAIT_MS));
    ck_assert_uint_eq(srv.in_len, 0);
    end_close(&srv);
    uv_run(&loop, UV_RUN_NOWAIT);
    ck_assert_uint_eq(cli.writes_ok, 0);
    ck_assert_uint_eq(cli.writes_failed, 3);
    struct tls_stats st;
    tls_ctx_stats(c, &st);
    ck_assert_uint_eq(st.handshake_failures, 1);
    tls_ctx_destroy(c);
}

/* A client that does not trust the server's CA hangs up before sending a
 * byte of plaintext. */
START_TEST(test_tls_a_client_refuses_a_server_of_another_ca)
{
    serve(ctx_of("b", "node-1", "b"), TLS_ACCEPT);
    expect_dialer_refuses(ctx_of("a", "client", "a"), 0);
}
END_TEST

/* A dialer that expects member 2 refuses a server whose valid certificate
 * names member 1: one member's certificate cannot stand in for another. */
START_TEST(test_tls_a_dialer_refuses_a_certificate_naming_another_member)
{
    serve(ctx_of("a", "node-1", "a"), TLS_ACCEPT_CERT);
    expect_dialer_refuses(ctx_of("a", "node-3", "a"), 2);
}
END_TEST

static bool srv2_has_failed_or_data(void)
{
    return srv2.err < 0 || cli.err < 0 || srv2.in_len > 0;
}

static void copy_file(const char *from, const char *to)
{
    char cmd[1200];
    snprintf(cmd, sizeof(cmd), "cp %s %s", from, to);
    ck_assert_int_eq(system(cmd), 0);
}

/* Reloading takes new files for new connections and leaves the
 * connections already up alone; files that do not load leave the old ones
 * in use. */
START_TEST(test_tls_reload_serves_new_connections_and_keeps_old_ones)
{
    char dir[256], crt[300], key[300], ca[300], src[512];
    snprintf(dir, sizeof(dir), "/tmp/ballot-tls-reload-%d", (int)getpid());
    snprintf(crt, sizeof(crt), "%s/node.crt", dir);
    snprintf(key, sizeof(key), "%s/node.key", dir);
    snprintf(ca, sizeof(ca), "%s/ca.crt", dir);
    char cmd[600];
    snprintf(cmd, sizeof(cmd), "mkdir -p %s", dir);
    ck_assert_int_eq(system(cmd), 0);
    tls_certs_path(src, sizeof(src), "a", "node-1.crt");
    copy_file(src, crt);
    tls_certs_path(src, sizeof(src), "a", "node-1.key");
    copy_file(src, key);
    tls_certs_path(src, sizeof(src), "a", "ca.crt");
    copy_file(src, ca);
    struct tls_options o = {crt, key, ca};
    char err[512] = "";
    struct tls_ctx *s = NULL;
    ck_assert_int_eq(tls_ctx_create(&loop, &o, &s, err, sizeof(err)), 0);
    serve(s, TLS_ACCEPT_CERT);

    struct tls_ctx *ca_a = ctx_of("a", "client", "a");
    struct tls_ctx *ca_b = ctx_of("b", "client", "b");
    dial(&cli, &srv, ca_a, 0, "before");
    expect_bytes(&srv, "before");

    /* Files that do not load: refused, the old ones stay. */
    ck_assert_int_eq(truncate(key, 10), 0);
    ck_assert_int_eq(tls_ctx_reload(s, err, sizeof(err)), TLS_EFILE);
    ck_assert_ptr_nonnull(strstr(err, "key"));

    /* Switch the node to CA b's certificate and trust. */
    tls_certs_path(src, sizeof(src), "b", "node-1.crt");
    copy_file(src, crt);
    tls_certs_path(src, sizeof(src), "b", "node-1.key");
    copy_file(src, key);
    tls_certs_path(src, sizeof(src), "b", "ca.crt");
    copy_file(src, ca);
    ck_assert_int_eq(tls_ctx_reload(s, err, sizeof(err)), 0);
    struct tls_stats st;
    tls_ctx_stats(s, &st);
    ck_assert_uint_eq(st.reloads, 1);
    ck_assert_uint_eq(st.reload_failures, 1);

    /* The connection made before still works, both ways. */
    end_write(&cli, " and after", 10);
    expect_bytes(&srv, "before and after");
    end_write(&srv, "ok", 2);
    expect_bytes(&cli, "ok");

    /* A new client of CA b gets in. */
    end_close(&cli);
    uv_run(&loop, UV_RUN_NOWAIT);
    free(cli.in);
    memset(&cli, 0, sizeof(cli));
    dial(&cli, &srv2, ca_b, 0, "new");
    ck_assert(run_until(srv2_has_failed_or_data, WAIT_MS));
    expect_bytes(&srv2, "new");
    end_close(&cli);
    end_close(&srv2);
    uv_run(&loop, UV_RUN_NOWAIT);
    tls_ctx_destroy(ca_a);
    tls_ctx_destroy(ca_b);
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    ck_assert_int_eq(system(cmd), 0);
}
END_TEST

static bool srv_paused(void)
{
    return srv.paused;
}

/* An owner that stops reading in the middle of received records gets the
 * rest once it reads again, though the socket has nothing more to say. */
START_TEST(test_tls_plaintext_held_while_not_reading_arrives_later)
{
    serve(ctx_of("a", "node-1", "a"), TLS_ACCEPT_CERT);
    struct tls_ctx *c = ctx_of("a", "client", "a");
    char *big = malloc(BIG_BYTES + 1);
    ck_assert_ptr_nonnull(big);
    for (size_t i = 0; i < BIG_BYTES; i++) {
        big[i] = (char)('a' + i % 26);
    }
    big[BIG_BYTES] = '\0';
    srv.pause_at = 1000;
    dial(&cli, &srv, c, 0, big);
    ck_assert(run_until(srv_paused, WAIT_MS));
    /* Let everything the client sent arrive and sit unread. */
    want_end = &cli;
    want_len = 0;
    expired = false;
    uv_timer_start(&watchdog, on_watchdog, 300, 0);
    while (!expired) {
        uv_run(&loop, UV_RUN_ONCE);
    }
    ck_assert_uint_lt(srv.in_len, BIG_BYTES);
    ck_assert_int_eq(tls_stream_read_start(srv.tls, on_alloc, on_read), 0);
    expect_bytes(&srv, big);
    free(big);
    end_close(&cli);
    end_close(&srv);
    uv_run(&loop, UV_RUN_NOWAIT);
    tls_ctx_destroy(c);
}
END_TEST

/* The member id is "member-" and a decimal id, exactly: anything else,
 * however close, names no member. */
START_TEST(test_tls_member_ids_are_parsed_strictly)
{
    static const struct
    {
        const char *cn;
        size_t len; /* 0: strlen */
        int rv;
        uint64_t id;
    } cases[] = {
        {"member-1", 0, 0, 1},
        {"member-42", 0, 0, 42},
        {"member-18446744073709551615", 0, 0, UINT64_MAX},
        {"member-18446744073709551616", 0, TLS_ENOID, 0}, /* overflow */
        {"member-99999999999999999999", 0, TLS_ENOID, 0},
        {"member-0", 0, TLS_ENOID, 0},
        {"member-01", 0, TLS_ENOID, 0},
        {"member-", 0, TLS_ENOID, 0},
        {"member-+1", 0, TLS_ENOID, 0},
        {"member--1", 0, TLS_ENOID, 0},
        {"member- 1", 0, TLS_ENOID, 0},
        {"member-1 ", 0, TLS_ENOID, 0},
        {"member-1x", 0, TLS_ENOID, 0},
        {"member-1\0002", 10, TLS_ENOID, 0}, /* a NUL inside */
        {"Member-1", 0, TLS_ENOID, 0},
        {"member_1", 0, TLS_ENOID, 0},
        {"xmember-1", 0, TLS_ENOID, 0},
        {"1", 0, TLS_ENOID, 0},
        {"", 0, TLS_ENOID, 0},
        {"member-1000000000000000000000000000000000000000000000000000000001", 0,
         TLS_ENOID, 0}, /* longer than TLS_CN_MAX */
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        uint64_t id = 7;
        size_t len = cases[i].len != 0 ? cases[i].len : strlen(cases[i].cn);
        int rv = tls_member_parse(cases[i].cn, len, &id);
        ck_assert_msg(rv == cases[i].rv, "case %zu (%s): %d", i, cases[i].cn,
                      rv);
        ck_assert_uint_eq(id, rv == 0 ? cases[i].id : 7);
    }
    uint64_t id;
    ck_assert_int_eq(tls_member_parse(NULL, 0, &id), TLS_ENOID);
}
END_TEST

/* Every error code has its own text. */
START_TEST(test_tls_strerror_names_every_code)
{
    const int codes[] = {TLS_EINVAL, TLS_ENOMEM, TLS_EFILE, TLS_ENOID,
                         TLS_EPROTO};
    for (size_t i = 0; i < sizeof(codes) / sizeof(codes[0]); i++) {
        ck_assert_str_ne(tls_strerror(codes[i]), "tls: unknown error");
    }
    ck_assert_str_eq(tls_strerror(1), "tls: unknown error");
}
END_TEST

/* Files that do not make a context are reported, with the file named. */
START_TEST(test_tls_context_reports_unusable_files)
{
    char err[512] = "";
    char ca[512];
    tls_certs_path(ca, sizeof(ca), "a", "ca.crt");
    struct tls_options o = {"/nonexistent/node.crt", "/nonexistent/node.key",
                            ca};
    struct tls_ctx *t = NULL;
    ck_assert_int_eq(tls_ctx_create(&loop, &o, &t, err, sizeof(err)),
                     TLS_EFILE);
    ck_assert_ptr_nonnull(strstr(err, "/nonexistent/node.crt"));
    /* A key that is not the certificate's. */
    char crt[512], key[512];
    tls_certs_path(crt, sizeof(crt), "a", "node-1.crt");
    tls_certs_path(key, sizeof(key), "a", "node-2.key");
    o = (struct tls_options){crt, key, ca};
    ck_assert_int_eq(tls_ctx_create(&loop, &o, &t, err, sizeof(err)),
                     TLS_EFILE);
    ck_assert_msg(strstr(err, "node-2.key") != NULL, "%s", err);
    o = (struct tls_options){crt, NULL, ca};
    ck_assert_int_eq(tls_ctx_create(&loop, &o, &t, err, sizeof(err)),
                     TLS_EINVAL);
}
END_TEST

static Suite *tls_suite(void)
{
    Suite *s = suite_create("tls");
    TCase *tc = tcase_create("tls");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(
        tc, test_tls_a_client_with_a_certificate_of_the_ca_talks_both_ways);
    tcase_add_test(tc, test_tls_refuses_a_client_without_a_certificate);
    tcase_add_test(tc, test_tls_refuses_a_certificate_of_another_ca);
    tcase_add_test(tc, test_tls_refuses_an_expired_certificate);
    tcase_add_test(tc, test_tls_a_client_refuses_a_server_of_another_ca);
    tcase_add_test(
        tc, test_tls_a_dialer_refuses_a_certificate_naming_another_member);
    tcase_add_test(tc,
                   test_tls_reload_serves_new_connections_and_keeps_old_ones);
    tcase_add_test(tc, test_tls_plaintext_held_while_not_reading_arrives_later);
    tcase_add_test(tc, test_tls_member_ids_are_parsed_strictly);
    tcase_add_test(tc, test_tls_strerror_names_every_code);
    tcase_add_test(tc, test_tls_context_reports_unusable_files);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    tls_certs_make();
    SRunner *sr = srunner_create(tls_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    tls_certs_remove();
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
