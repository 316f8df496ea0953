/*
 * bnode_scrub.c - the node's side of integrity at rest (docs/operations.md,
 * "Damaged data"):
 *
 *   - damage found by any read or apply (kv_corrupt()) halts the node with
 *     a message telling the operator to rebuild it from a peer's snapshot:
 *     from then on it serves nothing, since a replica that is known to
 *     hold damaged data must not answer for the cluster;
 *   - a scrub re-reads the whole store, a bounded number of bytes per
 *     tick (opts.scrub_bytes_per_sec), so damage in data nobody reads is
 *     found too;
 *   - the leader proposes a digest entry (KV_CMD_DIGEST) every
 *     opts.digest_every_ms. Every replica records its store digest at each
 *     such entry, and each entry also carries the leader's digest at the
 *     previous one, which every replica compares with its own: replicas
 *     that applied the same log to different states (a nondeterministic
 *     apply, a store edited behind the node's back) are reported in the
 *     log, the status and the metrics;
 *   - with opts.verify_at_start, the whole store is checked by a child
 *     process before this one maps it: LMDB stops a process with an
 *     assertion on some damaged pages, and the child's death is then a
 *     refusal with a message, not the node's.
 */
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bnode_internal.h"
#include "nlog.h"

/* What the operator is told to do about a damaged store. */
#define REBUILD_HINT                                                    \
    "rebuild this node from a peer's snapshot (BSNAPSHOT on a healthy " \
    "member, then `ballotd restore`; docs/operations.md \"Damaged data\")"

/* The smallest scrub step, so that a low rate still makes progress in
 * whole records rather than stalling on one. */
#define SCRUB_STEP_MIN 4096u

int scrub_open(struct bnode *node)
{
    if (node->opts.scrub_bytes_per_sec == 0) {
        return 0;
    }
    return kv_scrub_create(node->kv, &node->scrub) == 0 ? 0 : BNODE_ENOMEM;
}

void scrub_close(struct bnode *node)
{
    kv_scrub_destroy(node->scrub);
    node->scrub = NULL;
}

bool scrub_check_damage(struct bnode *node)
{
    char why[256], msg[512];
    if (node->kv == NULL || !kv_corrupt(node->kv, why, sizeof(why))) {
        return false;
    }
    if (!node->damaged) {
        node->damaged = true;
        snprintf(msg, sizeof(msg), "store damaged: %s; %s", why, REBUILD_HINT);
        bnode_halt(node, msg);
    }
    return true;
}

static void digest_proposed_done(void *arg,
                                 int status,
                                 const struct kv_entry_result *res)
{
    struct bnode *node = arg;
    (void)status;
    (void)res;
    node->digest_proposed = false;
}

/* Proposes a digest entry carrying our digest at our newest mark. */
static void propose_digest(struct bnode *node)
{
    uint8_t buf[32];
    size_t len = 0;
    struct kv_cmd cmd;
    memset(&cmd, 0, sizeof(cmd));
    cmd.type = KV_CMD_DIGEST;
    if (node->n_digest_marks > 0) {
        const struct digest_mark *m =
            &node->digest_marks[(node->n_digest_marks - 1) %
                                (sizeof(node->digest_marks) /
                                 sizeof(node->digest_marks[0]))];
        cmd.digest_index = m->index;
        cmd.digest = m->digest;
    }
    if (kv_cmd_encode(&cmd, buf, sizeof(buf), &len) != 0) {
        return;
    }
    if (bnode_propose(node, buf, len, digest_proposed_done, node) == 0) {
        node->digest_proposed = true;
    }
}

void scrub_on_tick(struct bnode *node)
{
    if (node->halted || node->stopping || node->kv == NULL) {
        return;
    }
    if (scrub_check_damage(node)) {
        return;
    }
    if (node->scrub != NULL && !node->snap_staging) {
        uint64_t per_tick =
            node->opts.scrub_bytes_per_sec * node->opts.tick_ms / 1000;
        node->scrub_credit += per_tick > 0 ? per_tick : 1;
        if (node->scrub_credit >= SCRUB_STEP_MIN) {
            struct kv_scrub_stats before, after;
            bool done = false;
            kv_scrub_get_stats(node->scrub, &before);
            int rv =
                kv_scrub_step(node->kv, node->scrub, node->scrub_credit, &done);
            kv_scrub_get_stats(node->scrub, &after);
            uint64_t used = after.bytes - before.bytes;
            node->scrub_credit =
                used >= node->scrub_credit ? 0 : node->scrub_credit - used;
            if (rv == KV_ECORRUPT) {
                (void)scrub_check_damage(node);
                return;
            }
            if (done) {
                nlog(node, BNODE_LOG_DEBUG,
                     "scrub: pass %" PRIu64 " done, %" PRIu64
                     " records checked",
                     after.passes, after.records);
            }
        }
    }
    uint64_t now = uv_now(node->loop);
    if (node->opts.digest_every_ms > 0 && !node->digest_proposed &&
        raft_state_of(node->raft) == RAFT_LEADER &&
        now - node->digest_last_ms >= node->opts.digest_every_ms) {
        node->digest_last_ms = now;
        propose_digest(node);
    }
}

/* The digest this node recorded at digest entry @index, if it still
 * holds it. */
static bool mark_find(const struct bnode *node, uint64_t index, uint64_t *d)
{
    unsigned cap = sizeof(node->digest_marks) / sizeof(node->digest_marks[0]);
    unsigned n = node->n_digest_marks < cap ? node->n_digest_marks : cap;
    for (unsigned i = 0; i < n; i++) {
        if (node->digest_marks[i].index == index) {
            *d = node->digest_marks[i].digest;
            return true;
        }
    }
    return false;
}

void scrub_after_apply(struct bnode *node, const struct kv_apply_result *res)
{
    unsigned cap = sizeof(node->digest_marks) / sizeof(node->digest_marks[0]);
    for (size_t i = 0; i < res->n_entries; i++) {
        const struct kv_entry_result *e = &res->entries[i];
        if (e->cmd_type != KV_CMD_DIGEST || e->code != 0 || e->skipped) {
            continue;
        }
        uint64_t mine;
        if (e->digest_check_index != 0 &&
            mark_find(node, e->digest_check_index, &mine)) {
            if (mine == e->digest_check) {
                node->digest_checks++;
            } else {
                node->digest_mismatches++;
                nlog(node, BNODE_LOG_ERROR,
                     "store diverged: at index %" PRIu64
                     " this node's store digest is %016" PRIx64
                     " and the leader's %016" PRIx64
                     "; the replica that differs from the others must be "
                     "rebuilt: " REBUILD_HINT,
                     e->digest_check_index, mine, e->digest_check);
            }
        }
        struct digest_mark *m = &node->digest_marks[node->n_digest_marks % cap];
        m->index = e->index;
        m->digest = e->digest;
        node->n_digest_marks++;
    }
}

void scrub_status(struct bnode *node, struct bnode_status *out)
{
    unsigned cap = sizeof(node->digest_marks) / sizeof(node->digest_marks[0]);
    if (node->n_digest_marks > 0) {
        const struct digest_mark *m =
            &node->digest_marks[(node->n_digest_marks - 1) % cap];
        out->digest_index = m->index;
        out->digest = m->digest;
    }
    out->digest_checks = node->digest_checks;
    out->digest_mismatches = node->digest_mismatches;
    if (node->scrub != NULL) {
        struct kv_scrub_stats st;
        kv_scrub_get_stats(node->scrub, &st);
        out->scrub_passes = st.passes;
        out->scrub_bytes = st.bytes;
    }
    out->store_damaged = node->damaged;
}

/* The child: opens the store, checks all of it, and exits 0 (intact, or
 * not openable: the parent's own open says why), 1 (damaged: the reason
 * on @fd). LMDB's assertions print to stderr, which is @fd as well. */
static void verify_child(const char *kv_dir, uint64_t map_size, int fd)
{
    struct rlimit no_core = {0, 0};
    struct kv_options ko;
    struct kv_store *kv = NULL;
    struct kv_scrub *sc = NULL;
    char err[256];
    bool done = false;
    int rv;
    (void)setrlimit(RLIMIT_CORE, &no_core);
    (void)dup2(fd, STDERR_FILENO);
    memset(&ko, 0, sizeof(ko));
    /* The node's own map: a larger one would grow the data file. */
    ko.map_size = map_size;
    if (kv_open(kv_dir, &ko, &kv, err, sizeof(err)) != 0) {
        _exit(0);
    }
    rv = kv_scrub_create(kv, &sc);
    while (rv == 0 && !done) {
        rv = kv_scrub_step(kv, sc, 0, &done);
    }
    if (rv == KV_ECORRUPT) {
        char why[256];
        (void)kv_corrupt(kv, why, sizeof(why));
        dprintf(fd, "%s", why);
        _exit(1);
    }
    /* kv_close() syncs nothing here: nothing was written (or only an
     * upgrade, which synced itself). */
    kv_scrub_destroy(sc);
    kv_close(kv);
    _exit(0);
}

int scrub_verify_at_start(struct bnode *node,
                          const char *kv_dir,
                          char *errmsg,
                          size_t errmsg_len)
{
    char out[512] = "";
    size_t have = 0;
    int pipefd[2], status = 0;
    if (pipe(pipefd) != 0) {
        return 0; /* no check, as without verify_at_start */
    }
    pid_t pid = fork();
    if (pid < 0) {
        close(pipefd[0]);
        close(pipefd[1]);
        return 0;
    }
    if (pid == 0) {
        close(pipefd[0]);
        verify_child(kv_dir, node->opts.kv_map_size, pipefd[1]);
    }
    close(pipefd[1]);
    for (;;) {
        ssize_t n = read(pipefd[0], out + have, sizeof(out) - 1 - have);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            break;
        }
        have += (size_t)n;
        if (have == sizeof(out) - 1) {
            char sink[256];
            while (read(pipefd[0], sink, sizeof(sink)) > 0) {
            }
            break;
        }
    }
    close(pipefd[0]);
    out[have] = 0;
    out[strcspn(out, "\n")] = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0) {
        nlog(node, BNODE_LOG_INFO, "store %s checked: intact", kv_dir);
        return 0;
    }
    if (WIFSIGNALED(status)) {
        bnode_errorf(errmsg, errmsg_len,
                     "store %s is damaged: checking it stopped on signal %d "
                     "(%s); refusing to start: " REBUILD_HINT,
                     kv_dir, WTERMSIG(status),
                     out[0] != 0 ? out : "no message");
    } else {
        bnode_errorf(
            errmsg, errmsg_len,
            "store %s is damaged: %s; refusing to start: " REBUILD_HINT, kv_dir,
            out[0] != 0 ? out : "unknown damage");
    }
    return BNODE_ESTORAGE;
}
