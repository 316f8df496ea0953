/*
 * test_wal.c - round trips through the log: append, sync, reopen; suffix
 * truncation; compaction; segment rollover; hard state and snapshot meta.
 */
#include <check.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "format.h"
#include "gen.h"
#include "helpers.h"
#include "wal.h"

static struct gen g;
static char dir[256];
static const uint64_t seed = 42;

static void setup(void)
{
    tmpdir_make(dir);
}

static void teardown(void)
{
    tmpdir_remove(dir);
}

static void small_opts(struct wal_options *o, uint64_t segment_bytes)
{
    wal_options_default(o);
    o->segment_bytes = segment_bytes;
}

/* Appends entries first..last of @term in batches of @batch and syncs. */
static void append_range(struct wal *wal,
                         raft_index first,
                         raft_index last,
                         raft_term term,
                         size_t batch)
{
    for (raft_index i = first; i <= last; i += batch) {
        size_t n =
            (size_t)(last - i + 1) < batch ? (size_t)(last - i + 1) : batch;
        int rc = wal_append(wal, gen_batch(&g, i, n, term, seed), n);
        ck_assert_msg(rc == 0, "append %lu: %s", (unsigned long)i,
                      wal_errmsg(wal));
    }
    ck_assert_int_eq(wal_sync(wal, NULL), 0);
}

/* Asserts that @l holds exactly entries first..last, with @term for
 * indexes at or above @term2_from and 1 below. */
static void expect_entries(const struct wal_loaded *l,
                           raft_index first,
                           raft_index last,
                           raft_index term2_from,
                           raft_term term2)
{
    ck_assert_uint_eq(l->n_entries, (last >= first ? last - first + 1 : 0));
    for (size_t i = 0; i < l->n_entries; i++) {
        const struct raft_entry *e = &l->entries[i];
        raft_term want = e->index >= term2_from ? term2 : 1;
        ck_assert_uint_eq(e->index, first + i);
        ck_assert_uint_eq(e->term, want);
        ck_assert_uint_eq(e->len, gen_len(e->index));
        ck_assert_uint_eq(
            e->type, e->index % 17 == 0 ? RAFT_ENTRY_CONF : RAFT_ENTRY_NORMAL);
        ck_assert(entry_check(e, seed));
    }
}

/* Reopens @dir with @o and asserts it holds exactly entries 1..@last of
 * term 1, found without a repair. */
static void reopen_expect(const struct wal_options *o, raft_index last)
{
    struct wal_loaded l;
    struct wal *wal = wal_open_ok(dir, o, &l);
    expect_entries(&l, 1, last, 5000, 1);
    ck_assert_uint_eq(l.repairs, 0);
    wal_loaded_free(wal, &l);
    wal_destroy(wal);
}

/* Entries appended in batches and synced come back identical after a
 * reopen. */
START_TEST(test_wal_returns_appended_entries_after_reopen)
{
    struct wal_loaded l;
    struct wal *wal = wal_open_ok(dir, NULL, &l);

    ck_assert_uint_eq(l.n_entries, 0);
    ck_assert_uint_eq(wal_last_index(wal), 0);
    append_range(wal, 1, 300, 1, 7);
    ck_assert_uint_eq(wal_durable_index(wal), 300);
    wal_loaded_free(wal, &l);
    wal_destroy(wal);

    wal = wal_open_ok(dir, NULL, &l);
    expect_entries(&l, 1, 300, 1000, 1);
    ck_assert_uint_eq(l.repairs, 0);
    ck_assert_uint_eq(wal_last_index(wal), 300);
    ck_assert_uint_eq(wal_durable_index(wal), 300);
    wal_loaded_free(wal, &l);
    wal_destroy(wal);
}
END_TEST

/* The durable index moves only when wal_sync() returns, and then covers
 * every record appended before it (group commit). */
START_TEST(test_wal_sync_makes_the_whole_group_durable_at_once)
{
    struct wal_loaded l;
    struct wal *wal = wal_open_ok(dir, NULL, &l);
    raft_index durable = 99;

    for (raft_index i = 1; i <= 16; i++) {
        ck_assert_int_eq(wal_append(wal, gen_batch(&g, i, 1, 1, seed), 1), 0);
        ck_assert_uint_eq(wal_durable_index(wal), 0);
    }
    ck_assert_int_eq(wal_sync(wal, &durable), 0);
    ck_assert_uint_eq(durable, 16);
    ck_assert_uint_eq(wal_durable_index(wal), 16);
    wal_loaded_free(wal, &l);
    wal_destroy(wal);
}
END_TEST

/* Appending at an index already in the log replaces that entry and every
 * later one, and the durable index falls back until the next sync. */
START_TEST(test_wal_append_at_an_existing_index_replaces_the_suffix)
{
    struct wal_loaded l;
    struct wal *wal = wal_open_ok(dir, NULL, &l);

    append_range(wal, 1, 40, 1, 10);
    ck_assert_int_eq(wal_append(wal, gen_batch(&g, 25, 5, 2, seed), 5), 0);
    ck_assert_uint_eq(wal_durable_index(wal), 24);
    ck_assert_uint_eq(wal_last_index(wal), 29);
    ck_assert_int_eq(wal_sync(wal, NULL), 0);
    ck_assert_uint_eq(wal_durable_index(wal), 29);
    wal_loaded_free(wal, &l);
    wal_destroy(wal);

    wal = wal_open_ok(dir, NULL, &l);
    expect_entries(&l, 1, 29, 25, 2);
    /* The log continues after the replaced suffix. */
    ck_assert_int_eq(wal_append(wal, gen_batch(&g, 30, 3, 2, seed), 3), 0);
    ck_assert_int_eq(wal_sync(wal, NULL), 0);
    wal_loaded_free(wal, &l);
    wal_destroy(wal);

    wal = wal_open_ok(dir, NULL, &l);
    expect_entries(&l, 1, 32, 25, 2);
    wal_loaded_free(wal, &l);
    wal_destroy(wal);
}
END_TEST

/* wal_truncate() drops a suffix on its own, durably after a sync. */
START_TEST(test_wal_truncate_drops_entries_at_and_after_the_index)
{
    struct wal_loaded l;
    struct wal *wal = wal_open_ok(dir, NULL, &l);

    append_range(wal, 1, 20, 1, 20);
    ck_assert_int_eq(wal_truncate(wal, 11), 0);
    ck_assert_uint_eq(wal_last_index(wal), 10);
    ck_assert_uint_eq(wal_durable_index(wal), 10);
    ck_assert_int_eq(wal_truncate(wal, 0), STORAGE_EINVAL);
    ck_assert_int_eq(wal_sync(wal, NULL), 0);
    wal_loaded_free(wal, &l);
    wal_destroy(wal);

    wal = wal_open_ok(dir, NULL, &l);
    expect_entries(&l, 1, 10, 1000, 1);
    wal_loaded_free(wal, &l);
    wal_destroy(wal);
}
END_TEST

/* A gap, a non-contiguous batch, term 0 or an unknown type is refused
 * without touching the log. */
START_TEST(test_wal_append_rejects_gaps_and_malformed_entries)
{
    struct wal_loaded l;
    struct wal *wal = wal_open_ok(dir, NULL, &l);
    struct raft_entry *e;

    append_range(wal, 1, 5, 1, 5);
    ck_assert_int_eq(wal_append(wal, gen_batch(&g, 7, 1, 1, seed), 1),
                     STORAGE_EINVAL);
    ck_assert_ptr_nonnull(strstr(wal_errmsg(wal), "gap"));
    e = (struct raft_entry *)gen_batch(&g, 6, 3, 1, seed);
    e[1].index = 9;
    ck_assert_int_eq(wal_append(wal, e, 3), STORAGE_EINVAL);
    e = (struct raft_entry *)gen_batch(&g, 6, 1, 0, seed);
    ck_assert_int_eq(wal_append(wal, e, 1), STORAGE_EINVAL);
    e = (struct raft_entry *)gen_batch(&g, 6, 1, 1, seed);
    e[0].type = 9;
    ck_assert_int_eq(wal_append(wal, e, 1), STORAGE_EINVAL);
    ck_assert(!wal_poisoned(wal));
    ck_assert_uint_eq(wal_last_index(wal), 5);
    wal_loaded_free(wal, &l);
    wal_destroy(wal);
}
END_TEST

/* A log that outgrows its segment size continues in new segments and reads
 * back whole across all of them. */
START_TEST(test_wal_rolls_over_across_many_segments)
{
    static const enum wal_prealloc modes[] = {
        WAL_PREALLOC_NONE, WAL_PREALLOC_FALLOCATE, WAL_PREALLOC_ZERO};
    for (size_t m = 0; m < 3; m++) {
        struct wal_options o;
        struct wal_loaded l;
        struct wal *wal;
        char sub[300];

        snprintf(sub, sizeof sub, "%s/m%zu", dir, m);
        small_opts(&o, 4096);
        o.prealloc = modes[m];
        wal = wal_open_ok(sub, &o, &l);
        append_range(wal, 1, 1000, 1, 13);
        ck_assert_uint_ge(wal_segment_count(wal), 50);
        wal_loaded_free(wal, &l);
        wal_destroy(wal);

        wal = wal_open_ok(sub, &o, &l);
        expect_entries(&l, 1, 1000, 5000, 1);
        ck_assert_uint_eq(l.repairs, 0);
        wal_loaded_free(wal, &l);
        wal_destroy(wal);
        tmpdir_remove(sub);
    }
}
END_TEST

/* A rollover that comes while the next segment is only partly zero-filled
 * ahead finishes it, and the log reads back whole. */
START_TEST(test_wal_rollover_finishes_a_partly_prepared_segment)
{
    struct wal_options o;
    struct wal_loaded l;
    struct wal *wal;

    small_opts(&o, 65536);
    wal = wal_open_ok(dir, &o, &l);
    /* One small synced append prepares only a few hundred bytes ahead. */
    append_range(wal, 1, 1, 1, 1);
    ck_assert_int_eq(access(path_in(dir, "0000000000000002.seg.tmp"), F_OK), 0);
    /* One batch bigger than a segment then forces the rollover. */
    append_range(wal, 2, 257, 1, 256);
    ck_assert_uint_ge(wal_segment_count(wal), 2);
    ck_assert_uint_eq(file_size(path_in(dir, "0000000000000002.seg")), 65536);
    wal_loaded_free(wal, &l);
    wal_destroy(wal);
    /* The prepared file does not outlive the wal. */
    ck_assert_int_eq(access(path_in(dir, "0000000000000003.seg.tmp"), F_OK),
                     -1);

    reopen_expect(&o, 257);
}
END_TEST

/* With prepare_explicitly a sync leaves the next segment alone; each
 * wal_prepare_next() zero-fills twice what was appended since the last one,
 * and a rollover finishes what it finds. */
START_TEST(test_wal_explicit_preparation_zero_fills_only_when_asked)
{
    const char *next = NULL;
    struct wal_options o;
    struct wal_loaded l;
    struct wal *wal;
    uint64_t after_one;

    small_opts(&o, 65536);
    o.prepare_explicitly = true;
    wal = wal_open_ok(dir, &o, &l);
    append_range(wal, 1, 1, 1, 1);
    next = path_in(dir, "0000000000000002.seg.tmp");
    ck_assert_int_eq(access(next, F_OK), -1);
    wal_prepare_next(wal);
    ck_assert_int_eq(access(next, F_OK), 0);
    after_one = file_size(next);
    ck_assert_uint_gt(after_one, 64);
    /* Nothing appended since: nothing more to zero. */
    wal_prepare_next(wal);
    ck_assert_uint_eq(file_size(next), after_one);
    append_range(wal, 2, 3, 1, 2);
    ck_assert_uint_eq(file_size(next), after_one);
    wal_prepare_next(wal);
    ck_assert_uint_gt(file_size(next), after_one);
    /* A batch bigger than a segment forces the rollover. */
    append_range(wal, 4, 259, 1, 256);
    ck_assert_uint_ge(wal_segment_count(wal), 2);
    ck_assert_uint_eq(file_size(path_in(dir, "0000000000000002.seg")), 65536);
    wal_loaded_free(wal, &l);
    wal_destroy(wal);

    reopen_expect(&o, 259);
}
END_TEST

/* The POSIX file interface with writeback() counted. */
static struct storage_io counting_io;
static unsigned writebacks;
static uint64_t written_back;

static int count_writeback(void *ctx, int fd, uint64_t off, uint64_t len)
{
    (void)ctx;
    (void)fd;
    (void)off;
    writebacks++;
    written_back += len;
    return 0;
}

/* Zeroing ahead after every one of 200 small syncs starts the writeback of
 * the zeros in a few large chunks (each call submits I/O), and a rollover
 * still finds the segment whole. */
START_TEST(test_wal_starts_writeback_of_the_zeros_in_chunks)
{
    struct wal_options o;
    struct wal_loaded l;
    struct wal *wal;

    counting_io = *storage_io_posix();
    counting_io.writeback = count_writeback;
    writebacks = 0;
    written_back = 0;
    small_opts(&o, 65536);
    o.io = &counting_io;
    wal = wal_open_ok(dir, &o, &l);
    for (raft_index i = 1; i <= 200; i++) {
        append_range(wal, i, i, 1, 1);
    }
    /* About twice the appended bytes are zeroed, in chunks of 8 KiB (an
     * eighth of the segment). */
    ck_assert_uint_ge(writebacks, 2);
    ck_assert_uint_le(writebacks, 40);
    ck_assert_uint_ge(written_back, (uint64_t)writebacks * 8192);
    append_range(wal, 201, 456, 1, 256);
    ck_assert_uint_ge(wal_segment_count(wal), 2);
    wal_loaded_free(wal, &l);
    wal_destroy(wal);

    reopen_expect(&o, 456);
}
END_TEST

/* Compaction deletes only whole segments below the snapshot; everything
 * after the snapshot is still loaded. */
START_TEST(test_wal_compact_removes_only_segments_below_the_snapshot)
{
    struct wal_options o;
    struct wal_loaded l;
    struct wal *wal;
    struct raft_snapshot_meta meta = {.index = 600, .term = 1, .size = 7};
    size_t before;

    small_opts(&o, 4096);
    meta.conf.n = 1;
    meta.conf.members[0].id = 1;
    meta.conf.members[0].role = RAFT_VOTER;
    wal = wal_open_ok(dir, &o, &l);
    append_range(wal, 1, 1000, 1, 10);
    before = wal_segment_count(wal);
    ck_assert_int_eq(wal_save_snapshot_meta(wal, &meta), 0);
    ck_assert_int_eq(wal_compact(wal, 601), 0);
    ck_assert_uint_lt(wal_segment_count(wal), before);
    /* Compacting again with the same bound removes nothing more. */
    before = wal_segment_count(wal);
    ck_assert_int_eq(wal_compact(wal, 601), 0);
    ck_assert_uint_eq(wal_segment_count(wal), before);
    wal_loaded_free(wal, &l);
    wal_destroy(wal);

    wal = wal_open_ok(dir, &o, &l);
    ck_assert(l.has_snapshot);
    ck_assert_uint_eq(l.snapshot.index, 600);
    expect_entries(&l, 601, 1000, 5000, 1);
    ck_assert_uint_eq(wal_segment_count(wal), before);
    wal_loaded_free(wal, &l);
    wal_destroy(wal);
}
END_TEST

/* Compaction never removes the segment being written, even when every
 * entry is below the bound. */
START_TEST(test_wal_compact_keeps_the_segment_being_written)
{
    struct wal_options o;
    struct wal_loaded l;
    struct wal *wal;

    small_opts(&o, 4096);
    wal = wal_open_ok(dir, &o, &l);
    append_range(wal, 1, 200, 1, 10);
    ck_assert_int_eq(wal_compact(wal, 1000000), 0);
    ck_assert_uint_eq(wal_segment_count(wal), 1);
    ck_assert_int_eq(wal_append(wal, gen_batch(&g, 201, 1, 1, seed), 1), 0);
    ck_assert_int_eq(wal_sync(wal, NULL), 0);
    wal_loaded_free(wal, &l);
    wal_destroy(wal);
}
END_TEST

/* A snapshot installed past the end of the log resets it: the next entry
 * follows the snapshot, and only those entries are loaded. */
START_TEST(test_wal_truncate_past_the_end_restarts_the_log_after_a_snapshot)
{
    struct wal_loaded l;
    struct wal *wal = wal_open_ok(dir, NULL, &l);
    struct raft_snapshot_meta meta = {.index = 50, .term = 3, .size = 1};

    meta.conf.n = 1;
    meta.conf.members[0].id = 7;
    meta.conf.members[0].role = RAFT_VOTER;
    append_range(wal, 1, 20, 1, 20);
    ck_assert_int_eq(wal_save_snapshot_meta(wal, &meta), 0);
    ck_assert_int_eq(wal_truncate(wal, 51), 0);
    ck_assert_uint_eq(wal_last_index(wal), 50);
    ck_assert_int_eq(wal_append(wal, gen_batch(&g, 51, 10, 3, seed), 10), 0);
    ck_assert_int_eq(wal_sync(wal, NULL), 0);
    wal_loaded_free(wal, &l);
    wal_destroy(wal);

    wal = wal_open_ok(dir, NULL, &l);
    ck_assert(l.has_snapshot);
    expect_entries(&l, 51, 60, 51, 3);
    wal_loaded_free(wal, &l);
    wal_destroy(wal);
}
END_TEST

/* If a crash lost the log reset that followed a snapshot, the entries
 * after a disagreeing entry are dropped at open and the log continues
 * right after the snapshot. */
START_TEST(test_wal_open_drops_entries_that_contradict_the_snapshot)
{
    struct log_capture cap = {0};
    struct wal_options o;
    struct wal_loaded l;
    struct wal *wal;
    struct raft_snapshot_meta meta = {.index = 5, .term = 2, .size = 1};

    small_opts(&o, 65536);
    o.log = log_capture_cb;
    o.log_ctx = &cap;
    meta.conf.n = 1;
    meta.conf.members[0].id = 1;
    meta.conf.members[0].role = RAFT_VOTER;
    wal = wal_open_ok(dir, &o, &l);
    append_range(wal, 1, 10, 1, 10);
    ck_assert_int_eq(wal_save_snapshot_meta(wal, &meta), 0);
    wal_loaded_free(wal, &l);
    wal_destroy(wal);

    wal = wal_open_ok(dir, &o, &l);
    ck_assert_uint_eq(l.n_entries, 0);
    ck_assert_uint_eq(l.repairs, 1);
    ck_assert_uint_eq(wal_last_index(wal), 5);
    ck_assert_ptr_nonnull(strstr(cap.last, "snapshot says 2"));
    ck_assert_int_eq(wal_append(wal, gen_batch(&g, 6, 2, 2, seed), 2), 0);
    ck_assert_int_eq(wal_sync(wal, NULL), 0);
    wal_loaded_free(wal, &l);
    wal_destroy(wal);

    wal = wal_open_ok(dir, &o, &l);
    expect_entries(&l, 6, 7, 6, 2);
    ck_assert_uint_eq(l.repairs, 0);
    wal_loaded_free(wal, &l);
    wal_destroy(wal);
}
END_TEST

/* Hard state survives a reopen. A commit-only change rides in the log; a
 * term or vote change replaces the file and leaves no temporary behind. */
START_TEST(test_wal_hard_state_is_replaced_atomically_and_survives_reopen)
{
    struct wal_loaded l;
    struct wal *wal = wal_open_ok(dir, NULL, &l);
    struct raft_hard_state hs = {.term = 5, .vote = 2, .commit = 0};

    ck_assert_uint_eq(l.hs.term, 0);
    append_range(wal, 1, 30, 1, 30);
    ck_assert_int_eq(wal_save_hard_state(wal, &hs), 0);
    ck_assert_int_eq(access(path_in(dir, "hardstate.tmp"), F_OK), -1);
    hs.commit = 25;
    ck_assert_int_eq(wal_save_hard_state(wal, &hs), 0);
    ck_assert_int_eq(wal_sync(wal, NULL), 0);
    wal_loaded_free(wal, &l);
    wal_destroy(wal);

    wal = wal_open_ok(dir, NULL, &l);
    ck_assert_uint_eq(l.hs.term, 5);
    ck_assert_uint_eq(l.hs.vote, 2);
    ck_assert_uint_eq(l.hs.commit, 25);
    hs.term = 6;
    hs.vote = 0;
    ck_assert_int_eq(wal_save_hard_state(wal, &hs), 0);
    wal_loaded_free(wal, &l);
    wal_destroy(wal);

    wal = wal_open_ok(dir, NULL, &l);
    ck_assert_uint_eq(l.hs.term, 6);
    ck_assert_uint_eq(l.hs.vote, 0);
    ck_assert_uint_eq(l.hs.commit, 25);
    wal_loaded_free(wal, &l);
    wal_destroy(wal);
}
END_TEST

/* A leftover temporary file from a replacement cut short by a crash is
 * removed at open and the previous contents win. */
START_TEST(test_wal_open_ignores_and_removes_an_unfinished_replacement)
{
    struct wal_loaded l;
    struct wal *wal = wal_open_ok(dir, NULL, &l);
    struct raft_hard_state hs = {.term = 3, .vote = 1, .commit = 0};

    ck_assert_int_eq(wal_save_hard_state(wal, &hs), 0);
    wal_loaded_free(wal, &l);
    wal_destroy(wal);
    file_write_at(path_in(dir, "hardstate.tmp"), 0, "garbage", 7);
    file_write_at(path_in(dir, "snapshot.meta.tmp"), 0, "junk", 4);

    wal = wal_open_ok(dir, NULL, &l);
    ck_assert_uint_eq(l.hs.term, 3);
    ck_assert_uint_eq(l.repairs, 2);
    ck_assert(!l.has_snapshot);
    ck_assert_int_eq(access(path_in(dir, "hardstate.tmp"), F_OK), -1);
    wal_loaded_free(wal, &l);
    wal_destroy(wal);
}
END_TEST

/* Snapshot meta, configuration included, survives a reopen. */
START_TEST(test_wal_snapshot_meta_round_trips_with_its_configuration)
{
    struct wal_loaded l;
    struct wal *wal = wal_open_ok(dir, NULL, &l);
    struct raft_snapshot_meta meta = {.index = 9, .term = 4, .size = 12345};
    struct raft_snapshot_meta bad;

    meta.conf.n = 3;
    for (uint32_t i = 0; i < 3; i++) {
        meta.conf.members[i].id = 10 + i;
        meta.conf.members[i].role = i == 2 ? RAFT_LEARNER : RAFT_VOTER;
    }
    bad = meta;
    bad.conf.members[1].id = 10; /* duplicate id */
    ck_assert_int_eq(wal_save_snapshot_meta(wal, &bad), STORAGE_EINVAL);
    ck_assert(!wal_poisoned(wal));
    ck_assert_int_eq(wal_save_snapshot_meta(wal, &meta), 0);
    wal_loaded_free(wal, &l);
    wal_destroy(wal);

    wal = wal_open_ok(dir, NULL, &l);
    ck_assert(l.has_snapshot);
    ck_assert_uint_eq(l.snapshot.index, 9);
    ck_assert_uint_eq(l.snapshot.term, 4);
    ck_assert_uint_eq(l.snapshot.size, 12345);
    ck_assert_uint_eq(l.snapshot.conf.n, 3);
    ck_assert_uint_eq(l.snapshot.conf.members[2].id, 12);
    ck_assert_uint_eq(l.snapshot.conf.members[2].role, RAFT_LEARNER);
    wal_loaded_free(wal, &l);
    wal_destroy(wal);
}
END_TEST

/* wal_reset() drops every entry, even those below its index, and the log
 * restarts exactly there. */
START_TEST(test_wal_reset_drops_every_entry_and_restarts_at_the_index)
{
    struct wal_loaded l;
    struct wal *wal = wal_open_ok(dir, NULL, &l);
    struct raft_snapshot_meta meta = {.index = 15, .term = 2, .size = 1};

    meta.conf.n = 1;
    meta.conf.members[0].id = 1;
    meta.conf.members[0].role = RAFT_VOTER;
    append_range(wal, 1, 30, 1, 30);
    ck_assert_int_eq(wal_save_snapshot_meta(wal, &meta), 0);
    ck_assert_int_eq(wal_reset(wal, 16), 0);
    ck_assert_uint_eq(wal_last_index(wal), 15);
    ck_assert_int_eq(wal_reset(wal, 0), STORAGE_EINVAL);
    ck_assert_int_eq(wal_append(wal, gen_batch(&g, 16, 3, 2, seed), 3), 0);
    ck_assert_int_eq(wal_sync(wal, NULL), 0);
    wal_loaded_free(wal, &l);
    wal_destroy(wal);

    wal = wal_open_ok(dir, NULL, &l);
    expect_entries(&l, 16, 18, 16, 2);
    ck_assert_uint_eq(l.repairs, 0);
    wal_loaded_free(wal, &l);
    wal_destroy(wal);
}
END_TEST

/* A record larger than the segment size gets a segment of its own, and
 * entries over the record limit are refused. */
START_TEST(test_wal_gives_an_oversized_record_a_segment_of_its_own)
{
    static uint8_t big[20000];
    struct wal_options o;
    struct wal_loaded l;
    struct wal *wal;
    struct raft_entry e = {.term = 1, .type = RAFT_ENTRY_NORMAL};

    small_opts(&o, 4096);
    wal = wal_open_ok(dir, &o, &l);
    append_range(wal, 1, 3, 1, 3);
    memset(big, 0xab, sizeof big);
    e.index = 4;
    e.len = sizeof big;
    e.data = big;
    ck_assert_int_eq(wal_append(wal, &e, 1), 0);
    append_range(wal, 5, 6, 1, 2);
    e.index = 7;
    e.len = 64u * 1024u * 1024u + 1u;
    ck_assert_int_eq(wal_append(wal, &e, 1), STORAGE_ETOOBIG);
    ck_assert_uint_ge(wal_segment_count(wal), 3);
    wal_loaded_free(wal, &l);
    wal_destroy(wal);

    wal = wal_open_ok(dir, &o, &l);
    ck_assert_uint_eq(l.n_entries, 6);
    ck_assert_uint_eq(l.entries[3].len, sizeof big);
    ck_assert_int_eq(memcmp(l.entries[3].data, big, sizeof big), 0);
    ck_assert(entry_check(&l.entries[5], seed));
    wal_loaded_free(wal, &l);
    wal_destroy(wal);
}
END_TEST

/* Opening twice, or using a wal that was never opened, is refused. */
START_TEST(test_wal_refuses_use_before_open_and_a_second_open)
{
    struct wal_options o;
    struct wal_loaded l;
    struct wal *wal;

    wal_options_default(&o);
    ck_assert_int_eq(wal_create(&o, &wal), 0);
    ck_assert_int_eq(wal_sync(wal, NULL), STORAGE_ESTATE);
    ck_assert_int_eq(wal_open(wal, dir, &l), 0);
    ck_assert_int_eq(wal_open(wal, dir, &l), STORAGE_ESTATE);
    wal_destroy(wal);
    o.segment_bytes = 10;
    ck_assert_int_eq(wal_create(&o, &wal), STORAGE_EINVAL);
    ck_assert_str_eq(storage_strerror(STORAGE_EPOISONED),
                     "storage refuses writes after a failure");
    ck_assert_str_eq(storage_strerror(-1), "unknown error");
}
END_TEST

#ifdef BALLOT_HAVE_RAFT
/* Storage's copy of the configuration codec writes exactly the bytes of
 * raft_conf_encode(), and each side reads what the other wrote. */
START_TEST(test_wal_conf_codec_matches_the_consensus_core)
{
    struct raft_conf conf = {.n = 4};
    struct raft_conf back;
    uint8_t a[RAFT_CONF_ENCODED_MAX];
    uint8_t b[RAFT_CONF_ENCODED_MAX];
    size_t la;
    size_t lb;

    for (uint32_t i = 0; i < conf.n; i++) {
        conf.members[i].id = 0x0102030405060708ULL + i * 977;
        conf.members[i].role = i == 3 ? RAFT_LEARNER : RAFT_VOTER;
    }
    format_conf_encode(&conf, a, &la);
    raft_conf_encode(&conf, b, &lb);
    ck_assert_uint_eq(la, lb);
    ck_assert_int_eq(memcmp(a, b, la), 0);
    ck_assert_int_eq(raft_conf_decode(a, la, &back), 0);
    ck_assert_int_eq(
        memcmp(&back.members, &conf.members, sizeof conf.members[0] * conf.n),
        0);
    ck_assert_int_eq(format_conf_decode(b, lb, &back), 0);
    ck_assert_uint_eq(back.n, conf.n);
}
END_TEST
#endif

Suite *wal_suite(void);

Suite *wal_suite(void)
{
    Suite *s = suite_create("wal");
    TCase *tc = tcase_create("round_trip");

    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, test_wal_returns_appended_entries_after_reopen);
    tcase_add_test(tc, test_wal_sync_makes_the_whole_group_durable_at_once);
    tcase_add_test(tc,
                   test_wal_append_at_an_existing_index_replaces_the_suffix);
    tcase_add_test(tc, test_wal_truncate_drops_entries_at_and_after_the_index);
    tcase_add_test(tc, test_wal_append_rejects_gaps_and_malformed_entries);
    tcase_add_test(tc, test_wal_rolls_over_across_many_segments);
    tcase_add_test(tc, test_wal_rollover_finishes_a_partly_prepared_segment);
    tcase_add_test(tc,
                   test_wal_explicit_preparation_zero_fills_only_when_asked);
    tcase_add_test(tc, test_wal_starts_writeback_of_the_zeros_in_chunks);
    tcase_add_test(tc,
                   test_wal_compact_removes_only_segments_below_the_snapshot);
    tcase_add_test(tc, test_wal_compact_keeps_the_segment_being_written);
    tcase_add_test(
        tc, test_wal_truncate_past_the_end_restarts_the_log_after_a_snapshot);
    tcase_add_test(tc,
                   test_wal_open_drops_entries_that_contradict_the_snapshot);
    tcase_add_test(
        tc, test_wal_hard_state_is_replaced_atomically_and_survives_reopen);
    tcase_add_test(tc,
                   test_wal_open_ignores_and_removes_an_unfinished_replacement);
    tcase_add_test(tc,
                   test_wal_snapshot_meta_round_trips_with_its_configuration);
    tcase_add_test(tc, test_wal_refuses_use_before_open_and_a_second_open);
    tcase_add_test(tc,
                   test_wal_reset_drops_every_entry_and_restarts_at_the_index);
    tcase_add_test(tc, test_wal_gives_an_oversized_record_a_segment_of_its_own);
#ifdef BALLOT_HAVE_RAFT
    tcase_add_test(tc, test_wal_conf_codec_matches_the_consensus_core);
#endif
    suite_add_tcase(s, tc);
    return s;
}
