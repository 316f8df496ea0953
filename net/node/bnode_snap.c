/*
 * bnode_snap.c - snapshots in the node driver.
 *
 * Taking one: once `snapshot_every` entries were applied since the last
 * snapshot, a worker thread writes a compacting copy of LMDB to
 * DATA/snap/<index>.snap (kv_snapshot_create: writers are held back only
 * until its read transaction starts). Back on the loop, once a checkpoint
 * (bnode_ckpt.c, on a worker too) has made the store on disk at least as
 * new as the snapshot, the core is told (raft_snapshot_taken: it compacts its
 * in-memory log, keeping `snapshot_trailing` entries), the WAL records the
 * snapshot as its new base and drops whole segments below the core's first
 * index, and older snapshot files are removed.
 *
 * Sending one: the core asks for chunks (RAFT_MSG_SNAPSHOT with no data);
 * they are read from the snapshot file at the offset the core names, so a
 * transfer resumes where the follower says it stopped.
 *
 * Installing one (follower): chunks are staged by kv; when the last one
 * arrives the install runs on the loop thread, before the batch's entries
 * are persisted, in this order:
 *
 *   1. kv_snapshot_stage_finish   verify the checksum, sync the staging area
 *   2. DATA/snapshot.pending      the meta, written and synced atomically
 *   3. kv_snapshot_install        LMDB switches atomically (CURRENT rename)
 *   4. WAL: snapshot meta, reset or keep the log, sync
 *   5. remove snapshot.pending
 *
 * A crash between 3 and 5 leaves LMDB newer than the WAL's base; at the
 * next start snap_recover() sees the pending file, finds LMDB at its index
 * and completes step 4. A crash before 3 leaves LMDB as it was; the pending
 * file is dropped and the leader sends the snapshot again.
 *
 * The install replaces LMDB's environment, so it waits until no worker
 * copies the store (an export, a snapshot of our own) or syncs it (a
 * checkpoint). It waits without blocking the loop: the node stays frozen,
 * as while the disk thread persists, and the workers' callbacks resume it
 * (bnode_install_resume()).
 *
 * A snapshot that does not verify (a corrupt or incomplete transfer) is
 * refused: the core already took it as its state, so the node drops the
 * update (nothing of it is durable or acknowledged yet) and restarts its
 * core from the disk, as a crash before persisting would; the leader hears
 * no acknowledgement, resends the last chunk, is told to start from
 * offset 0, and sends the snapshot again.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bnode_internal.h"
#include "format.h"
#include "nlog.h"

/* ---- the pending-install file ------------------------------------------ */

static void pending_path(const struct bnode *node, char *buf, size_t len)
{
    snprintf(buf, len, "%s/snapshot.pending", node->data_dir);
}

static int sync_dir(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY);
    if (fd < 0) {
        return -errno;
    }
    int rv = fsync(fd) == 0 ? 0 : -errno;
    close(fd);
    return rv;
}

/* Layout: u8 reset_log, then format_snapmeta_encode()'s bytes. */
static int pending_write(struct bnode *node,
                         const struct raft_snapshot_meta *meta,
                         bool reset_log)
{
    uint8_t buf[1 + FORMAT_SNAPMETA_MAX_BYTES];
    char path[4300], tmp[4310];
    size_t len;
    buf[0] = reset_log ? 1 : 0;
    format_snapmeta_encode(meta, buf + 1, &len);
    pending_path(node, path, sizeof(path));
    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0) {
        return -errno;
    }
    ssize_t w = write(fd, buf, len + 1);
    int rv = (w == (ssize_t)(len + 1) && fsync(fd) == 0) ? 0 : -EIO;
    close(fd);
    if (rv == 0 && rename(tmp, path) != 0) {
        rv = -errno;
    }
    if (rv == 0) {
        rv = sync_dir(node->data_dir);
    }
    return rv;
}

static int pending_read(struct bnode *node,
                        struct raft_snapshot_meta *meta,
                        bool *reset_log)
{
    uint8_t buf[1 + FORMAT_SNAPMETA_MAX_BYTES];
    char path[4300];
    const char *why = NULL;
    pending_path(node, path, sizeof(path));
    int fd = open(path, O_RDONLY);
    if (fd < 0) {
        return errno == ENOENT ? 1 : -errno;
    }
    ssize_t n = read(fd, buf, sizeof(buf));
    close(fd);
    if (n < 2 ||
        format_snapmeta_decode(buf + 1, (size_t)n - 1, meta, &why) != 0) {
        return -EINVAL;
    }
    *reset_log = buf[0] != 0;
    return 0;
}

static void pending_remove(struct bnode *node)
{
    char path[4300];
    pending_path(node, path, sizeof(path));
    unlink(path);
    (void)sync_dir(node->data_dir);
}

/* Step 4 of an install: the WAL takes the snapshot as its base. */
static int wal_adopt(struct bnode *node,
                     const struct raft_snapshot_meta *meta,
                     bool reset_log)
{
    int rv = wal_save_snapshot_meta(node->wal, meta);
    if (rv == 0 && reset_log) {
        rv = wal_reset(node->wal, meta->index + 1);
    }
    if (rv == 0) {
        rv = wal_sync(node->wal, NULL);
    }
    return rv;
}

int snap_recover(struct bnode *node, char *err, size_t err_len)
{
    struct raft_snapshot_meta meta;
    struct kv_status ks;
    bool reset_log;
    int rv = pending_read(node, &meta, &reset_log);
    if (rv == 1) {
        return 0; /* nothing was interrupted */
    }
    if (rv != 0 || kv_status(node->kv, &ks) != 0) {
        snprintf(err, err_len, "%s/snapshot.pending is unreadable",
                 node->data_dir);
        return BNODE_ESTORAGE;
    }
    if (ks.applied >= meta.index) {
        nlog(node, BNODE_LOG_WARN,
             "completing the install of snapshot %llu that a crash "
             "interrupted",
             (unsigned long long)meta.index);
        if (wal_adopt(node, &meta, reset_log) != 0) {
            snprintf(err, err_len, "%s", wal_errmsg(node->wal));
            return BNODE_ESTORAGE;
        }
    } else {
        nlog(node, BNODE_LOG_WARN,
             "dropping snapshot %llu whose install a crash interrupted "
             "(the leader sends it again)",
             (unsigned long long)meta.index);
    }
    pending_remove(node);
    return 1; /* the WAL changed: read it again */
}

/* ---- sending ----------------------------------------------------------- */

static void snap_file(const struct bnode *node,
                      raft_index index,
                      char *buf,
                      size_t len)
{
    snprintf(buf, len, "%s/%020llu.snap", node->snap_dir,
             (unsigned long long)index);
}

void snap_send(struct bnode *node, const struct raft_message *m)
{
    const struct raft_msg_snapshot *c = &m->u.snapshot;
    char path[4400], err[256];
    if (node->send_snap == NULL ||
        kv_snapshot_info(node->send_snap)->applied != c->meta.index) {
        if (node->send_snap != NULL) {
            kv_snapshot_close(node->send_snap);
            node->send_snap = NULL;
        }
        snap_file(node, c->meta.index, path, sizeof(path));
        if (kv_snapshot_open(path, NULL, &node->send_snap, err, sizeof(err)) !=
            0) {
            /* Gone (a newer one replaced it): the core resends the newest
             * after its idle timeout. */
            nlog(node, BNODE_LOG_WARN, "cannot send snapshot %llu: %s",
                 (unsigned long long)c->meta.index, err);
            node->send_snap = NULL;
            return;
        }
    }
    uint8_t *data = malloc(c->len ? c->len : 1);
    size_t n = 0;
    if (data == NULL ||
        kv_snapshot_read_chunk(node->send_snap, c->offset, data, c->len, &n) !=
            0 ||
        n != c->len) {
        free(data);
        return;
    }
    struct raft_message copy = *m;
    copy.u.snapshot.data = data;
    (void)transport_send(node->transport, &copy);
    free(data);
}

/* ---- installing -------------------------------------------------------- */

/* Whether a kv error of the received snapshot is the transfer's fault (bad
 * bytes, missing bytes) rather than this node's storage: such a snapshot is
 * refused and sent again, never a reason to halt. */
static bool transfer_fault(int rv)
{
    return rv == KV_ECORRUPT || rv == KV_EINVAL || rv == KV_EVERSION;
}

static int install(struct bnode *node,
                   const struct raft_snapshot_meta *meta,
                   bool reset_log)
{
    struct kv_snapshot_info info;
    char msg[256];
    int rv = kv_snapshot_stage_finish(node->kv, &info);
    if (rv == 0 && (info.applied != meta->index || info.size != meta->size)) {
        snprintf(msg, sizeof(msg), "it holds index %llu (%llu bytes)",
                 (unsigned long long)info.applied,
                 (unsigned long long)info.size);
        rv = KV_ECORRUPT;
    } else if (rv != 0) {
        kv_errmsg(node->kv, msg, sizeof(msg));
    }
    if (rv != 0) {
        nlog(node, BNODE_LOG_ERROR,
             "received snapshot %llu does not verify: %s",
             (unsigned long long)meta->index, msg);
        return transfer_fault(rv) ? SNAP_REFUSED : BNODE_ESTORAGE;
    }
    if (pending_write(node, meta, reset_log) != 0) {
        return BNODE_ESTORAGE;
    }
    rv = kv_snapshot_install(node->kv);
    if (rv != 0) {
        kv_errmsg(node->kv, msg, sizeof(msg));
        nlog(node, BNODE_LOG_ERROR, "installing snapshot %llu: %s",
             (unsigned long long)meta->index, msg);
        return BNODE_ESTORAGE;
    }
    if (wal_adopt(node, meta, reset_log) != 0) {
        nlog(node, BNODE_LOG_ERROR, "wal: %s", wal_errmsg(node->wal));
        return BNODE_ESTORAGE;
    }
    pending_remove(node);
    node->snap_staging = false;
    nlog(node, BNODE_LOG_INFO,
         "installed snapshot %llu (%llu bytes) from the leader",
         (unsigned long long)meta->index, (unsigned long long)meta->size);
    /* The snapshot may record members added since this node last heard. */
    (void)bnode_members_sync(node);
    /* Watchers learn what the snapshot brought (or that their history
     * is gone). */
    bnode_watch_deliver(node);
    return 0;
}

bool snap_install_ready(const struct bnode *node)
{
    /* kv_snapshot_install() replaces the environment: no worker may still
     * copy it (a snapshot of our own or an export), nor sync it for a
     * checkpoint. */
    return atomic_load(&node->snap_copies) == 0 &&
           !atomic_load(&node->ckpt_syncing);
}

int snap_install(struct bnode *node, const struct raft_update *u)
{
    node->install_waiting = false;
    ckpt_wait(node); /* ends the checkpoint whose sync has returned */
    persist_claim_wait(node->persist); /* install() writes to the WAL */
    uint64_t t0 = uv_hrtime();
    int rv = install(node, u->snapshot, u->snapshot_reset_log);
    persist_release(node->persist);
    if (rv == 0) {
        histo_add(&node->histos.snap_install_us, histo_us(uv_hrtime() - t0));
    }
    if (rv == SNAP_REFUSED) {
        node->snap_staging = false;
        return rv;
    }
    if (rv != 0) {
        bnode_halt(node, "cannot install the leader's snapshot");
        return rv;
    }
    node->last_snap_index = u->snapshot->index;
    /* The staged file, synced, became LMDB's environment. */
    if (node->ckpt_durable < u->snapshot->index) {
        node->ckpt_durable = u->snapshot->index;
    }
    /* The staged file became LMDB's environment; take our own snapshot
     * soon, so this node can send one if it leads. */
    node->snap_soon = true;
    return 0;
}

int snap_receive(struct bnode *node, const struct raft_update *u)
{
    for (size_t i = 0; i < u->n_snapshot_chunks; i++) {
        const struct raft_msg_snapshot *c = &u->snapshot_chunks[i];
        int rv = 0;
        if (c->offset == 0) {
            rv = kv_snapshot_stage_begin(node->kv);
            node->snap_staging = rv == 0;
            node->snap_transfer_ns = uv_hrtime();
        }
        if (rv == 0 && node->snap_staging) {
            rv = kv_snapshot_stage_write(node->kv, c->offset, c->data, c->len);
        }
        if (rv != 0) {
            /* A broken transfer is not a storage failure: the chunk is
             * acknowledged, and the completed snapshot is refused below
             * (or by its checksum), which makes the leader start over. */
            node->snap_staging = false;
        }
    }
    if (u->snapshot == NULL) {
        return 0;
    }
    if (!node->snap_staging) {
        nlog(node, BNODE_LOG_ERROR,
             "snapshot %llu completed but its chunks were not all staged",
             (unsigned long long)u->snapshot->index);
        return SNAP_REFUSED;
    }
    histo_add(&node->histos.snap_transfer_us,
              histo_us(uv_hrtime() - node->snap_transfer_ns));
    if (!snap_install_ready(node)) {
        /* Wait, without blocking the loop, for the copies and the sync
         * (the node stays frozen; their callbacks resume the install). */
        node->install_waiting = true;
        return SNAP_WAIT;
    }
    return snap_install(node, u);
}

/* ---- writing snapshot files on workers --------------------------------- */

static void job_work(uv_work_t *req)
{
    struct snap_job *job = req->data;
    job->snap = NULL;
    job->status = kv_snapshot_create(job->node->kv, job->path, &job->snap);
    atomic_fetch_sub(&job->node->snap_copies, 1);
}

static void job_after(uv_work_t *req, int status)
{
    struct snap_job *job = req->data;
    struct bnode *node = job->node;
    node->snap_jobs--;
    if (status == UV_ECANCELED) {
        /* Nothing cancels these jobs today; if something did, the copy
         * never ran. */
        atomic_fetch_sub(&node->snap_copies, 1);
        job->snap = NULL;
        job->status = KV_EIO;
    }
    job->done(job);
    bnode_install_resume(node); /* an install may wait for this copy */
    if (node->stopping && !node->frozen) {
        bnode_stop_now(node); /* it waited for the workers */
    }
}

int snap_job_start(struct snap_job *job)
{
    struct bnode *node = job->node;
    atomic_fetch_add(&node->snap_copies, 1);
    node->snap_jobs++;
    job->work.data = job;
    if (uv_queue_work(node->loop, &job->work, job_work, job_after) != 0) {
        atomic_fetch_sub(&node->snap_copies, 1);
        node->snap_jobs--;
        return BNODE_ENOMEM;
    }
    return 0;
}

/* ---- taking ------------------------------------------------------------ */

static void create_done(struct snap_job *job)
{
    struct bnode *node = job->node;
    node->snap_creating = false;
    if (job->status != 0) {
        nlog(node, BNODE_LOG_WARN, "taking a snapshot failed: %s",
             kv_strerror(job->status));
        return;
    }
    if (node->stopping) {
        kv_snapshot_close(job->snap);
        return;
    }
    histo_add(&node->histos.snap_create_us,
              histo_us(uv_hrtime() - node->snap_create_ns));
    node->created = job->snap;
    snap_maybe_taken(node);
}

void snap_maybe_create(struct bnode *node)
{
    if (node->opts.snapshot_every == 0 || node->snap_creating ||
        node->snap_staging || node->created != NULL || node->stopping) {
        return;
    }
    raft_index applied = raft_applied_index(node->raft);
    if (!node->snap_soon &&
        applied < node->last_snap_index + node->opts.snapshot_every) {
        return;
    }
    node->snap_soon = false;
    struct snap_job *job = &node->own_snap;
    job->node = node;
    job->done = create_done;
    /* The index is only known from the copy's header: write to a fixed
     * name, then rename to the index in snap_maybe_taken(). */
    snprintf(job->path, sizeof(job->path), "%s/new.snap", node->snap_dir);
    node->snap_create_ns = uv_hrtime();
    node->snap_creating = snap_job_start(job) == 0;
}

static void remove_older(struct bnode *node, raft_index keep)
{
    DIR *d = opendir(node->snap_dir);
    struct dirent *e;
    char path[4200 + 300];
    if (d == NULL) {
        return;
    }
    while ((e = readdir(d)) != NULL) {
        unsigned long long idx;
        char tail[8];
        if (sscanf(e->d_name, "%20llu.%4s", &idx, tail) == 2 &&
            strcmp(tail, "snap") == 0 && idx < keep) {
            snprintf(path, sizeof(path), "%s/%s", node->snap_dir, e->d_name);
            unlink(path);
        }
    }
    closedir(d);
}

void snap_maybe_taken(struct bnode *node)
{
    char from[4400], to[4400];
    if (node->created == NULL || node->frozen || node->halted) {
        return;
    }
    const struct kv_snapshot_info *info = kv_snapshot_info(node->created);
    raft_index index = info->applied;
    uint64_t size = info->size;
    /* LMDB on disk must be at least as new as the WAL's new base before
     * the log below it can go: wait for a checkpoint that covers it (its
     * callback calls back). */
    if (node->ckpt_durable < index) {
        ckpt_start(node);
        return;
    }
    kv_snapshot_close(node->created);
    node->created = NULL;
    snprintf(from, sizeof(from), "%s/new.snap", node->snap_dir);
    snap_file(node, index, to, sizeof(to));
    if (rename(from, to) != 0 || sync_dir(node->snap_dir) != 0) {
        nlog(node, BNODE_LOG_WARN, "cannot keep snapshot %llu: %s",
             (unsigned long long)index, strerror(errno));
        return;
    }
    if (raft_snapshot_taken(node->raft, index, size) != 0) {
        return; /* older than what the core has: nothing to do */
    }
    const struct raft_snapshot_meta *meta = raft_snapshot_of(node->raft);
    /* The disk thread may still be zero-filling ahead. */
    persist_claim_wait(node->persist);
    if (wal_save_snapshot_meta(node->wal, meta) != 0 ||
        wal_compact(node->wal, raft_first_index(node->raft)) != 0) {
        bnode_halt(node, wal_errmsg(node->wal));
        return;
    }
    persist_release(node->persist);
    node->last_snap_index = index;
    remove_older(node, index);
    nlog(node, BNODE_LOG_INFO,
         "snapshot %llu taken (%llu bytes); log from %llu",
         (unsigned long long)index, (unsigned long long)size,
         (unsigned long long)raft_first_index(node->raft));
}

void snap_check_file(struct bnode *node)
{
    char path[4400];
    struct stat st;
    if (node->last_snap_index == 0) {
        return;
    }
    snap_file(node, node->last_snap_index, path, sizeof(path));
    if (stat(path, &st) != 0) {
        /* The WAL's base came from a snapshot installed from the leader
         * (or the file was lost): take one of our own to be able to
         * send it. */
        node->snap_soon = true;
    }
}

void snap_close(struct bnode *node)
{
    if (node->send_snap != NULL) {
        kv_snapshot_close(node->send_snap);
        node->send_snap = NULL;
    }
    if (node->created != NULL) {
        kv_snapshot_close(node->created);
        node->created = NULL;
    }
}
