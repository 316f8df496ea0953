/*
 * test_hash.c - the hash commands of the client port (commands_hash.c)
 * through real TCP against the fake node: Redis's replies and errors,
 * WRONGTYPE both ways, TYPE/DEL/EXISTS on a hash, WATCH seeing a hash
 * change, and the RESP3 map of HGETALL.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "commands.h"
#include "harness.h"
#include "kv.h"

static struct harness h;
static struct cli c;

static void setup(void)
{
    harness_start(&h, NULL);
    cli_open(&c, h.port);
}

static void teardown(void)
{
    cli_close(&c);
    harness_stop(&h);
}

#define EQ(line, want) ck_assert_str_eq(q(&c, line), want)

#define WRONGTYPE \
    "-WRONGTYPE Operation against a key holding the wrong kind of value\r\n"

/* HSET, HGET, HMGET, HLEN, HEXISTS, HSTRLEN, HDEL and HSETNX answer as
 * Redis does, and a hash goes with its last field. */
START_TEST(test_hash_field_commands_answer_as_redis)
{
    EQ("HSET h a 1 b 22", ":2\r\n");
    EQ("HSET h a 3 c 4", ":1\r\n");
    EQ("HGET h a", "$1\r\n3\r\n");
    EQ("HGET h zz", "$-1\r\n");
    EQ("HGET nohash a", "$-1\r\n");
    EQ("HMGET h a zz b", "*3\r\n$1\r\n3\r\n$-1\r\n$2\r\n22\r\n");
    EQ("HLEN h", ":3\r\n");
    EQ("HLEN nohash", ":0\r\n");
    EQ("HEXISTS h b", ":1\r\n");
    EQ("HEXISTS h zz", ":0\r\n");
    EQ("HSTRLEN h b", ":2\r\n");
    EQ("HSTRLEN h zz", ":0\r\n");
    EQ("HSETNX h a x", ":0\r\n");
    EQ("HSETNX h d x", ":1\r\n");
    EQ("HMSET h e 5 f 6", "+OK\r\n");
    EQ("HDEL h a zz", ":1\r\n");
    EQ("HDEL h b c d e f", ":5\r\n");
    EQ("EXISTS h", ":0\r\n");
    EQ("HSET h a", "-ERR wrong number of arguments for 'hset' command\r\n");
    EQ("HSET h", "-ERR wrong number of arguments for 'hset' command\r\n");
    EQ("HDEL h", "-ERR wrong number of arguments for 'hdel' command\r\n");
}
END_TEST

/* HINCRBY and HINCRBYFLOAT: Redis's results and errors. */
START_TEST(test_hash_increments_answer_as_redis)
{
    EQ("HINCRBY h n 5", ":5\r\n");
    EQ("HINCRBY h n -7", ":-2\r\n");
    EQ("HINCRBY h n x", "-ERR value is not an integer or out of range\r\n");
    EQ("HSET h s abc", ":1\r\n");
    EQ("HINCRBY h s 1", "-ERR hash value is not an integer\r\n");
    EQ("HSET h big 9223372036854775807", ":1\r\n");
    EQ("HINCRBY h big 1", "-ERR increment or decrement would overflow\r\n");
    EQ("HINCRBYFLOAT h f 10.5", "$4\r\n10.5\r\n");
    EQ("HINCRBYFLOAT h f 0.1", "$4\r\n10.6\r\n");
    EQ("HINCRBYFLOAT h f abc", "-ERR value is not a valid float\r\n");
    EQ("HINCRBYFLOAT h s 1", "-ERR hash value is not a float\r\n");
    EQ("HGET h f", "$4\r\n10.6\r\n");
}
END_TEST

/* HGETALL, HKEYS, HVALS and HSCAN list the fields in field order; HSCAN
 * answers the whole hash with cursor 0 and filters with MATCH. */
START_TEST(test_hash_whole_hash_reads)
{
    EQ("HSET h b 2 a 1 c 3", ":3\r\n");
    EQ("HGETALL h",
       "*6\r\n$1\r\na\r\n$1\r\n1\r\n$1\r\nb\r\n$1\r\n2\r\n$1\r\nc\r\n$"
       "1\r\n3\r\n");
    EQ("HKEYS h", "*3\r\n$1\r\na\r\n$1\r\nb\r\n$1\r\nc\r\n");
    EQ("HVALS h", "*3\r\n$1\r\n1\r\n$1\r\n2\r\n$1\r\n3\r\n");
    EQ("HGETALL nohash", "*0\r\n");
    EQ("HSCAN h 0",
       "*2\r\n$1\r\n0\r\n*6\r\n$1\r\na\r\n$1\r\n1\r\n$1\r\nb\r\n"
       "$1\r\n2\r\n$1\r\nc\r\n$1\r\n3\r\n");
    EQ("HSCAN h 0 MATCH b* COUNT 5",
       "*2\r\n$1\r\n0\r\n*2\r\n$1\r\nb\r\n$1\r\n2\r\n");
    EQ("HSCAN h x", "-ERR invalid cursor\r\n");
    EQ("HSCAN h 0 COUNT 0", "-ERR syntax error\r\n");
    EQ("HSCAN h 0 MATCH", "-ERR syntax error\r\n");
    q(&c, "HELLO 3");
    EQ("HGETALL h",
       "%3\r\n$1\r\na\r\n$1\r\n1\r\n$1\r\nb\r\n$1\r\n2\r\n$1\r\nc\r\n"
       "$1\r\n3\r\n");
}
END_TEST

/* A string command on a hash and a hash command on a string answer
 * WRONGTYPE and change nothing; TYPE says "hash"; DEL, EXISTS and SET
 * take a hash like any key; MGET answers null for it. */
START_TEST(test_hash_wrongtype_both_ways)
{
    EQ("HSET h a 1", ":1\r\n");
    EQ("SET s v", "+OK\r\n");
    EQ("TYPE h", "+hash\r\n");
    EQ("TYPE s", "+string\r\n");
    EQ("TYPE none", "+none\r\n");
    EQ("GET h", WRONGTYPE);
    EQ("INCR h", WRONGTYPE);
    EQ("APPEND h x", WRONGTYPE);
    EQ("STRLEN h", WRONGTYPE);
    EQ("GETRANGE h 0 1", WRONGTYPE);
    EQ("MGET s h", "*2\r\n$1\r\nv\r\n$-1\r\n");
    EQ("HSET s a 1", WRONGTYPE);
    EQ("HGET s a", WRONGTYPE);
    EQ("HGETALL s", WRONGTYPE);
    EQ("HLEN s", WRONGTYPE);
    EQ("HDEL s a", WRONGTYPE);
    EQ("HINCRBY s a 1", WRONGTYPE);
    EQ("GETSET h x", WRONGTYPE);
    EQ("SET h x GET", WRONGTYPE);
    EQ("SET h x NX GET", WRONGTYPE);
    EQ("SET h x XX GET", WRONGTYPE);
    EQ("GETDEL h", WRONGTYPE);
    EQ("SETRANGE h 0 x", WRONGTYPE);
    EQ("RENAME h h3", WRONGTYPE);
    EQ("GETEX h", WRONGTYPE);
    EQ("GET s", "$1\r\nv\r\n");
    EQ("HGET h a", "$1\r\n1\r\n");
    EQ("EXISTS h s none", ":2\r\n");
    const char *meta = q(&c, "BMETA h");
    ck_assert_msg(strstr(meta, "value_bytes") != NULL, "%s", meta);
    EQ("SCAN 0 TYPE hash", "*2\r\n$1\r\n0\r\n*1\r\n$1\r\nh\r\n");
    EQ("SCAN 0 TYPE string", "*2\r\n$1\r\n0\r\n*1\r\n$1\r\ns\r\n");
    EQ("SCAN 0 TYPE list", "*2\r\n$1\r\n0\r\n*0\r\n");
    EQ("MSETNX h x q y", ":0\r\n");
    /* SET replaces a hash, as Redis does; its fields go with it. */
    EQ("SET h plain", "+OK\r\n");
    EQ("TYPE h", "+string\r\n");
    EQ("HSET h2 a 1 b 2", ":2\r\n");
    EQ("DEL h2", ":1\r\n");
    EQ("HSET h2 c 3", ":1\r\n");
    EQ("HGETALL h2", "*2\r\n$1\r\nc\r\n$1\r\n3\r\n");
    EQ("EXPIRE h2 100", ":1\r\n");
    EQ("HSET h2 d 4", ":1\r\n");
    q(&c, "TTL h2");
    ck_assert_str_ne(q(&c, "TTL h2"), ":-1\r\n"); /* a field write keeps it */
}
END_TEST

/* WATCH on a hash key aborts the EXEC after another client's HSET;
 * without a change it runs. Hash commands are refused inside MULTI. */
START_TEST(test_hash_watch_sees_a_change_of_the_hash)
{
    struct cli other;
    cli_open(&other, h.port);
    EQ("HSET h a 1", ":1\r\n");
    EQ("WATCH h", "+OK\r\n");
    ck_assert_str_eq(q(&other, "HSET h a 2"), ":0\r\n");
    EQ("MULTI", "+OK\r\n");
    EQ("SET x 1", "+QUEUED\r\n");
    EQ("EXEC", "*-1\r\n");
    EQ("WATCH h", "+OK\r\n");
    EQ("MULTI", "+OK\r\n");
    EQ("SET x 1", "+QUEUED\r\n");
    EQ("EXEC", "*1\r\n+OK\r\n");
    EQ("MULTI", "+OK\r\n");
    EQ("HSET h a 3", "-ERR Command not allowed inside a transaction\r\n");
    EQ("DISCARD", "+OK\r\n");
    cli_close(&other);
}
END_TEST

/* The commands of the types ballot does not store name the type after
 * Redis's "unknown command" words. */
START_TEST(test_hash_other_types_are_refused_naming_the_type)
{
    EQ("LPUSH l a",
       "-ERR unknown command 'LPUSH', with args beginning with: 'l' 'a' "
       "(lists are not supported by ballot: it stores strings and "
       "hashes)\r\n");
    EQ("zadd z 1 m",
       "-ERR unknown command 'zadd', with args beginning with: 'z' '1' 'm' "
       "(sorted sets are not supported by ballot: it stores strings and "
       "hashes)\r\n");
    const char *r = q(&c, "SADD s m");
    ck_assert_msg(strstr(r, "(sets are not supported") != NULL, "%s", r);
    r = q(&c, "XADD s * f v");
    ck_assert_msg(strstr(r, "(streams are not supported") != NULL, "%s", r);
    EQ("NOSUCH",
       "-ERR unknown command 'NOSUCH', with args beginning with: "
       "\r\n");
}
END_TEST

/* A field longer than the key leaves room for is refused, and a missing
 * or over-long key reads as an empty hash. */
START_TEST(test_hash_limits_are_clear_errors)
{
    char line[1200];
    char field[600];
    memset(field, 'f', sizeof(field) - 1);
    field[sizeof(field) - 1] = '\0';
    snprintf(line, sizeof(line), "HSET h %s v", field);
    const char *r = q(&c, line);
    ck_assert_msg(strncmp(r, "-ERR hash field too long", 24) == 0, "%s", r);
    snprintf(line, sizeof(line), "HGET h %s", field);
    EQ(line, "$-1\r\n");
}
END_TEST

Suite *hash_suite(void);
Suite *hash_suite(void)
{
    Suite *s = suite_create("hash");
    TCase *tc = tcase_create("hash");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_hash_field_commands_answer_as_redis);
    tcase_add_test(tc, test_hash_increments_answer_as_redis);
    tcase_add_test(tc, test_hash_whole_hash_reads);
    tcase_add_test(tc, test_hash_wrongtype_both_ways);
    tcase_add_test(tc, test_hash_watch_sees_a_change_of_the_hash);
    tcase_add_test(tc, test_hash_limits_are_clear_errors);
    tcase_add_test(tc, test_hash_other_types_are_refused_naming_the_type);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(hash_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    q_release();
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
