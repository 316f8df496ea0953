/*
 * test_kv_checkpoint.c - checkpoints in three steps: the sync on another
 * thread while the writer keeps applying, the DIRTY marker cleared only for
 * what a sync covered, misuse, a failed sync, and crashes at every step.
 */
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "kv_test_util.h"

static bool dirty_exists(const char *dir)
{
    char path[600];
    snprintf(path, sizeof(path), "%s/DIRTY", dir);
    return access(path, F_OK) == 0;
}

static raft_index applied_of(struct kv_store *s)
{
    struct kv_status st;
    ck_assert_int_eq(kv_status(s, &st), 0);
    return st.applied;
}

struct sync_arg
{
    struct kv_store *s;
    struct kv_checkpoint *ckpt;
    volatile int done;
    int rv;
};

static void *sync_main(void *p)
{
    struct sync_arg *a = p;
    a->rv = kv_checkpoint_sync(a->s, a->ckpt);
    a->done = 1;
    return NULL;
}

/* The steps report the index applied when the checkpoint began, not the
 * one reached when it ended; writes made in between keep the store dirty
 * until a checkpoint covers them. */
START_TEST(test_checkpoint_covers_what_was_applied_when_it_began)
{
    char *dir = kvt_mkdtemp();
    struct kv_store *s = kvt_open(dir, 0);
    struct kv_checkpoint ckpt;
    raft_index durable = 0;
    kvt_apply_log(s, 1, 10);
    ck_assert(dirty_exists(dir));
    ck_assert_int_eq(kv_checkpoint_begin(s, &ckpt), 0);
    kvt_apply_log(s, 11, 10);
    ck_assert_int_eq(kv_checkpoint_sync(s, &ckpt), 0);
    kvt_apply_log(s, 21, 10);
    ck_assert_int_eq(kv_checkpoint_end(s, &ckpt, &durable), 0);
    ck_assert_uint_eq(durable, 10);
    ck_assert(dirty_exists(dir));
    /* Nothing written while this one ran: clean at 30. */
    ck_assert_int_eq(kv_checkpoint_begin(s, &ckpt), 0);
    ck_assert_int_eq(kv_checkpoint_sync(s, &ckpt), 0);
    ck_assert_int_eq(kv_checkpoint_end(s, &ckpt, &durable), 0);
    ck_assert_uint_eq(durable, 30);
    ck_assert(!dirty_exists(dir));
    /* The next write marks it dirty again. */
    kvt_apply_log(s, 31, 1);
    ck_assert(dirty_exists(dir));
    kv_close(s);
    kvt_rmdir(dir);
}
END_TEST

/* Opens a store whose bulk writes go back to disk in chunks of @chunk
 * bytes (0: the default). */
static struct kv_store *open_chunked(const char *dir, uint64_t chunk)
{
    struct kv_options o;
    struct kv_store *s = NULL;
    char err[256] = "";
    memset(&o, 0, sizeof(o));
    o.writeback_chunk = chunk;
    ck_assert_msg(kv_open(dir, &o, &s, err, sizeof(err)) == 0, "%s", err);
    return s;
}

/* Round after round, a sync runs on a thread while the writer applies
 * batches: every round reports its begin index, the store ends exactly
 * equal to one that applied the same entries without checkpoints, and only
 * a round with no write during it leaves the store clean. Run with the
 * default writeback chunk (one for this small store) and with 4 KiB
 * chunks (a page at a time). */
START_TEST(test_checkpoint_sync_on_a_thread_while_applying_keeps_the_store)
{
    char *dir = kvt_mkdtemp(), *ref_dir = kvt_mkdtemp();
    struct kv_store *s = open_chunked(dir, _i == 0 ? 0 : 4096);
    struct kv_store *ref = kvt_open(ref_dir, 0);
    raft_index next = 1;
    for (int round = 0; round < 40; round++) {
        struct kv_checkpoint ckpt;
        struct sync_arg a = {s, &ckpt, 0, -1};
        pthread_t t;
        raft_index durable = 0;
        raft_index at_begin = next - 1;
        bool quiet = round % 4 == 3;
        ck_assert_int_eq(kv_checkpoint_begin(s, &ckpt), 0);
        ck_assert_int_eq(pthread_create(&t, NULL, sync_main, &a), 0);
        /* At least one batch overlaps the sync, unless this round is the
         * quiet one. */
        do {
            if (quiet) {
                break;
            }
            kvt_apply_log(s, next, 25);
            kvt_apply_log(ref, next, 25);
            next += 25;
        } while (!a.done);
        pthread_join(t, NULL);
        ck_assert_int_eq(a.rv, 0);
        ck_assert_int_eq(kv_checkpoint_end(s, &ckpt, &durable), 0);
        ck_assert_uint_eq(durable, at_begin);
        ck_assert(dirty_exists(dir) == !quiet);
        ck_assert_uint_eq(applied_of(s), next - 1);
    }
    char *got = kvt_dump(s), *want = kvt_dump(ref);
    ck_assert_str_eq(got, want);
    free(got);
    free(want);
    kv_close(ref);
    kv_close(s);
    kvt_rmdir(ref_dir);
    kvt_rmdir(dir);
}
END_TEST

/* A snapshot of a store whose bulk writes go back 4 KiB at a time (so its
 * copy is paced chunk by chunk) verifies and installs into a store equal
 * to the source; the install waits until a running checkpoint ended (its
 * sync may still use the environment the install replaces). */
START_TEST(test_snapshot_paced_in_small_chunks_installs_after_a_checkpoint)
{
    char *src_dir = kvt_mkdtemp(), *dst_dir = kvt_mkdtemp();
    char path[600];
    struct kv_store *src = open_chunked(src_dir, 4096);
    struct kv_store *dst = open_chunked(dst_dir, 4096);
    struct kv_snapshot *snap = NULL;
    struct kv_checkpoint ckpt;
    raft_index durable = 0;
    for (raft_index i = 1; i <= 2000; i += 100) {
        kvt_apply_log(src, i, 100);
    }
    kvt_apply_log(dst, 1, 20);
    snprintf(path, sizeof(path), "%s/snap", src_dir);
    ck_assert_int_eq(kv_snapshot_create(src, path, &snap), 0);
    ck_assert_uint_gt(kv_snapshot_info(snap)->size, 16 * 4096);
    ck_assert_int_eq(kv_snapshot_verify(snap, NULL, 0), 0);
    kv_snapshot_close(snap);
    ck_assert_int_eq(kvt_transfer(dst, path), 0);
    ck_assert_int_eq(kv_checkpoint_begin(dst, &ckpt), 0);
    ck_assert_int_eq(kv_snapshot_install(dst), KV_ESTATE);
    ck_assert_int_eq(kv_checkpoint_sync(dst, &ckpt), 0);
    ck_assert_int_eq(kv_checkpoint_end(dst, &ckpt, &durable), 0);
    ck_assert_uint_eq(durable, 20);
    ck_assert_int_eq(kv_snapshot_install(dst), 0);
    ck_assert_int_eq(kv_checkpoint(src, &durable), 0);
    ck_assert_uint_eq(durable, 2000);
    char *got = kvt_dump(dst), *want = kvt_dump(src);
    ck_assert_str_eq(got, want);
    free(got);
    free(want);
    kv_close(dst);
    kv_close(src);
    kvt_rmdir(dst_dir);
    kvt_rmdir(src_dir);
}
END_TEST

/* One checkpoint at a time; an end needs a begin; install and close wait
 * for the end. */
START_TEST(test_checkpoint_refuses_overlap_and_an_end_without_begin)
{
    char *dir = kvt_mkdtemp();
    struct kv_store *s = kvt_open(dir, 0);
    struct kv_checkpoint ckpt, other;
    raft_index durable = 0;
    ck_assert_int_eq(kv_checkpoint_end(s, &ckpt, &durable), KV_ESTATE);
    kvt_apply_log(s, 1, 5);
    ck_assert_int_eq(kv_checkpoint_begin(s, &ckpt), 0);
    ck_assert_int_eq(kv_checkpoint_begin(s, &other), KV_ESTATE);
    ck_assert_int_eq(kv_checkpoint(s, &durable), KV_ESTATE);
    /* Writes and reads go on meanwhile. */
    kvt_apply_log(s, 6, 5);
    ck_assert_uint_eq(applied_of(s), 10);
    ck_assert_int_eq(kv_checkpoint_sync(s, &ckpt), 0);
    ck_assert_int_eq(kv_checkpoint_end(s, &ckpt, &durable), 0);
    ck_assert_uint_eq(durable, 5);
    ck_assert_int_eq(kv_checkpoint_end(s, &ckpt, &durable), KV_ESTATE);
    ck_assert_int_eq(kv_checkpoint(s, &durable), 0);
    ck_assert_uint_eq(durable, 10);
    kv_close(s);
    kvt_rmdir(dir);
}
END_TEST

/* A sync that failed (or never ran) poisons the store at the end: nothing
 * is reported durable and every later write is refused. */
START_TEST(test_checkpoint_failed_sync_poisons_the_store_at_the_end)
{
    char *dir = kvt_mkdtemp();
    struct kv_store *s = kvt_open(dir, 0);
    struct kv_checkpoint ckpt;
    raft_index durable = 77;
    struct kvt_batch b = {0};
    size_t len;
    kvt_apply_log(s, 1, 5);
    ck_assert_int_eq(kv_checkpoint_begin(s, &ckpt), 0);
    /* The end before any sync ran: treated as a failed sync. */
    ck_assert_int_eq(kv_checkpoint_end(s, &ckpt, &durable), KV_EPOISONED);
    ck_assert_uint_eq(durable, 77);
    uint8_t *d = kvt_put("x", "y", &len);
    kvt_batch_add(&b, 6, d, len);
    ck_assert_int_eq(kv_apply(s, b.e, b.n, NULL), KV_EPOISONED);
    ck_assert_int_eq(kv_checkpoint_begin(s, &ckpt), KV_EPOISONED);
    ck_assert(dirty_exists(dir));
    kvt_batch_clear(&b);
    kv_close(s);
    kvt_rmdir(dir);
}
END_TEST

/* Where the child process dies. */
enum crash_point {
    CRASH_AFTER_BEGIN,      /* begun, writes go on, no sync yet */
    CRASH_DURING_SYNC,      /* the sync thread runs while writes go on */
    CRASH_AFTER_SYNC,       /* synced with writes during it, not ended */
    CRASH_AFTER_DIRTY_END,  /* ended with writes during the sync */
    CRASH_AFTER_CLEAN_END,  /* ended with no write during the sync */
    CRASH_AFTER_NEXT_WRITE, /* the first write after a clean end */
    CRASH_POINTS,
};

/* What the child tells the parent before it dies. */
struct crash_report
{
    raft_index applied; /* last index applied */
    raft_index clean;   /* index of the last checkpoint that cleaned, or 0 */
    bool wrote_after_clean;
};

static void crash_child(const char *dir, enum crash_point at, int fd)
{
    struct kv_store *s = kvt_open(dir, 0);
    struct crash_report r = {0, 0, true};
    struct kv_checkpoint ckpt;
    struct sync_arg a = {s, &ckpt, 0, -1};
    pthread_t t;
    raft_index durable = 0, next = 1;
    kvt_apply_log(s, next, 50);
    next += 50;
    if (kv_checkpoint_begin(s, &ckpt) != 0) {
        _exit(2);
    }
    kvt_apply_log(s, next, 20);
    next += 20;
    if (at == CRASH_AFTER_BEGIN) {
        goto die;
    }
    if (pthread_create(&t, NULL, sync_main, &a) != 0) {
        _exit(2);
    }
    do {
        kvt_apply_log(s, next, 10);
        next += 10;
    } while (!a.done && at != CRASH_DURING_SYNC);
    if (at == CRASH_DURING_SYNC) {
        goto die; /* the sync thread dies with the process */
    }
    pthread_join(t, NULL);
    if (at == CRASH_AFTER_SYNC) {
        goto die;
    }
    if (kv_checkpoint_end(s, &ckpt, &durable) != 0 || durable != 50) {
        _exit(2);
    }
    if (at == CRASH_AFTER_DIRTY_END) {
        goto die;
    }
    if (kv_checkpoint(s, &durable) != 0 || durable != next - 1) {
        _exit(2);
    }
    r.clean = durable;
    r.wrote_after_clean = false;
    if (at == CRASH_AFTER_NEXT_WRITE) {
        kvt_apply_log(s, next, 1);
        next += 1;
        r.wrote_after_clean = true;
    }
die:
    r.applied = next - 1;
    if (write(fd, &r, sizeof(r)) != (ssize_t)sizeof(r)) {
        _exit(2);
    }
    _exit(0); /* a crash: no close, no final checkpoint */
}

/* The process dies at every step of a checkpoint that overlaps writes.
 * Reopened in the same boot (the page cache survived) the store holds every
 * applied entry. Seen as after a machine crash, it is either clean at the
 * index the last clean checkpoint reported, or dirty and refused: never
 * clean with writes the sync may not have covered. */
START_TEST(test_checkpoint_crash_at_every_step_leaves_clean_or_dirty)
{
    for (int at = 0; at < CRASH_POINTS; at++) {
        char *dir = kvt_mkdtemp();
        char path[600], err[256] = "";
        struct crash_report r;
        struct kv_store *s = NULL;
        int fds[2];
        ck_assert_int_eq(pipe(fds), 0);
        pid_t pid = fork();
        ck_assert_int_ge(pid, 0);
        if (pid == 0) {
            close(fds[0]);
            crash_child(dir, (enum crash_point)at, fds[1]);
        }
        close(fds[1]);
        ck_assert_int_eq(read(fds[0], &r, sizeof(r)), (ssize_t)sizeof(r));
        close(fds[0]);
        int status = 0;
        waitpid(pid, &status, 0);
        ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0,
                      "crash point %d: child failed", at);

        /* A process crash: everything applied is there. */
        s = kvt_open(dir, 0);
        ck_assert_uint_eq(applied_of(s), r.applied);
        kv_close(s);

        /* A machine crash: clean exactly when no write escaped a sync. */
        bool dirty = dirty_exists(dir);
        ck_assert_msg(dirty == r.wrote_after_clean,
                      "crash point %d: dirty %d, wrote after clean %d", at,
                      dirty, r.wrote_after_clean);
        snprintf(path, sizeof(path), "%s/DIRTY", dir);
        if (dirty) {
            FILE *f = fopen(path, "w");
            fputs("00000000-0000-0000-0000-000000000000\n", f);
            fclose(f);
            ck_assert_int_eq(kv_open(dir, NULL, &s, err, sizeof(err)),
                             KV_ETORN);
        } else {
            s = kvt_open(dir, 0);
            ck_assert_uint_eq(applied_of(s), r.clean);
            kv_close(s);
        }
        kvt_rmdir(dir);
    }
}
END_TEST

Suite *kv_checkpoint_suite(void)
{
    Suite *s = suite_create("checkpoint");
    TCase *tc = tcase_create("checkpoint");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_checkpoint_covers_what_was_applied_when_it_began);
    tcase_add_loop_test(
        tc, test_checkpoint_sync_on_a_thread_while_applying_keeps_the_store, 0,
        2);
    tcase_add_test(
        tc, test_snapshot_paced_in_small_chunks_installs_after_a_checkpoint);
    tcase_add_test(tc,
                   test_checkpoint_refuses_overlap_and_an_end_without_begin);
    tcase_add_test(tc,
                   test_checkpoint_failed_sync_poisons_the_store_at_the_end);
    tcase_add_test(tc,
                   test_checkpoint_crash_at_every_step_leaves_clean_or_dirty);
    suite_add_tcase(s, tc);
    return s;
}
