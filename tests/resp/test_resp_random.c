/*
 * test_resp_random.c - seeded random requests for the parser.
 *
 * Valid pipelines of multibulk and inline requests with arbitrary bytes are
 * parsed in random chunkings and must give back exactly the generated argv.
 * Mutated pipelines (bytes flipped, inserted, deleted, lengths garbled) may
 * parse to anything, but must never crash (the ASan build checks memory)
 * and must give the same result in random chunks as in one piece.
 *
 * Each case has its own seed, printed on failure; BALLOT_RESP_SEED=N runs
 * only case N, BALLOT_RESP_CASES sets how many cases run.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "helpers.h"

#define ARGS_MAX 24
#define ARG_BYTES_MAX 600

/* One generated pipeline: the bytes on the wire and what must come out. */
struct pipeline
{
    struct transcript wire;
    struct transcript want;
};

static void gen_arg(struct rng *r, char *arg, size_t *len)
{
    size_t n;
    switch (rng_below(r, 8)) {
    case 0:
        n = 0;
        break;
    case 1:
        n = rng_below(r, ARG_BYTES_MAX + 1);
        break;
    default:
        n = 1 + rng_below(r, 12);
        break;
    }
    bool binary = rng_below(r, 3) == 0;
    for (size_t i = 0; i < n; i++) {
        if (binary) {
            arg[i] = (char)(unsigned char)rng_below(r, 256);
        } else {
            arg[i] = (char)('a' + rng_below(r, 26));
        }
    }
    *len = n;
}

static bool is_plain(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
           (c >= '0' && c <= '9');
}

/* Writes one argument of an inline command: bare if it is a plain word,
 * otherwise in quotes with every other byte escaped. */
static void put_inline_arg(struct rng *r,
                           struct transcript *w,
                           const char *arg,
                           size_t len)
{
    bool plain = len > 0;
    for (size_t i = 0; i < len; i++) {
        plain = plain && is_plain(arg[i]);
    }
    if (plain && rng_below(r, 4) != 0) {
        transcript_put(w, arg, len);
        return;
    }
    transcript_put(w, "\"", 1);
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)arg[i];
        char esc[8];
        if (is_plain(arg[i])) {
            transcript_put(w, &arg[i], 1);
        } else if (c == '"' || c == '\\') {
            esc[0] = '\\';
            esc[1] = arg[i];
            transcript_put(w, esc, 2);
        } else {
            int n = snprintf(esc, sizeof(esc), "\\x%02x", c);
            transcript_put(w, esc, (size_t)n);
        }
    }
    transcript_put(w, "\"", 1);
}

/* Generates @n requests into @pl, both forms mixed with empty ones. */
static void gen_pipeline(struct rng *r, size_t n, struct pipeline *pl)
{
    static char args[ARGS_MAX][ARG_BYTES_MAX];
    const char *argv[ARGS_MAX];
    size_t argvlen[ARGS_MAX];
    struct resp_buf enc;

    ck_assert_int_eq(resp_buf_init(&enc, 1u << 20, 2, NULL), 0);
    transcript_init(&pl->wire);
    transcript_init(&pl->want);
    for (size_t q = 0; q < n; q++) {
        size_t kind = rng_below(r, 10);
        if (kind == 0) {
            static const char *const empty[] = {"*0\r\n", "*-1\r\n", "\r\n",
                                                " \t\n"};
            const char *e = empty[rng_below(r, 4)];
            transcript_put(&pl->wire, e, strlen(e));
            continue;
        }
        size_t argc = 1 + (rng_below(r, 4) == 0 ? rng_below(r, ARGS_MAX)
                                                : rng_below(r, 4));
        for (size_t i = 0; i < argc; i++) {
            gen_arg(r, args[i], &argvlen[i]);
            argv[i] = args[i];
        }
        bool inline_form = kind <= 3;
        transcript_request(&pl->want, argc, argv, argvlen, inline_form);
        if (!inline_form) {
            ck_assert_int_eq(resp_encode_array(&enc, argc), 0);
            for (size_t i = 0; i < argc; i++) {
                ck_assert_int_eq(resp_encode_bulk(&enc, argv[i], argvlen[i]),
                                 0);
            }
            transcript_put(&pl->wire, enc.data, enc.len);
            resp_buf_consume(&enc, enc.len);
            continue;
        }
        for (size_t i = 0; i < argc; i++) {
            if (i > 0 || rng_below(r, 4) == 0) {
                transcript_put(&pl->wire, rng_below(r, 2) ? " " : "\t", 1);
            }
            put_inline_arg(r, &pl->wire, argv[i], argvlen[i]);
        }
        if (rng_below(r, 2)) {
            transcript_put(&pl->wire, "\r", 1);
        }
        transcript_put(&pl->wire, "\n", 1);
    }
    resp_buf_close(&enc);
}

static void pipeline_close(struct pipeline *pl)
{
    transcript_close(&pl->wire);
    transcript_close(&pl->want);
}

/* Random cut points: sometimes none, sometimes one per byte. */
static size_t gen_cuts(struct rng *r, size_t len, size_t *cuts)
{
    size_t n;
    switch (rng_below(r, 4)) {
    case 0:
        return 0;
    case 1:
        for (size_t i = 0; i < len; i++) {
            cuts[i] = i;
        }
        return len;
    default:
        n = rng_below(r, 1 + (len < 64 ? len : 64));
        break;
    }
    for (size_t i = 0; i < n; i++) {
        cuts[i] = rng_below(r, len + 1);
    }
    /* Insertion sort: n is small. */
    for (size_t i = 1; i < n; i++) {
        for (size_t j = i; j > 0 && cuts[j - 1] > cuts[j]; j--) {
            size_t t = cuts[j];
            cuts[j] = cuts[j - 1];
            cuts[j - 1] = t;
        }
    }
    return n;
}

static void mutate(struct rng *r, char *buf, size_t *len, size_t cap)
{
    size_t rounds = 1 + rng_below(r, 4);
    for (size_t k = 0; k<rounds && * len> 0; k++) {
        size_t at = rng_below(r, *len);
        switch (rng_below(r, 6)) {
        case 0: /* a byte changes */
            buf[at] = (char)(unsigned char)rng_below(r, 256);
            break;
        case 1: /* a byte is lost */
            memmove(buf + at, buf + at + 1, *len - at - 1);
            (*len)--;
            break;
        case 2: /* a byte appears */
            if (*len < cap) {
                memmove(buf + at + 1, buf + at, *len - at);
                buf[at] = "*$\r\n-0123456789\" '\\x"[rng_below(r, 20)];
                (*len)++;
            }
            break;
        case 3: /* a length or count goes wild */
            if (*len + 24 <= cap) {
                const char *n = rng_below(r, 2) ? "99999999999999999999"
                                                : "-9223372036854775808";
                size_t nl = strlen(n) - rng_below(r, 10);
                memmove(buf + at + nl, buf + at, *len - at);
                memcpy(buf + at, n, nl);
                *len += nl;
            }
            break;
        case 4: /* the stream ends early */
            *len = at;
            break;
        default: /* a control byte lands in the middle */
            buf[at] = rng_below(r, 2) ? '\r' : '\n';
            break;
        }
    }
}

static unsigned long env_ulong(const char *name, unsigned long dflt)
{
    const char *v = getenv(name);
    return v != NULL ? strtoul(v, NULL, 10) : dflt;
}

static void run_cases(bool mutated)
{
    unsigned long ncases = env_ulong("BALLOT_RESP_CASES", 1500);
    unsigned long only = env_ulong("BALLOT_RESP_SEED", 0);
    unsigned long first = only != 0 ? only : 1;
    unsigned long last = only != 0 ? only : ncases;

    for (unsigned long seed = first; seed <= last; seed++) {
        struct rng r;
        rng_seed(&r, seed * 2 + (mutated ? 1 : 0));
        struct pipeline pl;
        gen_pipeline(&r, 1 + rng_below(&r, 24), &pl);

        struct resp_limits lim;
        resp_limits_default(&lim);
        if (mutated && rng_below(&r, 3) == 0) {
            /* Tight limits send mutated input down the limit paths. */
            lim.args_max = 1 + rng_below(&r, 8);
            lim.bulk_bytes_max = 1 + rng_below(&r, 64);
            lim.inline_bytes_max = 1 + rng_below(&r, 128);
            lim.request_bytes_max = 1 + rng_below(&r, 256);
        }
        size_t cap = pl.wire.len + 256;
        char *in = malloc(cap);
        size_t *cuts = malloc((cap + 1) * sizeof(*cuts));
        ck_assert_ptr_nonnull(in);
        ck_assert_ptr_nonnull(cuts);
        size_t len = pl.wire.len;
        memcpy(in, pl.wire.data, len);
        if (mutated) {
            mutate(&r, in, &len, cap);
        }

        struct transcript whole;
        struct transcript chunked;
        transcript_init(&whole);
        transcript_init(&chunked);
        int rc = feed(&lim, NULL, in, len, NULL, 0, &whole);
        size_t ncuts = gen_cuts(&r, len, cuts);
        feed(&lim, NULL, in, len, cuts, ncuts, &chunked);

        if (!mutated) {
            /* The whole pipeline parses back to what was generated. */
            char end[32];
            int n = snprintf(end, sizeof(end), "E%dP0", RESP_INCOMPLETE);
            transcript_put(&pl.want, end, (size_t)n);
            ck_assert_msg(
                rc == RESP_INCOMPLETE && transcript_equal(&whole, &pl.want),
                "valid case %lu does not parse back "
                "(BALLOT_RESP_SEED=%lu)",
                seed, seed);
        }
        ck_assert_msg(transcript_equal(&whole, &chunked),
                      "%s case %lu depends on chunking "
                      "(BALLOT_RESP_SEED=%lu)",
                      mutated ? "mutated" : "valid", seed, seed);

        transcript_close(&whole);
        transcript_close(&chunked);
        free(cuts);
        free(in);
        pipeline_close(&pl);
    }
}

/* Valid pipelines parse back to their argv in any chunking. */
START_TEST(test_random_valid_requests_parse_back)
{
    run_cases(false);
}
END_TEST

/* Mutated pipelines never crash and do not depend on chunking. */
START_TEST(test_random_mutated_requests_are_handled)
{
    run_cases(true);
}
END_TEST

static Suite *random_suite(void)
{
    Suite *s = suite_create("resp_random");
    TCase *tc = tcase_create("random");
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, test_random_valid_requests_parse_back);
    tcase_add_test(tc, test_random_mutated_requests_are_handled);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(random_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
