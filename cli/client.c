/*
 * client.c - endpoints, redirects and retries for the `ballot` CLI.
 *
 * A read may go to any node, so endpoints are tried in order until one
 * answers. A write must reach the leader: a follower answers
 * "NOTLEADER leader is at host:port" and the write is sent there. Errors
 * that say nothing was applied (no leader yet, BUSY, DROPPED, TRYAGAIN)
 * are retried with a short backoff until the timeout; a write whose
 * connection fails after it was sent is never retried, since it may have
 * been applied (exit code 5).
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"

uint64_t cli_now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

int cli_parse_u64(const char *s, uint64_t *out)
{
    char *end;
    unsigned long long v;
    if (s == NULL || *s < '0' || *s > '9') {
        return -1;
    }
    errno = 0;
    v = strtoull(s, &end, 10);
    if (errno != 0 || *end != '\0') {
        return -1;
    }
    *out = v;
    return 0;
}

/* Splits "host:port" (the last colon separates). Returns 0 or -1. */
static int split_addr(const char *addr, char *host, size_t host_max, int *port)
{
    const char *colon = strrchr(addr, ':');
    uint64_t p;
    size_t n;
    if (colon == NULL) {
        return -1;
    }
    n = (size_t)(colon - addr);
    if (n == 0 || n >= host_max || cli_parse_u64(colon + 1, &p) != 0 ||
        p == 0 || p > 65535) {
        return -1;
    }
    memcpy(host, addr, n);
    host[n] = '\0';
    *port = (int)p;
    return 0;
}

static struct timeval timeval_of(int ms)
{
    struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
    return tv;
}

redisContext *cli_connect_one(struct cli *cli, const char *addr)
{
    char host[256];
    int port;
    struct timeval tv = timeval_of(cli->timeout_ms);
    redisContext *c;
    if (split_addr(addr, host, sizeof(host), &port) != 0) {
        snprintf(cli->errmsg, sizeof(cli->errmsg),
                 "bad endpoint '%s' (want host:port)", addr);
        return NULL;
    }
    c = cli->tls ? cli_tls_connect(cli, addr, host, port, tv)
                 : redisConnectWithTimeout(host, port, tv);
    if (c == NULL && cli->tls) {
        return NULL;
    }
    if (c == NULL || c->err) {
        snprintf(cli->errmsg, sizeof(cli->errmsg), "%s: %s", addr,
                 c ? c->errstr : "out of memory");
        if (c != NULL) {
            redisFree(c);
        }
        return NULL;
    }
    if (redisSetTimeout(c, tv) != REDIS_OK) {
        snprintf(cli->errmsg, sizeof(cli->errmsg), "%s: cannot set timeout",
                 addr);
        cli_conn_free(c);
        return NULL;
    }
    if (cli->password != NULL) {
        /* AUTH [user] password: the server's auth gate refuses anything
         * else on this connection until it passed (docs/security.md). */
        const char *argv[3] = {"AUTH"};
        int argc = 1;
        if (cli->user != NULL) {
            argv[argc++] = cli->user;
        }
        argv[argc++] = cli->password;
        redisReply *r = redisCommandArgv(c, argc, argv, NULL);
        if (r == NULL || r->type == REDIS_REPLY_ERROR) {
            snprintf(cli->errmsg, sizeof(cli->errmsg), "%s: AUTH: %s", addr,
                     r != NULL ? r->str : c->errstr);
            if (r != NULL) {
                freeReplyObject(r);
            }
            cli_conn_free(c);
            return NULL;
        }
        freeReplyObject(r);
    }
    return c;
}

redisReply *cli_command_on(redisContext *c, int argc, const char **argv)
{
    return redisCommandArgv(c, argc, argv, NULL);
}

void cli_disconnect(struct cli *cli)
{
    if (cli->conn != NULL) {
        cli_conn_free(cli->conn);
        cli->conn = NULL;
    }
    cli->conn_addr[0] = '\0';
    cli->conn_readonly = false;
}

/* Makes the shared connection point at @addr (reusing it if it already
 * does). Returns 0 or -1 with errmsg set. */
static int use_endpoint(struct cli *cli, const char *addr)
{
    if (cli->conn != NULL && strcmp(cli->conn_addr, addr) == 0) {
        return 0;
    }
    cli_disconnect(cli);
    cli->conn = cli_connect_one(cli, addr);
    if (cli->conn == NULL) {
        return -1;
    }
    snprintf(cli->conn_addr, sizeof(cli->conn_addr), "%s", addr);
    return 0;
}

/* Switches READONLY on or off to match what this call wants. */
static int set_readonly(struct cli *cli, bool on)
{
    const char *argv[1] = {on ? "READONLY" : "READWRITE"};
    redisReply *r;
    if (cli->conn_readonly == on) {
        return 0;
    }
    r = cli_command_on(cli->conn, 1, argv);
    if (r == NULL) {
        return -1;
    }
    freeReplyObject(r);
    cli->conn_readonly = on;
    return 0;
}

/* Sends a command on the shared connection, waiting cli->wait_ms for the
 * reply if that is set (the connection's timeout is timeout_ms again
 * afterwards). */
static redisReply *command_waiting(struct cli *cli,
                                   int argc,
                                   const char **argv,
                                   const size_t *lens)
{
    redisReply *r;
    if (cli->wait_ms > 0) {
        (void)redisSetTimeout(cli->conn, timeval_of(cli->wait_ms));
    }
    r = redisCommandArgv(cli->conn, argc, argv, lens);
    if (cli->wait_ms > 0 && r != NULL) {
        (void)redisSetTimeout(cli->conn, timeval_of(cli->timeout_ms));
    }
    return r;
}

int cli_error_code(const char *err)
{
    if (strncmp(err, "UNKNOWN", 7) == 0) {
        return CLI_UNKNOWN;
    }
    if (strncmp(err, "NOTLEADER no leader", 19) == 0 ||
        strncmp(err, "TRYAGAIN", 8) == 0 || strncmp(err, "SHUTDOWN", 8) == 0) {
        return CLI_UNAVAILABLE;
    }
    return CLI_REJECTED;
}

/* What follows the last " at " of @err, or NULL. */
static const char *last_at(const char *err)
{
    const char *found = NULL;
    for (const char *p = strstr(err, " at "); p != NULL;
         p = strstr(p + 1, " at ")) {
        found = p + 4;
    }
    return found != NULL && *found != '\0' ? found : NULL;
}

/* Errors after which nothing was applied and a retry may succeed. */
static bool retryable(const char *err)
{
    return strncmp(err, "NOTLEADER no leader", 19) == 0 ||
           strncmp(err, "BUSY", 4) == 0 || strncmp(err, "DROPPED", 7) == 0 ||
           strncmp(err, "TRYAGAIN", 8) == 0 || strncmp(err, "SHUTDOWN", 8) == 0;
}

int cli_call(struct cli *cli,
             enum cli_call_kind kind,
             int argc,
             const char **argv,
             const size_t *lens,
             redisReply **out)
{
    uint64_t deadline = cli_now_us() + (uint64_t)cli->timeout_ms * 1000u;
    int backoff_ms = 20;
    int last = CLI_UNAVAILABLE;

    *out = NULL;
    cli->errmsg[0] = '\0';
    for (;;) {
        /* One round: the current connection first, then each endpoint,
         * following redirects as they come. */
        char target[256];
        unsigned next = 0;
        int redirects = 0;
        bool retry_later = false;

        if (cli->conn != NULL) {
            snprintf(target, sizeof(target), "%s", cli->conn_addr);
        } else {
            snprintf(target, sizeof(target), "%s", cli->endpoints[next++]);
        }
        for (;;) {
            redisReply *r = NULL;
            if (use_endpoint(cli, target) == 0 &&
                set_readonly(cli, kind == CLI_READ && cli->stale) == 0) {
                r = command_waiting(cli, argc, argv, lens);
                if (r == NULL) {
                    snprintf(cli->errmsg, sizeof(cli->errmsg), "%s: %s", target,
                             cli->conn->errstr[0] ? cli->conn->errstr
                                                  : "connection lost");
                    cli_disconnect(cli);
                    if (kind == CLI_WRITE) {
                        /* Sent, perhaps applied: never resend. */
                        char msg[CLI_ERRMSG_MAX];
                        snprintf(msg, sizeof(msg),
                                 "%.400s (the write may or may not have "
                                 "been applied)",
                                 cli->errmsg);
                        snprintf(cli->errmsg, sizeof(cli->errmsg), "%s", msg);
                        return CLI_UNKNOWN;
                    }
                }
            } else {
                cli_disconnect(cli);
            }
            if (r != NULL && r->type == REDIS_REPLY_ERROR) {
                /* "NOTLEADER leader is at host:port", or a replica's
                 * "NOTLEADER ... the primary, node N at host:port": the
                 * address follows the last " at ". */
                const char *at = strncmp(r->str, "NOTLEADER ", 10) == 0
                                     ? last_at(r->str)
                                     : NULL;
                if (kind == CLI_WRITE && at != NULL &&
                    redirects < CLI_REDIRECTS_MAX) {
                    snprintf(target, sizeof(target), "%s", at);
                    redirects++;
                    freeReplyObject(r);
                    continue;
                }
                if (retryable(r->str)) {
                    snprintf(cli->errmsg, sizeof(cli->errmsg), "%s: %s", target,
                             r->str);
                    last = cli_error_code(r->str);
                    retry_later = true;
                    freeReplyObject(r);
                    r = NULL;
                    if (kind == CLI_WRITE) {
                        break;
                    }
                } else {
                    *out = r;
                    return CLI_OK;
                }
            } else if (r != NULL) {
                *out = r;
                return CLI_OK;
            }
            /* This endpoint failed: the next one. */
            if (next >= cli->n_endpoints) {
                break;
            }
            snprintf(target, sizeof(target), "%s", cli->endpoints[next++]);
        }
        if (!retry_later) {
            last = CLI_UNAVAILABLE;
        }
        if (cli_now_us() + (uint64_t)backoff_ms * 1000u >= deadline) {
            if (cli->errmsg[0] == '\0') {
                snprintf(cli->errmsg, sizeof(cli->errmsg),
                         "no endpoint answered");
            }
            return last;
        }
        sleep_ms(backoff_ms);
        if (backoff_ms < 200) {
            backoff_ms *= 2;
        }
        /* Start the next round from the first endpoint. */
        cli_disconnect(cli);
    }
}

int cli_fail(struct cli *cli, int code, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    fprintf(stderr, "ballot: %s\n", msg);
    if (cli->json) {
        cJSON *o = cJSON_CreateObject();
        cJSON *e = cJSON_AddObjectToObject(o, "error");
        cJSON_AddStringToObject(e, "message", msg);
        cJSON_AddNumberToObject(e, "exit_code", code);
        cli_print_json(o);
    }
    return code;
}

int cli_fail_reply(struct cli *cli, int rc, redisReply *r)
{
    int code;
    if (rc != CLI_OK) {
        return cli_fail(cli, rc, "%s", cli->errmsg);
    }
    code = cli_error_code(r->str);
    cli_fail(cli, code, "%s", r->str);
    freeReplyObject(r);
    return code;
}

redisReply *cli_map_get(redisReply *r, const char *name)
{
    for (size_t i = 0; i + 1 < r->elements; i += 2) {
        if (r->element[i]->type == REDIS_REPLY_STRING &&
            strcmp(r->element[i]->str, name) == 0) {
            return r->element[i + 1];
        }
    }
    return NULL;
}

long long cli_map_int(redisReply *r, const char *name)
{
    redisReply *v = cli_map_get(r, name);
    return v != NULL && v->type == REDIS_REPLY_INTEGER ? v->integer : -1;
}

void cli_print_json(cJSON *obj)
{
    char *s = cJSON_PrintUnformatted(obj);
    if (s != NULL) {
        fputs(s, stdout);
        fputc('\n', stdout);
        cJSON_free(s);
    }
    cJSON_Delete(obj);
    fflush(stdout);
}

cJSON *cli_json_bytes(const char *s, size_t len)
{
    char *copy = malloc(len + 1);
    cJSON *j;
    if (copy == NULL) {
        return cJSON_CreateNull();
    }
    memcpy(copy, s, len);
    copy[len] = '\0';
    j = cJSON_CreateString(copy);
    free(copy);
    return j;
}

void cli_print_bytes(const char *s, size_t len)
{
    fwrite(s, 1, len, stdout);
}

void cli_words_free(char **words, int n)
{
    for (int i = 0; i < n; i++) {
        free(words[i]);
    }
    free(words);
}

int cli_split_words(const char *line, char ***out)
{
    char **words = NULL;
    int n = 0;
    size_t len = strlen(line);
    char *buf = malloc(len + 1);
    const char *p = line;
    if (buf == NULL) {
        return -1;
    }
    for (;;) {
        size_t w = 0;
        bool any = false;
        while (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n') {
            p++;
        }
        if (*p == '\0') {
            break;
        }
        while (*p != '\0' && *p != ' ' && *p != '\t' && *p != '\r' &&
               *p != '\n') {
            any = true;
            if (*p == '"') {
                p++;
                while (*p != '\0' && *p != '"') {
                    if (*p == '\\' && p[1] != '\0') {
                        p++;
                        buf[w++] = *p == 'n' ? '\n' : *p == 't' ? '\t' : *p;
                    } else {
                        buf[w++] = *p;
                    }
                    p++;
                }
                if (*p != '"') {
                    goto bad;
                }
                p++;
            } else if (*p == '\'') {
                p++;
                while (*p != '\0' && *p != '\'') {
                    buf[w++] = *p++;
                }
                if (*p != '\'') {
                    goto bad;
                }
                p++;
            } else {
                buf[w++] = *p++;
            }
        }
        if (any) {
            char **grown = realloc(words, sizeof(*words) * (size_t)(n + 1));
            if (grown == NULL) {
                goto bad;
            }
            words = grown;
            words[n] = malloc(w + 1);
            if (words[n] == NULL) {
                goto bad;
            }
            memcpy(words[n], buf, w);
            words[n][w] = '\0';
            n++;
        }
    }
    free(buf);
    *out = words;
    return n;
bad:
    free(buf);
    cli_words_free(words, n);
    return -1;
}
