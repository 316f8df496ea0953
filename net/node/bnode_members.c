/*
 * bnode_members.c - where members listen, and how a node that was not in
 * anybody's configuration file joins online.
 *
 * The addresses a node starts with come from its configuration (the
 * `member` lines). A member added later is announced through the log: the
 * leader first commits a KV_CMD_MEMBER entry recording its address, and
 * only once that is applied proposes the configuration change that adds
 * it. Every replica applying the record learns the address (and connects
 * its transport) before the change can take effect, and the record lives
 * in LMDB, so it survives restarts and travels in snapshots. At start,
 * recorded addresses override configured ones for the same id: the log is
 * newer than the file.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bnode_internal.h"
#include "nlog.h"

/* "host:client:peer", the form recorded in the log. */
static int format_addr(const struct bnode_member *m, char *buf, size_t cap)
{
    int n =
        snprintf(buf, cap, "%s:%d:%d", m->host, m->client_port, m->peer_port);
    return n > 0 && (size_t)n < cap ? n : -1;
}

static bool same_addr(const struct bnode_member *a,
                      const struct bnode_member *b)
{
    return strcmp(a->host, b->host) == 0 && a->client_port == b->client_port &&
           a->peer_port == b->peer_port;
}

/* Makes @m one of the known members (adding or replacing) and points the
 * transport at it. */
static void member_learn(struct bnode *node, const struct bnode_member *m)
{
    struct bnode_options *o = &node->opts;
    struct bnode_member *slot = NULL;
    for (unsigned i = 0; i < o->n_members; i++) {
        if (o->members[i].id == m->id) {
            slot = &o->members[i];
        }
    }
    if (slot != NULL && same_addr(slot, m)) {
        return;
    }
    if (m->id == o->id) {
        /* We listen where our own configuration says; a record that
         * disagrees is only logged. */
        nlog(node, BNODE_LOG_WARN,
             "the log records %s:%d:%d for this node; keeping "
             "the configured address",
             m->host, m->client_port, m->peer_port);
        return;
    }
    if (slot == NULL) {
        if (o->n_members == RAFT_CONF_MAX) {
            nlog(node, BNODE_LOG_WARN,
                 "member %llu: more than %u members known, "
                 "address ignored",
                 (unsigned long long)m->id, RAFT_CONF_MAX);
            return;
        }
        slot = &o->members[o->n_members++];
    } else {
        transport_remove_peer(node->transport, m->id);
    }
    *slot = *m;
    nlog(node, BNODE_LOG_INFO, "member %llu is at %s (client %d, peer %d)",
         (unsigned long long)m->id, m->host, m->client_port, m->peer_port);
    if (transport_add_peer(node->transport, m->id, m->host, m->peer_port) !=
        0) {
        nlog(node, BNODE_LOG_WARN, "member %llu: the transport refused %s:%d",
             (unsigned long long)m->id, m->host, m->peer_port);
    }
}

int bnode_members_sync(struct bnode *node)
{
    struct kv_member *rec = malloc(KV_MEMBERS_MAX * sizeof(*rec));
    size_t n = 0;
    if (rec == NULL) {
        return BNODE_ENOMEM;
    }
    int rv = kv_members(node->kv, rec, KV_MEMBERS_MAX, &n);
    for (size_t i = 0; rv == 0 && i < n; i++) {
        struct bnode_member m;
        memset(&m, 0, sizeof(m));
        m.id = rec[i].id;
        if (bnode_member_parse_addr((const char *)rec[i].addr, rec[i].addr_len,
                                    &m) != 0) {
            nlog(node, BNODE_LOG_WARN,
                 "member %llu: unreadable address in the log",
                 (unsigned long long)m.id);
            continue;
        }
        member_learn(node, &m);
    }
    free(rec);
    if (rv != 0) {
        char msg[256];
        kv_errmsg(node->kv, msg, sizeof(msg));
        nlog(node, BNODE_LOG_ERROR, "reading member addresses: %s", msg);
        return BNODE_ESTORAGE;
    }
    return 0;
}

bool bnode_members_touched(const struct kv_apply_result *res)
{
    for (size_t i = 0; i < res->n_entries; i++) {
        if (res->entries[i].cmd_type == KV_CMD_MEMBER &&
            res->entries[i].code == 0 && !res->entries[i].skipped) {
            return true;
        }
    }
    return false;
}

/* An add in two steps: the address record, then the change. */
struct member_add
{
    struct bnode *node;
    enum raft_conf_change change;
    raft_id id;
    bnode_write_cb cb;
    void *arg;
};

static void record_done(void *arg,
                        int status,
                        const struct kv_entry_result *res)
{
    struct member_add a = *(struct member_add *)arg;
    free(arg);
    if (status == 0 && res->code != 0) {
        status = BNODE_EINVAL; /* the member table is full */
    }
    if (status == 0) {
        status = bnode_conf_change(a.node, a.change, a.id, a.cb, a.arg);
        if (status == 0) {
            return; /* a.cb runs when the change commits */
        }
    }
    a.cb(a.arg, status, NULL);
}

int bnode_member_add(struct bnode *node,
                     enum raft_conf_change change,
                     const struct bnode_member *m,
                     bnode_write_cb cb,
                     void *arg)
{
    if (change != RAFT_ADD_LEARNER && change != RAFT_ADD_VOTER) {
        return BNODE_EINVAL;
    }
    const struct bnode_member *known = bnode_member_addr(node, m->id);
    if (known != NULL && same_addr(known, m)) {
        return bnode_conf_change(node, change, m->id, cb, arg);
    }
    /* A member of the configuration keeps its address: moving a running
     * member is a remove and an add. */
    struct bnode_status st;
    bnode_status(node, &st);
    for (uint32_t i = 0; i < st.conf.n; i++) {
        if (st.conf.members[i].id == m->id) {
            return BNODE_EINVAL;
        }
    }
    char addr[BNODE_HOST_MAX + 16];
    int len = format_addr(m, addr, sizeof(addr));
    if (len < 0 || m->id == 0) {
        return BNODE_EINVAL;
    }
    uint8_t key[8];
    struct kv_cmd cmd;
    kv_cmd_member(&cmd, key, m->id, addr, (uint32_t)len);
    uint8_t buf[64 + sizeof(addr)];
    size_t n = 0;
    if (kv_cmd_encode(&cmd, buf, sizeof(buf), &n) != 0) {
        return BNODE_EINVAL;
    }
    struct member_add *a = malloc(sizeof(*a));
    if (a == NULL) {
        return BNODE_ENOMEM;
    }
    *a = (struct member_add){node, change, m->id, cb, arg};
    int rc = bnode_propose(node, buf, n, record_done, a);
    if (rc != 0) {
        free(a);
    }
    return rc;
}
