/*
 * cli_tls.c - TLS for the `ballot` CLI (--tls, --cacert, --cert, --key).
 *
 * Debian 12's hiredis (0.14) has no TLS of its own, so a TLS connection is
 * a socket pair: hiredis talks RESP on one end, as over any socket, and a
 * thread relays between the other end and the TLS connection. The RESP
 * code of the CLI stays the same with TLS or without; the relay costs a
 * thread per connection, which a command-line client can afford (`ballot
 * bench`, whose load runs on libuv connections of its own, refuses --tls).
 *
 * The server's certificate must chain to --cacert (or the system's CAs)
 * and name the host or address dialed, as with curl.
 */
#include <errno.h>
#include <netdb.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>
#include <fcntl.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "cli.h"

/* One relayed connection. */
struct relay
{
    struct relay *next;
    redisContext *ctx; /* hiredis's end */
    int tcp;
    int pair; /* the relay's end of the socket pair */
    SSL *ssl;
    pthread_t thread;
};

/* Connections made by this process, so cli_conn_free() can join their
 * threads. The CLI makes them from one thread. */
static struct relay *relays;

static void set_errmsg(struct cli *cli, const char *addr, const char *what)
{
    char why[256] = "";
    unsigned long e = ERR_peek_last_error();
    if (e != 0) {
        ERR_error_string_n(e, why, sizeof(why));
    }
    ERR_clear_error();
    snprintf(cli->errmsg, sizeof(cli->errmsg), "%s: TLS: %s%s%s", addr, what,
             why[0] != '\0' ? ": " : "", why);
}

/* The context all connections share, made on first use. */
static SSL_CTX *ctx_get(struct cli *cli, const char *addr)
{
    if (cli->tls_ctx != NULL) {
        return cli->tls_ctx;
    }
    SSL_CTX *c = SSL_CTX_new(TLS_client_method());
    if (c == NULL) {
        set_errmsg(cli, addr, "cannot make a context");
        return NULL;
    }
    SSL_CTX_set_min_proto_version(c, TLS1_2_VERSION);
    SSL_CTX_set_verify(c, SSL_VERIFY_PEER, NULL);
    int ok = cli->tls_cacert != NULL
                 ? SSL_CTX_load_verify_locations(c, cli->tls_cacert, NULL)
                 : SSL_CTX_set_default_verify_paths(c);
    if (ok != 1) {
        set_errmsg(cli, addr, "cannot load the CA (--cacert)");
        SSL_CTX_free(c);
        return NULL;
    }
    if ((cli->tls_cert != NULL) != (cli->tls_key != NULL)) {
        snprintf(cli->errmsg, sizeof(cli->errmsg),
                 "--cert and --key go together");
        SSL_CTX_free(c);
        return NULL;
    }
    if (cli->tls_cert != NULL &&
        (SSL_CTX_use_certificate_chain_file(c, cli->tls_cert) != 1 ||
         SSL_CTX_use_PrivateKey_file(c, cli->tls_key, SSL_FILETYPE_PEM) != 1 ||
         SSL_CTX_check_private_key(c) != 1)) {
        set_errmsg(cli, addr, "cannot use --cert and --key");
        SSL_CTX_free(c);
        return NULL;
    }
    cli->tls_ctx = c;
    return c;
}

/* Writes all of @len bytes of @p to the blocking descriptor @fd. */
static int write_all(int fd, const char *p, size_t len)
{
    while (len > 0) {
        ssize_t n = write(fd, p, len);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            return -1;
        }
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

/* SSL_write of everything, waiting on the non-blocking socket. */
static int ssl_write_all(struct relay *r, const char *p, size_t len)
{
    while (len > 0) {
        int n = SSL_write(r->ssl, p, (int)len);
        if (n > 0) {
            p += n;
            len -= (size_t)n;
            continue;
        }
        int e = SSL_get_error(r->ssl, n);
        if (e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE) {
            return -1;
        }
        struct pollfd pf = {r->tcp, e == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT,
                            0};
        if (poll(&pf, 1, -1) < 0 && errno != EINTR) {
            return -1;
        }
    }
    return 0;
}

static void *relay_main(void *arg)
{
    struct relay *r = arg;
    char buf[16384];
    for (;;) {
        struct pollfd pf[2] = {{r->pair, POLLIN, 0}, {r->tcp, POLLIN, 0}};
        if (SSL_pending(r->ssl) == 0 && poll(pf, 2, -1) < 0) {
            if (errno == EINTR) {
                continue;
            }
            break;
        }
        if (pf[0].revents != 0) {
            ssize_t n = read(r->pair, buf, sizeof(buf));
            if (n < 0 && errno == EINTR) {
                continue;
            }
            if (n <= 0 || ssl_write_all(r, buf, (size_t)n) != 0) {
                break;
            }
        }
        if (pf[1].revents != 0 || SSL_pending(r->ssl) > 0) {
            int n = SSL_read(r->ssl, buf, sizeof(buf));
            if (n > 0) {
                if (write_all(r->pair, buf, (size_t)n) != 0) {
                    break;
                }
                continue;
            }
            int e = SSL_get_error(r->ssl, n);
            if (e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE) {
                break; /* the server closed, or the stream broke */
            }
        }
    }
    /* hiredis sees the end of its socket. */
    shutdown(r->pair, SHUT_RDWR);
    ERR_clear_error();
    return NULL;
}

/* A TCP connection to @host:@port within @tv, blocking, with @tv as its
 * send and receive timeouts (for the handshake). Returns the fd or -1. */
static int tcp_connect(const char *host, int port, struct timeval tv)
{
    struct addrinfo hints = {0}, *res = NULL;
    char service[16];
    snprintf(service, sizeof(service), "%d", port);
    hints.ai_socktype = SOCK_STREAM;
    if (getaddrinfo(host, service, &hints, &res) != 0) {
        return -1;
    }
    int fd = -1;
    for (struct addrinfo *a = res; a != NULL && fd < 0; a = a->ai_next) {
        fd = socket(a->ai_family, a->ai_socktype, a->ai_protocol);
        if (fd < 0) {
            continue;
        }
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
        if (connect(fd, a->ai_addr, a->ai_addrlen) != 0) {
            close(fd);
            fd = -1;
        }
    }
    freeaddrinfo(res);
    return fd;
}

redisContext *cli_tls_connect(struct cli *cli,
                              const char *addr,
                              const char *host,
                              int port,
                              struct timeval tv)
{
    SSL_CTX *c = ctx_get(cli, addr);
    if (c == NULL) {
        return NULL;
    }
    struct relay *r = calloc(1, sizeof(*r));
    int sp[2] = {-1, -1};
    if (r == NULL) {
        snprintf(cli->errmsg, sizeof(cli->errmsg), "out of memory");
        return NULL;
    }
    r->tcp = tcp_connect(host, port, tv);
    if (r->tcp < 0) {
        snprintf(cli->errmsg, sizeof(cli->errmsg), "%s: cannot connect: %s",
                 addr, strerror(errno));
        free(r);
        return NULL;
    }
    r->ssl = SSL_new(c);
    if (r->ssl == NULL || SSL_set_fd(r->ssl, r->tcp) != 1) {
        set_errmsg(cli, addr, "cannot start");
        goto fail;
    }
    /* The certificate must name what was dialed: an address or a name. */
    X509_VERIFY_PARAM *param = SSL_get0_param(r->ssl);
    if (X509_VERIFY_PARAM_set1_ip_asc(param, host) != 1) {
        SSL_set_tlsext_host_name(r->ssl, host);
        X509_VERIFY_PARAM_set1_host(param, host, 0);
    }
    if (SSL_connect(r->ssl) != 1) {
        long v = SSL_get_verify_result(r->ssl);
        if (v != X509_V_OK) {
            snprintf(cli->errmsg, sizeof(cli->errmsg),
                     "%s: TLS: the server's certificate: %s", addr,
                     X509_verify_cert_error_string(v));
            ERR_clear_error();
        } else {
            set_errmsg(cli, addr,
                       "handshake failed (does the server want "
                       "a client certificate, --cert/--key?)");
        }
        goto fail;
    }
    /* From here the relay waits with poll(). */
    fcntl(r->tcp, F_SETFL, fcntl(r->tcp, F_GETFL) | O_NONBLOCK);
    if (socketpair(AF_UNIX, SOCK_STREAM, 0, sp) != 0) {
        snprintf(cli->errmsg, sizeof(cli->errmsg), "%s: socketpair: %s", addr,
                 strerror(errno));
        goto fail;
    }
    r->pair = sp[1];
    r->ctx = redisConnectFd(sp[0]);
    if (r->ctx == NULL || r->ctx->err) {
        snprintf(cli->errmsg, sizeof(cli->errmsg), "%s: out of memory", addr);
        if (r->ctx != NULL) {
            redisFree(r->ctx);
        } else {
            close(sp[0]);
        }
        close(sp[1]);
        goto fail_closed;
    }
    if (pthread_create(&r->thread, NULL, relay_main, r) != 0) {
        snprintf(cli->errmsg, sizeof(cli->errmsg), "%s: cannot start a thread",
                 addr);
        redisFree(r->ctx);
        close(sp[1]);
        goto fail_closed;
    }
    r->next = relays;
    relays = r;
    return r->ctx;
fail:
    if (sp[0] >= 0) {
        close(sp[0]);
        close(sp[1]);
    }
fail_closed:
    SSL_free(r->ssl);
    close(r->tcp);
    free(r);
    return NULL;
}

void cli_conn_free(redisContext *c)
{
    if (c == NULL) {
        return;
    }
    struct relay **p = &relays;
    while (*p != NULL && (*p)->ctx != c) {
        p = &(*p)->next;
    }
    struct relay *r = *p;
    redisFree(c); /* the relay sees its pair close */
    if (r == NULL) {
        return;
    }
    *p = r->next;
    pthread_join(r->thread, NULL);
    SSL_shutdown(r->ssl); /* best effort: a close_notify */
    SSL_free(r->ssl);
    close(r->tcp);
    close(r->pair);
    free(r);
    ERR_clear_error();
}

void cli_tls_close(struct cli *cli)
{
    while (relays != NULL) {
        cli_conn_free(relays->ctx);
    }
    SSL_CTX_free(cli->tls_ctx);
    cli->tls_ctx = NULL;
}
