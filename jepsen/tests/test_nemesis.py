"""Each nemesis bites: the fault is really in effect while it lasts, and
gone after it is healed. Real ballotd processes on the test's own slot of
loopback addresses; the iptables rules are in the slot's own chain."""
import os
import random
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import util  # noqa: E402
from util import commit, wait, write_n  # noqa: E402

from ballot_jepsen import net as netmod  # noqa: E402
from ballot_jepsen import nemesis as nem  # noqa: E402


class TestGrudges(unittest.TestCase):
    hosts3 = ["a", "b", "c"]
    hosts5 = ["a", "b", "c", "d", "e"]

    def sees(self, g, h, hosts):
        return {x for x in hosts if x not in g[h]}

    def test_isolating_the_leader_cuts_it_from_every_other_node(self):
        g = nem.grudge_for("partition-leader", self.hosts5, random.Random(1), "c")
        self.assertEqual(g["c"], {"a", "b", "d", "e"})
        for h in "abde":
            self.assertEqual(g[h], {"c"})

    def test_halves_split_into_a_minority_and_a_majority(self):
        for hosts in (self.hosts3, self.hosts5):
            g = nem.grudge_for("partition-halves", hosts, random.Random(2), None)
            sizes = sorted(len(self.sees(g, h, hosts)) for h in hosts)
            m = len(hosts) // 2
            self.assertEqual(sizes, [m] * m + [len(hosts) - m] * (len(hosts) - m))

    def test_ring_gives_every_node_a_different_majority(self):
        for hosts in (self.hosts3, self.hosts5):
            g = nem.grudge_for("partition-ring", hosts, random.Random(3), None)
            views = [frozenset(self.sees(g, h, hosts)) for h in hosts]
            for v in views:
                self.assertGreater(len(v), len(hosts) // 2)
            self.assertGreater(len(set(views)), 1)
            if len(hosts) == 5:
                self.assertEqual(len(set(views)), 5)

    def test_bridge_leaves_one_node_seeing_both_sides(self):
        g = nem.grudge_for("partition-bridge", self.hosts5, random.Random(4), None)
        bridges = [h for h in self.hosts5 if not g[h]]
        self.assertEqual(len(bridges), 1)
        others = [h for h in self.hosts5 if g[h]]
        for h in others:
            self.assertEqual(len(g[h]), 2)


class TestNemesesBite(util.ClusterCase):
    def follower(self):
        return next(n for n in self.c.nodes if n is not self.leader)

    def test_a_partitioned_follower_stops_advancing_its_commit_index(self):
        net = netmod.Net(self.slot)
        try:
            f = self.follower()
            write_n(self.leader, 3, "warm")
            self.assertTrue(wait(lambda: commit(f) == commit(self.leader), 10))
            others = {n.host for n in self.c.nodes if n is not f}
            net.partition(nem.grudge_isolate([[f.host], list(others)], [n.host for n in self.c.nodes]))
            self.assertEqual(len(net.rules()), 4)
            before = commit(f)
            write_n(self.leader, 30)
            self.assertGreaterEqual(commit(self.leader), before + 30)
            wait(lambda: False, 1.0)
            self.assertEqual(commit(f), before, "the cut-off follower kept committing")
            net.heal()
            self.assertEqual(net.rules(), [])
            self.assertTrue(wait(lambda: commit(f) >= before + 30, 15), "no catch-up after healing")
        finally:
            net.close()
        self.assertFalse(netmod.chain_exists(self.slot.r))

    def test_isolating_the_leader_makes_the_majority_elect_another(self):
        net = netmod.Net(self.slot)
        try:
            old = self.leader
            term = int(old.info()["term"])
            net.partition(nem.grudge_for("partition-leader", [n.host for n in self.c.nodes],
                                         random.Random(1), old.host))

            def new_leader():
                for n in self.c.nodes:
                    i = n.info() if n is not old else None
                    if i and i.get("role") == "leader" and int(i["term"]) > term:
                        return n
                return None
            nl = wait(new_leader, 15)
            self.assertIsNotNone(nl, "the majority elected no new leader")
            write_n(nl, 5)
            # The old leader cannot commit anything of the new term.
            self.assertLess(commit(old), commit(nl))
        finally:
            net.close()

    def test_kill_stops_the_process_and_restart_brings_it_back(self):
        old = self.leader
        old.kill()
        self.assertFalse(old.alive())
        self.assertIsNone(old.info())
        nl = self.c.wait_leader(15)
        self.assertIsNotNone(nl)
        self.assertIsNot(nl, old)
        write_n(nl, 10)
        old.start()
        self.assertTrue(wait(lambda: commit(old) is not None and commit(old) >= commit(nl), 20))

    def test_pause_silences_a_node_until_it_is_resumed(self):
        f = self.follower()
        f.pause()
        self.assertIsNone(f.info(timeout=0.5), "a paused node answered")
        write_n(self.leader, 10)  # the other two are still a majority
        f.resume()
        self.assertTrue(wait(lambda: commit(f) is not None and commit(f) >= commit(self.leader), 15))

    def test_pausing_the_leader_makes_the_others_elect_another(self):
        old = self.leader
        old.pause()
        nl = wait(lambda: next((n for n in self.c.nodes if n is not old and n.info()
                                and n.info().get("role") == "leader"), None), 15)
        old.resume()
        self.assertIsNotNone(nl)


class TestMembershipBites(util.ClusterCase):
    def nemesis(self):
        from ballot_jepsen.history import History
        return nem.Nemesis(self.c, None, History(), random.Random(1), [],
                           os.devnull)

    def members(self, node):
        from ballot_jepsen import resp
        c = resp.Conn(node.host, 27379, timeout=3)
        try:
            return {int(m[0]): m[1] for m in c.call("BMEMBER", "LIST")}
        finally:
            c.close()

    def test_removing_the_leader_replaces_it_and_it_comes_back_empty_as_a_voter(self):
        n = self.nemesis()
        old = self.leader
        write_n(old, 5)
        n.do_start("member-remove-leader")
        self.assertFalse(old.alive())
        self.assertFalse(os.path.exists(old.data), "the removed node's data was not wiped")
        nl = self.c.wait_leader(15)
        self.assertIsNot(nl, old)
        self.assertNotIn(old.id, self.members(nl))
        write_n(nl, 10, "after")
        n.do_heal()
        self.assertEqual(self.members(nl).get(old.id), "voter")
        self.assertTrue(wait(lambda: commit(old) is not None and commit(old) >= commit(nl), 20))
        # It holds the data written before it was removed (from the leader).
        from ballot_jepsen import resp
        c = resp.Conn(old.host, 27379, timeout=3)
        try:
            self.assertTrue(wait(lambda: c.call("GET", "k0") == "v", 10))
        finally:
            c.close()

    def test_transfer_moves_leadership(self):
        n = self.nemesis()
        old = self.leader
        n.do_start("transfer-leader")
        n.do_heal()
        self.assertTrue(wait(lambda: self.c.leader() not in (None, old), 10))


class TestDiskBites(util.ClusterCase):
    disk_mb = 512

    def test_a_full_disk_halts_the_node_and_freeing_it_lets_it_catch_up(self):
        f = next(n for n in self.c.nodes if n is not self.leader)
        self.assertTrue(os.path.ismount(f.disk))
        n = nem.Nemesis(self.c, None, __import__("ballot_jepsen.history").history.History(),
                        random.Random(1), [], os.devnull)
        n.rng = type("R", (), {"choice": staticmethod(lambda xs: f)})()
        n.do_start("disk-full")
        # Big values, until the follower needs more space than its WAL
        # segment preallocated (the other two are still a majority).
        from ballot_jepsen import resp
        c = resp.Conn(self.leader.host, 27379, timeout=10)
        big = "x" * (256 << 10)
        try:
            for i in range(600):
                self.assertEqual(c.call("SET", "big%d" % (i % 20), big), "OK")
                if not f.alive():
                    break
        finally:
            c.close()
        self.assertTrue(wait(lambda: not f.alive(), 15), "a node with a full disk kept running")
        self.assertEqual(f.proc.returncode, 70, "not the documented halt")
        n.do_heal()
        self.assertTrue(wait(lambda: commit(f) is not None and commit(f) >= commit(self.leader), 20))


class LoseUnsynced(util.ClusterCase):
    lazyfs = True

    def crash_all_and_count(self):
        write_n(self.leader, 30, "d", cluster=self.c)
        for n in self.c.nodes:
            n.kill()
        for n in self.c.nodes:
            n.lose_unsynced()
        for n in self.c.nodes:
            n.start()
        # A correct build elects within seconds; a broken one may never.
        l = self.c.wait_leader(15)
        if l is None:
            return 0
        from ballot_jepsen import resp
        c = resp.Conn(l.host, 27379, timeout=3)
        try:
            return sum(1 for i in range(30) if c.call("GET", "d%d" % i) == "v")
        except (resp.NotSent, resp.Indeterminate):
            return 0
        finally:
            c.close()


class TestLoseUnsyncedKeepsWhatWasSynced(LoseUnsynced):
    def test_a_machine_crash_of_every_node_keeps_every_acknowledged_write(self):
        self.assertEqual(self.crash_all_and_count(), 30)


class TestLoseUnsyncedBites(LoseUnsynced):
    node_env = {"BALLOT_JEPSEN_BREAK": "no-fdatasync"}

    def test_without_fdatasync_a_machine_crash_loses_acknowledged_writes(self):
        self.assertLess(self.crash_all_and_count(), 30)


def quiet_nemesis(c, net=None, pick=None):
    """A Nemesis without a schedule; @pick, if given, is what its RNG's
    choice() returns."""
    from ballot_jepsen.history import History
    n = nem.Nemesis(c, net, History(), random.Random(1), [], os.devnull, fault_s=3)
    if pick is not None:
        n.rng.choice = lambda xs: pick
    return n


def read_all(node, keys):
    from ballot_jepsen import resp
    c = resp.Conn(node.host, 27379, timeout=5)
    try:
        return [c.call("GET", k) for k in keys]
    finally:
        c.close()


class TestStaleQuorumBites(LoseUnsynced):
    def test_the_leader_comes_back_with_lagging_followers_and_keeps_every_write(self):
        old = self.leader
        n = quiet_nemesis(self.c)
        write_n(old, 20, "a")
        desc, undo = n.start_fault("lose-unsynced-stale-quorum")
        fresh = [self.c.nodes[i - 1] for i in desc["paused"]]
        lagging = [self.c.nodes[i - 1] for i in desc["lagging"]]
        self.assertEqual(desc["crashed"], old.id)
        self.assertTrue(all(f.paused for f in fresh) and not any(x.paused for x in lagging))
        # The crashed leader and the lagging followers are a quorum of
        # their own: they elect a leader and take writes while the
        # up-to-date followers sleep.
        nl = self.c.wait_leader(20)
        self.assertIn(nl, [old] + lagging)
        write_n(nl, 10, "b")
        n.active = ("lose-unsynced-stale-quorum", undo, 0)
        n.do_heal()
        self.assertTrue(wait(lambda: all(commit(x) is not None and commit(x) >= commit(nl)
                                         for x in fresh), 20))
        self.assertEqual(read_all(nl, ["a%d" % i for i in range(20)]), ["v"] * 20)


class TestLearnersSplitBites(util.ClusterCase):
    nodes = 5

    def setUp(self):
        super().setUp()
        from ballot_jepsen import net as netmod
        self.net = netmod.Net(self.slot)
        self.addCleanup(self.net.close)

    def test_the_learners_side_elects_no_one_and_the_heal_promotes_them(self):
        n = quiet_nemesis(self.c, self.net)
        n.do_start("member-learners-split")
        desc = json_last(n)
        learners = [self.c.nodes[i - 1] for i in desc["learners"]]
        side_a = [self.c.nodes[i - 1] for i in desc["sides"][0]]
        side_b = [self.c.nodes[i - 1] for i in desc["sides"][1]]
        self.assertEqual(len(learners), 2)
        self.assertTrue(set(learners) <= set(side_b))
        members = TestMembershipBites.members(self, self.leader)
        self.assertEqual(sorted(i for i, r in members.items() if r == "learner"),
                         sorted(x.id for x in learners))
        # Two voters of three on one side: they keep a leader and take
        # writes; the lone voter with the learners elects no one, however
        # long it waits, and its commit index stands still.
        write_n(self.leader, 10)
        before = commit(side_b[0])
        write_n(self.leader, 20, "m")
        self.assertFalse(wait(lambda: any((x.info() or {}).get("role") == "leader"
                                          for x in side_b), 4))
        self.assertEqual(commit(side_b[0]), before)
        self.assertIn(self.c.leader(), side_a)
        n.do_heal()
        members = TestMembershipBites.members(self, self.c.wait_leader(10))
        self.assertEqual(sorted(members.values()), ["voter"] * 5)
        self.assertEqual(self.net.rules(), [])


def json_last(n):
    """The value of the nemesis's last start operation."""
    return [op for op in n.history.ops if op["f"].startswith("start-")][-1]["value"]


class TestDiskErrorsBite(util.ClusterCase):
    lazyfs = True

    def test_a_node_whose_disk_fails_halts_and_the_others_go_on(self):
        f = next(x for x in self.c.nodes if x is not self.leader)
        n = quiet_nemesis(self.c, pick=f)
        n.do_start("disk-eio")
        # Writes still succeed: the leader and the third node are a
        # majority; the failing follower halts at its first WAL write.
        write_n(self.leader, 20)
        self.assertTrue(wait(lambda: not f.alive(), 15), "a node whose fsync failed kept running")
        self.assertEqual(f.proc.returncode, 70, "not the documented halt")
        self.assertTrue(f.halting())
        n.do_heal()
        self.assertTrue(f.alive())
        self.assertTrue(wait(lambda: commit(f) is not None and commit(f) >= commit(self.leader), 20))
        self.assertEqual(read_all(f, ["k%d" % i for i in range(20)]), ["v"] * 20)

    def test_a_leader_whose_disk_fails_halts_and_no_acknowledged_write_is_lost(self):
        old = self.leader
        write_n(old, 10)
        n = quiet_nemesis(self.c, pick=old)
        n.do_start("disk-eio")
        from ballot_jepsen import resp
        c = resp.Conn(old.host, 27379, timeout=5)
        try:
            r = c.call("SET", "after", "v")
        except (resp.NotSent, resp.Indeterminate) as e:
            r = e
        finally:
            c.close()
        self.assertNotEqual(r, "OK", "a leader acknowledged a write its disk failed")
        self.assertTrue(wait(lambda: not old.alive(), 15))
        self.assertEqual(old.proc.returncode, 70)
        nl = self.c.wait_leader(15)
        self.assertIsNot(nl, old)
        n.do_heal()
        self.assertEqual(read_all(nl, ["k%d" % i for i in range(10)]), ["v"] * 10)


def udp_probe(src, dst, n=200, port=27390):
    """Sends @n numbered datagrams from address @src to @dst; returns how
    many distinct ones arrived, how many copies, and the median delay."""
    import socket
    import statistics
    import threading
    import time
    rx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    tx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    got = []  # (datagram number, arrival time)

    def receive():
        while True:
            try:
                data = rx.recv(64)
            except socket.timeout:
                return
            got.append((int(data), time.monotonic()))
    try:
        rx.bind((dst, port))
        rx.settimeout(0.5)
        tx.bind((src, 0))
        t = threading.Thread(target=receive)
        t.start()
        sent = {}
        for i in range(n):
            sent[i] = time.monotonic()
            tx.sendto(b"%d" % i, (dst, port))
            time.sleep(0.001)
        t.join()
        seen, copies, delays = set(), 0, []
        for i, at in got:
            if i in seen:
                copies += 1
            else:
                seen.add(i)
                delays.append(at - sent[i])
        return len(seen), copies, statistics.median(delays) if delays else None
    finally:
        rx.close()
        tx.close()


def write_anywhere(c, n, prefix):
    """Writes @n keys through a client that follows the leader."""
    import time
    from ballot_jepsen.client import ClusterClient
    cc = ClusterClient(c, c.nodes[0], timeout=2.0)
    try:
        for i in range(n):
            cc.request([("SET", "%s%d" % (prefix, i), "v")], time.monotonic() + 20,
                       retry_unknown=True)
    finally:
        cc.close()


class TestNetworkFaultsBite(util.ClusterCase):
    def setUp(self):
        super().setUp()
        self.net = netmod.Net(self.slot)
        self.addCleanup(self.net.close)

    def probe(self, kind):
        """Probes between two nodes under fault @kind, checks the cluster
        still takes writes, heals, and checks nothing is left."""
        a, b = self.c.nodes[0].host, self.c.nodes[1].host
        n = quiet_nemesis(self.c, self.net)
        n.do_start(kind)
        try:
            under = udp_probe(a, b)
            write_anywhere(self.c, 20, kind)
        finally:
            n.do_heal()
        self.assertEqual(self.net.rules(), [])
        return under, udp_probe(a, b)

    def test_loss_drops_packets_between_nodes_until_healed(self):
        (got, _, _), (after, _, _) = self.probe("net-loss")
        self.assertLess(got, 195)  # 10% of 200 lost: about 180 arrive
        self.assertGreater(got, 140)
        self.assertEqual(after, 200)

    def test_delay_holds_packets_between_nodes_until_healed(self):
        (got, _, delay), (_, _, after) = self.probe("net-delay")
        self.assertEqual(got, 200)
        self.assertGreater(delay, 0.03)  # 50 ms ± 40 ms
        self.assertLess(after, 0.01)

    def test_duplication_sends_packets_twice_until_healed(self):
        (got, copies, _), (_, after, _) = self.probe("net-duplicate")
        self.assertEqual(got, 200)
        self.assertGreater(copies, 20)  # 30% of 200: about 60
        self.assertEqual(after, 0)

    def test_clients_are_not_shaped(self):
        # Only packets between node addresses are queued: a client on
        # 127.0.0.1 talks to a node without loss.
        n = quiet_nemesis(self.c, self.net)
        n.do_start("net-loss")
        try:
            got, _, _ = udp_probe("127.0.0.1", self.c.nodes[1].host)
        finally:
            n.do_heal()
        self.assertEqual(got, 200)


class TestMaintenanceBites(util.ClusterCase):
    node_args = nem.MAINTENANCE_ARGS

    def setUp(self):
        super().setUp()
        self.net = netmod.Net(self.slot)
        self.addCleanup(self.net.close)

    def cut_off_follower(self, kind):
        f = next(x for x in self.c.nodes if x is not self.leader)
        n = quiet_nemesis(self.c, self.net, pick=f)
        write_n(self.leader, 20)
        n.do_start(kind)
        desc = json_last(n)
        self.assertEqual((desc["stopped"], desc["log_compacted_past_it"]), (f.id, True))
        # Its log ends before the leader's begins.
        self.assertFalse(f.alive())
        self.assertLess(desc["behind_at"], int(self.c.leader().info()["first_index"]))
        n.do_heal()
        return f, n

    def caught_up(self, f):
        self.assertTrue(wait(lambda: commit(f) is not None and
                             commit(f) >= commit(self.c.wait_leader(10)), 30))
        self.assertEqual(int(f.info()["snapshot_index"]) > 0, True)
        self.assertEqual(read_all(f, ["k%d" % i for i in range(20)]), ["v"] * 20)
        self.assertEqual(len(read_all(f, ["bj-ballast:0"])[0]), nem.BALLAST_BYTES)

    def test_a_follower_cut_off_past_the_log_gets_a_snapshot(self):
        f, _ = self.cut_off_follower("snapshot-install")
        self.caught_up(f)
        with open(f.log, "rb") as log:
            self.assertIn(b"installed snapshot", log.read())

    def test_a_restart_in_the_middle_of_a_snapshot_install_recovers(self):
        f, n = self.cut_off_follower("snapshot-install-restart")
        stop = [op for op in n.history.ops if op["f"].startswith("stop-")][-1]["value"]
        self.assertEqual(stop, {"restarted": f.id, "killed_mid_install": True})
        with open(f.log, "rb") as log:
            text = log.read()
        self.assertEqual(text.count(b"=== "), 3, "started, restarted, killed mid-install")
        self.caught_up(f)

    def test_compacting_the_history_makes_old_revisions_unreadable(self):
        from ballot_jepsen import resp
        write_n(self.leader, 30)
        n = quiet_nemesis(self.c, self.net)
        n.do_start("compact-history")
        desc = json_last(n)
        self.assertNotIn("ERR", desc["reply"])
        c = resp.Conn(self.leader.host, 27379, timeout=3)
        try:
            r = c.call("BHISTORY", 1)
        finally:
            c.close()
        self.assertIsInstance(r, resp.RespError)
        self.assertIn("COMPACTED", str(r))


class TestClockBites(util.ClusterCase):
    faketime = True  # every node under libfaketime

    def test_a_leader_whose_clock_jumps_back_stalls_and_is_replaced(self):
        old = self.leader
        term = int(old.info()["term"])
        old.set_clock(-8)

        def replaced():
            for n in self.c.nodes:
                i = n.info() if n is not old else None
                if i and i.get("role") == "leader" and int(i["term"]) > term:
                    return n
            return None
        nl = wait(replaced, 6)
        old.set_clock(0)
        self.assertIsNotNone(nl, "the leader kept its lease on the cluster with a stalled clock")
        write_n(nl, 5)
        self.assertTrue(wait(lambda: commit(old) is not None and commit(old) >= commit(nl), 15))

    def test_a_strobing_clock_leaves_the_cluster_writable(self):
        n = next(x for x in self.c.nodes if x is not self.leader)
        import threading
        stop = threading.Event()

        def strobe():
            flip = False
            while not stop.wait(0.01):
                flip = not flip
                n.set_clock(1.5 if flip else 0)
        t = threading.Thread(target=strobe)
        t.start()
        try:
            l = self.c.wait_leader(10)
            write_n(l, 20)
        finally:
            stop.set()
            t.join()
            n.set_clock(0)
        self.assertTrue(wait(lambda: commit(n) is not None and commit(n) >= commit(l), 15))


if __name__ == "__main__":
    util.require_root_and_ballotd()
    unittest.main()
