/*
 * disk.c - the simulated disk behind the storage seam.
 *
 * The disk keeps a durable image and a list of writes issued since the last
 * sync, in write order. sync() replays the list onto the image; a crash
 * replays only a random prefix (a torn write: the tail of a batch never
 * reached the platter) or nothing, then forgets the rest. Each entry is one
 * write, so a tear can split a batch anywhere, like a WAL whose last records
 * fail their checksum and are truncated on start.
 *
 * The disk also checks the raft_update contract, since it is the one place
 * that sees every write: entries must extend or overwrite the log without a
 * gap, chunks must be contiguous, and an installed snapshot must be exactly
 * the bytes that were staged for it. Breaches return SIM_ESTORAGE with a
 * message, which the driver reports as a failed invariant.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sim.h"

enum op_kind {
    OP_CHUNK = 1,
    OP_INSTALL,
    OP_ENTRY,
    OP_HARD_STATE,
};

struct disk_op
{
    uint8_t kind;
    bool reset_log;
    struct raft_entry entry; /* OP_ENTRY; data owned */
    struct raft_hard_state hs;
    struct raft_snapshot_meta meta; /* OP_INSTALL, OP_CHUNK */
    uint64_t offset;
    uint32_t len;
    uint8_t *data; /* OP_CHUNK */
};

struct disk_image
{
    struct raft_hard_state hs;
    bool has_snap;
    struct raft_snapshot_meta snap;
    uint8_t *snap_data;

    /* Log entries first .. first + n - 1, each owning its data. */
    raft_index first;
    struct raft_entry *entries;
    size_t n, cap;

    /* The snapshot being received. */
    raft_index stage_index;
    uint8_t *stage;
    uint64_t stage_len, stage_cap;
};

struct disk
{
    struct disk_image img;
    struct disk_op *ops;
    size_t n_ops, cap_ops;
    char errmsg[256];
};

static int fail(struct disk *d, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static int fail(struct disk *d, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(d->errmsg, sizeof(d->errmsg), fmt, ap);
    va_end(ap);
    return SIM_ESTORAGE;
}

static uint8_t *dup_bytes(const uint8_t *p, size_t len)
{
    uint8_t *copy = sim_xmalloc(len > 0 ? len : 1);
    if (len > 0) {
        memcpy(copy, p, len);
    }
    return copy;
}

static void op_free(struct disk_op *op)
{
    if (op->kind == OP_ENTRY) {
        free((void *)op->entry.data);
    }
    free(op->data);
}

static struct disk_op *op_push(struct disk *d, uint8_t kind)
{
    if (sim_grow((void **)&d->ops, &d->cap_ops, d->n_ops + 1,
                 sizeof(*d->ops)) != 0) {
        abort();
    }
    struct disk_op *op = &d->ops[d->n_ops++];
    memset(op, 0, sizeof(*op));
    op->kind = kind;
    return op;
}

static raft_index img_last(const struct disk_image *img)
{
    return img->first + img->n - 1;
}

/* Drops entries at or after @index. */
static void img_truncate(struct disk_image *img, raft_index index)
{
    while (img->n > 0 && img_last(img) >= index) {
        img->n--;
        free((void *)img->entries[img->n].data);
    }
}

/* Drops every entry; the log restarts after @index. */
static void img_reset(struct disk_image *img, raft_index index)
{
    img_truncate(img, 0);
    img->first = index + 1;
}

/* Drops entries at or below @index, keeping those above. */
static void img_compact(struct disk_image *img, raft_index index)
{
    if (img->n == 0 || index < img->first) {
        if (img->n == 0 && index >= img->first) {
            img->first = index + 1;
        }
        return;
    }
    if (index >= img_last(img)) {
        img_reset(img, index);
        return;
    }
    size_t drop = (size_t)(index - img->first + 1);
    for (size_t i = 0; i < drop; i++) {
        free((void *)img->entries[i].data);
    }
    memmove(img->entries, img->entries + drop,
            (img->n - drop) * sizeof(*img->entries));
    img->n -= drop;
    img->first = index + 1;
}

static void img_set_snapshot(struct disk_image *img,
                             const struct raft_snapshot_meta *meta,
                             uint8_t *data)
{
    free(img->snap_data);
    img->has_snap = true;
    img->snap = *meta;
    img->snap_data = data;
}

static int op_apply(struct disk *d, struct disk_op *op)
{
    struct disk_image *img = &d->img;
    switch (op->kind) {
    case OP_CHUNK: {
        raft_index index = op->meta.index;
        if (op->offset == 0 || index != img->stage_index) {
            if (op->offset != 0) {
                return fail(d,
                            "snapshot chunk at offset %llu for snapshot "
                            "%llu, but staging holds snapshot %llu",
                            (unsigned long long)op->offset,
                            (unsigned long long)index,
                            (unsigned long long)img->stage_index);
            }
            img->stage_index = index;
            img->stage_len = 0;
        }
        if (op->offset > img->stage_len) {
            return fail(d,
                        "snapshot %llu chunk at offset %llu leaves a gap "
                        "after %llu staged bytes",
                        (unsigned long long)index,
                        (unsigned long long)op->offset,
                        (unsigned long long)img->stage_len);
        }
        uint64_t end = op->offset + op->len;
        if (end > img->stage_cap) {
            img->stage = realloc(img->stage, end);
            if (img->stage == NULL) {
                abort();
            }
            img->stage_cap = end;
        }
        if (op->len > 0) {
            memcpy(img->stage + op->offset, op->data, op->len);
        }
        if (end > img->stage_len) {
            img->stage_len = end;
        }
        return 0;
    }
    case OP_INSTALL:
        if (img->stage_index != op->meta.index ||
            img->stage_len != op->meta.size) {
            return fail(d,
                        "snapshot %llu (%llu bytes) installed, but staging "
                        "holds %llu bytes of snapshot %llu",
                        (unsigned long long)op->meta.index,
                        (unsigned long long)op->meta.size,
                        (unsigned long long)img->stage_len,
                        (unsigned long long)img->stage_index);
        }
        img_set_snapshot(img, &op->meta, img->stage);
        img->stage = NULL;
        img->stage_len = img->stage_cap = 0;
        img->stage_index = 0;
        if (op->reset_log) {
            img_reset(img, op->meta.index);
        } else {
            img_compact(img, op->meta.index);
        }
        return 0;
    case OP_ENTRY: {
        raft_index index = op->entry.index;
        raft_index floor = img->has_snap ? img->snap.index : 0;
        if (index <= floor) {
            return fail(d, "entry %llu written at or below snapshot %llu",
                        (unsigned long long)index, (unsigned long long)floor);
        }
        if (img->n == 0) {
            if (index != img->first) {
                return fail(d,
                            "entry %llu written to an empty log that "
                            "starts at %llu",
                            (unsigned long long)index,
                            (unsigned long long)img->first);
            }
        } else if (index > img_last(img) + 1) {
            return fail(d, "entry %llu written after last entry %llu (gap)",
                        (unsigned long long)index,
                        (unsigned long long)img_last(img));
        } else if (index < img->first) {
            return fail(d, "entry %llu written before log start %llu",
                        (unsigned long long)index,
                        (unsigned long long)img->first);
        }
        img_truncate(img, index);
        if (sim_grow((void **)&img->entries, &img->cap, img->n + 1,
                     sizeof(*img->entries)) != 0) {
            abort();
        }
        img->entries[img->n++] = op->entry;
        op->entry.data = NULL; /* moved into the image */
        return 0;
    }
    case OP_HARD_STATE:
        img->hs = op->hs;
        return 0;
    default:
        abort();
    }
}

static int disk_stage_chunk(void *ctx, const struct raft_msg_snapshot *chunk)
{
    struct disk *d = ctx;
    struct disk_op *op = op_push(d, OP_CHUNK);
    op->meta = chunk->meta;
    op->offset = chunk->offset;
    op->len = chunk->len;
    op->data = dup_bytes(chunk->data, chunk->len);
    return 0;
}

static int disk_install_staged(void *ctx,
                               const struct raft_snapshot_meta *meta,
                               bool reset_log)
{
    struct disk *d = ctx;
    struct disk_op *op = op_push(d, OP_INSTALL);
    op->meta = *meta;
    op->reset_log = reset_log;
    return 0;
}

static int disk_save_snapshot(void *ctx,
                              const struct raft_snapshot_meta *meta,
                              const uint8_t *data)
{
    struct disk *d = ctx;
    if (d->n_ops != 0) {
        return fail(d, "application snapshot saved over unsynced writes");
    }
    img_set_snapshot(&d->img, meta, dup_bytes(data, meta->size));
    img_compact(&d->img, meta->index);
    return 0;
}

static int disk_append(void *ctx, const struct raft_entry *entries, size_t n)
{
    struct disk *d = ctx;
    for (size_t i = 0; i < n; i++) {
        struct disk_op *op = op_push(d, OP_ENTRY);
        op->entry = entries[i];
        op->entry.data = dup_bytes(entries[i].data, entries[i].len);
    }
    return 0;
}

static int disk_save_hard_state(void *ctx, const struct raft_hard_state *hs)
{
    struct disk *d = ctx;
    struct disk_op *op = op_push(d, OP_HARD_STATE);
    op->hs = *hs;
    return 0;
}

/* Replays the first @keep writes onto the image and forgets the rest. */
static int replay(struct disk *d, size_t keep)
{
    int rc = 0;
    for (size_t i = 0; i < d->n_ops; i++) {
        if (i < keep && rc == 0) {
            rc = op_apply(d, &d->ops[i]);
        }
        op_free(&d->ops[i]);
    }
    d->n_ops = 0;
    return rc;
}

static int disk_sync(void *ctx)
{
    struct disk *d = ctx;
    return replay(d, d->n_ops);
}

static int disk_crash(void *ctx, struct sim_rng *rng, bool tear)
{
    struct disk *d = ctx;
    size_t keep = 0;
    if (tear && d->n_ops > 0) {
        keep = (size_t)sim_rng_below(rng, d->n_ops + 1);
    }
    int rc = replay(d, keep);
    return rc != 0 ? rc : (int)keep;
}

/* A process exit loses nothing the disk was handed: the operating system
 * writes it back. (Only storage_wal.c's nodes halt; this is for
 * completeness.) */
static int disk_exit(void *ctx)
{
    struct disk *d = ctx;
    return replay(d, d->n_ops);
}

static int disk_load(void *ctx, struct sim_durable *out)
{
    struct disk *d = ctx;
    struct disk_image *img = &d->img;
    memset(out, 0, sizeof(*out));
    out->hs = img->hs;
    out->has_snapshot = img->has_snap;
    if (img->has_snap) {
        out->snap = img->snap;
        out->snap_data = img->snap_data;
        if (img->n > 0 && img->first != img->snap.index + 1) {
            return fail(d, "log starts at %llu after snapshot %llu",
                        (unsigned long long)img->first,
                        (unsigned long long)img->snap.index);
        }
    }
    out->entries = img->entries;
    out->n_entries = img->n;
    return 0;
}

static const uint8_t *disk_snapshot_data(void *ctx,
                                         raft_index index,
                                         const struct raft_snapshot_meta **meta)
{
    struct disk *d = ctx;
    if (!d->img.has_snap || d->img.snap.index != index) {
        return NULL;
    }
    *meta = &d->img.snap;
    return d->img.snap_data;
}

static size_t disk_unsynced(void *ctx)
{
    struct disk *d = ctx;
    return d->n_ops;
}

static const char *disk_errmsg(void *ctx)
{
    struct disk *d = ctx;
    return d->errmsg;
}

static void disk_destroy(void *ctx)
{
    struct disk *d = ctx;
    replay(d, 0);
    free(d->ops);
    img_truncate(&d->img, 0);
    free(d->img.entries);
    free(d->img.snap_data);
    free(d->img.stage);
    free(d);
}

static const struct sim_storage_ops disk_ops = {
    .stage_chunk = disk_stage_chunk,
    .install_staged = disk_install_staged,
    .save_snapshot = disk_save_snapshot,
    .append = disk_append,
    .save_hard_state = disk_save_hard_state,
    .sync = disk_sync,
    .crash = disk_crash,
    .exit = disk_exit,
    .load = disk_load,
    .snapshot_data = disk_snapshot_data,
    .unsynced = disk_unsynced,
    .errmsg = disk_errmsg,
    .destroy = disk_destroy,
};

int disk_create(struct sim_storage *out)
{
    struct disk *d = calloc(1, sizeof(*d));
    if (d == NULL) {
        return -1;
    }
    d->img.first = 1;
    out->ops = &disk_ops;
    out->ctx = d;
    return 0;
}
