/*
 * nlog.h - the node's log lines, sent to the program's log callback
 * (bnode_options.log): the library prints nothing by itself and keeps no
 * process-wide logger, so several nodes can live in one process.
 */
#ifndef BALLOT_NET_NLOG_H
#define BALLOT_NET_NLOG_H

struct bnode;

/* Formats a line and hands it to @node's log callback if its level is at
 * least the node's log_level. Loop thread only. */
#if defined(__GNUC__)
__attribute__((format(printf, 3, 4)))
#endif
void nlog(const struct bnode *node, int level, const char *fmt, ...);

#endif
