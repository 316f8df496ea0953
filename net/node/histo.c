/*
 * histo.c - see histo.h.
 */
#include "histo.h"

uint64_t histo_bound(unsigned b)
{
    return b < HISTO_BUCKETS - 1 ? (uint64_t)1 << b : UINT64_MAX;
}

uint64_t histo_quantile(const struct histo *h, double q)
{
    if (h->count == 0) {
        return 0;
    }
    /* The rank of the quantile, rounded up: q = 0.99 of 100 values is the
     * 99th. */
    double want = q * (double)h->count;
    uint64_t rank = (uint64_t)want;
    if ((double)rank < want || rank == 0) {
        rank++;
    }
    uint64_t seen = 0;
    for (unsigned b = 0; b < HISTO_BUCKETS; b++) {
        seen += h->buckets[b];
        if (seen >= rank) {
            return histo_bound(b);
        }
    }
    return UINT64_MAX;
}
