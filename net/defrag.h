/*
 * defrag.h - `ballotd defrag --data DIR`: gives the free pages of a stopped
 * node's store back to the file system (kv_defrag(): a compacting copy
 * swapped in atomically). The cluster keeps taking writes meanwhile on the
 * other nodes; the node catches up from its log when it starts again
 * (docs/operations.md, "Space").
 */
#ifndef BALLOT_NET_DEFRAG_H
#define BALLOT_NET_DEFRAG_H

/* Runs `ballotd defrag`: @argv[0] is "defrag", then --data DIR. Prints the
 * store's size on disk before and after. Returns the process exit code: 0
 * done, 2 bad command line, 6 refused or failed. */
int defrag_main(int argc, char **argv);

#endif
