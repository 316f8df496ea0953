/*
 * snowflake.h - 64-bit IDs that any node mints without a round trip,
 * unique across the cluster and never repeated by one node, even when its
 * clock steps backwards or it restarts (docs/coordination.md, "IDs").
 *
 *   bit 63: 0 | 41 bits: ms since 2026-01-01 UTC | 10 bits: member id |
 *   12 bits: sequence within the ms
 *
 * Uniqueness across nodes comes from the member id (so ids must be below
 * 1024); within a node from (ms, sequence) only ever growing: when the
 * clock is behind the last ID minted, the generator goes on from that
 * last ms (borrowing time, at most SNOWFLAKE_BORROW_MAX_MS; beyond it, it
 * refuses), and a high-water mark of the time it may mint up to is made
 * durable before it is used, so a restart never goes below what was
 * handed out. Thread-safe: any thread may mint.
 */
#ifndef BALLOT_NET_SNOWFLAKE_H
#define BALLOT_NET_SNOWFLAKE_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* 2026-01-01T00:00:00Z in Unix ms: IDs start small. */
#define SNOWFLAKE_EPOCH_MS 1767225600000ull
#define SNOWFLAKE_NODE_BITS 10
#define SNOWFLAKE_SEQ_BITS 12
#define SNOWFLAKE_NODE_MAX ((1u << SNOWFLAKE_NODE_BITS) - 1)
/* How far ahead of the clock the generator may run (a clock stepped back
 * by more, or a burst over 4,096 IDs per ms for that long, is refused). */
#define SNOWFLAKE_BORROW_MAX_MS 5000u
/* The durable high-water mark runs this far ahead of what is minted, so
 * it is written (and fsynced) about once per that much time while IDs
 * are minted. Below SNOWFLAKE_BORROW_MAX_MS, so that a restart, which
 * goes on from the mark, is not refused. */
#define SNOWFLAKE_RESERVE_MS 1000u
/* Most IDs one call mints. */
#define SNOWFLAKE_BATCH_MAX 4096u

enum {
    SNOWFLAKE_EINVAL = -7301, /* member id 0 or above 1023, bad count */
    SNOWFLAKE_ECLOCK = -7302, /* the clock is too far behind: refused */
    SNOWFLAKE_EIO = -7303,    /* the high-water mark could not be saved */
};

/* Returns the current time in Unix ms (tests give their own clock). */
typedef uint64_t (*snowflake_clock_fn)(void *arg);

struct snowflake
{
    pthread_mutex_t mu;
    uint64_t node;
    char path[4400];      /* the high-water mark's file */
    uint64_t last_ms;     /* ms (since the epoch) of the last ID */
    uint64_t seq;         /* its sequence */
    uint64_t reserved_ms; /* durable: no ID above it was minted */
    snowflake_clock_fn clock;
    void *clock_arg;
};

/* Opens the generator of member @node, its high-water mark kept in the
 * file @path (read if it exists). @clock NULL: CLOCK_REALTIME. Returns 0,
 * SNOWFLAKE_EINVAL or SNOWFLAKE_EIO (an unreadable or damaged file). */
int snowflake_open(struct snowflake *sf,
                   uint64_t node,
                   const char *path,
                   snowflake_clock_fn clock,
                   void *clock_arg);

void snowflake_close(struct snowflake *sf);

/* Mints @n (1..SNOWFLAKE_BATCH_MAX) IDs into @out, increasing. Returns 0,
 * SNOWFLAKE_EINVAL, SNOWFLAKE_ECLOCK (with *@behind_ms, if not NULL, how
 * far the clock is behind) or SNOWFLAKE_EIO; nothing is minted then. */
int snowflake_next(struct snowflake *sf,
                   uint64_t *out,
                   size_t n,
                   uint64_t *behind_ms);

/* The parts of an ID. */
uint64_t snowflake_ms(uint64_t id);   /* Unix ms */
uint64_t snowflake_node(uint64_t id); /* member id */

#endif
