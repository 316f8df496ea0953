/*
 * cmd_watch.c - `ballot watch KEY [--prefix | --end END] [--rev N]
 * [--count N]`: prints the changes of a key, range or prefix as they
 * come (BWATCH, docs/protocol.md "Watches"), one line each (one JSON
 * object with --json). If the connection is lost, it reconnects to the
 * next endpoint that answers and resumes from the revision after the
 * last one it printed, so no change is missed or printed twice.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"

static volatile sig_atomic_t interrupted;

static void on_interrupt(int sig)
{
    (void)sig;
    interrupted = 1;
}

static void print_event(struct cli *cli, redisReply *e, long long *printed)
{
    if (e->type != REDIS_REPLY_ARRAY || e->elements != 6) {
        return;
    }
    const redisReply *op = e->element[0], *key = e->element[1],
                     *val = e->element[2];
    long long mod = e->element[4]->integer;
    bool del = strcmp(op->str, "delete") == 0;
    if (cli->json) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "type", del ? "delete" : "put");
        cJSON_AddItemToObject(o, "key", cli_json_bytes(key->str, key->len));
        if (!del) {
            cJSON_AddItemToObject(o, "value",
                                  cli_json_bytes(val->str, val->len));
            cJSON_AddNumberToObject(o, "create_revision",
                                    (double)e->element[3]->integer);
            cJSON_AddNumberToObject(o, "version",
                                    (double)e->element[5]->integer);
        }
        cJSON_AddNumberToObject(o, "mod_revision", (double)mod);
        cli_print_json(o); /* frees it */
    } else {
        printf("%s ", del ? "DELETE" : "PUT");
        cli_print_bytes(key->str, key->len);
        if (!del) {
            printf(" ");
            cli_print_bytes(val->str, val->len);
        }
        printf(" (revision %lld)\n", mod);
    }
    fflush(stdout);
    (*printed)++;
}

/* Reads pushes until interrupted, @count events were printed, the watch
 * ended or the connection failed. Returns 1 to reconnect, or an exit
 * code. */
static int stream(struct cli *cli,
                  redisContext *ctx,
                  long long *next_rev,
                  long long count,
                  long long *printed)
{
    while (!interrupted && (count == 0 || *printed < count)) {
        redisReply *r = NULL;
        if (redisGetReply(ctx, (void **)&r) != REDIS_OK || r == NULL) {
            if (ctx->err == REDIS_ERR_IO && interrupted) {
                return CLI_OK;
            }
            return ctx->err == REDIS_ERR_IO && ctx->errstr[0] != '\0' &&
                           strstr(ctx->errstr, "timed out") != NULL
                       ? 2 /* idle: a progress frame is overdue */
                       : 1;
        }
        if (r->type == REDIS_REPLY_ARRAY && r->elements == 4 &&
            r->element[0]->type == REDIS_REPLY_STRING) {
            if (strcmp(r->element[0]->str, "bwatch") == 0) {
                redisReply *events = r->element[3];
                for (size_t i = 0;
                     i < events->elements && (count == 0 || *printed < count);
                     i++) {
                    print_event(cli, events->element[i], printed);
                    *next_rev = events->element[i]->element[4]->integer + 1;
                }
                if (events->elements == 0 || count == 0 || *printed < count) {
                    long long rev = r->element[2]->integer;
                    if (rev + 1 > *next_rev) {
                        *next_rev = rev + 1;
                    }
                }
            } else if (strcmp(r->element[0]->str, "bwatch-end") == 0) {
                const char *why = r->element[2]->str;
                long long rev = r->element[3]->integer;
                int code = strcmp(why, "slow") == 0 ? 1 : CLI_REJECTED;
                if (code != 1) {
                    cli_fail(cli, code, "watch ended: %s at revision %lld", why,
                             rev);
                }
                freeReplyObject(r);
                return code;
            }
        }
        freeReplyObject(r);
    }
    return CLI_OK;
}

int cmd_watch(struct cli *cli, int argc, char **argv)
{
    const char *key = NULL, *end = NULL;
    bool prefix = false;
    uint64_t rev = 0, count = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--prefix") == 0) {
            prefix = true;
        } else if (i + 1 < argc && strcmp(argv[i], "--end") == 0) {
            end = argv[++i];
        } else if (i + 1 < argc && strcmp(argv[i], "--rev") == 0) {
            if (cli_parse_u64(argv[++i], &rev) != 0) {
                return cli_usage(argv[0]);
            }
        } else if (i + 1 < argc && strcmp(argv[i], "--count") == 0) {
            if (cli_parse_u64(argv[++i], &count) != 0) {
                return cli_usage(argv[0]);
            }
        } else if (key == NULL && argv[i][0] != '-') {
            key = argv[i];
        } else {
            return cli_usage(argv[0]);
        }
    }
    if (key == NULL || (prefix && end != NULL)) {
        return cli_usage(argv[0]);
    }
    signal(SIGINT, on_interrupt);
    signal(SIGTERM, on_interrupt);
    long long next_rev = (long long)rev, printed = 0;
    int failures = 0;
    for (unsigned e = 0; !interrupted;) {
        const char *addr = cli->endpoints[e % cli->n_endpoints];
        redisContext *ctx = cli_connect_one(cli, addr);
        int rc = 1;
        if (ctx != NULL) {
            /* Progress frames come every second: a much longer silence
             * means the node is gone. */
            struct timeval tv = {5, 0};
            redisSetTimeout(ctx, tv);
            char revs[32];
            snprintf(revs, sizeof(revs), "%lld", next_rev);
            const char *args[8] = {"BWATCH", key};
            int n = 2;
            if (prefix) {
                args[n++] = "PREFIX";
            } else if (end != NULL) {
                args[n++] = "END";
                args[n++] = end;
            }
            args[n++] = "REV";
            args[n++] = revs;
            redisReply *r = cli_command_on(ctx, n, args);
            if (r != NULL && r->type == REDIS_REPLY_INTEGER) {
                failures = 0;
                rc = stream(cli, ctx, &next_rev, (long long)count, &printed);
            } else if (r != NULL && r->type == REDIS_REPLY_ERROR) {
                rc = cli_fail_reply(cli, CLI_OK, r);
                r = NULL;
            }
            if (r != NULL) {
                freeReplyObject(r);
            }
            cli_conn_free(ctx);
        }
        if (rc != 1 && rc != 2) {
            return rc;
        }
        /* Lost (or silent): the next endpoint, from where we stopped. */
        if (++failures > (int)cli->n_endpoints * 10) {
            return cli_fail(cli, CLI_UNAVAILABLE,
                            "watch: no endpoint answered");
        }
        e++;
        struct timespec ts = {0, 200 * 1000000L};
        nanosleep(&ts, NULL);
    }
    return CLI_OK;
}
