/*
 * wal_open.c - recovery: verify every record of every segment, repair a
 * torn tail, refuse any other damage, and load what the node needs to
 * restart. The rules are written down in docs/storage.md ("Recovery").
 */
#include "wal_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Names found in the directory. */
struct listing
{
    struct wal *wal;
    uint64_t *seqs;
    size_t n_seqs;
    size_t cap_seqs;
    char (*tmps)[WAL_NAME_MAX];
    size_t n_tmps;
    size_t cap_tmps;
    int rc;
};

/* The log as replayed so far. Entry data lives in @data; doff[i] is where
 * entry i's bytes start, so that truncation can give the space back. */
struct replay
{
    struct raft_entry *ents;
    size_t *doff;
    size_t n;
    size_t cap;
    uint8_t *data;
    size_t data_len;
    size_t data_cap;
    raft_index first;
    raft_index last;
};

static bool parse_seg_name(const char *name, uint64_t *seq)
{
    uint64_t v = 0;

    if (strlen(name) != 20 || strcmp(name + 16, ".seg") != 0) {
        return false;
    }
    for (int i = 0; i < 16; i++) {
        char c = name[i];
        unsigned d;
        if (c >= '0' && c <= '9') {
            d = (unsigned)(c - '0');
        } else if (c >= 'a' && c <= 'f') {
            d = (unsigned)(c - 'a' + 10);
        } else {
            return false;
        }
        v = (v << 4) | d;
    }
    *seq = v;
    return true;
}

static bool has_suffix(const char *s, const char *suffix)
{
    size_t n = strlen(s);
    size_t m = strlen(suffix);
    return n >= m && strcmp(s + n - m, suffix) == 0;
}

static int list_cb(void *arg, const char *name)
{
    struct listing *l = arg;
    uint64_t seq;

    if (parse_seg_name(name, &seq)) {
        if (l->n_seqs == l->cap_seqs) {
            size_t cap = l->cap_seqs == 0 ? 16 : l->cap_seqs * 2;
            uint64_t *p = wal_realloc(l->wal, l->seqs, cap * sizeof *p);
            if (p == NULL) {
                return l->rc = STORAGE_ENOMEM;
            }
            l->seqs = p;
            l->cap_seqs = cap;
        }
        l->seqs[l->n_seqs++] = seq;
    } else if (has_suffix(name, WAL_TMP_SUFFIX) &&
               strlen(name) < WAL_NAME_MAX) {
        if (l->n_tmps == l->cap_tmps) {
            size_t cap = l->cap_tmps == 0 ? 4 : l->cap_tmps * 2;
            char(*p)[WAL_NAME_MAX] =
                wal_realloc(l->wal, l->tmps, cap * sizeof *p);
            if (p == NULL) {
                return l->rc = STORAGE_ENOMEM;
            }
            l->tmps = p;
            l->cap_tmps = cap;
        }
        memcpy(l->tmps[l->n_tmps++], name, strlen(name) + 1);
    }
    return 0;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a;
    uint64_t y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static bool all_zero(const uint8_t *p, size_t len)
{
    /* Preallocated segments end in megabytes of zeros that every open
     * checks, so compare whole blocks. */
    static const uint8_t zeros[4096];
    while (len >= sizeof zeros) {
        if (memcmp(p, zeros, sizeof zeros) != 0) {
            return false;
        }
        p += sizeof zeros;
        len -= sizeof zeros;
    }
    return len == 0 || memcmp(p, zeros, len) == 0;
}

/* True if a record that passes its checksum starts anywhere in
 * buf[from, size). Used to tell a torn tail (nothing valid after the damage)
 * from damage in the middle of the log. Cheap field checks come first, so
 * garbage costs little. */
static bool valid_record_after(const uint8_t *buf, size_t from, size_t size)
{
    struct format_record rec;
    const char *why;

    for (size_t off = (from + 7) & ~(size_t)7;
         off + FORMAT_REC_HEADER_BYTES <= size; off += 8) {
        const uint8_t *p = buf + off;
        if (p[4] < FORMAT_REC_ENTRY || p[4] > FORMAT_REC_RESET || p[6] != 0 ||
            p[7] != 0) {
            continue;
        }
        if (format_record_decode(p, size - off, &rec, &why) == 0) {
            return true;
        }
    }
    return false;
}

static int replay_reserve(struct wal *wal, struct replay *r, size_t len)
{
    if (r->n == r->cap) {
        size_t cap = r->cap == 0 ? 64 : r->cap * 2;
        struct raft_entry *ents = wal_realloc(wal, r->ents, cap * sizeof *ents);
        size_t *doff;
        if (ents == NULL) {
            return STORAGE_ENOMEM;
        }
        r->ents = ents;
        doff = wal_realloc(wal, r->doff, cap * sizeof *doff);
        if (doff == NULL) {
            return STORAGE_ENOMEM;
        }
        r->doff = doff;
        r->cap = cap;
    }
    if (r->data_len + len > r->data_cap) {
        size_t cap = r->data_cap == 0 ? 4096 : r->data_cap;
        uint8_t *data;
        while (cap < r->data_len + len) {
            cap *= 2;
        }
        data = wal_realloc(wal, r->data, cap);
        if (data == NULL) {
            return STORAGE_ENOMEM;
        }
        r->data = data;
        r->data_cap = cap;
    }
    return 0;
}

static void replay_truncate(struct replay *r, raft_index index)
{
    if (index < r->first || index > r->last + 1) {
        r->n = 0;
        r->data_len = 0;
        r->first = index;
    } else if (index <= r->last) {
        r->n = (size_t)(index - r->first);
        r->data_len = r->doff[r->n];
    }
    r->last = index - 1;
}

/* Applies one verified record. Returns 0 or STORAGE_ECORRUPT / ENOMEM with
 * a reason in @why. */
static int replay_record(struct wal *wal,
                         struct replay *r,
                         const struct format_record *rec,
                         struct raft_hard_state *hs,
                         char *why,
                         size_t why_len)
{
    switch (rec->type) {
    case FORMAT_REC_ENTRY:
        if (rec->index != r->last + 1) {
            snprintf(why, why_len,
                     "entry index %" PRIu64 " out of order (expected %" PRIu64
                     ")",
                     rec->index, r->last + 1);
            return STORAGE_ECORRUPT;
        }
        if (r->n > 0 && rec->term < r->ents[r->n - 1].term) {
            snprintf(why, why_len,
                     "entry %" PRIu64 " has term %" PRIu64
                     ", below the previous entry's %" PRIu64,
                     rec->index, rec->term, r->ents[r->n - 1].term);
            return STORAGE_ECORRUPT;
        }
        if (replay_reserve(wal, r, rec->len) != 0) {
            snprintf(why, why_len, "out of memory");
            return STORAGE_ENOMEM;
        }
        r->ents[r->n].term = rec->term;
        r->ents[r->n].index = rec->index;
        r->ents[r->n].type = rec->entry_type;
        r->ents[r->n].len = rec->len;
        r->ents[r->n].data = NULL;
        r->doff[r->n] = r->data_len;
        if (rec->len > 0) {
            memcpy(r->data + r->data_len, rec->data, rec->len);
        }
        r->data_len += rec->len;
        r->n++;
        r->last = rec->index;
        return 0;
    case FORMAT_REC_TRUNCATE:
        replay_truncate(r, rec->index);
        return 0;
    case FORMAT_REC_RESET:
        r->n = 0;
        r->data_len = 0;
        r->first = rec->index;
        r->last = rec->index - 1;
        return 0;
    case FORMAT_REC_COMMIT: {
        uint64_t vote = 0;
        for (unsigned i = 0; i < 8; i++) {
            vote |= (uint64_t)rec->data[i] << (8 * i);
        }
        /* A commit hint only counts for the term and vote on file: one
         * written under an older term was superseded by the file. */
        if (rec->term == hs->term && vote == hs->vote &&
            rec->index > hs->commit) {
            hs->commit = rec->index;
        }
        return 0;
    }
    default:
        snprintf(why, why_len, "unknown record type %u", rec->type);
        return STORAGE_ECORRUPT;
    }
}

/* Reads the whole of an open segment into *buf (grown as needed). */
static int read_segment(struct wal *wal,
                        int fd,
                        const char *name,
                        uint8_t **buf,
                        size_t *cap,
                        size_t *size)
{
    uint64_t fsize;
    size_t got = 0;
    int rc = wal->io->size(wal->io->ctx, fd, &fsize);

    if (rc < 0) {
        return wal_errorf(wal, wal_io_code(rc), "wal: stat %s failed: %s", name,
                          strerror(-rc));
    }
    if (fsize > SIZE_MAX / 2) {
        return wal_errorf(wal, STORAGE_ECORRUPT, "wal: %s is too large", name);
    }
    if (fsize > *cap) {
        uint8_t *p = wal_realloc(wal, *buf, (size_t)fsize);
        if (p == NULL) {
            return wal_errorf(wal, STORAGE_ENOMEM, "wal: no memory to read %s",
                              name);
        }
        *buf = p;
        *cap = (size_t)fsize;
    }
    while (got < fsize) {
        int64_t n = wal->io->pread(wal->io->ctx, fd, *buf + got,
                                   (size_t)fsize - got, got);
        if (n <= 0) {
            rc = n < 0 ? (int)n : -EIO;
            return wal_errorf(wal, wal_io_code(rc), "wal: read %s failed: %s",
                              name, strerror(-rc));
        }
        got += (size_t)n;
    }
    *size = got;
    return 0;
}

/* Erases a torn tail: zeroes buf[off, end of the non-zero bytes) on disk
 * and syncs, so that the next records land on a clean, zeroed tail. */
static int erase_tail(struct wal *wal,
                      int fd,
                      const char *name,
                      const uint8_t *buf,
                      size_t off,
                      size_t size,
                      uint64_t *erased)
{
    static const uint8_t zeros[4096];
    size_t end = size;
    size_t pos = off;
    int rc = 0;

    while (end > off && buf[end - 1] == 0) {
        end--;
    }
    while (pos < end) {
        size_t n = end - pos < sizeof zeros ? end - pos : sizeof zeros;
        rc = wal_write_all(wal, fd, zeros, n, pos);
        if (rc < 0) {
            break;
        }
        pos += n;
    }
    if (rc == 0) {
        rc = wal->io->fdatasync(wal->io->ctx, fd);
    }
    if (rc < 0) {
        return wal_errorf(wal, wal_io_code(rc),
                          "wal: %s offset %zu: erasing torn tail failed: %s",
                          name, off, strerror(-rc));
    }
    *erased = end - off;
    return 0;
}

/* Replays segment number @k of the listing. On return *end is the offset
 * just past its last valid record. */
static int replay_segment(struct wal *wal,
                          size_t k,
                          struct replay *r,
                          struct wal_loaded *loaded,
                          uint8_t **buf,
                          size_t *cap,
                          uint64_t *end)
{
    char name[WAL_NAME_MAX];
    char why[160];
    const char *reason = "";
    struct format_seg_header hdr;
    struct format_record rec;
    bool is_last = k + 1 == wal->n_segs;
    size_t size = 0;
    size_t off;
    int fd;
    int rc;

    wal_segment_name(wal->segs[k].seq, name);
    fd = wal->io->open(wal->io->ctx, wal_path(wal, name, false),
                       is_last ? O_RDWR : O_RDONLY, 0);
    if (fd < 0) {
        return wal_errorf(wal, wal_io_code(fd), "wal: open %s failed: %s", name,
                          strerror(-fd));
    }
    rc = read_segment(wal, fd, name, buf, cap, &size);
    if (rc != 0) {
        goto out;
    }
    rc = format_seg_header_decode(*buf, size, &hdr, &reason);
    if (rc != 0) {
        rc = wal_errorf(wal, rc, "wal: %s offset 0: %s", name, reason);
        goto out;
    }
    if (hdr.seq != wal->segs[k].seq) {
        rc = wal_errorf(wal, STORAGE_ECORRUPT,
                        "wal: %s offset 0: header names segment %" PRIu64, name,
                        hdr.seq);
        goto out;
    }
    if (k == 0) {
        r->first = hdr.first_index;
        r->last = hdr.first_index - 1;
    } else if (hdr.first_index != r->last + 1) {
        rc = wal_errorf(wal, STORAGE_ECORRUPT,
                        "wal: %s offset 0: segment starts at index %" PRIu64
                        " but the log continues at %" PRIu64,
                        name, hdr.first_index, r->last + 1);
        goto out;
    }
    wal->segs[k].first_index = hdr.first_index;

    off = FORMAT_SEG_HEADER_BYTES;
    for (;;) {
        int drc = format_record_decode(*buf + off, size - off, &rec, &reason);
        if (drc == 0) {
            rc = replay_record(wal, r, &rec, &loaded->hs, why, sizeof why);
            if (rc != 0) {
                rc = wal_errorf(wal, rc, "wal: %s offset %zu: %s", name, off,
                                why);
                goto out;
            }
            off += format_record_size(rec.len);
            continue;
        }
        if (drc == FORMAT_END && all_zero(*buf + off, size - off)) {
            break; /* the clean end of the written part */
        }
        if (drc == FORMAT_END) {
            reason = "garbage after the last record";
        }
        /* Only the last segment can end in a torn write: every older one
         * was synced whole before its successor was created. And only if
         * nothing valid follows the damage: a good record after a bad one
         * means the bad one was once durable. */
        if (!is_last || valid_record_after(*buf, off + 8, size)) {
            rc = wal_errorf(wal, STORAGE_ECORRUPT, "wal: %s offset %zu: %s",
                            name, off, reason);
            goto out;
        }
        {
            uint64_t erased = 0;
            rc = erase_tail(wal, fd, name, *buf, off, size, &erased);
            if (rc != 0) {
                goto out;
            }
            loaded->repairs++;
            loaded->torn_bytes += erased;
            wal_logf(wal, STORAGE_LOG_WARN,
                     "wal: %s offset %zu: torn tail (%s), erased %" PRIu64
                     " bytes",
                     name, off, reason, erased);
        }
        break;
    }
    *end = off;
    if (is_last) {
        wal->fd = fd;
        fd = -1;
    }
out:
    if (fd >= 0) {
        (void)wal->io->close(wal->io->ctx, fd);
    }
    return rc;
}

/* Decides what the snapshot means for the replayed log: entries at or
 * below it are not returned, and a log that contradicts it or ends before
 * it is reset to start right after it. Returns 0 or STORAGE_ECORRUPT. */
static int reconcile_snapshot(struct wal *wal,
                              struct replay *r,
                              const struct wal_loaded *loaded,
                              bool *reset,
                              size_t *skip)
{
    raft_index s = loaded->has_snapshot ? loaded->snapshot.index : 0;

    *reset = false;
    *skip = 0;
    if (r->n > 0 && r->first > s + 1) {
        return wal_errorf(wal, STORAGE_ECORRUPT,
                          "wal: log starts at index %" PRIu64
                          " but the snapshot ends at %" PRIu64,
                          r->first, s);
    }
    if (s == 0) {
        if (r->n == 0 && r->first != 1) {
            *reset = true;
        }
        return 0;
    }
    if (r->last < s) {
        /* Everything held is covered by the snapshot. */
        *reset = !(r->n == 0 && r->first == s + 1);
        *skip = r->n;
        return 0;
    }
    if (r->first <= s) {
        const struct raft_entry *e = &r->ents[s - r->first];
        if (e->term != loaded->snapshot.term) {
            /* The snapshot was saved and the log reset was lost in a crash:
             * entries after a disagreeing entry belong to another
             * history. */
            wal_logf(wal, STORAGE_LOG_WARN,
                     "wal: entry %" PRIu64 " has term %" PRIu64
                     " but the snapshot says %" PRIu64 "; dropping %" PRIu64
                     " entries after it",
                     s, e->term, loaded->snapshot.term, r->last - s);
            *reset = true;
            *skip = r->n;
            return 0;
        }
        *skip = (size_t)(s + 1 - r->first);
    }
    return 0;
}

static void free_listing(struct wal *wal, struct listing *l)
{
    wal_free(wal, l->seqs);
    wal_free(wal, l->tmps);
}

int wal_open(struct wal *wal, const char *dir, struct wal_loaded *loaded)
{
    struct listing l = {.wal = wal};
    struct replay r = {.first = 1, .last = 0};
    uint8_t *buf = NULL;
    size_t cap = 0;
    uint64_t end = 0;
    size_t dir_len = strlen(dir);
    size_t skip = 0;
    bool reset = false;
    int rc;

    memset(loaded, 0, sizeof *loaded);
    if (wal->opened || wal->dir != NULL) {
        return wal_errorf(wal, STORAGE_ESTATE, "wal: already opened");
    }
    wal->dir = wal_malloc(wal, dir_len + 1);
    wal->path = wal_malloc(wal, dir_len + 1 + WAL_NAME_MAX);
    wal->path2 = wal_malloc(wal, dir_len + 1 + WAL_NAME_MAX);
    if (wal->dir == NULL || wal->path == NULL || wal->path2 == NULL) {
        rc = wal_errorf(wal, STORAGE_ENOMEM, "wal: out of memory");
        goto fail;
    }
    memcpy(wal->dir, dir, dir_len + 1);

    rc = wal->io->mkdir(wal->io->ctx, dir, 0755);
    if (rc < 0 && rc != -EEXIST) {
        rc = wal_errorf(wal, wal_io_code(rc), "wal: mkdir %s failed: %s", dir,
                        strerror(-rc));
        goto fail;
    }
    rc = wal->io->list(wal->io->ctx, dir, list_cb, &l);
    if (rc != 0) {
        rc = rc == STORAGE_ENOMEM
                 ? wal_errorf(wal, rc, "wal: out of memory listing %s", dir)
                 : wal_errorf(wal, wal_io_code(rc), "wal: listing %s: %s", dir,
                              strerror(-rc));
        goto fail;
    }
    /* Temporary files are unfinished replacements or segments: the crash
     * happened before their rename, so they never counted. */
    for (size_t i = 0; i < l.n_tmps; i++) {
        rc = wal->io->unlink(wal->io->ctx, wal_path(wal, l.tmps[i], false));
        if (rc < 0 && rc != -ENOENT) {
            rc = wal_errorf(wal, wal_io_code(rc), "wal: removing %s: %s",
                            l.tmps[i], strerror(-rc));
            goto fail;
        }
        loaded->repairs++;
        wal_logf(wal, STORAGE_LOG_INFO, "wal: removed leftover %s", l.tmps[i]);
    }
    /* A predecessor that crashed may have renamed or removed files without
     * the directory fsync that makes it durable; what is read below must
     * not change under a later power loss. */
    rc = wal_sync_dir(wal);
    if (rc < 0) {
        rc = wal_errorf(wal, wal_io_code(rc), "wal: fsync of %s failed: %s",
                        dir, strerror(-rc));
        goto fail;
    }
    if (l.n_seqs > 1) {
        qsort(l.seqs, l.n_seqs, sizeof *l.seqs, cmp_u64);
    }
    for (size_t i = 1; i < l.n_seqs; i++) {
        if (l.seqs[i] != l.seqs[i - 1] + 1) {
            char name[WAL_NAME_MAX];
            wal_segment_name(l.seqs[i - 1] + 1, name);
            rc = wal_errorf(wal, STORAGE_ECORRUPT,
                            "wal: %s offset 0: segment missing", name);
            goto fail;
        }
    }
    if (l.n_seqs > 0) {
        wal->segs = wal_malloc(wal, l.n_seqs * sizeof *wal->segs);
        if (wal->segs == NULL) {
            rc = wal_errorf(wal, STORAGE_ENOMEM, "wal: out of memory");
            goto fail;
        }
        wal->cap_segs = wal->n_segs = l.n_seqs;
        for (size_t i = 0; i < l.n_seqs; i++) {
            wal->segs[i].seq = l.seqs[i];
        }
    }

    rc = meta_load(wal, loaded);
    if (rc != 0) {
        goto fail;
    }
    for (size_t k = 0; k < wal->n_segs; k++) {
        rc = replay_segment(wal, k, &r, loaded, &buf, &cap, &end);
        if (rc != 0) {
            goto fail;
        }
    }
    wal_free(wal, buf);
    buf = NULL;

    rc = reconcile_snapshot(wal, &r, loaded, &reset, &skip);
    if (rc != 0) {
        goto fail;
    }

    wal->first = r.first;
    wal->last = r.last;
    wal->hs = loaded->hs;
    if (wal->n_segs == 0) {
        raft_index s = loaded->has_snapshot ? loaded->snapshot.index : 0;
        wal->first = s + 1;
        wal->last = s;
        reset = false;
        rc = wal_segment_create(wal, 1, s + 1);
        if (rc != 0) {
            goto fail;
        }
    } else {
        wal->offset = end;
        /* A predecessor that crashed may have left records in the page
         * cache only; make them durable before calling them durable. */
        rc = wal->io->fdatasync(wal->io->ctx, wal->fd);
        if (rc < 0) {
            rc = wal_errorf(wal, wal_io_code(rc), "wal: fdatasync failed: %s",
                            strerror(-rc));
            goto fail;
        }
    }
    wal->opened = true;
    if (reset) {
        raft_index s = loaded->has_snapshot ? loaded->snapshot.index : 0;
        loaded->repairs++;
        rc = wal_write_reset(wal, s + 1);
        if (rc == 0) {
            rc = wal_sync(wal, NULL);
        }
        if (rc != 0) {
            wal->opened = false;
            goto fail;
        }
    }
    wal->durable = wal->last;

    /* Hand the replayed entries over: they move to the front of the array
     * and their data pointers are fixed now that the data no longer
     * moves. */
    if (r.n > skip) {
        loaded->n_entries = r.n - skip;
        memmove(r.ents, r.ents + skip, loaded->n_entries * sizeof *r.ents);
        for (size_t i = 0; i < loaded->n_entries; i++) {
            r.ents[i].data = r.data + r.doff[skip + i];
        }
        loaded->entries = r.ents;
        loaded->data_block = r.data;
        r.ents = NULL;
        r.data = NULL;
    }
    {
        raft_index s = loaded->has_snapshot ? loaded->snapshot.index : 0;
        raft_index max = wal->last > s ? wal->last : s;
        if (loaded->hs.commit > max) {
            /* The commit index is a hint; one past the log is useless and
             * would trip the consensus core. */
            wal_logf(wal, STORAGE_LOG_WARN,
                     "wal: commit hint %" PRIu64
                     " is past the log; using %" PRIu64,
                     loaded->hs.commit, max);
            loaded->hs.commit = max;
        }
    }
    wal_free(wal, r.ents);
    wal_free(wal, r.doff);
    wal_free(wal, r.data);
    free_listing(wal, &l);
    return 0;

fail:
    /* A wal that failed to open may only be destroyed. */
    wal->poisoned = rc;
    snprintf(wal->poison_msg, sizeof wal->poison_msg, "%s", wal->errmsg);
    wal_free(wal, buf);
    wal_free(wal, r.ents);
    wal_free(wal, r.doff);
    wal_free(wal, r.data);
    free_listing(wal, &l);
    memset(loaded, 0, sizeof *loaded);
    return rc;
}

void wal_loaded_free(struct wal *wal, struct wal_loaded *loaded)
{
    wal_free(wal, loaded->entries);
    wal_free(wal, loaded->data_block);
    memset(loaded, 0, sizeof *loaded);
}
