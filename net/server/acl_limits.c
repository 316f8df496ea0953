/*
 * acl_limits.c - admission control (see acl.h): token buckets per
 * connection and per user, on requests and on request bytes.
 *
 * A bucket holds at most one second's worth of its rate and refills
 * continuously. A request needs one whole request token and a positive
 * byte balance; it then takes one request and its bytes, so the byte
 * balance may go below zero: a request larger than a second's worth still
 * passes once the bucket is full, and later ones wait until the debt is
 * paid. Refused requests take nothing, so a client that retries after the
 * time it was told gets through.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "acl.h"

struct user_bucket
{
    char name[KV_ACL_NAME_MAX + 1];
    struct acl_bucket b;
};

struct acl_limits
{
    struct user_bucket *users;
    size_t n;
    size_t cap;
};

int acl_limits_init(struct cmd_env *env)
{
    env->limits = calloc(1, sizeof(*env->limits));
    return env->limits != NULL ? 0 : -1;
}

void acl_limits_close(struct cmd_env *env)
{
    if (env->limits != NULL) {
        free(env->limits->users);
        free(env->limits);
        env->limits = NULL;
    }
}

/* Without libm: the library that embeds the server links no more than
 * it must. */
static double dmin(double a, double b)
{
    return a < b ? a : b;
}

static double dmax(double a, double b)
{
    return a > b ? a : b;
}

static uint64_t now_us(void)
{
    return uv_hrtime() / 1000u;
}

/* Refills @b for the time since it was last used, up to one second of
 * each rate (a rate of 0 is no limit). */
static void refill(struct acl_bucket *b,
                   uint64_t req_rate,
                   uint64_t byte_rate,
                   uint64_t now)
{
    if (b->last_us == 0) {
        b->requests = (double)req_rate;
        b->bytes = (double)byte_rate;
    } else {
        double s = (double)(now - b->last_us) / 1e6;
        b->requests =
            dmin((double)req_rate, b->requests + s * (double)req_rate);
        b->bytes = dmin((double)byte_rate, b->bytes + s * (double)byte_rate);
    }
    b->last_us = now;
}

/* Milliseconds until @b can take a request (0: now). */
static uint64_t wait_ms(const struct acl_bucket *b,
                        uint64_t req_rate,
                        uint64_t byte_rate)
{
    double ms = 0;
    if (req_rate > 0 && b->requests < 1.0) {
        ms = dmax(ms, (1.0 - b->requests) * 1000.0 / (double)req_rate);
    }
    if (byte_rate > 0 && b->bytes <= 0.0) {
        /* The balance must become positive: one byte past the debt. */
        ms = dmax(ms, (1.0 - b->bytes) * 1000.0 / (double)byte_rate);
    }
    uint64_t whole = (uint64_t)ms;
    return (double)whole < ms ? whole + 1 : whole;
}

static void take(struct acl_bucket *b,
                 uint64_t req_rate,
                 uint64_t byte_rate,
                 size_t bytes)
{
    if (req_rate > 0) {
        b->requests -= 1.0;
    }
    if (byte_rate > 0) {
        b->bytes -= (double)bytes;
    }
}

static struct acl_bucket *user_bucket(struct acl_limits *l, const char *name)
{
    for (size_t i = 0; i < l->n; i++) {
        if (strcmp(l->users[i].name, name) == 0) {
            return &l->users[i].b;
        }
    }
    if (l->n == SERVER_RATE_USERS_MAX) {
        /* Start over rather than grow without bound: users are few, and a
         * forgotten bucket only means a full one. */
        l->n = 0;
    }
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 16;
        void *p = realloc(l->users, cap * sizeof(*l->users));
        if (p == NULL) {
            return NULL;
        }
        l->users = p;
        l->cap = cap;
    }
    struct user_bucket *u = &l->users[l->n++];
    memset(u, 0, sizeof(*u));
    snprintf(u->name, sizeof(u->name), "%s", name);
    return &u->b;
}

bool acl_admit(struct cmd_req *r, const struct resp_request *req)
{
    struct cmd_client *c = r->client;
    struct cmd_env *env = c->env;
    const struct server_options *o = &env->opts;
    bool conn_on = o->rate_conn_requests > 0 || o->rate_conn_bytes > 0;
    bool user_on = o->rate_user_requests > 0 || o->rate_user_bytes > 0;
    if (!conn_on && !user_on) {
        return true;
    }
    size_t bytes = 0;
    for (size_t i = 0; i < req->argc; i++) {
        bytes += req->argvlen[i];
    }
    uint64_t now = now_us();
    uint64_t conn_wait = 0, user_wait = 0;
    struct acl_bucket *ub = NULL;
    if (conn_on) {
        refill(&c->bucket, o->rate_conn_requests, o->rate_conn_bytes, now);
        conn_wait =
            wait_ms(&c->bucket, o->rate_conn_requests, o->rate_conn_bytes);
    }
    if (user_on) {
        ub = user_bucket(env->limits, c->user[0] ? c->user : "default");
        if (ub != NULL) {
            refill(ub, o->rate_user_requests, o->rate_user_bytes, now);
            user_wait = wait_ms(ub, o->rate_user_requests, o->rate_user_bytes);
        }
    }
    if (conn_wait > 0 || user_wait > 0) {
        bool by_user = user_wait > conn_wait;
        if (by_user) {
            env->rate_limited_user++;
        } else {
            env->rate_limited_conn++;
        }
        rep_errorf(r,
                   "RATELIMITED rate limited (%s), not run: retry after "
                   "%llu ms",
                   by_user ? "this user's requests"
                           : "this connection's "
                             "requests",
                   (unsigned long long)(by_user ? user_wait : conn_wait));
        return false;
    }
    if (conn_on) {
        take(&c->bucket, o->rate_conn_requests, o->rate_conn_bytes, bytes);
    }
    if (ub != NULL) {
        take(ub, o->rate_user_requests, o->rate_user_bytes, bytes);
    }
    return true;
}
