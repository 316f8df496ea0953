/*
 * kv_lease.c - the store's side of leases: their records, the keys attached
 * to them, the index of deadlines the leader scans, and the replicated
 * lease clock.
 *
 * A lease's deadline is a point on the lease clock, a number of
 * milliseconds that only the leader advances (from its own monotonic
 * clock) and that travels in the log inside every lease command. Applying
 * never reads a clock: every replica computes the same deadlines and ends
 * the same leases at the same index (docs/coordination.md, "Leases").
 *
 * Layout (docs/kv.md):
 *
 *   leases      u64 BE id                      -> u64 LE ttl_ms,
 *                                                 u64 LE deadline,
 *                                                 u64 LE keys attached
 *   lease_keys  u64 BE id, key                 -> empty
 *   lease_due   u64 BE deadline, u64 BE id     -> empty
 *   meta        "lease_clock"                  -> u64 LE
 */
#include <string.h>

#include "kv_internal.h"

static void due_key(uint8_t *buf, uint64_t deadline, uint64_t id)
{
    kv_put_u64be(buf, deadline);
    kv_put_u64be(buf + 8, id);
}

int kv_lease_rec_get(struct kv_store *s,
                     MDB_txn *txn,
                     uint64_t id,
                     struct kv_lease *out)
{
    uint8_t kb[8];
    MDB_val k = {8, kb};
    MDB_val v;
    kv_put_u64be(kb, id);
    int rc = mdb_get(txn, s->dbi_leases, &k, &v);
    if (rc == MDB_NOTFOUND) {
        return KV_ENOTFOUND;
    }
    if (rc != 0) {
        return kv_mdb_error(s, rc, "lease get");
    }
    if (v.mv_size != KV_LEASE_REC) {
        return kv_set_error(s, KV_ECORRUPT, "leases: malformed record");
    }
    const uint8_t *p = v.mv_data;
    out->id = id;
    out->ttl_ms = kv_get_u64le(p);
    out->deadline = kv_get_u64le(p + 8);
    out->keys = kv_get_u64le(p + 16);
    return 0;
}

int kv_lease_rec_put(struct kv_store *s,
                     MDB_txn *txn,
                     const struct kv_lease *l,
                     uint64_t old_deadline)
{
    uint8_t kb[8];
    uint8_t vb[KV_LEASE_REC];
    uint8_t db[16];
    MDB_val k = {8, kb};
    MDB_val v = {KV_LEASE_REC, vb};
    MDB_val dk = {16, db};
    MDB_val dv = {0, NULL};
    int rc;
    kv_put_u64be(kb, l->id);
    kv_put_u64le(vb, l->ttl_ms);
    kv_put_u64le(vb + 8, l->deadline);
    kv_put_u64le(vb + 16, l->keys);
    if ((rc = mdb_put(txn, s->dbi_leases, &k, &v, 0)) != 0) {
        return kv_mdb_error(s, rc, "lease put");
    }
    if (old_deadline == l->deadline) {
        return 0;
    }
    if (old_deadline != 0) {
        due_key(db, old_deadline, l->id);
        rc = mdb_del(txn, s->dbi_ldue, &dk, NULL);
        if (rc != 0 && rc != MDB_NOTFOUND) {
            return kv_mdb_error(s, rc, "lease due delete");
        }
    }
    due_key(db, l->deadline, l->id);
    if ((rc = mdb_put(txn, s->dbi_ldue, &dk, &dv, 0)) != 0) {
        return kv_mdb_error(s, rc, "lease due put");
    }
    return 0;
}

int kv_lease_rec_del(struct kv_store *s, MDB_txn *txn, const struct kv_lease *l)
{
    uint8_t kb[8];
    uint8_t db[16];
    MDB_val k = {8, kb};
    MDB_val dk = {16, db};
    int rc;
    kv_put_u64be(kb, l->id);
    due_key(db, l->deadline, l->id);
    if ((rc = mdb_del(txn, s->dbi_leases, &k, NULL)) != 0 ||
        ((rc = mdb_del(txn, s->dbi_ldue, &dk, NULL)) != 0 &&
         rc != MDB_NOTFOUND)) {
        return kv_mdb_error(s, rc, "lease delete");
    }
    return 0;
}

int kv_lease_attach(struct kv_store *s,
                    MDB_txn *txn,
                    uint64_t id,
                    const uint8_t *key,
                    uint32_t key_len,
                    bool attach)
{
    uint8_t kb[8 + KV_KEY_BYTES_MAX];
    MDB_val k = {8 + (size_t)key_len, kb};
    MDB_val v = {0, NULL};
    struct kv_lease l;
    int rc;
    int rv = kv_lease_rec_get(s, txn, id, &l);
    if (rv == KV_ENOTFOUND) {
        return 0;
    }
    if (rv != 0) {
        return rv;
    }
    kv_put_u64be(kb, id);
    memcpy(kb + 8, key, key_len);
    if (attach) {
        rc = mdb_put(txn, s->dbi_lkeys, &k, &v, MDB_NOOVERWRITE);
        if (rc == MDB_KEYEXIST) {
            return 0;
        }
        if (rc != 0) {
            return kv_mdb_error(s, rc, "lease attach");
        }
        l.keys++;
    } else {
        rc = mdb_del(txn, s->dbi_lkeys, &k, NULL);
        if (rc == MDB_NOTFOUND) {
            return 0;
        }
        if (rc != 0) {
            return kv_mdb_error(s, rc, "lease detach");
        }
        l.keys = l.keys > 0 ? l.keys - 1 : 0;
    }
    return kv_lease_rec_put(s, txn, &l, l.deadline);
}

int kv_lease_first_key(struct kv_store *s,
                       MDB_txn *txn,
                       uint64_t id,
                       uint8_t *key,
                       uint32_t *key_len)
{
    uint8_t kb[8];
    MDB_cursor *cur = NULL;
    MDB_val k = {8, kb};
    MDB_val v;
    int rv = 0;
    int rc = mdb_cursor_open(txn, s->dbi_lkeys, &cur);
    if (rc != 0) {
        return kv_mdb_error(s, rc, "lease keys cursor");
    }
    kv_put_u64be(kb, id);
    rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
    if (rc == MDB_NOTFOUND ||
        (rc == 0 && (k.mv_size < 8 || memcmp(k.mv_data, kb, 8) != 0))) {
        rv = KV_ENOTFOUND;
    } else if (rc != 0) {
        rv = kv_mdb_error(s, rc, "lease keys");
    } else if (k.mv_size - 8 > KV_KEY_BYTES_MAX || k.mv_size == 8) {
        rv = kv_set_error(s, KV_ECORRUPT, "lease_keys: malformed key");
    } else {
        *key_len = (uint32_t)(k.mv_size - 8);
        memcpy(key, (const uint8_t *)k.mv_data + 8, *key_len);
    }
    mdb_cursor_close(cur);
    return rv;
}

int kv_lease_clock_raise(struct kv_store *s, MDB_txn *txn, uint64_t clock)
{
    uint64_t now = 0;
    int rv = kv_meta_get(s, txn, KV_META_LEASE_CLOCK, &now);
    if (rv != 0 || clock <= now) {
        return rv;
    }
    return kv_meta_put(s, txn, KV_META_LEASE_CLOCK, clock);
}

/* ---------------------------------------------------------------------- */
/* Reads                                                                   */

int kv_lease_get(struct kv_store *s, uint64_t id, struct kv_lease *out)
{
    MDB_txn *txn = NULL;
    int rv = kv_read_begin(s, &txn);
    if (rv != 0) {
        return rv;
    }
    rv = kv_lease_rec_get(s, txn, id, out);
    mdb_txn_abort(txn);
    return rv;
}

int kv_lease_keys(struct kv_store *s,
                  uint64_t id,
                  uint64_t limit,
                  struct kv_range_result *res)
{
    uint8_t kb[8];
    MDB_txn *txn = NULL;
    MDB_cursor *cur = NULL;
    MDB_val k = {8, kb};
    MDB_val v;
    struct kv_kv_list list = {0};
    uint64_t bytes = 0;
    int rc;
    memset(res, 0, sizeof(*res));
    res->alloc = s->alloc;
    int rv = kv_read_begin(s, &txn);
    if (rv != 0) {
        return rv;
    }
    if ((rv = kv_meta_get(s, txn, KV_META_REVISION, &res->revision)) != 0 ||
        (rv = kv_meta_get(s, txn, KV_META_APPLIED, &res->applied)) != 0) {
        goto cleanup;
    }
    if ((rc = mdb_cursor_open(txn, s->dbi_lkeys, &cur)) != 0) {
        rv = kv_mdb_error(s, rc, "lease keys cursor");
        goto cleanup;
    }
    kv_put_u64be(kb, id);
    rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
    while (rc == 0 && k.mv_size > 8 && memcmp(k.mv_data, kb, 8) == 0) {
        if ((limit != 0 && res->n_kvs >= limit) ||
            (res->n_kvs > 0 && bytes + k.mv_size - 8 > KV_RANGE_BYTES_MAX)) {
            res->more = true;
            break;
        }
        struct kv_kv one;
        memset(&one, 0, sizeof(one));
        one.key = (const uint8_t *)k.mv_data + 8;
        one.key_len = (uint32_t)(k.mv_size - 8);
        one.lease = id;
        if ((rv = kv_kv_list_add(s, &list, res, &one)) != 0) {
            goto cleanup;
        }
        bytes += k.mv_size - 8;
        rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
    }
    if (rc != 0 && rc != MDB_NOTFOUND) {
        rv = kv_mdb_error(s, rc, "lease keys");
        goto cleanup;
    }
    rv = kv_kv_list_finish(s, &list, res);

cleanup:
    if (cur != NULL) {
        mdb_cursor_close(cur);
    }
    mdb_txn_abort(txn);
    kv_kv_list_free(s, &list);
    return rv;
}

int kv_lease_list(struct kv_store *s,
                  uint64_t after,
                  uint64_t *ids,
                  size_t cap,
                  size_t *n,
                  bool *more)
{
    uint8_t kb[8];
    MDB_txn *txn = NULL;
    MDB_cursor *cur = NULL;
    MDB_val k = {8, kb};
    MDB_val v;
    int rc;
    *n = 0;
    *more = false;
    int rv = kv_read_begin(s, &txn);
    if (rv != 0) {
        return rv;
    }
    if ((rc = mdb_cursor_open(txn, s->dbi_leases, &cur)) != 0) {
        rv = kv_mdb_error(s, rc, "leases cursor");
        goto cleanup;
    }
    /* Ids are >= 1, so "above 0" starts at the first. */
    kv_put_u64be(kb, after);
    rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
    if (rc == 0 && k.mv_size == 8 && kv_get_u64be(k.mv_data) == after) {
        rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
    }
    while (rc == 0) {
        if (k.mv_size != 8) {
            rv = kv_set_error(s, KV_ECORRUPT, "leases: malformed key");
            goto cleanup;
        }
        if (*n >= cap) {
            *more = true;
            break;
        }
        ids[(*n)++] = kv_get_u64be(k.mv_data);
        rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
    }
    if (rc != 0 && rc != MDB_NOTFOUND) {
        rv = kv_mdb_error(s, rc, "leases");
    }

cleanup:
    if (cur != NULL) {
        mdb_cursor_close(cur);
    }
    mdb_txn_abort(txn);
    return rv;
}

int kv_lease_due(struct kv_store *s,
                 uint64_t clock,
                 uint64_t *ids,
                 size_t cap,
                 size_t *n)
{
    MDB_txn *txn = NULL;
    MDB_cursor *cur = NULL;
    MDB_val k, v;
    int rc;
    *n = 0;
    int rv = kv_read_begin(s, &txn);
    if (rv != 0) {
        return rv;
    }
    if ((rc = mdb_cursor_open(txn, s->dbi_ldue, &cur)) != 0) {
        rv = kv_mdb_error(s, rc, "lease due cursor");
        goto cleanup;
    }
    rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST);
    while (rc == 0 && *n < cap) {
        if (k.mv_size != 16) {
            rv = kv_set_error(s, KV_ECORRUPT, "lease_due: malformed key");
            goto cleanup;
        }
        if (kv_get_u64be(k.mv_data) > clock) {
            break;
        }
        ids[(*n)++] = kv_get_u64be((const uint8_t *)k.mv_data + 8);
        rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
    }
    if (rc != 0 && rc != MDB_NOTFOUND) {
        rv = kv_mdb_error(s, rc, "lease due");
    }

cleanup:
    if (cur != NULL) {
        mdb_cursor_close(cur);
    }
    mdb_txn_abort(txn);
    return rv;
}

int kv_lease_clock(struct kv_store *s, uint64_t *clock, uint64_t *leases)
{
    MDB_txn *txn = NULL;
    MDB_stat st;
    int rv = kv_read_begin(s, &txn);
    if (rv != 0) {
        return rv;
    }
    if ((rv = kv_meta_get(s, txn, KV_META_LEASE_CLOCK, clock)) == 0) {
        int rc = mdb_stat(txn, s->dbi_leases, &st);
        if (rc != 0) {
            rv = kv_mdb_error(s, rc, "leases stat");
        } else if (leases != NULL) {
            *leases = st.ms_entries;
        }
    }
    mdb_txn_abort(txn);
    return rv;
}
