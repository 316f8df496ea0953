/*
 * test_main.c - runs every storage suite (or the one named by
 * CK_RUN_SUITE, which ctest uses to run them in parallel).
 */
#include <check.h>
#include <stdlib.h>

Suite *wal_suite(void);
Suite *recovery_suite(void);
Suite *crash_suite(void);
Suite *faults_suite(void);

int main(void)
{
    SRunner *sr = srunner_create(wal_suite());
    int failed;

    srunner_add_suite(sr, recovery_suite());
    srunner_add_suite(sr, crash_suite());
    srunner_add_suite(sr, faults_suite());
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
