#!/usr/bin/python3
"""Benchmark of the checkers (prints numbers; not a pass/fail test):
the linearizability checker on 100,000 register operations over many keys,
with concurrent operations and some of unknown outcome, .

    /usr/bin/python3 jepsen/bench_checkers.py [OPS] [KEYS] [OVERLAP]

OVERLAP (default 4) is about how many operations of one key run at once.
"""
import os
import random
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from ballot_jepsen import elle, linear  # noqa: E402


def register_history(n_ops, n_keys, conc=4, info_share=0.02, seed=1):
    """A linearizable history by construction: each op takes effect at a
    random point inside its interval."""
    rng = random.Random(seed)
    ops = []
    per_key = n_ops // n_keys
    t = 0
    proc = 0
    for k in range(n_keys):
        evs = []
        for i in range(per_key):
            t += rng.randint(1, 1000)
            start = t
            # About @conc operations of a key overlap at a time.
            lin = start + rng.randint(0, 250 * conc)
            end = lin + rng.randint(0, 250 * conc)
            evs.append((lin, start, end, rng.choice(["read", "read", "write", "cas"]),
                        rng.randrange(5), rng.randrange(5)))
        evs.sort()
        state = None
        for lin, start, end, f, a, b in evs:
            proc += 1
            typ = "ok"
            if f == "read":
                v, out = None, state
            elif f == "write":
                state = a
                v = out = a
            else:
                v = out = [a, b]
                if state == a:
                    state = b
                else:
                    typ = "fail"
            if f != "read" and rng.random() < info_share:
                typ = "info" if typ == "ok" else typ
            ops.append((start, {"type": "invoke", "f": f, "value": [k, v], "process": proc}))
            ops.append((end, {"type": typ, "f": f, "value": [k, out], "process": proc}))
    ops.sort(key=lambda x: x[0])
    return [dict(o, time=t, index=i) for i, (t, o) in enumerate(ops)]


def main():
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 100_000
    keys = int(sys.argv[2]) if len(sys.argv) > 2 else 500
    conc = int(sys.argv[3]) if len(sys.argv) > 3 else 4
    h = register_history(n, keys, conc)
    t0 = time.monotonic()
    r = linear.check_independent(h)
    dt = time.monotonic() - t0
    print("linearizability: %d ops over %d keys, overlap %d: %.1f s (%s, %.0f ops/s)" % (
        r["ops"], r["keys"], conc, dt, "valid" if r["valid"] else "INVALID", r["ops"] / dt))
    # A violation planted in the last key: a read of a value never written.
    bad = list(h)
    for op in reversed(bad):
        if op["f"] == "read" and op["type"] == "ok":
            op["value"] = [op["value"][0], 99]
            break
    t0 = time.monotonic()
    r = linear.check_independent(bad)
    print("linearizability, one bad read planted: %.1f s (%s)" % (
        time.monotonic() - t0, "valid" if r["valid"] else "INVALID, as it must be"))


if __name__ == "__main__":
    main()
