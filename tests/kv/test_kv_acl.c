/*
 * test_kv_acl.c - users in the state machine (kv_acl.h): the rule parser,
 * the glob, the stored record, ACL entries, and the envelope check that
 * makes every replica decide a write against the users at its index.
 */
#include <stdio.h>
#include <string.h>

#include "kv_acl.h"
#include "kv_test_util.h"

static struct kv_acl_user u;

/* Applies the rules of @text (separated by spaces) to the global user. */
static int rules(const char *text)
{
    char buf[1024];
    char err[128];
    snprintf(buf, sizeof(buf), "%s", text);
    for (char *w = strtok(buf, " "); w != NULL; w = strtok(NULL, " ")) {
        int rv = kv_acl_user_apply_rule(&u, w, strlen(w), err, sizeof(err));
        if (rv != 0) {
            return rv;
        }
    }
    return 0;
}

static bool may(const char *cmd, const char *sub, uint32_t cats)
{
    return kv_acl_allows_cmd(&u, cmd, sub, cats);
}

static bool key(const char *k, unsigned perm)
{
    return kv_acl_allows_key(&u, (const uint8_t *)k, strlen(k), perm);
}

/* Later rules override earlier ones, by command and by category, as in
 * Redis; a new user may run nothing. */
START_TEST(test_acl_command_rules_apply_in_order)
{
    kv_acl_user_init(&u, "alice", 5);
    ck_assert(!may("get", NULL, KV_ACL_CAT_READ));
    ck_assert_int_eq(rules("+@read"), 0);
    ck_assert(may("get", NULL, KV_ACL_CAT_READ));
    ck_assert(!may("set", NULL, KV_ACL_CAT_WRITE));
    ck_assert_int_eq(rules("+set -get"), 0);
    ck_assert(may("set", NULL, KV_ACL_CAT_WRITE));
    ck_assert(!may("get", NULL, KV_ACL_CAT_READ));
    ck_assert(may("mget", NULL, KV_ACL_CAT_READ));
    ck_assert_int_eq(rules("+@all -@admin"), 0);
    ck_assert(may("get", NULL, KV_ACL_CAT_READ));
    ck_assert(!may("bmember", NULL, KV_ACL_CAT_ADMIN | KV_ACL_CAT_DANGEROUS));
    ck_assert_int_eq(rules("+acl|whoami"), 0);
    ck_assert(may("acl", "whoami", KV_ACL_CAT_ADMIN));
    ck_assert(!may("acl", "setuser", KV_ACL_CAT_ADMIN));
    /* +@all drops everything before it: the list stays short. */
    ck_assert_int_eq(rules("nocommands"), 0);
    ck_assert_uint_eq(u.n_rules, 1);
    ck_assert(!may("ping", NULL, KV_ACL_CAT_CONNECTION));
    ck_assert_int_eq(rules("allcommands"), 0);
    ck_assert(may("anything", NULL, 0));
}
END_TEST

/* The gate's fast path: only a user whom no rule narrows, in commands or
 * keys, may run everything; any later deny or a narrower key pattern
 * sends its requests through the full check again. */
START_TEST(test_acl_allows_everything_only_when_nothing_is_narrowed)
{
    kv_acl_user_init(&u, "alice", 5);
    ck_assert(!kv_acl_allows_everything(&u));
    ck_assert_int_eq(rules("+@all ~*"), 0);
    ck_assert(kv_acl_allows_everything(&u));
    ck_assert_int_eq(rules("+@read"), 0);
    ck_assert(kv_acl_allows_everything(&u));
    ck_assert_int_eq(rules("-flushall"), 0);
    ck_assert(!kv_acl_allows_everything(&u));
    ck_assert_int_eq(rules("allcommands"), 0);
    ck_assert(kv_acl_allows_everything(&u));
    ck_assert_int_eq(rules("-@admin"), 0);
    ck_assert(!kv_acl_allows_everything(&u));
    ck_assert_int_eq(rules("+@all resetkeys ~app:*"), 0);
    ck_assert(!kv_acl_allows_everything(&u));
    ck_assert_int_eq(rules("resetkeys %R~*"), 0);
    ck_assert(!kv_acl_allows_everything(&u));
    ck_assert_int_eq(rules("%W~*"), 0);
    ck_assert(kv_acl_allows_everything(&u));
    ck_assert_int_eq(rules("nocommands"), 0);
    ck_assert(!kv_acl_allows_everything(&u));
}
END_TEST

/* Key patterns: ~ read-write, %R~ and %W~ one way, allkeys, resetkeys. */
START_TEST(test_acl_key_patterns_give_read_and_write_separately)
{
    kv_acl_user_init(&u, "alice", 5);
    ck_assert(!key("a", KV_ACL_KEY_READ));
    ck_assert_int_eq(rules("~app:* %R~pub:* %W~inbox:?"), 0);
    ck_assert(key("app:1", KV_ACL_KEY_READ | KV_ACL_KEY_WRITE));
    ck_assert(key("pub:x", KV_ACL_KEY_READ));
    ck_assert(!key("pub:x", KV_ACL_KEY_WRITE));
    ck_assert(key("inbox:1", KV_ACL_KEY_WRITE));
    ck_assert(!key("inbox:12", KV_ACL_KEY_WRITE));
    ck_assert(!key("inbox:1", KV_ACL_KEY_READ));
    ck_assert(!key("other", KV_ACL_KEY_READ));
    ck_assert(!kv_acl_allows_all_keys(&u, KV_ACL_KEY_READ));
    /* A range inside a literal prefix is allowed; one that leaves it is
     * not. */
    ck_assert(kv_acl_allows_range(&u, (const uint8_t *)"app:", 4, NULL, 0, true,
                                  KV_ACL_KEY_READ));
    ck_assert(kv_acl_allows_range(&u, (const uint8_t *)"app:a", 5,
                                  (const uint8_t *)"app:z", 5, false,
                                  KV_ACL_KEY_WRITE));
    ck_assert(!kv_acl_allows_range(&u, (const uint8_t *)"app:a", 5,
                                   (const uint8_t *)"b", 1, false,
                                   KV_ACL_KEY_READ));
    ck_assert(!kv_acl_allows_range(&u, (const uint8_t *)"ap", 2, NULL, 0, true,
                                   KV_ACL_KEY_READ));
    ck_assert_int_eq(rules("%RW~pub:*"), 0);
    ck_assert(key("pub:x", KV_ACL_KEY_WRITE));
    ck_assert_int_eq(rules("allkeys"), 0);
    ck_assert(kv_acl_allows_all_keys(&u, KV_ACL_KEY_READ | KV_ACL_KEY_WRITE));
    ck_assert(kv_acl_allows_range(&u, (const uint8_t *)"", 0,
                                  (const uint8_t *)"\0", 1, false,
                                  KV_ACL_KEY_WRITE));
    ck_assert_int_eq(rules("resetkeys"), 0);
    ck_assert(!key("app:1", KV_ACL_KEY_READ));
}
END_TEST

/* Passwords: #hash adds, !hash removes, nopass and resetpass, reset;
 * clear text is refused (the server hashes it first). */
START_TEST(test_acl_passwords_and_flags)
{
    kv_acl_user_init(&u, "alice", 5);
    ck_assert(!u.on);
    ck_assert_int_eq(rules("on #h1 #h2 #h1"), 0);
    ck_assert(u.on);
    ck_assert_uint_eq(u.n_passwords, 2);
    ck_assert_int_eq(rules("!h1"), 0);
    ck_assert_uint_eq(u.n_passwords, 1);
    ck_assert_str_eq(u.passwords[0], "h2");
    ck_assert_int_eq(rules("nopass"), 0);
    ck_assert(u.nopass);
    ck_assert_uint_eq(u.n_passwords, 0);
    ck_assert_int_eq(rules("resetpass"), 0);
    ck_assert(!u.nopass);
    ck_assert_int_eq(rules(">secret"), KV_EACLRULE);
    ck_assert_int_eq(rules("<secret"), KV_EACLRULE);
    ck_assert_int_eq(rules("#a #b #c #d"), 0);
    ck_assert_int_eq(rules("#e"), KV_ELIMIT);
    ck_assert_int_eq(rules("+@all ~* reset"), 0);
    ck_assert(!u.on);
    ck_assert_uint_eq(u.n_passwords + u.n_rules + u.n_patterns, 0);
}
END_TEST

/* Malformed rules are refused with KV_EACLRULE and a reason. */
START_TEST(test_acl_malformed_rules_are_refused)
{
    const char *bad[] = {"",      "bogus", "+",    "+@", "+@nosuchcategory",
                         "+get!", "~",     "%X~a", "%R", "#",
                         "#a b"};
    char err[128];
    kv_acl_user_init(&u, "alice", 5);
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        err[0] = '\0';
        ck_assert_msg(kv_acl_user_apply_rule(&u, bad[i], strlen(bad[i]), err,
                                             sizeof(err)) == KV_EACLRULE,
                      "rule '%s' accepted", bad[i]);
        ck_assert_msg(err[0] != '\0', "no reason for '%s'", bad[i]);
    }
    char longpat[KV_ACL_PATTERN_MAX + 3];
    memset(longpat, 'a', sizeof(longpat) - 1);
    longpat[0] = '~';
    longpat[sizeof(longpat) - 1] = '\0';
    ck_assert_int_eq(
        kv_acl_user_apply_rule(&u, longpat, strlen(longpat), err, sizeof(err)),
        KV_EACLRULE);
    ck_assert(!kv_acl_name_valid("a b", 3));
    ck_assert(!kv_acl_name_valid("", 0));
    ck_assert(kv_acl_name_valid("alice", 5));
}
END_TEST

/* The glob follows Redis's rules and stays linear on hostile patterns. */
START_TEST(test_acl_glob_matches_like_redis)
{
    struct
    {
        const char *pat, *str;
        bool want;
    } cases[] = {
        {"*", "", true},
        {"*", "abc", true},
        {"a*c", "abc", true},
        {"a*c", "ab", false},
        {"a?c", "abc", true},
        {"a?c", "ac", false},
        {"[abc]x", "bx", true},
        {"[^abc]x", "bx", false},
        {"[a-c]x", "cx", true},
        {"[c-a]x", "bx", true},
        {"\\*", "*", true},
        {"\\*", "a", false},
        {"app:*:x", "app:1:x", true},
        {"app:*:x", "app:1:y", false},
        {"*a*b*c", "xaybzc", true},
        {"*a*b*c", "xaybz", false},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        bool got =
            kv_acl_glob(cases[i].pat, strlen(cases[i].pat),
                        (const uint8_t *)cases[i].str, strlen(cases[i].str));
        ck_assert_msg(got == cases[i].want, "'%s' vs '%s'", cases[i].pat,
                      cases[i].str);
    }
    /* The pattern that makes a backtracking matcher exponential. */
    char pat[128], str[512];
    for (size_t i = 0; i < 60; i++) {
        pat[2 * i] = 'a';
        pat[2 * i + 1] = '*';
    }
    pat[120] = 'b';
    memset(str, 'a', sizeof(str));
    ck_assert(!kv_acl_glob(pat, 121, (const uint8_t *)str, sizeof(str)));
}
END_TEST

/* A user's record decodes to the same user, and its text form is Redis's
 * shape. */
START_TEST(test_acl_record_round_trips)
{
    struct kv_acl_user back;
    uint8_t rec[KV_ACL_RECORD_MAX];
    char line[2048];
    kv_acl_user_init(&u, "alice", 5);
    ck_assert_int_eq(rules("on #h1 ~app:* %R~pub:* +@read -keys +set"), 0);
    size_t n = kv_acl_user_encode(&u, rec);
    ck_assert_int_eq(kv_acl_user_decode(rec, n, "alice", 5, &back), 0);
    ck_assert(memcmp(&u, &back, sizeof(u)) == 0);
    kv_acl_user_describe(&back, line, sizeof(line));
    ck_assert_str_eq(line,
                     "user alice on #h1 ~app:* %R~pub:* +@read -keys +set");
    /* Every truncation is refused, never read past. */
    for (size_t i = 0; i < n; i++) {
        ck_assert_int_eq(kv_acl_user_decode(rec, i, "alice", 5, &back),
                         KV_ECORRUPT);
    }
    kv_acl_user_init(&u, "bob", 3);
    kv_acl_user_describe(&u, line, sizeof(line));
    ck_assert_str_eq(line, "user bob off -@all");
}
END_TEST

/* ---------------------------------------------------------------------- */
/* In the store                                                            */

static uint8_t *setuser(const char *name,
                        const char *init,
                        const char *text,
                        size_t *len)
{
    const char *ws[2][KV_ACL_RULES_MAX];
    size_t ls[2][KV_ACL_RULES_MAX];
    size_t n[2] = {0, 0};
    char bufs[2][1024];
    const char *src[2] = {init, text};
    for (int k = 0; k < 2; k++) {
        snprintf(bufs[k], sizeof(bufs[k]), "%s", src[k] ? src[k] : "");
        for (char *w = strtok(bufs[k], " "); w != NULL; w = strtok(NULL, " ")) {
            ws[k][n[k]] = w;
            ls[k][n[k]++] = strlen(w);
        }
    }
    uint8_t value[4096];
    size_t vl = kv_acl_rules_encode(ws[0], ls[0], n[0], ws[1], ls[1], n[1],
                                    value, sizeof(value));
    ck_assert_uint_gt(vl, 0);
    struct kv_cmd c;
    kv_cmd_acl(&c, name, strlen(name), value, vl);
    c.acl_user = "default";
    c.acl_user_len = 7;
    c.acl_cmd = "acl|setuser";
    c.acl_cmd_len = 11;
    c.acl_cats = KV_ACL_CAT_ADMIN;
    return kvt_encode(&c, len);
}

/* A put of @key by @user, as the server stamps it for command @cmd. */
static uint8_t *put_as(const char *user,
                       const char *cmd,
                       uint32_t cats,
                       const char *k,
                       size_t *len)
{
    struct kv_cmd c;
    memset(&c, 0, sizeof(c));
    c.type = KV_CMD_PUT;
    c.op.type = KV_OP_PUT;
    c.op.key = (const uint8_t *)k;
    c.op.key_len = (uint32_t)strlen(k);
    c.op.value = (const uint8_t *)"v";
    c.op.value_len = 1;
    c.acl_user = user;
    c.acl_user_len = (uint8_t)strlen(user);
    c.acl_cmd = cmd;
    c.acl_cmd_len = (uint8_t)strlen(cmd);
    c.acl_cats = cats;
    return kvt_encode(&c, len);
}

static int apply(struct kv_store *s, raft_index i, uint8_t *d, size_t len)
{
    struct kv_apply_result res;
    kvt_apply_one(s, i, d, len, &res);
    int code = res.entries[0].code;
    kv_apply_result_free(&res);
    return code;
}

static bool exists(struct kv_store *s, const char *k)
{
    struct kv_range_result res;
    int rv = kv_get(s, (const uint8_t *)k, (uint32_t)strlen(k), &res);
    kv_range_result_free(&res);
    return rv == 0;
}

/* The envelope's write is decided by the users as they are at its index:
 * allowed before the change, refused (KV_ENOPERM, nothing written) after
 * it, and the same answer from a store replaying the same log. */
START_TEST(test_acl_writes_are_checked_against_users_at_their_index)
{
    char *dir = kvt_mkdtemp();
    char *dir2 = kvt_mkdtemp();
    struct kv_store *stores[2] = {kvt_open(dir, 0), kvt_open(dir2, 0)};
    int codes[2][6];
    for (int k = 0; k < 2; k++) {
        struct kv_store *s = stores[k];
        size_t len;
        uint8_t *d;
        uint64_t gen = kv_acl_generation(s);
        d = setuser("alice", NULL, "on nopass +@write ~app:*", &len);
        codes[k][0] = apply(s, 1, d, len);
        ck_assert_uint_gt(kv_acl_generation(s), gen);
        d = put_as("alice", "set", KV_ACL_CAT_WRITE, "app:1", &len);
        codes[k][1] = apply(s, 2, d, len);
        d = put_as("alice", "set", KV_ACL_CAT_WRITE, "other", &len);
        codes[k][2] = apply(s, 3, d, len);
        d = setuser("alice", NULL, "-set", &len);
        codes[k][3] = apply(s, 4, d, len);
        d = put_as("alice", "set", KV_ACL_CAT_WRITE, "app:2", &len);
        codes[k][4] = apply(s, 5, d, len);
        d = put_as("mallory", "set", KV_ACL_CAT_WRITE, "app:3", &len);
        codes[k][5] = apply(s, 6, d, len);
        ck_assert(exists(s, "app:1"));
        ck_assert(!exists(s, "other"));
        ck_assert(!exists(s, "app:2"));
        ck_assert(!exists(s, "app:3"));
    }
    int want[6] = {0, 0, KV_ENOPERM, 0, KV_ENOPERM, KV_ENOPERM};
    for (int i = 0; i < 6; i++) {
        ck_assert_int_eq(codes[0][i], want[i]);
        ck_assert_int_eq(codes[1][i], want[i]);
    }
    kv_close(stores[0]);
    kv_close(stores[1]);
    kvt_rmdir(dir);
    kvt_rmdir(dir2);
}
END_TEST

/* "default" without a record is the server's to govern: its writes pass;
 * once an entry defines it, its record does. The first rules of a
 * SETUSER apply only when it creates the user. */
START_TEST(test_acl_default_user_is_bootstrapped_then_stored)
{
    char *dir = kvt_mkdtemp();
    struct kv_store *s = kvt_open(dir, 0);
    struct kv_acl_user got;
    size_t len;
    uint8_t *d = put_as("default", "set", KV_ACL_CAT_WRITE, "k1", &len);
    ck_assert_int_eq(apply(s, 1, d, len), 0);
    ck_assert_int_eq(kv_acl_get(s, "default", 7, &got), KV_ENOTFOUND);
    d = setuser("default", "on #h ~* +@all", "-set", &len);
    ck_assert_int_eq(apply(s, 2, d, len), 0);
    ck_assert_int_eq(kv_acl_get(s, "default", 7, &got), 0);
    ck_assert(got.on);
    ck_assert_uint_eq(got.n_passwords, 1);
    d = setuser("default", "reset", "+set", &len);
    ck_assert_int_eq(apply(s, 3, d, len), 0);
    ck_assert_int_eq(kv_acl_get(s, "default", 7, &got), 0);
    ck_assert(got.on); /* "reset" was for a new user only */
    d = put_as("default", "set", KV_ACL_CAT_WRITE, "k2", &len);
    ck_assert_int_eq(apply(s, 4, d, len), 0);
    d = setuser("default", NULL, "-set", &len);
    ck_assert_int_eq(apply(s, 5, d, len), 0);
    d = put_as("default", "set", KV_ACL_CAT_WRITE, "k3", &len);
    ck_assert_int_eq(apply(s, 6, d, len), KV_ENOPERM);
    kv_close(s);
    kvt_rmdir(dir);
}
END_TEST

/* A transaction is checked on every key of both branches and of its
 * comparisons, whichever branch runs. */
START_TEST(test_acl_transactions_are_checked_on_every_key)
{
    char *dir = kvt_mkdtemp();
    struct kv_store *s = kvt_open(dir, 0);
    size_t len;
    uint8_t *d = setuser("alice", NULL, "on nopass +@all ~app:*", &len);
    ck_assert_int_eq(apply(s, 1, d, len), 0);
    struct kv_cmp cmp = {
        KV_CMP_EXISTS, KV_CMP_EQ, 5, 0, 0, (const uint8_t *)"app:1", NULL};
    struct kv_op then = {.type = KV_OP_PUT,
                         .key_len = 5,
                         .value_len = 1,
                         .key = (const uint8_t *)"app:2",
                         .value = (const uint8_t *)"v"};
    struct kv_op other = {
        .type = KV_OP_DELETE, .key_len = 6, .key = (const uint8_t *)"secret"};
    struct kv_cmd c;
    memset(&c, 0, sizeof(c));
    c.type = KV_CMD_TXN;
    c.cmps = &cmp;
    c.n_cmps = 1;
    c.then_ops = &then;
    c.n_then = 1;
    c.acl_user = "alice";
    c.acl_user_len = 5;
    c.acl_cmd = "btxn";
    c.acl_cmd_len = 4;
    c.acl_cats = KV_ACL_CAT_WRITE;
    d = kvt_encode(&c, &len);
    ck_assert_int_eq(apply(s, 2, d, len), 0);
    ck_assert(exists(s, "app:2"));
    c.else_ops = &other;
    c.n_else = 1;
    d = kvt_encode(&c, &len);
    ck_assert_int_eq(apply(s, 3, d, len), KV_ENOPERM);
    c.n_else = 0;
    cmp.key = (const uint8_t *)"secret";
    cmp.key_len = 6;
    d = kvt_encode(&c, &len);
    ck_assert_int_eq(apply(s, 4, d, len), KV_ENOPERM);
    kv_close(s);
    kvt_rmdir(dir);
}
END_TEST

/* Deleting a user, the limits on users, default's protection, and
 * malformed rules: refusals are entry codes and change nothing. */
START_TEST(test_acl_entries_delete_and_refuse)
{
    char *dir = kvt_mkdtemp();
    struct kv_store *s = kvt_open(dir, 0);
    struct kv_acl_user got;
    struct kv_cmd c;
    size_t len;
    uint8_t *d = setuser("alice", NULL, "on nopass", &len);
    ck_assert_int_eq(apply(s, 1, d, len), 0);
    d = setuser("alice", NULL, "+@read +@nosuch", &len);
    ck_assert_int_eq(apply(s, 2, d, len), KV_EACLRULE);
    ck_assert_int_eq(kv_acl_get(s, "alice", 5, &got), 0);
    ck_assert_uint_eq(got.n_rules, 0);
    kv_cmd_acl(&c, "alice", 5, NULL, 0);
    d = kvt_encode(&c, &len);
    struct kv_apply_result res;
    kvt_apply_one(s, 3, d, len, &res);
    ck_assert_int_eq(res.entries[0].code, 0);
    ck_assert(res.entries[0].succeeded);
    kv_apply_result_free(&res);
    ck_assert_int_eq(kv_acl_get(s, "alice", 5, &got), KV_ENOTFOUND);
    kv_cmd_acl(&c, "default", 7, NULL, 0);
    d = kvt_encode(&c, &len);
    ck_assert_int_eq(apply(s, 4, d, len), KV_EACLRULE);
    kv_close(s);
    kvt_rmdir(dir);
}
END_TEST

/* The envelope survives encoding, and the decoder refuses two envelopes,
 * bad names and truncations. */
START_TEST(test_acl_envelope_round_trips_and_is_checked)
{
    size_t len;
    uint8_t *d = put_as("alice", "set", KV_ACL_CAT_WRITE, "k", &len);
    struct kv_cmd c;
    ck_assert_int_eq(kv_cmd_decode(d, len, NULL, &c), 0);
    ck_assert_uint_eq(c.acl_user_len, 5);
    ck_assert(memcmp(c.acl_user, "alice", 5) == 0);
    ck_assert_uint_eq(c.acl_cats, KV_ACL_CAT_WRITE);
    ck_assert_uint_eq(c.type, KV_CMD_PUT);
    kv_cmd_free(&c, NULL);
    ck_assert(kv_cmd_adds_data(d, len));
    for (size_t i = 0; i < len; i++) {
        ck_assert_int_ne(kv_cmd_decode(d, i, NULL, &c), 0);
    }
    /* An envelope inside an envelope. */
    uint8_t twice[256];
    size_t head = 1 + 1 + 5 + 1 + 3 + 4;
    memcpy(twice, d, head);
    memcpy(twice + head, d, len);
    ck_assert_int_eq(kv_cmd_decode(twice, head + len, NULL, &c), KV_EBADCMD);
    free(d);
    memset(&c, 0, sizeof(c));
    c.type = KV_CMD_DELETE;
    c.op.type = KV_OP_DELETE;
    c.op.key = (const uint8_t *)"k";
    c.op.key_len = 1;
    c.acl_user = "al ice";
    c.acl_user_len = 6;
    c.acl_cmd = "del";
    c.acl_cmd_len = 3;
    ck_assert_uint_eq(kv_cmd_encoded_size(&c), 0);
    c.acl_user = "alice";
    c.acl_user_len = 5;
    c.acl_cmd_len = 0;
    ck_assert_uint_eq(kv_cmd_encoded_size(&c), 0);
}
END_TEST

/* Users travel in snapshots: an installed store refuses what the source
 * refuses, and its generation moves. */
START_TEST(test_acl_users_survive_snapshot_install)
{
    char *src_dir = kvt_mkdtemp();
    char *dst_dir = kvt_mkdtemp();
    struct kv_store *src = kvt_open(src_dir, 0);
    struct kv_store *dst = kvt_open(dst_dir, 0);
    struct kv_acl_user got;
    size_t len;
    uint8_t *d = setuser("alice", NULL, "on nopass +@read ~*", &len);
    ck_assert_int_eq(apply(src, 1, d, len), 0);
    uint64_t gen = kv_acl_generation(dst);
    kvt_snapshot_transfer(src, src_dir, dst);
    ck_assert_uint_gt(kv_acl_generation(dst), gen);
    ck_assert_int_eq(kv_acl_get(dst, "alice", 5, &got), 0);
    d = put_as("alice", "set", KV_ACL_CAT_WRITE, "k", &len);
    ck_assert_int_eq(apply(dst, 2, d, len), KV_ENOPERM);
    kv_close(src);
    kv_close(dst);
    kvt_rmdir(src_dir);
    kvt_rmdir(dst_dir);
}
END_TEST

Suite *kv_acl_suite(void)
{
    Suite *s = suite_create("acl");
    TCase *tc = tcase_create("acl");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_acl_command_rules_apply_in_order);
    tcase_add_test(tc,
                   test_acl_allows_everything_only_when_nothing_is_narrowed);
    tcase_add_test(tc, test_acl_key_patterns_give_read_and_write_separately);
    tcase_add_test(tc, test_acl_passwords_and_flags);
    tcase_add_test(tc, test_acl_malformed_rules_are_refused);
    tcase_add_test(tc, test_acl_glob_matches_like_redis);
    tcase_add_test(tc, test_acl_record_round_trips);
    tcase_add_test(tc,
                   test_acl_writes_are_checked_against_users_at_their_index);
    tcase_add_test(tc, test_acl_default_user_is_bootstrapped_then_stored);
    tcase_add_test(tc, test_acl_transactions_are_checked_on_every_key);
    tcase_add_test(tc, test_acl_entries_delete_and_refuse);
    tcase_add_test(tc, test_acl_envelope_round_trips_and_is_checked);
    tcase_add_test(tc, test_acl_users_survive_snapshot_install);
    suite_add_tcase(s, tc);
    return s;
}
