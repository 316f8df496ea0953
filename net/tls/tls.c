/*
 * tls.c - TLS as a layer over libuv streams: OpenSSL with memory BIOs.
 *
 * Reading: the stream's ciphertext goes into the read BIO; SSL_read()
 * turns it into plaintext in the room the owner's alloc callback gives,
 * and the owner's read callback sees it. Writing: SSL_write() puts records
 * into the write BIO, which is drained into one uv_write per call, so the
 * owner's writes and the handshake's go out in order. When the owner stops
 * reading, the layer stops reading the socket; plaintext already decrypted
 * or buffered is handed over by the context's idle handle once the owner
 * reads again, since a socket with nothing more to say would never wake
 * the owner.
 */
#include "tls.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

static const struct
{
    int code;
    const char *text;
} errors[] = {
    {0, "success"},
    {TLS_EINVAL, "tls: invalid argument"},
    {TLS_ENOMEM, "tls: out of memory"},
    {TLS_EFILE, "tls: cannot use the certificate, key or CA file"},
    {TLS_ENOID, "tls: the certificate names no member id"},
    {TLS_EPROTO, "tls: handshake or record failed"},
};

const char *tls_strerror(int code)
{
    for (size_t i = 0; i < sizeof(errors) / sizeof(errors[0]); i++) {
        if (errors[i].code == code) {
            return errors[i].text;
        }
    }
    return "tls: unknown error";
}

struct tls_ctx
{
    SSL_CTX *ssl;
    char *cert_file;
    char *key_file;
    char *ca_file;
    struct tls_stats stats;
    /* Streams with plaintext to hand over once their owner reads again. */
    uv_idle_t idle;
    struct tls_stream *ready_head;
    unsigned n_streams;
    bool destroyed;
};

/* A write waiting for the handshake: the owner's request and a copy. */
struct held_write
{
    struct held_write *next;
    uv_write_t *req;
    uv_write_cb cb;
    size_t len;
    char data[];
};

/* One uv_write of ciphertext, for the owner's request or none (the
 * handshake's own records). */
struct tls_write
{
    uv_write_t w;
    uv_write_t *req;
    uv_write_cb cb;
    char data[];
};

struct tls_stream
{
    struct tls_ctx *ctx;
    uv_stream_t *stream;
    SSL *ssl;
    BIO *rbio; /* ciphertext received, for OpenSSL */
    BIO *wbio; /* ciphertext OpenSSL wrote, for the socket */
    uint64_t expect_member;
    uv_alloc_cb alloc_cb;
    uv_read_cb read_cb;
    bool user_reading;
    bool sock_reading;
    bool hs_done;
    bool failed; /* a fatal error was reported to the owner */
    bool in_ready_list;
    struct tls_stream *ready_next;
    struct held_write *held_head;
    struct held_write *held_tail;
    char rbuf[TLS_READ_CHUNK];
};

/* ---------------------------------------------------------------------- */
/* Contexts                                                                */

static void set_err(char *errmsg, size_t len, const char *what, const char *f)
{
    if (errmsg == NULL || len == 0) {
        return;
    }
    unsigned long e = ERR_peek_last_error();
    char why[256] = "";
    if (e != 0) {
        ERR_error_string_n(e, why, sizeof(why));
    }
    snprintf(errmsg, len, "tls: %s %s: %s", what, f != NULL ? f : "",
             why[0] != '\0' ? why : "unusable");
    ERR_clear_error();
}

/* A new SSL_CTX from the files, or NULL with @errmsg set. */
static SSL_CTX *ssl_ctx_load(const struct tls_ctx *t,
                             char *errmsg,
                             size_t errmsg_len)
{
    SSL_CTX *c = SSL_CTX_new(TLS_method());
    if (c == NULL) {
        set_err(errmsg, errmsg_len, "cannot make a context", "");
        return NULL;
    }
    /* TLS 1.2 at least; no renegotiation (a peer could make us redo the
     * expensive part at will); no session tickets, which no ballot client
     * reuses. */
    SSL_CTX_set_min_proto_version(c, TLS1_2_VERSION);
    SSL_CTX_set_options(c, SSL_OP_NO_RENEGOTIATION);
    SSL_CTX_set_num_tickets(c, 0);
    SSL_CTX_set_mode(c, SSL_MODE_RELEASE_BUFFERS);
    if (t->cert_file == NULL) {
        goto ca; /* a client without a certificate */
    }
    if (SSL_CTX_use_certificate_chain_file(c, t->cert_file) != 1) {
        set_err(errmsg, errmsg_len, "certificate", t->cert_file);
        goto fail;
    }
    if (SSL_CTX_use_PrivateKey_file(c, t->key_file, SSL_FILETYPE_PEM) != 1) {
        set_err(errmsg, errmsg_len, "key", t->key_file);
        goto fail;
    }
    if (SSL_CTX_check_private_key(c) != 1) {
        set_err(errmsg, errmsg_len, "key does not match the certificate",
                t->key_file);
        goto fail;
    }
ca:
    if (SSL_CTX_load_verify_locations(c, t->ca_file, NULL) != 1) {
        set_err(errmsg, errmsg_len, "CA", t->ca_file);
        goto fail;
    }
    /* Servers tell clients which CA they accept. */
    STACK_OF(X509_NAME) *names = SSL_load_client_CA_file(t->ca_file);
    if (names != NULL) {
        SSL_CTX_set_client_CA_list(c, names);
    }
    ERR_clear_error();
    return c;
fail:
    SSL_CTX_free(c);
    return NULL;
}

static void stream_deliver(struct tls_stream *s);

static void on_idle(uv_idle_t *h)
{
    struct tls_ctx *t = h->data;
    struct tls_stream *list = t->ready_head;
    t->ready_head = NULL;
    uv_idle_stop(h);
    while (list != NULL) {
        struct tls_stream *s = list;
        list = s->ready_next;
        s->ready_next = NULL;
        s->in_ready_list = false;
        stream_deliver(s);
    }
}

int tls_ctx_create(uv_loop_t *loop,
                   const struct tls_options *o,
                   struct tls_ctx **out,
                   char *errmsg,
                   size_t errmsg_len)
{
    if (loop == NULL || o == NULL || out == NULL || o->ca_file == NULL ||
        (o->cert_file == NULL) != (o->key_file == NULL)) {
        if (errmsg != NULL && errmsg_len > 0) {
            snprintf(errmsg, errmsg_len,
                     "tls: a certificate, its key and a CA file are all "
                     "needed");
        }
        return TLS_EINVAL;
    }
    struct tls_ctx *t = calloc(1, sizeof(*t));
    if (t == NULL) {
        return TLS_ENOMEM;
    }
    t->cert_file = o->cert_file != NULL ? strdup(o->cert_file) : NULL;
    t->key_file = o->key_file != NULL ? strdup(o->key_file) : NULL;
    t->ca_file = strdup(o->ca_file);
    if ((o->cert_file != NULL && t->cert_file == NULL) ||
        (o->key_file != NULL && t->key_file == NULL) || t->ca_file == NULL) {
        free(t->cert_file);
        free(t->key_file);
        free(t->ca_file);
        free(t);
        return TLS_ENOMEM;
    }
    t->ssl = ssl_ctx_load(t, errmsg, errmsg_len);
    if (t->ssl == NULL) {
        free(t->cert_file);
        free(t->key_file);
        free(t->ca_file);
        free(t);
        return TLS_EFILE;
    }
    uv_idle_init(loop, &t->idle);
    t->idle.data = t;
    *out = t;
    return 0;
}

int tls_ctx_reload(struct tls_ctx *t, char *errmsg, size_t errmsg_len)
{
    SSL_CTX *c = ssl_ctx_load(t, errmsg, errmsg_len);
    if (c == NULL) {
        t->stats.reload_failures++;
        return TLS_EFILE;
    }
    /* Connections made from the old context hold references to it. */
    SSL_CTX_free(t->ssl);
    t->ssl = c;
    t->stats.reloads++;
    return 0;
}

void tls_ctx_stats(const struct tls_ctx *t, struct tls_stats *out)
{
    *out = t->stats;
}

static void on_idle_closed(uv_handle_t *h)
{
    struct tls_ctx *t = h->data;
    SSL_CTX_free(t->ssl);
    free(t->cert_file);
    free(t->key_file);
    free(t->ca_file);
    free(t);
}

void tls_ctx_destroy(struct tls_ctx *t)
{
    if (t == NULL) {
        return;
    }
    t->destroyed = true;
    if (t->n_streams == 0) {
        uv_close((uv_handle_t *)&t->idle, on_idle_closed);
    }
}

/* ---------------------------------------------------------------------- */
/* Member ids                                                              */

int tls_member_parse(const char *cn, size_t len, uint64_t *id)
{
    const size_t plen = sizeof(TLS_MEMBER_PREFIX) - 1;
    if (cn == NULL || len <= plen || len > TLS_CN_MAX ||
        memcmp(cn, TLS_MEMBER_PREFIX, plen) != 0 || cn[plen] == '0') {
        return TLS_ENOID;
    }
    uint64_t v = 0;
    for (size_t i = plen; i < len; i++) {
        if (cn[i] < '0' || cn[i] > '9') {
            return TLS_ENOID;
        }
        unsigned d = (unsigned)(cn[i] - '0');
        if (v > (UINT64_MAX - d) / 10) {
            return TLS_ENOID;
        }
        v = v * 10 + d;
    }
    *id = v;
    return 0;
}

/* The member id of @cert's subject: exactly one common name, parsed. */
static int cert_member(X509 *cert, uint64_t *id)
{
    X509_NAME *name = cert != NULL ? X509_get_subject_name(cert) : NULL;
    if (name == NULL) {
        return TLS_ENOID;
    }
    int i = X509_NAME_get_index_by_NID(name, NID_commonName, -1);
    if (i < 0 || X509_NAME_get_index_by_NID(name, NID_commonName, i) >= 0) {
        return TLS_ENOID;
    }
    ASN1_STRING *s = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(name, i));
    int len = ASN1_STRING_length(s);
    if (s == NULL || len <= 0) {
        return TLS_ENOID;
    }
    return tls_member_parse((const char *)ASN1_STRING_get0_data(s), (size_t)len,
                            id);
}

int tls_stream_member(const struct tls_stream *s, uint64_t *id)
{
    if (!s->hs_done || SSL_get_verify_result(s->ssl) != X509_V_OK) {
        return TLS_ENOID;
    }
    X509 *cert = SSL_get1_peer_certificate(s->ssl);
    int rv = cert_member(cert, id);
    X509_free(cert);
    return rv;
}

/* ---------------------------------------------------------------------- */
/* Writing                                                                 */

static void on_written(uv_write_t *w, int status)
{
    struct tls_write *tw = (struct tls_write *)w;
    uv_write_t *req = tw->req;
    uv_write_cb cb = tw->cb;
    free(tw);
    if (cb != NULL) {
        cb(req, status);
    }
}

/* Writes what OpenSSL put in the write BIO, for @req (or none). Returns 0
 * or a negative libuv code (then @req's callback does not run). */
static int flush_out(struct tls_stream *s, uv_write_t *req, uv_write_cb cb)
{
    size_t n = BIO_ctrl_pending(s->wbio);
    if (n == 0 && cb == NULL) {
        return 0;
    }
    struct tls_write *tw = malloc(sizeof(*tw) + n);
    if (tw == NULL) {
        return UV_ENOMEM;
    }
    if (n > 0 && BIO_read(s->wbio, tw->data, (int)n) != (int)n) {
        free(tw);
        return UV_EPROTO;
    }
    tw->req = req;
    tw->cb = cb;
    uv_buf_t b = uv_buf_init(tw->data, (unsigned)n);
    int rv = uv_write(&tw->w, s->stream, &b, 1, on_written);
    if (rv != 0) {
        free(tw);
    }
    return rv;
}

/* Encrypts @len bytes into the write BIO. */
static int encrypt(struct tls_stream *s, const char *data, size_t len)
{
    while (len > 0) {
        int chunk = len > INT32_MAX ? INT32_MAX : (int)len;
        int n = SSL_write(s->ssl, data, chunk);
        if (n <= 0) {
            ERR_clear_error();
            return UV_EPROTO;
        }
        data += n;
        len -= (size_t)n;
    }
    return 0;
}

int tls_stream_write(struct tls_stream *s,
                     uv_write_t *req,
                     const uv_buf_t bufs[],
                     unsigned nbufs,
                     uv_write_cb cb)
{
    if (s->failed || uv_is_closing((uv_handle_t *)s->stream)) {
        return UV_EPIPE;
    }
    if (!s->hs_done) {
        size_t len = 0;
        for (unsigned i = 0; i < nbufs; i++) {
            len += bufs[i].len;
        }
        struct held_write *h = malloc(sizeof(*h) + len);
        if (h == NULL) {
            return UV_ENOMEM;
        }
        h->next = NULL;
        h->req = req;
        h->cb = cb;
        h->len = 0;
        for (unsigned i = 0; i < nbufs; i++) {
            memcpy(h->data + h->len, bufs[i].base, bufs[i].len);
            h->len += bufs[i].len;
        }
        if (s->held_tail != NULL) {
            s->held_tail->next = h;
        } else {
            s->held_head = h;
        }
        s->held_tail = h;
        return 0;
    }
    for (unsigned i = 0; i < nbufs; i++) {
        int rv = encrypt(s, bufs[i].base, bufs[i].len);
        if (rv != 0) {
            return rv;
        }
    }
    return flush_out(s, req, cb);
}

/* After the handshake: the writes that waited for it, in order. */
static int flush_held(struct tls_stream *s)
{
    while (s->held_head != NULL) {
        struct held_write *h = s->held_head;
        int rv = encrypt(s, h->data, h->len);
        if (rv == 0) {
            rv = flush_out(s, h->req, h->cb);
        }
        if (rv != 0) {
            return rv; /* the rest are cancelled by tls_stream_destroy() */
        }
        s->held_head = h->next;
        if (s->held_head == NULL) {
            s->held_tail = NULL;
        }
        free(h);
    }
    return 0;
}

/* ---------------------------------------------------------------------- */
/* Reading                                                                 */

static void sock_update(struct tls_stream *s);

/* Tells the owner the stream failed (once); it closes the handle. */
static void fail(struct tls_stream *s, ssize_t code)
{
    if (s->failed) {
        return;
    }
    s->failed = true;
    if (!s->hs_done) {
        s->ctx->stats.handshake_failures++;
    }
    (void)flush_out(s, NULL, NULL); /* an alert, if OpenSSL wrote one */
    uv_buf_t b = uv_buf_init(NULL, 0);
    if (s->read_cb != NULL) {
        s->read_cb(s->stream, code, &b);
    } else {
        /* The owner is not reading: it will find out on its next write. */
        uv_read_stop(s->stream);
        s->sock_reading = false;
    }
}

static bool stream_gone(const struct tls_stream *s)
{
    return s->failed || uv_is_closing((const uv_handle_t *)s->stream);
}

/* Runs the handshake as far as the bytes received allow. Returns true once
 * it is over. */
static bool handshake(struct tls_stream *s)
{
    int rv = SSL_do_handshake(s->ssl);
    if (rv != 1) {
        int e = SSL_get_error(s->ssl, rv);
        ERR_clear_error();
        if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
            if (flush_out(s, NULL, NULL) != 0) {
                fail(s, UV_EPROTO);
            }
            return false;
        }
        fail(s, UV_EPROTO);
        return false;
    }
    s->hs_done = true;
    if (s->expect_member != 0) {
        uint64_t id;
        if (tls_stream_member(s, &id) != 0 || id != s->expect_member) {
            /* Someone else's certificate answered at that address. */
            s->hs_done = false;
            fail(s, UV_EPROTO);
            return false;
        }
    }
    s->ctx->stats.handshakes++;
    if (flush_out(s, NULL, NULL) != 0 || flush_held(s) != 0) {
        fail(s, UV_EPROTO);
        return false;
    }
    return true;
}

/* Hands the owner the plaintext OpenSSL can make of what was received,
 * while the owner reads. */
static void stream_deliver(struct tls_stream *s)
{
    if (!s->hs_done && (stream_gone(s) || !handshake(s))) {
        return;
    }
    while (s->user_reading && !stream_gone(s)) {
        uv_buf_t b = uv_buf_init(NULL, 0);
        s->alloc_cb((uv_handle_t *)s->stream, TLS_READ_CHUNK, &b);
        if (b.base == NULL || b.len == 0) {
            s->read_cb(s->stream, UV_ENOBUFS, &b);
            return;
        }
        int n = SSL_read(s->ssl, b.base,
                         b.len > INT32_MAX ? INT32_MAX : (int)b.len);
        if (n > 0) {
            s->read_cb(s->stream, n, &b);
            continue;
        }
        int e = SSL_get_error(s->ssl, n);
        ERR_clear_error();
        if (e == SSL_ERROR_WANT_READ) {
            /* Give the room back, as libuv does with EAGAIN. */
            s->read_cb(s->stream, 0, &b);
            if (!stream_gone(s) && flush_out(s, NULL, NULL) != 0) {
                fail(s, UV_EPROTO);
            }
            return;
        }
        /* ZERO_RETURN is the other side's close_notify: an end of file. */
        s->failed = true;
        s->read_cb(s->stream, e == SSL_ERROR_ZERO_RETURN ? UV_EOF : UV_EPROTO,
                   &b);
        return;
    }
}

static void on_sock_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
    struct tls_stream *s = h->data;
    (void)hint;
    *buf = uv_buf_init(s->rbuf, sizeof(s->rbuf));
}

static void on_sock_read(uv_stream_t *st, ssize_t nread, const uv_buf_t *buf)
{
    struct tls_stream *s = st->data;
    (void)buf;
    if (nread == 0) {
        return;
    }
    if (nread < 0) {
        /* The owner sees plaintext it was owed before the end. */
        stream_deliver(s);
        if (!stream_gone(s)) {
            fail(s, nread);
        }
        return;
    }
    if (BIO_write(s->rbio, s->rbuf, (int)nread) != (int)nread) {
        fail(s, UV_ENOMEM);
        return;
    }
    stream_deliver(s);
    if (!stream_gone(s)) {
        sock_update(s);
    }
}

/* Reads the socket while the handshake runs or the owner reads. */
static void sock_update(struct tls_stream *s)
{
    bool want = !stream_gone(s) && (!s->hs_done || s->user_reading);
    if (want && !s->sock_reading) {
        if (uv_read_start(s->stream, on_sock_alloc, on_sock_read) == 0) {
            s->sock_reading = true;
        }
    } else if (!want && s->sock_reading) {
        if (!uv_is_closing((uv_handle_t *)s->stream)) {
            uv_read_stop(s->stream);
        }
        s->sock_reading = false;
    }
}

int tls_stream_read_start(struct tls_stream *s,
                          uv_alloc_cb alloc_cb,
                          uv_read_cb read_cb)
{
    if (stream_gone(s)) {
        return UV_EINVAL;
    }
    s->alloc_cb = alloc_cb;
    s->read_cb = read_cb;
    s->user_reading = true;
    sock_update(s);
    if (!s->sock_reading) {
        return UV_EINVAL;
    }
    /* Plaintext already received would wait for bytes that may never
     * come: hand it over from the loop, not from inside this call. */
    if (s->hs_done && !s->in_ready_list &&
        (SSL_pending(s->ssl) > 0 || BIO_ctrl_pending(s->rbio) > 0)) {
        s->in_ready_list = true;
        s->ready_next = s->ctx->ready_head;
        s->ctx->ready_head = s;
        uv_idle_start(&s->ctx->idle, on_idle);
    }
    return 0;
}

void tls_stream_read_stop(struct tls_stream *s)
{
    s->user_reading = false;
    sock_update(s);
}

bool tls_stream_ready(const struct tls_stream *s)
{
    return s->hs_done;
}

/* ---------------------------------------------------------------------- */
/* Streams                                                                 */

int tls_stream_create(struct tls_ctx *t,
                      uv_stream_t *stream,
                      enum tls_role role,
                      uint64_t expect_member,
                      struct tls_stream **out)
{
    struct tls_stream *s = calloc(1, sizeof(*s));
    if (s == NULL) {
        return TLS_ENOMEM;
    }
    s->ctx = t;
    s->stream = stream;
    s->expect_member = expect_member;
    s->ssl = SSL_new(t->ssl);
    s->rbio = BIO_new(BIO_s_mem());
    s->wbio = BIO_new(BIO_s_mem());
    if (s->ssl == NULL || s->rbio == NULL || s->wbio == NULL) {
        SSL_free(s->ssl);
        BIO_free(s->rbio);
        BIO_free(s->wbio);
        free(s);
        ERR_clear_error();
        return TLS_ENOMEM;
    }
    /* An empty read BIO means "wait for more", not end of file. */
    BIO_set_mem_eof_return(s->rbio, -1);
    SSL_set_bio(s->ssl, s->rbio, s->wbio);
    switch (role) {
    case TLS_ACCEPT:
        SSL_set_verify(s->ssl, SSL_VERIFY_PEER, NULL);
        SSL_set_accept_state(s->ssl);
        break;
    case TLS_ACCEPT_CERT:
        SSL_set_verify(s->ssl,
                       SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, NULL);
        SSL_set_accept_state(s->ssl);
        break;
    case TLS_CONNECT:
        SSL_set_verify(s->ssl, SSL_VERIFY_PEER, NULL);
        SSL_set_connect_state(s->ssl);
        break;
    }
    stream->data = s;
    t->n_streams++;
    *out = s;
    /* The client speaks first; the server waits for it. */
    if (role == TLS_CONNECT) {
        (void)handshake(s);
    }
    sock_update(s);
    return 0;
}

void tls_stream_destroy(struct tls_stream *s)
{
    if (s == NULL) {
        return;
    }
    struct tls_ctx *t = s->ctx;
    if (s->in_ready_list) {
        struct tls_stream **p = &t->ready_head;
        while (*p != s) {
            p = &(*p)->ready_next;
        }
        *p = s->ready_next;
    }
    while (s->held_head != NULL) {
        struct held_write *h = s->held_head;
        s->held_head = h->next;
        if (h->cb != NULL) {
            h->cb(h->req, UV_ECANCELED);
        }
        free(h);
    }
    SSL_free(s->ssl); /* frees both BIOs */
    free(s);
    assert(t->n_streams > 0);
    t->n_streams--;
    if (t->destroyed && t->n_streams == 0) {
        uv_close((uv_handle_t *)&t->idle, on_idle_closed);
    }
}
