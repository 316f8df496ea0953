/*
 * kv_hash.c - Redis hashes: the field table, the field updates the state
 * machine evaluates at apply time (KV_OP_HSET, _HDEL, _HINCRBY,
 * _HINCRBYFLOAT) and the reads of a hash.
 *
 * A hash is one record in "keys" (type KV_TYPE_HASH; its value the field
 * count in decimal; its revisions, version, lease and expiry those of any
 * key) and one record per field in "hash_fields", keyed by the hash key
 * and the field (kv_internal.h). So one field's update rewrites that field
 * and the small key record, whatever the hash's size; the key record's
 * mod_revision moves with every change, so watches, WATCH and the
 * transactions' comparisons see hashes as they see strings. Like INCR
 * (kv_rmw.c), a field update is computed from what the hash holds when its
 * entry is applied, so many updates of one hot hash share a Raft round,
 * each with the answer it would have had alone at its place in the log.
 */
#include <stdio.h>
#include <string.h>

#include "kv_internal.h"

bool kv_hash_field_fits(uint32_t key_len, uint32_t field_len)
{
    return key_len >= 1 &&
           (uint64_t)KV_HASH_FIELD_KEY_OVERHEAD + key_len + field_len <=
               KV_KEY_BYTES_MAX;
}

/* Writes the field table's key of (@key, @field) into @out (room for
 * KV_KEY_BYTES_MAX) and returns its length; the caller checked that it
 * fits. */
static uint32_t field_key(uint8_t *out,
                          const uint8_t *key,
                          uint32_t key_len,
                          const uint8_t *field,
                          uint32_t field_len)
{
    out[0] = (uint8_t)(key_len >> 8);
    out[1] = (uint8_t)key_len;
    memcpy(out + KV_HASH_FIELD_KEY_OVERHEAD, key, key_len);
    if (field_len > 0) {
        memcpy(out + KV_HASH_FIELD_KEY_OVERHEAD + key_len, field, field_len);
    }
    return KV_HASH_FIELD_KEY_OVERHEAD + key_len + field_len;
}

uint64_t kv_hash_pairs_size(size_t n,
                            const size_t *field_lens,
                            const size_t *value_lens)
{
    uint64_t total = 0;
    for (size_t i = 0; i < n; i++) {
        total += 4 + (uint64_t)field_lens[i];
        if (value_lens != NULL) {
            total += 4 + (uint64_t)value_lens[i];
        }
    }
    return total;
}

void kv_hash_pairs_encode(size_t n,
                          const uint8_t *const *fields,
                          const size_t *field_lens,
                          const uint8_t *const *values,
                          const size_t *value_lens,
                          uint8_t *out)
{
    for (size_t i = 0; i < n; i++) {
        kv_put_u32le(out, (uint32_t)field_lens[i]);
        if (field_lens[i] > 0) {
            memcpy(out + 4, fields[i], field_lens[i]);
        }
        out += 4 + field_lens[i];
        if (values != NULL) {
            kv_put_u32le(out, (uint32_t)value_lens[i]);
            if (value_lens[i] > 0) {
                memcpy(out + 4, values[i], value_lens[i]);
            }
            out += 4 + value_lens[i];
        }
    }
}

/* A walk over a packed list (kv_hash_pairs_encode()). */
struct items
{
    const uint8_t *p;
    const uint8_t *end;
    bool with_values;
};

/* The next item: 1 with it, 0 at the end, -1 if the list is malformed. */
static int items_next(struct items *it,
                      const uint8_t **field,
                      uint32_t *field_len,
                      const uint8_t **value,
                      uint32_t *value_len)
{
    if (it->p == it->end) {
        return 0;
    }
    for (int part = 0; part < (it->with_values ? 2 : 1); part++) {
        if (it->end - it->p < 4) {
            return -1;
        }
        uint32_t n = kv_get_u32le(it->p);
        if ((size_t)(it->end - it->p - 4) < n) {
            return -1;
        }
        if (part == 0) {
            *field = it->p + 4;
            *field_len = n;
        } else {
            *value = it->p + 4;
            *value_len = n;
        }
        it->p += 4 + (size_t)n;
    }
    return 1;
}

static void items_init(struct items *it, const struct kv_op *op)
{
    it->p = op->value;
    it->end = op->value + op->value_len;
    it->with_values = op->type == KV_OP_HSET;
}

int kv_hash_op_check(const struct kv_op *op)
{
    if (op->type == KV_OP_HINCRBY || op->type == KV_OP_HINCRBYFLOAT) {
        return kv_hash_field_fits(op->key_len, op->end_len) ? 0 : KV_EBADCMD;
    }
    struct items it;
    const uint8_t *f = NULL, *v = NULL;
    uint32_t fl = 0, vl = 0, n = 0;
    int rc;
    items_init(&it, op);
    while ((rc = items_next(&it, &f, &fl, &v, &vl)) == 1) {
        if (!kv_hash_field_fits(op->key_len, fl)) {
            return KV_EBADCMD;
        }
        n++;
    }
    if (rc < 0 || n == 0 ||
        ((op->flags & KV_HASH_NX) && (op->type != KV_OP_HSET || n != 1))) {
        return KV_EBADCMD;
    }
    return 0;
}

uint32_t kv_hash_op_items(const struct kv_op *op)
{
    if (op->type == KV_OP_HINCRBY || op->type == KV_OP_HINCRBYFLOAT) {
        return 1;
    }
    struct items it;
    const uint8_t *f = NULL, *v = NULL;
    uint32_t fl = 0, vl = 0, n = 0;
    items_init(&it, op);
    while (items_next(&it, &f, &fl, &v, &vl) == 1) {
        n++;
    }
    return n;
}

bool kv_field_ok(const MDB_val *k, const MDB_val *v)
{
    const uint8_t *p = v->mv_data;
    return v->mv_size >= KV_FIELD_HEADER &&
           v->mv_size - KV_FIELD_HEADER <= KV_VALUE_BYTES_MAX &&
           kv_get_u64le(p) == kv_rec_sum(k->mv_data, k->mv_size,
                                         p + KV_FIELD_HEADER,
                                         v->mv_size - KV_FIELD_HEADER);
}

/* Looks field key @fk up: 0 with its value (pointing into the map) and
 * checksum, KV_ENOTFOUND, or an error (a damaged record is KV_ECORRUPT
 * and marks the store). */
static int field_get(struct kv_store *s,
                     MDB_txn *txn,
                     const uint8_t *fk,
                     uint32_t fk_len,
                     const uint8_t **val,
                     uint32_t *val_len,
                     uint64_t *sum)
{
    MDB_val k = {fk_len, (void *)fk};
    MDB_val v;
    int rc = mdb_get(txn, s->dbi_hfields, &k, &v);
    if (rc == MDB_NOTFOUND) {
        return KV_ENOTFOUND;
    }
    if (rc != 0) {
        return kv_mdb_error(s, rc, "hash field get");
    }
    const uint8_t *p = v.mv_data;
    if (!kv_field_ok(&k, &v)) {
        return kv_corrupt_found(s, "hash_fields: a field record is damaged");
    }
    *val = p + KV_FIELD_HEADER;
    *val_len = (uint32_t)(v.mv_size - KV_FIELD_HEADER);
    if (sum != NULL) {
        *sum = kv_get_u64le(p);
    }
    return 0;
}

/* Whether field key @fk exists (*@exists), and its record's checksum. */
static int field_find(struct kv_store *s,
                      MDB_txn *txn,
                      const uint8_t *fk,
                      uint32_t fk_len,
                      bool *exists,
                      uint64_t *sum)
{
    const uint8_t *val = NULL;
    uint32_t val_len = 0;
    int rv = field_get(s, txn, fk, fk_len, &val, &val_len, sum);
    *exists = rv == 0;
    return rv == KV_ENOTFOUND ? 0 : rv;
}

/* Stores @val under field key @fk, replacing the checksum of the old
 * record (if any) by the new one's in *@digest; *@was_new tells whether
 * the field did not exist. */
static int field_put(struct kv_store *s,
                     MDB_txn *txn,
                     const uint8_t *fk,
                     uint32_t fk_len,
                     const uint8_t *val,
                     uint32_t val_len,
                     uint64_t *digest,
                     bool *was_new)
{
    uint64_t sum = 0;
    bool exists = false;
    int rv = field_find(s, txn, fk, fk_len, &exists, &sum);
    if (rv != 0) {
        return rv;
    }
    *was_new = !exists;
    if (exists) {
        *digest -= sum;
    }
    MDB_val k = {fk_len, (void *)fk};
    MDB_val v = {KV_FIELD_HEADER + (size_t)val_len, NULL};
    int rc = mdb_put(txn, s->dbi_hfields, &k, &v, MDB_RESERVE);
    if (rc != 0) {
        return kv_mdb_error(s, rc, "hash field put");
    }
    uint8_t *p = v.mv_data;
    if (val_len > 0) {
        /* @val never points into the map: it comes from the command or
         * from a buffer of the caller. */
        memcpy(p + KV_FIELD_HEADER, val, val_len);
    }
    kv_put_u64le(p, kv_rec_sum(fk, fk_len, p + KV_FIELD_HEADER, val_len));
    *digest += kv_get_u64le(p);
    return 0;
}

/* Deletes field key @fk if it exists; *@removed tells whether it did. */
static int field_del(struct kv_store *s,
                     MDB_txn *txn,
                     const uint8_t *fk,
                     uint32_t fk_len,
                     uint64_t *digest,
                     bool *removed)
{
    uint64_t sum = 0;
    int rv = field_find(s, txn, fk, fk_len, removed, &sum);
    if (rv != 0 || !*removed) {
        return rv;
    }
    MDB_val k = {fk_len, (void *)fk};
    int rc = mdb_del(txn, s->dbi_hfields, &k, NULL);
    if (rc != 0) {
        return kv_mdb_error(s, rc, "hash field delete");
    }
    *digest -= sum;
    return 0;
}

/* The fields an HSET would add (a field named twice counts twice: an
 * upper bound, enough for the size check). */
static int count_new(struct kv_store *s,
                     MDB_txn *txn,
                     const struct kv_op *op,
                     uint64_t *n_new)
{
    uint8_t fk[KV_KEY_BYTES_MAX];
    struct items it;
    const uint8_t *f = NULL, *v = NULL;
    uint32_t fl = 0, vl = 0;
    *n_new = 0;
    items_init(&it, op);
    while (items_next(&it, &f, &fl, &v, &vl) == 1) {
        uint32_t n = field_key(fk, op->key, op->key_len, f, fl);
        bool exists = false;
        int rv = field_find(s, txn, fk, n, &exists, NULL);
        if (rv != 0) {
            return rv;
        }
        *n_new += !exists;
    }
    return 0;
}

/* HINCRBY and HINCRBYFLOAT: the arithmetic of INCRBY and INCRBYFLOAT on
 * the field's value. */
static int apply_incr(struct kv_store *s,
                      MDB_txn *txn,
                      const struct kv_op *op,
                      uint64_t count,
                      uint64_t *digest,
                      struct kv_hash_outcome *out)
{
    uint8_t fk[KV_KEY_BYTES_MAX];
    uint32_t n = field_key(fk, op->key, op->key_len, op->end, op->end_len);
    const uint8_t *old = NULL;
    uint32_t old_len = 0;
    int rv = field_get(s, txn, fk, n, &old, &old_len, NULL);
    if (rv != 0 && rv != KV_ENOTFOUND) {
        return rv;
    }
    bool exists = rv == 0;
    if (!exists && count >= KV_HASH_FIELDS_MAX) {
        out->refusal = KV_RMW_HASH_FULL;
        return 0;
    }
    /* @old points into the map, which the put below changes: the answer
     * buffer holds the result before anything is written. */
    rv = kv_rmw_eval_number(
        op->type == KV_OP_HINCRBY ? KV_OP_INCRBY : KV_OP_INCRBYFLOAT, old,
        old_len, exists, op->delta, op->value, op->value_len, out->answer,
        sizeof(out->answer), &out->answer_len, &out->refusal);
    if (rv != 0 || out->refusal != KV_RMW_APPLIED) {
        return rv;
    }
    bool was_new = false;
    if ((rv = field_put(s, txn, fk, n, (const uint8_t *)out->answer,
                        out->answer_len, digest, &was_new)) != 0) {
        return rv;
    }
    out->count_after = count + (was_new ? 1 : 0);
    out->changed = true;
    return 0;
}

int kv_hash_apply_fields(struct kv_store *s,
                         MDB_txn *txn,
                         const struct kv_op *op,
                         uint64_t count,
                         uint64_t *digest,
                         struct kv_hash_outcome *out)
{
    uint8_t fk[KV_KEY_BYTES_MAX];
    struct items it;
    const uint8_t *f = NULL, *v = NULL;
    uint32_t fl = 0, vl = 0;
    uint64_t done = 0;
    int rv;
    out->count_after = count;
    out->changed = false;
    out->answer_len = 0;
    out->refusal = KV_RMW_APPLIED;
    if (op->type == KV_OP_HINCRBY || op->type == KV_OP_HINCRBYFLOAT) {
        return apply_incr(s, txn, op, count, digest, out);
    }
    if (op->type == KV_OP_HSET &&
        count + kv_hash_op_items(op) > KV_HASH_FIELDS_MAX) {
        /* Refuse before writing: a batch's transaction cannot take back
         * the fields already written. */
        uint64_t n_new = 0;
        if ((rv = count_new(s, txn, op, &n_new)) != 0) {
            return rv;
        }
        if (count + n_new > KV_HASH_FIELDS_MAX) {
            out->refusal = KV_RMW_HASH_FULL;
            return 0;
        }
    }
    items_init(&it, op);
    while (items_next(&it, &f, &fl, &v, &vl) == 1) {
        uint32_t n = field_key(fk, op->key, op->key_len, f, fl);
        bool hit = false;
        if (op->type == KV_OP_HDEL) {
            rv = field_del(s, txn, fk, n, digest, &hit);
        } else if (op->flags & KV_HASH_NX) {
            bool exists = false;
            rv = field_find(s, txn, fk, n, &exists, NULL);
            if (rv == 0 && exists) {
                continue; /* HSETNX of an existing field: nothing */
            }
            if (rv == 0) {
                rv = field_put(s, txn, fk, n, v, vl, digest, &hit);
            }
        } else {
            rv = field_put(s, txn, fk, n, v, vl, digest, &hit);
            /* Redis's HSET counts as a change even if no value differs. */
            out->changed = true;
        }
        if (rv != 0) {
            return rv;
        }
        done += hit;
    }
    if (op->type == KV_OP_HDEL) {
        out->count_after = count - done;
    } else {
        out->count_after = count + done;
    }
    out->changed |= done > 0;
    out->answer_len = (uint32_t)snprintf(out->answer, sizeof(out->answer),
                                         "%llu", (unsigned long long)done);
    return 0;
}

int kv_hash_drop(struct kv_store *s,
                 MDB_txn *txn,
                 const uint8_t *key,
                 uint32_t key_len,
                 uint64_t *digest)
{
    uint8_t prefix[KV_KEY_BYTES_MAX];
    uint32_t plen = field_key(prefix, key, key_len, NULL, 0);
    MDB_cursor *cur = NULL;
    MDB_val k = {plen, prefix};
    MDB_val v;
    int rv = 0;
    int rc = mdb_cursor_open(txn, s->dbi_hfields, &cur);
    if (rc != 0) {
        return kv_mdb_error(s, rc, "hash fields cursor");
    }
    rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
    while (rc == 0 && k.mv_size >= plen &&
           memcmp(k.mv_data, prefix, plen) == 0) {
        const uint8_t *p = v.mv_data;
        if (!kv_field_ok(&k, &v)) {
            rv = kv_corrupt_found(s, "hash_fields: a field record is damaged");
            goto cleanup;
        }
        *digest -= kv_get_u64le(p);
        if ((rc = mdb_cursor_del(cur, 0)) != 0) {
            rv = kv_mdb_error(s, rc, "hash field delete");
            goto cleanup;
        }
        /* After a deletion LMDB's cursor already rests on the next pair;
         * MDB_NEXT returns it without moving. */
        rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
    }
    if (rc != 0 && rc != MDB_NOTFOUND) {
        rv = kv_mdb_error(s, rc, "hash fields scan");
    }

cleanup:
    mdb_cursor_close(cur);
    return rv;
}

/* Copies field @f (@fl bytes) and value @v into the result's pair @out. */
static int pair_copy(struct kv_range_result *res,
                     const uint8_t *f,
                     uint32_t fl,
                     const uint8_t *v,
                     uint32_t vl,
                     bool with_value,
                     struct kv_kv *out)
{
    struct kv_kv src;
    memset(&src, 0, sizeof(src));
    src.key = f;
    src.key_len = fl;
    src.value = v;
    src.value_len = vl;
    return kv_kv_copy(&res->arena, &res->alloc, &src, with_value && v != NULL,
                      out);
}

/* The fields after @after of hash @key, in field order. */
static int scan_fields(struct kv_store *s,
                       MDB_txn *txn,
                       const uint8_t *key,
                       uint32_t key_len,
                       const uint8_t *after,
                       uint32_t after_len,
                       uint64_t limit,
                       bool keys_only,
                       struct kv_range_result *res)
{
    uint8_t fk[KV_KEY_BYTES_MAX];
    uint32_t plen = field_key(fk, key, key_len, NULL, 0);
    uint32_t n = kv_hash_field_fits(key_len, after_len)
                     ? field_key(fk, key, key_len, after, after_len)
                     : plen;
    size_t cap = 0, bytes = 0;
    MDB_cursor *cur = NULL;
    MDB_val k = {n, fk};
    MDB_val v;
    int rv = 0;
    int rc = mdb_cursor_open(txn, s->dbi_hfields, &cur);
    if (rc != 0) {
        return kv_mdb_error(s, rc, "hash fields cursor");
    }
    rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
    if (rc == 0 && after_len > 0 && k.mv_size == n &&
        memcmp(k.mv_data, fk, n) == 0) {
        rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
    }
    while (rc == 0 && k.mv_size >= plen && memcmp(k.mv_data, fk, plen) == 0) {
        if ((limit != 0 && res->n_kvs >= limit) ||
            (res->n_kvs > 0 && bytes >= KV_RANGE_BYTES_MAX)) {
            res->more = true;
            break;
        }
        const uint8_t *p = v.mv_data;
        if (!kv_field_ok(&k, &v)) {
            rv = kv_corrupt_found(s, "hash_fields: a field record is damaged");
            goto cleanup;
        }
        if ((rv = kv_array_grow(&res->alloc, (void **)&res->kvs, &cap,
                                res->n_kvs + 1, sizeof(*res->kvs))) != 0) {
            goto cleanup;
        }
        const uint8_t *f = (const uint8_t *)k.mv_data + plen;
        uint32_t fl = (uint32_t)(k.mv_size - plen);
        uint32_t vl = (uint32_t)(v.mv_size - KV_FIELD_HEADER);
        if ((rv = pair_copy(res, f, fl, p + KV_FIELD_HEADER, vl, !keys_only,
                            &res->kvs[res->n_kvs])) != 0) {
            goto cleanup;
        }
        res->n_kvs++;
        bytes += fl + (keys_only ? 0 : vl);
        rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
    }
    if (rc != 0 && rc != MDB_NOTFOUND) {
        rv = kv_mdb_error(s, rc, "hash fields scan");
    }

cleanup:
    mdb_cursor_close(cur);
    return rv;
}

int kv_hash_read(struct kv_store *s,
                 const uint8_t *key,
                 uint32_t key_len,
                 const uint8_t *const *fields,
                 const uint32_t *field_lens,
                 size_t n,
                 const uint8_t *after,
                 uint32_t after_len,
                 uint64_t limit,
                 bool keys_only,
                 struct kv_range_result *res)
{
    MDB_txn *txn = NULL;
    struct kv_kv rec;
    struct kv_kv *list = NULL;
    int rv, rc;
    memset(res, 0, sizeof(*res));
    res->alloc = s->alloc;
    if (key == NULL || key_len == 0 || key_len > KV_KEY_BYTES_MAX) {
        return KV_EINVAL;
    }
    if ((rv = kv_read_begin(s, &txn)) != 0) {
        return rv;
    }
    if ((rv = kv_meta_get(s, txn, KV_META_REVISION, &res->revision)) != 0 ||
        (rv = kv_meta_get(s, txn, KV_META_APPLIED, &res->applied)) != 0) {
        goto cleanup;
    }
    MDB_val k = {key_len, (void *)key};
    MDB_val v;
    rc = mdb_get(txn, s->dbi_keys, &k, &v);
    if (rc == MDB_NOTFOUND) {
        rv = KV_ENOTFOUND;
        goto cleanup;
    }
    if (rc != 0) {
        rv = kv_mdb_error(s, rc, "get");
        goto cleanup;
    }
    if (kv_record_decode(&k, &v, &rec) != 0) {
        rv = kv_corrupt_found(s, "keys: record of a %u-byte key is damaged",
                              (unsigned)key_len);
        goto cleanup;
    }
    if (rec.expire_at != 0 && rec.expire_at <= kv_wall_ms()) {
        rv = KV_ENOTFOUND;
        goto cleanup;
    }
    if (rec.type != KV_TYPE_HASH) {
        rv = KV_EWRONGTYPE;
        goto cleanup;
    }
    int64_t count = 0;
    if (kv_rmw_parse_i64(rec.value, rec.value_len, &count) != 0 || count < 0) {
        rv = kv_corrupt_found(s, "keys: hash of a %u-byte key has no count",
                              (unsigned)key_len);
        goto cleanup;
    }
    res->count = (uint64_t)count;
    if (n == 0) {
        rv = scan_fields(s, txn, key, key_len, after, after_len, limit,
                         keys_only, res);
        goto cleanup;
    }
    list = kv_arena_alloc(&res->arena, &res->alloc, n * sizeof(*list));
    if (list == NULL) {
        rv = KV_ENOMEM;
        goto cleanup;
    }
    for (size_t i = 0; i < n; i++) {
        uint8_t fk[KV_KEY_BYTES_MAX];
        const uint8_t *val = NULL;
        uint32_t vl = 0;
        if (kv_hash_field_fits(key_len, field_lens[i])) {
            uint32_t fkn =
                field_key(fk, key, key_len, fields[i], field_lens[i]);
            rv = field_get(s, txn, fk, fkn, &val, &vl, NULL);
            if (rv != 0 && rv != KV_ENOTFOUND) {
                goto cleanup;
            }
            if (rv == KV_ENOTFOUND) {
                val = NULL;
            }
        }
        if ((rv = pair_copy(res, fields[i], field_lens[i], val, vl, true,
                            &list[i])) != 0) {
            goto cleanup;
        }
    }
    res->kvs = list;
    res->n_kvs = n;
    rv = 0;

cleanup:
    mdb_txn_abort(txn);
    if (rv != 0) {
        if (n == 0) {
            kv_free(&res->alloc, res->kvs); /* scan_fields() grew it */
        }
        kv_arena_free(&res->arena, &res->alloc);
        res->kvs = NULL;
        res->n_kvs = 0;
    } else if (n == 0 && res->n_kvs > 0) {
        /* Move the grown array into the arena, where the result's
         * release finds it. */
        struct kv_kv *a =
            kv_arena_alloc(&res->arena, &res->alloc, res->n_kvs * sizeof(*a));
        if (a == NULL) {
            kv_free(&res->alloc, res->kvs);
            kv_arena_free(&res->arena, &res->alloc);
            res->kvs = NULL;
            res->n_kvs = 0;
            return KV_ENOMEM;
        }
        memcpy(a, res->kvs, res->n_kvs * sizeof(*a));
        kv_free(&res->alloc, res->kvs);
        res->kvs = a;
    } else if (n == 0) {
        kv_free(&res->alloc, res->kvs);
        res->kvs = NULL;
    }
    return rv;
}
