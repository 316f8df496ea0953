/*
 * test_faults.c - fault loops in the manner of SQLite's: a scripted
 * workload runs once for every N with the Nth file call (or allocation)
 * failing. The wal must either succeed or report the error and refuse
 * further writes; it must never report as durable what was not synced; a
 * clean reopen must find everything reported durable; nothing may leak.
 */
#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "gen.h"
#include "helpers.h"
#include "wal.h"

#define MAX_INDEX 64

static struct gen g;
static const uint64_t seed = 5;
/* The fault interface of the running loop, or NULL. */
static struct fault_io *cur_fio;

/* What the workload believes: the term of each index in the log and the
 * highest index the wal has called durable. */
struct model
{
    raft_term term[MAX_INDEX + 1];
    raft_index last;
    raft_index durable;
    raft_index snapshot;
    bool failed;
};

static int count_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    int n = 0;
    ck_assert_ptr_nonnull(d);
    while (readdir(d) != NULL) {
        n++;
    }
    closedir(d);
    return n;
}

/* Checks the outcome of one call. Returns false if the workload must stop.
 */
static bool step(struct wal *wal, struct model *m, int rc)
{
    raft_index durable = wal_durable_index(wal);

    if (rc == 0) {
        ck_assert(!wal_poisoned(wal));
        m->durable = durable;
        return true;
    }
    m->failed = true;
    ck_assert_msg(rc == STORAGE_EIO || rc == STORAGE_ENOSPC ||
                      rc == STORAGE_ENOMEM || rc == STORAGE_EPOISONED,
                  "unexpected error %d: %s", rc, wal_errmsg(wal));
    ck_assert_str_ne(wal_errmsg(wal), "");
    /* A failure never makes more durable. */
    ck_assert_uint_le(durable, m->durable > durable ? m->durable : durable);
    ck_assert_uint_le(durable, m->durable);
    m->durable = durable;
    if (wal_poisoned(wal)) {
        ck_assert_int_eq(wal_append(wal, gen_batch(&g, 1, 1, 9, seed), 1),
                         STORAGE_EPOISONED);
        ck_assert_int_eq(wal_sync(wal, NULL), STORAGE_EPOISONED);
        ck_assert_int_eq(wal_compact(wal, 2), STORAGE_EPOISONED);
        ck_assert_int_eq(wal_truncate(wal, 2), STORAGE_EPOISONED);
        ck_assert_int_eq(wal_reset(wal, 2), STORAGE_EPOISONED);
        ck_assert_int_eq(
            wal_save_hard_state(wal, &(struct raft_hard_state){9, 9, 9}),
            STORAGE_EPOISONED);
        ck_assert_ptr_nonnull(strstr(wal_errmsg(wal), "refusing writes"));
        ck_assert_str_ne(wal_errmsg(wal), "");
        ck_assert_uint_eq(wal_durable_index(wal), durable);
    }
    return false;
}

static bool do_append(struct wal *wal,
                      struct model *m,
                      raft_index first,
                      size_t n,
                      raft_term term)
{
    int rc = wal_append(wal, gen_batch(&g, first, n, term, seed), n);
    if (rc == 0) {
        for (size_t i = 0; i < n; i++) {
            m->term[first + i] = term;
        }
        m->last = first + n - 1;
    }
    return step(wal, m, rc);
}

/* Set when the wal runs with prepare_explicitly: the workload then zero-
 * fills ahead after every sync it saw succeed, as the server does. */
static bool explicit_prepare;

static bool do_sync(struct wal *wal, struct model *m)
{
    raft_index durable = 0;
    int rc = wal_sync(wal, &durable);
    if (rc == 0) {
        ck_assert_uint_eq(durable, m->last);
        /* Reported durable: so every byte written so far must have been
         * synced, in every file. */
        if (cur_fio != NULL) {
            ck_assert_uint_eq(cur_fio->n_dirty, 0);
        }
        if (explicit_prepare) {
            wal_prepare_next(wal);
        }
    }
    return step(wal, m, rc);
}

/* Opens, runs half the script, closes, reopens (recovery under faults too)
 * and runs the rest. Every call may hit the injected fault. */
static void workload(const char *dir,
                     const struct wal_options *o,
                     struct model *m)
{
    struct raft_snapshot_meta meta = {.index = 20, .term = 1, .size = 3};
    struct raft_hard_state hs = {.term = 1, .vote = 1, .commit = 10};
    struct wal_loaded l;
    struct wal *wal = NULL;
    bool ok;

    meta.conf.n = 1;
    meta.conf.members[0].id = 1;
    meta.conf.members[0].role = RAFT_VOTER;
    memset(m, 0, sizeof *m);
    if (wal_create(o, &wal) != 0) {
        m->failed = true;
        return;
    }
    ok = step(wal, m, wal_open(wal, dir, &l));
    wal_loaded_free(wal, &l);
    ok = ok && do_append(wal, m, 1, 5, 1) && do_append(wal, m, 6, 10, 1) &&
         do_sync(wal, m) && do_append(wal, m, 16, 15, 1) && do_sync(wal, m) &&
         step(wal, m, wal_save_hard_state(wal, &hs));
    hs.commit = 20;
    ok = ok && step(wal, m, wal_save_hard_state(wal, &hs)) &&
         do_append(wal, m, 25, 11, 2) && do_sync(wal, m);
    wal_destroy(wal);
    wal = NULL;
    if (!ok) {
        return;
    }

    if (wal_create(o, &wal) != 0) {
        m->failed = true;
        return;
    }
    ok = step(wal, m, wal_open(wal, dir, &l));
    if (ok) {
        ck_assert_uint_eq(l.n_entries, 35);
        ck_assert_uint_eq(l.hs.commit, 20);
    }
    wal_loaded_free(wal, &l);
    ok = ok && step(wal, m, wal_truncate(wal, 33));
    if (ok) {
        m->last = 32;
    }
    ok = ok && do_sync(wal, m) &&
         step(wal, m, wal_save_snapshot_meta(wal, &meta));
    if (ok) {
        m->snapshot = 20;
    }
    hs.term = 2;
    hs.vote = 2;
    ok = ok && step(wal, m, wal_compact(wal, 21)) &&
         do_append(wal, m, 33, 8, 2) && do_sync(wal, m) &&
         step(wal, m, wal_save_hard_state(wal, &hs));
    wal_destroy(wal);
}

/* After a run, a clean open finds every durable entry intact, and every
 * entry it finds is one the workload wrote. */
static void verify(const char *dir, const struct model *m)
{
    struct wal_options o;
    struct wal_loaded l;
    struct wal *wal;
    raft_index first;

    wal_options_default(&o);
    o.segment_bytes = 4096;
    wal = wal_open_ok(dir, &o, &l);
    first = l.has_snapshot ? l.snapshot.index + 1 : 1;
    for (size_t i = 0; i < l.n_entries; i++) {
        const struct raft_entry *e = &l.entries[i];
        ck_assert_uint_eq(e->index, first + i);
        ck_assert(entry_check(e, seed));
        if (e->index <= m->durable) {
            ck_assert_uint_eq(e->term, m->term[e->index]);
        }
    }
    ck_assert_uint_ge(wal_last_index(wal), m->durable);
    wal_loaded_free(wal, &l);
    wal_destroy(wal);
}

static void io_fault_loop(int err, bool prepare_explicitly)
{
    unsigned runs = 0;

    for (uint64_t n = 1;; n++) {
        struct fault_io fio;
        struct fault_alloc fa;
        struct wal_options o;
        struct model m;
        char dir[256];
        int fds = count_fds();

        tmpdir_make(dir);
        fault_io_init(&fio);
        fault_alloc_init(&fa);
        fio.fail_at = n;
        fio.err = err;
        wal_options_default(&o);
        o.segment_bytes = 4096;
        o.io = &fio.io;
        o.alloc = &fa.alloc;
        o.prepare_explicitly = prepare_explicitly;
        explicit_prepare = prepare_explicitly;
        cur_fio = &fio;
        workload(dir, &o, &m);
        cur_fio = NULL;
        explicit_prepare = false;
        ck_assert_int_eq(fa.live, 0);
        ck_assert_int_eq(count_fds(), fds);
        /* No file was ever renamed into place with unsynced writes, and
         * none was closed with them unless a failure came first. */
        ck_assert_uint_eq(fio.renamed_dirty, 0);
        if (!m.failed) {
            ck_assert_uint_eq(fio.closed_dirty, 0);
        }
        /* Only calls whose failure changes nothing durable may go
         * unreported: closing a file already synced, the advisory
         * writeback, and work on the next segment prepared ahead (which is
         * then built whole at rollover). */
        ck_assert_msg(
            m.failed == fio.fired || strcmp(fio.fired_op, "close") == 0 ||
                strcmp(fio.fired_op, "writeback") == 0 || fio.fired_tmp,
            "call %lu (%s%s) failed but the workload did not "
            "notice",
            (unsigned long)n, fio.fired_op,
            fio.fired_tmp ? ", temporary file" : "");
        verify(dir, &m);
        tmpdir_remove(dir);
        runs++;
        if (!fio.fired) {
            break;
        }
    }
    ck_assert_uint_gt(runs, 50);
}

/* Failing the Nth file call with EIO, for every N. */
START_TEST(test_faults_every_failed_file_call_with_eio_is_fatal_and_safe)
{
    io_fault_loop(EIO, false);
}
END_TEST

/* The same when the caller zero-fills ahead itself after each sync. */
START_TEST(test_faults_every_failed_call_with_explicit_preparation_is_safe)
{
    io_fault_loop(EIO, true);
}
END_TEST

/* Failing the Nth file call with ENOSPC, for every N. */
START_TEST(test_faults_every_failed_file_call_with_enospc_is_fatal_and_safe)
{
    io_fault_loop(ENOSPC, false);
}
END_TEST

/* Failing the Nth allocation, for every N: reported, never leaked. */
START_TEST(test_faults_every_failed_allocation_is_reported_without_leaks)
{
    unsigned runs = 0;

    for (uint64_t n = 1;; n++) {
        struct fault_alloc fa;
        struct wal_options o;
        struct model m;
        char dir[256];
        int fds = count_fds();

        tmpdir_make(dir);
        fault_alloc_init(&fa);
        fa.fail_at = n;
        wal_options_default(&o);
        o.segment_bytes = 4096;
        o.alloc = &fa.alloc;
        workload(dir, &o, &m);
        ck_assert_int_eq(fa.live, 0);
        ck_assert_int_eq(count_fds(), fds);
        ck_assert(m.failed == fa.fired);
        verify(dir, &m);
        tmpdir_remove(dir);
        runs++;
        if (!fa.fired) {
            break;
        }
    }
    ck_assert_uint_gt(runs, 10);
}
END_TEST

Suite *faults_suite(void);

Suite *faults_suite(void)
{
    Suite *s = suite_create("faults");
    TCase *tc = tcase_create("loops");

    tcase_set_timeout(tc, 100);
    tcase_add_test(
        tc, test_faults_every_failed_file_call_with_eio_is_fatal_and_safe);
    tcase_add_test(
        tc, test_faults_every_failed_file_call_with_enospc_is_fatal_and_safe);
    tcase_add_test(
        tc, test_faults_every_failed_call_with_explicit_preparation_is_safe);
    tcase_add_test(
        tc, test_faults_every_failed_allocation_is_reported_without_leaks);
    suite_add_tcase(s, tc);
    return s;
}
