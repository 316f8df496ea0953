/*
 * test_resp_parse.c - the request parser: both request forms, inline
 * quoting, pipelining, every split of the input, the limits at and one past
 * their bounds, hostile lengths, binary data and allocation failures.
 *
 * Most tests go through check_parse(), which feeds the input whole, byte by
 * byte and split in two at every position, and demands the same transcript
 * from each: the parser's answer must never depend on how reads fell.
 */
#include <check.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "helpers.h"

/* A string literal and its length, NUL bytes included. */
#define S(lit) (lit), (sizeof(lit) - 1)

static struct resp_limits small_limits(void)
{
    struct resp_limits l = {.args_max = 4,
                            .bulk_bytes_max = 8,
                            .inline_bytes_max = 16,
                            .request_bytes_max = 64};
    return l;
}

/* Appends one expected request made of NUL-terminated arguments. */
static void want_req(struct transcript *t, bool inline_form, size_t argc, ...)
{
    const char *argv[16];
    size_t argvlen[16];
    va_list ap;
    ck_assert_uint_le(argc, 16);
    va_start(ap, argc);
    for (size_t i = 0; i < argc; i++) {
        argv[i] = va_arg(ap, const char *);
        argvlen[i] = strlen(argv[i]);
    }
    va_end(ap);
    transcript_request(t, argc, argv, argvlen, inline_form);
}

/* Appends the expected end of a run: the final code, then the bytes left
 * waiting (for RESP_INCOMPLETE) or the error reply. */
static void want_end(struct transcript *t,
                     int rc,
                     size_t pending,
                     const char *msg)
{
    char text[64];
    int n = snprintf(text, sizeof(text), "E%d", rc);
    transcript_put(t, text, (size_t)n);
    if (rc == RESP_INCOMPLETE) {
        n = snprintf(text, sizeof(text), "P%zu", pending);
        transcript_put(t, text, (size_t)n);
    } else {
        transcript_put(t, msg, strlen(msg));
    }
}

static void dump(const char *what, const struct transcript *t)
{
    fprintf(stderr, "%s: ", what);
    for (size_t i = 0; i < t->len; i++) {
        unsigned char c = (unsigned char)t->data[i];
        if (c >= 0x20 && c < 0x7f) {
            fputc(c, stderr);
        } else {
            fprintf(stderr, "\\x%02x", c);
        }
    }
    fputc('\n', stderr);
}

static void check_run(const struct resp_limits *lim,
                      const char *in,
                      size_t len,
                      const size_t *cuts,
                      size_t ncuts,
                      const struct transcript *want,
                      const char *how)
{
    struct transcript got;
    transcript_init(&got);
    feed(lim, NULL, in, len, cuts, ncuts, &got);
    if (!transcript_equal(&got, want)) {
        dump("want", want);
        dump("got ", &got);
        ck_abort_msg("parse differs when fed %s", how);
    }
    transcript_close(&got);
}

/* Feeds @in whole, byte by byte, and in two pieces split at every offset;
 * every run must produce @want. Consumes @want. */
static void check_parse(const struct resp_limits *lim,
                        const char *in,
                        size_t len,
                        struct transcript *want)
{
    check_run(lim, in, len, NULL, 0, want, "whole");
    size_t *cuts = malloc((len + 1) * sizeof(*cuts));
    ck_assert_ptr_nonnull(cuts);
    for (size_t i = 0; i < len; i++) {
        cuts[i] = i;
    }
    check_run(lim, in, len, cuts, len, want, "byte by byte");
    for (size_t i = 0; i <= len; i++) {
        char how[48];
        snprintf(how, sizeof(how), "split at %zu", i);
        check_run(lim, in, len, &i, 1, want, how);
    }
    free(cuts);
    transcript_close(want);
}

/* Checks that @in fails with @rc and the reply text @msg. */
static void check_error(const struct resp_limits *lim,
                        const char *in,
                        size_t len,
                        int rc,
                        const char *msg)
{
    struct transcript want;
    transcript_init(&want);
    want_end(&want, rc, 0, msg);
    check_parse(lim, in, len, &want);
}

/* ---------------------------------------------------------------------- */
/* Request forms                                                           */

/* A SET sent as an array of bulk strings comes back as its three args. */
START_TEST(test_parse_reads_multibulk_request)
{
    struct transcript want;
    transcript_init(&want);
    want_req(&want, false, 3, "SET", "key", "value");
    want_end(&want, RESP_INCOMPLETE, 0, NULL);
    check_parse(NULL, S("*3\r\n$3\r\nSET\r\n$3\r\nkey\r\n$5\r\nvalue\r\n"),
                &want);
}
END_TEST

/* "$0" is an empty argument, not a missing one. */
START_TEST(test_parse_reads_empty_bulk_argument)
{
    struct transcript want;
    transcript_init(&want);
    want_req(&want, false, 2, "SET", "");
    want_end(&want, RESP_INCOMPLETE, 0, NULL);
    check_parse(NULL, S("*2\r\n$3\r\nSET\r\n$0\r\n\r\n"), &want);
}
END_TEST

/* "*0", "*-1" and other counts below one are empty requests that are
 * skipped, so the PING after them is the first request. */
START_TEST(test_parse_skips_empty_and_negative_multibulk)
{
    struct transcript want;
    transcript_init(&want);
    want_req(&want, false, 1, "PING");
    want_end(&want, RESP_INCOMPLETE, 0, NULL);
    check_parse(NULL,
                S("*0\r\n*-1\r\n*-10\r\n*-9223372036854775808\r\n"
                  "*1\r\n$4\r\nPING\r\n"),
                &want);
}
END_TEST

/* Inline commands end with "\r\n" or a bare "\n" and split on any run of
 * white space. */
START_TEST(test_parse_reads_inline_requests)
{
    struct transcript want;
    transcript_init(&want);
    want_req(&want, true, 3, "SET", "k", "v");
    want_req(&want, true, 1, "PING");
    want_req(&want, true, 2, "GET", "k");
    want_req(&want, true, 3, "a", "b", "c");
    want_end(&want, RESP_INCOMPLETE, 0, NULL);
    check_parse(NULL, S("SET k v\r\nPING\n  GET \t  k  \r\na\vb\fc\r\n"),
                &want);
}
END_TEST

/* Blank lines, even with white space, are skipped like Redis does. */
START_TEST(test_parse_skips_blank_inline_lines)
{
    struct transcript want;
    transcript_init(&want);
    want_req(&want, true, 1, "PING");
    want_end(&want, RESP_INCOMPLETE, 0, NULL);
    check_parse(NULL, S("\r\n\n   \r\n\t\nPING\r\n"), &want);
}
END_TEST

/* A request whose end has not arrived is kept whole for the next call. */
START_TEST(test_parse_keeps_partial_request_unconsumed)
{
    struct transcript want;
    transcript_init(&want);
    want_req(&want, false, 1, "A");
    want_end(&want, RESP_INCOMPLETE, 12, NULL);
    check_parse(NULL, S("*1\r\n$1\r\nA\r\n*2\r\n$1\r\nB\r\n$"), &want);
}
END_TEST

/* ---------------------------------------------------------------------- */
/* Inline quoting                                                          */

/* Double quotes keep spaces and understand \xHH, \n, \r, \t, \b, \a, and a
 * backslash before any other byte stands for that byte. */
START_TEST(test_parse_inline_double_quotes_unescape)
{
    struct transcript want;
    transcript_init(&want);
    want_req(&want, true, 3, "SET", "a b", "Az\n\t\r\b\a\"\\q");
    want_end(&want, RESP_INCOMPLETE, 0, NULL);
    check_parse(NULL,
                S("SET \"a b\" \"\\x41\\x7a\\n\\t\\r\\b\\a\\\"\\\\\\q\"\n"),
                &want);
}
END_TEST

/* \x needs two hex digits; otherwise the x is just an escaped x. */
START_TEST(test_parse_inline_short_hex_escape_is_literal)
{
    struct transcript want;
    transcript_init(&want);
    want_req(&want, true, 3, "x4", "xZZ", "\xff");
    want_end(&want, RESP_INCOMPLETE, 0, NULL);
    check_parse(NULL, S("\"\\x4\" \"\\xZZ\" \"\\xfF\"\n"), &want);
}
END_TEST

/* Single quotes only understand \' and keep every other byte. */
START_TEST(test_parse_inline_single_quotes)
{
    struct transcript want;
    transcript_init(&want);
    want_req(&want, true, 3, "it's", "a\\nb", "say \"hi\"");
    want_end(&want, RESP_INCOMPLETE, 0, NULL);
    check_parse(NULL, S("'it\\'s' 'a\\nb' 'say \"hi\"'\r\n"), &want);
}
END_TEST

/* "" and '' are empty arguments. */
START_TEST(test_parse_inline_empty_quoted_arguments)
{
    struct transcript want;
    transcript_init(&want);
    want_req(&want, true, 3, "SET", "", "");
    want_end(&want, RESP_INCOMPLETE, 0, NULL);
    check_parse(NULL, S("SET \"\" ''\n"), &want);
}
END_TEST

/* A quote inside a bare word opens a quoted part of the same argument. */
START_TEST(test_parse_inline_quote_inside_word_joins_argument)
{
    struct transcript want;
    transcript_init(&want);
    want_req(&want, true, 2, "foobar baz", "x\"");
    want_end(&want, RESP_INCOMPLETE, 0, NULL);
    check_parse(NULL, S("foo\"bar baz\" x'\"'\n"), &want);
}
END_TEST

/* NUL is an ordinary byte in an inline argument. */
START_TEST(test_parse_inline_keeps_nul_bytes)
{
    const char *argv[2] = {"GET", "a\0b"};
    size_t argvlen[2] = {3, 3};
    struct transcript want;
    transcript_init(&want);
    transcript_request(&want, 2, argv, argvlen, true);
    want_end(&want, RESP_INCOMPLETE, 0, NULL);
    check_parse(NULL, S("GET a\0b\r\n"), &want);
}
END_TEST

/* An unclosed quote, a closing quote glued to more text, and a trailing
 * backslash inside quotes are all unbalanced. */
START_TEST(test_parse_rejects_unbalanced_quotes)
{
    static const char *const bad[] = {
        "SET \"abc\n", "SET 'abc\n",   "SET \"a\"b\n",
        "SET 'a'b\n",  "SET \"ab\\\n", "SET \"a\\\"\n",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        check_error(NULL, bad[i], strlen(bad[i]), RESP_EQUOTES,
                    "ERR Protocol error: unbalanced quotes in request");
    }
}
END_TEST

/* ---------------------------------------------------------------------- */
/* Pipelining                                                              */

/* Many requests of both forms in one buffer come out one per call, in
 * order, at every split position. */
START_TEST(test_parse_pipelined_requests_at_every_split)
{
    struct transcript want;
    transcript_init(&want);
    want_req(&want, false, 3, "SET", "a", "1");
    want_req(&want, true, 2, "GET", "a");
    want_req(&want, false, 1, "PING");
    want_req(&want, true, 2, "ECHO", "x y");
    want_req(&want, false, 2, "GET", "");
    want_end(&want, RESP_INCOMPLETE, 0, NULL);
    check_parse(NULL,
                S("*3\r\n$3\r\nSET\r\n$1\r\na\r\n$1\r\n1\r\n"
                  "GET a\r\n"
                  "*0\r\n"
                  "*1\r\n$4\r\nPING\r\n"
                  "\r\n"
                  "ECHO \"x y\"\n"
                  "*2\r\n$3\r\nGET\r\n$0\r\n\r\n"),
                &want);
}
END_TEST

/* Requests before a protocol error are delivered; the error comes after
 * them at every split. */
START_TEST(test_parse_error_after_pipelined_requests_at_every_split)
{
    struct transcript want;
    transcript_init(&want);
    want_req(&want, false, 1, "PING");
    want_req(&want, true, 1, "PING");
    want_end(&want, RESP_EDOLLAR, 0,
             "ERR Protocol error: expected '$', got 'f'");
    check_parse(NULL,
                S("*1\r\n$4\r\nPING\r\nPING\r\n*2\r\n$3\r\nGET\r\nfoo\r\n"),
                &want);
}
END_TEST

/* ---------------------------------------------------------------------- */
/* Binary safety                                                           */

/* Every byte value survives a bulk argument, alone and all together. */
START_TEST(test_parse_bulk_round_trips_all_256_byte_values)
{
    char all[256];
    for (int i = 0; i < 256; i++) {
        all[i] = (char)(unsigned char)i;
    }
    struct resp_buf b;
    ck_assert_int_eq(resp_buf_init(&b, 1u << 20, 2, NULL), 0);
    struct transcript want;
    transcript_init(&want);
    for (int i = 0; i < 256; i++) {
        ck_assert_int_eq(resp_encode_array(&b, 1), 0);
        ck_assert_int_eq(resp_encode_bulk(&b, &all[i], 1), 0);
        const char *argv[1] = {&all[i]};
        size_t argvlen[1] = {1};
        transcript_request(&want, 1, argv, argvlen, false);
    }
    ck_assert_int_eq(resp_encode_array(&b, 2), 0);
    ck_assert_int_eq(resp_encode_bulk(&b, "SET", 3), 0);
    ck_assert_int_eq(resp_encode_bulk(&b, all, sizeof(all)), 0);
    const char *argv[2] = {"SET", all};
    size_t argvlen[2] = {3, sizeof(all)};
    transcript_request(&want, 2, argv, argvlen, false);
    want_end(&want, RESP_INCOMPLETE, 0, NULL);
    check_parse(NULL, b.data, b.len, &want);
    resp_buf_close(&b);
}
END_TEST

/* ---------------------------------------------------------------------- */
/* Limits, each at its bound and one past it                               */

START_TEST(test_parse_args_max_at_bound_and_past)
{
    struct resp_limits lim = small_limits();
    struct transcript want;
    transcript_init(&want);
    want_req(&want, false, 4, "a", "b", "c", "d");
    want_end(&want, RESP_INCOMPLETE, 0, NULL);
    check_parse(&lim, S("*4\r\n$1\r\na\r\n$1\r\nb\r\n$1\r\nc\r\n$1\r\nd\r\n"),
                &want);
    /* The count alone is refused, before any argument arrives. */
    check_error(&lim, S("*5\r\n"), RESP_EMBULKLEN,
                "ERR Protocol error: invalid multibulk length");
}
END_TEST

START_TEST(test_parse_inline_args_max_at_bound_and_past)
{
    struct resp_limits lim = small_limits();
    struct transcript want;
    transcript_init(&want);
    want_req(&want, true, 4, "a", "b", "c", "d");
    want_end(&want, RESP_INCOMPLETE, 0, NULL);
    check_parse(&lim, S("a b c d\n"), &want);
    check_error(&lim, S("a b c d e\n"), RESP_EINLINEARGS,
                "ERR Protocol error: too many arguments in inline request");
}
END_TEST

START_TEST(test_parse_bulk_bytes_max_at_bound_and_past)
{
    struct resp_limits lim = small_limits();
    struct transcript want;
    transcript_init(&want);
    want_req(&want, false, 1, "12345678");
    want_end(&want, RESP_INCOMPLETE, 0, NULL);
    check_parse(&lim, S("*1\r\n$8\r\n12345678\r\n"), &want);
    /* Refused from the header: the server never waits for the 9 bytes. */
    check_error(&lim, S("*1\r\n$9\r\n"), RESP_EBULKLEN,
                "ERR Protocol error: invalid bulk length");
}
END_TEST

/* The inline limit counts the bytes before "\n", a "\r" included. */
START_TEST(test_parse_inline_bytes_max_at_bound_and_past)
{
    struct resp_limits lim = small_limits();
    struct transcript want;
    transcript_init(&want);
    want_req(&want, true, 2, "ECHO", "0123456789");
    want_end(&want, RESP_INCOMPLETE, 0, NULL);
    check_parse(&lim, S("ECHO 0123456789\r\n"), &want); /* 16 + "\n" */
    check_error(&lim, S("ECHO 01234567890\r\n"), RESP_EINLINE,
                "ERR Protocol error: too big inline request");
    /* A client that never ends its line is cut off at the bound. */
    check_error(&lim, S("ECHO 012345678901"), RESP_EINLINE,
                "ERR Protocol error: too big inline request");
    transcript_init(&want);
    want_end(&want, RESP_INCOMPLETE, 16, NULL);
    check_parse(&lim, S("ECHO 01234567890"), &want);
}
END_TEST

/* The whole request on the wire, headers and CRLFs included. */
START_TEST(test_parse_request_bytes_max_at_bound_and_past)
{
    struct resp_limits lim = small_limits();
    lim.request_bytes_max = 27;
    struct transcript want;
    transcript_init(&want);
    /* 4 + 4+5 + 4+4 + 4+2 = 27 bytes. */
    want_req(&want, false, 3, "SET", "ab", "");
    want_end(&want, RESP_INCOMPLETE, 0, NULL);
    check_parse(&lim, S("*3\r\n$3\r\nSET\r\n$2\r\nab\r\n$0\r\n\r\n"), &want);
    lim.request_bytes_max = 26;
    check_error(&lim, S("*3\r\n$3\r\nSET\r\n$2\r\nab\r\n$0\r\n"), RESP_EREQUEST,
                "ERR Protocol error: too big request");
}
END_TEST

/* A client that announces a large argument and trickles it is held to the
 * announced length, which was checked against the limits. */
START_TEST(test_parse_slow_bulk_waits_within_limits)
{
    struct resp_limits lim = small_limits();
    struct transcript want;
    transcript_init(&want);
    want_end(&want, RESP_INCOMPLETE, 15, NULL);
    check_parse(&lim, S("*1\r\n$8\r\n1234567"), &want);
}
END_TEST

/* ---------------------------------------------------------------------- */
/* Hostile lengths                                                         */

START_TEST(test_parse_rejects_bad_multibulk_counts)
{
    static const char *const bad[] = {
        "*\r\n",
        "*abc\r\n",
        "*1a\r\n",
        "*+1\r\n",
        "*01\r\n",
        "*-0\r\n",
        "* 1\r\n",
        "*9223372036854775808\r\n",
        "*-9223372036854775809\r\n",
        "*99999999999999999999\r\n",
        "*2000000\r\n",
        "*1\rX",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        check_error(NULL, bad[i], strlen(bad[i]), RESP_EMBULKLEN,
                    "ERR Protocol error: invalid multibulk length");
    }
}
END_TEST

START_TEST(test_parse_rejects_bad_bulk_lengths)
{
    static const char *const bad[] = {
        "*1\r\n$\r\n",
        "*1\r\n$-1\r\n",
        "*1\r\n$-5\r\n",
        "*1\r\n$abc\r\n",
        "*1\r\n$3x\r\n",
        "*1\r\n$03\r\n",
        "*1\r\n$+3\r\n",
        "*1\r\n$9223372036854775807\r\n",
        "*1\r\n$18446744073709551616\r\n",
        "*1\r\n$16777217\r\n",
        "*1\r\n$3\rX",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        check_error(NULL, bad[i], strlen(bad[i]), RESP_EBULKLEN,
                    "ERR Protocol error: invalid bulk length");
    }
}
END_TEST

/* A count or length line that runs past 32 bytes without "\r" cannot be a
 * number and is refused without waiting for its end. */
START_TEST(test_parse_rejects_overlong_header_lines)
{
    char line[64];
    memset(line, '1', sizeof(line));
    line[0] = '*';
    check_error(NULL, line, 33, RESP_EMBULKHDR,
                "ERR Protocol error: too big mbulk count string");
    struct transcript want;
    transcript_init(&want);
    want_end(&want, RESP_INCOMPLETE, 32, NULL);
    check_parse(NULL, line, 32, &want);

    char bulk[64] = "*1\r\n$";
    memset(bulk + 5, '0', sizeof(bulk) - 5);
    check_error(NULL, bulk, 4 + 33, RESP_EBULKHDR,
                "ERR Protocol error: too big bulk count string");
}
END_TEST

/* An element that is not a bulk string names the byte found; a control
 * byte is shown escaped so the reply stays one line. */
START_TEST(test_parse_rejects_non_bulk_elements)
{
    check_error(NULL, S("*1\r\n:1\r\n"), RESP_EDOLLAR,
                "ERR Protocol error: expected '$', got ':'");
    check_error(NULL, S("*1\r\n\r\n"), RESP_EDOLLAR,
                "ERR Protocol error: expected '$', got '\\x0d'");
    check_error(NULL, S("*1\r\n*1\r\n"), RESP_EDOLLAR,
                "ERR Protocol error: expected '$', got '*'");
}
END_TEST

/* The two bytes after bulk data must be "\r\n". */
START_TEST(test_parse_rejects_missing_crlf_after_bulk)
{
    check_error(NULL, S("*1\r\n$3\r\nfooXY"), RESP_EBULKEND,
                "ERR Protocol error: expected '\\r\\n' after bulk data");
    check_error(NULL, S("*1\r\n$3\r\nfoo\rX"), RESP_EBULKEND,
                "ERR Protocol error: expected '\\r\\n' after bulk data");
}
END_TEST

/* After a protocol error every call returns it again and consumes nothing,
 * even if the caller offers valid bytes. */
START_TEST(test_parse_error_is_sticky)
{
    struct resp_parser p;
    struct resp_request req;
    size_t used = 99;
    ck_assert_int_eq(resp_parser_init(&p, NULL, NULL), 0);
    ck_assert_str_eq(resp_parser_errmsg(&p), "");
    ck_assert_int_eq(resp_parse(&p, S("*x\r\n"), &req, &used), RESP_EMBULKLEN);
    ck_assert_uint_eq(used, 0);
    ck_assert_int_eq(resp_parse(&p, S("PING\r\n"), &req, &used),
                     RESP_EMBULKLEN);
    ck_assert_uint_eq(used, 0);
    ck_assert_str_eq(resp_parser_errmsg(&p),
                     "ERR Protocol error: invalid multibulk length");
    resp_parser_close(&p);
}
END_TEST

/* A caller that offers fewer bytes than it already offered is refused
 * instead of letting the parser read outside the buffer. */
START_TEST(test_parse_refuses_shrunken_input)
{
    struct resp_parser p;
    struct resp_request req;
    size_t used;
    ck_assert_int_eq(resp_parser_init(&p, NULL, NULL), 0);
    ck_assert_int_eq(resp_parse(&p, S("*1\r\n$5\r\nab"), &req, &used),
                     RESP_INCOMPLETE);
    ck_assert_int_eq(resp_parse(&p, S("*1\r\n$"), &req, &used), RESP_EINVAL);
    ck_assert_int_eq(resp_parse(&p, S("*1\r\n$5\r\nabcde\r\n"), &req, &used),
                     0);
    ck_assert_uint_eq(req.argc, 1);
    resp_parser_close(&p);
}
END_TEST

/* ---------------------------------------------------------------------- */
/* Setup, errors table, memory                                             */

START_TEST(test_parser_init_rejects_bad_arguments)
{
    struct resp_parser p;
    struct resp_limits lim = small_limits();
    lim.bulk_bytes_max = 0;
    ck_assert_int_eq(resp_parser_init(&p, &lim, NULL), RESP_EINVAL);
    struct fault_alloc f;
    fault_alloc_init(&f);
    f.hook.free_fn = NULL;
    ck_assert_int_eq(resp_parser_init(&p, NULL, &f.hook), RESP_EINVAL);
}
END_TEST

/* Every code has its own text, and unknown codes say so. */
START_TEST(test_strerror_covers_every_code)
{
    static const int codes[] = {
        RESP_INCOMPLETE,  RESP_ENOMEM,   RESP_EINVAL,   RESP_EMBULKLEN,
        RESP_EBULKLEN,    RESP_EDOLLAR,  RESP_EQUOTES,  RESP_EINLINE,
        RESP_EMBULKHDR,   RESP_EBULKHDR, RESP_EBULKEND, RESP_EREQUEST,
        RESP_EINLINEARGS, RESP_EOUTPUT,
    };
    size_t n = sizeof(codes) / sizeof(codes[0]);
    for (size_t i = 0; i < n; i++) {
        ck_assert_int_le(codes[i], -4000);
        ck_assert_int_gt(codes[i], -5000);
        ck_assert_str_ne(resp_strerror(codes[i]), "unknown error");
        for (size_t j = 0; j < i; j++) {
            ck_assert_str_ne(resp_strerror(codes[i]), resp_strerror(codes[j]));
        }
    }
    ck_assert_str_eq(resp_strerror(-1), "unknown error");
    ck_assert_str_eq(resp_strerror(RESP_EBULKLEN),
                     "Protocol error: invalid bulk length");
}
END_TEST

/* Fault loop: with the Nth allocation failing, the parser reports
 * RESP_ENOMEM, stays usable, and a retry gives the same requests; nothing
 * is leaked. */
START_TEST(test_parse_survives_every_failed_allocation)
{
    static const char in[] =
        "*12\r\n$1\r\na\r\n$1\r\nb\r\n$1\r\nc\r\n$1\r\nd\r\n$1\r\ne\r\n"
        "$1\r\nf\r\n$1\r\ng\r\n$1\r\nh\r\n$1\r\ni\r\n$1\r\nj\r\n$1\r\nk\r\n"
        "$1\r\nl\r\nSET \"x y\" z\r\n";
    struct transcript want;
    transcript_init(&want);
    feed(NULL, NULL, in, sizeof(in) - 1, NULL, 0, &want);

    for (unsigned long n = 1;; n++) {
        struct fault_alloc f;
        fault_alloc_init(&f);
        f.fail_at = n;
        struct resp_parser p;
        ck_assert_int_eq(resp_parser_init(&p, NULL, &f.hook), 0);
        struct transcript got;
        transcript_init(&got);
        size_t off = 0;
        bool failed = false;
        int rc;
        for (;;) {
            struct resp_request req;
            size_t used;
            rc = resp_parse(&p, in + off, sizeof(in) - 1 - off, &req, &used);
            off += used;
            if (rc == RESP_ENOMEM) {
                failed = true;
                continue; /* the next allocation succeeds */
            }
            if (rc != 0) {
                break;
            }
            transcript_request(&got, req.argc, req.argv, req.argvlen,
                               req.inline_form);
        }
        char end[32];
        int len =
            snprintf(end, sizeof(end), "E%dP%zu", rc, sizeof(in) - 1 - off);
        transcript_put(&got, end, (size_t)len);
        ck_assert_msg(transcript_equal(&got, &want),
                      "allocation %lu failing changed the result", n);
        resp_parser_close(&p);
        ck_assert_int_eq(f.live, 0);
        transcript_close(&got);
        if (!failed) {
            break;
        }
    }
    transcript_close(&want);
}
END_TEST

/* Memory taken for a large request is given back at the next request. */
START_TEST(test_parse_releases_memory_after_large_request)
{
    struct fault_alloc f;
    fault_alloc_init(&f);
    struct resp_parser p;
    ck_assert_int_eq(resp_parser_init(&p, NULL, &f.hook), 0);
    struct resp_buf b;
    ck_assert_int_eq(resp_buf_init(&b, 1u << 20, 2, NULL), 0);
    ck_assert_int_eq(resp_encode_array(&b, 1000), 0);
    for (int i = 0; i < 1000; i++) {
        ck_assert_int_eq(resp_encode_bulk(&b, "x", 1), 0);
    }
    struct resp_request req;
    size_t used;
    ck_assert_int_eq(resp_parse(&p, b.data, b.len, &req, &used), 0);
    ck_assert_uint_eq(req.argc, 1000);
    ck_assert_uint_eq(used, b.len);
    ck_assert_int_eq(f.live, 3);
    ck_assert_int_eq(resp_parse(&p, S("PING"), &req, &used), RESP_INCOMPLETE);
    ck_assert_int_eq(f.live, 0);
    resp_parser_close(&p);
    resp_buf_close(&b);
}
END_TEST

static Suite *parse_suite(void)
{
    Suite *s = suite_create("resp_parse");
    TCase *tc = tcase_create("forms");
    tcase_add_test(tc, test_parse_reads_multibulk_request);
    tcase_add_test(tc, test_parse_reads_empty_bulk_argument);
    tcase_add_test(tc, test_parse_skips_empty_and_negative_multibulk);
    tcase_add_test(tc, test_parse_reads_inline_requests);
    tcase_add_test(tc, test_parse_skips_blank_inline_lines);
    tcase_add_test(tc, test_parse_keeps_partial_request_unconsumed);
    suite_add_tcase(s, tc);

    tc = tcase_create("quoting");
    tcase_add_test(tc, test_parse_inline_double_quotes_unescape);
    tcase_add_test(tc, test_parse_inline_short_hex_escape_is_literal);
    tcase_add_test(tc, test_parse_inline_single_quotes);
    tcase_add_test(tc, test_parse_inline_empty_quoted_arguments);
    tcase_add_test(tc, test_parse_inline_quote_inside_word_joins_argument);
    tcase_add_test(tc, test_parse_inline_keeps_nul_bytes);
    tcase_add_test(tc, test_parse_rejects_unbalanced_quotes);
    suite_add_tcase(s, tc);

    tc = tcase_create("pipelining");
    tcase_add_test(tc, test_parse_pipelined_requests_at_every_split);
    tcase_add_test(tc,
                   test_parse_error_after_pipelined_requests_at_every_split);
    tcase_add_test(tc, test_parse_bulk_round_trips_all_256_byte_values);
    suite_add_tcase(s, tc);

    tc = tcase_create("limits");
    tcase_add_test(tc, test_parse_args_max_at_bound_and_past);
    tcase_add_test(tc, test_parse_inline_args_max_at_bound_and_past);
    tcase_add_test(tc, test_parse_bulk_bytes_max_at_bound_and_past);
    tcase_add_test(tc, test_parse_inline_bytes_max_at_bound_and_past);
    tcase_add_test(tc, test_parse_request_bytes_max_at_bound_and_past);
    tcase_add_test(tc, test_parse_slow_bulk_waits_within_limits);
    suite_add_tcase(s, tc);

    tc = tcase_create("hostile");
    tcase_add_test(tc, test_parse_rejects_bad_multibulk_counts);
    tcase_add_test(tc, test_parse_rejects_bad_bulk_lengths);
    tcase_add_test(tc, test_parse_rejects_overlong_header_lines);
    tcase_add_test(tc, test_parse_rejects_non_bulk_elements);
    tcase_add_test(tc, test_parse_rejects_missing_crlf_after_bulk);
    tcase_add_test(tc, test_parse_error_is_sticky);
    tcase_add_test(tc, test_parse_refuses_shrunken_input);
    suite_add_tcase(s, tc);

    tc = tcase_create("memory");
    tcase_add_test(tc, test_parser_init_rejects_bad_arguments);
    tcase_add_test(tc, test_strerror_covers_every_code);
    tcase_add_test(tc, test_parse_survives_every_failed_allocation);
    tcase_add_test(tc, test_parse_releases_memory_after_large_request);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(parse_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
