/*
 * cmd_kv.c - the key-value commands of `ballot`: get, put, del, range, txn.
 *
 * put and del are sent as one-branch BTXN transactions so that they can
 * report the store revision they produced, like every other write.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"

int cmd_get(struct cli *cli, int argc, char **argv)
{
    const char *cmd[2] = {"GET", NULL};
    redisReply *r;
    int rc;
    if (argc != 2) {
        return cli_usage(argv[0]);
    }
    cmd[1] = argv[1];
    rc = cli_call(cli, CLI_READ, 2, cmd, NULL, &r);
    if (rc != CLI_OK || r->type == REDIS_REPLY_ERROR) {
        return cli_fail_reply(cli, rc, r);
    }
    if (r->type == REDIS_REPLY_NIL) {
        freeReplyObject(r);
        if (cli->json) {
            cJSON *o = cJSON_CreateObject();
            cJSON_AddStringToObject(o, "key", argv[1]);
            cJSON_AddBoolToObject(o, "found", 0);
            cli_print_json(o);
        } else {
            fprintf(stderr, "ballot: key not found: %s\n", argv[1]);
        }
        return CLI_NOT_FOUND;
    }
    if (cli->json) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "key", argv[1]);
        cJSON_AddBoolToObject(o, "found", 1);
        cJSON_AddItemToObject(o, "value", cli_json_bytes(r->str, r->len));
        cli_print_json(o);
    } else {
        cli_print_bytes(r->str, r->len);
        fputc('\n', stdout);
    }
    freeReplyObject(r);
    return CLI_OK;
}

/* Reads all of stdin into a malloc'ed buffer. Returns 0 or -1. */
static int read_stdin(char **out, size_t *len)
{
    size_t cap = 4096, n = 0;
    char *buf = malloc(cap);
    ssize_t got;
    if (buf == NULL) {
        return -1;
    }
    while ((got = read(STDIN_FILENO, buf + n, cap - n)) > 0) {
        n += (size_t)got;
        if (n == cap) {
            char *grown = realloc(buf, cap * 2);
            if (grown == NULL) {
                free(buf);
                return -1;
            }
            buf = grown;
            cap *= 2;
        }
    }
    if (got < 0) {
        free(buf);
        return -1;
    }
    *out = buf;
    *len = n;
    return 0;
}

/* Runs a BTXN and returns its reply (checked to be the 3-element array)
 * or an exit code. */
static int run_btxn(struct cli *cli,
                    int argc,
                    const char **argv,
                    const size_t *lens,
                    redisReply **out)
{
    redisReply *r;
    int rc = cli_call(cli, CLI_WRITE, argc, argv, lens, &r);
    if (rc != CLI_OK || r->type == REDIS_REPLY_ERROR) {
        return cli_fail_reply(cli, rc, r);
    }
    if (r->type != REDIS_REPLY_ARRAY || r->elements != 3 ||
        r->element[0]->type != REDIS_REPLY_INTEGER ||
        r->element[1]->type != REDIS_REPLY_INTEGER ||
        r->element[2]->type != REDIS_REPLY_ARRAY) {
        freeReplyObject(r);
        return cli_fail(cli, CLI_REJECTED, "unexpected BTXN reply");
    }
    *out = r;
    return CLI_OK;
}

/* Removes "--fence NAME TOKEN" from argv (shifting the rest down) into
 * @f[0..2] = {"BFENCE", NAME, TOKEN}; returns the new argc, or -1 if the
 * option is incomplete. @f[0] stays NULL without the option. */
static int take_fence(int argc, char **argv, const char **f, size_t *flens)
{
    for (int i = 1; i < argc; i++) {
        uint64_t token = 0;
        if (strcmp(argv[i], "--fence") != 0) {
            continue;
        }
        if (i + 2 >= argc || cli_parse_u64(argv[i + 2], &token) != 0 ||
            token == 0) {
            return -1;
        }
        f[0] = "BFENCE";
        f[1] = argv[i + 1];
        f[2] = argv[i + 2];
        for (int k = 0; k < 3; k++) {
            flens[k] = strlen(f[k]);
        }
        for (int k = i; k + 3 < argc; k++) {
            argv[k] = argv[k + 3];
        }
        return argc - 3;
    }
    return argc;
}

int cmd_put(struct cli *cli, int argc, char **argv)
{
    /* BFENCE NAME TOKEN in front with --fence (docs/coordination.md,
     * "Fencing"): the write is refused unless TOKEN holds lock NAME. */
    const char *full[10] = {NULL, NULL,  NULL, "BTXN", "0",
                            "1",  "PUT", NULL, NULL,   "0"};
    size_t flens[10] = {0, 0, 0, 4, 1, 1, 3, 0, 0, 1};
    const char **cmd = full + 3;
    size_t *lens = flens + 3;
    char *value = NULL;
    size_t value_len;
    redisReply *r;
    int rc;
    uint64_t lease = 0;
    if ((argc = take_fence(argc, argv, full, flens)) < 0) {
        return cli_usage(argv[0]);
    }
    int skip = full[0] != NULL ? 0 : 3; /* where the command starts */
    if (argc == 5 && strcmp(argv[3], "--lease") == 0 &&
        cli_parse_u64(argv[4], &lease) == 0 && lease != 0) {
        argc = 3;
    }
    if (argc != 3) {
        return cli_usage(argv[0]);
    }
    if (strcmp(argv[2], "-") == 0) {
        if (read_stdin(&value, &value_len) != 0) {
            return cli_fail(cli, CLI_USAGE, "cannot read the value from stdin");
        }
    } else {
        value_len = strlen(argv[2]);
    }
    cmd[4] = argv[1];
    lens[4] = strlen(argv[1]);
    cmd[5] = value != NULL ? value : argv[2];
    lens[5] = value_len;
    if (lease != 0) {
        /* BPUT attaches the key to the lease (docs/protocol.md, "Leases"). */
        const char *bput[8] = {full[0], full[1], full[2], "BPUT",
                               cmd[4],  cmd[5],  "LEASE", argv[4]};
        size_t blens[8] = {flens[0], flens[1], flens[2], 4,
                           lens[4],  lens[5],  5,        strlen(argv[4])};
        rc = cli_call(cli, CLI_WRITE, 8 - skip, bput + skip, blens + skip, &r);
        free(value);
        if (rc != CLI_OK || r->type == REDIS_REPLY_ERROR) {
            return cli_fail_reply(cli, rc, r);
        }
        freeReplyObject(r);
        if (cli->json) {
            cJSON *o = cJSON_CreateObject();
            cJSON_AddStringToObject(o, "key", argv[1]);
            cJSON_AddStringToObject(o, "lease", argv[4]);
            cli_print_json(o);
        } else {
            printf("OK\n");
        }
        return CLI_OK;
    }
    rc = run_btxn(cli, 10 - skip, full + skip, flens + skip, &r);
    free(value);
    if (rc != CLI_OK) {
        return rc;
    }
    if (cli->json) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "key", argv[1]);
        cJSON_AddNumberToObject(o, "revision", (double)r->element[1]->integer);
        cli_print_json(o);
    } else {
        printf("OK\n");
    }
    freeReplyObject(r);
    return CLI_OK;
}

int cmd_del(struct cli *cli, int argc, char **argv)
{
    const char *cmd[6] = {"BTXN", "0", "1", "DEL", NULL, "0"};
    redisReply *r;
    long long deleted;
    int rc;
    if (argc != 2) {
        return cli_usage(argv[0]);
    }
    cmd[4] = argv[1];
    rc = run_btxn(cli, 6, cmd, NULL, &r);
    if (rc != CLI_OK) {
        return rc;
    }
    deleted = r->element[2]->elements == 1 &&
                      r->element[2]->element[0]->type == REDIS_REPLY_INTEGER
                  ? r->element[2]->element[0]->integer
                  : 0;
    if (cli->json) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "key", argv[1]);
        cJSON_AddNumberToObject(o, "deleted", (double)deleted);
        cJSON_AddNumberToObject(o, "revision", (double)r->element[1]->integer);
        cli_print_json(o);
    } else {
        printf("%lld\n", deleted);
    }
    freeReplyObject(r);
    return CLI_OK;
}

int cmd_range(struct cli *cli, int argc, char **argv)
{
    const char *cmd[10];
    int n = 0;
    const char *start = NULL, *end = NULL, *limit = NULL;
    bool prefix = false, keys_only = false, count_only = false, reverse = false;
    redisReply *r, *items;
    uint64_t lim;
    int rc;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--prefix") == 0) {
            prefix = true;
        } else if (strcmp(argv[i], "--keys-only") == 0) {
            keys_only = true;
        } else if (strcmp(argv[i], "--count-only") == 0) {
            count_only = true;
        } else if (strcmp(argv[i], "--reverse") == 0) {
            reverse = true;
        } else if (strcmp(argv[i], "--limit") == 0 && i + 1 < argc) {
            limit = argv[++i];
            if (cli_parse_u64(limit, &lim) != 0) {
                return cli_usage(argv[0]);
            }
        } else if (strncmp(argv[i], "--", 2) == 0) {
            return cli_usage(argv[0]);
        } else if (start == NULL) {
            start = argv[i];
        } else if (end == NULL) {
            end = argv[i];
        } else {
            return cli_usage(argv[0]);
        }
    }
    if (start == NULL || (prefix && end != NULL)) {
        return cli_usage(argv[0]);
    }
    cmd[n++] = "BRANGE";
    cmd[n++] = start;
    cmd[n++] = end != NULL ? end : "";
    if (limit != NULL) {
        cmd[n++] = "LIMIT";
        cmd[n++] = limit;
    }
    if (prefix) {
        cmd[n++] = "PREFIX";
    }
    if (reverse) {
        cmd[n++] = "REVERSE";
    }
    if (keys_only) {
        cmd[n++] = "KEYSONLY";
    }
    if (count_only) {
        cmd[n++] = "COUNTONLY";
    }
    rc = cli_call(cli, CLI_READ, n, cmd, NULL, &r);
    if (rc != CLI_OK || r->type == REDIS_REPLY_ERROR) {
        return cli_fail_reply(cli, rc, r);
    }
    if (r->type != REDIS_REPLY_ARRAY || r->elements != 4 ||
        r->element[3]->type != REDIS_REPLY_ARRAY) {
        freeReplyObject(r);
        return cli_fail(cli, CLI_REJECTED, "unexpected BRANGE reply");
    }
    items = r->element[3];
    if (cli->json) {
        cJSON *o = cJSON_CreateObject();
        cJSON *kvs;
        cJSON_AddNumberToObject(o, "revision", (double)r->element[0]->integer);
        cJSON_AddNumberToObject(o, "count", (double)r->element[1]->integer);
        cJSON_AddBoolToObject(o, "more", r->element[2]->integer != 0);
        kvs = cJSON_AddArrayToObject(o, "kvs");
        for (size_t i = 0; !count_only && i < items->elements;) {
            cJSON *kv = cJSON_CreateObject();
            redisReply *k = items->element[i++];
            cJSON_AddItemToObject(kv, "key", cli_json_bytes(k->str, k->len));
            if (!keys_only && i < items->elements) {
                redisReply *v = items->element[i++];
                cJSON_AddItemToObject(kv, "value",
                                      cli_json_bytes(v->str, v->len));
            }
            cJSON_AddItemToArray(kvs, kv);
        }
        cli_print_json(o);
    } else if (count_only) {
        printf("%lld\n", r->element[1]->integer);
    } else {
        for (size_t i = 0; i < items->elements; i++) {
            cli_print_bytes(items->element[i]->str, items->element[i]->len);
            fputc('\n', stdout);
        }
    }
    freeReplyObject(r);
    return CLI_OK;
}

/* ---------------------------------------------------------------------- */
/* txn                                                                     */

/* A growing argument vector for BTXN. */
struct txn_args
{
    char **v;
    int n, cap;
};

static int txn_push(struct txn_args *a, const char *s)
{
    if (a->n == a->cap) {
        int cap = a->cap ? a->cap * 2 : 32;
        char **grown = realloc(a->v, sizeof(*grown) * (size_t)cap);
        if (grown == NULL) {
            return -1;
        }
        a->v = grown;
        a->cap = cap;
    }
    a->v[a->n] = strdup(s);
    return a->v[a->n++] == NULL ? -1 : 0;
}

static void txn_free(struct txn_args *a)
{
    for (int i = 0; i < a->n; i++) {
        free(a->v[i]);
    }
    free(a->v);
}

static bool word_is(const char *w, const char *name)
{
    return strcasecmp(w, name) == 0;
}

/* How many words a comparison or an operation starting with @w takes, or
 * 0 if @w starts none. */
static int cmp_words(const char *w)
{
    return word_is(w, "value") || word_is(w, "version") ||
                   word_is(w, "create") || word_is(w, "mod") ||
                   word_is(w, "exists")
               ? 4
               : 0;
}

static int op_words(const char *w)
{
    if (word_is(w, "put") || word_is(w, "delrange")) {
        return 3;
    }
    if (word_is(w, "del") || word_is(w, "get")) {
        return 2;
    }
    return 0;
}

/* Appends @n items (words[0..]) of one section to @a, preceded by their
 * count. @kind 0 for comparisons, 1 for operations. Returns the words
 * consumed, or -1 if they do not parse. */
static int txn_section(struct txn_args *a,
                       char **words,
                       int n_words,
                       int kind,
                       const char *stop)
{
    int i = 0, items = 0, count_at;
    char num[16];
    if (txn_push(a, "0") != 0) {
        return -1;
    }
    count_at = a->n - 1;
    while (i < n_words && (stop == NULL || !word_is(words[i], stop))) {
        int w = kind == 0 ? cmp_words(words[i]) : op_words(words[i]);
        if (w == 0 || i + w > n_words) {
            fprintf(stderr, "ballot: txn: cannot parse '%s'\n", words[i]);
            return -1;
        }
        for (int j = 0; j < w; j++) {
            const char *s = words[i + j];
            char up[16];
            if (j == 0 || (kind == 0 && j == 2)) {
                /* Keywords and operators go in upper case. */
                size_t k;
                for (k = 0; s[k] != '\0' && k < sizeof(up) - 1; k++) {
                    up[k] =
                        (char)(s[k] >= 'a' && s[k] <= 'z' ? s[k] - 32 : s[k]);
                }
                up[k] = '\0';
                s = up;
            }
            if (txn_push(a, s) != 0) {
                return -1;
            }
        }
        i += w;
        items++;
    }
    snprintf(num, sizeof(num), "%d", items);
    free(a->v[count_at]);
    a->v[count_at] = strdup(num);
    return a->v[count_at] == NULL ? -1 : i;
}

/* Prints a BTXN reply. */
static int print_txn(struct cli *cli, redisReply *r)
{
    redisReply *res = r->element[2];
    bool ok = r->element[0]->integer != 0;
    if (cli->json) {
        cJSON *o = cJSON_CreateObject();
        cJSON *arr;
        cJSON_AddBoolToObject(o, "succeeded", ok);
        cJSON_AddNumberToObject(o, "revision", (double)r->element[1]->integer);
        arr = cJSON_AddArrayToObject(o, "results");
        for (size_t i = 0; i < res->elements; i++) {
            redisReply *e = res->element[i];
            cJSON *j;
            if (e->type == REDIS_REPLY_INTEGER) {
                j = cJSON_CreateNumber((double)e->integer);
            } else if (e->type == REDIS_REPLY_NIL) {
                j = cJSON_CreateNull();
            } else {
                j = cli_json_bytes(e->str, e->len);
            }
            cJSON_AddItemToArray(arr, j);
        }
        cli_print_json(o);
    } else {
        printf("%s\n", ok ? "SUCCESS" : "FAILURE");
        for (size_t i = 0; i < res->elements; i++) {
            redisReply *e = res->element[i];
            if (e->type == REDIS_REPLY_INTEGER) {
                printf("%lld\n", e->integer);
            } else if (e->type == REDIS_REPLY_NIL) {
                printf("(nil)\n");
            } else {
                cli_print_bytes(e->str, e->len);
                fputc('\n', stdout);
            }
        }
    }
    return CLI_OK;
}

/* Reads the three blank-line separated sections of `txn -i` into one
 * word list: compares, "then", success ops, "else", failure ops. */
static int read_interactive(struct txn_args *words)
{
    static const char *prompts[3] = {
        "compares:", "success requests:", "failure requests:"};
    bool tty = isatty(STDIN_FILENO);
    char line[65536];
    int section = 0;
    if (tty) {
        fprintf(stderr, "%s\n", prompts[0]);
    }
    while (section < 3 && fgets(line, sizeof(line), stdin) != NULL) {
        char **w;
        int n;
        if (line[0] == '\n' || (line[0] == '\r' && line[1] == '\n')) {
            section++;
            if (section < 3) {
                if (txn_push(words, section == 1 ? "then" : "else") != 0) {
                    return -1;
                }
                if (tty) {
                    fprintf(stderr, "\n%s\n", prompts[section]);
                }
            }
            continue;
        }
        n = cli_split_words(line, &w);
        if (n < 0) {
            fprintf(stderr, "ballot: txn: unterminated quote\n");
            return -1;
        }
        for (int i = 0; i < n; i++) {
            if (txn_push(words, w[i]) != 0) {
                cli_words_free(w, n);
                return -1;
            }
        }
        cli_words_free(w, n);
    }
    return 0;
}

int cmd_txn(struct cli *cli, int argc, char **argv)
{
    struct txn_args in = {0}, out = {0};
    char **words;
    int n_words, at = 0, used, rc = CLI_USAGE;
    redisReply *r;

    if (argc >= 2 &&
        (strcmp(argv[1], "-i") == 0 || strcmp(argv[1], "--interactive") == 0)) {
        if (argc != 2 || read_interactive(&in) != 0) {
            txn_free(&in);
            return cli_usage(argv[0]);
        }
        words = in.v;
        n_words = in.n;
    } else {
        words = argv + 1;
        n_words = argc - 1;
    }
    if (txn_push(&out, "BTXN") != 0) {
        goto done;
    }
    used = txn_section(&out, words, n_words, 0, "then");
    if (used < 0) {
        goto done;
    }
    at = used;
    if (at < n_words) {
        at++; /* "then" */
    }
    used = txn_section(&out, words + at, n_words - at, 1, "else");
    if (used < 0) {
        goto done;
    }
    at += used;
    if (at < n_words) {
        at++; /* "else" */
    }
    used = txn_section(&out, words + at, n_words - at, 1, NULL);
    if (used < 0) {
        goto done;
    }
    rc = run_btxn(cli, out.n, (const char **)out.v, NULL, &r);
    if (rc == CLI_OK) {
        rc = print_txn(cli, r);
        freeReplyObject(r);
    }
done:
    if (rc == CLI_USAGE) {
        cli_usage(argv[0]);
    }
    txn_free(&in);
    txn_free(&out);
    return rc;
}
