/*
 * kv_scrub.c - re-reading the whole store to find damage before a client
 * does, a bounded piece at a time.
 *
 * A pass walks the "keys" database in key order, then the hash fields
 * ("hash_fields") and then the "history" database, checking every
 * record's checksum (kv_record_decode(), kv_hist_decode(), the field
 * records' own). Each step opens its own read transaction and resumes
 * after the last record checked, so no transaction outlives a step (the
 * node remaps the store and installs snapshots between steps) and a pass
 * costs the apply loop nothing. While walking the keys and the fields it
 * sums their checksums; if the store did not change during the pass (its
 * applied index is the same at the end as at the start) that sum must equal the
 * store digest kept by the applies (KV_META_DIGEST), which catches records
 * that vanished or appeared without an apply (a garbled branch page).
 */
#include <inttypes.h>
#include <string.h>

#include "kv_internal.h"

struct kv_scrub
{
    struct kv_allocator alloc;
    int phase; /* 0: not started, 1: keys, 2: hash fields, 3: history */
    uint8_t last[KV_KEY_BYTES_MAX];
    size_t last_len;  /* 0: start of the database */
    uint64_t applied; /* the store's applied index when the pass began */
    uint64_t sum;     /* of the checksums of the keys seen this pass */
    bool sum_valid;   /* the keys phase ran over an unchanged store */
    struct kv_scrub_stats stats;
};

int kv_scrub_create(struct kv_store *s, struct kv_scrub **out)
{
    struct kv_scrub *sc = kv_malloc(&s->alloc, sizeof(*sc));
    if (sc == NULL) {
        return KV_ENOMEM;
    }
    memset(sc, 0, sizeof(*sc));
    sc->alloc = s->alloc;
    *out = sc;
    return 0;
}

void kv_scrub_destroy(struct kv_scrub *sc)
{
    if (sc != NULL) {
        struct kv_allocator a = sc->alloc;
        kv_free(&a, sc);
    }
}

void kv_scrub_get_stats(const struct kv_scrub *sc, struct kv_scrub_stats *stats)
{
    *stats = sc->stats;
}

/* Positions @cur on the first record after sc->last (or the first). */
static int seek(struct kv_scrub *sc, MDB_cursor *cur, MDB_val *k, MDB_val *v)
{
    if (sc->last_len == 0) {
        return mdb_cursor_get(cur, k, v, MDB_FIRST);
    }
    k->mv_size = sc->last_len;
    k->mv_data = sc->last;
    int rc = mdb_cursor_get(cur, k, v, MDB_SET_RANGE);
    if (rc == 0 && k->mv_size == sc->last_len &&
        memcmp(k->mv_data, sc->last, sc->last_len) == 0) {
        rc = mdb_cursor_get(cur, k, v, MDB_NEXT);
    }
    return rc;
}

/* Ends the keys and fields phases: compares the sum with the stored
 * digest. */
static int keys_done(struct kv_store *s, struct kv_scrub *sc, MDB_txn *txn)
{
    uint64_t applied = 0, digest = 0;
    int rv;
    if ((rv = kv_meta_get(s, txn, KV_META_APPLIED, &applied)) != 0 ||
        (rv = kv_meta_get(s, txn, KV_META_DIGEST, &digest)) != 0) {
        return rv;
    }
    if (sc->sum_valid && applied == sc->applied) {
        sc->stats.digest_checks++;
        if (digest != sc->sum) {
            return kv_corrupt_found(s,
                                    "keys: the records sum to %016" PRIx64
                                    " but the store digest at index %" PRIu64
                                    " is %016" PRIx64
                                    " (records lost or added)",
                                    sc->sum, applied, digest);
        }
    }
    sc->phase = 3;
    sc->last_len = 0;
    return 0;
}

/* Checks one hash field record (kv_internal.h) and adds its checksum to
 * the pass's sum. */
static int field_check(struct kv_store *s,
                       struct kv_scrub *sc,
                       const MDB_val *k,
                       const MDB_val *v)
{
    if (!kv_field_ok(k, v)) {
        return kv_corrupt_found(s, "hash_fields: a field record is damaged");
    }
    sc->sum += kv_get_u64le(v->mv_data);
    return 0;
}

int kv_scrub_step(struct kv_store *s,
                  struct kv_scrub *sc,
                  uint64_t budget_bytes,
                  bool *pass_done)
{
    MDB_txn *txn = NULL;
    MDB_cursor *cur = NULL;
    MDB_val k, v;
    uint64_t bytes = 0;
    int rv, rc;

    *pass_done = false;
    if ((rv = kv_read_begin(s, &txn)) != 0) {
        return rv;
    }
    if (sc->phase == 0) {
        if ((rv = kv_meta_get(s, txn, KV_META_APPLIED, &sc->applied)) != 0) {
            goto cleanup;
        }
        sc->phase = 1;
        sc->last_len = 0;
        sc->sum = 0;
        sc->sum_valid = true;
    }
    while (sc->phase != 0 && (budget_bytes == 0 || bytes < budget_bytes)) {
        bool hist = sc->phase == 3;
        bool fields = sc->phase == 2;
        MDB_dbi dbi = hist     ? s->dbi_hist
                      : fields ? s->dbi_hfields
                               : s->dbi_keys;
        if ((rc = mdb_cursor_open(txn, dbi, &cur)) != 0) {
            rv = kv_mdb_error(s, rc, "scrub cursor");
            goto cleanup;
        }
        rc = seek(sc, cur, &k, &v);
        while (rc == 0 && (budget_bytes == 0 || bytes < budget_bytes)) {
            if (k.mv_size == 0 || k.mv_size > KV_KEY_BYTES_MAX) {
                rv = kv_corrupt_found(s, "%s: a key of %zu bytes",
                                      hist ? "history" : "keys", k.mv_size);
                goto cleanup;
            }
            if (fields) {
                if ((rv = field_check(s, sc, &k, &v)) != 0) {
                    goto cleanup;
                }
            } else if (!hist) {
                struct kv_kv kv;
                if (kv_record_decode(&k, &v, &kv) != 0) {
                    rv = kv_corrupt_found(
                        s, "keys: the record of key '%.*s' is damaged",
                        (int)(k.mv_size < 64 ? k.mv_size : 64),
                        (const char *)k.mv_data);
                    goto cleanup;
                }
                sc->sum += kv_record_sum(&v);
            } else {
                struct kv_event ev;
                if (kv_hist_decode(&k, &v, &ev) != 0) {
                    rv = kv_corrupt_found(
                        s,
                        "history: the record at revision %" PRIu64
                        " is damaged",
                        k.mv_size == KV_HIST_KEY ? kv_get_u64be(k.mv_data) : 0);
                    goto cleanup;
                }
            }
            bytes += k.mv_size + v.mv_size;
            sc->stats.records++;
            memcpy(sc->last, k.mv_data, k.mv_size);
            sc->last_len = k.mv_size;
            rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
        }
        mdb_cursor_close(cur);
        cur = NULL;
        if (rc == 0) {
            break; /* the budget is spent; resume after sc->last */
        }
        if (rc != MDB_NOTFOUND) {
            rv = kv_mdb_error(s, rc, "scrub");
            goto cleanup;
        }
        if (sc->phase == 1) {
            sc->phase = 2;
            sc->last_len = 0;
        } else if (fields) {
            if ((rv = keys_done(s, sc, txn)) != 0) {
                goto cleanup;
            }
        } else {
            sc->phase = 0;
            sc->stats.passes++;
            *pass_done = true;
        }
    }
    if (sc->phase == 1 || sc->phase == 2) {
        /* A step that saw another applied index cannot compare the sum. */
        uint64_t applied = 0;
        if ((rv = kv_meta_get(s, txn, KV_META_APPLIED, &applied)) != 0) {
            goto cleanup;
        }
        if (applied != sc->applied) {
            sc->sum_valid = false;
        }
    }

cleanup:
    sc->stats.bytes += bytes;
    if (cur != NULL) {
        mdb_cursor_close(cur);
    }
    mdb_txn_abort(txn);
    return rv;
}
