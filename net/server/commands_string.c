/*
 * commands_string.c - the string commands. Each is a handler run on a view
 * (commands_view.c): it reads and writes keys through the overlay and
 * writes its reply, and the runner turns the overlay into one atomic kv
 * transaction. The same handlers run between MULTI and EXEC.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "commands.h"
#include "kv.h"

CMD_DECL_VIEW(cmd_get)
{
    const uint8_t *val;
    uint32_t len;
    (void)argc;
    if (cmd_view_get(v, argv[1], argvlen[1], &val, &len)) {
        rep_bulk(r, val, len);
    } else {
        rep_null(r);
    }
}

CMD_DECL_VIEW(cmd_mget)
{
    const uint8_t *val;
    uint32_t len;
    rep_array(r, argc - 1);
    for (size_t i = 1; i < argc; i++) {
        /* Redis's MGET answers null for a key of another type. */
        if (cmd_view_kind(v, argv[i], argvlen[i]) == CMD_KIND_STRING &&
            cmd_view_get(v, argv[i], argvlen[i], &val, &len)) {
            rep_bulk(r, val, len);
        } else {
            rep_null(r);
        }
    }
}

CMD_DECL_VIEW(cmd_strlen)
{
    const uint8_t *val;
    uint32_t len;
    (void)argc;
    cmd_view_get(v, argv[1], argvlen[1], &val, &len);
    rep_int(r, len);
}

CMD_DECL_VIEW(cmd_exists)
{
    int64_t n = 0;
    for (size_t i = 1; i < argc; i++) {
        n += cmd_view_kind(v, argv[i], argvlen[i]) != CMD_KIND_NONE;
    }
    rep_int(r, n);
}

CMD_DECL_VIEW(cmd_bmeta)
{
    const uint8_t *val;
    uint32_t len = 0;
    (void)argc;
    /* Any type: a hash's revisions guard a BTXN like a string's (its
     * value_bytes is 0: its fields are not one value). */
    int kind = cmd_view_kind(v, argv[1], argvlen[1]);
    if (kind == CMD_KIND_NONE) {
        rep_null(r);
        return;
    }
    if (kind == CMD_KIND_STRING) {
        (void)cmd_view_get(v, argv[1], argvlen[1], &val, &len);
    }
    uint64_t create = 0, mod = 0, ver = 0;
    (void)cmd_view_meta(v, argv[1], argvlen[1], &create, &mod, &ver);
    /* Inside MULTI the metadata is the stored one, from before the
     * transaction: revisions of its own writes are not known yet. */
    rep_map(r, 4);
    rep_cstr(r, "create_revision");
    rep_int(r, (int64_t)create);
    rep_cstr(r, "mod_revision");
    rep_int(r, (int64_t)mod);
    rep_cstr(r, "version");
    rep_int(r, (int64_t)ver);
    rep_cstr(r, "value_bytes");
    rep_int(r, len);
}

/* SET options. */
enum {
    SET_NX = 1 << 0,
    SET_XX = 1 << 1,
    SET_GET = 1 << 2,
    SET_EXPIRY = 1 << 3,
};

/* Parses SET's options into flags; -1 on a syntax error. */
static int set_options(size_t argc,
                       const char *const *argv,
                       const size_t *argvlen)
{
    int f = 0;
    for (size_t i = 3; i < argc; i++) {
        const char *a = argv[i];
        size_t n = argvlen[i];
        if (cmd_arg_is(a, n, "nx") && !(f & SET_XX)) {
            f |= SET_NX;
        } else if (cmd_arg_is(a, n, "xx") && !(f & SET_NX)) {
            f |= SET_XX;
        } else if (cmd_arg_is(a, n, "get")) {
            f |= SET_GET;
        } else if (cmd_arg_is(a, n, "keepttl")) {
            f |= SET_EXPIRY;
        } else if ((cmd_arg_is(a, n, "ex") || cmd_arg_is(a, n, "px") ||
                    cmd_arg_is(a, n, "exat") || cmd_arg_is(a, n, "pxat")) &&
                   i + 1 < argc) {
            f |= SET_EXPIRY;
            i++;
        } else {
            return -1;
        }
    }
    return f;
}

int cmd_set_order(size_t argc, const char *const *argv, const size_t *argvlen)
{
    int f = set_options(argc, argv, argvlen);
    if (f < 0) {
        return CMD_ORDER_FREE; /* answered with an error, no node */
    }
    /* With NX, XX or GET it is still one proposal and no read first: the
     * state machine decides (commands_rmw.c). */
    return CMD_ORDER_WRITE;
}

CMD_DECL_VIEW(cmd_set)
{
    const uint8_t *val;
    uint32_t len;
    int f = set_options(argc, argv, argvlen);
    if (f < 0) {
        rep_error(r, "ERR syntax error");
        return;
    }
    if (f & SET_EXPIRY) {
        /* Outside MULTI, SET with an expiry is one kv command
         * (commands_rmw.c); a view writes values only. */
        rep_error(r,
                  "ERR SET with an expiry is not supported inside MULTI in "
                  "ballot");
        return;
    }
    if (!cmd_check_key(r, argvlen[1]) || !cmd_check_value(r, argvlen[2])) {
        return;
    }
    int exists = 0;
    if (f & (SET_NX | SET_XX | SET_GET)) {
        exists = cmd_view_get(v, argv[1], argvlen[1], &val, &len);
    }
    bool go = !((f & SET_NX) && exists) && !((f & SET_XX) && !exists);
    if (f & SET_GET) {
        if (exists) {
            rep_bulk(r, val, len);
        } else {
            rep_null(r);
        }
    } else if (go) {
        rep_ok(r);
    } else {
        rep_null(r);
    }
    if (go) {
        cmd_view_write(v, argv[1], argvlen[1], argv[2], argvlen[2]);
    }
}

CMD_DECL_VIEW(cmd_setnx)
{
    const uint8_t *val;
    uint32_t len;
    (void)argc;
    if (!cmd_check_key(r, argvlen[1]) || !cmd_check_value(r, argvlen[2])) {
        return;
    }
    if (cmd_view_get(v, argv[1], argvlen[1], &val, &len)) {
        rep_int(r, 0);
        return;
    }
    cmd_view_write(v, argv[1], argvlen[1], argv[2], argvlen[2]);
    rep_int(r, 1);
}

CMD_DECL_VIEW(cmd_getset)
{
    const uint8_t *val;
    uint32_t len;
    (void)argc;
    if (!cmd_check_key(r, argvlen[1]) || !cmd_check_value(r, argvlen[2])) {
        return;
    }
    if (cmd_view_get(v, argv[1], argvlen[1], &val, &len)) {
        rep_bulk(r, val, len);
    } else {
        rep_null(r);
    }
    cmd_view_write(v, argv[1], argvlen[1], argv[2], argvlen[2]);
}

CMD_DECL_VIEW(cmd_getdel)
{
    const uint8_t *val;
    uint32_t len;
    (void)argc;
    if (cmd_view_get(v, argv[1], argvlen[1], &val, &len)) {
        rep_bulk(r, val, len);
        cmd_view_write(v, argv[1], argvlen[1], NULL, 0);
    } else {
        rep_null(r);
    }
}

CMD_DECL_VIEW(cmd_del_view)
{
    int64_t n = 0;
    for (size_t i = 1; i < argc; i++) {
        if (cmd_view_kind(v, argv[i], argvlen[i]) != CMD_KIND_NONE) {
            n++;
            cmd_view_write(v, argv[i], argvlen[i], NULL, 0);
        }
    }
    rep_int(r, n);
}

/* Adds @delta to the integer stored at @key (missing: 0). */
static void incr_by(struct cmd_view *v,
                    struct cmd_req *r,
                    const char *key,
                    size_t klen,
                    int64_t delta)
{
    const uint8_t *val;
    uint32_t len;
    int64_t cur = 0;
    if (!cmd_check_key(r, klen)) {
        return;
    }
    if (cmd_view_get(v, key, klen, &val, &len) &&
        cmd_parse_i64((const char *)val, len, &cur) != 0) {
        rep_error(r, "ERR value is not an integer or out of range");
        return;
    }
    if ((delta < 0 && cur < 0 && delta < INT64_MIN - cur) ||
        (delta > 0 && cur > 0 && delta > INT64_MAX - cur)) {
        rep_error(r, "ERR increment or decrement would overflow");
        return;
    }
    cur += delta;
    char buf[32];
    int n = snprintf(buf, sizeof(buf), "%" PRId64, cur);
    cmd_view_write_ttl(v, key, klen, buf, (size_t)n, true, 0);
    rep_int(r, cur);
}

CMD_DECL_VIEW(cmd_incr)
{
    (void)argc;
    incr_by(v, r, argv[1], argvlen[1], 1);
}

CMD_DECL_VIEW(cmd_decr)
{
    (void)argc;
    incr_by(v, r, argv[1], argvlen[1], -1);
}

CMD_DECL_VIEW(cmd_incrby)
{
    int64_t d;
    (void)argc;
    if (cmd_parse_i64(argv[2], argvlen[2], &d) != 0) {
        rep_error(r, "ERR value is not an integer or out of range");
        return;
    }
    incr_by(v, r, argv[1], argvlen[1], d);
}

CMD_DECL_VIEW(cmd_decrby)
{
    int64_t d;
    (void)argc;
    if (cmd_parse_i64(argv[2], argvlen[2], &d) != 0) {
        rep_error(r, "ERR value is not an integer or out of range");
        return;
    }
    if (d == INT64_MIN) {
        rep_error(r, "ERR decrement would overflow");
        return;
    }
    incr_by(v, r, argv[1], argvlen[1], -d);
}

CMD_DECL_VIEW(cmd_append)
{
    const uint8_t *val;
    uint32_t len;
    (void)argc;
    if (!cmd_check_key(r, argvlen[1])) {
        return;
    }
    int exists = cmd_view_get(v, argv[1], argvlen[1], &val, &len);
    size_t total = (exists ? len : 0) + argvlen[2];
    if (!cmd_check_value(r, total)) {
        return;
    }
    uint8_t *buf = malloc(total ? total : 1);
    if (buf == NULL) {
        cmd_view_oom(v);
        return;
    }
    if (exists && len > 0) {
        memcpy(buf, val, len);
    }
    memcpy(buf + (exists ? len : 0), argv[2], argvlen[2]);
    cmd_view_write_ttl(v, argv[1], argvlen[1], buf, total, true, 0);
    free(buf);
    rep_int(r, (int64_t)total);
}

/* INCRBYFLOAT between MULTI and EXEC: the state machine's own evaluation
 * (kv_rmw_eval), so the bytes are those a direct INCRBYFLOAT writes. */
CMD_DECL_VIEW(cmd_incrbyfloat)
{
    const uint8_t *val;
    uint32_t len;
    (void)argc;
    if (!cmd_check_key(r, argvlen[1])) {
        return;
    }
    struct kv_kv old;
    memset(&old, 0, sizeof(old));
    int exists = cmd_view_get(v, argv[1], argvlen[1], &val, &len);
    old.value = val;
    old.value_len = len;
    struct kv_op op;
    memset(&op, 0, sizeof(op));
    op.type = KV_OP_INCRBYFLOAT;
    op.value = (const uint8_t *)argv[2];
    op.value_len = argvlen[2] > KV_VALUE_BYTES_MAX ? KV_VALUE_BYTES_MAX + 1u
                                                   : (uint32_t)argvlen[2];
    uint8_t *out = NULL;
    uint32_t out_len = 0;
    uint64_t refusal = 0;
    if (kv_rmw_eval(&op, exists ? &old : NULL, NULL, &out, &out_len,
                    &refusal) != 0) {
        cmd_view_oom(v);
        return;
    }
    if (refusal == KV_RMW_NAN_OR_INF) {
        rep_error(r, "ERR increment would produce NaN or Infinity");
    } else if (refusal != KV_RMW_APPLIED) {
        rep_error(r, "ERR value is not a valid float");
    } else {
        cmd_view_write_ttl(v, argv[1], argvlen[1], out, out_len, true, 0);
        rep_bulk(r, out, out_len);
    }
    free(out);
}

/* Checks MSET/MSETNX arguments: pairs, limits. */
static bool mset_check(struct cmd_req *r,
                       const char *name,
                       size_t argc,
                       const size_t *argvlen)
{
    if ((argc - 1) % 2 != 0) {
        rep_arity_error(r, name);
        return false;
    }
    for (size_t i = 1; i < argc; i += 2) {
        if (!cmd_check_key(r, argvlen[i]) ||
            !cmd_check_value(r, argvlen[i + 1])) {
            return false;
        }
    }
    return true;
}

CMD_DECL_VIEW(cmd_mset)
{
    if (!mset_check(r, "mset", argc, argvlen)) {
        return;
    }
    for (size_t i = 1; i < argc; i += 2) {
        cmd_view_write(v, argv[i], argvlen[i], argv[i + 1], argvlen[i + 1]);
    }
    rep_ok(r);
}

CMD_DECL_VIEW(cmd_msetnx)
{
    bool any = false;
    if (!mset_check(r, "msetnx", argc, argvlen)) {
        return;
    }
    /* Every key is read, even after one exists, so that one load finds
     * them all. */
    for (size_t i = 1; i < argc; i += 2) {
        any |= cmd_view_kind(v, argv[i], argvlen[i]) != CMD_KIND_NONE;
    }
    if (any) {
        rep_int(r, 0);
        return;
    }
    for (size_t i = 1; i < argc; i += 2) {
        cmd_view_write(v, argv[i], argvlen[i], argv[i + 1], argvlen[i + 1]);
    }
    rep_int(r, 1);
}
