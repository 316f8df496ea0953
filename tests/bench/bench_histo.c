/*
 * bench_histo.c - what the metrics cost on the hot path, in nanoseconds.
 *
 * Each client request is timed with two uv_hrtime() calls and one
 * histo_add() (net/server/commands.c); each proposal, batch and apply
 * adds about as much (net/node/bnode.c). This prints, per operation and
 * measured in the same run: an empty loop iteration (the baseline),
 * histo_add() alone, uv_hrtime() alone, and the whole per-request cost
 * (two clock reads and an add). Compare the last figure with a request's
 * latency (tens of microseconds on loopback, milliseconds with fsync).
 * Times are CPU time of the thread. This is a benchmark: it prints
 * numbers and fails only if the histogram lost a count.
 *
 *   bench_histo [--iterations N]
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <uv.h>

#include "histo.h"

/* CPU time of this thread: a loaded machine's preemption does not count
 * (as in bench_raft). */
static double now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

/* Keeps the compiler from removing a loop whose result is unused. */
static volatile uint64_t sink;

int main(int argc, char **argv)
{
    uint64_t n = 20000000;
    struct histo h;
    if (argc == 3 && strcmp(argv[1], "--iterations") == 0) {
        n = strtoull(argv[2], NULL, 10);
    }
    memset(&h, 0, sizeof(h));

    double t0 = now_ns();
    for (uint64_t i = 0; i < n; i++) {
        sink += i;
    }
    double empty = (now_ns() - t0) / (double)n;

    t0 = now_ns();
    for (uint64_t i = 0; i < n; i++) {
        histo_add(&h, (i * 2654435761u) & 0xfffff);
    }
    double add = (now_ns() - t0) / (double)n;

    t0 = now_ns();
    for (uint64_t i = 0; i < n; i++) {
        sink += uv_hrtime();
    }
    double clock = (now_ns() - t0) / (double)n;

    t0 = now_ns();
    for (uint64_t i = 0; i < n; i++) {
        uint64_t start = uv_hrtime();
        histo_add(&h, histo_us(uv_hrtime() - start));
    }
    double request = (now_ns() - t0) / (double)n;

    printf("%-40s %8.2f ns\n", "empty loop iteration (baseline)", empty);
    printf("%-40s %8.2f ns\n", "histo_add()", add);
    printf("%-40s %8.2f ns\n", "uv_hrtime()", clock);
    printf("%-40s %8.2f ns\n", "per request: 2 x uv_hrtime + histo_add",
           request);
    if (h.count != 2 * n) {
        fprintf(stderr, "lost counts: %llu of %llu\n",
                (unsigned long long)h.count, (unsigned long long)(2 * n));
        return 1;
    }
    return 0;
}
