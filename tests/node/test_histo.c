/*
 * test_histo.c - the hot-path histogram (net/node/histo.h): where values
 * land, what the quantile bound says, and that nothing is lost at the
 * edges.
 */
#include <check.h>
#include <stdint.h>
#include <string.h>

#include "histo.h"

/* A value lands in the bucket whose bound is the smallest power of two at
 * or above it, so the rendered "le" is exact. */
START_TEST(test_histo_value_lands_in_smallest_power_of_two_at_or_above_it)
{
    ck_assert_uint_eq(histo_bucket(0), 0);
    ck_assert_uint_eq(histo_bucket(1), 0);
    ck_assert_uint_eq(histo_bucket(2), 1);
    ck_assert_uint_eq(histo_bucket(3), 2);
    ck_assert_uint_eq(histo_bucket(4), 2);
    ck_assert_uint_eq(histo_bucket(5), 3);
    ck_assert_uint_eq(histo_bucket(1024), 10);
    ck_assert_uint_eq(histo_bucket(1025), 11);
    for (unsigned b = 0; b + 1 < HISTO_BUCKETS; b++) {
        uint64_t bound = histo_bound(b);
        ck_assert_uint_eq(histo_bucket(bound), b);
        ck_assert_uint_eq(histo_bucket(bound + 1), b + 1);
    }
}
END_TEST

/* Values beyond the last finite bound go to the last (+Inf) bucket, never
 * past the array. */
START_TEST(test_histo_huge_values_land_in_the_last_bucket)
{
    struct histo h;
    memset(&h, 0, sizeof(h));
    histo_add(&h, histo_bound(HISTO_BUCKETS - 2) + 1);
    histo_add(&h, UINT64_MAX / 2);
    histo_add(&h, UINT64_MAX);
    ck_assert_uint_eq(h.buckets[HISTO_BUCKETS - 1], 3);
    ck_assert_uint_eq(h.count, 3);
    ck_assert_uint_eq(histo_bound(HISTO_BUCKETS - 1), UINT64_MAX);
}
END_TEST

/* Count and sum follow the adds, and the buckets add up to the count. */
START_TEST(test_histo_count_and_sum_follow_the_adds)
{
    struct histo h;
    uint64_t total = 0, in_buckets = 0;
    memset(&h, 0, sizeof(h));
    for (uint64_t v = 0; v < 5000; v += 7) {
        histo_add(&h, v);
        total += v;
    }
    for (unsigned b = 0; b < HISTO_BUCKETS; b++) {
        in_buckets += h.buckets[b];
    }
    ck_assert_uint_eq(h.count, 715);
    ck_assert_uint_eq(in_buckets, h.count);
    ck_assert_uint_eq(h.sum, total);
}
END_TEST

/* The quantile is an upper bound within a factor of two: 99 fast values
 * and one slow one give a p50 at the fast bucket and a p99 still there,
 * a p100 at the slow one. */
START_TEST(test_histo_quantile_is_the_bound_of_the_bucket_holding_it)
{
    struct histo h;
    memset(&h, 0, sizeof(h));
    ck_assert_uint_eq(histo_quantile(&h, 0.99), 0);
    for (int i = 0; i < 99; i++) {
        histo_add(&h, 100);
    }
    histo_add(&h, 100000);
    ck_assert_uint_eq(histo_quantile(&h, 0.5), 128);
    ck_assert_uint_eq(histo_quantile(&h, 0.99), 128);
    ck_assert_uint_eq(histo_quantile(&h, 1.0), 131072);
    histo_add(&h, 100000);
    ck_assert_uint_eq(histo_quantile(&h, 0.99), 131072);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("histo");
    TCase *tc = tcase_create("histo");
    tcase_add_test(
        tc, test_histo_value_lands_in_smallest_power_of_two_at_or_above_it);
    tcase_add_test(tc, test_histo_huge_values_land_in_the_last_bucket);
    tcase_add_test(tc, test_histo_count_and_sum_follow_the_adds);
    tcase_add_test(tc,
                   test_histo_quantile_is_the_bound_of_the_bucket_holding_it);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? 0 : 1;
}
