/*
 * helpers.h - fixtures shared by the storage tests: temporary directories,
 * a fault-injecting file interface, a counting allocator that can fail the
 * Nth allocation, and deterministic entry contents.
 */
#ifndef BALLOT_TESTS_STORAGE_HELPERS_H
#define BALLOT_TESTS_STORAGE_HELPERS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "storage.h"
#include "wal.h"

/* A file interface that forwards to POSIX and fails call number @fail_at
 * (counting from 1; 0 never fails) with -@err. A failing pwrite first
 * writes half of its bytes, as a torn write would. */
#define FAULT_FDS 256
#define FAULT_FILES 64

struct fault_io
{
    struct storage_io io;
    uint64_t calls;
    uint64_t fail_at;
    int err;
    bool fired;
    const char *fired_op; /* name of the call that failed */
    /* If false (the default) fdatasync and fsync only pretend: the tests
     * that use this interface never lose the page cache, so real syncs
     * would only make them slow on a busy disk. The bookkeeping below
     * treats a pretended sync exactly like a real one. */
    bool real_sync;
    bool fired_tmp; /* ... and it was on a temporary file */
    /* Durability bookkeeping: a descriptor is dirty from a write until an
     * fdatasync/fsync of it succeeds. Temporary files are counted apart:
     * the wal may leave one unsynced (the next segment, prepared ahead),
     * but must never rename one that is dirty. */
    bool dirty[FAULT_FDS];
    bool tmp[FAULT_FDS];
    char path[FAULT_FDS][200];
    unsigned n_dirty;       /* dirty non-temporary descriptors */
    unsigned closed_dirty;  /* non-temporary descriptors closed while dirty */
    unsigned renamed_dirty; /* renames of a file with unsynced writes */
    /* Per file, the range written since its last successful sync, so that
     * fault_io_power_loss() can drop it. */
    struct
    {
        char path[200];
        uint64_t lo;
        uint64_t hi;
    } unsynced[FAULT_FILES];
};

void fault_io_init(struct fault_io *f);

/* Acts like a power loss on every file written through @f: of the bytes
 * written since each file's last sync, a random prefix survives and the
 * rest reads back as zeros (as in a preallocated or freshly extended
 * file). Call after every descriptor is closed. */
void fault_io_power_loss(struct fault_io *f, uint64_t *rng);

/* An allocator that counts live blocks and fails allocation number
 * @fail_at (0 never fails). */
struct fault_alloc
{
    struct storage_allocator alloc;
    uint64_t calls;
    uint64_t fail_at;
    int64_t live;
    bool fired;
};

void fault_alloc_init(struct fault_alloc *a);

/* Creates a fresh directory under the system temp dir; @out gets its path
 * (at least 256 bytes). */
void tmpdir_make(char *out);
/* Removes @path and everything in it (one level deep). */
void tmpdir_remove(const char *path);

/* Fills @buf with @len bytes that depend only on (@seed, @index, @term). */
void entry_fill(uint8_t *buf,
                uint32_t len,
                uint64_t seed,
                raft_index index,
                raft_term term);
/* True if @e holds what entry_fill() would give for its index and term. */
bool entry_check(const struct raft_entry *e, uint64_t seed);

/* A log callback that counts messages and keeps the last one. */
struct log_capture
{
    unsigned count;
    int last_level;
    char last[256];
};
void log_capture_cb(void *ctx, int level, const char *msg);

/* Path of @name inside @dir, in a static buffer. */
const char *path_in(const char *dir, const char *name);

/* Flips bit @bit of the byte at @off in file @path. */
void file_flip_bit(const char *path, uint64_t off, unsigned bit);
/* Size of file @path. */
uint64_t file_size(const char *path);
/* Truncates file @path to @len bytes. */
void file_truncate(const char *path, uint64_t len);
/* Writes @len bytes at @off into @path (creating it). */
void file_write_at(const char *path, uint64_t off, const void *buf, size_t len);

/* Opens a wal on @dir with @opts (NULL: small-segment defaults) and
 * asserts success. */
struct wal *wal_open_ok(const char *dir,
                        const struct wal_options *opts,
                        struct wal_loaded *loaded);

#endif /* BALLOT_TESTS_STORAGE_HELPERS_H */
