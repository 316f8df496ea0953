/*
 * kv_test_util.h - helpers shared by the kv tests: scratch directories,
 * command builders and a deterministic random generator.
 */
#ifndef BALLOT_KV_TEST_UTIL_H
#define BALLOT_KV_TEST_UTIL_H

#include <check.h>
#include <stdint.h>
#include <stdlib.h>

#include "kv.h"

/* Creates a fresh directory under TMPDIR (or /tmp); free with
 * kvt_rmdir(). */
char *kvt_mkdtemp(void);
/* Removes a directory tree and frees @path. */
void kvt_rmdir(char *path);

/* Opens a store in @dir with @map_size (0 = default), failing the test on
 * error. */
struct kv_store *kvt_open(const char *dir, uint64_t map_size);

/* Encodes @cmd into a new allocation; fails the test if it does not
 * encode. */
uint8_t *kvt_encode(const struct kv_cmd *cmd, size_t *len);

/* Builds single-operation commands. */
uint8_t *kvt_put(const char *key, const char *value, size_t *len);
uint8_t *kvt_del(const char *key, size_t *len);

/* A batch of entries with owned data. */
struct kvt_batch
{
    struct raft_entry *e;
    size_t n;
    size_t cap;
};
void kvt_batch_add(struct kvt_batch *b,
                   raft_index index,
                   uint8_t *data,
                   size_t len);
void kvt_batch_clear(struct kvt_batch *b);
/* Applies one encoded command (@data, freed here) at @index into @res (the
 * caller frees it with kv_apply_result_free()); asserts it was applied. */
void kvt_apply_one(struct kv_store *s,
                   raft_index index,
                   uint8_t *data,
                   size_t len,
                   struct kv_apply_result *res);

/* Snapshots @src (into @src_dir.snap, removed after) and installs it in
 * @dst chunk by chunk, as a follower would. */
void kvt_snapshot_transfer(struct kv_store *src,
                           const char *src_dir,
                           struct kv_store *dst);

/* Applies a batch of puts "prefix%06u" -> value of @value_len bytes for
 * indexes [first, first + n). */
void kvt_apply_puts(struct kv_store *s,
                    raft_index first,
                    size_t n,
                    const char *prefix,
                    size_t value_len);

/* Applies entries [first, first + n) of a deterministic log: puts of one
 * of 500 keys ("key%03u"), each value naming its index. */
void kvt_apply_log(struct kv_store *s, raft_index first, size_t n);

/* Sends the snapshot file @path to @s in chunks of varying small sizes,
 * resending some, and finishes the stage. Returns what
 * kv_snapshot_open() or kv_snapshot_stage_finish() returned. */
int kvt_transfer(struct kv_store *s, const char *path);

/* Dumps the revision, applied index and every pair with its metadata into
 * a new string, to compare whole states. */
char *kvt_dump(struct kv_store *s);

/* splitmix64. */
static inline uint64_t kvt_rand(uint64_t *state)
{
    uint64_t z = (*state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}
static inline uint32_t kvt_below(uint64_t *state, uint32_t n)
{
    return (uint32_t)(kvt_rand(state) % n);
}

/* Suites. */
Suite *kv_cmd_suite(void);
Suite *kv_model_suite(void);
Suite *kv_hash_suite(void);
Suite *kv_apply_suite(void);
Suite *kv_history_suite(void);
Suite *kv_snapshot_suite(void);
Suite *kv_session_suite(void);
Suite *kv_members_suite(void);
Suite *kv_acl_suite(void);
Suite *kv_checkpoint_suite(void);
Suite *kv_space_suite(void);
Suite *kv_sequence_suite(void);
Suite *kv_integrity_suite(void);
Suite *kv_lease_suite(void);
Suite *kv_lock_suite(void);

#endif /* BALLOT_KV_TEST_UTIL_H */
