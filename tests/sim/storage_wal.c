/*
 * storage_wal.c - the storage seam over the real storage/ WAL.
 *
 * For a share of the seeds each node persists through the real WAL
 * (storage/wal.c, wal_open.c, meta.c) instead of the simulated disk of
 * disk.c: entries, truncations, the hard state and the snapshot meta are
 * written by wal_append(), wal_save_hard_state(), wal_save_snapshot_meta(),
 * wal_reset() and wal_compact(), made durable by wal_sync(), and read back
 * after every crash by wal_open(), so the real recovery code (torn-tail
 * repair, leftover temporary files, snapshot reconciliation, commit hints)
 * runs after every simulated power loss.
 *
 * The WAL sees the world through a struct storage_io. Here that is a file
 * system in memory (memfs.c), one directory per node, with the
 * durability rules of a POSIX file system on a disk with a volatile cache:
 *
 *   - each file has a durable image and a list of writes (pwrite, ftruncate)
 *     made since its last fdatasync/fsync; a sync replays the list onto the
 *     image;
 *   - creating, renaming and unlinking a name changes the directory at once
 *     for readers, but only a fsync of the directory makes the change
 *     durable;
 *   - a crash keeps the durable images and names and forgets the rest. With
 *     the seam's tear flag, each file keeps a random prefix of its unsynced
 *     writes, the first write it drops may survive as a random prefix of its
 *     bytes (a torn record), and the directory keeps a random prefix of its
 *     unsynced changes. Every choice comes from the simulator's disk stream,
 *     so a seed still replays bit for bit.
 *
 * I/O faults: with the seed's fault settings, memfs.c makes writes fail
 * with EIO or ENOSPC, syncs fail with EIO (fsyncgate: the unsynced writes
 * may be dropped for good), and a full disk refuses every write that grows
 * a file. A WAL call that fails is explained by an injected fault only if
 * one was injected during that very call, the error is the one injected,
 * the WAL has poisoned itself and it refuses a retried wal_sync(); the seam
 * then returns SIM_EFAULT and the node halts (node.c). Any other failure is
 * SIM_EWAL and fails the run.
 *
 * What is not simulated: reordering of sectors within one write (the WAL
 * documents that it refuses to open rather than repair that), and faults
 * in the application's snapshot files, which stay in memory (below).
 *
 * The application's snapshot bytes stay in memory beside the WAL: the
 * staging area of a received snapshot behaves like disk.c's (chunks are
 * durable after sync, a crash keeps a torn prefix of unsynced ones), and
 * installing or saving a snapshot makes its bytes durable at once, as a
 * driver that fsyncs and renames its snapshot file would, before the meta
 * goes to wal_save_snapshot_meta(). The previous snapshot's bytes are kept
 * until that meta is durable: if saving it fails, the disk may name either
 * snapshot, and the restart takes the one wal_open() finds.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "memfs.h"
#include "sim.h"
#include "storage.h"
#include "wal.h"

/* ---------------------------------------------------------------------- */
/* The seam over the WAL                                                  */

struct stage_chunk
{
    struct raft_snapshot_meta meta;
    uint64_t offset;
    uint32_t len;
    uint8_t *data;
};

struct walstore
{
    struct memfs fs;
    struct wal_options opts;
    struct wal *wal; /* NULL between a crash and the next load */
    struct wal_loaded loaded;

    /* load() on a running node (the checkers ask what is durable): a second
     * WAL opened on a copy of the durable image, kept until the next
     * call. */
    struct memfs probe_fs;
    struct wal *probe;
    struct wal_loaded probe_loaded;
    uint64_t probe_gen;                   /* fs.durable_gen it was taken at */
    struct storage_wal_stats probe_stats; /* discarded */

    /* The snapshot: its meta is in the WAL's snapshot.meta, its bytes here
     * (durable as soon as they are saved). */
    bool has_snap;
    struct raft_snapshot_meta snap;
    uint8_t *snap_data;
    /* The snapshot before it, while the meta naming the new one may not be
     * durable (its save failed on an injected fault). */
    bool prev_live, prev_has;
    struct raft_snapshot_meta prev;
    uint8_t *prev_data;

    struct sim_iofaults *faults; /* borrowed; NULL: none */

    /* The snapshot being received: durable staged bytes, and the chunks
     * written since the last sync. */
    raft_index stage_index;
    uint8_t *stage;
    uint64_t stage_len, stage_cap;
    struct stage_chunk *chunks;
    size_t n_chunks, cap_chunks;

    size_t unsynced; /* seam writes since the last sync */
    char errmsg[512];
};

struct storage_wal_stats storage_wal_totals;

static int fail(struct walstore *w, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int fail(struct walstore *w, int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(w->errmsg, sizeof(w->errmsg), fmt, ap);
    va_end(ap);
    return code;
}

/* Starts a seam call: faults injected from now on explain its failure.
 * Faults left from an earlier call were absorbed by the WAL: that call
 * succeeded (a failed one consumes them in fault_fail()). */
static void begin(struct walstore *w)
{
    if (w->faults != NULL) {
        if (w->faults->hit != 0) {
            storage_wal_totals.fault_absorbed++;
        }
        w->faults->hit = 0;
        w->faults->first[0] = '\0';
    }
}

/* WAL call @what on @wal failed with @rc after faults @f injected during
 * it. That is the node's cue to halt (SIM_EFAULT) only if the WAL did what
 * it must: return the error injected (EIO or ENOSPC), poison itself, and
 * refuse a retry: after a failed sync the kernel may have dropped the
 * unsynced pages, so a retried sync could succeed without them. */
static int fault_fail(struct walstore *w,
                      struct wal *wal,
                      const char *what,
                      int rc)
{
    const struct sim_iofaults *f = w->faults;
    char msg[256];
    snprintf(msg, sizeof(msg), "%s", wal_errmsg(wal));
    if (!(rc == STORAGE_EIO && (f->hit & IOF_HIT_EIO) != 0) &&
        !(rc == STORAGE_ENOSPC && (f->hit & IOF_HIT_ENOSPC) != 0)) {
        return fail(w, SIM_EWAL, "%s: %s after an injected fault (%s): %s",
                    what, storage_strerror(rc), f->first, msg);
    }
    if (!wal_poisoned(wal)) {
        return fail(w, SIM_EWAL,
                    "%s: %s after an injected fault (%s), but the wal is not "
                    "poisoned: %s",
                    what, storage_strerror(rc), f->first, msg);
    }
    raft_index durable = wal_durable_index(wal);
    int again = wal_sync(wal, NULL);
    if (again != STORAGE_EPOISONED || wal_durable_index(wal) != durable) {
        return fail(w, SIM_EWAL,
                    "%s: %s after an injected fault (%s); a retried "
                    "wal_sync() returned %s and durable index %llu (was "
                    "%llu)",
                    what, storage_strerror(rc), f->first,
                    storage_strerror(again),
                    (unsigned long long)wal_durable_index(wal),
                    (unsigned long long)durable);
    }
    w->faults->hit = 0; /* consumed: the node halts on it */
    return fail(w, SIM_EFAULT, "%s: %s: %s (injected %s)", what,
                storage_strerror(rc), msg, f->first);
}

/* A WAL call failed: the real storage refused or broke, not the contract
 * the simulator checks - unless an injected fault explains it. */
static int wal_fail(struct walstore *w, const char *what, int rc)
{
    if (w->wal != NULL && w->faults != NULL && w->faults->hit != 0) {
        return fault_fail(w, w->wal, what, rc);
    }
    return fail(w, SIM_EWAL, "%s: %s: %s", what, storage_strerror(rc),
                w->wal != NULL ? wal_errmsg(w->wal) : "");
}

/* Counts what recovery repaired (only the counts of the live opens, not
 * of the probes, reach the totals: see open_wal()). */
static void log_cb(void *ctx, int level, const char *msg)
{
    struct storage_wal_stats *st = ctx;
    if (level >= STORAGE_LOG_WARN) {
        st->warnings++;
    }
    if (strstr(msg, "torn tail") != NULL) {
        st->torn_tails++;
    } else if (strstr(msg, "removed leftover") != NULL) {
        st->tmps_removed++;
    } else if (strstr(msg, "but the snapshot says") != NULL) {
        st->snapshot_drops++;
    } else if (strstr(msg, "commit hint") != NULL) {
        st->commit_clamps++;
    }
}

/* Opens a WAL over @fs into *@wal and *@loaded. */
static int open_on(struct walstore *w,
                   struct memfs *fs,
                   struct wal **wal,
                   struct wal_loaded *loaded,
                   const char *what)
{
    struct wal_options opts = w->opts;
    opts.io = &fs->io;
    opts.log_ctx = fs == &w->fs ? &storage_wal_totals : &w->probe_stats;
    int rc = wal_create(&opts, wal);
    if (rc != 0) {
        *wal = NULL;
        return wal_fail(w, "wal_create", rc);
    }
    rc = wal_open(*wal, fs->dir, loaded);
    if (rc != 0) {
        char call[96];
        snprintf(call, sizeof(call), "wal_open %s", what);
        if (fs->faults != NULL && fs->faults->hit != 0) {
            rc = fault_fail(w, *wal, call, rc);
        } else {
            rc = fail(w, SIM_EWAL, "%s: %s: %s", call, storage_strerror(rc),
                      wal_errmsg(*wal));
        }
        wal_destroy(*wal);
        *wal = NULL;
    }
    return rc;
}

static int open_wal(struct walstore *w)
{
    int rc = open_on(w, &w->fs, &w->wal, &w->loaded, "after a crash");
    if (rc != 0) {
        return rc;
    }
    storage_wal_totals.opens++;
    storage_wal_totals.repairs += w->loaded.repairs;
    storage_wal_totals.torn_bytes += w->loaded.torn_bytes;
    return 0;
}

static void probe_free(struct walstore *w)
{
    if (w->probe != NULL) {
        wal_loaded_free(w->probe, &w->probe_loaded);
        wal_destroy(w->probe);
        w->probe = NULL;
    }
    memfs_free(&w->probe_fs);
    memfs_init(&w->probe_fs, w->fs.dir);
}

static int writable(struct walstore *w)
{
    if (w->wal == NULL) {
        return fail(w, SIM_ESTORAGE, "write to a crashed node's storage");
    }
    return 0;
}

/* Applies one staged chunk to the durable staging area (disk.c's rules). */
static int stage_apply(struct walstore *w, const struct stage_chunk *c)
{
    raft_index index = c->meta.index;
    if (c->offset == 0 || index != w->stage_index) {
        if (c->offset != 0) {
            return fail(w, SIM_ESTORAGE,
                        "snapshot chunk at offset %llu for snapshot %llu, but "
                        "staging holds snapshot %llu",
                        (unsigned long long)c->offset,
                        (unsigned long long)index,
                        (unsigned long long)w->stage_index);
        }
        w->stage_index = index;
        w->stage_len = 0;
    }
    if (c->offset > w->stage_len) {
        return fail(w, SIM_ESTORAGE,
                    "snapshot %llu chunk at offset %llu leaves a gap after "
                    "%llu staged bytes",
                    (unsigned long long)index, (unsigned long long)c->offset,
                    (unsigned long long)w->stage_len);
    }
    uint64_t end = c->offset + c->len;
    if (end > w->stage_cap) {
        w->stage = realloc(w->stage, (size_t)end);
        if (w->stage == NULL) {
            abort();
        }
        w->stage_cap = end;
    }
    if (c->len > 0) {
        memcpy(w->stage + c->offset, c->data, c->len);
    }
    if (end > w->stage_len) {
        w->stage_len = end;
    }
    return 0;
}

/* Applies the first @keep unsynced chunks and forgets all of them. */
static int stage_flush(struct walstore *w, size_t keep)
{
    int rc = 0;
    for (size_t i = 0; i < w->n_chunks; i++) {
        if (i < keep && rc == 0) {
            rc = stage_apply(w, &w->chunks[i]);
        }
        free(w->chunks[i].data);
    }
    w->n_chunks = 0;
    return rc;
}

/* Makes @meta and @data (owned from now on) the node's snapshot. The one
 * before stays until snapshot_saved(): while the new meta is not durable
 * the disk may still name the old snapshot. */
static void set_snapshot(struct walstore *w,
                         const struct raft_snapshot_meta *meta,
                         uint8_t *data)
{
    free(w->prev_data);
    w->prev_live = true;
    w->prev_has = w->has_snap;
    w->prev = w->snap;
    w->prev_data = w->snap_data;
    w->has_snap = true;
    w->snap = *meta;
    w->snap_data = data;
}

/* The meta naming the current snapshot is durable: the old one goes. */
static void snapshot_saved(struct walstore *w)
{
    free(w->prev_data);
    w->prev_data = NULL;
    w->prev_live = false;
}

static bool snapshot_is(const struct wal_loaded *l,
                        bool has,
                        const struct raft_snapshot_meta *meta)
{
    if (!l->has_snapshot || !has) {
        return l->has_snapshot == has;
    }
    return l->snapshot.index == meta->index && l->snapshot.term == meta->term &&
           l->snapshot.size == meta->size;
}

/* The log behind a saved snapshot: reset it if it does not reach past the
 * snapshot (or @reset_log), then drop whole segments below it. The meta is
 * already durable, so wal_open() reconciles whatever of this a crash
 * loses. */
static int log_behind_snapshot(struct walstore *w,
                               const struct raft_snapshot_meta *meta,
                               bool reset_log)
{
    int rc = 0;
    if (reset_log || wal_last_index(w->wal) < meta->index) {
        rc = wal_reset(w->wal, meta->index + 1);
        if (rc != 0) {
            return wal_fail(w, "wal_reset", rc);
        }
    }
    rc = wal_compact(w->wal, meta->index + 1);
    if (rc != 0) {
        return wal_fail(w, "wal_compact", rc);
    }
    return 0;
}

static int ws_stage_chunk(void *ctx, const struct raft_msg_snapshot *chunk)
{
    struct walstore *w = ctx;
    if (sim_grow((void **)&w->chunks, &w->cap_chunks, w->n_chunks + 1,
                 sizeof(*w->chunks)) != 0) {
        abort();
    }
    struct stage_chunk *c = &w->chunks[w->n_chunks++];
    c->meta = chunk->meta;
    c->offset = chunk->offset;
    c->len = chunk->len;
    c->data = sim_xmalloc(chunk->len > 0 ? chunk->len : 1);
    if (chunk->len > 0) {
        memcpy(c->data, chunk->data, chunk->len);
    }
    w->unsynced++;
    return 0;
}

static int ws_install_staged(void *ctx,
                             const struct raft_snapshot_meta *meta,
                             bool reset_log)
{
    struct walstore *w = ctx;
    int rc = writable(w);
    if (rc != 0) {
        return rc;
    }
    begin(w);
    w->unsynced++;
    /* A driver fsyncs the staged file before it renames it into place and
     * records its meta: the chunks of this batch become durable first. */
    rc = stage_flush(w, w->n_chunks);
    if (rc != 0) {
        return rc;
    }
    if (w->stage_index != meta->index || w->stage_len != meta->size) {
        return fail(w, SIM_ESTORAGE,
                    "snapshot %llu (%llu bytes) installed, but staging holds "
                    "%llu bytes of snapshot %llu",
                    (unsigned long long)meta->index,
                    (unsigned long long)meta->size,
                    (unsigned long long)w->stage_len,
                    (unsigned long long)w->stage_index);
    }
    set_snapshot(w, meta, w->stage);
    w->stage = NULL;
    w->stage_len = w->stage_cap = 0;
    w->stage_index = 0;
    rc = wal_save_snapshot_meta(w->wal, meta);
    if (rc != 0) {
        return wal_fail(w, "wal_save_snapshot_meta", rc);
    }
    snapshot_saved(w);
    return log_behind_snapshot(w, meta, reset_log);
}

static int ws_save_snapshot(void *ctx,
                            const struct raft_snapshot_meta *meta,
                            const uint8_t *data)
{
    struct walstore *w = ctx;
    int rc = writable(w);
    if (rc != 0) {
        return rc;
    }
    if (w->unsynced != 0) {
        return fail(w, SIM_ESTORAGE,
                    "application snapshot saved over unsynced writes");
    }
    begin(w);
    uint8_t *copy = sim_xmalloc(meta->size > 0 ? (size_t)meta->size : 1);
    if (meta->size > 0) {
        memcpy(copy, data, (size_t)meta->size);
    }
    set_snapshot(w, meta, copy);
    rc = wal_save_snapshot_meta(w->wal, meta);
    if (rc != 0) {
        return wal_fail(w, "wal_save_snapshot_meta", rc);
    }
    snapshot_saved(w);
    rc = log_behind_snapshot(w, meta, false);
    if (rc == 0) {
        /* Durable on return, as the seam promises: a reset the log needed
         * is synced too. */
        rc = wal_sync(w->wal, NULL);
        if (rc != 0) {
            return wal_fail(w, "wal_sync", rc);
        }
    }
    return rc;
}

static int ws_append(void *ctx, const struct raft_entry *entries, size_t n)
{
    struct walstore *w = ctx;
    int rc = writable(w);
    if (rc != 0 || n == 0) {
        return rc;
    }
    raft_index floor = w->has_snap ? w->snap.index : 0;
    if (entries[0].index <= floor) {
        return fail(w, SIM_ESTORAGE,
                    "entry %llu written at or below snapshot "
                    "%llu",
                    (unsigned long long)entries[0].index,
                    (unsigned long long)floor);
    }
    if (entries[0].index > wal_last_index(w->wal) + 1) {
        return fail(w, SIM_ESTORAGE,
                    "entry %llu written after last entry %llu (gap)",
                    (unsigned long long)entries[0].index,
                    (unsigned long long)wal_last_index(w->wal));
    }
    begin(w);
    w->unsynced += n;
    rc = wal_append(w->wal, entries, n);
    if (rc != 0) {
        return wal_fail(w, "wal_append", rc);
    }
    return 0;
}

static int ws_save_hard_state(void *ctx, const struct raft_hard_state *hs)
{
    struct walstore *w = ctx;
    int rc = writable(w);
    if (rc != 0) {
        return rc;
    }
    begin(w);
    w->unsynced++;
    rc = wal_save_hard_state(w->wal, hs);
    if (rc != 0) {
        return wal_fail(w, "wal_save_hard_state", rc);
    }
    return 0;
}

static int ws_sync(void *ctx)
{
    struct walstore *w = ctx;
    int rc = writable(w);
    if (rc != 0) {
        return rc;
    }
    rc = stage_flush(w, w->n_chunks);
    if (rc != 0) {
        return rc;
    }
    begin(w);
    rc = wal_sync(w->wal, NULL);
    if (rc != 0) {
        return wal_fail(w, "wal_sync", rc);
    }
    w->unsynced = 0;
    if (wal_durable_index(w->wal) != wal_last_index(w->wal)) {
        return fail(w, SIM_EWAL,
                    "wal_sync: durable index %llu after a sync, last index "
                    "%llu",
                    (unsigned long long)wal_durable_index(w->wal),
                    (unsigned long long)wal_last_index(w->wal));
    }
    return 0;
}

/* The process dies: the WAL goes, and its destructor may not touch the
 * files. */
static void process_dies(struct walstore *w)
{
    probe_free(w);
    if (w->wal != NULL) {
        w->fs.dead = true;
        wal_loaded_free(w->wal, &w->loaded);
        wal_destroy(w->wal);
        w->wal = NULL;
        w->fs.dead = false;
    }
    w->unsynced = 0;
}

static int ws_crash(void *ctx, struct sim_rng *rng, bool tear)
{
    struct walstore *w = ctx;
    process_dies(w);
    size_t keep = 0;
    if (tear && w->n_chunks > 0) {
        keep = (size_t)sim_rng_below(rng, w->n_chunks + 1);
    }
    int rc = stage_flush(w, keep);
    uint64_t kept = memfs_crash(&w->fs, rng, tear);
    storage_wal_totals.crashes++;
    if (rc != 0) {
        return rc;
    }
    return (int)(kept + keep > 1000000 ? 1000000 : kept + keep);
}

static int ws_exit(void *ctx)
{
    struct walstore *w = ctx;
    /* ballotd exits when storage fails; the machine keeps what the process
     * handed to it: the page cache and the staged snapshot chunks. */
    process_dies(w);
    int rc = stage_flush(w, w->n_chunks);
    memfs_exit(&w->fs);
    return rc;
}

static int ws_load(void *ctx, struct sim_durable *out)
{
    struct walstore *w = ctx;
    const struct wal_loaded *l;
    int rc;
    memset(out, 0, sizeof(*out));
    if (w->wal != NULL && w->probe != NULL &&
        w->probe_gen == w->fs.durable_gen) {
        l = &w->probe_loaded; /* nothing durable changed since */
    } else if (w->wal != NULL) {
        /* The node is running: recover what a power loss now would leave,
         * from a copy, without touching the live files. */
        probe_free(w);
        w->probe_gen = w->fs.durable_gen;
        memfs_clone_durable(&w->probe_fs, &w->fs);
        rc = open_on(w, &w->probe_fs, &w->probe, &w->probe_loaded,
                     "on the durable image of a running node");
        if (rc != 0) {
            return rc;
        }
        storage_wal_totals.probes++;
        l = &w->probe_loaded;
    } else {
        probe_free(w);
        begin(w);
        rc = open_wal(w);
        if (rc != 0) {
            memfs_exit(&w->fs); /* the failed process is gone */
            return rc;
        }
        l = &w->loaded;
        if (w->prev_live && !snapshot_is(l, w->has_snap, &w->snap) &&
            snapshot_is(l, w->prev_has, &w->prev)) {
            /* Saving the newer snapshot's meta failed before it was
             * durable: the node restarts from the one before. */
            free(w->snap_data);
            w->has_snap = w->prev_has;
            w->snap = w->prev;
            w->snap_data = w->prev_data;
            w->prev_data = NULL;
        }
        snapshot_saved(w);
    }
    if (!snapshot_is(l, w->has_snap, &w->snap)) {
        return fail(w, SIM_EWAL,
                    "wal_open: snapshot meta %llu/%llu (%s), but the "
                    "snapshot saved last is %llu/%llu (%s)",
                    (unsigned long long)l->snapshot.index,
                    (unsigned long long)l->snapshot.term,
                    l->has_snapshot ? "present" : "none",
                    (unsigned long long)w->snap.index,
                    (unsigned long long)w->snap.term,
                    w->has_snap ? "present" : "none");
    }
    raft_index expect = l->has_snapshot ? l->snapshot.index + 1 : 1;
    if (l->n_entries > 0 && l->entries[0].index != expect) {
        return fail(w, SIM_EWAL,
                    "wal_open: entries start at %llu after snapshot %llu",
                    (unsigned long long)l->entries[0].index,
                    (unsigned long long)(expect - 1));
    }
    out->hs = l->hs;
    out->has_snapshot = l->has_snapshot;
    if (l->has_snapshot) {
        out->snap = l->snapshot;
        out->snap_data = w->snap_data;
    }
    out->entries = l->entries;
    out->n_entries = l->n_entries;
    return 0;
}

static const uint8_t *ws_snapshot_data(void *ctx,
                                       raft_index index,
                                       const struct raft_snapshot_meta **meta)
{
    struct walstore *w = ctx;
    if (!w->has_snap || w->snap.index != index) {
        return NULL;
    }
    *meta = &w->snap;
    return w->snap_data;
}

static size_t ws_unsynced(void *ctx)
{
    struct walstore *w = ctx;
    return w->unsynced;
}

static const char *ws_errmsg(void *ctx)
{
    struct walstore *w = ctx;
    return w->errmsg;
}

static void ws_destroy(void *ctx)
{
    struct walstore *w = ctx;
    if (w->wal != NULL) {
        wal_loaded_free(w->wal, &w->loaded);
        wal_destroy(w->wal);
    }
    probe_free(w);
    memfs_free(&w->probe_fs);
    stage_flush(w, 0);
    free(w->chunks);
    free(w->stage);
    free(w->snap_data);
    free(w->prev_data);
    memfs_free(&w->fs);
    free(w);
}

static const struct sim_storage_ops walstore_ops = {
    .stage_chunk = ws_stage_chunk,
    .install_staged = ws_install_staged,
    .save_snapshot = ws_save_snapshot,
    .append = ws_append,
    .save_hard_state = ws_save_hard_state,
    .sync = ws_sync,
    .crash = ws_crash,
    .exit = ws_exit,
    .load = ws_load,
    .snapshot_data = ws_snapshot_data,
    .unsynced = ws_unsynced,
    .errmsg = ws_errmsg,
    .destroy = ws_destroy,
};

int storage_wal_create(struct sim_storage *out,
                       uint64_t seed,
                       raft_id id,
                       struct sim_iofaults *faults)
{
    struct walstore *w = sim_xcalloc(1, sizeof(*w));
    char dir[MF_NAME_MAX];
    snprintf(dir, sizeof(dir), "/sim/n%llu/wal", (unsigned long long)id);
    memfs_init(&w->fs, dir);
    memfs_init(&w->probe_fs, dir);
    /* Only the node's own files fail; the probes read a copy without
     * faults. */
    w->faults = faults;
    w->fs.faults = faults;

    /* Swarm the WAL's own settings too: small segments so that rollover
     * and compaction happen in every run, and each preallocation mode. */
    static const uint32_t seg_bytes[] = {4096, 8192, 16384, 65536};
    static const enum wal_prealloc prealloc[] = {
        WAL_PREALLOC_ZERO, WAL_PREALLOC_ZERO, WAL_PREALLOC_NONE,
        WAL_PREALLOC_FALLOCATE};
    uint64_t pick = sim_mix64(seed ^ 0x77616c6f707473ull);
    wal_options_default(&w->opts);
    w->opts.io = &w->fs.io;
    w->opts.log = log_cb;
    w->opts.log_ctx = &storage_wal_totals;
    w->opts.segment_bytes = seg_bytes[pick % 4];
    w->opts.prealloc = prealloc[(pick >> 8) % 4];

    if (open_wal(w) != 0) {
        fprintf(stderr, "sim: %s\n", w->errmsg);
        ws_destroy(w);
        return -1;
    }
    /* Nothing was loaded from an empty directory. */
    wal_loaded_free(w->wal, &w->loaded);
    out->ops = &walstore_ops;
    out->ctx = w;
    return 0;
}
