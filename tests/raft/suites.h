/*
 * suites.h - the Check suites of the raft core, one per area of the paper.
 */
#ifndef BALLOT_TESTS_RAFT_SUITES_H
#define BALLOT_TESTS_RAFT_SUITES_H

#include <check.h>

Suite *election_suite(void);
Suite *replication_suite(void);
Suite *snapshot_suite(void);
Suite *read_suite(void);
Suite *membership_suite(void);
Suite *transfer_suite(void);
Suite *untrusted_suite(void);
Suite *alloc_suite(void);
Suite *fallback_suite(void);

#endif
