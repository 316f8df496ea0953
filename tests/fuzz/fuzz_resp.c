/*
 * fuzz_resp.c - libFuzzer target for the RESP request parser.
 *
 * The first input byte picks the limits (tight ones reach the limit paths
 * with short inputs) and how the rest is split into reads. Three properties
 * are checked on every input:
 *
 *   1. parsing never crashes or leaks (ASan, LeakSanitizer);
 *   2. the outcome does not depend on how the bytes were split into reads;
 *   3. every request parsed, encoded again as a multibulk array with the
 *      reply encoder, parses back to the same arguments.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "resp.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* A growable record of a run's requests and outcome, compared with memcmp. */
struct record
{
    char *data;
    size_t len;
    size_t cap;
};

static void record_put(struct record *r, const void *p, size_t n)
{
    if (r->cap - r->len < n) {
        size_t want = r->cap < 256 ? 256 : r->cap;
        while (want - r->len < n) {
            want *= 2;
        }
        char *fresh = realloc(r->data, want);
        if (fresh == NULL) {
            abort();
        }
        r->data = fresh;
        r->cap = want;
    }
    if (n > 0) {
        memcpy(r->data + r->len, p, n);
    }
    r->len += n;
}

static void record_request(struct record *r, const struct resp_request *req)
{
    record_put(r, &req->argc, sizeof(req->argc));
    for (size_t i = 0; i < req->argc; i++) {
        record_put(r, &req->argvlen[i], sizeof(req->argvlen[i]));
        record_put(r, req->argv[i], req->argvlen[i]);
    }
}

/* Encodes @req as a multibulk array, parses it alone and checks that the
 * same arguments come back. */
static void check_round_trip(const struct resp_request *req)
{
    struct resp_buf b;
    struct resp_parser p;
    struct resp_request again;
    size_t used;

    if (resp_buf_init(&b, SIZE_MAX, 2, NULL) != 0 ||
        resp_encode_array(&b, req->argc) != 0) {
        abort();
    }
    for (size_t i = 0; i < req->argc; i++) {
        if (resp_encode_bulk(&b, req->argv[i], req->argvlen[i]) != 0) {
            abort();
        }
    }
    if (resp_parser_init(&p, NULL, NULL) != 0) {
        abort();
    }
    int rc = resp_parse(&p, b.data, b.len, &again, &used);
    if (rc != 0 || used != b.len || again.argc != req->argc ||
        again.inline_form) {
        fprintf(stderr, "round trip failed: rc %d\n", rc);
        abort();
    }
    for (size_t i = 0; i < req->argc; i++) {
        if (again.argvlen[i] != req->argvlen[i] ||
            (req->argvlen[i] > 0 &&
             memcmp(again.argv[i], req->argv[i], req->argvlen[i]) != 0)) {
            fprintf(stderr, "round trip changed argument %zu\n", i);
            abort();
        }
    }
    resp_parser_close(&p);
    resp_buf_close(&b);
}

/* Feeds @in to a fresh parser in pieces of @step bytes (0: all at once),
 * copying the unconsumed bytes to a new buffer on each read as a server
 * would, and records what came out. */
static void run(const struct resp_limits *lim,
                const char *in,
                size_t len,
                size_t step,
                struct record *out,
                bool round_trip)
{
    struct resp_parser p;
    char *pending = NULL;
    size_t plen = 0;
    size_t sent = 0;
    int rc = RESP_INCOMPLETE;

    if (resp_parser_init(&p, lim, NULL) != 0) {
        abort();
    }
    while (rc == RESP_INCOMPLETE && sent < len) {
        size_t n = step == 0 || len - sent < step ? len - sent : step;
        char *fresh = malloc(plen + n);
        if (fresh == NULL) {
            abort();
        }
        if (plen > 0) {
            memcpy(fresh, pending, plen);
        }
        memcpy(fresh + plen, in + sent, n);
        free(pending);
        pending = fresh;
        plen += n;
        sent += n;
        for (;;) {
            struct resp_request req;
            size_t used;
            rc = resp_parse(&p, pending, plen, &req, &used);
            if (used > plen) {
                abort();
            }
            if (rc == 0) {
                if (req.argc == 0) {
                    abort();
                }
                record_request(out, &req);
                if (round_trip) {
                    check_round_trip(&req);
                }
            }
            memmove(pending, pending + used, plen - used);
            plen -= used;
            if (rc != 0) {
                break;
            }
        }
    }
    /* Bytes never consumed, whether or not they were read before an error
     * stopped the run. */
    size_t left = plen + (len - sent);
    record_put(out, &rc, sizeof(rc));
    record_put(out, &left, sizeof(left));
    const char *msg = resp_parser_errmsg(&p);
    record_put(out, msg, strlen(msg));
    free(pending);
    resp_parser_close(&p);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0) {
        return 0;
    }
    struct resp_limits lim;
    resp_limits_default(&lim);
    uint8_t mode = data[0];
    if (mode & 1u) {
        lim.args_max = 1u + (mode >> 5);
        lim.bulk_bytes_max = 1u + ((mode >> 1) & 15u) * 4u;
        lim.inline_bytes_max = 1u + ((mode >> 3) & 7u) * 8u;
        lim.request_bytes_max = 8u + (mode >> 2) * 2u;
    }
    size_t step = 1u + ((mode >> 4) & 7u);
    const char *in = (const char *)data + 1;
    size_t len = size - 1;

    struct record whole = {0};
    struct record pieces = {0};
    run(&lim, in, len, 0, &whole, true);
    run(&lim, in, len, step, &pieces, false);
    if (whole.len != pieces.len ||
        memcmp(whole.data, pieces.data, whole.len) != 0) {
        fprintf(stderr, "result depends on reads of %zu bytes\n", step);
        abort();
    }
    free(whole.data);
    free(pieces.data);
    return 0;
}
