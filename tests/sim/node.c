/*
 * node.c - the driver of one simulated node.
 *
 * This is what ballotd's node driver does, with the I/O simulated. It runs
 * the raft_update contract of raft.h to the letter:
 *
 *   1. send update.messages at once (they do not depend on this batch);
 *   2. write the batch through the storage seam: snapshot chunks to the
 *      staging area, then the snapshot, then entries, then the hard state;
 *   3. wait for the simulated fsync (it takes simulated time, during which
 *      the core must not be touched, so ticks, messages and client calls
 *      queue in the inbox);
 *   4. send update.messages_after_persist;
 *   5. install the snapshot into the state machine, apply committed entries;
 *   6. serve reads whose index has been applied;
 *   7. raft_advance(), then run whatever queued up, then raft_ready() again.
 *
 * A crash destroys the core without raft_advance(), forgets whatever was not
 * synced, and loses the volatile state machine. The state machine's durable
 * form is its last snapshot (taken by the application, or installed from the
 * leader): on restart it is loaded and raft_restore() is told that applied
 * index, so the core hands the committed entries after it out again.
 *
 * A storage call that fails on an injected I/O fault halts the node where
 * it stands, as ballotd does (net/bnode.c, bnode_halt: a failed fsync
 * cannot be retried and trusted, so the process exits): nothing of the
 * failed batch is sent, applied or acknowledged. The process exits - and
 * half the time the machine loses power too - and a supervisor restarts
 * it later; a restart whose wal_open() fails on a fault is tried again.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sim.h"

static void pump(struct sim *s, struct sim_node *n);
static void node_halt(struct sim *s, struct sim_node *n, uint8_t where);

/* Where a storage call failed (the trace of a halt). */
enum {
    AT_BOOTSTRAP = 1,
    AT_WRITE,
    AT_SYNC,
    AT_SNAPSHOT,
    AT_LOAD,
    AT_CRASH,
};

static int storage_fail(struct sim *s,
                        struct sim_node *n,
                        int rc,
                        const char *what,
                        uint8_t where)
{
    if (rc == SIM_EFAULT && where != AT_LOAD && where != AT_CRASH) {
        node_halt(s, n, where);
    } else if (rc == SIM_ESTORAGE) {
        sim_fail(s, "update contract", "n%llu %s: %s",
                 (unsigned long long)n->id, what,
                 n->storage.ops->errmsg(n->storage.ctx));
    } else {
        sim_fail(s, "storage", "n%llu %s: error %d: %s",
                 (unsigned long long)n->id, what, rc,
                 n->storage.ops->errmsg(n->storage.ctx));
    }
    return rc;
}

static int make_core(struct sim *s, struct sim_node *n)
{
    struct raft_config cfg;
    uint64_t seed =
        sim_mix64(s->opt.seed ^ sim_mix64(n->id * 1000003u + n->incarnation));
    raft_config_default(&cfg, n->id, seed);
    cfg.election_ticks = s->p.election_ticks;
    cfg.heartbeat_ticks = s->p.heartbeat_ticks;
    cfg.pre_vote = s->p.pre_vote;
    cfg.check_quorum = s->p.check_quorum;
    cfg.lease_reads = s->p.lease_reads;
    cfg.max_append_entries = s->p.max_append_entries;
    cfg.max_inflight = s->p.max_inflight;
    cfg.snapshot_chunk_bytes = s->p.chunk_bytes;
    cfg.snapshot_trailing = s->p.trailing;
    int rc = raft_node_create(&cfg, &n->raft);
    if (rc != 0) {
        sim_fail(s, "environment", "raft_node_create: %s", raft_strerror(rc));
    }
    return rc;
}

static void schedule_ticks(struct sim *s, struct sim_node *n)
{
    /* Nodes tick out of phase with each other, each at its own rate. */
    sim_schedule(s, s->now + sim_rng_range(&s->rng_work, 1, SIM_TICK), EV_TICK,
                 n->slot, n->incarnation, NULL);
}

int node_start(struct sim *s, struct sim_node *n, bool bootstrap)
{
    app_init(&n->app, s->p.app_filler);
    memset(&n->iof, 0, sizeof(n->iof));
    n->iof.sim = s;
    n->iof.slot = n->slot;
    n->iof.rng = &s->rng_io;
    n->iof.write_ppm = s->p.io_write_ppm;
    n->iof.sync_ppm = s->p.io_sync_ppm;
    int made =
        s->opt.storage == SIM_STORAGE_WAL
            ? storage_wal_create(&n->storage, s->opt.seed, n->id, &n->iof)
            : disk_create(&n->storage);
    if (made != 0) {
        sim_fail(s, "environment", "out of memory");
        return -1;
    }
    if (make_core(s, n) != 0) {
        return -1;
    }
    n->up = true;
    if (bootstrap) {
        struct raft_conf conf = {.n = s->p.nodes};
        for (unsigned i = 0; i < s->p.nodes; i++) {
            conf.members[i].id = i + 1;
            conf.members[i].role = RAFT_VOTER;
        }
        int rc = raft_bootstrap(n->raft, &conf);
        if (rc != 0) {
            sim_fail(s, "bootstrap", "n%llu raft_bootstrap: %s",
                     (unsigned long long)n->id, raft_strerror(rc));
            return rc;
        }
        /* Bootstrapping is an operator step that completes before the node
         * serves: whatever it put in the log is durable from the start. If
         * the first update repeats it, the rewrite is harmless. */
        const struct sim_storage_ops *ops = n->storage.ops;
        for (raft_index i = raft_first_index(n->raft);
             i <= raft_last_index(n->raft); i++) {
            const struct raft_entry *e = raft_entry_at(n->raft, i);
            if (e != NULL) {
                check_logged(s, n, e, 1);
                ops->append(n->storage.ctx, e, 1);
            }
        }
        struct raft_hard_state hs = {
            .term = raft_current_term(n->raft),
            .vote = raft_voted_for(n->raft),
            .commit = raft_commit_index(n->raft),
        };
        ops->save_hard_state(n->storage.ctx, &hs);
        rc = ops->sync(n->storage.ctx);
        if (rc != 0) {
            return storage_fail(s, n, rc, "bootstrap", AT_BOOTSTRAP);
        }
        n->written_hs = n->durable_hs = hs;
    }
    /* Faults start once the node serves (bootstrap is an operator step). */
    n->iof.armed = s->opt.storage == SIM_STORAGE_WAL;
    n->seen_term = raft_current_term(n->raft);
    n->seen_vote = raft_voted_for(n->raft);
    n->seen_commit = raft_commit_index(n->raft);
    n->seen_state = (uint8_t)raft_state_of(n->raft);
    schedule_ticks(s, n);
    return 0;
}

static void inbox_push(struct sim_node *n, struct sim_input in)
{
    if (n->inbox_n == n->inbox_cap) {
        size_t cap = n->inbox_cap ? n->inbox_cap * 2 : 16;
        struct sim_input *q = sim_xmalloc(cap * sizeof(*q));
        for (size_t i = 0; i < n->inbox_n; i++) {
            q[i] = n->inbox[(n->inbox_head + i) % n->inbox_cap];
        }
        free(n->inbox);
        n->inbox = q;
        n->inbox_cap = cap;
        n->inbox_head = 0;
    }
    n->inbox[(n->inbox_head + n->inbox_n) % n->inbox_cap] = in;
    n->inbox_n++;
    if (in.kind == IN_PROPOSE) {
        n->inbox_proposals++;
    }
}

static struct sim_input inbox_pop(struct sim_node *n)
{
    struct sim_input in = n->inbox[n->inbox_head];
    n->inbox_head = (n->inbox_head + 1) % n->inbox_cap;
    n->inbox_n--;
    if (in.kind == IN_PROPOSE) {
        n->inbox_proposals--;
    }
    return in;
}

/* Drops queued work; queued proposals were never proposed. */
static void inbox_clear(struct sim *s, struct sim_node *n)
{
    while (n->inbox_n > 0) {
        struct sim_input in = inbox_pop(n);
        net_msg_free(in.msg);
        if (s != NULL && in.kind == IN_PROPOSE) {
            workload_proposed(s, in.a, RAFT_ESTATE, 0, 0);
        }
    }
}

/* The application takes a snapshot of its state at its applied index. */
static void take_snapshot(struct sim *s, struct sim_node *n)
{
    const struct sim_storage_ops *ops = n->storage.ops;
    struct sim_app *app = &n->app;
    const struct raft_snapshot_meta *cur = raft_snapshot_of(n->raft);
    if (app->applied == 0 || (cur != NULL && cur->index >= app->applied)) {
        return;
    }
    size_t size = app_encoded_size(app);
    uint8_t *buf = sim_xmalloc(size);
    app_encode(app, buf);
    struct raft_snapshot_meta meta = {
        .index = app->applied,
        .term = app->applied_term,
        .conf = app->conf,
        .size = size,
    };
    int rc = ops->save_snapshot(n->storage.ctx, &meta, buf);
    free(buf);
    if (rc != 0) {
        storage_fail(s, n, rc, "save snapshot", AT_SNAPSHOT);
        return;
    }
    rc = raft_snapshot_taken(n->raft, meta.index, meta.size);
    sim_trace(s, TR_SNAP_TAKEN, n->slot, meta.index, meta.size,
              (uint64_t)(int64_t)rc, 0);
    s->n_snapshots++;
    if (rc != 0) {
        sim_fail(s, "snapshot",
                 "n%llu raft_snapshot_taken(%llu) at applied "
                 "%llu: %s",
                 (unsigned long long)n->id, (unsigned long long)meta.index,
                 (unsigned long long)raft_applied_index(n->raft),
                 raft_strerror(rc));
        return;
    }
    cur = raft_snapshot_of(n->raft);
    if (cur == NULL || cur->index != meta.index || cur->term != meta.term) {
        sim_fail(s, "snapshot",
                 "n%llu: the core's snapshot is %llu/%llu after the "
                 "application took one at %llu/%llu",
                 (unsigned long long)n->id,
                 (unsigned long long)(cur ? cur->index : 0),
                 (unsigned long long)(cur ? cur->term : 0),
                 (unsigned long long)meta.index, (unsigned long long)meta.term);
    }
    check_snapshot(s, n, meta.index, meta.term, app->chain, "taken");
}

static void execute(struct sim *s, struct sim_node *n, struct sim_input in)
{
    int rc = 0;
    switch (in.kind) {
    case IN_MSG:
        rc = raft_step(n->raft, &in.msg->m);
        net_msg_free(in.msg);
        if (rc == RAFT_ENOMEM) {
            sim_fail(s, "environment", "raft_step: out of memory");
        }
        break;
    case IN_TICK:
        raft_tick(n->raft);
        break;
    case IN_PROPOSE: {
        uint8_t buf[SIM_PROPOSAL_MAX];
        uint32_t len = sim_proposal_encode(s->salt, in.a, buf);
        raft_index index = 0;
        raft_term term = 0;
        rc = raft_propose(n->raft, buf, len, &index, &term);
        sim_trace(s, TR_PROPOSE, n->slot, in.a, (uint64_t)(int64_t)rc, index,
                  term);
        if (rc == 0 && (raft_state_of(n->raft) != RAFT_LEADER ||
                        term != raft_current_term(n->raft) ||
                        index != raft_last_index(n->raft))) {
            sim_fail(s, "proposals",
                     "n%llu (state %d, term %llu, last %llu) accepted "
                     "proposal %llu at %llu term %llu",
                     (unsigned long long)n->id, raft_state_of(n->raft),
                     (unsigned long long)raft_current_term(n->raft),
                     (unsigned long long)raft_last_index(n->raft),
                     (unsigned long long)in.a, (unsigned long long)index,
                     (unsigned long long)term);
        }
        workload_proposed(s, in.a, rc, index, term);
        break;
    }
    case IN_READ:
        rc = raft_read_index(n->raft, in.a);
        if (rc != 0) {
            sim_trace(s, TR_READ_DONE, n->slot, in.a, 0, 0, 0);
        }
        break;
    case IN_TRANSFER:
        rc = raft_transfer_leadership(n->raft, in.a);
        sim_trace(s, TR_TRANSFER, n->slot, in.a, (uint64_t)(int64_t)rc, 0, 0);
        break;
    case IN_CONF: {
        raft_index index = 0;
        rc = raft_propose_conf_change(n->raft, (enum raft_conf_change)in.a,
                                      in.b, &index);
        sim_trace(s, TR_CONF, n->slot, in.a, in.b, (uint64_t)(int64_t)rc,
                  index);
        break;
    }
    case IN_SNAPSHOT:
        take_snapshot(s, n);
        break;
    case IN_UNREACHABLE:
        raft_report_unreachable(n->raft, in.a);
        break;
    default:
        abort();
    }
}

/* Sends one message the core emitted; snapshot chunks get their bytes from
 * the node's own snapshot at meta.index, as a real driver reads its file. */
static void send(struct sim *s,
                 struct sim_node *n,
                 const struct raft_message *m)
{
    check_sent(s, n, m);
    if (m->type != RAFT_MSG_SNAPSHOT || m->u.snapshot.data != NULL) {
        net_send(s, m, NULL);
        return;
    }
    const struct raft_msg_snapshot *c = &m->u.snapshot;
    const struct raft_snapshot_meta *meta = NULL;
    const uint8_t *data =
        n->storage.ops->snapshot_data(n->storage.ctx, c->meta.index, &meta);
    if (data == NULL) {
        /* We no longer have that snapshot: tell the core after this batch
         * (it must not be called before raft_advance()). */
        sim_trace(s, TR_UNREACHABLE, n->slot, c->meta.index, m->to, 0, 0);
        inbox_push(n, (struct sim_input){.kind = IN_UNREACHABLE, .a = m->to});
        return;
    }
    if (meta->term != c->meta.term || meta->size != c->meta.size ||
        c->offset + c->len > meta->size) {
        sim_fail(
            s, "snapshot",
            "n%llu sends snapshot %llu term %llu size %llu bytes "
            "%llu+%u, but its snapshot there has term %llu size %llu",
            (unsigned long long)n->id, (unsigned long long)c->meta.index,
            (unsigned long long)c->meta.term, (unsigned long long)c->meta.size,
            (unsigned long long)c->offset, c->len,
            (unsigned long long)meta->term, (unsigned long long)meta->size);
        return;
    }
    net_send(s, m, data + c->offset);
}

static void serve_reads(struct sim *s, struct sim_node *n)
{
    size_t keep = 0;
    for (size_t i = 0; i < n->n_reads; i++) {
        struct sim_pending_read *r = &n->reads[i];
        if (r->index <= n->app.applied) {
            check_read_served(s, n, r->ctx);
            sim_trace(s, TR_READ_DONE, n->slot, r->ctx, r->index, 1,
                      n->app.applied);
        } else {
            n->reads[keep++] = *r;
        }
    }
    n->n_reads = keep;
}

/* Steps 4-7: the batch is durable. */
static void complete(struct sim *s, struct sim_node *n)
{
    const struct raft_update *u = &n->update;
    const struct sim_storage_ops *ops = n->storage.ops;
    int rc = ops->sync(n->storage.ctx);
    if (rc != 0) {
        storage_fail(s, n, rc, "sync", AT_SYNC);
        return;
    }
    n->durable_hs = n->written_hs;

    for (size_t i = 0; i < u->n_messages_after_persist; i++) {
        send(s, n, &u->messages_after_persist[i]);
    }

    if (u->snapshot != NULL) {
        const struct raft_snapshot_meta *meta = NULL;
        const uint8_t *data =
            ops->snapshot_data(n->storage.ctx, u->snapshot->index, &meta);
        raft_index before = n->app.applied;
        if (data == NULL || app_decode(&n->app, data, meta->size) != 0) {
            sim_fail(s, "snapshot",
                     "n%llu: snapshot %llu was installed but its bytes do "
                     "not decode",
                     (unsigned long long)n->id,
                     (unsigned long long)u->snapshot->index);
            return;
        }
        sim_trace(s, TR_SNAP_INSTALL, n->slot, u->snapshot->index,
                  u->snapshot->term, u->snapshot_reset_log, 0);
        s->n_installs++;
        if (n->app.applied != u->snapshot->index ||
            n->app.applied_term != u->snapshot->term) {
            sim_fail(s, "snapshot",
                     "n%llu: snapshot meta %llu/%llu but its state is at "
                     "%llu/%llu",
                     (unsigned long long)n->id,
                     (unsigned long long)u->snapshot->index,
                     (unsigned long long)u->snapshot->term,
                     (unsigned long long)n->app.applied,
                     (unsigned long long)n->app.applied_term);
            return;
        }
        if (n->app.applied < before) {
            sim_fail(s, "applied index monotonic",
                     "n%llu: snapshot %llu installed over applied %llu: the "
                     "state machine went back in time",
                     (unsigned long long)n->id,
                     (unsigned long long)n->app.applied,
                     (unsigned long long)before);
            return;
        }
        check_snapshot(s, n, n->app.applied, n->app.applied_term, n->app.chain,
                       "installed");
    }

    if (u->n_committed > 0) {
        raft_index first = u->committed[0].index;
        for (size_t i = 0; i < u->n_committed && !s->failed; i++) {
            const struct raft_entry *e = &u->committed[i];
            if (e->index > raft_commit_index(n->raft)) {
                sim_fail(s, "apply order",
                         "n%llu: entry %llu handed out to apply beyond "
                         "commit index %llu",
                         (unsigned long long)n->id,
                         (unsigned long long)e->index,
                         (unsigned long long)raft_commit_index(n->raft));
                return;
            }
            if (e->index != n->app.applied + 1) {
                sim_fail(s, "apply order",
                         "n%llu: committed entry %llu handed out after "
                         "applied %llu",
                         (unsigned long long)n->id,
                         (unsigned long long)e->index,
                         (unsigned long long)n->app.applied);
                return;
            }
            app_apply(&n->app, e);
            check_applied(s, n, e);
            s->n_applied++;
        }
        sim_trace(s, TR_APPLY, n->slot, first, n->app.applied, 0, 0);
    }

    for (size_t i = 0; i < u->n_reads; i++) {
        const struct raft_read_state *r = &u->reads[i];
        check_read_index(s, n, r);
        if (r->ok) {
            if (sim_grow((void **)&n->reads, &n->cap_reads, n->n_reads + 1,
                         sizeof(*n->reads)) != 0) {
                abort();
            }
            n->reads[n->n_reads++] =
                (struct sim_pending_read){.ctx = r->ctx, .index = r->index};
        } else {
            sim_trace(s, TR_READ_DONE, n->slot, r->ctx, r->index, 0,
                      n->app.applied);
        }
    }
    serve_reads(s, n);

    raft_advance(n->raft, u);
    n->busy = false;
}

static void handle_ready(struct sim *s,
                         struct sim_node *n,
                         const struct raft_update *u)
{
    const struct sim_storage_ops *ops = n->storage.ops;
    void *ctx = n->storage.ctx;
    n->update = *u;
    n->busy = true;

    if (u->n_entries > 0 || u->hard_state_changed || u->snapshot != NULL) {
        sim_trace(s, TR_WRITE, n->slot,
                  u->n_entries > 0 ? u->entries[0].index : 0, u->n_entries,
                  u->hard_state.term << 1 | u->hard_state_changed,
                  u->snapshot != NULL ? u->snapshot->index : 0);
    }
    check_logged(s, n, u->entries, u->n_entries);

    for (size_t i = 0; i < u->n_messages; i++) {
        send(s, n, &u->messages[i]);
    }

    int rc = 0;
    for (size_t i = 0; i < u->n_snapshot_chunks && rc == 0; i++) {
        rc = ops->stage_chunk(ctx, &u->snapshot_chunks[i]);
    }
    if (rc == 0 && u->snapshot != NULL) {
        rc = ops->install_staged(ctx, u->snapshot, u->snapshot_reset_log);
    }
    if (rc == 0 && u->n_entries > 0) {
        rc = ops->append(ctx, u->entries, u->n_entries);
    }
    if (rc == 0 && u->hard_state_changed) {
        check_hard_state(s, n, &u->hard_state);
        rc = ops->save_hard_state(ctx, &u->hard_state);
        n->written_hs = u->hard_state;
    }
    if (rc != 0) {
        storage_fail(s, n, rc, "write", AT_WRITE);
        return;
    }
    if (ops->unsynced(ctx) == 0) {
        complete(s, n);
        return;
    }
    sim_time lat = sim_rng_range(&s->rng_disk, s->p.fsync_min, s->p.fsync_max);
    if (sim_rng_ppm(&s->rng_disk, s->p.slow_fsync_ppm)) {
        lat += sim_rng_range(&s->rng_disk, SIM_TICK, s->p.slow_fsync_max);
    }
    sim_schedule(s, s->now + lat, EV_FSYNC, n->slot, n->incarnation, NULL);
}

static void pump(struct sim *s, struct sim_node *n)
{
    while (n->up && !n->busy && !s->failed) {
        while (n->inbox_n > 0 && n->up && !s->failed) {
            execute(s, n, inbox_pop(n));
        }
        if (s->failed || !n->up) {
            return; /* a storage fault halted the node */
        }
        struct raft_update u;
        if (!raft_ready(n->raft, &u)) {
            return;
        }
        handle_ready(s, n, &u);
    }
}

void node_input(struct sim *s, struct sim_node *n, struct sim_input in)
{
    if (!n->up) {
        net_msg_free(in.msg);
        return;
    }
    inbox_push(n, in);
    pump(s, n);
}

void node_fsync_done(struct sim *s, struct sim_node *n)
{
    if (!n->up || !n->busy) {
        return;
    }
    sim_trace(s, TR_FSYNC, n->slot, n->storage.ops->unsynced(n->storage.ctx), 0,
              0, 0);
    complete(s, n);
    pump(s, n);
}

/* The process is gone: the in-flight update dies with it. */
static void node_down(struct sim *s, struct sim_node *n)
{
    /* No raft_advance() for the in-flight update. */
    raft_node_destroy(n->raft);
    n->raft = NULL;
    n->busy = false;
    n->up = false;
    n->incarnation++;
    inbox_clear(s, n);
    n->n_reads = 0;
}

void node_crash(struct sim *s, struct sim_node *n)
{
    if (!n->up) {
        return;
    }
    const struct sim_storage_ops *ops = n->storage.ops;
    size_t unsynced = ops->unsynced(n->storage.ctx);
    int kept = ops->crash(n->storage.ctx, &s->rng_disk, s->p.torn_writes);
    sim_trace(s, TR_CRASH, n->slot, kept < 0 ? 0 : (uint64_t)kept, unsynced, 0,
              0);
    s->n_crashes++;
    if (kept < 0) {
        storage_fail(s, n, kept, "crash (torn prefix)", AT_CRASH);
    }
    node_down(s, n);
}

/* A storage call failed on an injected fault (the storage checked that the
 * WAL poisoned itself): the node halts at once, like ballotd's
 * bnode_halt(), which exits the process. The batch in flight is neither
 * sent, applied nor acknowledged. Half the time the machine loses power
 * too (tearing as the seed says); otherwise the page cache survives the
 * process. Every choice here comes from the I/O fault stream. */
static void node_halt(struct sim *s, struct sim_node *n, uint8_t where)
{
    const struct sim_storage_ops *ops = n->storage.ops;
    size_t unsynced = ops->unsynced(n->storage.ctx);
    bool power = sim_rng_below(&s->rng_io, 2) == 0;
    if (s->opt.verbose) {
        printf("    n%llu halts: %s\n", (unsigned long long)n->id,
               ops->errmsg(n->storage.ctx));
    }
    int kept = power ? ops->crash(n->storage.ctx, &s->rng_io, s->p.torn_writes)
                     : ops->exit(n->storage.ctx);
    sim_trace(s, TR_HALT, n->slot, where, power, kept < 0 ? 0 : (uint64_t)kept,
              unsynced);
    s->n_halts++;
    storage_wal_totals.halts++;
    storage_wal_totals.halts_power += power;
    node_down(s, n);
    if (kept < 0) {
        storage_fail(s, n, kept, "halt", AT_CRASH);
        return;
    }
    /* A supervisor restarts it, like any crashed process: a third at once,
     * the others after a while. */
    sim_time down = sim_rng_below(&s->rng_io, 3) == 0
                        ? sim_rng_range(&s->rng_io, SIM_TICK / 10, 2 * SIM_TICK)
                        : sim_rng_range(&s->rng_io, 1, 60) * SIM_TICK;
    sim_schedule(s, s->now + down, EV_RESTART, n->slot, 0, NULL);
}

void node_disk_full(struct sim *s, uint32_t mask, bool full)
{
    for (unsigned i = 0; i < s->p.slots; i++) {
        if ((mask & (1u << i)) != 0) {
            s->nodes[i].iof.full = full;
        }
    }
}

void node_faults_stop(struct sim *s)
{
    for (unsigned i = 0; i < s->p.slots; i++) {
        s->nodes[i].iof.armed = false;
        s->nodes[i].iof.full = false;
    }
}

int node_restart(struct sim *s, struct sim_node *n)
{
    if (n->up) {
        return 0;
    }
    if (make_core(s, n) != 0) {
        return -1;
    }
    struct sim_durable d;
    int rc = n->storage.ops->load(n->storage.ctx, &d);
    if (rc == SIM_EFAULT) {
        /* Recovery failed on an injected fault (a full disk, say): the
         * process exits again and the supervisor tries later. Whatever
         * recovery did stays on disk for the next attempt. */
        if (s->opt.verbose) {
            printf("    n%llu cannot restart: %s\n", (unsigned long long)n->id,
                   n->storage.ops->errmsg(n->storage.ctx));
        }
        raft_node_destroy(n->raft);
        n->raft = NULL;
        sim_trace(s, TR_RESTART_FAIL, n->slot, 0, 0, 0, 0);
        s->n_restarts_failed++;
        storage_wal_totals.restarts_failed++;
        sim_schedule(s, s->now + sim_rng_range(&s->rng_io, 1, 20) * SIM_TICK,
                     EV_RESTART, n->slot, 0, NULL);
        return 0;
    }
    if (rc != 0) {
        return storage_fail(s, n, rc, "load", AT_LOAD);
    }
    app_init(&n->app, s->p.app_filler);
    if (d.has_snapshot) {
        if (app_decode(&n->app, d.snap_data, d.snap.size) != 0 ||
            n->app.applied != d.snap.index) {
            sim_fail(s, "snapshot", "n%llu: durable snapshot %llu is corrupt",
                     (unsigned long long)n->id,
                     (unsigned long long)d.snap.index);
            return -1;
        }
    }
    bool empty = d.hs.term == 0 && !d.has_snapshot && d.n_entries == 0;
    if (!empty) {
        rc = raft_restore(n->raft, &d.hs, d.has_snapshot ? &d.snap : NULL,
                          d.entries, d.n_entries, n->app.applied);
        if (rc != 0) {
            sim_fail(s, "restart",
                     "n%llu: raft_restore refused the durable state (term "
                     "%llu vote %llu commit %llu, snapshot %llu, %zu "
                     "entries from %llu): %s",
                     (unsigned long long)n->id, (unsigned long long)d.hs.term,
                     (unsigned long long)d.hs.vote,
                     (unsigned long long)d.hs.commit,
                     (unsigned long long)(d.has_snapshot ? d.snap.index : 0),
                     d.n_entries,
                     (unsigned long long)(d.n_entries ? d.entries[0].index : 0),
                     raft_strerror(rc));
            return rc;
        }
    }
    n->written_hs = n->durable_hs = d.hs;
    n->up = true;
    sim_trace(s, TR_RESTART, n->slot, raft_current_term(n->raft),
              raft_commit_index(n->raft), d.has_snapshot ? d.snap.index : 0,
              raft_last_index(n->raft));
    check_restarted(s, n, &d);
    schedule_ticks(s, n);
    pump(s, n);
    return 0;
}

void node_free(struct sim_node *n)
{
    if (n->raft != NULL) {
        raft_node_destroy(n->raft);
        n->raft = NULL;
    }
    inbox_clear(NULL, n);
    free(n->inbox);
    free(n->reads);
    if (n->storage.ops != NULL) {
        n->storage.ops->destroy(n->storage.ctx);
        n->storage.ops = NULL;
    }
}
