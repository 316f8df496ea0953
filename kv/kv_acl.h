/*
 * kv_acl.h - users and their permissions, replicated through the log
 * (KV_CMD_ACL) and kept in the state machine, in Redis's ACL style.
 *
 * A user has a state (on/off), password hashes (opaque text to kv: the
 * server's salted slow hashes), an ordered list of command rules (+cmd,
 * -cmd, +@category, -@category; a later rule overrides an earlier one, as
 * in Redis) and key patterns (~pattern read-write, %R~ read, %W~ write).
 *
 * Every node applies the same ACL entries at the same indexes, so every
 * node holds the same users at the same index. A write proposed for a user
 * carries the user's name, the command and its categories (the "ACL
 * envelope" of kv_cmd); kv_apply() checks it against the users as they are
 * at that entry's index, and refuses it with KV_ENOPERM if they do not
 * allow it. So a write racing an ACL change is allowed on every replica or
 * on none (docs/security.md, "ACLs at apply time").
 *
 * The rule parser and the checks are pure functions, used by the server
 * (for reads and the early refusal of writes) and by kv_apply() alike.
 */
#ifndef BALLOT_KV_ACL_H
#define BALLOT_KV_ACL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kv.h"

/* Limits of users and their rules: every one is here. */
#define KV_ACL_NAME_MAX 64u        /* bytes of a user name */
#define KV_ACL_USERS_MAX 1024u     /* users the store holds */
#define KV_ACL_PASSWORDS_MAX 4u    /* password hashes of one user */
#define KV_ACL_HASH_MAX 160u       /* bytes of a hash, NUL included */
#define KV_ACL_CMD_RULES_MAX 64u   /* command rules of one user */
#define KV_ACL_CMD_NAME_MAX 48u    /* "command|subcommand" or a category */
#define KV_ACL_PATTERNS_MAX 16u    /* key patterns of one user */
#define KV_ACL_PATTERN_MAX 128u    /* bytes of one key pattern */
#define KV_ACL_RULE_BYTES_MAX 256u /* bytes of one rule of ACL SETUSER */
#define KV_ACL_RULES_MAX 128u      /* rules of one ACL SETUSER */

/* Command categories (a command's categories are a mask of these). */
enum {
    KV_ACL_CAT_KEYSPACE = 1u << 0,
    KV_ACL_CAT_READ = 1u << 1,
    KV_ACL_CAT_WRITE = 1u << 2,
    KV_ACL_CAT_STRING = 1u << 3,
    KV_ACL_CAT_ADMIN = 1u << 4,
    KV_ACL_CAT_DANGEROUS = 1u << 5,
    KV_ACL_CAT_FAST = 1u << 6,
    KV_ACL_CAT_SLOW = 1u << 7,
    KV_ACL_CAT_CONNECTION = 1u << 8,
    KV_ACL_CAT_TRANSACTION = 1u << 9,
};
#define KV_ACL_CATEGORIES 10u

/* Key permissions of a pattern. */
enum {
    KV_ACL_KEY_READ = 1,
    KV_ACL_KEY_WRITE = 2,
};

/* The name of category number @i (< KV_ACL_CATEGORIES), without '@'. */
const char *kv_acl_category_name(unsigned i);

/* The mask of the category named @name (@len bytes, any case; "all" is
 * every category); 0 if there is none. */
uint32_t kv_acl_category_lookup(const char *name, size_t len);

struct kv_acl_cmd_rule
{
    bool allow;    /* + or - */
    bool category; /* @name */
    uint32_t cats; /* the category's mask (category rules) */
    char name[KV_ACL_CMD_NAME_MAX + 1];
};

struct kv_acl_pattern
{
    uint8_t perm; /* KV_ACL_KEY_* */
    uint16_t len;
    char pat[KV_ACL_PATTERN_MAX + 1];
};

/* One user, as stored. Fixed size, so it can live on a stack or in a
 * cache without allocations. */
struct kv_acl_user
{
    char name[KV_ACL_NAME_MAX + 1];
    bool on;
    bool nopass;
    unsigned n_passwords;
    char passwords[KV_ACL_PASSWORDS_MAX][KV_ACL_HASH_MAX];
    unsigned n_rules;
    struct kv_acl_cmd_rule rules[KV_ACL_CMD_RULES_MAX];
    unsigned n_patterns;
    struct kv_acl_pattern patterns[KV_ACL_PATTERNS_MAX];
};

/* True if @name (@len bytes) may name a user: 1..KV_ACL_NAME_MAX printable
 * bytes without spaces. */
bool kv_acl_name_valid(const char *name, size_t len);

/* A new user named @name as Redis creates one: off, no password, no
 * command, no key. The caller checked the name. */
void kv_acl_user_init(struct kv_acl_user *u, const char *name, size_t len);

/**
 * Applies one rule of ACL SETUSER to @u. Rules: on, off, nopass,
 * resetpass, #HASH (add a stored hash), !HASH (remove one), allcommands,
 * nocommands, +cmd, -cmd, +cmd|sub, -cmd|sub, +@cat, -@cat, ~pattern,
 * %R~pattern, %W~pattern, %RW~pattern, allkeys, resetkeys, reset. Clear
 * text passwords (>pw, <pw) are not rules of the store: the server turns
 * them into #HASH and !HASH first, and @u is refused them here.
 *
 * @return 0, KV_EACLRULE (the rule is malformed; @err says why) or
 *         KV_ELIMIT (a list of @u is full). On failure @u may be half
 *         changed: apply a copy.
 */
int kv_acl_user_apply_rule(struct kv_acl_user *u,
                           const char *rule,
                           size_t len,
                           char *err,
                           size_t err_len);

/* Whether @u may run command @cmd (lower case) with subcommand @sub (lower
 * case, may be NULL) whose categories are @cats. */
bool kv_acl_allows_cmd(const struct kv_acl_user *u,
                       const char *cmd,
                       const char *sub,
                       uint32_t cats);

/* Whether @u may access @key with every permission of @perm. */
bool kv_acl_allows_key(const struct kv_acl_user *u,
                       const uint8_t *key,
                       size_t len,
                       unsigned perm);

/* Whether @u may access every key of [@key, @end) (kv_op's meaning of a
 * range; @prefix: every key starting with @key) with @perm: it has a
 * pattern "*", or a pattern "P*" whose literal P starts every key of the
 * range. */
bool kv_acl_allows_range(const struct kv_acl_user *u,
                         const uint8_t *key,
                         size_t key_len,
                         const uint8_t *end,
                         size_t end_len,
                         bool prefix,
                         unsigned perm);

/* Whether @u may access all keys with @perm (a pattern "*"). */
bool kv_acl_allows_all_keys(const struct kv_acl_user *u, unsigned perm);

/* Whether @u may run every command on every key, reading and writing: a
 * rule allowing all categories that no later rule narrows, and a pattern
 * "*" with both rights. Such a user's requests need no per-command
 * check (the default user of a cluster without ACLs is one). */
bool kv_acl_allows_everything(const struct kv_acl_user *u);

/* Redis-style glob match of @str against @pat (* ? [a-z] [^a] \x), in time
 * O(plen * slen) whatever the pattern. */
bool kv_acl_glob(const char *pat, size_t plen, const uint8_t *str, size_t slen);

/* Writes @u's command rules as Redis shows them ("+@all -flushall"), or
 * "-@all" if none, into @buf (@cap bytes, terminated). Returns the
 * length. */
size_t kv_acl_user_commands(const struct kv_acl_user *u, char *buf, size_t cap);

/* Writes @u's key patterns ("~* %R~app:*"), empty if none. */
size_t kv_acl_user_keys(const struct kv_acl_user *u, char *buf, size_t cap);

/* Writes @u as one ACL LIST line ("user alice on #... ~* +@all"). */
size_t kv_acl_user_describe(const struct kv_acl_user *u, char *buf, size_t cap);

/* Serializes @u as stored in the store (at most KV_ACL_RECORD_MAX bytes).
 * Returns the length. */
#define KV_ACL_RECORD_MAX                                            \
    (8u + KV_ACL_NAME_MAX + KV_ACL_PASSWORDS_MAX * KV_ACL_HASH_MAX + \
     KV_ACL_CMD_RULES_MAX * (KV_ACL_CMD_NAME_MAX + 2u) +             \
     KV_ACL_PATTERNS_MAX * (KV_ACL_PATTERN_MAX + 3u))
size_t kv_acl_user_encode(const struct kv_acl_user *u, uint8_t *buf);

/* Parses a stored user named @name. Returns 0 or KV_ECORRUPT. */
int kv_acl_user_decode(const uint8_t *buf,
                       size_t len,
                       const char *name,
                       size_t name_len,
                       struct kv_acl_user *u);

/**
 * Encodes the value of an ACL SETUSER entry: @n_init rules applied first
 * if (and only if) the user does not exist yet at the entry's index, then
 * @n rules. Layout: u16 n_init, u16 n, then each rule as u16 length and
 * bytes (little endian). Returns the bytes written to @buf (@cap), or 0 if
 * a rule or the count is over its limit or @cap is too small.
 */
size_t kv_acl_rules_encode(const char *const *init,
                           const size_t *init_len,
                           size_t n_init,
                           const char *const *rules,
                           const size_t *rules_len,
                           size_t n,
                           uint8_t *buf,
                           size_t cap);

/* Fills @cmd with the KV_CMD_ACL command that applies the rules @value
 * (kv_acl_rules_encode(), @value_len bytes) to user @name, or deletes the
 * user if @value is NULL. Borrows @name and @value. */
void kv_cmd_acl(struct kv_cmd *cmd,
                const char *name,
                size_t name_len,
                const uint8_t *value,
                size_t value_len);

/* Reads user @name (@len bytes) as the store holds it at its applied
 * index. Returns 0, KV_ENOTFOUND or an error. */
int kv_acl_get(struct kv_store *store,
               const char *name,
               size_t len,
               struct kv_acl_user *out);

/* Calls @fn for every user in name order, until it returns non-zero
 * (which is returned). @u is borrowed for the call. */
int kv_acl_each(struct kv_store *store,
                int (*fn)(void *arg, const struct kv_acl_user *u),
                void *arg);

/* A number that changes whenever the store's users may have changed (an
 * ACL entry applied, a snapshot installed); any thread. A cache of users
 * read while it had one value is stale once it has another. */
uint64_t kv_acl_generation(struct kv_store *store);

#endif
