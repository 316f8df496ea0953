/*
 * embed_lease.c - leases in the public API (ballot_lease_*,
 * ballot_put_lease): calls built on the caller's thread, run on the loop
 * through the node's header (bnode_lease_clock, bnode_lease_keepalive,
 * proposals of kv's lease commands), and their results.
 */
#include <stdlib.h>
#include <string.h>

#include "embed_internal.h"
#include "kv.h"

int embed_call_lease(enum embed_kind kind,
                     uint64_t id,
                     uint64_t ttl_ms,
                     const void *key,
                     size_t key_len,
                     const void *value,
                     size_t value_len,
                     const struct ballot_reqid *rid,
                     struct embed_call **out)
{
    struct kv_cmd cmd;
    memset(&cmd, 0, sizeof(cmd));
    if ((kind != EMBED_LEASE_GRANT && id == 0) || id > (uint64_t)INT64_MAX) {
        return BALLOT_EINVAL;
    }
    if (kind == EMBED_LEASE_GRANT &&
        (ttl_ms == 0 || ttl_ms > BALLOT_LEASE_TTL_MAX_MS)) {
        return BALLOT_EINVAL;
    }
    if (rid != NULL &&
        (rid->client_id == 0 || rid->client_id > KV_SESSION_CLIENT_MAX ||
         rid->seq == 0)) {
        return BALLOT_EINVAL;
    }
    if (kind == EMBED_PUT_LEASE) {
        if ((key == NULL && key_len > 0) || (value == NULL && value_len > 0) ||
            key_len == 0) {
            return BALLOT_EINVAL;
        }
        if (key_len > KV_KEY_BYTES_MAX || value_len > KV_VALUE_BYTES_MAX) {
            return BALLOT_ETOOBIG;
        }
        cmd.type = KV_CMD_PUT;
        cmd.op.type = KV_OP_PUT;
        cmd.op.key = key;
        cmd.op.key_len = (uint32_t)key_len;
        cmd.op.value = value_len > 0 ? value : (const uint8_t *)"";
        cmd.op.value_len = (uint32_t)value_len;
        cmd.op.lease = id;
    } else if (kind == EMBED_LEASE_REVOKE) {
        cmd.type = KV_CMD_LEASE_REVOKE;
        cmd.lease_ids = &id;
        cmd.n_lease_ids = 1;
    }
    if (rid != NULL && kind != EMBED_LEASE_GRANT) {
        cmd.client_id = rid->client_id;
        cmd.seq = rid->seq;
        cmd.keep_result = true;
    }
    struct embed_call *c = calloc(1, sizeof(*c));
    if (c == NULL) {
        return BALLOT_ENOMEM;
    }
    c->kind = kind;
    c->id = id;
    c->ttl_ms = ttl_ms;
    if (rid != NULL) {
        c->rid_client = rid->client_id;
        c->rid_seq = rid->seq;
    }
    if (cmd.type != 0) {
        size_t size = kv_cmd_encoded_size(&cmd);
        if (size == 0 || (c->cmd = malloc(size)) == NULL ||
            kv_cmd_encode(&cmd, c->cmd, size, &c->cmd_len) != 0) {
            embed_call_free(c);
            return size == 0 ? BALLOT_ETOOBIG : BALLOT_ENOMEM;
        }
    }
    *out = c;
    return 0;
}

/* Delivers a result of one or two counts (and keys) and frees @c. */
static void deliver(struct embed_call *c,
                    int status,
                    uint64_t revision,
                    bool duplicate,
                    uint64_t count0,
                    uint64_t count1,
                    size_t n_ops,
                    const struct ballot_kv *kvs,
                    size_t n_kvs)
{
    struct ballot_op_result ops[2];
    struct ballot_result res;
    memset(ops, 0, sizeof(ops));
    memset(&res, 0, sizeof(res));
    res.status = status;
    if (status == 0) {
        res.revision = revision;
        res.succeeded = true;
        res.duplicate = duplicate;
        ops[0].type = BALLOT_OP_GET;
        ops[0].count = count0;
        ops[0].kvs = kvs;
        ops[0].n_kvs = n_kvs;
        ops[1].type = BALLOT_OP_GET;
        ops[1].count = count1;
        res.ops = ops;
        res.n_ops = n_ops;
    }
    c->cb(c->arg, &res);
    embed_call_free(c);
}

/* The status of a lease write that reached the log. */
static int write_status(int status, const struct kv_entry_result *er)
{
    if (status != 0) {
        return embed_error(status);
    }
    switch (er->code) {
    case 0:
        return er->superseded ? BALLOT_ESTALE : 0;
    case KV_ENOLEASE:
        return BALLOT_ENOLEASE;
    case KV_ELEASEEXISTS:
        return BALLOT_ELEASEEXISTS;
    default:
        return BALLOT_EREFUSED;
    }
}

static void on_grant(void *arg, int status, const struct kv_entry_result *er)
{
    struct embed_call *c = arg;
    int st = write_status(status, er);
    uint64_t id = c->id;
    if (st == 0 && er->duplicate) {
        /* The first grant's id, stored as its reply. */
        if (er->reply == NULL || er->reply_len != 8) {
            st = BALLOT_EREFUSED;
        } else {
            id = 0;
            for (unsigned i = 0; i < 8; i++) {
                id |= (uint64_t)er->reply[i] << (8 * i);
            }
        }
    }
    uint64_t rev =
        st == 0 ? (er->duplicate ? er->session_revision : er->revision) : 0;
    deliver(c, st, rev, st == 0 && er->duplicate, id, 0, 1, NULL, 0);
}

static void on_revoke(void *arg, int status, const struct kv_entry_result *er)
{
    struct embed_call *c = arg;
    int st = write_status(status, er);
    uint64_t n = st == 0 && er->n_ops > 0 ? er->ops[0].count : 0;
    uint64_t rev =
        st == 0 ? (er->duplicate ? er->session_revision : er->revision) : 0;
    if (st == 0 && er->duplicate && !er->result_kept) {
        st = BALLOT_EREFUSED; /* the id was used by another command */
    }
    deliver(c, st, rev, st == 0 && er->duplicate, n, 0, 1, NULL, 0);
}

static void on_put(void *arg, int status, const struct kv_entry_result *er)
{
    struct embed_call *c = arg;
    int st = write_status(status, er);
    uint64_t rev =
        st == 0 ? (er->duplicate ? er->session_revision : er->revision) : 0;
    deliver(c, st, rev, st == 0 && er->duplicate, 1, 0, 1, NULL, 0);
}

static void on_keepalive(void *arg, int status, uint64_t remaining_ms)
{
    struct embed_call *c = arg;
    deliver(c, embed_error(status), 0, false, remaining_ms, 0, 1, NULL, 0);
}

static void on_ttl(void *arg, int status)
{
    struct embed_call *c = arg;
    struct kv_store *kv = bnode_kv(c->b->node);
    struct kv_lease l;
    struct kv_range_result keys;
    uint64_t clock = 0;
    memset(&keys, 0, sizeof(keys));
    if (status != 0) {
        deliver(c, embed_error(status), 0, false, 0, 0, 0, NULL, 0);
        return;
    }
    int rv = bnode_lease_clock(c->b->node, &clock);
    if (rv != 0) {
        deliver(c, embed_error(rv), 0, false, 0, 0, 0, NULL, 0);
        return;
    }
    rv = kv_lease_get(kv, c->id, &l);
    if (rv == 0) {
        rv = kv_lease_keys(kv, c->id, 0, &keys);
    }
    if (rv != 0) {
        kv_range_result_free(&keys);
        deliver(c,
                rv == KV_ENOTFOUND ? BALLOT_ENOLEASE
                : rv == KV_ENOMEM  ? BALLOT_ENOMEM
                                   : BALLOT_ESTORAGE,
                0, false, 0, 0, 0, NULL, 0);
        return;
    }
    struct ballot_kv *kvs =
        keys.n_kvs > 0 ? calloc(keys.n_kvs, sizeof(*kvs)) : NULL;
    if (keys.n_kvs > 0 && kvs == NULL) {
        kv_range_result_free(&keys);
        deliver(c, BALLOT_ENOMEM, 0, false, 0, 0, 0, NULL, 0);
        return;
    }
    for (size_t i = 0; i < keys.n_kvs; i++) {
        kvs[i].key = keys.kvs[i].key;
        kvs[i].key_len = keys.kvs[i].key_len;
    }
    deliver(c, 0, keys.revision, false,
            l.deadline > clock ? l.deadline - clock : 0, l.ttl_ms, 2, kvs,
            keys.n_kvs);
    free(kvs);
    kv_range_result_free(&keys);
}

int embed_lease_run(struct ballot *b, struct embed_call *c)
{
    struct bnode *node = b->node;
    uint64_t clock = 0;
    int rv;
    switch (c->kind) {
    case EMBED_LEASE_GRANT: {
        if ((rv = bnode_lease_clock(node, &clock)) != 0) {
            return embed_error(rv);
        }
        if (c->id == 0 && (rv = bnode_snowflake(node, &c->id, 1, NULL)) != 0) {
            return rv == BNODE_ECLOCK ? BALLOT_ECLOCK : embed_error(rv);
        }
        /* The id is the reply a retry gets back (request ids). */
        uint8_t reply[8];
        for (unsigned i = 0; i < 8; i++) {
            reply[i] = (uint8_t)(c->id >> (8 * i));
        }
        struct kv_cmd cmd;
        uint8_t buf[128];
        size_t len = 0;
        memset(&cmd, 0, sizeof(cmd));
        cmd.type = KV_CMD_LEASE_GRANT;
        cmd.lease_ids = &c->id;
        cmd.n_lease_ids = 1;
        cmd.ttl_ms = c->ttl_ms;
        cmd.clock = clock;
        if (c->rid_client != 0) {
            cmd.client_id = c->rid_client;
            cmd.seq = c->rid_seq;
            cmd.reply = reply;
            cmd.reply_len = sizeof(reply);
        }
        if (kv_cmd_encode(&cmd, buf, sizeof(buf), &len) != 0) {
            return BALLOT_EINVAL;
        }
        rv = bnode_propose(node, buf, len, on_grant, c);
        break;
    }
    case EMBED_LEASE_KEEPALIVE:
        rv = bnode_lease_keepalive(node, c->id, on_keepalive, c);
        break;
    case EMBED_LEASE_REVOKE:
        rv = bnode_propose(node, c->cmd, c->cmd_len, on_revoke, c);
        break;
    case EMBED_PUT_LEASE:
        rv = bnode_propose(node, c->cmd, c->cmd_len, on_put, c);
        break;
    default: /* EMBED_LEASE_TTL */
        rv = bnode_read(node, true, on_ttl, c);
        break;
    }
    return embed_error(rv);
}
