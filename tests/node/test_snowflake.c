/*
 * test_snowflake.c - coordination-free IDs (net/node/snowflake.c) with a
 * clock the test moves: increasing and unique through bursts, clock steps
 * backwards and restarts; refused, not repeated, when the clock is too
 * far behind.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "snowflake.h"

static uint64_t now_ms;
static char dir[64];
static char path[128];

static uint64_t test_clock(void *arg)
{
    (void)arg;
    return now_ms;
}

static void setup(void)
{
    snprintf(dir, sizeof(dir), "/tmp/ballot-snowflake-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(dir));
    snprintf(path, sizeof(path), "%s/snowflake", dir);
    now_ms = SNOWFLAKE_EPOCH_MS + 1000000;
}

static void teardown(void)
{
    unlink(path);
    rmdir(dir);
}

static uint64_t mint(struct snowflake *sf)
{
    uint64_t id;
    ck_assert_int_eq(snowflake_next(sf, &id, 1, NULL), 0);
    return id;
}

/* IDs carry the member id and the time, and grow: within one ms through
 * the sequence, past 4,096 in one ms into the next ms (borrowed), and
 * across blocks. */
START_TEST(test_snowflake_ids_grow_and_carry_node_and_time)
{
    struct snowflake sf;
    static uint64_t ids[3 * SNOWFLAKE_BATCH_MAX];
    ck_assert_int_eq(snowflake_open(&sf, 7, path, test_clock, NULL), 0);
    uint64_t first = mint(&sf);
    ck_assert_uint_eq(snowflake_node(first), 7);
    ck_assert_uint_eq(snowflake_ms(first), now_ms);
    for (int b = 0; b < 3; b++) {
        ck_assert_int_eq(snowflake_next(&sf, ids + b * SNOWFLAKE_BATCH_MAX,
                                        SNOWFLAKE_BATCH_MAX, NULL),
                         0);
    }
    uint64_t prev = first;
    for (size_t i = 0; i < 3 * SNOWFLAKE_BATCH_MAX; i++) {
        ck_assert_uint_gt(ids[i], prev);
        ck_assert_uint_eq(snowflake_node(ids[i]), 7);
        prev = ids[i];
    }
    /* 12,289 IDs in one clock ms: three borrowed ms. */
    ck_assert_uint_eq(snowflake_ms(prev), now_ms + 3);
    now_ms += 10;
    uint64_t later = mint(&sf);
    ck_assert_uint_gt(later, prev);
    ck_assert_uint_eq(snowflake_ms(later), now_ms);
    ck_assert_int_eq(snowflake_next(&sf, ids, 0, NULL), SNOWFLAKE_EINVAL);
    ck_assert_int_eq(snowflake_next(&sf, ids, SNOWFLAKE_BATCH_MAX + 1, NULL),
                     SNOWFLAKE_EINVAL);
    snowflake_close(&sf);
}
END_TEST

/* The clock steps back: a small step goes on from the last ID (never
 * repeating), a step beyond the borrowing bound is refused with how far
 * behind it is, and minting resumes once the clock catches up. */
START_TEST(test_snowflake_clock_step_back_never_repeats)
{
    struct snowflake sf;
    uint64_t behind = 0, id;
    ck_assert_int_eq(snowflake_open(&sf, 3, path, test_clock, NULL), 0);
    uint64_t a = mint(&sf);
    now_ms -= 2000;
    uint64_t b = mint(&sf);
    ck_assert_uint_gt(b, a);
    now_ms -= 10000;
    ck_assert_int_eq(snowflake_next(&sf, &id, 1, &behind), SNOWFLAKE_ECLOCK);
    ck_assert_uint_gt(behind, SNOWFLAKE_BORROW_MAX_MS);
    now_ms += 12001;
    uint64_t c = mint(&sf);
    ck_assert_uint_gt(c, b);
    snowflake_close(&sf);
}
END_TEST

/* A restart goes on above everything minted before it, even when the
 * clock went back while the node was down; the mark is kept durably in
 * its file, and a damaged file is refused rather than trusted. */
START_TEST(test_snowflake_restart_with_clock_back_never_repeats)
{
    struct snowflake sf;
    uint64_t last = 0;
    ck_assert_int_eq(snowflake_open(&sf, 9, path, test_clock, NULL), 0);
    for (int i = 0; i < 1000; i++) {
        last = mint(&sf);
        now_ms += (i % 7 == 0);
    }
    snowflake_close(&sf);
    now_ms -= 800; /* the machine's clock moved back while it was down */
    ck_assert_int_eq(snowflake_open(&sf, 9, path, test_clock, NULL), 0);
    uint64_t next = mint(&sf);
    ck_assert_uint_gt(next, last);
    snowflake_close(&sf);

    FILE *f = fopen(path, "w");
    fputs("garbage", f);
    fclose(f);
    ck_assert_int_eq(snowflake_open(&sf, 9, path, test_clock, NULL),
                     SNOWFLAKE_EIO);
    ck_assert_int_eq(snowflake_open(&sf, 0, path, test_clock, NULL),
                     SNOWFLAKE_EINVAL);
    ck_assert_int_eq(
        snowflake_open(&sf, SNOWFLAKE_NODE_MAX + 1, path, test_clock, NULL),
        SNOWFLAKE_EINVAL);
}
END_TEST

/* Two members minting at the same instant never collide. */
START_TEST(test_snowflake_members_never_collide)
{
    struct snowflake a, b;
    char other[160];
    static uint64_t ia[1000], ib[1000];
    snprintf(other, sizeof(other), "%s.b", path);
    ck_assert_int_eq(snowflake_open(&a, 1, path, test_clock, NULL), 0);
    ck_assert_int_eq(snowflake_open(&b, 2, other, test_clock, NULL), 0);
    ck_assert_int_eq(snowflake_next(&a, ia, 1000, NULL), 0);
    ck_assert_int_eq(snowflake_next(&b, ib, 1000, NULL), 0);
    int same = 0;
    for (int i = 0; i < 1000; i++) {
        for (int j = 0; j < 1000; j++) {
            same += ia[i] == ib[j];
        }
    }
    ck_assert_int_eq(same, 0);
    snowflake_close(&a);
    snowflake_close(&b);
    unlink(other);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("snowflake");
    TCase *tc = tcase_create("snowflake");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, test_snowflake_ids_grow_and_carry_node_and_time);
    tcase_add_test(tc, test_snowflake_clock_step_back_never_repeats);
    tcase_add_test(tc, test_snowflake_restart_with_clock_back_never_repeats);
    tcase_add_test(tc, test_snowflake_members_never_collide);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? 0 : 1;
}
