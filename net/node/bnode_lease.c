/*
 * bnode_lease.c - the leader's side of leases: the lease clock, batched
 * keep-alives, expiry decisions and clock checkpoints
 * (docs/coordination.md, "Leases").
 *
 * The lease clock is a number of milliseconds kept in the store
 * (kv_lease_clock) and carried by every lease command. A leader that has
 * applied an entry of its own term has seen every value an earlier leader
 * committed; it reads the stored clock then (its base) and counts on with
 * its own monotonic clock:
 *
 *   clock(now) = base + (now - ready)
 *
 * Since the base is at most what the previous leader's clock read when it
 * proposed it, each leader's clock is at or behind its predecessors': a
 * deadline reached on a new leader's clock was reached on the old one's,
 * so no lease ends before a deadline a keep-alive promised. How far behind
 * is bounded by how stale the base is: the leader proposes its clock every
 * lease_checkpoint_ms while leases exist, so a new leader lags by at most
 * that interval plus the time to elect it.
 *
 * A keep-alive's reply is a promise, so it is given only once the new
 * deadline is in the log (a KV_CMD_LEASE_REFRESH entry): every later
 * leader sees it. The keep-alives of one tick share one entry, so the cost
 * is one replicated write per tick, whatever their rate.
 *
 * Redis expiry (keys with a wall-clock expire_at) rides on the same
 * machinery: each tick the leader reads the keys due by its wall clock
 * from kv's expiry index and proposes one KV_CMD_EXPIRE_KEYS entry for
 * them; reads on every node already skip them by their own clocks.
 *
 * Expiry: each tick the leader reads the leases whose deadline is at or
 * below its clock (an index ordered by deadline, so the read costs the
 * same with 100,000 leases as with one) and proposes one
 * KV_CMD_LEASE_EXPIRE entry for them, carrying its clock; applying it ends
 * only leases still due at that clock, so a keep-alive that got in first
 * wins, on every replica alike.
 */
#include <stdlib.h>
#include <string.h>

#include "bnode_internal.h"
#include "kv.h"
#include "nlog.h"

/* A keep-alive waiting for its batch. */
struct lease_ka
{
    uint64_t id;
    bnode_keepalive_cb cb;
    void *arg;
    struct lease_ka *next;
};

/* A batch of keep-alives in one refresh entry. */
struct ka_batch
{
    struct bnode *node;
    uint64_t clock; /* the lease clock the entry carries */
    uint64_t at_ms; /* uv_now when it was proposed */
    struct lease_ka *head;
    uint32_t n;
};

static uint64_t now_ms(struct bnode *node)
{
    return uv_now(node->loop);
}

static uint64_t checkpoint_ms(const struct bnode *node)
{
    return node->opts.lease_checkpoint_ms != 0
               ? node->opts.lease_checkpoint_ms
               : BNODE_LEASE_CHECKPOINT_MS_DEFAULT;
}

static void fail_list(struct lease_ka *ka, int status)
{
    while (ka != NULL) {
        struct lease_ka *next = ka->next;
        ka->cb(ka->arg, status, 0);
        free(ka);
        ka = next;
    }
}

/* Forgets what this node knew as leader; waiting keep-alives fail. */
static void lease_unready(struct bnode *node, int status)
{
    node->lease_ready = false;
    struct lease_ka *ka = node->ka_head;
    node->ka_head = node->ka_tail = NULL;
    node->n_ka = 0;
    fail_list(ka, status);
}

/* Whether this node is the leader and has applied an entry of its term:
 * only then has it seen every clock value an earlier leader committed. */
static bool lease_check_ready(struct bnode *node)
{
    if (node->halted || node->stopping ||
        raft_state_of(node->raft) != RAFT_LEADER) {
        if (node->lease_ready || node->ka_head != NULL) {
            lease_unready(node, BNODE_ENOTLEADER);
        }
        return false;
    }
    raft_term term = raft_current_term(node->raft);
    if (node->lease_ready && node->lease_term == term) {
        return true;
    }
    node->lease_ready = false;
    raft_index applied = raft_applied_index(node->raft);
    if (applied == 0 || raft_term_at(node->raft, applied) != term) {
        return false;
    }
    uint64_t base = 0;
    if (kv_lease_clock(node->kv, &base, NULL) != 0) {
        return false;
    }
    node->lease_ready = true;
    node->lease_term = term;
    node->lease_base = base;
    node->lease_ready_ms = now_ms(node);
    node->lease_clock_sent_ms = node->lease_ready_ms;
    nlog(node, BNODE_LOG_INFO, "lease clock starts at %llu ms in term %llu",
         (unsigned long long)base, (unsigned long long)term);
    return true;
}

int bnode_lease_clock(struct bnode *node, uint64_t *clock_ms)
{
    if (node->stopping || node->halted) {
        return BNODE_ESTOPPED;
    }
    if (raft_state_of(node->raft) != RAFT_LEADER) {
        return BNODE_ENOTLEADER;
    }
    if (!lease_check_ready(node)) {
        return BNODE_ELEASENOTREADY;
    }
    *clock_ms = node->lease_base + (now_ms(node) - node->lease_ready_ms);
    return 0;
}

int bnode_lease_keepalive(struct bnode *node,
                          uint64_t id,
                          bnode_keepalive_cb cb,
                          void *arg)
{
    uint64_t clock;
    int rv = bnode_lease_clock(node, &clock);
    if (rv != 0) {
        return rv;
    }
    if (id == 0) {
        return BNODE_EINVAL;
    }
    if (node->n_ka >= BNODE_KEEPALIVES_MAX) {
        return BNODE_EBUSY;
    }
    struct lease_ka *ka = calloc(1, sizeof(*ka));
    if (ka == NULL) {
        return BNODE_ENOMEM;
    }
    ka->id = id;
    ka->cb = cb;
    ka->arg = arg;
    if (node->ka_tail != NULL) {
        node->ka_tail->next = ka;
    } else {
        node->ka_head = ka;
    }
    node->ka_tail = ka;
    node->n_ka++;
    return 0;
}

static void batch_done(void *arg, int status, const struct kv_entry_result *res)
{
    struct ka_batch *b = arg;
    struct bnode *node = b->node;
    if (status == 0 && res->code != 0) {
        status = BNODE_EUNKNOWN; /* a refresh is never refused */
    }
    if (status != 0) {
        fail_list(b->head, status);
        free(b);
        return;
    }
    /* The clock now, as this batch's proposer counts it (also if this
     * node has lost leadership since: the promise is about its clock). */
    uint64_t clock = b->clock + (now_ms(node) - b->at_ms);
    uint32_t i = 0;
    struct lease_ka *ka = b->head;
    while (ka != NULL) {
        struct lease_ka *next = ka->next;
        uint64_t deadline = i < res->n_ops ? res->ops[i].count : 0;
        if (deadline == 0) {
            ka->cb(ka->arg, BNODE_ENOLEASE, 0);
        } else {
            ka->cb(ka->arg, 0, deadline > clock ? deadline - clock : 0);
        }
        free(ka);
        ka = next;
        i++;
    }
    free(b);
}

/* Proposes the waiting keep-alives, KV_LEASE_BATCH_MAX per entry. */
static void flush_keepalives(struct bnode *node, uint64_t clock)
{
    while (node->ka_head != NULL) {
        uint32_t want =
            node->n_ka < KV_LEASE_BATCH_MAX ? node->n_ka : KV_LEASE_BATCH_MAX;
        uint64_t *ids = malloc(want * sizeof(*ids));
        struct ka_batch *b = calloc(1, sizeof(*b));
        if (b == NULL || ids == NULL) {
            free(ids);
            free(b);
            return; /* retried next tick */
        }
        b->node = node;
        b->clock = clock;
        b->at_ms = now_ms(node);
        struct lease_ka *last = NULL;
        struct lease_ka *ka = node->ka_head;
        while (ka != NULL && b->n < want) {
            ids[b->n++] = ka->id;
            last = ka;
            ka = ka->next;
        }
        struct kv_cmd cmd;
        memset(&cmd, 0, sizeof(cmd));
        cmd.type = KV_CMD_LEASE_REFRESH;
        cmd.clock = clock;
        cmd.lease_ids = ids;
        cmd.n_lease_ids = b->n;
        size_t size = kv_cmd_encoded_size(&cmd);
        uint8_t *buf = malloc(size);
        size_t len = 0;
        if (buf == NULL || kv_cmd_encode(&cmd, buf, size, &len) != 0) {
            free(buf);
            free(ids);
            free(b);
            return;
        }
        free(ids);
        /* Detach the batch from the queue before proposing. */
        b->head = node->ka_head;
        node->ka_head = last->next;
        if (node->ka_head == NULL) {
            node->ka_tail = NULL;
        }
        last->next = NULL;
        node->n_ka -= b->n;
        int rv = bnode_propose(node, buf, len, batch_done, b);
        free(buf);
        if (rv != 0) {
            fail_list(b->head, rv);
            free(b);
        }
    }
}

static void expire_done(void *arg, int status, const struct kv_entry_result *r)
{
    struct bnode *node = arg;
    (void)status;
    (void)r;
    node->lease_expire_proposed = false;
}

static void keys_done(void *arg, int status, const struct kv_entry_result *r)
{
    struct bnode *node = arg;
    (void)status;
    (void)r;
    node->keys_expire_proposed = false;
}

/* Proposes the deletion of the keys whose Redis expiry has passed. */
static void expire_keys(struct bnode *node)
{
    struct kv_range_result due;
    struct kv_op ops[KV_EXPIRE_KEYS_MAX];
    uint64_t now = kv_wall_ms();
    if (kv_expire_due(node->kv, now, KV_EXPIRE_KEYS_MAX, &due) != 0 ||
        due.n_kvs == 0) {
        kv_range_result_free(&due);
        return;
    }
    memset(ops, 0, sizeof(ops));
    for (size_t i = 0; i < due.n_kvs; i++) {
        ops[i].type = KV_OP_DELETE;
        ops[i].key = due.kvs[i].key;
        ops[i].key_len = due.kvs[i].key_len;
    }
    struct kv_cmd cmd;
    memset(&cmd, 0, sizeof(cmd));
    cmd.type = KV_CMD_EXPIRE_KEYS;
    cmd.clock = now;
    cmd.then_ops = ops;
    cmd.n_then = (uint32_t)due.n_kvs;
    size_t size = kv_cmd_encoded_size(&cmd);
    uint8_t *buf = size > 0 ? malloc(size) : NULL;
    size_t len = 0;
    if (buf != NULL && kv_cmd_encode(&cmd, buf, size, &len) == 0 &&
        bnode_propose(node, buf, len, keys_done, node) == 0) {
        node->keys_expire_proposed = true;
    }
    free(buf);
    kv_range_result_free(&due);
}

static void clock_done(void *arg, int status, const struct kv_entry_result *r)
{
    struct bnode *node = arg;
    (void)status;
    (void)r;
    node->lease_clock_proposed = false;
}

/* Proposes a lease command without ids (@ids NULL) or with @n of them. */
static int propose_lease(struct bnode *node,
                         uint8_t type,
                         uint64_t clock,
                         uint64_t *ids,
                         uint32_t n,
                         bnode_write_cb cb)
{
    struct kv_cmd cmd;
    memset(&cmd, 0, sizeof(cmd));
    cmd.type = type;
    cmd.clock = clock;
    cmd.lease_ids = ids;
    cmd.n_lease_ids = n;
    size_t size = kv_cmd_encoded_size(&cmd);
    uint8_t *buf = size > 0 ? malloc(size) : NULL;
    size_t len = 0;
    int rv = BNODE_ENOMEM;
    if (buf != NULL && kv_cmd_encode(&cmd, buf, size, &len) == 0) {
        rv = bnode_propose(node, buf, len, cb, node);
    }
    free(buf);
    return rv;
}

/* Leases one expiry entry ends at most: at one entry per tick, 100,000
 * leases a second. */
#define EXPIRE_PER_ENTRY 1000u

void bnode_lease_tick(struct bnode *node)
{
    uint64_t due[EXPIRE_PER_ENTRY];
    if (!lease_check_ready(node)) {
        return;
    }
    uint64_t now = now_ms(node);
    uint64_t clock = node->lease_base + (now - node->lease_ready_ms);
    flush_keepalives(node, clock);
    if (!node->keys_expire_proposed) {
        expire_keys(node);
    }
    if (!node->lease_expire_proposed) {
        size_t n = 0;
        if (kv_lease_due(node->kv, clock, due, EXPIRE_PER_ENTRY, &n) == 0 &&
            n > 0 &&
            propose_lease(node, KV_CMD_LEASE_EXPIRE, clock, due, (uint32_t)n,
                          expire_done) == 0) {
            node->lease_expire_proposed = true;
        }
    }
    if (!node->lease_clock_proposed &&
        now - node->lease_clock_sent_ms >= checkpoint_ms(node)) {
        uint64_t stored = 0, leases = 0;
        node->lease_clock_sent_ms = now;
        /* An idle store gets no entries: without leases the clock's lag
         * matters to no one. */
        if (kv_lease_clock(node->kv, &stored, &leases) == 0 && leases > 0 &&
            propose_lease(node, KV_CMD_LEASE_CLOCK, clock, NULL, 0,
                          clock_done) == 0) {
            node->lease_clock_proposed = true;
        }
    }
}

void bnode_lease_stop(struct bnode *node)
{
    lease_unready(node, BNODE_ESTOPPED);
}
