"""Network partitions with iptables, confined to the run's own addresses.

All rules live in one chain of the run's own, bj-R, entered from OUTPUT
only for packets whose source and destination are both in the slot's
127.77.R.0/24 (loopback traffic passes OUTPUT once, so one DROP there
loses the packet). Clients connect from 127.0.0.1, so they keep reaching
every node: as in Jepsen, the partition is between the nodes. heal()
flushes the chain; close() removes the chain and the jump. A chain a dead
runner left behind is removed when its slot is taken again.

shape() adds loss, delay and duplication between the nodes: one rule of
the chain queues their packets to the run's own NFQUEUE, which netem.py,
in this process, serves (with --queue-bypass: if the runner dies, packets
pass).
"""
import subprocess
import time

from . import netem as netemmod


def iptables(*args, check=True):
    # -w: wait for the xtables lock instead of failing beside other users
    # (generously: on a loaded machine other runs hold it for seconds).
    r = subprocess.run(["iptables", "-w", "60"] + list(args), capture_output=True, text=True)
    if check and r.returncode != 0:
        raise RuntimeError("iptables %s: %s" % (" ".join(args), r.stderr.strip()))
    return r


class Net:
    def __init__(self, slot):
        self.chain = "bj-%d" % slot.r
        self.jump = ["OUTPUT", "-s", slot.cidr, "-d", slot.cidr, "-j", self.chain]
        self.blocked = set()
        self.qnum = netemmod.queue_num(slot.r)
        self.netem = None  # the queue's server, once shape() needs it
        self.queued = False
        self.close()  # what a killed runner may have left on this slot
        iptables("-N", self.chain)
        iptables("-I", *self.jump)

    def drop(self, src, dst):
        """Drops every packet from node address src to node address dst."""
        if (src, dst) in self.blocked:
            return
        iptables("-A", self.chain, "-s", src, "-d", dst, "-j", "DROP")
        self.blocked.add((src, dst))

    def partition(self, grudge):
        """grudge: {host: set of hosts it must not hear from}."""
        for dst, srcs in grudge.items():
            for src in srcs:
                self.drop(src, dst)

    def shape(self, loss=0.0, delay_s=0.0, jitter_s=0.0, duplicate=0.0):
        """Packets between nodes are lost with probability @loss, held
        for @delay_s ± @jitter_s, and sent twice with probability
        @duplicate, until heal()."""
        if self.netem is None:
            self.netem = netemmod.Netem(self.qnum)
        self.netem.set(loss, delay_s, jitter_s, duplicate)
        if not self.queued:
            iptables("-A", self.chain, "-m", "mark", "!", "--mark", str(netemmod.MARK), "-j",
                     "NFQUEUE", "--queue-num", str(self.qnum), "--queue-bypass")
            self.queued = True

    def heal(self):
        iptables("-F", self.chain)
        self.blocked.clear()
        self.queued = False
        if self.netem is not None:
            self.netem.set()

    def rules(self):
        r = iptables("-S", self.chain, check=False)
        return [l for l in r.stdout.splitlines() if l.startswith("-A")]

    def close(self):
        """Removes the jump and the chain, retrying until the chain is
        gone (raises if it cannot be removed), and stops the queue."""
        if getattr(self, "netem", None) is not None:
            self.netem.close()
            self.netem = None
        for _ in range(10):
            while iptables("-D", *self.jump, check=False).returncode == 0:
                pass
            iptables("-F", self.chain, check=False)
            r = iptables("-X", self.chain, check=False)
            if iptables("-S", self.chain, check=False).returncode != 0:
                self.blocked = set()
                self.queued = False
                return
            time.sleep(0.5)
        raise RuntimeError("iptables: cannot remove chain %s: %s" % (self.chain, r.stderr.strip()))


def chain_exists(r):
    return iptables("-S", "bj-%d" % r, check=False).returncode == 0
