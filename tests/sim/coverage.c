/*
 * coverage.c - the core's rarely reached situations: counted per seed as
 * each message is delivered, and their rules checked once the node has
 * stepped it.
 *
 * Three safety rules of the core were pinned by one staged unit test each,
 * because the simulator did not show it ever reached their situations.
 * Here each situation is recognised from outside the core (the message,
 * the receiver's log, the sender's log, who hears whom), counted, and its
 * rule checked on the receiver right after the step, so that a core
 * breaking the rule fails the seed under the rule's name
 * (docs/simulator.md, "Rare situations"):
 *
 *   stale-suffix     a follower holding entries the leader does not have,
 *                    past an append that matches and ends before them, and
 *                    a leader commit index past the append's end. Rule
 *                    "commit-stops-at-last-new-entry": commit may not move
 *                    beyond the append's last entry (Figure 2, step 5);
 *   snapshot-overlap the last chunk of a snapshot reaching a follower that
 *                    holds the snapshot's last entry (same term) and more.
 *                    Rule "snapshot-keeps-matching-suffix": the entries past
 *                    it stay (Figure 5.3, step 6);
 *   sticky-vote      a vote request of a higher term reaching a follower
 *                    that heard its leader less than an election timeout
 *                    ago, from a candidate that cannot hear that leader.
 *                    Rule "vote-stickiness": the follower neither raises
 *                    its term nor votes (§4.2.3).
 */
#include <string.h>

#include "sim.h"

struct sim_coverage sim_coverage_totals;

enum {
    PROBE_NONE = 0,
    PROBE_STALE_SUFFIX,
    PROBE_SNAPSHOT_OVERLAP,
    PROBE_STICKY_VOTE,
};

static bool stale_suffix(const struct raft_node *r,
                         const struct raft_node *leader,
                         const struct raft_msg_append *a,
                         raft_term term)
{
    raft_index end = a->prev_index + a->n_entries;
    raft_index last = raft_last_index(r);
    if (end >= last || a->commit <= end ||
        a->prev_index < raft_first_index(r) ||
        raft_term_at(r, a->prev_index) != a->prev_term) {
        return false;
    }
    for (uint32_t i = 0; i < a->n_entries; i++) {
        if (raft_term_at(r, a->prev_index + 1 + i) != a->entries[i].term) {
            return false; /* a conflict: the suffix is cut, not kept */
        }
    }
    /* Stale: past the append, the follower holds an entry the sender's log
     * does not. The sender's log as it is now is the one it sent from only
     * while it still leads in the message's term (it only grows then). */
    if (raft_state_of(leader) != RAFT_LEADER ||
        raft_current_term(leader) != term) {
        return false;
    }
    for (raft_index i = end + 1; i <= last; i++) {
        if (i < raft_first_index(leader)) {
            continue; /* compacted there: unknown */
        }
        if (i > raft_last_index(leader) ||
            raft_term_at(leader, i) != raft_term_at(r, i)) {
            return true;
        }
    }
    return false;
}

static bool snapshot_overlap(const struct raft_node *r,
                             const struct raft_msg_snapshot *sn)
{
    const struct raft_snapshot_meta *m = &sn->meta;
    return sn->done && raft_last_index(r) > m->index &&
           m->index >= raft_first_index(r) &&
           raft_term_at(r, m->index) == m->term;
}

/* Heard its leader recently enough that the core's own count of ticks
 * (election_elapsed, reset by each leader message) is certainly below the
 * election timeout, even with the node's clock skewed. */
static bool heard_leader_lately(const struct sim *s, const struct sim_node *n)
{
    sim_time margin = (sim_time)(s->p.election_ticks - 1) * SIM_TICK;
    margin -= margin / 5; /* tick skew is at most 10% */
    return n->heard_leader_at != 0 && s->now - n->heard_leader_at < margin;
}

static bool sticky_vote(const struct sim *s,
                        const struct sim_node *n,
                        const struct raft_message *m,
                        int from)
{
    if (!s->p.check_quorum || m->type != RAFT_MSG_VOTE || m->u.vote.transfer ||
        m->term <= raft_current_term(n->raft)) {
        return false;
    }
    raft_id leader = raft_leader(n->raft);
    if (raft_state_of(n->raft) != RAFT_FOLLOWER || leader == 0 ||
        leader == m->from || !heard_leader_lately(s, n)) {
        return false;
    }
    for (unsigned l = 0; l < s->p.slots; l++) {
        if (s->nodes[l].id == leader) {
            /* The candidate is cut off from the leader. */
            return s->net.link_down[l][(unsigned)from];
        }
    }
    return false;
}

void coverage_on_deliver(struct sim *s,
                         struct sim_node *n,
                         const struct raft_message *m,
                         int from,
                         struct sim_probe *probe)
{
    memset(probe, 0, sizeof(*probe));
    if (n->raft == NULL || m->term < raft_current_term(n->raft)) {
        return;
    }
    probe->commit = raft_commit_index(n->raft);
    probe->last = raft_last_index(n->raft);
    probe->term = raft_current_term(n->raft);
    probe->vote = raft_voted_for(n->raft);
    const struct raft_node *sender = s->nodes[from].raft;
    switch (m->type) {
    case RAFT_MSG_APPEND:
        if (sender != NULL &&
            stale_suffix(n->raft, sender, &m->u.append, m->term)) {
            s->coverage.stale_suffix++;
            probe->kind = PROBE_STALE_SUFFIX;
            probe->end = m->u.append.prev_index + m->u.append.n_entries;
        }
        break;
    case RAFT_MSG_SNAPSHOT:
        if (snapshot_overlap(n->raft, &m->u.snapshot)) {
            s->coverage.snapshot_overlap++;
            probe->kind = PROBE_SNAPSHOT_OVERLAP;
            probe->end = m->u.snapshot.meta.index;
        }
        break;
    case RAFT_MSG_VOTE:
        if (sticky_vote(s, n, m, from)) {
            s->coverage.sticky_vote++;
            probe->kind = PROBE_STICKY_VOTE;
        }
        break;
    default:
        break;
    }
    if ((m->type == RAFT_MSG_APPEND || m->type == RAFT_MSG_HEARTBEAT ||
         m->type == RAFT_MSG_SNAPSHOT) &&
        m->term >= raft_current_term(n->raft)) {
        n->heard_leader_at = s->now;
    }
}

void coverage_after_deliver(struct sim *s,
                            const struct sim_node *n,
                            const struct sim_probe *probe)
{
    if (probe->kind == PROBE_NONE || !n->up || n->raft == NULL) {
        return;
    }
    const struct raft_node *r = n->raft;
    switch (probe->kind) {
    case PROBE_STALE_SUFFIX: {
        raft_index bound =
            probe->commit > probe->end ? probe->commit : probe->end;
        if (raft_commit_index(r) > bound) {
            sim_fail(s, "commit-stops-at-last-new-entry",
                     "n%u committed to %llu past a matching append ending at "
                     "%llu, over entries the leader does not have",
                     n->slot + 1, (unsigned long long)raft_commit_index(r),
                     (unsigned long long)probe->end);
        }
        break;
    }
    case PROBE_SNAPSHOT_OVERLAP:
        if (raft_snapshot_of(r)->index == probe->end &&
            raft_last_index(r) < probe->last) {
            sim_fail(s, "snapshot-keeps-matching-suffix",
                     "n%u installed a snapshot at %llu and dropped its "
                     "matching entries up to %llu (kept to %llu)",
                     n->slot + 1, (unsigned long long)probe->end,
                     (unsigned long long)probe->last,
                     (unsigned long long)raft_last_index(r));
        }
        break;
    case PROBE_STICKY_VOTE:
        if (raft_current_term(r) != probe->term ||
            raft_voted_for(r) != probe->vote) {
            sim_fail(s, "vote-stickiness",
                     "n%u heard its leader within the election timeout yet "
                     "went to term %llu (vote %llu) for a candidate cut off "
                     "from it",
                     n->slot + 1, (unsigned long long)raft_current_term(r),
                     (unsigned long long)raft_voted_for(r));
        }
        break;
    default:
        break;
    }
}

void coverage_seed_done(const struct sim *s)
{
    struct sim_coverage *t = &sim_coverage_totals;
    t->seeds++;
    t->stale_suffix += s->coverage.stale_suffix != 0;
    t->snapshot_overlap += s->coverage.snapshot_overlap != 0;
    t->sticky_vote += s->coverage.sticky_vote != 0;
}
