/*
 * commands_view.c - the string commands, MULTI/EXEC and WATCH, all run on
 * a "view": an in-memory overlay of the keys a command reads and writes.
 *
 * How a read-modify-write stays atomic without locks (docs/protocol.md,
 * "Atomicity"): the handlers run against the view; a key they read that is
 * not loaded yet is recorded and reads as missing. The runner then takes a
 * read barrier, loads every recorded key with its mod_revision (all in one
 * callback, so from one state of the store), and runs the handlers again
 * from scratch. When the handlers ask for nothing new, the writes they left
 * in the overlay become ONE kv transaction:
 *
 *     if mod_revision(k) == loaded for every key read
 *     then put/delete the final value of every key written
 *
 * If a comparison fails, some key changed between the read and the commit:
 * nothing was applied, so the runner reloads and tries again, at most
 * VIEW_ATTEMPTS_MAX times. The reply built by the attempt that committed is
 * the one sent, and it is exactly what the state at commit time implies.
 *
 * Read-modify-writes on this node that touch a common key run one after
 * the other (a FIFO per node, taken before the first load): if they all
 * loaded the same state, only one of them could commit per Raft round and
 * the others would exhaust their attempts under a few dozen concurrent
 * INCRs of one key. The comparison still guards against writes from
 * elsewhere (blind writes, another leader).
 *
 * Loads for a command that may write use this node's own state (a stale
 * read is caught by the comparison); if the command ends up writing
 * nothing, its answer rests on those reads alone, so they are redone
 * behind a linearizable barrier first. Pure reads take a linearizable
 * barrier from the start, or a stale one on a READONLY connection.
 */
#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "acl.h"
#include "bnode.h"
#include "cmd_view.h"
#include "commands.h"
#include "kv.h"

/* Attempts of one command or EXEC before giving up under contention. */
#define VIEW_ATTEMPTS_MAX 32u

/* One running view command or EXEC. */
struct vrun
{
    struct cmd_req *r;
    struct cmd_view view;
    struct cmd_queued *cmds; /* owned: each argv is one allocation */
    size_t n_cmds;
    bool exec;      /* reply is an array of the commands' replies */
    bool may_write; /* some command has CMD_WRITE */
    bool lin;       /* loads need a linearizable barrier */
    bool loads_lin; /* the current loads came from such a barrier */
    unsigned attempts;
    uint8_t *enc;
    /* BREQ: the request id every proposal of this run carries (0: none). */
    uint64_t req_client;
    uint64_t req_seq;
    /* The per-node key FIFO: in env->view_running while it holds its keys,
     * in env->view_waiting while it waits for them. */
    bool running;
    bool waiting;
    struct vrun *lk_prev;
    struct vrun *lk_next;
};

/* ---------------------------------------------------------------------- */
/* The runner                                                              */

static void vrun_step(struct vrun *run);
static void vrun_read(struct vrun *run);
static void keys_release(struct vrun *run);

static void vrun_free(struct vrun *run)
{
    keys_release(run);
    for (size_t i = 0; i < run->n_cmds; i++) {
        free((void *)run->cmds[i].argv);
    }
    free(run->cmds);
    cmd_view_free(&run->view);
    free(run->enc);
    free(run);
}

/* Starts the reply of this attempt afresh. */
static void reply_reset(struct cmd_req *r)
{
    struct resp_buf *b = &r->reply;
    int proto = b->proto;
    size_t limit = b->limit;
    struct resp_allocator alloc = b->alloc; /* the server's accounting */
    resp_buf_close(b);
    int rc = resp_buf_init(b, limit, proto, &alloc);
    assert(rc == 0);
    (void)rc;
    r->reply_err = 0;
}

static void vrun_fail(struct vrun *run, const char *msg)
{
    reply_reset(run->r);
    rep_error(run->r, msg);
    struct cmd_req *r = run->r;
    vrun_free(run);
    cmd_req_finish(r);
}

static void vrun_node_error(struct vrun *run, int code, bool write)
{
    reply_reset(run->r);
    rep_node_error(run->r, code, write);
    struct cmd_req *r = run->r;
    vrun_free(run);
    cmd_req_finish(r);
}

static void vrun_done(struct vrun *run)
{
    struct cmd_req *r = run->r;
    vrun_free(run);
    cmd_req_finish(r);
}

static void vrun_unload(struct vrun *run)
{
    for (size_t i = 0; i < run->view.n; i++) {
        struct view_key *e = &run->view.keys[i];
        e->loaded = false;
        free(e->val0);
        e->val0 = NULL;
    }
}

/* kv_get_many()'s callback: key @i of the view @arg as the store holds it
 * (@p NULL: absent). */
static int vrun_load_key(void *arg, size_t i, const struct kv_kv *p)
{
    struct view_key *e = &((struct cmd_view *)arg)->keys[i];
    free(e->val0);
    e->val0 = NULL;
    if (p != NULL) {
        e->val0 = malloc(p->value_len ? p->value_len : 1);
        if (e->val0 == NULL) {
            return KV_ENOMEM;
        }
        if (p->value_len > 0) {
            memcpy(e->val0, p->value, p->value_len);
        }
        e->len0 = p->value_len;
        e->exists0 = true;
        e->create0 = p->create_revision;
        e->mod0 = p->mod_revision;
        e->ver0 = p->version;
        e->expire0 = p->expire_at;
        e->hash0 = p->type == KV_TYPE_HASH;
    } else {
        e->exists0 = false;
        e->hash0 = false;
        e->len0 = 0;
        e->create0 = e->mod0 = e->ver0 = 0;
    }
    e->loaded = true;
    return 0;
}

static void vrun_on_read(void *arg, int status)
{
    struct vrun *run = arg;
    if (status != 0) {
        vrun_node_error(run, status, false);
        return;
    }
    if (run->r->client->gone && !run->may_write) {
        /* Nobody will read the reply: do not copy values into it. A client
         * that pipelined many reads of big values and then stopped reading
         * would otherwise keep the loop busy long enough to cost this node
         * its leadership. */
        vrun_done(run);
        return;
    }
    /* Reload every key, not only the new ones, so that all values come
     * from one state of the store: one read transaction for all of them
     * (a transaction per key made a big MGET hold the loop for seconds). */
    struct kv_store *kv = bnode_kv(run->r->client->env->node);
    size_t n = run->view.n;
    const uint8_t *keys_few[16];
    uint32_t lens_few[16];
    bool few = n <= sizeof(lens_few) / sizeof(lens_few[0]);
    const uint8_t **keys = few ? keys_few : malloc(n * sizeof(*keys));
    uint32_t *lens = few ? lens_few : malloc(n * sizeof(*lens));
    int rc = keys != NULL && lens != NULL ? 0 : KV_ENOMEM;
    for (size_t i = 0; i < n && rc == 0; i++) {
        keys[i] = run->view.keys[i].key;
        lens[i] = run->view.keys[i].key_len;
    }
    if (rc == 0) {
        rc = kv_get_many(kv, n, keys, lens, vrun_load_key, &run->view);
    }
    if (!few) {
        free(keys);
        free(lens);
    }
    if (rc == KV_ENOMEM) {
        vrun_fail(run, "ERR out of memory");
        return;
    }
    if (rc != 0) {
        char msg[128];
        snprintf(msg, sizeof(msg), "ERR store read failed: %s",
                 kv_strerror(rc));
        vrun_fail(run, msg);
        return;
    }
    for (size_t i = 0; i < n; i++) {
        const struct view_key *e = &run->view.keys[i];
        if (e->watched && e->mod0 != e->watch_rev) {
            /* A watched key changed since WATCH: EXEC does not run. */
            reply_reset(run->r);
            rep_null_array(run->r);
            vrun_done(run);
            return;
        }
    }
    run->loads_lin = run->lin;
    vrun_step(run);
}

static void vrun_on_write(void *arg,
                          int status,
                          const struct kv_entry_result *res)
{
    struct vrun *run = arg;
    if (status != 0) {
        vrun_node_error(run, status, true);
        return;
    }
    if (res->code == KV_ENOPERM) {
        vrun_fail(run,
                  "NOPERM the user may no longer run this command or "
                  "touch its keys (the users changed before it "
                  "applied): not applied");
        return;
    }
    if (res->code == KV_EFENCED) {
        vrun_fail(run, CMD_FENCED_REPLY);
        return;
    }
    if (res->code != 0) {
        char msg[128];
        snprintf(msg, sizeof(msg),
                 "ERR the state machine refused the command: %s",
                 kv_strerror(res->code));
        vrun_fail(run, msg);
        return;
    }
    if (res->duplicate || res->superseded) {
        /* This request id was applied before (a retry), or a later one
         * was: nothing ran now. */
        reply_reset(run->r);
        rep_session_outcome(run->r, res, run->req_client, run->req_seq);
        vrun_done(run);
        return;
    }
    if (res->succeeded) {
        vrun_done(run);
        return;
    }
    /* A key read by this attempt changed before the commit; nothing was
     * applied. The entry that beat us is applied by now, so a reload sees
     * it. Reload every key of the view before running the handlers again,
     * not only those the handlers read: a watched key that only a blind
     * write touches is read by no handler, and it is its reload that
     * answers EXEC with the null array when it was the one that changed. */
    if (++run->attempts >= VIEW_ATTEMPTS_MAX) {
        vrun_fail(run,
                  "BUSY too much contention on these keys: retried "
                  "and not applied");
        return;
    }
    vrun_unload(run);
    vrun_read(run);
}

/* ---------------------------------------------------------------------- */
/* The per-node key FIFO of read-modify-writes                             */

static void list_remove(struct vrun **head, struct vrun *run)
{
    if (run->lk_prev != NULL) {
        run->lk_prev->lk_next = run->lk_next;
    } else {
        *head = run->lk_next;
    }
    if (run->lk_next != NULL) {
        run->lk_next->lk_prev = run->lk_prev;
    }
    run->lk_prev = run->lk_next = NULL;
}

static void list_push_front(struct vrun **head, struct vrun *run)
{
    run->lk_prev = NULL;
    run->lk_next = *head;
    if (*head != NULL) {
        (*head)->lk_prev = run;
    }
    *head = run;
}

static void list_push_back(struct vrun **head, struct vrun *run)
{
    struct vrun *last = *head;
    if (last == NULL) {
        list_push_front(head, run);
        return;
    }
    while (last->lk_next != NULL) {
        last = last->lk_next;
    }
    last->lk_next = run;
    run->lk_prev = last;
    run->lk_next = NULL;
}

/* True if a running read-modify-write holds a key of @run's view. */
static bool keys_busy(struct cmd_env *env, struct vrun *run)
{
    for (struct vrun *o = env->view_running; o != NULL; o = o->lk_next) {
        for (size_t i = 0; i < run->view.n; i++) {
            const struct view_key *e = &run->view.keys[i];
            if (cmd_view_find(&o->view, (const char *)e->key, e->key_len,
                              false) != NULL) {
                return true;
            }
        }
    }
    return false;
}

/* Takes the keys of @run's view if no running command holds one (then
 * true), else queues @run to be started by vrun_read() later. */
static bool keys_acquire(struct vrun *run)
{
    struct cmd_env *env = run->r->client->env;
    if (keys_busy(env, run)) {
        run->waiting = true;
        list_push_back(&env->view_waiting, run);
        return false;
    }
    run->running = true;
    list_push_front(&env->view_running, run);
    return true;
}

/* Lets go of @run's keys and starts the waiters that can run now, oldest
 * first. */
static void keys_release(struct vrun *run)
{
    struct cmd_env *env = run->r->client->env;
    if (run->waiting) {
        run->waiting = false;
        list_remove(&env->view_waiting, run);
    }
    if (!run->running) {
        return;
    }
    run->running = false;
    list_remove(&env->view_running, run);
    if (env->view_waking) {
        return; /* the loop below, further up the stack, goes on */
    }
    env->view_waking = true;
    bool started;
    do {
        started = false;
        for (struct vrun *w = env->view_waiting; w != NULL; w = w->lk_next) {
            if (!keys_busy(env, w)) {
                w->waiting = false;
                list_remove(&env->view_waiting, w);
                w->running = true;
                list_push_front(&env->view_running, w);
                vrun_read(w); /* may finish (and free) w at once */
                started = true;
                break;
            }
        }
    } while (started);
    env->view_waking = false;
}

static void vrun_read(struct vrun *run)
{
    struct cmd_env *env = run->r->client->env;
    int rc = bnode_read(env->node, run->lin, vrun_on_read, run);
    if (rc != 0) {
        vrun_node_error(run, rc, false);
    }
}

/* Turns the overlay into one kv command and proposes it. */
static void vrun_propose(struct vrun *run, size_t n_writes)
{
    struct cmd_view *v = &run->view;
    size_t n_cmps = 0;
    for (size_t i = 0; i < v->n; i++) {
        n_cmps += v->keys[i].loaded || v->keys[i].watched;
    }
    if (n_cmps > KV_TXN_CMPS_MAX) {
        char msg[128];
        snprintf(msg, sizeof(msg),
                 "ERR a write may read at most %u keys in ballot",
                 KV_TXN_CMPS_MAX);
        vrun_fail(run, msg);
        return;
    }
    if (n_writes > KV_TXN_OPS_MAX) {
        char msg[128];
        snprintf(msg, sizeof(msg),
                 "ERR a write may change at most %u keys in ballot",
                 KV_TXN_OPS_MAX);
        vrun_fail(run, msg);
        return;
    }
    struct kv_cmp cmps[KV_TXN_CMPS_MAX];
    struct kv_op ops[KV_TXN_OPS_MAX];
    size_t c = 0;
    size_t o = 0;
    for (size_t i = 0; i < v->n; i++) {
        struct view_key *e = &v->keys[i];
        if (e->loaded || e->watched) {
            /* A watched key is guarded by the revision WATCH saw, whether
             * or not this attempt loaded it: EXEC must never commit over a
             * change made since WATCH (a loaded watched key has that
             * revision, or EXEC would have been answered already). */
            memset(&cmps[c], 0, sizeof(cmps[c]));
            cmps[c].target = KV_CMP_MOD_REVISION;
            cmps[c].op = KV_CMP_EQ;
            cmps[c].key = e->key;
            cmps[c].key_len = e->key_len;
            cmps[c].number = e->watched   ? e->watch_rev
                             : e->exists0 ? e->mod0
                                          : 0;
            c++;
        }
        if (e->written) {
            memset(&ops[o], 0, sizeof(ops[o]));
            ops[o].type = e->exists ? KV_OP_PUT : KV_OP_DELETE;
            ops[o].key = e->key;
            ops[o].key_len = e->key_len;
            ops[o].value = e->val;
            ops[o].value_len = e->len;
            if (e->exists && e->ttl == VIEW_TTL_KEEP) {
                ops[o].flags = KV_FLAG_KEEP_TTL;
            } else if (e->exists && e->ttl == VIEW_TTL_SET) {
                ops[o].expire_at = e->expire_at;
            }
            o++;
        }
    }
    struct kv_cmd cmd;
    memset(&cmd, 0, sizeof(cmd));
    if (c == 0 && o == 1) {
        cmd.type = ops[0].type == KV_OP_PUT ? KV_CMD_PUT : KV_CMD_DELETE;
        cmd.op = ops[0];
    } else {
        cmd.type = KV_CMD_TXN;
        cmd.cmps = cmps;
        cmd.n_cmps = (uint32_t)c;
        cmd.then_ops = ops;
        cmd.n_then = (uint32_t)o;
    }
    if (run->req_client != 0) {
        /* The request id and the reply this attempt built travel with the
         * write: the state machine applies it at most once and keeps the
         * reply for a retry. A failed guard consumes nothing, so the
         * retried attempt below carries the same id. */
        if (run->r->reply_err != 0 ||
            run->r->reply.len > KV_SESSION_REPLY_MAX) {
            vrun_fail(run, "ERR the reply is too large for BREQ");
            return;
        }
        cmd.client_id = run->req_client;
        cmd.seq = run->req_seq;
        cmd.reply = (const uint8_t *)run->r->reply.data;
        cmd.reply_len = (uint32_t)run->r->reply.len;
    }
    acl_stamp(run->r, &cmd);
    cmd_fence_stamp(run->r, &cmd);
    size_t size = kv_cmd_encoded_size(&cmd);
    if (size == 0) {
        vrun_fail(run, "ERR the write exceeds ballot's command limits");
        return;
    }
    free(run->enc);
    run->enc = malloc(size);
    size_t len = 0;
    if (run->enc == NULL || kv_cmd_encode(&cmd, run->enc, size, &len) != 0) {
        vrun_fail(run, "ERR could not encode the write");
        return;
    }
    int rc = bnode_propose(run->r->client->env->node, run->enc, len,
                           vrun_on_write, run);
    if (rc != 0) {
        vrun_node_error(run, rc, true);
    }
}

static void vrun_step(struct vrun *run)
{
    struct cmd_req *r = run->r;
    struct cmd_view *v = &run->view;
    for (size_t i = 0; i < v->n; i++) {
        cmd_view_clear_overlay(&v->keys[i]);
    }
    v->missing = false;
    v->wrongtype = false;
    reply_reset(r);
    if (run->exec) {
        rep_array(r, run->n_cmds);
    }
    for (size_t i = 0; i < run->n_cmds; i++) {
        const struct cmd_queued *q = &run->cmds[i];
        q->def->view_fn(v, r, q->argc, q->argv, q->argvlen);
    }
    if (v->too_many) {
        char msg[160];
        snprintf(msg, sizeof(msg),
                 "ERR a request may read or write at most %u keys (ballot "
                 "answers it in one step): split it",
                 CMD_VIEW_KEYS_MAX);
        vrun_fail(run, msg);
        return;
    }
    if (v->oom) {
        vrun_fail(run, "ERR out of memory");
        return;
    }
    if (v->wrongtype && !v->missing) {
        /* A string command met a hash: Redis's error, nothing written.
         * (Inside EXEC the whole transaction answers it, not only the
         * command's slot: docs/protocol.md, "Hashes".) */
        reply_reset(r);
        rep_error(r, kv_strerror(KV_EWRONGTYPE));
        vrun_done(run);
        return;
    }
    if (v->missing) {
        if (run->may_write && !run->running && !keys_acquire(run)) {
            return; /* keys_release() of the holder starts it */
        }
        vrun_read(run);
        return;
    }
    size_t n_writes = 0;
    for (size_t i = 0; i < v->n; i++) {
        n_writes += v->keys[i].written;
    }
    /* A BREQ write that decided not to write still goes through the log
     * (comparisons only): a retry of an applied request id must get the
     * original reply, and the reply of this one is then checked at
     * commit time, like any other write. */
    if (n_writes > 0 || (run->req_client != 0 && run->may_write)) {
        vrun_propose(run, n_writes);
        return;
    }
    bool loaded = false;
    for (size_t i = 0; i < v->n; i++) {
        loaded |= v->keys[i].loaded;
    }
    if (loaded && !run->loads_lin &&
        (run->may_write || !run->r->client->readonly)) {
        /* The answer rests on reads alone: they must be linearizable.
         * READONLY allows stale answers to reads only, never to a write
         * that decided not to write. */
        run->lin = true;
        vrun_unload(run);
        vrun_read(run);
        return;
    }
    vrun_done(run);
}

static struct vrun *vrun_new(struct cmd_req *r)
{
    struct vrun *run = calloc(1, sizeof(*run));
    if (run == NULL) {
        return NULL;
    }
    run->r = r;
    return run;
}

void cmd_view_start(struct cmd_req *r,
                    const struct cmd_def *def,
                    size_t argc,
                    const char *const *argv,
                    const size_t *argvlen)
{
    cmd_view_start_req(r, def, argc, argv, argvlen, 0, 0);
}

void cmd_view_start_req(struct cmd_req *r,
                        const struct cmd_def *def,
                        size_t argc,
                        const char *const *argv,
                        const size_t *argvlen,
                        uint64_t client_id,
                        uint64_t seq)
{
    struct vrun *run = vrun_new(r);
    if (run == NULL || (run->cmds = calloc(1, sizeof(*run->cmds))) == NULL ||
        cmd_queued_copy(&run->cmds[0], def, argc, argv, argvlen) != 0) {
        if (run != NULL) {
            free(run->cmds);
            free(run);
        }
        rep_error(r, "ERR out of memory");
        cmd_req_finish(r);
        return;
    }
    run->n_cmds = 1;
    run->req_client = client_id;
    run->req_seq = seq;
    run->may_write = (def->flags & CMD_WRITE) != 0;
    run->lin = !run->may_write && !r->client->readonly;
    vrun_step(run);
}

/* ---------------------------------------------------------------------- */
/* EXEC and WATCH                                                          */

void cmd_exec(struct cmd_req *r,
              size_t argc,
              const char *const *argv,
              const size_t *argvlen)
{
    (void)argc;
    (void)argv;
    (void)argvlen;
    cmd_exec_req(r, 0, 0);
}

void cmd_exec_req(struct cmd_req *r, uint64_t client_id, uint64_t seq)
{
    struct cmd_client *c = r->client;
    if (!c->in_multi) {
        rep_error(r, "ERR EXEC without MULTI");
        cmd_req_finish(r);
        return;
    }
    if (c->multi_dirty) {
        cmd_client_discard(c);
        cmd_client_unwatch(c);
        rep_error(r,
                  "EXECABORT Transaction discarded because of previous "
                  "errors.");
        cmd_req_finish(r);
        return;
    }
    struct vrun *run = vrun_new(r);
    if (run == NULL) {
        cmd_client_discard(c);
        cmd_client_unwatch(c);
        rep_error(r, "ERR out of memory");
        cmd_req_finish(r);
        return;
    }
    /* The queued commands move to the run, and the view of the watched
     * keys becomes the run's view (its keys are marked watched, with the
     * revision WATCH saw): no copy, whatever the number of keys. */
    run->exec = true;
    run->req_client = client_id;
    run->req_seq = seq;
    run->cmds = c->queued;
    run->n_cmds = c->n_queued;
    c->queued = NULL;
    c->n_queued = c->cap_queued = 0;
    cmd_client_discard(c);
    for (size_t i = 0; i < run->n_cmds; i++) {
        run->may_write |= (run->cmds[i].def->flags & CMD_WRITE) != 0;
    }
    if (c->watching != NULL) {
        run->view = *c->watching;
        memset(c->watching, 0, sizeof(*c->watching));
    }
    if (bnode_breaks(c->env->node) & BNODE_BREAK_WATCH_IGNORED) {
        /* The fault-injection suite's broken build (docs/jepsen.md): the
         * watched keys stay in the view, loaded and guarded at the
         * revision EXEC reads, not the one WATCH saw. */
        for (size_t i = 0; i < run->view.n; i++) {
            run->view.keys[i].watched = false;
        }
    }
    cmd_client_unwatch(c);
    if (run->view.oom) {
        vrun_fail(run, "ERR out of memory");
        return;
    }
    run->lin = !run->may_write && !c->readonly;
    if (run->view.n > 0) {
        /* Watched keys are loaded (and checked) before anything runs. */
        vrun_read(run);
        return;
    }
    vrun_step(run);
}

size_t cmd_client_watched(const struct cmd_client *c)
{
    size_t n = 0;
    for (size_t i = 0; c->watching != NULL && i < c->watching->n; i++) {
        n += c->watching->keys[i].watched;
    }
    return n;
}

void cmd_client_unwatch(struct cmd_client *c)
{
    if (c->watching != NULL) {
        cmd_view_free(c->watching);
        free(c->watching);
        c->watching = NULL;
    }
}

struct watch_run
{
    struct cmd_req *r;
    struct cmd_queued args;
};

/* kv_get_many()'s callback for WATCH: the @i-th new key's mod_revision. */
struct watch_load
{
    struct cmd_view *v;
    const size_t *idx;
};

static int watch_load_key(void *arg, size_t i, const struct kv_kv *p)
{
    struct watch_load *l = arg;
    l->v->keys[l->idx[i]].watch_rev = p != NULL ? p->mod_revision : 0;
    return 0;
}

/* Records every key of the WATCH in the connection's watch view, each
 * with its current mod_revision. One hashed lookup per key, so a WATCH of
 * n keys costs O(n) however many keys are watched already. */
static void watch_on_read(void *arg, int status)
{
    struct watch_run *w = arg;
    struct cmd_req *r = w->r;
    struct cmd_client *c = r->client;
    if (status != 0) {
        rep_node_error(r, status, false);
        goto done;
    }
    if (c->watching == NULL &&
        (c->watching = calloc(1, sizeof(*c->watching))) == NULL) {
        rep_error(r, "ERR out of memory");
        goto done;
    }
    struct cmd_view *v = c->watching;
    struct kv_store *kv = bnode_kv(c->env->node);
    /* The keys this WATCH adds, then their revisions in one read. */
    size_t n_new = 0;
    size_t *idx = malloc(w->args.argc * sizeof(*idx));
    const uint8_t **keys = malloc(w->args.argc * sizeof(*keys));
    uint32_t *lens = malloc(w->args.argc * sizeof(*lens));
    if (idx == NULL || keys == NULL || lens == NULL) {
        rep_error(r, "ERR out of memory");
        goto free_lists;
    }
    for (size_t i = 1; i < w->args.argc; i++) {
        const char *key = w->args.argv[i];
        size_t len = w->args.argvlen[i];
        if (len == 0 || len > KV_KEY_BYTES_MAX) {
            continue; /* such a key never exists, so it cannot change */
        }
        struct view_key *e = cmd_view_find(v, key, len, true);
        if (e == NULL && v->too_many) {
            v->too_many = false;
            rep_errorf(r,
                       "ERR a connection may watch at most %u keys: "
                       "UNWATCH, or split the transaction",
                       CMD_VIEW_KEYS_MAX);
            goto free_lists;
        }
        if (e == NULL) {
            rep_error(r, "ERR out of memory");
            goto free_lists;
        }
        if (e->watched) {
            continue; /* the first WATCH of a key counts */
        }
        e->watched = true;
        e->watch_rev = 0; /* absent, unless the read below finds it */
        idx[n_new] = (size_t)(e - v->keys);
        keys[n_new] = e->key;
        lens[n_new] = e->key_len;
        n_new++;
    }
    struct watch_load load = {v, idx};
    int rc = kv_get_many(kv, n_new, keys, lens, watch_load_key, &load);
    if (rc != 0) {
        rep_errorf(r, "ERR store read failed: %s", kv_strerror(rc));
        goto free_lists;
    }
    rep_ok(r);
free_lists:
    free(idx);
    free(keys);
    free(lens);
done:
    free((void *)w->args.argv);
    free(w);
    cmd_req_finish(r);
}

void cmd_watch(struct cmd_req *r,
               size_t argc,
               const char *const *argv,
               const size_t *argvlen)
{
    struct cmd_client *c = r->client;
    if (c->in_multi) {
        rep_error(r, "ERR WATCH inside MULTI is not allowed");
        cmd_req_finish(r);
        return;
    }
    struct watch_run *w = calloc(1, sizeof(*w));
    if (w == NULL ||
        cmd_queued_copy(&w->args, NULL, argc, argv, argvlen) != 0) {
        free(w);
        rep_error(r, "ERR out of memory");
        cmd_req_finish(r);
        return;
    }
    w->r = r;
    int rc = bnode_read(c->env->node, !c->readonly, watch_on_read, w);
    if (rc != 0) {
        free((void *)w->args.argv);
        free(w);
        rep_node_error(r, rc, false);
        cmd_req_finish(r);
    }
}
