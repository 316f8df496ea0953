/*
 * kv_expire.c - Redis expiry in the store: the index of keys by the
 * wall-clock time they expire at, which the leader scans to decide which
 * keys to delete (KV_CMD_EXPIRE_KEYS). Reads skip expired keys by
 * themselves (kv_read.c), so the index only decides when the space is
 * given back and watchers see the deletion.
 *
 *   expire_due  u64 BE expire_at, key  -> empty
 */
#include <string.h>

#include "kv_internal.h"

int kv_expire_index(struct kv_store *s,
                    MDB_txn *txn,
                    const uint8_t *key,
                    uint32_t key_len,
                    uint64_t old_at,
                    uint64_t new_at)
{
    uint8_t kb[8 + KV_KEY_BYTES_MAX];
    MDB_val k = {8 + (size_t)key_len, kb};
    MDB_val v = {0, NULL};
    int rc;
    if (old_at == new_at) {
        return 0;
    }
    memcpy(kb + 8, key, key_len);
    if (old_at != 0) {
        kv_put_u64be(kb, old_at);
        rc = mdb_del(txn, s->dbi_edue, &k, NULL);
        if (rc != 0 && rc != MDB_NOTFOUND) {
            return kv_mdb_error(s, rc, "expiry index delete");
        }
    }
    if (new_at != 0) {
        kv_put_u64be(kb, new_at);
        if ((rc = mdb_put(txn, s->dbi_edue, &k, &v, 0)) != 0) {
            return kv_mdb_error(s, rc, "expiry index put");
        }
    }
    return 0;
}

int kv_expire_due(struct kv_store *s,
                  uint64_t now_ms,
                  size_t max,
                  struct kv_range_result *res)
{
    MDB_txn *txn = NULL;
    MDB_cursor *cur = NULL;
    MDB_val k, v;
    struct kv_kv_list list = {0};
    int rc;
    memset(res, 0, sizeof(*res));
    res->alloc = s->alloc;
    int rv = kv_read_begin(s, &txn);
    if (rv != 0) {
        return rv;
    }
    if ((rc = mdb_cursor_open(txn, s->dbi_edue, &cur)) != 0) {
        rv = kv_mdb_error(s, rc, "expiry index cursor");
        goto cleanup;
    }
    rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST);
    while (rc == 0 && res->n_kvs < max) {
        if (k.mv_size <= 8 || k.mv_size > 8 + KV_KEY_BYTES_MAX) {
            rv = kv_set_error(s, KV_ECORRUPT, "expire_due: malformed key");
            goto cleanup;
        }
        uint64_t at = kv_get_u64be(k.mv_data);
        if (at > now_ms) {
            break;
        }
        struct kv_kv one;
        memset(&one, 0, sizeof(one));
        one.key = (const uint8_t *)k.mv_data + 8;
        one.key_len = (uint32_t)(k.mv_size - 8);
        one.expire_at = at;
        if ((rv = kv_kv_list_add(s, &list, res, &one)) != 0) {
            goto cleanup;
        }
        rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
    }
    if (rc != 0 && rc != MDB_NOTFOUND) {
        rv = kv_mdb_error(s, rc, "expiry index");
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
