/*
 * test_hostile.c - the client port's defences against clients that hold
 * resources without using them (issue 11): unfinished requests time out,
 * idle clients make room at max_clients, unread snapshot exports are
 * released, and ballotd's descriptor plan (fdlimit.h) fits its limits to
 * RLIMIT_NOFILE.
 */
#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "fdlimit.h"
#include "harness.h"

static struct harness h;
static struct cli c;

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static void start(const struct server_options *o)
{
    harness_start(&h, o);
    cli_open(&c, h.port);
}

static void stop(void)
{
    cli_close(&c);
    harness_stop(&h);
    q_release();
}

static void options(struct server_options *o)
{
    server_options_default(o);
    o->host = "127.0.0.1";
    o->port = 0;
}

/* True once the server closed @k (EOF or reset) within about 5 s. */
static bool wait_closed(struct cli *k)
{
    char buf[4096];
    for (int i = 0; i < 100; i++) {
        ssize_t n = recv(k->fd, buf, sizeof(buf), 0);
        if (n == 0) {
            return true;
        }
        if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK) {
            return errno == ECONNRESET;
        }
    }
    return false;
}

#define EQ(k, line, want) ck_assert_str_eq(q(k, line), want)

/* Idle clients, unfinished requests and unread exports all time out by
 * default: nothing a client leaves behind is held forever. */
START_TEST(test_hostile_defaults_bound_what_a_client_can_hold)
{
    struct server_options o;
    server_options_default(&o);
    ck_assert_uint_gt(o.idle_timeout_ms, 0);
    ck_assert_uint_gt(o.request_timeout_ms, 0);
    ck_assert_uint_gt(o.export_idle_ms, 0);
    ck_assert_uint_lt(o.request_timeout_ms, o.idle_timeout_ms);
}
END_TEST

/* A client trickling a request a byte every 100 ms (slowloris) is closed
 * once the request is request_timeout_ms old, although it keeps sending;
 * another client is served meanwhile and nothing is applied. */
START_TEST(test_hostile_trickled_request_is_closed_after_request_timeout)
{
    struct server_options o;
    struct cli slow;
    options(&o);
    o.idle_timeout_ms = 0;
    o.request_timeout_ms = 500;
    start(&o);
    cli_open(&slow, h.port);
    static const char req[] =
        "*3\r\n$3\r\nSET\r\n$4\r\nslow\r\n$40\r\n"
        "0123456789012345678901234567890123456789\r\n";
    size_t i = 0;
    bool closed = false;
    for (; i < sizeof(req) - 1 && !closed; i++) {
        closed = send(slow.fd, req + i, 1, MSG_NOSIGNAL) != 1;
        EQ(&c, "PING", "+PONG\r\n");
        sleep_ms(100);
    }
    ck_assert_msg(closed || wait_closed(&slow),
                  "the trickling client was not closed");
    ck_assert_uint_lt(i, 20); /* about 500 ms: 5 bytes, with margin */
    cli_close(&slow);
    EQ(&c, "GET slow", "$-1\r\n");
    stop();
}
END_TEST

/* A complete request that waits behind the pipeline limit is not an
 * unfinished one: its connection is not closed by the request timeout. */
START_TEST(test_hostile_requests_waiting_on_the_node_do_not_time_out)
{
    struct server_options o;
    struct dbuf req = {0};
    struct dbuf got = {0};
    options(&o);
    o.request_timeout_ms = 200;
    o.pipeline_max = 2;
    start(&o);
    EQ(&c, "SET k v", "+OK\r\n");
    fake_bnode_set_hold(h.node, true);
    for (int i = 0; i < 10; i++) {
        dbuf_put(&req, "GET k\r\n", 7);
    }
    cli_send(&c, req.data, req.len);
    sleep_ms(800);
    fake_bnode_set_hold(h.node, false);
    for (int i = 0; i < 10; i++) {
        ck_assert_int_eq(cli_reply(&c, &got), 0);
    }
    ck_assert_uint_eq(got.len, 10 * 7);
    dbuf_free(&req);
    dbuf_free(&got);
    stop();
}
END_TEST

/* At max_clients, a new client displaces the one idle the longest once it
 * has been idle SERVER_EVICT_IDLE_MIN_MS; an active client is never
 * displaced, and before that time the new one is refused. */
START_TEST(test_hostile_idle_client_is_displaced_at_max_clients)
{
    struct server_options o;
    struct cli active, late, later;
    struct dbuf got = {0};
    options(&o);
    o.max_clients = 2;
    start(&o); /* c: idle from now on */
    cli_open(&active, h.port);
    EQ(&active, "PING", "+PONG\r\n");
    cli_open(&late, h.port);
    ck_assert_int_eq(cli_reply(&late, &got), 0);
    ck_assert_str_eq(got.data, "-ERR max number of clients reached\r\n");
    cli_close(&late);
    for (unsigned t = 0; t < SERVER_EVICT_IDLE_MIN_MS + 300; t += 100) {
        EQ(&active, "PING", "+PONG\r\n");
        sleep_ms(100);
    }
    cli_open(&later, h.port);
    EQ(&later, "PING", "+PONG\r\n");
    ck_assert(wait_closed(&c));
    EQ(&active, "PING", "+PONG\r\n");
    EQ(&active, "INFO stats", q(&active, "INFO stats")); /* still served */
    cli_close(&later);
    cli_close(&active);
    cli_close(&c);
    cli_open(&c, h.port);
    dbuf_free(&got);
    stop();
}
END_TEST

static long long field(const char *reply, const char *name)
{
    char pat[64];
    snprintf(pat, sizeof(pat), "$%zu\r\n%s\r\n:", strlen(name), name);
    const char *p = strstr(reply, pat);
    ck_assert_msg(p != NULL, "no %s in %s", name, reply);
    return atoll(p + strlen(pat));
}

/* Two clients hold snapshot exports (the limit) and keep their
 * connections busy without reading them: a third backup is refused only
 * until the exports have gone unread for export_idle_ms. */
START_TEST(test_hostile_unread_exports_do_not_block_later_backups)
{
    struct server_options o;
    struct cli c2, c3;
    char line[64];
    options(&o);
    o.export_idle_ms = 600;
    start(&o);
    cli_open(&c2, h.port);
    cli_open(&c3, h.port);
    long long t1 = field(q(&c, "BSNAPSHOT CREATE"), "token");
    (void)field(q(&c2, "BSNAPSHOT CREATE"), "token");
    ck_assert(strncmp(q(&c3, "BSNAPSHOT CREATE"), "-BUSY", 5) == 0);
    /* A read keeps an export alive. */
    snprintf(line, sizeof(line), "BSNAPSHOT READ %lld 0 8", t1);
    for (int i = 0; i < 5; i++) {
        sleep_ms(200);
        ck_assert(strncmp(q(&c, line), "$8\r\n", 4) == 0);
        EQ(&c2, "PING", "+PONG\r\n");
    }
    /* c2's export went unread: its slot is free again. */
    ck_assert(strncmp(q(&c3, "BSNAPSHOT CREATE"), "*16\r\n", 5) == 0);
    sleep_ms(1500);
    ck_assert(strstr(q(&c, line), "released after going unread") != NULL);
    cli_close(&c2);
    cli_close(&c3);
    stop();
}
END_TEST

/* The descriptor plan: a soft limit too low is raised towards the hard
 * one; beyond the hard one max_clients is lowered; a hard limit leaving
 * fewer than FDLIMIT_CLIENTS_MIN clients is refused. */
START_TEST(test_hostile_descriptor_plan_fits_max_clients_to_the_limit)
{
    struct fdlimit_plan p;
    ck_assert_int_eq(fdlimit_plan(1024, 1048576, 300, 10000, &p), 0);
    ck_assert(p.raised && !p.lowered);
    ck_assert_uint_eq(p.soft, 10300);
    ck_assert_uint_eq(p.max_clients, 10000);

    ck_assert_int_eq(fdlimit_plan(1024, 1024, 300, 10000, &p), 0);
    ck_assert(!p.raised && p.lowered);
    ck_assert_uint_eq(p.max_clients, 724);

    ck_assert_int_eq(fdlimit_plan(65536, 65536, 300, 10000, &p), 0);
    ck_assert(!p.raised && !p.lowered);
    ck_assert_uint_eq(p.soft, 65536);

    ck_assert_int_eq(fdlimit_plan(UINT64_MAX, UINT64_MAX, 300, 10, &p), 0);
    ck_assert_uint_eq(p.max_clients, 10);

    ck_assert_int_eq(fdlimit_plan(256, 310, 300, 10000, &p), -1);
    ck_assert_uint_eq(p.max_clients, 10);
    ck_assert_int_eq(fdlimit_plan(100, 200, 300, 10000, &p), -1);
    ck_assert_uint_eq(p.max_clients, 0);
}
END_TEST

static Suite *hostile_suite(void)
{
    Suite *s = suite_create("hostile");
    TCase *tc = tcase_create("hostile");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_hostile_defaults_bound_what_a_client_can_hold);
    tcase_add_test(
        tc, test_hostile_trickled_request_is_closed_after_request_timeout);
    tcase_add_test(tc,
                   test_hostile_requests_waiting_on_the_node_do_not_time_out);
    tcase_add_test(tc, test_hostile_idle_client_is_displaced_at_max_clients);
    tcase_add_test(tc, test_hostile_unread_exports_do_not_block_later_backups);
    tcase_add_test(tc,
                   test_hostile_descriptor_plan_fits_max_clients_to_the_limit);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(hostile_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
