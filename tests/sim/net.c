/*
 * net.c - the simulated network.
 *
 * Every message is deep-copied when sent, because the core's update (and
 * the entries it points to) is only valid until raft_advance(). The network
 * then decides, from its own random stream: loss, latency, a long detour
 * (reordering), and duplication. Without the reorder fault a link is FIFO,
 * like the TCP connections the real transport uses; with it, messages
 * overtake each other as they would across reconnects. Partitions cut links
 * per direction, so symmetric and one-way (asymmetric) partitions are the
 * same mechanism; a cut link drops messages both when they are sent and
 * when they arrive, so a partition also swallows what was in flight.
 */
#include <stdlib.h>
#include <string.h>

#include "sim.h"

struct sim_msg *net_msg_copy(const struct raft_message *m,
                             const uint8_t *snap_bytes)
{
    struct sim_msg *msg = sim_xcalloc(1, sizeof(*msg));
    msg->m = *m;
    if (m->type == RAFT_MSG_APPEND && m->u.append.n_entries > 0) {
        uint32_t n = m->u.append.n_entries;
        size_t bytes = 0;
        for (uint32_t i = 0; i < n; i++) {
            bytes += m->u.append.entries[i].len;
        }
        msg->entries = sim_xmalloc(n * sizeof(*msg->entries));
        msg->data = sim_xmalloc(bytes > 0 ? bytes : 1);
        size_t off = 0;
        for (uint32_t i = 0; i < n; i++) {
            const struct raft_entry *e = &m->u.append.entries[i];
            msg->entries[i] = *e;
            if (e->len > 0) {
                memcpy(msg->data + off, e->data, e->len);
            }
            msg->entries[i].data = msg->data + off;
            off += e->len;
        }
        msg->m.u.append.entries = msg->entries;
    } else if (m->type == RAFT_MSG_APPEND) {
        msg->m.u.append.entries = NULL;
    } else if (m->type == RAFT_MSG_SNAPSHOT) {
        const uint8_t *src =
            snap_bytes != NULL ? snap_bytes : m->u.snapshot.data;
        uint32_t len = m->u.snapshot.len;
        msg->data = sim_xmalloc(len > 0 ? len : 1);
        if (len > 0 && src != NULL) {
            memcpy(msg->data, src, len);
        }
        msg->m.u.snapshot.data = msg->data;
    }
    return msg;
}

void net_msg_free(struct sim_msg *msg)
{
    if (msg == NULL) {
        return;
    }
    free(msg->entries);
    free(msg->data);
    free(msg);
}

/* Slot of a raft id, or -1 if no such simulated node. */
static int slot_of(const struct sim *s, raft_id id)
{
    if (id == 0 || id > s->p.slots) {
        return -1;
    }
    return (int)(id - 1);
}

static sim_time latency(struct sim *s, unsigned from, unsigned to)
{
    struct sim_net *net = &s->net;
    sim_time at = s->now + sim_rng_range(&net->rng, s->p.lat_min, s->p.lat_max);
    if (s->p.reorder_ppm > 0) {
        if (sim_rng_ppm(&net->rng, s->p.reorder_ppm)) {
            at += sim_rng_range(&net->rng, 1, s->p.reorder_max);
        }
        return at;
    }
    if (at <= net->last_at[from][to]) {
        at = net->last_at[from][to] + 1;
    }
    net->last_at[from][to] = at;
    return at;
}

void net_send(struct sim *s,
              const struct raft_message *m,
              const uint8_t *snap_bytes)
{
    struct sim_net *net = &s->net;
    int from = slot_of(s, m->from);
    int to = slot_of(s, m->to);
    net->sent++;
    if (from < 0 || to < 0) {
        net->lost++;
        return;
    }
    if (net->link_down[from][to]) {
        net->cut++;
        return;
    }
    if (sim_rng_ppm(&net->rng, s->p.loss_ppm)) {
        net->lost++;
        return;
    }
    unsigned copies = 1;
    if (sim_rng_ppm(&net->rng, s->p.dup_ppm)) {
        copies = 2;
        net->duplicated++;
    }
    for (unsigned i = 0; i < copies; i++) {
        struct sim_msg *msg = net_msg_copy(m, snap_bytes);
        sim_schedule(s, latency(s, (unsigned)from, (unsigned)to), EV_DELIVER,
                     (unsigned)to, 0, msg);
    }
}

void net_deliver(struct sim *s, struct sim_msg *msg)
{
    struct sim_net *net = &s->net;
    int from = slot_of(s, msg->m.from);
    int to = slot_of(s, msg->m.to);
    struct sim_node *n = &s->nodes[to];
    if (net->link_down[from][to]) {
        net->cut++;
        sim_trace(s, TR_DROP, (unsigned)to, msg->m.type, msg->m.from,
                  msg->m.term, 1);
        net_msg_free(msg);
        return;
    }
    if (!n->up) {
        sim_trace(s, TR_DROP, (unsigned)to, msg->m.type, msg->m.from,
                  msg->m.term, 2);
        net_msg_free(msg);
        return;
    }
    net->delivered++;
    uint64_t detail = 0;
    switch (msg->m.type) {
    case RAFT_MSG_APPEND:
        detail = msg->m.u.append.prev_index << 16 | msg->m.u.append.n_entries;
        break;
    case RAFT_MSG_APPEND_RESP:
        detail = msg->m.u.append_resp.index << 1 | msg->m.u.append_resp.success;
        break;
    case RAFT_MSG_SNAPSHOT:
        detail = msg->m.u.snapshot.meta.index << 20 | msg->m.u.snapshot.offset;
        break;
    default:
        break;
    }
    sim_trace(s, TR_DELIVER, (unsigned)to, msg->m.type, msg->m.from,
              msg->m.term, detail);
    struct sim_probe probe;
    coverage_on_deliver(s, n, &msg->m, from, &probe);
    struct sim_input in = {.kind = IN_MSG, .msg = msg};
    node_input(s, n, in);
    coverage_after_deliver(s, n, &probe);
}

void net_partition(struct sim *s, uint32_t group)
{
    for (unsigned a = 0; a < s->p.slots; a++) {
        for (unsigned b = 0; b < s->p.slots; b++) {
            bool in_a = (group >> a) & 1, in_b = (group >> b) & 1;
            if (in_a != in_b) {
                s->net.link_down[a][b] = true;
            }
        }
    }
    s->links_cut = true;
    sim_trace(s, TR_PARTITION, 0, group, 0, 0, 0);
}

void net_cut_one_way(struct sim *s, unsigned from, unsigned to)
{
    s->net.link_down[from][to] = true;
    s->links_cut = true;
    sim_trace(s, TR_CUT, 0, from, to, 0, 0);
}

void net_heal(struct sim *s)
{
    memset(s->net.link_down, 0, sizeof(s->net.link_down));
    s->links_cut = false;
    sim_trace(s, TR_HEAL, 0, 0, 0, 0, 0);
}
