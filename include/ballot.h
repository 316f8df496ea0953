/*
 * ballot.h - run a ballot node inside a C program.
 *
 * A node opened here is a full member of a ballot cluster: it replicates
 * the cluster's Raft log, applies it to its own LMDB store, talks to its
 * peers, and (unless told not to) serves Redis-protocol clients on its
 * client port, exactly as `ballotd` does: ballotd is a small main over this
 * same library. docs/embedding.md walks through a first program.
 *
 * Two ways to run a node:
 *   - ballot_open() starts the node on a thread of its own, for programs
 *     that have no event loop. Every function below may then be called from
 *     any thread; callbacks run on the node's thread.
 *   - ballot_start() (ballot/uv.h) runs it on a libuv loop the program
 *     already runs. Every function must then be called from that loop's
 *     thread, where the callbacks run too.
 *
 * Each request comes in two forms: an asynchronous one that takes a
 * callback (called exactly once, later, if the function returned 0; never
 * if it returned an error), and a blocking one (suffix _wait) that returns
 * the result. The blocking forms work only with ballot_open() and never
 * from the node's own thread (a callback): they return BALLOT_EWRONGTHREAD
 * there instead of deadlocking.
 *
 * Memory: every pointer argument is borrowed for the duration of the call
 * (keys, values and transactions are copied before the call returns); a
 * struct ballot_result handed to a callback lives only during the
 * callback; one returned by a _wait function belongs to the caller, who
 * releases it with ballot_result_free().
 *
 * Errors: functions return 0 or a negative BALLOT_E* code, and
 * ballot_strerror() names it. For writes, every code says whether the
 * write was definitely not applied or its outcome is unknown
 * (ballot_outcome_unknown()); a write that carries a request id
 * (struct ballot_reqid) can be retried after an unknown outcome and is
 * applied at most once.
 *
 * Only libc types appear here; the library exports only ballot_* symbols.
 */
#ifndef BALLOT_H
#define BALLOT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__)
#define BALLOT_API __attribute__((visibility("default")))
#else
#define BALLOT_API
#endif

/* The library's version, as a number (major * 10000 + minor * 100 +
 * patch) and a string. ballot_version() says what the loaded library is. */
#define BALLOT_VERSION_NUMBER 100
#define BALLOT_VERSION_STRING "0.1.0"
BALLOT_API const char *ballot_version(void);

/* ---------------------------------------------------------------------- */
/* Errors: the -9000 range, away from -errno.                             */

enum {
    BALLOT_OK = 0,
    /* An argument is invalid (NULL where a value is needed, a key or value
     * over its limit, an unknown setting or a bad value). Not applied. */
    BALLOT_EINVAL = -9001,
    BALLOT_ENOMEM = -9002, /* out of memory; not applied */
    /* This node is not the leader and the request needs one. Not applied:
     * retry on the leader (ballot_status() names it). */
    BALLOT_ENOTLEADER = -9003,
    /* Too much uncommitted work; not applied, retry later. */
    BALLOT_EBUSY = -9004,
    /* The write's fate is unknown: leadership was lost or the node stopped
     * before it was known whether the entry committed. A retry with the
     * same request id is applied at most once. */
    BALLOT_EUNKNOWN = -9005,
    /* A linearizable read could not be confirmed (no leader, or leadership
     * lost). Nothing was read; retry. */
    BALLOT_ENOREAD = -9006,
    /* The node is stopping or stopped (ballot_close()/ballot_stop() was
     * called). Not applied. */
    BALLOT_ECLOSED = -9007,
    /* The node's storage failed and the node halted (the program was told
     * through its halt callback). Not applied; close the node. */
    BALLOT_ESTORAGE = -9008,
    BALLOT_ETOOBIG = -9009, /* a request over a size limit; not applied */
    /* Another membership change is not committed yet. Not applied. */
    BALLOT_ECONFPENDING = -9010,
    /* Called from a thread where this call is not allowed: a _wait function
     * on the node's own thread, or any function off the loop thread of a
     * node started with ballot_start(). Nothing was done. */
    BALLOT_EWRONGTHREAD = -9011,
    /* The node could not be opened: its data directory, storage or
     * addresses (the message given to ballot_open() says which). */
    BALLOT_EOPEN = -9012,
    /* A request id whose seq is below the last one applied for its client:
     * a stale retry, not applied again. */
    BALLOT_ESTALE = -9013,
    /* The command was refused by the state machine (malformed or over a
     * limit); it took its place in the log but changed nothing. */
    BALLOT_EREFUSED = -9014,
    /* The revision asked for was compacted away: its history is gone. */
    BALLOT_ECOMPACTED = -9015,
    /* Too many of something open at once (watches). Nothing was done. */
    BALLOT_ELIMIT = -9016,
    /* This node's clock is too far behind the last ID it minted. */
    BALLOT_ECLOCK = -9017,
    /* Leases, from the end of their block. No such lease (it ended, was
     * revoked, or never existed). Not applied. */
    BALLOT_ENOLEASE = -9029,
    /* The leader was elected a moment ago and does not know the lease
     * clock yet (it has not applied an entry of its term). Not applied:
     * retry shortly. */
    BALLOT_ETRYAGAIN = -9028,
    /* A lease with that id already exists. Not applied. */
    BALLOT_ELEASEEXISTS = -9027,
    /* Locks, from the end of their block. The claim on the lock ended
     * while it waited (its lease ended, or its token was released). */
    BALLOT_ELOCKLOST = -9069,
    /* The wait for a lock ran out of time; the claim was withdrawn. */
    BALLOT_ETIMEDOUT = -9068,
    /* A fenced write's token no longer holds its lock. Not applied. */
    BALLOT_EFENCED = -9067,
    /* No holder or waiter of the lock has that token. Not applied. */
    BALLOT_ENOTHELD = -9066,
    /* BALLOT_LOCK_TRY found the lock held by another. Not applied. */
    BALLOT_ELOCKED = -9065,
};

/* A static, human-readable description of @code (any int). */
BALLOT_API const char *ballot_strerror(int code);

/* True if a write that failed with @code may have been applied (only
 * BALLOT_EUNKNOWN); every other code means "definitely not applied". */
BALLOT_API bool ballot_outcome_unknown(int code);

/* ---------------------------------------------------------------------- */
/* Configuration                                                          */

/* Limits shared with the server (docs/kv.md). */
#define BALLOT_KEY_MAX 511u
#define BALLOT_VALUE_MAX (1024u * 1024u)
#define BALLOT_MEMBERS_MAX 16u

/* Levels of log lines. */
enum ballot_log_level {
    BALLOT_LOG_DEBUG = 0,
    BALLOT_LOG_INFO = 1,
    BALLOT_LOG_WARN = 2,
    BALLOT_LOG_ERROR = 3,
};

/* Receives one log line of the node (@msg without a newline, valid during
 * the call), on the node's thread. */
typedef void (*ballot_log_cb)(void *arg, int level, const char *msg);

/* Called once, on the node's thread, when the node's storage fails (an
 * fsync or write error, a full disk): the node has stopped taking part in
 * the cluster and refuses every request with BALLOT_ESTORAGE. @why says
 * what failed (valid during the call). Close the node; reopening it from
 * its data directory recovers everything it acknowledged. */
typedef void (*ballot_halt_cb)(void *arg, const char *why);

struct ballot_config;

/* Creates a configuration with ballotd's defaults (docs/operations.md).
 * Returns 0 or BALLOT_ENOMEM. Release it with ballot_config_destroy(); a
 * node copies what it needs, so the configuration may be destroyed once
 * the node is open. */
BALLOT_API int ballot_config_create(struct ballot_config **out);

/* Releases @cfg (NULL is allowed). */
BALLOT_API void ballot_config_destroy(struct ballot_config *cfg);

/* Sets one setting by its ballotd name (the flag without "--", or the
 * config file's key), e.g. ("id", "1"), ("data", "/var/lib/ballot"),
 * ("member", "2=127.0.0.2:7379:7380") (once per member), ("bootstrap",
 * "true"), ("tick_ms", "10"). The embedding-only setting ("serve_clients",
 * "false") keeps the node off its client port. Both strings are borrowed.
 * Returns 0 or BALLOT_EINVAL (unknown setting, or a value out of range:
 * ballot_config_errmsg() says which). */
BALLOT_API int ballot_config_set(struct ballot_config *cfg,
                                 const char *name,
                                 const char *value);

/* Reads an INI config file (ballotd's format) into @cfg. Returns 0 or
 * BALLOT_EINVAL (unreadable, or a bad line: see ballot_config_errmsg()). */
BALLOT_API int ballot_config_load(struct ballot_config *cfg, const char *path);

/* Applies command-line flags (ballotd's: argv[1..]; --config FILE first).
 * Returns 0, 1 if --help was asked for (the usage was printed), or
 * BALLOT_EINVAL. */
BALLOT_API int ballot_config_args(struct ballot_config *cfg,
                                  int argc,
                                  char **argv);

/* Checks @cfg as ballot_open() would before opening anything (an id, the
 * members, this node among them, consistent timeouts). Returns 0 or
 * BALLOT_EINVAL with the reason in ballot_config_errmsg(). */
BALLOT_API int ballot_config_check(struct ballot_config *cfg);

/* The message of the last failed call on @cfg (never NULL). */
BALLOT_API const char *ballot_config_errmsg(const struct ballot_config *cfg);

/* Reads back a setting a program needs to write its own log lines: "id",
 * "log_level" (debug, info, warn or error) or "log_format" (text or
 * json), as text into @buf (@len bytes). Returns 0, or BALLOT_EINVAL for
 * another name or a @buf too small. */
BALLOT_API int ballot_config_get(const struct ballot_config *cfg,
                                 const char *name,
                                 char *buf,
                                 size_t len);

/* Where the node's log lines go (NULL: nowhere, the default) and the lowest
 * level sent; the log_level setting may raise it. */
BALLOT_API void ballot_config_set_log(struct ballot_config *cfg,
                                      ballot_log_cb cb,
                                      void *arg,
                                      int min_level);

/* Who is told when storage fails (NULL: nobody; the node still halts). */
BALLOT_API void ballot_config_set_halt(struct ballot_config *cfg,
                                       ballot_halt_cb cb,
                                       void *arg);

/* ---------------------------------------------------------------------- */
/* Lifecycle                                                              */

struct ballot;

/* Opens the node described by @cfg on a thread of its own: restarts it
 * from its data directory, or (empty directory) bootstraps a new cluster
 * ("bootstrap") or waits to be added to a running one. Returns once the
 * node runs (it may not know a leader yet): 0 with the node in @out, or
 * BALLOT_EINVAL (the configuration is incomplete: no id, no members, this
 * node not among them), BALLOT_EOPEN (the data directory, the storage or
 * a listening address failed) or BALLOT_ENOMEM, with a message in @errmsg
 * (@errmsg_len bytes, may be NULL). @cfg is borrowed. */
BALLOT_API int ballot_open(const struct ballot_config *cfg,
                           struct ballot **out,
                           char *errmsg,
                           size_t errmsg_len);

/* Stops a node opened with ballot_open() and releases everything: pending
 * requests complete first (reads fail with BALLOT_ECLOSED, writes whose
 * fate is unknown with BALLOT_EUNKNOWN), the store is synced, the thread
 * is joined. Blocks until then. Must not be called from a callback (it
 * returns BALLOT_EWRONGTHREAD without doing anything) or twice. */
BALLOT_API int ballot_close(struct ballot *b);

/* ---------------------------------------------------------------------- */
/* Data                                                                   */

/* A request id for at-most-once writes (the Raft dissertation, §6.3): a
 * client picks a unique @client_id (1..2^63) and numbers its writes with
 * increasing @seq (from 1). A retry with the same pair is applied at most
 * once and answered with the first application's result. */
struct ballot_reqid
{
    uint64_t client_id;
    uint64_t seq;
};

/* How a read is served. */
enum ballot_consistency {
    /* Linearizable (the default): confirmed with the leader (ReadIndex),
     * it sees every write acknowledged before it began. */
    BALLOT_LINEARIZABLE = 0,
    /* This node's applied state as it is: no round trip, may be stale. */
    BALLOT_LOCAL = 1,
};

/* Flags of ballot_range(). */
enum {
    BALLOT_RANGE_PREFIX = 1 << 0,    /* every key starting with @start */
    BALLOT_RANGE_REVERSE = 1 << 1,   /* descending key order */
    BALLOT_RANGE_KEYS_ONLY = 1 << 2, /* no values */
    BALLOT_RANGE_COUNT_ONLY = 1 << 3 /* count the keys, return none */
};

/* A key, its value and its metadata (revisions as etcd's). */
struct ballot_kv
{
    const void *key;
    size_t key_len;
    const void *value; /* NULL with BALLOT_RANGE_KEYS_ONLY */
    size_t value_len;
    uint64_t create_revision; /* revision of the write that created it */
    uint64_t mod_revision;    /* revision of its last write */
    uint64_t version;         /* writes since it was created (1 = new) */
};

/* What one operation did. */
enum ballot_op_type {
    BALLOT_OP_PUT = 1,
    BALLOT_OP_DELETE = 2,
    BALLOT_OP_GET = 3,      /* a point read or a range */
    BALLOT_OP_SEQUENCE = 4, /* IDs of a sequence (ballot_sequence()) */
};

struct ballot_op_result
{
    int type; /* enum ballot_op_type */
    /* GET: keys in the range (or the pairs returned, past a limit); DELETE:
     * keys deleted; PUT: 1. */
    uint64_t count;
    bool more; /* GET: keys beyond those returned */
    const struct ballot_kv *kvs;
    size_t n_kvs;
};

struct ballot_result
{
    int status;        /* 0 or a BALLOT_E* code (then nothing else is set) */
    uint64_t revision; /* store revision after a write / seen by a read */
    /* Transactions: whether the comparisons held (the "then" branch ran).
     * Other requests: true. */
    bool succeeded;
    /* A retry of a request id already applied: the result is the first
     * application's. */
    bool duplicate;
    /* One per operation: a put, delete or get has one; a transaction one
     * per operation of the branch that ran. */
    const struct ballot_op_result *ops;
    size_t n_ops;
};

/* Completion of a request; @res lives only during the call. */
typedef void (*ballot_cb)(void *arg, const struct ballot_result *res);

/* Releases a result returned by a _wait function (NULL is allowed). */
BALLOT_API void ballot_result_free(struct ballot_result *res);

/* Writes @value under @key (@rid may be NULL). Result: the revision of the
 * write. Returns 0 (then @cb is called), BALLOT_EINVAL, BALLOT_ETOOBIG,
 * BALLOT_ENOTLEADER, BALLOT_EBUSY, BALLOT_ECLOSED, BALLOT_ESTORAGE,
 * BALLOT_ENOMEM or BALLOT_EWRONGTHREAD; @cb may report any of these or
 * BALLOT_EUNKNOWN. */
BALLOT_API int ballot_put(struct ballot *b,
                          const void *key,
                          size_t key_len,
                          const void *value,
                          size_t value_len,
                          const struct ballot_reqid *rid,
                          ballot_cb cb,
                          void *arg);

/* Deletes @key. Result: ops[0].count is 1 if it existed, else 0. Returns
 * like ballot_put(). */
BALLOT_API int ballot_delete(struct ballot *b,
                             const void *key,
                             size_t key_len,
                             const struct ballot_reqid *rid,
                             ballot_cb cb,
                             void *arg);

/* Reads @key. Result: ops[0] holds the pair (n_kvs 1) or nothing (n_kvs 0:
 * no such key). Returns 0, BALLOT_EINVAL, BALLOT_ECLOSED, BALLOT_ESTORAGE,
 * BALLOT_ENOMEM or BALLOT_EWRONGTHREAD; @cb may report BALLOT_ENOREAD. */
BALLOT_API int ballot_get(struct ballot *b,
                          const void *key,
                          size_t key_len,
                          int consistency,
                          ballot_cb cb,
                          void *arg);

/* Reads the keys in [@start, @end) in key order (an empty @end: every key
 * >= @start; BALLOT_RANGE_PREFIX: every key starting with @start), at most
 * @limit pairs (0: no limit, but at most 4 MiB of keys and values).
 * Result: ops[0]. Returns like ballot_get(). */
BALLOT_API int ballot_range(struct ballot *b,
                            const void *start,
                            size_t start_len,
                            const void *end,
                            size_t end_len,
                            uint64_t limit,
                            int flags,
                            int consistency,
                            ballot_cb cb,
                            void *arg);

/* What a transaction's comparison looks at, and how. */
enum ballot_cmp_target {
    BALLOT_CMP_VALUE = 1,           /* bytes, compared like memcmp */
    BALLOT_CMP_VERSION = 2,         /* 0 if the key is missing */
    BALLOT_CMP_CREATE_REVISION = 3, /* 0 if the key is missing */
    BALLOT_CMP_MOD_REVISION = 4,    /* 0 if the key is missing */
    BALLOT_CMP_EXISTS = 5           /* number 1 (exists) or 0; EQ/NE only */
};
enum ballot_cmp_op {
    BALLOT_CMP_EQ = 1,
    BALLOT_CMP_NE = 2,
    BALLOT_CMP_LT = 3,
    BALLOT_CMP_GT = 4
};

struct ballot_cmp
{
    int target; /* enum ballot_cmp_target */
    int op;     /* enum ballot_cmp_op */
    const void *key;
    size_t key_len;
    const void *value; /* BALLOT_CMP_VALUE */
    size_t value_len;
    uint64_t number; /* every other target */
};

/* One operation of a transaction branch: a put (@value), a delete, or a
 * get of one key. */
struct ballot_op
{
    int type; /* enum ballot_op_type */
    const void *key;
    size_t key_len;
    const void *value;
    size_t value_len;
};

/* An etcd-style transaction: if every comparison holds, the "then"
 * operations run, else the "else" ones, atomically, in one log entry. At
 * most 64 comparisons and 128 operations per branch. */
struct ballot_txn
{
    const struct ballot_cmp *cmps;
    size_t n_cmps;
    const struct ballot_op *then_ops;
    size_t n_then;
    const struct ballot_op *else_ops;
    size_t n_else;
};

/* Runs @txn (borrowed for the call). Result: succeeded says which branch
 * ran; ops[i] is the result of that branch's operation i (a get's pair in
 * kvs). Returns like ballot_put(). */
BALLOT_API int ballot_txn(struct ballot *b,
                          const struct ballot_txn *txn,
                          const struct ballot_reqid *rid,
                          ballot_cb cb,
                          void *arg);

/* The blocking forms: the same arguments without the callback; 0 with the
 * result in @out (NULL: not wanted), or an error code, which is also what
 * the callback would have reported (res->status). Only for nodes opened
 * with ballot_open(), and not from the node's own thread. */
BALLOT_API int ballot_put_wait(struct ballot *b,
                               const void *key,
                               size_t key_len,
                               const void *value,
                               size_t value_len,
                               const struct ballot_reqid *rid,
                               struct ballot_result **out);
BALLOT_API int ballot_delete_wait(struct ballot *b,
                                  const void *key,
                                  size_t key_len,
                                  const struct ballot_reqid *rid,
                                  struct ballot_result **out);
BALLOT_API int ballot_get_wait(struct ballot *b,
                               const void *key,
                               size_t key_len,
                               int consistency,
                               struct ballot_result **out);
BALLOT_API int ballot_range_wait(struct ballot *b,
                                 const void *start,
                                 size_t start_len,
                                 const void *end,
                                 size_t end_len,
                                 uint64_t limit,
                                 int flags,
                                 int consistency,
                                 struct ballot_result **out);
BALLOT_API int ballot_txn_wait(struct ballot *b,
                               const struct ballot_txn *txn,
                               const struct ballot_reqid *rid,
                               struct ballot_result **out);

/* ---------------------------------------------------------------------- */
/* Leases (docs/coordination.md, "Leases")                                 */

/* The longest TTL a lease may be granted: ten years. */
#define BALLOT_LEASE_TTL_MAX_MS (10ull * 365 * 24 * 3600 * 1000)

/* Grants a lease of @ttl_ms (1..BALLOT_LEASE_TTL_MAX_MS) with id @id, or a
 * new coordination-free id if @id is 0. Keys attached to it (with
 * ballot_put_lease()) are deleted, in one log entry, when it is revoked or
 * its TTL runs out without a keep-alive. Result: ops[0].count is the
 * lease's id (with @rid, a retry gets the first grant's id and grants
 * nothing). Leader only. Returns like ballot_put(), and BALLOT_ETRYAGAIN;
 * @cb may also report BALLOT_ELEASEEXISTS or BALLOT_EREFUSED (too many
 * leases). */
BALLOT_API int ballot_lease_grant(struct ballot *b,
                                  uint64_t ttl_ms,
                                  uint64_t id,
                                  const struct ballot_reqid *rid,
                                  ballot_cb cb,
                                  void *arg);

/* Keeps lease @id alive: it will not end before ops[0].count ms from when
 * the result is delivered (the new deadline is committed first, so a
 * leader change does not shorten it). Leader only. Returns like
 * ballot_put(), and BALLOT_ETRYAGAIN; @cb may report BALLOT_ENOLEASE. */
BALLOT_API int ballot_lease_keepalive(struct ballot *b,
                                      uint64_t id,
                                      ballot_cb cb,
                                      void *arg);

/* Revokes lease @id now, deleting every key attached to it in the same
 * log entry. Result: ops[0].count is the number of keys deleted. Returns
 * like ballot_put(); @cb may report BALLOT_ENOLEASE. */
BALLOT_API int ballot_lease_revoke(struct ballot *b,
                                   uint64_t id,
                                   const struct ballot_reqid *rid,
                                   ballot_cb cb,
                                   void *arg);

/* Reads lease @id (leader only: it runs the lease clock). Result:
 * ops[0].count is the remaining TTL in ms and ops[0].kvs the attached keys
 * (keys only); ops[1].count is the TTL it was granted. Returns like
 * ballot_get(), and BALLOT_ENOTLEADER; @cb may report BALLOT_ENOLEASE or
 * BALLOT_ETRYAGAIN. */
BALLOT_API int ballot_lease_ttl(struct ballot *b,
                                uint64_t id,
                                ballot_cb cb,
                                void *arg);

/* ballot_put() that attaches @key to lease @lease (which must exist: @cb
 * reports BALLOT_ENOLEASE otherwise, and nothing is written). A later
 * ballot_put() of the key detaches it. */
BALLOT_API int ballot_put_lease(struct ballot *b,
                                const void *key,
                                size_t key_len,
                                const void *value,
                                size_t value_len,
                                uint64_t lease,
                                const struct ballot_reqid *rid,
                                ballot_cb cb,
                                void *arg);

/* The blocking forms, like ballot_put_wait(). */
BALLOT_API int ballot_lease_grant_wait(struct ballot *b,
                                       uint64_t ttl_ms,
                                       uint64_t id,
                                       const struct ballot_reqid *rid,
                                       struct ballot_result **out);
BALLOT_API int ballot_lease_keepalive_wait(struct ballot *b,
                                           uint64_t id,
                                           struct ballot_result **out);
BALLOT_API int ballot_lease_revoke_wait(struct ballot *b,
                                        uint64_t id,
                                        const struct ballot_reqid *rid,
                                        struct ballot_result **out);
BALLOT_API int ballot_lease_ttl_wait(struct ballot *b,
                                     uint64_t id,
                                     struct ballot_result **out);
BALLOT_API int ballot_put_lease_wait(struct ballot *b,
                                     const void *key,
                                     size_t key_len,
                                     const void *value,
                                     size_t value_len,
                                     uint64_t lease,
                                     const struct ballot_reqid *rid,
                                     struct ballot_result **out);

/* Lists the ids of leases above @after, in order, at most @count
 * (1..BALLOT_LEASE_LIST_MAX). Result: one op per id, whose count is the
 * id; the last op's @more says whether more leases follow (list again
 * from its id). Returns like ballot_get(). */
#define BALLOT_LEASE_LIST_MAX 10000u
BALLOT_API int ballot_lease_list(struct ballot *b,
                                 uint64_t after,
                                 size_t count,
                                 int consistency,
                                 ballot_cb cb,
                                 void *arg);
BALLOT_API int ballot_lease_list_wait(struct ballot *b,
                                      uint64_t after,
                                      size_t count,
                                      int consistency,
                                      struct ballot_result **out);

/* ---------------------------------------------------------------------- */
/* Locks with fencing (docs/coordination.md, "Locks")                      */

/* A lock is a name (1..BALLOT_LOCK_NAME_MAX bytes); its holders and
 * waiters are keys under "_lock/NAME/", one per lease, ordered by the
 * revision that created them. The holder's creation revision is its
 * fencing token: it strictly increases from one holder to the next, and a
 * write fenced with a token that no longer holds the lock is refused by
 * every replica (ballot_put_fenced()). A lock is freed by its release or
 * by the end of its lease (a crashed holder stops renewing it). */
#define BALLOT_LOCK_NAME_MAX 488u
/* Flags of ballot_lock_acquire(). */
enum {
    BALLOT_LOCK_TRY = 1 << 0 /* do not wait: BALLOT_ELOCKED if held */
};

/* Claims lock @name for lease @lease (which must exist) and waits, in
 * turn, until the claim holds it or @timeout_ms (0: no limit) passes, when
 * the claim is withdrawn. A lease that already claims the lock gets that
 * claim back (so a retry is harmless). The wait runs on this node, which
 * need not lead. Result: ops[0].count is the fencing token. Returns like
 * ballot_put(); @cb may also report BALLOT_ENOLEASE, BALLOT_ELOCKED (TRY),
 * BALLOT_ETIMEDOUT, BALLOT_ELOCKLOST or BALLOT_ELIMIT (too many claims). */
BALLOT_API int ballot_lock_acquire(struct ballot *b,
                                   const void *name,
                                   size_t name_len,
                                   uint64_t lease,
                                   uint64_t timeout_ms,
                                   int flags,
                                   const struct ballot_reqid *rid,
                                   ballot_cb cb,
                                   void *arg);

/* Releases the claim with fencing token @token (the holder's, or a
 * waiter's, which then stops waiting). Result: ops[0].count is 1 if it
 * held the lock, 0 if it only waited. Returns like ballot_put(); @cb may
 * report BALLOT_ENOTHELD. */
BALLOT_API int ballot_lock_release(struct ballot *b,
                                   const void *name,
                                   size_t name_len,
                                   uint64_t token,
                                   const struct ballot_reqid *rid,
                                   ballot_cb cb,
                                   void *arg);

/* Reads who holds lock @name. Result: ops[0].n_kvs is 0 if nobody does,
 * else ops[0].kvs[0] is the holder's key (create_revision: its token) and
 * ops[0].count the claims (holder and waiters). Returns like
 * ballot_get(). */
BALLOT_API int ballot_lock_owner(struct ballot *b,
                                 const void *name,
                                 size_t name_len,
                                 int consistency,
                                 ballot_cb cb,
                                 void *arg);

/* ballot_put() applied only if @token holds lock @name when the write
 * reaches the log; otherwise @cb reports BALLOT_EFENCED and nothing is
 * written, on any replica. */
BALLOT_API int ballot_put_fenced(struct ballot *b,
                                 const void *key,
                                 size_t key_len,
                                 const void *value,
                                 size_t value_len,
                                 const void *name,
                                 size_t name_len,
                                 uint64_t token,
                                 const struct ballot_reqid *rid,
                                 ballot_cb cb,
                                 void *arg);

/* Elections (docs/coordination.md, "Elections"): an election named N is
 * a lock on "_lead/N/" whose claims carry the candidates' values; the
 * leader is the holder. Watch the prefix "_lead/N/" (ballot_watch() with
 * BALLOT_RANGE_PREFIX) to observe leaders change. */

/* Campaigns in election @name with lease @lease and @value: waits, like
 * ballot_lock_acquire(), until elected. Result: ops[0].count is the
 * leader's token. Returns and reports like ballot_lock_acquire(). */
BALLOT_API int ballot_campaign(struct ballot *b,
                               const void *name,
                               size_t name_len,
                               uint64_t lease,
                               const void *value,
                               size_t value_len,
                               uint64_t timeout_ms,
                               const struct ballot_reqid *rid,
                               ballot_cb cb,
                               void *arg);

/* Publishes @value as the leader's (the leader elected with @lease and
 * @token): applied only while that claim leads, else BALLOT_EFENCED. */
BALLOT_API int ballot_proclaim(struct ballot *b,
                               const void *name,
                               size_t name_len,
                               uint64_t lease,
                               uint64_t token,
                               const void *value,
                               size_t value_len,
                               const struct ballot_reqid *rid,
                               ballot_cb cb,
                               void *arg);

/* Resigns (or stops campaigning): ballot_lock_release() of the election.
 * ops[0].count is 1 if it led. */
BALLOT_API int ballot_resign(struct ballot *b,
                             const void *name,
                             size_t name_len,
                             uint64_t token,
                             const struct ballot_reqid *rid,
                             ballot_cb cb,
                             void *arg);

/* Reads the leader: ops[0].n_kvs 0 if there is none, else ops[0].kvs[0]
 * holds its value (create_revision: its token). Returns like
 * ballot_get(). */
BALLOT_API int ballot_leader(struct ballot *b,
                             const void *name,
                             size_t name_len,
                             int consistency,
                             ballot_cb cb,
                             void *arg);

/* The blocking forms, like ballot_put_wait(). */
BALLOT_API int ballot_campaign_wait(struct ballot *b,
                                    const void *name,
                                    size_t name_len,
                                    uint64_t lease,
                                    const void *value,
                                    size_t value_len,
                                    uint64_t timeout_ms,
                                    const struct ballot_reqid *rid,
                                    struct ballot_result **out);
BALLOT_API int ballot_proclaim_wait(struct ballot *b,
                                    const void *name,
                                    size_t name_len,
                                    uint64_t lease,
                                    uint64_t token,
                                    const void *value,
                                    size_t value_len,
                                    const struct ballot_reqid *rid,
                                    struct ballot_result **out);
BALLOT_API int ballot_resign_wait(struct ballot *b,
                                  const void *name,
                                  size_t name_len,
                                  uint64_t token,
                                  const struct ballot_reqid *rid,
                                  struct ballot_result **out);
BALLOT_API int ballot_leader_wait(struct ballot *b,
                                  const void *name,
                                  size_t name_len,
                                  int consistency,
                                  struct ballot_result **out);

/* The blocking forms, like ballot_put_wait(). */
BALLOT_API int ballot_lock_acquire_wait(struct ballot *b,
                                        const void *name,
                                        size_t name_len,
                                        uint64_t lease,
                                        uint64_t timeout_ms,
                                        int flags,
                                        const struct ballot_reqid *rid,
                                        struct ballot_result **out);
BALLOT_API int ballot_lock_release_wait(struct ballot *b,
                                        const void *name,
                                        size_t name_len,
                                        uint64_t token,
                                        const struct ballot_reqid *rid,
                                        struct ballot_result **out);
BALLOT_API int ballot_lock_owner_wait(struct ballot *b,
                                      const void *name,
                                      size_t name_len,
                                      int consistency,
                                      struct ballot_result **out);
BALLOT_API int ballot_put_fenced_wait(struct ballot *b,
                                      const void *key,
                                      size_t key_len,
                                      const void *value,
                                      size_t value_len,
                                      const void *name,
                                      size_t name_len,
                                      uint64_t token,
                                      const struct ballot_reqid *rid,
                                      struct ballot_result **out);

/* ---------------------------------------------------------------------- */
/* Watches                                                                */

enum ballot_event_type {
    BALLOT_EVENT_PUT = 1,
    BALLOT_EVENT_DELETE = 2,
};

/* One change: a put (the key's new value and metadata) or a delete (the
 * key; kv.mod_revision is the delete's revision, version 0, no value). */
struct ballot_event
{
    int type; /* enum ballot_event_type */
    struct ballot_kv kv;
};

/* Delivery of a watch, on the node's thread. With @status 0, @events (@n,
 * possibly 0: a progress notification, about once a second while nothing
 * changes) are the next changes in the range, in revision order, with no
 * gap and no repeat; every change up to @revision has been delivered.
 * Otherwise the watch has ended and is not called again: @status is
 * BALLOT_ECOMPACTED (@revision is the compaction point: read the range and
 * watch again from above it), BALLOT_ECLOSED (the node is stopping) or
 * BALLOT_ESTORAGE / BALLOT_ENOMEM. @events live during the call. */
typedef void (*ballot_watch_cb)(void *arg,
                                int status,
                                const struct ballot_event *events,
                                size_t n,
                                uint64_t revision);

struct ballot_watch;

/* Watches the key @key, the range [@key, @end) (an empty @end with
 * BALLOT_RANGE_PREFIX in @flags: every key starting with @key; without it
 * and without @end, the single key) from @from_revision: 0 for the next
 * change, a past revision to replay the history kept since then (the
 * reconnect of a watcher that saw revision R resumes from R + 1), a
 * future one to wait for it. Changes are delivered once this node has
 * applied them: a watch on a follower never runs ahead of that follower's
 * store. Returns 0 with the watch in @out (release it with
 * ballot_watch_cancel(), also after it ended), BALLOT_EINVAL,
 * BALLOT_ECOMPACTED, BALLOT_ELIMIT, BALLOT_ECLOSED, BALLOT_ENOMEM or
 * BALLOT_EWRONGTHREAD. With ballot_open() from another thread, errors
 * found on the node's thread reach @cb instead. */
BALLOT_API int ballot_watch(struct ballot *b,
                            const void *key,
                            size_t key_len,
                            const void *end,
                            size_t end_len,
                            int flags,
                            uint64_t from_revision,
                            ballot_watch_cb cb,
                            void *arg,
                            struct ballot_watch **out);

/* Ends @w (if it has not ended) and releases it: once this returns, its
 * callback is not running and will not be called again. Allowed inside
 * the watch's own callback. Returns 0, BALLOT_EINVAL or
 * BALLOT_EWRONGTHREAD. Watches not released by ballot_close() or
 * ballot_stop() are released there. */
BALLOT_API int ballot_watch_cancel(struct ballot *b, struct ballot_watch *w);

/* ---------------------------------------------------------------------- */
/* Unique IDs                                                             */

/* Mints @n (1..4096) 64-bit IDs on this node, without a round trip: bit 63
 * zero, then 41 bits of milliseconds since 2026-01-01 UTC, the 10-bit
 * member id and a 12-bit sequence. They increase, and are unique across
 * the cluster (member ids must be 1..1023) and over this node's life: a
 * clock that steps back up to 5 s is ridden out from the last ID minted,
 * further back is refused, and a high-water mark kept in the data
 * directory carries that across restarts. Any thread, while the node is
 * open (not concurrently with ballot_close()). Returns 0 with the IDs in
 * @out, BALLOT_EINVAL (bad @n, or the member id is above 1023),
 * BALLOT_ECLOCK or BALLOT_ESTORAGE. */
BALLOT_API int ballot_snowflake(struct ballot *b, uint64_t *out, size_t n);

/* Hands out the next @count (1..1,000,000) IDs of the cluster-wide
 * sequence @name (1..BALLOT_KEY_MAX bytes; sequences are not keys): one
 * log entry, applied in log order, so IDs strictly increase across every
 * caller and node, start at 1, and are never handed out twice, across
 * leader changes and restarts. With @rid, a retry gets the first
 * application's block. Result: ops[0] is a BALLOT_OP_SEQUENCE whose count
 * is @count and whose one pair carries the first and last ID of the block
 * as create_revision and version. Returns like ballot_put(); @cb may also
 * report BALLOT_ELIMIT (fewer than @count IDs are left below 2^63). */
BALLOT_API int ballot_sequence(struct ballot *b,
                               const void *name,
                               size_t name_len,
                               uint64_t count,
                               const struct ballot_reqid *rid,
                               ballot_cb cb,
                               void *arg);
/* The blocking form: 0 with the block in *@first and *@last, or an error
 * code. Only for nodes opened with ballot_open(), not from the node's own
 * thread. */
BALLOT_API int ballot_sequence_wait(struct ballot *b,
                                    const void *name,
                                    size_t name_len,
                                    uint64_t count,
                                    const struct ballot_reqid *rid,
                                    uint64_t *first,
                                    uint64_t *last);

/* ---------------------------------------------------------------------- */
/* Cluster                                                                */

enum ballot_role {
    BALLOT_FOLLOWER = 0,
    BALLOT_CANDIDATE = 1,
    BALLOT_LEADER = 2,
    BALLOT_PRECANDIDATE = 3,
};

struct ballot_member
{
    uint64_t id;
    bool voter;           /* else a learner */
    char client_addr[80]; /* "host:port", "" if unknown */
    char peer_addr[80];
};

struct ballot_status
{
    uint64_t id;
    int role; /* enum ballot_role */
    uint64_t term;
    uint64_t leader;        /* 0 if none is known */
    char leader_addr[80];   /* the leader's client address, or "" */
    uint64_t commit_index;  /* highest log index known committed */
    uint64_t applied_index; /* highest index applied to this store */
    uint64_t last_index;    /* last index in this node's log */
    uint64_t revision;      /* this store's revision */
    bool halted;            /* storage failed (see ballot_halt_cb) */
    size_t n_members;
    struct ballot_member members[BALLOT_MEMBERS_MAX];
};

/* Fills @out with the node's view of the cluster, now. With ballot_open()
 * from any thread (it blocks briefly, except on the node's thread, where
 * it reads directly); with ballot_start() on the loop thread. Returns 0,
 * BALLOT_EINVAL, BALLOT_ECLOSED or BALLOT_EWRONGTHREAD. */
BALLOT_API int ballot_status(struct ballot *b, struct ballot_status *out);

/* Membership changes, one at a time (on the leader): add member @id at
 * @addr ("host:client_port[:peer_port]"; the peer port defaults to the
 * client port + 1) as a voter or a learner; promote a learner; remove a
 * member. @cb is called once the change is committed and applied here.
 * Returns 0, BALLOT_EINVAL (unknown id, a member already present, bad
 * address), BALLOT_ENOTLEADER, BALLOT_ECONFPENDING, BALLOT_ECLOSED or
 * BALLOT_EWRONGTHREAD. */
BALLOT_API int ballot_member_add(struct ballot *b,
                                 uint64_t id,
                                 const char *addr,
                                 bool voter,
                                 ballot_cb cb,
                                 void *arg);
BALLOT_API int ballot_member_promote(struct ballot *b,
                                     uint64_t id,
                                     ballot_cb cb,
                                     void *arg);
BALLOT_API int ballot_member_remove(struct ballot *b,
                                    uint64_t id,
                                    ballot_cb cb,
                                    void *arg);

/* Asks the leader (this node) to hand leadership to voter @id. Returns 0
 * once the transfer has started (watch ballot_status() for the outcome),
 * BALLOT_ENOTLEADER, BALLOT_EINVAL, BALLOT_ECLOSED or BALLOT_EWRONGTHREAD. */
BALLOT_API int ballot_transfer_leader(struct ballot *b, uint64_t id);

/* Blocking forms of the membership changes (ballot_open() only). */
BALLOT_API int ballot_member_add_wait(struct ballot *b,
                                      uint64_t id,
                                      const char *addr,
                                      bool voter);
BALLOT_API int ballot_member_promote_wait(struct ballot *b, uint64_t id);
BALLOT_API int ballot_member_remove_wait(struct ballot *b, uint64_t id);

#ifdef __cplusplus
}
#endif

#endif
