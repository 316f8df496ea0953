/*
 * fake_bnode.c - see fake_bnode.h.
 */
#include "fake_bnode.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

struct fake_done
{
    struct fake_done *next;
    bool write;
    bnode_write_cb wcb;
    bnode_read_cb rcb;
    bnode_export_cb ecb; /* an export, when set */
    struct bnode_export *exp;
    void *arg;
    int status;
    struct kv_apply_result res;
};

struct bnode
{
    uv_loop_t *loop;
    struct kv_store *kv;
    char export_dir[256];
    unsigned long exports_made;
    raft_index index;
    uv_timer_t timer;
    bool timer_on;
    struct fake_done *head;
    struct fake_done *tail;
    atomic_int mode;
    atomic_bool reorder;
    atomic_bool hold;
    atomic_ulong proposals;
    atomic_ulong reads;
    /* fake_bnode_interpose(): a command applied before the next proposal,
     * as one allocation of a size_t length followed by the bytes. */
    _Atomic(uint8_t *) interpose;
    bool stopping;
    void (*stop_cb)(void *arg);
    void *stop_arg;
    char leader[64];
};

const char *bnode_strerror(int code)
{
    switch (code) {
    case BNODE_ENOTLEADER:
        return "not the leader";
    case BNODE_EBUSY:
        return "busy";
    case BNODE_EDROPPED:
        return "dropped";
    case BNODE_EUNKNOWN:
        return "outcome unknown";
    case BNODE_ENOREAD:
        return "read not confirmed";
    case BNODE_ESTOPPED:
        return "stopped";
    default:
        return "error";
    }
}

void bnode_options_default(struct bnode_options *opts)
{
    memset(opts, 0, sizeof(*opts));
    opts->tick_ms = 10;
    opts->election_ticks = 30;
    opts->heartbeat_ticks = 3;
    opts->snapshot_every = 100000;
}

/* Delivers what is pending; callbacks queued meanwhile wait a tick. */
static void deliver(struct bnode *n)
{
    struct fake_done *list = n->head;
    n->head = n->tail = NULL;
    if (atomic_load(&n->reorder)) {
        struct fake_done *rev = NULL;
        while (list != NULL) {
            struct fake_done *next = list->next;
            list->next = rev;
            rev = list;
            list = next;
        }
        list = rev;
    }
    while (list != NULL) {
        struct fake_done *d = list;
        list = d->next;
        if (d->ecb != NULL) {
            d->ecb(d->arg, d->status, d->exp);
        } else if (d->write) {
            d->wcb(d->arg, d->status,
                   d->status == 0 ? &d->res.entries[0] : NULL);
            kv_apply_result_free(&d->res);
        } else {
            d->rcb(d->arg, d->status);
        }
        free(d);
    }
}

static void on_timer(uv_timer_t *t)
{
    struct bnode *n = t->data;
    if (atomic_load(&n->hold) && !n->stopping) {
        return;
    }
    deliver(n);
    if (n->head == NULL) {
        uv_timer_stop(&n->timer);
    }
}

static void enqueue(struct bnode *n, struct fake_done *d)
{
    if (n->tail != NULL) {
        n->tail->next = d;
    } else {
        n->head = d;
    }
    n->tail = d;
    uv_timer_start(&n->timer, on_timer, 1, 2);
}

int fake_bnode_create(uv_loop_t *loop, const char *dir, struct bnode **out)
{
    struct bnode *n = calloc(1, sizeof(*n));
    char err[256];
    if (n == NULL) {
        return BNODE_ENOMEM;
    }
    n->loop = loop;
    snprintf(n->export_dir, sizeof(n->export_dir), "%s/export", dir);
    if (kv_open(dir, NULL, &n->kv, err, sizeof(err)) != 0) {
        fprintf(stderr, "fake_bnode: %s\n", err);
        free(n);
        return BNODE_EINVAL;
    }
    struct kv_status st;
    kv_status(n->kv, &st);
    n->index = st.applied;
    uv_timer_init(loop, &n->timer);
    n->timer.data = n;
    snprintf(n->leader, sizeof(n->leader), "127.0.0.1:7391");
    *out = n;
    return 0;
}

int bnode_start(uv_loop_t *loop,
                const struct bnode_options *opts,
                struct bnode **out,
                char *errmsg,
                size_t errmsg_len)
{
    int rc = fake_bnode_create(loop, opts->data_dir, out);
    if (rc != 0 && errmsg != NULL) {
        snprintf(errmsg, errmsg_len, "fake node: cannot open %s",
                 opts->data_dir);
    }
    return rc;
}

void fake_bnode_set_mode(struct bnode *n, int mode)
{
    atomic_store(&n->mode, mode);
}

void fake_bnode_set_reorder(struct bnode *n, bool on)
{
    atomic_store(&n->reorder, on);
}

void fake_bnode_set_hold(struct bnode *n, bool on)
{
    atomic_store(&n->hold, on);
}

unsigned long fake_bnode_proposals(struct bnode *n)
{
    return atomic_load(&n->proposals);
}

unsigned long fake_bnode_reads(struct bnode *n)
{
    return atomic_load(&n->reads);
}

static int apply(struct bnode *n,
                 const uint8_t *cmd,
                 size_t len,
                 struct kv_apply_result *res)
{
    struct raft_entry e;
    memset(&e, 0, sizeof(e));
    e.term = 1;
    e.index = n->index + 1;
    e.type = RAFT_ENTRY_NORMAL;
    e.len = (uint32_t)len;
    e.data = cmd;
    int rc = kv_apply(n->kv, &e, 1, res);
    if (rc == 0) {
        n->index++;
    }
    return rc;
}

int fake_bnode_apply(struct bnode *n, const uint8_t *cmd, size_t len)
{
    struct kv_apply_result res;
    int rc = apply(n, cmd, len, &res);
    kv_apply_result_free(&res);
    return rc;
}

void fake_bnode_interpose(struct bnode *n, const uint8_t *cmd, size_t len)
{
    uint8_t *p = malloc(sizeof(size_t) + len);
    if (p == NULL) {
        abort();
    }
    memcpy(p, &len, sizeof(len));
    memcpy(p + sizeof(len), cmd, len);
    free(atomic_exchange(&n->interpose, p));
}

int bnode_propose(struct bnode *n,
                  const uint8_t *cmd,
                  size_t len,
                  bnode_write_cb cb,
                  void *arg)
{
    int mode = atomic_load(&n->mode);
    if (n->stopping) {
        return BNODE_ESTOPPED;
    }
    if (len > KV_CMD_BYTES_MAX) {
        return BNODE_ETOOBIG;
    }
    switch (mode) {
    case FAKE_NOTLEADER:
    case FAKE_NOLEADER:
        return BNODE_ENOTLEADER;
    case FAKE_BUSY:
        return BNODE_EBUSY;
    default:
        break;
    }
    struct fake_done *d = calloc(1, sizeof(*d));
    if (d == NULL) {
        return BNODE_ENOMEM;
    }
    atomic_fetch_add(&n->proposals, 1);
    d->write = true;
    d->wcb = cb;
    d->arg = arg;
    uint8_t *first = atomic_exchange(&n->interpose, NULL);
    if (first != NULL) {
        size_t first_len;
        memcpy(&first_len, first, sizeof(first_len));
        int rc = fake_bnode_apply(n, first + sizeof(first_len), first_len);
        free(first);
        if (rc != 0) {
            abort();
        }
    }
    if (mode == FAKE_DROPPED) {
        d->status = BNODE_EDROPPED;
    } else {
        int rc = apply(n, cmd, len, &d->res);
        if (rc != 0) {
            kv_apply_result_free(&d->res);
            d->status = BNODE_ESTORAGE;
        } else if (mode == FAKE_UNKNOWN) {
            kv_apply_result_free(&d->res);
            d->status = BNODE_EUNKNOWN;
        }
    }
    enqueue(n, d);
    return 0;
}

int bnode_read(struct bnode *n, bool linearizable, bnode_read_cb cb, void *arg)
{
    if (n->stopping) {
        return BNODE_ESTOPPED;
    }
    struct fake_done *d = calloc(1, sizeof(*d));
    if (d == NULL) {
        return BNODE_ENOMEM;
    }
    atomic_fetch_add(&n->reads, 1);
    d->rcb = cb;
    d->arg = arg;
    if (linearizable && atomic_load(&n->mode) == FAKE_NOREAD) {
        d->status = BNODE_ENOREAD;
    }
    enqueue(n, d);
    return 0;
}

unsigned bnode_breaks(const struct bnode *n)
{
    (void)n;
    return 0; /* the fake node has no deliberate bugs */
}

struct kv_store *bnode_kv(struct bnode *n)
{
    return n->kv;
}

void bnode_status(struct bnode *n, struct bnode_status *out)
{
    struct kv_status st;
    int mode = atomic_load(&n->mode);
    memset(out, 0, sizeof(*out));
    kv_status(n->kv, &st);
    out->id = 1;
    bool leader = mode != FAKE_NOTLEADER && mode != FAKE_NOLEADER;
    out->leader = leader ? 1 : mode == FAKE_NOTLEADER ? 2 : 0;
    out->state = leader ? RAFT_LEADER : RAFT_FOLLOWER;
    out->term = 1;
    out->commit = n->index;
    out->applied = st.applied;
    out->last_index = n->index;
    out->first_index = 1;
    out->revision = st.revision;
    out->db_bytes = st.db_bytes;
    out->keys = st.keys;
    out->conf.n = 1;
    out->conf.members[0].id = 1;
    out->conf.members[0].role = RAFT_VOTER;
    out->match[0] = leader ? n->index : 0;
}

const char *bnode_leader_addr(struct bnode *n)
{
    int mode = atomic_load(&n->mode);
    if (mode == FAKE_NOLEADER) {
        return NULL;
    }
    return n->leader;
}

int bnode_transfer(struct bnode *n, raft_id target)
{
    (void)n;
    return target == 2 ? 0 : BNODE_EINVAL;
}

/* The fake node knows no member addresses and refuses membership changes
 * with the code a real follower would give, so the command's error path is
 * what the server tests see. */
const struct bnode_member *bnode_member_addr(struct bnode *n, raft_id id)
{
    (void)n;
    (void)id;
    return NULL;
}

int bnode_member_add(struct bnode *n,
                     enum raft_conf_change change,
                     const struct bnode_member *m,
                     bnode_write_cb cb,
                     void *arg)
{
    return bnode_conf_change(n, change, m->id, cb, arg);
}

int bnode_conf_change(struct bnode *n,
                      enum raft_conf_change change,
                      raft_id id,
                      bnode_write_cb cb,
                      void *arg)
{
    (void)n;
    (void)change;
    (void)id;
    (void)cb;
    (void)arg;
    return BNODE_EINVAL;
}

/* Writes the copy at once, on the loop (a test's store is small), and
 * answers from the timer like everything else. */
int bnode_export_start(struct bnode *n, bnode_export_cb cb, void *arg)
{
    if (n->stopping) {
        return BNODE_ESTOPPED;
    }
    struct fake_done *d = calloc(1, sizeof(*d));
    struct bnode_export *exp = calloc(1, sizeof(*exp));
    if (d == NULL || exp == NULL) {
        free(d);
        free(exp);
        return BNODE_ENOMEM;
    }
    mkdir(n->export_dir, 0755);
    snprintf(exp->path, sizeof(exp->path), "%s/%lu.snap", n->export_dir,
             ++n->exports_made);
    exp->term = 1;
    d->ecb = cb;
    d->arg = arg;
    if (kv_snapshot_create(n->kv, exp->path, &exp->snap) != 0) {
        free(exp);
        d->status = BNODE_ESTORAGE;
    } else {
        d->exp = exp;
    }
    enqueue(n, d);
    return 0;
}

void bnode_export_release(struct bnode_export *exp)
{
    if (exp != NULL) {
        kv_snapshot_close(exp->snap);
        unlink(exp->path);
        free(exp);
    }
}

static void on_stopped(uv_handle_t *h)
{
    struct bnode *n = h->data;
    void (*cb)(void *) = n->stop_cb;
    void *arg = n->stop_arg;
    kv_close(n->kv);
    free(atomic_exchange(&n->interpose, NULL));
    free(n);
    if (cb != NULL) {
        cb(arg);
    }
}

void bnode_stop(struct bnode *n, void (*cb)(void *arg), void *arg)
{
    n->stopping = true;
    n->stop_cb = cb;
    n->stop_arg = arg;
    /* Pending work is answered with what is known of it. */
    while (n->head != NULL) {
        deliver(n);
    }
    uv_close((uv_handle_t *)&n->timer, on_stopped);
}

/* Watches are the real node's (bnode_watch.c), tested against real
 * nodes (tests/cluster, tests/embed); this fake has none, and says so the
 * way a stopping node does. */
int bnode_watch_start(struct bnode *n,
                      const uint8_t *key,
                      size_t key_len,
                      const uint8_t *end,
                      size_t end_len,
                      bool prefix,
                      uint64_t from_revision,
                      bnode_watch_cb cb,
                      void *arg,
                      struct bnode_watch **out)
{
    (void)n;
    (void)key;
    (void)key_len;
    (void)end;
    (void)end_len;
    (void)prefix;
    (void)from_revision;
    (void)cb;
    (void)arg;
    (void)out;
    return BNODE_ESTOPPED;
}

void bnode_watch_cancel(struct bnode_watch *w)
{
    (void)w;
}

/* Lock waits are the real node's (bnode_lock.c), tested against real
 * nodes (tests/cluster/test_lock.c); like watches, this fake has none. */
int bnode_lock_wait(struct bnode *n,
                    const uint8_t *prefix,
                    size_t prefix_len,
                    const uint8_t *key,
                    size_t key_len,
                    uint64_t token,
                    uint64_t timeout_ms,
                    bnode_lock_cb cb,
                    void *arg,
                    struct bnode_lock_wait **out)
{
    (void)n;
    (void)prefix;
    (void)prefix_len;
    (void)key;
    (void)key_len;
    (void)token;
    (void)timeout_ms;
    (void)cb;
    (void)arg;
    (void)out;
    return BNODE_ESTOPPED;
}

void bnode_lock_wait_cancel(struct bnode_lock_wait *w)
{
    (void)w;
}

/* Snowflake IDs are the real node's (tests/node/test_snowflake.c). */
int bnode_snowflake(struct bnode *n,
                    uint64_t *out,
                    size_t count,
                    uint64_t *behind_ms)
{
    (void)n;
    (void)out;
    (void)count;
    (void)behind_ms;
    return BNODE_EINVAL;
}

/* Leases: the fake node is always a ready leader whose lease clock is its
 * loop's; a keep-alive is one refresh entry of its own. */
int bnode_lease_clock(struct bnode *n, uint64_t *clock_ms)
{
    int mode = atomic_load(&n->mode);
    if (n->stopping) {
        return BNODE_ESTOPPED;
    }
    if (mode == FAKE_NOTLEADER || mode == FAKE_NOLEADER) {
        return BNODE_ENOTLEADER;
    }
    *clock_ms = uv_now(n->loop);
    return 0;
}

struct fake_ka
{
    struct bnode *n;
    bnode_keepalive_cb cb;
    void *arg;
};

static void fake_ka_done(void *arg, int status, const struct kv_entry_result *r)
{
    struct fake_ka ka = *(struct fake_ka *)arg;
    free(arg);
    if (status != 0) {
        ka.cb(ka.arg, status, 0);
        return;
    }
    uint64_t deadline = r->n_ops > 0 ? r->ops[0].count : 0;
    uint64_t now = uv_now(ka.n->loop);
    if (deadline == 0) {
        ka.cb(ka.arg, BNODE_ENOLEASE, 0);
    } else {
        ka.cb(ka.arg, 0, deadline > now ? deadline - now : 0);
    }
}

int bnode_lease_keepalive(struct bnode *n,
                          uint64_t id,
                          bnode_keepalive_cb cb,
                          void *arg)
{
    uint64_t clock = 0;
    int rv = bnode_lease_clock(n, &clock);
    if (rv != 0) {
        return rv;
    }
    struct kv_cmd cmd;
    uint8_t buf[64];
    size_t len = 0;
    memset(&cmd, 0, sizeof(cmd));
    cmd.type = KV_CMD_LEASE_REFRESH;
    cmd.clock = clock;
    cmd.lease_ids = &id;
    cmd.n_lease_ids = 1;
    if (kv_cmd_encode(&cmd, buf, sizeof(buf), &len) != 0) {
        return BNODE_EINVAL;
    }
    struct fake_ka *ka = malloc(sizeof(*ka));
    if (ka == NULL) {
        return BNODE_ENOMEM;
    }
    ka->n = n;
    ka->cb = cb;
    ka->arg = arg;
    rv = bnode_propose(n, buf, len, fake_ka_done, ka);
    if (rv != 0) {
        free(ka);
    }
    return rv;
}

/* The fake node is a lone leader of a Raft cluster: never in the
 * primary-replica mode, and entering it is refused as the real node
 * refuses a lone member (nothing to fall back from). */
int bnode_fallback_enter(struct bnode *n,
                         bool force,
                         struct bnode_fallback_report *out)
{
    (void)n;
    (void)force;
    memset(out, 0, sizeof(*out));
    out->voters_reachable = 1;
    out->quorum = 1;
    return BNODE_EQUORUM;
}

bool bnode_fallback_mode(struct bnode *n, raft_id *primary, raft_term *epoch)
{
    (void)n;
    (void)primary;
    (void)epoch;
    return false;
}

int bnode_fallback_promote(struct bnode *n,
                           bool force,
                           struct bnode_fallback_report *out)
{
    (void)n;
    (void)force;
    memset(out, 0, sizeof(*out));
    return BNODE_EMODE;
}

int bnode_fallback_exit(struct bnode *n,
                        struct bnode_fallback_exit_report *out,
                        bnode_fallback_exit_cb cb,
                        void *arg)
{
    (void)n;
    (void)cb;
    (void)arg;
    memset(out, 0, sizeof(*out));
    return BNODE_EMODE;
}

/* WAIT on the fake lone leader: no other member ever holds anything, so
 * the answer (0) comes on the next tick, like a read barrier's. */
struct fake_wait
{
    bnode_wait_cb cb;
    void *arg;
};

static void fake_wait_done(void *arg, int status)
{
    struct fake_wait w = *(struct fake_wait *)arg;
    free(arg);
    w.cb(w.arg, status, 0);
}

int bnode_wait_replicas(struct bnode *n,
                        unsigned count,
                        uint64_t timeout_ms,
                        bnode_wait_cb cb,
                        void *arg)
{
    (void)count;
    (void)timeout_ms;
    int mode = atomic_load(&n->mode);
    if (mode == FAKE_NOTLEADER || mode == FAKE_NOLEADER) {
        return BNODE_ENOTLEADER;
    }
    struct fake_wait *w = malloc(sizeof(*w));
    if (w == NULL) {
        return BNODE_ENOMEM;
    }
    w->cb = cb;
    w->arg = arg;
    int rv = bnode_read(n, false, fake_wait_done, w);
    if (rv != 0) {
        free(w);
    }
    return rv;
}
