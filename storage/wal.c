/*
 * wal.c - the write path of the log: appends, truncation, group commit,
 * segment rollover and compaction, plus the helpers shared with recovery.
 */
#include "wal_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

/* Zeros written when a segment is preallocated by writing. */
static const uint8_t zeros[64 * 1024];

static void tmp_segment_name(uint64_t seq, char out[WAL_NAME_MAX])
{
    snprintf(out, WAL_NAME_MAX, "%016" PRIx64 ".seg" WAL_TMP_SUFFIX, seq);
}

/* Closes and removes the prepared next segment, if any. */
static void drop_next(struct wal *wal)
{
    char tmp[WAL_NAME_MAX];

    if (wal->next_fd < 0) {
        return;
    }
    (void)wal->io->close(wal->io->ctx, wal->next_fd);
    wal->next_fd = -1;
    tmp_segment_name(wal->next_seq, tmp);
    /* Best effort: a leftover is removed at the next open anyway. */
    (void)wal->io->unlink(wal->io->ctx, wal_path(wal, tmp, false));
}

void wal_options_default(struct wal_options *opts)
{
    memset(opts, 0, sizeof *opts);
    opts->segment_bytes = WAL_SEGMENT_BYTES_DEFAULT;
    opts->prealloc = WAL_PREALLOC_ZERO;
}

void *wal_malloc(struct wal *wal, size_t size)
{
    return wal->alloc->malloc(wal->alloc->ctx, size);
}

void *wal_realloc(struct wal *wal, void *ptr, size_t size)
{
    return wal->alloc->realloc(wal->alloc->ctx, ptr, size);
}

void wal_free(struct wal *wal, void *ptr)
{
    if (ptr != NULL) {
        wal->alloc->free(wal->alloc->ctx, ptr);
    }
}

int wal_create(const struct wal_options *opts, struct wal **out)
{
    const struct storage_allocator *alloc;
    struct wal *wal;

    if (opts->segment_bytes < WAL_SEGMENT_BYTES_MIN ||
        (opts->prealloc != WAL_PREALLOC_NONE &&
         opts->prealloc != WAL_PREALLOC_FALLOCATE &&
         opts->prealloc != WAL_PREALLOC_ZERO)) {
        return STORAGE_EINVAL;
    }
    alloc = opts->alloc != NULL ? opts->alloc : storage_allocator_libc();
    wal = alloc->malloc(alloc->ctx, sizeof *wal);
    if (wal == NULL) {
        return STORAGE_ENOMEM;
    }
    memset(wal, 0, sizeof *wal);
    wal->opts = *opts;
    wal->alloc = alloc;
    wal->io = opts->io != NULL ? opts->io : storage_io_posix();
    wal->fd = -1;
    wal->next_fd = -1;
    wal->first = 1;
    *out = wal;
    return 0;
}

void wal_destroy(struct wal *wal)
{
    if (wal == NULL) {
        return;
    }
    if (wal->fd >= 0) {
        /* Nothing can be done about a failing close here; unsynced records
         * were never reported durable. */
        (void)wal->io->close(wal->io->ctx, wal->fd);
    }
    drop_next(wal);
    wal_free(wal, wal->buf);
    wal_free(wal, wal->segs);
    wal_free(wal, wal->path2);
    wal_free(wal, wal->path);
    wal_free(wal, wal->dir);
    wal->alloc->free(wal->alloc->ctx, wal);
}

int wal_errorf(struct wal *wal, int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(wal->errmsg, sizeof wal->errmsg, fmt, ap);
    va_end(ap);
    return code;
}

void wal_logf(struct wal *wal, int level, const char *fmt, ...)
{
    char msg[WAL_ERRMSG_MAX];
    va_list ap;

    if (wal->opts.log == NULL) {
        return;
    }
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    wal->opts.log(wal->opts.log_ctx, level, msg);
}

int wal_failf(struct wal *wal, int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(wal->errmsg, sizeof wal->errmsg, fmt, ap);
    va_end(ap);
    /* Keep the first failure: it is the one that explains everything after
     * it. */
    if (wal->poisoned == 0) {
        wal->poisoned = code;
        memcpy(wal->poison_msg, wal->errmsg, sizeof wal->poison_msg);
        wal_logf(wal, STORAGE_LOG_ERROR, "%s; refusing further writes",
                 wal->errmsg);
    }
    return code;
}

int wal_io_code(int neg_errno)
{
    return neg_errno == -ENOSPC || neg_errno == -EDQUOT ? STORAGE_ENOSPC
                                                        : STORAGE_EIO;
}

int wal_check_writable(struct wal *wal)
{
    if (wal->poisoned != 0) {
        return wal_errorf(wal, STORAGE_EPOISONED,
                          "wal: refusing writes after an earlier failure (%s)",
                          wal->poison_msg);
    }
    if (!wal->opened) {
        return wal_errorf(wal, STORAGE_ESTATE, "wal: not open");
    }
    return 0;
}

const char *wal_path(struct wal *wal, const char *name, bool second)
{
    char *out = second ? wal->path2 : wal->path;
    size_t cap = strlen(wal->dir) + 1 + WAL_NAME_MAX;
    snprintf(out, cap, "%s/%s", wal->dir, name);
    return out;
}

void wal_segment_name(uint64_t seq, char out[WAL_NAME_MAX])
{
    snprintf(out, WAL_NAME_MAX, "%016" PRIx64 ".seg", seq);
}

int wal_write_all(struct wal *wal,
                  int fd,
                  const void *buf,
                  size_t len,
                  uint64_t off)
{
    const uint8_t *p = buf;

    while (len > 0) {
        int64_t n = wal->io->pwrite(wal->io->ctx, fd, p, len, off);
        if (n < 0) {
            return (int)n;
        }
        if (n == 0) {
            return -EIO;
        }
        p += n;
        off += (uint64_t)n;
        len -= (size_t)n;
    }
    return 0;
}

int wal_sync_dir(struct wal *wal)
{
    int fd = wal->io->open(wal->io->ctx, wal->dir, O_RDONLY | O_DIRECTORY, 0);
    int rc;

    if (fd < 0) {
        return fd;
    }
    rc = wal->io->fsync(wal->io->ctx, fd);
    (void)wal->io->close(wal->io->ctx, fd);
    return rc;
}

static int zero_fill(struct wal *wal, int fd, uint64_t off, uint64_t end)
{
    while (off < end) {
        size_t n =
            end - off < sizeof zeros ? (size_t)(end - off) : sizeof zeros;
        int rc = wal_write_all(wal, fd, zeros, n, off);
        if (rc < 0) {
            return rc;
        }
        off += n;
    }
    return 0;
}

/* Reserves the segment's space from @off on. */
static int preallocate(struct wal *wal, int fd, uint64_t off)
{
    switch (wal->opts.prealloc) {
    case WAL_PREALLOC_FALLOCATE:
        return wal->io->fallocate(wal->io->ctx, fd, 0, wal->opts.segment_bytes);
    case WAL_PREALLOC_ZERO:
        return zero_fill(wal, fd, off, wal->opts.segment_bytes);
    default:
        return 0;
    }
}

void wal_prepare_step(struct wal *wal)
{
    char tmp[WAL_NAME_MAX];
    uint64_t budget = 2 * wal->since_prepare;
    uint64_t end = wal->opts.segment_bytes;
    uint64_t n;
    int rc;

    /* Zeroing twice as many bytes as were appended finishes the next
     * segment when the current one is about half full. */
    wal->since_prepare = 0;
    if (wal->opts.prealloc != WAL_PREALLOC_ZERO || wal->next_disabled ||
        wal->n_segs == 0 || budget == 0) {
        return;
    }
    if (wal->next_fd < 0) {
        wal->next_seq = wal->segs[wal->n_segs - 1].seq + 1;
        tmp_segment_name(wal->next_seq, tmp);
        rc = wal->io->open(wal->io->ctx, wal_path(wal, tmp, false),
                           O_RDWR | O_CREAT | O_TRUNC, 0644);
        if (rc < 0) {
            goto fail;
        }
        wal->next_fd = rc;
        wal->next_filled = FORMAT_SEG_HEADER_BYTES;
        wal->next_wb = FORMAT_SEG_HEADER_BYTES;
    }
    n = end - wal->next_filled < budget ? end - wal->next_filled : budget;
    if (n == 0) {
        return;
    }
    rc = zero_fill(wal, wal->next_fd, wal->next_filled, wal->next_filled + n);
    if (rc < 0) {
        goto fail;
    }
    wal->next_filled += n;
    /* Start writing the zeros back now, so that the fsync at rollover
     * finds little left to do. Advisory only, and in chunks: each call
     * submits I/O (tens of microseconds on a virtual disk), so a call per
     * small sync would cost more than the zeros. */
    uint64_t chunk = wal->opts.segment_bytes / 8 < WAL_WRITEBACK_CHUNK
                         ? wal->opts.segment_bytes / 8
                         : WAL_WRITEBACK_CHUNK;
    if (wal->io->writeback != NULL &&
        wal->next_filled - wal->next_wb >= chunk) {
        (void)wal->io->writeback(wal->io->ctx, wal->next_fd, wal->next_wb,
                                 wal->next_filled - wal->next_wb);
        wal->next_wb = wal->next_filled;
    }
    return;

fail:
    /* Nothing durable depends on this file. Give up on it until the next
     * rollover, which builds the segment whole and reports any error. */
    wal_logf(wal, STORAGE_LOG_WARN,
             "wal: preparing the next segment failed: %s", strerror(-rc));
    drop_next(wal);
    wal->next_disabled = true;
}

int wal_segment_create(struct wal *wal, uint64_t seq, raft_index first_index)
{
    char name[WAL_NAME_MAX];
    char tmp[WAL_NAME_MAX];
    uint8_t hdr[FORMAT_SEG_HEADER_BYTES];
    struct format_seg_header h = {.seq = seq, .first_index = first_index};
    uint64_t filled = FORMAT_SEG_HEADER_BYTES;
    const char *step;
    int fd;
    int rc;

    if (wal->n_segs == wal->cap_segs) {
        size_t cap = wal->cap_segs == 0 ? 8 : wal->cap_segs * 2;
        struct wal_segment *segs =
            wal_realloc(wal, wal->segs, cap * sizeof *segs);
        if (segs == NULL) {
            return wal_failf(wal, STORAGE_ENOMEM,
                             "wal: no memory for segment %" PRIu64, seq);
        }
        wal->segs = segs;
        wal->cap_segs = cap;
    }
    wal_segment_name(seq, name);
    tmp_segment_name(seq, tmp);
    wal->next_disabled = false;

    /* The segment is built under a temporary name and renamed only once its
     * header and preallocation are durable, so recovery never sees a
     * segment with a torn header. A segment prepared ahead already has most
     * of its zeros. */
    step = "create";
    if (wal->next_fd >= 0 && wal->next_seq == seq) {
        fd = wal->next_fd;
        filled = wal->next_filled;
        wal->next_fd = -1;
    } else {
        drop_next(wal);
        fd = wal->io->open(wal->io->ctx, wal_path(wal, tmp, false),
                           O_RDWR | O_CREAT | O_TRUNC, 0644);
        if (fd < 0) {
            rc = fd;
            goto fail;
        }
    }
    step = "preallocate";
    rc = preallocate(wal, fd, filled);
    if (rc < 0) {
        goto fail_fd;
    }
    format_seg_header_encode(&h, hdr);
    step = "write header of";
    rc = wal_write_all(wal, fd, hdr, sizeof hdr, 0);
    if (rc < 0) {
        goto fail_fd;
    }
    step = "fsync";
    rc = wal->io->fsync(wal->io->ctx, fd);
    if (rc < 0) {
        goto fail_fd;
    }
    step = "rename";
    rc = wal->io->rename(wal->io->ctx, wal_path(wal, tmp, false),
                         wal_path(wal, name, true));
    if (rc < 0) {
        goto fail_fd;
    }
    step = "fsync directory for";
    rc = wal_sync_dir(wal);
    if (rc < 0) {
        goto fail_fd;
    }

    if (wal->fd >= 0) {
        (void)wal->io->close(wal->io->ctx, wal->fd);
    }
    wal->fd = fd;
    wal->offset = FORMAT_SEG_HEADER_BYTES;
    wal->segs[wal->n_segs].seq = seq;
    wal->segs[wal->n_segs].first_index = first_index;
    wal->n_segs++;
    return 0;

fail_fd:
    (void)wal->io->close(wal->io->ctx, fd);
    /* Best effort: a leftover temporary file is removed at the next open
     * anyway. */
    (void)wal->io->unlink(wal->io->ctx, wal_path(wal, tmp, false));
fail:
    return wal_failf(wal, wal_io_code(rc), "wal: %s %s failed: %s", step, tmp,
                     strerror(-rc));
}

/* Closes the segment being written and starts the next one. The old segment
 * is synced first, so that every segment but the last is complete on disk;
 * recovery relies on that to refuse damage in older segments. */
static int roll(struct wal *wal, raft_index next_index)
{
    if (wal->dirty) {
        int rc = wal->io->fdatasync(wal->io->ctx, wal->fd);
        if (rc < 0) {
            char name[WAL_NAME_MAX];
            wal_segment_name(wal->segs[wal->n_segs - 1].seq, name);
            return wal_failf(wal, wal_io_code(rc),
                             "wal: %s: fdatasync failed: %s", name,
                             strerror(-rc));
        }
        wal->dirty = false;
    }
    return wal_segment_create(wal, wal->segs[wal->n_segs - 1].seq + 1,
                              next_index);
}

static int write_out(struct wal *wal, const uint8_t *p, size_t len)
{
    int rc;

    if (len == 0) {
        return 0;
    }
    rc = wal_write_all(wal, wal->fd, p, len, wal->offset);
    /* Any byte of the range may have reached the file: the segment is dirty
     * even when the write failed. */
    wal->dirty = true;
    if (rc < 0) {
        char name[WAL_NAME_MAX];
        wal_segment_name(wal->segs[wal->n_segs - 1].seq, name);
        return wal_failf(wal, wal_io_code(rc),
                         "wal: %s offset %" PRIu64 ": write failed: %s", name,
                         wal->offset, strerror(-rc));
    }
    wal->offset += len;
    wal->since_prepare += len;
    return 0;
}

/* A batch of records: an optional TRUNCATE, then @n entries, or a single
 * COMMIT record. */
struct batch
{
    raft_index truncate; /* 0: none */
    bool reset;          /* the first record is RESET(truncate), not TRUNCATE */
    const struct raft_entry *entries;
    size_t n;
    const struct raft_hard_state *commit; /* non-NULL: a COMMIT record */
};

static size_t batch_count(const struct batch *b)
{
    return (b->truncate != 0 ? 1 : 0) + b->n + (b->commit != NULL ? 1 : 0);
}

/* Fills @rec with record @k of @b (the TRUNCATE or RESET first, if any). */
static void batch_record(const struct batch *b,
                         size_t k,
                         uint8_t *vote_buf,
                         struct format_record *rec)
{
    memset(rec, 0, sizeof *rec);
    if (b->truncate != 0) {
        if (k == 0) {
            rec->type = b->reset ? FORMAT_REC_RESET : FORMAT_REC_TRUNCATE;
            rec->index = b->truncate;
            return;
        }
        k--;
    }
    if (b->commit != NULL) {
        rec->type = FORMAT_REC_COMMIT;
        rec->term = b->commit->term;
        rec->index = b->commit->commit;
        for (unsigned i = 0; i < 8; i++) {
            vote_buf[i] = (uint8_t)(b->commit->vote >> (8 * i));
        }
        rec->len = 8;
        rec->data = vote_buf;
        return;
    }
    rec->type = FORMAT_REC_ENTRY;
    rec->entry_type = b->entries[k].type;
    rec->term = b->entries[k].term;
    rec->index = b->entries[k].index;
    rec->len = b->entries[k].len;
    rec->data = b->entries[k].data;
}

/* Applies the effect of a TRUNCATE or RESET at @index to the in-memory
 * view. */
static void apply_truncate(struct wal *wal, raft_index index, bool reset)
{
    if (reset || index < wal->first || index > wal->last + 1) {
        wal->first = index;
    }
    wal->last = index - 1;
    if (wal->durable > index - 1) {
        wal->durable = index - 1;
    }
}

static int write_batch(struct wal *wal, const struct batch *b)
{
    size_t count = batch_count(b);
    size_t total = 0;
    size_t pos = 0;
    size_t chunk = 0;
    uint8_t vote_buf[8];
    struct format_record rec;
    raft_index next = wal->last + 1;
    int rc;

    for (size_t k = 0; k < count; k++) {
        batch_record(b, k, vote_buf, &rec);
        total += format_record_size(rec.len);
    }
    if (total > wal->buf_cap) {
        uint8_t *buf = wal_realloc(wal, wal->buf, total);
        if (buf == NULL) {
            /* Nothing was written: the wal is unchanged and usable. */
            return wal_errorf(wal, STORAGE_ENOMEM,
                              "wal: no memory for a %zu-byte batch", total);
        }
        wal->buf = buf;
        wal->buf_cap = total;
    }

    /* The durable index drops before the first byte is written: a record
     * that truncates must never be hidden behind an old durable claim. */
    if (b->truncate != 0 && wal->durable > b->truncate - 1) {
        wal->durable = b->truncate - 1;
    }
    if (b->n > 0 && wal->durable > b->entries[0].index - 1) {
        wal->durable = b->entries[0].index - 1;
    }

    for (size_t k = 0; k < count; k++) {
        size_t size;
        batch_record(b, k, vote_buf, &rec);
        size = format_record_size(rec.len);
        if (wal->offset + (pos - chunk) + size > wal->opts.segment_bytes &&
            wal->offset + (pos - chunk) > FORMAT_SEG_HEADER_BYTES) {
            rc = write_out(wal, wal->buf + chunk, pos - chunk);
            if (rc != 0) {
                return rc;
            }
            chunk = pos;
            rc = roll(wal, next);
            if (rc != 0) {
                return rc;
            }
        }
        format_record_encode(&rec, wal->buf + pos);
        pos += size;
        if (rec.type == FORMAT_REC_TRUNCATE || rec.type == FORMAT_REC_RESET) {
            next = rec.index;
        } else if (rec.type == FORMAT_REC_ENTRY) {
            next = rec.index + 1;
        }
    }
    rc = write_out(wal, wal->buf + chunk, pos - chunk);
    if (rc != 0) {
        return rc;
    }

    if (b->truncate != 0) {
        apply_truncate(wal, b->truncate, b->reset);
    }
    if (b->n > 0) {
        wal->last = b->entries[b->n - 1].index;
    }
    return 0;
}

int wal_append(struct wal *wal, const struct raft_entry *entries, size_t n)
{
    struct batch b = {.entries = entries, .n = n};
    int rc = wal_check_writable(wal);

    if (rc != 0 || n == 0) {
        return rc;
    }
    for (size_t i = 0; i < n; i++) {
        const struct raft_entry *e = &entries[i];
        if (e->index != entries[0].index + i || e->term == 0 ||
            (e->type != RAFT_ENTRY_NORMAL && e->type != RAFT_ENTRY_CONF) ||
            (e->len > 0 && e->data == NULL)) {
            return wal_errorf(wal, STORAGE_EINVAL,
                              "wal: entry %zu of the batch is invalid", i);
        }
        if (e->len > FORMAT_REC_DATA_MAX) {
            return wal_errorf(wal, STORAGE_ETOOBIG,
                              "wal: entry %" PRIu64 " has %" PRIu32
                              " bytes, over the limit",
                              e->index, e->len);
        }
    }
    if (entries[0].index == 0 || entries[0].index > wal->last + 1) {
        return wal_errorf(wal, STORAGE_EINVAL,
                          "wal: entry %" PRIu64
                          " would leave a gap after index %" PRIu64,
                          entries[0].index, wal->last);
    }
    if (entries[0].index <= wal->last) {
        b.truncate = entries[0].index;
    }
    return write_batch(wal, &b);
}

int wal_write_reset(struct wal *wal, raft_index next)
{
    struct batch b = {.truncate = next, .reset = true};
    return write_batch(wal, &b);
}

int wal_truncate(struct wal *wal, raft_index index)
{
    struct batch b = {.truncate = index};
    int rc = wal_check_writable(wal);

    if (rc != 0) {
        return rc;
    }
    if (index == 0) {
        return wal_errorf(wal, STORAGE_EINVAL, "wal: cannot truncate at 0");
    }
    /* Truncating past the end cannot keep a gap-free log: it is a reset. */
    b.reset = index > wal->last + 1;
    return write_batch(wal, &b);
}

int wal_reset(struct wal *wal, raft_index next)
{
    int rc = wal_check_writable(wal);

    if (rc != 0) {
        return rc;
    }
    if (next == 0) {
        return wal_errorf(wal, STORAGE_EINVAL, "wal: cannot reset to 0");
    }
    return wal_write_reset(wal, next);
}

int wal_write_commit(struct wal *wal, const struct raft_hard_state *hs)
{
    struct batch b = {.commit = hs};
    return write_batch(wal, &b);
}

int wal_sync(struct wal *wal, raft_index *durable)
{
    int rc = wal_check_writable(wal);

    if (rc != 0) {
        return rc;
    }
    if (wal->dirty) {
        rc = wal->io->fdatasync(wal->io->ctx, wal->fd);
        if (rc < 0) {
            char name[WAL_NAME_MAX];
            wal_segment_name(wal->segs[wal->n_segs - 1].seq, name);
            /* The kernel may have dropped the dirty pages already; a retry
             * could succeed without the data on disk. Never retry. */
            return wal_failf(wal, wal_io_code(rc),
                             "wal: %s: fdatasync failed: %s", name,
                             strerror(-rc));
        }
        wal->dirty = false;
    }
    wal->durable = wal->last;
    if (durable != NULL) {
        *durable = wal->durable;
    }
    /* After the sync, so the zeros never delay the sync itself; a caller
     * that acknowledges what the sync covered prepares later, after the
     * acknowledgement (prepare_explicitly). */
    if (!wal->opts.prepare_explicitly) {
        wal_prepare_step(wal);
    }
    return 0;
}

void wal_prepare_next(struct wal *wal)
{
    if (wal->poisoned == 0 && wal->opened) {
        wal_prepare_step(wal);
    }
}

int wal_compact(struct wal *wal, raft_index below)
{
    size_t k = 0;
    int rc = wal_check_writable(wal);

    if (rc != 0) {
        return rc;
    }
    /* Segment k holds only entries below the first index of segment k+1.
     * Segments go oldest first, with a directory fsync after each unlink, so
     * a crash leaves a contiguous run of segments. */
    while (k + 1 < wal->n_segs && wal->segs[k + 1].first_index <= below) {
        char name[WAL_NAME_MAX];
        wal_segment_name(wal->segs[k].seq, name);
        rc = wal->io->unlink(wal->io->ctx, wal_path(wal, name, false));
        if (rc == 0) {
            rc = wal_sync_dir(wal);
        }
        if (rc < 0) {
            memmove(wal->segs, wal->segs + k,
                    (wal->n_segs - k) * sizeof *wal->segs);
            wal->n_segs -= k;
            return wal_failf(wal, wal_io_code(rc),
                             "wal: removing %s failed: %s", name,
                             strerror(-rc));
        }
        k++;
    }
    if (k > 0) {
        memmove(wal->segs, wal->segs + k,
                (wal->n_segs - k) * sizeof *wal->segs);
        wal->n_segs -= k;
    }
    return 0;
}

raft_index wal_last_index(const struct wal *wal)
{
    return wal->last;
}

raft_index wal_durable_index(const struct wal *wal)
{
    return wal->durable;
}

bool wal_poisoned(const struct wal *wal)
{
    return wal->poisoned != 0;
}

size_t wal_segment_count(const struct wal *wal)
{
    return wal->n_segs;
}

uint64_t wal_bytes(const struct wal *wal)
{
    if (wal->n_segs == 0) {
        return 0;
    }
    return (uint64_t)(wal->n_segs - 1) * wal->opts.segment_bytes + wal->offset;
}

const char *wal_errmsg(const struct wal *wal)
{
    return wal->errmsg;
}
