/*
 * fake_bnode.h - a stand-in for the node driver in the client-port tests.
 *
 * It implements every function of net/bnode.h over a real kv store in a
 * temporary directory: a proposal is applied at once with kv_apply() (one
 * entry, a running index) and its callback fires later from a timer, like
 * the real node's; a read barrier calls back on the next tick. Switches let
 * a test make the node refuse writes (not leader, busy), lose them
 * (dropped, outcome unknown), hold every callback, or deliver callbacks in
 * reverse order. The switches are atomics, so the test thread may flip
 * them while the loop runs in another thread.
 */
#ifndef BALLOT_TESTS_FAKE_BNODE_H
#define BALLOT_TESTS_FAKE_BNODE_H

#include <stdbool.h>
#include <uv.h>

#include "bnode.h"

enum fake_mode {
    FAKE_OK = 0,
    FAKE_NOTLEADER = 1, /* proposals: BNODE_ENOTLEADER, leader known */
    FAKE_NOLEADER = 2,  /* proposals: BNODE_ENOTLEADER, no leader */
    FAKE_BUSY = 3,      /* proposals: BNODE_EBUSY */
    FAKE_UNKNOWN = 4,   /* applied, but reported BNODE_EUNKNOWN */
    FAKE_DROPPED = 5,   /* not applied, reported BNODE_EDROPPED */
    FAKE_NOREAD = 6,    /* linearizable reads fail with BNODE_ENOREAD */
};

/* Creates a fake node with its store in @dir (which must exist). */
int fake_bnode_create(uv_loop_t *loop, const char *dir, struct bnode **out);

void fake_bnode_set_mode(struct bnode *node, int mode);
/* Delivers pending callbacks newest first, per tick. */
void fake_bnode_set_reorder(struct bnode *node, bool on);
/* Holds every callback until released. */
void fake_bnode_set_hold(struct bnode *node, bool on);
/* Proposals and read barriers seen so far. */
unsigned long fake_bnode_proposals(struct bnode *node);
unsigned long fake_bnode_reads(struct bnode *node);
/* Makes the next proposal lose a race: @cmd (copied) is applied just
 * before it, as if another client's write had entered the log first.
 * Callable from any thread. */
void fake_bnode_interpose(struct bnode *node, const uint8_t *cmd, size_t len);
/* Applies @cmd directly, as if another client had written (loop thread). */
int fake_bnode_apply(struct bnode *node, const uint8_t *cmd, size_t len);

#endif
