"""Packet loss, delay and duplication between the run's nodes, without tc.

`tc netem` is what Jepsen uses, but this machine's kernel has no queueing
disciplines at all (`tc qdisc add ... netem` says "unknown qdisc"), and on
the shared `lo` it would touch every other test's traffic. Instead the
run's iptables chain (net.py) sends the packets between its own node
addresses to an NFQUEUE of the run's own, and this module, in the runner,
decides each packet's fate through netfilter's queue protocol (a netlink
socket, no library): drop it, hold it for a while before accepting it, or
accept it and send a copy through a raw socket.

The rule uses --queue-bypass: when nobody listens (the runner died, or the
queue was closed) packets pass as if there were no rule. Copies carry
MARK, which the rule skips, so a copy is neither queued again nor copied.
"""
import heapq
import random
import socket
import struct
import threading
import time

NETLINK_NETFILTER = 12
NFNL_SUBSYS_QUEUE = 3
NFQNL_MSG_PACKET, NFQNL_MSG_VERDICT, NFQNL_MSG_CONFIG = 0, 1, 2
NFQA_CFG_CMD, NFQA_CFG_PARAMS, NFQA_CFG_MASK, NFQA_CFG_FLAGS = 1, 2, 4, 5
NFQA_PACKET_HDR, NFQA_VERDICT_HDR, NFQA_PAYLOAD = 1, 2, 10
CMD_BIND, CMD_UNBIND = 1, 2
COPY_PACKET = 2
F_FAIL_OPEN = 1
NF_DROP, NF_ACCEPT = 0, 1
NLM_F_REQUEST, NLM_F_ACK = 1, 4
NLMSG_ERROR = 2
# Copies are marked so that the queue rule lets them through.
MARK = 0xB7


def queue_num(slot_r):
    """The slot's own queue (no other run uses it)."""
    return 7700 + slot_r


def _attr(t, data):
    n = 4 + len(data)
    return struct.pack("=HH", n, t) + data + b"\0" * ((4 - n % 4) % 4)


def _attrs(buf):
    out = {}
    i = 0
    while i + 4 <= len(buf):
        n, t = struct.unpack_from("=HH", buf, i)
        if n < 4:
            break
        out[t & 0x7FFF] = buf[i + 4:i + n]
        i += (n + 3) & ~3
    return out


class Netem:
    """Listens on NFQUEUE @qnum and applies the current parameters to each
    packet: @loss and @duplicate are probabilities, @delay_s and @jitter_s
    a hold time drawn uniformly from delay ± jitter."""

    def __init__(self, qnum, seed=0):
        self.qnum = qnum
        self.rng = random.Random(seed)
        self.loss = self.duplicate = 0.0
        self.delay_s = self.jitter_s = 0.0
        self.counts = {"seen": 0, "dropped": 0, "delayed": 0, "duplicated": 0}
        self.lock = threading.Lock()
        self.cond = threading.Condition(self.lock)
        self.held = []  # heap of (release time, seq, packet id)
        self.seq = 0
        self.closed = False
        self.sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_NETFILTER)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
        self.sock.bind((0, 0))
        self.raw = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
        self.raw.setsockopt(socket.SOL_SOCKET, socket.SO_MARK, MARK)
        self.config(_attr(NFQA_CFG_CMD, struct.pack("!BBH", CMD_BIND, 0, socket.AF_INET)))
        self.config(_attr(NFQA_CFG_PARAMS, struct.pack("!IB", 0xFFFF, COPY_PACKET)) +
                    _attr(NFQA_CFG_MASK, struct.pack("!I", F_FAIL_OPEN)) +
                    _attr(NFQA_CFG_FLAGS, struct.pack("!I", F_FAIL_OPEN)))
        self.sock.settimeout(0.2)  # so that the reader sees close()
        self.reader = threading.Thread(target=self.read_loop, name="netem-read", daemon=True)
        self.releaser = threading.Thread(target=self.release_loop, name="netem-release",
                                         daemon=True)
        self.reader.start()
        self.releaser.start()

    def _msg(self, mtype, payload, flags=NLM_F_REQUEST):
        body = struct.pack("=BBH", socket.AF_UNSPEC, 0, socket.htons(self.qnum)) + payload
        return struct.pack("=IHHII", 16 + len(body), (NFNL_SUBSYS_QUEUE << 8) | mtype,
                           flags, 0, 0) + body

    def config(self, payload):
        # Before the reader starts: the acknowledgement is the next message.
        self.sock.send(self._msg(NFQNL_MSG_CONFIG, payload, NLM_F_REQUEST | NLM_F_ACK))
        r = self.sock.recv(4096)
        _, t = struct.unpack_from("=IH", r)
        err = struct.unpack_from("=i", r, 16)[0] if t == NLMSG_ERROR else 0
        if err != 0:
            raise OSError(-err, "nfqueue %d: config refused" % self.qnum)

    def set(self, loss=0.0, delay_s=0.0, jitter_s=0.0, duplicate=0.0):
        with self.lock:
            self.loss, self.delay_s, self.jitter_s, self.duplicate = loss, delay_s, jitter_s, duplicate

    def verdict(self, pid, v):
        try:
            self.sock.send(self._msg(NFQNL_MSG_VERDICT,
                                     _attr(NFQA_VERDICT_HDR, struct.pack("!II", v, pid))))
        except OSError:
            pass  # closed; the kernel accepts what was queued (fail-open)

    def handle(self, pid, payload):
        with self.lock:
            self.counts["seen"] += 1
            loss, dup = self.loss, self.duplicate
            hold = max(0.0, self.delay_s + self.rng.uniform(-self.jitter_s, self.jitter_s))
            drop = self.rng.random() < loss
            copy = not drop and self.rng.random() < dup
            if drop:
                self.counts["dropped"] += 1
            if copy:
                self.counts["duplicated"] += 1
            if not drop and hold > 0:
                self.counts["delayed"] += 1
                self.seq += 1
                heapq.heappush(self.held, (time.monotonic() + hold, self.seq, pid))
                self.cond.notify()
        if drop:
            self.verdict(pid, NF_DROP)
            return
        if copy and len(payload) >= 20:
            dst = socket.inet_ntoa(payload[16:20])
            try:
                self.raw.sendto(payload, (dst, 0))
            except OSError:
                pass
        if hold <= 0:
            self.verdict(pid, NF_ACCEPT)

    def read_loop(self):
        while not self.closed:
            try:
                data = self.sock.recv(1 << 17)
            except OSError:
                if self.closed:
                    return
                continue  # a timeout, or ENOBUFS: the kernel dropped queue messages (fail-open)
            i = 0
            while i + 16 <= len(data):
                n, t = struct.unpack_from("=IH", data, i)
                if n < 16:
                    break
                if t == (NFNL_SUBSYS_QUEUE << 8) | NFQNL_MSG_PACKET:
                    a = _attrs(data[i + 20:i + n])
                    if NFQA_PACKET_HDR in a:
                        pid = struct.unpack_from("!I", a[NFQA_PACKET_HDR])[0]
                        self.handle(pid, a.get(NFQA_PAYLOAD, b""))
                i += (n + 3) & ~3

    def release_loop(self):
        with self.lock:
            while not self.closed:
                now = time.monotonic()
                due = []
                while self.held and self.held[0][0] <= now:
                    due.append(heapq.heappop(self.held)[2])
                if due:
                    self.lock.release()
                    try:
                        for pid in due:
                            self.verdict(pid, NF_ACCEPT)
                    finally:
                        self.lock.acquire()
                    continue
                self.cond.wait(self.held[0][0] - now if self.held else None)

    def close(self):
        """Accepts every held packet, unbinds the queue and stops."""
        with self.lock:
            self.loss = self.duplicate = self.delay_s = self.jitter_s = 0.0
            held = [p for _, _, p in self.held]
            self.held = []
        for pid in held:
            self.verdict(pid, NF_ACCEPT)
        with self.lock:
            self.closed = True
            self.cond.notify_all()
        try:
            self.sock.send(self._msg(NFQNL_MSG_CONFIG,
                                     _attr(NFQA_CFG_CMD,
                                           struct.pack("!BBH", CMD_UNBIND, 0, socket.AF_INET))))
        except OSError:
            pass
        self.sock.close()
        self.raw.close()
        self.releaser.join(5)
        self.reader.join(5)
