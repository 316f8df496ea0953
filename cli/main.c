/*
 * main.c - `ballot`: global flags, the command table, help and the
 * interactive shell.
 *
 * Every command is one row of the table below; `ballot help` and usage
 * errors are generated from it, so a command cannot exist without its
 * documentation.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <editline/readline.h>

#include "cli.h"

static int cmd_help(struct cli *cli, int argc, char **argv);
static int cmd_shell(struct cli *cli, int argc, char **argv);

struct cli_command
{
    const char *name;
    const char *synopsis;
    const char *summary;
    int (*handler)(struct cli *cli, int argc, char **argv);
};

static const struct cli_command commands[] = {
    {"get", "KEY", "print the value of KEY (exit code 1 if it does not exist)",
     cmd_get},
    {"put", "KEY VALUE|-",
     "set KEY to VALUE; '-' reads the value from standard input", cmd_put},
    {"del", "KEY", "delete KEY and print how many keys were deleted (0 or 1)",
     cmd_del},
    {"range",
     "START [END] [--prefix] [--limit N] [--keys-only] [--count-only] "
     "[--reverse]",
     "list keys in [START, END) in key order (to the end of the key space "
     "without END; every key starting with START with --prefix)",
     cmd_range},
    {"txn", "[CMP...] [then OP...] [else OP...] | -i",
     "an atomic transaction: if every CMP holds run the 'then' OPs, else the "
     "'else' OPs. CMP: value|version|create|mod KEY =|!=|<|> ARG, or exists "
     "KEY =|!= 0|1. OP: put KEY VALUE, del KEY, delrange START END, get KEY. "
     "With -i, read compares, success OPs and failure OPs from standard input "
     "(one per line, sections separated by blank lines)",
     cmd_txn},
    {"member",
     "list | add ID [--learner] [--addr HOST:PORT[:PEER_PORT]] | remove ID | "
     "promote ID",
     "show or change the cluster's membership (one change at a time)",
     cmd_member},
    {"leader", "transfer ID", "move leadership to member ID", cmd_leader},
    {"status", "[--cluster]",
     "a row per endpoint (every member with --cluster): id, role, term, "
     "commit, applied, lag, keys, revision, version",
     cmd_status},
    {"snapshot",
     "save FILE | restore FILE --data DIR --id N --member "
     "ID=HOST:CLIENT_PORT[:PEER_PORT]... [--voters IDS] [--config FILE]",
     "save: download a consistent copy of the store of the first endpoint "
     "that answers into FILE (verified; linearizable unless --consistency "
     "s). restore: create the data directory DIR from which ballotd "
     "(started with the same settings, without --bootstrap) runs node N of "
     "a new cluster whose state is FILE; every member is restored from the "
     "same FILE with the same members",
     cmd_snapshot},
    {"bench",
     "put|get|mixed|txn [--clients N] [--conns M] [--total N | --duration S] "
     "[--rate R] [--value-size B] [--key-space K] [--key-dist "
     "uniform|sequential|zipfian] [--ratio R] [--key-prefix P] "
     "[--target-leader]",
     "a load generator: prints throughput and latency percentiles", cmd_bench},
    {"shell", "", "an interactive prompt with history and line editing",
     cmd_shell},
    {"help", "[COMMAND]", "show the commands, or the usage of one", cmd_help},
};

#define N_COMMANDS (sizeof(commands) / sizeof(commands[0]))

static const struct cli_command *find_command(const char *name)
{
    for (size_t i = 0; i < N_COMMANDS; i++) {
        if (strcmp(commands[i].name, name) == 0) {
            return &commands[i];
        }
    }
    return NULL;
}

static const char global_flags[] =
    "Global flags:\n"
    "  --endpoints H:P,H:P,...  nodes to try, in order (default "
    "127.0.0.1:7379)\n"
    "  --timeout MS             connect and command timeout (default 5000)\n"
    "  --json                   print results as JSON\n"
    "  --consistency l|s        linearizable (default) or stale reads\n";

int cli_usage(const char *name)
{
    const struct cli_command *c = find_command(name);
    if (c != NULL) {
        fprintf(stderr, "usage: ballot %s %s\n", c->name, c->synopsis);
    } else {
        fprintf(stderr, "ballot: unknown command '%s' (try 'ballot help')\n",
                name);
    }
    return CLI_USAGE;
}

static int cmd_help(struct cli *cli, int argc, char **argv)
{
    (void)cli;
    if (argc == 2) {
        const struct cli_command *c = find_command(argv[1]);
        if (c == NULL) {
            return cli_usage(argv[1]);
        }
        printf("usage: ballot [FLAGS] %s %s\n\n%s\n\n%s", c->name, c->synopsis,
               c->summary, global_flags);
        return CLI_OK;
    }
    if (argc > 2) {
        return cli_usage(argv[0]);
    }
    printf("usage: ballot [FLAGS] COMMAND [ARGS]\n\nCommands:\n");
    for (size_t i = 0; i < N_COMMANDS; i++) {
        printf("  %-9s %s\n", commands[i].name, commands[i].synopsis);
    }
    printf(
        "\n%s\nExit codes: 0 ok, 1 key not found (get), 2 usage, 3 cluster "
        "unavailable or timeout,\n4 rejected by the server, 5 outcome "
        "unknown, 6 a local file failed (snapshot).\n'ballot help COMMAND' "
        "for details.\n",
        global_flags);
    return CLI_OK;
}

static void set_endpoints(struct cli *cli, const char *list)
{
    char *copy = strdup(list), *save = NULL, *tok;
    for (unsigned i = 0; i < cli->n_endpoints; i++) {
        free(cli->endpoints[i]);
    }
    cli->n_endpoints = 0;
    for (tok = strtok_r(copy, ",", &save);
         tok != NULL && cli->n_endpoints < CLI_ENDPOINTS_MAX;
         tok = strtok_r(NULL, ",", &save)) {
        cli->endpoints[cli->n_endpoints++] = strdup(tok);
    }
    free(copy);
    cli_disconnect(cli);
}

/*
 * Takes the global flags out of @argv (anywhere before a "--"), leaving the
 * command and its own arguments. Returns the new argc, or -1 on a bad
 * flag.
 */
static int take_globals(struct cli *cli, int argc, char **argv)
{
    int out = 0;
    bool rest = false;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        if (rest) {
            argv[out++] = argv[i];
        } else if (strcmp(a, "--") == 0) {
            rest = true;
        } else if (strcmp(a, "--json") == 0) {
            cli->json = true;
        } else if (strcmp(a, "--endpoints") == 0 ||
                   strcmp(a, "--timeout") == 0 ||
                   strcmp(a, "--consistency") == 0) {
            const char *v = i + 1 < argc ? argv[++i] : NULL;
            uint64_t ms;
            if (v == NULL) {
                fprintf(stderr, "ballot: %s needs a value\n", a);
                return -1;
            }
            if (a[2] == 'e') {
                set_endpoints(cli, v);
                if (cli->n_endpoints == 0) {
                    fprintf(stderr, "ballot: no endpoints in '%s'\n", v);
                    return -1;
                }
            } else if (a[2] == 't') {
                if (cli_parse_u64(v, &ms) != 0 || ms == 0 || ms > 3600000) {
                    fprintf(stderr, "ballot: bad --timeout '%s'\n", v);
                    return -1;
                }
                cli->timeout_ms = (int)ms;
            } else if (strcmp(v, "l") == 0 || strcmp(v, "s") == 0) {
                cli->stale = v[0] == 's';
            } else {
                fprintf(stderr, "ballot: --consistency is l or s\n");
                return -1;
            }
        } else {
            argv[out++] = argv[i];
        }
    }
    return out;
}

static int run_command(struct cli *cli, int argc, char **argv)
{
    const struct cli_command *c;
    if (argc == 0) {
        return cmd_shell(cli, 0, argv);
    }
    c = find_command(argv[0]);
    if (c == NULL) {
        return cli_usage(argv[0]);
    }
    if (cli->interactive && c->handler == cmd_shell) {
        fprintf(stderr, "ballot: already in the shell\n");
        return CLI_USAGE;
    }
    return c->handler(cli, argc, argv);
}

/* ---------------------------------------------------------------------- */
/* The interactive shell                                                   */

static char *history_path(void)
{
    const char *home = getenv("HOME");
    char *p;
    if (home == NULL) {
        return NULL;
    }
    p = malloc(strlen(home) + 32);
    if (p != NULL) {
        sprintf(p, "%s/.ballot_history", home);
    }
    return p;
}

static int cmd_shell(struct cli *cli, int argc, char **argv)
{
    char *hist = history_path();
    char *line;
    int last = CLI_OK;
    (void)argv;
    if (argc > 1) {
        free(hist);
        return cli_usage("shell");
    }
    cli->interactive = true;
    using_history();
    stifle_history(1000);
    if (hist != NULL) {
        read_history(hist);
    }
    if (isatty(STDIN_FILENO)) {
        fprintf(stderr,
                "ballot shell: type a command ('help' lists them), "
                "'quit' to leave\n");
    }
    while ((line = readline(isatty(STDIN_FILENO) ? "ballot> " : "")) != NULL) {
        char **words;
        int n = cli_split_words(line, &words);
        bool json = cli->json, stale = cli->stale;
        int timeout = cli->timeout_ms;
        if (n < 0) {
            fprintf(stderr, "ballot: unterminated quote\n");
            free(line);
            continue;
        }
        if (n > 0) {
            add_history(line);
        }
        free(line);
        if (n > 0 &&
            (strcmp(words[0], "quit") == 0 || strcmp(words[0], "exit") == 0)) {
            cli_words_free(words, n);
            break;
        }
        if (n > 0) {
            /* Flags on a line apply to that line only (endpoints stay).
             * take_globals() compacts its array, so it gets a copy of the
             * pointers and the words are freed from the original. */
            char **view = malloc(sizeof(*view) * (size_t)n);
            int m = view != NULL ? n : -1;
            if (view != NULL) {
                memcpy(view, words, sizeof(*view) * (size_t)n);
                m = take_globals(cli, n, view);
            }
            if (m < 0) {
                last = CLI_USAGE;
            } else if (m > 0) {
                last = run_command(cli, m, view);
            }
            free(view);
            cli->json = json;
            cli->stale = stale;
            cli->timeout_ms = timeout;
            fflush(stdout);
        }
        cli_words_free(words, n);
    }
    if (hist != NULL) {
        write_history(hist);
        free(hist);
    }
    cli->interactive = false;
    return last;
}

int main(int argc, char **argv)
{
    struct cli cli;
    int rc;
    memset(&cli, 0, sizeof(cli));
    cli.timeout_ms = 5000;
    signal(SIGPIPE, SIG_IGN);
    set_endpoints(&cli, "127.0.0.1:7379");
    argc = take_globals(&cli, argc - 1, argv + 1);
    if (argc < 0) {
        rc = CLI_USAGE;
    } else {
        rc = run_command(&cli, argc, argv + 1);
    }
    cli_disconnect(&cli);
    for (unsigned i = 0; i < cli.n_endpoints; i++) {
        free(cli.endpoints[i]);
    }
    fflush(stdout);
    return rc;
}
