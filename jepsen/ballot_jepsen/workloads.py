"""Workloads: what the clients do, and which checker judges it.

A workload generates operations (f, value) from a worker's seeded RNG,
runs one against the cluster (returning its completion value, or raising
client.Failed / client.Unknown), names the final reads to run after the
cluster has healed, and checks the history.
"""
import itertools
import random
import threading
import time

from . import checkers, client as cl, elle, linear
from .resp import RespError


class Workload:
    name = None
    read_fs = ("read",)
    op_timeout = 2.0

    def __init__(self, opts):
        self.opts = opts
        self.lock = threading.Lock()

    def setup(self, c):
        pass

    def new_worker(self, wid, rng):
        return {"wid": wid, "rng": rng}

    def final_ops(self):
        return [("read", None)]

    def check(self, ops):
        raise NotImplementedError


def _int(v):
    return None if v is None else int(v)


class Register(Workload):
    """Per-key read / write / compare-and-set, checked for
    linearizability key by key (independent keys, as Jepsen's)."""
    name = "register"
    keys_active = 4
    ops_per_key = 150

    def __init__(self, opts):
        super().__init__(opts)
        self.count = itertools.count()

    def key(self, rng):
        n = next(self.count)
        return n // self.ops_per_key * self.keys_active + rng.randrange(self.keys_active)

    def gen(self, w):
        rng = w["rng"]
        k = self.key(rng)
        f = rng.choice(["read", "read", "write", "cas"])
        if f == "read":
            return f, [k, None]
        if f == "write":
            return f, [k, rng.randrange(5)]
        return f, [k, [rng.randrange(5), rng.randrange(5)]]

    def invoke(self, c, w, f, value, deadline):
        k, v = value
        key = "r:%d" % k
        if f == "read":
            r = c.request([("GET", key)], deadline, read=True)[0]
            return [k, _int(r)]
        if f == "write":
            c.request([("SET", key, v)], deadline)
            return value
        old, new = v
        r = c.request([("BTXN", 1, "VALUE", key, "=", old, 1, "PUT", key, new, 0)], deadline)[0]
        if r[0] != 1:
            raise cl.Failed("cas: value was not %d" % old)
        return value

    def final_ops(self):
        return []

    def check(self, ops):
        return linear.check_independent(ops)


class Set(Workload):
    """Unique adds (one key each); reads of the whole set during the run
    and at the end."""
    name = "set"

    def __init__(self, opts):
        super().__init__(opts)
        self.count = itertools.count()

    def gen(self, w):
        if w["rng"].random() < 0.1:
            return "read", None
        return "add", next(self.count)

    def invoke(self, c, w, f, value, deadline):
        if f == "add":
            c.request([("SET", "s:%08d" % value, "1")], deadline)
            return value
        r = c.request([("BRANGE", "s:", "", "PREFIX", "KEYSONLY")], deadline, read=True)[0]
        if r[2]:
            raise cl.Failed("set read did not fit one reply")
        return sorted(int(k[2:]) for k in r[3])

    def check(self, ops):
        return checkers.check_set(ops)


class Counter(Workload):
    """INCR with request ids (BREQ), retried across timeouts, UNKNOWN and
    leader changes until the outcome is known."""
    name = "counter"
    op_timeout = 6.0

    def new_worker(self, wid, rng):
        return {"wid": wid, "rng": rng, "cid": rng.randrange(1, 2**62), "seq": 0}

    def gen(self, w):
        if w["rng"].random() < 0.15:
            return "read", None
        return "add", 1

    def invoke(self, c, w, f, value, deadline):
        if f == "read":
            return _int(c.request([("GET", "c")], deadline, read=True)[0]) or 0
        w["seq"] += 1
        r = c.request([("BREQ", w["cid"], w["seq"], "INCR", "c")], deadline, retry_unknown=True)[0]
        return [1, r]

    def check(self, ops):
        return checkers.check_counter(ops)


class Bank(Workload):
    """Transfers between accounts, as BTXN compare-and-swaps and as
    WATCH + MULTI/EXEC; reads of every balance must sum to the total."""
    name = "bank"
    accounts = 5
    initial = 100

    def keys(self):
        return ["b:%d" % i for i in range(self.accounts)]

    def setup(self, c):
        import time as _t
        c.request([("MSET",) + tuple(x for k in self.keys() for x in (k, self.initial))],
                  _t.monotonic() + 20)

    def gen(self, w):
        rng = w["rng"]
        if rng.random() < 0.3:
            return "read", None
        a, b = rng.sample(range(self.accounts), 2)
        return "transfer", {"from": a, "to": b, "amount": rng.randrange(1, 6),
                            "via": rng.choice(["btxn", "multi"])}

    def invoke(self, c, w, f, value, deadline):
        if f == "read":
            r = c.request([("MGET",) + tuple(self.keys())], deadline, read=True)[0]
            return [_int(x) for x in r]
        fa, ta, amt = "b:%d" % value["from"], "b:%d" % value["to"], value["amount"]
        if value["via"] == "btxn":
            bal = c.request([("MGET", fa, ta)], deadline)[0]
            x, y = int(bal[0]), int(bal[1])
            if x < amt:
                raise cl.Failed("insufficient funds")
            r = c.request([("BTXN", 2, "VALUE", fa, "=", x, "VALUE", ta, "=", y,
                            2, "PUT", fa, x - amt, "PUT", ta, y + amt, 0)], deadline)[0]
            if r[0] != 1:
                raise cl.Failed("balances changed")
            return value
        # WATCH, read, then MULTI/EXEC: EXEC aborts (null) if either changed.
        c.conn.close()
        r = c.request([("WATCH", fa, ta), ("MGET", fa, ta)], deadline)[1]
        x, y = int(r[0]), int(r[1])
        if x < amt:
            c.conn.close()
            raise cl.Failed("insufficient funds")
        try:
            r = c.conn.pipeline([("MULTI",), ("SET", fa, x - amt), ("SET", ta, y + amt), ("EXEC",)],
                                timeout=max(0.05, deadline - __import__("time").monotonic()))
        except Exception as e:
            raise cl.Unknown(str(e))
        finally:
            c.conn.close()
        ex = r[3]
        if ex is None:
            raise cl.Failed("watched balances changed")
        if isinstance(ex, RespError):
            if cl.not_applied(ex):
                c.follow(ex)
                raise cl.Failed(ex.text)
            raise cl.Unknown(ex.text)
        return value

    def check(self, ops):
        return checkers.check_bank(ops, self.accounts, self.accounts * self.initial)


class Append(Workload):
    """Elle's list-append: transactions of appends and reads over a few
    keys, as MULTI/EXEC (APPEND, GET), as Redis's optimistic transaction
    (WATCH the keys, read them, MULTI, APPEND, EXEC: aborted if one
    changed), or as a BTXN guarded by the values read first."""
    name = "append"
    keys_active = 5
    txns_per_key = 60

    def __init__(self, opts):
        super().__init__(opts)
        self.count = itertools.count()
        self.elems = itertools.count(1)
        self.via = opts.get("via", "mixed")

    def gen(self, w):
        rng = w["rng"]
        base = next(self.count) // self.txns_per_key
        self.max_key = max(getattr(self, "max_key", 0), base + self.keys_active)
        txn = []
        for _ in range(rng.randint(1, 4)):
            k = base + rng.randrange(self.keys_active)
            if rng.random() < 0.5:
                txn.append(["r", k, None])
            else:
                txn.append(["append", k, next(self.elems)])
        via = self.via if self.via != "mixed" else rng.choice(["multi", "watch", "btxn"])
        w["via"] = via
        return "txn", txn

    @staticmethod
    def parse(v):
        if v is None:
            return []
        return [int(x) for x in v.split(",") if x]

    def invoke(self, c, w, f, txn, deadline):
        if w.get("via") == "btxn":
            return self.invoke_btxn(c, txn, deadline)
        if w.get("via") == "watch":
            return self.invoke_watch(c, txn, deadline)
        cmds = [("MULTI",)]
        for m, k, v in txn:
            cmds.append(("APPEND", "a:%d" % k, "%d," % v) if m == "append" else ("GET", "a:%d" % k))
        cmds.append(("EXEC",))

        def decide(replies):
            for r in replies[:-1]:
                if isinstance(r, RespError):
                    return r
            return replies[-1]
        try:
            r = c.request(cmds, deadline, check=decide)[-1]
        finally:
            c.conn.close()  # never leave a half-open MULTI behind
        out = []
        for (m, k, v), x in zip(txn, r):
            out.append([m, k, v if m == "append" else self.parse(x)])
        return out

    def local_txn(self, txn, state):
        """The transaction's reads, answered from @state (each key's value
        read before it) and its own earlier appends; returns the
        completed transaction and each appended key's new value."""
        local = {k: (state[k] or "") for k in state}
        out, puts = [], {}
        for m, k, v in txn:
            if m == "append":
                local[k] += "%d," % v
                puts[k] = local[k]
                out.append([m, k, v])
            else:
                out.append([m, k, self.parse(local[k])])
        return out, puts

    def invoke_watch(self, c, txn, deadline):
        """WATCH, GET, then MULTI/APPEND/EXEC on one connection: EXEC runs
        the appends only if no watched key changed since the WATCH, so the
        values read are the ones the appends extend."""
        import time as _t
        keys = sorted({k for _, k, _ in txn})
        names = ["a:%d" % k for k in keys]
        c.conn.close()  # a fresh connection: no WATCH of an earlier attempt
        try:
            cur = c.request([("WATCH",) + tuple(names), ("MGET",) + tuple(names)], deadline,
                            check=lambda rs: next((x for x in rs if isinstance(x, RespError)),
                                                  rs[-1]))[1]
            out, puts = self.local_txn(txn, dict(zip(keys, cur)))
            cmds = [("MULTI",)] + [("APPEND", "a:%d" % k, "%d," % v)
                                   for m, k, v in txn if m == "append"] + [("EXEC",)]
            try:
                r = c.conn.pipeline(cmds, timeout=max(0.05, deadline - _t.monotonic()))
            except Exception as e:
                raise cl.Unknown(str(e))
        finally:
            c.conn.close()
        for x in r[:-1]:
            if isinstance(x, RespError):
                # Queued nothing, or refused at once: EXEC then aborts.
                raise cl.Failed(x.text)
        ex = r[-1]
        if ex is None:
            raise cl.Failed("a watched key changed")
        if isinstance(ex, RespError):
            if cl.not_applied(ex):
                c.follow(ex)
                raise cl.Failed(ex.text)
            raise cl.Unknown(ex.text)
        return out

    def invoke_btxn(self, c, txn, deadline):
        keys = sorted({k for _, k, _ in txn})
        names = ["a:%d" % k for k in keys]
        cur = c.request([("MGET",) + tuple(names)], deadline)[0]
        state = dict(zip(keys, cur))
        cmps = []
        for k, v in zip(names, cur):
            cmps += ["EXISTS", k, "=", 0] if v is None else ["VALUE", k, "=", v]
        out, puts = self.local_txn(txn, state)
        ops = []
        for k, v in sorted(puts.items()):
            ops += ["PUT", "a:%d" % k, v]
        r = c.request([("BTXN", len(keys), *cmps, len(puts), *ops, 0)], deadline)[0]
        if r[0] != 1:
            raise cl.Failed("values changed since read")
        return out

    def final_ops(self):
        """Reads of every key, after healing: an acknowledged append
        missing from them is lost."""
        keys = list(range(getattr(self, "max_key", 0)))
        return [("txn", [["r", k, None] for k in keys[i:i + 10]]) for i in range(0, len(keys), 10)]

    def check(self, ops):
        return elle.check(ops)


class Id(Workload):
    """Snowflake IDs (BSNOWFLAKE n) minted by the worker's own node, and
    blocks of the cluster-wide sequence (BSEQ jepsen n) from the leader:
    unique in the run; snowflakes increasing on each node, sequence IDs
    across the cluster."""
    name = "id"

    def gen(self, w):
        return ("seq" if w["rng"].random() < 0.3 else "id"), w["rng"].randint(1, 4)

    def invoke(self, c, w, f, value, deadline):
        if f == "seq":
            first, last = c.request([("BSEQ", "jepsen", value)], deadline)[0]
            return ["seq", list(range(int(first), int(last) + 1))]
        # read=True: minted where the worker is, never redirected (every
        # node mints); after a dead node the client moves to the next.
        r = c.request([("BSNOWFLAKE", value)], deadline, read=True)[0]
        return [c.node.id, r]

    def final_ops(self):
        return []

    def check(self, ops):
        return checkers.check_ids(ops)


class Lock(Workload):
    """Locks with server-enforced fencing (docs/coordination.md, "Locks"):
    each operation grants a short lease, claims lock L with it (BLOCK
    ACQUIRE, waiting its turn), appends its token to the key "fenced"
    inside BFENCE (refused unless the token still holds the lock when the
    append is applied), releases the lock and revokes the lease. A paused
    or partitioned holder whose lease ended is fenced out; the final read
    returns the tokens appended, which must strictly increase."""
    name = "lock"
    op_timeout = 8.0
    lease_ms = 2000

    def gen(self, w):
        return "hold", None

    def invoke(self, c, w, f, value, deadline):
        if f == "read":
            r = c.request([("GET", "fenced")], deadline, read=True)[0]
            return [int(t) for t in (r or "").split(",") if t]
        lease = c.request([("BLEASE", "GRANT", self.lease_ms)], deadline)[0][0]
        token = None
        try:
            wait = max(1, int((deadline - time.monotonic()) * 1000) - 1000)
            token = c.request([("BLOCK", "ACQUIRE", "L", lease, "TIMEOUT", wait)],
                              deadline)[0]
            if token is None:
                raise cl.Failed("timed out waiting for the lock")
            c.request([("BFENCE", "L", token, "APPEND", "fenced", "%d," % token)],
                      deadline)
            return token
        finally:
            # The lease's end frees the lock anyway; revoking it is quicker.
            try:
                c.request([("BLEASE", "REVOKE", lease)], time.monotonic() + 1.0)
            except (cl.Failed, cl.Unknown):
                pass

    def check(self, ops):
        return checkers.check_lock(ops)


def _event(op, key, value, rev):
    """An event as the checker compares it: [revision, op, key, value]
    (a delete's value is None)."""
    return [int(rev), op, key, value if op == "put" else None]


class Watch(Workload):
    """Writes and deletes of a few keys under w:, while one watcher per
    node streams the range (BWATCH w: PREFIX) from revision 1, resuming
    from its last revision + 1 on the next node whenever its connection
    fails or stalls, like `ballot watch`. The final operation reads the
    committed history (BHISTORY), waits until every watcher has caught
    up with it, and records the streams beside it."""
    name = "watch"
    keys = 6
    prefix = "w:"
    stall_s = 3.0  # progress notifications come about once a second

    def __init__(self, opts):
        super().__init__(opts)
        self.count = itertools.count()
        self.stop = threading.Event()
        self.watchers = []
        self.streams = {}  # watcher -> [{"start", "end", "events"}]

    def setup(self, c):
        self.cluster = c.cluster
        for i in range(len(self.cluster.nodes)):
            self.streams[str(i)] = [{"start": 1, "end": 0, "events": []}]
            t = threading.Thread(target=self.watch_loop, args=(i,), name="watcher-%d" % i,
                                 daemon=True)
            t.start()
            self.watchers.append(t)

    def watch_loop(self, wid):
        from .cluster import CLIENT_PORT
        from . import resp
        nodes = self.cluster.nodes
        at = wid % len(nodes)
        segs = self.streams[str(wid)]
        while not self.stop.is_set():
            seg = segs[-1]
            nxt = max([seg["start"], seg["end"] + 1] +
                      [e[0] + 1 for e in seg["events"][-1:]])
            conn = resp.Conn(nodes[at].host, CLIENT_PORT, timeout=2.0)
            try:
                r = conn.call("BWATCH", self.prefix, "PREFIX", "REV", nxt)
                if isinstance(r, resp.RespError):
                    if r.prefix == "COMPACTED":
                        # The history at nxt is gone: a new segment from
                        # where it starts now (a gap the stream admits).
                        with self.lock:
                            segs.append({"start": int(r.text.rsplit(" ", 1)[1]), "end": 0,
                                         "events": []})
                        continue
                    raise resp.NotSent(r.text)
                while not self.stop.is_set():
                    fr = conn.read(self.stall_s)
                    if not isinstance(fr, list) or not fr:
                        continue
                    if fr[0] == "bwatch":
                        with self.lock:
                            for op, key, value, _cr, mod, _ver in fr[3]:
                                seg["events"].append(_event(op, key, value, mod))
                            seg["end"] = max(seg["end"], int(fr[2]))
                    elif fr[0] == "bwatch-end":
                        if fr[2] == "compacted":
                            with self.lock:
                                segs.append({"start": int(fr[3]) + 1, "end": 0, "events": []})
                        break
            except (resp.NotSent, resp.Indeterminate, OSError, ValueError):
                at = (at + 1) % len(nodes)
                self.stop.wait(0.1)
            finally:
                conn.close()

    def gen(self, w):
        rng = w["rng"]
        k = rng.randrange(self.keys)
        if rng.random() < 0.15:
            return "delete", [k, None]
        return "write", [k, "v%d" % next(self.count)]

    def invoke(self, c, w, f, value, deadline):
        if f == "history":
            return self.final_history(c, deadline)
        k, v = value
        key = "%s%d" % (self.prefix, k)
        if f == "write":
            c.request([("SET", key, v)], deadline)
        else:
            c.request([("DEL", key)], deadline)
        return value

    def final_history(self, c, deadline):
        """The committed history from the oldest revision kept; then waits
        (until the deadline) for every watcher to reach its revision."""
        import time as _t
        start = rev = 1
        events = []
        while True:
            # COMPACTED is an answer here, not a failure.
            r = c.request([("BHISTORY", rev, "COUNT", 10000)], deadline, read=True,
                          check=lambda rs: None if isinstance(rs[0], RespError) and
                          rs[0].prefix == "COMPACTED" else rs[0])[0]
            if isinstance(r, RespError) and r.prefix == "COMPACTED" and rev == start:
                # Compacted under us: the history kept starts there.
                start = rev = int(r.text.rsplit(" ", 1)[1])
                continue
            if isinstance(r, RespError):
                raise cl.Failed(r.text)
            for op, key, value, mod, _cr, _ver in r[3]:
                events.append(_event(op, key, value, mod))
            final, rev = int(r[0]), int(r[1])
            if not int(r[2]):
                break
        while _t.monotonic() < deadline - 1:
            with self.lock:
                if all(s[-1]["end"] >= final for s in self.streams.values()):
                    break
            _t.sleep(0.1)
        self.stop.set()
        for t in self.watchers:
            t.join(self.stall_s + 3)
        with self.lock:
            streams = {k: [dict(s, events=list(s["events"])) for s in v]
                       for k, v in self.streams.items()}
        return {"from": start, "revision": final, "events": events, "streams": streams}

    def final_ops(self):
        return [("history", [None, None])]

    def check(self, ops):
        return checkers.check_watch(ops, self.prefix)


WORKLOADS = {w.name: w for w in (Register, Set, Counter, Bank, Append, Id, Watch,
                                  Lock)}
