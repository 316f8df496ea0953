/*
 * sim.h - the deterministic cluster simulator (internal header).
 *
 * One process runs a whole ballot cluster: every node is a raft core driven
 * by a simulated driver (node.c) over a simulated network (net.c) and a
 * simulated disk (disk.c), with a tiny application state machine (app.c).
 * Time is simulated and every random choice comes from one seed, so a seed
 * replays the same run bit for bit. A workload (workload.c) proposes, reads,
 * snapshots, moves leadership, changes membership and injects faults; the
 * checkers (check.c) assert Raft's safety properties after every event and
 * liveness after the faults heal. docs/simulator.md describes all of it.
 *
 * Files: rng.c randomness and hashing, trace.c the event trace, net.c the
 * network, disk.c the disk and the storage seam, app.c the state machine,
 * node.c one node's driver, workload.c actions and faults, check.c the
 * invariants, sim.c the event loop and phases, main.c the command line.
 */
#ifndef BALLOT_SIM_H
#define BALLOT_SIM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "raft.h"

/* Slots for nodes: up to 5 initial voters plus 2 spares that membership
 * changes can add. Node ids are slot + 1. */
#define SIM_MAX_NODES 7
#define SIM_SPARES 2

/* Simulated time units per tick. Messages and fsyncs complete at arbitrary
 * units, so several can happen between two ticks. */
#define SIM_TICK 1000

typedef uint64_t sim_time;

/* ---------------------------------------------------------------------- */
/* Randomness and hashing (rng.c)                                          */

/* xoshiro256** seeded through splitmix64: small, fast and the same on
 * every platform, unlike rand(). */
struct sim_rng
{
    uint64_t s[4];
};

void sim_rng_seed(struct sim_rng *rng, uint64_t seed);
uint64_t sim_rng_next(struct sim_rng *rng);
/* Uniform in [0, n); n > 0. */
uint64_t sim_rng_below(struct sim_rng *rng, uint64_t n);
/* Uniform in [lo, hi]. */
uint64_t sim_rng_range(struct sim_rng *rng, uint64_t lo, uint64_t hi);
/* True with probability ppm / 1,000,000. */
bool sim_rng_ppm(struct sim_rng *rng, uint32_t ppm);
/* The splitmix64 finalizer: a bijective 64-bit mix. */
uint64_t sim_mix64(uint64_t x);
/* A 64-bit hash of @len bytes (FNV-1a folded through sim_mix64). */
uint64_t sim_hash_bytes(const void *data, size_t len, uint64_t seed);

/* ---------------------------------------------------------------------- */
/* Swarm parameters: what one seed enables and how hard (workload.c)      */

struct sim_params
{
    unsigned nodes; /* initial voters: 3 or 5 */
    unsigned slots; /* nodes + SIM_SPARES */

    sim_time fault_time;    /* length of the fault phase */
    sim_time liveness_time; /* bound for the liveness phase */

    /* Network. Latencies are in time units. */
    uint32_t lat_min, lat_max;
    uint32_t loss_ppm;
    uint32_t dup_ppm;
    uint32_t reorder_ppm; /* chance a message takes a long detour */
    uint32_t reorder_max; /* the longest detour */

    /* Disk. */
    uint32_t fsync_min, fsync_max;
    uint32_t slow_fsync_ppm; /* chance an fsync stalls for ticks */
    uint32_t slow_fsync_max;
    bool torn_writes; /* a crash keeps a random prefix of unsynced writes */

    /* Clock skew: each node's tick lasts SIM_TICK +- this many units. With
     * lease reads it stays inside the margin docs/raft.md requires (drift
     * below one tick per election timeout); without, it may be large. */
    uint32_t tick_skew;

    /* I/O faults of the simulated file system (--storage wal only; drawn
     * from a stream of their own, so that the other parameters are those
     * the seed had before these faults existed). Per call: a pwrite,
     * fallocate or ftruncate fails with EIO or ENOSPC, an fdatasync or
     * fsync with EIO. Disk full: every @full_every ticks on average, one
     * node's disk (or every node's) is full for up to @full_len ticks. */
    uint32_t io_write_ppm;
    uint32_t io_sync_ppm;
    bool disk_full;
    uint32_t full_every, full_len; /* ticks */

    /* Fault kinds (swarm testing: each seed enables a random subset). */
    bool crashes;
    bool partitions;
    bool asym_partitions;
    bool conf_changes;
    bool transfers;
    bool snapshots;
    bool follower_reads;

    /* Workload: mean time between actions and the weight of each. */
    sim_time action_gap;
    uint32_t w_propose, w_read, w_snapshot, w_transfer, w_conf, w_crash,
        w_partition;

    /* The raft configuration every node gets (with its own id and seed). */
    bool pre_vote, check_quorum, lease_reads;
    unsigned election_ticks, heartbeat_ticks;
    uint32_t max_append_entries;
    uint32_t max_inflight;
    uint32_t chunk_bytes;
    uint64_t trailing;
    uint32_t app_filler; /* padding in app snapshots: several chunks */
};

/* Fills @p from @seed; @nodes is 3, 5 or 0 (let the seed choose). */
void sim_params_choose(struct sim_params *p, uint64_t seed, unsigned nodes);

/* ---------------------------------------------------------------------- */
/* The application state machine (app.c)                                  */

#define SIM_APP_SLOTS 16

/* A register file of SIM_APP_SLOTS slots, each holding the id of the last
 * proposal written to it, plus a hash chain over every applied entry. Two
 * nodes that applied the same entries have the same chain, so comparing one
 * number compares whole histories. */
struct sim_app
{
    raft_index applied;
    raft_term applied_term;
    uint64_t chain;
    uint64_t slots[SIM_APP_SLOTS];
    struct raft_conf conf; /* membership as of @applied */
    uint32_t filler;       /* snapshot padding bytes */
};

void app_init(struct sim_app *app, uint32_t filler);
/* The chain after applying @e on top of @chain. */
uint64_t app_chain_next(uint64_t chain, const struct raft_entry *e);
/* Applies @e, which must be entry applied + 1 (the caller checks). */
void app_apply(struct sim_app *app, const struct raft_entry *e);
size_t app_encoded_size(const struct sim_app *app);
/* Serializes the state into @buf (app_encoded_size() bytes). */
void app_encode(const struct sim_app *app, uint8_t *buf);
/* Replaces the state with a serialized one; 0 or -1 if malformed. */
int app_decode(struct sim_app *app, const uint8_t *buf, size_t len);

/* A content hash of an entry: type, length and bytes (not index or term). */
uint64_t sim_entry_hash(const struct raft_entry *e);

/* Proposals: "BSIM", u64 pid, u8 slot, then payload bytes; all derived from
 * (salt, pid), so a proposal can be rebuilt from its id alone. */
#define SIM_PROPOSAL_MAX 64
uint32_t sim_proposal_encode(uint64_t salt, uint64_t pid, uint8_t *buf);
/* Returns the pid of a proposal entry, or 0 if @e is not one. */
uint64_t sim_proposal_pid(const struct raft_entry *e, unsigned *slot);

/* ---------------------------------------------------------------------- */
/* Storage seam and the simulated disk (disk.c)                           */

/* What a restarting node reads back; borrowed until the next call on the
 * storage. @entries follow the snapshot (or start at 1), contiguously. */
struct sim_durable
{
    struct raft_hard_state hs;
    bool has_snapshot;
    struct raft_snapshot_meta snap;
    const uint8_t *snap_data;
    const struct raft_entry *entries;
    size_t n_entries;
};

/* Error for a write that breaks the raft_update contract (a core bug, or a
 * driver bug): the storage keeps a message in its errmsg. */
#define SIM_ESTORAGE (-2001)
/* Error from the real storage behind the seam (storage_wal.c): a WAL call
 * failed or recovery returned something else than was made durable; the
 * storage keeps a message in its errmsg. */
#define SIM_EWAL (-2002)
/* A storage call failed because the simulator injected an I/O fault, and
 * the WAL reacted as it must (the error it returned is the one injected,
 * and it refuses every later write). The node halts, as ballotd does; the
 * storage keeps a message in its errmsg. */
#define SIM_EFAULT (-2003)

/* I/O faults injected into one node's simulated file system (memfs.c).
 * The node owns it; node.c and workload.c switch faults on and off, memfs.c
 * draws from @rng and records what it injected in @hit, which the storage
 * seam clears before each WAL call, so that a failing call can be told
 * apart from one that an injected fault explains. */
enum sim_iofault_call {
    IOF_PWRITE = 1,
    IOF_FALLOCATE,
    IOF_FTRUNCATE,
    IOF_FDATASYNC,
    IOF_FSYNC,
    IOF_DIRSYNC, /* an fsync of the directory */
};
#define IOF_HIT_EIO 1u
#define IOF_HIT_ENOSPC 2u

struct sim_iofaults
{
    struct sim *sim; /* tracing and counters; borrowed */
    unsigned slot;
    struct sim_rng *rng; /* the run's I/O fault stream; borrowed */
    uint32_t write_ppm;  /* pwrite, fallocate, ftruncate */
    uint32_t sync_ppm;   /* fdatasync, fsync */
    bool full;           /* disk full: writes that grow a file fail */
    bool armed;          /* faults are injected only while set */
    unsigned hit;        /* IOF_HIT_* injected since last cleared */
    char first[96];      /* the first of them, for messages */
};

/* The node driver persists only through this interface, so that another
 * implementation (the real storage/ WAL) can be plugged in for a share of
 * the seeds. Writes are buffered until sync(); crash() forgets whatever was
 * not synced. Every function returns 0 or a negative code. */
struct sim_storage_ops
{
    /* Writes a received snapshot chunk into the staging area (an offset of
     * 0 starts a new one). */
    int (*stage_chunk)(void *ctx, const struct raft_msg_snapshot *chunk);
    /* Makes the staged snapshot at meta->index the node's snapshot; drops
     * entries at or below it (all entries if @reset_log). */
    int (*install_staged)(void *ctx,
                          const struct raft_snapshot_meta *meta,
                          bool reset_log);
    /* Saves a snapshot the application took; @data is copied. Durable on
     * return (the application writes it atomically); only called with no
     * unsynced writes pending. Drops entries at or below meta->index. */
    int (*save_snapshot)(void *ctx,
                         const struct raft_snapshot_meta *meta,
                         const uint8_t *data);
    /* Appends @entries, replacing any at or after entries[0].index. */
    int (*append)(void *ctx, const struct raft_entry *entries, size_t n);
    int (*save_hard_state)(void *ctx, const struct raft_hard_state *hs);
    /* Makes every write so far durable. */
    int (*sync)(void *ctx);
    /* Power loss: drops unsynced writes; with @tear a random prefix of them
     * (in write order) survives. Returns how many writes survived or a
     * negative code. */
    int (*crash)(void *ctx, struct sim_rng *rng, bool tear);
    /* The process exits but the machine stays up: what was handed to the
     * operating system stays there (unsynced writes are still in the page
     * cache, visible to the next process and still at the mercy of a later
     * power loss). Returns 0 or a negative code. */
    int (*exit)(void *ctx);
    /* Reads the durable state back. */
    int (*load)(void *ctx, struct sim_durable *out);
    /* The node's snapshot bytes if its snapshot is at @index, else NULL. */
    const uint8_t *(*snapshot_data)(void *ctx,
                                    raft_index index,
                                    const struct raft_snapshot_meta **meta);
    /* Number of writes not yet synced. */
    size_t (*unsynced)(void *ctx);
    const char *(*errmsg)(void *ctx);
    void (*destroy)(void *ctx);
};

struct sim_storage
{
    const struct sim_storage_ops *ops;
    void *ctx;
};

/* Creates an empty simulated disk. Returns 0 or -1 (no memory). */
int disk_create(struct sim_storage *out);

/* Creates a storage over the real storage/ WAL, in a directory of a file
 * system simulated in memory with power-loss semantics (storage_wal.c).
 * The WAL's segment size and preallocation mode are drawn from @seed.
 * @faults (borrowed for the storage's life, may be NULL) says which I/O
 * faults to inject into the file system. Returns 0 or -1. */
int storage_wal_create(struct sim_storage *out,
                       uint64_t seed,
                       raft_id id,
                       struct sim_iofaults *faults);

/* What the WAL-backed storages of this process went through, for the
 * summary of a batch. */
struct storage_wal_stats
{
    uint64_t opens, crashes, repairs, torn_bytes, warnings;
    /* Repairs by kind, from the WAL's log messages. */
    uint64_t torn_tails, tmps_removed, snapshot_drops, commit_clamps;
    uint64_t probes; /* recoveries of a running node's durable image */
    /* Injected I/O faults (memfs.c) and what they led to (node.c). */
    uint64_t fault_write_eio, fault_write_enospc, fault_sync_eio;
    uint64_t fault_full;         /* ENOSPC because the disk was full */
    uint64_t sync_dropped;       /* failed syncs that dropped the rest */
    uint64_t fault_absorbed;     /* seam calls that succeeded despite one */
    uint64_t halts, halts_power; /* nodes halted by a fault; power lost */
    uint64_t restarts_failed;    /* wal_open failed on a fault: retried */
    uint64_t full_periods;
};
extern struct storage_wal_stats storage_wal_totals;

/* ---------------------------------------------------------------------- */
/* Messages and the network (net.c)                                        */

/* A message in flight, deep-copied: entries and bytes belong to it, since
 * the core's update is only valid until raft_advance(). */
struct sim_msg
{
    struct raft_message m;
    struct raft_entry *entries;
    uint8_t *data;
};

struct sim_net
{
    struct sim_rng rng;
    bool link_down[SIM_MAX_NODES][SIM_MAX_NODES]; /* [from][to] */
    /* Without the reorder fault links are FIFO, like a TCP connection. */
    sim_time last_at[SIM_MAX_NODES][SIM_MAX_NODES];
    uint64_t sent, lost, duplicated, delivered, cut;
};

struct sim;
/* Copies @m (and @snap_bytes for a snapshot chunk whose data the core left
 * NULL); returns NULL on allocation failure. */
struct sim_msg *net_msg_copy(const struct raft_message *m,
                             const uint8_t *snap_bytes);
void net_msg_free(struct sim_msg *msg);
/* Sends @m: decides loss, latency, duplication and schedules delivery. */
void net_send(struct sim *s,
              const struct raft_message *m,
              const uint8_t *snap_bytes);
/* Delivers @msg now unless its link is cut; takes ownership. */
void net_deliver(struct sim *s, struct sim_msg *msg);
/* Cuts every link between @group (bitmask of slots) and the rest. */
void net_partition(struct sim *s, uint32_t group);
/* Cuts the one-way link @from -> @to (slots). */
void net_cut_one_way(struct sim *s, unsigned from, unsigned to);
void net_heal(struct sim *s);

/* ---------------------------------------------------------------------- */
/* The node driver (node.c)                                                */

enum sim_input_kind {
    IN_MSG = 1,
    IN_TICK,
    IN_PROPOSE,
    IN_READ,
    IN_TRANSFER,
    IN_CONF,
    IN_SNAPSHOT,
    IN_UNREACHABLE,
};

/* Work for a node. Between raft_ready() and raft_advance() the core must
 * not be touched, so while a batch waits for its fsync everything queues. */
struct sim_input
{
    uint8_t kind;
    struct sim_msg *msg; /* IN_MSG, owned */
    uint64_t a, b;       /* pid; read ctx; target; change and id; peer */
};

struct sim_pending_read
{
    uint64_t ctx;
    raft_index index;
};

struct sim_node
{
    unsigned slot;
    raft_id id;
    bool up;
    uint64_t incarnation; /* bumps on crash: stale events are ignored */
    sim_time tick_period; /* this node's clock rate (clock skew) */
    struct raft_node *raft;
    struct sim_storage storage;
    struct sim_app app;

    /* A batch waiting for its fsync. */
    bool busy;
    struct raft_update update;

    struct sim_input *inbox;
    size_t inbox_head, inbox_n, inbox_cap;
    size_t inbox_proposals; /* IN_PROPOSE inputs waiting in the inbox */

    struct sim_pending_read *reads;
    size_t n_reads, cap_reads;

    /* When this node last had a message from a leader of its term
     * delivered (coverage.c: vote stickiness). */
    sim_time heard_leader_at;

    /* What the checkers saw of this incarnation (check.c). */
    raft_term seen_term;
    raft_id seen_vote;
    raft_index seen_commit;
    raft_index seen_observed; /* commit indexes recorded up to here */
    uint8_t seen_state;
    raft_term seen_leader_term;
    /* Leader Append-Only: the last index a leader handed out for
     * persistence in its term. */
    raft_term appended_term;
    raft_index appended_last;
    /* Hard state written last (synced or not) and made durable. */
    struct raft_hard_state written_hs;
    struct raft_hard_state durable_hs;

    /* I/O faults injected into this node's files (--storage wal). */
    struct sim_iofaults iof;
};

int node_start(struct sim *s, struct sim_node *n, bool bootstrap);
/* Queues @in for the node, or runs it now if the node is idle. Takes
 * ownership of in->msg. Inputs for a crashed node are dropped. */
void node_input(struct sim *s, struct sim_node *n, struct sim_input in);
/* The fsync of the node's batch completed. */
void node_fsync_done(struct sim *s, struct sim_node *n);
void node_crash(struct sim *s, struct sim_node *n);
int node_restart(struct sim *s, struct sim_node *n);
/* Starts or ends a full disk on the nodes in @mask (bitmask of slots). */
void node_disk_full(struct sim *s, uint32_t mask, bool full);
/* Stops every I/O fault (the heal). */
void node_faults_stop(struct sim *s);
void node_free(struct sim_node *n);

/* ---------------------------------------------------------------------- */
/* Workload (workload.c)                                                   */

enum sim_prop_status {
    PROP_QUEUED = 1, /* waiting in the node's inbox */
    PROP_REFUSED,    /* raft_propose failed (or the node crashed first) */
    PROP_PENDING,    /* accepted at (index, term), outcome unknown */
    PROP_COMMITTED,  /* applied at (index, term) */
    PROP_LOST,       /* a different entry was committed at index */
};

struct sim_proposal
{
    uint8_t status;
    raft_index index;
    raft_term term;
    uint64_t resubmitted_as; /* pid of the retry of a lost proposal */
    bool must_settle;        /* undecided at the heal: must end committed */
    raft_index applied_at;
};

struct sim_read
{
    raft_index committed_before; /* highest index applied anywhere at start */
    bool served;
};

void workload_start(struct sim *s);
/* One workload step; reschedules itself. */
void workload_step(struct sim *s);
/* Called by the driver when raft_propose returned for @pid. */
void workload_proposed(struct sim *s,
                       uint64_t pid,
                       int rc,
                       raft_index index,
                       raft_term term);
/* Entries a client of @n would see in flight: uncommitted plus queued. */
uint64_t workload_backlog(const struct sim_node *n);
/* True once the liveness goals hold; fills @why otherwise. */
bool workload_live(struct sim *s, char *why, size_t why_len);
void workload_heal(struct sim *s);
/* A full disk starts; space comes back on the slots of @mask. */
void workload_disk_full(struct sim *s);
void workload_disk_space(struct sim *s, uint32_t mask);
uint64_t workload_new_pid(struct sim *s);

/* ---------------------------------------------------------------------- */
/* Checkers (check.c)                                                      */

struct sim_committed
{
    raft_term term;
    uint64_t hash;
    uint64_t chain;        /* app chain after applying it (0: unknown) */
    raft_term commit_term; /* lowest term in which it was seen committed */
    bool known;
};

struct sim_logmap_slot
{
    raft_index index;
    raft_term term;
    uint64_t hash;
    raft_term prev_term; /* 0: unknown */
};

struct sim_check
{
    raft_id *leader_of_term;
    size_t n_terms;

    struct sim_committed *committed; /* by index */
    size_t n_committed;
    raft_index applied_max; /* highest index applied anywhere */

    struct sim_logmap_slot *logmap; /* open addressing by (index, term) */
    size_t logmap_cap, logmap_n;

    uint64_t events;
    uint64_t leaders_checked;
};

void check_init(struct sim *s);
void check_free(struct sim *s);
/* Entries a node is about to persist (they entered its log). */
void check_logged(struct sim *s,
                  struct sim_node *n,
                  const struct raft_entry *e,
                  size_t count);
void check_hard_state(struct sim *s,
                      struct sim_node *n,
                      const struct raft_hard_state *hs);
/* A node applied @e (after app_apply). */
void check_applied(struct sim *s,
                   struct sim_node *n,
                   const struct raft_entry *e);
void check_snapshot(struct sim *s,
                    struct sim_node *n,
                    raft_index index,
                    raft_term term,
                    uint64_t chain,
                    const char *what);
/* A message is leaving node @n: what it acknowledges must be durable. */
void check_sent(struct sim *s,
                struct sim_node *n,
                const struct raft_message *m);
void check_read_index(struct sim *s,
                      struct sim_node *n,
                      const struct raft_read_state *r);
void check_read_served(struct sim *s, struct sim_node *n, uint64_t ctx);
void check_restarted(struct sim *s,
                     struct sim_node *n,
                     const struct sim_durable *d);
/* After every event. */
void check_event(struct sim *s);
/* Compares every live log with everything known (also run periodically). */
void check_full(struct sim *s);

/* ---------------------------------------------------------------------- */
/* Trace (trace.c)                                                         */

enum sim_trace_kind {
    TR_DELIVER = 1,
    TR_DROP,
    TR_STATE,
    TR_PROPOSE,
    TR_READ,
    TR_READ_DONE,
    TR_SNAP_TAKEN,
    TR_SNAP_INSTALL,
    TR_CRASH,
    TR_RESTART,
    TR_PARTITION,
    TR_CUT,
    TR_HEAL,
    TR_CONF,
    TR_TRANSFER,
    TR_FSYNC,
    TR_APPLY,
    TR_PHASE,
    TR_UNREACHABLE,
    TR_WRITE,
    TR_IOFAULT,      /* memfs injected a fault */
    TR_HALT,         /* a storage call failed on it: the node halts */
    TR_RESTART_FAIL, /* wal_open failed on an injected fault */
    TR_DISK_FULL,    /* a full disk starts or ends */
};

struct sim_trace_rec
{
    sim_time at;
    uint8_t kind;
    uint8_t node;
    uint64_t a, b, c, d;
};

#define SIM_TRACE_RING 48

void sim_trace(struct sim *s,
               uint8_t kind,
               unsigned node,
               uint64_t a,
               uint64_t b,
               uint64_t c,
               uint64_t d);
void trace_print(const struct sim_trace_rec *r, void *out);
/* "pwrite", "fdatasync", ...: the name of an enum sim_iofault_call. */
const char *sim_iofault_call_name(uint64_t call);
void trace_dump_tail(struct sim *s, unsigned count);

/* ---------------------------------------------------------------------- */
/* The simulation (sim.c)                                                  */

enum sim_event_kind {
    EV_TICK = 1,
    EV_DELIVER,
    EV_FSYNC,
    EV_WORKLOAD,
    EV_RESTART,
    EV_HEAL_LINKS,
    EV_HEAL,       /* end of the fault phase */
    EV_END,        /* end of the liveness bound */
    EV_DISK_FULL,  /* disks fill up */
    EV_DISK_SPACE, /* space comes back (incarnation: the mask of slots) */
};

struct sim_event
{
    sim_time at;
    uint64_t seq; /* ties break by scheduling order, never by pointer */
    uint8_t kind;
    uint8_t slot;
    uint64_t incarnation;
    struct sim_msg *msg;
};

enum sim_phase {
    PHASE_FAULTS = 1,
    PHASE_LIVENESS,
    PHASE_DONE,
};

enum sim_storage_kind {
    SIM_STORAGE_MEM = 0, /* the simulated disk of disk.c */
    SIM_STORAGE_WAL,     /* the real WAL over a simulated file system */
};

/* How often a seed reached the core's rare situations (coverage.c); in
 * sim_coverage_totals, how many seeds reached each at least once. */
struct sim_coverage
{
    uint64_t seeds;
    uint64_t stale_suffix;
    uint64_t snapshot_overlap;
    uint64_t sticky_vote;
};

struct sim_options
{
    uint64_t seed;
    unsigned nodes;  /* 0: the seed chooses */
    uint8_t storage; /* enum sim_storage_kind */
    bool verbose;
    sim_time fault_ticks; /* 0: the seed chooses */
    /* Events a seed may take before it is failed as a livelock (events
     * that keep scheduling each other without simulated time reaching
     * the liveness bound); 0: SIM_EVENTS_MAX. */
    uint64_t max_events;
};

/* The default event budget of a seed: 60 times the most any of the first
 * 2,000 seeds took (166,225 events for the largest in 150 seeds; a few
 * hundred thousand at most), so that a seed that livelocks fails within
 * seconds, with its replay command, instead of running into ctest's
 * timeout. */
#define SIM_EVENTS_MAX 10000000ull

struct sim
{
    struct sim_options opt;
    struct sim_params p;
    sim_time now;
    uint8_t phase;

    struct sim_event *heap;
    size_t heap_n, heap_cap;
    uint64_t seq;

    struct sim_node nodes[SIM_MAX_NODES];
    struct sim_net net;
    struct sim_rng rng_work; /* workload and faults */
    struct sim_rng rng_disk; /* fsync latency and tearing */
    struct sim_rng rng_io;   /* injected I/O faults and what follows */
    uint64_t salt;           /* proposal payloads */

    struct sim_proposal *props; /* by pid; pid 0 unused */
    size_t n_props, cap_props;
    uint64_t heal_pid;      /* first pid of the liveness phase */
    struct sim_read *readv; /* by ctx; ctx 0 unused */
    size_t n_reads, cap_reads;
    bool links_cut;

    struct sim_check check;

    /* Trace: a hash of every event (determinism) and a ring for failures. */
    uint64_t trace_hash;
    struct sim_trace_rec ring[SIM_TRACE_RING];
    uint64_t ring_n;

    bool failed;
    char fail_invariant[64];
    char fail_detail[512];

    /* Counters for the summary. */
    uint64_t n_events, n_applied, n_reads_served, n_crashes, n_snapshots,
        n_installs, n_elections;
    uint64_t n_iofaults, n_halts, n_restarts_failed, n_full_periods;
    struct sim_coverage coverage;
};

extern struct sim_coverage sim_coverage_totals;
/* A rare situation met by a delivery, kept to check its rule once the
 * node has stepped the message. */
struct sim_probe
{
    uint8_t kind; /* 0: none; else which situation */
    raft_index end, commit, last;
    raft_term term;
    raft_id vote;
};
/* Before node @n steps message @m (from slot @from): counts the situation
 * it meets, if any, into @probe. */
void coverage_on_deliver(struct sim *s,
                         struct sim_node *n,
                         const struct raft_message *m,
                         int from,
                         struct sim_probe *probe);
/* After: fails the seed if the situation's rule did not hold. */
void coverage_after_deliver(struct sim *s,
                            const struct sim_node *n,
                            const struct sim_probe *probe);
/* Adds a finished seed to sim_coverage_totals. */
void coverage_seed_done(const struct sim *s);

/* Runs one seed. Returns 0 if every check held, 1 on a violation and -1 on
 * an environment error. Fills @trace_hash. */
int sim_run(const struct sim_options *opt,
            uint64_t *trace_hash,
            bool quiet,
            const char *prog);

void sim_schedule(struct sim *s,
                  sim_time at,
                  uint8_t kind,
                  unsigned slot,
                  uint64_t incarnation,
                  struct sim_msg *msg);
/* Records a violated invariant; the run stops after the current event. */
void sim_fail(struct sim *s, const char *invariant, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
struct sim_node *sim_node_by_id(struct sim *s, raft_id id);
/* The live leader with the highest term, or NULL. */
struct sim_node *sim_leader(struct sim *s);
/* Grows a dynamic array to hold @need elements of @size; 0 or -1. */
int sim_grow(void **ptr, size_t *cap, size_t need, size_t size);
/* malloc that aborts: the simulator is a test, out of memory is fatal. */
void *sim_xmalloc(size_t size);
void *sim_xcalloc(size_t n, size_t size);

#endif /* BALLOT_SIM_H */
