/*
 * commands_expire.c - Redis expiry (docs/protocol.md, "Expiry"): EXPIRE,
 * PEXPIRE, EXPIREAT, PEXPIREAT, PERSIST, TTL, PTTL, GETEX, SETEX, PSETEX,
 * and the expiry options SET shares (EX, PX, EXAT, PXAT, KEEPTTL).
 *
 * An expiry is a wall-clock time (Unix ms) stored in the key, computed here
 * from this node's clock when the command arrives. Every read on every node
 * skips a key whose time has passed (kv_get, kv_range), and the leader
 * deletes such keys through the log (bnode_lease.c), so apply reads no
 * clock. Each write is one kv command: the EXPIRE family is a KV_OP_EXPIRE
 * whose NX/XX/GT/LT conditions the state machine checks against the
 * key's expiry at apply time; GETEX with an option is a transaction reading
 * the key and setting its expiry in one entry. All work inside BREQ.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "commands.h"
#include "kv.h"

/* The latest expiry accepted (Unix ms): Redis's limit is the 64-bit
 * range; ours leaves room for the additions below. */
#define EXPIRY_MS_MAX ((uint64_t)INT64_MAX / 2)

/* Redis's error for an expiry out of range. */
static void rep_bad_time(struct cmd_req *r, const char *name)
{
    rep_errorf(r, "ERR invalid expire time in '%s' command", name);
}

/* Turns @v in @unit (EX/PX relative seconds/ms, EXAT/PXAT absolute) into a
 * Unix-ms time; false if out of range. @v must be > 0 for SET and GETEX
 * (the caller checks). */
static bool expiry_at(int64_t v, bool seconds, bool absolute, uint64_t *at)
{
    uint64_t ms;
    if (v < 0) {
        return false;
    }
    if (seconds && (uint64_t)v > EXPIRY_MS_MAX / 1000) {
        return false;
    }
    ms = seconds ? (uint64_t)v * 1000 : (uint64_t)v;
    if (!absolute) {
        ms += kv_wall_ms();
    }
    if (ms > EXPIRY_MS_MAX) {
        return false;
    }
    *at = ms;
    return true;
}

int cmd_expiry_option(struct cmd_req *r,
                      size_t argc,
                      const char *const *argv,
                      const size_t *argvlen,
                      size_t *i,
                      bool allow_persist,
                      struct cmd_expiry *e)
{
    const char *a = argv[*i];
    size_t n = argvlen[*i];
    int kind = cmd_arg_is(a, n, "ex")     ? CMD_EXPIRY_EX
               : cmd_arg_is(a, n, "px")   ? CMD_EXPIRY_PX
               : cmd_arg_is(a, n, "exat") ? CMD_EXPIRY_EXAT
               : cmd_arg_is(a, n, "pxat") ? CMD_EXPIRY_PXAT
                                          : 0;
    bool keep = !allow_persist && cmd_arg_is(a, n, "keepttl");
    bool persist = allow_persist && cmd_arg_is(a, n, "persist");
    if (kind == 0 && !keep && !persist) {
        return 0;
    }
    /* Options are checked before values, as Redis does. */
    if (e->set || (kind != 0 && *i + 1 >= argc)) {
        rep_error(r, "ERR syntax error");
        return -1;
    }
    e->set = true;
    e->keep = keep;
    e->persist = persist;
    e->kind = kind;
    if (kind != 0) {
        (*i)++;
        e->arg = argv[*i];
        e->arg_len = argvlen[*i];
    }
    return 1;
}

int cmd_expiry_resolve(struct cmd_req *r,
                       const char *name,
                       struct cmd_expiry *e)
{
    int64_t v;
    if (e->kind == 0) {
        return 0;
    }
    if (cmd_parse_i64(e->arg, e->arg_len, &v) != 0) {
        if (r != NULL) {
            rep_error(r, "ERR value is not an integer or out of range");
        }
        return -1;
    }
    bool seconds = e->kind == CMD_EXPIRY_EX || e->kind == CMD_EXPIRY_EXAT;
    bool absolute = e->kind == CMD_EXPIRY_EXAT || e->kind == CMD_EXPIRY_PXAT;
    if (v <= 0 || !expiry_at(v, seconds, absolute, &e->at)) {
        if (r != NULL) {
            rep_bad_time(r, name);
        }
        return -1;
    }
    return 0;
}

/* ---------------------------------------------------------------------- */
/* Completions                                                             */

enum expire_kind {
    EXP_EXPIRE, /* EXPIRE family and PERSIST: 0 or 1 */
    EXP_GETEX,  /* the value read, or null */
    EXP_SETEX,  /* OK */
};

struct expire_req
{
    struct cmd_req *r;
    enum expire_kind kind;
    uint64_t client_id;
    uint64_t seq;
};

static void expire_done(void *arg,
                        int status,
                        const struct kv_entry_result *res)
{
    struct expire_req q = *(struct expire_req *)arg;
    struct cmd_req *r = q.r;
    free(arg);
    if (!cmd_write_ok(r, status, res)) {
        cmd_req_finish(r);
        return;
    }
    if (res->superseded || (res->duplicate && !res->result_kept) ||
        res->result_elided) {
        rep_session_outcome(r, res, q.client_id, q.seq);
        cmd_req_finish(r);
        return;
    }
    switch (q.kind) {
    case EXP_EXPIRE:
        if (res->n_ops != 1 || res->ops[0].type != KV_OP_EXPIRE) {
            goto other;
        }
        rep_int(r, res->ops[0].count > 0 ? 1 : 0);
        break;
    case EXP_GETEX:
        if (res->n_ops != 2 || res->ops[0].type != KV_OP_RANGE) {
            goto other;
        }
        if (res->ops[0].n_kvs > 0 && res->ops[0].kvs[0].type == KV_TYPE_HASH) {
            /* Redis refuses before changing anything; here the expiry
             * was set in the same entry (docs/protocol.md, "Hashes"). */
            rep_error(r, kv_strerror(KV_EWRONGTYPE));
        } else if (res->ops[0].n_kvs > 0) {
            rep_bulk(r, res->ops[0].kvs[0].value, res->ops[0].kvs[0].value_len);
        } else {
            rep_null(r);
        }
        break;
    default:
        if (res->n_ops != 1 || res->ops[0].type != KV_OP_PUT) {
            goto other;
        }
        rep_ok(r);
        break;
    }
    cmd_req_finish(r);
    return;
other:
    rep_errorf(r,
               "ERR request id already applied at revision %" PRIu64
               " by a different command",
               res->duplicate ? res->session_revision : res->revision);
    cmd_req_finish(r);
}

static void propose(struct cmd_req *r,
                    struct kv_cmd *cmd,
                    enum expire_kind kind,
                    uint64_t client_id,
                    uint64_t seq)
{
    struct expire_req *q = malloc(sizeof(*q));
    if (q == NULL) {
        rep_error(r, "ERR out of memory");
        cmd_req_finish(r);
        return;
    }
    q->r = r;
    q->kind = kind;
    q->client_id = client_id;
    q->seq = seq;
    /* The reply depends on the state at apply time: the store keeps the
     * result for a retry. */
    cmd->client_id = client_id;
    cmd->seq = client_id != 0 ? seq : 0;
    cmd->keep_result = client_id != 0;
    cmd_propose(r, cmd, expire_done, q);
}

/* ---------------------------------------------------------------------- */
/* Writes                                                                  */

/* EXPIRE key seconds [NX|XX|GT|LT] and PEXPIRE, EXPIREAT, PEXPIREAT;
 * PERSIST key. */
static void expire_cmd(struct cmd_req *r,
                       size_t argc,
                       const char *const *argv,
                       const size_t *argvlen,
                       uint64_t client_id,
                       uint64_t seq)
{
    struct kv_cmd cmd;
    char name[16];
    size_t nl = argvlen[0] < sizeof(name) - 1 ? argvlen[0] : sizeof(name) - 1;
    for (size_t i = 0; i < nl; i++) {
        char ch = argv[0][i];
        name[i] = (char)(ch >= 'A' && ch <= 'Z' ? ch - 'A' + 'a' : ch);
    }
    name[nl] = '\0';
    memset(&cmd, 0, sizeof(cmd));
    cmd.type = KV_CMD_EXPIRE;
    cmd.op.type = KV_OP_EXPIRE;
    cmd.op.key = (const uint8_t *)argv[1];
    cmd.op.key_len = (uint32_t)argvlen[1];
    if (strcmp(name, "persist") == 0) {
        if (argvlen[1] == 0 || argvlen[1] > KV_KEY_BYTES_MAX) {
            rep_int(r, 0); /* such a key is never stored */
            cmd_req_finish(r);
            return;
        }
        cmd.op.flags = KV_EXPIRE_XX;
        propose(r, &cmd, EXP_EXPIRE, client_id, seq);
        return;
    }
    int64_t v;
    uint8_t flags = 0;
    for (size_t i = 3; i < argc; i++) {
        if (cmd_arg_is(argv[i], argvlen[i], "nx")) {
            flags |= KV_EXPIRE_NX;
        } else if (cmd_arg_is(argv[i], argvlen[i], "xx")) {
            flags |= KV_EXPIRE_XX;
        } else if (cmd_arg_is(argv[i], argvlen[i], "gt")) {
            flags |= KV_EXPIRE_GT;
        } else if (cmd_arg_is(argv[i], argvlen[i], "lt")) {
            flags |= KV_EXPIRE_LT;
        } else {
            rep_errorf(r, "ERR Unsupported option %.*s",
                       (int)(argvlen[i] > 64 ? 64 : argvlen[i]), argv[i]);
            cmd_req_finish(r);
            return;
        }
    }
    if ((flags & KV_EXPIRE_NX) &&
        (flags & (KV_EXPIRE_XX | KV_EXPIRE_GT | KV_EXPIRE_LT))) {
        rep_error(r,
                  "ERR NX and XX, GT or LT options at the same time are not "
                  "compatible");
        cmd_req_finish(r);
        return;
    }
    if ((flags & KV_EXPIRE_GT) && (flags & KV_EXPIRE_LT)) {
        rep_error(r,
                  "ERR GT and LT options at the same time are not compatible");
        cmd_req_finish(r);
        return;
    }
    if (cmd_parse_i64(argv[2], argvlen[2], &v) != 0) {
        rep_error(r, "ERR value is not an integer or out of range");
        cmd_req_finish(r);
        return;
    }
    bool seconds = strcmp(name, "expire") == 0 || strcmp(name, "expireat") == 0;
    bool absolute =
        strcmp(name, "expireat") == 0 || strcmp(name, "pexpireat") == 0;
    /* A time at or before now (a negative or zero TTL, or an absolute time
     * passed) deletes the key, as Redis does. */
    uint64_t now = kv_wall_ms();
    uint64_t at = 0;
    if (v <= 0 && !absolute) {
        flags |= KV_EXPIRE_DELETE;
        at = 1;
    } else if (!expiry_at(v < 0 ? 0 : v, seconds, absolute, &at)) {
        rep_bad_time(r, name);
        cmd_req_finish(r);
        return;
    } else if (at <= now) {
        flags |= KV_EXPIRE_DELETE;
        if (at == 0) {
            at = 1;
        }
    }
    if (argvlen[1] == 0 || argvlen[1] > KV_KEY_BYTES_MAX) {
        rep_int(r, 0);
        cmd_req_finish(r);
        return;
    }
    cmd.op.flags = flags;
    cmd.op.expire_at = at;
    propose(r, &cmd, EXP_EXPIRE, client_id, seq);
}

/* SETEX key seconds value, PSETEX key ms value. */
static void setex_cmd(struct cmd_req *r,
                      const char *const *argv,
                      const size_t *argvlen,
                      uint64_t client_id,
                      uint64_t seq)
{
    bool ms = cmd_arg_is(argv[0], argvlen[0], "psetex");
    const char *name = ms ? "psetex" : "setex";
    int64_t v;
    uint64_t at = 0;
    if (cmd_parse_i64(argv[2], argvlen[2], &v) != 0) {
        rep_error(r, "ERR value is not an integer or out of range");
        cmd_req_finish(r);
        return;
    }
    if (v <= 0 || !expiry_at(v, !ms, false, &at)) {
        rep_bad_time(r, name);
        cmd_req_finish(r);
        return;
    }
    if (!cmd_check_key(r, argvlen[1]) || !cmd_check_value(r, argvlen[3])) {
        cmd_req_finish(r);
        return;
    }
    struct kv_cmd cmd;
    memset(&cmd, 0, sizeof(cmd));
    cmd.type = KV_CMD_PUT;
    cmd.op.type = KV_OP_PUT;
    cmd.op.key = (const uint8_t *)argv[1];
    cmd.op.key_len = (uint32_t)argvlen[1];
    cmd.op.value = (const uint8_t *)argv[3];
    cmd.op.value_len = (uint32_t)argvlen[3];
    cmd.op.expire_at = at;
    propose(r, &cmd, EXP_SETEX, client_id, seq);
}

/* GETEX key [EX s | PX ms | EXAT ts | PXAT ts | PERSIST]. */
static void getex_cmd(struct cmd_req *r,
                      size_t argc,
                      const char *const *argv,
                      const size_t *argvlen,
                      uint64_t client_id,
                      uint64_t seq);

/* ---------------------------------------------------------------------- */
/* Reads                                                                   */

static void ttl_read(struct cmd_req *r,
                     struct kv_store *kv,
                     size_t argc,
                     const char *const *argv,
                     const size_t *argvlen)
{
    struct kv_range_result res;
    (void)argc;
    memset(&res, 0, sizeof(res));
    bool ms = cmd_arg_is(argv[0], argvlen[0], "pttl");
    int rv =
        argvlen[1] == 0 || argvlen[1] > KV_KEY_BYTES_MAX
            ? KV_ENOTFOUND
            : kv_get(kv, (const uint8_t *)argv[1], (uint32_t)argvlen[1], &res);
    if (rv == KV_ENOTFOUND) {
        rep_int(r, -2);
    } else if (rv != 0) {
        rep_errorf(r, "ERR store read failed: %s", kv_strerror(rv));
    } else if (res.kvs[0].expire_at == 0) {
        rep_int(r, -1);
    } else {
        uint64_t now = kv_wall_ms();
        uint64_t at = res.kvs[0].expire_at;
        int64_t left = at > now ? (int64_t)(at - now) : 0;
        rep_int(r, ms ? left : (left + 500) / 1000);
    }
    kv_range_result_free(&res);
}

static void get_read(struct cmd_req *r,
                     struct kv_store *kv,
                     size_t argc,
                     const char *const *argv,
                     const size_t *argvlen)
{
    struct kv_range_result res;
    (void)argc;
    if (argvlen[1] == 0 || argvlen[1] > KV_KEY_BYTES_MAX) {
        rep_null(r);
        return;
    }
    int rv = kv_get(kv, (const uint8_t *)argv[1], (uint32_t)argvlen[1], &res);
    if (rv == KV_ENOTFOUND) {
        rep_null(r);
    } else if (rv != 0) {
        rep_errorf(r, "ERR store read failed: %s", kv_strerror(rv));
    } else if (res.kvs[0].type == KV_TYPE_HASH) {
        rep_error(r, kv_strerror(KV_EWRONGTYPE));
    } else {
        rep_bulk(r, res.kvs[0].value, res.kvs[0].value_len);
    }
    kv_range_result_free(&res);
}

/* GETEX with a bad time: null for a missing key, else Redis's error. */
static void getex_bad_time_read(struct cmd_req *r,
                                struct kv_store *kv,
                                size_t argc,
                                const char *const *argv,
                                const size_t *argvlen)
{
    struct kv_range_result res;
    struct cmd_expiry e;
    memset(&e, 0, sizeof(e));
    memset(&res, 0, sizeof(res));
    int rv =
        argvlen[1] == 0 || argvlen[1] > KV_KEY_BYTES_MAX
            ? KV_ENOTFOUND
            : kv_get(kv, (const uint8_t *)argv[1], (uint32_t)argvlen[1], &res);
    kv_range_result_free(&res);
    if (rv == KV_ENOTFOUND) {
        rep_null(r);
        return;
    }
    for (size_t i = 2; i < argc; i++) {
        (void)cmd_expiry_option(r, argc, argv, argvlen, &i, true, &e);
    }
    (void)cmd_expiry_resolve(r, "getex", &e);
}

static void getex_cmd(struct cmd_req *r,
                      size_t argc,
                      const char *const *argv,
                      const size_t *argvlen,
                      uint64_t client_id,
                      uint64_t seq)
{
    struct cmd_expiry e;
    memset(&e, 0, sizeof(e));
    for (size_t i = 2; i < argc; i++) {
        int rc = cmd_expiry_option(r, argc, argv, argvlen, &i, true, &e);
        if (rc < 0) {
            cmd_req_finish(r);
            return;
        }
        if (rc == 0) {
            rep_error(r, "ERR syntax error");
            cmd_req_finish(r);
            return;
        }
    }
    if (!e.set) {
        cmd_read_start(r, get_read, argc, argv, argvlen);
        return;
    }
    if (e.kind != 0) {
        /* Redis answers a missing key before it looks at the time: a bad
         * time is an error only for a key that exists, so read first. */
        if (cmd_expiry_resolve(NULL, "getex", &e) != 0) {
            cmd_read_start(r, getex_bad_time_read, argc, argv, argvlen);
            return;
        }
    }
    if (argvlen[1] == 0 || argvlen[1] > KV_KEY_BYTES_MAX) {
        rep_null(r);
        cmd_req_finish(r);
        return;
    }
    struct kv_op ops[2];
    memset(ops, 0, sizeof(ops));
    ops[0].type = KV_OP_RANGE;
    ops[0].key = (const uint8_t *)argv[1];
    ops[0].key_len = (uint32_t)argvlen[1];
    ops[1].type = KV_OP_EXPIRE;
    ops[1].key = ops[0].key;
    ops[1].key_len = ops[0].key_len;
    if (e.persist) {
        ops[1].flags = KV_EXPIRE_XX;
    } else if (e.at <= kv_wall_ms()) {
        ops[1].flags = KV_EXPIRE_DELETE;
        ops[1].expire_at = e.at;
    } else {
        ops[1].expire_at = e.at;
    }
    struct kv_cmd cmd;
    memset(&cmd, 0, sizeof(cmd));
    cmd.type = KV_CMD_TXN;
    cmd.then_ops = ops;
    cmd.n_then = 2;
    propose(r, &cmd, EXP_GETEX, client_id, seq);
}

/* ---------------------------------------------------------------------- */
/* Entry points                                                            */

void cmd_expiry_req(struct cmd_req *r,
                    size_t argc,
                    const char *const *argv,
                    const size_t *argvlen,
                    uint64_t client_id,
                    uint64_t seq)
{
    if (cmd_arg_is(argv[0], argvlen[0], "ttl") ||
        cmd_arg_is(argv[0], argvlen[0], "pttl")) {
        cmd_read_start(r, ttl_read, argc, argv, argvlen);
    } else if (cmd_arg_is(argv[0], argvlen[0], "getex")) {
        getex_cmd(r, argc, argv, argvlen, client_id, seq);
    } else if (cmd_arg_is(argv[0], argvlen[0], "setex") ||
               cmd_arg_is(argv[0], argvlen[0], "psetex")) {
        setex_cmd(r, argv, argvlen, client_id, seq);
    } else {
        expire_cmd(r, argc, argv, argvlen, client_id, seq);
    }
}

CMD_DECL(cmd_expiry)
{
    cmd_expiry_req(r, argc, argv, argvlen, 0, 0);
}

int cmd_getex_order(size_t argc, const char *const *argv, const size_t *argvlen)
{
    (void)argv;
    (void)argvlen;
    return argc > 2 ? CMD_ORDER_WRITE : CMD_ORDER_READ;
}
