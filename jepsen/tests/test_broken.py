"""Each deliberately broken build fails its matching run: the suite
would catch the bug (docs/jepsen.md)."""
import os
import shutil
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import util  # noqa: E402

import broken  # noqa: E402

TIME = float(os.environ.get("BALLOT_JEPSEN_BROKEN_TIME", "12"))


class TestBrokenBuildsAreCaught(unittest.TestCase):
    def setUp(self):
        self.store = tempfile.mkdtemp(prefix="bj-broken-")

    def tearDown(self):
        shutil.rmtree(self.store, ignore_errors=True)

    def check(self, bug):
        # A fault finds a bug with some probability per run (a machine
        # crash must land between a write and its missing fdatasync): the
        # bug counts as caught if any of three seeds' runs is invalid, and
        # a build that passes all three is reported with every verdict.
        verdicts = []
        for seed in (1, 2, 3):
            d, v = broken.run(bug, TIME, self.store, seed=seed, report=False)
            self.assertIsNone(v.get("error"), v.get("error"))
            if v["valid"] is False:
                return
            verdicts.append(v.get("checker"))
        self.fail("%s not caught in 3 runs: %s" % (bug, verdicts))

    def test_reads_without_read_index_fail_register_under_partitions(self):
        self.check("stale-reads")

    def test_retried_increments_without_request_ids_fail_counter_under_leader_kills(self):
        self.check("no-sessions")

    def test_a_wal_without_fdatasync_fails_set_under_machine_crashes(self):
        self.check("no-fdatasync")

    def test_a_leader_counting_its_unsynced_entries_fails_set_under_stale_quorums(self):
        self.check("leader-unsynced")

    def test_learners_that_vote_fail_set_when_cut_off_with_one_voter(self):
        self.check("learners-vote")

    def test_exec_ignoring_watched_keys_fails_append_via_watch(self):
        self.check("watch-ignored")


if __name__ == "__main__":
    util.require_root_and_ballotd()
    # ctest runs one break per test with -k: a pattern that selects nothing
    # (a renamed test) must fail, not pass having run nothing.
    result = unittest.main(exit=False).result
    sys.exit(0 if result.wasSuccessful() and result.testsRun > 0 else 1)
