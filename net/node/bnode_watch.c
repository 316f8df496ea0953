/*
 * bnode_watch.c - watches: streams of the changes applied to a key range,
 * from any revision still in the store's history, delivered in revision
 * order on the loop after each apply (bnode.h, "watches").
 *
 * Watchers are "synced" once they have seen everything up to the revision
 * the node last delivered: one history read after each apply then serves
 * all of them (each filters it by its range), so the cost of an apply
 * does not grow with the number of idle watchers' reads. A watcher that
 * starts in the past is "unsynced": it reads the history on its own, a
 * bounded slice per tick, until it reaches the synced position and joins
 * the others. This is the shape etcd's watchable store has.
 */
#include <stdlib.h>
#include <string.h>

#include "bnode_internal.h"

/* Events read per history read: a bound on the work of one delivery. */
#define WATCH_READ_EVENTS 1000u
/* Idle watchers get a progress notification (no events, the current
 * revision) this often. */
#define WATCH_PROGRESS_MS 1000u

struct bnode_watch
{
    struct bnode *node;
    struct bnode_watch *next;
    uint8_t *key;
    uint8_t *end;
    uint32_t key_len;
    uint32_t end_len; /* 0: the single key; see bnode_watch_start() */
    bool prefix;
    struct kv_history_pos pos; /* the next change to deliver */
    bnode_watch_cb cb;
    void *arg;
    uint64_t last_sent_ms;
    bool dead; /* cancelled or ended; freed after the current pass */
};

static bool in_range(const struct bnode_watch *w, const struct kv_kv *kv)
{
    size_t n = kv->key_len < w->key_len ? kv->key_len : w->key_len;
    int c = memcmp(kv->key, w->key, n);
    if (w->prefix) {
        return kv->key_len >= w->key_len && c == 0;
    }
    if (w->end_len == 0) {
        return kv->key_len == w->key_len && c == 0;
    }
    if (c < 0 || (c == 0 && kv->key_len < w->key_len)) {
        return false; /* below key */
    }
    if (w->end_len == 1 && w->end[0] == 0) {
        return true; /* every key >= key */
    }
    n = kv->key_len < w->end_len ? kv->key_len : w->end_len;
    c = memcmp(kv->key, w->end, n);
    return c < 0 || (c == 0 && kv->key_len < w->end_len);
}

/* Hands @w the events of @res in its range that it has not seen (at or
 * after its position), then moves it past @res. */
static void deliver(struct bnode_watch *w, const struct kv_history_result *res)
{
    struct kv_event stack[64];
    struct kv_event *mine = stack;
    size_t n = 0;
    if (res->n_events > sizeof(stack) / sizeof(stack[0])) {
        mine = malloc(res->n_events * sizeof(*mine));
        if (mine == NULL) {
            w->dead = true;
            w->cb(w->arg, BNODE_ENOMEM, NULL, 0, 0);
            return;
        }
    }
    for (size_t i = 0; i < res->n_events; i++) {
        const struct kv_event *e = &res->events[i];
        bool seen =
            e->kv.mod_revision < w->pos.revision ||
            (e->kv.mod_revision == w->pos.revision && e->seq < w->pos.seq);
        if (!seen && in_range(w, &e->kv)) {
            mine[n++] = *e;
        }
    }
    w->pos = res->next;
    if (n > 0) {
        w->last_sent_ms = uv_now(w->node->loop);
        w->cb(w->arg, 0, mine, n, res->revision);
    }
    if (mine != stack) {
        free(mine);
    }
}

/* Reads the history from @from; on a compacted position tells @w (if not
 * NULL) and returns false. */
static bool read_from(struct bnode *node,
                      struct kv_history_pos from,
                      struct kv_history_result *res,
                      struct bnode_watch *w)
{
    uint64_t compacted = 0;
    memset(res, 0, sizeof(*res));
    int rv =
        kv_history_read(node->kv, from, WATCH_READ_EVENTS, res, &compacted);
    if (rv == 0) {
        return true;
    }
    kv_history_result_free(res);
    if (w != NULL && !w->dead) {
        w->dead = true;
        w->cb(w->arg, rv == KV_ECOMPACTED ? BNODE_ECOMPACTED : BNODE_ESTORAGE,
              NULL, 0, compacted);
    }
    return false;
}

static void sweep(struct bnode *node)
{
    struct bnode_watch **p = &node->watches;
    while (*p != NULL) {
        struct bnode_watch *w = *p;
        if (w->dead) {
            *p = w->next;
            node->n_watches--;
            free(w);
        } else {
            p = &w->next;
        }
    }
}

static bool is_synced(const struct bnode *node, const struct bnode_watch *w)
{
    return w->pos.revision == node->watch_synced.revision &&
           w->pos.seq == node->watch_synced.seq;
}

void bnode_watch_deliver(struct bnode *node)
{
    struct kv_history_result res;
    struct kv_status st;
    if (node->watches == NULL || node->watch_busy || node->kv == NULL ||
        kv_status(node->kv, &st) != 0) {
        return;
    }
    /* A callback may start or cancel watches: new ones are appended (and
     * wait for the next pass), cancelled ones are only marked. */
    node->watch_busy = true;
    /* The synced group: one read from where they all are, until it has
     * everything applied. */
    while (node->watch_synced.revision <= st.revision) {
        if (!read_from(node, node->watch_synced, &res, NULL)) {
            /* The synced position was compacted (a snapshot install):
             * every synced watcher learns it and ends. */
            for (struct bnode_watch *w = node->watches; w != NULL;
                 w = w->next) {
                if (!w->dead && is_synced(node, w)) {
                    (void)read_from(node, w->pos, &res, w);
                }
            }
            node->watch_synced.revision = st.revision + 1;
            node->watch_synced.seq = 0;
            break;
        }
        struct kv_history_pos from = node->watch_synced;
        node->watch_synced = res.next;
        for (struct bnode_watch *w = node->watches; w != NULL; w = w->next) {
            if (!w->dead && w->pos.revision == from.revision &&
                w->pos.seq == from.seq) {
                deliver(w, &res);
            }
        }
        bool more = res.more;
        kv_history_result_free(&res);
        if (!more) {
            break;
        }
    }
    node->watch_busy = false;
    sweep(node);
}

/* The unsynced watchers catch up by one slice each; idle ones get a
 * progress notification. Called every tick. */
void bnode_watch_tick(struct bnode *node)
{
    struct kv_history_result res;
    struct kv_status st;
    if (node->watches == NULL || node->watch_busy || node->kv == NULL ||
        kv_status(node->kv, &st) != 0) {
        return;
    }
    uint64_t now = uv_now(node->loop);
    node->watch_busy = true;
    for (struct bnode_watch *w = node->watches; w != NULL; w = w->next) {
        if (w->dead) {
            continue;
        }
        /* A watcher from a future revision waits until the store gets
         * there. */
        if (!is_synced(node, w) && w->pos.revision <= st.revision + 1 &&
            read_from(node, w->pos, &res, w)) {
            deliver(w, &res);
            kv_history_result_free(&res);
            /* Past the synced position: the group's next read serves it
             * (it never gets ahead of it, both read the same history). */
        }
        if (!w->dead && is_synced(node, w) &&
            now - w->last_sent_ms >= WATCH_PROGRESS_MS) {
            w->last_sent_ms = now;
            w->cb(w->arg, 0, NULL, 0, st.revision);
        }
    }
    node->watch_busy = false;
    sweep(node);
}

int bnode_watch_start(struct bnode *node,
                      const uint8_t *key,
                      size_t key_len,
                      const uint8_t *end,
                      size_t end_len,
                      bool prefix,
                      uint64_t from_revision,
                      bnode_watch_cb cb,
                      void *arg,
                      struct bnode_watch **out)
{
    struct kv_status st;
    if (cb == NULL || key_len > KV_KEY_BYTES_MAX ||
        end_len > KV_KEY_BYTES_MAX || (key == NULL && key_len > 0) ||
        (end == NULL && end_len > 0) || (!prefix && key_len == 0)) {
        return BNODE_EINVAL;
    }
    if (node->stopping || node->halted) {
        return node->halted ? BNODE_ESTORAGE : BNODE_ESTOPPED;
    }
    if (node->n_watches >= BNODE_WATCHES_MAX) {
        return BNODE_EBUSY;
    }
    if (kv_status(node->kv, &st) != 0) {
        return BNODE_ESTORAGE;
    }
    /* History below compact_revision is gone; at it, it is kept. */
    if (from_revision != 0 && from_revision < st.compact_revision) {
        return BNODE_ECOMPACTED;
    }
    struct bnode_watch *w = calloc(1, sizeof(*w) + key_len + end_len + 1);
    if (w == NULL) {
        return BNODE_ENOMEM;
    }
    w->key = (uint8_t *)(w + 1);
    w->end = w->key + key_len;
    if (key_len > 0) {
        memcpy(w->key, key, key_len);
    }
    if (end_len > 0) {
        memcpy(w->end, end, end_len);
    }
    w->key_len = (uint32_t)key_len;
    w->end_len = (uint32_t)end_len;
    w->prefix = prefix;
    w->node = node;
    w->cb = cb;
    w->arg = arg;
    w->last_sent_ms = uv_now(node->loop);
    /* 0: from the next change. A revision in the future waits, unsynced,
     * until the store reaches it. */
    w->pos.revision = from_revision != 0 ? from_revision : st.revision + 1;
    w->pos.seq = 0;
    if (node->watches == NULL) {
        node->watch_synced.revision = st.revision + 1;
        node->watch_synced.seq = 0;
    }
    struct bnode_watch **tail = &node->watches;
    while (*tail != NULL) {
        tail = &(*tail)->next;
    }
    *tail = w;
    node->n_watches++;
    *out = w;
    return 0;
}

void bnode_watch_cancel(struct bnode_watch *w)
{
    if (w == NULL || w->dead) {
        return;
    }
    w->dead = true;
    if (!w->node->watch_busy) {
        sweep(w->node);
    }
}

void bnode_watch_stop_all(struct bnode *node)
{
    node->watch_busy = true;
    for (struct bnode_watch *w = node->watches; w != NULL; w = w->next) {
        if (!w->dead) {
            w->dead = true;
            w->cb(w->arg, BNODE_ESTOPPED, NULL, 0, 0);
        }
    }
    node->watch_busy = false;
    sweep(node);
}
