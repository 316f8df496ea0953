/*
 * commands_admin.c - the commands that answer without touching the store:
 * connection state (PING, HELLO, CLIENT, SELECT, QUIT, RESET, READONLY),
 * MULTI bookkeeping, and server and cluster introspection (INFO, COMMAND,
 * BSTATUS, BTRANSFER).
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "acl.h"
#include "bnode.h"
#include "commands.h"
#include "passwd.h"

#define BALLOT_VERSION_STRING "0.1.0"

/* ---------------------------------------------------------------------- */
/* Connection commands                                                     */

CMD_DECL(cmd_ping)
{
    (void)argvlen;
    if (argc > 2) {
        rep_arity_error(r, "ping");
    } else if (argc == 2) {
        rep_bulk(r, argv[1], argvlen[1]);
    } else {
        rep_simple(r, "PONG");
    }
    cmd_req_finish(r);
}

CMD_DECL_VIEW(cmd_ping_view)
{
    (void)v;
    if (argc > 2) {
        rep_arity_error(r, "ping");
    } else if (argc == 2) {
        rep_bulk(r, argv[1], argvlen[1]);
    } else {
        rep_simple(r, "PONG");
    }
}

CMD_DECL(cmd_echo)
{
    (void)argc;
    rep_bulk(r, argv[1], argvlen[1]);
    cmd_req_finish(r);
}

CMD_DECL_VIEW(cmd_echo_view)
{
    (void)v;
    (void)argc;
    rep_bulk(r, argv[1], argvlen[1]);
}

CMD_DECL(cmd_select)
{
    int64_t db;
    (void)argc;
    if (cmd_parse_i64(argv[1], argvlen[1], &db) != 0) {
        rep_error(r, "ERR value is not an integer or out of range");
    } else if (db != 0) {
        rep_error(r, "ERR DB index is out of range");
    } else {
        rep_ok(r);
    }
    cmd_req_finish(r);
}

CMD_DECL(cmd_quit)
{
    (void)argc;
    (void)argv;
    (void)argvlen;
    r->client->quit = true;
    r->close_after = true;
    rep_ok(r);
    cmd_req_finish(r);
}

CMD_DECL(cmd_readonly)
{
    (void)argc;
    r->client->readonly = cmd_arg_is(argv[0], argvlen[0], "readonly");
    rep_ok(r);
    cmd_req_finish(r);
}

/* Client names follow Redis: printable ASCII without spaces. */
static bool name_valid(const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        if (s[i] < '!' || s[i] > '~') {
            return false;
        }
    }
    return true;
}

static int set_name(struct cmd_req *r, const char *s, size_t len)
{
    struct cmd_client *c = r->client;
    if (!name_valid(s, len)) {
        rep_error(r,
                  "ERR Client names cannot contain spaces, newlines or "
                  "special characters.");
        return -1;
    }
    if (len > SERVER_CLIENT_NAME_MAX) {
        rep_errorf(r, "ERR client name too long: ballot's limit is %u bytes",
                   SERVER_CLIENT_NAME_MAX);
        return -1;
    }
    free(c->name);
    c->name = NULL;
    if (len > 0) {
        c->name = malloc(len + 1);
        if (c->name == NULL) {
            rep_error(r, "ERR out of memory");
            return -1;
        }
        memcpy(c->name, s, len);
        c->name[len] = '\0';
    }
    return 0;
}

CMD_DECL(cmd_client)
{
    struct cmd_client *c = r->client;
    const char *sub = argv[1];
    size_t sublen = argvlen[1];
    if (cmd_arg_is(sub, sublen, "id") && argc == 2) {
        rep_int(r, (int64_t)c->id);
    } else if (cmd_arg_is(sub, sublen, "getname") && argc == 2) {
        if (c->name != NULL) {
            rep_cstr(r, c->name);
        } else {
            rep_null(r);
        }
    } else if (cmd_arg_is(sub, sublen, "setname") && argc == 3) {
        if (set_name(r, argv[2], argvlen[2]) == 0) {
            rep_ok(r);
        }
    } else if (cmd_arg_is(sub, sublen, "setinfo") && argc == 4) {
        /* Client libraries announce themselves; nothing to keep. */
        rep_ok(r);
    } else if (cmd_arg_is(sub, sublen, "info") ||
               cmd_arg_is(sub, sublen, "list")) {
        cmd_client_list(r, argc, argv, argvlen);
        return;
    } else if (cmd_arg_is(sub, sublen, "kill")) {
        cmd_client_kill(r, argc, argv, argvlen);
        return;
    } else if ((cmd_arg_is(sub, sublen, "no-evict") ||
                cmd_arg_is(sub, sublen, "no-touch")) &&
               argc == 3) {
        /* ballot never evicts keys nor tracks access times: both modes
         * are what it always does. */
        if (cmd_arg_is(argv[2], argvlen[2], "on") ||
            cmd_arg_is(argv[2], argvlen[2], "off")) {
            rep_ok(r);
        } else {
            rep_error(r, "ERR syntax error");
        }
    } else if (cmd_arg_is(sub, sublen, "id") ||
               cmd_arg_is(sub, sublen, "no-evict") ||
               cmd_arg_is(sub, sublen, "no-touch") ||
               cmd_arg_is(sub, sublen, "getname") ||
               cmd_arg_is(sub, sublen, "setname") ||
               cmd_arg_is(sub, sublen, "setinfo")) {
        rep_errorf(r,
                   "ERR wrong number of arguments for 'client|%.*s' "
                   "command",
                   (int)sublen, sub);
    } else {
        rep_errorf(r, "ERR unknown subcommand '%.*s'. Try CLIENT HELP.",
                   (int)(sublen > 128 ? 128 : sublen), sub);
    }
    cmd_req_finish(r);
}

static const char *role_of(uint8_t state)
{
    switch (state) {
    case RAFT_LEADER:
        return "leader";
    case RAFT_CANDIDATE:
        return "candidate";
    case RAFT_PRE_CANDIDATE:
        return "pre-candidate";
    default:
        return "follower";
    }
}

/* ---------------------------------------------------------------------- */
/* Authentication                                                          */

/* HELLO's reply, once its options were checked (and its AUTH passed). */
static void hello_apply(struct cmd_req *r,
                        int proto,
                        const char *name,
                        size_t name_len)
{
    struct cmd_client *c = r->client;
    if (name != NULL && set_name(r, name, name_len) != 0) {
        return;
    }
    c->proto = proto;
    (void)resp_buf_set_proto(&r->reply, proto);
    struct bnode_status st;
    bnode_status(c->env->node, &st);
    rep_map(r, 7);
    rep_cstr(r, "server");
    rep_cstr(r, "ballot");
    rep_cstr(r, "version");
    rep_cstr(r, BALLOT_VERSION_STRING);
    rep_field_int(r, "proto", proto);
    rep_field_int(r, "id", (int64_t)c->id);
    /* A client sees one server holding every key: standalone, not Redis
     * Cluster (ballot has no CLUSTER command nor hash slots). */
    rep_cstr(r, "mode");
    rep_cstr(r, "standalone");
    rep_cstr(r, "role");
    rep_cstr(r, st.state == RAFT_LEADER ? "master" : "replica");
    rep_cstr(r, "modules");
    rep_array(r, 0);
}

/* A password check on a worker thread, for AUTH or HELLO ... AUTH: the
 * password against each of the user's stored hashes. */
struct auth_check
{
    uv_work_t work;
    struct cmd_req *r;
    char user[KV_ACL_NAME_MAX + 1];
    unsigned n_hashes;
    char hashes[KV_ACL_PASSWORDS_MAX][KV_ACL_HASH_MAX];
    char *password; /* copied; wiped and freed after the check */
    size_t password_len;
    bool ok;
    bool hello; /* then apply HELLO with what follows */
    int proto;
    char *name; /* HELLO SETNAME, copied; NULL if none */
    size_t name_len;
};

static void auth_check_run(uv_work_t *w)
{
    struct auth_check *a = w->data;
    for (unsigned i = 0; i < a->n_hashes && !a->ok; i++) {
        a->ok = passwd_verify(a->hashes[i], a->password, a->password_len);
    }
}

static void auth_check_free(struct auth_check *a)
{
    if (a->password != NULL) {
        memset(a->password, 0, a->password_len);
        free(a->password);
    }
    free(a->name);
    free(a);
}

/* Redis's words, so that clients recognize the failure; the audit log
 * records who tried. */
static void rep_wrongpass(struct cmd_req *r, const char *user, size_t len)
{
    acl_audit(r->client, "auth-failed", user, len, 0, NULL, NULL);
    rep_error(r,
              "WRONGPASS invalid username-password pair or user is "
              "disabled.");
}

static void auth_check_done(uv_work_t *w, int status)
{
    struct auth_check *a = w->data;
    struct cmd_req *r = a->r;
    struct cmd_client *c = r->client;
    c->env->auth_checks--;
    if (status != 0 || !a->ok) {
        rep_wrongpass(r, a->user, strlen(a->user));
    } else {
        acl_login(c, a->user, strlen(a->user));
        if (a->hello) {
            hello_apply(r, a->proto, a->name, a->name_len);
        } else {
            rep_ok(r);
        }
    }
    auth_check_free(a);
    cmd_req_finish(r);
}

/* Starts checking @user/@pw for @r, then finishes @r (OK, HELLO's reply or
 * WRONGPASS). @user NULL means "default". The user is looked up in the
 * node's applied users (acl.h): one that does not exist or is off is
 * refused; one with nopass takes any password. Finishes @r itself on an
 * early answer. */
static void auth_start(struct cmd_req *r,
                       const char *user,
                       size_t user_len,
                       const char *pw,
                       size_t pw_len,
                       bool hello,
                       int proto,
                       const char *name,
                       size_t name_len)
{
    struct cmd_env *env = r->client->env;
    struct kv_acl_user *u = malloc(sizeof(*u));
    struct auth_check *a = NULL;
    bool named = user != NULL;
    if (!named) {
        user = "default";
        user_len = 7;
    }
    int found = u == NULL ? -1 : acl_lookup(env, user, user_len, u);
    if (found < 0) {
        rep_error(r, u == NULL ? "ERR out of memory"
                               : "TRYAGAIN the users cannot be read now, "
                                 "retry");
        goto finish;
    }
    if (found == 0 || !u->on) {
        rep_wrongpass(r, user, user_len);
        goto finish;
    }
    if (u->nopass) {
        /* As Redis with a user that has no password: any password passes
         * when the user is named, and AUTH with a password alone is a
         * configuration mistake worth saying. */
        if (!named) {
            rep_error(r,
                      "ERR AUTH <password> called without any password "
                      "configured for the default user. Are you sure "
                      "your configuration is correct?");
            goto finish;
        }
        acl_login(r->client, user, user_len);
        if (hello) {
            hello_apply(r, proto, name, name_len);
        } else {
            rep_ok(r);
        }
        goto finish;
    }
    if (pw_len > PASSWD_BYTES_MAX || u->n_passwords == 0) {
        rep_wrongpass(r, user, user_len);
        goto finish;
    }
    if (env->auth_checks >= SERVER_AUTH_CHECKS_MAX) {
        rep_error(r, "BUSY too many password checks in progress, retry");
        goto finish;
    }
    a = calloc(1, sizeof(*a));
    if (a == NULL || (a->password = malloc(pw_len + 1)) == NULL ||
        (name != NULL && (a->name = malloc(name_len + 1)) == NULL)) {
        rep_error(r, "ERR out of memory");
        goto finish;
    }
    a->r = r;
    memcpy(a->user, user, user_len);
    a->n_hashes = u->n_passwords;
    memcpy(a->hashes, u->passwords, sizeof(a->hashes));
    memcpy(a->password, pw, pw_len);
    a->password_len = pw_len;
    a->hello = hello;
    a->proto = proto;
    if (name != NULL) {
        memcpy(a->name, name, name_len);
        a->name_len = name_len;
    }
    a->work.data = a;
    if (uv_queue_work(env->loop, &a->work, auth_check_run, auth_check_done) !=
        0) {
        rep_error(r, "ERR cannot check the password now, retry");
        goto finish;
    }
    env->auth_checks++;
    free(u);
    return;

finish:
    if (a != NULL) {
        auth_check_free(a);
    }
    free(u);
    cmd_req_finish(r);
}

/* AUTH password | AUTH username password. */
CMD_DECL(cmd_auth)
{
    if (argc > 3) {
        rep_error(r, "ERR syntax error");
        cmd_req_finish(r);
        return;
    }
    if (argc == 2) {
        auth_start(r, NULL, 0, argv[1], argvlen[1], false, 0, NULL, 0);
    } else {
        auth_start(r, argv[1], argvlen[1], argv[2], argvlen[2], false, 0, NULL,
                   0);
    }
}

CMD_DECL(cmd_hello)
{
    struct cmd_client *c = r->client;
    int proto = c->proto;
    size_t i = 1;
    if (argc >= 2) {
        int64_t v;
        if (cmd_parse_i64(argv[1], argvlen[1], &v) != 0) {
            rep_error(r,
                      "ERR Protocol version is not an integer or out of "
                      "range");
            goto done;
        }
        if (v != 2 && v != 3) {
            rep_error(r, "NOPROTO unsupported protocol version");
            goto done;
        }
        proto = (int)v;
        i = 2;
    }
    /* Check every option before changing anything: HELLO either applies
     * whole or not at all. */
    const char *name = NULL, *user = NULL, *pw = NULL;
    size_t name_len = 0, user_len = 0, pw_len = 0;
    for (; i < argc; i++) {
        bool more = i + 1 < argc;
        if (cmd_arg_is(argv[i], argvlen[i], "auth") && i + 2 < argc) {
            user = argv[i + 1];
            user_len = argvlen[i + 1];
            pw = argv[i + 2];
            pw_len = argvlen[i + 2];
            i += 2;
        } else if (cmd_arg_is(argv[i], argvlen[i], "setname") && more) {
            name = argv[i + 1];
            name_len = argvlen[i + 1];
            i++;
        } else {
            rep_errorf(r, "ERR Syntax error in HELLO option '%.*s'",
                       (int)(argvlen[i] > 128 ? 128 : argvlen[i]), argv[i]);
            goto done;
        }
    }
    if (user != NULL) {
        auth_start(r, user, user_len, pw, pw_len, true, proto, name, name_len);
        return;
    }
    if (!c->authenticated && !acl_default_nopass(c->env)) {
        rep_error(r,
                  "NOAUTH HELLO must be called with the client already "
                  "authenticated, otherwise the HELLO <proto> AUTH "
                  "<user> <pass> option can be used to authenticate the "
                  "client and select the RESP protocol version at the "
                  "same time");
        goto done;
    }
    hello_apply(r, proto, name, name_len);
done:
    cmd_req_finish(r);
}

CMD_DECL(cmd_reset)
{
    struct cmd_client *c = r->client;
    (void)argc;
    (void)argv;
    (void)argvlen;
    cmd_client_discard(c);
    cmd_client_unwatch(c);
    c->readonly = false;
    /* Redis: RESET deauthenticates the connection. */
    c->authenticated = false;
    memcpy(c->user, "default", sizeof("default"));
    c->proto = 2;
    free(c->name);
    c->name = NULL;
    (void)resp_buf_set_proto(&r->reply, 2);
    rep_simple(r, "RESET");
    cmd_req_finish(r);
}

/* ---------------------------------------------------------------------- */
/* MULTI state                                                             */

void cmd_client_discard(struct cmd_client *c)
{
    for (size_t i = 0; i < c->n_queued; i++) {
        free((void *)c->queued[i].argv);
    }
    free(c->queued);
    c->queued = NULL;
    c->n_queued = 0;
    c->cap_queued = 0;
    if (c->queued_bytes > 0 && c->env->mem_release != NULL) {
        c->env->mem_release(c, c->queued_bytes);
    }
    c->queued_bytes = 0;
    c->in_multi = false;
    c->multi_dirty = false;
}

CMD_DECL(cmd_multi)
{
    (void)argc;
    (void)argv;
    (void)argvlen;
    if (r->client->in_multi) {
        rep_error(r, "ERR MULTI calls can not be nested");
    } else {
        r->client->in_multi = true;
        r->client->multi_dirty = false;
        rep_ok(r);
    }
    cmd_req_finish(r);
}

CMD_DECL(cmd_discard)
{
    (void)argc;
    (void)argv;
    (void)argvlen;
    if (!r->client->in_multi) {
        rep_error(r, "ERR DISCARD without MULTI");
    } else {
        cmd_client_discard(r->client);
        cmd_client_unwatch(r->client);
        rep_ok(r);
    }
    cmd_req_finish(r);
}

CMD_DECL(cmd_unwatch)
{
    (void)argc;
    (void)argv;
    (void)argvlen;
    cmd_client_unwatch(r->client);
    rep_ok(r);
    cmd_req_finish(r);
}

/* ---------------------------------------------------------------------- */
/* Server and cluster commands                                             */

CMD_DECL(cmd_info)
{
    struct cmd_env *env = r->client->env;
    struct bnode_status st;
    bool all = argc < 2 || cmd_arg_is(argv[1], argvlen[1], "all") ||
               cmd_arg_is(argv[1], argvlen[1], "everything") ||
               cmd_arg_is(argv[1], argvlen[1], "default");
    char buf[4096];
    size_t n = 0;
    bnode_status(env->node, &st);
    if (all || cmd_arg_is(argv[1], argvlen[1], "server")) {
        n = cmd_appendf(
            buf, sizeof(buf), n,
            "# Server\r\nballot_version:%s\r\nredis_version:7.0.0\r\n"
            "redis_mode:standalone\r\nos:Linux\r\narch_bits:64\r\n"
            "process_id:%d\r\ntcp_port:%d\r\n"
            "uptime_in_seconds:%" PRIu64 "\r\nnode_id:%" PRIu64 "\r\n\r\n",
            BALLOT_VERSION_STRING, (int)uv_os_getpid(), env->port,
            (cmd_now_ms() - env->start_ms) / 1000u, (uint64_t)st.id);
    }
    if (all || cmd_arg_is(argv[1], argvlen[1], "clients")) {
        n = cmd_appendf(buf, sizeof(buf), n,
                        "# Clients\r\nconnected_clients:%u\r\nmaxclients:%u\r\n"
                        "blocked_clients:0\r\n\r\n",
                        env->n_clients, env->opts.max_clients);
    }
    if (all || cmd_arg_is(argv[1], argvlen[1], "memory")) {
        /* used_memory is the process's resident memory (Redis counts its
         * allocator's bytes; the closest ballot has), and the store's data
         * file is reported apart. */
        size_t rss = 0;
        (void)uv_resident_set_memory(&rss);
        n = cmd_appendf(buf, sizeof(buf), n,
                        "# Memory\r\nused_memory:%zu\r\nused_memory_rss:%zu"
                        "\r\nstore_db_bytes:%" PRIu64
                        "\r\nmaxmemory:0\r\nmaxmemory_policy:noeviction\r\n"
                        "\r\n",
                        rss, rss, st.db_bytes);
    }
    if (all || cmd_arg_is(argv[1], argvlen[1], "persistence")) {
        n = cmd_appendf(buf, sizeof(buf), n,
                        "# Persistence\r\nloading:0\r\naof_enabled:1\r\n"
                        "rdb_bgsave_in_progress:0\r\n\r\n");
    }
    /* The raft section comes before replication: its "role" (leader,
     * follower, ...) must not be the last "role" a parser of the whole
     * text keeps, which clients expect to be master or slave. */
    if (all || cmd_arg_is(argv[1], argvlen[1], "raft")) {
        n = cmd_appendf(
            buf, sizeof(buf), n,
            "# Raft\r\nrole:%s\r\nterm:%" PRIu64 "\r\nleader:%" PRIu64
            "\r\nleader_addr:%s\r\ncommit:%" PRIu64 "\r\napplied:%" PRIu64
            "\r\nlast_index:%" PRIu64 "\r\nfirst_index:%" PRIu64
            "\r\nsnapshot_index:%" PRIu64 "\r\nrevision:%" PRIu64
            "\r\nproposals_pending:%" PRIu64 "\r\nreads_pending:%" PRIu64
            "\r\nloop_stall_max_ms:%" PRIu64 "\r\nloop_stalls:%" PRIu64
            "\r\nmembers:",
            role_of(st.state), (uint64_t)st.term, (uint64_t)st.leader,
            bnode_leader_addr(env->node) ? bnode_leader_addr(env->node) : "",
            (uint64_t)st.commit, (uint64_t)st.applied, (uint64_t)st.last_index,
            (uint64_t)st.first_index, (uint64_t)st.snapshot_index, st.revision,
            st.proposals_pending, st.reads_pending, st.loop_stall_max_ms,
            st.loop_stalls);
        for (uint32_t i = 0; i < st.conf.n && i < RAFT_CONF_MAX; i++) {
            n = cmd_appendf(
                buf, sizeof(buf), n, "%s%" PRIu64 ":%s", i ? "," : "",
                (uint64_t)st.conf.members[i].id,
                st.conf.members[i].role == RAFT_VOTER ? "voter" : "learner");
        }
        n = cmd_appendf(buf, sizeof(buf), n, "\r\n\r\n");
    }
    if (all || cmd_arg_is(argv[1], argvlen[1], "replication")) {
        /* Redis's terms for a Raft node: the leader is the master, the
         * other members its replicas; offsets are log indexes. */
        if (st.fallback) {
            n = info_fallback(env->node, &st, buf, sizeof(buf), n);
        } else if (st.state == RAFT_LEADER) {
            n = cmd_appendf(buf, sizeof(buf), n,
                            "# Replication\r\nrole:master\r\n"
                            "connected_slaves:%u\r\n"
                            "master_repl_offset:%" PRIu64 "\r\n\r\n",
                            st.conf.n > 0 ? st.conf.n - 1 : 0,
                            (uint64_t)st.last_index);
        } else {
            const char *la = bnode_leader_addr(env->node);
            const char *colon = la != NULL ? strrchr(la, ':') : NULL;
            n = cmd_appendf(
                buf, sizeof(buf), n,
                "# Replication\r\nrole:slave\r\nmaster_host:%.*s\r\n"
                "master_port:%s\r\nmaster_link_status:%s\r\n"
                "slave_repl_offset:%" PRIu64
                "\r\nslave_read_only:1\r\n"
                "connected_slaves:0\r\n\r\n",
                colon != NULL ? (int)(colon - la) : 0, la != NULL ? la : "",
                colon != NULL ? colon + 1 : "0", la != NULL ? "up" : "down",
                (uint64_t)st.applied);
        }
    }
    if (all || cmd_arg_is(argv[1], argvlen[1], "stats")) {
        n = cmd_appendf(buf, sizeof(buf), n,
                        "# Stats\r\ntotal_connections_received:%" PRIu64
                        "\r\nrejected_connections:%" PRIu64
                        "\r\ntotal_commands_processed:%" PRIu64 "\r\n\r\n",
                        env->total_connections, env->rejected_connections,
                        env->total_commands);
    }
    if (all || cmd_arg_is(argv[1], argvlen[1], "keyspace")) {
        n = cmd_appendf(buf, sizeof(buf), n, "# Keyspace\r\n");
        if (st.keys > 0) {
            n = cmd_appendf(buf, sizeof(buf), n,
                            "db0:keys=%" PRIu64 ",expires=0,avg_ttl=0\r\n",
                            st.keys);
        }
        n = cmd_appendf(buf, sizeof(buf), n, "\r\n");
    }
    if (all || cmd_arg_is(argv[1], argvlen[1], "peers")) {
        n = cmd_appendf(buf, sizeof(buf), n,
                        "# Peers\r\npeer_rejected_hellos:%" PRIu64
                        "\r\npeer_auth_failures:%" PRIu64
                        "\r\npeer_bad_senders:%" PRIu64
                        "\r\npeer_bad_frames:%" PRIu64
                        "\r\npeer_handshake_timeouts:%" PRIu64
                        "\r\npeer_cert_mismatches:%" PRIu64
                        "\r\nraft_msgs_rejected:%" PRIu64
                        "\r\nraft_msgs_bad_term:%" PRIu64 "\r\n\r\n",
                        st.peer_rejected_hellos, st.peer_auth_failures,
                        st.peer_bad_senders, st.peer_bad_frames,
                        st.peer_handshake_timeouts, st.peer_cert_mismatches,
                        st.raft_msgs_rejected, st.raft_msgs_bad_term);
    }
    rep_verbatim(r, buf, n);
    cmd_req_finish(r);
}

/* BSTATUS's primary-replica fields (docs/modes.md): the mode, the epoch
 * (the Raft term), the primary, appends refused for a divergence below
 * the commit index, what `BFALLBACK ENTER` saw here, how long a replica
 * has not heard from its primary, and on the primary each replica's
 * [id, match index, entries behind, ms behind]. */
static void bstatus_fallback(struct cmd_req *r, const struct bnode_status *st)
{
    rep_cstr(r, "mode");
    rep_cstr(r, st->fallback ? "primary-replica" : "raft");
    rep_field_int(r, "epoch", st->fallback ? (int64_t)st->epoch : 0);
    rep_field_int(r, "primary", (int64_t)st->primary);
    rep_field_int(r, "diverged", (int64_t)st->diverged);
    rep_field_int(r, "entered_last_index", (int64_t)st->entered_last_index);
    rep_field_int(r, "entered_commit", (int64_t)st->entered_commit);
    rep_field_int(r, "primary_silent_ms", (int64_t)st->primary_silent_ms);
    rep_field_int(r, "cut_first", (int64_t)st->cut_first);
    rep_field_int(r, "cut_last", (int64_t)st->cut_last);
    rep_cstr(r, "cut_file");
    if (st->cut_file[0] != '\0') {
        rep_cstr(r, st->cut_file);
    } else {
        rep_null(r);
    }
    rep_cstr(r, "ack");
    rep_cstr(r, st->ack_semi_sync ? "semi-sync" : "async");
    rep_field_int(r, "ack_replicas", (int64_t)st->ack_replicas);
    rep_field_int(r, "ack_timeout_ms", (int64_t)st->ack_timeout_ms);
    rep_cstr(r, "ack_on_timeout");
    rep_cstr(r, st->ack_degrade ? "async" : "fail");
    rep_field_int(r, "ack_degraded", st->ack_degraded ? 1 : 0);
    rep_cstr(r, "replicas");
    bool primary = st->fallback && st->state == RAFT_LEADER;
    uint32_t nm = st->conf.n < RAFT_CONF_MAX ? st->conf.n : RAFT_CONF_MAX;
    size_t n = 0;
    for (uint32_t i = 0; primary && i < nm; i++) {
        n += st->conf.members[i].role == RAFT_LEARNER;
    }
    rep_array(r, n);
    for (uint32_t i = 0; primary && i < nm; i++) {
        if (st->conf.members[i].role != RAFT_LEARNER) {
            continue;
        }
        rep_array(r, 4);
        rep_int(r, (int64_t)st->conf.members[i].id);
        rep_int(r, (int64_t)st->match[i]);
        rep_int(r, (int64_t)(st->last_index - st->match[i]));
        rep_int(r, (int64_t)st->lag_ms[i]);
    }
}

CMD_DECL(cmd_bstatus)
{
    struct bnode_status st;
    struct cmd_env *env = r->client->env;
    const char *leader;
    (void)argc;
    (void)argv;
    (void)argvlen;
    bnode_status(env->node, &st);
    leader = bnode_leader_addr(env->node);
    rep_map(r, 46);
    rep_field_int(r, "id", (int64_t)st.id);
    rep_cstr(r, "role");
    rep_cstr(r, role_of(st.state));
    rep_field_int(r, "term", (int64_t)st.term);
    rep_field_int(r, "leader", (int64_t)st.leader);
    rep_cstr(r, "leader_addr");
    if (leader != NULL) {
        rep_cstr(r, leader);
    } else {
        rep_null(r);
    }
    rep_field_int(r, "commit", (int64_t)st.commit);
    rep_field_int(r, "applied", (int64_t)st.applied);
    rep_field_int(r, "last_index", (int64_t)st.last_index);
    rep_field_int(r, "first_index", (int64_t)st.first_index);
    rep_field_int(r, "snapshot_index", (int64_t)st.snapshot_index);
    rep_field_int(r, "revision", (int64_t)st.revision);
    rep_field_int(r, "db_bytes", (int64_t)st.db_bytes);
    rep_field_int(r, "db_free_bytes", (int64_t)st.db_free_bytes);
    rep_field_int(r, "map_bytes", (int64_t)st.map_bytes);
    rep_field_int(r, "map_grows", (int64_t)st.map_grows);
    rep_field_int(r, "quota_bytes", (int64_t)st.quota_bytes);
    rep_field_int(r, "over_quota", st.over_quota ? 1 : 0);
    rep_field_int(r, "compact_revision", (int64_t)st.compact_revision);
    rep_field_int(r, "history_events", (int64_t)st.history_events);
    rep_field_int(r, "compaction_pending", st.compaction_pending ? 1 : 0);
    rep_field_int(r, "compactions", (int64_t)st.compactions);
    rep_field_int(r, "proposals_pending", (int64_t)st.proposals_pending);
    /* Integrity (docs/operations.md, "Damaged data"): replicas whose
     * digest at the same digest_index differs have diverged. */
    char digest[24];
    snprintf(digest, sizeof(digest), "%016" PRIx64, st.digest);
    rep_field_int(r, "digest_index", (int64_t)st.digest_index);
    rep_cstr(r, "digest");
    rep_cstr(r, digest);
    rep_field_int(r, "digest_checks", (int64_t)st.digest_checks);
    rep_field_int(r, "digest_mismatches", (int64_t)st.digest_mismatches);
    rep_field_int(r, "scrub_passes", (int64_t)st.scrub_passes);
    rep_field_int(r, "scrub_bytes", (int64_t)st.scrub_bytes);
    rep_field_int(r, "store_damaged", st.store_damaged ? 1 : 0);
    rep_cstr(r, "members");
    uint32_t nm = st.conf.n < RAFT_CONF_MAX ? st.conf.n : RAFT_CONF_MAX;
    rep_array(r, nm);
    for (uint32_t i = 0; i < nm; i++) {
        rep_array(r, 2);
        rep_int(r, (int64_t)st.conf.members[i].id);
        rep_cstr(r,
                 st.conf.members[i].role == RAFT_VOTER ? "voter" : "learner");
    }
    bstatus_fallback(r, &st);
    cmd_req_finish(r);
}

CMD_DECL(cmd_btransfer)
{
    int64_t id;
    (void)argc;
    if (cmd_parse_i64(argv[1], argvlen[1], &id) != 0 || id <= 0) {
        rep_error(r, "ERR value is not an integer or out of range");
    } else {
        int rc = bnode_transfer(r->client->env->node, (raft_id)id);
        if (rc == 0) {
            rep_ok(r);
        } else if (rc == BNODE_ENOTLEADER) {
            rep_node_error(r, rc, false);
        } else {
            rep_errorf(r, "ERR transfer refused: %s", bnode_strerror(rc));
        }
    }
    cmd_req_finish(r);
}

/* A membership change in flight. */
struct member_req
{
    struct cmd_req *r;
    raft_id id;
};

/* Replies for a refused or failed membership change. */
static void member_error(struct cmd_req *r, int rc, raft_id id)
{
    if (rc == BNODE_ECONFPENDING) {
        rep_error(r,
                  "BUSY another membership change is in progress, not "
                  "applied: retry");
    } else if (rc == BNODE_EINVAL) {
        rep_errorf(r,
                   "ERR membership change refused: node %llu is unknown "
                   "(give its address), already in that role, the last "
                   "voter, or a member given another address",
                   (unsigned long long)id);
    } else {
        rep_node_error(r, rc, true);
    }
}

static void member_done(void *arg,
                        int status,
                        const struct kv_entry_result *res)
{
    struct member_req m = *(struct member_req *)arg;
    free(arg);
    (void)res;
    if (status != 0) {
        member_error(m.r, status, m.id);
    } else {
        rep_ok(m.r);
    }
    cmd_req_finish(m.r);
}

/* BMEMBER LIST, BMEMBER ADDLEARNER|ADDVOTER id [host:port[:peerport]], or
 * BMEMBER PROMOTE|REMOVE id: one membership change at a time, answered
 * once it is committed. */
CMD_DECL(cmd_bmember)
{
    static const struct
    {
        const char *name;
        enum raft_conf_change change;
    } subs[] = {
        {"addlearner", RAFT_ADD_LEARNER},
        {"addvoter", RAFT_ADD_VOTER},
        {"promote", RAFT_PROMOTE},
        {"remove", RAFT_REMOVE},
    };
    struct bnode *node = r->client->env->node;
    if (cmd_arg_is(argv[1], argvlen[1], "list") && argc == 2) {
        struct bnode_status st;
        bnode_status(node, &st);
        uint32_t n = st.conf.n < RAFT_CONF_MAX ? st.conf.n : RAFT_CONF_MAX;
        rep_array(r, n);
        for (uint32_t i = 0; i < n; i++) {
            const struct raft_member *m = &st.conf.members[i];
            const struct bnode_member *a = bnode_member_addr(node, m->id);
            char addr[BNODE_HOST_MAX + 16] = "?";
            if (a != NULL) {
                snprintf(addr, sizeof(addr), "%s:%d", a->host, a->client_port);
            }
            rep_array(r, 3);
            rep_int(r, (int64_t)m->id);
            rep_cstr(r, m->role == RAFT_VOTER ? "voter" : "learner");
            rep_cstr(r, addr);
        }
        cmd_req_finish(r);
        return;
    }
    for (size_t i = 0; i < sizeof(subs) / sizeof(subs[0]); i++) {
        if (!cmd_arg_is(argv[1], argvlen[1], subs[i].name)) {
            continue;
        }
        bool adds = subs[i].change == RAFT_ADD_LEARNER ||
                    subs[i].change == RAFT_ADD_VOTER;
        int64_t id;
        struct bnode_member addr;
        memset(&addr, 0, sizeof(addr));
        if (argc != 3 && !(adds && argc == 4)) {
            rep_arity_error(r, "bmember");
        } else if (cmd_parse_i64(argv[2], argvlen[2], &id) != 0 || id <= 0) {
            rep_error(r, "ERR value is not an integer or out of range");
        } else if (argc == 4 &&
                   bnode_member_parse_addr(argv[3], argvlen[3], &addr) != 0) {
            rep_error(r,
                      "ERR BMEMBER: the address must be "
                      "host:client-port[:peer-port], the host a numeric IPv4 "
                      "address (ballot looks up no host names)");
        } else {
            struct member_req *m = malloc(sizeof(*m));
            int rc = BNODE_ENOMEM;
            addr.id = (raft_id)id;
            if (m != NULL) {
                *m = (struct member_req){r, (raft_id)id};
                rc = argc == 4 ? bnode_member_add(node, subs[i].change, &addr,
                                                  member_done, m)
                               : bnode_conf_change(node, subs[i].change,
                                                   (raft_id)id, member_done, m);
            }
            if (rc == 0) {
                return; /* answered by member_done() */
            }
            free(m);
            member_error(r, rc, (raft_id)id);
        }
        cmd_req_finish(r);
        return;
    }
    rep_errorf(r,
               "ERR unknown BMEMBER subcommand; try LIST, ADDLEARNER, "
               "ADDVOTER, PROMOTE or REMOVE");
    cmd_req_finish(r);
}

/* Writes one COMMAND INFO entry: name, arity, flags, first key, last key,
 * step. Enough for clients that read key positions. */
static void command_entry(struct cmd_req *r, const struct cmd_def *d)
{
    const char *flags[4];
    size_t nf = 0;
    if (d->flags & CMD_WRITE) {
        flags[nf++] = "write";
    }
    if (d->flags & CMD_READONLY) {
        flags[nf++] = "readonly";
    }
    if (d->flags & CMD_ADMIN) {
        flags[nf++] = "admin";
    }
    if (d->flags & CMD_FAST) {
        flags[nf++] = "fast";
    }
    rep_array(r, 6);
    rep_cstr(r, d->name);
    rep_int(r, d->arity);
    rep_set(r, nf);
    for (size_t i = 0; i < nf; i++) {
        rep_simple(r, flags[i]);
    }
    rep_int(r, d->first_key);
    rep_int(r, d->last_key);
    rep_int(r, d->key_step);
}

CMD_DECL(cmd_command)
{
    if (argc == 1) {
        rep_array(r, cmd_table_len);
        for (size_t i = 0; i < cmd_table_len; i++) {
            command_entry(r, &cmd_table[i]);
        }
    } else if (cmd_arg_is(argv[1], argvlen[1], "count") && argc == 2) {
        rep_int(r, (int64_t)cmd_table_len);
    } else if (cmd_arg_is(argv[1], argvlen[1], "docs")) {
        /* redis-cli asks for the docs at startup only to show hints; an
         * empty answer is valid and keeps ballot's text its own. */
        rep_map(r, 0);
    } else if (cmd_arg_is(argv[1], argvlen[1], "list") && argc == 2) {
        rep_array(r, cmd_table_len);
        for (size_t i = 0; i < cmd_table_len; i++) {
            rep_cstr(r, cmd_table[i].name);
        }
    } else if (cmd_arg_is(argv[1], argvlen[1], "info")) {
        rep_array(r, argc - 2);
        for (size_t i = 2; i < argc; i++) {
            const struct cmd_def *d = cmd_lookup(argv[i], argvlen[i]);
            if (d != NULL) {
                command_entry(r, d);
            } else {
                rep_null_array(r);
            }
        }
    } else {
        rep_errorf(r, "ERR unknown subcommand '%.*s'. Try COMMAND HELP.",
                   (int)(argvlen[1] > 128 ? 128 : argvlen[1]), argv[1]);
    }
    cmd_req_finish(r);
}
