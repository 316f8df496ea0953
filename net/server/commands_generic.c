/*
 * commands_generic.c - the key commands clients and tools reach for beyond
 * GET and SET (TYPE, GETRANGE, SETRANGE, RENAME, RENAMENX, COPY, MEMORY
 * USAGE, OBJECT ENCODING), as handlers on a view (commands_view.c), so
 * that they are atomic, run inside MULTI, and a write among them commits
 * only if the keys it read did not change. Replies and errors follow
 * Redis 7.0's (t_string.c, db.c, object.c); docs/protocol.md says where
 * ballot differs.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "commands.h"
#include "kv.h"

/* Bytes a key's record takes in the store besides its key and value: the
 * 24-byte header (create, mod revision, version) and LMDB's 8-byte node
 * header. MEMORY USAGE reports key + value + this. */
#define RECORD_OVERHEAD_BYTES 32u

CMD_DECL_VIEW(cmd_type)
{
    (void)argc;
    static const char *const names[] = {"none", "string", "hash"};
    rep_simple(r, names[cmd_view_kind(v, argv[1], argvlen[1])]);
}

CMD_DECL_VIEW(cmd_getrange)
{
    const uint8_t *val = NULL;
    uint32_t len = 0;
    int64_t start, end;
    (void)argc;
    if (cmd_parse_i64(argv[2], argvlen[2], &start) != 0 ||
        cmd_parse_i64(argv[3], argvlen[3], &end) != 0) {
        rep_error(r, "ERR value is not an integer or out of range");
        return;
    }
    if (!cmd_view_get(v, argv[1], argvlen[1], &val, &len)) {
        len = 0;
    }
    /* Redis's getrangeCommand, negative indexes from the end. */
    int64_t n = len;
    if (start < 0 && end < 0 && start > end) {
        rep_bulk(r, "", 0);
        return;
    }
    if (start < 0) {
        start = n + start;
    }
    if (end < 0) {
        end = n + end;
    }
    if (start < 0) {
        start = 0;
    }
    if (end < 0) {
        end = 0;
    }
    if (end >= n) {
        end = n - 1;
    }
    if (start > end || n == 0) {
        rep_bulk(r, "", 0);
        return;
    }
    rep_bulk(r, val + start, (size_t)(end - start + 1));
}

CMD_DECL_VIEW(cmd_setrange)
{
    const uint8_t *val = NULL;
    uint32_t len = 0;
    int64_t offset;
    (void)argc;
    if (cmd_parse_i64(argv[2], argvlen[2], &offset) != 0) {
        rep_error(r, "ERR value is not an integer or out of range");
        return;
    }
    if (offset < 0) {
        rep_error(r, "ERR offset is out of range");
        return;
    }
    if (!cmd_check_key(r, argvlen[1])) {
        return;
    }
    int exists = cmd_view_get(v, argv[1], argvlen[1], &val, &len);
    if (argvlen[3] == 0) {
        /* Nothing to write: the length as it is (no key is created). */
        rep_int(r, exists ? len : 0);
        return;
    }
    if ((uint64_t)offset > KV_VALUE_BYTES_MAX ||
        (uint64_t)offset + argvlen[3] > KV_VALUE_BYTES_MAX) {
        rep_errorf(r, "ERR value too large: ballot's limit is %u bytes",
                   KV_VALUE_BYTES_MAX);
        return;
    }
    size_t total = (size_t)offset + argvlen[3];
    size_t old = exists ? len : 0;
    if (total < old) {
        total = old;
    }
    uint8_t *buf = calloc(1, total);
    if (buf == NULL) {
        cmd_view_oom(v);
        return;
    }
    if (old > 0) {
        memcpy(buf, val, old);
    }
    memcpy(buf + offset, argv[3], argvlen[3]);
    cmd_view_write_ttl(v, argv[1], argvlen[1], buf, total, true, 0);
    free(buf);
    rep_int(r, (int64_t)total);
}

/* RENAME and RENAMENX: the value moves to the new name (a new key there,
 * with fresh revisions) and the old name is deleted, in one commit. */
static void rename_key(struct cmd_view *v,
                       struct cmd_req *r,
                       const char *const *argv,
                       const size_t *argvlen,
                       bool nx)
{
    const uint8_t *val, *dval;
    uint32_t len, dlen;
    if (!cmd_view_get(v, argv[1], argvlen[1], &val, &len)) {
        rep_error(r, "ERR no such key");
        return;
    }
    if (!cmd_check_key(r, argvlen[2])) {
        return;
    }
    bool same =
        argvlen[1] == argvlen[2] && memcmp(argv[1], argv[2], argvlen[1]) == 0;
    if (same) {
        if (nx) {
            rep_int(r, 0);
        } else {
            rep_ok(r);
        }
        return;
    }
    if (nx && cmd_view_get(v, argv[2], argvlen[2], &dval, &dlen)) {
        rep_int(r, 0);
        return;
    }
    /* The value is borrowed from the view until the next write of the
     * source key: write the destination first. */
    cmd_view_write_ttl(v, argv[2], argvlen[2], val, len, false,
                       cmd_view_expiry(v, argv[1], argvlen[1]));
    cmd_view_write(v, argv[1], argvlen[1], NULL, 0);
    if (nx) {
        rep_int(r, 1);
    } else {
        rep_ok(r);
    }
}

CMD_DECL_VIEW(cmd_rename)
{
    (void)argc;
    rename_key(v, r, argv, argvlen, false);
}

CMD_DECL_VIEW(cmd_renamenx)
{
    (void)argc;
    rename_key(v, r, argv, argvlen, true);
}

CMD_DECL_VIEW(cmd_copy)
{
    const uint8_t *val, *dval;
    uint32_t len, dlen;
    bool replace = false;
    for (size_t i = 3; i < argc; i++) {
        int64_t db;
        if (cmd_arg_is(argv[i], argvlen[i], "replace")) {
            replace = true;
        } else if (cmd_arg_is(argv[i], argvlen[i], "db") && i + 1 < argc) {
            if (cmd_parse_i64(argv[i + 1], argvlen[i + 1], &db) != 0) {
                rep_error(r, "ERR value is not an integer or out of range");
                return;
            }
            if (db != 0) {
                rep_error(r, "ERR DB index is out of range");
                return;
            }
            i++;
        } else {
            rep_error(r, "ERR syntax error");
            return;
        }
    }
    if (argvlen[1] == argvlen[2] && memcmp(argv[1], argv[2], argvlen[1]) == 0) {
        rep_error(r, "ERR source and destination objects are the same");
        return;
    }
    if (!cmd_check_key(r, argvlen[2])) {
        return;
    }
    if (!cmd_view_get(v, argv[1], argvlen[1], &val, &len)) {
        rep_int(r, 0);
        return;
    }
    if (cmd_view_get(v, argv[2], argvlen[2], &dval, &dlen) && !replace) {
        rep_int(r, 0);
        return;
    }
    cmd_view_write_ttl(v, argv[2], argvlen[2], val, len, false,
                       cmd_view_expiry(v, argv[1], argvlen[1]));
    rep_int(r, 1);
}

CMD_DECL_VIEW(cmd_memory)
{
    const uint8_t *val;
    uint32_t len;
    if (cmd_arg_is(argv[1], argvlen[1], "usage")) {
        if (argc != 3 &&
            !(argc == 5 && cmd_arg_is(argv[3], argvlen[3], "samples"))) {
            rep_error(r, "ERR syntax error");
            return;
        }
        if (cmd_view_get(v, argv[2], argvlen[2], &val, &len)) {
            rep_int(r, (int64_t)(argvlen[2] + len + RECORD_OVERHEAD_BYTES));
        } else {
            rep_null(r);
        }
        return;
    }
    rep_errorf(r,
               "ERR MEMORY %.*s is not supported by ballot (MEMORY USAGE "
               "is; INFO raft reports the store's size)",
               (int)(argvlen[1] > 64 ? 64 : argvlen[1]), argv[1]);
}

/* Redis's string encodings: "int" for a value that is a 64-bit integer in
 * canonical form, "embstr" up to 44 bytes, "raw" beyond. ballot stores
 * bytes either way; the names are what tools expect for strings. */
CMD_DECL_VIEW(cmd_object)
{
    const uint8_t *val;
    uint32_t len;
    if (cmd_arg_is(argv[1], argvlen[1], "encoding") && argc == 3) {
        if (!cmd_view_get(v, argv[2], argvlen[2], &val, &len)) {
            rep_null(r);
            return;
        }
        int64_t n;
        if (len <= 20 && cmd_parse_i64((const char *)val, len, &n) == 0) {
            rep_bulk(r, "int", 3);
        } else if (len <= 44) {
            rep_bulk(r, "embstr", 6);
        } else {
            rep_bulk(r, "raw", 3);
        }
        return;
    }
    if (cmd_arg_is(argv[1], argvlen[1], "freq") ||
        cmd_arg_is(argv[1], argvlen[1], "idletime") ||
        cmd_arg_is(argv[1], argvlen[1], "refcount")) {
        rep_errorf(r,
                   "ERR OBJECT %.*s is not supported by ballot: it keeps "
                   "no access statistics",
                   (int)argvlen[1], argv[1]);
        return;
    }
    rep_errorf(r, "ERR unknown subcommand '%.*s'. Try OBJECT HELP.",
               (int)(argvlen[1] > 64 ? 64 : argvlen[1]), argv[1]);
}
