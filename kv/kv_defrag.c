/*
 * kv_defrag.c - giving a store's free pages back to the file system.
 *
 * LMDB reuses the pages that deletes and compaction free, so a store's file
 * stops growing, but it never shrinks: after a burst (a big import, a long
 * reader that held pages back) the file keeps its high-water size. A
 * compacting copy (MDB_CP_COMPACT) writes only the pages in use, renumbered,
 * from a read transaction; it becomes the next generation the way a
 * snapshot install does (kv_store.c: the rename of CURRENT is the commit
 * point), so the swap is atomic across crashes.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "kv_internal.h"

/* Bytes of @path's blocks on disk (0 if it cannot be read). */
static uint64_t disk_bytes(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 ? (uint64_t)st.st_blocks * 512u : 0;
}

int kv_defrag(const char *dir,
              const struct kv_options *opts,
              uint64_t *before,
              uint64_t *after,
              char *errmsg,
              size_t errmsg_len)
{
    struct kv_store *s = NULL;
    char *old_data = NULL, *gen_dir = NULL, *new_data = NULL;
    int rv = kv_open(dir, opts, &s, errmsg, errmsg_len);
    int rc, fd = -1;
    if (rv != 0) {
        return rv;
    }
    /* Writes after the last checkpoint: a node still runs on it, or one
     * crashed. A copy swapped under a running node would lose what it
     * writes next, so only a cleanly stopped store is defragmented. */
    if (s->dirty) {
        rv = kv_set_error(s, KV_ESTATE,
                          "%s has writes after its last checkpoint: stop the "
                          "node cleanly first (a crashed one: start it and "
                          "stop it once)",
                          dir);
        goto done;
    }
    old_data =
        kv_path(&s->alloc, "%s/env-%" PRIu64 "/data.mdb", s->dir, s->gen);
    gen_dir = kv_path(&s->alloc, "%s/env-%" PRIu64, s->dir, s->gen + 1);
    new_data =
        kv_path(&s->alloc, "%s/env-%" PRIu64 "/data.mdb", s->dir, s->gen + 1);
    if (old_data == NULL || gen_dir == NULL || new_data == NULL) {
        rv = KV_ENOMEM;
        goto done;
    }
    if (before != NULL) {
        *before = disk_bytes(old_data);
    }
    if (mkdir(gen_dir, 0755) != 0) {
        rv = kv_set_error(s, kv_errno_code(errno), "mkdir %s: %s", gen_dir,
                          strerror(errno));
        goto done;
    }
    if ((rc = mdb_env_copy2(s->env, gen_dir, MDB_CP_COMPACT)) != 0) {
        rv = kv_mdb_error(s, rc, "compacting copy");
        goto done;
    }
    /* The copy must be on disk before CURRENT names it. */
    fd = open(new_data, O_RDONLY);
    if (fd < 0 || fsync(fd) != 0) {
        rv = kv_set_error(s, kv_errno_code(errno), "sync %s: %s", new_data,
                          strerror(errno));
        goto done;
    }
    if ((rv = kv_fsync_dir(gen_dir)) != 0 ||
        (rv = kv_current_write(s, s->gen + 1)) != 0) {
        goto done;
    }
    /* The live generation is the synced copy: nothing unsynced is left,
     * whatever the old one had. */
    if ((rv = kv_mark_clean(s)) != 0) {
        goto done;
    }
    if (after != NULL) {
        *after = disk_bytes(new_data);
    }

done:
    if (fd >= 0) {
        close(fd);
    }
    if (rv != 0 && errmsg != NULL && errmsg_len > 0) {
        kv_errmsg(s, errmsg, errmsg_len);
    }
    kv_free(&s->alloc, old_data);
    kv_free(&s->alloc, gen_dir);
    kv_free(&s->alloc, new_data);
    kv_close(s);
    /* The next open removes the old generation (or, after a failure, the
     * partial copy). */
    if (rv == 0) {
        struct kv_store *t = NULL;
        rv = kv_open(dir, opts, &t, errmsg, errmsg_len);
        if (rv == 0) {
            kv_close(t);
        }
    }
    return rv;
}
