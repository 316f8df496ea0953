/*
 * commands.h - the command table of the client port and the state each
 * connection carries between commands. Internal to net/: server.c feeds it
 * parsed requests, the commands_*.c files implement the commands.
 *
 * A command is a row of data (name, arity, flags, ordering class, handler).
 * A handler either answers at once or starts node work (a read barrier, a
 * proposal) and answers from its callback; either way it ends by calling
 * cmd_req_finish() exactly once. docs/protocol.md lists every command.
 */
#ifndef BALLOT_NET_COMMANDS_H
#define BALLOT_NET_COMMANDS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "bnode.h"
#include "kv_acl.h"
#include "resp.h"
#include "server.h"

struct bnode;
struct cmd_req;
struct cmd_client;
struct cmd_stream;
struct kv_store;

/* How a request may overlap with earlier requests of the same connection
 * that are still running. Replies always leave in order; these classes
 * also keep the effects in program order (a GET pipelined after a SET sees
 * the SET; a SET pipelined after a GET is not seen by the GET). */
enum cmd_order {
    /* Answers without the node (PING, CLIENT, MULTI queueing). Waits only
     * for a running SERIAL request, whose result may change client
     * state. */
    CMD_ORDER_FREE = 0,
    /* A pure read: may overlap other reads, waits for running writes. */
    CMD_ORDER_READ = 1,
    /* A blind write (one proposal, no read first): proposals enter the log
     * in the order they are made, so blind writes may overlap each other;
     * they wait for running reads. */
    CMD_ORDER_WRITE = 2,
    /* Read-then-write, WATCH, EXEC: waits until nothing else runs, and
     * nothing starts until it ends. */
    CMD_ORDER_SERIAL = 3,
};

/* Command flags (struct cmd_def.flags). */
enum {
    CMD_WRITE = 1 << 0,    /* may change the store */
    CMD_READONLY = 1 << 1, /* reads the store */
    CMD_ADMIN = 1 << 2,    /* cluster or server administration */
    CMD_FAST = 1 << 3,     /* answered without the node */
    CMD_NOMULTI = 1 << 4,  /* refused between MULTI and EXEC */
    CMD_MULTI = 1 << 5,    /* runs (not queued) between MULTI and EXEC */
    CMD_VIEW = 1 << 6,     /* runs on a view (may be queued in MULTI) */
};

struct vrun;
struct cmd_export;
struct cmd_client;

/* A token bucket of admission control (acl_limits.c). */
struct acl_bucket
{
    double requests;
    double bytes;
    uint64_t last_us; /* 0: never used (full) */
};

/* The client port's shared state. Owned by the server. */
struct cmd_env
{
    uv_loop_t *loop;
    struct bnode *node;
    struct server_options opts;
    uint64_t next_client_id;
    unsigned n_clients;
    uint64_t total_connections;
    uint64_t rejected_connections;
    uint64_t evicted_connections;  /* idle, displaced at max_clients */
    uint64_t timedout_connections; /* idle or unfinished request */
    uint64_t expired_exports;      /* released unread (export_idle_ms) */
    /* Memory held for clients (server.c accounts it against
     * opts.memory_max); commands charge MULTI queues through these. */
    uint64_t mem_used;
    uint64_t mem_refused;
    bool (*mem_charge)(struct cmd_client *c, size_t bytes);
    void (*mem_release)(struct cmd_client *c, size_t bytes);
    uint64_t total_commands;
    /* Request latency by enum server_req_class (cmd_req_finish()). */
    struct histo req_us[SERVER_REQ_CLASSES];
    uint64_t start_ms;
    int port;
    bool stopping;
    struct cmd_cursors *cursors; /* SCAN cursors (commands_keys.c) */
    /* Read-modify-writes of this node holding their keys, and those
     * waiting (FIFO) for a key another one holds (commands_view.c). */
    struct vrun *view_running;
    struct vrun *view_waiting;
    bool view_waking;
    /* Snapshot exports held or being made, over all clients, and the
     * token of the next (commands_snapshot.c). */
    unsigned n_exports;
    uint64_t next_export_token;
    /* Password checks on worker threads (SERVER_AUTH_CHECKS_MAX). */
    unsigned auth_checks;
    /* Users cached from the store, and the default user's bootstrap
     * (acl.c). */
    struct acl_state *acl;
    /* Per-user buckets of admission control, and what it refused. */
    struct acl_limits *limits;
    uint64_t rate_limited_conn;
    uint64_t rate_limited_user;
    int audit_fd; /* the audit file, or -1 (acl_audit.c) */
    /* Called by cmd_req_finish(); set by the server. */
    void (*req_done)(struct cmd_req *r);
    /* Writes @len bytes that are one whole out-of-band frame (a watch's
     * push) to @c's output, between replies; set by the server. Unless
     * @force, refused (returns 1) when the client's unsent output is over
     * half its limit. Returns 0, 1, or -1 if the connection is closing. */
    int (*push)(struct cmd_client *c, const char *data, size_t len, bool force);
    /* Every connection's state, newest first (CLIENT LIST, KILL). */
    struct cmd_client *clients;
    /* Closes @c's connection (CLIENT KILL); set by the server. */
    void (*client_kill)(struct cmd_client *c);
};

/* A request queued between MULTI and EXEC: one allocation holding the
 * argument vectors and the bytes. */
struct cmd_queued
{
    const struct cmd_def *def;
    size_t argc;
    const char **argv;
    size_t *argvlen;
};

/* Copies a request (@argc arguments) into @q as one allocation, freed with
 * free(q->argv); @def is recorded as is. Returns 0 or -1 (no memory). */
int cmd_queued_copy(struct cmd_queued *q,
                    const struct cmd_def *def,
                    size_t argc,
                    const char *const *argv,
                    const size_t *argvlen);

/* What one connection remembers between commands. Embedded in the
 * server's connection; cmd_client_init/_close bracket its life. */
struct cmd_client
{
    struct cmd_env *env;
    uint64_t id;
    int proto; /* 2 or 3 (HELLO) */
    /* AUTH (or HELLO ... AUTH) succeeded; meaningful only when the
     * default user needs a password. */
    bool authenticated;
    /* The user the connection runs as (acl.c): "default" until AUTH. */
    char user[KV_ACL_NAME_MAX + 1];
    struct acl_bucket bucket; /* this connection's admission control */
    bool readonly;            /* READONLY: stale, follower-local reads */
    char *name;               /* CLIENT SETNAME; NULL if none */
    bool in_multi;
    bool multi_dirty; /* a command was refused while queueing */
    struct cmd_queued *queued;
    size_t n_queued;
    size_t cap_queued;
    size_t queued_bytes; /* charged to the memory budget */
    /* The keys under WATCH, each with the mod_revision it had when
     * watched (0: missing), as a view whose keys are marked watched and
     * not loaded; EXEC takes it over as its own view. NULL: none. */
    struct cmd_view *watching;
    bool quit; /* QUIT: no request after it is read */
    /* Snapshot exports this connection made (BSNAPSHOT CREATE); released
     * by DONE or when the connection closes. */
    struct cmd_export *exports;
    /* The connection is closed (set by the server): a reply built now is
     * thrown away, so reads still running skip their work. */
    bool gone;
    /* The peer closed its side (set by the server): a request that waits
     * for something (BLOCK ACQUIRE) stops waiting, as Redis's blocking
     * commands do when their client leaves. */
    bool hung_up;
    /* Watches of this connection (BWATCH, commands_stream.c). */
    struct cmd_stream *streams;
    unsigned n_streams;
    uint64_t next_stream_id;
    /* CLIENT LIST: the peer and local addresses ("ip:port", set by the
     * server), the socket, when the connection was made and last sent a
     * command, and that command's name (a string of the table). */
    char addr[64];
    char laddr[64];
    int fd;
    uint64_t created_ms;
    uint64_t last_cmd_ms;
    const char *last_cmd;
    struct cmd_client *prev;
    struct cmd_client *next;
};

/* Most watches (BWATCH) open on one connection. */
#define CMD_STREAMS_MAX 64u

/* Ends the connection's watches (commands_stream.c). */
void cmd_client_streams_close(struct cmd_client *c);

/* One request. The server allocates it, the command fills @reply. */
struct cmd_req
{
    struct cmd_client *client;
    struct resp_buf reply;
    int reply_err;    /* first encoding failure, sticky */
    int order;        /* enum cmd_order, fixed at dispatch */
    bool done;        /* the reply is complete */
    bool close_after; /* close the connection once this reply is sent */
    const struct cmd_def *def; /* the command, set by cmd_dispatch() */
    uint8_t req_class;         /* enum server_req_class, set at dispatch */
    uint64_t started_ns;       /* uv_hrtime() at dispatch */
    struct cmd_req *next;      /* the server's per-connection queue */
    /* BFENCE: the fence every write of this request carries
     * (commands_lock.c); NULL: none. Freed by cmd_req_finish(). */
    struct cmd_fence *fence;
};

/* A command's handler. @argv/@argvlen are borrowed for the call only: a
 * handler that finishes later copies what it needs. */
typedef void (*cmd_fn)(struct cmd_req *r,
                       size_t argc,
                       const char *const *argv,
                       const size_t *argvlen);

/* A handler run on a view (see commands_view.c). */
struct cmd_view;
typedef void (*cmd_view_fn)(struct cmd_view *v,
                            struct cmd_req *r,
                            size_t argc,
                            const char *const *argv,
                            const size_t *argvlen);

/* Chooses the ordering class from the arguments, when the table's static
 * class is not precise enough (SET with options reads first). */
typedef int (*cmd_order_fn)(size_t argc,
                            const char *const *argv,
                            const size_t *argvlen);

/* One row of the command table. */
struct cmd_def
{
    const char *name;    /* lower case */
    int arity;           /* > 0: exactly; < 0: at least -arity (name counts) */
    unsigned flags;      /* CMD_* */
    int order;           /* enum cmd_order */
    cmd_fn fn;           /* plain handler, or NULL */
    cmd_view_fn view_fn; /* view handler (CMD_VIEW), or NULL */
    cmd_order_fn order_fn;             /* NULL: @order */
    int first_key, last_key, key_step; /* for COMMAND INFO */
};

/* The table, sorted by nothing in particular; lookup is case-insensitive. */
extern const struct cmd_def cmd_table[];
extern const size_t cmd_table_len;

/** Finds a command by name (any case); NULL if unknown. */
const struct cmd_def *cmd_lookup(const char *name, size_t len);

/** Starts a connection's state; @env is borrowed for its life. */
void cmd_client_init(struct cmd_client *c, struct cmd_env *env);

/** Frees what a connection's state holds (queued commands, watches). */
void cmd_client_close(struct cmd_client *c);

/**
 * Returns the ordering class @req will have if dispatched now on @c.
 * Depends on @c's MULTI state, so ask just before cmd_dispatch().
 */
int cmd_order_of(const struct cmd_client *c, const struct resp_request *req);

/**
 * Runs one request. @r is initialized by the caller (client, reply buffer
 * with the client's protocol). The reply is complete when
 * env->req_done(@r) is called, possibly before this returns.
 * @req is borrowed for the call only.
 */
void cmd_dispatch(struct cmd_req *r, const struct resp_request *req);

/* ---------------------------------------------------------------------- */
/* Shared by the commands_*.c files                                        */

/** Marks @r complete and hands it to the server. Call exactly once. */
void cmd_req_finish(struct cmd_req *r);

/* Reply helpers: each records the first encoding failure in r->reply_err
 * (the server then replaces the reply with an error) and otherwise ignores
 * it, so handlers stay linear. */
void rep_ok(struct cmd_req *r);
void rep_simple(struct cmd_req *r, const char *s);
void rep_error(struct cmd_req *r, const char *msg);
void rep_errorf(struct cmd_req *r, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
void rep_int(struct cmd_req *r, int64_t v);
void rep_bulk(struct cmd_req *r, const void *data, size_t len);
void rep_cstr(struct cmd_req *r, const char *s);
void rep_null(struct cmd_req *r);
void rep_null_array(struct cmd_req *r);
void rep_array(struct cmd_req *r, size_t n);
void rep_map(struct cmd_req *r, size_t npairs);
void rep_set(struct cmd_req *r, size_t n);
void rep_verbatim(struct cmd_req *r, const char *data, size_t len);

/** Appends bytes that are already one RESP reply (as a session stores). */
void rep_raw(struct cmd_req *r, const uint8_t *data, size_t len);

/** Replies for a write with a request id that did not run because the id
 * was applied before (@res->duplicate: the stored reply) or a later seq of
 * the client was (@res->superseded: an error). A duplicate whose outcome
 * was kept as a kv result is for the caller to build; here it is an
 * error. */
struct kv_entry_result;
void rep_session_outcome(struct cmd_req *r,
                         const struct kv_entry_result *res,
                         uint64_t client_id,
                         uint64_t seq);

/** One "name: integer" pair of a map reply. */
void rep_field_int(struct cmd_req *r, const char *name, int64_t v);

/** "ERR wrong number of arguments for 'name' command". */
void rep_arity_error(struct cmd_req *r, const char *name);

/** Replies with the error a node code means for a client (see
 * docs/protocol.md, "Errors"). @write tells a proposal from a read. */
void rep_node_error(struct cmd_req *r, int code, bool write);

/* Parses a whole argument as a signed 64-bit decimal the way Redis does
 * (no spaces, no '+', no leading zeros). Returns 0 or -1. */
int cmd_parse_i64(const char *s, size_t len, int64_t *out);

/* Case-insensitive comparison of an argument with a lower-case word. */
bool cmd_arg_is(const char *arg, size_t len, const char *word);

/* Checks a key against kv's limits; on failure replies with the error and
 * returns false. */
bool cmd_check_key(struct cmd_req *r, size_t len);
bool cmd_check_value(struct cmd_req *r, size_t len);

/* Monotonic milliseconds (uv_hrtime based). */
uint64_t cmd_now_ms(void);

/* Handlers defined in the commands_*.c files and listed in the table. */
void cmd_view_start(struct cmd_req *r,
                    const struct cmd_def *def,
                    size_t argc,
                    const char *const *argv,
                    const size_t *argvlen);
/* Like cmd_view_start(), with a request id (BREQ): a write it makes is
 * applied at most once per (@client_id, @seq), and a retry of an applied
 * one gets the original reply. @client_id 0: none. */
void cmd_view_start_req(struct cmd_req *r,
                        const struct cmd_def *def,
                        size_t argc,
                        const char *const *argv,
                        const size_t *argvlen,
                        uint64_t client_id,
                        uint64_t seq);
void cmd_exec(struct cmd_req *r,
              size_t argc,
              const char *const *argv,
              const size_t *argvlen);
/* EXEC with a request id (BREQ client-id seq EXEC, inside MULTI): the
 * transaction's write is applied at most once, like cmd_view_start_req(). */
void cmd_exec_req(struct cmd_req *r, uint64_t client_id, uint64_t seq);
void cmd_watch(struct cmd_req *r,
               size_t argc,
               const char *const *argv,
               const size_t *argvlen);
void cmd_client_unwatch(struct cmd_client *c);
/** The number of keys @c watches (CLIENT LIST). */
size_t cmd_client_watched(const struct cmd_client *c);
void cmd_client_discard(struct cmd_client *c);

#define CMD_DECL_VIEW(name)                                       \
    void name(struct cmd_view *v, struct cmd_req *r, size_t argc, \
              const char *const *argv, const size_t *argvlen)
#define CMD_DECL(name)                                                 \
    void name(struct cmd_req *r, size_t argc, const char *const *argv, \
              const size_t *argvlen)

/* commands_ids.c */
CMD_DECL(cmd_bsnowflake);
CMD_DECL(cmd_bseq);
/** BSEQ with a request id (BREQ): a retry gets the block the first
 * application handed out, never a new one. */
void cmd_bseq_req(struct cmd_req *r,
                  size_t argc,
                  const char *const *argv,
                  const size_t *argvlen,
                  uint64_t client_id,
                  uint64_t seq);

/* commands_expire.c: Redis expiry. EXPIRE, PEXPIRE, EXPIREAT, PEXPIREAT,
 * PERSIST, TTL, PTTL, GETEX, SETEX and PSETEX share one handler; the _req
 * form carries a request id (BREQ; 0: none). */
CMD_DECL(cmd_expiry);
void cmd_expiry_req(struct cmd_req *r,
                    size_t argc,
                    const char *const *argv,
                    const size_t *argvlen,
                    uint64_t client_id,
                    uint64_t seq);
int cmd_getex_order(size_t argc,
                    const char *const *argv,
                    const size_t *argvlen);
/* An expiry option of SET or GETEX. */
enum {
    CMD_EXPIRY_EX = 1,
    CMD_EXPIRY_PX = 2,
    CMD_EXPIRY_EXAT = 3,
    CMD_EXPIRY_PXAT = 4,
};
struct cmd_expiry
{
    bool set;        /* an option was given */
    bool keep;       /* KEEPTTL */
    bool persist;    /* PERSIST (GETEX) */
    int kind;        /* CMD_EXPIRY_*, 0 for KEEPTTL and PERSIST */
    const char *arg; /* its value, borrowed from argv */
    size_t arg_len;
    uint64_t at; /* Unix ms, once resolved */
};
/* Parses the expiry option at argv[*i] (EX, PX, EXAT, PXAT with a value,
 * and KEEPTTL, or PERSIST with @allow_persist) into @e, moving *i past its
 * value. Returns 1 if it was one, 0 if argv[*i] is no expiry option, or -1
 * after replying "syntax error" (a second expiry option, a missing value).
 * The value is checked later, by cmd_expiry_resolve(), as Redis checks
 * every option before any value. */
int cmd_expiry_option(struct cmd_req *r,
                      size_t argc,
                      const char *const *argv,
                      const size_t *argvlen,
                      size_t *i,
                      bool allow_persist,
                      struct cmd_expiry *e);
/* Turns @e's value into @e->at; 0, or -1 after replying with Redis's error
 * (not an integer; not positive or out of range: "invalid expire time in
 * '@name' command"), unless @r is NULL. */
int cmd_expiry_resolve(struct cmd_req *r,
                       const char *name,
                       struct cmd_expiry *e);

/* commands_lease.c: BLEASE and BPUT; the _req forms carry a request id
 * (BREQ; 0: none). */
CMD_DECL(cmd_blease);
CMD_DECL(cmd_bput);
int cmd_blease_order(size_t argc,
                     const char *const *argv,
                     const size_t *argvlen);
void cmd_blease_req(struct cmd_req *r,
                    size_t argc,
                    const char *const *argv,
                    const size_t *argvlen,
                    uint64_t client_id,
                    uint64_t seq);
void cmd_bput_req(struct cmd_req *r,
                  size_t argc,
                  const char *const *argv,
                  const size_t *argvlen,
                  uint64_t client_id,
                  uint64_t seq);

/* commands_lock.c: BLOCK and BFENCE; the _req form carries a request id
 * (BREQ; 0: none). */
CMD_DECL(cmd_block);
CMD_DECL(cmd_bfence);
CMD_DECL(cmd_belect);
int cmd_belect_order(size_t argc,
                     const char *const *argv,
                     const size_t *argvlen);
void cmd_belect_req(struct cmd_req *r,
                    size_t argc,
                    const char *const *argv,
                    const size_t *argvlen,
                    uint64_t client_id,
                    uint64_t seq);
int cmd_block_order(size_t argc,
                    const char *const *argv,
                    const size_t *argvlen);
void cmd_block_req(struct cmd_req *r,
                   size_t argc,
                   const char *const *argv,
                   const size_t *argvlen,
                   uint64_t client_id,
                   uint64_t seq);
struct kv_cmd;
/* The refusal of a write whose fence no longer holds. */
#define CMD_FENCED_REPLY \
    "FENCED the fencing token is no longer the lock holder's: not applied"
/** Puts @r's fence (BFENCE), if it has one, on @cmd: every proposal
 * stamps it next to the ACL envelope. */
void cmd_fence_stamp(const struct cmd_req *r, struct kv_cmd *cmd);
/** Frees @r's fence (cmd_req_finish()). */
void cmd_fence_free(struct cmd_req *r);

/* commands_stream.c */
CMD_DECL(cmd_bwatch);
CMD_DECL(cmd_bunwatch);

/* commands_admin.c */
CMD_DECL(cmd_ping);
CMD_DECL(cmd_echo);
CMD_DECL(cmd_auth);
CMD_DECL(cmd_select);
CMD_DECL(cmd_quit);
CMD_DECL(cmd_readonly);
CMD_DECL(cmd_client);
CMD_DECL(cmd_hello);
CMD_DECL(cmd_reset);
CMD_DECL(cmd_multi);
CMD_DECL(cmd_discard);
CMD_DECL(cmd_unwatch);
CMD_DECL(cmd_info);
CMD_DECL(cmd_bstatus);
CMD_DECL(cmd_btransfer);
/* BFALLBACK and WAIT (commands_fallback.c). */
CMD_DECL(cmd_fallback);
CMD_DECL(cmd_wait);
/* INFO's replication section in the primary-replica mode, as Redis
 * writes it (role, slaveN lines, master_link_status...), appended to
 * @buf (@cap bytes) at @n; returns the new length. */
size_t info_fallback(struct bnode *node,
                     const struct bnode_status *st,
                     char *buf,
                     size_t cap,
                     size_t n);
CMD_DECL(cmd_bmember);
CMD_DECL(cmd_command);
CMD_DECL_VIEW(cmd_ping_view);
CMD_DECL_VIEW(cmd_echo_view);

/* commands_string.c: string commands over a view. */
CMD_DECL_VIEW(cmd_get);
CMD_DECL_VIEW(cmd_mget);
CMD_DECL_VIEW(cmd_strlen);
CMD_DECL_VIEW(cmd_exists);
CMD_DECL_VIEW(cmd_bmeta);
CMD_DECL_VIEW(cmd_set);
CMD_DECL_VIEW(cmd_setnx);
CMD_DECL_VIEW(cmd_getset);
CMD_DECL_VIEW(cmd_getdel);
CMD_DECL_VIEW(cmd_del_view);
CMD_DECL_VIEW(cmd_incr);
CMD_DECL_VIEW(cmd_incrby);
CMD_DECL_VIEW(cmd_decr);
CMD_DECL_VIEW(cmd_decrby);
CMD_DECL_VIEW(cmd_append);
CMD_DECL_VIEW(cmd_incrbyfloat);
CMD_DECL_VIEW(cmd_mset);
CMD_DECL_VIEW(cmd_msetnx);
int cmd_set_order(size_t argc, const char *const *argv, const size_t *argvlen);

/* commands_view.c: the view the string handlers run on. */

/** Reads @key through the overlay: 1 with its bytes (borrowed until the
 * next write of the key), or 0 if missing. A key not loaded yet reads as
 * missing and is marked for loading; the runner then runs the handler
 * again with it loaded. */
int cmd_view_get(struct cmd_view *v,
                 const char *key,
                 size_t len,
                 const uint8_t **val,
                 uint32_t *vlen);

/** What @key holds, for commands that take a key of any type (TYPE,
 * EXISTS, DEL): CMD_KIND_NONE (missing, or not loaded yet: marked for
 * loading as by cmd_view_get()), CMD_KIND_STRING or CMD_KIND_HASH.
 * cmd_view_get() on a hash instead makes the command answer WRONGTYPE. */
enum {
    CMD_KIND_NONE = 0,
    CMD_KIND_STRING = 1,
    CMD_KIND_HASH = 2,
};
int cmd_view_kind(struct cmd_view *v, const char *key, size_t len);

/** Writes @key in the overlay (@val NULL: delete it); copies @val. The
 * caller checked @key and @val against kv's limits. 0 or -1 (no memory,
 * recorded in the view). */
int cmd_view_write(struct cmd_view *v,
                   const char *key,
                   size_t len,
                   const void *val,
                   size_t vlen);

/** cmd_view_write() that keeps the key's expiry (@keep: Redis's APPEND,
 * SETRANGE, INCR...) or gives it @expire_at (Unix ms, not 0: RENAME and
 * COPY carry the source's); a plain cmd_view_write() clears it, as SET. */
int cmd_view_write_ttl(struct cmd_view *v,
                       const char *key,
                       size_t len,
                       const void *val,
                       size_t vlen,
                       bool keep,
                       uint64_t expire_at);

/** The expiry @key has in the overlay (Unix ms; 0: none, or missing). */
uint64_t cmd_view_expiry(struct cmd_view *v, const char *key, size_t len);

/** The stored metadata of a loaded key: 1, or 0 if it is missing or not
 * loaded. */
int cmd_view_meta(struct cmd_view *v,
                  const char *key,
                  size_t len,
                  uint64_t *create_revision,
                  uint64_t *mod_revision,
                  uint64_t *version);

/** Records an allocation failure of a handler: the command fails. */
void cmd_view_oom(struct cmd_view *v);

/* commands_keys.c: reads over many keys. */
CMD_DECL(cmd_keys);
CMD_DECL(cmd_scan);
CMD_DECL(cmd_dbsize);
void cmd_cursors_free(struct cmd_env *env);

/* A read run behind a barrier; @argv holds NUL-terminated copies. */
typedef void (*cmd_read_fn)(struct cmd_req *r,
                            struct kv_store *kv,
                            size_t argc,
                            const char *const *argv,
                            const size_t *argvlen);

/** Copies the arguments, takes a read barrier (linearizable unless the
 * connection is READONLY) and runs @fn in its callback, then finishes
 * @r. On a barrier error replies with it instead. */
void cmd_read_start(struct cmd_req *r,
                    cmd_read_fn fn,
                    size_t argc,
                    const char *const *argv,
                    const size_t *argvlen);

/* commands_space.c: BCOMPACT and BHISTORY. */
CMD_DECL(cmd_bcompact);
CMD_DECL(cmd_bhistory);
/* commands_server.c: server commands for tools. */
CMD_DECL(cmd_flush);
CMD_DECL(cmd_time);
CMD_DECL(cmd_config);
CMD_DECL(cmd_role);
/** CLIENT LIST, CLIENT INFO and CLIENT KILL (the subcommand in argv[1]). */
CMD_DECL(cmd_client_list);
CMD_DECL(cmd_client_kill);

/* commands_generic.c: key commands over a view. */
CMD_DECL_VIEW(cmd_type);
CMD_DECL_VIEW(cmd_getrange);
CMD_DECL_VIEW(cmd_setrange);
CMD_DECL_VIEW(cmd_rename);
CMD_DECL_VIEW(cmd_renamenx);
CMD_DECL_VIEW(cmd_copy);
CMD_DECL_VIEW(cmd_memory);
CMD_DECL_VIEW(cmd_object);

/* commands_hash.c: the hash commands; writes are one kv command each,
 * evaluated at apply time (HSET, HMSET, HSETNX, HDEL, HINCRBY,
 * HINCRBYFLOAT), reads run behind a barrier (HGET, HMGET, HEXISTS,
 * HSTRLEN, HLEN, HGETALL, HKEYS, HVALS, HSCAN). */
CMD_DECL(cmd_hash_write);
CMD_DECL(cmd_hash_read);

/* commands_snapshot.c: BSNAPSHOT, copies of the store for clients. */
CMD_DECL(cmd_bsnapshot);
/** Releases (deletes) every export of @c. */
void cmd_client_exports_release(struct cmd_client *c);
/** Releases the exports of @c not read for @idle_ms. Only while no request
 * of @c runs (a READ in flight uses its export). */
void cmd_client_exports_expire(struct cmd_client *c,
                               uint64_t now_ms,
                               uint64_t idle_ms);

/* commands_native.c: DEL and the native commands. */

struct kv_cmd;
/** Encodes @cmd and proposes it with @cb(@arg); on failure frees @arg if
 * it is not @r, replies and finishes @r. @cmd is borrowed for the call. */
void cmd_propose(struct cmd_req *r,
                 const struct kv_cmd *cmd,
                 void (*cb)(void *arg,
                            int status,
                            const struct kv_entry_result *res),
                 void *arg);
/** The checks every write's completion shares (a node error, a command the
 * state machine refused): false if it replied with the error. */
bool cmd_write_ok(struct cmd_req *r,
                  int status,
                  const struct kv_entry_result *res);
/** For writes whose reply is built from the result the store keeps for a
 * request id (BTXN, the read-modify-writes, BSEQ): cmd_write_ok(), then
 * the reply of a retry that did not run (superseded, or applied before
 * without a kept result). False if it replied. */
bool cmd_kept_result_ok(struct cmd_req *r,
                        int status,
                        const struct kv_entry_result *res,
                        uint64_t client_id,
                        uint64_t seq);
/** "request id already applied ... by a different command": a retried id
 * whose kept result has another command's shape. */
void rep_applied_by_another(struct cmd_req *r,
                            const struct kv_entry_result *res);
CMD_DECL(cmd_del);
CMD_DECL(cmd_brange);
CMD_DECL(cmd_btxn);
CMD_DECL(cmd_breq);

/* commands_rmw.c: read-modify-writes the state machine evaluates at apply
 * time (INCR, APPEND, SETNX, SET NX/XX/GET, GETSET, GETDEL, MSETNX, ...):
 * one proposal, no read first. Between MULTI and EXEC the same commands
 * queue their view handlers instead. */
CMD_DECL(cmd_rmw);
/** cmd_rmw() with a request id (BREQ): applied at most once, and a retry
 * gets the first application's outcome, kept by the store. */
void cmd_rmw_req(struct cmd_req *r,
                 size_t argc,
                 const char *const *argv,
                 const size_t *argvlen,
                 uint64_t client_id,
                 uint64_t seq);

/** snprintf appending at @len of @buf (@cap bytes); returns the new
 * length, truncating at the end of the buffer. */
size_t cmd_appendf(char *buf, size_t cap, size_t len, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/** Redis-style glob match (stringmatch rules: * ? [abc] [^a] [a-z] \x). */
bool cmd_glob_match(const char *pat,
                    size_t plen,
                    const char *str,
                    size_t slen,
                    bool nocase);

#endif
