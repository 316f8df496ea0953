/*
 * kv_sequence.c - cluster-wide increasing IDs (KV_CMD_SEQUENCE).
 *
 * A sequence is a counter the state machine advances when the entry is
 * applied: a request for N IDs gets the N numbers after the last one
 * handed out, in log order, so IDs increase strictly across every client
 * and every node, and an ID is never handed out twice: the counter moves
 * in the same LMDB transaction as the applied index, survives restarts
 * and travels in snapshots, and a leader change cannot move it back
 * because only committed entries move it at all. Sequences live in their
 * own database, apart from the keys, so no client write can set one back.
 *
 * "sequences": name -> u64le last ID handed out
 */
#include <string.h>

#include "kv_internal.h"

/* IDs fit a signed 64-bit integer: RESP integers and most languages'
 * integers are signed. */
#define SEQUENCE_ID_MAX ((uint64_t)INT64_MAX)

static int seq_read(struct kv_store *s,
                    MDB_txn *txn,
                    const uint8_t *name,
                    uint32_t name_len,
                    uint64_t *last)
{
    MDB_val k = {name_len, (void *)name};
    MDB_val v;
    int rc = mdb_get(txn, s->dbi_seqs, &k, &v);
    *last = 0;
    if (rc == MDB_NOTFOUND) {
        return 0;
    }
    if (rc != 0) {
        return kv_mdb_error(s, rc, "sequence get");
    }
    if (v.mv_size != 8) {
        return kv_set_error(s, KV_ECORRUPT, "sequences: malformed record");
    }
    *last = kv_get_u64le(v.mv_data);
    if (*last > SEQUENCE_ID_MAX) {
        return kv_set_error(s, KV_ECORRUPT, "sequences: ID out of range");
    }
    return 0;
}

int kv_sequence_apply(struct kv_store *s,
                      MDB_txn *txn,
                      const struct kv_op *op,
                      struct kv_arena_chunk **arena,
                      const struct kv_allocator *alloc,
                      struct kv_op_result *r)
{
    uint64_t last = 0;
    int rv = seq_read(s, txn, op->key, op->key_len, &last);
    if (rv != 0) {
        return rv;
    }
    /* The decoder bounds delta to 1..KV_SEQUENCE_BLOCK_MAX. */
    uint64_t n = (uint64_t)op->delta;
    if (n > SEQUENCE_ID_MAX - last) {
        r->count = KV_RMW_OVERFLOW; /* deterministic: nothing handed out */
        return 0;
    }
    last += n;
    uint8_t buf[8];
    kv_put_u64le(buf, last);
    MDB_val k = {op->key_len, (void *)op->key};
    MDB_val v = {sizeof(buf), buf};
    int rc = mdb_put(txn, s->dbi_seqs, &k, &v, 0);
    if (rc != 0) {
        return kv_mdb_error(s, rc, "sequence put");
    }
    struct kv_kv *kv = kv_arena_alloc(arena, alloc, sizeof(*kv));
    uint8_t *key = kv_arena_alloc(arena, alloc, op->key_len);
    if (kv == NULL || key == NULL) {
        return KV_ENOMEM;
    }
    memset(kv, 0, sizeof(*kv));
    memcpy(key, op->key, op->key_len);
    kv->key = key;
    kv->key_len = op->key_len;
    kv->create_revision = last - n + 1;
    kv->version = last;
    r->kvs = kv;
    r->n_kvs = 1;
    r->count = KV_RMW_APPLIED;
    return 0;
}

int kv_sequence_last(struct kv_store *store,
                     const uint8_t *name,
                     uint32_t name_len,
                     uint64_t *last)
{
    MDB_txn *txn = NULL;
    *last = 0;
    if (name == NULL || name_len == 0 || name_len > KV_KEY_BYTES_MAX) {
        return KV_EINVAL;
    }
    if (store->poisoned || store->env == NULL) {
        return KV_EPOISONED;
    }
    int rc = mdb_txn_begin(store->env, NULL, MDB_RDONLY, &txn);
    if (rc != 0) {
        return kv_mdb_error(store, rc, "sequence: begin read");
    }
    int rv = seq_read(store, txn, name, name_len, last);
    mdb_txn_abort(txn);
    return rv;
}
