/*
 * cmd_view.h - the view's layout, shared by cmd_view.c (the overlay) and
 * commands_view.c (the runner that loads it and commits it). The string
 * commands see only the opaque struct cmd_view of commands.h.
 */
#ifndef BALLOT_NET_CMD_VIEW_H
#define BALLOT_NET_CMD_VIEW_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct view_key
{
    uint8_t *key;
    uint32_t key_len;
    bool loaded;
    /* As loaded from the store. */
    bool exists0;
    uint8_t *val0;
    uint32_t len0;
    uint64_t create0, mod0, ver0;
    uint64_t expire0; /* its Redis expiry (Unix ms), 0: none */
    bool hash0;       /* it is a hash (only whole-key commands see it) */
    /* The overlay: what the handlers wrote, and what becomes of the key's
     * expiry (enum view_ttl). */
    bool written;
    bool exists;
    uint8_t *val;
    uint32_t len;
    int ttl;
    uint64_t expire_at; /* VIEW_TTL_SET */
    /* WATCH: the mod_revision recorded when watched. */
    bool watched;
    uint64_t watch_rev;
};

/* What a write does to the key's expiry (Redis: SET clears it, APPEND,
 * SETRANGE, INCR keep it, RENAME and COPY carry the source's). */
enum view_ttl {
    VIEW_TTL_CLEAR = 0,
    VIEW_TTL_KEEP = 1,
    VIEW_TTL_SET = 2,
};

struct cmd_view
{
    struct view_key *keys;
    size_t n;
    size_t cap;
    uint32_t *index; /* open addressing over keys, size index_cap */
    size_t index_cap;
    bool missing; /* a handler read a key that is not loaded */
    /* A handler read a hash as a string: the command answers WRONGTYPE
     * and writes nothing. */
    bool wrongtype;
    bool oom;
    bool too_many; /* a handler named more than CMD_VIEW_KEYS_MAX keys */
};

/* The most keys one request (a command, or a whole EXEC) may read or
 * write. The node loads, evaluates and answers them in one turn of its
 * event loop, at a few microseconds a key: 32,768 keys hold it for 50-100
 * ms on a loaded 2-core machine, well within the default election timeout
 * of 300 ms; a 200,000-key MGET held it for over half a second and could
 * cost the leader its leadership. */
#define CMD_VIEW_KEYS_MAX 32768u

/* Finds @key, adding it (not loaded) if @add. NULL if absent or on OOM
 * (which also sets @v->oom). */
struct view_key *cmd_view_find(struct cmd_view *v,
                               const char *key,
                               size_t len,
                               bool add);
/* Forgets what the handlers wrote to @e (a new attempt starts over). */
void cmd_view_clear_overlay(struct view_key *e);
/* Frees every key and the index. */
void cmd_view_free(struct cmd_view *v);

#endif
