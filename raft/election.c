/*
 * election.c - timeouts, campaigns and votes (§5.2, §9.6 PreVote, §6.2
 * CheckQuorum).
 */
#include <string.h>

#include "node.h"

/* splitmix64: small, fast, and good enough to spread election timeouts. The
 * state lives in the node, so two nodes never share a sequence. */
static uint64_t next_random(struct raft_node *node)
{
    uint64_t z = (node->rng += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

/* §5.2: "election timeouts are chosen randomly from a fixed interval", here
 * [election_ticks, 2 * election_ticks). */
void election_reset_timeout(struct raft_node *node)
{
    node->election_elapsed = 0;
    node->randomized_timeout =
        node->cfg.election_ticks +
        (unsigned)(next_random(node) % node->cfg.election_ticks);
}

static void leave_leadership(struct raft_node *node)
{
    if (node->state == RAFT_LEADER) {
        read_fail_all(node);
        node->transfer_target = 0;
        node->uncommitted_bytes = 0;
        node->lease_until = 0;
    }
}

void election_become_follower(struct raft_node *node,
                              raft_term term,
                              raft_id leader)
{
    bool was_leader = node->state == RAFT_LEADER;
    leave_leadership(node);
    if (!was_leader && (term > node->term || leader != node->leader)) {
        /* Reads forwarded to a leader we no longer follow (or to an older
         * term of it) may never be answered: fail them so the application
         * can retry. */
        read_fail_all(node);
    }
    if (term > node->term) {
        node->term = term;
        node->vote = 0;
    }
    node->state = RAFT_FOLLOWER;
    if (leader != 0 && leader != node->leader) {
        node->stats.leader_changes++;
    }
    node->leader = leader;
    election_reset_timeout(node);
}

void election_become_leader(struct raft_node *node)
{
    /* Build the progress table first: a leader without one can neither
     * replicate nor send heartbeats, yet would accept proposals. On
     * allocation failure stay candidate; the next vote response or the
     * election timeout tries again. */
    if (progress_rebuild(node) != 0) {
        return;
    }
    node->state = RAFT_LEADER;
    node->leader = node->id;
    node->stats.leader_changes++;
    node->heartbeat_elapsed = 0;
    node->transfer_target = 0;
    node->uncommitted_bytes = 0;
    node->lease_until = 0;
    node->timeout_now_sent = false;
    election_reset_timeout(node);
    progress_reset_all(node);
    /* §5.4.2 and §6.4: a new leader commits a blank entry of its own term;
     * that both commits what earlier terms left and lets it serve reads. On
     * allocation failure the node stays leader and retries on its next
     * heartbeat. */
    (void)replication_append_local(node, RAFT_ENTRY_NORMAL, NULL, 0);
}

static void record_vote(struct raft_node *node, raft_id from, bool granted)
{
    for (unsigned i = 0; i < node->n_votes; i++) {
        if (node->votes_from[i] == from) {
            return; /* a duplicate response counts once */
        }
    }
    if (node->n_votes < RAFT_CONF_MAX) {
        node->votes_from[node->n_votes] = from;
        node->votes_granted[node->n_votes] = granted;
        node->n_votes++;
    }
}

static void tally(const struct raft_node *node,
                  unsigned *granted,
                  unsigned *rejected)
{
    const struct raft_conf *conf = conf_current(node);
    *granted = 0;
    *rejected = 0;
    for (unsigned i = 0; i < node->n_votes; i++) {
        /* Only voters of the configuration count; a learner's answer is
         * ignored (§4.2.1). */
        if (!conf_is_voter(conf, node->votes_from[i]) &&
            !(node->cfg.breaks & RAFT_BREAK_LEARNERS_VOTE)) {
            continue;
        }
        if (node->votes_granted[i]) {
            (*granted)++;
        } else {
            (*rejected)++;
        }
    }
}

static void check_election_result(struct raft_node *node, bool pre_vote)
{
    unsigned granted, rejected;
    tally(node, &granted, &rejected);
    unsigned quorum = node_quorum(node);
    if (granted >= quorum) {
        if (pre_vote) {
            election_campaign(node, false, false);
        } else {
            election_become_leader(node);
        }
    } else if (rejected >= quorum) {
        election_become_follower(node, node->term, 0);
    }
}

void election_campaign(struct raft_node *node, bool pre_vote, bool transfer)
{
    const struct raft_conf *conf = conf_current(node);
    raft_term term;

    if (!node_is_promotable(node)) {
        return;
    }
    if (node->state != RAFT_LEADER) {
        /* Reads forwarded to the leader we stop following may never be
         * answered (it is unreachable, or a new one is about to be
         * elected): fail them now so that the application can retry,
         * rather than when a leader is known again. */
        read_fail_all(node);
    }
    leave_leadership(node);
    node->n_votes = 0;
    node->leader = 0;
    node->stats.elections_started++;
    election_reset_timeout(node);
    if (pre_vote) {
        /* §9.6: ask first whether an election could be won, without
         * disturbing anyone's term. */
        node->state = RAFT_PRE_CANDIDATE;
        term = node->term + 1;
    } else {
        node->state = RAFT_CANDIDATE;
        node->term++;
        node->vote = node->id;
        term = node->term;
    }
    record_vote(node, node->id, true);
    for (uint32_t i = 0; i < conf->n; i++) {
        const struct raft_member *m = &conf->members[i];
        if (m->id == node->id ||
            (m->role != RAFT_VOTER &&
             !(node->cfg.breaks & RAFT_BREAK_LEARNERS_VOTE))) {
            continue;
        }
        struct raft_message msg;
        memset(&msg, 0, sizeof(msg));
        msg.type = pre_vote ? RAFT_MSG_PREVOTE : RAFT_MSG_VOTE;
        msg.to = m->id;
        msg.u.vote.last_log_index = log_last_index(&node->log);
        msg.u.vote.last_log_term = log_last_term(&node->log);
        msg.u.vote.transfer = transfer;
        int rv = node_send(node, &msg);
        /* node_send stamps the current term; a pre-vote asks for the next.
         * Only if it queued the message: on allocation failure the last
         * queued message is another one, or there is none. */
        if (rv == 0 && pre_vote) {
            node->msgs_after[node->n_msgs_after - 1].term = term;
        }
    }
    check_election_result(node, pre_vote);
}

/* The only voter of a configuration with learners (the primary of the
 * primary-replica fallback) elects itself alone, so a higher term can only
 * reach it from a member following another configuration. From one of its
 * own learners, that is a configuration forced after its own: a promotion
 * elsewhere (raft_force_conf()). Campaigning at once would out-term that
 * newer primary with a stale configuration; it holds off for
 * RAFT_FENCE_HOLD_ELECTIONS election timeouts instead, time for the newer
 * term's leader to reach it and replicate the newer configuration, which
 * makes it a learner. (Holding off for a while, not for good, keeps a
 * cluster that shrank to one voter live: a learner's term can run ahead
 * in plain Raft too.) Also after a restart without its own vote in its
 * term. */
static bool only_voter_with_learners(const struct raft_node *node)
{
    const struct raft_conf *conf = conf_current(node);
    return raft_conf_voters(conf) == 1 && conf_is_voter(conf, node->id) &&
           conf->n > 1;
}

void election_hold_if_fenced(struct raft_node *node,
                             const struct raft_message *msg)
{
    /* Only an answer, from one of our learners, once: a newer primary
     * answers our heartbeats with its epoch, it never asks for votes. A
     * learner that still believes itself a voter of an older
     * configuration campaigns with ever higher terms; holding off for
     * each of those would leave the cluster without a leader (simulator
     * seed 1471), while our campaign as its only voter fixes it. */
    bool answer = msg->type == RAFT_MSG_APPEND_RESP ||
                  msg->type == RAFT_MSG_HEARTBEAT_RESP ||
                  msg->type == RAFT_MSG_PREVOTE_RESP ||
                  msg->type == RAFT_MSG_VOTE_RESP ||
                  msg->type == RAFT_MSG_SNAPSHOT_RESP;
    const struct raft_member *m = raft_conf_get(conf_current(node), msg->from);
    if (answer && node->campaign_hold == 0 && m != NULL &&
        m->role == RAFT_LEARNER && only_voter_with_learners(node)) {
        node->campaign_hold =
            RAFT_FENCE_HOLD_ELECTIONS * node->cfg.election_ticks;
    }
}

void election_hold_after_restore(struct raft_node *node)
{
    if (node->vote != node->id && only_voter_with_learners(node)) {
        node->campaign_hold =
            RAFT_FENCE_HOLD_ELECTIONS * node->cfg.election_ticks;
    }
}

void election_tick(struct raft_node *node)
{
    node->election_elapsed++;
    if (node->campaign_hold > 0) {
        node->campaign_hold--;
    }
    if (node->election_elapsed >= node->randomized_timeout &&
        node_is_promotable(node)) {
        if (node->campaign_hold > 0) {
            return;
        }
        election_campaign(node, node->cfg.pre_vote, false);
    }
}

/* §5.4.1: "the voter denies its vote if its own log is more up-to-date than
 * that of the candidate". */
static bool log_up_to_date(const struct raft_node *node,
                           raft_term last_term,
                           raft_index last_index)
{
    raft_term my_term = log_last_term(&node->log);
    return last_term > my_term ||
           (last_term == my_term && last_index >= log_last_index(&node->log));
}

void election_note_prevote(struct raft_node *node, raft_id from, raft_term term)
{
    unsigned slot = RAFT_CONF_MAX;
    for (unsigned i = 0; i < RAFT_CONF_MAX; i++) {
        if (node->prevotes[i].id == from) {
            slot = i;
            break;
        }
    }
    if (slot == RAFT_CONF_MAX) {
        slot = node->prevote_next;
        node->prevote_next = (node->prevote_next + 1) % RAFT_CONF_MAX;
    }
    node->prevotes[slot].id = from;
    node->prevotes[slot].term = term;
}

bool election_prevote_granted(const struct raft_node *node,
                              raft_id from,
                              raft_term term)
{
    for (unsigned i = 0; i < RAFT_CONF_MAX; i++) {
        if (node->prevotes[i].id == from && node->prevotes[i].term == term) {
            return true;
        }
    }
    return false;
}

int election_recv_vote(struct raft_node *node, const struct raft_message *m)
{
    bool pre_vote = m->type == RAFT_MSG_PREVOTE;
    /* Figure 2: grant if votedFor is null or candidateId, and the log is up
     * to date. A pre-vote for a later term does not bind us to anything. */
    bool can_vote = node->vote == m->from ||
                    (node->vote == 0 && node->leader == 0) ||
                    (pre_vote && m->term > node->term);
    bool granted = can_vote && log_up_to_date(node, m->u.vote.last_log_term,
                                              m->u.vote.last_log_index);
    struct raft_message resp;
    memset(&resp, 0, sizeof(resp));
    resp.type = pre_vote ? RAFT_MSG_PREVOTE_RESP : RAFT_MSG_VOTE_RESP;
    resp.to = m->from;
    resp.u.vote_resp.granted = granted;
    if (granted && !pre_vote) {
        node->vote = m->from;
        election_reset_timeout(node);
    }
    if (granted && pre_vote) {
        election_note_prevote(node, m->from, m->term);
    }
    int rv = node_send(node, &resp);
    /* A granted pre-vote answers in the candidate's future term; a refusal
     * carries ours, so a candidate behind us learns the real term. */
    if (rv == 0 && granted && pre_vote) {
        node->msgs_after[node->n_msgs_after - 1].term = m->term;
    }
    return rv;
}

void election_recv_vote_resp(struct raft_node *node,
                             const struct raft_message *m)
{
    bool pre_vote = m->type == RAFT_MSG_PREVOTE_RESP;
    if (pre_vote && node->state != RAFT_PRE_CANDIDATE) {
        return;
    }
    if (!pre_vote && node->state != RAFT_CANDIDATE) {
        return;
    }
    record_vote(node, m->from, m->u.vote_resp.granted);
    check_election_result(node, pre_vote);
}
