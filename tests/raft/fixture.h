/*
 * fixture.h - a tiny in-process cluster for the core's unit tests.
 *
 * Unlike the simulator it has no randomness of its own: messages are
 * delivered in the order they were sent, disks persist at once, and a test
 * decides exactly which node ticks and which links are cut. That makes it
 * possible to assert exact states and messages.
 */
#ifndef BALLOT_TESTS_RAFT_FIXTURE_H
#define BALLOT_TESTS_RAFT_FIXTURE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "raft.h"

#define FX_MAX 7
#define FX_SNAPSHOT_BYTES 100 /* size of every fixture snapshot */

/* What a node's "disk" and "state machine" hold. */
struct fx_node
{
    raft_id id;
    struct raft_node *raft;
    bool down; /* crashed: gets no ticks or messages */

    /* Durable state, as the update contract says to keep it. */
    struct raft_hard_state hs;
    struct raft_snapshot_meta snap;
    uint8_t snap_data[FX_SNAPSHOT_BYTES];
    uint8_t staging[FX_SNAPSHOT_BYTES];
    struct raft_entry *entries; /* after snap.index, data owned */
    size_t n_entries;

    /* State machine: applied index and a hash of everything applied. */
    raft_index applied;
    uint64_t hash;
    /* Every (index, term) applied, to compare nodes. */
    raft_term applied_terms[4096];

    struct raft_read_state reads[64];
    size_t n_reads;
};

/* A message in flight, deep-copied. */
struct fx_msg
{
    struct raft_message m;
    struct raft_entry *entries;
    uint8_t *data;
};

struct fx
{
    unsigned n;
    struct fx_node nodes[FX_MAX];
    struct fx_msg *queue;
    size_t n_queue;
    size_t cap_queue;
    bool cut[FX_MAX + 1][FX_MAX + 1]; /* by id: drop from -> to */
    bool hold; /* keep sent messages queued instead of delivering */
    struct raft_config cfg; /* template; id and seed set per node */
};

/* Creates @n nodes with ids 1..n and, if @bootstrap_voters > 0, bootstraps
 * ids 1..bootstrap_voters as voters. @cfg may be NULL: the defaults with
 * check_quorum off, 32-byte snapshot chunks and no trailing entries. */
void fx_init(struct fx *f,
             unsigned n,
             unsigned bootstrap_voters,
             const struct raft_config *cfg);
void fx_close(struct fx *f);

struct raft_node *fx_raft(struct fx *f, raft_id id);
struct fx_node *fx_node(struct fx *f, raft_id id);

/* Processes one ready cycle of node @id (persist, queue messages, apply,
 * advance). Returns true if there was any work. */
bool fx_ready(struct fx *f, raft_id id);

/* Does the caller's duties for an update the test obtained itself with
 * raft_ready() (persist, queue messages, apply, advance). */
void fx_handle(struct fx *f, raft_id id, const struct raft_update *u);

/* Delivers queued messages and runs ready cycles until nothing is left
 * (bounded; fails the test if it does not converge). */
void fx_settle(struct fx *f);

/* Ticks node @id @n times, settling after each tick. */
void fx_tick(struct fx *f, raft_id id, unsigned n);

/* Ticks only node @id until it is leader (fails the test otherwise). */
void fx_elect(struct fx *f, raft_id id);

/* Proposes @text on node @id and settles. Returns the raft error. */
int fx_propose(struct fx *f, raft_id id, const char *text);

/* Cuts or heals the links between @a and @b, both directions. */
void fx_cut(struct fx *f, raft_id a, raft_id b, bool cut);
/* Isolates @id from everyone, or heals it. */
void fx_isolate(struct fx *f, raft_id id, bool isolated);

/* Crashes node @id (its unsent messages are lost) and restarts it from its
 * durable state with a fresh raft_node. */
void fx_crash(struct fx *f, raft_id id);
void fx_restart(struct fx *f, raft_id id);

/* Takes the node's snapshot at its applied index. */
void fx_snapshot(struct fx *f, raft_id id, uint64_t trailing);

/* Finds the first queued message of @type from @from to @to (0 = any);
 * NULL if none. */
struct fx_msg *fx_find(struct fx *f, uint8_t type, raft_id from, raft_id to);
/* Drops every queued message. */
void fx_drop_all(struct fx *f);
/* Delivers the queued message @i (and removes it). */
void fx_deliver_one(struct fx *f, size_t i);

/* Asserts all live nodes applied identical entries up to their applied
 * index and returns the smallest applied index. */
raft_index fx_check_applied_agree(struct fx *f);

#endif
