/*
 * storage_wal.c - the storage seam over the real storage/ WAL.
 *
 * For a share of the seeds each node persists through the real WAL
 * (storage/wal.c, wal_open.c, meta.c) instead of the simulated disk of
 * disk.c: entries, truncations, the hard state and the snapshot meta are
 * written by wal_append(), wal_save_hard_state(), wal_save_snapshot_meta(),
 * wal_reset() and wal_compact(), made durable by wal_sync(), and read back
 * after every crash by wal_open(), so the real recovery code (torn-tail
 * repair, leftover temporary files, snapshot reconciliation, commit hints)
 * runs after every simulated power loss.
 *
 * The WAL sees the world through a struct storage_io. Here that is a file
 * system in memory (memfs below), one directory per node, with the
 * durability rules of a POSIX file system on a disk with a volatile cache:
 *
 *   - each file has a durable image and a list of writes (pwrite, ftruncate)
 *     made since its last fdatasync/fsync; a sync replays the list onto the
 *     image;
 *   - creating, renaming and unlinking a name changes the directory at once
 *     for readers, but only a fsync of the directory makes the change
 *     durable;
 *   - a crash keeps the durable images and names and forgets the rest. With
 *     the seam's tear flag, each file keeps a random prefix of its unsynced
 *     writes, the first write it drops may survive as a random prefix of its
 *     bytes (a torn record), and the directory keeps a random prefix of its
 *     unsynced changes. Every choice comes from the simulator's disk stream,
 *     so a seed still replays bit for bit.
 *
 * What is not simulated: reordering of sectors within one write (the WAL
 * documents that it refuses to open rather than repair that), I/O errors,
 * and running out of space.
 *
 * The application's snapshot bytes stay in memory beside the WAL: the
 * staging area of a received snapshot behaves like disk.c's (chunks are
 * durable after sync, a crash keeps a torn prefix of unsynced ones), and
 * installing or saving a snapshot makes its bytes durable at once, as a
 * driver that fsyncs and renames its snapshot file would, before the meta
 * goes to wal_save_snapshot_meta().
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sim.h"
#include "storage.h"
#include "wal.h"

/* ---------------------------------------------------------------------- */
/* memfs: one directory of files in memory, with power-loss semantics     */

#define MF_NAME_MAX 64
#define MF_FDS 64
#define MF_FD_BASE 3
#define MF_FD_DIR (-2) /* an open descriptor of the directory itself */
#define MF_FD_FREE (-1)

enum mf_op_kind {
    MF_WRITE = 1,
    MF_TRUNCATE,
};

struct mf_op
{
    uint8_t kind;
    uint64_t off; /* MF_WRITE: offset; MF_TRUNCATE: new length */
    uint64_t len;
    uint8_t *data;
};

struct mf_bytes
{
    uint8_t *p;
    uint64_t len, cap;
};

struct mf_inode
{
    bool used;
    struct mf_bytes cur; /* what reads see */
    struct mf_bytes dur; /* what survives a power loss */
    struct mf_op *ops;   /* writes since the last sync, in order */
    size_t n_ops, cap_ops;
};

struct mf_name
{
    char name[MF_NAME_MAX];
    size_t ino;
};

struct mf_names
{
    struct mf_name *v;
    size_t n, cap;
};

enum mf_dirop_kind {
    MF_LINK = 1, /* name -> ino (create, or the target of a rename) */
    MF_UNLINK,
};

struct mf_dirop
{
    uint8_t kind;
    char name[MF_NAME_MAX];
    size_t ino;
};

struct memfs
{
    struct storage_io io;
    char dir[MF_NAME_MAX];
    bool dir_made;
    /* While set (the process is dying), every call fails without effect,
     * so that wal_destroy() after a crash changes nothing on "disk". */
    bool dead;

    struct mf_inode *inodes;
    size_t n_inodes, cap_inodes;
    struct mf_names cur, dur;
    struct mf_dirop *dirops; /* directory changes since its last fsync */
    size_t n_dirops, cap_dirops;
    long fds[MF_FDS]; /* inode index, MF_FD_DIR or MF_FD_FREE */

    uint64_t writes_kept; /* by the last crash */
};

static void bytes_reserve(struct mf_bytes *b, uint64_t len)
{
    if (len <= b->cap) {
        return;
    }
    uint64_t cap = b->cap ? b->cap : 256;
    while (cap < len) {
        cap *= 2;
    }
    b->p = realloc(b->p, (size_t)cap);
    if (b->p == NULL) {
        abort();
    }
    b->cap = cap;
}

/* Sets the length, zero-filling any growth. */
static void bytes_resize(struct mf_bytes *b, uint64_t len)
{
    bytes_reserve(b, len);
    if (len > b->len) {
        memset(b->p + b->len, 0, (size_t)(len - b->len));
    }
    b->len = len;
}

static void bytes_write(struct mf_bytes *b,
                        const uint8_t *data,
                        uint64_t len,
                        uint64_t off)
{
    if (off + len > b->len) {
        bytes_resize(b, off + len);
    }
    if (len > 0) {
        memcpy(b->p + off, data, (size_t)len);
    }
}

static void bytes_copy(struct mf_bytes *to, const struct mf_bytes *from)
{
    to->len = 0;
    bytes_resize(to, from->len);
    if (from->len > 0) {
        memcpy(to->p, from->p, (size_t)from->len);
    }
}

static void op_apply_to(struct mf_bytes *b, const struct mf_op *op)
{
    if (op->kind == MF_WRITE) {
        bytes_write(b, op->data, op->len, op->off);
    } else {
        bytes_resize(b, op->off);
    }
}

static void ino_drop_ops(struct mf_inode *ino)
{
    for (size_t i = 0; i < ino->n_ops; i++) {
        free(ino->ops[i].data);
    }
    ino->n_ops = 0;
}

/* fdatasync/fsync: every write so far reaches the durable image. */
static void ino_sync(struct mf_inode *ino)
{
    for (size_t i = 0; i < ino->n_ops; i++) {
        op_apply_to(&ino->dur, &ino->ops[i]);
    }
    ino_drop_ops(ino);
}

static void ino_push(struct mf_inode *ino,
                     uint8_t kind,
                     uint64_t off,
                     const void *data,
                     uint64_t len)
{
    if (sim_grow((void **)&ino->ops, &ino->cap_ops, ino->n_ops + 1,
                 sizeof(*ino->ops)) != 0) {
        abort();
    }
    struct mf_op *op = &ino->ops[ino->n_ops++];
    op->kind = kind;
    op->off = off;
    op->len = len;
    op->data = NULL;
    if (kind == MF_WRITE) {
        op->data = sim_xmalloc(len > 0 ? (size_t)len : 1);
        if (len > 0) {
            memcpy(op->data, data, (size_t)len);
        }
    }
}

static size_t ino_new(struct memfs *fs)
{
    size_t i = 0;
    while (i < fs->n_inodes && fs->inodes[i].used) {
        i++;
    }
    if (i == fs->n_inodes) {
        if (sim_grow((void **)&fs->inodes, &fs->cap_inodes, fs->n_inodes + 1,
                     sizeof(*fs->inodes)) != 0) {
            abort();
        }
        memset(&fs->inodes[i], 0, sizeof(fs->inodes[i]));
        fs->n_inodes++;
    }
    fs->inodes[i].used = true;
    return i;
}

static void ino_free(struct mf_inode *ino)
{
    ino_drop_ops(ino);
    free(ino->ops);
    free(ino->cur.p);
    free(ino->dur.p);
    memset(ino, 0, sizeof(*ino));
}

static struct mf_name *names_find(struct mf_names *ns, const char *name)
{
    for (size_t i = 0; i < ns->n; i++) {
        if (strcmp(ns->v[i].name, name) == 0) {
            return &ns->v[i];
        }
    }
    return NULL;
}

static void names_link(struct mf_names *ns, const char *name, size_t ino)
{
    struct mf_name *e = names_find(ns, name);
    if (e == NULL) {
        if (sim_grow((void **)&ns->v, &ns->cap, ns->n + 1, sizeof(*ns->v)) !=
            0) {
            abort();
        }
        e = &ns->v[ns->n++];
        snprintf(e->name, sizeof(e->name), "%s", name);
    }
    e->ino = ino;
}

/* Removes @name, keeping the order of the others (listings stay
 * deterministic). */
static void names_unlink(struct mf_names *ns, const char *name)
{
    struct mf_name *e = names_find(ns, name);
    if (e != NULL) {
        size_t i = (size_t)(e - ns->v);
        memmove(e, e + 1, (ns->n - i - 1) * sizeof(*e));
        ns->n--;
    }
}

static void names_copy(struct mf_names *to, const struct mf_names *from)
{
    to->n = 0;
    if (from->n > 0 &&
        sim_grow((void **)&to->v, &to->cap, from->n, sizeof(*to->v)) != 0) {
        abort();
    }
    if (from->n > 0) {
        memcpy(to->v, from->v, from->n * sizeof(*to->v));
    }
    to->n = from->n;
}

static void dirop_push(struct memfs *fs,
                       uint8_t kind,
                       const char *name,
                       size_t ino)
{
    if (sim_grow((void **)&fs->dirops, &fs->cap_dirops, fs->n_dirops + 1,
                 sizeof(*fs->dirops)) != 0) {
        abort();
    }
    struct mf_dirop *op = &fs->dirops[fs->n_dirops++];
    op->kind = kind;
    snprintf(op->name, sizeof(op->name), "%s", name);
    op->ino = ino;
}

static void dirop_apply(struct mf_names *ns, const struct mf_dirop *op)
{
    if (op->kind == MF_LINK) {
        names_link(ns, op->name, op->ino);
    } else {
        names_unlink(ns, op->name);
    }
}

/* Frees inodes nothing can reach any more: no name (current or durable),
 * no pending directory change and no open descriptor. */
static void mf_gc(struct memfs *fs)
{
    for (size_t i = 0; i < fs->n_inodes; i++) {
        struct mf_inode *ino = &fs->inodes[i];
        bool live = false;
        if (!ino->used) {
            continue;
        }
        for (size_t k = 0; k < fs->cur.n && !live; k++) {
            live = fs->cur.v[k].ino == i;
        }
        for (size_t k = 0; k < fs->dur.n && !live; k++) {
            live = fs->dur.v[k].ino == i;
        }
        for (size_t k = 0; k < fs->n_dirops && !live; k++) {
            live = fs->dirops[k].kind == MF_LINK && fs->dirops[k].ino == i;
        }
        for (size_t k = 0; k < MF_FDS && !live; k++) {
            live = fs->fds[k] == (long)i;
        }
        if (!live) {
            ino_free(ino);
        }
    }
}

/* Splits @path into the directory test and the name in it. Returns the
 * name, "" for the directory itself, or NULL for anything else. */
static const char *mf_name_of(const struct memfs *fs, const char *path)
{
    size_t n = strlen(fs->dir);
    if (strncmp(path, fs->dir, n) != 0) {
        return NULL;
    }
    if (path[n] == '\0') {
        return "";
    }
    if (path[n] != '/' || strchr(path + n + 1, '/') != NULL ||
        strlen(path + n + 1) >= MF_NAME_MAX) {
        return NULL;
    }
    return path + n + 1;
}

static struct mf_inode *mf_inode_of(struct memfs *fs, int fd)
{
    if (fd < MF_FD_BASE || fd >= MF_FD_BASE + MF_FDS ||
        fs->fds[fd - MF_FD_BASE] < 0) {
        return NULL;
    }
    return &fs->inodes[fs->fds[fd - MF_FD_BASE]];
}

static int mf_open(void *ctx, const char *path, int flags, unsigned mode)
{
    struct memfs *fs = ctx;
    const char *name = mf_name_of(fs, path);
    long target;
    (void)mode;
    if (fs->dead) {
        return -EIO;
    }
    if (name == NULL || (name[0] == '\0' && !fs->dir_made)) {
        return -ENOENT;
    }
    if (name[0] == '\0') {
        target = MF_FD_DIR;
    } else {
        struct mf_name *e = names_find(&fs->cur, name);
        if (e == NULL) {
            if ((flags & O_CREAT) == 0) {
                return -ENOENT;
            }
            size_t ino = ino_new(fs);
            names_link(&fs->cur, name, ino);
            dirop_push(fs, MF_LINK, name, ino);
            target = (long)ino;
        } else {
            target = (long)e->ino;
            if ((flags & O_TRUNC) != 0 && fs->inodes[e->ino].cur.len > 0) {
                struct mf_inode *ino = &fs->inodes[e->ino];
                ino->cur.len = 0;
                ino_push(ino, MF_TRUNCATE, 0, NULL, 0);
            }
        }
    }
    for (int i = 0; i < MF_FDS; i++) {
        if (fs->fds[i] == MF_FD_FREE) {
            fs->fds[i] = target;
            return MF_FD_BASE + i;
        }
    }
    return -EMFILE;
}

static int mf_close(void *ctx, int fd)
{
    struct memfs *fs = ctx;
    if (fd < MF_FD_BASE || fd >= MF_FD_BASE + MF_FDS ||
        fs->fds[fd - MF_FD_BASE] == MF_FD_FREE) {
        return -EBADF;
    }
    /* Closing syncs nothing: unsynced writes stay at the mercy of a power
     * loss. */
    fs->fds[fd - MF_FD_BASE] = MF_FD_FREE;
    return 0;
}

static int64_t mf_pread(void *ctx, int fd, void *buf, size_t len, uint64_t off)
{
    struct memfs *fs = ctx;
    struct mf_inode *ino = mf_inode_of(fs, fd);
    if (fs->dead) {
        return -EIO;
    }
    if (ino == NULL) {
        return -EBADF;
    }
    if (off >= ino->cur.len) {
        return 0;
    }
    uint64_t n = ino->cur.len - off < len ? ino->cur.len - off : len;
    memcpy(buf, ino->cur.p + off, (size_t)n);
    return (int64_t)n;
}

static int64_t mf_pwrite(void *ctx,
                         int fd,
                         const void *buf,
                         size_t len,
                         uint64_t off)
{
    struct memfs *fs = ctx;
    struct mf_inode *ino = mf_inode_of(fs, fd);
    if (fs->dead) {
        return -EIO;
    }
    if (ino == NULL) {
        return -EBADF;
    }
    bytes_write(&ino->cur, buf, len, off);
    ino_push(ino, MF_WRITE, off, buf, len);
    return (int64_t)len;
}

static int mf_sync(void *ctx, int fd)
{
    struct memfs *fs = ctx;
    if (fs->dead) {
        return -EIO;
    }
    if (fd >= MF_FD_BASE && fd < MF_FD_BASE + MF_FDS &&
        fs->fds[fd - MF_FD_BASE] == MF_FD_DIR) {
        /* A directory fsync makes every name change durable. */
        names_copy(&fs->dur, &fs->cur);
        fs->n_dirops = 0;
        mf_gc(fs);
        return 0;
    }
    struct mf_inode *ino = mf_inode_of(fs, fd);
    if (ino == NULL) {
        return -EBADF;
    }
    ino_sync(ino);
    return 0;
}

static int mf_ftruncate(void *ctx, int fd, uint64_t len)
{
    struct memfs *fs = ctx;
    struct mf_inode *ino = mf_inode_of(fs, fd);
    if (fs->dead) {
        return -EIO;
    }
    if (ino == NULL) {
        return -EBADF;
    }
    bytes_resize(&ino->cur, len);
    ino_push(ino, MF_TRUNCATE, len, NULL, 0);
    return 0;
}

static int mf_fallocate(void *ctx, int fd, uint64_t off, uint64_t len)
{
    struct memfs *fs = ctx;
    struct mf_inode *ino = mf_inode_of(fs, fd);
    if (fs->dead) {
        return -EIO;
    }
    if (ino == NULL) {
        return -EBADF;
    }
    /* posix_fallocate grows the file (reading as zeros), never shrinks. */
    if (off + len > ino->cur.len) {
        bytes_resize(&ino->cur, off + len);
        ino_push(ino, MF_TRUNCATE, off + len, NULL, 0);
    }
    return 0;
}

static int mf_writeback(void *ctx, int fd, uint64_t off, uint64_t len)
{
    (void)ctx;
    (void)fd;
    (void)off;
    (void)len;
    return 0; /* advisory: durability still comes only from a sync */
}

static int mf_size(void *ctx, int fd, uint64_t *size)
{
    struct memfs *fs = ctx;
    struct mf_inode *ino = mf_inode_of(fs, fd);
    if (fs->dead) {
        return -EIO;
    }
    if (ino == NULL) {
        return -EBADF;
    }
    *size = ino->cur.len;
    return 0;
}

static int mf_rename(void *ctx, const char *from, const char *to)
{
    struct memfs *fs = ctx;
    const char *a = mf_name_of(fs, from);
    const char *b = mf_name_of(fs, to);
    if (fs->dead) {
        return -EIO;
    }
    if (a == NULL || b == NULL || a[0] == '\0' || b[0] == '\0') {
        return -EINVAL;
    }
    struct mf_name *e = names_find(&fs->cur, a);
    if (e == NULL) {
        return -ENOENT;
    }
    size_t ino = e->ino;
    /* Atomic for readers; durable as a whole or not at all only after a
     * directory fsync (a torn directory may keep the link and not the
     * unlink: both names then refer to the file, as after a crash in the
     * middle of a rename on some file systems). */
    names_link(&fs->cur, b, ino);
    names_unlink(&fs->cur, a);
    dirop_push(fs, MF_LINK, b, ino);
    dirop_push(fs, MF_UNLINK, a, ino);
    return 0;
}

static int mf_unlink(void *ctx, const char *path)
{
    struct memfs *fs = ctx;
    const char *name = mf_name_of(fs, path);
    if (fs->dead) {
        return -EIO;
    }
    if (name == NULL || name[0] == '\0') {
        return -EINVAL;
    }
    struct mf_name *e = names_find(&fs->cur, name);
    if (e == NULL) {
        return -ENOENT;
    }
    size_t ino = e->ino;
    names_unlink(&fs->cur, name);
    dirop_push(fs, MF_UNLINK, name, ino);
    return 0;
}

static int mf_mkdir(void *ctx, const char *path, unsigned mode)
{
    struct memfs *fs = ctx;
    (void)mode;
    if (fs->dead) {
        return -EIO;
    }
    if (strcmp(path, fs->dir) != 0) {
        return -ENOENT; /* only the node's own directory exists */
    }
    if (fs->dir_made) {
        return -EEXIST;
    }
    /* The directory itself is durable at once: it stands for a data
     * directory an operator made before the node ever started. */
    fs->dir_made = true;
    return 0;
}

static int mf_list(void *ctx,
                   const char *path,
                   int (*cb)(void *arg, const char *name),
                   void *arg)
{
    struct memfs *fs = ctx;
    if (fs->dead) {
        return -EIO;
    }
    if (strcmp(path, fs->dir) != 0 || !fs->dir_made) {
        return -ENOENT;
    }
    /* The callback may not change the directory; copy the names anyway so
     * that a listing is a snapshot, as readdir roughly gives. */
    size_t n = fs->cur.n;
    struct mf_name *copy = sim_xmalloc((n ? n : 1) * sizeof(*copy));
    if (n > 0) {
        memcpy(copy, fs->cur.v, n * sizeof(*copy));
    }
    int rc = 0;
    for (size_t i = 0; i < n && rc == 0; i++) {
        rc = cb(arg, copy[i].name);
    }
    free(copy);
    return rc;
}

static void memfs_init(struct memfs *fs, const char *dir)
{
    memset(fs, 0, sizeof(*fs));
    snprintf(fs->dir, sizeof(fs->dir), "%s", dir);
    for (int i = 0; i < MF_FDS; i++) {
        fs->fds[i] = MF_FD_FREE;
    }
    fs->io.ctx = fs;
    fs->io.open = mf_open;
    fs->io.close = mf_close;
    fs->io.pread = mf_pread;
    fs->io.pwrite = mf_pwrite;
    fs->io.fdatasync = mf_sync;
    fs->io.fsync = mf_sync;
    fs->io.ftruncate = mf_ftruncate;
    fs->io.fallocate = mf_fallocate;
    fs->io.writeback = mf_writeback;
    fs->io.size = mf_size;
    fs->io.rename = mf_rename;
    fs->io.unlink = mf_unlink;
    fs->io.mkdir = mf_mkdir;
    fs->io.list = mf_list;
}

/* Power loss. Every descriptor dies with the process. Each file keeps its
 * durable image plus, with @tear, a random prefix of its unsynced writes
 * and maybe a random byte prefix of the next one; the directory keeps its
 * durable names plus, with @tear, a random prefix of its unsynced changes.
 * Returns the number of unsynced writes and directory changes kept. */
static uint64_t memfs_crash(struct memfs *fs, struct sim_rng *rng, bool tear)
{
    uint64_t kept = 0;
    for (int i = 0; i < MF_FDS; i++) {
        fs->fds[i] = MF_FD_FREE;
    }
    for (size_t i = 0; i < fs->n_inodes; i++) {
        struct mf_inode *ino = &fs->inodes[i];
        if (!ino->used) {
            continue;
        }
        if (tear && ino->n_ops > 0) {
            size_t keep = (size_t)sim_rng_below(rng, ino->n_ops + 1);
            for (size_t k = 0; k < keep; k++) {
                op_apply_to(&ino->dur, &ino->ops[k]);
            }
            kept += keep;
            if (keep < ino->n_ops && ino->ops[keep].kind == MF_WRITE &&
                ino->ops[keep].len > 1 && sim_rng_below(rng, 2) == 0) {
                /* The write in flight reached the platter in part: a torn
                 * record. */
                struct mf_op part = ino->ops[keep];
                part.len = sim_rng_range(rng, 1, part.len - 1);
                op_apply_to(&ino->dur, &part);
            }
        }
        ino_drop_ops(ino);
        bytes_copy(&ino->cur, &ino->dur);
    }
    size_t keep = 0;
    if (tear && fs->n_dirops > 0) {
        keep = (size_t)sim_rng_below(rng, fs->n_dirops + 1);
    }
    for (size_t k = 0; k < keep; k++) {
        dirop_apply(&fs->dur, &fs->dirops[k]);
    }
    kept += keep;
    fs->n_dirops = 0;
    names_copy(&fs->cur, &fs->dur);
    mf_gc(fs);
    return kept;
}

/* Makes @to (initialised, empty) a copy of what @from would hold after a
 * power loss that keeps nothing unsynced. */
static void memfs_clone_durable(struct memfs *to, const struct memfs *from)
{
    to->dir_made = from->dir_made;
    if (from->n_inodes > 0 &&
        sim_grow((void **)&to->inodes, &to->cap_inodes, from->n_inodes,
                 sizeof(*to->inodes)) != 0) {
        abort();
    }
    to->n_inodes = from->n_inodes;
    for (size_t i = 0; i < from->n_inodes; i++) {
        struct mf_inode *ino = &to->inodes[i];
        memset(ino, 0, sizeof(*ino));
        ino->used = from->inodes[i].used;
        if (ino->used) {
            bytes_copy(&ino->dur, &from->inodes[i].dur);
            bytes_copy(&ino->cur, &from->inodes[i].dur);
        }
    }
    names_copy(&to->dur, &from->dur);
    names_copy(&to->cur, &from->dur);
    mf_gc(to);
}

static void memfs_free(struct memfs *fs)
{
    for (size_t i = 0; i < fs->n_inodes; i++) {
        if (fs->inodes[i].used) {
            ino_free(&fs->inodes[i]);
        }
    }
    free(fs->inodes);
    free(fs->cur.v);
    free(fs->dur.v);
    free(fs->dirops);
}

/* ---------------------------------------------------------------------- */
/* The seam over the WAL                                                  */

struct stage_chunk
{
    struct raft_snapshot_meta meta;
    uint64_t offset;
    uint32_t len;
    uint8_t *data;
};

struct walstore
{
    struct memfs fs;
    struct wal_options opts;
    struct wal *wal; /* NULL between a crash and the next load */
    struct wal_loaded loaded;

    /* load() on a running node (the checkers ask what is durable): a second
     * WAL opened on a copy of the durable image, kept until the next
     * call. */
    struct memfs probe_fs;
    struct wal *probe;
    struct wal_loaded probe_loaded;

    /* The snapshot: its meta is in the WAL's snapshot.meta, its bytes here
     * (durable as soon as they are saved). */
    bool has_snap;
    struct raft_snapshot_meta snap;
    uint8_t *snap_data;

    /* The snapshot being received: durable staged bytes, and the chunks
     * written since the last sync. */
    raft_index stage_index;
    uint8_t *stage;
    uint64_t stage_len, stage_cap;
    struct stage_chunk *chunks;
    size_t n_chunks, cap_chunks;

    size_t unsynced; /* seam writes since the last sync */
    char errmsg[512];
};

struct storage_wal_stats storage_wal_totals;

static int fail(struct walstore *w, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int fail(struct walstore *w, int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(w->errmsg, sizeof(w->errmsg), fmt, ap);
    va_end(ap);
    return code;
}

/* A WAL call failed: the real storage refused or broke, not the contract
 * the simulator checks. */
static int wal_fail(struct walstore *w, const char *what, int rc)
{
    return fail(w, SIM_EWAL, "%s: %s: %s", what, storage_strerror(rc),
                w->wal != NULL ? wal_errmsg(w->wal) : "");
}

static void log_cb(void *ctx, int level, const char *msg)
{
    (void)ctx;
    (void)msg;
    if (level >= STORAGE_LOG_WARN) {
        storage_wal_totals.warnings++;
    }
}

/* Opens a WAL over @fs into *@wal and *@loaded. */
static int open_on(struct walstore *w,
                   struct memfs *fs,
                   struct wal **wal,
                   struct wal_loaded *loaded,
                   const char *what)
{
    struct wal_options opts = w->opts;
    opts.io = &fs->io;
    int rc = wal_create(&opts, wal);
    if (rc != 0) {
        *wal = NULL;
        return wal_fail(w, "wal_create", rc);
    }
    rc = wal_open(*wal, fs->dir, loaded);
    if (rc != 0) {
        rc = fail(w, SIM_EWAL, "wal_open %s: %s: %s", what,
                  storage_strerror(rc), wal_errmsg(*wal));
        wal_destroy(*wal);
        *wal = NULL;
    }
    return rc;
}

static int open_wal(struct walstore *w)
{
    int rc = open_on(w, &w->fs, &w->wal, &w->loaded, "after a crash");
    if (rc != 0) {
        return rc;
    }
    storage_wal_totals.opens++;
    storage_wal_totals.repairs += w->loaded.repairs;
    storage_wal_totals.torn_bytes += w->loaded.torn_bytes;
    return 0;
}

static void probe_free(struct walstore *w)
{
    if (w->probe != NULL) {
        wal_loaded_free(w->probe, &w->probe_loaded);
        wal_destroy(w->probe);
        w->probe = NULL;
    }
    memfs_free(&w->probe_fs);
    memfs_init(&w->probe_fs, w->fs.dir);
}

static int writable(struct walstore *w)
{
    if (w->wal == NULL) {
        return fail(w, SIM_ESTORAGE, "write to a crashed node's storage");
    }
    return 0;
}

/* Applies one staged chunk to the durable staging area (disk.c's rules). */
static int stage_apply(struct walstore *w, const struct stage_chunk *c)
{
    raft_index index = c->meta.index;
    if (c->offset == 0 || index != w->stage_index) {
        if (c->offset != 0) {
            return fail(w, SIM_ESTORAGE,
                        "snapshot chunk at offset %llu for snapshot %llu, but "
                        "staging holds snapshot %llu",
                        (unsigned long long)c->offset,
                        (unsigned long long)index,
                        (unsigned long long)w->stage_index);
        }
        w->stage_index = index;
        w->stage_len = 0;
    }
    if (c->offset > w->stage_len) {
        return fail(w, SIM_ESTORAGE,
                    "snapshot %llu chunk at offset %llu leaves a gap after "
                    "%llu staged bytes",
                    (unsigned long long)index, (unsigned long long)c->offset,
                    (unsigned long long)w->stage_len);
    }
    uint64_t end = c->offset + c->len;
    if (end > w->stage_cap) {
        w->stage = realloc(w->stage, (size_t)end);
        if (w->stage == NULL) {
            abort();
        }
        w->stage_cap = end;
    }
    if (c->len > 0) {
        memcpy(w->stage + c->offset, c->data, c->len);
    }
    if (end > w->stage_len) {
        w->stage_len = end;
    }
    return 0;
}

/* Applies the first @keep unsynced chunks and forgets all of them. */
static int stage_flush(struct walstore *w, size_t keep)
{
    int rc = 0;
    for (size_t i = 0; i < w->n_chunks; i++) {
        if (i < keep && rc == 0) {
            rc = stage_apply(w, &w->chunks[i]);
        }
        free(w->chunks[i].data);
    }
    w->n_chunks = 0;
    return rc;
}

static void set_snapshot(struct walstore *w,
                         const struct raft_snapshot_meta *meta,
                         uint8_t *data)
{
    free(w->snap_data);
    w->has_snap = true;
    w->snap = *meta;
    w->snap_data = data;
}

/* The log behind a saved snapshot: reset it if it does not reach past the
 * snapshot (or @reset_log), then drop whole segments below it. The meta is
 * already durable, so wal_open() reconciles whatever of this a crash
 * loses. */
static int log_behind_snapshot(struct walstore *w,
                               const struct raft_snapshot_meta *meta,
                               bool reset_log)
{
    int rc = 0;
    if (reset_log || wal_last_index(w->wal) < meta->index) {
        rc = wal_reset(w->wal, meta->index + 1);
        if (rc != 0) {
            return wal_fail(w, "wal_reset", rc);
        }
    }
    rc = wal_compact(w->wal, meta->index + 1);
    if (rc != 0) {
        return wal_fail(w, "wal_compact", rc);
    }
    return 0;
}

static int ws_stage_chunk(void *ctx, const struct raft_msg_snapshot *chunk)
{
    struct walstore *w = ctx;
    if (sim_grow((void **)&w->chunks, &w->cap_chunks, w->n_chunks + 1,
                 sizeof(*w->chunks)) != 0) {
        abort();
    }
    struct stage_chunk *c = &w->chunks[w->n_chunks++];
    c->meta = chunk->meta;
    c->offset = chunk->offset;
    c->len = chunk->len;
    c->data = sim_xmalloc(chunk->len > 0 ? chunk->len : 1);
    if (chunk->len > 0) {
        memcpy(c->data, chunk->data, chunk->len);
    }
    w->unsynced++;
    return 0;
}

static int ws_install_staged(void *ctx,
                             const struct raft_snapshot_meta *meta,
                             bool reset_log)
{
    struct walstore *w = ctx;
    int rc = writable(w);
    if (rc != 0) {
        return rc;
    }
    w->unsynced++;
    /* A driver fsyncs the staged file before it renames it into place and
     * records its meta: the chunks of this batch become durable first. */
    rc = stage_flush(w, w->n_chunks);
    if (rc != 0) {
        return rc;
    }
    if (w->stage_index != meta->index || w->stage_len != meta->size) {
        return fail(w, SIM_ESTORAGE,
                    "snapshot %llu (%llu bytes) installed, but staging holds "
                    "%llu bytes of snapshot %llu",
                    (unsigned long long)meta->index,
                    (unsigned long long)meta->size,
                    (unsigned long long)w->stage_len,
                    (unsigned long long)w->stage_index);
    }
    set_snapshot(w, meta, w->stage);
    w->stage = NULL;
    w->stage_len = w->stage_cap = 0;
    w->stage_index = 0;
    rc = wal_save_snapshot_meta(w->wal, meta);
    if (rc != 0) {
        return wal_fail(w, "wal_save_snapshot_meta", rc);
    }
    return log_behind_snapshot(w, meta, reset_log);
}

static int ws_save_snapshot(void *ctx,
                            const struct raft_snapshot_meta *meta,
                            const uint8_t *data)
{
    struct walstore *w = ctx;
    int rc = writable(w);
    if (rc != 0) {
        return rc;
    }
    if (w->unsynced != 0) {
        return fail(w, SIM_ESTORAGE,
                    "application snapshot saved over unsynced writes");
    }
    uint8_t *copy = sim_xmalloc(meta->size > 0 ? (size_t)meta->size : 1);
    if (meta->size > 0) {
        memcpy(copy, data, (size_t)meta->size);
    }
    set_snapshot(w, meta, copy);
    rc = wal_save_snapshot_meta(w->wal, meta);
    if (rc != 0) {
        return wal_fail(w, "wal_save_snapshot_meta", rc);
    }
    rc = log_behind_snapshot(w, meta, false);
    if (rc == 0) {
        /* Durable on return, as the seam promises: a reset the log needed
         * is synced too. */
        rc = wal_sync(w->wal, NULL);
        if (rc != 0) {
            return wal_fail(w, "wal_sync", rc);
        }
    }
    return rc;
}

static int ws_append(void *ctx, const struct raft_entry *entries, size_t n)
{
    struct walstore *w = ctx;
    int rc = writable(w);
    if (rc != 0 || n == 0) {
        return rc;
    }
    raft_index floor = w->has_snap ? w->snap.index : 0;
    if (entries[0].index <= floor) {
        return fail(w, SIM_ESTORAGE,
                    "entry %llu written at or below snapshot "
                    "%llu",
                    (unsigned long long)entries[0].index,
                    (unsigned long long)floor);
    }
    if (entries[0].index > wal_last_index(w->wal) + 1) {
        return fail(w, SIM_ESTORAGE,
                    "entry %llu written after last entry %llu (gap)",
                    (unsigned long long)entries[0].index,
                    (unsigned long long)wal_last_index(w->wal));
    }
    w->unsynced += n;
    rc = wal_append(w->wal, entries, n);
    if (rc != 0) {
        return wal_fail(w, "wal_append", rc);
    }
    return 0;
}

static int ws_save_hard_state(void *ctx, const struct raft_hard_state *hs)
{
    struct walstore *w = ctx;
    int rc = writable(w);
    if (rc != 0) {
        return rc;
    }
    w->unsynced++;
    rc = wal_save_hard_state(w->wal, hs);
    if (rc != 0) {
        return wal_fail(w, "wal_save_hard_state", rc);
    }
    return 0;
}

static int ws_sync(void *ctx)
{
    struct walstore *w = ctx;
    int rc = writable(w);
    if (rc != 0) {
        return rc;
    }
    rc = stage_flush(w, w->n_chunks);
    if (rc != 0) {
        return rc;
    }
    w->unsynced = 0;
    rc = wal_sync(w->wal, NULL);
    if (rc != 0) {
        return wal_fail(w, "wal_sync", rc);
    }
    if (wal_durable_index(w->wal) != wal_last_index(w->wal)) {
        return fail(w, SIM_EWAL,
                    "wal_sync: durable index %llu after a sync, last index "
                    "%llu",
                    (unsigned long long)wal_durable_index(w->wal),
                    (unsigned long long)wal_last_index(w->wal));
    }
    return 0;
}

static int ws_crash(void *ctx, struct sim_rng *rng, bool tear)
{
    struct walstore *w = ctx;
    probe_free(w);
    /* The process dies: the WAL's destructor may not touch the disk. */
    if (w->wal != NULL) {
        w->fs.dead = true;
        wal_loaded_free(w->wal, &w->loaded);
        wal_destroy(w->wal);
        w->wal = NULL;
        w->fs.dead = false;
    }
    size_t keep = 0;
    if (tear && w->n_chunks > 0) {
        keep = (size_t)sim_rng_below(rng, w->n_chunks + 1);
    }
    int rc = stage_flush(w, keep);
    uint64_t kept = memfs_crash(&w->fs, rng, tear);
    w->unsynced = 0;
    storage_wal_totals.crashes++;
    if (rc != 0) {
        return rc;
    }
    return (int)(kept + keep > 1000000 ? 1000000 : kept + keep);
}

static int ws_load(void *ctx, struct sim_durable *out)
{
    struct walstore *w = ctx;
    const struct wal_loaded *l;
    int rc;
    memset(out, 0, sizeof(*out));
    probe_free(w);
    if (w->wal != NULL) {
        /* The node is running: recover what a power loss now would leave,
         * from a copy, without touching the live files. */
        memfs_clone_durable(&w->probe_fs, &w->fs);
        rc = open_on(w, &w->probe_fs, &w->probe, &w->probe_loaded,
                     "on the durable image of a running node");
        if (rc != 0) {
            return rc;
        }
        storage_wal_totals.probes++;
        l = &w->probe_loaded;
    } else {
        rc = open_wal(w);
        if (rc != 0) {
            return rc;
        }
        l = &w->loaded;
    }
    if (l->has_snapshot != w->has_snap ||
        (l->has_snapshot && (l->snapshot.index != w->snap.index ||
                             l->snapshot.term != w->snap.term ||
                             l->snapshot.size != w->snap.size))) {
        return fail(w, SIM_EWAL,
                    "wal_open: snapshot meta %llu/%llu (%s), but the "
                    "snapshot saved last is %llu/%llu (%s)",
                    (unsigned long long)l->snapshot.index,
                    (unsigned long long)l->snapshot.term,
                    l->has_snapshot ? "present" : "none",
                    (unsigned long long)w->snap.index,
                    (unsigned long long)w->snap.term,
                    w->has_snap ? "present" : "none");
    }
    raft_index expect = l->has_snapshot ? l->snapshot.index + 1 : 1;
    if (l->n_entries > 0 && l->entries[0].index != expect) {
        return fail(w, SIM_EWAL,
                    "wal_open: entries start at %llu after snapshot %llu",
                    (unsigned long long)l->entries[0].index,
                    (unsigned long long)(expect - 1));
    }
    out->hs = l->hs;
    out->has_snapshot = l->has_snapshot;
    if (l->has_snapshot) {
        out->snap = l->snapshot;
        out->snap_data = w->snap_data;
    }
    out->entries = l->entries;
    out->n_entries = l->n_entries;
    return 0;
}

static const uint8_t *ws_snapshot_data(void *ctx,
                                       raft_index index,
                                       const struct raft_snapshot_meta **meta)
{
    struct walstore *w = ctx;
    if (!w->has_snap || w->snap.index != index) {
        return NULL;
    }
    *meta = &w->snap;
    return w->snap_data;
}

static size_t ws_unsynced(void *ctx)
{
    struct walstore *w = ctx;
    return w->unsynced;
}

static const char *ws_errmsg(void *ctx)
{
    struct walstore *w = ctx;
    return w->errmsg;
}

static void ws_destroy(void *ctx)
{
    struct walstore *w = ctx;
    if (w->wal != NULL) {
        wal_loaded_free(w->wal, &w->loaded);
        wal_destroy(w->wal);
    }
    probe_free(w);
    memfs_free(&w->probe_fs);
    stage_flush(w, 0);
    free(w->chunks);
    free(w->stage);
    free(w->snap_data);
    memfs_free(&w->fs);
    free(w);
}

static const struct sim_storage_ops walstore_ops = {
    .stage_chunk = ws_stage_chunk,
    .install_staged = ws_install_staged,
    .save_snapshot = ws_save_snapshot,
    .append = ws_append,
    .save_hard_state = ws_save_hard_state,
    .sync = ws_sync,
    .crash = ws_crash,
    .load = ws_load,
    .snapshot_data = ws_snapshot_data,
    .unsynced = ws_unsynced,
    .errmsg = ws_errmsg,
    .destroy = ws_destroy,
};

int storage_wal_create(struct sim_storage *out, uint64_t seed, raft_id id)
{
    struct walstore *w = sim_xcalloc(1, sizeof(*w));
    char dir[MF_NAME_MAX];
    snprintf(dir, sizeof(dir), "/sim/n%llu/wal", (unsigned long long)id);
    memfs_init(&w->fs, dir);
    memfs_init(&w->probe_fs, dir);

    /* Swarm the WAL's own settings too: small segments so that rollover
     * and compaction happen in every run, and each preallocation mode. */
    static const uint32_t seg_bytes[] = {4096, 8192, 16384, 65536};
    static const enum wal_prealloc prealloc[] = {
        WAL_PREALLOC_ZERO, WAL_PREALLOC_ZERO, WAL_PREALLOC_NONE,
        WAL_PREALLOC_FALLOCATE};
    uint64_t pick = sim_mix64(seed ^ 0x77616c6f707473ull);
    wal_options_default(&w->opts);
    w->opts.io = &w->fs.io;
    w->opts.log = log_cb;
    w->opts.log_ctx = w;
    w->opts.segment_bytes = seg_bytes[pick % 4];
    w->opts.prealloc = prealloc[(pick >> 8) % 4];

    if (open_wal(w) != 0) {
        fprintf(stderr, "sim: %s\n", w->errmsg);
        ws_destroy(w);
        return -1;
    }
    /* Nothing was loaded from an empty directory. */
    wal_loaded_free(w->wal, &w->loaded);
    out->ops = &walstore_ops;
    out->ctx = w;
    return 0;
}
