/*
 * cmd_id.c - `ballot id [--count N] [--name SEQ] [--snowflake]`: unique
 * IDs, one per line (docs/coordination.md, "IDs"):
 *   - by default the next IDs of the cluster-wide sequence SEQ ("default"
 *     if not named): strictly increasing across every client and node,
 *     never handed out twice; one log entry per call (BSEQ);
 *   - with --snowflake, 64-bit IDs minted by the first endpoint that
 *     answers, without a round trip to the leader (BSNOWFLAKE).
 */
#include <stdio.h>
#include <string.h>

#include "cli.h"

int cmd_id(struct cli *cli, int argc, char **argv)
{
    uint64_t count = 1;
    bool snowflake = false;
    const char *name = "default";
    char n[24];
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--snowflake") == 0) {
            snowflake = true;
        } else if (i + 1 < argc && strcmp(argv[i], "--name") == 0 &&
                   argv[i + 1][0] != '\0') {
            name = argv[++i];
        } else if (i + 1 < argc && strcmp(argv[i], "--count") == 0 &&
                   cli_parse_u64(argv[i + 1], &count) == 0 && count >= 1 &&
                   count <= 1000000) {
            i++;
        } else {
            return cli_usage(argv[0]);
        }
    }
    if (snowflake && count > 4096) {
        return cli_fail(cli, CLI_USAGE,
                        "id: --snowflake mints at most 4096 IDs per call");
    }
    snprintf(n, sizeof(n), "%llu", (unsigned long long)count);
    const char *sf_args[] = {"BSNOWFLAKE", n};
    const char *seq_args[] = {"BSEQ", name, n};
    redisReply *r;
    int rc = snowflake ? cli_call(cli, CLI_READ, 2, sf_args, NULL, &r)
                       : cli_call(cli, CLI_WRITE, 3, seq_args, NULL, &r);
    if (rc != CLI_OK || r->type == REDIS_REPLY_ERROR) {
        return cli_fail_reply(cli, rc, r);
    }
    /* BSNOWFLAKE lists the IDs; BSEQ gives its block as [first, last]. */
    long long first = 0, last = -1;
    if (snowflake) {
        last = (long long)r->elements - 1;
    } else if (r->type == REDIS_REPLY_ARRAY && r->elements == 2) {
        first = r->element[0]->integer;
        last = r->element[1]->integer;
    }
    cJSON *arr = cli->json ? cJSON_CreateArray() : NULL;
    for (long long i = first; i <= last; i++) {
        long long id = snowflake ? r->element[i]->integer : i;
        if (arr != NULL) {
            /* As strings: 64-bit IDs do not fit a JSON number exactly. */
            char buf[24];
            snprintf(buf, sizeof(buf), "%lld", id);
            cJSON_AddItemToArray(arr, cJSON_CreateString(buf));
        } else {
            printf("%lld\n", id);
        }
    }
    if (arr != NULL) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddItemToObject(o, "ids", arr);
        cli_print_json(o);
    }
    freeReplyObject(r);
    return CLI_OK;
}
