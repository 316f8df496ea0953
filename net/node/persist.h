/*
 * persist.h - the node's disk thread: where a batch is made durable.
 *
 * One batch at a time. The loop hands a batch to the thread
 * (persist_submit); the thread runs it (ops->run: append and fdatasync),
 * wakes the loop, whose ops->done learns the status, and only then runs
 * the batch's follow-up work (ops->after: zero-filling the WAL ahead), while
 * the loop is already sending acknowledgements. A small batch may instead
 * run on the loop itself, saving the two thread hand-offs (a futex wake one
 * way, an eventfd the other, 20-100 us each on a busy 2-core machine): the
 * loop claims the disk (persist_claim) when the thread is idle, runs the
 * batch, answers, and hands the disk back with the follow-up for the thread
 * (persist_release_after), so that the follow-up delays nothing the loop
 * does next.
 *
 * Whoever runs a batch owns the disk (the WAL is not thread-safe) until its
 * follow-up is done; every other use of the WAL on the loop claims it first
 * (persist_claim_wait). Every call is made on the loop thread.
 */
#ifndef BALLOT_NET_PERSIST_H
#define BALLOT_NET_PERSIST_H

#include <stdbool.h>
#include <uv.h>

struct persist_ops
{
    /* Runs one batch: on the thread, or on the loop after a claim. Returns
     * a status handed to done(). */
    int (*run)(void *arg);
    /* Follow-up work of a batch the thread ran, after done() was
     * scheduled. */
    void (*after)(void *arg);
    /* Loop thread: the submitted batch finished with @status. */
    void (*done)(void *arg, int status);
};

struct persist
{
    uv_loop_t *loop;
    const struct persist_ops *ops;
    void *arg;
    uv_thread_t thread;
    uv_mutex_t lock;
    uv_cond_t cond;
    uv_async_t wake; /* the thread tells the loop a batch is done */
    void (*closed)(struct persist *p);
    /* Under @lock: */
    bool job;      /* a batch is submitted and not started */
    bool busy;     /* the disk is in use: a batch, its follow-up, a claim */
    bool finished; /* a batch is done and done() not called yet */
    bool after;    /* the loop handed over a follow-up to run */
    int status;
    bool quit;
};

/* Starts the thread. @ops and @arg are borrowed until closed. Returns 0 or
 * a negative libuv error. */
int persist_start(struct persist *p,
                  uv_loop_t *loop,
                  const struct persist_ops *ops,
                  void *arg);

/* Hands a batch to the thread. The disk must not be claimed by the loop,
 * and the previous batch must be done. */
void persist_submit(struct persist *p);

/* Claims the disk for the loop if the thread is idle (no batch, no
 * follow-up): returns true, and the loop may use the WAL until
 * persist_release(). Returns false otherwise, at once. */
bool persist_claim(struct persist *p);

/* Claims the disk, waiting for the thread's follow-up to end if it runs.
 * No batch may be submitted. */
void persist_claim_wait(struct persist *p);

/* Gives the claimed disk back. */
void persist_release(struct persist *p);

/* Gives the claimed disk back to the thread together with the follow-up
 * of the batch the loop ran (ops->after), which the thread runs at once:
 * the disk is busy until it is done. */
void persist_release_after(struct persist *p);

/* Stops the thread (no batch may be submitted; a follow-up is waited for)
 * and closes the wake-up handle; @closed runs from the loop afterwards. */
void persist_close(struct persist *p, void (*closed)(struct persist *p));

#endif
