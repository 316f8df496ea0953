/*
 * embed_wait.c - the blocking layer over the callback API: a _wait
 * function submits the same request with a callback that copies the
 * result and wakes the caller.
 */
#include <stdlib.h>
#include <string.h>

#include "embed_internal.h"

struct embed_waiter
{
    uv_mutex_t mu;
    uv_cond_t cv;
    bool done;
    bool want; /* copy the result */
    struct ballot_result *res;
    int status;
    int rc; /* EMBED_STATUS/EMBED_TRANSFER */
};

/* Copies @in, its operations, pairs and bytes into one allocation. */
static struct ballot_result *result_copy(const struct ballot_result *in)
{
    size_t n_kvs = 0, bytes = 0;
    for (size_t i = 0; i < in->n_ops; i++) {
        n_kvs += in->ops[i].n_kvs;
        for (size_t j = 0; j < in->ops[i].n_kvs; j++) {
            bytes += in->ops[i].kvs[j].key_len + in->ops[i].kvs[j].value_len;
        }
    }
    size_t size = sizeof(struct ballot_result) +
                  in->n_ops * sizeof(struct ballot_op_result) +
                  n_kvs * sizeof(struct ballot_kv) + bytes;
    struct ballot_result *out = calloc(1, size);
    if (out == NULL) {
        return NULL;
    }
    struct ballot_op_result *ops = (struct ballot_op_result *)(out + 1);
    struct ballot_kv *kvs = (struct ballot_kv *)(ops + in->n_ops);
    uint8_t *p = (uint8_t *)(kvs + n_kvs);
    *out = *in;
    out->ops = in->n_ops > 0 ? ops : NULL;
    for (size_t i = 0; i < in->n_ops; i++) {
        ops[i] = in->ops[i];
        ops[i].kvs = in->ops[i].n_kvs > 0 ? kvs : NULL;
        for (size_t j = 0; j < in->ops[i].n_kvs; j++) {
            const struct ballot_kv *src = &in->ops[i].kvs[j];
            *kvs = *src;
            kvs->key = p;
            memcpy(p, src->key, src->key_len);
            p += src->key_len;
            if (src->value != NULL) {
                kvs->value = p;
                memcpy(p, src->value, src->value_len);
                p += src->value_len;
            }
            kvs++;
        }
    }
    return out;
}

void ballot_result_free(struct ballot_result *res)
{
    free(res);
}

static void on_done(void *arg, const struct ballot_result *res)
{
    struct embed_waiter *w = arg;
    uv_mutex_lock(&w->mu);
    if (res != NULL) {
        w->status = res->status;
        if (w->want && res->status == 0) {
            w->res = result_copy(res);
            if (w->res == NULL) {
                w->status = BALLOT_ENOMEM;
            }
        }
    }
    w->done = true;
    uv_cond_signal(&w->cv);
    uv_mutex_unlock(&w->mu);
}

int embed_wait(struct ballot *b,
               struct embed_call *c,
               struct ballot_result **out)
{
    struct embed_waiter w;
    if (out != NULL) {
        *out = NULL;
    }
    if (!b->threaded || embed_on_loop(b)) {
        /* Waiting on the loop's own thread would never end. */
        embed_call_free(c);
        return BALLOT_EWRONGTHREAD;
    }
    memset(&w, 0, sizeof(w));
    w.want = out != NULL;
    if (uv_mutex_init(&w.mu) != 0) {
        embed_call_free(c);
        return BALLOT_ENOMEM;
    }
    if (uv_cond_init(&w.cv) != 0) {
        uv_mutex_destroy(&w.mu);
        embed_call_free(c);
        return BALLOT_ENOMEM;
    }
    c->cb = on_done;
    c->arg = &w;
    c->rc_out = &w.rc;
    int rv = embed_submit(b, c);
    if (rv == 0) {
        uv_mutex_lock(&w.mu);
        while (!w.done) {
            uv_cond_wait(&w.cv, &w.mu);
        }
        uv_mutex_unlock(&w.mu);
        rv = w.status != 0 ? w.status : w.rc;
    }
    uv_cond_destroy(&w.cv);
    uv_mutex_destroy(&w.mu);
    if (rv == 0 && out != NULL) {
        *out = w.res;
    } else {
        free(w.res);
    }
    return rv;
}

/* ---- the blocking forms ------------------------------------------------ */

static int wait_or(struct ballot *b,
                   int rv,
                   struct embed_call *c,
                   struct ballot_result **out)
{
    if (out != NULL) {
        *out = NULL;
    }
    return rv != 0 ? rv : embed_wait(b, c, out);
}

int ballot_put_wait(struct ballot *b,
                    const void *key,
                    size_t key_len,
                    const void *value,
                    size_t value_len,
                    const struct ballot_reqid *rid,
                    struct ballot_result **out)
{
    struct embed_call *c = NULL;
    int rv = b == NULL ? BALLOT_EINVAL
                       : embed_call_write(EMBED_PUT, key, key_len, value,
                                          value_len, NULL, rid, &c);
    return wait_or(b, rv, c, out);
}

int ballot_delete_wait(struct ballot *b,
                       const void *key,
                       size_t key_len,
                       const struct ballot_reqid *rid,
                       struct ballot_result **out)
{
    struct embed_call *c = NULL;
    int rv = b == NULL ? BALLOT_EINVAL
                       : embed_call_write(EMBED_DELETE, key, key_len, NULL, 0,
                                          NULL, rid, &c);
    return wait_or(b, rv, c, out);
}

int ballot_txn_wait(struct ballot *b,
                    const struct ballot_txn *txn,
                    const struct ballot_reqid *rid,
                    struct ballot_result **out)
{
    struct embed_call *c = NULL;
    int rv = b == NULL
                 ? BALLOT_EINVAL
                 : embed_call_write(EMBED_TXN, NULL, 0, NULL, 0, txn, rid, &c);
    return wait_or(b, rv, c, out);
}

int ballot_sequence_wait(struct ballot *b,
                         const void *name,
                         size_t name_len,
                         uint64_t count,
                         const struct ballot_reqid *rid,
                         uint64_t *first,
                         uint64_t *last)
{
    struct embed_call *c = NULL;
    struct ballot_result *res = NULL;
    if (first == NULL || last == NULL) {
        return BALLOT_EINVAL;
    }
    int rv = b == NULL ? BALLOT_EINVAL
                       : embed_call_sequence(name, name_len, count, rid, &c);
    rv = wait_or(b, rv, c, &res);
    if (rv == 0) {
        if (res->n_ops == 1 && res->ops[0].n_kvs == 1) {
            *first = res->ops[0].kvs[0].create_revision;
            *last = res->ops[0].kvs[0].version;
        } else {
            rv = BALLOT_EREFUSED; /* a request id another call applied */
        }
    }
    ballot_result_free(res);
    return rv;
}

int ballot_get_wait(struct ballot *b,
                    const void *key,
                    size_t key_len,
                    int consistency,
                    struct ballot_result **out)
{
    struct embed_call *c = NULL;
    int rv = b == NULL ? BALLOT_EINVAL
                       : embed_call_read(key, key_len, NULL, 0, 0, 0,
                                         consistency, true, &c);
    return wait_or(b, rv, c, out);
}

int ballot_range_wait(struct ballot *b,
                      const void *start,
                      size_t start_len,
                      const void *end,
                      size_t end_len,
                      uint64_t limit,
                      int flags,
                      int consistency,
                      struct ballot_result **out)
{
    struct embed_call *c = NULL;
    int rv = b == NULL ? BALLOT_EINVAL
                       : embed_call_read(start, start_len, end, end_len, limit,
                                         flags, consistency, false, &c);
    return wait_or(b, rv, c, out);
}

static int member_wait(struct ballot *b,
                       enum embed_kind kind,
                       uint64_t id,
                       const char *addr,
                       bool voter)
{
    struct embed_call *c = NULL;
    int rv = b == NULL ? BALLOT_EINVAL
                       : embed_call_member(kind, id, addr, voter, &c);
    return wait_or(b, rv, c, NULL);
}

int ballot_member_add_wait(struct ballot *b,
                           uint64_t id,
                           const char *addr,
                           bool voter)
{
    return member_wait(b, EMBED_MEMBER_ADD, id, addr, voter);
}

int ballot_member_promote_wait(struct ballot *b, uint64_t id)
{
    return member_wait(b, EMBED_MEMBER_PROMOTE, id, NULL, true);
}

int ballot_member_remove_wait(struct ballot *b, uint64_t id)
{
    return member_wait(b, EMBED_MEMBER_REMOVE, id, NULL, false);
}

/* ---- leases ------------------------------------------------------------ */

static int lease_wait(struct ballot *b,
                      enum embed_kind kind,
                      uint64_t id,
                      uint64_t ttl_ms,
                      const void *key,
                      size_t key_len,
                      const void *value,
                      size_t value_len,
                      const struct ballot_reqid *rid,
                      struct ballot_result **out)
{
    struct embed_call *c = NULL;
    int rv = b == NULL ? BALLOT_EINVAL
                       : embed_call_lease(kind, id, ttl_ms, key, key_len, value,
                                          value_len, rid, &c);
    return wait_or(b, rv, c, out);
}

int ballot_lease_grant_wait(struct ballot *b,
                            uint64_t ttl_ms,
                            uint64_t id,
                            const struct ballot_reqid *rid,
                            struct ballot_result **out)
{
    return lease_wait(b, EMBED_LEASE_GRANT, id, ttl_ms, NULL, 0, NULL, 0, rid,
                      out);
}

int ballot_lease_keepalive_wait(struct ballot *b,
                                uint64_t id,
                                struct ballot_result **out)
{
    return lease_wait(b, EMBED_LEASE_KEEPALIVE, id, 0, NULL, 0, NULL, 0, NULL,
                      out);
}

int ballot_lease_revoke_wait(struct ballot *b,
                             uint64_t id,
                             const struct ballot_reqid *rid,
                             struct ballot_result **out)
{
    return lease_wait(b, EMBED_LEASE_REVOKE, id, 0, NULL, 0, NULL, 0, rid, out);
}

int ballot_lease_ttl_wait(struct ballot *b,
                          uint64_t id,
                          struct ballot_result **out)
{
    return lease_wait(b, EMBED_LEASE_TTL, id, 0, NULL, 0, NULL, 0, NULL, out);
}

int ballot_put_lease_wait(struct ballot *b,
                          const void *key,
                          size_t key_len,
                          const void *value,
                          size_t value_len,
                          uint64_t lease,
                          const struct ballot_reqid *rid,
                          struct ballot_result **out)
{
    return lease_wait(b, EMBED_PUT_LEASE, lease, 0, key, key_len, value,
                      value_len, rid, out);
}

/* ---- locks and lease lists ---------------------------------------------- */

static int lock_wait(struct ballot *b,
                     enum embed_kind kind,
                     const struct embed_lock_args *a,
                     const struct ballot_reqid *rid,
                     struct ballot_result **out)
{
    struct embed_call *c = NULL;
    int rv = b == NULL ? BALLOT_EINVAL : embed_call_lock(kind, a, rid, &c);
    return wait_or(b, rv, c, out);
}

int ballot_lease_list_wait(struct ballot *b,
                           uint64_t after,
                           size_t count,
                           int consistency,
                           struct ballot_result **out)
{
    struct embed_lock_args a = {
        .after = after, .count = count, .consistency = consistency};
    return lock_wait(b, EMBED_LEASE_LIST, &a, NULL, out);
}

int ballot_lock_acquire_wait(struct ballot *b,
                             const void *name,
                             size_t name_len,
                             uint64_t lease,
                             uint64_t timeout_ms,
                             int flags,
                             const struct ballot_reqid *rid,
                             struct ballot_result **out)
{
    struct embed_lock_args a = {.name = name,
                                .name_len = name_len,
                                .lease = lease,
                                .timeout_ms = timeout_ms,
                                .flags = flags};
    return lock_wait(b, EMBED_LOCK_ACQUIRE, &a, rid, out);
}

int ballot_lock_release_wait(struct ballot *b,
                             const void *name,
                             size_t name_len,
                             uint64_t token,
                             const struct ballot_reqid *rid,
                             struct ballot_result **out)
{
    struct embed_lock_args a = {
        .name = name, .name_len = name_len, .token = token};
    return lock_wait(b, EMBED_LOCK_RELEASE, &a, rid, out);
}

int ballot_lock_owner_wait(struct ballot *b,
                           const void *name,
                           size_t name_len,
                           int consistency,
                           struct ballot_result **out)
{
    struct embed_lock_args a = {
        .name = name, .name_len = name_len, .consistency = consistency};
    return lock_wait(b, EMBED_LOCK_OWNER, &a, NULL, out);
}

int ballot_put_fenced_wait(struct ballot *b,
                           const void *key,
                           size_t key_len,
                           const void *value,
                           size_t value_len,
                           const void *name,
                           size_t name_len,
                           uint64_t token,
                           const struct ballot_reqid *rid,
                           struct ballot_result **out)
{
    struct embed_lock_args a = {.name = name,
                                .name_len = name_len,
                                .token = token,
                                .key = key,
                                .key_len = key_len,
                                .value = value,
                                .value_len = value_len};
    return lock_wait(b, EMBED_PUT_FENCED, &a, rid, out);
}

int ballot_campaign_wait(struct ballot *b,
                         const void *name,
                         size_t name_len,
                         uint64_t lease,
                         const void *value,
                         size_t value_len,
                         uint64_t timeout_ms,
                         const struct ballot_reqid *rid,
                         struct ballot_result **out)
{
    struct embed_lock_args a = {.name = name,
                                .name_len = name_len,
                                .election = true,
                                .lease = lease,
                                .timeout_ms = timeout_ms,
                                .value = value,
                                .value_len = value_len};
    return lock_wait(b, EMBED_LOCK_ACQUIRE, &a, rid, out);
}

int ballot_proclaim_wait(struct ballot *b,
                         const void *name,
                         size_t name_len,
                         uint64_t lease,
                         uint64_t token,
                         const void *value,
                         size_t value_len,
                         const struct ballot_reqid *rid,
                         struct ballot_result **out)
{
    struct embed_lock_args a = {.name = name,
                                .name_len = name_len,
                                .election = true,
                                .lease = lease,
                                .token = token,
                                .value = value,
                                .value_len = value_len};
    return lock_wait(b, EMBED_ELECT_PROCLAIM, &a, rid, out);
}

int ballot_resign_wait(struct ballot *b,
                       const void *name,
                       size_t name_len,
                       uint64_t token,
                       const struct ballot_reqid *rid,
                       struct ballot_result **out)
{
    struct embed_lock_args a = {
        .name = name, .name_len = name_len, .election = true, .token = token};
    return lock_wait(b, EMBED_LOCK_RELEASE, &a, rid, out);
}

int ballot_leader_wait(struct ballot *b,
                       const void *name,
                       size_t name_len,
                       int consistency,
                       struct ballot_result **out)
{
    struct embed_lock_args a = {.name = name,
                                .name_len = name_len,
                                .election = true,
                                .consistency = consistency};
    return lock_wait(b, EMBED_LOCK_OWNER, &a, NULL, out);
}
