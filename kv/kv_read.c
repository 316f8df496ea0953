/*
 * kv_read.c - point and range reads.
 *
 * Reads run in LMDB read transactions, which see the last committed write
 * transaction and never wait for the writer. Every pair returned is copied
 * out of the map into the result's arena before the transaction ends,
 * because LMDB's memory is only valid while the transaction lives.
 */
#include <string.h>
#include <time.h>

#include "kv_internal.h"

uint64_t kv_wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* Whether the stored record @v has expired at @now_ms (0: never asked). */
static bool rec_expired(const MDB_val *v, uint64_t now_ms)
{
    if (now_ms == 0 || v->mv_size < KV_REC_HEADER) {
        return false;
    }
    uint64_t at = kv_get_u64le((const uint8_t *)v->mv_data + 40);
    return at != 0 && at <= now_ms;
}

int kv_kv_copy(struct kv_arena_chunk **arena,
               const struct kv_allocator *a,
               const struct kv_kv *src,
               bool with_value,
               struct kv_kv *dst)
{
    size_t vlen = with_value ? src->value_len : 0;
    uint8_t *p = kv_arena_alloc(arena, a, (size_t)src->key_len + vlen);
    if (p == NULL) {
        return KV_ENOMEM;
    }
    *dst = *src;
    if (src->key_len > 0) {
        memcpy(p, src->key, src->key_len);
    }
    dst->key = p;
    if (with_value && src->value != NULL) {
        if (vlen > 0) {
            memcpy(p + src->key_len, src->value, vlen);
        }
        dst->value = p + src->key_len;
    } else {
        dst->value = NULL;
        dst->value_len = 0;
    }
    return 0;
}

int kv_kv_list_add(struct kv_store *s,
                   struct kv_kv_list *l,
                   struct kv_range_result *res,
                   const struct kv_kv *one)
{
    int rv = kv_array_grow(&s->alloc, (void **)&l->kvs, &l->cap, res->n_kvs + 1,
                           sizeof(*l->kvs));
    if (rv == 0) {
        rv =
            kv_kv_copy(&res->arena, &s->alloc, one, false, &l->kvs[res->n_kvs]);
    }
    if (rv == 0) {
        res->n_kvs++;
    }
    return rv;
}

int kv_kv_list_finish(struct kv_store *s,
                      struct kv_kv_list *l,
                      struct kv_range_result *res)
{
    res->count = res->n_kvs;
    if (res->n_kvs == 0) {
        return 0;
    }
    res->kvs =
        kv_arena_alloc(&res->arena, &s->alloc, res->n_kvs * sizeof(*l->kvs));
    if (res->kvs == NULL) {
        res->n_kvs = 0;
        return KV_ENOMEM;
    }
    memcpy(res->kvs, l->kvs, res->n_kvs * sizeof(*l->kvs));
    return 0;
}

void kv_kv_list_free(struct kv_store *s, struct kv_kv_list *l)
{
    kv_free(&s->alloc, l->kvs);
    l->kvs = NULL;
    l->cap = 0;
}

void kv_bounds_resolve(const uint8_t *key,
                       uint32_t key_len,
                       const uint8_t *end,
                       uint32_t end_len,
                       uint8_t flags,
                       uint8_t *end_buf,
                       struct kv_bounds *b)
{
    memset(b, 0, sizeof(*b));
    b->start = key;
    b->start_len = key_len;
    if (flags & KV_FLAG_PREFIX) {
        /* The first key after every key with this prefix: drop trailing
         * 0xff bytes and increment the last remaining one. */
        uint32_t n = key_len;
        while (n > 0 && key[n - 1] == 0xff) {
            n--;
        }
        if (n == 0) {
            b->unbounded = true;
            return;
        }
        memcpy(end_buf, key, n);
        end_buf[n - 1]++;
        b->end = end_buf;
        b->end_len = n;
        return;
    }
    if (end_len == 0) {
        b->single = true;
        b->empty = key_len == 0;
        return;
    }
    if (end_len == 1 && end[0] == 0) {
        b->unbounded = true;
        return;
    }
    b->end = end;
    b->end_len = end_len;
    size_t n = key_len < end_len ? key_len : end_len;
    int c = n > 0 ? memcmp(key, end, n) : 0;
    if (c > 0 || (c == 0 && key_len >= end_len)) {
        b->empty = true;
    }
}

/* Byte order of LMDB's default comparison: memcmp, then length. */
static int key_cmp(const uint8_t *a, size_t alen, const uint8_t *b, size_t blen)
{
    size_t n = alen < blen ? alen : blen;
    int c = n > 0 ? memcmp(a, b, n) : 0;
    if (c != 0) {
        return c;
    }
    return alen < blen ? -1 : alen > blen ? 1 : 0;
}

struct collector
{
    struct kv_arena_chunk **arena;
    const struct kv_allocator *alloc;
    struct kv_kv *tmp; /* grows outside the arena, copied in at the end */
    size_t n;
    size_t cap;
    size_t bytes;
    uint64_t limit;
    uint8_t flags;
    bool full;
};

/* Takes a pair if the limits allow; a read always returns at least one
 * pair, so a single big value can still be read. */
static int collect(struct collector *c, const MDB_val *k, const MDB_val *v)
{
    struct kv_kv kv;
    bool with_value = !(c->flags & KV_FLAG_KEYS_ONLY);
    int rv;
    if (c->full || (c->flags & KV_FLAG_COUNT_ONLY)) {
        return 0;
    }
    if (c->limit != 0 && c->n >= c->limit) {
        c->full = true;
        return 0;
    }
    if (kv_record_decode(k, v, &kv) != 0) {
        return KV_ECORRUPT;
    }
    size_t bytes = kv.key_len + (with_value ? kv.value_len : 0);
    if (c->n > 0 && c->bytes + bytes > KV_RANGE_BYTES_MAX) {
        c->full = true;
        return 0;
    }
    if ((rv = kv_array_grow(c->alloc, (void **)&c->tmp, &c->cap, c->n + 1,
                            sizeof(*c->tmp))) != 0) {
        return rv;
    }
    if ((rv = kv_kv_copy(c->arena, c->alloc, &kv, with_value, &c->tmp[c->n])) !=
        0) {
        return rv;
    }
    c->n++;
    c->bytes += bytes;
    return 0;
}

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
                    bool *more)
{
    uint8_t end_buf[KV_KEY_BYTES_MAX];
    struct kv_bounds b;
    struct collector c = {arena, alloc, NULL, 0, 0, 0, limit, flags, false};
    MDB_cursor *cur = NULL;
    MDB_val k, v;
    uint64_t total = 0;
    bool reverse = (flags & KV_FLAG_REVERSE) != 0;
    bool no_total = (flags & KV_RANGE_NO_TOTAL) != 0;
    int rv = 0;
    int rc;

    *kvs = NULL;
    *n_kvs = 0;
    *count = 0;
    *more = false;
    kv_bounds_resolve(key, key_len, end, end_len, flags, end_buf, &b);
    if (b.empty) {
        return 0;
    }
    if (b.single) {
        k.mv_size = key_len;
        k.mv_data = (void *)key;
        rc = mdb_get(txn, store->dbi_keys, &k, &v);
        if (rc == MDB_NOTFOUND) {
            return 0;
        }
        if (rc != 0) {
            return kv_mdb_error(store, rc, "range get");
        }
        if (rec_expired(&v, now_ms)) {
            return 0;
        }
        total = 1;
        rv = collect(&c, &k, &v);
        goto done;
    }
    if ((rc = mdb_cursor_open(txn, store->dbi_keys, &cur)) != 0) {
        return kv_mdb_error(store, rc, "range cursor");
    }
    if (!reverse) {
        if (b.start_len == 0) {
            rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST);
        } else {
            k.mv_size = b.start_len;
            k.mv_data = (void *)b.start;
            rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
        }
        while (rc == 0) {
            if (!b.unbounded &&
                key_cmp(k.mv_data, k.mv_size, b.end, b.end_len) >= 0) {
                break;
            }
            if (rec_expired(&v, now_ms)) {
                rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
                continue;
            }
            total++;
            if ((rv = collect(&c, &k, &v)) != 0) {
                goto done;
            }
            if (c.full && no_total) {
                break; /* the key that did not fit says "more" */
            }
            rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
        }
    } else {
        /* Start at the last key below the end bound. */
        if (b.unbounded) {
            rc = mdb_cursor_get(cur, &k, &v, MDB_LAST);
        } else {
            k.mv_size = b.end_len;
            k.mv_data = (void *)b.end;
            rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
            if (rc == 0) {
                rc = mdb_cursor_get(cur, &k, &v, MDB_PREV);
            } else if (rc == MDB_NOTFOUND) {
                rc = mdb_cursor_get(cur, &k, &v, MDB_LAST);
            }
        }
        while (rc == 0) {
            if (key_cmp(k.mv_data, k.mv_size, b.start, b.start_len) < 0) {
                break;
            }
            if (rec_expired(&v, now_ms)) {
                rc = mdb_cursor_get(cur, &k, &v, MDB_PREV);
                continue;
            }
            total++;
            if ((rv = collect(&c, &k, &v)) != 0) {
                goto done;
            }
            if (c.full && no_total) {
                break; /* the key that did not fit says "more" */
            }
            rc = mdb_cursor_get(cur, &k, &v, MDB_PREV);
        }
    }
    if (rc != 0 && rc != MDB_NOTFOUND) {
        rv = kv_mdb_error(store, rc, "range scan");
    }

done:
    if (cur != NULL) {
        mdb_cursor_close(cur);
    }
    if (rv == 0 && c.n > 0) {
        *kvs = kv_arena_alloc(arena, alloc, c.n * sizeof(**kvs));
        if (*kvs == NULL) {
            rv = KV_ENOMEM;
        } else {
            memcpy(*kvs, c.tmp, c.n * sizeof(**kvs));
            *n_kvs = c.n;
        }
    }
    kv_free(alloc, c.tmp);
    if (rv == 0) {
        *count = no_total && !(flags & KV_FLAG_COUNT_ONLY) ? c.n : total;
        *more = !(flags & KV_FLAG_COUNT_ONLY) && total > c.n;
    } else if (rv == KV_ECORRUPT) {
        kv_corrupt_found(store, "keys: a record is damaged (checksum)");
    }
    return rv;
}

static int range_common(struct kv_store *s,
                        const uint8_t *key,
                        uint32_t key_len,
                        const uint8_t *end,
                        uint32_t end_len,
                        uint8_t flags,
                        uint64_t limit,
                        struct kv_range_result *res)
{
    MDB_txn *txn = NULL;
    int rv;
    memset(res, 0, sizeof(*res));
    res->alloc = s->alloc;
    if ((key == NULL && key_len > 0) || (end == NULL && end_len > 0) ||
        key_len > KV_KEY_BYTES_MAX || end_len > KV_KEY_BYTES_MAX ||
        (flags & ~(KV_FLAG_PREFIX | KV_FLAG_REVERSE | KV_FLAG_COUNT_ONLY |
                   KV_FLAG_KEYS_ONLY | KV_RANGE_NO_TOTAL))) {
        return KV_EINVAL;
    }
    if ((rv = kv_read_begin(s, &txn)) != 0) {
        return rv;
    }
    if ((rv = kv_meta_get(s, txn, KV_META_REVISION, &res->revision)) != 0 ||
        (rv = kv_meta_get(s, txn, KV_META_APPLIED, &res->applied)) != 0) {
        goto cleanup;
    }
    rv = kv_range_in_txn(s, txn, kv_wall_ms(), key, key_len, end, end_len,
                         flags, limit, &res->arena, &res->alloc, &res->kvs,
                         &res->n_kvs, &res->count, &res->more);

cleanup:
    mdb_txn_abort(txn);
    if (rv != 0) {
        kv_arena_free(&res->arena, &res->alloc);
        res->kvs = NULL;
        res->n_kvs = 0;
    }
    return rv;
}

int kv_get(struct kv_store *s,
           const uint8_t *key,
           uint32_t key_len,
           struct kv_range_result *res)
{
    if (key_len == 0) {
        memset(res, 0, sizeof(*res));
        res->alloc = s->alloc;
        return KV_EINVAL;
    }
    int rv = range_common(s, key, key_len, NULL, 0, 0, 0, res);
    if (rv == 0 && res->n_kvs == 0) {
        return KV_ENOTFOUND;
    }
    return rv;
}

int kv_get_many(struct kv_store *s,
                size_t n,
                const uint8_t *const *keys,
                const uint32_t *lens,
                kv_get_fn fn,
                void *arg)
{
    MDB_txn *txn = NULL;
    int rv;
    for (size_t i = 0; i < n; i++) {
        if (lens[i] == 0 || lens[i] > KV_KEY_BYTES_MAX || keys[i] == NULL) {
            return KV_EINVAL;
        }
    }
    if ((rv = kv_read_begin(s, &txn)) != 0) {
        return rv;
    }
    uint64_t now = kv_wall_ms();
    struct kv_arena_chunk *arena = NULL;
    for (size_t i = 0; i < n && rv == 0; i++) {
        struct kv_kv *kvs = NULL;
        size_t n_kvs = 0;
        uint64_t count = 0;
        bool more = false;
        rv = kv_range_in_txn(s, txn, now, keys[i], lens[i], NULL, 0, 0, 0,
                             &arena, &s->alloc, &kvs, &n_kvs, &count, &more);
        if (rv == 0) {
            rv = fn(arg, i, n_kvs == 1 ? &kvs[0] : NULL);
        }
        /* One key's pair at a time: the arena never holds more. */
        kv_arena_free(&arena, &s->alloc);
    }
    mdb_txn_abort(txn);
    return rv;
}

int kv_range(struct kv_store *s,
             const struct kv_range_req *req,
             struct kv_range_result *res)
{
    return range_common(s, req->key, req->key_len, req->end, req->end_len,
                        req->flags, req->limit, res);
}

void kv_range_result_free(struct kv_range_result *res)
{
    struct kv_allocator a = res->alloc;
    if (a.free_fn != NULL) {
        kv_arena_free(&res->arena, &a);
    }
    memset(res, 0, sizeof(*res));
}
