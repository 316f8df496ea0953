/*
 * lazyfs.c - a FUSE filesystem that forgets what was not synced, in the
 * spirit of Jepsen's LazyFS: a node's WAL lives on it, and a simulated
 * machine crash drops every write no fsync/fdatasync covered, so an fsync
 * the code forgot becomes a lost write the checkers see.
 *
 *   lazyfs BACKING_DIR MOUNTPOINT
 *
 * Every operation passes through to BACKING_DIR at once (reads see every
 * write). For each file, the writes since its last fsync are kept as an
 * undo log (the bytes they overwrote and the size before). A stat of
 * MOUNTPOINT/.lazyfs-crash undoes every log, newest first, leaving each
 * file as its last sync left it, and reports "no such file". Metadata
 * (create, rename, unlink, mkdir) counts as durable at once: only data is
 * lost. Single-threaded (-s): no locks.
 *
 * A stat of MOUNTPOINT/.lazyfs-eio-on makes every later write, fsync and
 * fdatasync fail with EIO (a failing disk), until a stat of
 * MOUNTPOINT/.lazyfs-eio-off; a write that fails changes nothing, and a
 * failed sync forgets nothing, so a crash still drops what it covered.
 */
#define FUSE_USE_VERSION 31
#define _GNU_SOURCE

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <fuse.h>
#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/types.h>
#include <unistd.h>

#define CRASH_PATH "/.lazyfs-crash"
#define EIO_ON_PATH "/.lazyfs-eio-on"
#define EIO_OFF_PATH "/.lazyfs-eio-off"

/* One write (or truncation) to undo: the @len bytes at @off it
 * overwrote, and the file's size before it. */
struct undo
{
    off_t off;
    size_t len;
    char *old;
    off_t old_size;
};

/* The unsynced changes of one file (by inode), and a descriptor of its
 * own to undo them through (the file may have been closed or renamed). */
struct file_log
{
    ino_t ino;
    int fd;
    struct undo *undo;
    size_t n, cap;
    struct file_log *next;
};

static const char *backing;
static struct file_log *logs;
/* Whether writes and syncs fail with EIO (the disk is failing). */
static bool failing;

static void full_path(char *out, const char *path)
{
    snprintf(out, PATH_MAX, "%s%s", backing, path);
}

static struct file_log *log_for(int fd, bool create)
{
    struct stat st;
    if (fstat(fd, &st) != 0) {
        return NULL;
    }
    for (struct file_log *l = logs; l != NULL; l = l->next) {
        if (l->ino == st.st_ino) {
            return l;
        }
    }
    if (!create) {
        return NULL;
    }
    struct file_log *l = calloc(1, sizeof(*l));
    if (l == NULL) {
        return NULL;
    }
    l->ino = st.st_ino;
    l->fd = dup(fd);
    l->next = logs;
    logs = l;
    return l;
}

static void log_free(struct file_log *l)
{
    for (size_t i = 0; i < l->n; i++) {
        free(l->undo[i].old);
    }
    free(l->undo);
    close(l->fd);
    free(l);
}

/* Records what changing [off, off + len) of @fd would overwrite. */
static int remember(int fd, off_t off, size_t len)
{
    struct stat st;
    if (fstat(fd, &st) != 0) {
        return -errno;
    }
    struct file_log *l = log_for(fd, true);
    if (l == NULL) {
        return -ENOMEM;
    }
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 16;
        struct undo *u = realloc(l->undo, cap * sizeof(*u));
        if (u == NULL) {
            return -ENOMEM;
        }
        l->undo = u;
        l->cap = cap;
    }
    struct undo *u = &l->undo[l->n];
    memset(u, 0, sizeof(*u));
    u->off = off;
    u->old_size = st.st_size;
    if (off < st.st_size) {
        size_t keep =
            (size_t)(st.st_size - off) < len ? (size_t)(st.st_size - off) : len;
        u->old = malloc(keep ? keep : 1);
        if (u->old == NULL) {
            return -ENOMEM;
        }
        ssize_t got = pread(fd, u->old, keep, off);
        u->len = got > 0 ? (size_t)got : 0;
    }
    l->n++;
    return 0;
}

static void forget(int fd)
{
    struct stat st;
    if (fstat(fd, &st) != 0) {
        return;
    }
    for (struct file_log **pp = &logs; *pp != NULL; pp = &(*pp)->next) {
        if ((*pp)->ino == st.st_ino) {
            struct file_log *l = *pp;
            *pp = l->next;
            log_free(l);
            return;
        }
    }
}

/* The machine crashed: every file goes back to its last synced state. */
static void crash(void)
{
    size_t files = 0, writes = 0;
    while (logs != NULL) {
        struct file_log *l = logs;
        logs = l->next;
        for (size_t i = l->n; i-- > 0;) {
            struct undo *u = &l->undo[i];
            if (u->len > 0 &&
                pwrite(l->fd, u->old, u->len, u->off) != (ssize_t)u->len) {
                perror("lazyfs: undo");
            }
            if (ftruncate(l->fd, u->old_size) != 0) {
                perror("lazyfs: undo truncate");
            }
        }
        files++;
        writes += l->n;
        log_free(l);
    }
    fprintf(stderr, "lazyfs: crash: dropped %zu unsynced writes in %zu files\n",
            writes, files);
}

static int lz_getattr(const char *path,
                      struct stat *st,
                      struct fuse_file_info *fi)
{
    if (strcmp(path, CRASH_PATH) == 0) {
        crash();
        return -ENOENT;
    }
    if (strcmp(path, EIO_ON_PATH) == 0 || strcmp(path, EIO_OFF_PATH) == 0) {
        failing = strcmp(path, EIO_ON_PATH) == 0;
        fprintf(stderr, "lazyfs: writes and syncs %s\n",
                failing ? "fail with EIO" : "work again");
        return -ENOENT;
    }
    int rc;
    if (fi != NULL) {
        rc = fstat((int)fi->fh, st);
    } else {
        char p[PATH_MAX];
        full_path(p, path);
        rc = lstat(p, st);
    }
    return rc == 0 ? 0 : -errno;
}

static int lz_readdir(const char *path,
                      void *buf,
                      fuse_fill_dir_t fill,
                      off_t off,
                      struct fuse_file_info *fi,
                      enum fuse_readdir_flags flags)
{
    (void)off;
    (void)fi;
    (void)flags;
    char p[PATH_MAX];
    full_path(p, path);
    DIR *d = opendir(p);
    if (d == NULL) {
        return -errno;
    }
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        struct stat st;
        memset(&st, 0, sizeof(st));
        st.st_ino = e->d_ino;
        st.st_mode = (mode_t)e->d_type << 12;
        if (fill(buf, e->d_name, &st, 0, 0)) {
            break;
        }
    }
    closedir(d);
    return 0;
}

static int lz_open(const char *path, struct fuse_file_info *fi)
{
    char p[PATH_MAX];
    full_path(p, path);
    int fd = open(p, fi->flags & ~O_DIRECT);
    if (fd < 0) {
        return -errno;
    }
    fi->fh = (uint64_t)fd;
    if ((fi->flags & O_TRUNC) && remember(fd, 0, 0) != 0) {
        return -EIO;
    }
    return 0;
}

static int lz_create(const char *path, mode_t mode, struct fuse_file_info *fi)
{
    char p[PATH_MAX];
    full_path(p, path);
    int fd = open(p, (fi->flags | O_CREAT) & ~O_DIRECT, mode);
    if (fd < 0) {
        return -errno;
    }
    fi->fh = (uint64_t)fd;
    return 0;
}

static int lz_read(const char *path,
                   char *buf,
                   size_t size,
                   off_t off,
                   struct fuse_file_info *fi)
{
    (void)path;
    ssize_t n = pread((int)fi->fh, buf, size, off);
    return n < 0 ? -errno : (int)n;
}

static int lz_write(const char *path,
                    const char *buf,
                    size_t size,
                    off_t off,
                    struct fuse_file_info *fi)
{
    (void)path;
    if (failing) {
        return -EIO;
    }
    int rc = remember((int)fi->fh, off, size);
    if (rc != 0) {
        return rc;
    }
    ssize_t n = pwrite((int)fi->fh, buf, size, off);
    return n < 0 ? -errno : (int)n;
}

static int lz_fsync(const char *path, int datasync, struct fuse_file_info *fi)
{
    (void)path;
    if (failing) {
        return -EIO;
    }
    int rc = datasync ? fdatasync((int)fi->fh) : fsync((int)fi->fh);
    if (rc != 0) {
        return -errno;
    }
    forget((int)fi->fh);
    return 0;
}

static int lz_release(const char *path, struct fuse_file_info *fi)
{
    (void)path;
    close((int)fi->fh);
    return 0;
}

static int lz_truncate(const char *path, off_t size, struct fuse_file_info *fi)
{
    int fd = fi != NULL ? (int)fi->fh : -1;
    int own = -1;
    if (fd < 0) {
        char p[PATH_MAX];
        full_path(p, path);
        own = fd = open(p, O_RDWR);
        if (fd < 0) {
            return -errno;
        }
    }
    struct stat st;
    int rc = fstat(fd, &st) == 0 ? 0 : -errno;
    if (rc == 0 && size < st.st_size) {
        rc = remember(fd, size, (size_t)(st.st_size - size));
    } else if (rc == 0) {
        rc = remember(fd, st.st_size, 0);
    }
    if (rc == 0 && ftruncate(fd, size) != 0) {
        rc = -errno;
    }
    if (own >= 0) {
        close(own);
    }
    return rc;
}

static int lz_fallocate(const char *path,
                        int mode,
                        off_t off,
                        off_t len,
                        struct fuse_file_info *fi)
{
    (void)path;
    if (mode != 0) {
        return -EOPNOTSUPP;
    }
    int rc = remember((int)fi->fh, off, 0);
    if (rc != 0) {
        return rc;
    }
    rc = posix_fallocate((int)fi->fh, off, len);
    return -rc;
}

static int lz_unlink(const char *path)
{
    char p[PATH_MAX];
    full_path(p, path);
    return unlink(p) == 0 ? 0 : -errno;
}

static int lz_mkdir(const char *path, mode_t mode)
{
    char p[PATH_MAX];
    full_path(p, path);
    return mkdir(p, mode) == 0 ? 0 : -errno;
}

static int lz_rmdir(const char *path)
{
    char p[PATH_MAX];
    full_path(p, path);
    return rmdir(p) == 0 ? 0 : -errno;
}

static int lz_rename(const char *from, const char *to, unsigned int flags)
{
    char a[PATH_MAX], b[PATH_MAX];
    if (flags != 0) {
        return -EINVAL;
    }
    full_path(a, from);
    full_path(b, to);
    return rename(a, b) == 0 ? 0 : -errno;
}

static int lz_opendir(const char *path, struct fuse_file_info *fi)
{
    (void)path;
    (void)fi;
    return 0;
}

static int lz_fsyncdir(const char *path,
                       int datasync,
                       struct fuse_file_info *fi)
{
    (void)path;
    (void)datasync;
    (void)fi;
    return 0; /* metadata is durable at once in this model */
}

static int lz_statfs(const char *path, struct statvfs *st)
{
    (void)path;
    return statvfs(backing, st) == 0 ? 0 : -errno;
}

static int lz_chmod(const char *path, mode_t mode, struct fuse_file_info *fi)
{
    (void)fi;
    char p[PATH_MAX];
    full_path(p, path);
    return chmod(p, mode) == 0 ? 0 : -errno;
}

static int lz_utimens(const char *path,
                      const struct timespec tv[2],
                      struct fuse_file_info *fi)
{
    (void)fi;
    char p[PATH_MAX];
    full_path(p, path);
    return utimensat(AT_FDCWD, p, tv, AT_SYMLINK_NOFOLLOW) == 0 ? 0 : -errno;
}

static void *lz_init(struct fuse_conn_info *conn, struct fuse_config *cfg)
{
    (void)conn;
    /* No caching in the kernel: after a crash, reads must see the undone
     * bytes, and every write must reach lz_write(). */
    cfg->direct_io = 1;
    cfg->kernel_cache = 0;
    cfg->attr_timeout = 0;
    cfg->entry_timeout = 0;
    cfg->negative_timeout = 0;
    cfg->use_ino = 1;
    return NULL;
}

static void lz_destroy(void *data)
{
    (void)data;
    while (logs != NULL) {
        struct file_log *l = logs;
        logs = l->next;
        log_free(l);
    }
}

static const struct fuse_operations ops = {
    .init = lz_init,
    .destroy = lz_destroy,
    .getattr = lz_getattr,
    .readdir = lz_readdir,
    .opendir = lz_opendir,
    .fsyncdir = lz_fsyncdir,
    .open = lz_open,
    .create = lz_create,
    .read = lz_read,
    .write = lz_write,
    .fsync = lz_fsync,
    .release = lz_release,
    .truncate = lz_truncate,
    .fallocate = lz_fallocate,
    .unlink = lz_unlink,
    .mkdir = lz_mkdir,
    .rmdir = lz_rmdir,
    .rename = lz_rename,
    .statfs = lz_statfs,
    .chmod = lz_chmod,
    .utimens = lz_utimens,
};

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: lazyfs BACKING_DIR MOUNTPOINT\n");
        return 2;
    }
    static char real[PATH_MAX];
    if (realpath(argv[1], real) == NULL) {
        perror(argv[1]);
        return 2;
    }
    backing = real;
    char *fargv[] = {argv[0], "-f", "-s", "-o", "default_permissions",
                     argv[2], NULL};
    return fuse_main(6, fargv, &ops, NULL);
}
