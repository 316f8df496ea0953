/*
 * test_crash.c - a child process appends and syncs at random and tells the
 * parent every index wal_sync() reported durable; the parent SIGKILLs it at
 * a random moment, reopens the log and checks that everything reported
 * durable is there, in order, intact, and that nothing else is.
 */
#include <check.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "helpers.h"
#include "wal.h"

#define CRASH_ITERATIONS 300
#define CRASH_FRESH_DIR_EVERY 25

static const uint64_t seed = 99;

static uint64_t rng_next(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

/* Every writer derives an entry's length from its index alone, so the
 * parent knows what each index must hold whichever child wrote it. */
static uint32_t crash_len(raft_index index)
{
    return (uint32_t)((index * 0x9e3779b97f4a7c15ULL) >> 54) % 700u;
}

static void crash_opts(struct wal_options *o, unsigned iter)
{
    wal_options_default(o);
    o->segment_bytes = 8192;
    o->prealloc = (enum wal_prealloc)(iter % 3);
}

/* The child: never returns. */
static void writer(const char *dir, unsigned iter, int out)
{
    static uint8_t data[8][700];
    struct raft_entry ents[8];
    struct wal_options o;
    struct wal_loaded l;
    struct wal *wal;
    uint64_t rng = 0x1234567ULL + iter * 7919ULL;

    crash_opts(&o, iter);
    if (wal_create(&o, &wal) != 0 || wal_open(wal, dir, &l) != 0) {
        _exit(2);
    }
    wal_loaded_free(wal, &l);
    {
        /* Tell the parent recovery is done: it starts the kill timer now,
         * so every iteration spends its time appending. */
        raft_index durable = wal_durable_index(wal);
        if (write(out, &durable, sizeof durable) != sizeof durable) {
            _exit(6);
        }
    }
    for (;;) {
        raft_index next = wal_last_index(wal) + 1;
        size_t n = 1 + rng_next(&rng) % 8;
        uint64_t r;

        for (size_t i = 0; i < n; i++) {
            ents[i].index = next + i;
            ents[i].term = 1;
            ents[i].type = RAFT_ENTRY_NORMAL;
            ents[i].len = crash_len(next + i);
            entry_fill(data[i], ents[i].len, seed, next + i, 1);
            ents[i].data = data[i];
        }
        if (wal_append(wal, ents, n) != 0) {
            _exit(3);
        }
        r = rng_next(&rng);
        if (r % 3 == 0) {
            raft_index durable;
            if (wal_sync(wal, &durable) != 0 ||
                write(out, &durable, sizeof durable) != sizeof durable) {
                _exit(4);
            }
        }
        if (r % 41 == 0 && wal_last_index(wal) > 120) {
            /* Now and then behave like a node that took a snapshot. */
            struct raft_snapshot_meta meta = {
                .index = wal_last_index(wal) - 100, .term = 1, .size = 1};
            meta.conf.n = 1;
            meta.conf.members[0].id = 1;
            meta.conf.members[0].role = RAFT_VOTER;
            if (wal_sync(wal, NULL) != 0 ||
                wal_save_snapshot_meta(wal, &meta) != 0 ||
                wal_compact(wal, meta.index + 1) != 0) {
                _exit(5);
            }
        }
    }
}

static void print_log(void *ctx, int level, const char *msg)
{
    (void)ctx;
    fprintf(stderr, "log %d: %s\n", level, msg);
}

/* Everything the child reported durable is present, contiguous and intact;
 * nothing else is there. Returns the number of repairs made. */
static unsigned verify(const char *dir, unsigned iter, raft_index durable)
{
    struct wal_options o;
    struct wal_loaded l;
    struct wal *wal;
    raft_index first;
    unsigned repairs;

    /* The checking open does not need real syncs: the page cache is all
     * there is to check. */
    struct fault_io fio;

    fault_io_init(&fio);
    crash_opts(&o, iter);
    o.io = &fio.io;
    if (getenv("STORAGE_TEST_VERBOSE") != NULL) {
        o.log = print_log;
    }
    wal = wal_open_ok(dir, &o, &l);
    first = l.has_snapshot ? l.snapshot.index + 1 : 1;
    for (size_t i = 0; i < l.n_entries; i++) {
        const struct raft_entry *e = &l.entries[i];
        ck_assert_uint_eq(e->index, first + i);
        ck_assert_uint_eq(e->term, 1);
        ck_assert_uint_eq(e->len, crash_len(e->index));
        ck_assert(entry_check(e, seed));
    }
    ck_assert_msg(wal_last_index(wal) >= durable,
                  "iteration %u: durable %lu lost (last %lu)", iter,
                  (unsigned long)durable, (unsigned long)wal_last_index(wal));
    repairs = l.repairs;
    wal_loaded_free(wal, &l);
    wal_destroy(wal);
    return repairs;
}

/* Hundreds of writers killed at random moments never lose a durable entry
 * and never leave garbage behind. */
START_TEST(test_crash_keeps_every_index_reported_durable)
{
    char dir[256] = "";
    uint64_t rng = 0xfeedfaceULL;
    raft_index durable = 0;
    unsigned repairs = 0;
    unsigned reports = 0;

    for (unsigned iter = 0; iter < CRASH_ITERATIONS; iter++) {
        int fds[2];
        pid_t pid;
        raft_index got;
        struct timespec delay = {0, 0};

        if (iter % CRASH_FRESH_DIR_EVERY == 0) {
            if (dir[0] != '\0') {
                tmpdir_remove(dir);
            }
            tmpdir_make(dir);
            durable = 0;
        }
        ck_assert_int_eq(pipe(fds), 0);
        pid = fork();
        ck_assert_int_ge(pid, 0);
        if (pid == 0) {
            close(fds[0]);
            writer(dir, iter, fds[1]);
        }
        close(fds[1]);
        if (read(fds[0], &got, sizeof got) == sizeof got) {
            ck_assert_uint_ge(got, durable);
            durable = got;
        }
        delay.tv_nsec = (long)(rng_next(&rng) % 6000) * 1000;
        nanosleep(&delay, NULL);
        ck_assert_int_eq(kill(pid, SIGKILL), 0);
        ck_assert_int_eq(waitpid(pid, NULL, 0), pid);
        while (read(fds[0], &got, sizeof got) == sizeof got) {
            ck_assert_uint_ge(got, durable);
            durable = got;
            reports++;
        }
        close(fds[0]);
        repairs += verify(dir, iter, durable);
    }
    tmpdir_remove(dir);
    /* The children did get work done before they were killed. */
    ck_assert_uint_gt(reports, 0);
    if (getenv("STORAGE_TEST_VERBOSE") != NULL) {
        fprintf(stderr,
                "crash: %u iterations, %u durable reports, %u repairs\n",
                CRASH_ITERATIONS, reports, repairs);
    }
}
END_TEST

/* Power losses at random moments: every write not yet synced loses a
 * random suffix (it reads back as zeros). Everything reported durable
 * survives, and what survives is intact and contiguous. */
START_TEST(test_crash_power_loss_keeps_every_index_reported_durable)
{
    static uint8_t data[8][700];
    struct raft_entry ents[8];
    char dir[256] = "";
    uint64_t rng = 0xabcdef12345ULL;
    raft_index durable = 0;
    unsigned losses = 0;

    for (unsigned iter = 0; iter < 150; iter++) {
        struct fault_io fio;
        struct wal_options o;
        struct wal_loaded l;
        struct wal *wal;
        unsigned ops = 1 + (unsigned)(rng_next(&rng) % 40);

        if (iter % 15 == 0) {
            if (dir[0] != '\0') {
                tmpdir_remove(dir);
            }
            tmpdir_make(dir);
            durable = 0;
        }
        fault_io_init(&fio);
        crash_opts(&o, iter);
        o.io = &fio.io;
        wal = wal_open_ok(dir, &o, &l);
        wal_loaded_free(wal, &l);
        for (unsigned op = 0; op < ops; op++) {
            raft_index next = wal_last_index(wal) + 1;
            size_t n = 1 + rng_next(&rng) % 8;
            uint64_t r = rng_next(&rng);

            for (size_t i = 0; i < n; i++) {
                ents[i].index = next + i;
                ents[i].term = 1;
                ents[i].type = RAFT_ENTRY_NORMAL;
                ents[i].len = crash_len(next + i);
                entry_fill(data[i], ents[i].len, seed, next + i, 1);
                ents[i].data = data[i];
            }
            ck_assert_int_eq(wal_append(wal, ents, n), 0);
            if (r % 3 == 0) {
                ck_assert_int_eq(wal_sync(wal, &durable), 0);
            }
        }
        /* The power goes: nothing more is synced, then unsynced bytes are
         * lost. */
        wal_destroy(wal);
        for (int i = 0; i < FAULT_FILES; i++) {
            if (fio.unsynced[i].lo < fio.unsynced[i].hi) {
                losses++;
            }
        }
        fault_io_power_loss(&fio, &rng);
        verify(dir, iter, durable);
        /* Only what survived counts from here on. */
        wal = wal_open_ok(dir, &o, &l);
        durable = wal_last_index(wal);
        wal_loaded_free(wal, &l);
        wal_destroy(wal);
    }
    tmpdir_remove(dir);
    ck_assert_uint_gt(losses, 50);
}
END_TEST

Suite *crash_suite(void);

Suite *crash_suite(void)
{
    Suite *s = suite_create("crash");
    TCase *tc = tcase_create("sigkill");
    TCase *tc2 = tcase_create("power_loss");

    tcase_set_timeout(tc, 100);
    tcase_add_test(tc, test_crash_keeps_every_index_reported_durable);
    suite_add_tcase(s, tc);
    tcase_set_timeout(tc2, 100);
    tcase_add_test(tc2,
                   test_crash_power_loss_keeps_every_index_reported_durable);
    suite_add_tcase(s, tc2);
    return s;
}
