/*
 * test_recovery.c - damage injected into segment, hard state and snapshot
 * meta files: a torn tail is repaired exactly as docs/storage.md says, and
 * damage anywhere else is refused with an error naming file and offset.
 */
#include <check.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "format.h"
#include "gen.h"
#include "helpers.h"
#include "wal.h"

#define SEG1 "0000000000000001.seg"

static struct gen g;
static char dir[256];
static const uint64_t seed = 7;

static void setup(void)
{
    tmpdir_make(dir);
}

static void teardown(void)
{
    tmpdir_remove(dir);
}

/* Writes entries 1..n (term 1) into a fresh wal with @prealloc and closes
 * it. Returns the offset of each record in @off (n+1 values: the last is
 * the end of the written part). */
static void write_log(enum wal_prealloc prealloc, size_t n, uint64_t *off)
{
    struct wal_options o;
    struct wal_loaded l;
    struct wal *wal;

    wal_options_default(&o);
    o.segment_bytes = 65536;
    o.prealloc = prealloc;
    wal = wal_open_ok(dir, &o, &l);
    ck_assert_int_eq(wal_append(wal, gen_batch(&g, 1, n, 1, seed), n), 0);
    ck_assert_int_eq(wal_sync(wal, NULL), 0);
    wal_loaded_free(wal, &l);
    wal_destroy(wal);
    off[0] = FORMAT_SEG_HEADER_BYTES;
    for (size_t i = 0; i < n; i++) {
        off[i + 1] = off[i] + format_record_size(gen_len(i + 1));
    }
}

/* Opens @dir expecting failure; returns the error message. */
static const char *open_fails(int want)
{
    static char msg[256];
    struct wal_options o;
    struct wal_loaded l;
    struct wal *wal;
    int rc;

    wal_options_default(&o);
    o.segment_bytes = 65536;
    ck_assert_int_eq(wal_create(&o, &wal), 0);
    rc = wal_open(wal, dir, &l);
    ck_assert_msg(rc == want, "open returned %d (%s)", rc, wal_errmsg(wal));
    snprintf(msg, sizeof msg, "%s", wal_errmsg(wal));
    ck_assert_ptr_null(l.entries);
    ck_assert_int_eq(wal_append(wal, gen_batch(&g, 1, 1, 1, seed), 1),
                     STORAGE_EPOISONED);
    wal_destroy(wal);
    return msg;
}

static void expect_prefix(const struct wal_loaded *l, size_t n)
{
    ck_assert_uint_eq(l->n_entries, n);
    for (size_t i = 0; i < n; i++) {
        ck_assert_uint_eq(l->entries[i].index, i + 1);
        ck_assert(entry_check(&l->entries[i], seed));
    }
}

/* A final record cut short (file truncated in its middle, no
 * preallocation) is erased, reported, and the log goes on after it. */
START_TEST(test_recovery_cuts_off_a_final_record_cut_short)
{
    uint64_t off[11];
    struct log_capture cap = {0};
    struct wal_options o;
    struct wal_loaded l;
    struct wal *wal;

    write_log(WAL_PREALLOC_NONE, 10, off);
    file_truncate(path_in(dir, SEG1), off[9] + 20);
    wal_options_default(&o);
    o.log = log_capture_cb;
    o.log_ctx = &cap;
    wal = wal_open_ok(dir, &o, &l);
    expect_prefix(&l, 9);
    ck_assert_uint_eq(l.repairs, 1);
    ck_assert_uint_gt(l.torn_bytes, 0);
    ck_assert_uint_le(l.torn_bytes, 20);
    ck_assert_int_eq(cap.last_level, STORAGE_LOG_WARN);
    ck_assert_ptr_nonnull(strstr(cap.last, "torn tail"));
    /* Appending after the repair works and survives a reopen. */
    ck_assert_int_eq(wal_append(wal, gen_batch(&g, 10, 2, 1, seed), 2), 0);
    ck_assert_int_eq(wal_sync(wal, NULL), 0);
    wal_loaded_free(wal, &l);
    wal_destroy(wal);
    wal = wal_open_ok(dir, &o, &l);
    expect_prefix(&l, 11);
    ck_assert_uint_eq(l.repairs, 0);
    wal_loaded_free(wal, &l);
    wal_destroy(wal);
}
END_TEST

/* In a preallocated segment a torn final record is followed by zeros; it is
 * erased the same way. */
START_TEST(test_recovery_cuts_off_a_torn_record_in_a_zeroed_segment)
{
    uint64_t off[11];
    struct wal_loaded l;
    struct wal *wal;
    uint8_t zero[600] = {0};
    uint64_t len;

    write_log(WAL_PREALLOC_ZERO, 10, off);
    len = off[10] - off[9];
    file_write_at(path_in(dir, SEG1), off[9] + len / 2, zero, len - len / 2);
    wal = wal_open_ok(dir, NULL, &l);
    expect_prefix(&l, 9);
    ck_assert_uint_eq(l.repairs, 1);
    ck_assert_uint_eq(file_size(path_in(dir, SEG1)), 65536);
    wal_loaded_free(wal, &l);
    wal_destroy(wal);
}
END_TEST

/* A bad checksum on the very last record, with nothing valid after it, is
 * a torn write: repaired. */
START_TEST(test_recovery_cuts_off_a_final_record_with_a_bad_checksum)
{
    uint64_t off[11];
    struct wal_loaded l;
    struct wal *wal;

    write_log(WAL_PREALLOC_ZERO, 10, off);
    file_flip_bit(path_in(dir, SEG1), off[9] + 8, 3);
    wal = wal_open_ok(dir, NULL, &l);
    expect_prefix(&l, 9);
    ck_assert_uint_eq(l.repairs, 1);
    wal_loaded_free(wal, &l);
    wal_destroy(wal);
}
END_TEST

/* A flipped bit in any record but the last is refused, and the message
 * names the segment and the record's offset. */
START_TEST(test_recovery_refuses_a_bit_flip_in_a_middle_record)
{
    uint64_t off[11];
    char want[128];

    write_log(WAL_PREALLOC_ZERO, 10, off);
    file_flip_bit(path_in(dir, SEG1), off[4] + 40, 0);
    snprintf(want, sizeof want,
             "wal: " SEG1 " offset %" PRIu64 ": checksum mismatch", off[4]);
    ck_assert_str_eq(open_fails(STORAGE_ECORRUPT), want);
}
END_TEST

/* A damaged segment header is refused at offset 0. */
START_TEST(test_recovery_refuses_a_damaged_segment_header)
{
    uint64_t off[4];

    write_log(WAL_PREALLOC_ZERO, 3, off);
    file_flip_bit(path_in(dir, SEG1), 20, 1);
    ck_assert_str_eq(open_fails(STORAGE_ECORRUPT),
                     "wal: " SEG1
                     " offset 0: segment header checksum mismatch");
}
END_TEST

/* A record with a valid checksum but an index out of order is refused
 * even at the tail: it is not a torn write. */
START_TEST(test_recovery_refuses_an_index_out_of_order)
{
    uint64_t off[4];
    uint8_t rec[64];
    struct format_record r = {.type = FORMAT_REC_ENTRY,
                              .entry_type = RAFT_ENTRY_NORMAL,
                              .term = 1,
                              .index = 9,
                              .len = 0};
    char want[128];

    write_log(WAL_PREALLOC_ZERO, 3, off);
    format_record_encode(&r, rec);
    file_write_at(path_in(dir, SEG1), off[3], rec, format_record_size(0));
    snprintf(want, sizeof want,
             "wal: " SEG1 " offset %" PRIu64
             ": entry index 9 out of order (expected 4)",
             off[3]);
    ck_assert_str_eq(open_fails(STORAGE_ECORRUPT), want);
}
END_TEST

/* Damage at the end of a segment that is not the last is refused: older
 * segments were synced whole before the next one was created. */
START_TEST(test_recovery_refuses_damage_at_the_end_of_an_older_segment)
{
    struct wal_options o;
    struct wal_loaded l;
    struct wal *wal;
    uint64_t end = FORMAT_SEG_HEADER_BYTES;
    raft_index i = 1;

    wal_options_default(&o);
    o.segment_bytes = 4096;
    wal = wal_open_ok(dir, &o, &l);
    for (; i <= 40; i++) {
        ck_assert_int_eq(wal_append(wal, gen_batch(&g, i, 1, 1, seed), 1), 0);
    }
    ck_assert_int_eq(wal_sync(wal, NULL), 0);
    ck_assert_uint_ge(wal_segment_count(wal), 2);
    wal_loaded_free(wal, &l);
    wal_destroy(wal);
    /* Find the last record of segment 1. */
    for (i = 1;; i++) {
        uint64_t next = end + format_record_size(gen_len(i));
        if (next > 4096) {
            break;
        }
        end = next;
    }
    end -= format_record_size(gen_len(i - 1));
    file_flip_bit(path_in(dir, SEG1), end + 30, 2);
    ck_assert_ptr_nonnull(
        strstr(open_fails(STORAGE_ECORRUPT), "wal: " SEG1 " offset "));
}
END_TEST

/* A segment missing from the middle of the sequence is refused. */
START_TEST(test_recovery_refuses_a_missing_segment)
{
    struct wal_options o;
    struct wal_loaded l;
    struct wal *wal;

    wal_options_default(&o);
    o.segment_bytes = 4096;
    wal = wal_open_ok(dir, &o, &l);
    for (raft_index i = 1; i <= 100; i += 10) {
        ck_assert_int_eq(wal_append(wal, gen_batch(&g, i, 10, 1, seed), 10), 0);
    }
    ck_assert_uint_ge(wal_segment_count(wal), 3);
    wal_loaded_free(wal, &l);
    wal_destroy(wal);
    ck_assert_int_eq(remove(path_in(dir, "0000000000000002.seg")), 0);
    ck_assert_str_eq(open_fails(STORAGE_ECORRUPT),
                     "wal: 0000000000000002.seg offset 0: segment missing");
}
END_TEST

/* Hard state and snapshot meta are only ever replaced whole, so a flipped
 * bit or a short file there is refused, never repaired. */
START_TEST(test_recovery_refuses_damaged_hard_state_and_snapshot_meta)
{
    struct wal_loaded l;
    struct wal *wal = wal_open_ok(dir, NULL, &l);
    struct raft_hard_state hs = {.term = 2, .vote = 1, .commit = 0};
    struct raft_snapshot_meta meta = {.index = 3, .term = 1, .size = 1};

    meta.conf.n = 1;
    meta.conf.members[0].id = 1;
    meta.conf.members[0].role = RAFT_VOTER;
    ck_assert_int_eq(wal_save_hard_state(wal, &hs), 0);
    ck_assert_int_eq(wal_save_snapshot_meta(wal, &meta), 0);
    wal_loaded_free(wal, &l);
    wal_destroy(wal);

    file_flip_bit(path_in(dir, "hardstate"), 9, 0);
    ck_assert_str_eq(open_fails(STORAGE_ECORRUPT),
                     "wal: hardstate offset 0: checksum mismatch");
    file_flip_bit(path_in(dir, "hardstate"), 9, 0);
    file_truncate(path_in(dir, "hardstate"), 20);
    ck_assert_str_eq(open_fails(STORAGE_ECORRUPT),
                     "wal: hardstate offset 0: wrong file size");
    ck_assert_int_eq(remove(path_in(dir, "hardstate")), 0);

    file_flip_bit(path_in(dir, "snapshot.meta"), 45, 4);
    ck_assert_str_eq(open_fails(STORAGE_ECORRUPT),
                     "wal: snapshot.meta offset 0: checksum mismatch");
    file_flip_bit(path_in(dir, "snapshot.meta"), 45, 4);
    file_truncate(path_in(dir, "snapshot.meta"), 30);
    ck_assert_str_eq(open_fails(STORAGE_ECORRUPT),
                     "wal: snapshot.meta offset 0: wrong file size");
}
END_TEST

/* Every single-bit flip anywhere in a small segment either is refused with
 * a message naming the file and an offset, or (inside the last record)
 * repaired to a clean prefix. No flip ever loads wrong data. */
START_TEST(test_recovery_handles_a_bit_flip_at_every_position)
{
    uint64_t off[5];
    uint8_t *pristine;
    uint64_t size;
    FILE *f;
    unsigned refused = 0;
    unsigned repaired = 0;

    write_log(WAL_PREALLOC_NONE, 4, off);
    size = file_size(path_in(dir, SEG1));
    ck_assert_uint_eq(size, off[4]);
    pristine = malloc(size);
    f = fopen(path_in(dir, SEG1), "rb");
    ck_assert_uint_eq(fread(pristine, 1, size, f), size);
    fclose(f);

    for (uint64_t pos = 0; pos < size; pos++) {
        struct wal_options o;
        struct wal_loaded l;
        struct wal *wal;
        int rc;

        file_write_at(path_in(dir, SEG1), 0, pristine, size);
        file_truncate(path_in(dir, SEG1), size);
        file_flip_bit(path_in(dir, SEG1), pos, (unsigned)(pos % 8));
        wal_options_default(&o);
        o.prealloc = WAL_PREALLOC_NONE;
        ck_assert_int_eq(wal_create(&o, &wal), 0);
        rc = wal_open(wal, dir, &l);
        if (rc != 0) {
            ck_assert_int_eq(rc, STORAGE_ECORRUPT);
            ck_assert_ptr_nonnull(strstr(wal_errmsg(wal), SEG1 " offset "));
            ck_assert_uint_lt(pos, off[3]);
            refused++;
        } else {
            /* Only damage inside the last record may be repaired. */
            ck_assert_uint_ge(pos, off[3]);
            expect_prefix(&l, 3);
            ck_assert_uint_eq(l.repairs, 1);
            repaired++;
        }
        wal_loaded_free(wal, &l);
        wal_destroy(wal);
    }
    ck_assert_uint_eq(refused + repaired, size);
    ck_assert_uint_eq(repaired, off[4] - off[3]);
    free(pristine);
}
END_TEST

Suite *recovery_suite(void);

Suite *recovery_suite(void)
{
    Suite *s = suite_create("recovery");
    TCase *tc = tcase_create("damage");

    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_recovery_cuts_off_a_final_record_cut_short);
    tcase_add_test(tc,
                   test_recovery_cuts_off_a_torn_record_in_a_zeroed_segment);
    tcase_add_test(tc,
                   test_recovery_cuts_off_a_final_record_with_a_bad_checksum);
    tcase_add_test(tc, test_recovery_refuses_a_bit_flip_in_a_middle_record);
    tcase_add_test(tc, test_recovery_refuses_a_damaged_segment_header);
    tcase_add_test(tc, test_recovery_refuses_an_index_out_of_order);
    tcase_add_test(tc,
                   test_recovery_refuses_damage_at_the_end_of_an_older_segment);
    tcase_add_test(tc, test_recovery_refuses_a_missing_segment);
    tcase_add_test(tc,
                   test_recovery_refuses_damaged_hard_state_and_snapshot_meta);
    tcase_add_test(tc, test_recovery_handles_a_bit_flip_at_every_position);
    suite_add_tcase(s, tc);
    return s;
}
