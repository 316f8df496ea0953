/*
 * test_persist.c - the node's disk thread (net/persist.c): batches run on
 * the thread and are reported on the loop, the follow-up runs after the
 * report, the loop can claim the disk only while the thread leaves it
 * alone, and closing joins the thread and leaves the loop empty.
 */
#include <check.h>
#include <stdatomic.h>
#include <string.h>
#include <uv.h>

#include "persist.h"

/* What one op (run or after) saw, and a way to hold it until a test
 * lets it go. */
struct probe
{
    atomic_int count; /* times it ran */
    atomic_bool in;   /* running now */
    int at;           /* its number in the order of ops */
    bool on_loop_thread;
    bool block;
    uv_sem_t entered, go;
};

struct fixture
{
    uv_loop_t loop;
    struct persist p;
    uv_thread_t loop_thread;
    struct probe run, after;
    atomic_int dones;
    atomic_int order; /* a counter every op takes a number from */
    int done_at;
    bool done_on_loop_thread;
    int status_seen;
    int next_status;
    bool closed;
};

static struct fixture f;

static bool on_loop_thread(void)
{
    uv_thread_t self = uv_thread_self();
    return uv_thread_equal(&self, &f.loop_thread) != 0;
}

static void probe_run(struct probe *pr)
{
    atomic_store(&pr->in, true);
    pr->on_loop_thread = on_loop_thread();
    pr->at = atomic_fetch_add(&f.order, 1);
    if (pr->block) {
        uv_sem_post(&pr->entered);
        uv_sem_wait(&pr->go);
    }
    atomic_fetch_add(&pr->count, 1);
    atomic_store(&pr->in, false);
}

static int op_run(void *arg)
{
    ck_assert_ptr_eq(arg, &f);
    probe_run(&f.run);
    return f.next_status;
}

static void op_after(void *arg)
{
    ck_assert_ptr_eq(arg, &f);
    probe_run(&f.after);
}

static void op_done(void *arg, int status)
{
    ck_assert_ptr_eq(arg, &f);
    f.done_on_loop_thread = on_loop_thread();
    f.done_at = atomic_fetch_add(&f.order, 1);
    f.status_seen = status;
    atomic_fetch_add(&f.dones, 1);
}

static const struct persist_ops ops = {op_run, op_after, op_done};

static void setup(void)
{
    memset(&f, 0, sizeof(f));
    ck_assert_int_eq(uv_loop_init(&f.loop), 0);
    f.loop_thread = uv_thread_self();
    struct probe *probes[] = {&f.run, &f.after};
    for (int i = 0; i < 2; i++) {
        ck_assert_int_eq(uv_sem_init(&probes[i]->entered, 0), 0);
        ck_assert_int_eq(uv_sem_init(&probes[i]->go, 0), 0);
    }
    ck_assert_int_eq(persist_start(&f.p, &f.loop, &ops, &f), 0);
}

static void on_closed(struct persist *p)
{
    ck_assert_ptr_eq(p, &f.p);
    f.closed = true;
}

static void teardown(void)
{
    persist_close(&f.p, on_closed);
    ck_assert_int_eq(uv_run(&f.loop, UV_RUN_DEFAULT), 0);
    ck_assert(f.closed);
    ck_assert_int_eq(uv_loop_close(&f.loop), 0);
    struct probe *probes[] = {&f.run, &f.after};
    for (int i = 0; i < 2; i++) {
        uv_sem_destroy(&probes[i]->entered);
        uv_sem_destroy(&probes[i]->go);
    }
}

/* Runs the loop until done() was called @n times in all. */
static void run_until_done(int n)
{
    while (atomic_load(&f.dones) < n) {
        uv_run(&f.loop, UV_RUN_ONCE);
    }
}

/* Waits (without the loop) until the thread has left the disk. */
static void wait_thread_idle(void)
{
    persist_claim_wait(&f.p);
    persist_release(&f.p);
}

/* A submitted batch runs on the thread, its status reaches done() on the
 * loop thread, and the follow-up runs on the thread after the batch. */
START_TEST(test_persist_runs_a_batch_on_its_thread_and_reports_on_the_loop)
{
    for (int i = 0; i < 50; i++) {
        f.next_status = i % 3 == 0 ? -5 : 0;
        persist_submit(&f.p);
        run_until_done(i + 1);
        ck_assert_int_eq(f.status_seen, f.next_status);
        ck_assert(!f.run.on_loop_thread);
        ck_assert(f.done_on_loop_thread);
        ck_assert_int_lt(f.run.at, f.done_at);
        /* The next batch may come before the follow-up ended: it waits. */
    }
    wait_thread_idle();
    ck_assert_int_eq(atomic_load(&f.run.count), 50);
    ck_assert_int_eq(atomic_load(&f.after.count), 50);
    ck_assert(!f.after.on_loop_thread);
    ck_assert_int_lt(f.run.at, f.after.at);
}
END_TEST

/* The loop cannot claim the disk while a batch or its follow-up runs on
 * the thread, and can once the thread is idle; a batch submitted while the
 * follow-up runs starts after it. */
START_TEST(test_persist_claim_fails_while_the_thread_uses_the_disk)
{
    f.run.block = true;
    f.after.block = true;
    persist_submit(&f.p);
    ck_assert(!persist_claim(&f.p)); /* submitted, maybe not started */
    uv_sem_wait(&f.run.entered);
    ck_assert(!persist_claim(&f.p));
    uv_sem_post(&f.run.go);
    uv_sem_wait(&f.after.entered);
    /* The batch is reported while the follow-up still runs. */
    run_until_done(1);
    ck_assert(atomic_load(&f.after.in));
    ck_assert(!persist_claim(&f.p));
    f.run.block = false;
    persist_submit(&f.p);
    uv_sleep(20);
    ck_assert(!atomic_load(&f.run.in));
    ck_assert_int_eq(atomic_load(&f.run.count), 1);
    f.after.block = false;
    uv_sem_post(&f.after.go);
    run_until_done(2);
    wait_thread_idle();
    ck_assert(persist_claim(&f.p));
    persist_release(&f.p);
    ck_assert_int_eq(atomic_load(&f.run.count), 2);
    ck_assert_int_eq(atomic_load(&f.after.count), 2);
}
END_TEST

/* A batch the loop ran itself hands its follow-up to the thread with the
 * disk: the follow-up runs there, and the disk is the thread's until it
 * ends (a claim fails, a waiting claim waits). */
START_TEST(test_persist_follow_up_of_a_claimed_batch_runs_on_the_thread)
{
    ck_assert(persist_claim(&f.p));
    ck_assert(!persist_claim(&f.p)); /* one owner at a time */
    ck_assert_int_eq(op_run(&f), 0);
    ck_assert(f.run.on_loop_thread);
    f.after.block = true;
    persist_release_after(&f.p);
    uv_sem_wait(&f.after.entered);
    ck_assert(!f.after.on_loop_thread);
    ck_assert(!persist_claim(&f.p));
    uv_sem_post(&f.after.go);
    persist_claim_wait(&f.p);
    ck_assert_int_eq(atomic_load(&f.after.count), 1);
    persist_release(&f.p);
    /* No done() for a batch the loop ran. */
    uv_run(&f.loop, UV_RUN_NOWAIT);
    ck_assert_int_eq(atomic_load(&f.dones), 0);
}
END_TEST

Suite *persist_suite(void);

Suite *persist_suite(void)
{
    Suite *s = suite_create("persist");
    TCase *tc = tcase_create("thread");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 30);
    tcase_add_test(
        tc, test_persist_runs_a_batch_on_its_thread_and_reports_on_the_loop);
    tcase_add_test(tc, test_persist_claim_fails_while_the_thread_uses_the_disk);
    tcase_add_test(
        tc, test_persist_follow_up_of_a_claimed_batch_runs_on_the_thread);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(persist_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? 0 : 1;
}
