/*
 * test_connections.c - what the client port does with connections:
 * pipelining and reply order under reordered completions, node errors,
 * atomicity across connections, every limit, malformed input, clients
 * that vanish with requests pending, graceful stop, and redis-cli.
 */
#include <check.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"

static struct harness h;
static struct cli c;

static void setup(void)
{
    harness_start(&h, NULL);
    cli_open(&c, h.port);
}

static void teardown(void)
{
    cli_close(&c);
    harness_stop(&h);
}

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* Reads until the server closes the connection; false on a timeout. */
static bool wait_closed(struct cli *k)
{
    char buf[65536];
    for (int i = 0; i < 2000; i++) {
        ssize_t n = recv(k->fd, buf, sizeof(buf), 0);
        if (n == 0) {
            return true;
        }
        if (n < 0) {
            /* A reset (unread data at close) is a close too; a timeout
             * is not. */
            return errno == ECONNRESET;
        }
    }
    return false;
}

#define EQ(k, line, want) ck_assert_str_eq(q(k, line), want)

/* 1000 pipelined requests in one write, completions delivered newest
 * first: replies come back in request order, and every GET sees the SET
 * sent before it. */
START_TEST(test_connections_pipeline_keeps_order_under_reordered_completions)
{
    struct dbuf req = {0};
    struct dbuf got = {0};
    struct dbuf want = {0};
    char line[128];
    fake_bnode_set_reorder(h.node, true);
    for (int i = 0; i < 500; i++) {
        int n =
            snprintf(line, sizeof(line),
                     "*3\r\n$3\r\nSET\r\n$2\r\np%d\r\n$%d\r\n%d\r\n", i % 10,
                     i < 10    ? 1
                     : i < 100 ? 2
                               : 3,
                     i);
        dbuf_put(&req, line, (size_t)n);
        n = snprintf(line, sizeof(line), "*2\r\n$3\r\nGET\r\n$2\r\np%d\r\n",
                     i % 10);
        dbuf_put(&req, line, (size_t)n);
        n = snprintf(line, sizeof(line), "+OK\r\n$%d\r\n%d\r\n",
                     i < 10    ? 1
                     : i < 100 ? 2
                               : 3,
                     i);
        dbuf_put(&want, line, (size_t)n);
    }
    cli_send(&c, req.data, req.len);
    for (int i = 0; i < 1000; i++) {
        ck_assert_int_eq(cli_reply(&c, &got), 0);
    }
    ck_assert_uint_eq(got.len, want.len);
    ck_assert_int_eq(memcmp(got.data, want.data, want.len), 0);
    /* Pipelined INCRs: each sees the one before it. */
    req.len = got.len = 0;
    for (int i = 0; i < 100; i++) {
        dbuf_put(&req, "INCR ctr\r\n", 10);
    }
    cli_send(&c, req.data, req.len);
    for (int i = 1; i <= 100; i++) {
        got.len = 0;
        ck_assert_int_eq(cli_reply(&c, &got), 0);
        snprintf(line, sizeof(line), ":%d\r\n", i);
        ck_assert_str_eq(got.data, line);
    }
    dbuf_free(&req);
    dbuf_free(&got);
    dbuf_free(&want);
}
END_TEST

/* A pipelined WATCH/MULTI/EXEC in one write runs in order. */
START_TEST(test_connections_pipelined_transaction_runs_in_order)
{
    const char *msg =
        "SET a 1\r\nWATCH a\r\nMULTI\r\nINCR a\r\nGET a\r\n"
        "EXEC\r\nGET a\r\n";
    struct dbuf got = {0};
    cli_send(&c, msg, strlen(msg));
    for (int i = 0; i < 7; i++) {
        ck_assert_int_eq(cli_reply(&c, &got), 0);
    }
    ck_assert_str_eq(got.data,
                     "+OK\r\n+OK\r\n+OK\r\n+QUEUED\r\n+QUEUED\r\n"
                     "*2\r\n:2\r\n$1\r\n2\r\n$1\r\n2\r\n");
    dbuf_free(&got);
}
END_TEST

/* Inline requests work like multibulk ones. */
START_TEST(test_connections_inline_requests)
{
    struct dbuf got = {0};
    const char *msg = "PING\r\nSET a \"x y\"\r\nGET a\r\n";
    cli_send(&c, msg, strlen(msg));
    for (int i = 0; i < 3; i++) {
        ck_assert_int_eq(cli_reply(&c, &got), 0);
    }
    ck_assert_str_eq(got.data, "+PONG\r\n+OK\r\n$3\r\nx y\r\n");
    dbuf_free(&got);
}
END_TEST

/* Errors from the node say whether the write may have happened. */
START_TEST(test_connections_node_errors_tell_applied_from_unknown)
{
    fake_bnode_set_mode(h.node, FAKE_NOTLEADER);
    EQ(&c, "SET k v", "-NOTLEADER leader is at 127.0.0.1:7391\r\n");
    EQ(&c, "INCR k", "-NOTLEADER leader is at 127.0.0.1:7391\r\n");
    EQ(&c, "DEL k", "-NOTLEADER leader is at 127.0.0.1:7391\r\n");
    fake_bnode_set_mode(h.node, FAKE_NOLEADER);
    EQ(&c, "SET k v", "-NOTLEADER no leader known, retry\r\n");
    fake_bnode_set_mode(h.node, FAKE_BUSY);
    EQ(&c, "SET k v",
       "-BUSY too much uncommitted work, not applied: retry later\r\n");
    fake_bnode_set_mode(h.node, FAKE_DROPPED);
    EQ(&c, "SET k v",
       "-DROPPED the write was overwritten by a new leader and not "
       "applied: retry\r\n");
    fake_bnode_set_mode(h.node, FAKE_UNKNOWN);
    EQ(&c, "SET k v",
       "-UNKNOWN outcome unknown: leadership changed before the write was "
       "confirmed; it may or may not have been applied\r\n");
    fake_bnode_set_mode(h.node, FAKE_NOREAD);
    EQ(&c, "GET k",
       "-TRYAGAIN the read could not be confirmed (no leader or leadership "
       "changed): retry\r\n");
    /* READONLY reads this node's state without a barrier through the
     * leader: the unknown-outcome write above did land. */
    EQ(&c, "READONLY", "+OK\r\n");
    EQ(&c, "GET k", "$1\r\nv\r\n");
    EQ(&c, "READWRITE", "+OK\r\n");
    fake_bnode_set_mode(h.node, FAKE_OK);
    EQ(&c, "GET k", "$1\r\nv\r\n");
}
END_TEST

struct incr_worker
{
    int port;
    int n;
    long long seen[400];
};

static void *incr_main(void *arg)
{
    struct incr_worker *w = arg;
    struct cli k;
    cli_open(&k, w->port);
    for (int i = 0; i < w->n; i++) {
        const char *r = q(&k, "INCR shared");
        w->seen[i] = r[0] == ':' ? atoll(r + 1) : -1;
    }
    cli_close(&k);
    q_release();
    return NULL;
}

/* Two connections increment one key concurrently: no increment is lost
 * and no value is handed out twice. */
START_TEST(test_connections_incr_is_atomic_across_connections)
{
    static struct incr_worker w[2];
    pthread_t t[2];
    for (int i = 0; i < 2; i++) {
        w[i].port = h.port;
        w[i].n = 400;
        pthread_create(&t[i], NULL, incr_main, &w[i]);
    }
    for (int i = 0; i < 2; i++) {
        pthread_join(t[i], NULL);
    }
    static bool hit[801];
    for (int i = 0; i < 2; i++) {
        long long prev = 0;
        for (int j = 0; j < 400; j++) {
            long long v = w[i].seen[j];
            ck_assert_msg(v >= 1 && v <= 800, "reply %lld", v);
            ck_assert(!hit[v]);
            ck_assert(v > prev);
            hit[v] = true;
            prev = v;
        }
    }
    EQ(&c, "GET shared", "$3\r\n800\r\n");
}
END_TEST

/* Clients over max_clients are told so and closed; others keep working. */
START_TEST(test_connections_max_clients)
{
    struct server_options o;
    struct cli a, b;
    teardown();
    server_options_default(&o);
    o.host = "127.0.0.1";
    o.port = 0;
    o.max_clients = 2;
    harness_start(&h, &o);
    cli_open(&c, h.port);
    cli_open(&a, h.port);
    EQ(&c, "PING", "+PONG\r\n");
    EQ(&a, "PING", "+PONG\r\n");
    cli_open(&b, h.port);
    struct dbuf got = {0};
    ck_assert_int_eq(cli_reply(&b, &got), 0);
    ck_assert_str_eq(got.data, "-ERR max number of clients reached\r\n");
    ck_assert(wait_closed(&b));
    cli_close(&b);
    cli_close(&a);
    sleep_ms(50);
    cli_open(&b, h.port);
    EQ(&b, "PING", "+PONG\r\n");
    EQ(&c, "PING", "+PONG\r\n");
    cli_close(&b);
    dbuf_free(&got);
}
END_TEST

/* A request over the size limit gets the parser's error and a close;
 * malformed RESP likewise, after the replies of what came before. */
START_TEST(test_connections_oversized_and_malformed_requests_close)
{
    struct server_options o;
    struct cli a;
    struct dbuf got = {0};
    teardown();
    server_options_default(&o);
    o.host = "127.0.0.1";
    o.port = 0;
    o.limits.request_bytes_max = 1024;
    harness_start(&h, &o);
    cli_open(&c, h.port);
    cli_open(&a, h.port);
    static char big[2000];
    memset(big, 'x', sizeof(big));
    const char *args[] = {"SET", "k", big};
    size_t lens[] = {3, 1, sizeof(big)};
    ck_assert_str_eq(qv(&c, 3, args, lens),
                     "-ERR Protocol error: too big request\r\n");
    ck_assert(wait_closed(&c));
    const char *bad = "PING\r\n*1\r\n$x\r\n";
    cli_send(&a, bad, strlen(bad));
    ck_assert_int_eq(cli_reply(&a, &got), 0);
    ck_assert_int_eq(cli_reply(&a, &got), 0);
    ck_assert_str_eq(got.data,
                     "+PONG\r\n-ERR Protocol error: invalid bulk length\r\n");
    ck_assert(wait_closed(&a));
    cli_close(&a);
    cli_close(&c);
    cli_open(&c, h.port);
    EQ(&c, "PING", "+PONG\r\n");
    dbuf_free(&got);
}
END_TEST

/* A client that never reads its replies is disconnected once they pass
 * the output limit; another client is not disturbed. */
START_TEST(test_connections_client_that_never_reads_is_disconnected)
{
    struct server_options o;
    struct cli slow;
    teardown();
    server_options_default(&o);
    o.host = "127.0.0.1";
    o.port = 0;
    o.output_bytes_max = 256 * 1024;
    harness_start(&h, &o);
    cli_open(&c, h.port);
    cli_open(&slow, h.port);
    int small = 4096;
    setsockopt(slow.fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof(small));
    static char val[64 * 1024];
    memset(val, 'v', sizeof(val));
    const char *args[] = {"SET", "big", val};
    size_t lens[] = {3, 3, sizeof(val)};
    ck_assert_str_eq(qv(&c, 3, args, lens), "+OK\r\n");
    struct dbuf req = {0};
    for (int i = 0; i < 1000; i++) {
        dbuf_put(&req, "GET big\r\n", 9);
    }
    cli_send(&slow, req.data, req.len);
    /* The server notices and closes; meanwhile the other client works. */
    const char *r = NULL;
    for (int i = 0; i < 100; i++) {
        r = q(&c, "INFO clients");
        if (strstr(r, "connected_clients:1\r\n") != NULL) {
            break;
        }
        sleep_ms(20);
    }
    ck_assert_ptr_nonnull(strstr(r, "connected_clients:1\r\n"));
    ck_assert(wait_closed(&slow));
    cli_close(&slow);
    EQ(&c, "PING", "+PONG\r\n");
    dbuf_free(&req);
}
END_TEST

/* A client that starts a request and never finishes it holds no one up,
 * and the idle timeout closes it. */
START_TEST(test_connections_unfinished_request_and_idle_timeout)
{
    struct server_options o;
    struct cli slow;
    teardown();
    server_options_default(&o);
    o.host = "127.0.0.1";
    o.port = 0;
    o.idle_timeout_ms = 300;
    harness_start(&h, &o);
    cli_open(&c, h.port);
    cli_open(&slow, h.port);
    const char *part = "*2\r\n$3\r\nGET\r\n$5\r\nab";
    cli_send(&slow, part, strlen(part));
    EQ(&c, "SET k v", "+OK\r\n");
    EQ(&c, "GET k", "$1\r\nv\r\n");
    ck_assert(wait_closed(&slow));
    cli_close(&slow);
    /* An active client is not idle (the first one may have been closed
     * while it waited above). */
    cli_close(&c);
    cli_open(&c, h.port);
    for (int i = 0; i < 5; i++) {
        sleep_ms(100);
        EQ(&c, "PING", "+PONG\r\n");
    }
}
END_TEST

/* With pipeline_max 4 and the node holding every callback, only 4
 * requests are started; the rest wait in the socket and run later. */
START_TEST(test_connections_pipeline_limit_applies_backpressure)
{
    struct server_options o;
    struct dbuf req = {0};
    struct dbuf got = {0};
    teardown();
    server_options_default(&o);
    o.host = "127.0.0.1";
    o.port = 0;
    o.pipeline_max = 4;
    harness_start(&h, &o);
    cli_open(&c, h.port);
    EQ(&c, "SET k v", "+OK\r\n");
    unsigned long before = fake_bnode_reads(h.node);
    fake_bnode_set_hold(h.node, true);
    for (int i = 0; i < 100; i++) {
        dbuf_put(&req, "GET k\r\n", 7);
    }
    cli_send(&c, req.data, req.len);
    sleep_ms(100);
    ck_assert_uint_eq(fake_bnode_reads(h.node) - before, 4);
    fake_bnode_set_hold(h.node, false);
    for (int i = 0; i < 100; i++) {
        ck_assert_int_eq(cli_reply(&c, &got), 0);
    }
    ck_assert_uint_eq(got.len, 100 * 7);
    dbuf_free(&req);
    dbuf_free(&got);
}
END_TEST

/* Clients that disconnect while their requests wait on the node: the
 * callbacks fire later against a closed connection without harm. */
START_TEST(test_connections_close_with_pending_requests)
{
    struct dbuf req = {0};
    fake_bnode_set_hold(h.node, true);
    for (int i = 0; i < 50; i++) {
        dbuf_put(&req, "SET a 1\r\nINCR n\r\nGET a\r\nMSET x 1 y 2\r\n", 37);
    }
    for (int k = 0; k < 6; k++) {
        struct cli t;
        cli_open(&t, h.port);
        cli_send(&t, req.data, req.len);
        sleep_ms(20);
        if (k % 2 == 0) {
            /* A reset: the server sees a read error and closes the handle
             * at once, with the requests still pending. */
            struct linger lg = {1, 0};
            setsockopt(t.fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
        }
        cli_close(&t);
    }
    cli_send(&c, "GET a\r\n", 7);
    sleep_ms(50);
    fake_bnode_set_hold(h.node, false);
    struct dbuf got = {0};
    ck_assert_int_eq(cli_reply(&c, &got), 0);
    EQ(&c, "PING", "+PONG\r\n");
    EQ(&c, "GET a", "$1\r\n1\r\n");
    dbuf_free(&got);
    dbuf_free(&req);
}
END_TEST

/* QUIT answers what came before it, then OK, then closes; a client that
 * half-closes still gets every reply. */
START_TEST(test_connections_quit_and_half_close)
{
    struct dbuf got = {0};
    const char *msg = "SET a 1\r\nQUIT\r\nGET a\r\n";
    cli_send(&c, msg, strlen(msg));
    ck_assert_int_eq(cli_reply(&c, &got), 0);
    ck_assert_int_eq(cli_reply(&c, &got), 0);
    ck_assert_str_eq(got.data, "+OK\r\n+OK\r\n");
    ck_assert(wait_closed(&c));
    cli_close(&c);
    cli_open(&c, h.port);
    msg = "INCR a\r\nGET a\r\n";
    cli_send(&c, msg, strlen(msg));
    shutdown(c.fd, SHUT_WR);
    got.len = 0;
    ck_assert_int_eq(cli_reply(&c, &got), 0);
    ck_assert_int_eq(cli_reply(&c, &got), 0);
    ck_assert_str_eq(got.data, ":2\r\n$1\r\n2\r\n");
    ck_assert(wait_closed(&c));
    dbuf_free(&got);
}
END_TEST

/* A graceful stop answers the requests already running, then closes. */
START_TEST(test_connections_stop_answers_requests_in_flight)
{
    struct dbuf got = {0};
    EQ(&c, "SET a 1", "+OK\r\n");
    fake_bnode_set_hold(h.node, true);
    cli_send(&c, "GET a\r\nSET b 2\r\n", 16);
    sleep_ms(50);
    harness_stop(&h);
    ck_assert_int_eq(cli_reply(&c, &got), 0);
    ck_assert_str_eq(got.data, "$1\r\n1\r\n");
    ck_assert(wait_closed(&c));
    cli_close(&c);
    dbuf_free(&got);
    /* teardown() expects a running harness. */
    harness_start(&h, NULL);
    cli_open(&c, h.port);
}
END_TEST

/* redis-cli itself talks to the server (bounded by timeout(1)). */
START_TEST(test_connections_redis_cli_works)
{
    char cmd[256];
    char out[256];
    if (system("command -v redis-cli >/dev/null 2>&1") != 0) {
        return; /* not installed: nothing to check */
    }
    const char *runs[][2] = {
        {"set greeting hello", "OK"},
        {"get greeting", "hello"},
        {"incr visits", "1"},
        {"--scan --pattern 'gree*'", "greeting"},
        {"ping", "PONG"},
    };
    for (size_t i = 0; i < sizeof(runs) / sizeof(runs[0]); i++) {
        snprintf(cmd, sizeof(cmd),
                 "timeout 10 redis-cli -h 127.0.0.1 -p %d %s 2>&1", h.port,
                 runs[i][0]);
        FILE *p = popen(cmd, "r");
        ck_assert_ptr_nonnull(p);
        size_t n = fread(out, 1, sizeof(out) - 1, p);
        out[n] = '\0';
        ck_assert_int_eq(pclose(p), 0);
        out[strcspn(out, "\n")] = '\0';
        ck_assert_str_eq(out, runs[i][1]);
    }
}
END_TEST

/* A read-modify-write outside MULTI is one proposal and no read: the
 * state machine decides (SETNX of an existing key, INCR). Inside EXEC, a
 * write that ends up writing nothing answers from a linearizable read;
 * one that writes needs only a local read (the commit's comparison
 * catches staleness); a blind write needs none. */
START_TEST(test_connections_read_barriers_per_command_kind)
{
    EQ(&c, "SET k v", "+OK\r\n");
    unsigned long r0 = fake_bnode_reads(h.node);
    unsigned long p0 = fake_bnode_proposals(h.node);
    EQ(&c, "SET k2 v", "+OK\r\n");
    ck_assert_uint_eq(fake_bnode_reads(h.node) - r0, 0);
    ck_assert_uint_eq(fake_bnode_proposals(h.node) - p0, 1);
    EQ(&c, "SETNX k w", ":0\r\n");
    EQ(&c, "INCR n", ":1\r\n");
    ck_assert_uint_eq(fake_bnode_reads(h.node) - r0, 0);
    ck_assert_uint_eq(fake_bnode_proposals(h.node) - p0, 3);
    EQ(&c, "MULTI", "+OK\r\n");
    EQ(&c, "SETNX k w", "+QUEUED\r\n");
    EQ(&c, "EXEC", "*1\r\n:0\r\n");
    ck_assert_uint_eq(fake_bnode_reads(h.node) - r0, 2);
    ck_assert_uint_eq(fake_bnode_proposals(h.node) - p0, 3);
    EQ(&c, "MULTI", "+OK\r\n");
    EQ(&c, "SETNX k3 w", "+QUEUED\r\n");
    EQ(&c, "EXEC", "*1\r\n:1\r\n");
    ck_assert_uint_eq(fake_bnode_reads(h.node) - r0, 3);
    ck_assert_uint_eq(fake_bnode_proposals(h.node) - p0, 4);
    EQ(&c, "GET k", "$1\r\nv\r\n");
    ck_assert_uint_eq(fake_bnode_reads(h.node) - r0, 4);
    /* With linearizable reads failing, writes still work (no read, or a
     * local read checked at commit) but a no-op EXEC cannot answer. */
    fake_bnode_set_mode(h.node, FAKE_NOREAD);
    EQ(&c, "INCR n", ":2\r\n");
    EQ(&c, "SETNX k w", ":0\r\n");
    EQ(&c, "MULTI", "+OK\r\n");
    EQ(&c, "INCR n", "+QUEUED\r\n");
    EQ(&c, "EXEC", "*1\r\n:3\r\n");
    EQ(&c, "MULTI", "+OK\r\n");
    EQ(&c, "SETNX k w", "+QUEUED\r\n");
    ck_assert_str_eq(q(&c, "EXEC"),
                     "-TRYAGAIN the read could not be confirmed (no leader "
                     "or leadership changed): retry\r\n");
}
END_TEST

static Suite *connections_suite(void)
{
    Suite *s = suite_create("connections");
    TCase *tc = tcase_create("connections");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(
        tc, test_connections_pipeline_keeps_order_under_reordered_completions);
    tcase_add_test(tc, test_connections_pipelined_transaction_runs_in_order);
    tcase_add_test(tc, test_connections_inline_requests);
    tcase_add_test(tc, test_connections_node_errors_tell_applied_from_unknown);
    tcase_add_test(tc, test_connections_incr_is_atomic_across_connections);
    tcase_add_test(tc, test_connections_max_clients);
    tcase_add_test(tc, test_connections_oversized_and_malformed_requests_close);
    tcase_add_test(tc,
                   test_connections_client_that_never_reads_is_disconnected);
    tcase_add_test(tc, test_connections_unfinished_request_and_idle_timeout);
    tcase_add_test(tc, test_connections_pipeline_limit_applies_backpressure);
    tcase_add_test(tc, test_connections_close_with_pending_requests);
    tcase_add_test(tc, test_connections_quit_and_half_close);
    tcase_add_test(tc, test_connections_stop_answers_requests_in_flight);
    tcase_add_test(tc, test_connections_redis_cli_works);
    tcase_add_test(tc, test_connections_read_barriers_per_command_kind);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(connections_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
