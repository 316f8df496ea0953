/*
 * bnode.h - one ballot node: the Raft core, its WAL, its LMDB state machine
 * and its peer transport, driven on a libuv loop.
 *
 * This is the one place that knows both raft/ and kv/. It executes the
 * core's updates in the documented order (docs/raft.md): send the leader's
 * messages, persist on a worker thread (WAL append + one fdatasync), send
 * the acknowledgements, apply committed entries to LMDB, answer reads,
 * advance. While a batch is on the worker, proposals and received messages
 * wait in the loop, so the next batch carries all of them: group commit.
 *
 * The client layer (server.c, commands.c) talks to it only through this
 * header: it proposes encoded kv commands and asks for read barriers, then
 * reads the kv store directly once a barrier passed.
 *
 * Everything here runs on the loop thread, except the persistence work.
 */
#ifndef BALLOT_NET_BNODE_H
#define BALLOT_NET_BNODE_H

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "histo.h"
#include "kv.h"
#include "raft.h"

/* Error codes: the -7000 range. */
enum {
    BNODE_EINVAL = -7001,
    BNODE_ENOMEM = -7002,
    /* Definitely not applied: this node is not the leader (retry on the
     * leader, see bnode_leader_addr()). */
    BNODE_ENOTLEADER = -7003,
    /* Definitely not applied: too much uncommitted work, retry later. */
    BNODE_EBUSY = -7004,
    /* Definitely not applied: the entry was overwritten by another leader's
     * entry at the same index. */
    BNODE_EDROPPED = -7005,
    /* Outcome unknown: leadership was lost or the node stopped before the
     * entry's fate was known. A retry may apply the command twice unless it
     * carries a request id. */
    BNODE_EUNKNOWN = -7006,
    /* A read could not be confirmed (no leader, leadership lost). */
    BNODE_ENOREAD = -7007,
    BNODE_ESTOPPED = -7008, /* the node is shutting down */
    BNODE_ESTORAGE = -7009, /* the WAL or the store failed: node halted */
    BNODE_ETOOBIG = -7010,
    /* Definitely not applied: another membership change is not committed
     * yet (or this leader has not committed an entry of its term). */
    BNODE_ECONFPENDING = -7011,
    /* The revision asked for is below the store's compaction point. */
    BNODE_ECOMPACTED = -7012,
    /* The clock is too far behind the last ID this node minted. */
    BNODE_ECLOCK = -7013,
    /* Leases (bnode_lease.c), from the end of leases' block. This node
     * was just elected and has not applied an entry of its term yet, so
     * it does not know the lease clock: retry shortly. */
    BNODE_ELEASENOTREADY = -7029,
    /* No such lease (a keep-alive of a lease that ended or never was). */
    BNODE_ENOLEASE = -7028,
    /* Locks (bnode_lock.c), from the end of locks' block. A claim on a
     * lock ended while it waited (its lease ended, or its token was
     * released elsewhere). */
    BNODE_ELOCKLOST = -7069,
    /* A wait for a lock ran out of time; its claim was withdrawn. */
    BNODE_ETIMEDOUT = -7068,
    /* The primary-replica fallback (bnode_fallback.c), from the end of
     * fallback's block. Refused: a quorum of the Raft configuration still
     * looks reachable (a leader is known, or enough voters are
     * connected); forcing is the operator's explicit choice. */
    BNODE_EQUORUM = -7089,
    /* Refused: this node is already in the primary-replica mode (enter),
     * or not in it. */
    BNODE_EMODE = -7088,
    /* Refused: this replica has not applied entries it knows are
     * committed (promote); wait for it, or force. */
    BNODE_ELAGGING = -7087,
    /* Definitely not applied: the store is over its quota
     * (bnode_options.quota_bytes) and the command could make it larger.
     * Deletes and compactions are still taken; writes are again once they
     * freed space. */
    BNODE_ENOSPACE = -7099,
};

const char *bnode_strerror(int code);

#define BNODE_HOST_MAX 64
/* The longest cluster secret (the transport's limit, auth.h). */
#define BNODE_SECRET_MAX 1024

/* Levels of the node's log lines. */
enum bnode_log_level {
    BNODE_LOG_DEBUG = 0,
    BNODE_LOG_INFO = 1,
    BNODE_LOG_WARN = 2,
    BNODE_LOG_ERROR = 3,
};

/* Receives one log line of the node (@msg, without a newline, valid during
 * the call), on the loop thread. */
typedef void (*bnode_log_cb)(void *arg, int level, const char *msg);

/* Called once, on the loop thread, when the node halts because its
 * storage failed (@why says what failed; valid during the call). The node
 * then refuses every request (BNODE_ESTORAGE) until bnode_stop(). */
typedef void (*bnode_halt_cb)(void *arg, const char *why);

/* Where a member listens. */
struct bnode_member
{
    raft_id id;
    char host[BNODE_HOST_MAX];
    int peer_port;
    int client_port;
};

struct tls_ctx;

struct bnode_options
{
    raft_id id;
    uint64_t cluster_id;
    /* The secret every member shares; peers prove they know it before any
     * of their messages is accepted (docs/security.md). An empty secret
     * is refused unless @insecure_peers is set. */
    uint8_t peer_secret[BNODE_SECRET_MAX];
    size_t peer_secret_len;
    bool insecure_peers;
    /* Mutual TLS on the peer port (transport.h; borrowed for the node's
     * life; NULL: none). */
    struct tls_ctx *peer_tls;
    const char *data_dir; /* copied; holds wal/ and kv/ */
    /* Every member's addresses (including this node). On first start with
     * @bootstrap set and an empty data directory, these members form the
     * initial configuration, all voters. */
    struct bnode_member members[RAFT_CONF_MAX];
    unsigned n_members;
    bool bootstrap;
    /* The ids that are voters when bootstrapping (the others wait to be
     * added with bnode_conf_change()); n_voters 0 means every member. */
    raft_id voters[RAFT_CONF_MAX];
    unsigned n_voters;

    unsigned tick_ms;        /* wall-clock length of a Raft tick */
    unsigned election_ticks; /* see struct raft_config */
    unsigned heartbeat_ticks;
    /* Take a snapshot after this many applied entries (0: never), and
     * keep this many entries behind it for slightly lagging followers. */
    uint64_t snapshot_every;
    uint64_t snapshot_trailing;
    /* Sync LMDB (on a worker) after this many applied entries, and once
     * nothing was applied for checkpoint_idle_ms (0: not when idle). */
    uint64_t checkpoint_every;
    uint64_t checkpoint_idle_ms;
    /* A batch of at most this many entries (and 64 KiB) is made durable on
     * the loop thread itself when the disk thread is idle, saving two
     * thread hand-offs; 0: always on the disk thread. */
    unsigned persist_inline_max;
    uint64_t max_uncommitted_bytes;
    uint32_t max_entry_bytes;
    /* The LMDB map: the most the store file may grow to before the node
     * maps more (it does, on its own, whenever an apply finds the map
     * full). 0: BNODE_MAP_DEFAULT, and at least twice @quota_bytes. */
    uint64_t kv_map_size;
    /* The store's quota: while its live data (file minus free pages) is
     * above it, writes that could make it larger are refused with
     * BNODE_ENOSPACE before they are proposed. 0: half the map. */
    uint64_t quota_bytes;
    /* History retention (docs/operations.md, "History"): the leader
     * compacts, through the log, the history more than
     * @history_keep_revisions revisions behind the store revision and the
     * history older than @history_keep_ms; 0 turns a rule off. */
    uint64_t history_keep_revisions;
    uint64_t history_keep_ms;
    /* History records deleted per compaction step, between applies (0:
     * KV_COMPACT_BATCH_DEFAULT). */
    uint32_t compact_batch;
    /* Integrity (docs/operations.md, "Damaged data"): the scrub re-reads
     * the whole store, checking every record, at most
     * @scrub_bytes_per_sec (0: no scrub); the leader proposes a digest
     * entry every @digest_every_ms (0: never), at which every replica
     * records its store digest and checks the leader's at the one before;
     * with @verify_at_start, a child process checks the whole store before
     * the node opens it, so that a damaged page is refused with a message
     * instead of stopping the node on an LMDB assertion. */
    uint64_t scrub_bytes_per_sec;
    uint64_t digest_every_ms;
    bool verify_at_start;
    /* How often the leader replicates its lease clock while leases exist
     * (the C of docs/coordination.md's expiry bound); 0:
     * BNODE_LEASE_CHECKPOINT_MS_DEFAULT. */
    uint64_t lease_checkpoint_ms;

    /* The primary-replica fallback's acknowledgement (docs/modes.md):
     * async (the primary's own fsync), or with @fallback_semi_sync a write
     * is acknowledged only once @fallback_ack_replicas replicas also hold
     * it durably (0: BNODE_FALLBACK_ACK_REPLICAS_DEFAULT). A write that
     * waits longer than @fallback_ack_timeout_ms (0:
     * BNODE_FALLBACK_ACK_TIMEOUT_MS_DEFAULT) fails as unknown, or with
     * @fallback_degrade the primary degrades to async until enough
     * replicas caught up again. Raft mode ignores them. */
    bool fallback_semi_sync;
    unsigned fallback_ack_replicas;
    uint64_t fallback_ack_timeout_ms;
    bool fallback_degrade;

    /* Where log lines go (NULL: nowhere), and the lowest level sent. */
    bnode_log_cb log;
    void *log_arg;
    int log_level;
    /* Told when storage fails and the node halts (NULL: nobody). */
    bnode_halt_cb halt;
    void *halt_arg;
    /* Deliberate bugs (BNODE_BREAK_* bits) for the fault-injection
     * suite's broken builds, which must fail its checks (docs/jepsen.md).
     * 0 by default; only ballotd's BALLOT_JEPSEN_BREAK variable sets
     * them, and only the suite's tests set that. */
    unsigned breaks;
};

/* The map when none is given, and the history kept by default. */
#define BNODE_MAP_DEFAULT (4ull << 30)
/* The fallback's semi-sync: replicas that must hold a write, and how long
 * a write may wait for them, when not set. */
#define BNODE_FALLBACK_ACK_REPLICAS_DEFAULT 1u
#define BNODE_FALLBACK_ACK_TIMEOUT_MS_DEFAULT 2000u
#define BNODE_HISTORY_KEEP_DEFAULT 100000u
/* The scrub's default rate and the default period of digest entries. */
#define BNODE_SCRUB_BYTES_PER_SEC_DEFAULT (4ull << 20)
#define BNODE_DIGEST_EVERY_MS_DEFAULT 60000u

/* Linearizable reads are served from this node's applied state, without
 * ReadIndex (a deposed or cut-off node serves stale values). */
#define BNODE_BREAK_STALE_READS 1u
/* BREQ request ids are ignored: a retried write is applied again. */
#define BNODE_BREAK_NO_SESSIONS 2u
/* The WAL skips fdatasync: acknowledged entries live in the page cache
 * only, and a machine crash loses them. */
#define BNODE_BREAK_NO_FDATASYNC 4u
/* The leader counts its own entries towards commitment once written, not
 * once durable: its batches skip fdatasync (a follower's batch syncs them
 * later), so a committed entry may be durable on a minority only. */
#define BNODE_BREAK_LEADER_UNSYNCED 8u
/* Learners vote and count towards commitment (RAFT_BREAK_LEARNERS_VOTE):
 * a voter removed and added back as a learner keeps voting. */
#define BNODE_BREAK_LEARNERS_VOTE 16u
/* EXEC forgets what WATCH saw (the bug issue 14 found: a retried EXEC
 * dropped its watched keys from its guard): it commits over a change of
 * a watched key made between WATCH and EXEC. A high bit, so that other
 * breaks added meanwhile keep the low ones. */
#define BNODE_BREAK_WATCH_IGNORED (1u << 10)

/* Fills @opts with defaults: 10 ms ticks, election after 30 ticks
 * (300-600 ms), heartbeat every 3, a snapshot every 100,000 entries with
 * 10,000 kept behind it, an LMDB checkpoint every 50,000 entries and after
 * one idle second, batches of up to 8 entries persisted on the loop, the
 * last BNODE_HISTORY_KEEP_DEFAULT revisions of history kept, a 4 GiB map
 * and a quota of half of it, a scrub at BNODE_SCRUB_BYTES_PER_SEC_DEFAULT,
 * a digest entry every BNODE_DIGEST_EVERY_MS_DEFAULT and no check at start
 * (it forks: the program decides). */
void bnode_options_default(struct bnode_options *opts);

struct bnode;

/* The deliberate bugs @node runs with (struct bnode_options.breaks). */
unsigned bnode_breaks(const struct bnode *node);

/* Opens the data directory (WAL recovery, LMDB open), restores or
 * bootstraps the Raft core, starts the peer transport and the tick timer.
 * On failure stores a message in @errmsg. */
int bnode_start(uv_loop_t *loop,
                const struct bnode_options *opts,
                struct bnode **out,
                char *errmsg,
                size_t errmsg_len);

/* Completion of a proposal. @status is 0 (applied; @res is the entry's
 * result, valid during the call) or a BNODE_E* code (@res NULL). */
typedef void (*bnode_write_cb)(void *arg,
                               int status,
                               const struct kv_entry_result *res);

/* Proposes an encoded kv command (copied). If this returns 0, @cb is
 * called exactly once, later, from the loop; if it returns an error
 * (BNODE_ENOTLEADER, BNODE_EBUSY, BNODE_ETOOBIG, BNODE_ESTOPPED, ...), @cb
 * is never called. */
int bnode_propose(struct bnode *node,
                  const uint8_t *cmd,
                  size_t len,
                  bnode_write_cb cb,
                  void *arg);

/* Completion of a read barrier: with @status 0 the kv store (bnode_kv())
 * reflects every write committed before bnode_read() was called (or, for a
 * stale read, whatever this node applied); read it inside the callback. */
typedef void (*bnode_read_cb)(void *arg, int status);

/* Asks for a read barrier: linearizable (ReadIndex through the leader) or
 * stale (this node's state as it is). @cb is called exactly once unless an
 * error is returned. */
int bnode_read(struct bnode *node,
               bool linearizable,
               bnode_read_cb cb,
               void *arg);

/* The state machine, for reads inside a read callback. */
struct kv_store *bnode_kv(struct bnode *node);

struct bnode_status
{
    raft_id id;
    raft_id leader;
    uint8_t state; /* enum raft_state */
    raft_term term;
    raft_index commit;
    raft_index applied;
    raft_index last_index;
    raft_index first_index;
    raft_index snapshot_index;
    uint64_t revision;
    uint64_t db_bytes; /* the store's data file in use (kv_status) */
    /* Space (measured at most every few ticks): free pages inside
     * @db_bytes, the map, the quota and whether writes are refused. */
    uint64_t db_free_bytes;
    uint64_t map_bytes;
    uint64_t quota_bytes;
    bool over_quota;
    uint64_t map_grows; /* times the map was found full and grown */
    /* History: its compaction point, records kept, whether records below
     * the point still await deletion, compaction entries applied. */
    uint64_t compact_revision;
    uint64_t history_events;
    bool compaction_pending;
    uint64_t compactions;
    uint64_t keys; /* live keys in the store (kv_status) */
    /* Integrity: the store digest at the last digest entry applied here
     * (@digest_index 0: none yet), the leader's digests found equal to and
     * different from this node's, the scrub's whole passes and bytes, and
     * whether damage was found (the node then halts). */
    uint64_t digest_index;
    uint64_t digest;
    uint64_t digest_checks;
    uint64_t digest_mismatches;
    uint64_t scrub_passes;
    uint64_t scrub_bytes;
    bool store_damaged;
    struct raft_conf conf;
    /* On the leader, the match index of each member of @conf (same
     * order; its own is its last index); 0 elsewhere. ROLE reports them
     * as replication offsets. */
    raft_index match[RAFT_CONF_MAX];
    uint64_t proposals_pending;
    uint64_t reads_pending;
    uint64_t batches_persisted;
    uint64_t entries_applied;
    bool halted; /* storage failed; see bnode_halt_cb */
    /* The longest the loop thread kept the tick timer waiting beyond its
     * period since start (ms), and how many ticks came at least 100 ms
     * late: while the loop stalls, heartbeats and votes wait too. */
    uint64_t loop_stall_max_ms;
    uint64_t loop_stalls;
    /* What the peer port refused (transport_stats) and what the core
     * dropped (raft_stats): docs/security.md says what each means. */
    uint64_t peer_rejected_hellos;
    uint64_t peer_auth_failures;
    uint64_t peer_bad_senders;
    uint64_t peer_bad_frames;
    uint64_t peer_handshake_timeouts;
    uint64_t peer_cert_mismatches; /* transport.h */
    uint64_t raft_msgs_rejected;
    uint64_t raft_msgs_bad_term;
    /* On the leader, for each member of @conf (same order; 0 for itself):
     * how long ago (ms) the oldest entry it has not acknowledged was
     * appended, and its appends in flight. 0 elsewhere. */
    uint64_t lag_ms[RAFT_CONF_MAX];
    uint32_t inflight[RAFT_CONF_MAX];
    /* Elections this node started and changes of the leader it saw
     * (raft_stats). */
    uint64_t elections;
    uint64_t leader_changes;
    /* bnode_propose() refusals, by reason: BNODE_EBUSY, BNODE_ENOTLEADER,
     * BNODE_ENOSPACE (quota), BNODE_ETOOBIG. */
    uint64_t refused_busy;
    uint64_t refused_not_leader;
    uint64_t refused_quota;
    uint64_t refused_too_big;
    /* The WAL's segment files and the bytes they take (wal_bytes()). */
    uint64_t wal_segments;
    uint64_t wal_bytes;
    /* Peer connections open now, both ways. */
    uint64_t peer_connections;
    /* The primary-replica fallback (docs/modes.md): whether the
     * configuration in force is one voter (the primary) with learners (its
     * replicas), the epoch (the Raft term, which fences older primaries),
     * and the primary's id. Appends this node refused because they
     * conflict with entries it had committed (raft_stats.diverged): its
     * data must be rebuilt from the primary. On the primary after `enter`:
     * its last index and highest commit index learned at that moment (0:
     * not entered here since start). On a replica, ms since it last heard
     * from the primary (0: never since start). */
    bool fallback;
    raft_term epoch;
    raft_id primary;
    uint64_t diverged;
    raft_index entered_last_index;
    raft_index entered_commit;
    uint64_t primary_silent_ms;
    /* Entries this node had committed and cut when it rejoined a newer
     * primary (a former primary), and the file in the data directory that
     * holds them (docs/modes.md); 0 and "" if none. */
    raft_index cut_first;
    raft_index cut_last;
    char cut_file[128];
    /* The acknowledgement policy (bnode_options.fallback_*), and whether
     * a semi-sync primary degraded to async after a timeout. */
    bool ack_semi_sync;
    unsigned ack_replicas;
    uint64_t ack_timeout_ms;
    bool ack_degrade;
    bool ack_degraded;
};

void bnode_status(struct bnode *node, struct bnode_status *out);

/* What the node times and sizes, for the metrics port (docs/operations.md,
 * "Metrics"); microseconds unless the name says otherwise. */
struct bnode_histos
{
    struct histo wal_fsync_us;     /* one fdatasync of a batch */
    struct histo batch_entries;    /* entries per persisted batch */
    struct histo commit_us;        /* a proposal of this node to its commit */
    struct histo apply_us;         /* one kv_apply() of committed entries */
    struct histo snap_create_us;   /* writing our snapshot file */
    struct histo snap_transfer_us; /* receiving one: first chunk to last */
    struct histo snap_install_us;  /* installing a received one */
    /* On the leader: a heartbeat to a follower and its answer (the
     * network and both loops, no disk). */
    struct histo peer_rtt_us;
};

/* The node's histograms, borrowed until bnode_stop(); loop thread only. */
const struct bnode_histos *bnode_histos(const struct bnode *node);

/* The leader's client address as "host:port", or NULL if unknown. The
 * string lives until the next call. */
const char *bnode_leader_addr(struct bnode *node);

/* Proposes a membership change (one at a time, §4.1 of the Raft
 * dissertation): RAFT_ADD_LEARNER, RAFT_PROMOTE, RAFT_ADD_VOTER or
 * RAFT_REMOVE of member @id, whose addresses this node must know (from
 * its configuration or the log; see bnode_member_add()). @cb is called like a
 * write's, once the change is committed and applied here. Returns 0,
 * BNODE_ENOTLEADER, BNODE_ECONFPENDING, BNODE_EINVAL (unknown id, adding a
 * present member, promoting a voter, removing the last voter) or
 * BNODE_ESTOPPED. */
int bnode_conf_change(struct bnode *node,
                      enum raft_conf_change change,
                      raft_id id,
                      bnode_write_cb cb,
                      void *arg);

/* Adds member @m->id (RAFT_ADD_LEARNER or RAFT_ADD_VOTER) at the
 * addresses in @m, which need not be among those this node started with:
 * unless they are already known, the leader first commits a record of them
 * (so every replica, and every later start, can reach the new member),
 * then proposes the change. @cb is called like bnode_conf_change()'s, with
 * its codes, also when the second step is refused. Returns 0 or what
 * bnode_propose()/bnode_conf_change() return; BNODE_EINVAL also for a
 * member of the configuration given another address. */
int bnode_member_add(struct bnode *node,
                     enum raft_conf_change change,
                     const struct bnode_member *m,
                     bnode_write_cb cb,
                     void *arg);

/* Parses "IP:CLIENT_PORT[:PEER_PORT]" (@len bytes; IP a numeric IPv4
 * address, never a host name; the peer port defaults to the client port
 * + 1) into @m's host and ports. Returns 0, -1 if @text is malformed,
 * or -2 if its host is not a numeric IPv4 address (@m's host says what it
 * was). */
int bnode_member_parse_addr(const char *text,
                            size_t len,
                            struct bnode_member *m);

/* The addresses this node knows for member @id, or NULL. */
const struct bnode_member *bnode_member_addr(struct bnode *node, raft_id id);

/* ---- the primary-replica fallback (bnode_fallback.c) ------------------ */

/* What entering the mode found and did. */
struct bnode_fallback_report
{
    raft_term epoch;           /* the new term: every older one is fenced */
    raft_index conf_index;     /* the forced configuration's entry */
    raft_index last_index;     /* this node's log end before entering */
    raft_index commit;         /* the highest commit index it had learned */
    unsigned voters_reachable; /* voters connected, itself included */
    unsigned quorum;           /* of the configuration left behind */
};

/* Turns this node, a member of a Raft cluster that lost its quorum, into
 * the primary of a primary-replica group (docs/modes.md): it becomes the
 * only voter of a configuration forced at a term above every term it saw,
 * every other member becomes a learner (a replica), and it commits on its
 * own fsync from then on. Entries after @out->commit that this node holds
 * become committed; entries the lost majority committed and never sent
 * here are lost: the report says which indexes are at stake. Refused with
 * BNODE_EQUORUM while a leader is known or enough voters are connected to
 * form a quorum, unless @force; BNODE_EMODE if the mode is already in
 * force; BNODE_EBUSY while a batch is being persisted (retry);
 * BNODE_ESTOPPED; BNODE_ENOMEM. */
int bnode_fallback_enter(struct bnode *node,
                         bool force,
                         struct bnode_fallback_report *out);

/* How far above every term it has seen a promotion puts the new epoch: a
 * former primary that is cut off restarts as the only voter of its own
 * configuration and elects itself once per restart; its epoch stays below
 * the promoted one's unless it restarts that many times before it hears
 * of it (docs/modes.md). */
#define BNODE_FALLBACK_EPOCH_STEP 1000u

/* Makes this replica the primary of its group, for a primary that died
 * (docs/modes.md): the configuration {this node the only voter, every
 * other member a learner, the old primary included} is forced at an epoch
 * BNODE_FALLBACK_EPOCH_STEP above every term this node saw, which fences
 * the old primary: once it hears of the new epoch it stops, saves what
 * it acknowledged that this node never got, and rejoins as a replica.
 * Refused with BNODE_EQUORUM while the primary was heard within an
 * election timeout, and BNODE_ELAGGING while this node has not applied
 * everything it knows committed, unless @force; BNODE_EMODE outside the
 * mode or on the primary; BNODE_EBUSY (retry), BNODE_ESTOPPED. @out as
 * for bnode_fallback_enter() (voters_reachable: 1 if the primary was
 * heard). */
int bnode_fallback_promote(struct bnode *node,
                           bool force,
                           struct bnode_fallback_report *out);

/* What an exit found: members of the group, those caught up (holding
 * every committed entry, the primary included), and the quorum of the
 * Raft configuration the exit makes. */
struct bnode_fallback_exit_report
{
    unsigned members;
    unsigned caught_up;
    unsigned quorum;
};

/* Completion of an exit: @status 0 once every replica is a voter (@n
 * promoted), or the BNODE_E* code of the change that failed. */
typedef void (*bnode_fallback_exit_cb)(void *arg, int status, unsigned n);

/* Turns the primary-replica group back into a Raft cluster, on its
 * primary: every replica becomes a voter, one membership change at a time
 * (caught-up replicas first), through the log, so nothing the primary
 * acknowledged is lost and terms go on from the epoch. Refused with
 * BNODE_EQUORUM if fewer than a majority of the members (the primary
 * included) hold every committed entry (@out says how many), BNODE_EMODE
 * on a node that is not the primary in the mode; otherwise the codes of
 * bnode_conf_change(). If this returns 0, @cb is called exactly once. */
int bnode_fallback_exit(struct bnode *node,
                        struct bnode_fallback_exit_report *out,
                        bnode_fallback_exit_cb cb,
                        void *arg);

/* Completion of bnode_wait_replicas(): @status 0 and the number of other
 * members holding the writes (reached, or at the timeout), or a BNODE_E*
 * code. */
typedef void (*bnode_wait_cb)(void *arg, int status, unsigned acked);

/* Redis's WAIT on the leader (the primary): waits until @n other members
 * hold every entry the leader has now, or @timeout_ms passed (0: no
 * limit), and reports how many do. Returns 0 (then @cb is called exactly
 * once, later), BNODE_ENOTLEADER, BNODE_ENOMEM or BNODE_ESTOPPED. */
int bnode_wait_replicas(struct bnode *node,
                        unsigned n,
                        uint64_t timeout_ms,
                        bnode_wait_cb cb,
                        void *arg);

/* Whether the configuration in force is the primary-replica mode; if so
 * stores the primary's id and the epoch (either may be NULL). */
bool bnode_fallback_mode(struct bnode *node,
                         raft_id *primary,
                         raft_term *epoch);

/* Starts moving leadership to @target. */
int bnode_transfer(struct bnode *node, raft_id target);

/* ---- exports: copies of the store for clients (BSNAPSHOT) ----------- */

/* Longest path of a file in the data directory. */
#define BNODE_PATH_MAX 4400

/* A consistent, point-in-time copy of the store in a file of its own,
 * written by bnode_export_start(). The caller owns it and must release it
 * with bnode_export_release(), which needs no node (it may run after the
 * node stopped). */
struct bnode_export
{
    /* The file, open: kv_snapshot_info() says what it holds (index,
     * revision, size, checksum), kv_snapshot_read_chunk() reads it (from
     * any one thread at a time). */
    struct kv_snapshot *snap;
    /* The term of the entry at the copy's index. */
    raft_term term;
    char path[BNODE_PATH_MAX];
};

/* Completion of an export: with @status 0, @exp is the copy (transferred
 * to the callee); otherwise @exp is NULL and @status is BNODE_ESTOPPED,
 * BNODE_ENOMEM or BNODE_ESTORAGE (the copy failed; the node logged why). */
typedef void (*bnode_export_cb)(void *arg,
                                int status,
                                struct bnode_export *exp);

/* Writes a copy of the store, as it is when a worker thread starts the
 * copy, to DATA/export/ (kv_snapshot_create(): compacted, checksummed,
 * synced); the loop goes on meanwhile. The copy includes at least every
 * entry applied before this call: take a read barrier first to make it
 * linearizable. @cb is called exactly once, later, from the loop, unless
 * an error (BNODE_ESTOPPED, BNODE_ENOMEM) is returned. Leftover exports
 * are removed when the node starts. */
int bnode_export_start(struct bnode *node, bnode_export_cb cb, void *arg);

/* Closes and deletes an export's file and frees @exp (NULL is allowed). */
void bnode_export_release(struct bnode_export *exp);

/* ---- watches ----------------------------------------------------------- */

/* Most watches open on one node at once. */
#define BNODE_WATCHES_MAX 100000u

struct bnode_watch;

/* Delivery of a watch, on the loop: with @status 0, @events (@n of them,
 * possibly none: a progress notification) are the changes in the watched
 * range, in revision order, and the store was at @revision when they were
 * read (every change up to it in the range has now been delivered, for a
 * watcher that is up to date). Otherwise the watch has ended: @status is
 * BNODE_ECOMPACTED (@revision is the compaction point: resume above it
 * after a fresh read), BNODE_ESTOPPED (the node is stopping), BNODE_ENOMEM
 * or BNODE_ESTORAGE, and no call follows. Events and their bytes live
 * during the call. */
typedef void (*bnode_watch_cb)(void *arg,
                               int status,
                               const struct kv_event *events,
                               size_t n,
                               uint64_t revision);

/* Watches the key @key (@end_len 0), the range [@key, @end) (an @end of
 * one zero byte: every key >= @key), or, with @prefix, every key starting
 * with @key (all keys if empty). Changes are delivered from
 * @from_revision (0: the next change; a revision in the past replays the
 * history kept since then; one in the future waits for it), after they
 * are applied here: a watch on a follower is never behind that
 * follower's store, and may lag the leader. Keys are copied. Returns 0
 * with the watch in @out, BNODE_EINVAL, BNODE_ECOMPACTED (@from_revision
 * is below the compaction point), BNODE_EBUSY (too many watches),
 * BNODE_ENOMEM, BNODE_ESTOPPED or BNODE_ESTORAGE. */
int bnode_watch_start(struct bnode *node,
                      const uint8_t *key,
                      size_t key_len,
                      const uint8_t *end,
                      size_t end_len,
                      bool prefix,
                      uint64_t from_revision,
                      bnode_watch_cb cb,
                      void *arg,
                      struct bnode_watch **out);

/* Ends a watch: its callback is not called again (also when called from
 * inside it). NULL and an ended watch are allowed. */
void bnode_watch_cancel(struct bnode_watch *w);

/* ---- leases ------------------------------------------------------------ */

/* The lease clock checkpoint interval by default (ms), and the most
 * keep-alives waiting for the next batch: beyond it BNODE_EBUSY. */
#define BNODE_LEASE_CHECKPOINT_MS_DEFAULT 500u
#define BNODE_KEEPALIVES_MAX 100000u

/* The leader's lease clock now (ms, docs/coordination.md, "Leases"): the
 * replicated clock it started from when it became ready plus the time its
 * own monotonic clock measured since. Lease commands a client layer
 * proposes (grant: deadline = clock + TTL) carry it. Returns 0,
 * BNODE_ENOTLEADER, BNODE_ELEASENOTREADY (elected, an entry of its term
 * not applied yet: retry) or BNODE_ESTOPPED. */
int bnode_lease_clock(struct bnode *node, uint64_t *clock_ms);

/* Completion of a keep-alive: with @status 0 the lease will not end
 * before @remaining_ms from now (the leader replicated its new deadline
 * before this call, so no later leader ends it sooner); otherwise
 * BNODE_ENOLEASE (it has ended or never existed), or what a write may
 * fail with (BNODE_ENOTLEADER, BNODE_EUNKNOWN, BNODE_ESTOPPED...). */
typedef void (*bnode_keepalive_cb)(void *arg,
                                   int status,
                                   uint64_t remaining_ms);

/* Keeps lease @id alive: its deadline becomes the lease clock plus its
 * TTL. Keep-alives are batched, one log entry per tick for all of them
 * (at most KV_LEASE_BATCH_MAX ids each), so their cost does not grow with
 * their rate. @cb is called exactly once unless an error is returned:
 * BNODE_ENOTLEADER, BNODE_ELEASENOTREADY, BNODE_EBUSY (too many waiting),
 * BNODE_ENOMEM or BNODE_ESTOPPED. */
int bnode_lease_keepalive(struct bnode *node,
                          uint64_t id,
                          bnode_keepalive_cb cb,
                          void *arg);

/* ---- locks ------------------------------------------------------------ */

/* A claim on a lock waiting for its turn (docs/coordination.md, "Locks"). */
struct bnode_lock_wait;

/* Completion of a wait: @status 0 (the claim holds the lock: its token
 * is the lock's current one), BNODE_ELOCKLOST, BNODE_ETIMEDOUT (the claim
 * was withdrawn, or that failed: then @status is the proposal's error and
 * the claim lasts until its lease ends) or what a watch ends with
 * (BNODE_ESTOPPED, BNODE_ENOMEM, ...; the claim is withdrawn first). */
typedef void (*bnode_lock_cb)(void *arg, int status);

/* Waits, on this node, until the claim @key (with token @token, its
 * create revision, made by a KV_CMD_LOCK_ACQUIRE on the lock at @prefix)
 * holds the lock: on each change of the prefix applied here, it re-reads
 * the claim and the holder. After @timeout_ms (0: none) it proposes the
 * claim's release, then calls @cb with BNODE_ETIMEDOUT. @prefix and @key
 * are copied. Returns 0 (then @cb is called exactly once, unless the wait
 * is cancelled first) with the wait in @out, or BNODE_EINVAL, BNODE_ENOMEM,
 * BNODE_ESTOPPED. */
int bnode_lock_wait(struct bnode *node,
                    const uint8_t *prefix,
                    size_t prefix_len,
                    const uint8_t *key,
                    size_t key_len,
                    uint64_t token,
                    uint64_t timeout_ms,
                    bnode_lock_cb cb,
                    void *arg,
                    struct bnode_lock_wait **out);

/* Ends a wait whose caller went away: withdraws the claim (a release
 * proposal, whose outcome nobody hears) and never calls its callback.
 * Only before the callback ran. */
void bnode_lock_wait_cancel(struct bnode_lock_wait *w);

/* ---- IDs -------------------------------------------------------------- */

/* Mints @n (1..4096) coordination-free 64-bit IDs (net/node/snowflake.h:
 * time, member id, sequence), increasing, unique across the cluster and
 * never repeated by this node across clock steps and restarts. Any
 * thread, while the node runs. Returns 0, BNODE_EINVAL (a count out of
 * range, or this member's id is above 1023), BNODE_ECLOCK (the clock is
 * more than 5 s behind the last ID minted; *@behind_ms says how far) or
 * BNODE_ESTORAGE (the high-water mark could not be saved). */
int bnode_snowflake(struct bnode *node,
                    uint64_t *out,
                    size_t n,
                    uint64_t *behind_ms);

/* Graceful stop: refuses new requests, fails pending ones (writes with
 * BNODE_EUNKNOWN unless their fate is known), waits for the persistence
 * worker, closes everything; then @cb runs and @node is freed. */
void bnode_stop(struct bnode *node, void (*cb)(void *arg), void *arg);

#endif
