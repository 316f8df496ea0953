/*
 * bnode_fallback.c - the primary-replica fallback (docs/modes.md,
 * docs/adr/0002-fallback-as-forced-configuration.md).
 *
 * The mode is not a second replication protocol. It is a Raft
 * configuration with exactly one voter, the primary, and learners, its
 * replicas: the primary commits on its own fsync (async), the replicas
 * receive the same log, WAL and snapshots through Raft's own replication,
 * and the epoch is the Raft term, durable in the hard state and carried by
 * every message, so that a message of an older epoch is refused as stale.
 * Entering the mode from a cluster that lost its quorum is the one step
 * outside consensus: raft_force_conf() writes that configuration into the
 * survivor's own log at a term above every term it saw. This file decides
 * when that is allowed and reports what it may have cost.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bnode_internal.h"
#include "datadir.h"
#include "nlog.h"

/* In the data directory: the marker a diverged node leaves for its next
 * start (it names the file of cut entries), and the record of the last
 * rebuild, kept so that status keeps reporting the cut until the operator
 * removes it. */
#define FALLBACK_REBUILD_MARKER "fallback.rebuild"
#define FALLBACK_CUT_RECORD "fallback.cut"
/* Bytes of an entry shown as text in the file of cut entries (the whole
 * entry is there in hex). */
#define FALLBACK_PREVIEW_BYTES 96

static void semi_sync_tick(struct bnode *node);

/* The mode is the shape of the configuration: one voter and at least one
 * learner. (A one-voter cluster with learners made by ordinary membership
 * changes is exactly that mode too: its voter commits alone and its
 * learners lag behind asynchronously.) */
static bool conf_mode(const struct raft_conf *conf, raft_id *primary)
{
    raft_id voter = 0;
    unsigned voters = 0, learners = 0;
    for (uint32_t i = 0; i < conf->n; i++) {
        if (conf->members[i].role == RAFT_VOTER) {
            voters++;
            voter = conf->members[i].id;
        } else {
            learners++;
        }
    }
    if (voters != 1 || learners == 0) {
        return false;
    }
    if (primary != NULL) {
        *primary = voter;
    }
    return true;
}

bool bnode_fallback_mode(struct bnode *node, raft_id *primary, raft_term *epoch)
{
    if (!conf_mode(raft_conf_of(node->raft), primary)) {
        return false;
    }
    if (epoch != NULL) {
        *epoch = raft_current_term(node->raft);
    }
    return true;
}

/* Voters of @conf this node can reach now: itself and those whose peer
 * connection is up. */
static unsigned voters_reachable(struct bnode *node,
                                 const struct raft_conf *conf)
{
    unsigned n = 0;
    for (uint32_t i = 0; i < conf->n; i++) {
        const struct raft_member *m = &conf->members[i];
        if (m->role != RAFT_VOTER) {
            continue;
        }
        if (m->id == node->opts.id ||
            (node->transport != NULL &&
             transport_connected(node->transport, m->id))) {
            n++;
        }
    }
    return n;
}

/* Forces the configuration {this node the only voter, every other member
 * of @old a learner} at a term above @min_term and every term seen, fills
 * @out's epoch and conf_index, and remembers what @out says this node held
 * (for status). */
static int force_primary(struct bnode *node,
                         const struct raft_conf *old,
                         raft_term min_term,
                         struct bnode_fallback_report *out)
{
    struct raft_conf conf;
    memset(&conf, 0, sizeof(conf));
    conf.members[conf.n].id = node->opts.id;
    conf.members[conf.n].role = RAFT_VOTER;
    conf.n++;
    for (uint32_t i = 0; i < old->n; i++) {
        if (old->members[i].id != node->opts.id) {
            conf.members[conf.n].id = old->members[i].id;
            conf.members[conf.n].role = RAFT_LEARNER;
            conf.n++;
        }
    }
    int rv = raft_force_conf(node->raft, &conf, min_term, &out->epoch,
                             &out->conf_index);
    switch (rv) {
    case 0:
        node->entered_last_index = out->last_index;
        node->entered_commit = out->commit;
        /* Semi-sync holds from the forced configuration's entry on. */
        semi_sync_tick(node);
        bnode_kick(node);
        return 0;
    case RAFT_ENOMEM:
        return BNODE_ENOMEM;
    default:
        /* A node that never joined a cluster, or a term at its limit. */
        return BNODE_EINVAL;
    }
}

int bnode_fallback_enter(struct bnode *node,
                         bool force,
                         struct bnode_fallback_report *out)
{
    if (node->stopping || node->halted) {
        return BNODE_ESTOPPED;
    }
    const struct raft_conf *old = raft_conf_of(node->raft);
    if (conf_mode(old, NULL)) {
        return BNODE_EMODE;
    }
    if (node->frozen) {
        return BNODE_EBUSY;
    }
    memset(out, 0, sizeof(*out));
    out->last_index = raft_last_index(node->raft);
    out->commit = raft_commit_index(node->raft);
    out->quorum = raft_conf_voters(old) / 2 + 1;
    out->voters_reachable = voters_reachable(node, old);
    /* A known leader means a quorum elected it and, with CheckQuorum,
     * still follows it; connected voters may be about to. Either way Raft
     * can still make progress, and forcing would split the cluster. */
    if (!force && (raft_leader(node->raft) != 0 ||
                   out->voters_reachable >= out->quorum)) {
        return BNODE_EQUORUM;
    }
    int rv = force_primary(node, old, 0, out);
    if (rv != 0) {
        return rv;
    }
    nlog(node, BNODE_LOG_WARN,
         "fallback: this node is now the primary of a primary-replica group "
         "at epoch %llu (configuration entry %llu)%s; it held entries up to "
         "%llu and the highest commit index it had learned was %llu: "
         "entries %llu..%llu are now committed, and whatever the lost "
         "majority committed beyond %llu without sending it here is lost",
         (unsigned long long)out->epoch, (unsigned long long)out->conf_index,
         force ? " (forced)" : "", (unsigned long long)out->last_index,
         (unsigned long long)out->commit, (unsigned long long)(out->commit + 1),
         (unsigned long long)out->last_index, (unsigned long long)out->commit);
    return 0;
}

int bnode_fallback_promote(struct bnode *node,
                           bool force,
                           struct bnode_fallback_report *out)
{
    raft_id primary = 0;
    if (node->stopping || node->halted) {
        return BNODE_ESTOPPED;
    }
    const struct raft_conf *old = raft_conf_of(node->raft);
    if (!conf_mode(old, &primary) || primary == node->opts.id) {
        return BNODE_EMODE;
    }
    if (node->frozen) {
        return BNODE_EBUSY;
    }
    memset(out, 0, sizeof(out[0]));
    out->last_index = raft_last_index(node->raft);
    out->commit = raft_commit_index(node->raft);
    out->quorum = 1;
    /* The primary is alive if it was heard within an election timeout:
     * promoting then would make two primaries, each taking writes until
     * the newer epoch reaches the older. */
    uint64_t timeout_ms =
        (uint64_t)node->opts.election_ticks * node->opts.tick_ms;
    bool heard = node->primary_heard_ms != 0 &&
                 uv_now(node->loop) - node->primary_heard_ms < timeout_ms;
    out->voters_reachable = heard ? 1 : 0;
    if (!force && raft_leader(node->raft) == primary && heard) {
        return BNODE_EQUORUM;
    }
    /* A replica that has not applied what it knows committed lacks
     * acknowledged writes it could still get: wait, or force. */
    if (!force && raft_applied_index(node->raft) < out->commit) {
        return BNODE_ELAGGING;
    }
    int rv = force_primary(
        node, old, raft_current_term(node->raft) + BNODE_FALLBACK_EPOCH_STEP,
        out);
    if (rv != 0) {
        return rv;
    }
    nlog(node, BNODE_LOG_WARN,
         "fallback: promoted to primary at epoch %llu%s, replacing node "
         "%llu; this node held entries up to %llu (commit %llu): writes the "
         "old primary acknowledged after that are not here",
         (unsigned long long)out->epoch, force ? " (forced)" : "",
         (unsigned long long)primary, (unsigned long long)out->last_index,
         (unsigned long long)out->commit);
    return 0;
}

void fallback_on_recv(struct bnode *node, const struct raft_message *m)
{
    if ((m->type == RAFT_MSG_APPEND || m->type == RAFT_MSG_HEARTBEAT ||
         m->type == RAFT_MSG_SNAPSHOT) &&
        m->from == raft_leader(node->raft)) {
        node->primary_heard_ms = uv_now(node->loop);
    }
}

/* ---- a former primary that diverged ------------------------------------ */

static void write_hex(FILE *f, const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        fprintf(f, "%02x", p[i]);
    }
}

static void write_preview(FILE *f, const uint8_t *p, size_t n)
{
    size_t m = n < FALLBACK_PREVIEW_BYTES ? n : FALLBACK_PREVIEW_BYTES;
    for (size_t i = 0; i < m; i++) {
        fputc(p[i] >= 0x20 && p[i] < 0x7f ? p[i] : '.', f);
    }
    if (m < n) {
        fputs("...", f);
    }
}

/* Writes entries [@first, @last] of this node's log to @path, synced. */
static int save_cut(struct bnode *node,
                    const char *path,
                    raft_index first,
                    raft_index last)
{
    FILE *f = fopen(path, "w");
    if (f == NULL) {
        return -1;
    }
    fprintf(f,
            "# ballot: entries node %llu had committed (and, as a primary, "
            "may have acknowledged) that its new primary, node %llu at "
            "epoch %llu, does not have. They were cut from this node's log "
            "when it rejoined as a replica (docs/modes.md).\n"
            "# index term type bytes preview hex\n",
            (unsigned long long)node->opts.id,
            (unsigned long long)raft_leader(node->raft),
            (unsigned long long)raft_current_term(node->raft));
    for (raft_index i = first; i <= last; i++) {
        const struct raft_entry *e = raft_entry_at(node->raft, i);
        if (e == NULL) {
            fprintf(f,
                    "%llu - - - (compacted into a snapshot: its effect "
                    "is in the store kept beside this file)\n",
                    (unsigned long long)i);
            continue;
        }
        fprintf(f, "%llu %llu %s %u ", (unsigned long long)e->index,
                (unsigned long long)e->term,
                e->type == RAFT_ENTRY_CONF ? "conf" : "command", e->len);
        write_preview(f, e->data, e->len);
        fputc(' ', f);
        write_hex(f, e->data, e->len);
        fputc('\n', f);
    }
    int rv = fflush(f) == 0 && fsync(fileno(f)) == 0 ? 0 : -1;
    if (fclose(f) != 0) {
        rv = -1;
    }
    return rv;
}

/* Writes @text to the file @name of the data directory, synced. */
static int write_small(struct bnode *node, const char *name, const char *text)
{
    char path[BNODE_PATH_MAX];
    snprintf(path, sizeof(path), "%s/%s", node->data_dir, name);
    FILE *f = fopen(path, "w");
    if (f == NULL) {
        return -1;
    }
    int rv =
        fputs(text, f) >= 0 && fflush(f) == 0 && fsync(fileno(f)) == 0 ? 0 : -1;
    if (fclose(f) != 0) {
        rv = -1;
    }
    return rv;
}

/* A leader's log forks from entries this node had committed: it was a
 * primary that others replaced while it was away (or the survivor forced
 * into primary lacked what it had). Its store applied entries the new
 * primary never had, so it cannot follow by truncating its log: the
 * entries from the fork on are saved to a file, a marker tells the next
 * start to set the old store and log aside and join as an empty replica,
 * and the node halts (ballotd exits; its supervisor restarts it). */
static void on_diverged(struct bnode *node)
{
    raft_index first = raft_diverged_at(node->raft);
    raft_index last = raft_last_index(node->raft);
    raft_term epoch = raft_current_term(node->raft);
    char name[128], path[BNODE_PATH_MAX], why[BNODE_PATH_MAX + 512];
    snprintf(name, sizeof(name), "fallback-cut-%llu-%llu-%llu.txt",
             (unsigned long long)epoch, (unsigned long long)first,
             (unsigned long long)last);
    snprintf(path, sizeof(path), "%s/%s", node->data_dir, name);
    if (save_cut(node, path, first, last) != 0 ||
        write_small(node, FALLBACK_REBUILD_MARKER, name) != 0 ||
        datadir_sync_dir(node->data_dir) != 0) {
        snprintf(why, sizeof(why),
                 "diverged from primary %llu at index %llu and could not "
                 "save the entries to cut (%s): %s",
                 (unsigned long long)raft_leader(node->raft),
                 (unsigned long long)first, path, strerror(errno));
        bnode_halt(node, why);
        return;
    }
    node->cut_first = first;
    node->cut_last = last;
    snprintf(node->cut_file, sizeof(node->cut_file), "%s", name);
    snprintf(why, sizeof(why),
             "diverged from primary %llu (epoch %llu): entries %llu..%llu, "
             "which this node had committed, are not in the primary's log; "
             "they are saved in %s, and the next start sets this node's old "
             "log and store aside and rejoins as a replica",
             (unsigned long long)raft_leader(node->raft),
             (unsigned long long)epoch, (unsigned long long)first,
             (unsigned long long)last, path);
    bnode_halt(node, why);
}

/* ---- semi-sync and WAIT -------------------------------------------------- */

/* A WAIT in progress. */
struct fallback_waiter
{
    raft_index index; /* the leader's last index when it was asked */
    unsigned n;
    uint64_t deadline_ms; /* 0: none */
    bnode_wait_cb cb;
    void *arg;
    struct fallback_waiter *next;
};

static unsigned ack_replicas(const struct bnode *node)
{
    return node->opts.fallback_ack_replicas != 0
               ? node->opts.fallback_ack_replicas
               : BNODE_FALLBACK_ACK_REPLICAS_DEFAULT;
}

static uint64_t ack_timeout_ms(const struct bnode *node)
{
    return node->opts.fallback_ack_timeout_ms != 0
               ? node->opts.fallback_ack_timeout_ms
               : BNODE_FALLBACK_ACK_TIMEOUT_MS_DEFAULT;
}

/* Other members (learners, if @learners_only) whose log holds @index. */
static unsigned holding(struct bnode *node,
                        raft_index index,
                        bool learners_only)
{
    const struct raft_conf *conf = raft_conf_of(node->raft);
    unsigned n = 0;
    for (uint32_t i = 0; i < conf->n; i++) {
        const struct raft_member *m = &conf->members[i];
        if (m->id == node->opts.id ||
            (learners_only && m->role != RAFT_LEARNER)) {
            continue;
        }
        n += raft_match_index(node->raft, m->id) >= index;
    }
    return n;
}

static void set_commit_learners(struct bnode *node, unsigned k)
{
    if (node->commit_learners != k &&
        raft_set_commit_learners(node->raft, k) == 0) {
        node->commit_learners = k;
        bnode_kick(node);
    }
}

/* The primary's acknowledgement gate: in semi-sync, entries commit (and
 * writes are answered) once k replicas hold them too. A write that waits
 * past the timeout fails as unknown (its entry stays in the log and
 * commits once replicas return), or the primary degrades to async until k
 * replicas hold its whole log again. */
static void semi_sync_tick(struct bnode *node)
{
    raft_id primary = 0;
    /* Set on the primary whether it leads yet or not: it must be in
     * force before its first entry can commit. */
    bool on = node->opts.fallback_semi_sync &&
              bnode_fallback_mode(node, &primary, NULL) &&
              primary == node->opts.id;
    unsigned k = ack_replicas(node);
    if (!on) {
        node->ack_degraded = false;
        set_commit_learners(node, 0);
        return;
    }
    if (node->ack_degraded &&
        holding(node, raft_last_index(node->raft), true) >= k) {
        node->ack_degraded = false;
        nlog(node, BNODE_LOG_WARN,
             "fallback: %u replicas hold the whole log again: back to "
             "semi-sync acknowledgement",
             k);
    }
    set_commit_learners(node, node->ack_degraded ? 0 : k);
    raft_index index = 0;
    uint64_t age = bnode_oldest_write_ms(node, &index);
    if (node->ack_degraded || age <= ack_timeout_ms(node) ||
        index <= raft_commit_index(node->raft)) {
        return;
    }
    if (node->opts.fallback_degrade) {
        node->ack_degraded = true;
        nlog(node, BNODE_LOG_WARN,
             "fallback: no %u replicas acknowledged entry %llu within %llu "
             "ms: degraded to async acknowledgement (a primary crash now "
             "loses what only it holds)",
             k, (unsigned long long)index,
             (unsigned long long)ack_timeout_ms(node));
        set_commit_learners(node, 0);
    } else {
        bnode_fail_old_writes(node, ack_timeout_ms(node),
                              raft_commit_index(node->raft));
    }
}

/* Answers the WAITs that are satisfied or timed out (all, if @all). */
static void waiters_tick(struct bnode *node, bool all)
{
    struct fallback_waiter **pp = &node->waiters;
    uint64_t now = uv_now(node->loop);
    bool leader = raft_state_of(node->raft) == RAFT_LEADER;
    while (*pp != NULL) {
        struct fallback_waiter *w = *pp;
        unsigned acked = leader ? holding(node, w->index, false) : 0;
        if (!all && leader && acked < w->n &&
            (w->deadline_ms == 0 || now < w->deadline_ms)) {
            pp = &w->next;
            continue;
        }
        *pp = w->next;
        w->cb(w->arg, leader || all ? 0 : BNODE_ENOTLEADER, acked);
        free(w);
    }
}

int bnode_wait_replicas(struct bnode *node,
                        unsigned n,
                        uint64_t timeout_ms,
                        bnode_wait_cb cb,
                        void *arg)
{
    if (node->stopping || node->halted) {
        return BNODE_ESTOPPED;
    }
    if (raft_state_of(node->raft) != RAFT_LEADER) {
        return BNODE_ENOTLEADER;
    }
    struct fallback_waiter *w = calloc(1, sizeof(*w));
    if (w == NULL) {
        return BNODE_ENOMEM;
    }
    w->index = raft_last_index(node->raft);
    w->n = n;
    w->deadline_ms = timeout_ms != 0 ? uv_now(node->loop) + timeout_ms : 0;
    w->cb = cb;
    w->arg = arg;
    /* Answered from the next tick on, never from inside this call. */
    w->next = node->waiters;
    node->waiters = w;
    return 0;
}

void fallback_stop(struct bnode *node)
{
    waiters_tick(node, true);
}

void fallback_on_tick(struct bnode *node)
{
    raft_id leader = raft_leader(node->raft);
    if (node->halted) {
        return;
    }
    semi_sync_tick(node);
    waiters_tick(node, false);
    if (raft_diverged_at(node->raft) == 0 || leader == 0 ||
        leader == node->opts.id) {
        return;
    }
    on_diverged(node);
}

/* Moves DATA/@what into @dir if it exists. */
static int set_aside(struct bnode *node, const char *dir, const char *what)
{
    char from[BNODE_PATH_MAX], to[BNODE_PATH_MAX + 64];
    snprintf(from, sizeof(from), "%s/%s", node->data_dir, what);
    snprintf(to, sizeof(to), "%s/%s", dir, what);
    if (rename(from, to) != 0 && errno != ENOENT) {
        return -1;
    }
    return 0;
}

/* Reads a small file of the data directory into @buf ("" if missing). */
static void read_small(struct bnode *node,
                       const char *name,
                       char *buf,
                       size_t cap)
{
    char path[BNODE_PATH_MAX];
    snprintf(path, sizeof(path), "%s/%s", node->data_dir, name);
    buf[0] = '\0';
    FILE *f = fopen(path, "r");
    if (f == NULL) {
        return;
    }
    size_t n = fread(buf, 1, cap - 1, f);
    buf[n] = '\0';
    buf[strcspn(buf, "\n")] = '\0';
    fclose(f);
}

int fallback_open(struct bnode *node, char *errmsg, size_t errmsg_len)
{
    char name[256], dir[BNODE_PATH_MAX], marker[BNODE_PATH_MAX];
    unsigned long long epoch, first, last;
    read_small(node, FALLBACK_REBUILD_MARKER, name, sizeof(name));
    if (name[0] != '\0') {
        /* "fallback-cut-E-F-L.txt": the old log and store go beside it,
         * in "fallback-cut-E-F-L.old". */
        snprintf(dir, sizeof(dir), "%s/%.*s.old", node->data_dir,
                 (int)strcspn(name, "."), name);
        snprintf(marker, sizeof(marker), "%s/%s", node->data_dir,
                 FALLBACK_REBUILD_MARKER);
        if ((mkdir(dir, 0700) != 0 && errno != EEXIST) ||
            set_aside(node, dir, DATADIR_WAL) != 0 ||
            set_aside(node, dir, DATADIR_KV) != 0 ||
            set_aside(node, dir, DATADIR_SNAP) != 0 ||
            datadir_sync_dir(dir) != 0 ||
            write_small(node, FALLBACK_CUT_RECORD, name) != 0 ||
            unlink(marker) != 0 || datadir_sync_dir(node->data_dir) != 0) {
            bnode_errorf(errmsg, errmsg_len,
                         "rejoining as a replica: cannot set the old log and "
                         "store aside into %s: %s",
                         dir, strerror(errno));
            return BNODE_ESTORAGE;
        }
        /* An empty node that bootstraps would start a cluster of its
         * own: it waits for its primary instead. */
        node->opts.bootstrap = false;
        nlog(node, BNODE_LOG_WARN,
             "fallback: rejoining as an empty replica; the entries cut from "
             "this node's log are in %s/%s, its old log and store in %s",
             node->data_dir, name, dir);
    }
    read_small(node, FALLBACK_CUT_RECORD, name, sizeof(name));
    if (sscanf(name, "fallback-cut-%llu-%llu-%llu.txt", &epoch, &first,
               &last) == 3) {
        node->cut_first = first;
        node->cut_last = last;
        snprintf(node->cut_file, sizeof(node->cut_file), "%.*s",
                 (int)sizeof(node->cut_file) - 1, name);
    }
    return 0;
}

/* ---- back to Raft ------------------------------------------------------- */

/* An exit in progress: the learners to promote, in order, one change at a
 * time (§4.1). */
struct fallback_exit
{
    struct bnode *node;
    raft_id order[RAFT_CONF_MAX];
    unsigned n, next;
    bnode_fallback_exit_cb cb;
    void *arg;
};

static void exit_step(void *arg, int status, const struct kv_entry_result *res)
{
    struct fallback_exit *x = arg;
    (void)res;
    if (status == 0 && x->next < x->n) {
        raft_id id = x->order[x->next++];
        status = bnode_conf_change(x->node, RAFT_PROMOTE, id, exit_step, x);
        if (status == 0) {
            return;
        }
    }
    if (status == 0) {
        nlog(x->node, BNODE_LOG_WARN,
             "fallback: back to Raft: %u members promoted to voters, term "
             "%llu",
             x->n, (unsigned long long)raft_current_term(x->node->raft));
    }
    x->cb(x->arg, status, x->n);
    free(x);
}

int bnode_fallback_exit(struct bnode *node,
                        struct bnode_fallback_exit_report *out,
                        bnode_fallback_exit_cb cb,
                        void *arg)
{
    raft_id primary = 0;
    memset(out, 0, sizeof(*out));
    if (node->stopping || node->halted) {
        return BNODE_ESTOPPED;
    }
    const struct raft_conf *conf = raft_conf_of(node->raft);
    if (!conf_mode(conf, &primary) || primary != node->opts.id ||
        raft_state_of(node->raft) != RAFT_LEADER) {
        return BNODE_EMODE;
    }
    struct fallback_exit *x = calloc(1, sizeof(*x));
    if (x == NULL) {
        return BNODE_ENOMEM;
    }
    /* Caught up: holds every entry the primary has committed. They are
     * promoted first, so that each configuration on the way has a quorum
     * of members that are up. */
    raft_index commit = raft_commit_index(node->raft);
    unsigned members = conf->n, caught_up = 1;
    for (int pass = 0; pass < 2; pass++) {
        for (uint32_t i = 0; i < conf->n; i++) {
            const struct raft_member *m = &conf->members[i];
            if (m->role != RAFT_LEARNER) {
                continue;
            }
            bool ok = raft_match_index(node->raft, m->id) >= commit;
            if (ok == (pass == 0)) {
                x->order[x->n++] = m->id;
                caught_up += ok;
            }
        }
    }
    out->members = members;
    out->caught_up = caught_up;
    out->quorum = members / 2 + 1;
    /* The Raft cluster the exit makes needs a majority of its voters up
     * and holding the log, or it could elect no leader and take no write. */
    if (caught_up < out->quorum) {
        free(x);
        return BNODE_EQUORUM;
    }
    x->node = node;
    x->cb = cb;
    x->arg = arg;
    int rv = bnode_conf_change(node, RAFT_PROMOTE, x->order[x->next++],
                               exit_step, x);
    if (rv != 0) {
        free(x);
    }
    return rv;
}

void fallback_status(struct bnode *node, struct bnode_status *out)
{
    out->fallback = bnode_fallback_mode(node, &out->primary, &out->epoch);
    out->diverged = raft_stats_of(node->raft)->diverged;
    out->entered_last_index = node->entered_last_index;
    out->cut_first = node->cut_first;
    out->cut_last = node->cut_last;
    snprintf(out->cut_file, sizeof(out->cut_file), "%s", node->cut_file);
    out->ack_semi_sync = node->opts.fallback_semi_sync;
    out->ack_replicas = ack_replicas(node);
    out->ack_timeout_ms = ack_timeout_ms(node);
    out->ack_degrade = node->opts.fallback_degrade;
    out->ack_degraded = node->ack_degraded;
    out->entered_commit = node->entered_commit;
    if (out->fallback && out->primary != node->opts.id &&
        node->primary_heard_ms != 0) {
        out->primary_silent_ms = uv_now(node->loop) - node->primary_heard_ms;
    }
}
