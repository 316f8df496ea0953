/*
 * main.c - runs one suite of the raft core's unit tests, named on the
 * command line (ctest registers each suite as its own test), or all.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "suites.h"

/* CMake passes RAFT_SUITES_PRESENT as X(name) X(name) ... for the suites
 * whose test_<name>.c exists. */
#define X(name) {#name, name##_suite},
static const struct
{
    const char *name;
    Suite *(*make)(void);
} suites[] = {RAFT_SUITES_PRESENT};
#undef X

int main(int argc, char **argv)
{
    SRunner *sr = NULL;
    size_t n = sizeof(suites) / sizeof(suites[0]);
    for (size_t i = 0; i < n; i++) {
        if (argc > 1 && strcmp(argv[1], suites[i].name) != 0) {
            continue;
        }
        if (sr == NULL) {
            sr = srunner_create(suites[i].make());
        } else {
            srunner_add_suite(sr, suites[i].make());
        }
    }
    if (sr == NULL) {
        fprintf(stderr, "unknown suite: %s\n", argv[1]);
        return 2;
    }
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
