/*
 * raft.h - the consensus core of ballot.
 *
 * A deterministic Raft state machine in the style of etcd's raft: the caller
 * owns time, storage and the network. The core performs no I/O, reads no
 * clock, starts no thread and keeps no global state; its only randomness
 * comes from the seed in struct raft_config.
 *
 * The caller drives a node like this (docs/raft.md numbers these duties):
 *
 *   raft_tick()/raft_step()/raft_propose()/raft_read_index()/...
 *   if (raft_ready(node, &update)) {
 *       1. send update.messages (they do not depend on this batch's writes);
 *       2. persist, in this order: update.snapshot (if any), update.entries
 *          (after dropping persisted entries >= entries[0].index), and
 *          update.hard_state (if update.hard_state_changed);
 *       3. send update.messages_after_persist;
 *       4. install update.snapshot into the state machine (if any), then
 *          apply update.committed in order;
 *       5. serve update.reads once the state machine has applied their index;
 *       6. raft_advance(node, &update).
 *   }
 *
 * Between raft_ready() and raft_advance() the caller must not call any other
 * function that changes the node. Everything the update points to is borrowed
 * from the node and stays valid until raft_advance() returns.
 *
 * Rules quoted as "Figure 2" or "§x.y" refer to Ongaro's dissertation
 * "Consensus: Bridging Theory and Practice" (2014) and the Raft paper.
 */
#ifndef BALLOT_RAFT_H
#define BALLOT_RAFT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef uint64_t raft_term;
typedef uint64_t raft_index;
/* Node ids are chosen by the operator; 0 means "nobody". */
typedef uint64_t raft_id;

/* Error codes. Each module of ballot has its own range; raft's is -1000s. */
enum {
    RAFT_ENOMEM = -1001,       /* an allocation failed; nothing changed */
    RAFT_EINVAL = -1002,       /* an argument is invalid */
    RAFT_ENOTLEADER = -1003,   /* only the leader can do this */
    RAFT_EBUSY = -1004,        /* too much uncommitted work; retry later */
    RAFT_ETRANSFER = -1005,    /* leadership transfer in progress */
    RAFT_ECONFPENDING = -1006, /* a membership change is not committed yet */
    RAFT_ETOOBIG = -1007,      /* the entry exceeds the configured limit */
    RAFT_ENOTFOUND = -1008,    /* no such node in the configuration */
    RAFT_ESTATE = -1009,       /* the node is not in a state that allows this */
    RAFT_ECOMPACTED = -1010,   /* the index was compacted into a snapshot */
};

/* Returns a static, human-readable description of a raft error code. */
const char *raft_strerror(int code);

/* ---------------------------------------------------------------------- */
/* Configuration (cluster membership)                                      */

/* The most members (voters plus learners) a configuration can hold. */
#define RAFT_CONF_MAX 16

enum raft_role_in_conf {
    RAFT_VOTER = 1,   /* counts in elections and commitment */
    RAFT_LEARNER = 2, /* receives the log, never votes, never counts */
};

struct raft_member
{
    raft_id id;
    uint8_t role; /* enum raft_role_in_conf */
};

/* A cluster configuration: a set of members with distinct, non-zero ids.
 * Stored by value everywhere, so it never needs freeing. */
struct raft_conf
{
    uint32_t n;
    struct raft_member members[RAFT_CONF_MAX];
};

/* Bytes raft_conf_encode() writes at most. */
#define RAFT_CONF_ENCODED_MAX (8 + RAFT_CONF_MAX * 9)

/* Serializes @conf into @buf (at least RAFT_CONF_ENCODED_MAX bytes) and stores
 * the length in @len. Format (little endian): u32 version=1, u32 n, then n
 * times { u64 id, u8 role }. */
void raft_conf_encode(const struct raft_conf *conf, uint8_t *buf, size_t *len);

/* Parses a configuration written by raft_conf_encode(). Returns 0, or
 * RAFT_EINVAL if @buf is malformed (bad length, version, role, zero or
 * duplicate id); @conf is untouched on failure. */
int raft_conf_decode(const uint8_t *buf, size_t len, struct raft_conf *conf);

/* Returns the member with @id, or NULL. */
const struct raft_member *raft_conf_get(const struct raft_conf *conf,
                                        raft_id id);

/* Returns the number of voters in @conf. */
unsigned raft_conf_voters(const struct raft_conf *conf);

/* ---------------------------------------------------------------------- */
/* Log entries                                                             */

enum raft_entry_type {
    RAFT_ENTRY_NORMAL = 1, /* application command; empty data is a no-op */
    RAFT_ENTRY_CONF = 2,   /* data is a raft_conf_encode()d configuration */
};

struct raft_entry
{
    raft_term term;
    raft_index index;
    uint8_t type; /* enum raft_entry_type */
    uint32_t len;
    const uint8_t *data; /* owned by whoever owns the entry array */
};

/* What must survive a crash besides the log (Figure 2: currentTerm,
 * votedFor; commit is kept as a hint to speed up restart). */
struct raft_hard_state
{
    raft_term term;
    raft_id vote;
    raft_index commit;
};

/* Describes a snapshot of the state machine taken at @index. */
struct raft_snapshot_meta
{
    raft_index index;      /* last log index the snapshot includes */
    raft_term term;        /* term of that entry */
    struct raft_conf conf; /* configuration as of @index */
    uint64_t size;         /* bytes of application data */
};

/* ---------------------------------------------------------------------- */
/* Messages                                                                */

enum raft_message_type {
    RAFT_MSG_PREVOTE = 1, /* §9.6: would you vote for me? */
    RAFT_MSG_PREVOTE_RESP,
    RAFT_MSG_VOTE, /* RequestVote, Figure 2 */
    RAFT_MSG_VOTE_RESP,
    RAFT_MSG_APPEND, /* AppendEntries, Figure 2 */
    RAFT_MSG_APPEND_RESP,
    RAFT_MSG_HEARTBEAT, /* empty AppendEntries, also confirms reads */
    RAFT_MSG_HEARTBEAT_RESP,
    RAFT_MSG_SNAPSHOT, /* InstallSnapshot chunk, Figure 5.3 */
    RAFT_MSG_SNAPSHOT_RESP,
    RAFT_MSG_TIMEOUT_NOW, /* §3.10: start an election now */
    RAFT_MSG_READ_INDEX,  /* follower asks the leader for a read index */
    RAFT_MSG_READ_INDEX_RESP,
    RAFT_MSG_TYPE_MAX = RAFT_MSG_READ_INDEX_RESP,
};

/* RAFT_MSG_PREVOTE and RAFT_MSG_VOTE. */
struct raft_msg_vote
{
    raft_index last_log_index;
    raft_term last_log_term;
    bool transfer; /* sent because of TimeoutNow: ignore leader stickiness */
};

/* RAFT_MSG_PREVOTE_RESP and RAFT_MSG_VOTE_RESP. */
struct raft_msg_vote_resp
{
    bool granted;
};

/* RAFT_MSG_APPEND. */
struct raft_msg_append
{
    raft_index prev_index;
    raft_term prev_term;
    raft_index commit;
    uint32_t n_entries;
    const struct raft_entry *entries; /* indexes prev_index+1 ... in order */
};

/* RAFT_MSG_APPEND_RESP. On success @index is the last index now known to
 * match. On rejection @index is the prev_index that did not match, and
 * @hint_term/@hint_index let the leader skip a whole term at once: the
 * follower's term at (or before) @index and the first index it holds of that
 * term, or hint_term 0 and hint_index = follower's last index + 1 when the
 * follower's log is too short. */
struct raft_msg_append_resp
{
    bool success;
    raft_index index;
    raft_term hint_term;
    raft_index hint_index;
};

/* RAFT_MSG_HEARTBEAT. @read_seq lets the leader learn which read rounds a
 * follower has confirmed (§6.4). */
struct raft_msg_heartbeat
{
    raft_index commit;
    uint64_t read_seq;
};

/* RAFT_MSG_HEARTBEAT_RESP. */
struct raft_msg_heartbeat_resp
{
    uint64_t read_seq;
};

/* RAFT_MSG_SNAPSHOT: one chunk of the snapshot described by @meta.
 *
 * When the core emits this message (on the leader) @data is NULL: the
 * driver must read @len bytes at @offset from its snapshot at meta.index and
 * send them. When the driver steps a received chunk, @data points at the
 * @len bytes. @done is set on the chunk that ends at meta.size. */
struct raft_msg_snapshot
{
    struct raft_snapshot_meta meta;
    uint64_t offset;
    uint32_t len;
    bool done;
    const uint8_t *data;
};

/* RAFT_MSG_SNAPSHOT_RESP. @next_offset is the byte the follower expects
 * next for the snapshot at @index; when the whole snapshot is installed,
 * @done is set. A follower that already has everything up to @index also
 * answers done. */
struct raft_msg_snapshot_resp
{
    raft_index index;
    uint64_t next_offset;
    bool done;
};

/* RAFT_MSG_READ_INDEX and RAFT_MSG_READ_INDEX_RESP. @ctx is the id the
 * follower's application gave raft_read_index(). */
struct raft_msg_read_index
{
    uint64_t ctx;
    raft_index index; /* response only */
    bool ok;          /* response only: false if the leader cannot serve */
};

struct raft_message
{
    uint8_t type; /* enum raft_message_type */
    raft_id from;
    raft_id to;
    raft_term term;
    union
    {
        struct raft_msg_vote vote;
        struct raft_msg_vote_resp vote_resp;
        struct raft_msg_append append;
        struct raft_msg_append_resp append_resp;
        struct raft_msg_heartbeat heartbeat;
        struct raft_msg_heartbeat_resp heartbeat_resp;
        struct raft_msg_snapshot snapshot;
        struct raft_msg_snapshot_resp snapshot_resp;
        struct raft_msg_read_index read_index;
    } u;
};

/* ---------------------------------------------------------------------- */
/* Node configuration                                                      */

/* Allocation hooks; all core heap use goes through them, so that tests can
 * fail the Nth allocation. NULL members mean the C library's. */
struct raft_allocator
{
    void *ctx;
    void *(*malloc_fn)(void *ctx, size_t size);
    void *(*realloc_fn)(void *ctx, void *ptr, size_t size);
    void (*free_fn)(void *ctx, void *ptr);
};

struct raft_config
{
    raft_id id;    /* this node, non-zero */
    uint64_t seed; /* seeds the election timeout generator */

    /* Ticks without hearing from a leader before a follower campaigns; each
     * term draws a random timeout in [election_ticks, 2*election_ticks). */
    unsigned election_ticks;
    /* Ticks between heartbeats sent by the leader; < election_ticks. */
    unsigned heartbeat_ticks;

    bool pre_vote;     /* §9.6: campaign only if a majority would vote */
    bool check_quorum; /* §6.2: leader steps down without a live majority;
                        * followers ignore votes while a leader is alive */
    /* Lease reads (§6.4.1): the leader answers reads without a heartbeat
     * round while its lease holds. Requires check_quorum. Safe only if no
     * node's tick rate runs faster than another's by more than the margin in
     * docs/raft.md. Off by default. */
    bool lease_reads;

    uint32_t max_append_entries;    /* entries per AppendEntries message */
    uint64_t max_append_bytes;      /* payload bytes per AppendEntries */
    uint32_t max_inflight;          /* unacknowledged appends per follower */
    uint64_t max_uncommitted_bytes; /* proposals beyond this get RAFT_EBUSY */
    uint32_t max_entry_bytes;       /* larger proposals get RAFT_ETOOBIG */
    uint64_t max_apply_bytes;       /* committed bytes handed out per update */
    uint32_t snapshot_chunk_bytes;  /* InstallSnapshot chunk size */
    /* Entries kept behind a snapshot so slightly lagging followers catch up
     * from the log instead of a snapshot. */
    uint64_t snapshot_trailing;
    /* A follower forwards a read to the leader (§6.4); one lost message
     * must not keep the read waiting until the leader changes. It resends
     * the request after read_retry_ticks without an answer, and fails the
     * read (ok == false) after read_timeout_ticks (>= read_retry_ticks). */
    unsigned read_retry_ticks;
    unsigned read_timeout_ticks;

    /* Deliberate bugs (RAFT_BREAK_* bits) for the fault-injection suite's
     * broken builds, which its checks must catch (docs/jepsen.md). 0 by
     * default; only ballotd's BALLOT_JEPSEN_BREAK variable sets them. */
    unsigned breaks;

    struct raft_allocator allocator;
};

/* Learners vote and count towards commitment like voters (a member that
 * stopped being a voter keeps voting): quorums no longer intersect. */
#define RAFT_BREAK_LEARNERS_VOTE 1u

/* Fills @cfg with defaults for node @id (election 10 ticks, heartbeat 1,
 * pre_vote and check_quorum on, lease reads off, forwarded reads resent
 * every 10 ticks and failed after 40). */
void raft_config_default(struct raft_config *cfg, raft_id id, uint64_t seed);

/* ---------------------------------------------------------------------- */
/* The node                                                                */

enum raft_state {
    RAFT_FOLLOWER = 1,
    RAFT_PRE_CANDIDATE,
    RAFT_CANDIDATE,
    RAFT_LEADER,
};

/* A read point that became safe: once the state machine has applied
 * @index, a read for @ctx sees every write committed before it was asked.
 * ok == false means the read cannot be served (no leader, leadership lost);
 * the caller should retry elsewhere. */
struct raft_read_state
{
    uint64_t ctx;
    raft_index index;
    bool ok;
};

/* Volatile state the application may want to watch. */
struct raft_soft_state
{
    raft_id leader;
    uint8_t state; /* enum raft_state */
};

/* One batch of work for the caller; see the top of this file. */
struct raft_update
{
    struct raft_soft_state soft_state;
    bool soft_state_changed;

    struct raft_hard_state hard_state;
    bool hard_state_changed;

    /* Entries to make durable. Persisted entries at or after
     * entries[0].index are replaced. */
    const struct raft_entry *entries;
    size_t n_entries;

    /* A snapshot fully received from the leader. Persist it first. After it,
     * the log starts at snapshot->index + 1: persisted entries at or below
     * snapshot->index may be dropped, and if @snapshot_reset_log is set every
     * persisted entry must be dropped. Install it into the state machine
     * before applying @committed. */
    const struct raft_snapshot_meta *snapshot;
    bool snapshot_reset_log;

    /* Snapshot chunks received from the leader, to be written into a staging
     * area keyed by meta.index at their offset (an offset of 0 starts a new
     * staging area and discards any older one). Persist before sending
     * @messages_after_persist. */
    const struct raft_msg_snapshot *snapshot_chunks;
    size_t n_snapshot_chunks;

    /* Messages that may be sent at once, in parallel with persisting
     * (the leader's appends, §10.2.1). */
    const struct raft_message *messages;
    size_t n_messages;
    /* Messages that acknowledge this batch's writes: send after persisting. */
    const struct raft_message *messages_after_persist;
    size_t n_messages_after_persist;

    /* Committed entries to apply, in order, after installing @snapshot. */
    const struct raft_entry *committed;
    size_t n_committed;

    const struct raft_read_state *reads;
    size_t n_reads;
};

/* Counters of rejected input and notable events, for metrics and tests. */
struct raft_stats
{
    uint64_t msgs_rejected;    /* total messages dropped as invalid */
    uint64_t msgs_bad_sender;  /* unknown or mismatching from/to */
    uint64_t msgs_bad_type;    /* unknown type */
    uint64_t msgs_bad_index;   /* impossible index or term arithmetic */
    uint64_t msgs_bad_entries; /* non-contiguous or invalid entries */
    uint64_t msgs_stale_term;  /* from an older term (ignored, normal) */
    /* Vote requests that would raise our term implausibly: too far, or
     * a vote not preceded by a pre-vote we granted (docs/raft.md,
     * "Untrusted terms"). */
    uint64_t msgs_bad_term;
    uint64_t elections_started;
    uint64_t leader_changes;
    uint64_t snapshots_sent;
    uint64_t snapshots_installed;
    uint64_t read_retries; /* forwarded read requests sent again */
    /* Appends refused because they conflict with entries this node had
     * committed: possible only after raft_force_conf() (a former primary,
     * or a survivor that knew more than the one forced into primary). The
     * node needs its data rebuilt from the leader (docs/modes.md). */
    uint64_t diverged;
};

struct raft_node; /* opaque */

/* Creates a node. @cfg is copied. Returns 0 and stores the node in @out, or
 * RAFT_EINVAL (bad config) / RAFT_ENOMEM. */
int raft_node_create(const struct raft_config *cfg, struct raft_node **out);

/* Frees @node and everything it owns. */
void raft_node_destroy(struct raft_node *node);

/* Starts a brand new cluster: the node's log becomes one committed
 * RAFT_ENTRY_CONF entry at index 1, term 1, holding @conf. Every initial
 * member must be bootstrapped with the same @conf. Returns RAFT_ESTATE if the
 * node already has a log or state, RAFT_EINVAL for a bad @conf. */
int raft_bootstrap(struct raft_node *node, const struct raft_conf *conf);

/* Restores a node from durable state after a restart. @snapshot may be NULL
 * (no snapshot). @entries are the persisted entries that follow the
 * snapshot, contiguous and in order; they are copied. @applied is the last
 * index the state machine has applied (>= snapshot index). A node that was
 * never bootstrapped and never received anything calls nothing: it waits for
 * a leader to contact it. */
int raft_restore(struct raft_node *node,
                 const struct raft_hard_state *hs,
                 const struct raft_snapshot_meta *snapshot,
                 const struct raft_entry *entries,
                 size_t n_entries,
                 raft_index applied);

/* Advances logical time by one tick. */
void raft_tick(struct raft_node *node);

/* Feeds a message received from the network. @msg is borrowed for the call;
 * entry data and snapshot data are copied. Invalid input is counted in
 * raft_stats and dropped; returns 0, RAFT_EINVAL if it was dropped as
 * invalid, or RAFT_ENOMEM. */
int raft_step(struct raft_node *node, const struct raft_message *msg);

/* Appends a command to the leader's log. @data is copied. On success stores
 * the entry's index and term in @index/@term (either may be NULL): the
 * command is committed when an entry with this index and term is applied.
 * Returns RAFT_ENOTLEADER, RAFT_ETRANSFER, RAFT_EBUSY, RAFT_ETOOBIG or
 * RAFT_ENOMEM otherwise. */
int raft_propose(struct raft_node *node,
                 const uint8_t *data,
                 uint32_t len,
                 raft_index *index,
                 raft_term *term);

enum raft_conf_change {
    RAFT_ADD_LEARNER = 1, /* new member that only receives the log */
    RAFT_PROMOTE,         /* learner becomes a voter */
    RAFT_ADD_VOTER,       /* new member that votes at once */
    RAFT_REMOVE,          /* remove a member (may be the leader itself) */
};

/* Proposes one membership change (§4.1: one server at a time). Only one may
 * be uncommitted, and only after the leader committed an entry of its term.
 * Returns RAFT_ENOTLEADER, RAFT_ECONFPENDING, RAFT_ENOTFOUND, RAFT_EINVAL
 * (e.g. removing the last voter, adding a present id), RAFT_ETRANSFER. */
int raft_propose_conf_change(struct raft_node *node,
                             enum raft_conf_change change,
                             raft_id id,
                             raft_index *index);

/* Asks for a linearizable read point (§6.4). The answer arrives in a later
 * update's reads with the same @ctx. Works on leaders and followers. */
int raft_read_index(struct raft_node *node, uint64_t ctx);

/* Forces @conf on this node alone, outside consensus: the primary-replica
 * fallback (docs/modes.md) uses it when a cluster lost its quorum for good,
 * to make one survivor the only voter and the others learners. It is NOT
 * safe Raft: entries the lost majority committed and this node never got
 * are gone, and this node's uncommitted entries become committed.
 *
 * Appends a RAFT_ENTRY_CONF entry holding @conf at the end of this node's
 * log, at a term above every term it has seen (its own, its last entry's)
 * and at least @min_term; the node moves to that term, having voted for
 * itself, so it grants no vote in it. If this node is @conf's only voter
 * it becomes leader at once (and appends its blank entry); otherwise it
 * waits as a follower for a leader of that term or later. Stores the new
 * term and the entry's index in @term/@index (either may be NULL).
 *
 * Returns RAFT_EINVAL (bad @conf, no voter, this node not a member of it,
 * a term at RAFT_TERM_MAX), RAFT_ESTATE (in an update, or a node that was
 * never part of a cluster) or RAFT_ENOMEM; nothing changed then. */
int raft_force_conf(struct raft_node *node,
                    const struct raft_conf *conf,
                    raft_term min_term,
                    raft_term *term,
                    raft_index *index);

/* Starts moving leadership to @target (§3.10). Returns RAFT_ENOTLEADER,
 * RAFT_ENOTFOUND (not a voter), RAFT_EINVAL (target is self). Proposals are
 * refused until the transfer succeeds or times out (an election timeout). */
int raft_transfer_leadership(struct raft_node *node, raft_id target);

/* Tells the node the application saved a snapshot of its state machine at
 * @index (<= applied), @size bytes long. The log is compacted up to
 * index - snapshot_trailing, and lagging followers are sent this snapshot. */
int raft_snapshot_taken(struct raft_node *node,
                        raft_index index,
                        uint64_t size);

/* Tells the node the application could not send the snapshot to @to, or the
 * peer is unreachable; the leader probes it again later. */
void raft_report_unreachable(struct raft_node *node, raft_id to);

/* Returns true and fills @update if there is work to do. */
bool raft_ready(struct raft_node *node, struct raft_update *update);

/* Tells the node the work in @update (from the last raft_ready()) is done. */
void raft_advance(struct raft_node *node, const struct raft_update *update);

/* Accessors. */
raft_id raft_id_of(const struct raft_node *node);
enum raft_state raft_state_of(const struct raft_node *node);
raft_id raft_leader(const struct raft_node *node);
raft_term raft_current_term(const struct raft_node *node);
raft_id raft_voted_for(const struct raft_node *node);
raft_index raft_commit_index(const struct raft_node *node);
raft_index raft_applied_index(const struct raft_node *node);
raft_index raft_last_index(const struct raft_node *node);
raft_index raft_first_index(const struct raft_node *node);
/* Term of the entry at @index, or 0 if unknown (compacted or beyond). */
raft_term raft_term_at(const struct raft_node *node, raft_index index);
/* The entry at @index, or NULL (borrowed until the next mutating call). */
const struct raft_entry *raft_entry_at(const struct raft_node *node,
                                       raft_index index);
const struct raft_conf *raft_conf_of(const struct raft_node *node);
const struct raft_snapshot_meta *raft_snapshot_of(const struct raft_node *node);
const struct raft_stats *raft_stats_of(const struct raft_node *node);
/* The leader's view of a follower's log: match index, or 0 if unknown. */
raft_index raft_match_index(const struct raft_node *node, raft_id id);
/* On the leader, appends sent to @id and not yet acknowledged (0 for
 * itself, an unknown id, or elsewhere). */
uint32_t raft_inflight_count(const struct raft_node *node, raft_id id);
/* Semi-synchronous replication to learners (the primary-replica
 * fallback's semi-sync, docs/modes.md): from now on an entry commits only
 * once at least @k learners also hold it, besides a majority of voters;
 * with fewer than @k learners nothing more commits. 0 (the default)
 * restores Raft's rule, where learners never count. It only ever
 * delays commitment, so every Raft guarantee holds. On a leader, lowering
 * @k commits at once what the new rule allows. Not persisted: the caller
 * sets it again after a restart. Returns 0 or RAFT_ESTATE (in an update).
 */
int raft_set_commit_learners(struct raft_node *node, unsigned k);

/* The lowest index at which a leader's entry or snapshot conflicted with
 * an entry this node had committed (raft_stats.diverged counts them): from
 * there on this node's log is not its leader's. 0 if none. */
raft_index raft_diverged_at(const struct raft_node *node);
/* The id leadership is being transferred to, or 0. */
raft_id raft_transfer_target(const struct raft_node *node);

#endif /* BALLOT_RAFT_H */
