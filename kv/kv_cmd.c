/*
 * kv_cmd.c - the binary encoding of state-machine commands.
 *
 * Commands travel inside Raft entries, so every replica decodes the same
 * bytes; the decoder must therefore be deterministic and must treat its input
 * as hostile (a leader may be buggy, a disk may be corrupt). Version 1 layout,
 * integers little endian (docs/kv.md is normative):
 *
 *   command      := u8 version(=1) u8 cmd_type body
 *   body         := op                         cmd_type 1..3, op type equal
 *                 | u16 n_cmps cmp{n_cmps}     cmd_type 4 (transaction)
 *                   u16 n_then op{n_then}
 *                   u16 n_else op{n_else}
 *   op           := u8 op_type u8 flags u32 key_len key[key_len] tail
 *   tail (put)   := u32 value_len value[value_len]
 *   tail (del)   := (nothing)
 *   tail (delr)  := u32 end_len end[end_len]
 *   tail (range) := u32 end_len end[end_len] u64 limit
 *   cmp          := u8 target u8 op u32 key_len key[key_len]
 *                   (u32 value_len value[value_len] | u64 number)
 *
 * Version 2 is version 1 followed by a request id (client sessions):
 *
 *   command      := u8 version(=2) u8 cmd_type body session
 *   session      := u64 client_id u64 seq u32 reply_len reply[reply_len]
 *
 * Version 3 carries a request id without a reply: the store keeps the
 * entry's own result for a retry (kv_cmd.keep_result).
 *
 *   command      := u8 version(=3) u8 cmd_type body u64 client_id u64 seq
 *
 * cmd_type 5 (member address) has an op body like cmd_type 1..3: a put or
 * delete whose key is an 8-byte big-endian member id.
 *
 * Read-modify-write ops (also allowed in a transaction's branches), and
 * cmd_types 10..12 made of one of them (op type equal to the cmd type):
 *
 *   tail (incrby, 10)      := u64 delta (two's complement)
 *   tail (append, 11)      := u32 value_len value[value_len]
 *   tail (incrbyfloat, 12) := u32 value_len value[value_len]
 *
 * cmd_type 50 (a block of sequence IDs) is one op of type 50, never found
 * in a transaction; its key is the sequence's name:
 *
 *   tail (sequence, 50)    := u64 count (1..KV_SEQUENCE_BLOCK_MAX)
 *
 * cmd_type 30 (ACL) has an op body like cmd_type 5: a put (the rules, see
 * kv_acl_rules_encode()) or delete whose key is a user name.
 *
 * Any of the above may be wrapped in an ACL envelope (kv_acl.h), which
 * names who proposed it:
 *
 *   enveloped    := u8 version(=30) u8 user_len user[user_len]
 *                   u8 cmd_len cmd[cmd_len] u32 categories command
 *
 * with user_len 1..KV_ACL_NAME_MAX, cmd_len 1..KV_ACL_CMD_NAME_MAX and an
 * inner command that is not itself enveloped.
 * A put with a lease or an expiry is op type 25 (decoded as a put with
 * @lease and @expire_at set; at least one of them not 0), and Redis's
 * EXPIRE is op type 26:
 *
 *   tail (put-lease, 25)   := u32 value_len value[value_len] u64 lease
 *                             u64 expire_at
 *   tail (expire, 26)      := u64 expire_at
 *
 * cmd_type 26 is one op of type 26; cmd_type 25 (the leader's expiry of
 * keys) is a list of delete ops:
 *
 *   body (expire-keys, 25) := u64 clock u16 n op{n}      (1 <= n <= 128)
 *
 * Lease commands (kv_lease.c) carry no op:
 *
 *   body (grant, 20)   := u64 id u64 ttl_ms u64 clock
 *   body (revoke, 21)  := u64 id
 *   body (refresh, 22) := u64 clock u32 n u64 id{n}      (1 <= n <= batch)
 *   body (expire, 23)  := u64 clock u32 n u64 id{n}
 *   body (clock, 24)   := u64 clock
 */
#include <stdlib.h>
#include <string.h>

#include "kv_acl.h"
#include "kv_internal.h"

/* Smallest encodings, used to bound counts before allocating arrays. */
#define OP_MIN_BYTES 6u
#define CMP_MIN_BYTES 10u

static bool flags_valid(uint8_t type, uint8_t flags)
{
    uint8_t allowed = 0;
    switch (type) {
    case KV_OP_PUT:
        allowed = KV_FLAG_PREV_KV | KV_FLAG_KEEP_TTL;
        break;
    case KV_OP_DELETE:
        allowed = KV_FLAG_PREV_KV;
        break;
    case KV_OP_EXPIRE:
        allowed = KV_EXPIRE_NX | KV_EXPIRE_XX | KV_EXPIRE_GT | KV_EXPIRE_LT |
                  KV_EXPIRE_DELETE;
        break;
    case KV_OP_DELETE_RANGE:
        allowed = KV_FLAG_PREV_KV | KV_FLAG_PREFIX;
        break;
    case KV_OP_RANGE:
        allowed = KV_FLAG_PREFIX | KV_FLAG_REVERSE | KV_FLAG_COUNT_ONLY |
                  KV_FLAG_KEYS_ONLY;
        break;
    case KV_OP_INCRBY:
    case KV_OP_APPEND:
    case KV_OP_INCRBYFLOAT:
    case KV_OP_SEQUENCE:
    case KV_OP_LOCK_RELEASE:
        allowed = 0;
        break;
    case KV_OP_LOCK_ACQUIRE:
        allowed = KV_LOCK_TRY;
        break;
    case KV_OP_HDEL:
    case KV_OP_HINCRBY:
    case KV_OP_HINCRBYFLOAT:
        allowed = 0;
        break;
    case KV_OP_HSET:
        allowed = KV_HASH_NX;
        break;
    default:
        return false;
    }
    return (flags & ~allowed) == 0;
}

static bool op_is_lock(uint8_t type)
{
    return type == KV_OP_LOCK_ACQUIRE || type == KV_OP_LOCK_RELEASE;
}

/* A lock op: a prefix that leaves room for the lease's suffix; an acquire
 * names a lease, a release a token. */
static int lock_check(const struct kv_op *op)
{
    if (op->key_len > KV_LOCK_PREFIX_MAX) {
        return KV_ELIMIT;
    }
    if (op->type == KV_OP_LOCK_ACQUIRE ? op->lease == 0 || op->end_len != 0
                                       : op->delta < 1 || op->value_len != 0) {
        return KV_EBADCMD;
    }
    return 0;
}

/* The fence: a lock prefix and a token, or neither. */
static int fence_check(const struct kv_cmd *cmd)
{
    if (cmd->fence_key == NULL) {
        return cmd->fence_key_len != 0 || cmd->fence_token != 0 ? KV_EBADCMD
                                                                : 0;
    }
    if (cmd->fence_key_len == 0 || cmd->fence_token == 0) {
        return KV_EBADCMD;
    }
    return cmd->fence_key_len > KV_LOCK_PREFIX_MAX ? KV_ELIMIT : 0;
}

static bool op_is_hash(uint8_t type)
{
    return type >= KV_OP_HSET && type <= KV_OP_HINCRBYFLOAT;
}

/* Checks one operation against the rules both directions share. Returns 0,
 * KV_EBADCMD or KV_ELIMIT. */
static int op_check(const struct kv_op *op)
{
    if (!flags_valid(op->type, op->flags) ||
        (op->lease != 0 && op->type != KV_OP_PUT &&
         op->type != KV_OP_LOCK_ACQUIRE) ||
        (op->expire_at != 0 && op->type != KV_OP_PUT &&
         op->type != KV_OP_EXPIRE) ||
        ((op->flags & KV_FLAG_KEEP_TTL) && op->type == KV_OP_PUT &&
         (op->lease != 0 || op->expire_at != 0))) {
        return KV_EBADCMD;
    }
    if (op->key_len > KV_KEY_BYTES_MAX || op->end_len > KV_KEY_BYTES_MAX ||
        op->value_len > KV_VALUE_BYTES_MAX) {
        return KV_ELIMIT;
    }
    /* A single-key operation on the empty key has no meaning. */
    if (op->type != KV_OP_DELETE_RANGE && op->type != KV_OP_RANGE &&
        op->key_len == 0) {
        return KV_EBADCMD;
    }
    if (op->type == KV_OP_SEQUENCE &&
        (op->delta < 1 || op->delta > (int64_t)KV_SEQUENCE_BLOCK_MAX)) {
        return KV_EBADCMD;
    }
    if (op_is_lock(op->type)) {
        return lock_check(op);
    }
    if (op_is_hash(op->type)) {
        return kv_hash_op_check(op);
    }
    return 0;
}

/* An op a transaction's branch may hold: everything but a sequence, which
 * stands alone (its IDs are handed out whatever a comparison says). */
static int branch_op_check(const struct kv_op *op)
{
    return op->type == KV_OP_SEQUENCE || op_is_lock(op->type) ? KV_EBADCMD
                                                              : op_check(op);
}

static bool op_is_rmw(uint8_t type)
{
    return type == KV_OP_INCRBY || type == KV_OP_APPEND ||
           type == KV_OP_INCRBYFLOAT || op_is_hash(type);
}

static int cmp_check(const struct kv_cmp *c)
{
    if (c->target < KV_CMP_VALUE || c->target > KV_CMP_EXISTS ||
        c->op < KV_CMP_EQ || c->op > KV_CMP_GT) {
        return KV_EBADCMD;
    }
    if (c->target == KV_CMP_EXISTS &&
        ((c->op != KV_CMP_EQ && c->op != KV_CMP_NE) || c->number > 1)) {
        return KV_EBADCMD;
    }
    if (c->key_len == 0) {
        return KV_EBADCMD;
    }
    if (c->key_len > KV_KEY_BYTES_MAX || c->value_len > KV_VALUE_BYTES_MAX) {
        return KV_ELIMIT;
    }
    return 0;
}

/* A member operation: a put or delete of an 8-byte id >= 1, no flags, an
 * address of at most KV_MEMBER_ADDR_MAX bytes. */
static int member_check(const struct kv_op *op)
{
    static const uint8_t zero_id[8] = {0};
    if ((op->type != KV_OP_PUT && op->type != KV_OP_DELETE) || op->flags != 0 ||
        op->key_len != 8 || memcmp(op->key, zero_id, 8) == 0 ||
        (op->type == KV_OP_DELETE && op->value_len != 0)) {
        return KV_EBADCMD;
    }
    if (op->value_len > KV_MEMBER_ADDR_MAX) {
        return KV_ELIMIT;
    }
    return 0;
}

/* An ACL operation: a put or delete of a valid user name, no flags; a
 * delete carries no value. */
static int acl_op_check(const struct kv_op *op)
{
    if ((op->type != KV_OP_PUT && op->type != KV_OP_DELETE) || op->flags != 0 ||
        !kv_acl_name_valid((const char *)op->key, op->key_len) ||
        (op->type == KV_OP_DELETE && op->value_len != 0)) {
        return KV_EBADCMD;
    }
    if (op->value_len > 4u + KV_ACL_RULES_MAX * (2u + KV_ACL_RULE_BYTES_MAX)) {
        return KV_ELIMIT;
    }
    return 0;
}

/* The envelope: both names present and within their limits. */
static int envelope_check(const struct kv_cmd *cmd)
{
    if (cmd->acl_user == NULL) {
        return cmd->acl_user_len != 0 || cmd->acl_cmd != NULL ||
                       cmd->acl_cmd_len != 0 || cmd->acl_cats != 0
                   ? KV_EBADCMD
                   : 0;
    }
    if (!kv_acl_name_valid(cmd->acl_user, cmd->acl_user_len) ||
        cmd->acl_cmd == NULL || cmd->acl_cmd_len == 0 ||
        cmd->acl_cmd_len > KV_ACL_CMD_NAME_MAX) {
        return KV_EBADCMD;
    }
    return 0;
}

static bool cmd_is_lease(uint8_t type)
{
    return type >= KV_CMD_LEASE_GRANT && type <= KV_CMD_LEASE_CLOCK;
}

/* Checks a lease command's fields (the same rules both directions). */
static int lease_check(const struct kv_cmd *cmd)
{
    uint32_t want_min = 0, want_max = 0;
    switch (cmd->type) {
    case KV_CMD_LEASE_GRANT:
        if (cmd->ttl_ms == 0) {
            return KV_EBADCMD;
        }
        if (cmd->ttl_ms > KV_LEASE_TTL_MS_MAX) {
            return KV_ELIMIT;
        }
        want_min = want_max = 1;
        break;
    case KV_CMD_LEASE_REVOKE:
        want_min = want_max = 1;
        break;
    case KV_CMD_LEASE_REFRESH:
    case KV_CMD_LEASE_EXPIRE:
        want_min = 1;
        want_max = KV_LEASE_BATCH_MAX;
        break;
    default: /* KV_CMD_LEASE_CLOCK */
        break;
    }
    if (cmd->n_lease_ids > want_max && want_max > 1) {
        return KV_ELIMIT;
    }
    if (cmd->n_lease_ids < want_min || cmd->n_lease_ids > want_max) {
        return KV_EBADCMD;
    }
    for (uint32_t i = 0; i < cmd->n_lease_ids; i++) {
        if (cmd->lease_ids[i] == 0) {
            return KV_EBADCMD;
        }
    }
    return 0;
}

static uint64_t lease_size(const struct kv_cmd *cmd)
{
    switch (cmd->type) {
    case KV_CMD_LEASE_GRANT:
        return 24;
    case KV_CMD_LEASE_REVOKE:
    case KV_CMD_LEASE_CLOCK:
        return 8;
    default:
        return 12 + 8 * (uint64_t)cmd->n_lease_ids;
    }
}

static uint64_t op_size(const struct kv_op *op)
{
    uint64_t n = 2 + 4 + (uint64_t)op->key_len;
    if (op->type == KV_OP_PUT && (op->lease != 0 || op->expire_at != 0)) {
        n += 16;
    }
    switch (op->type) {
    case KV_OP_EXPIRE:
        n += 8;
        break;
    case KV_OP_LOCK_ACQUIRE:
        n += 8 + 4 + (uint64_t)op->value_len;
        break;
    case KV_OP_PUT:
    case KV_OP_APPEND:
    case KV_OP_INCRBYFLOAT:
    case KV_OP_HSET:
    case KV_OP_HDEL:
        n += 4 + (uint64_t)op->value_len;
        break;
    case KV_OP_INCRBY:
    case KV_OP_SEQUENCE:
    case KV_OP_LOCK_RELEASE:
        n += 8;
        break;
    case KV_OP_HINCRBY:
        n += 4 + (uint64_t)op->end_len + 8;
        break;
    case KV_OP_HINCRBYFLOAT:
        n += 4 + (uint64_t)op->end_len + 4 + (uint64_t)op->value_len;
        break;
    case KV_OP_DELETE_RANGE:
        n += 4 + (uint64_t)op->end_len;
        break;
    case KV_OP_RANGE:
        n += 4 + (uint64_t)op->end_len + 8;
        break;
    default:
        break;
    }
    return n;
}

static uint64_t cmp_size(const struct kv_cmp *c)
{
    uint64_t n = 2 + 4 + (uint64_t)c->key_len;
    n += c->target == KV_CMP_VALUE ? 4 + (uint64_t)c->value_len : 8;
    return n;
}

/* Validates a whole command and computes its size. */
static int cmd_check(const struct kv_cmd *cmd, uint64_t *size)
{
    uint64_t n = 2;
    int rv;
    if ((cmd->type >= KV_CMD_PUT && cmd->type <= KV_CMD_DELETE_RANGE) ||
        op_is_rmw(cmd->type) || cmd->type == KV_CMD_SEQUENCE ||
        cmd->type == KV_CMD_EXPIRE || op_is_lock(cmd->type)) {
        /* Every single-op command (hashes included: op_is_rmw()) carries
         * the op of its own number. */
        if (cmd->op.type != cmd->type) {
            return KV_EBADCMD;
        }
        if ((rv = op_check(&cmd->op)) != 0) {
            return rv;
        }
        n += op_size(&cmd->op);
    } else if (cmd->type == KV_CMD_MEMBER) {
        if ((rv = member_check(&cmd->op)) != 0) {
            return rv;
        }
        n += op_size(&cmd->op);
    } else if (cmd->type == KV_CMD_ACL) {
        if ((rv = acl_op_check(&cmd->op)) != 0) {
            return rv;
        }
        n += op_size(&cmd->op);
    } else if (cmd->type == KV_CMD_COMPACT) {
        if (cmd->revision == 0) {
            return KV_EBADCMD;
        }
        n += 8;
    } else if (cmd->type == KV_CMD_DIGEST) {
        n += 16;
    } else if (cmd_is_lease(cmd->type)) {
        if ((rv = lease_check(cmd)) != 0) {
            return rv;
        }
        n += lease_size(cmd);
    } else if (cmd->type == KV_CMD_EXPIRE_KEYS) {
        if (cmd->n_then > KV_EXPIRE_KEYS_MAX) {
            return KV_ELIMIT;
        }
        if (cmd->n_then == 0 || cmd->n_else != 0 || cmd->n_cmps != 0) {
            return KV_EBADCMD;
        }
        n += 8 + 2;
        for (uint32_t i = 0; i < cmd->n_then; i++) {
            if (cmd->then_ops[i].type != KV_OP_DELETE ||
                cmd->then_ops[i].flags != 0 ||
                (rv = op_check(&cmd->then_ops[i])) != 0) {
                return KV_EBADCMD;
            }
            n += op_size(&cmd->then_ops[i]);
        }
    } else if (cmd->type == KV_CMD_TXN) {
        if (cmd->n_cmps > KV_TXN_CMPS_MAX || cmd->n_then > KV_TXN_OPS_MAX ||
            cmd->n_else > KV_TXN_OPS_MAX) {
            return KV_ELIMIT;
        }
        n += 6;
        for (uint32_t i = 0; i < cmd->n_cmps; i++) {
            if ((rv = cmp_check(&cmd->cmps[i])) != 0) {
                return rv;
            }
            n += cmp_size(&cmd->cmps[i]);
        }
        for (uint32_t i = 0; i < cmd->n_then + cmd->n_else; i++) {
            const struct kv_op *op = i < cmd->n_then
                                         ? &cmd->then_ops[i]
                                         : &cmd->else_ops[i - cmd->n_then];
            if ((rv = branch_op_check(op)) != 0) {
                return rv;
            }
            n += op_size(op);
        }
    } else {
        return KV_EBADCMD;
    }
    if (cmd->client_id != 0 || cmd->seq != 0 || cmd->reply_len != 0 ||
        cmd->keep_result) {
        if (cmd->client_id == 0 || cmd->client_id > KV_SESSION_CLIENT_MAX ||
            cmd->seq == 0 || (cmd->keep_result && cmd->reply_len != 0)) {
            return KV_EBADCMD;
        }
        if (cmd->reply_len > KV_SESSION_REPLY_MAX) {
            return KV_ELIMIT;
        }
        n += 8 + 8 + (cmd->keep_result ? 0 : 4 + (uint64_t)cmd->reply_len);
    }
    if ((rv = envelope_check(cmd)) != 0) {
        return rv;
    }
    if (cmd->acl_user != NULL) {
        n += 7u + (uint64_t)cmd->acl_user_len + (uint64_t)cmd->acl_cmd_len;
    }
    if ((rv = fence_check(cmd)) != 0) {
        return rv;
    }
    if (cmd->fence_key != NULL) {
        n += 11u + (uint64_t)cmd->fence_key_len;
    }
    if (n > KV_CMD_BYTES_MAX) {
        return KV_ELIMIT;
    }
    *size = n;
    return 0;
}

size_t kv_cmd_encoded_size(const struct kv_cmd *cmd)
{
    uint64_t n = 0;
    if (cmd_check(cmd, &n) != 0) {
        return 0;
    }
    return (size_t)n;
}

/* Writer that the size check has already proven cannot overflow. */
struct writer
{
    uint8_t *p;
};

static void w_u8(struct writer *w, uint8_t v)
{
    *w->p++ = v;
}
static void w_u16(struct writer *w, uint32_t v)
{
    w->p[0] = (uint8_t)v;
    w->p[1] = (uint8_t)(v >> 8);
    w->p += 2;
}
static void w_u32(struct writer *w, uint32_t v)
{
    kv_put_u32le(w->p, v);
    w->p += 4;
}
static void w_u64(struct writer *w, uint64_t v)
{
    kv_put_u64le(w->p, v);
    w->p += 8;
}
static void w_bytes(struct writer *w, const uint8_t *b, uint32_t n)
{
    if (n > 0) {
        memcpy(w->p, b, n);
        w->p += n;
    }
}

static void op_write(struct writer *w, const struct kv_op *op)
{
    bool leased =
        op->type == KV_OP_PUT && (op->lease != 0 || op->expire_at != 0);
    w_u8(w, leased ? KV_OP_PUT_LEASE : op->type);
    w_u8(w, op->flags);
    w_u32(w, op->key_len);
    w_bytes(w, op->key, op->key_len);
    switch (op->type) {
    case KV_OP_LOCK_ACQUIRE:
        w_u64(w, op->lease);
        w_u32(w, op->value_len);
        w_bytes(w, op->value, op->value_len);
        break;
    case KV_OP_PUT:
    case KV_OP_APPEND:
    case KV_OP_INCRBYFLOAT:
    case KV_OP_HSET:
    case KV_OP_HDEL:
        w_u32(w, op->value_len);
        w_bytes(w, op->value, op->value_len);
        break;
    case KV_OP_INCRBY:
    case KV_OP_SEQUENCE:
    case KV_OP_LOCK_RELEASE:
        w_u64(w, (uint64_t)op->delta);
        break;
    case KV_OP_HINCRBY:
        w_u32(w, op->end_len);
        w_bytes(w, op->end, op->end_len);
        w_u64(w, (uint64_t)op->delta);
        break;
    case KV_OP_HINCRBYFLOAT:
        w_u32(w, op->end_len);
        w_bytes(w, op->end, op->end_len);
        w_u32(w, op->value_len);
        w_bytes(w, op->value, op->value_len);
        break;
    case KV_OP_DELETE_RANGE:
        w_u32(w, op->end_len);
        w_bytes(w, op->end, op->end_len);
        break;
    case KV_OP_RANGE:
        w_u32(w, op->end_len);
        w_bytes(w, op->end, op->end_len);
        w_u64(w, op->limit);
        break;
    default:
        break;
    }
    if (leased) {
        w_u64(w, op->lease);
        w_u64(w, op->expire_at);
    }
    if (op->type == KV_OP_EXPIRE) {
        w_u64(w, op->expire_at);
    }
}

static void lease_write(struct writer *w, const struct kv_cmd *cmd)
{
    switch (cmd->type) {
    case KV_CMD_LEASE_GRANT:
        w_u64(w, cmd->lease_ids[0]);
        w_u64(w, cmd->ttl_ms);
        w_u64(w, cmd->clock);
        break;
    case KV_CMD_LEASE_REVOKE:
        w_u64(w, cmd->lease_ids[0]);
        break;
    case KV_CMD_LEASE_CLOCK:
        w_u64(w, cmd->clock);
        break;
    default:
        w_u64(w, cmd->clock);
        w_u32(w, cmd->n_lease_ids);
        for (uint32_t i = 0; i < cmd->n_lease_ids; i++) {
            w_u64(w, cmd->lease_ids[i]);
        }
        break;
    }
}

int kv_cmd_encode(const struct kv_cmd *cmd,
                  uint8_t *buf,
                  size_t cap,
                  size_t *len)
{
    uint64_t n = 0;
    struct writer w = {buf};
    int rv = cmd_check(cmd, &n);
    if (rv == KV_EBADCMD) {
        return KV_EINVAL;
    }
    if (rv != 0) {
        return rv;
    }
    if (n > cap) {
        return KV_ELIMIT;
    }
    if (cmd->acl_user != NULL) {
        w_u8(&w, KV_CMD_VERSION_ACL);
        w_u8(&w, cmd->acl_user_len);
        w_bytes(&w, (const uint8_t *)cmd->acl_user, cmd->acl_user_len);
        w_u8(&w, cmd->acl_cmd_len);
        w_bytes(&w, (const uint8_t *)cmd->acl_cmd, cmd->acl_cmd_len);
        w_u32(&w, cmd->acl_cats);
    }
    if (cmd->fence_key != NULL) {
        w_u8(&w, KV_CMD_VERSION_FENCE);
        w_u16(&w, cmd->fence_key_len);
        w_bytes(&w, cmd->fence_key, cmd->fence_key_len);
        w_u64(&w, cmd->fence_token);
    }
    w_u8(&w, cmd->client_id == 0 ? KV_CMD_VERSION
             : cmd->keep_result  ? KV_CMD_VERSION_SESSION_RESULT
                                 : KV_CMD_VERSION_SESSION);
    w_u8(&w, cmd->type);
    if (cmd->type == KV_CMD_COMPACT) {
        w_u64(&w, cmd->revision);
    } else if (cmd->type == KV_CMD_DIGEST) {
        w_u64(&w, cmd->digest_index);
        w_u64(&w, cmd->digest);
    } else if (cmd_is_lease(cmd->type)) {
        lease_write(&w, cmd);
    } else if (cmd->type == KV_CMD_EXPIRE_KEYS) {
        w_u64(&w, cmd->clock);
        w_u16(&w, cmd->n_then);
        for (uint32_t i = 0; i < cmd->n_then; i++) {
            op_write(&w, &cmd->then_ops[i]);
        }
    } else if (cmd->type != KV_CMD_TXN) {
        op_write(&w, &cmd->op);
    } else {
        w_u16(&w, cmd->n_cmps);
        for (uint32_t i = 0; i < cmd->n_cmps; i++) {
            const struct kv_cmp *c = &cmd->cmps[i];
            w_u8(&w, c->target);
            w_u8(&w, c->op);
            w_u32(&w, c->key_len);
            w_bytes(&w, c->key, c->key_len);
            if (c->target == KV_CMP_VALUE) {
                w_u32(&w, c->value_len);
                w_bytes(&w, c->value, c->value_len);
            } else {
                w_u64(&w, c->number);
            }
        }
        w_u16(&w, cmd->n_then);
        for (uint32_t i = 0; i < cmd->n_then; i++) {
            op_write(&w, &cmd->then_ops[i]);
        }
        w_u16(&w, cmd->n_else);
        for (uint32_t i = 0; i < cmd->n_else; i++) {
            op_write(&w, &cmd->else_ops[i]);
        }
    }
    if (cmd->client_id != 0) {
        w_u64(&w, cmd->client_id);
        w_u64(&w, cmd->seq);
        if (!cmd->keep_result) {
            w_u32(&w, cmd->reply_len);
            w_bytes(&w, cmd->reply, cmd->reply_len);
        }
    }
    *len = (size_t)(w.p - buf);
    return 0;
}

/* Reader over untrusted bytes: every read checks what is left first. */
struct reader
{
    const uint8_t *p;
    size_t left;
};

static int r_u8(struct reader *r, uint8_t *v)
{
    if (r->left < 1) {
        return KV_EBADCMD;
    }
    *v = *r->p++;
    r->left--;
    return 0;
}
static int r_u16(struct reader *r, uint32_t *v)
{
    if (r->left < 2) {
        return KV_EBADCMD;
    }
    *v = (uint32_t)r->p[0] | (uint32_t)r->p[1] << 8;
    r->p += 2;
    r->left -= 2;
    return 0;
}
static int r_u32(struct reader *r, uint32_t *v)
{
    if (r->left < 4) {
        return KV_EBADCMD;
    }
    *v = kv_get_u32le(r->p);
    r->p += 4;
    r->left -= 4;
    return 0;
}
static int r_u64(struct reader *r, uint64_t *v)
{
    if (r->left < 8) {
        return KV_EBADCMD;
    }
    *v = kv_get_u64le(r->p);
    r->p += 8;
    r->left -= 8;
    return 0;
}

/* A signed delta, stored as its 64-bit two's complement. */
static int r_delta(struct reader *r, int64_t *delta)
{
    uint64_t d = 0;
    int rv = r_u64(r, &d);
    /* Two's complement, without an implementation-defined cast. */
    *delta = d <= (uint64_t)INT64_MAX ? (int64_t)d : -(int64_t)(~d) - 1;
    return rv;
}
/* Reads a length-prefixed byte string, checking the limit before the bytes
 * left, so an oversized length is reported as a limit and not as a
 * truncation. */
static int r_blob(struct reader *r,
                  uint32_t max,
                  uint32_t *len,
                  const uint8_t **bytes)
{
    int rv = r_u32(r, len);
    if (rv != 0) {
        return rv;
    }
    if (*len > max) {
        return KV_ELIMIT;
    }
    if (r->left < *len) {
        return KV_EBADCMD;
    }
    *bytes = *len > 0 ? r->p : NULL;
    r->p += *len;
    r->left -= *len;
    return 0;
}

static int op_read(struct reader *r, struct kv_op *op)
{
    int rv;
    memset(op, 0, sizeof(*op));
    if ((rv = r_u8(r, &op->type)) != 0 || (rv = r_u8(r, &op->flags)) != 0) {
        return rv;
    }
    bool leased = op->type == KV_OP_PUT_LEASE;
    if (leased) {
        op->type = KV_OP_PUT;
    }
    if ((op->type < KV_OP_PUT || op->type > KV_OP_RANGE) &&
        !op_is_rmw(op->type) && op->type != KV_OP_SEQUENCE &&
        op->type != KV_OP_EXPIRE && !op_is_lock(op->type)) {
        return KV_EBADCMD;
    }
    if ((rv = r_blob(r, KV_KEY_BYTES_MAX, &op->key_len, &op->key)) != 0) {
        return rv;
    }
    switch (op->type) {
    case KV_OP_LOCK_ACQUIRE:
        rv = r_u64(r, &op->lease);
        if (rv == 0) {
            rv = r_blob(r, KV_VALUE_BYTES_MAX, &op->value_len, &op->value);
        }
        break;
    case KV_OP_PUT:
    case KV_OP_APPEND:
    case KV_OP_INCRBYFLOAT:
    case KV_OP_HSET:
    case KV_OP_HDEL:
        rv = r_blob(r, KV_VALUE_BYTES_MAX, &op->value_len, &op->value);
        break;
    case KV_OP_HINCRBYFLOAT:
        rv = r_blob(r, KV_KEY_BYTES_MAX, &op->end_len, &op->end);
        if (rv == 0) {
            rv = r_blob(r, KV_VALUE_BYTES_MAX, &op->value_len, &op->value);
        }
        break;
    case KV_OP_HINCRBY:
        rv = r_blob(r, KV_KEY_BYTES_MAX, &op->end_len, &op->end);
        if (rv == 0) {
            rv = r_delta(r, &op->delta);
        }
        break;
    case KV_OP_INCRBY:
    case KV_OP_SEQUENCE:
    case KV_OP_LOCK_RELEASE:
        rv = r_delta(r, &op->delta);
        break;
    case KV_OP_DELETE_RANGE:
        rv = r_blob(r, KV_KEY_BYTES_MAX, &op->end_len, &op->end);
        break;
    case KV_OP_RANGE:
        rv = r_blob(r, KV_KEY_BYTES_MAX, &op->end_len, &op->end);
        if (rv == 0) {
            rv = r_u64(r, &op->limit);
        }
        break;
    default:
        break;
    }
    if (rv == 0 && leased) {
        rv = r_u64(r, &op->lease);
        if (rv == 0) {
            rv = r_u64(r, &op->expire_at);
        }
        /* Neither set would have been written as a plain put. */
        if (rv == 0 && op->lease == 0 && op->expire_at == 0) {
            rv = KV_EBADCMD;
        }
    }
    if (rv == 0 && op->type == KV_OP_EXPIRE) {
        rv = r_u64(r, &op->expire_at);
    }
    if (rv != 0) {
        return rv;
    }
    return op_check(op);
}

/* Reads a lease command's body (after its type). */
static int lease_read(struct reader *r,
                      const struct kv_allocator *a,
                      struct kv_cmd *cmd)
{
    uint64_t id = 0;
    int rv = 0;
    switch (cmd->type) {
    case KV_CMD_LEASE_GRANT:
        if ((rv = r_u64(r, &id)) != 0 || (rv = r_u64(r, &cmd->ttl_ms)) != 0 ||
            (rv = r_u64(r, &cmd->clock)) != 0) {
            return rv;
        }
        break;
    case KV_CMD_LEASE_REVOKE:
        if ((rv = r_u64(r, &id)) != 0) {
            return rv;
        }
        break;
    case KV_CMD_LEASE_CLOCK:
        return r_u64(r, &cmd->clock);
    default: {
        uint32_t n = 0;
        if ((rv = r_u64(r, &cmd->clock)) != 0 || (rv = r_u32(r, &n)) != 0) {
            return rv;
        }
        if (n > KV_LEASE_BATCH_MAX) {
            return KV_ELIMIT;
        }
        if (n == 0 || (size_t)n * 8 > r->left) {
            return KV_EBADCMD;
        }
        cmd->lease_ids = kv_malloc(a, (size_t)n * sizeof(uint64_t));
        if (cmd->lease_ids == NULL) {
            return KV_ENOMEM;
        }
        cmd->n_lease_ids = n;
        for (uint32_t i = 0; i < n; i++) {
            (void)r_u64(r, &cmd->lease_ids[i]);
        }
        return lease_check(cmd);
    }
    }
    cmd->lease_ids = kv_malloc(a, sizeof(uint64_t));
    if (cmd->lease_ids == NULL) {
        return KV_ENOMEM;
    }
    cmd->lease_ids[0] = id;
    cmd->n_lease_ids = 1;
    return lease_check(cmd);
}

static int cmp_read(struct reader *r, struct kv_cmp *c)
{
    int rv;
    memset(c, 0, sizeof(*c));
    if ((rv = r_u8(r, &c->target)) != 0 || (rv = r_u8(r, &c->op)) != 0) {
        return rv;
    }
    if (c->target < KV_CMP_VALUE || c->target > KV_CMP_EXISTS) {
        return KV_EBADCMD;
    }
    if ((rv = r_blob(r, KV_KEY_BYTES_MAX, &c->key_len, &c->key)) != 0) {
        return rv;
    }
    if (c->target == KV_CMP_VALUE) {
        rv = r_blob(r, KV_VALUE_BYTES_MAX, &c->value_len, &c->value);
    } else {
        rv = r_u64(r, &c->number);
    }
    if (rv != 0) {
        return rv;
    }
    return cmp_check(c);
}

/* Reads a count and allocates its array, after checking the count against
 * its limit and against the bytes that remain. */
static int read_count(struct reader *r,
                      uint32_t max,
                      size_t min_bytes,
                      size_t elem,
                      const struct kv_allocator *a,
                      uint32_t *n,
                      void **array)
{
    int rv = r_u16(r, n);
    if (rv != 0) {
        return rv;
    }
    if (*n > max) {
        return KV_ELIMIT;
    }
    if ((size_t)*n * min_bytes > r->left) {
        return KV_EBADCMD;
    }
    if (*n == 0) {
        return 0;
    }
    *array = kv_malloc(a, (size_t)*n * elem);
    return *array == NULL ? KV_ENOMEM : 0;
}

static int cmd_decode_inner(const uint8_t *buf,
                            size_t len,
                            const struct kv_allocator *alloc,
                            struct kv_cmd *cmd);

/* Reads the fence in front of a command, if there is one, then the
 * command. */
static int cmd_decode_fenced(const uint8_t *buf,
                             size_t len,
                             const struct kv_allocator *alloc,
                             struct kv_cmd *cmd)
{
    struct reader r = {buf + 1, len > 0 ? len - 1 : 0};
    uint32_t klen = 0;
    uint64_t token = 0;
    const uint8_t *key;
    int rv;
    if (len == 0 || buf[0] != KV_CMD_VERSION_FENCE) {
        return cmd_decode_inner(buf, len, alloc, cmd);
    }
    if ((rv = r_u16(&r, &klen)) != 0 || r.left < klen) {
        return KV_EBADCMD;
    }
    key = r.p;
    r.p += klen;
    r.left -= klen;
    if ((rv = r_u64(&r, &token)) != 0) {
        return rv;
    }
    /* One fence only; the inner version byte refuses a second. */
    if ((rv = cmd_decode_inner(r.p, r.left, alloc, cmd)) != 0) {
        return rv;
    }
    cmd->fence_key = key;
    cmd->fence_key_len = klen;
    cmd->fence_token = token;
    if ((rv = fence_check(cmd)) != 0) {
        kv_cmd_free(cmd, alloc);
        return rv;
    }
    return 0;
}

/* Reads the ACL envelope in front of a command, then the command. */
static int cmd_decode_envelope(const uint8_t *buf,
                               size_t len,
                               const struct kv_allocator *alloc,
                               struct kv_cmd *cmd)
{
    struct reader r = {buf + 1, len - 1};
    uint8_t ulen = 0, clen = 0;
    uint32_t cats = 0;
    const char *user, *name;
    int rv;
    if ((rv = r_u8(&r, &ulen)) != 0 || r.left < ulen) {
        return KV_EBADCMD;
    }
    user = (const char *)r.p;
    r.p += ulen;
    r.left -= ulen;
    if ((rv = r_u8(&r, &clen)) != 0 || r.left < clen) {
        return KV_EBADCMD;
    }
    name = (const char *)r.p;
    r.p += clen;
    r.left -= clen;
    if ((rv = r_u32(&r, &cats)) != 0) {
        return rv;
    }
    /* One envelope only: an inner one would be a second claim of who
     * proposed the command. */
    if (r.left > 0 && r.p[0] == KV_CMD_VERSION_ACL) {
        return KV_EBADCMD;
    }
    if ((rv = cmd_decode_fenced(r.p, r.left, alloc, cmd)) != 0) {
        return rv;
    }
    cmd->acl_user = user;
    cmd->acl_user_len = ulen;
    cmd->acl_cmd = name;
    cmd->acl_cmd_len = clen;
    cmd->acl_cats = cats;
    if (envelope_check(cmd) != 0) {
        kv_cmd_free(cmd, alloc);
        return KV_EBADCMD;
    }
    return 0;
}

int kv_cmd_decode(const uint8_t *buf,
                  size_t len,
                  const struct kv_allocator *alloc,
                  struct kv_cmd *cmd)
{
    memset(cmd, 0, sizeof(*cmd));
    if (buf == NULL && len > 0) {
        return KV_EINVAL;
    }
    if (len > KV_CMD_BYTES_MAX) {
        return KV_ELIMIT;
    }
    if (len > 0 && buf[0] == KV_CMD_VERSION_ACL) {
        return cmd_decode_envelope(buf, len, alloc, cmd);
    }
    return cmd_decode_fenced(buf, len, alloc, cmd);
}

static int cmd_decode_inner(const uint8_t *buf,
                            size_t len,
                            const struct kv_allocator *alloc,
                            struct kv_cmd *cmd)
{
    struct kv_allocator a;
    struct reader r = {buf, len};
    uint8_t version = 0;
    int rv;
    kv_allocator_resolve(alloc, &a);
    memset(cmd, 0, sizeof(*cmd));
    if (buf == NULL && len > 0) {
        return KV_EINVAL;
    }
    if (len > KV_CMD_BYTES_MAX) {
        return KV_ELIMIT;
    }
    if ((rv = r_u8(&r, &version)) != 0) {
        goto fail;
    }
    if (version != KV_CMD_VERSION && version != KV_CMD_VERSION_SESSION &&
        version != KV_CMD_VERSION_SESSION_RESULT) {
        rv = KV_EVERSION;
        goto fail;
    }
    if ((rv = r_u8(&r, &cmd->type)) != 0) {
        goto fail;
    }
    switch (cmd->type) {
    case KV_CMD_PUT:
    case KV_CMD_DELETE:
    case KV_CMD_DELETE_RANGE:
    case KV_CMD_INCRBY:
    case KV_CMD_APPEND:
    case KV_CMD_INCRBYFLOAT:
    case KV_CMD_SEQUENCE:
    case KV_CMD_EXPIRE:
    case KV_CMD_LOCK_ACQUIRE:
    case KV_CMD_LOCK_RELEASE:
    case KV_CMD_HSET:
    case KV_CMD_HDEL:
    case KV_CMD_HINCRBY:
    case KV_CMD_HINCRBYFLOAT:
        if ((rv = op_read(&r, &cmd->op)) != 0) {
            goto fail;
        }
        if (cmd->op.type != cmd->type) {
            rv = KV_EBADCMD;
            goto fail;
        }
        break;
    case KV_CMD_MEMBER:
        if ((rv = op_read(&r, &cmd->op)) != 0 ||
            (rv = member_check(&cmd->op)) != 0) {
            goto fail;
        }
        break;
    case KV_CMD_ACL:
        if ((rv = op_read(&r, &cmd->op)) != 0 ||
            (rv = acl_op_check(&cmd->op)) != 0) {
            goto fail;
        }
        break;
    case KV_CMD_LEASE_GRANT:
    case KV_CMD_LEASE_REVOKE:
    case KV_CMD_LEASE_REFRESH:
    case KV_CMD_LEASE_EXPIRE:
    case KV_CMD_LEASE_CLOCK:
        if ((rv = lease_read(&r, &a, cmd)) != 0) {
            goto fail;
        }
        break;
    case KV_CMD_EXPIRE_KEYS:
        if ((rv = r_u64(&r, &cmd->clock)) != 0) {
            goto fail;
        }
        rv = read_count(&r, KV_EXPIRE_KEYS_MAX, OP_MIN_BYTES,
                        sizeof(struct kv_op), &a, &cmd->n_then,
                        (void **)&cmd->then_ops);
        if (rv == 0 && cmd->n_then == 0) {
            rv = KV_EBADCMD;
        }
        for (uint32_t i = 0; rv == 0 && i < cmd->n_then; i++) {
            rv = op_read(&r, &cmd->then_ops[i]);
            if (rv == 0 && (cmd->then_ops[i].type != KV_OP_DELETE ||
                            cmd->then_ops[i].flags != 0)) {
                rv = KV_EBADCMD;
            }
        }
        if (rv != 0) {
            goto fail;
        }
        break;
    case KV_CMD_COMPACT:
        if ((rv = r_u64(&r, &cmd->revision)) != 0) {
            goto fail;
        }
        if (cmd->revision == 0) {
            rv = KV_EBADCMD;
            goto fail;
        }
        break;
    case KV_CMD_DIGEST:
        if ((rv = r_u64(&r, &cmd->digest_index)) != 0 ||
            (rv = r_u64(&r, &cmd->digest)) != 0) {
            goto fail;
        }
        break;
    case KV_CMD_TXN:
        rv = read_count(&r, KV_TXN_CMPS_MAX, CMP_MIN_BYTES,
                        sizeof(struct kv_cmp), &a, &cmd->n_cmps,
                        (void **)&cmd->cmps);
        for (uint32_t i = 0; rv == 0 && i < cmd->n_cmps; i++) {
            rv = cmp_read(&r, &cmd->cmps[i]);
        }
        if (rv == 0) {
            rv = read_count(&r, KV_TXN_OPS_MAX, OP_MIN_BYTES,
                            sizeof(struct kv_op), &a, &cmd->n_then,
                            (void **)&cmd->then_ops);
        }
        for (uint32_t i = 0; rv == 0 && i < cmd->n_then; i++) {
            if ((rv = op_read(&r, &cmd->then_ops[i])) == 0) {
                rv = branch_op_check(&cmd->then_ops[i]);
            }
        }
        if (rv == 0) {
            rv = read_count(&r, KV_TXN_OPS_MAX, OP_MIN_BYTES,
                            sizeof(struct kv_op), &a, &cmd->n_else,
                            (void **)&cmd->else_ops);
        }
        for (uint32_t i = 0; rv == 0 && i < cmd->n_else; i++) {
            if ((rv = op_read(&r, &cmd->else_ops[i])) == 0) {
                rv = branch_op_check(&cmd->else_ops[i]);
            }
        }
        if (rv != 0) {
            goto fail;
        }
        break;
    default:
        rv = KV_EBADCMD;
        goto fail;
    }
    if (version != KV_CMD_VERSION) {
        cmd->keep_result = version == KV_CMD_VERSION_SESSION_RESULT;
        if ((rv = r_u64(&r, &cmd->client_id)) != 0 ||
            (rv = r_u64(&r, &cmd->seq)) != 0 ||
            (!cmd->keep_result &&
             (rv = r_blob(&r, KV_SESSION_REPLY_MAX, &cmd->reply_len,
                          &cmd->reply)) != 0)) {
            goto fail;
        }
        if (cmd->client_id == 0 || cmd->client_id > KV_SESSION_CLIENT_MAX ||
            cmd->seq == 0) {
            rv = KV_EBADCMD;
            goto fail;
        }
    }
    /* Trailing bytes would let two encodings mean the same command. */
    if (r.left != 0) {
        rv = KV_EBADCMD;
        goto fail;
    }
    return 0;

fail:
    kv_cmd_free(cmd, &a);
    return rv;
}

void kv_cmd_free(struct kv_cmd *cmd, const struct kv_allocator *alloc)
{
    struct kv_allocator a;
    kv_allocator_resolve(alloc, &a);
    kv_free(&a, cmd->cmps);
    kv_free(&a, cmd->then_ops);
    kv_free(&a, cmd->else_ops);
    kv_free(&a, cmd->lease_ids);
    memset(cmd, 0, sizeof(*cmd));
}

/* The offset of the versioned command inside @buf, past the ACL envelope
 * and the fence, or @len if they are malformed. */
static size_t envelopes_skip(const uint8_t *buf, size_t len)
{
    size_t at = 0;
    if (len > 1 && buf[0] == KV_CMD_VERSION_ACL) {
        /* user, command name, categories */
        at = 2 + (size_t)buf[1];
        if (at >= len) {
            return len;
        }
        at += 1 + (size_t)buf[at] + 4;
    }
    if (at + 3 <= len && buf[at] == KV_CMD_VERSION_FENCE) {
        at += 3 + ((size_t)buf[at + 1] | (size_t)buf[at + 2] << 8) + 8;
    }
    return at < len ? at : len;
}

bool kv_cmd_adds_data(const uint8_t *buf, size_t len)
{
    struct kv_cmd cmd;
    bool adds = false;
    /* Only the type byte for the common cases; a transaction is decoded
     * (this runs only while a store is over its quota). */
    if (buf == NULL || len < 2) {
        return true;
    }
    size_t at = envelopes_skip(buf, len);
    if (at + 2 > len) {
        return true;
    }
    switch (buf[at + 1]) {
    case KV_CMD_LOCK_RELEASE:
    case KV_CMD_ACL:
    case KV_CMD_DELETE:
    case KV_CMD_DELETE_RANGE:
    case KV_CMD_MEMBER:
    case KV_CMD_COMPACT:
    case KV_CMD_DIGEST:
    case KV_CMD_LEASE_REVOKE:
    case KV_CMD_LEASE_REFRESH:
    case KV_CMD_LEASE_EXPIRE:
    case KV_CMD_LEASE_CLOCK:
    case KV_CMD_EXPIRE_KEYS:
    case KV_CMD_EXPIRE:
    case KV_CMD_HDEL:
        return false;
    case KV_CMD_TXN:
        break;
    default:
        return true;
    }
    if (kv_cmd_decode(buf, len, NULL, &cmd) != 0) {
        return true;
    }
    for (uint32_t i = 0; i < cmd.n_then + cmd.n_else; i++) {
        const struct kv_op *op =
            i < cmd.n_then ? &cmd.then_ops[i] : &cmd.else_ops[i - cmd.n_then];
        /* A read-modify-write writes a value too (INCRBY, APPEND, ...). */
        adds |= op->type == KV_OP_PUT ||
                (op_is_rmw(op->type) && op->type != KV_OP_HDEL);
    }
    kv_cmd_free(&cmd, NULL);
    return adds;
}

uint32_t kv_cmd_changes_max(const uint8_t *buf, size_t len)
{
    struct kv_cmd cmd;
    uint32_t n = 0;
    if (buf == NULL || len < 2) {
        return 0;
    }
    size_t at = envelopes_skip(buf, len);
    if (at + 2 > len) {
        return 0;
    }
    switch (buf[at + 1]) {
    case KV_CMD_DELETE_RANGE:
        return UINT32_MAX;
    case KV_CMD_TXN:
    case KV_CMD_HSET:
    case KV_CMD_HDEL:
        break;
    default:
        return 1;
    }
    if (kv_cmd_decode(buf, len, NULL, &cmd) != 0) {
        return 0;
    }
    if (cmd.type != KV_CMD_TXN) {
        /* A hash op changes its fields and the hash's record. */
        n = kv_hash_op_items(&cmd.op) + 1;
    }
    for (uint32_t i = 0; i < cmd.n_then + cmd.n_else; i++) {
        const struct kv_op *op =
            i < cmd.n_then ? &cmd.then_ops[i] : &cmd.else_ops[i - cmd.n_then];
        if (op->type == KV_OP_DELETE_RANGE) {
            n = UINT32_MAX;
            break;
        }
        n += op_is_hash(op->type) ? kv_hash_op_items(op) + 1 : 1;
    }
    kv_cmd_free(&cmd, NULL);
    return n;
}
