/*
 * commands_server.c - the server commands Redis tools send (FLUSHDB,
 * FLUSHALL, TIME, CONFIG, ROLE), answered from ballot's own state and
 * settings so that redis-benchmark, redis-cli's --stat/--bigkeys and
 * client libraries find what they look for, and nothing in the answers
 * pretends to be what ballot is not (docs/protocol.md).
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bnode.h"
#include "commands.h"
#include "kv.h"

/* ---------------------------------------------------------------------- */
/* FLUSHDB, FLUSHALL                                                       */

static void flush_done(void *arg, int status, const struct kv_entry_result *res)
{
    struct cmd_req *r = arg;
    if (cmd_write_ok(r, status, res)) {
        rep_ok(r);
    }
    cmd_req_finish(r);
}

/* FLUSHDB and FLUSHALL [ASYNC|SYNC]: every key deleted by ONE log entry (a
 * delete-range over the whole key space), so every replica removes the
 * same keys at the same point and a watch sees one revision. ballot has one
 * database, so both do the same. */
CMD_DECL(cmd_flush)
{
    static const uint8_t all_end[1] = {0};
    if (argc > 2 || (argc == 2 && !cmd_arg_is(argv[1], argvlen[1], "async") &&
                     !cmd_arg_is(argv[1], argvlen[1], "sync"))) {
        rep_error(r, "ERR syntax error");
        cmd_req_finish(r);
        return;
    }
    struct kv_cmd cmd;
    memset(&cmd, 0, sizeof(cmd));
    cmd.type = KV_CMD_DELETE_RANGE;
    cmd.op.type = KV_OP_DELETE_RANGE;
    cmd.op.key = NULL;
    cmd.op.key_len = 0;
    cmd.op.end = all_end;
    cmd.op.end_len = 1;
    cmd_propose(r, &cmd, flush_done, r);
}

/* ---------------------------------------------------------------------- */
/* TIME                                                                    */

CMD_DECL(cmd_time)
{
    struct timespec ts;
    char sec[32], usec[16];
    (void)argc;
    (void)argv;
    (void)argvlen;
    clock_gettime(CLOCK_REALTIME, &ts);
    int n1 = snprintf(sec, sizeof(sec), "%lld", (long long)ts.tv_sec);
    int n2 = snprintf(usec, sizeof(usec), "%ld", ts.tv_nsec / 1000);
    rep_array(r, 2);
    rep_bulk(r, sec, (size_t)n1);
    rep_bulk(r, usec, (size_t)n2);
    cmd_req_finish(r);
}

/* ---------------------------------------------------------------------- */
/* CONFIG                                                                  */

/* One parameter CONFIG GET answers: its Redis name and ballot's value. */
struct config_param
{
    const char *name;
    char value[64];
};

/* The parameters tools ask for, with the values that describe ballot. A
 * parameter with no meaning here is absent, as Redis omits unknown
 * ones. */
static size_t config_params(const struct cmd_env *env,
                            struct config_param *p,
                            size_t cap)
{
    size_t n = 0;
#define PARAM(nm, ...)                                             \
    do {                                                           \
        if (n < cap) {                                             \
            p[n].name = (nm);                                      \
            snprintf(p[n].value, sizeof(p[n].value), __VA_ARGS__); \
            n++;                                                   \
        }                                                          \
    } while (0)
    PARAM("port", "%d", env->port);
    PARAM("maxclients", "%u", env->opts.max_clients);
    PARAM("timeout", "%llu",
          (unsigned long long)(env->opts.idle_timeout_ms / 1000u));
    PARAM("databases", "1");
    /* Every write is in the fsynced Raft log before it is acknowledged:
     * Redis's closest terms are an always-fsynced append-only file and no
     * RDB snapshots. */
    PARAM("appendonly", "yes");
    PARAM("appendfsync", "always");
    PARAM("save", "%s", "");
    PARAM("maxmemory", "0");
    PARAM("maxmemory-policy", "noeviction");
    PARAM("proto-max-bulk-len", "%u", KV_VALUE_BYTES_MAX);
    PARAM("client-output-buffer-limit", "normal %zu %zu 0",
          env->opts.output_bytes_max, env->opts.output_bytes_max);
    PARAM("cluster-enabled", "no");
    PARAM("replica-read-only", "yes");
    PARAM("io-threads", "1");
#undef PARAM
    return n;
}

CMD_DECL(cmd_config)
{
    const char *sub = argv[1];
    size_t sublen = argvlen[1];
    if (cmd_arg_is(sub, sublen, "get")) {
        if (argc < 3) {
            rep_arity_error(r, "config|get");
            goto done;
        }
        struct config_param params[32];
        size_t np = config_params(r->client->env, params, 32);
        bool hit[32] = {false};
        size_t nhit = 0;
        for (size_t a = 2; a < argc; a++) {
            for (size_t i = 0; i < np; i++) {
                if (!hit[i] &&
                    cmd_glob_match(argv[a], argvlen[a], params[i].name,
                                   strlen(params[i].name), true)) {
                    hit[i] = true;
                    nhit++;
                }
            }
        }
        rep_map(r, nhit);
        for (size_t i = 0; i < np; i++) {
            if (hit[i]) {
                rep_cstr(r, params[i].name);
                rep_cstr(r, params[i].value);
            }
        }
    } else if (cmd_arg_is(sub, sublen, "set")) {
        if (argc < 4 || argc % 2 != 0) {
            rep_arity_error(r, "config|set");
            goto done;
        }
        rep_errorf(r,
                   "ERR CONFIG SET '%.*s' is not supported by ballot: its "
                   "settings are fixed when ballotd starts (flags and "
                   "config file, docs/operations.md)",
                   (int)(argvlen[2] > 64 ? 64 : argvlen[2]), argv[2]);
    } else if (cmd_arg_is(sub, sublen, "resetstat") ||
               cmd_arg_is(sub, sublen, "rewrite")) {
        rep_errorf(r, "ERR CONFIG %.*s is not supported by ballot", (int)sublen,
                   sub);
    } else {
        rep_errorf(r, "ERR unknown subcommand '%.*s'. Try CONFIG HELP.",
                   (int)(sublen > 64 ? 64 : sublen), sub);
    }
done:
    cmd_req_finish(r);
}

/* ---------------------------------------------------------------------- */
/* ROLE                                                                    */

/* Splits "host:port" at its last colon into @host and @port. */
static void split_addr(const char *addr,
                       char *host,
                       size_t host_cap,
                       char *port,
                       size_t port_cap)
{
    const char *colon = strrchr(addr, ':');
    size_t hl = colon != NULL ? (size_t)(colon - addr) : strlen(addr);
    snprintf(host, host_cap, "%.*s", (int)hl, addr);
    snprintf(port, port_cap, "%s", colon != NULL ? colon + 1 : "");
}

/* ROLE as Redis answers it, so that tools can find the leader: the leader
 * is a "master" whose replication offset is its last log index, with each
 * other member's client address and the index its log matches up to; any
 * other node is a "slave" of the leader it knows (state "connected", or
 * "connect" while there is none), with its applied index as offset. */
CMD_DECL(cmd_role)
{
    struct cmd_env *env = r->client->env;
    struct bnode_status st;
    (void)argc;
    (void)argv;
    (void)argvlen;
    bnode_status(env->node, &st);
    char host[BNODE_HOST_MAX + 1], port[16], off[32];
    if (st.state == RAFT_LEADER) {
        size_t others = 0;
        for (uint32_t i = 0; i < st.conf.n && i < RAFT_CONF_MAX; i++) {
            others += st.conf.members[i].id != st.id;
        }
        rep_array(r, 3);
        rep_bulk(r, "master", 6);
        rep_int(r, (int64_t)st.last_index);
        rep_array(r, others);
        for (uint32_t i = 0; i < st.conf.n && i < RAFT_CONF_MAX; i++) {
            raft_id id = st.conf.members[i].id;
            if (id == st.id) {
                continue;
            }
            const struct bnode_member *m = bnode_member_addr(env->node, id);
            snprintf(host, sizeof(host), "%s", m != NULL ? m->host : "?");
            snprintf(port, sizeof(port), "%d", m != NULL ? m->client_port : 0);
            snprintf(off, sizeof(off), "%" PRIu64, (uint64_t)st.match[i]);
            rep_array(r, 3);
            rep_cstr(r, host);
            rep_cstr(r, port);
            rep_cstr(r, off);
        }
    } else {
        const char *leader = bnode_leader_addr(env->node);
        split_addr(leader != NULL ? leader : "?:0", host, sizeof(host), port,
                   sizeof(port));
        rep_array(r, 5);
        rep_bulk(r, "slave", 5);
        rep_cstr(r, host);
        rep_int(r, atoi(port));
        rep_cstr(r, leader != NULL ? "connected" : "connect");
        rep_int(r, (int64_t)st.applied);
    }
    cmd_req_finish(r);
}

/* ---------------------------------------------------------------------- */
/* CLIENT LIST, INFO, KILL                                                 */

/* Appends @c's line in Redis's CLIENT LIST format (the fields that have a
 * meaning in ballot; flags: N, x in MULTI, r READONLY). */
static size_t client_line(const struct cmd_client *c,
                          uint64_t now,
                          char *buf,
                          size_t cap,
                          size_t n)
{
    char flags[4];
    size_t f = 0;
    if (c->in_multi) {
        flags[f++] = 'x';
    }
    if (c->readonly) {
        flags[f++] = 'r';
    }
    if (f == 0) {
        flags[f++] = 'N';
    }
    flags[f] = '\0';
    return cmd_appendf(
        buf, cap, n,
        "id=%" PRIu64 " addr=%s laddr=%s fd=%d name=%s age=%" PRIu64
        " idle=%" PRIu64
        " flags=%s db=0 sub=0 psub=0 ssub=0 multi=%d "
        "watch=%zu cmd=%s user=default resp=%d\n",
        c->id, c->addr, c->laddr, c->fd, c->name != NULL ? c->name : "",
        (now - c->created_ms) / 1000u, (now - c->last_cmd_ms) / 1000u, flags,
        c->in_multi ? (int)c->n_queued : -1, cmd_client_watched(c),
        c->last_cmd != NULL ? c->last_cmd : "NULL", c->proto);
}

/* CLIENT LIST [TYPE normal|master|replica|pubsub] [ID id...], CLIENT
 * INFO. */
CMD_DECL(cmd_client_list)
{
    struct cmd_client *self = r->client;
    uint64_t now = cmd_now_ms();
    bool info = cmd_arg_is(argv[1], argvlen[1], "info");
    bool any_type = true;
    size_t ids_from = 0;
    if (info && argc != 2) {
        rep_arity_error(r, "client|info");
        goto done;
    }
    for (size_t i = 2; !info && i < argc; i++) {
        if (cmd_arg_is(argv[i], argvlen[i], "type") && i + 1 < argc) {
            /* Every connection is a normal client here. */
            any_type = cmd_arg_is(argv[i + 1], argvlen[i + 1], "normal");
            if (!any_type &&
                !cmd_arg_is(argv[i + 1], argvlen[i + 1], "master") &&
                !cmd_arg_is(argv[i + 1], argvlen[i + 1], "replica") &&
                !cmd_arg_is(argv[i + 1], argvlen[i + 1], "pubsub")) {
                rep_errorf(r, "ERR Unknown client type '%.*s'",
                           (int)(argvlen[i + 1] > 64 ? 64 : argvlen[i + 1]),
                           argv[i + 1]);
                goto done;
            }
            i++;
        } else if (cmd_arg_is(argv[i], argvlen[i], "id") && i + 1 < argc) {
            ids_from = i + 1;
            for (size_t j = ids_from; j < argc; j++) {
                int64_t id;
                if (cmd_parse_i64(argv[j], argvlen[j], &id) != 0 || id <= 0) {
                    rep_error(r, "ERR Invalid client ID");
                    goto done;
                }
            }
            break;
        } else {
            rep_error(r, "ERR syntax error");
            goto done;
        }
    }
    size_t cap = 256;
    for (struct cmd_client *c = self->env->clients; c != NULL; c = c->next) {
        cap += 384 + (c->name != NULL ? strlen(c->name) : 0);
    }
    char *buf = malloc(cap);
    if (buf == NULL) {
        rep_error(r, "ERR out of memory");
        goto done;
    }
    size_t n = 0;
    buf[0] = '\0';
    if (info) {
        n = client_line(self, now, buf, cap, n);
    } else if (any_type) {
        for (struct cmd_client *c = self->env->clients; c != NULL;
             c = c->next) {
            bool pick = ids_from == 0;
            for (size_t j = ids_from; ids_from > 0 && j < argc; j++) {
                int64_t id = 0;
                (void)cmd_parse_i64(argv[j], argvlen[j], &id);
                pick |= (uint64_t)id == c->id;
            }
            if (pick && !c->gone) {
                n = client_line(c, now, buf, cap, n);
            }
        }
    }
    rep_verbatim(r, buf, n);
    free(buf);
done:
    cmd_req_finish(r);
}

/* CLIENT KILL ip:port (old form: +OK or an error) or CLIENT KILL with
 * filters ID, ADDR, LADDR, TYPE, SKIPME, MAXAGE (new form: the number of
 * connections closed). A killed connection answers what it already took,
 * then closes; killing one's own connection does so after this reply. */
CMD_DECL(cmd_client_kill)
{
    struct cmd_client *self = r->client;
    uint64_t id = 0;
    const char *addr = NULL, *laddr = NULL;
    size_t addr_len = 0, laddr_len = 0;
    bool skipme = true, old_form = argc == 3, none = false;
    int64_t maxage = -1;
    if (old_form) {
        addr = argv[2];
        addr_len = argvlen[2];
        skipme = false;
    } else if (argc < 3 || argc % 2 != 0) {
        rep_error(r, "ERR syntax error");
        goto done;
    }
    for (size_t i = 2; !old_form && i + 1 < argc; i += 2) {
        const char *k = argv[i], *v = argv[i + 1];
        size_t kl = argvlen[i], vl = argvlen[i + 1];
        int64_t num;
        if (cmd_arg_is(k, kl, "id")) {
            if (cmd_parse_i64(v, vl, &num) != 0 || num <= 0) {
                rep_error(r, "ERR client-id should be greater than 0");
                goto done;
            }
            id = (uint64_t)num;
        } else if (cmd_arg_is(k, kl, "addr")) {
            addr = v;
            addr_len = vl;
        } else if (cmd_arg_is(k, kl, "laddr")) {
            laddr = v;
            laddr_len = vl;
        } else if (cmd_arg_is(k, kl, "type")) {
            none = !cmd_arg_is(v, vl, "normal");
        } else if (cmd_arg_is(k, kl, "skipme")) {
            if (cmd_arg_is(v, vl, "yes")) {
                skipme = true;
            } else if (cmd_arg_is(v, vl, "no")) {
                skipme = false;
            } else {
                rep_error(r, "ERR syntax error");
                goto done;
            }
        } else if (cmd_arg_is(k, kl, "maxage")) {
            if (cmd_parse_i64(v, vl, &maxage) != 0 || maxage < 0) {
                rep_error(r, "ERR syntax error");
                goto done;
            }
        } else {
            rep_error(r, "ERR syntax error");
            goto done;
        }
    }
    uint64_t now = cmd_now_ms();
    int64_t killed = 0;
    for (struct cmd_client *c = self->env->clients; c != NULL && !none;) {
        struct cmd_client *next = c->next; /* a kill may unlink @c */
        bool match =
            (id == 0 || c->id == id) &&
            (addr == NULL || (strlen(c->addr) == addr_len &&
                              memcmp(c->addr, addr, addr_len) == 0)) &&
            (laddr == NULL || (strlen(c->laddr) == laddr_len &&
                               memcmp(c->laddr, laddr, laddr_len) == 0)) &&
            (maxage < 0 || (now - c->created_ms) / 1000u >= (uint64_t)maxage) &&
            !(skipme && c == self);
        if (match && !c->gone) {
            killed++;
            if (c == self) {
                r->close_after = true;
            } else {
                self->env->client_kill(c);
            }
        }
        c = next;
    }
    if (old_form) {
        if (killed == 0) {
            rep_error(r, "ERR No such client");
        } else {
            rep_ok(r);
        }
    } else {
        rep_int(r, killed);
    }
done:
    cmd_req_finish(r);
}
