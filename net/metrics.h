/*
 * metrics.h - a minimal HTTP endpoint (GET /metrics) that reports the
 * node's Raft and server counters in the Prometheus text format, so an
 * operator can watch a node without a Redis client, and the health
 * checks of load balancers and orchestrators: GET /health (200 while the
 * node's storage works), GET /ready (200 while it knows a leader and has
 * applied what is committed, else 503 with the reason), GET /status (the
 * node's view as JSON). One request per connection; anything else gets
 * 404. At most METRICS_CONNS_MAX connections, each for
 * METRICS_TIMEOUT_MS at most.
 */
#ifndef BALLOT_NET_METRICS_H
#define BALLOT_NET_METRICS_H

#include <stdbool.h>
#include <stddef.h>
#include <uv.h>

struct bnode;
struct server;
struct metrics;
struct looplag;

/* Connections the metrics port serves at once; more are closed at once.
 * A scraper needs one. */
#define METRICS_CONNS_MAX 16u
/* A connection must send its request and take its answer within this
 * (a scraper does in milliseconds); then it is closed. */
#define METRICS_TIMEOUT_MS 5000u
/* TCP keepalive's first probe after this many idle seconds. */
#define METRICS_KEEPALIVE_S 60u
/* Descriptors the metrics port holds at most: its connections, the
 * listener and one being accepted. */
#define METRICS_FDS_MAX (METRICS_CONNS_MAX + 2u)

/* Starts listening on @host:@port. @node, @srv and @lag are borrowed
 * until metrics_stop()'s callback (@srv and @lag may be NULL). Returns 0
 * or -1 with a message in @errmsg. */
int metrics_start(uv_loop_t *loop,
                  const char *host,
                  int port,
                  struct bnode *node,
                  struct server *srv,
                  struct looplag *lag,
                  struct metrics **out,
                  char *errmsg,
                  size_t errmsg_len);

struct tls_ctx;

/* Serves new connections over TLS with @tls (borrowed until
 * metrics_stop()'s callback), requiring a client certificate of its CA if
 * @auth_clients (docs/security.md, "TLS"). */
void metrics_set_tls(struct metrics *m, struct tls_ctx *tls, bool auth_clients);

/* Closes the listener and every open connection; @cb runs when all are
 * closed, then @m is freed. */
void metrics_stop(struct metrics *m, void (*cb)(void *arg), void *arg);

#endif
