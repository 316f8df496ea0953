/*
 * peer_util.h - helpers shared by the peer codec and transport tests: a
 * seeded PRNG, a random message generator and message comparison.
 */
#ifndef BALLOT_TESTS_PEER_UTIL_H
#define BALLOT_TESTS_PEER_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "raft.h"

/* splitmix64: small, seedable, good enough to pick field values. */
struct prng
{
    uint64_t s;
};

uint64_t prng_next(struct prng *r);
/* Returns a value in [0, n). */
uint64_t prng_below(struct prng *r, uint64_t n);
/* Returns 0, the maximum, or a random value, each often enough to matter. */
uint64_t prng_u64(struct prng *r);
uint32_t prng_u32(struct prng *r);

/* A generated message and the memory its pointers refer to. */
struct gen_msg
{
    struct raft_message m;
    struct raft_entry *entries;
    uint8_t *data; /* entry data or chunk data */
};

/* Fills @g with a random, valid message of @type. Entries (at most
 * @max_entries, each at most @max_entry_bytes) and chunk data (at most
 * @max_chunk_bytes) are random binary bytes. */
void gen_message(struct prng *r,
                 uint8_t type,
                 uint32_t max_entries,
                 uint32_t max_entry_bytes,
                 uint32_t max_chunk_bytes,
                 struct gen_msg *g);
void gen_free(struct gen_msg *g);

/* True if @a and @b carry the same fields, data compared by content. */
bool message_equal(const struct raft_message *a, const struct raft_message *b);

/* Encodes @m into a malloc()ed buffer and stores its length in @len. */
uint8_t *encode_alloc(const struct raft_message *m, size_t *len);

#endif
