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
    EQ("BLEASE GRANT 1000 FOO 1", "-ERR syntax: BLEASE GRANT ttl-ms [ID id]\r\n");
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
    EQ("BLEASE GRANT 1000 ID 5", "-ERR a lease with that id already exists\r\n");
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
