/*
 * log.c - the in-memory Raft log.
 *
 * The core keeps every entry since the last snapshot in memory, as etcd's
 * MemoryStorage does; the application bounds that memory by taking
 * snapshots (raft_snapshot_taken). Entries sit in one array with a movable
 * start, so compaction is cheap and appends are amortized O(1).
 */
#include <assert.h>
#include <string.h>

#include "node.h"

void log_init(struct raft_log *log)
{
    memset(log, 0, sizeof(*log));
}

static void free_entries(struct raft_node *node,
                         struct raft_log *log,
                         size_t from,
                         size_t to)
{
    for (size_t i = from; i < to; i++) {
        raft_free(node, (void *)log->entries[log->start + i].data);
        log->entries[log->start + i].data = NULL;
    }
}

void log_close(struct raft_node *node, struct raft_log *log)
{
    free_entries(node, log, 0, log->n);
    raft_free(node, log->entries);
    log_init(log);
}

raft_index log_last_index(const struct raft_log *log)
{
    return log->offset + log->n;
}

raft_term log_last_term(const struct raft_log *log)
{
    if (log->n == 0) {
        return log->offset_term;
    }
    return log->entries[log->start + log->n - 1].term;
}

raft_term log_term_at(const struct raft_log *log, raft_index index)
{
    if (index == log->offset) {
        return log->offset_term;
    }
    if (index < log->offset || index > log_last_index(log)) {
        return 0;
    }
    return log->entries[log->start + (size_t)(index - log->offset - 1)].term;
}

struct raft_entry *log_get(const struct raft_log *log, raft_index index)
{
    if (index <= log->offset || index > log_last_index(log)) {
        return NULL;
    }
    return &log->entries[log->start + (size_t)(index - log->offset - 1)];
}

int log_reserve(struct raft_node *node, struct raft_log *log, size_t n)
{
    if (log->start + log->n + n <= log->cap) {
        return 0;
    }
    /* Reuse the room freed by compaction before growing. */
    if (log->start > 0 && log->n + n <= log->cap) {
        memmove(log->entries, log->entries + log->start,
                log->n * sizeof(*log->entries));
        log->start = 0;
        return 0;
    }
    size_t cap = log->cap ? log->cap : 64;
    while (cap < log->n + n) {
        cap *= 2;
    }
    struct raft_entry *e = raft_malloc(node, cap * sizeof(*e));
    if (e == NULL) {
        return RAFT_ENOMEM;
    }
    if (log->n > 0) {
        memcpy(e, log->entries + log->start, log->n * sizeof(*e));
    }
    raft_free(node, log->entries);
    log->entries = e;
    log->start = 0;
    log->cap = cap;
    return 0;
}

int log_append(struct raft_node *node,
               struct raft_log *log,
               raft_term term,
               uint8_t type,
               const uint8_t *data,
               uint32_t len)
{
    uint8_t *copy = NULL;
    int rv = log_reserve(node, log, 1);
    if (rv != 0) {
        return rv;
    }
    if (len > 0) {
        copy = raft_malloc(node, len);
        if (copy == NULL) {
            return RAFT_ENOMEM;
        }
        memcpy(copy, data, len);
    }
    struct raft_entry *e = &log->entries[log->start + log->n];
    e->term = term;
    e->index = log_last_index(log) + 1;
    e->type = type;
    e->len = len;
    e->data = copy;
    log->n++;
    return 0;
}

void log_truncate_from(struct raft_node *node,
                       struct raft_log *log,
                       raft_index index)
{
    assert(index > log->offset);
    if (index > log_last_index(log)) {
        return;
    }
    size_t keep = (size_t)(index - log->offset - 1);
    free_entries(node, log, keep, log->n);
    log->n = keep;
}

void log_compact_to(struct raft_node *node,
                    struct raft_log *log,
                    raft_index index)
{
    if (index <= log->offset) {
        return;
    }
    assert(index <= log_last_index(log));
    size_t drop = (size_t)(index - log->offset);
    raft_term term = log_term_at(log, index);
    free_entries(node, log, 0, drop);
    log->start += drop;
    log->n -= drop;
    log->offset = index;
    log->offset_term = term;
    if (log->n == 0) {
        log->start = 0;
    }
}

void log_reset(struct raft_node *node,
               struct raft_log *log,
               raft_index index,
               raft_term term)
{
    free_entries(node, log, 0, log->n);
    log->start = 0;
    log->n = 0;
    log->offset = index;
    log->offset_term = term;
}
