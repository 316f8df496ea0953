"""The full matrix: every workload under every nemesis on 3 and 5 nodes,
then the deliberately broken builds; writes the tables of docs/jepsen.md
(between its matrix and broken markers) from the verdicts.

    /usr/bin/python3 jepsen/matrix.py [--time S] [--workloads a,b] [--nemeses a,b]
                                      [--nodes 3,5] [--store DIR] [--doc FILE]

Exits 1 if any run of the default build is not valid.
"""
import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import broken  # noqa: E402
from ballot_jepsen.workloads import WORKLOADS  # noqa: E402

NEMESES = ["none", "kill", "pause", "partition", "network", "clock", "membership", "disk",
           "maintenance", "lose-unsynced", "mixed"]


def run_one(w, nem, n, a, seed):
    name = "matrix-%s-%s-%dn-s%d" % (w, nem, n, seed)
    args = [os.path.join(HERE, "run"), w, "--nemesis", nem, "--nodes", str(n), "--time", str(a.time),
            "--rate", str(a.rate), "--concurrency", str(a.concurrency), "--seed", str(seed),
            "--store", a.store, "--name", name]
    t0 = time.monotonic()
    subprocess.run(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=900)
    with open(os.path.join(a.store, name, "verdict.json")) as f:
        v = json.load(f)
    v["_dir"] = name
    v["_wall"] = time.monotonic() - t0
    return v


def fmt(x):
    return "–" if x is None else ("%.2f" % x)


def row(v):
    oc = v.get("op_counts", {})
    chk = v.get("checker", {}) or {}
    anomalies = chk.get("anomaly_types") or []
    if not anomalies and v.get("valid") is False:
        anomalies = [k for k in ("lost", "stale_reads", "bad_reads", "failures", "unexpected")
                     if chk.get(k)]
    av = v.get("availability") or []
    after_start = [x["first_ok_after_start_s"] for x in av if x["first_ok_after_start_s"] is not None]
    after_heal = [x["first_ok_after_heal_s"] for x in av if x["first_ok_after_heal_s"] is not None]
    word = {True: "valid", False: "**INVALID**"}.get(v.get("valid"), "unknown")
    if v.get("error"):
        word += " (error: %s)" % v["error"][:60]
    return "| %s | %s | %d | %s | %d | %d | %d | %d | %s | %s | %s |" % (
        v["workload"], v["nemesis"], v["nodes"], word, sum(oc.values()) - oc.get("invoke", 0),
        oc.get("ok", 0), oc.get("fail", 0), oc.get("info", 0), ", ".join(anomalies) or "none",
        fmt(statistics.median(after_start)) if after_start else "–",
        fmt(statistics.median(after_heal)) if after_heal else "–")


HEAD = ("| workload | nemesis | nodes | verdict | operations | ok | fail | info | anomalies "
        "| median s to a write after a fault began | … after it healed |\n"
        "|---|---|---|---|---|---|---|---|---|---|---|")


def replace(doc, marker, text):
    s = open(doc).read()
    pat = re.compile(r"(<!-- %s:begin -->\n).*?(<!-- %s:end -->)" % (marker, marker), re.S)
    if not pat.search(s):
        raise SystemExit("%s has no %s markers" % (doc, marker))
    s = pat.sub(lambda m: m.group(1) + text + "\n" + m.group(2), s)
    with open(doc, "w") as f:
        f.write(s)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--time", type=float, default=30)
    p.add_argument("--rate", type=float, default=100)
    p.add_argument("--concurrency", type=int, default=6)
    p.add_argument("--workloads", default=",".join(sorted(WORKLOADS)))
    p.add_argument("--nemeses", default=",".join(NEMESES))
    p.add_argument("--nodes", default="3,5")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--store", default=os.path.join(HERE, "store"))
    p.add_argument("--doc", default=os.path.join(os.path.dirname(HERE), "docs", "jepsen.md"))
    p.add_argument("--no-broken", action="store_true")
    p.add_argument("--merge", action="store_true",
                   help="keep the table's rows for combinations not run now")
    a = p.parse_args()
    rows, bad = [], 0
    kept = []
    if a.merge:
        with open(a.doc) as f:
            m = re.search(r"<!-- matrix:begin -->\n(.*?)<!-- matrix:end -->", f.read(), re.S)
        runs = {(w, nem) for w in a.workloads.split(",") for nem in a.nemeses.split(",")}
        nodes = set(a.nodes.split(","))
        for line in (m.group(1) if m else "").splitlines():
            cells = [c.strip() for c in line.strip("|").split("|")]
            if len(cells) == 11 and cells[2].isdigit() and not (
                    (cells[0], cells[1]) in runs and cells[2] in nodes):
                kept.append(line)
    started = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    for n in [int(x) for x in a.nodes.split(",")]:
        for w in a.workloads.split(","):
            for nem in a.nemeses.split(","):
                v = run_one(w, nem, n, a, a.seed)
                bad += v.get("valid") is not True
                rows.append(row(v))
                print(rows[-1], flush=True)
    order = {w: i for i, w in enumerate(sorted(WORKLOADS))}
    norder = {x: i for i, x in enumerate(NEMESES)}

    def key(line):
        c = [x.strip() for x in line.strip("|").split("|")]
        return (int(c[2]), order.get(c[0], 99), norder.get(c[1], 99))
    allrows = sorted(rows + kept, key=key)
    text = ("Last run %s: `/usr/bin/python3 jepsen/matrix.py --time %g --rate %g --concurrency %d "
            "--seed %d%s` (%d runs in the table, %g s of load each in this command's runs).\n\n%s\n%s" % (
                started, a.time, a.rate, a.concurrency, a.seed,
                " --merge --nemeses %s" % a.nemeses if a.merge else "", len(allrows), a.time, HEAD,
                "\n".join(allrows)))
    replace(a.doc, "matrix", text)
    if not a.no_broken:
        brows = []
        for bug in sorted(broken.BROKEN):
            d, v = broken.run(bug, max(a.time, 20), a.store, a.seed)
            brows.append("| `BALLOT_JEPSEN_BREAK=%s` | %s | %s | %s | `%s` |" % (
                bug, v["workload"], v["nemesis"],
                "caught (INVALID)" if v.get("valid") is False else "**not caught**",
                os.path.basename(d)))
            print(brows[-1], flush=True)
        replace(a.doc, "broken", "| bug | workload | nemesis | verdict | run |\n|---|---|---|---|---|\n"
                + "\n".join(brows))
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
