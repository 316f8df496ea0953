/*
 * cmd_id.c - `ballot id --snowflake [--count N]`: unique 64-bit IDs minted
 * by the first endpoint that answers (BSNOWFLAKE), one per line.
 */
#include <stdio.h>
#include <string.h>

#include "cli.h"

int cmd_id(struct cli *cli, int argc, char **argv)
{
    uint64_t count = 1;
    bool snowflake = false;
    char n[24];
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--snowflake") == 0) {
            snowflake = true;
        } else if (i + 1 < argc && strcmp(argv[i], "--count") == 0 &&
                   cli_parse_u64(argv[i + 1], &count) == 0 && count >= 1 &&
                   count <= 4096) {
            i++;
        } else {
            return cli_usage(argv[0]);
        }
    }
    if (!snowflake) {
        return cli_fail(
            cli, CLI_USAGE,
            "id: only --snowflake IDs exist yet (coordination-free, "
            "minted by one node; docs/coordination.md)");
    }
    snprintf(n, sizeof(n), "%llu", (unsigned long long)count);
    const char *args[] = {"BSNOWFLAKE", n};
    redisReply *r;
    int rc = cli_call(cli, CLI_READ, 2, args, NULL, &r);
    if (rc != CLI_OK || r->type == REDIS_REPLY_ERROR) {
        return cli_fail_reply(cli, rc, r);
    }
    cJSON *arr = cli->json ? cJSON_CreateArray() : NULL;
    for (size_t i = 0; i < r->elements; i++) {
        if (arr != NULL) {
            /* As strings: 64-bit IDs do not fit a JSON number exactly. */
            char buf[24];
            snprintf(buf, sizeof(buf), "%lld", r->element[i]->integer);
            cJSON_AddItemToArray(arr, cJSON_CreateString(buf));
        } else {
            printf("%lld\n", r->element[i]->integer);
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
