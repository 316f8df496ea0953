/*
 * metrics_text.h - the node's metrics in the Prometheus text format
 * (version 0.0.4): a # HELP and a # TYPE line before every family, names
 * with their unit, histograms with cumulative "le" buckets. metrics.c
 * serves it on GET /metrics; docs/operations.md, "Metrics", lists every
 * family, and contrib/grafana-ballot.json graphs them.
 */
#ifndef BALLOT_NET_METRICS_TEXT_H
#define BALLOT_NET_METRICS_TEXT_H

#include <stddef.h>

struct bnode;
struct server;
struct looplag;

/* The most a rendering takes; a longer one is cut at a line's end. */
#define METRICS_TEXT_MAX (256u * 1024u)

/* What the metrics port itself holds, for the descriptors per port. */
struct metrics_text_port
{
    unsigned connections;
};

/* Renders every family into @buf (@cap bytes, at most METRICS_TEXT_MAX
 * used) and returns the length. @node is required; @srv and @lag may be
 * NULL (their families are then left out). Loop thread only. */
size_t metrics_text_render(struct bnode *node,
                           struct server *srv,
                           struct looplag *lag,
                           const struct metrics_text_port *port,
                           char *buf,
                           size_t cap);

#endif
