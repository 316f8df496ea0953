/*
 * test_ids.c - cluster-wide sequence IDs (BSEQ, `ballot id`) against real
 * ballotd processes: never repeated and always increasing across leader
 * kills and restarts, exactly once with a request id, clear errors for
 * bad input.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"

static struct cluster cl;

static void teardown(void)
{
    cl_close_all(&cl);
}

#define IDS_MAX 20000

/* Asks the node believed to lead for the next block of @count IDs of
 * "orders"; on success stores the block and returns 1, on an unknown or
 * refused outcome moves on to the next node and returns 0. */
static int take_block(unsigned *leader,
                      long long count,
                      long long *first,
                      long long *last)
{
    char n[24];
    snprintf(n, sizeof(n), "%lld", count);
    const char *argv[] = {"BSEQ", "orders", n};
    struct cl_reply r;
    unsigned id = *leader;
    int ok = 0;
    if (cl.nodes[id - 1].pid != 0 && cl_cmd(&cl, id, 1000, &r, 3, argv) == 0) {
        if (r.type == CL_ARRAY && r.n_elems == 2) {
            *first = r.elems[0].integer;
            *last = r.elems[1].integer;
            ok = 1;
        }
        cl_reply_free(&r);
    }
    if (!ok) {
        *leader = id % cl.n + 1;
    }
    return ok;
}

/* One client takes blocks of 1–5 IDs while the leader is SIGKILLed twice
 * (and restarted): every acknowledged ID is new, each block starts above
 * everything acknowledged before it (the sequence is linearizable), and
 * after the run the next ID is above all of them. IDs of requests whose
 * outcome was unknown may be skipped, never handed out again. */
START_TEST(test_ids_sequence_never_repeats_across_leader_kills)
{
    cl_start(&cl, 3);
    unsigned leader = cl_wait_leader(&cl, 10000);
    ck_assert_uint_ne(leader, 0);
    long long *seen = calloc(IDS_MAX, sizeof(*seen));
    ck_assert_ptr_nonnull(seen);
    size_t n_seen = 0;
    long long high = 0;
    unsigned kills = 0, killed = 0;
    uint64_t start = cl_now_ms(), end = start + 9000;
    for (unsigned i = 0; cl_now_ms() < end && n_seen + 5 < IDS_MAX; i++) {
        uint64_t t = cl_now_ms() - start;
        if (kills < 2 && t > 2000 + 3000 * kills) {
            unsigned l = cl_wait_leader(&cl, 5000);
            if (l != 0) {
                cl_kill(&cl, l);
                killed = l;
                kills++;
            }
        }
        if (killed != 0 && t > 1000 + 3000 * kills) {
            cl_start_node(&cl, killed);
            killed = 0;
        }
        long long first = 0, last = 0;
        if (!take_block(&leader, 1 + i % 5, &first, &last)) {
            continue;
        }
        ck_assert_msg(first > high && last >= first,
                      "block [%lld, %lld] after %lld was acknowledged", first,
                      last, high);
        ck_assert_int_eq(last - first + 1, 1 + i % 5);
        for (long long v = first; v <= last; v++) {
            seen[n_seen++] = v;
        }
        high = last;
    }
    ck_assert_uint_eq(kills, 2);
    ck_assert_uint_gt(n_seen, 50);
    if (killed != 0) {
        cl_start_node(&cl, killed);
    }
    /* Strictly increasing in acknowledgement order implies unique. */
    for (size_t i = 1; i < n_seen; i++) {
        ck_assert_int_gt(seen[i], seen[i - 1]);
    }
    long long first = 0, last = 0;
    uint64_t until = cl_now_ms() + 10000;
    while (!take_block(&leader, 1, &first, &last) && cl_now_ms() < until) {
        ;
    }
    ck_assert_int_gt(first, high);
    free(seen);
}
END_TEST

/* A request id makes BSEQ exactly-once: the retry gets the same block
 * (whatever COUNT it says), the next seq a new one. Each bad input gets a
 * clear error and hands nothing out. */
START_TEST(test_ids_sequence_retry_and_bad_input)
{
    cl_start(&cl, 3);
    unsigned leader = cl_wait_leader(&cl, 10000);
    ck_assert_uint_ne(leader, 0);
    struct cl_reply r;
    const char *once[] = {"BREQ", "77", "1", "BSEQ", "tickets", "10"};
    ck_assert_int_eq(cl_cmd(&cl, leader, 5000, &r, 6, once), 0);
    ck_assert_int_eq(r.type, CL_ARRAY);
    ck_assert_int_eq(r.elems[0].integer, 1);
    ck_assert_int_eq(r.elems[1].integer, 10);
    cl_reply_free(&r);
    const char *again[] = {"BREQ", "77", "1", "BSEQ", "tickets", "3"};
    ck_assert_int_eq(cl_cmd(&cl, leader, 5000, &r, 6, again), 0);
    ck_assert_int_eq(r.type, CL_ARRAY);
    ck_assert_int_eq(r.elems[0].integer, 1);
    ck_assert_int_eq(r.elems[1].integer, 10);
    cl_reply_free(&r);
    const char *next[] = {"BREQ", "77", "2", "BSEQ", "tickets"};
    ck_assert_int_eq(cl_cmd(&cl, leader, 5000, &r, 5, next), 0);
    ck_assert_int_eq(r.type, CL_INT);
    ck_assert_int_eq(r.integer, 11);
    cl_reply_free(&r);

    struct
    {
        int argc;
        const char *argv[4];
        const char *want; /* the start of the error */
    } bad[] = {
        {1, {"BSEQ"}, "ERR wrong number of arguments"},
        {4, {"BSEQ", "tickets", "1", "2"}, "ERR wrong number of arguments"},
        {3, {"BSEQ", "tickets", "0"}, "ERR COUNT must be 1 to 1000000"},
        {3, {"BSEQ", "tickets", "-5"}, "ERR COUNT must be 1 to 1000000"},
        {3, {"BSEQ", "tickets", "1000001"}, "ERR COUNT must be 1 to 1000000"},
        {3, {"BSEQ", "tickets", "ten"}, "ERR COUNT must be 1 to 1000000"},
        {2, {"BSEQ", ""}, "ERR a sequence needs a name"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        ck_assert_int_eq(
            cl_cmd(&cl, leader, 5000, &r, bad[i].argc, bad[i].argv), 0);
        ck_assert_msg(r.type == CL_ERR &&
                          strncmp(r.str, bad[i].want, strlen(bad[i].want)) == 0,
                      "case %zu: %s", i, r.type == CL_ERR ? r.str : "no error");
        cl_reply_free(&r);
    }
    /* Nothing above was handed out. */
    const char *one[] = {"BSEQ", "tickets"};
    ck_assert_int_eq(cl_cmd(&cl, leader, 5000, &r, 2, one), 0);
    ck_assert_int_eq(r.type, CL_INT);
    ck_assert_int_eq(r.integer, 12);
    cl_reply_free(&r);
}
END_TEST

/* `ballot id` prints the next IDs of a sequence, one per line, and of the
 * "default" sequence when none is named. */
START_TEST(test_ids_cli_prints_blocks_of_a_named_sequence)
{
    cl_start(&cl, 3);
    ck_assert_uint_ne(cl_wait_leader(&cl, 10000), 0);
    char eps[128], cmd[1024];
    snprintf(eps, sizeof(eps), "127.0.0.1:%d,127.0.0.1:%d,127.0.0.1:%d",
             cl.nodes[0].client_port, cl.nodes[1].client_port,
             cl.nodes[2].client_port);
    snprintf(cmd, sizeof(cmd),
             "'%s' --endpoints %s id --count 3 --name cli && "
             "'%s' --endpoints %s id --name cli && "
             "'%s' --endpoints %s id",
             BALLOT_PATH, eps, BALLOT_PATH, eps, BALLOT_PATH, eps);
    FILE *p = popen(cmd, "r");
    ck_assert_ptr_nonnull(p);
    char out[256] = {0};
    size_t n = fread(out, 1, sizeof(out) - 1, p);
    out[n] = '\0';
    ck_assert_int_eq(pclose(p), 0);
    ck_assert_str_eq(out, "1\n2\n3\n4\n1\n");
}
END_TEST

int main(int argc, char **argv)
{
    const struct cl_named_test tests[] = {
        {"sequence_never_repeats_across_leader_kills",
         test_ids_sequence_never_repeats_across_leader_kills},
        {"sequence_retry_and_bad_input", test_ids_sequence_retry_and_bad_input},
        {"cli_prints_blocks_of_a_named_sequence",
         test_ids_cli_prints_blocks_of_a_named_sequence},
    };
    return cl_run_tests("ids", tests, sizeof(tests) / sizeof(tests[0]), 120,
                        teardown, argc, argv);
}
