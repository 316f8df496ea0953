/*
 * embed_api.c - the public functions of include/ballot.h that build a
 * request and hand it to the node (embed_submit()), the configuration
 * functions, and the error texts.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "embed_internal.h"

const char *ballot_version(void)
{
    return BALLOT_VERSION_STRING;
}

/* ---- errors ------------------------------------------------------------ */

static const struct
{
    int code;
    const char *text;
} errors[] = {
    {BALLOT_OK, "ok"},
    {BALLOT_EINVAL, "invalid argument"},
    {BALLOT_ENOMEM, "out of memory"},
    {BALLOT_ENOTLEADER, "not the leader: not applied, retry on the leader"},
    {BALLOT_EBUSY, "too much uncommitted work: not applied, retry later"},
    {BALLOT_EUNKNOWN,
     "outcome unknown: the write may or may not have been applied"},
    {BALLOT_ENOREAD, "the read could not be confirmed by a leader"},
    {BALLOT_ECLOSED, "the node is stopping or stopped"},
    {BALLOT_ESTORAGE, "storage failed: the node has halted"},
    {BALLOT_ETOOBIG, "request too large"},
    {BALLOT_ECONFPENDING, "another membership change is in progress"},
    {BALLOT_EWRONGTHREAD, "not allowed from this thread"},
    {BALLOT_EOPEN, "the node could not be opened"},
    {BALLOT_ESTALE, "a request id older than the last one applied"},
    {BALLOT_EREFUSED, "refused by the state machine"},
    {BALLOT_ECOMPACTED, "the revision was compacted away"},
    {BALLOT_ELIMIT, "too many open at once"},
    {BALLOT_ECLOCK, "the clock is too far behind the last ID minted"},
    {BALLOT_ENOLEASE, "no such lease"},
    {BALLOT_ETRYAGAIN, "a new leader does not know the lease clock yet"},
    {BALLOT_ELEASEEXISTS, "a lease with that id already exists"},
    {BALLOT_ELOCKLOST, "the claim on the lock ended while it waited"},
    {BALLOT_ETIMEDOUT, "timed out waiting for the lock (claim withdrawn)"},
    {BALLOT_EFENCED, "the fencing token no longer holds the lock"},
    {BALLOT_ENOTHELD, "no holder or waiter of the lock has that token"},
    {BALLOT_ELOCKED, "the lock is held by another"},
};

const char *ballot_strerror(int code)
{
    for (size_t i = 0; i < sizeof(errors) / sizeof(errors[0]); i++) {
        if (errors[i].code == code) {
            return errors[i].text;
        }
    }
    return "unknown error";
}

bool ballot_outcome_unknown(int code)
{
    return code == BALLOT_EUNKNOWN;
}

/* ---- configuration ----------------------------------------------------- */

int ballot_config_create(struct ballot_config **out)
{
    if (out == NULL) {
        return BALLOT_EINVAL;
    }
    struct ballot_config *cfg = calloc(1, sizeof(*cfg));
    if (cfg == NULL) {
        return BALLOT_ENOMEM;
    }
    config_default(&cfg->d);
    cfg->log_level = BALLOT_LOG_INFO;
    *out = cfg;
    return 0;
}

void ballot_config_destroy(struct ballot_config *cfg)
{
    free(cfg);
}

int ballot_config_set(struct ballot_config *cfg,
                      const char *name,
                      const char *value)
{
    if (cfg == NULL) {
        return BALLOT_EINVAL;
    }
    if (name == NULL || value == NULL) {
        snprintf(cfg->errmsg, sizeof(cfg->errmsg),
                 "a setting needs a name and a value");
        return BALLOT_EINVAL;
    }
    if (config_set(&cfg->d, name, value, cfg->errmsg, sizeof(cfg->errmsg)) !=
        0) {
        return BALLOT_EINVAL;
    }
    return 0;
}

int ballot_config_load(struct ballot_config *cfg, const char *path)
{
    if (cfg == NULL || path == NULL) {
        return BALLOT_EINVAL;
    }
    if (config_load_file(&cfg->d, path, cfg->errmsg, sizeof(cfg->errmsg)) !=
        0) {
        return BALLOT_EINVAL;
    }
    return 0;
}

int ballot_config_args(struct ballot_config *cfg, int argc, char **argv)
{
    if (cfg == NULL || (argc > 0 && argv == NULL)) {
        return BALLOT_EINVAL;
    }
    int rv =
        config_from_args(&cfg->d, argc, argv, cfg->errmsg, sizeof(cfg->errmsg));
    return rv == 1 ? 1 : rv != 0 ? BALLOT_EINVAL : 0;
}

int ballot_config_check(struct ballot_config *cfg)
{
    if (cfg == NULL) {
        return BALLOT_EINVAL;
    }
    struct ballotd_config copy = cfg->d; /* config_finish() derives values */
    if (config_finish(&copy, cfg->errmsg, sizeof(cfg->errmsg)) != 0) {
        return BALLOT_EINVAL;
    }
    return 0;
}

const char *ballot_config_errmsg(const struct ballot_config *cfg)
{
    return cfg != NULL ? cfg->errmsg : "no configuration";
}

int ballot_config_get(const struct ballot_config *cfg,
                      const char *name,
                      char *buf,
                      size_t len)
{
    static const char *levels[] = {"debug", "info", "warn", "error"};
    int n;
    if (cfg == NULL || name == NULL || buf == NULL) {
        return BALLOT_EINVAL;
    }
    if (strcmp(name, "id") == 0) {
        n = snprintf(buf, len, "%llu", (unsigned long long)cfg->d.node.id);
    } else if (strcmp(name, "log_level") == 0) {
        int l = cfg->d.verbose ? 0 : cfg->d.log_level;
        n = snprintf(buf, len, "%s", levels[l >= 0 && l <= 3 ? l : 1]);
    } else if (strcmp(name, "log_format") == 0) {
        n = snprintf(buf, len, "%s", cfg->d.log_format);
    } else {
        return BALLOT_EINVAL;
    }
    return n >= 0 && (size_t)n < len ? 0 : BALLOT_EINVAL;
}

void ballot_config_set_log(struct ballot_config *cfg,
                           ballot_log_cb cb,
                           void *arg,
                           int min_level)
{
    if (cfg != NULL) {
        cfg->log = cb;
        cfg->log_arg = arg;
        cfg->log_level = min_level;
    }
}

void ballot_config_set_halt(struct ballot_config *cfg,
                            ballot_halt_cb cb,
                            void *arg)
{
    if (cfg != NULL) {
        cfg->halt = cb;
        cfg->halt_arg = arg;
    }
}

/* ---- requests ---------------------------------------------------------- */

/* Common checks of an asynchronous request. */
static int check(const struct ballot *b, ballot_cb cb)
{
    return b == NULL || cb == NULL ? BALLOT_EINVAL : 0;
}

static int submit(struct ballot *b,
                  struct embed_call *c,
                  ballot_cb cb,
                  void *arg)
{
    c->cb = cb;
    c->arg = arg;
    return embed_submit(b, c);
}

int ballot_put(struct ballot *b,
               const void *key,
               size_t key_len,
               const void *value,
               size_t value_len,
               const struct ballot_reqid *rid,
               ballot_cb cb,
               void *arg)
{
    struct embed_call *c;
    int rv = check(b, cb);
    if (rv == 0) {
        rv = embed_call_write(EMBED_PUT, key, key_len, value, value_len, NULL,
                              rid, &c);
    }
    return rv != 0 ? rv : submit(b, c, cb, arg);
}

int ballot_delete(struct ballot *b,
                  const void *key,
                  size_t key_len,
                  const struct ballot_reqid *rid,
                  ballot_cb cb,
                  void *arg)
{
    struct embed_call *c;
    int rv = check(b, cb);
    if (rv == 0) {
        rv = embed_call_write(EMBED_DELETE, key, key_len, NULL, 0, NULL, rid,
                              &c);
    }
    return rv != 0 ? rv : submit(b, c, cb, arg);
}

int ballot_txn(struct ballot *b,
               const struct ballot_txn *txn,
               const struct ballot_reqid *rid,
               ballot_cb cb,
               void *arg)
{
    struct embed_call *c;
    int rv = check(b, cb);
    if (rv == 0) {
        rv = embed_call_write(EMBED_TXN, NULL, 0, NULL, 0, txn, rid, &c);
    }
    return rv != 0 ? rv : submit(b, c, cb, arg);
}

int ballot_sequence(struct ballot *b,
                    const void *name,
                    size_t name_len,
                    uint64_t count,
                    const struct ballot_reqid *rid,
                    ballot_cb cb,
                    void *arg)
{
    struct embed_call *c;
    int rv = check(b, cb);
    if (rv == 0) {
        rv = embed_call_sequence(name, name_len, count, rid, &c);
    }
    return rv != 0 ? rv : submit(b, c, cb, arg);
}

int ballot_get(struct ballot *b,
               const void *key,
               size_t key_len,
               int consistency,
               ballot_cb cb,
               void *arg)
{
    struct embed_call *c;
    int rv = check(b, cb);
    if (rv == 0) {
        rv =
            embed_call_read(key, key_len, NULL, 0, 0, 0, consistency, true, &c);
    }
    return rv != 0 ? rv : submit(b, c, cb, arg);
}

int ballot_range(struct ballot *b,
                 const void *start,
                 size_t start_len,
                 const void *end,
                 size_t end_len,
                 uint64_t limit,
                 int flags,
                 int consistency,
                 ballot_cb cb,
                 void *arg)
{
    struct embed_call *c;
    int rv = check(b, cb);
    if (rv == 0) {
        rv = embed_call_read(start, start_len, end, end_len, limit, flags,
                             consistency, false, &c);
    }
    return rv != 0 ? rv : submit(b, c, cb, arg);
}

static int member_call(struct ballot *b,
                       enum embed_kind kind,
                       uint64_t id,
                       const char *addr,
                       bool voter,
                       ballot_cb cb,
                       void *arg)
{
    struct embed_call *c;
    int rv = check(b, cb);
    if (rv == 0) {
        rv = embed_call_member(kind, id, addr, voter, &c);
    }
    return rv != 0 ? rv : submit(b, c, cb, arg);
}

int ballot_member_add(struct ballot *b,
                      uint64_t id,
                      const char *addr,
                      bool voter,
                      ballot_cb cb,
                      void *arg)
{
    return member_call(b, EMBED_MEMBER_ADD, id, addr, voter, cb, arg);
}

int ballot_member_promote(struct ballot *b,
                          uint64_t id,
                          ballot_cb cb,
                          void *arg)
{
    return member_call(b, EMBED_MEMBER_PROMOTE, id, NULL, true, cb, arg);
}

int ballot_member_remove(struct ballot *b, uint64_t id, ballot_cb cb, void *arg)
{
    return member_call(b, EMBED_MEMBER_REMOVE, id, NULL, false, cb, arg);
}

/* ---- status and transfer: answered at once on the loop ----------------- */

static int on_loop_now(struct ballot *b,
                       enum embed_kind kind,
                       uint64_t id,
                       struct ballot_status *out)
{
    if (b->stopping) {
        return BALLOT_ECLOSED;
    }
    if (kind == EMBED_STATUS) {
        embed_status_fill(b, out);
        return 0;
    }
    if (b->halted) {
        return BALLOT_ESTORAGE;
    }
    return embed_error(bnode_transfer(b->node, id));
}

int ballot_status(struct ballot *b, struct ballot_status *out)
{
    if (b == NULL || out == NULL) {
        return BALLOT_EINVAL;
    }
    if (embed_on_loop(b)) {
        return on_loop_now(b, EMBED_STATUS, 0, out);
    }
    struct embed_call *c = calloc(1, sizeof(*c));
    if (c == NULL) {
        return BALLOT_ENOMEM;
    }
    c->kind = EMBED_STATUS;
    c->status_out = out;
    return embed_wait(b, c, NULL);
}

int ballot_transfer_leader(struct ballot *b, uint64_t id)
{
    if (b == NULL || id == 0) {
        return BALLOT_EINVAL;
    }
    if (embed_on_loop(b)) {
        return on_loop_now(b, EMBED_TRANSFER, id, NULL);
    }
    struct embed_call *c = calloc(1, sizeof(*c));
    if (c == NULL) {
        return BALLOT_ENOMEM;
    }
    c->kind = EMBED_TRANSFER;
    c->id = id;
    return embed_wait(b, c, NULL);
}

int ballot_snowflake(struct ballot *b, uint64_t *out, size_t n)
{
    if (b == NULL || out == NULL) {
        return BALLOT_EINVAL;
    }
    /* The generator locks itself: callable from any thread while the
     * node is open (not concurrently with its close). */
    int rv = bnode_snowflake(b->node, out, n, NULL);
    return rv == BNODE_ECLOCK ? BALLOT_ECLOCK : embed_error(rv);
}

/* ---- leases ------------------------------------------------------------ */

static int lease_call(struct ballot *b,
                      enum embed_kind kind,
                      uint64_t id,
                      uint64_t ttl_ms,
                      const void *key,
                      size_t key_len,
                      const void *value,
                      size_t value_len,
                      const struct ballot_reqid *rid,
                      ballot_cb cb,
                      void *arg)
{
    struct embed_call *c;
    int rv = check(b, cb);
    if (rv == 0) {
        rv = embed_call_lease(kind, id, ttl_ms, key, key_len, value, value_len,
                              rid, &c);
    }
    return rv != 0 ? rv : submit(b, c, cb, arg);
}

int ballot_lease_grant(struct ballot *b,
                       uint64_t ttl_ms,
                       uint64_t id,
                       const struct ballot_reqid *rid,
                       ballot_cb cb,
                       void *arg)
{
    return lease_call(b, EMBED_LEASE_GRANT, id, ttl_ms, NULL, 0, NULL, 0, rid,
                      cb, arg);
}

int ballot_lease_keepalive(struct ballot *b,
                           uint64_t id,
                           ballot_cb cb,
                           void *arg)
{
    return lease_call(b, EMBED_LEASE_KEEPALIVE, id, 0, NULL, 0, NULL, 0, NULL,
                      cb, arg);
}

int ballot_lease_revoke(struct ballot *b,
                        uint64_t id,
                        const struct ballot_reqid *rid,
                        ballot_cb cb,
                        void *arg)
{
    return lease_call(b, EMBED_LEASE_REVOKE, id, 0, NULL, 0, NULL, 0, rid, cb,
                      arg);
}

int ballot_lease_ttl(struct ballot *b, uint64_t id, ballot_cb cb, void *arg)
{
    return lease_call(b, EMBED_LEASE_TTL, id, 0, NULL, 0, NULL, 0, NULL, cb,
                      arg);
}

int ballot_put_lease(struct ballot *b,
                     const void *key,
                     size_t key_len,
                     const void *value,
                     size_t value_len,
                     uint64_t lease,
                     const struct ballot_reqid *rid,
                     ballot_cb cb,
                     void *arg)
{
    return lease_call(b, EMBED_PUT_LEASE, lease, 0, key, key_len, value,
                      value_len, rid, cb, arg);
}

/* ---- locks and lease lists ---------------------------------------------- */

static int lock_call(struct ballot *b,
                     enum embed_kind kind,
                     const struct embed_lock_args *a,
                     const struct ballot_reqid *rid,
                     ballot_cb cb,
                     void *arg)
{
    struct embed_call *c;
    int rv = check(b, cb);
    if (rv == 0) {
        rv = embed_call_lock(kind, a, rid, &c);
    }
    return rv != 0 ? rv : submit(b, c, cb, arg);
}

int ballot_lease_list(struct ballot *b,
                      uint64_t after,
                      size_t count,
                      int consistency,
                      ballot_cb cb,
                      void *arg)
{
    struct embed_lock_args a = {
        .after = after, .count = count, .consistency = consistency};
    return lock_call(b, EMBED_LEASE_LIST, &a, NULL, cb, arg);
}

int ballot_lock_acquire(struct ballot *b,
                        const void *name,
                        size_t name_len,
                        uint64_t lease,
                        uint64_t timeout_ms,
                        int flags,
                        const struct ballot_reqid *rid,
                        ballot_cb cb,
                        void *arg)
{
    struct embed_lock_args a = {.name = name,
                                .name_len = name_len,
                                .lease = lease,
                                .timeout_ms = timeout_ms,
                                .flags = flags};
    return lock_call(b, EMBED_LOCK_ACQUIRE, &a, rid, cb, arg);
}

int ballot_lock_release(struct ballot *b,
                        const void *name,
                        size_t name_len,
                        uint64_t token,
                        const struct ballot_reqid *rid,
                        ballot_cb cb,
                        void *arg)
{
    struct embed_lock_args a = {
        .name = name, .name_len = name_len, .token = token};
    return lock_call(b, EMBED_LOCK_RELEASE, &a, rid, cb, arg);
}

int ballot_lock_owner(struct ballot *b,
                      const void *name,
                      size_t name_len,
                      int consistency,
                      ballot_cb cb,
                      void *arg)
{
    struct embed_lock_args a = {
        .name = name, .name_len = name_len, .consistency = consistency};
    return lock_call(b, EMBED_LOCK_OWNER, &a, NULL, cb, arg);
}

int ballot_put_fenced(struct ballot *b,
                      const void *key,
                      size_t key_len,
                      const void *value,
                      size_t value_len,
                      const void *name,
                      size_t name_len,
                      uint64_t token,
                      const struct ballot_reqid *rid,
                      ballot_cb cb,
                      void *arg)
{
    struct embed_lock_args a = {.name = name,
                                .name_len = name_len,
                                .token = token,
                                .key = key,
                                .key_len = key_len,
                                .value = value,
                                .value_len = value_len};
    return lock_call(b, EMBED_PUT_FENCED, &a, rid, cb, arg);
}

int ballot_campaign(struct ballot *b,
                    const void *name,
                    size_t name_len,
                    uint64_t lease,
                    const void *value,
                    size_t value_len,
                    uint64_t timeout_ms,
                    const struct ballot_reqid *rid,
                    ballot_cb cb,
                    void *arg)
{
    struct embed_lock_args a = {.name = name,
                                .name_len = name_len,
                                .election = true,
                                .lease = lease,
                                .timeout_ms = timeout_ms,
                                .value = value,
                                .value_len = value_len};
    return lock_call(b, EMBED_LOCK_ACQUIRE, &a, rid, cb, arg);
}

int ballot_proclaim(struct ballot *b,
                    const void *name,
                    size_t name_len,
                    uint64_t lease,
                    uint64_t token,
                    const void *value,
                    size_t value_len,
                    const struct ballot_reqid *rid,
                    ballot_cb cb,
                    void *arg)
{
    struct embed_lock_args a = {.name = name,
                                .name_len = name_len,
                                .election = true,
                                .lease = lease,
                                .token = token,
                                .value = value,
                                .value_len = value_len};
    return lock_call(b, EMBED_ELECT_PROCLAIM, &a, rid, cb, arg);
}

int ballot_resign(struct ballot *b,
                  const void *name,
                  size_t name_len,
                  uint64_t token,
                  const struct ballot_reqid *rid,
                  ballot_cb cb,
                  void *arg)
{
    struct embed_lock_args a = {
        .name = name, .name_len = name_len, .election = true, .token = token};
    return lock_call(b, EMBED_LOCK_RELEASE, &a, rid, cb, arg);
}

int ballot_leader(struct ballot *b,
                  const void *name,
                  size_t name_len,
                  int consistency,
                  ballot_cb cb,
                  void *arg)
{
    struct embed_lock_args a = {.name = name,
                                .name_len = name_len,
                                .election = true,
                                .consistency = consistency};
    return lock_call(b, EMBED_LOCK_OWNER, &a, NULL, cb, arg);
}
