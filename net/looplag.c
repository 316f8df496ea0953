/*
 * looplag.c - see looplag.h.
 *
 * A prepare handle runs once per iteration, just before the loop blocks
 * for I/O. Between two of them the loop ran one whole iteration: its
 * timers, I/O callbacks, check and close callbacks, and the wait in the
 * kernel. uv_metrics_idle_time() counts the waits, so the difference is
 * the time callbacks held the loop.
 */
#include "looplag.h"

#include <stdlib.h>

struct looplag
{
    uv_prepare_t prepare;
    uv_loop_t *loop;
    uint64_t warn_ns;
    looplag_report_cb report;
    void *arg;
    uint64_t last_ns;   /* uv_hrtime() at the previous prepare */
    uint64_t last_idle; /* uv_metrics_idle_time() then */
    uint64_t last_report_ns;
    uint64_t unreported;
    struct looplag_stats stats;
};

static void on_prepare(uv_prepare_t *h)
{
    struct looplag *l = h->data;
    uint64_t now = uv_hrtime();
    uint64_t idle = uv_metrics_idle_time(l->loop);
    if (l->last_ns != 0) {
        uint64_t wall = now - l->last_ns;
        uint64_t waited = idle - l->last_idle;
        uint64_t busy_ns = wall > waited ? wall - waited : 0;
        uint64_t busy_ms = busy_ns / 1000000u;
        l->stats.iterations++;
        histo_add(&l->stats.busy_us, histo_us(busy_ns));
        if (busy_ms > l->stats.busy_max_ms) {
            l->stats.busy_max_ms = busy_ms;
        }
        if (busy_ms > l->stats.busy_last_max_ms) {
            l->stats.busy_last_max_ms = busy_ms;
        }
        if (l->warn_ns > 0 && busy_ms * 1000000u >= l->warn_ns) {
            l->stats.slow++;
            if (l->report != NULL &&
                (l->last_report_ns == 0 ||
                 now - l->last_report_ns >=
                     LOOPLAG_REPORT_EVERY_MS * (uint64_t)1000000u)) {
                l->report(l->arg, busy_ms, l->unreported);
                l->unreported = 0;
                l->last_report_ns = now;
            } else {
                l->unreported++;
            }
        }
    }
    /* The report took time too: measure from after it. */
    l->last_ns = uv_hrtime();
    l->last_idle = idle;
}

int looplag_start(uv_loop_t *loop,
                  uint64_t warn_ms,
                  looplag_report_cb report,
                  void *arg,
                  struct looplag **out)
{
    int rc = uv_loop_configure(loop, UV_METRICS_IDLE_TIME);
    if (rc != 0) {
        return rc;
    }
    struct looplag *l = calloc(1, sizeof(*l));
    if (l == NULL) {
        return UV_ENOMEM;
    }
    l->loop = loop;
    l->warn_ns = warn_ms * 1000000u;
    l->report = report;
    l->arg = arg;
    uv_prepare_init(loop, &l->prepare);
    l->prepare.data = l;
    uv_prepare_start(&l->prepare, on_prepare);
    uv_unref((uv_handle_t *)&l->prepare);
    *out = l;
    return 0;
}

void looplag_stats(struct looplag *l, struct looplag_stats *out)
{
    *out = l->stats;
    l->stats.busy_last_max_ms = 0;
}

static void on_closed(uv_handle_t *h)
{
    free(h->data);
}

void looplag_stop(struct looplag *l)
{
    uv_close((uv_handle_t *)&l->prepare, on_closed);
}
