/*
 * bench_kv.c - state-machine apply rate and snapshot times.
 *
 * Usage: bench_kv [dataset-MiB [scratch-dir]]
 *
 * Reports the apply rate of 256-byte puts with 1, 64 and 1,024 entries per
 * write transaction (commands are encoded beforehand: the rate is decode +
 * apply + commit, without fsync, as the store runs with MDB_NOSYNC), then
 * fills a store with dataset-MiB of 1 KiB values (default 64) and times
 * compaction of its history, snapshot creation, a chunked transfer into a
 * second store and the install.
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

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* CPU time of this process (user + system), to read the rates on a
 * machine shared with other work. */
static double cpu_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
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
    fprintf(stderr, "bench_kv: %s: %s\n", what, kv_strerror(rv));
    exit(1);
}

static struct kv_store *open_store(const char *dir, uint64_t map_size)
{
    struct kv_options o;
    struct kv_store *s = NULL;
    char err[256] = "";
    memset(&o, 0, sizeof(o));
    o.map_size = map_size;
    mkdir(dir, 0755);
    int rv = kv_open(dir, &o, &s, err, sizeof(err));
    if (rv != 0) {
        fprintf(stderr, "bench_kv: open %s: %s\n", dir, err);
        exit(1);
    }
    return s;
}

/* Encodes n puts with distinct, scattered keys and @value_len-byte values
 * into one buffer and fills @entries. */
static uint8_t *encode_puts(struct raft_entry *entries,
                            size_t n,
                            raft_index first,
                            size_t value_len,
                            bool ordered)
{
    uint8_t *value = malloc(value_len);
    memset(value, 'v', value_len);
    size_t one = 0;
    struct kv_cmd c;
    char key[32];
    memset(&c, 0, sizeof(c));
    c.type = KV_CMD_PUT;
    c.op.type = KV_OP_PUT;
    c.op.key = (const uint8_t *)key;
    c.op.key_len = 20;
    c.op.value = value;
    c.op.value_len = (uint32_t)value_len;
    one = kv_cmd_encoded_size(&c);
    uint8_t *buf = malloc(one * n);
    for (size_t i = 0; i < n; i++) {
        /* A multiplicative hash spreads keys over the tree, as real keys
         * are, instead of appending at its right edge. */
        uint64_t h =
            ordered ? (first + i) << 1 : (first + i) * 0x9e3779b97f4a7c15ull;
        snprintf(key, sizeof(key), "k%019llu", (unsigned long long)(h >> 1));
        size_t len = 0;
        int rv = kv_cmd_encode(&c, buf + one * i, one, &len);
        if (rv != 0) {
            die("encode", rv);
        }
        memset(&entries[i], 0, sizeof(entries[i]));
        entries[i].index = first + i;
        entries[i].term = 1;
        entries[i].type = RAFT_ENTRY_NORMAL;
        entries[i].len = (uint32_t)len;
        entries[i].data = buf + one * i;
    }
    free(value);
    return buf;
}

static void bench_apply(const char *base,
                        size_t batch,
                        size_t total,
                        bool ordered)
{
    char dir[600];
    snprintf(dir, sizeof(dir), "%s/apply-%zu", base, batch);
    struct kv_store *s = open_store(dir, 8ull << 30);
    struct raft_entry *e = malloc(total * sizeof(*e));
    uint8_t *buf = encode_puts(e, total, 1, 256, ordered);
    double t0 = now_s();
    double c0 = cpu_s();
    for (size_t i = 0; i < total; i += batch) {
        size_t n = total - i < batch ? total - i : batch;
        int rv = kv_apply(s, e + i, n, NULL);
        if (rv != 0) {
            die("apply", rv);
        }
    }
    double t = now_s() - t0;
    double c = cpu_s() - c0;
    printf(
        "apply %-9s %4zu/txn: %7zu puts %6.3f s = %7.0f puts/s, "
        "%7.0f per CPU-s\n",
        ordered ? "ascending" : "scattered", batch, total, t, (double)total / t,
        (double)total / c);
    kv_close(s);
    free(buf);
    free(e);
    nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

static void bench_snapshot(const char *base, uint64_t mib)
{
    char src_dir[600], dst_dir[600], path[600];
    const size_t value_len = 1024;
    const size_t batch = 1024;
    uint64_t n_keys = mib * 1024 * 1024 / value_len;
    uint64_t map = mib * 6ull << 20;
    if (map < (4ull << 30)) {
        map = 4ull << 30;
    }
    snprintf(src_dir, sizeof(src_dir), "%s/snap-src", base);
    snprintf(dst_dir, sizeof(dst_dir), "%s/snap-dst", base);
    snprintf(path, sizeof(path), "%s/snapshot", base);
    struct kv_store *src = open_store(src_dir, map);
    struct kv_store *dst = open_store(dst_dir, map);
    struct raft_entry *e = malloc(batch * sizeof(*e));
    double t0 = now_s();
    for (uint64_t i = 0; i < n_keys; i += batch) {
        size_t n = n_keys - i < batch ? (size_t)(n_keys - i) : batch;
        uint8_t *buf = encode_puts(e, n, 1 + i, value_len, false);
        int rv = kv_apply(src, e, n, NULL);
        if (rv != 0) {
            die("fill", rv);
        }
        free(buf);
    }
    double fill = now_s() - t0;
    struct kv_status st;
    kv_status(src, &st);
    t0 = now_s();
    int rv = kv_compact(src, st.revision);
    if (rv != 0) {
        die("compact", rv);
    }
    double compact = now_s() - t0;
    raft_index durable = 0;
    t0 = now_s();
    kv_checkpoint(src, &durable);
    double sync = now_s() - t0;
    printf(
        "data set %llu MiB: %llu keys of %zu bytes; fill %.2f s, compact "
        "%llu history records %.2f s, checkpoint %.2f s\n",
        (unsigned long long)mib, (unsigned long long)n_keys, value_len, fill,
        (unsigned long long)n_keys, compact, sync);

    struct kv_snapshot *snap = NULL;
    t0 = now_s();
    if ((rv = kv_snapshot_create(src, path, &snap)) != 0) {
        die("snapshot create", rv);
    }
    double create = now_s() - t0;
    const struct kv_snapshot_info *info = kv_snapshot_info(snap);
    printf("snapshot create: %.1f MiB in %.2f s (%.0f MiB/s)\n",
           (double)info->size / 1048576.0, create,
           (double)info->size / 1048576.0 / create);

    const size_t chunk = 1 << 20;
    uint8_t *buf = malloc(chunk);
    t0 = now_s();
    if ((rv = kv_snapshot_stage_begin(dst)) != 0) {
        die("stage begin", rv);
    }
    for (uint64_t off = 0;;) {
        size_t n = 0;
        if ((rv = kv_snapshot_read_chunk(snap, off, buf, chunk, &n)) != 0) {
            die("read chunk", rv);
        }
        if (n == 0) {
            break;
        }
        if ((rv = kv_snapshot_stage_write(dst, off, buf, n)) != 0) {
            die("stage write", rv);
        }
        off += n;
    }
    double transfer = now_s() - t0;
    t0 = now_s();
    if ((rv = kv_snapshot_stage_finish(dst, NULL)) != 0) {
        die("stage finish", rv);
    }
    double finish = now_s() - t0;
    t0 = now_s();
    if ((rv = kv_snapshot_install(dst)) != 0) {
        die("install", rv);
    }
    double install = now_s() - t0;
    printf(
        "snapshot receive: chunks of 1 MiB %.2f s, verify+fsync %.2f s, "
        "install (rename+reopen) %.3f s\n",
        transfer, finish, install);
    kv_status(dst, &st);
    printf("installed: applied %llu, revision %llu, %llu keys\n",
           (unsigned long long)st.applied, (unsigned long long)st.revision,
           (unsigned long long)st.keys);
    free(buf);
    free(e);
    kv_snapshot_close(snap);
    kv_close(src);
    kv_close(dst);
    nftw(src_dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
    nftw(dst_dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
    remove(path);
}

int main(int argc, char **argv)
{
    uint64_t mib = argc > 1 ? strtoull(argv[1], NULL, 10) : 64;
    char base[512];
    if (argc > 2) {
        snprintf(base, sizeof(base), "%s", argv[2]);
        mkdir(base, 0755);
    } else {
        const char *tmp = getenv("TMPDIR");
        snprintf(base, sizeof(base), "%s/bench-kv-XXXXXX", tmp ? tmp : "/tmp");
        if (mkdtemp(base) == NULL) {
            perror("mkdtemp");
            return 1;
        }
    }
    /* The same number of puts for each batch size, into a fresh store:
     * scattered keys dirty one leaf page per put, ascending keys (log-like
     * names) fill pages in order. Then a million puts, to show the cost of
     * a bigger tree. */
    for (int ordered = 0; ordered < 2; ordered++) {
        bench_apply(base, 1, 300000, ordered);
        bench_apply(base, 64, 300000, ordered);
        bench_apply(base, 1024, 300000, ordered);
    }
    bench_apply(base, 1024, 1000000, false);
    bench_snapshot(base, mib);
    if (argc <= 2) {
        nftw(base, rm_one, 16, FTW_DEPTH | FTW_PHYS);
    }
    return 0;
}
