/*
 * check.c - Raft's safety properties, asserted after every event.
 *
 * The checkers keep a global view that no node has:
 *
 *   leader_of_term[t]   the node that led term t (Election Safety);
 *   logmap (index,term) the content hash and predecessor term of every entry
 *                       any node ever wrote to its log (Log Matching: one
 *                       (index, term) names one entry with one predecessor,
 *                       so by induction equal (index, term) means equal
 *                       prefixes);
 *   committed[i]        the entry known committed at i: its term and hash,
 *                       the state machine's chain after applying it, and
 *                       the lowest term in which anyone saw it committed
 *                       (State Machine Safety, Leader Completeness, and
 *                       "acknowledged writes are never lost").
 *
 * plus, per node and incarnation, the last term, vote, commit index and
 * state seen (monotonicity). docs/simulator.md states each check precisely.
 */
#include <stdlib.h>
#include <string.h>

#include "sim.h"

void check_init(struct sim *s)
{
    memset(&s->check, 0, sizeof(s->check));
}

void check_free(struct sim *s)
{
    free(s->check.leader_of_term);
    free(s->check.committed);
    free(s->check.logmap);
    memset(&s->check, 0, sizeof(s->check));
}

static struct sim_committed *committed_at(struct sim *s, raft_index index)
{
    struct sim_check *c = &s->check;
    if (index >= c->n_committed) {
        size_t cap = c->n_committed;
        size_t need = (size_t)index + 1;
        if (sim_grow((void **)&c->committed, &cap, need,
                     sizeof(*c->committed)) != 0) {
            abort();
        }
        memset(c->committed + c->n_committed, 0,
               (cap - c->n_committed) * sizeof(*c->committed));
        c->n_committed = cap;
    }
    return &c->committed[index];
}

/* ---- the (index, term) -> entry map ----------------------------------- */

static size_t logmap_pos(raft_index index, raft_term term, size_t cap)
{
    return (size_t)(sim_mix64(index * 0x9e3779b97f4a7c15ull ^ term) &
                    (cap - 1));
}

static struct sim_logmap_slot *logmap_find(struct sim *s,
                                           raft_index index,
                                           raft_term term)
{
    struct sim_check *c = &s->check;
    if (c->logmap_cap == 0) {
        return NULL;
    }
    for (size_t p = logmap_pos(index, term, c->logmap_cap);;
         p = (p + 1) & (c->logmap_cap - 1)) {
        struct sim_logmap_slot *slot = &c->logmap[p];
        if (slot->index == 0) {
            return NULL;
        }
        if (slot->index == index && slot->term == term) {
            return slot;
        }
    }
}

static struct sim_logmap_slot *logmap_insert(struct sim *s,
                                             raft_index index,
                                             raft_term term)
{
    struct sim_check *c = &s->check;
    if (2 * (c->logmap_n + 1) > c->logmap_cap) {
        size_t old_cap = c->logmap_cap;
        struct sim_logmap_slot *old = c->logmap;
        c->logmap_cap = old_cap ? old_cap * 2 : 1024;
        c->logmap = sim_xcalloc(c->logmap_cap, sizeof(*c->logmap));
        for (size_t i = 0; i < old_cap; i++) {
            if (old[i].index == 0) {
                continue;
            }
            size_t p = logmap_pos(old[i].index, old[i].term, c->logmap_cap);
            while (c->logmap[p].index != 0) {
                p = (p + 1) & (c->logmap_cap - 1);
            }
            c->logmap[p] = old[i];
        }
        free(old);
    }
    size_t p = logmap_pos(index, term, c->logmap_cap);
    while (c->logmap[p].index != 0) {
        p = (p + 1) & (c->logmap_cap - 1);
    }
    c->logmap_n++;
    c->logmap[p].index = index;
    c->logmap[p].term = term;
    return &c->logmap[p];
}

/* Records that entry (index, term) with @hash follows an entry of
 * @prev_term (0: unknown), or checks it against what was recorded. */
static void log_matching(struct sim *s,
                         struct sim_node *n,
                         raft_index index,
                         raft_term term,
                         uint64_t hash,
                         raft_term prev_term)
{
    struct sim_logmap_slot *slot = logmap_find(s, index, term);
    if (slot == NULL) {
        slot = logmap_insert(s, index, term);
        slot->hash = hash;
        slot->prev_term = prev_term;
        return;
    }
    if (slot->hash != hash) {
        sim_fail(s, "log matching",
                 "n%llu has entry %llu term %llu with different content "
                 "than another log's entry %llu term %llu",
                 (unsigned long long)n->id, (unsigned long long)index,
                 (unsigned long long)term, (unsigned long long)index,
                 (unsigned long long)term);
        return;
    }
    if (prev_term != 0 && slot->prev_term != 0 &&
        slot->prev_term != prev_term) {
        sim_fail(s, "log matching",
                 "n%llu: entry %llu term %llu follows an entry of term %llu, "
                 "in another log one of term %llu",
                 (unsigned long long)n->id, (unsigned long long)index,
                 (unsigned long long)term, (unsigned long long)prev_term,
                 (unsigned long long)slot->prev_term);
        return;
    }
    if (slot->prev_term == 0) {
        slot->prev_term = prev_term;
    }
}

void check_logged(struct sim *s,
                  struct sim_node *n,
                  const struct raft_entry *e,
                  size_t count)
{
    /* Leader Append-Only (§5.3): a leader never overwrites or deletes
     * entries in its log, so what it writes in its term only extends
     * what it wrote before in that term. */
    if (count > 0 && raft_state_of(n->raft) == RAFT_LEADER) {
        raft_term term = raft_current_term(n->raft);
        if (n->appended_term == term && e[0].index <= n->appended_last) {
            sim_fail(s, "leader append-only",
                     "n%llu, leader of term %llu, rewrites its log from "
                     "%llu after writing up to %llu",
                     (unsigned long long)n->id, (unsigned long long)term,
                     (unsigned long long)e[0].index,
                     (unsigned long long)n->appended_last);
            return;
        }
        n->appended_term = term;
        n->appended_last = e[count - 1].index;
    }
    for (size_t i = 0; i < count && !s->failed; i++) {
        raft_term prev;
        if (i == 0) {
            prev = e[0].index > 1 ? raft_term_at(n->raft, e[0].index - 1) : 0;
        } else {
            prev = e[i - 1].term;
            if (e[i].index != e[i - 1].index + 1) {
                sim_fail(s, "update contract",
                         "n%llu: update entries jump from %llu to %llu",
                         (unsigned long long)n->id,
                         (unsigned long long)e[i - 1].index,
                         (unsigned long long)e[i].index);
                return;
            }
        }
        if (e[i].term == 0 || e[i].index == 0 ||
            (e[i].type != RAFT_ENTRY_NORMAL && e[i].type != RAFT_ENTRY_CONF)) {
            sim_fail(s, "update contract",
                     "n%llu: entry index %llu term %llu type %u is invalid",
                     (unsigned long long)n->id, (unsigned long long)e[i].index,
                     (unsigned long long)e[i].term, e[i].type);
            return;
        }
        if (prev != 0 && e[i].term < prev) {
            sim_fail(s, "log terms monotonic",
                     "n%llu: entry %llu has term %llu after an entry of "
                     "term %llu",
                     (unsigned long long)n->id, (unsigned long long)e[i].index,
                     (unsigned long long)e[i].term, (unsigned long long)prev);
            return;
        }
        log_matching(s, n, e[i].index, e[i].term, sim_entry_hash(&e[i]), prev);
    }
}

void check_hard_state(struct sim *s,
                      struct sim_node *n,
                      const struct raft_hard_state *hs)
{
    const struct raft_hard_state *w = &n->written_hs;
    if (hs->term < w->term) {
        sim_fail(s, "durable term monotonic",
                 "n%llu persists term %llu after term %llu",
                 (unsigned long long)n->id, (unsigned long long)hs->term,
                 (unsigned long long)w->term);
    } else if (hs->term == w->term && w->vote != 0 && hs->vote != w->vote) {
        sim_fail(s, "one vote per term",
                 "n%llu persists a vote for n%llu in term %llu after "
                 "persisting a vote for n%llu",
                 (unsigned long long)n->id, (unsigned long long)hs->vote,
                 (unsigned long long)hs->term, (unsigned long long)w->vote);
    } else if (hs->commit < w->commit) {
        sim_fail(s, "durable commit monotonic",
                 "n%llu persists commit %llu after commit %llu",
                 (unsigned long long)n->id, (unsigned long long)hs->commit,
                 (unsigned long long)w->commit);
    }
}

/* Records that @e is committed, seen by a node in @term, or checks it. */
static void committed_entry(struct sim *s,
                            struct sim_node *n,
                            const struct raft_entry *e,
                            raft_term term,
                            const char *how)
{
    struct sim_committed *c = committed_at(s, e->index);
    uint64_t hash = sim_entry_hash(e);
    if (!c->known) {
        c->known = true;
        c->term = e->term;
        c->hash = hash;
        c->commit_term = term;
        return;
    }
    if (c->term != e->term || c->hash != hash) {
        sim_fail(s, "state machine safety",
                 "n%llu %s entry %llu term %llu, but entry %llu term %llu "
                 "(different content: %s) was committed there",
                 (unsigned long long)n->id, how, (unsigned long long)e->index,
                 (unsigned long long)e->term, (unsigned long long)e->index,
                 (unsigned long long)c->term, c->hash != hash ? "yes" : "no");
        return;
    }
    if (term < c->commit_term) {
        c->commit_term = term;
    }
}

void check_applied(struct sim *s,
                   struct sim_node *n,
                   const struct raft_entry *e)
{
    committed_entry(s, n, e, raft_current_term(n->raft), "applied");
    if (s->failed) {
        return;
    }
    struct sim_committed *c = committed_at(s, e->index);
    if (c->chain == 0) {
        c->chain = n->app.chain;
    } else if (c->chain != n->app.chain) {
        sim_fail(s, "state machine safety",
                 "n%llu applied entry %llu on top of a different history "
                 "than other nodes (chain %016llx vs %016llx)",
                 (unsigned long long)n->id, (unsigned long long)e->index,
                 (unsigned long long)n->app.chain,
                 (unsigned long long)c->chain);
        return;
    }
    if (e->index > s->check.applied_max) {
        s->check.applied_max = e->index;
    }

    unsigned slot;
    uint64_t pid = sim_proposal_pid(e, &slot);
    if (pid == 0) {
        return;
    }
    if (pid >= s->n_props) {
        sim_fail(s, "proposals", "n%llu applied unknown proposal %llu",
                 (unsigned long long)n->id, (unsigned long long)pid);
        return;
    }
    struct sim_proposal *p = &s->props[pid];
    if (p->applied_at != 0 && p->applied_at != e->index) {
        sim_fail(s, "no duplicate application",
                 "proposal %llu applied at index %llu and at %llu",
                 (unsigned long long)pid, (unsigned long long)p->applied_at,
                 (unsigned long long)e->index);
        return;
    }
    if (p->status == PROP_REFUSED || p->status == PROP_QUEUED) {
        sim_fail(s, "proposals",
                 "proposal %llu was refused by raft_propose but applied at "
                 "%llu",
                 (unsigned long long)pid, (unsigned long long)e->index);
        return;
    }
    if (p->index != e->index || p->term != e->term) {
        sim_fail(s, "proposals",
                 "proposal %llu accepted at %llu term %llu but applied at "
                 "%llu term %llu",
                 (unsigned long long)pid, (unsigned long long)p->index,
                 (unsigned long long)p->term, (unsigned long long)e->index,
                 (unsigned long long)e->term);
        return;
    }
    p->applied_at = e->index;
    p->status = PROP_COMMITTED;
}

void check_snapshot(struct sim *s,
                    struct sim_node *n,
                    raft_index index,
                    raft_term term,
                    uint64_t chain,
                    const char *what)
{
    struct sim_committed *c = committed_at(s, index);
    if (c->known && c->term != term) {
        sim_fail(s, "state machine safety",
                 "n%llu snapshot %s at %llu term %llu, but the entry "
                 "committed there has term %llu",
                 (unsigned long long)n->id, what, (unsigned long long)index,
                 (unsigned long long)term, (unsigned long long)c->term);
    } else if (c->chain != 0 && c->chain != chain) {
        sim_fail(s, "state machine safety",
                 "n%llu snapshot %s at %llu holds a different history than "
                 "the nodes that applied %llu",
                 (unsigned long long)n->id, what, (unsigned long long)index,
                 (unsigned long long)index);
    } else if (c->chain == 0) {
        c->chain = chain;
    }
}

/* Durability of acknowledgements (Figure 2: "updated on stable storage
 * before responding to RPCs"). Every message but a pre-vote and its answer
 * (which are stamped with a future term and bind nobody) carries a term the
 * sender has made durable; a granted vote is durable as (term, candidate);
 * a successful append response names an index the sender's durable log (or
 * durable snapshot) holds, with the term the sender has there now. Within
 * one term a follower's log only grows for that term's leader, so the
 * entry stays. */
void check_sent(struct sim *s, struct sim_node *n, const struct raft_message *m)
{
    const struct raft_hard_state *d = &n->durable_hs;
    if (m->type != RAFT_MSG_PREVOTE && m->type != RAFT_MSG_PREVOTE_RESP &&
        m->term > d->term) {
        /* A durable entry of a later term than the hard state (a torn
         * batch) makes that term durable too: a restart recovers it. */
        struct sim_durable dur;
        raft_term implied = 0;
        if (n->storage.ops->load(n->storage.ctx, &dur) == 0) {
            implied = dur.n_entries > 0  ? dur.entries[dur.n_entries - 1].term
                      : dur.has_snapshot ? dur.snap.term
                                         : 0;
        }
        if (m->term > implied) {
            sim_fail(s, "durable acknowledgements",
                     "n%llu sends a message of type %u in term %llu while "
                     "its durable term is %llu",
                     (unsigned long long)n->id, m->type,
                     (unsigned long long)m->term, (unsigned long long)d->term);
            return;
        }
        if (m->type == RAFT_MSG_VOTE_RESP && m->u.vote_resp.granted) {
            sim_fail(s, "durable acknowledgements",
                     "n%llu grants its vote in term %llu to n%llu; its "
                     "durable hard state is term %llu vote n%llu",
                     (unsigned long long)n->id, (unsigned long long)m->term,
                     (unsigned long long)m->to, (unsigned long long)d->term,
                     (unsigned long long)d->vote);
        }
        return;
    }
    /* A node that has since made a later term durable will never act in
     * the message's term again (one batch may hold a vote in term t and a
     * move to t + 1), so only acknowledgements of the durable term are
     * checked further. */
    if (m->term < d->term) {
        return;
    }
    if (m->type == RAFT_MSG_VOTE_RESP && m->u.vote_resp.granted &&
        d->vote != m->to) {
        sim_fail(s, "durable acknowledgements",
                 "n%llu grants its vote in term %llu to n%llu; its durable "
                 "hard state is term %llu vote n%llu",
                 (unsigned long long)n->id, (unsigned long long)m->term,
                 (unsigned long long)m->to, (unsigned long long)d->term,
                 (unsigned long long)d->vote);
        return;
    }
    if (m->type != RAFT_MSG_APPEND_RESP || !m->u.append_resp.success) {
        return;
    }
    raft_index index = m->u.append_resp.index;
    struct sim_durable dur;
    if (n->storage.ops->load(n->storage.ctx, &dur) != 0) {
        return; /* reported when the node restarts */
    }
    raft_index snap = dur.has_snapshot ? dur.snap.index : 0;
    if (index <= snap) {
        return;
    }
    raft_index first = dur.n_entries > 0 ? dur.entries[0].index : snap + 1;
    raft_term want = raft_term_at(n->raft, index);
    if (index < first || index - first >= dur.n_entries ||
        dur.entries[index - first].term != want) {
        sim_fail(s, "durable acknowledgements",
                 "n%llu acknowledges entry %llu (term %llu), but its durable "
                 "log holds %llu..%llu",
                 (unsigned long long)n->id, (unsigned long long)index,
                 (unsigned long long)want, (unsigned long long)first,
                 (unsigned long long)(first + dur.n_entries - 1));
    }
}

void check_read_index(struct sim *s,
                      struct sim_node *n,
                      const struct raft_read_state *r)
{
    if (r->ctx == 0 || r->ctx >= s->n_reads) {
        sim_fail(s, "reads", "n%llu answered unknown read ctx %llu",
                 (unsigned long long)n->id, (unsigned long long)r->ctx);
        return;
    }
    struct sim_read *rd = &s->readv[r->ctx];
    if (r->ok && r->index < rd->committed_before) {
        sim_fail(s, "linearizable reads",
                 "n%llu: read %llu got read index %llu, but index %llu was "
                 "applied somewhere before the read began",
                 (unsigned long long)n->id, (unsigned long long)r->ctx,
                 (unsigned long long)r->index,
                 (unsigned long long)rd->committed_before);
    }
}

void check_read_served(struct sim *s, struct sim_node *n, uint64_t ctx)
{
    struct sim_read *rd = &s->readv[ctx];
    if (rd->served) {
        sim_fail(s, "reads", "n%llu: read %llu answered twice",
                 (unsigned long long)n->id, (unsigned long long)ctx);
        return;
    }
    rd->served = true;
    s->n_reads_served++;
    if (n->app.applied < rd->committed_before) {
        sim_fail(s, "linearizable reads",
                 "n%llu served read %llu from state at %llu, missing writes "
                 "up to %llu committed before the read began",
                 (unsigned long long)n->id, (unsigned long long)ctx,
                 (unsigned long long)n->app.applied,
                 (unsigned long long)rd->committed_before);
        return;
    }
    struct sim_committed *c = committed_at(s, n->app.applied);
    if (c->chain != 0 && c->chain != n->app.chain) {
        sim_fail(s, "linearizable reads",
                 "n%llu served read %llu from a state at %llu that no "
                 "other node had",
                 (unsigned long long)n->id, (unsigned long long)ctx,
                 (unsigned long long)n->app.applied);
    }
}

void check_restarted(struct sim *s,
                     struct sim_node *n,
                     const struct sim_durable *d)
{
    struct raft_node *r = n->raft;
    raft_term term = raft_current_term(r);
    raft_index snap = d->has_snapshot ? d->snap.index : 0;
    raft_index last =
        d->n_entries > 0 ? d->entries[d->n_entries - 1].index : snap;
    if (term < d->hs.term || (term == d->hs.term && d->hs.vote != 0 &&
                              raft_voted_for(r) != d->hs.vote)) {
        sim_fail(s, "restart",
                 "n%llu restarted at term %llu vote n%llu from durable term "
                 "%llu vote n%llu",
                 (unsigned long long)n->id, (unsigned long long)term,
                 (unsigned long long)raft_voted_for(r),
                 (unsigned long long)d->hs.term,
                 (unsigned long long)d->hs.vote);
    } else if (raft_commit_index(r) < snap) {
        sim_fail(s, "commit monotonic",
                 "n%llu restarted with commit %llu below its snapshot %llu",
                 (unsigned long long)n->id,
                 (unsigned long long)raft_commit_index(r),
                 (unsigned long long)snap);
    } else if (raft_last_index(r) != last) {
        sim_fail(s, "restart",
                 "n%llu restarted with last index %llu; its disk holds a log "
                 "up to %llu",
                 (unsigned long long)n->id,
                 (unsigned long long)raft_last_index(r),
                 (unsigned long long)last);
    } else if (raft_applied_index(r) != n->app.applied) {
        sim_fail(s, "restart", "n%llu restarted with applied %llu; told %llu",
                 (unsigned long long)n->id,
                 (unsigned long long)raft_applied_index(r),
                 (unsigned long long)n->app.applied);
    }
    n->seen_term = term;
    n->seen_vote = raft_voted_for(r);
    n->seen_commit = raft_commit_index(r);
    n->seen_observed = snap;
    n->seen_state = (uint8_t)raft_state_of(r);
    n->seen_leader_term = 0;
    /* Leader Append-Only is per incarnation: a leader whose term never
     * became durable (a one-voter cluster elects itself before persisting)
     * may lead that term again after a crash, with nothing of the first
     * time having left the node. */
    n->appended_term = 0;
    n->appended_last = 0;
}

/* Leader Completeness (§5.4): an entry committed in term c is in the log
 * (or snapshot) of every leader of a term after c. */
static void check_leader_complete(struct sim *s,
                                  struct sim_node *n,
                                  raft_term term)
{
    struct raft_node *r = n->raft;
    raft_index first = raft_first_index(r);
    s->check.leaders_checked++;
    for (raft_index i = first; i < s->check.n_committed; i++) {
        const struct sim_committed *c = &s->check.committed[i];
        if (!c->known || c->commit_term >= term) {
            continue;
        }
        const struct raft_entry *e = raft_entry_at(r, i);
        if (e == NULL || e->term != c->term || sim_entry_hash(e) != c->hash) {
            sim_fail(s, "leader completeness",
                     "n%llu leads term %llu without entry %llu term %llu, "
                     "committed by term %llu (it has %s)",
                     (unsigned long long)n->id, (unsigned long long)term,
                     (unsigned long long)i, (unsigned long long)c->term,
                     (unsigned long long)c->commit_term,
                     e == NULL ? "nothing there" : "a different entry");
            return;
        }
    }
    /* Below its first index the leader relies on its snapshot: it must be
     * at least as new as every entry committed before this term. */
    const struct raft_snapshot_meta *snap = raft_snapshot_of(r);
    raft_index covered = snap != NULL ? snap->index : 0;
    for (raft_index i = covered + 1; i < first && i < s->check.n_committed;
         i++) {
        const struct sim_committed *c = &s->check.committed[i];
        if (c->known && c->commit_term < term) {
            sim_fail(s, "leader completeness",
                     "n%llu leads term %llu with log from %llu and snapshot "
                     "%llu: committed entry %llu is in neither",
                     (unsigned long long)n->id, (unsigned long long)term,
                     (unsigned long long)first, (unsigned long long)covered,
                     (unsigned long long)i);
            return;
        }
    }
}

static void record_leader(struct sim *s, struct sim_node *n, raft_term term)
{
    struct sim_check *c = &s->check;
    if (term >= c->n_terms) {
        size_t cap = c->n_terms;
        if (sim_grow((void **)&c->leader_of_term, &cap, (size_t)term + 1,
                     sizeof(*c->leader_of_term)) != 0) {
            abort();
        }
        memset(c->leader_of_term + c->n_terms, 0,
               (cap - c->n_terms) * sizeof(*c->leader_of_term));
        c->n_terms = cap;
    }
    if (c->leader_of_term[term] == 0) {
        c->leader_of_term[term] = n->id;
    } else if (c->leader_of_term[term] != n->id) {
        sim_fail(s, "election safety", "n%llu and n%llu both led term %llu",
                 (unsigned long long)c->leader_of_term[term],
                 (unsigned long long)n->id, (unsigned long long)term);
    }
}

void check_event(struct sim *s)
{
    s->check.events++;
    for (unsigned i = 0; i < s->p.slots && !s->failed; i++) {
        struct sim_node *n = &s->nodes[i];
        if (!n->up) {
            continue;
        }
        struct raft_node *r = n->raft;
        raft_term term = raft_current_term(r);
        raft_id vote = raft_voted_for(r);
        raft_index commit = raft_commit_index(r);
        uint8_t state = (uint8_t)raft_state_of(r);
        if (term < n->seen_term) {
            sim_fail(s, "term monotonic", "n%llu went from term %llu to %llu",
                     (unsigned long long)n->id,
                     (unsigned long long)n->seen_term,
                     (unsigned long long)term);
            return;
        }
        if (term == n->seen_term && n->seen_vote != 0 && vote != n->seen_vote) {
            sim_fail(s, "one vote per term",
                     "n%llu changed its vote in term %llu from n%llu to n%llu",
                     (unsigned long long)n->id, (unsigned long long)term,
                     (unsigned long long)n->seen_vote,
                     (unsigned long long)vote);
            return;
        }
        if (commit < n->seen_commit) {
            sim_fail(
                s, "commit monotonic", "n%llu went from commit %llu to %llu",
                (unsigned long long)n->id, (unsigned long long)n->seen_commit,
                (unsigned long long)commit);
            return;
        }
        if (commit > raft_last_index(r)) {
            sim_fail(s, "commit monotonic",
                     "n%llu has commit %llu beyond its last index %llu",
                     (unsigned long long)n->id, (unsigned long long)commit,
                     (unsigned long long)raft_last_index(r));
            return;
        }
        if (state != n->seen_state || term != n->seen_term) {
            sim_trace(s, TR_STATE, i, state, term, raft_leader(r), commit);
        }
        if (state == RAFT_LEADER) {
            record_leader(s, n, term);
            if (n->seen_leader_term != term && !s->failed) {
                n->seen_leader_term = term;
                s->n_elections++;
                check_leader_complete(s, n, term);
            }
        }
        /* Everything up to a node's commit index is committed: record it,
         * or check it against what is known (State Machine Safety). */
        raft_index from = n->seen_observed + 1;
        if (from < raft_first_index(r)) {
            from = raft_first_index(r);
        }
        for (raft_index j = from; j <= commit && !s->failed; j++) {
            const struct raft_entry *e = raft_entry_at(r, j);
            if (e != NULL) {
                committed_entry(s, n, e, term, "has committed");
            }
        }
        if (commit > n->seen_observed) {
            n->seen_observed = commit;
        }
        n->seen_term = term;
        n->seen_vote = vote;
        n->seen_commit = commit;
        n->seen_state = state;
    }
    if (!s->failed && s->check.events % 512 == 0) {
        check_full(s);
    }
}

void check_full(struct sim *s)
{
    for (unsigned i = 0; i < s->p.slots && !s->failed; i++) {
        struct sim_node *n = &s->nodes[i];
        if (!n->up) {
            continue;
        }
        struct raft_node *r = n->raft;
        raft_index first = raft_first_index(r), last = raft_last_index(r);
        raft_index commit = raft_commit_index(r);
        raft_term prev = 0;
        for (raft_index j = first; j <= last && !s->failed; j++) {
            const struct raft_entry *e = raft_entry_at(r, j);
            if (e == NULL) {
                sim_fail(s, "log", "n%llu has no entry %llu in [%llu, %llu]",
                         (unsigned long long)n->id, (unsigned long long)j,
                         (unsigned long long)first, (unsigned long long)last);
                return;
            }
            if (e->index != j) {
                sim_fail(s, "log", "n%llu: entry %llu says it is at %llu",
                         (unsigned long long)n->id, (unsigned long long)j,
                         (unsigned long long)e->index);
                return;
            }
            struct sim_logmap_slot *slot = logmap_find(s, j, e->term);
            if (slot != NULL) {
                if (slot->hash != sim_entry_hash(e) ||
                    (prev != 0 && slot->prev_term != 0 &&
                     slot->prev_term != prev)) {
                    sim_fail(s, "log matching",
                             "n%llu's in-memory entry %llu term %llu differs "
                             "from the entry of that index and term written "
                             "before",
                             (unsigned long long)n->id, (unsigned long long)j,
                             (unsigned long long)e->term);
                    return;
                }
            }
            if (j <= commit) {
                committed_entry(s, n, e, raft_current_term(r), "has committed");
            }
            prev = e->term;
        }
    }
}
