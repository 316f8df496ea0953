"""Unit tests of every checker on hand-made valid and invalid histories: a
checker that accepted everything would fail the invalid ones."""
import os
import re
import random
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from ballot_jepsen import checkers, elle, history, linear  # noqa: E402
from hist import H  # noqa: E402


def reg(h, p, f, k, v, s, e=None, t="ok", out="same"):
    if out != "same":
        out = [k, out]
    return h.op(p, f, [k, v], s, e, t, out)


class TestLinearizability(unittest.TestCase):
    def test_sequential_writes_and_reads_are_linearizable(self):
        h = H()
        reg(h, 0, "write", 1, 3, 0, 1)
        reg(h, 0, "read", 1, None, 2, 3, out=3)
        reg(h, 1, "cas", 1, [3, 4], 4, 5)
        reg(h, 1, "read", 1, None, 6, 7, out=4)
        self.assertTrue(linear.check_independent(h.ops())["valid"])

    def test_stale_read_after_a_completed_write_is_not_linearizable(self):
        h = H()
        reg(h, 0, "write", 1, 1, 0, 1)
        reg(h, 0, "write", 1, 2, 2, 3)
        reg(h, 1, "read", 1, None, 4, 5, out=1)
        r = linear.check_independent(h.ops())
        self.assertFalse(r["valid"])
        cx = r["failures"]["1"]
        self.assertIn("read", cx["op"])
        self.assertEqual(cx["state_before"], 2)
        self.assertIn("write 2", cx["last_write"])

    def test_concurrent_read_may_see_either_value(self):
        h = H()
        reg(h, 0, "write", 1, 1, 0, 1)
        reg(h, 0, "write", 1, 2, 2, 6)
        reg(h, 1, "read", 1, None, 3, 4, out=1)
        reg(h, 2, "read", 1, None, 3, 5, out=2)
        self.assertTrue(linear.check_independent(h.ops())["valid"])

    def test_reads_that_go_back_in_time_are_not_linearizable(self):
        h = H()
        reg(h, 0, "write", 1, 1, 0, 1)
        reg(h, 0, "write", 1, 2, 2, 10)
        reg(h, 1, "read", 1, None, 3, 4, out=2)
        reg(h, 2, "read", 1, None, 5, 6, out=1)
        self.assertFalse(linear.check_independent(h.ops())["valid"])

    def test_an_unknown_write_may_or_may_not_take_effect(self):
        h = H()
        reg(h, 0, "write", 1, 1, 0, 1)
        reg(h, 0, "write", 1, 2, 2, 3, t="info")
        reg(h, 1, "read", 1, None, 4, 5, out=1)
        reg(h, 1, "read", 1, None, 6, 7, out=2)
        self.assertTrue(linear.check_independent(h.ops())["valid"])
        # ... but not take effect, then be undone.
        reg(h, 1, "read", 1, None, 8, 9, out=1)
        self.assertFalse(linear.check_independent(h.ops())["valid"])

    def test_a_failed_write_never_takes_effect(self):
        h = H()
        reg(h, 0, "write", 1, 1, 0, 1)
        reg(h, 0, "write", 1, 2, 2, 3, t="fail")
        reg(h, 1, "read", 1, None, 4, 5, out=2)
        self.assertFalse(linear.check_independent(h.ops())["valid"])

    def test_a_cas_that_succeeded_on_the_wrong_value_is_caught(self):
        h = H()
        reg(h, 0, "write", 1, 0, 0, 1)
        reg(h, 0, "cas", 1, [1, 2], 2, 3)
        self.assertFalse(linear.check_independent(h.ops())["valid"])

    def test_keys_are_checked_independently(self):
        h = H()
        reg(h, 0, "write", 1, 1, 0, 1)
        reg(h, 1, "write", 2, 5, 0, 1)
        reg(h, 0, "read", 1, None, 2, 3, out=1)
        reg(h, 1, "read", 2, None, 2, 3, out=1)
        r = linear.check_independent(h.ops())
        self.assertFalse(r["valid"])
        self.assertEqual(r["failed_keys"], ["2"])

    def test_a_large_random_linearizable_history_passes(self):
        # A simulated register: each op takes effect at a random point of
        # its interval; the history is linearizable by construction.
        rng = random.Random(7)
        ops, t = [], 0
        for k in range(40):
            state = None
            live = []
            for i in range(120):
                t += rng.randint(1, 5)
                start, lin = t, t + rng.randint(0, 20)
                end = lin + rng.randint(0, 20)
                live.append((lin, start, end, rng.choice(["read", "write", "cas"]), rng.randrange(3),
                             rng.randrange(3)))
            live.sort()
            h = []
            for lin, start, end, f, a, b in live:
                if f == "read":
                    h.append((start, end, f, None, state, "ok"))
                elif f == "write":
                    state = a
                    h.append((start, end, f, a, a, "ok"))
                elif state == a:
                    state = b
                    h.append((start, end, f, [a, b], [a, b], "ok"))
                else:
                    h.append((start, end, f, [a, b], [a, b], "fail"))
            ops.append((k, h))
        hh = H()
        p = 0
        for k, h in ops:
            for start, end, f, v, out, typ in h:
                p += 1
                hh.op(p, f, [k, v], start, end, typ, [k, out])
        r = linear.check_independent(hh.ops())
        self.assertTrue(r["valid"], r)
        self.assertEqual(r["keys"], 40)


def txn(h, p, mops, s, e=None, t="ok", out=None):
    return h.op(p, "txn", mops, s, e, t, out if out is not None else "same")


class TestElle(unittest.TestCase):
    def test_serial_appends_and_reads_are_valid(self):
        h = H()
        txn(h, 0, [["append", 1, 1]], 0, 1)
        txn(h, 0, [["append", 1, 2], ["r", 1, None]], 2, 3, out=[["append", 1, 2], ["r", 1, [1, 2]]])
        txn(h, 1, [["r", 1, None]], 4, 5, out=[["r", 1, [1, 2]]])
        r = elle.check(h.ops())
        self.assertTrue(r["valid"], r)

    def test_g1a_aborted_read(self):
        h = H()
        txn(h, 0, [["append", 1, 1]], 0, 1, t="fail")
        txn(h, 1, [["r", 1, None]], 2, 3, out=[["r", 1, [1]]])
        self.assertIn("G1a", elle.check(h.ops())["anomaly_types"])

    def test_g1b_intermediate_read(self):
        h = H()
        txn(h, 0, [["append", 1, 1], ["append", 1, 2]], 0, 1)
        txn(h, 1, [["r", 1, None]], 2, 3, out=[["r", 1, [1]]])
        self.assertIn("G1b", elle.check(h.ops())["anomaly_types"])

    def test_g0_write_cycle(self):
        # T1 appends x1 then y1... T2 appends x2, y2; x = [1 2] but y = [2 1].
        h = H()
        txn(h, 0, [["append", "x", 1], ["append", "y", 1]], 0, 10)
        txn(h, 1, [["append", "x", 2], ["append", "y", 2]], 0, 10)
        txn(h, 2, [["r", "x", None], ["r", "y", None]], 11, 12,
            out=[["r", "x", [1, 2]], ["r", "y", [2, 1]]])
        r = elle.check(h.ops())
        self.assertIn("G0", r["anomaly_types"], r)

    def test_g1c_circular_information_flow(self):
        h = H()
        # T1 appends x1 and reads y seeing T2's y1; T2 appends y1 and reads x seeing x1.
        txn(h, 0, [["append", "x", 1], ["r", "y", None]], 0, 10,
            out=[["append", "x", 1], ["r", "y", [1]]])
        txn(h, 1, [["append", "y", 1], ["r", "x", None]], 0, 10,
            out=[["append", "y", 1], ["r", "x", [1]]])
        r = elle.check(h.ops())
        self.assertIn("G1c", r["anomaly_types"], r)

    def test_g_single_read_skew(self):
        h = H()
        txn(h, 0, [["append", "x", 1], ["append", "y", 1]], 0, 1)
        # T2 reads x before T3's append, y after it: a single anti-dependency.
        txn(h, 1, [["r", "x", None], ["r", "y", None]], 2, 10,
            out=[["r", "x", [1]], ["r", "y", [1, 2]]])
        txn(h, 2, [["append", "x", 2], ["append", "y", 2]], 2, 10)
        txn(h, 3, [["r", "x", None]], 11, 12, out=[["r", "x", [1, 2]]])
        r = elle.check(h.ops())
        self.assertIn("G-single", r["anomaly_types"], r)

    def test_g2_write_skew(self):
        h = H()
        # Each reads the key the other appends, neither sees the other.
        txn(h, 0, [["r", "x", None], ["append", "y", 1]], 0, 10,
            out=[["r", "x", []], ["append", "y", 1]])
        txn(h, 1, [["r", "y", None], ["append", "x", 1]], 0, 10,
            out=[["r", "y", []], ["append", "x", 1]])
        txn(h, 2, [["r", "x", None], ["r", "y", None]], 11, 12,
            out=[["r", "x", [1]], ["r", "y", [1]]])
        r = elle.check(h.ops())
        self.assertIn("G2", r["anomaly_types"], r)

    def test_stale_read_is_a_realtime_anomaly(self):
        h = H()
        txn(h, 0, [["append", "x", 1]], 0, 1)
        txn(h, 1, [["r", "x", None]], 2, 3, out=[["r", "x", []]])
        txn(h, 1, [["r", "x", None]], 4, 5, out=[["r", "x", [1]]])
        r = elle.check(h.ops())
        self.assertFalse(r["valid"])
        self.assertTrue(any(a.endswith("-realtime") or a == "lost-append" for a in r["anomaly_types"]), r)
        r = elle.check(h.ops(), realtime=False)
        self.assertNotIn("G-single-realtime", r["anomaly_types"])

    def test_lost_and_duplicated_appends(self):
        h = H()
        txn(h, 0, [["append", "x", 1]], 0, 1)
        txn(h, 0, [["append", "x", 2]], 2, 3)
        txn(h, 1, [["r", "x", None]], 4, 5, out=[["r", "x", [2]]])
        r = elle.check(h.ops())
        self.assertIn("lost-append", r["anomaly_types"], r)
        h = H()
        txn(h, 0, [["append", "x", 1]], 0, 1)
        txn(h, 1, [["r", "x", None]], 4, 5, out=[["r", "x", [1, 1]]])
        self.assertIn("duplicate-elements", elle.check(h.ops())["anomaly_types"])

    def test_incompatible_orders_and_garbage(self):
        h = H()
        txn(h, 0, [["append", "x", 1]], 0, 10)
        txn(h, 0, [["append", "x", 2]], 0, 10)
        txn(h, 1, [["r", "x", None]], 11, 12, out=[["r", "x", [1, 2]]])
        txn(h, 2, [["r", "x", None]], 11, 12, out=[["r", "x", [2, 1]]])
        txn(h, 3, [["r", "x", None]], 11, 12, out=[["r", "x", [9]]])
        r = elle.check(h.ops())
        self.assertIn("incompatible-order", r["anomaly_types"])
        self.assertIn("garbage", r["anomaly_types"])

    def test_an_unknown_append_may_be_read(self):
        h = H()
        txn(h, 0, [["append", "x", 1]], 0, 1, t="info")
        txn(h, 1, [["r", "x", None]], 2, 3, out=[["r", "x", [1]]])
        self.assertTrue(elle.check(h.ops())["valid"])


class TestSet(unittest.TestCase):
    def test_every_acknowledged_add_in_the_final_read_is_valid(self):
        h = H()
        h.op(0, "add", 1, 0, 1).op(1, "add", 2, 0, 1, "info").op(1, "add", 3, 2, 3, "fail")
        h.op(0, "read", None, 4, 5, out=[1, 2])
        self.assertTrue(checkers.check_set(h.ops())["valid"])

    def test_a_lost_add_an_unexpected_element_and_a_stale_read(self):
        h = H()
        h.op(0, "add", 1, 0, 1).op(0, "add", 2, 2, 3)
        h.op(1, "read", None, 4, 5, out=[1])
        h.op(1, "read", None, 6, 7, out=[1, 2, 7])
        r = checkers.check_set(h.ops())
        self.assertFalse(r["valid"])
        self.assertEqual(r["stale_read_count"], 1)
        self.assertEqual(r["unexpected"], [7])
        h = H()
        h.op(0, "add", 1, 0, 1).op(1, "read", None, 2, 3, out=[])
        self.assertEqual(checkers.check_set(h.ops())["lost"], [1])


class TestCounter(unittest.TestCase):
    def test_reads_within_bounds_are_valid(self):
        h = H()
        h.op(0, "add", 1, 0, 1, out=[1, 1]).op(1, "add", 1, 0, 5, "info")
        h.op(0, "read", None, 2, 3, out=1).op(0, "read", None, 6, 7, out=2)
        self.assertTrue(checkers.check_counter(h.ops())["valid"])

    def test_an_increment_counted_twice_or_lost_is_caught(self):
        h = H()
        h.op(0, "add", 1, 0, 1, out=[1, 1]).op(0, "read", None, 2, 3, out=2)
        self.assertFalse(checkers.check_counter(h.ops())["valid"])
        h = H()
        h.op(0, "add", 1, 0, 1, out=[1, 1]).op(0, "read", None, 2, 3, out=0)
        self.assertFalse(checkers.check_counter(h.ops())["valid"])
        h = H()
        h.op(0, "add", 1, 0, 1, out=[1, 1]).op(1, "add", 1, 0, 1, out=[1, 1])
        h.op(0, "read", None, 2, 3, out=2)
        self.assertFalse(checkers.check_counter(h.ops())["valid"])


def sf(ms, member, seq):
    """A snowflake ID (docs/coordination.md)."""
    return (ms << 22) | (member << 12) | seq


class TestLock(unittest.TestCase):
    def test_holders_in_turn_with_increasing_tokens_are_valid(self):
        h = H()
        h.op(0, "hold", None, 0, 1, out=3)
        h.op(1, "hold", None, 0, 2, out=5)  # waited for the first
        h.op(2, "hold", None, 0, 9, type_="info")  # its append may be in
        h.op(0, "hold", None, 3, 4, out=9)
        h.op(0, "read", None, 10, 11, out=[3, 5, 7, 9])
        r = checkers.check_lock(h.ops())
        self.assertTrue(r["valid"], r)

    def test_two_holders_with_the_same_token_are_caught(self):
        h = H()
        h.op(0, "hold", None, 0, 1, out=3)
        h.op(1, "hold", None, 0, 1, out=3)
        h.op(0, "read", None, 2, 3, out=[3, 4])
        r = checkers.check_lock(h.ops())
        self.assertFalse(r["valid"])
        self.assertEqual(r["same_token"][0]["token"], 3)

    def test_a_stale_holders_write_after_a_newer_one_is_caught(self):
        h = H()
        h.op(0, "hold", None, 0, 5, out=3)  # paused, then written late
        h.op(1, "hold", None, 1, 2, out=6)
        h.op(0, "read", None, 6, 7, out=[6, 3])
        r = checkers.check_lock(h.ops())
        self.assertFalse(r["valid"])
        self.assertEqual(r["decreasing"][0]["token"], 3)

    def test_a_token_going_back_in_real_time_or_a_lost_append_is_caught(self):
        h = H()
        h.op(0, "hold", None, 0, 1, out=8)
        h.op(1, "hold", None, 2, 3, out=4)  # began after 8 ended
        h.op(0, "read", None, 4, 5, out=[4, 8])
        r = checkers.check_lock(h.ops())
        self.assertFalse(r["valid"])
        self.assertEqual(r["backwards"][0]["earlier_token"], 8)
        h = H()
        h.op(0, "hold", None, 0, 1, out=8)
        h.op(0, "read", None, 2, 3, out=[])
        self.assertEqual(checkers.check_lock(h.ops())["lost"], [8])


class TestIds(unittest.TestCase):
    def test_unique_ids_increasing_per_node_are_valid(self):
        h = H()
        h.op(0, "id", 2, 0, 1, out=[1, [sf(5, 1, 0), sf(5, 1, 1)]])
        h.op(1, "id", 1, 0, 1, out=[2, [sf(3, 2, 0)]])  # another node's clock is behind
        h.op(0, "id", 1, 2, 3, out=[1, [sf(6, 1, 0)]])
        # Concurrent batches on one node may interleave either way.
        h.op(2, "id", 1, 2, 5, out=[1, [sf(5, 1, 7)]])
        h.op(1, "id", 1, 4, 6, out=[2, [sf(9, 2, 0)]])
        r = checkers.check_ids(h.ops())
        self.assertTrue(r["valid"], r)

    def test_a_duplicate_id_is_caught(self):
        h = H()
        h.op(0, "id", 1, 0, 1, out=[1, [sf(5, 1, 0)]])
        h.op(1, "id", 1, 0, 1, out=[1, [sf(5, 1, 0)]])
        r = checkers.check_ids(h.ops())
        self.assertFalse(r["valid"])
        self.assertEqual(r["duplicate_count"], 1)

    def test_an_id_below_an_earlier_one_of_the_same_node_is_caught(self):
        h = H()
        h.op(0, "id", 1, 0, 1, out=[1, [sf(9, 1, 0)]])
        h.op(0, "id", 1, 2, 3, out=[1, [sf(8, 1, 5)]])  # a clock that went back
        r = checkers.check_ids(h.ops())
        self.assertFalse(r["valid"])
        self.assertEqual(r["backwards"][0]["earlier_max_id"], sf(9, 1, 0))

    def test_sequence_ids_increase_across_the_cluster(self):
        h = H()
        h.op(0, "seq", 2, 0, 1, out=["seq", [1, 2]])
        h.op(1, "seq", 1, 0, 3, out=["seq", [4]])  # concurrent with the next
        h.op(0, "seq", 1, 2, 3, out=["seq", [3]])
        self.assertTrue(checkers.check_ids(h.ops())["valid"])
        h.op(2, "seq", 1, 4, 5, out=["seq", [3]])  # handed out again, and back
        r = checkers.check_ids(h.ops())
        self.assertFalse(r["valid"])
        self.assertEqual(r["duplicate_count"], 1)
        self.assertEqual(r["backwards"][0]["earlier_max_id"], 4)

    def test_a_foreign_member_id_or_a_batch_out_of_order_is_caught(self):
        h = H()
        h.op(0, "id", 1, 0, 1, out=[1, [sf(5, 2, 0)]])
        self.assertEqual(len(checkers.check_ids(h.ops())["wrong_member"]), 1)
        h = H()
        h.op(0, "id", 2, 0, 1, out=[1, [sf(5, 1, 1), sf(5, 1, 0)]])
        r = checkers.check_ids(h.ops())
        self.assertFalse(r["valid"])
        self.assertEqual(len(r["batch_disorder"]), 1)


def watch_history(streams, events=None, writes=("v1", "v2", "v3"), start=1):
    """Writes of w:0 (v1 at revision 1, v2 at 2, v3 at 3 by default) and
    the final history op carrying the committed @events and the
    watchers' @streams."""
    h = H()
    t = 0
    for v in writes:
        h.op(0, "write", [0, v], t, t + 1)
        t += 2
    if events is None:
        events = [[i + 1, "put", "w:0", v] for i, v in enumerate(writes)]
    final = {"from": start, "revision": events[-1][0] if events else 0, "events": events,
             "streams": streams}
    h.op(1, "history", [None, None], t, t + 1, out=final)
    return h.ops()


def seg(events, start=1, end=None):
    return {"start": start, "end": end if end is not None else (events[-1][0] if events else 0),
            "events": events}


E = [[1, "put", "w:0", "v1"], [2, "put", "w:0", "v2"], [3, "put", "w:0", "v3"]]


class TestWatch(unittest.TestCase):
    def test_streams_equal_to_the_history_are_valid(self):
        # One watcher whole; one that reconnected (two connections, one
        # segment); one whose history was compacted under it (a new
        # segment from revision 3).
        r = checkers.check_watch(watch_history({"0": [seg(E)], "1": [seg(E[:1] + E[1:])],
                                                "2": [seg(E[:1]), seg(E[2:], start=3)]}))
        self.assertTrue(r["valid"], r)

    def test_a_gap_a_repeat_or_a_reordering_is_caught(self):
        r = checkers.check_watch(watch_history({"0": [seg([E[0], E[2]])]}))
        self.assertFalse(r["valid"])
        self.assertEqual(r["missed"][0]["missing"], [2])
        r = checkers.check_watch(watch_history({"0": [seg([E[0], E[1], E[1], E[2]])]}))
        self.assertEqual(len(r["disorder"]), 1)
        r = checkers.check_watch(watch_history({"0": [seg([E[1], E[0], E[2]])]}))
        self.assertFalse(r["valid"])

    def test_an_event_unlike_the_history_or_another_watcher_is_caught(self):
        bad = [[1, "put", "w:0", "v1"], [2, "put", "w:0", "v3"], [3, "put", "w:0", "v3"]]
        r = checkers.check_watch(watch_history({"0": [seg(bad)]}))
        self.assertEqual(r["mismatch"][0]["revision"], 2)
        # Below the compaction point only the watchers can be compared.
        r = checkers.check_watch(watch_history({"0": [seg(E)], "1": [seg(bad)]},
                                               events=E[2:], start=3))
        self.assertFalse(r["valid"])
        self.assertEqual(r["disagree"][0]["revision"], 2)

    def test_a_watcher_that_never_caught_up_is_caught(self):
        r = checkers.check_watch(watch_history({"0": [seg(E)], "1": [seg(E[:2])]}))
        self.assertFalse(r["valid"])
        self.assertEqual(r["behind"], [{"watcher": "1", "last_revision": 2, "final": 3}])

    def test_a_lost_write_and_a_phantom_are_caught(self):
        # v2 was acknowledged, yet neither the history nor any stream has
        # it; v9 was never written.
        ev = [[1, "put", "w:0", "v1"], [3, "put", "w:0", "v3"], [4, "put", "w:0", "v9"]]
        r = checkers.check_watch(watch_history({"0": [seg(ev)]}, events=ev))
        self.assertFalse(r["valid"])
        self.assertEqual(r["lost"], [["write", "w:0", "v2"]])
        self.assertEqual(r["phantom"], [["write", "w:0", "v9"]])


class TestBank(unittest.TestCase):
    def test_reads_that_sum_to_the_total_are_valid(self):
        h = H()
        h.op(0, "read", None, 0, 1, out=[10, 10]).op(0, "read", None, 2, 3, out=[5, 15])
        self.assertTrue(checkers.check_bank(h.ops(), 2, 20)["valid"])

    def test_a_wrong_total_or_a_negative_balance_is_caught(self):
        h = H()
        h.op(0, "read", None, 0, 1, out=[10, 11])
        self.assertFalse(checkers.check_bank(h.ops(), 2, 20)["valid"])
        h = H()
        h.op(0, "read", None, 0, 1, out=[-1, 21])
        self.assertFalse(checkers.check_bank(h.ops(), 2, 20)["valid"])


class TestHistoryFiles(unittest.TestCase):
    def test_edn_has_jepsen_keywords_and_txn_micro_ops(self):
        op = {"index": 3, "time": 5, "type": "ok", "process": 1, "f": "txn",
              "value": [["append", 1, 2], ["r", 1, [2]]]}
        self.assertEqual(history.edn_op(op),
                         "{:index 3, :time 5, :type :ok, :process 1, :f :txn, "
                         ":value [[:append 1 2] [:r 1 [2]]]}")
        self.assertIn(":process :nemesis", history.edn_op(
            {"index": 0, "time": 0, "type": "info", "process": "nemesis", "f": "start", "value": None}))


if __name__ == "__main__":
    unittest.main()


class TestBrokenBuildsAreAllInCtest(unittest.TestCase):
    def test_each_broken_build_test_is_selected_by_exactly_one_ctest_pattern(self):
        # CMakeLists.txt registers one ctest test per break with a -k
        # pattern; a break added to test_broken.py without a pattern would
        # never run in CI.
        here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
        with open(os.path.join(here, "CMakeLists.txt")) as f:
            cm = f.read()
        m = re.search(r"foreach\(b ([^)]*)\)\s*add_test\(NAME jepsen\.broken", cm)
        self.assertIsNotNone(m, "no foreach of broken-build patterns in CMakeLists.txt")
        patterns = m.group(1).split()
        with open(os.path.join(here, "tests", "test_broken.py")) as f:
            methods = re.findall(r"^    def (test_\w+)", f.read(), re.M)
        self.assertTrue(methods)
        for name in methods:
            hits = [p for p in patterns if p in name]
            self.assertEqual(len(hits), 1, "%s matches %s" % (name, hits))
