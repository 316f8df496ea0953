/*
 * transport.h - Raft messages between ballotd nodes over TCP, on libuv.
 *
 * Each node listens on its peer address. For every peer it keeps one
 * outgoing connection, on which it sends; it receives on the connections
 * peers open to it. A connection starts with a handshake: a hello naming
 * the cluster and both node ids, then a challenge-response in both
 * directions over the cluster secret (auth.h). A peer of another cluster,
 * with an unknown id or without the secret is disconnected; a connection
 * carries messages only once both sides proved themselves, and only
 * messages from the member it authenticated as. Lost connections are
 * re-established with exponential backoff (50 ms doubling up to 2 s). Messages
 * to a peer that is not connected, or whose send queue is over its limit, are
 * dropped and the drop is reported through the unreachable callback: Raft
 * retransmits.
 *
 * Everything runs on the loop thread that created the transport.
 */
#ifndef BALLOT_NET_TRANSPORT_H
#define BALLOT_NET_TRANSPORT_H

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "raft.h"

/* Error codes: the -6000 range. */
enum {
    TRANSPORT_EINVAL = -6001,
    TRANSPORT_ENOMEM = -6002,
    TRANSPORT_EADDR = -6003,    /* cannot resolve or bind an address */
    TRANSPORT_EUNKNOWN = -6004, /* no such peer */
    TRANSPORT_EFULL = -6005,    /* peer's send queue is over its limit */
    TRANSPORT_EDOWN = -6006,    /* peer not connected */
    /* No cluster secret (or one of the wrong length) and not insecure. */
    TRANSPORT_ENOSECRET = -6007,
};

const char *transport_strerror(int code);

/* Incoming connections held at once. Members need one each (two while one
 * reconnects); at the limit a connection that has not said hello yet is
 * dropped for the new one, else the new one is closed at once. */
#define TRANSPORT_INCOMING_MAX (4u * RAFT_CONF_MAX)
/* An incoming connection must say hello within this... */
#define TRANSPORT_HELLO_TIMEOUT_MS 5000u
/* ...and is closed after this long without a byte (the peer reconnects
 * when it has something to send). */
#define TRANSPORT_IDLE_TIMEOUT_MS (300u * 1000u)
/* TCP keepalive on every peer connection: the first probe after this many
 * idle seconds, so a half-open connection is noticed. */
#define TRANSPORT_KEEPALIVE_S 30u
/* Descriptors the transport holds at most: incoming and outgoing
 * connections, the listener and one being accepted. */
#define TRANSPORT_FDS_MAX (TRANSPORT_INCOMING_MAX + RAFT_CONF_MAX + 2u)

struct transport;
struct tls_ctx;

/* Called for every message received; @m is valid during the call only. */
typedef void (*transport_recv_cb)(void *arg, const struct raft_message *m);
/* Called when a message to @id was dropped (not connected, queue full,
 * connection lost with it unsent). */
typedef void (*transport_unreachable_cb)(void *arg, raft_id id);
/* Called once after transport_close() finished closing every handle. */
typedef void (*transport_close_cb)(void *arg);

struct transport_options
{
    uint64_t cluster_id;
    /* The secret every member of the cluster shares (copied):
     * AUTH_SECRET_MIN to AUTH_SECRET_MAX bytes. Peers prove they know it
     * before any message is accepted from them. */
    const uint8_t *secret;
    size_t secret_len;
    /* Allows an empty secret: the handshake still runs but proves
     * nothing, so anyone who can reach the peer port and knows the
     * cluster id and a member id can speak for that member. For tests and
     * for networks that only members can reach. */
    bool insecure;
    /* Mutual TLS on every peer connection (borrowed for the transport's
     * life; NULL: none): both sides show a certificate of the CA, and a
     * member's certificate names it ("member-<id>", tls.h), so a
     * connection speaks only for the member its certificate names. With
     * it the secret may be empty; with both, both are checked. */
    struct tls_ctx *tls;
    raft_id self;
    /* Copied; e.g. "127.0.0.1". Connections to peers are made from this
     * address too (unless it is a wildcard), so that a firewall rule on a
     * node address applies to both directions. */
    const char *listen_host;
    int listen_port;
    /* Bytes queued for one peer before messages are dropped; 0 selects
     * 64 MiB. */
    uint64_t send_queue_bytes_max;
    /* Limits passed to codec_message_decode(); 0 selects 65536 entries
     * and 16 MiB per entry. */
    uint32_t max_entries;
    uint32_t max_entry_bytes;
    transport_recv_cb on_recv;
    transport_unreachable_cb on_unreachable;
    void *arg;
};

/* Creates the transport and starts listening. Returns 0, TRANSPORT_EINVAL,
 * TRANSPORT_ENOSECRET (no usable secret and not insecure),
 * TRANSPORT_EADDR (with a message in @errmsg, which may be NULL) or
 * TRANSPORT_ENOMEM. After TRANSPORT_EADDR the listening handle is still
 * closing: run the loop (UV_RUN_NOWAIT suffices) before uv_loop_close().
 * A host name that is not a numeric address is resolved with a blocking
 * getaddrinfo(). */
int transport_create(uv_loop_t *loop,
                     const struct transport_options *opts,
                     struct transport **out,
                     char *errmsg,
                     size_t errmsg_len);

/* Adds (or re-addresses) peer @id at @host:@port and starts connecting.
 * Returns 0, TRANSPORT_EINVAL (id 0 or our own), TRANSPORT_EADDR or
 * TRANSPORT_ENOMEM. Only added peers may connect to us. */
int transport_add_peer(struct transport *t,
                       raft_id id,
                       const char *host,
                       int port);

/* Forgets peer @id and closes its connections. */
void transport_remove_peer(struct transport *t, raft_id id);

/* Serializes @m at once (so everything it points to may be released on
 * return) and queues it for m->to. Returns 0, TRANSPORT_EUNKNOWN,
 * TRANSPORT_EDOWN or TRANSPORT_EFULL (dropped; also reported through
 * on_unreachable, which runs before this returns), TRANSPORT_EINVAL (a
 * malformed or oversized message) or TRANSPORT_ENOMEM. */
int transport_send(struct transport *t, const struct raft_message *m);

/* True if the outgoing connection to @id is established. */
bool transport_connected(const struct transport *t, raft_id id);

/* Counters for INFO and tests. */
struct transport_stats
{
    uint64_t frames_sent;
    uint64_t frames_received;
    uint64_t bytes_sent;
    uint64_t bytes_received;
    uint64_t dropped;         /* messages dropped on send */
    uint64_t bad_frames;      /* checksum, length or decode failures */
    uint64_t connects;        /* outgoing connections established */
    uint64_t rejected_hellos; /* wrong cluster or unknown node */
    uint64_t refused;         /* incoming over TRANSPORT_INCOMING_MAX */
    uint64_t timed_out;       /* no hello, or idle, for too long */
    uint64_t auth_failures;   /* a proof that did not match, either side */
    uint64_t bad_senders;     /* a message not from the authenticated peer */
    /* A hello for a member other than the one the TLS certificate
     * names (counted in rejected_hellos too). */
    uint64_t cert_mismatches;
    /* Connections open now, both ways (with the listener, the descriptors
     * the peer port holds). */
    uint64_t connections;
    /* Incoming or outgoing connections closed because the handshake did
     * not finish in time, or to make room for newer handshakes. */
    uint64_t handshake_timeouts;
};

void transport_stats(const struct transport *t, struct transport_stats *out);

/* Closes every handle; @t is freed once they are closed, then @cb runs
 * (from the loop, never from this call). No other callback runs after this
 * call. */
void transport_close(struct transport *t, transport_close_cb cb, void *arg);

#endif
