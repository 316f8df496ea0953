/*
 * kv_files.c - the store directory: paths, the CURRENT pointer, cleanup of
 * what interrupted installs leave, the DIRTY marker, paced writeback and
 * disk reservation.
 */
/* fallocate(2) and sync_file_range(2) are Linux-specific. */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "kv_internal.h"

/* ---------------------------------------------------------------------- */
/* Files                                                                   */

char *kv_path(const struct kv_allocator *a, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0) {
        return NULL;
    }
    char *p = kv_malloc(a, (size_t)n + 1);
    if (p == NULL) {
        return NULL;
    }
    va_start(ap, fmt);
    vsnprintf(p, (size_t)n + 1, fmt, ap);
    va_end(ap);
    return p;
}

int kv_fsync_dir(const char *path)
{
    int fd = open(path, O_RDONLY | O_DIRECTORY);
    if (fd < 0) {
        return kv_errno_code(errno);
    }
    int rv = fsync(fd) == 0 ? 0 : kv_errno_code(errno);
    close(fd);
    return rv;
}

int kv_remove_dir(const char *path)
{
    DIR *d = opendir(path);
    struct dirent *e;
    char buf[4096];
    if (d == NULL) {
        return errno == ENOENT ? 0 : kv_errno_code(errno);
    }
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) {
            continue;
        }
        snprintf(buf, sizeof(buf), "%s/%s", path, e->d_name);
        unlink(buf);
    }
    closedir(d);
    return rmdir(path) == 0 ? 0 : kv_errno_code(errno);
}

/* Reads DIR/CURRENT. Returns 0 with *gen, KV_ENOTFOUND if it is missing,
 * KV_ECORRUPT if it is malformed. */
int kv_current_read(struct kv_store *s, uint64_t *gen)
{
    char buf[64] = {0};
    char *path = kv_path(&s->alloc, "%s/CURRENT", s->dir);
    int rv = 0;
    if (path == NULL) {
        return KV_ENOMEM;
    }
    int fd = open(path, O_RDONLY);
    if (fd < 0) {
        rv = errno == ENOENT ? KV_ENOTFOUND
                             : kv_set_error(s, kv_errno_code(errno), "%s: %s",
                                            path, strerror(errno));
        goto cleanup;
    }
    ssize_t n = read(fd, buf, sizeof(buf) - 1);
    close(fd);
    unsigned long long g = 0;
    char nl = 0;
    if (n <= 0 || sscanf(buf, "env-%llu%c", &g, &nl) != 2 || nl != '\n' ||
        g == 0) {
        rv = kv_set_error(s, KV_ECORRUPT, "%s: malformed pointer", path);
        goto cleanup;
    }
    *gen = g;

cleanup:
    kv_free(&s->alloc, path);
    return rv;
}

/* Points DIR/CURRENT at generation @gen: write a temporary file, sync it,
 * rename it over CURRENT, sync the directory. The rename is atomic, so a
 * crash leaves either the old or the new pointer. */
int kv_current_write(struct kv_store *s, uint64_t gen)
{
    char buf[64];
    int len = snprintf(buf, sizeof(buf), "env-%" PRIu64 "\n", gen);
    char *tmp = kv_path(&s->alloc, "%s/CURRENT.tmp", s->dir);
    char *cur = kv_path(&s->alloc, "%s/CURRENT", s->dir);
    int fd = -1;
    int rv = KV_ENOMEM;
    if (tmp == NULL || cur == NULL) {
        goto cleanup;
    }
    fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0 || write(fd, buf, (size_t)len) != len || fsync(fd) != 0) {
        rv = kv_set_error(s, kv_errno_code(errno), "%s: %s", tmp,
                          strerror(errno));
        goto cleanup;
    }
    if (rename(tmp, cur) != 0) {
        rv = kv_set_error(s, kv_errno_code(errno), "rename %s: %s", tmp,
                          strerror(errno));
        goto cleanup;
    }
    rv = kv_fsync_dir(s->dir);
    if (rv != 0) {
        kv_set_error(s, rv, "%s: fsync directory failed", s->dir);
    }

cleanup:
    if (fd >= 0) {
        close(fd);
    }
    kv_free(&s->alloc, tmp);
    kv_free(&s->alloc, cur);
    return rv;
}

/* Removes every generation but @keep, a stage and a CURRENT.tmp. */
int kv_dir_cleanup(struct kv_store *s, uint64_t keep)
{
    DIR *d = opendir(s->dir);
    struct dirent *e;
    int rv = 0;
    if (d == NULL) {
        return kv_set_error(s, kv_errno_code(errno), "%s: %s", s->dir,
                            strerror(errno));
    }
    while ((e = readdir(d)) != NULL) {
        unsigned long long g = 0;
        char extra = 0;
        char *p = NULL;
        bool generation = sscanf(e->d_name, "env-%llu%c", &g, &extra) == 1;
        if (generation && g == keep) {
            continue;
        }
        if (!generation && strcmp(e->d_name, "stage") != 0 &&
            strcmp(e->d_name, "CURRENT.tmp") != 0) {
            continue;
        }
        p = kv_path(&s->alloc, "%s/%s", s->dir, e->d_name);
        if (p == NULL) {
            rv = KV_ENOMEM;
            break;
        }
        if (strcmp(e->d_name, "CURRENT.tmp") == 0) {
            unlink(p);
        } else {
            kv_remove_dir(p);
        }
        kv_free(&s->alloc, p);
    }
    closedir(d);
    if (rv == 0) {
        rv = kv_fsync_dir(s->dir);
    }
    return rv;
}

/* ---------------------------------------------------------------------- */
/* Paced writeback                                                         */

int kv_writeback(struct kv_store *s, int fd, uint64_t from, uint64_t to)
{
    uint64_t chunk = s->opts.writeback_chunk;
    for (uint64_t off = from; off < to; off += chunk) {
        uint64_t len = to - off < chunk ? to - off : chunk;
        /* Start this chunk and wait for it (and for anything of it already
         * under way). A device's cache flush waits for every write it
         * holds, so a WAL fdatasync now waits for one chunk at most. */
        if (sync_file_range(fd, (off_t)off, (off_t)len,
                            SYNC_FILE_RANGE_WAIT_BEFORE |
                                SYNC_FILE_RANGE_WRITE |
                                SYNC_FILE_RANGE_WAIT_AFTER) != 0) {
            if (errno == ENOSYS || errno == EOPNOTSUPP) {
                return 0; /* the final sync does it all */
            }
            /* An I/O error reported here would not be reported again
             * by the sync that follows: it fails the sync. */
            return kv_set_error(s, kv_errno_code(errno),
                                "writeback at %" PRIu64 ": %s", off,
                                strerror(errno));
        }
    }
    return 0;
}

/* ---------------------------------------------------------------------- */
/* Disk reservation                                                        */
/* Headroom reserved beyond the used size and what a transaction may
 * touch: room for the pages LMDB itself rewrites (the free list, the meta
 * data) and for a few transactions' growth between reservations. */
#define RESERVE_MIN_BYTES (64ull << 20)

/* More levels than any B+tree of a map this size reaches (a page holds at
 * least two keys of KV_KEY_BYTES_MAX). */
#define TREE_DEPTH_MAX 48u

/* The deepest of the trees a change goes through, plus one for a split. */
static uint64_t tree_depth(struct kv_store *s)
{
    MDB_txn *txn = NULL;
    MDB_stat st;
    uint64_t depth = 0;
    MDB_dbi dbis[] = {s->dbi_keys, s->dbi_hist, s->dbi_sess, s->dbi_lru};
    if (mdb_txn_begin(s->env, NULL, MDB_RDONLY, &txn) != 0) {
        return TREE_DEPTH_MAX;
    }
    for (size_t i = 0; i < sizeof(dbis) / sizeof(dbis[0]); i++) {
        if (mdb_stat(txn, dbis[i], &st) == 0 && st.ms_depth > depth) {
            depth = st.ms_depth;
        }
    }
    mdb_txn_abort(txn);
    return depth + 1;
}

int kv_reserve(struct kv_store *s,
               uint64_t batch_bytes,
               uint64_t entries,
               uint64_t changes)
{
    MDB_envinfo info;
    MDB_stat st;
    int fd = -1;
    if (s->reserve_unsupported) {
        return 0;
    }
    if (mdb_env_info(s->env, &info) != 0 || mdb_env_stat(s->env, &st) != 0 ||
        mdb_env_get_fd(s->env, &fd) != 0) {
        return kv_set_error(s, KV_EIO, "reserve: environment info");
    }
    /* One write transaction copies each page it changes at most once, into
     * a page of the free list (allocated already) or from the end of the
     * file: it adds at most the pages it touches, never more than the used
     * size, plus what the batch brings (counted four times for page
     * overhead and history copies). A change touches a path through the
     * keys tree and one through the history tree; a session record two
     * more. A delete-range may touch every page. */
    uint64_t used = ((uint64_t)info.me_last_pgno + 1) * st.ms_psize;
    uint64_t touched = used;
    if (changes != UINT64_MAX && changes < used && entries < used) {
        uint64_t paths = 2 * changes + 2 * entries + 1;
        /* The trees' depth costs a read transaction: only when a bound
         * with the deepest tree a map can hold does not fit already. */
        uint64_t per_path = TREE_DEPTH_MAX * st.ms_psize;
        touched = paths < used / per_path ? paths * per_path : used;
        if (used + touched + RESERVE_MIN_BYTES + 4 * batch_bytes >
            s->reserved) {
            per_path = tree_depth(s) * st.ms_psize;
            touched = paths < used / per_path ? paths * per_path : used;
        }
    }
    uint64_t need = used + touched + RESERVE_MIN_BYTES + 4 * batch_bytes;
    uint64_t map = (uint64_t)info.me_mapsize;
    if (need > map) {
        need = map;
    }
    if (need <= s->reserved) {
        return 0;
    }
    /* A quarter of the headroom more, so the system call stays rare. */
    uint64_t target = need + (need - used) / 4;
    if (target > map) {
        target = map;
    }
    if (fallocate(fd, 0, (off_t)s->reserved, (off_t)(target - s->reserved)) !=
        0) {
        if (errno == EOPNOTSUPP || errno == ENOSYS) {
            /* The file system cannot reserve; writes will still work, but
             * a full disk may then stop the process instead of failing. */
            s->reserve_unsupported = true;
            return 0;
        }
        return kv_set_error(s, kv_errno_code(errno),
                            "reserve %" PRIu64 " bytes for the store: %s",
                            target, strerror(errno));
    }
    s->reserved = target;
    return 0;
}

/* ---------------------------------------------------------------------- */
/* The DIRTY marker                                                        */

/* The kernel's boot id tells a process crash (the page cache, and with it
 * every unsynced LMDB page, survived) from a machine crash (it did not). */
static void boot_id(char *buf, size_t len)
{
    FILE *f = fopen("/proc/sys/kernel/random/boot_id", "r");
    buf[0] = 0;
    if (f != NULL) {
        if (fgets(buf, (int)len, f) == NULL) {
            buf[0] = 0;
        }
        fclose(f);
    }
    buf[strcspn(buf, "\n")] = 0;
    if (buf[0] == 0) {
        snprintf(buf, len, "unknown");
    }
}

int kv_mark_dirty(struct kv_store *s)
{
    char id[64], line[80];
    int rv = 0;
    /* Counted even if the marker fails: the caller then does not write,
     * and a checkpoint merely stays dirty. */
    s->writes++;
    if (s->dirty) {
        return 0;
    }
    char *path = kv_path(&s->alloc, "%s/DIRTY", s->dir);
    if (path == NULL) {
        return KV_ENOMEM;
    }
    boot_id(id, sizeof(id));
    int n = snprintf(line, sizeof(line), "%s\n", id);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0 || write(fd, line, (size_t)n) != n || fsync(fd) != 0) {
        rv = kv_set_error(s, kv_errno_code(errno), "%s: %s", path,
                          strerror(errno));
    } else if ((rv = kv_fsync_dir(s->dir)) != 0) {
        kv_set_error(s, rv, "%s: fsync directory failed", s->dir);
    }
    if (fd >= 0) {
        close(fd);
    }
    kv_free(&s->alloc, path);
    if (rv == 0) {
        s->dirty = true;
    }
    return rv;
}

int kv_mark_clean(struct kv_store *s)
{
    char *path = kv_path(&s->alloc, "%s/DIRTY", s->dir);
    int rv;
    if (path == NULL) {
        return KV_ENOMEM;
    }
    if (unlink(path) != 0 && errno != ENOENT) {
        rv = kv_set_error(s, kv_errno_code(errno), "%s: %s", path,
                          strerror(errno));
    } else {
        rv = kv_fsync_dir(s->dir);
    }
    kv_free(&s->alloc, path);
    if (rv == 0) {
        s->dirty = false;
    }
    return rv;
}

/* Refuses a store that had unsynced writes when the machine went down: with
 * MDB_NOSYNC, LMDB may have reused pages of the last synced state and only
 * some of the new ones reached the disk. */
int kv_dirty_check(struct kv_store *s)
{
    char want[64], got[64] = "";
    char *path = kv_path(&s->alloc, "%s/DIRTY", s->dir);
    int rv = 0;
    if (path == NULL) {
        return KV_ENOMEM;
    }
    FILE *f = fopen(path, "r");
    if (f == NULL) {
        goto cleanup;
    }
    if (fgets(got, sizeof(got), f) == NULL) {
        got[0] = 0;
    }
    fclose(f);
    got[strcspn(got, "\n")] = 0;
    boot_id(want, sizeof(want));
    if (strcmp(got, want) != 0 || strcmp(want, "unknown") == 0) {
        rv = kv_set_error(s, KV_ETORN,
                          "%s: the machine restarted while the store had "
                          "writes after its last checkpoint; it may be torn "
                          "and must be rebuilt from a snapshot",
                          s->dir);
        goto cleanup;
    }
    /* Only the process died: the page cache kept every write. */
    s->dirty = true;

cleanup:
    kv_free(&s->alloc, path);
    return rv;
}
