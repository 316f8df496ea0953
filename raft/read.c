/*
 * read.c - linearizable reads without writing to the log (§6.4 ReadIndex).
 *
 * The leader records its commit index as the read index, then confirms it
 * is still leader with a round of heartbeats acknowledged by a majority;
 * once the state machine has applied the read index, the read may be
 * served. A leader whose term has not committed an entry yet does not know
 * the true commit index, so reads wait for that first commit.
 */
#include <string.h>

#include "node.h"

static int push_read(struct raft_node *node, const struct raft_pending_read *r)
{
    if (node->n_reads >= RAFT_PENDING_READS_MAX) {
        return RAFT_EBUSY;
    }
    if (node->n_reads == node->cap_reads) {
        size_t cap = node->cap_reads ? node->cap_reads * 2 : 16;
        struct raft_pending_read *a =
            raft_realloc(node, node->reads, cap * sizeof(*a));
        if (a == NULL) {
            return RAFT_ENOMEM;
        }
        node->reads = a;
        node->cap_reads = cap;
    }
    node->reads[node->n_reads++] = *r;
    return 0;
}

static bool committed_in_term(const struct raft_node *node)
{
    return log_term_at(&node->log, node->commit) == node->term;
}

/* Lease reads (§6.4.1): with CheckQuorum a follower refuses to vote for
 * election_ticks after it last heard from the leader. So once a majority
 * acknowledged a heartbeat sent at tick s, nobody else can become leader
 * before s + election_ticks by the followers' clocks; one tick of margin
 * covers a follower whose clock runs slightly fast (docs/raft.md). */
static bool lease_valid(const struct raft_node *node)
{
    return node->cfg.lease_reads && node->cfg.check_quorum &&
           node->state == RAFT_LEADER && node->transfer_target == 0 &&
           !node->timeout_now_sent && node->ticks < node->lease_until;
}

/* True if this node's own acknowledgement is a majority: it is the only
 * voter. (A quorum of one is not enough: a leader removing itself may be
 * left with a single voter that is somebody else, simulator seed 327304.) */
static bool self_is_quorum(const struct raft_node *node)
{
    const struct raft_conf *conf = conf_current(node);
    return raft_conf_voters(conf) == 1 && conf_is_voter(conf, node->id);
}

static int answer(struct raft_node *node,
                  const struct raft_pending_read *r,
                  bool ok)
{
    if (r->from == 0 || r->from == node->id) {
        return node_add_read_state(node, r->ctx, r->index, ok);
    }
    struct raft_message msg;
    memset(&msg, 0, sizeof(msg));
    msg.type = RAFT_MSG_READ_INDEX_RESP;
    msg.to = r->from;
    msg.u.read_index.ctx = r->ctx;
    msg.u.read_index.index = r->index;
    msg.u.read_index.ok = ok;
    return node_send(node, &msg);
}

/* Registers a read on the leader; it is answered when confirmed. */
static int leader_read(struct raft_node *node, uint64_t ctx, raft_id from)
{
    struct raft_pending_read r = {
        .ctx = ctx, .from = from, .index = node->commit};
    if (!committed_in_term(node)) {
        return push_read(node, &r); /* seq 0: wait for the first commit */
    }
    if (lease_valid(node) || self_is_quorum(node)) {
        return answer(node, &r, true);
    }
    /* The heartbeats sent next carry round read_seq + 1. */
    r.seq = node->read_seq + 1;
    int rv = push_read(node, &r);
    if (rv != 0) {
        return rv;
    }
    replication_send_heartbeats(node);
    return 0;
}

static int send_read_request(struct raft_node *node, uint64_t ctx)
{
    struct raft_message msg;
    memset(&msg, 0, sizeof(msg));
    msg.type = RAFT_MSG_READ_INDEX;
    msg.to = node->leader;
    msg.u.read_index.ctx = ctx;
    return node_send(node, &msg);
}

int raft_read_index(struct raft_node *node, uint64_t ctx)
{
    if (node->in_update) {
        return RAFT_ESTATE;
    }
    if (node->state == RAFT_LEADER) {
        return leader_read(node, ctx, 0);
    }
    if (node->leader == 0) {
        return node_add_read_state(node, ctx, 0, false);
    }
    /* Ask the leader; remember the read so that a leader change can fail
     * it and read_tick() can ask again. */
    struct raft_pending_read r = {
        .ctx = ctx, .asked_tick = node->ticks, .sent_tick = node->ticks};
    int rv = push_read(node, &r);
    if (rv != 0) {
        return rv;
    }
    rv = send_read_request(node, ctx);
    if (rv != 0) {
        node->n_reads--;
    }
    return rv;
}

int read_recv_request(struct raft_node *node, const struct raft_message *m)
{
    if (node->state != RAFT_LEADER) {
        struct raft_pending_read r = {.ctx = m->u.read_index.ctx,
                                      .from = m->from};
        return answer(node, &r, false);
    }
    return leader_read(node, m->u.read_index.ctx, m->from);
}

void read_recv_response(struct raft_node *node, const struct raft_message *m)
{
    if (node->state == RAFT_LEADER || m->from != node->leader) {
        return;
    }
    for (size_t i = 0; i < node->n_reads; i++) {
        if (node->reads[i].ctx == m->u.read_index.ctx) {
            bool ok = m->u.read_index.ok;
            raft_index index = m->u.read_index.index;
            memmove(&node->reads[i], &node->reads[i + 1],
                    (node->n_reads - i - 1) * sizeof(*node->reads));
            node->n_reads--;
            (void)node_add_read_state(node, m->u.read_index.ctx, index, ok);
            return;
        }
    }
}

/* The highest read round acknowledged by a majority of voters. */
static uint64_t quorum_read_seq(struct raft_node *node)
{
    const struct raft_conf *conf = conf_current(node);
    uint64_t seqs[RAFT_CONF_MAX];
    unsigned n = 0;
    for (uint32_t i = 0; i < conf->n; i++) {
        const struct raft_member *m = &conf->members[i];
        if (m->role != RAFT_VOTER) {
            continue;
        }
        if (m->id == node->id) {
            seqs[n++] = node->read_seq;
        } else {
            struct raft_progress *pr = progress_get(node, m->id);
            seqs[n++] = pr != NULL ? pr->read_seq : 0;
        }
    }
    if (n == 0) {
        return 0;
    }
    for (unsigned i = 1; i < n; i++) {
        uint64_t x = seqs[i];
        unsigned j = i;
        while (j > 0 && seqs[j - 1] < x) {
            seqs[j] = seqs[j - 1];
            j--;
        }
        seqs[j] = x;
    }
    return seqs[node_quorum(node) - 1];
}

void read_on_heartbeat_resp(struct raft_node *node)
{
    if (node->state != RAFT_LEADER) {
        return;
    }
    uint64_t acked = quorum_read_seq(node);
    if (acked > 0 && node->read_seq - acked < RAFT_READ_ROUNDS) {
        uint64_t until = node->round_tick[acked % RAFT_READ_ROUNDS] +
                         node->cfg.election_ticks - 1;
        if (until > node->lease_until) {
            node->lease_until = until;
        }
    }
    size_t kept = 0;
    for (size_t i = 0; i < node->n_reads; i++) {
        struct raft_pending_read *r = &node->reads[i];
        if (r->seq != 0 && r->seq <= acked) {
            (void)answer(node, r, true);
        } else {
            node->reads[kept++] = *r;
        }
    }
    node->n_reads = kept;
}

void read_on_commit(struct raft_node *node)
{
    if (node->state != RAFT_LEADER || !committed_in_term(node)) {
        return;
    }
    /* Reads that waited for the term's first commit take today's commit
     * index and start their confirmation round. */
    bool any = false;
    bool at_once = lease_valid(node) || self_is_quorum(node);
    size_t kept = 0;
    for (size_t i = 0; i < node->n_reads; i++) {
        struct raft_pending_read *r = &node->reads[i];
        if (r->seq == 0) {
            r->index = node->commit;
            if (at_once) {
                (void)answer(node, r, true);
                continue;
            }
            r->seq = node->read_seq + 1;
            any = true;
        }
        node->reads[kept++] = *r;
    }
    node->n_reads = kept;
    if (any) {
        replication_send_heartbeats(node);
    }
}

void read_fail_all(struct raft_node *node)
{
    for (size_t i = 0; i < node->n_reads; i++) {
        (void)answer(node, &node->reads[i], false);
    }
    node->n_reads = 0;
}

/* A follower's forwarded reads: the request or its answer may be lost, and
 * nothing else would ever answer it while the leader stays the same. A
 * resent request is answered like the first (the leader confirms a read
 * index at least as new as its commit index when it receives it, which is
 * after the read began); the first answer completes the read and later
 * ones find no pending read. A read that no answer completes within
 * read_timeout_ticks fails, so that the client can retry. */
void read_tick(struct raft_node *node)
{
    if (node->state == RAFT_LEADER) {
        return;
    }
    size_t kept = 0;
    for (size_t i = 0; i < node->n_reads; i++) {
        struct raft_pending_read *r = &node->reads[i];
        if (node->ticks - r->asked_tick >= node->cfg.read_timeout_ticks) {
            (void)answer(node, r, false);
            continue;
        }
        if (node->ticks - r->sent_tick >= node->cfg.read_retry_ticks &&
            node->leader != 0 && send_read_request(node, r->ctx) == 0) {
            r->sent_tick = node->ticks;
            node->stats.read_retries++;
        }
        node->reads[kept++] = *r;
    }
    node->n_reads = kept;
}
