/*
 * commands_lock.c - locks with server-enforced fencing over the client
 * protocol (docs/protocol.md, "Locks"; the guarantees are
 * docs/coordination.md's):
 *
 *   BLOCK ACQUIRE name lease [TIMEOUT ms] [TRY] -> token, or nil
 *   BLOCK RELEASE name token                    -> 1 (held) or 0 (waited)
 *   BLOCK OWNER name                            -> [token, lease, claims]
 *                                                  or nil
 *   BFENCE name token command [args...]         -> the command's reply, or
 *                                                  -FENCED
 *   BELECT CAMPAIGN name lease value [TIMEOUT ms] -> token, or nil
 *   BELECT PROCLAIM name token value            -> OK, or -FENCED
 *   BELECT RESIGN name token                    -> 1 (led) or 0 (waited)
 *   BELECT LEADER name                          -> [token, lease, value]
 *                                                  or nil
 *
 * A lock named N is the key prefix "_lock/N/" (kv_lock.c): ACQUIRE puts
 * the claim of the lease, in the log, and answers once the claim holds the
 * lock; until then the request waits on a watch of the prefix, on the node
 * it was sent to, and re-reads the holder after each change there. TRY
 * answers at once. A wait that times out (or whose connection goes away)
 * withdraws the claim before it answers nil. ACQUIRE and RELEASE work
 * inside BREQ; BFENCE wraps a write (or a BREQ of one), which every
 * replica then refuses at apply time unless the token is the holder's.
 *
 * An election named N is a lock on "_lead/N/" whose claims carry the
 * candidates' values: CAMPAIGN is ACQUIRE with a value, RESIGN is
 * RELEASE, LEADER reads the holder's value, PROCLAIM is a fenced put of
 * the leader's own claim, and observing is a BWATCH of the prefix.
 */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "acl.h"
#include "bnode.h"
#include "commands.h"
#include "kv.h"

/* Longest wait an ACQUIRE may ask for: a day. */
#define LOCK_TIMEOUT_MS_MAX (24ull * 3600 * 1000)
/* How often a waiting ACQUIRE checks that its connection is still there. */
#define LOCK_GONE_POLL_MS 100u

/* The fence a BFENCE request stamps on its writes. */
struct cmd_fence
{
    uint64_t token;
    uint32_t len;
    uint8_t key[KV_LOCK_PREFIX_MAX];
};

/* Whether the request is an election's (BELECT) rather than a lock's:
 * the same commands on another key prefix, with values. */
static bool is_election(const char *const *argv, const size_t *argvlen)
{
    return cmd_arg_is(argv[0], argvlen[0], "belect");
}

/* Writes the key prefix of lock (or election) @name into @buf
 * (KV_LOCK_PREFIX_MAX); replies and returns -1 if the name is empty or
 * too long. */
static int lock_prefix(struct cmd_req *r,
                       bool election,
                       const char *name,
                       size_t len,
                       uint8_t *buf,
                       uint32_t *out_len)
{
    if (kv_lock_prefix(election, name, len, buf, out_len) != 0) {
        rep_errorf(r, "ERR %s name must be 1 to %zu bytes",
                   election ? "election" : "lock", (size_t)KV_LOCK_NAME_MAX);
        return -1;
    }
    return 0;
}

/* Parses a positive 64-bit id (lease or token); replies if it is not. */
static int parse_pos(struct cmd_req *r,
                     const char *s,
                     size_t len,
                     const char *what,
                     uint64_t *out)
{
    int64_t v;
    if (cmd_parse_i64(s, len, &v) != 0 || v < 1) {
        rep_errorf(r, "ERR %s must be an integer from 1 to 2^63-1", what);
        return -1;
    }
    *out = (uint64_t)v;
    return 0;
}

/* Replies with a lock command's refusal by the state machine; false if
 * there was one. */
static bool lock_write_ok(struct cmd_req *r,
                          int status,
                          const struct kv_entry_result *res,
                          uint64_t client_id,
                          uint64_t seq)
{
    if (status == 0 && res->code == KV_ENOLEASE) {
        rep_error(r, "ERR no such lease");
        return false;
    }
    if (status == 0 && res->code == KV_ELOCKWAITERS) {
        rep_errorf(r, "ERR too many claims on the lock: at most %u",
                   KV_LOCK_WAITERS_MAX);
        return false;
    }
    if (status == 0 && res->code == KV_ELOCKNOTHELD) {
        rep_error(r, "ERR no holder or waiter of the lock has that token");
        return false;
    }
    if (!cmd_kept_result_ok(r, status, res, client_id, seq)) {
        return false;
    }
    if (res->n_ops != 1 || (res->ops[0].type != KV_OP_LOCK_ACQUIRE &&
                            res->ops[0].type != KV_OP_LOCK_RELEASE)) {
        rep_applied_by_another(r, res);
        return false;
    }
    return true;
}

/* ---------------------------------------------------------------------- */
/* Waiting for the lock                                                    */

/* A waiting ACQUIRE: the node's wait (bnode_lock_wait), and a timer that
 * notices the connection going away (its request stays pending until it
 * is answered, so nothing else would). */
struct lock_wait
{
    struct cmd_req *r;
    struct bnode_lock_wait *wait; /* NULL once answered */
    uv_timer_t timer;
    uint64_t token;
};

static void wait_closed(uv_handle_t *h)
{
    free(h->data);
}

static void wait_done(void *arg, int status)
{
    struct lock_wait *w = arg;
    struct cmd_req *r = w->r;
    w->wait = NULL;
    uv_timer_stop(&w->timer);
    uv_close((uv_handle_t *)&w->timer, wait_closed);
    if (status == 0) {
        rep_int(r, (int64_t)w->token);
    } else if (status == BNODE_ETIMEDOUT) {
        rep_null(r); /* the claim was withdrawn */
    } else if (status == BNODE_ELOCKLOST) {
        rep_error(r,
                  "ERR the claim ended while waiting for the lock (its lease "
                  "ended or its token was released)");
    } else {
        rep_node_error(r, status, true);
    }
    cmd_req_finish(r);
}

static void wait_on_timer(uv_timer_t *t)
{
    struct lock_wait *w = t->data;
    if (w->wait != NULL && (w->r->client->gone || w->r->client->hung_up)) {
        /* Nobody to answer: withdraw the claim, finish the request. */
        bnode_lock_wait_cancel(w->wait);
        w->wait = NULL;
        uv_timer_stop(&w->timer);
        uv_close((uv_handle_t *)&w->timer, wait_closed);
        rep_null(w->r);
        cmd_req_finish(w->r);
    }
}

/* Starts waiting for @claim (its token is its create revision). */
static void wait_start(struct cmd_req *r,
                       const uint8_t *prefix,
                       uint32_t prefix_len,
                       const struct kv_kv *claim,
                       uint64_t timeout_ms)
{
    struct cmd_env *env = r->client->env;
    struct lock_wait *w = calloc(1, sizeof(*w));
    if (w == NULL) {
        rep_error(r, "ERR out of memory");
        cmd_req_finish(r);
        return;
    }
    w->r = r;
    w->token = claim->create_revision;
    int rc = bnode_lock_wait(env->node, prefix, prefix_len, claim->key,
                             claim->key_len, w->token, timeout_ms, wait_done, w,
                             &w->wait);
    if (rc != 0) {
        free(w);
        rep_node_error(r, rc, true);
        cmd_req_finish(r);
        return;
    }
    uv_timer_init(env->loop, &w->timer);
    w->timer.data = w;
    uv_timer_start(&w->timer, wait_on_timer, LOCK_GONE_POLL_MS,
                   LOCK_GONE_POLL_MS);
}

/* ---------------------------------------------------------------------- */
/* ACQUIRE and RELEASE                                                     */

struct lock_req
{
    struct cmd_req *r;
    uint64_t client_id;
    uint64_t seq;
    uint64_t timeout_ms;
    uint32_t prefix_len;
    uint8_t prefix[KV_LOCK_PREFIX_MAX];
};

static void acquire_done(void *arg,
                         int status,
                         const struct kv_entry_result *res)
{
    struct lock_req *q = arg;
    struct cmd_req *r = q->r;
    if (!lock_write_ok(r, status, res, q->client_id, q->seq)) {
        cmd_req_finish(r);
    } else if (res->ops[0].n_kvs != 1) {
        rep_applied_by_another(r, res);
        cmd_req_finish(r);
    } else if (!res->succeeded) {
        rep_null(r); /* TRY, and another holds it */
        cmd_req_finish(r);
    } else if (res->ops[0].count == 1) {
        rep_int(r, (int64_t)res->ops[0].kvs[0].create_revision);
        cmd_req_finish(r);
    } else {
        wait_start(r, q->prefix, q->prefix_len, &res->ops[0].kvs[0],
                   q->timeout_ms);
    }
    free(q);
}

static void release_done(void *arg,
                         int status,
                         const struct kv_entry_result *res)
{
    struct lock_req *q = arg;
    if (lock_write_ok(q->r, status, res, q->client_id, q->seq)) {
        rep_int(q->r, (int64_t)res->ops[0].count);
    }
    cmd_req_finish(q->r);
    free(q);
}

static void lock_acquire(struct cmd_req *r,
                         size_t argc,
                         const char *const *argv,
                         const size_t *argvlen,
                         uint64_t client_id,
                         uint64_t seq)
{
    bool election = is_election(argv, argvlen);
    /* A campaign is an acquire whose claim carries the candidate's value
     * (and cannot TRY: a candidate waits its turn or gives up). */
    const char *usage =
        election ? "ERR syntax: BELECT CAMPAIGN name lease value [TIMEOUT ms]"
                 : "ERR syntax: BLOCK ACQUIRE name lease [TIMEOUT ms] [TRY]";
    size_t first_opt = election ? 5 : 4;
    struct lock_req *q = calloc(1, sizeof(*q));
    uint64_t lease = 0;
    bool try_only = false;
    if (q == NULL) {
        rep_error(r, "ERR out of memory");
        goto fail;
    }
    if (argc < first_opt) {
        rep_error(r, usage);
        goto fail;
    }
    if (lock_prefix(r, election, argv[2], argvlen[2], q->prefix,
                    &q->prefix_len) != 0 ||
        parse_pos(r, argv[3], argvlen[3], "lease id", &lease) != 0 ||
        (election && !cmd_check_value(r, argvlen[4]))) {
        goto fail;
    }
    for (size_t i = first_opt; i < argc; i++) {
        int64_t v;
        if (!election && cmd_arg_is(argv[i], argvlen[i], "try")) {
            try_only = true;
        } else if (cmd_arg_is(argv[i], argvlen[i], "timeout") && i + 1 < argc) {
            i++;
            if (cmd_parse_i64(argv[i], argvlen[i], &v) != 0 || v < 0 ||
                (uint64_t)v > LOCK_TIMEOUT_MS_MAX) {
                rep_errorf(r, "ERR TIMEOUT must be 0 (none) to %llu ms",
                           (unsigned long long)LOCK_TIMEOUT_MS_MAX);
                goto fail;
            }
            q->timeout_ms = (uint64_t)v;
        } else {
            rep_error(r, usage);
            goto fail;
        }
    }
    q->r = r;
    q->client_id = client_id;
    q->seq = seq;
    struct kv_cmd cmd;
    kv_lock_cmd_init(&cmd, KV_CMD_LOCK_ACQUIRE, q->prefix, q->prefix_len, lease,
                     try_only);
    if (election) {
        cmd.op.value = (const uint8_t *)argv[4];
        cmd.op.value_len = (uint32_t)argvlen[4];
    }
    /* Whether the claim holds is known at apply time only: the store
     * keeps the result, and a retry gets the same claim (and waits on it
     * if it still waits). */
    cmd.client_id = client_id;
    cmd.seq = seq;
    cmd.keep_result = client_id != 0;
    cmd_propose(r, &cmd, acquire_done, q);
    return;
fail:
    free(q);
    cmd_req_finish(r);
}

static void lock_release(struct cmd_req *r,
                         size_t argc,
                         const char *const *argv,
                         const size_t *argvlen,
                         uint64_t client_id,
                         uint64_t seq)
{
    struct lock_req *q = calloc(1, sizeof(*q));
    uint64_t token = 0;
    if (q == NULL) {
        rep_error(r, "ERR out of memory");
        goto fail;
    }
    bool election = is_election(argv, argvlen);
    if (argc != 4) {
        rep_error(r, election ? "ERR syntax: BELECT RESIGN name token"
                              : "ERR syntax: BLOCK RELEASE name token");
        goto fail;
    }
    if (lock_prefix(r, election, argv[2], argvlen[2], q->prefix,
                    &q->prefix_len) != 0 ||
        parse_pos(r, argv[3], argvlen[3], "token", &token) != 0) {
        goto fail;
    }
    q->r = r;
    q->client_id = client_id;
    q->seq = seq;
    struct kv_cmd cmd;
    kv_lock_cmd_init(&cmd, KV_CMD_LOCK_RELEASE, q->prefix, q->prefix_len, token,
                     false);
    cmd.client_id = client_id;
    cmd.seq = seq;
    cmd.keep_result = client_id != 0;
    cmd_propose(r, &cmd, release_done, q);
    return;
fail:
    free(q);
    cmd_req_finish(r);
}

/* ---------------------------------------------------------------------- */
/* OWNER                                                                   */

static void owner_read(struct cmd_req *r,
                       struct kv_store *kv,
                       size_t argc,
                       const char *const *argv,
                       const size_t *argvlen)
{
    uint8_t prefix[KV_LOCK_PREFIX_MAX];
    uint32_t len = 0;
    struct kv_range_result res;
    bool election = is_election(argv, argvlen);
    (void)argc;
    if (lock_prefix(r, election, argv[2], argvlen[2], prefix, &len) != 0) {
        return;
    }
    int rv = kv_lock_owner(kv, prefix, len, &res);
    if (rv == KV_ENOTFOUND) {
        rep_null_array(r);
    } else if (rv != 0) {
        rep_errorf(r, "ERR store read failed: %s", kv_strerror(rv));
    } else {
        /* A lock: [token, lease, claims]; an election's leader: [token,
         * lease, value]. */
        rep_array(r, 3);
        rep_int(r, (int64_t)res.kvs[0].create_revision);
        rep_int(r, (int64_t)res.kvs[0].lease);
        if (election) {
            rep_bulk(r, res.kvs[0].value, res.kvs[0].value_len);
        } else {
            rep_int(r, (int64_t)res.count);
        }
    }
    kv_range_result_free(&res);
}

/* BLOCK OWNER name / BELECT LEADER name: checks the name, then reads. */
static void owner_start(struct cmd_req *r,
                        size_t argc,
                        const char *const *argv,
                        const size_t *argvlen)
{
    uint8_t prefix[KV_LOCK_PREFIX_MAX];
    uint32_t len = 0;
    bool election = is_election(argv, argvlen);
    if (argc != 3) {
        rep_error(r, election ? "ERR syntax: BELECT LEADER name"
                              : "ERR syntax: BLOCK OWNER name");
        cmd_req_finish(r);
    } else if (lock_prefix(r, election, argv[2], argvlen[2], prefix, &len) !=
               0) {
        cmd_req_finish(r);
    } else {
        cmd_read_start(r, owner_read, argc, argv, argvlen);
    }
}

void cmd_block_req(struct cmd_req *r,
                   size_t argc,
                   const char *const *argv,
                   const size_t *argvlen,
                   uint64_t client_id,
                   uint64_t seq)
{
    const char *sub = argv[1];
    size_t n = argvlen[1];
    if (cmd_arg_is(sub, n, "acquire")) {
        lock_acquire(r, argc, argv, argvlen, client_id, seq);
    } else if (cmd_arg_is(sub, n, "release")) {
        lock_release(r, argc, argv, argvlen, client_id, seq);
    } else if (cmd_arg_is(sub, n, "owner")) {
        owner_start(r, argc, argv, argvlen);
    } else {
        rep_errorf(r,
                   "ERR unknown BLOCK subcommand '%.*s' (ACQUIRE, RELEASE, "
                   "OWNER)",
                   (int)(n > 32 ? 32 : n), sub);
        cmd_req_finish(r);
    }
}

CMD_DECL(cmd_block)
{
    cmd_block_req(r, argc, argv, argvlen, 0, 0);
}

int cmd_block_order(size_t argc, const char *const *argv, const size_t *argvlen)
{
    (void)argc;
    /* An ACQUIRE may wait: nothing after it on the connection may start
     * (a write pipelined behind it must run holding the lock). */
    if (cmd_arg_is(argv[1], argvlen[1], "owner")) {
        return CMD_ORDER_READ;
    }
    return cmd_arg_is(argv[1], argvlen[1], "release") ? CMD_ORDER_WRITE
                                                      : CMD_ORDER_SERIAL;
}

/* ---------------------------------------------------------------------- */
/* BELECT                                                                  */

static void proclaim_done(void *arg,
                          int status,
                          const struct kv_entry_result *res)
{
    struct lock_req *q = arg;
    if (cmd_write_ok(q->r, status, res)) {
        if (res->duplicate || res->superseded) {
            rep_session_outcome(q->r, res, q->client_id, q->seq);
        } else {
            rep_ok(q->r);
        }
    }
    cmd_req_finish(q->r);
    free(q);
}

/* PROCLAIM name token value: a put of the leader's own claim (its lease
 * kept), fenced by its token, so that only the current leader's value is
 * ever published. The claim's key is read here; if it is stale, the
 * fence refuses the put at apply time anyway. */
static void elect_proclaim(struct cmd_req *r,
                           size_t argc,
                           const char *const *argv,
                           const size_t *argvlen,
                           uint64_t client_id,
                           uint64_t seq)
{
    static const char ok[] = "+OK\r\n";
    struct kv_range_result res;
    struct lock_req *q = calloc(1, sizeof(*q));
    uint64_t token = 0;
    memset(&res, 0, sizeof(res));
    if (q == NULL) {
        rep_error(r, "ERR out of memory");
        goto fail;
    }
    if (argc != 5) {
        rep_error(r, "ERR syntax: BELECT PROCLAIM name token value");
        goto fail;
    }
    if (lock_prefix(r, true, argv[2], argvlen[2], q->prefix, &q->prefix_len) !=
            0 ||
        parse_pos(r, argv[3], argvlen[3], "token", &token) != 0 ||
        !cmd_check_value(r, argvlen[4])) {
        goto fail;
    }
    int rv = kv_lock_owner(bnode_kv(r->client->env->node), q->prefix,
                           q->prefix_len, &res);
    if (rv != 0 || res.kvs[0].create_revision != token) {
        rep_error(r, CMD_FENCED_REPLY);
        goto fail;
    }
    q->r = r;
    q->client_id = client_id;
    q->seq = seq;
    struct kv_cmd cmd;
    memset(&cmd, 0, sizeof(cmd));
    cmd.type = KV_CMD_PUT;
    cmd.op.type = KV_OP_PUT;
    cmd.op.key = res.kvs[0].key;
    cmd.op.key_len = res.kvs[0].key_len;
    cmd.op.value = (const uint8_t *)argv[4];
    cmd.op.value_len = (uint32_t)argvlen[4];
    cmd.op.lease = res.kvs[0].lease;
    cmd.fence_key = q->prefix;
    cmd.fence_key_len = q->prefix_len;
    cmd.fence_token = token;
    if (client_id != 0) {
        cmd.client_id = client_id;
        cmd.seq = seq;
        cmd.reply = (const uint8_t *)ok;
        cmd.reply_len = (uint32_t)(sizeof(ok) - 1);
    }
    cmd_propose(r, &cmd, proclaim_done, q);
    kv_range_result_free(&res);
    return;
fail:
    kv_range_result_free(&res);
    free(q);
    cmd_req_finish(r);
}

void cmd_belect_req(struct cmd_req *r,
                    size_t argc,
                    const char *const *argv,
                    const size_t *argvlen,
                    uint64_t client_id,
                    uint64_t seq)
{
    const char *sub = argv[1];
    size_t n = argvlen[1];
    if (cmd_arg_is(sub, n, "campaign")) {
        lock_acquire(r, argc, argv, argvlen, client_id, seq);
    } else if (cmd_arg_is(sub, n, "proclaim")) {
        elect_proclaim(r, argc, argv, argvlen, client_id, seq);
    } else if (cmd_arg_is(sub, n, "resign")) {
        lock_release(r, argc, argv, argvlen, client_id, seq);
    } else if (cmd_arg_is(sub, n, "leader")) {
        owner_start(r, argc, argv, argvlen);
    } else {
        rep_errorf(r,
                   "ERR unknown BELECT subcommand '%.*s' (CAMPAIGN, PROCLAIM, "
                   "RESIGN, LEADER)",
                   (int)(n > 32 ? 32 : n), sub);
        cmd_req_finish(r);
    }
}

CMD_DECL(cmd_belect)
{
    cmd_belect_req(r, argc, argv, argvlen, 0, 0);
}

int cmd_belect_order(size_t argc,
                     const char *const *argv,
                     const size_t *argvlen)
{
    (void)argc;
    if (cmd_arg_is(argv[1], argvlen[1], "leader")) {
        return CMD_ORDER_READ;
    }
    return cmd_arg_is(argv[1], argvlen[1], "campaign") ? CMD_ORDER_SERIAL
                                                       : CMD_ORDER_WRITE;
}

/* ---------------------------------------------------------------------- */
/* BFENCE                                                                  */

void cmd_fence_stamp(const struct cmd_req *r, struct kv_cmd *cmd)
{
    if (r->fence != NULL) {
        cmd->fence_key = r->fence->key;
        cmd->fence_key_len = r->fence->len;
        cmd->fence_token = r->fence->token;
    }
}

void cmd_fence_free(struct cmd_req *r)
{
    free(r->fence);
    r->fence = NULL;
}

/* Whether BFENCE may wrap @d: a write whose proposals carry the fence
 * (through cmd_propose() or a view), or BREQ of one. Commands that write
 * through other paths (keep-alives, compaction, users) would run
 * unfenced, so they are refused, as are reads and blocking waits. */
static bool fence_wraps(const struct cmd_def *d,
                        size_t argc,
                        const char *const *argv,
                        const size_t *argvlen)
{
    if (d == NULL || !(d->flags & CMD_WRITE) || (d->flags & CMD_ADMIN) ||
        d->fn == cmd_bfence || d->fn == cmd_block || d->fn == cmd_belect ||
        d->fn == cmd_exec || d->fn == cmd_acl) {
        return false;
    }
    if (d->fn == cmd_blease) {
        return argc >= 2 && (cmd_arg_is(argv[1], argvlen[1], "grant") ||
                             cmd_arg_is(argv[1], argvlen[1], "revoke"));
    }
    if (d->fn == cmd_breq) {
        return argc >= 4 && fence_wraps(cmd_lookup(argv[3], argvlen[3]),
                                        argc - 3, argv + 3, argvlen + 3);
    }
    return true;
}

CMD_DECL(cmd_bfence)
{
    uint64_t token = 0;
    const struct cmd_def *d = cmd_lookup(argv[3], argvlen[3]);
    size_t n = argc - 3;
    struct cmd_fence *f = calloc(1, sizeof(*f));
    if (f == NULL) {
        rep_error(r, "ERR out of memory");
        cmd_req_finish(r);
        return;
    }
    if (lock_prefix(r, false, argv[1], argvlen[1], f->key, &f->len) != 0 ||
        parse_pos(r, argv[2], argvlen[2], "token", &token) != 0) {
        free(f);
        cmd_req_finish(r);
        return;
    }
    if (d == NULL) {
        int len = argvlen[3] > 128 ? 128 : (int)argvlen[3];
        rep_errorf(r, "ERR unknown command '%.*s' in BFENCE", len, argv[3]);
        free(f);
        cmd_req_finish(r);
        return;
    }
    if (d->arity > 0 ? n != (size_t)d->arity : n < (size_t)-d->arity) {
        rep_arity_error(r, d->name);
        free(f);
        cmd_req_finish(r);
        return;
    }
    if (!fence_wraps(d, n, argv + 3, argvlen + 3)) {
        rep_errorf(r, "ERR '%s' cannot run inside BFENCE (writes only)",
                   d->name);
        free(f);
        cmd_req_finish(r);
        return;
    }
    f->token = token;
    r->fence = f; /* freed by cmd_req_finish() */
    if (d->fn != NULL) {
        d->fn(r, n, argv + 3, argvlen + 3);
    } else {
        cmd_view_start(r, d, n, argv + 3, argvlen + 3);
    }
}
