/*
 * bnode_lock.c - waiting for a lock on this node (docs/coordination.md,
 * "Locks"). The claim is already in the log (KV_CMD_LOCK_ACQUIRE); what
 * is left is to notice when it holds the lock. A watch of the lock's
 * prefix wakes the wait after each change applied here; the wait re-reads
 * its own claim and the holder from the store. Claims are served in token
 * order, so the claim holds once the holder's token is its own, and has
 * ended once its key is gone.
 *
 * The answer comes from this node's applied store, which only holds
 * committed entries: whatever node the wait runs on, a claim it reports
 * as holding did hold the lock at that point of the log.
 */
#include <stdlib.h>
#include <string.h>

#include "bnode_internal.h"

/* How often a wait checks its deadline. */
#define LOCK_WAIT_POLL_MS 50u

struct bnode_lock_wait
{
    struct bnode *node;
    struct bnode_watch *watch;
    uv_timer_t timer;
    bnode_lock_cb cb; /* NULL once cancelled or answered */
    void *arg;
    uint64_t token;
    uint64_t deadline_ms; /* 0: none */
    bool checked;         /* the first check, made from the timer */
    uint32_t prefix_len;
    uint32_t key_len;
    uint8_t prefix[KV_LOCK_PREFIX_MAX];
    uint8_t key[KV_KEY_BYTES_MAX];
};

static void wait_closed(uv_handle_t *h)
{
    free(h->data);
}

/* Stops the watch and the timer; the wait is freed once the timer has
 * closed. */
static void wait_end(struct bnode_lock_wait *w)
{
    w->cb = NULL;
    bnode_watch_cancel(w->watch);
    w->watch = NULL;
    uv_timer_stop(&w->timer);
    uv_close((uv_handle_t *)&w->timer, wait_closed);
}

static void answer(struct bnode_lock_wait *w, int status)
{
    bnode_lock_cb cb = w->cb;
    void *arg = w->arg;
    wait_end(w);
    if (cb != NULL) {
        cb(arg, status);
    }
}

/* The outcome of a withdrawal: who to tell, and what. */
struct withdraw
{
    bnode_lock_cb cb; /* NULL: nobody (cancelled) */
    void *arg;
    int status;
};

static void withdraw_done(void *arg,
                          int status,
                          const struct kv_entry_result *res)
{
    struct withdraw *wd = arg;
    (void)res;
    if (wd->cb != NULL) {
        wd->cb(wd->arg, status != 0 ? status : wd->status);
    }
    free(wd);
}

/* Proposes the claim's release, then tells the caller @status (or the
 * proposal's error). A claim already gone makes the release a refused
 * no-op, which is fine. */
static void withdraw(struct bnode_lock_wait *w, int status)
{
    struct withdraw *wd = malloc(sizeof(*wd));
    struct kv_cmd cmd;
    uint8_t buf[KV_LOCK_PREFIX_MAX + 64];
    size_t len = 0;
    int rc = BNODE_ENOMEM;
    if (wd != NULL) {
        wd->cb = w->cb;
        wd->arg = w->arg;
        wd->status = status;
        kv_lock_cmd_init(&cmd, KV_CMD_LOCK_RELEASE, w->prefix, w->prefix_len,
                         w->token, false);
        rc = kv_cmd_encode(&cmd, buf, sizeof(buf), &len) != 0
                 ? BNODE_EINVAL
                 : bnode_propose(w->node, buf, len, withdraw_done, wd);
    }
    if (rc == 0) {
        wait_end(w); /* withdraw_done() answers */
        return;
    }
    free(wd);
    answer(w, rc);
}

/* Re-reads the claim and the holder; answers if the claim holds the lock
 * or is gone. */
static void check(struct bnode_lock_wait *w)
{
    struct kv_range_result res;
    struct kv_store *kv = bnode_kv(w->node);
    int rv = kv_get(kv, w->key, w->key_len, &res);
    bool mine = rv == 0 && res.kvs[0].create_revision == w->token;
    kv_range_result_free(&res);
    uint64_t holder = 0;
    if (rv == 0 || rv == KV_ENOTFOUND) {
        rv = kv_lock_owner(kv, w->prefix, w->prefix_len, &res);
        holder = rv == 0 ? res.kvs[0].create_revision : 0;
        kv_range_result_free(&res);
    }
    if (rv != 0 && rv != KV_ENOTFOUND) {
        withdraw(w, rv == KV_ENOMEM ? BNODE_ENOMEM : BNODE_ESTORAGE);
    } else if (!mine) {
        answer(w, BNODE_ELOCKLOST);
    } else if (holder == w->token) {
        answer(w, 0);
    }
}

static void on_watch(void *arg,
                     int status,
                     const struct kv_event *events,
                     size_t n,
                     uint64_t revision)
{
    struct bnode_lock_wait *w = arg;
    (void)events;
    (void)n;
    (void)revision;
    if (status != 0) {
        w->watch = NULL; /* ended: no call follows */
        withdraw(w, status);
        return;
    }
    check(w);
}

static void on_timer(uv_timer_t *t)
{
    struct bnode_lock_wait *w = t->data;
    if (!w->checked) {
        /* It may hold already, or be gone: the first check runs here so
         * that the callback never runs inside bnode_lock_wait(). */
        w->checked = true;
        check(w);
    } else if (w->deadline_ms != 0 && uv_now(t->loop) >= w->deadline_ms) {
        withdraw(w, BNODE_ETIMEDOUT);
    }
}

int bnode_lock_wait(struct bnode *node,
                    const uint8_t *prefix,
                    size_t prefix_len,
                    const uint8_t *key,
                    size_t key_len,
                    uint64_t token,
                    uint64_t timeout_ms,
                    bnode_lock_cb cb,
                    void *arg,
                    struct bnode_lock_wait **out)
{
    if (prefix_len == 0 || prefix_len > KV_LOCK_PREFIX_MAX || key_len == 0 ||
        key_len > KV_KEY_BYTES_MAX || token == 0 || cb == NULL) {
        return BNODE_EINVAL;
    }
    if (node->stopping) {
        return BNODE_ESTOPPED;
    }
    struct bnode_lock_wait *w = calloc(1, sizeof(*w));
    if (w == NULL) {
        return BNODE_ENOMEM;
    }
    w->node = node;
    w->cb = cb;
    w->arg = arg;
    w->token = token;
    memcpy(w->prefix, prefix, prefix_len);
    w->prefix_len = (uint32_t)prefix_len;
    memcpy(w->key, key, key_len);
    w->key_len = (uint32_t)key_len;
    /* From the revision after the claim: a change in between is replayed
     * from the history, so none is missed. */
    int rc = bnode_watch_start(node, prefix, prefix_len, NULL, 0, true,
                               token + 1, on_watch, w, &w->watch);
    if (rc != 0) {
        free(w);
        return rc;
    }
    uv_timer_init(node->loop, &w->timer);
    w->timer.data = w;
    w->deadline_ms = timeout_ms != 0 ? uv_now(node->loop) + timeout_ms : 0;
    uv_timer_start(&w->timer, on_timer, 0, LOCK_WAIT_POLL_MS);
    *out = w;
    return 0;
}

void bnode_lock_wait_cancel(struct bnode_lock_wait *w)
{
    if (w == NULL || w->cb == NULL) {
        return;
    }
    w->cb = NULL;
    withdraw(w, 0);
}
