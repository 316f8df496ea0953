/*
 * metrics_text.c - see metrics_text.h.
 */
#include "metrics_text.h"

#include <dirent.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>

#include "ballot.h"
#include "bnode.h"
#include "histo.h"
#include "looplag.h"
#include "server.h"

struct out
{
    char *buf;
    size_t cap;
    size_t len;
    bool full;
};

#if defined(__GNUC__)
__attribute__((format(printf, 2, 3)))
#endif
static void
put(struct out *o, const char *fmt, ...)
{
    va_list ap;
    if (o->full) {
        return;
    }
    va_start(ap, fmt);
    int n = vsnprintf(o->buf + o->len, o->cap - o->len, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= o->cap - o->len) {
        /* Cut at the last whole line: a scraper rejects half a sample. */
        o->full = true;
        o->buf[o->len] = '\0';
        return;
    }
    o->len += (size_t)n;
}

static void family(struct out *o,
                   const char *name,
                   const char *type,
                   const char *help)
{
    put(o, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void one(struct out *o,
                const char *name,
                const char *type,
                const char *help,
                unsigned long long v)
{
    family(o, name, type, help);
    put(o, "%s %llu\n", name, v);
}

/* The samples of one histogram: cumulative buckets up to the last finite
 * bound, +Inf, sum and count. @scale turns the stored unit into the
 * family's (1e-6: microseconds to seconds); @labels is "" or
 * `key="value",`. */
static void histo_samples(struct out *o,
                          const char *name,
                          const char *labels,
                          const struct histo *h,
                          double scale)
{
    uint64_t cum = 0;
    for (unsigned b = 0; b + 1 < HISTO_BUCKETS; b++) {
        cum += h->buckets[b];
        put(o, "%s_bucket{%sle=\"%.9g\"} %llu\n", name, labels,
            (double)histo_bound(b) * scale, (unsigned long long)cum);
    }
    put(o, "%s_bucket{%sle=\"+Inf\"} %llu\n", name, labels,
        (unsigned long long)h->count);
    size_t n = strlen(labels);
    /* The labels without their trailing comma, for _sum and _count. */
    if (n > 0) {
        put(o, "%s_sum{%.*s} %.9g\n%s_count{%.*s} %llu\n", name, (int)n - 1,
            labels, (double)h->sum * scale, name, (int)n - 1, labels,
            (unsigned long long)h->count);
    } else {
        put(o, "%s_sum %.9g\n%s_count %llu\n", name, (double)h->sum * scale,
            name, (unsigned long long)h->count);
    }
}

static void histogram(struct out *o,
                      const char *name,
                      const char *help,
                      const struct histo *h,
                      double scale)
{
    family(o, name, "histogram", help);
    histo_samples(o, name, "", h, scale);
}

/* Descriptors the process holds, counted in /proc/self/fd (-1 if it
 * cannot be read): at scrape time only. */
static long open_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    long n = 0;
    if (d == NULL) {
        return -1;
    }
    for (struct dirent *e = readdir(d); e != NULL; e = readdir(d)) {
        if (e->d_name[0] != '.') {
            n++;
        }
    }
    closedir(d);
    return n - 1; /* the directory's own descriptor */
}

static void node_families(struct out *o, struct bnode *node)
{
    struct bnode_status st;
    bnode_status(node, &st);
    const struct
    {
        const char *name;
        const char *type;
        const char *help;
        unsigned long long value;
    } rows[] = {
        {"ballot_raft_term", "gauge", "The current Raft term.", st.term},
        {"ballot_raft_is_leader", "gauge", "1 if this node is the leader.",
         st.state == RAFT_LEADER},
        {"ballot_raft_leader_id", "gauge",
         "The leader this node knows (0: none).", st.leader},
        {"ballot_raft_commit_index", "gauge", "The commit index.", st.commit},
        {"ballot_raft_applied_index", "gauge",
         "The last index applied to the store.", st.applied},
        {"ballot_raft_last_index", "gauge", "The last index in the log.",
         st.last_index},
        {"ballot_raft_first_index", "gauge", "The first index in the log.",
         st.first_index},
        {"ballot_raft_snapshot_index", "gauge",
         "The index of the newest snapshot.", st.snapshot_index},
        {"ballot_raft_members", "gauge", "Members of the configuration.",
         st.conf.n},
        {"ballot_raft_elections_total", "counter",
         "Elections this node started (pre-votes included).", st.elections},
        {"ballot_raft_leader_changes_total", "counter",
         "Changes of the leader this node saw.", st.leader_changes},
        {"ballot_kv_revision", "gauge", "The store's revision.", st.revision},
        {"ballot_proposals_pending", "gauge",
         "Proposals waiting for their entry to be applied.",
         st.proposals_pending},
        {"ballot_reads_pending", "gauge", "Read barriers waiting.",
         st.reads_pending},
        {"ballot_batches_persisted_total", "counter",
         "Batches made durable (one fdatasync each).", st.batches_persisted},
        {"ballot_entries_applied_total", "counter",
         "Log entries applied to the store.", st.entries_applied},
        {"ballot_store_bytes", "gauge",
         "The store's data file in use, free pages included.", st.db_bytes},
        {"ballot_store_free_bytes", "gauge",
         "Free pages inside the store's data file.", st.db_free_bytes},
        {"ballot_store_quota_bytes", "gauge",
         "The store's quota: writes are refused above it.", st.quota_bytes},
        {"ballot_store_map_bytes", "gauge", "The store's memory map.",
         st.map_bytes},
        {"ballot_store_over_quota", "gauge",
         "1 while writes are refused for the quota.", st.over_quota},
        {"ballot_store_keys", "gauge", "Live keys in the store.", st.keys},
        {"ballot_history_events", "gauge",
         "History records kept (watches and revision reads).",
         st.history_events},
        {"ballot_history_compact_revision", "gauge",
         "The history's compaction point.", st.compact_revision},
        {"ballot_wal_segments", "gauge", "The WAL's segment files.",
         st.wal_segments},
        {"ballot_wal_bytes", "gauge",
         "Bytes the WAL takes: full segments, and the last to its end.",
         st.wal_bytes},
        {"ballot_loop_stall_max_ms", "gauge",
         "The longest the tick timer waited beyond its period.",
         st.loop_stall_max_ms},
        {"ballot_loop_stalls_total", "counter", "Ticks at least 100 ms late.",
         st.loop_stalls},
        {"ballot_peer_rejected_hellos_total", "counter",
         "Peer handshakes from an unknown cluster or member.",
         st.peer_rejected_hellos},
        {"ballot_peer_auth_failures_total", "counter",
         "Peer proofs of the cluster secret that did not match.",
         st.peer_auth_failures},
        {"ballot_peer_bad_senders_total", "counter",
         "Peer messages not from the authenticated member.",
         st.peer_bad_senders},
        {"ballot_peer_cert_mismatches_total", "counter",
         "Peer hellos from a member other than the TLS certificate names.",
         st.peer_cert_mismatches},
        {"ballot_peer_bad_frames_total", "counter",
         "Peer frames that did not decode.", st.peer_bad_frames},
        {"ballot_peer_handshake_timeouts_total", "counter",
         "Peer handshakes that did not finish in time.",
         st.peer_handshake_timeouts},
        {"ballot_raft_msgs_rejected_total", "counter",
         "Raft messages the core dropped as invalid.", st.raft_msgs_rejected},
        {"ballot_raft_msgs_bad_term_total", "counter",
         "Vote requests with an implausible term.", st.raft_msgs_bad_term},
        {"ballot_store_digest_index", "gauge",
         "The applied index of the store's last digest.", st.digest_index},
        {"ballot_store_digest", "gauge", "The store's last digest.", st.digest},
        {"ballot_store_digest_checks_total", "counter",
         "Digests compared with the leader's.", st.digest_checks},
        {"ballot_store_digest_mismatches_total", "counter",
         "Digests that differed from the leader's.", st.digest_mismatches},
        {"ballot_scrub_passes_total", "counter",
         "Whole passes of the store's scrub.", st.scrub_passes},
        {"ballot_scrub_bytes_total", "counter", "Bytes the scrub read.",
         st.scrub_bytes},
        {"ballot_store_damaged", "gauge", "1 once the store was found damaged.",
         st.store_damaged ? 1u : 0u},
        /* The primary-replica fallback (docs/modes.md). */
        {"ballot_fallback_mode", "gauge",
         "1 in the primary-replica mode, 0 in Raft mode.",
         st.fallback ? 1u : 0u},
        {"ballot_fallback_epoch", "gauge",
         "The primary-replica epoch (the Raft term; 0 in Raft mode).",
         st.fallback ? st.epoch : 0u},
        {"ballot_fallback_primary", "gauge",
         "The primary's id (0 in Raft mode).", st.primary},
        {"ballot_fallback_ack_degraded", "gauge",
         "1 while a semi-sync primary acknowledges alone after a timeout.",
         st.ack_degraded ? 1u : 0u},
        {"ballot_fallback_diverged_total", "counter",
         "Appends refused for conflicting with committed entries.",
         st.diverged},
        {"ballot_fallback_cut_entries", "gauge",
         "Committed entries cut when this node rejoined a newer primary.",
         st.cut_first > 0 ? st.cut_last - st.cut_first + 1 : 0u},
    };
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        one(o, rows[i].name, rows[i].type, rows[i].help, rows[i].value);
    }
    double used =
        (double)(st.db_bytes > st.db_free_bytes ? st.db_bytes - st.db_free_bytes
                                                : 0);
    family(o, "ballot_store_quota_used_ratio", "gauge",
           "Live data over the quota (1: writes are refused).");
    put(o, "ballot_store_quota_used_ratio %.6f\n",
        st.quota_bytes > 0 ? used / (double)st.quota_bytes : 0.0);

    family(o, "ballot_proposals_refused_total", "counter",
           "Proposals refused before entering the log, by reason.");
    put(o,
        "ballot_proposals_refused_total{reason=\"busy\"} %llu\n"
        "ballot_proposals_refused_total{reason=\"not_leader\"} %llu\n"
        "ballot_proposals_refused_total{reason=\"quota\"} %llu\n"
        "ballot_proposals_refused_total{reason=\"too_big\"} %llu\n",
        (unsigned long long)st.refused_busy,
        (unsigned long long)st.refused_not_leader,
        (unsigned long long)st.refused_quota,
        (unsigned long long)st.refused_too_big);

    /* Per follower, on the leader only (a follower has no view of the
     * others' logs). */
    static const char *lag_families[][3] = {
        {"ballot_replication_lag_entries", "gauge",
         "On the leader: entries a member has not acknowledged."},
        {"ballot_replication_lag_seconds", "gauge",
         "On the leader: age of the oldest entry a member has not "
         "acknowledged."},
        {"ballot_replication_inflight_appends", "gauge",
         "On the leader: appends sent to a member and not acknowledged."},
    };
    for (unsigned f = 0; f < 3; f++) {
        family(o, lag_families[f][0], lag_families[f][1], lag_families[f][2]);
        if (st.state != RAFT_LEADER) {
            continue;
        }
        for (uint32_t i = 0; i < st.conf.n && i < RAFT_CONF_MAX; i++) {
            raft_id id = st.conf.members[i].id;
            if (id == st.id) {
                continue;
            }
            if (f == 0) {
                put(o, "%s{member=\"%llu\"} %llu\n", lag_families[f][0],
                    (unsigned long long)id,
                    (unsigned long long)(st.last_index > st.match[i]
                                             ? st.last_index - st.match[i]
                                             : 0));
            } else if (f == 1) {
                put(o, "%s{member=\"%llu\"} %.3f\n", lag_families[f][0],
                    (unsigned long long)id, (double)st.lag_ms[i] / 1000.0);
            } else {
                put(o, "%s{member=\"%llu\"} %u\n", lag_families[f][0],
                    (unsigned long long)id, st.inflight[i]);
            }
        }
    }

    const struct bnode_histos *h = bnode_histos(node);
    histogram(o, "ballot_wal_fsync_duration_seconds",
              "One fdatasync of a batch of log entries.", &h->wal_fsync_us,
              1e-6);
    histogram(o, "ballot_wal_batch_entries",
              "Entries per batch made durable with one fdatasync.",
              &h->batch_entries, 1.0);
    histogram(o, "ballot_raft_commit_duration_seconds",
              "A proposal of this node, from proposing to its commit.",
              &h->commit_us, 1e-6);
    histogram(o, "ballot_kv_apply_duration_seconds",
              "Applying one batch of committed entries to the store.",
              &h->apply_us, 1e-6);
    histogram(o, "ballot_peer_round_trip_seconds",
              "On the leader: a heartbeat to a follower and its answer.",
              &h->peer_rtt_us, 1e-6);
    histogram(o, "ballot_snapshot_create_duration_seconds",
              "Writing a snapshot file of the store.", &h->snap_create_us,
              1e-6);
    histogram(o, "ballot_snapshot_transfer_duration_seconds",
              "Receiving a leader's snapshot, first chunk to last.",
              &h->snap_transfer_us, 1e-6);
    histogram(o, "ballot_snapshot_install_duration_seconds",
              "Installing a received snapshot as the store.",
              &h->snap_install_us, 1e-6);
}

static void server_families(struct out *o, struct server *srv)
{
    static const char *classes[SERVER_REQ_CLASSES] = {
        "read", "write", "read_modify_write", "transaction", "admin", "other"};
    struct server_stats ss;
    server_stats(srv, &ss);
    const struct
    {
        const char *name;
        const char *type;
        const char *help;
        unsigned long long value;
    } rows[] = {
        {"ballot_clients_connected", "gauge", "Client connections open.",
         ss.clients},
        {"ballot_clients_max", "gauge", "The most client connections taken.",
         ss.max_clients},
        {"ballot_client_connections_total", "counter",
         "Client connections accepted.", ss.connections_total},
        {"ballot_client_connections_rejected_total", "counter",
         "Client connections refused (over max_clients).", ss.rejected},
        {"ballot_client_connections_evicted_total", "counter",
         "Idle clients displaced at max_clients.", ss.evicted},
        {"ballot_client_connections_timedout_total", "counter",
         "Clients closed for idleness or an unfinished request.", ss.timedout},
        {"ballot_client_commands_total", "counter", "Client requests run.",
         ss.commands_total},
        {"ballot_snapshot_exports_expired_total", "counter",
         "Snapshot exports released unread.", ss.exports_expired},
        {"ballot_client_memory_bytes", "gauge",
         "Memory held for clients' requests, replies and queues.",
         ss.memory_used},
        {"ballot_client_memory_refused_total", "counter",
         "Requests, replies or queues refused for client memory.",
         ss.memory_refused},
        {"ballot_client_rate_limited_connection_total", "counter",
         "Requests refused over their connection's rate.",
         ss.rate_limited_conn},
        {"ballot_client_rate_limited_user_total", "counter",
         "Requests refused over their user's rate.", ss.rate_limited_user},
        {"ballot_tls_handshakes_total", "counter",
         "TLS handshakes completed, every port.", ss.tls_handshakes},
        {"ballot_tls_handshake_failures_total", "counter",
         "TLS handshakes refused or failed, every port.",
         ss.tls_handshake_failures},
        {"ballot_tls_reloads_total", "counter",
         "TLS certificate reloads (SIGHUP) that took.", ss.tls_reloads},
        {"ballot_tls_reload_failures_total", "counter",
         "TLS certificate reloads refused; the old files stay.",
         ss.tls_reload_failures},
    };
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        one(o, rows[i].name, rows[i].type, rows[i].help, rows[i].value);
    }
    family(o, "ballot_request_duration_seconds", "histogram",
           "Client requests, from dispatch to a complete reply, by class.");
    for (unsigned c = 0; c < SERVER_REQ_CLASSES; c++) {
        char labels[64];
        snprintf(labels, sizeof(labels), "class=\"%s\",", classes[c]);
        histo_samples(o, "ballot_request_duration_seconds", labels,
                      server_latency(srv, (enum server_req_class)c), 1e-6);
    }
}

static void loop_families(struct out *o, struct looplag *lag)
{
    struct looplag_stats ls;
    looplag_stats(lag, &ls);
    one(o, "ballot_loop_iterations_total", "counter",
        "Turns of the event loop.", ls.iterations);
    one(o, "ballot_loop_slow_iterations_total", "counter",
        "Turns that kept the loop busy at least loop_warn_ms.", ls.slow);
    one(o, "ballot_loop_busy_max_ms", "gauge",
        "The longest turn since the start.", ls.busy_max_ms);
    one(o, "ballot_loop_busy_recent_max_ms", "gauge",
        "The longest turn since the previous scrape.", ls.busy_last_max_ms);
    histogram(o, "ballot_loop_iteration_duration_seconds",
              "Time one turn of the event loop kept it busy.", &ls.busy_us,
              1e-6);
}

size_t metrics_text_render(struct bnode *node,
                           struct server *srv,
                           struct looplag *lag,
                           const struct metrics_text_port *port,
                           char *buf,
                           size_t cap)
{
    struct out o = {buf, cap < METRICS_TEXT_MAX ? cap : METRICS_TEXT_MAX, 0,
                    false};
    struct bnode_status st;
    struct rlimit rl;
    if (o.cap == 0) {
        return 0;
    }
    buf[0] = '\0';
    family(&o, "ballot_build_info", "gauge",
           "Always 1; the version is in the label.");
    put(&o, "ballot_build_info{version=\"%s\"} 1\n", BALLOT_VERSION_STRING);
    node_families(&o, node);
    if (srv != NULL) {
        server_families(&o, srv);
    }
    /* Each port's connections, and with its listener its descriptors. */
    bnode_status(node, &st);
    family(&o, "ballot_open_connections", "gauge",
           "Connections open now, by port.");
    put(&o, "ballot_open_connections{port=\"peer\"} %llu\n",
        (unsigned long long)st.peer_connections);
    if (srv != NULL) {
        put(&o, "ballot_open_connections{port=\"client\"} %u\n",
            server_clients(srv));
    }
    put(&o, "ballot_open_connections{port=\"metrics\"} %u\n",
        port->connections);
    family(&o, "ballot_open_descriptors", "gauge",
           "Descriptors held now, by port: its connections and listener.");
    put(&o, "ballot_open_descriptors{port=\"peer\"} %llu\n",
        (unsigned long long)st.peer_connections + 1);
    if (srv != NULL) {
        put(&o, "ballot_open_descriptors{port=\"client\"} %u\n",
            server_clients(srv) + 1);
    }
    put(&o, "ballot_open_descriptors{port=\"metrics\"} %u\n",
        port->connections + 1);
    long fds = open_fds();
    if (fds >= 0) {
        one(&o, "process_open_fds", "gauge", "Descriptors the process holds.",
            (unsigned long long)fds);
    }
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
        one(&o, "process_max_fds", "gauge", "The process's descriptor limit.",
            (unsigned long long)rl.rlim_cur);
    }
    if (lag != NULL) {
        loop_families(&o, lag);
    }
    return o.len;
}
