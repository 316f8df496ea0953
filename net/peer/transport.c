/*
 * transport.c - Raft messages between ballotd nodes over TCP, on libuv.
 *
 * Objects and their handles:
 *
 *   struct transport  owns the listening socket (one uv_tcp_t), the list of
 *                     peers and the list of incoming connections.
 *   struct peer       one per known node: its address, a reconnect timer
 *                     (uv_timer_t) and at most one outgoing connection.
 *   struct conn       one TCP connection (uv_tcp_t). An outgoing one carries
 *                     our frames to its peer: a queue of serialized bytes
 *                     and at most one uv_write_t in flight. An incoming one
 *                     carries a peer's frames to us: a read buffer that
 *                     accumulates bytes until whole frames can be parsed.
 *                     During the handshake each carries one frame the
 *                     other way: the listener's challenge.
 *
 * The handshake (auth.h, docs/peer.md): the dialer sends a hello with its
 * nonce; the listener answers with its nonce and its proof; the dialer
 * checks that proof and sends its own. The dialer counts the connection as
 * up, and starts sending messages, only after checking the listener's
 * proof; the listener delivers messages only after checking the dialer's.
 * A connection that has not finished its handshake within
 * TRANSPORT_HELLO_TIMEOUT_MS is closed, and beyond TRANSPORT_INCOMING_MAX
 * incoming connections the oldest unfinished one makes room, so strangers
 * cannot hold descriptors.
 *
 * Every handle that was initialized successfully is closed exactly once with
 * uv_close(); its memory is freed in the close callback, which libuv runs
 * after the callbacks of every request still pending on it (a write or a
 * connect then sees UV_ECANCELED). The transport counts its open handles so
 * that transport_close() can report completion once the last one is gone.
 */
#include <arpa/inet.h>
#include <assert.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth.h"
#include "codec.h"
#include "tls.h"
#include "transport.h"

_Static_assert(CODEC_NONCE_BYTES == AUTH_NONCE_BYTES, "nonce sizes differ");
_Static_assert(CODEC_PROOF_BYTES == AUTH_MAC_BYTES, "proof sizes differ");

/* Reconnect backoff: the first retry after BACKOFF_MIN_MS, doubling on each
 * failure up to BACKOFF_MAX_MS, back to the minimum after a success. */
#define BACKOFF_MIN_MS 50u
#define BACKOFF_MAX_MS 2000u
/* Defaults for options left at 0. */
#define DEFAULT_QUEUE_BYTES_MAX (64u * 1024u * 1024u)
#define DEFAULT_MAX_ENTRIES 65536u
#define DEFAULT_MAX_ENTRY_BYTES (16u * 1024u * 1024u)
/* The least free space offered to each read. */
#define READ_CHUNK 65536u
/* A write buffer larger than this is freed once written rather than kept
 * for the next batch, so one big snapshot chunk does not pin memory. */
#define KEEP_BUFFER_MAX (1024u * 1024u)
/* The sweep that enforces TRANSPORT_HELLO_TIMEOUT_MS (the handshake's
 * deadline) and TRANSPORT_IDLE_TIMEOUT_MS runs this often. */
#define HANDSHAKE_SWEEP_MS 1000u

static const struct
{
    int code;
    const char *text;
} errors[] = {
    {0, "success"},
    {TRANSPORT_EINVAL, "transport: invalid argument"},
    {TRANSPORT_ENOMEM, "transport: out of memory"},
    {TRANSPORT_EADDR, "transport: cannot resolve or bind the address"},
    {TRANSPORT_EUNKNOWN, "transport: no such peer"},
    {TRANSPORT_EFULL, "transport: the peer's send queue is full"},
    {TRANSPORT_EDOWN, "transport: the peer is not connected"},
    {TRANSPORT_ENOSECRET,
     "transport: no cluster secret (or one of the wrong length), and "
     "insecure mode is off"},
};

const char *transport_strerror(int code)
{
    for (size_t i = 0; i < sizeof(errors) / sizeof(errors[0]); i++) {
        if (errors[i].code == code) {
            return errors[i].text;
        }
    }
    return "transport: unknown error";
}

/* A growable byte buffer. */
struct bytes
{
    uint8_t *data;
    size_t len;
    size_t cap;
};

struct peer;

/* Where a connection is in the handshake. */
enum hs_state {
    HS_CONNECTING, /* outgoing: TCP connect in progress */
    HS_CHALLENGE,  /* outgoing: hello sent, waiting for the challenge */
    HS_HELLO,      /* incoming: waiting for the hello */
    HS_PROOF,      /* incoming: challenge sent, waiting for the proof */
    HS_DONE,       /* both sides proved themselves */
};

struct conn
{
    uv_tcp_t tcp; /* first, so a handle pointer is a conn pointer */
    struct transport *t;
    struct tls_stream *tls;   /* with peer TLS, from connect or accept on */
    struct conn *prev, *next; /* in t->conns */
    bool closing;
    enum hs_state hs;
    uint64_t started_at; /* uv_now() when the handshake began */
    uint8_t nonce_d[AUTH_NONCE_BYTES];
    uint8_t nonce_l[AUTH_NONCE_BYTES];
    uint8_t expect[AUTH_MAC_BYTES]; /* the other side's proof */

    /* Outgoing connections only. */
    struct peer *peer;
    uv_connect_t connect_req;
    bool connected;
    uint64_t connected_at;   /* uv_now() when the connect succeeded */
    unsigned backoff_before; /* the peer's backoff before that */
    struct bytes pending;    /* frames queued behind the write in flight */
    uint64_t pending_frames;
    struct bytes inflight; /* frames being written */
    uint64_t inflight_frames;
    bool writing;
    uv_write_t write_req;
    /* The challenge frame, read during the handshake. */
    uint8_t hs_buf[CODEC_FRAME_HEADER + CODEC_CHALLENGE_BYTES];
    size_t hs_len;

    /* Incoming connections only. */
    raft_id from; /* 0 until the hello arrived; trusted once hs is DONE */
    struct bytes rbuf;
    uint64_t accepted_at; /* uv_now() */
    uint64_t last_rx;     /* uv_now() of the last byte received */
};

struct peer
{
    struct transport *t;
    struct peer *prev, *next; /* in t->peers */
    raft_id id;
    bool removed; /* forgotten; freed once its handles are closed */
    struct sockaddr_storage addr;
    uv_timer_t timer;
    unsigned backoff_ms;
    struct conn *out; /* the outgoing connection, or NULL */
    unsigned handles; /* open handles that point at this peer */
};

struct transport
{
    uv_loop_t *loop;
    struct transport_options opts;
    /* The listen address with port 0: outgoing connections are bound to
     * it, so that they leave from the node's own address and firewall
     * rules written for node addresses apply to them. */
    struct sockaddr_storage local;
    bool bind_local; /* false when listening on a wildcard address */
    uv_tcp_t listener;
    /* Closes connections whose handshake takes too long, and incoming
     * ones that stay silent for too long. */
    uv_timer_t sweep;
    unsigned n_incoming;
    uint8_t secret[AUTH_SECRET_MAX];
    struct peer *peers;
    struct conn *conns;
    struct transport_stats stats;
    unsigned handles; /* open handles, listener included */
    bool closing;
    transport_close_cb close_cb;
    void *close_arg;
};

/* ---------------------------------------------------------------------- */
/* Helpers                                                                 */

/* Makes room for @n more bytes in @b. */
static int bytes_reserve(struct bytes *b, size_t n)
{
    if (b->cap - b->len >= n) {
        return 0;
    }
    size_t cap = b->cap > 0 ? b->cap : 4096;
    while (cap - b->len < n) {
        cap *= 2;
    }
    uint8_t *data = realloc(b->data, cap);
    if (data == NULL) {
        return TRANSPORT_ENOMEM;
    }
    b->data = data;
    b->cap = cap;
    return 0;
}

static void bytes_free(struct bytes *b)
{
    free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
}

/* Parses @host:@port, a numeric address: nothing here may look a name up,
 * which would block the loop (member addresses are numeric by
 * bnode_member_parse_addr()). */
static int resolve(const char *host, int port, struct sockaddr_storage *out)
{
    if (host == NULL || port < 0 || port > 65535) {
        return TRANSPORT_EADDR;
    }
    memset(out, 0, sizeof(*out));
    if (uv_ip4_addr(host, port, (struct sockaddr_in *)out) == 0 ||
        uv_ip6_addr(host, port, (struct sockaddr_in6 *)out) == 0) {
        return 0;
    }
    return TRANSPORT_EADDR;
}

static struct peer *peer_find(const struct transport *t, raft_id id)
{
    for (struct peer *p = t->peers; p != NULL; p = p->next) {
        if (p->id == id && !p->removed) {
            return p;
        }
    }
    return NULL;
}

/* Called after each close callback: the last one finishes transport_close. */
static void transport_maybe_finish(struct transport *t)
{
    if (!t->closing || t->handles > 0) {
        return;
    }
    transport_close_cb cb = t->close_cb;
    void *arg = t->close_arg;
    auth_wipe(t->secret, sizeof(t->secret));
    free(t);
    if (cb != NULL) {
        cb(arg);
    }
}

static void peer_maybe_free(struct peer *p)
{
    if (!p->removed || p->handles > 0) {
        return;
    }
    struct transport *t = p->t;
    if (p->prev != NULL) {
        p->prev->next = p->next;
    } else {
        t->peers = p->next;
    }
    if (p->next != NULL) {
        p->next->prev = p->prev;
    }
    free(p);
}

static void schedule_reconnect(struct peer *p);

/* ---------------------------------------------------------------------- */
/* Connections                                                             */

static void on_conn_closed(uv_handle_t *h)
{
    struct conn *c = (struct conn *)h;
    struct transport *t = c->t;
    tls_stream_destroy(c->tls);
    if (c->prev != NULL) {
        c->prev->next = c->next;
    } else {
        t->conns = c->next;
    }
    if (c->next != NULL) {
        c->next->prev = c->prev;
    }
    bytes_free(&c->pending);
    bytes_free(&c->inflight);
    bytes_free(&c->rbuf);
    struct peer *p = c->peer;
    if (p == NULL) {
        t->n_incoming--;
    }
    free(c);
    if (p != NULL) {
        p->handles--;
        peer_maybe_free(p);
    }
    t->handles--;
    transport_maybe_finish(t);
}

/* Closes @c once. For an outgoing connection, the frames it had not
 * finished writing are lost: the peer is reported unreachable so that Raft
 * retransmits, and a reconnect is scheduled unless the peer is going away. */
static void conn_close(struct conn *c)
{
    if (c->closing) {
        return;
    }
    c->closing = true;
    struct transport *t = c->t;
    struct peer *p = c->peer;
    bool lost = c->pending.len > 0 || c->inflight.len > 0;
    uv_close((uv_handle_t *)&c->tcp, on_conn_closed);
    if (p != NULL && p->out == c) {
        p->out = NULL;
        /* A connection the peer drops at once (it refuses our hello, or
         * it is restarting) is not a success: keep backing off, so that a
         * misconfigured peer is not dialed every 50 ms forever. */
        if (c->connected &&
            uv_now(t->loop) - c->connected_at < BACKOFF_MAX_MS / 2) {
            p->backoff_ms = c->backoff_before;
        }
        if (lost) {
            t->stats.dropped += c->pending_frames + c->inflight_frames;
        }
        if (!p->removed && !t->closing) {
            schedule_reconnect(p);
            if (lost && t->opts.on_unreachable != NULL) {
                t->opts.on_unreachable(t->opts.arg, p->id);
            }
        }
    }
}

/* Creates a connection object with an initialized TCP handle. */
static struct conn *conn_create(struct transport *t, struct peer *p)
{
    struct conn *c = calloc(1, sizeof(*c));
    if (c == NULL) {
        return NULL;
    }
    if (uv_tcp_init(t->loop, &c->tcp) != 0) {
        free(c);
        return NULL;
    }
    c->t = t;
    c->peer = p;
    c->next = t->conns;
    if (t->conns != NULL) {
        t->conns->prev = c;
    }
    t->conns = c;
    t->handles++;
    if (p != NULL) {
        p->handles++;
    }
    return c;
}

/* ---------------------------------------------------------------------- */
/* Writing (outgoing connections)                                          */

static void flush(struct conn *c);

static void on_write(uv_write_t *req, int status)
{
    struct conn *c = req->data;
    struct transport *t = c->t;
    c->writing = false;
    if (status != 0) {
        /* UV_ECANCELED means the handle is closing already. */
        conn_close(c);
        return;
    }
    t->stats.frames_sent += c->inflight_frames;
    t->stats.bytes_sent += c->inflight.len;
    c->inflight.len = 0;
    c->inflight_frames = 0;
    if (c->inflight.cap > KEEP_BUFFER_MAX) {
        bytes_free(&c->inflight);
    }
    flush(c);
}

/* Starts writing everything queued, in one uv_write, if no write is in
 * flight; frames queued meanwhile go out together in the next one. */
static void flush(struct conn *c)
{
    if (c->writing || c->closing || c->pending.len == 0) {
        return;
    }
    struct bytes tmp = c->inflight;
    c->inflight = c->pending;
    c->pending = tmp;
    c->inflight_frames = c->pending_frames;
    c->pending_frames = 0;

    uv_buf_t buf =
        uv_buf_init((char *)c->inflight.data, (unsigned int)c->inflight.len);
    c->write_req.data = c;
    int rv = c->tls != NULL
                 ? tls_stream_write(c->tls, &c->write_req, &buf, 1, on_write)
                 : uv_write(&c->write_req, (uv_stream_t *)&c->tcp, &buf, 1,
                            on_write);
    if (rv != 0) {
        conn_close(c);
        return;
    }
    c->writing = true;
}

/* ---------------------------------------------------------------------- */
/* Reading                                                                 */

/* Starts reading @c, through TLS if the transport has it; an outgoing
 * connection's certificate must name the peer it dialed. */
static int read_start(struct conn *c, uv_alloc_cb alloc_cb, uv_read_cb read_cb)
{
    struct transport *t = c->t;
    if (t->opts.tls == NULL) {
        return uv_read_start((uv_stream_t *)&c->tcp, alloc_cb, read_cb);
    }
    int rv = tls_stream_create(t->opts.tls, (uv_stream_t *)&c->tcp,
                               c->peer != NULL ? TLS_CONNECT : TLS_ACCEPT_CERT,
                               c->peer != NULL ? c->peer->id : 0, &c->tls);
    if (rv != 0) {
        return UV_ENOMEM;
    }
    return tls_stream_read_start(c->tls, alloc_cb, read_cb);
}

static void alloc_read(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    struct conn *c = (struct conn *)h;
    (void)suggested;
    /* The header of a partial frame was checked against CODEC_FRAME_MAX by
     * the previous read callback, so the buffer only grows (by doubling)
     * as bytes of an acceptable frame arrive. */
    if (bytes_reserve(&c->rbuf, READ_CHUNK) != 0) {
        *buf = uv_buf_init(NULL, 0);
        return;
    }
    size_t room = c->rbuf.cap - c->rbuf.len;
    if (room > UINT32_MAX) {
        room = UINT32_MAX;
    }
    *buf = uv_buf_init((char *)c->rbuf.data + c->rbuf.len, (unsigned int)room);
}

static void bad_frame(struct conn *c)
{
    c->t->stats.bad_frames++;
    conn_close(c);
}

/* Queues one frame carrying @payload on @c and starts writing it. */
static int queue_frame(struct conn *c, const uint8_t *payload, uint32_t len)
{
    if (bytes_reserve(&c->pending, CODEC_FRAME_HEADER + len) != 0) {
        return TRANSPORT_ENOMEM;
    }
    uint8_t *frame = c->pending.data + c->pending.len;
    memcpy(frame + CODEC_FRAME_HEADER, payload, len);
    codec_frame_header(frame + CODEC_FRAME_HEADER, len, frame);
    c->pending.len += CODEC_FRAME_HEADER + len;
    flush(c);
    return 0;
}

static int proof(const struct transport *t,
                 const struct conn *c,
                 enum auth_role role,
                 raft_id from,
                 raft_id to,
                 uint8_t mac[AUTH_MAC_BYTES])
{
    return auth_proof(t->secret, t->opts.secret_len, role, t->opts.cluster_id,
                      from, to, c->nonce_d, c->nonce_l, mac);
}

/* Handles the first frame of an incoming connection: a known peer of our
 * cluster gets our challenge (our nonce and our proof), and we note the
 * proof it must answer with. */
static void handle_hello(struct conn *c, const uint8_t *payload, uint32_t len)
{
    struct transport *t = c->t;
    struct codec_hello h;
    struct codec_challenge ch;
    uint8_t buf[CODEC_CHALLENGE_BYTES];
    if (codec_hello_decode(payload, len, &h) != 0 ||
        h.cluster_id != t->opts.cluster_id || h.to != t->opts.self ||
        peer_find(t, h.from) == NULL) {
        t->stats.rejected_hellos++;
        conn_close(c);
        return;
    }
    /* With TLS, a member speaks only for the member its certificate
     * names. */
    uint64_t cert_id;
    if (c->tls != NULL &&
        (tls_stream_member(c->tls, &cert_id) != 0 || cert_id != h.from)) {
        t->stats.rejected_hellos++;
        t->stats.cert_mismatches++;
        conn_close(c);
        return;
    }
    memcpy(c->nonce_d, h.nonce, AUTH_NONCE_BYTES);
    if (auth_random(c->nonce_l, AUTH_NONCE_BYTES) != 0 ||
        proof(t, c, AUTH_ROLE_LISTENER, h.from, t->opts.self, ch.proof) != 0 ||
        proof(t, c, AUTH_ROLE_DIALER, h.from, t->opts.self, c->expect) != 0) {
        conn_close(c);
        return;
    }
    memcpy(ch.nonce, c->nonce_l, AUTH_NONCE_BYTES);
    codec_challenge_encode(&ch, buf);
    if (queue_frame(c, buf, sizeof(buf)) != 0) {
        conn_close(c);
        return;
    }
    /* Only claimed so far: nothing is delivered, and no other connection
     * is touched, until the proof arrives. */
    c->from = h.from;
    c->hs = HS_PROOF;
}

/* Handles the dialer's proof: the connection is now the peer's. */
static void handle_auth(struct conn *c, const uint8_t *payload, uint32_t len)
{
    struct transport *t = c->t;
    uint8_t got[AUTH_MAC_BYTES];
    if (codec_auth_decode(payload, len, got) != 0 ||
        !auth_proof_equal(got, c->expect)) {
        t->stats.auth_failures++;
        conn_close(c);
        return;
    }
    c->hs = HS_DONE;
    /* A new connection from a peer means it lost the old one (it restarted,
     * or the network dropped the old one without telling us): close the
     * older ones so half-open sockets do not pile up. Only a connection
     * that proved it is that peer may do this, so a stranger cannot cut
     * members off by claiming their ids. */
    for (struct conn *o = t->conns; o != NULL; o = o->next) {
        if (o != c && o->peer == NULL && o->from == c->from &&
            o->hs == HS_DONE) {
            conn_close(o);
        }
    }
}

/* Handles one verified message frame; a bad one closes @c. */
static void handle_message(struct conn *c, const uint8_t *payload, uint32_t len)
{
    struct transport *t = c->t;
    struct raft_message m;
    void *block = NULL;
    if (codec_message_decode(payload, len, t->opts.max_entries,
                             t->opts.max_entry_bytes, &m, &block) != 0) {
        bad_frame(c);
        return;
    }
    /* The handshake authenticated the sender: a message must not claim
     * to come from anyone else. */
    if (m.from != c->from || m.to != t->opts.self) {
        free(block);
        t->stats.bad_senders++;
        conn_close(c);
        return;
    }
    t->stats.frames_received++;
    t->stats.bytes_received += CODEC_FRAME_HEADER + len;
    if (t->opts.on_recv != NULL) {
        t->opts.on_recv(t->opts.arg, &m);
    }
    free(block);
}

/* Parses every complete frame in the read buffer. */
static void parse_frames(struct conn *c)
{
    size_t off = 0;
    while (!c->closing && !c->t->closing) {
        size_t avail = c->rbuf.len - off;
        const uint8_t *hdr = c->rbuf.data + off;
        uint32_t len;
        if (avail < CODEC_FRAME_HEADER) {
            break;
        }
        if (codec_frame_length(hdr, &len) != 0) {
            bad_frame(c);
            return;
        }
        /* Until the handshake is done, only its frames, of their exact
         * sizes, are buffered: a stranger cannot make us hold megabytes. */
        if (c->hs == HS_HELLO && len != CODEC_HELLO_BYTES) {
            c->t->stats.rejected_hellos++;
            conn_close(c);
            return;
        }
        if (c->hs == HS_PROOF && len != CODEC_AUTH_BYTES) {
            c->t->stats.auth_failures++;
            conn_close(c);
            return;
        }
        if (avail - CODEC_FRAME_HEADER < len) {
            break;
        }
        const uint8_t *payload = hdr + CODEC_FRAME_HEADER;
        if (codec_frame_verify(hdr, payload) != 0) {
            bad_frame(c);
            return;
        }
        if (c->hs == HS_HELLO) {
            handle_hello(c, payload, len);
        } else if (c->hs == HS_PROOF) {
            handle_auth(c, payload, len);
        } else {
            handle_message(c, payload, len);
        }
        off += CODEC_FRAME_HEADER + len;
    }
    if (c->closing) {
        return;
    }
    /* Move the partial frame to the front, so that the buffer holds at
     * most one frame plus one read. */
    if (off > 0) {
        memmove(c->rbuf.data, c->rbuf.data + off, c->rbuf.len - off);
        c->rbuf.len -= off;
    }
    if (c->rbuf.len == 0 && c->rbuf.cap > KEEP_BUFFER_MAX) {
        bytes_free(&c->rbuf);
    }
}

static void on_read_incoming(uv_stream_t *s, ssize_t nread, const uv_buf_t *b)
{
    struct conn *c = (struct conn *)s;
    (void)b;
    if (nread < 0) {
        /* UV_ENOBUFS (our allocation failed) lands here too. */
        conn_close(c);
        return;
    }
    c->rbuf.len += (size_t)nread;
    c->last_rx = uv_now(c->t->loop);
    parse_frames(c);
}

/* An outgoing connection carries only our frames, apart from the
 * listener's challenge: bytes beyond it are a protocol error and EOF
 * means the peer is gone. */
static void alloc_outgoing(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    static char scratch[64];
    struct conn *c = (struct conn *)h;
    (void)suggested;
    if (c->hs == HS_CHALLENGE && c->hs_len < sizeof(c->hs_buf)) {
        *buf = uv_buf_init((char *)c->hs_buf + c->hs_len,
                           (unsigned int)(sizeof(c->hs_buf) - c->hs_len));
        return;
    }
    *buf = uv_buf_init(scratch, sizeof(scratch));
}

/* Checks the listener's challenge and answers it with our proof; the
 * connection is up from then on. */
static void handle_challenge(struct conn *c)
{
    struct transport *t = c->t;
    struct peer *p = c->peer;
    struct codec_challenge ch;
    uint8_t mine[AUTH_MAC_BYTES];
    uint8_t buf[CODEC_AUTH_BYTES];
    uint32_t len;
    if (codec_frame_length(c->hs_buf, &len) != 0 ||
        len != CODEC_CHALLENGE_BYTES) {
        t->stats.auth_failures++;
        conn_close(c);
        return;
    }
    if (c->hs_len < sizeof(c->hs_buf)) {
        return; /* more to come */
    }
    const uint8_t *payload = c->hs_buf + CODEC_FRAME_HEADER;
    if (codec_frame_verify(c->hs_buf, payload) != 0 ||
        codec_challenge_decode(payload, len, &ch) != 0) {
        t->stats.auth_failures++;
        conn_close(c);
        return;
    }
    memcpy(c->nonce_l, ch.nonce, AUTH_NONCE_BYTES);
    if (proof(t, c, AUTH_ROLE_LISTENER, t->opts.self, p->id, c->expect) != 0 ||
        !auth_proof_equal(ch.proof, c->expect)) {
        /* Whoever answers at that address does not know the secret. */
        t->stats.auth_failures++;
        conn_close(c);
        return;
    }
    if (proof(t, c, AUTH_ROLE_DIALER, t->opts.self, p->id, mine) != 0) {
        conn_close(c);
        return;
    }
    codec_auth_encode(mine, buf);
    if (queue_frame(c, buf, sizeof(buf)) != 0) {
        conn_close(c);
        return;
    }
    c->hs = HS_DONE;
    c->connected = true;
    c->connected_at = uv_now(t->loop);
    c->backoff_before = p->backoff_ms;
    p->backoff_ms = BACKOFF_MIN_MS;
    t->stats.connects++;
}

static void on_read_outgoing(uv_stream_t *s, ssize_t nread, const uv_buf_t *b)
{
    struct conn *c = (struct conn *)s;
    (void)b;
    if (nread == 0) {
        return;
    }
    if (nread < 0) {
        conn_close(c);
        return;
    }
    if (c->hs != HS_CHALLENGE || b->base != (char *)c->hs_buf + c->hs_len) {
        c->t->stats.bad_frames++;
        conn_close(c);
        return;
    }
    c->hs_len += (size_t)nread;
    if (c->hs_len >= CODEC_FRAME_HEADER) {
        handle_challenge(c);
    }
}

/* ---------------------------------------------------------------------- */
/* Connecting                                                              */

static void on_connect(uv_connect_t *req, int status)
{
    struct conn *c = req->data;
    struct transport *t = c->t;
    struct peer *p = c->peer;
    if (c->closing) {
        return;
    }
    if (status != 0) {
        conn_close(c);
        return;
    }
    struct codec_hello h = {.version = CODEC_HELLO_VERSION,
                            .cluster_id = t->opts.cluster_id,
                            .from = t->opts.self,
                            .to = p->id};
    uint8_t buf[CODEC_HELLO_BYTES];
    c->hs = HS_CHALLENGE;
    c->started_at = uv_now(t->loop);
    if (uv_tcp_nodelay(&c->tcp, 1) != 0 ||
        uv_tcp_keepalive(&c->tcp, 1, TRANSPORT_KEEPALIVE_S) != 0 ||
        read_start(c, alloc_outgoing, on_read_outgoing) != 0 ||
        auth_random(c->nonce_d, AUTH_NONCE_BYTES) != 0) {
        conn_close(c);
        return;
    }
    memcpy(h.nonce, c->nonce_d, AUTH_NONCE_BYTES);
    codec_hello_encode(&h, buf);
    if (queue_frame(c, buf, sizeof(buf)) != 0) {
        conn_close(c);
    }
}

static void peer_connect(struct peer *p)
{
    struct transport *t = p->t;
    assert(p->out == NULL);
    struct conn *c = conn_create(t, p);
    if (c == NULL) {
        schedule_reconnect(p);
        return;
    }
    p->out = c;
    c->connect_req.data = c;
    if (t->bind_local && t->local.ss_family == p->addr.ss_family &&
        uv_tcp_bind(&c->tcp, (const struct sockaddr *)&t->local, 0) != 0) {
        conn_close(c);
        return;
    }
    if (uv_tcp_connect(&c->connect_req, &c->tcp,
                       (const struct sockaddr *)&p->addr, on_connect) != 0) {
        /* The connect callback will not run; close and retry later. */
        conn_close(c);
    }
}

static void on_retry(uv_timer_t *timer)
{
    struct peer *p = timer->data;
    if (p->removed || p->t->closing || p->out != NULL) {
        return;
    }
    peer_connect(p);
}

static void schedule_reconnect(struct peer *p)
{
    unsigned delay = p->backoff_ms;
    p->backoff_ms =
        p->backoff_ms * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : p->backoff_ms * 2;
    uv_timer_start(&p->timer, on_retry, delay, 0);
}

/* ---------------------------------------------------------------------- */
/* Accepting                                                               */

static void on_connection(uv_stream_t *server, int status)
{
    struct transport *t = server->data;
    if (status != 0 || t->closing) {
        return;
    }
    struct conn *c = conn_create(t, NULL);
    if (c == NULL) {
        /* Leave the connection in the backlog: accepting it without memory
         * to serve it helps nobody, and the peer will retry. */
        return;
    }
    t->n_incoming++;
    c->accepted_at = c->last_rx = uv_now(t->loop);
    c->hs = HS_HELLO;
    c->started_at = c->accepted_at;
    if (uv_accept(server, (uv_stream_t *)&c->tcp) != 0) {
        conn_close(c);
        return;
    }
    if (t->n_incoming > TRANSPORT_INCOMING_MAX) {
        /* The oldest connection that has not finished its handshake
         * makes room (a stranger cannot keep members out); without one,
         * the new one is closed at once, which frees its descriptor at
         * once. */
        struct conn *victim = c;
        for (struct conn *o = t->conns; o != NULL; o = o->next) {
            if (o != c && o->peer == NULL && o->hs != HS_DONE && !o->closing &&
                (victim == c || o->accepted_at < victim->accepted_at)) {
                victim = o;
            }
        }
        t->stats.refused++;
        conn_close(victim);
        if (victim == c) {
            return;
        }
    }
    if (uv_tcp_nodelay(&c->tcp, 1) != 0 ||
        uv_tcp_keepalive(&c->tcp, 1, TRANSPORT_KEEPALIVE_S) != 0 ||
        read_start(c, alloc_read, on_read_incoming) != 0) {
        conn_close(c);
    }
}

/* Closes connections whose handshake did not finish in time (incoming
 * ones, and outgoing ones whose listener never answers), and incoming
 * ones that have been silent for too long. */
static void on_sweep(uv_timer_t *timer)
{
    struct transport *t = timer->data;
    uint64_t now = uv_now(t->loop);
    for (struct conn *c = t->conns; c != NULL; c = c->next) {
        if (c->closing || c->hs == HS_CONNECTING) {
            continue;
        }
        if (c->hs != HS_DONE &&
            now - c->started_at >= TRANSPORT_HELLO_TIMEOUT_MS) {
            t->stats.timed_out++;
            t->stats.handshake_timeouts++;
            conn_close(c);
        } else if (c->peer == NULL &&
                   now - c->last_rx >= TRANSPORT_IDLE_TIMEOUT_MS) {
            t->stats.timed_out++;
            conn_close(c);
        }
    }
}

static void on_sweep_closed(uv_handle_t *h)
{
    struct transport *t = h->data;
    t->handles--;
    transport_maybe_finish(t);
}

/* ---------------------------------------------------------------------- */
/* Public API                                                              */

static void on_listener_closed(uv_handle_t *h)
{
    struct transport *t = h->data;
    t->handles--;
    transport_maybe_finish(t);
}

int transport_create(uv_loop_t *loop,
                     const struct transport_options *opts,
                     struct transport **out,
                     char *errmsg,
                     size_t errmsg_len)
{
    struct sockaddr_storage addr;
    int rv;

    if (loop == NULL || opts == NULL || out == NULL || opts->self == 0 ||
        (opts->secret_len > 0 && opts->secret == NULL)) {
        return TRANSPORT_EINVAL;
    }
    /* A cluster is not open by accident: without a secret the caller must
     * say it wants no peer authentication. */
    if (opts->secret_len > AUTH_SECRET_MAX ||
        (opts->secret_len < AUTH_SECRET_MIN &&
         !(opts->secret_len == 0 && (opts->insecure || opts->tls != NULL)))) {
        if (errmsg != NULL) {
            snprintf(errmsg, errmsg_len,
                     "transport: the cluster secret must be %u to %u bytes "
                     "(it has %zu), or insecure mode chosen explicitly",
                     AUTH_SECRET_MIN, AUTH_SECRET_MAX, opts->secret_len);
        }
        return TRANSPORT_ENOSECRET;
    }
    if (resolve(opts->listen_host, opts->listen_port, &addr) != 0) {
        if (errmsg != NULL) {
            snprintf(errmsg, errmsg_len, "transport: cannot resolve %s:%d",
                     opts->listen_host ? opts->listen_host : "(null)",
                     opts->listen_port);
        }
        return TRANSPORT_EADDR;
    }
    struct transport *t = calloc(1, sizeof(*t));
    if (t == NULL) {
        return TRANSPORT_ENOMEM;
    }
    t->loop = loop;
    t->opts = *opts;
    /* The host string is not kept: the resolved address is all we need. */
    t->opts.listen_host = NULL;
    t->local = addr;
    if (addr.ss_family == AF_INET) {
        struct sockaddr_in *in = (struct sockaddr_in *)&t->local;
        in->sin_port = 0;
        t->bind_local = in->sin_addr.s_addr != htonl(INADDR_ANY);
    } else if (addr.ss_family == AF_INET6) {
        struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&t->local;
        in6->sin6_port = 0;
        t->bind_local = !IN6_IS_ADDR_UNSPECIFIED(&in6->sin6_addr);
    }
    if (opts->secret_len > 0) {
        memcpy(t->secret, opts->secret, opts->secret_len);
    }
    t->opts.secret = NULL;
    if (t->opts.send_queue_bytes_max == 0) {
        t->opts.send_queue_bytes_max = DEFAULT_QUEUE_BYTES_MAX;
    }
    /* One uv_write carries the whole queue, and a uv_buf_t holds at most
     * UINT32_MAX bytes. */
    if (t->opts.send_queue_bytes_max > UINT32_MAX) {
        t->opts.send_queue_bytes_max = UINT32_MAX;
    }
    if (t->opts.max_entries == 0) {
        t->opts.max_entries = DEFAULT_MAX_ENTRIES;
    }
    if (t->opts.max_entry_bytes == 0) {
        t->opts.max_entry_bytes = DEFAULT_MAX_ENTRY_BYTES;
    }

    rv = uv_tcp_init(loop, &t->listener);
    if (rv != 0) {
        auth_wipe(t->secret, sizeof(t->secret));
        free(t);
        return TRANSPORT_ENOMEM;
    }
    t->listener.data = t;
    t->handles = 1;
    /* libuv may defer a bind error to uv_listen(), so both are checked. */
    rv = uv_tcp_bind(&t->listener, (const struct sockaddr *)&addr, 0);
    if (rv == 0) {
        rv = uv_listen((uv_stream_t *)&t->listener, 128, on_connection);
    }
    if (rv != 0) {
        if (errmsg != NULL) {
            snprintf(errmsg, errmsg_len,
                     "transport: cannot listen on %s:%d: %s", opts->listen_host,
                     opts->listen_port, uv_strerror(rv));
        }
        goto err_close;
    }
    uv_timer_init(loop, &t->sweep);
    t->sweep.data = t;
    t->handles++;
    uv_timer_start(&t->sweep, on_sweep, HANDSHAKE_SWEEP_MS, HANDSHAKE_SWEEP_MS);
    *out = t;
    return 0;

err_close:
    /* The listener is closed without running the loop: the transport is
     * freed by its close callback, with no user callback to call. */
    t->closing = true;
    uv_close((uv_handle_t *)&t->listener, on_listener_closed);
    return TRANSPORT_EADDR;
}

int transport_add_peer(struct transport *t,
                       raft_id id,
                       const char *host,
                       int port)
{
    struct sockaddr_storage addr;
    if (t == NULL || t->closing || id == 0 || id == t->opts.self) {
        return TRANSPORT_EINVAL;
    }
    if (resolve(host, port, &addr) != 0) {
        return TRANSPORT_EADDR;
    }
    struct peer *p = peer_find(t, id);
    if (p != NULL) {
        /* Adding a peer again at the same address changes nothing, so a
         * driver may re-add its whole configuration after every change. */
        if (memcmp(&p->addr, &addr, sizeof(addr)) == 0) {
            return 0;
        }
        /* Re-addressed: drop the old connection and dial the new address
         * at once. */
        p->addr = addr;
        if (p->out != NULL) {
            conn_close(p->out);
        }
        uv_timer_stop(&p->timer);
        p->backoff_ms = BACKOFF_MIN_MS;
        peer_connect(p);
        return 0;
    }
    p = calloc(1, sizeof(*p));
    if (p == NULL) {
        return TRANSPORT_ENOMEM;
    }
    if (uv_timer_init(t->loop, &p->timer) != 0) {
        free(p);
        return TRANSPORT_ENOMEM;
    }
    p->t = t;
    p->id = id;
    p->addr = addr;
    p->backoff_ms = BACKOFF_MIN_MS;
    p->timer.data = p;
    p->handles = 1;
    t->handles++;
    p->next = t->peers;
    if (t->peers != NULL) {
        t->peers->prev = p;
    }
    t->peers = p;
    peer_connect(p);
    return 0;
}

static void on_timer_closed(uv_handle_t *h)
{
    struct peer *p = h->data;
    struct transport *t = p->t;
    p->handles--;
    peer_maybe_free(p);
    t->handles--;
    transport_maybe_finish(t);
}

/* Marks @p removed and closes its handles; it is freed by the last close
 * callback. */
static void peer_remove(struct peer *p)
{
    struct transport *t = p->t;
    p->removed = true;
    if (p->out != NULL) {
        conn_close(p->out);
    }
    uv_close((uv_handle_t *)&p->timer, on_timer_closed);
    for (struct conn *c = t->conns; c != NULL; c = c->next) {
        if (c->peer == NULL && c->from == p->id) {
            conn_close(c);
        }
    }
}

void transport_remove_peer(struct transport *t, raft_id id)
{
    struct peer *p = peer_find(t, id);
    if (p != NULL && !t->closing) {
        peer_remove(p);
    }
}

/* Refuses messages the encoder cannot write faithfully. */
static bool message_valid(const struct raft_message *m)
{
    if (m->type < RAFT_MSG_PREVOTE || m->type > RAFT_MSG_TYPE_MAX) {
        return false;
    }
    if (m->type == RAFT_MSG_APPEND && m->u.append.n_entries > 0 &&
        m->u.append.entries == NULL) {
        return false;
    }
    if (m->type == RAFT_MSG_SNAPSHOT &&
        ((m->u.snapshot.len > 0 && m->u.snapshot.data == NULL) ||
         m->u.snapshot.meta.conf.n > RAFT_CONF_MAX)) {
        return false;
    }
    return true;
}

static int drop(struct transport *t, raft_id id, int code)
{
    t->stats.dropped++;
    if (t->opts.on_unreachable != NULL) {
        t->opts.on_unreachable(t->opts.arg, id);
    }
    return code;
}

int transport_send(struct transport *t, const struct raft_message *m)
{
    if (t == NULL || m == NULL || t->closing || !message_valid(m)) {
        return TRANSPORT_EINVAL;
    }
    struct peer *p = peer_find(t, m->to);
    if (p == NULL) {
        return TRANSPORT_EUNKNOWN;
    }
    struct conn *c = p->out;
    if (c == NULL || !c->connected || c->closing) {
        return drop(t, p->id, TRANSPORT_EDOWN);
    }
    size_t size = codec_message_size(m);
    if (size > CODEC_FRAME_MAX) {
        return TRANSPORT_EINVAL;
    }
    size_t frame = CODEC_FRAME_HEADER + size;
    uint64_t queued = (uint64_t)c->pending.len + c->inflight.len;
    if (queued + frame > t->opts.send_queue_bytes_max) {
        return drop(t, p->id, TRANSPORT_EFULL);
    }
    if (bytes_reserve(&c->pending, frame) != 0) {
        t->stats.dropped++;
        return TRANSPORT_ENOMEM;
    }
    uint8_t *hdr = c->pending.data + c->pending.len;
    codec_message_encode(m, hdr + CODEC_FRAME_HEADER);
    codec_frame_header(hdr + CODEC_FRAME_HEADER, (uint32_t)size, hdr);
    c->pending.len += frame;
    c->pending_frames++;
    flush(c);
    return 0;
}

bool transport_connected(const struct transport *t, raft_id id)
{
    const struct peer *p = peer_find(t, id);
    return p != NULL && p->out != NULL && p->out->connected && !p->out->closing;
}

void transport_stats(const struct transport *t, struct transport_stats *out)
{
    *out = t->stats;
    out->connections = 0;
    for (const struct conn *c = t->conns; c != NULL; c = c->next) {
        out->connections++;
    }
}

void transport_close(struct transport *t, transport_close_cb cb, void *arg)
{
    assert(!t->closing);
    t->closing = true;
    t->close_cb = cb;
    t->close_arg = arg;
    uv_close((uv_handle_t *)&t->listener, on_listener_closed);
    uv_close((uv_handle_t *)&t->sweep, on_sweep_closed);
    for (struct peer *p = t->peers; p != NULL; p = p->next) {
        if (!p->removed) {
            peer_remove(p);
        }
    }
    for (struct conn *c = t->conns; c != NULL; c = c->next) {
        conn_close(c);
    }
}
