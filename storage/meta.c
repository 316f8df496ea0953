/*
 * meta.c - the small files next to the log: "hardstate" and
 * "snapshot.meta". Each is replaced atomically: the new contents go to a
 * temporary file that is fsynced, renamed over the old one, and the
 * directory is fsynced, so a crash leaves either the old or the new file,
 * never a mix.
 */
#include "wal_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

/* Reads the whole of @name into @buf (@cap bytes). Sets *exists to false if
 * there is no such file. A file larger than @cap is reported with *len set
 * to @cap + 1 so that the decoder refuses it by size. */
static int read_small(struct wal *wal,
                      const char *name,
                      uint8_t *buf,
                      size_t cap,
                      size_t *len,
                      bool *exists)
{
    uint64_t size;
    size_t got = 0;
    int fd;
    int rc;

    *exists = false;
    fd = wal->io->open(wal->io->ctx, wal_path(wal, name, false), O_RDONLY, 0);
    if (fd == -ENOENT) {
        return 0;
    }
    if (fd < 0) {
        return wal_errorf(wal, wal_io_code(fd), "wal: open %s failed: %s", name,
                          strerror(-fd));
    }
    *exists = true;
    rc = wal->io->size(wal->io->ctx, fd, &size);
    if (rc < 0) {
        rc = wal_errorf(wal, wal_io_code(rc), "wal: stat %s failed: %s", name,
                        strerror(-rc));
        goto out;
    }
    if (size > cap) {
        *len = cap + 1;
        goto out;
    }
    while (got < size) {
        int64_t n = wal->io->pread(wal->io->ctx, fd, buf + got,
                                   (size_t)size - got, got);
        if (n <= 0) {
            rc = n < 0 ? (int)n : -EIO;
            rc = wal_errorf(wal, wal_io_code(rc), "wal: read %s failed: %s",
                            name, strerror(-rc));
            goto out;
        }
        got += (size_t)n;
    }
    *len = got;
out:
    (void)wal->io->close(wal->io->ctx, fd);
    return rc;
}

int meta_load(struct wal *wal, struct wal_loaded *loaded)
{
    uint8_t buf[FORMAT_SNAPMETA_MAX_BYTES + 1];
    const char *why = "";
    size_t len = 0;
    bool exists;
    int rc;

    rc =
        read_small(wal, WAL_HARDSTATE_NAME, buf, sizeof buf - 1, &len, &exists);
    if (rc != 0) {
        return rc;
    }
    loaded->has_hard_state = exists;
    if (exists) {
        rc = format_hardstate_decode(buf, len, &loaded->hs, &why);
        if (rc != 0) {
            /* The file is only ever replaced whole, so any damage is
             * corruption, not a torn write. */
            return wal_errorf(wal, rc, "wal: %s offset 0: %s",
                              WAL_HARDSTATE_NAME, why);
        }
    }
    rc = read_small(wal, WAL_SNAPMETA_NAME, buf, sizeof buf - 1, &len, &exists);
    if (rc != 0) {
        return rc;
    }
    if (exists) {
        rc = format_snapmeta_decode(buf, len, &loaded->snapshot, &why);
        if (rc != 0) {
            return wal_errorf(wal, rc, "wal: %s offset 0: %s",
                              WAL_SNAPMETA_NAME, why);
        }
        loaded->has_snapshot = true;
    }
    return 0;
}

/* Replaces file @name with @len bytes of @buf. Poisons @wal on failure. */
static int replace_file(struct wal *wal,
                        const char *name,
                        const uint8_t *buf,
                        size_t len)
{
    char tmp[WAL_NAME_MAX];
    const char *step;
    const char *file = tmp;
    int fd;
    int rc;

    snprintf(tmp, sizeof tmp, "%s%s", name, WAL_TMP_SUFFIX);
    step = "create";
    fd = wal->io->open(wal->io->ctx, wal_path(wal, tmp, false),
                       O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0) {
        rc = fd;
        goto fail;
    }
    step = "write";
    rc = wal_write_all(wal, fd, buf, len, 0);
    if (rc < 0) {
        goto fail_fd;
    }
    step = "fsync";
    rc = wal->io->fsync(wal->io->ctx, fd);
    if (rc < 0) {
        goto fail_fd;
    }
    step = "close";
    rc = wal->io->close(wal->io->ctx, fd);
    fd = -1;
    if (rc < 0) {
        goto fail_fd;
    }
    step = "rename";
    rc = wal->io->rename(wal->io->ctx, wal_path(wal, tmp, false),
                         wal_path(wal, name, true));
    if (rc < 0) {
        goto fail_fd;
    }
    step = "fsync directory after replacing";
    file = name;
    rc = wal_sync_dir(wal);
    if (rc < 0) {
        /* The rename happened; whether it survives a crash is unknown. */
        goto fail;
    }
    return 0;

fail_fd:
    if (fd >= 0) {
        (void)wal->io->close(wal->io->ctx, fd);
    }
    (void)wal->io->unlink(wal->io->ctx, wal_path(wal, tmp, false));
fail:
    return wal_failf(wal, wal_io_code(rc), "wal: %s %s failed: %s", step, file,
                     strerror(-rc));
}

int wal_save_hard_state(struct wal *wal, const struct raft_hard_state *hs)
{
    uint8_t buf[FORMAT_HARDSTATE_BYTES];
    int rc = wal_check_writable(wal);

    if (rc != 0) {
        return rc;
    }
    if (hs->term == wal->hs.term && hs->vote == wal->hs.vote) {
        /* Only the commit index moved. It is a hint that may lag, so it
         * rides in the log and becomes durable with the next group commit
         * instead of costing three syncs of its own. */
        if (hs->commit == wal->hs.commit) {
            return 0;
        }
        rc = wal_write_commit(wal, hs);
        if (rc != 0) {
            return rc;
        }
        wal->hs.commit = hs->commit;
        return 0;
    }
    /* Entries appended before this call must be durable before a hard
     * state that may refer to them. */
    rc = wal_sync(wal, NULL);
    if (rc != 0) {
        return rc;
    }
    format_hardstate_encode(hs, buf);
    rc = replace_file(wal, WAL_HARDSTATE_NAME, buf, sizeof buf);
    if (rc != 0) {
        return rc;
    }
    wal->hs = *hs;
    return 0;
}

int wal_save_snapshot_meta(struct wal *wal,
                           const struct raft_snapshot_meta *meta)
{
    uint8_t buf[FORMAT_SNAPMETA_MAX_BYTES];
    struct raft_snapshot_meta check;
    size_t len;
    const char *why;
    int rc = wal_check_writable(wal);

    if (rc != 0) {
        return rc;
    }
    /* Refuse to write what recovery would refuse to read. */
    if (meta->conf.n > RAFT_CONF_MAX) {
        return wal_errorf(wal, STORAGE_EINVAL,
                          "wal: snapshot conf has too many members");
    }
    format_snapmeta_encode(meta, buf, &len);
    if (format_snapmeta_decode(buf, len, &check, &why) != 0) {
        return wal_errorf(wal, STORAGE_EINVAL,
                          "wal: invalid snapshot meta (index %" PRIu64 ")",
                          meta->index);
    }
    return replace_file(wal, WAL_SNAPMETA_NAME, buf, len);
}
