"""One test run: a fresh cluster, concurrent clients, a nemesis, final
reads, the check, and the result folder.

Whatever happens (an error, Ctrl-C, SIGTERM, SIGHUP), the finally clause
heals the network, stops every node it started by pid and removes the
run's iptables chain.
"""
import argparse
import json
import os
import random
import shutil
import signal
import sys
import threading
import time

from . import cluster as cl
from . import history as hist
from . import nemesis as nem
from . import net as netmod
from . import report
from .client import ClusterClient, Failed, Unknown
from .workloads import WORKLOADS


class Interrupted(Exception):
    pass


def on_signal(signum, frame):
    raise Interrupted("signal %d" % signum)


def parse(argv):
    p = argparse.ArgumentParser(prog="jepsen/run", description=__doc__)
    p.add_argument("workload", choices=sorted(WORKLOADS))
    p.add_argument("--nemesis", default="none",
                   help="comma-separated: none, kill, pause, partition, mixed, or single "
                        "faults (%s)" % ", ".join(sum(nem.FAULTS.values(), [])))
    p.add_argument("--nodes", type=int, default=3, choices=[3, 5])
    p.add_argument("--time", type=float, default=30, help="seconds of load")
    p.add_argument("--rate", type=float, default=100, help="operations per second, all clients")
    p.add_argument("--concurrency", type=int, default=6)
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--quiet", type=float, default=3.0, help="seconds between faults")
    p.add_argument("--fault", type=float, default=5.0, help="seconds each fault lasts")
    p.add_argument("--recover", type=float, default=3.0, help="seconds of quiet after healing")
    p.add_argument("--via", default="mixed", choices=["mixed", "multi", "watch", "btxn"],
                   help="append: transactions as MULTI/EXEC, WATCH + MULTI/EXEC, BTXN, or all")
    p.add_argument("--ballotd", default=None, help="the ballotd binary (default: $BALLOTD or build/net/ballotd)")
    p.add_argument("--node-arg", action="append", default=[], help="an extra ballotd argument (repeat)")
    p.add_argument("--node-env", action="append", default=[], help="VAR=VALUE in the nodes' environment")
    p.add_argument("--store", default=os.environ.get("BALLOT_JEPSEN_STORE",
                                                     os.path.join(cl.repo_root(), "jepsen", "store")))
    p.add_argument("--name", default=None, help="the run folder's name")
    p.add_argument("--keep-data", action="store_true", help="keep the nodes' data directories")
    p.add_argument("--no-report", action="store_true")
    return p.parse_args(argv)


def run(argv):
    a = parse(argv)
    if a.seed is None:
        a.seed = random.SystemRandom().randrange(1, 2**31)
    faults = nem.expand(a.nemesis.split(","))
    name = a.name or "%s-%s-%dn-%s-s%d" % (a.workload, a.nemesis.replace(",", "+"), a.nodes,
                                           time.strftime("%Y%m%dT%H%M%S"), a.seed)
    run_dir = os.path.join(a.store, name)
    # A run reusing a name starts from nothing: no old WAL (lazyfs keeps
    # it beside the data directory), no old logs.
    shutil.rmtree(run_dir, ignore_errors=True)
    os.makedirs(run_dir, exist_ok=True)
    old = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)}
    slot = net = c = nemesis = None
    verdict = {"workload": a.workload, "nemesis": a.nemesis, "faults": faults, "nodes": a.nodes,
               "time_s": a.time, "rate": a.rate, "concurrency": a.concurrency, "seed": a.seed,
               "command": "jepsen/run " + " ".join(argv), "valid": "unknown",
               "keep_data": a.keep_data}
    h = hist.History()
    stop = threading.Event()
    workers = []
    try:
        slot = cl.Slot()
        verdict["addresses"] = slot.cidr
        net = netmod.Net(slot)
        env = dict(kv.split("=", 1) for kv in a.node_env)
        c = cl.Cluster(slot, a.nodes, run_dir, ballotd=a.ballotd,
                       node_args=nem.node_args_for(faults) + a.node_arg, env=env,
                       faketime=any(f.startswith("clock-") for f in faults),
                       disk_mb=256 if any(f.startswith("disk-") for f in faults) else None,
                       lazyfs=cl.default_lazyfs() if any(f.startswith("lose-unsynced-") or f == "disk-eio"
                                                        for f in faults)
                       else None)
        verdict["ballotd"] = c.ballotd
        c.start()
        if c.wait_leader(30) is None:
            raise RuntimeError("no leader within 30 s of starting the cluster")
        w = WORKLOADS[a.workload]({"via": a.via})
        w.setup(ClusterClient(c, c.nodes[0], timeout=2.0))
        rng = random.Random(a.seed)
        nemesis = nem.Nemesis(c, net, h, random.Random(rng.random()), faults,
                              os.path.join(run_dir, "nemesis.log"), a.quiet, a.fault)
        end = time.monotonic() + a.time

        def worker(wid):
            wrng = random.Random("%d-%d" % (a.seed, wid))
            state = w.new_worker(wid, wrng)
            client = ClusterClient(c, c.nodes[wid % a.nodes], timeout=1.0)
            proc = wid
            gap = a.concurrency / a.rate
            while not stop.is_set() and time.monotonic() < end:
                stop.wait(wrng.expovariate(1 / gap) if gap > 0 else 0)
                if stop.is_set() or time.monotonic() >= end:
                    break
                f, value = w.gen(state)
                proc = do_op(h, w, client, state, proc, f, value, a.concurrency)
            client.close()

        nemesis.start()
        for i in range(a.concurrency):
            t = threading.Thread(target=worker, args=(i,), daemon=True)
            t.start()
            workers.append(t)
        for t in workers:
            while t.is_alive():
                t.join(0.2)
        nemesis.stop()
        verdict["nemesis_intervals"] = nemesis.intervals
        # Recovery: the cluster healed; wait for a leader, then a quiet spell.
        t0 = time.monotonic()
        leader = c.wait_leader(30)
        verdict["recovery_leader_s"] = round(time.monotonic() - t0, 2) if leader else None
        time.sleep(a.recover)
        fc = ClusterClient(c, leader or c.nodes[0], timeout=2.0)
        fstate = w.new_worker(10_000, random.Random(a.seed))
        for f, value in w.final_ops():
            do_op(h, w, fc, fstate, 10_000, f, value, 0, timeout=15.0, final=True)
        fc.close()
    except Interrupted as e:
        verdict["error"] = "interrupted by %s" % e
    except Exception as e:  # noqa: the verdict records why the run failed
        import traceback
        verdict["error"] = "%s: %s" % (type(e).__name__, e)
        traceback.print_exc()
    finally:
        stop.set()
        for t in workers:
            t.join(5)
        cleanup(verdict, nemesis, c, net, slot)
        for s, hnd in old.items():
            signal.signal(s, hnd)
    ops = h.ops
    hist.write_jsonl(ops, os.path.join(run_dir, "history.jsonl"))
    hist.write_edn(ops, os.path.join(run_dir, "history.edn"))
    counts = {}
    for op in ops:
        if op["process"] != "nemesis":
            counts[op["type"]] = counts.get(op["type"], 0) + 1
    verdict["op_counts"] = counts
    if "error" not in verdict:
        try:
            t0 = time.monotonic()
            res = w.check(ops)
            verdict["check_s"] = round(time.monotonic() - t0, 2)
            verdict["checker"] = res
            verdict["valid"] = res["valid"]
        except Exception as e:  # noqa
            import traceback
            traceback.print_exc()
            verdict["error"] = "checker: %s" % e
    if verdict.get("node_exit_codes") and any(
            x not in (0, None) for x in verdict["node_exit_codes"].values()) and verdict["valid"] is True:
        verdict["valid"] = False
        verdict["node_failure"] = "a node exited with an error at the graceful stop"
    with open(os.path.join(run_dir, "verdict.json"), "w") as f:
        json.dump(verdict, f, indent=1, default=str)
    if not a.no_report:
        try:
            report.write_run(run_dir)
            report.write_index(a.store)
        except Exception as e:  # noqa: a report that fails leaves the verdict
            print("report: %s" % e, file=sys.stderr)
    print("%s: %s (%s)" % (name, {True: "valid", False: "INVALID"}.get(verdict["valid"], "unknown"),
                           run_dir))
    if verdict.get("error"):
        print("error: %s" % verdict["error"], file=sys.stderr)
    return 0 if verdict["valid"] is True else (1 if verdict["valid"] is False else 2)


def do_op(h, w, client, state, proc, f, value, concurrency, timeout=None, final=False):
    extra = {"final": True} if final else {}
    h.add(type="invoke", f=f, value=value, process=proc, **extra)
    deadline = time.monotonic() + (timeout or w.op_timeout)
    try:
        out = w.invoke(client, state, f, value, deadline)
        h.add(type="ok", f=f, value=out, process=proc, **extra)
    except Failed as e:
        h.add(type="fail", f=f, value=value, process=proc, error=str(e)[:200], **extra)
    except Unknown as e:
        if f in w.read_fs:
            h.add(type="fail", f=f, value=value, process=proc, error=str(e)[:200], **extra)
        else:
            h.add(type="info", f=f, value=value, process=proc, error=str(e)[:200], **extra)
            client.conn.close()
            return proc + max(concurrency, 1)
    return proc


def cleanup(verdict, nemesis, c, net, slot):
    """Heals, stops every node by pid, removes every rule; safe to call
    on a half-built run."""
    # Signals now would interrupt the cleanup itself.
    for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(s, signal.SIG_IGN)
    if nemesis is not None:
        try:
            nemesis.stop_ev.set()
            if nemesis.thread is not None:
                nemesis.thread.join(30)
            nemesis.do_heal()
        except Exception as e:  # noqa
            verdict.setdefault("cleanup_errors", []).append("nemesis: %s" % e)
    if net is not None:
        try:
            net.close()
        except Exception as e:  # noqa
            verdict.setdefault("cleanup_errors", []).append("net: %s" % e)
    if c is not None:
        for n in c.nodes:
            n.resume()
        verdict["node_exit_codes"] = c.stop()
        if not verdict.get("keep_data"):
            for n in c.nodes:
                shutil.rmtree(n.data, ignore_errors=True)
                shutil.rmtree(os.path.join(n.dir, "wal-backing"), ignore_errors=True)
    if slot is not None:
        slot.release()


def main():
    sys.exit(run(sys.argv[1:]))
