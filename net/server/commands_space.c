/*
 * commands_space.c - the store's history and space: BCOMPACT (compact the
 * history through the log, like the leader's retention does) and BHISTORY
 * (read the change history from a revision). docs/protocol.md.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "acl.h"
#include "bnode.h"
#include "commands.h"
#include "kv.h"

/* Most events one BHISTORY returns (COUNT may ask fewer). */
#define HISTORY_COUNT_MAX 10000u
#define HISTORY_COUNT_DEFAULT 1000u

static void compact_done(void *arg,
                         int status,
                         const struct kv_entry_result *res)
{
    struct cmd_req *r = arg;
    if (status != 0) {
        rep_node_error(r, status, true);
    } else if (res->code == KV_EFUTURE) {
        rep_errorf(r, "ERR revision is beyond the store revision %llu",
                   (unsigned long long)res->revision);
    } else if (res->code != 0) {
        rep_errorf(r, "ERR the state machine refused the command: %s",
                   kv_strerror(res->code));
    } else {
        /* The compaction point now: the one asked, or a higher one that
         * was already there. */
        rep_int(r, (int64_t)res->compact_revision);
    }
    cmd_req_finish(r);
}

/* BCOMPACT revision: history below @revision goes, on every replica. */
CMD_DECL(cmd_bcompact)
{
    int64_t rev;
    uint8_t buf[32 + KV_ACL_NAME_MAX + KV_ACL_CMD_NAME_MAX];
    size_t len = 0;
    struct kv_cmd cmd;
    (void)argc;
    if (cmd_parse_i64(argv[1], argvlen[1], &rev) != 0 || rev <= 0) {
        rep_error(r, "ERR revision must be a positive integer");
        cmd_req_finish(r);
        return;
    }
    memset(&cmd, 0, sizeof(cmd));
    cmd.type = KV_CMD_COMPACT;
    cmd.revision = (uint64_t)rev;
    acl_stamp(r, &cmd);
    if (kv_cmd_encode(&cmd, buf, sizeof(buf), &len) != 0) {
        rep_error(r, "ERR could not encode the command");
        cmd_req_finish(r);
        return;
    }
    int rc = bnode_propose(r->client->env->node, buf, len, compact_done, r);
    if (rc != 0) {
        rep_node_error(r, rc, true);
        cmd_req_finish(r);
    }
}

static void history_read(struct cmd_req *r,
                         struct kv_store *kv,
                         size_t argc,
                         const char *const *argv,
                         const size_t *argvlen)
{
    struct kv_history_result res;
    struct kv_history_pos from = {0, 0};
    uint64_t compact = 0;
    int64_t v;
    size_t count = HISTORY_COUNT_DEFAULT;
    (void)argc;
    cmd_parse_i64(argv[1], argvlen[1], &v); /* checked by the handler */
    from.revision = (uint64_t)v;
    if (argc == 4) {
        cmd_parse_i64(argv[3], argvlen[3], &v);
        count = (size_t)v;
    }
    int rv = kv_history_read(kv, from, count, &res, &compact);
    if (rv == KV_ECOMPACTED) {
        rep_errorf(r,
                   "COMPACTED revision %llu was compacted: history starts at "
                   "revision %llu",
                   (unsigned long long)from.revision,
                   (unsigned long long)compact);
    } else if (rv == KV_EFUTURE) {
        rep_errorf(r, "ERR revision %llu is beyond the store revision",
                   (unsigned long long)from.revision);
    } else if (rv != 0) {
        rep_errorf(r, "ERR history read failed: %s", kv_strerror(rv));
    } else {
        /* [revision, next revision, more, [[type, key, value,
         *  mod_revision, create_revision, version], ...]] */
        rep_array(r, 4);
        rep_int(r, (int64_t)res.revision);
        rep_int(r, (int64_t)res.next.revision);
        rep_int(r, res.more ? 1 : 0);
        rep_array(r, res.n_events);
        for (size_t i = 0; i < res.n_events; i++) {
            const struct kv_event *e = &res.events[i];
            rep_array(r, 6);
            rep_cstr(r, e->type == KV_EVENT_PUT ? "put" : "delete");
            rep_bulk(r, e->kv.key, e->kv.key_len);
            if (e->type == KV_EVENT_PUT) {
                rep_bulk(r, e->kv.value, e->kv.value_len);
            } else {
                rep_null(r);
            }
            rep_int(r, (int64_t)e->kv.mod_revision);
            rep_int(r, (int64_t)e->kv.create_revision);
            rep_int(r, (int64_t)e->kv.version);
        }
    }
    kv_history_result_free(&res);
}

/* BHISTORY revision [COUNT n]: the changes from @revision on. */
CMD_DECL(cmd_bhistory)
{
    int64_t v;
    if (cmd_parse_i64(argv[1], argvlen[1], &v) != 0 || v <= 0) {
        rep_error(r, "ERR revision must be a positive integer");
        cmd_req_finish(r);
        return;
    }
    if (argc == 3 || argc > 4 ||
        (argc == 4 && !cmd_arg_is(argv[2], argvlen[2], "count"))) {
        rep_error(r, "ERR syntax error");
        cmd_req_finish(r);
        return;
    }
    if (argc == 4 && (cmd_parse_i64(argv[3], argvlen[3], &v) != 0 || v <= 0 ||
                      v > (int64_t)HISTORY_COUNT_MAX)) {
        rep_errorf(r, "ERR COUNT must be between 1 and %u", HISTORY_COUNT_MAX);
        cmd_req_finish(r);
        return;
    }
    cmd_read_start(r, history_read, argc, argv, argvlen);
}
