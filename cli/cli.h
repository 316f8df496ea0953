/*
 * cli.h - the `ballot` command-line client: shared state and helpers.
 *
 * One process runs one command (or an interactive shell of commands). The
 * state below holds the global flags and the connection the commands
 * share; every command is a handler in the table of main.c.
 */
#ifndef BALLOT_CLI_H
#define BALLOT_CLI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cJSON.h>
#include <hiredis.h>

/* Exit codes scripts can rely on (docs/cli.md). */
enum cli_exit {
    CLI_OK = 0,
    CLI_NOT_FOUND = 1,   /* get: the key does not exist */
    CLI_USAGE = 2,       /* bad command line */
    CLI_UNAVAILABLE = 3, /* no endpoint answered in time */
    CLI_REJECTED = 4,    /* the server refused the command */
    CLI_UNKNOWN = 5,     /* a write's outcome is unknown */
    /* snapshot save/restore: a local file could not be written or read,
     * a snapshot file does not verify, or a data directory is not empty */
    CLI_LOCAL = 6,
    /* check: a node is down, not ready or far behind, the members
     * disagree, or check perf's figures miss their thresholds */
    CLI_UNHEALTHY = 7,
};

#define CLI_ENDPOINTS_MAX 16
#define CLI_REDIRECTS_MAX 5
#define CLI_ERRMSG_MAX 512

struct cli
{
    /* Global flags. */
    char *endpoints[CLI_ENDPOINTS_MAX]; /* "host:port", owned */
    unsigned n_endpoints;
    int timeout_ms;
    /* How long cli_call() waits for a reply, when a command does long
     * work on the server (snapshot save); 0 means timeout_ms. */
    int wait_ms;
    bool json;
    bool stale; /* --consistency s */
    /* --user/--password (or BALLOT_USER/BALLOT_PASSWORD, or the defaults
     * file): sent with AUTH on every new connection; owned, NULL if
     * unset. */
    char *user;
    char *password;
    /* --tls, --cacert, --cert, --key (or tls/cacert/cert/key in the
     * defaults file, or BALLOT_TLS, BALLOT_CACERT, BALLOT_CERT,
     * BALLOT_KEY): connections speak TLS (cli_tls.c); the paths are
     * owned, NULL if unset. */
    bool tls;
    char *tls_cacert;
    char *tls_cert;
    char *tls_key;
    struct ssl_ctx_st *tls_ctx; /* made on first use */
    bool interactive;
    bool want_help;    /* -h, --help anywhere before "--" */
    bool want_version; /* --version */

    /* The connection commands share; NULL until the first call. */
    redisContext *conn;
    char conn_addr[256];
    bool conn_readonly;

    /* The last error, for the caller to print. */
    char errmsg[CLI_ERRMSG_MAX];
};

/* What a call is, for routing and retries. */
enum cli_call_kind {
    CLI_READ,  /* any endpoint; safe to retry elsewhere */
    CLI_WRITE, /* the leader: follows NOTLEADER redirects */
};

/*
 * Sends one command (binary-safe: @lens may be NULL for C strings) and
 * waits for its reply, trying endpoints in order, following redirects for
 * writes and retrying errors that say nothing was applied until the
 * timeout. On success *@out is a reply (possibly an error reply the
 * server gave, other than the retried ones) the caller frees with
 * freeReplyObject(). Returns CLI_OK, or CLI_UNAVAILABLE, CLI_REJECTED or
 * CLI_UNKNOWN with cli->errmsg set.
 */
int cli_call(struct cli *cli,
             enum cli_call_kind kind,
             int argc,
             const char **argv,
             const size_t *lens,
             redisReply **out);

/* Opens a connection to one endpoint (no retries); NULL with errmsg set. */
redisContext *cli_connect_one(struct cli *cli, const char *addr);
/* One command on a given connection; NULL on I/O error or timeout. */
redisReply *cli_command_on(redisContext *c, int argc, const char **argv);
/* Drops the shared connection. */
void cli_disconnect(struct cli *cli);
/* Closes a connection from cli_connect_one() (with TLS, its relay too). */
void cli_conn_free(redisContext *c);

/* A TLS connection to @host:@port (cli_tls.c) that hiredis talks to as
 * to any socket; NULL with errmsg set. @addr names it in messages. */
redisContext *cli_tls_connect(struct cli *cli,
                              const char *addr,
                              const char *host,
                              int port,
                              struct timeval tv);
/* Closes every TLS connection still open and frees the TLS context. */
void cli_tls_close(struct cli *cli);

/* Maps an error reply to an exit code (CLI_REJECTED, CLI_UNKNOWN, ...). */
int cli_error_code(const char *err);

/* Reports an error: to stderr, and with --json as an object on stdout.
 * Returns @code. */
int cli_fail(struct cli *cli, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Reports what went wrong with a cli_call() that returned @rc: its error,
 * or (@rc CLI_OK) the error reply @r, which it frees. Returns the exit
 * code. */
int cli_fail_reply(struct cli *cli, int rc, redisReply *r);
/* Finds @name in a flat [k1, v1, k2, v2, ...] reply (a RESP2 map). */
redisReply *cli_map_get(redisReply *r, const char *name);
/* The integer value of @name in such a reply, or -1. */
long long cli_map_int(redisReply *r, const char *name);
/* Prints @obj (consumed) as one JSON document on stdout. */
void cli_print_json(cJSON *obj);
/* cJSON string from bytes that may not be NUL-terminated. */
cJSON *cli_json_bytes(const char *s, size_t len);
/* Writes bytes to stdout as they are. */
void cli_print_bytes(const char *s, size_t len);

/* Splits a line into words: whitespace separates, "double quotes" group
 * (with \", \\ and \n escapes), single quotes group literally. Returns
 * the word count, or -1 on an unterminated quote. Words are malloc'ed;
 * free with cli_words_free(). */
int cli_split_words(const char *line, char ***out);
void cli_words_free(char **words, int n);

/* Parses a non-negative decimal; returns 0 or -1. */
int cli_parse_u64(const char *s, uint64_t *out);
/* Monotonic clock in microseconds. */
uint64_t cli_now_us(void);

/* Command handlers (argv[0] is the command name). */
int cmd_get(struct cli *cli, int argc, char **argv);
int cmd_put(struct cli *cli, int argc, char **argv);
int cmd_del(struct cli *cli, int argc, char **argv);
int cmd_range(struct cli *cli, int argc, char **argv);
int cmd_txn(struct cli *cli, int argc, char **argv);
int cmd_member(struct cli *cli, int argc, char **argv);
int cmd_leader(struct cli *cli, int argc, char **argv);
int cmd_user(struct cli *cli, int argc, char **argv);
int cmd_compact(struct cli *cli, int argc, char **argv);
int cmd_status(struct cli *cli, int argc, char **argv);
int cmd_fallback(struct cli *cli, int argc, char **argv);
int cmd_snapshot(struct cli *cli, int argc, char **argv);
int cmd_watch(struct cli *cli, int argc, char **argv);
int cmd_id(struct cli *cli, int argc, char **argv);
int cmd_lease(struct cli *cli, int argc, char **argv);
int cmd_lock(struct cli *cli, int argc, char **argv);
int cmd_elect(struct cli *cli, int argc, char **argv);
int cmd_bench(struct cli *cli, int argc, char **argv);
int cmd_check(struct cli *cli, int argc, char **argv);

/* What a bench run measured (cli_bench_run()). */
struct cli_bench_result
{
    uint64_t ok, failed;
    double elapsed_s;
    double throughput; /* successful requests per second */
    double p99_ms;
};

/* Runs `bench` with @argv (as cmd_bench() takes it) without printing its
 * report; fills @out. Returns what cmd_bench() would. */
int cli_bench_run(struct cli *cli,
                  int argc,
                  char **argv,
                  struct cli_bench_result *out);

/* Prints the usage of one command to stderr and returns CLI_USAGE. */
int cli_usage(const char *name);

#endif
