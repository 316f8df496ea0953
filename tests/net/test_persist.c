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

struct fixture
{
    uv_loop_t loop;
    struct persist p;
    uv_thread_t loop_thread;
    /* What the ops saw. */
    atomic_int runs, afters, dones;
    atomic_int order; /* a counter every op takes a number from */
    int run_at, after_at, done_at;
    bool run_on_loop_thread, done_on_loop_thread, after_on_loop_thread;
    int status_seen;
    int next_status;
    /* Lets a test hold run() or after() until it posts. */
    bool block_run, block_after;
    uv_sem_t run_entered, run_go, after_entered, after_go;
    atomic_bool in_run, in_after;
    bool closed;
};

static struct fixture f;

static bool on_loop_thread(void)
{
    uv_thread_t self = uv_thread_self();
    return uv_thread_equal(&self, &f.loop_thread) != 0;
}

static int op_run(void *arg)
{
    ck_assert_ptr_eq(arg, &f);
    atomic_store(&f.in_run, true);
    f.run_on_loop_thread = on_loop_thread();
    f.run_at = atomic_fetch_add(&f.order, 1);
    if (f.block_run) {
        uv_sem_post(&f.run_entered);
        uv_sem_wait(&f.run_go);
    }
    atomic_fetch_add(&f.runs, 1);
    atomic_store(&f.in_run, false);
    return f.next_status;
}

static void op_after(void *arg)
{
    ck_assert_ptr_eq(arg, &f);
    atomic_store(&f.in_after, true);
    f.after_on_loop_thread = on_loop_thread();
    f.after_at = atomic_fetch_add(&f.order, 1);
    if (f.block_after) {
        uv_sem_post(&f.after_entered);
        uv_sem_wait(&f.after_go);
    }
    atomic_fetch_add(&f.afters, 1);
    atomic_store(&f.in_after, false);
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
    ck_assert_int_eq(uv_sem_init(&f.run_entered, 0), 0);
    ck_assert_int_eq(uv_sem_init(&f.run_go, 0), 0);
    ck_assert_int_eq(uv_sem_init(&f.after_entered, 0), 0);
    ck_assert_int_eq(uv_sem_init(&f.after_go, 0), 0);
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
    uv_sem_destroy(&f.run_entered);
    uv_sem_destroy(&f.run_go);
    uv_sem_destroy(&f.after_entered);
    uv_sem_destroy(&f.after_go);
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
        ck_assert(!f.run_on_loop_thread);
        ck_assert(f.done_on_loop_thread);
        ck_assert_int_lt(f.run_at, f.done_at);
        /* The next batch may come before the follow-up ended: it waits. */
    }
    wait_thread_idle();
    ck_assert_int_eq(atomic_load(&f.runs), 50);
    ck_assert_int_eq(atomic_load(&f.afters), 50);
    ck_assert(!f.after_on_loop_thread);
    ck_assert_int_lt(f.run_at, f.after_at);
}
END_TEST

/* The loop cannot claim the disk while a batch or its follow-up runs on
 * the thread, and can once the thread is idle; a batch submitted while the
 * follow-up runs starts after it. */
START_TEST(test_persist_claim_fails_while_the_thread_uses_the_disk)
{
    f.block_run = true;
    f.block_after = true;
    persist_submit(&f.p);
    ck_assert(!persist_claim(&f.p)); /* submitted, maybe not started */
    uv_sem_wait(&f.run_entered);
    ck_assert(!persist_claim(&f.p));
    uv_sem_post(&f.run_go);
    uv_sem_wait(&f.after_entered);
    /* The batch is reported while the follow-up still runs. */
    run_until_done(1);
    ck_assert(atomic_load(&f.in_after));
    ck_assert(!persist_claim(&f.p));
    f.block_run = false;
    persist_submit(&f.p);
    uv_sleep(20);
    ck_assert(!atomic_load(&f.in_run));
    ck_assert_int_eq(atomic_load(&f.runs), 1);
    f.block_after = false;
    uv_sem_post(&f.after_go);
    run_until_done(2);
    wait_thread_idle();
    ck_assert(persist_claim(&f.p));
    persist_release(&f.p);
    ck_assert_int_eq(atomic_load(&f.runs), 2);
    ck_assert_int_eq(atomic_load(&f.afters), 2);
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
    ck_assert(f.run_on_loop_thread);
    f.block_after = true;
    persist_release_after(&f.p);
    uv_sem_wait(&f.after_entered);
    ck_assert(!f.after_on_loop_thread);
    ck_assert(!persist_claim(&f.p));
    uv_sem_post(&f.after_go);
    persist_claim_wait(&f.p);
    ck_assert_int_eq(atomic_load(&f.afters), 1);
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
