/*
 * kv_session.c - client sessions: applying a command that carries a request
 * id at most once, and handing a retry the outcome of the first time
 * (docs/kv.md, "Sessions").
 *
 * "sessions": u64be client id -> u64le seq, u64le index, u64le revision,
 *             u32le reply_len, reply
 * "session_lru": u64be index, u64be client id -> (empty): every session by
 *             the log index of its last write, oldest first, for eviction.
 *
 * The top bit of reply_len says what the reply bytes are: clear, the opaque
 * reply the proposer built (kv_cmd.reply); set, the entry's own result as
 * encoded by result_encode() below (kv_cmd.keep_result).
 */
#include <string.h>

#include "kv_internal.h"

#define SESS_HEADER 28u
#define SESS_RESULT_BIT 0x80000000u

/* A kept result:
 *
 *   result := u8 succeeded u8 elided u32 n_ops op_result{n_ops}
 *   op_result := u8 type u8 more u64 count u32 n_kvs kv{n_kvs}
 *   kv := u32 key_len key u8 has_value [u32 value_len value]
 *         u64 create_revision u64 mod_revision u64 version
 *
 * When it would exceed KV_SESSION_REPLY_MAX, only "succeeded, elided" is
 * kept (n_ops = 0): the retry learns that the request was applied, not
 * what it read. */
#define RESULT_HEADER 6u
#define OP_HEADER 14u
#define KV_FIXED 29u

struct session
{
    uint64_t seq;
    uint64_t index;
    uint64_t revision;
    uint32_t reply_len;
    bool is_result;
    const uint8_t *reply; /* into LMDB memory */
};

/* Returns 0 (found), KV_ENOTFOUND or an error. */
static int session_get(struct kv_store *s,
                       MDB_txn *txn,
                       uint64_t client_id,
                       struct session *out)
{
    uint8_t kb[8];
    MDB_val k = {8, kb};
    MDB_val v;
    kv_put_u64be(kb, client_id);
    int rc = mdb_get(txn, s->dbi_sess, &k, &v);
    if (rc == MDB_NOTFOUND) {
        return KV_ENOTFOUND;
    }
    if (rc != 0) {
        return kv_mdb_error(s, rc, "session get");
    }
    const uint8_t *p = v.mv_data;
    uint32_t len = v.mv_size >= SESS_HEADER ? kv_get_u32le(p + 24) : 0;
    out->is_result = (len & SESS_RESULT_BIT) != 0;
    len &= ~SESS_RESULT_BIT;
    if (v.mv_size < SESS_HEADER || v.mv_size - SESS_HEADER != len) {
        return kv_set_error(s, KV_ECORRUPT, "sessions: malformed record");
    }
    out->seq = kv_get_u64le(p);
    out->index = kv_get_u64le(p + 8);
    out->revision = kv_get_u64le(p + 16);
    out->reply_len = len;
    out->reply = p + SESS_HEADER;
    return 0;
}

static void lru_key(uint8_t kb[16], uint64_t index, uint64_t client_id)
{
    kv_put_u64be(kb, index);
    kv_put_u64be(kb + 8, client_id);
}

/* ---------------------------------------------------------------------- */
/* Kept results                                                            */

static size_t result_size(const struct kv_entry_result *er)
{
    size_t n = RESULT_HEADER;
    for (size_t i = 0; i < er->n_ops; i++) {
        const struct kv_op_result *o = &er->ops[i];
        n += OP_HEADER;
        for (size_t j = 0; j < o->n_kvs; j++) {
            n += KV_FIXED + o->kvs[j].key_len;
            if (o->kvs[j].value != NULL) {
                n += 4 + (size_t)o->kvs[j].value_len;
            }
        }
        if (n > KV_SESSION_REPLY_MAX) {
            return RESULT_HEADER; /* elided */
        }
    }
    return n;
}

/* Writes the result of @er into @p (result_size(er) bytes). */
static void result_encode(const struct kv_entry_result *er,
                          uint8_t *p,
                          size_t size)
{
    bool elided = size == RESULT_HEADER && er->n_ops > 0;
    p[0] = er->succeeded ? 1 : 0;
    p[1] = elided ? 1 : 0;
    kv_put_u32le(p + 2, elided ? 0 : (uint32_t)er->n_ops);
    p += RESULT_HEADER;
    for (size_t i = 0; !elided && i < er->n_ops; i++) {
        const struct kv_op_result *o = &er->ops[i];
        p[0] = o->type;
        p[1] = o->more ? 1 : 0;
        kv_put_u64le(p + 2, o->count);
        kv_put_u32le(p + 10, (uint32_t)o->n_kvs);
        p += OP_HEADER;
        for (size_t j = 0; j < o->n_kvs; j++) {
            const struct kv_kv *kv = &o->kvs[j];
            kv_put_u32le(p, kv->key_len);
            memcpy(p + 4, kv->key, kv->key_len);
            p += 4 + kv->key_len;
            *p++ = kv->value != NULL ? 1 : 0;
            if (kv->value != NULL) {
                kv_put_u32le(p, kv->value_len);
                memcpy(p + 4, kv->value, kv->value_len);
                p += 4 + kv->value_len;
            }
            kv_put_u64le(p, kv->create_revision);
            kv_put_u64le(p + 8, kv->mod_revision);
            kv_put_u64le(p + 16, kv->version);
            p += 24;
        }
    }
}

/* Bounds-checked reading of a kept result. */
struct rd
{
    const uint8_t *p;
    size_t left;
};

static const uint8_t *rd_take(struct rd *r, size_t n)
{
    if (r->left < n) {
        return NULL;
    }
    const uint8_t *p = r->p;
    r->p += n;
    r->left -= n;
    return p;
}

/* Decodes a kept result into @er; the arrays and bytes go to @arena. */
static int result_decode(struct kv_store *s,
                         const uint8_t *buf,
                         size_t len,
                         struct kv_entry_result *er,
                         struct kv_arena_chunk **arena,
                         const struct kv_allocator *alloc)
{
    struct rd r = {buf, len};
    const uint8_t *h = rd_take(&r, RESULT_HEADER);
    if (h == NULL || h[0] > 1 || h[1] > 1) {
        goto corrupt;
    }
    er->succeeded = h[0] == 1;
    er->result_elided = h[1] == 1;
    uint32_t n_ops = kv_get_u32le(h + 2);
    if (n_ops > KV_TXN_OPS_MAX || n_ops * (size_t)OP_HEADER > r.left) {
        goto corrupt;
    }
    er->n_ops = n_ops;
    er->ops = NULL;
    if (n_ops == 0) {
        return 0;
    }
    er->ops = kv_arena_alloc(arena, alloc, n_ops * sizeof(*er->ops));
    if (er->ops == NULL) {
        return KV_ENOMEM;
    }
    memset(er->ops, 0, n_ops * sizeof(*er->ops));
    for (uint32_t i = 0; i < n_ops; i++) {
        struct kv_op_result *o = &er->ops[i];
        const uint8_t *oh = rd_take(&r, OP_HEADER);
        if (oh == NULL || oh[1] > 1) {
            goto corrupt;
        }
        o->type = oh[0];
        o->more = oh[1] == 1;
        o->count = kv_get_u64le(oh + 2);
        uint32_t n_kvs = kv_get_u32le(oh + 10);
        if ((size_t)n_kvs * KV_FIXED > r.left) {
            goto corrupt;
        }
        o->n_kvs = n_kvs;
        if (n_kvs == 0) {
            continue;
        }
        o->kvs = kv_arena_alloc(arena, alloc, n_kvs * sizeof(*o->kvs));
        if (o->kvs == NULL) {
            return KV_ENOMEM;
        }
        for (uint32_t j = 0; j < n_kvs; j++) {
            struct kv_kv *kv = &o->kvs[j];
            const uint8_t *f = rd_take(&r, 4);
            if (f == NULL) {
                goto corrupt;
            }
            kv->key_len = kv_get_u32le(f);
            if ((kv->key = rd_take(&r, kv->key_len)) == NULL ||
                (f = rd_take(&r, 1)) == NULL || f[0] > 1) {
                goto corrupt;
            }
            kv->value = NULL;
            kv->value_len = 0;
            if (f[0] == 1) {
                if ((f = rd_take(&r, 4)) == NULL) {
                    goto corrupt;
                }
                kv->value_len = kv_get_u32le(f);
                if ((kv->value = rd_take(&r, kv->value_len)) == NULL) {
                    goto corrupt;
                }
            }
            if ((f = rd_take(&r, 24)) == NULL) {
                goto corrupt;
            }
            kv->create_revision = kv_get_u64le(f);
            kv->mod_revision = kv_get_u64le(f + 8);
            kv->version = kv_get_u64le(f + 16);
        }
    }
    if (r.left != 0) {
        goto corrupt;
    }
    /* The key and value pointers point into @buf, which the caller copied
     * into the arena: they live as long as the result. */
    return 0;
corrupt:
    return kv_set_error(s, KV_ECORRUPT, "sessions: malformed kept result");
}

/* ---------------------------------------------------------------------- */
/* Check and record                                                        */

/* Whether a new session may be created at log @index: there is room, or
 * the session idle the longest (the one kv_session_record() evicts) last
 * wrote at least session_evict_after entries ago. Depends on the log
 * alone, so every replica decides the same. */
static int session_room(struct kv_store *s,
                        MDB_txn *txn,
                        uint64_t index,
                        bool *room)
{
    MDB_stat st;
    MDB_val lk, lv;
    MDB_cursor *cur = NULL;
    int rc = mdb_stat(txn, s->dbi_sess, &st);
    if (rc != 0) {
        return kv_mdb_error(s, rc, "session stat");
    }
    *room = st.ms_entries < s->opts.session_max;
    if (*room) {
        return 0;
    }
    if ((rc = mdb_cursor_open(txn, s->dbi_lru, &cur)) != 0) {
        return kv_mdb_error(s, rc, "session lru cursor");
    }
    rc = mdb_cursor_get(cur, &lk, &lv, MDB_FIRST);
    mdb_cursor_close(cur);
    if (rc == MDB_NOTFOUND) {
        return 0;
    }
    if (rc != 0) {
        return kv_mdb_error(s, rc, "session lru first");
    }
    if (lk.mv_size != 16) {
        return kv_set_error(s, KV_ECORRUPT, "session_lru: malformed key");
    }
    uint64_t last = kv_get_u64be(lk.mv_data);
    *room = index >= last && index - last >= s->opts.session_evict_after;
    return 0;
}

/* Not run: a refusal (enum kv_session_refusal). */
static int refuse(const struct kv_cmd *cmd,
                  struct kv_entry_result *er,
                  uint64_t last_seq,
                  uint8_t why,
                  bool *run)
{
    *run = false;
    er->cmd_type = cmd->type;
    er->superseded = true;
    er->session_refusal = why;
    er->session_seq = last_seq;
    return 0;
}

int kv_session_check(struct kv_store *s,
                     MDB_txn *txn,
                     uint64_t index,
                     const struct kv_cmd *cmd,
                     struct kv_entry_result *er,
                     struct kv_arena_chunk **arena,
                     const struct kv_allocator *alloc,
                     bool *run)
{
    struct session old;
    int rv = session_get(s, txn, cmd->client_id, &old);
    *run = true;
    if (rv == KV_ENOTFOUND) {
        /* A client's first request has seq 1; any other seq without a
         * session is a retry of a session that expired (or a client that
         * skipped ahead): running it could apply a request twice. From
         * the Raft dissertation, section 6.3: a request of an unknown
         * session is refused, not run. */
        if (cmd->seq != 1) {
            return refuse(cmd, er, 0, KV_SESSION_EXPIRED, run);
        }
        bool room;
        if ((rv = session_room(s, txn, index, &room)) != 0) {
            return rv;
        }
        return room ? 0 : refuse(cmd, er, 0, KV_SESSION_FULL, run);
    }
    if (rv != 0) {
        return rv;
    }
    if (cmd->seq > old.seq) {
        if (cmd->seq - old.seq > KV_SESSION_SEQ_STEP_MAX) {
            return refuse(cmd, er, old.seq, KV_SESSION_TOO_FAR, run);
        }
        return 0;
    }
    *run = false;
    er->cmd_type = cmd->type;
    er->session_seq = old.seq;
    if (cmd->seq < old.seq) {
        er->superseded = true;
        return 0;
    }
    er->duplicate = true;
    er->succeeded = true;
    er->session_revision = old.revision;
    if (old.reply_len == 0) {
        return 0;
    }
    /* Copied out of LMDB: its pages are gone once the transaction ends. */
    uint8_t *copy = kv_arena_alloc(arena, alloc, old.reply_len);
    if (copy == NULL) {
        return KV_ENOMEM;
    }
    memcpy(copy, old.reply, old.reply_len);
    if (old.is_result) {
        er->result_kept = true;
        return result_decode(s, copy, old.reply_len, er, arena, alloc);
    }
    er->reply = copy;
    er->reply_len = old.reply_len;
    return 0;
}

int kv_session_record(struct kv_store *s,
                      MDB_txn *txn,
                      const struct kv_cmd *cmd,
                      const struct kv_entry_result *er,
                      uint64_t index)
{
    struct session old;
    uint8_t kb[8];
    uint8_t lb[16];
    size_t len = cmd->keep_result ? result_size(er) : cmd->reply_len;
    MDB_val k = {8, kb};
    MDB_val v = {SESS_HEADER + len, NULL};
    MDB_val lk = {16, lb};
    MDB_val lv = {0, NULL};
    bool fresh = false;
    int rc;
    int rv = session_get(s, txn, cmd->client_id, &old);
    if (rv == KV_ENOTFOUND) {
        fresh = true;
    } else if (rv != 0) {
        return rv;
    } else {
        lru_key(lb, old.index, cmd->client_id);
        rc = mdb_del(txn, s->dbi_lru, &lk, NULL);
        if (rc != 0 && rc != MDB_NOTFOUND) {
            return kv_mdb_error(s, rc, "session lru delete");
        }
    }
    kv_put_u64be(kb, cmd->client_id);
    if ((rc = mdb_put(txn, s->dbi_sess, &k, &v, MDB_RESERVE)) != 0) {
        return kv_mdb_error(s, rc, "session put");
    }
    uint8_t *p = v.mv_data;
    kv_put_u64le(p, cmd->seq);
    kv_put_u64le(p + 8, index);
    kv_put_u64le(p + 16, er->revision);
    kv_put_u32le(p + 24,
                 (uint32_t)len | (cmd->keep_result ? SESS_RESULT_BIT : 0));
    if (cmd->keep_result) {
        result_encode(er, p + SESS_HEADER, len);
    } else if (len > 0) {
        memcpy(p + SESS_HEADER, cmd->reply, len);
    }
    lru_key(lb, index, cmd->client_id);
    if ((rc = mdb_put(txn, s->dbi_lru, &lk, &lv, 0)) != 0) {
        return kv_mdb_error(s, rc, "session lru put");
    }
    if (!fresh) {
        return 0;
    }
    MDB_stat st;
    if ((rc = mdb_stat(txn, s->dbi_sess, &st)) != 0) {
        return kv_mdb_error(s, rc, "session stat");
    }
    if (st.ms_entries <= s->opts.session_max) {
        return 0;
    }
    /* Over the bound: evict the session whose last write is the oldest.
     * The order depends only on the log, so every replica evicts the same
     * one. */
    MDB_cursor *cur = NULL;
    if ((rc = mdb_cursor_open(txn, s->dbi_lru, &cur)) != 0) {
        return kv_mdb_error(s, rc, "session lru cursor");
    }
    rc = mdb_cursor_get(cur, &lk, &lv, MDB_FIRST);
    if (rc == 0 && lk.mv_size != 16) {
        mdb_cursor_close(cur);
        return kv_set_error(s, KV_ECORRUPT, "session_lru: malformed key");
    }
    if (rc == 0) {
        memcpy(kb, (const uint8_t *)lk.mv_data + 8, 8);
        rc = mdb_cursor_del(cur, 0);
    }
    mdb_cursor_close(cur);
    if (rc == 0) {
        k.mv_size = 8;
        k.mv_data = kb;
        rc = mdb_del(txn, s->dbi_sess, &k, NULL);
    }
    if (rc != 0) {
        return kv_mdb_error(s, rc, "session evict");
    }
    return 0;
}
