/*
 * acl_cmd.c - the ACL command (see acl.h): WHOAMI, CAT, USERS, LIST,
 * GETUSER, and SETUSER and DELUSER, which become log entries after their
 * clear-text passwords are hashed on a worker thread.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "acl.h"
#include "bnode.h"
#include "kv.h"
#include "passwd.h"

static const char default_name[] = "default";

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
        const struct kv_acl_user *boot = acl_boot_user(env);
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
    size_t bad;          /* the rule a worker could not translate, or n */
    unsigned iterations; /* of the hashes >password makes */
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
            if (passwd_hash(rule + 1, j->lens[i] - 1, j->iterations,
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
            const char *p = acl_boot_rules(env);
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
    j->iterations = env->opts.password_iterations != 0
                        ? env->opts.password_iterations
                        : PASSWD_ITERATIONS_DEFAULT;
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
