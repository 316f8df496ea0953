"""Histories in Jepsen's shape.

An operation is a dict: type ("invoke", "ok", "fail", "info"), f, value,
process (an int, or "nemesis"), time (ns since the run began) and index.
A process whose operation ended "info" (outcome unknown) never issues
another: the worker continues as process + concurrency, as Jepsen does,
so every process is sequential. Written as JSON lines (history.jsonl) and
as EDN (history.edn) so that Knossos or Elle can re-check it elsewhere.
"""
import json
import threading
import time


class History:
    def __init__(self):
        self.ops = []
        self.lock = threading.Lock()
        self.t0 = time.monotonic_ns()

    def now(self):
        return time.monotonic_ns() - self.t0

    def add(self, **op):
        with self.lock:
            op.setdefault("time", self.now())
            op["index"] = len(self.ops)
            self.ops.append(op)
            return op


def pairs(ops):
    """Yields (invoke, completion or None) for every client operation."""
    open_ = {}
    out = []
    for op in ops:
        p = op["process"]
        if p == "nemesis":
            continue
        if op["type"] == "invoke":
            open_[p] = len(out)
            out.append([op, None])
        else:
            i = open_.pop(p, None)
            if i is not None:
                out[i][1] = op
    return [tuple(x) for x in out]


def write_jsonl(ops, path):
    with open(path, "w") as f:
        for op in ops:
            f.write(json.dumps(op, sort_keys=True) + "\n")


def read_jsonl(path):
    with open(path) as f:
        return [json.loads(l) for l in f if l.strip()]


def edn(v):
    if v is None:
        return "nil"
    if v is True:
        return "true"
    if v is False:
        return "false"
    if isinstance(v, (int, float)):
        return repr(v)
    if isinstance(v, str):
        return json.dumps(v)
    if isinstance(v, (list, tuple)):
        return "[" + " ".join(edn(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{" + ", ".join("%s %s" % (edn(k), edn(x)) for k, x in v.items()) + "}"
    if isinstance(v, set):
        return "#{" + " ".join(edn(x) for x in sorted(v, key=repr)) + "}"
    return json.dumps(str(v))


KEYWORD_FIELDS = ("type", "f")


def edn_op(op):
    parts = []
    for k in ("index", "time", "type", "process", "f", "value", "error"):
        if k not in op:
            continue
        v = op[k]
        if k in KEYWORD_FIELDS or (k == "process" and v == "nemesis"):
            s = ":" + str(v)
        elif k == "value" and op.get("f") == "txn":
            # Elle's micro-ops: [:append k v] / [:r k list]
            s = "[" + " ".join("[:%s %s %s]" % (m[0], edn(m[1]), edn(m[2])) for m in v) + "]" if v else "nil"
        else:
            s = edn(v)
        parts.append(":%s %s" % (k, s))
    return "{" + ", ".join(parts) + "}"


def write_edn(ops, path):
    with open(path, "w") as f:
        for op in ops:
            f.write(edn_op(op) + "\n")
