"""Checkers for the set, counter and bank workloads.

Each takes the history (a list of operations, history.py) and returns a
dict whose "valid" is True or False, with the anomalies found and the
operations involved. Failed operations did not happen; "info" ones may
have.
"""
from .history import pairs


def _client_pairs(ops):
    return [(i, c) for i, c in pairs(ops)]


def check_set(ops):
    """Every acknowledged add is in the final read and in every read that
    began after the add completed; no read holds an element never added;
    an element a read saw is in every read that began after that one
    ended (nothing is un-added)."""
    adds_ok, adds_maybe, reads = {}, set(), []
    for inv, comp in _client_pairs(ops):
        if comp is None:
            continue
        if inv["f"] == "add":
            if comp["type"] == "ok":
                adds_ok[inv["value"]] = comp["time"]
            if comp["type"] in ("ok", "info"):
                adds_maybe.add(inv["value"])
        elif inv["f"] == "read" and comp["type"] == "ok":
            reads.append((inv["time"], comp["time"], set(comp["value"]), comp))
    if not reads:
        return {"valid": "unknown", "error": "no successful read"}
    reads.sort(key=lambda r: r[0])
    final = reads[-1]
    lost = sorted(e for e in adds_ok if e not in final[2])
    unexpected = sorted(set().union(*(r[2] for r in reads)) - adds_maybe)
    stale = []
    for t_inv, t_comp, seen, op in reads:
        missing = [e for e, t in adds_ok.items() if t < t_inv and e not in seen]
        if missing:
            stale.append({"read": op["index"], "missing": sorted(missing)[:20],
                          "count": len(missing)})
    # An element seen by a read must stay visible to every later read.
    vanished = []
    first_seen_end = {}
    for t_inv, t_comp, seen, op in sorted(reads, key=lambda r: r[1]):
        for e in seen:
            first_seen_end.setdefault(e, (t_comp, op["index"]))
    for t_inv, t_comp, seen, op in reads:
        gone = [e for e, (t, _) in first_seen_end.items() if t < t_inv and e not in seen]
        if gone:
            vanished.append({"read": op["index"], "vanished": sorted(gone)[:20]})
    valid = not (lost or unexpected or stale or vanished)
    return {"valid": valid, "acknowledged": len(adds_ok), "attempted": len(adds_maybe),
            "final_read_size": len(final[2]), "lost": lost[:50], "lost_count": len(lost),
            "unexpected": unexpected[:50], "stale_reads": stale[:20],
            "stale_read_count": len(stale), "vanished": vanished[:20]}


def check_counter(ops):
    """Every read lies between the acknowledged increments completed
    before it began and every increment (acknowledged or unknown) invoked
    before it ended; each acknowledged INCR's reply is distinct (an
    increment applied twice shows up as a value no read can explain)."""
    adds = []  # (invoke time, completion time or None, type, delta)
    reads = []
    replies = {}
    for inv, comp in _client_pairs(ops):
        if inv["f"] == "add":
            t = comp["type"] if comp else "info"
            if t == "fail":
                continue
            adds.append((inv["time"], comp["time"] if comp and t == "ok" else None, t, 1))
            if t == "ok":
                v = comp["value"][1]
                replies.setdefault(v, []).append(comp["index"])
        elif inv["f"] == "read" and comp and comp["type"] == "ok":
            reads.append((inv["time"], comp["time"], comp["value"], comp))
    errors = []
    for t_inv, t_comp, v, op in reads:
        lower = sum(d for (ai, ac, t, d) in adds if t == "ok" and ac < t_inv)
        upper = sum(d for (ai, ac, t, d) in adds if ai < t_comp)
        if not lower <= v <= upper:
            errors.append({"read": op["index"], "value": v, "expected": [lower, upper]})
    dup = {v: idx for v, idx in replies.items() if len(idx) > 1}
    acked = sum(1 for a in adds if a[2] == "ok")
    unknown = sum(1 for a in adds if a[2] == "info")
    final = max(reads, key=lambda r: r[0])[2] if reads else None
    valid = not errors and not dup and bool(reads)
    res = {"valid": valid if reads else "unknown", "acknowledged": acked, "unknown": unknown,
           "final_value": final, "bad_reads": errors[:20], "bad_read_count": len(errors),
           "duplicate_replies": {str(k): v for k, v in list(dup.items())[:20]}}
    return res


def check_bank(ops, accounts, total):
    """Every successful read sees every account, no negative balance, and
    the same total."""
    bad = []
    n = 0
    for inv, comp in _client_pairs(ops):
        if inv["f"] != "read" or comp is None or comp["type"] != "ok":
            continue
        n += 1
        v = comp["value"]
        problems = []
        if len(v) != accounts or any(x is None for x in v):
            problems.append("missing account")
        else:
            if sum(v) != total:
                problems.append("total %d, not %d" % (sum(v), total))
            if any(x < 0 for x in v):
                problems.append("negative balance")
        if problems:
            bad.append({"read": comp["index"], "balances": v, "problems": problems})
    if n == 0:
        return {"valid": "unknown", "error": "no successful read"}
    return {"valid": not bad, "reads": n, "bad_reads": bad[:20], "bad_read_count": len(bad)}
