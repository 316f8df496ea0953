/*
 * snowflake.c - see snowflake.h.
 */
#include "snowflake.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static uint64_t realtime_ms(void *arg)
{
    struct timespec ts;
    (void)arg;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* Writes the high-water mark: a temporary file, fsync, rename, fsync of
 * the directory, so that a crash leaves the old mark or the new one. */
static int save_mark(struct snowflake *sf, uint64_t reserved_ms)
{
    char tmp[sizeof(sf->path) + 8], line[64], dir[sizeof(sf->path)];
    int n = snprintf(line, sizeof(line), "%" PRIu64 "\n", reserved_ms);
    snprintf(tmp, sizeof(tmp), "%s.tmp", sf->path);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0) {
        return SNOWFLAKE_EIO;
    }
    bool ok = write(fd, line, (size_t)n) == n && fsync(fd) == 0;
    ok &= close(fd) == 0;
    ok = ok && rename(tmp, sf->path) == 0;
    snprintf(dir, sizeof(dir), "%s", sf->path);
    char *slash = strrchr(dir, '/');
    if (ok && slash != NULL) {
        *slash = '\0';
        int dfd = open(slash == dir ? "/" : dir, O_RDONLY | O_DIRECTORY);
        ok = dfd >= 0 && fsync(dfd) == 0;
        if (dfd >= 0) {
            close(dfd);
        }
    }
    return ok ? 0 : SNOWFLAKE_EIO;
}

int snowflake_open(struct snowflake *sf,
                   uint64_t node,
                   const char *path,
                   snowflake_clock_fn clock,
                   void *clock_arg)
{
    memset(sf, 0, sizeof(*sf));
    if (node == 0 || node > SNOWFLAKE_NODE_MAX || path == NULL ||
        strlen(path) >= sizeof(sf->path)) {
        return SNOWFLAKE_EINVAL;
    }
    sf->node = node;
    snprintf(sf->path, sizeof(sf->path), "%s", path);
    sf->clock = clock != NULL ? clock : realtime_ms;
    sf->clock_arg = clock_arg;
    FILE *f = fopen(path, "r");
    if (f != NULL) {
        uint64_t mark;
        char extra;
        int got = fscanf(f, "%" SCNu64 "%c", &mark, &extra);
        fclose(f);
        if (got != 2 || extra != '\n') {
            return SNOWFLAKE_EIO;
        }
        /* Everything minted before lies at or below the mark: go on from
         * above it. */
        sf->reserved_ms = mark;
        sf->last_ms = mark;
        sf->seq = (1u << SNOWFLAKE_SEQ_BITS) - 1;
    } else if (errno != ENOENT) {
        return SNOWFLAKE_EIO;
    }
    pthread_mutex_init(&sf->mu, NULL);
    return 0;
}

void snowflake_close(struct snowflake *sf)
{
    pthread_mutex_destroy(&sf->mu);
}

int snowflake_next(struct snowflake *sf,
                   uint64_t *out,
                   size_t n,
                   uint64_t *behind_ms)
{
    const uint64_t seq_max = (1u << SNOWFLAKE_SEQ_BITS) - 1;
    if (n == 0 || n > SNOWFLAKE_BATCH_MAX || out == NULL) {
        return SNOWFLAKE_EINVAL;
    }
    pthread_mutex_lock(&sf->mu);
    uint64_t now = sf->clock(sf->clock_arg);
    now = now > SNOWFLAKE_EPOCH_MS ? now - SNOWFLAKE_EPOCH_MS : 0;
    uint64_t ms = sf->last_ms, seq = sf->seq;
    int rv = 0;
    /* Where the n IDs would end: past the last one, on the clock's ms if
     * it is ahead. */
    if (now > ms) {
        ms = now;
        seq = 0;
    } else if (seq == seq_max) {
        ms++;
        seq = 0;
    } else {
        seq++;
    }
    uint64_t first_ms = ms, first_seq = seq;
    uint64_t end_seq = seq + n - 1;
    uint64_t end_ms = ms + (end_seq >> SNOWFLAKE_SEQ_BITS);
    end_seq &= seq_max;
    if (end_ms > now + SNOWFLAKE_BORROW_MAX_MS) {
        if (behind_ms != NULL) {
            *behind_ms = end_ms - now;
        }
        rv = SNOWFLAKE_ECLOCK;
    } else if (end_ms > sf->reserved_ms) {
        uint64_t mark = end_ms + SNOWFLAKE_RESERVE_MS;
        rv = save_mark(sf, mark);
        if (rv == 0) {
            sf->reserved_ms = mark;
        }
    }
    if (rv == 0) {
        ms = first_ms;
        seq = first_seq;
        for (size_t i = 0; i < n; i++) {
            out[i] = (ms << (SNOWFLAKE_NODE_BITS + SNOWFLAKE_SEQ_BITS)) |
                     (sf->node << SNOWFLAKE_SEQ_BITS) | seq;
            if (i + 1 < n && ++seq > seq_max) {
                seq = 0;
                ms++;
            }
        }
        sf->last_ms = ms;
        sf->seq = seq;
    }
    pthread_mutex_unlock(&sf->mu);
    return rv;
}

uint64_t snowflake_ms(uint64_t id)
{
    return (id >> (SNOWFLAKE_NODE_BITS + SNOWFLAKE_SEQ_BITS)) +
           SNOWFLAKE_EPOCH_MS;
}

uint64_t snowflake_node(uint64_t id)
{
    return (id >> SNOWFLAKE_SEQ_BITS) & SNOWFLAKE_NODE_MAX;
}
