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
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "fdlimit.h"
#include "glob.h"
#include "harness.h"
#include "looplag.h"

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

/* ---- glob ------------------------------------------------------------ */

/* The matcher KEYS and SCAN used before (one backtrack point for the last
 * star, the class re-parsed at every attempt): correct, but its time grew
 * with the pattern's length times the subject's. Kept as the reference
 * the bounded matcher must agree with. */
static unsigned char ref_fold(unsigned char b, bool nocase)
{
    return nocase && b >= 'A' && b <= 'Z' ? (unsigned char)(b + 32) : b;
}

static bool ref_class(const char *p,
                      size_t plen,
                      size_t *pi,
                      unsigned char b,
                      bool nocase)
{
    size_t i = *pi;
    bool neg = false, hit = false;
    if (i < plen && p[i] == '^') {
        neg = true;
        i++;
    }
    for (; i < plen && p[i] != ']'; i++) {
        if (p[i] == '\\' && i + 1 < plen) {
            i++;
            hit |= ref_fold((unsigned char)p[i], nocase) == ref_fold(b, nocase);
        } else if (i + 2 < plen && p[i + 1] == '-' && p[i + 2] != ']') {
            unsigned char lo = ref_fold((unsigned char)p[i], nocase);
            unsigned char hi = ref_fold((unsigned char)p[i + 2], nocase);
            unsigned char x = ref_fold(b, nocase);
            if (lo > hi) {
                unsigned char t = lo;
                lo = hi;
                hi = t;
            }
            hit |= x >= lo && x <= hi;
            i += 2;
        } else {
            hit |= ref_fold((unsigned char)p[i], nocase) == ref_fold(b, nocase);
        }
    }
    *pi = i < plen ? i + 1 : i;
    return neg ? !hit : hit;
}

static bool ref_match(const char *p,
                      size_t plen,
                      const char *s,
                      size_t slen,
                      bool nocase)
{
    size_t pi = 0, si = 0, star_p = SIZE_MAX, star_s = 0;
    while (si < slen) {
        if (pi < plen) {
            char pc = p[pi];
            if (pc == '*') {
                while (pi < plen && p[pi] == '*') {
                    pi++;
                }
                if (pi == plen) {
                    return true;
                }
                star_p = pi;
                star_s = si;
                continue;
            }
            if (pc == '?') {
                pi++;
                si++;
                continue;
            }
            if (pc == '[') {
                size_t next = pi + 1;
                if (ref_class(p, plen, &next, (unsigned char)s[si], nocase)) {
                    pi = next;
                    si++;
                    continue;
                }
            } else {
                size_t at = pc == '\\' && pi + 1 < plen ? pi + 1 : pi;
                if (ref_fold((unsigned char)p[at], nocase) ==
                    ref_fold((unsigned char)s[si], nocase)) {
                    pi = at + 1;
                    si++;
                    continue;
                }
            }
        }
        if (star_p == SIZE_MAX) {
            return false;
        }
        pi = star_p;
        si = ++star_s;
    }
    while (pi < plen && p[pi] == '*') {
        pi++;
    }
    return pi == plen;
}

/* 300,000 random patterns and subjects over the bytes that mean something
 * to a glob: the bounded matcher agrees with the reference on every one,
 * with and without case folding. */
START_TEST(test_hostile_glob_agrees_with_the_reference_matcher)
{
    static const char pal[] = "ab*?[]^-\\A";
    static const char sal[] = "abB]-^\\*?[";
    uint64_t x = 0x9e3779b97f4a7c15u;
    char p[16], s[12];
    for (int n = 0; n < 300000; n++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        size_t plen = (size_t)(x % 12), slen = (size_t)((x >> 8) % 10);
        uint64_t y = x;
        for (size_t i = 0; i < plen; i++, y = y * 6364136223846793005u + 1) {
            p[i] = pal[(y >> 33) % (sizeof(pal) - 1)];
        }
        for (size_t i = 0; i < slen; i++, y = y * 6364136223846793005u + 1) {
            s[i] = sal[(y >> 33) % (sizeof(sal) - 1)];
        }
        bool nocase = (x >> 40) & 1;
        struct glob *g;
        ck_assert_int_eq(glob_compile(p, plen, 11, nocase, &g), 0);
        bool want = ref_match(p, plen, s, slen, nocase);
        bool got = glob_match(g, s, slen);
        glob_free(g);
        ck_assert_msg(got == want,
                      "pattern '%.*s' subject '%.*s' nocase %d: %d", (int)plen,
                      p, (int)slen, s, nocase, got);
    }
}
END_TEST

/* A pattern needing more bytes than the longest subject matches nothing,
 * and a subject of the longest length still matches what it should. */
START_TEST(test_hostile_glob_longer_than_any_subject_never_matches)
{
    struct glob *g;
    ck_assert_int_eq(glob_compile("a?c", 3, 2, false, &g), 0);
    ck_assert(!glob_match(g, "ab", 2));
    glob_free(g);
    ck_assert_int_eq(glob_compile("*a*b*", 5, 2, false, &g), 0);
    ck_assert(glob_match(g, "ab", 2));
    ck_assert(!glob_match(g, "ba", 2));
    glob_free(g);
}
END_TEST

/* 200 keys of 500 bytes, then KEYS and SCAN MATCH with patterns that made
 * a backtracking matcher take minutes (a 64 KiB class after a star, many
 * stars): each is answered, and a second client's PINGs meanwhile are
 * never held for long. */
struct pinger
{
    int port;
    pthread_t thread;
    volatile bool stop;
    uint64_t worst_ms;
    unsigned pings;
};

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static void *pinger_main(void *arg)
{
    struct pinger *pg = arg;
    struct cli k;
    cli_open(&k, pg->port);
    while (!pg->stop) {
        uint64_t t0 = now_ms();
        ck_assert_str_eq(q(&k, "PING"), "+PONG\r\n");
        uint64_t took = now_ms() - t0;
        if (took > pg->worst_ms) {
            pg->worst_ms = took;
        }
        pg->pings++;
        sleep_ms(5);
    }
    cli_close(&k);
    q_release();
    return NULL;
}

START_TEST(test_hostile_pathological_patterns_do_not_hold_the_loop)
{
    struct server_options o;
    options(&o);
    start(&o);
    static char key[500];
    for (int i = 0; i < 200; i++) {
        memset(key, 'a' + i % 3, sizeof(key));
        snprintf(key, 16, "k%03d", i);
        key[strlen(key)] = 'a';
        const char *args[] = {"SET", key, "v"};
        size_t lens[] = {3, sizeof(key), 1};
        ck_assert_str_eq(qv(&c, 3, args, lens), "+OK\r\n");
    }
    /* "*[" then 64 KiB of "a-b" ranges and "]x": every key ends in 'a',
     * 'b' or 'c', so the final 'x' never matches and a backtracking
     * matcher tries every start against the whole class. */
    size_t plen = 2 + 3 * 21000 + 2;
    char *pat = malloc(plen + 1);
    ck_assert_ptr_nonnull(pat);
    memcpy(pat, "*[", 2);
    for (size_t i = 0; i < 21000; i++) {
        memcpy(pat + 2 + 3 * i, "a-b", 3);
    }
    memcpy(pat + plen - 2, "]x", 2);
    /* And 250 stars between single letters. */
    char stars[600];
    size_t sl = 0;
    for (int i = 0; i < 250; i++) {
        stars[sl++] = '*';
        stars[sl++] = 'a';
    }
    stars[sl++] = 'x';
    struct pinger pg = {.port = h.port};
    ck_assert_int_eq(pthread_create(&pg.thread, NULL, pinger_main, &pg), 0);
    sleep_ms(100);
    const char *keys1[] = {"KEYS", pat};
    size_t klen1[] = {4, plen};
    ck_assert_str_eq(qv(&c, 2, keys1, klen1), "*0\r\n");
    const char *scan1[] = {"SCAN", "0", "MATCH", pat, "COUNT", "1000"};
    size_t slen1[] = {4, 1, 5, plen, 5, 4};
    ck_assert_str_eq(qv(&c, 6, scan1, slen1), "*2\r\n$1\r\n0\r\n*0\r\n");
    const char *keys2[] = {"KEYS", stars};
    size_t klen2[] = {4, sl};
    ck_assert_str_eq(qv(&c, 2, keys2, klen2), "*0\r\n");
    sleep_ms(100);
    pg.stop = true;
    pthread_join(pg.thread, NULL);
    printf("pathological patterns: %u pings, the slowest %llu ms\n", pg.pings,
           (unsigned long long)pg.worst_ms);
    ck_assert_uint_gt(pg.pings, 0);
    /* Generous: the loaded test machine, not the matcher, sets this. */
    ck_assert_uint_lt(pg.worst_ms, 2000);
    free(pat);
    stop();
}
END_TEST

/* KEYS over 20,000 keys runs in slices of 4,096 keys, one per loop turn:
 * every key comes back once, in order, whatever slice boundary it falls
 * on, with a pattern and without; a pinger is answered in between. */
START_TEST(test_hostile_keys_in_slices_returns_every_key_once)
{
    enum { N = 20000 };
    struct server_options o;
    struct dbuf req = {0};
    struct dbuf got = {0};
    char line[64];
    options(&o);
    start(&o);
    for (int i = 0; i < N; i++) {
        int n = snprintf(line, sizeof(line), "SET k%05d v\r\n", i);
        dbuf_put(&req, line, (size_t)n);
    }
    cli_send(&c, req.data, req.len);
    for (int i = 0; i < N; i++) {
        got.len = 0;
        ck_assert_int_eq(cli_reply(&c, &got), 0);
    }
    const char *all = q(&c, "KEYS *");
    ck_assert(strncmp(all, "*20000\r\n", 8) == 0);
    const char *p = all + 8;
    for (int i = 0; i < N; i++) {
        int n = snprintf(line, sizeof(line), "$6\r\nk%05d\r\n", i);
        ck_assert_msg(strncmp(p, line, (size_t)n) == 0, "key %d: %.20s", i, p);
        p += n;
    }
    ck_assert_str_eq(p, "");
    const char *some = q(&c, "KEYS k1*9");
    ck_assert(strncmp(some, "*1000\r\n", 7) == 0);
    dbuf_free(&req);
    dbuf_free(&got);
    stop();
}
END_TEST

/* A loop turn that takes 150 ms is counted and reported once. */
static void lag_busy(uv_timer_t *t)
{
    (void)t;
    sleep_ms(150);
}

static void lag_report(void *arg, uint64_t busy_ms, uint64_t unreported)
{
    uint64_t *seen = arg;
    ck_assert_uint_ge(busy_ms, 140);
    ck_assert_uint_eq(unreported, 0);
    (*seen)++;
}

START_TEST(test_hostile_loop_turn_over_the_threshold_is_reported)
{
    uv_loop_t loop;
    uv_timer_t busy;
    struct looplag *lag;
    struct looplag_stats st;
    uint64_t seen = 0;
    ck_assert_int_eq(uv_loop_init(&loop), 0);
    ck_assert_int_eq(looplag_start(&loop, 100, lag_report, &seen, &lag), 0);
    uv_timer_init(&loop, &busy);
    uv_timer_start(&busy, lag_busy, 50, 0);
    uv_run(&loop, UV_RUN_DEFAULT);
    looplag_stats(lag, &st);
    ck_assert_uint_eq(seen, 1);
    ck_assert_uint_eq(st.slow, 1);
    ck_assert_uint_ge(st.busy_max_ms, 140);
    ck_assert_uint_ge(st.busy_last_max_ms, 140);
    looplag_stats(lag, &st);
    ck_assert_uint_eq(st.busy_last_max_ms, 0);
    looplag_stop(lag);
    uv_close((uv_handle_t *)&busy, NULL);
    uv_run(&loop, UV_RUN_DEFAULT);
    ck_assert_int_eq(uv_loop_close(&loop), 0);
}
END_TEST

/* ---- memory ---------------------------------------------------------- */

static uint64_t mem_used(void)
{
    struct server_stats st;
    server_stats(h.srv, &st); /* a racy read of a counter: a test only */
    return st.memory_used;
}

/* With max_client_memory at 2 MiB, a MULTI queue of 64 KiB SETs is cut off
 * with a clear error once it passes its share, EXEC then aborts, and the
 * memory comes back. */
START_TEST(test_hostile_multi_queue_is_bounded_by_the_memory_budget)
{
    struct server_options o;
    options(&o);
    o.memory_max = 2u << 20;
    start(&o);
    static char val[64 * 1024];
    memset(val, 'm', sizeof(val));
    EQ(&c, "MULTI", "+OK\r\n");
    int queued = 0, refused = 0;
    for (int i = 0; i < 100; i++) {
        const char *args[] = {"SET", "k", val};
        size_t lens[] = {3, 1, sizeof(val)};
        const char *r = qv(&c, 3, args, lens);
        if (strcmp(r, "+QUEUED\r\n") == 0) {
            queued++;
        } else {
            ck_assert_str_eq(r,
                             "-ERR MULTI queue over this client's share of "
                             "the server's client memory (max_client_memory): "
                             "the transaction will be discarded\r\n");
            refused++;
        }
    }
    ck_assert_int_gt(queued, 10);
    ck_assert_int_lt(queued, 40); /* 2 MiB / 64 KiB, with the reply room */
    ck_assert_int_eq(queued + refused, 100);
    ck_assert(strncmp(q(&c, "EXEC"), "-EXECABORT", 10) == 0);
    EQ(&c, "GET k", "$-1\r\n");
    ck_assert_uint_lt(mem_used(), 256 * 1024);
    stop();
}
END_TEST

/* Ten clients ask for a 6 MiB reply each (MGET of a 1 MiB value, six
 * times; its buffer grows to 8 MiB) and do not read: with
 * max_client_memory at 12 MiB, the node holds about that much, the
 * others are told their reply does not fit their share, and every client
 * gets an answer once it reads. */
START_TEST(test_hostile_big_replies_of_many_clients_stay_within_the_budget)
{
    enum { N = 10 };
    struct server_options o;
    struct cli k[N];
    struct dbuf got = {0};
    options(&o);
    o.memory_max = 12u << 20;
    start(&o);
    static char val[1 << 20];
    memset(val, 'v', sizeof(val));
    const char *set[] = {"SET", "big", val};
    size_t setlen[] = {3, 3, sizeof(val)};
    ck_assert_str_eq(qv(&c, 3, set, setlen), "+OK\r\n");
    const char *mget = "MGET big big big big big big\r\n";
    for (int i = 0; i < N; i++) {
        cli_open(&k[i], h.port);
        cli_send(&k[i], mget, strlen(mget));
    }
    sleep_ms(500);
    uint64_t held = mem_used();
    printf(
        "10 unread 6 MiB replies: %llu KiB held for clients (budget "
        "12288 KiB)\n",
        (unsigned long long)(held >> 10));
    ck_assert_uint_le(held,
                      (12u << 20) + N * SERVER_CLIENT_SHARE_MIN + (1u << 20));
    int full = 0, refused = 0;
    for (int i = 0; i < N; i++) {
        got.len = 0;
        ck_assert_int_eq(cli_reply(&k[i], &got), 0);
        if (strncmp(got.data, "*6\r\n", 4) == 0) {
            full++;
        } else {
            ck_assert_str_eq(got.data,
                             "-ERR reply too large for this client's share "
                             "of the server's client memory "
                             "(max_client_memory)\r\n");
            refused++;
        }
        EQ(&k[i], "PING", "+PONG\r\n");
        cli_close(&k[i]);
    }
    ck_assert_int_ge(full, 1);
    ck_assert_int_ge(refused, 1);
    dbuf_free(&got);
    stop();
}
END_TEST

/* Four clients each start a 3 MB SET and send 2.5 MB of it (a 4 MiB
 * buffer each): with
 * max_client_memory at 6 MiB, the requests that do not fit are refused
 * with an error and their connections closed; the first one is read to
 * its end (and refused by the store's value limit, 1 MiB, not by the
 * budget). */
START_TEST(test_hostile_unfinished_requests_over_the_budget_are_refused)
{
    enum { N = 4, SIZE = 3000000, SENT = 2500000 };
    struct server_options o;
    struct cli k[N];
    struct dbuf got = {0};
    options(&o);
    o.memory_max = 6u << 20;
    start(&o);
    static char body[SIZE];
    memset(body, 'u', sizeof(body));
    const char *head = "*3\r\n$3\r\nSET\r\n$1\r\nu\r\n$3000000\r\n";
    for (int i = 0; i < N; i++) {
        cli_open(&k[i], h.port);
        cli_send(&k[i], head, strlen(head));
        /* A refused client may be closed while we still send. */
        (void)send(k[i].fd, body, SENT, MSG_NOSIGNAL);
    }
    sleep_ms(300);
    ck_assert_uint_le(mem_used(),
                      (6u << 20) + N * SERVER_CLIENT_SHARE_MIN + (1u << 20));
    int refused = 0;
    for (int i = 1; i < N; i++) {
        got.len = 0;
        if (cli_reply(&k[i], &got) == 0) {
            ck_assert_str_eq(got.data,
                             "-ERR request too large for this client's share "
                             "of the server's client memory "
                             "(max_client_memory)\r\n");
            refused++;
            ck_assert(wait_closed(&k[i]));
        }
    }
    ck_assert_int_ge(refused, 2);
    (void)send(k[0].fd, body + SENT, SIZE - SENT, MSG_NOSIGNAL);
    cli_send(&k[0], "\r\n", 2);
    got.len = 0;
    ck_assert_int_eq(cli_reply(&k[0], &got), 0);
    ck_assert(strncmp(got.data, "-ERR value too large", 20) == 0);
    for (int i = 0; i < N; i++) {
        cli_close(&k[i]);
    }
    dbuf_free(&got);
    stop();
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
    tcase_add_test(tc, test_hostile_glob_agrees_with_the_reference_matcher);
    tcase_add_test(tc, test_hostile_glob_longer_than_any_subject_never_matches);
    tcase_add_test(tc, test_hostile_pathological_patterns_do_not_hold_the_loop);
    tcase_add_test(tc, test_hostile_keys_in_slices_returns_every_key_once);
    tcase_add_test(tc, test_hostile_loop_turn_over_the_threshold_is_reported);
    tcase_add_test(tc,
                   test_hostile_multi_queue_is_bounded_by_the_memory_budget);
    tcase_add_test(
        tc, test_hostile_big_replies_of_many_clients_stay_within_the_budget);
    tcase_add_test(
        tc, test_hostile_unfinished_requests_over_the_budget_are_refused);
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
