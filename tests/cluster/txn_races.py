#!/usr/bin/env python3
"""txn_races.py - optimistic transactions (WATCH/MULTI/EXEC) raced by real
concurrent redis-py clients against a real ballotd cluster, each count
checked exactly. Run by test_clients.c with the client ports of every node:

    txn_races.py PORT1 PORT2 PORT3

A transaction that read a value v and writes v + 1 may commit only if
nothing changed the key between its WATCH and its EXEC, so the final
counter equals the number of transactions that committed plus the number
of plain increments made by others: a lost update shows as a counter
below that sum. Every socket operation has a timeout, so the script cannot
hang. Exits 0 if every check passed.
"""
import sys
import threading
import time

import redis

HOST = "127.0.0.1"
TIMEOUT = 20


def connect(port):
    return redis.Redis(host=HOST, port=port, socket_timeout=TIMEOUT,
                       socket_connect_timeout=TIMEOUT,
                       single_connection_client=True)


def info_raft(port):
    """INFO raft as a dict of strings (read raw: redis-py's INFO parser
    turns some values into numbers or dicts)."""
    r = connect(port)
    r.set_response_callback("INFO", lambda resp, **kw: resp)
    text = r.execute_command("INFO", "raft")
    if isinstance(text, bytes):
        text = text.decode()
    fields = {}
    for line in str(text).splitlines():
        if ":" in line:
            k, v = line.split(":", 1)
            fields[k.strip()] = v.strip()
    return fields


def node_id(port):
    r = connect(port)
    r.set_response_callback("INFO", lambda resp, **kw: resp)
    for line in r.execute_command("INFO", "server").decode().splitlines():
        if line.startswith("node_id:"):
            return int(line.split(":", 1)[1])
    raise AssertionError("no node_id in INFO server")


def find_leader(ports, deadline_s=30):
    end = time.time() + deadline_s
    while time.time() < end:
        for p in ports:
            try:
                if info_raft(p).get("role") == "leader":
                    return p
            except redis.exceptions.RedisError:
                pass
        time.sleep(0.1)
    raise AssertionError("no leader within %d s" % deadline_s)


def run_threads(fns):
    errors = []

    def wrap(fn):
        try:
            fn()
        except BaseException as e:  # reported, then the check fails
            errors.append(repr(e))

    threads = [threading.Thread(target=wrap, args=(fn,)) for fn in fns]
    for t in threads:
        t.start()
    for t in threads:
        t.join(300)
        assert not t.is_alive(), "a client thread hung"
    assert not errors, errors


def test_redis_py_transaction_helper(port):
    """redis-py's optimistic increment, Redis.transaction(): 4 threads x 50
    increments of one key end at exactly 200."""
    key = "race:helper"
    connect(port).set(key, 0)
    retries = [0]

    def worker():
        r = redis.Redis(host=HOST, port=port, socket_timeout=TIMEOUT)
        for _ in range(50):
            def incr(pipe):
                v = int(pipe.get(key))
                pipe.multi()
                pipe.set(key, v + 1)
            r.transaction(incr, key)
        r.close()

    run_threads([worker] * 4)
    got = int(connect(port).get(key))
    assert got == 200, "transaction() increments: %d, want 200" % got
    print("transaction() helper: 200 of 200 (retries not counted)")


def optimistic_incr(r, key):
    """One raw WATCH/GET/MULTI/SET/EXEC attempt: True if it committed. A
    read barrier that could not be confirmed (TRYAGAIN: an election on a
    loaded machine) wrote nothing: the attempt did not commit."""
    try:
        r.execute_command("WATCH", key)
        v = int(r.execute_command("GET", key) or 0)
    except redis.exceptions.ResponseError as e:
        if not str(e).startswith("TRYAGAIN"):
            raise
        r.execute_command("UNWATCH")
        return False
    r.execute_command("MULTI")
    r.execute_command("SET", key, v + 1)
    res = r.execute_command("EXEC")
    return res is not None


def test_raw_watch_races(port):
    """Raw WATCH/MULTI/EXEC: 4 clients race 100 rounds each, released
    together by a barrier; the counter equals the commits."""
    key = "race:raw"
    connect(port).set(key, 0)
    barrier = threading.Barrier(4, timeout=60)
    commits = []
    lock = threading.Lock()

    def worker():
        r = connect(port)
        mine = 0
        for _ in range(100):
            barrier.wait()
            mine += optimistic_incr(r, key)
        with lock:
            commits.append(mine)

    run_threads([worker] * 4)
    got = int(connect(port).get(key))
    total = sum(commits)
    assert got == total, "raw races: counter %d, commits %d" % (got, total)
    assert 100 <= total <= 400, total
    print("raw WATCH races: %d commits of 400 attempts, counter %d"
          % (total, got))


def test_watch_against_plain_writes(port):
    """Optimistic increments on one key while two other connections INCR it
    with plain commands: counter = commits + plain increments."""
    key = "race:plain"
    connect(port).set(key, 0)
    commits = [0]
    plain_each = 150

    def optimist():
        r = connect(port)
        for _ in range(200):
            commits[0] += optimistic_incr(r, key)

    def plain():
        r = connect(port)
        for _ in range(plain_each):
            r.incr(key)

    run_threads([optimist, plain, plain])
    got = int(connect(port).get(key))
    want = commits[0] + 2 * plain_each
    assert got == want, ("WATCH against plain INCR: counter %d, want %d "
                         "(%d commits)" % (got, want, commits[0]))
    print("WATCH against plain writes: %d commits of 200, counter %d"
          % (commits[0], got))


def read_settled(ports, key):
    """GET @key from the leader once the leadership has settled: right
    after a transfer the node found may answer TRYAGAIN or NOTLEADER, which
    ask the client to retry (for up to 10 s here)."""
    deadline = time.time() + 10
    while True:
        try:
            return connect(find_leader(ports)).get(key)
        except (redis.exceptions.ResponseError,
                redis.exceptions.ConnectionError) as e:
            if time.time() > deadline or not (
                    isinstance(e, redis.exceptions.ConnectionError) or
                    str(e).startswith(("TRYAGAIN", "NOTLEADER"))):
                raise
            time.sleep(0.1)


def test_watch_across_a_leader_change(ports):
    """A key watched on a follower and changed on the old leader; then the
    follower becomes leader; its EXEC must abort. And increments by
    transaction() across leadership transfers: the counter lies between the
    commits acknowledged and those plus the outcomes left unknown."""
    leader = find_leader(ports)
    follower = [p for p in ports if p != leader][0]
    key = "race:leader"
    connect(leader).set(key, "before")
    w = connect(follower)
    w.execute_command("WATCH", key)
    connect(leader).set(key, "changed")
    fid = node_id(follower)
    assert connect(leader).execute_command("BTRANSFER", fid) in (True, b"OK")
    end = time.time() + 30
    while find_leader(ports) != follower:
        assert time.time() < end, "the transfer did not happen"
        time.sleep(0.1)
    w.execute_command("MULTI")
    w.execute_command("SET", key, "mine")
    res = w.execute_command("EXEC")
    assert res is None, "EXEC after a leader change ran: %r" % (res,)
    assert connect(follower).get(key) == b"changed"
    print("WATCH on a follower that became leader: aborted")

    # Increments by transaction() while leadership moves between nodes.
    key = "race:moving"
    connect(find_leader(ports)).set(key, 0)
    state = {"commits": 0, "unknown": 0, "stop": False}
    lock = threading.Lock()

    def worker():
        done = 0
        while done < 40:
            port = find_leader(ports)
            r = redis.Redis(host=HOST, port=port, socket_timeout=TIMEOUT)
            try:
                def incr(pipe):
                    v = int(pipe.get(key))
                    pipe.multi()
                    pipe.set(key, v + 1)
                r.transaction(incr, key)
                with lock:
                    state["commits"] += 1
                done += 1
            except redis.exceptions.ResponseError as e:
                msg = str(e)
                if msg.startswith("UNKNOWN"):
                    with lock:
                        state["unknown"] += 1
                    done += 1
                elif not (msg.startswith("NOTLEADER") or
                          msg.startswith("TRYAGAIN") or
                          msg.startswith("DROPPED") or
                          msg.startswith("BUSY")):
                    raise
            except redis.exceptions.ConnectionError:
                pass
            finally:
                r.close()

    def mover():
        for i in range(3):
            time.sleep(0.5)
            lp = find_leader(ports)
            target = [p for p in ports if p != lp][i % 2]
            tid = node_id(target)
            try:
                connect(lp).execute_command("BTRANSFER", tid)
            except redis.exceptions.RedisError:
                pass

    run_threads([worker] * 4 + [mover])
    got = int(read_settled(ports, key))
    lo, hi = state["commits"], state["commits"] + state["unknown"]
    assert lo <= got <= hi, ("increments across leader changes: counter %d, "
                             "acknowledged %d, unknown %d"
                             % (got, lo, state["unknown"]))
    print("transaction() across leader changes: counter %d, acknowledged "
          "%d, unknown outcomes %d" % (got, lo, state["unknown"]))


def main():
    ports = [int(p) for p in sys.argv[1:]]
    print("redis-py", redis.__version__)
    leader = find_leader(ports)
    for name, fn in [
        ("transaction_helper", lambda: test_redis_py_transaction_helper(
            leader)),
        ("raw_watch_races", lambda: test_raw_watch_races(leader)),
        ("watch_against_plain_writes",
         lambda: test_watch_against_plain_writes(leader)),
        ("watch_across_a_leader_change",
         lambda: test_watch_across_a_leader_change(ports)),
    ]:
        fn()
        print("ok", name)
    return 0


if __name__ == "__main__":
    sys.exit(main())
