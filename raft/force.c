/*
 * force.c - a configuration forced on one node, outside consensus.
 *
 * Raft needs a majority of its configuration to change that configuration
 * (§4.1). A cluster that lost its majority for good (two of three machines
 * gone) can never change it again. The primary-replica fallback
 * (docs/modes.md, docs/adr/0002-fallback-as-forced-configuration.md)
 * accepts, explicitly and with the operator's confirmation, what Raft
 * refuses: one survivor writes a new configuration into its own log, at a
 * term above every term it has seen, in which it is the only voter and the
 * other members are learners. From then on ordinary Raft runs: the only
 * voter commits on its own durable write, learners receive its log (log
 * matching truncates what they hold that it lacks), and every message of
 * an older term is refused as stale, which fences the old cluster.
 *
 * The fallback's semi-sync is here too: raft_set_commit_learners() makes
 * the commit rule also wait for k learners (replication.c applies it).
 */
#include <string.h>

#include "node.h"

int raft_force_conf(struct raft_node *node,
                    const struct raft_conf *conf,
                    raft_term min_term,
                    raft_term *term,
                    raft_index *index)
{
    uint8_t buf[RAFT_CONF_ENCODED_MAX];
    size_t len;

    if (node->in_update) {
        return RAFT_ESTATE;
    }
    if (conf == NULL || conf_validate(conf) != 0 ||
        raft_conf_voters(conf) == 0 || raft_conf_get(conf, node->id) == NULL) {
        return RAFT_EINVAL;
    }
    /* A node that never belonged to a cluster has no history to continue:
     * forcing a configuration on it would start a cluster from nothing
     * (that is raft_bootstrap()'s job). */
    if (node->n_confs == 0) {
        return RAFT_ESTATE;
    }
    raft_term t = node->term;
    if (log_last_term(&node->log) > t) {
        t = log_last_term(&node->log);
    }
    if (min_term > t) {
        t = min_term;
    }
    if (t >= RAFT_TERM_MAX) {
        return RAFT_EINVAL;
    }
    t++;

    /* Room for the configuration entry and a leader's blank entry, so
     * that nothing below fails half-way. */
    int rv = log_reserve(node, &node->log, 2);
    if (rv != 0) {
        return rv;
    }
    raft_conf_encode(conf, buf, &len);
    rv = log_append(node, &node->log, t, RAFT_ENTRY_CONF, buf, (uint32_t)len);
    if (rv != 0) {
        return rv;
    }
    raft_index at = log_last_index(&node->log);
    rv = conf_history_push(node, at, conf);
    if (rv != 0) {
        log_truncate_from(node, &node->log, at);
        return rv;
    }

    /* Figure 2: a server in a newer term is a follower of nobody until it
     * hears from that term's leader. Voting for itself keeps the term's
     * vote from going to anyone else (§5.2: one vote per term). */
    election_become_follower(node, t, 0);
    node->vote = node->id;
    if (conf_is_voter(conf, node->id) && raft_conf_voters(conf) == 1) {
        /* The only voter is a majority of one (§3.4): its own vote
         * elects it. If the progress table cannot be built it stays a
         * follower and elects itself at its next election timeout. */
        election_become_leader(node);
    }
    if (term != NULL) {
        *term = t;
    }
    if (index != NULL) {
        *index = at;
    }
    return 0;
}

raft_index raft_diverged_at(const struct raft_node *node)
{
    return node->diverged_at;
}

int raft_set_commit_learners(struct raft_node *node, unsigned k)
{
    if (node->in_update) {
        return RAFT_ESTATE;
    }
    node->commit_learners = k;
    if (node->state == RAFT_LEADER && replication_maybe_commit(node)) {
        /* Tell followers about the new commit index promptly. */
        replication_send_heartbeats(node);
    }
    return 0;
}
