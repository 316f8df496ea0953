/*
 * bnode_ckpt.c - LMDB checkpoints in the node driver, off the loop thread.
 *
 * LMDB runs without its own fsync (the WAL is the truth), so the store is
 * synced now and then: so that a restart replays little, so that the WAL
 * below a snapshot may be dropped, and so that the DIRTY marker goes away
 * (docs/kv.md, durability). The sync writes back every page changed since
 * the last one, tens to hundreds of milliseconds under load; on the loop it
 * stopped everything (docs/performance.md). So:
 *
 *   kv_checkpoint_begin    loop: notes the applied index A it will cover
 *   kv_checkpoint_sync     a libuv worker; the loop goes on applying
 *   kv_checkpoint_end      loop, in the worker's callback: A is durable
 *
 * One runs every `checkpoint_every` applied entries, once writes have
 * stopped for `checkpoint_idle_ms` (so an idle store ends clean: a machine
 * crash then forces no rebuild), and when a new snapshot needs the store on
 * disk to be at least as new before the WAL below it is dropped
 * (snap_maybe_taken() waits for ckpt_durable). A snapshot install replaces
 * the environment and waits for a running sync first (ckpt_wait()).
 */
#include <assert.h>
#include <stdio.h>

#include "bnode_internal.h"
#include "nlog.h"

/* Ends the checkpoint whose sync has returned. Does nothing if none is
 * begun (ckpt_wait() may have ended it before the worker's callback). */
static void finish(struct bnode *node)
{
    raft_index durable = 0;
    char msg[256];
    if (!node->ckpt_begun) {
        return;
    }
    node->ckpt_begun = false;
    if (kv_checkpoint_end(node->kv, &node->ckpt, &durable) != 0) {
        kv_errmsg(node->kv, msg, sizeof(msg));
        bnode_halt(node, msg);
        return;
    }
    if (durable > node->ckpt_durable) {
        node->ckpt_durable = durable;
    }
}

static void sync_work(uv_work_t *req)
{
    struct bnode *node = req->data;
    (void)kv_checkpoint_sync(node->kv, &node->ckpt);
    atomic_store(&node->ckpt_syncing, false);
}

static void sync_done(uv_work_t *req, int status)
{
    struct bnode *node = req->data;
    (void)status; /* never cancelled; if it were, _end sees no sync */
    node->ckpt_running = false;
    finish(node);
    /* An install may wait for this sync (when stopping, it is dropped and
     * the node unfrozen, so that the stop below can proceed). */
    bnode_install_resume(node);
    if (node->stopping) {
        if (!node->frozen) {
            bnode_stop_now(node); /* it waited for this worker */
        }
        return;
    }
    /* A snapshot may be waiting for the store to be durable. */
    snap_maybe_taken(node);
}

void ckpt_start(struct bnode *node)
{
    char msg[256];
    if (node->ckpt_running || node->halted || node->stopping) {
        return;
    }
    if (kv_checkpoint_begin(node->kv, &node->ckpt) != 0) {
        kv_errmsg(node->kv, msg, sizeof(msg));
        bnode_halt(node, msg);
        return;
    }
    node->ckpt_begun = true;
    node->ckpt_running = true;
    node->applied_since_checkpoint = 0;
    atomic_store(&node->ckpt_syncing, true);
    node->ckpt_work.data = node;
    if (uv_queue_work(node->loop, &node->ckpt_work, sync_work, sync_done) !=
        0) {
        /* No worker: sync here, as before. */
        sync_work(&node->ckpt_work);
        node->ckpt_running = false;
        finish(node);
    }
}

void ckpt_after_apply(struct bnode *node, size_t n)
{
    node->applied_since_checkpoint += n;
    node->ckpt_idle_ticks = 0;
    if (node->applied_since_checkpoint >= node->opts.checkpoint_every) {
        ckpt_start(node);
    }
}

void ckpt_on_tick(struct bnode *node)
{
    /* Entries applied since the last checkpoint began, none for a while:
     * the store may be dirty, and a sync now leaves it clean. */
    if (node->applied_since_checkpoint == 0 ||
        node->opts.checkpoint_idle_ms == 0) {
        return;
    }
    node->ckpt_idle_ticks++;
    if (node->ckpt_idle_ticks * node->opts.tick_ms >=
        node->opts.checkpoint_idle_ms) {
        ckpt_start(node);
    }
}

void ckpt_wait(struct bnode *node)
{
    /* Never blocks: snap_receive() waits (without blocking the loop) for
     * the sync to return before it installs. */
    assert(!atomic_load(&node->ckpt_syncing));
    finish(node);
}
