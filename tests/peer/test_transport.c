/*
 * test_transport.c - the TCP transport between nodes, on 127.0.0.1: message
 * exchange (large ones included), reconnection after a restart, refused
 * hellos, bad frames, unreachable peers, the send queue limit and a clean
 * close.
 *
 * Each test runs its own loop and ends with uv_loop_close() == 0, so a
 * leaked handle fails it. Every wait is bounded by a watchdog timer. Ports
 * come from a range picked by the process id, and a port in use is skipped.
 */
#include <arpa/inet.h>
#include <check.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "auth.h"
#include "codec.h"
#include "peer_util.h"
#include "tls.h"
#include "tls_certs.h"
#include "transport.h"

#define CLUSTER 0xba11070000000001u
/* The cluster secret every test node shares, unless a test gives one its
 * own (struct node's secret). */
static const char SECRET[] = "0123456789abcdef0123456789abcdef-test";
#define MAX_NODES 4
#define WAIT_MS 10000

/* A received message, encoded again so it outlives the callback. */
struct rec
{
    raft_id from;
    uint8_t *bytes;
    size_t len;
};

struct node
{
    struct transport *t;
    raft_id id;
    int port;
    uint64_t queue_max;
    const char *secret; /* NULL: SECRET */
    bool insecure;      /* no secret at all */
    /* Mutual TLS with DIR/@tls_sub/@tls_name.crt (tls_certs.h), trusting
     * CA "a"; with @tls_only, no secret either. */
    const char *tls_sub;
    const char *tls_name;
    bool tls_only;
    struct tls_ctx *tls;
    struct rec *recv;
    size_t n_recv;
    unsigned unreachable[MAX_NODES + 8];
    unsigned closed; /* close callbacks seen */
};

static uv_loop_t loop;
static uv_timer_t watchdog;
static uv_timer_t ticker;
static bool expired;
static struct node nodes[MAX_NODES];
static unsigned port_seq;
/* The address node_start() listens on. */
static const char *listen_host = "127.0.0.1";

static int next_port(void)
{
    /* Spread processes over 20000..59999 so parallel runs rarely meet. */
    unsigned base = (unsigned)getpid() * 97u + port_seq++ * 13u;
    return 20000 + (int)(base % 40000u);
}

static void on_recv(void *arg, const struct raft_message *m)
{
    struct node *n = arg;
    struct rec *fresh = realloc(n->recv, (n->n_recv + 1) * sizeof(*fresh));
    ck_assert_ptr_nonnull(fresh);
    n->recv = fresh;
    struct rec *r = &n->recv[n->n_recv++];
    r->from = m->from;
    r->bytes = encode_alloc(m, &r->len);
}

static void on_unreachable(void *arg, raft_id id)
{
    struct node *n = arg;
    ck_assert_uint_lt(id, MAX_NODES + 8);
    n->unreachable[id]++;
}

static void on_closed(void *arg)
{
    struct node *n = arg;
    n->closed++;
}

static void on_watchdog(uv_timer_t *t)
{
    (void)t;
    expired = true;
}

static void on_tick(uv_timer_t *t)
{
    (void)t;
}

/* Runs the loop until @pred holds or WAIT_MS pass; a ticker wakes the loop
 * so that predicates on things outside it (raw sockets) are seen. */
static bool run_until(bool (*pred)(void *), void *arg)
{
    expired = false;
    uv_timer_start(&watchdog, on_watchdog, WAIT_MS, 0);
    uv_timer_start(&ticker, on_tick, 5, 5);
    while (!pred(arg) && !expired) {
        uv_run(&loop, UV_RUN_ONCE);
    }
    uv_timer_stop(&watchdog);
    uv_timer_stop(&ticker);
    return pred(arg);
}

static void run_for(uint64_t ms)
{
    expired = false;
    uv_timer_start(&watchdog, on_watchdog, ms, 0);
    while (!expired) {
        uv_run(&loop, UV_RUN_ONCE);
    }
}

/* Starts node @n's transport, on its old port if it had one. */
static void node_start(struct node *n, raft_id id)
{
    const char *secret = n->secret != NULL ? n->secret : SECRET;
    struct transport_options o = {
        .cluster_id = CLUSTER,
        .secret = (const uint8_t *)secret,
        .secret_len = n->insecure ? 0 : strlen(secret),
        .insecure = n->insecure,
        .self = id,
        .listen_host = listen_host,
        .send_queue_bytes_max = n->queue_max,
        .max_entries = 10000,
        .max_entry_bytes = 1u << 20,
        .on_recv = on_recv,
        .on_unreachable = on_unreachable,
        .arg = n};
    char err[256];
    n->id = id;
    n->closed = 0;
    if (n->tls_sub != NULL) {
        char crt[512], key[512], ca[512];
        tls_certs_pair(n->tls_sub, n->tls_name, crt, key, sizeof(crt));
        tls_certs_path(ca, sizeof(ca), "a", "ca.crt");
        struct tls_options to = {crt, key, ca};
        ck_assert_int_eq(tls_ctx_create(&loop, &to, &n->tls, err, sizeof(err)),
                         0);
        o.tls = n->tls;
        if (n->tls_only) {
            o.secret_len = 0;
        }
    }
    if (n->port == 0) {
        n->port = next_port();
    }
    for (int attempt = 0; attempt < 50; attempt++) {
        o.listen_port = n->port;
        int rv = transport_create(&loop, &o, &n->t, err, sizeof(err));
        if (rv == 0) {
            return;
        }
        ck_assert_msg(rv == TRANSPORT_EADDR, "%s", transport_strerror(rv));
        /* Let the failed listener's close callback run. */
        uv_run(&loop, UV_RUN_NOWAIT);
        n->port = next_port();
    }
    ck_abort_msg("no free port: %s", err);
}

static bool node_closed(void *arg)
{
    return ((struct node *)arg)->closed == 1;
}

static void node_stop(struct node *n)
{
    transport_close(n->t, on_closed, n);
    n->t = NULL;
    ck_assert(run_until(node_closed, n));
    tls_ctx_destroy(n->tls);
    n->tls = NULL;
}

static void node_clear(struct node *n)
{
    for (size_t i = 0; i < n->n_recv; i++) {
        free(n->recv[i].bytes);
    }
    free(n->recv);
    n->recv = NULL;
    n->n_recv = 0;
}

/* Makes every one of the first @count nodes a peer of the others. */
static void mesh(int count)
{
    for (int i = 0; i < count; i++) {
        for (int j = 0; j < count; j++) {
            if (i != j) {
                ck_assert_int_eq(transport_add_peer(nodes[i].t, nodes[j].id,
                                                    "127.0.0.1", nodes[j].port),
                                 0);
            }
        }
    }
}

static int mesh_count;

static bool all_connected(void *arg)
{
    (void)arg;
    for (int i = 0; i < mesh_count; i++) {
        for (int j = 0; j < mesh_count; j++) {
            if (i != j && !transport_connected(nodes[i].t, nodes[j].id)) {
                return false;
            }
        }
    }
    return true;
}

/* Starts the first @count nodes and makes them peers, without waiting
 * for the connections. */
static void start_mesh_nowait(int count)
{
    for (int i = 0; i < count; i++) {
        node_start(&nodes[i], (raft_id)(i + 1));
    }
    mesh(count);
    mesh_count = count;
}

static void start_mesh(int count)
{
    for (int i = 0; i < count; i++) {
        node_start(&nodes[i], (raft_id)(i + 1));
    }
    mesh(count);
    mesh_count = count;
    ck_assert(run_until(all_connected, NULL));
}

static void setup(void)
{
    memset(nodes, 0, sizeof(nodes));
    ck_assert_int_eq(uv_loop_init(&loop), 0);
    ck_assert_int_eq(uv_timer_init(&loop, &watchdog), 0);
    ck_assert_int_eq(uv_timer_init(&loop, &ticker), 0);
}

static void teardown(void)
{
    for (int i = 0; i < MAX_NODES; i++) {
        if (nodes[i].t != NULL) {
            node_stop(&nodes[i]);
        }
        node_clear(&nodes[i]);
    }
    uv_close((uv_handle_t *)&watchdog, NULL);
    uv_close((uv_handle_t *)&ticker, NULL);
    uv_run(&loop, UV_RUN_DEFAULT);
    ck_assert_int_eq(uv_loop_close(&loop), 0);
}

struct want_count
{
    struct node *n;
    size_t count;
};

static bool has_received(void *arg)
{
    struct want_count *w = arg;
    return w->n->n_recv >= w->count;
}

static void wait_received(struct node *n, size_t count)
{
    struct want_count w = {n, count};
    ck_assert_msg(run_until(has_received, &w), "node %llu got %zu of %zu",
                  (unsigned long long)n->id, n->n_recv, count);
}

/* Checks that @n received, from @from and in order, exactly @msgs. */
static void check_received(const struct node *n,
                           raft_id from,
                           const struct raft_message *msgs,
                           size_t count)
{
    size_t k = 0;
    for (size_t i = 0; i < n->n_recv; i++) {
        if (n->recv[i].from != from) {
            continue;
        }
        ck_assert_uint_lt(k, count);
        size_t len;
        uint8_t *want = encode_alloc(&msgs[k], &len);
        ck_assert_uint_eq(n->recv[i].len, len);
        ck_assert_int_eq(memcmp(n->recv[i].bytes, want, len), 0);
        free(want);
        k++;
    }
    ck_assert_uint_eq(k, count);
}

/* Three nodes send every message type to each other; each receiver gets
 * each sender's messages intact and in order. */
START_TEST(test_transport_three_nodes_exchange_every_message_type)
{
    struct prng r = {.s = 1};
    struct gen_msg g[3][3][RAFT_MSG_TYPE_MAX];
    struct raft_message sent[3][3][RAFT_MSG_TYPE_MAX];
    start_mesh(3);
    for (int i = 0; i < 3; i++) {
        for (int j = 0; j < 3; j++) {
            for (uint8_t k = 0; k < RAFT_MSG_TYPE_MAX && i != j; k++) {
                gen_message(&r, (uint8_t)(k + 1), 20, 100, 1000, &g[i][j][k]);
                g[i][j][k].m.from = nodes[i].id;
                g[i][j][k].m.to = nodes[j].id;
                sent[i][j][k] = g[i][j][k].m;
                ck_assert_int_eq(transport_send(nodes[i].t, &sent[i][j][k]), 0);
            }
        }
    }
    for (int j = 0; j < 3; j++) {
        wait_received(&nodes[j], 2 * RAFT_MSG_TYPE_MAX);
        for (int i = 0; i < 3; i++) {
            if (i != j) {
                check_received(&nodes[j], nodes[i].id, sent[i][j],
                               RAFT_MSG_TYPE_MAX);
            }
        }
    }
    for (int i = 0; i < 3; i++) {
        struct transport_stats st;
        transport_stats(nodes[i].t, &st);
        ck_assert_uint_eq(st.frames_received, 2 * RAFT_MSG_TYPE_MAX);
        ck_assert_uint_eq(st.bad_frames, 0);
        ck_assert_uint_eq(st.dropped, 0);
        ck_assert_uint_eq(st.connects, 2);
        for (int j = 0; j < 3; j++) {
            for (uint8_t k = 0; k < RAFT_MSG_TYPE_MAX && i != j; k++) {
                gen_free(&g[i][j][k]);
            }
        }
    }
}
END_TEST

/* A 1 MB snapshot chunk and an append of 1000 entries arrive intact. */
START_TEST(test_transport_carries_a_large_chunk_and_a_thousand_entries)
{
    struct prng r = {.s = 2};
    start_mesh(2);
    struct raft_message msgs[2];
    uint8_t *chunk = malloc(1u << 20);
    ck_assert_ptr_nonnull(chunk);
    for (size_t i = 0; i < (1u << 20); i++) {
        chunk[i] = (uint8_t)prng_next(&r);
    }
    msgs[0] = (struct raft_message){
        .type = RAFT_MSG_SNAPSHOT, .from = 1, .to = 2, .term = 3};
    msgs[0].u.snapshot.meta =
        (struct raft_snapshot_meta){.index = 1000, .term = 3, .size = 5u << 20};
    msgs[0].u.snapshot.meta.conf.n = 2;
    msgs[0].u.snapshot.meta.conf.members[0] =
        (struct raft_member){1, RAFT_VOTER};
    msgs[0].u.snapshot.meta.conf.members[1] =
        (struct raft_member){2, RAFT_LEARNER};
    msgs[0].u.snapshot.offset = 1u << 20;
    msgs[0].u.snapshot.len = 1u << 20;
    msgs[0].u.snapshot.data = chunk;

    struct raft_entry *es = calloc(1000, sizeof(*es));
    ck_assert_ptr_nonnull(es);
    for (uint32_t i = 0; i < 1000; i++) {
        es[i] = (struct raft_entry){.term = 3,
                                    .index = 1001 + i,
                                    .type = RAFT_ENTRY_NORMAL,
                                    .len = i % 700,
                                    .data = chunk + i * 997};
    }
    msgs[1] = (struct raft_message){
        .type = RAFT_MSG_APPEND, .from = 1, .to = 2, .term = 3};
    msgs[1].u.append = (struct raft_msg_append){.prev_index = 1000,
                                                .prev_term = 3,
                                                .commit = 999,
                                                .n_entries = 1000,
                                                .entries = es};
    ck_assert_int_eq(transport_send(nodes[0].t, &msgs[0]), 0);
    ck_assert_int_eq(transport_send(nodes[0].t, &msgs[1]), 0);
    /* The transport copied both: the caller's memory may go at once. */
    uint8_t *want0 = encode_alloc(&msgs[0], &(size_t){0});
    uint8_t *want1 = encode_alloc(&msgs[1], &(size_t){0});
    size_t len0 = codec_message_size(&msgs[0]);
    size_t len1 = codec_message_size(&msgs[1]);
    memset(chunk, 0, 1u << 20);
    wait_received(&nodes[1], 2);
    ck_assert_uint_eq(nodes[1].recv[0].len, len0);
    ck_assert_int_eq(memcmp(nodes[1].recv[0].bytes, want0, len0), 0);
    ck_assert_uint_eq(nodes[1].recv[1].len, len1);
    ck_assert_int_eq(memcmp(nodes[1].recv[1].bytes, want1, len1), 0);
    free(want0);
    free(want1);
    free(es);
    free(chunk);
}
END_TEST

static struct raft_message heartbeat(raft_id from, raft_id to, uint64_t seq)
{
    struct raft_message m = {.type = RAFT_MSG_HEARTBEAT,
                             .from = from,
                             .to = to,
                             .term = 1,
                             .u.heartbeat = {.commit = seq, .read_seq = seq}};
    return m;
}

static bool one_to_two_down(void *arg)
{
    (void)arg;
    return !transport_connected(nodes[0].t, 2);
}

static bool one_to_two_up(void *arg)
{
    (void)arg;
    return transport_connected(nodes[0].t, 2) &&
           transport_connected(nodes[1].t, 1);
}

/* Node 2 stops and starts again: node 1 notices, reports sends as
 * unreachable meanwhile, reconnects, and traffic flows both ways. */
START_TEST(test_transport_reconnects_after_a_peer_restarts)
{
    start_mesh(2);
    struct raft_message m = heartbeat(1, 2, 1);
    ck_assert_int_eq(transport_send(nodes[0].t, &m), 0);
    wait_received(&nodes[1], 1);

    node_stop(&nodes[1]);
    node_clear(&nodes[1]);
    ck_assert(run_until(one_to_two_down, NULL));
    m = heartbeat(1, 2, 2);
    ck_assert_int_eq(transport_send(nodes[0].t, &m), TRANSPORT_EDOWN);
    ck_assert_uint_ge(nodes[0].unreachable[2], 1);

    /* Let a few reconnect attempts fail before the peer comes back. */
    run_for(300);
    int old_port = nodes[1].port;
    node_start(&nodes[1], 2);
    if (nodes[1].port != old_port) {
        ck_assert_int_eq(
            transport_add_peer(nodes[0].t, 2, "127.0.0.1", nodes[1].port), 0);
    }
    ck_assert_int_eq(
        transport_add_peer(nodes[1].t, 1, "127.0.0.1", nodes[0].port), 0);
    ck_assert(run_until(one_to_two_up, NULL));

    m = heartbeat(1, 2, 3);
    ck_assert_int_eq(transport_send(nodes[0].t, &m), 0);
    struct raft_message back = heartbeat(2, 1, 4);
    ck_assert_int_eq(transport_send(nodes[1].t, &back), 0);
    wait_received(&nodes[1], 1);
    check_received(&nodes[1], 1, &m, 1);
    wait_received(&nodes[0], 1);
    check_received(&nodes[0], 2, &back, 1);
    struct transport_stats st;
    transport_stats(nodes[0].t, &st);
    ck_assert_uint_eq(st.connects, 2);
}
END_TEST

/* ---------------------------------------------------------------------- */
/* Raw sockets speaking (or mangling) the protocol                         */

static int raw_connect(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    ck_assert_int_ge(fd, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET,
                             .sin_port = htons((uint16_t)port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ck_assert_int_eq(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    return fd;
}

static void raw_write(int fd, const uint8_t *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        ck_assert_int_gt(w, 0);
        p += w;
        n -= (size_t)w;
    }
}

/* Sends @payload as a frame; @corrupt flips a checksum bit. */
static void raw_frame(int fd, const uint8_t *payload, size_t len, bool corrupt)
{
    uint8_t hdr[CODEC_FRAME_HEADER];
    codec_frame_header(payload, (uint32_t)len, hdr);
    if (corrupt) {
        hdr[11] ^= 0x40;
    }
    raw_write(fd, hdr, sizeof(hdr));
    raw_write(fd, payload, len);
}

/* Sends a hello with nonce @nonce (all zeros if NULL). */
static void raw_hello_nonce(int fd,
                            uint64_t cluster,
                            raft_id from,
                            raft_id to,
                            const uint8_t *nonce)
{
    struct codec_hello h = {.version = CODEC_HELLO_VERSION,
                            .cluster_id = cluster,
                            .from = from,
                            .to = to};
    if (nonce != NULL) {
        memcpy(h.nonce, nonce, CODEC_NONCE_BYTES);
    }
    uint8_t buf[CODEC_HELLO_BYTES];
    codec_hello_encode(&h, buf);
    raw_frame(fd, buf, sizeof(buf), false);
}

static void raw_hello(int fd, uint64_t cluster, raft_id from, raft_id to)
{
    raw_hello_nonce(fd, cluster, from, to, NULL);
}

/* True once a whole challenge frame waits on the socket. */
static bool raw_challenge_ready(void *arg)
{
    int fd = *(int *)arg;
    uint8_t buf[CODEC_FRAME_HEADER + CODEC_CHALLENGE_BYTES];
    ssize_t n = recv(fd, buf, sizeof(buf), MSG_PEEK | MSG_DONTWAIT);
    return n == (ssize_t)sizeof(buf);
}

/* Reads the listener's challenge after a hello. */
static void raw_read_challenge(int fd, struct codec_challenge *ch)
{
    uint8_t buf[CODEC_FRAME_HEADER + CODEC_CHALLENGE_BYTES];
    uint32_t len;
    ck_assert_msg(run_until(raw_challenge_ready, &fd), "no challenge");
    ck_assert_int_eq(recv(fd, buf, sizeof(buf), 0), (ssize_t)sizeof(buf));
    ck_assert_int_eq(codec_frame_length(buf, &len), 0);
    ck_assert_uint_eq(len, CODEC_CHALLENGE_BYTES);
    ck_assert_int_eq(codec_frame_verify(buf, buf + CODEC_FRAME_HEADER), 0);
    ck_assert_int_eq(codec_challenge_decode(buf + CODEC_FRAME_HEADER,
                                            CODEC_CHALLENGE_BYTES, ch),
                     0);
}

static void raw_proof(int fd, const uint8_t proof[CODEC_PROOF_BYTES])
{
    uint8_t buf[CODEC_AUTH_BYTES];
    codec_auth_encode(proof, buf);
    raw_frame(fd, buf, sizeof(buf), false);
}

/* Speaks the whole handshake as member @from, knowing @secret, checks the
 * listener's proof, and stores the proof it sent in @sent (may be NULL). */
static void raw_handshake_as(int fd,
                             const char *secret,
                             raft_id from,
                             raft_id to,
                             uint8_t sent[CODEC_PROOF_BYTES])
{
    uint8_t nonce[CODEC_NONCE_BYTES], mine[CODEC_PROOF_BYTES],
        want[CODEC_PROOF_BYTES];
    struct codec_challenge ch;
    ck_assert_int_eq(auth_random(nonce, sizeof(nonce)), 0);
    raw_hello_nonce(fd, CLUSTER, from, to, nonce);
    raw_read_challenge(fd, &ch);
    ck_assert_int_eq(
        auth_proof((const uint8_t *)secret, strlen(secret), AUTH_ROLE_LISTENER,
                   CLUSTER, from, to, nonce, ch.nonce, want),
        0);
    ck_assert(auth_proof_equal(want, ch.proof));
    ck_assert_int_eq(
        auth_proof((const uint8_t *)secret, strlen(secret), AUTH_ROLE_DIALER,
                   CLUSTER, from, to, nonce, ch.nonce, mine),
        0);
    raw_proof(fd, mine);
    if (sent != NULL) {
        memcpy(sent, mine, CODEC_PROOF_BYTES);
    }
}

static void raw_handshake(int fd, raft_id from, raft_id to)
{
    raw_handshake_as(fd, SECRET, from, to, NULL);
}

static void raw_message(int fd, const struct raft_message *m, bool corrupt)
{
    size_t len;
    uint8_t *buf = encode_alloc(m, &len);
    raw_frame(fd, buf, len, corrupt);
    free(buf);
}

/* True once the other end closed @fd. */
static bool raw_closed(void *arg)
{
    int fd = *(int *)arg;
    struct pollfd p = {.fd = fd, .events = POLLIN};
    if (poll(&p, 1, 0) <= 0) {
        return false;
    }
    char c;
    ssize_t n = recv(fd, &c, 1, MSG_DONTWAIT);
    return n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK);
}

struct want_stats
{
    int fd;
    uint64_t rejected, bad, auth, senders;
};

static bool closed_and_counted(void *arg)
{
    struct want_stats *w = arg;
    struct transport_stats st;
    transport_stats(nodes[0].t, &st);
    return st.rejected_hellos == w->rejected && st.bad_frames == w->bad &&
           st.auth_failures == w->auth && st.bad_senders == w->senders &&
           raw_closed(&w->fd);
}

/* Hellos from another cluster, from an unknown id, to another id, with
 * another version or not a hello at all are counted and disconnected; a
 * good hello and handshake are followed by delivered messages. */
START_TEST(test_transport_rejects_hellos_from_strangers)
{
    node_start(&nodes[0], 1);
    /* Node 2 is known but not running: node 1's dialing fails quietly. */
    ck_assert_int_eq(
        transport_add_peer(nodes[0].t, 2, "127.0.0.1", next_port()), 0);
    struct
    {
        uint64_t cluster;
        raft_id from, to;
    } bad[] = {{CLUSTER + 1, 2, 1}, {CLUSTER, 3, 1}, {CLUSTER, 2, 7}};
    uint64_t rejected = 0;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        int fd = raw_connect(nodes[0].port);
        raw_hello(fd, bad[i].cluster, bad[i].from, bad[i].to);
        struct want_stats w = {fd, ++rejected, 0, 0, 0};
        ck_assert_msg(run_until(closed_and_counted, &w), "case %zu", i);
        close(fd);
    }
    /* A wrong version, and a heartbeat where the hello should be. */
    {
        /* Version 1 had no handshake: it is refused, never downgraded. */
        struct codec_hello h = {
            .version = 1, .cluster_id = CLUSTER, .from = 2, .to = 1};
        uint8_t buf[CODEC_HELLO_BYTES];
        codec_hello_encode(&h, buf);
        int fd = raw_connect(nodes[0].port);
        raw_frame(fd, buf, sizeof(buf), false);
        struct want_stats w = {fd, ++rejected, 0, 0, 0};
        ck_assert(run_until(closed_and_counted, &w));
        close(fd);
        fd = raw_connect(nodes[0].port);
        struct raft_message m = heartbeat(2, 1, 1);
        raw_message(fd, &m, false);
        w = (struct want_stats){fd, ++rejected, 0, 0, 0};
        ck_assert(run_until(closed_and_counted, &w));
        close(fd);
    }
    /* A first frame announcing a megabyte is refused on its header. */
    {
        uint8_t hdr[CODEC_FRAME_HEADER] = {0, 0, 0x10, 0};
        int fd = raw_connect(nodes[0].port);
        raw_write(fd, hdr, sizeof(hdr));
        struct want_stats w = {fd, ++rejected, 0, 0, 0};
        ck_assert(run_until(closed_and_counted, &w));
        close(fd);
    }
    ck_assert_uint_eq(nodes[0].n_recv, 0);

    int fd = raw_connect(nodes[0].port);
    raw_handshake(fd, 2, 1);
    struct raft_message m = heartbeat(2, 1, 5);
    raw_message(fd, &m, false);
    wait_received(&nodes[0], 1);
    check_received(&nodes[0], 2, &m, 1);
    ck_assert(!raw_closed(&fd));
    close(fd);
}
END_TEST

/* After a good hello and one good message: a bad checksum, a length over
 * the maximum, an undecodable payload and a message claiming another
 * sender each close the connection and count one bad frame; nothing after
 * the bad frame is delivered. */
START_TEST(test_transport_closes_connections_that_send_bad_frames)
{
    node_start(&nodes[0], 1);
    ck_assert_int_eq(
        transport_add_peer(nodes[0].t, 2, "127.0.0.1", next_port()), 0);
    ck_assert_int_eq(
        transport_add_peer(nodes[0].t, 3, "127.0.0.1", next_port()), 0);
    for (int kind = 0; kind < 4; kind++) {
        int fd = raw_connect(nodes[0].port);
        raw_handshake(fd, 2, 1);
        struct raft_message good = heartbeat(2, 1, (uint64_t)kind);
        raw_message(fd, &good, false);
        switch (kind) {
        case 0:
            raw_message(fd, &good, true);
            break;
        case 1: {
            uint8_t hdr[CODEC_FRAME_HEADER] = {0};
            uint32_t len = CODEC_FRAME_MAX + 1;
            for (int i = 0; i < 4; i++) {
                hdr[i] = (uint8_t)(len >> (8 * i));
            }
            raw_write(fd, hdr, sizeof(hdr));
            break;
        }
        case 2: {
            uint8_t junk[40];
            memset(junk, 0xee, sizeof(junk));
            raw_frame(fd, junk, sizeof(junk), false);
            break;
        }
        default: {
            struct raft_message spoof = heartbeat(3, 1, 9);
            raw_message(fd, &spoof, false);
            break;
        }
        }
        raw_message(fd, &good, false);
        /* The spoofed sender is counted apart from the malformed frames. */
        struct want_stats w = {fd, 0, (uint64_t)(kind < 3 ? kind + 1 : 3), 0,
                               kind == 3 ? 1u : 0u};
        ck_assert_msg(run_until(closed_and_counted, &w), "kind %d", kind);
        ck_assert_uint_eq(nodes[0].n_recv, (size_t)kind + 1);
        close(fd);
    }
}
END_TEST

static bool readable(void *arg)
{
    struct pollfd p = {*(int *)arg, POLLIN, 0};
    return poll(&p, 1, 0) == 1;
}

/* A node listening on 127.0.0.2 dials its peer from 127.0.0.2, not from
 * 127.0.0.1: a firewall rule on the node's address (an operator's, or the
 * fault-injection suite's partitions) must see its outgoing connections. */
START_TEST(test_transport_dials_peers_from_its_own_address)
{
    listen_host = "127.0.0.2";
    node_start(&nodes[0], 1);
    listen_host = "127.0.0.1";
    int lfd = socket(AF_INET, SOCK_STREAM, 0);
    ck_assert_int_ge(lfd, 0);
    struct sockaddr_in sa;
    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int port = 0;
    for (int attempt = 0; attempt < 50 && port == 0; attempt++) {
        int p = next_port();
        sa.sin_port = htons((uint16_t)p);
        if (bind(lfd, (struct sockaddr *)&sa, sizeof(sa)) == 0) {
            port = p;
        }
    }
    ck_assert_int_ne(port, 0);
    ck_assert_int_eq(listen(lfd, 4), 0);
    ck_assert_int_eq(transport_add_peer(nodes[0].t, 2, "127.0.0.1", port), 0);
    ck_assert(run_until(readable, &lfd));
    struct sockaddr_in from;
    socklen_t len = sizeof(from);
    int cfd = accept(lfd, (struct sockaddr *)&from, &len);
    ck_assert_int_ge(cfd, 0);
    char text[INET_ADDRSTRLEN];
    inet_ntop(AF_INET, &from.sin_addr, text, sizeof(text));
    ck_assert_str_eq(text, "127.0.0.2");
    close(cfd);
    close(lfd);
}
END_TEST

/* Two nodes with different secrets never connect: each refuses the
 * other's proof, whichever side dials, and nothing is delivered. */
START_TEST(test_transport_refuses_a_peer_without_the_secret)
{
    nodes[1].secret = "another-secret-0123456789abcdef0123456789";
    start_mesh_nowait(2);
    run_for(500);
    ck_assert(!transport_connected(nodes[0].t, 2));
    ck_assert(!transport_connected(nodes[1].t, 1));
    struct raft_message m = heartbeat(1, 2, 1);
    ck_assert_int_eq(transport_send(nodes[0].t, &m), TRANSPORT_EDOWN);
    struct transport_stats a, b;
    transport_stats(nodes[0].t, &a);
    transport_stats(nodes[1].t, &b);
    /* Each dialer finds the listener's proof wrong and hangs up. */
    ck_assert_uint_ge(a.auth_failures, 1);
    ck_assert_uint_ge(b.auth_failures, 1);
    ck_assert_uint_eq(a.connects, 0);
    ck_assert_uint_eq(b.connects, 0);
    ck_assert_uint_eq(nodes[0].n_recv, 0);
    ck_assert_uint_eq(nodes[1].n_recv, 0);
}
END_TEST

/* A stranger who knows the cluster id and a member's id, but not the
 * secret, gets a challenge and nothing more: a wrong proof, or a message
 * where the proof should be, closes the connection and is counted, and
 * nothing it sent is delivered. */
START_TEST(test_transport_refuses_a_stranger_who_knows_only_the_ids)
{
    node_start(&nodes[0], 1);
    ck_assert_int_eq(
        transport_add_peer(nodes[0].t, 2, "127.0.0.1", next_port()), 0);
    struct codec_challenge ch;
    uint8_t zeros[CODEC_PROOF_BYTES] = {0};

    int fd = raw_connect(nodes[0].port);
    raw_hello(fd, CLUSTER, 2, 1);
    raw_read_challenge(fd, &ch);
    raw_proof(fd, zeros);
    struct raft_message m = heartbeat(2, 1, 1);
    raw_message(fd, &m, false);
    struct want_stats w = {fd, 0, 0, 1, 0};
    ck_assert(run_until(closed_and_counted, &w));
    close(fd);

    fd = raw_connect(nodes[0].port);
    raw_hello(fd, CLUSTER, 2, 1);
    raw_message(fd, &m, false);
    w = (struct want_stats){fd, 0, 0, 2, 0};
    ck_assert(run_until(closed_and_counted, &w));
    close(fd);

    /* The right proof with the wrong secret. */
    fd = raw_connect(nodes[0].port);
    uint8_t nonce[CODEC_NONCE_BYTES] = {7};
    uint8_t forged[CODEC_PROOF_BYTES];
    const char *guess = "0123456789abcdef0123456789abcdef-guess";
    raw_hello_nonce(fd, CLUSTER, 2, 1, nonce);
    raw_read_challenge(fd, &ch);
    ck_assert_int_eq(
        auth_proof((const uint8_t *)guess, strlen(guess), AUTH_ROLE_DIALER,
                   CLUSTER, 2, 1, nonce, ch.nonce, forged),
        0);
    raw_proof(fd, forged);
    raw_message(fd, &m, false);
    w = (struct want_stats){fd, 0, 0, 3, 0};
    ck_assert(run_until(closed_and_counted, &w));
    close(fd);
    ck_assert_uint_eq(nodes[0].n_recv, 0);
}
END_TEST

/* A proof recorded from a genuine handshake does not open another
 * connection (the listener's nonce is new each time); the listener's own
 * proof sent back to it does not pass as the dialer's (the roles differ);
 * and a proof made for another member does not pass for this one (the ids
 * are inside the MAC). */
START_TEST(test_transport_refuses_replayed_and_reflected_proofs)
{
    node_start(&nodes[0], 1);
    ck_assert_int_eq(
        transport_add_peer(nodes[0].t, 2, "127.0.0.1", next_port()), 0);
    ck_assert_int_eq(
        transport_add_peer(nodes[0].t, 3, "127.0.0.1", next_port()), 0);
    uint8_t nonce[CODEC_NONCE_BYTES] = {1, 2, 3};
    uint8_t recorded[CODEC_PROOF_BYTES];
    struct codec_challenge ch;

    /* The genuine handshake the attacker records. */
    int good = raw_connect(nodes[0].port);
    raw_hello_nonce(good, CLUSTER, 2, 1, nonce);
    raw_read_challenge(good, &ch);
    ck_assert_int_eq(
        auth_proof((const uint8_t *)SECRET, strlen(SECRET), AUTH_ROLE_DIALER,
                   CLUSTER, 2, 1, nonce, ch.nonce, recorded),
        0);
    raw_proof(good, recorded);
    struct raft_message m = heartbeat(2, 1, 1);
    raw_message(good, &m, false);
    wait_received(&nodes[0], 1);

    /* Replayed, hello and proof byte for byte. */
    int fd = raw_connect(nodes[0].port);
    raw_hello_nonce(fd, CLUSTER, 2, 1, nonce);
    raw_read_challenge(fd, &ch);
    raw_proof(fd, recorded);
    struct want_stats w = {fd, 0, 0, 1, 0};
    ck_assert(run_until(closed_and_counted, &w));
    close(fd);

    /* Reflected: the listener's proof as ours. */
    fd = raw_connect(nodes[0].port);
    raw_hello_nonce(fd, CLUSTER, 2, 1, nonce);
    raw_read_challenge(fd, &ch);
    raw_proof(fd, ch.proof);
    w = (struct want_stats){fd, 0, 0, 2, 0};
    ck_assert(run_until(closed_and_counted, &w));
    close(fd);

    /* A valid proof for 2 -> 1 offered on a connection claiming 3. */
    fd = raw_connect(nodes[0].port);
    raw_hello_nonce(fd, CLUSTER, 3, 1, nonce);
    raw_read_challenge(fd, &ch);
    uint8_t other[CODEC_PROOF_BYTES];
    ck_assert_int_eq(
        auth_proof((const uint8_t *)SECRET, strlen(SECRET), AUTH_ROLE_DIALER,
                   CLUSTER, 2, 1, nonce, ch.nonce, other),
        0);
    raw_proof(fd, other);
    w = (struct want_stats){fd, 0, 0, 3, 0};
    ck_assert(run_until(closed_and_counted, &w));
    close(fd);

    /* The genuine connection is untouched by all of it. */
    m = heartbeat(2, 1, 2);
    raw_message(good, &m, false);
    wait_received(&nodes[0], 2);
    ck_assert(!raw_closed(&good));
    close(good);
}
END_TEST

static bool one_received_more(void *arg)
{
    size_t *before = arg;
    return nodes[0].n_recv > *before;
}

/* The attack of issue 12: hellos claiming a member's id used to close
 * that member's connection. Now only a connection that finished the
 * handshake displaces an older one of the same member, so strangers'
 * hellos, silent or with a wrong proof, leave node 2's connection to node
 * 1 up: it never reconnects and its messages keep arriving. */
START_TEST(test_transport_a_forged_hello_does_not_displace_a_member)
{
    start_mesh(2);
    struct raft_message m = heartbeat(2, 1, 1);
    ck_assert_int_eq(transport_send(nodes[1].t, &m), 0);
    wait_received(&nodes[0], 1);

    int fds[8];
    for (int i = 0; i < 8; i++) {
        struct codec_challenge ch;
        uint8_t zeros[CODEC_PROOF_BYTES] = {0};
        fds[i] = raw_connect(nodes[0].port);
        raw_hello(fds[i], CLUSTER, 2, 1);
        raw_read_challenge(fds[i], &ch);
        if (i % 2 == 1) {
            raw_proof(fds[i], zeros);
        }
    }
    run_for(100);
    for (uint64_t k = 2; k < 12; k++) {
        size_t before = nodes[0].n_recv;
        m = heartbeat(2, 1, k);
        ck_assert_int_eq(transport_send(nodes[1].t, &m), 0);
        ck_assert(run_until(one_received_more, &before));
    }
    struct transport_stats st;
    transport_stats(nodes[1].t, &st);
    ck_assert_uint_eq(st.connects, 1);
    ck_assert(transport_connected(nodes[1].t, 1));
    transport_stats(nodes[0].t, &st);
    ck_assert_uint_eq(st.auth_failures, 4);
    for (int i = 0; i < 8; i++) {
        close(fds[i]);
    }
}
END_TEST

struct want_timeouts
{
    int *fds;
    int n;
    uint64_t timeouts;
};

static bool all_closed_and_timed_out(void *arg)
{
    struct want_timeouts *w = arg;
    struct transport_stats st;
    transport_stats(nodes[0].t, &st);
    if (st.handshake_timeouts != w->timeouts) {
        return false;
    }
    for (int i = 0; i < w->n; i++) {
        if (!raw_closed(&w->fds[i])) {
            return false;
        }
    }
    return true;
}

/* A connection that says nothing, or stops after its hello, is closed
 * once HANDSHAKE_TIMEOUT_MS (5 s) pass: strangers cannot hold the node's
 * descriptors. */
START_TEST(test_transport_closes_handshakes_that_take_too_long)
{
    node_start(&nodes[0], 1);
    ck_assert_int_eq(
        transport_add_peer(nodes[0].t, 2, "127.0.0.1", next_port()), 0);
    int fds[2];
    struct codec_challenge ch;
    fds[0] = raw_connect(nodes[0].port);
    fds[1] = raw_connect(nodes[0].port);
    raw_hello(fds[1], CLUSTER, 2, 1);
    raw_read_challenge(fds[1], &ch);
    run_for(1000);
    ck_assert(!raw_closed(&fds[0]));
    ck_assert(!raw_closed(&fds[1]));
    struct want_timeouts w = {fds, 2, 2};
    ck_assert(run_until(all_closed_and_timed_out, &w));
    close(fds[0]);
    close(fds[1]);
}
END_TEST

/* A transport without a secret is refused unless insecure mode is chosen
 * in so many words, and so is a secret shorter than AUTH_SECRET_MIN; two
 * insecure nodes still talk, but an insecure node and one with a secret
 * do not. */
START_TEST(test_transport_requires_a_secret_or_insecure_mode)
{
    struct transport_options o = {.cluster_id = CLUSTER,
                                  .self = 1,
                                  .listen_host = "127.0.0.1",
                                  .listen_port = next_port()};
    struct transport *t = NULL;
    char err[256];
    ck_assert_int_eq(transport_create(&loop, &o, &t, err, sizeof(err)),
                     TRANSPORT_ENOSECRET);
    o.secret = (const uint8_t *)"short";
    o.secret_len = 5;
    ck_assert_int_eq(transport_create(&loop, &o, &t, err, sizeof(err)),
                     TRANSPORT_ENOSECRET);
    o.insecure = true;
    ck_assert_int_eq(transport_create(&loop, &o, &t, err, sizeof(err)),
                     TRANSPORT_ENOSECRET);
    ck_assert_ptr_null(t);

    nodes[0].insecure = true;
    nodes[1].insecure = true;
    start_mesh(2);
    struct raft_message m = heartbeat(1, 2, 1);
    ck_assert_int_eq(transport_send(nodes[0].t, &m), 0);
    wait_received(&nodes[1], 1);

    node_start(&nodes[2], 3); /* has the secret */
    ck_assert_int_eq(
        transport_add_peer(nodes[2].t, 1, "127.0.0.1", nodes[0].port), 0);
    ck_assert_int_eq(
        transport_add_peer(nodes[0].t, 3, "127.0.0.1", nodes[2].port), 0);
    run_for(500);
    ck_assert(!transport_connected(nodes[2].t, 1));
    ck_assert(!transport_connected(nodes[0].t, 3));
}
END_TEST

/* A send to a peer that is not connected is dropped with EDOWN and
 * reported; a send to an unknown id or of an invalid message is refused
 * without a report. */
START_TEST(test_transport_reports_sends_to_a_down_peer_as_unreachable)
{
    node_start(&nodes[0], 1);
    ck_assert_int_eq(
        transport_add_peer(nodes[0].t, 2, "127.0.0.1", next_port()), 0);
    struct raft_message m = heartbeat(1, 2, 1);
    ck_assert_int_eq(transport_send(nodes[0].t, &m), TRANSPORT_EDOWN);
    ck_assert_uint_eq(nodes[0].unreachable[2], 1);
    m.to = 9;
    ck_assert_int_eq(transport_send(nodes[0].t, &m), TRANSPORT_EUNKNOWN);
    m.to = 2;
    m.type = 0;
    ck_assert_int_eq(transport_send(nodes[0].t, &m), TRANSPORT_EINVAL);
    ck_assert_int_eq(transport_add_peer(nodes[0].t, 1, "127.0.0.1", 1),
                     TRANSPORT_EINVAL);
    ck_assert_int_eq(transport_add_peer(nodes[0].t, 0, "127.0.0.1", 1),
                     TRANSPORT_EINVAL);
    ck_assert_int_eq(transport_add_peer(nodes[0].t, 5, "127.0.0.1", 70000),
                     TRANSPORT_EADDR);
    /* Let the dialing fail a few times: still down, nothing else said. */
    run_for(200);
    ck_assert(!transport_connected(nodes[0].t, 2));
    struct transport_stats st;
    transport_stats(nodes[0].t, &st);
    ck_assert_uint_eq(st.dropped, 1);
    ck_assert_uint_eq(st.connects, 0);
    ck_assert_uint_eq(nodes[0].unreachable[2], 1);
}
END_TEST

/* With a 10000-byte queue, a second 6000-byte chunk queued behind the
 * first is dropped with EFULL and reported; once the queue drains, sends
 * succeed again. */
START_TEST(test_transport_drops_sends_over_the_queue_limit)
{
    nodes[0].queue_max = 10000;
    start_mesh(2);
    static uint8_t data[6000];
    struct raft_message m = {.type = RAFT_MSG_SNAPSHOT, .from = 1, .to = 2};
    m.u.snapshot.len = sizeof(data);
    m.u.snapshot.data = data;
    ck_assert_int_eq(transport_send(nodes[0].t, &m), 0);
    ck_assert_int_eq(transport_send(nodes[0].t, &m), TRANSPORT_EFULL);
    ck_assert_uint_eq(nodes[0].unreachable[2], 1);
    wait_received(&nodes[1], 1);
    run_for(50);
    ck_assert_int_eq(transport_send(nodes[0].t, &m), 0);
    wait_received(&nodes[1], 2);
    struct transport_stats st;
    transport_stats(nodes[0].t, &st);
    ck_assert_uint_eq(st.dropped, 1);
    ck_assert_uint_eq(st.frames_sent, 2);
}
END_TEST

/* Adding a peer again at its address keeps the connection; a removed peer
 * is disconnected and unknown; adding it back reconnects. */
START_TEST(test_transport_forgets_a_removed_peer)
{
    start_mesh(2);
    ck_assert_int_eq(
        transport_add_peer(nodes[0].t, 2, "127.0.0.1", nodes[1].port), 0);
    ck_assert(transport_connected(nodes[0].t, 2));
    transport_remove_peer(nodes[0].t, 2);
    ck_assert(!transport_connected(nodes[0].t, 2));
    struct raft_message m = heartbeat(1, 2, 1);
    ck_assert_int_eq(transport_send(nodes[0].t, &m), TRANSPORT_EUNKNOWN);
    ck_assert_int_eq(
        transport_add_peer(nodes[0].t, 2, "127.0.0.1", nodes[1].port), 0);
    ck_assert(run_until(one_to_two_up, NULL));
    ck_assert_int_eq(transport_send(nodes[0].t, &m), 0);
    wait_received(&nodes[1], 1);
    struct transport_stats st;
    transport_stats(nodes[0].t, &st);
    ck_assert_uint_eq(st.connects, 2);
}
END_TEST

static bool both_closed(void *arg)
{
    (void)arg;
    return nodes[0].closed == 1 && nodes[1].closed == 1;
}

/* Closing both ends with megabytes still queued releases every handle:
 * each close callback runs once and the loop closes cleanly (teardown),
 * and no unreachable report comes from a closing transport. */
START_TEST(test_transport_close_releases_everything_with_writes_pending)
{
    start_mesh(2);
    uint8_t *data = calloc(1, 1u << 20);
    ck_assert_ptr_nonnull(data);
    struct raft_message m = {.type = RAFT_MSG_SNAPSHOT, .from = 1, .to = 2};
    m.u.snapshot.len = 1u << 20;
    m.u.snapshot.data = data;
    for (int i = 0; i < 20; i++) {
        ck_assert_int_eq(transport_send(nodes[0].t, &m), 0);
    }
    free(data);
    transport_close(nodes[0].t, on_closed, &nodes[0]);
    transport_close(nodes[1].t, on_closed, &nodes[1]);
    nodes[0].t = nodes[1].t = NULL;
    ck_assert(run_until(both_closed, NULL));
    run_for(20);
    ck_assert_uint_eq(nodes[0].closed, 1);
    ck_assert_uint_eq(nodes[1].closed, 1);
    ck_assert_uint_eq(nodes[0].unreachable[2], 0);
}
END_TEST

/* Every code has its own text. */
START_TEST(test_transport_strerror_names_every_code)
{
    static const int codes[] = {TRANSPORT_EINVAL,   TRANSPORT_ENOMEM,
                                TRANSPORT_EADDR,    TRANSPORT_EUNKNOWN,
                                TRANSPORT_EFULL,    TRANSPORT_EDOWN,
                                TRANSPORT_ENOSECRET};
    const char *unknown = transport_strerror(-1);
    for (size_t i = 0; i < sizeof(codes) / sizeof(codes[0]); i++) {
        ck_assert_str_ne(transport_strerror(codes[i]), unknown);
        for (size_t j = 0; j < i; j++) {
            ck_assert_str_ne(transport_strerror(codes[i]),
                             transport_strerror(codes[j]));
        }
    }
}
END_TEST

/* ---------------------------------------------------------------------- */
/* Mutual TLS                                                              */

/* Members with certificates of the cluster's CA connect and exchange
 * messages with TLS alone, no secret. */
START_TEST(test_transport_tls_members_talk_without_a_secret)
{
    for (int i = 0; i < 3; i++) {
        static const char *names[] = {"node-1", "node-2", "node-3"};
        nodes[i].tls_sub = "a";
        nodes[i].tls_name = names[i];
        nodes[i].tls_only = true;
    }
    start_mesh(3);
    struct raft_message m = heartbeat(1, 2, 1);
    ck_assert_int_eq(transport_send(nodes[0].t, &m), 0);
    struct raft_message m2 = heartbeat(3, 2, 2);
    ck_assert_int_eq(transport_send(nodes[2].t, &m2), 0);
    wait_received(&nodes[1], 2);
    check_received(&nodes[1], 1, &m, 1);
    check_received(&nodes[1], 3, &m2, 1);
}
END_TEST

/* Member 2 holding member 3's (valid) certificate connects neither way:
 * member 1 dialing 2 finds member 3's name and hangs up; 2's hello to 1
 * claims an id its certificate does not name and is refused and counted.
 * Messages from a connection are accepted only for the member its
 * certificate names. */
START_TEST(test_transport_tls_refuses_a_member_with_another_members_certificate)
{
    nodes[0].tls_sub = nodes[1].tls_sub = "a";
    nodes[0].tls_name = "node-1";
    nodes[1].tls_name = "node-3";
    start_mesh_nowait(2);
    run_for(800);
    ck_assert(!transport_connected(nodes[0].t, 2));
    ck_assert(!transport_connected(nodes[1].t, 1));
    struct transport_stats st;
    transport_stats(nodes[0].t, &st);
    ck_assert_uint_ge(st.cert_mismatches, 1);
    ck_assert_uint_eq(st.connects, 0);
    ck_assert_uint_eq(nodes[0].n_recv, 0);
    ck_assert_uint_eq(nodes[1].n_recv, 0);
}
END_TEST

/* A peer whose certificate is of another CA, or expired, never connects;
 * a stranger without TLS who sends a hello in clear is closed with
 * nothing delivered; the same member with a good certificate then
 * connects at once. */
START_TEST(test_transport_tls_refuses_peers_without_a_good_certificate)
{
    nodes[0].tls_sub = "a";
    nodes[0].tls_name = "node-1";
    static const char *subs[] = {"b", "expired"};
    node_start(&nodes[0], 1);
    for (size_t i = 0; i < 2; i++) {
        nodes[1].tls_sub = subs[i];
        nodes[1].tls_name = "node-2";
        node_start(&nodes[1], 2);
        if (i == 0) {
            mesh(2);
        } else {
            ck_assert_int_eq(
                transport_add_peer(nodes[1].t, 1, "127.0.0.1", nodes[0].port),
                0);
        }
        run_for(600);
        ck_assert_msg(!transport_connected(nodes[0].t, 2), "%s", subs[i]);
        ck_assert_msg(!transport_connected(nodes[1].t, 1), "%s", subs[i]);
        node_stop(&nodes[1]);
    }
    int fd = raw_connect(nodes[0].port);
    raw_hello(fd, CLUSTER, 2, 1);
    ck_assert(run_until(raw_closed, &fd));
    close(fd);
    ck_assert_uint_eq(nodes[0].n_recv, 0);

    nodes[1].tls_sub = "a";
    node_start(&nodes[1], 2);
    ck_assert_int_eq(
        transport_add_peer(nodes[1].t, 1, "127.0.0.1", nodes[0].port), 0);
    mesh_count = 2;
    ck_assert(run_until(all_connected, NULL));
}
END_TEST

static Suite *transport_suite(void)
{
    Suite *s = suite_create("transport");
    TCase *tc = tcase_create("transport");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_transport_three_nodes_exchange_every_message_type);
    tcase_add_test(tc,
                   test_transport_carries_a_large_chunk_and_a_thousand_entries);
    tcase_add_test(tc, test_transport_reconnects_after_a_peer_restarts);
    tcase_add_test(tc, test_transport_rejects_hellos_from_strangers);
    tcase_add_test(tc, test_transport_dials_peers_from_its_own_address);
    tcase_add_test(tc, test_transport_closes_connections_that_send_bad_frames);
    tcase_add_test(tc, test_transport_refuses_a_peer_without_the_secret);
    tcase_add_test(tc,
                   test_transport_refuses_a_stranger_who_knows_only_the_ids);
    tcase_add_test(tc, test_transport_refuses_replayed_and_reflected_proofs);
    tcase_add_test(tc,
                   test_transport_a_forged_hello_does_not_displace_a_member);
    tcase_add_test(tc, test_transport_closes_handshakes_that_take_too_long);
    tcase_add_test(tc, test_transport_requires_a_secret_or_insecure_mode);
    tcase_add_test(tc,
                   test_transport_reports_sends_to_a_down_peer_as_unreachable);
    tcase_add_test(tc, test_transport_drops_sends_over_the_queue_limit);
    tcase_add_test(tc, test_transport_forgets_a_removed_peer);
    tcase_add_test(
        tc, test_transport_close_releases_everything_with_writes_pending);
    tcase_add_test(tc, test_transport_strerror_names_every_code);
    tcase_add_test(tc, test_transport_tls_members_talk_without_a_secret);
    tcase_add_test(
        tc,
        test_transport_tls_refuses_a_member_with_another_members_certificate);
    tcase_add_test(tc,
                   test_transport_tls_refuses_peers_without_a_good_certificate);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    tls_certs_make();
    SRunner *sr = srunner_create(transport_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    tls_certs_remove();
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
