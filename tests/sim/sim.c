/*
 * sim.c - the event loop and the two phases of a run.
 *
 * Everything that happens is an event in one priority queue ordered by
 * (simulated time, scheduling sequence): node ticks, message deliveries,
 * fsync completions, workload steps, restarts, partition healing. Ties
 * break by the order events were scheduled, never by pointers, so a seed
 * always yields the same sequence. After every event the checkers run.
 *
 * A run has a fault phase (the seed's mix of faults and workload) and then
 * a liveness phase: everything heals, crashed nodes restart, and within a
 * bounded simulated time a leader must be elected and every proposal must
 * be resolved and applied everywhere.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sim.h"

void *sim_xmalloc(size_t size)
{
    void *p = malloc(size > 0 ? size : 1);
    if (p == NULL) {
        fprintf(stderr, "sim: out of memory\n");
        abort();
    }
    return p;
}

void *sim_xcalloc(size_t n, size_t size)
{
    void *p = calloc(n > 0 ? n : 1, size > 0 ? size : 1);
    if (p == NULL) {
        fprintf(stderr, "sim: out of memory\n");
        abort();
    }
    return p;
}

int sim_grow(void **ptr, size_t *cap, size_t need, size_t size)
{
    if (need <= *cap) {
        return 0;
    }
    size_t n = *cap ? *cap : 8;
    while (n < need) {
        n *= 2;
    }
    void *p = realloc(*ptr, n * size);
    if (p == NULL) {
        return -1;
    }
    *ptr = p;
    *cap = n;
    return 0;
}

void sim_fail(struct sim *s, const char *invariant, const char *fmt, ...)
{
    if (s->failed) {
        return; /* the first violation is the interesting one */
    }
    s->failed = true;
    snprintf(s->fail_invariant, sizeof(s->fail_invariant), "%s", invariant);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(s->fail_detail, sizeof(s->fail_detail), fmt, ap);
    va_end(ap);
}

struct sim_node *sim_node_by_id(struct sim *s, raft_id id)
{
    if (id == 0 || id > s->p.slots) {
        return NULL;
    }
    return &s->nodes[id - 1];
}

struct sim_node *sim_leader(struct sim *s)
{
    struct sim_node *best = NULL;
    for (unsigned i = 0; i < s->p.slots; i++) {
        struct sim_node *n = &s->nodes[i];
        if (!n->up || raft_state_of(n->raft) != RAFT_LEADER) {
            continue;
        }
        if (best == NULL ||
            raft_current_term(n->raft) > raft_current_term(best->raft)) {
            best = n;
        }
    }
    return best;
}

/* ---- the event queue: a binary min-heap on (at, seq) ------------------ */

static bool earlier(const struct sim_event *a, const struct sim_event *b)
{
    return a->at < b->at || (a->at == b->at && a->seq < b->seq);
}

void sim_schedule(struct sim *s,
                  sim_time at,
                  uint8_t kind,
                  unsigned slot,
                  uint64_t incarnation,
                  struct sim_msg *msg)
{
    if (sim_grow((void **)&s->heap, &s->heap_cap, s->heap_n + 1,
                 sizeof(*s->heap)) != 0) {
        abort();
    }
    struct sim_event ev = {
        .at = at < s->now ? s->now : at,
        .seq = s->seq++,
        .kind = kind,
        .slot = (uint8_t)slot,
        .incarnation = incarnation,
        .msg = msg,
    };
    size_t i = s->heap_n++;
    while (i > 0) {
        size_t parent = (i - 1) / 2;
        if (!earlier(&ev, &s->heap[parent])) {
            break;
        }
        s->heap[i] = s->heap[parent];
        i = parent;
    }
    s->heap[i] = ev;
}

static struct sim_event pop_event(struct sim *s)
{
    struct sim_event top = s->heap[0];
    struct sim_event last = s->heap[--s->heap_n];
    size_t i = 0;
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        const struct sim_event *best = &last;
        if (l < s->heap_n && earlier(&s->heap[l], best)) {
            m = l;
            best = &s->heap[l];
        }
        if (r < s->heap_n && earlier(&s->heap[r], best)) {
            m = r;
        }
        if (m == i) {
            break;
        }
        s->heap[i] = s->heap[m];
        i = m;
    }
    if (s->heap_n > 0) {
        s->heap[i] = last;
    }
    return top;
}

static void dispatch(struct sim *s, struct sim_event *ev)
{
    struct sim_node *n = &s->nodes[ev->slot];
    switch (ev->kind) {
    case EV_TICK:
        if (n->up && n->incarnation == ev->incarnation) {
            node_input(s, n, (struct sim_input){.kind = IN_TICK});
            if (n->up && n->incarnation == ev->incarnation) {
                sim_schedule(s, ev->at + n->tick_period, EV_TICK, ev->slot,
                             ev->incarnation, NULL);
            }
        }
        break;
    case EV_DELIVER:
        net_deliver(s, ev->msg);
        break;
    case EV_FSYNC:
        if (n->up && n->incarnation == ev->incarnation) {
            node_fsync_done(s, n);
        }
        break;
    case EV_WORKLOAD:
        workload_step(s);
        break;
    case EV_RESTART:
        if (s->phase == PHASE_FAULTS && !n->up) {
            node_restart(s, n);
        }
        break;
    case EV_HEAL_LINKS:
        if (s->links_cut) {
            net_heal(s);
        }
        break;
    case EV_HEAL:
        workload_heal(s);
        break;
    case EV_DISK_FULL:
        workload_disk_full(s);
        break;
    case EV_DISK_SPACE:
        workload_disk_space(s, (uint32_t)ev->incarnation);
        break;
    case EV_END:
        if (s->phase != PHASE_DONE) {
            char why[256];
            if (!workload_live(s, why, sizeof(why))) {
                sim_fail(s, "liveness", "%llu ticks after healing: %s",
                         (unsigned long long)(s->p.liveness_time / SIM_TICK),
                         why);
            } else {
                s->phase = PHASE_DONE;
            }
        }
        break;
    default:
        abort();
    }
}

static void print_params(const struct sim_params *p)
{
    printf(
        "  params: nodes %u, faults %llu ticks; latency %u-%u, loss %u "
        "ppm, dup %u ppm, reorder %u ppm (max %u); fsync %u-%u, slow %u "
        "ppm (max %u), torn %d; crashes %d, partitions %d/%d, conf %d, "
        "transfers %d, snapshots %d, follower reads %d; pre_vote %d, "
        "check_quorum %d, lease_reads %d, election %u, heartbeat %u, "
        "append %u, inflight %u, chunk %u, trailing %llu, tick skew %u\n",
        p->nodes, (unsigned long long)(p->fault_time / SIM_TICK), p->lat_min,
        p->lat_max, p->loss_ppm, p->dup_ppm, p->reorder_ppm, p->reorder_max,
        p->fsync_min, p->fsync_max, p->slow_fsync_ppm, p->slow_fsync_max,
        p->torn_writes, p->crashes, p->partitions, p->asym_partitions,
        p->conf_changes, p->transfers, p->snapshots, p->follower_reads,
        p->pre_vote, p->check_quorum, p->lease_reads, p->election_ticks,
        p->heartbeat_ticks, p->max_append_entries, p->max_inflight,
        p->chunk_bytes, (unsigned long long)p->trailing, p->tick_skew);
    if (p->io_write_ppm != 0 || p->io_sync_ppm != 0 || p->disk_full) {
        printf(
            "  io faults: write %u ppm, sync %u ppm; disk full %d (every "
            "~%u ticks, up to %u ticks)\n",
            p->io_write_ppm, p->io_sync_ppm, p->disk_full, p->full_every,
            p->full_len);
    }
}

static void report_failure(struct sim *s, const char *prog)
{
    printf("FAIL seed %llu: [%s] %s\n", (unsigned long long)s->opt.seed,
           s->fail_invariant, s->fail_detail);
    printf("  at t=%llu.%03llu, after %llu events\n",
           (unsigned long long)(s->now / SIM_TICK),
           (unsigned long long)(s->now % SIM_TICK),
           (unsigned long long)s->n_events);
    print_params(&s->p);
    for (unsigned i = 0; i < s->p.slots; i++) {
        struct sim_node *n = &s->nodes[i];
        if (!n->up) {
            printf("  n%u: down\n", i + 1);
            continue;
        }
        struct raft_node *r = n->raft;
        const struct raft_conf *conf = raft_conf_of(r);
        char members[128] = "";
        size_t off = 0;
        for (uint32_t j = 0; j < conf->n && off < sizeof(members) - 8; j++) {
            off += (size_t)snprintf(
                members + off, sizeof(members) - off, "%s%llu%s", j ? " " : "",
                (unsigned long long)conf->members[j].id,
                conf->members[j].role == RAFT_LEARNER ? "L" : "");
        }
        printf(
            "  n%u: state %d term %llu vote %llu leader %llu commit %llu "
            "applied %llu log %llu..%llu conf {%s}%s\n",
            i + 1, raft_state_of(r), (unsigned long long)raft_current_term(r),
            (unsigned long long)raft_voted_for(r),
            (unsigned long long)raft_leader(r),
            (unsigned long long)raft_commit_index(r),
            (unsigned long long)n->app.applied,
            (unsigned long long)raft_first_index(r),
            (unsigned long long)raft_last_index(r), members,
            n->busy ? " (fsync pending)" : "");
    }
    printf("  trace tail:\n");
    trace_dump_tail(s, 30);
    printf("  replay: %s --seed %llu --nodes %u", prog,
           (unsigned long long)s->opt.seed, s->p.nodes);
    if (s->opt.fault_ticks != 0) {
        printf(" --ticks %llu", (unsigned long long)s->opt.fault_ticks);
    }
    if (s->opt.storage == SIM_STORAGE_WAL) {
        printf(" --storage wal");
    }
    if (s->opt.max_events != 0) {
        printf(" --max-events %llu", (unsigned long long)s->opt.max_events);
    }
    printf(" --verbose\n");
    fflush(stdout);
}

static void sim_free(struct sim *s)
{
    while (s->heap_n > 0) {
        struct sim_event ev = pop_event(s);
        net_msg_free(ev.msg);
    }
    free(s->heap);
    for (unsigned i = 0; i < SIM_MAX_NODES; i++) {
        node_free(&s->nodes[i]);
    }
    check_free(s);
    free(s->props);
    free(s->readv);
    free(s);
}

int sim_run(const struct sim_options *opt,
            uint64_t *trace_hash,
            bool quiet,
            const char *prog)
{
    struct sim *s = sim_xcalloc(1, sizeof(*s));
    s->opt = *opt;
    sim_params_choose(&s->p, opt->seed, opt->nodes);
    if (opt->fault_ticks != 0) {
        s->p.fault_time = opt->fault_ticks * SIM_TICK;
    }
    if (opt->storage != SIM_STORAGE_WAL) {
        /* Only the simulated file system under the WAL fails. */
        s->p.io_write_ppm = s->p.io_sync_ppm = 0;
        s->p.disk_full = false;
    }
    /* Separate streams, so that a change in how one part draws numbers does
     * not reshuffle everything else. */
    sim_rng_seed(&s->net.rng, sim_mix64(opt->seed ^ 0x6e6574ull));
    sim_rng_seed(&s->rng_work, sim_mix64(opt->seed ^ 0x776f726bull));
    sim_rng_seed(&s->rng_disk, sim_mix64(opt->seed ^ 0x6469736bull));
    sim_rng_seed(&s->rng_io, sim_mix64(opt->seed ^ 0x696f666c74ull));
    s->salt = sim_mix64(opt->seed ^ 0x73616c74ull);
    s->phase = PHASE_FAULTS;
    check_init(s);
    if (opt->verbose) {
        printf("seed %llu\n", (unsigned long long)opt->seed);
        print_params(&s->p);
    }

    for (unsigned i = 0; i < s->p.slots && !s->failed; i++) {
        struct sim_node *n = &s->nodes[i];
        n->slot = i;
        n->id = i + 1;
        /* Drawn from the seed directly, so that seeds without skew keep
         * the schedules they had before skew existed. */
        n->tick_period = SIM_TICK - s->p.tick_skew +
                         sim_mix64(opt->seed ^ (0x736b6577ull + i)) %
                             (2 * (uint64_t)s->p.tick_skew + 1);
        node_start(s, n, i < s->p.nodes);
    }
    workload_start(s);
    sim_schedule(s, s->p.fault_time, EV_HEAL, 0, 0, NULL);

    uint64_t budget = opt->max_events != 0 ? opt->max_events : SIM_EVENTS_MAX;
    while (!s->failed && s->phase != PHASE_DONE && s->heap_n > 0) {
        struct sim_event ev = pop_event(s);
        s->now = ev.at;
        dispatch(s, &ev);
        s->n_events++;
        if (!s->failed) {
            check_event(s);
        }
        if (!s->failed && s->n_events >= budget) {
            sim_fail(s, "liveness",
                     "event budget of %llu spent at t=%llu ticks without "
                     "reaching the end: a livelock",
                     (unsigned long long)budget,
                     (unsigned long long)(s->now / SIM_TICK));
        }
    }
    if (!s->failed) {
        check_full(s);
    }
    coverage_seed_done(s);

    *trace_hash = s->trace_hash;
    int rc = s->failed ? 1 : 0;
    if (s->failed) {
        report_failure(s, prog);
    } else if (!quiet) {
        printf(
            "ok seed %llu: nodes %u, %llu events, t=%llu ticks, applied "
            "%llu (max index %llu), reads %llu, elections %llu, crashes "
            "%llu, snapshots %llu taken/%llu installed, msgs %llu sent "
            "%llu delivered",
            (unsigned long long)opt->seed, s->p.nodes,
            (unsigned long long)s->n_events,
            (unsigned long long)(s->now / SIM_TICK),
            (unsigned long long)s->n_applied,
            (unsigned long long)s->check.applied_max,
            (unsigned long long)s->n_reads_served,
            (unsigned long long)s->n_elections,
            (unsigned long long)s->n_crashes,
            (unsigned long long)s->n_snapshots,
            (unsigned long long)s->n_installs, (unsigned long long)s->net.sent,
            (unsigned long long)s->net.delivered);
        if (opt->storage == SIM_STORAGE_WAL) {
            printf(
                ", io faults %llu, halts %llu, failed restarts %llu, "
                "full disks %llu",
                (unsigned long long)s->n_iofaults,
                (unsigned long long)s->n_halts,
                (unsigned long long)s->n_restarts_failed,
                (unsigned long long)s->n_full_periods);
        }
        printf(
            ", reached: stale-suffix %llu, snapshot-overlap %llu, "
            "sticky-vote %llu",
            (unsigned long long)s->coverage.stale_suffix,
            (unsigned long long)s->coverage.snapshot_overlap,
            (unsigned long long)s->coverage.sticky_vote);
        printf(", trace %016llx\n", (unsigned long long)s->trace_hash);
    }
    sim_free(s);
    return rc;
}
