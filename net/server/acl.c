/*
 * acl.c - see acl.h. The user cache, the gate each request passes, the
 * categories of the commands, and the ACL command.
 */
#include "acl.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bnode.h"
#include "kv.h"
#include "passwd.h"

struct acl_cached
{
    bool exists;
    /* kv_acl_allows_everything(&u), computed when the entry is filled. */
    bool everything;
    struct kv_acl_user u;
};

struct acl_state
{
    /* The store's ACL generation the cache was filled at. */
    uint64_t gen;
    bool gen_known;
    unsigned n;
    struct acl_cached cache[ACL_CACHE_MAX];
    /* The default user until the store defines it, and the rules that
     * made it (the first rules of an ACL SETUSER default that creates it,
     * so that the change starts from what the user had). */
    struct kv_acl_user boot;
    /* acl_categories() of every row of cmd_table without a subcommand,
     * computed once: the gate and every write's envelope need them. */
    uint32_t *cats;
    /* Per row of cmd_table: no subcommand, not admin, not audited, not a
     * wrapper of another command, so that a user who may run everything
     * passes the gate without any further check. */
    bool *plain;
    char boot_rules[SERVER_PASSWORD_HASH_MAX + SERVER_DEFAULT_USER_RULES_MAX +
                    16];
};

static const char default_name[] = "default";

/* ---------------------------------------------------------------------- */
/* Set-up and the cache                                                    */

/* Splits @text at spaces, calling @fn for each word; stops at the first
 * non-zero return. */
static int each_word(const char *text,
                     int (*fn)(void *arg, const char *w, size_t len),
                     void *arg)
{
    const char *p = text;
    while (*p != '\0') {
        while (*p == ' ' || *p == '\t') {
            p++;
        }
        const char *w = p;
        while (*p != '\0' && *p != ' ' && *p != '\t') {
            p++;
        }
        if (p > w) {
            int rv = fn(arg, w, (size_t)(p - w));
            if (rv != 0) {
                return rv;
            }
        }
    }
    return 0;
}

static bool has_subcommands(const struct cmd_def *d);

struct boot_apply
{
    struct kv_acl_user *u;
    char *err;
    size_t err_len;
};

static int boot_apply_word(void *arg, const char *w, size_t len)
{
    struct boot_apply *b = arg;
    return kv_acl_user_apply_rule(b->u, w, len, b->err, b->err_len);
}

int acl_init(struct cmd_env *env, char *err, size_t err_len)
{
    struct acl_state *st;
    char why[128];
    unsigned it = env->opts.password_iterations;
    if (it != 0 && (it < PASSWD_ITERATIONS_MIN || it > PASSWD_ITERATIONS_MAX)) {
        snprintf(err, err_len, "server: password_iterations must be %u..%u",
                 PASSWD_ITERATIONS_MIN, PASSWD_ITERATIONS_MAX);
        return -1;
    }
    st = calloc(1, sizeof(*st));
    if (st == NULL) {
        snprintf(err, err_len, "server: out of memory");
        return -1;
    }
    const char *rules = env->opts.default_user_rules[0] != '\0'
                            ? env->opts.default_user_rules
                            : ACL_DEFAULT_USER_RULES;
    snprintf(st->boot_rules, sizeof(st->boot_rules), "on %s%s %s",
             env->opts.password_hash[0] != '\0' ? "#" : "nopass",
             env->opts.password_hash, rules);
    kv_acl_user_init(&st->boot, default_name, strlen(default_name));
    struct boot_apply b = {&st->boot, why, sizeof(why)};
    if (each_word(st->boot_rules, boot_apply_word, &b) != 0) {
        snprintf(err, err_len, "server: default_user_rules: %s", why);
        free(st);
        return -1;
    }
    st->cats = calloc(cmd_table_len, sizeof(*st->cats));
    if (st->cats == NULL) {
        snprintf(err, err_len, "server: out of memory");
        free(st);
        return -1;
    }
    st->plain = calloc(cmd_table_len, sizeof(*st->plain));
    if (st->plain == NULL) {
        snprintf(err, err_len, "server: out of memory");
        free(st->cats);
        free(st);
        return -1;
    }
    for (size_t i = 0; i < cmd_table_len; i++) {
        const struct cmd_def *d = &cmd_table[i];
        st->cats[i] = acl_categories(d, NULL);
        st->plain[i] = (st->cats[i] & KV_ACL_CAT_ADMIN) == 0 &&
                       !has_subcommands(d) && strcmp(d->name, "breq") != 0 &&
                       strcmp(d->name, "flushall") != 0 &&
                       strcmp(d->name, "flushdb") != 0;
    }
    env->acl = st;
    return 0;
}

void acl_close(struct cmd_env *env)
{
    if (env->acl != NULL) {
        free(env->acl->cats);
        free(env->acl->plain);
    }
    free(env->acl);
    env->acl = NULL;
}

/* acl_categories(), from the table computed at start when it can. */
static uint32_t cats_of(struct cmd_env *env,
                        const struct cmd_def *d,
                        const char *sub)
{
    if (sub == NULL && d >= cmd_table && d < cmd_table + cmd_table_len) {
        return env->acl->cats[d - cmd_table];
    }
    return acl_categories(d, sub);
}

/* The cache entry of the user named @name: a pointer valid until the next
 * call, NULL with *@rc 0 if there is none, NULL with *@rc -1 if the store
 * cannot be read now. */
static const struct acl_cached *acl_entry(struct cmd_env *env,
                                          const char *name,
                                          size_t len,
                                          int *rc)
{
    struct acl_state *st = env->acl;
    struct kv_store *kv = bnode_kv(env->node);
    *rc = 0;
    if (kv == NULL) {
        *rc = -1;
        return NULL;
    }
    /* The generation first, then the users: a change committed between
     * the two is cached under the old generation and dropped at the next
     * call, never the other way round. */
    uint64_t gen = kv_acl_generation(kv);
    if (!st->gen_known || gen != st->gen) {
        st->n = 0;
        st->gen = gen;
        st->gen_known = true;
    }
    for (unsigned i = 0; i < st->n; i++) {
        struct acl_cached *e = &st->cache[i];
        if (strlen(e->u.name) == len && memcmp(e->u.name, name, len) == 0) {
            return e->exists ? e : NULL;
        }
    }
    if (!kv_acl_name_valid(name, len)) {
        return NULL;
    }
    if (st->n == ACL_CACHE_MAX) {
        st->n = 0;
    }
    struct acl_cached *e = &st->cache[st->n];
    int got = kv_acl_get(kv, name, len, &e->u);
    if (got == KV_ENOTFOUND) {
        e->exists = false;
        kv_acl_user_init(&e->u, name, len);
        if (len == strlen(default_name) &&
            memcmp(name, default_name, len) == 0) {
            e->u = st->boot;
            e->exists = true;
        }
    } else if (got != 0) {
        *rc = -1;
        return NULL;
    } else {
        e->exists = true;
    }
    e->everything = e->exists && kv_acl_allows_everything(&e->u);
    st->n++;
    return e->exists ? e : NULL;
}

/* The user named @name, as acl_entry() finds it. */
static const struct kv_acl_user *acl_find(struct cmd_env *env,
                                          const char *name,
                                          size_t len,
                                          int *rc)
{
    const struct acl_cached *e = acl_entry(env, name, len, rc);
    return e != NULL ? &e->u : NULL;
}

int acl_lookup(struct cmd_env *env,
               const char *name,
               size_t len,
               struct kv_acl_user *out)
{
    int rc;
    const struct kv_acl_user *u = acl_find(env, name, len, &rc);
    if (u == NULL) {
        return rc;
    }
    *out = *u;
    return 1;
}

bool acl_default_nopass(struct cmd_env *env)
{
    int rc;
    const struct kv_acl_user *d =
        acl_find(env, default_name, strlen(default_name), &rc);
    return d != NULL && d->on && d->nopass;
}

void acl_login(struct cmd_client *c, const char *name, size_t len)
{
    if (len > KV_ACL_NAME_MAX) {
        len = KV_ACL_NAME_MAX;
    }
    memcpy(c->user, name, len);
    c->user[len] = '\0';
    c->authenticated = true;
}

/* ---------------------------------------------------------------------- */
/* Categories                                                              */

#define C_KEYSPACE KV_ACL_CAT_KEYSPACE
#define C_READ KV_ACL_CAT_READ
#define C_WRITE KV_ACL_CAT_WRITE
#define C_STRING KV_ACL_CAT_STRING
#define C_ADMIN KV_ACL_CAT_ADMIN
#define C_DANGEROUS KV_ACL_CAT_DANGEROUS
#define C_CONNECTION KV_ACL_CAT_CONNECTION
#define C_TRANSACTION KV_ACL_CAT_TRANSACTION

/* What a command's flags do not say, by name: categories added and taken
 * away. Commands not listed (those other files add later included) get
 * their categories from their flags alone: read, write, admin and
 * dangerous, fast or slow. */
static const struct
{
    const char *name;
    uint32_t add;
    uint32_t remove;
} overrides[] = {
    {"ping", C_CONNECTION, 0},
    {"echo", C_CONNECTION, 0},
    {"hello", C_CONNECTION, 0},
    {"auth", C_CONNECTION, 0},
    {"select", C_CONNECTION, 0},
    {"quit", C_CONNECTION, 0},
    {"reset", C_CONNECTION, 0},
    {"client", C_CONNECTION, 0},
    {"command", C_CONNECTION, 0},
    {"readonly", C_CONNECTION, 0},
    {"readwrite", C_CONNECTION, 0},
    {"multi", C_TRANSACTION, 0},
    {"exec", C_TRANSACTION, 0},
    {"discard", C_TRANSACTION, 0},
    {"watch", C_TRANSACTION, C_READ},
    {"unwatch", C_TRANSACTION, 0},
    {"del", C_KEYSPACE, 0},
    {"unlink", C_KEYSPACE, 0},
    {"exists", C_KEYSPACE, 0},
    {"keys", C_KEYSPACE | C_DANGEROUS, 0},
    {"scan", C_KEYSPACE, 0},
    {"dbsize", C_KEYSPACE, 0},
    {"type", C_KEYSPACE, 0},
    {"rename", C_KEYSPACE, 0},
    {"renamenx", C_KEYSPACE, 0},
    {"copy", C_KEYSPACE, 0},
    {"object", C_KEYSPACE, 0},
    {"bmeta", C_KEYSPACE, 0},
    {"brange", C_KEYSPACE, 0},
    {"bhistory", C_KEYSPACE, 0},
    {"flushdb", C_KEYSPACE | C_DANGEROUS, 0},
    {"flushall", C_KEYSPACE | C_DANGEROUS, 0},
    {"get", C_STRING, 0},
    {"mget", C_STRING, 0},
    {"strlen", C_STRING, 0},
    {"set", C_STRING, 0},
    {"setnx", C_STRING, 0},
    {"getset", C_STRING, 0},
    {"getdel", C_STRING, 0},
    {"incr", C_STRING, 0},
    {"incrby", C_STRING, 0},
    {"decr", C_STRING, 0},
    {"decrby", C_STRING, 0},
    {"append", C_STRING, 0},
    {"incrbyfloat", C_STRING, 0},
    {"mset", C_STRING, 0},
    {"msetnx", C_STRING, 0},
    {"getrange", C_STRING, 0},
    {"substr", C_STRING, 0},
    {"setrange", C_STRING, 0},
    /* INFO and BSTATUS only show the node's state, as Redis's INFO. */
    {"info", C_DANGEROUS, 0},
    {"bstatus", C_DANGEROUS, C_ADMIN},
    {"role", C_DANGEROUS, 0},
    {"config", C_ADMIN | C_DANGEROUS, 0},
};

/* Subcommands whose categories differ from their command's. */
static const struct
{
    const char *cmd;
    const char *sub;
    uint32_t cats;
} sub_cats[] = {
    {"acl", "whoami", KV_ACL_CAT_SLOW},
    {"acl", "cat", KV_ACL_CAT_SLOW},
    {"client", "kill", KV_ACL_CAT_SLOW | C_ADMIN | C_DANGEROUS | C_CONNECTION},
};

/* Commands whose first argument names a subcommand (+cmd|sub rules). */
static const char *const with_subs[] = {
    "acl",       "client", "config", "command",   "bmember",
    "bsnapshot", "object", "memory", "bfallback",
};

static bool has_subcommands(const struct cmd_def *d)
{
    for (size_t i = 0; i < sizeof(with_subs) / sizeof(with_subs[0]); i++) {
        if (strcmp(with_subs[i], d->name) == 0) {
            return true;
        }
    }
    return false;
}

uint32_t acl_categories(const struct cmd_def *d, const char *sub)
{
    uint32_t c = 0;
    if (d->flags & CMD_READONLY) {
        c |= C_READ;
    }
    if (d->flags & CMD_WRITE) {
        c |= C_WRITE;
    }
    if (d->flags & CMD_ADMIN) {
        c |= C_ADMIN | C_DANGEROUS;
    }
    c |= (d->flags & CMD_FAST) ? KV_ACL_CAT_FAST : KV_ACL_CAT_SLOW;
    if (strcmp(d->name, "acl") == 0) {
        /* Everything but WHOAMI and CAT shows or changes users. */
        c = KV_ACL_CAT_SLOW | C_ADMIN | C_DANGEROUS;
    }
    for (size_t i = 0; i < sizeof(overrides) / sizeof(overrides[0]); i++) {
        if (strcmp(overrides[i].name, d->name) == 0) {
            c = (c | overrides[i].add) & ~overrides[i].remove;
            break;
        }
    }
    if (sub != NULL) {
        for (size_t i = 0; i < sizeof(sub_cats) / sizeof(sub_cats[0]); i++) {
            if (strcmp(sub_cats[i].cmd, d->name) == 0 &&
                strcmp(sub_cats[i].sub, sub) == 0) {
                c = sub_cats[i].cats;
            }
        }
    }
    return c;
}

/* The subcommand of @req for @d, lower case in @buf, or NULL. */
static const char *subcommand_of(const struct cmd_def *d,
                                 size_t argc,
                                 const char *const *argv,
                                 const size_t *argvlen,
                                 char *buf,
                                 size_t cap)
{
    if (argc < 2 || argvlen[1] == 0 || argvlen[1] >= cap) {
        return NULL;
    }
    for (size_t i = 0; i < sizeof(with_subs) / sizeof(with_subs[0]); i++) {
        if (strcmp(with_subs[i], d->name) == 0) {
            for (size_t j = 0; j < argvlen[1]; j++) {
                buf[j] = (char)tolower((unsigned char)argv[1][j]);
            }
            buf[argvlen[1]] = '\0';
            return buf;
        }
    }
    return NULL;
}

/* ---------------------------------------------------------------------- */
/* The gate                                                                */

/* Read-modify-writes that return what the key held: Redis asks for read
 * and write rights on their keys. */
static const char *const reads_and_writes[] = {
    "getset",      "getdel", "incr",   "incrby",   "decr",   "decrby",
    "incrbyfloat", "copy",   "rename", "renamenx", "append", "setrange",
};

static unsigned key_perm(const struct cmd_def *d)
{
    unsigned perm = 0;
    if (d->flags & CMD_READONLY) {
        perm |= KV_ACL_KEY_READ;
    }
    if (d->flags & CMD_WRITE) {
        perm |= KV_ACL_KEY_WRITE;
        for (size_t i = 0;
             i < sizeof(reads_and_writes) / sizeof(reads_and_writes[0]); i++) {
            if (strcmp(reads_and_writes[i], d->name) == 0) {
                perm |= KV_ACL_KEY_READ;
            }
        }
    }
    return perm;
}

/* Whether @u may touch the keys @d names in argv: those its key spec
 * gives, a range for BRANGE, every key for the commands that take the
 * whole key space (KEYS, SCAN, DBSIZE, FLUSHALL, BHISTORY, BSNAPSHOT).
 * BTXN's keys are inside its arguments: the store checks them at apply
 * time, as it does every write's. BSEQ names a sequence, not a key. */
static bool keys_allowed(const struct kv_acl_user *u,
                         const struct cmd_def *d,
                         size_t argc,
                         const char *const *argv,
                         const size_t *argvlen)
{
    unsigned perm = key_perm(d);
    if (strcmp(d->name, "bsnapshot") == 0) {
        return kv_acl_allows_all_keys(u, KV_ACL_KEY_READ);
    }
    if (perm == 0 || strcmp(d->name, "btxn") == 0 ||
        strcmp(d->name, "breq") == 0 || strcmp(d->name, "bseq") == 0 ||
        strcmp(d->name, "bfence") == 0 || strcmp(d->name, "block") == 0 ||
        strcmp(d->name, "belect") == 0) {
        return true;
    }
    if (strcmp(d->name, "brange") == 0) {
        bool prefix = false;
        for (size_t i = 3; i < argc; i++) {
            prefix |= cmd_arg_is(argv[i], argvlen[i], "prefix");
        }
        static const uint8_t one_zero[1] = {0};
        return kv_acl_allows_range(
            u, (const uint8_t *)argv[1], argvlen[1],
            argvlen[2] ? (const uint8_t *)argv[2] : one_zero,
            argvlen[2] ? argvlen[2] : 1, prefix, perm);
    }
    if (d->first_key <= 0) {
        return kv_acl_allows_all_keys(u, perm);
    }
    size_t first = (size_t)d->first_key;
    size_t last =
        d->last_key < 0 ? argc - (size_t)(-d->last_key) : (size_t)d->last_key;
    size_t step = d->key_step > 0 ? (size_t)d->key_step : 1;
    for (size_t i = first; i <= last && i < argc; i += step) {
        if (!kv_acl_allows_key(u, (const uint8_t *)argv[i], argvlen[i], perm)) {
            return false;
        }
    }
    return true;
}

/* The command and key check of @u for one command; replies when refused. */
static bool allowed(struct cmd_req *r,
                    const struct kv_acl_user *u,
                    const struct cmd_def *d,
                    size_t argc,
                    const char *const *argv,
                    const size_t *argvlen,
                    uint32_t *cats_out)
{
    char subbuf[32];
    const char *sub =
        subcommand_of(d, argc, argv, argvlen, subbuf, sizeof(subbuf));
    uint32_t cats = cats_of(r->client->env, d, sub);
    if (cats_out != NULL) {
        *cats_out = cats;
    }
    if (!kv_acl_allows_cmd(u, d->name, sub, cats)) {
        /* Redis's words, so that clients recognize the refusal. */
        rep_errorf(r,
                   "NOPERM User %s has no permissions to run the '%s%s%s' "
                   "command",
                   u->name, d->name, sub != NULL ? "|" : "",
                   sub != NULL ? sub : "");
        return false;
    }
    if (!keys_allowed(u, d, argc, argv, argvlen)) {
        rep_error(r, "NOPERM No permissions to access a key");
        return false;
    }
    if ((strcmp(d->name, "breq") == 0 || strcmp(d->name, "bfence") == 0) &&
        argc >= 4) {
        /* The command BREQ or BFENCE wraps is checked as itself. */
        const struct cmd_def *inner = cmd_lookup(argv[3], argvlen[3]);
        if (inner != NULL && inner != d) {
            return allowed(r, u, inner, argc - 3, argv + 3, argvlen + 3, NULL);
        }
    }
    return true;
}

bool acl_gate(struct cmd_req *r,
              const struct cmd_def *d,
              const struct resp_request *req)
{
    struct cmd_client *c = r->client;
    struct cmd_env *env = c->env;
    int rc;
    /* These run for anyone: they are how a connection authenticates (HELLO
     * checks its own AUTH option), leaves or starts over. */
    if (d->fn == cmd_auth || d->fn == cmd_hello || d->fn == cmd_quit ||
        d->fn == cmd_reset) {
        return true;
    }
    if (c->user[0] == '\0') {
        memcpy(c->user, default_name, sizeof(default_name));
    }
    if (!c->authenticated) {
        /* A new connection is the default user, without AUTH, only if
         * that user is on and needs no password (Redis's rule). */
        const struct kv_acl_user *def =
            acl_find(env, default_name, strlen(default_name), &rc);
        if (rc != 0) {
            rep_error(r, "TRYAGAIN the users cannot be read now, retry");
            return false;
        }
        if (def == NULL || !def->on || !def->nopass) {
            rep_error(r, "NOAUTH Authentication required.");
            return false;
        }
    }
    const struct acl_cached *e = acl_entry(env, c->user, strlen(c->user), &rc);
    if (rc != 0) {
        rep_error(r, "TRYAGAIN the users cannot be read now, retry");
        return false;
    }
    if (e == NULL) {
        rep_errorf(r, "NOPERM User %s no longer exists: authenticate again",
                   c->user);
        return false;
    }
    /* The common case, a cluster without ACLs: nothing to check, nothing
     * to audit (a request costs no command or key matching). */
    if (e->everything && d >= cmd_table && d < cmd_table + cmd_table_len &&
        env->acl->plain[d - cmd_table]) {
        return true;
    }
    const struct kv_acl_user *u = &e->u;
    const char *const *argv = (const char *const *)req->argv;
    uint32_t cats = 0;
    bool ok = allowed(r, u, d, req->argc, argv, req->argvlen, &cats);
    /* The audit log: what an admin did, and what anyone was refused. */
    if (!ok) {
        acl_audit(c, "denied", NULL, 0, req->argc, argv, req->argvlen);
    } else if ((cats & KV_ACL_CAT_ADMIN) != 0 ||
               strcmp(d->name, "flushall") == 0 ||
               strcmp(d->name, "flushdb") == 0) {
        acl_audit(c, "admin", NULL, 0, req->argc, argv, req->argvlen);
    }
    return ok;
}

void acl_stamp(struct cmd_req *r, struct kv_cmd *cmd)
{
    struct cmd_client *c = r->client;
    if (cmd->acl_user != NULL) {
        return;
    }
    if (c->user[0] == '\0') {
        memcpy(c->user, default_name, sizeof(default_name));
    }
    cmd->acl_user = c->user;
    cmd->acl_user_len = (uint8_t)strlen(c->user);
    cmd->acl_cmd = r->def != NULL ? r->def->name : "unknown";
    cmd->acl_cmd_len = (uint8_t)strlen(cmd->acl_cmd);
    cmd->acl_cats = r->def != NULL ? cats_of(c->env, r->def, NULL) : 0;
}

void acl_rep_refused(struct cmd_req *r)
{
    rep_errorf(r,
               "NOPERM User %s may no longer run this command or touch its "
               "keys (the users changed before it applied): not applied",
               r->client->user);
}

const struct kv_acl_user *acl_boot_user(struct cmd_env *env)
{
    return &env->acl->boot;
}

const char *acl_boot_rules(struct cmd_env *env)
{
    return env->acl->boot_rules;
}
