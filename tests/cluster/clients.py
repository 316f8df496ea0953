#!/usr/bin/env python3
"""clients.py - the Python redis client (redis-py) against a real ballotd
cluster. Run by test_clients.c (python_redis_client) with the leader's and
a follower's client ports:

    clients.py LEADER_PORT FOLLOWER_PORT

Exits 0 if every check passed; prints what failed otherwise. Every socket
operation has a timeout, so the script cannot hang.
"""
import sys

import redis

HOST = "127.0.0.1"
TIMEOUT = 10


def connect(port, **kw):
    return redis.Redis(host=HOST, port=port, socket_timeout=TIMEOUT,
                       socket_connect_timeout=TIMEOUT, **kw)


def expect_error(fn, text):
    try:
        fn()
    except redis.exceptions.ResponseError as e:
        assert text in str(e), "error %r does not contain %r" % (str(e), text)
        return str(e)
    raise AssertionError("no error raised; wanted %r" % text)


def test_strings(r):
    assert r.set("py:k", "v") is True
    assert r.get("py:k") == b"v"
    assert r.get("py:missing") is None
    assert r.incr("py:n") == 1
    assert r.incrby("py:n", 41) == 42
    assert r.decr("py:n") == 41
    assert r.mset({"py:a": "1", "py:b": "2"}) is True
    assert r.mget("py:a", "py:b", "py:nope") == [b"1", b"2", None]
    assert r.delete("py:a", "py:b", "py:nope") == 2
    assert r.exists("py:k") == 1
    assert r.setnx("py:k", "other") is False
    assert r.append("py:k", "w") == 2
    assert r.getset("py:k", "x") == b"vw"
    assert r.strlen("py:k") == 1
    assert r.ping() is True


def test_hashes(r, other, follower):
    assert r.hset("py:h", mapping={"a": "1", "b": "2"}) == 2
    assert r.hset("py:h", "a", "3") == 0
    assert r.hget("py:h", "a") == b"3"
    assert r.hmget("py:h", ["a", "zz", "b"]) == [b"3", None, b"2"]
    assert r.hgetall("py:h") == {b"a": b"3", b"b": b"2"}
    assert r.hkeys("py:h") == [b"a", b"b"]
    assert r.hvals("py:h") == [b"3", b"2"]
    assert r.hlen("py:h") == 2
    assert r.hexists("py:h", "b") is True
    assert r.hstrlen("py:h", "a") == 1
    assert r.hsetnx("py:h", "a", "x") == 0
    assert r.hincrby("py:h", "n", 5) == 5
    assert abs(r.hincrbyfloat("py:h", "f", 1.5) - 1.5) < 1e-9
    assert dict(r.hscan_iter("py:h", match="[ab]")) == {b"a": b"3", b"b": b"2"}
    assert r.hdel("py:h", "n", "f", "nope") == 2
    assert r.type("py:h") == b"hash"
    expect_error(lambda: r.get("py:h"), "WRONGTYPE")
    r.set("py:hs", "text")
    expect_error(lambda: r.hget("py:hs", "a"), "WRONGTYPE")
    expect_error(lambda: r.hset("py:hs", "a", "1"), "WRONGTYPE")
    # Linearizable reads on a follower see the hash.
    assert follower.hgetall("py:h") == {b"a": b"3", b"b": b"2"}
    # redis-py's optimistic pattern on a hash: WATCH it, read a field,
    # write it back; another client's HSET in between aborts the EXEC.
    with r.pipeline() as p:
        p.watch("py:h")
        assert p.hget("py:h", "a") == b"3"
        other.hset("py:h", "a", "4")
        p.multi()
        p.set("py:h:seen", "3")
        try:
            p.execute()
            raise AssertionError("EXEC ran though the watched hash changed")
        except redis.exceptions.WatchError:
            pass
    assert r.get("py:h:seen") is None
    assert r.delete("py:h") == 1
    assert r.exists("py:h") == 0


def test_pipeline(r):
    p = r.pipeline(transaction=False)
    for i in range(200):
        p.set("py:pipe:%d" % i, i)
    p.incr("py:pipe:ctr")
    p.get("py:pipe:7")
    p.incr("py:pipe:1")
    res = p.execute()
    assert res[:200] == [True] * 200, res[:5]
    assert res[200:] == [1, b"7", 2], res[200:]
    assert r.get("py:pipe:199") == b"199"


def test_multi_exec(r):
    p = r.pipeline(transaction=True)
    p.set("py:tx:a", "1").incr("py:tx:a").get("py:tx:a").incr("py:tx:b")
    assert p.execute() == [True, 2, b"2", 1]
    # A failing command inside MULTI has its error in its slot; the others
    # still apply (Redis semantics).
    r.set("py:tx:s", "text")
    p = r.pipeline(transaction=True)
    p.incr("py:tx:s").set("py:tx:c", "c")
    res = p.execute(raise_on_error=False)
    assert isinstance(res[0], redis.exceptions.ResponseError), res
    assert "not an integer" in str(res[0]), res
    assert res[1] is True
    assert r.get("py:tx:c") == b"c"


def test_watch(r, other):
    r.set("py:w", "0")
    # Unmodified: EXEC runs.
    with r.pipeline(transaction=True) as p:
        p.watch("py:w")
        v = int(p.get("py:w"))
        p.multi()
        p.set("py:w", v + 1)
        assert p.execute() == [True]
    assert r.get("py:w") == b"1"
    # Modified by another connection between WATCH and EXEC: WatchError,
    # and the transaction did not run.
    with r.pipeline(transaction=True) as p:
        p.watch("py:w")
        v = int(p.get("py:w"))
        other.set("py:w", "100")
        p.multi()
        p.set("py:w", v + 1)
        p.set("py:w:side", "ran")
        try:
            p.execute()
            raise AssertionError("EXEC ran despite a modified watched key")
        except redis.exceptions.WatchError:
            pass
    assert r.get("py:w") == b"100"
    assert r.get("py:w:side") is None
    # The usual optimistic-locking loop converges.
    def incr_by_watch(pipe):
        v = int(pipe.get("py:w"))
        pipe.multi()
        pipe.set("py:w", v + 1)
    r.transaction(incr_by_watch, "py:w")
    assert r.get("py:w") == b"101"


def test_binary(r):
    every = bytes(range(256))
    key = b"py:bin:" + every
    assert r.set(key, every) is True
    assert r.get(key) == every
    assert r.strlen(key) == 256
    # Each byte value alone, as key suffix and as value.
    p = r.pipeline(transaction=False)
    for b in range(256):
        p.set(b"py:b1:" + bytes([b]), bytes([b]) * 3)
    assert p.execute() == [True] * 256
    got = r.mget([b"py:b1:" + bytes([b]) for b in range(256)])
    assert got == [bytes([b]) * 3 for b in range(256)]
    assert r.append(key, b"\x00\r\n") == 259
    assert r.get(key) == every + b"\x00\r\n"
    keys = set(r.scan_iter(match=b"py:b1:*", count=100))
    assert keys == {b"py:b1:" + bytes([b]) for b in range(256)}, len(keys)


def test_resp3(port):
    major = int(redis.__version__.split(".")[0])
    if major < 5:
        print("redis-py %s has no protocol=3: RESP3 not tested here"
              % redis.__version__)
        return
    r3 = connect(port, protocol=3)
    assert r3.set("py:r3", "v") is True
    assert r3.get("py:r3") == b"v"
    assert r3.get("py:r3:missing") is None
    assert r3.incr("py:r3:n") == 1
    r3.close()


def test_errors(r, follower):
    msg = expect_error(lambda: follower.set("py:f", "v"), "NOTLEADER")
    assert msg.startswith("NOTLEADER leader is at %s:%d"
                          % (HOST, r.connection_pool.connection_kwargs["port"])
                          ), msg
    expect_error(lambda: r.execute_command("NOSUCHCMD", "a"),
                 "unknown command 'NOSUCHCMD'")
    expect_error(lambda: r.execute_command("GET"),
                 "wrong number of arguments for 'get' command")
    expect_error(lambda: r.execute_command("SET", "k"),
                 "wrong number of arguments for 'set' command")
    r.set("py:e", "abc")
    expect_error(lambda: r.incr("py:e"), "value is not an integer")
    # Reads work on the follower (linearizable, through the leader).
    assert follower.get("py:k") == b"x"
    # The connections are still usable after the errors.
    assert r.get("py:e") == b"abc"


def main():
    leader, follower_port = int(sys.argv[1]), int(sys.argv[2])
    print("redis-py", redis.__version__)
    r = connect(leader)
    other = connect(leader)
    follower = connect(follower_port)
    for name, fn in [
        ("strings", lambda: test_strings(r)),
        ("pipeline", lambda: test_pipeline(r)),
        ("multi_exec", lambda: test_multi_exec(r)),
        ("hashes", lambda: test_hashes(r, other, follower)),
        ("watch", lambda: test_watch(r, other)),
        ("binary", lambda: test_binary(r)),
        ("resp3", lambda: test_resp3(leader)),
        ("errors", lambda: test_errors(r, follower)),
    ]:
        fn()
        print("ok", name)
    return 0


if __name__ == "__main__":
    sys.exit(main())
