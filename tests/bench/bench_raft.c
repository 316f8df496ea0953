/*
 * bench_raft.c - throughput of the consensus core alone.
 *
 * A 3-node cluster in one process, over an in-memory network with zero
 * latency and no faults, and an in-memory "disk" that copies every entry
 * and hard state (the cost a real driver pays to hand bytes to its WAL,
 * without the fsync). Each cycle the leader gets a batch of proposals, then
 * every node runs the raft_update contract until the cluster is quiet. We
 * count entries the leader applied per CPU-second of the whole process
 * (CLOCK_PROCESS_CPUTIME_ID: the core plus this minimal driver), at batch
 * sizes 1, 16 and 256, with 64-byte entries.
 *
 * As a same-run baseline, the table also shows how many 64-byte entries per
 * CPU-second a plain memcpy moves, so numbers from different machines can
 * be compared by their ratio to it. This is a benchmark, not a test: it
 * prints numbers and fails only if the cluster does not work at all.
 *
 *   bench_raft [--seconds S] [--entry-bytes N]
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "raft.h"

#define NODES 3
#define SNAPSHOT_EVERY 65536 /* compact the core's in-memory log */

struct bench_msg
{
    struct raft_message m;
    struct raft_entry *entries;
    uint8_t *data;
};

struct bench_node
{
    struct raft_node *raft;
    /* The "disk": a ring the entries are copied into, and a hard state. */
    uint8_t *ring;
    size_t ring_size, ring_pos;
    struct raft_hard_state hs;
    raft_index applied;
    raft_index snapshot;
    uint64_t applied_normal;
};

struct bench
{
    struct bench_node nodes[NODES];
    struct bench_msg *queue;
    size_t q_head, q_n, q_cap;
};

static void *xmalloc(size_t size)
{
    void *p = malloc(size > 0 ? size : 1);
    if (p == NULL) {
        fprintf(stderr, "bench_raft: out of memory\n");
        exit(1);
    }
    return p;
}

static double cpu_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Deep-copies @m into the queue: the update's memory is only valid until
 * raft_advance(), as on a real network. */
static void enqueue(struct bench *b, const struct raft_message *m)
{
    if (b->q_n == b->q_cap) {
        size_t cap = b->q_cap ? b->q_cap * 2 : 64;
        struct bench_msg *q = xmalloc(cap * sizeof(*q));
        for (size_t i = 0; i < b->q_n; i++) {
            q[i] = b->queue[(b->q_head + i) % b->q_cap];
        }
        free(b->queue);
        b->queue = q;
        b->q_cap = cap;
        b->q_head = 0;
    }
    struct bench_msg *bm = &b->queue[(b->q_head + b->q_n) % b->q_cap];
    b->q_n++;
    memset(bm, 0, sizeof(*bm));
    bm->m = *m;
    if (m->type == RAFT_MSG_APPEND && m->u.append.n_entries > 0) {
        uint32_t n = m->u.append.n_entries;
        size_t bytes = 0;
        for (uint32_t i = 0; i < n; i++) {
            bytes += m->u.append.entries[i].len;
        }
        bm->entries = xmalloc(n * sizeof(*bm->entries));
        bm->data = xmalloc(bytes);
        size_t off = 0;
        for (uint32_t i = 0; i < n; i++) {
            bm->entries[i] = m->u.append.entries[i];
            if (m->u.append.entries[i].len > 0) {
                memcpy(bm->data + off, m->u.append.entries[i].data,
                       m->u.append.entries[i].len);
            }
            bm->entries[i].data = bm->data + off;
            off += m->u.append.entries[i].len;
        }
        bm->m.u.append.entries = bm->entries;
    }
}

static void persist(struct bench_node *n, const struct raft_entry *e)
{
    if (e->len == 0 || e->len > n->ring_size) {
        return;
    }
    if (n->ring_pos + e->len > n->ring_size) {
        n->ring_pos = 0;
    }
    memcpy(n->ring + n->ring_pos, e->data, e->len);
    n->ring_pos += e->len;
}

/* Runs one node's updates until it has nothing to do; true if it did. */
static bool drain_node(struct bench *b, struct bench_node *n)
{
    struct raft_update u;
    bool any = false;
    while (raft_ready(n->raft, &u)) {
        any = true;
        for (size_t i = 0; i < u.n_messages; i++) {
            enqueue(b, &u.messages[i]);
        }
        for (size_t i = 0; i < u.n_entries; i++) {
            persist(n, &u.entries[i]);
        }
        if (u.hard_state_changed) {
            n->hs = u.hard_state;
        }
        for (size_t i = 0; i < u.n_messages_after_persist; i++) {
            enqueue(b, &u.messages_after_persist[i]);
        }
        for (size_t i = 0; i < u.n_committed; i++) {
            if (u.committed[i].type == RAFT_ENTRY_NORMAL &&
                u.committed[i].len > 0) {
                n->applied_normal++;
            }
            n->applied = u.committed[i].index;
        }
        raft_advance(n->raft, &u);
        if (n->applied >= n->snapshot + SNAPSHOT_EVERY) {
            raft_snapshot_taken(n->raft, n->applied, 0);
            n->snapshot = n->applied;
        }
    }
    return any;
}

static void run_until_quiet(struct bench *b)
{
    for (;;) {
        bool any = false;
        for (int i = 0; i < NODES; i++) {
            any |= drain_node(b, &b->nodes[i]);
        }
        while (b->q_n > 0) {
            struct bench_msg bm = b->queue[b->q_head];
            b->q_head = (b->q_head + 1) % b->q_cap;
            b->q_n--;
            struct bench_node *to = &b->nodes[bm.m.to - 1];
            raft_step(to->raft, &bm.m);
            free(bm.entries);
            free(bm.data);
            any = true;
        }
        if (!any) {
            return;
        }
    }
}

static int bench_init(struct bench *b)
{
    memset(b, 0, sizeof(*b));
    struct raft_conf conf = {.n = NODES};
    for (int i = 0; i < NODES; i++) {
        conf.members[i].id = (raft_id)(i + 1);
        conf.members[i].role = RAFT_VOTER;
    }
    for (int i = 0; i < NODES; i++) {
        struct raft_config cfg;
        raft_config_default(&cfg, (raft_id)(i + 1), 42 + (uint64_t)i);
        struct bench_node *n = &b->nodes[i];
        if (raft_node_create(&cfg, &n->raft) != 0 ||
            raft_bootstrap(n->raft, &conf) != 0) {
            return -1;
        }
        n->ring_size = 1u << 20;
        n->ring = xmalloc(n->ring_size);
    }
    /* Only node 1 ticks, so it is the one that times out and wins. */
    for (int t = 0; t < 1000; t++) {
        raft_tick(b->nodes[0].raft);
        run_until_quiet(b);
        if (raft_state_of(b->nodes[0].raft) == RAFT_LEADER) {
            return 0;
        }
    }
    return -1;
}

static void bench_close(struct bench *b)
{
    for (int i = 0; i < NODES; i++) {
        raft_node_destroy(b->nodes[i].raft);
        free(b->nodes[i].ring);
    }
    free(b->queue);
}

/* Entries per CPU-second the leader applies at @batch proposals per cycle. */
static int bench_batch(unsigned batch,
                       uint32_t entry_bytes,
                       double seconds,
                       double *rate,
                       double *cycles_per_s)
{
    struct bench b;
    if (bench_init(&b) != 0) {
        fprintf(stderr, "bench_raft: no leader elected\n");
        return -1;
    }
    struct bench_node *leader = &b.nodes[0];
    uint8_t *payload = xmalloc(entry_bytes);
    memset(payload, 0xab, entry_bytes);
    uint64_t before = leader->applied_normal, cycles = 0, proposed = 0;
    double start = cpu_seconds(), now = start;
    while (now - start < seconds) {
        for (unsigned i = 0; i < batch; i++) {
            memcpy(payload, &proposed, sizeof(proposed));
            if (raft_propose(leader->raft, payload, entry_bytes, NULL, NULL) ==
                0) {
                proposed++;
            }
        }
        run_until_quiet(&b);
        cycles++;
        if ((cycles & 15) == 0) {
            now = cpu_seconds();
        }
    }
    now = cpu_seconds();
    uint64_t applied = leader->applied_normal - before;
    int rc = applied == proposed && proposed > 0 ? 0 : -1;
    if (rc != 0) {
        fprintf(stderr, "bench_raft: proposed %llu, applied %llu\n",
                (unsigned long long)proposed, (unsigned long long)applied);
    }
    *rate = (double)applied / (now - start);
    *cycles_per_s = (double)cycles / (now - start);
    free(payload);
    bench_close(&b);
    return rc;
}

/* 64-byte entries per CPU-second a memcpy moves (to and from a 1 MiB
 * buffer, like the "disk" above), as a machine-speed reference. */
static double baseline(uint32_t entry_bytes, double seconds)
{
    size_t size = 1u << 20;
    uint8_t *src = xmalloc(size), *dst = xmalloc(size);
    memset(src, 1, size);
    uint64_t n = 0;
    size_t pos = 0;
    double start = cpu_seconds(), now = start;
    while (now - start < seconds) {
        for (int i = 0; i < 4096; i++) {
            if (pos + entry_bytes > size) {
                pos = 0;
            }
            memcpy(dst + pos, src + pos, entry_bytes);
            pos += entry_bytes;
        }
        n += 4096;
        now = cpu_seconds();
    }
    /* Keep the copies observable so they are not optimized away. */
    volatile uint8_t sink = dst[pos / 2];
    (void)sink;
    free(src);
    free(dst);
    return (double)n / (now - start);
}

int main(int argc, char **argv)
{
    double seconds = 1.0;
    uint32_t entry_bytes = 64;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--seconds") == 0) {
            seconds = atof(argv[i + 1]);
        } else if (strcmp(argv[i], "--entry-bytes") == 0) {
            entry_bytes = (uint32_t)atoi(argv[i + 1]);
        } else {
            fprintf(stderr,
                    "usage: bench_raft [--seconds S] "
                    "[--entry-bytes N]\n");
            return 2;
        }
    }
    if (seconds <= 0 || entry_bytes == 0) {
        fprintf(stderr, "bench_raft: bad arguments\n");
        return 2;
    }
    static const unsigned batches[] = {1, 16, 256};
    double base = baseline(entry_bytes, seconds);
    printf(
        "raft core, 3 nodes, in-memory network and storage, %u-byte "
        "entries, %.1f CPU-s per row\n",
        entry_bytes, seconds);
    printf("%-8s %16s %14s %14s\n", "batch", "entries/s", "cycles/s",
           "vs memcpy");
    int rc = 0;
    for (size_t i = 0; i < sizeof(batches) / sizeof(batches[0]); i++) {
        double rate = 0, cycles = 0;
        if (bench_batch(batches[i], entry_bytes, seconds, &rate, &cycles) !=
            0) {
            rc = 1;
        }
        printf("%-8u %16.0f %14.0f %13.4f%%\n", batches[i], rate, cycles,
               100.0 * rate / base);
    }
    printf("%-8s %16.0f %14s %14s\n", "memcpy", base, "-", "100%");
    return rc;
}
