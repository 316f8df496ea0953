#!/usr/bin/env python3
"""Lock and watch rates (issue 15, item 10), numbers, not pass/fail.

On a running cluster whose leader answers at --port (tests/bench/lock.sh
starts one):
  - baseline: --clients connections doing SET of their own key (one
    replicated, fsynced write per request) for --seconds;
  - lock: the same connections, each with a lease of its own, contending
    for one lock: BLOCK ACQUIRE, then BLOCK RELEASE, as fast as they can
    (two replicated writes per pair, and the waits), for --seconds;
  - watch fan-out: 1, 100 and 1,000 watchers of one prefix (BWATCH), one
    writer putting --writes keys under it; events delivered per second
    over all watchers, from the first write to the last event received.

Uses ballot_jepsen's RESP client (Debian's python3, no pip).
"""
import argparse
import os
import selectors
import socket
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "jepsen"))
from ballot_jepsen.resp import Conn, encode  # noqa: E402


def run_threads(n, seconds, body):
    counts = [0] * n
    stop = time.monotonic() + seconds

    def worker(i):
        counts[i] = body(i, stop)

    ts = [threading.Thread(target=worker, args=(i,)) for i in range(n)]
    start = time.monotonic()
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    return sum(counts), time.monotonic() - start


def bench_set(host, port, clients, seconds):
    def body(i, stop):
        c = Conn(host, port, timeout=10)
        n = 0
        while time.monotonic() < stop:
            c.call("SET", "bench:lock:set:%d" % i, "v")
            n += 1
        c.close()
        return n
    return run_threads(clients, seconds, body)


def bench_lock(host, port, clients, seconds):
    def body(i, stop):
        c = Conn(host, port, timeout=30)
        lease = c.call("BLEASE", "GRANT", 600000)[0]
        n = 0
        while time.monotonic() < stop:
            token = c.call("BLOCK", "ACQUIRE", "bench", lease, "TIMEOUT", 20000)
            if token is None:
                continue
            c.call("BLOCK", "RELEASE", "bench", token)
            n += 1
        c.call("BLEASE", "REVOKE", lease)
        c.close()
        return n
    return run_threads(clients, seconds, body)


def bench_watch(host, port, watchers, writes):
    """Events per second delivered to @watchers watchers of one prefix."""
    prefix = "bench:w%d:" % watchers
    socks = []
    sel = selectors.DefaultSelector()
    per = 64  # watches per connection (the server's limit)
    for i in range((watchers + per - 1) // per):
        s = socket.create_connection((host, port))
        s.setblocking(True)
        k = min(per, watchers - i * per)
        s.sendall(b"".join(encode(["BWATCH", prefix, "PREFIX"]) for _ in range(k)))
        socks.append(s)
    want = watchers * writes
    got = 0
    # The ids the BWATCHes answer are counted out by the frames' size;
    # events are counted by their key, which appears once per event.
    needle = prefix.encode()
    time.sleep(0.5)
    for s in socks:
        s.setblocking(False)
        sel.register(s, selectors.EVENT_READ)
        try:
            s.recv(1 << 20)  # the watch ids
        except BlockingIOError:
            pass
    w = Conn(host, port, timeout=10)
    start = time.monotonic()
    done = threading.Event()

    def writer():
        # Pipelined, 50 at a time, so that the writer is not what limits
        # the delivery.
        for i in range(0, writes, 50):
            w.pipeline([("SET", "%s%d" % (prefix, j), "x")
                        for j in range(i, min(writes, i + 50))])
        done.set()

    t = threading.Thread(target=writer)
    t.start()
    tail = b""
    deadline = time.monotonic() + 120
    last = start
    while got < want and time.monotonic() < deadline:
        for key, _ in sel.select(timeout=1.0):
            try:
                data = key.fileobj.recv(1 << 20)
            except BlockingIOError:
                continue
            if not data:
                continue
            got += data.count(needle)
            last = time.monotonic()
    t.join()
    w.close()
    for s in socks:
        s.close()
    return got, last - start


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--clients", type=int, default=8)
    p.add_argument("--seconds", type=float, default=5)
    p.add_argument("--writes", type=int, default=200)
    a = p.parse_args()
    n, s = bench_set(a.host, a.port, a.clients, a.seconds)
    print("set\t%d clients\t%.0f writes/s" % (a.clients, n / s))
    n, s = bench_lock(a.host, a.port, a.clients, a.seconds)
    print("lock\t%d clients on one lock\t%.0f acquire+release pairs/s" % (a.clients, n / s))
    for watchers in (1, 100, 1000):
        got, s = bench_watch(a.host, a.port, watchers, a.writes)
        print("watch\t%d watchers, %d writes\t%.0f events/s delivered (%d of %d)"
              % (watchers, a.writes, got / s if s > 0 else 0, got, watchers * a.writes))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
