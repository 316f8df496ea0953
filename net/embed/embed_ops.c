/*
 * embed_ops.c - the requests of the public API: building a self-contained
 * call (its kv command encoded, or its read's keys copied), running it on
 * the loop through the node's header, and turning what the state machine
 * returned into a struct ballot_result.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "embed_internal.h"
#include "kv.h"

/* ---- errors ------------------------------------------------------------ */

int embed_error(int code)
{
    switch (code) {
    case 0:
        return 0;
    case BNODE_EINVAL:
        return BALLOT_EINVAL;
    case BNODE_ENOMEM:
        return BALLOT_ENOMEM;
    case BNODE_ENOTLEADER:
    case BNODE_EDROPPED: /* another leader's entry took its place */
        return BALLOT_ENOTLEADER;
    case BNODE_EBUSY:
        return BALLOT_EBUSY;
    case BNODE_ENOREAD:
        return BALLOT_ENOREAD;
    case BNODE_ESTOPPED:
        return BALLOT_ECLOSED;
    case BNODE_ESTORAGE:
        return BALLOT_ESTORAGE;
    case BNODE_ETOOBIG:
        return BALLOT_ETOOBIG;
    case BNODE_ECONFPENDING:
        return BALLOT_ECONFPENDING;
    case BNODE_ECOMPACTED:
        return BALLOT_ECOMPACTED;
    case BNODE_ECLOCK:
        return BALLOT_ECLOCK;
    case BNODE_ENOLEASE:
        return BALLOT_ENOLEASE;
    case BNODE_ELEASENOTREADY:
        return BALLOT_ETRYAGAIN;
    case BNODE_ELOCKLOST:
        return BALLOT_ELOCKLOST;
    case BNODE_ETIMEDOUT:
        return BALLOT_ETIMEDOUT;
    case BNODE_EUNKNOWN:
    default:
        /* A code this layer does not know may come from a write whose fate
         * is not known: never claim "not applied" for it. */
        return BALLOT_EUNKNOWN;
    }
}

/* ---- building calls ---------------------------------------------------- */

static struct embed_call *call_alloc(enum embed_kind kind, size_t extra)
{
    struct embed_call *c = calloc(1, sizeof(*c) + extra);
    if (c != NULL) {
        c->kind = kind;
    }
    return c;
}

void embed_call_free(struct embed_call *c)
{
    if (c != NULL) {
        free(c->cmd);
        free(c);
    }
}

static int check_bytes(const void *p, size_t len, size_t max)
{
    if (p == NULL && len > 0) {
        return BALLOT_EINVAL;
    }
    return len > max ? BALLOT_ETOOBIG : 0;
}

static int op_of(const struct ballot_op *in, struct kv_op *out)
{
    memset(out, 0, sizeof(*out));
    int rv = check_bytes(in->key, in->key_len, BALLOT_KEY_MAX);
    if (rv == 0 && in->key_len == 0) {
        rv = BALLOT_EINVAL;
    }
    if (rv != 0) {
        return rv;
    }
    out->key = in->key;
    out->key_len = (uint32_t)in->key_len;
    switch (in->type) {
    case BALLOT_OP_PUT:
        rv = check_bytes(in->value, in->value_len, BALLOT_VALUE_MAX);
        out->type = KV_OP_PUT;
        out->value = in->value;
        out->value_len = (uint32_t)in->value_len;
        return rv;
    case BALLOT_OP_DELETE:
        out->type = KV_OP_DELETE;
        return 0;
    case BALLOT_OP_GET:
        out->type = KV_OP_RANGE;
        return 0;
    default:
        return BALLOT_EINVAL;
    }
}

static int ops_of(const struct ballot_op *in, size_t n, struct kv_op **out)
{
    *out = NULL;
    if (n == 0) {
        return 0;
    }
    if (in == NULL) {
        return BALLOT_EINVAL;
    }
    if (n > KV_TXN_OPS_MAX) {
        return BALLOT_ETOOBIG;
    }
    *out = calloc(n, sizeof(**out));
    if (*out == NULL) {
        return BALLOT_ENOMEM;
    }
    for (size_t i = 0; i < n; i++) {
        int rv = op_of(&in[i], &(*out)[i]);
        if (rv != 0) {
            return rv;
        }
    }
    return 0;
}

static int cmps_of(const struct ballot_txn *txn, struct kv_cmp **out)
{
    *out = NULL;
    if (txn->n_cmps == 0) {
        return 0;
    }
    if (txn->cmps == NULL) {
        return BALLOT_EINVAL;
    }
    if (txn->n_cmps > KV_TXN_CMPS_MAX) {
        return BALLOT_ETOOBIG;
    }
    *out = calloc(txn->n_cmps, sizeof(**out));
    if (*out == NULL) {
        return BALLOT_ENOMEM;
    }
    for (size_t i = 0; i < txn->n_cmps; i++) {
        const struct ballot_cmp *in = &txn->cmps[i];
        struct kv_cmp *c = &(*out)[i];
        int rv = check_bytes(in->key, in->key_len, BALLOT_KEY_MAX);
        if (rv == 0) {
            rv = check_bytes(in->value, in->value_len, BALLOT_VALUE_MAX);
        }
        if (rv != 0) {
            return rv;
        }
        if (in->key_len == 0 || in->target < BALLOT_CMP_VALUE ||
            in->target > BALLOT_CMP_EXISTS || in->op < BALLOT_CMP_EQ ||
            in->op > BALLOT_CMP_GT) {
            return BALLOT_EINVAL;
        }
        c->target = (uint8_t)in->target; /* the same numbers as kv's */
        c->op = (uint8_t)in->op;
        c->key = in->key;
        c->key_len = (uint32_t)in->key_len;
        c->value = in->value;
        c->value_len = (uint32_t)in->value_len;
        c->number = in->number;
    }
    return 0;
}

int embed_call_of_cmd(enum embed_kind kind,
                      struct kv_cmd *cmd,
                      const struct ballot_reqid *rid,
                      size_t extra,
                      struct embed_call **out)
{
    struct embed_call *c = NULL;
    int rv = 0;
    if (cmd == NULL) {
        c = call_alloc(kind, extra);
        *out = c;
        return c == NULL ? BALLOT_ENOMEM : 0;
    }
    if (rid != NULL) {
        if (rid->client_id == 0 || rid->client_id > KV_SESSION_CLIENT_MAX ||
            rid->seq == 0) {
            return BALLOT_EINVAL;
        }
        cmd->client_id = rid->client_id;
        cmd->seq = rid->seq;
        /* The state machine keeps the result, so that a retry is answered
         * with what the first application did (a transaction's branch and
         * reads included). */
        cmd->keep_result = true;
    }
    size_t size = kv_cmd_encoded_size(cmd);
    c = call_alloc(kind, extra);
    if (size == 0) {
        rv = BALLOT_ETOOBIG; /* everything else was checked before */
    } else if (c == NULL || (c->cmd = malloc(size)) == NULL) {
        rv = BALLOT_ENOMEM;
    } else if (kv_cmd_encode(cmd, c->cmd, size, &c->cmd_len) != 0) {
        rv = BALLOT_EINVAL;
    }
    if (rv != 0) {
        embed_call_free(c);
        return rv;
    }
    *out = c;
    return 0;
}

int embed_call_write(enum embed_kind kind,
                     const void *key,
                     size_t key_len,
                     const void *value,
                     size_t value_len,
                     const struct ballot_txn *txn,
                     const struct ballot_reqid *rid,
                     struct embed_call **out)
{
    struct kv_cmd cmd;
    struct kv_op *then_ops = NULL, *else_ops = NULL;
    struct kv_cmp *cmps = NULL;
    struct embed_call *c = NULL;
    int rv = 0;

    memset(&cmd, 0, sizeof(cmd));
    if (kind == EMBED_TXN) {
        if (txn == NULL) {
            return BALLOT_EINVAL;
        }
        rv = cmps_of(txn, &cmps);
        if (rv == 0) {
            rv = ops_of(txn->then_ops, txn->n_then, &then_ops);
        }
        if (rv == 0) {
            rv = ops_of(txn->else_ops, txn->n_else, &else_ops);
        }
        cmd.type = KV_CMD_TXN;
        cmd.cmps = cmps;
        cmd.n_cmps = (uint32_t)txn->n_cmps;
        cmd.then_ops = then_ops;
        cmd.n_then = (uint32_t)txn->n_then;
        cmd.else_ops = else_ops;
        cmd.n_else = (uint32_t)txn->n_else;
    } else {
        struct ballot_op op = {
            kind == EMBED_PUT ? BALLOT_OP_PUT : BALLOT_OP_DELETE, key, key_len,
            value, value_len};
        if (kind == EMBED_PUT && value == NULL && value_len == 0) {
            op.value = "";
        }
        rv = op_of(&op, &cmd.op);
        cmd.type = kind == EMBED_PUT ? KV_CMD_PUT : KV_CMD_DELETE;
    }
    if (rv == 0) {
        rv = embed_call_of_cmd(kind, &cmd, rid, 0, &c);
    }
    free(cmps);
    free(then_ops);
    free(else_ops);
    if (rv != 0) {
        return rv;
    }
    *out = c;
    return 0;
}

int embed_call_sequence(const void *name,
                        size_t name_len,
                        uint64_t count,
                        const struct ballot_reqid *rid,
                        struct embed_call **out)
{
    struct kv_cmd cmd;
    memset(&cmd, 0, sizeof(cmd));
    if (name_len == 0 || count == 0 || count > KV_SEQUENCE_BLOCK_MAX ||
        check_bytes(name, name_len, BALLOT_KEY_MAX) != 0) {
        return BALLOT_EINVAL;
    }
    cmd.type = KV_CMD_SEQUENCE;
    cmd.op.type = KV_OP_SEQUENCE;
    cmd.op.key = name;
    cmd.op.key_len = (uint32_t)name_len;
    cmd.op.delta = (int64_t)count;
    return embed_call_of_cmd(EMBED_SEQUENCE, &cmd, rid, 0, out);
}

int embed_call_read(const void *key,
                    size_t key_len,
                    const void *end,
                    size_t end_len,
                    uint64_t limit,
                    int flags,
                    int consistency,
                    bool point,
                    struct embed_call **out)
{
    const int all = BALLOT_RANGE_PREFIX | BALLOT_RANGE_REVERSE |
                    BALLOT_RANGE_KEYS_ONLY | BALLOT_RANGE_COUNT_ONLY;
    int rv = check_bytes(key, key_len, BALLOT_KEY_MAX);
    if (rv == 0) {
        rv = check_bytes(end, end_len, BALLOT_KEY_MAX);
    }
    if (rv != 0) {
        return rv;
    }
    if ((point && key_len == 0) || (flags & ~all) != 0 ||
        (consistency != BALLOT_LINEARIZABLE && consistency != BALLOT_LOCAL)) {
        return BALLOT_EINVAL;
    }
    struct embed_call *c =
        call_alloc(point ? EMBED_GET : EMBED_RANGE, key_len + end_len + 1);
    if (c == NULL) {
        return BALLOT_ENOMEM;
    }
    uint8_t *bytes = (uint8_t *)(c + 1);
    if (key_len > 0) {
        memcpy(bytes, key, key_len);
    }
    if (end_len > 0) {
        memcpy(bytes + key_len, end, end_len);
    }
    if (!point && end_len == 0 && (flags & BALLOT_RANGE_PREFIX) == 0) {
        /* kv's "every key >= key" is an end of one zero byte. */
        bytes[key_len] = 0;
        end_len = 1;
    }
    c->key = bytes;
    c->key_len = (uint32_t)key_len;
    c->end = bytes + key_len;
    c->end_len = (uint32_t)end_len;
    c->limit = limit;
    c->flags = flags;
    c->consistency = consistency;
    *out = c;
    return 0;
}

int embed_call_member(enum embed_kind kind,
                      uint64_t id,
                      const char *addr,
                      bool voter,
                      struct embed_call **out)
{
    if (id == 0 || (kind == EMBED_MEMBER_ADD &&
                    (addr == NULL || strlen(addr) >= sizeof((*out)->addr)))) {
        return BALLOT_EINVAL;
    }
    struct embed_call *c = call_alloc(kind, 0);
    if (c == NULL) {
        return BALLOT_ENOMEM;
    }
    c->id = id;
    c->voter = voter;
    if (addr != NULL) {
        snprintf(c->addr, sizeof(c->addr), "%s", addr);
    }
    *out = c;
    return 0;
}

/* ---- results ----------------------------------------------------------- */

/* Everything a result points to, in one allocation freed after the
 * callback. */
struct result_buf
{
    struct ballot_result res;
    struct ballot_op_result *ops;
    struct ballot_kv *kvs;
};

static int op_type_of(uint8_t kv_type)
{
    switch (kv_type) {
    case KV_OP_PUT:
        return BALLOT_OP_PUT;
    case KV_OP_DELETE:
    case KV_OP_DELETE_RANGE:
        return BALLOT_OP_DELETE;
    case KV_OP_SEQUENCE:
        return BALLOT_OP_SEQUENCE;
    default:
        return BALLOT_OP_GET;
    }
}

static void kv_of(const struct kv_kv *in, struct ballot_kv *out)
{
    out->key = in->key;
    out->key_len = in->key_len;
    out->value = in->value;
    out->value_len = in->value_len;
    out->create_revision = in->create_revision;
    out->mod_revision = in->mod_revision;
    out->version = in->version;
}

/* Fills @rb from kv's per-operation results (borrowing their bytes).
 * Returns 0 or BALLOT_ENOMEM. */
static int fill_ops(struct result_buf *rb,
                    const struct kv_op_result *ops,
                    size_t n_ops)
{
    size_t n_kvs = 0;
    for (size_t i = 0; i < n_ops; i++) {
        n_kvs += ops[i].n_kvs;
    }
    rb->ops = n_ops > 0 ? calloc(n_ops, sizeof(*rb->ops)) : NULL;
    rb->kvs = n_kvs > 0 ? calloc(n_kvs, sizeof(*rb->kvs)) : NULL;
    if ((n_ops > 0 && rb->ops == NULL) || (n_kvs > 0 && rb->kvs == NULL)) {
        return BALLOT_ENOMEM;
    }
    size_t k = 0;
    for (size_t i = 0; i < n_ops; i++) {
        struct ballot_op_result *o = &rb->ops[i];
        o->type = op_type_of(ops[i].type);
        o->count = ops[i].type == KV_OP_PUT ? 1 : ops[i].count;
        if (ops[i].type == KV_OP_SEQUENCE && ops[i].n_kvs == 1) {
            /* The IDs handed out: [create_revision, version]. */
            o->count =
                ops[i].kvs[0].version - ops[i].kvs[0].create_revision + 1;
        }
        o->more = ops[i].more;
        o->kvs = n_kvs > 0 ? &rb->kvs[k] : NULL;
        o->n_kvs = ops[i].n_kvs;
        /* A put or delete returns previous pairs only when asked; the
         * public API does not ask, so only reads carry pairs. */
        for (size_t j = 0; j < ops[i].n_kvs; j++) {
            kv_of(&ops[i].kvs[j], &rb->kvs[k++]);
        }
    }
    rb->res.ops = rb->ops;
    rb->res.n_ops = n_ops;
    return 0;
}

static void finish(struct embed_call *c, struct result_buf *rb)
{
    c->cb(c->arg, &rb->res);
    free(rb->ops);
    free(rb->kvs);
    embed_call_free(c);
}

void embed_call_fail(struct embed_call *c, int status)
{
    struct result_buf rb;
    memset(&rb, 0, sizeof(rb));
    rb.res.status = status;
    finish(c, &rb);
}

static void on_write(void *arg, int status, const struct kv_entry_result *er)
{
    struct embed_call *c = arg;
    struct result_buf rb;
    memset(&rb, 0, sizeof(rb));
    if (status != 0) {
        rb.res.status = embed_error(status);
    } else if (er == NULL) {
        rb.res.succeeded = true; /* a membership change */
    } else if (er->code != 0) {
        rb.res.status = BALLOT_EREFUSED;
    } else if (er->n_ops == 1 && er->ops[0].type == KV_OP_SEQUENCE &&
               er->ops[0].count != KV_RMW_APPLIED) {
        rb.res.status = BALLOT_ELIMIT; /* the sequence is exhausted */
    } else if (er->superseded) {
        rb.res.status = BALLOT_ESTALE;
    } else if (er->duplicate && er->result_elided) {
        /* Applied once; its result was too large to keep. */
        rb.res.duplicate = true;
        rb.res.succeeded = er->succeeded;
        rb.res.revision = er->session_revision;
    } else {
        rb.res.duplicate = er->duplicate;
        rb.res.succeeded = er->succeeded;
        rb.res.revision = er->duplicate ? er->session_revision : er->revision;
        rb.res.status = fill_ops(&rb, er->ops, er->n_ops);
    }
    finish(c, &rb);
}

static void on_read(void *arg, int status)
{
    struct embed_call *c = arg;
    struct result_buf rb;
    struct kv_range_result rr;
    memset(&rb, 0, sizeof(rb));
    memset(&rr, 0, sizeof(rr));
    if (status != 0) {
        rb.res.status = embed_error(status);
        finish(c, &rb);
        return;
    }
    struct kv_store *kv = bnode_kv(c->b->node);
    int rv;
    if (c->kind == EMBED_GET) {
        rv = kv_get(kv, c->key, c->key_len, &rr);
        if (rv == KV_ENOTFOUND) {
            rv = 0;
        }
    } else {
        struct kv_range_req req;
        memset(&req, 0, sizeof(req));
        req.key = c->key;
        req.key_len = c->key_len;
        req.end = c->end;
        req.end_len = c->end_len;
        req.limit = c->limit;
        req.flags =
            (uint8_t)(((c->flags & BALLOT_RANGE_PREFIX) ? KV_FLAG_PREFIX : 0) |
                      ((c->flags & BALLOT_RANGE_REVERSE) ? KV_FLAG_REVERSE
                                                         : 0) |
                      ((c->flags & BALLOT_RANGE_KEYS_ONLY) ? KV_FLAG_KEYS_ONLY
                                                           : 0) |
                      ((c->flags & BALLOT_RANGE_COUNT_ONLY) ? KV_FLAG_COUNT_ONLY
                                                            : 0));
        rv = kv_range(kv, &req, &rr);
    }
    if (rv != 0) {
        rb.res.status = rv == KV_ENOMEM ? BALLOT_ENOMEM : BALLOT_ESTORAGE;
    } else {
        struct kv_op_result op;
        memset(&op, 0, sizeof(op));
        op.type = KV_OP_RANGE;
        op.count = c->kind == EMBED_GET ? rr.n_kvs : rr.count;
        op.more = rr.more;
        op.kvs = rr.kvs;
        op.n_kvs = rr.n_kvs;
        rb.res.succeeded = true;
        rb.res.revision = rr.revision;
        rb.res.status = fill_ops(&rb, &op, 1);
    }
    finish(c, &rb);
    kv_range_result_free(&rr);
}

/* ---- running on the loop ---------------------------------------------- */

static int role_of(uint8_t state)
{
    switch (state) {
    case RAFT_LEADER:
        return BALLOT_LEADER;
    case RAFT_CANDIDATE:
        return BALLOT_CANDIDATE;
    case RAFT_PRE_CANDIDATE:
        return BALLOT_PRECANDIDATE;
    default:
        return BALLOT_FOLLOWER;
    }
}

void embed_status_fill(struct ballot *b, struct ballot_status *out)
{
    struct bnode_status st;
    memset(out, 0, sizeof(*out));
    bnode_status(b->node, &st);
    out->id = st.id;
    out->role = role_of(st.state);
    out->term = st.term;
    out->leader = st.leader;
    const char *la = bnode_leader_addr(b->node);
    snprintf(out->leader_addr, sizeof(out->leader_addr), "%s",
             la != NULL ? la : "");
    out->commit_index = st.commit;
    out->applied_index = st.applied;
    out->last_index = st.last_index;
    out->revision = st.revision;
    out->halted = b->halted;
    for (uint32_t i = 0; i < st.conf.n && i < BALLOT_MEMBERS_MAX; i++) {
        struct ballot_member *m = &out->members[out->n_members++];
        const struct bnode_member *a =
            bnode_member_addr(b->node, st.conf.members[i].id);
        m->id = st.conf.members[i].id;
        m->voter = st.conf.members[i].role == RAFT_VOTER;
        if (a != NULL) {
            snprintf(m->client_addr, sizeof(m->client_addr), "%s:%d", a->host,
                     a->client_port);
            snprintf(m->peer_addr, sizeof(m->peer_addr), "%s:%d", a->host,
                     a->peer_port);
        }
    }
}

int embed_call_run(struct ballot *b, struct embed_call *c)
{
    struct bnode_member m;
    int rv;
    c->b = b;
    if (b->stopping) {
        return BALLOT_ECLOSED;
    }
    if (b->halted &&
        c->kind != EMBED_STATUS) { /* the node refuses; say why at once */
        return BALLOT_ESTORAGE;
    }
    switch (c->kind) {
    case EMBED_PUT:
    case EMBED_DELETE:
    case EMBED_TXN:
    case EMBED_SEQUENCE:
        rv = bnode_propose(b->node, c->cmd, c->cmd_len, on_write, c);
        break;
    case EMBED_GET:
    case EMBED_RANGE:
        rv = bnode_read(b->node, c->consistency == BALLOT_LINEARIZABLE, on_read,
                        c);
        break;
    case EMBED_MEMBER_ADD:
        memset(&m, 0, sizeof(m));
        m.id = c->id;
        if (c->id == 0 ||
            bnode_member_parse_addr(c->addr, strlen(c->addr), &m) != 0) {
            return BALLOT_EINVAL;
        }
        rv = bnode_member_add(b->node,
                              c->voter ? RAFT_ADD_VOTER : RAFT_ADD_LEARNER, &m,
                              on_write, c);
        break;
    case EMBED_MEMBER_PROMOTE:
    case EMBED_MEMBER_REMOVE:
        if (c->id == 0) {
            return BALLOT_EINVAL;
        }
        rv = bnode_conf_change(
            b->node,
            c->kind == EMBED_MEMBER_PROMOTE ? RAFT_PROMOTE : RAFT_REMOVE, c->id,
            on_write, c);
        break;
    case EMBED_LEASE_GRANT:
    case EMBED_LEASE_KEEPALIVE:
    case EMBED_LEASE_REVOKE:
    case EMBED_LEASE_TTL:
    case EMBED_PUT_LEASE:
        return embed_lease_run(b, c);
    case EMBED_LEASE_LIST:
    case EMBED_LOCK_ACQUIRE:
    case EMBED_LOCK_RELEASE:
    case EMBED_LOCK_OWNER:
    case EMBED_PUT_FENCED:
    case EMBED_ELECT_PROCLAIM:
        return embed_lock_run(b, c);
    default:
        return BALLOT_EINVAL;
    }
    return embed_error(rv);
}
