/*
 * tls.h - TLS as a layer a libuv stream has or not (OpenSSL, memory BIOs).
 *
 * A connection without TLS reads and writes its uv_stream_t directly, as it
 * always did: nothing on its path changes. A connection with TLS gets a
 * struct tls_stream right after connect or accept; from then on its owner
 * calls tls_stream_read_start(), tls_stream_read_stop() and
 * tls_stream_write() instead of libuv's three calls, with the same
 * callbacks and the same contracts (the alloc callback gives room for
 * plaintext, the read callback sees plaintext, nread 0 means nothing this
 * time, a negative nread an error or UV_EOF, and every write's callback
 * runs once, with UV_ECANCELED once the handle is closing). Underneath,
 * the layer reads ciphertext from the stream into a memory BIO and writes
 * what OpenSSL puts in the other one; the handshake runs on its own before
 * the first plaintext byte.
 *
 * One struct tls_ctx holds the node's certificate, key and CA, and serves
 * every port (client, peer, metrics) in both roles. tls_ctx_reload() reads
 * the files again: new connections use the new ones, connections already
 * up keep theirs (OpenSSL counts references).
 *
 * Member identity (docs/security.md, "TLS"): a member's certificate names
 * it in its subject's common name, "member-<id>" in decimal. On the peer
 * port the transport checks that the member a connection claims is the one
 * its certificate names, so one member's certificate cannot speak for
 * another.
 *
 * Ownership: the layer owns the handle's `data` field while attached (the
 * owner finds its object from the handle pointer, its first member).
 * Everything runs on the loop thread.
 */
#ifndef BALLOT_NET_TLS_H
#define BALLOT_NET_TLS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

/* Error codes: the -11000 range. */
enum {
    TLS_EINVAL = -11001, /* a bad argument or setting */
    TLS_ENOMEM = -11002,
    TLS_EFILE = -11003,  /* a certificate, key or CA file is unusable */
    TLS_ENOID = -11004,  /* no member id in the certificate */
    TLS_EPROTO = -11005, /* the handshake or a record failed */
};

const char *tls_strerror(int code);

/* Limits, in one place: the longest common name parsed as a member id, and
 * the ciphertext read at once. */
#define TLS_MEMBER_PREFIX "member-"
#define TLS_CN_MAX 64u
#define TLS_READ_CHUNK (64u * 1024u)

struct tls_options
{
    /* PEM: the certificate, then its chain, and its private key; both
     * NULL for a client without a certificate (it cannot serve). */
    const char *cert_file;
    const char *key_file;
    const char *ca_file; /* PEM: the CA(s) peers and clients must chain to */
};

struct tls_ctx;

/* Counters for INFO and the metrics port. */
struct tls_stats
{
    uint64_t handshakes;         /* completed */
    uint64_t handshake_failures; /* refused certificates, bad records... */
    uint64_t reloads;            /* successful tls_ctx_reload() calls */
    uint64_t reload_failures;
};

/* Reads the files of @o (copied) and makes a context for @loop. Returns 0,
 * TLS_EINVAL, TLS_EFILE (the reason in @errmsg) or TLS_ENOMEM. */
int tls_ctx_create(uv_loop_t *loop,
                   const struct tls_options *o,
                   struct tls_ctx **out,
                   char *errmsg,
                   size_t errmsg_len);

/* Reads the files again; on failure the old ones stay in use. Returns 0,
 * TLS_EFILE (with @errmsg) or TLS_ENOMEM. */
int tls_ctx_reload(struct tls_ctx *t, char *errmsg, size_t errmsg_len);

void tls_ctx_stats(const struct tls_ctx *t, struct tls_stats *out);

/* Frees @t once every stream made from it is destroyed; its one handle
 * closes on the loop, so run the loop before uv_loop_close(). */
void tls_ctx_destroy(struct tls_ctx *t);

enum tls_role {
    TLS_ACCEPT,      /* server side; a client certificate is optional */
    TLS_ACCEPT_CERT, /* server side; a certificate of the CA is required */
    TLS_CONNECT,     /* client side; the server's certificate is verified */
};

struct tls_stream;

/*
 * Attaches TLS to @stream (connected or accepted, not reading yet). For
 * TLS_CONNECT, @expect_member (if not 0) is the member id the server's
 * certificate must name, or the handshake fails. Returns 0, TLS_ENOMEM or
 * TLS_EPROTO. The owner must call tls_stream_destroy() from the handle's
 * close callback.
 */
int tls_stream_create(struct tls_ctx *t,
                      uv_stream_t *stream,
                      enum tls_role role,
                      uint64_t expect_member,
                      struct tls_stream **out);

/* As uv_read_start() / uv_read_stop(): @alloc_cb and @read_cb get the
 * stream handle and plaintext. The handshake reads whatever the owner
 * wants. Returns 0 or a negative libuv code. */
int tls_stream_read_start(struct tls_stream *s,
                          uv_alloc_cb alloc_cb,
                          uv_read_cb read_cb);
void tls_stream_read_stop(struct tls_stream *s);

/* As uv_write(): encrypts @bufs (copied) and writes them after what was
 * written before; before the handshake is over, they wait for it. @cb gets
 * @req. Returns 0 or a negative libuv code (then @cb never runs). */
int tls_stream_write(struct tls_stream *s,
                     uv_write_t *req,
                     const uv_buf_t bufs[],
                     unsigned nbufs,
                     uv_write_cb cb);

/* True once the handshake is over. */
bool tls_stream_ready(const struct tls_stream *s);

/* The member id the other side's (verified) certificate names. Returns 0,
 * TLS_ENOID (no certificate, or no member id in it). */
int tls_stream_member(const struct tls_stream *s, uint64_t *id);

/* Runs the callbacks of writes still waiting for the handshake (with
 * UV_ECANCELED) and frees @s. Call from the handle's close callback. */
void tls_stream_destroy(struct tls_stream *s);

/* Parses a common name "member-<id>" (exactly: decimal, no sign, no
 * leading zero, 1 to 2^64 - 1, nothing after, no NUL inside). Returns 0 or
 * TLS_ENOID. */
int tls_member_parse(const char *cn, size_t len, uint64_t *id);

#endif
