/*
 * datadir.h - what a node's data directory holds, the configuration a new
 * cluster starts with, and building a data directory from a snapshot file
 * (restore).
 *
 *   DATA/wal/               the Raft log, hard state and snapshot meta
 *                           (storage/, docs/storage.md)
 *   DATA/kv/                the LMDB state machine (kv/, docs/kv.md)
 *   DATA/snap/<index>.snap  this node's newest snapshot (bnode_snap.c)
 *   DATA/export/            copies of the store made for clients
 *                           (BSNAPSHOT, bnode_export.c); emptied at start
 *   DATA/snapshot.pending   an install from the leader in progress
 *   DATA/kv.tmp, DATA/kv.new  a store being rebuilt after a power loss
 *                           (datadir_rebuild_kv); finished or dropped at
 *                           the next start
 *
 * The node driver (bnode.c) opens a data directory; `ballot snapshot
 * restore` creates one with datadir_restore(). This file uses bnode.h for
 * its option types only and calls no libuv function, so the CLI links it
 * without the node driver's loop.
 */
#ifndef BALLOT_NET_DATADIR_H
#define BALLOT_NET_DATADIR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "bnode.h"
#include "raft.h"

/* Names of the entries of a data directory. */
#define DATADIR_WAL "wal"
#define DATADIR_KV "kv"
#define DATADIR_SNAP "snap"
#define DATADIR_EXPORT "export"

/* Error codes: the -7200 range. */
enum {
    DATADIR_EINVAL = -7201,   /* the options (this node is not a voter) */
    DATADIR_EEXIST = -7202,   /* the directory exists and is not empty */
    DATADIR_ECORRUPT = -7203, /* the snapshot file is damaged */
    DATADIR_EIO = -7204,      /* reading or writing a file failed */
};

/* fsync()s directory @dir, so that renames and new files in it last.
 * Returns 0 or -1 (errno set). */
int datadir_sync_dir(const char *dir);

/* The configuration a new cluster starts with: the members named in
 * @opts->voters (every member if none is named), all voters. Stores it in
 * @conf and returns whether @opts->id is among them. Bootstrap and restore
 * both use it, so a restored cluster has the voters a bootstrapped one
 * would have. */
bool datadir_initial_conf(const struct bnode_options *opts,
                          struct raft_conf *conf);

/* What datadir_restore() made. */
struct datadir_restored
{
    raft_index index;  /* the log continues after this index */
    raft_term term;    /* the term the new cluster's log starts from */
    uint64_t revision; /* the store revision, as in the snapshot */
    uint64_t size;     /* bytes of the snapshot file */
    struct raft_conf conf;
};

/* The term of a restored cluster's base. A snapshot file holds no term
 * (docs/kv.md), and a new cluster's terms owe nothing to the old one's:
 * every member restored from the same file agrees on (index, this term). */
#define DATADIR_RESTORE_TERM 1

/**
 * Creates the data directory @opts->data_dir of node @opts->id of a new
 * cluster whose state is the snapshot file @snapshot_path: the file is
 * verified (header and payload checksums), installed as the LMDB store,
 * and the WAL gets the snapshot's index (with DATADIR_RESTORE_TERM and
 * the configuration of datadir_initial_conf()) as its base and hard
 * state, so that ballotd started on it (without --bootstrap) takes part
 * in the new cluster from there. Every member must be restored from the
 * same file with the same members and voters.
 *
 * @opts is borrowed; only id, data_dir, members, voters and kv_map_size
 * are used. The directory must not exist or be empty; on failure what
 * this call created is removed again. Returns 0 (with @out filled),
 * DATADIR_EINVAL, DATADIR_EEXIST, DATADIR_ECORRUPT or DATADIR_EIO, with a
 * message in @err.
 */
int datadir_restore(const char *snapshot_path,
                    const struct bnode_options *opts,
                    struct datadir_restored *out,
                    char *err,
                    size_t err_len);

/**
 * Rebuilds DATA/kv of @data_dir after kv_open() refused it as possibly torn
 * by a machine crash (KV_ETORN): a new store is built aside (DATA/kv.tmp,
 * then DATA/kv.new once complete) and replaces it, from the newest snapshot
 * file in DATA/snap whose index is in [@lo, @hi] and
 * verifies (its recorded member addresses kept), or, if @lo is 0 and there
 * is none, as an empty store. The caller picks the range so that its log
 * holds every entry after any index in it: replaying them brings the store
 * back to where it was. Stores the snapshot's index (0: empty) in @used.
 * Returns 0, DATADIR_ECORRUPT (no usable snapshot) or DATADIR_EIO, with a
 * message in @err.
 */
int datadir_rebuild_kv(const char *data_dir,
                       raft_index lo,
                       raft_index hi,
                       uint64_t map_size,
                       raft_index *used,
                       char *err,
                       size_t err_len);

/* Completes a rebuild a crash interrupted: a new store that was complete
 * (DATA/kv.new) replaces DATA/kv, an incomplete one (DATA/kv.tmp) is
 * removed. Call before opening DATA/kv. Returns 0 or DATADIR_EIO. */
int datadir_finish_rebuild(const char *data_dir, char *err, size_t err_len);

#endif
