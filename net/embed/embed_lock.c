/*
 * embed_lock.c - locks with fencing and lease listing in the public API
 * (ballot_lock_*, ballot_put_fenced, ballot_lease_list): calls built on
 * the caller's thread, run on the loop through the node's header
 * (proposals of kv's lock commands, bnode_lock_wait, reads of the store),
 * and their results. docs/coordination.md, "Locks", states the
 * guarantees.
 */
#include <stdlib.h>
#include <string.h>

#include "embed_internal.h"
#include "kv.h"

/* The public limits are kv's. */
_Static_assert(BALLOT_LEASE_LIST_MAX == KV_LEASE_LIST_MAX,
               "ballot.h and kv.h disagree on the lease listing limit");
_Static_assert(BALLOT_LOCK_NAME_MAX == KV_LOCK_NAME_MAX,
               "ballot.h and kv.h disagree on the lock name limit");

/* Room after the call for the lock's prefix and, once known, the claim's
 * key (what a wait needs). */
struct lock_extra
{
    uint32_t prefix_len;
    uint32_t claim_len;
    uint64_t token;
    uint8_t prefix[KV_LOCK_PREFIX_MAX];
    uint8_t claim[KV_KEY_BYTES_MAX];
};

static struct lock_extra *extra_of(struct embed_call *c)
{
    return (struct lock_extra *)(c + 1);
}

int embed_call_lock(enum embed_kind kind,
                    const struct embed_lock_args *a,
                    const struct ballot_reqid *rid,
                    struct embed_call **out)
{
    struct kv_cmd cmd;
    struct kv_cmp cmp;
    struct kv_op put;
    uint8_t claim[KV_KEY_BYTES_MAX];
    struct lock_extra x;
    memset(&cmd, 0, sizeof(cmd));
    memset(&x, 0, sizeof(x));
    if (kind == EMBED_LEASE_LIST) {
        if (a->count == 0 || a->count > BALLOT_LEASE_LIST_MAX) {
            return BALLOT_EINVAL;
        }
    } else if (a->name == NULL ||
               kv_lock_prefix(a->election, a->name, a->name_len, x.prefix,
                              &x.prefix_len) != 0) {
        return BALLOT_EINVAL;
    }
    switch (kind) {
    case EMBED_LOCK_ACQUIRE:
        if (a->lease == 0 || a->lease > (uint64_t)INT64_MAX ||
            (a->flags & ~BALLOT_LOCK_TRY) != 0) {
            return BALLOT_EINVAL;
        }
        if ((a->value == NULL && a->value_len > 0) ||
            a->value_len > KV_VALUE_BYTES_MAX) {
            return a->value == NULL ? BALLOT_EINVAL : BALLOT_ETOOBIG;
        }
        kv_lock_cmd_init(&cmd, KV_CMD_LOCK_ACQUIRE, x.prefix, x.prefix_len,
                         a->lease, (a->flags & BALLOT_LOCK_TRY) != 0);
        cmd.op.value = a->value; /* a candidate's (campaign) */
        cmd.op.value_len = (uint32_t)a->value_len;
        break;
    case EMBED_ELECT_PROCLAIM:
        /* A put of the leader's own claim, if the claim of @lease is the
         * one with @token (else a put would make a new claim) and, by the
         * fence, still leads. */
        if (a->lease == 0 || a->lease > (uint64_t)INT64_MAX || a->token == 0 ||
            a->token > (uint64_t)INT64_MAX ||
            (a->value == NULL && a->value_len > 0)) {
            return BALLOT_EINVAL;
        }
        if (a->value_len > KV_VALUE_BYTES_MAX) {
            return BALLOT_ETOOBIG;
        }
        memset(&cmp, 0, sizeof(cmp));
        memset(&put, 0, sizeof(put));
        kv_lock_key(x.prefix, x.prefix_len, a->lease, claim, &cmp.key_len);
        cmp.target = KV_CMP_CREATE_REVISION;
        cmp.op = KV_CMP_EQ;
        cmp.key = claim;
        cmp.number = a->token;
        put.type = KV_OP_PUT;
        put.key = claim;
        put.key_len = cmp.key_len;
        put.value = a->value_len > 0 ? a->value : (const uint8_t *)"";
        put.value_len = (uint32_t)a->value_len;
        put.lease = a->lease;
        cmd.type = KV_CMD_TXN;
        cmd.cmps = &cmp;
        cmd.n_cmps = 1;
        cmd.then_ops = &put;
        cmd.n_then = 1;
        cmd.fence_key = x.prefix;
        cmd.fence_key_len = x.prefix_len;
        cmd.fence_token = a->token;
        break;
    case EMBED_LOCK_RELEASE:
        if (a->token == 0 || a->token > (uint64_t)INT64_MAX) {
            return BALLOT_EINVAL;
        }
        kv_lock_cmd_init(&cmd, KV_CMD_LOCK_RELEASE, x.prefix, x.prefix_len,
                         a->token, false);
        break;
    case EMBED_PUT_FENCED:
        if (a->token == 0 || a->key == NULL || a->key_len == 0 ||
            (a->value == NULL && a->value_len > 0)) {
            return BALLOT_EINVAL;
        }
        if (a->key_len > KV_KEY_BYTES_MAX ||
            a->value_len > KV_VALUE_BYTES_MAX) {
            return BALLOT_ETOOBIG;
        }
        cmd.type = KV_CMD_PUT;
        cmd.op.type = KV_OP_PUT;
        cmd.op.key = a->key;
        cmd.op.key_len = (uint32_t)a->key_len;
        cmd.op.value = a->value_len > 0 ? a->value : (const uint8_t *)"";
        cmd.op.value_len = (uint32_t)a->value_len;
        cmd.fence_key = x.prefix;
        cmd.fence_key_len = x.prefix_len;
        cmd.fence_token = a->token;
        break;
    default: /* EMBED_LOCK_OWNER, EMBED_LEASE_LIST: reads */
        break;
    }
    struct embed_call *c;
    int rv = embed_call_of_cmd(kind, cmd.type != 0 ? &cmd : NULL, rid,
                               sizeof(x), &c);
    if (rv != 0) {
        return rv;
    }
    c->ttl_ms = a->timeout_ms;
    c->consistency = a->consistency;
    c->id = a->after;
    c->limit = a->count;
    *extra_of(c) = x;
    *out = c;
    return 0;
}

/* Delivers a result of one op (@count, and @kv if not NULL) and frees
 * @c. */
static void deliver(struct embed_call *c,
                    int status,
                    uint64_t revision,
                    bool duplicate,
                    uint64_t count,
                    const struct kv_kv *kv)
{
    struct ballot_op_result op;
    struct ballot_kv bkv;
    struct ballot_result res;
    memset(&op, 0, sizeof(op));
    memset(&bkv, 0, sizeof(bkv));
    memset(&res, 0, sizeof(res));
    res.status = status;
    if (status == 0) {
        res.revision = revision;
        res.succeeded = true;
        res.duplicate = duplicate;
        op.type = BALLOT_OP_GET;
        op.count = count;
        if (kv != NULL) {
            bkv.key = kv->key;
            bkv.key_len = kv->key_len;
            bkv.value = kv->value;
            bkv.value_len = kv->value_len;
            bkv.create_revision = kv->create_revision;
            bkv.mod_revision = kv->mod_revision;
            bkv.version = kv->version;
            op.kvs = &bkv;
            op.n_kvs = 1;
        }
        res.ops = &op;
        res.n_ops = 1;
    }
    c->cb(c->arg, &res);
    embed_call_free(c);
}

/* The status of a lock write that reached the log. */
static int write_status(int status, const struct kv_entry_result *er)
{
    if (status != 0) {
        return embed_error(status);
    }
    switch (er->code) {
    case 0:
        break;
    case KV_ENOLEASE:
        return BALLOT_ENOLEASE;
    case KV_ELOCKNOTHELD:
        return BALLOT_ENOTHELD;
    case KV_EFENCED:
        return BALLOT_EFENCED;
    case KV_ELOCKWAITERS:
        return BALLOT_ELIMIT;
    default:
        return BALLOT_EREFUSED;
    }
    if (er->superseded) {
        return BALLOT_ESTALE;
    }
    /* Every command here keeps its result for a retry; a duplicate
     * without one was applied by another command under the same id. */
    if (er->duplicate && !er->result_kept) {
        return BALLOT_EREFUSED;
    }
    return 0;
}

static uint64_t revision_of(const struct kv_entry_result *er)
{
    return er->duplicate ? er->session_revision : er->revision;
}

static void on_waited(void *arg, int status)
{
    struct embed_call *c = arg;
    deliver(c, embed_error(status), 0, false, extra_of(c)->token, NULL);
}

static void on_acquire(void *arg, int status, const struct kv_entry_result *er)
{
    struct embed_call *c = arg;
    struct lock_extra *x = extra_of(c);
    int st = write_status(status, er);
    if (st == 0 && (er->n_ops != 1 || er->ops[0].n_kvs != 1)) {
        st = BALLOT_EREFUSED; /* the id was used by another command */
    }
    if (st != 0) {
        deliver(c, st, 0, false, 0, NULL);
        return;
    }
    const struct kv_kv *claim = &er->ops[0].kvs[0];
    if (!er->succeeded) {
        deliver(c, BALLOT_ELOCKED, 0, false, 0, NULL);
        return;
    }
    x->token = claim->create_revision;
    if (er->ops[0].count == 1) {
        deliver(c, 0, revision_of(er), er->duplicate, x->token, NULL);
        return;
    }
    memcpy(x->claim, claim->key, claim->key_len);
    x->claim_len = claim->key_len;
    struct bnode_lock_wait *w;
    int rv =
        bnode_lock_wait(c->b->node, x->prefix, x->prefix_len, x->claim,
                        x->claim_len, x->token, c->ttl_ms, on_waited, c, &w);
    if (rv != 0) {
        deliver(c, embed_error(rv), 0, false, 0, NULL);
    }
}

static void on_release(void *arg, int status, const struct kv_entry_result *er)
{
    struct embed_call *c = arg;
    int st = write_status(status, er);
    if (st == 0 && er->n_ops != 1) {
        st = BALLOT_EREFUSED;
    }
    deliver(c, st, st == 0 ? revision_of(er) : 0, st == 0 && er->duplicate,
            st == 0 ? er->ops[0].count : 0, NULL);
}

static void on_fenced_put(void *arg,
                          int status,
                          const struct kv_entry_result *er)
{
    struct embed_call *c = arg;
    int st = write_status(status, er);
    if (st == 0 && !er->succeeded) {
        st = BALLOT_EFENCED; /* a proclaim whose claim is not the token's */
    }
    deliver(c, st, st == 0 ? revision_of(er) : 0, st == 0 && er->duplicate, 1,
            NULL);
}

static void on_owner(void *arg, int status)
{
    struct embed_call *c = arg;
    struct lock_extra *x = extra_of(c);
    struct kv_range_result res;
    if (status != 0) {
        deliver(c, embed_error(status), 0, false, 0, NULL);
        return;
    }
    int rv =
        kv_lock_owner(bnode_kv(c->b->node), x->prefix, x->prefix_len, &res);
    if (rv != 0 && rv != KV_ENOTFOUND) {
        deliver(c, rv == KV_ENOMEM ? BALLOT_ENOMEM : BALLOT_ESTORAGE, 0, false,
                0, NULL);
    } else {
        deliver(c, 0, res.revision, false, res.count,
                rv == 0 ? &res.kvs[0] : NULL);
    }
    kv_range_result_free(&res);
}

static void on_list(void *arg, int status)
{
    struct embed_call *c = arg;
    struct ballot_result res;
    memset(&res, 0, sizeof(res));
    uint64_t *ids = NULL;
    struct ballot_op_result *ops = NULL;
    size_t n = 0;
    bool more = false;
    res.status = embed_error(status);
    if (res.status == 0) {
        ids = malloc(c->limit * sizeof(*ids));
        ops = calloc(c->limit, sizeof(*ops));
        int rv = ids == NULL || ops == NULL
                     ? KV_ENOMEM
                     : kv_lease_list(bnode_kv(c->b->node), c->id, ids, c->limit,
                                     &n, &more);
        res.status = rv == 0           ? 0
                     : rv == KV_ENOMEM ? BALLOT_ENOMEM
                                       : BALLOT_ESTORAGE;
    }
    if (res.status == 0) {
        for (size_t i = 0; i < n; i++) {
            ops[i].type = BALLOT_OP_GET;
            ops[i].count = ids[i];
        }
        if (n > 0) {
            ops[n - 1].more = more;
        }
        res.succeeded = true;
        res.ops = n > 0 ? ops : NULL;
        res.n_ops = n;
    }
    c->cb(c->arg, &res);
    free(ids);
    free(ops);
    embed_call_free(c);
}

int embed_lock_run(struct ballot *b, struct embed_call *c)
{
    struct bnode *node = b->node;
    int rv;
    switch (c->kind) {
    case EMBED_LOCK_ACQUIRE:
        rv = bnode_propose(node, c->cmd, c->cmd_len, on_acquire, c);
        break;
    case EMBED_LOCK_RELEASE:
        rv = bnode_propose(node, c->cmd, c->cmd_len, on_release, c);
        break;
    case EMBED_PUT_FENCED:
    case EMBED_ELECT_PROCLAIM:
        rv = bnode_propose(node, c->cmd, c->cmd_len, on_fenced_put, c);
        break;
    case EMBED_LOCK_OWNER:
        rv = bnode_read(node, c->consistency == BALLOT_LINEARIZABLE, on_owner,
                        c);
        break;
    default: /* EMBED_LEASE_LIST */
        rv =
            bnode_read(node, c->consistency == BALLOT_LINEARIZABLE, on_list, c);
        break;
    }
    return embed_error(rv);
}
