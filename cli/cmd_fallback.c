/*
 * cmd_fallback.c - `ballot fallback`: the primary-replica fallback
 * (docs/modes.md, docs/operations.md "Two of three machines died").
 *
 *   ballot fallback enter --primary ID --yes [--force]
 *
 * The command is sent to each endpoint until the one that is node ID
 * answers: BFALLBACK ENTER must run on the node that becomes the primary.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"

/* A batch being persisted refuses with BUSY for a few milliseconds. */
#define FALLBACK_BUSY_RETRIES 20
#define FALLBACK_BUSY_WAIT_US 50000

static bool is_not_this_node(const redisReply *r)
{
    return r->type == REDIS_REPLY_ERROR &&
           strncmp(r->str, "ERR this is node ", 17) == 0;
}

/* BFALLBACK ENTER on one endpoint; NULL (errmsg set) if it did not answer. */
static redisReply *enter_on(struct cli *cli,
                            const char *ep,
                            int argc,
                            const char **cmd)
{
    redisContext *c = cli_connect_one(cli, ep);
    redisReply *r = NULL;
    if (c == NULL) {
        return NULL;
    }
    for (int i = 0; i <= FALLBACK_BUSY_RETRIES; i++) {
        r = cli_command_on(c, argc, cmd);
        if (r == NULL || r->type != REDIS_REPLY_ERROR ||
            strncmp(r->str, "BUSY", 4) != 0 || i == FALLBACK_BUSY_RETRIES) {
            break;
        }
        freeReplyObject(r);
        r = NULL;
        usleep(FALLBACK_BUSY_WAIT_US);
    }
    if (r == NULL) {
        snprintf(cli->errmsg, sizeof(cli->errmsg), "%s: %s", ep,
                 c->errstr[0] ? c->errstr : "no reply");
    }
    redisFree(c);
    return r;
}

static int print_report(struct cli *cli, redisReply *r, uint64_t primary)
{
    long long epoch = cli_map_int(r, "epoch");
    long long last = cli_map_int(r, "last_index");
    long long commit = cli_map_int(r, "commit");
    if (cli->json) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddBoolToObject(o, "ok", 1);
        cJSON_AddNumberToObject(o, "primary", (double)primary);
        cJSON_AddNumberToObject(o, "epoch", (double)epoch);
        cJSON_AddNumberToObject(o, "conf_index",
                                (double)cli_map_int(r, "conf_index"));
        cJSON_AddNumberToObject(o, "last_index", (double)last);
        cJSON_AddNumberToObject(o, "commit", (double)commit);
        cJSON_AddNumberToObject(o, "voters_reachable",
                                (double)cli_map_int(r, "voters_reachable"));
        cJSON_AddNumberToObject(o, "quorum", (double)cli_map_int(r, "quorum"));
        cli_print_json(o);
    } else {
        printf("node %llu is now the primary, epoch %lld\n",
               (unsigned long long)primary, epoch);
        printf("it held entries up to %lld; the highest commit index it had "
               "learned was %lld\n",
               last, commit);
        if (last > commit) {
            printf("entries %lld..%lld were not known committed and now "
                   "are\n",
                   commit + 1, last);
        }
        printf("anything the lost members committed after %lld without "
               "sending it here is lost\n",
               commit);
    }
    return CLI_OK;
}

static int fallback_enter(struct cli *cli, int argc, char **argv)
{
    uint64_t primary = 0;
    bool yes = false, force = false;
    for (int i = 2; i < argc; i++) {
        if (strcmp(argv[i], "--primary") == 0 && i + 1 < argc) {
            if (cli_parse_u64(argv[++i], &primary) != 0 || primary == 0) {
                return cli_usage(argv[0]);
            }
        } else if (strcmp(argv[i], "--yes") == 0) {
            yes = true;
        } else if (strcmp(argv[i], "--force") == 0) {
            force = true;
        } else {
            return cli_usage(argv[0]);
        }
    }
    if (primary == 0) {
        return cli_usage(argv[0]);
    }
    if (!yes) {
        return cli_fail(cli, CLI_REJECTED,
                        "fallback enter leaves Raft: the primary commits "
                        "alone and what the lost members committed without "
                        "sending it to node %llu is lost. Run it again "
                        "with --yes to confirm",
                        (unsigned long long)primary);
    }
    char id[24];
    snprintf(id, sizeof(id), "%llu", (unsigned long long)primary);
    const char *cmd[4] = {"BFALLBACK", "ENTER", id, "FORCE"};
    int n = force ? 4 : 3;
    redisReply *last = NULL;
    for (unsigned i = 0; i < cli->n_endpoints; i++) {
        redisReply *r = enter_on(cli, cli->endpoints[i], n, cmd);
        if (r == NULL) {
            continue;
        }
        if (last != NULL) {
            freeReplyObject(last);
        }
        last = r;
        if (!is_not_this_node(r)) {
            break;
        }
    }
    if (last == NULL) {
        return cli_fail(cli, CLI_UNAVAILABLE, "%s", cli->errmsg);
    }
    if (last->type == REDIS_REPLY_ERROR) {
        return cli_fail_reply(cli, CLI_OK, last);
    }
    int rc = print_report(cli, last, primary);
    freeReplyObject(last);
    return rc;
}

int cmd_fallback(struct cli *cli, int argc, char **argv)
{
    if (argc >= 2 && strcmp(argv[1], "enter") == 0) {
        return fallback_enter(cli, argc, argv);
    }
    return cli_usage(argv[0]);
}
