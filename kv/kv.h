/*
 * kv.h - the LMDB state machine of ballot.
 *
 * Committed Raft entries carry commands encoded with kv_cmd_encode(). The
 * node driver hands batches of them to kv_apply(), which applies a whole
 * batch in one LMDB write transaction and stores the last applied index in
 * that same transaction, so that replaying the log after a crash is exact.
 * Reads run in LMDB read transactions and never block the writer.
 *
 * Every key carries etcd-style MVCC metadata (create_revision, mod_revision,
 * version) and the store has a global revision that grows by one for every
 * entry that changes at least one key. Every change is also recorded in a
 * history table, read by watches with kv_history_read(), until kv_compact()
 * removes it.
 *
 * The LMDB environment runs with MDB_NOSYNC: the WAL is the source of truth,
 * and kv_checkpoint() tells the server up to which index the store is durable
 * (the WAL must never be compacted past that index). docs/kv.md holds the
 * normative formats.
 *
 * Threads: one thread at a time (the writer) may call the functions that
 * write (kv_apply, kv_compact, kv_checkpoint, kv_checkpoint_begin/_end,
 * kv_snapshot_stage_*, kv_snapshot_install), while any number of threads
 * call kv_get, kv_range, kv_history_read and kv_snapshot_create, and one
 * other thread may run kv_checkpoint_sync. kv_snapshot_install and kv_close
 * need the store to themselves (no checkpoint begun and not ended).
 */
#ifndef BALLOT_KV_H
#define BALLOT_KV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "raft.h"

/* ---------------------------------------------------------------------- */
/* Limits. Every bound of the state machine lives here, so that the client */
/* protocol, the decoder and the tests agree on them.                      */

/* Longest key. LMDB's default build refuses keys above 511 bytes. */
#define KV_KEY_BYTES_MAX 511u
/* Longest value. */
#define KV_VALUE_BYTES_MAX (1024u * 1024u)
/* Most comparisons in one transaction. */
#define KV_TXN_CMPS_MAX 64u
/* Most operations in each branch (then/else) of one transaction. */
#define KV_TXN_OPS_MAX 128u
/* Longest reply a client session stores with a request id (kv_cmd.reply):
 * the largest value plus room for its framing. */
#define KV_SESSION_REPLY_MAX (KV_VALUE_BYTES_MAX + 4096u)
/* Largest client id of a session (ids are 1..2^63). */
#define KV_SESSION_CLIENT_MAX (1ull << 63)
/* History records one compaction step deletes by default
 * (kv_options.compact_batch): about a millisecond of the writer's time. */
#define KV_COMPACT_BATCH_DEFAULT 1000u
/* Sessions kept by default (kv_options.session_max). */
#define KV_SESSIONS_DEFAULT 100000u
/* A session is evicted (to make room for a new one) only once its last
 * write is at least this many log entries old
 * (kv_options.session_evict_after); until then new sessions are refused.
 * So a client may retry for at least that long, whatever other clients
 * do. */
#define KV_SESSION_EVICT_AFTER_DEFAULT 1000000u
/* A request's seq may be at most this far beyond its client's last
 * applied seq, so that no single request (seq 2^64-1) can use up a
 * client id. */
#define KV_SESSION_SEQ_STEP_MAX ((uint64_t)1 << 32)

/* Why a request with an id was not run though its seq is not a retry
 * (kv_entry_result.session_refusal, with @superseded set). */
enum kv_session_refusal {
    KV_SESSION_OK = 0,
    KV_SESSION_EXPIRED = 1, /* no session and seq > 1: it expired */
    KV_SESSION_TOO_FAR = 2, /* seq beyond last + KV_SESSION_SEQ_STEP_MAX */
    KV_SESSION_FULL = 3,    /* a new session, the table full and young */
};
/* Longest encoded command; bounds the total a transaction can carry. */
#define KV_CMD_BYTES_MAX (8u * 1024u * 1024u)
/* Most bytes of keys and values one range read returns (a read that would
 * exceed it stops early and reports more = true). */
#define KV_RANGE_BYTES_MAX (4u * 1024u * 1024u)

/* ---------------------------------------------------------------------- */
/* Errors. kv's range is -3000s. MDB_* codes never leave kv/.              */

enum {
    KV_ENOMEM = -3001,     /* an allocation failed; nothing changed */
    KV_EINVAL = -3002,     /* an argument is invalid */
    KV_EBADCMD = -3003,    /* a command is malformed */
    KV_ELIMIT = -3004,     /* a command exceeds a limit of kv.h */
    KV_EFULL = -3005,      /* the store's map is full; reads still work */
    KV_ENOSPC = -3006,     /* the disk is full */
    KV_EIO = -3007,        /* an I/O error */
    KV_ECORRUPT = -3008,   /* stored data or a snapshot is corrupt */
    KV_ECOMPACTED = -3009, /* the revision was compacted away */
    KV_EFUTURE = -3010,    /* the revision has not been reached yet */
    KV_EGAP = -3011,       /* entries are not contiguous with applied */
    KV_ENOTFOUND = -3012,  /* no such key */
    KV_ESTATE = -3013,     /* not allowed in the current state */
    KV_EVERSION = -3014,   /* unsupported format version */
    KV_EPOISONED = -3015,  /* an earlier durable write failed */
    KV_EBUSY = -3016,      /* too many concurrent readers */
    KV_ESTOPPED = -3017,   /* a test hook stopped the operation */
    /* The machine went down while the store had writes after its last
     * checkpoint: it may be torn, and must be rebuilt from a snapshot and
     * the log (kv_open refuses it). */
    KV_ETORN = -3018,
    /* The ACL envelope's user may not run the command or touch its keys
     * at the entry's index (kv_acl.h); nothing was applied. */
    KV_ENOPERM = -3039,
    /* An ACL rule is malformed (kv_acl_user_apply_rule()). */
    KV_EACLRULE = -3038,
    /* Leases (kv_lease.c), numbered from the end of leases' block. */
    KV_ENOLEASE = -3029,     /* no such lease */
    KV_ELEASEEXISTS = -3028, /* a lease with that id already exists */
    KV_ELEASESFULL = -3027,  /* KV_LEASES_MAX leases exist */
    /* Locks (kv_lock.c), numbered from the end of locks' block. */
    KV_EFENCED = -3069,      /* a fence's token is not the lock's holder */
    KV_ELOCKNOTHELD = -3068, /* no holder or waiter has that token */
    KV_ELOCKWAITERS = -3067, /* KV_LOCK_WAITERS_MAX wait for the lock */
    /* Hashes (kv_hash.c), numbered from the end of hashes' block: the key
     * holds a value of another type (a string where a hash is read). */
    KV_EWRONGTYPE = -3079,
};

/* Returns a static, human-readable description of a kv error code. */
const char *kv_strerror(int code);

/* ---------------------------------------------------------------------- */
/* Commands                                                                */

enum kv_op_type {
    KV_OP_PUT = 1,
    KV_OP_DELETE = 2,       /* one key */
    KV_OP_DELETE_RANGE = 3, /* [key, end) */
    KV_OP_RANGE = 4,        /* a read; only inside a transaction */
    /* Read-modify-writes the state machine evaluates at apply time, from
     * the value the key holds at that point of the log, so that many of
     * them on one key commit in one Raft round, each with its own result
     * (docs/kv.md, "Read-modify-write operations"). The result's @count
     * is 0 if the op was applied, else an enum kv_rmw_refusal (nothing
     * written); an applied op returns the new pair in @kvs. */
    KV_OP_INCRBY = 10,      /* integer at @key (missing: 0) plus @delta */
    KV_OP_APPEND = 11,      /* @value appended to @key (missing: empty) */
    KV_OP_INCRBYFLOAT = 12, /* @value (decimal text) added, as Redis does */
    /* The next @delta (1..KV_SEQUENCE_BLOCK_MAX) IDs of the sequence named
     * @key, which is not a user key: sequences live apart from the keys
     * and change no revision. Only as a KV_CMD_SEQUENCE, never inside a
     * transaction. The result's @count is 0 or KV_RMW_OVERFLOW (the block
     * would pass INT64_MAX; nothing handed out); on success @kvs holds one
     * pair (the name, no value) whose @create_revision and @version are
     * the first and the last ID of the block. IDs start at 1 and are never
     * handed out twice (docs/coordination.md, "IDs"). */
    KV_OP_SEQUENCE = 50,
    /* Only on the wire (docs/kv.md): a put with a non-zero @lease or
     * @expire_at is encoded with this op type; decoded, it is KV_OP_PUT
     * again. */
    KV_OP_PUT_LEASE = 25,
    /* Sets the expiry of the existing key @key to @expire_at (0: none,
     * PERSIST), without changing its value, revision or version, if the
     * KV_EXPIRE_* conditions in @flags hold (Redis's EXPIRE ... NX|XX|GT|
     * LT). With KV_EXPIRE_DELETE the time has already passed when the
     * command was made: the key is deleted instead. The result's @count is
     * 1 if the key's expiry was set (or the key deleted), else 0. */
    KV_OP_EXPIRE = 26,
    /* Locks (kv_lock.c; docs/coordination.md, "Locks"): only as the
     * KV_CMD_LOCK_* command of the same number. @key is the lock's key
     * prefix: every holder and waiter is the key @key + 16 lower-case hex
     * digits of its lease, attached to that lease, and the lock belongs to
     * the one with the lowest create_revision, which is its fencing token.
     * KV_OP_LOCK_ACQUIRE: @lease (which must exist), @value (stored in the
     * key: an election's value), @flags KV_LOCK_TRY. KV_OP_LOCK_RELEASE:
     * @delta is the token. */
    KV_OP_LOCK_ACQUIRE = 60,
    KV_OP_LOCK_RELEASE = 61,
    /* Hashes (kv_hash.c, docs/kv.md "Hashes"): field updates of the hash
     * at @key, evaluated at apply time like KV_OP_INCRBY. A hash is one
     * record in "keys" (type KV_TYPE_HASH, its value the field count in
     * decimal, its revisions and version moved by every change) plus one
     * record per field in "hash_fields", so a field's update rewrites
     * that field and the small key record, never the whole hash. The
     * result's @count is an enum kv_rmw_refusal (KV_RMW_WRONGTYPE: @key
     * holds a string; nothing written); an applied op returns one pair in
     * @kvs: the hash key with the hash's metadata after the op (zero
     * revisions once it is gone) and as value the answer in decimal text
     * (fields added, fields removed, the new value). */
    /* Sets the (field, value) pairs packed in @value
     * (kv_hash_pairs_encode()); with KV_HASH_NX only a missing field
     * (HSETNX, one pair). Answer: the fields that were new. */
    KV_OP_HSET = 70,
    /* Removes the fields packed in @value (pairs without values); the hash
     * goes once its last field does. Answer: the fields removed. */
    KV_OP_HDEL = 71,
    /* Adds @delta to the integer in field @end (missing: 0). */
    KV_OP_HINCRBY = 72,
    /* Adds @value (decimal text) to the number in field @end, as Redis's
     * HINCRBYFLOAT. */
    KV_OP_HINCRBYFLOAT = 73,
};

/* KV_OP_LOCK_ACQUIRE's flag: do not wait; if another holds the lock,
 * write nothing. */
#define KV_LOCK_TRY (1u << 0)
/* Most waiters (holder included) of one lock: an acquire beyond it is
 * refused with KV_ELOCKWAITERS. */
#define KV_LOCK_WAITERS_MAX 1000u
/* Bytes of a lock key after its prefix: the lease id in hex. */
#define KV_LOCK_SUFFIX_BYTES 16u
/* Longest lock key prefix. */
#define KV_LOCK_PREFIX_MAX (KV_KEY_BYTES_MAX - KV_LOCK_SUFFIX_BYTES)
/* A lock named N lives under the key prefix "_lock/N/", an election
 * named N under "_lead/N/" (kv_lock_prefix(); an election is a lock whose
 * claims carry the candidates' values), so a name is at most this long.
 * Both prefixes have the same length. */
#define KV_LOCK_KEY_PREFIX "_lock/"
#define KV_ELECTION_KEY_PREFIX "_lead/"
#define KV_LOCK_NAME_MAX \
    (KV_LOCK_PREFIX_MAX - (sizeof(KV_LOCK_KEY_PREFIX) - 1) - 1)

/* The type of a key's value (struct kv_kv.type). */
enum kv_value_type {
    KV_TYPE_STRING = 0,
    KV_TYPE_HASH = 1,
};

/* KV_OP_HSET: set only fields that do not exist (HSETNX). */
#define KV_HASH_NX (1u << 0)
/* Longest field name: a field is stored under the hash key, its length
 * and the field, which LMDB bounds at KV_KEY_BYTES_MAX bytes together
 * (kv_hash_field_fits()). */
#define KV_HASH_FIELD_KEY_OVERHEAD 2u
/* Most fields one hash may hold (a further new field is refused with
 * KV_RMW_TOO_LARGE): bounds the work of deleting a hash in one entry. */
#define KV_HASH_FIELDS_MAX 100000u

/* Why a read-modify-write op (KV_OP_INCRBY...) changed nothing: its
 * kv_op_result.count. */
enum kv_rmw_refusal {
    KV_RMW_APPLIED = 0,
    KV_RMW_NOT_INTEGER = 1, /* the value is not a canonical 64-bit integer */
    KV_RMW_OVERFLOW = 2,    /* the sum leaves the 64-bit range */
    KV_RMW_TOO_LARGE = 3,   /* the result exceeds KV_VALUE_BYTES_MAX */
    KV_RMW_NOT_FLOAT = 4,   /* the value or increment is not a number */
    KV_RMW_NAN_OR_INF = 5,  /* the float sum is NaN or infinite */
    KV_RMW_WRONGTYPE = 6,   /* the key holds a value of another type */
    KV_RMW_HASH_FULL = 7,   /* the hash has KV_HASH_FIELDS_MAX fields */
};

/* Flags of an operation (struct kv_op.flags). */
enum {
    /* put/delete: return the previous pairs. The previous value is read
     * as a string: a single-key put or delete of a hash with this flag
     * changes nothing, its result's @count KV_RMW_WRONGTYPE (Redis's
     * GETSET, SET ... GET and GETDEL on a hash). */
    KV_FLAG_PREV_KV = 1 << 0,
    KV_FLAG_PREFIX = 1 << 1,     /* range/delete-range: end = key's prefix */
    KV_FLAG_REVERSE = 1 << 2,    /* range: descending key order */
    KV_FLAG_COUNT_ONLY = 1 << 3, /* range: count, return no pairs */
    KV_FLAG_KEYS_ONLY = 1 << 4,  /* range: return keys without values */
};
#define KV_FLAGS_ALL 0x1fu
/* put: keep the key's lease and expiry (Redis's SET ... KEEPTTL); not with
 * a @lease or @expire_at of its own. */
#define KV_FLAG_KEEP_TTL (1u << 6)
/* KV_OP_EXPIRE's conditions (its @flags). */
enum {
    KV_EXPIRE_NX = 1 << 0,     /* only if the key has no expiry */
    KV_EXPIRE_XX = 1 << 1,     /* only if it has one */
    KV_EXPIRE_GT = 1 << 2,     /* only if later than its expiry (none: never) */
    KV_EXPIRE_LT = 1 << 3,     /* only if earlier (none counts as later) */
    KV_EXPIRE_DELETE = 1 << 4, /* the time has passed: delete the key */
};
/* kv_range() only (never in a kv_op): stop at the limit instead of counting
 * the rest of the range; the result's count is then the pairs returned, and
 * more still tells whether a key lies beyond them. For paging (SCAN), where
 * counting to the end each page would make a full scan quadratic. */
#define KV_RANGE_NO_TOTAL (1u << 5)

/* A range is [key, end). An empty @end means the single key @key; an @end of
 * one zero byte means every key >= @key; KV_FLAG_PREFIX overrides @end with
 * "every key starting with @key" (all keys if @key is empty). */
struct kv_op
{
    uint8_t type;  /* enum kv_op_type */
    uint8_t flags; /* KV_FLAG_* */
    uint32_t key_len;
    uint32_t end_len;   /* delete-range, range */
    uint32_t value_len; /* put, append, incrbyfloat */
    uint64_t limit;     /* range: most pairs to return, 0 = no limit */
    int64_t delta;      /* incrby */
    const uint8_t *key;
    const uint8_t *end;
    const uint8_t *value;
    /* put: the lease the key is attached to (0: none; a put without one
     * detaches the key from its lease). The lease must exist when the
     * entry is applied, or the whole command is refused (KV_ENOLEASE). */
    uint64_t lease;
    /* put: the wall-clock time (Unix ms) the key expires at, 0 for never;
     * reads on every node treat it as gone from then on (docs/protocol.md,
     * "Expiry"). KV_OP_EXPIRE: the new expiry. */
    uint64_t expire_at;
};

enum kv_cmp_target {
    KV_CMP_VALUE = 1,           /* bytes, compared like memcmp */
    KV_CMP_VERSION = 2,         /* 0 if the key is missing */
    KV_CMP_CREATE_REVISION = 3, /* 0 if the key is missing */
    KV_CMP_MOD_REVISION = 4,    /* 0 if the key is missing */
    KV_CMP_EXISTS = 5,          /* number is 1 (exists) or 0; = and != only */
};

enum kv_cmp_op {
    KV_CMP_EQ = 1,
    KV_CMP_NE = 2,
    KV_CMP_LT = 3,
    KV_CMP_GT = 4,
};

/* One comparison of a transaction. A value comparison against a missing key
 * is false whatever the operator. */
struct kv_cmp
{
    uint8_t target; /* enum kv_cmp_target */
    uint8_t op;     /* enum kv_cmp_op */
    uint32_t key_len;
    uint32_t value_len; /* KV_CMP_VALUE */
    uint64_t number;    /* every other target */
    const uint8_t *key;
    const uint8_t *value;
};

enum kv_cmd_type {
    KV_CMD_PUT = 1,
    KV_CMD_DELETE = 2,
    KV_CMD_DELETE_RANGE = 3,
    KV_CMD_TXN = 4,
    /* Cluster metadata, not a user key: records (op KV_OP_PUT) or forgets
     * (KV_OP_DELETE) where member @op.key (8 bytes, big-endian id >= 1)
     * listens; @op.value is opaque to kv (at most KV_MEMBER_ADDR_MAX
     * bytes). It changes no revision. See kv_members(). */
    KV_CMD_MEMBER = 5,
    /* History compaction, decided by the leader and replicated so that
     * every replica compacts the same revisions: raises the compaction
     * point to @revision (>= 1). Reads of history below the point fail
     * with KV_ECOMPACTED from the entry on; the records themselves are
     * deleted later, in bounded steps (kv_compact_step()). A @revision
     * beyond the store revision is refused with KV_EFUTURE (an entry
     * code); one at or below the point changes nothing. It changes no
     * revision. */
    KV_CMD_COMPACT = 6,
    /* A digest point, proposed by the leader: changes nothing, and its
     * result (kv_entry_result.digest) is the store digest right after the
     * entries before it, so every replica reports the digest of the same
     * state and any two that differ have diverged (docs/kv.md, "Integrity").
     * Operands @digest_index and @digest: the proposer's digest at an
     * earlier digest entry, handed back in the result for the replica to
     * compare with the digest it had there. */
    KV_CMD_DIGEST = 40,
    /* One read-modify-write op (@op, of the type with the same number). */
    KV_CMD_INCRBY = 10,
    KV_CMD_APPEND = 11,
    KV_CMD_INCRBYFLOAT = 12,
    /* One KV_OP_SEQUENCE op: a block of cluster-wide increasing IDs. */
    KV_CMD_SEQUENCE = 50,
    /* Users and permissions (kv_acl.h), not a user key: @op.key is a user
     * name; a put applies the ACL SETUSER rules in @op.value
     * (kv_acl_rules_encode()), a delete removes the user. It changes no
     * revision. */
    KV_CMD_ACL = 30,
    /* Leases (kv_lease.c, docs/coordination.md). Expiry is decided by the
     * leader against the replicated lease clock (@clock, ms), never by
     * reading a clock at apply time. Every lease command raises the
     * stored lease clock to its @clock if that is higher. */
    /* Grants lease @lease_ids[0] (>= 1) for @ttl_ms: its deadline is
     * @clock + @ttl_ms. Refused with the entry code KV_ELEASEEXISTS or
     * KV_ELEASESFULL. */
    KV_CMD_LEASE_GRANT = 20,
    /* Revokes lease @lease_ids[0]: deletes it and every key attached to
     * it, in this entry (one revision; watchers see the deletions).
     * Refused with KV_ENOLEASE if it does not exist. */
    KV_CMD_LEASE_REVOKE = 21,
    /* Keep-alives, batched: each existing lease of @lease_ids gets the
     * deadline @clock + its TTL (if later than the one it has). Unknown
     * ids are skipped; the entry result has one op per id (type
     * KV_CMD_LEASE_REFRESH) whose @count is the lease's deadline after
     * the entry, or 0 if the lease does not exist. */
    KV_CMD_LEASE_REFRESH = 22,
    /* The leader's expiry decision: each lease of @lease_ids whose
     * deadline is at or below @clock ends like a revoke (keys deleted in
     * this entry); others (kept alive since, or gone) are skipped. */
    KV_CMD_LEASE_EXPIRE = 23,
    /* Only raises the lease clock to @clock: the leader's periodic
     * checkpoint of the time that has passed (a new leader counts on
     * from it). */
    KV_CMD_LEASE_CLOCK = 24,
    /* Redis expiry, decided by the leader: each key of @then_ops (delete
     * ops, at most KV_EXPIRE_KEYS_MAX) whose expiry is set and at or below
     * @clock (wall-clock Unix ms, read by the leader) is deleted in this
     * entry; others (given a new expiry since, or gone) are skipped. The
     * op result's @count is 1 for a key deleted. */
    KV_CMD_EXPIRE_KEYS = 25,
    /* One KV_OP_EXPIRE op (EXPIRE, PEXPIRE, EXPIREAT, PEXPIREAT,
     * PERSIST). */
    KV_CMD_EXPIRE = 26,
    /* Locks (kv_lock.c): one op of the same type. An acquire whose lease
     * already has a key under the prefix writes nothing and reports that
     * key (a retry is harmless); otherwise, unless KV_LOCK_TRY finds the
     * lock held (then @succeeded is false and nothing is written), it puts
     * the lease's key, at this entry's revision. The op result's @count is
     * 1 if the lease's key holds the lock after the entry, else 0, and its
     * one pair is the lease's key (the token is its create_revision), or
     * the holder's when a try failed. Refused with KV_ENOLEASE or
     * KV_ELOCKWAITERS. A release deletes the key whose create_revision is
     * the token, holder or waiter (@count 1 if it held the lock); refused
     * with KV_ELOCKNOTHELD if there is none. Once the holder's key goes
     * (release, lease revoked or expired), the lowest waiter holds. */
    KV_CMD_LOCK_ACQUIRE = 60,
    KV_CMD_LOCK_RELEASE = 61,
    /* One hash op (@op, of the type with the same number, kv_hash.c). */
    KV_CMD_HSET = 70,
    KV_CMD_HDEL = 71,
    KV_CMD_HINCRBY = 72,
    KV_CMD_HINCRBYFLOAT = 73,
};

/* Most IDs one KV_OP_SEQUENCE hands out. */
#define KV_SEQUENCE_BLOCK_MAX 1000000u

/* Lease limits (docs/coordination.md, "Leases"). */
/* Longest TTL a lease may be granted: ten years. */
#define KV_LEASE_TTL_MS_MAX (10ull * 365 * 24 * 3600 * 1000)
/* Most leases in the store: a grant beyond it is refused. */
#define KV_LEASES_MAX 1000000u
/* Most lease ids one listing returns (BLEASE LIST, ballot_lease_list). */
#define KV_LEASE_LIST_MAX 10000u
/* Most lease ids in one refresh or expire command. */
#define KV_LEASE_BATCH_MAX 10000u
/* Most keys one KV_CMD_EXPIRE_KEYS deletes. */
#define KV_EXPIRE_KEYS_MAX KV_TXN_OPS_MAX

/* Longest member address (KV_CMD_MEMBER), and most members recorded: a put
 * of a new id beyond it is refused with KV_ELIMIT. */
#define KV_MEMBER_ADDR_MAX 256u
#define KV_MEMBERS_MAX 64u

/* A decoded command. For put/delete/delete-range, @op holds the operation.
 * For a transaction, @cmps, @then_ops and @else_ops hold the lists. Byte
 * pointers borrow from the buffer that was decoded (or from the caller, for
 * encoding); the arrays belong to the command (see kv_cmd_free()). */
struct kv_cmd
{
    uint8_t type; /* enum kv_cmd_type */
    struct kv_op op;
    struct kv_cmp *cmps;
    uint32_t n_cmps;
    struct kv_op *then_ops;
    uint32_t n_then;
    struct kv_op *else_ops;
    uint32_t n_else;
    /* Request id (client sessions, docs/kv.md): 0 = none. With a
     * @client_id (1..KV_SESSION_CLIENT_MAX) and a @seq (>= 1), kv_apply()
     * applies the command at most once per (client_id, seq) and stores
     * @reply (opaque bytes, at most KV_SESSION_REPLY_MAX) to hand back to
     * a retry. Borrowed like the other byte pointers. */
    uint64_t client_id;
    uint64_t seq;
    const uint8_t *reply;
    uint32_t reply_len;
    /* With a request id and no @reply: the state machine keeps the entry's
     * own result instead (the branch taken, the revision, what every
     * operation returned), and a retry gets that result back in its
     * kv_entry_result. For commands whose reply depends on the state at
     * apply time (a transaction with reads or an else branch), which the
     * proposer cannot build in advance. Either branch consumes the seq. */
    bool keep_result;
    /* KV_CMD_COMPACT: the new compaction point. */
    uint64_t revision;
    /* The ACL envelope (kv_acl.h): with an @acl_user, kv_apply() runs the
     * command only if that user, as the store holds it at the entry's
     * index, may run @acl_cmd ("name" or "name|sub", with categories
     * @acl_cats) and touch every key the command names; otherwise the
     * entry is refused with KV_ENOPERM. A user the store does not hold is
     * refused, except "default", which the server's settings govern until
     * an ACL entry defines it. Borrowed like the other byte pointers. */
    const char *acl_user;
    uint8_t acl_user_len;
    const char *acl_cmd;
    uint8_t acl_cmd_len;
    uint32_t acl_cats;
    /* KV_CMD_DIGEST: the proposer's store digest @digest at an earlier
     * digest entry @digest_index, for every replica to compare with its
     * own (0: nothing to compare). */
    uint64_t digest_index;
    uint64_t digest;
    /* Lease commands (KV_CMD_LEASE_*): the lease clock the leader decided
     * at (ms), the TTL of a grant, and the lease ids (one for a grant or
     * a revoke; 1..KV_LEASE_BATCH_MAX for a refresh or an expire; none
     * for a clock), each >= 1. @lease_ids is borrowed when encoding and
     * an array of the command when decoded (like @cmps). */
    uint64_t clock;
    uint64_t ttl_ms;
    uint64_t *lease_ids;
    uint32_t n_lease_ids;
    /* The fence (docs/coordination.md, "Fencing"): with a @fence_key (a
     * lock's key prefix, see KV_OP_LOCK_ACQUIRE), kv_apply() runs the
     * command only if, at the entry's index, the lock's holder has the
     * token @fence_token (>= 1); otherwise the entry is refused with
     * KV_EFENCED, applies nothing and consumes no request id. Borrowed
     * like the other byte pointers. */
    const uint8_t *fence_key;
    uint32_t fence_key_len;
    uint64_t fence_token;
};

/* The version byte kv_cmd_encode() writes for a command without a request
 * id; a command with one is written as KV_CMD_VERSION_SESSION (the version 1
 * layout followed by the request id and reply), or as
 * KV_CMD_VERSION_SESSION_RESULT when it keeps its result (the request id
 * alone). kv_cmd_decode() accepts all three. */
#define KV_CMD_VERSION 1
#define KV_CMD_VERSION_SESSION 2
#define KV_CMD_VERSION_SESSION_RESULT 3
/* A command with an ACL envelope: this byte, the envelope, then the
 * command in one of the versions above (docs/kv.md). */
#define KV_CMD_VERSION_ACL 30
/* A fenced command: this byte, u16 key length, the fence key, u64 token,
 * then the command in one of the versions above (inside an ACL envelope,
 * if the command has both). */
#define KV_CMD_VERSION_FENCE 60

/* Allocation hooks; all heap use of kv/ goes through them, so that tests can
 * fail the Nth allocation. NULL (or NULL members) means the C library's. */
struct kv_allocator
{
    void *ctx;
    void *(*malloc_fn)(void *ctx, size_t size);
    void *(*realloc_fn)(void *ctx, void *ptr, size_t size);
    void (*free_fn)(void *ctx, void *ptr);
};

/* Returns the bytes kv_cmd_encode() needs for @cmd, or 0 if @cmd is invalid
 * (an unknown type or flag, a length over a limit, a total over
 * KV_CMD_BYTES_MAX). @cmd is borrowed. */
size_t kv_cmd_encoded_size(const struct kv_cmd *cmd);

/* Serializes @cmd into @buf, which has room for @cap bytes, and stores the
 * bytes written in @len. @cmd and @buf are borrowed. Returns 0, KV_EINVAL if
 * @cmd is invalid (same rules as the decoder) or KV_ELIMIT if it does not fit
 * the limits or @cap. */
int kv_cmd_encode(const struct kv_cmd *cmd,
                  uint8_t *buf,
                  size_t cap,
                  size_t *len);

/* Parses an untrusted command. Every length is checked against the input and
 * the limits before anything is allocated. On success @cmd's byte pointers
 * borrow from @buf (which must outlive @cmd) and its arrays are allocated
 * with @alloc (NULL = C library); release them with kv_cmd_free(). Returns 0,
 * KV_EBADCMD (malformed: truncated, trailing bytes, unknown type, flag or
 * operator), KV_EVERSION, KV_ELIMIT or KV_ENOMEM; on failure @cmd holds
 * nothing to free. */
int kv_cmd_decode(const uint8_t *buf,
                  size_t len,
                  const struct kv_allocator *alloc,
                  struct kv_cmd *cmd);

/* Releases the arrays of a decoded command. Safe on a zeroed command. */
void kv_cmd_free(struct kv_cmd *cmd, const struct kv_allocator *alloc);

/* Whether the encoded command @buf (@len bytes, borrowed) may make the
 * store larger: a put, a transaction with a put in either branch, and
 * anything that does not decode (it is refused at apply anyway). Deletes,
 * member records and compactions may not: they are what frees space, so a
 * store over its quota still takes them (docs/kv.md, "Space"). */
bool kv_cmd_adds_data(const uint8_t *buf, size_t len);

/* An upper bound on the keys the encoded command @buf (@len bytes,
 * borrowed) changes when applied: 1 for a single-key command, the number
 * of operations of a transaction, 0 for what does not decode (refused at
 * apply), and UINT32_MAX for a delete-range anywhere in it (any number).
 * kv_apply() reserves disk room from it (docs/kv.md, "Space"). */
uint32_t kv_cmd_changes_max(const uint8_t *buf, size_t len);
/* Evaluates a read-modify-write op (KV_OP_INCRBY, _APPEND, _INCRBYFLOAT)
 * on the pair @old (NULL: the key is missing), as kv_apply() does: on
 * success either stores the new value in @out (allocated with @a, NULL =
 * C library, @out_len bytes; the caller frees it) with *@refusal =
 * KV_RMW_APPLIED, or leaves @out NULL with the reason in *@refusal.
 * Exposed so that code evaluating the same op elsewhere (a transaction's
 * overlay) gets the same bytes. Returns 0, KV_ENOMEM or KV_EBADCMD (not a
 * read-modify-write op). */
struct kv_kv;
int kv_rmw_eval(const struct kv_op *op,
                const struct kv_kv *old,
                const struct kv_allocator *a,
                uint8_t **out,
                uint32_t *out_len,
                uint64_t *refusal);

/* ---------------------------------------------------------------------- */
/* The store                                                               */

struct kv_store;

/* Points where kv_snapshot_install() may be stopped by a test hook. */
enum kv_install_step {
    KV_STEP_STAGED = 1,        /* staging directory verified and synced */
    KV_STEP_RENAMED = 2,       /* staging renamed to the new generation */
    KV_STEP_POINTED = 3,       /* CURRENT points to the new generation */
    KV_STEP_REOPENED = 4,      /* the new environment is open */
    KV_STEP_CLEANED = 5,       /* the old generation is removed */
    KV_STEP_COMPACT_BATCH = 6, /* kv_compact(): a batch committed */
};

/* Test hook called at each step of kv_snapshot_install() and after each
 * compaction batch; a non-zero return stops the operation there as if the
 * process had crashed. */
typedef int (*kv_step_cb)(void *arg, int step);

struct kv_options
{
    /* Size of the LMDB map; 0 means 4 GiB. Writes beyond it fail with
     * KV_EFULL. */
    uint64_t map_size;
    /* History records a compaction batch deletes before committing; 0 means
     * KV_COMPACT_BATCH_DEFAULT. */
    uint32_t compact_batch;
    /* Most concurrent read transactions; 0 means 126. */
    uint32_t max_readers;
    const struct kv_allocator *alloc; /* copied; NULL = C library */
    /* Client sessions kept; beyond it the session idle the longest (by
     * log index of its last write) is evicted, if that write is
     * session_evict_after entries old; else the new session is refused.
     * 0 means KV_SESSIONS_DEFAULT (KV_SESSION_EVICT_AFTER_DEFAULT). Both
     * must be the same on every replica. */
    uint32_t session_max;
    uint64_t session_evict_after;
    /* Bulk writes (a checkpoint's sync, a snapshot's copy) are written back
     * in chunks of this many bytes, each waited for before the next, so
     * that they never hold more than a chunk ahead of the WAL's small syncs
     * on the same disk. 0 means 2 MiB. */
    uint64_t writeback_chunk;
    kv_step_cb step_hook; /* tests only; NULL in production */
    void *step_arg;
};

/* Opens (creating if needed) the store in directory @dir, which must exist.
 * Cleans up what an interrupted snapshot install or stage left behind and
 * opens the generation named by @dir/CURRENT. @opts may be NULL; it is
 * copied. On success stores a new store in @out, released by kv_close().
 * Returns 0, KV_EINVAL, KV_ENOMEM, KV_EIO, KV_ECORRUPT, KV_EVERSION or
 * KV_ETORN; if @errmsg is not NULL it receives (up to @errmsg_len bytes) a
 * message with context. KV_ETORN refuses a store that had writes after its
 * last checkpoint when the machine (not only the process) went down: it
 * may be torn, and must be rebuilt from a snapshot (docs/kv.md,
 * durability). */
int kv_open(const char *dir,
            const struct kv_options *opts,
            struct kv_store **out,
            char *errmsg,
            size_t errmsg_len);

/* Closes the store without syncing: what was applied after the last
 * kv_checkpoint() may be lost by a machine crash, and is replayed from the
 * WAL. No other call may be in progress. */
void kv_close(struct kv_store *store);

/* Copies the message of the last error into @buf (at most @len bytes,
 * always terminated). */
void kv_errmsg(struct kv_store *store, char *buf, size_t len);

/* A scrub: passes over the whole store that check every record's checksum
 * and, over a pass during which nothing was applied, that the records sum
 * to the store digest (kv_scrub.c). kv_scrub_step() checks at most about
 * @budget_bytes more (0: the rest of the pass) in its own read
 * transaction, so it may be called between any other calls; *@pass_done
 * says a pass ended with this step (the next step starts another).
 * Returns 0, KV_ECORRUPT (the store is damaged: kv_corrupt() is now true
 * and says where), KV_EBUSY or KV_ENOMEM. Not thread-safe for one scrub;
 * @store is used as for any read. */
struct kv_scrub;
struct kv_scrub_stats
{
    uint64_t passes;        /* whole passes finished */
    uint64_t records;       /* records checked */
    uint64_t bytes;         /* bytes of keys and records checked */
    uint64_t digest_checks; /* passes whose sum was compared */
};
int kv_scrub_create(struct kv_store *store, struct kv_scrub **out);
int kv_scrub_step(struct kv_store *store,
                  struct kv_scrub *scrub,
                  uint64_t budget_bytes,
                  bool *pass_done);
void kv_scrub_get_stats(const struct kv_scrub *scrub,
                        struct kv_scrub_stats *stats);
void kv_scrub_destroy(struct kv_scrub *scrub);

/* Whether a read or an apply found the store damaged: a record whose
 * checksum does not match, or an LMDB page that is not what it should be.
 * Once true it stays true, and every read and apply of @store fails with
 * KV_ECORRUPT, so no damaged data is ever served; the store must be
 * rebuilt from a peer's snapshot (docs/operations.md, "Damaged data").
 * If @why is not NULL it receives (up to @why_len bytes) what was found.
 * Safe on any thread. */
bool kv_corrupt(struct kv_store *store, char *why, size_t why_len);

struct kv_status
{
    raft_index applied;        /* last applied log index */
    uint64_t revision;         /* store revision */
    uint64_t compact_revision; /* history below it is gone */
    bool compaction_pending;   /* a compaction was interrupted; resume it */
    uint64_t keys;             /* live keys */
    uint64_t history_events;   /* history records kept */
    uint64_t sessions;         /* client sessions kept */
    uint64_t leases;           /* leases granted and not ended */
    uint64_t lease_clock;      /* the replicated lease clock (ms) */
    /* Bytes of the data file in use: the pages up to the last one LMDB
     * has written (free pages inside are reused, so it does not shrink). */
    uint64_t db_bytes;
    /* The store digest: the sum (mod 2^64) of the checksums of every
     * key's record, the same on every replica at the same applied index. */
    uint64_t digest;
};

/* Where the store's space goes (kv_space()). */
struct kv_space
{
    uint64_t map_bytes;  /* the map: the most the data file can hold now */
    uint64_t file_bytes; /* pages up to the last one written (db_bytes) */
    /* Pages of @file_bytes on LMDB's free list, reused by later writes
     * (only counted when asked: it walks the free list). */
    uint64_t free_bytes;
    uint64_t page_bytes;
};

/* Reads the space figures in a read transaction; with @count_free, also
 * the free pages (a walk of LMDB's free list: a few microseconds per
 * thousand freed transactions, so not for every write). The store's live
 * data is file_bytes - free_bytes. Returns 0 or an error. */
int kv_space(struct kv_store *store, bool count_free, struct kv_space *out);

/* Makes the map (and the most the data file may grow to) @bytes large,
 * rounded up to whole pages; never smaller than the pages in use. The
 * caller guarantees that no transaction of this process is open, on any
 * thread (no read, no sync of kv_checkpoint_sync(), no snapshot copy):
 * LMDB maps the file anew. Later opens (a snapshot install) use the new
 * size. Returns 0, KV_EINVAL or a translated LMDB error. */
int kv_map_grow(struct kv_store *store, uint64_t bytes);

/* Reads the status in a read transaction. */
int kv_status(struct kv_store *store, struct kv_status *status);

/* ---------------------------------------------------------------------- */
/* Applying                                                                */

/* A key-value pair with its metadata. Bytes belong to the result holding the
 * pair. */
struct kv_kv
{
    const uint8_t *key;
    const uint8_t *value; /* NULL for keys-only reads and deletions */
    uint32_t key_len;
    uint32_t value_len;
    uint64_t create_revision;
    uint64_t mod_revision;
    uint64_t version;
    uint64_t lease;     /* the lease the key is attached to, 0 if none */
    uint64_t expire_at; /* Unix ms it expires at (Redis expiry), 0: never */
    uint8_t type;       /* enum kv_value_type of a stored key */
};

/* The result of one operation. */
struct kv_op_result
{
    uint8_t type;      /* enum kv_op_type */
    uint64_t count;    /* delete: keys deleted; range: keys in the range */
    bool more;         /* range: keys beyond those returned */
    struct kv_kv *kvs; /* put/delete with PREV_KV: previous pairs; range: */
    size_t n_kvs;      /* the pairs read */
};

/* The result of one entry. */
struct kv_entry_result
{
    raft_index index;
    /* 0, or KV_EBADCMD/KV_ELIMIT/KV_EVERSION if the command was refused
     * (the entry still advanced the applied index). */
    int code;
    bool skipped;      /* index <= applied before the call: not applied */
    bool noop;         /* empty data or a configuration entry */
    bool succeeded;    /* txn: the comparisons held (put/delete: true) */
    uint8_t cmd_type;  /* enum kv_cmd_type, 0 if none */
    uint64_t revision; /* store revision after the entry */
    /* KV_CMD_COMPACT: the compaction point after the entry. */
    uint64_t compact_revision;
    /* KV_CMD_DIGEST: the store digest at this entry (kv_status.digest),
     * and the command's @digest_index and @digest. */
    uint64_t digest;
    uint64_t digest_check_index;
    uint64_t digest_check;
    struct kv_op_result *ops; /* one per operation of the executed list */
    size_t n_ops;
    /* Commands with a request id (kv_cmd.client_id). @duplicate: the seq
     * was the last one applied for the client: nothing was executed and
     * @reply/@reply_len hold the reply stored when it was applied (its
     * @session_revision is the revision it was applied at). @superseded:
     * the seq is below the last one applied (@session_seq): nothing was
     * executed. Otherwise the command was executed; it consumed its seq
     * only if it @succeeded (a failed comparison does not). */
    bool duplicate;
    bool superseded;
    /* With @superseded: not an older seq but a refusal (enum
     * kv_session_refusal); @session_seq is then the last applied seq (0
     * if there is no session). */
    uint8_t session_refusal;
    uint64_t session_seq;
    uint64_t session_revision;
    const uint8_t *reply;
    uint32_t reply_len;
    /* A @duplicate of a command that kept its result (kv_cmd.keep_result):
     * @succeeded, @ops and @n_ops are those of the original application
     * (@reply is NULL). @result_elided: it was applied, but its result was
     * larger than KV_SESSION_REPLY_MAX and only that fact was kept. */
    bool result_kept;
    bool result_elided;
};

struct kv_arena_chunk;

/* Results of kv_apply(). Everything the entries point to is owned by the
 * result and lives until kv_apply_result_free(). */
struct kv_apply_result
{
    struct kv_entry_result *entries; /* one per entry given */
    size_t n_entries;
    raft_index applied; /* applied index after the call */
    uint64_t revision;  /* store revision after the call */
    /* Private. */
    struct kv_arena_chunk *arena;
    struct kv_allocator alloc;
};

/* Applies committed entries in one write transaction. @entries are borrowed
 * for the call and must have increasing indexes; those at or below the
 * stored applied index are skipped, and the first one above it must be
 * applied + 1. RAFT_ENTRY_CONF entries and entries with empty data only
 * advance the applied index. A command that does not decode yields an
 * error code in its entry result and changes nothing else. @res may be NULL;
 * otherwise it is filled (also on failure, where it holds nothing) and must
 * be released with kv_apply_result_free(). Returns 0, KV_EGAP, KV_EINVAL,
 * KV_EFULL (nothing applied; reads still work), KV_ENOSPC, KV_ENOMEM,
 * KV_EIO, KV_ECORRUPT or KV_EPOISONED. On failure nothing is applied. An
 * empty batch does nothing (and @res stays empty). */
int kv_apply(struct kv_store *store,
             const struct raft_entry *entries,
             size_t n_entries,
             struct kv_apply_result *res);

/* Releases everything a result holds. Safe on a zeroed result. */
void kv_apply_result_free(struct kv_apply_result *res);

/* Syncs the environment to disk and stores in @durable the applied index
 * that is now durable. The WAL may be compacted up to it and no further.
 * Also clears the DIRTY marker, so call it often: a machine crash with
 * writes since the last checkpoint forces a rebuild from a snapshot. A
 * failed sync poisons the store (KV_EPOISONED afterwards for every write).
 * The same as kv_checkpoint_begin(), _sync() and _end() in a row. */
int kv_checkpoint(struct kv_store *store, raft_index *durable);

/* A checkpoint in three steps, so that the sync, which writes back every
 * page changed since the last one, runs on another thread while the writer
 * keeps applying (docs/kv.md, "Checkpoints while applying"). Filled in by
 * kv_checkpoint_begin(); the caller owns it and treats it as opaque. */
struct kv_checkpoint
{
    raft_index applied; /* the applied index the sync covers */
    uint64_t writes;    /* write transactions begun before it began */
    int status;         /* of kv_checkpoint_sync(); KV_ESTATE until it ran */
};

/* Writer thread, between writes: records the applied index that the sync
 * will cover (everything committed so far). Until kv_checkpoint_end(),
 * kv_snapshot_install() and kv_close() are not allowed. Returns 0,
 * KV_EPOISONED, KV_ESTATE (another checkpoint is begun and not ended) or an
 * error reading the store. */
int kv_checkpoint_begin(struct kv_store *store, struct kv_checkpoint *ckpt);

/* Syncs the environment: every write committed before kv_checkpoint_begin()
 * is on disk when it returns 0. Any thread, once, between _begin and _end,
 * concurrently with the writer's kv_apply() and kv_compact() and with
 * readers; it touches nothing the writer changes. Returns 0 or KV_EIO (the
 * sync failed; kv_checkpoint_end() then poisons the store). */
int kv_checkpoint_sync(struct kv_store *store, struct kv_checkpoint *ckpt);

/* Writer thread, after kv_checkpoint_sync() returned: stores in @durable
 * (may be NULL) the applied index the sync covered, and removes the DIRTY
 * marker if nothing was written since kv_checkpoint_begin() (otherwise the
 * store stays dirty: writes made during the sync may be half on disk).
 * Returns 0, KV_EPOISONED (the sync failed, or never ran: the store is
 * poisoned), KV_ESTATE (no checkpoint begun) or KV_EIO (the marker could
 * not be removed; the store stays dirty, @durable still holds). */
int kv_checkpoint_end(struct kv_store *store,
                      struct kv_checkpoint *ckpt,
                      raft_index *durable);

/* ---------------------------------------------------------------------- */
/* Reading                                                                 */

struct kv_range_req
{
    const uint8_t *key; /* borrowed for the call */
    const uint8_t *end; /* borrowed; see struct kv_op for the meaning */
    uint32_t key_len;
    uint32_t end_len;
    /* KV_FLAG_PREFIX/REVERSE/COUNT_ONLY/KEYS_ONLY, KV_RANGE_NO_TOTAL */
    uint8_t flags;
    uint64_t limit; /* 0 = no limit (KV_RANGE_BYTES_MAX still applies) */
};

/* Results of kv_get() and kv_range(), owned by the result until
 * kv_range_result_free(). */
struct kv_range_result
{
    uint64_t revision;  /* store revision the read saw */
    raft_index applied; /* applied index the read saw */
    uint64_t count;     /* keys in the range (regardless of limit, unless
                         * KV_RANGE_NO_TOTAL) */
    bool more;          /* keys in the range beyond those returned */
    struct kv_kv *kvs;
    size_t n_kvs;
    /* Private. */
    struct kv_arena_chunk *arena;
    struct kv_allocator alloc;
};

/* Reads one key. @key is borrowed. Returns 0 with one pair in @res, or
 * KV_ENOTFOUND with none (res->revision still set); release @res either
 * way. kv_get() and kv_range() skip keys whose expiry (kv_kv.expire_at)
 * is at or below kv_wall_ms(), on every node, before the leader's entry
 * deleting them is applied. */
int kv_get(struct kv_store *store,
           const uint8_t *key,
           uint32_t key_len,
           struct kv_range_result *res);

/* Called by kv_get_many() for key @i: @kv is its pair (borrowed, valid
 * during the call) or NULL if it is absent or expired. A non-zero return
 * stops the reads and is returned by kv_get_many(). */
typedef int (*kv_get_fn)(void *arg, size_t i, const struct kv_kv *kv);

/* Reads @n keys (@keys[i], @lens[i] bytes; borrowed) in one read
 * transaction, so all of them come from one state of the store, calling
 * @fn for each in order. Far cheaper per key than kv_get() (one
 * transaction, no result to allocate): what MGET and EXEC use. Returns 0,
 * @fn's non-zero return, KV_EINVAL (an empty or overlong key) or a read
 * error. */
int kv_get_many(struct kv_store *store,
                size_t n,
                const uint8_t *const *keys,
                const uint32_t *lens,
                kv_get_fn fn,
                void *arg);

/* Reads a range in key order (reverse with KV_FLAG_REVERSE) in one read
 * transaction. @req is borrowed. Release @res with kv_range_result_free(),
 * also on failure. Returns 0, KV_EINVAL, KV_ENOMEM, KV_EBUSY or KV_EIO. */
int kv_range(struct kv_store *store,
             const struct kv_range_req *req,
             struct kv_range_result *res);

void kv_range_result_free(struct kv_range_result *res);

/* Fills @cmd with the KV_CMD_MEMBER command that records @addr (@addr_len
 * bytes) for member @id, or forgets @id's address if @addr is NULL. The
 * command borrows @key (where the id is written) and @addr. */
void kv_cmd_member(struct kv_cmd *cmd,
                   uint8_t key[8],
                   uint64_t id,
                   const void *addr,
                   uint32_t addr_len);

/* A recorded member address (KV_CMD_MEMBER). */
struct kv_member
{
    uint64_t id;
    uint32_t addr_len;
    uint8_t addr[KV_MEMBER_ADDR_MAX];
};

/* Reads the recorded member addresses, in id order, into @out (room for
 * @cap; KV_MEMBERS_MAX is always enough). Returns 0 with *@n set, or an
 * error. */
int kv_members(struct kv_store *store,
               struct kv_member *out,
               size_t cap,
               size_t *n);

/* The last ID sequence @name (@name_len bytes) handed out, read in a read
 * transaction: 0 if it has handed out none. Returns 0 or an error. */
int kv_sequence_last(struct kv_store *store,
                     const uint8_t *name,
                     uint32_t name_len,
                     uint64_t *last);

/* Forgets every recorded member address, outside the log (it changes no
 * applied index): for a store restored from a backup into a new cluster,
 * whose members are those of the restore, not those the old cluster
 * recorded. Durable after kv_checkpoint(). */
int kv_members_clear(struct kv_store *store);

/* ---------------------------------------------------------------------- */
/* Leases (kv_lease.c)                                                     */

/* A lease as the store holds it. @deadline is on the replicated lease
 * clock (ms): the lease ends once the leader's clock reaches it. */
struct kv_lease
{
    uint64_t id;
    uint64_t ttl_ms;
    uint64_t deadline;
    uint64_t keys; /* keys attached */
};

/* Reads lease @id into @out. Returns 0, KV_ENOTFOUND or an error. */
int kv_lease_get(struct kv_store *store, uint64_t id, struct kv_lease *out);

/* Reads the keys attached to lease @id, in key order, keys only, at most
 * @limit (0: no limit; KV_RANGE_BYTES_MAX still applies, @more tells).
 * Release @res with kv_range_result_free(), also on failure. Returns 0 or
 * an error (no keys, not an error, for an unknown lease). */
int kv_lease_keys(struct kv_store *store,
                  uint64_t id,
                  uint64_t limit,
                  struct kv_range_result *res);

/* Stores in @ids (room for @cap) the ids of the leases above @after, in
 * id order, and in *@n how many; *@more tells whether others follow.
 * Returns 0 or an error. */
int kv_lease_list(struct kv_store *store,
                  uint64_t after,
                  uint64_t *ids,
                  size_t cap,
                  size_t *n,
                  bool *more);

/* Stores in @ids (room for @cap) the ids of leases whose deadline is at
 * or below @clock, earliest deadline first, and in *@n how many: the
 * leader's expiry scan (one read of an index ordered by deadline).
 * Returns 0 or an error. */
int kv_lease_due(struct kv_store *store,
                 uint64_t clock,
                 uint64_t *ids,
                 size_t cap,
                 size_t *n);

/* Stores in @res (keys only, at most @max) the keys whose Redis expiry is
 * at or below @now_ms (wall-clock Unix ms), earliest first: the leader's
 * expiry scan. Release @res with kv_range_result_free(). Returns 0 or an
 * error. */
int kv_expire_due(struct kv_store *store,
                  uint64_t now_ms,
                  size_t max,
                  struct kv_range_result *res);

/* The wall clock kv_get() and kv_range() compare expiries with (Unix ms). */
uint64_t kv_wall_ms(void);

/* Reads the lock whose key prefix is @prefix (KV_OP_LOCK_ACQUIRE): its
 * holder's pair, with its value (the token is its create_revision), in
 * @res->kvs[0], and in @res->count the holder and its waiters. Returns 0,
 * KV_ENOTFOUND (nobody holds it; res->count 0) or an error. Release @res
 * with kv_range_result_free(), also on failure. */
/* Writes the key prefix of the lock (or, with @election, the election)
 * named @name (@len bytes, 1 to KV_LOCK_NAME_MAX) into @buf (room for
 * KV_LOCK_PREFIX_MAX) and its length into *@out_len. Returns 0 or
 * KV_EINVAL. */
int kv_lock_prefix(bool election,
                   const char *name,
                   size_t len,
                   uint8_t *buf,
                   uint32_t *out_len);

/* Writes the key of lease @lease's claim on the lock at @prefix into @key
 * (room for KV_KEY_BYTES_MAX), its length in *@key_len. */
void kv_lock_key(const uint8_t *prefix,
                 uint32_t prefix_len,
                 uint64_t lease,
                 uint8_t *key,
                 uint32_t *key_len);

/* Fills @cmd (zeroed first) with a lock command on the lock at @prefix
 * (borrowed): KV_CMD_LOCK_ACQUIRE for lease @id (KV_LOCK_TRY if
 * @try_only), or KV_CMD_LOCK_RELEASE of token @id. */
void kv_lock_cmd_init(struct kv_cmd *cmd,
                      uint8_t type,
                      const uint8_t *prefix,
                      uint32_t prefix_len,
                      uint64_t id,
                      bool try_only);

int kv_lock_owner(struct kv_store *store,
                  const uint8_t *prefix,
                  uint32_t prefix_len,
                  struct kv_range_result *res);

/* The replicated lease clock (ms) and the number of leases. Returns 0 or
 * an error. */
int kv_lease_clock(struct kv_store *store, uint64_t *clock, uint64_t *leases);

/* ---------------------------------------------------------------------- */
/* History (watches) and compaction                                        */

enum kv_event_type {
    KV_EVENT_PUT = 1,
    KV_EVENT_DELETE = 2,
};

/* A position in the history: the revision and the change's sequence number
 * inside that revision (a transaction or delete-range changes many keys at
 * one revision). */
struct kv_history_pos
{
    uint64_t revision;
    uint32_t seq;
};

struct kv_event
{
    uint8_t type; /* enum kv_event_type */
    uint32_t seq;
    struct kv_kv kv; /* for a deletion: key, mod_revision = the deletion's
                      * revision, version 0 and no value */
};

struct kv_history_result
{
    struct kv_event *events; /* in (revision, seq) order */
    size_t n_events;
    struct kv_history_pos next; /* where the next read should start */
    uint64_t revision;          /* store revision the read saw */
    bool more;                  /* events remain at or after @next */
    /* Private. */
    struct kv_arena_chunk *arena;
    struct kv_allocator alloc;
};

/* Reads at most @max_events events (0 = 1,000) at or after @from, in order,
 * and no more than KV_RANGE_BYTES_MAX bytes of keys and values (at least one
 * event).
 * Returns 0, KV_ECOMPACTED if @from.revision is below the compaction point
 * (@compact_revision, if not NULL, receives it), KV_EFUTURE if it is beyond
 * store revision + 1, KV_ENOMEM or KV_EIO. Release @res also on failure. */
int kv_history_read(struct kv_store *store,
                    struct kv_history_pos from,
                    size_t max_events,
                    struct kv_history_result *res,
                    uint64_t *compact_revision);

void kv_history_result_free(struct kv_history_result *res);

/* Removes history below @revision, in write transactions of at most
 * opts.compact_batch deletions each, so that it never holds the writer for
 * longer than one batch. The new compaction point is stored first (reads
 * below it fail from then on), so a crash leaves a pending compaction that
 * kv_compact() with any revision at or below the stored point resumes.
 * Returns 0, KV_EFUTURE if @revision is beyond the store revision, or an
 * error of kv_apply(). Local: a replicated store moves its point with a
 * KV_CMD_COMPACT entry and deletes with kv_compact_step() instead. */
int kv_compact(struct kv_store *store, uint64_t revision);

/* Deletes at most one batch (opts.compact_batch records) of the history
 * below the stored compaction point, in one write transaction, and sets
 * *@pending to whether any remains. Does nothing (and clears *@pending)
 * when no compaction is pending, which costs one read transaction. For
 * the driver, between applies: the records below the point are invisible
 * to every read already, so when they go does not change what any replica
 * answers. Returns 0 or an error of kv_apply(). */
int kv_compact_step(struct kv_store *store, bool *pending);

/* Gives the free pages of the store in directory @dir back to the file
 * system, offline: writes a compacted copy of the environment (LMDB's
 * MDB_CP_COMPACT, from a read transaction) as the next generation, syncs
 * it and makes it live by replacing DIR/CURRENT (one rename, so a crash
 * leaves the old or the new one, and kv_open() removes the other). The
 * store must not be open elsewhere: one with writes after its last
 * checkpoint (DIRTY: a node runs on it, or crashed) is refused with
 * KV_ESTATE. @before and @after (may be NULL) receive the data file's
 * bytes on disk before and after. Returns 0, KV_ESTATE, an error of
 * kv_open(), KV_EIO or KV_ENOSPC (room for the copy is needed
 * meanwhile). */
int kv_defrag(const char *dir,
              const struct kv_options *opts,
              uint64_t *before,
              uint64_t *after,
              char *errmsg,
              size_t errmsg_len);

/* ---------------------------------------------------------------------- */
/* Snapshots                                                               */

/* Bytes of the snapshot file header. */
#define KV_SNAPSHOT_HEADER_BYTES 64u
#define KV_SNAPSHOT_VERSION 1u

struct kv_snapshot_info
{
    raft_index applied; /* last log index the snapshot includes */
    uint64_t revision;
    uint64_t compact_revision;
    uint64_t payload_bytes; /* LMDB environment bytes after the header */
    uint64_t payload_hash;  /* XXH3-64 of the payload */
    uint64_t size;          /* header + payload: what is transferred */
};

struct kv_snapshot;

/* Writes a consistent, compacted copy of the store to @path (through
 * @path.tmp, synced and renamed) while writes go on, and opens it for
 * reading into @out (release with kv_snapshot_close()). Writers are held
 * back only until the copy's read transaction has started. @path is
 * borrowed. Returns 0, KV_EIO, KV_ENOSPC, KV_ENOMEM or KV_EINVAL. */
int kv_snapshot_create(struct kv_store *store,
                       const char *path,
                       struct kv_snapshot **out);

/* Opens an existing snapshot file and checks its header (not the payload;
 * see kv_snapshot_verify()). Returns 0, KV_EIO, KV_ECORRUPT or
 * KV_EVERSION. */
int kv_snapshot_open(const char *path,
                     const struct kv_allocator *alloc,
                     struct kv_snapshot **out,
                     char *errmsg,
                     size_t errmsg_len);

/* Reads the payload in chunks and checks its checksum. */
int kv_snapshot_verify(struct kv_snapshot *snap,
                       char *errmsg,
                       size_t errmsg_len);

const struct kv_snapshot_info *kv_snapshot_info(const struct kv_snapshot *s);

/* Copies up to @len bytes of the snapshot file from @offset into @buf and
 * stores the count in @n (0 at the end). Returns 0, KV_EINVAL or KV_EIO. */
int kv_snapshot_read_chunk(struct kv_snapshot *snap,
                           uint64_t offset,
                           uint8_t *buf,
                           size_t len,
                           size_t *n);

/* Closes the file; the snapshot file itself stays. */
void kv_snapshot_close(struct kv_snapshot *snap);

/* Starts receiving a snapshot into the store's staging directory,
 * discarding any earlier one. */
int kv_snapshot_stage_begin(struct kv_store *store);

/* Writes a received chunk at @offset. Chunks may be resent; an @offset
 * beyond the bytes received so far (a hole) is KV_EINVAL, as is anything
 * beyond the size the header announces. @data is borrowed. */
int kv_snapshot_stage_write(struct kv_store *store,
                            uint64_t offset,
                            const uint8_t *data,
                            size_t len);

/* Ends the transfer: checks the header, the size and the payload checksum,
 * syncs the staging files and stores the header in @info (may be NULL).
 * Returns 0, KV_ESTATE (nothing staged), KV_ECORRUPT (with a precise
 * message in kv_errmsg()), KV_EVERSION or KV_EIO. */
int kv_snapshot_stage_finish(struct kv_store *store,
                             struct kv_snapshot_info *info);

/* Replaces the live state with the finished staged snapshot, atomically
 * with respect to crashes: the new environment becomes live by one rename
 * of the CURRENT pointer, and kv_open() discards whatever an interrupted
 * install left behind. Afterwards the applied index, revision and history
 * come from the snapshot. No other call may be in progress. Returns 0,
 * KV_ESTATE, KV_ECORRUPT, KV_EIO or KV_ESTOPPED (test hook). */
int kv_snapshot_install(struct kv_store *store);

/* ---------------------------------------------------------------------- */
/* Hashes (kv_hash.c, docs/kv.md "Hashes")                                 */

/* Whether a field of @field_len bytes may be stored in a hash whose key
 * has @key_len bytes (the two share LMDB's key bound). */
bool kv_hash_field_fits(uint32_t key_len, uint32_t field_len);

/* The bytes of the packed list of KV_OP_HSET (@with_values) or KV_OP_HDEL
 * (fields only): each field as u32 length (little endian) and bytes, then
 * with values its value the same way. kv_hash_pairs_size() returns the
 * total for @n items (@fields/@values of @lens bytes), and
 * kv_hash_pairs_encode() writes them into @out, which has room for it. */
uint64_t kv_hash_pairs_size(size_t n,
                            const size_t *field_lens,
                            const size_t *value_lens);
void kv_hash_pairs_encode(size_t n,
                          const uint8_t *const *fields,
                          const size_t *field_lens,
                          const uint8_t *const *values,
                          const size_t *value_lens,
                          uint8_t *out);

/* Reads hash @key (@key_len bytes, borrowed) in one read transaction,
 * skipping it if its expiry has passed (as kv_get()). With @n > 0, the
 * values of fields @fields[0..n) (@field_lens bytes each): @res->kvs holds
 * n pairs in that order, a missing field's with a NULL value. With @n = 0,
 * every field after @after (@after_len bytes; 0: from the first), in field
 * order, at most @limit (0: no limit; KV_RANGE_BYTES_MAX still applies and
 * @res->more tells), without values if @keys_only. Either way
 * @res->count is the hash's field count and @res->revision the store
 * revision. Returns 0, KV_ENOTFOUND (no such key: an empty hash),
 * KV_EWRONGTYPE (the key holds a string), KV_ENOMEM, KV_EBUSY or
 * KV_ECORRUPT. Release @res with kv_range_result_free(), also on
 * failure. */
int kv_hash_read(struct kv_store *store,
                 const uint8_t *key,
                 uint32_t key_len,
                 const uint8_t *const *fields,
                 const uint32_t *field_lens,
                 size_t n,
                 const uint8_t *after,
                 uint32_t after_len,
                 uint64_t limit,
                 bool keys_only,
                 struct kv_range_result *res);

#endif /* BALLOT_KV_H */
