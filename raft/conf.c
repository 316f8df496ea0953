/*
 * conf.c - cluster configurations and their history in the log.
 *
 * §4.1: "a server always uses the latest configuration in its log,
 * regardless of whether the entry is committed". Because a truncation can
 * remove that latest entry, the node keeps every configuration entry since
 * its snapshot (they are rare), plus the snapshot's configuration as a base.
 */
#include <assert.h>
#include <string.h>

#include "node.h"

static void put_u32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++) {
        p[i] = (uint8_t)(v >> (8 * i));
    }
}

static void put_u64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++) {
        p[i] = (uint8_t)(v >> (8 * i));
    }
}

static uint32_t get_u32(const uint8_t *p)
{
    uint32_t v = 0;
    for (int i = 3; i >= 0; i--) {
        v = (v << 8) | p[i];
    }
    return v;
}

static uint64_t get_u64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--) {
        v = (v << 8) | p[i];
    }
    return v;
}

/*
 * Layout, little endian:
 *
 *   0      4      8        16   17       25   26
 *   +------+------+--------+----+--------+----+---
 *   | ver  |  n   | id[0]  |r[0]| id[1]  |r[1]| ...
 *   +------+------+--------+----+--------+----+---
 */
void raft_conf_encode(const struct raft_conf *conf, uint8_t *buf, size_t *len)
{
    put_u32(buf, 1);
    put_u32(buf + 4, conf->n);
    size_t off = 8;
    for (uint32_t i = 0; i < conf->n; i++) {
        put_u64(buf + off, conf->members[i].id);
        buf[off + 8] = conf->members[i].role;
        off += 9;
    }
    *len = off;
}

int conf_validate(const struct raft_conf *conf)
{
    if (conf->n > RAFT_CONF_MAX) {
        return RAFT_EINVAL;
    }
    for (uint32_t i = 0; i < conf->n; i++) {
        const struct raft_member *m = &conf->members[i];
        if (m->id == 0 || (m->role != RAFT_VOTER && m->role != RAFT_LEARNER)) {
            return RAFT_EINVAL;
        }
        for (uint32_t j = 0; j < i; j++) {
            if (conf->members[j].id == m->id) {
                return RAFT_EINVAL;
            }
        }
    }
    return 0;
}

int raft_conf_decode(const uint8_t *buf, size_t len, struct raft_conf *conf)
{
    struct raft_conf c;
    if (buf == NULL || len < 8 || get_u32(buf) != 1) {
        return RAFT_EINVAL;
    }
    uint32_t n = get_u32(buf + 4);
    if (n > RAFT_CONF_MAX || len != 8 + (size_t)n * 9) {
        return RAFT_EINVAL;
    }
    memset(&c, 0, sizeof(c));
    c.n = n;
    for (uint32_t i = 0; i < n; i++) {
        c.members[i].id = get_u64(buf + 8 + i * 9);
        c.members[i].role = buf[8 + i * 9 + 8];
    }
    if (conf_validate(&c) != 0) {
        return RAFT_EINVAL;
    }
    *conf = c;
    return 0;
}

const struct raft_member *raft_conf_get(const struct raft_conf *conf,
                                        raft_id id)
{
    for (uint32_t i = 0; i < conf->n; i++) {
        if (conf->members[i].id == id) {
            return &conf->members[i];
        }
    }
    return NULL;
}

unsigned raft_conf_voters(const struct raft_conf *conf)
{
    unsigned n = 0;
    for (uint32_t i = 0; i < conf->n; i++) {
        n += conf->members[i].role == RAFT_VOTER;
    }
    return n;
}

bool conf_is_voter(const struct raft_conf *conf, raft_id id)
{
    const struct raft_member *m = raft_conf_get(conf, id);
    return m != NULL && m->role == RAFT_VOTER;
}

static const struct raft_conf empty_conf;

const struct raft_conf *conf_current(const struct raft_node *node)
{
    if (node->n_confs == 0) {
        return &empty_conf;
    }
    return &node->confs[node->n_confs - 1].conf;
}

raft_index conf_current_index(const struct raft_node *node)
{
    if (node->n_confs == 0) {
        return 0;
    }
    return node->confs[node->n_confs - 1].index;
}

const struct raft_conf *conf_at(const struct raft_node *node, raft_index index)
{
    const struct raft_conf *c = &empty_conf;
    for (size_t i = 0; i < node->n_confs && node->confs[i].index <= index;
         i++) {
        c = &node->confs[i].conf;
    }
    return c;
}

int conf_history_push(struct raft_node *node,
                      raft_index index,
                      const struct raft_conf *conf)
{
    if (node->n_confs == node->cap_confs) {
        size_t cap = node->cap_confs ? node->cap_confs * 2 : 4;
        struct raft_conf_record *r =
            raft_realloc(node, node->confs, cap * sizeof(*r));
        if (r == NULL) {
            return RAFT_ENOMEM;
        }
        node->confs = r;
        node->cap_confs = cap;
    }
    node->confs[node->n_confs].index = index;
    node->confs[node->n_confs].conf = *conf;
    node->n_confs++;
    return 0;
}

void conf_history_truncate(struct raft_node *node, raft_index index)
{
    while (node->n_confs > 0 && node->confs[node->n_confs - 1].index >= index) {
        node->n_confs--;
    }
}

void conf_history_compact(struct raft_node *node, raft_index index)
{
    /* Keep the newest record at or below @index as the base. */
    size_t base = 0;
    while (base + 1 < node->n_confs && node->confs[base + 1].index <= index) {
        base++;
    }
    if (base > 0) {
        memmove(node->confs, node->confs + base,
                (node->n_confs - base) * sizeof(*node->confs));
        node->n_confs -= base;
    }
}

void conf_history_reset(struct raft_node *node,
                        raft_index index,
                        const struct raft_conf *conf)
{
    /* raft_node_create() reserves room for a few records, so a reset never
     * needs to allocate and cannot fail half-way through an install. */
    assert(node->cap_confs >= 1);
    node->confs[0].index = index;
    node->confs[0].conf = *conf;
    node->n_confs = 1;
}
