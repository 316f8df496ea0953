/*
 * looplag.h - how long one turn of the event loop keeps it busy.
 *
 * Everything of a node runs on one loop: a request that holds it (a long
 * scan, a pathological pattern) stalls every client, heartbeats and
 * elections. This measures each iteration's busy time (its wall time less
 * the time spent waiting in the kernel for events, from libuv's idle-time
 * metric), keeps the worst, and reports an iteration over a threshold to
 * its caller (ballotd logs it, at most once per LOOPLAG_REPORT_EVERY_MS,
 * with the count of those not reported). The metrics port shows the
 * counters.
 */
#ifndef BALLOT_NET_LOOPLAG_H
#define BALLOT_NET_LOOPLAG_H

#include <stdint.h>
#include <uv.h>

#include "histo.h"

/* Default threshold (setting loop_warn_ms). */
#define LOOPLAG_WARN_MS_DEFAULT 100u
/* At most one report per this long; the others are counted. */
#define LOOPLAG_REPORT_EVERY_MS 1000u

struct looplag_stats
{
    uint64_t iterations;
    uint64_t slow;             /* iterations at or over the threshold */
    uint64_t busy_max_ms;      /* the worst iteration since the start */
    uint64_t busy_last_max_ms; /* the worst since the last call */
    struct histo busy_us;      /* every iteration's busy time */
};

/* @busy_ms: the iteration just measured; @unreported: slow iterations
 * since the last report that were not reported. */
typedef void (*looplag_report_cb)(void *arg,
                                  uint64_t busy_ms,
                                  uint64_t unreported);

struct looplag;

/**
 * Starts measuring @loop, which must not be running yet (libuv's idle-time
 * metric is turned on here). The handle it adds does not keep the loop
 * alive.
 *
 * @param warn_ms  threshold; 0 turns reports off (measuring goes on)
 * @param report   called on the loop thread; may be NULL
 * @return 0, UV_ENOMEM, or a libuv error if the metric is unavailable.
 */
int looplag_start(uv_loop_t *loop,
                  uint64_t warn_ms,
                  looplag_report_cb report,
                  void *arg,
                  struct looplag **out);

/** The counters; resets busy_last_max_ms. */
void looplag_stats(struct looplag *l, struct looplag_stats *out);

/** Stops; @l is freed once its handle is closed (run the loop). */
void looplag_stop(struct looplag *l);

#endif
