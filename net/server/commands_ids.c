/*
 * commands_ids.c - BSNOWFLAKE [COUNT]: coordination-free unique IDs
 * minted by the node the client is connected to, without a round trip to
 * the leader (bnode_snowflake(), docs/coordination.md "IDs").
 */
#include <stdint.h>

#include "bnode.h"
#include "commands.h"

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
