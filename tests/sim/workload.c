/*
 * workload.c - what the clients and the environment do to the cluster.
 *
 * Swarm testing: each seed switches on a random subset of fault kinds, with
 * random intensities, and random core settings. A seed that only loses
 * messages explores different schedules than one that only crashes nodes,
 * and both find bugs that a fixed mix of everything would hide.
 *
 * During the fault phase one recurring event picks weighted actions:
 * proposals (mostly to the leader), reads (on the leader, or any node with
 * follower reads), application snapshots, leadership transfers, membership
 * changes, crashes and partitions. At heal time faults stop, partitions
 * heal, crashed nodes restart, and the workload turns to liveness: proposals
 * definitely lost (another entry committed at their index) are resubmitted,
 * and filler proposals push the log past any proposal still undecided.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sim.h"

static bool coin(struct sim_rng *rng, unsigned num, unsigned den)
{
    return sim_rng_below(rng, den) < num;
}

void sim_params_choose(struct sim_params *p, uint64_t seed, unsigned nodes)
{
    struct sim_rng r;
    sim_rng_seed(&r, sim_mix64(seed ^ 0x737761726dull)); /* "swarm" */
    memset(p, 0, sizeof(*p));
    static const unsigned sizes[] = {3, 5};
    /* Always draw, so that --nodes with the size the seed picks replays
     * exactly the run the seed alone gives. */
    p->nodes = sizes[sim_rng_below(&r, 2)];
    if (nodes != 0) {
        p->nodes = nodes;
    }
    p->slots = p->nodes + SIM_SPARES;
    p->fault_time = sim_rng_range(&r, 300, 1500) * SIM_TICK;

    p->lat_min = (uint32_t)sim_rng_range(&r, 20, 300);
    p->lat_max = p->lat_min + (uint32_t)sim_rng_range(&r, 0, 1500);
    if (coin(&r, 1, 2)) {
        p->loss_ppm = (uint32_t)sim_rng_range(&r, 1000, 150000);
    }
    if (coin(&r, 1, 3)) {
        p->dup_ppm = (uint32_t)sim_rng_range(&r, 1000, 80000);
    }
    if (coin(&r, 1, 3)) {
        p->reorder_ppm = (uint32_t)sim_rng_range(&r, 10000, 200000);
        p->reorder_max = (uint32_t)sim_rng_range(&r, SIM_TICK, 30 * SIM_TICK);
    }
    p->fsync_min = (uint32_t)sim_rng_range(&r, 10, 300);
    p->fsync_max = p->fsync_min + (uint32_t)sim_rng_range(&r, 0, 1200);
    if (coin(&r, 1, 4)) {
        p->slow_fsync_ppm = (uint32_t)sim_rng_range(&r, 1000, 50000);
        p->slow_fsync_max = (uint32_t)sim_rng_range(&r, 2, 40) * SIM_TICK;
    }
    p->torn_writes = coin(&r, 1, 2);
    p->crashes = coin(&r, 1, 2);
    p->partitions = coin(&r, 1, 2);
    p->asym_partitions = coin(&r, 1, 3);
    p->conf_changes = coin(&r, 1, 2);
    p->transfers = coin(&r, 1, 2);
    p->snapshots = coin(&r, 2, 3);
    p->follower_reads = coin(&r, 1, 2);

    p->action_gap = sim_rng_range(&r, SIM_TICK / 10, 2 * SIM_TICK);
    p->w_propose = 50;
    p->w_read = (uint32_t)sim_rng_range(&r, 0, 40);
    p->w_snapshot = p->snapshots ? (uint32_t)sim_rng_range(&r, 1, 10) : 0;
    p->w_transfer = p->transfers ? (uint32_t)sim_rng_range(&r, 1, 4) : 0;
    p->w_conf = p->conf_changes ? (uint32_t)sim_rng_range(&r, 1, 5) : 0;
    p->w_crash = p->crashes ? (uint32_t)sim_rng_range(&r, 1, 4) : 0;
    p->w_partition = (p->partitions || p->asym_partitions)
                         ? (uint32_t)sim_rng_range(&r, 1, 4)
                         : 0;

    p->pre_vote = coin(&r, 3, 4);
    p->check_quorum = coin(&r, 3, 4);
    p->lease_reads = p->check_quorum && coin(&r, 1, 5);
    p->election_ticks = (unsigned)sim_rng_range(&r, 5, 20);
    p->heartbeat_ticks = (unsigned)sim_rng_range(&r, 1, p->election_ticks / 3);
    static const uint32_t appends[] = {1, 4, 16, 64};
    static const uint32_t inflight[] = {1, 4, 64};
    static const uint32_t chunks[] = {16, 64, 256, 4096};
    static const uint64_t trailing[] = {0, 2, 20, 200};
    p->max_append_entries = appends[sim_rng_below(&r, 4)];
    p->max_inflight = inflight[sim_rng_below(&r, 3)];
    p->chunk_bytes = chunks[sim_rng_below(&r, 4)];
    p->trailing = trailing[sim_rng_below(&r, 4)];
    p->app_filler = (uint32_t)sim_rng_range(&r, 0, 600);
    if (coin(&r, 1, 3)) {
        /* Two clocks at +-e drift apart by 2e per tick, so over an election
         * timeout E by 2eE ticks; lease reads need that below one tick:
         * e < 1/(2E). Stay at half of that. Without leases, up to 10%. */
        uint32_t max =
            p->lease_reads ? SIM_TICK / (4 * p->election_ticks) : SIM_TICK / 10;
        p->tick_skew = (uint32_t)sim_rng_range(&r, 1, max);
    }
    p->liveness_time = (400 + 40 * (sim_time)p->election_ticks) * SIM_TICK;

    /* I/O faults (used with --storage wal), from a stream of their own so
     * that everything above is what the seed chose before they existed.
     * Two seeds in five inject none, the others rarely or often. */
    sim_rng_seed(&r, sim_mix64(seed ^ 0x696f666c74ull)); /* "ioflt" */
    unsigned mix = (unsigned)sim_rng_below(&r, 10);
    if (mix >= 7) {
        p->io_write_ppm = (uint32_t)sim_rng_range(&r, 500, 5000);
        p->io_sync_ppm = (uint32_t)sim_rng_range(&r, 2000, 30000);
    } else if (mix >= 4) {
        p->io_write_ppm = (uint32_t)sim_rng_range(&r, 10, 200);
        p->io_sync_ppm = (uint32_t)sim_rng_range(&r, 50, 1000);
    }
    if (coin(&r, 1, 4)) {
        p->disk_full = true;
        p->full_every = (uint32_t)sim_rng_range(&r, 20, 300);
        p->full_len = (uint32_t)sim_rng_range(&r, 2, 60);
    }
}

uint64_t workload_new_pid(struct sim *s)
{
    if (s->n_props == 0) {
        s->n_props = 1; /* pid 0 means "not a proposal" */
    }
    if (sim_grow((void **)&s->props, &s->cap_props, s->n_props + 1,
                 sizeof(*s->props)) != 0) {
        abort();
    }
    memset(&s->props[s->n_props], 0, sizeof(*s->props));
    s->props[s->n_props].status = PROP_QUEUED;
    return s->n_props++;
}

static uint64_t new_read(struct sim *s)
{
    if (s->n_reads == 0) {
        s->n_reads = 1;
    }
    if (sim_grow((void **)&s->readv, &s->cap_reads, s->n_reads + 1,
                 sizeof(*s->readv)) != 0) {
        abort();
    }
    struct sim_read *rd = &s->readv[s->n_reads];
    rd->committed_before = s->check.applied_max;
    rd->served = false;
    return s->n_reads++;
}

void workload_proposed(struct sim *s,
                       uint64_t pid,
                       int rc,
                       raft_index index,
                       raft_term term)
{
    struct sim_proposal *p = &s->props[pid];
    if (rc != 0) {
        p->status = PROP_REFUSED;
        return;
    }
    p->status = PROP_PENDING;
    p->index = index;
    p->term = term;
}

uint64_t workload_backlog(const struct sim_node *n)
{
    if (!n->up) {
        return 0;
    }
    return raft_last_index(n->raft) - raft_commit_index(n->raft) +
           n->inbox_proposals;
}

static struct sim_node *random_live(struct sim *s)
{
    unsigned live[SIM_MAX_NODES], n = 0;
    for (unsigned i = 0; i < s->p.slots; i++) {
        if (s->nodes[i].up) {
            live[n++] = i;
        }
    }
    if (n == 0) {
        return NULL;
    }
    return &s->nodes[live[sim_rng_below(&s->rng_work, n)]];
}

static void propose(struct sim *s, struct sim_node *n)
{
    uint64_t pid = workload_new_pid(s);
    node_input(s, n, (struct sim_input){.kind = IN_PROPOSE, .a = pid});
}

/* A random live node that believes it leads, in any term: where a client
 * with a stale leader cache sends its requests (a deposed or partitioned
 * leader must not serve them from stale state). */
static struct sim_node *random_self_leader(struct sim *s)
{
    unsigned leaders[SIM_MAX_NODES], n = 0;
    for (unsigned i = 0; i < s->p.slots; i++) {
        if (s->nodes[i].up && raft_state_of(s->nodes[i].raft) == RAFT_LEADER) {
            leaders[n++] = i;
        }
    }
    if (n == 0) {
        return NULL;
    }
    return &s->nodes[leaders[sim_rng_below(&s->rng_work, n)]];
}

static void act_read(struct sim *s)
{
    struct sim_node *n = sim_leader(s);
    if (coin(&s->rng_work, 1, 3)) {
        n = random_self_leader(s);
    }
    if (n == NULL || (s->p.follower_reads && coin(&s->rng_work, 1, 2))) {
        n = random_live(s);
    }
    if (n == NULL) {
        return;
    }
    uint64_t ctx = new_read(s);
    sim_trace(s, TR_READ, n->slot, ctx, s->readv[ctx].committed_before, 0, 0);
    node_input(s, n, (struct sim_input){.kind = IN_READ, .a = ctx});
}

static void act_transfer(struct sim *s, struct sim_node *leader)
{
    const struct raft_conf *conf = raft_conf_of(leader->raft);
    if (conf->n == 0) {
        return;
    }
    raft_id target = conf->members[sim_rng_below(&s->rng_work, conf->n)].id;
    node_input(s, leader, (struct sim_input){.kind = IN_TRANSFER, .a = target});
}

/* One membership change that makes sense for the leader's configuration:
 * promote a learner, add a node (as learner, sometimes straight as voter),
 * or remove a member, possibly the leader itself. Nodes removed earlier
 * come back with their old data. */
static void act_conf(struct sim *s, struct sim_node *leader)
{
    const struct raft_conf *conf = raft_conf_of(leader->raft);
    raft_id learners[RAFT_CONF_MAX], absent[SIM_MAX_NODES];
    unsigned n_learners = 0, n_absent = 0, voters = 0;
    for (uint32_t i = 0; i < conf->n; i++) {
        if (conf->members[i].role == RAFT_LEARNER) {
            learners[n_learners++] = conf->members[i].id;
        } else {
            voters++;
        }
    }
    for (unsigned i = 0; i < s->p.slots; i++) {
        if (raft_conf_get(conf, i + 1) == NULL) {
            absent[n_absent++] = i + 1;
        }
    }
    struct sim_rng *r = &s->rng_work;
    struct sim_input in = {.kind = IN_CONF};
    if (n_learners > 0 && coin(r, 1, 2)) {
        in.a = RAFT_PROMOTE;
        in.b = learners[sim_rng_below(r, n_learners)];
    } else if (n_absent > 0 && (voters <= 2 || coin(r, 1, 2))) {
        in.a = coin(r, 1, 5) ? RAFT_ADD_VOTER : RAFT_ADD_LEARNER;
        in.b = absent[sim_rng_below(r, n_absent)];
    } else if (conf->n > 0) {
        in.a = RAFT_REMOVE;
        in.b = conf->members[sim_rng_below(r, conf->n)].id;
    } else {
        return;
    }
    node_input(s, leader, in);
}

static void act_crash(struct sim *s)
{
    struct sim_node *n = random_live(s);
    if (n == NULL) {
        return;
    }
    /* Half the crashes hit a node whose batch is waiting for its fsync:
     * the moment that loses (or, with torn writes, tears) writes, and where
     * anything acknowledged before it was durable shows. */
    if (coin(&s->rng_work, 1, 2)) {
        /* Prefer a batch that writes the hard state: a vote or term that
         * must not be acknowledged before it is durable. */
        struct sim_node *busy = NULL, *hs = NULL;
        unsigned k = (unsigned)sim_rng_below(&s->rng_work, s->p.slots);
        for (unsigned i = 0; i < s->p.slots; i++) {
            struct sim_node *m = &s->nodes[(k + i) % s->p.slots];
            if (m->up && m->busy) {
                busy = busy != NULL ? busy : m;
                if (hs == NULL && m->update.hard_state_changed) {
                    hs = m;
                }
            }
        }
        if (hs != NULL || busy != NULL) {
            n = hs != NULL ? hs : busy;
        }
    }
    node_crash(s, n);
    /* Most crashed nodes come back during the fault phase, a third of
     * those at once (a process restart, back within the same election,
     * where an acknowledgement that was not durable shows); some stay down
     * until the heal. */
    if (coin(&s->rng_work, 4, 5)) {
        sim_time down =
            coin(&s->rng_work, 1, 3)
                ? sim_rng_range(&s->rng_work, SIM_TICK / 10, 2 * SIM_TICK)
                : sim_rng_range(&s->rng_work, 1, 60) * SIM_TICK;
        sim_schedule(s, s->now + down, EV_RESTART, n->slot, 0, NULL);
    }
}

static void act_partition(struct sim *s)
{
    struct sim_rng *r = &s->rng_work;
    if (s->links_cut && coin(r, 1, 2)) {
        net_heal(s);
        return;
    }
    bool asym = s->p.asym_partitions && (!s->p.partitions || coin(r, 1, 2));
    if (asym) {
        unsigned cuts = (unsigned)sim_rng_range(r, 1, 3);
        for (unsigned i = 0; i < cuts; i++) {
            unsigned from = (unsigned)sim_rng_below(r, s->p.slots);
            unsigned to = (unsigned)sim_rng_below(r, s->p.slots);
            if (from != to) {
                net_cut_one_way(s, from, to);
            }
        }
    } else {
        /* A random split, or the leader alone on one side. */
        uint32_t all = (1u << s->p.slots) - 1;
        uint32_t group = (uint32_t)sim_rng_range(r, 1, all - 1);
        struct sim_node *leader = sim_leader(s);
        if (leader != NULL && coin(r, 1, 3)) {
            group = 1u << leader->slot;
        }
        net_partition(s, group);
    }
    sim_time lasting = sim_rng_range(r, 5, 120) * SIM_TICK;
    sim_schedule(s, s->now + lasting, EV_HEAL_LINKS, 0, 0, NULL);
}

void workload_start(struct sim *s)
{
    sim_schedule(s, s->now + s->p.action_gap, EV_WORKLOAD, 0, 0, NULL);
    if (s->p.disk_full) {
        sim_schedule(s,
                     s->now + sim_rng_range(&s->rng_io, 1,
                                            2 * (sim_time)s->p.full_every) *
                                  SIM_TICK,
                     EV_DISK_FULL, 0, 0, NULL);
    }
}

/* A disk fills up: one node's (two times in three) or every node's at
 * once, as when the same runaway writer or the same log volume fills them
 * all (FAILURES.md: "disk full making every node unavailable"). Until
 * space comes back, writes that would grow a file fail with ENOSPC. */
void workload_disk_full(struct sim *s)
{
    if (s->phase != PHASE_FAULTS) {
        return;
    }
    struct sim_rng *r = &s->rng_io;
    uint32_t mask = (1u << s->p.slots) - 1;
    if (!coin(r, 1, 3)) {
        mask = 1u << sim_rng_below(r, s->p.slots);
    }
    sim_time len = sim_rng_range(r, 1, s->p.full_len) * SIM_TICK;
    node_disk_full(s, mask, true);
    sim_trace(s, TR_DISK_FULL, 0, mask, 1, len / SIM_TICK, 0);
    s->n_full_periods++;
    storage_wal_totals.full_periods++;
    sim_schedule(s, s->now + len, EV_DISK_SPACE, 0, mask, NULL);
}

/* Space comes back on the nodes of @mask; the next full disk follows. */
void workload_disk_space(struct sim *s, uint32_t mask)
{
    if (s->phase != PHASE_FAULTS) {
        return;
    }
    node_disk_full(s, mask, false);
    sim_trace(s, TR_DISK_FULL, 0, mask, 0, 0, 0);
    sim_schedule(
        s,
        s->now + sim_rng_range(&s->rng_io, 1, 2 * (sim_time)s->p.full_every) *
                     SIM_TICK,
        EV_DISK_FULL, 0, 0, NULL);
}

static void fault_step(struct sim *s)
{
    const struct sim_params *p = &s->p;
    struct sim_rng *r = &s->rng_work;
    uint32_t total = p->w_propose + p->w_read + p->w_snapshot + p->w_transfer +
                     p->w_conf + p->w_crash + p->w_partition;
    uint32_t x = (uint32_t)sim_rng_below(r, total);
    struct sim_node *leader = sim_leader(s);

    if (x < p->w_propose) {
        struct sim_node *n = leader;
        if (n == NULL || coin(r, 1, 10)) {
            n = random_live(s);
        }
        /* Clients have bounded concurrency: with a long backlog they wait,
         * so the log never grows faster than the slowest settings commit
         * and the liveness bound stays meaningful. */
        if (n != NULL && workload_backlog(n) < 64) {
            propose(s, n);
        }
        return;
    }
    x -= p->w_propose;
    if (x < p->w_read) {
        act_read(s);
        return;
    }
    x -= p->w_read;
    if (x < p->w_snapshot) {
        struct sim_node *n = random_live(s);
        if (n != NULL) {
            node_input(s, n, (struct sim_input){.kind = IN_SNAPSHOT});
        }
        return;
    }
    x -= p->w_snapshot;
    if (x < p->w_transfer) {
        if (leader != NULL) {
            act_transfer(s, leader);
        }
        return;
    }
    x -= p->w_transfer;
    if (x < p->w_conf) {
        if (leader != NULL) {
            act_conf(s, leader);
        }
        return;
    }
    x -= p->w_conf;
    if (x < p->w_crash) {
        act_crash(s);
        return;
    }
    act_partition(s);
}

static void resolve(struct sim *s);

/* Whether the liveness phase must see @pid through to a committed entry:
 * proposals still undecided at the heal and everything proposed after it.
 * A proposal lost during the fault phase was reported lost to its client,
 * which is a correct outcome, and is not retried. */
static bool must_settle(const struct sim *s, uint64_t pid)
{
    return pid >= s->heal_pid || s->props[pid].must_settle;
}

void workload_heal(struct sim *s)
{
    s->phase = PHASE_LIVENESS;
    sim_trace(s, TR_PHASE, 0, PHASE_LIVENESS, 0, 0, 0);
    resolve(s);
    for (uint64_t pid = 1; pid < s->n_props; pid++) {
        uint8_t st = s->props[pid].status;
        s->props[pid].must_settle = st == PROP_PENDING || st == PROP_QUEUED;
    }
    s->heal_pid = s->n_props > 0 ? s->n_props : 1;

    /* The bound: a fixed allowance for elections, plus the time a lagging
     * node needs to catch up through the log at the slowest settings (one
     * append of max_append_entries per round trip and fsync), since a
     * learner added late may be a thousand entries behind. */
    raft_index top = 0, bottom = UINT64_MAX;
    for (unsigned i = 0; i < s->p.slots; i++) {
        struct sim_node *n = &s->nodes[i];
        if (n->raft == NULL || raft_last_index(n->raft) == 0) {
            continue; /* a spare that never joined */
        }
        if (raft_last_index(n->raft) > top) {
            top = raft_last_index(n->raft);
        }
        if (n->app.applied < bottom) {
            bottom = n->app.applied;
        }
    }
    uint64_t behind = top > bottom ? top - bottom : 0;
    uint64_t trips = behind / s->p.max_append_entries + 1;
    s->p.liveness_time +=
        trips * (2 * (sim_time)s->p.lat_max + s->p.fsync_max + SIM_TICK);
    sim_schedule(s, s->now + s->p.liveness_time, EV_END, 0, 0, NULL);
    /* Faults stop: a clean network and normal disks from now on. Messages
     * already on a long detour still arrive. */
    s->p.loss_ppm = 0;
    s->p.dup_ppm = 0;
    s->p.reorder_ppm = 0;
    s->p.slow_fsync_ppm = 0;
    node_faults_stop(s); /* and disks have room again */
    if (s->links_cut) {
        net_heal(s);
    }
    for (unsigned i = 0; i < s->p.slots && !s->failed; i++) {
        if (!s->nodes[i].up) {
            node_restart(s, &s->nodes[i]);
        }
    }
}

/* Follows a lost proposal's chain of resubmissions to the latest one. */
static uint64_t latest(struct sim *s, uint64_t pid)
{
    while ((s->props[pid].status == PROP_LOST ||
            s->props[pid].status == PROP_REFUSED) &&
           s->props[pid].resubmitted_as != 0) {
        pid = s->props[pid].resubmitted_as;
    }
    return pid;
}

/* The term of the nearest entry known committed at or below @index, or 0. */
static raft_term committed_term_below(struct sim *s, raft_index index)
{
    const struct sim_check *c = &s->check;
    if (c->n_committed == 0) {
        return 0;
    }
    if (index >= c->n_committed) {
        index = c->n_committed - 1;
    }
    for (raft_index i = index; i > 0; i--) {
        if (c->committed[i].known) {
            return c->committed[i].term;
        }
    }
    return 0;
}

/* Settles what can be settled. A pending proposal (i, t) with a known
 * committed entry at i either committed (same term: Log Matching makes it
 * the same entry) or is lost. It is also lost for good once an entry of a
 * later term is committed below i: terms never decrease along a log, so no
 * log holding that committed entry can hold (i, t), and every future
 * leader's log holds it. */
static void resolve(struct sim *s)
{
    for (uint64_t pid = 1; pid < s->n_props; pid++) {
        struct sim_proposal *p = &s->props[pid];
        if (p->status != PROP_PENDING) {
            continue;
        }
        if (p->index < s->check.n_committed &&
            s->check.committed[p->index].known) {
            const struct sim_committed *c = &s->check.committed[p->index];
            p->status = c->term == p->term ? PROP_COMMITTED : PROP_LOST;
        } else if (committed_term_below(s, p->index - 1) > p->term) {
            p->status = PROP_LOST;
        }
    }
}

static void liveness_step(struct sim *s)
{
    resolve(s);
    struct sim_node *leader = sim_leader(s);
    if (leader != NULL) {
        struct raft_node *r = leader->raft;
        bool beyond = false;
        uint64_t n_props = s->n_props;
        for (uint64_t pid = 1; pid < n_props; pid++) {
            if (s->props[pid].status == PROP_PENDING &&
                s->props[pid].index > raft_last_index(r)) {
                beyond = true;
            }
            /* A lost proposal goes to the leader again, as a client would
             * retry it, and so does a retry the leader refused. */
            if (s->props[pid].status != PROP_LOST || !must_settle(s, pid) ||
                workload_backlog(leader) >= 64) {
                continue;
            }
            uint64_t tail = latest(s, pid);
            uint8_t st = s->props[tail].status;
            if (st != PROP_LOST && st != PROP_REFUSED) {
                continue;
            }
            uint64_t retry = workload_new_pid(s);
            s->props[tail].resubmitted_as = retry;
            node_input(s, leader,
                       (struct sim_input){.kind = IN_PROPOSE, .a = retry});
        }
        /* An undecided proposal beyond the leader's log is normally
         * settled by the rule above once the leader commits in its term.
         * Should one stay undecided, a filler entry at a time (only when
         * the leader is caught up, so fillers never pile up) moves the log
         * towards its index. */
        if (beyond && !leader->busy &&
            raft_commit_index(r) == raft_last_index(r)) {
            propose(s, leader);
        }
    }
    char why[256];
    if (workload_live(s, why, sizeof(why))) {
        s->phase = PHASE_DONE;
        sim_trace(s, TR_PHASE, 0, PHASE_DONE, 0, 0, 0);
    }
}

void workload_step(struct sim *s)
{
    if (s->phase == PHASE_FAULTS) {
        fault_step(s);
        sim_time gap = sim_rng_range(&s->rng_work, 1, 2 * s->p.action_gap);
        sim_schedule(s, s->now + gap, EV_WORKLOAD, 0, 0, NULL);
    } else if (s->phase == PHASE_LIVENESS) {
        liveness_step(s);
        sim_schedule(s, s->now + SIM_TICK, EV_WORKLOAD, 0, 0, NULL);
    }
}

bool workload_live(struct sim *s, char *why, size_t why_len)
{
    struct sim_node *leader = sim_leader(s);
    if (leader == NULL) {
        snprintf(why, why_len, "no leader");
        return false;
    }
    struct raft_node *r = leader->raft;
    const struct raft_conf *conf = raft_conf_of(r);
    const struct raft_member *self = raft_conf_get(conf, leader->id);
    if (self == NULL || self->role != RAFT_VOTER) {
        snprintf(why, why_len, "leader n%llu is not a voter in its config",
                 (unsigned long long)leader->id);
        return false;
    }
    for (uint64_t pid = 1; pid < s->n_props; pid++) {
        struct sim_proposal *p = &s->props[latest(s, pid)];
        if (s->props[pid].status == PROP_REFUSED || !must_settle(s, pid)) {
            continue;
        }
        if (p->status == PROP_QUEUED) {
            snprintf(why, why_len, "proposal %llu is still queued",
                     (unsigned long long)latest(s, pid));
            return false;
        }
        if (p->status == PROP_PENDING) {
            snprintf(why, why_len,
                     "proposal %llu (index %llu term %llu) is still "
                     "undecided",
                     (unsigned long long)pid, (unsigned long long)p->index,
                     (unsigned long long)p->term);
            return false;
        }
        if (p->status != PROP_COMMITTED) {
            snprintf(why, why_len,
                     "lost proposal %llu has no committed resubmission",
                     (unsigned long long)pid);
            return false;
        }
    }
    raft_index commit = raft_commit_index(r), last = raft_last_index(r);
    if (commit != last || raft_term_at(r, commit) != raft_current_term(r)) {
        snprintf(why, why_len,
                 "leader n%llu (term %llu) has commit %llu, last index %llu "
                 "(term %llu)",
                 (unsigned long long)leader->id,
                 (unsigned long long)raft_current_term(r),
                 (unsigned long long)commit, (unsigned long long)last,
                 (unsigned long long)raft_term_at(r, last));
        return false;
    }
    for (uint32_t i = 0; i < conf->n; i++) {
        struct sim_node *m = sim_node_by_id(s, conf->members[i].id);
        if (m == NULL || !m->up || m->app.applied != commit) {
            snprintf(why, why_len,
                     "member n%llu has applied %llu of %llu (up %d)",
                     (unsigned long long)conf->members[i].id,
                     (unsigned long long)(m ? m->app.applied : 0),
                     (unsigned long long)commit, m ? m->up : 0);
            return false;
        }
    }
    return true;
}
