/*
 * commands_snapshot.c - BSNAPSHOT: a consistent, point-in-time copy of this
 * node's store, streamed to a client in bounded chunks (`ballot snapshot
 * save`; docs/protocol.md).
 *
 *   BSNAPSHOT CREATE                   token, size, index, term, revision,
 *                                      compact_revision, checksum, chunk_max
 *   BSNAPSHOT READ token offset count  at most count (<= 1 MiB) bytes
 *   BSNAPSHOT DONE token               +OK; the copy is deleted
 *
 * CREATE takes a linearizable read barrier first (unless the connection is
 * READONLY), so the copy holds every write acknowledged before the command
 * arrived; the node then writes the copy on a worker thread
 * (bnode_export_start). READ also reads the file on a worker, so the loop
 * never waits for the disk. An export belongs to the connection that made
 * it: its token means nothing on another, and it is deleted at DONE or
 * when the connection closes, or once nobody read it for
 * server_options.export_idle_ms. At most SERVER_EXPORTS_MAX exist at once.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bnode.h"
#include "commands.h"
#include "kv.h"

/* One export of a connection. */
struct cmd_export
{
    uint64_t token;
    struct bnode_export *exp;
    uint64_t used_ms; /* created or last read */
    struct cmd_export *next;
};

void cmd_client_exports_release(struct cmd_client *c)
{
    while (c->exports != NULL) {
        struct cmd_export *e = c->exports;
        c->exports = e->next;
        bnode_export_release(e->exp);
        free(e);
        c->env->n_exports--;
    }
}

void cmd_client_exports_expire(struct cmd_client *c,
                               uint64_t now_ms,
                               uint64_t idle_ms)
{
    struct cmd_export **pe = &c->exports;
    while (*pe != NULL) {
        struct cmd_export *e = *pe;
        if (now_ms - e->used_ms < idle_ms) {
            pe = &e->next;
            continue;
        }
        *pe = e->next;
        bnode_export_release(e->exp);
        free(e);
        c->env->n_exports--;
        c->env->expired_exports++;
    }
}

/* Finds the export @arg names on this connection; replies with an error
 * and returns NULL if there is none. */
static struct cmd_export *find_export(struct cmd_req *r,
                                      const char *arg,
                                      size_t len)
{
    int64_t token;
    if (cmd_parse_i64(arg, len, &token) == 0 && token > 0) {
        for (struct cmd_export *e = r->client->exports; e; e = e->next) {
            if (e->token == (uint64_t)token) {
                return e;
            }
        }
    }
    rep_error(r,
              "ERR no such snapshot export on this connection (unknown "
              "token, already done, released after going unread for too "
              "long, or made on another connection)");
    return NULL;
}

/* The most one READ returns: SERVER_EXPORT_CHUNK_MAX, or less if the
 * output limit is so low that such a reply would not fit it. */
static uint64_t chunk_max(const struct cmd_env *env)
{
    uint64_t half = env->opts.output_bytes_max / 2;
    return half < SERVER_EXPORT_CHUNK_MAX ? half : SERVER_EXPORT_CHUNK_MAX;
}

/* ---------------------------------------------------------------------- */
/* CREATE                                                                  */

static void reply_created(struct cmd_req *r, const struct cmd_export *e)
{
    const struct kv_snapshot_info *info = kv_snapshot_info(e->exp->snap);
    char checksum[24];
    snprintf(checksum, sizeof(checksum), "%016" PRIx64, info->payload_hash);
    rep_map(r, 8);
    rep_field_int(r, "token", (int64_t)e->token);
    rep_field_int(r, "size", (int64_t)info->size);
    rep_field_int(r, "index", (int64_t)info->applied);
    rep_field_int(r, "term", (int64_t)e->exp->term);
    rep_field_int(r, "revision", (int64_t)info->revision);
    rep_field_int(r, "compact_revision", (int64_t)info->compact_revision);
    rep_cstr(r, "checksum");
    rep_cstr(r, checksum);
    rep_field_int(r, "chunk_max", (int64_t)chunk_max(r->client->env));
}

/* Gives back the slot CREATE reserved, answers @status (0: the client
 * left, nobody reads the answer) and finishes. */
static void create_failed(struct cmd_req *r, int status)
{
    r->client->env->n_exports--;
    if (status == 0) {
        rep_error(r, "ERR the connection is closed");
    } else if (status == BNODE_ESTORAGE) {
        rep_error(r,
                  "ERR the snapshot export failed on the server (its log "
                  "says why)");
    } else {
        rep_node_error(r, status, false);
    }
    cmd_req_finish(r);
}

static void on_exported(void *arg, int status, struct bnode_export *exp)
{
    struct cmd_req *r = arg;
    struct cmd_client *c = r->client;
    struct cmd_export *e = NULL;
    if (status != 0) {
        create_failed(r, status);
        return;
    }
    /* A client that left gets no copy: its reply is thrown away. */
    if (!c->gone && (e = calloc(1, sizeof(*e))) == NULL) {
        status = BNODE_ENOMEM;
    }
    if (e == NULL) {
        bnode_export_release(exp);
        create_failed(r, status);
        return;
    }
    e->token = ++c->env->next_export_token;
    e->exp = exp;
    e->used_ms = cmd_now_ms();
    e->next = c->exports;
    c->exports = e;
    reply_created(r, e);
    cmd_req_finish(r);
}

static void export_start(struct cmd_req *r)
{
    int rc = bnode_export_start(r->client->env->node, on_exported, r);
    if (rc != 0) {
        create_failed(r, rc);
    }
}

static void create_on_barrier(void *arg, int status)
{
    struct cmd_req *r = arg;
    if (status != 0 || r->client->gone) {
        create_failed(r, status);
        return;
    }
    export_start(r);
}

static void create(struct cmd_req *r)
{
    struct cmd_env *env = r->client->env;
    if (env->n_exports >= SERVER_EXPORTS_MAX) {
        rep_errorf(r,
                   "BUSY %u snapshot exports exist already (the limit): "
                   "retry later",
                   SERVER_EXPORTS_MAX);
        cmd_req_finish(r);
        return;
    }
    env->n_exports++; /* reserved until the export is released */
    if (r->client->readonly) {
        export_start(r); /* stale: this node's applied state */
        return;
    }
    int rc = bnode_read(env->node, true, create_on_barrier, r);
    if (rc != 0) {
        create_failed(r, rc);
    }
}

/* ---------------------------------------------------------------------- */
/* READ                                                                    */

/* A chunk being read on a worker. */
struct export_read
{
    uv_work_t work;
    struct cmd_req *r;
    struct kv_snapshot *snap; /* the connection's export: alive while @r */
    uint64_t offset;
    size_t count;
    size_t n;
    int status;
    uint8_t data[]; /* @count bytes */
};

static void read_work(uv_work_t *w)
{
    struct export_read *rd = w->data;
    rd->status = kv_snapshot_read_chunk(rd->snap, rd->offset, rd->data,
                                        rd->count, &rd->n);
}

static void read_done(uv_work_t *w, int status)
{
    struct export_read *rd = w->data;
    struct cmd_req *r = rd->r;
    if (status != 0 || rd->status != 0 || rd->n != rd->count) {
        rep_error(r, "ERR reading the snapshot export failed");
    } else {
        rep_bulk(r, rd->data, rd->n);
    }
    free(rd);
    cmd_req_finish(r);
}

/* Parses a whole decimal argument in [@min, @max]. */
static bool parse_range(const char *s,
                        size_t len,
                        uint64_t min,
                        uint64_t max,
                        uint64_t *out)
{
    int64_t v;
    if (cmd_parse_i64(s, len, &v) != 0 || v < 0 || (uint64_t)v < min ||
        (uint64_t)v > max) {
        return false;
    }
    *out = (uint64_t)v;
    return true;
}

/* READ token offset count. The export cannot be released while the read
 * runs: BSNAPSHOT is serial on its connection (DONE waits), and a
 * connection is freed only once its requests finished. */
static void read_chunk(struct cmd_req *r,
                       const char *const *argv,
                       const size_t *argvlen)
{
    struct cmd_export *e = find_export(r, argv[2], argvlen[2]);
    uint64_t offset, count, size, most = chunk_max(r->client->env);
    struct export_read *rd;
    if (e == NULL) {
        goto done;
    }
    e->used_ms = cmd_now_ms();
    size = kv_snapshot_info(e->exp->snap)->size;
    if (!parse_range(argv[3], argvlen[3], 0, size, &offset)) {
        rep_errorf(r,
                   "ERR offset must be an integer from 0 to %" PRIu64
                   " (the export's size)",
                   size);
        goto done;
    }
    if (!parse_range(argv[4], argvlen[4], 1, most, &count)) {
        rep_errorf(r, "ERR count must be an integer from 1 to %" PRIu64, most);
        goto done;
    }
    if (count > size - offset) {
        count = size - offset;
    }
    if (count == 0) {
        rep_bulk(r, "", 0); /* the end */
        goto done;
    }
    rd = malloc(sizeof(*rd) + count);
    if (rd == NULL) {
        rep_error(r, "ERR out of memory");
        goto done;
    }
    rd->work.data = rd;
    rd->r = r;
    rd->snap = e->exp->snap;
    rd->offset = offset;
    rd->count = (size_t)count;
    rd->n = 0;
    rd->status = 0;
    if (uv_queue_work(r->client->env->loop, &rd->work, read_work, read_done) ==
        0) {
        return; /* read_done() answers */
    }
    free(rd);
    rep_error(r, "ERR reading the snapshot export failed");
done:
    cmd_req_finish(r);
}

/* ---------------------------------------------------------------------- */
/* DONE and dispatch                                                       */

static void done(struct cmd_req *r, const char *arg, size_t len)
{
    struct cmd_export *e = find_export(r, arg, len);
    if (e != NULL) {
        struct cmd_export **pp = &r->client->exports;
        while (*pp != e) {
            pp = &(*pp)->next;
        }
        *pp = e->next;
        bnode_export_release(e->exp);
        free(e);
        r->client->env->n_exports--;
        rep_ok(r);
    }
    cmd_req_finish(r);
}

CMD_DECL(cmd_bsnapshot)
{
    static const struct
    {
        const char *name;
        size_t argc;
    } subs[] = {{"create", 2}, {"read", 5}, {"done", 3}};
    for (size_t i = 0; i < sizeof(subs) / sizeof(subs[0]); i++) {
        if (!cmd_arg_is(argv[1], argvlen[1], subs[i].name)) {
            continue;
        }
        if (argc != subs[i].argc) {
            rep_errorf(r,
                       "ERR wrong number of arguments for 'bsnapshot|%s' "
                       "command",
                       subs[i].name);
            cmd_req_finish(r);
        } else if (i == 0) {
            create(r);
        } else if (i == 1) {
            read_chunk(r, argv, argvlen);
        } else {
            done(r, argv[2], argvlen[2]);
        }
        return;
    }
    rep_error(r, "ERR unknown BSNAPSHOT subcommand; try CREATE, READ or DONE");
    cmd_req_finish(r);
}
