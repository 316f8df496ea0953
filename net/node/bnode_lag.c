/*
 * bnode_lag.c - how far behind, in time, each follower is: the leader
 * keeps a ring of (last index, time) samples taken as its log grows, and a
 * follower whose match index is m is as old as the first sample above m.
 * This costs one comparison per tick and nothing per entry, and reads as
 * "seconds of writes this follower has not acknowledged", the figure an
 * operator compares with the election timeout.
 */
#include <string.h>

#include "bnode_internal.h"

void lag_on_tick(struct bnode *node)
{
    if (raft_state_of(node->raft) != RAFT_LEADER) {
        return;
    }
    uint64_t now = uv_now(node->loop);
    raft_index last = raft_last_index(node->raft);
    /* Samples of an earlier leadership say nothing of this one's log. */
    if (node->lag_term != raft_current_term(node->raft)) {
        memset(node->lag_samples, 0, sizeof(node->lag_samples));
        node->lag_next = 0;
        node->lag_last_ms = 0;
        node->lag_term = raft_current_term(node->raft);
    }
    unsigned prev = (node->lag_next + LAG_SAMPLES - 1) % LAG_SAMPLES;
    if (node->lag_samples[prev].index >= last && node->lag_samples[prev].ms) {
        return;
    }
    if (now - node->lag_last_ms < LAG_SAMPLE_MS) {
        return;
    }
    node->lag_samples[node->lag_next].index = last;
    node->lag_samples[node->lag_next].ms = now;
    node->lag_next = (node->lag_next + 1) % LAG_SAMPLES;
    node->lag_last_ms = now;
}

uint64_t lag_ms(const struct bnode *node, raft_index match)
{
    if (match >= raft_last_index(node->raft)) {
        return 0;
    }
    uint64_t now = uv_now(node->loop);
    /* Oldest to newest: the first sample whose index is above @match was
     * taken at most LAG_SAMPLE_MS after that entry was appended. */
    for (unsigned i = 0; i < LAG_SAMPLES; i++) {
        const struct lag_sample *s =
            &node->lag_samples[(node->lag_next + i) % LAG_SAMPLES];
        if (s->ms != 0 && s->index > match) {
            return now - s->ms;
        }
    }
    /* Appended since the newest sample: less than one period ago. */
    return 0;
}
