/*
 * datadir.c - see datadir.h.
 *
 * A restore builds what a node has after installing a leader's snapshot
 * (bnode_snap.c) in a directory of its own, in an order that leaves a
 * directory ballotd refuses or treats as empty if it is interrupted:
 *
 *   1. DATA/kv: the snapshot staged and verified by kv (checksum, and the
 *      store's own applied index and revision), then installed;
 *   2. DATA/wal: snapshot.meta (index, term, the new configuration), a
 *      RESET to index + 1, the hard state (term, no vote, commit = index),
 *      one sync.
 *
 * Until step 2 the WAL is empty, and a node started on it would wait to
 * be contacted; an operator deletes the directory and runs the restore
 * again (it refuses a directory that is not empty).
 */
#define _XOPEN_SOURCE 700 /* nftw */
#include "datadir.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "kv.h"
#include "wal.h"

/* Bytes copied from the snapshot file into the stage at a time. */
#define RESTORE_CHUNK_BYTES (1024u * 1024u)

bool datadir_initial_conf(const struct bnode_options *opts,
                          struct raft_conf *conf)
{
    bool self_voter = false;
    memset(conf, 0, sizeof(*conf));
    for (unsigned i = 0; i < opts->n_members; i++) {
        raft_id id = opts->members[i].id;
        bool voter = opts->n_voters == 0;
        for (unsigned j = 0; j < opts->n_voters; j++) {
            voter |= opts->voters[j] == id;
        }
        if (voter) {
            conf->members[conf->n].id = id;
            conf->members[conf->n].role = RAFT_VOTER;
            conf->n++;
            self_voter |= id == opts->id;
        }
    }
    return self_voter;
}

#if defined(__GNUC__)
__attribute__((format(printf, 4, 5)))
#endif
static int
fail(int code, char *err, size_t err_len, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, err_len, fmt, ap);
    va_end(ap);
    return code;
}

int datadir_sync_dir(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY);
    if (fd < 0) {
        return -1;
    }
    int rv = fsync(fd);
    close(fd);
    return rv;
}

/* Makes sure @dir is a directory with nothing in it, creating it if it is
 * missing (@created says so). */
static int prepare_empty(const char *dir, bool *created, char *err, size_t len)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    *created = false;
    if (d == NULL) {
        if (errno != ENOENT) {
            return fail(DATADIR_EIO, err, len, "%s: %s", dir, strerror(errno));
        }
        if (mkdir(dir, 0755) != 0) {
            return fail(DATADIR_EIO, err, len, "cannot create %s: %s", dir,
                        strerror(errno));
        }
        *created = true;
        return 0;
    }
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0) {
            closedir(d);
            return fail(DATADIR_EEXIST, err, len,
                        "%s is not empty: a restore creates a new data "
                        "directory and never overwrites one",
                        dir);
        }
    }
    closedir(d);
    return 0;
}

static int remove_entry(const char *path,
                        const struct stat *sb,
                        int flag,
                        struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    remove(path);
    return 0;
}

/* Removes what a failed restore created in @dir (which was empty). */
static void undo(const char *dir, bool created)
{
    char path[BNODE_PATH_MAX];
    const char *made[] = {DATADIR_KV, DATADIR_WAL};
    for (size_t i = 0; i < sizeof(made) / sizeof(made[0]); i++) {
        snprintf(path, sizeof(path), "%s/%s", dir, made[i]);
        nftw(path, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
    }
    if (created) {
        rmdir(dir);
    }
}

/* Step 1: the snapshot becomes the store of DATA/kv, through kv's own
 * receiving path (stage, verify, install), as from a leader. */
static int restore_kv(const char *dir,
                      struct kv_snapshot *snap,
                      uint64_t map_size,
                      bool keep_members,
                      char *err,
                      size_t len)
{
    uint64_t size = kv_snapshot_info(snap)->size;
    struct kv_options ko;
    struct kv_store *kv = NULL;
    char msg[256] = "";
    uint8_t *buf = NULL;
    int rv = 0, rc;

    if (mkdir(dir, 0755) != 0) {
        return fail(DATADIR_EIO, err, len, "cannot create %s: %s", dir,
                    strerror(errno));
    }
    memset(&ko, 0, sizeof(ko));
    ko.map_size = map_size;
    if (kv_open(dir, &ko, &kv, msg, sizeof(msg)) != 0) {
        return fail(DATADIR_EIO, err, len, "%s", msg);
    }
    buf = malloc(RESTORE_CHUNK_BYTES);
    if (buf == NULL) {
        rv = fail(DATADIR_EIO, err, len, "out of memory");
        goto out;
    }
    if ((rc = kv_snapshot_stage_begin(kv)) != 0) {
        goto kv_failed;
    }
    for (uint64_t off = 0; off < size;) {
        size_t n = 0;
        rc = kv_snapshot_read_chunk(snap, off, buf, RESTORE_CHUNK_BYTES, &n);
        if (rc != 0 || n == 0) {
            rv = fail(DATADIR_EIO, err, len,
                      "reading the snapshot at byte %" PRIu64 " failed", off);
            goto out;
        }
        if ((rc = kv_snapshot_stage_write(kv, off, buf, n)) != 0) {
            goto kv_failed;
        }
        off += n;
    }
    /* stage_finish checks the checksum again (the file may have changed
     * since it was verified) and that the payload is a store whose applied
     * index and revision are the header's. */
    if ((rc = kv_snapshot_stage_finish(kv, NULL)) != 0 ||
        (rc = kv_snapshot_install(kv)) != 0) {
        goto kv_failed;
    }
    /* Member addresses the old cluster recorded in its log would override
     * the new member list at start: the restored cluster starts with none. */
    raft_index durable = 0;
    if ((!keep_members && (rc = kv_members_clear(kv)) != 0) ||
        (rc = kv_checkpoint(kv, &durable)) != 0) {
        goto kv_failed;
    }
    goto out;
kv_failed:
    kv_errmsg(kv, msg, sizeof(msg));
    rv = fail(
        rc == KV_ECORRUPT || rc == KV_EVERSION ? DATADIR_ECORRUPT : DATADIR_EIO,
        err, len, "%s: %s", dir, msg);
out:
    free(buf);
    kv_close(kv);
    return rv;
}

/* Step 2: the WAL's base is the snapshot, in the new configuration. */
static int restore_wal(const char *dir,
                       const struct raft_snapshot_meta *meta,
                       char *err,
                       size_t len)
{
    struct wal_options wo;
    struct wal_loaded loaded;
    struct wal *wal = NULL;
    struct raft_hard_state hs = {meta->term, 0, meta->index};
    int rv;

    wal_options_default(&wo);
    rv = wal_create(&wo, &wal);
    if (rv != 0) {
        return fail(DATADIR_EIO, err, len, "wal: %s", storage_strerror(rv));
    }
    memset(&loaded, 0, sizeof(loaded));
    rv = wal_open(wal, dir, &loaded);
    if (rv == 0) {
        wal_loaded_free(wal, &loaded);
        rv = wal_save_snapshot_meta(wal, meta);
    }
    if (rv == 0) {
        rv = wal_reset(wal, meta->index + 1);
    }
    if (rv == 0) {
        rv = wal_save_hard_state(wal, &hs);
    }
    if (rv == 0) {
        rv = wal_sync(wal, NULL);
    }
    if (rv != 0) {
        fail(DATADIR_EIO, err, len, "%s", wal_errmsg(wal));
    }
    wal_destroy(wal);
    return rv == 0 ? 0 : DATADIR_EIO;
}

/* Opens @path and checks both of its checksums before anything is
 * created. */
static int open_verified(const char *path,
                         struct kv_snapshot **snap,
                         char *err,
                         size_t len)
{
    char msg[256] = "";
    int rv = kv_snapshot_open(path, NULL, snap, msg, sizeof(msg));
    if (rv != 0) {
        return fail(rv == KV_EIO ? DATADIR_EIO : DATADIR_ECORRUPT, err, len,
                    "%s", msg);
    }
    rv = kv_snapshot_verify(*snap, msg, sizeof(msg));
    if (rv == 0 && kv_snapshot_info(*snap)->applied == 0) {
        rv = KV_ECORRUPT;
        snprintf(msg, sizeof(msg),
                 "it holds a store that never applied an entry (index 0)");
    }
    if (rv != 0) {
        kv_snapshot_close(*snap);
        *snap = NULL;
        return fail(rv == KV_ECORRUPT ? DATADIR_ECORRUPT : DATADIR_EIO, err,
                    len, "%s: %s", path, msg[0] ? msg : kv_strerror(rv));
    }
    return 0;
}

int datadir_restore(const char *snapshot_path,
                    const struct bnode_options *opts,
                    struct datadir_restored *out,
                    char *err,
                    size_t err_len)
{
    struct raft_snapshot_meta meta;
    struct kv_snapshot *snap = NULL;
    char path[BNODE_PATH_MAX];
    const char *dir = opts->data_dir;
    bool created = false;
    int rv;

    err[0] = '\0';
    memset(&meta, 0, sizeof(meta));
    if (!datadir_initial_conf(opts, &meta.conf)) {
        return fail(DATADIR_EINVAL, err, err_len,
                    "node %" PRIu64
                    " is not a voter of the restored cluster: "
                    "start it with an empty data directory and add it",
                    (uint64_t)opts->id);
    }
    if (dir == NULL || strlen(dir) + 16 >= sizeof(path)) {
        return fail(DATADIR_EINVAL, err, err_len, "bad data directory");
    }
    rv = open_verified(snapshot_path, &snap, err, err_len);
    if (rv != 0) {
        return rv;
    }
    const struct kv_snapshot_info *info = kv_snapshot_info(snap);
    meta.index = info->applied;
    meta.term = DATADIR_RESTORE_TERM;
    meta.size = info->size;
    rv = prepare_empty(dir, &created, err, err_len);
    if (rv != 0) {
        kv_snapshot_close(snap);
        return rv;
    }
    snprintf(path, sizeof(path), "%s/%s", dir, DATADIR_KV);
    rv = restore_kv(path, snap, opts->kv_map_size, false, err, err_len);
    if (rv == 0) {
        snprintf(path, sizeof(path), "%s/%s", dir, DATADIR_WAL);
        rv = restore_wal(path, &meta, err, err_len);
    }
    if (rv == 0 && datadir_sync_dir(dir) != 0) {
        rv = fail(DATADIR_EIO, err, err_len, "%s: fsync: %s", dir,
                  strerror(errno));
    }
    if (rv != 0) {
        undo(dir, created);
    } else {
        out->index = meta.index;
        out->term = meta.term;
        out->revision = info->revision;
        out->size = info->size;
        out->conf = meta.conf;
    }
    kv_snapshot_close(snap);
    return rv;
}

/* The index of a snapshot file name (bnode_snap.c: %020llu.snap), or 0. */
static raft_index snapshot_file_index(const char *name)
{
    raft_index v = 0;
    size_t i = 0;
    for (; name[i] >= '0' && name[i] <= '9' && i < 20; i++) {
        v = v * 10 + (raft_index)(name[i] - '0');
    }
    return i == 20 && strcmp(name + 20, ".snap") == 0 ? v : 0;
}

/* Opens the newest snapshot file of @dir with an index in [@lo, @hi] that
 * verifies (an older one may remain if a crash came between writing a new
 * one and removing it); NULL if there is none. */
static struct kv_snapshot *newest_snapshot(const char *dir,
                                           raft_index lo,
                                           raft_index hi)
{
    char path[BNODE_PATH_MAX + 32], err[256];
    struct kv_snapshot *snap = NULL;
    raft_index below = hi + 1; /* only files below it are left to try */
    while (snap == NULL) {
        raft_index pick = 0;
        struct dirent *e;
        DIR *d = opendir(dir);
        if (d == NULL) {
            return NULL;
        }
        while ((e = readdir(d)) != NULL) {
            raft_index i = snapshot_file_index(e->d_name);
            if (i != 0 && i >= lo && i < below && i > pick) {
                pick = i;
            }
        }
        closedir(d);
        if (pick == 0) {
            return NULL;
        }
        snprintf(path, sizeof(path), "%s/%020llu.snap", dir,
                 (unsigned long long)pick);
        (void)open_verified(path, &snap, err, sizeof(err));
        below = pick;
    }
    return snap;
}

/* Where a rebuild writes the new store, and its name once complete. */
#define REBUILD_TMP DATADIR_KV ".tmp"
#define REBUILD_NEW DATADIR_KV ".new"

int datadir_finish_rebuild(const char *data_dir, char *err, size_t err_len)
{
    char path[BNODE_PATH_MAX], kv[BNODE_PATH_MAX];
    struct stat st;
    snprintf(path, sizeof(path), "%s/%s", data_dir, REBUILD_TMP);
    nftw(path, remove_entry, 16, FTW_DEPTH | FTW_PHYS); /* incomplete */
    snprintf(path, sizeof(path), "%s/%s", data_dir, REBUILD_NEW);
    if (stat(path, &st) != 0) {
        return 0;
    }
    /* Complete and synced: it replaces the torn store. */
    snprintf(kv, sizeof(kv), "%s/%s", data_dir, DATADIR_KV);
    nftw(kv, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
    if (rename(path, kv) != 0 || datadir_sync_dir(data_dir) != 0) {
        return fail(DATADIR_EIO, err, err_len, "%s -> %s: %s", path, kv,
                    strerror(errno));
    }
    return 0;
}

int datadir_rebuild_kv(const char *data_dir,
                       raft_index lo,
                       raft_index hi,
                       uint64_t map_size,
                       raft_index *used,
                       char *err,
                       size_t err_len)
{
    char path[BNODE_PATH_MAX], done[BNODE_PATH_MAX];
    int rv;

    err[0] = '\0';
    *used = 0;
    snprintf(path, sizeof(path), "%s/%s", data_dir, DATADIR_SNAP);
    struct kv_snapshot *snap = newest_snapshot(path, lo, hi);
    if (snap == NULL && lo != 0) {
        return fail(DATADIR_ECORRUPT, err, err_len,
                    "no snapshot file in %s covers the log (indexes "
                    "%" PRIu64 "..%" PRIu64
                    "): remove %s and add this node "
                    "again",
                    path, (uint64_t)lo, (uint64_t)hi, data_dir);
    }
    /* Built aside and renamed into place once complete, so that a crash
     * at any point leaves either the torn store (rebuilt again at the next
     * start) or the new one (datadir_finish_rebuild() puts it in place). */
    snprintf(path, sizeof(path), "%s/%s", data_dir, REBUILD_TMP);
    nftw(path, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
    if (snap != NULL) {
        /* The members the log recorded are part of this cluster's state. */
        rv = restore_kv(path, snap, map_size, true, err, err_len);
        *used = rv == 0 ? kv_snapshot_info(snap)->applied : 0;
        kv_snapshot_close(snap);
    } else if (mkdir(path, 0755) != 0) {
        rv = fail(DATADIR_EIO, err, err_len, "cannot create %s: %s", path,
                  strerror(errno));
    } else {
        rv = 0; /* the whole log replays into an empty store */
    }
    snprintf(done, sizeof(done), "%s/%s", data_dir, REBUILD_NEW);
    if (rv == 0 && (datadir_sync_dir(path) != 0 || rename(path, done) != 0 ||
                    datadir_sync_dir(data_dir) != 0)) {
        rv = fail(DATADIR_EIO, err, err_len, "%s -> %s: %s", path, done,
                  strerror(errno));
    }
    if (rv != 0) {
        nftw(path, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
        return rv;
    }
    return datadir_finish_rebuild(data_dir, err, err_len);
}
