/*
 * kv_snapshot.c - snapshot files: create, read in chunks, receive, install.
 *
 * A snapshot file is a 64-byte header followed by a compacted copy of the
 * LMDB environment (docs/kv.md):
 *
 *   off  0  u8[8] magic "BALLOTKV"
 *   off  8  u32   version (1)
 *   off 12  u32   header bytes (64)
 *   off 16  u64   applied index
 *   off 24  u64   revision
 *   off 32  u64   compaction revision
 *   off 40  u64   payload bytes
 *   off 48  u64   XXH3-64 of the payload
 *   off 56  u64   XXH3-64 of bytes 0..55
 *
 * All integers little endian. The copy is made by LMDB's compacting copy
 * (mdb_env_copyfd2 with MDB_CP_COMPACT) writing into a pipe that this file
 * drains, hashing as it writes, so the data passes through memory once and is
 * never held whole. The receiver writes the payload straight into the data
 * file of a staging environment, so installing is a rename, not a copy.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>

#include "kv_internal.h"

#define SNAP_MAGIC "BALLOTKV"
#define SNAP_IO_BYTES (1024u * 1024u)

struct kv_snapshot
{
    int fd;
    struct kv_snapshot_info info;
    struct kv_allocator alloc;
};

void kv_snapshot_header_encode(const struct kv_snapshot_info *info, uint8_t *h)
{
    memcpy(h, SNAP_MAGIC, 8);
    kv_put_u32le(h + 8, KV_SNAPSHOT_VERSION);
    kv_put_u32le(h + 12, KV_SNAPSHOT_HEADER_BYTES);
    kv_put_u64le(h + 16, info->applied);
    kv_put_u64le(h + 24, info->revision);
    kv_put_u64le(h + 32, info->compact_revision);
    kv_put_u64le(h + 40, info->payload_bytes);
    kv_put_u64le(h + 48, info->payload_hash);
    kv_put_u64le(h + 56, XXH3_64bits(h, 56));
}

int kv_snapshot_header_decode(const uint8_t *h,
                              struct kv_snapshot_info *info,
                              char *msg,
                              size_t msg_len)
{
    if (memcmp(h, SNAP_MAGIC, 8) != 0) {
        snprintf(msg, msg_len, "bad magic");
        return KV_ECORRUPT;
    }
    uint64_t want = kv_get_u64le(h + 56);
    uint64_t got = XXH3_64bits(h, 56);
    if (want != got) {
        snprintf(msg, msg_len,
                 "header checksum mismatch (stored %016" PRIx64
                 ", computed %016" PRIx64 ")",
                 want, got);
        return KV_ECORRUPT;
    }
    if (kv_get_u32le(h + 8) != KV_SNAPSHOT_VERSION) {
        snprintf(msg, msg_len, "version %" PRIu32 " not supported",
                 kv_get_u32le(h + 8));
        return KV_EVERSION;
    }
    if (kv_get_u32le(h + 12) != KV_SNAPSHOT_HEADER_BYTES) {
        snprintf(msg, msg_len, "header size %" PRIu32, kv_get_u32le(h + 12));
        return KV_ECORRUPT;
    }
    info->applied = kv_get_u64le(h + 16);
    info->revision = kv_get_u64le(h + 24);
    info->compact_revision = kv_get_u64le(h + 32);
    info->payload_bytes = kv_get_u64le(h + 40);
    info->payload_hash = kv_get_u64le(h + 48);
    if (info->payload_bytes > UINT64_MAX - KV_SNAPSHOT_HEADER_BYTES) {
        snprintf(msg, msg_len, "payload size %" PRIu64, info->payload_bytes);
        return KV_ECORRUPT;
    }
    info->size = KV_SNAPSHOT_HEADER_BYTES + info->payload_bytes;
    return 0;
}

static int write_all(int fd, const uint8_t *p, size_t n, off_t off)
{
    while (n > 0) {
        ssize_t w = pwrite(fd, p, n, off);
        if (w < 0) {
            if (errno == EINTR) {
                continue;
            }
            return kv_errno_code(errno);
        }
        p += w;
        n -= (size_t)w;
        off += w;
    }
    return 0;
}

/* Hashes @len bytes of @fd from @off. */
static int hash_range(int fd,
                      off_t off,
                      uint64_t len,
                      uint8_t *buf,
                      uint64_t *hash)
{
    XXH3_state_t *st = XXH3_createState();
    int rv = 0;
    if (st == NULL) {
        return KV_ENOMEM;
    }
    XXH3_64bits_reset(st);
    while (len > 0) {
        size_t want = len < SNAP_IO_BYTES ? (size_t)len : SNAP_IO_BYTES;
        ssize_t n = pread(fd, buf, want, off);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            rv = n < 0 ? kv_errno_code(errno) : KV_ECORRUPT;
            break;
        }
        XXH3_64bits_update(st, buf, (size_t)n);
        off += n;
        len -= (uint64_t)n;
    }
    *hash = XXH3_64bits_digest(st);
    XXH3_freeState(st);
    return rv;
}

/* ---------------------------------------------------------------------- */
/* Creating                                                                */

struct copier
{
    MDB_env *env;
    int fd;
    int rc;
};

static void *copier_main(void *arg)
{
    struct copier *c = arg;
    c->rc = mdb_env_copyfd2(c->env, c->fd, MDB_CP_COMPACT);
    close(c->fd);
    return NULL;
}

static char *dir_of(const struct kv_allocator *a, const char *path)
{
    const char *slash = strrchr(path, '/');
    if (slash == NULL) {
        return kv_path(a, ".");
    }
    if (slash == path) {
        return kv_path(a, "/");
    }
    return kv_path(a, "%.*s", (int)(slash - path), path);
}

/* One whole scrub pass over the store. */
static int verify_all(struct kv_store *s)
{
    struct kv_scrub *sc = NULL;
    bool done = false;
    int rv = kv_scrub_create(s, &sc);
    while (rv == 0 && !done) {
        rv = kv_scrub_step(s, sc, 0, &done);
    }
    kv_scrub_destroy(sc);
    return rv;
}

int kv_snapshot_create(struct kv_store *s,
                       const char *path,
                       struct kv_snapshot **out)
{
    struct kv_snapshot_info info;
    struct copier cp = {s->env, -1, 0};
    pthread_t thread;
    bool started = false;
    MDB_txn *fence = NULL;
    XXH3_state_t *st = NULL;
    uint8_t header[KV_SNAPSHOT_HEADER_BYTES] = {0};
    uint8_t *buf = NULL;
    char *tmp = NULL, *dir = NULL;
    int pipefd[2] = {-1, -1};
    int fd = -1;
    off_t off = KV_SNAPSHOT_HEADER_BYTES;
    off_t written_back = 0;
    int rv = 0, rc;

    memset(&info, 0, sizeof(info));
    if (path == NULL || out == NULL) {
        return KV_EINVAL;
    }
    if (s->env == NULL) {
        return KV_EPOISONED;
    }
    tmp = kv_path(&s->alloc, "%s.tmp", path);
    dir = dir_of(&s->alloc, path);
    buf = kv_malloc(&s->alloc, SNAP_IO_BYTES);
    st = XXH3_createState();
    if (tmp == NULL || dir == NULL || buf == NULL || st == NULL) {
        rv = KV_ENOMEM;
        goto cleanup;
    }
    XXH3_64bits_reset(st);
    /* A snapshot is what a damaged replica is rebuilt from: never export
     * a damaged record. The copy below reads every page anyway; this pass
     * checks every record's checksum as well. */
    if ((rv = verify_all(s)) != 0) {
        goto cleanup;
    }
    fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0 || pipe(pipefd) != 0) {
        rv = kv_set_error(s, kv_errno_code(errno), "snapshot %s: %s", tmp,
                          strerror(errno));
        goto cleanup;
    }
    /* Hold the writer lock while the copy's read transaction starts, so
     * that the metadata read here is the state the copy contains. LMDB's
     * compacting copy begins its read transaction before it emits any byte,
     * so the first byte out of the pipe proves the copy has its snapshot. */
    if ((rc = mdb_txn_begin(s->env, NULL, 0, &fence)) != 0) {
        rv = kv_mdb_error(s, rc, "snapshot fence");
        goto cleanup;
    }
    if ((rv = kv_meta_get(s, fence, KV_META_APPLIED, &info.applied)) != 0 ||
        (rv = kv_meta_get(s, fence, KV_META_REVISION, &info.revision)) != 0 ||
        (rv = kv_meta_get(s, fence, KV_META_COMPACT, &info.compact_revision)) !=
            0) {
        goto cleanup;
    }
    cp.fd = pipefd[1];
    if (pthread_create(&thread, NULL, copier_main, &cp) != 0) {
        rv = kv_set_error(s, KV_ENOMEM, "snapshot: cannot start copier");
        goto cleanup;
    }
    pipefd[1] = -1; /* the copier closes it */
    started = true;
    for (;;) {
        ssize_t n = read(pipefd[0], buf, SNAP_IO_BYTES);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (fence != NULL) {
            mdb_txn_abort(fence);
            fence = NULL;
        }
        if (n < 0) {
            rv = kv_set_error(s, KV_EIO, "snapshot pipe: %s", strerror(errno));
            break;
        }
        if (n == 0) {
            break;
        }
        /* After a write failure keep draining, so the copier finishes
         * instead of blocking on a full pipe. */
        if (rv != 0) {
            continue;
        }
        XXH3_64bits_update(st, buf, (size_t)n);
        if ((rv = write_all(fd, buf, (size_t)n, off)) != 0) {
            kv_set_error(s, rv, "snapshot %s: write: %s", tmp, strerror(errno));
            continue;
        }
        off += n;
        /* Paced: the copy runs next to the WAL on the same disk. */
        if ((uint64_t)(off - written_back) >= s->opts.writeback_chunk) {
            rv = kv_writeback(s, fd, (uint64_t)written_back, (uint64_t)off);
            written_back = off;
        }
    }
    pthread_join(thread, NULL);
    started = false;
    if (rv != 0) {
        goto cleanup;
    }
    if (cp.rc != 0) {
        rv = kv_mdb_error(s, cp.rc, "snapshot copy");
        goto cleanup;
    }
    info.payload_bytes = (uint64_t)off - KV_SNAPSHOT_HEADER_BYTES;
    info.payload_hash = XXH3_64bits_digest(st);
    info.size = (uint64_t)off;
    kv_snapshot_header_encode(&info, header);
    if ((rv = write_all(fd, header, sizeof(header), 0)) != 0 ||
        fsync(fd) != 0) {
        rv = kv_set_error(s, rv != 0 ? rv : kv_errno_code(errno),
                          "snapshot %s: %s", tmp, strerror(errno));
        goto cleanup;
    }
    close(fd);
    fd = -1;
    if (rename(tmp, path) != 0) {
        rv = kv_set_error(s, kv_errno_code(errno), "rename %s: %s", tmp,
                          strerror(errno));
        goto cleanup;
    }
    if ((rv = kv_fsync_dir(dir)) != 0) {
        kv_set_error(s, rv, "%s: fsync directory failed", dir);
        goto cleanup;
    }
    rv = kv_snapshot_open(path, &s->alloc, out, NULL, 0);

cleanup:
    if (fence != NULL) {
        mdb_txn_abort(fence);
    }
    if (started) {
        /* Only reached if the pipe loop never ran; drain to let the
         * copier end. */
        while (read(pipefd[0], buf, SNAP_IO_BYTES) > 0) {
        }
        pthread_join(thread, NULL);
    }
    if (pipefd[0] >= 0) {
        close(pipefd[0]);
    }
    if (pipefd[1] >= 0) {
        close(pipefd[1]);
    }
    if (fd >= 0) {
        close(fd);
    }
    if (rv != 0 && tmp != NULL) {
        unlink(tmp);
    }
    if (st != NULL) {
        XXH3_freeState(st);
    }
    kv_free(&s->alloc, buf);
    kv_free(&s->alloc, tmp);
    kv_free(&s->alloc, dir);
    return rv;
}

/* ---------------------------------------------------------------------- */
/* Reading                                                                 */

int kv_snapshot_open(const char *path,
                     const struct kv_allocator *alloc,
                     struct kv_snapshot **out,
                     char *errmsg,
                     size_t errmsg_len)
{
    struct kv_allocator a;
    uint8_t h[KV_SNAPSHOT_HEADER_BYTES];
    char msg[160] = "";
    struct stat sb;
    struct kv_snapshot *snap = NULL;
    int rv = 0;
    kv_allocator_resolve(alloc, &a);
    int fd = open(path, O_RDONLY);
    if (fd < 0) {
        snprintf(msg, sizeof(msg), "%s", strerror(errno));
        rv = kv_errno_code(errno);
        goto fail;
    }
    ssize_t n = pread(fd, h, sizeof(h), 0);
    if (n != (ssize_t)sizeof(h)) {
        snprintf(msg, sizeof(msg), "truncated header");
        rv = n < 0 ? KV_EIO : KV_ECORRUPT;
        goto fail;
    }
    snap = kv_malloc(&a, sizeof(*snap));
    if (snap == NULL) {
        rv = KV_ENOMEM;
        goto fail;
    }
    snap->fd = fd;
    snap->alloc = a;
    if ((rv = kv_snapshot_header_decode(h, &snap->info, msg, sizeof(msg))) !=
        0) {
        goto fail;
    }
    if (fstat(fd, &sb) != 0 || (uint64_t)sb.st_size != snap->info.size) {
        snprintf(msg, sizeof(msg), "size %lld, header announces %" PRIu64,
                 (long long)sb.st_size, snap->info.size);
        rv = KV_ECORRUPT;
        goto fail;
    }
    *out = snap;
    return 0;

fail:
    if (errmsg != NULL && errmsg_len > 0) {
        snprintf(errmsg, errmsg_len, "kv: snapshot %s: %s", path,
                 msg[0] ? msg : kv_strerror(rv));
    }
    kv_free(&a, snap);
    if (fd >= 0) {
        close(fd);
    }
    return rv;
}

int kv_snapshot_verify(struct kv_snapshot *snap,
                       char *errmsg,
                       size_t errmsg_len)
{
    uint64_t hash = 0;
    uint8_t *buf = kv_malloc(&snap->alloc, SNAP_IO_BYTES);
    if (buf == NULL) {
        return KV_ENOMEM;
    }
    int rv = hash_range(snap->fd, KV_SNAPSHOT_HEADER_BYTES,
                        snap->info.payload_bytes, buf, &hash);
    kv_free(&snap->alloc, buf);
    if (rv == 0 && hash != snap->info.payload_hash) {
        rv = KV_ECORRUPT;
        if (errmsg != NULL && errmsg_len > 0) {
            snprintf(errmsg, errmsg_len,
                     "kv: snapshot: payload checksum mismatch (header "
                     "%016" PRIx64 ", computed %016" PRIx64 ")",
                     snap->info.payload_hash, hash);
        }
    }
    return rv;
}

const struct kv_snapshot_info *kv_snapshot_info(const struct kv_snapshot *s)
{
    return &s->info;
}

int kv_snapshot_read_chunk(struct kv_snapshot *snap,
                           uint64_t offset,
                           uint8_t *buf,
                           size_t len,
                           size_t *n)
{
    *n = 0;
    if (offset > snap->info.size) {
        return KV_EINVAL;
    }
    uint64_t left = snap->info.size - offset;
    size_t want = left < len ? (size_t)left : len;
    while (*n < want) {
        ssize_t r = pread(snap->fd, buf + *n, want - *n, (off_t)(offset + *n));
        if (r < 0 && errno == EINTR) {
            continue;
        }
        if (r <= 0) {
            return KV_EIO;
        }
        *n += (size_t)r;
    }
    return 0;
}

void kv_snapshot_close(struct kv_snapshot *snap)
{
    if (snap == NULL) {
        return;
    }
    struct kv_allocator a = snap->alloc;
    close(snap->fd);
    kv_free(&a, snap);
}

/* ---------------------------------------------------------------------- */
/* Receiving and installing                                                */

void kv_stage_reset(struct kv_store *s)
{
    if (s->stage.data_fd >= 0) {
        close(s->stage.data_fd);
    }
    memset(&s->stage, 0, sizeof(s->stage));
    s->stage.data_fd = -1;
}

int kv_snapshot_stage_begin(struct kv_store *s)
{
    char *dir = kv_path(&s->alloc, "%s/stage", s->dir);
    char *data = kv_path(&s->alloc, "%s/stage/data.mdb", s->dir);
    int rv = 0;
    kv_stage_reset(s);
    if (dir == NULL || data == NULL) {
        rv = KV_ENOMEM;
        goto cleanup;
    }
    kv_remove_dir(dir);
    if (mkdir(dir, 0755) != 0) {
        rv = kv_set_error(s, kv_errno_code(errno), "mkdir %s: %s", dir,
                          strerror(errno));
        goto cleanup;
    }
    s->stage.data_fd = open(data, O_RDWR | O_CREAT | O_TRUNC, 0644);
    if (s->stage.data_fd < 0) {
        rv = kv_set_error(s, kv_errno_code(errno), "%s: %s", data,
                          strerror(errno));
        goto cleanup;
    }
    s->stage.active = true;

cleanup:
    kv_free(&s->alloc, dir);
    kv_free(&s->alloc, data);
    return rv;
}

int kv_snapshot_stage_write(struct kv_store *s,
                            uint64_t offset,
                            const uint8_t *data,
                            size_t len)
{
    struct kv_stage *st = &s->stage;
    char msg[160];
    int rv;
    if (!st->active || st->finished) {
        return kv_set_error(s, KV_ESTATE, "stage: not receiving");
    }
    if (offset > st->received || (data == NULL && len > 0) ||
        len > UINT64_MAX - offset) {
        return kv_set_error(s, KV_EINVAL,
                            "stage: chunk at %" PRIu64
                            " leaves a hole "
                            "after %" PRIu64,
                            offset, st->received);
    }
    uint64_t end = offset + len;
    if (st->have_info && end > st->info.size) {
        return kv_set_error(s, KV_EINVAL,
                            "stage: chunk ends at %" PRIu64
                            " beyond size %" PRIu64,
                            end, st->info.size);
    }
    if (offset < KV_SNAPSHOT_HEADER_BYTES) {
        size_t n = (size_t)(KV_SNAPSHOT_HEADER_BYTES - offset);
        if (n > len) {
            n = len;
        }
        memcpy(st->header + offset, data, n);
        data += n;
        len -= n;
        offset += n;
    }
    if (len > 0) {
        rv = write_all(st->data_fd, data, len,
                       (off_t)(offset - KV_SNAPSHOT_HEADER_BYTES));
        if (rv != 0) {
            return kv_set_error(s, rv, "stage: write: %s", strerror(errno));
        }
    }
    if (end > st->received) {
        st->received = end;
    }
    if (!st->have_info && st->received >= KV_SNAPSHOT_HEADER_BYTES) {
        rv = kv_snapshot_header_decode(st->header, &st->info, msg, sizeof(msg));
        if (rv != 0) {
            kv_stage_reset(s);
            return kv_set_error(s, rv, "stage: %s", msg);
        }
        st->have_info = true;
        if (st->received > st->info.size) {
            kv_stage_reset(s);
            return kv_set_error(s, KV_EINVAL, "stage: beyond size %" PRIu64,
                                st->info.size);
        }
    }
    return 0;
}

/* Opens the staged environment read-only and checks that its metadata is
 * what the header says, so a payload that hashes right but is not a store
 * is refused before it replaces anything. */
static int stage_check_env(struct kv_store *s, const char *dir)
{
    MDB_env *env = NULL;
    MDB_txn *txn = NULL;
    MDB_dbi meta;
    MDB_val k, v;
    uint64_t want[2] = {s->stage.info.applied, s->stage.info.revision};
    const char *names[2] = {KV_META_APPLIED, KV_META_REVISION};
    int rv = 0, rc;
    if ((rc = mdb_env_create(&env)) != 0 ||
        (rc = mdb_env_set_maxdbs(env, KV_DBS_MAX)) != 0 ||
        (rc = mdb_env_open(env, dir, MDB_RDONLY | MDB_NOLOCK, 0644)) != 0 ||
        (rc = mdb_txn_begin(env, NULL, MDB_RDONLY, &txn)) != 0 ||
        (rc = mdb_dbi_open(txn, "meta", 0, &meta)) != 0) {
        /* Not kv_mdb_error(): a damaged payload is not damage of the live
         * store, and must not mark it corrupt. */
        rv =
            kv_set_error(s, rc == ENOMEM ? KV_ENOMEM : KV_ECORRUPT,
                         "stage: payload is not a store: %s", mdb_strerror(rc));
        goto cleanup;
    }
    for (int i = 0; i < 2; i++) {
        uint64_t got = 0;
        k.mv_size = strlen(names[i]);
        k.mv_data = (void *)names[i];
        rc = mdb_get(txn, meta, &k, &v);
        if (rc == 0 && v.mv_size == 8) {
            got = kv_get_u64le(v.mv_data);
        } else if (rc != MDB_NOTFOUND) {
            rv = kv_set_error(s, KV_ECORRUPT, "stage: meta %s unreadable",
                              names[i]);
            goto cleanup;
        }
        if (got != want[i]) {
            rv = kv_set_error(s, KV_ECORRUPT,
                              "stage: %s %" PRIu64 " but header says %" PRIu64,
                              names[i], got, want[i]);
            goto cleanup;
        }
    }

cleanup:
    if (txn != NULL) {
        mdb_txn_abort(txn);
    }
    if (env != NULL) {
        mdb_env_close(env);
    }
    return rv;
}

int kv_snapshot_stage_finish(struct kv_store *s, struct kv_snapshot_info *out)
{
    struct kv_stage *st = &s->stage;
    char *dir = NULL;
    uint8_t *buf = NULL;
    uint64_t hash = 0;
    int rv;
    if (!st->active || st->finished || !st->have_info) {
        return kv_set_error(s, KV_ESTATE, "stage: nothing to finish");
    }
    if (st->received != st->info.size) {
        return kv_set_error(s, KV_ECORRUPT,
                            "stage: received %" PRIu64 " of %" PRIu64 " bytes",
                            st->received, st->info.size);
    }
    buf = kv_malloc(&s->alloc, SNAP_IO_BYTES);
    dir = kv_path(&s->alloc, "%s/stage", s->dir);
    if (buf == NULL || dir == NULL) {
        rv = KV_ENOMEM;
        goto cleanup;
    }
    if (fsync(st->data_fd) != 0) {
        rv = kv_set_error(s, kv_errno_code(errno), "stage: fsync: %s",
                          strerror(errno));
        goto cleanup;
    }
    if ((rv = hash_range(st->data_fd, 0, st->info.payload_bytes, buf, &hash)) !=
        0) {
        kv_set_error(s, rv, "stage: reading payload back failed");
        goto cleanup;
    }
    if (hash != st->info.payload_hash) {
        rv = kv_set_error(s, KV_ECORRUPT,
                          "stage: payload checksum mismatch (header %016" PRIx64
                          ", computed %016" PRIx64 ")",
                          st->info.payload_hash, hash);
        goto cleanup;
    }
    if ((rv = stage_check_env(s, dir)) != 0) {
        goto cleanup;
    }
    if ((rv = kv_fsync_dir(dir)) != 0 || (rv = kv_fsync_dir(s->dir)) != 0) {
        kv_set_error(s, rv, "stage: fsync directory failed");
        goto cleanup;
    }
    st->finished = true;
    if (out != NULL) {
        *out = st->info;
    }

cleanup:
    if (rv != 0 && rv != KV_ENOMEM) {
        kv_stage_reset(s);
    }
    kv_free(&s->alloc, buf);
    kv_free(&s->alloc, dir);
    return rv;
}

static int step(struct kv_store *s, int which)
{
    if (s->opts.step_hook != NULL &&
        s->opts.step_hook(s->opts.step_arg, which) != 0) {
        return kv_set_error(s, KV_ESTOPPED, "install stopped at step %d",
                            which);
    }
    return 0;
}

int kv_snapshot_install(struct kv_store *s)
{
    uint64_t gen = s->gen + 1;
    char *stage = kv_path(&s->alloc, "%s/stage", s->dir);
    char *next = kv_path(&s->alloc, "%s/env-%" PRIu64, s->dir, gen);
    char *old = kv_path(&s->alloc, "%s/env-%" PRIu64, s->dir, s->gen);
    int rv;
    if (stage == NULL || next == NULL || old == NULL) {
        rv = KV_ENOMEM;
        goto cleanup;
    }
    if (!s->stage.finished) {
        rv = kv_set_error(s, KV_ESTATE, "install: no finished stage");
        goto cleanup;
    }
    if (s->ckpt_begun) {
        /* A sync on another thread may still use the environment. */
        rv = kv_set_error(s, KV_ESTATE, "install: a checkpoint is running");
        goto cleanup;
    }
    if ((rv = step(s, KV_STEP_STAGED)) != 0) {
        goto cleanup;
    }
    kv_stage_reset(s);
    /* A leftover of an install that crashed before CURRENT moved. */
    kv_remove_dir(next);
    if (rename(stage, next) != 0) {
        rv = kv_set_error(s, kv_errno_code(errno), "rename %s: %s", stage,
                          strerror(errno));
        goto cleanup;
    }
    if ((rv = kv_fsync_dir(s->dir)) != 0) {
        kv_set_error(s, rv, "%s: fsync directory failed", s->dir);
        goto cleanup;
    }
    if ((rv = step(s, KV_STEP_RENAMED)) != 0) {
        goto cleanup;
    }
    /* The commit point: from here on a restart opens the new state. */
    if ((rv = kv_current_write(s, gen)) != 0) {
        s->poisoned = true;
        goto cleanup;
    }
    /* The new environment was synced while staged: nothing unsynced. */
    if (s->dirty && (rv = kv_mark_clean(s)) != 0) {
        goto cleanup;
    }
    if ((rv = step(s, KV_STEP_POINTED)) != 0) {
        goto cleanup;
    }
    kv_env_close(s);
    s->gen = gen;
    if ((rv = kv_env_open(s, next)) != 0) {
        /* CURRENT already names the new state; nothing safe remains to
         * serve from, so the store refuses writes until reopened. */
        s->poisoned = true;
        goto cleanup;
    }
    if ((rv = step(s, KV_STEP_REOPENED)) != 0) {
        goto cleanup;
    }
    kv_remove_dir(old);
    if ((rv = kv_fsync_dir(s->dir)) != 0) {
        kv_set_error(s, rv, "%s: fsync directory failed", s->dir);
        goto cleanup;
    }
    rv = step(s, KV_STEP_CLEANED);

cleanup:
    kv_free(&s->alloc, stage);
    kv_free(&s->alloc, next);
    kv_free(&s->alloc, old);
    return rv;
}
