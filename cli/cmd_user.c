/*
 * cmd_user.c - `ballot user`: users and their permissions, through Redis's
 * ACL commands (docs/security.md, "Users and ACLs").
 *
 *   ballot user list                  ACL LIST
 *   ballot user get NAME              ACL GETUSER NAME
 *   ballot user add NAME [RULE...]    ACL SETUSER NAME on RULE...
 *   ballot user grant NAME RULE...    ACL SETUSER NAME RULE...
 *   ballot user passwd NAME           ACL SETUSER NAME resetpass >(stdin)
 *   ballot user del NAME...           ACL DELUSER NAME...
 *
 * A password is read from standard input (`add --password-stdin`,
 * `passwd`), never taken from the command line, where other users of the
 * machine could read it.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

/* Longest password read from stdin (the server's limit is lower). */
#define USER_PASSWORD_MAX 4096u

/* Reads one line of stdin (without its newline) into @buf. */
static int read_password(char *buf, size_t cap)
{
    if (fgets(buf + 1, (int)cap - 1, stdin) == NULL) {
        return -1;
    }
    size_t n = strlen(buf + 1);
    while (n > 0 && (buf[n] == '\n' || buf[n] == '\r')) {
        buf[n--] = '\0';
    }
    if (n == 0) {
        return -1;
    }
    buf[0] = '>';
    return 0;
}

/* Sends an ACL command that changes users (to the leader: it is a log
 * entry) and prints OK or its integer reply. */
static int user_change(struct cli *cli, int argc, const char **cmd)
{
    redisReply *r;
    int rc = cli_call(cli, CLI_WRITE, argc, cmd, NULL, &r);
    if (rc != CLI_OK || r->type == REDIS_REPLY_ERROR) {
        return cli_fail_reply(cli, rc, r);
    }
    if (cli->json) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddBoolToObject(o, "ok", 1);
        if (r->type == REDIS_REPLY_INTEGER) {
            cJSON_AddNumberToObject(o, "deleted", (double)r->integer);
        }
        cli_print_json(o);
    } else if (r->type == REDIS_REPLY_INTEGER) {
        printf("%lld\n", r->integer);
    } else {
        printf("OK\n");
    }
    freeReplyObject(r);
    return CLI_OK;
}

static int user_list(struct cli *cli)
{
    const char *cmd[] = {"ACL", "LIST"};
    redisReply *r;
    int rc = cli_call(cli, CLI_READ, 2, cmd, NULL, &r);
    if (rc != CLI_OK || r->type == REDIS_REPLY_ERROR) {
        return cli_fail_reply(cli, rc, r);
    }
    cJSON *o = cli->json ? cJSON_CreateObject() : NULL;
    cJSON *arr = o != NULL ? cJSON_AddArrayToObject(o, "users") : NULL;
    for (size_t i = 0; r->type == REDIS_REPLY_ARRAY && i < r->elements; i++) {
        redisReply *e = r->element[i];
        if (e->type != REDIS_REPLY_STRING) {
            continue;
        }
        if (arr != NULL) {
            cJSON_AddItemToArray(arr, cli_json_bytes(e->str, e->len));
        } else {
            printf("%s\n", e->str);
        }
    }
    if (o != NULL) {
        cli_print_json(o);
    }
    freeReplyObject(r);
    return CLI_OK;
}

static int user_get(struct cli *cli, const char *name)
{
    const char *cmd[] = {"ACL", "GETUSER", name};
    redisReply *r;
    int rc = cli_call(cli, CLI_READ, 3, cmd, NULL, &r);
    if (rc != CLI_OK || r->type == REDIS_REPLY_ERROR) {
        return cli_fail_reply(cli, rc, r);
    }
    if (r->type == REDIS_REPLY_NIL) {
        freeReplyObject(r);
        return cli_fail(cli, CLI_NOT_FOUND, "no user '%s'", name);
    }
    cJSON *o = cli->json ? cJSON_CreateObject() : NULL;
    for (size_t i = 0; r->type == REDIS_REPLY_ARRAY && i + 1 < r->elements;
         i += 2) {
        const char *field = r->element[i]->str;
        redisReply *v = r->element[i + 1];
        if (field == NULL) {
            continue;
        }
        if (v->type == REDIS_REPLY_ARRAY) {
            cJSON *arr = o != NULL ? cJSON_AddArrayToObject(o, field) : NULL;
            if (o == NULL) {
                printf("%s:", field);
            }
            for (size_t k = 0; k < v->elements; k++) {
                const char *s = v->element[k]->str ? v->element[k]->str : "";
                if (arr != NULL) {
                    cJSON_AddItemToArray(arr, cJSON_CreateString(s));
                } else {
                    printf(" %s", s);
                }
            }
            if (o == NULL) {
                printf("\n");
            }
        } else if (o != NULL) {
            cJSON_AddStringToObject(o, field, v->str ? v->str : "");
        } else {
            printf("%s: %s\n", field, v->str ? v->str : "");
        }
    }
    if (o != NULL) {
        cli_print_json(o);
    }
    freeReplyObject(r);
    return CLI_OK;
}

/* ACL SETUSER @name [on] [>password from stdin] @rules. */
static int user_set(struct cli *cli,
                    const char *name,
                    bool on,
                    bool password,
                    bool resetpass,
                    int n_rules,
                    char **rules)
{
    const char **cmd = calloc((size_t)n_rules + 6, sizeof(*cmd));
    char *pw = NULL;
    int argc = 0, rc;
    if (cmd == NULL) {
        return cli_fail(cli, CLI_LOCAL, "out of memory");
    }
    cmd[argc++] = "ACL";
    cmd[argc++] = "SETUSER";
    cmd[argc++] = name;
    if (on) {
        cmd[argc++] = "on";
    }
    if (resetpass) {
        cmd[argc++] = "resetpass";
    }
    if (password) {
        pw = malloc(USER_PASSWORD_MAX + 2);
        if (pw == NULL || read_password(pw, USER_PASSWORD_MAX + 2) != 0) {
            free(pw);
            free(cmd);
            return cli_fail(cli, CLI_USAGE,
                            "no password on standard input (one line)");
        }
        cmd[argc++] = pw;
    }
    for (int i = 0; i < n_rules; i++) {
        cmd[argc++] = rules[i];
    }
    rc = user_change(cli, argc, cmd);
    if (pw != NULL) {
        memset(pw, 0, strlen(pw));
        free(pw);
    }
    free(cmd);
    return rc;
}

int cmd_user(struct cli *cli, int argc, char **argv)
{
    const char *usage =
        "usage: ballot user list | get NAME | add NAME [--password-stdin] "
        "[RULE...] | grant NAME RULE... | passwd NAME | del NAME...";
    if (argc < 2) {
        return cli_fail(cli, CLI_USAGE, "%s", usage);
    }
    const char *sub = argv[1];
    if (strcmp(sub, "list") == 0 && argc == 2) {
        return user_list(cli);
    }
    if (strcmp(sub, "get") == 0 && argc == 3) {
        return user_get(cli, argv[2]);
    }
    if (strcmp(sub, "add") == 0 && argc >= 3) {
        bool password = argc >= 4 && strcmp(argv[3], "--password-stdin") == 0;
        int first = password ? 4 : 3;
        return user_set(cli, argv[2], true, password, false, argc - first,
                        argv + first);
    }
    if (strcmp(sub, "grant") == 0 && argc >= 4) {
        return user_set(cli, argv[2], false, false, false, argc - 3, argv + 3);
    }
    if (strcmp(sub, "passwd") == 0 && argc == 3) {
        return user_set(cli, argv[2], false, true, true, 0, NULL);
    }
    if (strcmp(sub, "del") == 0 && argc >= 3) {
        const char **cmd = calloc((size_t)argc + 1, sizeof(*cmd));
        if (cmd == NULL) {
            return cli_fail(cli, CLI_LOCAL, "out of memory");
        }
        cmd[0] = "ACL";
        cmd[1] = "DELUSER";
        for (int i = 2; i < argc; i++) {
            cmd[i] = argv[i];
        }
        int rc = user_change(cli, argc, cmd);
        free(cmd);
        return rc;
    }
    return cli_fail(cli, CLI_USAGE, "%s", usage);
}
