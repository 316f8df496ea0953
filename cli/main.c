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
static int cmd_completion(struct cli *cli, int argc, char **argv);

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
    {"put", "KEY VALUE|- [--lease ID] [--fence LOCK TOKEN]",
     "set KEY to VALUE; '-' reads the value from standard input; --lease "
     "attaches KEY to lease ID (it goes when the lease ends); --fence "
     "applies it only while TOKEN holds lock LOCK (else exit 4, FENCED)",
     cmd_put},
    {"lock", "NAME [--ttl MS] [--timeout MS] -- COMMAND [ARGS...]",
     "run COMMAND while holding lock NAME (waiting for it in turn): the "
     "lock is tied to a lease of MS ms (default 10000) kept alive while "
     "COMMAND runs; COMMAND gets the fencing token in BALLOT_LOCK_TOKEN "
     "(and NAME in BALLOT_LOCK_NAME); exits with COMMAND's status",
     cmd_lock},
    {"elect", "NAME [VALUE [--ttl MS] [--timeout MS]] | NAME --listen",
     "with VALUE: campaign in election NAME (waiting in turn), print "
     "'TOKEN VALUE' once elected and lead until interrupted (then resign); "
     "with --listen: print the leader each time it changes (a watch); "
     "alone: print the leader (exit 1 if none)",
     cmd_elect},
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
    {"user",
     "list | get NAME | add NAME [--password-stdin] [RULE...] | grant NAME "
     "RULE... | passwd NAME | del NAME...",
     "users and their permissions (Redis's ACL rules: on, off, +@read, "
     "-@admin, +get, ~app:*, %R~pub:*, allkeys, ...); passwords are read "
     "from standard input; changes go through the log to every member",
     cmd_user},
    {"compact", "REV",
     "drop the change history below revision REV on every member (through "
     "the log; prints the compaction point)",
     cmd_compact},
    {"status", "[--cluster]",
     "a row per endpoint (every member with --cluster): id, role, term, "
     "commit, applied, lag, keys, revision, version",
     cmd_status},
    {"fallback",
     "enter --primary ID --yes [--force] | promote [ID] [--force] | exit",
     "the primary-replica fallback (docs/modes.md). enter: for a cluster "
     "that lost its quorum for good, node ID becomes the only voter and "
     "commits alone, the other members become its replicas (refused while "
     "a quorum looks reachable unless --force; prints the new epoch, the "
     "primary's last index and the highest commit index it had learned). "
     "promote: for a primary that died, replica ID (the most up-to-date one "
     "that answers if none is given) becomes the primary at a new epoch "
     "(refused for a replica behind another, or while the primary is "
     "heard, unless --force). exit: back to Raft, every replica a voter "
     "again (refused unless a majority of the members hold every "
     "committed entry)",
     cmd_fallback},
    {"snapshot",
     "save FILE | restore FILE --data DIR --id N --member "
     "ID=HOST:CLIENT_PORT[:PEER_PORT]... [--voters IDS] [--config FILE]",
     "save: download a consistent copy of the store of the first endpoint "
     "that answers into FILE (verified; linearizable unless --consistency "
     "s). restore: runs `ballotd restore`, which creates the data directory "
     "DIR from which ballotd (started with the same settings, without "
     "--bootstrap) runs node N of a new cluster whose state is FILE; every "
     "member is restored from the same FILE with the same members",
     cmd_snapshot},
    {"watch", "KEY [--prefix | --end END] [--rev N] [--count N]",
     "print the changes of KEY (a range with --end, a prefix with "
     "--prefix) as they happen, from revision N with --rev (JSON lines with "
     "--json); resumes on another endpoint if the connection is lost; "
     "--count N exits after N changes",
     cmd_watch},
    {"id", "[--count N] [--name SEQ] [--snowflake]",
     "unique IDs: the next N of the cluster-wide sequence SEQ (\"default\"), "
     "strictly increasing and never reused; with --snowflake, 64-bit IDs "
     "(time, member id, sequence) minted by the first endpoint that answers, "
     "without a round trip to the leader",
     cmd_id},
    {"lease",
     "grant TTL_MS [--id ID] | keepalive ID [--once] | revoke ID | ttl ID "
     "[--keys] | list",
     "leases: grant one (prints its id), keep it alive (every third of its "
     "TTL until interrupted, printing the remaining ms; --once: once), "
     "revoke it (deleting the keys attached to it; prints how many), show "
     "its remaining and granted TTL (and keys), list every lease. Keys "
     "attach with put KEY VALUE --lease ID",
     cmd_lease},
    {"bench",
     "put|get|mixed|txn|incr|seq|lease-grant|lease-keepalive|hset "
     "[--clients N] "
     "[--conns M] [--total N | --duration S] [--rate R] [--value-size B] "
     "[--key-space K] [--key-dist "
     "uniform|sequential|zipfian] [--ratio R] [--key-prefix P] "
     "[--target-leader] [--block N]",
     "a load generator: prints throughput and latency percentiles", cmd_bench},
    {"check",
     "[--max-behind N] [--metrics-offset N] | perf [--seconds S] "
     "[--clients N] [--max-fsync-p99-ms MS] [--max-rtt-p99-ms MS] "
     "[--max-p99-ms MS] [--min-throughput W] [--metrics-offset N]",
     "a line per endpoint from its /health, /ready and /status; exit code 7 "
     "if a node is down, not ready or far behind, there is no leader, or "
     "the members disagree on the leader or term. perf: a short write load "
     "that reports the nodes' fsync and peer round-trip p99 and the "
     "clients' throughput and p99, PASS or FAIL against the thresholds",
     cmd_check},
    {"shell", "", "an interactive prompt with history and line editing",
     cmd_shell},
    {"completion", "bash",
     "print a bash completion script for ballot (eval \"$(ballot completion "
     "bash)\")",
     cmd_completion},
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
    "Global flags (--flag VALUE or --flag=VALUE):\n"
    "  --endpoints H:P,H:P,...  nodes to try, in order (default "
    "127.0.0.1:7379)\n"
    "  --timeout MS             connect and command timeout (default 5000)\n"
    "  --json                   print results as JSON\n"
    "  --consistency l|s        linearizable (default) or stale reads\n"
    "  --user NAME              user to AUTH as (default: the default user)\n"
    "  --password PASS          AUTH with this password (prefer\n"
    "                           BALLOT_PASSWORD: the command line is public)\n"
    "  --tls                    speak TLS; the server's certificate must\n"
    "                           chain to --cacert FILE (default: the system's\n"
    "                           CAs) and name the host dialed\n"
    "  --cert FILE, --key FILE  the client certificate and key, if the\n"
    "                           server wants one (tls_auth_clients)\n"
    "  -h, --help               this help; --version: the version\n"
    "\nDefaults come from the file $BALLOT_CONFIG (else "
    "~/.config/ballot/cli.conf:\n"
    "'endpoints = ...', 'timeout = ...', 'consistency = s', 'json = true', "
    "'user = ...',\n'password = ...', 'tls = true', 'cacert = ...', "
    "'cert = ...', 'key = ...'), then\nfrom BALLOT_ENDPOINTS, "
    "BALLOT_TIMEOUT, BALLOT_USER, BALLOT_PASSWORD, BALLOT_TLS,\n"
    "BALLOT_CACERT, BALLOT_CERT and BALLOT_KEY; flags win.\n";

/* Edit distance of @a and @b (short words), for "did you mean". */
static size_t distance(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b), row[32];
    if (la >= 31 || lb >= 31) {
        return 99;
    }
    for (size_t j = 0; j <= lb; j++) {
        row[j] = j;
    }
    for (size_t i = 1; i <= la; i++) {
        size_t diag = row[0];
        row[0] = i;
        for (size_t j = 1; j <= lb; j++) {
            size_t up = row[j];
            size_t best = diag + (a[i - 1] != b[j - 1]);
            best = up + 1 < best ? up + 1 : best;
            best = row[j - 1] + 1 < best ? row[j - 1] + 1 : best;
            row[j] = best;
            diag = up;
        }
    }
    return row[lb];
}

int cli_usage(const char *name)
{
    const struct cli_command *c = find_command(name);
    if (c != NULL) {
        fprintf(stderr, "usage: ballot %s %s\n", c->name, c->synopsis);
        return CLI_USAGE;
    }
    const char *near = NULL;
    size_t best = 3; /* suggest only what is at most two edits away */
    for (size_t i = 0; i < N_COMMANDS; i++) {
        size_t d = distance(name, commands[i].name);
        if (d < best) {
            best = d;
            near = commands[i].name;
        }
    }
    if (near != NULL) {
        fprintf(stderr, "ballot: unknown command '%s'; did you mean '%s'?\n",
                name, near);
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

/* Applies global setting @name (without "--") = @v; @from names where it
 * came from in the error message. Returns 0 or -1. */
static int set_global(struct cli *cli,
                      const char *name,
                      const char *v,
                      const char *from)
{
    uint64_t ms;
    if (strcmp(name, "endpoints") == 0) {
        set_endpoints(cli, v);
        if (cli->n_endpoints == 0) {
            fprintf(stderr, "ballot: %s: no endpoints in '%s'\n", from, v);
            return -1;
        }
    } else if (strcmp(name, "timeout") == 0) {
        if (cli_parse_u64(v, &ms) != 0 || ms == 0 || ms > 3600000) {
            fprintf(stderr,
                    "ballot: %s: bad timeout '%s' (milliseconds, 1 to "
                    "3600000)\n",
                    from, v);
            return -1;
        }
        cli->timeout_ms = (int)ms;
    } else if (strcmp(name, "consistency") == 0) {
        if (strcmp(v, "l") != 0 && strcmp(v, "s") != 0) {
            fprintf(stderr, "ballot: %s: consistency is l or s\n", from);
            return -1;
        }
        cli->stale = v[0] == 's';
    } else if (strcmp(name, "user") == 0 || strcmp(name, "password") == 0) {
        char **slot = name[0] == 'u' ? &cli->user : &cli->password;
        free(*slot);
        *slot = strdup(v);
        if (*slot == NULL) {
            fprintf(stderr, "ballot: out of memory\n");
            return -1;
        }
        cli_disconnect(cli);
    } else if (strcmp(name, "cacert") == 0 || strcmp(name, "cert") == 0 ||
               strcmp(name, "key") == 0) {
        char **slot = name[0] == 'k'   ? &cli->tls_key
                      : name[2] == 'c' ? &cli->tls_cacert
                                       : &cli->tls_cert;
        free(*slot);
        *slot = strdup(v);
        if (*slot == NULL) {
            fprintf(stderr, "ballot: out of memory\n");
            return -1;
        }
        cli_disconnect(cli);
    } else if (strcmp(name, "tls") == 0) {
        cli->tls = strcmp(v, "true") == 0 || strcmp(v, "1") == 0 ||
                   strcmp(v, "yes") == 0;
        cli_disconnect(cli);
    } else if (strcmp(name, "json") == 0) {
        cli->json = strcmp(v, "true") == 0 || strcmp(v, "1") == 0 ||
                    strcmp(v, "yes") == 0;
    } else {
        fprintf(stderr, "ballot: %s: unknown setting '%s'\n", from, name);
        return -1;
    }
    return 0;
}

/* Reads the defaults file: $BALLOT_CONFIG, else ~/.config/ballot/cli.conf
 * if it exists. Lines "name = value"; '#' starts a comment. Returns 0 or
 * -1. */
static int load_defaults(struct cli *cli)
{
    char path[4096], line[1024], from[4200];
    const char *env = getenv("BALLOT_CONFIG");
    const char *home = getenv("HOME");
    if (env != NULL && env[0] != '\0') {
        snprintf(path, sizeof(path), "%s", env);
    } else if (home != NULL) {
        snprintf(path, sizeof(path), "%s/.config/ballot/cli.conf", home);
    } else {
        return 0;
    }
    FILE *f = fopen(path, "r");
    if (f == NULL) {
        if (env != NULL && env[0] != '\0') {
            fprintf(stderr, "ballot: cannot read BALLOT_CONFIG %s\n", path);
            return -1;
        }
        return 0;
    }
    int no = 0, rv = 0;
    while (rv == 0 && fgets(line, sizeof(line), f) != NULL) {
        no++;
        size_t n = strlen(line);
        if (n > 0 && line[n - 1] != '\n' && !feof(f)) {
            fprintf(stderr, "ballot: %s:%d: line too long\n", path, no);
            rv = -1;
            break;
        }
        char *hash = strchr(line, '#');
        if (hash != NULL) {
            *hash = '\0';
        }
        char *name = line + strspn(line, " \t");
        char *eq = strchr(name, '=');
        char *end = name + strlen(name);
        while (end > name && strchr(" \t\r\n", end[-1]) != NULL) {
            *--end = '\0';
        }
        if (*name == '\0') {
            continue;
        }
        if (eq == NULL) {
            fprintf(stderr, "ballot: %s:%d: expected 'name = value'\n", path,
                    no);
            rv = -1;
            break;
        }
        char *value = eq + 1;
        value += strspn(value, " \t");
        do {
            *eq-- = '\0';
        } while (eq >= name && (*eq == ' ' || *eq == '\t'));
        snprintf(from, sizeof(from), "%s:%d", path, no);
        rv = set_global(cli, name, value, from);
    }
    fclose(f);
    return rv;
}

/* Defaults from the environment, after the file and before the flags. */
static int load_env(struct cli *cli)
{
    const char *v = getenv("BALLOT_ENDPOINTS");
    if (v != NULL && v[0] != '\0' &&
        set_global(cli, "endpoints", v, "BALLOT_ENDPOINTS") != 0) {
        return -1;
    }
    v = getenv("BALLOT_TIMEOUT");
    if (v != NULL && v[0] != '\0' &&
        set_global(cli, "timeout", v, "BALLOT_TIMEOUT") != 0) {
        return -1;
    }
    v = getenv("BALLOT_USER");
    if (v != NULL && v[0] != '\0' &&
        set_global(cli, "user", v, "BALLOT_USER") != 0) {
        return -1;
    }
    v = getenv("BALLOT_PASSWORD");
    if (v != NULL && v[0] != '\0' &&
        set_global(cli, "password", v, "BALLOT_PASSWORD") != 0) {
        return -1;
    }
    static const char *const tls_env[][2] = {{"BALLOT_TLS", "tls"},
                                             {"BALLOT_CACERT", "cacert"},
                                             {"BALLOT_CERT", "cert"},
                                             {"BALLOT_KEY", "key"}};
    for (size_t i = 0; i < sizeof(tls_env) / sizeof(tls_env[0]); i++) {
        v = getenv(tls_env[i][0]);
        if (v != NULL && v[0] != '\0' &&
            set_global(cli, tls_env[i][1], v, tls_env[i][0]) != 0) {
            return -1;
        }
    }
    return 0;
}

/* Rewrites every "--name=value" before a "--" as "--name" "value", so that
 * every command takes both forms. Returns a new argv (argc in *@argc)
 * whose strings are @argv's or copies listed in @owned (freed by the
 * caller), or NULL if out of memory. */
static char **split_eq_flags(int *argc, char **argv, char ***owned)
{
    char **out = calloc((size_t)(*argc) * 2 + 1, sizeof(*out));
    *owned = calloc((size_t)(*argc) + 1, sizeof(**owned));
    int n = 0, k = 0;
    bool rest = false;
    if (out == NULL || *owned == NULL) {
        free(out);
        return NULL;
    }
    for (int i = 0; i < *argc; i++) {
        char *a = argv[i];
        char *eq = strchr(a, '=');
        if (rest || strncmp(a, "--", 2) != 0 || eq == NULL || eq == a + 2) {
            rest |= strcmp(a, "--") == 0;
            out[n++] = a;
            continue;
        }
        char *flag = strndup(a, (size_t)(eq - a));
        if (flag == NULL) {
            free(out);
            return NULL;
        }
        (*owned)[k++] = flag;
        out[n++] = flag;
        out[n++] = eq + 1;
    }
    *argc = n;
    return out;
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
        } else if (strcmp(a, "--tls") == 0) {
            cli->tls = true;
            cli_disconnect(cli);
        } else if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            cli->want_help = true;
        } else if (strcmp(a, "--version") == 0) {
            cli->want_version = true;
        } else if (strcmp(a, "--endpoints") == 0 ||
                   strcmp(a, "--timeout") == 0 ||
                   strcmp(a, "--consistency") == 0 ||
                   strcmp(a, "--user") == 0 || strcmp(a, "--password") == 0 ||
                   strcmp(a, "--cacert") == 0 || strcmp(a, "--cert") == 0 ||
                   strcmp(a, "--key") == 0) {
            const char *v = i + 1 < argc ? argv[++i] : NULL;
            if (v == NULL) {
                fprintf(stderr, "ballot: %s needs a value\n", a);
                return -1;
            }
            if (set_global(cli, a + 2, v, a) != 0) {
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

/* `ballot completion bash`: a completion script generated from the
 * command table, so it always matches the commands there are. */
static int cmd_completion(struct cli *cli, int argc, char **argv)
{
    (void)cli;
    if (argc != 2 || strcmp(argv[1], "bash") != 0) {
        return cli_usage(argv[0]);
    }
    printf(
        "# ballot bash completion: eval \"$(ballot completion bash)\"\n"
        "_ballot() {\n"
        "    local cur=${COMP_WORDS[COMP_CWORD]} i cmd=\n"
        "    for ((i = 1; i < COMP_CWORD; i++)); do\n"
        "        case ${COMP_WORDS[i]} in -*) ;; *) cmd=${COMP_WORDS[i]}; "
        "break ;; esac\n"
        "    done\n"
        "    if [ -z \"$cmd\" ]; then\n"
        "        COMPREPLY=($(compgen -W \"");
    for (size_t i = 0; i < N_COMMANDS; i++) {
        printf("%s ", commands[i].name);
    }
    printf(
        "--endpoints --timeout --json --consistency --help --version\" "
        "-- \"$cur\"))\n"
        "        return\n"
        "    fi\n"
        "    case $cmd in\n");
    for (size_t i = 0; i < N_COMMANDS; i++) {
        /* The words of the synopsis that are literal: subcommands and
         * flags (lower case), not placeholders (upper case). */
        printf("    %s) COMPREPLY=($(compgen -W \"", commands[i].name);
        const char *p = commands[i].synopsis;
        while (*p != '\0') {
            size_t skip = strspn(p, " []|.,");
            p += skip;
            size_t len = strcspn(p, " []|.,");
            bool literal = len > 0;
            for (size_t j = 0; j < len; j++) {
                char ch = p[j];
                literal &= (ch >= 'a' && ch <= 'z') || ch == '-' ||
                           (ch >= '0' && ch <= '9');
            }
            if (literal) {
                printf("%.*s ", (int)len, p);
            }
            p += len;
        }
        printf("\" -- \"$cur\")) ;;\n");
    }
    printf(
        "    esac\n"
        "}\n"
        "complete -o default -F _ballot ballot\n");
    return CLI_OK;
}

int main(int argc, char **argv)
{
    struct cli cli;
    char **owned = NULL;
    int rc;
    memset(&cli, 0, sizeof(cli));
    cli.timeout_ms = 5000;
    signal(SIGPIPE, SIG_IGN);
    set_endpoints(&cli, "127.0.0.1:7379");
    argc--;
    char **args = split_eq_flags(&argc, argv + 1, &owned);
    if (args == NULL) {
        fprintf(stderr, "ballot: out of memory\n");
        return CLI_LOCAL;
    }
    if (load_defaults(&cli) != 0 || load_env(&cli) != 0) {
        argc = -1;
    } else {
        argc = take_globals(&cli, argc, args);
    }
    if (argc < 0) {
        rc = CLI_USAGE;
    } else if (cli.want_version) {
        printf("ballot %s\n", BALLOT_VERSION);
        rc = CLI_OK;
    } else if (cli.want_help) {
        char *help[] = {"help", argc > 0 ? args[0] : NULL};
        rc = cmd_help(&cli, argc > 0 ? 2 : 1, help);
    } else {
        rc = run_command(&cli, argc, args);
    }
    for (size_t i = 0; owned != NULL && owned[i] != NULL; i++) {
        free(owned[i]);
    }
    free(owned);
    free(args);
    cli_disconnect(&cli);
    for (unsigned i = 0; i < cli.n_endpoints; i++) {
        free(cli.endpoints[i]);
    }
    cli_tls_close(&cli);
    free(cli.tls_cacert);
    free(cli.tls_cert);
    free(cli.tls_key);
    free(cli.user);
    if (cli.password != NULL) {
        memset(cli.password, 0, strlen(cli.password));
        free(cli.password);
    }
    fflush(stdout);
    return rc;
}
