"""Shared set-up of the tests that run real nodes."""
import os
import shutil
import sys
import tempfile
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
sys.path.insert(0, os.path.dirname(HERE))  # broken.py

from ballot_jepsen import cluster as cl  # noqa: E402
from ballot_jepsen import resp  # noqa: E402

SKIP = 77  # ctest's SKIP_RETURN_CODE for these tests


def require_root_and_ballotd():
    """These tests need iptables (root) and a built ballotd: without
    them they are skipped (exit 77), saying why, never passed."""
    why = None
    if os.geteuid() != 0:
        why = "not root: iptables needs it"
    elif shutil.which("iptables") is None:
        why = "iptables is not installed (scripts/deps.sh)"
    elif not os.access(cl.default_ballotd(), os.X_OK):
        why = "no ballotd at %s" % cl.default_ballotd()
    if why:
        print("skipped: %s" % why)
        sys.exit(SKIP)


def wait(pred, timeout, step=0.05):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        v = pred()
        if v:
            return v
        time.sleep(step)
    return pred()


def commit(node):
    i = node.info()
    return int(i["commit"]) if i else None


def write_n(leader, n, prefix="k", cluster=None):
    """SETs n keys through leader. With cluster, a write refused because
    leadership moved (a loaded machine can hold an election) is sent again
    to the new leader, for up to 20 s; anything else fails the test."""
    deadline = time.time() + 20
    c = resp.Conn(leader.host, cl.CLIENT_PORT, timeout=5)
    try:
        i = 0
        while i < n:
            r = c.call("SET", "%s%d" % (prefix, i), "v")
            if r == "OK":
                i += 1
                continue
            moved = isinstance(r, resp.RespError) and str(r).startswith(
                ("NOTLEADER", "MOVED", "TRYAGAIN"))
            if cluster is None or not moved or time.time() > deadline:
                raise AssertionError("SET: %r" % (r,))
            time.sleep(0.2)
            l = cluster.wait_leader(10)
            if l is not None:
                c.close()
                c = resp.Conn(l.host, cl.CLIENT_PORT, timeout=5)
    finally:
        c.close()


class ClusterCase(unittest.TestCase):
    """A fresh 3-node cluster per test, stopped by pid after it."""
    nodes = 3
    faketime = False
    disk_mb = None  # a tmpfs of this size per node
    lazyfs = False  # DATA/wal on lazyfs
    node_env = None
    node_args = ()

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="bj-test-")
        self.slot = cl.Slot()
        self.c = None
        # A cleanup, not tearDown: it runs even when setUp fails half-way.
        self.addCleanup(self.stop_all)
        self.c = cl.Cluster(self.slot, self.nodes, self.tmp, faketime=self.faketime,
                            disk_mb=self.disk_mb,
                            lazyfs=cl.default_lazyfs() if self.lazyfs else None,
                            env=self.node_env, node_args=list(self.node_args))
        self.c.start()
        self.leader = self.c.wait_leader(30)
        self.assertIsNotNone(self.leader, "no leader")

    def stop_all(self):
        if self.c is not None:
            for n in self.c.nodes:
                n.resume()
            self.c.stop()
        self.slot.release()  # also unmounts what was mounted for the nodes
        shutil.rmtree(self.tmp, ignore_errors=True)
