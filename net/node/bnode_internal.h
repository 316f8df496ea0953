/*
 * bnode_internal.h - the node driver's state, shared by bnode.c (the cycle),
 * bnode_snap.c (snapshots: taking them, sending them in chunks, installing
 * them), bnode_export.c (copies for clients), bnode_members.c (member
 * addresses recorded in the log), bnode_ckpt.c (LMDB checkpoints) and
 * bnode_open.c (opening the data directory). Nothing outside the bnode*.c
 * files includes it.
 */
#ifndef BALLOT_NET_BNODE_INTERNAL_H
#define BALLOT_NET_BNODE_INTERNAL_H

#include <stdatomic.h>

#include "bnode.h"
#include "persist.h"
#include "snowflake.h"
#include "transport.h"
#include "wal.h"

/* A tick this late (ms) counts as a loop stall (bnode_status): a third of
 * the default election timeout's 300 ms. */
#define LOOP_STALL_MS 100
/* Replication lag: the leader samples its last index at most every
 * LAG_SAMPLE_MS, keeping LAG_SAMPLES of them (12.8 s); a follower further
 * behind is reported that far behind at least. */
#define LAG_SAMPLES 128u
#define LAG_SAMPLE_MS 100u

/* A proposal waiting for its entry to be applied (or overwritten). */
struct pending_write
{
    raft_index index;
    raft_term term;
    uint64_t started_ms;
    uint64_t started_ns; /* uv_hrtime(), for the commit latency */
    bnode_write_cb cb;
    void *arg;
    struct pending_write *next;
};

/* A proposal made while the core was frozen. */
struct queued_proposal
{
    uint8_t *data;
    size_t len;
    int conf_change; /* 0: a command; else an enum raft_conf_change */
    raft_id conf_id;
    bnode_write_cb cb;
    void *arg;
    struct queued_proposal *next;
};

/* A read barrier. ctx 0: not yet asked of the core; index known once the
 * core answered. */
struct pending_read
{
    bool linearizable;
    uint64_t ctx;
    bool index_known;
    raft_index index;
    bnode_read_cb cb;
    void *arg;
    struct pending_read *next;
};

/* A message received while the core was frozen, deep-copied. */
struct queued_msg
{
    /* Ticks that were due before it arrived (pending_ticks then): fed
     * first, so that the core sees messages and ticks in the order they
     * happened. */
    unsigned ticks_before;
    struct raft_message m;
    struct raft_entry *entries;
    uint8_t *blob;
    struct queued_msg *next;
};

/* A snapshot file being written by a worker thread (kv_snapshot_create):
 * the node's own (snap_maybe_create) or a client's export
 * (bnode_export_start). */
struct snap_job
{
    uv_work_t work;
    struct bnode *node;
    char path[BNODE_PATH_MAX];
    struct kv_snapshot *snap; /* the file, open, if @status is 0 */
    int status;               /* kv_snapshot_create()'s */
    /* Runs on the loop once the worker is done; may free the job. */
    void (*done)(struct snap_job *job);
};

struct bnode
{
    uv_loop_t *loop;
    struct bnode_options opts;
    /* The WAL's file interface when a deliberate bug replaces part of it
     * (BNODE_BREAK_NO_FDATASYNC); unused otherwise. */
    struct storage_io broken_io;
    char data_dir[4096];
    char leader_addr[BNODE_HOST_MAX + 16];

    struct raft_node *raft;
    struct raft_config raft_cfg; /* to create the core again */
    struct wal *wal;
    struct kv_store *kv;
    struct transport *transport;

    uv_timer_t tick_timer;
    uv_idle_t idle;
    bool idle_active;
    unsigned pending_ticks;

    /* The update being executed, and the disk thread persisting it. */
    bool frozen;
    struct raft_update update;
    struct raft_hard_state disk_hs; /* the hard state last made durable */
    struct persist *persist;
    char work_err[256];
    /* Committed entries of the update applied while it was persisted. */
    size_t applied_early;

    struct pending_write *writes_head, *writes_tail;
    struct queued_proposal *props_head, *props_tail;
    struct pending_read *reads_head, *reads_tail;
    struct queued_msg *msgs_head, *msgs_tail;
    uint64_t next_read_ctx;
    uint64_t n_writes, n_reads;

    uint64_t batches_persisted;
    uint64_t entries_applied;

    /* Metrics (bnode_status, bnode_histos). The disk thread leaves its
     * fsync time in sync_ns; the loop adds it once the batch is back. */
    struct bnode_histos histos;
    uint64_t sync_ns;
    uint64_t snap_create_ns;   /* uv_hrtime() when our snapshot began */
    uint64_t snap_transfer_ns; /* ... when a received one's first chunk came */
    uint64_t refused_busy, refused_not_leader, refused_quota, refused_too_big;
    /* The leader's last index, sampled as it grows (bnode_lag.c), to tell
     * how long ago a follower's first missing entry was appended. */
    struct lag_sample
    {
        raft_index index;
        uint64_t ms;
    } lag_samples[LAG_SAMPLES];
    unsigned lag_next; /* ring position of the next sample */
    uint64_t lag_last_ms;
    raft_term lag_term; /* the term the samples were taken in */
    /* One heartbeat per follower timed at a time (bnode_lag.c). */
    struct rtt_probe
    {
        raft_id to;
        uint64_t sent_ns; /* 0: none outstanding */
    } rtt[RAFT_CONF_MAX];

    /* Loop stalls, measured by how late the tick timer fires. */
    uint64_t last_tick_ms;
    uint64_t loop_stall_max_ms;
    uint64_t loop_stalls; /* ticks at least LOOP_STALL_MS late */

    /* LMDB checkpoints (bnode_ckpt.c). */
    uint64_t applied_since_checkpoint; /* since the last one began */
    uint64_t ckpt_idle_ticks;          /* ticks since the last apply */
    struct kv_checkpoint ckpt;
    uv_work_t ckpt_work;
    bool ckpt_running;        /* ckpt_work queued, its callback not run */
    bool ckpt_begun;          /* kv_checkpoint_begin() without _end() */
    atomic_bool ckpt_syncing; /* the worker may still use the store */
    raft_index ckpt_durable;  /* applied index the last one made durable */

    /* Coordination-free IDs; unusable (snowflake_ok false) for member ids
     * above 1023. */
    struct snowflake snowflake;
    bool snowflake_ok;

    /* Leases (bnode_lease.c): whether this leader knows the lease clock
     * (it applied an entry of its term), the term it is known for, the
     * replicated clock it started from and when (uv_now), the keep-alives
     * waiting for the next batch, and the leader's entries in flight. */
    bool lease_ready;
    raft_term lease_term;
    uint64_t lease_base;
    uint64_t lease_ready_ms;
    uint64_t lease_clock_sent_ms; /* when the clock was last proposed */
    struct lease_ka *ka_head, *ka_tail;
    unsigned n_ka;
    bool lease_expire_proposed;
    bool lease_clock_proposed;
    bool keys_expire_proposed; /* a KV_CMD_EXPIRE_KEYS entry in flight */
    /* Watches (bnode_watch.c). */
    struct bnode_watch *watches;
    unsigned n_watches;
    struct kv_history_pos watch_synced; /* where the synced group reads */
    bool watch_busy;                    /* callbacks are running */

    /* Snapshots (bnode_snap.c). */
    char snap_dir[4200];
    struct kv_snapshot *send_snap; /* open for sending chunks */
    struct snap_job own_snap;
    bool snap_creating; /* own_snap is on a worker */
    /* Workers writing snapshot files, ours and exports: the node stops
     * (and closes the store) only once none is left. */
    unsigned snap_jobs;
    /* ... of which still read the store: an install waits for them. */
    atomic_uint snap_copies;
    struct kv_snapshot *created; /* written, not yet told to the core */
    raft_index last_snap_index;  /* newest snapshot of this node */
    bool snap_staging;           /* receiving a leader's snapshot */
    bool install_waiting;   /* the frozen update's install waits (SNAP_WAIT) */
    uint64_t snaps_refused; /* completed snapshots that did not verify */
    bool snap_soon;         /* take one at once (after an install) */
    /* Exports (bnode_export.c). */
    char export_dir[4200];
    uint64_t exports_made; /* numbers the export files */
    /* History compaction and the quota (bnode_space.c). */
    uint64_t space_ticks;      /* ticks seen, the clock of what follows */
    bool compact_pending;      /* history below the point awaits deletion */
    bool compact_proposed;     /* our retention entry is in flight */
    uint64_t compact_revision; /* the point, as last seen */
    uint64_t compactions;      /* KV_CMD_COMPACT entries applied here */
    struct rev_sample
    {
        uint64_t ms;
        uint64_t revision;
    } rev_samples[16]; /* for time retention: revision every keep_ms/10 */
    unsigned n_rev_samples;
    uint64_t last_sample_ms;
    struct kv_space space;  /* as last measured */
    uint64_t space_counted; /* space_ticks when free pages were counted */
    bool over_quota;
    uint64_t map_grows;
    /* Integrity (bnode_scrub.c). */
    struct kv_scrub *scrub;
    uint64_t scrub_credit; /* bytes the scrub may still read (its rate) */
    bool damaged;          /* the store was found damaged: halted */
    bool digest_proposed;  /* our digest entry is in flight */
    uint64_t digest_last_ms;
    struct digest_mark
    {
        uint64_t index;
        uint64_t digest;
    } digest_marks[8]; /* the last digest entries applied here */
    unsigned n_digest_marks;
    uint64_t digest_checks;
    uint64_t digest_mismatches;
    /* The primary-replica fallback (bnode_fallback.c): what `enter` saw
     * here, and when the primary was last heard from (uv_now). */
    raft_index entered_last_index;
    raft_index entered_commit;
    uint64_t primary_heard_ms;
    /* Entries cut when this node diverged from its primary, and the file
     * (in the data directory) that holds them; 0/"": none. */
    raft_index cut_first, cut_last;
    char cut_file[128];
    /* Semi-sync: the learners the core's commit rule waits for now, and
     * whether a timeout degraded the primary to async. WAIT's callers. */
    unsigned commit_learners;
    bool ack_degraded;
    struct fallback_waiter *waiters;
    bool halted;
    bool stopping;
    void (*stop_cb)(void *arg);
    void *stop_arg;
    int closing_handles;
};

/* bnode_snap.c */

/* Finishes an install a crash interrupted (see bnode_snap.c) before the
 * WAL is read; @kv_applied is the store's applied index. */
int snap_recover(struct bnode *node, char *err, size_t err_len);
/* Fills a RAFT_MSG_SNAPSHOT's bytes from our snapshot file and sends it. */
void snap_send(struct bnode *node, const struct raft_message *m);
/* snap_receive() and snap_install() results besides 0 and BNODE_E*. */
enum {
    SNAP_WAIT = 1,    /* a worker still uses the store: install later */
    SNAP_REFUSED = 2, /* the snapshot does not verify: restart the core */
};
/* Stages received chunks and installs a completed snapshot (loop thread,
 * before the batch's entries are persisted). Returns 0, SNAP_WAIT (the
 * install waits for workers: call snap_install() once
 * snap_install_ready()), SNAP_REFUSED, or BNODE_ESTORAGE (halted). */
int snap_receive(struct bnode *node, const struct raft_update *u);
/* Whether no worker uses the store any more (an install may run). */
bool snap_install_ready(const struct bnode *node);
/* Installs the completed snapshot of @u. Returns 0, SNAP_REFUSED or
 * BNODE_ESTORAGE (halted). */
int snap_install(struct bnode *node, const struct raft_update *u);
/* Starts writing a snapshot on a worker when the log has grown enough. */
void snap_maybe_create(struct bnode *node);
/* Tells the core about a snapshot the worker finished and compacts the
 * WAL (only while no batch is being persisted). */
void snap_maybe_taken(struct bnode *node);
/* At start: if the WAL's snapshot has no file here, take one soon. */
void snap_check_file(struct bnode *node);
void snap_close(struct bnode *node);
/* Hands @job (its node, path and done set) to a worker that writes a
 * snapshot of the store to job->path. Returns 0, or BNODE_ENOMEM if no
 * worker could be asked (then @done never runs). */
int snap_job_start(struct snap_job *job);

/* Watches (bnode_watch.c): deliver what an apply added, catch up the
 * watchers behind and notify idle ones (every tick), end them all (stop). */
void bnode_watch_deliver(struct bnode *node);
void bnode_watch_tick(struct bnode *node);
void bnode_watch_stop_all(struct bnode *node);

/* Leases (bnode_lease.c): the leader's per-tick work (keep-alive batches,
 * expiry, clock checkpoints) and failing waiting keep-alives at stop. */
void bnode_lease_tick(struct bnode *node);
void bnode_lease_stop(struct bnode *node);

/* bnode_export.c */

/* At start: creates DATA/export, or empties it of the exports a previous
 * run left. Returns 0 or BNODE_EINVAL with a message. */
int export_prepare(struct bnode *node, char *err, size_t err_len);

/* bnode_members.c */
/* Learns the member addresses recorded in the log (kv) and points the
 * transport at them. Returns 0 or BNODE_ESTORAGE. */
int bnode_members_sync(struct bnode *node);
/* Whether an applied batch recorded a member address. */
bool bnode_members_touched(const struct kv_apply_result *res);

/* bnode_lag.c */

/* Per tick: samples the leader's last index as it grows. */
void lag_on_tick(struct bnode *node);
/* On the leader: ms since the first entry above @match was appended
 * (0 if @match is the last index). */
uint64_t lag_ms(const struct bnode *node, raft_index match);
/* Times heartbeats: one sent (if none to that follower is outstanding)
 * and its answer received. */
void rtt_on_send(struct bnode *node, const struct raft_message *m);
void rtt_on_recv(struct bnode *node, const struct raft_message *m);

/* bnode_fallback.c */

/* A message arrived from @m->from: notes when the primary was heard. */
void fallback_on_recv(struct bnode *node, const struct raft_message *m);
/* Fills the fallback fields of @out. */
void fallback_status(struct bnode *node, struct bnode_status *out);
/* Per tick: a node whose committed entries conflict with its leader's log
 * saves them to a file and halts, to rejoin as an empty replica. */
void fallback_on_tick(struct bnode *node);
/* At stop: answers WAIT's callers with what they have. */
void fallback_stop(struct bnode *node);
/* Fails, as unknown, the writes waiting longer than @age_ms whose entries
 * are above @commit (bnode.c). */
void bnode_fail_old_writes(struct bnode *node,
                           uint64_t age_ms,
                           raft_index commit);
/* The age (ms) of the oldest write waiting for its entry, 0 if none. */
uint64_t bnode_oldest_write_ms(struct bnode *node, raft_index *index);
/* At start, before the log and store open: a node that diverged sets its
 * old log and store aside (and will not bootstrap); the record of the
 * last cut is read for status. Returns 0 or BNODE_ESTORAGE (@errmsg). */
int fallback_open(struct bnode *node, char *errmsg, size_t errmsg_len);

/* bnode_ckpt.c */

/* Counts @n applied entries; starts a checkpoint after checkpoint_every. */
void ckpt_after_apply(struct bnode *node, size_t n);
/* Starts a checkpoint once nothing was applied for checkpoint_idle_ms
 * after the last one began. */
void ckpt_on_tick(struct bnode *node);
/* Begins a checkpoint and queues its sync on a worker, unless one runs. */
void ckpt_start(struct bnode *node);
/* Ends the checkpoint whose sync has returned (none may still run);
 * before a snapshot install replaces the environment. */
void ckpt_wait(struct bnode *node);

/* bnode_space.c */

/* Sets the map and quota defaults in node->opts (before the store opens)
 * and reads the store's compaction state once it is open. */
void space_configure(struct bnode *node);
void space_open(struct bnode *node);
/* Per tick: time samples, the leader's retention decisions, a periodic
 * measure of the space. */
void space_on_tick(struct bnode *node);
/* After an applied batch: notes compaction entries and measures the
 * space cheaply. */
void space_after_apply(struct bnode *node, const struct kv_apply_result *res);
/* On the loop, between cycles: one bounded compaction step if some is
 * pending; true if more remains (the caller runs again soon). */
bool space_compact_step(struct bnode *node);
/* kv_apply() found the map full: waits until no worker uses the store
 * and maps twice as much. Returns 0 (retry the apply) or an error. */
int space_grow_map(struct bnode *node);
/* Whether a proposal of @cmd must be refused for the quota. */
bool space_refuses(struct bnode *node, const uint8_t *cmd, size_t len);

/* bnode_scrub.c */

/* With opts.verify_at_start: checks the whole store in @kv_dir in a child
 * process before this one opens it. Returns 0 (intact, or the store cannot
 * be opened, which kv_open() then reports) or BNODE_ESTORAGE with the
 * operator's message in @errmsg. */
int scrub_verify_at_start(struct bnode *node,
                          const char *kv_dir,
                          char *errmsg,
                          size_t errmsg_len);
/* Once the store is open / before it closes. */
int scrub_open(struct bnode *node);
void scrub_close(struct bnode *node);
/* Per tick: halts if the store was found damaged, runs the scrub within
 * its rate, and on the leader proposes the periodic digest entry. */
void scrub_on_tick(struct bnode *node);
/* If the store was found damaged, halts the node with the operator's
 * instructions and returns true. */
bool scrub_check_damage(struct bnode *node);
/* After an applied batch: records digest entries and checks the leader's
 * digests against this node's. */
void scrub_after_apply(struct bnode *node, const struct kv_apply_result *res);
/* Fills the integrity fields of @out. */
void scrub_status(struct bnode *node, struct bnode_status *out);

/* bnode_open.c */
/* Drops the core and creates it again from what the disk holds (the WAL,
 * and the store's applied index), as a restart would; the caller owns the
 * disk (no batch on the disk thread). Returns 0 or BNODE_ESTORAGE with a
 * message in @errmsg. */
int bnode_restart_core(struct bnode *node, char *errmsg, size_t errmsg_len);
/* Formats a start-up error into @errmsg (@len bytes; NULL: none). */
void bnode_errorf(char *errmsg, size_t len, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Opens the data directory: the store (rebuilt if torn), the WAL, an
 * interrupted install; restores or bootstraps the core. Returns 0 or a
 * BNODE_E* code with a message in @errmsg. */
int bnode_open_storage(struct bnode *node, char *errmsg, size_t errmsg_len);

/* bnode.c */
void bnode_halt(struct bnode *node, const char *what);
/* Runs the cycle (and a pending compaction step) at the next loop turn. */
void bnode_kick(struct bnode *node);
/* A worker let go of the store: an install that waited for it runs, and
 * the cycle it froze goes on. */
void bnode_install_resume(struct bnode *node);
/* Closes everything once nothing is in flight (bnode_stop()). */
void bnode_stop_now(struct bnode *node);

#endif
