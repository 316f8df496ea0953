/*
 * test_observability.c - what a node tells about itself, against real
 * ballotd processes: its Prometheus metrics under load and faults, the
 * Grafana dashboard's queries against them, and its log lines as text and
 * JSON.
 */
#include <check.h>
#include <cjson/cJSON.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"

static struct cluster cl;

static void teardown(void)
{
    cl_close_all(&cl);
}

/* ---- metrics --------------------------------------------------------- */

/* The sum of every sample of @family in the Prometheus text @body (the
 * name itself, or with _bucket, _sum or _count), and how many there were
 * in *@n. */
static double family_sum(const char *body, const char *family, int *n)
{
    size_t fl = strlen(family);
    double sum = 0;
    *n = 0;
    for (const char *line = body; *line != '\0';) {
        const char *end = strchr(line, '\n');
        size_t len = end != NULL ? (size_t)(end - line) : strlen(line);
        if (line[0] != '#' && strncmp(line, family, fl) == 0) {
            const char *rest = line + fl;
            if (strncmp(rest, "_bucket", 7) == 0) {
                rest += 7;
            } else if (strncmp(rest, "_sum", 4) == 0) {
                rest += 4;
            } else if (strncmp(rest, "_count", 6) == 0) {
                rest += 6;
            }
            if (*rest == ' ' || *rest == '{') {
                const char *v = line + len;
                while (v > line && v[-1] != ' ') {
                    v--;
                }
                sum += strtod(v, NULL);
                (*n)++;
            }
        }
        line = end != NULL ? end + 1 : line + len;
    }
    return sum;
}

/* Every family the metrics port exports, its type, and whether a loaded
 * cluster must see it move. The few that need not say why. */
static const struct
{
    const char *name;
    const char *type;
    const char *still; /* NULL: must move; else why it may not */
} families[] = {
    {"ballot_build_info", "gauge", "constant by design"},
    {"ballot_raft_term", "gauge", NULL},
    {"ballot_raft_is_leader", "gauge", NULL},
    {"ballot_raft_leader_id", "gauge", NULL},
    {"ballot_raft_commit_index", "gauge", NULL},
    {"ballot_raft_applied_index", "gauge", NULL},
    {"ballot_raft_last_index", "gauge", NULL},
    {"ballot_raft_first_index", "gauge", NULL},
    {"ballot_raft_snapshot_index", "gauge", NULL},
    {"ballot_raft_members", "gauge", "the configuration does not change"},
    {"ballot_fallback_mode", "gauge", "Raft mode (fallback.* move it)"},
    {"ballot_fallback_epoch", "gauge", "Raft mode (fallback.* move it)"},
    {"ballot_fallback_primary", "gauge", "Raft mode (fallback.* move it)"},
    {"ballot_fallback_ack_degraded", "gauge",
     "Raft mode (fallback.semi_sync_* moves it)"},
    {"ballot_fallback_diverged_total", "counter",
     "Raft mode (fallback.former_primary_* moves it)"},
    {"ballot_fallback_cut_entries", "gauge",
     "Raft mode (fallback.former_primary_* moves it)"},
    {"ballot_raft_elections_total", "counter", NULL},
    {"ballot_raft_leader_changes_total", "counter", NULL},
    {"ballot_kv_revision", "gauge", NULL},
    {"ballot_proposals_pending", "gauge", NULL},
    {"ballot_reads_pending", "gauge", "reads finish within a scrape"},
    {"ballot_batches_persisted_total", "counter", NULL},
    {"ballot_entries_applied_total", "counter", NULL},
    {"ballot_store_bytes", "gauge", NULL},
    {"ballot_store_free_bytes", "gauge", NULL},
    {"ballot_store_quota_bytes", "gauge", "a setting"},
    {"ballot_store_map_bytes", "gauge", "grows only when the map fills"},
    {"ballot_store_over_quota", "gauge",
     "1 only until the leader compacts the history, a tick or two; the "
     "quota refusals are counted below"},
    {"ballot_store_keys", "gauge", NULL},
    {"ballot_store_quota_used_ratio", "gauge", NULL},
    {"ballot_history_events", "gauge", NULL},
    {"ballot_history_compact_revision", "gauge",
     "history is kept (100,000 revisions)"},
    {"ballot_wal_segments", "gauge",
     "a segment holds 64 MiB; this load writes less"},
    {"ballot_wal_bytes", "gauge", NULL},
    {"ballot_loop_stall_max_ms", "gauge", NULL},
    {"ballot_loop_stalls_total", "counter", NULL},
    {"ballot_peer_rejected_hellos_total", "counter",
     "attacks only: security.* tests provoke it"},
    {"ballot_peer_auth_failures_total", "counter",
     "attacks only: security.* tests provoke it"},
    {"ballot_peer_bad_senders_total", "counter",
     "attacks only: security.* tests provoke it"},
    {"ballot_peer_bad_frames_total", "counter",
     "attacks only: security.* tests provoke it"},
    {"ballot_peer_cert_mismatches_total", "counter",
     "TLS off here: tls_cluster.* tests provoke it"},
    {"ballot_tls_handshakes_total", "counter",
     "TLS off here: tls_cluster.* tests count them"},
    {"ballot_tls_handshake_failures_total", "counter",
     "TLS off here: tls_cluster.* tests count them"},
    {"ballot_tls_reloads_total", "counter",
     "TLS off here: tls_cluster.* tests count them"},
    {"ballot_tls_reload_failures_total", "counter",
     "TLS off here: tls_cluster.* tests count them"},
    {"ballot_peer_handshake_timeouts_total", "counter",
     "attacks only: security.* tests provoke it"},
    {"ballot_raft_msgs_rejected_total", "counter",
     "attacks only: security.* tests provoke it"},
    {"ballot_raft_msgs_bad_term_total", "counter",
     "attacks only: security.* tests provoke it"},
    {"ballot_proposals_refused_total", "counter", NULL},
    {"ballot_replication_lag_entries", "gauge", NULL},
    {"ballot_replication_lag_seconds", "gauge", NULL},
    {"ballot_replication_inflight_appends", "gauge", NULL},
    {"ballot_wal_fsync_duration_seconds", "histogram", NULL},
    {"ballot_wal_batch_entries", "histogram", NULL},
    {"ballot_raft_commit_duration_seconds", "histogram", NULL},
    {"ballot_kv_apply_duration_seconds", "histogram", NULL},
    {"ballot_peer_round_trip_seconds", "histogram", NULL},
    {"ballot_snapshot_create_duration_seconds", "histogram", NULL},
    {"ballot_snapshot_transfer_duration_seconds", "histogram", NULL},
    {"ballot_snapshot_install_duration_seconds", "histogram", NULL},
    {"ballot_clients_connected", "gauge", NULL},
    {"ballot_clients_max", "gauge", "a setting"},
    {"ballot_client_connections_total", "counter", NULL},
    {"ballot_client_connections_rejected_total", "counter",
     "overload only: hostile.* tests provoke it"},
    {"ballot_client_connections_evicted_total", "counter",
     "overload only: hostile.* tests provoke it"},
    {"ballot_client_connections_timedout_total", "counter",
     "idle clients only: hostile.* tests provoke it"},
    {"ballot_client_commands_total", "counter", NULL},
    {"ballot_snapshot_exports_expired_total", "counter",
     "abandoned exports only: snapshot tests provoke it"},
    {"ballot_client_memory_bytes", "gauge", NULL},
    {"ballot_client_memory_refused_total", "counter",
     "overload only: hostile.* tests provoke it"},
    {"ballot_client_rate_limited_connection_total", "counter",
     "rate limits only: none is set here"},
    {"ballot_client_rate_limited_user_total", "counter",
     "rate limits only: none is set here"},
    {"ballot_request_duration_seconds", "histogram", NULL},
    {"ballot_open_connections", "gauge", NULL},
    {"ballot_open_descriptors", "gauge", NULL},
    {"process_open_fds", "gauge", NULL},
    {"process_max_fds", "gauge", "a limit"},
    {"ballot_loop_iterations_total", "counter", NULL},
    {"ballot_loop_slow_iterations_total", "counter", NULL},
    {"ballot_loop_busy_max_ms", "gauge", NULL},
    {"ballot_loop_busy_recent_max_ms", "gauge", NULL},
    {"ballot_loop_iteration_duration_seconds", "histogram", NULL},
};
#define N_FAMILIES (sizeof(families) / sizeof(families[0]))

/* Scrapes @scrapes[id-1][k] = node id's /metrics body (malloc'ed). */
static char *scrape(unsigned id)
{
    char *r = cl_http_get(&cl, id, "/metrics");
    ck_assert_msg(r != NULL && strncmp(r, "HTTP/1.0 200", 12) == 0,
                  "node %u: %s", id, r != NULL ? r : "(no answer)");
    char *body = strdup(cl_http_body(r));
    free(r);
    return body;
}

/* Pipelines @n commands of @argc words made by @make(i, argv) on @c and
 * reads every reply; returns how many were errors starting with @err
 * (NULL: any error). */
static void pipeline_send(struct cl_conn *c,
                          int n,
                          int argc,
                          void (*make)(int i, const char **argv, size_t *lens))
{
    const char *argv[4];
    size_t lens[4];
    for (int i = 0; i < n; i++) {
        make(i, argv, lens);
        ck_assert_int_eq(cl_sendv(c, 5000, argc, argv, lens), 0);
    }
}

static int pipeline_read(struct cl_conn *c, int n, const char *err)
{
    int errors = 0;
    for (int i = 0; i < n; i++) {
        struct cl_reply r;
        ck_assert_int_eq(cl_read_reply(c, 30000, &r), 0);
        if (r.type == CL_ERR &&
            (err == NULL || strncmp(r.str, err, strlen(err)) == 0)) {
            errors++;
        }
        cl_reply_free(&r);
    }
    return errors;
}

static int pipeline(struct cl_conn *c,
                    int n,
                    int argc,
                    void (*make)(int i, const char **argv, size_t *lens),
                    const char *err)
{
    pipeline_send(c, n, argc, make);
    return pipeline_read(c, n, err);
}

static char small_key[32];
static char kilo_value[1024];

static void make_set(int i, const char **argv, size_t *lens)
{
    snprintf(small_key, sizeof(small_key), "k%d", i);
    argv[0] = "SET";
    argv[1] = small_key;
    argv[2] = kilo_value;
    lens[0] = 3;
    lens[1] = strlen(small_key);
    lens[2] = sizeof(kilo_value);
}

static void make_incr(int i, const char **argv, size_t *lens)
{
    (void)i;
    argv[0] = "INCR";
    argv[1] = "counter";
    lens[0] = 4;
    lens[1] = 7;
}

static void make_get(int i, const char **argv, size_t *lens)
{
    snprintf(small_key, sizeof(small_key), "k%d", i);
    argv[0] = "GET";
    argv[1] = small_key;
    lens[0] = 3;
    lens[1] = strlen(small_key);
}

/* A loaded 3-node cluster, scraped before, during and after: every family
 * is there with # HELP and # TYPE, and every one that should moves: the
 * load runs each request class, bursts past the uncommitted-bytes limit
 * (busy), writes to a follower (not leader) and past a small quota; a
 * leadership transfer makes an election; a follower stopped (SIGSTOP)
 * while the log grows past a snapshot falls behind (lag), then receives
 * and installs the leader's snapshot and sees its loop stall. */
START_TEST(test_observability_metrics_of_a_loaded_cluster_are_typed_and_move)
{
    enum { SCRAPES = 4 };
    static const char *args[] = {
        "--snapshot_every", "1000", "--snapshot_trailing", "50",
        "--checkpoint_every", "500", "--max_uncommitted_bytes", "65536",
        "--quota_bytes", "8388608", "--loop_warn_ms", "1",
        /* Elections only when the test makes
         * one, also on a loaded machine. */
        "--election_ticks", "100", NULL};
    char *bodies[3][SCRAPES];
    struct cl_conn c;
    struct cl_reply r;
    memset(kilo_value, 'v', sizeof(kilo_value));
    cl_start_args(&cl, 3, args);
    unsigned leader = cl_wait_leader(&cl, 10000);
    ck_assert_uint_ne(leader, 0);
    for (unsigned id = 1; id <= 3; id++) {
        bodies[id - 1][0] = scrape(id);
    }

    /* An election: leadership moves to another node. */
    unsigned target = leader % 3 + 1;
    char tid[8];
    snprintf(tid, sizeof(tid), "%u", target);
    const char *transfer[] = {"BTRANSFER", tid};
    for (int i = 0; i < 20 && leader != target; i++) {
        ck_assert_int_eq(cl_cmd(&cl, leader, 5000, &r, 2, transfer), 0);
        cl_reply_free(&r);
        usleep(200000);
        /* The leader is the node that takes a write (INFO may still name
         * the old one for a moment). */
        ck_assert(cl_write_nth(&cl, &leader, 0));
    }
    ck_assert_uint_eq(leader, target);
    unsigned follower = leader % 3 + 1;

    /* Writes to a follower are refused as not leader. */
    ck_assert_int_eq(cl_connect(&c, cl.nodes[follower - 1].client_port, 5000),
                     0);
    const char *set[] = {"SET", "x", "y"};
    ck_assert_int_eq(cl_call(&c, 5000, &r, 3, set), 0);
    cl_reply_free(&r);
    cl_close(&c);

    /* The follower stops; the log grows past a snapshot without it, in
     * bursts that outrun the uncommitted-bytes limit. */
    ck_assert_int_eq(kill(cl.nodes[follower - 1].pid, SIGSTOP), 0);
    ck_assert_int_eq(cl_connect(&c, cl.nodes[leader - 1].client_port, 5000), 0);
    for (int round = 0; round < 60; round++) {
        pipeline(&c, 40, 3, make_set, NULL);
        pipeline(&c, 5, 2, make_incr, NULL);
        pipeline(&c, 10, 2, make_get, NULL);
    }
    /* The leader sees the stopped follower behind. */
    for (unsigned id = 1; id <= 3; id++) {
        bodies[id - 1][3] = id == follower ? strdup("") : scrape(id);
    }
    const char *multi[] = {"MULTI"}, *exec[] = {"EXEC"},
               *status[] = {"BSTATUS"};
    ck_assert_int_eq(cl_call(&c, 5000, &r, 1, multi), 0);
    cl_reply_free(&r);
    ck_assert_int_eq(cl_call(&c, 5000, &r, 2, (const char *[]){"INCR", "t"}),
                     0);
    cl_reply_free(&r);
    ck_assert_int_eq(cl_call(&c, 5000, &r, 1, exec), 0);
    cl_reply_free(&r);
    ck_assert_int_eq(cl_call(&c, 5000, &r, 1, status), 0);
    cl_reply_free(&r);
    /* Scraped with writes in flight that cannot commit (the other
     * follower is stopped too for a moment): proposals are pending, and
     * those past the uncommitted-bytes limit are refused as busy. */
    unsigned other = 6 - leader - follower;
    ck_assert_int_eq(kill(cl.nodes[other - 1].pid, SIGSTOP), 0);
    pipeline_send(&c, 100, 3, make_set);
    usleep(100000);
    for (unsigned id = 1; id <= 3; id++) {
        bodies[id - 1][1] = id != leader ? strdup("") : scrape(id);
    }
    ck_assert_int_eq(kill(cl.nodes[other - 1].pid, SIGCONT), 0);
    ck_assert_int_gt(pipeline_read(&c, 100, "BUSY"), 0);
    for (unsigned id = 1; id <= 3; id++) {
        if (id == other) {
            free(bodies[id - 1][1]);
            bodies[id - 1][1] = scrape(id);
        }
    }
    ck_assert_int_eq(kill(cl.nodes[follower - 1].pid, SIGCONT), 0);

    /* Past the quota: big values until the store refuses them. */
    static char big[60000];
    memset(big, 'b', sizeof(big));
    bool refused = false;
    for (int i = 0; i < 400 && !refused; i++) {
        char key[32];
        snprintf(key, sizeof(key), "big%d", i);
        const char *argv[] = {"SET", key, big};
        const size_t lens[] = {3, strlen(key), sizeof(big)};
        ck_assert_int_eq(cl_callv(&c, 10000, &r, 3, argv, lens), 0);
        refused = r.type == CL_ERR && strncmp(r.str, "NOSPACE", 7) == 0;
        if (r.type == CL_ERR && !refused) {
            /* Leadership moved (a loaded machine): write to the new
             * leader. */
            fprintf(stderr, "write %d refused: %s\n", i, r.str);
            cl_close(&c);
            ck_assert(cl_write_nth(&cl, &leader, 1));
            ck_assert_int_eq(
                cl_connect(&c, cl.nodes[leader - 1].client_port, 5000), 0);
        }
        cl_reply_free(&r);
    }
    cl_close(&c);
    ck_assert_msg(refused, "the quota never refused a write");
    /* The follower catches up through the snapshot. */
    uint64_t end = cl_now_ms() + 30000;
    char *fb = NULL;
    while (cl_now_ms() < end) {
        int n;
        free(fb);
        fb = scrape(follower);
        if (family_sum(fb, "ballot_snapshot_install_duration_seconds_count",
                       &n) > 0) {
            break;
        }
        usleep(200000);
    }
    free(fb);
    for (unsigned id = 1; id <= 3; id++) {
        bodies[id - 1][2] = scrape(id);
    }

    for (size_t f = 0; f < N_FAMILIES; f++) {
        const char *name = families[f].name;
        char help[160], type[160];
        snprintf(help, sizeof(help), "# HELP %s ", name);
        snprintf(type, sizeof(type), "# TYPE %s %s\n", name, families[f].type);
        bool moved = false;
        for (unsigned id = 1; id <= 3; id++) {
            const char *b = bodies[id - 1][2];
            ck_assert_msg(strstr(b, help) != NULL, "node %u: no HELP for %s",
                          id, name);
            ck_assert_msg(strstr(b, type) != NULL,
                          "node %u: %s is not typed %s", id, name,
                          families[f].type);
            double first = 0;
            bool have_first = false;
            for (int k = 0; k < SCRAPES; k++) {
                int n;
                double v = family_sum(bodies[id - 1][k], name, &n);
                if (n == 0) {
                    continue; /* not scraped then, or leader-only */
                }
                if (strcmp(families[f].type, "gauge") != 0 && v > 0) {
                    moved = true; /* counters start at 0 */
                }
                if (have_first && v != first) {
                    moved = true;
                }
                first = have_first ? first : v;
                have_first = true;
            }
        }
        ck_assert_msg(moved || families[f].still != NULL,
                      "%s never moved on a loaded cluster", name);
    }
    /* The reasons are separate series, and each happened. */
    const char *reasons[] = {"busy", "not_leader", "quota"};
    for (int i = 0; i < 3; i++) {
        char series[96];
        double total = 0;
        snprintf(series, sizeof(series),
                 "ballot_proposals_refused_total{reason=\"%s\"} ", reasons[i]);
        for (unsigned id = 1; id <= 3; id++) {
            const char *p = strstr(bodies[id - 1][2], series);
            ck_assert_msg(p != NULL, "no series %s", series);
            total += strtod(p + strlen(series), NULL);
        }
        ck_assert_msg(total > 0, "%s never counted", series);
    }
    for (unsigned id = 1; id <= 3; id++) {
        for (int k = 0; k < SCRAPES; k++) {
            free(bodies[id - 1][k]);
        }
    }
}
END_TEST

/* ---- the dashboard ----------------------------------------------------- */

/* A whole file, malloc'ed, or NULL. */
static char *read_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    char *buf = NULL;
    long n;
    if (f == NULL) {
        return NULL;
    }
    if (fseek(f, 0, SEEK_END) == 0 && (n = ftell(f)) >= 0 &&
        fseek(f, 0, SEEK_SET) == 0 && (buf = malloc((size_t)n + 1)) != NULL) {
        buf[fread(buf, 1, (size_t)n, f)] = '\0';
    }
    fclose(f);
    return buf;
}

/* Checks every metric name in the PromQL @expr against the scrape @body:
 * names start with ballot_ or process_; a histogram's series may carry
 * _bucket, _sum or _count. Returns how many names @expr holds. */
static int check_expr(const char *expr, const char *body, const char *where)
{
    int names = 0;
    for (const char *p = expr; *p != '\0';) {
        bool start =
            (p == expr || !(isalnum((unsigned char)p[-1]) || p[-1] == '_')) &&
            (strncmp(p, "ballot_", 7) == 0 || strncmp(p, "process_", 8) == 0);
        if (!start) {
            p++;
            continue;
        }
        char name[128];
        size_t n = 0;
        while ((isalnum((unsigned char)p[n]) || p[n] == '_') &&
               n < sizeof(name) - 1) {
            name[n] = p[n];
            n++;
        }
        name[n] = '\0';
        p += n;
        names++;
        char want[160];
        snprintf(want, sizeof(want), "# TYPE %s ", name);
        if (strstr(body, want) != NULL) {
            continue;
        }
        static const char *suffixes[] = {"_bucket", "_sum", "_count"};
        bool found = false;
        for (int s = 0; s < 3 && !found; s++) {
            size_t sl = strlen(suffixes[s]);
            if (n > sl && strcmp(name + n - sl, suffixes[s]) == 0) {
                snprintf(want, sizeof(want), "# TYPE %.*s histogram\n",
                         (int)(n - sl), name);
                found = strstr(body, want) != NULL;
            }
        }
        ck_assert_msg(found, "%s: %s is not a metric ballotd exports", where,
                      name);
    }
    return names;
}

/* contrib/grafana-ballot.json parses, every panel graphs at least one
 * expression, every expression (and the node picker's query) names only
 * metrics a running node exports, with their types, and docs/operations.md
 * describes every panel by its title. */
START_TEST(test_observability_dashboard_graphs_only_exported_metrics)
{
    char *json = read_file(SOURCE_DIR "/contrib/grafana-ballot.json");
    char *doc = read_file(SOURCE_DIR "/docs/operations.md");
    ck_assert_ptr_nonnull(json);
    ck_assert_ptr_nonnull(doc);
    cJSON *d = cJSON_Parse(json);
    ck_assert_msg(d != NULL, "the dashboard is not JSON");
    cl_start(&cl, 1);
    ck_assert_uint_ne(cl_wait_leader(&cl, 10000), 0);
    char *body = scrape(1);

    int graphs = 0;
    cJSON *panel;
    cJSON_ArrayForEach(panel, cJSON_GetObjectItem(d, "panels"))
    {
        const char *title = cJSON_GetObjectItem(panel, "title")->valuestring;
        if (strcmp(cJSON_GetObjectItem(panel, "type")->valuestring, "row") ==
            0) {
            continue;
        }
        char described[160];
        snprintf(described, sizeof(described), "**%s**", title);
        ck_assert_msg(strstr(doc, described) != NULL,
                      "docs/operations.md does not describe panel %s", title);
        cJSON *targets = cJSON_GetObjectItem(panel, "targets");
        ck_assert_msg(cJSON_GetArraySize(targets) > 0, "%s graphs nothing",
                      title);
        cJSON *t;
        cJSON_ArrayForEach(t, targets)
        {
            const char *expr = cJSON_GetObjectItem(t, "expr")->valuestring;
            ck_assert_msg(check_expr(expr, body, title) > 0,
                          "%s: '%s' names no metric", title, expr);
        }
        graphs++;
    }
    ck_assert_int_ge(graphs, 20);
    cJSON *var;
    cJSON_ArrayForEach(
        var, cJSON_GetObjectItem(cJSON_GetObjectItem(d, "templating"), "list"))
    {
        cJSON *q = cJSON_GetObjectItem(var, "query");
        if (cJSON_IsString(q) && strstr(q->valuestring, "(") != NULL) {
            ck_assert_int_gt(check_expr(q->valuestring, body, "a variable"), 0);
        }
    }
    cJSON_Delete(d);
    free(body);
    free(json);
    free(doc);
}
END_TEST

/* ---- log lines --------------------------------------------------------- */

/* Node @id's log, malloc'ed. */
static char *node_log(unsigned id)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/node%u.log", cl.root, id);
    char *log = read_file(path);
    ck_assert_msg(log != NULL, "no log at %s", path);
    return log;
}

static int count_lines(const char *s)
{
    int n = 0;
    for (; *s != '\0'; s++) {
        n += *s == '\n';
    }
    return n;
}

/* Checks that every line of node @id's @log is one event in @format,
 * with a level and the node's id; returns the lines. */
static int check_log_format(const char *log, unsigned id, bool json)
{
    int lines = 0;
    for (const char *line = log; *line != '\0';) {
        const char *end = strchr(line, '\n');
        ck_assert_msg(end != NULL, "node %u: a line without its end", id);
        char *one = strndup(line, (size_t)(end - line));
        if (json) {
            cJSON *j = cJSON_Parse(one);
            ck_assert_msg(j != NULL, "node %u: not JSON: %s", id, one);
            const char *level =
                cJSON_GetStringValue(cJSON_GetObjectItem(j, "level"));
            ck_assert_msg(
                cJSON_GetStringValue(cJSON_GetObjectItem(j, "ts")) != NULL &&
                    level != NULL &&
                    strstr("debug info warn error", level) != NULL &&
                    cJSON_GetNumberValue(cJSON_GetObjectItem(j, "node")) ==
                        (double)id &&
                    cJSON_GetStringValue(cJSON_GetObjectItem(j, "msg")) != NULL,
                "node %u: %s", id, one);
            cJSON_Delete(j);
        } else {
            char want[64];
            snprintf(want, sizeof(want), " node=%u msg=\"", id);
            size_t len = strlen(one);
            ck_assert_msg(strncmp(one, "ts=", 3) == 0 &&
                              (strstr(one, " level=info ") != NULL ||
                               strstr(one, " level=warn ") != NULL ||
                               strstr(one, " level=error ") != NULL ||
                               strstr(one, " level=debug ") != NULL) &&
                              strstr(one, want) != NULL && len > 0 &&
                              one[len - 1] == '"',
                          "node %u: %s", id, one);
        }
        free(one);
        lines++;
        line = end + 1;
    }
    return lines;
}

/* The lines docs/operations.md lists, greppable in @format on a cluster
 * that bootstrapped, elected, served load and saw a slow loop turn; every
 * line names its node from the very first; thousands of requests add no
 * line per request at the default level. */
static void check_logs(const char *format)
{
    bool json = strcmp(format, "json") == 0;
    static const char *args[] = {"--log_format", NULL, "--loop_warn_ms", "1",
                                 NULL};
    args[1] = format;
    cl_start_args(&cl, 3, args);
    unsigned leader = cl_wait_leader(&cl, 10000);
    ck_assert_uint_ne(leader, 0);
    int before = 0;
    for (unsigned id = 1; id <= 3; id++) {
        char *log = node_log(id);
        before += count_lines(log);
        free(log);
    }
    struct cl_conn c;
    ck_assert_int_eq(cl_connect(&c, cl.nodes[leader - 1].client_port, 5000), 0);
    uint64_t t0 = cl_now_ms();
    for (int round = 0; round < 20; round++) {
        pipeline(&c, 100, 3, make_set, NULL);
        pipeline(&c, 100, 2, make_get, NULL);
    }
    uint64_t seconds = (cl_now_ms() - t0) / 1000 + 1;
    cl_close(&c);
    int after = 0;
    bool seen[6] = {false};
    static const char *events[6] = {"bootstrapped a new cluster of 3 voters",
                                    "serving clients on ",
                                    "now leader in term ",
                                    "now follower in term ",
                                    " running (library ",
                                    "the event loop was busy for "};
    for (unsigned id = 1; id <= 3; id++) {
        char *log = node_log(id);
        after += check_log_format(log, id, json);
        for (int e = 0; e < 6; e++) {
            /* As an operator would grep it: the message's text, and the
             * field it starts in. */
            char field[128];
            snprintf(field, sizeof(field), json ? "\"msg\":\"%s" : "msg=\"%s",
                     events[e]);
            seen[e] |= strstr(log, e == 4 ? events[e] : field) != NULL;
        }
        free(log);
    }
    for (int e = 0; e < 6; e++) {
        ck_assert_msg(seen[e], "%s: no line '%s'", format, events[e]);
    }
    /* 4,000 requests; the slow-turn line comes at most once a second per
     * node. */
    ck_assert_msg(after - before <= (int)(3 * seconds) + 10,
                  "%s: %d lines for 4000 requests in %llu s", format,
                  after - before, (unsigned long long)seconds);
}

START_TEST(test_observability_log_lines_are_greppable_as_text)
{
    check_logs("text");
}
END_TEST

START_TEST(test_observability_log_lines_are_greppable_as_json)
{
    check_logs("json");
}
END_TEST

int main(int argc, char **argv)
{
    const struct cl_named_test tests[] = {
        {"metrics_of_a_loaded_cluster_are_typed_and_move",
         test_observability_metrics_of_a_loaded_cluster_are_typed_and_move},
        {"dashboard_graphs_only_exported_metrics",
         test_observability_dashboard_graphs_only_exported_metrics},
        {"log_lines_are_greppable_as_text",
         test_observability_log_lines_are_greppable_as_text},
        {"log_lines_are_greppable_as_json",
         test_observability_log_lines_are_greppable_as_json},
    };
    return cl_run_tests("observability", tests,
                        sizeof(tests) / sizeof(tests[0]), 120, teardown, argc,
                        argv);
}
