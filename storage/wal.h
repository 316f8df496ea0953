/*
 * wal.h - the durable Raft log of one node: a directory holding a segmented,
 * append-only write-ahead log of entries, the hard state and the metadata of
 * the last snapshot. docs/storage.md describes the formats and the recovery
 * rules.
 *
 * Lifecycle: wal_create() (allocates, no I/O) -> wal_open() (recovers and
 * loads) -> wal_append()/wal_truncate()/wal_sync()/... -> wal_destroy().
 *
 * Durability: wal_append() and wal_truncate() hand records to the operating
 * system; one wal_sync() makes every record handed over since the previous
 * sync durable with a single fdatasync (group commit). wal_durable_index()
 * says up to which index the log is durable. Hard state and snapshot meta are
 * durable when their save function returns 0.
 *
 * Failures: if any write, sync, truncate or rename fails, the wal is
 * poisoned: it never retries, never reports more as durable, and every later
 * mutating call returns STORAGE_EPOISONED. The only way forward is to destroy
 * it and open the directory again, which re-verifies what is on disk.
 *
 * A struct wal is not thread-safe; one thread at a time may use it.
 */
#ifndef BALLOT_STORAGE_WAL_H
#define BALLOT_STORAGE_WAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "raft.h"
#include "storage.h"

/* How new segments reserve their space. Writes into already-written blocks
 * sync faster than writes that grow a file, because the sync then carries
 * no allocation metadata. */
enum wal_prealloc {
    WAL_PREALLOC_NONE = 0,  /* segments grow as records are appended */
    WAL_PREALLOC_FALLOCATE, /* posix_fallocate: reserved, not written */
    WAL_PREALLOC_ZERO,      /* zeros written and synced at creation */
};

#define WAL_SEGMENT_BYTES_DEFAULT (64u * 1024u * 1024u)
#define WAL_SEGMENT_BYTES_MIN 4096u

struct wal_options
{
    /* File interface; NULL means storage_io_posix(). Borrowed until
     * wal_destroy(). */
    const struct storage_io *io;
    /* Allocator; NULL means storage_allocator_libc(). Borrowed until
     * wal_destroy(). */
    const struct storage_allocator *alloc;
    /* Optional log callback and its context. */
    storage_log_cb log;
    void *log_ctx;
    /* A segment is closed and a new one started once the next record would
     * take it past this size. A single larger record gets a segment of its
     * own. At least WAL_SEGMENT_BYTES_MIN. */
    uint64_t segment_bytes;
    enum wal_prealloc prealloc;
    /* With WAL_PREALLOC_ZERO, the next segment is zero-filled a little at a
     * time ahead of need. false (the default): every wal_sync() does it
     * after its fdatasync. true: wal_sync() does not, and the caller calls
     * wal_prepare_next() once it has reported the sync, so the zeros never
     * delay an acknowledgement. A caller that never calls it gets the next
     * segment built whole at rollover, inside an append. */
    bool prepare_explicitly;
};

/* Fills @opts with defaults: POSIX I/O, libc allocator, no log callback,
 * 64 MiB segments, WAL_PREALLOC_ZERO. */
void wal_options_default(struct wal_options *opts);

/* What wal_open() found on disk. */
struct wal_loaded
{
    /* Hard state; all zero if none was ever saved. */
    struct raft_hard_state hs;
    /* The "hardstate" file exists. A log with entries of a term above 0
     * without one lost its term and vote: the caller must not start
     * from it at term 0 (it could vote twice in one term). */
    bool has_hard_state;
    /* The last saved snapshot meta, if @has_snapshot. */
    bool has_snapshot;
    struct raft_snapshot_meta snapshot;
    /* The entries after the snapshot (or from index 1), contiguous and in
     * order. Owned by this struct (entry data included) until
     * wal_loaded_free(). */
    struct raft_entry *entries;
    size_t n_entries;
    /* Repairs made: torn tail records cut off, leftover temporary files
     * removed, entries that contradicted the snapshot dropped. Each repair
     * is also reported through the log callback. */
    unsigned repairs;
    uint64_t torn_bytes; /* bytes of torn tail that were erased */

    void *data_block; /* internal: backing store of entries[].data */
};

struct wal; /* opaque */

/* Allocates a wal with @opts (copied). Performs no I/O. Returns 0 and stores
 * it in @out, STORAGE_EINVAL for bad options, or STORAGE_ENOMEM. */
int wal_create(const struct wal_options *opts, struct wal **out);

/* Closes every file and frees @wal (NULL is allowed). Records appended since
 * the last wal_sync() may or may not survive. */
void wal_destroy(struct wal *wal);

/* Opens directory @dir (created if missing; its parent must exist), verifies
 * every record, repairs a torn tail, and fills @loaded, which the caller
 * frees with wal_loaded_free(). @dir is copied.
 *
 * Returns 0, STORAGE_ECORRUPT (message names file and byte offset),
 * STORAGE_EVERSION, STORAGE_EIO, STORAGE_ENOSPC, STORAGE_ENOMEM, or
 * STORAGE_ESTATE if already opened. On failure @loaded holds nothing and the
 * wal may only be destroyed. */
int wal_open(struct wal *wal, const char *dir, struct wal_loaded *loaded);

/* Frees what @loaded owns and zeroes it. */
void wal_loaded_free(struct wal *wal, struct wal_loaded *loaded);

/* Appends @n entries (contiguous indexes, borrowed for the call). If
 * entries[0].index is at or below the last index, entries from that index
 * on are discarded first (a TRUNCATE record precedes them). The records are
 * durable after the next successful wal_sync().
 *
 * Returns 0, STORAGE_EINVAL (gap after the last index, non-contiguous
 * batch, bad entry type), STORAGE_ETOOBIG, STORAGE_ENOMEM (nothing written,
 * wal still usable), or STORAGE_EIO/STORAGE_ENOSPC/STORAGE_EPOISONED (the wal
 * is poisoned). */
int wal_append(struct wal *wal, const struct raft_entry *entries, size_t n);

/* Discards every entry with index >= @index. If @index is above the last
 * index plus one this is wal_reset(@index). Durable after the next
 * wal_sync(); until then the durable index is at most @index - 1. Returns 0,
 * STORAGE_EINVAL (@index 0) or a poisoning error. */
int wal_truncate(struct wal *wal, raft_index index);

/* Discards every entry; the next append must have index @next. This is
 * what a snapshot with raft_update.snapshot_reset_log needs: save the
 * snapshot meta first, then wal_reset(snapshot index + 1). Durable after
 * the next wal_sync(). Returns 0, STORAGE_EINVAL (@next 0) or a poisoning
 * error. */
int wal_reset(struct wal *wal, raft_index next);

/* Makes everything appended so far durable with one fdatasync and stores
 * the durable index in @durable (may be NULL). Returns 0 or a poisoning
 * error; after a failure nothing more is ever reported durable. */
int wal_sync(struct wal *wal, raft_index *durable);

/* Zero-fills a little more of the next segment ahead of need (twice the
 * bytes appended since the previous call) and starts writing the zeros
 * back, so that rollover finds the segment ready; see docs/storage.md,
 * "Preallocation". Does nothing unless the wal uses WAL_PREALLOC_ZERO.
 * Never fails: nothing durable depends on the prepared file, so a failure
 * is logged and the segment is built whole at rollover instead. Meant for
 * wal_options.prepare_explicitly; like every call on @wal, not concurrently
 * with another. */
void wal_prepare_next(struct wal *wal);

/* Deletes whole segments whose entries all have indexes below @below,
 * oldest first, never the segment being written. Pass (snapshot index + 1)
 * at most, and never more than the last index the state machine has durably
 * checkpointed plus one. Returns 0 or a poisoning error. */
int wal_compact(struct wal *wal, raft_index below);

/* Saves the hard state. A change of term or vote syncs the log, then
 * replaces the "hardstate" file atomically (write temp, fsync, rename, fsync
 * directory): durable on return. A change of commit only appends a COMMIT
 * record, durable with the next wal_sync() (commit is a hint). Returns 0 or
 * a poisoning error. */
int wal_save_hard_state(struct wal *wal, const struct raft_hard_state *hs);

/* Replaces the "snapshot.meta" file atomically; durable on return. @meta is
 * copied. Returns 0, STORAGE_EINVAL (bad conf or zero index/term) or a
 * poisoning error. */
int wal_save_snapshot_meta(struct wal *wal,
                           const struct raft_snapshot_meta *meta);

/* The last index in the log (0 if empty and nothing was ever appended). */
raft_index wal_last_index(const struct wal *wal);

/* Every entry of the current log at or below this index is durable. */
raft_index wal_durable_index(const struct wal *wal);

/* True once a failure has poisoned @wal. */
bool wal_poisoned(const struct wal *wal);

/* Number of segment files the log currently spans. */
size_t wal_segment_count(const struct wal *wal);

/* Bytes the log takes on disk: every segment but the last at its
 * preallocated size, the last up to where the next record goes. */
uint64_t wal_bytes(const struct wal *wal);

/* The message of the last error, with context (never NULL, borrowed until
 * the next call on @wal). */
const char *wal_errmsg(const struct wal *wal);

#endif /* BALLOT_STORAGE_WAL_H */
