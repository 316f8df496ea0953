/*
 * membership.c - configuration changes one server at a time (chapter 4)
 * and leadership transfer (§3.10).
 */
#include <string.h>

#include "node.h"

/* The configuration changed (appended, truncated away, or installed with a
 * snapshot): the leader tracks exactly the new members. */
void membership_on_conf_change(struct raft_node *node)
{
    if (node->state != RAFT_LEADER) {
        return;
    }
    /* On allocation failure the old table stays; members missing from it
     * are simply not replicated to until the next change. */
    (void)progress_rebuild(node);
    struct raft_progress *self = progress_get(node, node->id);
    if (self != NULL) {
        self->match = node->stable;
        self->state = PROGRESS_REPLICATE;
    }
    if (node->transfer_target != 0 &&
        !conf_is_voter(conf_current(node), node->transfer_target)) {
        node->transfer_target = 0;
    }
}

static void send_timeout_now(struct raft_node *node, raft_id to)
{
    struct raft_message msg;
    memset(&msg, 0, sizeof(msg));
    msg.type = RAFT_MSG_TIMEOUT_NOW;
    msg.to = to;
    node->timeout_now_sent = true;
    (void)node_send(node, &msg);
}

/* §4.2.2: a leader removed from the configuration keeps managing the
 * cluster until the entry that removes it commits, then steps down. It
 * hands over to the most up-to-date voter so the cluster does not wait for
 * an election timeout. */
void membership_on_commit(struct raft_node *node)
{
    const struct raft_conf *conf = conf_current(node);
    if (node->state != RAFT_LEADER || conf_is_voter(conf, node->id) ||
        conf_current_index(node) > node->commit) {
        return;
    }
    raft_id best = 0;
    raft_index best_match = 0;
    for (uint32_t i = 0; i < conf->n; i++) {
        const struct raft_member *m = &conf->members[i];
        struct raft_progress *pr = progress_get(node, m->id);
        if (m->role == RAFT_VOTER && pr != NULL && pr->match >= best_match &&
            pr->match == log_last_index(&node->log)) {
            best = m->id;
            best_match = pr->match;
        }
    }
    /* Spread the commit index first, then step down. */
    replication_send_heartbeats(node);
    if (best != 0) {
        send_timeout_now(node, best);
    }
    election_become_follower(node, node->term, 0);
}

void membership_on_match(struct raft_node *node, struct raft_progress *pr)
{
    if (node->transfer_target == pr->id &&
        pr->match == log_last_index(&node->log)) {
        send_timeout_now(node, pr->id);
    }
}

void membership_tick(struct raft_node *node)
{
    if (node->transfer_target == 0) {
        return;
    }
    /* §3.10: "If the transfer does not complete within an election timeout,
     * the prior leader aborts the transfer and resumes accepting client
     * requests." */
    if (++node->transfer_elapsed >= node->cfg.election_ticks) {
        node->transfer_target = 0;
    }
}

int raft_propose_conf_change(struct raft_node *node,
                             enum raft_conf_change change,
                             raft_id id,
                             raft_index *index)
{
    struct raft_conf conf;
    uint8_t buf[RAFT_CONF_ENCODED_MAX];
    size_t len;
    struct raft_member *m = NULL;

    if (node->in_update) {
        return RAFT_ESTATE;
    }
    if (node->state != RAFT_LEADER) {
        return RAFT_ENOTLEADER;
    }
    if (node->transfer_target != 0) {
        return RAFT_ETRANSFER;
    }
    /* One change at a time, and only once this leader committed an entry of
     * its term: otherwise an uncommitted change of an earlier leader and
     * ours could form disjoint majorities (the single-server change bug
     * described on raft-dev in 2015). */
    if (conf_current_index(node) > node->commit ||
        log_term_at(&node->log, node->commit) != node->term) {
        return RAFT_ECONFPENDING;
    }
    if (id == 0) {
        return RAFT_EINVAL;
    }
    conf = *conf_current(node);
    for (uint32_t i = 0; i < conf.n; i++) {
        if (conf.members[i].id == id) {
            m = &conf.members[i];
        }
    }
    switch (change) {
    case RAFT_ADD_LEARNER:
    case RAFT_ADD_VOTER:
        if (m != NULL) {
            return RAFT_EINVAL;
        }
        if (conf.n == RAFT_CONF_MAX) {
            return RAFT_EINVAL;
        }
        conf.members[conf.n].id = id;
        conf.members[conf.n].role =
            change == RAFT_ADD_VOTER ? RAFT_VOTER : RAFT_LEARNER;
        conf.n++;
        break;
    case RAFT_PROMOTE:
        if (m == NULL) {
            return RAFT_ENOTFOUND;
        }
        if (m->role != RAFT_LEARNER) {
            return RAFT_EINVAL;
        }
        m->role = RAFT_VOTER;
        break;
    case RAFT_REMOVE:
        if (m == NULL) {
            return RAFT_ENOTFOUND;
        }
        *m = conf.members[conf.n - 1];
        conf.n--;
        if (raft_conf_voters(&conf) == 0) {
            return RAFT_EINVAL;
        }
        break;
    default:
        return RAFT_EINVAL;
    }
    raft_conf_encode(&conf, buf, &len);
    int rv =
        replication_append_local(node, RAFT_ENTRY_CONF, buf, (uint32_t)len);
    if (rv != 0) {
        return rv;
    }
    raft_index at = log_last_index(&node->log);
    rv = conf_history_push(node, at, &conf);
    if (rv == 0) {
        /* A member missing from the progress table would never be
         * replicated to, so a failure to extend it undoes the change and
         * the caller retries. Once it succeeded, the rebuild in
         * membership_on_conf_change() allocates nothing. */
        rv = progress_rebuild(node);
        if (rv != 0) {
            conf_history_truncate(node, at);
        }
    }
    if (rv != 0) {
        log_truncate_from(node, &node->log, at);
        node->uncommitted_bytes -= len;
        return rv;
    }
    /* §4.1: the new configuration takes effect as soon as it is in the
     * log, without waiting for it to commit. */
    membership_on_conf_change(node);
    if (index != NULL) {
        *index = at;
    }
    return 0;
}

int raft_transfer_leadership(struct raft_node *node, raft_id target)
{
    if (node->in_update) {
        return RAFT_ESTATE;
    }
    if (node->state != RAFT_LEADER) {
        return RAFT_ENOTLEADER;
    }
    if (target == node->id) {
        return RAFT_EINVAL;
    }
    if (!conf_is_voter(conf_current(node), target)) {
        return RAFT_ENOTFOUND;
    }
    struct raft_progress *pr = progress_get(node, target);
    if (pr == NULL) {
        return RAFT_ENOTFOUND;
    }
    node->transfer_target = target;
    node->transfer_elapsed = 0;
    /* §3.10: bring the target's log up to date, then tell it to time out. */
    if (pr->match == log_last_index(&node->log)) {
        send_timeout_now(node, target);
    } else {
        pr->want_empty = true;
    }
    return 0;
}
