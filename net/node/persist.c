/*
 * persist.c - the node's disk thread; see persist.h.
 */
#include "persist.h"

#include <assert.h>
#include <stddef.h>

static void thread_main(void *arg)
{
    struct persist *p = arg;
    uv_mutex_lock(&p->lock);
    for (;;) {
        while (!p->job && !p->after && !p->quit) {
            uv_cond_wait(&p->cond, &p->lock);
        }
        if (p->after) {
            /* The follow-up of a batch the loop ran; the loop handed the
             * disk over with it. */
            p->after = false;
            uv_mutex_unlock(&p->lock);
            p->ops->after(p->arg);
            uv_mutex_lock(&p->lock);
            p->busy = false;
            uv_cond_broadcast(&p->cond);
            continue;
        }
        if (!p->job) {
            break; /* quit, and nothing submitted */
        }
        p->job = false;
        assert(!p->busy);
        p->busy = true;
        uv_mutex_unlock(&p->lock);
        int status = p->ops->run(p->arg);
        uv_mutex_lock(&p->lock);
        p->status = status;
        p->finished = true;
        uv_mutex_unlock(&p->lock);
        /* The loop answers while the follow-up runs. */
        uv_async_send(&p->wake);
        p->ops->after(p->arg);
        uv_mutex_lock(&p->lock);
        p->busy = false;
        uv_cond_broadcast(&p->cond); /* a loop waiting for a claim */
    }
    uv_mutex_unlock(&p->lock);
}

static void on_wake(uv_async_t *h)
{
    struct persist *p = h->data;
    uv_mutex_lock(&p->lock);
    bool finished = p->finished;
    int status = p->status;
    p->finished = false;
    uv_mutex_unlock(&p->lock);
    if (finished) {
        p->ops->done(p->arg, status);
    }
}

int persist_start(struct persist *p,
                  uv_loop_t *loop,
                  const struct persist_ops *ops,
                  void *arg)
{
    int rv;
    p->loop = loop;
    p->ops = ops;
    p->arg = arg;
    p->job = p->busy = p->finished = p->after = p->quit = false;
    p->status = 0;
    p->closed = NULL;
    if ((rv = uv_mutex_init(&p->lock)) != 0) {
        return rv;
    }
    if ((rv = uv_cond_init(&p->cond)) != 0) {
        goto fail_cond;
    }
    if ((rv = uv_async_init(loop, &p->wake, on_wake)) != 0) {
        goto fail_async;
    }
    p->wake.data = p;
    if ((rv = uv_thread_create(&p->thread, thread_main, p)) != 0) {
        goto fail_thread;
    }
    return 0;

fail_thread:
    /* Closing is asynchronous; the handle holds no memory of ours, and
     * the caller gives up on the loop. */
    uv_close((uv_handle_t *)&p->wake, NULL);
fail_async:
    uv_cond_destroy(&p->cond);
fail_cond:
    uv_mutex_destroy(&p->lock);
    return rv;
}

void persist_submit(struct persist *p)
{
    uv_mutex_lock(&p->lock);
    assert(!p->job && !p->finished);
    p->job = true;
    uv_cond_signal(&p->cond);
    uv_mutex_unlock(&p->lock);
}

bool persist_claim(struct persist *p)
{
    uv_mutex_lock(&p->lock);
    bool ok = !p->busy && !p->job;
    if (ok) {
        p->busy = true;
    }
    uv_mutex_unlock(&p->lock);
    return ok;
}

void persist_claim_wait(struct persist *p)
{
    uv_mutex_lock(&p->lock);
    assert(!p->job);
    while (p->busy) {
        uv_cond_wait(&p->cond, &p->lock);
    }
    p->busy = true;
    uv_mutex_unlock(&p->lock);
}

void persist_release(struct persist *p)
{
    uv_mutex_lock(&p->lock);
    assert(p->busy);
    p->busy = false;
    uv_cond_broadcast(&p->cond);
    uv_mutex_unlock(&p->lock);
}

void persist_release_after(struct persist *p)
{
    uv_mutex_lock(&p->lock);
    assert(p->busy && !p->after);
    /* The disk stays busy until the thread has run the follow-up. */
    p->after = true;
    uv_cond_signal(&p->cond);
    uv_mutex_unlock(&p->lock);
}

static void on_closed(uv_handle_t *h)
{
    struct persist *p = h->data;
    uv_cond_destroy(&p->cond);
    uv_mutex_destroy(&p->lock);
    if (p->closed != NULL) {
        p->closed(p);
    }
}

void persist_close(struct persist *p, void (*closed)(struct persist *p))
{
    uv_mutex_lock(&p->lock);
    assert(!p->job);
    p->quit = true;
    uv_cond_signal(&p->cond);
    uv_mutex_unlock(&p->lock);
    uv_thread_join(&p->thread);
    p->closed = closed;
    uv_close((uv_handle_t *)&p->wake, on_closed);
}
