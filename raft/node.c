/*
 * node.c - life cycle of a node, proposals, snapshots taken by the
 * application, accessors and error strings.
 */
#include <stdlib.h>
#include <string.h>

#include "node.h"

/* ---- allocation -------------------------------------------------------- */

void *raft_malloc(struct raft_node *node, size_t size)
{
    const struct raft_allocator *a = &node->cfg.allocator;
    return a->malloc_fn ? a->malloc_fn(a->ctx, size) : malloc(size);
}

void *raft_realloc(struct raft_node *node, void *ptr, size_t size)
{
    const struct raft_allocator *a = &node->cfg.allocator;
    return a->realloc_fn ? a->realloc_fn(a->ctx, ptr, size)
                         : realloc(ptr, size);
}

void raft_free(struct raft_node *node, void *ptr)
{
    const struct raft_allocator *a = &node->cfg.allocator;
    if (a->free_fn) {
        a->free_fn(a->ctx, ptr);
    } else {
        free(ptr);
    }
}

/* ---- errors ------------------------------------------------------------ */

static const struct
{
    int code;
    const char *text;
} error_table[] = {
    {0, "success"},
    {RAFT_ENOMEM, "out of memory"},
    {RAFT_EINVAL, "invalid argument or message"},
    {RAFT_ENOTLEADER, "not the leader"},
    {RAFT_EBUSY, "too much uncommitted work, retry later"},
    {RAFT_ETRANSFER, "leadership transfer in progress"},
    {RAFT_ECONFPENDING, "a membership change is still pending"},
    {RAFT_ETOOBIG, "entry too large"},
    {RAFT_ENOTFOUND, "no such member"},
    {RAFT_ESTATE, "operation not allowed in this state"},
    {RAFT_ECOMPACTED, "index compacted into a snapshot"},
};

const char *raft_strerror(int code)
{
    for (size_t i = 0; i < sizeof(error_table) / sizeof(error_table[0]); i++) {
        if (error_table[i].code == code) {
            return error_table[i].text;
        }
    }
    return "unknown raft error";
}

/* ---- configuration ----------------------------------------------------- */

void raft_config_default(struct raft_config *cfg, raft_id id, uint64_t seed)
{
    memset(cfg, 0, sizeof(*cfg));
    cfg->id = id;
    cfg->seed = seed;
    cfg->election_ticks = 10;
    cfg->heartbeat_ticks = 1;
    cfg->pre_vote = true;
    cfg->check_quorum = true;
    cfg->lease_reads = false;
    cfg->max_append_entries = 1024;
    cfg->max_append_bytes = 1u << 20;
    cfg->max_inflight = 64;
    cfg->max_uncommitted_bytes = 64u << 20;
    cfg->max_entry_bytes = 8u << 20;
    cfg->max_apply_bytes = 16u << 20;
    cfg->snapshot_chunk_bytes = 1u << 20;
    cfg->snapshot_trailing = 10000;
    cfg->read_retry_ticks = 10;
    cfg->read_timeout_ticks = 40;
}

static bool config_valid(const struct raft_config *cfg)
{
    return cfg->id != 0 && cfg->election_ticks >= 2 &&
           cfg->heartbeat_ticks >= 1 && cfg->read_retry_ticks >= 1 &&
           cfg->read_timeout_ticks >= cfg->read_retry_ticks &&
           cfg->heartbeat_ticks < cfg->election_ticks &&
           cfg->max_append_entries >= 1 &&
           cfg->max_append_entries <= RAFT_MSG_ENTRIES_MAX &&
           cfg->max_inflight >= 1 && cfg->max_entry_bytes >= 1 &&
           cfg->snapshot_chunk_bytes >= 1 &&
           cfg->snapshot_chunk_bytes <= RAFT_CHUNK_BYTES_MAX &&
           (!cfg->lease_reads || cfg->check_quorum) &&
           ((cfg->allocator.malloc_fn == NULL) ==
            (cfg->allocator.free_fn == NULL)) &&
           ((cfg->allocator.malloc_fn == NULL) ==
            (cfg->allocator.realloc_fn == NULL));
}

/* ---- life cycle -------------------------------------------------------- */

int raft_node_create(const struct raft_config *cfg, struct raft_node **out)
{
    struct raft_node tmp;
    if (cfg == NULL || out == NULL || !config_valid(cfg)) {
        return RAFT_EINVAL;
    }
    memset(&tmp, 0, sizeof(tmp));
    tmp.cfg = *cfg;
    struct raft_node *node = raft_malloc(&tmp, sizeof(*node));
    if (node == NULL) {
        return RAFT_ENOMEM;
    }
    *node = tmp;
    node->id = cfg->id;
    node->state = RAFT_FOLLOWER;
    node->reported_ss.state = RAFT_FOLLOWER;
    /* Mix the id in so nodes given the same seed still draw different
     * election timeouts. */
    node->rng = cfg->seed ^ (cfg->id * 0x9e3779b97f4a7c15ULL);
    log_init(&node->log);
    /* A few configuration records up front: conf_history_reset() must
     * never allocate. */
    node->cap_confs = 4;
    node->confs = raft_malloc(node, node->cap_confs * sizeof(*node->confs));
    if (node->confs == NULL) {
        raft_free(node, node);
        return RAFT_ENOMEM;
    }
    election_reset_timeout(node);
    *out = node;
    return 0;
}

void node_free_chunks(struct raft_node *node)
{
    for (size_t i = 0; i < node->n_chunks; i++) {
        raft_free(node, (void *)node->chunks[i].data);
    }
    node->n_chunks = 0;
}

void raft_node_destroy(struct raft_node *node)
{
    if (node == NULL) {
        return;
    }
    log_close(node, &node->log);
    for (unsigned i = 0; i < node->n_prs; i++) {
        raft_free(node, node->prs[i].inflight);
    }
    node_free_chunks(node);
    raft_free(node, node->chunks);
    raft_free(node, node->confs);
    raft_free(node, node->reads);
    raft_free(node, node->msgs);
    raft_free(node, node->msgs_after);
    raft_free(node, node->read_states);
    raft_free(node, node);
}

static bool is_pristine(const struct raft_node *node)
{
    return node->term == 0 && log_last_index(&node->log) == 0 &&
           node->n_confs == 0 && node->snap.index == 0;
}

int raft_bootstrap(struct raft_node *node, const struct raft_conf *conf)
{
    uint8_t buf[RAFT_CONF_ENCODED_MAX];
    size_t len;
    if (node->in_update || !is_pristine(node)) {
        return RAFT_ESTATE;
    }
    if (conf_validate(conf) != 0 || raft_conf_voters(conf) == 0) {
        return RAFT_EINVAL;
    }
    raft_conf_encode(conf, buf, &len);
    int rv =
        log_append(node, &node->log, 1, RAFT_ENTRY_CONF, buf, (uint32_t)len);
    if (rv != 0) {
        return rv;
    }
    rv = conf_history_push(node, 1, conf);
    if (rv != 0) {
        log_truncate_from(node, &node->log, 1);
        return rv;
    }
    /* Every member starts from this same entry, so it is committed. */
    node->term = 1;
    node->commit = 1;
    return 0;
}

int raft_restore(struct raft_node *node,
                 const struct raft_hard_state *hs,
                 const struct raft_snapshot_meta *snapshot,
                 const struct raft_entry *entries,
                 size_t n_entries,
                 raft_index applied)
{
    raft_index first = snapshot != NULL ? snapshot->index + 1 : 1;
    raft_index last = first + n_entries - 1;
    raft_term prev_term = snapshot != NULL ? snapshot->term : 0;
    int rv;

    if (node->in_update || !is_pristine(node) || hs == NULL) {
        return RAFT_ESTATE;
    }
    if (snapshot != NULL &&
        (snapshot->index == 0 || conf_validate(&snapshot->conf) != 0)) {
        return RAFT_EINVAL;
    }
    for (size_t i = 0; i < n_entries; i++) {
        const struct raft_entry *e = &entries[i];
        if (e->index != first + i || e->term < prev_term ||
            e->term > RAFT_TERM_MAX ||
            (e->type != RAFT_ENTRY_NORMAL && e->type != RAFT_ENTRY_CONF)) {
            return RAFT_EINVAL;
        }
        prev_term = e->term;
    }
    if (applied < first - 1 || applied > last) {
        return RAFT_EINVAL;
    }
    if (snapshot != NULL) {
        log_reset(node, &node->log, snapshot->index, snapshot->term);
        conf_history_reset(node, snapshot->index, &snapshot->conf);
        node->snap = *snapshot;
    }
    rv = log_reserve(node, &node->log, n_entries);
    if (rv != 0) {
        goto err;
    }
    for (size_t i = 0; i < n_entries; i++) {
        const struct raft_entry *e = &entries[i];
        rv = log_append(node, &node->log, e->term, e->type, e->data, e->len);
        if (rv != 0) {
            goto err;
        }
        if (e->type == RAFT_ENTRY_CONF) {
            struct raft_conf conf;
            rv = raft_conf_decode(e->data, e->len, &conf);
            if (rv == 0) {
                rv = conf_history_push(node, e->index, &conf);
            }
            if (rv != 0) {
                goto err;
            }
        }
    }
    node->term = hs->term;
    node->vote = hs->vote;
    /* A crash can make a batch's entries durable but not its hard state
     * (they are separate writes). The node never acknowledged anything of
     * that batch, so it may take the newer term with no vote, but it must
     * never run in a term older than its own log: it could then lead and
     * append entries with terms going backwards. */
    if (prev_term > node->term) {
        node->term = prev_term;
        node->vote = 0;
    }
    /* The commit index is a hint persisted lazily; what was applied was
     * certainly committed, and nothing beyond the log can be. */
    node->commit = hs->commit < last ? hs->commit : last;
    if (node->commit < applied) {
        node->commit = applied;
    }
    node->applied = applied;
    node->stable = last;
    node->persisted_hs.term = node->term;
    node->persisted_hs.vote = node->vote;
    node->persisted_hs.commit = hs->commit;
    election_reset_timeout(node);
    election_hold_after_restore(node);
    return 0;

err:
    log_reset(node, &node->log, 0, 0);
    node->n_confs = 0;
    memset(&node->snap, 0, sizeof(node->snap));
    return rv;
}

int raft_propose(struct raft_node *node,
                 const uint8_t *data,
                 uint32_t len,
                 raft_index *index,
                 raft_term *term)
{
    if (node->in_update) {
        return RAFT_ESTATE;
    }
    if (node->state != RAFT_LEADER) {
        return RAFT_ENOTLEADER;
    }
    if (node->transfer_target != 0) {
        return RAFT_ETRANSFER;
    }
    if (len > node->cfg.max_entry_bytes) {
        return RAFT_ETOOBIG;
    }
    if (len > 0 && data == NULL) {
        return RAFT_EINVAL;
    }
    /* Bound the memory of a leader whose followers cannot keep up. */
    if (node->uncommitted_bytes > 0 &&
        node->uncommitted_bytes + len > node->cfg.max_uncommitted_bytes) {
        return RAFT_EBUSY;
    }
    int rv = replication_append_local(node, RAFT_ENTRY_NORMAL, data, len);
    if (rv != 0) {
        return rv;
    }
    if (index != NULL) {
        *index = log_last_index(&node->log);
    }
    if (term != NULL) {
        *term = node->term;
    }
    return 0;
}

int raft_snapshot_taken(struct raft_node *node, raft_index index, uint64_t size)
{
    if (node->in_update) {
        return RAFT_ESTATE;
    }
    if (index > node->applied || index < node->log.offset) {
        return RAFT_EINVAL;
    }
    if (index <= node->snap.index) {
        return 0; /* we already have a newer one */
    }
    struct raft_snapshot_meta meta;
    memset(&meta, 0, sizeof(meta));
    meta.index = index;
    meta.term = log_term_at(&node->log, index);
    meta.conf = *conf_at(node, index);
    meta.size = size;
    node->snap = meta;
    /* Keep some entries behind the snapshot: a follower slightly behind can
     * catch up from the log instead of a whole snapshot. Never drop what is
     * not yet durable here. */
    if (index > node->cfg.snapshot_trailing) {
        raft_index upto = index - node->cfg.snapshot_trailing;
        if (upto > node->stable) {
            upto = node->stable;
        }
        if (upto > node->log.offset) {
            log_compact_to(node, &node->log, upto);
            conf_history_compact(node, upto);
        }
    }
    return 0;
}

void raft_report_unreachable(struct raft_node *node, raft_id to)
{
    struct raft_progress *pr;
    if (node->in_update || node->state != RAFT_LEADER) {
        return;
    }
    pr = progress_get(node, to);
    if (pr != NULL && pr->id != node->id && pr->state != PROGRESS_PROBE) {
        progress_become_probe(pr);
    }
}

/* ---- shared helpers ---------------------------------------------------- */

static int push_message(struct raft_node *node,
                        struct raft_message **arr,
                        size_t *n,
                        size_t *cap,
                        const struct raft_message *m)
{
    if (*n == *cap) {
        size_t c = *cap ? *cap * 2 : 16;
        struct raft_message *a = raft_realloc(node, *arr, c * sizeof(*a));
        if (a == NULL) {
            return RAFT_ENOMEM;
        }
        *arr = a;
        *cap = c;
    }
    (*arr)[(*n)++] = *m;
    return 0;
}

int node_send(struct raft_node *node, struct raft_message *msg)
{
    msg->from = node->id;
    msg->term = node->term;
    /* §10.2.1: a leader's own messages need nothing from this batch's
     * writes (its term is durable since it campaigned), so they may leave
     * while it persists. Everything else acknowledges state that must be
     * durable first. */
    bool early =
        node->state == RAFT_LEADER && node->persisted_hs.term == node->term &&
        (msg->type == RAFT_MSG_APPEND || msg->type == RAFT_MSG_HEARTBEAT ||
         msg->type == RAFT_MSG_SNAPSHOT || msg->type == RAFT_MSG_TIMEOUT_NOW ||
         msg->type == RAFT_MSG_READ_INDEX_RESP);
    if (early) {
        return push_message(node, &node->msgs, &node->n_msgs, &node->cap_msgs,
                            msg);
    }
    return push_message(node, &node->msgs_after, &node->n_msgs_after,
                        &node->cap_msgs_after, msg);
}

int node_add_read_state(struct raft_node *node,
                        uint64_t ctx,
                        raft_index index,
                        bool ok)
{
    if (node->n_read_states == node->cap_read_states) {
        size_t c = node->cap_read_states ? node->cap_read_states * 2 : 16;
        struct raft_read_state *a =
            raft_realloc(node, node->read_states, c * sizeof(*a));
        if (a == NULL) {
            return RAFT_ENOMEM;
        }
        node->read_states = a;
        node->cap_read_states = c;
    }
    struct raft_read_state *r = &node->read_states[node->n_read_states++];
    r->ctx = ctx;
    r->index = index;
    r->ok = ok;
    return 0;
}

unsigned node_quorum(const struct raft_node *node)
{
    return raft_conf_voters(conf_current(node)) / 2 + 1;
}

bool node_is_promotable(const struct raft_node *node)
{
    const struct raft_conf *conf = conf_current(node);
    if (conf_is_voter(conf, node->id)) {
        return true;
    }
    /* §4.2.2: a server removed by a configuration that is not committed yet
     * still campaigns (without counting its own vote), because it may be
     * the only one holding that configuration: a removed leader deposed
     * before the entry committed would otherwise leave the remaining
     * voters, still on the old configuration, waiting for its vote. */
    return raft_conf_get(conf, node->id) == NULL && node->n_confs >= 2 &&
           conf_current_index(node) > node->commit &&
           conf_is_voter(&node->confs[node->n_confs - 2].conf, node->id);
}

/* ---- accessors --------------------------------------------------------- */

raft_id raft_id_of(const struct raft_node *node)
{
    return node->id;
}

enum raft_state raft_state_of(const struct raft_node *node)
{
    return (enum raft_state)node->state;
}

raft_id raft_leader(const struct raft_node *node)
{
    return node->leader;
}

raft_term raft_current_term(const struct raft_node *node)
{
    return node->term;
}

raft_id raft_voted_for(const struct raft_node *node)
{
    return node->vote;
}

raft_index raft_commit_index(const struct raft_node *node)
{
    return node->commit;
}

raft_index raft_applied_index(const struct raft_node *node)
{
    return node->applied;
}

raft_index raft_last_index(const struct raft_node *node)
{
    return log_last_index(&node->log);
}

raft_index raft_first_index(const struct raft_node *node)
{
    return node->log.offset + 1;
}

raft_term raft_term_at(const struct raft_node *node, raft_index index)
{
    return log_term_at(&node->log, index);
}

const struct raft_entry *raft_entry_at(const struct raft_node *node,
                                       raft_index index)
{
    return log_get(&node->log, index);
}

const struct raft_conf *raft_conf_of(const struct raft_node *node)
{
    return conf_current(node);
}

const struct raft_snapshot_meta *raft_snapshot_of(const struct raft_node *node)
{
    return &node->snap;
}

const struct raft_stats *raft_stats_of(const struct raft_node *node)
{
    return &node->stats;
}

raft_index raft_match_index(const struct raft_node *node, raft_id id)
{
    for (unsigned i = 0; i < node->n_prs; i++) {
        if (node->prs[i].id == id) {
            return node->prs[i].id == node->id ? node->stable
                                               : node->prs[i].match;
        }
    }
    return 0;
}

uint32_t raft_inflight_count(const struct raft_node *node, raft_id id)
{
    if (node->state != RAFT_LEADER) {
        return 0;
    }
    for (unsigned i = 0; i < node->n_prs; i++) {
        if (node->prs[i].id == id && id != node->id) {
            return node->prs[i].inflight_count;
        }
    }
    return 0;
}

raft_id raft_transfer_target(const struct raft_node *node)
{
    return node->transfer_target;
}
