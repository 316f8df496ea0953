/*
 * cmd_lock.c - `ballot lock NAME [--ttl MS] [--timeout MS] -- COMMAND...`:
 * runs COMMAND while holding lock NAME (docs/coordination.md, "Locks"),
 * like `etcdctl lock`:
 *
 *   1. grants a lease of --ttl ms (BLEASE GRANT) and keeps it alive from a
 *      child process with a connection of its own, a third of the way into
 *      each TTL, for as long as this process lives;
 *   2. claims the lock with the lease (BLOCK ACQUIRE) and waits for its
 *      turn; a wait cut off by a leader change is claimed again with the
 *      same lease, which finds its claim where it was;
 *   3. runs COMMAND with the fencing token in BALLOT_LOCK_TOKEN and the
 *      name in BALLOT_LOCK_NAME (`ballot put KEY VALUE --fence NAME
 *      $BALLOT_LOCK_TOKEN` writes only while the token holds);
 *   4. releases the lock and revokes the lease, and exits with COMMAND's
 *      status (128 + the signal if a signal ended it).
 *
 * If the lease is lost while COMMAND runs (the keep-alives failed for a
 * whole TTL), COMMAND is sent SIGTERM: it no longer holds the lock, and
 * its fenced writes are refused anyway.
 *
 * `ballot elect NAME VALUE` is the same session for an election (BELECT
 * CAMPAIGN): once elected it prints "TOKEN VALUE" and leads until
 * interrupted, then resigns. `ballot elect NAME --listen` watches the
 * election's keys and prints the leader whenever it changes.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"

/* The lease's TTL by default (ms), and how long `ballot lock` waits for
 * the lock by default (0: for as long as it takes). */
#define LOCK_TTL_MS_DEFAULT 10000u
#define LOCK_TIMEOUT_MS_DEFAULT 0u
/* The exit status when the lease was lost while COMMAND ran (or while
 * `ballot elect` led). */
#define LOCK_LOST_EXIT                                                         \
    5 /* The key prefix of elections on the wire (docs/protocol.md, "Locks and \
       * elections"): --listen watches "_lead/NAME/". */
#define ELECTION_KEY_PREFIX "_lead/"

static void nap_ms(unsigned ms)
{
    struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* The keeper: renews @lease until its parent goes, or the lease is gone
 * (then it exits 1, which its parent watches for). */
static void keeper_run(struct cli *cli, const char *lease, uint64_t ttl_ms)
{
    const char *args[3] = {"BLEASE", "KEEPALIVE", lease};
    pid_t parent = getppid();
    uint64_t deadline = cli_now_us() + ttl_ms * 1000;
    /* The parent's connection is not shared: this process opens its own. */
    cli->conn = NULL;
    while (getppid() == parent) {
        redisReply *r = NULL;
        int rc = cli_call(cli, CLI_WRITE, 3, args, NULL, &r);
        if (rc == CLI_OK && r->type == REDIS_REPLY_INTEGER) {
            deadline = cli_now_us() + (uint64_t)r->integer * 1000;
        } else if (rc == CLI_OK && r->type == REDIS_REPLY_ERROR &&
                   strstr(r->str, "no such lease") != NULL) {
            fprintf(stderr, "ballot lock: the lease ended\n");
            _exit(1);
        }
        if (r != NULL) {
            freeReplyObject(r);
        }
        if (cli_now_us() >= deadline) {
            fprintf(stderr, "ballot lock: the lease could not be renewed\n");
            _exit(1);
        }
        nap_ms((unsigned)(ttl_ms / 3 > 10 ? ttl_ms / 3 : 10));
    }
    _exit(0);
}

/* Claims the lock, retrying a wait cut off by a lost connection or a
 * leader change (the same lease finds its claim). Stores the token.
 * Returns CLI_OK, or an exit code after reporting. */
static int claim(struct cli *cli,
                 const char *name,
                 const char *lease,
                 const char *value, /* an election's; NULL for a lock */
                 uint64_t timeout_ms,
                 long long *token)
{
    char tbuf[24];
    uint64_t start = cli_now_us();
    snprintf(tbuf, sizeof(tbuf), "%llu", (unsigned long long)timeout_ms);
    const char *lock_args[6] = {"BLOCK", "ACQUIRE", name,
                                lease,   "TIMEOUT", tbuf};
    const char *elect_args[7] = {"BELECT", "CAMPAIGN", name, lease,
                                 value,    "TIMEOUT",  tbuf};
    const char **args = value != NULL ? elect_args : lock_args;
    int n = value != NULL ? 7 : 6;
    for (;;) {
        redisReply *r = NULL;
        /* The wait is the server's: give the reply as long as it takes. */
        cli->wait_ms = timeout_ms != 0 ? (int)timeout_ms + cli->timeout_ms
                                       : 24 * 3600 * 1000;
        int rc = cli_call(cli, CLI_WRITE, n, args, NULL, &r);
        cli->wait_ms = 0;
        if (rc == CLI_OK && r->type == REDIS_REPLY_INTEGER) {
            *token = r->integer;
            freeReplyObject(r);
            return CLI_OK;
        }
        if (rc == CLI_OK && r->type == REDIS_REPLY_NIL) {
            freeReplyObject(r);
            return cli_fail(cli, CLI_UNAVAILABLE, "timed out waiting for %s %s",
                            value != NULL ? "election" : "lock", name);
        }
        bool elapsed =
            timeout_ms != 0 && cli_now_us() - start >= timeout_ms * 1000;
        if ((rc != CLI_UNKNOWN && rc != CLI_UNAVAILABLE) || elapsed) {
            return cli_fail_reply(cli, rc, r);
        }
        if (r != NULL) {
            freeReplyObject(r);
        }
        cli_disconnect(cli);
    }
}

/* Runs @argv with the token in the environment; waits for it while the
 * keeper lives. Returns its exit status as a shell reports it. */
static int run_holding(char **argv,
                       const char *name,
                       long long token,
                       pid_t keeper)
{
    char tbuf[24];
    int status = 0;
    snprintf(tbuf, sizeof(tbuf), "%lld", token);
    pid_t child = fork();
    if (child < 0) {
        fprintf(stderr, "ballot lock: fork: %s\n", strerror(errno));
        return CLI_LOCAL;
    }
    if (child == 0) {
        setenv("BALLOT_LOCK_TOKEN", tbuf, 1);
        setenv("BALLOT_LOCK_NAME", name, 1);
        execvp(argv[0], argv);
        fprintf(stderr, "ballot lock: %s: %s\n", argv[0], strerror(errno));
        _exit(127);
    }
    bool lost = false;
    for (;;) {
        pid_t got = waitpid(child, &status, WNOHANG);
        if (got == child) {
            break;
        }
        if (!lost && waitpid(keeper, NULL, WNOHANG) == keeper) {
            /* The lease is gone: so is the lock. */
            lost = true;
            kill(child, SIGTERM);
        }
        nap_ms(10);
    }
    if (lost) {
        return LOCK_LOST_EXIT;
    }
    if (WIFSIGNALED(status)) {
        return 128 + WTERMSIG(status);
    }
    return WEXITSTATUS(status);
}

/* Takes --ttl MS and --timeout MS from argv[@i...]; returns the index of
 * the first other argument, or -1 on a bad value (a TTL of 0 included). */
static int take_options(int argc,
                        char **argv,
                        int i,
                        uint64_t *ttl,
                        uint64_t *timeout)
{
    while (i + 1 < argc && (strcmp(argv[i], "--ttl") == 0 ||
                            strcmp(argv[i], "--timeout") == 0)) {
        uint64_t *v = strcmp(argv[i], "--ttl") == 0 ? ttl : timeout;
        if (cli_parse_u64(argv[i + 1], v) != 0) {
            return -1;
        }
        i += 2;
    }
    return *ttl == 0 ? -1 : i;
}

/* A lease kept alive by a keeper process, for one claim. */
struct session
{
    char lease[24];
    pid_t keeper;
};

/* Grants a lease of @ttl ms and starts its keeper. Returns CLI_OK or an
 * exit code after reporting. */
static int session_start(struct cli *cli, uint64_t ttl, struct session *s)
{
    char ttl_buf[24];
    snprintf(ttl_buf, sizeof(ttl_buf), "%llu", (unsigned long long)ttl);
    const char *grant[3] = {"BLEASE", "GRANT", ttl_buf};
    redisReply *r = NULL;
    int rc = cli_call(cli, CLI_WRITE, 3, grant, NULL, &r);
    if (rc != CLI_OK || r->type != REDIS_REPLY_ARRAY || r->elements != 2) {
        return cli_fail_reply(cli, rc, r);
    }
    snprintf(s->lease, sizeof(s->lease), "%lld", r->element[0]->integer);
    freeReplyObject(r);
    fflush(NULL);
    s->keeper = fork();
    if (s->keeper < 0) {
        return cli_fail(cli, CLI_LOCAL, "fork: %s", strerror(errno));
    }
    if (s->keeper == 0) {
        keeper_run(cli, s->lease, ttl);
    }
    return CLI_OK;
}

/* Releases claim @token (0: none) of @name with @release ("BLOCK
 * RELEASE" or "BELECT RESIGN"; the lease's end would free it too, a
 * moment later), stops the keeper and revokes the lease. */
static void session_end(struct cli *cli,
                        struct session *s,
                        const char *cmd,
                        const char *sub,
                        const char *name,
                        long long token)
{
    redisReply *r = NULL;
    if (token != 0) {
        char tbuf[24];
        snprintf(tbuf, sizeof(tbuf), "%lld", token);
        const char *rel[4] = {cmd, sub, name, tbuf};
        if (cli_call(cli, CLI_WRITE, 4, rel, NULL, &r) == CLI_OK) {
            freeReplyObject(r);
        }
    }
    if (s->keeper > 0) {
        kill(s->keeper, SIGTERM);
        waitpid(s->keeper, NULL, 0);
    }
    const char *revoke[3] = {"BLEASE", "REVOKE", s->lease};
    if (cli_call(cli, CLI_WRITE, 3, revoke, NULL, &r) == CLI_OK) {
        freeReplyObject(r);
    }
}

int cmd_lock(struct cli *cli, int argc, char **argv)
{
    uint64_t ttl = LOCK_TTL_MS_DEFAULT, timeout = LOCK_TIMEOUT_MS_DEFAULT;
    struct session ses;
    int i = 2;
    if (argc < 3) {
        return cli_usage("lock");
    }
    const char *name = argv[1];
    /* The global flags and "--" are gone already: the lock's options come
     * first, the command is the rest. */
    if ((i = take_options(argc, argv, 2, &ttl, &timeout)) < 0 || i >= argc) {
        return cli_usage("lock");
    }
    int code = session_start(cli, ttl, &ses);
    if (code != CLI_OK) {
        return code;
    }
    long long token = 0;
    code = claim(cli, name, ses.lease, NULL, timeout, &token);
    if (code == CLI_OK) {
        code = run_holding(argv + i, name, token, ses.keeper);
    }
    session_end(cli, &ses, "BLOCK", "RELEASE", name, token);
    return code;
}

/* ---------------------------------------------------------------------- */
/* `ballot elect NAME [VALUE] | --listen`                                  */

static volatile sig_atomic_t elect_stop;

static void on_elect_stop(int sig)
{
    (void)sig;
    elect_stop = 1;
}

/* The leader of election @name, as BELECT LEADER reads it. */
struct leader
{
    long long token; /* 0: none */
    char *value;     /* malloc'ed, NUL-terminated; NULL if none */
    size_t len;
};

static void leader_clear(struct leader *l)
{
    free(l->value);
    memset(l, 0, sizeof(*l));
}

/* Reads the leader into @l. Returns CLI_OK or an exit code (reported). */
static int leader_read(struct cli *cli, const char *name, struct leader *l)
{
    const char *args[3] = {"BELECT", "LEADER", name};
    redisReply *r = NULL;
    leader_clear(l);
    int rc = cli_call(cli, CLI_READ, 3, args, NULL, &r);
    if (rc != CLI_OK || r->type == REDIS_REPLY_ERROR) {
        return cli_fail_reply(cli, rc, r);
    }
    if (r->type == REDIS_REPLY_ARRAY && r->elements == 3) {
        l->token = r->element[0]->integer;
        l->len = r->element[2]->len;
        l->value = malloc(l->len + 1);
        if (l->value == NULL) {
            freeReplyObject(r);
            return cli_fail(cli, CLI_LOCAL, "out of memory");
        }
        memcpy(l->value, r->element[2]->str, l->len);
        l->value[l->len] = '\0';
    }
    freeReplyObject(r);
    return CLI_OK;
}

/* Prints a leader: "TOKEN VALUE" (or "none"), one JSON object with
 * --json. */
static void leader_print(struct cli *cli,
                         const char *name,
                         const struct leader *l)
{
    if (cli->json) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "name", name);
        if (l->token != 0) {
            cJSON_AddNumberToObject(o, "token", (double)l->token);
            cJSON_AddItemToObject(o, "value", cli_json_bytes(l->value, l->len));
        } else {
            cJSON_AddNullToObject(o, "value");
        }
        cli_print_json(o);
    } else if (l->token != 0) {
        printf("%lld ", l->token);
        cli_print_bytes(l->value, l->len);
        printf("\n");
    } else {
        printf("none\n");
    }
    fflush(stdout);
}

/* Reads the leader and prints it if it is not @last (which it becomes).
 * Returns CLI_OK or an exit code. */
static int leader_update(struct cli *cli, const char *name, struct leader *last)
{
    struct leader now;
    memset(&now, 0, sizeof(now));
    int code = leader_read(cli, name, &now);
    if (code != CLI_OK) {
        return code;
    }
    bool same = now.token == last->token && now.len == last->len &&
                (now.len == 0 || memcmp(now.value, last->value, now.len) == 0);
    if (!same) {
        leader_print(cli, name, &now);
        leader_clear(last);
        *last = now;
    } else {
        leader_clear(&now);
    }
    return CLI_OK;
}

/* --listen: watches the election's keys (BWATCH of its prefix, on one
 * endpoint after another as they fail) and prints the leader each time it
 * changes, until interrupted. */
static int elect_listen(struct cli *cli, const char *name)
{
    struct leader last;
    size_t head = sizeof(ELECTION_KEY_PREFIX) - 1, n = strlen(name);
    char *prefix = malloc(head + n + 2);
    memset(&last, 0, sizeof(last));
    last.token = -1; /* prints the first reading, whatever it is */
    if (prefix == NULL) {
        return cli_fail(cli, CLI_LOCAL, "out of memory");
    }
    snprintf(prefix, head + n + 2, "%s%s/", ELECTION_KEY_PREFIX, name);
    signal(SIGINT, on_elect_stop);
    signal(SIGTERM, on_elect_stop);
    int code = CLI_OK;
    for (unsigned e = 0; !elect_stop && code == CLI_OK; e++) {
        redisContext *ctx =
            cli_connect_one(cli, cli->endpoints[e % cli->n_endpoints]);
        if (ctx == NULL) {
            nap_ms(100);
            continue;
        }
        const char *args[3] = {"BWATCH", prefix, "PREFIX"};
        size_t lens[3] = {6, head + n + 1, 6};
        redisReply *r = redisCommandArgv(ctx, 3, args, lens);
        bool ok = r != NULL && r->type == REDIS_REPLY_INTEGER;
        if (r != NULL) {
            freeReplyObject(r);
        }
        /* Every frame, changes or the progress sent about once a second,
         * is a moment to read the leader. */
        while (ok && !elect_stop && code == CLI_OK) {
            code = leader_update(cli, name, &last);
            r = NULL;
            if (redisGetReply(ctx, (void **)&r) != REDIS_OK || r == NULL) {
                break;
            }
            ok = r->type == REDIS_REPLY_ARRAY && r->elements == 4 &&
                 r->element[0]->type == REDIS_REPLY_STRING &&
                 strcmp(r->element[0]->str, "bwatch") == 0;
            freeReplyObject(r);
        }
        redisFree(ctx);
    }
    leader_clear(&last);
    free(prefix);
    return code;
}

int cmd_elect(struct cli *cli, int argc, char **argv)
{
    uint64_t ttl = LOCK_TTL_MS_DEFAULT, timeout = LOCK_TIMEOUT_MS_DEFAULT;
    if (argc < 2) {
        return cli_usage("elect");
    }
    const char *name = argv[1];
    if (argc == 3 && strcmp(argv[2], "--listen") == 0) {
        return elect_listen(cli, name);
    }
    if (argc == 2) {
        struct leader l;
        memset(&l, 0, sizeof(l));
        int code = leader_read(cli, name, &l);
        if (code == CLI_OK) {
            leader_print(cli, name, &l);
            code = l.token != 0 ? CLI_OK : CLI_NOT_FOUND;
        }
        leader_clear(&l);
        return code;
    }
    const char *value = argv[2];
    if (take_options(argc, argv, 3, &ttl, &timeout) != argc) {
        return cli_usage("elect");
    }
    struct session ses;
    int code = session_start(cli, ttl, &ses);
    if (code != CLI_OK) {
        return code;
    }
    signal(SIGINT, on_elect_stop);
    signal(SIGTERM, on_elect_stop);
    long long token = 0;
    code = claim(cli, name, ses.lease, value, timeout, &token);
    if (code == CLI_OK) {
        struct leader me = {token, (char *)value, strlen(value)};
        leader_print(cli, name, &me);
        /* Lead until told to stop, or until the lease is lost. */
        while (!elect_stop) {
            if (waitpid(ses.keeper, NULL, WNOHANG) == ses.keeper) {
                ses.keeper = 0;
                code = cli_fail(cli, LOCK_LOST_EXIT,
                                "lost the lease: no longer the leader");
                break;
            }
            nap_ms(20);
        }
    }
    session_end(cli, &ses, "BELECT", "RESIGN", name, token);
    return code;
}
