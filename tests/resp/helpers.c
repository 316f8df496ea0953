/*
 * helpers.c - the simulated connection, transcripts, the failing allocator
 * and the seeded generator used by the resp tests.
 */
#include "helpers.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void transcript_init(struct transcript *t)
{
    memset(t, 0, sizeof(*t));
}

void transcript_close(struct transcript *t)
{
    free(t->data);
    memset(t, 0, sizeof(*t));
}

void transcript_put(struct transcript *t, const void *data, size_t len)
{
    if (t->cap - t->len < len) {
        size_t want = t->cap < 256 ? 256 : t->cap;
        while (want - t->len < len) {
            want *= 2;
        }
        char *fresh = realloc(t->data, want);
        if (fresh == NULL) {
            abort();
        }
        t->data = fresh;
        t->cap = want;
    }
    if (len > 0) {
        memcpy(t->data + t->len, data, len);
    }
    t->len += len;
}

static void put_number(struct transcript *t, char tag, long long v)
{
    char text[32];
    int n = snprintf(text, sizeof(text), "%c%lld", tag, v);
    transcript_put(t, text, (size_t)n);
}

void transcript_request(struct transcript *t,
                        size_t argc,
                        const char *const *argv,
                        const size_t *argvlen,
                        bool inline_form)
{
    put_number(t, inline_form ? 'I' : 'R', (long long)argc);
    for (size_t i = 0; i < argc; i++) {
        put_number(t, '|', (long long)argvlen[i]);
        transcript_put(t, ":", 1);
        transcript_put(t, argv[i], argvlen[i]);
    }
    transcript_put(t, ";", 1);
}

bool transcript_equal(const struct transcript *a, const struct transcript *b)
{
    return a->len == b->len &&
           (a->len == 0 || memcmp(a->data, b->data, a->len) == 0);
}

int feed(const struct resp_limits *limits,
         const struct resp_allocator *alloc,
         const char *buf,
         size_t len,
         const size_t *cuts,
         size_t ncuts,
         struct transcript *t)
{
    struct resp_parser p;
    char *pending = NULL;
    size_t plen = 0;
    size_t sent = 0;
    int rc = RESP_INCOMPLETE;

    if (resp_parser_init(&p, limits, alloc) != 0) {
        abort();
    }
    for (size_t piece = 0; piece <= ncuts; piece++) {
        size_t end = piece < ncuts ? cuts[piece] : len;
        size_t n = end - sent;
        /* A fresh buffer on every read: the parser must not have kept a
         * pointer into the old one. */
        char *fresh = malloc(plen + n + 1);
        if (fresh == NULL) {
            abort();
        }
        if (plen > 0) {
            memcpy(fresh, pending, plen);
        }
        if (n > 0) {
            memcpy(fresh + plen, buf + sent, n);
        }
        free(pending);
        pending = fresh;
        plen += n;
        sent = end;
        for (;;) {
            struct resp_request req;
            size_t used = 0;
            rc = resp_parse(&p, pending, plen, &req, &used);
            if (rc == 0) {
                transcript_request(t, req.argc, req.argv, req.argvlen,
                                   req.inline_form);
            }
            if (used > plen) {
                abort();
            }
            memmove(pending, pending + used, plen - used);
            plen -= used;
            if (rc != 0) {
                break;
            }
        }
        if (rc != RESP_INCOMPLETE) {
            break;
        }
    }
    put_number(t, 'E', rc);
    if (rc == RESP_INCOMPLETE) {
        /* Bytes still waiting must be the same however they arrived. */
        put_number(t, 'P', (long long)plen);
    } else if (rc != RESP_ENOMEM) {
        const char *msg = resp_parser_errmsg(&p);
        transcript_put(t, msg, strlen(msg));
    }
    free(pending);
    resp_parser_close(&p);
    return rc;
}

static void *fault_realloc(void *ctx, void *ptr, size_t size)
{
    struct fault_alloc *f = ctx;
    f->calls++;
    if (f->fail_at != 0 && f->calls == f->fail_at) {
        return NULL;
    }
    void *fresh = realloc(ptr, size);
    if (fresh != NULL && ptr == NULL) {
        f->live++;
    }
    return fresh;
}

static void fault_free(void *ctx, void *ptr)
{
    struct fault_alloc *f = ctx;
    if (ptr != NULL) {
        f->live--;
    }
    free(ptr);
}

void fault_alloc_init(struct fault_alloc *f)
{
    memset(f, 0, sizeof(*f));
    f->hook.ctx = f;
    f->hook.realloc_fn = fault_realloc;
    f->hook.free_fn = fault_free;
}

void rng_seed(struct rng *r, unsigned long long seed)
{
    r->s = seed * 0x9E3779B97F4A7C15ull + 1u;
}

unsigned long long rng_next(struct rng *r)
{
    r->s ^= r->s >> 12;
    r->s ^= r->s << 25;
    r->s ^= r->s >> 27;
    return r->s * 0x2545F4914F6CDD1Dull;
}

size_t rng_below(struct rng *r, size_t n)
{
    return (size_t)(rng_next(r) % n);
}
