/*
 * kv_history.c - the change history read by watches, and its compaction.
 *
 * History records are keyed by (revision, sequence) in big endian, so LMDB's
 * byte order is revision order and a watch resumes with one cursor seek.
 * Compaction first moves the compaction point (from then on reads below it
 * fail with KV_ECOMPACTED, so no reader can observe a half-deleted prefix),
 * then deletes in bounded write transactions; the point and the progress are
 * stored, so a crash leaves a compaction that the next call resumes.
 */
#include <inttypes.h>
#include <string.h>

#include "kv_internal.h"

#define HISTORY_DEFAULT_EVENTS 1000u

int kv_history_read(struct kv_store *s,
                    struct kv_history_pos from,
                    size_t max_events,
                    struct kv_history_result *res,
                    uint64_t *compact_revision)
{
    MDB_txn *txn = NULL;
    MDB_cursor *cur = NULL;
    uint8_t kbuf[KV_HIST_KEY];
    MDB_val k = {KV_HIST_KEY, kbuf}, v;
    uint64_t compact = 0;
    struct kv_event *tmp = NULL;
    size_t cap = 0, n = 0, bytes = 0;
    int rv, rc;

    memset(res, 0, sizeof(*res));
    res->alloc = s->alloc;
    if (max_events == 0) {
        max_events = HISTORY_DEFAULT_EVENTS;
    }
    if ((rv = kv_read_begin(s, &txn)) != 0) {
        return rv;
    }
    if ((rv = kv_meta_get(s, txn, KV_META_REVISION, &res->revision)) != 0 ||
        (rv = kv_meta_get(s, txn, KV_META_COMPACT, &compact)) != 0) {
        goto cleanup;
    }
    if (compact_revision != NULL) {
        *compact_revision = compact;
    }
    if (from.revision < compact) {
        rv = kv_set_error(s, KV_ECOMPACTED,
                          "history: revision %llu compacted (first kept %llu)",
                          (unsigned long long)from.revision,
                          (unsigned long long)compact);
        goto cleanup;
    }
    if (from.revision > res->revision + 1) {
        rv = kv_set_error(s, KV_EFUTURE, "history: revision %llu > %llu",
                          (unsigned long long)from.revision,
                          (unsigned long long)res->revision);
        goto cleanup;
    }
    if ((rc = mdb_cursor_open(txn, s->dbi_hist, &cur)) != 0) {
        rv = kv_mdb_error(s, rc, "history cursor");
        goto cleanup;
    }
    kv_put_u64be(kbuf, from.revision);
    kv_put_u32be(kbuf + 8, from.seq);
    rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
    while (rc == 0 && n < max_events) {
        struct kv_event ev;
        if (kv_hist_decode(&k, &v, &ev) != 0) {
            rv = kv_corrupt_found(s,
                                  "history: record at revision %" PRIu64
                                  " is damaged (checksum)",
                                  kv_get_u64be(k.mv_data));
            goto cleanup;
        }
        /* The same byte bound as range reads, so a watch catching up
         * cannot pull gigabytes into memory at once. */
        size_t ev_bytes = (size_t)ev.kv.key_len + ev.kv.value_len;
        if (n > 0 && bytes + ev_bytes > KV_RANGE_BYTES_MAX) {
            break;
        }
        bytes += ev_bytes;
        if ((rv = kv_array_grow(&s->alloc, (void **)&tmp, &cap, n + 1,
                                sizeof(*tmp))) != 0) {
            goto cleanup;
        }
        tmp[n] = ev;
        if ((rv = kv_kv_copy(&res->arena, &res->alloc, &ev.kv,
                             ev.type == KV_EVENT_PUT, &tmp[n].kv)) != 0) {
            goto cleanup;
        }
        n++;
        rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
    }
    if (rc != 0 && rc != MDB_NOTFOUND) {
        rv = kv_mdb_error(s, rc, "history scan");
        goto cleanup;
    }
    res->more = rc == 0;
    if (res->more) {
        res->next.revision = tmp[n - 1].kv.mod_revision;
        res->next.seq = tmp[n - 1].seq + 1;
    } else {
        /* Caught up: the next event can only come with a new revision. */
        res->next.revision = res->revision + 1;
        res->next.seq = 0;
    }
    if (n > 0) {
        res->events =
            kv_arena_alloc(&res->arena, &res->alloc, n * sizeof(*res->events));
        if (res->events == NULL) {
            rv = KV_ENOMEM;
            goto cleanup;
        }
        memcpy(res->events, tmp, n * sizeof(*tmp));
        res->n_events = n;
    }

cleanup:
    if (cur != NULL) {
        mdb_cursor_close(cur);
    }
    mdb_txn_abort(txn);
    kv_free(&s->alloc, tmp);
    if (rv != 0) {
        struct kv_allocator a = res->alloc;
        kv_arena_free(&res->arena, &a);
        memset(res, 0, sizeof(*res));
        res->alloc = a;
    }
    return rv;
}

void kv_history_result_free(struct kv_history_result *res)
{
    struct kv_allocator a = res->alloc;
    if (a.free_fn != NULL) {
        kv_arena_free(&res->arena, &a);
    }
    memset(res, 0, sizeof(*res));
}

/* Deletes up to one batch of history below @target. Sets *finished when
 * nothing below @target remains (and records it). */
static int compact_batch(struct kv_store *s, uint64_t target, bool *finished)
{
    MDB_txn *txn = NULL;
    MDB_cursor *cur = NULL;
    MDB_val k, v;
    uint32_t deleted = 0;
    int rv = 0, rc;

    *finished = false;
    if ((rv = kv_mark_dirty(s)) != 0 ||
        (rv = kv_reserve(s, 0, 0, s->opts.compact_batch)) != 0) {
        return rv;
    }
    if ((rc = mdb_txn_begin(s->env, NULL, 0, &txn)) != 0) {
        return kv_mdb_error(s, rc, "compact begin");
    }
    if ((rc = mdb_cursor_open(txn, s->dbi_hist, &cur)) != 0) {
        rv = kv_mdb_error(s, rc, "compact cursor");
        goto cleanup;
    }
    rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST);
    while (rc == 0 && deleted < s->opts.compact_batch) {
        if (k.mv_size != KV_HIST_KEY) {
            rv = kv_set_error(s, KV_ECORRUPT, "history: malformed key");
            goto cleanup;
        }
        if (kv_get_u64be(k.mv_data) >= target) {
            break;
        }
        if ((rc = mdb_cursor_del(cur, 0)) != 0) {
            break;
        }
        deleted++;
        rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
    }
    if (rc != 0 && rc != MDB_NOTFOUND) {
        rv = kv_mdb_error(s, rc, "compact");
        goto cleanup;
    }
    if (deleted < s->opts.compact_batch) {
        *finished = true;
        if ((rv = kv_meta_put(s, txn, KV_META_COMPACT_DONE, target)) != 0) {
            goto cleanup;
        }
    }
    mdb_cursor_close(cur);
    cur = NULL;
    rc = mdb_txn_commit(txn);
    txn = NULL;
    if (rc != 0) {
        rv = kv_mdb_error(s, rc, "compact commit");
    }

cleanup:
    if (cur != NULL) {
        mdb_cursor_close(cur);
    }
    if (txn != NULL) {
        mdb_txn_abort(txn);
    }
    return rv;
}

int kv_compact(struct kv_store *s, uint64_t revision)
{
    MDB_txn *txn = NULL;
    uint64_t rev = 0, point = 0, done = 0;
    bool finished = false;
    int rv, rc;

    if (s->poisoned || s->env == NULL) {
        return KV_EPOISONED;
    }
    if ((rv = kv_mark_dirty(s)) != 0) {
        return rv;
    }
    if ((rc = mdb_txn_begin(s->env, NULL, 0, &txn)) != 0) {
        return kv_mdb_error(s, rc, "compact begin");
    }
    if ((rv = kv_meta_get(s, txn, KV_META_REVISION, &rev)) != 0 ||
        (rv = kv_meta_get(s, txn, KV_META_COMPACT, &point)) != 0 ||
        (rv = kv_meta_get(s, txn, KV_META_COMPACT_DONE, &done)) != 0) {
        goto fail;
    }
    if (revision > rev) {
        rv =
            kv_set_error(s, KV_EFUTURE, "compact %llu beyond revision %llu",
                         (unsigned long long)revision, (unsigned long long)rev);
        goto fail;
    }
    /* A lower request resumes the stored point: the point never moves
     * back, or a watch could be told about history that is gone. */
    if (revision > point) {
        point = revision;
        if ((rv = kv_meta_put(s, txn, KV_META_COMPACT, point)) != 0) {
            goto fail;
        }
    }
    rc = mdb_txn_commit(txn);
    txn = NULL;
    if (rc != 0) {
        rv = kv_mdb_error(s, rc, "compact commit");
        goto fail;
    }
    if (done >= point) {
        return 0;
    }
    while (!finished) {
        if ((rv = compact_batch(s, point, &finished)) != 0) {
            return rv;
        }
        if (s->opts.step_hook != NULL && !finished &&
            s->opts.step_hook(s->opts.step_arg, KV_STEP_COMPACT_BATCH) != 0) {
            return KV_ESTOPPED;
        }
    }
    return 0;

fail:
    if (txn != NULL) {
        mdb_txn_abort(txn);
    }
    return rv;
}

int kv_compact_step(struct kv_store *s, bool *pending)
{
    MDB_txn *txn = NULL;
    uint64_t point = 0, done = 0;
    bool finished = false;
    int rv;

    *pending = false;
    if (s->poisoned || s->env == NULL) {
        return KV_EPOISONED;
    }
    if ((rv = kv_read_begin(s, &txn)) != 0) {
        return rv;
    }
    if ((rv = kv_meta_get(s, txn, KV_META_COMPACT, &point)) == 0) {
        rv = kv_meta_get(s, txn, KV_META_COMPACT_DONE, &done);
    }
    mdb_txn_abort(txn);
    if (rv != 0 || done >= point) {
        return rv;
    }
    if ((rv = compact_batch(s, point, &finished)) != 0) {
        return rv;
    }
    *pending = !finished;
    return 0;
}
