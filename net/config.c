/*
 * config.c - see config.h. The file format is INI (parsed by inih):
 *
 *   [node]
 *   id = 1
 *   data = /var/lib/ballot/1
 *   bootstrap = true
 *   [cluster]
 *   member = 1=127.0.0.1:7379:7380
 *   member = 2=127.0.0.2:7379:7380
 *   member = 3=127.0.0.3:7379:7380
 *   [raft]
 *   tick_ms = 10
 *   election_ticks = 30
 *   heartbeat_ticks = 3
 *   [limits]
 *   max_clients = 10000
 *   ...
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <ini.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "auth.h"
#include "passwd.h"

#include "looplag.h"
#include "server.h"

void config_default(struct ballotd_config *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    bnode_options_default(&cfg->node);
    snprintf(cfg->data_dir, sizeof(cfg->data_dir), "ballot-data");
    cfg->client_port = 7379;
    cfg->metrics_port = -1;
    cfg->max_clients = 10000;
    cfg->max_request_bytes = 64u << 20;
    cfg->max_output_bytes = 64u << 20;
    cfg->max_pipeline = 1024;
    cfg->serve_clients = true;
    /* ballotd is a process of its own: it can fork the check. */
    cfg->node.verify_at_start = true;
    cfg->log_level = BNODE_LOG_INFO;
    snprintf(cfg->log_format, sizeof(cfg->log_format), "text");
    cfg->idle_timeout_ms = SERVER_IDLE_TIMEOUT_MS_DEFAULT;
    cfg->request_timeout_ms = SERVER_REQUEST_TIMEOUT_MS_DEFAULT;
    cfg->export_idle_ms = SERVER_EXPORT_IDLE_MS_DEFAULT;
    cfg->loop_warn_ms = LOOPLAG_WARN_MS_DEFAULT;
    cfg->max_client_memory = SERVER_MEMORY_MAX_DEFAULT;
    cfg->tls_auth_clients = true;
}

static int parse_u64(const char *s, uint64_t max, uint64_t *out)
{
    char *end;
    if (s == NULL || *s == '\0' || *s == '-') {
        return -1;
    }
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno != 0 || *end != '\0' || v > max) {
        return -1;
    }
    *out = v;
    return 0;
}

static int parse_bool(const char *s, bool *out)
{
    if (s == NULL) {
        return -1;
    }
    if (strcmp(s, "true") == 0 || strcmp(s, "yes") == 0 ||
        strcmp(s, "1") == 0 || strcmp(s, "on") == 0) {
        *out = true;
        return 0;
    }
    if (strcmp(s, "false") == 0 || strcmp(s, "no") == 0 ||
        strcmp(s, "0") == 0 || strcmp(s, "off") == 0) {
        *out = false;
        return 0;
    }
    return -1;
}

int config_parse_member(const char *text, struct bnode_member *m)
{
    char buf[256];
    uint64_t id;
    if (strlen(text) >= sizeof(buf)) {
        return -1;
    }
    snprintf(buf, sizeof(buf), "%s", text);
    char *eq = strchr(buf, '=');
    if (eq == NULL) {
        return -1;
    }
    *eq = '\0';
    if (parse_u64(buf, UINT64_MAX, &id) != 0 || id == 0) {
        return -1;
    }
    memset(m, 0, sizeof(*m));
    m->id = id;
    return bnode_member_parse_addr(eq + 1, strlen(eq + 1), m);
}

static int add_member(struct ballotd_config *cfg,
                      const char *text,
                      char *why,
                      size_t why_len)
{
    struct bnode_member m;
    int rc = config_parse_member(text, &m);
    /* A host name would be looked up with a call that blocks the node's
     * event loop, at start and at every reconnection, for as long as the
     * name service takes. */
    if (rc == -2) {
        snprintf(why, why_len,
                 "'%s' is a host name: give an address (numeric IPv4)", m.host);
        return -1;
    }
    if (rc != 0) {
        snprintf(why, why_len,
                 "give ID=ADDRESS:CLIENT_PORT[:PEER_PORT] (ID above 0, ports "
                 "1 to 65535)");
        return -1;
    }
    for (unsigned i = 0; i < cfg->node.n_members; i++) {
        if (cfg->node.members[i].id == m.id) {
            cfg->node.members[i] = m; /* a later line overrides */
            return 0;
        }
    }
    if (cfg->node.n_members == RAFT_CONF_MAX) {
        snprintf(why, why_len, "at most %u members", (unsigned)RAFT_CONF_MAX);
        return -1;
    }
    cfg->node.members[cfg->node.n_members++] = m;
    return 0;
}

/* "1,2,3": the initial voters when bootstrapping. */
static int parse_voters(struct ballotd_config *cfg, const char *v)
{
    char buf[512];
    uint64_t id;
    if (strlen(v) >= sizeof(buf)) {
        return -1;
    }
    snprintf(buf, sizeof(buf), "%s", v);
    cfg->node.n_voters = 0;
    for (char *save = NULL, *t = strtok_r(buf, ",", &save); t != NULL;
         t = strtok_r(NULL, ",", &save)) {
        if (parse_u64(t, UINT64_MAX, &id) != 0 || id == 0 ||
            cfg->node.n_voters == RAFT_CONF_MAX) {
            return -1;
        }
        cfg->node.voters[cfg->node.n_voters++] = id;
    }
    return cfg->node.n_voters > 0 ? 0 : -1;
}

/* History retention: "off" (or "0"), or a comma-separated list of at most
 * one revision count ("100000": keep that many revisions) and one age with
 * a unit ("30m": keep what is younger; ms, s, m, h or d). Each rule
 * compacts on its own: "100000,1h" keeps at most 100,000 revisions and
 * nothing older than an hour. */
static int parse_retention(struct ballotd_config *cfg, const char *v)
{
    static const char *const unit_names[] = {"ms", "s", "m", "h", "d"};
    static const uint64_t unit_ms[] = {1, 1000, 60000, 3600000ull, 86400000ull};
    char buf[128];
    uint64_t revs = 0, ms = 0;
    if (strcmp(v, "off") == 0 || strcmp(v, "0") == 0) {
        cfg->node.history_keep_revisions = 0;
        cfg->node.history_keep_ms = 0;
        return 0;
    }
    if (strlen(v) >= sizeof(buf)) {
        return -1;
    }
    snprintf(buf, sizeof(buf), "%s", v);
    for (char *save = NULL, *t = strtok_r(buf, ",", &save); t != NULL;
         t = strtok_r(NULL, ",", &save)) {
        char *end;
        if (*t < '0' || *t > '9') {
            return -1;
        }
        errno = 0;
        unsigned long long n = strtoull(t, &end, 10);
        if (errno != 0 || n == 0) {
            return -1;
        }
        if (*end == '\0') {
            if (revs != 0) {
                return -1;
            }
            revs = n;
            continue;
        }
        size_t i = 0;
        size_t n_units = sizeof(unit_ms) / sizeof(unit_ms[0]);
        while (i < n_units && strcmp(end, unit_names[i]) != 0) {
            i++;
        }
        if (i == n_units || ms != 0 || n > UINT64_MAX / unit_ms[i]) {
            return -1;
        }
        ms = n * unit_ms[i];
    }
    if (revs == 0 && ms == 0) {
        return -1;
    }
    cfg->node.history_keep_revisions = revs;
    cfg->node.history_keep_ms = ms;
    return 0;
}

/* Applies one setting by name. Returns 0, -1 (bad value, with what a
 * valid one is in @why when there is more to say than "invalid value") or
 * -2 (unknown name). */
static int set_one(struct ballotd_config *cfg,
                   const char *name,
                   const char *v,
                   char *why,
                   size_t why_len)
{
    uint64_t n;
    why[0] = '\0';
    if (strcmp(name, "id") == 0) {
        return parse_u64(v, UINT64_MAX, &cfg->node.id) == 0 && cfg->node.id
                   ? 0
                   : -1;
    }
    if (strcmp(name, "data") == 0) {
        if (strlen(v) == 0 || strlen(v) >= sizeof(cfg->data_dir)) {
            return -1;
        }
        snprintf(cfg->data_dir, sizeof(cfg->data_dir), "%s", v);
        return 0;
    }
    if (strcmp(name, "bootstrap") == 0) {
        return parse_bool(v, &cfg->node.bootstrap);
    }
    if (strcmp(name, "member") == 0) {
        return add_member(cfg, v, why, why_len);
    }
    if (strcmp(name, "voters") == 0) {
        return parse_voters(cfg, v);
    }
    if (strcmp(name, "cluster_id") == 0) {
        return parse_u64(v, UINT64_MAX, &cfg->node.cluster_id);
    }
    if (strcmp(name, "cluster_secret_file") == 0) {
        if (strlen(v) == 0 || strlen(v) >= sizeof(cfg->secret_file)) {
            return -1;
        }
        snprintf(cfg->secret_file, sizeof(cfg->secret_file), "%s", v);
        return 0;
    }
    if (strcmp(name, "client_password_file") == 0) {
        if (strlen(v) == 0 || strlen(v) >= sizeof(cfg->client_password_file)) {
            return -1;
        }
        snprintf(cfg->client_password_file, sizeof(cfg->client_password_file),
                 "%s", v);
        return 0;
    }
    if (strcmp(name, "tls_cert_file") == 0 ||
        strcmp(name, "tls_key_file") == 0 || strcmp(name, "tls_ca_file") == 0) {
        char *dst = name[4] == 'c' && name[5] == 'e' ? cfg->tls_cert_file
                    : name[4] == 'k'                 ? cfg->tls_key_file
                                                     : cfg->tls_ca_file;
        if (strlen(v) == 0 || strlen(v) >= sizeof(cfg->tls_cert_file)) {
            return -1;
        }
        snprintf(dst, sizeof(cfg->tls_cert_file), "%s", v);
        return 0;
    }
    if (strcmp(name, "tls_auth_clients") == 0) {
        return parse_bool(v, &cfg->tls_auth_clients);
    }
    if (strcmp(name, "audit_log_file") == 0) {
        if (strlen(v) == 0 || strlen(v) >= sizeof(cfg->audit_log_file)) {
            return -1;
        }
        snprintf(cfg->audit_log_file, sizeof(cfg->audit_log_file), "%s", v);
        return 0;
    }
    if (strcmp(name, "default_user_rules") == 0) {
        /* Checked when the client port starts (server_start()), by the
         * same parser the replicated users use. */
        if (strlen(v) >= sizeof(cfg->default_user_rules)) {
            return -1;
        }
        snprintf(cfg->default_user_rules, sizeof(cfg->default_user_rules), "%s",
                 v);
        return 0;
    }
    if (strcmp(name, "insecure_peers") == 0) {
        return parse_bool(v, &cfg->node.insecure_peers);
    }
    if (strcmp(name, "metrics_port") == 0) {
        if (parse_u64(v, 65535, &n) != 0) {
            return -1;
        }
        cfg->metrics_port = (int)n;
        return 0;
    }
    if (strcmp(name, "verbose") == 0) {
        return parse_bool(v, &cfg->verbose);
    }
    if (strcmp(name, "log_level") == 0) {
        static const char *levels[] = {"debug", "info", "warn", "error"};
        for (int i = 0; i < 4; i++) {
            if (strcmp(v, levels[i]) == 0) {
                cfg->log_level = i;
                return 0;
            }
        }
        return -1;
    }
    if (strcmp(name, "log_format") == 0) {
        if (strcmp(v, "text") != 0 && strcmp(v, "json") != 0) {
            return -1;
        }
        snprintf(cfg->log_format, sizeof(cfg->log_format), "%s", v);
        return 0;
    }
    if (strcmp(name, "serve_clients") == 0) {
        return parse_bool(v, &cfg->serve_clients);
    }
    if (strcmp(name, "verify_at_start") == 0) {
        return parse_bool(v, &cfg->node.verify_at_start);
    }
    if (strcmp(name, "history_retention") == 0) {
        return parse_retention(cfg, v);
    }
    /* The primary-replica fallback's acknowledgement (docs/modes.md). */
    if (strcmp(name, "fallback_ack") == 0) {
        if (strcmp(v, "async") != 0 && strcmp(v, "semi-sync") != 0) {
            snprintf(why, why_len, "must be async or semi-sync");
            return -1;
        }
        cfg->node.fallback_semi_sync = strcmp(v, "semi-sync") == 0;
        return 0;
    }
    if (strcmp(name, "fallback_ack_on_timeout") == 0) {
        if (strcmp(v, "fail") != 0 && strcmp(v, "async") != 0) {
            snprintf(why, why_len, "must be fail or async");
            return -1;
        }
        cfg->node.fallback_degrade = strcmp(v, "async") == 0;
        return 0;
    }
    struct
    {
        const char *name;
        uint64_t min, max;
        void *field;
        int bytes;
    } nums[] = {
        {"tick_ms", 1, 1000, &cfg->node.tick_ms, 4},
        {"election_ticks", 2, 100000, &cfg->node.election_ticks, 4},
        {"heartbeat_ticks", 1, 100000, &cfg->node.heartbeat_ticks, 4},
        {"max_uncommitted_bytes", 1024, UINT64_MAX,
         &cfg->node.max_uncommitted_bytes, 8},
        {"kv_map_size", 1u << 20, UINT64_MAX, &cfg->node.kv_map_size, 8},
        {"quota_bytes", 1u << 20, UINT64_MAX / 2, &cfg->node.quota_bytes, 8},
        {"compact_batch", 1, 1000000, &cfg->node.compact_batch, 4},
        {"lease_checkpoint_ms", 10, 3600000, &cfg->node.lease_checkpoint_ms, 8},
        {"snapshot_every", 0, UINT64_MAX, &cfg->node.snapshot_every, 8},
        {"snapshot_trailing", 0, UINT64_MAX, &cfg->node.snapshot_trailing, 8},
        {"checkpoint_every", 1, UINT64_MAX, &cfg->node.checkpoint_every, 8},
        {"persist_inline_max", 0, 1000000, &cfg->node.persist_inline_max, 4},
        {"checkpoint_idle_ms", 0, UINT64_MAX, &cfg->node.checkpoint_idle_ms, 8},
        {"max_clients", 1, 1000000, &cfg->max_clients, 4},
        {"max_request_bytes", 1024, UINT64_MAX, &cfg->max_request_bytes, 8},
        {"max_output_bytes", 1024, UINT64_MAX, &cfg->max_output_bytes, 8},
        {"max_pipeline", 1, 1000000, &cfg->max_pipeline, 4},
        {"idle_timeout_ms", 0, 86400000, &cfg->idle_timeout_ms, 8},
        {"request_timeout_ms", 0, 3600000, &cfg->request_timeout_ms, 8},
        {"export_idle_ms", 0, 86400000, &cfg->export_idle_ms, 8},
        {"loop_warn_ms", 0, 60000, &cfg->loop_warn_ms, 8},
        {"scrub_bytes_per_sec", 0, (uint64_t)1 << 40,
         &cfg->node.scrub_bytes_per_sec, 8},
        {"digest_every_ms", 0, 86400000, &cfg->node.digest_every_ms, 8},
        {"fallback_ack_replicas", 1, RAFT_CONF_MAX - 1,
         &cfg->node.fallback_ack_replicas, 4},
        {"fallback_ack_timeout_ms", 1, 3600000,
         &cfg->node.fallback_ack_timeout_ms, 8},
        {"max_client_memory", 1u << 20, (uint64_t)1 << 50,
         &cfg->max_client_memory, 8},
        {"password_iterations", PASSWD_ITERATIONS_MIN, PASSWD_ITERATIONS_MAX,
         &cfg->password_iterations, 4},
        {"client_rate_requests", 0, (uint64_t)1 << 40,
         &cfg->client_rate_requests, 8},
        {"client_rate_bytes", 0, (uint64_t)1 << 50, &cfg->client_rate_bytes, 8},
        {"user_rate_requests", 0, (uint64_t)1 << 40, &cfg->user_rate_requests,
         8},
        {"user_rate_bytes", 0, (uint64_t)1 << 50, &cfg->user_rate_bytes, 8},
    };
    for (size_t i = 0; i < sizeof(nums) / sizeof(nums[0]); i++) {
        if (strcmp(name, nums[i].name) != 0) {
            continue;
        }
        if (parse_u64(v, nums[i].max, &n) != 0 || n < nums[i].min) {
            snprintf(why, why_len, "must be an integer from %llu to %llu",
                     (unsigned long long)nums[i].min,
                     (unsigned long long)nums[i].max);
            return -1;
        }
        if (nums[i].bytes == 4) {
            *(unsigned *)nums[i].field = (unsigned)n;
        } else {
            *(uint64_t *)nums[i].field = n;
        }
        return 0;
    }
    return -2; /* unknown setting */
}

static int set(struct ballotd_config *cfg,
               const char *name,
               const char *v,
               char *why,
               size_t why_len)
{
    int rv = set_one(cfg, name, v, why, why_len);
    static const char prefix[] = "invalid value: ";
    size_t have = strlen(why);
    if (rv == -1 && have > 0 && have + sizeof(prefix) <= why_len) {
        memmove(why + sizeof(prefix) - 1, why, have + 1);
        memcpy(why, prefix, sizeof(prefix) - 1);
    }
    return rv;
}

int config_set(struct ballotd_config *cfg,
               const char *name,
               const char *value,
               char *err,
               size_t err_len)
{
    char why[CONFIG_WHY_MAX];
    int rv = set(cfg, name, value, why, sizeof(why));
    if (rv != 0) {
        snprintf(err, err_len, "%s = %s: %s", name, value,
                 rv == -2 ? "unknown setting"
                 : why[0] ? why
                          : "invalid value");
        return -1;
    }
    return 0;
}

struct ini_ctx
{
    struct ballotd_config *cfg;
    char *err;
    size_t err_len;
    const char *path;
    int line;
};

static int on_ini(void *user,
                  const char *section,
                  const char *name,
                  const char *value)
{
    struct ini_ctx *ctx = user;
    char why[CONFIG_WHY_MAX];
    (void)section; /* names are unique across sections */
    int rv = set(ctx->cfg, name, value, why, sizeof(why));
    if (rv != 0) {
        snprintf(ctx->err, ctx->err_len, "%s: [%s] %s = %s: %s", ctx->path,
                 section, name, value,
                 rv == -2 ? "unknown setting"
                 : why[0] ? why
                          : "invalid value");
        return 0; /* stop: inih reports the line */
    }
    return 1;
}

/* Refuses what inih would read wrongly: a line longer than its line
 * buffer (inih splits it, and reads the tail as a line of its own: the
 * tail of a long comment could turn a setting on). */
static int check_lines(const char *path,
                       const char *text,
                       size_t len,
                       char *err,
                       size_t err_len)
{
    int line = 1;
    size_t run = 0;
    for (size_t i = 0; i < len; i++) {
        if (text[i] == '\n') {
            line++;
            run = 0;
            continue;
        }
        if (text[i] == '\0') {
            snprintf(err, err_len, "%s: line %d: a NUL byte", path, line);
            return -1;
        }
        if (++run > CONFIG_LINE_MAX) {
            snprintf(err, err_len,
                     "%s: line %d: longer than %u bytes, the most a line may "
                     "have",
                     path, line, (unsigned)CONFIG_LINE_MAX);
            return -1;
        }
    }
    return 0;
}

int config_parse_text(struct ballotd_config *cfg,
                      const char *path,
                      const char *text,
                      size_t len,
                      char *err,
                      size_t err_len)
{
    struct ini_ctx ctx = {cfg, err, err_len, path, 0};
    err[0] = '\0';
    if (len > CONFIG_FILE_BYTES_MAX) {
        snprintf(err, err_len,
                 "%s: %zu bytes, more than a config file may "
                 "have (%u)",
                 path, len, (unsigned)CONFIG_FILE_BYTES_MAX);
        return -1;
    }
    if (check_lines(path, text, len, err, err_len) != 0) {
        return -1;
    }
    char *copy = malloc(len + 1);
    if (copy == NULL) {
        snprintf(err, err_len, "%s: out of memory", path);
        return -1;
    }
    memcpy(copy, text, len);
    copy[len] = '\0';
    int rv = ini_parse_string(copy, on_ini, &ctx);
    free(copy);
    if (rv < 0) {
        snprintf(err, err_len, "%s: cannot parse the file", path);
        return -1;
    }
    if (rv > 0) {
        if (err[0] == '\0') {
            snprintf(err, err_len, "%s: line %d: syntax error", path, rv);
        } else {
            size_t n = strlen(err);
            snprintf(err + n, err_len - n, " (line %d)", rv);
        }
        return -1;
    }
    return 0;
}

int config_load_file(struct ballotd_config *cfg,
                     const char *path,
                     char *err,
                     size_t err_len)
{
    struct stat st;
    err[0] = '\0';
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0 || fstat(fd, &st) != 0) {
        snprintf(err, err_len, "%s: cannot read the file: %s", path,
                 strerror(errno));
        if (fd >= 0) {
            close(fd);
        }
        return -1;
    }
    /* inih reads a directory as an empty file. */
    if (S_ISDIR(st.st_mode) || !S_ISREG(st.st_mode)) {
        snprintf(err, err_len, "%s: %s, not a config file", path,
                 S_ISDIR(st.st_mode) ? "is a directory" : "not a regular file");
        close(fd);
        return -1;
    }
    if ((uint64_t)st.st_size > CONFIG_FILE_BYTES_MAX) {
        snprintf(err, err_len,
                 "%s: %llu bytes, more than a config file may "
                 "have (%u)",
                 path, (unsigned long long)st.st_size,
                 (unsigned)CONFIG_FILE_BYTES_MAX);
        close(fd);
        return -1;
    }
    char *text = malloc((size_t)st.st_size + 1);
    size_t have = 0;
    while (text != NULL && have < (size_t)st.st_size) {
        ssize_t n = read(fd, text + have, (size_t)st.st_size - have);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            break;
        }
        have += (size_t)n;
    }
    close(fd);
    if (text == NULL || have != (size_t)st.st_size) {
        snprintf(err, err_len, "%s: cannot read the file", path);
        free(text);
        return -1;
    }
    int rv = config_parse_text(cfg, path, text, have, err, err_len);
    free(text);
    return rv;
}

static void usage(void)
{
    printf(
        "usage: ballotd [--config FILE] [--id N] [--data DIR]\n"
        "               [--member ID=HOST:CLIENT_PORT[:PEER_PORT]]...\n"
        "               [--bootstrap] [--SETTING VALUE]...\n"
        "\n"
        "Runs one node of a ballot cluster. Every member is named with\n"
        "--member (or 'member =' lines in the config file); the node with\n"
        "--id listens on its own member addresses. --bootstrap starts a new\n"
        "cluster from an empty data directory, with every member a voter.\n"
        "Members prove themselves to each other with a shared secret:\n"
        "'ballotd secret FILE' makes one; pass --cluster_secret_file FILE.\n"
        "Any setting of the config file is also a flag: --tick_ms 10 or\n"
        "--tick_ms=10. --version prints the version.\n"
        "See docs/operations.md.\n");
}

/* BALLOT_JEPSEN_BREAK: a comma-separated list of deliberate bugs, which
 * only the fault-injection suite's tests set, to show that its checks
 * catch them (docs/jepsen.md). Unset or empty: none. */
static int parse_breaks(const char *text, unsigned *out)
{
    static const struct
    {
        const char *name;
        unsigned bit;
    } names[] = {{"stale-reads", BNODE_BREAK_STALE_READS},
                 {"no-sessions", BNODE_BREAK_NO_SESSIONS},
                 {"no-fdatasync", BNODE_BREAK_NO_FDATASYNC},
                 {"leader-unsynced", BNODE_BREAK_LEADER_UNSYNCED},
                 {"learners-vote", BNODE_BREAK_LEARNERS_VOTE},
                 {"watch-ignored", BNODE_BREAK_WATCH_IGNORED}};
    *out = 0;
    while (text != NULL && *text != '\0') {
        size_t len = strcspn(text, ",");
        bool known = false;
        for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
            if (strlen(names[i].name) == len &&
                strncmp(text, names[i].name, len) == 0) {
                *out |= names[i].bit;
                known = true;
            }
        }
        if (!known && len > 0) {
            return -1;
        }
        text += len + (text[len] == ',');
    }
    return 0;
}

int config_from_args(struct ballotd_config *cfg,
                     int argc,
                     char **argv,
                     char *err,
                     size_t err_len)
{
    if (parse_breaks(getenv("BALLOT_JEPSEN_BREAK"), &cfg->node.breaks) != 0) {
        snprintf(err, err_len,
                 "BALLOT_JEPSEN_BREAK: unknown bug in '%s' (known: "
                 "stale-reads, no-sessions, no-fdatasync, leader-unsynced, "
                 "learners-vote, watch-ignored)",
                 getenv("BALLOT_JEPSEN_BREAK"));
        return -1;
    }
    /* The config file first, so flags override it. */
    for (int i = 1; i < argc; i++) {
        const char *file = NULL;
        if (strncmp(argv[i], "--config=", 9) == 0) {
            file = argv[i] + 9;
        } else if (strcmp(argv[i], "--config") == 0) {
            if (i + 1 >= argc) {
                snprintf(err, err_len, "--config needs a file");
                return -1;
            }
            file = argv[i + 1];
        }
        if (file != NULL && config_load_file(cfg, file, err, err_len) != 0) {
            return -1;
        }
    }
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            usage();
            return 1;
        }
        if (strcmp(a, "--version") == 0) {
            printf("ballotd %s\n", BALLOT_VERSION);
            return 1;
        }
        if (strcmp(a, "--config") == 0) {
            i++;
            continue;
        }
        const char *eq = strncmp(a, "--", 2) == 0 ? strchr(a, '=') : NULL;
        if (eq != NULL) {
            /* --name=value, the same as --name value. */
            char name[64];
            snprintf(name, sizeof(name), "%.*s", (int)(eq - a - 2), a + 2);
            char why[CONFIG_WHY_MAX];
            int rv = strcmp(name, "config") == 0
                         ? 0
                         : set(cfg, name, eq + 1, why, sizeof(why));
            if (rv != 0) {
                snprintf(err, err_len, "%s: %s", a,
                         rv == -2      ? "unknown option"
                         : why[0] != 0 ? why
                                       : "invalid value");
                return -1;
            }
            continue;
        }
        if (strcmp(a, "--bootstrap") == 0) {
            cfg->node.bootstrap = true;
            continue;
        }
        if (strcmp(a, "--verbose") == 0 || strcmp(a, "-v") == 0) {
            cfg->verbose = true;
            continue;
        }
        if (strncmp(a, "--", 2) != 0 || i + 1 >= argc) {
            snprintf(err, err_len, "unexpected argument '%s' (try --help)", a);
            return -1;
        }
        char why[CONFIG_WHY_MAX];
        int rv = set(cfg, a + 2, argv[i + 1], why, sizeof(why));
        if (rv != 0) {
            snprintf(err, err_len, "%s %s: %s", a, argv[i + 1],
                     rv == -2      ? "unknown option"
                     : why[0] != 0 ? why
                                   : "invalid value");
            return -1;
        }
        i++;
    }
    return 0;
}

/* Reads a file only its owner may read (a secret, a password hash) into
 * @buf, without its trailing white space; @what names it in messages.
 * Returns 0 or -1 with a message. */
static int read_private(const char *path,
                        const char *what,
                        uint8_t *buf,
                        size_t max,
                        size_t min,
                        size_t *len,
                        char *err,
                        size_t err_len)
{
    struct stat st;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        snprintf(err, err_len, "%s %s: %s", what, path, strerror(errno));
        return -1;
    }
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        snprintf(err, err_len, "%s %s: not a regular file", what, path);
        close(fd);
        return -1;
    }
    /* A secret others can read is not one: refuse it, as ssh refuses a
     * private key with loose permissions. */
    if ((st.st_mode & 077) != 0) {
        snprintf(err, err_len,
                 "%s %s: readable by others (mode %03o); "
                 "chmod 600 it",
                 what, path, (unsigned)(st.st_mode & 0777));
        close(fd);
        return -1;
    }
    size_t n = 0;
    for (;;) {
        if (n == max) {
            /* One more byte tells a file that is too long apart. */
            uint8_t extra;
            ssize_t r = read(fd, &extra, 1);
            if (r > 0 && extra != '\n' && extra != '\r' && extra != ' ' &&
                extra != '\t') {
                snprintf(err, err_len, "%s %s: longer than %zu bytes", what,
                         path, max);
                close(fd);
                return -1;
            }
            break;
        }
        ssize_t r = read(fd, buf + n, max - n);
        if (r < 0 && errno == EINTR) {
            continue;
        }
        if (r < 0) {
            snprintf(err, err_len, "%s %s: %s", what, path, strerror(errno));
            close(fd);
            return -1;
        }
        if (r == 0) {
            break;
        }
        n += (size_t)r;
    }
    close(fd);
    while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r' ||
                     buf[n - 1] == ' ' || buf[n - 1] == '\t')) {
        n--;
    }
    if (n < min) {
        snprintf(err, err_len, "%s %s: %zu bytes, at least %zu needed", what,
                 path, n, min);
        return -1;
    }
    *len = n;
    return 0;
}

int config_read_secret(const char *path,
                       uint8_t *buf,
                       size_t max,
                       size_t *len,
                       char *err,
                       size_t err_len)
{
    if (read_private(path, "cluster secret", buf, max, AUTH_SECRET_MIN, len,
                     err, err_len) != 0) {
        size_t n = strlen(err);
        snprintf(err + n, err_len - n,
                 " (make a secret with: ballotd secret FILE)");
        return -1;
    }
    return 0;
}

int config_make_password(const char *path,
                         FILE *in,
                         unsigned iterations,
                         char *err,
                         size_t err_len)
{
    char pw[PASSWD_BYTES_MAX + 2];
    char hash[PASSWD_HASH_MAX];
    if (fgets(pw, sizeof(pw), in) == NULL) {
        snprintf(err, err_len, "no password on standard input");
        return -1;
    }
    size_t n = strcspn(pw, "\r\n");
    if (n == 0 || n > PASSWD_BYTES_MAX) {
        snprintf(err, err_len, "the password must be 1 to %u bytes",
                 PASSWD_BYTES_MAX);
        auth_wipe(pw, sizeof(pw));
        return -1;
    }
    int rv = passwd_hash(pw, n, iterations, hash);
    auth_wipe(pw, sizeof(pw));
    if (rv != 0) {
        snprintf(err, err_len, "cannot hash the password");
        return -1;
    }
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0) {
        snprintf(err, err_len, "%s: %s", path, strerror(errno));
        return -1;
    }
    size_t len = strlen(hash);
    hash[len] = '\n';
    if (write(fd, hash, len + 1) != (ssize_t)(len + 1) || fsync(fd) != 0) {
        snprintf(err, err_len, "%s: cannot write: %s", path, strerror(errno));
        close(fd);
        unlink(path);
        return -1;
    }
    close(fd);
    return 0;
}

int config_make_secret(const char *path, char *err, size_t err_len)
{
    uint8_t raw[32];
    char hex[2 * sizeof(raw) + 1];
    if (auth_random(raw, sizeof(raw)) != 0) {
        snprintf(err, err_len, "no random bytes from the system");
        return -1;
    }
    for (size_t i = 0; i < sizeof(raw); i++) {
        snprintf(hex + 2 * i, 3, "%02x", raw[i]);
    }
    hex[2 * sizeof(raw)] = '\n';
    auth_wipe(raw, sizeof(raw));
    /* O_EXCL: never overwrite a cluster's secret by accident. */
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0) {
        snprintf(err, err_len, "%s: %s", path, strerror(errno));
        auth_wipe(hex, sizeof(hex));
        return -1;
    }
    ssize_t w = write(fd, hex, sizeof(hex));
    auth_wipe(hex, sizeof(hex));
    if (w != (ssize_t)sizeof(hex) || fsync(fd) != 0) {
        snprintf(err, err_len, "%s: cannot write: %s", path, strerror(errno));
        close(fd);
        unlink(path);
        return -1;
    }
    close(fd);
    return 0;
}

int config_finish(struct ballotd_config *cfg, char *err, size_t err_len)
{
    const struct bnode_member *self = NULL;
    if (cfg->node.id == 0) {
        snprintf(err, err_len, "no node id: pass --id N");
        return -1;
    }
    if (cfg->node.n_members == 0) {
        snprintf(err, err_len,
                 "no members: pass --member ID=HOST:CLIENT_PORT:PEER_PORT "
                 "for every member");
        return -1;
    }
    for (unsigned i = 0; i < cfg->node.n_members; i++) {
        if (cfg->node.members[i].id == cfg->node.id) {
            self = &cfg->node.members[i];
        }
    }
    if (self == NULL) {
        snprintf(err, err_len, "node %llu is not among the members",
                 (unsigned long long)cfg->node.id);
        return -1;
    }
    bool tls_any = cfg->tls_cert_file[0] != '\0' ||
                   cfg->tls_key_file[0] != '\0' || cfg->tls_ca_file[0] != '\0';
    if (tls_any &&
        (cfg->tls_cert_file[0] == '\0' || cfg->tls_key_file[0] == '\0' ||
         cfg->tls_ca_file[0] == '\0')) {
        snprintf(err, err_len,
                 "TLS needs tls_cert_file, tls_key_file and tls_ca_file "
                 "together (scripts/tls-certs.sh makes them for a test "
                 "cluster; docs/security.md)");
        return -1;
    }
    if (cfg->node.heartbeat_ticks >= cfg->node.election_ticks) {
        snprintf(err, err_len,
                 "heartbeat_ticks (%u) must be below election_ticks (%u)",
                 cfg->node.heartbeat_ticks, cfg->node.election_ticks);
        return -1;
    }
    uint64_t election_ms =
        (uint64_t)cfg->node.tick_ms * cfg->node.election_ticks;
    if (election_ms > CONFIG_ELECTION_MS_MAX) {
        snprintf(err, err_len,
                 "election timeout tick_ms x election_ticks = %llu ms: must "
                 "be at most %u ms (a leader that dies would leave the "
                 "cluster without one that long)",
                 (unsigned long long)election_ms,
                 (unsigned)CONFIG_ELECTION_MS_MAX);
        return -1;
    }
    for (unsigned i = 0; i < cfg->node.n_voters; i++) {
        bool known = false;
        for (unsigned j = 0; j < cfg->node.n_members; j++) {
            known |= cfg->node.members[j].id == cfg->node.voters[i];
        }
        if (!known) {
            snprintf(err, err_len, "voter %llu is not among the members",
                     (unsigned long long)cfg->node.voters[i]);
            return -1;
        }
    }
    if (cfg->client_password_file[0] != '\0') {
        size_t n = 0;
        if (read_private(cfg->client_password_file, "client password",
                         (uint8_t *)cfg->client_password_hash,
                         sizeof(cfg->client_password_hash) - 1, 1, &n, err,
                         err_len) != 0) {
            return -1;
        }
        cfg->client_password_hash[n] = '\0';
        if (!passwd_valid(cfg->client_password_hash)) {
            snprintf(err, err_len,
                     "client password %s: not a password hash (make one "
                     "with: ballotd passwd FILE)",
                     cfg->client_password_file);
            return -1;
        }
    }
    snprintf(cfg->client_host, sizeof(cfg->client_host), "%s", self->host);
    cfg->client_port = self->client_port;
    if (cfg->metrics_port < 0) {
        cfg->metrics_port =
            self->client_port + 2 <= 65535 ? self->client_port + 2 : 0;
    }
    cfg->node.data_dir = cfg->data_dir;
    return 0;
}

int config_peer_auth(struct ballotd_config *cfg, char *err, size_t err_len)
{
    /* Peers authenticate with the cluster secret unless the operator said
     * otherwise in so many words: a new cluster is never open by
     * accident (docs/security.md). */
    if (cfg->secret_file[0] != '\0') {
        if (config_read_secret(cfg->secret_file, cfg->node.peer_secret,
                               sizeof(cfg->node.peer_secret),
                               &cfg->node.peer_secret_len, err, err_len) != 0) {
            return -1;
        }
    } else if (!cfg->node.insecure_peers && cfg->tls_cert_file[0] == '\0') {
        snprintf(err, err_len,
                 "no cluster secret: make one with 'ballotd secret FILE', "
                 "copy it to every member and pass --cluster_secret_file "
                 "FILE (or give every member a TLS certificate with "
                 "--tls_cert_file, --tls_key_file and --tls_ca_file, or run "
                 "with --insecure_peers true, where only members can reach "
                 "the peer port; see docs/security.md)");
        return -1;
    }
    return 0;
}
