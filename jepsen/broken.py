"""The deliberately broken builds (docs/jepsen.md) and the run that must
catch each: a workload and nemesis whose checker must say INVALID when
ballotd runs with BALLOT_JEPSEN_BREAK set to the bug.

    /usr/bin/python3 jepsen/broken.py [--time S] [--store DIR] [BUG...]

runs each and exits 0 only if every one was caught (and prints the run
folders).
"""
import argparse
import json
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))

BROKEN = {
    # Reads without ReadIndex: a node cut off from the leader, or one
    # behind it, answers from its own state.
    "stale-reads": ["register", "--nemesis", "partition", "--rate", "100", "--quiet", "1",
                    "--fault", "4"],
    # BREQ request ids ignored: an INCR retried after a timeout or a
    # leader change is applied twice.
    "no-sessions": ["counter", "--nemesis", "kill-leader,partition-leader", "--rate", "150",
                    "--quiet", "1", "--fault", "1.5"],
    # The WAL skips fdatasync: a machine crash of every node (lazyfs drops
    # what was not synced) loses acknowledged adds.
    "no-fdatasync": ["set", "--nemesis", "lose-unsynced-all", "--rate", "100", "--quiet", "2",
                     "--fault", "2"],
    # The leader counts its own entries before they are durable: it
    # crashes and comes back with lagging followers, without entries that
    # were acknowledged.
    "leader-unsynced": ["set", "--nemesis", "lose-unsynced-stale-quorum", "--rate", "100",
                        "--quiet", "2", "--fault", "4"],
    # Learners vote: a voter removed and added back as a learner, cut off
    # with one voter, elects a second leader with it.
    "learners-vote": ["set", "--nemesis", "member-learners-split", "--nodes", "5",
                      "--rate", "100", "--quiet", "2", "--fault", "5"],
    # EXEC ignores its watched keys: an optimistic transaction commits
    # appends over values it did not read. No fault needed: concurrent
    # transactions on few keys are enough.
    "watch-ignored": ["append", "--via", "watch", "--rate", "300", "--concurrency", "10"],
}


def run(bug, time_s, store, seed, extra=(), report=True):
    name = "broken-%s-s%d" % (bug, seed)
    args = [os.path.join(HERE, "run")] + BROKEN[bug] + [
        "--time", str(time_s), "--seed", str(seed), "--store", store, "--name", name,
        "--node-env", "BALLOT_JEPSEN_BREAK=" + bug] + list(extra)
    if not report:
        args.append("--no-report")  # the plots cost seconds a test does not need
    subprocess.run(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=600)
    with open(os.path.join(store, name, "verdict.json")) as f:
        return os.path.join(store, name), json.load(f)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("bugs", nargs="*", default=sorted(BROKEN))
    p.add_argument("--time", type=float, default=20)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--store", default=os.path.join(HERE, "store"))
    a = p.parse_args()
    missed = 0
    for bug in a.bugs:
        d, v = run(bug, a.time, a.store, a.seed)
        caught = v.get("valid") is False and not v.get("error")
        missed += not caught
        print("%s: %s by %s %s (%s)" % (bug, "caught" if caught else "NOT caught", v["workload"],
                                         v["nemesis"], d))
    sys.exit(1 if missed else 0)


if __name__ == "__main__":
    main()
