/*
 * commands_stream.c - BWATCH and BUNWATCH: watches of a key range over
 * the client connection (docs/protocol.md, "Watches"), on top of the
 * node's watches (bnode_watch_start()).
 *
 *   BWATCH KEY [END end | PREFIX] [REV rev]   -> :ID, then pushes
 *   BUNWATCH [ID]                             -> :N cancelled
 *
 * Each delivery is one out-of-band frame (a RESP3 push, an array in
 * RESP2), written between replies, never inside one:
 *   ["bwatch", ID, REVISION, [[op, key, value, create, mod, version]...]]
 * with op "put" or "delete" (value "" and version 0 for a delete); no
 * events is a progress notification: every change up to REVISION has
 * been sent. A watch ends with
 *   ["bwatch-end", ID, REASON, REVISION]
 * REASON "compacted" (REVISION is the compaction point), "slow" (the
 * client did not read: resume with REV = REVISION + 1), "stopped" or
 * "error". A connection's watches end when it closes.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bnode.h"
#include "commands.h"
#include "kv.h"

struct cmd_stream
{
    struct cmd_stream *next;
    struct cmd_client *client;
    uint64_t id;
    struct bnode_watch *bw;
    uint64_t last_rev; /* every change up to it was sent */
};

static void stream_unlink(struct cmd_client *c, struct cmd_stream *s)
{
    for (struct cmd_stream **p = &c->streams; *p != NULL; p = &(*p)->next) {
        if (*p == s) {
            *p = s->next;
            c->n_streams--;
            return;
        }
    }
}

/* Sends the end frame of @s and frees it (its node watch is over). */
static void stream_end(struct cmd_stream *s, const char *reason, uint64_t rev)
{
    struct cmd_client *c = s->client;
    struct resp_buf b;
    if (!c->gone && resp_buf_init(&b, 4096, c->proto, NULL) == 0) {
        int rv = resp_encode_push(&b, 4);
        rv = rv != 0 ? rv : resp_encode_bulk(&b, "bwatch-end", 10);
        rv = rv != 0 ? rv : resp_encode_integer(&b, (int64_t)s->id);
        rv = rv != 0 ? rv : resp_encode_bulk(&b, reason, strlen(reason));
        rv = rv != 0 ? rv : resp_encode_integer(&b, (int64_t)rev);
        if (rv == 0) {
            (void)c->env->push(c, b.data, b.len, true);
        }
        resp_buf_close(&b);
    }
    stream_unlink(c, s);
    free(s);
}

static int encode_events(struct resp_buf *b,
                         uint64_t id,
                         uint64_t revision,
                         const struct kv_event *events,
                         size_t n)
{
    int rv = resp_encode_push(b, 4);
    rv = rv != 0 ? rv : resp_encode_bulk(b, "bwatch", 6);
    rv = rv != 0 ? rv : resp_encode_integer(b, (int64_t)id);
    rv = rv != 0 ? rv : resp_encode_integer(b, (int64_t)revision);
    rv = rv != 0 ? rv : resp_encode_array(b, n);
    for (size_t i = 0; rv == 0 && i < n; i++) {
        const struct kv_kv *kv = &events[i].kv;
        bool del = events[i].type == KV_EVENT_DELETE;
        rv = resp_encode_array(b, 6);
        rv = rv != 0 ? rv
                     : resp_encode_bulk(b, del ? "delete" : "put", del ? 6 : 3);
        rv = rv != 0 ? rv : resp_encode_bulk(b, kv->key, kv->key_len);
        rv = rv != 0 ? rv
                     : resp_encode_bulk(b, del ? NULL : kv->value,
                                        del ? 0 : kv->value_len);
        rv =
            rv != 0 ? rv : resp_encode_integer(b, (int64_t)kv->create_revision);
        rv = rv != 0 ? rv : resp_encode_integer(b, (int64_t)kv->mod_revision);
        rv = rv != 0 ? rv : resp_encode_integer(b, (int64_t)kv->version);
    }
    return rv;
}

static void on_events(void *arg,
                      int status,
                      const struct kv_event *events,
                      size_t n,
                      uint64_t revision)
{
    struct cmd_stream *s = arg;
    struct cmd_client *c = s->client;
    struct resp_buf b;
    if (status != 0) {
        s->bw = NULL; /* over */
        stream_end(s,
                   status == BNODE_ECOMPACTED ? "compacted"
                   : status == BNODE_ESTOPPED ? "stopped"
                                              : "error",
                   status == BNODE_ECOMPACTED ? revision : s->last_rev);
        return;
    }
    if (c->gone) {
        return; /* the connection's close cancels it */
    }
    int rv = resp_buf_init(&b, c->env->opts.output_bytes_max, c->proto, NULL);
    if (rv == 0) {
        rv = encode_events(&b, s->id, revision, events, n);
        /* A client that does not read its pushes may not fill the node's
         * memory: its watch ends, and it may resume from where it stopped
         * reading. */
        if (rv == 0 && c->env->push(c, b.data, b.len, false) != 0) {
            rv = -1;
        }
        resp_buf_close(&b);
    }
    if (rv != 0) {
        bnode_watch_cancel(s->bw);
        stream_end(s, "slow", s->last_rev);
        return;
    }
    s->last_rev = revision;
}

/* BWATCH KEY [END end | PREFIX] [REV rev] */
CMD_DECL(cmd_bwatch)
{
    struct cmd_client *c = r->client;
    const char *end = NULL;
    size_t end_len = 0;
    bool prefix = false;
    int64_t rev = 0;
    for (size_t i = 2; i < argc; i++) {
        if (cmd_arg_is(argv[i], argvlen[i], "prefix")) {
            prefix = true;
        } else if (i + 1 < argc && cmd_arg_is(argv[i], argvlen[i], "end")) {
            end = argv[i + 1];
            end_len = argvlen[++i];
        } else if (i + 1 < argc && cmd_arg_is(argv[i], argvlen[i], "rev")) {
            if (cmd_parse_i64(argv[i + 1], argvlen[i + 1], &rev) != 0 ||
                rev < 0) {
                rep_error(r, "ERR REV must be a revision (0: from now)");
                cmd_req_finish(r);
                return;
            }
            i++;
        } else {
            rep_error(r,
                      "ERR syntax error: BWATCH key [END end | PREFIX] "
                      "[REV rev]");
            cmd_req_finish(r);
            return;
        }
    }
    if ((prefix && end != NULL) || (!prefix && argvlen[1] == 0)) {
        rep_error(r,
                  "ERR BWATCH takes a non-empty key, and END or PREFIX, "
                  "not both");
    } else if (cmd_check_key(r, argvlen[1]) &&
               (end == NULL || cmd_check_key(r, end_len))) {
        if (c->n_streams >= CMD_STREAMS_MAX) {
            rep_errorf(r,
                       "ERR too many watches on this connection (at most "
                       "%u)",
                       CMD_STREAMS_MAX);
            cmd_req_finish(r);
            return;
        }
        struct cmd_stream *s = calloc(1, sizeof(*s));
        if (s == NULL) {
            rep_error(r, "ERR out of memory");
            cmd_req_finish(r);
            return;
        }
        s->client = c;
        s->id = ++c->next_stream_id;
        int rc = bnode_watch_start(c->env->node, (const uint8_t *)argv[1],
                                   argvlen[1], (const uint8_t *)end, end_len,
                                   prefix, (uint64_t)rev, on_events, s, &s->bw);
        if (rc == 0) {
            s->next = c->streams;
            c->streams = s;
            c->n_streams++;
            s->last_rev = rev > 0 ? (uint64_t)rev - 1 : 0;
            rep_int(r, (int64_t)s->id);
        } else {
            free(s);
            if (rc == BNODE_ECOMPACTED) {
                rep_errorf(r,
                           "COMPACTED revision %lld was compacted; watch "
                           "from above the compaction point",
                           (long long)rev);
            } else if (rc == BNODE_EBUSY) {
                rep_error(r, "BUSY too many watches on this node");
            } else {
                rep_node_error(r, rc, false);
            }
        }
    }
    cmd_req_finish(r);
}

/* BUNWATCH [ID]: cancels one watch of this connection, or all. */
CMD_DECL(cmd_bunwatch)
{
    struct cmd_client *c = r->client;
    int64_t id = 0;
    int64_t n = 0;
    if (argc == 2 &&
        (cmd_parse_i64(argv[1], argvlen[1], &id) != 0 || id <= 0)) {
        rep_error(r, "ERR value is not an integer or out of range");
        cmd_req_finish(r);
        return;
    }
    for (struct cmd_stream *s = c->streams, *next; s != NULL; s = next) {
        next = s->next;
        if (id == 0 || s->id == (uint64_t)id) {
            bnode_watch_cancel(s->bw);
            stream_unlink(c, s);
            free(s);
            n++;
        }
    }
    rep_int(r, n);
    cmd_req_finish(r);
}

void cmd_client_streams_close(struct cmd_client *c)
{
    while (c->streams != NULL) {
        struct cmd_stream *s = c->streams;
        bnode_watch_cancel(s->bw);
        stream_unlink(c, s);
        free(s);
    }
}
