/*
 * bench_compact.c - what a running history compaction costs the writes.
 *
 * Usage: bench_compact [history-records [compact-batch [scratch-dir]]]
 *
 * The node driver runs one kv_compact_step() per turn of its loop, between
 * the cycles that apply committed writes (net/node/bnode_space.c). This
 * program replays that schedule on one store: it fills the history with
 * history-records puts (default 1,000,000; 100-byte values over 1,000
 * keys), then times cycles of 32 overwrites applied in one transaction:
 *
 *   before      5,000 cycles, no compaction
 *   compacting  a KV_CMD_COMPACT entry moves the point to the last
 *               revision, and every cycle is followed by one step, until
 *               the history below the point is gone
 *   after       5,000 cycles, no compaction
 *
 * and prints p50, p99 and max of a cycle (apply + step) in each phase, in
 * the same run, so the numbers share the machine's state. A cycle here has
 * no fsync, which in a real node adds milliseconds to every write: the
 * ratio printed is the worst case of what compaction adds to the loop.
 */
#define _XOPEN_SOURCE 700
#include <ftw.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "kv.h"

#define CYCLE_PUTS 32
#define KEYS 1000
#define VALUE_BYTES 100
#define PHASE_CYCLES 5000

static double now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

static int rm_one(const char *path,
                  const struct stat *sb,
                  int flag,
                  struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static void die(const char *what, int rv)
{
    fprintf(stderr, "bench_compact: %s: %s\n", what, kv_strerror(rv));
    exit(1);
}

/* Applies @n overwrites at indexes from *@index. */
static void apply_puts(struct kv_store *s, raft_index *index, size_t n)
{
    static uint8_t bufs[1024][64 + VALUE_BYTES];
    static struct raft_entry e[1024];
    uint8_t value[VALUE_BYTES];
    char key[32];
    struct kv_cmd c;
    memset(value, 'v', sizeof(value));
    memset(&c, 0, sizeof(c));
    c.type = KV_CMD_PUT;
    c.op.type = KV_OP_PUT;
    c.op.key = (const uint8_t *)key;
    c.op.value = value;
    c.op.value_len = VALUE_BYTES;
    for (size_t i = 0; i < n; i++) {
        size_t len = 0;
        snprintf(key, sizeof(key), "key%04llu",
                 (unsigned long long)((*index * 7919) % KEYS));
        c.op.key_len = (uint32_t)strlen(key);
        int rv = kv_cmd_encode(&c, bufs[i], sizeof(bufs[i]), &len);
        if (rv != 0) {
            die("encode", rv);
        }
        memset(&e[i], 0, sizeof(e[i]));
        e[i].index = (*index)++;
        e[i].term = 1;
        e[i].type = RAFT_ENTRY_NORMAL;
        e[i].len = (uint32_t)len;
        e[i].data = bufs[i];
    }
    int rv = kv_apply(s, e, n, NULL);
    if (rv != 0) {
        die("apply", rv);
    }
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static void report(const char *phase, double *t, size_t n, double *p99_out)
{
    qsort(t, n, sizeof(*t), cmp_double);
    double p50 = t[n / 2], p99 = t[(n * 99) / 100], max = t[n - 1];
    printf("%-11s %6zu cycles  p50 %8.1f us  p99 %8.1f us  max %8.1f us\n",
           phase, n, p50, p99, max);
    if (p99_out != NULL) {
        *p99_out = p99;
    }
}

int main(int argc, char **argv)
{
    uint64_t history = argc > 1 ? strtoull(argv[1], NULL, 10) : 1000000;
    uint32_t batch = argc > 2 ? (uint32_t)strtoul(argv[2], NULL, 10) : 0;
    char base[512];
    if (argc > 3) {
        snprintf(base, sizeof(base), "%s", argv[3]);
        mkdir(base, 0755);
    } else {
        const char *tmp = getenv("TMPDIR");
        snprintf(base, sizeof(base), "%s/bench-compact-XXXXXX",
                 tmp ? tmp : "/tmp");
        if (mkdtemp(base) == NULL) {
            perror("mkdtemp");
            return 1;
        }
    }
    struct kv_options o;
    struct kv_store *s = NULL;
    char err[256] = "";
    memset(&o, 0, sizeof(o));
    o.map_size = 8ull << 30;
    o.compact_batch = batch;
    int rv = kv_open(base, &o, &s, err, sizeof(err));
    if (rv != 0) {
        fprintf(stderr, "bench_compact: open %s: %s\n", base, err);
        return 1;
    }
    raft_index index = 1;
    for (uint64_t done = 0; done < history; done += 1024) {
        apply_puts(s, &index, history - done < 1024 ? history - done : 1024);
    }
    printf(
        "history %llu records, compact batch %u records, %d puts a "
        "cycle\n",
        (unsigned long long)history,
        batch != 0 ? batch : KV_COMPACT_BATCH_DEFAULT, CYCLE_PUTS);

    size_t cap = PHASE_CYCLES + 100000;
    double *t = malloc(cap * sizeof(*t));
    double *steps = malloc(cap * sizeof(*steps));
    double p99_before = 0, p99_during = 0;

    for (size_t i = 0; i < PHASE_CYCLES; i++) {
        double t0 = now_us();
        apply_puts(s, &index, CYCLE_PUTS);
        t[i] = now_us() - t0;
    }
    report("before", t, PHASE_CYCLES, &p99_before);

    struct kv_status st;
    if ((rv = kv_status(s, &st)) != 0) {
        die("status", rv);
    }
    struct kv_cmd c;
    uint8_t cbuf[32];
    size_t clen = 0;
    memset(&c, 0, sizeof(c));
    c.type = KV_CMD_COMPACT;
    c.revision = st.revision;
    if ((rv = kv_cmd_encode(&c, cbuf, sizeof(cbuf), &clen)) != 0) {
        die("encode compact", rv);
    }
    struct raft_entry ce = {0};
    ce.index = index++;
    ce.term = 1;
    ce.type = RAFT_ENTRY_NORMAL;
    ce.len = (uint32_t)clen;
    ce.data = cbuf;
    if ((rv = kv_apply(s, &ce, 1, NULL)) != 0) {
        die("apply compact", rv);
    }
    bool pending = true;
    size_t n = 0;
    double c0 = now_us();
    while (pending && n < cap) {
        double t0 = now_us();
        apply_puts(s, &index, CYCLE_PUTS);
        double t1 = now_us();
        if ((rv = kv_compact_step(s, &pending)) != 0) {
            die("compact step", rv);
        }
        double t2 = now_us();
        t[n] = t2 - t0;
        steps[n] = t2 - t1;
        n++;
    }
    double took = (now_us() - c0) / 1e6;
    report("compacting", t, n, &p99_during);
    report("  (a step)", steps, n, NULL);

    for (size_t i = 0; i < PHASE_CYCLES; i++) {
        double t0 = now_us();
        apply_puts(s, &index, CYCLE_PUTS);
        t[i] = now_us() - t0;
    }
    report("after", t, PHASE_CYCLES, NULL);
    printf(
        "compaction of %llu records took %.2f s interleaved with writes; "
        "cycle p99 during / before = %.2f\n",
        (unsigned long long)history, took,
        p99_before > 0 ? p99_during / p99_before : 0.0);
    free(t);
    free(steps);
    kv_close(s);
    if (argc <= 3) {
        nftw(base, rm_one, 16, FTW_DEPTH | FTW_PHYS);
    }
    return 0;
}
