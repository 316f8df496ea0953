/*
 * kv_members.c - where the cluster's members listen, replicated with the
 * data (KV_CMD_MEMBER).
 *
 * A member added after bootstrap is known to the nodes that were running
 * before it only through the log: the leader records its address here
 * before the configuration change that adds it, so every replica (and
 * every snapshot, and every restart) knows how to reach it. kv stores the
 * address as opaque bytes; the node driver gives them meaning.
 *
 * "members": u64be id -> address bytes
 */
#include <string.h>

#include "kv_internal.h"

void kv_cmd_member(struct kv_cmd *cmd,
                   uint8_t key[8],
                   uint64_t id,
                   const void *addr,
                   uint32_t addr_len)
{
    memset(cmd, 0, sizeof(*cmd));
    kv_put_u64be(key, id);
    cmd->type = KV_CMD_MEMBER;
    cmd->op.type = addr != NULL ? KV_OP_PUT : KV_OP_DELETE;
    cmd->op.key = key;
    cmd->op.key_len = 8;
    cmd->op.value = addr;
    cmd->op.value_len = addr != NULL ? addr_len : 0;
}

int kv_member_apply(struct kv_store *s,
                    MDB_txn *txn,
                    const struct kv_op *op,
                    int *refused)
{
    MDB_val k = {op->key_len, (void *)op->key};
    MDB_val v;
    int rc;
    *refused = 0;
    if (op->type == KV_OP_DELETE) {
        rc = mdb_del(txn, s->dbi_members, &k, NULL);
        if (rc != 0 && rc != MDB_NOTFOUND) {
            return kv_mdb_error(s, rc, "member delete");
        }
        return 0;
    }
    rc = mdb_get(txn, s->dbi_members, &k, &v);
    if (rc == MDB_NOTFOUND) {
        MDB_stat st;
        if ((rc = mdb_stat(txn, s->dbi_members, &st)) != 0) {
            return kv_mdb_error(s, rc, "member stat");
        }
        /* Deterministic: the count depends only on the log. */
        if (st.ms_entries >= KV_MEMBERS_MAX) {
            *refused = KV_ELIMIT;
            return 0;
        }
    } else if (rc != 0) {
        return kv_mdb_error(s, rc, "member get");
    }
    v.mv_size = op->value_len;
    v.mv_data = (void *)op->value;
    if ((rc = mdb_put(txn, s->dbi_members, &k, &v, 0)) != 0) {
        return kv_mdb_error(s, rc, "member put");
    }
    return 0;
}

int kv_members(struct kv_store *store,
               struct kv_member *out,
               size_t cap,
               size_t *n)
{
    MDB_txn *txn = NULL;
    MDB_cursor *cur = NULL;
    MDB_val k, v;
    int rv = 0;
    int rc;
    *n = 0;
    if (store->poisoned || store->env == NULL) {
        return KV_EPOISONED;
    }
    if ((rc = mdb_txn_begin(store->env, NULL, MDB_RDONLY, &txn)) != 0) {
        return kv_mdb_error(store, rc, "members: begin read");
    }
    if ((rc = mdb_cursor_open(txn, store->dbi_members, &cur)) != 0) {
        rv = kv_mdb_error(store, rc, "members: cursor");
        goto done;
    }
    for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0;
         rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        if (k.mv_size != 8 || v.mv_size > KV_MEMBER_ADDR_MAX) {
            rv = kv_set_error(store, KV_ECORRUPT, "members: malformed record");
            goto done;
        }
        if (*n == cap) {
            rv = kv_set_error(store, KV_ELIMIT, "members: more than %zu", cap);
            goto done;
        }
        struct kv_member *m = &out[(*n)++];
        m->id = kv_get_u64be(k.mv_data);
        m->addr_len = (uint32_t)v.mv_size;
        memcpy(m->addr, v.mv_data, v.mv_size);
    }
    if (rc != MDB_NOTFOUND) {
        rv = kv_mdb_error(store, rc, "members: scan");
    }
done:
    if (cur != NULL) {
        mdb_cursor_close(cur);
    }
    mdb_txn_abort(txn);
    return rv;
}

int kv_members_clear(struct kv_store *store)
{
    MDB_txn *txn = NULL;
    int rv, rc;
    if (store->poisoned || store->env == NULL) {
        return KV_EPOISONED;
    }
    if ((rv = kv_mark_dirty(store)) != 0) {
        return rv;
    }
    if ((rc = mdb_txn_begin(store->env, NULL, 0, &txn)) != 0) {
        return kv_mdb_error(store, rc, "members: begin write");
    }
    if ((rc = mdb_drop(txn, store->dbi_members, 0)) != 0) {
        mdb_txn_abort(txn);
        return kv_mdb_error(store, rc, "members: clear");
    }
    if ((rc = mdb_txn_commit(txn)) != 0) {
        return kv_mdb_error(store, rc, "members: commit");
    }
    return 0;
}
