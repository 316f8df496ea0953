/*
 * bnode_export.c - copies of the store for clients (BSNAPSHOT, `ballot
 * snapshot save`).
 *
 * An export is a snapshot file like the node's own (bnode_snap.c writes
 * both with the same worker job: kv_snapshot_create, which holds writers
 * back only until its read transaction starts), written to
 * DATA/export/<n>.snap and handed to the caller with the term of its
 * index. The caller streams it and releases it (the file is deleted);
 * whatever a crash or a kill leaves in DATA/export is removed at the next
 * start.
 */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bnode_internal.h"
#include "nlog.h"

/* An export on its way: the job and the caller to answer. */
struct export_job
{
    struct snap_job job; /* first: the job's done() gets this struct */
    bnode_export_cb cb;
    void *arg;
};

int export_prepare(struct bnode *node, char *err, size_t err_len)
{
    char path[sizeof(node->export_dir) + 300];
    unsigned removed = 0;
    struct dirent *e;
    DIR *d;
    if (mkdir(node->export_dir, 0755) != 0 && errno != EEXIST) {
        snprintf(err, err_len, "cannot create %s: %s", node->export_dir,
                 strerror(errno));
        return BNODE_EINVAL;
    }
    d = opendir(node->export_dir);
    if (d == NULL) {
        snprintf(err, err_len, "cannot read %s: %s", node->export_dir,
                 strerror(errno));
        return BNODE_EINVAL;
    }
    /* Nothing in here outlives the process that made it: its client's
     * connection is gone. */
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) {
            continue;
        }
        snprintf(path, sizeof(path), "%s/%s", node->export_dir, e->d_name);
        if (unlink(path) == 0) {
            removed++;
        }
    }
    closedir(d);
    if (removed > 0) {
        nlog(node, BNODE_LOG_INFO, "removed %u leftover snapshot export files",
             removed);
    }
    return 0;
}

static void export_done(struct snap_job *job)
{
    struct export_job *ej = (struct export_job *)job;
    struct bnode *node = job->node;
    struct bnode_export *exp = NULL;
    int status = 0;
    if (job->status != 0) {
        nlog(node, BNODE_LOG_WARN, "a snapshot export failed: %s",
             kv_strerror(job->status));
        status = BNODE_ESTORAGE;
    } else if (node->stopping || node->halted) {
        status = BNODE_ESTOPPED;
    } else if ((exp = calloc(1, sizeof(*exp))) == NULL) {
        status = BNODE_ENOMEM;
    } else {
        exp->snap = job->snap;
        snprintf(exp->path, sizeof(exp->path), "%s", job->path);
        /* The copy's index was applied, so it is committed and in the
         * log (the core keeps snapshot_trailing entries behind its newest
         * snapshot) or is that snapshot's index. */
        exp->term =
            raft_term_at(node->raft, kv_snapshot_info(job->snap)->applied);
        if (exp->term == 0) {
            nlog(node, BNODE_LOG_WARN,
                 "a snapshot export at %llu is older than the log: retry",
                 (unsigned long long)kv_snapshot_info(job->snap)->applied);
            free(exp);
            exp = NULL;
            status = BNODE_ESTORAGE;
        }
    }
    if (status != 0 && job->status == 0) {
        kv_snapshot_close(job->snap);
        unlink(job->path);
    }
    ej->cb(ej->arg, status, exp);
    free(ej);
}

int bnode_export_start(struct bnode *node, bnode_export_cb cb, void *arg)
{
    if (node->stopping || node->halted) {
        return BNODE_ESTOPPED;
    }
    struct export_job *ej = calloc(1, sizeof(*ej));
    if (ej == NULL) {
        return BNODE_ENOMEM;
    }
    ej->cb = cb;
    ej->arg = arg;
    ej->job.node = node;
    ej->job.done = export_done;
    snprintf(ej->job.path, sizeof(ej->job.path), "%s/%llu.snap",
             node->export_dir, (unsigned long long)++node->exports_made);
    int rv = snap_job_start(&ej->job);
    if (rv != 0) {
        free(ej);
    }
    return rv;
}

void bnode_export_release(struct bnode_export *exp)
{
    if (exp == NULL) {
        return;
    }
    kv_snapshot_close(exp->snap);
    unlink(exp->path);
    free(exp);
}
