/*
 * fixture.c - the unit tests' in-process cluster; see fixture.h.
 */
#include "fixture.h"

#include <check.h>
#include <stdlib.h>
#include <string.h>

static void *xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    ck_assert_ptr_nonnull(p);
    return p;
}

static uint64_t mix(uint64_t h, uint64_t v)
{
    h ^= v + 0x9e3779b97f4a7c15ULL + (h << 6) + (h >> 2);
    return h;
}

static void create_raft(struct fx *f, struct fx_node *n)
{
    struct raft_config cfg = f->cfg;
    cfg.id = n->id;
    cfg.seed = 1000 + n->id;
    ck_assert_int_eq(raft_node_create(&cfg, &n->raft), 0);
}

void fx_init(struct fx *f,
             unsigned n,
             unsigned bootstrap_voters,
             const struct raft_config *cfg)
{
    memset(f, 0, sizeof(*f));
    ck_assert_uint_le(n, FX_MAX);
    f->n = n;
    if (cfg != NULL) {
        f->cfg = *cfg;
    } else {
        raft_config_default(&f->cfg, 1, 1);
        /* Only the nodes a test ticks see time pass, so CheckQuorum's
         * leader stickiness would keep untouched followers loyal forever;
         * the tests of CheckQuorum turn it on themselves. */
        f->cfg.check_quorum = false;
        f->cfg.snapshot_chunk_bytes = 32;
        f->cfg.snapshot_trailing = 0;
    }
    struct raft_conf conf;
    memset(&conf, 0, sizeof(conf));
    for (unsigned i = 0; i < bootstrap_voters; i++) {
        conf.members[conf.n].id = i + 1;
        conf.members[conf.n].role = RAFT_VOTER;
        conf.n++;
    }
    for (unsigned i = 0; i < n; i++) {
        struct fx_node *nd = &f->nodes[i];
        nd->id = i + 1;
        create_raft(f, nd);
        if (i < bootstrap_voters) {
            ck_assert_int_eq(raft_bootstrap(nd->raft, &conf), 0);
        }
    }
    for (unsigned i = 0; i < n; i++) {
        while (fx_ready(f, i + 1)) {
        }
    }
}

static void free_msg(struct fx_msg *m)
{
    if (m->entries != NULL) {
        for (uint32_t i = 0; i < m->m.u.append.n_entries; i++) {
            free((void *)m->entries[i].data);
        }
    }
    free(m->entries);
    free(m->data);
}

static void free_entries(struct fx_node *n, size_t from)
{
    for (size_t i = from; i < n->n_entries; i++) {
        free((void *)n->entries[i].data);
    }
    n->n_entries = from;
}

void fx_close(struct fx *f)
{
    for (unsigned i = 0; i < f->n; i++) {
        struct fx_node *n = &f->nodes[i];
        raft_node_destroy(n->raft);
        free_entries(n, 0);
        free(n->entries);
    }
    fx_drop_all(f);
    free(f->queue);
}

struct fx_node *fx_node(struct fx *f, raft_id id)
{
    ck_assert(id >= 1 && id <= f->n);
    return &f->nodes[id - 1];
}

struct raft_node *fx_raft(struct fx *f, raft_id id)
{
    return fx_node(f, id)->raft;
}

static void copy_entry(struct raft_entry *dst, const struct raft_entry *src)
{
    *dst = *src;
    if (src->len > 0) {
        uint8_t *d = xmalloc(src->len);
        memcpy(d, src->data, src->len);
        dst->data = d;
    } else {
        dst->data = NULL;
    }
}

static void enqueue(struct fx *f,
                    struct fx_node *from,
                    const struct raft_message *m)
{
    if (f->n_queue == f->cap_queue) {
        f->cap_queue = f->cap_queue ? f->cap_queue * 2 : 64;
        f->queue = realloc(f->queue, f->cap_queue * sizeof(*f->queue));
        ck_assert_ptr_nonnull(f->queue);
    }
    struct fx_msg *q = &f->queue[f->n_queue++];
    memset(q, 0, sizeof(*q));
    q->m = *m;
    if (m->type == RAFT_MSG_APPEND && m->u.append.n_entries > 0) {
        q->entries = xmalloc(m->u.append.n_entries * sizeof(*q->entries));
        for (uint32_t i = 0; i < m->u.append.n_entries; i++) {
            copy_entry(&q->entries[i], &m->u.append.entries[i]);
        }
        q->m.u.append.entries = q->entries;
    }
    if (m->type == RAFT_MSG_SNAPSHOT) {
        /* The core leaves the bytes to us: read them from our snapshot. */
        ck_assert_uint_eq(m->u.snapshot.meta.index, from->snap.index);
        q->data = xmalloc(m->u.snapshot.len);
        memcpy(q->data, from->snap_data + m->u.snapshot.offset,
               m->u.snapshot.len);
        q->m.u.snapshot.data = q->data;
    }
}

static void persist(struct fx_node *n, const struct raft_update *u)
{
    for (size_t i = 0; i < u->n_snapshot_chunks; i++) {
        const struct raft_msg_snapshot *c = &u->snapshot_chunks[i];
        ck_assert_uint_le(c->offset + c->len, FX_SNAPSHOT_BYTES);
        memcpy(n->staging + c->offset, c->data, c->len);
    }
    if (u->snapshot != NULL) {
        n->snap = *u->snapshot;
        memcpy(n->snap_data, n->staging, FX_SNAPSHOT_BYTES);
        size_t keep = 0;
        if (!u->snapshot_reset_log) {
            /* Drop entries the snapshot covers, keep the rest. */
            size_t drop = 0;
            while (drop < n->n_entries &&
                   n->entries[drop].index <= u->snapshot->index) {
                free((void *)n->entries[drop].data);
                drop++;
            }
            keep = n->n_entries - drop;
            memmove(n->entries, n->entries + drop, keep * sizeof(*n->entries));
            n->n_entries = keep;
        } else {
            free_entries(n, 0);
        }
    }
    if (u->n_entries > 0) {
        raft_index first = u->entries[0].index;
        size_t keep = 0;
        while (keep < n->n_entries && n->entries[keep].index < first) {
            keep++;
        }
        free_entries(n, keep);
        n->entries = realloc(
            n->entries, (n->n_entries + u->n_entries) * sizeof(*n->entries));
        ck_assert_ptr_nonnull(n->entries);
        for (size_t i = 0; i < u->n_entries; i++) {
            copy_entry(&n->entries[n->n_entries++], &u->entries[i]);
        }
    }
    if (u->hard_state_changed) {
        n->hs = u->hard_state;
    }
}

static void apply(struct fx_node *n, const struct raft_update *u)
{
    if (u->snapshot != NULL) {
        /* Fixture snapshots hold (applied, hash) in their first bytes. */
        memcpy(&n->applied, n->snap_data, sizeof(n->applied));
        memcpy(&n->hash, n->snap_data + 8, sizeof(n->hash));
        ck_assert_uint_eq(n->applied, u->snapshot->index);
    }
    for (size_t i = 0; i < u->n_committed; i++) {
        const struct raft_entry *e = &u->committed[i];
        ck_assert_uint_eq(e->index, n->applied + 1);
        n->applied = e->index;
        n->hash = mix(n->hash, e->term);
        for (uint32_t j = 0; j < e->len; j++) {
            n->hash = mix(n->hash, e->data[j]);
        }
        if (e->index < 4096) {
            n->applied_terms[e->index] = e->term;
        }
    }
    for (size_t i = 0; i < u->n_reads && n->n_reads < 64; i++) {
        n->reads[n->n_reads++] = u->reads[i];
    }
}

void fx_handle(struct fx *f, raft_id id, const struct raft_update *u)
{
    struct fx_node *n = fx_node(f, id);
    for (size_t i = 0; i < u->n_messages; i++) {
        enqueue(f, n, &u->messages[i]);
    }
    persist(n, u);
    for (size_t i = 0; i < u->n_messages_after_persist; i++) {
        enqueue(f, n, &u->messages_after_persist[i]);
    }
    apply(n, u);
    raft_advance(n->raft, u);
}

bool fx_ready(struct fx *f, raft_id id)
{
    struct fx_node *n = fx_node(f, id);
    struct raft_update u;
    if (n->down || !raft_ready(n->raft, &u)) {
        return false;
    }
    fx_handle(f, id, &u);
    return true;
}

void fx_deliver_one(struct fx *f, size_t i)
{
    struct fx_msg m = f->queue[i];
    memmove(&f->queue[i], &f->queue[i + 1],
            (f->n_queue - i - 1) * sizeof(*f->queue));
    f->n_queue--;
    raft_id to = m.m.to;
    if (to >= 1 && to <= f->n && !f->cut[m.m.from][to] &&
        !fx_node(f, to)->down) {
        (void)raft_step(fx_raft(f, to), &m.m);
    }
    free_msg(&m);
}

void fx_settle(struct fx *f)
{
    for (int round = 0; round < 10000; round++) {
        bool any = false;
        for (unsigned i = 0; i < f->n; i++) {
            while (fx_ready(f, i + 1)) {
                any = true;
            }
        }
        if (f->hold) {
            return;
        }
        while (f->n_queue > 0) {
            fx_deliver_one(f, 0);
            any = true;
        }
        if (!any) {
            return;
        }
    }
    ck_abort_msg("fixture did not settle");
}

void fx_tick(struct fx *f, raft_id id, unsigned n)
{
    for (unsigned i = 0; i < n; i++) {
        if (!fx_node(f, id)->down) {
            raft_tick(fx_raft(f, id));
        }
        fx_settle(f);
    }
}

void fx_elect(struct fx *f, raft_id id)
{
    for (int i = 0; i < 100 && raft_state_of(fx_raft(f, id)) != RAFT_LEADER;
         i++) {
        fx_tick(f, id, 1);
    }
    ck_assert_int_eq(raft_state_of(fx_raft(f, id)), RAFT_LEADER);
    fx_settle(f);
}

int fx_propose(struct fx *f, raft_id id, const char *text)
{
    int rv = raft_propose(fx_raft(f, id), (const uint8_t *)text,
                          (uint32_t)strlen(text), NULL, NULL);
    fx_settle(f);
    return rv;
}

void fx_cut(struct fx *f, raft_id a, raft_id b, bool cut)
{
    f->cut[a][b] = cut;
    f->cut[b][a] = cut;
}

void fx_isolate(struct fx *f, raft_id id, bool isolated)
{
    for (unsigned i = 1; i <= f->n; i++) {
        if (i != id) {
            fx_cut(f, id, i, isolated);
        }
    }
}

void fx_crash(struct fx *f, raft_id id)
{
    struct fx_node *n = fx_node(f, id);
    raft_node_destroy(n->raft);
    n->raft = NULL;
    n->down = true;
    /* Messages to and from it that are still queued are lost. */
    size_t kept = 0;
    for (size_t i = 0; i < f->n_queue; i++) {
        if (f->queue[i].m.to == id || f->queue[i].m.from == id) {
            free_msg(&f->queue[i]);
        } else {
            f->queue[kept++] = f->queue[i];
        }
    }
    f->n_queue = kept;
}

void fx_restart(struct fx *f, raft_id id)
{
    struct fx_node *n = fx_node(f, id);
    create_raft(f, n);
    n->down = false;
    /* The state machine restarts from the snapshot and replays the log. */
    n->applied = 0;
    n->hash = 0;
    if (n->snap.index > 0) {
        memcpy(&n->applied, n->snap_data, sizeof(n->applied));
        memcpy(&n->hash, n->snap_data + 8, sizeof(n->hash));
    }
    ck_assert_int_eq(
        raft_restore(n->raft, &n->hs, n->snap.index > 0 ? &n->snap : NULL,
                     n->entries, n->n_entries, n->applied),
        0);
    fx_settle(f);
}

void fx_snapshot(struct fx *f, raft_id id, uint64_t trailing)
{
    struct fx_node *n = fx_node(f, id);
    memset(n->snap_data, 0, sizeof(n->snap_data));
    memcpy(n->snap_data, &n->applied, sizeof(n->applied));
    memcpy(n->snap_data + 8, &n->hash, sizeof(n->hash));
    (void)trailing;
    ck_assert_int_eq(
        raft_snapshot_taken(n->raft, n->applied, FX_SNAPSHOT_BYTES), 0);
    n->snap = *raft_snapshot_of(n->raft);
    /* Drop persisted entries the core compacted away. */
    raft_index first = raft_first_index(n->raft);
    size_t drop = 0;
    while (drop < n->n_entries && n->entries[drop].index < first) {
        free((void *)n->entries[drop].data);
        drop++;
    }
    memmove(n->entries, n->entries + drop,
            (n->n_entries - drop) * sizeof(*n->entries));
    n->n_entries -= drop;
    /* Keep the persisted log starting right after the snapshot, as
     * raft_restore expects: re-add nothing, but trim below snap.index. */
    while (n->n_entries > 0 && n->entries[0].index <= n->snap.index) {
        free((void *)n->entries[0].data);
        memmove(n->entries, n->entries + 1,
                (n->n_entries - 1) * sizeof(*n->entries));
        n->n_entries--;
    }
}

struct fx_msg *fx_find(struct fx *f, uint8_t type, raft_id from, raft_id to)
{
    for (size_t i = 0; i < f->n_queue; i++) {
        struct fx_msg *m = &f->queue[i];
        if (m->m.type == type && (from == 0 || m->m.from == from) &&
            (to == 0 || m->m.to == to)) {
            return m;
        }
    }
    return NULL;
}

void fx_drop_all(struct fx *f)
{
    for (size_t i = 0; i < f->n_queue; i++) {
        free_msg(&f->queue[i]);
    }
    f->n_queue = 0;
}

raft_index fx_check_applied_agree(struct fx *f)
{
    raft_index min = UINT64_MAX;
    for (unsigned i = 0; i < f->n; i++) {
        struct fx_node *a = &f->nodes[i];
        if (a->down) {
            continue;
        }
        if (a->applied < min) {
            min = a->applied;
        }
        for (unsigned j = 0; j < i; j++) {
            struct fx_node *b = &f->nodes[j];
            if (b->down) {
                continue;
            }
            raft_index upto = a->applied < b->applied ? a->applied : b->applied;
            for (raft_index k = 1; k <= upto && k < 4096; k++) {
                if (a->applied_terms[k] != 0 && b->applied_terms[k] != 0) {
                    ck_assert_uint_eq(a->applied_terms[k], b->applied_terms[k]);
                }
            }
            if (a->applied == b->applied) {
                ck_assert_uint_eq(a->hash, b->hash);
            }
        }
    }
    return min;
}
