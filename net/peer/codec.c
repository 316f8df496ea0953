/*
 * codec.c - the peer wire format: frames, the hello and every Raft message.
 *
 * docs/peer.md is the normative description (version 1); the layouts drawn
 * here follow it. All integers are little endian and unaligned. Every
 * message payload starts with the same 26-byte header, then a body whose
 * fields come in a fixed order per type. The format is canonical: a payload
 * that decodes encodes back to the same bytes, which the fuzz target checks.
 */
#include <string.h>

#include <stdlib.h>
/* The hash inlined from the header: the same values as libxxhash's, but
 * no call through the PLT and code the compiler specializes for the
 * short inputs of a record (a third of the cost of every write). */
#define XXH_INLINE_ALL
#include <xxhash.h>

#include "codec.h"

/* Identifies a ballot peer connection ("BLTP"), so that a client that dials
 * the peer port by mistake is refused at its first frame. */
#define HELLO_MAGIC 0x50544c42u     /* "BLTP" */
#define CHALLENGE_MAGIC 0x43544c42u /* "BLTC" */
#define AUTH_MAGIC 0x41544c42u      /* "BLTA" */

/* Bytes of the header every message payload starts with. */
#define MSG_HEADER_BYTES 26u
/* Bytes of an entry in an append before its data. */
#define ENTRY_HEADER_BYTES 21u

static const struct
{
    int code;
    const char *text;
} errors[] = {
    {0, "success"},
    {CODEC_EINVAL, "codec: malformed payload or frame"},
    {CODEC_ECHECKSUM, "codec: frame checksum mismatch"},
    {CODEC_ETOOBIG, "codec: length beyond the limits"},
    {CODEC_ENOMEM, "codec: out of memory"},
    {CODEC_EVERSION, "codec: unknown wire version"},
};

const char *codec_strerror(int code)
{
    for (size_t i = 0; i < sizeof(errors) / sizeof(errors[0]); i++) {
        if (errors[i].code == code) {
            return errors[i].text;
        }
    }
    return "codec: unknown error";
}

/* ---------------------------------------------------------------------- */
/* Primitive writers and a bounds-checked reader                           */

static uint8_t *put_u8(uint8_t *p, uint8_t v)
{
    *p = v;
    return p + 1;
}

static uint8_t *put_u32(uint8_t *p, uint32_t v)
{
    for (unsigned i = 0; i < 4; i++) {
        p[i] = (uint8_t)(v >> (8 * i));
    }
    return p + 4;
}

static uint8_t *put_u64(uint8_t *p, uint64_t v)
{
    for (unsigned i = 0; i < 8; i++) {
        p[i] = (uint8_t)(v >> (8 * i));
    }
    return p + 8;
}

static uint8_t *put_bool(uint8_t *p, bool v)
{
    return put_u8(p, v ? 1 : 0);
}

static uint8_t *put_bytes(uint8_t *p, const uint8_t *data, size_t len)
{
    if (len > 0) {
        memcpy(p, data, len);
    }
    return p + len;
}

static uint32_t load_u32(const uint8_t *p)
{
    uint32_t v = 0;
    for (unsigned i = 4; i-- > 0;) {
        v = (v << 8) | p[i];
    }
    return v;
}

static uint64_t load_u64(const uint8_t *p)
{
    uint64_t v = 0;
    for (unsigned i = 8; i-- > 0;) {
        v = (v << 8) | p[i];
    }
    return v;
}

/* A cursor over hostile input. The first failure sticks, so a decoder can
 * read a whole fixed-size body and check the error once; every read after a
 * failure returns zeros and consumes nothing. */
struct reader
{
    const uint8_t *p;
    size_t left;
    int err;
};

static bool need(struct reader *r, size_t n)
{
    if (r->err != 0) {
        return false;
    }
    if (r->left < n) {
        r->err = CODEC_EINVAL;
        return false;
    }
    return true;
}

static uint8_t get_u8(struct reader *r)
{
    if (!need(r, 1)) {
        return 0;
    }
    uint8_t v = r->p[0];
    r->p += 1;
    r->left -= 1;
    return v;
}

static uint32_t get_u32(struct reader *r)
{
    if (!need(r, 4)) {
        return 0;
    }
    uint32_t v = load_u32(r->p);
    r->p += 4;
    r->left -= 4;
    return v;
}

static uint64_t get_u64(struct reader *r)
{
    if (!need(r, 8)) {
        return 0;
    }
    uint64_t v = load_u64(r->p);
    r->p += 8;
    r->left -= 8;
    return v;
}

/* Booleans are one byte, 0 or 1; anything else would give one message two
 * encodings, so it is refused. */
static bool get_bool(struct reader *r)
{
    uint8_t v = get_u8(r);
    if (v > 1 && r->err == 0) {
        r->err = CODEC_EINVAL;
    }
    return v == 1;
}

/* Returns a pointer to the next @n bytes, in the input, or NULL. */
static const uint8_t *get_bytes(struct reader *r, size_t n)
{
    if (!need(r, n)) {
        return NULL;
    }
    const uint8_t *v = n > 0 ? r->p : NULL;
    r->p += n;
    r->left -= n;
    return v;
}

/* ---------------------------------------------------------------------- */
/* Frames                                                                  */

void codec_frame_header(const uint8_t *payload, uint32_t len, uint8_t *hdr)
{
    put_u32(hdr, len);
    put_u64(hdr + 4, XXH3_64bits(payload, len));
}

int codec_frame_length(const uint8_t *hdr, uint32_t *len)
{
    uint32_t n = load_u32(hdr);
    if (n > CODEC_FRAME_MAX) {
        return CODEC_ETOOBIG;
    }
    *len = n;
    return 0;
}

int codec_frame_verify(const uint8_t *hdr, const uint8_t *payload)
{
    uint32_t n = load_u32(hdr);
    if (XXH3_64bits(payload, n) != load_u64(hdr + 4)) {
        return CODEC_ECHECKSUM;
    }
    return 0;
}

/* ---------------------------------------------------------------------- */
/* Hello                                                                   */

/*
 * Hello payload, 64 bytes:
 *
 *   0       4         8              16             24             32    64
 *   +-------+---------+--------------+--------------+--------------+-----+
 *   | magic | version | cluster_id   | from         | to           |nonce|
 *   | u32   | u32     | u64          | u64          | u64          | 32  |
 *   +-------+---------+--------------+--------------+--------------+-----+
 *
 * magic is "BLTP" (0x50544c42 read as a little-endian u32).
 */
void codec_hello_encode(const struct codec_hello *h, uint8_t *buf)
{
    uint8_t *p = buf;
    p = put_u32(p, HELLO_MAGIC);
    p = put_u32(p, h->version);
    p = put_u64(p, h->cluster_id);
    p = put_u64(p, h->from);
    p = put_u64(p, h->to);
    memcpy(p, h->nonce, CODEC_NONCE_BYTES);
}

int codec_hello_decode(const uint8_t *buf, size_t len, struct codec_hello *h)
{
    if (len != CODEC_HELLO_BYTES || load_u32(buf) != HELLO_MAGIC) {
        return CODEC_EINVAL;
    }
    uint32_t version = load_u32(buf + 4);
    if (version != CODEC_HELLO_VERSION) {
        return CODEC_EVERSION;
    }
    struct codec_hello out = {
        .version = version,
        .cluster_id = load_u64(buf + 8),
        .from = load_u64(buf + 16),
        .to = load_u64(buf + 24),
    };
    memcpy(out.nonce, buf + 32, CODEC_NONCE_BYTES);
    /* Id 0 means "nobody": it can neither speak nor be spoken to. */
    if (out.from == 0 || out.to == 0) {
        return CODEC_EINVAL;
    }
    *h = out;
    return 0;
}

/*
 * Challenge payload, 68 bytes: u32 magic "BLTC", 32-byte nonce, 32-byte
 * proof. Proof payload, 36 bytes: u32 magic "BLTA", 32-byte proof.
 */
void codec_challenge_encode(const struct codec_challenge *c, uint8_t *buf)
{
    uint8_t *p = put_u32(buf, CHALLENGE_MAGIC);
    memcpy(p, c->nonce, CODEC_NONCE_BYTES);
    memcpy(p + CODEC_NONCE_BYTES, c->proof, CODEC_PROOF_BYTES);
}

int codec_challenge_decode(const uint8_t *buf,
                           size_t len,
                           struct codec_challenge *c)
{
    if (len != CODEC_CHALLENGE_BYTES || load_u32(buf) != CHALLENGE_MAGIC) {
        return CODEC_EINVAL;
    }
    memcpy(c->nonce, buf + 4, CODEC_NONCE_BYTES);
    memcpy(c->proof, buf + 4 + CODEC_NONCE_BYTES, CODEC_PROOF_BYTES);
    return 0;
}

void codec_auth_encode(const uint8_t proof[CODEC_PROOF_BYTES], uint8_t *buf)
{
    uint8_t *p = put_u32(buf, AUTH_MAGIC);
    memcpy(p, proof, CODEC_PROOF_BYTES);
}

int codec_auth_decode(const uint8_t *buf,
                      size_t len,
                      uint8_t proof[CODEC_PROOF_BYTES])
{
    if (len != CODEC_AUTH_BYTES || load_u32(buf) != AUTH_MAGIC) {
        return CODEC_EINVAL;
    }
    memcpy(proof, buf + 4, CODEC_PROOF_BYTES);
    return 0;
}

/* ---------------------------------------------------------------------- */
/* Messages                                                                */

/* Bytes of the body of @m after the common header. */
static size_t body_size(const struct raft_message *m)
{
    switch (m->type) {
    case RAFT_MSG_PREVOTE:
    case RAFT_MSG_VOTE:
        return 17;
    case RAFT_MSG_PREVOTE_RESP:
    case RAFT_MSG_VOTE_RESP:
        return 1;
    case RAFT_MSG_APPEND: {
        size_t n = 28;
        for (uint32_t i = 0; i < m->u.append.n_entries; i++) {
            n += ENTRY_HEADER_BYTES + m->u.append.entries[i].len;
        }
        return n;
    }
    case RAFT_MSG_APPEND_RESP:
        return 25;
    case RAFT_MSG_HEARTBEAT:
        return 16;
    case RAFT_MSG_HEARTBEAT_RESP:
        return 8;
    case RAFT_MSG_SNAPSHOT: {
        uint8_t conf[RAFT_CONF_ENCODED_MAX];
        size_t conf_len;
        raft_conf_encode(&m->u.snapshot.meta.conf, conf, &conf_len);
        return 24 + 4 + conf_len + 8 + 4 + 1 + m->u.snapshot.len;
    }
    case RAFT_MSG_SNAPSHOT_RESP:
        return 17;
    case RAFT_MSG_TIMEOUT_NOW:
        return 0;
    case RAFT_MSG_READ_INDEX:
        return 8;
    case RAFT_MSG_READ_INDEX_RESP:
        return 17;
    default:
        return 0;
    }
}

size_t codec_message_size(const struct raft_message *m)
{
    return MSG_HEADER_BYTES + body_size(m);
}

/*
 * Every message payload starts with this header (26 bytes):
 *
 *   0     1     2          10         18         26
 *   +-----+-----+----------+----------+----------+
 *   | ver | type| from     | to       | term     |  body ...
 *   | u8  | u8  | u64      | u64      | u64      |
 *   +-----+-----+----------+----------+----------+
 *
 * ver is CODEC_VERSION and type an enum raft_message_type. The bodies, in
 * field order (bool is a u8 holding 0 or 1):
 *
 *   PREVOTE, VOTE (17)        u64 last_log_index, u64 last_log_term,
 *                             bool transfer
 *   PREVOTE_RESP, VOTE_RESP   bool granted
 *   APPEND (28 + entries)     u64 prev_index, u64 prev_term, u64 commit,
 *                             u32 n_entries, then n_entries times:
 *                             u64 term, u64 index, u8 type, u32 len,
 *                             len bytes of data
 *   APPEND_RESP (25)          bool success, u64 index, u64 hint_term,
 *                             u64 hint_index
 *   HEARTBEAT (16)            u64 commit, u64 read_seq
 *   HEARTBEAT_RESP (8)        u64 read_seq
 *   SNAPSHOT (41 + conf+data) u64 meta.index, u64 meta.term, u64 meta.size,
 *                             u32 conf_len, conf_len bytes of
 *                             raft_conf_encode(meta.conf), u64 offset,
 *                             u32 len, bool done, len bytes of data
 *   SNAPSHOT_RESP (17)        u64 index, u64 next_offset, bool done
 *   TIMEOUT_NOW (0)           nothing
 *   READ_INDEX (8)            u64 ctx
 *   READ_INDEX_RESP (17)      u64 ctx, u64 index, bool ok
 *
 * An append's entry is drawn here (21 bytes + data):
 *
 *   0          8          16   17     21
 *   +----------+----------+----+------+-----------------+
 *   | term     | index    |type| len  | data (len)      |
 *   +----------+----------+----+------+-----------------+
 *
 * The payload ends exactly where the body ends.
 */
void codec_message_encode(const struct raft_message *m, uint8_t *buf)
{
    uint8_t *p = buf;
    p = put_u8(p, (uint8_t)CODEC_VERSION);
    p = put_u8(p, m->type);
    p = put_u64(p, m->from);
    p = put_u64(p, m->to);
    p = put_u64(p, m->term);

    switch (m->type) {
    case RAFT_MSG_PREVOTE:
    case RAFT_MSG_VOTE:
        p = put_u64(p, m->u.vote.last_log_index);
        p = put_u64(p, m->u.vote.last_log_term);
        put_bool(p, m->u.vote.transfer);
        break;
    case RAFT_MSG_PREVOTE_RESP:
    case RAFT_MSG_VOTE_RESP:
        put_bool(p, m->u.vote_resp.granted);
        break;
    case RAFT_MSG_APPEND: {
        const struct raft_msg_append *a = &m->u.append;
        p = put_u64(p, a->prev_index);
        p = put_u64(p, a->prev_term);
        p = put_u64(p, a->commit);
        p = put_u32(p, a->n_entries);
        for (uint32_t i = 0; i < a->n_entries; i++) {
            const struct raft_entry *e = &a->entries[i];
            p = put_u64(p, e->term);
            p = put_u64(p, e->index);
            p = put_u8(p, e->type);
            p = put_u32(p, e->len);
            p = put_bytes(p, e->data, e->len);
        }
        break;
    }
    case RAFT_MSG_APPEND_RESP:
        p = put_bool(p, m->u.append_resp.success);
        p = put_u64(p, m->u.append_resp.index);
        p = put_u64(p, m->u.append_resp.hint_term);
        put_u64(p, m->u.append_resp.hint_index);
        break;
    case RAFT_MSG_HEARTBEAT:
        p = put_u64(p, m->u.heartbeat.commit);
        put_u64(p, m->u.heartbeat.read_seq);
        break;
    case RAFT_MSG_HEARTBEAT_RESP:
        put_u64(p, m->u.heartbeat_resp.read_seq);
        break;
    case RAFT_MSG_SNAPSHOT: {
        const struct raft_msg_snapshot *s = &m->u.snapshot;
        uint8_t conf[RAFT_CONF_ENCODED_MAX];
        size_t conf_len;
        raft_conf_encode(&s->meta.conf, conf, &conf_len);
        p = put_u64(p, s->meta.index);
        p = put_u64(p, s->meta.term);
        p = put_u64(p, s->meta.size);
        p = put_u32(p, (uint32_t)conf_len);
        p = put_bytes(p, conf, conf_len);
        p = put_u64(p, s->offset);
        p = put_u32(p, s->len);
        p = put_bool(p, s->done);
        put_bytes(p, s->data, s->len);
        break;
    }
    case RAFT_MSG_SNAPSHOT_RESP:
        p = put_u64(p, m->u.snapshot_resp.index);
        p = put_u64(p, m->u.snapshot_resp.next_offset);
        put_bool(p, m->u.snapshot_resp.done);
        break;
    case RAFT_MSG_TIMEOUT_NOW:
        break;
    case RAFT_MSG_READ_INDEX:
        put_u64(p, m->u.read_index.ctx);
        break;
    case RAFT_MSG_READ_INDEX_RESP:
        p = put_u64(p, m->u.read_index.ctx);
        p = put_u64(p, m->u.read_index.index);
        put_bool(p, m->u.read_index.ok);
        break;
    default:
        break;
    }
}

/* Decodes an append body. The entry count is checked against the limit and
 * against the bytes left (each entry takes at least ENTRY_HEADER_BYTES)
 * before the entry array is allocated, so a hostile count cannot make the
 * decoder allocate more than the input could describe. */
static int decode_append(struct reader *r,
                         uint32_t max_entries,
                         uint32_t max_entry_bytes,
                         struct raft_msg_append *a,
                         void **block)
{
    a->prev_index = get_u64(r);
    a->prev_term = get_u64(r);
    a->commit = get_u64(r);
    uint32_t n = get_u32(r);
    if (r->err != 0) {
        return r->err;
    }
    if (n > max_entries) {
        return CODEC_ETOOBIG;
    }
    if (n > r->left / ENTRY_HEADER_BYTES) {
        return CODEC_EINVAL;
    }
    a->n_entries = n;
    a->entries = NULL;
    if (n == 0) {
        return 0;
    }
    struct raft_entry *entries = malloc((size_t)n * sizeof(*entries));
    if (entries == NULL) {
        return CODEC_ENOMEM;
    }
    for (uint32_t i = 0; i < n; i++) {
        struct raft_entry *e = &entries[i];
        e->term = get_u64(r);
        e->index = get_u64(r);
        e->type = get_u8(r);
        e->len = get_u32(r);
        if (r->err != 0) {
            goto fail;
        }
        if (e->type != RAFT_ENTRY_NORMAL && e->type != RAFT_ENTRY_CONF) {
            r->err = CODEC_EINVAL;
            goto fail;
        }
        if (e->len > max_entry_bytes) {
            r->err = CODEC_ETOOBIG;
            goto fail;
        }
        e->data = get_bytes(r, e->len);
        if (r->err != 0) {
            goto fail;
        }
    }
    a->entries = entries;
    *block = entries;
    return 0;

fail:
    free(entries);
    a->n_entries = 0;
    return r->err;
}

static int decode_snapshot(struct reader *r, struct raft_msg_snapshot *s)
{
    s->meta.index = get_u64(r);
    s->meta.term = get_u64(r);
    s->meta.size = get_u64(r);
    uint32_t conf_len = get_u32(r);
    if (r->err != 0) {
        return r->err;
    }
    /* A configuration announcing more members than RAFT_CONF_MAX is over a
     * limit rather than merely malformed; tell the two apart for the
     * counters before the conf decoder refuses it either way. */
    if (conf_len > RAFT_CONF_ENCODED_MAX) {
        return CODEC_ETOOBIG;
    }
    const uint8_t *conf = get_bytes(r, conf_len);
    if (r->err != 0) {
        return r->err;
    }
    if (conf_len >= 8 && load_u32(conf + 4) > RAFT_CONF_MAX) {
        return CODEC_ETOOBIG;
    }
    if (raft_conf_decode(conf, conf_len, &s->meta.conf) != 0) {
        return CODEC_EINVAL;
    }
    s->offset = get_u64(r);
    s->len = get_u32(r);
    s->done = get_bool(r);
    s->data = get_bytes(r, s->len);
    return r->err;
}

int codec_message_decode(const uint8_t *buf,
                         size_t len,
                         uint32_t max_entries,
                         uint32_t max_entry_bytes,
                         struct raft_message *m,
                         void **block)
{
    struct reader r = {.p = buf, .left = len, .err = 0};
    struct raft_message out;
    void *blk = NULL;
    int rv;

    *block = NULL;
    memset(&out, 0, sizeof(out));
    uint8_t version = get_u8(&r);
    if (r.err != 0) {
        return r.err;
    }
    if (version != CODEC_VERSION) {
        return CODEC_EVERSION;
    }
    out.type = get_u8(&r);
    out.from = get_u64(&r);
    out.to = get_u64(&r);
    out.term = get_u64(&r);
    if (r.err != 0) {
        return r.err;
    }

    switch (out.type) {
    case RAFT_MSG_PREVOTE:
    case RAFT_MSG_VOTE:
        out.u.vote.last_log_index = get_u64(&r);
        out.u.vote.last_log_term = get_u64(&r);
        out.u.vote.transfer = get_bool(&r);
        break;
    case RAFT_MSG_PREVOTE_RESP:
    case RAFT_MSG_VOTE_RESP:
        out.u.vote_resp.granted = get_bool(&r);
        break;
    case RAFT_MSG_APPEND:
        rv = decode_append(&r, max_entries, max_entry_bytes, &out.u.append,
                           &blk);
        if (rv != 0) {
            return rv;
        }
        break;
    case RAFT_MSG_APPEND_RESP:
        out.u.append_resp.success = get_bool(&r);
        out.u.append_resp.index = get_u64(&r);
        out.u.append_resp.hint_term = get_u64(&r);
        out.u.append_resp.hint_index = get_u64(&r);
        break;
    case RAFT_MSG_HEARTBEAT:
        out.u.heartbeat.commit = get_u64(&r);
        out.u.heartbeat.read_seq = get_u64(&r);
        break;
    case RAFT_MSG_HEARTBEAT_RESP:
        out.u.heartbeat_resp.read_seq = get_u64(&r);
        break;
    case RAFT_MSG_SNAPSHOT:
        rv = decode_snapshot(&r, &out.u.snapshot);
        if (rv != 0) {
            return rv;
        }
        break;
    case RAFT_MSG_SNAPSHOT_RESP:
        out.u.snapshot_resp.index = get_u64(&r);
        out.u.snapshot_resp.next_offset = get_u64(&r);
        out.u.snapshot_resp.done = get_bool(&r);
        break;
    case RAFT_MSG_TIMEOUT_NOW:
        break;
    case RAFT_MSG_READ_INDEX:
        out.u.read_index.ctx = get_u64(&r);
        break;
    case RAFT_MSG_READ_INDEX_RESP:
        out.u.read_index.ctx = get_u64(&r);
        out.u.read_index.index = get_u64(&r);
        out.u.read_index.ok = get_bool(&r);
        break;
    default:
        return CODEC_EINVAL;
    }

    /* Trailing bytes would let one message have many encodings and hide
     * data a newer sender meant us to see: refuse them. */
    if (r.err == 0 && r.left != 0) {
        r.err = CODEC_EINVAL;
    }
    if (r.err != 0) {
        free(blk);
        return r.err;
    }
    *m = out;
    *block = blk;
    return 0;
}
