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
    struct acl_state *st = calloc(1, sizeof(*st));
    char why[128];
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
    env->acl = st;
    return 0;
}

void acl_close(struct cmd_env *env)
{
    free(env->acl);
    env->acl = NULL;
}

/* The user named @name: a pointer valid until the next call, NULL with
 * *@rc 0 if there is none, NULL with *@rc -1 if the store cannot be read
 * now. */
static const struct kv_acl_user *acl_find(struct cmd_env *env,
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
            return e->exists ? &e->u : NULL;
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
    st->n++;
    return e->exists ? &e->u : NULL;
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
    "acl",     "client",    "config", "command",
    "bmember", "bsnapshot", "object", "memory",
};

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
        strcmp(d->name, "breq") == 0 || strcmp(d->name, "bseq") == 0) {
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
                    const size_t *argvlen)
{
    char subbuf[32];
    const char *sub =
        subcommand_of(d, argc, argv, argvlen, subbuf, sizeof(subbuf));
    if (!kv_acl_allows_cmd(u, d->name, sub, acl_categories(d, sub))) {
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
    if (strcmp(d->name, "breq") == 0 && argc >= 4) {
        /* The command BREQ wraps is checked as itself. */
        const struct cmd_def *inner = cmd_lookup(argv[3], argvlen[3]);
        if (inner != NULL && inner != d) {
            return allowed(r, u, inner, argc - 3, argv + 3, argvlen + 3);
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
    const struct kv_acl_user *u = acl_find(env, c->user, strlen(c->user), &rc);
    if (rc != 0) {
        rep_error(r, "TRYAGAIN the users cannot be read now, retry");
        return false;
    }
    if (u == NULL) {
        rep_errorf(r, "NOPERM User %s no longer exists: authenticate again",
                   c->user);
        return false;
    }
    return allowed(r, u, d, req->argc, (const char *const *)req->argv,
                   req->argvlen);
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
    cmd->acl_cats = r->def != NULL ? acl_categories(r->def, NULL) : 0;
}

void acl_rep_refused(struct cmd_req *r)
{
    rep_errorf(r,
               "NOPERM User %s may no longer run this command or touch its "
               "keys (the users changed before it applied): not applied",
               r->client->user);
}

/* ---------------------------------------------------------------------- */
/* ACL                                                                     */

static void rep_user_line(struct cmd_req *r, const struct kv_acl_user *u)
{
    char line[16384];
    size_t n = kv_acl_user_describe(u, line, sizeof(line));
    rep_bulk(r, line, n);
}

struct name_list
{
    char (*names)[KV_ACL_NAME_MAX + 1];
    size_t n;
    size_t cap;
    bool has_default;
};

static int collect_name(void *arg, const struct kv_acl_user *u)
{
    struct name_list *l = arg;
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 16;
        void *p = realloc(l->names, cap * sizeof(*l->names));
        if (p == NULL) {
            return KV_ENOMEM;
        }
        l->names = p;
        l->cap = cap;
    }
    memcpy(l->names[l->n++], u->name, sizeof(u->name));
    l->has_default |= strcmp(u->name, default_name) == 0;
    return 0;
}

static int name_cmp(const void *a, const void *b)
{
    return strcmp(a, b);
}

/* Every user's name, sorted, the bootstrap default included. */
static int all_names(struct cmd_env *env, struct name_list *l)
{
    memset(l, 0, sizeof(*l));
    struct kv_store *kv = bnode_kv(env->node);
    if (kv == NULL) {
        return -1;
    }
    int rc = kv_acl_each(kv, collect_name, l);
    if (rc == 0 && !l->has_default) {
        struct kv_acl_user *boot = &env->acl->boot;
        rc = collect_name(l, boot);
        qsort(l->names, l->n, sizeof(*l->names), name_cmp);
    }
    if (rc != 0) {
        free(l->names);
        memset(l, 0, sizeof(*l));
        return -1;
    }
    return 0;
}

static void acl_users_or_list(struct cmd_req *r, bool list)
{
    struct cmd_env *env = r->client->env;
    struct name_list l;
    if (all_names(env, &l) != 0) {
        rep_error(r, "TRYAGAIN the users cannot be read now, retry");
        return;
    }
    struct kv_acl_user *u = malloc(sizeof(*u));
    if (u == NULL) {
        free(l.names);
        rep_error(r, "ERR out of memory");
        return;
    }
    rep_array(r, l.n);
    for (size_t i = 0; i < l.n; i++) {
        if (!list) {
            rep_cstr(r, l.names[i]);
        } else if (acl_lookup(env, l.names[i], strlen(l.names[i]), u) == 1) {
            rep_user_line(r, u);
        } else {
            rep_null(r);
        }
    }
    free(u);
    free(l.names);
}

static void acl_getuser(struct cmd_req *r, const char *name, size_t len)
{
    struct cmd_env *env = r->client->env;
    struct kv_acl_user *u = malloc(sizeof(*u));
    char text[KV_ACL_CMD_RULES_MAX * (KV_ACL_CMD_NAME_MAX + 4) +
              KV_ACL_PATTERNS_MAX * (KV_ACL_PATTERN_MAX + 5)];
    if (u == NULL) {
        rep_error(r, "ERR out of memory");
        return;
    }
    int rc = acl_lookup(env, name, len, u);
    if (rc < 0) {
        rep_error(r, "TRYAGAIN the users cannot be read now, retry");
    } else if (rc == 0) {
        rep_null(r);
    } else {
        /* Redis 7's shape: flags, passwords, commands, keys, channels,
         * selectors. */
        rep_map(r, 6);
        rep_cstr(r, "flags");
        rep_array(r, u->nopass ? 2 : 1);
        rep_cstr(r, u->on ? "on" : "off");
        if (u->nopass) {
            rep_cstr(r, "nopass");
        }
        rep_cstr(r, "passwords");
        rep_array(r, u->n_passwords);
        for (unsigned i = 0; i < u->n_passwords; i++) {
            rep_cstr(r, u->passwords[i]);
        }
        rep_cstr(r, "commands");
        kv_acl_user_commands(u, text, sizeof(text));
        rep_cstr(r, text);
        rep_cstr(r, "keys");
        kv_acl_user_keys(u, text, sizeof(text));
        rep_cstr(r, text);
        rep_cstr(r, "channels");
        rep_cstr(r, "");
        rep_cstr(r, "selectors");
        rep_array(r, 0);
    }
    free(u);
}

static void acl_cat(struct cmd_req *r, const char *name, size_t len)
{
    if (name == NULL) {
        rep_array(r, KV_ACL_CATEGORIES);
        for (unsigned i = 0; i < KV_ACL_CATEGORIES; i++) {
            rep_cstr(r, kv_acl_category_name(i));
        }
        return;
    }
    uint32_t mask = kv_acl_category_lookup(name, len);
    if (mask == 0) {
        rep_errorf(r, "ERR Unknown category '%.*s'", (int)(len > 64 ? 64 : len),
                   name);
        return;
    }
    size_t n = 0;
    for (size_t i = 0; i < cmd_table_len; i++) {
        n += (acl_categories(&cmd_table[i], NULL) & mask) != 0;
    }
    rep_array(r, n);
    for (size_t i = 0; i < cmd_table_len; i++) {
        if ((acl_categories(&cmd_table[i], NULL) & mask) != 0) {
            rep_cstr(r, cmd_table[i].name);
        }
    }
}

/* One ACL SETUSER or DELUSER on its way: the rules (clear-text passwords
 * turned into hashes on a worker thread), then the proposal. */
struct acl_job
{
    uv_work_t work;
    struct cmd_req *r;
    char name[KV_ACL_NAME_MAX + 1];
    size_t name_len;
    bool del;
    /* SETUSER: the rules as given, and as they will be proposed. */
    size_t n;
    char **rules;
    size_t *lens;
    /* The user's hashes when the job began (for <password). */
    unsigned n_old;
    char old[KV_ACL_PASSWORDS_MAX][KV_ACL_HASH_MAX];
    size_t bad; /* the rule a worker could not translate, or n */
    bool hashed;
    /* DELUSER: the names, the next one, and how many went. */
    size_t n_names;
    char (*names)[KV_ACL_NAME_MAX + 1];
    size_t next;
    int64_t deleted;
    uint8_t *value;
};

static void job_free(struct acl_job *j)
{
    for (size_t i = 0; i < j->n; i++) {
        if (j->rules[i] != NULL) {
            memset(j->rules[i], 0, j->lens[i]);
            free(j->rules[i]);
        }
    }
    free(j->rules);
    free(j->lens);
    free(j->names);
    free(j->value);
    free(j);
}

/* Worker thread: >password becomes #hash, <password becomes !hash of the
 * stored hash it matches. */
static void job_hash(uv_work_t *w)
{
    struct acl_job *j = w->data;
    j->bad = j->n;
    for (size_t i = 0; i < j->n; i++) {
        char *rule = j->rules[i];
        char hash[PASSWD_HASH_MAX + 1];
        if (rule[0] == '>') {
            hash[0] = '#';
            if (passwd_hash(rule + 1, j->lens[i] - 1, PASSWD_ITERATIONS_DEFAULT,
                            hash + 1) != 0) {
                j->bad = i;
                return;
            }
        } else if (rule[0] == '<') {
            unsigned k = 0;
            while (k < j->n_old &&
                   !passwd_verify(j->old[k], rule + 1, j->lens[i] - 1)) {
                k++;
            }
            if (k == j->n_old) {
                j->bad = i;
                return;
            }
            hash[0] = '!';
            snprintf(hash + 1, sizeof(hash) - 1, "%s", j->old[k]);
        } else {
            continue;
        }
        size_t hl = strlen(hash);
        char *copy = malloc(hl + 1);
        if (copy == NULL) {
            j->bad = i;
            return;
        }
        memcpy(copy, hash, hl + 1);
        memset(rule, 0, j->lens[i]);
        free(rule);
        j->rules[i] = copy;
        j->lens[i] = hl;
    }
}

static void job_propose(struct acl_job *j);

static void job_done(void *arg, int status, const struct kv_entry_result *res)
{
    struct acl_job *j = arg;
    struct cmd_req *r = j->r;
    if (status != 0) {
        rep_node_error(r, status, true);
    } else if (res->code == KV_ENOPERM) {
        acl_rep_refused(r);
    } else if (res->code == KV_ELIMIT) {
        rep_errorf(r, "ERR too many users (at most %u) or rules for one user",
                   KV_ACL_USERS_MAX);
    } else if (res->code != 0) {
        rep_errorf(r, "ERR the state machine refused the ACL change: %s",
                   kv_strerror(res->code));
    } else if (j->del) {
        j->deleted += res->succeeded ? 1 : 0;
        if (++j->next < j->n_names) {
            job_propose(j);
            return;
        }
        rep_int(r, j->deleted);
    } else {
        rep_ok(r);
    }
    job_free(j);
    cmd_req_finish(r);
}

static void job_propose(struct acl_job *j)
{
    struct cmd_req *r = j->r;
    struct cmd_env *env = r->client->env;
    struct kv_cmd cmd;
    if (j->del) {
        const char *name = j->names[j->next];
        kv_cmd_acl(&cmd, name, strlen(name), NULL, 0);
        cmd.acl_cmd = "acl|deluser";
    } else {
        /* The default user, created by this change, starts from what the
         * settings gave it; whether it is created is decided at apply
         * time. */
        const char *init[KV_ACL_RULES_MAX];
        size_t init_len[KV_ACL_RULES_MAX];
        size_t n_init = 0;
        if (strcmp(j->name, default_name) == 0) {
            const char *p = env->acl->boot_rules;
            while (*p != '\0' && n_init < KV_ACL_RULES_MAX) {
                while (*p == ' ') {
                    p++;
                }
                const char *w = p;
                while (*p != '\0' && *p != ' ') {
                    p++;
                }
                if (p > w) {
                    init[n_init] = w;
                    init_len[n_init++] = (size_t)(p - w);
                }
            }
        }
        size_t cap = 4 + (n_init + j->n) * (2 + KV_ACL_RULE_BYTES_MAX);
        j->value = malloc(cap);
        size_t len = j->value == NULL
                         ? 0
                         : kv_acl_rules_encode(init, init_len, n_init,
                                               (const char *const *)j->rules,
                                               j->lens, j->n, j->value, cap);
        if (len == 0) {
            rep_error(r, "ERR too many rules, or a rule too long");
            job_free(j);
            cmd_req_finish(r);
            return;
        }
        kv_cmd_acl(&cmd, j->name, j->name_len, j->value, len);
        cmd.acl_cmd = "acl|setuser";
    }
    cmd.acl_user = r->client->user;
    cmd.acl_user_len = (uint8_t)strlen(r->client->user);
    cmd.acl_cmd_len = (uint8_t)strlen(cmd.acl_cmd);
    cmd.acl_cats = KV_ACL_CAT_SLOW | KV_ACL_CAT_ADMIN | KV_ACL_CAT_DANGEROUS;
    uint8_t *buf = NULL;
    size_t size = kv_cmd_encoded_size(&cmd), len = 0;
    int rc = 0;
    if (size == 0 || (buf = malloc(size)) == NULL ||
        kv_cmd_encode(&cmd, buf, size, &len) != 0) {
        rep_error(r, "ERR could not encode the ACL change");
    } else if ((rc = bnode_propose(env->node, buf, len, job_done, j)) != 0) {
        rep_node_error(r, rc, true);
    } else {
        free(buf); /* bnode_propose copies it */
        return;
    }
    free(buf);
    job_free(j);
    cmd_req_finish(r);
}

static void job_hashed(uv_work_t *w, int status)
{
    struct acl_job *j = w->data;
    struct cmd_req *r = j->r;
    r->client->env->auth_checks--;
    if (status != 0 || j->bad < j->n) {
        const char *rule = status != 0 ? "" : j->rules[j->bad];
        rep_errorf(r, "ERR Error in ACL SETUSER modifier '%c...': %s",
                   rule[0] != '\0' ? rule[0] : '?',
                   rule[0] == '<' ? "no such password"
                                  : "the password could not be hashed");
        job_free(j);
        cmd_req_finish(r);
        return;
    }
    job_propose(j);
}

/* Checks one rule of ACL SETUSER on the scratch user @u before anything is
 * proposed; replies and returns false if it is wrong. */
static bool setuser_check_rule(struct cmd_req *r,
                               struct kv_acl_user *u,
                               const char *rule,
                               size_t len)
{
    char why[128];
    int shown = (int)(len > 64 ? 64 : len);
    if (len > 0 && (rule[0] == '>' || rule[0] == '<')) {
        if (len - 1 > PASSWD_BYTES_MAX) {
            rep_errorf(r,
                       "ERR Error in ACL SETUSER modifier '%c...': the "
                       "password is longer than %u bytes",
                       rule[0], PASSWD_BYTES_MAX);
            return false;
        }
        return true;
    }
    if (len > 1 && rule[0] == '#' && !passwd_valid(rule + 1)) {
        /* Only our own hashes can ever match (Redis's #sha256 would
         * not). */
        rep_errorf(r,
                   "ERR Error in ACL SETUSER modifier '%.*s': a #hash must "
                   "be a stored hash as ballotd passwd writes it",
                   shown, rule);
        return false;
    }
    if (len > 1 && (rule[0] == '+' || rule[0] == '-') && rule[1] != '@') {
        const char *bar = memchr(rule, '|', len);
        size_t nl = bar != NULL ? (size_t)(bar - rule) - 1 : len - 1;
        if (cmd_lookup(rule + 1, nl) == NULL) {
            rep_errorf(r,
                       "ERR Error in ACL SETUSER modifier '%.*s': Unknown "
                       "command",
                       shown, rule);
            return false;
        }
    }
    if (kv_acl_user_apply_rule(u, rule, len, why, sizeof(why)) != 0) {
        rep_errorf(r, "ERR Error in ACL SETUSER modifier '%.*s': %s", shown,
                   rule, why);
        return false;
    }
    return true;
}

static void acl_setuser(struct cmd_req *r,
                        size_t argc,
                        const char *const *argv,
                        const size_t *argvlen)
{
    struct cmd_env *env = r->client->env;
    const char *name = argv[2];
    size_t name_len = argvlen[2];
    struct acl_job *j = NULL;
    struct kv_acl_user *scratch = malloc(sizeof(*scratch));
    bool passwords = false;
    int rc;
    if (scratch == NULL) {
        rep_error(r, "ERR out of memory");
        goto fail;
    }
    if (!kv_acl_name_valid(name, name_len)) {
        rep_errorf(r,
                   "ERR a user name is 1 to %u printable bytes without "
                   "spaces",
                   KV_ACL_NAME_MAX);
        goto fail;
    }
    if (argc - 3 > KV_ACL_RULES_MAX) {
        rep_errorf(r, "ERR at most %u rules in one ACL SETUSER",
                   KV_ACL_RULES_MAX);
        goto fail;
    }
    rc = acl_lookup(env, name, name_len, scratch);
    if (rc < 0) {
        rep_error(r, "TRYAGAIN the users cannot be read now, retry");
        goto fail;
    }
    if (rc == 0) {
        kv_acl_user_init(scratch, name, name_len);
    }
    j = calloc(1, sizeof(*j));
    if (j == NULL) {
        rep_error(r, "ERR out of memory");
        goto fail;
    }
    j->r = r;
    memcpy(j->name, name, name_len);
    j->name_len = name_len;
    j->n_old = scratch->n_passwords;
    memcpy(j->old, scratch->passwords, sizeof(j->old));
    j->n = argc - 3;
    j->rules = calloc(j->n + 1, sizeof(*j->rules));
    j->lens = calloc(j->n + 1, sizeof(*j->lens));
    if (j->rules == NULL || j->lens == NULL) {
        rep_error(r, "ERR out of memory");
        goto fail;
    }
    for (size_t i = 0; i < j->n; i++) {
        const char *rule = argv[3 + i];
        size_t len = argvlen[3 + i];
        if (!setuser_check_rule(r, scratch, rule, len)) {
            goto fail;
        }
        passwords |= len > 0 && (rule[0] == '>' || rule[0] == '<');
        if ((j->rules[i] = malloc(len + 1)) == NULL) {
            rep_error(r, "ERR out of memory");
            goto fail;
        }
        memcpy(j->rules[i], rule, len);
        j->rules[i][len] = '\0';
        j->lens[i] = len;
    }
    free(scratch);
    scratch = NULL;
    if (!passwords) {
        job_propose(j);
        return;
    }
    if (env->auth_checks >= SERVER_AUTH_CHECKS_MAX) {
        rep_error(r, "BUSY too many password checks in progress, retry");
        goto fail;
    }
    j->work.data = j;
    if (uv_queue_work(env->loop, &j->work, job_hash, job_hashed) != 0) {
        rep_error(r, "ERR cannot hash the password now, retry");
        goto fail;
    }
    env->auth_checks++;
    return;

fail:
    free(scratch);
    if (j != NULL) {
        job_free(j);
    }
    cmd_req_finish(r);
}

static void acl_deluser(struct cmd_req *r,
                        size_t argc,
                        const char *const *argv,
                        const size_t *argvlen)
{
    struct acl_job *j = calloc(1, sizeof(*j));
    if (j == NULL || (j->names = calloc(argc - 2, sizeof(*j->names))) == NULL) {
        free(j);
        rep_error(r, "ERR out of memory");
        cmd_req_finish(r);
        return;
    }
    j->r = r;
    j->del = true;
    for (size_t i = 2; i < argc; i++) {
        if (cmd_arg_is(argv[i], argvlen[i], default_name) &&
            argvlen[i] == strlen(default_name)) {
            rep_error(r, "ERR The 'default' user cannot be removed");
            job_free(j);
            cmd_req_finish(r);
            return;
        }
        if (!kv_acl_name_valid(argv[i], argvlen[i])) {
            /* No such user can exist: nothing to delete. */
            continue;
        }
        memcpy(j->names[j->n_names++], argv[i], argvlen[i]);
    }
    if (j->n_names == 0) {
        rep_int(r, 0);
        job_free(j);
        cmd_req_finish(r);
        return;
    }
    job_propose(j);
}

CMD_DECL(cmd_acl)
{
    const char *sub = argv[1];
    size_t sl = argvlen[1];
    if (cmd_arg_is(sub, sl, "whoami") && argc == 2) {
        rep_cstr(r, r->client->user[0] ? r->client->user : default_name);
    } else if (cmd_arg_is(sub, sl, "cat") && argc <= 3) {
        acl_cat(r, argc == 3 ? argv[2] : NULL, argc == 3 ? argvlen[2] : 0);
    } else if (cmd_arg_is(sub, sl, "users") && argc == 2) {
        acl_users_or_list(r, false);
    } else if (cmd_arg_is(sub, sl, "list") && argc == 2) {
        acl_users_or_list(r, true);
    } else if (cmd_arg_is(sub, sl, "getuser") && argc == 3) {
        acl_getuser(r, argv[2], argvlen[2]);
    } else if (cmd_arg_is(sub, sl, "setuser") && argc >= 3) {
        acl_setuser(r, argc, argv, argvlen);
        return;
    } else if (cmd_arg_is(sub, sl, "deluser") && argc >= 3) {
        acl_deluser(r, argc, argv, argvlen);
        return;
    } else if (cmd_arg_is(sub, sl, "whoami") || cmd_arg_is(sub, sl, "cat") ||
               cmd_arg_is(sub, sl, "users") || cmd_arg_is(sub, sl, "list") ||
               cmd_arg_is(sub, sl, "getuser") ||
               cmd_arg_is(sub, sl, "setuser") ||
               cmd_arg_is(sub, sl, "deluser")) {
        rep_errorf(r, "ERR wrong number of arguments for 'acl|%.*s' command",
                   (int)sl, sub);
    } else {
        rep_errorf(r,
                   "ERR unknown subcommand '%.*s'. ballot supports ACL "
                   "WHOAMI, CAT, USERS, LIST, GETUSER, SETUSER and DELUSER "
                   "(users live in the replicated store: no LOAD or SAVE)",
                   (int)(sl > 64 ? 64 : sl), sub);
    }
    cmd_req_finish(r);
}
