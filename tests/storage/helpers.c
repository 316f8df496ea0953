/*
 * helpers.c - see helpers.h.
 */
#include "helpers.h"

#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static bool ends_with_tmp(const char *path)
{
    size_t n = strlen(path);
    return n >= 4 && strcmp(path + n - 4, ".tmp") == 0;
}

static bool fault_hit_op(struct fault_io *f, const char *op)
{
    if (f->fail_at != 0 && ++f->calls == f->fail_at) {
        f->fired = true;
        f->fired_op = op;
        return true;
    }
    if (f->fail_at == 0) {
        f->calls++;
    }
    return false;
}

#define fault_hit(f) fault_hit_op((f), __func__ + 2)

static int f_open(void *ctx, const char *path, int flags, unsigned mode)
{
    struct fault_io *f = ctx;
    const struct storage_io *p = storage_io_posix();
    int fd;
    if (fault_hit(f)) {
        f->fired_tmp = ends_with_tmp(path);
        return -f->err;
    }
    fd = p->open(p->ctx, path, flags, mode);
    ck_assert_int_lt(fd, FAULT_FDS);
    if (fd >= 0) {
        f->tmp[fd] = ends_with_tmp(path);
        snprintf(f->path[fd], sizeof f->path[fd], "%s", path);
    }
    return fd;
}

/* The unsynced-range slot of @path, created if needed. */
static int unsynced_slot(struct fault_io *f, const char *path)
{
    int empty = -1;
    for (int i = 0; i < FAULT_FILES; i++) {
        if (strcmp(f->unsynced[i].path, path) == 0) {
            return i;
        }
        if (empty < 0 && (f->unsynced[i].path[0] == '\0' ||
                          f->unsynced[i].lo >= f->unsynced[i].hi)) {
            empty = i;
        }
    }
    ck_assert_int_ge(empty, 0);
    snprintf(f->unsynced[empty].path, sizeof f->unsynced[empty].path, "%s",
             path);
    f->unsynced[empty].lo = UINT64_MAX;
    f->unsynced[empty].hi = 0;
    return empty;
}

static void track_write(struct fault_io *f, int fd, uint64_t off, size_t len)
{
    int i;
    if (fd < 0 || fd >= FAULT_FDS || f->path[fd][0] == '\0') {
        return;
    }
    i = unsynced_slot(f, f->path[fd]);
    if (off < f->unsynced[i].lo) {
        f->unsynced[i].lo = off;
    }
    if (off + len > f->unsynced[i].hi) {
        f->unsynced[i].hi = off + len;
    }
}

static void track_sync(struct fault_io *f, int fd)
{
    int i;
    if (fd < 0 || fd >= FAULT_FDS || f->path[fd][0] == '\0') {
        return;
    }
    i = unsynced_slot(f, f->path[fd]);
    f->unsynced[i].lo = UINT64_MAX;
    f->unsynced[i].hi = 0;
}

void fault_io_power_loss(struct fault_io *f, uint64_t *rng)
{
    static const uint8_t zeros[4096];
    for (int i = 0; i < FAULT_FILES; i++) {
        uint64_t lo = f->unsynced[i].lo;
        uint64_t hi = f->unsynced[i].hi;
        int fd;
        if (f->unsynced[i].path[0] == '\0' || lo >= hi) {
            continue;
        }
        *rng ^= *rng << 13;
        *rng ^= *rng >> 7;
        *rng ^= *rng << 17;
        lo += *rng % (hi - lo + 1);
        fd = open(f->unsynced[i].path, O_WRONLY);
        if (fd < 0) {
            continue; /* removed since: nothing to lose */
        }
        while (lo < hi) {
            size_t n =
                hi - lo < sizeof zeros ? (size_t)(hi - lo) : sizeof zeros;
            ck_assert_int_eq(pwrite(fd, zeros, n, (off_t)lo), (ssize_t)n);
            lo += n;
        }
        close(fd);
        f->unsynced[i].lo = UINT64_MAX;
        f->unsynced[i].hi = 0;
    }
}

static void mark(struct fault_io *f, int fd, bool dirty)
{
    if (fd >= 0 && fd < FAULT_FDS && f->dirty[fd] != dirty) {
        f->dirty[fd] = dirty;
        if (!f->tmp[fd]) {
            if (dirty) {
                f->n_dirty++;
            } else {
                f->n_dirty--;
            }
        }
    }
}

static int f_close(void *ctx, int fd)
{
    struct fault_io *f = ctx;
    const struct storage_io *p = storage_io_posix();
    int rc = p->close(p->ctx, fd);
    if (fd >= 0 && fd < FAULT_FDS) {
        if (f->dirty[fd] && !f->tmp[fd]) {
            f->closed_dirty++;
        }
        mark(f, fd, false);
        f->path[fd][0] = '\0';
        f->tmp[fd] = false;
    }
    /* Like Linux, the descriptor is gone even when close reports an
     * error. */
    return fault_hit(f) ? -f->err : rc;
}

static int64_t f_pread(void *ctx, int fd, void *buf, size_t len, uint64_t off)
{
    struct fault_io *f = ctx;
    const struct storage_io *p = storage_io_posix();
    if (fault_hit(f)) {
        return -f->err;
    }
    return p->pread(p->ctx, fd, buf, len, off);
}

static int64_t f_pwrite(void *ctx,
                        int fd,
                        const void *buf,
                        size_t len,
                        uint64_t off)
{
    struct fault_io *f = ctx;
    const struct storage_io *p = storage_io_posix();
    mark(f, fd, true);
    track_write(f, fd, off, len);
    if (fault_hit(f)) {
        f->fired_tmp = fd >= 0 && fd < FAULT_FDS && f->tmp[fd];
        if (len > 1) {
            (void)p->pwrite(p->ctx, fd, buf, len / 2, off);
        }
        return -f->err;
    }
    return p->pwrite(p->ctx, fd, buf, len, off);
}

static int f_unlink(void *ctx, const char *path)
{
    struct fault_io *f = ctx;
    const struct storage_io *p = storage_io_posix();
    if (fault_hit(f)) {
        f->fired_tmp = ends_with_tmp(path);
        return -f->err;
    }
    for (int i = 0; i < FAULT_FILES; i++) {
        if (strcmp(f->unsynced[i].path, path) == 0) {
            f->unsynced[i].path[0] = '\0';
        }
    }
    return p->unlink(p->ctx, path);
}

static int f_fdatasync(void *ctx, int fd)
{
    struct fault_io *f = ctx;
    const struct storage_io *p = storage_io_posix();
    int rc;
    if (fault_hit(f)) {
        f->fired_tmp = fd >= 0 && fd < FAULT_FDS && f->tmp[fd];
        return -f->err;
    }
    rc = f->real_sync ? p->fdatasync(p->ctx, fd) : 0;
    if (rc == 0) {
        mark(f, fd, false);
        track_sync(f, fd);
    }
    return rc;
}

static int f_fsync(void *ctx, int fd)
{
    struct fault_io *f = ctx;
    const struct storage_io *p = storage_io_posix();
    int rc;
    if (fault_hit(f)) {
        return -f->err;
    }
    rc = f->real_sync ? p->fsync(p->ctx, fd) : 0;
    if (rc == 0) {
        mark(f, fd, false);
        track_sync(f, fd);
    }
    return rc;
}

static int f_ftruncate(void *ctx, int fd, uint64_t len)
{
    struct fault_io *f = ctx;
    const struct storage_io *p = storage_io_posix();
    if (fault_hit(f)) {
        return -f->err;
    }
    return p->ftruncate(p->ctx, fd, len);
}

static int f_fallocate(void *ctx, int fd, uint64_t off, uint64_t len)
{
    struct fault_io *f = ctx;
    const struct storage_io *p = storage_io_posix();
    if (fault_hit(f)) {
        return -f->err;
    }
    return p->fallocate(p->ctx, fd, off, len);
}

static int f_writeback(void *ctx, int fd, uint64_t off, uint64_t len)
{
    struct fault_io *f = ctx;
    const struct storage_io *p = storage_io_posix();
    if (fault_hit(f)) {
        return -f->err;
    }
    return p->writeback(p->ctx, fd, off, len);
}

static int f_size(void *ctx, int fd, uint64_t *size)
{
    struct fault_io *f = ctx;
    const struct storage_io *p = storage_io_posix();
    if (fault_hit(f)) {
        return -f->err;
    }
    return p->size(p->ctx, fd, size);
}

static int f_rename(void *ctx, const char *from, const char *to)
{
    struct fault_io *f = ctx;
    const struct storage_io *p = storage_io_posix();
    for (int fd = 0; fd < FAULT_FDS; fd++) {
        if (f->dirty[fd] && strcmp(f->path[fd], from) == 0) {
            f->renamed_dirty++;
        }
    }
    if (fault_hit(f)) {
        return -f->err;
    }
    /* Descriptors and pending ranges follow the file to its new name. */
    for (int fd = 0; fd < FAULT_FDS; fd++) {
        if (strcmp(f->path[fd], from) == 0) {
            snprintf(f->path[fd], sizeof f->path[fd], "%s", to);
            f->tmp[fd] = ends_with_tmp(to);
        }
    }
    for (int i = 0; i < FAULT_FILES; i++) {
        if (strcmp(f->unsynced[i].path, to) == 0) {
            f->unsynced[i].path[0] = '\0';
        }
    }
    for (int i = 0; i < FAULT_FILES; i++) {
        if (strcmp(f->unsynced[i].path, from) == 0) {
            snprintf(f->unsynced[i].path, sizeof f->unsynced[i].path, "%s", to);
        }
    }
    return p->rename(p->ctx, from, to);
}

static int f_mkdir(void *ctx, const char *path, unsigned mode)
{
    struct fault_io *f = ctx;
    const struct storage_io *p = storage_io_posix();
    if (fault_hit(f)) {
        return -f->err;
    }
    return p->mkdir(p->ctx, path, mode);
}

static int f_list(void *ctx,
                  const char *path,
                  int (*cb)(void *arg, const char *name),
                  void *arg)
{
    struct fault_io *f = ctx;
    const struct storage_io *p = storage_io_posix();
    if (fault_hit(f)) {
        return -f->err;
    }
    return p->list(p->ctx, path, cb, arg);
}

void fault_io_init(struct fault_io *f)
{
    memset(f, 0, sizeof *f);
    f->err = EIO;
    f->io.ctx = f;
    f->io.open = f_open;
    f->io.close = f_close;
    f->io.pread = f_pread;
    f->io.pwrite = f_pwrite;
    f->io.fdatasync = f_fdatasync;
    f->io.fsync = f_fsync;
    f->io.ftruncate = f_ftruncate;
    f->io.fallocate = f_fallocate;
    f->io.writeback = f_writeback;
    f->io.size = f_size;
    f->io.rename = f_rename;
    f->io.unlink = f_unlink;
    f->io.mkdir = f_mkdir;
    f->io.list = f_list;
}

static bool alloc_hit(struct fault_alloc *a)
{
    a->calls++;
    if (a->fail_at != 0 && a->calls == a->fail_at) {
        a->fired = true;
        return true;
    }
    return false;
}

static void *a_malloc(void *ctx, size_t size)
{
    struct fault_alloc *a = ctx;
    void *p;
    if (alloc_hit(a)) {
        return NULL;
    }
    p = malloc(size);
    if (p != NULL) {
        a->live++;
    }
    return p;
}

static void *a_realloc(void *ctx, void *ptr, size_t size)
{
    struct fault_alloc *a = ctx;
    void *p;
    if (alloc_hit(a)) {
        return NULL;
    }
    p = realloc(ptr, size);
    if (p != NULL && ptr == NULL) {
        a->live++;
    }
    return p;
}

static void a_free(void *ctx, void *ptr)
{
    struct fault_alloc *a = ctx;
    if (ptr != NULL) {
        a->live--;
        free(ptr);
    }
}

void fault_alloc_init(struct fault_alloc *a)
{
    memset(a, 0, sizeof *a);
    a->alloc.ctx = a;
    a->alloc.malloc = a_malloc;
    a->alloc.realloc = a_realloc;
    a->alloc.free = a_free;
}

void tmpdir_make(char *out)
{
    const char *base = getenv("TMPDIR");
    snprintf(out, 256, "%s/ballot-storage-XXXXXX",
             base != NULL && base[0] != '\0' ? base : "/tmp");
    ck_assert_ptr_nonnull(mkdtemp(out));
}

void tmpdir_remove(const char *path)
{
    DIR *d = opendir(path);
    struct dirent *e;
    char buf[512];

    if (d == NULL) {
        return;
    }
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) {
            continue;
        }
        snprintf(buf, sizeof buf, "%s/%s", path, e->d_name);
        (void)unlink(buf);
    }
    closedir(d);
    (void)rmdir(path);
}

static uint64_t mix(uint64_t x)
{
    x ^= x >> 30;
    x *= 0xbf58476d1ce4e5b9ULL;
    x ^= x >> 27;
    x *= 0x94d049bb133111ebULL;
    x ^= x >> 31;
    return x;
}

void entry_fill(uint8_t *buf,
                uint32_t len,
                uint64_t seed,
                raft_index index,
                raft_term term)
{
    uint64_t s = mix(seed ^ mix(index) ^ mix(term << 1));
    for (uint32_t i = 0; i < len; i++) {
        if (i % 8 == 0) {
            s = mix(s + i);
        }
        buf[i] = (uint8_t)(s >> (8 * (i % 8)));
    }
}

bool entry_check(const struct raft_entry *e, uint64_t seed)
{
    uint8_t tmp[4096];
    if (e->len > sizeof tmp) {
        return false;
    }
    entry_fill(tmp, e->len, seed, e->index, e->term);
    return e->len == 0 || memcmp(tmp, e->data, e->len) == 0;
}

void log_capture_cb(void *ctx, int level, const char *msg)
{
    struct log_capture *c = ctx;
    c->count++;
    c->last_level = level;
    snprintf(c->last, sizeof c->last, "%s", msg);
}

const char *path_in(const char *dir, const char *name)
{
    static char buf[512];
    snprintf(buf, sizeof buf, "%s/%s", dir, name);
    return buf;
}

void file_flip_bit(const char *path, uint64_t off, unsigned bit)
{
    int fd = open(path, O_RDWR);
    uint8_t b;
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(pread(fd, &b, 1, (off_t)off), 1);
    b ^= (uint8_t)(1u << bit);
    ck_assert_int_eq(pwrite(fd, &b, 1, (off_t)off), 1);
    close(fd);
}

uint64_t file_size(const char *path)
{
    struct stat st;
    ck_assert_int_eq(stat(path, &st), 0);
    return (uint64_t)st.st_size;
}

void file_truncate(const char *path, uint64_t len)
{
    ck_assert_int_eq(truncate(path, (off_t)len), 0);
}

void file_write_at(const char *path, uint64_t off, const void *buf, size_t len)
{
    int fd = open(path, O_RDWR | O_CREAT, 0644);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(pwrite(fd, buf, len, (off_t)off), (ssize_t)len);
    close(fd);
}

struct wal *wal_open_ok(const char *dir,
                        const struct wal_options *opts,
                        struct wal_loaded *loaded)
{
    struct wal_options def;
    struct wal *wal = NULL;
    int rc;

    if (opts == NULL) {
        wal_options_default(&def);
        def.segment_bytes = 64 * 1024;
        opts = &def;
    }
    ck_assert_int_eq(wal_create(opts, &wal), 0);
    rc = wal_open(wal, dir, loaded);
    ck_assert_msg(rc == 0, "wal_open: %s (%s)", storage_strerror(rc),
                  wal_errmsg(wal));
    return wal;
}
