/*
 * gen.h - builds batches of deterministic entries for the storage tests.
 */
#ifndef BALLOT_TESTS_STORAGE_GEN_H
#define BALLOT_TESTS_STORAGE_GEN_H

#include <stdint.h>

#include "helpers.h"

#define GEN_MAX 256
#define GEN_DATA_MAX 600

struct gen
{
    struct raft_entry e[GEN_MAX];
    uint8_t data[GEN_MAX][GEN_DATA_MAX];
};

/* Length of entry @index: varied and sometimes zero. */
static inline uint32_t gen_len(raft_index index)
{
    return (uint32_t)((index * 2654435761u) % 500u);
}

/* Fills g->e[0..n) with entries first..first+n-1 of @term. */
static inline const struct raft_entry *gen_batch(struct gen *g,
                                                 raft_index first,
                                                 size_t n,
                                                 raft_term term,
                                                 uint64_t seed)
{
    for (size_t i = 0; i < n && i < GEN_MAX; i++) {
        raft_index index = first + i;
        uint32_t len = gen_len(index);
        entry_fill(g->data[i], len, seed, index, term);
        g->e[i].index = index;
        g->e[i].term = term;
        g->e[i].type = (index % 17 == 0) ? RAFT_ENTRY_CONF : RAFT_ENTRY_NORMAL;
        g->e[i].len = len;
        g->e[i].data = g->data[i];
    }
    return g->e;
}

#endif /* BALLOT_TESTS_STORAGE_GEN_H */
