/*
 * test_tls_cluster.c - a 3-node ballotd cluster with TLS on every port
 * (docs/security.md, "TLS"), certificates from scripts/tls-certs.sh:
 * every port tried without TLS, without a certificate, with a certificate
 * of another CA, an expired one and (peer port) another member's;
 * redis-cli --tls, redis-py with ssl and `ballot --tls` against it; and a
 * SIGHUP that takes a new certificate while the cluster keeps going.
 */
#include <arpa/inet.h>
#include <check.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "codec.h"
#include "harness.h"
#include "tls_certs.h"

#define LEADER_TIMEOUT_MS 15000
#define DEFAULT_CLUSTER 0xba11075ULL

static char certs[300]; /* this cluster's copy of CA "a"'s files */

/* Opens a TLS connection to 127.0.0.1:@port with the certificate
 * DIR/@sub/@name.crt (NULL: none), trusting CA "a". NULL if the
 * handshake fails. */
static SSL *tls_open(int port, const char *sub, const char *name, int *fd_out)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    ck_assert_ptr_nonnull(ctx);
    char path[700], key[700];
    snprintf(path, sizeof(path), "%s/ca.crt", certs);
    ck_assert_int_eq(SSL_CTX_load_verify_locations(ctx, path, NULL), 1);
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
    if (name != NULL) {
        tls_certs_pair(sub, name, path, key, sizeof(path));
        ck_assert_int_eq(SSL_CTX_use_certificate_chain_file(ctx, path), 1);
        ck_assert_int_eq(
            SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM), 1);
    }
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    ck_assert_int_ge(fd, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET,
                             .sin_port = htons((uint16_t)port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    struct timeval tv = {.tv_sec = 2};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    SSL *ssl = SSL_new(ctx);
    SSL_CTX_free(ctx); /* the SSL holds a reference */
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0 ||
        SSL_set_fd(ssl, fd) != 1 || SSL_connect(ssl) != 1) {
        SSL_free(ssl);
        close(fd);
        ERR_clear_error();
        return NULL;
    }
    *fd_out = fd;
    return ssl;
}

static void tls_close(SSL *ssl, int fd)
{
    SSL_free(ssl);
    close(fd);
    ERR_clear_error();
}

/* Sends @req and reads what comes back until @want appears, the peer
 * closes or 2 s pass. Returns the bytes read (NUL-terminated in @out). */
static size_t tls_ask(SSL *ssl,
                      const void *req,
                      size_t len,
                      const char *want,
                      char *out,
                      size_t cap)
{
    size_t have = 0;
    out[0] = '\0';
    if (SSL_write(ssl, req, (int)len) != (int)len) {
        ERR_clear_error();
        return 0;
    }
    while (have + 1 < cap) {
        int n = SSL_read(ssl, out + have, (int)(cap - 1 - have));
        if (n <= 0) {
            break;
        }
        have += (size_t)n;
        out[have] = '\0';
        if (want != NULL && strstr(out, want) != NULL) {
            break;
        }
    }
    ERR_clear_error();
    return have;
}

/* True if a client with DIR/@sub/@name (NULL: no certificate) gets an
 * answer to @req on @port. With TLS 1.3 a refused client certificate is
 * noticed after the client's handshake, at its first read. */
static bool port_answers(int port,
                         const char *sub,
                         const char *name,
                         const char *req,
                         const char *want)
{
    int fd;
    char out[4096];
    SSL *ssl = tls_open(port, sub, name, &fd);
    if (ssl == NULL) {
        return false;
    }
    size_t n = tls_ask(ssl, req, strlen(req), want, out, sizeof(out));
    tls_close(ssl, fd);
    return n > 0 && strstr(out, want) != NULL;
}

/* True if a plain TCP client (no TLS) gets any byte back for @req. */
static bool port_answers_in_clear(int port, const char *req)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET,
                             .sin_port = htons((uint16_t)port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    struct timeval tv = {.tv_sec = 2};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    ck_assert_int_eq(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    (void)send(fd, req, strlen(req), MSG_NOSIGNAL);
    char buf[256];
    ssize_t n = recv(fd, buf, sizeof(buf) - 1, 0);
    close(fd);
    /* A TLS alert is binary; an answer in clear would start with '+',
     * '-' or "HTTP". */
    return n > 0 && (buf[0] == '+' || buf[0] == '-' || buf[0] == '$' ||
                     strncmp(buf, "HTTP", 4) == 0);
}

/* True if the peer port, reached with DIR/@sub/@name, answers a hello
 * from member @from with a challenge. */
static bool peer_challenges(int port,
                            const char *sub,
                            const char *name,
                            raft_id from,
                            raft_id to)
{
    int fd;
    SSL *ssl = tls_open(port, sub, name, &fd);
    if (ssl == NULL) {
        return false;
    }
    struct codec_hello h = {.version = CODEC_HELLO_VERSION,
                            .cluster_id = DEFAULT_CLUSTER,
                            .from = from,
                            .to = to};
    uint8_t frame[CODEC_FRAME_HEADER + CODEC_HELLO_BYTES];
    codec_hello_encode(&h, frame + CODEC_FRAME_HEADER);
    codec_frame_header(frame + CODEC_FRAME_HEADER, CODEC_HELLO_BYTES, frame);
    char out[256];
    size_t n = tls_ask(ssl, frame, sizeof(frame), NULL, out, sizeof(out));
    tls_close(ssl, fd);
    return n >= CODEC_FRAME_HEADER + CODEC_CHALLENGE_BYTES;
}

/* A command over TLS to node @id's client port as "client"; the reply's
 * text in @out. */
static void node_call(struct cluster *c,
                      unsigned id,
                      const char *inline_cmd,
                      const char *want,
                      char *out,
                      size_t cap)
{
    int fd;
    SSL *ssl = tls_open(c->nodes[id - 1].client_port, "a", "client", &fd);
    ck_assert_ptr_nonnull(ssl);
    tls_ask(ssl, inline_cmd, strlen(inline_cmd), want, out, cap);
    tls_close(ssl, fd);
}

/* The leader, by INFO over TLS; 0 after the timeout. */
static unsigned wait_leader(struct cluster *c)
{
    for (int tries = 0; tries < LEADER_TIMEOUT_MS / 100; tries++) {
        for (unsigned i = 1; i <= c->n; i++) {
            char out[8192];
            int fd;
            SSL *ssl =
                tls_open(c->nodes[i - 1].client_port, "a", "client", &fd);
            if (ssl == NULL) {
                continue;
            }
            tls_ask(ssl, "INFO raft\r\n", 11, "\r\n\r\n", out, sizeof(out));
            tls_close(ssl, fd);
            if (strstr(out, "role:leader") != NULL) {
                return i;
            }
        }
        usleep(100000);
    }
    return 0;
}

/* Field @field of INFO @section on node @id. */
static long long info_int(struct cluster *c,
                          unsigned id,
                          const char *section,
                          const char *field)
{
    char out[16384], cmd[64];
    snprintf(cmd, sizeof(cmd), "INFO %s\r\n", section);
    node_call(c, id, cmd, "\r\n\r\n", out, sizeof(out));
    const char *p = strstr(out, field);
    ck_assert_msg(p != NULL, "no %s in %s", field, out);
    return atoll(p + strlen(field));
}

/* The value of metric @name on node @id's metrics port (over TLS). */
static double metric(struct cluster *c, unsigned id, const char *name)
{
    int fd;
    static char out[1 << 18];
    SSL *ssl = tls_open(c->nodes[id - 1].metrics_port, "a", "client", &fd);
    ck_assert_ptr_nonnull(ssl);
    static const char req[] = "GET /metrics HTTP/1.0\r\n\r\n";
    tls_ask(ssl, req, sizeof(req) - 1, NULL, out, sizeof(out));
    tls_close(ssl, fd);
    char line[128];
    snprintf(line, sizeof(line), "\n%s ", name);
    const char *p = strstr(out, line);
    ck_assert_msg(p != NULL, "no %s", name);
    return strtod(p + strlen(line), NULL);
}

static void start_tls_cluster_args(struct cluster *c, const char *const *args)
{
    cl_prepare_args(c, 3, args);
    char src[600], cmd[1400];
    tls_certs_path(src, sizeof(src), "a", "");
    snprintf(certs, sizeof(certs), "%s/certs", c->root);
    snprintf(cmd, sizeof(cmd), "cp -r %s %s", src, certs);
    ck_assert_int_eq(system(cmd), 0);
    c->tls_dir = certs;
    for (unsigned i = 1; i <= 3; i++) {
        cl_start_node(c, i);
    }
    ck_assert_msg(wait_leader(c) != 0, "no leader; see %s", c->root);
}

static void start_tls_cluster(struct cluster *c)
{
    start_tls_cluster_args(c, NULL);
}

/* Every port of a TLS node refuses clients that speak no TLS, show no
 * certificate, one of another CA or an expired one; the peer port also
 * refuses a valid certificate of another member; the same requests with
 * a good certificate are answered, so the refusals are the certificates'
 * doing. */
START_TEST(
    test_tls_cluster_every_port_refuses_strangers_without_a_good_certificate)
{
    struct cluster c;
    start_tls_cluster(&c);
    struct
    {
        int port;
        const char *req;
        const char *want;
    } ports[] = {
        {c.nodes[0].client_port, "PING\r\n", "+PONG"},
        {c.nodes[0].metrics_port, "GET /health HTTP/1.0\r\n\r\n", "200 OK"},
    };
    for (size_t i = 0; i < 2; i++) {
        int p = ports[i].port;
        ck_assert_msg(
            port_answers(p, "a", "client", ports[i].req, ports[i].want),
            "port %d", p);
        ck_assert(!port_answers_in_clear(p, ports[i].req));
        ck_assert(!port_answers(p, "a", NULL, ports[i].req, ports[i].want));
        ck_assert(!port_answers(p, "b", "client", ports[i].req, ports[i].want));
        ck_assert(
            !port_answers(p, "expired", "client", ports[i].req, ports[i].want));
    }
    int peer = c.nodes[0].peer_port;
    /* Member 2's own certificate gets a challenge (and, without the
     * secret's proof, nothing more); everything else is closed first. */
    ck_assert(peer_challenges(peer, "a", "node-2", 2, 1));
    ck_assert(!peer_challenges(peer, "a", "node-3", 2, 1));
    ck_assert(!peer_challenges(peer, "a", "client", 2, 1));
    ck_assert(!peer_challenges(peer, "a", NULL, 2, 1));
    ck_assert(!peer_challenges(peer, "b", "node-2", 2, 1));
    ck_assert(!peer_challenges(peer, "expired", "node-2", 2, 1));
    ck_assert(!port_answers_in_clear(peer, "hello"));
    /* Counted where operators look. */
    ck_assert_int_ge(info_int(&c, 1, "peers", "peer_cert_mismatches:"), 1);
    ck_assert(metric(&c, 1, "ballot_peer_cert_mismatches_total") >= 1);
    ck_assert(metric(&c, 1, "ballot_tls_handshake_failures_total") >= 8);
    ck_assert(metric(&c, 1, "ballot_tls_handshakes_total") >= 3);
    /* The cluster did not notice. */
    char out[256];
    unsigned leader = wait_leader(&c);
    node_call(&c, leader, "SET k v\r\n", "\r\n", out, sizeof(out));
    ck_assert_str_eq(out, "+OK\r\n");
    cl_close_all(&c);
}
END_TEST

static int run(const char *cmd)
{
    int rc = system(cmd);
    return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

/* redis-cli --tls, redis-py with ssl and the ballot CLI with --tls write
 * and read through the cluster; without a client certificate each is
 * refused. */
START_TEST(test_tls_cluster_redis_cli_redis_py_and_ballot_speak_tls)
{
    struct cluster c;
    start_tls_cluster(&c);
    unsigned leader = wait_leader(&c);
    int lp = c.nodes[leader - 1].client_port;
    int fp = c.nodes[leader % 3].client_port;
    char cmd[8192], tls[1900];
    snprintf(tls, sizeof(tls),
             "--tls --cacert %s/ca.crt --cert %s/client.crt --key "
             "%s/client.key",
             certs, certs, certs);
    snprintf(cmd, sizeof(cmd),
             "test \"$(%s -p %d %s SET rc 1)\" = OK && "
             "test \"$(%s -p %d %s GET rc)\" = 1",
             REDIS_CLI_PATH, lp, tls, REDIS_CLI_PATH, lp, tls);
    ck_assert_int_eq(run(cmd), 0);
    snprintf(cmd, sizeof(cmd),
             "%s -p %d --tls --cacert %s/ca.crt GET rc 2>&1 | grep -qx 1",
             REDIS_CLI_PATH, lp, certs);
    ck_assert_int_ne(run(cmd), 0);

    snprintf(cmd, sizeof(cmd),
             "%s -c 'import redis, sys\n"
             "r = redis.Redis(port=%d, ssl=True, ssl_ca_certs=\"%s/ca.crt\", "
             "ssl_certfile=\"%s/client.crt\", ssl_keyfile=\"%s/client.key\", "
             "socket_timeout=5)\n"
             "assert r.set(\"py\", \"2\")\n"
             "assert r.get(\"py\") == b\"2\"\n"
             "try:\n"
             "    redis.Redis(port=%d, ssl=True, ssl_ca_certs=\"%s/ca.crt\", "
             "socket_timeout=5).get(\"py\")\n"
             "    sys.exit(3)\n"
             "except redis.exceptions.ConnectionError:\n"
             "    pass\n'",
             PYTHON3_PATH, lp, certs, certs, certs, lp, certs);
    ck_assert_int_eq(run(cmd), 0);

    snprintf(cmd, sizeof(cmd),
             "%s --endpoints 127.0.0.1:%d,127.0.0.1:%d %s put cli 3 && "
             "test \"$(%s --endpoints 127.0.0.1:%d %s get cli)\" = 3 && "
             "test \"$(BALLOT_TLS=1 BALLOT_CACERT=%s/ca.crt "
             "BALLOT_CERT=%s/client.crt BALLOT_KEY=%s/client.key "
             "%s --endpoints 127.0.0.1:%d get rc)\" = 1",
             BALLOT_PATH, fp, lp, tls, BALLOT_PATH, lp, tls, certs, certs,
             certs, BALLOT_PATH, lp);
    ck_assert_int_eq(run(cmd), 0);
    snprintf(cmd, sizeof(cmd),
             "%s --timeout 2000 --endpoints 127.0.0.1:%d --tls --cacert "
             "%s/ca.crt get cli >/dev/null 2>&1",
             BALLOT_PATH, lp, certs);
    ck_assert_int_eq(run(cmd), 3); /* unavailable: refused */
    snprintf(cmd, sizeof(cmd),
             "%s --timeout 2000 --endpoints 127.0.0.1:%d get cli "
             ">/dev/null 2>&1",
             BALLOT_PATH, lp);
    ck_assert_int_eq(run(cmd), 3); /* no TLS at all */
    cl_close_all(&c);
}
END_TEST

/* The first bytes of the SHA-256 of the certificate @port shows. */
static uint64_t cert_id_of_port(int port)
{
    int fd;
    SSL *ssl = tls_open(port, "a", "client", &fd);
    ck_assert_ptr_nonnull(ssl);
    X509 *x = SSL_get1_peer_certificate(ssl);
    ck_assert_ptr_nonnull(x);
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned len = 0;
    ck_assert_int_eq(X509_digest(x, EVP_sha256(), md, &len), 1);
    X509_free(x);
    tls_close(ssl, fd);
    uint64_t id;
    memcpy(&id, md, sizeof(id));
    return id;
}

/* SIGHUP makes a node take its new certificate for new connections on
 * every port, while its peer connections stay up: the term does not move
 * and writes go on. */
START_TEST(
    test_tls_cluster_sighup_takes_a_new_certificate_without_dropping_the_cluster)
{
    struct cluster c;
    start_tls_cluster(&c);
    unsigned leader = wait_leader(&c);
    long long term = info_int(&c, leader, "raft", "term:");
    int port = c.nodes[0].client_port;
    uint64_t before = cert_id_of_port(port);
    /* A new certificate (new key, new serial) for member 1, same CA. */
    char cmd[1400];
    snprintf(cmd, sizeof(cmd), "bash %s/scripts/tls-certs.sh %s 1",
             BALLOT_SOURCE_DIR, certs);
    ck_assert_int_eq(run(cmd), 0);
    ck_assert_uint_eq(cert_id_of_port(port), before); /* not yet */
    ck_assert_int_eq(kill(c.nodes[0].pid, SIGHUP), 0);
    uint64_t after = before;
    for (int i = 0; i < 50 && after == before; i++) {
        usleep(50000);
        after = cert_id_of_port(port);
    }
    ck_assert_uint_ne(after, before);
    ck_assert(metric(&c, 1, "ballot_tls_reloads_total") == 1);
    ck_assert(metric(&c, 1, "ballot_tls_reload_failures_total") == 0);
    /* Writes go on; the same leader and term. */
    char out[256];
    node_call(&c, leader, "SET after-reload yes\r\n", "\r\n", out, sizeof(out));
    ck_assert_str_eq(out, "+OK\r\n");
    ck_assert_uint_eq(wait_leader(&c), leader);
    ck_assert_int_eq(info_int(&c, leader, "raft", "term:"), term);
    ck_assert(port_answers(c.nodes[0].metrics_port, "a", "client",
                           "GET /health HTTP/1.0\r\n\r\n", "200 OK"));
    cl_close_all(&c);
}
END_TEST

/* Connections over max_clients that never start TLS hold no descriptor:
 * without TLS a refusal is written and the connection closed; with TLS
 * the refusal could leave only after a handshake a stranger need never
 * finish, so they are closed at once. */
START_TEST(test_tls_cluster_strangers_over_max_clients_hold_no_descriptor)
{
    enum { HELD = 4, STRANGERS = 24 };
    static const char *const args[] = {"--max_clients", "4", NULL};
    struct cluster c;
    start_tls_cluster_args(&c, args);
    int port = c.nodes[0].client_port;
    SSL *held[HELD];
    int held_fd[HELD], strangers[STRANGERS];
    for (int i = 0; i < HELD; i++) {
        held[i] = tls_open(port, "a", "client", &held_fd[i]);
        ck_assert_ptr_nonnull(held[i]);
        char out[64];
        tls_ask(held[i], "PING\r\n", 6, "+PONG", out, sizeof(out));
        ck_assert_str_eq(out, "+PONG\r\n");
    }
    double before = metric(&c, 1, "process_open_fds");
    for (int i = 0; i < STRANGERS; i++) {
        strangers[i] = socket(AF_INET, SOCK_STREAM, 0);
        struct sockaddr_in sa = {.sin_family = AF_INET,
                                 .sin_port = htons((uint16_t)port)};
        sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        ck_assert_int_eq(
            connect(strangers[i], (struct sockaddr *)&sa, sizeof(sa)), 0);
    }
    usleep(500000);
    double during = metric(&c, 1, "process_open_fds");
    ck_assert_msg(during < before + 4, "%.0f descriptors, %.0f before", during,
                  before);
    for (int i = 0; i < STRANGERS; i++) {
        close(strangers[i]);
    }
    for (int i = 0; i < HELD; i++) {
        tls_close(held[i], held_fd[i]);
    }
    cl_close_all(&c);
}
END_TEST

int main(int argc, char **argv)
{
    const struct cl_named_test tests[] = {
        {"every_port_refuses_strangers_without_a_good_certificate",
         test_tls_cluster_every_port_refuses_strangers_without_a_good_certificate},
        {"redis_cli_redis_py_and_ballot_speak_tls",
         test_tls_cluster_redis_cli_redis_py_and_ballot_speak_tls},
        {"strangers_over_max_clients_hold_no_descriptor",
         test_tls_cluster_strangers_over_max_clients_hold_no_descriptor},
        {"sighup_takes_a_new_certificate_without_dropping_the_cluster",
         test_tls_cluster_sighup_takes_a_new_certificate_without_dropping_the_cluster},
    };
    tls_certs_make();
    int rc =
        cl_run_tests("tls_cluster", tests, sizeof(tests) / sizeof(tests[0]),
                     120, NULL, argc, argv);
    tls_certs_remove();
    return rc;
}
