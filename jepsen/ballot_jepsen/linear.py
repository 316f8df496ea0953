"""Linearizability of a read / write / compare-and-set register, checked
key by key (P-compositionality: a history is linearizable iff each key's
sub-history is, Porcupine) with the Wing–Gong search and Lowe's
memoization of (set of linearized operations, state).

Operations that failed did not happen and are dropped; an operation whose
outcome is unknown ("info", or never completed) may take effect at any
time after its invocation, or never: it has no return entry, and the
search may leave it out. Reads that did not succeed constrain nothing.
"""
from .history import pairs

INF = float("inf")


class Op:
    __slots__ = ("id", "f", "arg", "call", "ret", "index", "ret_index", "out")

    def __repr__(self):
        return "{%s %s %r [%s..%s]}" % (self.index, self.f, self.arg, self.call,
                                       self.ret if self.ret != INF else "?")


def step(state, op):
    """Returns (legal, new state)."""
    if op.f == "read":
        return state == op.arg, state
    if op.f == "write":
        return True, op.arg
    old, new = op.arg
    return state == old, new


def ops_by_key(history):
    keys = {}
    for inv, comp in pairs(history):
        t = comp["type"] if comp else "info"
        if t == "fail":
            continue
        f = inv["f"]
        if f == "read" and t != "ok":
            continue
        k = inv["value"][0]
        o = Op()
        o.f = f
        o.arg = comp["value"][1] if f == "read" else inv["value"][1]
        if isinstance(o.arg, list):
            o.arg = tuple(o.arg)
        o.call = inv["time"]
        o.ret = comp["time"] if t == "ok" else INF
        o.index = inv["index"]
        o.ret_index = comp["index"] if comp else None
        keys.setdefault(k, []).append(o)
    return keys


def check_key(ops, init=None):
    """Returns (True, None) or (False, counterexample dict)."""
    for i, o in enumerate(ops):
        o.id = i
    # Entries: (time, kind, op). Calls sort before returns at equal times
    # (the more permissive reading).
    ents = [(o.call, 0, o) for o in ops] + [(o.ret, 1, o) for o in ops if o.ret != INF]
    ents.sort(key=lambda e: (e[0], e[1], e[2].id))
    n = len(ents)
    # A doubly-linked list over 0..n-1 with head sentinel n.
    HEAD = n
    nxt = [i + 1 if i + 1 < n else None for i in range(n)] + [0 if n else None]
    prv = [i - 1 if i > 0 else HEAD for i in range(n)] + [None]
    is_call = [e[1] == 0 for e in ents]
    eop = [e[2] for e in ents]
    ret_of = {}
    for i, e in enumerate(ents):
        if e[1] == 1:
            ret_of[e[2].id] = i
    match = [ret_of.get(eop[i].id) if is_call[i] else None for i in range(n)]

    def unlink(i):
        p, q = prv[i], nxt[i]
        nxt[p] = q
        if q is not None:
            prv[q] = p

    def relink(i):
        p, q = prv[i], nxt[i]
        nxt[p] = i
        if q is not None:
            prv[q] = i

    returns_left = len(ret_of)
    state = init
    lin = 0
    calls = []
    cache = set()
    best = (-1, None)
    entry = nxt[HEAD]
    while returns_left > 0:
        if is_call[entry]:
            o = eop[entry]
            ok, ns = step(state, o)
            if ok:
                nl = lin | (1 << o.id)
                key = (nl, ns)
                if key not in cache:
                    cache.add(key)
                    calls.append((entry, state))
                    lin, state = nl, ns
                    unlink(entry)
                    if match[entry] is not None:
                        unlink(match[entry])
                        returns_left -= 1
                    entry = nxt[HEAD]
                    continue
            entry = nxt[entry]
        else:
            if len(calls) > best[0] or best[1] is None:
                best = (len(calls), ([eop[c[0]] for c in calls], state, eop[entry]))
            if not calls:
                return False, counterexample(ops, best[1])
            e, state = calls.pop()
            lin &= ~(1 << eop[e].id)
            if match[e] is not None:
                relink(match[e])
                returns_left += 1
            relink(e)
            entry = nxt[e]
    return True, None


def counterexample(ops, best):
    """The smallest story of the failure: the operation that could not be
    linearized, the state the longest linearization reached before it, the
    operation that wrote that state, and the operations concurrent with
    the failed one."""
    prefix, state, stuck = best
    writer = next((o for o in reversed(prefix) if o.f != "read"), None)
    concurrent = [o for o in ops if o is not stuck and o.call < stuck.ret and o.ret > stuck.call]
    involved = sorted({o.index for o in concurrent + [stuck] + ([writer] if writer else [])})
    return {
        "op": repr(stuck),
        "state_before": state,
        "last_write": repr(writer) if writer else None,
        "concurrent": [repr(o) for o in sorted(concurrent, key=lambda o: o.call)][:12],
        "linearized_prefix_length": len(prefix),
        "ops": involved,
        "explanation": "%s %s cannot take effect: the longest linearization of the "
                       "operations before it leaves the register at %r" % (
                           stuck.f, stuck.arg, state),
    }


def check_independent(history):
    keys = ops_by_key(history)
    bad = {}
    n = 0
    for k in sorted(keys, key=repr):
        ok, cx = check_key(keys[k])
        n += len(keys[k])
        if not ok:
            bad[str(k)] = cx
    return {"valid": not bad if n else "unknown", "keys": len(keys), "ops": n,
            "failures": dict(list(bad.items())[:5]), "failed_keys": sorted(bad)[:50]}
