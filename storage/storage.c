/*
 * storage.c - error table, the libc allocator and the POSIX file interface.
 */
/* sync_file_range() is a Linux extension. */
#define _GNU_SOURCE
#include "storage.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

const char *storage_strerror(int code)
{
    switch (code) {
#define STORAGE_ERROR_CASE(name, value, text) \
    case name:                                \
        return text;
        STORAGE_ERRORS(STORAGE_ERROR_CASE)
#undef STORAGE_ERROR_CASE
    case 0:
        return "success";
    default:
        return "unknown error";
    }
}

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

static const struct storage_allocator libc_allocator = {
    .ctx = NULL,
    .malloc = libc_malloc,
    .realloc = libc_realloc,
    .free = libc_free,
};

const struct storage_allocator *storage_allocator_libc(void)
{
    return &libc_allocator;
}

/* The POSIX file interface. Each wrapper retries EINTR, because a signal
 * arriving during a write is not an I/O failure, and turns errno into a
 * negative return value. */

static int posix_open(void *ctx, const char *path, int flags, unsigned mode)
{
    int fd;
    (void)ctx;
    do {
        fd = open(path, flags | O_CLOEXEC, (mode_t)mode);
    } while (fd < 0 && errno == EINTR);
    return fd < 0 ? -errno : fd;
}

static int posix_close(void *ctx, int fd)
{
    (void)ctx;
    /* close() must not be retried on EINTR on Linux: the descriptor is
     * already gone. */
    return close(fd) < 0 && errno != EINTR ? -errno : 0;
}

static int64_t posix_pread(void *ctx,
                           int fd,
                           void *buf,
                           size_t len,
                           uint64_t off)
{
    ssize_t n;
    (void)ctx;
    do {
        n = pread(fd, buf, len, (off_t)off);
    } while (n < 0 && errno == EINTR);
    return n < 0 ? -errno : (int64_t)n;
}

static int64_t posix_pwrite(void *ctx,
                            int fd,
                            const void *buf,
                            size_t len,
                            uint64_t off)
{
    ssize_t n;
    (void)ctx;
    do {
        n = pwrite(fd, buf, len, (off_t)off);
    } while (n < 0 && errno == EINTR);
    return n < 0 ? -errno : (int64_t)n;
}

static int posix_fdatasync(void *ctx, int fd)
{
    (void)ctx;
    /* Retrying fdatasync after EINTR is safe: the kernel has not reported a
     * writeback error yet, so nothing has been lost. Any other error is
     * returned and treated as fatal by the caller. */
    int rc;
    do {
        rc = fdatasync(fd);
    } while (rc < 0 && errno == EINTR);
    return rc < 0 ? -errno : 0;
}

static int posix_fsync(void *ctx, int fd)
{
    int rc;
    (void)ctx;
    do {
        rc = fsync(fd);
    } while (rc < 0 && errno == EINTR);
    return rc < 0 ? -errno : 0;
}

static int posix_ftruncate(void *ctx, int fd, uint64_t len)
{
    int rc;
    (void)ctx;
    do {
        rc = ftruncate(fd, (off_t)len);
    } while (rc < 0 && errno == EINTR);
    return rc < 0 ? -errno : 0;
}

static int posix_fallocate_(void *ctx, int fd, uint64_t off, uint64_t len)
{
    int rc;
    (void)ctx;
    do {
        /* posix_fallocate returns the error number instead of setting
         * errno. */
        rc = posix_fallocate(fd, (off_t)off, (off_t)len);
    } while (rc == EINTR);
    return -rc;
}

static int posix_writeback(void *ctx, int fd, uint64_t off, uint64_t len)
{
    (void)ctx;
#ifdef SYNC_FILE_RANGE_WRITE
    return sync_file_range(fd, (off_t)off, (off_t)len, SYNC_FILE_RANGE_WRITE) <
                   0
               ? -errno
               : 0;
#else
    (void)fd;
    (void)off;
    (void)len;
    return 0;
#endif
}

static int posix_size(void *ctx, int fd, uint64_t *size)
{
    struct stat st;
    (void)ctx;
    if (fstat(fd, &st) < 0) {
        return -errno;
    }
    *size = (uint64_t)st.st_size;
    return 0;
}

static int posix_rename(void *ctx, const char *from, const char *to)
{
    (void)ctx;
    return rename(from, to) < 0 ? -errno : 0;
}

static int posix_unlink(void *ctx, const char *path)
{
    (void)ctx;
    return unlink(path) < 0 ? -errno : 0;
}

static int posix_mkdir(void *ctx, const char *path, unsigned mode)
{
    (void)ctx;
    return mkdir(path, (mode_t)mode) < 0 ? -errno : 0;
}

static int posix_list(void *ctx,
                      const char *path,
                      int (*cb)(void *arg, const char *name),
                      void *arg)
{
    DIR *dir;
    struct dirent *ent;
    int rc = 0;
    (void)ctx;

    dir = opendir(path);
    if (dir == NULL) {
        return -errno;
    }
    for (;;) {
        errno = 0;
        ent = readdir(dir);
        if (ent == NULL) {
            rc = errno != 0 ? -errno : 0;
            break;
        }
        if (strcmp(ent->d_name, ".") == 0 || strcmp(ent->d_name, "..") == 0) {
            continue;
        }
        rc = cb(arg, ent->d_name);
        if (rc != 0) {
            break;
        }
    }
    closedir(dir);
    return rc;
}

static const struct storage_io posix_io = {
    .ctx = NULL,
    .open = posix_open,
    .close = posix_close,
    .pread = posix_pread,
    .pwrite = posix_pwrite,
    .fdatasync = posix_fdatasync,
    .fsync = posix_fsync,
    .ftruncate = posix_ftruncate,
    .fallocate = posix_fallocate_,
    .writeback = posix_writeback,
    .size = posix_size,
    .rename = posix_rename,
    .unlink = posix_unlink,
    .mkdir = posix_mkdir,
    .list = posix_list,
};

const struct storage_io *storage_io_posix(void)
{
    return &posix_io;
}
