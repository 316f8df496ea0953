/*
 * cmd_cluster.c - the cluster commands of `ballot`: member, leader and
 * status.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

static int member_list(struct cli *cli)
{
    const char *cmd[2] = {"BMEMBER", "LIST"};
    redisReply *r;
    cJSON *o = NULL, *arr = NULL;
    int rc = cli_call(cli, CLI_READ, 2, cmd, NULL, &r);
    if (rc != CLI_OK || r->type == REDIS_REPLY_ERROR) {
        return cli_fail_reply(cli, rc, r);
    }
    if (r->type != REDIS_REPLY_ARRAY) {
        freeReplyObject(r);
        return cli_fail(cli, CLI_REJECTED, "unexpected BMEMBER LIST reply");
    }
    if (cli->json) {
        o = cJSON_CreateObject();
        arr = cJSON_AddArrayToObject(o, "members");
    } else {
        printf("%-6s %-8s %s\n", "ID", "ROLE", "ADDRESS");
    }
    for (size_t i = 0; i < r->elements; i++) {
        redisReply *m = r->element[i];
        if (m->type != REDIS_REPLY_ARRAY || m->elements != 3) {
            continue;
        }
        if (cli->json) {
            cJSON *j = cJSON_CreateObject();
            cJSON_AddNumberToObject(j, "id", (double)m->element[0]->integer);
            cJSON_AddStringToObject(j, "role", m->element[1]->str);
            cJSON_AddStringToObject(j, "address", m->element[2]->str);
            cJSON_AddItemToArray(arr, j);
        } else {
            printf("%-6lld %-8s %s\n", m->element[0]->integer,
                   m->element[1]->str, m->element[2]->str);
        }
    }
    if (o != NULL) {
        cli_print_json(o);
    }
    freeReplyObject(r);
    return CLI_OK;
}

/* Sends a write-routed admin command whose reply is +OK. */
static int admin_ok(struct cli *cli,
                    int argc,
                    const char **cmd,
                    const char *what,
                    uint64_t id)
{
    redisReply *r;
    int rc = cli_call(cli, CLI_WRITE, argc, cmd, NULL, &r);
    if (rc != CLI_OK || r->type == REDIS_REPLY_ERROR) {
        return cli_fail_reply(cli, rc, r);
    }
    freeReplyObject(r);
    if (cli->json) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddBoolToObject(o, "ok", 1);
        cJSON_AddStringToObject(o, "action", what);
        cJSON_AddNumberToObject(o, "id", (double)id);
        cli_print_json(o);
    } else {
        printf("OK\n");
    }
    return CLI_OK;
}

int cmd_member(struct cli *cli, int argc, char **argv)
{
    const char *cmd[4] = {"BMEMBER", NULL, NULL, NULL};
    uint64_t id;
    if (argc == 2 && strcmp(argv[1], "list") == 0) {
        return member_list(cli);
    }
    if (argc < 3 || cli_parse_u64(argv[2], &id) != 0 || id == 0) {
        return cli_usage(argv[0]);
    }
    cmd[2] = argv[2];
    if (strcmp(argv[1], "add") == 0) {
        /* add ID [--learner] [--addr HOST:PORT[:PEER_PORT]] */
        bool learner = false;
        for (int i = 3; i < argc; i++) {
            if (strcmp(argv[i], "--learner") == 0 && !learner) {
                learner = true;
            } else if (strcmp(argv[i], "--addr") == 0 && i + 1 < argc &&
                       cmd[3] == NULL) {
                cmd[3] = argv[++i];
            } else {
                return cli_usage(argv[0]);
            }
        }
        cmd[1] = learner ? "ADDLEARNER" : "ADDVOTER";
        return admin_ok(cli, cmd[3] != NULL ? 4 : 3, cmd,
                        learner ? "add-learner" : "add-voter", id);
    }
    if (argc != 3) {
        return cli_usage(argv[0]);
    }
    if (strcmp(argv[1], "remove") == 0) {
        cmd[1] = "REMOVE";
        return admin_ok(cli, 3, cmd, "remove", id);
    }
    if (strcmp(argv[1], "promote") == 0) {
        cmd[1] = "PROMOTE";
        return admin_ok(cli, 3, cmd, "promote", id);
    }
    return cli_usage(argv[0]);
}

int cmd_leader(struct cli *cli, int argc, char **argv)
{
    const char *cmd[2] = {"BTRANSFER", NULL};
    uint64_t id;
    if (argc != 3 || strcmp(argv[1], "transfer") != 0 ||
        cli_parse_u64(argv[2], &id) != 0 || id == 0) {
        return cli_usage(argv[0]);
    }
    cmd[1] = argv[2];
    return admin_ok(cli, 2, cmd, "leader-transfer", id);
}

int cmd_compact(struct cli *cli, int argc, char **argv)
{
    const char *cmd[2] = {"BCOMPACT", NULL};
    redisReply *r;
    uint64_t rev;
    if (argc != 2 || cli_parse_u64(argv[1], &rev) != 0 || rev == 0) {
        return cli_usage(argv[0]);
    }
    cmd[1] = argv[1];
    int rc = cli_call(cli, CLI_WRITE, 2, cmd, NULL, &r);
    if (rc != CLI_OK || r->type == REDIS_REPLY_ERROR) {
        return cli_fail_reply(cli, rc, r);
    }
    long long point = r->type == REDIS_REPLY_INTEGER ? r->integer : -1;
    freeReplyObject(r);
    if (point < 0) {
        return cli_fail(cli, CLI_REJECTED, "unexpected BCOMPACT reply");
    }
    if (cli->json) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddBoolToObject(o, "ok", 1);
        cJSON_AddNumberToObject(o, "compact_revision", (double)point);
        cli_print_json(o);
    } else {
        printf("history compacted below revision %lld\n", point);
    }
    return CLI_OK;
}

/* ---------------------------------------------------------------------- */
/* status                                                                  */

struct node_status
{
    char endpoint[256];
    char error[CLI_ERRMSG_MAX];
    long long id, term, leader, commit, applied, revision, keys, db_bytes;
    /* The primary-replica fallback: epoch 0 in Raft mode. */
    long long epoch, primary, diverged;
    char role[32];
    char leader_addr[256];
    char version[32];
};

/* "532 B", "24.1 KiB", "3.2 MiB", "1.5 GiB"; "?" if unknown. */
static void human_bytes(long long n, char *buf, size_t len)
{
    static const char *const units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
    double v = (double)n;
    unsigned u = 0;
    if (n < 0) {
        snprintf(buf, len, "?");
        return;
    }
    while (v >= 1024.0 && u + 1 < sizeof(units) / sizeof(units[0])) {
        v /= 1024.0;
        u++;
    }
    if (u == 0) {
        snprintf(buf, len, "%lld B", n);
    } else {
        snprintf(buf, len, "%.1f %s", v, units[u]);
    }
}

/* Asks one endpoint for its status, on a connection of its own, reading
 * the node's local state (READONLY) so a node without a leader still
 * answers. */
static void status_one(struct cli *cli, struct node_status *st)
{
    const char *ro[1] = {"READONLY"};
    const char *bs[1] = {"BSTATUS"};
    const char *db[1] = {"DBSIZE"};
    const char *info[2] = {"INFO", "server"};
    redisContext *c = cli_connect_one(cli, st->endpoint);
    redisReply *r = NULL;
    const char *at;

    if (c == NULL) {
        snprintf(st->error, sizeof(st->error), "%s", cli->errmsg);
        return;
    }
    r = cli_command_on(c, 1, ro);
    if (r == NULL) {
        goto io;
    }
    freeReplyObject(r);
    r = cli_command_on(c, 1, bs);
    if (r == NULL) {
        goto io;
    }
    if (r->type != REDIS_REPLY_ARRAY) {
        snprintf(st->error, sizeof(st->error), "BSTATUS: %s",
                 r->type == REDIS_REPLY_ERROR ? r->str : "unexpected reply");
        goto done;
    }
    st->id = cli_map_int(r, "id");
    st->term = cli_map_int(r, "term");
    st->leader = cli_map_int(r, "leader");
    st->commit = cli_map_int(r, "commit");
    st->applied = cli_map_int(r, "applied");
    st->revision = cli_map_int(r, "revision");
    st->db_bytes = cli_map_int(r, "db_bytes");
    if (cli_map_get(r, "role") != NULL && cli_map_get(r, "role")->str != NULL) {
        snprintf(st->role, sizeof(st->role), "%s", cli_map_get(r, "role")->str);
    }
    st->epoch = cli_map_int(r, "epoch");
    st->primary = cli_map_int(r, "primary");
    st->diverged = cli_map_int(r, "diverged");
    if (st->epoch > 0) {
        /* In the mode, roles are the primary and its replicas. */
        snprintf(st->role, sizeof(st->role), "%s",
                 st->id == st->primary ? "primary" : "replica");
    }
    if (cli_map_get(r, "leader_addr") != NULL &&
        cli_map_get(r, "leader_addr")->type == REDIS_REPLY_STRING) {
        snprintf(st->leader_addr, sizeof(st->leader_addr), "%s",
                 cli_map_get(r, "leader_addr")->str);
    }
    freeReplyObject(r);
    r = cli_command_on(c, 1, db);
    if (r == NULL) {
        goto io;
    }
    st->keys = r->type == REDIS_REPLY_INTEGER ? r->integer : -1;
    freeReplyObject(r);
    r = cli_command_on(c, 2, info);
    if (r == NULL) {
        goto io;
    }
    if (r->str != NULL && (at = strstr(r->str, "ballot_version:")) != NULL) {
        size_t n = strcspn(at + 15, "\r\n");
        snprintf(st->version, sizeof(st->version), "%.*s", (int)n, at + 15);
    }
done:
    if (r != NULL) {
        freeReplyObject(r);
    }
    cli_conn_free(c);
    return;
io:
    snprintf(st->error, sizeof(st->error), "%s: %s", st->endpoint,
             c->errstr[0] ? c->errstr : "no reply");
    cli_conn_free(c);
}

/* With --cluster: the client addresses of every member, from the first
 * endpoint that answers BMEMBER LIST. */
static int cluster_endpoints(struct cli *cli, char ***out, unsigned *n)
{
    const char *cmd[2] = {"BMEMBER", "LIST"};
    redisReply *r;
    char **eps;
    int rc = cli_call(cli, CLI_READ, 2, cmd, NULL, &r);
    if (rc != CLI_OK || r->type != REDIS_REPLY_ARRAY) {
        return rc != CLI_OK ? cli_fail_reply(cli, rc, r)
                            : cli_fail_reply(cli, CLI_OK, r);
    }
    eps = calloc(r->elements + 1, sizeof(*eps));
    *n = 0;
    for (size_t i = 0; eps != NULL && i < r->elements; i++) {
        redisReply *m = r->element[i];
        if (m->type == REDIS_REPLY_ARRAY && m->elements == 3 &&
            m->element[2]->str != NULL) {
            eps[(*n)++] = strdup(m->element[2]->str);
        }
    }
    freeReplyObject(r);
    *out = eps;
    return CLI_OK;
}

/* Below the table, for nodes in the primary-replica mode: the epoch and
 * primary each reports, and replicas whose log diverged from the
 * primary's (their data must be rebuilt, docs/modes.md). */
static void status_mode_lines(const struct node_status *sts, unsigned n)
{
    for (unsigned i = 0; i < n; i++) {
        const struct node_status *s = &sts[i];
        if (s->error[0] != '\0' || s->epoch <= 0) {
            continue;
        }
        printf(
            "%s: primary-replica mode, epoch %lld, primary %lld%s\n",
            s->endpoint, s->epoch, s->primary,
            s->diverged > 0 ? ", DIVERGED from the primary: rebuild it" : "");
    }
}

int cmd_status(struct cli *cli, int argc, char **argv)
{
    struct node_status *sts;
    char **eps = cli->endpoints, **owned = NULL;
    unsigned n = cli->n_endpoints, answered = 0;
    long long leader_commit = -1;
    if (argc == 2 && strcmp(argv[1], "--cluster") == 0) {
        int rc = cluster_endpoints(cli, &owned, &n);
        if (rc != CLI_OK) {
            return rc;
        }
        eps = owned;
    } else if (argc != 1) {
        return cli_usage(argv[0]);
    }
    sts = calloc(n ? n : 1, sizeof(*sts));
    if (sts == NULL) {
        return cli_fail(cli, CLI_UNAVAILABLE, "out of memory");
    }
    for (unsigned i = 0; i < n; i++) {
        snprintf(sts[i].endpoint, sizeof(sts[i].endpoint), "%s", eps[i]);
        sts[i].id = sts[i].term = sts[i].commit = sts[i].applied = -1;
        status_one(cli, &sts[i]);
        if (sts[i].error[0] == '\0') {
            answered++;
            if (strcmp(sts[i].role, "leader") == 0 ||
                strcmp(sts[i].role, "primary") == 0) {
                leader_commit = sts[i].commit;
            }
        }
    }
    /* Without the leader among the endpoints, the highest commit index
     * seen stands in for it. */
    if (leader_commit < 0) {
        for (unsigned i = 0; i < n; i++) {
            if (sts[i].error[0] == '\0' && sts[i].commit > leader_commit) {
                leader_commit = sts[i].commit;
            }
        }
    }
    if (cli->json) {
        cJSON *o = cJSON_CreateObject();
        cJSON *arr = cJSON_AddArrayToObject(o, "endpoints");
        for (unsigned i = 0; i < n; i++) {
            struct node_status *s = &sts[i];
            cJSON *j = cJSON_CreateObject();
            cJSON_AddStringToObject(j, "endpoint", s->endpoint);
            if (s->error[0] != '\0') {
                cJSON_AddStringToObject(j, "error", s->error);
            } else {
                cJSON_AddNumberToObject(j, "id", (double)s->id);
                cJSON_AddStringToObject(j, "role", s->role);
                cJSON_AddNumberToObject(j, "term", (double)s->term);
                cJSON_AddNumberToObject(j, "leader", (double)s->leader);
                if (s->leader_addr[0] != '\0') {
                    cJSON_AddStringToObject(j, "leader_addr", s->leader_addr);
                } else {
                    cJSON_AddNullToObject(j, "leader_addr");
                }
                cJSON_AddNumberToObject(j, "commit", (double)s->commit);
                cJSON_AddNumberToObject(j, "applied", (double)s->applied);
                cJSON_AddNumberToObject(j, "lag",
                                        (double)(leader_commit - s->applied));
                cJSON_AddNumberToObject(j, "keys", (double)s->keys);
                cJSON_AddNumberToObject(j, "db_bytes", (double)s->db_bytes);
                cJSON_AddNumberToObject(j, "revision", (double)s->revision);
                cJSON_AddStringToObject(j, "version", s->version);
                cJSON_AddStringToObject(
                    j, "mode", s->epoch > 0 ? "primary-replica" : "raft");
                if (s->epoch > 0) {
                    cJSON_AddNumberToObject(j, "epoch", (double)s->epoch);
                    cJSON_AddNumberToObject(j, "primary", (double)s->primary);
                    cJSON_AddNumberToObject(j, "diverged", (double)s->diverged);
                }
            }
            cJSON_AddItemToArray(arr, j);
        }
        cli_print_json(o);
    } else {
        printf("%-22s %-4s %-10s %-6s %-8s %-8s %-5s %-8s %-8s %-9s %s\n",
               "ENDPOINT", "ID", "ROLE", "TERM", "COMMIT", "APPLIED", "LAG",
               "KEYS", "REVISION", "DB SIZE", "VERSION");
        for (unsigned i = 0; i < n; i++) {
            struct node_status *s = &sts[i];
            if (s->error[0] != '\0') {
                printf("%-22s error: %s\n", s->endpoint, s->error);
                continue;
            }
            char size[32];
            human_bytes(s->db_bytes, size, sizeof(size));
            printf(
                "%-22s %-4lld %-10s %-6lld %-8lld %-8lld %-5lld %-8lld "
                "%-8lld %-9s %s\n",
                s->endpoint, s->id, s->role, s->term, s->commit, s->applied,
                leader_commit - s->applied, s->keys, s->revision, size,
                s->version);
        }
        status_mode_lines(sts, n);
    }
    free(sts);
    if (owned != NULL) {
        for (unsigned i = 0; i < n; i++) {
            free(owned[i]);
        }
        free(owned);
    }
    if (answered < n) {
        fprintf(stderr, "ballot: %u of %u endpoints did not answer\n",
                n - answered, n);
        return CLI_UNAVAILABLE;
    }
    return CLI_OK;
}
