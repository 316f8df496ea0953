"""jepsen/run end to end: a short real run writes every result file and
leaves nothing behind; a run interrupted by SIGINT or SIGTERM in the middle
of a partition still stops every node by pid and removes every rule."""
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import util  # noqa: E402

from ballot_jepsen import net as netmod  # noqa: E402

RUN = os.path.join(os.path.dirname(util.HERE), "run")
# Slots of this test's own: what a run left on its slot is checked after
# it exits, when no other run may take that slot.
os.environ["BALLOT_JEPSEN_SLOTS"] = "240-250"
# A short run under AddressSanitizer is slower: BALLOT_JEPSEN_TIME scales it.
TIME = os.environ.get("BALLOT_JEPSEN_TIME", "8")


def ballotd_pids(run_dir):
    """Live processes whose command line names the run's folder."""
    out = []
    for p in os.listdir("/proc"):
        if not p.isdigit():
            continue
        try:
            with open("/proc/%s/cmdline" % p, "rb") as f:
                cmd = f.read()
        except OSError:
            continue
        if run_dir.encode() in cmd and b"ballotd" in cmd:
            out.append(int(p))
    return out


def lazyfs_pids(run_dir):
    """Live lazyfs processes mounted under the run's folder."""
    out = []
    for p in os.listdir("/proc"):
        if not p.isdigit():
            continue
        try:
            with open("/proc/%s/cmdline" % p, "rb") as f:
                cmd = f.read()
        except OSError:
            continue
        if run_dir.encode() in cmd and b"lazyfs" in cmd:
            out.append(int(p))
    return out


def mounts():
    with open("/proc/self/mounts") as f:
        return [line.split()[1] for line in f]


def read(path):
    with open(path) as f:
        return f.read()


def read_json(path):
    return json.loads(read(path))


def slot_of(run_dir):
    for p in ballotd_pids(run_dir):
        with open("/proc/%d/cmdline" % p, "rb") as f:
            m = re.search(rb"127\.77\.(\d+)\.", f.read())
        if m:
            return int(m.group(1))
    return None


class TestRunner(unittest.TestCase):
    def setUp(self):
        self.store = tempfile.mkdtemp(prefix="bj-store-")

    def tearDown(self):
        shutil.rmtree(self.store, ignore_errors=True)

    def test_a_short_run_writes_every_result_file_and_leaves_nothing(self):
        r = subprocess.run([RUN, "register", "--nemesis", "partition,kill", "--time", TIME,
                            "--rate", "60", "--concurrency", "4", "--seed", "5", "--quiet", "1",
                            "--fault", "2", "--store", self.store, "--name", "short"],
                           capture_output=True, text=True, timeout=300)
        d = os.path.join(self.store, "short")
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        for f in ("history.jsonl", "history.edn", "nemesis.log", "verdict.json", "index.html",
                  "summary.md", "nodes/n1/ballotd.log", "nodes/n3/ballotd.log"):
            self.assertTrue(os.path.exists(os.path.join(d, f)), f)
        self.assertTrue(os.path.exists(os.path.join(self.store, "index.html")))
        v = read_json(os.path.join(d, "verdict.json"))
        self.assertIs(v["valid"], True)
        self.assertGreater(v["op_counts"]["ok"], 20)
        self.assertIn("start-", read(os.path.join(d, "nemesis.log")))
        self.assertEqual(ballotd_pids(d), [])
        self.assertEqual(set(v["node_exit_codes"].values()), {0})
        r_ = int(v["addresses"].split(".")[2])
        self.assertFalse(netmod.chain_exists(r_))
        edn = read(os.path.join(d, "history.edn")).split("\n")[0]
        self.assertTrue(edn.startswith("{:index 0, :time "), edn)

    def test_a_short_lock_run_under_pauses_and_kills_is_valid(self):
        # Locks with fencing (the lock workload): holders paused or cut
        # off past their leases are fenced out; the tokens appended must
        # strictly increase and every acknowledged append be there.
        r = subprocess.run([RUN, "lock", "--nemesis", "pause,kill", "--time", TIME,
                            "--rate", "20", "--concurrency", "4", "--seed", "1", "--quiet", "1",
                            "--fault", "2", "--store", self.store, "--name", "lock",
                            "--no-report"],
                           capture_output=True, text=True, timeout=300)
        d = os.path.join(self.store, "lock")
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        v = read_json(os.path.join(d, "verdict.json"))
        self.assertIs(v["valid"], True)
        self.assertGreater(v["checker"]["holds"], 10)
        self.assertEqual(ballotd_pids(d), [])

    def interrupt(self, sig, fault="partition-halves", rule="DROP"):
        name = "int-%d-%s" % (sig, fault)
        d = os.path.join(self.store, name)
        p = subprocess.Popen([RUN, "set", "--nemesis", fault, "--time", "120",
                              "--rate", "50", "--quiet", "0.5", "--fault", "100", "--store",
                              self.store, "--name", name, "--seed", "6"],
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        try:
            log = os.path.join(d, "nemesis.log")
            ok = util.wait(lambda: os.path.exists(log) and "start-" + fault in read(log), 60)
            self.assertTrue(ok, "no fault started")
            r = slot_of(d)
            self.assertIsNotNone(r)
            self.assertGreaterEqual(len(ballotd_pids(d)), 2)
            self.assertTrue(netmod.chain_exists(r))
            if rule:
                self.assertNotEqual(netmod.iptables("-S", "bj-%d" % r).stdout.count(rule), 0)
            if fault == "disk-eio":
                self.assertEqual(len(lazyfs_pids(d)), 3)
                self.assertTrue(any(d in m for m in mounts()))
            p.send_signal(sig)
            out, _ = p.communicate(timeout=60)
        finally:
            if p.poll() is None:
                p.kill()
                p.wait()
        self.assertEqual(ballotd_pids(d), [], out)
        self.assertFalse(netmod.chain_exists(r), out)
        self.assertEqual(lazyfs_pids(d), [], out)
        self.assertEqual([m for m in mounts() if d in m], [], out)
        v = read_json(os.path.join(d, "verdict.json"))
        self.assertIn("interrupted", v.get("error", ""))
        self.assertNotEqual(p.returncode, 0)

    def test_sigint_mid_partition_stops_every_node_and_removes_every_rule(self):
        self.interrupt(signal.SIGINT)

    def test_sigterm_mid_partition_stops_every_node_and_removes_every_rule(self):
        self.interrupt(signal.SIGTERM)

    def test_sigint_mid_packet_delay_removes_the_queue_rule(self):
        self.interrupt(signal.SIGINT, "net-delay", "NFQUEUE")

    def test_sigint_mid_disk_failure_stops_lazyfs_and_unmounts_it(self):
        self.interrupt(signal.SIGINT, "disk-eio", None)

    def test_a_slot_left_by_a_killed_runner_is_cleaned_when_taken_again(self):
        name = "killed"
        d = os.path.join(self.store, name)
        p = subprocess.Popen([RUN, "set", "--nemesis", "partition-halves", "--time", "120",
                              "--rate", "50", "--quiet", "0.5", "--fault", "100", "--store",
                              self.store, "--name", name], stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL)
        log = os.path.join(d, "nemesis.log")
        try:
            self.assertTrue(util.wait(lambda: os.path.exists(log) and "start-partition" in read(log), 60))
            r = slot_of(d)
        finally:
            p.kill()  # SIGKILL: no cleanup at all
            p.wait()
        self.assertEqual(len(ballotd_pids(d)), 3)
        self.assertTrue(netmod.chain_exists(r))
        # Taking slot r again reaps what the dead runner left.
        from ballot_jepsen import cluster as cl
        taken = []
        try:
            while True:
                s = cl.Slot()
                taken.append(s)
                if s.r == r:
                    n = netmod.Net(s)
                    n.close()
                    break
                if s.r > r:
                    self.fail("slot %d not taken again" % r)
        finally:
            for s in taken:
                s.release()
        self.assertTrue(util.wait(lambda: ballotd_pids(d) == [], 10))
        self.assertFalse(netmod.chain_exists(r))


if __name__ == "__main__":
    util.require_root_and_ballotd()
    unittest.main()
