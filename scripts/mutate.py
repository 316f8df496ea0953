#!/usr/bin/env python3
"""Removes one safety rule at a time from raft/ and shows what catches it.

For each mutant below the script edits one file of the core, rebuilds the
unit tests and the simulator in build-mutate/, runs the raft unit tests and
a batch of simulator seeds, records what failed, and restores the file. A
mutant that nothing catches is a hole in the tests. The table it prints is
the one in docs/raft.md.

Usage: python3 scripts/mutate.py [--seeds N] [name ...]
"""
import argparse
import os
import re
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BUILD = os.path.join(ROOT, "build-mutate")

MUTANTS = [
    ("vote-for-stale-log",
     "voting for a candidate whose log is behind (§5.4.1)",
     "raft/election.c",
     "    return last_term > my_term ||\n"
     "           (last_term == my_term && last_index >= log_last_index(&node->log));",
     "    (void)last_term;\n    (void)last_index;\n    (void)my_term;\n"
     "    return true;"),
    ("vote-twice",
     "voting twice in one term (§5.2)",
     "raft/election.c",
     "    bool can_vote = node->vote == m->from ||",
     "    bool can_vote = true ||"),
    ("commit-previous-term-by-count",
     "committing a previous-term entry by counting replicas (Figure 8)",
     "raft/replication.c",
     "    if (log_term_at(&node->log, candidate) != node->term) {\n"
     "        return false;\n    }",
     ""),
    ("keep-conflicting-suffix",
     "not truncating a conflicting suffix (§5.3)",
     "raft/replication.c",
     "        if (e->index > log_last_index(&node->log) ||\n"
     "            log_term_at(&node->log, e->index) != e->term) {\n"
     "            break;\n        }",
     "        if (e->index > log_last_index(&node->log)) {\n"
     "            break;\n        }"),
    ("read-before-term-commit",
     "serving ReadIndex before the term's first commit (§6.4)",
     "raft/read.c",
     "static bool committed_in_term(const struct raft_node *node)\n{\n"
     "    return log_term_at(&node->log, node->commit) == node->term;",
     "static bool committed_in_term(const struct raft_node *node)\n{\n"
     "    return node != NULL;"),
    ("learner-vote-counts",
     "letting a learner's vote count (§4.2.1)",
     "raft/election.c",
     "        if (!conf_is_voter(conf, node->votes_from[i])) {\n"
     "            continue;\n        }",
     "        if (raft_conf_get(conf, node->votes_from[i]) == NULL) {\n"
     "            continue;\n        }"),
    ("ack-before-persist",
     "acknowledging appends before they are durable",
     "raft/node.c",
     "    if (early) {",
     "    early = early || msg->type == RAFT_MSG_APPEND_RESP ||\n"
     "            msg->type == RAFT_MSG_VOTE_RESP;\n    if (early) {"),
    ("commit-beyond-last-new-entry",
     "advancing a follower's commit past the last new entry (Figure 2)",
     "raft/replication.c",
     "    raft_index c = a->commit < last_new ? a->commit : last_new;",
     "    raft_index c = a->commit < log_last_index(&node->log)\n"
     "                       ? a->commit : log_last_index(&node->log);"),
]


def run(cmd, timeout=1800):
    p = subprocess.run(cmd, cwd=ROOT, stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, text=True, timeout=timeout)
    return p.returncode, p.stdout


def build():
    rc, out = run(["cmake", "-S", ".", "-B", BUILD, "-DBALLOT_AREAS=raft;sim",
                   "-DCMAKE_BUILD_TYPE=RelWithDebInfo"])
    if rc != 0:
        return rc, out
    return run(["cmake", "--build", BUILD, "-j2", "--target", "test_raft",
                "sim"])


def catchers(seeds):
    caught = []
    rc, out = run([os.path.join(BUILD, "tests/raft/test_raft")])
    if rc != 0:
        names = sorted(set(re.findall(r":F:\w+:(test_\w+):", out) +
                           re.findall(r":E:\w+:(test_\w+):", out)))
        caught.append("unit: " + (", ".join(names) or "crash"))
    rc, out = run([os.path.join(BUILD, "tests/sim/sim"), "--seeds", str(seeds),
                   "--from", "1"])
    if rc != 0:
        m = re.search(r"--seed (\d+)", out)
        inv = re.search(r"(?i)violat\w*[: ]+([^\n]+)", out)
        caught.append("sim: seed %s%s" % (m.group(1) if m else "?",
                                          (" (" + inv.group(1).strip()[:70] + ")")
                                          if inv else ""))
    return caught


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", type=int, default=300)
    ap.add_argument("names", nargs="*")
    args = ap.parse_args()
    rows = []
    for name, rule, path, old, new in MUTANTS:
        if args.names and name not in args.names:
            continue
        full = os.path.join(ROOT, path)
        original = open(full).read()
        if old not in original:
            rows.append((rule, "MUTANT DOES NOT APPLY: update scripts/mutate.py"))
            continue
        try:
            open(full, "w").write(original.replace(old, new, 1))
            rc, out = build()
            if rc != 0:
                rows.append((rule, "mutant does not compile:\n" + out[-500:]))
                continue
            found = catchers(args.seeds)
            rows.append((rule, "; ".join(found) if found else "NOT CAUGHT"))
        finally:
            open(full, "w").write(original)
        print("%-60s %s" % (rule, rows[-1][1]), flush=True)
    print("\n| rule removed | caught by |\n|---|---|")
    for rule, what in rows:
        print("| %s | %s |" % (rule, what))
    build()
    return 1 if any("NOT CAUGHT" in w or "DOES NOT" in w for _, w in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
