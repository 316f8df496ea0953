/*
 * fdlimit.h - fitting ballotd's connection limits to the process's
 * descriptor limit (RLIMIT_NOFILE).
 *
 * The node opens files all its life (WAL segments, the hard state, LMDB,
 * snapshots, exports); if client connections took every descriptor, one of
 * those opens would fail and the node would halt. So at start ballotd adds
 * up what every part may hold at most (the node's reserve, the peer port,
 * the metrics port, the client port's fixed part) and what each client
 * costs (one), raises the soft limit towards the hard one if that is not
 * enough, and lowers max_clients to what fits if even that is not enough.
 * The parts then enforce their own maxima (server.h, transport.h,
 * metrics.h), so running out of descriptors refuses a connection and never
 * fails the node.
 */
#ifndef BALLOT_NET_FDLIMIT_H
#define BALLOT_NET_FDLIMIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Descriptors kept for the node itself: stdio and the log; libuv's own
 * (epoll, async, signal pipe); the WAL (the open segment, the next one
 * being prepared, the directory, the hard state being replaced); LMDB
 * (data and lock files); the node's snapshot being written (file, pipe,
 * directory) and one being sent or installed; SERVER_EXPORTS_MAX exports
 * (file, pipe and a reader each); the checkpoint's marker file. Counted
 * generously: running short would halt the node. */
#define FDLIMIT_NODE_RESERVE 64u
/* The fewest clients a node starts with; a descriptor limit leaving fewer
 * is refused at start with a message saying how to raise it. */
#define FDLIMIT_CLIENTS_MIN 16u

struct fdlimit_plan
{
    uint64_t soft_before; /* RLIMIT_NOFILE's soft limit at start */
    uint64_t soft;        /* the soft limit to run with */
    uint64_t hard;
    unsigned fixed;       /* descriptors needed besides one per client */
    unsigned max_clients; /* what fits (at most what was asked) */
    bool raised;          /* soft > soft_before */
    bool lowered;         /* max_clients below what was asked */
};

/**
 * Decides, without system calls, the soft limit and the client limit.
 *
 * @param soft, hard    RLIMIT_NOFILE (RLIM_INFINITY as UINT64_MAX)
 * @param fixed         descriptors needed besides one per client
 * @param max_clients   clients wanted
 * @return 0, or -1 if fewer than FDLIMIT_CLIENTS_MIN clients fit under
 *         the hard limit (@out is filled all the same).
 */
int fdlimit_plan(uint64_t soft,
                 uint64_t hard,
                 unsigned fixed,
                 unsigned max_clients,
                 struct fdlimit_plan *out);

/**
 * Reads RLIMIT_NOFILE, plans as above, and raises the soft limit if the
 * plan says so. Returns 0, or -1 with a message in @err (the limit is too
 * low, or it cannot be read or set).
 */
int fdlimit_apply(unsigned fixed,
                  unsigned max_clients,
                  struct fdlimit_plan *out,
                  char *err,
                  size_t err_len);

#endif
