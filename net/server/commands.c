/*
 * commands.c - the command table, dispatch, and the helpers every command
 * file shares (replies, argument parsing, limits). The commands live in
 * commands_admin.c (no store access), commands_string.c (on a view, run by
 * commands_view.c, which also does MULTI/EXEC and WATCH), commands_keys.c
 * (KEYS, SCAN, DBSIZE), commands_native.c (DEL, BRANGE, BTXN) and
 * commands_snapshot.c (BSNAPSHOT).
 * docs/protocol.md is the reference for what each command replies.
 */
#include "commands.h"

#include <assert.h>
#include <ctype.h>
#include <pthread.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "acl.h"
#include "bnode.h"
#include "kv.h"

/* ---------------------------------------------------------------------- */
/* Reply helpers                                                           */

static void rep_check(struct cmd_req *r, int rc)
{
    if (rc != 0 && r->reply_err == 0) {
        r->reply_err = rc;
    }
}

void rep_ok(struct cmd_req *r)
{
    rep_check(r, resp_encode_simple(&r->reply, "OK", 2));
}

void rep_simple(struct cmd_req *r, const char *s)
{
    rep_check(r, resp_encode_simple(&r->reply, s, strlen(s)));
}

void rep_error(struct cmd_req *r, const char *msg)
{
    rep_check(r, resp_encode_error(&r->reply, msg, strlen(msg)));
}

void rep_errorf(struct cmd_req *r, const char *fmt, ...)
{
    char buf[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    if (n < 0) {
        buf[0] = '\0';
    }
    rep_error(r, buf);
}

void rep_int(struct cmd_req *r, int64_t v)
{
    rep_check(r, resp_encode_integer(&r->reply, v));
}

void rep_bulk(struct cmd_req *r, const void *data, size_t len)
{
    rep_check(r, resp_encode_bulk(&r->reply, data, len));
}

void rep_cstr(struct cmd_req *r, const char *s)
{
    rep_bulk(r, s, strlen(s));
}

void rep_null(struct cmd_req *r)
{
    rep_check(r, resp_encode_null(&r->reply));
}

void rep_null_array(struct cmd_req *r)
{
    rep_check(r, resp_encode_null_array(&r->reply));
}

void rep_array(struct cmd_req *r, size_t n)
{
    rep_check(r, resp_encode_array(&r->reply, n));
}

void rep_set(struct cmd_req *r, size_t n)
{
    rep_check(r, resp_encode_set(&r->reply, n));
}

void rep_map(struct cmd_req *r, size_t npairs)
{
    rep_check(r, resp_encode_map(&r->reply, npairs));
}

void rep_verbatim(struct cmd_req *r, const char *data, size_t len)
{
    rep_check(r, resp_encode_verbatim(&r->reply, "txt", data, len));
}

/* resp_buf has no raw append: encode the bytes as a bulk string, which
 * grows the buffer under its limit, then slide them over its framing. */
void rep_raw(struct cmd_req *r, const uint8_t *data, size_t len)
{
    struct resp_buf *b = &r->reply;
    size_t start = b->len;
    int rc = resp_encode_bulk(b, data, len);
    if (rc != 0) {
        rep_check(r, rc);
        return;
    }
    size_t header = b->len - start - len - 2;
    if (len > 0) {
        memmove(b->data + start, b->data + start + header, len);
    }
    b->len = start + len;
}

void rep_session_outcome(struct cmd_req *r,
                         const struct kv_entry_result *res,
                         uint64_t client_id,
                         uint64_t seq)
{
    if (res->superseded && res->session_refusal == KV_SESSION_EXPIRED) {
        rep_errorf(r,
                   "ERR session expired: client %" PRIu64
                   " has no session, so seq %" PRIu64
                   " was not applied (a session starts at seq 1, and one "
                   "idle too long is dropped); if it is a retry, its first "
                   "attempt's outcome is lost: use a new client id",
                   client_id, seq);
    } else if (res->superseded && res->session_refusal == KV_SESSION_TOO_FAR) {
        rep_errorf(r,
                   "ERR request id too far ahead: client %" PRIu64
                   " seq %" PRIu64
                   " is more than 2^32 beyond its last "
                   "applied seq %" PRIu64 "; not applied",
                   client_id, seq, res->session_seq);
    } else if (res->superseded && res->session_refusal == KV_SESSION_FULL) {
        rep_error(r,
                  "BUSY too many client sessions, none idle long enough to "
                  "be dropped: not applied, retry later");
    } else if (res->superseded) {
        rep_errorf(r,
                   "ERR request id already superseded: client %" PRIu64
                   " seq %" PRIu64 " is below its last applied seq %" PRIu64,
                   client_id, seq, res->session_seq);
    } else if (res->result_elided) {
        rep_errorf(r,
                   "ERR request id already applied at revision %" PRIu64
                   ", but its reply was too large to keep",
                   res->session_revision);
    } else if (res->reply != NULL) {
        rep_raw(r, res->reply, res->reply_len);
    } else {
        /* The request id was last used by a command of another kind (its
         * outcome is kept in a form this one cannot reply with). */
        rep_errorf(r,
                   "ERR request id already applied at revision %" PRIu64
                   " by a different command",
                   res->session_revision);
    }
}

void rep_field_int(struct cmd_req *r, const char *name, int64_t v)
{
    rep_cstr(r, name);
    rep_int(r, v);
}

void rep_arity_error(struct cmd_req *r, const char *name)
{
    rep_errorf(r, "ERR wrong number of arguments for '%s' command", name);
}

void rep_node_error(struct cmd_req *r, int code, bool write)
{
    struct bnode *node = r->client->env->node;
    const char *leader;
    switch (code) {
    case BNODE_ENOTLEADER: {
        raft_id primary = 0;
        raft_term epoch = 0;
        leader = bnode_leader_addr(node);
        if (bnode_fallback_mode(node, &primary, &epoch)) {
            /* A replica names its primary (docs/modes.md); the address
             * comes last, after " at ", where redirecting clients look. */
            if (leader != NULL) {
                rep_errorf(r,
                           "NOTLEADER this node is a replica in "
                           "primary-replica mode (epoch %llu): writes go to "
                           "the primary, node %llu at %s",
                           (unsigned long long)epoch,
                           (unsigned long long)primary, leader);
            } else {
                rep_errorf(r,
                           "NOTLEADER no leader known, retry: this node is "
                           "a replica in primary-replica mode (epoch %llu) "
                           "and its primary, node %llu, is unreachable",
                           (unsigned long long)epoch,
                           (unsigned long long)primary);
            }
            return;
        }
        if (leader != NULL) {
            rep_errorf(r, "NOTLEADER leader is at %s", leader);
        } else {
            rep_error(r, "NOTLEADER no leader known, retry");
        }
        return;
    }
    case BNODE_EBUSY:
        rep_error(r,
                  "BUSY too much uncommitted work, not applied: retry "
                  "later");
        return;
    case BNODE_EDROPPED:
        rep_error(r,
                  "DROPPED the write was overwritten by a new leader and "
                  "not applied: retry");
        return;
    case BNODE_ENOREAD:
        rep_error(r,
                  "TRYAGAIN the read could not be confirmed (no leader "
                  "or leadership changed): retry");
        return;
    case BNODE_ETOOBIG:
        rep_error(r, "ERR command too large for one log entry");
        return;
    case BNODE_ENOSPACE: {
        struct bnode_status st;
        bnode_status(node, &st);
        rep_errorf(r,
                   "NOSPACE the store is over its quota (%llu of %llu bytes "
                   "live), not applied: delete keys or compact the history "
                   "(BCOMPACT); reads and deletes still work",
                   (unsigned long long)(st.db_bytes - st.db_free_bytes),
                   (unsigned long long)st.quota_bytes);
        return;
    }
    case BNODE_ENOMEM:
        rep_error(r, "ERR out of memory");
        return;
    case BNODE_ESTOPPED:
        if (!write) {
            rep_error(r,
                      "SHUTDOWN the node is shutting down: retry on "
                      "another node");
            return;
        }
        break;
    default:
        break;
    }
    if (write) {
        /* Anything else reported for a proposal that was accepted leaves
         * its fate open: the client must not assume it failed. */
        rep_error(r,
                  "UNKNOWN outcome unknown: leadership changed before "
                  "the write was confirmed; it may or may not have been "
                  "applied");
    } else {
        rep_errorf(r, "ERR read failed: %s", bnode_strerror(code));
    }
}

/* ---------------------------------------------------------------------- */
/* Small parsers                                                           */

int cmd_parse_i64(const char *s, size_t len, int64_t *out)
{
    /* Canonical decimal only, like Redis's string2ll: a value that reads
     * back differently from how it was written is not a number. */
    if (len == 0 || len > 20) {
        return -1;
    }
    size_t i = 0;
    bool neg = false;
    if (s[0] == '-') {
        neg = true;
        i = 1;
        if (len == 1) {
            return -1;
        }
    }
    if (s[i] == '0' && len > i + 1) {
        return -1;
    }
    if (neg && s[i] == '0') {
        return -1;
    }
    uint64_t v = 0;
    for (; i < len; i++) {
        if (s[i] < '0' || s[i] > '9') {
            return -1;
        }
        uint64_t d = (uint64_t)(s[i] - '0');
        if (v > (UINT64_MAX - d) / 10) {
            return -1;
        }
        v = v * 10 + d;
    }
    if (neg) {
        if (v > (uint64_t)INT64_MAX + 1) {
            return -1;
        }
        *out = v == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(int64_t)v;
    } else {
        if (v > (uint64_t)INT64_MAX) {
            return -1;
        }
        *out = (int64_t)v;
    }
    return 0;
}

bool cmd_arg_is(const char *arg, size_t len, const char *word)
{
    size_t n = strlen(word);
    if (n != len) {
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        if (tolower((unsigned char)arg[i]) != word[i]) {
            return false;
        }
    }
    return true;
}

bool cmd_check_key(struct cmd_req *r, size_t len)
{
    if (len == 0) {
        rep_error(r, "ERR empty keys are not supported by ballot");
        return false;
    }
    if (len > KV_KEY_BYTES_MAX) {
        rep_errorf(r, "ERR key too long: ballot's limit is %u bytes",
                   KV_KEY_BYTES_MAX);
        return false;
    }
    return true;
}

bool cmd_check_value(struct cmd_req *r, size_t len)
{
    if (len > KV_VALUE_BYTES_MAX) {
        rep_errorf(r, "ERR value too large: ballot's limit is %u bytes",
                   KV_VALUE_BYTES_MAX);
        return false;
    }
    return true;
}

uint64_t cmd_now_ms(void)
{
    return uv_hrtime() / 1000000u;
}

void cmd_req_finish(struct cmd_req *r)
{
    assert(!r->done);
    r->done = true;
    cmd_fence_free(r);
    histo_add(&r->client->env->req_us[r->req_class],
              histo_us(uv_hrtime() - r->started_ns));
    r->client->env->req_done(r);
}

size_t cmd_appendf(char *buf, size_t cap, size_t len, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

size_t cmd_appendf(char *buf, size_t cap, size_t len, const char *fmt, ...)
{
    if (len >= cap) {
        return len;
    }
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf + len, cap - len, fmt, ap);
    va_end(ap);
    if (n < 0) {
        return len;
    }
    return len + (size_t)n >= cap ? cap - 1 : len + (size_t)n;
}

int cmd_queued_copy(struct cmd_queued *q,
                    const struct cmd_def *def,
                    size_t argc,
                    const char *const *argv,
                    const size_t *argvlen)
{
    size_t bytes = argc * (sizeof(char *) + sizeof(size_t));
    for (size_t i = 0; i < argc; i++) {
        bytes += argvlen[i] + 1;
    }
    char *mem = malloc(bytes);
    if (mem == NULL) {
        return -1;
    }
    const char **av = (const char **)mem;
    size_t *al = (size_t *)(mem + argc * sizeof(char *));
    char *p = (char *)(al + argc);
    for (size_t i = 0; i < argc; i++) {
        memcpy(p, argv[i], argvlen[i]);
        p[argvlen[i]] = '\0';
        av[i] = p;
        al[i] = argvlen[i];
        p += argvlen[i] + 1;
    }
    q->def = def;
    q->argc = argc;
    q->argv = av;
    q->argvlen = al;
    return 0;
}

/* Copies a request so it can wait for EXEC. Returns 0, -1 (no memory) or
 * -2 (over the client's share of the memory budget). */
static int queue_request(struct cmd_client *c,
                         const struct cmd_def *def,
                         const struct resp_request *req)
{
    size_t bytes = sizeof(struct cmd_queued) +
                   req->argc * (sizeof(char *) + sizeof(size_t) + 1);
    for (size_t i = 0; i < req->argc; i++) {
        bytes += req->argvlen[i];
    }
    if (c->env->mem_charge != NULL && !c->env->mem_charge(c, bytes)) {
        return -2;
    }
    c->queued_bytes += bytes;
    if (c->n_queued == c->cap_queued) {
        size_t cap = c->cap_queued ? c->cap_queued * 2 : 8;
        struct cmd_queued *q = realloc(c->queued, cap * sizeof(*q));
        if (q == NULL) {
            return -1;
        }
        c->queued = q;
        c->cap_queued = cap;
    }
    if (cmd_queued_copy(&c->queued[c->n_queued], def, req->argc, req->argv,
                        req->argvlen) != 0) {
        return -1;
    }
    c->n_queued++;
    return 0;
}

/* ---------------------------------------------------------------------- */
/* The table                                                               */

#define RO CMD_READONLY
#define WR CMD_WRITE

/* clang-format off */
const struct cmd_def cmd_table[] = {
    /* name, arity, flags, order, fn, view_fn, order_fn, keys */
    {"ping", -1, CMD_FAST, CMD_ORDER_FREE, cmd_ping, cmd_ping_view, NULL, 0, 0, 0},
    {"echo", 2, CMD_FAST, CMD_ORDER_FREE, cmd_echo, cmd_echo_view, NULL, 0, 0, 0},
    {"hello", -1, CMD_FAST | CMD_NOMULTI, CMD_ORDER_FREE, cmd_hello, NULL, NULL, 0, 0, 0},
    {"auth", -2, CMD_FAST | CMD_NOMULTI, CMD_ORDER_FREE, cmd_auth, NULL, NULL, 0, 0, 0},
    {"select", 2, CMD_FAST | CMD_NOMULTI, CMD_ORDER_FREE, cmd_select, NULL, NULL, 0, 0, 0},
    {"quit", -1, CMD_FAST | CMD_MULTI, CMD_ORDER_FREE, cmd_quit, NULL, NULL, 0, 0, 0},
    {"reset", 1, CMD_FAST | CMD_MULTI, CMD_ORDER_FREE, cmd_reset, NULL, NULL, 0, 0, 0},
    {"client", -2, CMD_FAST | CMD_NOMULTI, CMD_ORDER_FREE, cmd_client, NULL, NULL, 0, 0, 0},
    {"command", -1, CMD_FAST | CMD_NOMULTI, CMD_ORDER_FREE, cmd_command, NULL, NULL, 0, 0, 0},
    {"readonly", 1, CMD_FAST | CMD_NOMULTI, CMD_ORDER_FREE, cmd_readonly, NULL, NULL, 0, 0, 0},
    {"readwrite", 1, CMD_FAST | CMD_NOMULTI, CMD_ORDER_FREE, cmd_readonly, NULL, NULL, 0, 0, 0},
    {"info", -1, CMD_NOMULTI, CMD_ORDER_FREE, cmd_info, NULL, NULL, 0, 0, 0},
    {"multi", 1, CMD_FAST | CMD_MULTI, CMD_ORDER_FREE, cmd_multi, NULL, NULL, 0, 0, 0},
    {"exec", 1, CMD_MULTI, CMD_ORDER_SERIAL, cmd_exec, NULL, NULL, 0, 0, 0},
    {"discard", 1, CMD_FAST | CMD_MULTI, CMD_ORDER_FREE, cmd_discard, NULL, NULL, 0, 0, 0},
    {"watch", -2, CMD_MULTI | RO, CMD_ORDER_SERIAL, cmd_watch, NULL, NULL, 1, -1, 1},
    {"unwatch", 1, CMD_FAST | CMD_NOMULTI, CMD_ORDER_FREE, cmd_unwatch, NULL, NULL, 0, 0, 0},
    {"dbsize", 1, RO | CMD_NOMULTI, CMD_ORDER_READ, cmd_dbsize, NULL, NULL, 0, 0, 0},
    {"exists", -2, RO, CMD_ORDER_READ, NULL, cmd_exists, NULL, 1, -1, 1},
    {"get", 2, RO, CMD_ORDER_READ, NULL, cmd_get, NULL, 1, 1, 1},
    {"mget", -2, RO, CMD_ORDER_READ, NULL, cmd_mget, NULL, 1, -1, 1},
    {"strlen", 2, RO, CMD_ORDER_READ, NULL, cmd_strlen, NULL, 1, 1, 1},
    {"keys", 2, RO | CMD_NOMULTI, CMD_ORDER_READ, cmd_keys, NULL, NULL, 0, 0, 0},
    {"scan", -2, RO | CMD_NOMULTI, CMD_ORDER_READ, cmd_scan, NULL, NULL, 0, 0, 0},
    {"set", -3, WR, CMD_ORDER_WRITE, cmd_rmw, cmd_set, cmd_set_order, 1, 1, 1},
    {"setnx", 3, WR, CMD_ORDER_WRITE, cmd_rmw, cmd_setnx, NULL, 1, 1, 1},
    {"getset", 3, WR, CMD_ORDER_WRITE, cmd_rmw, cmd_getset, NULL, 1, 1, 1},
    {"getdel", 2, WR, CMD_ORDER_WRITE, cmd_rmw, cmd_getdel, NULL, 1, 1, 1},
    {"del", -2, WR, CMD_ORDER_WRITE, cmd_del, cmd_del_view, NULL, 1, -1, 1},
    {"unlink", -2, WR, CMD_ORDER_WRITE, cmd_del, cmd_del_view, NULL, 1, -1, 1},
    {"incr", 2, WR, CMD_ORDER_WRITE, cmd_rmw, cmd_incr, NULL, 1, 1, 1},
    {"incrby", 3, WR, CMD_ORDER_WRITE, cmd_rmw, cmd_incrby, NULL, 1, 1, 1},
    {"decr", 2, WR, CMD_ORDER_WRITE, cmd_rmw, cmd_decr, NULL, 1, 1, 1},
    {"decrby", 3, WR, CMD_ORDER_WRITE, cmd_rmw, cmd_decrby, NULL, 1, 1, 1},
    {"append", 3, WR, CMD_ORDER_WRITE, cmd_rmw, cmd_append, NULL, 1, 1, 1},
    {"incrbyfloat", 3, WR, CMD_ORDER_WRITE, cmd_rmw, cmd_incrbyfloat, NULL, 1, 1, 1},
    {"mset", -3, WR, CMD_ORDER_WRITE, NULL, cmd_mset, NULL, 1, -1, 2},
    {"msetnx", -3, WR, CMD_ORDER_WRITE, cmd_rmw, cmd_msetnx, NULL, 1, -1, 2},
    {"brange", -3, RO | CMD_NOMULTI, CMD_ORDER_READ, cmd_brange, NULL, NULL, 1, 2, 1},
    {"btxn", -4, WR | CMD_NOMULTI, CMD_ORDER_WRITE, cmd_btxn, NULL, NULL, 0, 0, 0},
    {"breq", -4, WR | CMD_NOMULTI, CMD_ORDER_SERIAL, cmd_breq, NULL, NULL, 0, 0, 0},
    {"bmeta", 2, RO, CMD_ORDER_READ, NULL, cmd_bmeta, NULL, 1, 1, 1},
    {"bstatus", 1, CMD_ADMIN | CMD_NOMULTI, CMD_ORDER_FREE, cmd_bstatus, NULL, NULL, 0, 0, 0},
    {"btransfer", 2, CMD_ADMIN | CMD_NOMULTI, CMD_ORDER_FREE, cmd_btransfer, NULL, NULL, 0, 0, 0},
    {"bfallback", -2, CMD_ADMIN | CMD_NOMULTI, CMD_ORDER_FREE, cmd_fallback, NULL, NULL, 0, 0, 0},
    {"wait", 3, CMD_NOMULTI, CMD_ORDER_FREE, cmd_wait, NULL, NULL, 0, 0, 0},
    {"bmember", -2, CMD_ADMIN | CMD_NOMULTI, CMD_ORDER_FREE, cmd_bmember, NULL, NULL, 0, 0, 0},
    {"bcompact", 2, CMD_ADMIN | CMD_NOMULTI, CMD_ORDER_WRITE, cmd_bcompact, NULL, NULL, 0, 0, 0},
    {"bhistory", -2, RO | CMD_NOMULTI, CMD_ORDER_READ, cmd_bhistory, NULL, NULL, 0, 0, 0},
    {"type", 2, RO, CMD_ORDER_READ, NULL, cmd_type, NULL, 1, 1, 1},
    {"getrange", 4, RO, CMD_ORDER_READ, NULL, cmd_getrange, NULL, 1, 1, 1},
    {"substr", 4, RO, CMD_ORDER_READ, NULL, cmd_getrange, NULL, 1, 1, 1},
    {"setrange", 4, WR, CMD_ORDER_SERIAL, NULL, cmd_setrange, NULL, 1, 1, 1},
    {"rename", 3, WR, CMD_ORDER_SERIAL, NULL, cmd_rename, NULL, 1, 2, 1},
    {"renamenx", 3, WR, CMD_ORDER_SERIAL, NULL, cmd_renamenx, NULL, 1, 2, 1},
    {"copy", -3, WR, CMD_ORDER_SERIAL, NULL, cmd_copy, NULL, 1, 2, 1},
    {"memory", -2, RO, CMD_ORDER_READ, NULL, cmd_memory, NULL, 2, 2, 1},
    {"object", -2, RO, CMD_ORDER_READ, NULL, cmd_object, NULL, 2, 2, 1},
    /* Hashes (commands_hash.c): not in MULTI (no view handler). */
    {"hset", -4, WR, CMD_ORDER_WRITE, cmd_hash_write, NULL, NULL, 1, 1, 1},
    {"hmset", -4, WR, CMD_ORDER_WRITE, cmd_hash_write, NULL, NULL, 1, 1, 1},
    {"hsetnx", 4, WR, CMD_ORDER_WRITE, cmd_hash_write, NULL, NULL, 1, 1, 1},
    {"hdel", -3, WR, CMD_ORDER_WRITE, cmd_hash_write, NULL, NULL, 1, 1, 1},
    {"hincrby", 4, WR, CMD_ORDER_WRITE, cmd_hash_write, NULL, NULL, 1, 1, 1},
    {"hincrbyfloat", 4, WR, CMD_ORDER_WRITE, cmd_hash_write, NULL, NULL, 1, 1, 1},
    {"hget", 3, RO, CMD_ORDER_READ, cmd_hash_read, NULL, NULL, 1, 1, 1},
    {"hmget", -3, RO, CMD_ORDER_READ, cmd_hash_read, NULL, NULL, 1, 1, 1},
    {"hexists", 3, RO, CMD_ORDER_READ, cmd_hash_read, NULL, NULL, 1, 1, 1},
    {"hstrlen", 3, RO, CMD_ORDER_READ, cmd_hash_read, NULL, NULL, 1, 1, 1},
    {"hlen", 2, RO, CMD_ORDER_READ, cmd_hash_read, NULL, NULL, 1, 1, 1},
    {"hgetall", 2, RO, CMD_ORDER_READ, cmd_hash_read, NULL, NULL, 1, 1, 1},
    {"hkeys", 2, RO, CMD_ORDER_READ, cmd_hash_read, NULL, NULL, 1, 1, 1},
    {"hvals", 2, RO, CMD_ORDER_READ, cmd_hash_read, NULL, NULL, 1, 1, 1},
    {"hscan", -3, RO, CMD_ORDER_READ, cmd_hash_read, NULL, NULL, 1, 1, 1},
    {"flushdb", -1, WR | CMD_NOMULTI, CMD_ORDER_WRITE, cmd_flush, NULL, NULL, 0, 0, 0},
    {"flushall", -1, WR | CMD_NOMULTI, CMD_ORDER_WRITE, cmd_flush, NULL, NULL, 0, 0, 0},
    {"time", 1, CMD_FAST, CMD_ORDER_FREE, cmd_time, NULL, NULL, 0, 0, 0},
    {"config", -2, CMD_ADMIN | CMD_NOMULTI, CMD_ORDER_FREE, cmd_config, NULL, NULL, 0, 0, 0},
    {"role", 1, CMD_FAST | CMD_NOMULTI, CMD_ORDER_FREE, cmd_role, NULL, NULL, 0, 0, 0},
    {"bsnapshot", -2, CMD_ADMIN | CMD_NOMULTI, CMD_ORDER_SERIAL, cmd_bsnapshot, NULL, NULL, 0, 0, 0},
    {"bwatch", -2, RO | CMD_NOMULTI, CMD_ORDER_READ, cmd_bwatch, NULL, NULL, 1, 1, 1},
    {"bunwatch", -1, CMD_NOMULTI, CMD_ORDER_FREE, cmd_bunwatch, NULL, NULL, 0, 0, 0},
    {"acl", -2, CMD_NOMULTI, CMD_ORDER_SERIAL, cmd_acl, NULL, NULL, 0, 0, 0},
    {"bsnowflake", -1, CMD_FAST | CMD_NOMULTI, CMD_ORDER_FREE, cmd_bsnowflake, NULL, NULL, 0, 0, 0},
    {"bseq", -2, WR | CMD_NOMULTI, CMD_ORDER_WRITE, cmd_bseq, NULL, NULL, 0, 0, 0},
    {"expire", -3, WR, CMD_ORDER_WRITE, cmd_expiry, NULL, NULL, 1, 1, 1},
    {"pexpire", -3, WR, CMD_ORDER_WRITE, cmd_expiry, NULL, NULL, 1, 1, 1},
    {"expireat", -3, WR, CMD_ORDER_WRITE, cmd_expiry, NULL, NULL, 1, 1, 1},
    {"pexpireat", -3, WR, CMD_ORDER_WRITE, cmd_expiry, NULL, NULL, 1, 1, 1},
    {"persist", 2, WR, CMD_ORDER_WRITE, cmd_expiry, NULL, NULL, 1, 1, 1},
    {"ttl", 2, RO, CMD_ORDER_READ, cmd_expiry, NULL, NULL, 1, 1, 1},
    {"pttl", 2, RO, CMD_ORDER_READ, cmd_expiry, NULL, NULL, 1, 1, 1},
    {"getex", -2, WR, CMD_ORDER_WRITE, cmd_expiry, NULL, cmd_getex_order, 1, 1, 1},
    {"setex", 4, WR, CMD_ORDER_WRITE, cmd_expiry, NULL, NULL, 1, 1, 1},
    {"psetex", 4, WR, CMD_ORDER_WRITE, cmd_expiry, NULL, NULL, 1, 1, 1},
    {"blease", -2, WR | CMD_NOMULTI, CMD_ORDER_WRITE, cmd_blease, NULL, cmd_blease_order, 0, 0, 0},
    {"bput", -3, WR | CMD_NOMULTI, CMD_ORDER_WRITE, cmd_bput, NULL, NULL, 1, 1, 1},
    {"block", -3, WR | CMD_NOMULTI, CMD_ORDER_SERIAL, cmd_block, NULL, cmd_block_order, 0, 0, 0},
    {"bfence", -4, WR | CMD_NOMULTI, CMD_ORDER_SERIAL, cmd_bfence, NULL, NULL, 0, 0, 0},
    {"belect", -3, WR | CMD_NOMULTI, CMD_ORDER_SERIAL, cmd_belect, NULL, cmd_belect_order, 0, 0, 0},
};
/* clang-format on */

const size_t cmd_table_len = sizeof(cmd_table) / sizeof(cmd_table[0]);

/* cmd_lookup() runs twice per request: an open-addressing table of the
 * command names (lower case hashed, linear probing) instead of a scan of
 * the whole table. Built once per process, for every node it embeds. */
#define CMD_SLOTS 1024u
static uint16_t cmd_slots[CMD_SLOTS]; /* index into cmd_table + 1; 0: empty */
static pthread_once_t cmd_slots_once = PTHREAD_ONCE_INIT;

static uint32_t cmd_name_hash(const char *name, size_t len)
{
    uint32_t h = 2166136261u; /* FNV-1a */
    for (size_t i = 0; i < len; i++) {
        h = (h ^ (uint8_t)tolower((unsigned char)name[i])) * 16777619u;
    }
    return h;
}

static void cmd_slots_build(void)
{
    _Static_assert(CMD_SLOTS <= UINT16_MAX, "slots hold uint16_t indexes");
    _Static_assert(sizeof(cmd_table) / sizeof(cmd_table[0]) <= CMD_SLOTS / 2,
                   "the command table fills at most half of its slots");
    for (size_t i = 0; i < cmd_table_len; i++) {
        const char *n = cmd_table[i].name;
        uint32_t h = cmd_name_hash(n, strlen(n)) & (CMD_SLOTS - 1);
        while (cmd_slots[h] != 0) {
            h = (h + 1) & (CMD_SLOTS - 1);
        }
        cmd_slots[h] = (uint16_t)(i + 1);
    }
}

const struct cmd_def *cmd_lookup(const char *name, size_t len)
{
    pthread_once(&cmd_slots_once, cmd_slots_build);
    uint32_t h = cmd_name_hash(name, len) & (CMD_SLOTS - 1);
    while (cmd_slots[h] != 0) {
        const struct cmd_def *d = &cmd_table[cmd_slots[h] - 1];
        if (cmd_arg_is(name, len, d->name)) {
            return d;
        }
        h = (h + 1) & (CMD_SLOTS - 1);
    }
    return NULL;
}

/* ---------------------------------------------------------------------- */
/* Dispatch                                                                */

void cmd_client_init(struct cmd_client *c, struct cmd_env *env)
{
    memset(c, 0, sizeof(*c));
    c->env = env;
    memcpy(c->user, "default", sizeof("default"));
    c->id = ++env->next_client_id;
    c->proto = 2;
    c->fd = -1;
    c->created_ms = c->last_cmd_ms = cmd_now_ms();
    c->next = env->clients;
    if (env->clients != NULL) {
        env->clients->prev = c;
    }
    env->clients = c;
}

void cmd_client_close(struct cmd_client *c)
{
    cmd_client_streams_close(c);
    cmd_client_exports_release(c);
    cmd_client_discard(c);
    cmd_client_unwatch(c);
    free(c->name);
    c->name = NULL;
    if (c->prev != NULL) {
        c->prev->next = c->next;
    } else if (c->env->clients == c) {
        c->env->clients = c->next;
    }
    if (c->next != NULL) {
        c->next->prev = c->prev;
    }
    c->prev = c->next = NULL;
}

static bool arity_ok(const struct cmd_def *d, size_t argc)
{
    if (d->arity > 0) {
        return argc == (size_t)d->arity;
    }
    return argc >= (size_t)-d->arity;
}

/* Commands that run rather than queue between MULTI and EXEC: those
 * flagged so, and BREQ wrapping EXEC (an EXEC with a request id). */
static bool runs_in_multi(const struct cmd_def *d,
                          const struct resp_request *req)
{
    return (d->flags & CMD_MULTI) != 0 ||
           (d->fn == cmd_breq && req->argc == 4 &&
            cmd_arg_is(req->argv[3], req->argvlen[3], "exec"));
}

int cmd_order_of(const struct cmd_client *c, const struct resp_request *req)
{
    const struct cmd_def *d = cmd_lookup(req->argv[0], req->argvlen[0]);
    if (d == NULL || !arity_ok(d, req->argc)) {
        return CMD_ORDER_FREE;
    }
    if (c->in_multi && !runs_in_multi(d, req)) {
        return CMD_ORDER_FREE;
    }
    if (d->order_fn != NULL) {
        return d->order_fn(req->argc, req->argv, req->argvlen);
    }
    return d->order;
}

/* The commands of the Redis types ballot does not store, so that their
 * error names the type (docs/protocol.md, "Not supported yet"). */
static const struct
{
    const char *type;
    const char *names;
} unsupported_types[] = {
    {"lists",
     " blmove blmpop blpop brpop brpoplpush lindex linsert llen lmove lmpop "
     "lpop lpos lpush lpushx lrange lrem lset ltrim rpop rpoplpush rpush "
     "rpushx "},
    {"sets",
     " sadd scard sdiff sdiffstore sinter sintercard sinterstore sismember "
     "smembers smismember smove spop srandmember srem sscan sunion "
     "sunionstore "},
    {"sorted sets",
     " bzmpop bzpopmax bzpopmin zadd zcard zcount zdiff zdiffstore zincrby "
     "zinter zintercard zinterstore zlexcount zmpop zmscore zpopmax zpopmin "
     "zrandmember zrange zrangebylex zrangebyscore zrangestore zrank zrem "
     "zremrangebylex zremrangebyrank zremrangebyscore zrevrange "
     "zrevrangebylex zrevrangebyscore zrevrank zscan zscore zunion "
     "zunionstore geoadd geodist geohash geopos georadius georadius_ro "
     "georadiusbymember georadiusbymember_ro geosearch geosearchstore "},
    {"streams",
     " xack xadd xautoclaim xclaim xdel xgroup xinfo xlen xpending xrange "
     "xread xreadgroup xrevrange xsetid xtrim "},
    {"HyperLogLogs", " pfadd pfcount pfdebug pfmerge pfselftest "},
};

/* The type whose command @name is, or NULL. */
static const char *unsupported_type(const char *name, size_t len)
{
    char word[32];
    if (len == 0 || len + 3 > sizeof(word)) {
        return NULL;
    }
    word[0] = ' ';
    for (size_t i = 0; i < len; i++) {
        word[i + 1] = (char)tolower((unsigned char)name[i]);
    }
    word[len + 1] = ' ';
    word[len + 2] = '\0';
    for (size_t i = 0;
         i < sizeof(unsupported_types) / sizeof(unsupported_types[0]); i++) {
        if (strstr(unsupported_types[i].names, word) != NULL) {
            return unsupported_types[i].type;
        }
    }
    return NULL;
}

static void unknown_command(struct cmd_req *r, const struct resp_request *req)
{
    /* The same shape as Redis's message: clients and tests match on it. */
    char args[256];
    size_t n = 0;
    args[0] = '\0';
    for (size_t i = 1; i < req->argc && n < 128; i++) {
        int room = (int)(128 - n);
        int len = req->argvlen[i] < (size_t)room ? (int)req->argvlen[i] : room;
        n = cmd_appendf(args, sizeof(args), n, "'%.*s' ", len, req->argv[i]);
    }
    int nl = req->argvlen[0] > 128 ? 128 : (int)req->argvlen[0];
    const char *type = unsupported_type(req->argv[0], req->argvlen[0]);
    if (type != NULL) {
        /* Redis's words first, so that clients matching on them still
         * do; then why. */
        rep_errorf(r,
                   "ERR unknown command '%.*s', with args beginning with: "
                   "%s(%s are not supported by ballot: it stores strings "
                   "and hashes)",
                   nl, req->argv[0], args, type);
        return;
    }
    rep_errorf(r, "ERR unknown command '%.*s', with args beginning with: %s",
               nl, req->argv[0], args);
}

/* The latency class of a request (enum server_req_class). */
static uint8_t req_class(const struct cmd_def *d, size_t argc, int order)
{
    if (d == NULL) {
        return SERVER_REQ_OTHER;
    }
    if (d->fn == cmd_exec || d->fn == cmd_btxn) {
        return SERVER_REQ_TXN;
    }
    if (d->flags & CMD_ADMIN) {
        return SERVER_REQ_ADMIN;
    }
    if (d->flags & CMD_WRITE) {
        /* A plain SET is the one blind write among cmd_rmw's commands. */
        bool plain_set =
            d->fn == cmd_rmw && strcmp(d->name, "set") == 0 && argc == 3;
        return (d->fn == cmd_rmw && !plain_set) || order == CMD_ORDER_SERIAL
                   ? SERVER_REQ_RMW
                   : SERVER_REQ_WRITE;
    }
    if (d->flags & CMD_READONLY) {
        return SERVER_REQ_READ;
    }
    return SERVER_REQ_OTHER;
}

void cmd_dispatch(struct cmd_req *r, const struct resp_request *req)
{
    struct cmd_client *c = r->client;
    const struct cmd_def *d = cmd_lookup(req->argv[0], req->argvlen[0]);
    int rc;
    r->started_ns = uv_hrtime();
    r->req_class = req_class(d, req->argc, r->order);
    c->env->total_commands++;
    c->last_cmd_ms = cmd_now_ms();
    c->last_cmd = d != NULL ? d->name : "unknown";
    if (d == NULL) {
        unknown_command(r, req);
        c->multi_dirty = c->in_multi;
        cmd_req_finish(r);
        return;
    }
    if (!arity_ok(d, req->argc)) {
        rep_arity_error(r, d->name);
        c->multi_dirty = c->in_multi;
        cmd_req_finish(r);
        return;
    }
    /* The gate (acl.c): a connection that must authenticate runs nothing
     * but AUTH, HELLO ... AUTH, QUIT and RESET until it did, and then only
     * what its user may run, on the keys it may touch (NOPERM). Queued
     * commands pass it when queued. */
    r->def = d;
    if ((d->fn != cmd_quit && !acl_admit(r, req)) || !acl_gate(r, d, req)) {
        c->multi_dirty = c->in_multi;
        cmd_req_finish(r);
        return;
    }
    if (c->in_multi && !runs_in_multi(d, req)) {
        if (d->view_fn == NULL) {
            rep_error(r, "ERR Command not allowed inside a transaction");
            c->multi_dirty = true;
        } else if ((rc = queue_request(c, d, req)) != 0) {
            rep_error(r, rc == -2 ? "ERR MULTI queue over this client's share "
                                    "of the server's client memory "
                                    "(max_client_memory): the transaction "
                                    "will be discarded"
                                  : "ERR out of memory");
            c->multi_dirty = true;
        } else {
            rep_simple(r, "QUEUED");
        }
        cmd_req_finish(r);
        return;
    }
    if (d->fn != NULL) {
        d->fn(r, req->argc, req->argv, req->argvlen);
    } else {
        cmd_view_start(r, d, req->argc, req->argv, req->argvlen);
    }
}
