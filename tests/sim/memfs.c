/*
 * memfs.c - a file system in memory with power-loss semantics; see
 * memfs.h.
 */
#include "memfs.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
static void ino_sync(struct memfs *fs, struct mf_inode *ino)
{
    if (ino->n_ops > 0) {
        fs->durable_gen++;
    }
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

/* ---- injected faults ---------------------------------------------------- */

static bool faults_on(const struct memfs *fs)
{
    return fs->faults != NULL && fs->faults->armed && !fs->dead;
}

/* Records an injected fault for the storage seam (which tells from @hit
 * that the failure it sees was injected), the trace and the counters, and
 * returns @err (a negative errno). @c and @d describe it in the trace: for
 * a write, the bytes a short write wrote before and whether the disk was
 * full; for a sync, how many unsynced writes reached the disk, and how many
 * did not (times 2, plus 1 if they were dropped). */
static int inject(struct memfs *fs,
                  uint8_t call,
                  int err,
                  uint64_t c,
                  uint64_t d)
{
    struct sim_iofaults *f = fs->faults;
    bool sync = call >= IOF_FDATASYNC;
    f->hit |= err == -ENOSPC ? IOF_HIT_ENOSPC : IOF_HIT_EIO;
    if (f->first[0] == '\0') {
        snprintf(f->first, sizeof(f->first), "%s: %s%s",
                 sim_iofault_call_name(call), strerror(-err),
                 !sync && d != 0 ? " (disk full)" : "");
    }
    sim_trace(f->sim, TR_IOFAULT, f->slot, call, (uint64_t)-err, c, d);
    f->sim->n_iofaults++;
    if (sync) {
        storage_wal_totals.fault_sync_eio++;
        storage_wal_totals.sync_dropped += d & 1;
    } else if (d != 0) {
        storage_wal_totals.fault_full++;
    } else if (err == -ENOSPC) {
        storage_wal_totals.fault_write_enospc++;
    } else {
        storage_wal_totals.fault_write_eio++;
    }
    return err;
}

/* A random write fault: EIO or ENOSPC. */
static int write_errno(struct sim_iofaults *f)
{
    return sim_rng_below(f->rng, 2) == 0 ? -EIO : -ENOSPC;
}

/* Whether a fallocate or ftruncate that makes the file @grows fails. */
static int resize_fault(struct memfs *fs, uint8_t call, bool grows)
{
    struct sim_iofaults *f = fs->faults;
    if (!faults_on(fs)) {
        return 0;
    }
    if (f->full && grows) {
        return inject(fs, call, -ENOSPC, 0, 1);
    }
    if (sim_rng_ppm(f->rng, f->write_ppm)) {
        return inject(fs, call, write_errno(f), 0, 0);
    }
    return 0;
}

/* Whether a pwrite of @len bytes at @off fails. Returns 0 to go ahead, a
 * negative errno, or the size of a short write that comes first: it writes
 * part of the bytes (@part) and the next pwrite on @fd fails, as a write
 * that fails half-way does through POSIX. */
static int pwrite_fault(struct memfs *fs,
                        int fd,
                        const struct mf_inode *ino,
                        size_t len,
                        uint64_t off,
                        uint64_t *part)
{
    struct sim_iofaults *f = fs->faults;
    int err;
    bool full = false;
    *part = 0;
    if (!faults_on(fs) || len == 0) {
        fs->fail_next = 0;
        return 0;
    }
    if (fs->fail_next != 0 && fs->fail_fd == fd) {
        err = fs->fail_next;
        fs->fail_next = 0;
        return inject(fs, IOF_PWRITE, err, fs->fail_part, fs->fail_full);
    }
    fs->fail_next = 0;
    if (f->full && off + len > ino->cur.len) {
        /* What fits inside the file is written; growing it is not. */
        err = -ENOSPC;
        full = true;
        *part = off < ino->cur.len ? ino->cur.len - off : 0;
    } else if (sim_rng_ppm(f->rng, f->write_ppm)) {
        err = write_errno(f);
        if (len > 1 && sim_rng_below(f->rng, 2) == 0) {
            *part = sim_rng_range(f->rng, 1, len - 1);
        }
    } else {
        return 0;
    }
    if (*part == 0) {
        return inject(fs, IOF_PWRITE, err, 0, full);
    }
    fs->fail_next = err;
    fs->fail_fd = fd;
    fs->fail_part = *part;
    fs->fail_full = full;
    return 0;
}

/* Whether a sync fails; @ino is the file, or NULL for the directory. A
 * failed sync is fsyncgate: a random prefix of the unsynced writes reached
 * the disk; the rest stays pending, or is dropped for good (the kernel
 * marked the pages clean: a retried sync would report success without
 * them) and reads no longer see it. */
static int sync_fault(struct memfs *fs, uint8_t call, struct mf_inode *ino)
{
    struct sim_iofaults *f = fs->faults;
    if (!faults_on(fs) || !sim_rng_ppm(f->rng, f->sync_ppm)) {
        return 0;
    }
    size_t n = ino != NULL ? ino->n_ops : fs->n_dirops;
    size_t reached = (size_t)sim_rng_below(f->rng, n + 1);
    bool drop = sim_rng_below(f->rng, 2) == 0;
    if (reached > 0) {
        fs->durable_gen++;
    }
    if (ino != NULL) {
        for (size_t i = 0; i < reached; i++) {
            op_apply_to(&ino->dur, &ino->ops[i]);
            free(ino->ops[i].data);
        }
        if (reached > 0) {
            memmove(ino->ops, ino->ops + reached,
                    (ino->n_ops - reached) * sizeof(*ino->ops));
            ino->n_ops -= reached;
        }
        if (drop) {
            ino_drop_ops(ino);
            bytes_copy(&ino->cur, &ino->dur);
        }
    } else {
        for (size_t i = 0; i < reached; i++) {
            dirop_apply(&fs->dur, &fs->dirops[i]);
        }
        if (reached > 0) {
            memmove(fs->dirops, fs->dirops + reached,
                    (fs->n_dirops - reached) * sizeof(*fs->dirops));
            fs->n_dirops -= reached;
        }
        if (drop) {
            fs->n_dirops = 0;
            names_copy(&fs->cur, &fs->dur);
            mf_gc(fs);
        }
    }
    return inject(fs, call, -EIO, reached, (uint64_t)(n - reached) << 1 | drop);
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
    uint64_t part;
    int err = pwrite_fault(fs, fd, ino, len, off, &part);
    if (err != 0) {
        return err;
    }
    if (part > 0) {
        len = (size_t)part;
    }
    bytes_write(&ino->cur, buf, len, off);
    ino_push(ino, MF_WRITE, off, buf, len);
    return (int64_t)len;
}

static int mf_sync(struct memfs *fs, int fd, uint8_t call)
{
    if (fs->dead) {
        return -EIO;
    }
    if (fd >= MF_FD_BASE && fd < MF_FD_BASE + MF_FDS &&
        fs->fds[fd - MF_FD_BASE] == MF_FD_DIR) {
        int err = sync_fault(fs, IOF_DIRSYNC, NULL);
        if (err != 0) {
            return err;
        }
        /* A directory fsync makes every name change durable. */
        if (fs->n_dirops > 0) {
            fs->durable_gen++;
        }
        names_copy(&fs->dur, &fs->cur);
        fs->n_dirops = 0;
        mf_gc(fs);
        return 0;
    }
    struct mf_inode *ino = mf_inode_of(fs, fd);
    if (ino == NULL) {
        return -EBADF;
    }
    int err = sync_fault(fs, call, ino);
    if (err != 0) {
        return err;
    }
    ino_sync(fs, ino);
    return 0;
}

static int mf_fdatasync(void *ctx, int fd)
{
    return mf_sync(ctx, fd, IOF_FDATASYNC);
}

static int mf_fsync(void *ctx, int fd)
{
    return mf_sync(ctx, fd, IOF_FSYNC);
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
    int err = resize_fault(fs, IOF_FTRUNCATE, len > ino->cur.len);
    if (err != 0) {
        return err;
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
    int err = resize_fault(fs, IOF_FALLOCATE, off + len > ino->cur.len);
    if (err != 0) {
        return err;
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
    fs->durable_gen++;
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

void memfs_init(struct memfs *fs, const char *dir)
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
    fs->io.fdatasync = mf_fdatasync;
    fs->io.fsync = mf_fsync;
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
uint64_t memfs_crash(struct memfs *fs, struct sim_rng *rng, bool tear)
{
    uint64_t kept = 0;
    fs->durable_gen++;
    fs->fail_next = 0;
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

void memfs_exit(struct memfs *fs)
{
    for (int i = 0; i < MF_FDS; i++) {
        fs->fds[i] = MF_FD_FREE;
    }
    fs->fail_next = 0;
    mf_gc(fs);
}

/* Makes @to (initialised, empty) a copy of what @from would hold after a
 * power loss that keeps nothing unsynced. */
void memfs_clone_durable(struct memfs *to, const struct memfs *from)
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

void memfs_free(struct memfs *fs)
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
