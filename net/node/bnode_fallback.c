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
#include <string.h>

#include "bnode_internal.h"
#include "nlog.h"

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

bool bnode_fallback_mode(struct bnode *node, raft_id *primary,
                         raft_term *epoch)
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

int bnode_fallback_enter(struct bnode *node,
                         bool force,
                         struct bnode_fallback_report *out)
{
    if (node->stopping || node->halted) {
        return BNODE_ESTOPPED;
    }
    if (node->frozen) {
        return BNODE_EBUSY;
    }
    const struct raft_conf *old = raft_conf_of(node->raft);
    if (conf_mode(old, NULL)) {
        return BNODE_EMODE;
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
    int rv = raft_force_conf(node->raft, &conf, 0, &out->epoch,
                             &out->conf_index);
    switch (rv) {
    case 0:
        break;
    case RAFT_ENOMEM:
        return BNODE_ENOMEM;
    default:
        /* A node that never joined a cluster, or a lone member: nothing
         * to fall back from. */
        return BNODE_EINVAL;
    }
    node->entered_last_index = out->last_index;
    node->entered_commit = out->commit;
    nlog(node, BNODE_LOG_WARN,
         "fallback: this node is now the primary of a primary-replica group "
         "at epoch %llu (configuration entry %llu)%s; it held entries up to "
         "%llu and the highest commit index it had learned was %llu: "
         "entries %llu..%llu are now committed, and whatever the lost "
         "majority committed beyond %llu without sending it here is lost",
         (unsigned long long)out->epoch, (unsigned long long)out->conf_index,
         force ? " (forced)" : "", (unsigned long long)out->last_index,
         (unsigned long long)out->commit,
         (unsigned long long)(out->commit + 1),
         (unsigned long long)out->last_index,
         (unsigned long long)out->commit);
    bnode_kick(node);
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

void fallback_status(struct bnode *node, struct bnode_status *out)
{
    out->fallback = bnode_fallback_mode(node, &out->primary, &out->epoch);
    out->diverged = raft_stats_of(node->raft)->diverged;
    out->entered_last_index = node->entered_last_index;
    out->entered_commit = node->entered_commit;
    if (out->fallback && out->primary != node->opts.id &&
        node->primary_heard_ms != 0) {
        out->primary_silent_ms = uv_now(node->loop) - node->primary_heard_ms;
    }
}
