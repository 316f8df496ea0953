/*
 * commands_lease.c - leases over the client protocol (docs/protocol.md,
 * "Leases"; the guarantees are docs/coordination.md's):
 *
 *   BLEASE GRANT ttl-ms [ID id]     -> [id, ttl-ms]
 *   BLEASE KEEPALIVE id             -> remaining ms
 *   BLEASE REVOKE id                -> keys deleted
 *   BLEASE TTL id [KEYS]            -> [remaining ms, granted ttl-ms,
 *                                       keys attached, [key...]]
 *   BLEASE LIST [AFTER id] [COUNT n] -> [id...]
 *   BPUT key value [LEASE id]       -> OK
 *
 * GRANT, REVOKE and BPUT are proposals and work inside BREQ (a retried
 * grant returns the first one's id instead of granting another);
 * KEEPALIVE is batched by the node (bnode_lease_keepalive) and may simply
 * be repeated. TTL is answered by the leader, which alone runs the lease
 * clock; LIST is a read on any node.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bnode.h"
#include "commands.h"
#include "kv.h"

/* Parses a lease id: a decimal in 1..2^63-1 (so that it is a RESP
 * integer). Replies and returns -1 if it is not one. */
static int parse_lease_id(struct cmd_req *r,
                          const char *s,
                          size_t len,
                          uint64_t *id)
{
    int64_t v;
    if (cmd_parse_i64(s, len, &v) != 0 || v < 1) {
        rep_error(r, "ERR lease id must be an integer from 1 to 2^63-1");
        return -1;
    }
    *id = (uint64_t)v;
    return 0;
}

/* Parses a TTL in ms: 1..KV_LEASE_TTL_MS_MAX. */
static int parse_ttl(struct cmd_req *r,
                     const char *s,
                     size_t len,
                     uint64_t *ttl)
{
    int64_t v;
    if (cmd_parse_i64(s, len, &v) != 0) {
        rep_error(r, "ERR lease TTL must be an integer number of ms");
        return -1;
    }
    if (v <= 0) {
        rep_error(r, "ERR lease TTL must be positive (ms)");
        return -1;
    }
    if ((uint64_t)v > KV_LEASE_TTL_MS_MAX) {
        rep_errorf(r, "ERR lease TTL above the maximum of %llu ms",
                   (unsigned long long)KV_LEASE_TTL_MS_MAX);
        return -1;
    }
    *ttl = (uint64_t)v;
    return 0;
}

/* Replies with a lease command's node error (a clock that a new leader
 * does not know yet reads like a read that could not be confirmed). */
static void lease_node_error(struct cmd_req *r, int rc, bool write)
{
    if (rc == BNODE_ELEASENOTREADY) {
        rep_error(r,
                  "TRYAGAIN a new leader does not know the lease clock yet: "
                  "retry");
    } else if (rc == BNODE_ENOLEASE) {
        rep_error(r, "ERR no such lease");
    } else {
        rep_node_error(r, rc, write);
    }
}

/* ---------------------------------------------------------------------- */
/* GRANT and REVOKE                                                        */

struct lease_req
{
    struct cmd_req *r;
    uint64_t client_id;
    uint64_t seq;
    uint64_t id;  /* grant */
    uint64_t ttl; /* grant */
};

static bool lease_write_ok(struct cmd_req *r,
                           int status,
                           const struct kv_entry_result *res)
{
    if (status != 0) {
        rep_node_error(r, status, true);
        return false;
    }
    if (res->code == KV_ENOLEASE) {
        rep_error(r, "ERR no such lease");
        return false;
    }
    if (res->code == KV_ELEASEEXISTS) {
        rep_error(r, "ERR a lease with that id already exists");
        return false;
    }
    if (res->code == KV_ELEASESFULL) {
        rep_errorf(r, "ERR too many leases: at most %u exist at once",
                   KV_LEASES_MAX);
        return false;
    }
    return cmd_write_ok(r, status, res);
}

static void grant_done(void *arg, int status, const struct kv_entry_result *res)
{
    struct lease_req q = *(struct lease_req *)arg;
    free(arg);
    if (lease_write_ok(q.r, status, res)) {
        if (res->duplicate || res->superseded) {
            /* A retry: the stored reply names the first grant's id. */
            rep_session_outcome(q.r, res, q.client_id, q.seq);
        } else {
            rep_array(q.r, 2);
            rep_int(q.r, (int64_t)q.id);
            rep_int(q.r, (int64_t)q.ttl);
        }
    }
    cmd_req_finish(q.r);
}

static void revoke_done(void *arg,
                        int status,
                        const struct kv_entry_result *res)
{
    struct lease_req q = *(struct lease_req *)arg;
    free(arg);
    if (lease_write_ok(q.r, status, res)) {
        if (res->superseded || (res->duplicate && !res->result_kept)) {
            rep_session_outcome(q.r, res, q.client_id, q.seq);
        } else {
            rep_int(q.r, res->n_ops > 0 ? (int64_t)res->ops[0].count : 0);
        }
    }
    cmd_req_finish(q.r);
}

static void lease_grant(struct cmd_req *r,
                        size_t argc,
                        const char *const *argv,
                        const size_t *argvlen,
                        uint64_t client_id,
                        uint64_t seq)
{
    struct bnode *node = r->client->env->node;
    uint64_t ttl = 0, id = 0, clock = 0;
    char reply[64];
    if (argc != 3 && argc != 5) {
        rep_error(r, "ERR syntax: BLEASE GRANT ttl-ms [ID id]");
        goto done;
    }
    if (parse_ttl(r, argv[2], argvlen[2], &ttl) != 0) {
        goto done;
    }
    if (argc == 5) {
        if (!cmd_arg_is(argv[3], argvlen[3], "id")) {
            rep_error(r, "ERR syntax: BLEASE GRANT ttl-ms [ID id]");
            goto done;
        }
        if (parse_lease_id(r, argv[4], argvlen[4], &id) != 0) {
            goto done;
        }
    }
    int rc = bnode_lease_clock(node, &clock);
    if (rc != 0) {
        lease_node_error(r, rc, true);
        goto done;
    }
    if (id == 0) {
        /* Unique across the cluster without a round trip; a retry inside
         * BREQ gets the first grant's id from the stored reply. */
        uint64_t behind = 0;
        if ((rc = bnode_snowflake(node, &id, 1, &behind)) != 0) {
            rep_errorf(r, "ERR cannot choose a lease id: %s (give one: ID)",
                       bnode_strerror(rc));
            goto done;
        }
    }
    struct lease_req *q = malloc(sizeof(*q));
    if (q == NULL) {
        rep_error(r, "ERR out of memory");
        goto done;
    }
    q->r = r;
    q->client_id = client_id;
    q->seq = seq;
    q->id = id;
    q->ttl = ttl;
    int n = snprintf(reply, sizeof(reply),
                     "*2\r\n:%" PRIu64 "\r\n:%" PRIu64 "\r\n", id, ttl);
    struct kv_cmd cmd;
    memset(&cmd, 0, sizeof(cmd));
    cmd.type = KV_CMD_LEASE_GRANT;
    cmd.lease_ids = &id;
    cmd.n_lease_ids = 1;
    cmd.ttl_ms = ttl;
    cmd.clock = clock;
    /* The reply is known before the write: it is stored with the request
     * id, so that a retry gets the id this grant chose. */
    if (client_id != 0) {
        cmd.reply = (const uint8_t *)reply;
        cmd.reply_len = (uint32_t)n;
        cmd.client_id = client_id;
        cmd.seq = seq;
    }
    cmd_propose(r, &cmd, grant_done, q);
    return;
done:
    cmd_req_finish(r);
}

static void lease_revoke(struct cmd_req *r,
                         size_t argc,
                         const char *const *argv,
                         const size_t *argvlen,
                         uint64_t client_id,
                         uint64_t seq)
{
    uint64_t id = 0;
    if (argc != 3) {
        rep_error(r, "ERR syntax: BLEASE REVOKE id");
        cmd_req_finish(r);
        return;
    }
    if (parse_lease_id(r, argv[2], argvlen[2], &id) != 0) {
        cmd_req_finish(r);
        return;
    }
    struct lease_req *q = malloc(sizeof(*q));
    if (q == NULL) {
        rep_error(r, "ERR out of memory");
        cmd_req_finish(r);
        return;
    }
    q->r = r;
    q->client_id = client_id;
    q->seq = seq;
    struct kv_cmd cmd;
    memset(&cmd, 0, sizeof(cmd));
    cmd.type = KV_CMD_LEASE_REVOKE;
    cmd.lease_ids = &id;
    cmd.n_lease_ids = 1;
    /* The keys deleted are known at apply time only: the store keeps the
     * result for a retry. */
    cmd.client_id = client_id;
    cmd.seq = seq;
    cmd.keep_result = client_id != 0;
    cmd_propose(r, &cmd, revoke_done, q);
}

/* ---------------------------------------------------------------------- */
/* KEEPALIVE                                                               */

static void keepalive_done(void *arg, int status, uint64_t remaining_ms)
{
    struct cmd_req *r = arg;
    if (status == 0) {
        rep_int(r, (int64_t)remaining_ms);
    } else {
        lease_node_error(r, status, true);
    }
    cmd_req_finish(r);
}

static void lease_keepalive(struct cmd_req *r,
                            size_t argc,
                            const char *const *argv,
                            const size_t *argvlen)
{
    uint64_t id = 0;
    if (argc != 3) {
        rep_error(r, "ERR syntax: BLEASE KEEPALIVE id");
        cmd_req_finish(r);
        return;
    }
    if (parse_lease_id(r, argv[2], argvlen[2], &id) != 0) {
        cmd_req_finish(r);
        return;
    }
    int rc = bnode_lease_keepalive(r->client->env->node, id, keepalive_done, r);
    if (rc != 0) {
        lease_node_error(r, rc, true);
        cmd_req_finish(r);
    }
}

/* ---------------------------------------------------------------------- */
/* TTL and LIST                                                            */

static void ttl_read(struct cmd_req *r,
                     struct kv_store *kv,
                     size_t argc,
                     const char *const *argv,
                     const size_t *argvlen)
{
    uint64_t id = 0, clock = 0;
    struct kv_lease l;
    bool with_keys = argc == 4;
    (void)argvlen;
    id = strtoull(argv[2], NULL, 10); /* checked before the barrier */
    int rc = bnode_lease_clock(r->client->env->node, &clock);
    if (rc != 0) {
        lease_node_error(r, rc, false);
        return;
    }
    rc = kv_lease_get(kv, id, &l);
    if (rc == KV_ENOTFOUND) {
        rep_error(r, "ERR no such lease");
        return;
    }
    if (rc != 0) {
        rep_errorf(r, "ERR store read failed: %s", kv_strerror(rc));
        return;
    }
    struct kv_range_result keys;
    memset(&keys, 0, sizeof(keys));
    if (with_keys && (rc = kv_lease_keys(kv, id, 0, &keys)) != 0) {
        kv_range_result_free(&keys);
        rep_errorf(r, "ERR store read failed: %s", kv_strerror(rc));
        return;
    }
    rep_array(r, 4);
    rep_int(r, l.deadline > clock ? (int64_t)(l.deadline - clock) : 0);
    rep_int(r, (int64_t)l.ttl_ms);
    rep_int(r, (int64_t)l.keys);
    rep_array(r, keys.n_kvs);
    for (size_t i = 0; i < keys.n_kvs; i++) {
        rep_bulk(r, keys.kvs[i].key, keys.kvs[i].key_len);
    }
    kv_range_result_free(&keys);
}

static void list_read(struct cmd_req *r,
                      struct kv_store *kv,
                      size_t argc,
                      const char *const *argv,
                      const size_t *argvlen)
{
    uint64_t after = 0, count = 1000;
    (void)argvlen;
    for (size_t i = 2; i + 1 < argc; i += 2) {
        uint64_t v = strtoull(argv[i + 1], NULL, 10);
        if (cmd_arg_is(argv[i], strlen(argv[i]), "after")) {
            after = v;
        } else {
            count = v;
        }
    }
    uint64_t *ids = malloc(count * sizeof(*ids));
    size_t n = 0;
    bool more = false;
    int rc = ids != NULL ? kv_lease_list(kv, after, ids, count, &n, &more)
                         : KV_ENOMEM;
    if (rc != 0) {
        rep_errorf(r, "ERR store read failed: %s", kv_strerror(rc));
    } else {
        rep_array(r, n);
        for (size_t i = 0; i < n; i++) {
            rep_int(r, (int64_t)ids[i]);
        }
    }
    free(ids);
}

/* Checks LIST's options before the barrier; replies on error. */
static int list_check(struct cmd_req *r,
                      size_t argc,
                      const char *const *argv,
                      const size_t *argvlen)
{
    for (size_t i = 2; i < argc; i += 2) {
        int64_t v;
        bool after = cmd_arg_is(argv[i], argvlen[i], "after");
        if ((!after && !cmd_arg_is(argv[i], argvlen[i], "count")) ||
            i + 1 >= argc) {
            rep_error(r, "ERR syntax: BLEASE LIST [AFTER id] [COUNT n]");
            return -1;
        }
        if (cmd_parse_i64(argv[i + 1], argvlen[i + 1], &v) != 0 || v < 0 ||
            (!after && (v < 1 || v > (int64_t)KV_LEASE_LIST_MAX))) {
            rep_errorf(r, "ERR %s must be %s", after ? "AFTER" : "COUNT",
                       after ? "a lease id" : "1 to 10000");
            return -1;
        }
    }
    return 0;
}

/* ---------------------------------------------------------------------- */
/* BLEASE and BPUT                                                         */

void cmd_blease_req(struct cmd_req *r,
                    size_t argc,
                    const char *const *argv,
                    const size_t *argvlen,
                    uint64_t client_id,
                    uint64_t seq)
{
    const char *sub = argv[1];
    size_t n = argvlen[1];
    uint64_t id;
    if (cmd_arg_is(sub, n, "grant")) {
        lease_grant(r, argc, argv, argvlen, client_id, seq);
    } else if (cmd_arg_is(sub, n, "revoke")) {
        lease_revoke(r, argc, argv, argvlen, client_id, seq);
    } else if (cmd_arg_is(sub, n, "keepalive")) {
        lease_keepalive(r, argc, argv, argvlen);
    } else if (cmd_arg_is(sub, n, "ttl")) {
        if ((argc != 3 && argc != 4) ||
            (argc == 4 && !cmd_arg_is(argv[3], argvlen[3], "keys"))) {
            rep_error(r, "ERR syntax: BLEASE TTL id [KEYS]");
            cmd_req_finish(r);
        } else if (parse_lease_id(r, argv[2], argvlen[2], &id) != 0) {
            cmd_req_finish(r);
        } else {
            cmd_read_start(r, ttl_read, argc, argv, argvlen);
        }
    } else if (cmd_arg_is(sub, n, "list")) {
        if (list_check(r, argc, argv, argvlen) != 0) {
            cmd_req_finish(r);
        } else {
            cmd_read_start(r, list_read, argc, argv, argvlen);
        }
    } else {
        rep_errorf(r,
                   "ERR unknown BLEASE subcommand '%.*s' (GRANT, KEEPALIVE, "
                   "REVOKE, TTL, LIST)",
                   (int)(n > 32 ? 32 : n), sub);
        cmd_req_finish(r);
    }
}

CMD_DECL(cmd_blease)
{
    cmd_blease_req(r, argc, argv, argvlen, 0, 0);
}

int cmd_blease_order(size_t argc,
                     const char *const *argv,
                     const size_t *argvlen)
{
    (void)argc;
    if (cmd_arg_is(argv[1], argvlen[1], "ttl") ||
        cmd_arg_is(argv[1], argvlen[1], "list")) {
        return CMD_ORDER_READ;
    }
    return CMD_ORDER_WRITE;
}

static void bput_done(void *arg, int status, const struct kv_entry_result *res)
{
    struct lease_req q = *(struct lease_req *)arg;
    free(arg);
    if (lease_write_ok(q.r, status, res)) {
        if (res->duplicate || res->superseded) {
            rep_session_outcome(q.r, res, q.client_id, q.seq);
        } else {
            rep_ok(q.r);
        }
    }
    cmd_req_finish(q.r);
}

void cmd_bput_req(struct cmd_req *r,
                  size_t argc,
                  const char *const *argv,
                  const size_t *argvlen,
                  uint64_t client_id,
                  uint64_t seq)
{
    static const char ok[] = "+OK\r\n";
    uint64_t lease = 0;
    if (argc != 3 && argc != 5) {
        rep_error(r, "ERR syntax: BPUT key value [LEASE id]");
        cmd_req_finish(r);
        return;
    }
    if (!cmd_check_key(r, argvlen[1]) || !cmd_check_value(r, argvlen[2])) {
        cmd_req_finish(r);
        return;
    }
    if (argc == 5 && !cmd_arg_is(argv[3], argvlen[3], "lease")) {
        rep_error(r, "ERR syntax: BPUT key value [LEASE id]");
        cmd_req_finish(r);
        return;
    }
    if (argc == 5 && parse_lease_id(r, argv[4], argvlen[4], &lease) != 0) {
        cmd_req_finish(r);
        return;
    }
    struct lease_req *q = malloc(sizeof(*q));
    if (q == NULL) {
        rep_error(r, "ERR out of memory");
        cmd_req_finish(r);
        return;
    }
    q->r = r;
    q->client_id = client_id;
    q->seq = seq;
    struct kv_cmd cmd;
    memset(&cmd, 0, sizeof(cmd));
    cmd.type = KV_CMD_PUT;
    cmd.op.type = KV_OP_PUT;
    cmd.op.key = (const uint8_t *)argv[1];
    cmd.op.key_len = (uint32_t)argvlen[1];
    cmd.op.value = (const uint8_t *)argv[2];
    cmd.op.value_len = (uint32_t)argvlen[2];
    cmd.op.lease = lease;
    if (client_id != 0) {
        cmd.client_id = client_id;
        cmd.seq = seq;
        cmd.reply = (const uint8_t *)ok;
        cmd.reply_len = (uint32_t)(sizeof(ok) - 1);
    }
    cmd_propose(r, &cmd, bput_done, q);
}

CMD_DECL(cmd_bput)
{
    cmd_bput_req(r, argc, argv, argvlen, 0, 0);
}
