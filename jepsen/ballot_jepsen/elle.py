"""A list-append checker in the manner of Elle (Kingsbury & Alvaro, 2020).

Transactions are lists of micro-operations ["append", k, v] and
["r", k, list]. Every appended value is unique per key, so a read of a
list names the transaction that wrote each of its elements, and the
longest read of a key gives that key's version order. From that:

- ww: the writer of element i precedes the writer of element i+1;
- wr: the writer of a read's last element precedes the reader;
- rw: a reader of the prefix of length i precedes the writer of element
  i+1 (an anti-dependency);
- rt: a transaction that completed before another began precedes it
  (strict serializability; only between acknowledged transactions).

Cycles are named as Adya does: G0 (ww only), G1c (ww and wr), G-single
(exactly one rw), G2 (several rw); with "-realtime" when the cycle needs
an rt edge. Without a cycle: G1a (a read of an element whose transaction
failed), G1b (a read of an intermediate state of another transaction),
incompatible orders (two reads of a key, neither a prefix of the other),
duplicated elements, garbage (elements nobody appended), internal
inconsistencies, and lost appends (acknowledged, absent from a later
read of the key that began after the append completed).
"""
from collections import deque

from .history import pairs


class Txn:
    __slots__ = ("id", "index", "type", "mops", "call", "ret")

    def __repr__(self):
        return "T%d%s" % (self.index, self.mops)


def load(history):
    txns = []
    for inv, comp in pairs(history):
        if inv["f"] != "txn":
            continue
        t = Txn()
        t.id = len(txns)
        t.index = inv["index"]
        t.type = comp["type"] if comp else "info"
        t.mops = comp["value"] if t.type == "ok" else inv["value"]
        t.call = inv["time"]
        t.ret = comp["time"] if comp and t.type == "ok" else float("inf")
        txns.append(t)
    return txns


def check(history, realtime=True):
    txns = load(history)
    anomalies = {}

    def add(kind, item):
        anomalies.setdefault(kind, []).append(item)

    writer = {}  # (k, v) -> txn
    for t in txns:
        for m, k, v in t.mops:
            if m == "append":
                if (k, v) in writer:
                    add("duplicate-append-value", {"key": k, "value": v})
                writer[(k, v)] = t
    ok = [t for t in txns if t.type == "ok"]
    reads = {}  # k -> [(txn, list)]
    for t in ok:
        own = {}
        for m, k, v in t.mops:
            if m == "append":
                own.setdefault(k, []).append(v)
                continue
            if own.get(k) and (not v or v[-len(own[k]):] != own[k]):
                add("internal", {"txn": repr(t), "key": k, "read": v, "own_appends": own[k]})
            if len(v) != len(set(v)):
                add("duplicate-elements", {"txn": repr(t), "key": k, "read": v})
            # Reads the transaction's own appends explain are not
            # observations of others.
            ext = v[:len(v) - len(own[k])] if own.get(k) else v
            reads.setdefault(k, []).append((t, ext))
            for e in ext:
                w = writer.get((k, e))
                if w is None:
                    add("garbage", {"txn": repr(t), "key": k, "element": e})
                elif w.type == "fail":
                    add("G1a", {"reader": repr(t), "writer": repr(w), "key": k, "element": e})
            if ext:
                w = writer.get((k, ext[-1]))
                if w is not None and w is not t:
                    mine = [x for m2, k2, x in w.mops if m2 == "append" and k2 == k]
                    if mine and mine[-1] != ext[-1]:
                        add("G1b", {"reader": repr(t), "writer": repr(w), "key": k, "read": ext})
    # Version order per key: the longest read; every read must be a prefix.
    order = {}
    for k, rs in reads.items():
        longest = max((r for _, r in rs), key=len)
        for t, r in rs:
            if longest[:len(r)] != r:
                add("incompatible-order", {"key": k, "read": r, "other": longest, "txn": repr(t)})
        order[k] = longest
    # Lost appends: acknowledged, and missing from a read that began after.
    for k, rs in reads.items():
        for t, r in rs:
            seen = set(r)
            for (k2, v), w in writer.items():
                if k2 == k and w.type == "ok" and w.ret < t.call and v not in seen:
                    add("lost-append", {"key": k, "element": v, "writer": repr(w), "reader": repr(t)})
    # The dependency graph.
    edges = {}

    def edge(a, b, kind):
        if a is not b:
            edges.setdefault(a.id, {}).setdefault(b.id, set()).add(kind)
    for k, o in order.items():
        for a, b in zip(o, o[1:]):
            wa, wb = writer.get((k, a)), writer.get((k, b))
            if wa and wb:
                edge(wa, wb, "ww")
        for t, r in reads[k]:
            if r:
                w = writer.get((k, r[-1]))
                if w:
                    edge(w, t, "wr")
            if len(r) < len(o):
                w = writer.get((k, o[len(r)]))
                if w:
                    edge(t, w, "rw")
    if realtime:
        add_realtime(ok, edge)
    cycles = find_cycles(txns, edges)
    for kind, cyc in cycles:
        add(kind, cyc)
    counts = {k: len(v) for k, v in anomalies.items()}
    return {"valid": not anomalies if ok else "unknown", "txns": len(txns), "ok": len(ok),
            "anomaly_types": sorted(anomalies), "counts": counts,
            "anomalies": {k: v[:5] for k, v in anomalies.items()}}


def add_realtime(ok, edge):
    """rt edges, transitively reduced: each transaction gets an edge from
    every transaction on the frontier (completed before it began, and not
    followed by another that also did) at its invocation."""
    events = sorted([(t.call, 1, t) for t in ok] + [(t.ret, 0, t) for t in ok],
                    key=lambda e: (e[0], e[1], e[2].id))
    frontier = []
    for _, kind, t in events:
        if kind == 1:
            for f in frontier:
                edge(f, t, "rt")
        else:
            frontier = [f for f in frontier if not f.ret < t.call] + [t]


def sccs(nodes, adj):
    index, low, on, st, out = {}, {}, set(), [], []
    counter = [0]
    for root in nodes:
        if root in index:
            continue
        work = [(root, iter(adj.get(root, ())))]
        index[root] = low[root] = counter[0]
        counter[0] += 1
        st.append(root)
        on.add(root)
        while work:
            v, it = work[-1]
            advanced = False
            for w in it:
                if w not in index:
                    index[w] = low[w] = counter[0]
                    counter[0] += 1
                    st.append(w)
                    on.add(w)
                    work.append((w, iter(adj.get(w, ()))))
                    advanced = True
                    break
                if w in on:
                    low[v] = min(low[v], index[w])
            if advanced:
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[v])
            if low[v] == index[v]:
                comp = []
                while True:
                    w = st.pop()
                    on.discard(w)
                    comp.append(w)
                    if w == v:
                        break
                if len(comp) > 1:
                    out.append(comp)
    return out


def bfs_path(src, dst, allowed, edges, members):
    """Shortest path src -> dst over edges whose kinds meet allowed()."""
    prev = {src: None}
    q = deque([src])
    while q:
        v = q.popleft()
        for w, kinds in edges.get(v, {}).items():
            if w in members and w not in prev and allowed(kinds):
                prev[w] = v
                if w == dst:
                    path = [w]
                    while prev[path[-1]] is not None:
                        path.append(prev[path[-1]])
                    return path[::-1]
                q.append(w)
    return None


def find_cycles(txns, edges):
    """One shortest cycle per strongly connected component, named by the
    weakest kind of anomaly it shows."""
    found = []
    classes = [
        ("G0", {"ww"}),
        ("G1c", {"ww", "wr"}),
    ]
    for realtime in (False, True):
        suffix = "-realtime" if realtime else ""
        extra = {"rt"} if realtime else set()
        sub = {a: {b: k for b, k in bs.items() if k - ({"rt"} - extra)} for a, bs in edges.items()}
        for comp in sccs(list(sub), {a: list(bs) for a, bs in sub.items()}):
            members = set(comp)
            cyc = None
            for name, kinds in classes:
                ks = kinds | extra
                for v in comp:
                    for w, k in sub.get(v, {}).items():
                        if w in members and k & ks:
                            p = bfs_path(w, v, lambda x: bool(x & ks), sub, members)
                            if p is not None:
                                cyc = (name + suffix, [v] + p)
                                break
                    if cyc:
                        break
                if cyc:
                    break
            if cyc is None:
                # G-single: one rw edge closed by a path without rw.
                ks = {"ww", "wr"} | extra
                for v in comp:
                    for w, k in sub.get(v, {}).items():
                        if w in members and "rw" in k:
                            p = bfs_path(w, v, lambda x: bool(x & ks), sub, members)
                            if p is not None and (cyc is None or len(p) + 1 < len(cyc[1])):
                                cyc = ("G-single" + suffix, [v] + p)
            if cyc is None:
                v = comp[0]
                for w in sub.get(v, {}):
                    if w in members:
                        p = bfs_path(w, v, lambda x: True, sub, members)
                        if p:
                            cyc = ("G2" + suffix, [v] + p)
                            break
            if cyc is None:
                continue
            name, path = cyc
            if realtime and not any("rt" in edges[a][b] and len(edges[a][b]) == 1
                                    for a, b in zip(path, path[1:])):
                continue  # already reported without realtime edges
            steps = []
            for a, b in zip(path, path[1:]):
                steps.append({"from": repr(txns[a]), "to": repr(txns[b]), "edge": sorted(edges[a][b])})
            found.append((name, {"cycle": steps}))
    return found
