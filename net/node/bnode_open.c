/*
 * bnode_open.c - opening a node's data directory at start: the LMDB store
 * (rebuilt if a machine crash may have torn it), the WAL, an interrupted
 * snapshot install, and the core restored from them or bootstrapped.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bnode_internal.h"
#include "datadir.h"
#include "nlog.h"
#include "wal.h"

void bnode_errorf(char *errmsg, size_t len, const char *fmt, ...)
{
    va_list ap;
    if (errmsg != NULL && len > 0) {
        va_start(ap, fmt);
        vsnprintf(errmsg, len, fmt, ap);
        va_end(ap);
    }
}

static void wal_log(void *ctx, int level, const char *msg)
{
    (void)ctx;
    nlog(ctx, level >= 2 ? BNODE_LOG_WARN : BNODE_LOG_INFO, "wal: %s", msg);
}

/* BNODE_BREAK_NO_FDATASYNC: the WAL's batches are never made durable. */
static int skip_fdatasync(void *ctx, int fd)
{
    (void)ctx;
    (void)fd;
    return 0;
}

static void wal_opts(struct bnode *node, struct wal_options *wo)
{
    wal_options_default(wo);
    wo->log = wal_log;
    wo->log_ctx = node;
    /* The zeros ahead wait until the acknowledgements are out
     * (persist_after). */
    wo->prepare_explicitly = true;
    if (node->opts.breaks & BNODE_BREAK_NO_FDATASYNC) {
        node->broken_io = *storage_io_posix();
        node->broken_io.fdatasync = skip_fdatasync;
        wo->io = &node->broken_io;
    }
}

static int make_dir(const char *path)
{
    if (mkdir(path, 0755) != 0 && errno != EEXIST) {
        return -errno;
    }
    return 0;
}

/* The machine went down while LMDB had unsynced writes (kv_open said
 * KV_ETORN, with @why): LMDB may be torn, but the log is intact. The store
 * is made again from this node's snapshot file at or after the WAL's base
 * (the log holds every entry after it), or empty if the log starts at
 * index 1; applying the log again brings it back to where it was. */
static int rebuild_kv(struct bnode *node,
                      const struct wal_loaded *loaded,
                      const struct kv_options *ko,
                      const char *why,
                      char *errmsg,
                      size_t errmsg_len)
{
    char path[4200], err[512], kverr[256] = "";
    raft_index lo = loaded->has_snapshot ? loaded->snapshot.index : 0;
    raft_index hi = loaded->n_entries > 0
                        ? loaded->entries[loaded->n_entries - 1].index
                        : lo;
    raft_index used = 0;
    nlog(node, BNODE_LOG_WARN, "%s", why);
    int rv = datadir_rebuild_kv(node->data_dir, lo, hi, ko->map_size, &used,
                                err, sizeof(err));
    if (rv != 0) {
        bnode_errorf(errmsg, errmsg_len, "rebuilding the store: %s", err);
        return BNODE_ESTORAGE;
    }
    snprintf(path, sizeof(path), "%s/%s", node->data_dir, DATADIR_KV);
    rv = kv_open(path, ko, &node->kv, kverr, sizeof(kverr));
    if (rv != 0) {
        bnode_errorf(errmsg, errmsg_len, "kv %s after a rebuild: %s", path,
                     kverr);
        return BNODE_ESTORAGE;
    }
    nlog(node, BNODE_LOG_WARN,
         "rebuilt the store from %s %llu; the log replays entries %llu..%llu",
         used != 0 ? "snapshot" : "an empty store at index",
         (unsigned long long)used, (unsigned long long)used + 1,
         (unsigned long long)hi);
    return 0;
}

/* The data directory names the cluster and the member it belongs to
 * (DATA/identity, written at the first start): a directory of another
 * cluster or another member (a wrong --data, a copy from another node) is
 * refused before anything in it is read, rather than served as if it
 * were this node's. */
static int check_identity(struct bnode *node, char *errmsg, size_t errmsg_len)
{
    char path[4200], tmp[4210];
    unsigned long long cluster, member;
    snprintf(path, sizeof(path), "%s/identity", node->data_dir);
    FILE *f = fopen(path, "r");
    if (f != NULL) {
        int got =
            fscanf(f, "cluster_id %llu\nmember_id %llu\n", &cluster, &member);
        fclose(f);
        if (got != 2) {
            bnode_errorf(errmsg, errmsg_len,
                         "%s is damaged: restore it or start from an empty "
                         "data directory",
                         path);
            return BNODE_ESTORAGE;
        }
        if (cluster != node->opts.cluster_id || member != node->opts.id) {
            bnode_errorf(errmsg, errmsg_len,
                         "%s belongs to member %llu of cluster %llu, not to "
                         "member %llu of cluster %llu: refusing it (a wrong "
                         "--data, or a copy from another node or cluster)",
                         node->data_dir, member, cluster,
                         (unsigned long long)node->opts.id,
                         (unsigned long long)node->opts.cluster_id);
            return BNODE_EINVAL;
        }
        return 0;
    }
    if (errno != ENOENT) {
        bnode_errorf(errmsg, errmsg_len, "cannot read %s: %s", path,
                     strerror(errno));
        return BNODE_ESTORAGE;
    }
    /* First start (or a directory from before identities): claim it,
     * atomically. */
    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    f = fopen(tmp, "w");
    bool ok = f != NULL &&
              fprintf(f, "cluster_id %llu\nmember_id %llu\n",
                      (unsigned long long)node->opts.cluster_id,
                      (unsigned long long)node->opts.id) > 0 &&
              fflush(f) == 0 && fsync(fileno(f)) == 0;
    ok = (f != NULL && fclose(f) == 0) && ok;
    ok = ok && rename(tmp, path) == 0;
    int dfd = ok ? open(node->data_dir, O_RDONLY | O_DIRECTORY) : -1;
    ok = ok && dfd >= 0 && fsync(dfd) == 0;
    if (dfd >= 0) {
        close(dfd);
    }
    if (!ok) {
        bnode_errorf(errmsg, errmsg_len, "cannot write %s: %s", path,
                     strerror(errno));
        return BNODE_ESTORAGE;
    }
    return 0;
}

int bnode_open_storage(struct bnode *node, char *errmsg, size_t errmsg_len)
{
    char path[4200];
    struct wal_options wo;
    struct wal_loaded loaded;
    struct kv_options ko;
    char kverr[256] = "";
    int rv;

    if (make_dir(node->data_dir) != 0) {
        bnode_errorf(errmsg, errmsg_len, "cannot create %s: %s", node->data_dir,
                     strerror(errno));
        return BNODE_EINVAL;
    }
    rv = check_identity(node, errmsg, errmsg_len);
    if (rv == 0) {
        rv = fallback_open(node, errmsg, errmsg_len);
    }
    if (rv != 0) {
        return rv;
    }
    if (make_dir(node->snap_dir) != 0) {
        bnode_errorf(errmsg, errmsg_len, "cannot create %s: %s", node->snap_dir,
                     strerror(errno));
        return BNODE_EINVAL;
    }
    if (export_prepare(node, errmsg, errmsg_len) != 0) {
        return BNODE_EINVAL;
    }
    if (datadir_finish_rebuild(node->data_dir, errmsg, errmsg_len) != 0) {
        return BNODE_ESTORAGE;
    }
    snprintf(path, sizeof(path), "%s/%s", node->data_dir, DATADIR_KV);
    if (make_dir(path) != 0) {
        bnode_errorf(errmsg, errmsg_len, "cannot create %s: %s", path,
                     strerror(errno));
        return BNODE_EINVAL;
    }
    if (node->opts.verify_at_start &&
        scrub_verify_at_start(node, path, errmsg, errmsg_len) != 0) {
        return BNODE_ESTORAGE;
    }
    memset(&ko, 0, sizeof(ko));
    ko.map_size = node->opts.kv_map_size;
    ko.compact_batch = node->opts.compact_batch;
    rv = kv_open(path, &ko, &node->kv, kverr, sizeof(kverr));
    bool torn = rv == KV_ETORN;
    if (rv != 0 && !torn) {
        bnode_errorf(errmsg, errmsg_len, "kv %s: %s", path, kverr);
        return BNODE_ESTORAGE;
    }
    wal_opts(node, &wo);
    rv = wal_create(&wo, &node->wal);
    if (rv != 0) {
        bnode_errorf(errmsg, errmsg_len, "wal: %s", storage_strerror(rv));
        return BNODE_ENOMEM;
    }
    snprintf(path, sizeof(path), "%s/%s", node->data_dir, DATADIR_WAL);
    memset(&loaded, 0, sizeof(loaded));
    rv = wal_open(node->wal, path, &loaded);
    if (rv != 0) {
        bnode_errorf(errmsg, errmsg_len, "%s", wal_errmsg(node->wal));
        return BNODE_ESTORAGE;
    }
    if (torn) {
        rv = rebuild_kv(node, &loaded, &ko, kverr, errmsg, errmsg_len);
        if (rv != 0) {
            wal_loaded_free(node->wal, &loaded);
            return rv;
        }
    }
    /* A snapshot install that a crash interrupted is finished (or
     * dropped) first; if that changed the WAL, read it again. */
    rv = snap_recover(node, errmsg, errmsg_len);
    if (rv < 0) {
        wal_loaded_free(node->wal, &loaded);
        return rv;
    }
    if (rv == 1) {
        wal_loaded_free(node->wal, &loaded);
        wal_destroy(node->wal);
        node->wal = NULL;
        if (wal_create(&wo, &node->wal) != 0 ||
            wal_open(node->wal, path, &loaded) != 0) {
            bnode_errorf(errmsg, errmsg_len, "wal: %s",
                         node->wal ? wal_errmsg(node->wal) : "no memory");
            return BNODE_ESTORAGE;
        }
    }
    if (!loaded.has_hard_state) {
        /* Entries of a term are written only after the hard state of that
         * term was saved, so a log with terms and no hard state lost the
         * file; starting at term 0 would forget the vote and could vote
         * twice in one term. */
        raft_term seen = loaded.has_snapshot ? loaded.snapshot.term : 0;
        for (size_t i = 0; i < loaded.n_entries; i++) {
            if (loaded.entries[i].term > seen) {
                seen = loaded.entries[i].term;
            }
        }
        if (seen > 0) {
            wal_loaded_free(node->wal, &loaded);
            bnode_errorf(errmsg, errmsg_len,
                         "%s/hardstate is missing but the log holds term "
                         "%llu: this node's term and vote are lost, refusing "
                         "to start; restore the file, or rebuild this node "
                         "from a peer's snapshot (ballotd restore, "
                         "docs/operations.md \"Damaged data\")",
                         path, (unsigned long long)seen);
            return BNODE_ESTORAGE;
        }
    }
    if (loaded.has_snapshot) {
        node->last_snap_index = loaded.snapshot.index;
        snap_check_file(node);
    }

    struct kv_status ks;
    rv = kv_status(node->kv, &ks);
    if (rv != 0) {
        wal_loaded_free(node->wal, &loaded);
        bnode_errorf(errmsg, errmsg_len, "kv status: %s", kv_strerror(rv));
        return BNODE_ESTORAGE;
    }
    node->disk_hs = loaded.hs;
    bool empty =
        loaded.hs.term == 0 && loaded.n_entries == 0 && !loaded.has_snapshot;
    if (node->opts.breaks != 0) {
        nlog(node, BNODE_LOG_WARN,
             "deliberately broken (bugs 0x%x), for the fault-injection "
             "suite only (docs/jepsen.md)",
             node->opts.breaks);
    }
    if (empty && node->opts.bootstrap) {
        struct raft_conf conf;
        if (datadir_initial_conf(&node->opts, &conf)) {
            rv = raft_bootstrap(node->raft, &conf);
            nlog(node, BNODE_LOG_INFO,
                 "bootstrapped a new cluster of %u voters", conf.n);
        } else {
            /* Not an initial voter: join when the leader adds us. */
            nlog(node, BNODE_LOG_INFO,
                 "not an initial voter: waiting to be added");
        }
    } else if (!empty) {
        rv = raft_restore(node->raft, &loaded.hs,
                          loaded.has_snapshot ? &loaded.snapshot : NULL,
                          loaded.entries, loaded.n_entries, ks.applied);
        nlog(node, BNODE_LOG_INFO,
             "restored term %llu, log %llu..%llu, applied %llu (%u repairs)",
             (unsigned long long)loaded.hs.term,
             (unsigned long long)raft_first_index(node->raft),
             (unsigned long long)raft_last_index(node->raft),
             (unsigned long long)ks.applied, loaded.repairs);
    } else {
        nlog(node, BNODE_LOG_INFO,
             "empty data directory: waiting to be contacted");
    }
    wal_loaded_free(node->wal, &loaded);
    if (rv != 0) {
        bnode_errorf(errmsg, errmsg_len, "cannot restore the raft state: %s",
                     raft_strerror(rv));
        return BNODE_ESTORAGE;
    }
    return 0;
}

int bnode_restart_core(struct bnode *node, char *errmsg, size_t errmsg_len)
{
    char path[4200];
    struct wal_options wo;
    struct wal_loaded loaded;
    struct kv_status ks;
    struct raft_node *raft = NULL;
    int rv;

    snprintf(path, sizeof(path), "%s/%s", node->data_dir, DATADIR_WAL);
    wal_opts(node, &wo);
    memset(&loaded, 0, sizeof(loaded));
    rv = kv_status(node->kv, &ks);
    if (rv != 0) {
        bnode_errorf(errmsg, errmsg_len, "kv status: %s", kv_strerror(rv));
        return BNODE_ESTORAGE;
    }
    /* The WAL is read again from its files by a new handle, exactly as at
     * a start (the disk thread holds no reference to it: the caller owns
     * the disk). */
    wal_destroy(node->wal);
    node->wal = NULL;
    if (wal_create(&wo, &node->wal) != 0 ||
        wal_open(node->wal, path, &loaded) != 0) {
        bnode_errorf(errmsg, errmsg_len, "wal: %s",
                     node->wal ? wal_errmsg(node->wal) : "no memory");
        return BNODE_ESTORAGE;
    }
    struct raft_config cfg = node->raft_cfg;
    cfg.seed += 0x9e3779b97f4a7c15ULL; /* not the same timeouts again */
    rv = raft_node_create(&cfg, &raft);
    if (rv == 0 &&
        (loaded.hs.term != 0 || loaded.n_entries > 0 || loaded.has_snapshot)) {
        rv = raft_restore(raft, &loaded.hs,
                          loaded.has_snapshot ? &loaded.snapshot : NULL,
                          loaded.entries, loaded.n_entries, ks.applied);
    }
    wal_loaded_free(node->wal, &loaded);
    if (rv != 0) {
        if (raft != NULL) {
            raft_node_destroy(raft);
        }
        bnode_errorf(errmsg, errmsg_len, "cannot restore the raft state: %s",
                     raft_strerror(rv));
        return BNODE_ESTORAGE;
    }
    node->raft_cfg = cfg;
    node->disk_hs = loaded.hs;
    raft_node_destroy(node->raft);
    node->raft = raft;
    nlog(node, BNODE_LOG_INFO,
         "core restarted from disk: term %llu, log %llu..%llu",
         (unsigned long long)raft_current_term(raft),
         (unsigned long long)raft_first_index(raft),
         (unsigned long long)raft_last_index(raft));
    return 0;
}
