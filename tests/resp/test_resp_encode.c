/*
 * test_resp_encode.c - the reply encoder: byte-exact output of every type
 * in RESP2 and RESP3, the output limit, allocation failures, and buffer
 * housekeeping.
 */
#include <check.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "helpers.h"

#define S(lit) (lit), (sizeof(lit) - 1)

/* Both protocol versions, each in a fresh buffer. */
static struct resp_buf b2;
static struct resp_buf b3;

static void setup(void)
{
    ck_assert_int_eq(resp_buf_init(&b2, 1u << 20, 2, NULL), 0);
    ck_assert_int_eq(resp_buf_init(&b3, 1u << 20, 3, NULL), 0);
}

static void teardown(void)
{
    resp_buf_close(&b2);
    resp_buf_close(&b3);
}

/* Compares the whole buffer with @want and empties it for the next check. */
static void expect_bytes(struct resp_buf *b, const char *want, size_t len)
{
    ck_assert_msg(b->len == len && memcmp(b->data, want, len) == 0,
                  "RESP%d: got %.*s want %.*s", b->proto, (int)b->len, b->data,
                  (int)len, want);
    resp_buf_consume(b, b->len);
}

START_TEST(test_encode_simple_string)
{
    ck_assert_int_eq(resp_encode_simple(&b2, S("OK")), 0);
    expect_bytes(&b2, S("+OK\r\n"));
    ck_assert_int_eq(resp_encode_simple(&b3, S("OK")), 0);
    expect_bytes(&b3, S("+OK\r\n"));
}
END_TEST

/* CR and LF in a line type would let text forge replies; they become
 * spaces. */
START_TEST(test_encode_line_types_replace_crlf)
{
    ck_assert_int_eq(resp_encode_simple(&b2, S("a\r\nb")), 0);
    expect_bytes(&b2, S("+a  b\r\n"));
    ck_assert_int_eq(resp_encode_error(&b3, S("ERR bad\r\n+OK")), 0);
    expect_bytes(&b3, S("-ERR bad  +OK\r\n"));
}
END_TEST

START_TEST(test_encode_error)
{
    ck_assert_int_eq(resp_encode_error(&b2, S("ERR unknown command")), 0);
    expect_bytes(&b2, S("-ERR unknown command\r\n"));
    ck_assert_int_eq(resp_encode_error(&b3, S("ERR unknown command")), 0);
    expect_bytes(&b3, S("-ERR unknown command\r\n"));
}
END_TEST

START_TEST(test_encode_integer_extremes)
{
    struct resp_buf *bufs[2] = {&b2, &b3};
    for (int i = 0; i < 2; i++) {
        struct resp_buf *b = bufs[i];
        ck_assert_int_eq(resp_encode_integer(b, 0), 0);
        ck_assert_int_eq(resp_encode_integer(b, -1), 0);
        ck_assert_int_eq(resp_encode_integer(b, 42), 0);
        ck_assert_int_eq(resp_encode_integer(b, INT64_MAX), 0);
        ck_assert_int_eq(resp_encode_integer(b, INT64_MIN), 0);
        expect_bytes(b, S(":0\r\n:-1\r\n:42\r\n:9223372036854775807\r\n"
                          ":-9223372036854775808\r\n"));
    }
}
END_TEST

START_TEST(test_encode_bulk_string)
{
    ck_assert_int_eq(resp_encode_bulk(&b2, "abc", 3), 0);
    ck_assert_int_eq(resp_encode_bulk(&b2, NULL, 0), 0);
    expect_bytes(&b2, S("$3\r\nabc\r\n$0\r\n\r\n"));
    ck_assert_int_eq(resp_encode_bulk(&b3, "a\0\r\n", 4), 0);
    expect_bytes(&b3, S("$4\r\na\0\r\n\r\n"));
}
END_TEST

START_TEST(test_encode_bulk_all_256_byte_values)
{
    char all[256];
    char want[256 + 8] = "$256\r\n";
    for (int i = 0; i < 256; i++) {
        all[i] = (char)(unsigned char)i;
    }
    memcpy(want + 6, all, 256);
    memcpy(want + 262, "\r\n", 2);
    ck_assert_int_eq(resp_encode_bulk(&b3, all, 256), 0);
    expect_bytes(&b3, want, sizeof(want));
}
END_TEST

/* RESP2 has two nulls, one per kind of value; RESP3 has one. */
START_TEST(test_encode_null)
{
    ck_assert_int_eq(resp_encode_null(&b2), 0);
    ck_assert_int_eq(resp_encode_null_array(&b2), 0);
    expect_bytes(&b2, S("$-1\r\n*-1\r\n"));
    ck_assert_int_eq(resp_encode_null(&b3), 0);
    ck_assert_int_eq(resp_encode_null_array(&b3), 0);
    expect_bytes(&b3, S("_\r\n_\r\n"));
}
END_TEST

START_TEST(test_encode_array)
{
    ck_assert_int_eq(resp_encode_array(&b2, 2), 0);
    ck_assert_int_eq(resp_encode_bulk(&b2, "a", 1), 0);
    ck_assert_int_eq(resp_encode_integer(&b2, 1), 0);
    ck_assert_int_eq(resp_encode_array(&b2, 0), 0);
    expect_bytes(&b2, S("*2\r\n$1\r\na\r\n:1\r\n*0\r\n"));
    ck_assert_int_eq(resp_encode_array(&b3, 3), 0);
    expect_bytes(&b3, S("*3\r\n"));
}
END_TEST

/* A RESP2 map is a flat array of keys and values. */
START_TEST(test_encode_map)
{
    struct resp_buf *bufs[2] = {&b2, &b3};
    for (int i = 0; i < 2; i++) {
        struct resp_buf *b = bufs[i];
        ck_assert_int_eq(resp_encode_map(b, 2), 0);
        ck_assert_int_eq(resp_encode_simple(b, S("proto")), 0);
        ck_assert_int_eq(resp_encode_integer(b, b->proto), 0);
        ck_assert_int_eq(resp_encode_simple(b, S("role")), 0);
        ck_assert_int_eq(resp_encode_bulk(b, "leader", 6), 0);
    }
    expect_bytes(&b2, S("*4\r\n+proto\r\n:2\r\n+role\r\n$6\r\nleader\r\n"));
    expect_bytes(&b3, S("%2\r\n+proto\r\n:3\r\n+role\r\n$6\r\nleader\r\n"));
    ck_assert_int_eq(resp_encode_map(&b2, SIZE_MAX / 2 + 1), RESP_EINVAL);
    ck_assert_uint_eq(b2.len, 0);
}
END_TEST

START_TEST(test_encode_set_and_push)
{
    ck_assert_int_eq(resp_encode_set(&b2, 3), 0);
    ck_assert_int_eq(resp_encode_push(&b2, 2), 0);
    expect_bytes(&b2, S("*3\r\n*2\r\n"));
    ck_assert_int_eq(resp_encode_set(&b3, 3), 0);
    ck_assert_int_eq(resp_encode_push(&b3, 2), 0);
    expect_bytes(&b3, S("~3\r\n>2\r\n"));
}
END_TEST

/* Doubles use 15 significant digits, or 16 or 17 where fewer would not
 * read back exactly; RESP2 sends them as bulk strings. */
START_TEST(test_encode_double)
{
    static const struct
    {
        double v;
        const char *text;
    } cases[] = {
        {1.5, "1.5"},
        {0.1, "0.1"},
        {3.0, "3"},
        {-2.25, "-2.25"},
        {1.0 / 3.0, "0.3333333333333333"},
        {1e300, "1e+300"},
        {5e-324, "4.94065645841247e-324"},
        {-0.0, "-0"},
        {INFINITY, "inf"},
        {-INFINITY, "-inf"},
        {NAN, "nan"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char want[64];
        size_t n = strlen(cases[i].text);
        ck_assert_int_eq(resp_encode_double(&b3, cases[i].v), 0);
        int w = snprintf(want, sizeof(want), ",%s\r\n", cases[i].text);
        expect_bytes(&b3, want, (size_t)w);
        ck_assert_int_eq(resp_encode_double(&b2, cases[i].v), 0);
        w = snprintf(want, sizeof(want), "$%zu\r\n%s\r\n", n, cases[i].text);
        expect_bytes(&b2, want, (size_t)w);
    }
}
END_TEST

START_TEST(test_encode_double_reads_back_exactly)
{
    struct rng r;
    rng_seed(&r, 7);
    for (int i = 0; i < 10000; i++) {
        unsigned long long bits = rng_next(&r);
        double v;
        memcpy(&v, &bits, sizeof(v));
        if (isnan(v) || isinf(v)) {
            continue;
        }
        ck_assert_int_eq(resp_encode_double(&b3, v), 0);
        char text[64];
        ck_assert_uint_lt(b3.len, sizeof(text));
        memcpy(text, b3.data + 1, b3.len - 3);
        text[b3.len - 3] = '\0';
        ck_assert_msg(strtod(text, NULL) == v, "%s does not read back", text);
        resp_buf_consume(&b3, b3.len);
    }
}
END_TEST

/* RESP2 has no boolean; Redis sends 1 and 0. */
START_TEST(test_encode_bool)
{
    ck_assert_int_eq(resp_encode_bool(&b2, true), 0);
    ck_assert_int_eq(resp_encode_bool(&b2, false), 0);
    expect_bytes(&b2, S(":1\r\n:0\r\n"));
    ck_assert_int_eq(resp_encode_bool(&b3, true), 0);
    ck_assert_int_eq(resp_encode_bool(&b3, false), 0);
    expect_bytes(&b3, S("#t\r\n#f\r\n"));
}
END_TEST

START_TEST(test_encode_bignum)
{
    ck_assert_int_eq(resp_encode_bignum(&b3, S("-3492890328409238509324")), 0);
    expect_bytes(&b3, S("(-3492890328409238509324\r\n"));
    ck_assert_int_eq(resp_encode_bignum(&b2, S("12345678901234567890")), 0);
    expect_bytes(&b2, S("$20\r\n12345678901234567890\r\n"));
    ck_assert_int_eq(resp_encode_bignum(&b3, S("")), RESP_EINVAL);
    ck_assert_int_eq(resp_encode_bignum(&b3, S("-")), RESP_EINVAL);
    ck_assert_int_eq(resp_encode_bignum(&b3, S("12a")), RESP_EINVAL);
    ck_assert_uint_eq(b3.len, 0);
}
END_TEST

/* The three-byte format and its colon count in the verbatim length. */
START_TEST(test_encode_verbatim)
{
    ck_assert_int_eq(resp_encode_verbatim(&b3, "txt", "Some string", 11), 0);
    expect_bytes(&b3, S("=15\r\ntxt:Some string\r\n"));
    ck_assert_int_eq(resp_encode_verbatim(&b2, "txt", "Some string", 11), 0);
    expect_bytes(&b2, S("$11\r\nSome string\r\n"));
    ck_assert_int_eq(resp_encode_verbatim(&b3, "mkd", NULL, 0), 0);
    expect_bytes(&b3, S("=4\r\nmkd:\r\n"));
    ck_assert_int_eq(resp_encode_verbatim(&b3, "tx", "a", 1), RESP_EINVAL);
    ck_assert_int_eq(resp_encode_verbatim(&b3, "text", "a", 1), RESP_EINVAL);
    ck_assert_int_eq(resp_encode_verbatim(&b3, NULL, "a", 1), RESP_EINVAL);
    ck_assert_uint_eq(b3.len, 0);
}
END_TEST

/* HELLO 3 switches the encoding of the same calls mid-connection. */
START_TEST(test_encode_follows_protocol_switch)
{
    ck_assert_int_eq(resp_encode_null(&b2), 0);
    ck_assert_int_eq(resp_buf_set_proto(&b2, 3), 0);
    ck_assert_int_eq(resp_encode_null(&b2), 0);
    expect_bytes(&b2, S("$-1\r\n_\r\n"));
    ck_assert_int_eq(resp_buf_set_proto(&b2, 1), RESP_EINVAL);
    ck_assert_int_eq(b2.proto, 3);
}
END_TEST

/* ---------------------------------------------------------------------- */
/* Output limit and memory                                                 */

/* A value that would pass the limit is refused whole: a client never sees
 * half a reply, and the server learns it should stop writing. */
START_TEST(test_encode_output_limit_at_bound_and_past)
{
    struct resp_buf b;
    ck_assert_int_eq(resp_buf_init(&b, 11, 2, NULL), 0);
    ck_assert_int_eq(resp_encode_bulk(&b, "hello", 5), 0); /* 11 bytes */
    ck_assert_uint_eq(b.len, 11);
    ck_assert_int_eq(resp_encode_null(&b), RESP_EOUTPUT);
    ck_assert_uint_eq(b.len, 11);
    resp_buf_consume(&b, 11);
    ck_assert_int_eq(resp_encode_bulk(&b, "hello!", 6), RESP_EOUTPUT);
    ck_assert_uint_eq(b.len, 0);
    ck_assert_int_eq(resp_encode_simple(&b, S("12345678")), 0);
    ck_assert_int_eq(resp_encode_simple(&b, S("")), RESP_EOUTPUT);
    ck_assert_uint_eq(b.len, 11);
    ck_assert_uint_le(b.cap, 11);
    ck_assert_str_eq(resp_strerror(RESP_EOUTPUT), "reply buffer limit reached");
    resp_buf_close(&b);
}
END_TEST

/* Huge lengths cannot wrap the size arithmetic into a small write. */
START_TEST(test_encode_huge_lengths_fail_cleanly)
{
    ck_assert_int_eq(resp_encode_bulk(&b2, "", SIZE_MAX), RESP_EOUTPUT);
    ck_assert_int_eq(resp_encode_simple(&b2, "", SIZE_MAX - 1), RESP_EOUTPUT);
    ck_assert_int_eq(resp_encode_verbatim(&b3, "txt", "", SIZE_MAX - 2),
                     RESP_EOUTPUT);
    ck_assert_uint_eq(b2.len, 0);
    ck_assert_uint_eq(b3.len, 0);
}
END_TEST

START_TEST(test_encode_reports_failed_allocation)
{
    struct fault_alloc f;
    fault_alloc_init(&f);
    f.fail_at = 1;
    struct resp_buf b;
    ck_assert_int_eq(resp_buf_init(&b, 1u << 20, 3, &f.hook), 0);
    ck_assert_int_eq(resp_encode_simple(&b, S("OK")), RESP_ENOMEM);
    ck_assert_uint_eq(b.len, 0);
    ck_assert_int_eq(resp_encode_simple(&b, S("OK")), 0);
    expect_bytes(&b, S("+OK\r\n"));
    resp_buf_close(&b);
    ck_assert_int_eq(f.live, 0);
}
END_TEST

START_TEST(test_buf_consume_keeps_the_rest)
{
    ck_assert_int_eq(resp_encode_simple(&b2, S("A")), 0);
    ck_assert_int_eq(resp_encode_simple(&b2, S("B")), 0);
    resp_buf_consume(&b2, 2);
    expect_bytes(&b2, S("\r\n+B\r\n"));
}
END_TEST

START_TEST(test_buf_init_rejects_bad_protocol)
{
    struct resp_buf b;
    ck_assert_int_eq(resp_buf_init(&b, 100, 1, NULL), RESP_EINVAL);
    ck_assert_int_eq(resp_buf_init(&b, 100, 4, NULL), RESP_EINVAL);
}
END_TEST

static Suite *encode_suite(void)
{
    Suite *s = suite_create("resp_encode");
    TCase *tc = tcase_create("types");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_encode_simple_string);
    tcase_add_test(tc, test_encode_line_types_replace_crlf);
    tcase_add_test(tc, test_encode_error);
    tcase_add_test(tc, test_encode_integer_extremes);
    tcase_add_test(tc, test_encode_bulk_string);
    tcase_add_test(tc, test_encode_bulk_all_256_byte_values);
    tcase_add_test(tc, test_encode_null);
    tcase_add_test(tc, test_encode_array);
    tcase_add_test(tc, test_encode_map);
    tcase_add_test(tc, test_encode_set_and_push);
    tcase_add_test(tc, test_encode_double);
    tcase_add_test(tc, test_encode_double_reads_back_exactly);
    tcase_add_test(tc, test_encode_bool);
    tcase_add_test(tc, test_encode_bignum);
    tcase_add_test(tc, test_encode_verbatim);
    tcase_add_test(tc, test_encode_follows_protocol_switch);
    suite_add_tcase(s, tc);

    tc = tcase_create("limits");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_encode_output_limit_at_bound_and_past);
    tcase_add_test(tc, test_encode_huge_lengths_fail_cleanly);
    tcase_add_test(tc, test_encode_reports_failed_allocation);
    tcase_add_test(tc, test_buf_consume_keeps_the_rest);
    tcase_add_test(tc, test_buf_init_rejects_bad_protocol);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(encode_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
