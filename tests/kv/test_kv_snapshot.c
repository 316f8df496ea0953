/*
 * test_kv_snapshot.c - snapshots: creation under writes, chunked transfer,
 * installation, corruption and crashes during install.
 */
#include <dirent.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "kv_test_util.h"

/* A store that applied the log up to @last once. */
static char *reference_dump(raft_index last)
{
    char *dir = kvt_mkdtemp();
    struct kv_store *s = kvt_open(dir, 0);
    for (raft_index i = 1; i <= last; i += 100) {
        kvt_apply_log(s, i, last - i + 1 < 100 ? (size_t)(last - i + 1) : 100);
    }
    char *d = kvt_dump(s);
    kv_close(s);
    kvt_rmdir(dir);
    return d;
}

struct writer_arg
{
    struct kv_store *s;
    raft_index next;
    volatile int stop;
};

static void *writer_main(void *p)
{
    struct writer_arg *w = p;
    while (!w->stop) {
        kvt_apply_log(w->s, w->next, 10);
        w->next += 10;
    }
    return NULL;
}

/* A snapshot taken while another thread keeps applying holds exactly the
 * state at its applied index; sent in small chunks and installed into a
 * store with other data, it yields that state, and the log continues. */
START_TEST(test_snapshot_under_writes_transfers_and_installs_equal)
{
    char *src_dir = kvt_mkdtemp(), *dst_dir = kvt_mkdtemp();
    char *path = malloc(strlen(src_dir) + 16);
    sprintf(path, "%s/snap", src_dir);
    struct kv_store *src = kvt_open(src_dir, 0);
    struct kv_store *dst = kvt_open(dst_dir, 0);
    for (raft_index i = 1; i <= 3000; i += 100) {
        kvt_apply_log(src, i, 100);
    }
    kvt_apply_puts(dst, 1, 50, "other", 10);
    struct writer_arg w = {src, 3001, 0};
    pthread_t t;
    pthread_create(&t, NULL, writer_main, &w);
    while (w.next < 3200) {
        sched_yield();
    }
    struct kv_snapshot *snap = NULL;
    ck_assert_int_eq(kv_snapshot_create(src, path, &snap), 0);
    raft_index before_stop = w.next;
    w.stop = 1;
    pthread_join(t, NULL);
    struct kv_snapshot_info info = *kv_snapshot_info(snap);
    ck_assert_int_eq(kv_snapshot_verify(snap, NULL, 0), 0);
    kv_snapshot_close(snap);
    ck_assert_uint_ge(info.applied, 3200);
    ck_assert_uint_le(info.applied, before_stop);
    ck_assert_uint_eq(info.revision, info.applied);
    ck_assert_uint_eq(info.size, info.payload_bytes + KV_SNAPSHOT_HEADER_BYTES);

    ck_assert_int_eq(kvt_transfer(dst, path), 0);
    ck_assert_int_eq(kv_snapshot_install(dst), 0);
    char *want = reference_dump(info.applied);
    char *got = kvt_dump(dst);
    ck_assert_str_eq(got, want);
    free(got);
    free(want);
    /* The history came along and the log continues from the snapshot. */
    struct kv_history_result h;
    ck_assert_int_eq(
        kv_history_read(dst, (struct kv_history_pos){1, 0}, 5, &h, NULL), 0);
    ck_assert_uint_eq(h.n_events, 5);
    kv_history_result_free(&h);
    kvt_apply_log(dst, info.applied + 1, 10);
    kv_close(dst);
    dst = kvt_open(dst_dir, 0);
    got = kvt_dump(dst);
    want = reference_dump(info.applied + 10);
    ck_assert_str_eq(got, want);
    free(got);
    free(want);
    kv_close(dst);
    kv_close(src);
    free(path);
    kvt_rmdir(src_dir);
    kvt_rmdir(dst_dir);
}
END_TEST

static void flip_bit(const char *path, off_t off, int bit)
{
    int fd = open(path, O_RDWR);
    uint8_t b;
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(pread(fd, &b, 1, off), 1);
    b ^= (uint8_t)(1 << bit);
    ck_assert_int_eq(pwrite(fd, &b, 1, off), 1);
    close(fd);
}

/* One flipped bit in the payload or the header is refused with a precise
 * error, by the sender's check and by the receiver, which keeps its state. */
START_TEST(test_snapshot_with_a_flipped_bit_is_refused)
{
    char *src_dir = kvt_mkdtemp(), *dst_dir = kvt_mkdtemp();
    char *path = malloc(strlen(src_dir) + 16);
    sprintf(path, "%s/snap", src_dir);
    struct kv_store *src = kvt_open(src_dir, 0);
    struct kv_store *dst = kvt_open(dst_dir, 0);
    kvt_apply_log(src, 1, 300);
    kvt_apply_puts(dst, 1, 20, "mine", 10);
    char *before = kvt_dump(dst);
    struct kv_snapshot *snap = NULL;
    ck_assert_int_eq(kv_snapshot_create(src, path, &snap), 0);
    uint64_t size = kv_snapshot_info(snap)->size;
    kv_snapshot_close(snap);

    flip_bit(path, (off_t)(size - 100), 3);
    char msg[256];
    ck_assert_int_eq(kv_snapshot_open(path, NULL, &snap, msg, sizeof(msg)), 0);
    ck_assert_int_eq(kv_snapshot_verify(snap, msg, sizeof(msg)), KV_ECORRUPT);
    ck_assert_ptr_nonnull(strstr(msg, "payload checksum mismatch"));
    kv_snapshot_close(snap);
    ck_assert_int_eq(kvt_transfer(dst, path), KV_ECORRUPT);
    kv_errmsg(dst, msg, sizeof(msg));
    ck_assert_ptr_nonnull(strstr(msg, "payload checksum mismatch"));
    ck_assert_int_eq(kv_snapshot_install(dst), KV_ESTATE);
    flip_bit(path, (off_t)(size - 100), 3);

    flip_bit(path, 20, 0); /* the applied index in the header */
    ck_assert_int_eq(kv_snapshot_open(path, NULL, &snap, msg, sizeof(msg)),
                     KV_ECORRUPT);
    ck_assert_ptr_nonnull(strstr(msg, "header checksum mismatch"));
    char *after = kvt_dump(dst);
    ck_assert_str_eq(after, before);
    free(after);
    free(before);
    kv_close(dst);
    kv_close(src);
    free(path);
    kvt_rmdir(src_dir);
    kvt_rmdir(dst_dir);
}
END_TEST

/* The receiver refuses holes, bytes beyond the announced size, finishing
 * early and installing without a finished stage. */
START_TEST(test_snapshot_stage_refuses_holes_and_overruns)
{
    char *src_dir = kvt_mkdtemp(), *dst_dir = kvt_mkdtemp();
    char *path = malloc(strlen(src_dir) + 16);
    sprintf(path, "%s/snap", src_dir);
    struct kv_store *src = kvt_open(src_dir, 0);
    struct kv_store *dst = kvt_open(dst_dir, 0);
    kvt_apply_log(src, 1, 10);
    struct kv_snapshot *snap = NULL;
    ck_assert_int_eq(kv_snapshot_create(src, path, &snap), 0);
    uint64_t size = kv_snapshot_info(snap)->size;
    uint8_t *all = malloc(size + 10);
    size_t n = 0;
    ck_assert_int_eq(kv_snapshot_read_chunk(snap, 0, all, size + 10, &n), 0);
    ck_assert_uint_eq(n, size);
    kv_snapshot_close(snap);
    ck_assert_int_eq(kv_snapshot_stage_write(dst, 0, all, 10), KV_ESTATE);
    ck_assert_int_eq(kv_snapshot_stage_begin(dst), 0);
    ck_assert_int_eq(kv_snapshot_stage_write(dst, 10, all + 10, 10), KV_EINVAL);
    ck_assert_int_eq(kv_snapshot_stage_write(dst, 0, all, 100), 0);
    ck_assert_int_eq(kv_snapshot_stage_finish(dst, NULL), KV_ECORRUPT);
    ck_assert_int_eq(kv_snapshot_stage_begin(dst), 0);
    ck_assert_int_eq(kv_snapshot_stage_write(dst, 0, all, 100), 0);
    ck_assert_int_eq(kv_snapshot_stage_write(dst, 100, all + 100, size - 100),
                     0);
    ck_assert_int_eq(kv_snapshot_stage_write(dst, size, all, 1), KV_EINVAL);
    ck_assert_int_eq(kv_snapshot_install(dst), KV_ESTATE);
    struct kv_snapshot_info info;
    ck_assert_int_eq(kv_snapshot_stage_finish(dst, &info), 0);
    ck_assert_uint_eq(info.applied, 10);
    ck_assert_int_eq(kv_snapshot_install(dst), 0);
    struct kv_status st;
    ck_assert_int_eq(kv_status(dst, &st), 0);
    ck_assert_uint_eq(st.applied, 10);
    free(all);
    kv_close(dst);
    kv_close(src);
    free(path);
    kvt_rmdir(src_dir);
    kvt_rmdir(dst_dir);
}
END_TEST

static int crash_step;
static int crash_hook(void *arg, int step)
{
    (void)arg;
    if (step == crash_step) {
        _exit(0); /* the process dies here: no cleanup of any kind */
    }
    return 0;
}

/* Checks that @dir holds CURRENT, one generation and maybe DIRTY, and
 * nothing an install leaves behind. */
static void check_no_debris(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    int generations = 0, current = 0;
    ck_assert_ptr_nonnull(d);
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.' || strcmp(e->d_name, "DIRTY") == 0) {
            continue;
        }
        if (strcmp(e->d_name, "CURRENT") == 0) {
            current++;
        } else if (strncmp(e->d_name, "env-", 4) == 0) {
            generations++;
        } else {
            ck_abort_msg("debris left: %s", e->d_name);
        }
    }
    closedir(d);
    ck_assert_int_eq(current, 1);
    ck_assert_int_eq(generations, 1);
}

/* A process killed at each step of an install (and in the middle of
 * receiving) restarts with either the old state or the new one, never a
 * mix, and with no debris left. */
START_TEST(test_snapshot_install_crash_at_each_step_leaves_old_or_new)
{
    char *src_dir = kvt_mkdtemp();
    char *path = malloc(strlen(src_dir) + 16);
    sprintf(path, "%s/snap", src_dir);
    struct kv_store *src = kvt_open(src_dir, 0);
    kvt_apply_log(src, 1, 400);
    struct kv_snapshot *snap = NULL;
    ck_assert_int_eq(kv_snapshot_create(src, path, &snap), 0);
    kv_snapshot_close(snap);
    char *new_state = kvt_dump(src);
    kv_close(src);

    for (int step = 0; step <= KV_STEP_CLEANED; step++) {
        char *dir = kvt_mkdtemp();
        struct kv_store *s = kvt_open(dir, 0);
        kvt_apply_puts(s, 1, 30, "old", 10);
        char *old_state = kvt_dump(s);
        kv_close(s);
        pid_t pid = fork();
        ck_assert_int_ge(pid, 0);
        if (pid == 0) {
            struct kv_options o;
            memset(&o, 0, sizeof(o));
            o.step_hook = crash_hook;
            crash_step = step;
            if (kv_open(dir, &o, &s, NULL, 0) != 0) {
                _exit(2);
            }
            if (step == 0) {
                /* Die half way through receiving. */
                uint8_t buf[4096];
                size_t n = 0;
                kv_snapshot_open(path, NULL, &snap, NULL, 0);
                kv_snapshot_stage_begin(s);
                kv_snapshot_read_chunk(snap, 0, buf, sizeof(buf), &n);
                kv_snapshot_stage_write(s, 0, buf, n);
                _exit(0);
            }
            if (kvt_transfer(s, path) != 0 || kv_snapshot_install(s) != 0) {
                _exit(3);
            }
            _exit(4); /* the hook should have ended the process */
        }
        int status = 0;
        waitpid(pid, &status, 0);
        ck_assert(WIFEXITED(status));
        ck_assert_int_eq(WEXITSTATUS(status), 0);
        s = kvt_open(dir, 0);
        char *state = kvt_dump(s);
        if (step < KV_STEP_POINTED) {
            ck_assert_str_eq(state, old_state);
        } else {
            ck_assert_str_eq(state, new_state);
        }
        check_no_debris(dir);
        free(state);
        free(old_state);
        kv_close(s);
        kvt_rmdir(dir);
    }
    free(new_state);
    free(path);
    kvt_rmdir(src_dir);
}
END_TEST

Suite *kv_snapshot_suite(void)
{
    Suite *s = suite_create("snapshot");
    TCase *tc = tcase_create("snapshot");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_snapshot_under_writes_transfers_and_installs_equal);
    tcase_add_test(tc, test_snapshot_with_a_flipped_bit_is_refused);
    tcase_add_test(tc, test_snapshot_stage_refuses_holes_and_overruns);
    tcase_add_test(tc,
                   test_snapshot_install_crash_at_each_step_leaves_old_or_new);
    suite_add_tcase(s, tc);
    return s;
}
