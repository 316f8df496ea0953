"""Reports a person can read: per run an HTML page and a markdown summary
(verdict, plots with the faults shaded, availability per fault, the
anomaly), and an index of all runs in the store."""
import html
import json
import os

from .history import pairs, read_jsonl

WRITE_FS = ("write", "cas", "add", "transfer", "txn")


def availability(ops, intervals):
    """For each fault: how long after it began, and after it was healed,
    until the next acknowledged write; and the share of writes that
    succeeded while it lasted."""
    oks = sorted(c["time"] for i, c in pairs(ops) if c and c["type"] == "ok" and i["f"] in WRITE_FS)
    out = []
    import bisect
    for t0, t1, kind in intervals:
        during = [c for i, c in pairs(ops)
                  if c and i["f"] in WRITE_FS and t0 <= i["time"] <= t1]
        ok = sum(1 for c in during if c["type"] == "ok")
        j = bisect.bisect_left(oks, t0)
        k = bisect.bisect_left(oks, t1)
        out.append({"fault": kind, "start_s": round(t0 / 1e9, 2), "length_s": round((t1 - t0) / 1e9, 2),
                    "writes": len(during), "ok_share": round(ok / len(during), 2) if during else None,
                    "first_ok_after_start_s": round((oks[j] - t0) / 1e9, 2) if j < len(oks) else None,
                    "first_ok_after_heal_s": round((oks[k] - t1) / 1e9, 2) if k < len(oks) else None})
    return out


def plots(run_dir, ops, intervals):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    colors = {"ok": "#2a9d4a", "fail": "#d62728", "info": "#ff9f1c"}
    prs = [(i, c) for i, c in pairs(ops) if c]

    def shade(ax):
        for t0, t1, kind in intervals:
            ax.axvspan(t0 / 1e9, t1 / 1e9, color="#999999", alpha=0.2)
            ax.text(t0 / 1e9, 1.0, kind, transform=ax.get_xaxis_transform(), fontsize=6,
                    va="top", rotation=90)
    fig, ax = plt.subplots(figsize=(10, 4))
    for typ, col in colors.items():
        xs = [i["time"] / 1e9 for i, c in prs if c["type"] == typ]
        ys = [max((c["time"] - i["time"]) / 1e6, 0.01) for i, c in prs if c["type"] == typ]
        if xs:
            ax.scatter(xs, ys, s=4, c=col, label=typ)
    ax.set_yscale("log")
    ax.set_xlabel("time (s)")
    ax.set_ylabel("latency (ms)")
    ax.legend(loc="upper right", fontsize=7)
    shade(ax)
    fig.tight_layout()
    fig.savefig(os.path.join(run_dir, "latency.png"), dpi=90)
    plt.close(fig)
    fig, ax = plt.subplots(figsize=(10, 3))
    end = max((c["time"] for _, c in prs), default=0) / 1e9
    nb = max(int(end) + 1, 1)
    for typ, col in colors.items():
        counts = [0] * nb
        for i, c in prs:
            if c["type"] == typ:
                counts[min(int(c["time"] / 1e9), nb - 1)] += 1
        ax.plot(range(nb), counts, color=col, label=typ, drawstyle="steps-post")
    ax.set_xlabel("time (s)")
    ax.set_ylabel("completions / s")
    ax.legend(loc="upper right", fontsize=7)
    shade(ax)
    fig.tight_layout()
    fig.savefig(os.path.join(run_dir, "throughput.png"), dpi=90)
    plt.close(fig)


def verdict_word(v):
    return {True: "valid", False: "INVALID"}.get(v, "unknown")


def write_run(run_dir):
    v = json.load(open(os.path.join(run_dir, "verdict.json")))
    ops = read_jsonl(os.path.join(run_dir, "history.jsonl"))
    intervals = v.get("nemesis_intervals") or []
    avail = availability(ops, intervals)
    v["availability"] = avail
    with open(os.path.join(run_dir, "verdict.json"), "w") as f:
        json.dump(v, f, indent=1, default=str)
    has_plots = True
    try:
        plots(run_dir, ops, intervals)
    except ImportError:
        has_plots = False
    title = "%s, %s, %d nodes, seed %s" % (v["workload"], v["nemesis"], v["nodes"], v["seed"])
    chk = v.get("checker", {})
    md = ["# %s" % title, "", "**Verdict: %s**" % verdict_word(v["valid"]), "",
          "Command: `%s`" % v.get("command", ""), "",
          "Operations: %s" % ", ".join("%s %d" % kv for kv in sorted(v.get("op_counts", {}).items())), ""]
    if v.get("error"):
        md += ["Error: %s" % v["error"], ""]
    if avail:
        md += ["| fault | start (s) | length (s) | writes | ok share | first ok write after start (s) | after heal (s) |",
               "|---|---|---|---|---|---|---|"]
        for a in avail:
            md.append("| %s | %s | %s | %s | %s | %s | %s |" % (
                a["fault"], a["start_s"], a["length_s"], a["writes"], a["ok_share"],
                a["first_ok_after_start_s"], a["first_ok_after_heal_s"]))
        md.append("")
    md += ["## Checker", "", "```", json.dumps(chk, indent=1, default=str)[:20000], "```", ""]
    with open(os.path.join(run_dir, "summary.md"), "w") as f:
        f.write("\n".join(md))
    e = html.escape
    rows = "".join("<tr>%s</tr>" % "".join("<td>%s</td>" % e(str(a[k])) for k in (
        "fault", "start_s", "length_s", "writes", "ok_share", "first_ok_after_start_s",
        "first_ok_after_heal_s")) for a in avail)
    color = {True: "#2a9d4a", False: "#d62728"}.get(v["valid"], "#ff9f1c")
    page = """<!doctype html><html><head><meta charset="utf-8"><title>%s</title>
<style>body{font-family:sans-serif;max-width:1100px;margin:1em auto}td,th{border:1px solid #ccc;padding:2px 6px}
table{border-collapse:collapse}pre{background:#f6f6f6;padding:8px;overflow-x:auto}</style></head><body>
<h1>%s</h1><p style="font-size:150%%;color:%s"><b>%s</b></p>
<p><code>%s</code></p><p>operations: %s</p>%s
%s
<h2>Availability during each fault</h2><table><tr><th>fault</th><th>start (s)</th><th>length (s)</th>
<th>writes</th><th>ok share</th><th>first ok write after start (s)</th><th>after heal (s)</th></tr>%s</table>
<h2>Checker</h2><pre>%s</pre>
<p>Files: <a href="history.jsonl">history.jsonl</a>, <a href="history.edn">history.edn</a>,
<a href="nemesis.log">nemesis.log</a>, <a href="verdict.json">verdict.json</a>, node logs %s</p>
</body></html>""" % (
        e(title), e(title), color, verdict_word(v["valid"]), e(v.get("command", "")),
        e(json.dumps(v.get("op_counts", {}))),
        "<p>error: %s</p>" % e(v["error"]) if v.get("error") else "",
        '<img src="latency.png" width="100%"><img src="throughput.png" width="100%">' if has_plots else "",
        rows, e(json.dumps(chk, indent=1, default=str)[:50000]),
        " ".join('<a href="nodes/n%d/ballotd.log">n%d</a>' % (i, i) for i in range(1, v["nodes"] + 1)))
    with open(os.path.join(run_dir, "index.html"), "w") as f:
        f.write(page)


def write_index(store):
    runs = []
    for d in sorted(os.listdir(store)):
        p = os.path.join(store, d, "verdict.json")
        if os.path.exists(p):
            try:
                runs.append((d, json.load(open(p))))
            except ValueError:
                continue
    e = html.escape
    rows = []
    for d, v in reversed(runs):
        oc = v.get("op_counts", {})
        color = {True: "#2a9d4a", False: "#d62728"}.get(v.get("valid"), "#ff9f1c")
        rows.append('<tr><td><a href="%s/index.html">%s</a></td><td>%s</td><td>%s</td><td>%s</td>'
                    '<td style="color:%s"><b>%s</b></td><td>%s</td><td>%s</td></tr>' % (
                        e(d), e(d), e(v.get("workload", "")), e(v.get("nemesis", "")), v.get("nodes"),
                        color, verdict_word(v.get("valid")), sum(oc.values()) // 2,
                        e(", ".join(v.get("checker", {}).get("anomaly_types", [])) or v.get("error", ""))))
    with open(os.path.join(store, "index.html"), "w") as f:
        f.write("""<!doctype html><html><head><meta charset="utf-8"><title>ballot jepsen runs</title>
<style>body{font-family:sans-serif}td,th{border:1px solid #ccc;padding:2px 6px}table{border-collapse:collapse}</style>
</head><body><h1>ballot jepsen runs</h1><table><tr><th>run</th><th>workload</th><th>nemesis</th><th>nodes</th>
<th>verdict</th><th>operations</th><th>anomalies / error</th></tr>%s</table></body></html>""" % "".join(rows))
