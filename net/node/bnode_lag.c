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

/* A heartbeat unanswered this long is not timed any more. */
#define RTT_PROBE_DROP_NS 1000000000ull

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

/* The probe slot of follower @id (a free one if it has none), or NULL. */
static struct rtt_probe *probe_of(struct bnode *node, raft_id id, bool add)
{
    struct rtt_probe *free_slot = NULL;
    for (unsigned i = 0; i < RAFT_CONF_MAX; i++) {
        if (node->rtt[i].to == id) {
            return &node->rtt[i];
        }
        if (free_slot == NULL && node->rtt[i].to == 0) {
            free_slot = &node->rtt[i];
        }
    }
    if (add && free_slot != NULL) {
        free_slot->to = id;
        free_slot->sent_ns = 0;
        return free_slot;
    }
    return NULL;
}

void rtt_on_send(struct bnode *node, const struct raft_message *m)
{
    /* Answers come back in order on one connection: while one probe is
     * out, later heartbeats are not timed, so an answer is never matched
     * with a later send. A probe whose answer was lost is dropped after
     * a second. */
    if (m->type != RAFT_MSG_HEARTBEAT) {
        return;
    }
    struct rtt_probe *p = probe_of(node, m->to, true);
    uint64_t now = uv_hrtime();
    if (p != NULL &&
        (p->sent_ns == 0 || now - p->sent_ns > RTT_PROBE_DROP_NS)) {
        p->sent_ns = now;
    }
}

void rtt_on_recv(struct bnode *node, const struct raft_message *m)
{
    if (m->type != RAFT_MSG_HEARTBEAT_RESP) {
        return;
    }
    struct rtt_probe *p = probe_of(node, m->from, false);
    if (p != NULL && p->sent_ns != 0) {
        histo_add(&node->histos.peer_rtt_us,
                  histo_us(uv_hrtime() - p->sent_ns));
        p->sent_ns = 0;
    }
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
