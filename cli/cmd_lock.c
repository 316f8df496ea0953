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
/* The exit status when the lease was lost while COMMAND ran. */
#define LOCK_LOST_EXIT 5

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
                 uint64_t timeout_ms,
                 long long *token)
{
    char tbuf[24];
    uint64_t start = cli_now_us();
    snprintf(tbuf, sizeof(tbuf), "%llu", (unsigned long long)timeout_ms);
    const char *args[6] = {"BLOCK", "ACQUIRE", name, lease, "TIMEOUT", tbuf};
    for (;;) {
        redisReply *r = NULL;
        /* The wait is the server's: give the reply as long as it takes. */
        cli->wait_ms = timeout_ms != 0 ? (int)timeout_ms + cli->timeout_ms
                                       : 24 * 3600 * 1000;
        int rc = cli_call(cli, CLI_WRITE, 6, args, NULL, &r);
        cli->wait_ms = 0;
        if (rc == CLI_OK && r->type == REDIS_REPLY_INTEGER) {
            *token = r->integer;
            freeReplyObject(r);
            return CLI_OK;
        }
        if (rc == CLI_OK && r->type == REDIS_REPLY_NIL) {
            freeReplyObject(r);
            return cli_fail(cli, CLI_UNAVAILABLE,
                            "timed out waiting for lock %s", name);
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

int cmd_lock(struct cli *cli, int argc, char **argv)
{
    uint64_t ttl = LOCK_TTL_MS_DEFAULT, timeout = LOCK_TIMEOUT_MS_DEFAULT;
    int i = 2;
    if (argc < 3) {
        return cli_usage("lock");
    }
    const char *name = argv[1];
    /* The global flags and "--" are gone already: the lock's options come
     * first, the command is the rest. */
    while (i + 1 < argc && (strcmp(argv[i], "--ttl") == 0 ||
                            strcmp(argv[i], "--timeout") == 0)) {
        uint64_t *v = strcmp(argv[i], "--ttl") == 0 ? &ttl : &timeout;
        if (cli_parse_u64(argv[i + 1], v) != 0) {
            return cli_usage("lock");
        }
        i += 2;
    }
    if (i >= argc || ttl == 0) {
        return cli_usage("lock");
    }
    char ttl_buf[24], lease[24];
    snprintf(ttl_buf, sizeof(ttl_buf), "%llu", (unsigned long long)ttl);
    const char *grant[3] = {"BLEASE", "GRANT", ttl_buf};
    redisReply *r = NULL;
    int rc = cli_call(cli, CLI_WRITE, 3, grant, NULL, &r);
    if (rc != CLI_OK || r->type != REDIS_REPLY_ARRAY || r->elements != 2) {
        return cli_fail_reply(cli, rc, r);
    }
    snprintf(lease, sizeof(lease), "%lld", r->element[0]->integer);
    freeReplyObject(r);

    fflush(NULL);
    pid_t keeper = fork();
    if (keeper < 0) {
        return cli_fail(cli, CLI_LOCAL, "fork: %s", strerror(errno));
    }
    if (keeper == 0) {
        keeper_run(cli, lease, ttl);
    }
    long long token = 0;
    int code = claim(cli, name, lease, timeout, &token);
    if (code == CLI_OK) {
        code = run_holding(argv + i, name, token, keeper);
        /* Release (the lease's end would free it too, a moment later). */
        char tbuf[24];
        snprintf(tbuf, sizeof(tbuf), "%lld", token);
        const char *rel[4] = {"BLOCK", "RELEASE", name, tbuf};
        if (cli_call(cli, CLI_WRITE, 4, rel, NULL, &r) == CLI_OK) {
            freeReplyObject(r);
        }
    }
    kill(keeper, SIGTERM);
    waitpid(keeper, NULL, 0);
    const char *revoke[3] = {"BLEASE", "REVOKE", lease};
    if (cli_call(cli, CLI_WRITE, 3, revoke, NULL, &r) == CLI_OK) {
        freeReplyObject(r);
    }
    return code;
}
