/*
 * step.c - every message from the network enters here.
 *
 * Messages are untrusted: a peer may be buggy, malicious or from another
 * cluster. Anything impossible (bad type, sender, index arithmetic, entry
 * sequence, snapshot bounds) is counted and dropped before it can touch the
 * node's state. Then the term rules of Figure 2 apply ("If RPC request or
 * response contains term T > currentTerm: set currentTerm = T, convert to
 * follower"), refined by PreVote and CheckQuorum, and the message goes to
 * its handler.
 */
#include <string.h>

#include "node.h"

static int reject(struct raft_node *node, uint64_t *counter)
{
    node->stats.msgs_rejected++;
    if (counter != NULL) {
        (*counter)++;
    }
    return RAFT_EINVAL;
}

static bool valid_append(const struct raft_node *node,
                         const struct raft_message *m)
{
    const struct raft_msg_append *a = &m->u.append;
    if (a->n_entries > RAFT_MSG_ENTRIES_MAX ||
        (a->n_entries > 0 && a->entries == NULL)) {
        return false;
    }
    if (a->prev_term > m->term || (a->prev_index == 0) != (a->prev_term == 0)) {
        return false;
    }
    if (a->prev_index > RAFT_INDEX_MAX - a->n_entries ||
        a->commit > RAFT_INDEX_MAX) {
        return false;
    }
    raft_term prev_term = a->prev_term;
    for (uint32_t i = 0; i < a->n_entries; i++) {
        const struct raft_entry *e = &a->entries[i];
        /* Indexes follow prev_index one by one; terms never decrease and
         * never exceed the leader's (Log Matching relies on both). */
        if (e->index != a->prev_index + 1 + i || e->term < prev_term ||
            e->term > m->term || e->term == 0) {
            return false;
        }
        if (e->len > node->cfg.max_entry_bytes ||
            (e->len > 0 && e->data == NULL)) {
            return false;
        }
        if (e->type == RAFT_ENTRY_CONF) {
            struct raft_conf conf;
            if (raft_conf_decode(e->data, e->len, &conf) != 0) {
                return false;
            }
        } else if (e->type != RAFT_ENTRY_NORMAL) {
            return false;
        }
        prev_term = e->term;
    }
    return true;
}

static bool valid_snapshot(const struct raft_message *m)
{
    const struct raft_msg_snapshot *s = &m->u.snapshot;
    if (s->meta.index == 0 || s->meta.index > RAFT_INDEX_MAX ||
        s->meta.term == 0 || s->meta.term > m->term) {
        return false;
    }
    if (s->len > RAFT_CHUNK_BYTES_MAX || (s->len > 0 && s->data == NULL)) {
        return false;
    }
    if (s->offset > s->meta.size || s->len > s->meta.size - s->offset) {
        return false;
    }
    if (s->done != (s->offset + s->len == s->meta.size)) {
        return false;
    }
    return conf_validate(&s->meta.conf) == 0 &&
           raft_conf_voters(&s->meta.conf) > 0;
}

/* Every index a message carries besides an append's and a snapshot's
 * (checked with their bodies) is at most RAFT_INDEX_MAX, and a hint term
 * at most RAFT_TERM_MAX: nothing a message says can make index arithmetic
 * wrap. */
static bool indexes_bounded(const struct raft_message *m)
{
    switch (m->type) {
    case RAFT_MSG_PREVOTE:
    case RAFT_MSG_VOTE:
        return m->u.vote.last_log_index <= RAFT_INDEX_MAX;
    case RAFT_MSG_APPEND_RESP:
        return m->u.append_resp.index <= RAFT_INDEX_MAX &&
               m->u.append_resp.hint_index <= RAFT_INDEX_MAX &&
               m->u.append_resp.hint_term <= RAFT_TERM_MAX;
    case RAFT_MSG_HEARTBEAT:
        return m->u.heartbeat.commit <= RAFT_INDEX_MAX;
    case RAFT_MSG_SNAPSHOT_RESP:
        return m->u.snapshot_resp.index <= RAFT_INDEX_MAX;
    case RAFT_MSG_READ_INDEX_RESP:
        return m->u.read_index.index <= RAFT_INDEX_MAX;
    default:
        return true;
    }
}

/* Untrusted terms: a vote request may raise our term only by a plausible
 * step. Responses carry their sender's term and may raise ours (that is
 * how a node that fell behind catches up), and so may a leader's
 * messages; both are taken only from members the transport
 * authenticated. Requests are what a stranger would forge, so:
 *
 *   - a PREVOTE or VOTE more than RAFT_TERM_JUMP_MAX terms ahead is
 *     dropped: no single message can push terms toward RAFT_TERM_MAX,
 *     where no campaign could ever succeed again;
 *   - with PreVote on, a VOTE that would raise our term must follow a
 *     pre-vote we granted to the same candidate for that term (§9.6: an
 *     honest candidate always pre-votes first), except a transfer's
 *     (§3.10: the target skips the pre-vote), which may only raise it by
 *     one, as its target was as current as its leader and so as us.
 *
 * Granting a pre-vote needs no live leader (CheckQuorum's stickiness), so
 * while a leader is alive no request moves a follower's term at all. */
static bool term_plausible(const struct raft_node *node,
                           const struct raft_message *m)
{
    if (m->type != RAFT_MSG_PREVOTE && m->type != RAFT_MSG_VOTE) {
        return true;
    }
    if (m->term <= node->term) {
        return true;
    }
    if (m->term - node->term > RAFT_TERM_JUMP_MAX) {
        return false;
    }
    if (m->type == RAFT_MSG_VOTE && node->cfg.pre_vote) {
        if (m->u.vote.transfer) {
            return m->term == node->term + 1;
        }
        return election_prevote_granted(node, m->from, m->term);
    }
    return true;
}

/* Checks what can be checked without the node's state changing. */
static int validate(struct raft_node *node, const struct raft_message *m)
{
    if (m->type < RAFT_MSG_PREVOTE || m->type > RAFT_MSG_TYPE_MAX) {
        return reject(node, &node->stats.msgs_bad_type);
    }
    if (m->to != node->id || m->from == 0 || m->from == node->id) {
        return reject(node, &node->stats.msgs_bad_sender);
    }
    if (m->term == 0 || m->term > RAFT_TERM_MAX || !indexes_bounded(m)) {
        return reject(node, &node->stats.msgs_bad_index);
    }
    const struct raft_conf *conf = conf_current(node);
    switch (m->type) {
    case RAFT_MSG_PREVOTE:
    case RAFT_MSG_VOTE:
        /* §4.1: a server votes for a candidate outside its latest
         * configuration: a new voter may not know the configuration that
         * made it one, and the cluster may need its vote. Removed servers
         * are kept from disrupting by CheckQuorum's leader stickiness
         * (§4.2.3) and PreVote instead. */
        if (m->u.vote.last_log_term > m->term) {
            return reject(node, &node->stats.msgs_bad_index);
        }
        break;
    case RAFT_MSG_PREVOTE_RESP:
    case RAFT_MSG_VOTE_RESP:
    case RAFT_MSG_APPEND_RESP:
    case RAFT_MSG_HEARTBEAT_RESP:
    case RAFT_MSG_SNAPSHOT_RESP:
    case RAFT_MSG_READ_INDEX:
        if (raft_conf_get(conf, m->from) == NULL) {
            return reject(node, &node->stats.msgs_bad_sender);
        }
        break;
    case RAFT_MSG_APPEND:
        /* A leader may be outside our configuration: it is being removed
         * (§4.2.2) or we are new and know no configuration yet. */
        if (!valid_append(node, m)) {
            return reject(node, &node->stats.msgs_bad_entries);
        }
        break;
    case RAFT_MSG_SNAPSHOT:
        if (!valid_snapshot(m)) {
            return reject(node, &node->stats.msgs_bad_index);
        }
        break;
    default:
        break;
    }
    return 0;
}

static bool from_leader_type(uint8_t type)
{
    return type == RAFT_MSG_APPEND || type == RAFT_MSG_HEARTBEAT ||
           type == RAFT_MSG_SNAPSHOT;
}

/* Returns true if the message should go on to its handler. */
static bool handle_term(struct raft_node *node, const struct raft_message *m)
{
    if (m->term > node->term) {
        if ((m->type == RAFT_MSG_VOTE || m->type == RAFT_MSG_PREVOTE) &&
            !m->u.vote.transfer && node->leader != 0 &&
            node->election_elapsed < node->cfg.election_ticks &&
            (node->cfg.check_quorum || !node->cfg.pre_vote)) {
            /* §4.2.3: "if a server receives a RequestVote request within
             * the minimum election timeout of hearing from a current
             * leader, it does not update its term or grant its vote."
             * Without it a removed server, which hears nothing and keeps
             * campaigning with ever higher terms, deposes every leader.
             * PreVote alone already stops that (a removed server's log
             * falls behind, so its pre-votes fail), so with PreVote and
             * without CheckQuorum a live leader is not needed to refuse:
             * followers then stay free to elect a new leader when theirs
             * lost the majority but does not know it. */
            return false;
        }
        if (!term_plausible(node, m)) {
            /* Dropped without an answer, like a vote refused for
             * stickiness: an honest candidate that skipped us still wins
             * with the others, or pre-votes again. */
            node->stats.msgs_bad_term++;
            return false;
        }
        if (m->type == RAFT_MSG_PREVOTE) {
            return true; /* never change our term for a pre-vote */
        }
        if (m->type == RAFT_MSG_PREVOTE_RESP && m->u.vote_resp.granted) {
            return true; /* granted in our future term; see election.c */
        }
        election_hold_if_fenced(node, m);
        election_become_follower(node, m->term,
                                 from_leader_type(m->type) ? m->from : 0);
        return true;
    }
    if (m->term < node->term) {
        node->stats.msgs_stale_term++;
        if (from_leader_type(m->type)) {
            /* Tell a stale leader our term. Otherwise a member whose term
             * ran ahead while it could not win (cut off, or a learner
             * still holding an old configuration that made it a voter)
             * would never hear from the leader again: its vote requests
             * are dropped by the voters, and with PreVote or CheckQuorum
             * nothing else raises the leader's term. The leader steps
             * down once and the next election overtakes that term. */
            struct raft_message resp;
            memset(&resp, 0, sizeof(resp));
            resp.type = RAFT_MSG_APPEND_RESP;
            resp.to = m->from;
            (void)node_send(node, &resp);
        } else if (m->type == RAFT_MSG_PREVOTE) {
            struct raft_message resp;
            memset(&resp, 0, sizeof(resp));
            resp.type = RAFT_MSG_PREVOTE_RESP;
            resp.to = m->from;
            (void)node_send(node, &resp);
        }
        return false;
    }
    return true;
}

int raft_step(struct raft_node *node, const struct raft_message *m)
{
    int rv;
    if (node->in_update) {
        return RAFT_ESTATE;
    }
    rv = validate(node, m);
    if (rv != 0) {
        return rv;
    }
    if (!handle_term(node, m)) {
        return 0;
    }
    switch (m->type) {
    case RAFT_MSG_PREVOTE:
    case RAFT_MSG_VOTE:
        return election_recv_vote(node, m);
    case RAFT_MSG_PREVOTE_RESP:
        /* A grant echoes the term we asked for; anything else is stale. */
        if (m->u.vote_resp.granted ? m->term == node->term + 1
                                   : m->term == node->term) {
            election_recv_vote_resp(node, m);
        }
        return 0;
    case RAFT_MSG_VOTE_RESP:
        election_recv_vote_resp(node, m);
        return 0;
    case RAFT_MSG_APPEND:
    case RAFT_MSG_HEARTBEAT:
    case RAFT_MSG_SNAPSHOT:
        if (node->state == RAFT_LEADER) {
            /* Two leaders in one term is impossible (§5.2, Election
             * Safety): the message is forged or from a broken peer. */
            return reject(node, &node->stats.msgs_bad_sender);
        }
        if (m->type == RAFT_MSG_APPEND) {
            return replication_recv_append(node, m);
        }
        if (m->type == RAFT_MSG_HEARTBEAT) {
            return replication_recv_heartbeat(node, m);
        }
        return replication_recv_snapshot(node, m);
    case RAFT_MSG_APPEND_RESP:
        if (node->state == RAFT_LEADER && m->u.append_resp.success &&
            m->u.append_resp.index > log_last_index(&node->log)) {
            return reject(node, &node->stats.msgs_bad_index);
        }
        replication_recv_append_resp(node, m);
        return 0;
    case RAFT_MSG_HEARTBEAT_RESP:
        replication_recv_heartbeat_resp(node, m);
        return 0;
    case RAFT_MSG_SNAPSHOT_RESP:
        replication_recv_snapshot_resp(node, m);
        return 0;
    case RAFT_MSG_TIMEOUT_NOW:
        /* §3.10: only our leader may ask us to skip the election timeout. */
        if (m->from == node->leader && node->state == RAFT_FOLLOWER) {
            election_campaign(node, false, true);
        }
        return 0;
    case RAFT_MSG_READ_INDEX:
        return read_recv_request(node, m);
    case RAFT_MSG_READ_INDEX_RESP:
        read_recv_response(node, m);
        return 0;
    default:
        return 0;
    }
}

void raft_tick(struct raft_node *node)
{
    if (node->in_update) {
        return;
    }
    node->ticks++;
    if (node->state == RAFT_LEADER) {
        replication_tick(node);
    } else {
        read_tick(node);
        election_tick(node);
    }
}
