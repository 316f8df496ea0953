/*
 * test_kv_model.c - the store against a simple in-memory model.
 *
 * A seed drives random commands (puts, deletes, delete-ranges and
 * transactions with every comparison and operation) in random batches, with
 * a close and reopen now and then. After every batch the per-entry results
 * and a set of random range reads using every option must equal what a
 * sorted array computes, exactly: values, revisions, versions, counts and
 * the more flag. At the end the history must equal the model's event list.
 */
#include <stdio.h>
#include <string.h>

#include "kv_test_util.h"

#define M_KEY 6
#define M_VAL 40
#define M_KEYS 2048
#define M_EVENTS 200000

struct mkv
{
    uint8_t k[M_KEY];
    uint32_t klen;
    uint8_t v[M_VAL];
    uint32_t vlen;
    uint64_t create, mod, version;
};

struct mevent
{
    uint8_t type;
    struct mkv kv;
};

struct model
{
    struct mkv keys[M_KEYS];
    size_t n;
    uint64_t rev;
    struct mevent *events;
    size_t n_events;
};

static int mkey_cmp(const uint8_t *a,
                    uint32_t alen,
                    const uint8_t *b,
                    uint32_t blen)
{
    uint32_t n = alen < blen ? alen : blen;
    int c = n ? memcmp(a, b, n) : 0;
    if (c != 0) {
        return c;
    }
    return alen < blen ? -1 : alen > blen ? 1 : 0;
}

/* Index of the first key >= @k. */
static size_t m_lower(const struct model *m, const uint8_t *k, uint32_t klen)
{
    size_t lo = 0, hi = m->n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (mkey_cmp(m->keys[mid].k, m->keys[mid].klen, k, klen) < 0) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    return lo;
}

static struct mkv *m_find(struct model *m, const uint8_t *k, uint32_t klen)
{
    size_t i = m_lower(m, k, klen);
    if (i < m->n && mkey_cmp(m->keys[i].k, m->keys[i].klen, k, klen) == 0) {
        return &m->keys[i];
    }
    return NULL;
}

/* Does key @k fall in the range an operation describes? Written from the
 * documented meaning, independently of kv_bounds_resolve(). */
static bool m_in_range(const struct kv_op *op, const uint8_t *k, uint32_t klen)
{
    if (op->flags & KV_FLAG_PREFIX) {
        return klen >= op->key_len &&
               (op->key_len == 0 || memcmp(k, op->key, op->key_len) == 0);
    }
    if (op->end_len == 0) {
        return mkey_cmp(k, klen, op->key, op->key_len) == 0;
    }
    if (mkey_cmp(k, klen, op->key, op->key_len) < 0) {
        return false;
    }
    if (op->end_len == 1 && op->end[0] == 0) {
        return true;
    }
    return mkey_cmp(k, klen, op->end, op->end_len) < 0;
}

/* One operation's expected result. */
struct mres
{
    uint64_t count;
    bool more;
    struct mkv kvs[M_KEYS];
    size_t n;
};

static void m_event(struct model *m, uint8_t type, const struct mkv *kv)
{
    ck_assert_uint_lt(m->n_events, M_EVENTS);
    m->events[m->n_events].type = type;
    m->events[m->n_events].kv = *kv;
    m->n_events++;
}

static void m_delete_at(struct model *m, size_t i, uint64_t rev)
{
    struct mkv tomb;
    memset(&tomb, 0, sizeof(tomb));
    memcpy(tomb.k, m->keys[i].k, m->keys[i].klen);
    tomb.klen = m->keys[i].klen;
    tomb.mod = rev;
    memmove(&m->keys[i], &m->keys[i + 1], (m->n - i - 1) * sizeof(m->keys[0]));
    m->n--;
    m_event(m, KV_EVENT_DELETE, &tomb);
}

static void m_range(struct model *m, const struct kv_op *op, struct mres *r)
{
    bool rev = op->flags & KV_FLAG_REVERSE;
    for (size_t j = 0; j < m->n; j++) {
        size_t i = rev ? m->n - 1 - j : j;
        if (!m_in_range(op, m->keys[i].k, m->keys[i].klen)) {
            continue;
        }
        r->count++;
        if ((op->flags & KV_FLAG_COUNT_ONLY) ||
            (op->limit != 0 && r->n >= op->limit)) {
            continue;
        }
        r->kvs[r->n] = m->keys[i];
        if (op->flags & KV_FLAG_KEYS_ONLY) {
            r->kvs[r->n].vlen = 0;
        }
        r->n++;
    }
    r->more = !(op->flags & KV_FLAG_COUNT_ONLY) && r->count > r->n;
}

/* Applies one operation at revision @rev; returns whether it changed a
 * key. */
static bool m_op(struct model *m,
                 const struct kv_op *op,
                 uint64_t rev,
                 struct mres *r)
{
    bool changed = false;
    memset(r, 0, sizeof(*r));
    switch (op->type) {
    case KV_OP_PUT: {
        struct mkv *kv = m_find(m, op->key, op->key_len);
        if (kv != NULL) {
            if (op->flags & KV_FLAG_PREV_KV) {
                r->kvs[r->n++] = *kv;
            }
            kv->version++;
        } else {
            size_t i = m_lower(m, op->key, op->key_len);
            ck_assert_uint_lt(m->n, M_KEYS);
            memmove(&m->keys[i + 1], &m->keys[i],
                    (m->n - i) * sizeof(m->keys[0]));
            m->n++;
            kv = &m->keys[i];
            memcpy(kv->k, op->key, op->key_len);
            kv->klen = op->key_len;
            kv->create = rev;
            kv->version = 1;
        }
        if (op->value_len) {
            memcpy(kv->v, op->value, op->value_len);
        }
        kv->vlen = op->value_len;
        kv->mod = rev;
        m_event(m, KV_EVENT_PUT, kv);
        return true;
    }
    case KV_OP_DELETE:
    case KV_OP_DELETE_RANGE:
        for (size_t i = 0; i < m->n;) {
            bool hit = op->type == KV_OP_DELETE
                           ? mkey_cmp(m->keys[i].k, m->keys[i].klen, op->key,
                                      op->key_len) == 0
                           : m_in_range(op, m->keys[i].k, m->keys[i].klen);
            if (!hit) {
                i++;
                continue;
            }
            if (op->flags & KV_FLAG_PREV_KV) {
                r->kvs[r->n++] = m->keys[i];
            }
            r->count++;
            m_delete_at(m, i, rev);
            changed = true;
        }
        return changed;
    default:
        m_range(m, op, r);
        return false;
    }
}

static bool m_cmp(struct model *m, const struct kv_cmp *c)
{
    struct mkv *kv = m_find(m, c->key, c->key_len);
    int order;
    if (c->target == KV_CMP_VALUE) {
        if (kv == NULL) {
            return false;
        }
        order = mkey_cmp(kv->v, kv->vlen, c->value, c->value_len);
    } else {
        uint64_t have = 0;
        if (kv != NULL) {
            have = c->target == KV_CMP_VERSION           ? kv->version
                   : c->target == KV_CMP_CREATE_REVISION ? kv->create
                   : c->target == KV_CMP_MOD_REVISION    ? kv->mod
                                                         : 1;
        }
        order = have < c->number ? -1 : have > c->number ? 1 : 0;
    }
    switch (c->op) {
    case KV_CMP_EQ:
        return order == 0;
    case KV_CMP_NE:
        return order != 0;
    case KV_CMP_LT:
        return order < 0;
    default:
        return order > 0;
    }
}

static void check_kv(const struct kv_kv *got,
                     const struct mkv *want,
                     bool with_value)
{
    ck_assert_uint_eq(got->key_len, want->klen);
    ck_assert_int_eq(memcmp(got->key, want->k, want->klen), 0);
    ck_assert_uint_eq(got->create_revision, want->create);
    ck_assert_uint_eq(got->mod_revision, want->mod);
    ck_assert_uint_eq(got->version, want->version);
    if (with_value) {
        ck_assert_uint_eq(got->value_len, want->vlen);
        if (want->vlen) {
            ck_assert_int_eq(memcmp(got->value, want->v, want->vlen), 0);
        }
    } else {
        ck_assert_uint_eq(got->value_len, 0);
    }
}

static void check_op(const struct kv_op *op,
                     const struct kv_op_result *got,
                     const struct mres *want)
{
    ck_assert_uint_eq(got->type, op->type);
    ck_assert_uint_eq(got->count, want->count);
    ck_assert_int_eq(got->more, want->more);
    ck_assert_uint_eq(got->n_kvs, want->n);
    for (size_t i = 0; i < want->n; i++) {
        check_kv(&got->kvs[i], &want->kvs[i],
                 !(op->type == KV_OP_RANGE && (op->flags & KV_FLAG_KEYS_ONLY)));
    }
}

/* Random generation. Keys come from a small alphabet including 0x00 and
 * 0xff, so collisions, prefixes and byte-order edge cases are common. */
static const uint8_t alphabet[] = {0x00, 0x01, 'a', 'b', 0x7f, 0xff};

struct gen
{
    uint64_t rng;
    uint8_t pool[4096]; /* bytes the current command points into */
    size_t used;
};

static const uint8_t *g_bytes(struct gen *g, uint32_t n, bool keylike)
{
    ck_assert_uint_le(g->used + n, sizeof(g->pool));
    uint8_t *p = g->pool + g->used;
    for (uint32_t i = 0; i < n; i++) {
        p[i] = keylike ? alphabet[kvt_below(&g->rng, sizeof(alphabet))]
                       : (uint8_t)kvt_rand(&g->rng);
    }
    g->used += n;
    return p;
}

static void g_key(struct gen *g, const uint8_t **k, uint32_t *len, uint32_t min)
{
    *len = min + kvt_below(&g->rng, 4 - min);
    *k = g_bytes(g, *len, true);
}

static void g_op(struct gen *g, struct kv_op *op, bool in_txn)
{
    memset(op, 0, sizeof(*op));
    uint32_t r = kvt_below(&g->rng, in_txn ? 10 : 8);
    op->type = r < 4   ? KV_OP_PUT
               : r < 6 ? KV_OP_DELETE
               : r < 8 ? KV_OP_DELETE_RANGE
                       : KV_OP_RANGE;
    g_key(g, &op->key, &op->key_len,
          op->type == KV_OP_PUT || op->type == KV_OP_DELETE ? 1 : 0);
    switch (op->type) {
    case KV_OP_PUT:
        op->value_len = kvt_below(&g->rng, M_VAL + 1);
        op->value = g_bytes(g, op->value_len, false);
        op->flags = kvt_below(&g->rng, 2) ? KV_FLAG_PREV_KV : 0;
        break;
    case KV_OP_DELETE:
        op->flags = kvt_below(&g->rng, 2) ? KV_FLAG_PREV_KV : 0;
        break;
    default: {
        uint32_t shape = kvt_below(&g->rng, 4);
        if (shape == 0) {
            op->flags |= KV_FLAG_PREFIX;
        } else if (shape == 1) {
            op->end = g_bytes(g, 1, false);
            ((uint8_t *)op->end)[0] = 0;
            op->end_len = 1;
        } else if (shape == 2) {
            g_key(g, &op->end, &op->end_len, 1);
        }
        if (op->type == KV_OP_DELETE_RANGE) {
            op->flags |= kvt_below(&g->rng, 2) ? KV_FLAG_PREV_KV : 0;
        } else {
            op->flags |= (uint8_t)(kvt_below(&g->rng, 8) << 2);
            op->limit = kvt_below(&g->rng, 3) ? kvt_below(&g->rng, 6) : 0;
        }
        break;
    }
    }
}

static void g_cmd(struct gen *g,
                  struct kv_cmd *c,
                  struct kv_cmp *cmps,
                  struct kv_op *then_ops,
                  struct kv_op *else_ops)
{
    memset(c, 0, sizeof(*c));
    g->used = 0;
    if (kvt_below(&g->rng, 3) != 0) {
        g_op(g, &c->op, false);
        c->type = c->op.type;
        return;
    }
    c->type = KV_CMD_TXN;
    c->n_cmps = kvt_below(&g->rng, 4);
    c->n_then = kvt_below(&g->rng, 5);
    c->n_else = kvt_below(&g->rng, 4);
    for (uint32_t i = 0; i < c->n_cmps; i++) {
        struct kv_cmp *x = &cmps[i];
        memset(x, 0, sizeof(*x));
        x->target = (uint8_t)(1 + kvt_below(&g->rng, 5));
        x->op = (uint8_t)(1 + kvt_below(&g->rng, x->target == 5 ? 2 : 4));
        g_key(g, &x->key, &x->key_len, 1);
        if (x->target == KV_CMP_VALUE) {
            x->value_len = kvt_below(&g->rng, 3);
            x->value = g_bytes(g, x->value_len, false);
        } else if (x->target == KV_CMP_EXISTS) {
            x->number = kvt_below(&g->rng, 2);
        } else {
            x->number = kvt_below(&g->rng, 40);
        }
    }
    for (uint32_t i = 0; i < c->n_then; i++) {
        g_op(g, &then_ops[i], true);
    }
    for (uint32_t i = 0; i < c->n_else; i++) {
        g_op(g, &else_ops[i], true);
    }
    c->cmps = cmps;
    c->then_ops = then_ops;
    c->else_ops = else_ops;
}

/* Applies @c to the model and checks @er against it. */
static void m_apply_check(struct model *m,
                          const struct kv_cmd *c,
                          const struct kv_entry_result *er,
                          struct mres *r)
{
    uint64_t rev = m->rev + 1;
    bool changed = false;
    bool ok = true;
    const struct kv_op *ops = &c->op;
    uint32_t n = 1;
    ck_assert_int_eq(er->code, 0);
    ck_assert(!er->skipped);
    if (c->type == KV_CMD_TXN) {
        for (uint32_t i = 0; i < c->n_cmps && ok; i++) {
            ok = m_cmp(m, &c->cmps[i]);
        }
        ops = ok ? c->then_ops : c->else_ops;
        n = ok ? c->n_then : c->n_else;
    }
    ck_assert_int_eq(er->succeeded, ok);
    ck_assert_uint_eq(er->n_ops, n);
    for (uint32_t i = 0; i < n; i++) {
        changed |= m_op(m, &ops[i], rev, r);
        check_op(&ops[i], &er->ops[i], r);
    }
    if (changed) {
        m->rev = rev;
    }
    ck_assert_uint_eq(er->revision, m->rev);
}

static void check_reads(struct kv_store *s,
                        struct model *m,
                        struct gen *g,
                        struct mres *r)
{
    for (int q = 0; q < 12; q++) {
        struct kv_op op;
        struct kv_range_result res;
        g->used = 0;
        do {
            g_op(g, &op, true);
        } while (op.type != KV_OP_RANGE);
        struct kv_range_req req = {op.key,     op.end,   op.key_len,
                                   op.end_len, op.flags, op.limit};
        ck_assert_int_eq(kv_range(s, &req, &res), 0);
        memset(r, 0, sizeof(*r));
        m_range(m, &op, r);
        ck_assert_uint_eq(res.revision, m->rev);
        ck_assert_uint_eq(res.count, r->count);
        ck_assert_int_eq(res.more, r->more);
        ck_assert_uint_eq(res.n_kvs, r->n);
        for (size_t i = 0; i < r->n; i++) {
            check_kv(&res.kvs[i], &r->kvs[i], !(op.flags & KV_FLAG_KEYS_ONLY));
        }
        kv_range_result_free(&res);
    }
}

static void check_history(struct kv_store *s, struct model *m)
{
    struct kv_history_pos pos = {0, 0};
    size_t seen = 0;
    for (;;) {
        struct kv_history_result h;
        ck_assert_int_eq(kv_history_read(s, pos, 97, &h, NULL), 0);
        for (size_t i = 0; i < h.n_events; i++) {
            const struct mevent *e = &m->events[seen + i];
            ck_assert_uint_eq(h.events[i].type, e->type);
            check_kv(&h.events[i].kv, &e->kv, e->type == KV_EVENT_PUT);
        }
        seen += h.n_events;
        pos = h.next;
        bool more = h.more;
        kv_history_result_free(&h);
        if (!more) {
            break;
        }
    }
    ck_assert_uint_eq(seen, m->n_events);
}

static void run_model(uint64_t seed, int batches)
{
    /* Named in the failure message of any assertion below. */
    fprintf(stderr, "model seed %llu\n", (unsigned long long)seed);
    char *dir = kvt_mkdtemp();
    struct kv_store *s = kvt_open(dir, 64ull << 20);
    struct model *m = calloc(1, sizeof(*m));
    struct mres *r = malloc(sizeof(*r));
    struct gen *g = calloc(1, sizeof(*g));
    struct kv_cmd *cmds = calloc(64, sizeof(*cmds));
    struct kv_cmp(*cmps)[4] = calloc(64, sizeof(*cmps));
    struct kv_op(*thens)[5] = calloc(64, sizeof(*thens));
    struct kv_op(*elses)[4] = calloc(64, sizeof(*elses));
    raft_index index = 0;
    m->events = malloc(M_EVENTS * sizeof(*m->events));
    g->rng = seed;
    for (int b = 0; b < batches; b++) {
        struct kvt_batch batch = {0};
        size_t n = 1 + kvt_below(&g->rng, 40);
        for (size_t i = 0; i < n; i++) {
            size_t len;
            g_cmd(g, &cmds[i], cmps[i], thens[i], elses[i]);
            /* The generator's pool is reused: the command is encoded at
             * once and decoded back for the model. */
            {
                uint8_t *d_ = kvt_encode(&cmds[i], &len);
                kvt_batch_add(&batch, ++index, d_, len);
            }
        }
        struct kv_apply_result res;
        ck_assert_int_eq(kv_apply(s, batch.e, batch.n, &res), 0);
        ck_assert_uint_eq(res.n_entries, n);
        for (size_t i = 0; i < n; i++) {
            struct kv_cmd d;
            ck_assert_int_eq(
                kv_cmd_decode(batch.e[i].data, batch.e[i].len, NULL, &d), 0);
            m_apply_check(m, &d, &res.entries[i], r);
            kv_cmd_free(&d, NULL);
        }
        ck_assert_uint_eq(res.revision, m->rev);
        ck_assert_uint_eq(res.applied, index);
        kv_apply_result_free(&res);
        kvt_batch_clear(&batch);
        check_reads(s, m, g, r);
        if (kvt_below(&g->rng, 15) == 0) {
            kv_close(s);
            s = kvt_open(dir, 64ull << 20);
        }
    }
    check_history(s, m);
    struct kv_status st;
    ck_assert_int_eq(kv_status(s, &st), 0);
    ck_assert_uint_eq(st.keys, m->n);
    ck_assert_uint_eq(st.applied, index);
    kv_close(s);
    kvt_rmdir(dir);
    free(m->events);
    free(m);
    free(r);
    free(g);
    free(cmds);
    free(cmps);
    free(thens);
    free(elses);
}

/* Random commands from several seeds give exactly the model's results,
 * reads and history, across batches and reopenings. */
START_TEST(test_model_matches_store_under_random_commands)
{
    /* KV_MODEL_SEED replays one seed. */
    const char *env = getenv("KV_MODEL_SEED");
    if (env != NULL) {
        run_model(strtoull(env, NULL, 0), 200);
        return;
    }
    for (uint64_t seed = 1; seed <= 16; seed++) {
        run_model(seed * 7919, 120);
    }
}
END_TEST

Suite *kv_model_suite(void)
{
    Suite *s = suite_create("model");
    TCase *tc = tcase_create("model");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_model_matches_store_under_random_commands);
    suite_add_tcase(s, tc);
    return s;
}
