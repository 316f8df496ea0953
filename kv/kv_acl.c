/*
 * kv_acl.c - users and permissions in the state machine (see kv_acl.h):
 * the rule parser, the checks, the stored record, and the application of
 * KV_CMD_ACL entries and of ACL envelopes at apply time.
 *
 * "acl": user name -> record
 *
 *   record  := u8 version(=1) u8 flags(1 on, 2 nopass)
 *              u8 n_pw  (u8 len, hash[len]){n_pw}
 *              u8 n_cmd (u8 kind(1 allow, 2 category), u8 len,
 * name[len]){n_cmd} u8 n_key (u8 perm, u16le len, pattern[len]){n_key}
 *
 * A category is stored by name, not by bit, so that a record means the
 * same thing to every version that knows the name.
 */
#include <ctype.h>
#include <stdio.h>
#include <string.h>

#include "kv_acl.h"
#include "kv_internal.h"

#define RECORD_VERSION 1u

static const char *const category_names[KV_ACL_CATEGORIES] = {
    "keyspace",  "read", "write", "string",     "admin",
    "dangerous", "fast", "slow",  "connection", "transaction",
};

const char *kv_acl_category_name(unsigned i)
{
    return i < KV_ACL_CATEGORIES ? category_names[i] : "";
}

static bool word_is(const char *s, size_t len, const char *word)
{
    size_t n = strlen(word);
    if (n != len) {
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        if (tolower((unsigned char)s[i]) != word[i]) {
            return false;
        }
    }
    return true;
}

uint32_t kv_acl_category_lookup(const char *name, size_t len)
{
    if (word_is(name, len, "all")) {
        return (1u << KV_ACL_CATEGORIES) - 1u;
    }
    for (unsigned i = 0; i < KV_ACL_CATEGORIES; i++) {
        if (word_is(name, len, category_names[i])) {
            return 1u << i;
        }
    }
    return 0;
}

bool kv_acl_name_valid(const char *name, size_t len)
{
    if (name == NULL || len == 0 || len > KV_ACL_NAME_MAX) {
        return false;
    }
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)name[i];
        if (c <= ' ' || c >= 0x7f) {
            return false;
        }
    }
    return true;
}

void kv_acl_user_init(struct kv_acl_user *u, const char *name, size_t len)
{
    memset(u, 0, sizeof(*u));
    if (len > KV_ACL_NAME_MAX) {
        len = KV_ACL_NAME_MAX;
    }
    memcpy(u->name, name, len);
}

/* ---------------------------------------------------------------------- */
/* Rules                                                                   */

/* Records "@what in rule '@rule'" in @err and returns @code. */
static int rule_error(char *err,
                      size_t err_len,
                      int code,
                      const char *what,
                      const char *rule,
                      size_t len)
{
    if (err != NULL && err_len > 0) {
        snprintf(err, err_len, "%s in rule '%.*s'", what,
                 (int)(len > 64 ? 64 : len), rule);
    }
    return code;
}

/* Adds a command rule; a rule for the same name (or +@all/-@all, which
 * overrides everything) removes the earlier ones it overrides, so the
 * list stays as short as its meaning. */
static int add_cmd_rule(struct kv_acl_user *u,
                        bool allow,
                        bool category,
                        const char *name,
                        size_t len)
{
    uint32_t cats = 0;
    if (category) {
        cats = kv_acl_category_lookup(name, len);
        if (cats == 0) {
            return KV_EACLRULE;
        }
    } else {
        for (size_t i = 0; i < len; i++) {
            char c = name[i];
            if (!(isalnum((unsigned char)c) || c == '|' || c == '_' ||
                  c == '-')) {
                return KV_EACLRULE;
            }
        }
    }
    bool all = category && cats == (1u << KV_ACL_CATEGORIES) - 1u;
    unsigned keep = 0;
    for (unsigned i = 0; i < u->n_rules; i++) {
        struct kv_acl_cmd_rule *r = &u->rules[i];
        bool same = r->category == category && strlen(r->name) == len &&
                    word_is(name, len, r->name);
        if (all || same) {
            continue;
        }
        u->rules[keep++] = *r;
    }
    u->n_rules = keep;
    if (u->n_rules == KV_ACL_CMD_RULES_MAX) {
        return KV_ELIMIT;
    }
    struct kv_acl_cmd_rule *r = &u->rules[u->n_rules++];
    memset(r, 0, sizeof(*r));
    r->allow = allow;
    r->category = category;
    r->cats = cats;
    for (size_t i = 0; i < len; i++) {
        r->name[i] = (char)tolower((unsigned char)name[i]);
    }
    return 0;
}

static int add_pattern(struct kv_acl_user *u,
                       unsigned perm,
                       const char *pat,
                       size_t len)
{
    for (unsigned i = 0; i < u->n_patterns; i++) {
        struct kv_acl_pattern *p = &u->patterns[i];
        if (p->len == len && memcmp(p->pat, pat, len) == 0) {
            p->perm |= (uint8_t)perm;
            return 0;
        }
    }
    if (u->n_patterns == KV_ACL_PATTERNS_MAX) {
        return KV_ELIMIT;
    }
    struct kv_acl_pattern *p = &u->patterns[u->n_patterns++];
    memset(p, 0, sizeof(*p));
    p->perm = (uint8_t)perm;
    p->len = (uint16_t)len;
    memcpy(p->pat, pat, len);
    return 0;
}

int kv_acl_user_apply_rule(struct kv_acl_user *u,
                           const char *rule,
                           size_t len,
                           char *err,
                           size_t err_len)
{
    int rv = 0;
    if (err != NULL && err_len > 0) {
        err[0] = '\0';
    }
    if (len == 0 || len > KV_ACL_RULE_BYTES_MAX) {
        return rule_error(err, err_len, KV_EACLRULE, "empty or too long rule",
                          rule, len);
    }
    if (word_is(rule, len, "on")) {
        u->on = true;
    } else if (word_is(rule, len, "off")) {
        u->on = false;
    } else if (word_is(rule, len, "nopass")) {
        u->nopass = true;
        u->n_passwords = 0;
    } else if (word_is(rule, len, "resetpass")) {
        u->nopass = false;
        u->n_passwords = 0;
    } else if (word_is(rule, len, "allcommands")) {
        rv = add_cmd_rule(u, true, true, "all", 3);
    } else if (word_is(rule, len, "nocommands")) {
        rv = add_cmd_rule(u, false, true, "all", 3);
    } else if (word_is(rule, len, "allkeys")) {
        rv = add_pattern(u, KV_ACL_KEY_READ | KV_ACL_KEY_WRITE, "*", 1);
    } else if (word_is(rule, len, "resetkeys")) {
        u->n_patterns = 0;
    } else if (word_is(rule, len, "reset")) {
        /* Redis: resetpass, resetkeys, off, -@all. */
        u->on = false;
        u->nopass = false;
        u->n_passwords = 0;
        u->n_patterns = 0;
        u->n_rules = 0;
    } else if (rule[0] == '#' || rule[0] == '!') {
        const char *h = rule + 1;
        size_t hl = len - 1;
        if (hl == 0 || hl >= KV_ACL_HASH_MAX) {
            return rule_error(err, err_len, KV_EACLRULE,
                              "malformed password hash", rule, len);
        }
        for (size_t i = 0; i < hl; i++) {
            if ((unsigned char)h[i] <= ' ' || (unsigned char)h[i] >= 0x7f) {
                return rule_error(err, err_len, KV_EACLRULE,
                                  "malformed password hash", rule, len);
            }
        }
        unsigned at = u->n_passwords;
        for (unsigned i = 0; i < u->n_passwords; i++) {
            if (strlen(u->passwords[i]) == hl &&
                memcmp(u->passwords[i], h, hl) == 0) {
                at = i;
            }
        }
        if (rule[0] == '!') {
            if (at < u->n_passwords) {
                memmove(&u->passwords[at], &u->passwords[at + 1],
                        (u->n_passwords - at - 1) * sizeof(u->passwords[0]));
                u->n_passwords--;
            }
        } else if (at == u->n_passwords) {
            if (u->n_passwords == KV_ACL_PASSWORDS_MAX) {
                rv = KV_ELIMIT;
            } else {
                memset(u->passwords[at], 0, KV_ACL_HASH_MAX);
                memcpy(u->passwords[at], h, hl);
                u->n_passwords++;
                u->nopass = false;
            }
        } else {
            u->nopass = false;
        }
    } else if (rule[0] == '>' || rule[0] == '<') {
        return rule_error(
            err, err_len, KV_EACLRULE,
            "a clear-text password must be hashed by the server first", rule,
            len);
    } else if (rule[0] == '+' || rule[0] == '-') {
        bool allow = rule[0] == '+';
        bool category = len > 1 && rule[1] == '@';
        const char *name = rule + (category ? 2 : 1);
        size_t nl = len - (category ? 2 : 1);
        if (nl == 0 || nl > KV_ACL_CMD_NAME_MAX) {
            return rule_error(err, err_len, KV_EACLRULE,
                              "malformed command rule", rule, len);
        }
        rv = add_cmd_rule(u, allow, category, name, nl);
        if (rv == KV_EACLRULE) {
            return rule_error(
                err, err_len, KV_EACLRULE,
                category ? "unknown category" : "malformed command name", rule,
                len);
        }
    } else if (rule[0] == '~' || rule[0] == '%') {
        unsigned perm = KV_ACL_KEY_READ | KV_ACL_KEY_WRITE;
        size_t at = 1;
        if (rule[0] == '%') {
            perm = 0;
            for (; at < len && rule[at] != '~'; at++) {
                char c = (char)toupper((unsigned char)rule[at]);
                if (c == 'R') {
                    perm |= KV_ACL_KEY_READ;
                } else if (c == 'W') {
                    perm |= KV_ACL_KEY_WRITE;
                } else {
                    perm = 0;
                    break;
                }
            }
            if (perm == 0 || at >= len) {
                return rule_error(err, err_len, KV_EACLRULE,
                                  "malformed key permission", rule, len);
            }
            at++;
        }
        if (len - at == 0 || len - at > KV_ACL_PATTERN_MAX) {
            return rule_error(err, err_len, KV_EACLRULE,
                              "empty or too long key pattern", rule, len);
        }
        rv = add_pattern(u, perm, rule + at, len - at);
    } else {
        return rule_error(err, err_len, KV_EACLRULE, "Syntax error", rule, len);
    }
    if (rv == KV_ELIMIT) {
        return rule_error(err, err_len, KV_ELIMIT,
                          "too many passwords, command rules or key patterns",
                          rule, len);
    }
    return rv;
}

/* ---------------------------------------------------------------------- */
/* Checks                                                                  */

bool kv_acl_allows_cmd(const struct kv_acl_user *u,
                       const char *cmd,
                       const char *sub,
                       uint32_t cats)
{
    bool allowed = false;
    size_t cl = strlen(cmd);
    for (unsigned i = 0; i < u->n_rules; i++) {
        const struct kv_acl_cmd_rule *r = &u->rules[i];
        if (r->category) {
            bool all = r->cats == (1u << KV_ACL_CATEGORIES) - 1u;
            if (all || (r->cats & cats) != 0) {
                allowed = r->allow;
            }
            continue;
        }
        if (strcmp(r->name, cmd) == 0) {
            allowed = r->allow;
        } else if (sub != NULL && strncmp(r->name, cmd, cl) == 0 &&
                   r->name[cl] == '|' && strcmp(r->name + cl + 1, sub) == 0) {
            allowed = r->allow;
        }
    }
    return allowed;
}

/* One token of a pattern at @p[*i]: matches byte @c? Advances *i past
 * the token. Classes follow Redis: ^ negates, a-z ranges, \x escapes. */
static bool token_match(const char *p, size_t plen, size_t *i, uint8_t c)
{
    if (p[*i] == '?') {
        (*i)++;
        return true;
    }
    if (p[*i] == '\\' && *i + 1 < plen) {
        bool m = (uint8_t)p[*i + 1] == c;
        *i += 2;
        return m;
    }
    if (p[*i] != '[') {
        return (uint8_t)p[(*i)++] == c;
    }
    size_t j = *i + 1;
    bool neg = j < plen && p[j] == '^';
    bool m = false;
    if (neg) {
        j++;
    }
    while (j < plen && p[j] != ']') {
        if (p[j] == '\\' && j + 1 < plen) {
            m |= (uint8_t)p[j + 1] == c;
            j += 2;
        } else if (j + 2 < plen && p[j + 1] == '-' && p[j + 2] != ']') {
            uint8_t a = (uint8_t)p[j], b = (uint8_t)p[j + 2];
            if (a > b) {
                uint8_t t = a;
                a = b;
                b = t;
            }
            m |= c >= a && c <= b;
            j += 3;
        } else {
            m |= (uint8_t)p[j] == c;
            j++;
        }
    }
    *i = j < plen ? j + 1 : j;
    return neg ? !m : m;
}

bool kv_acl_glob(const char *pat, size_t plen, const uint8_t *str, size_t slen)
{
    /* The two-pointer match with one backtrack point (the last star):
     * a later star makes earlier backtracking unnecessary, so the cost is
     * O(plen * slen) whatever the pattern. */
    size_t p = 0, s = 0;
    size_t star_p = (size_t)-1, star_s = 0;
    while (s < slen) {
        if (p < plen && pat[p] == '*') {
            while (p < plen && pat[p] == '*') {
                p++;
            }
            star_p = p;
            star_s = s;
            continue;
        }
        size_t np = p;
        if (p < plen && token_match(pat, plen, &np, str[s])) {
            p = np;
            s++;
            continue;
        }
        if (star_p == (size_t)-1) {
            return false;
        }
        p = star_p;
        s = ++star_s;
    }
    while (p < plen && pat[p] == '*') {
        p++;
    }
    return p == plen;
}

bool kv_acl_allows_key(const struct kv_acl_user *u,
                       const uint8_t *key,
                       size_t len,
                       unsigned perm)
{
    unsigned have = 0;
    for (unsigned i = 0; i < u->n_patterns && (have & perm) != perm; i++) {
        const struct kv_acl_pattern *p = &u->patterns[i];
        if ((p->perm & perm) != 0 && kv_acl_glob(p->pat, p->len, key, len)) {
            have |= p->perm;
        }
    }
    return (have & perm) == perm;
}

bool kv_acl_allows_all_keys(const struct kv_acl_user *u, unsigned perm)
{
    unsigned have = 0;
    for (unsigned i = 0; i < u->n_patterns; i++) {
        const struct kv_acl_pattern *p = &u->patterns[i];
        bool stars = p->len > 0;
        for (size_t j = 0; j < p->len; j++) {
            stars &= p->pat[j] == '*';
        }
        if (stars) {
            have |= p->perm;
        }
    }
    return (have & perm) == perm;
}

bool kv_acl_allows_everything(const struct kv_acl_user *u)
{
    bool all = false;
    for (unsigned i = 0; i < u->n_rules; i++) {
        const struct kv_acl_cmd_rule *r = &u->rules[i];
        if (r->category && r->cats == (1u << KV_ACL_CATEGORIES) - 1u) {
            all = r->allow;
        } else if (!r->allow) {
            all = false;
        }
    }
    return all && kv_acl_allows_all_keys(u, KV_ACL_KEY_READ | KV_ACL_KEY_WRITE);
}

/* The literal prefix of a pattern "P*" (no glob byte in P), or -1. */
static long literal_prefix(const struct kv_acl_pattern *p)
{
    if (p->len == 0 || p->pat[p->len - 1] != '*') {
        return -1;
    }
    for (size_t j = 0; j + 1 < p->len; j++) {
        char c = p->pat[j];
        if (c == '*' || c == '?' || c == '[' || c == '\\') {
            return -1;
        }
    }
    return (long)p->len - 1;
}

bool kv_acl_allows_range(const struct kv_acl_user *u,
                         const uint8_t *key,
                         size_t key_len,
                         const uint8_t *end,
                         size_t end_len,
                         bool prefix,
                         unsigned perm)
{
    if (!prefix && end_len == 0) {
        return kv_acl_allows_key(u, key, key_len, perm);
    }
    if (kv_acl_allows_all_keys(u, perm)) {
        return true;
    }
    unsigned have = 0;
    for (unsigned i = 0; i < u->n_patterns; i++) {
        const struct kv_acl_pattern *p = &u->patterns[i];
        long pl = literal_prefix(p);
        if (pl < 0 || key_len < (size_t)pl ||
            memcmp(key, p->pat, (size_t)pl) != 0) {
            continue;
        }
        /* Every key of the range starts with P when the range is a prefix
         * range inside P, or ends at or before the first key past P's
         * keys; an end that also starts with P is such an end. */
        bool inside = prefix;
        if (!inside && end_len >= (size_t)pl &&
            memcmp(end, p->pat, (size_t)pl) == 0 &&
            !(end_len == 1 && end[0] == 0)) {
            inside = true;
        }
        if (inside) {
            have |= p->perm;
        }
    }
    return (have & perm) == perm;
}

/* ---------------------------------------------------------------------- */
/* Text forms                                                              */

size_t kv_acl_user_commands(const struct kv_acl_user *u, char *buf, size_t cap)
{
    size_t n = 0;
    if (cap == 0) {
        return 0;
    }
    buf[0] = '\0';
    if (u->n_rules == 0 ||
        (!u->rules[0].allow && u->rules[0].category &&
         strcmp(u->rules[0].name, "all") == 0 && u->n_rules == 1)) {
        return (size_t)snprintf(buf, cap, "-@all");
    }
    for (unsigned i = 0; i < u->n_rules && n + 1 < cap; i++) {
        const struct kv_acl_cmd_rule *r = &u->rules[i];
        int w = snprintf(buf + n, cap - n, "%s%c%s%s", i > 0 ? " " : "",
                         r->allow ? '+' : '-', r->category ? "@" : "", r->name);
        if (w < 0) {
            break;
        }
        n += (size_t)w < cap - n ? (size_t)w : cap - n - 1;
    }
    return n;
}

size_t kv_acl_user_keys(const struct kv_acl_user *u, char *buf, size_t cap)
{
    size_t n = 0;
    if (cap == 0) {
        return 0;
    }
    buf[0] = '\0';
    for (unsigned i = 0; i < u->n_patterns && n + 1 < cap; i++) {
        const struct kv_acl_pattern *p = &u->patterns[i];
        const char *pre = p->perm == KV_ACL_KEY_READ    ? "%R~"
                          : p->perm == KV_ACL_KEY_WRITE ? "%W~"
                                                        : "~";
        int w = snprintf(buf + n, cap - n, "%s%s%.*s", i > 0 ? " " : "", pre,
                         (int)p->len, p->pat);
        if (w < 0) {
            break;
        }
        n += (size_t)w < cap - n ? (size_t)w : cap - n - 1;
    }
    return n;
}

size_t kv_acl_user_describe(const struct kv_acl_user *u, char *buf, size_t cap)
{
    char cmds[KV_ACL_CMD_RULES_MAX * (KV_ACL_CMD_NAME_MAX + 4)];
    char keys[KV_ACL_PATTERNS_MAX * (KV_ACL_PATTERN_MAX + 5)];
    size_t n;
    if (cap == 0) {
        return 0;
    }
    kv_acl_user_commands(u, cmds, sizeof(cmds));
    kv_acl_user_keys(u, keys, sizeof(keys));
    int w = snprintf(buf, cap, "user %s %s%s", u->name, u->on ? "on" : "off",
                     u->nopass ? " nopass" : "");
    n = w < 0 ? 0 : ((size_t)w < cap ? (size_t)w : cap - 1);
    for (unsigned i = 0; i < u->n_passwords && n + 1 < cap; i++) {
        w = snprintf(buf + n, cap - n, " #%s", u->passwords[i]);
        n = w < 0 ? n : (n + (size_t)w < cap ? n + (size_t)w : cap - 1);
    }
    if (n + 1 < cap) {
        w = snprintf(buf + n, cap - n, "%s%s %s", keys[0] ? " " : "", keys,
                     cmds);
        n = w < 0 ? n : (n + (size_t)w < cap ? n + (size_t)w : cap - 1);
    }
    return n;
}

/* ---------------------------------------------------------------------- */
/* The stored record                                                       */

/* Hashes and command names are printable words: a record with anything
 * else in them is not one the rules could have made. */
static bool printable(const uint8_t *p, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        if (p[i] <= ' ' || p[i] >= 0x7f) {
            return false;
        }
    }
    return true;
}

size_t kv_acl_user_encode(const struct kv_acl_user *u, uint8_t *buf)
{
    uint8_t *p = buf;
    *p++ = RECORD_VERSION;
    *p++ = (uint8_t)((u->on ? 1 : 0) | (u->nopass ? 2 : 0));
    *p++ = (uint8_t)u->n_passwords;
    for (unsigned i = 0; i < u->n_passwords; i++) {
        size_t l = strlen(u->passwords[i]);
        *p++ = (uint8_t)l;
        memcpy(p, u->passwords[i], l);
        p += l;
    }
    *p++ = (uint8_t)u->n_rules;
    for (unsigned i = 0; i < u->n_rules; i++) {
        const struct kv_acl_cmd_rule *r = &u->rules[i];
        size_t l = strlen(r->name);
        *p++ = (uint8_t)((r->allow ? 1 : 0) | (r->category ? 2 : 0));
        *p++ = (uint8_t)l;
        memcpy(p, r->name, l);
        p += l;
    }
    *p++ = (uint8_t)u->n_patterns;
    for (unsigned i = 0; i < u->n_patterns; i++) {
        const struct kv_acl_pattern *pt = &u->patterns[i];
        *p++ = pt->perm;
        *p++ = (uint8_t)pt->len;
        *p++ = (uint8_t)(pt->len >> 8);
        memcpy(p, pt->pat, pt->len);
        p += pt->len;
    }
    return (size_t)(p - buf);
}

int kv_acl_user_decode(const uint8_t *buf,
                       size_t len,
                       const char *name,
                       size_t name_len,
                       struct kv_acl_user *u)
{
    size_t at = 0;
#define NEED(n)                 \
    do {                        \
        if (len - at < (n)) {   \
            return KV_ECORRUPT; \
        }                       \
    } while (0)
    if (!kv_acl_name_valid(name, name_len)) {
        return KV_ECORRUPT;
    }
    kv_acl_user_init(u, name, name_len);
    NEED(3);
    if (buf[0] != RECORD_VERSION || (buf[1] & ~3u) != 0) {
        return KV_ECORRUPT;
    }
    u->on = (buf[1] & 1) != 0;
    u->nopass = (buf[1] & 2) != 0;
    u->n_passwords = buf[2];
    at = 3;
    if (u->n_passwords > KV_ACL_PASSWORDS_MAX) {
        return KV_ECORRUPT;
    }
    for (unsigned i = 0; i < u->n_passwords; i++) {
        NEED(1);
        size_t l = buf[at++];
        NEED(l);
        if (l == 0 || l >= KV_ACL_HASH_MAX || !printable(buf + at, l)) {
            return KV_ECORRUPT;
        }
        memcpy(u->passwords[i], buf + at, l);
        at += l;
    }
    NEED(1);
    u->n_rules = buf[at++];
    if (u->n_rules > KV_ACL_CMD_RULES_MAX) {
        return KV_ECORRUPT;
    }
    for (unsigned i = 0; i < u->n_rules; i++) {
        struct kv_acl_cmd_rule *r = &u->rules[i];
        NEED(2);
        uint8_t kind = buf[at++];
        size_t l = buf[at++];
        NEED(l);
        if (l == 0 || l > KV_ACL_CMD_NAME_MAX || (kind & ~3u) != 0 ||
            !printable(buf + at, l)) {
            return KV_ECORRUPT;
        }
        r->allow = (kind & 1) != 0;
        r->category = (kind & 2) != 0;
        memcpy(r->name, buf + at, l);
        /* An unknown category (from a newer version) matches nothing. */
        r->cats = r->category ? kv_acl_category_lookup(r->name, l) : 0;
        at += l;
    }
    NEED(1);
    u->n_patterns = buf[at++];
    if (u->n_patterns > KV_ACL_PATTERNS_MAX) {
        return KV_ECORRUPT;
    }
    for (unsigned i = 0; i < u->n_patterns; i++) {
        struct kv_acl_pattern *p = &u->patterns[i];
        NEED(3);
        p->perm = buf[at];
        p->len = (uint16_t)(buf[at + 1] | buf[at + 2] << 8);
        at += 3;
        NEED(p->len);
        if (p->len == 0 || p->len > KV_ACL_PATTERN_MAX ||
            (p->perm & ~3u) != 0 || p->perm == 0) {
            return KV_ECORRUPT;
        }
        memcpy(p->pat, buf + at, p->len);
        at += p->len;
    }
#undef NEED
    return at == len ? 0 : KV_ECORRUPT;
}

/* ---------------------------------------------------------------------- */
/* Entries                                                                 */

size_t kv_acl_rules_encode(const char *const *init,
                           const size_t *init_len,
                           size_t n_init,
                           const char *const *rules,
                           const size_t *rules_len,
                           size_t n,
                           uint8_t *buf,
                           size_t cap)
{
    size_t need = 4;
    if (n_init + n > KV_ACL_RULES_MAX) {
        return 0;
    }
    for (size_t i = 0; i < n_init + n; i++) {
        size_t l = i < n_init ? init_len[i] : rules_len[i - n_init];
        if (l == 0 || l > KV_ACL_RULE_BYTES_MAX) {
            return 0;
        }
        need += 2 + l;
    }
    if (need > cap) {
        return 0;
    }
    uint8_t *p = buf;
    *p++ = (uint8_t)n_init;
    *p++ = (uint8_t)(n_init >> 8);
    *p++ = (uint8_t)n;
    *p++ = (uint8_t)(n >> 8);
    for (size_t i = 0; i < n_init + n; i++) {
        const char *r = i < n_init ? init[i] : rules[i - n_init];
        size_t l = i < n_init ? init_len[i] : rules_len[i - n_init];
        *p++ = (uint8_t)l;
        *p++ = (uint8_t)(l >> 8);
        memcpy(p, r, l);
        p += l;
    }
    return need;
}

void kv_cmd_acl(struct kv_cmd *cmd,
                const char *name,
                size_t name_len,
                const uint8_t *value,
                size_t value_len)
{
    memset(cmd, 0, sizeof(*cmd));
    cmd->type = KV_CMD_ACL;
    cmd->op.type = value != NULL ? KV_OP_PUT : KV_OP_DELETE;
    cmd->op.key = (const uint8_t *)name;
    cmd->op.key_len = (uint32_t)name_len;
    cmd->op.value = value;
    cmd->op.value_len = value != NULL ? (uint32_t)value_len : 0;
}

/* Applies the rules of @value to @u: the first @n_init only if @is_new.
 * Returns 0, KV_EACLRULE, KV_ELIMIT or KV_EBADCMD (malformed value). */
static int apply_rules(struct kv_acl_user *u,
                       bool is_new,
                       const uint8_t *value,
                       size_t len)
{
    if (len < 4) {
        return KV_EBADCMD;
    }
    size_t n_init = (size_t)value[0] | (size_t)value[1] << 8;
    size_t n = (size_t)value[2] | (size_t)value[3] << 8;
    size_t at = 4;
    if (n_init + n > KV_ACL_RULES_MAX) {
        return KV_EBADCMD;
    }
    for (size_t i = 0; i < n_init + n; i++) {
        if (len - at < 2) {
            return KV_EBADCMD;
        }
        size_t l = (size_t)value[at] | (size_t)value[at + 1] << 8;
        at += 2;
        if (len - at < l) {
            return KV_EBADCMD;
        }
        if (i >= n_init || is_new) {
            int rv =
                kv_acl_user_apply_rule(u, (const char *)value + at, l, NULL, 0);
            if (rv != 0) {
                return rv;
            }
        }
        at += l;
    }
    return at == len ? 0 : KV_EBADCMD;
}

static int read_user(struct kv_store *s,
                     MDB_txn *txn,
                     const char *name,
                     size_t len,
                     struct kv_acl_user *u)
{
    MDB_val k = {len, (void *)name};
    MDB_val v;
    int rc = mdb_get(txn, s->dbi_acl, &k, &v);
    if (rc == MDB_NOTFOUND) {
        return KV_ENOTFOUND;
    }
    if (rc != 0) {
        return kv_mdb_error(s, rc, "acl get");
    }
    if (kv_acl_user_decode(v.mv_data, v.mv_size, name, len, u) != 0) {
        return kv_set_error(s, KV_ECORRUPT, "acl: malformed user record");
    }
    return 0;
}

int kv_acl_apply(struct kv_store *s,
                 MDB_txn *txn,
                 const struct kv_op *op,
                 int *refused,
                 bool *found)
{
    const char *name = (const char *)op->key;
    MDB_val k = {op->key_len, (void *)op->key};
    struct kv_acl_user u;
    int rv, rc;
    *refused = 0;
    *found = false;
    if (op->type == KV_OP_DELETE) {
        if (word_is(name, op->key_len, "default")) {
            *refused = KV_EACLRULE;
            return 0;
        }
        rc = mdb_del(txn, s->dbi_acl, &k, NULL);
        if (rc != 0 && rc != MDB_NOTFOUND) {
            return kv_mdb_error(s, rc, "acl delete");
        }
        *found = rc == 0;
        s->acl_changed = true;
        s->acl_last_valid = false;
        return 0;
    }
    rv = read_user(s, txn, name, op->key_len, &u);
    if (rv == KV_ENOTFOUND) {
        MDB_stat st;
        if ((rc = mdb_stat(txn, s->dbi_acl, &st)) != 0) {
            return kv_mdb_error(s, rc, "acl stat");
        }
        /* Deterministic: the count depends only on the log. */
        if (st.ms_entries >= KV_ACL_USERS_MAX) {
            *refused = KV_ELIMIT;
            return 0;
        }
        kv_acl_user_init(&u, name, op->key_len);
    } else if (rv != 0) {
        return rv;
    } else {
        *found = true;
    }
    rv = apply_rules(&u, !*found, op->value, op->value_len);
    if (rv != 0) {
        *refused = rv;
        return 0;
    }
    uint8_t rec[KV_ACL_RECORD_MAX];
    MDB_val v = {kv_acl_user_encode(&u, rec), rec};
    if ((rc = mdb_put(txn, s->dbi_acl, &k, &v, 0)) != 0) {
        return kv_mdb_error(s, rc, "acl put");
    }
    s->acl_changed = true;
    s->acl_last_valid = false;
    return 0;
}

static bool op_allowed(const struct kv_acl_user *u, const struct kv_op *op)
{
    switch (op->type) {
    case KV_OP_RANGE:
        return kv_acl_allows_range(
            u, op->key, op->key_len, op->end, op->end_len,
            (op->flags & KV_FLAG_PREFIX) != 0, KV_ACL_KEY_READ);
    case KV_OP_DELETE_RANGE:
        return kv_acl_allows_range(
            u, op->key, op->key_len, op->end, op->end_len,
            (op->flags & KV_FLAG_PREFIX) != 0, KV_ACL_KEY_WRITE);
    default:
        return kv_acl_allows_key(u, op->key, op->key_len, KV_ACL_KEY_WRITE);
    }
}

int kv_acl_check(struct kv_store *s,
                 MDB_txn *txn,
                 const struct kv_cmd *cmd,
                 bool *allowed)
{
    struct kv_acl_user *u;
    char name[KV_ACL_CMD_NAME_MAX + 1];
    char *sub;
    int rv;
    *allowed = false;
    if (cmd->acl_user == NULL) {
        *allowed = true;
        return 0;
    }
    if (s->acl_last == NULL) {
        s->acl_last = kv_malloc(&s->alloc, sizeof(*s->acl_last));
        if (s->acl_last == NULL) {
            return KV_ENOMEM;
        }
        s->acl_last_valid = false;
    }
    u = s->acl_last;
    if (!s->acl_last_valid || strlen(u->name) != cmd->acl_user_len ||
        memcmp(u->name, cmd->acl_user, cmd->acl_user_len) != 0) {
        rv = read_user(s, txn, cmd->acl_user, cmd->acl_user_len, u);
        if (rv != 0 && rv != KV_ENOTFOUND) {
            s->acl_last_valid = false;
            return rv;
        }
        if (rv == KV_ENOTFOUND) {
            kv_acl_user_init(u, cmd->acl_user, cmd->acl_user_len);
        }
        s->acl_last_exists = rv == 0;
        s->acl_last_valid = true;
    }
    rv = s->acl_last_exists ? 0 : KV_ENOTFOUND;
    if (rv == KV_ENOTFOUND) {
        /* "default" without a record is governed by the server's
         * settings, the same bootstrap on every node (kv_acl.h). */
        *allowed =
            cmd->acl_user_len == 7 && memcmp(cmd->acl_user, "default", 7) == 0;
        return 0;
    }
    if (rv != 0) {
        return rv;
    }
    memcpy(name, cmd->acl_cmd, cmd->acl_cmd_len);
    name[cmd->acl_cmd_len] = '\0';
    sub = strchr(name, '|');
    if (sub != NULL) {
        *sub++ = '\0';
    }
    if (!kv_acl_allows_cmd(u, name, sub, cmd->acl_cats)) {
        return 0;
    }
    switch (cmd->type) {
    case KV_CMD_MEMBER:
    case KV_CMD_COMPACT:
    case KV_CMD_ACL:
    case KV_CMD_SEQUENCE: /* names a sequence, not a key */
        *allowed = true;
        return 0;
    case KV_CMD_TXN:
        for (uint32_t i = 0; i < cmd->n_cmps; i++) {
            if (!kv_acl_allows_key(u, cmd->cmps[i].key, cmd->cmps[i].key_len,
                                   KV_ACL_KEY_READ)) {
                return 0;
            }
        }
        /* Both branches, whichever runs: the check must not depend on
         * the comparisons, which a user without read rights on their keys
         * could use to learn them. */
        for (uint32_t i = 0; i < cmd->n_then + cmd->n_else; i++) {
            const struct kv_op *op = i < cmd->n_then
                                         ? &cmd->then_ops[i]
                                         : &cmd->else_ops[i - cmd->n_then];
            if (!op_allowed(u, op)) {
                return 0;
            }
        }
        *allowed = true;
        return 0;
    default:
        *allowed = op_allowed(u, &cmd->op);
        return 0;
    }
}

int kv_acl_get(struct kv_store *store,
               const char *name,
               size_t len,
               struct kv_acl_user *out)
{
    MDB_txn *txn = NULL;
    int rc, rv;
    if (store->poisoned || store->env == NULL) {
        return KV_EPOISONED;
    }
    if (!kv_acl_name_valid(name, len)) {
        return KV_ENOTFOUND;
    }
    if ((rc = mdb_txn_begin(store->env, NULL, MDB_RDONLY, &txn)) != 0) {
        return kv_mdb_error(store, rc, "acl: begin read");
    }
    rv = read_user(store, txn, name, len, out);
    mdb_txn_abort(txn);
    return rv;
}

int kv_acl_each(struct kv_store *store,
                int (*fn)(void *arg, const struct kv_acl_user *u),
                void *arg)
{
    MDB_txn *txn = NULL;
    MDB_cursor *cur = NULL;
    MDB_val k, v;
    struct kv_acl_user u;
    int rv = 0, rc;
    if (store->poisoned || store->env == NULL) {
        return KV_EPOISONED;
    }
    if ((rc = mdb_txn_begin(store->env, NULL, MDB_RDONLY, &txn)) != 0) {
        return kv_mdb_error(store, rc, "acl: begin read");
    }
    if ((rc = mdb_cursor_open(txn, store->dbi_acl, &cur)) != 0) {
        rv = kv_mdb_error(store, rc, "acl: cursor");
        goto done;
    }
    for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0;
         rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        if (kv_acl_user_decode(v.mv_data, v.mv_size, k.mv_data, k.mv_size,
                               &u) != 0) {
            rv = kv_set_error(store, KV_ECORRUPT, "acl: malformed record");
            goto done;
        }
        if ((rv = fn(arg, &u)) != 0) {
            goto done;
        }
    }
    if (rc != MDB_NOTFOUND) {
        rv = kv_mdb_error(store, rc, "acl: scan");
    }
done:
    if (cur != NULL) {
        mdb_cursor_close(cur);
    }
    mdb_txn_abort(txn);
    return rv;
}

uint64_t kv_acl_generation(struct kv_store *store)
{
    return __atomic_load_n(&store->acl_gen, __ATOMIC_ACQUIRE);
}

void kv_acl_bump(struct kv_store *store)
{
    store->acl_last_valid = false;
    __atomic_add_fetch(&store->acl_gen, 1, __ATOMIC_RELEASE);
}

void kv_acl_free(struct kv_store *store)
{
    kv_free(&store->alloc, store->acl_last);
    store->acl_last = NULL;
    store->acl_last_valid = false;
}
