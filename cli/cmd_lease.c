/*
 * cmd_lease.c - `ballot lease grant|keepalive|revoke|ttl|list`: leases
 * (docs/coordination.md, "Leases") over BLEASE:
 *   - grant TTL_MS [--id ID]: prints the lease's id;
 *   - keepalive ID [--once]: renews it, printing the remaining TTL, a
 *     third of the way into each TTL, until interrupted (SIGINT, SIGTERM)
 *     or the lease is gone; --once renews it once;
 *   - revoke ID: ends it, printing how many keys went with it;
 *   - ttl ID [--keys]: the remaining and granted TTL, the keys attached;
 *   - list: every lease id, one per line.
 * Keys attach with `ballot put KEY VALUE --lease ID`.
 */
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "cli.h"

static volatile sig_atomic_t interrupted;

static void on_interrupt(int sig)
{
    (void)sig;
    interrupted = 1;
}

/* Sleeps @ms unless interrupted first. */
static void nap(uint64_t ms)
{
    uint64_t end = cli_now_us() + ms * 1000;
    while (!interrupted && cli_now_us() < end) {
        struct timespec ts = {0, 20 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
}

static int lease_grant(struct cli *cli, int argc, char **argv)
{
    uint64_t ttl = 0, id = 0;
    if (argc != 3 && argc != 5) {
        return cli_usage("lease");
    }
    if (cli_parse_u64(argv[2], &ttl) != 0 ||
        (argc == 5 &&
         (strcmp(argv[3], "--id") != 0 || cli_parse_u64(argv[4], &id) != 0))) {
        return cli_usage("lease");
    }
    const char *args[5] = {"BLEASE", "GRANT", argv[2], "ID",
                           argc == 5 ? argv[4] : NULL};
    redisReply *r;
    int rc = cli_call(cli, CLI_WRITE, argc == 5 ? 5 : 3, args, NULL, &r);
    if (rc != CLI_OK || r->type == REDIS_REPLY_ERROR) {
        return cli_fail_reply(cli, rc, r);
    }
    long long got = r->type == REDIS_REPLY_ARRAY && r->elements == 2
                        ? r->element[0]->integer
                        : -1;
    if (cli->json) {
        char buf[24];
        cJSON *o = cJSON_CreateObject();
        snprintf(buf, sizeof(buf), "%lld", got);
        /* A string: a 64-bit id does not fit a JSON number exactly. */
        cJSON_AddStringToObject(o, "id", buf);
        cJSON_AddNumberToObject(o, "ttl_ms", (double)ttl);
        cli_print_json(o);
    } else {
        printf("%lld\n", got);
    }
    freeReplyObject(r);
    return CLI_OK;
}

static int lease_keepalive(struct cli *cli, int argc, char **argv)
{
    uint64_t id = 0;
    bool once = argc == 4 && strcmp(argv[3], "--once") == 0;
    if ((argc != 3 && !once) || cli_parse_u64(argv[2], &id) != 0 || id == 0) {
        return cli_usage("lease");
    }
    signal(SIGINT, on_interrupt);
    signal(SIGTERM, on_interrupt);
    const char *args[3] = {"BLEASE", "KEEPALIVE", argv[2]};
    while (!interrupted) {
        redisReply *r;
        int rc = cli_call(cli, CLI_WRITE, 3, args, NULL, &r);
        if (rc != CLI_OK || r->type == REDIS_REPLY_ERROR) {
            return cli_fail_reply(cli, rc, r);
        }
        long long left = r->integer;
        freeReplyObject(r);
        if (cli->json) {
            cJSON *o = cJSON_CreateObject();
            cJSON_AddStringToObject(o, "id", argv[2]);
            cJSON_AddNumberToObject(o, "remaining_ms", (double)left);
            cli_print_json(o);
        } else {
            printf("%s %lld\n", argv[2], left);
        }
        fflush(stdout);
        if (once) {
            break;
        }
        /* A third of the way: two more tries fit before the deadline. */
        nap(left > 30 ? (uint64_t)left / 3 : 10);
    }
    return CLI_OK;
}

static int lease_revoke(struct cli *cli, int argc, char **argv)
{
    uint64_t id = 0;
    if (argc != 3 || cli_parse_u64(argv[2], &id) != 0 || id == 0) {
        return cli_usage("lease");
    }
    const char *args[3] = {"BLEASE", "REVOKE", argv[2]};
    redisReply *r;
    int rc = cli_call(cli, CLI_WRITE, 3, args, NULL, &r);
    if (rc != CLI_OK || r->type == REDIS_REPLY_ERROR) {
        return cli_fail_reply(cli, rc, r);
    }
    if (cli->json) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "id", argv[2]);
        cJSON_AddNumberToObject(o, "deleted", (double)r->integer);
        cli_print_json(o);
    } else {
        printf("%lld\n", r->integer);
    }
    freeReplyObject(r);
    return CLI_OK;
}

static int lease_ttl(struct cli *cli, int argc, char **argv)
{
    uint64_t id = 0;
    bool keys = argc == 4 && strcmp(argv[3], "--keys") == 0;
    if ((argc != 3 && !keys) || cli_parse_u64(argv[2], &id) != 0 || id == 0) {
        return cli_usage("lease");
    }
    const char *args[4] = {"BLEASE", "TTL", argv[2], "KEYS"};
    redisReply *r;
    /* Only the leader runs the lease clock: route it like a write. */
    int rc = cli_call(cli, CLI_WRITE, keys ? 4 : 3, args, NULL, &r);
    if (rc != CLI_OK || r->type == REDIS_REPLY_ERROR) {
        return cli_fail_reply(cli, rc, r);
    }
    if (r->type != REDIS_REPLY_ARRAY || r->elements != 4) {
        freeReplyObject(r);
        return cli_fail(cli, CLI_REJECTED, "lease ttl: unexpected reply");
    }
    redisReply *ks = r->element[3];
    if (cli->json) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "id", argv[2]);
        cJSON_AddNumberToObject(o, "remaining_ms",
                                (double)r->element[0]->integer);
        cJSON_AddNumberToObject(o, "granted_ms",
                                (double)r->element[1]->integer);
        cJSON_AddNumberToObject(o, "keys", (double)r->element[2]->integer);
        if (keys) {
            cJSON *a = cJSON_CreateArray();
            for (size_t i = 0; i < ks->elements; i++) {
                cJSON_AddItemToArray(a, cli_json_bytes(ks->element[i]->str,
                                                       ks->element[i]->len));
            }
            cJSON_AddItemToObject(o, "attached", a);
        }
        cli_print_json(o);
    } else {
        printf("remaining %lld ms, granted %lld ms, %lld keys\n",
               r->element[0]->integer, r->element[1]->integer,
               r->element[2]->integer);
        for (size_t i = 0; i < ks->elements; i++) {
            cli_print_bytes(ks->element[i]->str, ks->element[i]->len);
            printf("\n");
        }
    }
    freeReplyObject(r);
    return CLI_OK;
}

static int lease_list(struct cli *cli, int argc, char **argv)
{
    char after[24] = "0";
    (void)argv;
    if (argc != 2) {
        return cli_usage("lease");
    }
    cJSON *arr = cli->json ? cJSON_CreateArray() : NULL;
    for (;;) {
        const char *args[6] = {"BLEASE", "LIST",  "AFTER",
                               after,    "COUNT", "10000"};
        redisReply *r;
        int rc = cli_call(cli, CLI_READ, 6, args, NULL, &r);
        if (rc != CLI_OK || r->type == REDIS_REPLY_ERROR) {
            cJSON_Delete(arr);
            return cli_fail_reply(cli, rc, r);
        }
        for (size_t i = 0; i < r->elements; i++) {
            snprintf(after, sizeof(after), "%lld", r->element[i]->integer);
            if (arr != NULL) {
                cJSON_AddItemToArray(arr, cJSON_CreateString(after));
            } else {
                printf("%s\n", after);
            }
        }
        size_t n = r->elements;
        freeReplyObject(r);
        if (n < 10000) {
            break;
        }
    }
    if (arr != NULL) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddItemToObject(o, "leases", arr);
        cli_print_json(o);
    }
    return CLI_OK;
}

int cmd_lease(struct cli *cli, int argc, char **argv)
{
    if (argc < 2) {
        return cli_usage(argv[0]);
    }
    const char *sub = argv[1];
    if (strcmp(sub, "grant") == 0) {
        return lease_grant(cli, argc, argv);
    }
    if (strcmp(sub, "keepalive") == 0) {
        return lease_keepalive(cli, argc, argv);
    }
    if (strcmp(sub, "revoke") == 0) {
        return lease_revoke(cli, argc, argv);
    }
    if (strcmp(sub, "ttl") == 0) {
        return lease_ttl(cli, argc, argv);
    }
    if (strcmp(sub, "list") == 0) {
        return lease_list(cli, argc, argv);
    }
    return cli_usage(argv[0]);
}
