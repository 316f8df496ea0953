/*
 * cmd_fallback.c - `ballot fallback`: the primary-replica fallback
 * (docs/modes.md, docs/operations.md "Two of three machines died").
 *
 *   ballot fallback enter --primary ID --yes [--force]
 *   ballot fallback promote [ID] [--force]
 *   ballot fallback exit
 *
 * The command is sent to each endpoint until the one that is node ID
 * answers: it must run on the node that becomes the primary. promote
 * first asks every endpoint how far its log goes, picks the most
 * up-to-date replica when no ID is given, and refuses one that is behind
 * another unless forced.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"

/* A batch being persisted refuses with BUSY for a few milliseconds. */
#define FALLBACK_BUSY_RETRIES 20
#define FALLBACK_BUSY_WAIT_US 50000

/* The node answered that the command is for another node. */
static bool is_not_this_node(const redisReply *r)
{
    return r->type == REDIS_REPLY_ERROR &&
           (strncmp(r->str, "ERR this is node ", 17) == 0 ||
            strncmp(r->str, "ERR not the primary", 19) == 0);
}

/* One BFALLBACK command on one endpoint; NULL (errmsg set) if it did not
 * answer. */
static redisReply *step_on(struct cli *cli,
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
        printf(
            "it held entries up to %lld; the highest commit index it had "
            "learned was %lld\n",
            last, commit);
        if (last > commit) {
            printf(
                "entries %lld..%lld were not known committed and now "
                "are\n",
                commit + 1, last);
        }
        printf(
            "anything the lost members committed after %lld without "
            "sending it here is lost\n",
            commit);
    }
    return CLI_OK;
}

/* Sends @cmd (@argc words) to each endpoint until the node it is meant
 * for answers; NULL (errmsg set) if none answered. */
static redisReply *send_to_its_node(struct cli *cli, int argc, const char **cmd)
{
    redisReply *last = NULL;
    for (unsigned i = 0; i < cli->n_endpoints; i++) {
        redisReply *r = step_on(cli, cli->endpoints[i], argc, cmd);
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
    return last;
}

/* Sends BFALLBACK @sub @id [FORCE] to node @id and prints the report. */
static int send_step(struct cli *cli, const char *sub, uint64_t id, bool force)
{
    char ids[24];
    snprintf(ids, sizeof(ids), "%llu", (unsigned long long)id);
    const char *cmd[4] = {"BFALLBACK", sub, ids, "FORCE"};
    redisReply *r = send_to_its_node(cli, force ? 4 : 3, cmd);
    if (r == NULL) {
        return cli_fail(cli, CLI_UNAVAILABLE, "%s", cli->errmsg);
    }
    if (r->type == REDIS_REPLY_ERROR) {
        return cli_fail_reply(cli, CLI_OK, r);
    }
    int rc = print_report(cli, r, id);
    freeReplyObject(r);
    return rc;
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
    return send_step(cli, "ENTER", primary, force);
}

/* What promote needs to know of one endpoint's node. */
struct replica_view
{
    long long id, primary, last_index;
    bool replica; /* answered, in the mode, and not the primary */
};

static void view_of(struct cli *cli, const char *ep, struct replica_view *v)
{
    const char *bs[1] = {"BSTATUS"};
    redisContext *c = cli_connect_one(cli, ep);
    memset(v, 0, sizeof(*v));
    if (c == NULL) {
        return;
    }
    redisReply *r = cli_command_on(c, 1, bs);
    if (r != NULL && r->type == REDIS_REPLY_ARRAY) {
        v->id = cli_map_int(r, "id");
        v->primary = cli_map_int(r, "primary");
        v->last_index = cli_map_int(r, "last_index");
        v->replica = cli_map_int(r, "epoch") > 0 && v->id != v->primary;
    }
    if (r != NULL) {
        freeReplyObject(r);
    }
    redisFree(c);
}

static int fallback_promote(struct cli *cli, int argc, char **argv)
{
    uint64_t id = 0;
    bool force = false;
    for (int i = 2; i < argc; i++) {
        if (strcmp(argv[i], "--force") == 0) {
            force = true;
        } else if (id == 0 && cli_parse_u64(argv[i], &id) == 0 && id > 0) {
            continue;
        } else {
            return cli_usage(argv[0]);
        }
    }
    /* The most up-to-date replica that answers; the named one's log. */
    long long best_id = -1, best_last = -1, id_last = -1;
    for (unsigned i = 0; i < cli->n_endpoints; i++) {
        struct replica_view v;
        view_of(cli, cli->endpoints[i], &v);
        if (!v.replica) {
            continue;
        }
        if (v.last_index > best_last) {
            best_last = v.last_index;
            best_id = v.id;
        }
        if ((uint64_t)v.id == id) {
            id_last = v.last_index;
        }
    }
    if (id == 0) {
        if (best_id < 0) {
            return cli_fail(cli, CLI_UNAVAILABLE,
                            "no replica in primary-replica mode answered");
        }
        id = (uint64_t)best_id;
    } else if (id_last < 0 && !force) {
        return cli_fail(cli, CLI_REJECTED,
                        "node %llu did not answer as a replica in "
                        "primary-replica mode",
                        (unsigned long long)id);
    } else if (id_last < best_last && !force) {
        return cli_fail(cli, CLI_REJECTED,
                        "node %llu is behind node %lld (last index %lld < "
                        "%lld): promoting it loses what it lacks; promote "
                        "node %lld, or add --force",
                        (unsigned long long)id, best_id, id_last, best_last,
                        best_id);
    }
    return send_step(cli, "PROMOTE", id, force);
}

static int fallback_exit(struct cli *cli, int argc, char **argv)
{
    const char *cmd[2] = {"BFALLBACK", "EXIT"};
    if (argc != 2) {
        return cli_usage(argv[0]);
    }
    redisReply *r = send_to_its_node(cli, 2, cmd);
    if (r == NULL) {
        return cli_fail(cli, CLI_UNAVAILABLE, "%s", cli->errmsg);
    }
    if (r->type == REDIS_REPLY_ERROR) {
        return cli_fail_reply(cli, CLI_OK, r);
    }
    long long n = cli_map_int(r, "promoted");
    freeReplyObject(r);
    if (cli->json) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddBoolToObject(o, "ok", 1);
        cJSON_AddNumberToObject(o, "promoted", (double)n);
        cli_print_json(o);
    } else {
        printf("back to Raft: %lld replicas are voters again\n", n);
    }
    return CLI_OK;
}

int cmd_fallback(struct cli *cli, int argc, char **argv)
{
    if (argc >= 2 && strcmp(argv[1], "exit") == 0) {
        return fallback_exit(cli, argc, argv);
    }
    if (argc >= 2 && strcmp(argv[1], "enter") == 0) {
        return fallback_enter(cli, argc, argv);
    }
    if (argc >= 2 && strcmp(argv[1], "promote") == 0) {
        return fallback_promote(cli, argc, argv);
    }
    return cli_usage(argv[0]);
}
