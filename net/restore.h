/*
 * restore.h - `ballotd restore FILE SETTINGS...`: builds, offline, the data
 * directory from which a node of a new cluster starts, whose state is a
 * snapshot file saved with `ballot snapshot save` (docs/operations.md,
 * "Backup and restore"). It lives beside the daemon, not in the client,
 * because it writes a node's files with the node's own code (as etcd moved
 * its restore from etcdctl to etcdutl): the `ballot` CLI speaks only the
 * client protocol.
 */
#ifndef BALLOT_NET_RESTORE_H
#define BALLOT_NET_RESTORE_H

/* Runs `ballotd restore`: @argv[0] is "restore", then optionally --json,
 * then FILE and ballotd's settings (--data, --id, --member, --voters,
 * --config). Prints what it restored to stdout (one JSON object with
 * --json) and errors to stderr. Returns the process exit code: 0 done,
 * 2 bad command line, 6 the restore failed (the CLI's codes). */
int restore_main(int argc, char **argv);

#endif
