/*
 * memfs.h - a file system in memory behind a struct storage_io, with the
 * durability rules of a POSIX file system on a disk with a volatile write
 * cache, for running the real storage/ WAL inside the simulator
 * (storage_wal.c). One directory, one node.
 *
 *   - each file has a durable image and a list of the writes (pwrite,
 *     ftruncate, fallocate) made since its last fdatasync/fsync; a sync
 *     replays the list onto the image;
 *   - creating, renaming and unlinking a name changes the directory at once
 *     for readers, but only an fsync of the directory makes the change
 *     durable;
 *   - memfs_crash() is a power loss: the durable images and names survive
 *     and the rest is forgotten, or, with tearing, each file keeps a random
 *     prefix of its unsynced writes plus maybe a random byte prefix of the
 *     first one it drops, and the directory a random prefix of its unsynced
 *     changes; memfs_exit() is the end of a process: descriptors close and
 *     nothing else changes (the page cache outlives the process);
 *   - injected I/O faults (struct sim_iofaults, when armed): a pwrite,
 *     fallocate or ftruncate fails with EIO or ENOSPC (a pwrite maybe after
 *     a short write of part of its bytes), an fdatasync or fsync fails with
 *     EIO; while the disk is full, every write that would grow a file fails
 *     with ENOSPC (a pwrite after writing the part inside the file). A
 *     failed sync is fsyncgate: a random prefix of the file's (or the
 *     directory's) unsynced writes reached the disk, and the rest is either
 *     still pending or dropped for good - the kernel marked the pages clean,
 *     so the next sync succeeds without them. Dropped writes vanish from
 *     what reads see too (the next process reads what is on disk).
 *
 * Not modelled: sectors of one write reaching the disk out of order; read
 * errors; failures of open, close, rename, unlink, mkdir or listing; a
 * failed sync whose dropped pages a later process still reads from the page
 * cache (no program using buffered I/O can tell those from durable data).
 */
#ifndef BALLOT_SIM_MEMFS_H
#define BALLOT_SIM_MEMFS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sim.h"
#include "storage.h"

#define MF_NAME_MAX 64
#define MF_FDS 64
#define MF_FD_BASE 3
#define MF_FD_DIR (-2) /* an open descriptor of the directory itself */
#define MF_FD_FREE (-1)

enum mf_op_kind {
    MF_WRITE = 1,
    MF_TRUNCATE,
};

struct mf_op
{
    uint8_t kind;
    uint64_t off; /* MF_WRITE: offset; MF_TRUNCATE: new length */
    uint64_t len;
    uint8_t *data;
};

struct mf_bytes
{
    uint8_t *p;
    uint64_t len, cap;
};

struct mf_inode
{
    bool used;
    struct mf_bytes cur; /* what reads see */
    struct mf_bytes dur; /* what survives a power loss */
    struct mf_op *ops;   /* writes since the last sync, in order */
    size_t n_ops, cap_ops;
};

struct mf_name
{
    char name[MF_NAME_MAX];
    size_t ino;
};

struct mf_names
{
    struct mf_name *v;
    size_t n, cap;
};

enum mf_dirop_kind {
    MF_LINK = 1, /* name -> ino (create, or the target of a rename) */
    MF_UNLINK,
};

struct mf_dirop
{
    uint8_t kind;
    char name[MF_NAME_MAX];
    size_t ino;
};

struct memfs
{
    struct storage_io io; /* ctx points at this memfs */
    char dir[MF_NAME_MAX];
    bool dir_made;
    /* While set (the process is dying), every call fails without effect,
     * so that wal_destroy() after a crash changes nothing on "disk". */
    bool dead;

    struct mf_inode *inodes;
    size_t n_inodes, cap_inodes;
    struct mf_names cur, dur;
    struct mf_dirop *dirops; /* directory changes since its last fsync */
    size_t n_dirops, cap_dirops;
    long fds[MF_FDS]; /* inode index, MF_FD_DIR or MF_FD_FREE */

    /* Bumped whenever what a power loss would leave may have changed. */
    uint64_t durable_gen;

    /* Faults to inject (borrowed; NULL: none). After a short write that
     * stands for a failing one, the next pwrite on @fail_fd fails with
     * @fail_next (a negative errno). */
    struct sim_iofaults *faults;
    int fail_next, fail_fd;
    uint64_t fail_part; /* bytes the short write wrote */
    bool fail_full;     /* the failure is the full disk's */
};

/* Makes @fs an empty file system holding only directory @dir (not yet
 * created: the WAL's mkdir creates it, durably). */
void memfs_init(struct memfs *fs, const char *dir);

/* Power loss (see above); draws from @rng only if @tear. Every descriptor
 * is closed. Returns how many unsynced writes and directory changes
 * survived. */
uint64_t memfs_crash(struct memfs *fs, struct sim_rng *rng, bool tear);

/* The process using @fs exits: every descriptor is closed; unsynced
 * writes and directory changes stay pending, as in a page cache. */
void memfs_exit(struct memfs *fs);

/* Makes @to, freshly initialised, a copy of what @from would hold after a
 * power loss that keeps nothing unsynced. @from is not changed. */
void memfs_clone_durable(struct memfs *to, const struct memfs *from);

/* Frees everything @fs holds; memfs_init() makes it usable again. */
void memfs_free(struct memfs *fs);

#endif /* BALLOT_SIM_MEMFS_H */
