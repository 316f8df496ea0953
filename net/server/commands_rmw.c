/*
 * commands_rmw.c - Redis's read-modify-write string commands as ONE kv
 * command each, evaluated by the state machine when the entry is applied
 * (docs/protocol.md, "Read-modify-writes at write speed"):
 *
 *   INCR, DECR, INCRBY, DECRBY   KV_CMD_INCRBY (the sum at apply time)
 *   INCRBYFLOAT                  KV_CMD_INCRBYFLOAT
 *   APPEND                       KV_CMD_APPEND
 *   SET k v GET, GETSET          a put returning the previous pair
 *   GETDEL                       a delete returning the previous pair
 *   SETNX, SET NX/XX [GET]       a transaction guarded by the key's existence
 *   MSETNX                       a transaction guarded by every key's absence
 *
 * None reads first, so they propose at once like a plain SET: concurrent
 * increments of one hot key share Raft rounds, each getting the value it
 * produced as if run alone at its place in the log. The reply is built from
 * the entry's result. With a request id (BREQ) the store keeps that result
 * (kv_cmd.keep_result), so a retry of an applied request gets the same
 * reply built from the first application's result.
 *
 * Between MULTI and EXEC these commands queue their view handlers
 * (commands_string.c) instead, and EXEC runs them on its view.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "commands.h"
#include "kv.h"

enum rmw_kind {
    RMW_INCRBY,
    RMW_INCRBYFLOAT,
    RMW_APPEND,
    RMW_SET, /* SET with NX, XX or GET; GETSET is SET GET */
    RMW_SETNX,
    RMW_GETDEL,
    RMW_MSETNX,
};

/* SET's options, as commands_string.c parses them. */
enum {
    SET_NX = 1 << 0,
    SET_XX = 1 << 1,
    SET_GET = 1 << 2,
    SET_EXPIRY = 1 << 3,
};

/* A command in flight: what its reply needs from the entry's result. */
struct rmw_req
{
    struct cmd_req *r;
    enum rmw_kind kind;
    int set_flags;
    uint32_t n_puts; /* MSETNX: the then-branch's puts */
    uint64_t client_id;
    uint64_t seq;
};

/* Parses SET's options into flags and @e (its expiry); -1 after replying
 * with the error. */
static int set_options(struct cmd_req *r,
                       size_t argc,
                       const char *const *argv,
                       const size_t *argvlen,
                       struct cmd_expiry *e)
{
    int f = 0;
    memset(e, 0, sizeof(*e));
    for (size_t i = 3; i < argc; i++) {
        const char *a = argv[i];
        size_t n = argvlen[i];
        if (cmd_arg_is(a, n, "nx") && !(f & SET_XX)) {
            f |= SET_NX;
        } else if (cmd_arg_is(a, n, "xx") && !(f & SET_NX)) {
            f |= SET_XX;
        } else if (cmd_arg_is(a, n, "get")) {
            f |= SET_GET;
        } else {
            int rc = cmd_expiry_option(r, argc, argv, argvlen, &i, false, e);
            if (rc == 0) {
                rep_error(r, "ERR syntax error");
            }
            if (rc <= 0) {
                return -1;
            }
            f |= SET_EXPIRY;
        }
    }
    if (cmd_expiry_resolve(r, "set", e) != 0) {
        return -1;
    }
    return f;
}

/* The result has the shape this command's kv command produces; a retried
 * request id applied first by another kind of command has not. */
static bool shape_ok(const struct rmw_req *q, const struct kv_entry_result *res)
{
    switch (q->kind) {
    case RMW_INCRBY:
        return res->n_ops == 1 && res->ops[0].type == KV_OP_INCRBY;
    case RMW_INCRBYFLOAT:
        return res->n_ops == 1 && res->ops[0].type == KV_OP_INCRBYFLOAT;
    case RMW_APPEND:
        return res->n_ops == 1 && res->ops[0].type == KV_OP_APPEND;
    case RMW_GETDEL:
        return res->n_ops == 1 && res->ops[0].type == KV_OP_DELETE;
    case RMW_SETNX:
        return res->succeeded ? res->n_ops == 1 : res->n_ops == 0;
    case RMW_MSETNX:
        return res->succeeded ? res->n_ops == q->n_puts : res->n_ops == 0;
    case RMW_SET:
        if (!(q->set_flags & (SET_NX | SET_XX))) {
            return res->n_ops == 1 && res->ops[0].type == KV_OP_PUT;
        }
        if (res->succeeded) {
            return res->n_ops == 1 && res->ops[0].type == KV_OP_PUT;
        }
        return (q->set_flags & SET_NX) && (q->set_flags & SET_GET)
                   ? res->n_ops == 1 && res->ops[0].type == KV_OP_RANGE
                   : res->n_ops == 0;
    }
    return false;
}

/* Replies with the value of the op's first pair, or null; WRONGTYPE if
 * the pair is a hash's, or the store refused to read one as a string. */
static void rep_first_value(struct cmd_req *r, const struct kv_op_result *o)
{
    if ((o->type != KV_OP_RANGE && o->count == KV_RMW_WRONGTYPE) ||
        (o->n_kvs > 0 && o->kvs[0].type == KV_TYPE_HASH)) {
        rep_error(r, kv_strerror(KV_EWRONGTYPE));
    } else if (o->n_kvs > 0 && o->kvs[0].value != NULL) {
        rep_bulk(r, o->kvs[0].value, o->kvs[0].value_len);
    } else {
        rep_null(r);
    }
}

static void rep_refusal(struct cmd_req *r, uint64_t refusal)
{
    switch (refusal) {
    case KV_RMW_NOT_INTEGER:
        rep_error(r, "ERR value is not an integer or out of range");
        break;
    case KV_RMW_OVERFLOW:
        rep_error(r, "ERR increment or decrement would overflow");
        break;
    case KV_RMW_TOO_LARGE:
        rep_errorf(r, "ERR value too large: ballot's limit is %u bytes",
                   KV_VALUE_BYTES_MAX);
        break;
    case KV_RMW_NOT_FLOAT:
        rep_error(r, "ERR value is not a valid float");
        break;
    case KV_RMW_WRONGTYPE:
        rep_error(r, kv_strerror(KV_EWRONGTYPE));
        break;
    default:
        rep_error(r, "ERR increment would produce NaN or Infinity");
        break;
    }
}

static void rmw_done(void *arg, int status, const struct kv_entry_result *res)
{
    struct rmw_req q = *(struct rmw_req *)arg;
    struct cmd_req *r = q.r;
    free(arg);
    if (!cmd_kept_result_ok(r, status, res, q.client_id, q.seq)) {
        cmd_req_finish(r);
        return;
    }
    if (!shape_ok(&q, res)) {
        rep_applied_by_another(r, res);
        cmd_req_finish(r);
        return;
    }
    const struct kv_op_result *o = res->n_ops > 0 ? &res->ops[0] : NULL;
    switch (q.kind) {
    case RMW_INCRBY:
    case RMW_INCRBYFLOAT:
    case RMW_APPEND:
        if (o->count != KV_RMW_APPLIED || o->n_kvs != 1) {
            rep_refusal(r, o->count);
        } else if (q.kind == RMW_APPEND) {
            rep_int(r, o->kvs[0].value_len);
        } else if (q.kind == RMW_INCRBYFLOAT) {
            rep_bulk(r, o->kvs[0].value, o->kvs[0].value_len);
        } else {
            int64_t v = 0;
            (void)cmd_parse_i64((const char *)o->kvs[0].value,
                                o->kvs[0].value_len, &v);
            rep_int(r, v);
        }
        break;
    case RMW_GETDEL:
        rep_first_value(r, o);
        break;
    case RMW_SETNX:
    case RMW_MSETNX:
        rep_int(r, res->succeeded ? 1 : 0);
        break;
    case RMW_SET: {
        int f = q.set_flags;
        if (!(f & SET_GET)) {
            if (res->succeeded) {
                rep_ok(r);
            } else {
                rep_null(r);
            }
        } else if (!(f & (SET_NX | SET_XX))) {
            rep_first_value(r, o); /* the put's previous pair */
        } else if (f & SET_NX) {
            /* Set: there was no value. Not set: the else-branch read it. */
            if (res->succeeded) {
                rep_null(r);
            } else {
                rep_first_value(r, o);
            }
        } else if (res->succeeded) {
            rep_first_value(r, o); /* XX GET: the put's previous pair */
        } else {
            rep_null(r);
        }
        break;
    }
    }
    cmd_req_finish(r);
}

static void set_key(struct kv_op *op, const char *key, size_t len)
{
    op->key = (const uint8_t *)key;
    op->key_len = (uint32_t)len;
}

static void exists_cmp(struct kv_cmp *c,
                       const char *key,
                       size_t len,
                       uint64_t exists)
{
    memset(c, 0, sizeof(*c));
    c->target = KV_CMP_EXISTS;
    c->op = KV_CMP_EQ;
    c->key = (const uint8_t *)key;
    c->key_len = (uint32_t)len;
    c->number = exists;
}

static bool name_is(const char *const *argv,
                    const size_t *argvlen,
                    const char *word)
{
    return cmd_arg_is(argv[0], argvlen[0], word);
}

void cmd_rmw_req(struct cmd_req *r,
                 size_t argc,
                 const char *const *argv,
                 const size_t *argvlen,
                 uint64_t client_id,
                 uint64_t seq)
{
    struct rmw_req q;
    struct kv_cmd cmd;
    struct kv_cmp cmps[KV_TXN_CMPS_MAX];
    struct kv_op ops[KV_TXN_CMPS_MAX];
    struct kv_op other;
    struct cmd_expiry e;
    memset(&e, 0, sizeof(e));
    memset(&q, 0, sizeof(q));
    memset(&cmd, 0, sizeof(cmd));
    memset(ops, 0, sizeof(ops));
    memset(&other, 0, sizeof(other));
    q.r = r;
    q.client_id = client_id;
    q.seq = seq;
    if (name_is(argv, argvlen, "incr") || name_is(argv, argvlen, "decr") ||
        name_is(argv, argvlen, "incrby") || name_is(argv, argvlen, "decrby")) {
        int64_t d = name_is(argv, argvlen, "decr") ? -1 : 1;
        if (argc == 3) {
            if (cmd_parse_i64(argv[2], argvlen[2], &d) != 0) {
                rep_error(r, "ERR value is not an integer or out of range");
                goto reply;
            }
            if (name_is(argv, argvlen, "decrby")) {
                if (d == INT64_MIN) {
                    rep_error(r, "ERR decrement would overflow");
                    goto reply;
                }
                d = -d;
            }
        }
        if (!cmd_check_key(r, argvlen[1])) {
            goto reply;
        }
        q.kind = RMW_INCRBY;
        cmd.type = KV_CMD_INCRBY;
        cmd.op.type = KV_OP_INCRBY;
        cmd.op.delta = d;
        set_key(&cmd.op, argv[1], argvlen[1]);
    } else if (name_is(argv, argvlen, "incrbyfloat") ||
               name_is(argv, argvlen, "append")) {
        bool app = name_is(argv, argvlen, "append");
        if (!cmd_check_key(r, argvlen[1]) ||
            (app && !cmd_check_value(r, argvlen[2]))) {
            goto reply;
        }
        q.kind = app ? RMW_APPEND : RMW_INCRBYFLOAT;
        cmd.type = app ? KV_CMD_APPEND : KV_CMD_INCRBYFLOAT;
        cmd.op.type = app ? KV_OP_APPEND : KV_OP_INCRBYFLOAT;
        set_key(&cmd.op, argv[1], argvlen[1]);
        cmd.op.value = (const uint8_t *)argv[2];
        cmd.op.value_len = (uint32_t)argvlen[2];
        if (!app && argvlen[2] > KV_VALUE_BYTES_MAX) {
            rep_error(r, "ERR value is not a valid float");
            goto reply;
        }
    } else if (name_is(argv, argvlen, "getdel")) {
        if (argvlen[1] == 0 || argvlen[1] > KV_KEY_BYTES_MAX) {
            rep_null(r); /* such a key is never stored */
            goto reply;
        }
        q.kind = RMW_GETDEL;
        cmd.type = KV_CMD_DELETE;
        cmd.op.type = KV_OP_DELETE;
        cmd.op.flags = KV_FLAG_PREV_KV;
        set_key(&cmd.op, argv[1], argvlen[1]);
    } else if (name_is(argv, argvlen, "msetnx")) {
        if ((argc - 1) % 2 != 0) {
            rep_arity_error(r, "msetnx");
            goto reply;
        }
        for (size_t i = 1; i < argc; i += 2) {
            if (!cmd_check_key(r, argvlen[i]) ||
                !cmd_check_value(r, argvlen[i + 1])) {
                goto reply;
            }
        }
        size_t n = (argc - 1) / 2;
        if (n > KV_TXN_CMPS_MAX) {
            rep_errorf(r, "ERR a write may read at most %u keys in ballot",
                       KV_TXN_CMPS_MAX);
            goto reply;
        }
        for (size_t i = 0; i < n; i++) {
            exists_cmp(&cmps[i], argv[1 + 2 * i], argvlen[1 + 2 * i], 0);
            ops[i].type = KV_OP_PUT;
            set_key(&ops[i], argv[1 + 2 * i], argvlen[1 + 2 * i]);
            ops[i].value = (const uint8_t *)argv[2 + 2 * i];
            ops[i].value_len = (uint32_t)argvlen[2 + 2 * i];
        }
        q.kind = RMW_MSETNX;
        q.n_puts = (uint32_t)n;
        cmd.type = KV_CMD_TXN;
        cmd.cmps = cmps;
        cmd.n_cmps = (uint32_t)n;
        cmd.then_ops = ops;
        cmd.n_then = (uint32_t)n;
    } else {
        /* SET with options, SETNX, GETSET. */
        int f = SET_GET; /* GETSET */
        if (name_is(argv, argvlen, "set")) {
            f = set_options(r, argc, argv, argvlen, &e);
            if (f < 0) {
                goto reply;
            }
        } else if (name_is(argv, argvlen, "setnx")) {
            f = SET_NX;
        }
        if (!cmd_check_key(r, argvlen[1]) || !cmd_check_value(r, argvlen[2])) {
            goto reply;
        }
        q.kind = name_is(argv, argvlen, "setnx") ? RMW_SETNX : RMW_SET;
        q.set_flags = f;
        ops[0].type = KV_OP_PUT;
        set_key(&ops[0], argv[1], argvlen[1]);
        ops[0].value = (const uint8_t *)argv[2];
        ops[0].value_len = (uint32_t)argvlen[2];
        /* EX/PX/EXAT/PXAT: the time the key expires at; KEEPTTL: the one
         * it has (docs/protocol.md, "Expiry"). */
        if (e.keep) {
            ops[0].flags |= KV_FLAG_KEEP_TTL;
        } else {
            ops[0].expire_at = e.at;
        }
        if (!(f & (SET_NX | SET_XX))) {
            /* SET k v [GET] without a condition: one put. */
            if (f & SET_GET) {
                ops[0].flags |= KV_FLAG_PREV_KV;
            }
            cmd.type = KV_CMD_PUT;
            cmd.op = ops[0];
        } else {
            exists_cmp(&cmps[0], argv[1], argvlen[1], (f & SET_XX) ? 1 : 0);
            cmd.type = KV_CMD_TXN;
            cmd.cmps = cmps;
            cmd.n_cmps = 1;
            cmd.then_ops = ops;
            cmd.n_then = 1;
            if ((f & SET_XX) && (f & SET_GET)) {
                ops[0].flags |= KV_FLAG_PREV_KV;
            }
            if ((f & SET_NX) && (f & SET_GET)) {
                /* The key exists and is not set: read what it holds. */
                other.type = KV_OP_RANGE;
                set_key(&other, argv[1], argvlen[1]);
                cmd.else_ops = &other;
                cmd.n_else = 1;
            }
        }
    }
    cmd.client_id = client_id;
    cmd.seq = client_id != 0 ? seq : 0;
    cmd.keep_result = client_id != 0;
    struct rmw_req *p = malloc(sizeof(*p));
    if (p == NULL) {
        rep_error(r, "ERR out of memory");
        goto reply;
    }
    *p = q;
    cmd_propose(r, &cmd, rmw_done, p);
    return;
reply:
    cmd_req_finish(r);
}

CMD_DECL(cmd_rmw)
{
    /* A SET without options is a plain write: the view runner proposes it
     * as one put, which is what it is. */
    if (argc == 3 && name_is(argv, argvlen, "set")) {
        static const struct cmd_def *set_def;
        if (set_def == NULL) {
            set_def = cmd_lookup("set", 3);
        }
        cmd_view_start(r, set_def, argc, argv, argvlen);
        return;
    }
    cmd_rmw_req(r, argc, argv, argvlen, 0, 0);
}
