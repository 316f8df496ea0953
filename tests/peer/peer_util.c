/*
 * peer_util.c - see peer_util.h.
 */
#include <stdlib.h>
#include <string.h>

#include "codec.h"
#include "peer_util.h"

uint64_t prng_next(struct prng *r)
{
    uint64_t z = (r->s += 0x9e3779b97f4a7c15u);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
    return z ^ (z >> 31);
}

uint64_t prng_below(struct prng *r, uint64_t n)
{
    return n == 0 ? 0 : prng_next(r) % n;
}

uint64_t prng_u64(struct prng *r)
{
    switch (prng_below(r, 4)) {
    case 0:
        return 0;
    case 1:
        return UINT64_MAX;
    case 2:
        return prng_below(r, 1000);
    default:
        return prng_next(r);
    }
}

uint32_t prng_u32(struct prng *r)
{
    return (uint32_t)prng_u64(r);
}

static bool prng_bool(struct prng *r)
{
    return prng_below(r, 2) == 1;
}

static void gen_conf(struct prng *r, struct raft_conf *c)
{
    memset(c, 0, sizeof(*c));
    c->n = (uint32_t)prng_below(r, RAFT_CONF_MAX + 1);
    for (uint32_t i = 0; i < c->n; i++) {
        /* Distinct non-zero ids: the index keeps them apart. */
        uint64_t hi = prng_next(r) & ~(uint64_t)0xff;
        c->members[i].id = hi | (i + 1);
        c->members[i].role = prng_bool(r) ? RAFT_VOTER : RAFT_LEARNER;
    }
}

static uint8_t *gen_bytes(struct prng *r, size_t n)
{
    uint8_t *p = malloc(n > 0 ? n : 1);
    if (p == NULL) {
        abort();
    }
    /* Start from a run of every byte value, then random bytes, so long
     * buffers always hold all 256 values. */
    for (size_t i = 0; i < n; i++) {
        p[i] = i < 256 ? (uint8_t)i : (uint8_t)prng_next(r);
    }
    return p;
}

void gen_message(struct prng *r,
                 uint8_t type,
                 uint32_t max_entries,
                 uint32_t max_entry_bytes,
                 uint32_t max_chunk_bytes,
                 struct gen_msg *g)
{
    memset(g, 0, sizeof(*g));
    struct raft_message *m = &g->m;
    m->type = type;
    m->from = prng_u64(r);
    m->to = prng_u64(r);
    m->term = prng_u64(r);
    switch (type) {
    case RAFT_MSG_PREVOTE:
    case RAFT_MSG_VOTE:
        m->u.vote.last_log_index = prng_u64(r);
        m->u.vote.last_log_term = prng_u64(r);
        m->u.vote.transfer = prng_bool(r);
        break;
    case RAFT_MSG_PREVOTE_RESP:
    case RAFT_MSG_VOTE_RESP:
        m->u.vote_resp.granted = prng_bool(r);
        break;
    case RAFT_MSG_APPEND: {
        struct raft_msg_append *a = &m->u.append;
        a->prev_index = prng_u64(r);
        a->prev_term = prng_u64(r);
        a->commit = prng_u64(r);
        a->n_entries = (uint32_t)prng_below(r, (uint64_t)max_entries + 1);
        size_t total = 0;
        uint32_t *lens = calloc(a->n_entries + 1, sizeof(*lens));
        if (lens == NULL) {
            abort();
        }
        for (uint32_t i = 0; i < a->n_entries; i++) {
            lens[i] = (uint32_t)prng_below(r, (uint64_t)max_entry_bytes + 1);
            total += lens[i];
        }
        g->data = gen_bytes(r, total);
        g->entries = calloc(a->n_entries + 1, sizeof(*g->entries));
        if (g->entries == NULL) {
            abort();
        }
        size_t off = 0;
        for (uint32_t i = 0; i < a->n_entries; i++) {
            struct raft_entry *e = &g->entries[i];
            e->term = prng_u64(r);
            e->index = prng_u64(r);
            e->type = prng_bool(r) ? RAFT_ENTRY_NORMAL : RAFT_ENTRY_CONF;
            e->len = lens[i];
            e->data = lens[i] > 0 ? g->data + off : NULL;
            off += lens[i];
        }
        free(lens);
        a->entries = a->n_entries > 0 ? g->entries : NULL;
        break;
    }
    case RAFT_MSG_APPEND_RESP:
        m->u.append_resp.success = prng_bool(r);
        m->u.append_resp.index = prng_u64(r);
        m->u.append_resp.hint_term = prng_u64(r);
        m->u.append_resp.hint_index = prng_u64(r);
        break;
    case RAFT_MSG_HEARTBEAT:
        m->u.heartbeat.commit = prng_u64(r);
        m->u.heartbeat.read_seq = prng_u64(r);
        break;
    case RAFT_MSG_HEARTBEAT_RESP:
        m->u.heartbeat_resp.read_seq = prng_u64(r);
        break;
    case RAFT_MSG_SNAPSHOT: {
        struct raft_msg_snapshot *s = &m->u.snapshot;
        s->meta.index = prng_u64(r);
        s->meta.term = prng_u64(r);
        s->meta.size = prng_u64(r);
        gen_conf(r, &s->meta.conf);
        s->offset = prng_u64(r);
        s->len = (uint32_t)prng_below(r, (uint64_t)max_chunk_bytes + 1);
        s->done = prng_bool(r);
        g->data = gen_bytes(r, s->len);
        s->data = s->len > 0 ? g->data : NULL;
        break;
    }
    case RAFT_MSG_SNAPSHOT_RESP:
        m->u.snapshot_resp.index = prng_u64(r);
        m->u.snapshot_resp.next_offset = prng_u64(r);
        m->u.snapshot_resp.done = prng_bool(r);
        break;
    case RAFT_MSG_TIMEOUT_NOW:
        break;
    case RAFT_MSG_READ_INDEX:
        /* index and ok belong to the response and are not sent. */
        m->u.read_index.ctx = prng_u64(r);
        break;
    case RAFT_MSG_READ_INDEX_RESP:
        m->u.read_index.ctx = prng_u64(r);
        m->u.read_index.index = prng_u64(r);
        m->u.read_index.ok = prng_bool(r);
        break;
    default:
        break;
    }
}

void gen_free(struct gen_msg *g)
{
    free(g->entries);
    free(g->data);
    memset(g, 0, sizeof(*g));
}

static bool bytes_equal(const uint8_t *a, const uint8_t *b, size_t n)
{
    return n == 0 || (a != NULL && b != NULL && memcmp(a, b, n) == 0);
}

static bool conf_equal(const struct raft_conf *a, const struct raft_conf *b)
{
    if (a->n != b->n) {
        return false;
    }
    for (uint32_t i = 0; i < a->n; i++) {
        if (a->members[i].id != b->members[i].id ||
            a->members[i].role != b->members[i].role) {
            return false;
        }
    }
    return true;
}

bool message_equal(const struct raft_message *a, const struct raft_message *b)
{
    if (a->type != b->type || a->from != b->from || a->to != b->to ||
        a->term != b->term) {
        return false;
    }
    switch (a->type) {
    case RAFT_MSG_PREVOTE:
    case RAFT_MSG_VOTE:
        return a->u.vote.last_log_index == b->u.vote.last_log_index &&
               a->u.vote.last_log_term == b->u.vote.last_log_term &&
               a->u.vote.transfer == b->u.vote.transfer;
    case RAFT_MSG_PREVOTE_RESP:
    case RAFT_MSG_VOTE_RESP:
        return a->u.vote_resp.granted == b->u.vote_resp.granted;
    case RAFT_MSG_APPEND: {
        const struct raft_msg_append *x = &a->u.append, *y = &b->u.append;
        if (x->prev_index != y->prev_index || x->prev_term != y->prev_term ||
            x->commit != y->commit || x->n_entries != y->n_entries) {
            return false;
        }
        for (uint32_t i = 0; i < x->n_entries; i++) {
            const struct raft_entry *e = &x->entries[i], *f = &y->entries[i];
            if (e->term != f->term || e->index != f->index ||
                e->type != f->type || e->len != f->len ||
                !bytes_equal(e->data, f->data, e->len)) {
                return false;
            }
        }
        return true;
    }
    case RAFT_MSG_APPEND_RESP:
        return a->u.append_resp.success == b->u.append_resp.success &&
               a->u.append_resp.index == b->u.append_resp.index &&
               a->u.append_resp.hint_term == b->u.append_resp.hint_term &&
               a->u.append_resp.hint_index == b->u.append_resp.hint_index;
    case RAFT_MSG_HEARTBEAT:
        return a->u.heartbeat.commit == b->u.heartbeat.commit &&
               a->u.heartbeat.read_seq == b->u.heartbeat.read_seq;
    case RAFT_MSG_HEARTBEAT_RESP:
        return a->u.heartbeat_resp.read_seq == b->u.heartbeat_resp.read_seq;
    case RAFT_MSG_SNAPSHOT: {
        const struct raft_msg_snapshot *x = &a->u.snapshot, *y = &b->u.snapshot;
        return x->meta.index == y->meta.index && x->meta.term == y->meta.term &&
               x->meta.size == y->meta.size &&
               conf_equal(&x->meta.conf, &y->meta.conf) &&
               x->offset == y->offset && x->len == y->len &&
               x->done == y->done && bytes_equal(x->data, y->data, x->len);
    }
    case RAFT_MSG_SNAPSHOT_RESP:
        return a->u.snapshot_resp.index == b->u.snapshot_resp.index &&
               a->u.snapshot_resp.next_offset ==
                   b->u.snapshot_resp.next_offset &&
               a->u.snapshot_resp.done == b->u.snapshot_resp.done;
    case RAFT_MSG_TIMEOUT_NOW:
        return true;
    case RAFT_MSG_READ_INDEX:
        return a->u.read_index.ctx == b->u.read_index.ctx;
    case RAFT_MSG_READ_INDEX_RESP:
        return a->u.read_index.ctx == b->u.read_index.ctx &&
               a->u.read_index.index == b->u.read_index.index &&
               a->u.read_index.ok == b->u.read_index.ok;
    default:
        return false;
    }
}

uint8_t *encode_alloc(const struct raft_message *m, size_t *len)
{
    size_t n = codec_message_size(m);
    uint8_t *buf = malloc(n);
    if (buf == NULL) {
        abort();
    }
    codec_message_encode(m, buf);
    *len = n;
    return buf;
}
