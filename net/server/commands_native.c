/*
 * commands_native.c - the commands Redis lacks (BRANGE, BTXN) and DEL, each
 * built as one kv read or one kv command directly, without the view of
 * commands_view.c; and BREQ, which hands a write with a request id to the
 * view (docs/protocol.md, "BREQ").
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "acl.h"
#include "bnode.h"
#include "commands.h"
#include "kv.h"

/* ---------------------------------------------------------------------- */
/* BRANGE                                                                  */

struct brange_args
{
    uint8_t flags;
    uint64_t limit;
};

static int brange_parse(struct cmd_req *r,
                        size_t argc,
                        const char *const *argv,
                        const size_t *argvlen,
                        struct brange_args *a)
{
    memset(a, 0, sizeof(*a));
    if (argvlen[1] > KV_KEY_BYTES_MAX || argvlen[2] > KV_KEY_BYTES_MAX) {
        rep_errorf(r, "ERR key too long: ballot's limit is %u bytes",
                   KV_KEY_BYTES_MAX);
        return -1;
    }
    for (size_t i = 3; i < argc; i++) {
        const char *s = argv[i];
        size_t n = argvlen[i];
        if (cmd_arg_is(s, n, "limit") && i + 1 < argc) {
            int64_t l;
            if (cmd_parse_i64(argv[i + 1], argvlen[i + 1], &l) != 0 || l < 0) {
                rep_error(r, "ERR value is not an integer or out of range");
                return -1;
            }
            a->limit = (uint64_t)l;
            i++;
        } else if (cmd_arg_is(s, n, "prefix")) {
            a->flags |= KV_FLAG_PREFIX;
        } else if (cmd_arg_is(s, n, "reverse")) {
            a->flags |= KV_FLAG_REVERSE;
        } else if (cmd_arg_is(s, n, "keysonly")) {
            a->flags |= KV_FLAG_KEYS_ONLY;
        } else if (cmd_arg_is(s, n, "countonly")) {
            a->flags |= KV_FLAG_COUNT_ONLY;
        } else {
            rep_error(r, "ERR syntax error");
            return -1;
        }
    }
    if ((a->flags & KV_FLAG_PREFIX) && argvlen[2] != 0) {
        rep_error(r, "ERR BRANGE with PREFIX takes an empty end");
        return -1;
    }
    return 0;
}

static void brange_read(struct cmd_req *r,
                        struct kv_store *kv,
                        size_t argc,
                        const char *const *argv,
                        const size_t *argvlen)
{
    struct brange_args a;
    const uint8_t one_zero[1] = {0};
    if (brange_parse(r, argc, argv, argvlen, &a) != 0) {
        return;
    }
    /* An empty end means "to the end of the key space". */
    struct kv_range_req req = {
        (const uint8_t *)argv[1],
        argvlen[2] ? (const uint8_t *)argv[2] : one_zero,
        (uint32_t)argvlen[1],
        argvlen[2] ? (uint32_t)argvlen[2] : 1,
        a.flags,
        a.limit,
    };
    struct kv_range_result res;
    int rc = kv_range(kv, &req, &res);
    if (rc != 0) {
        kv_range_result_free(&res);
        rep_errorf(r, "ERR store read failed: %s", kv_strerror(rc));
        return;
    }
    bool keys_only = (a.flags & KV_FLAG_KEYS_ONLY) != 0;
    rep_array(r, 4);
    rep_int(r, (int64_t)res.revision);
    rep_int(r, (int64_t)res.count);
    rep_int(r, res.more ? 1 : 0);
    rep_array(r, res.n_kvs * (keys_only ? 1 : 2));
    for (size_t i = 0; i < res.n_kvs; i++) {
        rep_bulk(r, res.kvs[i].key, res.kvs[i].key_len);
        if (!keys_only) {
            rep_bulk(r, res.kvs[i].value, res.kvs[i].value_len);
        }
    }
    kv_range_result_free(&res);
}

CMD_DECL(cmd_brange)
{
    struct brange_args a;
    if (brange_parse(r, argc, argv, argvlen, &a) != 0) {
        cmd_req_finish(r);
        return;
    }
    cmd_read_start(r, brange_read, argc, argv, argvlen);
}

/* ---------------------------------------------------------------------- */
/* Proposals: DEL and BTXN                                                 */

void cmd_propose(struct cmd_req *r,
                 const struct kv_cmd *cmd_in,
                 bnode_write_cb cb,
                 void *arg)
{
    /* Every write carries who proposed it, checked again at apply time
     * (acl.h). */
    struct kv_cmd stamped = *cmd_in;
    const struct kv_cmd *cmd = &stamped;
    acl_stamp(r, &stamped);
    cmd_fence_stamp(r, &stamped);
    size_t size = kv_cmd_encoded_size(cmd);
    uint8_t *buf = size > 0 ? malloc(size) : NULL;
    size_t len = 0;
    int rc = 0;
    if (size == 0) {
        rep_error(r, "ERR the command exceeds ballot's limits");
    } else if (buf == NULL || kv_cmd_encode(cmd, buf, size, &len) != 0) {
        rep_error(r, "ERR could not encode the command");
    } else if ((rc = bnode_propose(r->client->env->node, buf, len, cb, arg)) !=
               0) {
        rep_node_error(r, rc, true);
    } else {
        free(buf); /* bnode_propose copies it */
        return;
    }
    free(buf);
    if (arg != r) {
        free(arg);
    }
    cmd_req_finish(r);
}

bool cmd_write_ok(struct cmd_req *r,
                  int status,
                  const struct kv_entry_result *res)
{
    if (status != 0) {
        rep_node_error(r, status, true);
        return false;
    }
    if (res->code == KV_ENOPERM) {
        acl_rep_refused(r);
        return false;
    }
    if (res->code == KV_EFENCED) {
        rep_error(r, CMD_FENCED_REPLY);
        return false;
    }
    if (res->code != 0) {
        rep_errorf(r, "ERR the state machine refused the command: %s",
                   kv_strerror(res->code));
        return false;
    }
    return true;
}

bool cmd_kept_result_ok(struct cmd_req *r,
                        int status,
                        const struct kv_entry_result *res,
                        uint64_t client_id,
                        uint64_t seq)
{
    if (!cmd_write_ok(r, status, res)) {
        return false;
    }
    if (res->superseded || (res->duplicate && !res->result_kept) ||
        res->result_elided) {
        rep_session_outcome(r, res, client_id, seq);
        return false;
    }
    return true;
}

void rep_applied_by_another(struct cmd_req *r,
                            const struct kv_entry_result *res)
{
    rep_errorf(r,
               "ERR request id already applied at revision %" PRIu64
               " by a different command",
               res->duplicate ? res->session_revision : res->revision);
}

static void del_done(void *arg, int status, const struct kv_entry_result *res)
{
    struct cmd_req *r = arg;
    if (cmd_write_ok(r, status, res)) {
        uint64_t n = 0;
        for (size_t i = 0; i < res->n_ops; i++) {
            n += res->ops[i].count;
        }
        rep_int(r, (int64_t)n);
    }
    cmd_req_finish(r);
}

CMD_DECL(cmd_del)
{
    struct kv_op ops[KV_TXN_OPS_MAX];
    size_t n = 0;
    if (argc - 1 > KV_TXN_OPS_MAX) {
        rep_errorf(r, "ERR a write may change at most %u keys in ballot",
                   KV_TXN_OPS_MAX);
        cmd_req_finish(r);
        return;
    }
    for (size_t i = 1; i < argc; i++) {
        if (argvlen[i] == 0 || argvlen[i] > KV_KEY_BYTES_MAX) {
            continue; /* never stored, so never deleted */
        }
        memset(&ops[n], 0, sizeof(ops[n]));
        ops[n].type = KV_OP_DELETE;
        ops[n].key = (const uint8_t *)argv[i];
        ops[n].key_len = (uint32_t)argvlen[i];
        n++;
    }
    if (n == 0) {
        rep_int(r, 0);
        cmd_req_finish(r);
        return;
    }
    struct kv_cmd cmd;
    memset(&cmd, 0, sizeof(cmd));
    cmd.type = KV_CMD_TXN;
    cmd.then_ops = ops;
    cmd.n_then = (uint32_t)n;
    cmd_propose(r, &cmd, del_done, r);
}

/* A BTXN in flight: the request id it carries (BREQ), for its reply. */
struct btxn_req
{
    struct cmd_req *r;
    uint64_t client_id;
    uint64_t seq;
};

static void btxn_done(void *arg, int status, const struct kv_entry_result *res)
{
    struct btxn_req b = *(struct btxn_req *)arg;
    struct cmd_req *r = b.r;
    free(arg);
    if (!cmd_kept_result_ok(r, status, res, b.client_id, b.seq)) {
        cmd_req_finish(r);
        return;
    }
    /* A retry of an applied request id gets the first application's
     * outcome, kept by the store: its branch, revision and reads. */
    rep_array(r, 3);
    rep_int(r, res->succeeded ? 1 : 0);
    rep_int(r,
            (int64_t)(res->duplicate ? res->session_revision : res->revision));
    rep_array(r, res->n_ops);
    for (size_t i = 0; i < res->n_ops; i++) {
        const struct kv_op_result *o = &res->ops[i];
        switch (o->type) {
        case KV_OP_PUT:
            rep_ok(r);
            break;
        case KV_OP_RANGE:
            if (o->n_kvs > 0) {
                rep_bulk(r, o->kvs[0].value, o->kvs[0].value_len);
            } else {
                rep_null(r);
            }
            break;
        default:
            rep_int(r, (int64_t)o->count);
            break;
        }
    }
    cmd_req_finish(r);
}

/* Parses "<n> op..." of BTXN at *i into @ops; -1 after replying. */
static int btxn_ops(struct cmd_req *r,
                    size_t argc,
                    const char *const *argv,
                    const size_t *argvlen,
                    size_t *i,
                    struct kv_op *ops,
                    uint32_t *n_ops)
{
    static const uint8_t one_zero[1] = {0};
    int64_t n;
    if (*i >= argc || cmd_parse_i64(argv[*i], argvlen[*i], &n) != 0 || n < 0) {
        rep_error(r, "ERR BTXN: expected an operation count");
        return -1;
    }
    if (n > (int64_t)KV_TXN_OPS_MAX) {
        rep_errorf(r, "ERR BTXN: at most %u operations per branch",
                   KV_TXN_OPS_MAX);
        return -1;
    }
    (*i)++;
    for (int64_t k = 0; k < n; k++) {
        struct kv_op *op = &ops[k];
        memset(op, 0, sizeof(*op));
        size_t a = *i;
        size_t need;
        if (a >= argc) {
            rep_error(r, "ERR BTXN: missing operation");
            return -1;
        }
        if (cmd_arg_is(argv[a], argvlen[a], "put")) {
            op->type = KV_OP_PUT;
            need = 3;
        } else if (cmd_arg_is(argv[a], argvlen[a], "del")) {
            op->type = KV_OP_DELETE;
            need = 2;
        } else if (cmd_arg_is(argv[a], argvlen[a], "delrange")) {
            op->type = KV_OP_DELETE_RANGE;
            need = 3;
        } else if (cmd_arg_is(argv[a], argvlen[a], "get")) {
            op->type = KV_OP_RANGE;
            need = 2;
        } else {
            rep_errorf(r, "ERR BTXN: unknown operation '%.*s'",
                       (int)(argvlen[a] > 64 ? 64 : argvlen[a]), argv[a]);
            return -1;
        }
        if (a + need > argc) {
            rep_error(r, "ERR BTXN: missing operation arguments");
            return -1;
        }
        op->key = (const uint8_t *)argv[a + 1];
        op->key_len = (uint32_t)argvlen[a + 1];
        if (op->type != KV_OP_DELETE_RANGE &&
            !cmd_check_key(r, argvlen[a + 1])) {
            return -1;
        }
        if (argvlen[a + 1] > KV_KEY_BYTES_MAX) {
            (void)cmd_check_key(r, argvlen[a + 1]);
            return -1;
        }
        if (op->type == KV_OP_PUT) {
            if (!cmd_check_value(r, argvlen[a + 2])) {
                return -1;
            }
            op->value = (const uint8_t *)argv[a + 2];
            op->value_len = (uint32_t)argvlen[a + 2];
        } else if (op->type == KV_OP_DELETE_RANGE) {
            if (argvlen[a + 2] > KV_KEY_BYTES_MAX) {
                (void)cmd_check_key(r, argvlen[a + 2]);
                return -1;
            }
            op->end = argvlen[a + 2] ? (const uint8_t *)argv[a + 2] : one_zero;
            op->end_len = argvlen[a + 2] ? (uint32_t)argvlen[a + 2] : 1;
        }
        *i = a + need;
    }
    *n_ops = (uint32_t)n;
    return 0;
}

/* BTXN with an optional request id (@client_id 0: none). */
static void btxn_run(struct cmd_req *r,
                     size_t argc,
                     const char *const *argv,
                     const size_t *argvlen,
                     uint64_t client_id,
                     uint64_t seq)
{
    struct kv_cmp cmps[KV_TXN_CMPS_MAX];
    struct kv_op then_ops[KV_TXN_OPS_MAX];
    struct kv_op else_ops[KV_TXN_OPS_MAX];
    struct kv_cmd cmd;
    int64_t n;
    size_t i = 1;
    memset(&cmd, 0, sizeof(cmd));
    cmd.type = KV_CMD_TXN;
    if (cmd_parse_i64(argv[i], argvlen[i], &n) != 0 || n < 0) {
        rep_error(r, "ERR BTXN: expected a comparison count");
        goto fail;
    }
    if (n > (int64_t)KV_TXN_CMPS_MAX) {
        rep_errorf(r, "ERR BTXN: at most %u comparisons", KV_TXN_CMPS_MAX);
        goto fail;
    }
    i++;
    for (int64_t k = 0; k < n; k++, i += 4) {
        struct kv_cmp *c = &cmps[k];
        memset(c, 0, sizeof(*c));
        if (i + 4 > argc) {
            rep_error(r, "ERR BTXN: missing comparison arguments");
            goto fail;
        }
        const char *t = argv[i];
        size_t tl = argvlen[i];
        if (cmd_arg_is(t, tl, "value")) {
            c->target = KV_CMP_VALUE;
        } else if (cmd_arg_is(t, tl, "version")) {
            c->target = KV_CMP_VERSION;
        } else if (cmd_arg_is(t, tl, "create")) {
            c->target = KV_CMP_CREATE_REVISION;
        } else if (cmd_arg_is(t, tl, "mod")) {
            c->target = KV_CMP_MOD_REVISION;
        } else if (cmd_arg_is(t, tl, "exists")) {
            c->target = KV_CMP_EXISTS;
        } else {
            rep_errorf(r, "ERR BTXN: unknown comparison target '%.*s'",
                       (int)(tl > 64 ? 64 : tl), t);
            goto fail;
        }
        if (!cmd_check_key(r, argvlen[i + 1])) {
            goto fail;
        }
        c->key = (const uint8_t *)argv[i + 1];
        c->key_len = (uint32_t)argvlen[i + 1];
        const char *o = argv[i + 2];
        size_t ol = argvlen[i + 2];
        if (ol == 1 && o[0] == '=') {
            c->op = KV_CMP_EQ;
        } else if (ol == 2 && o[0] == '!' && o[1] == '=') {
            c->op = KV_CMP_NE;
        } else if (ol == 1 && o[0] == '<') {
            c->op = KV_CMP_LT;
        } else if (ol == 1 && o[0] == '>') {
            c->op = KV_CMP_GT;
        } else {
            rep_error(r,
                      "ERR BTXN: comparison operator must be =, !=, < "
                      "or >");
            goto fail;
        }
        if (c->target == KV_CMP_VALUE) {
            if (!cmd_check_value(r, argvlen[i + 3])) {
                goto fail;
            }
            c->value = (const uint8_t *)argv[i + 3];
            c->value_len = (uint32_t)argvlen[i + 3];
        } else {
            int64_t num;
            if (cmd_parse_i64(argv[i + 3], argvlen[i + 3], &num) != 0 ||
                num < 0) {
                rep_error(r, "ERR value is not an integer or out of range");
                goto fail;
            }
            if (c->target == KV_CMP_EXISTS &&
                (num > 1 || c->op == KV_CMP_LT || c->op == KV_CMP_GT)) {
                rep_error(r, "ERR BTXN: EXISTS takes = or != and 0 or 1");
                goto fail;
            }
            c->number = (uint64_t)num;
        }
    }
    cmd.cmps = cmps;
    cmd.n_cmps = (uint32_t)n;
    if (btxn_ops(r, argc, argv, argvlen, &i, then_ops, &cmd.n_then) != 0 ||
        btxn_ops(r, argc, argv, argvlen, &i, else_ops, &cmd.n_else) != 0) {
        goto fail;
    }
    if (i != argc) {
        rep_error(r, "ERR BTXN: unexpected arguments after the else branch");
        goto fail;
    }
    cmd.then_ops = then_ops;
    cmd.else_ops = else_ops;
    /* The reply depends on the branch taken at apply time, so the store
     * keeps the result itself rather than a reply built here. */
    cmd.client_id = client_id;
    cmd.seq = seq;
    cmd.keep_result = client_id != 0;
    struct btxn_req *b = malloc(sizeof(*b));
    if (b == NULL) {
        rep_error(r, "ERR out of memory");
        goto fail;
    }
    b->r = r;
    b->client_id = client_id;
    b->seq = seq;
    cmd_propose(r, &cmd, btxn_done, b);
    return;
fail:
    cmd_req_finish(r);
}

CMD_DECL(cmd_btxn)
{
    btxn_run(r, argc, argv, argvlen, 0, 0);
}

/* ---------------------------------------------------------------------- */
/* BREQ                                                                    */

/* Parses an unsigned decimal in [1, max]; -1 if it is not one. */
static int parse_id(const char *s, size_t len, uint64_t max, uint64_t *out)
{
    uint64_t v = 0;
    if (len == 0 || len > 20) {
        return -1;
    }
    for (size_t i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9') {
            return -1;
        }
        uint64_t d = (uint64_t)(s[i] - '0');
        if (v > (UINT64_MAX - d) / 10) {
            return -1;
        }
        v = v * 10 + d;
    }
    if (v == 0 || v > max) {
        return -1;
    }
    *out = v;
    return 0;
}

/* BREQ client-id seq command [args...]: runs @command with a request id.
 * A write is applied at most once per (client-id, seq) and a retry of an
 * applied one gets the original reply; a read just runs. The string
 * commands and DEL/UNLINK run on a view that builds the reply before the
 * write; BTXN has the store keep its result; EXEC (inside MULTI) runs the
 * queued commands as one view. */
void cmd_breq(struct cmd_req *r,
              size_t argc,
              const char *const *argv,
              const size_t *argvlen)
{
    uint64_t client = 0, seq = 0;
    if (parse_id(argv[1], argvlen[1], KV_SESSION_CLIENT_MAX, &client) != 0) {
        rep_error(r, "ERR BREQ client-id must be an integer in 1..2^63");
        cmd_req_finish(r);
        return;
    }
    if (parse_id(argv[2], argvlen[2], UINT64_MAX, &seq) != 0) {
        rep_error(r, "ERR BREQ seq must be a positive integer");
        cmd_req_finish(r);
        return;
    }
    const struct cmd_def *d = cmd_lookup(argv[3], argvlen[3]);
    size_t n = argc - 3;
    if (d == NULL) {
        int len = argvlen[3] > 128 ? 128 : (int)argvlen[3];
        rep_errorf(r, "ERR unknown command '%.*s' in BREQ", len, argv[3]);
        cmd_req_finish(r);
        return;
    }
    if (d->arity > 0 ? n != (size_t)d->arity : n < (size_t)-d->arity) {
        rep_arity_error(r, d->name);
        cmd_req_finish(r);
        return;
    }
    if (bnode_breaks(r->client->env->node) & BNODE_BREAK_NO_SESSIONS) {
        client = 0; /* a deliberately broken build (docs/jepsen.md) */
    }
    if (d->fn == cmd_exec) {
        cmd_exec_req(r, client, seq);
        return;
    }
    if (d->fn == cmd_btxn) {
        btxn_run(r, n, argv + 3, argvlen + 3, client, seq);
        return;
    }
    if (d->fn == cmd_bseq) {
        cmd_bseq_req(r, n, argv + 3, argvlen + 3, client, seq);
        return;
    }
    if (d->fn == cmd_expiry) {
        cmd_expiry_req(r, n, argv + 3, argvlen + 3, client, seq);
        return;
    }
    if (d->fn == cmd_blease) {
        cmd_blease_req(r, n, argv + 3, argvlen + 3, client, seq);
        return;
    }
    if (d->fn == cmd_bput) {
        cmd_bput_req(r, n, argv + 3, argvlen + 3, client, seq);
        return;
    }
    if (d->fn == cmd_block) {
        cmd_block_req(r, n, argv + 3, argvlen + 3, client, seq);
        return;
    }
    if (d->fn == cmd_belect) {
        cmd_belect_req(r, n, argv + 3, argvlen + 3, client, seq);
        return;
    }
    if (d->fn == cmd_breq || (d->flags & CMD_MULTI) ||
        !(d->flags & (CMD_READONLY | CMD_WRITE))) {
        rep_errorf(r, "ERR '%s' cannot run inside BREQ", d->name);
        cmd_req_finish(r);
        return;
    }
    if (!(d->flags & CMD_WRITE)) {
        /* A read changes nothing: a retry may simply run it again. */
        if (d->fn != NULL) {
            d->fn(r, n, argv + 3, argvlen + 3);
        } else {
            cmd_view_start(r, d, n, argv + 3, argvlen + 3);
        }
        return;
    }
    if (bnode_breaks(r->client->env->node) & BNODE_BREAK_NO_SESSIONS) {
        client = 0; /* a deliberately broken build (docs/jepsen.md) */
    }
    if (d->fn == cmd_rmw &&
        !(cmd_arg_is(argv[3], argvlen[3], "set") && n == 3)) {
        /* A plain SET keeps its reply (below); the others have theirs
         * built from the result the store keeps. */
        cmd_rmw_req(r, n, argv + 3, argvlen + 3, client, seq);
        return;
    }
    if (d->view_fn == NULL) {
        rep_errorf(r, "ERR '%s' cannot run inside BREQ", d->name);
        cmd_req_finish(r);
        return;
    }
    cmd_view_start_req(r, d, n, argv + 3, argvlen + 3, client, seq);
}
