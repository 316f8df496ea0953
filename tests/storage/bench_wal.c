/*
 * bench_wal.c - WAL throughput with group commit at 1, 16 and 256 records
 * per wal_sync(), beside the raw rate of "append 256 bytes, fdatasync" on
 * the same disk, measured in the same run. Not a test: it prints numbers.
 *
 * usage: bench_wal [dir] [seconds per case]
 * dir defaults to ./bench_wal.d (created and removed); it should live on
 * the disk the server will use.
 */
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "wal.h"

#define RECORD_BYTES 256
#define MAX_BATCH 256

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void remove_dir(const char *path)
{
    DIR *d = opendir(path);
    struct dirent *e;
    char buf[1024];

    if (d == NULL) {
        return;
    }
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0) {
            snprintf(buf, sizeof buf, "%s/%s", path, e->d_name);
            unlink(buf);
        }
    }
    closedir(d);
    rmdir(path);
}

/* 256-byte appends to a file, each followed by fdatasync. With @prezero
 * the file is written full of zeros and synced first, so the appends
 * overwrite allocated blocks. Returns syncs per second. */
static double raw_rate(const char *dir, double seconds, int prezero)
{
    char path[1024];
    static char rec[RECORD_BYTES];
    static char zeros[1 << 16];
    const off_t size = 64 << 20;
    double t0;
    double t;
    long n = 0;
    off_t off = 0;
    int fd;

    snprintf(path, sizeof path, "%s/raw.%d", dir, prezero);
    fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0644);
    if (fd < 0) {
        perror("open");
        exit(1);
    }
    if (prezero) {
        for (off_t o = 0; o < size; o += (off_t)sizeof zeros) {
            if (pwrite(fd, zeros, sizeof zeros, o) != (ssize_t)sizeof zeros) {
                perror("pwrite");
                exit(1);
            }
        }
        fsync(fd);
    }
    memset(rec, 'r', sizeof rec);
    t0 = now_s();
    do {
        if (pwrite(fd, rec, sizeof rec, off) != (ssize_t)sizeof rec ||
            fdatasync(fd) != 0) {
            perror("raw write");
            exit(1);
        }
        off += RECORD_BYTES;
        n++;
        t = now_s();
    } while (t - t0 < seconds && off + RECORD_BYTES < size);
    close(fd);
    unlink(path);
    return (double)n / (t - t0);
}

static int cmp_double(const void *a, const void *b);

#define MAX_SAMPLES (1 << 20)

/* Records per second through the WAL with @batch records per sync. Also
 * gives the p99 and the largest latency of one append + sync, in
 * microseconds. */
static double wal_rate(const char *dir,
                       size_t batch,
                       double seconds,
                       double *syncs_per_s,
                       double *p99_us,
                       double *max_us)
{
    static double lat[MAX_SAMPLES];
    size_t n_lat = 0;
    double before;
    static uint8_t data[MAX_BATCH][RECORD_BYTES];
    struct raft_entry ents[MAX_BATCH];
    struct wal_options o;
    struct wal_loaded l;
    struct wal *wal;
    char sub[1024];
    raft_index next = 1;
    long syncs = 0;
    double t0;
    double t;

    snprintf(sub, sizeof sub, "%s/wal.%zu", dir, batch);
    wal_options_default(&o);
    if (getenv("BENCH_PREALLOC") != NULL) {
        o.prealloc = (enum wal_prealloc)atoi(getenv("BENCH_PREALLOC"));
    }
    if (wal_create(&o, &wal) != 0 || wal_open(wal, sub, &l) != 0) {
        fprintf(stderr, "wal_open: %s\n", wal_errmsg(wal));
        exit(1);
    }
    wal_loaded_free(wal, &l);
    for (size_t i = 0; i < batch; i++) {
        memset(data[i], (int)('a' + i % 26), RECORD_BYTES);
        ents[i].term = 1;
        ents[i].type = RAFT_ENTRY_NORMAL;
        ents[i].len = RECORD_BYTES;
        ents[i].data = data[i];
    }
    t0 = now_s();
    t = t0;
    do {
        before = t;
        for (size_t i = 0; i < batch; i++) {
            ents[i].index = next + i;
        }
        if (wal_append(wal, ents, batch) != 0 || wal_sync(wal, NULL) != 0) {
            fprintf(stderr, "wal: %s\n", wal_errmsg(wal));
            exit(1);
        }
        next += batch;
        syncs++;
        t = now_s();
        if (n_lat < MAX_SAMPLES) {
            lat[n_lat++] = (t - before) * 1e6;
        }
    } while (t - t0 < seconds);
    wal_destroy(wal);
    remove_dir(sub);
    qsort(lat, n_lat, sizeof *lat, cmp_double);
    *p99_us = lat[(n_lat * 99) / 100];
    *max_us = lat[n_lat - 1];
    *syncs_per_s = (double)syncs / (t - t0);
    return (double)(next - 1) / (t - t0);
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a;
    double y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* Sorts @v (@n values) and returns the median. */
static double median(double *v, size_t n)
{
    qsort(v, n, sizeof *v, cmp_double);
    return n % 2 == 1 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

#define MAX_ROUNDS 9
#define N_CASES 5 /* raw growing, raw pre-zeroed, wal 1, 16, 256 */

int main(int argc, char **argv)
{
    const char *dir = argc > 1 ? argv[1] : "./bench_wal.d";
    double seconds = argc > 2 ? atof(argv[2]) : 1.0;
    int rounds = argc > 3 ? atoi(argv[3]) : 5;
    static const size_t batches[] = {1, 16, 256};
    static const char *const modes[] = {"none", "fallocate", "zero-filled"};
    double v[N_CASES][MAX_ROUNDS];
    double syncs[3][MAX_ROUNDS];
    double p99[3][MAX_ROUNDS];
    double worst[3] = {0, 0, 0};
    double lo[N_CASES];
    double hi[N_CASES];
    double med[N_CASES];
    double med_syncs[3];
    double med_p99[3];
    const char *env = getenv("BENCH_PREALLOC");
    int mode = env != NULL ? atoi(env) : WAL_PREALLOC_ZERO;

    if (rounds < 1 || rounds > MAX_ROUNDS || seconds <= 0 || mode < 0 ||
        mode > 2) {
        fprintf(stderr,
                "usage: bench_wal [dir] [seconds per case] [rounds 1-9]\n");
        return 2;
    }
    if (mkdir(dir, 0755) != 0) {
        perror("mkdir (the directory must not exist)");
        return 1;
    }
    /* The cases are interleaved round by round, so that noise from other
     * work on the machine spreads over all of them; medians are reported
     * with the spread. */
    for (int r = 0; r < rounds; r++) {
        v[0][r] = raw_rate(dir, seconds, 0);
        v[1][r] = raw_rate(dir, seconds, 1);
        for (size_t i = 0; i < 3; i++) {
            double max_us;
            v[2 + i][r] = wal_rate(dir, batches[i], seconds, &syncs[i][r],
                                   &p99[i][r], &max_us);
            if (max_us > worst[i]) {
                worst[i] = max_us;
            }
        }
    }
    for (size_t c = 0; c < N_CASES; c++) {
        med[c] = median(v[c], (size_t)rounds);
        lo[c] = v[c][0];
        hi[c] = v[c][rounds - 1];
    }
    for (size_t i = 0; i < 3; i++) {
        med_syncs[i] = median(syncs[i], (size_t)rounds);
        med_p99[i] = median(p99[i], (size_t)rounds);
    }
    printf("bench_wal: %d rounds x %.1f s per case, medians [min..max]\n\n",
           rounds, seconds);
    printf(
        "raw 256 B append + fdatasync, growing file:    %7.0f syncs/s "
        "[%.0f..%.0f]\n",
        med[0], lo[0], hi[0]);
    printf(
        "raw 256 B append + fdatasync, pre-zeroed file: %7.0f syncs/s "
        "[%.0f..%.0f]\n",
        med[1], lo[1], hi[1]);
    printf("\nWAL, %d-byte records, 64 MiB %s segments:\n", RECORD_BYTES,
           modes[mode]);
    printf("%-13s %11s %7s %8s %8s %9s   %s\n", "records/sync", "records/s",
           "MB/s", "syncs/s", "p99 us", "max us", "records/s [min..max]");
    for (size_t i = 0; i < 3; i++) {
        printf("%-13zu %11.0f %7.1f %8.0f %8.0f %9.0f   [%.0f..%.0f]\n",
               batches[i], med[2 + i], med[2 + i] * RECORD_BYTES / 1e6,
               med_syncs[i], med_p99[i], worst[i], lo[2 + i], hi[2 + i]);
    }
    printf(
        "(p99: median over rounds of one append + sync; max: worst "
        "over all rounds)\n");
    printf(
        "\n256/sync vs 1/sync: %.1fx on medians, %.1fx on best runs "
        "(target >= 50x)\n",
        med[4] / med[2], hi[4] / hi[2]);
    printf("1/sync vs raw growing-file syncs/s (medians): %.2f\n",
           med[2] / med[0]);
    remove_dir(dir);
    return 0;
}
