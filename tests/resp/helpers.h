/*
 * helpers.h - what the resp tests share: a simulated connection that feeds
 * a parser in chosen chunks and writes down what it parsed, and an
 * allocator that fails on demand and counts what is still allocated.
 */
#ifndef BALLOT_TESTS_NET_HELPERS_H
#define BALLOT_TESTS_NET_HELPERS_H

#include <stdbool.h>
#include <stddef.h>

#include "resp.h"

/* A binary-safe record of everything one run of the parser produced, so
 * that two runs can be compared with one memcmp. */
struct transcript
{
    char *data;
    size_t len;
    size_t cap;
};

void transcript_init(struct transcript *t);
void transcript_close(struct transcript *t);
void transcript_put(struct transcript *t, const void *data, size_t len);
/* Appends one request in the transcript's format. */
void transcript_request(struct transcript *t,
                        size_t argc,
                        const char *const *argv,
                        const size_t *argvlen,
                        bool inline_form);
bool transcript_equal(const struct transcript *a, const struct transcript *b);

/* Plays a client sending @buf in pieces that end at @cuts (ascending offsets
 * inside @buf; the last piece ends at @len), to a server that keeps its
 * unconsumed bytes in a buffer it reallocates on every read, so that any
 * pointer the parser kept into an old buffer shows up under ASan. Every
 * request, the final error code, and the bytes left over are written to @t.
 * Returns the last code resp_parse() returned. */
int feed(const struct resp_limits *limits,
         const struct resp_allocator *alloc,
         const char *buf,
         size_t len,
         const size_t *cuts,
         size_t ncuts,
         struct transcript *t);

/* An allocator that fails the Nth call from now (fail_at == 0 never fails)
 * and tracks the blocks it handed out. */
struct fault_alloc
{
    unsigned long calls;
    unsigned long fail_at;
    long live; /* blocks allocated and not yet freed */
    struct resp_allocator hook;
};

void fault_alloc_init(struct fault_alloc *f);

/* A small deterministic generator (xorshift64*), so every random test is
 * replayed exactly by its seed. */
struct rng
{
    unsigned long long s;
};

void rng_seed(struct rng *r, unsigned long long seed);
unsigned long long rng_next(struct rng *r);
/* Uniform enough in [0, n) for tests; n > 0. */
size_t rng_below(struct rng *r, size_t n);

#endif /* BALLOT_TESTS_NET_HELPERS_H */
