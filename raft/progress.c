/*
 * progress.c - the leader's view of each member's log (nextIndex and
 * matchIndex of Figure 2), with flow control.
 *
 * A follower is probed one append at a time until the leader knows where
 * their logs match, then appends are pipelined up to max_inflight
 * unacknowledged messages (§10.2.2), or it is sent a snapshot when the
 * entries it needs were compacted away.
 */
#include <string.h>

#include "node.h"

struct raft_progress *progress_get(struct raft_node *node, raft_id id)
{
    for (unsigned i = 0; i < node->n_prs; i++) {
        if (node->prs[i].id == id) {
            return &node->prs[i];
        }
    }
    return NULL;
}

static void progress_init(struct raft_node *node,
                          struct raft_progress *pr,
                          raft_id id)
{
    raft_index *inflight = pr->inflight;
    memset(pr, 0, sizeof(*pr));
    pr->inflight = inflight;
    pr->id = id;
    pr->next = log_last_index(&node->log) + 1;
    pr->state = PROGRESS_PROBE;
}

int progress_rebuild(struct raft_node *node)
{
    const struct raft_conf *conf = conf_current(node);
    struct raft_progress prs[RAFT_CONF_MAX];
    unsigned n = 0;

    /* Allocate every inflight ring first so failure changes nothing. */
    memset(prs, 0, sizeof(prs));
    for (uint32_t i = 0; i < conf->n; i++) {
        raft_id id = conf->members[i].id;
        struct raft_progress *old = progress_get(node, id);
        if (old != NULL) {
            prs[n] = *old;
            old->inflight = NULL;
        } else {
            prs[n].inflight =
                raft_malloc(node, node->cfg.max_inflight * sizeof(raft_index));
            if (prs[n].inflight == NULL) {
                goto err;
            }
            progress_init(node, &prs[n], id);
        }
        n++;
    }
    for (unsigned i = 0; i < node->n_prs; i++) {
        raft_free(node, node->prs[i].inflight);
    }
    memcpy(node->prs, prs, sizeof(prs));
    node->n_prs = n;
    return 0;

err:
    /* Give the moved rings back to the old table, free the new ones. */
    for (unsigned i = 0; i < n; i++) {
        struct raft_progress *old = progress_get(node, prs[i].id);
        if (old != NULL && old->inflight == NULL) {
            old->inflight = prs[i].inflight;
        } else {
            raft_free(node, prs[i].inflight);
        }
    }
    return RAFT_ENOMEM;
}

void progress_reset_all(struct raft_node *node)
{
    for (unsigned i = 0; i < node->n_prs; i++) {
        struct raft_progress *pr = &node->prs[i];
        progress_init(node, pr, pr->id);
        if (pr->id == node->id) {
            pr->match = node->stable;
            pr->state = PROGRESS_REPLICATE;
        }
    }
}

void progress_become_probe(struct raft_progress *pr)
{
    /* Coming back from a snapshot, the follower has at least the snapshot;
     * otherwise start right after what is known to match. */
    if (pr->state == PROGRESS_SNAPSHOT && pr->snap_index > pr->match) {
        pr->next = pr->snap_index + 1;
    } else {
        pr->next = pr->match + 1;
    }
    pr->state = PROGRESS_PROBE;
    pr->probe_sent = false;
    pr->inflight_start = 0;
    pr->inflight_count = 0;
    pr->snap_index = 0;
}

void progress_become_replicate(struct raft_progress *pr)
{
    pr->state = PROGRESS_REPLICATE;
    pr->next = pr->match + 1;
    pr->probe_sent = false;
    pr->inflight_start = 0;
    pr->inflight_count = 0;
}

void progress_become_snapshot(struct raft_progress *pr, raft_index index)
{
    pr->state = PROGRESS_SNAPSHOT;
    pr->snap_index = index;
    pr->snap_offset = 0;
    pr->snap_idle_ticks = 0;
    pr->inflight_start = 0;
    pr->inflight_count = 0;
}

bool progress_paused(const struct raft_node *node,
                     const struct raft_progress *pr)
{
    switch (pr->state) {
    case PROGRESS_PROBE:
        return pr->probe_sent;
    case PROGRESS_REPLICATE:
        return pr->inflight_count >= node->cfg.max_inflight;
    default:
        return true;
    }
}

void progress_inflight_add(const struct raft_node *node,
                           struct raft_progress *pr,
                           raft_index last)
{
    uint32_t cap = node->cfg.max_inflight;
    if (pr->inflight_count >= cap) {
        return;
    }
    pr->inflight[(pr->inflight_start + pr->inflight_count) % cap] = last;
    pr->inflight_count++;
}

void progress_inflight_free_to(const struct raft_node *node,
                               struct raft_progress *pr,
                               raft_index index)
{
    uint32_t cap = node->cfg.max_inflight;
    while (pr->inflight_count > 0 &&
           pr->inflight[pr->inflight_start] <= index) {
        pr->inflight_start = (pr->inflight_start + 1) % cap;
        pr->inflight_count--;
    }
}

void progress_inflight_free_first(const struct raft_node *node,
                                  struct raft_progress *pr)
{
    if (pr->inflight_count > 0) {
        pr->inflight_start = (pr->inflight_start + 1) % node->cfg.max_inflight;
        pr->inflight_count--;
    }
}
