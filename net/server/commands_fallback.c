/*
 * commands_fallback.c - BFALLBACK, the primary-replica fallback's commands
 * (docs/modes.md, docs/protocol.md):
 *
 *   BFALLBACK ENTER <primary-id> [FORCE]    (on the survivor)
 *   BFALLBACK PROMOTE <id> [FORCE]          (on the replica to promote)
 *   BFALLBACK EXIT                          (on the primary)
 *   WAIT numreplicas timeout                (Redis's, on the primary)
 *
 * ENTER and PROMOTE run on the node that becomes the primary. The id is
 * repeated on purpose: the operator names the node, and a command sent to the
 * wrong endpoint is refused instead of making the wrong node primary.
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "commands.h"

enum fallback_step { STEP_ENTER, STEP_PROMOTE };

static void fallback_step(struct cmd_req *r,
                          enum fallback_step step,
                          raft_id primary,
                          bool force)
{
    struct bnode *node = r->client->env->node;
    struct bnode_status st;
    const char *name = step == STEP_ENTER ? "ENTER" : "PROMOTE";
    bnode_status(node, &st);
    if (primary != st.id) {
        rep_errorf(r,
                   "ERR this is node %" PRIu64
                   ": run BFALLBACK %s on node "
                   "%" PRIu64 ", the node that becomes the primary",
                   (uint64_t)st.id, name, (uint64_t)primary);
        return;
    }
    struct bnode_fallback_report rep;
    int rc = step == STEP_ENTER ? bnode_fallback_enter(node, force, &rep)
                                : bnode_fallback_promote(node, force, &rep);
    switch (rc) {
    case 0:
        break;
    case BNODE_EQUORUM:
        if (step == STEP_ENTER) {
            rep_errorf(r,
                       "ERR refused: a quorum looks reachable (%u of %u "
                       "voters connected%s), so Raft can still make "
                       "progress; add FORCE only if the others are gone for "
                       "good",
                       rep.voters_reachable, rep.quorum,
                       st.leader != 0 ? ", and a leader is known" : "");
        } else {
            rep_errorf(r,
                       "ERR refused: the primary, node %" PRIu64
                       ", was heard within an election timeout; add FORCE "
                       "only if it is gone (two primaries would both take "
                       "writes until the newer epoch reaches the older)",
                       (uint64_t)st.primary);
        }
        return;
    case BNODE_EMODE:
        if (step == STEP_ENTER) {
            rep_errorf(r,
                       "ERR already in primary-replica mode (primary "
                       "%" PRIu64 ", epoch %" PRIu64
                       "): use BFALLBACK PROMOTE or EXIT",
                       (uint64_t)st.primary, (uint64_t)st.epoch);
        } else {
            rep_errorf(r,
                       "ERR node %" PRIu64
                       " is not a replica in "
                       "primary-replica mode (mode %s, primary %" PRIu64 ")",
                       (uint64_t)st.id,
                       st.fallback ? "primary-replica" : "raft",
                       (uint64_t)st.primary);
        }
        return;
    case BNODE_ELAGGING:
        rep_errorf(r,
                   "ERR refused: node %" PRIu64 " has applied %" PRIu64
                   " of the %" PRIu64
                   " entries it knows committed; wait for it to catch up, "
                   "or add FORCE to lose the rest",
                   (uint64_t)st.id, (uint64_t)st.applied, (uint64_t)st.commit);
        return;
    case BNODE_EBUSY:
        rep_error(r, "BUSY a batch is being persisted, not applied: retry");
        return;
    default:
        rep_errorf(r, "ERR fallback refused: %s", bnode_strerror(rc));
        return;
    }
    rep_map(r, 6);
    rep_field_int(r, "epoch", (int64_t)rep.epoch);
    rep_field_int(r, "conf_index", (int64_t)rep.conf_index);
    rep_field_int(r, "last_index", (int64_t)rep.last_index);
    rep_field_int(r, "commit", (int64_t)rep.commit);
    rep_field_int(r, "voters_reachable", (int64_t)rep.voters_reachable);
    rep_field_int(r, "quorum", (int64_t)rep.quorum);
}

static void exit_done(void *arg, int status, unsigned n)
{
    struct cmd_req *r = arg;
    if (status == 0) {
        rep_map(r, 1);
        rep_field_int(r, "promoted", (int64_t)n);
    } else if (status == BNODE_ECONFPENDING) {
        rep_error(r,
                  "BUSY another membership change is in progress: run "
                  "BFALLBACK EXIT again to promote the rest");
    } else {
        rep_errorf(r,
                   "ERR exit stopped: %s; BFALLBACK EXIT again promotes "
                   "the rest",
                   bnode_strerror(status));
    }
    cmd_req_finish(r);
}

static void fallback_exit(struct cmd_req *r)
{
    struct bnode *node = r->client->env->node;
    struct bnode_fallback_exit_report rep;
    int rc = bnode_fallback_exit(node, &rep, exit_done, r);
    if (rc == 0) {
        return; /* exit_done() answers */
    }
    if (rc == BNODE_EQUORUM) {
        rep_errorf(r,
                   "ERR refused: %u of the %u members hold every committed "
                   "entry, and a Raft cluster of %u needs %u: bring more "
                   "replicas back and let them catch up",
                   rep.caught_up, rep.members, rep.members, rep.quorum);
    } else if (rc == BNODE_EMODE) {
        rep_error(r,
                  "ERR not the primary of a primary-replica group: run "
                  "BFALLBACK EXIT on the primary");
    } else if (rc == BNODE_ECONFPENDING) {
        rep_error(r, "BUSY a membership change is in progress: retry");
    } else {
        rep_errorf(r, "ERR exit refused: %s", bnode_strerror(rc));
    }
    cmd_req_finish(r);
}

CMD_DECL(cmd_fallback)
{
    if (argc == 2 && cmd_arg_is(argv[1], argvlen[1], "exit")) {
        fallback_exit(r);
        return;
    }
    int64_t id;
    enum fallback_step step = STEP_ENTER;
    bool known = cmd_arg_is(argv[1], argvlen[1], "enter");
    if (!known && cmd_arg_is(argv[1], argvlen[1], "promote")) {
        known = true;
        step = STEP_PROMOTE;
    }
    if (known && argc >= 3) {
        bool force = argc == 4 && cmd_arg_is(argv[3], argvlen[3], "force");
        if ((argc != 3 && !force) ||
            cmd_parse_i64(argv[2], argvlen[2], &id) != 0 || id <= 0) {
            rep_errorf(r, "ERR syntax: BFALLBACK %s <id> [FORCE]",
                       step == STEP_ENTER ? "ENTER" : "PROMOTE");
        } else {
            fallback_step(r, step, (raft_id)id, force);
        }
    } else if (known) {
        rep_errorf(r, "ERR syntax: BFALLBACK %s <id> [FORCE]",
                   step == STEP_ENTER ? "ENTER" : "PROMOTE");
    } else {
        rep_errorf(r, "ERR unknown BFALLBACK subcommand '%.*s'",
                   (int)(argvlen[1] < 32 ? argvlen[1] : 32), argv[1]);
    }
    cmd_req_finish(r);
}

size_t info_fallback(struct bnode *node,
                     const struct bnode_status *st,
                     char *buf,
                     size_t cap,
                     size_t n)
{
    if (st->state == RAFT_LEADER) {
        unsigned replicas = 0;
        for (uint32_t i = 0; i < st->conf.n && i < RAFT_CONF_MAX; i++) {
            replicas += st->conf.members[i].role == RAFT_LEARNER;
        }
        n = cmd_appendf(buf, cap, n,
                        "# Replication\r\nrole:master\r\n"
                        "ballot_mode:primary-replica\r\nepoch:%" PRIu64
                        "\r\nconnected_slaves:%u\r\n",
                        (uint64_t)st->epoch, replicas);
        unsigned k = 0;
        for (uint32_t i = 0; i < st->conf.n && i < RAFT_CONF_MAX; i++) {
            if (st->conf.members[i].role != RAFT_LEARNER) {
                continue;
            }
            const struct bnode_member *m =
                bnode_member_addr(node, st->conf.members[i].id);
            /* Redis's lag is seconds since the replica's last ack; ours
             * is how long ago the oldest entry it lacks was appended. */
            n = cmd_appendf(buf, cap, n,
                            "slave%u:ip=%s,port=%d,state=%s,offset=%" PRIu64
                            ",lag=%" PRIu64 ",id=%" PRIu64 "\r\n",
                            k++, m != NULL ? m->host : "?",
                            m != NULL ? m->client_port : 0,
                            st->match[i] > 0 ? "online" : "wait_bgsave",
                            (uint64_t)st->match[i], st->lag_ms[i] / 1000u,
                            (uint64_t)st->conf.members[i].id);
        }
        return cmd_appendf(buf, cap, n,
                           "master_repl_offset:%" PRIu64 "\r\n\r\n",
                           (uint64_t)st->last_index);
    }
    const char *la = bnode_leader_addr(node);
    const char *colon = la != NULL ? strrchr(la, ':') : NULL;
    return cmd_appendf(
        buf, cap, n,
        "# Replication\r\nrole:slave\r\nballot_mode:primary-replica\r\n"
        "epoch:%" PRIu64 "\r\nmaster_id:%" PRIu64
        "\r\nmaster_host:%.*s\r\nmaster_port:%s\r\n"
        "master_link_status:%s\r\nmaster_last_io_seconds_ago:%" PRIu64
        "\r\nslave_repl_offset:%" PRIu64
        "\r\nslave_read_only:1\r\nconnected_slaves:0\r\n\r\n",
        (uint64_t)st->epoch, (uint64_t)st->primary,
        colon != NULL ? (int)(colon - la) : 0, la != NULL ? la : "",
        colon != NULL ? colon + 1 : "0", la != NULL ? "up" : "down",
        st->primary_silent_ms / 1000u, (uint64_t)st->applied);
}

/* ---- WAIT ---------------------------------------------------------------- */

static void wait_done(void *arg, int status, unsigned acked)
{
    struct cmd_req *r = arg;
    if (status == 0) {
        rep_int(r, (int64_t)acked);
    } else {
        rep_node_error(r, status, false);
    }
    cmd_req_finish(r);
}

/* WAIT numreplicas timeout (Redis): on the leader (the primary), blocks
 * until numreplicas other members hold every entry it had when asked, or
 * timeout ms passed (0: no limit), and replies how many do. */
CMD_DECL(cmd_wait)
{
    int64_t n, timeout;
    (void)argc;
    if (cmd_parse_i64(argv[1], argvlen[1], &n) != 0 ||
        cmd_parse_i64(argv[2], argvlen[2], &timeout) != 0 || n < 0 ||
        n > RAFT_CONF_MAX) {
        rep_error(r, "ERR value is not an integer or out of range");
    } else if (timeout < 0) {
        rep_error(r, "ERR timeout is negative");
    } else {
        int rc = bnode_wait_replicas(r->client->env->node, (unsigned)n,
                                     (uint64_t)timeout, wait_done, r);
        if (rc == 0) {
            return; /* wait_done() answers */
        }
        if (rc == BNODE_ENOTLEADER) {
            rep_error(r, "ERR WAIT cannot be used with replica instances.");
        } else {
            rep_node_error(r, rc, false);
        }
    }
    cmd_req_finish(r);
}
