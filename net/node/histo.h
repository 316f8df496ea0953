/*
 * histo.h - a latency (or size) histogram cheap enough for the hot path:
 * fixed log-scale buckets (powers of two), no allocation, an add is a
 * count-leading-zeros and three increments. The metrics port renders it
 * as a Prometheus histogram; one type serves microseconds and counts.
 *
 * Bucket b holds the values v with 2^(b-1) < v <= 2^b (bucket 0: v <= 1),
 * so its upper bound ("le") is exactly 2^b; the last bucket holds
 * everything above 2^(HISTO_BUCKETS - 2) and is rendered only as +Inf.
 * A histogram is not synchronised: one thread adds (the loop), and the
 * metrics port reads it on that same thread.
 */
#ifndef BALLOT_NET_HISTO_H
#define BALLOT_NET_HISTO_H

#include <stdint.h>

/* 2^0 .. 2^26 (67 s in microseconds, 67 million in counts), then +Inf. */
#define HISTO_BUCKETS 28u

struct histo
{
    uint64_t buckets[HISTO_BUCKETS]; /* not cumulative */
    uint64_t count;
    uint64_t sum;
};

/* The bucket of @v (see above). */
static inline unsigned histo_bucket(uint64_t v)
{
    unsigned b = v <= 1 ? 0u : 64u - (unsigned)__builtin_clzll(v - 1);
    return b < HISTO_BUCKETS - 1 ? b : HISTO_BUCKETS - 1;
}

/* Counts one observation of @v. */
static inline void histo_add(struct histo *h, uint64_t v)
{
    h->buckets[histo_bucket(v)]++;
    h->count++;
    h->sum += v;
}

/* The upper bound of bucket @b (2^b), or UINT64_MAX for the last. */
uint64_t histo_bound(unsigned b);

/* An upper bound of the @q quantile (0 < q <= 1): the bound of the
 * bucket holding it (UINT64_MAX if that is the last), 0 if empty. */
uint64_t histo_quantile(const struct histo *h, double q);

/* Microseconds of uv_hrtime()-style nanoseconds, for callers' adds. */
static inline uint64_t histo_us(uint64_t ns)
{
    return ns / 1000u;
}

#endif
