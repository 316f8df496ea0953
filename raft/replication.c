/*
 * replication.c - AppendEntries, commitment and InstallSnapshot (§5.3,
 * §5.4, chapter 5 of the dissertation).
 *
 * The leader never builds appends while handling an event: it marks
 * followers and builds the messages in raft_ready(), when the log is frozen
 * until raft_advance(). That batches every proposal of a cycle into one
 * message per follower, and lets messages point into the log without
 * copying (an earlier message could otherwise point into an array that a
 * later append moved).
 */
#include <assert.h>
#include <string.h>

#include "node.h"

/* ---- leader side ------------------------------------------------------- */

int replication_append_local(struct raft_node *node,
                             uint8_t type,
                             const uint8_t *data,
                             uint32_t len)
{
    int rv = log_append(node, &node->log, node->term, type, data, len);
    if (rv != 0) {
        return rv;
    }
    node->uncommitted_bytes += len;
    /* A single-voter cluster commits once its own write is durable, in
     * raft_advance(); nothing to do here. */
    return 0;
}

static raft_index self_match(const struct raft_node *node)
{
    return node->stable;
}

static int cmp_desc(const void *a, const void *b)
{
    raft_index x = *(const raft_index *)a, y = *(const raft_index *)b;
    return (x < y) - (x > y);
}

/* Insertion sort: at most RAFT_CONF_MAX values, and no libc qsort callback
 * surprises. */
static void sort_desc(raft_index *v, unsigned n)
{
    for (unsigned i = 1; i < n; i++) {
        raft_index x = v[i];
        unsigned j = i;
        while (j > 0 && cmp_desc(&v[j - 1], &x) > 0) {
            v[j] = v[j - 1];
            j--;
        }
        v[j] = x;
    }
}

/* The highest index that at least commit_learners learners hold (0 if
 * there are fewer learners): raft_set_commit_learners(). */
static raft_index learners_hold(struct raft_node *node,
                                const struct raft_conf *conf)
{
    raft_index matches[RAFT_CONF_MAX];
    unsigned n = 0;
    for (uint32_t i = 0; i < conf->n; i++) {
        const struct raft_member *m = &conf->members[i];
        if (m->role == RAFT_LEARNER) {
            struct raft_progress *pr = progress_get(node, m->id);
            matches[n++] = pr != NULL ? pr->match : 0;
        }
    }
    if (n < node->commit_learners) {
        return 0;
    }
    sort_desc(matches, n);
    return matches[node->commit_learners - 1];
}

/* §5.3/§5.4.2: the commit index is the highest index stored on a majority
 * of voters, but only an entry of the leader's current term is committed by
 * counting replicas (Figure 8); earlier ones commit with it. */
bool replication_maybe_commit(struct raft_node *node)
{
    const struct raft_conf *conf = conf_current(node);
    raft_index matches[RAFT_CONF_MAX];
    unsigned n = 0;

    for (uint32_t i = 0; i < conf->n; i++) {
        const struct raft_member *m = &conf->members[i];
        if (m->role != RAFT_VOTER &&
            !(node->cfg.breaks & RAFT_BREAK_LEARNERS_VOTE)) {
            continue;
        }
        if (m->id == node->id) {
            matches[n++] = self_match(node);
        } else {
            struct raft_progress *pr = progress_get(node, m->id);
            matches[n++] = pr != NULL ? pr->match : 0;
        }
    }
    if (n == 0) {
        return false;
    }
    sort_desc(matches, n);
    raft_index candidate = matches[node_quorum(node) - 1];
    if (node->commit_learners > 0) {
        raft_index held = learners_hold(node, conf);
        candidate = held < candidate ? held : candidate;
    }
    if (candidate <= node->commit) {
        return false;
    }
    if (log_term_at(&node->log, candidate) != node->term) {
        return false;
    }
    for (raft_index i = node->commit + 1; i <= candidate; i++) {
        const struct raft_entry *e = log_get(&node->log, i);
        if (e != NULL && e->term == node->term) {
            node->uncommitted_bytes -= e->len <= node->uncommitted_bytes
                                           ? e->len
                                           : node->uncommitted_bytes;
        }
    }
    node->commit = candidate;
    read_on_commit(node);
    membership_on_commit(node);
    return true;
}

static int send_snapshot_chunk(struct raft_node *node, struct raft_progress *pr)
{
    struct raft_message msg;
    const struct raft_snapshot_meta *snap = &node->snap;
    uint64_t left;

    if (snap->index == 0) {
        return 0;
    }
    if (pr->state != PROGRESS_SNAPSHOT || pr->snap_index != snap->index) {
        /* Always send the newest snapshot; a transfer of an older one
         * starts over, since the application may have deleted it. */
        progress_become_snapshot(pr, snap->index);
        node->stats.snapshots_sent++;
    }
    if (pr->snap_offset > snap->size) {
        pr->snap_offset = 0;
    }
    left = snap->size - pr->snap_offset;
    memset(&msg, 0, sizeof(msg));
    msg.type = RAFT_MSG_SNAPSHOT;
    msg.to = pr->id;
    msg.u.snapshot.meta = *snap;
    msg.u.snapshot.offset = pr->snap_offset;
    msg.u.snapshot.len = (uint32_t)(left < node->cfg.snapshot_chunk_bytes
                                        ? left
                                        : node->cfg.snapshot_chunk_bytes);
    msg.u.snapshot.done = pr->snap_offset + msg.u.snapshot.len == snap->size;
    msg.u.snapshot.data = NULL; /* the driver reads it from the snapshot */
    pr->snap_idle_ticks = 0;
    return node_send(node, &msg);
}

/* Sends @pr what it needs next: entries, an empty append carrying the
 * commit index, or a snapshot chunk. */
static int send_append(struct raft_node *node,
                       struct raft_progress *pr,
                       bool allow_empty)
{
    const struct raft_log *log = &node->log;
    raft_index last = log_last_index(log);

    if (progress_paused(node, pr)) {
        return 0;
    }
    if (pr->next > last && !allow_empty) {
        return 0;
    }
    raft_index prev = pr->next - 1;
    if (prev < log->offset) {
        /* The entries it needs are compacted: §7 InstallSnapshot. */
        return send_snapshot_chunk(node, pr);
    }

    uint32_t n = 0;
    uint64_t bytes = 0;
    while (pr->next + n <= last && n < node->cfg.max_append_entries) {
        const struct raft_entry *e = log_get(log, pr->next + n);
        if (n > 0 && bytes + e->len > node->cfg.max_append_bytes) {
            break;
        }
        bytes += e->len;
        n++;
    }

    struct raft_message msg;
    memset(&msg, 0, sizeof(msg));
    msg.type = RAFT_MSG_APPEND;
    msg.to = pr->id;
    msg.u.append.prev_index = prev;
    msg.u.append.prev_term = log_term_at(log, prev);
    msg.u.append.commit = node->commit;
    msg.u.append.n_entries = n;
    msg.u.append.entries = n > 0 ? log_get(log, pr->next) : NULL;
    int rv = node_send(node, &msg);
    if (rv != 0) {
        return rv;
    }
    if (pr->state == PROGRESS_REPLICATE) {
        if (n > 0) {
            pr->next += n;
            progress_inflight_add(node, pr, pr->next - 1);
        }
    } else {
        pr->probe_sent = true;
    }
    return 0;
}

int replication_flush(struct raft_node *node)
{
    if (node->state != RAFT_LEADER) {
        return 0;
    }
    for (unsigned i = 0; i < node->n_prs; i++) {
        struct raft_progress *pr = &node->prs[i];
        if (pr->id == node->id) {
            continue;
        }
        /* Pipeline: keep sending while there is something and room. */
        bool empty = pr->want_empty;
        pr->want_empty = false;
        for (;;) {
            raft_index next = pr->next;
            uint32_t inflight = pr->inflight_count;
            int rv = send_append(node, pr, empty);
            empty = false;
            if (rv != 0) {
                return rv;
            }
            if (pr->state != PROGRESS_REPLICATE || pr->next == next ||
                pr->inflight_count == inflight) {
                break;
            }
        }
    }
    return 0;
}

void replication_send_heartbeats(struct raft_node *node)
{
    /* Each broadcast is a new round; reads and the lease wait for a
     * majority to acknowledge a round sent after they began. */
    node->read_seq++;
    node->round_tick[node->read_seq % RAFT_READ_ROUNDS] = node->ticks;
    for (unsigned i = 0; i < node->n_prs; i++) {
        struct raft_progress *pr = &node->prs[i];
        if (pr->id == node->id) {
            continue;
        }
        struct raft_message msg;
        memset(&msg, 0, sizeof(msg));
        msg.type = RAFT_MSG_HEARTBEAT;
        msg.to = pr->id;
        /* Never tell a follower to commit past what it is known to hold. */
        msg.u.heartbeat.commit =
            pr->match < node->commit ? pr->match : node->commit;
        msg.u.heartbeat.read_seq = node->read_seq;
        (void)node_send(node, &msg);
    }
}

static void check_quorum(struct raft_node *node)
{
    const struct raft_conf *conf = conf_current(node);
    unsigned active = 0;
    for (uint32_t i = 0; i < conf->n; i++) {
        const struct raft_member *m = &conf->members[i];
        if (m->role != RAFT_VOTER) {
            continue;
        }
        struct raft_progress *pr = progress_get(node, m->id);
        if (m->id == node->id || (pr != NULL && pr->recent_active)) {
            active++;
        }
    }
    for (unsigned i = 0; i < node->n_prs; i++) {
        node->prs[i].recent_active = false;
    }
    /* §6.2: a leader that cannot reach a majority for an election timeout
     * steps down, so clients find the real leader. */
    if (active < node_quorum(node)) {
        election_become_follower(node, node->term, 0);
    }
}

void replication_tick(struct raft_node *node)
{
    node->election_elapsed++;
    node->heartbeat_elapsed++;
    for (unsigned i = 0; i < node->n_prs; i++) {
        struct raft_progress *pr = &node->prs[i];
        if (pr->state == PROGRESS_SNAPSHOT &&
            ++pr->snap_idle_ticks >= node->cfg.election_ticks) {
            /* The chunk or its answer was lost; send it again. */
            (void)send_snapshot_chunk(node, pr);
        }
    }
    if (node->election_elapsed >= node->cfg.election_ticks) {
        node->election_elapsed = 0;
        if (node->cfg.check_quorum) {
            check_quorum(node);
            if (node->state != RAFT_LEADER) {
                return;
            }
        }
    }
    membership_tick(node);
    if (node->state != RAFT_LEADER) {
        return;
    }
    if (node->heartbeat_elapsed >= node->cfg.heartbeat_ticks) {
        node->heartbeat_elapsed = 0;
        replication_send_heartbeats(node);
        /* Retry the blank entry if an allocation failure skipped it. */
        if (log_last_term(&node->log) != node->term) {
            (void)replication_append_local(node, RAFT_ENTRY_NORMAL, NULL, 0);
        }
    }
}

/* A follower rejected prev_index m->u.append_resp.index. Use its hint to
 * skip every entry of a conflicting term at once (§5.3, "the leader can
 * decrement nextIndex to bypass all of the conflicting entries in that
 * term"). */
static raft_index next_after_reject(const struct raft_node *node,
                                    const struct raft_msg_append_resp *r)
{
    if (r->hint_term == 0) {
        return r->hint_index;
    }
    raft_index j = r->index;
    if (j > log_last_index(&node->log)) {
        j = log_last_index(&node->log);
    }
    while (j > node->log.offset && log_term_at(&node->log, j) > r->hint_term) {
        j--;
    }
    if (log_term_at(&node->log, j) == r->hint_term) {
        return j + 1;
    }
    return r->hint_index;
}

void replication_recv_append_resp(struct raft_node *node,
                                  const struct raft_message *m)
{
    struct raft_progress *pr = progress_get(node, m->from);
    const struct raft_msg_append_resp *r = &m->u.append_resp;

    if (pr == NULL || node->state != RAFT_LEADER) {
        return;
    }
    pr->recent_active = true;
    if (!r->success) {
        /* Ignore answers to appends we have since moved past. */
        if (pr->state == PROGRESS_REPLICATE && r->index <= pr->match) {
            return;
        }
        if (pr->state == PROGRESS_PROBE && r->index != pr->next - 1) {
            return;
        }
        if (pr->state == PROGRESS_SNAPSHOT) {
            return;
        }
        raft_index next = next_after_reject(node, r);
        if (next > r->index) {
            next = r->index;
        }
        if (next < pr->match + 1) {
            next = pr->match + 1;
        }
        progress_become_probe(pr);
        pr->next = next;
        return;
    }
    if (r->index > pr->match) {
        pr->match = r->index;
        if (pr->state == PROGRESS_PROBE) {
            progress_become_replicate(pr);
        } else if (pr->state == PROGRESS_SNAPSHOT &&
                   pr->match >= pr->snap_index) {
            progress_become_probe(pr);
            progress_become_replicate(pr);
        }
        if (pr->next < pr->match + 1) {
            pr->next = pr->match + 1;
        }
        if (replication_maybe_commit(node)) {
            /* Tell followers about the new commit index promptly. */
            for (unsigned i = 0; i < node->n_prs; i++) {
                node->prs[i].want_empty = true;
            }
        }
        if (node->state == RAFT_LEADER) {
            membership_on_match(node, pr);
        }
    } else if (pr->state == PROGRESS_PROBE && r->index == pr->match) {
        /* A repeated probe answer: the follower is reachable again. */
        progress_become_replicate(pr);
    }
    progress_inflight_free_to(node, pr, r->index);
}

void replication_recv_heartbeat_resp(struct raft_node *node,
                                     const struct raft_message *m)
{
    struct raft_progress *pr = progress_get(node, m->from);
    if (pr == NULL || node->state != RAFT_LEADER) {
        return;
    }
    pr->recent_active = true;
    pr->probe_sent = false;
    /* If every inflight append was lost, free one slot so a new append can
     * discover the gap (the follower then rejects and we probe). */
    if (pr->state == PROGRESS_REPLICATE &&
        pr->inflight_count >= node->cfg.max_inflight) {
        progress_inflight_free_first(node, pr);
    }
    if (m->u.heartbeat_resp.read_seq > pr->read_seq) {
        pr->read_seq = m->u.heartbeat_resp.read_seq;
    }
    /* A follower still behind gets an append even if it carries nothing
     * new: in REPLICATE the entries in flight may have been lost, and the
     * follower's rejection of a gap sends us back to probing. */
    if (pr->match < log_last_index(&node->log)) {
        pr->want_empty = true;
    }
    read_on_heartbeat_resp(node);
}

void replication_recv_snapshot_resp(struct raft_node *node,
                                    const struct raft_message *m)
{
    struct raft_progress *pr = progress_get(node, m->from);
    const struct raft_msg_snapshot_resp *r = &m->u.snapshot_resp;
    if (pr == NULL || node->state != RAFT_LEADER) {
        return;
    }
    pr->recent_active = true;
    if (r->done) {
        /* The follower holds everything up to r->index. */
        if (r->index > pr->match && r->index <= log_last_index(&node->log)) {
            pr->match = r->index;
        }
        if (pr->state == PROGRESS_SNAPSHOT) {
            progress_become_probe(pr);
            pr->next = pr->match + 1;
        }
        pr->want_empty = true;
        return;
    }
    if (pr->state != PROGRESS_SNAPSHOT || r->index != pr->snap_index) {
        return;
    }
    if (r->next_offset <= node->snap.size &&
        r->next_offset != pr->snap_offset) {
        pr->snap_offset = r->next_offset;
    } else if (r->next_offset == pr->snap_offset) {
        /* Duplicate answer: the chunk after it is already on its way. */
        return;
    }
    (void)send_snapshot_chunk(node, pr);
}

/* ---- follower side ----------------------------------------------------- */

static void follow(struct raft_node *node, const struct raft_message *m)
{
    if (node->state != RAFT_FOLLOWER || node->leader != m->from) {
        election_become_follower(node, m->term, m->from);
    } else {
        node->election_elapsed = 0;
    }
}

static int send_append_resp(struct raft_node *node,
                            raft_id to,
                            bool success,
                            raft_index index,
                            raft_term hint_term,
                            raft_index hint_index)
{
    struct raft_message resp;
    memset(&resp, 0, sizeof(resp));
    resp.type = RAFT_MSG_APPEND_RESP;
    resp.to = to;
    resp.u.append_resp.success = success;
    resp.u.append_resp.index = index;
    resp.u.append_resp.hint_term = hint_term;
    resp.u.append_resp.hint_index = hint_index;
    return node_send(node, &resp);
}

/* Applies the entries of an accepted AppendEntries (Figure 2, receiver
 * steps 3 and 4): skip what we already have, truncate at the first
 * conflict, append the rest. */
static int append_entries(struct raft_node *node,
                          const struct raft_msg_append *a)
{
    uint32_t i = 0;
    int rv;

    /* Skip entries already present with the same term. */
    while (i < a->n_entries) {
        const struct raft_entry *e = &a->entries[i];
        if (e->index > log_last_index(&node->log) ||
            log_term_at(&node->log, e->index) != e->term) {
            break;
        }
        i++;
    }
    if (i == a->n_entries) {
        return 0;
    }
    rv = log_reserve(node, &node->log, a->n_entries - i);
    if (rv != 0) {
        return rv;
    }
    raft_index first = a->entries[i].index;
    if (first <= log_last_index(&node->log)) {
        /* §5.3: "If an existing entry conflicts with a new one (same index
         * but different terms), delete the existing entry and all that
         * follow it". A committed entry can never conflict. */
        assert(first > node->commit);
        log_truncate_from(node, &node->log, first);
        conf_history_truncate(node, first);
        if (node->stable >= first) {
            node->stable = first - 1;
        }
    }
    for (; i < a->n_entries; i++) {
        const struct raft_entry *e = &a->entries[i];
        rv = log_append(node, &node->log, e->term, e->type, e->data, e->len);
        if (rv != 0) {
            return rv;
        }
        if (e->type == RAFT_ENTRY_CONF) {
            struct raft_conf conf;
            /* step.c validated the encoding. */
            (void)raft_conf_decode(e->data, e->len, &conf);
            rv = conf_history_push(node, e->index, &conf);
            if (rv != 0) {
                log_truncate_from(node, &node->log, e->index);
                return rv;
            }
            membership_on_conf_change(node);
        }
    }
    return 0;
}

/* Leader Completeness (§5.4) says a leader holds every committed entry, so
 * an append can never conflict with what a follower committed. Only a
 * configuration forced outside consensus (raft_force_conf(), the
 * primary-replica fallback) breaks that: a survivor forced into primary may
 * lack entries another member had committed, or a former primary may have
 * committed entries of its own epoch that the new one never got. Such a
 * follower must not answer "I match up to my commit index": it would be
 * counted as holding entries it does not hold.
 *
 * Returns true if @a's prev entry, at or below our commit index, has
 * another term than ours: the answer is then an ordinary mismatch, which
 * walks the leader back towards the fork. */
static bool prev_diverges_below_commit(struct raft_node *node,
                                       const struct raft_msg_append *a)
{
    if (a->prev_index > node->log.offset &&
        log_term_at(&node->log, a->prev_index) != a->prev_term) {
        node->stats.diverged++;
        return true;
    }
    return false;
}

static void note_divergence(struct raft_node *node, raft_index at)
{
    node->stats.diverged++;
    if (node->diverged_at == 0 || at < node->diverged_at) {
        node->diverged_at = at;
    }
}

/* With @a's prev entry matching, returns true if one of its entries at or
 * below our commit index has another term than ours: that entry is where
 * the two logs fork (Log Matching holds below it). */
static bool entries_diverge_below_commit(struct raft_node *node,
                                         const struct raft_msg_append *a)
{
    for (uint32_t i = 0; i < a->n_entries; i++) {
        const struct raft_entry *e = &a->entries[i];
        if (e->index > node->commit) {
            break;
        }
        if (e->index > node->log.offset &&
            log_term_at(&node->log, e->index) != e->term) {
            note_divergence(node, e->index);
            return true;
        }
    }
    return false;
}

int replication_recv_append(struct raft_node *node,
                            const struct raft_message *m)
{
    const struct raft_msg_append *a = &m->u.append;
    raft_index last = log_last_index(&node->log);

    follow(node, m);
    bool prev_diverges = false;
    if (a->prev_index < node->commit) {
        prev_diverges = prev_diverges_below_commit(node, a);
        if (!prev_diverges && entries_diverge_below_commit(node, a)) {
            /* Never acknowledged: the leader must not count us as holding
             * its entries. Not answered either, so the leader's probe
             * waits for its next heartbeat instead of bouncing back at
             * once; the driver reports the divergence (raft_diverged_at).
             */
            return 0;
        }
        if (!prev_diverges) {
            /* Everything up to our commit index matches the leader. */
            return send_append_resp(node, m->from, true, node->commit, 0, 0);
        }
    }
    if (a->prev_index > last) {
        return send_append_resp(node, m->from, false, a->prev_index, 0,
                                last + 1);
    }
    raft_term t = log_term_at(&node->log, a->prev_index);
    if (t != a->prev_term) {
        /* Hint: the first index we hold of the conflicting term, so the
         * leader can skip the whole term. */
        raft_index first = a->prev_index;
        raft_index floor = node->commit > node->log.offset && !prev_diverges
                               ? node->commit
                               : node->log.offset;
        while (first - 1 > floor && log_term_at(&node->log, first - 1) == t) {
            first--;
        }
        return send_append_resp(node, m->from, false, a->prev_index, t, first);
    }
    int rv = append_entries(node, a);
    if (rv != 0) {
        return rv;
    }
    raft_index last_new = a->prev_index + a->n_entries;
    /* Figure 2, receiver step 5: commitIndex = min(leaderCommit, index of
     * last new entry). */
    raft_index c = a->commit < last_new ? a->commit : last_new;
    if (c > node->commit) {
        node->commit = c;
    }
    return send_append_resp(node, m->from, true, last_new, 0, 0);
}

int replication_recv_heartbeat(struct raft_node *node,
                               const struct raft_message *m)
{
    follow(node, m);
    raft_index c = m->u.heartbeat.commit;
    if (c > log_last_index(&node->log)) {
        c = log_last_index(&node->log);
    }
    if (c > node->commit) {
        node->commit = c;
    }
    struct raft_message resp;
    memset(&resp, 0, sizeof(resp));
    resp.type = RAFT_MSG_HEARTBEAT_RESP;
    resp.to = m->from;
    resp.u.heartbeat_resp.read_seq = m->u.heartbeat.read_seq;
    return node_send(node, &resp);
}

static int send_snapshot_resp(struct raft_node *node,
                              raft_id to,
                              raft_index index,
                              uint64_t next,
                              bool done)
{
    struct raft_message resp;
    memset(&resp, 0, sizeof(resp));
    resp.type = RAFT_MSG_SNAPSHOT_RESP;
    resp.to = to;
    resp.u.snapshot_resp.index = index;
    resp.u.snapshot_resp.next_offset = next;
    resp.u.snapshot_resp.done = done;
    return node_send(node, &resp);
}

static int stage_chunk(struct raft_node *node,
                       const struct raft_msg_snapshot *c)
{
    if (node->n_chunks == node->cap_chunks) {
        size_t cap = node->cap_chunks ? node->cap_chunks * 2 : 4;
        struct raft_msg_snapshot *a =
            raft_realloc(node, node->chunks, cap * sizeof(*a));
        if (a == NULL) {
            return RAFT_ENOMEM;
        }
        node->chunks = a;
        node->cap_chunks = cap;
    }
    uint8_t *data = NULL;
    if (c->len > 0) {
        data = raft_malloc(node, c->len);
        if (data == NULL) {
            return RAFT_ENOMEM;
        }
        memcpy(data, c->data, c->len);
    }
    node->chunks[node->n_chunks] = *c;
    node->chunks[node->n_chunks].data = data;
    node->n_chunks++;
    return 0;
}

/* The last chunk arrived: the snapshot replaces our state (§5.3 of the
 * dissertation, Figure 5.3 receiver steps 6-8). */
static void restore_snapshot(struct raft_node *node,
                             const struct raft_snapshot_meta *meta)
{
    if (log_term_at(&node->log, meta->index) == meta->term &&
        meta->index <= log_last_index(&node->log)) {
        /* "If existing log entry has same index and term as snapshot's last
         * included entry, retain log entries following it." */
        log_compact_to(node, &node->log, meta->index);
        node->snap_reset_log = false;
    } else {
        log_reset(node, &node->log, meta->index, meta->term);
        node->snap_reset_log = true;
        node->stable = meta->index;
    }
    if (node->stable < meta->index) {
        node->stable = meta->index;
    }
    /* Configurations logged after the snapshot stay in force. */
    struct raft_conf_record later[RAFT_CONF_MAX];
    size_t n_later = 0;
    for (size_t i = 0; i < node->n_confs && n_later < RAFT_CONF_MAX; i++) {
        if (node->confs[i].index > meta->index &&
            node->confs[i].index <= log_last_index(&node->log)) {
            later[n_later++] = node->confs[i];
        }
    }
    conf_history_reset(node, meta->index, &meta->conf);
    for (size_t i = 0; i < n_later; i++) {
        /* Cannot fail: we only put back records that were there. */
        (void)conf_history_push(node, later[i].index, &later[i].conf);
    }
    node->commit = node->commit > meta->index ? node->commit : meta->index;
    node->applied = meta->index;
    node->snap = *meta;
    node->install_meta = *meta;
    node->snap_install = true;
    node->recv_meta.index = 0;
    node->recv_offset = 0;
    node->stats.snapshots_installed++;
    membership_on_conf_change(node);
}

int replication_recv_snapshot(struct raft_node *node,
                              const struct raft_message *m)
{
    const struct raft_msg_snapshot *c = &m->u.snapshot;
    int rv;

    follow(node, m);
    if (c->meta.index <= node->commit && c->meta.index > node->log.offset &&
        log_term_at(&node->log, c->meta.index) != c->meta.term) {
        /* Divergence below our commit index (see diverges_below_commit):
         * answering "done" would count us as holding what we do not. */
        note_divergence(node, c->meta.index);
        return 0;
    }
    if (c->meta.index <= node->commit) {
        /* We already have (and committed) everything it contains. */
        node->recv_meta.index = 0;
        return send_snapshot_resp(node, m->from, node->commit, 0, true);
    }
    if (node->snap_install) {
        /* This batch already completes a snapshot: its bytes are in the
         * staging area until the caller installs them. A chunk at offset 0
         * would discard that area, so refuse newer chunks until then; the
         * leader resends from next_offset 0. */
        return send_snapshot_resp(node, m->from, c->meta.index, 0, false);
    }
    if (c->offset == 0) {
        node->recv_meta = c->meta;
        node->recv_offset = 0;
    }
    if (node->recv_meta.index != c->meta.index ||
        node->recv_meta.term != c->meta.term ||
        node->recv_meta.size != c->meta.size ||
        c->offset != node->recv_offset) {
        /* Out of order or for another snapshot: say what we expect. */
        return send_snapshot_resp(
            node, m->from, c->meta.index,
            node->recv_meta.index == c->meta.index ? node->recv_offset : 0,
            false);
    }
    rv = stage_chunk(node, c);
    if (rv != 0) {
        return rv;
    }
    node->recv_offset += c->len;
    if (c->done) {
        struct raft_snapshot_meta meta = node->recv_meta;
        restore_snapshot(node, &meta);
        return send_snapshot_resp(node, m->from, meta.index, meta.size, true);
    }
    return send_snapshot_resp(node, m->from, c->meta.index, node->recv_offset,
                              false);
}
