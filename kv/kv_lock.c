/*
 * kv_lock.c - locks with fencing tokens, on keys and leases
 * (docs/coordination.md, "Locks").
 *
 * A lock is a key prefix. Each client that wants it puts one key under
 * it, the prefix followed by its lease id in hex, attached to that lease
 * (KV_CMD_LOCK_ACQUIRE). The key with the lowest create_revision holds the
 * lock; the others wait, served in the order their keys were created. The
 * holder's create_revision is its fencing token: every later holder's key
 * was created later, so tokens strictly increase across holders, and a
 * token never becomes current again once its key is gone. A holder that
 * crashes stops renewing its lease; the lease ends through the log and
 * takes the key with it, and the next waiter holds the lock.
 *
 * Everything here reads the store as the entry being applied sees it and
 * never a clock, so every replica decides alike.
 */
#include <string.h>

#include "kv_internal.h"

static const char hex_digits[] = "0123456789abcdef";

void kv_lock_key(const uint8_t *prefix,
                 uint32_t prefix_len,
                 uint64_t lease,
                 uint8_t *key,
                 uint32_t *key_len)
{
    memcpy(key, prefix, prefix_len);
    for (unsigned i = 0; i < KV_LOCK_SUFFIX_BYTES; i++) {
        key[prefix_len + i] = (uint8_t)hex_digits[(lease >> (60 - 4 * i)) & 15];
    }
    *key_len = prefix_len + KV_LOCK_SUFFIX_BYTES;
}

/* Whether @kv is a claim on the lock at @prefix: the prefix and exactly a
 * lease id in lower-case hex (a longer key under the prefix belongs to
 * another lock, whose name continues this one's). Stores the id. */
static bool is_claim(const struct kv_kv *kv, uint32_t prefix_len, uint64_t *id)
{
    uint64_t v = 0;
    if (kv->key_len != prefix_len + KV_LOCK_SUFFIX_BYTES) {
        return false;
    }
    for (unsigned i = 0; i < KV_LOCK_SUFFIX_BYTES; i++) {
        uint8_t c = kv->key[prefix_len + i];
        const char *d = memchr(hex_digits, c, 16);
        if (c == 0 || d == NULL) {
            return false;
        }
        v = (v << 4) | (uint64_t)(d - hex_digits);
    }
    *id = v;
    return true;
}

_Static_assert(sizeof(KV_LOCK_KEY_PREFIX) == sizeof(KV_ELECTION_KEY_PREFIX),
               "lock and election names have one limit");

int kv_lock_prefix(bool election,
                   const char *name,
                   size_t len,
                   uint8_t *buf,
                   uint32_t *out_len)
{
    size_t head = sizeof(KV_LOCK_KEY_PREFIX) - 1;
    if (name == NULL || len == 0 || len > KV_LOCK_NAME_MAX) {
        return KV_EINVAL;
    }
    memcpy(buf, election ? KV_ELECTION_KEY_PREFIX : KV_LOCK_KEY_PREFIX, head);
    memcpy(buf + head, name, len);
    buf[head + len] = '/';
    *out_len = (uint32_t)(head + len + 1);
    return 0;
}

void kv_lock_cmd_init(struct kv_cmd *cmd,
                      uint8_t type,
                      const uint8_t *prefix,
                      uint32_t prefix_len,
                      uint64_t id,
                      bool try_only)
{
    memset(cmd, 0, sizeof(*cmd));
    cmd->type = type;
    cmd->op.type = type; /* the op types have the commands' numbers */
    cmd->op.key = prefix;
    cmd->op.key_len = prefix_len;
    if (type == KV_CMD_LOCK_ACQUIRE) {
        cmd->op.lease = id;
        cmd->op.flags = try_only ? KV_LOCK_TRY : 0;
    } else {
        cmd->op.delta = (int64_t)id;
    }
}

int kv_lock_scan(struct kv_store *s,
                 MDB_txn *txn,
                 const uint8_t *prefix,
                 uint32_t prefix_len,
                 uint64_t lease,
                 uint64_t token,
                 struct kv_arena_chunk **arena,
                 const struct kv_allocator *alloc,
                 struct kv_lock_view *out)
{
    struct kv_kv *kvs = NULL;
    size_t n = 0;
    uint64_t count = 0;
    bool more = false;
    memset(out, 0, sizeof(*out));
    /* Keys only: an election's values may be large, and the scan is
     * bounded by KV_LOCK_WAITERS_MAX claims of at most a key each. */
    int rv = kv_range_in_txn(s, txn, 0, prefix, prefix_len, NULL, 0,
                             KV_FLAG_PREFIX | KV_FLAG_KEYS_ONLY, 0, arena,
                             alloc, &kvs, &n, &count, &more);
    if (rv != 0) {
        return rv;
    }
    for (size_t i = 0; i < n; i++) {
        uint64_t id = 0;
        if (!is_claim(&kvs[i], prefix_len, &id)) {
            continue;
        }
        out->n++;
        if (out->holder == NULL ||
            kvs[i].create_revision < out->holder->create_revision) {
            out->holder = &kvs[i];
        }
        if ((lease != 0 && id == lease) ||
            (token != 0 && kvs[i].create_revision == token)) {
            out->mine = &kvs[i];
        }
    }
    return 0;
}

int kv_lock_fence_holds(struct kv_store *s,
                        MDB_txn *txn,
                        const struct kv_cmd *cmd,
                        bool *holds)
{
    struct kv_arena_chunk *arena = NULL;
    struct kv_lock_view lv;
    int rv = kv_lock_scan(s, txn, cmd->fence_key, cmd->fence_key_len, 0, 0,
                          &arena, &s->alloc, &lv);
    *holds = rv == 0 && lv.holder != NULL &&
             lv.holder->create_revision == cmd->fence_token;
    kv_arena_free(&arena, &s->alloc);
    return rv;
}

int kv_lock_owner(struct kv_store *store,
                  const uint8_t *prefix,
                  uint32_t prefix_len,
                  struct kv_range_result *res)
{
    MDB_txn *txn = NULL;
    struct kv_lock_view lv;
    int rv;
    memset(res, 0, sizeof(*res));
    res->alloc = store->alloc;
    if (prefix == NULL || prefix_len == 0 || prefix_len > KV_LOCK_PREFIX_MAX) {
        return KV_EINVAL;
    }
    if ((rv = kv_read_begin(store, &txn)) != 0) {
        return rv;
    }
    if ((rv = kv_meta_get(store, txn, KV_META_REVISION, &res->revision)) != 0 ||
        (rv = kv_meta_get(store, txn, KV_META_APPLIED, &res->applied)) != 0 ||
        (rv = kv_lock_scan(store, txn, prefix, prefix_len, 0, 0, &res->arena,
                           &res->alloc, &lv)) != 0) {
        goto done;
    }
    res->count = lv.n;
    if (lv.holder == NULL) {
        rv = KV_ENOTFOUND;
        goto done;
    }
    /* The holder again, with its value. */
    rv = kv_range_in_txn(store, txn, 0, lv.holder->key, lv.holder->key_len,
                         NULL, 0, 0, 0, &res->arena, &res->alloc, &res->kvs,
                         &res->n_kvs, &res->count, &res->more);
    res->count = lv.n;
    if (rv == 0 && res->n_kvs != 1) {
        rv = KV_ENOTFOUND;
    }
done:
    mdb_txn_abort(txn);
    return rv;
}
