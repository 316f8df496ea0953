/*
 * kv_store.c - opening and closing the store, its directory layout, errors,
 * allocation, metadata and checkpoints.
 *
 * Directory layout (docs/kv.md):
 *
 *   DIR/CURRENT      "env-<gen>\n": the live generation; replaced by rename
 *   DIR/env-<gen>/   the live LMDB environment (data.mdb, lock.mdb)
 *   DIR/stage/       a snapshot being received (data.mdb)
 *   DIR/DIRTY        boot id: writes since the last checkpoint (see
 *                    kv_mark_dirty())
 *
 * Anything else with those shapes (older generations, a stage, a
 * CURRENT.tmp) is what an interrupted install left behind and is removed at
 * open: the rename of CURRENT is the single commit point of an install.
 */
#include <assert.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
/* The hash inlined from the header: the same values as libxxhash's, but
 * no call through the PLT and code the compiler specializes for the
 * short inputs of a record (a third of the cost of every write). */
#define XXH_INLINE_ALL
#include <xxhash.h>

#include "kv_internal.h"

/* ---------------------------------------------------------------------- */
/* Errors                                                                  */

static const struct
{
    int code;
    const char *text;
} error_table[] = {
    {0, "success"},
    {KV_ENOMEM, "out of memory"},
    {KV_EINVAL, "invalid argument"},
    {KV_EBADCMD, "malformed command"},
    {KV_ELIMIT, "command exceeds a limit"},
    {KV_EFULL, "store full (map size reached)"},
    {KV_ENOSPC, "no space left on device"},
    {KV_EIO, "I/O error"},
    {KV_ECORRUPT, "corrupt data"},
    {KV_ECOMPACTED, "revision compacted"},
    {KV_EFUTURE, "revision not reached yet"},
    {KV_EGAP, "entries not contiguous with the applied index"},
    {KV_ENOTFOUND, "key not found"},
    {KV_ESTATE, "operation not allowed in the current state"},
    {KV_EVERSION, "unsupported format version"},
    {KV_EPOISONED, "store poisoned by an earlier failed sync"},
    {KV_EBUSY, "too many concurrent readers"},
    {KV_ESTOPPED, "stopped by a test hook"},
    {KV_ETORN, "store possibly torn by a machine crash"},
    {KV_ENOPERM, "the user may not run the command or touch its keys"},
    {KV_EACLRULE, "malformed ACL rule"},
    {KV_ENOLEASE, "no such lease"},
    {KV_ELEASEEXISTS, "a lease with that id already exists"},
    {KV_ELEASESFULL, "too many leases"},
    {KV_EFENCED, "the fencing token is not the lock holder's"},
    {KV_ELOCKNOTHELD, "no holder or waiter of the lock has that token"},
    {KV_ELOCKWAITERS, "too many waiters for the lock"},
    {KV_EWRONGTYPE,
     "WRONGTYPE Operation against a key holding the wrong kind of value"},
};

const char *kv_strerror(int code)
{
    for (size_t i = 0; i < sizeof(error_table) / sizeof(error_table[0]); i++) {
        if (error_table[i].code == code) {
            return error_table[i].text;
        }
    }
    return "unknown kv error";
}

int kv_set_error(struct kv_store *store, int code, const char *fmt, ...)
{
    va_list ap;
    char buf[sizeof(store->errmsg) - 4];
    va_start(ap, fmt);
    vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    pthread_mutex_lock(&store->err_lock);
    snprintf(store->errmsg, sizeof(store->errmsg), "kv: %s", buf);
    pthread_mutex_unlock(&store->err_lock);
    return code;
}

int kv_corrupt_found(struct kv_store *store, const char *fmt, ...)
{
    va_list ap;
    char buf[sizeof(store->errmsg) - 4];
    va_start(ap, fmt);
    vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    pthread_mutex_lock(&store->err_lock);
    if (!atomic_load(&store->corrupt)) {
        snprintf(store->corrupt_msg, sizeof(store->corrupt_msg), "%s", buf);
        atomic_store(&store->corrupt, true);
    }
    snprintf(store->errmsg, sizeof(store->errmsg), "kv: %s", buf);
    pthread_mutex_unlock(&store->err_lock);
    return KV_ECORRUPT;
}

bool kv_corrupt(struct kv_store *store, char *why, size_t why_len)
{
    if (!atomic_load(&store->corrupt)) {
        return false;
    }
    if (why != NULL && why_len > 0) {
        pthread_mutex_lock(&store->err_lock);
        snprintf(why, why_len, "%s", store->corrupt_msg);
        pthread_mutex_unlock(&store->err_lock);
    }
    return true;
}

int kv_errno_code(int err)
{
    switch (err) {
    case ENOMEM:
        return KV_ENOMEM;
    case ENOSPC:
    case EDQUOT:
    case EFBIG:
        return KV_ENOSPC;
    default:
        return KV_EIO;
    }
}

int kv_mdb_error(struct kv_store *store, int rc, const char *what)
{
    int code;
    switch (rc) {
    case MDB_MAP_FULL:
        code = KV_EFULL;
        break;
    case MDB_READERS_FULL:
        code = KV_EBUSY;
        break;
    case MDB_CORRUPTED:
    case MDB_PAGE_NOTFOUND:
        /* The live environment's pages are damaged: nothing read from it
         * can be trusted any more. */
        return kv_corrupt_found(store, "%s: %s", what, mdb_strerror(rc));
    case MDB_INVALID:
    case MDB_INCOMPATIBLE:
        code = KV_ECORRUPT;
        break;
    case MDB_VERSION_MISMATCH:
        code = KV_EVERSION;
        break;
    default:
        code = rc > 0 ? kv_errno_code(rc) : KV_EIO;
        break;
    }
    return kv_set_error(store, code, "%s: %s", what, mdb_strerror(rc));
}

void kv_errmsg(struct kv_store *store, char *buf, size_t len)
{
    if (len == 0) {
        return;
    }
    pthread_mutex_lock(&store->err_lock);
    snprintf(buf, len, "%s", store->errmsg);
    pthread_mutex_unlock(&store->err_lock);
}

/* ---------------------------------------------------------------------- */
/* Allocation                                                              */

static void *libc_malloc(void *ctx, size_t size)
{
    (void)ctx;
    return malloc(size);
}
static void *libc_realloc(void *ctx, void *ptr, size_t size)
{
    (void)ctx;
    return realloc(ptr, size);
}
static void libc_free(void *ctx, void *ptr)
{
    (void)ctx;
    free(ptr);
}

void kv_allocator_resolve(const struct kv_allocator *in,
                          struct kv_allocator *out)
{
    out->ctx = in != NULL ? in->ctx : NULL;
    out->malloc_fn =
        in != NULL && in->malloc_fn != NULL ? in->malloc_fn : libc_malloc;
    out->realloc_fn =
        in != NULL && in->realloc_fn != NULL ? in->realloc_fn : libc_realloc;
    out->free_fn = in != NULL && in->free_fn != NULL ? in->free_fn : libc_free;
}

void *kv_malloc(const struct kv_allocator *a, size_t size)
{
    return a->malloc_fn(a->ctx, size == 0 ? 1 : size);
}
void *kv_realloc(const struct kv_allocator *a, void *ptr, size_t size)
{
    return a->realloc_fn(a->ctx, ptr, size == 0 ? 1 : size);
}
void kv_free(const struct kv_allocator *a, void *ptr)
{
    if (ptr != NULL) {
        a->free_fn(a->ctx, ptr);
    }
}

#define ARENA_CHUNK_BYTES (64u * 1024u)
#define ARENA_ALIGN 8u

void *kv_arena_alloc(struct kv_arena_chunk **arena,
                     const struct kv_allocator *a,
                     size_t size)
{
    struct kv_arena_chunk *c = *arena;
    size_t hdr = (sizeof(*c) + ARENA_ALIGN - 1) & ~(size_t)(ARENA_ALIGN - 1);
    size = (size + ARENA_ALIGN - 1) & ~(size_t)(ARENA_ALIGN - 1);
    if (c == NULL || c->cap - c->used < size) {
        size_t cap = size > ARENA_CHUNK_BYTES ? size : ARENA_CHUNK_BYTES;
        c = kv_malloc(a, hdr + cap);
        if (c == NULL) {
            return NULL;
        }
        c->cap = cap;
        c->used = 0;
        c->next = *arena;
        *arena = c;
    }
    void *p = (uint8_t *)c + hdr + c->used;
    c->used += size;
    return p;
}

void kv_arena_free(struct kv_arena_chunk **arena, const struct kv_allocator *a)
{
    struct kv_arena_chunk *c = *arena;
    while (c != NULL) {
        struct kv_arena_chunk *next = c->next;
        kv_free(a, c);
        c = next;
    }
    *arena = NULL;
}

int kv_array_grow(const struct kv_allocator *a,
                  void **array,
                  size_t *cap,
                  size_t need,
                  size_t elem)
{
    if (need <= *cap) {
        return 0;
    }
    size_t n = *cap == 0 ? 8 : *cap * 2;
    while (n < need) {
        n *= 2;
    }
    void *p = kv_realloc(a, *array, n * elem);
    if (p == NULL) {
        return KV_ENOMEM;
    }
    *array = p;
    *cap = n;
    return 0;
}

/* ---------------------------------------------------------------------- */
/* Records                                                                 */

/* The checksum of a record: the XXH3-64 of @body seeded with the XXH3-64 of
 * the key it is stored under, so that a record moved under another key
 * does not check either. */
static uint64_t record_sum(const void *key,
                           size_t key_len,
                           const uint8_t *body,
                           size_t body_len)
{
    uint64_t seed = XXH3_64bits_withSeed(key, key_len, KV_REC_SEED);
    return XXH3_64bits_withSeed(body, body_len, seed);
}

uint64_t kv_rec_sum(const void *key,
                    size_t key_len,
                    const uint8_t *body,
                    size_t body_len)
{
    return record_sum(key, key_len, body, body_len);
}

void kv_record_encode(const struct kv_kv *kv, uint8_t *p)
{
    kv_put_u64le(p + 8, kv->create_revision);
    kv_put_u64le(p + 16, kv->mod_revision);
    kv_put_u64le(p + 24, kv->version);
    kv_put_u64le(p + 32, kv->lease);
    kv_put_u64le(p + 40, kv->expire_at);
    p[48] = kv->type;
    if (kv->value_len > 0 && kv->value != p + KV_REC_HEADER) {
        memcpy(p + KV_REC_HEADER, kv->value, kv->value_len);
    }
    kv_put_u64le(p, record_sum(kv->key, kv->key_len, p + 8,
                               KV_REC_HEADER - 8 + (size_t)kv->value_len));
}

int kv_record_decode(const MDB_val *key, const MDB_val *val, struct kv_kv *kv)
{
    if (val->mv_size < KV_REC_HEADER || key->mv_size > KV_KEY_BYTES_MAX ||
        val->mv_size - KV_REC_HEADER > KV_VALUE_BYTES_MAX) {
        return KV_ECORRUPT;
    }
    const uint8_t *v = val->mv_data;
    if (kv_get_u64le(v) !=
        record_sum(key->mv_data, key->mv_size, v + 8, val->mv_size - 8)) {
        return KV_ECORRUPT;
    }
    kv->key = key->mv_data;
    kv->key_len = (uint32_t)key->mv_size;
    kv->create_revision = kv_get_u64le(v + 8);
    kv->mod_revision = kv_get_u64le(v + 16);
    kv->version = kv_get_u64le(v + 24);
    kv->lease = kv_get_u64le(v + 32);
    kv->expire_at = kv_get_u64le(v + 40);
    kv->type = v[48];
    if (kv->type != KV_TYPE_STRING && kv->type != KV_TYPE_HASH) {
        return KV_ECORRUPT;
    }
    kv->value = v + KV_REC_HEADER;
    kv->value_len = (uint32_t)(val->mv_size - KV_REC_HEADER);
    return 0;
}

void kv_hist_encode(const uint8_t *hkey,
                    uint8_t type,
                    const struct kv_kv *kv,
                    uint8_t *p)
{
    p[8] = type;
    kv_put_u32le(p + 9, kv->key_len);
    kv_put_u32le(p + 13, kv->value_len);
    kv_put_u64le(p + 17, kv->create_revision);
    kv_put_u64le(p + 25, kv->version);
    memcpy(p + KV_HIST_HEADER, kv->key, kv->key_len);
    if (kv->value_len > 0) {
        memcpy(p + KV_HIST_HEADER + kv->key_len, kv->value, kv->value_len);
    }
    kv_put_u64le(p, record_sum(hkey, KV_HIST_KEY, p + 8,
                               KV_HIST_HEADER - 8 + (size_t)kv->key_len +
                                   kv->value_len));
}

int kv_hist_decode(const MDB_val *k, const MDB_val *v, struct kv_event *ev)
{
    const uint8_t *p = v->mv_data;
    if (k->mv_size != KV_HIST_KEY || v->mv_size < KV_HIST_HEADER) {
        return KV_ECORRUPT;
    }
    uint32_t key_len = kv_get_u32le(p + 9);
    uint32_t value_len = kv_get_u32le(p + 13);
    if ((p[8] != KV_EVENT_PUT && p[8] != KV_EVENT_DELETE) ||
        key_len > KV_KEY_BYTES_MAX || value_len > KV_VALUE_BYTES_MAX ||
        v->mv_size != KV_HIST_HEADER + (size_t)key_len + value_len) {
        return KV_ECORRUPT;
    }
    if (kv_get_u64le(p) !=
        record_sum(k->mv_data, KV_HIST_KEY, p + 8, v->mv_size - 8)) {
        return KV_ECORRUPT;
    }
    memset(ev, 0, sizeof(*ev));
    ev->type = p[8];
    ev->seq = kv_get_u32be((const uint8_t *)k->mv_data + 8);
    ev->kv.mod_revision = kv_get_u64be(k->mv_data);
    ev->kv.key = p + KV_HIST_HEADER;
    ev->kv.key_len = key_len;
    ev->kv.create_revision = kv_get_u64le(p + 17);
    ev->kv.version = kv_get_u64le(p + 25);
    if (ev->type == KV_EVENT_PUT) {
        ev->kv.value = p + KV_HIST_HEADER + key_len;
        ev->kv.value_len = value_len;
    }
    return 0;
}

/* Rewrites every record of an older store in the current layout, inside
 * @txn. Version 1 had no checksums (a 24-byte "keys" header and a 25-byte
 * history header, the same fields in the same order); version 2 had them
 * (a 32-byte "keys" header: checksum, then the same fields) but no lease
 * or expiry, and its history records are already current; version 3 had
 * a 48-byte header with lease and expiry but no type (every key was a
 * string). */
#define V1_REC_HEADER 24u
#define V1_HIST_HEADER 25u
#define V2_REC_HEADER 32u
#define V3_REC_HEADER 48u
static int upgrade(struct kv_store *s, MDB_txn *txn, uint64_t from)
{
    size_t old_header = from == 1   ? V1_REC_HEADER
                        : from == 2 ? V2_REC_HEADER
                                    : V3_REC_HEADER;
    size_t fields = from == 1 ? 0 : 8; /* where create_revision is */
    size_t cap = KV_HIST_HEADER + KV_KEY_BYTES_MAX + KV_VALUE_BYTES_MAX;
    uint8_t *buf = kv_malloc(&s->alloc, cap);
    uint8_t *old = kv_malloc(&s->alloc, cap);
    uint8_t key[KV_KEY_BYTES_MAX];
    MDB_cursor *cur = NULL;
    MDB_val k, v;
    uint64_t digest = 0;
    int rv = 0, rc;
    if (buf == NULL || old == NULL) {
        rv = KV_ENOMEM;
        goto cleanup;
    }
    for (int pass = 0; pass < (from == 1 ? 2 : 1); pass++) {
        bool hist = pass == 1;
        if ((rc = mdb_cursor_open(txn, hist ? s->dbi_hist : s->dbi_keys,
                                  &cur)) != 0) {
            rv = kv_mdb_error(s, rc, "upgrade cursor");
            goto cleanup;
        }
        rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST);
        while (rc == 0) {
            struct kv_kv kv;
            const uint8_t *p = old;
            memset(&kv, 0, sizeof(kv));
            if (v.mv_size > cap || k.mv_size > KV_KEY_BYTES_MAX ||
                v.mv_size < (hist ? V1_HIST_HEADER : old_header)) {
                rv = kv_set_error(s, KV_ECORRUPT, "upgrade: malformed record");
                goto cleanup;
            }
            /* The put below moves the record and its key within the page:
             * work from copies. */
            memcpy(old, v.mv_data, v.mv_size);
            memcpy(key, k.mv_data, k.mv_size);
            k.mv_data = key;
            size_t n;
            if (!hist) {
                kv.key = k.mv_data;
                kv.key_len = (uint32_t)k.mv_size;
                if (from >= 2 &&
                    kv_get_u64le(p) != record_sum(k.mv_data, k.mv_size, p + 8,
                                                  v.mv_size - 8)) {
                    rv = kv_corrupt_found(s, "upgrade: a record is damaged");
                    goto cleanup;
                }
                kv.create_revision = kv_get_u64le(p + fields);
                kv.mod_revision = kv_get_u64le(p + fields + 8);
                kv.version = kv_get_u64le(p + fields + 16);
                if (from == 3) {
                    kv.lease = kv_get_u64le(p + 32);
                    kv.expire_at = kv_get_u64le(p + 40);
                }
                kv.value = p + old_header;
                kv.value_len = (uint32_t)(v.mv_size - old_header);
                kv_record_encode(&kv, buf);
                n = KV_REC_HEADER + (size_t)kv.value_len;
                digest += kv_get_u64le(buf);
            } else {
                kv.key_len = kv_get_u32le(p + 1);
                kv.value_len = kv_get_u32le(p + 5);
                if (k.mv_size != KV_HIST_KEY ||
                    v.mv_size !=
                        V1_HIST_HEADER + (size_t)kv.key_len + kv.value_len) {
                    rv = kv_set_error(s, KV_ECORRUPT,
                                      "upgrade: malformed history record");
                    goto cleanup;
                }
                kv.create_revision = kv_get_u64le(p + 9);
                kv.version = kv_get_u64le(p + 17);
                kv.key = p + V1_HIST_HEADER;
                kv.value = p + V1_HIST_HEADER + kv.key_len;
                kv_hist_encode(k.mv_data, p[0], &kv, buf);
                n = KV_HIST_HEADER + (size_t)kv.key_len + kv.value_len;
            }
            MDB_val nv = {n, buf};
            if ((rc = mdb_cursor_put(cur, &k, &nv, MDB_CURRENT)) != 0) {
                rv = kv_mdb_error(s, rc, "upgrade put");
                goto cleanup;
            }
            rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
        }
        if (rc != MDB_NOTFOUND) {
            rv = kv_mdb_error(s, rc, "upgrade scan");
            goto cleanup;
        }
        mdb_cursor_close(cur);
        cur = NULL;
    }
    if ((rv = kv_meta_put(s, txn, KV_META_DIGEST, digest)) == 0) {
        rv = kv_meta_put(s, txn, KV_META_FORMAT, KV_FORMAT_VERSION);
    }

cleanup:
    if (cur != NULL) {
        mdb_cursor_close(cur);
    }
    kv_free(&s->alloc, buf);
    kv_free(&s->alloc, old);
    return rv;
}

/* ---------------------------------------------------------------------- */
/* Environment                                                             */

int kv_meta_get(struct kv_store *store,
                MDB_txn *txn,
                const char *name,
                uint64_t *value)
{
    MDB_val k = {strlen(name), (void *)name};
    MDB_val v;
    int rc = mdb_get(txn, store->dbi_meta, &k, &v);
    if (rc == MDB_NOTFOUND) {
        *value = 0;
        return 0;
    }
    if (rc != 0) {
        return kv_mdb_error(store, rc, name);
    }
    if (v.mv_size != 8) {
        return kv_set_error(store, KV_ECORRUPT, "meta %s: %zu bytes", name,
                            v.mv_size);
    }
    *value = kv_get_u64le(v.mv_data);
    return 0;
}

int kv_meta_put(struct kv_store *store,
                MDB_txn *txn,
                const char *name,
                uint64_t value)
{
    uint8_t buf[8];
    MDB_val k = {strlen(name), (void *)name};
    MDB_val v = {8, buf};
    kv_put_u64le(buf, value);
    int rc = mdb_put(txn, store->dbi_meta, &k, &v, 0);
    return rc == 0 ? 0 : kv_mdb_error(store, rc, name);
}

int kv_read_begin(struct kv_store *store, MDB_txn **txn)
{
    if (store->env == NULL) {
        return KV_EPOISONED;
    }
    if (atomic_load(&store->corrupt)) {
        return kv_set_error(store, KV_ECORRUPT, "store found corrupt earlier");
    }
    int rc = mdb_txn_begin(store->env, NULL, MDB_RDONLY, txn);
    return rc == 0 ? 0 : kv_mdb_error(store, rc, "begin read");
}

int kv_env_open(struct kv_store *s, const char *path)
{
    MDB_txn *txn = NULL;
    uint64_t format = 0;
    bool upgraded = false;
    int rc;
    int rv;
    if ((rc = mdb_env_create(&s->env)) != 0) {
        return kv_mdb_error(s, rc, "create environment");
    }
    /* A map grown while running (kv_map_grow()) left the data file that
     * large (MDB_WRITEMAP sizes the file to the map): keep it, or the
     * first write after a restart would find the map full again. */
    struct stat fst;
    char *data = kv_path(&s->alloc, "%s/data.mdb", path);
    if (data != NULL && stat(data, &fst) == 0 &&
        (uint64_t)fst.st_size > s->opts.map_size) {
        s->opts.map_size = (uint64_t)fst.st_size;
    }
    kv_free(&s->alloc, data);
    if ((rc = mdb_env_set_mapsize(s->env, (size_t)s->opts.map_size)) != 0 ||
        (rc = mdb_env_set_maxdbs(s->env, KV_DBS_MAX)) != 0 ||
        (rc = mdb_env_set_maxreaders(s->env, s->opts.max_readers)) != 0) {
        rv = kv_mdb_error(s, rc, "configure environment");
        goto fail;
    }
    /* MDB_NOSYNC: the WAL is the source of truth and kv_checkpoint() syncs.
     * MDB_NOTLS: read transactions are not tied to threads, so a reader may
     * run on any thread and a thread may hold several.
     * MDB_WRITEMAP: commits write through the map instead of copying every
     * dirty page and writing it with a system call, which triples the apply
     * rate; kv_reserve() keeps its one hazard (SIGBUS on a full disk) away. */
    rc =
        mdb_env_open(s->env, path, MDB_NOSYNC | MDB_NOTLS | MDB_WRITEMAP, 0644);
    if (rc != 0) {
        rv = kv_mdb_error(s, rc, path);
        goto fail;
    }
    if (mdb_env_get_maxkeysize(s->env) < (int)KV_KEY_BYTES_MAX) {
        rv = kv_set_error(s, KV_EINVAL, "LMDB max key size below %u",
                          KV_KEY_BYTES_MAX);
        goto fail;
    }
    if ((rc = mdb_txn_begin(s->env, NULL, 0, &txn)) != 0 ||
        (rc = mdb_dbi_open(txn, "meta", MDB_CREATE, &s->dbi_meta)) != 0 ||
        (rc = mdb_dbi_open(txn, "keys", MDB_CREATE, &s->dbi_keys)) != 0 ||
        (rc = mdb_dbi_open(txn, "history", MDB_CREATE, &s->dbi_hist)) != 0 ||
        (rc = mdb_dbi_open(txn, "sessions", MDB_CREATE, &s->dbi_sess)) != 0 ||
        (rc = mdb_dbi_open(txn, "session_lru", MDB_CREATE, &s->dbi_lru)) != 0 ||
        (rc = mdb_dbi_open(txn, "members", MDB_CREATE, &s->dbi_members)) != 0 ||
        (rc = mdb_dbi_open(txn, "sequences", MDB_CREATE, &s->dbi_seqs)) != 0 ||
        (rc = mdb_dbi_open(txn, "acl", MDB_CREATE, &s->dbi_acl)) != 0 ||
        (rc = mdb_dbi_open(txn, "leases", MDB_CREATE, &s->dbi_leases)) != 0 ||
        (rc = mdb_dbi_open(txn, "lease_keys", MDB_CREATE, &s->dbi_lkeys)) !=
            0 ||
        (rc = mdb_dbi_open(txn, "lease_due", MDB_CREATE, &s->dbi_ldue)) != 0 ||
        (rc = mdb_dbi_open(txn, "expire_due", MDB_CREATE, &s->dbi_edue)) != 0 ||
        (rc = mdb_dbi_open(txn, "hash_fields", MDB_CREATE, &s->dbi_hfields)) !=
            0) {
        rv = kv_mdb_error(s, rc, "open databases");
        goto fail;
    }
    if ((rv = kv_meta_get(s, txn, KV_META_FORMAT, &format)) != 0) {
        goto fail;
    }
    if (format == 0) {
        if ((rv = kv_meta_put(s, txn, KV_META_FORMAT, KV_FORMAT_VERSION)) !=
            0) {
            goto fail;
        }
    } else if (format >= 1 && format < KV_FORMAT_VERSION) {
        if ((rv = upgrade(s, txn, format)) != 0) {
            goto fail;
        }
        upgraded = true;
    } else if (format != KV_FORMAT_VERSION) {
        rv = kv_set_error(s, KV_EVERSION, "%s: format %" PRIu64, path, format);
        goto fail;
    }
    rc = mdb_txn_commit(txn);
    txn = NULL;
    if (rc != 0) {
        rv = kv_mdb_error(s, rc, "commit databases");
        goto fail;
    }
    /* The upgrade rewrote every record without a DIRTY marker: make it
     * durable before anything relies on it. */
    if (upgraded && (rc = mdb_env_sync(s->env, 1)) != 0) {
        rv = kv_mdb_error(s, rc, "sync after upgrade");
        goto fail;
    }
    /* A new environment (an install) may hold other users. */
    kv_acl_bump(s);
    return 0;

fail:
    if (txn != NULL) {
        mdb_txn_abort(txn);
    }
    mdb_env_close(s->env);
    s->env = NULL;
    return rv;
}

void kv_env_close(struct kv_store *s)
{
    s->reserved = 0;
    if (s->env != NULL) {
        mdb_env_close(s->env);
        s->env = NULL;
    }
}

int kv_open(const char *dir,
            const struct kv_options *opts,
            struct kv_store **out,
            char *errmsg,
            size_t errmsg_len)
{
    struct kv_allocator a;
    struct kv_store *s;
    char *env_path = NULL;
    uint64_t gen = 0;
    int rv;
    kv_allocator_resolve(opts != NULL ? opts->alloc : NULL, &a);
    if (dir == NULL || out == NULL) {
        return KV_EINVAL;
    }
    s = kv_malloc(&a, sizeof(*s));
    if (s == NULL) {
        return KV_ENOMEM;
    }
    memset(s, 0, sizeof(*s));
    pthread_mutex_init(&s->err_lock, NULL);
    s->alloc = a;
    s->stage.data_fd = -1;
    if (opts != NULL) {
        s->opts = *opts;
    }
    s->opts.alloc = NULL;
    if (s->opts.map_size == 0) {
        s->opts.map_size = 4ull << 30;
    }
    if (s->opts.compact_batch == 0) {
        s->opts.compact_batch = KV_COMPACT_BATCH_DEFAULT;
    }
    if (s->opts.max_readers == 0) {
        s->opts.max_readers = 126;
    }
    if (s->opts.session_evict_after == 0) {
        s->opts.session_evict_after = KV_SESSION_EVICT_AFTER_DEFAULT;
    }
    if (s->opts.session_max == 0) {
        s->opts.session_max = KV_SESSIONS_DEFAULT;
    }
    if (s->opts.writeback_chunk == 0) {
        s->opts.writeback_chunk = 2u << 20;
    }
    s->dir = kv_path(&a, "%s", dir);
    if (s->dir == NULL) {
        rv = KV_ENOMEM;
        goto fail;
    }
    rv = kv_current_read(s, &gen);
    if (rv == KV_ENOTFOUND) {
        /* A new store: nothing was ever applied without CURRENT, so any
         * generation directory found is the debris of a first open. */
        gen = 1;
        if ((rv = kv_dir_cleanup(s, 0)) != 0) {
            goto fail;
        }
        char *dirty = kv_path(&a, "%s/DIRTY", s->dir);
        if (dirty == NULL) {
            rv = KV_ENOMEM;
            goto fail;
        }
        unlink(dirty);
        kv_free(&a, dirty);
        env_path = kv_path(&a, "%s/env-1", s->dir);
        if (env_path == NULL) {
            rv = KV_ENOMEM;
            goto fail;
        }
        if (mkdir(env_path, 0755) != 0) {
            rv = kv_set_error(s, kv_errno_code(errno), "mkdir %s: %s", env_path,
                              strerror(errno));
            goto fail;
        }
        if ((rv = kv_current_write(s, 1)) != 0) {
            goto fail;
        }
    } else if (rv != 0) {
        goto fail;
    } else {
        if ((rv = kv_dir_cleanup(s, gen)) != 0) {
            goto fail;
        }
        env_path = kv_path(&a, "%s/env-%" PRIu64, s->dir, gen);
        if (env_path == NULL) {
            rv = KV_ENOMEM;
            goto fail;
        }
    }
    s->gen = gen;
    if ((rv = kv_dirty_check(s)) != 0) {
        goto fail;
    }
    if ((rv = kv_env_open(s, env_path)) != 0) {
        goto fail;
    }
    kv_free(&a, env_path);
    *out = s;
    return 0;

fail:
    if (errmsg != NULL && errmsg_len > 0) {
        snprintf(errmsg, errmsg_len, "%s",
                 s->errmsg[0] != '\0' ? s->errmsg : kv_strerror(rv));
    }
    kv_free(&a, env_path);
    kv_free(&a, s->dir);
    pthread_mutex_destroy(&s->err_lock);
    kv_free(&a, s);
    return rv;
}

int kv_space(struct kv_store *s, bool count_free, struct kv_space *out)
{
    MDB_envinfo info;
    MDB_stat st;
    MDB_txn *txn = NULL;
    MDB_cursor *cur = NULL;
    MDB_val k, v;
    int rc, rv = 0;

    memset(out, 0, sizeof(*out));
    if (s->env == NULL) {
        return KV_EPOISONED;
    }
    if ((rc = mdb_env_info(s->env, &info)) != 0 ||
        (rc = mdb_env_stat(s->env, &st)) != 0) {
        return kv_mdb_error(s, rc, "space");
    }
    out->page_bytes = st.ms_psize;
    out->map_bytes = (uint64_t)info.me_mapsize;
    out->file_bytes = ((uint64_t)info.me_last_pgno + 1) * st.ms_psize;
    if (!count_free) {
        return 0;
    }
    /* LMDB's free list is database 0: one record per freeing transaction,
     * whose value is a page-number list led by its length (as mdb_stat
     * -f counts it). */
    if ((rv = kv_read_begin(s, &txn)) != 0) {
        return rv;
    }
    if ((rc = mdb_cursor_open(txn, 0, &cur)) != 0) {
        rv = kv_mdb_error(s, rc, "free list");
        goto cleanup;
    }
    uint64_t pages = 0;
    while ((rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) == 0) {
        if (v.mv_size < sizeof(size_t)) {
            rv = kv_set_error(s, KV_ECORRUPT, "free list: short record");
            goto cleanup;
        }
        size_t n; /* an MDB_ID, LMDB's page number type */
        memcpy(&n, v.mv_data, sizeof(n));
        pages += n;
    }
    if (rc != MDB_NOTFOUND) {
        rv = kv_mdb_error(s, rc, "free list");
        goto cleanup;
    }
    out->free_bytes = pages * st.ms_psize;
    if (out->free_bytes > out->file_bytes) {
        out->free_bytes = out->file_bytes;
    }

cleanup:
    if (cur != NULL) {
        mdb_cursor_close(cur);
    }
    mdb_txn_abort(txn);
    return rv;
}

int kv_map_grow(struct kv_store *s, uint64_t bytes)
{
    struct kv_space sp;
    int rc;
    int rv = kv_space(s, false, &sp);
    if (rv != 0) {
        return rv;
    }
    if (bytes < sp.file_bytes || bytes > (uint64_t)SIZE_MAX) {
        return kv_set_error(s, KV_EINVAL, "map of %" PRIu64 " bytes", bytes);
    }
    bytes = (bytes + sp.page_bytes - 1) / sp.page_bytes * sp.page_bytes;
    if ((rc = mdb_env_set_mapsize(s->env, (size_t)bytes)) != 0) {
        return kv_mdb_error(s, rc, "grow the map");
    }
    s->opts.map_size = bytes;
    return 0;
}

void kv_close(struct kv_store *s)
{
    if (s == NULL) {
        return;
    }
    /* A sync may still use the environment on another thread. */
    assert(!s->ckpt_begun);
    struct kv_allocator a = s->alloc;
    kv_stage_reset(s);
    kv_env_close(s);
    kv_acl_free(s);
    kv_free(&a, s->dir);
    pthread_mutex_destroy(&s->err_lock);
    kv_free(&a, s);
}

int kv_status(struct kv_store *s, struct kv_status *st)
{
    MDB_txn *txn = NULL;
    MDB_stat ks, hs, ss;
    uint64_t done = 0;
    int rv = kv_read_begin(s, &txn);
    int rc;
    if (rv != 0) {
        return rv;
    }
    memset(st, 0, sizeof(*st));
    if ((rv = kv_meta_get(s, txn, KV_META_APPLIED, &st->applied)) != 0 ||
        (rv = kv_meta_get(s, txn, KV_META_REVISION, &st->revision)) != 0 ||
        (rv = kv_meta_get(s, txn, KV_META_COMPACT, &st->compact_revision)) !=
            0 ||
        (rv = kv_meta_get(s, txn, KV_META_COMPACT_DONE, &done)) != 0 ||
        (rv = kv_meta_get(s, txn, KV_META_DIGEST, &st->digest)) != 0) {
        goto cleanup;
    }
    MDB_stat ls;
    if ((rv = kv_meta_get(s, txn, KV_META_LEASE_CLOCK, &st->lease_clock)) !=
        0) {
        goto cleanup;
    }
    if ((rc = mdb_stat(txn, s->dbi_keys, &ks)) != 0 ||
        (rc = mdb_stat(txn, s->dbi_hist, &hs)) != 0 ||
        (rc = mdb_stat(txn, s->dbi_sess, &ss)) != 0 ||
        (rc = mdb_stat(txn, s->dbi_leases, &ls)) != 0) {
        rv = kv_mdb_error(s, rc, "stat");
        goto cleanup;
    }
    MDB_envinfo info;
    if ((rc = mdb_env_info(s->env, &info)) != 0) {
        rv = kv_mdb_error(s, rc, "env info");
        goto cleanup;
    }
    st->db_bytes = ((uint64_t)info.me_last_pgno + 1) * ks.ms_psize;
    st->compaction_pending = done < st->compact_revision;
    st->keys = ks.ms_entries;
    st->history_events = hs.ms_entries;
    st->sessions = ss.ms_entries;
    st->leases = ls.ms_entries;

cleanup:
    mdb_txn_abort(txn);
    return rv;
}

/* A checkpoint runs in three steps so that the sync can leave the writer's
 * thread. The DIRTY marker stays correct because only the writer touches it:
 * _begin notes how many write transactions had begun, and _end removes the
 * marker only if that count did not move, i.e. the sync covered every
 * write. A write that began during the sync keeps the store dirty: LMDB may
 * have reused pages of the synced state for it, and a machine crash could
 * leave them half written. */
int kv_checkpoint_begin(struct kv_store *s, struct kv_checkpoint *ckpt)
{
    MDB_txn *txn = NULL;
    uint64_t applied = 0;
    int rv;
    if (s->poisoned || s->env == NULL) {
        return KV_EPOISONED;
    }
    if (s->ckpt_begun) {
        return kv_set_error(s, KV_ESTATE, "checkpoint: one is running");
    }
    /* Everything committed before the sync starts is covered by it, so the
     * applied index read first is durable once the sync returns. */
    if ((rv = kv_read_begin(s, &txn)) != 0) {
        return rv;
    }
    rv = kv_meta_get(s, txn, KV_META_APPLIED, &applied);
    mdb_txn_abort(txn);
    if (rv != 0) {
        return rv;
    }
    ckpt->applied = applied;
    ckpt->writes = s->writes;
    ckpt->status = KV_ESTATE;
    s->ckpt_begun = true;
    return 0;
}

int kv_checkpoint_sync(struct kv_store *s, struct kv_checkpoint *ckpt)
{
    MDB_envinfo info;
    MDB_stat st;
    int fd = -1;
    int rc;
    /* Reads only the environment handle, which cannot change before _end
     * (install and close wait for it). With MDB_WRITEMAP the sync is an
     * msync of the map: it writes back, and waits for, every page dirty
     * when it starts; pages the writer dirties meanwhile may or may not go
     * too. Writing the used part back in chunks first keeps the disk's
     * queue short for the WAL meanwhile, and leaves the msync (and its one
     * cache flush) little to do. */
    if ((rc = mdb_env_info(s->env, &info)) != 0 ||
        (rc = mdb_env_stat(s->env, &st)) != 0 ||
        (rc = mdb_env_get_fd(s->env, &fd)) != 0) {
        ckpt->status = kv_mdb_error(s, rc, "checkpoint sync");
        return ckpt->status;
    }
    uint64_t used = ((uint64_t)info.me_last_pgno + 1) * st.ms_psize;
    if ((ckpt->status = kv_writeback(s, fd, 0, used)) != 0) {
        return ckpt->status;
    }
    rc = mdb_env_sync(s->env, 1);
    ckpt->status = rc == 0 ? 0 : kv_mdb_error(s, rc, "checkpoint sync");
    return ckpt->status;
}

int kv_checkpoint_end(struct kv_store *s,
                      struct kv_checkpoint *ckpt,
                      raft_index *durable)
{
    if (!s->ckpt_begun) {
        return kv_set_error(s, KV_ESTATE, "checkpoint: none begun");
    }
    s->ckpt_begun = false;
    if (ckpt->status != 0) {
        /* A failed sync may have dropped dirty pages: never trust a
         * retry. */
        s->poisoned = true;
        return KV_EPOISONED;
    }
    if (durable != NULL) {
        *durable = ckpt->applied;
    }
    if (s->dirty && s->writes == ckpt->writes) {
        return kv_mark_clean(s);
    }
    return 0;
}

int kv_checkpoint(struct kv_store *s, raft_index *durable)
{
    struct kv_checkpoint ckpt;
    int rv = kv_checkpoint_begin(s, &ckpt);
    if (rv != 0) {
        return rv;
    }
    (void)kv_checkpoint_sync(s, &ckpt);
    return kv_checkpoint_end(s, &ckpt, durable);
}
