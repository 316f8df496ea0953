/*
 * wal_internal.h - the struct wal shared by wal.c (write path), wal_open.c
 * (recovery) and meta.c (hard state and snapshot meta files). Internal.
 */
#ifndef BALLOT_STORAGE_WAL_INTERNAL_H
#define BALLOT_STORAGE_WAL_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "format.h"
#include "wal.h"

#define WAL_ERRMSG_MAX 256
/* Longest file name the wal creates, "0000000000000001.seg.tmp" plus
 * headroom. */
#define WAL_NAME_MAX 48

#define WAL_HARDSTATE_NAME "hardstate"
#define WAL_SNAPMETA_NAME "snapshot.meta"
#define WAL_TMP_SUFFIX ".tmp"
/* Zeros of the next segment whose writeback is started at once. */
#define WAL_WRITEBACK_CHUNK (256u * 1024u)

struct wal_segment
{
    uint64_t seq;
    raft_index first_index; /* from the segment header */
};

struct wal
{
    struct wal_options opts;
    const struct storage_io *io;
    const struct storage_allocator *alloc;

    char errmsg[WAL_ERRMSG_MAX];
    /* Non-zero once poisoned: the code of the failure that did it. */
    int poisoned;
    char poison_msg[WAL_ERRMSG_MAX];
    bool opened;

    char *dir;
    /* Scratch buffers for "dir/name" paths, each dir + WAL_NAME_MAX long. */
    char *path;
    char *path2;

    struct wal_segment *segs; /* oldest first; the last one is written */
    size_t n_segs;
    size_t cap_segs;
    int fd;          /* descriptor of the last segment, or -1 */
    uint64_t offset; /* where the next record goes in the last segment */

    raft_index first; /* index of the first entry held (first > last: none) */
    raft_index last;
    raft_index durable;
    bool dirty; /* records written since the last fdatasync */

    /* The next segment, zero-filled ahead of need a little at every sync so
     * that rollover does not stall on writing a whole segment of zeros
     * (WAL_PREALLOC_ZERO only). */
    int next_fd;            /* its temporary file, or -1 */
    uint64_t next_seq;      /* the sequence number it is for */
    uint64_t next_filled;   /* bytes of it zeroed so far */
    uint64_t next_wb;       /* writeback started up to here */
    uint64_t since_prepare; /* bytes appended since the last step */
    bool next_disabled;     /* a step failed: build the next one at rollover */

    uint8_t *buf; /* encode buffer */
    size_t buf_cap;

    struct raft_hard_state hs; /* as last loaded or saved */
};

/* Formats @fmt into wal->errmsg and returns @code. */
int wal_errorf(struct wal *wal, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Like wal_errorf(), then poisons @wal and reports through the log
 * callback. Returns @code. */
int wal_failf(struct wal *wal, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Sends a formatted message to the log callback, if any. */
void wal_logf(struct wal *wal, int level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Maps a negative errno to STORAGE_ENOSPC or STORAGE_EIO. */
int wal_io_code(int neg_errno);

/* Returns 0 if @wal accepts writes, or an error code with errmsg set. */
int wal_check_writable(struct wal *wal);

/* Returns "dir/name" in wal->path (or wal->path2 if @second). */
const char *wal_path(struct wal *wal, const char *name, bool second);

/* Writes the file name of segment @seq into @out. */
void wal_segment_name(uint64_t seq, char out[WAL_NAME_MAX]);

/* Writes @len bytes at @off, looping over short writes. Returns 0 or a
 * negative errno. */
int wal_write_all(struct wal *wal,
                  int fd,
                  const void *buf,
                  size_t len,
                  uint64_t off);

/* fsyncs the directory, which makes renames, creations and unlinks in it
 * durable. Returns 0 or a negative errno. */
int wal_sync_dir(struct wal *wal);

/* Creates segment @seq starting at @first_index (temp file, header,
 * preallocation, fsync, rename, directory fsync) and makes it the segment
 * being written. Poisons on failure. */
int wal_segment_create(struct wal *wal, uint64_t seq, raft_index first_index);

/* Zero-fills a little more of the next segment ahead of need. Never fails:
 * a failure only means the segment is built whole at rollover. */
void wal_prepare_step(struct wal *wal);

/* Appends a RESET record: the log restarts empty at @next. Poisons on
 * failure. */
int wal_write_reset(struct wal *wal, raft_index next);

/* Appends a COMMIT record carrying @hs (used when only the commit index
 * changed). Poisons on failure. */
int wal_write_commit(struct wal *wal, const struct raft_hard_state *hs);

void *wal_malloc(struct wal *wal, size_t size);
void *wal_realloc(struct wal *wal, void *ptr, size_t size);
void wal_free(struct wal *wal, void *ptr);

/* meta.c: loads "hardstate" and "snapshot.meta" into @loaded. Missing files
 * are not an error. */
int meta_load(struct wal *wal, struct wal_loaded *loaded);

#endif /* BALLOT_STORAGE_WAL_INTERNAL_H */
