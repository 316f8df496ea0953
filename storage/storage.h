/*
 * storage.h - shared pieces of ballot's durable storage: error codes, the
 * allocator hook, the log callback and the injectable file interface.
 *
 * Every byte the storage layer reads or writes goes through a struct
 * storage_io, and every allocation through a struct storage_allocator, so
 * that tests can fail the Nth call of either and check that nothing is
 * acknowledged that was not made durable and that nothing leaks.
 */
#ifndef BALLOT_STORAGE_H
#define BALLOT_STORAGE_H

#include <stddef.h>
#include <stdint.h>

/* Error codes. Storage owns the -2000s; raw errno values never leave it. The
 * table is the single source of both the enum and storage_strerror(). */
#define STORAGE_ERRORS(X)                                                 \
    X(STORAGE_ENOMEM, -2001, "out of memory")                             \
    X(STORAGE_EIO, -2002, "input/output error")                           \
    X(STORAGE_ENOSPC, -2003, "no space left on device")                   \
    X(STORAGE_ECORRUPT, -2004, "on-disk data is corrupt")                 \
    X(STORAGE_EPOISONED, -2005, "storage refuses writes after a failure") \
    X(STORAGE_EINVAL, -2006, "invalid argument")                          \
    X(STORAGE_ESTATE, -2007, "operation not allowed in this state")       \
    X(STORAGE_ETOOBIG, -2008, "record exceeds the size limit")            \
    X(STORAGE_EVERSION, -2009, "unsupported on-disk format version")

#define STORAGE_ERROR_ENUM(name, value, text) name = value,
enum { STORAGE_ERRORS(STORAGE_ERROR_ENUM) };
#undef STORAGE_ERROR_ENUM

/* Returns a static, human-readable description of a storage error code (or
 * "unknown error" for anything else). */
const char *storage_strerror(int code);

/* Allocation hook. @realloc with a NULL pointer behaves like malloc. The
 * functions must be usable from any thread the owner uses the storage
 * object from. */
struct storage_allocator
{
    void *ctx;
    void *(*malloc)(void *ctx, size_t size);
    void *(*realloc)(void *ctx, void *ptr, size_t size);
    void (*free)(void *ctx, void *ptr);
};

/* Returns the allocator backed by the C library (static, never freed). */
const struct storage_allocator *storage_allocator_libc(void);

enum storage_log_level {
    STORAGE_LOG_INFO = 1,
    STORAGE_LOG_WARN = 2,
    STORAGE_LOG_ERROR = 3,
};

/* Receives notable events (repairs at recovery, fatal I/O failures). @msg is
 * borrowed for the duration of the call. Library code never prints. */
typedef void (*storage_log_cb)(void *ctx, int level, const char *msg);

/* The file interface. Every function returns 0 (or a byte count, or a file
 * descriptor) on success and a negative errno value on failure; it never
 * touches the global errno the caller sees. Paths are complete paths. */
struct storage_io
{
    void *ctx;
    /* open(2). Returns a descriptor >= 0. */
    int (*open)(void *ctx, const char *path, int flags, unsigned mode);
    int (*close)(void *ctx, int fd);
    /* Positional read/write of up to @len bytes; may be short. */
    int64_t (*pread)(void *ctx, int fd, void *buf, size_t len, uint64_t off);
    int64_t (
        *pwrite)(void *ctx, int fd, const void *buf, size_t len, uint64_t off);
    int (*fdatasync)(void *ctx, int fd);
    int (*fsync)(void *ctx, int fd);
    int (*ftruncate)(void *ctx, int fd, uint64_t len);
    /* Reserves [off, off+len) so that later writes there cannot fail for
     * lack of space (posix_fallocate semantics). */
    int (*fallocate)(void *ctx, int fd, uint64_t off, uint64_t len);
    /* Starts writing [off, off+len) back to disk without waiting for it
     * (Linux sync_file_range). Advisory: may be NULL, and its errors are
     * ignored; durability still comes only from fdatasync/fsync. */
    int (*writeback)(void *ctx, int fd, uint64_t off, uint64_t len);
    /* Stores the file's size in @size. */
    int (*size)(void *ctx, int fd, uint64_t *size);
    int (*rename)(void *ctx, const char *from, const char *to);
    int (*unlink)(void *ctx, const char *path);
    /* mkdir(2); an existing directory is reported as -EEXIST. */
    int (*mkdir)(void *ctx, const char *path, unsigned mode);
    /* Calls @cb for each entry of directory @path except "." and "..".
     * A non-zero return from @cb stops the walk and is returned. */
    int (*list)(void *ctx,
                const char *path,
                int (*cb)(void *arg, const char *name),
                void *arg);
};

/* Returns the interface backed by POSIX calls (static, never freed). */
const struct storage_io *storage_io_posix(void);

#endif /* BALLOT_STORAGE_H */
