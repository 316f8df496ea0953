/*
 * acl.h - users and permissions on the client port (Redis's ACL): who a
 * connection is, what it may run, the ACL command, and the ACL envelope
 * every write carries to the state machine.
 *
 * Users live in the replicated store (kv_acl.h); this file reads them from
 * the node's applied state, caches them until the store's ACL generation
 * moves, and checks each request before it runs. A write is checked here
 * and again by every replica at apply time (kv_apply(), the envelope), so
 * an ACL change racing a write is decided at one log index, the same on
 * every node (docs/security.md).
 *
 * Until the replicated store defines the user "default", the server's
 * settings do: the client password (if any) and default_user_rules.
 */
#ifndef BALLOT_NET_SERVER_ACL_H
#define BALLOT_NET_SERVER_ACL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "commands.h"
#include "kv_acl.h"

/* Users cached per server between ACL changes; beyond it the cache is
 * emptied (it refills from the store, one read each). */
#define ACL_CACHE_MAX 64u
/* The default user's rules when the setting is not given: every command
 * and every key, as Redis's default user has. */
#define ACL_DEFAULT_USER_RULES "+@all ~*"

/**
 * Sets up the ACL state of @env from its options (the default user's
 * bootstrap: on, the password hash or nopass, then
 * opts.default_user_rules). Returns 0, or -1 with a message in @err if the
 * rules do not parse.
 */
int acl_init(struct cmd_env *env, char *err, size_t err_len);

/** Frees what acl_init() set up. */
void acl_close(struct cmd_env *env);

/**
 * Finds user @name (@len bytes) as the node's applied state holds it (or
 * the bootstrap default). Returns 1 with @out filled, 0 if there is no
 * such user, or -1 if the store cannot be read now.
 */
int acl_lookup(struct cmd_env *env,
               const char *name,
               size_t len,
               struct kv_acl_user *out);

/** The categories (KV_ACL_CAT_*) of command @d with subcommand @sub (lower
 * case, may be NULL). */
uint32_t acl_categories(const struct cmd_def *d, const char *sub);

/**
 * The gate every request passes before it runs or is queued: the
 * authentication requirement (NOAUTH), then the user's command and key
 * permissions (NOPERM). Replies and returns false if the request may not
 * run.
 */
bool acl_gate(struct cmd_req *r,
              const struct cmd_def *d,
              const struct resp_request *req);

/**
 * Stamps @cmd with the ACL envelope of @r's connection and command, so
 * that the state machine checks it again at apply time. The envelope
 * borrows from @r's client and the command table.
 */
void acl_stamp(struct cmd_req *r, struct kv_cmd *cmd);

/** Replies NOPERM for a write the state machine refused (KV_ENOPERM). */
void acl_rep_refused(struct cmd_req *r);

/** Whether a new connection is the default user without AUTH: that user
 * is on and needs no password. */
bool acl_default_nopass(struct cmd_env *env);

/** Sets up (and frees) the per-user buckets of admission control. 0 or
 * -1 (no memory). */
int acl_limits_init(struct cmd_env *env);
void acl_limits_close(struct cmd_env *env);

/**
 * Admission control: takes @req's cost (one request, its argument bytes)
 * from its connection's bucket and its user's. Replies "RATELIMITED ...
 * retry after N ms" and returns false if either is empty; nothing is
 * taken then.
 */
bool acl_admit(struct cmd_req *r, const struct resp_request *req);

/** Opens opts.audit_file (appending, mode 600), if set. 0, or -1 with a
 * message in @err. */
int acl_audit_open(struct cmd_env *env, char *err, size_t err_len);
void acl_audit_close(struct cmd_env *env);

/**
 * Writes one audit line: @event ("auth-failed", "admin", "denied"), the
 * user (@user, @user_len; NULL: @c's), @c's id and address, the time, and
 * the command (@argc words; 0: none) with passwords masked.
 */
void acl_audit(struct cmd_client *c,
               const char *event,
               const char *user,
               size_t user_len,
               size_t argc,
               const char *const *argv,
               const size_t *argvlen);

/** Marks @c as authenticated as @name (@len bytes). */
void acl_login(struct cmd_client *c, const char *name, size_t len);

/** The default user as the settings make it, and the rules that make it
 * (acl_cmd.c starts a stored default from them). */
const struct kv_acl_user *acl_boot_user(struct cmd_env *env);
const char *acl_boot_rules(struct cmd_env *env);

/** ACL WHOAMI, CAT, USERS, LIST, GETUSER, SETUSER, DELUSER. */
CMD_DECL(cmd_acl);

#endif
