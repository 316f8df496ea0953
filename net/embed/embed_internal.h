/*
 * embed_internal.h - the state behind the public API (include/ballot.h):
 * a node, its client server and metrics endpoint on one loop, and, for a
 * node on a thread of its own, the queue through which other threads call
 * into it.
 */
#ifndef BALLOT_NET_EMBED_INTERNAL_H
#define BALLOT_NET_EMBED_INTERNAL_H

#include <pthread.h>
#include <stdbool.h>
#include <uv.h>

#include "ballot.h"
#include "ballot/uv.h"
#include "bnode.h"
#include "config.h"

struct ballot_config
{
    struct ballotd_config d;
    ballot_log_cb log;
    void *log_arg;
    int log_level;
    ballot_halt_cb halt;
    void *halt_arg;
    char errmsg[512];
};

struct embed_call;

struct ballot
{
    uv_loop_t *loop;
    pthread_t loop_thread;
    struct ballotd_config cfg;
    ballot_log_cb log;
    void *log_arg;
    ballot_halt_cb halt;
    void *halt_arg;

    struct bnode *node;
    struct server *server;
    struct metrics *metrics;
    struct looplag *lag; /* the loop's busy time; NULL if unavailable */
    /* TLS for every port (NULL: off); freed after the last part stops. */
    struct tls_ctx *tls;

    /* Halting: the program is told from a timer, not from deep inside the
     * node's cycle, so that it may stop the node in its callback. */
    bool halted;
    char halt_why[256];
    uv_timer_t halt_timer;

    bool stopping;
    int parts_running; /* node, server, metrics still stopping */
    ballot_stop_cb stop_cb;
    void *stop_arg;

    /* A node on a thread of its own (ballot_open()). */
    bool threaded;
    uv_loop_t own_loop;
    uv_thread_t thread;
    uv_sem_t started;
    int start_rc;
    char start_err[512];
    uv_async_t wake;
    uv_mutex_t mu; /* guards the queue and closed */
    struct embed_call *q_head, *q_tail;
    bool closed; /* the queue takes no more calls */
    uv_sem_t stopped;

    /* Watches not yet released (embed_watch.c). */
    struct ballot_watch *watches;
};

/* True if the caller runs on @b's loop thread. */
bool embed_on_loop(const struct ballot *b);

/* Maps a node error (BNODE_E*) to the public range. */
int embed_error(int bnode_code);

/* ---- calls (embed_ops.c) ---------------------------------------------- */

enum embed_kind {
    EMBED_PUT = 1,
    EMBED_DELETE,
    EMBED_GET,
    EMBED_RANGE,
    EMBED_TXN,
    EMBED_MEMBER_ADD,
    EMBED_MEMBER_PROMOTE,
    EMBED_MEMBER_REMOVE,
    EMBED_STATUS,   /* runs on the loop; the caller waits */
    EMBED_TRANSFER, /* runs on the loop; the caller waits */
    EMBED_STOP,     /* ballot_close() */
    EMBED_WATCH,
    EMBED_WATCH_CANCEL, /* runs on the loop; the caller waits */
    EMBED_SEQUENCE,
    EMBED_LEASE_GRANT, /* embed_lease.c */
    EMBED_LEASE_KEEPALIVE,
    EMBED_LEASE_REVOKE,
    EMBED_LEASE_TTL,
    EMBED_PUT_LEASE,
    EMBED_LEASE_LIST, /* embed_lock.c */
    EMBED_LOCK_ACQUIRE,
    EMBED_LOCK_RELEASE,
    EMBED_LOCK_OWNER,
    EMBED_PUT_FENCED,
    EMBED_ELECT_PROCLAIM,
};

/* A request with every byte it needs copied into one allocation, so that
 * it can cross threads and outlive the caller's buffers. */
struct embed_call
{
    enum embed_kind kind;
    struct embed_call *next;
    struct ballot *b;
    ballot_cb cb;
    void *arg;
    /* Encoded kv command (writes), or the read's key and end. */
    uint8_t *cmd;
    size_t cmd_len;
    const uint8_t *key, *end;
    uint32_t key_len, end_len;
    uint64_t limit;
    int flags;
    int consistency;
    uint64_t id; /* members, transfer, leases */
    /* Leases: a grant's TTL, and the request id of a grant (encoded on
     * the loop, where the lease clock is known). */
    uint64_t ttl_ms;
    uint64_t rid_client, rid_seq;
    bool voter; /* member add */
    char addr[128];
    struct ballot_watch *watch; /* EMBED_WATCH, EMBED_WATCH_CANCEL */
    /* EMBED_STATUS and EMBED_TRANSFER: where the loop puts the answer. */
    struct ballot_status *status_out;
    int *rc_out;
    struct embed_waiter *waiter;
};

/* Encodes @cmd, with @rid's request id if not NULL (the store then keeps
 * the result for a retry), into a new call of @kind with @extra bytes
 * after it for the caller; a NULL @cmd makes a call without a command (a
 * read). Returns 0 with *@out, or BALLOT_EINVAL / BALLOT_ETOOBIG /
 * BALLOT_ENOMEM. */
int embed_call_of_cmd(enum embed_kind kind,
                      struct kv_cmd *cmd,
                      const struct ballot_reqid *rid,
                      size_t extra,
                      struct embed_call **out);

/* Builds a call of @kind. Returns 0 with *@out (free with embed_call_free)
 * or BALLOT_EINVAL / BALLOT_ETOOBIG / BALLOT_ENOMEM. */
int embed_call_write(enum embed_kind kind,
                     const void *key,
                     size_t key_len,
                     const void *value,
                     size_t value_len,
                     const struct ballot_txn *txn,
                     const struct ballot_reqid *rid,
                     struct embed_call **out);
/* Builds a call for the next @count IDs of sequence @name. Returns 0 with
 * *@out, or BALLOT_EINVAL / BALLOT_ENOMEM. */
int embed_call_sequence(const void *name,
                        size_t name_len,
                        uint64_t count,
                        const struct ballot_reqid *rid,
                        struct embed_call **out);
int embed_call_read(const void *key,
                    size_t key_len,
                    const void *end,
                    size_t end_len,
                    uint64_t limit,
                    int flags,
                    int consistency,
                    bool point,
                    struct embed_call **out);
int embed_call_member(enum embed_kind kind,
                      uint64_t id,
                      const char *addr,
                      bool voter,
                      struct embed_call **out);
void embed_call_free(struct embed_call *c);

/* Runs @c on the loop thread. On success the call belongs to the node
 * until its callback; on failure returns the error and still owns @c. */
int embed_call_run(struct ballot *b, struct embed_call *c);

/* Hands @c to @b: runs it at once on the loop thread (an error is returned
 * and @c freed), or queues it for the loop (0; an error reaches the
 * callback). */
int embed_submit(struct ballot *b, struct embed_call *c);

/* Reports @status to @c's callback (no result) and frees @c. */
void embed_call_fail(struct embed_call *c, int status);

/* Fills @out from the node (loop thread). */
void embed_status_fill(struct ballot *b, struct ballot_status *out);

/* ---- leases (embed_lease.c) ------------------------------------------- */

/* Builds a lease call of @kind (EMBED_LEASE_*, EMBED_PUT_LEASE). Returns 0
 * with *@out or BALLOT_EINVAL / BALLOT_ETOOBIG / BALLOT_ENOMEM. */
int embed_call_lease(enum embed_kind kind,
                     uint64_t id,
                     uint64_t ttl_ms,
                     const void *key,
                     size_t key_len,
                     const void *value,
                     size_t value_len,
                     const struct ballot_reqid *rid,
                     struct embed_call **out);
/* Runs a lease call on the loop; like embed_call_run(). */
int embed_lease_run(struct ballot *b, struct embed_call *c);

/* ---- locks and lease lists (embed_lock.c) ------------------------------ */

/* The arguments of a lock call (EMBED_LOCK_*, EMBED_PUT_FENCED,
 * EMBED_LEASE_LIST); unused ones are 0. */
struct embed_lock_args
{
    const void *name;
    size_t name_len;
    bool election;       /* the election @name, not the lock */
    uint64_t lease;      /* acquire */
    uint64_t token;      /* release, fenced put */
    uint64_t timeout_ms; /* acquire */
    int flags;           /* acquire */
    int consistency;     /* owner, list */
    const void *key;     /* fenced put */
    size_t key_len;
    const void *value;
    size_t value_len;
    uint64_t after; /* list */
    size_t count;
};

/* Builds a call of @kind. Returns 0 with *@out or BALLOT_EINVAL /
 * BALLOT_ETOOBIG / BALLOT_ENOMEM. */
int embed_call_lock(enum embed_kind kind,
                    const struct embed_lock_args *a,
                    const struct ballot_reqid *rid,
                    struct embed_call **out);
/* Runs a lock call on the loop; like embed_call_run(). */
int embed_lock_run(struct ballot *b, struct embed_call *c);

/* ---- watches (embed_watch.c) ------------------------------------------ */

/* Starts @c's watch on the loop; a failure reaches the watch's callback. */
void embed_watch_run(struct ballot *b, struct embed_call *c);
/* Ends and releases a watch (loop thread). */
void embed_watch_release(struct ballot *b, struct ballot_watch *w);
/* Releases every watch left (loop thread, when the node is freed). */
void embed_watch_release_all(struct ballot *b);

/* ---- blocking calls (embed_wait.c) ------------------------------------ */

/* Submits @c and waits for its result; returns its status and, if @out,
 * a copy of the result. */
int embed_wait(struct ballot *b,
               struct embed_call *c,
               struct ballot_result **out);

/* Starts the stop of every part (loop thread); @b->stop_cb runs once all
 * are stopped. */
void embed_stop_parts(struct ballot *b);

#endif
