/*
 * cmd_check.c - `ballot check`: is this cluster healthy, and `ballot check
 * perf`: can this disk and network sustain it (in the spirit of `etcdctl
 * check perf`).
 *
 * Both read the nodes' metrics ports (client port + 2 unless
 * --metrics-offset says otherwise; docs/operations.md): GET /health,
 * /ready and /status of every endpoint for `check`; GET /metrics before
 * and after a short load for `check perf`, whose fsync and peer
 * round-trip figures are the difference of the nodes' own histograms over
 * the load. Nothing here links the server: the CLI speaks HTTP and reads
 * the Prometheus text.
 */
#include <errno.h>
#include <netdb.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "cli.h"

/* The metrics port is the client port plus this, unless told otherwise
 * (ballotd's default, docs/operations.md). */
#define CHECK_METRICS_OFFSET 2
/* A node whose applied index trails the highest commit index seen by more
 * than this is "far behind" (--max-behind). */
#define CHECK_BEHIND_MAX 1000
/* The most of one HTTP answer read (a /metrics scrape is ~60 KiB). */
#define CHECK_HTTP_MAX (512u * 1024u)
/* Histogram buckets read from a scrape, at most (ballot has 28). */
#define CHECK_BUCKETS_MAX 64

/* check perf's load and its thresholds (docs/operations.md, "Checking a
 * cluster"); flags change each. */
#define PERF_SECONDS 5
#define PERF_CLIENTS 32
#define PERF_CONNS 4
#define PERF_FSYNC_P99_MS 10.0    /* etcd's advice for its WAL fsync */
#define PERF_RTT_P99_MS 50.0      /* a tenth of a 500 ms election timeout */
#define PERF_WRITE_P99_MS 200.0   /* a client write under the load */
#define PERF_MIN_THROUGHPUT 200.0 /* writes per second */
#define PERF_KEY_PREFIX "__ballot_check_perf/"

/* ---- HTTP --------------------------------------------------------------- */

/* Waits for @fd to be ready for @events until @deadline_us. */
static bool wait_fd(int fd, short events, uint64_t deadline_us)
{
    struct pollfd p = {fd, events, 0};
    uint64_t now = cli_now_us();
    if (now >= deadline_us) {
        return false;
    }
    int ms = (int)((deadline_us - now) / 1000) + 1;
    return poll(&p, 1, ms) == 1;
}

/* GET @path on @host:@port within @timeout_ms. Returns the HTTP status
 * (200, 503, ...) with the body in *@body (malloc'ed, NUL-terminated), or
 * -1 with @err set. */
static int http_get(const char *host,
                    int port,
                    const char *path,
                    int timeout_ms,
                    char **body,
                    char *err,
                    size_t err_len)
{
    struct addrinfo hints, *res = NULL;
    char portstr[16], req[256];
    uint64_t deadline = cli_now_us() + (uint64_t)timeout_ms * 1000;
    int fd = -1, status = -1;
    size_t len = 0;
    char *buf = NULL;
    *body = NULL;
    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    snprintf(portstr, sizeof(portstr), "%d", port);
    int rv = getaddrinfo(host, portstr, &hints, &res);
    if (rv != 0) {
        snprintf(err, err_len, "%s: %s", host, gai_strerror(rv));
        return -1;
    }
    fd = socket(res->ai_family, SOCK_STREAM | SOCK_NONBLOCK, 0);
    if (fd < 0 || (connect(fd, res->ai_addr, res->ai_addrlen) != 0 &&
                   errno != EINPROGRESS)) {
        snprintf(err, err_len, "%s:%d: %s", host, port, strerror(errno));
        goto out;
    }
    int soerr = 0;
    socklen_t sl = sizeof(soerr);
    if (!wait_fd(fd, POLLOUT, deadline) ||
        getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) != 0 || soerr != 0) {
        snprintf(err, err_len, "%s:%d: %s", host, port,
                 soerr != 0 ? strerror(soerr) : "connect timed out");
        goto out;
    }
    int n = snprintf(req, sizeof(req), "GET %s HTTP/1.0\r\nHost: %s\r\n\r\n",
                     path, host);
    if (send(fd, req, (size_t)n, MSG_NOSIGNAL) != n) {
        snprintf(err, err_len, "%s:%d: %s", host, port, strerror(errno));
        goto out;
    }
    buf = malloc(CHECK_HTTP_MAX + 1);
    if (buf == NULL) {
        snprintf(err, err_len, "out of memory");
        goto out;
    }
    for (;;) {
        if (!wait_fd(fd, POLLIN, deadline)) {
            snprintf(err, err_len, "%s:%d: no answer within %d ms", host, port,
                     timeout_ms);
            goto out;
        }
        ssize_t got = recv(fd, buf + len, CHECK_HTTP_MAX - len, 0);
        if (got < 0 && (errno == EAGAIN || errno == EINTR)) {
            continue;
        }
        if (got <= 0 || len + (size_t)got >= CHECK_HTTP_MAX) {
            len += got > 0 ? (size_t)got : 0;
            break;
        }
        len += (size_t)got;
    }
    buf[len] = '\0';
    char *sep = strstr(buf, "\r\n\r\n");
    if (strncmp(buf, "HTTP/1.", 7) != 0 || len < 12 || sep == NULL) {
        snprintf(err, err_len, "%s:%d: not an HTTP answer", host, port);
        goto out;
    }
    status = atoi(buf + 9);
    memmove(buf, sep + 4, len - (size_t)(sep + 4 - buf) + 1);
    *body = buf;
    buf = NULL;
out:
    free(buf);
    if (fd >= 0) {
        close(fd);
    }
    freeaddrinfo(res);
    return status;
}

/* Splits "host:port" and adds @offset to the port. Returns 0 or -1. */
static int metrics_addr(const char *endpoint,
                        int offset,
                        char *host,
                        size_t host_len,
                        int *port)
{
    const char *colon = strrchr(endpoint, ':');
    if (colon == NULL || colon == endpoint ||
        (size_t)(colon - endpoint) >= host_len) {
        return -1;
    }
    snprintf(host, host_len, "%.*s", (int)(colon - endpoint), endpoint);
    *port = atoi(colon + 1) + offset;
    return *port > 0 && *port < 65536 ? 0 : -1;
}

/* ---- ballot check ---------------------------------------------------------
 */

struct node_check
{
    char endpoint[256];
    bool up;       /* /health answered */
    bool healthy;  /* /health 200 */
    bool ready;    /* /ready 200 */
    char why[320]; /* /ready's or the connection's reason */
    long long id, term, leader, commit, applied;
    char role[24];
    char problem[400]; /* "" if this node is fine */
};

static void check_one(struct cli *cli, int offset, struct node_check *n)
{
    char host[256], err[256];
    int port;
    char *body = NULL;
    n->id = n->term = n->leader = n->commit = n->applied = -1;
    snprintf(n->role, sizeof(n->role), "?");
    if (metrics_addr(n->endpoint, offset, host, sizeof(host), &port) != 0) {
        snprintf(n->problem, sizeof(n->problem), "bad endpoint");
        return;
    }
    int st = http_get(host, port, "/health", cli->timeout_ms, &body, err,
                      sizeof(err));
    free(body);
    if (st < 0) {
        snprintf(n->problem, sizeof(n->problem), "down: %s", err);
        return;
    }
    n->up = true;
    n->healthy = st == 200;
    st = http_get(host, port, "/ready", cli->timeout_ms, &body, err,
                  sizeof(err));
    n->ready = st == 200;
    if (body != NULL) {
        snprintf(n->why, sizeof(n->why), "%.*s", (int)strcspn(body, "\n"),
                 body);
    } else {
        snprintf(n->why, sizeof(n->why), "%s", err);
    }
    free(body);
    st = http_get(host, port, "/status", cli->timeout_ms, &body, err,
                  sizeof(err));
    cJSON *j = st == 200 ? cJSON_Parse(body) : NULL;
    bool have_status = j != NULL;
    free(body);
    if (j != NULL) {
        const char *keys[] = {"id", "term", "leader", "commit", "applied"};
        long long *vals[] = {&n->id, &n->term, &n->leader, &n->commit,
                             &n->applied};
        for (int k = 0; k < 5; k++) {
            cJSON *v = cJSON_GetObjectItem(j, keys[k]);
            if (cJSON_IsNumber(v)) {
                *vals[k] = (long long)v->valuedouble;
            }
        }
        cJSON *role = cJSON_GetObjectItem(j, "role");
        if (cJSON_IsString(role)) {
            snprintf(n->role, sizeof(n->role), "%s", role->valuestring);
        }
        cJSON_Delete(j);
    }
    if (!n->healthy) {
        snprintf(n->problem, sizeof(n->problem), "unhealthy: %s", n->why);
    } else if (!n->ready) {
        snprintf(n->problem, sizeof(n->problem), "%s", n->why);
    } else if (!have_status) {
        snprintf(n->problem, sizeof(n->problem), "no /status");
    }
}

static int check_cluster(struct cli *cli, int argc, char **argv)
{
    int offset = CHECK_METRICS_OFFSET;
    uint64_t max_behind = CHECK_BEHIND_MAX, v;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--metrics-offset") == 0 && i + 1 < argc &&
            cli_parse_u64(argv[i + 1], &v) == 0 && v < 65536) {
            offset = (int)v;
            i++;
        } else if (strcmp(argv[i], "--max-behind") == 0 && i + 1 < argc &&
                   cli_parse_u64(argv[i + 1], &max_behind) == 0) {
            i++;
        } else {
            return cli_usage(argv[0]);
        }
    }
    unsigned n = cli->n_endpoints;
    struct node_check *nodes = calloc(n ? n : 1, sizeof(*nodes));
    if (nodes == NULL) {
        return cli_fail(cli, CLI_UNAVAILABLE, "out of memory");
    }
    long long max_commit = -1, leader = 0, term = -1;
    bool leaders_differ = false, terms_differ = false;
    for (unsigned i = 0; i < n; i++) {
        snprintf(nodes[i].endpoint, sizeof(nodes[i].endpoint), "%s",
                 cli->endpoints[i]);
        check_one(cli, offset, &nodes[i]);
        struct node_check *c = &nodes[i];
        if (c->commit > max_commit) {
            max_commit = c->commit;
        }
        if (c->leader > 0) {
            leaders_differ |= leader != 0 && c->leader != leader;
            leader = c->leader;
        }
        if (c->term >= 0) {
            terms_differ |= term >= 0 && c->term != term;
            term = c->term;
        }
    }
    unsigned bad = 0;
    for (unsigned i = 0; i < n; i++) {
        struct node_check *c = &nodes[i];
        if (c->problem[0] == '\0' && c->applied >= 0 &&
            max_commit - c->applied > (long long)max_behind) {
            snprintf(c->problem, sizeof(c->problem),
                     "far behind: applied %lld, %lld committed", c->applied,
                     max_commit);
        }
        bad += c->problem[0] != '\0';
    }
    char cluster[256] = "";
    if (leader == 0) {
        snprintf(cluster, sizeof(cluster), "no leader");
    } else if (leaders_differ) {
        snprintf(cluster, sizeof(cluster), "members disagree on the leader");
    } else if (terms_differ) {
        snprintf(cluster, sizeof(cluster), "members disagree on the term");
    }
    bool ok = bad == 0 && cluster[0] == '\0';
    if (cli->json) {
        cJSON *o = cJSON_CreateObject();
        cJSON *arr = cJSON_AddArrayToObject(o, "nodes");
        for (unsigned i = 0; i < n; i++) {
            struct node_check *c = &nodes[i];
            cJSON *j = cJSON_CreateObject();
            cJSON_AddStringToObject(j, "endpoint", c->endpoint);
            cJSON_AddBoolToObject(j, "up", c->up);
            cJSON_AddBoolToObject(j, "healthy", c->healthy);
            cJSON_AddBoolToObject(j, "ready", c->ready);
            cJSON_AddNumberToObject(j, "id", (double)c->id);
            cJSON_AddStringToObject(j, "role", c->role);
            cJSON_AddNumberToObject(j, "term", (double)c->term);
            cJSON_AddNumberToObject(j, "leader", (double)c->leader);
            cJSON_AddNumberToObject(j, "applied", (double)c->applied);
            if (c->problem[0] != '\0') {
                cJSON_AddStringToObject(j, "problem", c->problem);
            } else {
                cJSON_AddNullToObject(j, "problem");
            }
            cJSON_AddItemToArray(arr, j);
        }
        cJSON_AddBoolToObject(o, "ok", ok);
        cJSON_AddNumberToObject(o, "leader", (double)leader);
        if (cluster[0] != '\0') {
            cJSON_AddStringToObject(o, "problem", cluster);
        }
        cli_print_json(o);
    } else {
        printf("%-22s %-4s %-10s %-6s %-6s %-9s %s\n", "ENDPOINT", "ID", "ROLE",
               "TERM", "LEADER", "APPLIED", "STATE");
        for (unsigned i = 0; i < n; i++) {
            struct node_check *c = &nodes[i];
            printf("%-22s %-4lld %-10s %-6lld %-6lld %-9lld %s\n", c->endpoint,
                   c->id, c->role, c->term, c->leader, c->applied,
                   c->problem[0] != '\0' ? c->problem : "ok");
        }
        if (ok) {
            printf("cluster ok: %u of %u nodes ready, leader %lld, term %lld\n",
                   n, n, leader, term);
        } else {
            printf("cluster NOT ok: %u of %u nodes with a problem%s%s\n", bad,
                   n, cluster[0] != '\0' ? "; " : "", cluster);
        }
    }
    free(nodes);
    return ok ? CLI_OK : CLI_UNHEALTHY;
}

/* ---- ballot check perf ----------------------------------------------------
 */

/* One histogram series of a scrape: cumulative counts by bound. */
struct phisto
{
    double le[CHECK_BUCKETS_MAX];
    double cum[CHECK_BUCKETS_MAX];
    unsigned n;
};

/* Adds the "_bucket" samples of @family in the Prometheus text @text to
 * @h (every series of the family: their counts are summed by bound). */
static void phisto_read(const char *text, const char *family, struct phisto *h)
{
    char prefix[160];
    int plen = snprintf(prefix, sizeof(prefix), "%s_bucket{", family);
    for (const char *line = text; line != NULL && *line != '\0';) {
        const char *end = strchr(line, '\n');
        size_t len = end != NULL ? (size_t)(end - line) : strlen(line);
        char one[512];
        if (strncmp(line, prefix, (size_t)plen) == 0 && len < sizeof(one)) {
            memcpy(one, line, len);
            one[len] = '\0';
            const char *le = strstr(one, "le=\"");
            const char *sp = strrchr(one, ' ');
            if (le != NULL && sp != NULL) {
                double bound = strncmp(le + 4, "+Inf", 4) == 0
                                   ? 1e300
                                   : strtod(le + 4, NULL);
                double count = strtod(sp + 1, NULL);
                unsigned k = 0;
                while (k < h->n && h->le[k] != bound) {
                    k++;
                }
                if (k == h->n && k < CHECK_BUCKETS_MAX) {
                    h->le[k] = bound;
                    h->cum[k] = 0;
                    h->n++;
                }
                if (k < h->n) {
                    h->cum[k] += count;
                }
            }
        }
        line = end != NULL ? end + 1 : NULL;
    }
}

/* The @q quantile's upper bound of (@after - @before), in the family's
 * unit; -1 when nothing was observed between them. Bounds are in
 * increasing order in a scrape. */
static double phisto_quantile(const struct phisto *before,
                              const struct phisto *after,
                              double q,
                              double *count)
{
    double total = 0;
    *count = 0;
    for (unsigned k = 0; k < after->n; k++) {
        if (after->le[k] >= 1e300) {
            double b = 0;
            for (unsigned i = 0; i < before->n; i++) {
                if (before->le[i] >= 1e300) {
                    b = before->cum[i];
                }
            }
            total = after->cum[k] - b;
        }
    }
    *count = total;
    if (total <= 0) {
        return -1;
    }
    for (unsigned k = 0; k < after->n; k++) {
        double b = 0;
        for (unsigned i = 0; i < before->n; i++) {
            if (before->le[i] == after->le[k]) {
                b = before->cum[i];
            }
        }
        if (after->cum[k] - b >= q * total) {
            return after->le[k];
        }
    }
    return -1;
}

/* Scrapes every endpoint's /metrics into @out[i] (NULL if it failed). */
static void scrape_all(struct cli *cli, int offset, char **out)
{
    for (unsigned i = 0; i < cli->n_endpoints; i++) {
        char host[256], err[256];
        int port;
        out[i] = NULL;
        if (metrics_addr(cli->endpoints[i], offset, host, sizeof(host),
                         &port) != 0 ||
            http_get(host, port, "/metrics", cli->timeout_ms, &out[i], err,
                     sizeof(err)) != 200) {
            free(out[i]);
            out[i] = NULL;
        }
    }
}

/* The worst (over nodes) p99 of @family over the load, in ms; -1 if no
 * node observed any. */
static double worst_p99_ms(struct cli *cli,
                           char **before,
                           char **after,
                           const char *family,
                           double *samples)
{
    double worst = -1;
    *samples = 0;
    for (unsigned i = 0; i < cli->n_endpoints; i++) {
        struct phisto b, a;
        double count;
        if (before[i] == NULL || after[i] == NULL) {
            continue;
        }
        memset(&b, 0, sizeof(b));
        memset(&a, 0, sizeof(a));
        phisto_read(before[i], family, &b);
        phisto_read(after[i], family, &a);
        double p = phisto_quantile(&b, &a, 0.99, &count);
        *samples += count;
        if (p >= 0 && p * 1000.0 > worst) {
            worst = p * 1000.0;
        }
    }
    return worst;
}

static int parse_double(const char *s, double *out)
{
    char *end;
    *out = strtod(s, &end);
    return end != s && *end == '\0' && *out >= 0 ? 0 : -1;
}

static int check_perf(struct cli *cli, int argc, char **argv)
{
    int offset = CHECK_METRICS_OFFSET;
    uint64_t seconds = PERF_SECONDS, clients = PERF_CLIENTS, v;
    double max_fsync = PERF_FSYNC_P99_MS, max_rtt = PERF_RTT_P99_MS,
           max_p99 = PERF_WRITE_P99_MS, min_tput = PERF_MIN_THROUGHPUT;
    for (int i = 2; i < argc; i++) {
        const char *f = argv[i];
        const char *a = i + 1 < argc ? argv[i + 1] : NULL;
        int bad = a == NULL;
        if (bad) {
        } else if (strcmp(f, "--metrics-offset") == 0) {
            bad = cli_parse_u64(a, &v) != 0 || v >= 65536;
            offset = (int)v;
        } else if (strcmp(f, "--seconds") == 0) {
            bad = cli_parse_u64(a, &seconds) != 0 || seconds == 0 ||
                  seconds > 600;
        } else if (strcmp(f, "--clients") == 0) {
            bad = cli_parse_u64(a, &clients) != 0 || clients == 0 ||
                  clients > 10000;
        } else if (strcmp(f, "--max-fsync-p99-ms") == 0) {
            bad = parse_double(a, &max_fsync);
        } else if (strcmp(f, "--max-rtt-p99-ms") == 0) {
            bad = parse_double(a, &max_rtt);
        } else if (strcmp(f, "--max-p99-ms") == 0) {
            bad = parse_double(a, &max_p99);
        } else if (strcmp(f, "--min-throughput") == 0) {
            bad = parse_double(a, &min_tput);
        } else {
            bad = 1;
        }
        if (bad) {
            return cli_usage(argv[0]);
        }
        i++;
    }
    unsigned n = cli->n_endpoints;
    char **before = calloc(n ? n : 1, sizeof(char *));
    char **after = calloc(n ? n : 1, sizeof(char *));
    if (before == NULL || after == NULL) {
        free(before);
        free(after);
        return cli_fail(cli, CLI_UNAVAILABLE, "out of memory");
    }
    scrape_all(cli, offset, before);

    char secs[24], cl[24], conns[24];
    snprintf(secs, sizeof(secs), "%llu", (unsigned long long)seconds);
    snprintf(cl, sizeof(cl), "%llu", (unsigned long long)clients);
    snprintf(conns, sizeof(conns), "%llu",
             (unsigned long long)(clients < PERF_CONNS ? clients : PERF_CONNS));
    char *bench_argv[] = {
        "bench",        "put",           "--clients",   cl,
        "--conns",      conns,           "--duration",  secs,
        "--value-size", "256",           "--key-space", "10000",
        "--key-prefix", PERF_KEY_PREFIX, NULL};
    struct cli_bench_result br;
    int rc = cli_bench_run(cli, 14, bench_argv, &br);
    scrape_all(cli, offset, after);
    /* The load's keys go, in one range delete, as etcdctl's do. */
    const char *del[] = {
        "BTXN", "0", "1", "DELRANGE", PERF_KEY_PREFIX, PERF_KEY_PREFIX "\xff",
        "0"};
    redisReply *r = NULL;
    if (cli_call(cli, CLI_WRITE, 7, del, NULL, &r) == CLI_OK) {
        freeReplyObject(r);
    }
    if (rc != CLI_OK && rc != CLI_REJECTED) {
        for (unsigned i = 0; i < n; i++) {
            free(before[i]);
            free(after[i]);
        }
        free(before);
        free(after);
        return rc;
    }
    double fsync_n, rtt_n;
    double fsync = worst_p99_ms(cli, before, after,
                                "ballot_wal_fsync_duration_seconds", &fsync_n);
    double rtt = worst_p99_ms(cli, before, after,
                              "ballot_peer_round_trip_seconds", &rtt_n);
    for (unsigned i = 0; i < n; i++) {
        free(before[i]);
        free(after[i]);
    }
    free(before);
    free(after);
    const struct
    {
        const char *what;
        double value;
        double limit;
        bool at_most; /* value <= limit passes, else value >= limit */
        const char *unit;
    } checks[] = {
        {"fsync p99", fsync, max_fsync, true, "ms"},
        {"peer round trip p99", rtt, max_rtt, true, "ms"},
        {"write p99", br.p99_ms, max_p99, true, "ms"},
        {"throughput", br.throughput, min_tput, false, "writes/s"},
    };
    bool pass = br.failed == 0;
    cJSON *o = cli->json ? cJSON_CreateObject() : NULL;
    cJSON *arr = o != NULL ? cJSON_AddArrayToObject(o, "checks") : NULL;
    for (int i = 0; i < 4; i++) {
        /* A figure no node reported (-1) fails: nothing was measured. */
        bool ok = checks[i].value >= 0 &&
                  (checks[i].at_most ? checks[i].value <= checks[i].limit
                                     : checks[i].value >= checks[i].limit);
        pass &= ok;
        if (o != NULL) {
            cJSON *j = cJSON_CreateObject();
            cJSON_AddStringToObject(j, "check", checks[i].what);
            cJSON_AddNumberToObject(j, "value", checks[i].value);
            cJSON_AddNumberToObject(j, "limit", checks[i].limit);
            cJSON_AddStringToObject(j, "unit", checks[i].unit);
            cJSON_AddBoolToObject(j, "pass", ok);
            cJSON_AddItemToArray(arr, j);
        } else if (checks[i].value < 0) {
            printf("FAIL: %s: not measured (no node reported it)\n",
                   checks[i].what);
        } else {
            printf("%s: %s %.3f %s (%s %.3f)\n", ok ? "PASS" : "FAIL",
                   checks[i].what, checks[i].value, checks[i].unit,
                   checks[i].at_most ? "at most" : "at least", checks[i].limit);
        }
    }
    if (o != NULL) {
        cJSON_AddNumberToObject(o, "writes", (double)br.ok);
        cJSON_AddNumberToObject(o, "failed", (double)br.failed);
        cJSON_AddNumberToObject(o, "fsyncs", fsync_n);
        cJSON_AddNumberToObject(o, "round_trips", rtt_n);
        cJSON_AddBoolToObject(o, "pass", pass);
        cli_print_json(o);
    } else {
        printf(
            "%s: %llu writes (%llu failed) by %llu clients in %.1f s; "
            "%.0f fsyncs and %.0f round trips measured\n",
            pass ? "PASS" : "FAIL", (unsigned long long)br.ok,
            (unsigned long long)br.failed, (unsigned long long)clients,
            br.elapsed_s, fsync_n, rtt_n);
    }
    return pass ? CLI_OK : CLI_UNHEALTHY;
}

int cmd_check(struct cli *cli, int argc, char **argv)
{
    if (argc >= 2 && strcmp(argv[1], "perf") == 0) {
        return check_perf(cli, argc, argv);
    }
    return check_cluster(cli, argc, argv);
}
