/*
 * test_lease.c - BLEASE and BPUT over the client port, against the fake
 * node (always a ready leader, its lease clock its loop's): replies, bad
 * input, keys ending with their lease, and BREQ around the writes (a
 * retried grant returns the first id and grants nothing more).
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "commands.h"
#include "fake_bnode.h"
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

/* Grant with an id, attach keys, read TTL and LIST, keep alive, revoke:
 * the attached keys go with the lease, the others stay. */
START_TEST(test_lease_grant_attach_ttl_keepalive_revoke)
{
    EQ("BLEASE GRANT 60000 ID 42", "*2\r\n:42\r\n:60000\r\n");
    EQ("BPUT a 1 LEASE 42", "+OK\r\n");
    EQ("BPUT b 2 LEASE 42", "+OK\r\n");
    EQ("BPUT c 3", "+OK\r\n");
    const char *r = q(&c, "BLEASE TTL 42 KEYS");
    /* [remaining, 60000, 2, [a, b]] with remaining close to 60000. */
    ck_assert_msg(strncmp(r, "*4\r\n:", 5) == 0, "%s", r);
    long remaining = strtol(r + 5, NULL, 10);
    ck_assert_int_gt(remaining, 50000);
    ck_assert_int_le(remaining, 60000);
    ck_assert_ptr_nonnull(
        strstr(r, ":60000\r\n:2\r\n*2\r\n$1\r\na\r\n$1\r\nb\r\n"));
    r = q(&c, "BLEASE KEEPALIVE 42");
    ck_assert_msg(r[0] == ':' && strtol(r + 1, NULL, 10) > 50000, "%s", r);
    EQ("BLEASE LIST", "*1\r\n:42\r\n");
    EQ("BLEASE REVOKE 42", ":2\r\n");
    EQ("GET a", "$-1\r\n");
    EQ("GET b", "$-1\r\n");
    EQ("GET c", "$1\r\n3\r\n");
    EQ("BLEASE LIST", "*0\r\n");
}
END_TEST

/* Every bad input gets a clear error and proposes nothing. */
START_TEST(test_lease_bad_input_gets_clear_errors)
{
    unsigned long p0 = fake_bnode_proposals(h.node);
    EQ("BLEASE GRANT 0", "-ERR lease TTL must be positive (ms)\r\n");
    EQ("BLEASE GRANT -5", "-ERR lease TTL must be positive (ms)\r\n");
    EQ("BLEASE GRANT x", "-ERR lease TTL must be an integer number of ms\r\n");
    EQ("BLEASE GRANT 315360000001",
       "-ERR lease TTL above the maximum of 315360000000 ms\r\n");
    EQ("BLEASE GRANT 1000 ID 0",
       "-ERR lease id must be an integer from 1 to 2^63-1\r\n");
    EQ("BLEASE GRANT 1000 FOO 1",
       "-ERR syntax: BLEASE GRANT ttl-ms [ID id]\r\n");
    EQ("BLEASE FROB 1",
       "-ERR unknown BLEASE subcommand 'FROB' (GRANT, KEEPALIVE, REVOKE, "
       "TTL, LIST)\r\n");
    EQ("BLEASE LIST COUNT 0", "-ERR COUNT must be 1 to 10000\r\n");
    EQ("BPUT k v LEASE", "-ERR syntax: BPUT key value [LEASE id]\r\n");
    ck_assert_uint_eq(fake_bnode_proposals(h.node) - p0, 0);
    /* Unknown leases: refused by the state machine, nothing written. */
    EQ("BLEASE REVOKE 77", "-ERR no such lease\r\n");
    EQ("BLEASE KEEPALIVE 77", "-ERR no such lease\r\n");
    EQ("BLEASE TTL 77", "-ERR no such lease\r\n");
    EQ("BPUT k v LEASE 77", "-ERR no such lease\r\n");
    EQ("GET k", "$-1\r\n");
    EQ("BLEASE GRANT 1000 ID 5", "*2\r\n:5\r\n:1000\r\n");
    EQ("BLEASE GRANT 1000 ID 5",
       "-ERR a lease with that id already exists\r\n");
}
END_TEST

/* A retried grant inside BREQ returns the first grant's reply and grants
 * nothing more; so do a retried revoke and BPUT. */
START_TEST(test_lease_breq_retried_grant_never_double_grants)
{
    EQ("BREQ 50 1 BLEASE GRANT 9000 ID 8", "*2\r\n:8\r\n:9000\r\n");
    unsigned long p0 = fake_bnode_proposals(h.node);
    EQ("BREQ 50 1 BLEASE GRANT 9000 ID 8", "*2\r\n:8\r\n:9000\r\n");
    ck_assert_uint_eq(fake_bnode_proposals(h.node) - p0, 1);
    EQ("BLEASE LIST", "*1\r\n:8\r\n");
    EQ("BREQ 50 2 BPUT k v LEASE 8", "+OK\r\n");
    EQ("BREQ 50 2 BPUT k v LEASE 8", "+OK\r\n");
    EQ("BREQ 50 3 BLEASE REVOKE 8", ":1\r\n");
    /* The retry of the revoke gets its kept result, not "no such lease". */
    EQ("BREQ 50 3 BLEASE REVOKE 8", ":1\r\n");
    EQ("BLEASE LIST", "*0\r\n");
    /* Keep-alives run inside BREQ too (they may simply be repeated). */
    EQ("BREQ 50 4 BLEASE GRANT 9000 ID 9", "*2\r\n:9\r\n:9000\r\n");
    const char *r = q(&c, "BREQ 50 5 BLEASE KEEPALIVE 9");
    ck_assert_msg(r[0] == ':', "%s", r);
}
END_TEST

/* Writes on a follower are redirected, like every proposal. */
START_TEST(test_lease_commands_on_a_follower_are_redirected)
{
    fake_bnode_set_mode(h.node, FAKE_NOTLEADER);
    const char *r = q(&c, "BLEASE GRANT 1000");
    ck_assert_msg(strncmp(r, "-NOTLEADER", 10) == 0, "%s", r);
    r = q(&c, "BLEASE KEEPALIVE 1");
    ck_assert_msg(strncmp(r, "-NOTLEADER", 10) == 0, "%s", r);
    fake_bnode_set_mode(h.node, FAKE_OK);
}
END_TEST

/* Redis expiry with Redis's replies: TTL/PTTL -2 and -1, SET EX/PX/
 * KEEPTTL, SETEX, PSETEX, EXPIRE's conditions, PERSIST, GETEX; a key whose
 * time has passed is gone for every read at once, though nothing deleted
 * it yet (the fake node runs no expiry scan). */
START_TEST(test_expire_commands_reply_like_redis)
{
    EQ("TTL nokey", ":-2\r\n");
    EQ("PTTL nokey", ":-2\r\n");
    EQ("SET k v", "+OK\r\n");
    EQ("TTL k", ":-1\r\n");
    EQ("EXPIRE k 100", ":1\r\n");
    EQ("TTL k", ":100\r\n");
    const char *r = q(&c, "PTTL k");
    long ms = strtol(r + 1, NULL, 10);
    ck_assert_msg(ms > 95000 && ms <= 100000, "%s", r);
    EQ("EXPIRE k 50 NX", ":0\r\n");
    EQ("EXPIRE k 50 GT", ":0\r\n");
    EQ("EXPIRE k 50 LT", ":1\r\n");
    EQ("TTL k", ":50\r\n");
    EQ("EXPIRE k 60 XX", ":1\r\n");
    EQ("EXPIRE nokey 10", ":0\r\n");
    EQ("PERSIST k", ":1\r\n");
    EQ("PERSIST k", ":0\r\n");
    EQ("TTL k", ":-1\r\n");
    EQ("SET k v EX 30", "+OK\r\n");
    EQ("TTL k", ":30\r\n");
    EQ("SET k w KEEPTTL", "+OK\r\n");
    EQ("TTL k", ":30\r\n");
    EQ("INCR n", ":1\r\n");
    EQ("EXPIRE n 40", ":1\r\n");
    EQ("INCR n", ":2\r\n");
    EQ("TTL n", ":40\r\n"); /* INCR keeps it */
    EQ("SET k w", "+OK\r\n");
    EQ("TTL k", ":-1\r\n"); /* a plain SET clears it */
    EQ("SETEX s 20 v", "+OK\r\n");
    EQ("TTL s", ":20\r\n");
    EQ("PSETEX p 20000 v", "+OK\r\n");
    EQ("TTL p", ":20\r\n");
    EQ("GETEX s PERSIST", "$1\r\nv\r\n");
    EQ("TTL s", ":-1\r\n");
    EQ("GETEX s EX 70", "$1\r\nv\r\n");
    EQ("TTL s", ":70\r\n");
    EQ("GETEX s", "$1\r\nv\r\n");
    EQ("GETEX nokey EX 5", "$-1\r\n");
    EQ("SET k x GET EX 10", "$1\r\nw\r\n");
    EQ("TTL k", ":10\r\n");
    EQ("SET k y NX EX 10", "$-1\r\n");
    EQ("SET k y XX PX 20000", "+OK\r\n");
    EQ("TTL k", ":20\r\n");
}
END_TEST

static uint64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* A time that has passed: the key is gone for every read at once. */
START_TEST(test_expire_passed_keys_vanish_from_every_read)
{
    /* 300 ms to live; the check that all four exist counts only if it
     * was answered within them (a loaded machine may take longer). */
    uint64_t t0 = mono_ms();
    EQ("SET a 1 PX 300", "+OK\r\n");
    EQ("SET b 2", "+OK\r\n");
    EQ("MSET c 3 d 4", "+OK\r\n");
    EQ("PEXPIRE d 300", ":1\r\n");
    const char *r = q(&c, "EXISTS a b c d");
    if (mono_ms() - t0 < 300) {
        ck_assert_str_eq(r, ":4\r\n");
    }
    usleep(450 * 1000);
    EQ("GET a", "$-1\r\n");
    EQ("EXISTS a b c d", ":2\r\n");
    EQ("MGET a b c d", "*4\r\n$-1\r\n$1\r\n2\r\n$1\r\n3\r\n$-1\r\n");
    EQ("KEYS *", "*2\r\n$1\r\nb\r\n$1\r\nc\r\n");
    EQ("TTL a", ":-2\r\n");
    /* Revision 3 (EXPIRE moves none); 2 keys in the range. */
    EQ("BRANGE a z KEYSONLY",
       "*4\r\n:3\r\n:2\r\n:0\r\n*2\r\n$1\r\nb\r\n$1\r\nc\r\n");
    /* A past time given to EXPIRE deletes at once, as in Redis. */
    EQ("EXPIRE b -1", ":1\r\n");
    EQ("GET b", "$-1\r\n");
    EQ("EXPIREAT c 1", ":1\r\n");
    EQ("GET c", "$-1\r\n");
}
END_TEST

/* Redis's errors for bad expiry input. */
START_TEST(test_expire_bad_input_gets_redis_errors)
{
    EQ("SET k v EX 0", "-ERR invalid expire time in 'set' command\r\n");
    EQ("SET k v EX -3", "-ERR invalid expire time in 'set' command\r\n");
    EQ("SET k v PX x", "-ERR value is not an integer or out of range\r\n");
    EQ("SET k v EX 10 PX 10", "-ERR syntax error\r\n");
    EQ("SET k v EX 10 KEEPTTL", "-ERR syntax error\r\n");
    EQ("SET k v EX", "-ERR syntax error\r\n");
    EQ("SETEX k 0 v", "-ERR invalid expire time in 'setex' command\r\n");
    EQ("PSETEX k -1 v", "-ERR invalid expire time in 'psetex' command\r\n");
    EQ("EXPIRE k x", "-ERR value is not an integer or out of range\r\n");
    EQ("EXPIRE k 10 NX XX",
       "-ERR NX and XX, GT or LT options at the same time are not "
       "compatible\r\n");
    EQ("EXPIRE k 10 GT LT",
       "-ERR GT and LT options at the same time are not compatible\r\n");
    EQ("EXPIRE k 10 FOO", "-ERR Unsupported option FOO\r\n");
    /* GETEX answers a missing key before it looks at the time. */
    EQ("GETEX k EX 0", "$-1\r\n");
    EQ("SET g v", "+OK\r\n");
    EQ("GETEX g EX 0", "-ERR invalid expire time in 'getex' command\r\n");
    EQ("GETEX g PX x", "-ERR value is not an integer or out of range\r\n");
    EQ("GETEX k PERSIST EX 10", "-ERR syntax error\r\n");
    EQ("GETEX k FOO", "-ERR syntax error\r\n");
    EQ("TTL", "-ERR wrong number of arguments for 'ttl' command\r\n");
    EQ("GET k", "$-1\r\n");
}
END_TEST

/* Expiry writes inside BREQ run once; a retry gets the first reply. */
START_TEST(test_expire_breq_applies_once)
{
    EQ("SET k v", "+OK\r\n");
    EQ("BREQ 60 1 EXPIRE k 100 NX", ":1\r\n");
    unsigned long p0 = fake_bnode_proposals(h.node);
    EQ("BREQ 60 1 EXPIRE k 100 NX", ":1\r\n");
    ck_assert_uint_eq(fake_bnode_proposals(h.node) - p0, 1);
    EQ("BREQ 60 2 SETEX s 10 v", "+OK\r\n");
    EQ("BREQ 60 2 SETEX s 10 v", "+OK\r\n");
    EQ("BREQ 60 3 GETEX s PERSIST", "$1\r\nv\r\n");
    EQ("BREQ 60 3 GETEX s PERSIST", "$1\r\nv\r\n");
    EQ("BREQ 60 4 SET t v EX 10", "+OK\r\n");
    EQ("TTL t", ":10\r\n");
    EQ("BREQ 60 5 PERSIST t", ":1\r\n");
    EQ("BREQ 60 5 PERSIST t", ":1\r\n");
    EQ("TTL t", ":-1\r\n");
}
END_TEST

static Suite *lease_suite(void)
{
    Suite *s = suite_create("lease");
    TCase *tc = tcase_create("core");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_lease_grant_attach_ttl_keepalive_revoke);
    tcase_add_test(tc, test_lease_bad_input_gets_clear_errors);
    tcase_add_test(tc, test_lease_breq_retried_grant_never_double_grants);
    tcase_add_test(tc, test_lease_commands_on_a_follower_are_redirected);
    tcase_add_test(tc, test_expire_commands_reply_like_redis);
    tcase_add_test(tc, test_expire_passed_keys_vanish_from_every_read);
    tcase_add_test(tc, test_expire_bad_input_gets_redis_errors);
    tcase_add_test(tc, test_expire_breq_applies_once);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(lease_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
