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


def snowflake_member(i):
    """The member id inside a snowflake ID (docs/coordination.md "IDs")."""
    return (i >> 12) & 0x3FF


def check_ids(ops):
    """Snowflake IDs (f "id", BSNOWFLAKE, value [node, ids]) and sequence
    IDs (f "seq", BSEQ, value ["seq", ids]): every ID handed out once in
    the whole run; each snowflake carries the member id of the node that
    minted it; and within a group (a node's snowflakes, or the cluster's
    sequence) a batch that began after another ended holds only larger
    IDs: snowflakes increase per node (also across restarts and clock
    faults), sequence IDs across the whole cluster."""
    seen = {}  # (kind, id) -> completion index
    dups, wrong_member, batch_disorder = [], [], []
    per_node = {}  # group -> [(invoke time, completion time, lo, hi, index)]
    n = 0
    for inv, comp in pairs(ops):
        if inv["f"] not in ("id", "seq") or comp is None or comp["type"] != "ok":
            continue
        node, ids = comp["value"]
        n += len(ids)
        for i in ids:
            if (inv["f"], i) in seen:
                dups.append({"id": i, "ops": [seen[(inv["f"], i)], comp["index"]]})
            seen.setdefault((inv["f"], i), comp["index"])
            if inv["f"] == "id" and snowflake_member(i) != node:
                wrong_member.append({"id": i, "node": node, "member_in_id": snowflake_member(i),
                                     "op": comp["index"]})
        if any(a >= b for a, b in zip(ids, ids[1:])):
            batch_disorder.append({"op": comp["index"], "ids": ids})
        if ids:
            per_node.setdefault(node, []).append((inv["time"], comp["time"], min(ids), max(ids),
                                                  comp["index"]))
    # Sweep each node's batches by invocation time, against the largest ID
    # of the batches that completed before it began.
    backwards = []
    for node, batches in per_node.items():
        by_end = sorted(batches, key=lambda b: b[1])
        j, top, top_op = 0, None, None
        for b in sorted(batches, key=lambda b: b[0]):
            while j < len(by_end) and by_end[j][1] < b[0]:
                if top is None or by_end[j][3] > top:
                    top, top_op = by_end[j][3], by_end[j][4]
                j += 1
            if top is not None and b[2] <= top:
                backwards.append({"node": node, "op": b[4], "min_id": b[2],
                                  "earlier_op": top_op, "earlier_max_id": top})
    if n == 0:
        return {"valid": "unknown", "error": "no ID was minted"}
    valid = not (dups or wrong_member or batch_disorder or backwards)
    return {"valid": valid, "ids": n, "groups": sorted(per_node, key=str),
            "duplicates": dups[:20], "duplicate_count": len(dups),
            "wrong_member": wrong_member[:20], "batch_disorder": batch_disorder[:20],
            "backwards": backwards[:20], "backwards_count": len(backwards)}


def check_watch(ops, prefix="w:"):
    """Watches (BWATCH): each watcher's stream, segment by segment (a new
    segment only after its history was compacted under it), equals the
    committed history of the range read at the end (BHISTORY): the same
    events at the same revisions, in revision order, each once, none
    missing between the segment's first revision and the last one it was
    told about. Below the history's compaction point the watchers must
    agree with each other. Every acknowledged write is in the history or
    a stream; nothing appears that was never written; every watcher caught
    up with the final revision."""
    final = None
    writes_ok, writes_maybe = set(), set()
    for inv, comp in pairs(ops):
        if comp is None:
            continue
        if inv["f"] == "history" and comp["type"] == "ok":
            final = comp["value"]
        elif inv["f"] in ("write", "delete"):
            k, v = inv["value"]
            k = "%s%s" % (prefix, k)
            if comp["type"] == "ok":
                writes_ok.add((inv["f"], k, v))
            if comp["type"] in ("ok", "info"):
                writes_maybe.add((inv["f"], k, v))
    if final is None:
        return {"valid": "unknown", "error": "no final history read"}
    start, end = final["from"], final["revision"]
    ref = {}
    for rev, op, key, value in final["events"]:
        if key.startswith(prefix):
            ref[rev] = (op, key, value)
    disorder, mismatch, missed, disagree, behind = [], [], [], [], []
    union = {}
    for wid, segments in sorted(final["streams"].items()):
        last_end = None
        for si, seg in enumerate(segments):
            revs = [e[0] for e in seg["events"]]
            for a, b in zip(revs, revs[1:]):
                if b <= a:
                    disorder.append({"watcher": wid, "segment": si, "revisions": [a, b]})
            got = {}
            for rev, op, key, value in seg["events"]:
                got[rev] = (op, key, value)
                if rev >= start and ref.get(rev) != (op, key, value):
                    mismatch.append({"watcher": wid, "revision": rev, "stream": [op, key, value],
                                     "history": ref.get(rev)})
                if rev in union and union[rev][0] != (op, key, value):
                    disagree.append({"revision": rev, "watchers": [union[rev][1], wid],
                                     "events": [union[rev][0], (op, key, value)]})
                union.setdefault(rev, ((op, key, value), wid))
            lo, hi = max(seg["start"], start), seg["end"]
            gone = [r for r in ref if lo <= r <= hi and r not in got]
            if gone:
                missed.append({"watcher": wid, "segment": si, "missing": sorted(gone)[:20],
                               "count": len(gone)})
            last_end = seg["end"]
        if last_end is None or last_end < end:
            behind.append({"watcher": wid, "last_revision": last_end, "final": end})
    stored = {(("write" if op == "put" else "delete"), k, v if op == "put" else None)
              for op, k, v in list(ref.values()) + [u[0] for u in union.values()]}
    lost = sorted([list(w) for w in writes_ok if w[0] == "write" and w not in stored],
                  key=str)
    phantom = sorted([list(s) for s in stored if s[0] == "write" and s not in writes_maybe],
                     key=str)
    valid = not (disorder or mismatch or missed or disagree or behind or lost or phantom)
    return {"valid": valid, "history_from": start, "final_revision": end,
            "history_events": len(ref), "watchers": len(final["streams"]),
            "stream_events": sum(len(s["events"]) for ss in final["streams"].values() for s in ss),
            "disorder": disorder[:20], "mismatch": mismatch[:20], "missed": missed[:20],
            "disagree": disagree[:20], "behind": behind, "lost": lost[:20],
            "phantom": phantom[:20]}


def check_lock(ops):
    """Locks with fencing (f "hold": value the fencing token the worker
    held while its fenced append went through; f "read": the tokens the
    key "fenced" holds, in append order). Two holders with the same token,
    a token appended after a larger one (a stale holder's write got past
    the fence), a hold that began after another ended with a token not
    above it, or an acknowledged append missing from the final read: each
    is caught. (An "info" hold may or may not have appended its token; the
    order check covers it.)"""
    holds, final = [], None
    for inv, comp in pairs(ops):
        if comp is None:
            continue
        if inv["f"] == "hold":
            if comp["type"] == "ok":
                holds.append((inv["time"], comp["time"], comp["value"], comp["index"]))
        elif inv["f"] == "read" and comp["type"] == "ok":
            if final is None or inv["time"] >= final[0]:
                final = (inv["time"], comp["value"], comp["index"])
    if final is None:
        return {"valid": "unknown", "error": "no successful read"}
    by_token = {}
    same_token = []
    for t0, t1, token, idx in holds:
        if token in by_token:
            same_token.append({"token": token, "ops": [by_token[token], idx]})
        by_token.setdefault(token, idx)
    log = final[1]
    decreasing = [{"at": i, "token": b, "after": a} for i, (a, b) in
                  enumerate(zip(log, log[1:]), 1) if b <= a]
    # A hold that began after another ended must hold a larger token.
    backwards = []
    by_end = sorted(holds, key=lambda h: h[1])
    j, top, top_op = 0, None, None
    for t0, t1, token, idx in sorted(holds, key=lambda h: h[0]):
        while j < len(by_end) and by_end[j][1] < t0:
            if top is None or by_end[j][2] > top:
                top, top_op = by_end[j][2], by_end[j][3]
            j += 1
        if top is not None and token <= top:
            backwards.append({"op": idx, "token": token, "earlier_op": top_op,
                              "earlier_token": top})
    in_log = set(log)
    lost = sorted(t for _, _, t, _ in holds if t not in in_log)
    valid = not (same_token or decreasing or backwards or lost)
    return {"valid": valid, "holds": len(holds), "appended": len(log),
            "same_token": same_token[:20], "decreasing": decreasing[:20],
            "backwards": backwards[:20], "lost": lost[:20]}
