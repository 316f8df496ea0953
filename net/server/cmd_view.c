/*
 * cmd_view.c - the view: an in-memory overlay of the keys one command (or
 * EXEC) reads and writes, with what was loaded from the store under it.
 * The string commands read and write it through cmd_view_get/write/meta;
 * the runner in commands_view.c loads it and turns it into a kv write.
 */
#include <stdlib.h>
#include <string.h>

#include "cmd_view.h"
#include "commands.h"
#include "kv.h"

static uint64_t hash_key(const uint8_t *k, size_t len)
{
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < len; i++) {
        h = (h ^ k[i]) * 1099511628211ull;
    }
    return h;
}

static int index_rebuild(struct cmd_view *v, size_t cap)
{
    uint32_t *idx = malloc(cap * sizeof(*idx));
    if (idx == NULL) {
        return -1;
    }
    memset(idx, 0xff, cap * sizeof(*idx));
    for (size_t i = 0; i < v->n; i++) {
        size_t h = (size_t)hash_key(v->keys[i].key, v->keys[i].key_len);
        while (idx[h & (cap - 1)] != UINT32_MAX) {
            h++;
        }
        idx[h & (cap - 1)] = (uint32_t)i;
    }
    free(v->index);
    v->index = idx;
    v->index_cap = cap;
    return 0;
}

/* Finds @key, adding it (not loaded) if @add. NULL if absent or on OOM. */
struct view_key *cmd_view_find(struct cmd_view *v,
                               const char *key,
                               size_t len,
                               bool add)
{
    if (v->index_cap > 0) {
        size_t h = (size_t)hash_key((const uint8_t *)key, len);
        for (;; h++) {
            uint32_t i = v->index[h & (v->index_cap - 1)];
            if (i == UINT32_MAX) {
                break;
            }
            struct view_key *e = &v->keys[i];
            if (e->key_len == len && memcmp(e->key, key, len) == 0) {
                return e;
            }
        }
    }
    if (!add) {
        return NULL;
    }
    if (v->n >= CMD_VIEW_KEYS_MAX) {
        v->too_many = true;
        return NULL;
    }
    if (v->n == v->cap) {
        size_t cap = v->cap ? v->cap * 2 : 8;
        struct view_key *k = realloc(v->keys, cap * sizeof(*k));
        if (k == NULL) {
            v->oom = true;
            return NULL;
        }
        v->keys = k;
        v->cap = cap;
    }
    struct view_key *e = &v->keys[v->n];
    memset(e, 0, sizeof(*e));
    e->key = malloc(len ? len : 1);
    if (e->key == NULL) {
        v->oom = true;
        return NULL;
    }
    memcpy(e->key, key, len);
    e->key_len = (uint32_t)len;
    v->n++;
    if (v->n * 2 > v->index_cap) {
        if (index_rebuild(v, v->index_cap ? v->index_cap * 2 : 32) != 0) {
            v->n--;
            free(e->key);
            v->oom = true;
            return NULL;
        }
    } else {
        size_t h = (size_t)hash_key(e->key, len);
        while (v->index[h & (v->index_cap - 1)] != UINT32_MAX) {
            h++;
        }
        v->index[h & (v->index_cap - 1)] = (uint32_t)(v->n - 1);
    }
    return e;
}

/* Reads @key through the overlay: returns 1 with its bytes, or 0 if it is
 * missing. An unloaded key reads as missing and is marked for loading. */
int cmd_view_get(struct cmd_view *v,
                 const char *key,
                 size_t len,
                 const uint8_t **val,
                 uint32_t *vlen)
{
    *val = NULL;
    *vlen = 0;
    if (len == 0 || len > KV_KEY_BYTES_MAX) {
        return 0; /* such a key can never be stored */
    }
    struct view_key *e = cmd_view_find(v, key, len, true);
    if (e == NULL) {
        return 0;
    }
    if (e->written) {
        *val = e->val;
        *vlen = e->len;
        return e->exists;
    }
    if (!e->loaded) {
        v->missing = true;
        return 0;
    }
    if (e->exists0 && e->hash0) {
        v->wrongtype = true;
        return 0;
    }
    *val = e->val0;
    *vlen = e->len0;
    return e->exists0;
}

int cmd_view_kind(struct cmd_view *v, const char *key, size_t len)
{
    if (len == 0 || len > KV_KEY_BYTES_MAX) {
        return CMD_KIND_NONE;
    }
    struct view_key *e = cmd_view_find(v, key, len, true);
    if (e == NULL) {
        return CMD_KIND_NONE;
    }
    if (e->written) {
        return e->exists ? CMD_KIND_STRING : CMD_KIND_NONE;
    }
    if (!e->loaded) {
        v->missing = true;
        return CMD_KIND_NONE;
    }
    if (!e->exists0) {
        return CMD_KIND_NONE;
    }
    return e->hash0 ? CMD_KIND_HASH : CMD_KIND_STRING;
}

void cmd_view_clear_overlay(struct view_key *e)
{
    free(e->val);
    e->val = NULL;
    e->len = 0;
    e->written = false;
    e->exists = false;
}

/* Writes @key in the overlay (@val NULL: delete). Copies @val. The caller
 * checked the key and value against kv's limits. */
int cmd_view_write(struct cmd_view *v,
                   const char *key,
                   size_t len,
                   const void *val,
                   size_t vlen)
{
    struct view_key *e = cmd_view_find(v, key, len, true);
    if (e == NULL) {
        return -1;
    }
    uint8_t *copy = NULL;
    if (val != NULL) {
        copy = malloc(vlen ? vlen : 1);
        if (copy == NULL) {
            v->oom = true;
            return -1;
        }
        if (vlen > 0) {
            memcpy(copy, val, vlen);
        }
    }
    cmd_view_clear_overlay(e);
    e->written = true;
    e->exists = val != NULL;
    e->val = copy;
    e->len = (uint32_t)vlen;
    e->ttl = VIEW_TTL_CLEAR;
    e->expire_at = 0;
    return 0;
}

int cmd_view_write_ttl(struct cmd_view *v,
                       const char *key,
                       size_t len,
                       const void *val,
                       size_t vlen,
                       bool keep,
                       uint64_t expire_at)
{
    /* What keeping means depends on what this view did to the key so far:
     * nothing (or kept): the stored expiry stays; deleted or written
     * plainly: none; given one: that one. */
    struct view_key *prior = cmd_view_find(v, key, len, false);
    bool store_ttl =
        prior == NULL || !prior->written || prior->ttl == VIEW_TTL_KEEP;
    uint64_t prior_at = keep ? cmd_view_expiry(v, key, len) : 0;
    if (cmd_view_write(v, key, len, val, vlen) != 0) {
        return -1;
    }
    struct view_key *e = cmd_view_find(v, key, len, false);
    if (keep && store_ttl) {
        e->ttl = VIEW_TTL_KEEP;
    } else if (keep) {
        e->ttl = prior_at != 0 ? VIEW_TTL_SET : VIEW_TTL_CLEAR;
        e->expire_at = prior_at;
    } else if (expire_at != 0) {
        e->ttl = VIEW_TTL_SET;
        e->expire_at = expire_at;
    }
    return 0;
}

uint64_t cmd_view_expiry(struct cmd_view *v, const char *key, size_t len)
{
    struct view_key *e = cmd_view_find(v, key, len, false);
    if (e == NULL) {
        return 0;
    }
    if (e->written) {
        return !e->exists                ? 0
               : e->ttl == VIEW_TTL_SET  ? e->expire_at
               : e->ttl == VIEW_TTL_KEEP ? (e->exists0 ? e->expire0 : 0)
                                         : 0;
    }
    return e->loaded && e->exists0 ? e->expire0 : 0;
}

int cmd_view_meta(struct cmd_view *v,
                  const char *key,
                  size_t len,
                  uint64_t *create_revision,
                  uint64_t *mod_revision,
                  uint64_t *version)
{
    struct view_key *e = cmd_view_find(v, key, len, false);
    if (e == NULL || !e->loaded || !e->exists0) {
        return 0;
    }
    *create_revision = e->create0;
    *mod_revision = e->mod0;
    *version = e->ver0;
    return 1;
}

void cmd_view_oom(struct cmd_view *v)
{
    v->oom = true;
}

void cmd_view_free(struct cmd_view *v)
{
    for (size_t i = 0; i < v->n; i++) {
        free(v->keys[i].key);
        free(v->keys[i].val0);
        free(v->keys[i].val);
    }
    free(v->keys);
    free(v->index);
    memset(v, 0, sizeof(*v));
}
