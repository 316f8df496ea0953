/*
 * bnode.c - the node driver; see bnode.h.
 *
 * The cycle, run from an idle handle after each burst of events:
 *
 *   feed the core what arrived (ticks, messages, proposals, reads)
 *   raft_ready()
 *     send update.messages                          (loop thread)
 *     persist entries + hard state, one fdatasync  (disk thread, or the
 *                                                   loop for a small batch)
 *       meanwhile apply the committed entries that
 *       were already durable, answer writes         (loop thread)
 *     send update.messages_after_persist            (loop thread)
 *     apply the rest of update.committed, answer    (loop thread)
 *     answer reads whose index is applied
 *   raft_advance()
 *   zero-fill the WAL ahead                         (disk thread)
 *
 * While the disk thread persists, the core is frozen (the update's
 * pointers stay valid); whatever arrives meanwhile is copied into queues
 * and fed in at the next cycle, which is what batches writes into one
 * fsync.
 */
#include "bnode.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bnode_internal.h"
#include "datadir.h"
#include "nlog.h"
#include "transport.h"
#include "wal.h"

static const struct
{
    int code;
    const char *text;
} error_table[] = {
    {BNODE_EINVAL, "invalid argument"},
    {BNODE_ENOMEM, "out of memory"},
    {BNODE_ENOTLEADER, "not the leader"},
    {BNODE_EBUSY, "too much uncommitted work, retry later"},
    {BNODE_EDROPPED, "the write was overwritten by a new leader: not applied"},
    {BNODE_EUNKNOWN,
     "outcome unknown: leadership changed before the write "
     "was confirmed"},
    {BNODE_ENOREAD, "the read could not be confirmed by a leader"},
    {BNODE_ESTOPPED, "the node is shutting down"},
    {BNODE_ESTORAGE, "storage failed: the node has halted"},
    {BNODE_ETOOBIG, "command too large"},
    {BNODE_ECOMPACTED, "the revision was compacted"},
    {BNODE_ECLOCK, "the clock is too far behind the last ID minted"},
    {BNODE_ELEASENOTREADY, "a new leader does not know the lease clock yet"},
    {BNODE_ENOLEASE, "no such lease"},
    {BNODE_ELOCKLOST, "the claim on the lock ended while it waited"},
    {BNODE_ETIMEDOUT, "timed out waiting for the lock (claim withdrawn)"},
    {BNODE_ECONFPENDING, "another membership change is in progress"},
    {BNODE_ENOSPACE,
     "the store is over its quota: only deletes and "
     "compactions are taken"},
    {BNODE_EQUORUM,
     "a quorum of the Raft configuration looks reachable: not forced"},
    {BNODE_EMODE, "not allowed in the current replication mode"},
    {BNODE_ELAGGING,
     "this replica has not applied every entry it knows committed"},
};

const char *bnode_strerror(int code)
{
    for (size_t i = 0; i < sizeof(error_table) / sizeof(error_table[0]); i++) {
        if (error_table[i].code == code) {
            return error_table[i].text;
        }
    }
    return "unknown node error";
}

void bnode_options_default(struct bnode_options *opts)
{
    memset(opts, 0, sizeof(*opts));
    opts->cluster_id = 0xba11075ULL;
    opts->tick_ms = 10;
    opts->election_ticks = 30;
    opts->heartbeat_ticks = 3;
    opts->snapshot_every = 100000;
    opts->snapshot_trailing = 10000;
    opts->checkpoint_every = 50000;
    opts->checkpoint_idle_ms = 1000;
    opts->persist_inline_max = 8;
    opts->max_uncommitted_bytes = 64u << 20;
    opts->max_entry_bytes = KV_CMD_BYTES_MAX;
    opts->log_level = BNODE_LOG_INFO;
    opts->history_keep_revisions = BNODE_HISTORY_KEEP_DEFAULT;
    opts->scrub_bytes_per_sec = BNODE_SCRUB_BYTES_PER_SEC_DEFAULT;
    opts->digest_every_ms = BNODE_DIGEST_EVERY_MS_DEFAULT;
}

static uint64_t now_ms(struct bnode *node)
{
    return uv_now(node->loop);
}

static void drive(struct bnode *node);
static void on_idle(uv_idle_t *h);

/* Runs drive() once the loop has handled the current burst of events. */
static void kick(struct bnode *node)
{
    if (!node->idle_active && !node->stopping) {
        node->idle_active = true;
        uv_idle_start(&node->idle, on_idle);
    }
}

void bnode_kick(struct bnode *node)
{
    kick(node);
}

static void on_idle(uv_idle_t *h)
{
    struct bnode *node = h->data;
    node->idle_active = false;
    uv_idle_stop(h);
    drive(node);
    /* One bounded step of a pending history compaction per loop turn, so
     * that clients and peers are served between two steps. */
    if (space_compact_step(node)) {
        kick(node);
    }
}

/* ---- message copies ---------------------------------------------------- */

static struct queued_msg *copy_message(const struct raft_message *m)
{
    struct queued_msg *q = calloc(1, sizeof(*q));
    size_t blob = 0;
    if (q == NULL) {
        return NULL;
    }
    q->m = *m;
    if (m->type == RAFT_MSG_APPEND) {
        for (uint32_t i = 0; i < m->u.append.n_entries; i++) {
            blob += m->u.append.entries[i].len;
        }
        if (m->u.append.n_entries > 0) {
            q->entries = calloc(m->u.append.n_entries, sizeof(*q->entries));
            if (q->entries == NULL) {
                goto err;
            }
        }
    } else if (m->type == RAFT_MSG_SNAPSHOT) {
        blob = m->u.snapshot.len;
    }
    if (blob > 0 && (q->blob = malloc(blob)) == NULL) {
        goto err;
    }
    if (m->type == RAFT_MSG_APPEND) {
        size_t off = 0;
        for (uint32_t i = 0; i < m->u.append.n_entries; i++) {
            const struct raft_entry *e = &m->u.append.entries[i];
            q->entries[i] = *e;
            if (e->len > 0) {
                memcpy(q->blob + off, e->data, e->len);
                q->entries[i].data = q->blob + off;
                off += e->len;
            }
        }
        q->m.u.append.entries = q->entries;
    } else if (m->type == RAFT_MSG_SNAPSHOT && blob > 0) {
        memcpy(q->blob, m->u.snapshot.data, blob);
        q->m.u.snapshot.data = q->blob;
    }
    return q;
err:
    free(q->entries);
    free(q);
    return NULL;
}

static void free_message(struct queued_msg *q)
{
    free(q->entries);
    free(q->blob);
    free(q);
}

/* ---- transport callbacks ----------------------------------------------- */

static void on_recv(void *arg, const struct raft_message *m)
{
    struct bnode *node = arg;
    if (node->halted || node->stopping) {
        return;
    }
    rtt_on_recv(node, m);
    fallback_on_recv(node, m);
    if (!node->frozen) {
        (void)raft_step(node->raft, m);
        kick(node);
        return;
    }
    struct queued_msg *q = copy_message(m);
    if (q == NULL) {
        return; /* dropped like a lost packet: Raft retransmits */
    }
    q->ticks_before = node->pending_ticks;
    if (node->msgs_tail != NULL) {
        node->msgs_tail->next = q;
    } else {
        node->msgs_head = q;
    }
    node->msgs_tail = q;
}

static void on_unreachable(void *arg, raft_id id)
{
    struct bnode *node = arg;
    if (!node->frozen && !node->halted) {
        raft_report_unreachable(node->raft, id);
    }
}

static void on_tick(uv_timer_t *t)
{
    struct bnode *node = t->data;
    /* A tick that comes late measures a stall of the loop thread (work on
     * the loop, or a blocked call): heartbeats and votes wait as long. */
    uint64_t now = now_ms(node);
    uint64_t due = node->last_tick_ms + node->opts.tick_ms;
    if (node->last_tick_ms != 0 && now > due) {
        uint64_t late = now - due;
        if (late > node->loop_stall_max_ms) {
            node->loop_stall_max_ms = late;
        }
        if (late >= LOOP_STALL_MS) {
            node->loop_stalls++;
        }
    }
    node->last_tick_ms = now;
    node->pending_ticks++;
    kick(node);
}

/* ---- completing requests ----------------------------------------------- */

static void finish_write(struct bnode *node,
                         struct pending_write *w,
                         int status,
                         const struct kv_entry_result *res)
{
    node->n_writes--;
    w->cb(w->arg, status, res);
    free(w);
}

/* Entries were applied: answer the proposals they decide. */
/* @committed_ns: when the entries were known committed (uv_hrtime()). */
static void complete_writes(struct bnode *node,
                            const struct raft_entry *entries,
                            const struct kv_apply_result *res,
                            uint64_t committed_ns)
{
    for (size_t i = 0; i < res->n_entries; i++) {
        const struct kv_entry_result *r = &res->entries[i];
        while (node->writes_head != NULL &&
               node->writes_head->index <= r->index) {
            struct pending_write *w = node->writes_head;
            node->writes_head = w->next;
            if (node->writes_head == NULL) {
                node->writes_tail = NULL;
            }
            if (w->index == r->index && w->term == entries[i].term) {
                histo_add(&node->histos.commit_us,
                          histo_us(committed_ns - w->started_ns));
                finish_write(node, w, 0, r);
            } else {
                /* Another leader's entry took its index: ours is gone. */
                finish_write(node, w, BNODE_EDROPPED, NULL);
            }
        }
    }
}

void bnode_fail_old_writes(struct bnode *node,
                           uint64_t age_ms,
                           raft_index commit)
{
    uint64_t now = now_ms(node);
    while (node->writes_head != NULL && node->writes_head->index > commit &&
           now - node->writes_head->started_ms > age_ms) {
        struct pending_write *w = node->writes_head;
        node->writes_head = w->next;
        if (node->writes_head == NULL) {
            node->writes_tail = NULL;
        }
        finish_write(node, w, BNODE_EUNKNOWN, NULL);
    }
}

uint64_t bnode_oldest_write_ms(struct bnode *node, raft_index *index)
{
    if (node->writes_head == NULL) {
        return 0;
    }
    *index = node->writes_head->index;
    return now_ms(node) - node->writes_head->started_ms;
}

static void fail_all_writes(struct bnode *node, int status)
{
    while (node->writes_head != NULL) {
        struct pending_write *w = node->writes_head;
        node->writes_head = w->next;
        finish_write(node, w, status, NULL);
    }
    node->writes_tail = NULL;
    while (node->props_head != NULL) {
        struct queued_proposal *p = node->props_head;
        node->props_head = p->next;
        p->cb(p->arg, status == BNODE_EUNKNOWN ? BNODE_ESTOPPED : status, NULL);
        free(p->data);
        free(p);
    }
    node->props_tail = NULL;
}

/* Answers reads whose index is applied (all stale ones), in order. */
static void complete_reads(struct bnode *node)
{
    raft_index applied = raft_applied_index(node->raft);
    struct pending_read **pp = &node->reads_head;
    struct pending_read *prev = NULL;
    while (*pp != NULL) {
        struct pending_read *r = *pp;
        if (!r->linearizable || (r->index_known && r->index <= applied)) {
            *pp = r->next;
            if (node->reads_tail == r) {
                node->reads_tail = prev;
            }
            node->n_reads--;
            r->cb(r->arg, 0);
            free(r);
            continue;
        }
        prev = r;
        pp = &r->next;
    }
}

static void fail_reads(struct bnode *node, uint64_t ctx, int status)
{
    struct pending_read **pp = &node->reads_head;
    struct pending_read *prev = NULL;
    while (*pp != NULL) {
        struct pending_read *r = *pp;
        if (ctx == 0 || r->ctx == ctx) {
            *pp = r->next;
            if (node->reads_tail == r) {
                node->reads_tail = prev;
            }
            node->n_reads--;
            r->cb(r->arg, status);
            free(r);
            continue;
        }
        prev = r;
        pp = &r->next;
    }
}

static void read_states(struct bnode *node,
                        const struct raft_read_state *rs,
                        size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (!rs[i].ok) {
            fail_reads(node, rs[i].ctx, BNODE_ENOREAD);
            continue;
        }
        for (struct pending_read *r = node->reads_head; r; r = r->next) {
            if (r->ctx == rs[i].ctx) {
                r->index_known = true;
                r->index = rs[i].index;
            }
        }
    }
}

/* ---- feeding the core -------------------------------------------------- */

static void track_write(struct bnode *node,
                        raft_index index,
                        raft_term term,
                        struct pending_write *w,
                        bnode_write_cb cb,
                        void *arg)
{
    w->index = index;
    w->term = term;
    w->started_ms = now_ms(node);
    w->started_ns = uv_hrtime();
    w->cb = cb;
    w->arg = arg;
    w->next = NULL;
    if (node->writes_tail != NULL) {
        node->writes_tail->next = w;
    } else {
        node->writes_head = w;
    }
    node->writes_tail = w;
    node->n_writes++;
}

static int propose_now(struct bnode *node,
                       const uint8_t *data,
                       size_t len,
                       bnode_write_cb cb,
                       void *arg)
{
    raft_index index;
    raft_term term;
    struct pending_write *w = malloc(sizeof(*w));
    if (w == NULL) {
        return BNODE_ENOMEM;
    }
    int rv = raft_propose(node->raft, data, (uint32_t)len, &index, &term);
    if (rv != 0) {
        free(w);
        /* Counted here, where queued proposals are refused too. */
        switch (rv) {
        case RAFT_ENOTLEADER:
            node->refused_not_leader++;
            return BNODE_ENOTLEADER;
        case RAFT_EBUSY:
        case RAFT_ETRANSFER:
            node->refused_busy++;
            return BNODE_EBUSY;
        case RAFT_ETOOBIG:
            return BNODE_ETOOBIG;
        default:
            return BNODE_ENOMEM;
        }
    }
    track_write(node, index, term, w, cb, arg);
    return 0;
}

static int conf_change_now(struct bnode *node,
                           enum raft_conf_change change,
                           raft_id id,
                           bnode_write_cb cb,
                           void *arg)
{
    raft_index index;
    struct pending_write *w = malloc(sizeof(*w));
    if (w == NULL) {
        return BNODE_ENOMEM;
    }
    int rv = raft_propose_conf_change(node->raft, change, id, &index);
    if (rv != 0) {
        free(w);
        switch (rv) {
        case RAFT_ENOTLEADER:
            return BNODE_ENOTLEADER;
        case RAFT_ECONFPENDING:
        case RAFT_ETRANSFER:
            return BNODE_ECONFPENDING;
        case RAFT_ENOMEM:
            return BNODE_ENOMEM;
        default:
            return BNODE_EINVAL;
        }
    }
    nlog(node, BNODE_LOG_INFO,
         "proposed membership change %d of node %llu at %llu", (int)change,
         (unsigned long long)id, (unsigned long long)index);
    track_write(node, index, raft_current_term(node->raft), w, cb, arg);
    return 0;
}

static void tick_once(struct bnode *node)
{
    raft_tick(node->raft);
    ckpt_on_tick(node);
    bnode_watch_tick(node);
    space_on_tick(node);
    scrub_on_tick(node);
    lag_on_tick(node);
    bnode_lease_tick(node);
    fallback_on_tick(node);
}

static void feed(struct bnode *node)
{
    /* Messages and ticks in the order they happened: after a slow fsync
     * many ticks are due at once, and fed all before (or all after) the
     * messages that arrived meanwhile they would tell the core something
     * else than what happened. Messages first (as before) made a follower
     * whose leader's heartbeats kept arriving campaign after them; ticks
     * first would make a leader's CheckQuorum miss answers that came. */
    unsigned fed = 0;
    while (node->msgs_head != NULL) {
        struct queued_msg *q = node->msgs_head;
        node->msgs_head = q->next;
        for (; fed < q->ticks_before && fed < node->pending_ticks; fed++) {
            tick_once(node);
        }
        (void)raft_step(node->raft, &q->m);
        free_message(q);
    }
    node->msgs_tail = NULL;
    for (; fed < node->pending_ticks; fed++) {
        tick_once(node);
    }
    node->pending_ticks = 0;
    while (node->props_head != NULL) {
        struct queued_proposal *p = node->props_head;
        node->props_head = p->next;
        int rv =
            p->conf_change != 0
                ? conf_change_now(node, (enum raft_conf_change)p->conf_change,
                                  p->conf_id, p->cb, p->arg)
                : propose_now(node, p->data, p->len, p->cb, p->arg);
        if (rv != 0) {
            p->cb(p->arg, rv, NULL);
        }
        free(p->data);
        free(p);
    }
    node->props_tail = NULL;
    /* One ReadIndex round serves every linearizable read asked since the
     * last one. */
    uint64_t ctx = 0;
    for (struct pending_read *r = node->reads_head; r; r = r->next) {
        if (r->linearizable && r->ctx == 0) {
            if (ctx == 0) {
                ctx = ++node->next_read_ctx;
            }
            r->ctx = ctx;
        }
    }
    if (ctx != 0 && raft_read_index(node->raft, ctx) != 0) {
        fail_reads(node, ctx, BNODE_ENOREAD);
    }
}

/* ---- persistence (worker thread) --------------------------------------- */

/* A new term or vote: made durable by replacing the hard state file. */
static bool term_or_vote(const struct bnode *node, const struct raft_update *u)
{
    return u->hard_state_changed && (u->hard_state.term != node->disk_hs.term ||
                                     u->hard_state.vote != node->disk_hs.vote);
}

/* Whether the batch must reach the disk before its acknowledgements leave.
 * A change of the commit index alone does not: it is only a hint for a
 * faster restart (raft_restore() copes with a stale one), so it rides along
 * with the next batch that syncs anyway instead of costing an fsync of its
 * own. */
static bool needs_disk(const struct bnode *node, const struct raft_update *u)
{
    /* Snapshot chunks and installs are made durable by snap_receive() on
     * the loop thread before this. */
    return u->n_entries > 0 || term_or_vote(node, u);
}

/* Bytes of entries a batch persisted on the loop may carry. */
#define INLINE_BYTES_MAX (64u * 1024u)

/* Whether the batch is small enough to persist on the loop thread: one
 * pwrite and one fdatasync of a few records (about as long as the two
 * thread hand-offs it saves), never a hard state file replacement. */
static bool persist_inline(const struct bnode *node,
                           const struct raft_update *u)
{
    uint64_t bytes = 0;
    if (u->n_entries > node->opts.persist_inline_max || term_or_vote(node, u)) {
        return false;
    }
    for (size_t i = 0; i < u->n_entries; i++) {
        bytes += u->entries[i].len;
    }
    return bytes <= INLINE_BYTES_MAX;
}

/* Appends the update's entries and hard state and syncs them with one
 * fdatasync; on the disk thread, or on the loop for a small batch. The
 * zeros ahead (persist_after) come once the acknowledgements are out. */
static int persist_batch(void *arg)
{
    struct bnode *node = arg;
    const struct raft_update *u = &node->update;
    int rv = 0;

    if (u->n_entries > 0) {
        rv = wal_append(node->wal, u->entries, u->n_entries);
    }
    if (rv == 0 && u->hard_state_changed) {
        rv = wal_save_hard_state(node->wal, &u->hard_state);
    }
    if (rv == 0 && !((node->opts.breaks & BNODE_BREAK_LEADER_UNSYNCED) &&
                     raft_state_of(node->raft) == RAFT_LEADER)) {
        uint64_t t0 = uv_hrtime();
        rv = wal_sync(node->wal, NULL); /* the break: docs/jepsen.md */
        node->sync_ns = uv_hrtime() - t0;
    }
    if (rv == 0 && u->hard_state_changed) {
        node->disk_hs = u->hard_state;
    }
    if (rv != 0) {
        snprintf(node->work_err, sizeof(node->work_err), "%s",
                 wal_errmsg(node->wal));
        return BNODE_ESTORAGE;
    }
    return 0;
}

/* On the loop, once a batch persist_batch() made durable is back. */
static void observe_batch(struct bnode *node)
{
    histo_add(&node->histos.wal_fsync_us, histo_us(node->sync_ns));
    histo_add(&node->histos.batch_entries, node->update.n_entries);
}

static void persist_after(void *arg)
{
    struct bnode *node = arg;
    wal_prepare_next(node->wal);
}

static void after_persist(void *arg, int status);

static const struct persist_ops persist_ops = {
    persist_batch,
    persist_after,
    after_persist,
};

/* ---- the cycle --------------------------------------------------------- */

void bnode_halt(struct bnode *node, const char *what)
{
    /* A failed fsync or apply cannot be retried and trusted (the kernel may
     * have dropped the dirty pages): stop taking part, refuse everything
     * from now on, and tell the program, which decides what to do (ballotd
     * stops and exits, so that a supervisor restarts it from disk). The
     * library never ends the process. */
    if (node->halted) {
        return;
    }
    nlog(node, BNODE_LOG_ERROR, "halting: %s", what);
    node->halted = true;
    fail_all_writes(node, BNODE_EUNKNOWN);
    fail_reads(node, 0, BNODE_ENOREAD);
    if (node->opts.halt != NULL) {
        node->opts.halt(node->opts.halt_arg, what);
    }
}

static void send_all(struct bnode *node,
                     const struct raft_message *msgs,
                     size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (msgs[i].type == RAFT_MSG_SNAPSHOT) {
            snap_send(node, &msgs[i]); /* fills in the bytes */
            continue;
        }
        rtt_on_send(node, &msgs[i]);
        (void)transport_send(node->transport, &msgs[i]);
    }
}

static void soft_state(struct bnode *node, const struct raft_update *u)
{
    if (!u->soft_state_changed) {
        return;
    }
    const char *names[] = {"?", "follower", "pre-candidate", "candidate",
                           "leader"};
    nlog(node, BNODE_LOG_INFO, "now %s in term %llu, leader %llu",
         names[u->soft_state.state <= RAFT_LEADER ? u->soft_state.state : 0],
         (unsigned long long)raft_current_term(node->raft),
         (unsigned long long)u->soft_state.leader);
}

/* Applies @n committed entries to LMDB in one transaction and answers the
 * proposals they decide. */
static void apply_committed(struct bnode *node,
                            const struct raft_entry *entries,
                            size_t n)
{
    struct kv_apply_result res;
    if (n == 0) {
        return;
    }
    memset(&res, 0, sizeof(res));
    uint64_t t0 = uv_hrtime();
    int rv = kv_apply(node->kv, entries, n, &res);
    /* A full map is not a full disk: map more and apply again (nothing of
     * the failed batch was applied). */
    for (int grows = 0; rv == KV_EFULL && grows < 8; grows++) {
        if (space_grow_map(node) != 0) {
            break;
        }
        rv = kv_apply(node->kv, entries, n, &res);
    }
    /* The disk room a batch reserves before it starts grows with the
     * batch (kv_reserve()): on a nearly full disk, smaller batches may
     * still fit where a long one (the log replayed at a restart) does
     * not. Nothing of the refused batch was applied. */
    if (rv == KV_ENOSPC && n > 1) {
        kv_apply_result_free(&res);
        apply_committed(node, entries, n / 2);
        if (!node->halted) {
            apply_committed(node, entries + n / 2, n - n / 2);
        }
        return;
    }
    if (rv != 0) {
        char msg[256];
        kv_errmsg(node->kv, msg, sizeof(msg));
        kv_apply_result_free(&res);
        if (scrub_check_damage(node)) {
            return; /* halted with the operator's instructions */
        }
        bnode_halt(node, msg);
        return;
    }
    /* A recorded address is known before anything that follows it in the
     * log (the change adding the member) is answered. */
    if (bnode_members_touched(&res)) {
        (void)bnode_members_sync(node);
    }
    histo_add(&node->histos.apply_us, histo_us(uv_hrtime() - t0));
    space_after_apply(node, &res);
    scrub_after_apply(node, &res);
    complete_writes(node, entries, &res, t0);
    kv_apply_result_free(&res);
    node->entries_applied += n;
    ckpt_after_apply(node, n);
    bnode_watch_deliver(node);
}

/* Applies, ahead of step 4, the committed entries of the update that are
 * already durable here: those before its first new entry, which earlier
 * batches persisted (none when a snapshot is being installed, which must
 * come first). Committed and durable, they may be applied and answered
 * while this batch is persisted, one fsync sooner. */
static void apply_early(struct bnode *node)
{
    const struct raft_update *u = &node->update;
    raft_index first_new = u->n_entries > 0 ? u->entries[0].index : 0;
    size_t n = 0;
    if (u->snapshot != NULL || u->n_snapshot_chunks > 0) {
        return;
    }
    while (n < u->n_committed &&
           (first_new == 0 || u->committed[n].index < first_new)) {
        n++;
    }
    apply_committed(node, u->committed, n);
    node->applied_early = n;
}

/* Whether the update commits an entry a client of this node waits for. */
static bool decides_writes(const struct bnode *node,
                           const struct raft_update *u)
{
    return u->n_committed > 0 && node->writes_head != NULL &&
           node->writes_head->index <= u->committed[u->n_committed - 1].index;
}

/* Steps 3-6 of the cycle, on the loop thread once the batch is durable. */
static void finish_cycle(struct bnode *node)
{
    struct raft_update *u = &node->update;
    size_t early = node->applied_early;
    node->applied_early = 0;
    send_all(node, u->messages_after_persist, u->n_messages_after_persist);
    if (u->n_committed > early) {
        apply_committed(node, u->committed + early, u->n_committed - early);
    }
    read_states(node, u->reads, u->n_reads);
    raft_advance(node->raft, u);
    node->frozen = false;
    complete_reads(node);
    snap_maybe_create(node);
}

/* The disk thread made the update durable. */
static void after_persist(void *arg, int status)
{
    struct bnode *node = arg;
    node->batches_persisted++;
    if (status != 0) {
        bnode_halt(node, node->work_err);
        return;
    }
    observe_batch(node);
    /* The batch is durable: finish it even when stopping, so its
     * acknowledgements and applied writes reach peers and clients. */
    finish_cycle(node);
    if (node->stopping) {
        bnode_stop_now(node);
        return;
    }
    drive(node);
}

static void expire_writes(struct bnode *node)
{
    /* Without a leader the fate of a write may stay unknown for long;
     * answer "unknown" rather than keep the client waiting forever. */
    uint64_t limit =
        (uint64_t)node->opts.tick_ms * node->opts.election_ticks * 10;
    if (raft_state_of(node->raft) == RAFT_LEADER) {
        return;
    }
    uint64_t now = now_ms(node);
    while (node->writes_head != NULL &&
           now - node->writes_head->started_ms > limit) {
        struct pending_write *w = node->writes_head;
        node->writes_head = w->next;
        if (node->writes_head == NULL) {
            node->writes_tail = NULL;
        }
        finish_write(node, w, BNODE_EUNKNOWN, NULL);
    }
}

/* Steps 2-6 for the frozen update once its snapshot (if any) is
 * installed: persist (on the loop for a small batch, else on the disk
 * thread), then finish the cycle. Returns true if the cycle is finished,
 * false if the disk thread (or a halt) has it. */
static bool persist_and_finish(struct bnode *node)
{
    struct raft_update *u = &node->update;
    if (!needs_disk(node, u)) {
        finish_cycle(node);
        return true;
    }
    if (persist_inline(node, u) && persist_claim(node->persist)) {
        /* A small batch, and the disk thread is idle: persist it here,
         * then send, apply and answer; the thread zero-fills ahead. */
        node->batches_persisted++;
        if (persist_batch(node) != 0) {
            bnode_halt(node, node->work_err);
            return false;
        }
        observe_batch(node);
        finish_cycle(node);
        persist_release_after(node->persist);
        return true;
    }
    persist_submit(node->persist);
    apply_early(node);
    return false;
}

/* The frozen update completed a snapshot that does not verify. The core
 * took it as its state already, but nothing of the update is durable or
 * acknowledged: drop it, as a crash before persisting would, and restart
 * the core from the disk. The leader hears no acknowledgement and sends
 * the snapshot again. */
static void refuse_snapshot(struct bnode *node)
{
    char err[512];
    node->snaps_refused++;
    node->frozen = false;
    node->applied_early = 0;
    /* Reads asked of the dropped core are never answered by the new one. */
    struct pending_read **pp = &node->reads_head;
    struct pending_read *prev = NULL;
    while (*pp != NULL) {
        struct pending_read *r = *pp;
        if (r->ctx != 0) {
            *pp = r->next;
            if (node->reads_tail == r) {
                node->reads_tail = prev;
            }
            node->n_reads--;
            r->cb(r->arg, BNODE_ENOREAD);
            free(r);
            continue;
        }
        prev = r;
        pp = &r->next;
    }
    persist_claim_wait(node->persist);
    int rv = bnode_restart_core(node, err, sizeof(err));
    persist_release(node->persist);
    if (rv != 0) {
        bnode_halt(node, err);
        return;
    }
    nlog(node, BNODE_LOG_WARN,
         "refused a snapshot that does not verify; the leader "
         "sends it again");
}

/* Runs the frozen update's install that waited for workers, once none uses
 * the store, and goes on with its cycle. */
void bnode_install_resume(struct bnode *node)
{
    if (!node->install_waiting || !snap_install_ready(node)) {
        return;
    }
    if (node->stopping || node->halted) {
        /* Nothing of the update is durable: drop it; bnode_stop_now()
         * runs once the workers are gone. */
        node->install_waiting = false;
        node->frozen = false;
        return;
    }
    int rv = snap_install(node, &node->update);
    if (rv == SNAP_REFUSED) {
        refuse_snapshot(node);
    } else if (rv != 0 || !persist_and_finish(node)) {
        return;
    }
    kick(node);
}

static void drive(struct bnode *node)
{
    if (node->frozen || node->halted || node->stopping) {
        return;
    }
    snap_maybe_taken(node);
    feed(node);
    expire_writes(node);
    complete_reads(node);
    for (int rounds = 0; rounds < 64; rounds++) {
        struct raft_update *u = &node->update;
        if (!raft_ready(node->raft, u)) {
            return;
        }
        node->frozen = true;
        soft_state(node, u);
        bool disk = needs_disk(node, u);
        bool snap = u->n_snapshot_chunks > 0 || u->snapshot != NULL;
        /* Nothing to persist: answer the clients this update decides
         * before sending its messages (commit indexes, heartbeats), which
         * would compete with the answers for the CPU and the wire. */
        if (!disk && !snap && decides_writes(node, u)) {
            apply_early(node);
        }
        send_all(node, u->messages, u->n_messages);
        if (snap) {
            int rv = snap_receive(node, u);
            if (rv == SNAP_REFUSED) {
                refuse_snapshot(node);
                if (node->halted) {
                    return;
                }
                continue;
            }
            if (rv != 0) {
                return; /* SNAP_WAIT: resumed by a worker; or halted */
            }
        }
        if (!persist_and_finish(node)) {
            return;
        }
    }
    kick(node); /* more work: continue after other events had a turn */
}

/* ---- public API -------------------------------------------------------- */

/* Runs a proposal (a command, or a membership change when @conf_change is
 * not 0) now, or queues it until the batch on the worker is persisted. */
static int submit(struct bnode *node,
                  const uint8_t *cmd,
                  size_t len,
                  int conf_change,
                  raft_id id,
                  bnode_write_cb cb,
                  void *arg)
{
    if (!node->frozen) {
        int rv = conf_change != 0
                     ? conf_change_now(node, (enum raft_conf_change)conf_change,
                                       id, cb, arg)
                     : propose_now(node, cmd, len, cb, arg);
        if (rv == 0) {
            kick(node);
        }
        return rv;
    }
    struct queued_proposal *p = calloc(1, sizeof(*p));
    if (p == NULL) {
        return BNODE_ENOMEM;
    }
    if (conf_change == 0) {
        p->data = malloc(len ? len : 1);
        if (p->data == NULL) {
            free(p);
            return BNODE_ENOMEM;
        }
        memcpy(p->data, cmd, len);
        p->len = len;
    }
    p->conf_change = conf_change;
    p->conf_id = id;
    p->cb = cb;
    p->arg = arg;
    if (node->props_tail != NULL) {
        node->props_tail->next = p;
    } else {
        node->props_head = p;
    }
    node->props_tail = p;
    return 0;
}

int bnode_propose(struct bnode *node,
                  const uint8_t *cmd,
                  size_t len,
                  bnode_write_cb cb,
                  void *arg)
{
    if (node->stopping || node->halted) {
        return BNODE_ESTOPPED;
    }
    if (len > node->opts.max_entry_bytes) {
        node->refused_too_big++;
        return BNODE_ETOOBIG;
    }
    if (raft_state_of(node->raft) != RAFT_LEADER) {
        node->refused_not_leader++;
        return BNODE_ENOTLEADER;
    }
    if (space_refuses(node, cmd, len)) {
        node->refused_quota++;
        return BNODE_ENOSPACE;
    }
    return submit(node, cmd, len, 0, 0, cb, arg);
}

const struct bnode_member *bnode_member_addr(struct bnode *node, raft_id id)
{
    for (unsigned i = 0; i < node->opts.n_members; i++) {
        if (node->opts.members[i].id == id) {
            return &node->opts.members[i];
        }
    }
    return NULL;
}

int bnode_conf_change(struct bnode *node,
                      enum raft_conf_change change,
                      raft_id id,
                      bnode_write_cb cb,
                      void *arg)
{
    if (node->stopping || node->halted) {
        return BNODE_ESTOPPED;
    }
    if (change < RAFT_ADD_LEARNER || change > RAFT_REMOVE) {
        return BNODE_EINVAL;
    }
    /* A member we cannot reach could never catch up: its addresses must be
     * known (the transport already connects to every listed member). */
    if (change != RAFT_REMOVE && bnode_member_addr(node, id) == NULL) {
        return BNODE_EINVAL;
    }
    if (raft_state_of(node->raft) != RAFT_LEADER) {
        return BNODE_ENOTLEADER;
    }
    return submit(node, NULL, 0, (int)change, id, cb, arg);
}

int bnode_read(struct bnode *node,
               bool linearizable,
               bnode_read_cb cb,
               void *arg)
{
    if (node->stopping || node->halted) {
        return BNODE_ESTOPPED;
    }
    if (linearizable && raft_leader(node->raft) == 0) {
        return BNODE_ENOREAD;
    }
    struct pending_read *r = calloc(1, sizeof(*r));
    if (r == NULL) {
        return BNODE_ENOMEM;
    }
    r->linearizable =
        linearizable && !(node->opts.breaks & BNODE_BREAK_STALE_READS);
    r->cb = cb;
    r->arg = arg;
    if (node->reads_tail != NULL) {
        node->reads_tail->next = r;
    } else {
        node->reads_head = r;
    }
    node->reads_tail = r;
    node->n_reads++;
    /* Answered in a later loop turn, never from inside the call. */
    kick(node);
    return 0;
}

unsigned bnode_breaks(const struct bnode *node)
{
    return node->opts.breaks;
}

struct kv_store *bnode_kv(struct bnode *node)
{
    return node->kv;
}

void bnode_status(struct bnode *node, struct bnode_status *out)
{
    struct kv_status ks;
    memset(out, 0, sizeof(*out));
    out->id = node->opts.id;
    out->leader = raft_leader(node->raft);
    out->state = (uint8_t)raft_state_of(node->raft);
    out->term = raft_current_term(node->raft);
    out->commit = raft_commit_index(node->raft);
    out->applied = raft_applied_index(node->raft);
    out->last_index = raft_last_index(node->raft);
    out->first_index = raft_first_index(node->raft);
    out->snapshot_index = raft_snapshot_of(node->raft)->index;
    if (kv_status(node->kv, &ks) == 0) {
        out->revision = ks.revision;
        out->db_bytes = ks.db_bytes;
        out->compact_revision = ks.compact_revision;
        out->history_events = ks.history_events;
        out->keys = ks.keys;
    }
    scrub_status(node, out);
    out->db_free_bytes = node->space.free_bytes;
    out->map_bytes = node->space.map_bytes;
    out->quota_bytes = node->opts.quota_bytes;
    out->over_quota = node->over_quota;
    out->map_grows = node->map_grows;
    out->compaction_pending = node->compact_pending;
    out->compactions = node->compactions;
    out->conf = *raft_conf_of(node->raft);
    if (out->state == RAFT_LEADER) {
        for (uint32_t i = 0; i < out->conf.n && i < RAFT_CONF_MAX; i++) {
            raft_id m = out->conf.members[i].id;
            out->match[i] = m == out->id ? out->last_index
                                         : raft_match_index(node->raft, m);
            out->lag_ms[i] = m == out->id ? 0 : lag_ms(node, out->match[i]);
            out->inflight[i] = raft_inflight_count(node->raft, m);
        }
    }
    out->proposals_pending = node->n_writes;
    out->reads_pending = node->n_reads;
    out->batches_persisted = node->batches_persisted;
    out->entries_applied = node->entries_applied;
    out->halted = node->halted;
    out->loop_stall_max_ms = node->loop_stall_max_ms;
    out->loop_stalls = node->loop_stalls;
    if (node->transport != NULL) {
        struct transport_stats ts;
        transport_stats(node->transport, &ts);
        out->peer_rejected_hellos = ts.rejected_hellos;
        out->peer_auth_failures = ts.auth_failures;
        out->peer_bad_senders = ts.bad_senders;
        out->peer_bad_frames = ts.bad_frames;
        out->peer_handshake_timeouts = ts.handshake_timeouts;
        out->peer_cert_mismatches = ts.cert_mismatches;
        out->peer_connections = ts.connections;
    }
    out->refused_busy = node->refused_busy;
    out->refused_not_leader = node->refused_not_leader;
    out->refused_quota = node->refused_quota;
    out->refused_too_big = node->refused_too_big;
    if (node->wal != NULL) {
        out->wal_segments = wal_segment_count(node->wal);
        out->wal_bytes = wal_bytes(node->wal);
    }
    const struct raft_stats *rs = raft_stats_of(node->raft);
    out->raft_msgs_rejected = rs->msgs_rejected;
    out->raft_msgs_bad_term = rs->msgs_bad_term;
    out->elections = rs->elections_started;
    out->leader_changes = rs->leader_changes;
    fallback_status(node, out);
}

const struct bnode_histos *bnode_histos(const struct bnode *node)
{
    return &node->histos;
}

const char *bnode_leader_addr(struct bnode *node)
{
    raft_id leader = raft_leader(node->raft);
    for (unsigned i = 0; leader != 0 && i < node->opts.n_members; i++) {
        const struct bnode_member *m = &node->opts.members[i];
        if (m->id == leader) {
            snprintf(node->leader_addr, sizeof(node->leader_addr), "%s:%d",
                     m->host, m->client_port);
            return node->leader_addr;
        }
    }
    return NULL;
}

int bnode_snowflake(struct bnode *node,
                    uint64_t *out,
                    size_t n,
                    uint64_t *behind_ms)
{
    if (!node->snowflake_ok) {
        return BNODE_EINVAL;
    }
    int rv = snowflake_next(&node->snowflake, out, n, behind_ms);
    switch (rv) {
    case 0:
        return 0;
    case SNOWFLAKE_ECLOCK:
        return BNODE_ECLOCK;
    case SNOWFLAKE_EIO:
        return BNODE_ESTORAGE;
    default:
        return BNODE_EINVAL;
    }
}

int bnode_transfer(struct bnode *node, raft_id target)
{
    if (node->frozen) {
        return BNODE_EBUSY;
    }
    int rv = raft_transfer_leadership(node->raft, target);
    switch (rv) {
    case 0:
        kick(node);
        return 0;
    case RAFT_ENOTLEADER:
        return BNODE_ENOTLEADER;
    default:
        return BNODE_EINVAL;
    }
}

/* ---- start and stop ---------------------------------------------------- */

static void free_persist(struct persist *p)
{
    free(p);
}

int bnode_start(uv_loop_t *loop,
                const struct bnode_options *opts,
                struct bnode **out,
                char *errmsg,
                size_t errmsg_len)
{
    struct raft_config cfg;
    const struct bnode_member *self = NULL;
    int rv;

    for (unsigned i = 0; i < opts->n_members; i++) {
        if (opts->members[i].id == opts->id) {
            self = &opts->members[i];
        }
    }
    if (opts->id == 0 || self == NULL || opts->data_dir == NULL ||
        opts->tick_ms == 0) {
        bnode_errorf(errmsg, errmsg_len, "%s",
                     "invalid options: the node must be one of the members");
        return BNODE_EINVAL;
    }
    struct bnode *node = calloc(1, sizeof(*node));
    if (node == NULL) {
        return BNODE_ENOMEM;
    }
    node->loop = loop;
    node->opts = *opts;
    snprintf(node->data_dir, sizeof(node->data_dir), "%s", opts->data_dir);
    snprintf(node->snap_dir, sizeof(node->snap_dir), "%s/%s", opts->data_dir,
             DATADIR_SNAP);
    snprintf(node->export_dir, sizeof(node->export_dir), "%s/%s",
             opts->data_dir, DATADIR_EXPORT);
    node->opts.data_dir = node->data_dir;

    raft_config_default(&cfg, opts->id, opts->id * 7919 + uv_hrtime());
    cfg.election_ticks = opts->election_ticks;
    cfg.heartbeat_ticks = opts->heartbeat_ticks;
    cfg.max_uncommitted_bytes = opts->max_uncommitted_bytes;
    cfg.max_entry_bytes = opts->max_entry_bytes;
    cfg.snapshot_trailing = opts->snapshot_trailing;
    /* A forwarded read is asked again after an election timeout without
     * an answer, and fails (the client gets TRYAGAIN) after ten, the bound
     * a write's unknown outcome has too: ticks that queued while the node
     * was busy (a long fsync, a catch-up) count at once, so a shorter
     * bound fails reads of a slow follower that would be answered. */
    cfg.read_retry_ticks = opts->election_ticks;
    cfg.read_timeout_ticks = 10 * opts->election_ticks;
    if (opts->breaks & BNODE_BREAK_LEARNERS_VOTE) {
        cfg.breaks |= RAFT_BREAK_LEARNERS_VOTE; /* docs/jepsen.md */
    }
    node->raft_cfg = cfg;
    rv = raft_node_create(&cfg, &node->raft);
    if (rv != 0) {
        bnode_errorf(errmsg, errmsg_len, "raft: %s", raft_strerror(rv));
        free(node);
        return BNODE_EINVAL;
    }
    space_configure(node);
    rv = bnode_open_storage(node, errmsg, errmsg_len);
    if (rv != 0) {
        goto err;
    }
    space_open(node);
    if (scrub_open(node) != 0) {
        bnode_errorf(errmsg, errmsg_len, "scrub: out of memory");
        rv = BNODE_ENOMEM;
        goto err;
    }
    if (opts->id <= SNOWFLAKE_NODE_MAX) {
        char path[sizeof(node->data_dir) + 16];
        snprintf(path, sizeof(path), "%s/snowflake", node->data_dir);
        rv = snowflake_open(&node->snowflake, opts->id, path, NULL, NULL);
        if (rv != 0) {
            bnode_errorf(errmsg, errmsg_len,
                         "%s: unreadable ID high-water mark", path);
            rv = BNODE_ESTORAGE;
            goto err;
        }
        node->snowflake_ok = true;
    }
    node->persist = calloc(1, sizeof(*node->persist));
    if (node->persist == NULL ||
        persist_start(node->persist, loop, &persist_ops, node) != 0) {
        free(node->persist);
        node->persist = NULL;
        bnode_errorf(errmsg, errmsg_len, "%s", "cannot start the disk thread");
        rv = BNODE_ENOMEM;
        goto err;
    }

    struct transport_options to;
    memset(&to, 0, sizeof(to));
    to.cluster_id = opts->cluster_id;
    to.secret = opts->peer_secret;
    to.secret_len = opts->peer_secret_len;
    to.insecure = opts->insecure_peers;
    to.tls = opts->peer_tls;
    to.self = opts->id;
    to.listen_host = self->host;
    to.listen_port = self->peer_port;
    to.send_queue_bytes_max = 256u << 20;
    to.max_entries = 65536;
    to.max_entry_bytes = opts->max_entry_bytes;
    to.on_recv = on_recv;
    to.on_unreachable = on_unreachable;
    to.arg = node;
    rv = transport_create(loop, &to, &node->transport, errmsg, errmsg_len);
    if (rv != 0) {
        /* The disk thread stops now; its handle closes at the next loop
         * turn and frees it then. */
        persist_close(node->persist, free_persist);
        node->persist = NULL;
        rv = BNODE_EINVAL;
        goto err;
    }
    for (unsigned i = 0; i < opts->n_members; i++) {
        const struct bnode_member *m = &opts->members[i];
        if (m->id != opts->id) {
            (void)transport_add_peer(node->transport, m->id, m->host,
                                     m->peer_port);
        }
    }
    /* Members added online, as recorded in the log. */
    rv = bnode_members_sync(node);
    if (rv != 0) {
        bnode_errorf(errmsg, errmsg_len, "%s",
                     "could not read the member addresses from the store");
        goto err;
    }
    uv_timer_init(loop, &node->tick_timer);
    node->tick_timer.data = node;
    uv_timer_start(&node->tick_timer, on_tick, opts->tick_ms, opts->tick_ms);
    uv_idle_init(loop, &node->idle);
    node->idle.data = node;
    kick(node);
    *out = node;
    return 0;

err:
    if (node->snowflake_ok) {
        snowflake_close(&node->snowflake);
    }
    if (node->wal != NULL) {
        wal_destroy(node->wal);
    }
    scrub_close(node);
    if (node->kv != NULL) {
        kv_close(node->kv);
    }
    raft_node_destroy(node->raft);
    free(node);
    return rv;
}

static void finish_stop(struct bnode *node)
{
    void (*cb)(void *) = node->stop_cb;
    void *arg = node->stop_arg;
    if (node->snowflake_ok) {
        snowflake_close(&node->snowflake);
    }
    raft_node_destroy(node->raft);
    free(node);
    if (cb != NULL) {
        cb(arg);
    }
}

/* One of the things bnode_stop_now() closes is closed. */
static void closed_one(struct bnode *node)
{
    if (--node->closing_handles == 0) {
        finish_stop(node);
    }
}

static void on_handle_closed(uv_handle_t *h)
{
    closed_one(h->data);
}

static void on_persist_closed(struct persist *p)
{
    struct bnode *node = p->arg;
    free(p);
    closed_one(node);
}

static void on_transport_closed(void *arg)
{
    struct bnode *node = arg;
    node->closing_handles += 2;
    uv_close((uv_handle_t *)&node->tick_timer, on_handle_closed);
    uv_close((uv_handle_t *)&node->idle, on_handle_closed);
    closed_one(node);
}

void bnode_stop_now(struct bnode *node)
{
    raft_index durable;
    if (node->snap_jobs > 0 || node->ckpt_running) {
        return; /* their callbacks call back once the workers let go */
    }
    snap_close(node);
    bnode_watch_stop_all(node);
    bnode_lease_stop(node);
    fallback_stop(node);
    fail_all_writes(node, BNODE_EUNKNOWN);
    fail_reads(node, 0, BNODE_ESTOPPED);
    while (node->msgs_head != NULL) {
        struct queued_msg *q = node->msgs_head;
        node->msgs_head = q->next;
        free_message(q);
    }
    uv_timer_stop(&node->tick_timer);
    uv_idle_stop(&node->idle);
    /* A clean stop syncs LMDB so the next start replays nothing. */
    (void)kv_checkpoint(node->kv, &durable);
    scrub_close(node);
    kv_close(node->kv);
    node->kv = NULL;
    /* The transport and the disk thread's handle close asynchronously;
     * the node goes once both (and the handles closed after the
     * transport) are closed. The thread itself is joined here, before the
     * WAL it may still be zero-filling goes. */
    node->closing_handles = 2;
    persist_close(node->persist, on_persist_closed);
    node->persist = NULL;
    wal_destroy(node->wal);
    node->wal = NULL;
    transport_close(node->transport, on_transport_closed, node);
}

void bnode_stop(struct bnode *node, void (*cb)(void *arg), void *arg)
{
    node->stopping = true;
    node->stop_cb = cb;
    node->stop_arg = arg;
    if (node->frozen) {
        return; /* the worker holds the update; after_persist() stops */
    }
    bnode_stop_now(node);
}
