/*
 * ready.c - handing work to the caller and learning that it is done.
 *
 * raft_ready() freezes the node: until raft_advance() nothing may change
 * it, so every pointer in the update (entries, messages, chunks) stays
 * valid while the caller persists, sends and applies.
 */
#include <string.h>

#include "node.h"

static bool hard_state_changed(const struct raft_node *node)
{
    return node->term != node->persisted_hs.term ||
           node->vote != node->persisted_hs.vote ||
           node->commit != node->persisted_hs.commit;
}

/* Committed entries not yet handed out, bounded by max_apply_bytes (but
 * always at least one, so a huge entry cannot stall the node). */
static size_t committed_count(const struct raft_node *node)
{
    uint64_t bytes = 0;
    size_t n = 0;
    for (raft_index i = node->applied + 1; i <= node->commit; i++) {
        const struct raft_entry *e = log_get(&node->log, i);
        if (e == NULL) {
            break;
        }
        if (n > 0 && bytes + e->len > node->cfg.max_apply_bytes) {
            break;
        }
        bytes += e->len;
        n++;
    }
    return n;
}

bool raft_ready(struct raft_node *node, struct raft_update *u)
{
    if (node->in_update) {
        return false;
    }
    /* Appends are built only now, when the log holds still. A failed
     * allocation here just delays them to the next call. */
    (void)replication_flush(node);

    memset(u, 0, sizeof(*u));
    u->soft_state.leader = node->leader;
    u->soft_state.state = node->state;
    u->soft_state_changed = node->reported_ss.leader != node->leader ||
                            node->reported_ss.state != node->state;
    u->hard_state.term = node->term;
    u->hard_state.vote = node->vote;
    u->hard_state.commit = node->commit;
    u->hard_state_changed = hard_state_changed(node);

    raft_index last = log_last_index(&node->log);
    if (node->stable < last) {
        u->entries = log_get(&node->log, node->stable + 1);
        u->n_entries = (size_t)(last - node->stable);
    }
    if (node->snap_install) {
        u->snapshot = &node->install_meta;
        u->snapshot_reset_log = node->snap_reset_log;
    }
    u->snapshot_chunks = node->chunks;
    u->n_snapshot_chunks = node->n_chunks;
    u->messages = node->msgs;
    u->n_messages = node->n_msgs;
    u->messages_after_persist = node->msgs_after;
    u->n_messages_after_persist = node->n_msgs_after;
    u->n_committed = committed_count(node);
    if (u->n_committed > 0) {
        u->committed = log_get(&node->log, node->applied + 1);
    }
    u->reads = node->read_states;
    u->n_reads = node->n_read_states;

    bool any =
        u->soft_state_changed || u->hard_state_changed || u->n_entries > 0 ||
        u->snapshot != NULL || u->n_snapshot_chunks > 0 || u->n_messages > 0 ||
        u->n_messages_after_persist > 0 || u->n_committed > 0 || u->n_reads > 0;
    node->in_update = any;
    return any;
}

void raft_advance(struct raft_node *node, const struct raft_update *u)
{
    if (!node->in_update) {
        return;
    }
    node->in_update = false;
    node->reported_ss = u->soft_state;
    if (u->hard_state_changed) {
        node->persisted_hs = u->hard_state;
    }
    if (u->n_entries > 0) {
        raft_index last = u->entries[u->n_entries - 1].index;
        if (last > node->stable) {
            node->stable = last;
        }
    }
    if (u->n_committed > 0) {
        node->applied = u->committed[u->n_committed - 1].index;
    }
    node->snap_install = false;
    node_free_chunks(node);
    node->n_msgs = 0;
    node->n_msgs_after = 0;
    node->n_read_states = 0;

    if (node->state == RAFT_LEADER) {
        /* The leader's own entries count toward a majority only once they
         * are durable here (§10.2.1). */
        struct raft_progress *self = progress_get(node, node->id);
        if (self != NULL) {
            self->match = node->stable;
        }
        if (replication_maybe_commit(node)) {
            for (unsigned i = 0; i < node->n_prs; i++) {
                node->prs[i].want_empty = true;
            }
        }
    }
}
