/*
 * commands_ids.c - the two kinds of unique IDs (docs/coordination.md,
 * "IDs"):
 *
 *   BSNOWFLAKE [COUNT]   coordination-free IDs minted by the node the
 *                        client is connected to, without a round trip to
 *                        the leader (bnode_snowflake())
 *   BSEQ name [COUNT]    cluster-wide strictly increasing IDs of a named
 *                        sequence, one log entry per request (kv's
 *                        KV_CMD_SEQUENCE); with COUNT, a block [first,
 *                        last] of COUNT IDs
 */
#include <inttypes.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "bnode.h"
#include "commands.h"
#include "kv.h"

CMD_DECL(cmd_bsnowflake)
{
    static uint64_t ids[4096];
    int64_t n = 1;
    if (argc > 2) {
        rep_arity_error(r, "bsnowflake");
        cmd_req_finish(r);
        return;
    }
    if (argc == 2 &&
        (cmd_parse_i64(argv[1], argvlen[1], &n) != 0 || n < 1 || n > 4096)) {
        rep_error(r, "ERR COUNT must be 1 to 4096");
        cmd_req_finish(r);
        return;
    }
    uint64_t behind = 0;
    int rc = bnode_snowflake(r->client->env->node, ids, (size_t)n, &behind);
    if (rc == BNODE_ECLOCK) {
        rep_errorf(r,
                   "CLOCK this node's clock is %llu ms behind the last ID it "
                   "minted; retry later or on another node",
                   (unsigned long long)behind);
    } else if (rc == BNODE_EINVAL) {
        rep_error(r, "ERR snowflake IDs need member ids from 1 to 1023");
    } else if (rc != 0) {
        rep_errorf(r, "ERR cannot mint IDs: %s", bnode_strerror(rc));
    } else if (argc == 1) {
        rep_int(r, (int64_t)ids[0]);
    } else {
        rep_array(r, (size_t)n);
        for (int64_t i = 0; i < n; i++) {
            rep_int(r, (int64_t)ids[i]);
        }
    }
    cmd_req_finish(r);
}

/* A BSEQ in flight. */
struct seq_req
{
    struct cmd_req *r;
    int64_t count;
    bool block; /* COUNT given: reply [first, last] */
    uint64_t client_id;
    uint64_t seq;
};

static void seq_done(void *arg, int status, const struct kv_entry_result *res)
{
    struct seq_req q = *(struct seq_req *)arg;
    struct cmd_req *r = q.r;
    free(arg);
    if (!cmd_kept_result_ok(r, status, res, q.client_id, q.seq)) {
        cmd_req_finish(r);
        return;
    }
    if (res->n_ops != 1 || res->ops[0].type != KV_OP_SEQUENCE) {
        rep_applied_by_another(r, res);
        cmd_req_finish(r);
        return;
    }
    const struct kv_op_result *o = &res->ops[0];
    if (o->count != KV_RMW_APPLIED || o->n_kvs != 1) {
        rep_errorf(r,
                   "ERR sequence exhausted: fewer than %" PRId64
                   " IDs are left below 2^63",
                   q.count);
    } else if (!q.block) {
        rep_int(r, (int64_t)o->kvs[0].version);
    } else {
        /* A retry gets the first application's block back, whatever COUNT
         * it says. */
        rep_array(r, 2);
        rep_int(r, (int64_t)o->kvs[0].create_revision);
        rep_int(r, (int64_t)o->kvs[0].version);
    }
    cmd_req_finish(r);
}

void cmd_bseq_req(struct cmd_req *r,
                  size_t argc,
                  const char *const *argv,
                  const size_t *argvlen,
                  uint64_t client_id,
                  uint64_t seq)
{
    struct seq_req q = {r, 1, argc == 3, client_id, seq};
    if (argc > 3) {
        rep_arity_error(r, "bseq");
        cmd_req_finish(r);
        return;
    }
    if (argc == 3 &&
        (cmd_parse_i64(argv[2], argvlen[2], &q.count) != 0 || q.count < 1 ||
         q.count > (int64_t)KV_SEQUENCE_BLOCK_MAX)) {
        rep_errorf(r, "ERR COUNT must be 1 to %u", KV_SEQUENCE_BLOCK_MAX);
        cmd_req_finish(r);
        return;
    }
    if (argvlen[1] == 0) {
        rep_error(r, "ERR a sequence needs a name");
        cmd_req_finish(r);
        return;
    }
    if (!cmd_check_key(r, argvlen[1])) {
        cmd_req_finish(r);
        return;
    }
    struct kv_cmd cmd;
    memset(&cmd, 0, sizeof(cmd));
    cmd.type = KV_CMD_SEQUENCE;
    cmd.op.type = KV_OP_SEQUENCE;
    cmd.op.key = (const uint8_t *)argv[1];
    cmd.op.key_len = (uint32_t)argvlen[1];
    cmd.op.delta = q.count;
    cmd.client_id = client_id;
    cmd.seq = client_id != 0 ? seq : 0;
    cmd.keep_result = client_id != 0;
    struct seq_req *p = malloc(sizeof(*p));
    if (p == NULL) {
        rep_error(r, "ERR out of memory");
        cmd_req_finish(r);
        return;
    }
    *p = q;
    cmd_propose(r, &cmd, seq_done, p);
}

CMD_DECL(cmd_bseq)
{
    cmd_bseq_req(r, argc, argv, argvlen, 0, 0);
}
