/*
 * bench.c - `ballot bench`, a closed-loop load generator.
 *
 * N clients share M connections (hiredis's async API on a libuv loop);
 * each client has one request in flight and sends the next when its reply
 * arrives, so a connection carries up to N/M pipelined requests. Every
 * latency is kept (4 bytes each) and sorted at the end, so the
 * percentiles are exact. The generator runs on one thread and reports its
 * own CPU time, to show it is not what limits the numbers.
 *
 * It rides through a leader change: a client whose request fails (an
 * error, or its connection lost) waits instead of resending at once; a
 * timer, backing off from 50 ms to 1 s while failures go on, finds the
 * leader again (writes, --target-leader) or reconnects (reads), then the
 * waiting clients resume. The time from a failure to the next success is
 * an outage, reported with the requests that failed in it; an outage
 * longer than the timeout ends the run.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wpedantic"
#pragma GCC diagnostic ignored "-Wunused-function"
#pragma GCC diagnostic ignored "-Wstrict-prototypes"
#include <async.h>
#include <adapters/libuv.h>
#pragma GCC diagnostic pop
#include <uv.h>

#include "cli.h"

#define BENCH_CLIENTS_MAX 100000
#define BENCH_CONNS_MAX 1000
#define BENCH_KEY_MAX 512

enum workload {
    W_PUT,
    W_GET,
    W_MIXED,
    W_TXN,
    W_INCR,
    W_SEQ,
    W_LEASE_GRANT,     /* BLEASE GRANT: a new lease per request */
    W_LEASE_KEEPALIVE, /* BLEASE KEEPALIVE of --key-space leases */
    W_HSET,            /* HSET of a field of one of --key-space hashes */
};
enum key_dist { D_UNIFORM, D_SEQUENTIAL, D_ZIPFIAN };

static const char *const workload_names[] = {
    "put", "get",         "mixed",           "txn", "incr",
    "seq", "lease-grant", "lease-keepalive", "hset"};
#define WORKLOADS 9
/* Fields the hset workload spreads its writes over, per hash: well below
 * the store's limit (KV_HASH_FIELDS_MAX), so that repeated runs never
 * fill a hash. */
#define BENCH_HASH_FIELDS 10000u
static const char *const dist_names[] = {"uniform", "sequential", "zipfian"};

/* Error replies are counted by their first word. */
#define ERR_KINDS 8
static const char *const err_kinds[ERR_KINDS] = {
    "NOTLEADER", "BUSY", "DROPPED", "UNKNOWN",
    "TRYAGAIN",  "ERR",  "other",   "disconnected"};

struct bench;

struct bconn
{
    struct bench *b;
    redisAsyncContext *ac;
    char addr[256];
    bool ready;
    bool connecting; /* conn_open() until on_ready() or a failure */
    uint64_t connect_us;
};

/* How long a connection may take to become ready after a reroute. hiredis's
 * libuv adapter drops a poll error, so an asynchronous connect to a dead
 * node may never report its failure: it is given up after this. */
#define BENCH_CONNECT_MS 1000u

struct bclient
{
    struct bench *b;
    struct bconn *conn;
    uint64_t start_us;
    bool parked;  /* --rate: waits for its turn */
    bool waiting; /* its last request failed: waits for the reroute */
    bool busy;    /* a request in flight since start_us */
};

/* An interval from a failed request to the next success. */
#define BENCH_OUTAGES_MAX 64
struct outage
{
    uint64_t start_us, end_us;
    uint64_t failed;
};

/* Backoff of the reroute timer while failures go on. */
#define BENCH_BACKOFF_MIN_MS 50u
#define BENCH_BACKOFF_MAX_MS 1000u

struct bench
{
    /* Options. */
    enum workload workload;
    enum key_dist dist;
    unsigned clients, conns;
    uint64_t total;
    double duration_s;
    double rate;
    unsigned value_size;
    uint64_t key_space;
    double ratio;
    const char *key_prefix;
    bool target_leader;
    int timeout_ms;
    char block_text[24]; /* seq: IDs per request (--block) */
    bool quiet;          /* no progress lines (cli_bench_run()) */

    uv_loop_t loop;
    uv_timer_t tick;    /* progress, once a second */
    uv_timer_t pace;    /* with --rate: wakes parked clients */
    uv_timer_t guard;   /* bounds the connect phase and the drain */
    uv_timer_t reroute; /* after failures: find the leader, reconnect */
    struct cli *cli;
    bool follow;      /* connections go to the leader */
    char leader[256]; /* its client address */
    bool reroute_due;
    unsigned backoff_ms;
    unsigned leader_changes;
    struct outage outages[BENCH_OUTAGES_MAX];
    unsigned n_outages; /* more than the array holds are summed in the last */
    bool down;          /* the last outage has not ended */
    uint64_t down_seen_us;    /* when it was noticed (the run's patience) */
    uint64_t ok_since_outage; /* successes since the last outage ended */
    struct bconn *conn;
    struct bclient *client;
    unsigned ready, dead;

    /* Counters. */
    uint64_t sent, ok, failed, inflight;
    uint64_t errors[ERR_KINDS];
    uint64_t last_ok, last_lat_sum;
    uint64_t lat_sum;
    uint32_t *lat;
    size_t n_lat, cap_lat;

    uint64_t start_us, end_us, stop_at_us;
    bool started, stopping, finished, aborted;
    struct rusage ru0;

    /* Key generation. */
    uint64_t rng, seq;
    int key_digits;
    char *value;
    double zipf_zetan, zipf_eta, zipf_alpha, zipf_half_pow;
};

static uint64_t rng_next(struct bench *b)
{
    /* xorshift64*: cheap and good enough to pick keys. */
    b->rng ^= b->rng >> 12;
    b->rng ^= b->rng << 25;
    b->rng ^= b->rng >> 27;
    return b->rng * 2685821657736338717ull;
}

static double rng_unit(struct bench *b)
{
    return (double)(rng_next(b) >> 11) * (1.0 / 9007199254740992.0);
}

/* Zipfian over [0, n) with theta 0.99, after Gray et al., "Quickly
 * generating billion-record synthetic databases" (as YCSB does). */
static void zipf_init(struct bench *b)
{
    const double theta = 0.99;
    double zeta2 = 1.0 + pow(0.5, theta);
    double zetan = 0;
    for (uint64_t i = 1; i <= b->key_space; i++) {
        zetan += 1.0 / pow((double)i, theta);
    }
    b->zipf_zetan = zetan;
    b->zipf_alpha = 1.0 / (1.0 - theta);
    b->zipf_half_pow = 1.0 + pow(0.5, theta);
    b->zipf_eta = (1.0 - pow(2.0 / (double)b->key_space, 1.0 - theta)) /
                  (1.0 - zeta2 / zetan);
}

static uint64_t zipf_next(struct bench *b)
{
    double u = rng_unit(b);
    double uz = u * b->zipf_zetan;
    uint64_t k;
    if (uz < 1.0) {
        return 0;
    }
    if (uz < b->zipf_half_pow) {
        return 1 % b->key_space;
    }
    k = (uint64_t)((double)b->key_space *
                   pow(b->zipf_eta * u - b->zipf_eta + 1.0, b->zipf_alpha));
    return k < b->key_space ? k : b->key_space - 1;
}

static uint64_t next_key(struct bench *b)
{
    switch (b->dist) {
    case D_SEQUENTIAL:
        return b->seq++ % b->key_space;
    case D_ZIPFIAN:
        return zipf_next(b);
    case D_UNIFORM:
    default:
        return rng_next(b) % b->key_space;
    }
}

/* The value written for a key: the key, padded with 'x' (or cut) to
 * value_size bytes, so a reader can check it. */
static size_t make_value(struct bench *b, const char *key, size_t key_len)
{
    size_t n = key_len < b->value_size ? key_len : b->value_size;
    memcpy(b->value, key, n);
    memset(b->value + n, 'x', b->value_size - n);
    return b->value_size;
}

static void lat_record(struct bench *b, uint64_t us)
{
    if (b->n_lat == b->cap_lat) {
        size_t cap = b->cap_lat ? b->cap_lat * 2 : 1 << 16;
        uint32_t *grown = realloc(b->lat, cap * sizeof(*grown));
        if (grown == NULL) {
            return; /* the sample stays as it is */
        }
        b->lat = grown;
        b->cap_lat = cap;
    }
    b->lat[b->n_lat++] = us > UINT32_MAX ? UINT32_MAX : (uint32_t)us;
    b->lat_sum += us;
}

static void finish(struct bench *b);
static void issue(struct bclient *c);
static void on_guard(uv_timer_t *t);

static bool more_to_send(struct bench *b, uint64_t now)
{
    if (b->stopping) {
        return false;
    }
    if ((b->total > 0 && b->sent >= b->total) ||
        (b->stop_at_us > 0 && now >= b->stop_at_us)) {
        b->stopping = true;
        /* Replies still due get timeout_ms to arrive. */
        uv_timer_start(&b->guard, on_guard, (uint64_t)b->timeout_ms, 0);
        return false;
    }
    return true;
}

static void maybe_finish(struct bench *b)
{
    if (b->stopping && b->inflight == 0 && !b->finished) {
        finish(b);
    }
}

static void on_reroute(uv_timer_t *t);

static void schedule_reroute(struct bench *b)
{
    if (b->reroute_due || b->finished) {
        return;
    }
    b->reroute_due = true;
    uv_timer_start(&b->reroute, on_reroute, b->backoff_ms, 0);
}

/* A request failed: an outage starts (or goes on), and the client waits
 * for the reroute timer instead of resending into the failure. */
static void request_failed(struct bclient *c, uint64_t now)
{
    struct bench *b = c->b;
    if (!b->down) {
        b->ok_since_outage = 0;
        b->down_seen_us = now;
        if (b->n_outages < BENCH_OUTAGES_MAX) {
            b->n_outages++;
            /* From when the failed request was sent: a lost connection may
             * be noticed long after. */
            b->outages[b->n_outages - 1].start_us =
                c->start_us != 0 && c->start_us < now ? c->start_us : now;
        }
        b->down = true;
    }
    b->outages[b->n_outages - 1].failed++;
    b->outages[b->n_outages - 1].end_us = now;
    c->waiting = true;
    schedule_reroute(b);
}

static void request_succeeded(struct bench *b, uint64_t now)
{
    b->ok_since_outage++;
    if (b->down) {
        b->outages[b->n_outages - 1].end_us = now;
        b->down = false;
    }
    b->backoff_ms = BENCH_BACKOFF_MIN_MS;
}

/* Sends again for the waiting clients of @bc (NULL: of every ready
 * connection). */
static void resume_waiting(struct bench *b, struct bconn *bc)
{
    uint64_t now = cli_now_us();
    for (unsigned i = 0; i < b->clients; i++) {
        struct bclient *c = &b->client[i];
        if (c->waiting && c->conn->ready && (bc == NULL || c->conn == bc)) {
            c->waiting = false;
            if (more_to_send(b, now)) {
                issue(c);
            }
        }
    }
    maybe_finish(b);
}

static bool any_waiting(const struct bench *b)
{
    for (unsigned i = 0; i < b->clients; i++) {
        if (b->client[i].waiting) {
            return true;
        }
    }
    return false;
}

static void on_reply(redisAsyncContext *ac, void *reply, void *privdata)
{
    struct bclient *c = privdata;
    struct bench *b = c->b;
    redisReply *r = reply;
    uint64_t now = cli_now_us();
    (void)ac;
    b->inflight--;
    c->busy = false;
    if (r == NULL) {
        b->failed++;
        b->errors[ERR_KINDS - 1]++;
        c->conn->ready = false;
        request_failed(c, now);
    } else if (r->type == REDIS_REPLY_ERROR) {
        int k;
        b->failed++;
        for (k = 0; k < ERR_KINDS - 2; k++) {
            size_t n = strlen(err_kinds[k]);
            if (strncmp(r->str, err_kinds[k], n) == 0 &&
                (r->str[n] == ' ' || r->str[n] == '\0')) {
                break;
            }
        }
        b->errors[k]++;
        request_failed(c, now);
    } else {
        b->ok++;
        lat_record(b, now - c->start_us);
        request_succeeded(b, now);
    }
    if (!c->waiting && c->conn->ready && more_to_send(b, now)) {
        issue(c);
    }
    maybe_finish(b);
}

/* Sends one request; a connection that cannot take it (lost, being
 * closed) is left for the reroute, and the client waits for it. */
static void send_or_wait(struct bclient *c,
                         int argc,
                         const char **argv,
                         const size_t *lens)
{
    struct bench *b = c->b;
    if (c->conn->ac != NULL &&
        redisAsyncCommandArgv(c->conn->ac, on_reply, c, argc, argv, lens) ==
            REDIS_OK) {
        b->sent++;
        b->inflight++;
        c->busy = true;
        return;
    }
    c->conn->ready = false;
    c->waiting = true;
    schedule_reroute(b);
}

static void issue(struct bclient *c)
{
    struct bench *b = c->b;
    char key[BENCH_KEY_MAX];
    char field[24];
    const char *argv[10];
    size_t lens[10];
    int argc = 0, klen;
    bool read;

    if (b->rate > 0) {
        double elapsed = (double)(cli_now_us() - b->start_us) / 1e6;
        if ((double)b->sent >= b->rate * elapsed + 1.0) {
            c->parked = true;
            return;
        }
    }
    klen = snprintf(key, sizeof(key), "%s%0*llu", b->key_prefix, b->key_digits,
                    (unsigned long long)next_key(b));
    read = b->workload == W_GET ||
           (b->workload == W_MIXED && rng_unit(b) < b->ratio);
    if (read) {
        argv[0] = "GET";
        lens[0] = 3;
        argv[1] = key;
        lens[1] = (size_t)klen;
        argc = 2;
    } else if (b->workload == W_TXN) {
        static const char *const head[] = {"BTXN", "1", "EXISTS"};
        size_t vlen = make_value(b, key, (size_t)klen);
        for (int i = 0; i < 3; i++) {
            argv[argc] = head[i];
            lens[argc++] = strlen(head[i]);
        }
        argv[argc] = key;
        lens[argc++] = (size_t)klen;
        argv[argc] = "=";
        lens[argc++] = 1;
        argv[argc] = "1";
        lens[argc++] = 1;
        argv[argc] = "1";
        lens[argc++] = 1;
        argv[argc] = "PUT";
        lens[argc++] = 3;
        argv[argc] = key;
        lens[argc++] = (size_t)klen;
        argv[argc] = b->value;
        lens[argc++] = vlen;
        /* An else branch that writes too, so every txn is one write. */
        {
            static const char *tail[4] = {"1", "PUT", NULL, NULL};
            const char *all[14];
            size_t all_lens[14];
            memcpy(all, argv, sizeof(argv[0]) * 10);
            memcpy(all_lens, lens, sizeof(lens[0]) * 10);
            all[10] = tail[0];
            all_lens[10] = 1;
            all[11] = tail[1];
            all_lens[11] = 3;
            all[12] = key;
            all_lens[12] = (size_t)klen;
            all[13] = b->value;
            all_lens[13] = vlen;
            c->start_us = cli_now_us();
            send_or_wait(c, 14, all, all_lens);
            return;
        }
    } else if (b->workload == W_SEQ) {
        /* Sequence IDs: the key names the sequence (one with --key-space
         * 1), each request takes a block of --block IDs. */
        argv[0] = "BSEQ";
        lens[0] = 4;
        argv[1] = key;
        lens[1] = (size_t)klen;
        argv[2] = b->block_text;
        lens[2] = strlen(b->block_text);
        argc = 3;
    } else if (b->workload == W_LEASE_GRANT) {
        /* The node mints the id; a long TTL, so none ends during a run. */
        argv[0] = "BLEASE";
        argv[1] = "GRANT";
        argv[2] = "600000";
        argc = 3;
        for (int i = 0; i < argc; i++) {
            lens[i] = strlen(argv[i]);
        }
    } else if (b->workload == W_LEASE_KEEPALIVE) {
        /* Lease ids 1..key-space, granted before the run (lease_setup). */
        unsigned long long n = strtoull(key + strlen(b->key_prefix), NULL, 10);
        klen = snprintf(key, sizeof(key), "%llu", n + 1);
        argv[0] = "BLEASE";
        argv[1] = "KEEPALIVE";
        argv[2] = key;
        lens[0] = 6;
        lens[1] = 9;
        lens[2] = (size_t)klen;
        argc = 3;
    } else if (b->workload == W_HSET) {
        /* A field of a hash: with a small --key-space, a few hot hashes
         * take every write, each one field's update (docs/kv.md,
         * "Hashes"). */
        int flen = snprintf(field, sizeof(field), "f%u",
                            (unsigned)(rng_next(b) % BENCH_HASH_FIELDS));
        argv[0] = "HSET";
        lens[0] = 4;
        argv[1] = key;
        lens[1] = (size_t)klen;
        argv[2] = field;
        lens[2] = (size_t)flen;
        argv[3] = b->value;
        lens[3] = make_value(b, key, (size_t)klen);
        argc = 4;
    } else if (b->workload == W_INCR) {
        /* A counter: with --key-space 1 every client increments the same
         * hot key, and the final value is the number of INCRs applied. */
        argv[0] = "INCR";
        lens[0] = 4;
        argv[1] = key;
        lens[1] = (size_t)klen;
        argc = 2;
    } else {
        argv[0] = "SET";
        lens[0] = 3;
        argv[1] = key;
        lens[1] = (size_t)klen;
        argv[2] = b->value;
        lens[2] = make_value(b, key, (size_t)klen);
        argc = 3;
    }
    c->start_us = cli_now_us();
    send_or_wait(c, argc, argv, lens);
}

static void on_pace(uv_timer_t *t)
{
    struct bench *b = t->data;
    uint64_t now = cli_now_us();
    for (unsigned i = 0; i < b->clients; i++) {
        struct bclient *c = &b->client[i];
        if (c->parked && c->conn->ready && more_to_send(b, now)) {
            c->parked = false;
            issue(c);
        }
    }
    maybe_finish(b);
}

static void on_tick(uv_timer_t *t)
{
    struct bench *b = t->data;
    if (b->stop_at_us > 0 &&
        cli_now_us() > b->stop_at_us + 2000u * (uint64_t)b->timeout_ms) {
        /* Whatever holds the run past its end and the drain: end it. */
        on_guard(&b->guard);
        return;
    }
    uint64_t ok = b->ok - b->last_ok;
    uint64_t lat = b->lat_sum - b->last_lat_sum;
    if (!b->quiet) {
        fprintf(stderr,
                "%6.1fs  %8llu ops/s  total %llu ok, %llu failed  mean %.3f "
                "ms\n",
                (double)(cli_now_us() - b->start_us) / 1e6,
                (unsigned long long)ok, (unsigned long long)b->ok,
                (unsigned long long)b->failed,
                ok ? (double)lat / (double)ok / 1000.0 : 0.0);
    }
    b->last_ok = b->ok;
    b->last_lat_sum = b->lat_sum;
    if (b->started && !b->stopping) {
        uint64_t now = cli_now_us();
        for (unsigned i = 0; i < b->conns; i++) {
            struct bconn *bc = &b->conn[i];
            if (bc->connecting && bc->ac != NULL &&
                now - bc->connect_us > BENCH_CONNECT_MS * 1000u) {
                redisAsyncContext *ac = bc->ac;
                bc->ac = NULL;
                bc->connecting = false;
                redisAsyncFree(ac); /* on_ready() gets no reply */
            }
        }
        /* A connection whose oldest request has waited past the timeout
         * is given up: a reset connection can go unnoticed, as hiredis's
         * libuv adapter drops the poll error that reports it. */
        for (unsigned i = 0; i < b->clients; i++) {
            struct bclient *c = &b->client[i];
            if (c->busy && c->conn->ac != NULL &&
                now - c->start_us > 1000u * (uint64_t)b->timeout_ms) {
                redisAsyncContext *ac = c->conn->ac;
                c->conn->ac = NULL;
                c->conn->ready = false;
                c->conn->connecting = false;
                redisAsyncFree(ac); /* its requests fail: counted */
            }
        }
        if (any_waiting(b)) {
            schedule_reroute(b); /* never left waiting for nothing */
        }
    }
    if (b->inflight == 0 && b->rate <= 0 && !b->reroute_due &&
        !any_waiting(b)) {
        /* Nothing in flight and nothing parked: no connection can send. */
        b->stopping = true;
        maybe_finish(b);
    }
}

static void start_load(struct bench *b)
{
    b->started = true;
    uv_timer_stop(&b->guard);
    getrusage(RUSAGE_SELF, &b->ru0);
    b->start_us = cli_now_us();
    if (b->duration_s > 0) {
        b->stop_at_us = b->start_us + (uint64_t)(b->duration_s * 1e6);
    }
    uv_timer_start(&b->tick, on_tick, 1000, 1000);
    if (b->rate > 0) {
        uv_timer_start(&b->pace, on_pace, 1, 1);
    }
    for (unsigned i = 0; i < b->clients; i++) {
        if (!more_to_send(b, b->start_us)) {
            break;
        }
        issue(&b->client[i]);
    }
    maybe_finish(b);
}

static void on_ready(redisAsyncContext *ac, void *reply, void *privdata)
{
    struct bconn *bc = privdata;
    struct bench *b = bc->b;
    redisReply *r = reply;
    (void)ac;
    if (r == NULL || r->type == REDIS_REPLY_ERROR) {
        if (!b->quiet && !b->finished) {
            fprintf(stderr, "ballot bench: %s: %s\n", bc->addr,
                    r ? r->str : "connection failed");
        }
        bc->connecting = false;
        if (b->started) {
            schedule_reroute(b);
        }
        return; /* before the start, the guard timer ends the run */
    }
    bc->ready = true;
    bc->connecting = false;
    if (b->started) {
        resume_waiting(b, bc); /* a connection made again by a reroute */
    } else if (++b->ready == b->conns) {
        start_load(b);
    }
}

static void on_connect(const redisAsyncContext *ac, int status)
{
    struct bconn *bc = ac->data;
    if (status != REDIS_OK) {
        if (!bc->b->quiet) {
            fprintf(stderr, "ballot bench: %s: %s\n", bc->addr, ac->errstr);
        }
        bc->ac = NULL; /* hiredis frees it */
        bc->connecting = false;
        if (bc->b->started) {
            schedule_reroute(bc->b); /* try again, backing off */
            return;
        }
        if (++bc->b->dead == bc->b->conns && !bc->b->finished) {
            bc->b->aborted = true;
            finish(bc->b);
        }
    }
}

static void on_disconnect(const redisAsyncContext *ac, int status)
{
    struct bconn *bc = ac->data;
    (void)status;
    bc->ac = NULL;
    bc->ready = false;
    bc->connecting = false;
    if (bc->b->started) {
        if (!bc->b->stopping) {
            schedule_reroute(bc->b);
        }
        return;
    }
    bc->b->dead++;
    if (bc->b->dead == bc->b->conns && !bc->b->finished) {
        bc->b->stopping = true;
        maybe_finish(bc->b);
        if (!bc->b->started) {
            bc->b->aborted = true;
            finish(bc->b);
        }
    }
}

/* Connect phase or drain took too long: fail what is left. */
static void on_guard(uv_timer_t *t)
{
    struct bench *b = t->data;
    if (!b->started) {
        fprintf(stderr, "ballot bench: connections not ready within %d ms\n",
                b->timeout_ms);
        b->aborted = true;
    } else {
        fprintf(stderr,
                "ballot bench: %llu replies still missing after %d ms: "
                "counted as failed\n",
                (unsigned long long)b->inflight, b->timeout_ms);
    }
    b->stopping = true;
    for (unsigned i = 0; i < b->conns; i++) {
        if (b->conn[i].ac != NULL) {
            redisAsyncContext *ac = b->conn[i].ac;
            b->conn[i].ready = false;
            b->conn[i].ac = NULL;
            redisAsyncFree(ac); /* callbacks get NULL: counted failed */
        }
    }
    if (!b->finished) {
        finish(b);
    }
}

static void finish(struct bench *b)
{
    b->finished = true;
    b->stopping = true;
    b->end_us = cli_now_us();
    uv_timer_stop(&b->tick);
    uv_timer_stop(&b->pace);
    uv_timer_stop(&b->guard);
    uv_timer_stop(&b->reroute);
    for (unsigned i = 0; i < b->conns; i++) {
        struct bconn *bc = &b->conn[i];
        if (bc->ac == NULL) {
            continue;
        }
        /* Freed, not disconnected: a disconnect waits for replies (and a
         * connect that never completes, whose poll error hiredis's libuv
         * adapter drops, waits forever), keeping the loop alive. Nothing
         * is in flight here but what the guard already gave up on. */
        redisAsyncContext *ac = bc->ac;
        bc->ac = NULL;
        bc->ready = false;
        bc->connecting = false;
        redisAsyncFree(ac);
    }
    uv_close((uv_handle_t *)&b->reroute, NULL);
    uv_close((uv_handle_t *)&b->tick, NULL);
    uv_close((uv_handle_t *)&b->pace, NULL);
    uv_close((uv_handle_t *)&b->guard, NULL);
}

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

/* The nearest-rank percentile of the sorted sample, in ms. */
static double pct(const struct bench *b, double p)
{
    size_t i;
    if (b->n_lat == 0) {
        return 0;
    }
    i = (size_t)ceil(p / 100.0 * (double)b->n_lat);
    i = i == 0 ? 0 : i - 1;
    return (double)b->lat[i < b->n_lat ? i : b->n_lat - 1] / 1000.0;
}

static double tv_s(struct timeval tv)
{
    return (double)tv.tv_sec + (double)tv.tv_usec / 1e6;
}

static void report(struct cli *cli, struct bench *b)
{
    struct rusage ru;
    double elapsed = (double)(b->end_us - b->start_us) / 1e6;
    double user, sys, tput;
    static const double ps[] = {50, 90, 99, 99.9};
    static const char *const pnames[] = {"p50", "p90", "p99", "p99_9"};
    getrusage(RUSAGE_SELF, &ru);
    user = tv_s(ru.ru_utime) - tv_s(b->ru0.ru_utime);
    sys = tv_s(ru.ru_stime) - tv_s(b->ru0.ru_stime);
    tput = elapsed > 0 ? (double)b->ok / elapsed : 0;
    qsort(b->lat, b->n_lat, sizeof(*b->lat), cmp_u32);
    if (cli->json) {
        cJSON *o = cJSON_CreateObject();
        cJSON *lat, *errs, *cpu, *eps;
        cJSON_AddStringToObject(o, "workload", workload_names[b->workload]);
        cJSON_AddStringToObject(o, "consistency", cli->stale ? "s" : "l");
        cJSON_AddNumberToObject(o, "clients", b->clients);
        cJSON_AddNumberToObject(o, "conns", b->conns);
        eps = cJSON_AddArrayToObject(o, "targets");
        for (unsigned i = 0; i < b->conns && i < cli->n_endpoints + 1; i++) {
            bool seen = false;
            for (unsigned j = 0; j < i; j++) {
                seen |= strcmp(b->conn[j].addr, b->conn[i].addr) == 0;
            }
            if (!seen) {
                cJSON_AddItemToArray(eps, cJSON_CreateString(b->conn[i].addr));
            }
        }
        cJSON_AddNumberToObject(o, "value_size", b->value_size);
        cJSON_AddNumberToObject(o, "key_space", (double)b->key_space);
        cJSON_AddStringToObject(o, "key_dist", dist_names[b->dist]);
        cJSON_AddNumberToObject(o, "sent", (double)b->sent);
        cJSON_AddNumberToObject(o, "succeeded", (double)b->ok);
        cJSON_AddNumberToObject(o, "failed", (double)b->failed);
        errs = cJSON_AddObjectToObject(o, "errors");
        for (int k = 0; k < ERR_KINDS; k++) {
            if (b->errors[k] > 0) {
                cJSON_AddNumberToObject(errs, err_kinds[k],
                                        (double)b->errors[k]);
            }
        }
        cJSON_AddNumberToObject(o, "leader_changes", b->leader_changes);
        cJSON *outs = cJSON_AddArrayToObject(o, "outages");
        double down_ms = 0;
        for (unsigned i = 0; i < b->n_outages; i++) {
            const struct outage *ou = &b->outages[i];
            cJSON *x = cJSON_CreateObject();
            double ms = (double)(ou->end_us - ou->start_us) / 1000.0;
            cJSON_AddNumberToObject(x, "start_s",
                                    (double)(ou->start_us - b->start_us) / 1e6);
            cJSON_AddNumberToObject(x, "ms", ms);
            cJSON_AddNumberToObject(x, "failed", (double)ou->failed);
            cJSON_AddItemToArray(outs, x);
            down_ms += ms;
        }
        cJSON_AddNumberToObject(o, "unavailable_ms", down_ms);
        cJSON_AddNumberToObject(o, "succeeded_since_last_outage",
                                (double)b->ok_since_outage);
        cJSON_AddNumberToObject(o, "elapsed_s", elapsed);
        cJSON_AddNumberToObject(o, "throughput", tput);
        lat = cJSON_AddObjectToObject(o, "latency_ms");
        cJSON_AddNumberToObject(
            lat, "mean",
            b->n_lat ? (double)b->lat_sum / (double)b->n_lat / 1000.0 : 0);
        for (int i = 0; i < 4; i++) {
            cJSON_AddNumberToObject(lat, pnames[i], pct(b, ps[i]));
        }
        cJSON_AddNumberToObject(lat, "max", pct(b, 100));
        cpu = cJSON_AddObjectToObject(o, "cpu");
        cJSON_AddNumberToObject(cpu, "user_s", user);
        cJSON_AddNumberToObject(cpu, "sys_s", sys);
        cJSON_AddNumberToObject(cpu, "percent_of_one_core",
                                elapsed > 0 ? (user + sys) / elapsed * 100 : 0);
        cli_print_json(o);
        return;
    }
    printf("workload %s%s, %u clients over %u connections\n",
           workload_names[b->workload],
           b->workload == W_GET || b->workload == W_MIXED
               ? (cli->stale ? " (stale reads)" : " (linearizable reads)")
               : "",
           b->clients, b->conns);
    printf("sent %llu, succeeded %llu, failed %llu in %.3f s\n",
           (unsigned long long)b->sent, (unsigned long long)b->ok,
           (unsigned long long)b->failed, elapsed);
    for (int k = 0; k < ERR_KINDS; k++) {
        if (b->errors[k] > 0) {
            printf("  errors %s: %llu\n", err_kinds[k],
                   (unsigned long long)b->errors[k]);
        }
    }
    for (unsigned i = 0; i < b->n_outages; i++) {
        const struct outage *ou = &b->outages[i];
        printf("  outage at %.3f s: %.1f ms without a success, %llu failed\n",
               (double)(ou->start_us - b->start_us) / 1e6,
               (double)(ou->end_us - ou->start_us) / 1000.0,
               (unsigned long long)ou->failed);
    }
    if (b->leader_changes > 0) {
        printf("  leader changes followed: %u (now %s)\n", b->leader_changes,
               b->leader);
    }
    printf("throughput %.0f req/s\n", tput);
    printf(
        "latency ms: mean %.3f  p50 %.3f  p90 %.3f  p99 %.3f  p99.9 %.3f  "
        "max %.3f\n",
        b->n_lat ? (double)b->lat_sum / (double)b->n_lat / 1000.0 : 0,
        pct(b, 50), pct(b, 90), pct(b, 99), pct(b, 99.9), pct(b, 100));
    printf("bench cpu: user %.2f s, sys %.2f s (%.0f%% of one core)\n", user,
           sys, elapsed > 0 ? (user + sys) / elapsed * 100 : 0);
}

/* Grants the leases 1..key-space that lease-keepalive renews (600 s, so
 * that none ends during a run), pipelined 1,000 at a time, unless an
 * earlier run did; a lease that already exists is fine. Returns 0 or -1. */
static int lease_setup(struct cli *cli, struct bench *b, const char *leader)
{
    redisContext *c = cli_connect_one(cli, leader);
    int rv = 0;
    char last_id[24];
    if (c == NULL) {
        return -1;
    }
    /* An earlier run granted them if the last one exists. */
    snprintf(last_id, sizeof(last_id), "%llu",
             (unsigned long long)b->key_space);
    const char *ttl[3] = {"BLEASE", "TTL", last_id};
    redisReply *t = cli_command_on(c, 3, ttl);
    bool done = t != NULL && t->type == REDIS_REPLY_ARRAY;
    if (t != NULL) {
        freeReplyObject(t);
    }
    for (uint64_t first = 1; !done && first <= b->key_space && rv == 0;
         first += 1000) {
        uint64_t last = first + 999 < b->key_space ? first + 999 : b->key_space;
        for (uint64_t id = first; id <= last; id++) {
            char ids[24];
            snprintf(ids, sizeof(ids), "%llu", (unsigned long long)id);
            const char *args[5] = {"BLEASE", "GRANT", "600000", "ID", ids};
            redisAppendCommandArgv(c, 5, args, NULL);
        }
        for (uint64_t id = first; id <= last; id++) {
            redisReply *r = NULL;
            if (redisGetReply(c, (void **)&r) != REDIS_OK || r == NULL) {
                rv = -1;
                break;
            }
            if (r->type == REDIS_REPLY_ERROR &&
                strstr(r->str, "already exists") == NULL) {
                snprintf(cli->errmsg, sizeof(cli->errmsg), "lease setup: %s",
                         r->str);
                rv = -1;
            }
            freeReplyObject(r);
        }
    }
    cli_conn_free(c);
    return rv;
}

/* Finds the leader's client address through the endpoints, asking them
 * in turn until @deadline_us (at least once). */
static int find_leader(struct cli *cli,
                       char *out,
                       size_t out_max,
                       uint64_t deadline_us)
{
    uint64_t deadline = deadline_us;
    const char *cmd[1] = {"BSTATUS"};
    do {
        for (unsigned i = 0; i < cli->n_endpoints; i++) {
            redisContext *c = cli_connect_one(cli, cli->endpoints[i]);
            redisReply *r;
            if (c == NULL) {
                continue;
            }
            r = cli_command_on(c, 1, cmd);
            if (r != NULL && r->type == REDIS_REPLY_ARRAY) {
                const char *role = NULL, *addr = NULL;
                for (size_t j = 0; j + 1 < r->elements; j += 2) {
                    redisReply *k = r->element[j], *v = r->element[j + 1];
                    if (strcmp(k->str, "role") == 0) {
                        role = v->str;
                    } else if (strcmp(k->str, "leader_addr") == 0 &&
                               v->type == REDIS_REPLY_STRING) {
                        addr = v->str;
                    }
                }
                if (role != NULL && strcmp(role, "leader") == 0) {
                    addr = cli->endpoints[i];
                }
                if (addr != NULL) {
                    snprintf(out, out_max, "%s", addr);
                    freeReplyObject(r);
                    cli_conn_free(c);
                    return 0;
                }
            }
            if (r != NULL) {
                freeReplyObject(r);
            }
            cli_conn_free(c);
        }
        if (cli_now_us() < deadline) {
            uv_sleep(100);
        }
    } while (cli_now_us() < deadline);
    snprintf(cli->errmsg, sizeof(cli->errmsg), "no leader found");
    return -1;
}

/* Connects @bc to @addr; its readiness check (PING, after AUTH and
 * READONLY as configured) calls on_ready(). */
static void conn_open(struct bench *b, struct bconn *bc, const char *addr)
{
    struct cli *cli = b->cli;
    char host[256];
    const char *colon = strrchr(addr, ':');
    const char *hello[1] = {"PING"};
    const char *ro[1] = {"READONLY"};
    bc->b = b;
    bc->ready = false;
    bc->connecting = true;
    bc->connect_us = cli_now_us();
    snprintf(bc->addr, sizeof(bc->addr), "%s", addr);
    snprintf(host, sizeof(host), "%.*s", colon ? (int)(colon - addr) : 0, addr);
    bc->ac = redisAsyncConnect(host, colon ? atoi(colon + 1) : 0);
    if (bc->ac == NULL || bc->ac->err) {
        if (!b->quiet) {
            fprintf(stderr, "ballot bench: %s: %s\n", addr,
                    bc->ac ? bc->ac->errstr : "out of memory");
        }
        bc->connecting = false;
        if (bc->ac != NULL) {
            redisAsyncFree(bc->ac);
            bc->ac = NULL;
        }
        if (b->started) {
            schedule_reroute(b);
        } else {
            b->dead++;
        }
        return;
    }
    bc->ac->data = bc;
    redisLibuvAttach(bc->ac, &b->loop);
    redisAsyncSetConnectCallback(bc->ac, on_connect);
    redisAsyncSetDisconnectCallback(bc->ac, on_disconnect);
    if (cli->password != NULL) {
        /* A refused AUTH shows in the readiness check's NOAUTH. */
        const char *auth[3] = {"AUTH"};
        int n = 1;
        if (cli->user != NULL) {
            auth[n++] = cli->user;
        }
        auth[n++] = cli->password;
        redisAsyncCommandArgv(bc->ac, NULL, NULL, n, auth, NULL);
    }
    if (cli->stale) {
        redisAsyncCommandArgv(bc->ac, NULL, NULL, 1, ro, NULL);
    }
    redisAsyncCommandArgv(bc->ac, on_ready, bc, 1, hello, NULL);
}

/* After failures, once the backoff has passed: ends the run if nothing has
 * succeeded for the timeout; else finds the leader again (a write load),
 * moves the connections that are lost or point elsewhere, and lets the
 * waiting clients send again. */
static void on_reroute(uv_timer_t *t)
{
    struct bench *b = t->data;
    uint64_t now = cli_now_us();
    b->reroute_due = false;
    if (b->stopping) {
        maybe_finish(b);
        return;
    }
    if (b->down && now - b->down_seen_us > (uint64_t)b->timeout_ms * 1000u) {
        if (!b->quiet) {
            fprintf(stderr,
                    "ballot bench: no request succeeded for %d ms: "
                    "ending the run\n",
                    b->timeout_ms);
        }
        b->stopping = true;
        uv_timer_start(&b->guard, on_guard, (uint64_t)b->timeout_ms, 0);
        maybe_finish(b);
        return;
    }
    b->backoff_ms = b->backoff_ms * 2 > BENCH_BACKOFF_MAX_MS
                        ? BENCH_BACKOFF_MAX_MS
                        : b->backoff_ms * 2;
    if (b->follow) {
        char addr[256];
        /* One pass over the endpoints; the backoff paces the next. */
        if (find_leader(b->cli, addr, sizeof(addr), now) != 0) {
            schedule_reroute(b);
            return;
        }
        if (strcmp(addr, b->leader) != 0) {
            b->leader_changes++;
            if (!b->quiet) {
                fprintf(stderr, "ballot bench: the leader is now %s\n", addr);
            }
            snprintf(b->leader, sizeof(b->leader), "%s", addr);
        }
    }
    for (unsigned i = 0; i < b->conns; i++) {
        struct bconn *bc = &b->conn[i];
        char want[256];
        snprintf(want, sizeof(want), "%s", b->follow ? b->leader : bc->addr);
        if (bc->ac != NULL && strcmp(bc->addr, want) == 0 &&
            (bc->ready || bc->connecting)) {
            continue; /* fine, or on its way */
        }
        if (bc->ac != NULL) {
            /* Its requests' callbacks run now, with no reply. */
            redisAsyncContext *ac = bc->ac;
            bc->ac = NULL;
            bc->ready = false;
            redisAsyncFree(ac);
        }
        conn_open(b, bc, want);
    }
    resume_waiting(b, NULL);
}

static int parse_opts(struct bench *b, int argc, char **argv)
{
    if (argc < 2) {
        return -1;
    }
    for (int i = 0; i < WORKLOADS; i++) {
        if (strcmp(argv[1], workload_names[i]) == 0) {
            b->workload = (enum workload)i;
            break;
        }
        if (i == WORKLOADS - 1) {
            return -1;
        }
    }
    for (int i = 2; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        uint64_t u;
        char *end;
        if (strcmp(a, "--target-leader") == 0) {
            b->target_leader = true;
            continue;
        }
        if (v == NULL) {
            return -1;
        }
        i++;
        if (strcmp(a, "--key-dist") == 0) {
            int d;
            for (d = 0; d < 3 && strcmp(v, dist_names[d]) != 0; d++) {
            }
            if (d == 3) {
                return -1;
            }
            b->dist = (enum key_dist)d;
        } else if (strcmp(a, "--key-prefix") == 0) {
            b->key_prefix = v;
        } else if (strcmp(a, "--ratio") == 0 || strcmp(a, "--duration") == 0 ||
                   strcmp(a, "--rate") == 0) {
            double d = strtod(v, &end);
            if (*end != '\0' || d < 0 || (strcmp(a, "--ratio") == 0 && d > 1)) {
                return -1;
            }
            if (strcmp(a, "--ratio") == 0) {
                b->ratio = d;
            } else if (strcmp(a, "--duration") == 0) {
                b->duration_s = d;
            } else {
                b->rate = d;
            }
        } else if (cli_parse_u64(v, &u) != 0) {
            return -1;
        } else if (strcmp(a, "--clients") == 0 && u > 0 &&
                   u <= BENCH_CLIENTS_MAX) {
            b->clients = (unsigned)u;
        } else if (strcmp(a, "--conns") == 0 && u > 0 && u <= BENCH_CONNS_MAX) {
            b->conns = (unsigned)u;
        } else if (strcmp(a, "--total") == 0) {
            b->total = u;
        } else if (strcmp(a, "--value-size") == 0 && u <= 1048576) {
            b->value_size = (unsigned)u;
        } else if (strcmp(a, "--key-space") == 0 && u > 0) {
            b->key_space = u;
        } else if (strcmp(a, "--block") == 0 && u > 0 && u <= 1000000) {
            snprintf(b->block_text, sizeof(b->block_text), "%llu",
                     (unsigned long long)u);
        } else {
            return -1;
        }
    }
    if (b->conns > b->clients) {
        b->conns = b->clients;
    }
    if (b->total == 0 && b->duration_s <= 0) {
        b->total = 10000;
    }
    return 0;
}

static int bench_main(struct cli *cli,
                      int argc,
                      char **argv,
                      struct cli_bench_result *res)
{
    struct bench *b = calloc(1, sizeof(*b));
    char leader[256] = "";
    uint64_t ks;
    int rc = CLI_OK;
    if (b == NULL) {
        return cli_fail(cli, CLI_UNAVAILABLE, "out of memory");
    }
    if (cli->tls) {
        /* Its load runs on libuv connections of its own, without TLS. */
        free(b);
        return cli_fail(cli, CLI_USAGE,
                        "bench does not speak TLS; measure a TLS cluster "
                        "with redis-benchmark --tls (tests/bench/compare.sh "
                        "TLS_MODE=1)");
    }
    b->clients = 1;
    b->conns = 1;
    b->value_size = 256;
    b->key_space = 1000000;
    b->ratio = 0.9;
    b->key_prefix = "k";
    snprintf(b->block_text, sizeof(b->block_text), "1");
    b->timeout_ms = cli->timeout_ms;
    b->quiet = res != NULL;
    b->rng = 0x9e3779b97f4a7c15ull ^ cli_now_us();
    if (parse_opts(b, argc, argv) != 0) {
        free(b);
        return cli_usage(argv[0]);
    }
    for (ks = b->key_space - 1, b->key_digits = 1; ks >= 10; ks /= 10) {
        b->key_digits++;
    }
    if (b->dist == D_ZIPFIAN) {
        zipf_init(b);
    }
    b->value = malloc(b->value_size + 1);
    b->conn = calloc(b->conns, sizeof(*b->conn));
    b->client = calloc(b->clients, sizeof(*b->client));
    if (b->value == NULL || b->conn == NULL || b->client == NULL) {
        rc = cli_fail(cli, CLI_UNAVAILABLE, "out of memory");
        goto out;
    }
    b->cli = cli;
    b->follow = b->workload != W_GET || b->target_leader;
    b->backoff_ms = BENCH_BACKOFF_MIN_MS;
    if (b->follow &&
        find_leader(cli, leader, sizeof(leader),
                    cli_now_us() + (uint64_t)cli->timeout_ms * 1000u) != 0) {
        rc = cli_fail(cli, CLI_UNAVAILABLE, "%s", cli->errmsg);
        goto out;
    }
    snprintf(b->leader, sizeof(b->leader), "%s", leader);
    if (b->workload == W_LEASE_KEEPALIVE && lease_setup(cli, b, leader) != 0) {
        rc = cli_fail(cli, CLI_REJECTED, "%s", cli->errmsg);
        goto out;
    }
    uv_loop_init(&b->loop);
    uv_timer_init(&b->loop, &b->tick);
    uv_timer_init(&b->loop, &b->pace);
    uv_timer_init(&b->loop, &b->guard);
    uv_timer_init(&b->loop, &b->reroute);
    b->tick.data = b->pace.data = b->guard.data = b->reroute.data = b;
    /* The guard's callback is set here; more_to_send() restarts it. */
    uv_timer_start(&b->guard, on_guard, (uint64_t)b->timeout_ms, 0);
    for (unsigned i = 0; i < b->conns; i++) {
        conn_open(b, &b->conn[i],
                  leader[0] ? leader : cli->endpoints[i % cli->n_endpoints]);
    }
    for (unsigned i = 0; i < b->clients; i++) {
        b->client[i].b = b;
        b->client[i].conn = &b->conn[i % b->conns];
    }
    /* The guard timer is restarted by more_to_send() with the drain
     * timeout; re-arm its callback there through the handle. */
    uv_run(&b->loop, UV_RUN_DEFAULT);
    if (!b->finished) {
        finish(b);
        uv_run(&b->loop, UV_RUN_DEFAULT);
    }
    if (uv_loop_close(&b->loop) != 0) {
        fprintf(stderr, "ballot bench: event loop not closed cleanly\n");
    }
    if (b->aborted || !b->started) {
        rc = cli_fail(cli, CLI_UNAVAILABLE, "could not connect to %s",
                      leader[0] ? leader : "the endpoints");
        goto out;
    }
    if (res != NULL) {
        double elapsed = (double)(b->end_us - b->start_us) / 1e6;
        qsort(b->lat, b->n_lat, sizeof(*b->lat), cmp_u32);
        res->ok = b->ok;
        res->failed = b->failed;
        res->elapsed_s = elapsed;
        res->throughput = elapsed > 0 ? (double)b->ok / elapsed : 0;
        res->p99_ms = pct(b, 99);
    } else {
        report(cli, b);
    }
    rc = b->failed > 0 ? CLI_REJECTED : CLI_OK;
out:
    free(b->value);
    free(b->conn);
    free(b->client);
    free(b->lat);
    free(b);
    return rc;
}

int cmd_bench(struct cli *cli, int argc, char **argv)
{
    return bench_main(cli, argc, argv, NULL);
}

int cli_bench_run(struct cli *cli,
                  int argc,
                  char **argv,
                  struct cli_bench_result *out)
{
    memset(out, 0, sizeof(*out));
    return bench_main(cli, argc, argv, out);
}
