"""The soak run of scripts/soak.sh: a 3-node ballot cluster under its
maximum sustained write load for a given time, sampled every interval,
ending with a verdict (docs/performance.md, "Soak").

Load, all at once:
  * `ballot bench mixed` in back-to-back chunks of one interval each
    (--clients clients, half reads, half overwrites and new keys over a
    key space of --key-space keys, 200,000 by default): the throughput and p50/p99 of each chunk are
    the interval's figures;
  * a checker thread writing unique keys `soak:<n>` and deleting every
    third one after it was acknowledged, and reading some back: every
    acknowledged write and delete is remembered for the final check.

Every interval, per node: RSS (/proc/PID/status), the data directory's
and the WAL's size on disk (allocated blocks), and from BSTATUS the
revision, history records, compactions, compaction point, live store
bytes and whether it is over its quota. A CSV row per node and interval,
and a PNG plot (python3-matplotlib) at the end.

Verdict: no node halted (every process alive at the end), memory and
disk bounded (the maximum of the last third of the run is at most 1.25x
the maximum of the middle third plus a slack; the bounds are printed),
and every acknowledged write of the checker present (every acknowledged
delete absent) in a final linearizable read. With --ci, also that the
store went over its quota and took writes again afterwards (the full ->
compact -> write again path). Exit code 0 when the verdict passes.

Every process started here is stopped by pid, and the work directory is
removed unless --keep.
"""

import argparse
import csv
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

MIB = 1 << 20


# ---- a minimal RESP client (no dependency beyond the standard library) --

class Resp:
    def __init__(self, port, timeout=5.0):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout)
        self.sock.settimeout(timeout)
        self.buf = b""

    def close(self):
        self.sock.close()

    def _line(self):
        while b"\r\n" not in self.buf:
            d = self.sock.recv(65536)
            if not d:
                raise ConnectionError("closed")
            self.buf += d
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def _exact(self, n):
        while len(self.buf) < n + 2:
            d = self.sock.recv(65536)
            if not d:
                raise ConnectionError("closed")
            self.buf += d
        data, self.buf = self.buf[:n], self.buf[n + 2:]
        return data

    def _reply(self):
        line = self._line()
        kind, rest = line[:1], line[1:]
        if kind == b"+":
            return rest.decode()
        if kind == b"-":
            return RuntimeError(rest.decode())
        if kind == b":":
            return int(rest)
        if kind == b"$":
            n = int(rest)
            return None if n < 0 else self._exact(n)
        if kind == b"*":
            n = int(rest)
            return None if n < 0 else [self._reply() for _ in range(n)]
        raise ValueError("bad reply %r" % line)

    def call(self, *args):
        out = b"*%d\r\n" % len(args)
        for a in args:
            a = a if isinstance(a, bytes) else str(a).encode()
            out += b"$%d\r\n%s\r\n" % (len(a), a)
        self.sock.sendall(out)
        return self._reply()


def status(port):
    try:
        c = Resp(port, 3.0)
        r = c.call("BSTATUS")
        c.close()
    except (OSError, ValueError, ConnectionError):
        return None
    if not isinstance(r, list):
        return None
    d = {}
    for i in range(0, len(r) - 1, 2):
        k = r[i].decode() if isinstance(r[i], bytes) else r[i]
        d[k] = r[i + 1]
    return d


def disk_bytes(path):
    total = 0
    for root, _, files in os.walk(path):
        for f in files:
            try:
                total += os.lstat(os.path.join(root, f)).st_blocks * 512
            except OSError:
                pass
    return total


def rss_bytes(pid):
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def port_free(port):
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        s.bind(("127.0.0.1", port))
        return True
    except OSError:
        return False
    finally:
        s.close()


def pick_ports():
    rnd = random.Random(os.getpid() ^ int(time.time()))
    for _ in range(200):
        base = rnd.randrange(30000, 60000, 16)
        if all(port_free(base + i) for i in range(9)):
            return base
    raise SystemExit("soak: no free ports")


# ---- the cluster ----------------------------------------------------------

class Cluster:
    def __init__(self, args, work):
        self.args = args
        self.work = work
        self.base = pick_ports()
        self.ports = [self.base + 3 * i for i in range(3)]
        self.procs = []
        self.logs = []

    def start(self):
        # Peers authenticate with a shared secret (docs/security.md).
        secret = os.path.join(self.work, "cluster.secret")
        subprocess.run([self.args.ballotd, "secret", secret], check=True,
                       stdout=subprocess.DEVNULL)
        members = []
        for i, p in enumerate(self.ports):
            members += ["--member", "%d=127.0.0.1:%d:%d" % (i + 1, p, p + 1)]
        # The nodes' shared cluster secret (docs/security.md), owner-only.
        secret = os.path.join(self.work, "cluster.secret")
        if not os.path.exists(secret):
            fd = os.open(secret, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as f:
                f.write(os.urandom(32).hex() + "\n")
        members += ["--cluster_secret_file", secret]
        for i, p in enumerate(self.ports):
            cmd = [self.args.ballotd, "--id", str(i + 1),
                   "--data", os.path.join(self.work, "n%d" % (i + 1)),
                   "--metrics_port", str(p + 2), "--bootstrap",
                   "--cluster_secret_file", secret] + members
            cmd += self.args.node_args
            log = open(os.path.join(self.work, "n%d.log" % (i + 1)), "w")
            self.logs.append(log)
            self.procs.append(subprocess.Popen(cmd, stdout=log,
                                               stderr=subprocess.STDOUT))
        end = time.time() + 30
        while time.time() < end:
            if self.leader() is not None:
                return
            time.sleep(0.1)
        raise SystemExit("soak: no leader after 30 s")

    def leader(self):
        for p in self.ports:
            s = status(p)
            if s is not None and s.get("role") == b"leader":
                return p
        return None

    def stop(self):
        for p in self.procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in self.procs:
            try:
                p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        for log in self.logs:
            log.close()


# ---- load -------------------------------------------------------------------

class Bench(threading.Thread):
    """ballot bench mixed, one interval per run; keeps each run's JSON."""

    def __init__(self, args, cluster, stop):
        super().__init__(daemon=True)
        self.args, self.cluster, self.stop = args, cluster, stop
        self.results = []  # (end time, json)
        self.proc = None

    def run(self):
        eps = ",".join("127.0.0.1:%d" % p for p in self.cluster.ports)
        while not self.stop.is_set():
            cmd = [self.args.ballot, "--endpoints", eps, "--json", "bench",
                   "mixed", "--ratio", "0.5", "--clients",
                   str(self.args.clients), "--conns",
                   str(max(1, self.args.clients // 8)), "--duration",
                   str(self.args.interval), "--key-space",
                   str(self.args.key_space),
                   "--value-size", str(self.args.value_size),
                   "--target-leader"]
            try:
                self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE,
                                             stderr=subprocess.DEVNULL)
                out, _ = self.proc.communicate(
                    timeout=self.args.interval * 3 + 30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                continue
            line = out.decode(errors="replace").split("\n", 1)[0]
            try:
                self.results.append((time.time(), json.loads(line)))
            except ValueError:
                time.sleep(0.5)

    def kill(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()


class Checker(threading.Thread):
    """Unique keys written, every third deleted once acknowledged."""

    def __init__(self, cluster, stop):
        super().__init__(daemon=True)
        self.cluster, self.stop = cluster, stop
        self.acked = {}      # key -> value of an acknowledged SET
        self.deleted = set()  # keys whose DEL was acknowledged
        self.unknown = set()  # outcome unknown: not checked
        self.refused = 0      # NOSPACE
        self.writes_after_refusal = 0
        self.n = 0
        self.errors = {}

    def _conn(self):
        p = self.cluster.leader()
        return Resp(p, 5.0) if p is not None else None

    def run(self):
        c = None
        while not self.stop.is_set():
            try:
                if c is None:
                    c = self._conn()
                    if c is None:
                        time.sleep(0.2)
                        continue
                key = "soak:%d" % self.n
                val = "v%d-%s" % (self.n, "x" * 40)
                r = c.call("SET", key, val)
                self.n += 1
                if r == "OK":
                    self.acked[key] = val.encode()
                    if self.refused > 0:
                        self.writes_after_refusal += 1
                    if self.n % 3 == 0:
                        d = c.call("DEL", key)
                        if d == 1:
                            self.deleted.add(key)
                        elif isinstance(d, RuntimeError):
                            self.unknown.add(key)
                    if self.n % 7 == 0:
                        c.call("GET", key)
                elif isinstance(r, RuntimeError):
                    kind = str(r).split(" ", 1)[0]
                    self.errors[kind] = self.errors.get(kind, 0) + 1
                    if kind == "NOSPACE":
                        self.refused += 1
                        time.sleep(0.05)
                    elif kind == "NOTLEADER":
                        c.close()
                        c = None
                    else:
                        self.unknown.add(key)
            except (OSError, ConnectionError, ValueError):
                self.unknown.add("soak:%d" % max(0, self.n - 1))
                c = None
                time.sleep(0.2)

    def check(self, port):
        """Returns (checked, lost): acknowledged writes missing or wrong,
        acknowledged deletes still there. GETs are pipelined 500 at a
        time (each is a linearizable read)."""
        c = Resp(port, 30.0)
        lost = []
        keys = [k for k in self.acked if k not in self.unknown]
        for i in range(0, len(keys), 500):
            batch = keys[i:i + 500]
            out = b""
            for key in batch:
                k = key.encode()
                out += b"*2\r\n$3\r\nGET\r\n$%d\r\n%s\r\n" % (len(k), k)
            c.sock.sendall(out)
            for key in batch:
                got = c._reply()
                if key in self.deleted:
                    if got is not None:
                        lost.append("%s: deleted but present" % key)
                elif got != self.acked[key]:
                    lost.append("%s: %r" % (key, got))
        c.close()
        return len(keys), lost


# ---- sampling, plot, verdict ------------------------------------------------

FIELDS = ["t_s", "node", "role", "throughput", "p50_ms", "p99_ms", "failed",
          "rss_mib", "data_mib", "wal_mib", "snap_mib", "store_live_mib",
          "store_file_mib", "revision", "history_events", "compactions",
          "compact_revision", "over_quota", "map_grows"]


def sample(cluster, t0, bench):
    rows = []
    last = bench.results[-1][1] if bench.results else None
    lat = last["latency_ms"] if last else {}
    for i, p in enumerate(cluster.ports):
        s = status(p) or {}
        d = os.path.join(cluster.work, "n%d" % (i + 1))
        db = s.get("db_bytes", 0) or 0
        free = s.get("db_free_bytes", 0) or 0
        role = s.get("role", b"down")
        rows.append({
            "t_s": round(time.time() - t0, 1), "node": i + 1,
            "role": role.decode() if isinstance(role, bytes) else role,
            "throughput": round(last["throughput"]) if last else 0,
            "p50_ms": lat.get("p50", 0), "p99_ms": lat.get("p99", 0),
            "failed": last["failed"] if last else 0,
            "rss_mib": round(rss_bytes(cluster.procs[i].pid) / MIB, 1),
            "data_mib": round(disk_bytes(d) / MIB, 1),
            "wal_mib": round(disk_bytes(os.path.join(d, "wal")) / MIB, 1),
            "snap_mib": round(disk_bytes(os.path.join(d, "snap")) / MIB, 1),
            "store_live_mib": round((db - free) / MIB, 2),
            "store_file_mib": round(db / MIB, 2),
            "revision": s.get("revision", 0),
            "history_events": s.get("history_events", 0),
            "compactions": s.get("compactions", 0),
            "compact_revision": s.get("compact_revision", 0),
            "over_quota": s.get("over_quota", 0),
            "map_grows": s.get("map_grows", 0),
        })
    return rows


def plot(rows, path, title):
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("soak: python3-matplotlib missing, no plot")
        return
    fig, ax = plt.subplots(2, 2, figsize=(13, 8))
    n1 = [r for r in rows if r["node"] == 1]
    t = [r["t_s"] / 60 for r in n1]
    ax[0][0].plot(t, [r["throughput"] for r in n1])
    ax[0][0].set_title("operations/s (bench mixed, half writes)")
    ax[0][1].plot(t, [r["p50_ms"] for r in n1], label="p50")
    ax[0][1].plot(t, [r["p99_ms"] for r in n1], label="p99")
    ax[0][1].set_title("latency (ms)")
    ax[0][1].legend()
    for node in (1, 2, 3):
        rs = [r for r in rows if r["node"] == node]
        tt = [r["t_s"] / 60 for r in rs]
        ax[1][0].plot(tt, [r["rss_mib"] for r in rs], label="n%d RSS" % node)
        ax[1][1].plot(tt, [r["data_mib"] for r in rs],
                      label="n%d data dir" % node)
        ax[1][1].plot(tt, [r["wal_mib"] for r in rs], ":",
                      label="n%d WAL" % node)
    ax[1][1].plot(t, [r["store_live_mib"] for r in n1], "--",
                  label="n1 store live")
    ax[1][0].set_title("RSS (MiB)")
    ax[1][1].set_title("disk (MiB)")
    ax[1][0].legend()
    ax[1][1].legend(fontsize=7)
    for a in ax[1]:
        a.set_xlabel("minutes")
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=90)


def bounded(rows, field, slack):
    """(ok, max of middle third, max of last third)."""
    n1 = sorted({r["t_s"] for r in rows})
    if len(n1) < 3:
        return True, 0, 0
    a, b = n1[len(n1) // 3], n1[2 * len(n1) // 3]
    mid = max(r[field] for r in rows if a <= r["t_s"] < b)
    last = max(r[field] for r in rows if r["t_s"] >= b)
    return last <= mid * 1.25 + slack, mid, last


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--duration", type=float, default=1800)
    ap.add_argument("--interval", type=float, default=10)
    ap.add_argument("--clients", type=int, default=64)
    ap.add_argument("--value-size", type=int, default=100)
    ap.add_argument("--key-space", type=int, default=0,
                    help="keys of the bench (default 200,000; 10,000 with "
                    "--ci, so the live keys fit the small quota)")
    ap.add_argument("--build", default="build")
    ap.add_argument("--out", default="out/soak")
    ap.add_argument("--ci", action="store_true",
                    help="a small map and quota, so the store fills, "
                    "compacts and takes writes again")
    ap.add_argument("--sanitized", action="store_true",
                    help="ASan build: memory slack for its quarantine")
    ap.add_argument("--keep", action="store_true")
    args, extra = ap.parse_known_args()
    args.ballotd = os.path.join(args.build, "net", "ballotd")
    args.ballot = os.path.join(args.build, "cli", "ballot")
    args.node_args = extra
    if args.key_space == 0:
        args.key_space = 10000 if args.ci else 200000
    if args.ci:
        args.node_args += ["--kv_map_size", str(16 * MIB), "--quota_bytes",
                           str(4 * MIB)]
    os.makedirs(args.out, exist_ok=True)
    work = tempfile.mkdtemp(prefix="ballot-soak-")
    cluster = Cluster(args, work)
    stop = threading.Event()
    bench = Bench(args, cluster, stop)
    checker = Checker(cluster, stop)
    rows = []
    verdict_ok = False
    try:
        cluster.start()
        t0 = time.time()
        bench.start()
        checker.start()
        csv_path = os.path.join(args.out, "soak.csv")
        with open(csv_path, "w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=FIELDS)
            w.writeheader()
            next_t = t0 + args.interval
            while time.time() < t0 + args.duration:
                time.sleep(max(0.0, next_t - time.time()))
                next_t += args.interval
                new = sample(cluster, t0, bench)
                rows += new
                w.writerows(new)
                f.flush()
                r = new[0]
                print("%6.0fs %7d op/s p50 %6.2f p99 %7.2f ms | rss %s MiB "
                      "| data %s MiB | wal %s | hist %s | compactions %s%s"
                      % (r["t_s"], r["throughput"], r["p50_ms"], r["p99_ms"],
                         "/".join(str(x["rss_mib"]) for x in new),
                         "/".join(str(x["data_mib"]) for x in new),
                         r["wal_mib"], r["history_events"], r["compactions"],
                         " OVER QUOTA" if any(x["over_quota"] for x in new)
                         else ""), flush=True)
        stop.set()
        bench.kill()
        bench.join(timeout=60)
        checker.join(timeout=30)
        halted = [i + 1 for i, p in enumerate(cluster.procs)
                  if p.poll() is not None]
        leader = None
        end = time.time() + 30
        while leader is None and time.time() < end:
            leader = cluster.leader()
            time.sleep(0.2)
        checked, lost = (checker.check(leader) if leader is not None
                         else (0, ["no leader for the final check"]))
        mem_slack = 256 if args.sanitized else 32
        mem_ok, mem_mid, mem_last = bounded(rows, "rss_mib", mem_slack)
        disk_ok, disk_mid, disk_last = bounded(rows, "data_mib", 64)
        reasons = []
        if halted:
            reasons.append("node(s) %s halted" % halted)
        if not mem_ok:
            reasons.append("RSS grew: %s -> %s MiB" % (mem_mid, mem_last))
        if not disk_ok:
            reasons.append("disk grew: %s -> %s MiB" % (disk_mid, disk_last))
        if lost:
            reasons.append("%d acknowledged writes lost: %s"
                           % (len(lost), "; ".join(lost[:5])))
        if checked == 0:
            reasons.append("no acknowledged write to check")
        compactions = max((r["compactions"] for r in rows), default=0)
        if args.ci and (checker.refused == 0 and
                        not any(r["over_quota"] for r in rows)):
            reasons.append("the store never reached its quota")
        if args.ci and compactions == 0:
            reasons.append("no compaction ran")
        if args.ci and checker.refused > 0 and \
                checker.writes_after_refusal == 0:
            reasons.append("no write taken after the quota refused one")
        plot(rows, os.path.join(args.out, "soak.png"),
             "ballot soak: 3 nodes, %d s, %d clients%s"
             % (args.duration, args.clients, " (CI: small map and quota)"
                if args.ci else ""))
        thr = [r["throughput"] for r in rows if r["node"] == 1]
        print("checker: %d writes, %d acknowledged, %d deletes, %d refused "
              "(NOSPACE), %d taken after a refusal, errors %s"
              % (checker.n, len(checker.acked), len(checker.deleted),
                 checker.refused, checker.writes_after_refusal,
                 checker.errors))
        print("throughput: mean %.0f op/s; compactions (leader's count) %d; "
              "CSV %s"
              % (sum(thr) / max(1, len(thr)), compactions, csv_path))
        verdict_ok = not reasons
        print("VERDICT: %s: %s; memory bounded (max RSS %.0f MiB, last third "
              "%.0f <= 1.25 x middle third %.0f + %d); disk bounded (max data "
              "dir %.0f MiB, last third %.0f <= 1.25 x %.0f + 64); %d "
              "acknowledged writes checked, %d lost%s"
              % ("PASS" if verdict_ok else "FAIL",
                 "no node halted" if not halted else "a node halted",
                 max(r["rss_mib"] for r in rows), mem_last, mem_mid,
                 mem_slack, max(r["data_mib"] for r in rows), disk_last,
                 disk_mid, checked, len(lost),
                 "" if verdict_ok else " -- " + "; ".join(reasons)))
    finally:
        stop.set()
        bench.kill()
        cluster.stop()
        if args.keep or not verdict_ok:
            print("work directory kept: %s" % work)
        else:
            shutil.rmtree(work, ignore_errors=True)
    return 0 if verdict_ok else 1


if __name__ == "__main__":
    sys.exit(main())
