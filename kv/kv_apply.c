/*
 * kv_apply.c - applying committed entries to the store.
 *
 * A batch is applied in one LMDB write transaction that also stores the last
 * applied index, so after a crash the store is exactly at some index i and
 * replaying the WAL from i + 1 is exact. Everything an entry does depends
 * only on the store and the entry's bytes, so every replica computes the
 * same state and the same results; environment failures (map full, I/O,
 * memory) abort the whole batch instead of being recorded per entry,
 * because they differ between replicas.
 */
#include <stdio.h>
#include <string.h>

#include "kv_internal.h"

/* State of one entry being executed. */
struct exec
{
    struct kv_store *s;
    MDB_txn *txn;
    MDB_cursor *keys; /* on "keys", kept for the whole batch */
    uint64_t rev;     /* the revision a change of this entry gets */
    bool changed;     /* some key changed: the store revision moves */
    uint32_t seq;     /* next history sequence number at @rev */
    struct kv_arena_chunk **arena;
    const struct kv_allocator *alloc;
    /* The store digest (KV_META_DIGEST): the sum of the checksums of every
     * "keys" record, kept up to date by each put and delete. */
    uint64_t *digest;
};

static int hist_put(struct exec *x, uint8_t type, const struct kv_kv *kv)
{
    uint8_t kbuf[KV_HIST_KEY];
    MDB_val k = {KV_HIST_KEY, kbuf};
    MDB_val v;
    int rc;
    kv_put_u64be(kbuf, x->rev);
    kv_put_u32be(kbuf + 8, x->seq);
    v.mv_size = KV_HIST_HEADER + (size_t)kv->key_len + kv->value_len;
    v.mv_data = NULL;
    rc = mdb_put(x->txn, x->s->dbi_hist, &k, &v, MDB_RESERVE | MDB_APPEND);
    if (rc != 0) {
        return kv_mdb_error(x->s, rc, "history put");
    }
    kv_hist_encode(kbuf, type, kv, v.mv_data);
    x->seq++;
    x->changed = true;
    return 0;
}

/* Looks a key up in the write transaction. Returns 0 (found), KV_ENOTFOUND
 * or an error. */
static int key_lookup(struct exec *x,
                      const uint8_t *key,
                      uint32_t key_len,
                      struct kv_kv *kv,
                      uint64_t *sum)
{
    MDB_val k = {key_len, (void *)key};
    MDB_val v;
    int rc = mdb_get(x->txn, x->s->dbi_keys, &k, &v);
    if (rc == MDB_NOTFOUND) {
        return KV_ENOTFOUND;
    }
    if (rc != 0) {
        return kv_mdb_error(x->s, rc, "get");
    }
    if (kv_record_decode(&k, &v, kv) != 0) {
        return kv_corrupt_found(x->s,
                                "keys: record of a %u-byte key is damaged",
                                (unsigned)key_len);
    }
    if (sum != NULL) {
        *sum = kv_record_sum(&v);
    }
    return 0;
}

/* Stores one previous pair in @r (its only pair, for put and delete). */
static int keep_prev(struct exec *x,
                     struct kv_op_result *r,
                     const struct kv_kv *old)
{
    struct kv_kv *kv = kv_arena_alloc(x->arena, x->alloc, sizeof(*kv));
    if (kv == NULL) {
        return KV_ENOMEM;
    }
    int rv = kv_kv_copy(x->arena, x->alloc, old, true, kv);
    if (rv != 0) {
        return rv;
    }
    r->kvs = kv;
    r->n_kvs = 1;
    return 0;
}

/* Puts with one descent of the tree in both cases: an insert attempt that
 * finds the key (MDB_NOOVERWRITE) leaves the cursor on it and returns the
 * old record, and the update then replaces the record under the cursor
 * (MDB_CURRENT). The record gets value type @type; a hash overwritten by
 * a string loses its fields (Redis's SET replaces a value of any type). */
static int put_typed(struct exec *x,
                     const struct kv_op *op,
                     struct kv_op_result *r,
                     uint8_t type)
{
    struct kv_kv old;
    struct kv_kv kv;
    MDB_val k = {op->key_len, (void *)op->key};
    MDB_val v = {KV_REC_HEADER + (size_t)op->value_len, NULL};
    uint64_t old_lease = 0, old_expire = 0;
    bool keep = (op->flags & KV_FLAG_KEEP_TTL) != 0;
    int rv;
    kv.key = op->key;
    kv.key_len = op->key_len;
    kv.value = op->value;
    kv.value_len = op->value_len;
    kv.create_revision = x->rev;
    kv.mod_revision = x->rev;
    kv.version = 1;
    kv.lease = op->lease;
    kv.expire_at = op->expire_at;
    kv.type = type;
    bool drop_fields = false;
    int rc = mdb_cursor_put(x->keys, &k, &v, MDB_NOOVERWRITE | MDB_RESERVE);
    if (rc == MDB_KEYEXIST) {
        if (kv_record_decode(&k, &v, &old) != 0) {
            return kv_corrupt_found(x->s,
                                    "keys: record of a %u-byte key is damaged",
                                    (unsigned)op->key_len);
        }
        if ((op->flags & KV_FLAG_PREV_KV) && old.type == KV_TYPE_HASH &&
            type != KV_TYPE_HASH) {
            /* GETSET, SET ... GET: the old value is read as a string. */
            r->count = KV_RMW_WRONGTYPE;
            return 0;
        }
        /* The old record lives in a page the next put may change: take
         * what is needed from it first. */
        if ((op->flags & KV_FLAG_PREV_KV) &&
            (rv = keep_prev(x, r, &old)) != 0) {
            return rv;
        }
        kv.create_revision = old.create_revision;
        kv.version = old.version + 1;
        *x->digest -= kv_record_sum(&v);
        old_lease = old.lease;
        old_expire = old.expire_at;
        drop_fields = old.type == KV_TYPE_HASH && type != KV_TYPE_HASH;
        if (keep) {
            kv.lease = old.lease;
            kv.expire_at = old.expire_at;
        }
        v.mv_size = KV_REC_HEADER + (size_t)op->value_len;
        v.mv_data = NULL;
        rc = mdb_cursor_put(x->keys, &k, &v, MDB_CURRENT | MDB_RESERVE);
    }
    if (rc != 0) {
        return kv_mdb_error(x->s, rc, "put");
    }
    /* The reserved room must be filled before any other write. */
    kv_record_encode(&kv, v.mv_data);
    *x->digest += kv_record_sum(&v);
    if (drop_fields && (rv = kv_hash_drop(x->s, x->txn, op->key, op->key_len,
                                          x->digest)) != 0) {
        return rv;
    }
    if (old_expire != kv.expire_at &&
        (rv = kv_expire_index(x->s, x->txn, op->key, op->key_len, old_expire,
                              kv.expire_at)) != 0) {
        return rv;
    }
    if (old_lease != kv.lease) {
        if (old_lease != 0 &&
            (rv = kv_lease_attach(x->s, x->txn, old_lease, op->key, op->key_len,
                                  false)) != 0) {
            return rv;
        }
        if (kv.lease != 0 &&
            (rv = kv_lease_attach(x->s, x->txn, kv.lease, op->key, op->key_len,
                                  true)) != 0) {
            return rv;
        }
    }
    return hist_put(x, KV_EVENT_PUT, &kv);
}

static int do_put(struct exec *x,
                  const struct kv_op *op,
                  struct kv_op_result *r)
{
    return put_typed(x, op, r, KV_TYPE_STRING);
}

/* Records the deletion of @key (already removed) in the history. */
static int hist_delete(struct exec *x, const uint8_t *key, uint32_t key_len)
{
    struct kv_kv tomb;
    memset(&tomb, 0, sizeof(tomb));
    tomb.key = key;
    tomb.key_len = key_len;
    tomb.mod_revision = x->rev;
    return hist_put(x, KV_EVENT_DELETE, &tomb);
}

static int do_delete(struct exec *x,
                     const struct kv_op *op,
                     struct kv_op_result *r)
{
    struct kv_kv old;
    MDB_val k = {op->key_len, (void *)op->key};
    uint64_t sum = 0;
    int rv = key_lookup(x, op->key, op->key_len, &old, &sum);
    int rc;
    if (rv == KV_ENOTFOUND) {
        return 0;
    }
    if (rv != 0) {
        return rv;
    }
    if ((op->flags & KV_FLAG_PREV_KV) && old.type == KV_TYPE_HASH) {
        /* GETDEL: the old value is read as a string. */
        r->count = KV_RMW_WRONGTYPE;
        return 0;
    }
    if ((op->flags & KV_FLAG_PREV_KV) && (rv = keep_prev(x, r, &old)) != 0) {
        return rv;
    }
    uint64_t lease = old.lease;
    uint64_t expire_at = old.expire_at;
    bool hash = old.type == KV_TYPE_HASH;
    if ((rc = mdb_del(x->txn, x->s->dbi_keys, &k, NULL)) != 0) {
        return kv_mdb_error(x->s, rc, "delete");
    }
    *x->digest -= sum;
    r->count = 1;
    if (hash && (rv = kv_hash_drop(x->s, x->txn, op->key, op->key_len,
                                   x->digest)) != 0) {
        return rv;
    }
    if (expire_at != 0 &&
        (rv = kv_expire_index(x->s, x->txn, op->key, op->key_len, expire_at,
                              0)) != 0) {
        return rv;
    }
    if (lease != 0 && (rv = kv_lease_attach(x->s, x->txn, lease, op->key,
                                            op->key_len, false)) != 0) {
        return rv;
    }
    return hist_delete(x, op->key, op->key_len);
}

static int do_delete_range(struct exec *x,
                           const struct kv_op *op,
                           struct kv_op_result *r)
{
    uint8_t end_buf[KV_KEY_BYTES_MAX];
    uint8_t key_copy[KV_KEY_BYTES_MAX];
    struct kv_bounds b;
    struct kv_kv *prev = NULL;
    size_t n_prev = 0, cap_prev = 0;
    MDB_cursor *cur = NULL;
    MDB_val k, v;
    int rv = 0;
    int rc;

    kv_bounds_resolve(op->key, op->key_len, op->end, op->end_len, op->flags,
                      end_buf, &b);
    if (b.empty) {
        return 0;
    }
    if (b.single) {
        struct kv_op one = *op;
        one.type = KV_OP_DELETE;
        return do_delete(x, &one, r);
    }
    if ((rc = mdb_cursor_open(x->txn, x->s->dbi_keys, &cur)) != 0) {
        return kv_mdb_error(x->s, rc, "delete-range cursor");
    }
    if (b.start_len == 0) {
        rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST);
    } else {
        k.mv_size = b.start_len;
        k.mv_data = (void *)b.start;
        rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
    }
    while (rc == 0) {
        if (!b.unbounded) {
            size_t n = k.mv_size < b.end_len ? k.mv_size : b.end_len;
            int c = n > 0 ? memcmp(k.mv_data, b.end, n) : 0;
            if (c > 0 || (c == 0 && k.mv_size >= b.end_len)) {
                break;
            }
        }
        if (k.mv_size > KV_KEY_BYTES_MAX) {
            rv = kv_set_error(x->s, KV_ECORRUPT, "keys: oversized key");
            goto cleanup;
        }
        uint32_t key_len = (uint32_t)k.mv_size;
        memcpy(key_copy, k.mv_data, key_len);
        struct kv_kv old;
        if (kv_record_decode(&k, &v, &old) != 0) {
            rv = kv_corrupt_found(x->s, "keys: a record is damaged");
            goto cleanup;
        }
        uint64_t sum = kv_record_sum(&v);
        uint64_t lease = old.lease;
        uint64_t expire_at = old.expire_at;
        bool hash = old.type == KV_TYPE_HASH;
        if (op->flags & KV_FLAG_PREV_KV) {
            if ((rv = kv_array_grow(x->alloc, (void **)&prev, &cap_prev,
                                    n_prev + 1, sizeof(*prev))) != 0 ||
                (rv = kv_kv_copy(x->arena, x->alloc, &old, true,
                                 &prev[n_prev])) != 0) {
                goto cleanup;
            }
            n_prev++;
        }
        if ((rc = mdb_cursor_del(cur, 0)) != 0) {
            rv = kv_mdb_error(x->s, rc, "delete-range");
            goto cleanup;
        }
        *x->digest -= sum;
        r->count++;
        if (hash && (rv = kv_hash_drop(x->s, x->txn, key_copy, key_len,
                                       x->digest)) != 0) {
            goto cleanup;
        }
        if (lease != 0 && (rv = kv_lease_attach(x->s, x->txn, lease, key_copy,
                                                key_len, false)) != 0) {
            goto cleanup;
        }
        if (expire_at != 0 &&
            (rv = kv_expire_index(x->s, x->txn, key_copy, key_len, expire_at,
                                  0)) != 0) {
            goto cleanup;
        }
        if ((rv = hist_delete(x, key_copy, key_len)) != 0) {
            goto cleanup;
        }
        /* After a deletion LMDB's cursor already rests on the next pair;
         * MDB_NEXT returns it without moving. */
        rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
    }
    if (rc != 0 && rc != MDB_NOTFOUND) {
        rv = kv_mdb_error(x->s, rc, "delete-range scan");
        goto cleanup;
    }
    if (n_prev > 0) {
        r->kvs = kv_arena_alloc(x->arena, x->alloc, n_prev * sizeof(*prev));
        if (r->kvs == NULL) {
            rv = KV_ENOMEM;
            goto cleanup;
        }
        memcpy(r->kvs, prev, n_prev * sizeof(*prev));
        r->n_kvs = n_prev;
    }

cleanup:
    mdb_cursor_close(cur);
    kv_free(x->alloc, prev);
    return rv;
}

/* A read-modify-write (kv_rmw.c): the new value is computed from the one
 * the key holds at this point of the log, then put; the result holds the
 * new pair, or the reason nothing was written in @r->count. */
static int do_rmw(struct exec *x,
                  const struct kv_op *op,
                  struct kv_op_result *r)
{
    struct kv_kv old;
    int rv = key_lookup(x, op->key, op->key_len, &old, NULL);
    if (rv != 0 && rv != KV_ENOTFOUND) {
        return rv;
    }
    uint8_t *val = NULL;
    uint32_t val_len = 0;
    /* @old points into the page the put below rewrites: the evaluation
     * copies what it needs first. */
    rv = kv_rmw_eval(op, rv == 0 ? &old : NULL, x->alloc, &val, &val_len,
                     &r->count);
    if (rv != 0 || r->count != KV_RMW_APPLIED) {
        return rv;
    }
    struct kv_op put;
    memset(&put, 0, sizeof(put));
    put.type = KV_OP_PUT;
    put.key = op->key;
    put.key_len = op->key_len;
    put.value = val;
    put.value_len = val_len;
    /* A read-modify-write keeps the key's lease and expiry, as Redis's
     * INCR keeps its TTL. */
    put.flags = KV_FLAG_KEEP_TTL;
    struct kv_op_result pr;
    memset(&pr, 0, sizeof(pr));
    rv = do_put(x, &put, &pr);
    if (rv == 0) {
        /* The put just wrote these; read them back for the result. */
        struct kv_kv now;
        struct kv_kv *kv = kv_arena_alloc(x->arena, x->alloc, sizeof(*kv));
        if (kv == NULL) {
            rv = KV_ENOMEM;
        } else if ((rv = key_lookup(x, op->key, op->key_len, &now, NULL)) ==
                       0 &&
                   (rv = kv_kv_copy(x->arena, x->alloc, &now, true, kv)) == 0) {
            r->kvs = kv;
            r->n_kvs = 1;
        }
    }
    kv_free(x->alloc, val);
    return rv;
}

/* Writes what a hash op's field updates did to the hash's record (@now
 * holds its metadata before) and the op's result. */
static int hash_settle(struct exec *x,
                       const struct kv_op *op,
                       const struct kv_hash_outcome *out,
                       const struct kv_kv *before,
                       struct kv_op_result *r)
{
    struct kv_kv now = *before;
    uint64_t after = out->count_after;
    bool changed = out->changed;
    int rv;
    struct kv_op_result sub;
    memset(&sub, 0, sizeof(sub));
    if (changed && after == 0) {
        struct kv_op del;
        memset(&del, 0, sizeof(del));
        del.type = KV_OP_DELETE;
        del.key = op->key;
        del.key_len = op->key_len;
        if ((rv = do_delete(x, &del, &sub)) != 0) {
            return rv;
        }
        now.create_revision = now.mod_revision = now.version = 0;
        now.lease = now.expire_at = 0;
    } else if (changed) {
        char text[24];
        int n = snprintf(text, sizeof(text), "%llu", (unsigned long long)after);
        struct kv_op put;
        memset(&put, 0, sizeof(put));
        put.type = KV_OP_PUT;
        put.key = op->key;
        put.key_len = op->key_len;
        put.value = (const uint8_t *)text;
        put.value_len = (uint32_t)n;
        put.flags = KV_FLAG_KEEP_TTL; /* a field update keeps the TTL */
        if ((rv = put_typed(x, &put, &sub, KV_TYPE_HASH)) != 0) {
            return rv;
        }
        if (now.create_revision == 0) {
            now.create_revision = x->rev;
        }
        now.mod_revision = x->rev;
        now.version++;
    }
    now.value = (const uint8_t *)out->answer;
    now.value_len = out->answer_len;
    struct kv_kv *kv = kv_arena_alloc(x->arena, x->alloc, sizeof(*kv));
    if (kv == NULL) {
        return KV_ENOMEM;
    }
    if ((rv = kv_kv_copy(x->arena, x->alloc, &now, true, kv)) != 0) {
        return rv;
    }
    r->kvs = kv;
    r->n_kvs = 1;
    return 0;
}

/* A hash op (kv_hash.c): the fields change under the hash key's record,
 * which then gets the new count, a new revision and a history event, or
 * goes (with a deletion event) once its last field has. The result holds
 * the op's answer and the hash's metadata after it, or the refusal in
 * @r->count. */
static int do_hash(struct exec *x,
                   const struct kv_op *op,
                   struct kv_op_result *r)
{
    struct kv_kv old, now;
    int rv = key_lookup(x, op->key, op->key_len, &old, NULL);
    if (rv != 0 && rv != KV_ENOTFOUND) {
        return rv;
    }
    memset(&now, 0, sizeof(now));
    now.key = op->key;
    now.key_len = op->key_len;
    now.type = KV_TYPE_HASH;
    uint64_t count = 0;
    if (rv == 0) {
        int64_t c = 0;
        if (old.type != KV_TYPE_HASH) {
            r->count = KV_RMW_WRONGTYPE;
            return 0;
        }
        if (kv_rmw_parse_i64(old.value, old.value_len, &c) != 0 || c < 0) {
            return kv_corrupt_found(x->s,
                                    "keys: hash of a %u-byte key has no count",
                                    (unsigned)op->key_len);
        }
        count = (uint64_t)c;
        now.create_revision = old.create_revision;
        now.mod_revision = old.mod_revision;
        now.version = old.version;
        now.lease = old.lease;
        now.expire_at = old.expire_at;
    }
    struct kv_hash_outcome out;
    rv = kv_hash_apply_fields(x->s, x->txn, op, count, x->digest, &out);
    r->count = out.refusal;
    if (rv == 0 && r->count == KV_RMW_APPLIED) {
        rv = hash_settle(x, op, &out, &now, r);
    }
    return rv;
}

/* Redis's EXPIRE family (KV_OP_EXPIRE): a new expiry for an existing key,
 * under the op's conditions, without a new revision (the value and its
 * version stay; watchers see no event). */
static int do_expire(struct exec *x,
                     const struct kv_op *op,
                     struct kv_op_result *r)
{
    struct kv_kv old;
    uint64_t sum = 0;
    int rv = key_lookup(x, op->key, op->key_len, &old, &sum);
    if (rv == KV_ENOTFOUND) {
        return 0;
    }
    if (rv != 0) {
        return rv;
    }
    uint64_t cur = old.expire_at;
    uint8_t f = op->flags;
    if (((f & KV_EXPIRE_NX) && cur != 0) || ((f & KV_EXPIRE_XX) && cur == 0) ||
        ((f & KV_EXPIRE_GT) && (cur == 0 || op->expire_at <= cur)) ||
        ((f & KV_EXPIRE_LT) && cur != 0 && op->expire_at >= cur)) {
        return 0;
    }
    if (f & KV_EXPIRE_DELETE) {
        struct kv_op del;
        memset(&del, 0, sizeof(del));
        del.type = KV_OP_DELETE;
        del.key = op->key;
        del.key_len = op->key_len;
        struct kv_op_result dr;
        memset(&dr, 0, sizeof(dr));
        rv = do_delete(x, &del, &dr);
        r->count = dr.count;
        return rv;
    }
    r->count = 1;
    if (cur == op->expire_at) {
        return 0;
    }
    /* Rewrite the record in place: copy the value out of the page first. */
    uint8_t *val = NULL;
    if (old.value_len > 0) {
        val = kv_malloc(x->alloc, old.value_len);
        if (val == NULL) {
            return KV_ENOMEM;
        }
        memcpy(val, old.value, old.value_len);
    }
    struct kv_kv kv = old;
    kv.key = op->key;
    kv.value = val;
    kv.expire_at = op->expire_at;
    MDB_val k = {op->key_len, (void *)op->key};
    MDB_val v = {KV_REC_HEADER + (size_t)old.value_len, NULL};
    int rc = mdb_put(x->txn, x->s->dbi_keys, &k, &v, MDB_RESERVE);
    if (rc != 0) {
        kv_free(x->alloc, val);
        return kv_mdb_error(x->s, rc, "expire");
    }
    kv_record_encode(&kv, v.mv_data);
    *x->digest += kv_record_sum(&v) - sum;
    kv_free(x->alloc, val);
    return kv_expire_index(x->s, x->txn, op->key, op->key_len, cur,
                           op->expire_at);
}

static int do_op(struct exec *x, const struct kv_op *op, struct kv_op_result *r)
{
    memset(r, 0, sizeof(*r));
    r->type = op->type;
    switch (op->type) {
    case KV_OP_PUT:
        return do_put(x, op, r);
    case KV_OP_DELETE:
        return do_delete(x, op, r);
    case KV_OP_DELETE_RANGE:
        return do_delete_range(x, op, r);
    case KV_OP_EXPIRE:
        return do_expire(x, op, r);
    case KV_OP_RANGE:
        return kv_range_in_txn(x->s, x->txn, 0, op->key, op->key_len, op->end,
                               op->end_len, op->flags, op->limit, x->arena,
                               x->alloc, &r->kvs, &r->n_kvs, &r->count,
                               &r->more);
    case KV_OP_INCRBY:
    case KV_OP_APPEND:
    case KV_OP_INCRBYFLOAT:
        return do_rmw(x, op, r);
    case KV_OP_HSET:
    case KV_OP_HDEL:
    case KV_OP_HINCRBY:
    case KV_OP_HINCRBYFLOAT:
        return do_hash(x, op, r);
    case KV_OP_SEQUENCE:
        /* Not a key: no revision, no history, no watch event. */
        return kv_sequence_apply(x->s, x->txn, op, x->arena, x->alloc, r);
    default:
        /* The decoder admits no other type. */
        return KV_EBADCMD;
    }
}

static int num_cmp(uint64_t a, uint64_t b)
{
    return a < b ? -1 : a > b ? 1 : 0;
}

/* Evaluates one comparison. Returns 1 (holds), 0 or a negative error. */
static int cmp_eval(struct exec *x, const struct kv_cmp *c)
{
    struct kv_kv kv;
    int rv = key_lookup(x, c->key, c->key_len, &kv, NULL);
    int order;
    if (rv != 0 && rv != KV_ENOTFOUND) {
        return rv;
    }
    bool exists = rv == 0;
    switch (c->target) {
    case KV_CMP_VALUE: {
        if (!exists) {
            return 0;
        }
        size_t n = kv.value_len < c->value_len ? kv.value_len : c->value_len;
        order = n > 0 ? memcmp(kv.value, c->value, n) : 0;
        if (order == 0) {
            order = num_cmp(kv.value_len, c->value_len);
        }
        break;
    }
    case KV_CMP_VERSION:
        order = num_cmp(exists ? kv.version : 0, c->number);
        break;
    case KV_CMP_CREATE_REVISION:
        order = num_cmp(exists ? kv.create_revision : 0, c->number);
        break;
    case KV_CMP_MOD_REVISION:
        order = num_cmp(exists ? kv.mod_revision : 0, c->number);
        break;
    default: /* KV_CMP_EXISTS */
        order = num_cmp(exists ? 1 : 0, c->number);
        break;
    }
    switch (c->op) {
    case KV_CMP_EQ:
        return order == 0;
    case KV_CMP_NE:
        return order != 0;
    case KV_CMP_LT:
        return order < 0;
    default:
        return order > 0;
    }
}

static int exec_ops(struct exec *x,
                    const struct kv_op *ops,
                    uint32_t n,
                    struct kv_entry_result *er)
{
    if (n == 0) {
        return 0;
    }
    er->ops = kv_arena_alloc(x->arena, x->alloc, n * sizeof(*er->ops));
    if (er->ops == NULL) {
        return KV_ENOMEM;
    }
    er->n_ops = n;
    for (uint32_t i = 0; i < n; i++) {
        int rv = do_op(x, &ops[i], &er->ops[i]);
        if (rv != 0) {
            return rv;
        }
    }
    return 0;
}

/* Moves the compaction point (KV_CMD_COMPACT): the same on every replica,
 * at the same index, so a read below it fails everywhere from the same
 * entry on. The deletion itself is kv_compact_step()'s, later. */
static int exec_compact(struct exec *x,
                        uint64_t revision,
                        struct kv_entry_result *er)
{
    uint64_t point = 0;
    int rv = kv_meta_get(x->s, x->txn, KV_META_COMPACT, &point);
    if (rv != 0) {
        return rv;
    }
    /* x->rev is the revision a change of this entry would get. */
    if (revision > x->rev - 1) {
        er->code = KV_EFUTURE;
        er->succeeded = false;
    } else if (revision > point) {
        point = revision;
        if ((rv = kv_meta_put(x->s, x->txn, KV_META_COMPACT, point)) != 0) {
            return rv;
        }
    }
    er->compact_revision = point;
    return 0;
}

/* The leader's expiry of keys (KV_CMD_EXPIRE_KEYS): only keys whose
 * expiry is set and at or below the leader's clock go, so one given a
 * later expiry since stays, on every replica alike. */
static int exec_expire_keys(struct exec *x,
                            const struct kv_cmd *cmd,
                            struct kv_entry_result *er)
{
    uint32_t n = cmd->n_then;
    er->ops = kv_arena_alloc(x->arena, x->alloc, n * sizeof(*er->ops));
    if (er->ops == NULL) {
        return KV_ENOMEM;
    }
    memset(er->ops, 0, n * sizeof(*er->ops));
    er->n_ops = n;
    for (uint32_t i = 0; i < n; i++) {
        const struct kv_op *op = &cmd->then_ops[i];
        struct kv_kv old;
        er->ops[i].type = KV_OP_DELETE;
        int rv = key_lookup(x, op->key, op->key_len, &old, NULL);
        if (rv == KV_ENOTFOUND) {
            continue;
        }
        if (rv != 0) {
            return rv;
        }
        if (old.expire_at == 0 || old.expire_at > cmd->clock) {
            continue;
        }
        if ((rv = do_delete(x, op, &er->ops[i])) != 0) {
            return rv;
        }
    }
    return 0;
}

/* Refuses the whole command (KV_ENOLEASE) if a put of it names a lease
 * that does not exist, before anything is written. */
static int leases_exist(struct exec *x,
                        const struct kv_cmd *cmd,
                        struct kv_entry_result *er)
{
    struct kv_lease l;
    uint32_t n = cmd->type == KV_CMD_TXN ? cmd->n_then + cmd->n_else : 1;
    for (uint32_t i = 0; i < n; i++) {
        const struct kv_op *op = cmd->type != KV_CMD_TXN ? &cmd->op
                                 : i < cmd->n_then
                                     ? &cmd->then_ops[i]
                                     : &cmd->else_ops[i - cmd->n_then];
        if (op->lease == 0) {
            continue;
        }
        int rv = kv_lease_rec_get(x->s, x->txn, op->lease, &l);
        if (rv == KV_ENOTFOUND) {
            er->code = KV_ENOLEASE;
            er->succeeded = false;
            return 0;
        }
        if (rv != 0) {
            return rv;
        }
    }
    return 0;
}

/* Ends lease @l: deletes every key attached to it (history events at this
 * entry's revision, so watchers see them) and then the lease. Stores the
 * keys deleted in *@deleted. */
static int lease_end(struct exec *x,
                     const struct kv_lease *l,
                     uint64_t *deleted)
{
    uint8_t key[KV_KEY_BYTES_MAX];
    uint32_t key_len = 0;
    int rv;
    *deleted = 0;
    /* Each deletion detaches the key, so the first key left is the next. */
    while ((rv = kv_lease_first_key(x->s, x->txn, l->id, key, &key_len)) == 0) {
        struct kv_op del;
        struct kv_op_result r;
        memset(&del, 0, sizeof(del));
        memset(&r, 0, sizeof(r));
        del.type = KV_OP_DELETE;
        del.key = key;
        del.key_len = key_len;
        if ((rv = do_delete(x, &del, &r)) != 0) {
            return rv;
        }
        if (r.count == 0) {
            /* An index entry without its key: drop it, or this would loop. */
            if ((rv = kv_lease_attach(x->s, x->txn, l->id, key, key_len,
                                      false)) != 0) {
                return rv;
            }
        }
        *deleted += r.count;
    }
    if (rv != KV_ENOTFOUND) {
        return rv;
    }
    return kv_lease_rec_del(x->s, x->txn, l);
}

/* The lease commands (KV_CMD_LEASE_*): everything they decide comes from
 * the entry (the leader's @clock) and the store, never from a clock. */
static int exec_lease(struct exec *x,
                      const struct kv_cmd *cmd,
                      struct kv_entry_result *er)
{
    struct kv_lease l;
    int rv = kv_lease_clock_raise(x->s, x->txn, cmd->clock);
    if (rv != 0 || cmd->type == KV_CMD_LEASE_CLOCK) {
        return rv;
    }
    uint32_t n = cmd->n_lease_ids;
    er->ops = kv_arena_alloc(x->arena, x->alloc, n * sizeof(*er->ops));
    if (er->ops == NULL) {
        return KV_ENOMEM;
    }
    memset(er->ops, 0, n * sizeof(*er->ops));
    er->n_ops = n;
    for (uint32_t i = 0; i < n; i++) {
        uint64_t id = cmd->lease_ids[i];
        struct kv_op_result *r = &er->ops[i];
        r->type = cmd->type;
        rv = kv_lease_rec_get(x->s, x->txn, id, &l);
        if (rv != 0 && rv != KV_ENOTFOUND) {
            return rv;
        }
        bool found = rv == 0;
        switch (cmd->type) {
        case KV_CMD_LEASE_GRANT: {
            MDB_stat st;
            int rc;
            if (found) {
                er->code = KV_ELEASEEXISTS;
                er->succeeded = false;
                return 0;
            }
            if ((rc = mdb_stat(x->txn, x->s->dbi_leases, &st)) != 0) {
                return kv_mdb_error(x->s, rc, "leases stat");
            }
            if (st.ms_entries >= KV_LEASES_MAX) {
                er->code = KV_ELEASESFULL;
                er->succeeded = false;
                return 0;
            }
            l.id = id;
            l.ttl_ms = cmd->ttl_ms;
            l.deadline = cmd->clock + cmd->ttl_ms;
            l.keys = 0;
            if ((rv = kv_lease_rec_put(x->s, x->txn, &l, 0)) != 0) {
                return rv;
            }
            r->count = l.deadline;
            break;
        }
        case KV_CMD_LEASE_REVOKE:
            if (!found) {
                er->code = KV_ENOLEASE;
                er->succeeded = false;
                return 0;
            }
            if ((rv = lease_end(x, &l, &r->count)) != 0) {
                return rv;
            }
            break;
        case KV_CMD_LEASE_REFRESH:
            if (!found) {
                break;
            }
            if (cmd->clock + l.ttl_ms > l.deadline) {
                uint64_t old = l.deadline;
                l.deadline = cmd->clock + l.ttl_ms;
                if ((rv = kv_lease_rec_put(x->s, x->txn, &l, old)) != 0) {
                    return rv;
                }
            }
            r->count = l.deadline;
            break;
        default: /* KV_CMD_LEASE_EXPIRE */
            /* A lease kept alive since the leader decided is not due. */
            if (!found || l.deadline > cmd->clock) {
                break;
            }
            if ((rv = lease_end(x, &l, &r->count)) != 0) {
                return rv;
            }
            r->more = true; /* it ended */
            break;
        }
    }
    return 0;
}

/* Copies @src (keys only) into the result's arena as @r's one pair. */
static int lock_result(struct exec *x,
                       struct kv_op_result *r,
                       const struct kv_kv *src)
{
    struct kv_kv *kv = kv_arena_alloc(x->arena, x->alloc, sizeof(*kv));
    if (kv == NULL) {
        return KV_ENOMEM;
    }
    *kv = *src; /* already in the arena (kv_lock_scan) */
    r->kvs = kv;
    r->n_kvs = 1;
    return 0;
}

/* KV_CMD_LOCK_ACQUIRE and _RELEASE (kv_lock.c): the claims are keys, so
 * they are written like any key (history, digest, lease index) and end
 * with their lease. */
static int exec_lock(struct exec *x,
                     const struct kv_cmd *cmd,
                     struct kv_entry_result *er)
{
    const struct kv_op *op = &cmd->op;
    bool acquire = op->type == KV_OP_LOCK_ACQUIRE;
    struct kv_lock_view lv;
    struct kv_lease l;
    int rv;
    struct kv_op_result *r = kv_arena_alloc(x->arena, x->alloc, sizeof(*r));
    if (r == NULL) {
        return KV_ENOMEM;
    }
    memset(r, 0, sizeof(*r));
    r->type = op->type;
    er->ops = r;
    er->n_ops = 1;
    if (acquire) {
        rv = kv_lease_rec_get(x->s, x->txn, op->lease, &l);
        if (rv == KV_ENOTFOUND) {
            er->code = KV_ENOLEASE;
            er->succeeded = false;
            return 0;
        }
        if (rv != 0) {
            return rv;
        }
    }
    rv = kv_lock_scan(
        x->s, x->txn, op->key, op->key_len, acquire ? op->lease : 0,
        acquire ? 0 : (uint64_t)op->delta, x->arena, x->alloc, &lv);
    if (rv != 0) {
        return rv;
    }
    if (!acquire) {
        if (lv.mine == NULL) {
            er->code = KV_ELOCKNOTHELD;
            er->succeeded = false;
            return 0;
        }
        struct kv_op del;
        struct kv_op_result dr;
        memset(&del, 0, sizeof(del));
        memset(&dr, 0, sizeof(dr));
        del.type = KV_OP_DELETE;
        del.key = lv.mine->key;
        del.key_len = lv.mine->key_len;
        r->count = lv.mine == lv.holder;
        if ((rv = lock_result(x, r, lv.mine)) != 0) {
            return rv;
        }
        return do_delete(x, &del, &dr);
    }
    if (lv.mine != NULL) {
        /* Already queued or holding: a retry changes nothing. */
        r->count = lv.mine == lv.holder;
        return lock_result(x, r, lv.mine);
    }
    if ((op->flags & KV_LOCK_TRY) && lv.holder != NULL) {
        er->succeeded = false;
        return lock_result(x, r, lv.holder);
    }
    if (lv.n >= KV_LOCK_WAITERS_MAX) {
        er->code = KV_ELOCKWAITERS;
        er->succeeded = false;
        return 0;
    }
    uint8_t *key = kv_arena_alloc(x->arena, x->alloc, KV_KEY_BYTES_MAX);
    struct kv_op put;
    struct kv_op_result pr;
    struct kv_kv mine;
    if (key == NULL) {
        return KV_ENOMEM;
    }
    memset(&put, 0, sizeof(put));
    memset(&pr, 0, sizeof(pr));
    put.type = KV_OP_PUT;
    kv_lock_key(op->key, op->key_len, op->lease, key, &put.key_len);
    put.key = key;
    put.value = op->value;
    put.value_len = op->value_len;
    put.lease = op->lease;
    if ((rv = do_put(x, &put, &pr)) != 0) {
        return rv;
    }
    memset(&mine, 0, sizeof(mine));
    mine.key = key;
    mine.key_len = put.key_len;
    mine.create_revision = x->rev;
    mine.mod_revision = x->rev;
    mine.version = 1;
    mine.lease = op->lease;
    r->count = lv.holder == NULL;
    return lock_result(x, r, &mine);
}

static int exec_cmd(struct exec *x,
                    const struct kv_cmd *cmd,
                    struct kv_entry_result *er)
{
    er->cmd_type = cmd->type;
    er->succeeded = true;
    if (cmd->type == KV_CMD_MEMBER) {
        int refused = 0;
        int rv = kv_member_apply(x->s, x->txn, &cmd->op, &refused);
        er->code = refused;
        er->succeeded = refused == 0;
        return rv;
    }
    if (cmd->type == KV_CMD_COMPACT) {
        return exec_compact(x, cmd->revision, er);
    }
    if (cmd->type == KV_CMD_ACL) {
        int refused = 0;
        bool found = false;
        int rv = kv_acl_apply(x->s, x->txn, &cmd->op, &refused, &found);
        er->code = refused;
        /* A deletion reports whether there was a user to delete. */
        er->succeeded = refused == 0 && (cmd->op.type != KV_OP_DELETE || found);
        return rv;
    }
    if (cmd->type == KV_CMD_DIGEST) {
        /* Every replica reports its digest at this same index. */
        er->digest = *x->digest;
        er->digest_check_index = cmd->digest_index;
        er->digest_check = cmd->digest;
        return 0;
    }
    if (cmd->type >= KV_CMD_LEASE_GRANT && cmd->type <= KV_CMD_LEASE_CLOCK) {
        return exec_lease(x, cmd, er);
    }
    if (cmd->type == KV_CMD_EXPIRE_KEYS) {
        return exec_expire_keys(x, cmd, er);
    }
    if (cmd->type == KV_CMD_LOCK_ACQUIRE || cmd->type == KV_CMD_LOCK_RELEASE) {
        return exec_lock(x, cmd, er);
    }
    int rv = leases_exist(x, cmd, er);
    if (rv != 0 || er->code != 0) {
        return rv;
    }
    if (cmd->type != KV_CMD_TXN) {
        return exec_ops(x, &cmd->op, 1, er);
    }
    for (uint32_t i = 0; i < cmd->n_cmps; i++) {
        int holds = cmp_eval(x, &cmd->cmps[i]);
        if (holds < 0) {
            return holds;
        }
        if (!holds) {
            er->succeeded = false;
            break;
        }
    }
    if (er->succeeded) {
        return exec_ops(x, cmd->then_ops, cmd->n_then, er);
    }
    return exec_ops(x, cmd->else_ops, cmd->n_else, er);
}

int kv_apply(struct kv_store *s,
             const struct raft_entry *entries,
             size_t n_entries,
             struct kv_apply_result *res)
{
    struct kv_apply_result local;
    struct kv_cmd cmd;
    MDB_txn *txn = NULL;
    MDB_cursor *keys = NULL;
    uint64_t applied = 0, rev = 0, digest = 0;
    int rv;
    int rc;

    if (res == NULL) {
        res = &local;
    }
    memset(res, 0, sizeof(*res));
    res->alloc = s->alloc;
    if (entries == NULL && n_entries > 0) {
        return KV_EINVAL;
    }
    for (size_t i = 1; i < n_entries; i++) {
        if (entries[i].index != entries[i - 1].index + 1) {
            return kv_set_error(s, KV_EGAP, "entries %llu then %llu",
                                (unsigned long long)entries[i - 1].index,
                                (unsigned long long)entries[i].index);
        }
    }
    if (s->poisoned || s->env == NULL) {
        return KV_EPOISONED;
    }
    if (kv_corrupt(s, NULL, 0)) {
        return kv_set_error(s, KV_ECORRUPT, "store found corrupt earlier");
    }
    if (n_entries == 0) {
        return 0;
    }
    res->entries = kv_arena_alloc(&res->arena, &res->alloc,
                                  n_entries * sizeof(*res->entries));
    if (res->entries == NULL) {
        return KV_ENOMEM;
    }
    memset(res->entries, 0, n_entries * sizeof(*res->entries));
    uint64_t batch_bytes = 0, changes = 0;
    for (size_t i = 0; i < n_entries; i++) {
        batch_bytes += entries[i].len;
        if (changes != UINT64_MAX && entries[i].type == RAFT_ENTRY_NORMAL) {
            uint32_t c = kv_cmd_changes_max(entries[i].data, entries[i].len);
            changes = c == UINT32_MAX ? UINT64_MAX : changes + c;
        }
    }
    if ((rv = kv_mark_dirty(s)) != 0 ||
        (rv = kv_reserve(s, batch_bytes, n_entries, changes)) != 0) {
        goto fail;
    }
    if ((rc = mdb_txn_begin(s->env, NULL, 0, &txn)) != 0) {
        rv = kv_mdb_error(s, rc, "begin write");
        goto fail;
    }
    if ((rv = kv_meta_get(s, txn, KV_META_APPLIED, &applied)) != 0 ||
        (rv = kv_meta_get(s, txn, KV_META_REVISION, &rev)) != 0 ||
        (rv = kv_meta_get(s, txn, KV_META_DIGEST, &digest)) != 0) {
        goto fail;
    }
    if ((rc = mdb_cursor_open(txn, s->dbi_keys, &keys)) != 0) {
        rv = kv_mdb_error(s, rc, "keys cursor");
        goto fail;
    }
    for (size_t i = 0; i < n_entries; i++) {
        const struct raft_entry *e = &entries[i];
        struct kv_entry_result *er = &res->entries[i];
        er->index = e->index;
        if (e->index <= applied) {
            er->skipped = true;
            continue;
        }
        if (e->index != applied + 1) {
            rv = kv_set_error(s, KV_EGAP, "entry %llu after applied %llu",
                              (unsigned long long)e->index,
                              (unsigned long long)applied);
            goto fail;
        }
        applied = e->index;
        er->revision = rev;
        if (e->type != RAFT_ENTRY_NORMAL || e->len == 0) {
            er->noop = true;
            continue;
        }
        rv = kv_cmd_decode(e->data, e->len, &s->alloc, &cmd);
        if (rv == KV_ENOMEM) {
            goto fail;
        }
        if (rv != 0) {
            /* A refused command is part of the replicated outcome. */
            er->code = rv;
            continue;
        }
        if (cmd.acl_user != NULL) {
            /* The permission check at the entry's index: every replica
             * holds the same users here, so every replica decides alike
             * (kv_acl.h). A refusal applies nothing and consumes no
             * request id. */
            bool allowed = false;
            rv = kv_acl_check(s, txn, &cmd, &allowed);
            if (rv != 0 || !allowed) {
                kv_cmd_free(&cmd, &s->alloc);
                if (rv != 0) {
                    goto fail;
                }
                er->code = KV_ENOPERM;
                continue;
            }
        }
        if (cmd.client_id != 0) {
            bool run = true;
            rv = kv_session_check(s, txn, e->index, &cmd, er, &res->arena,
                                  &res->alloc, &run);
            if (rv != 0 || !run) {
                kv_cmd_free(&cmd, &s->alloc);
                if (rv != 0) {
                    goto fail;
                }
                continue;
            }
        }
        if (cmd.fence_key != NULL) {
            /* The fence at the entry's index (docs/coordination.md,
             * "Fencing"): every replica holds the same claims here, so
             * every replica refuses the same writes. After the session
             * check, so that a retry of a write applied while the token
             * was current gets its outcome; a refusal applies nothing and
             * consumes no request id. */
            bool holds = false;
            rv = kv_lock_fence_holds(s, txn, &cmd, &holds);
            if (rv != 0 || !holds) {
                kv_cmd_free(&cmd, &s->alloc);
                if (rv != 0) {
                    goto fail;
                }
                er->code = KV_EFENCED;
                continue;
            }
        }
        struct exec x = {s, txn,         keys,        rev + 1, false,
                         0, &res->arena, &res->alloc, &digest};
        rv = exec_cmd(&x, &cmd, er);
        if (rv == 0 && x.changed) {
            rev++;
        }
        er->revision = rev;
        /* A request id is consumed by an application whose comparisons
         * held, or by any application when the store keeps the result
         * (either branch is then the outcome the retry must see). A failed
         * view guard applied nothing, and the same id may come again. */
        if (rv == 0 && cmd.client_id != 0 &&
            (er->succeeded || cmd.keep_result)) {
            er->session_seq = cmd.seq;
            er->session_revision = rev;
            rv = kv_session_record(s, txn, &cmd, er, e->index);
        }
        kv_cmd_free(&cmd, &s->alloc);
        if (rv != 0) {
            goto fail;
        }
    }
    if ((rv = kv_meta_put(s, txn, KV_META_APPLIED, applied)) != 0 ||
        (rv = kv_meta_put(s, txn, KV_META_REVISION, rev)) != 0 ||
        (rv = kv_meta_put(s, txn, KV_META_DIGEST, digest)) != 0) {
        goto fail;
    }
    mdb_cursor_close(keys);
    keys = NULL;
    rc = mdb_txn_commit(txn);
    txn = NULL;
    if (rc != 0) {
        rv = kv_mdb_error(s, rc, "commit");
        goto fail;
    }
    if (s->acl_changed) {
        s->acl_changed = false;
        kv_acl_bump(s);
    }
    res->n_entries = n_entries;
    res->applied = applied;
    res->revision = rev;
    if (res == &local) {
        kv_apply_result_free(res);
    }
    return 0;

fail:
    if (s->acl_changed) {
        /* The cached user may hold a change that was rolled back. */
        s->acl_changed = false;
        s->acl_last_valid = false;
    }
    if (keys != NULL) {
        mdb_cursor_close(keys);
    }
    if (txn != NULL) {
        mdb_txn_abort(txn);
    }
    kv_apply_result_free(res);
    res->alloc = s->alloc;
    return rv;
}

void kv_apply_result_free(struct kv_apply_result *res)
{
    struct kv_allocator a = res->alloc;
    if (a.free_fn != NULL) {
        kv_arena_free(&res->arena, &a);
    }
    memset(res, 0, sizeof(*res));
}
