/*
 * server.h - the client port of ballotd: a libuv TCP listener that speaks
 * RESP2/RESP3 to Redis clients and runs their commands against one node.
 *
 * Each connection reads into its own buffer, parses every complete request
 * with resp_parse() (pipelining: many requests per read) and hands them to
 * the command table (commands.h) in order. Commands finish asynchronously
 * (writes wait for commit, reads for a read barrier), so each request owns a
 * slot in a per-connection queue and a reply leaves only once every earlier
 * reply has left. docs/protocol.md describes what clients see.
 *
 * Everything runs on the loop thread given to server_start(). The process
 * must ignore SIGPIPE (a client that vanishes makes writes fail with EPIPE,
 * which closes its connection).
 */
#ifndef BALLOT_NET_SERVER_H
#define BALLOT_NET_SERVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "resp.h"

struct tls_ctx;

struct bnode;

/* Error codes: the -7100 range. */
enum {
    SERVER_EINVAL = -7101,  /* an option is invalid */
    SERVER_ENOMEM = -7102,  /* an allocation failed */
    SERVER_ELISTEN = -7103, /* the address could not be bound or listened */
};

/* Defaults of struct server_options: every limit of the client port is
 * defined here and nowhere else. */
#define SERVER_PORT_DEFAULT 7379
#define SERVER_MAX_CLIENTS_DEFAULT 10000u
/* Replies waiting to be written to one client; beyond it the client is
 * taken as not reading and disconnected. Also bounds a single reply. */
#define SERVER_OUTPUT_BYTES_MAX_DEFAULT (64u * 1024u * 1024u)
/* Requests of one connection parsed but not answered yet; beyond it the
 * server stops reading that connection until some are answered. */
#define SERVER_PIPELINE_MAX_DEFAULT 1024u
/* A client that has completed no request for this long is disconnected
 * (0: never). Redis's default is never; ours is not, so that idle and
 * half-open connections cannot hold every slot (docs/operations.md). */
#define SERVER_IDLE_TIMEOUT_MS_DEFAULT (300u * 1000u)
/* A request whose first byte arrived this long ago and which is still not
 * complete closes its connection (0: never): a client that trickles a
 * request (slowloris) holds a slot and a buffer for this long at most. */
#define SERVER_REQUEST_TIMEOUT_MS_DEFAULT (30u * 1000u)
/* At max_clients, a new connection displaces the client idle the longest
 * (no request in flight, none completed for at least this long), so idle
 * connections alone can never lock every client out. */
#define SERVER_EVICT_IDLE_MIN_MS 2000u
/* How many of the least recently active clients are looked at for one
 * eviction, so that accepting stays O(1). */
#define SERVER_EVICT_SCAN_MAX 64u
/* Connections refused over max_clients that are still being told so (each
 * holds a descriptor until its error is written). Beyond it a connection
 * is closed at once, without a message: the client port never holds more
 * than max_clients + SERVER_REFUSING_MAX descriptors. */
#define SERVER_REFUSING_MAX 32u
/* TCP keepalive on every client connection: the first probe after this
 * many idle seconds, so a peer that vanished (half-open) is noticed. */
#define SERVER_KEEPALIVE_S 60u
/* A snapshot export not read for this long is released (0: never), so
 * exports a client holds and forgets cannot block later backups. */
#define SERVER_EXPORT_IDLE_MS_DEFAULT (60u * 1000u)
/* All memory held for clients: input buffers, replies being built,
 * replies waiting to be written, MULTI queues. Beyond it a client
 * that needs more than SERVER_CLIENT_SHARE_MIN gets an error (a reply or a
 * MULTI queue) or is disconnected (a request that cannot be read), so a
 * node holds at most this plus SERVER_CLIENT_SHARE_MIN per client. */
#define SERVER_MEMORY_MAX_DEFAULT (1024u * 1024u * 1024u)
/* What every client may hold whatever the others hold. */
#define SERVER_CLIENT_SHARE_MIN (256u * 1024u)
/* Longest client name (CLIENT SETNAME). */
#define SERVER_CLIENT_NAME_MAX 128u
/* Snapshot exports (BSNAPSHOT) that may exist at once, over all clients:
 * each is a file as large as the store, and a worker thread while it is
 * written (the WAL's writes share libuv's thread pool with them). */
#define SERVER_EXPORTS_MAX 2u
/* Most bytes one BSNAPSHOT READ returns (or half of output_bytes_max, if
 * that is less), so a download of any size holds at most this much (plus
 * its reply) in memory at a time. */
#define SERVER_EXPORT_CHUNK_MAX (1024u * 1024u)
/* Room for the client password's stored hash (passwd.h). */
#define SERVER_PASSWORD_HASH_MAX 160u
/* Password checks running at once (each holds a worker thread for tens of
 * milliseconds); more AUTH requests meanwhile get BUSY, so that a flood of
 * them cannot take the thread pool the WAL's syncs need. */
#define SERVER_AUTH_CHECKS_MAX 2u
/* Admission control (acl_limits.c): a connection and a user may each
 * send at most rate_*_requests requests and rate_*_bytes request bytes a
 * second (token buckets holding one second's worth; 0: no limit), and
 * beyond it get "RATELIMITED ... retry after N ms". Users tracked at once
 * for their buckets; beyond it the table starts over (a user's bucket is
 * then full again). */
#define SERVER_RATE_USERS_MAX 4096u
/* Room for default_user_rules (ACL rules separated by spaces). */
#define SERVER_DEFAULT_USER_RULES_MAX 1024u

struct server_options
{
    const char *host; /* borrowed for server_start(); "0.0.0.0" default */
    int port;         /* 0 picks a free port (see server_port()) */
    unsigned max_clients;
    struct resp_limits limits; /* per request, passed to resp_parse() */
    size_t output_bytes_max;
    unsigned pipeline_max;
    uint64_t idle_timeout_ms;    /* 0 = off */
    uint64_t request_timeout_ms; /* 0 = off */
    uint64_t export_idle_ms;     /* 0 = off */
    uint64_t memory_max;         /* all clients' buffers, see above */
    /* The default user's password, as passwd_hash() stores it; empty:
     * no password, every connection may run every command (Redis's
     * default). With one, a connection runs nothing but AUTH, HELLO ...
     * AUTH and QUIT until it authenticated (docs/security.md). */
    char password_hash[SERVER_PASSWORD_HASH_MAX];
    /* What the default user may do until an ACL SETUSER default defines
     * it in the replicated store: ACL rules separated by spaces; empty
     * means ACL_DEFAULT_USER_RULES (every command, every key). Give
     * every node the same (docs/security.md). */
    char default_user_rules[SERVER_DEFAULT_USER_RULES_MAX];
    /* PBKDF2 iterations of the hashes ACL SETUSER >password makes
     * (PASSWD_ITERATIONS_MIN..MAX; 0: PASSWD_ITERATIONS_DEFAULT). Each
     * AUTH pays them once, on a worker thread. */
    unsigned password_iterations;
    /* Admission control, per second (0: off); see SERVER_RATE_USERS_MAX. */
    uint64_t rate_conn_requests;
    uint64_t rate_conn_bytes;
    uint64_t rate_user_requests;
    uint64_t rate_user_bytes;
    /* The audit log (acl_audit.c): authentication failures, admin
     * commands and refused commands, appended to this file (mode 600);
     * empty: to @log at INFO level, if set. */
    char audit_file[4096];
    /* Where audit lines go without a file (NULL: nowhere); called on the
     * loop thread with @log_arg, a level (1: info) and the line. */
    void (*log)(void *arg, int level, const char *msg);
    void *log_arg;
    /* TLS on the client port (borrowed for the server's life; NULL: none),
     * and whether a client must show a certificate of its CA
     * (docs/security.md, "TLS"). */
    struct tls_ctx *tls;
    bool tls_auth_clients;
};

/* Fills @opts with the SERVER_*_DEFAULT values and resp's default request
 * limits. */
void server_options_default(struct server_options *opts);

struct server;

/**
 * Starts listening for clients.
 *
 * @param loop    the loop everything runs on; borrowed until the stop
 *                callback
 * @param node    the node commands go to; borrowed until the stop callback
 * @param opts    copied (host included)
 * @param out     receives the server on success
 * @param errmsg  receives a message on failure (may be NULL)
 * @return 0, SERVER_EINVAL, SERVER_ENOMEM or SERVER_ELISTEN. On failure
 *         nothing is left open.
 */
int server_start(uv_loop_t *loop,
                 struct bnode *node,
                 const struct server_options *opts,
                 struct server **out,
                 char *errmsg,
                 size_t errmsg_len);

/** The port the listener is bound to (useful with port 0). */
int server_port(const struct server *srv);

/** Connected clients (not counting ones refused by max_clients). */
unsigned server_clients(const struct server *srv);

/* Counters of the client port, for metrics. */
struct server_stats
{
    unsigned clients;
    unsigned max_clients;
    uint64_t connections_total;
    uint64_t rejected; /* over max_clients, or accepting failed */
    uint64_t evicted;  /* idle clients displaced at max_clients */
    uint64_t timedout; /* idle timeout or unfinished-request timeout */
    uint64_t exports_expired;
    uint64_t memory_used;    /* bytes held for clients now */
    uint64_t memory_refused; /* requests, replies or queues refused */
    /* Requests refused by admission control: over their connection's
     * rate, over their user's. */
    uint64_t rate_limited_conn;
    uint64_t rate_limited_user;
    uint64_t commands_total; /* requests dispatched */
    /* TLS on every port of the node (one context serves them all; 0
     * without TLS): handshakes completed and failed, reloads that took
     * and that failed. */
    uint64_t tls_handshakes;
    uint64_t tls_handshake_failures;
    uint64_t tls_reloads;
    uint64_t tls_reload_failures;
};

void server_stats(const struct server *srv, struct server_stats *out);

/* The classes of client requests timed for the metrics port
 * (docs/operations.md, "Metrics"): from the command table's flags. */
enum server_req_class {
    SERVER_REQ_READ = 0,  /* reads the store */
    SERVER_REQ_WRITE = 1, /* a blind write (SET, DEL, ...) */
    SERVER_REQ_RMW = 2,   /* read-modify-write (INCR, SET NX, ...) */
    SERVER_REQ_TXN = 3,   /* EXEC, BTXN */
    SERVER_REQ_ADMIN = 4, /* cluster and server administration */
    SERVER_REQ_OTHER = 5, /* PING, CLIENT, errors: no store work */
    SERVER_REQ_CLASSES = 6,
};

struct histo;

/* Request latency (dispatch to reply complete, microseconds) of @klass,
 * borrowed while @srv lives; loop thread only. */
const struct histo *server_latency(const struct server *srv,
                                   enum server_req_class klass);

/**
 * Descriptors the client port may hold at most with @max_clients: the
 * clients, the refused connections being told so, the listener and one
 * being accepted. ballotd compares it with RLIMIT_NOFILE.
 */
unsigned server_fds_max(unsigned max_clients);

/**
 * Graceful stop: stops accepting, stops reading requests, lets every
 * request already started finish (its reply is written), then closes every
 * connection and frees @srv; then @cb runs.
 *
 * Requests in flight end when the node calls back, so if the node may
 * never answer them, call bnode_stop() after this (it fails what is
 * pending, with outcome-unknown errors for writes).
 */
void server_stop(struct server *srv, void (*cb)(void *arg), void *arg);

#endif
