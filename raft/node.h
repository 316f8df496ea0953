/*
 * node.h - the internals of struct raft_node, shared by the core's files.
 *
 * Each .c file owns one concern: log.c the in-memory log, conf.c
 * configurations, progress.c the leader's view of followers, election.c
 * timeouts and votes, replication.c AppendEntries and InstallSnapshot,
 * read.c ReadIndex, membership.c configuration changes and leadership
 * transfer, step.c the validation and dispatch of messages, ready.c the
 * update handed to the caller, node.c life cycle and accessors.
 */
#ifndef BALLOT_RAFT_NODE_H
#define BALLOT_RAFT_NODE_H

#include "raft.h"

/* Hard caps on what a message may claim, whatever the configuration says;
 * anything larger is treated as hostile. */
#define RAFT_MSG_ENTRIES_MAX 65536u
#define RAFT_CHUNK_BYTES_MAX (64u * 1024u * 1024u)
#define RAFT_PENDING_READS_MAX 65536u
/* Terms above this come only from a hostile peer; refusing them keeps term
 * arithmetic (term + 1 for a campaign) from ever wrapping. */
#define RAFT_TERM_MAX (UINT64_MAX / 2)
/* Indexes above this come only from a hostile peer: a node that accepted a
 * snapshot at 2^64 - 3 would wrap its log indexes once it led. Refusing
 * them keeps index arithmetic (index + entries, index + 1) from wrapping. */
#define RAFT_INDEX_MAX (UINT64_MAX / 2)
/* The most a vote request may raise our term by. With PreVote, a term
 * only grows when a majority believed an election could be won, so an
 * honest candidate is this far ahead only after that many elections held
 * without us; a node that far behind still learns the term from the
 * leader's messages and from answers to its own requests. A forged
 * request cannot push terms toward RAFT_TERM_MAX in one step. */
#define RAFT_TERM_JUMP_MAX 65536u
/* Election timeouts an only voter told a newer term by one of its learners
 * waits before it campaigns again (election.c, the fallback's fencing). */
#define RAFT_FENCE_HOLD_ELECTIONS 10u
/* Heartbeat rounds whose send tick is remembered for the read lease. */
#define RAFT_READ_ROUNDS 64u

/* ---- allocation -------------------------------------------------------- */

void *raft_malloc(struct raft_node *node, size_t size);
void *raft_realloc(struct raft_node *node, void *ptr, size_t size);
void raft_free(struct raft_node *node, void *ptr);

/* ---- the in-memory log (log.c) ---------------------------------------- */

/* Entries (offset, offset + n] live in entries[start .. start + n). Entries
 * at or below @offset were compacted into a snapshot; @offset_term is the
 * term of the entry at @offset. Each entry owns its data buffer. */
struct raft_log
{
    struct raft_entry *entries;
    size_t start;
    size_t n;
    size_t cap;
    raft_index offset;
    raft_term offset_term;
};

void log_init(struct raft_log *log);
void log_close(struct raft_node *node, struct raft_log *log);
raft_index log_last_index(const struct raft_log *log);
raft_term log_last_term(const struct raft_log *log);
/* Term at @index; 0 if compacted away (below offset) or beyond the end. */
raft_term log_term_at(const struct raft_log *log, raft_index index);
/* Entry at @index, or NULL. */
struct raft_entry *log_get(const struct raft_log *log, raft_index index);
/* Appends a copy of @data as the next entry. */
int log_append(struct raft_node *node,
               struct raft_log *log,
               raft_term term,
               uint8_t type,
               const uint8_t *data,
               uint32_t len);
/* Reserves room for @n more entries so that appending them cannot fail
 * half-way through a batch. */
int log_reserve(struct raft_node *node, struct raft_log *log, size_t n);
/* Drops every entry at or after @index. */
void log_truncate_from(struct raft_node *node,
                       struct raft_log *log,
                       raft_index index);
/* Drops every entry at or below @index (which must be in the log). */
void log_compact_to(struct raft_node *node,
                    struct raft_log *log,
                    raft_index index);
/* Drops everything; the log restarts after (@index, @term). */
void log_reset(struct raft_node *node,
               struct raft_log *log,
               raft_index index,
               raft_term term);

/* ---- configurations (conf.c) ------------------------------------------ */

/* A configuration and the log index that introduced it (0 for a snapshot's
 * or an empty one). */
struct raft_conf_record
{
    raft_index index;
    struct raft_conf conf;
};

bool conf_is_voter(const struct raft_conf *conf, raft_id id);
int conf_validate(const struct raft_conf *conf);
/* The configuration in force: the latest in the log (§4.1, a server uses
 * the latest configuration in its log, committed or not). */
const struct raft_conf *conf_current(const struct raft_node *node);
raft_index conf_current_index(const struct raft_node *node);
/* The configuration as of log index @index. */
const struct raft_conf *conf_at(const struct raft_node *node, raft_index index);
int conf_history_push(struct raft_node *node,
                      raft_index index,
                      const struct raft_conf *conf);
/* Forgets configurations introduced at or after @index (log truncation). */
void conf_history_truncate(struct raft_node *node, raft_index index);
/* Forgets configurations superseded at or before @index (compaction). */
void conf_history_compact(struct raft_node *node, raft_index index);
/* Replaces the history with @conf as of @index (snapshot install). */
void conf_history_reset(struct raft_node *node,
                        raft_index index,
                        const struct raft_conf *conf);

/* ---- progress of followers (progress.c) ------------------------------- */

enum progress_state {
    PROGRESS_PROBE = 1, /* one append at a time until we find the match */
    PROGRESS_REPLICATE, /* pipelined appends, up to max_inflight */
    PROGRESS_SNAPSHOT,  /* sending a snapshot, chunk by chunk */
};

struct raft_progress
{
    raft_id id;
    raft_index match;
    raft_index next;
    uint8_t state;
    bool probe_sent;    /* PROBE: an append is in flight */
    bool recent_active; /* heard from since the last quorum check */
    /* Send an append at the next raft_ready() even if it carries no
     * entries (to probe, or to spread a new commit index). */
    bool want_empty;
    uint64_t read_seq; /* highest read round the follower confirmed */
    /* Last index of each unacknowledged append, oldest first (REPLICATE). */
    raft_index *inflight;
    uint32_t inflight_start;
    uint32_t inflight_count;
    /* SNAPSHOT: which snapshot, the next byte to send, and ticks since the
     * last chunk was sent or acknowledged. */
    raft_index snap_index;
    uint64_t snap_offset;
    unsigned snap_idle_ticks;
};

struct raft_progress *progress_get(struct raft_node *node, raft_id id);
/* Rebuilds the progress table for the current configuration, keeping what
 * is known of members that stay. */
int progress_rebuild(struct raft_node *node);
void progress_reset_all(struct raft_node *node);
void progress_become_probe(struct raft_progress *pr);
void progress_become_replicate(struct raft_progress *pr);
void progress_become_snapshot(struct raft_progress *pr, raft_index index);
bool progress_paused(const struct raft_node *node,
                     const struct raft_progress *pr);
void progress_inflight_add(const struct raft_node *node,
                           struct raft_progress *pr,
                           raft_index last);
void progress_inflight_free_to(const struct raft_node *node,
                               struct raft_progress *pr,
                               raft_index index);
void progress_inflight_free_first(const struct raft_node *node,
                                  struct raft_progress *pr);

/* ---- pending reads (read.c) ------------------------------------------- */

struct raft_pending_read
{
    uint64_t ctx;
    raft_id from; /* 0: asked locally; else the follower to answer */
    raft_index index;
    uint64_t seq; /* heartbeat round that must be confirmed; 0: waiting for
                     the term's first commit */
    /* A read forwarded to the leader: the tick it was asked at, and the
     * tick its request was last sent at (read_tick() resends it). */
    uint64_t asked_tick;
    uint64_t sent_tick;
};

/* ---- the node ---------------------------------------------------------- */

struct raft_node
{
    struct raft_config cfg;
    raft_id id;

    /* Persistent state (Figure 2) and what the caller last persisted. */
    raft_term term;
    raft_id vote;
    raft_index commit;
    struct raft_hard_state persisted_hs;

    uint8_t state;
    raft_id leader;
    struct raft_soft_state reported_ss;

    struct raft_log log;
    raft_index stable;  /* last index known durable on this node */
    raft_index applied; /* last index handed out to apply */

    struct raft_conf_record *confs;
    size_t n_confs;
    size_t cap_confs;

    struct raft_snapshot_meta snap; /* latest local snapshot; index 0: none */

    /* Timers, in ticks. */
    unsigned election_elapsed;
    unsigned heartbeat_elapsed;
    unsigned randomized_timeout;
    uint64_t rng;

    /* Pre-votes this node granted: a vote request that raises our term is
     * honoured only if it follows one of these for the same candidate
     * and term (step.c). One slot per candidate, reused round robin. */
    struct
    {
        raft_id id;
        raft_term term;
    } prevotes[RAFT_CONF_MAX];
    unsigned prevote_next;

    /* Elections: votes received in this round, by voter. */
    raft_id votes_from[RAFT_CONF_MAX];
    bool votes_granted[RAFT_CONF_MAX];
    unsigned n_votes;

    /* Leader state. */
    struct raft_progress prs[RAFT_CONF_MAX];
    unsigned n_prs;
    raft_id transfer_target;
    unsigned transfer_elapsed;
    uint64_t uncommitted_bytes;
    uint64_t read_seq;                     /* last heartbeat round sent */
    uint64_t round_tick[RAFT_READ_ROUNDS]; /* tick each round was sent */
    uint64_t lease_until;                  /* lease reads valid before it */
    /* A TimeoutNow went out this term: it may arrive late, after the
     * transfer was abandoned, and let the target win an election that
     * followers' stickiness would have refused, so no more lease reads. */
    bool timeout_now_sent;
    uint64_t ticks; /* ticks since creation */

    /* Reads: on the leader, waiting for confirmation; on a follower, waiting
     * for the leader's answer. */
    struct raft_pending_read *reads;
    size_t n_reads;
    size_t cap_reads;

    /* Receiving a snapshot (follower). */
    struct raft_snapshot_meta recv_meta;
    uint64_t recv_offset; /* next byte expected; recv_meta.index 0: none */

    /* Output, collected until raft_ready()/raft_advance(). */
    struct raft_message *msgs;
    size_t n_msgs;
    size_t cap_msgs;
    struct raft_message *msgs_after;
    size_t n_msgs_after;
    size_t cap_msgs_after;
    struct raft_read_state *read_states;
    size_t n_read_states;
    size_t cap_read_states;
    struct raft_msg_snapshot *chunks; /* data owned by the node */
    size_t n_chunks;
    size_t cap_chunks;
    bool snap_install;
    bool snap_reset_log;
    struct raft_snapshot_meta install_meta;

    /* The lowest index at which a leader's entry conflicted with one this
     * node had committed (raft_force_conf(), replication.c); 0: none. */
    raft_index diverged_at;
    /* Learners that must also hold an entry before it commits
     * (raft_set_commit_learners()); 0: learners never count. */
    unsigned commit_learners;
    /* Ticks before this node may campaign again (election.c,
     * election_hold_if_fenced()); 0: free to. */
    unsigned campaign_hold;

    bool in_update; /* between raft_ready() and raft_advance() */
    struct raft_stats stats;
};

/* ---- shared helpers ---------------------------------------------------- */

/* Queues a message; fills from and term. Messages that acknowledge this
 * node's durable state go out after persisting. */
int node_send(struct raft_node *node, struct raft_message *msg);
void node_free_chunks(struct raft_node *node);
int node_add_read_state(struct raft_node *node,
                        uint64_t ctx,
                        raft_index index,
                        bool ok);
unsigned node_quorum(const struct raft_node *node);
bool node_is_promotable(const struct raft_node *node);

/* election.c */
void election_reset_timeout(struct raft_node *node);
void election_become_follower(struct raft_node *node,
                              raft_term term,
                              raft_id leader);
void election_become_leader(struct raft_node *node);
void election_campaign(struct raft_node *node, bool pre_vote, bool transfer);
void election_tick(struct raft_node *node);
/* The fallback's fencing: an only voter whose term a learner of its own
 * configuration raises, or that restarts without its own vote in its
 * term, holds off campaigning for a while. */
void election_hold_if_fenced(struct raft_node *node,
                             const struct raft_message *msg);
void election_hold_after_restore(struct raft_node *node);
int election_recv_vote(struct raft_node *node, const struct raft_message *m);
/* Remembers that we granted @from a pre-vote for @term. */
void election_note_prevote(struct raft_node *node,
                           raft_id from,
                           raft_term term);
/* True if we granted @from a pre-vote for @term (and it is remembered). */
bool election_prevote_granted(const struct raft_node *node,
                              raft_id from,
                              raft_term term);
void election_recv_vote_resp(struct raft_node *node,
                             const struct raft_message *m);

/* replication.c */
void replication_tick(struct raft_node *node);
void replication_send_heartbeats(struct raft_node *node);
int replication_flush(struct raft_node *node);
bool replication_maybe_commit(struct raft_node *node);
int replication_recv_append(struct raft_node *node,
                            const struct raft_message *m);
void replication_recv_append_resp(struct raft_node *node,
                                  const struct raft_message *m);
int replication_recv_heartbeat(struct raft_node *node,
                               const struct raft_message *m);
void replication_recv_heartbeat_resp(struct raft_node *node,
                                     const struct raft_message *m);
int replication_recv_snapshot(struct raft_node *node,
                              const struct raft_message *m);
void replication_recv_snapshot_resp(struct raft_node *node,
                                    const struct raft_message *m);
int replication_append_local(struct raft_node *node,
                             uint8_t type,
                             const uint8_t *data,
                             uint32_t len);

/* read.c */
int read_recv_request(struct raft_node *node, const struct raft_message *m);
void read_recv_response(struct raft_node *node, const struct raft_message *m);
void read_on_commit(struct raft_node *node);
void read_on_heartbeat_resp(struct raft_node *node);
void read_fail_all(struct raft_node *node);
void read_tick(struct raft_node *node);

/* membership.c */
void membership_on_conf_change(struct raft_node *node);
void membership_on_commit(struct raft_node *node);
void membership_on_match(struct raft_node *node, struct raft_progress *pr);
void membership_tick(struct raft_node *node);

#endif /* BALLOT_RAFT_NODE_H */
