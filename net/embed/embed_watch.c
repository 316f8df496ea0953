/*
 * embed_watch.c - watches of the public API (ballot_watch()) over the
 * node's (bnode_watch_start()): a handle the program owns until it
 * cancels it, events turned into struct ballot_event, and calls from
 * other threads queued to the node's loop.
 */
#include <stdlib.h>
#include <string.h>

#include "embed_internal.h"
#include "kv.h"

struct ballot_watch
{
    struct ballot *b;
    struct ballot_watch *prev, *next; /* in b->watches */
    struct bnode_watch *bw;           /* NULL once ended */
    ballot_watch_cb cb;
    void *arg;
    bool ended;
};

static void link_watch(struct ballot *b, struct ballot_watch *w)
{
    w->next = b->watches;
    if (b->watches != NULL) {
        b->watches->prev = w;
    }
    b->watches = w;
}

static void unlink_watch(struct ballot *b, struct ballot_watch *w)
{
    if (w->prev != NULL) {
        w->prev->next = w->next;
    } else if (b->watches == w) {
        b->watches = w->next;
    }
    if (w->next != NULL) {
        w->next->prev = w->prev;
    }
    w->prev = w->next = NULL;
}

static void end_watch(struct ballot_watch *w, int status, uint64_t revision)
{
    w->ended = true;
    w->bw = NULL;
    w->cb(w->arg, status, NULL, 0, revision);
}

static void on_events(void *arg,
                      int status,
                      const struct kv_event *events,
                      size_t n,
                      uint64_t revision)
{
    struct ballot_watch *w = arg;
    struct ballot_event stack[64];
    struct ballot_event *out = stack;
    if (status != 0) {
        end_watch(
            w, status == BNODE_ESTOPPED ? BALLOT_ECLOSED : embed_error(status),
            revision);
        return;
    }
    if (n > sizeof(stack) / sizeof(stack[0])) {
        out = malloc(n * sizeof(*out));
        if (out == NULL) {
            bnode_watch_cancel(w->bw);
            end_watch(w, BALLOT_ENOMEM, 0);
            return;
        }
    }
    for (size_t i = 0; i < n; i++) {
        const struct kv_kv *kv = &events[i].kv;
        out[i].type = events[i].type == KV_EVENT_DELETE ? BALLOT_EVENT_DELETE
                                                        : BALLOT_EVENT_PUT;
        out[i].kv.key = kv->key;
        out[i].kv.key_len = kv->key_len;
        out[i].kv.value = kv->value;
        out[i].kv.value_len = kv->value_len;
        out[i].kv.create_revision = kv->create_revision;
        out[i].kv.mod_revision = kv->mod_revision;
        out[i].kv.version = kv->version;
    }
    w->cb(w->arg, 0, n > 0 ? out : NULL, n, revision);
    if (out != stack) {
        free(out);
    }
}

void embed_watch_run(struct ballot *b, struct embed_call *c)
{
    struct ballot_watch *w = c->watch;
    int rv = BALLOT_ECLOSED;
    link_watch(b, w);
    if (!b->stopping) {
        rv = b->halted ? BALLOT_ESTORAGE : 0;
    }
    if (rv == 0) {
        bool prefix = (c->flags & BALLOT_RANGE_PREFIX) != 0;
        rv = bnode_watch_start(b->node, c->key, c->key_len, c->end,
                               prefix ? 0 : c->end_len, prefix, c->limit,
                               on_events, w, &w->bw);
        rv = rv == BNODE_EBUSY ? BALLOT_ELIMIT : embed_error(rv);
    }
    if (rv != 0) {
        end_watch(w, rv, 0);
    }
    embed_call_free(c);
}

void embed_watch_release(struct ballot *b, struct ballot_watch *w)
{
    bnode_watch_cancel(w->bw);
    unlink_watch(b, w);
    free(w);
}

void embed_watch_release_all(struct ballot *b)
{
    while (b->watches != NULL) {
        embed_watch_release(b, b->watches);
    }
}

int ballot_watch(struct ballot *b,
                 const void *key,
                 size_t key_len,
                 const void *end,
                 size_t end_len,
                 int flags,
                 uint64_t from_revision,
                 ballot_watch_cb cb,
                 void *arg,
                 struct ballot_watch **out)
{
    struct embed_call *c;
    if (b == NULL || cb == NULL || out == NULL ||
        (flags & ~BALLOT_RANGE_PREFIX) != 0 ||
        ((flags & BALLOT_RANGE_PREFIX) && end_len > 0)) {
        return BALLOT_EINVAL;
    }
    if (!b->threaded && !embed_on_loop(b)) {
        return BALLOT_EWRONGTHREAD;
    }
    /* The read builder checks and copies the keys the same way. A single
     * key is a point read's shape; a range's empty end is kept as is. */
    bool point = end_len == 0 && (flags & BALLOT_RANGE_PREFIX) == 0;
    int rv = embed_call_read(key, key_len, end, end_len, 0, flags,
                             BALLOT_LINEARIZABLE, point, &c);
    if (rv != 0) {
        return rv;
    }
    struct ballot_watch *w = calloc(1, sizeof(*w));
    if (w == NULL) {
        embed_call_free(c);
        return BALLOT_ENOMEM;
    }
    w->b = b;
    w->cb = cb;
    w->arg = arg;
    c->kind = EMBED_WATCH;
    c->watch = w;
    c->limit = from_revision;
    if (point) {
        c->end_len = 0;
    }
    if (embed_on_loop(b)) {
        if (b->stopping) {
            free(w);
            embed_call_free(c);
            return BALLOT_ECLOSED;
        }
        bool prefix = (flags & BALLOT_RANGE_PREFIX) != 0;
        rv = bnode_watch_start(b->node, c->key, c->key_len, c->end,
                               prefix ? 0 : c->end_len, prefix, from_revision,
                               on_events, w, &w->bw);
        embed_call_free(c);
        if (rv != 0) {
            free(w);
            return rv == BNODE_EBUSY ? BALLOT_ELIMIT : embed_error(rv);
        }
        link_watch(b, w);
        *out = w;
        return 0;
    }
    /* Queued for the node's thread, which links and starts it; a cancel
     * queued after it runs after it. */
    rv = embed_submit(b, c);
    if (rv != 0) {
        free(w);
        return rv;
    }
    *out = w;
    return 0;
}

int ballot_watch_cancel(struct ballot *b, struct ballot_watch *w)
{
    if (b == NULL || w == NULL || w->b != b) {
        return BALLOT_EINVAL;
    }
    if (embed_on_loop(b)) {
        embed_watch_release(b, w);
        return 0;
    }
    if (!b->threaded) {
        return BALLOT_EWRONGTHREAD;
    }
    struct embed_call *c = calloc(1, sizeof(*c));
    if (c == NULL) {
        return BALLOT_ENOMEM;
    }
    c->kind = EMBED_WATCH_CANCEL;
    c->watch = w;
    return embed_wait(b, c, NULL);
}
