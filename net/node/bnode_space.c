/*
 * bnode_space.c - the store's long-run life in the node driver: history
 * compaction decided by the leader and carried out in bounded steps, the
 * quota checked before writes are proposed, and a map that grows instead
 * of failing an apply.
 *
 * Compaction (docs/kv.md, "History and compaction"):
 *
 *   leader, every SPACE_CHECK_TICKS    retention says the history below R
 *                                      may go: propose KV_CMD_COMPACT(R)
 *   every replica, at the entry        the point moves to R (kv_apply):
 *                                      reads below R fail from there on
 *   every replica, between cycles      kv_compact_step(): one batch of
 *                                      records below R deleted per turn of
 *                                      the loop, until none is left
 *
 * The point moves at the same log index everywhere, so what a read below
 * it gets does not depend on the replica; the deletion is invisible and may
 * run at each replica's pace. A step deletes at most compact_batch records
 * in one write transaction (about a millisecond), and the loop handles its
 * I/O between two steps, so a compaction never stops the world.
 *
 * Space: the quota is compared with the store's live data (its file up to
 * the last page written, minus LMDB's free pages), so that writes come
 * back by themselves once compaction or deletes have freed pages, with no
 * defragmentation. Over the quota, bnode_propose() refuses commands that
 * may add data (kv_cmd_adds_data()); deletes, compactions and membership
 * still go. The map is twice the quota by default, and if an apply finds
 * it full anyway (a follower behind a long snapshot reader, a huge delete)
 * the node maps more and applies again instead of halting.
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "bnode_internal.h"
#include "nlog.h"

/* Ticks between two measures of the space and retention decisions. */
#define SPACE_CHECK_TICKS 10u
/* The revision rule proposes once a tenth of the kept revisions (at least
 * one) can go, not for every write. */
#define RETENTION_STEP_DIVISOR 10u

void space_configure(struct bnode *node)
{
    struct bnode_options *o = &node->opts;
    if (o->quota_bytes == 0) {
        o->quota_bytes =
            (o->kv_map_size != 0 ? o->kv_map_size : BNODE_MAP_DEFAULT) / 2;
    }
    if (o->kv_map_size == 0) {
        o->kv_map_size = BNODE_MAP_DEFAULT;
    }
    /* Twice the quota: a store at its quota still takes deletes (each
     * adds a history record and copies pages) and a whole transaction's
     * worth of new pages before the old ones are free again. */
    if (o->quota_bytes <= UINT64_MAX / 2 &&
        o->kv_map_size < 2 * o->quota_bytes) {
        o->kv_map_size = 2 * o->quota_bytes;
    }
}

/* Measures the space. The free pages (a walk of LMDB's free list) are
 * counted when @force, or when the file is above the quota (below it, the
 * live data cannot be above), at most once a tick. */
static void measure(struct bnode *node, bool force)
{
    struct kv_space sp;
    if (kv_space(node->kv, false, &sp) != 0) {
        return;
    }
    bool above = sp.file_bytes > node->opts.quota_bytes;
    if (!force && (!above || node->space_counted == node->space_ticks)) {
        node->space.file_bytes = sp.file_bytes;
        node->space.map_bytes = sp.map_bytes;
        node->space.page_bytes = sp.page_bytes;
        if (!above) {
            node->over_quota = false;
        }
        return;
    }
    if (kv_space(node->kv, true, &sp) != 0) {
        return;
    }
    node->space = sp;
    node->space_counted = node->space_ticks;
    bool over = sp.file_bytes - sp.free_bytes > node->opts.quota_bytes;
    if (over != node->over_quota) {
        nlog(node, over ? BNODE_LOG_WARN : BNODE_LOG_INFO,
             "store %s its quota: %" PRIu64 " bytes live of %" PRIu64 "%s",
             over ? "over" : "back under", sp.file_bytes - sp.free_bytes,
             node->opts.quota_bytes,
             over ? "; writes refused until deletes or compaction free space"
                  : "; writes accepted");
    }
    node->over_quota = over;
}

void space_open(struct bnode *node)
{
    struct kv_status st;
    if (kv_status(node->kv, &st) == 0) {
        node->compact_revision = st.compact_revision;
        node->compact_pending = st.compaction_pending;
    }
    measure(node, true);
}

static void compact_proposed_done(void *arg,
                                  int status,
                                  const struct kv_entry_result *res)
{
    struct bnode *node = arg;
    (void)status;
    (void)res;
    node->compact_proposed = false;
}

/* Keeps a revision sample every keep_ms / 10, for the time rule: the
 * revision the store had keep_ms ago is the newest sample at least that
 * old. Every node samples, so a new leader can decide at once. */
static void sample(struct bnode *node, uint64_t now, uint64_t revision)
{
    uint64_t every = node->opts.history_keep_ms / 10;
    unsigned cap = sizeof(node->rev_samples) / sizeof(node->rev_samples[0]);
    if (node->n_rev_samples > 0 && now - node->last_sample_ms < every) {
        return;
    }
    if (node->n_rev_samples == cap) {
        memmove(&node->rev_samples[0], &node->rev_samples[1],
                (cap - 1) * sizeof(node->rev_samples[0]));
        node->n_rev_samples--;
    }
    node->rev_samples[node->n_rev_samples].ms = now;
    node->rev_samples[node->n_rev_samples].revision = revision;
    node->n_rev_samples++;
    node->last_sample_ms = now;
}

/* The compaction point retention allows now; 0: none beyond @point. */
static uint64_t retention_target(struct bnode *node,
                                 uint64_t now,
                                 uint64_t revision,
                                 uint64_t point)
{
    uint64_t target = 0;
    uint64_t keep = node->opts.history_keep_revisions;
    if (keep > 0 && revision > keep) {
        uint64_t step = keep / RETENTION_STEP_DIVISOR;
        uint64_t t = revision - keep;
        if (t >= point + (step > 0 ? step : 1)) {
            target = t;
        }
    }
    if (node->opts.history_keep_ms > 0) {
        for (unsigned i = node->n_rev_samples; i-- > 0;) {
            const struct rev_sample *s = &node->rev_samples[i];
            if (now - s->ms >= node->opts.history_keep_ms) {
                if (s->revision > point && s->revision > target) {
                    target = s->revision;
                }
                break;
            }
        }
    }
    return target;
}

static void propose_compaction(struct bnode *node, uint64_t target)
{
    uint8_t buf[16];
    size_t len = 0;
    struct kv_cmd cmd;
    memset(&cmd, 0, sizeof(cmd));
    cmd.type = KV_CMD_COMPACT;
    cmd.revision = target;
    if (kv_cmd_encode(&cmd, buf, sizeof(buf), &len) != 0) {
        return;
    }
    if (bnode_propose(node, buf, len, compact_proposed_done, node) == 0) {
        node->compact_proposed = true;
        nlog(node, BNODE_LOG_DEBUG,
             "retention: compacting history below revision %llu",
             (unsigned long long)target);
    }
}

void space_on_tick(struct bnode *node)
{
    struct kv_status st;
    node->space_ticks++;
    if (node->space_ticks % SPACE_CHECK_TICKS != 0 || node->halted) {
        return;
    }
    /* The free pages once a second also below the quota, for BSTATUS. */
    measure(node, node->space_ticks % (SPACE_CHECK_TICKS * 10) == 0);
    if (kv_status(node->kv, &st) != 0) {
        return;
    }
    node->compact_revision = st.compact_revision;
    /* Also what a snapshot install brought in. */
    if (st.compaction_pending && !node->compact_pending) {
        node->compact_pending = true;
        bnode_kick(node);
    }
    uint64_t now = uv_now(node->loop);
    if (node->opts.history_keep_ms > 0) {
        sample(node, now, st.revision);
    }
    if (raft_state_of(node->raft) != RAFT_LEADER || node->compact_proposed) {
        return;
    }
    uint64_t target =
        retention_target(node, now, st.revision, st.compact_revision);
    /* Over the quota, writes stop, so the revision stops and retention
     * would never move again: the history is what can go (it is a log of
     * changes for readers that fell behind, not data), so all of it goes,
     * and writes come back without anyone's help. */
    if (node->over_quota && st.revision > st.compact_revision &&
        st.history_events > 1) {
        if (target < st.revision) {
            nlog(node, BNODE_LOG_WARN,
                 "store over its quota: compacting the history below "
                 "revision %" PRIu64,
                 st.revision);
        }
        target = st.revision;
    }
    if (target > 0) {
        propose_compaction(node, target);
    }
}

void space_after_apply(struct bnode *node, const struct kv_apply_result *res)
{
    for (size_t i = 0; i < res->n_entries; i++) {
        const struct kv_entry_result *e = &res->entries[i];
        if (e->cmd_type != KV_CMD_COMPACT || e->code != 0 || e->skipped) {
            continue;
        }
        node->compactions++;
        if (e->compact_revision > node->compact_revision) {
            node->compact_revision = e->compact_revision;
            node->compact_pending = true;
            bnode_kick(node);
        }
    }
    measure(node, false);
}

bool space_compact_step(struct bnode *node)
{
    char msg[256];
    bool more = false;
    if (!node->compact_pending || node->halted || node->stopping ||
        node->kv == NULL) {
        return false;
    }
    int rv = kv_compact_step(node->kv, &more);
    if (rv == KV_EFULL && space_grow_map(node) == 0) {
        return true; /* the next turn retries */
    }
    if (rv != 0) {
        kv_errmsg(node->kv, msg, sizeof(msg));
        bnode_halt(node, msg);
        return false;
    }
    node->compact_pending = more;
    if (!more) {
        measure(node, true); /* writes may come back now */
    }
    return more;
}

int space_grow_map(struct bnode *node)
{
    char msg[256];
    struct kv_space sp;
    /* LMDB maps the file anew: no transaction of this process may be open
     * meanwhile. Readers on the loop never outlive their call; the
     * workers are the snapshot copies and a checkpoint's sync, each
     * bounded by one pass over the store (as for an install). */
    while (atomic_load(&node->snap_copies) > 0) {
        uv_sleep(1);
    }
    ckpt_wait(node);
    int rv = kv_space(node->kv, false, &sp);
    if (rv == 0) {
        uint64_t want = sp.map_bytes <= UINT64_MAX / 2 ? 2 * sp.map_bytes : 0;
        rv = want > sp.map_bytes ? kv_map_grow(node->kv, want) : KV_EINVAL;
    }
    if (rv != 0) {
        kv_errmsg(node->kv, msg, sizeof(msg));
        nlog(node, BNODE_LOG_ERROR,
             "the store's map is full and cannot grow: %s", msg);
        return rv;
    }
    node->map_grows++;
    nlog(node, BNODE_LOG_WARN,
         "the store's map of %" PRIu64 " bytes was full: now %" PRIu64
         " bytes (raise kv_map_size or lower quota_bytes to avoid this)",
         sp.map_bytes, 2 * sp.map_bytes);
    measure(node, true);
    return 0;
}

bool space_refuses(struct bnode *node, const uint8_t *cmd, size_t len)
{
    return node->over_quota && kv_cmd_adds_data(cmd, len);
}
