/*
 * trace.c - the event trace.
 *
 * Every traced event is folded into a running hash, which is what the
 * determinism test compares: two runs of one seed must hash the same. The
 * last SIM_TRACE_RING records are kept as structs (formatting every event
 * would cost more than simulating it) and printed when a check fails, or
 * printed as they happen with --verbose.
 */
#include <stdio.h>

#include "sim.h"

static const char *msg_name(uint64_t type)
{
    static const char *names[] = {
        "?",          "prevote",         "prevote_resp",  "vote",
        "vote_resp",  "append",          "append_resp",   "heartbeat",
        "hb_resp",    "snapshot",        "snapshot_resp", "timeout_now",
        "read_index", "read_index_resp",
    };
    return type < sizeof(names) / sizeof(names[0]) ? names[type] : "?";
}

const char *sim_iofault_call_name(uint64_t call)
{
    static const char *names[] = {
        "?",         "pwrite", "fallocate",       "ftruncate",
        "fdatasync", "fsync",  "directory fsync",
    };
    return call < sizeof(names) / sizeof(names[0]) ? names[call] : "?";
}

static const char *state_name(uint64_t state)
{
    switch (state) {
    case RAFT_FOLLOWER:
        return "follower";
    case RAFT_PRE_CANDIDATE:
        return "pre-candidate";
    case RAFT_CANDIDATE:
        return "candidate";
    case RAFT_LEADER:
        return "LEADER";
    default:
        return "?";
    }
}

void sim_trace(struct sim *s,
               uint8_t kind,
               unsigned node,
               uint64_t a,
               uint64_t b,
               uint64_t c,
               uint64_t d)
{
    struct sim_trace_rec *r = &s->ring[s->ring_n % SIM_TRACE_RING];
    r->at = s->now;
    r->kind = kind;
    r->node = (uint8_t)node;
    r->a = a;
    r->b = b;
    r->c = c;
    r->d = d;
    s->ring_n++;

    uint64_t h = s->trace_hash;
    h = sim_mix64(h ^ r->at);
    h = sim_mix64(h ^ ((uint64_t)kind << 8 | node));
    h = sim_mix64(h ^ a);
    h = sim_mix64(h ^ b);
    h = sim_mix64(h ^ c);
    h = sim_mix64(h ^ d);
    s->trace_hash = h;

    if (s->opt.verbose) {
        trace_print(r, stdout);
    }
}

void trace_print(const struct sim_trace_rec *r, void *out)
{
    FILE *f = out;
    unsigned long long a = r->a, b = r->b, c = r->c, d = r->d;
    fprintf(f, "  t=%llu.%03llu ", (unsigned long long)(r->at / SIM_TICK),
            (unsigned long long)(r->at % SIM_TICK));
    switch (r->kind) {
    case TR_DELIVER:
        fprintf(f, "n%u <- n%llu %s term %llu (%llu)\n", r->node + 1, b,
                msg_name(a), c, d);
        break;
    case TR_DROP:
        fprintf(f, "drop n%llu -> n%u %s term %llu (%s)\n", b, r->node + 1,
                msg_name(a), c,
                d == 0   ? "loss"
                : d == 1 ? "link cut"
                         : "node down");
        break;
    case TR_STATE:
        fprintf(f, "n%u is %s term %llu leader n%llu commit %llu\n",
                r->node + 1, state_name(a), b, c, d);
        break;
    case TR_PROPOSE:
        fprintf(f, "n%u propose pid %llu -> rc %lld index %llu term %llu\n",
                r->node + 1, a, (long long)b, c, d);
        break;
    case TR_READ:
        fprintf(f, "n%u read ctx %llu (committed before: %llu)\n", r->node + 1,
                a, b);
        break;
    case TR_READ_DONE:
        fprintf(f, "n%u read ctx %llu index %llu ok %llu applied %llu\n",
                r->node + 1, a, b, c, d);
        break;
    case TR_SNAP_TAKEN:
        fprintf(f, "n%u snapshot taken at %llu (%llu bytes) rc %lld\n",
                r->node + 1, a, b, (long long)c);
        break;
    case TR_SNAP_INSTALL:
        fprintf(f, "n%u snapshot installed at %llu term %llu reset %llu\n",
                r->node + 1, a, b, c);
        break;
    case TR_CRASH:
        fprintf(f, "n%u CRASH (%llu of %llu unsynced writes survive)\n",
                r->node + 1, a, b);
        break;
    case TR_RESTART:
        fprintf(f,
                "n%u RESTART term %llu commit %llu snapshot %llu last %llu\n",
                r->node + 1, a, b, c, d);
        break;
    case TR_PARTITION:
        fprintf(f, "PARTITION group mask 0x%llx\n", a);
        break;
    case TR_CUT:
        fprintf(f, "CUT n%llu -> n%llu\n", a + 1, b + 1);
        break;
    case TR_HEAL:
        fprintf(f, "HEAL links\n");
        break;
    case TR_CONF:
        fprintf(f, "n%u conf change %llu id %llu -> rc %lld index %llu\n",
                r->node + 1, a, b, (long long)c, d);
        break;
    case TR_TRANSFER:
        fprintf(f, "n%u transfer to n%llu -> rc %lld\n", r->node + 1, a,
                (long long)b);
        break;
    case TR_FSYNC:
        fprintf(f, "n%u fsync done (%llu writes)\n", r->node + 1, a);
        break;
    case TR_APPLY:
        fprintf(f, "n%u applied %llu..%llu\n", r->node + 1, a, b);
        break;
    case TR_PHASE:
        fprintf(f, "PHASE %s\n",
                a == PHASE_LIVENESS ? "liveness (healed)" : "done");
        break;
    case TR_UNREACHABLE:
        fprintf(f, "n%u cannot send snapshot %llu to n%llu: unreachable\n",
                r->node + 1, a, b);
        break;
    case TR_WRITE:
        fprintf(f,
                "n%u writes entries %llu..+%llu, hard state term %llu "
                "(changed %llu), snapshot %llu\n",
                r->node + 1, a, b, c >> 1, c & 1, d);
        break;
    case TR_IOFAULT:
        if (a >= IOF_FDATASYNC) {
            fprintf(f,
                    "n%u IO FAULT %s: error %llu; %llu unsynced writes "
                    "reached the disk, %llu %s\n",
                    r->node + 1, sim_iofault_call_name(a), b, c, d >> 1,
                    d & 1 ? "dropped" : "still pending");
        } else {
            fprintf(f, "n%u IO FAULT %s: error %llu%s (after %llu bytes)\n",
                    r->node + 1, sim_iofault_call_name(a), b,
                    d ? ", disk full" : "", c);
        }
        break;
    case TR_HALT:
        fprintf(f, "n%u HALT on a failed %s: ", r->node + 1,
                a == 2   ? "write"
                : a == 3 ? "sync"
                         : "snapshot save");
        if (b) {
            fprintf(f,
                    "process exit and power loss (%llu writes of %llu "
                    "unsynced survive)\n",
                    c, d);
        } else {
            fprintf(f, "process exit, page cache kept (%llu unsynced writes)\n",
                    d);
        }
        break;
    case TR_RESTART_FAIL:
        fprintf(f, "n%u restart failed: wal_open hit an injected fault\n",
                r->node + 1);
        break;
    case TR_DISK_FULL:
        if (b) {
            fprintf(f, "DISK FULL on slots mask 0x%llx for %llu ticks\n", a, c);
        } else {
            fprintf(f, "DISK SPACE back on slots mask 0x%llx\n", a);
        }
        break;
    default:
        fprintf(f, "? kind %u\n", r->kind);
    }
}

void trace_dump_tail(struct sim *s, unsigned count)
{
    uint64_t n = s->ring_n < SIM_TRACE_RING ? s->ring_n : SIM_TRACE_RING;
    if (count < n) {
        n = count;
    }
    for (uint64_t i = s->ring_n - n; i < s->ring_n; i++) {
        trace_print(&s->ring[i % SIM_TRACE_RING], stdout);
    }
}
