/*
 * kv_internal.h - what the files of kv/ share: the store object, the result
 * arena, byte-order helpers and the translation of LMDB codes.
 */
#ifndef BALLOT_KV_INTERNAL_H
#define BALLOT_KV_INTERNAL_H

#include <lmdb.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>

#include "kv.h"

/* Version of the on-disk layout of the LMDB databases (docs/kv.md).
 * Version 2 added a checksum to every "keys" and "history" record, version
 * 3 the lease and the expiry time of every key, version 4 the type of
 * every key (hashes); older stores are upgraded in place when they are
 * opened. */
#define KV_FORMAT_VERSION 4u
/* Named LMDB databases a store may have (mdb_env_set_maxdbs): those opened
 * in kv_open() plus room for new ones, so that adding one never makes a
 * newer store unreadable by mistake. */
#define KV_DBS_MAX 16u

/* Keys of the "meta" database. */
#define KV_META_FORMAT "format"
#define KV_META_APPLIED "applied"
#define KV_META_REVISION "revision"
#define KV_META_COMPACT "compact_rev"
#define KV_META_COMPACT_DONE "compact_done"
/* The store digest: the sum (mod 2^64) of the checksums of every "keys"
 * record, updated by each apply in its own transaction, so it is exact at
 * every applied index and the same on every replica (KV_CMD_DIGEST). */
#define KV_META_DIGEST "digest"
#define KV_META_LEASE_CLOCK "lease_clock"

/* Bytes of the metadata in front of a value in the "keys" database:
 * checksum, create_revision, mod_revision, version, lease, expire_at, type
 * (kv_record_encode()). */
#define KV_REC_HEADER 49u
/* Bytes of a "leases" value: ttl_ms, deadline, attached keys. */
#define KV_LEASE_REC 24u
/* Bytes of a "history" key: revision and sequence, big endian so that LMDB's
 * byte order is the numeric order. */
#define KV_HIST_KEY 12u
/* Bytes of a history record before the key: checksum, type, key length,
 * value length, create_revision, version (kv_hist_encode()). */
#define KV_HIST_HEADER 33u
/* Seed of the record checksums, so that a record's checksum is never the
 * plain XXH3 of its bytes (a page of zeros would otherwise check). */
#define KV_REC_SEED 0x62616c6c6f74u

struct kv_stage
{
    bool active;       /* stage_begin was called */
    bool finished;     /* stage_finish verified it */
    int data_fd;       /* stage/data.mdb, or -1 */
    uint64_t received; /* contiguous bytes received from offset 0 */
    uint8_t header[KV_SNAPSHOT_HEADER_BYTES];
    struct kv_snapshot_info info; /* parsed once the header is complete */
    bool have_info;
};

struct kv_store
{
    char *dir;    /* the store directory */
    uint64_t gen; /* generation CURRENT names: dir/env-<gen> */
    MDB_env *env;
    MDB_dbi dbi_meta;
    MDB_dbi dbi_keys;
    MDB_dbi dbi_hist;
    MDB_dbi dbi_sess;    /* client sessions: client id -> last request */
    MDB_dbi dbi_lru;     /* (last index, client id) of every session */
    MDB_dbi dbi_members; /* u64be member id -> address (KV_CMD_MEMBER) */
    MDB_dbi dbi_seqs;    /* sequence name -> u64le last ID (KV_CMD_SEQUENCE) */
    MDB_dbi dbi_acl;     /* user name -> user record (KV_CMD_ACL) */
    /* An ACL entry was applied in the write transaction being built; the
     * generation moves once it commits (kv_acl_generation()). */
    bool acl_changed;
    uint64_t acl_gen; /* atomic: read by any thread */
    /* The writer's last user read for an envelope (kv_acl_check()), so
     * that a run of one user's writes decodes its record once; dropped
     * whenever users may change. Writer thread only. */
    struct kv_acl_user *acl_last;
    bool acl_last_valid;
    bool acl_last_exists;
    MDB_dbi dbi_leases; /* u64be lease id -> ttl, deadline, keys */
    MDB_dbi dbi_lkeys;  /* u64be lease id + key -> empty */
    MDB_dbi dbi_ldue;   /* u64be deadline + u64be lease id -> empty */
    MDB_dbi dbi_edue;   /* u64be expire_at + key -> empty (Redis expiry) */
    /* u16be key length + hash key + field -> checksum + value (kv_hash.c) */
    MDB_dbi dbi_hfields;
    struct kv_options opts;
    struct kv_allocator alloc;
    bool poisoned;
    bool dirty;               /* DIR/DIRTY exists: writes since a sync */
    uint64_t writes;          /* write transactions begun (kv_mark_dirty) */
    bool ckpt_begun;          /* kv_checkpoint_begin() without _end() */
    uint64_t reserved;        /* data file bytes known to have disk blocks */
    bool reserve_unsupported; /* the file system cannot fallocate */
    struct kv_stage stage;
    pthread_mutex_t err_lock;
    char errmsg[256];
    /* Set once a read found a record or a page damaged (kv_corrupt_found());
     * from then on every read and write is refused with KV_ECORRUPT, so
     * nothing of the damaged store is served. Under err_lock: the message. */
    atomic_bool corrupt;
    char corrupt_msg[256];
};

/* kv_acl.c: applies a KV_CMD_ACL op in @txn. *@refused receives an
 * entry code (the op is malformed or a limit is reached: nothing changed)
 * and *@found whether the user existed. Returns 0 or a store error. */
int kv_acl_apply(struct kv_store *s,
                 MDB_txn *txn,
                 const struct kv_op *op,
                 int *refused,
                 bool *found);
/* Whether @cmd's ACL envelope allows it at this point of the log (true
 * without an envelope). Returns 0 or a store error. */
int kv_acl_check(struct kv_store *s,
                 MDB_txn *txn,
                 const struct kv_cmd *cmd,
                 bool *allowed);
/* Moves the ACL generation on (after a commit that changed users), and
 * drops the writer's cached user. */
void kv_acl_bump(struct kv_store *s);
/* Frees the writer's cached user (kv_close()). */
void kv_acl_free(struct kv_store *s);

/* Allocation through the store's hooks. */
void *kv_malloc(const struct kv_allocator *a, size_t size);
void *kv_realloc(const struct kv_allocator *a, void *ptr, size_t size);
void kv_free(const struct kv_allocator *a, void *ptr);
/* Fills in C library functions for NULL members. */
void kv_allocator_resolve(const struct kv_allocator *in,
                          struct kv_allocator *out);

/* A bump allocator for results: many small copies, one release. */
struct kv_arena_chunk
{
    struct kv_arena_chunk *next;
    size_t used;
    size_t cap;
    /* data follows, 8-byte aligned */
};
void *kv_arena_alloc(struct kv_arena_chunk **arena,
                     const struct kv_allocator *a,
                     size_t size);
void kv_arena_free(struct kv_arena_chunk **arena, const struct kv_allocator *a);
/* Grows an array of @elem-byte elements held outside the arena. */
int kv_array_grow(const struct kv_allocator *a,
                  void **array,
                  size_t *cap,
                  size_t need,
                  size_t elem);

/* Records an error message ("kv: " + formatted) and returns @code. */
int kv_set_error(struct kv_store *store, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Records that the live store is damaged (see struct kv_store.corrupt),
 * with a message ("keys: record of key 'x': checksum mismatch"), and
 * returns KV_ECORRUPT. Safe on any thread. */
int kv_corrupt_found(struct kv_store *store, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Translates an LMDB or errno code to a kv code, recording @what. */
int kv_mdb_error(struct kv_store *store, int rc, const char *what);
/* Translates an errno value. */
int kv_errno_code(int err);

/* Little-endian and big-endian integer helpers. */
static inline void kv_put_u64le(uint8_t *p, uint64_t v)
{
    for (unsigned i = 0; i < 8; i++) {
        p[i] = (uint8_t)(v >> (8 * i));
    }
}
static inline uint64_t kv_get_u64le(const uint8_t *p)
{
    uint64_t v = 0;
    for (unsigned i = 0; i < 8; i++) {
        v |= (uint64_t)p[i] << (8 * i);
    }
    return v;
}
static inline void kv_put_u32le(uint8_t *p, uint32_t v)
{
    for (unsigned i = 0; i < 4; i++) {
        p[i] = (uint8_t)(v >> (8 * i));
    }
}
static inline uint32_t kv_get_u32le(const uint8_t *p)
{
    uint32_t v = 0;
    for (unsigned i = 0; i < 4; i++) {
        v |= (uint32_t)p[i] << (8 * i);
    }
    return v;
}
static inline void kv_put_u64be(uint8_t *p, uint64_t v)
{
    for (unsigned i = 0; i < 8; i++) {
        p[i] = (uint8_t)(v >> (56 - 8 * i));
    }
}
static inline uint64_t kv_get_u64be(const uint8_t *p)
{
    uint64_t v = 0;
    for (unsigned i = 0; i < 8; i++) {
        v = (v << 8) | p[i];
    }
    return v;
}
static inline void kv_put_u32be(uint8_t *p, uint32_t v)
{
    for (unsigned i = 0; i < 4; i++) {
        p[i] = (uint8_t)(v >> (24 - 8 * i));
    }
}
static inline uint32_t kv_get_u32be(const uint8_t *p)
{
    uint32_t v = 0;
    for (unsigned i = 0; i < 4; i++) {
        v = (v << 8) | p[i];
    }
    return v;
}

/* Metadata values in the "meta" database (u64 little endian). A missing
 * key reads as 0. */
int kv_meta_get(struct kv_store *store,
                MDB_txn *txn,
                const char *name,
                uint64_t *value);
int kv_meta_put(struct kv_store *store,
                MDB_txn *txn,
                const char *name,
                uint64_t value);

/* Begins a read transaction, translating errors. */
int kv_read_begin(struct kv_store *store, MDB_txn **txn);

/* Resolves a range request to concrete bounds: [*start, *end) where an
 * *end_len of 0 means "no upper bound" and *single means only @key. The
 * prefix end is written into @end_buf (KV_KEY_BYTES_MAX bytes). */
struct kv_bounds
{
    const uint8_t *start;
    uint32_t start_len;
    const uint8_t *end;
    uint32_t end_len;
    bool single;
    bool unbounded; /* no upper bound */
    bool empty;     /* nothing can match */
};
void kv_bounds_resolve(const uint8_t *key,
                       uint32_t key_len,
                       const uint8_t *end,
                       uint32_t end_len,
                       uint8_t flags,
                       uint8_t *end_buf,
                       struct kv_bounds *b);

/* Runs a range read inside @txn (read or write), copying results into
 * @arena. Shared by kv_range() and transactions. Keys whose expiry is at
 * or below @now_ms are skipped (0: none is; apply passes 0, as it never
 * reads a clock). */
int kv_range_in_txn(struct kv_store *store,
                    MDB_txn *txn,
                    uint64_t now_ms,
                    const uint8_t *key,
                    uint32_t key_len,
                    const uint8_t *end,
                    uint32_t end_len,
                    uint8_t flags,
                    uint64_t limit,
                    struct kv_arena_chunk **arena,
                    const struct kv_allocator *alloc,
                    struct kv_kv **kvs,
                    size_t *n_kvs,
                    uint64_t *count,
                    bool *more);

/* The one encoder and decoder of "keys" records (kv_store.c):
 *
 *   off  0  u64  XXH3-64 of the bytes from offset 8 on, seeded with the
 *                XXH3-64 of the key (seed KV_REC_SEED): a flipped bit in
 *                the value, the revisions or the key is caught
 *   off  8  u64  create_revision
 *   off 16  u64  mod_revision
 *   off 24  u64  version
 *   off 32  u64  lease (0: none)
 *   off 40  u64  expire_at (Unix ms, 0: never)
 *   off 48  u8   type (enum kv_value_type)
 *   off 49       value
 *
 * kv_record_encode() writes the record of @kv (KV_REC_HEADER + value_len
 * bytes) into @p. kv_record_decode() checks the record and fills @kv with
 * pointers into LMDB memory; KV_ECORRUPT if it is malformed or its checksum
 * does not match. */
void kv_record_encode(const struct kv_kv *kv, uint8_t *p);
/* The checksum of an encoded "keys" record (what the store digest sums). */
static inline uint64_t kv_record_sum(const MDB_val *val)
{
    return kv_get_u64le(val->mv_data);
}
int kv_record_decode(const MDB_val *key, const MDB_val *val, struct kv_kv *kv);

/* The one encoder and decoder of "history" records (kv_store.c), keyed by
 * (revision, seq) big endian:
 *
 *   off  0  u64  XXH3-64 of the bytes from offset 8 on, seeded with the
 *                XXH3-64 of the history key (seed KV_REC_SEED)
 *   off  8  u8   type (enum kv_event_type)
 *   off  9  u32  key length
 *   off 13  u32  value length
 *   off 17  u64  create_revision
 *   off 25  u64  version
 *   off 33       key, then value
 *
 * kv_hist_encode() writes the record of @kv at history key @hkey
 * (KV_HIST_HEADER + key_len + value_len bytes) into @p; kv_hist_decode()
 * checks one and fills @ev with pointers into LMDB memory, KV_ECORRUPT if
 * it is malformed or its checksum does not match. */
void kv_hist_encode(const uint8_t *hkey,
                    uint8_t type,
                    const struct kv_kv *kv,
                    uint8_t *p);
int kv_hist_decode(const MDB_val *k, const MDB_val *v, struct kv_event *ev);

/* Moves @key's entry in the expiry index from @old_at to @new_at (0: no
 * entry). */
int kv_expire_index(struct kv_store *s,
                    MDB_txn *txn,
                    const uint8_t *key,
                    uint32_t key_len,
                    uint64_t old_at,
                    uint64_t new_at);

/* Lease records inside a write transaction (kv_lease.c), for kv_apply. */
int kv_lease_rec_get(struct kv_store *s,
                     MDB_txn *txn,
                     uint64_t id,
                     struct kv_lease *out);
/* Stores @l; @old_deadline is the deadline it had (0: a new lease), whose
 * entry of the deadline index is replaced. */
int kv_lease_rec_put(struct kv_store *s,
                     MDB_txn *txn,
                     const struct kv_lease *l,
                     uint64_t old_deadline);
/* Deletes @l's record and its deadline entry (not its keys). */
int kv_lease_rec_del(struct kv_store *s,
                     MDB_txn *txn,
                     const struct kv_lease *l);
/* Attaches (@attach) or detaches @key to/from lease @id, counting it in the
 * lease's record; a lease that no longer exists is skipped. */
int kv_lease_attach(struct kv_store *s,
                    MDB_txn *txn,
                    uint64_t id,
                    const uint8_t *key,
                    uint32_t key_len,
                    bool attach);
/* The first key attached to lease @id, copied into @key (room for
 * KV_KEY_BYTES_MAX); KV_ENOTFOUND when none is left. */
int kv_lease_first_key(struct kv_store *s,
                       MDB_txn *txn,
                       uint64_t id,
                       uint8_t *key,
                       uint32_t *key_len);
/* Locks (kv_lock.c). The holders and waiters of the lock at @prefix, read
 * in @txn: @holder is the one with the lowest create_revision, @mine the
 * one of lease @lease (if not 0) or with create_revision @token (if not
 * 0), each NULL if none; @n counts them all. Pairs are keys only, copied
 * into @arena. */
struct kv_lock_view
{
    const struct kv_kv *holder;
    const struct kv_kv *mine;
    uint32_t n;
};
int kv_lock_scan(struct kv_store *s,
                 MDB_txn *txn,
                 const uint8_t *prefix,
                 uint32_t prefix_len,
                 uint64_t lease,
                 uint64_t token,
                 struct kv_arena_chunk **arena,
                 const struct kv_allocator *alloc,
                 struct kv_lock_view *out);
/* Whether @cmd's fence holds at this point of the log: its token is the
 * create_revision of its lock's holder. */
int kv_lock_fence_holds(struct kv_store *s,
                        MDB_txn *txn,
                        const struct kv_cmd *cmd,
                        bool *holds);
/* Raises the stored lease clock to @clock if that is higher. */
int kv_lease_clock_raise(struct kv_store *s, MDB_txn *txn, uint64_t clock);
/* Copies @src's bytes into @arena; without the value if !with_value. */
int kv_kv_copy(struct kv_arena_chunk **arena,
               const struct kv_allocator *a,
               const struct kv_kv *src,
               bool with_value,
               struct kv_kv *dst);

/* A list of pairs being read into a kv_range_result (the expiry and
 * lease indexes' listings): kv_kv_list_add() copies one pair's bytes into
 * @res's arena and keeps the pair in a growing array outside it;
 * kv_kv_list_finish() moves the array into the arena as @res->kvs (and
 * n_kvs, count). kv_kv_list_free() releases the array, finished or not. */
struct kv_kv_list
{
    struct kv_kv *kvs;
    size_t cap;
};
int kv_kv_list_add(struct kv_store *s,
                   struct kv_kv_list *l,
                   struct kv_range_result *res,
                   const struct kv_kv *one);
int kv_kv_list_finish(struct kv_store *s,
                      struct kv_kv_list *l,
                      struct kv_range_result *res);
void kv_kv_list_free(struct kv_store *s, struct kv_kv_list *l);

/* Longest text Redis reads as a long double (MAX_LONG_DOUBLE_CHARS), and
 * so the longest value a number op (INCRBYFLOAT, HINCRBYFLOAT) writes. */
#define KV_RMW_TEXT_MAX (5u * 1024u)

/* Hash fields (kv_hash.c). A field record, keyed by
 *
 *   u16be  hash key length, hash key, field
 *
 * so that one hash's fields are contiguous and in field order, holds
 *
 *   off 0  u64  XXH3-64 of the value, seeded with the XXH3-64 of the
 *               record's key (seed KV_REC_SEED), like a "keys" record
 *   off 8       value
 *
 * The store digest sums these checksums too, so a scrub's sum covers every
 * field. */
#define KV_FIELD_HEADER 8u
/* The checksum a record body gets under @key (kv_store.c): XXH3-64 of
 * @body seeded with the XXH3-64 of @key. */
uint64_t kv_rec_sum(const void *key,
                    size_t key_len,
                    const uint8_t *body,
                    size_t body_len);
/* Deletes every field of hash @key, taking their checksums out of
 * *@digest. Returns 0 or an error. */
int kv_hash_drop(struct kv_store *s,
                 MDB_txn *txn,
                 const uint8_t *key,
                 uint32_t key_len,
                 uint64_t *digest);
/* What a hash op did to the fields (kv_hash_apply_fields()). */
#define KV_HASH_ANSWER_MAX KV_RMW_TEXT_MAX
struct kv_hash_outcome
{
    uint64_t count_after; /* the hash's field count after the op */
    bool changed;         /* a field was written or removed */
    uint64_t refusal;     /* enum kv_rmw_refusal; then nothing written */
    uint32_t answer_len;
    char answer[KV_HASH_ANSWER_MAX]; /* the op's answer, decimal text */
};
/* Applies the field updates of hash op @op to the hash at op->key, which
 * has @count fields (0: missing): writes the fields, keeps *@digest up to
 * date and fills @out. Returns 0 or an environment error. */
int kv_hash_apply_fields(struct kv_store *s,
                         MDB_txn *txn,
                         const struct kv_op *op,
                         uint64_t count,
                         uint64_t *digest,
                         struct kv_hash_outcome *out);
/* Whether the field record @v stored under @k checks (its length and
 * checksum). */
bool kv_field_ok(const MDB_val *k, const MDB_val *v);
/* Checks a hash op's packed list against the rules of the decoder:
 * well-formed, every field fits (kv_hash_field_fits()), and HSETNX with
 * one pair. Returns 0 or KV_EBADCMD. */
int kv_hash_op_check(const struct kv_op *op);
/* The number of items in a checked hash op's packed list. */
uint32_t kv_hash_op_items(const struct kv_op *op);
/* Evaluates an increment of a number text as kv_rmw_eval() does
 * (KV_OP_INCRBY with @delta, or KV_OP_INCRBYFLOAT with @incr): the shared
 * arithmetic of INCRBY and HINCRBY. */
int kv_rmw_eval_number(uint8_t type,
                       const uint8_t *old,
                       uint32_t old_len,
                       bool exists,
                       int64_t delta,
                       const uint8_t *incr,
                       uint32_t incr_len,
                       char *out,
                       size_t cap,
                       uint32_t *out_len,
                       uint64_t *refusal);

/* Parses a whole canonical decimal 64-bit integer as Redis does: 0 or
 * -1. */
int kv_rmw_parse_i64(const uint8_t *s, size_t len, int64_t *out);

/* Opens the LMDB environment of generation directory @path into @store. */
int kv_env_open(struct kv_store *store, const char *path);
void kv_env_close(struct kv_store *store);

/* Makes sure disk blocks exist for everything a write transaction can
 * touch, so that a full disk is KV_ENOSPC before the transaction starts
 * instead of a SIGBUS in the middle of it (the map is written through,
 * MDB_WRITEMAP): the pages it may copy (@changes keys changed, each a path
 * through the keys and history trees, plus @entries session records; any
 * number of pages if @changes is UINT64_MAX), what its @batch_bytes of
 * commands bring, and a fixed headroom. Never more than the used size can
 * be copied, so a transaction needs at most twice the used size. */
int kv_reserve(struct kv_store *store,
               uint64_t batch_bytes,
               uint64_t entries,
               uint64_t changes);

/* Writes back bytes [from, to) of @fd in chunks of opts.writeback_chunk,
 * waiting for each, so that a bulk write never holds more than a chunk
 * ahead of other syncs on the disk. Not a sync: no metadata, no cache
 * flush. Returns 0 or a kv code; an I/O error here must fail the sync it
 * precedes (it would not be reported again). */
int kv_writeback(struct kv_store *store, int fd, uint64_t from, uint64_t to);

/* DIR/DIRTY records, before the first write after a checkpoint, that the
 * environment has unsynced changes, and the boot it happened in; a
 * checkpoint that covered every write removes it. kv_open() refuses a store
 * that is dirty from an earlier boot. kv_mark_dirty() is called before every
 * write transaction and also counts them (kv_checkpoint_end() compares the
 * count). */
int kv_mark_dirty(struct kv_store *store);
int kv_mark_clean(struct kv_store *store);

/* Client sessions (kv_session.c). kv_session_check() decides, before a
 * command with a request id runs, whether it runs (*run); if not, @er says
 * why, holding the stored outcome of a duplicate (copied into @arena).
 * kv_session_record() makes (client_id, seq) the client's last applied
 * request, kept with the command's reply or, for keep_result, with @er
 * (whose revision is the one after the entry). */
int kv_session_check(struct kv_store *s,
                     MDB_txn *txn,
                     uint64_t index,
                     const struct kv_cmd *cmd,
                     struct kv_entry_result *er,
                     struct kv_arena_chunk **arena,
                     const struct kv_allocator *alloc,
                     bool *run);
int kv_session_record(struct kv_store *s,
                      MDB_txn *txn,
                      const struct kv_cmd *cmd,
                      const struct kv_entry_result *er,
                      uint64_t index);

/* Applies a KV_CMD_MEMBER operation (kv_members.c). Returns 0, with
 * *@refused set to a kv code if the command is refused as a whole (the
 * table is full), or an environment error. */
int kv_member_apply(struct kv_store *s,
                    MDB_txn *txn,
                    const struct kv_op *op,
                    int *refused);

/* Applies a KV_OP_SEQUENCE operation (kv_sequence.c) into @r. Returns 0
 * (the refusal, if any, in @r->count) or an environment error. */
int kv_sequence_apply(struct kv_store *s,
                      MDB_txn *txn,
                      const struct kv_op *op,
                      struct kv_arena_chunk **arena,
                      const struct kv_allocator *alloc,
                      struct kv_op_result *r);

/* fsyncs a directory. */
int kv_fsync_dir(const char *path);
/* Removes a directory and the plain files in it (no recursion deeper). */
int kv_remove_dir(const char *path);
/* Formats a path into a new allocation. */
char *kv_path(const struct kv_allocator *a, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Reads DIR/CURRENT: 0 with *gen, KV_ENOTFOUND if missing, KV_ECORRUPT. */
int kv_current_read(struct kv_store *store, uint64_t *gen);
/* Removes every generation but @keep (0: all), a stage and a CURRENT.tmp. */
int kv_dir_cleanup(struct kv_store *store, uint64_t keep);
/* Refuses (KV_ETORN) a store left dirty by an earlier boot. */
int kv_dirty_check(struct kv_store *store);

/* Points DIR/CURRENT at generation @gen (write, fsync, rename, fsync). */
int kv_current_write(struct kv_store *store, uint64_t gen);

/* The snapshot file's header (kv_snapshot.c): writes the
 * KV_SNAPSHOT_HEADER_BYTES of @info into @h; parses and checks one,
 * returning 0, KV_ECORRUPT or KV_EVERSION with what is wrong in @msg. */
void kv_snapshot_header_encode(const struct kv_snapshot_info *info, uint8_t *h);
int kv_snapshot_header_decode(const uint8_t *h,
                              struct kv_snapshot_info *info,
                              char *msg,
                              size_t msg_len);

/* Stage helpers used by kv_open()/kv_close(). */
void kv_stage_reset(struct kv_store *store);

#endif /* BALLOT_KV_INTERNAL_H */
