"""Nemeses: faults injected into the running cluster on a schedule.

Each fault has a start and a heal. The schedule alternates quiet periods
and faults, choosing each fault with the run's seeded RNG from the enabled
ones; every start and heal is an operation of process "nemesis" in the
history and a line of nemesis.log, and its interval is kept for the
report.
"""
import json
import os
import threading
import time

FAULTS = {
    "kill": ["kill-one", "kill-leader", "kill-majority", "kill-all"],
    "pause": ["pause-one", "pause-leader"],
    "partition": ["partition-halves", "partition-leader", "partition-ring", "partition-bridge"],
    "network": ["net-loss", "net-delay", "net-duplicate"],
    "clock": ["clock-jump", "clock-strobe"],
    "membership": ["member-remove", "member-remove-leader", "transfer-leader",
                   "member-learners-split"],
    "disk": ["disk-full", "disk-eio"],
    "maintenance": ["snapshot-install", "snapshot-install-restart", "compact-history"],
    "lose-unsynced": ["lose-unsynced-one", "lose-unsynced-leader", "lose-unsynced-majority",
                      "lose-unsynced-all", "lose-unsynced-stale-quorum"],
}


# Nodes of runs with maintenance faults snapshot often and keep a short
# log behind (ballot has no command that takes a snapshot on demand), so
# a follower cut off for a few seconds needs one sent to it.
MAINTENANCE_ARGS = ["--snapshot_every", "300", "--snapshot_trailing", "50"]
# Filler written before a snapshot is sent, so that it takes several 1 MiB
# chunks and a restart can land in the middle of its install.
BALLAST_KEYS, BALLAST_BYTES = 12, 384 << 10


def node_args_for(faults):
    """Extra ballotd flags the enabled faults need."""
    return MAINTENANCE_ARGS if any(f.startswith("snapshot-") for f in faults) else []


# Each network fault's parameters (Net.shape): enough to slow the cluster
# (losses cost TCP retransmissions; a 10-90 ms delay is up to a third of
# the shortest election timeout, 300 ms), not to stop it.
NETEM = {
    "net-loss": {"loss": 0.1},
    "net-delay": {"delay_s": 0.05, "jitter_s": 0.04},
    "net-duplicate": {"duplicate": 0.3},
}


def member_change(cluster, args, done, timeout=30.0):
    """Sends BMEMBER @args to the leader until @done(BMEMBER LIST) holds:
    a change whose outcome was unknown is judged by the configuration."""
    from .client import ClusterClient, Failed, Unknown
    c = ClusterClient(cluster, cluster.leader() or cluster.nodes[0], timeout=2.0)
    end = time.monotonic() + timeout
    last = None
    try:
        while time.monotonic() < end:
            try:
                c.request([("BMEMBER",) + tuple(args)], time.monotonic() + 5)
            except (Failed, Unknown) as e:
                last = str(e)
            try:
                members = c.request([("BMEMBER", "LIST")], time.monotonic() + 3)[0]
                if done({int(m[0]): m[1] for m in members}):
                    return True
            except (Failed, Unknown) as e:
                last = str(e)
            time.sleep(0.2)
    finally:
        c.close()
    raise RuntimeError("BMEMBER %s did not take effect: %s" % (" ".join(map(str, args)), last))


def expand(names):
    out = []
    for n in names:
        n = n.strip()
        if not n or n == "none":
            continue
        if n == "mixed":
            for v in FAULTS.values():
                out += v
        elif n in FAULTS:
            out += FAULTS[n]
        elif any(n in v for v in FAULTS.values()):
            out.append(n)
        else:
            raise ValueError("unknown nemesis %r (known: %s, mixed, or one of %s)" % (
                n, ", ".join(FAULTS), ", ".join(sum(FAULTS.values(), []))))
    return sorted(set(out), key=out.index)


def grudge_isolate(groups, hosts):
    """Nodes in different groups do not hear each other."""
    g = {h: set() for h in hosts}
    for a in groups:
        for b in groups:
            if a is b:
                continue
            for x in a:
                g[x] |= set(b)
    return g


def grudge_for(kind, hosts, rng, leader_host):
    hosts = list(hosts)
    n = len(hosts)
    if kind == "partition-leader":
        lh = leader_host or rng.choice(hosts)
        return grudge_isolate([[lh], [h for h in hosts if h != lh]], hosts)
    if kind == "partition-halves":
        s = hosts[:]
        rng.shuffle(s)
        return grudge_isolate([s[: n // 2], s[n // 2:]], hosts)
    if kind == "partition-bridge":
        s = hosts[:]
        rng.shuffle(s)
        half = n // 2
        a, bridge, b = s[:half], s[half], s[half + 1:]
        g = {h: set() for h in hosts}
        for x in a:
            g[x] |= set(b)
        for x in b:
            g[x] |= set(a)
        del bridge
        return g
    if kind == "partition-ring":
        s = hosts[:]
        rng.shuffle(s)
        g = {h: set() for h in hosts}
        if n < 5:
            # Three nodes: cut one link; every node still sees a majority,
            # not the same one.
            g[s[0]].add(s[1])
            g[s[1]].add(s[0])
            return g
        # Each node hears only its two ring neighbours: a majority of 5,
        # a different one for every node.
        for i, h in enumerate(s):
            near = {s[(i - 1) % n], h, s[(i + 1) % n]}
            g[h] = set(hosts) - near
        return g
    raise ValueError(kind)


class Nemesis:
    def __init__(self, cluster, net, history, rng, faults, log_path,
                 quiet_s=3.0, fault_s=5.0):
        self.cluster, self.net, self.history, self.rng = cluster, net, history, rng
        self.faults = faults
        self.quiet_s, self.fault_s = quiet_s, fault_s
        self.log = open(log_path, "a")
        self.intervals = []  # (start_ns, end_ns, fault)
        self.stop_ev = threading.Event()
        self.thread = None
        self.active = None  # (fault, undo)
        self.lock = threading.Lock()

    def note(self, f, value, type_="info"):
        op = self.history.add(type=type_, f=f, value=value, process="nemesis")
        self.log.write(json.dumps({"time_s": round(op["time"] / 1e9, 3), "f": f, "value": value}) + "\n")
        self.log.flush()
        return op

    def leader_host(self):
        l = self.cluster.leader()
        return l.host if l else None

    def start_fault(self, kind):
        """Starts fault @kind; returns a description and the function that
        heals it."""
        c = self.cluster
        nodes = [n for n in c.nodes]
        if kind == "lose-unsynced-stale-quorum":
            return self.stale_quorum(nodes)
        if kind == "member-learners-split":
            return self.learners_split(nodes)
        if kind.startswith(("kill-", "pause-", "lose-unsynced-")):
            sel = kind.rsplit("-", 1)[1]
            if sel == "leader":
                l = c.leader()
                targets = [l] if l else [self.rng.choice(nodes)]
            elif sel == "one":
                targets = [self.rng.choice(nodes)]
            elif sel == "majority":
                targets = self.rng.sample(nodes, len(nodes) // 2 + 1)
            else:
                targets = nodes
            ids = sorted(n.id for n in targets)
            if kind.startswith("lose-unsynced-"):
                # A machine crash: killed, and what was not synced is gone.
                for n in targets:
                    n.kill()
                for n in targets:
                    n.lose_unsynced()

                def undo():
                    for n in targets:
                        n.start()
                    return {"restarted": ids}
                return {"crashed": ids}, undo
            if kind.startswith("kill-"):
                for n in targets:
                    n.kill()

                def undo():
                    for n in targets:
                        n.start()
                    return {"restarted": ids}
                return {"killed": ids}, undo
            for n in targets:
                n.pause()

            def undo():
                for n in targets:
                    n.resume()
                return {"resumed": ids}
            return {"paused": ids}, undo
        if kind in ("member-remove", "member-remove-leader"):
            # Remove a voter (the leader itself, or any), stop it and wipe
            # its data; the heal starts it empty and adds it back, as a
            # learner and then a voter.
            n = c.leader() if kind == "member-remove-leader" else None
            n = n or self.rng.choice(nodes)
            member_change(c, ("REMOVE", n.id), lambda m: n.id not in m)
            n.kill()
            n.wipe()

            def undo():
                n.start()
                member_change(c, ("ADDLEARNER", n.id), lambda m: n.id in m)
                member_change(c, ("PROMOTE", n.id), lambda m: m.get(n.id) == "voter")
                return {"added_back": n.id}
            return {"removed": n.id}, undo
        if kind == "disk-full":
            # One node's filesystem fills up: its next write or fsync
            # fails, and the node must halt rather than acknowledge.
            n = self.rng.choice(nodes)
            n.fill_disk()

            def undo():
                n.free_disk()
                code = self.restart_halted(n)
                return {"freed": n.id, "had_halted_with": code}
            return {"full": n.id}, undo
        if kind in ("snapshot-install", "snapshot-install-restart"):
            return self.snapshot_install(nodes, kind.endswith("-restart"))
        if kind == "compact-history":
            # The leader drops the change history below a recent revision,
            # through the log (BCOMPACT), while clients read and write.
            from . import resp
            l = c.wait_leader(5)
            if l is None:
                raise RuntimeError("no leader")
            rev = max(1, int((l.info() or {}).get("revision", "1")) - 10)
            conn = resp.Conn(l.host, 27379, timeout=5)
            try:
                r = conn.call("BCOMPACT", rev)
            except (resp.NotSent, resp.Indeterminate) as e:
                r = e
            finally:
                conn.close()
            return {"leader": l.id, "below": rev, "reply": str(r)}, lambda: "done"
        if kind == "disk-eio":
            # One node's disk fails: its next WAL write or fsync returns
            # EIO, and it must halt rather than acknowledge or retry it.
            n = self.rng.choice(nodes)
            n.fail_disk(True)

            def undo():
                n.fail_disk(False)
                code = self.restart_halted(n)
                return {"repaired": n.id, "had_halted_with": code}
            return {"failing": n.id}, undo
        if kind == "transfer-leader":
            l = c.leader()
            others = [n for n in nodes if n is not l]
            to = self.rng.choice(others)
            if l is not None:
                from . import resp
                conn = resp.Conn(l.host, 27379, timeout=2)
                try:
                    r = conn.call("BTRANSFER", to.id)
                except (resp.NotSent, resp.Indeterminate) as e:
                    r = str(e)
                finally:
                    conn.close()
            else:
                r = "no leader"
            return {"from": l.id if l else None, "to": to.id, "reply": str(r)}, lambda: "done"
        if kind == "clock-jump":
            # One node's clocks jump by up to 10 s either way: backwards,
            # its timers stall (like a pause); forwards, they fire early.
            n = self.rng.choice(nodes)
            off = round(self.rng.choice([-1, 1]) * self.rng.uniform(1, 10), 3)
            n.set_clock(off)

            def undo():
                n.set_clock(0)
                return {"reset": n.id}
            return {"node": n.id, "offset_s": off}, undo
        if kind == "clock-strobe":
            # One node's clocks flip between real time and an offset every
            # few milliseconds until healed.
            n = self.rng.choice(nodes)
            off = round(self.rng.uniform(0.2, 2), 3)
            period = self.rng.choice([0.005, 0.02, 0.1])
            stop = threading.Event()

            def strobe():
                flip = False
                while not stop.wait(period):
                    flip = not flip
                    n.set_clock(off if flip else 0)
            t = threading.Thread(target=strobe, daemon=True)
            t.start()

            def undo():
                stop.set()
                t.join()
                n.set_clock(0)
                return {"reset": n.id}
            return {"node": n.id, "offset_s": off, "period_s": period}, undo
        if kind in NETEM:
            # Between the nodes only (clients connect from 127.0.0.1).
            self.net.shape(**NETEM[kind])

            def undo():
                self.net.heal()
                return "healed"
            return dict(NETEM[kind]), undo
        if kind.startswith("partition-"):
            g = grudge_for(kind, [n.host for n in nodes], self.rng, self.leader_host())
            self.net.partition(g)
            ids = {c.by_host(h).id: sorted(c.by_host(s).id for s in srcs) for h, srcs in g.items() if srcs}

            def undo():
                self.net.heal()
                return "healed"
            return {"cut": ids}, undo
        raise ValueError(kind)

    @staticmethod
    def restart_halted(n):
        """Restarts node @n if its storage failed; returns its exit code
        (None if it was still running)."""
        # A node that halted may still be stopping (ballotd exits with 70
        # within its 10 s halt guard): let it finish before deciding
        # whether to restart it.
        if n.alive() and n.halting():
            end = time.monotonic() + 15
            while n.alive() and time.monotonic() < end:
                time.sleep(0.1)
        code = n.proc.returncode if not n.alive() else None
        n.start()
        return code

    def snapshot_install(self, nodes, restart):
        """Stops a follower until the leader's log no longer holds what it
        lacks (a few MiB of filler make the snapshot several chunks); the
        heal starts it again, so the leader must send it a snapshot. With
        @restart the follower is killed as soon as the snapshot starts
        arriving (its DATA/kv/stage appears) and started again. (Stopped,
        not cut off: a connection that outlives a short partition delivers
        every queued append once healed, and no snapshot is needed.)"""
        from .client import ClusterClient
        c = self.cluster
        l = c.wait_leader(5)
        if l is None:
            raise RuntimeError("no leader")
        f = self.rng.choice([n for n in nodes if n is not l])
        behind = int((f.info() or {}).get("last_index", "0"))
        f.kill()
        cc = ClusterClient(c, l, timeout=2.0)
        end = time.monotonic() + max(10.0, 2 * self.fault_s)
        compacted = False
        try:
            for i in range(BALLAST_KEYS):
                cc.request([("SET", "bj-ballast:%d" % i, "x" * BALLAST_BYTES)],
                           time.monotonic() + 5, retry_unknown=True)
            # Small writes of its own too, so that a snapshot comes soon
            # even when the clients are idle.
            while time.monotonic() < end and not self.stop_ev.is_set():
                cur = c.leader()
                first = int(((cur.info() if cur else None) or {}).get("first_index", "0"))
                if first > behind + 1:
                    compacted = True
                    break
                cc.request([("SET", "bj-filler:%d" % i, "x") for i in range(50)],
                           time.monotonic() + 5, retry_unknown=True)
        finally:
            cc.close()
        stage = os.path.join(f.data, "kv", "stage")

        def undo():
            f.start()
            if not restart:
                return {"restarted": f.id}
            # Kill it the moment the snapshot starts arriving.
            landed = False
            end = time.monotonic() + 15
            while time.monotonic() < end and f.alive():
                if os.path.exists(stage):
                    f.kill()
                    landed = True
                    break
                time.sleep(0.001)
            f.kill()
            f.start()
            return {"restarted": f.id, "killed_mid_install": landed}
        return {"stopped": f.id, "behind_at": behind, "log_compacted_past_it": compacted}, undo

    def stale_quorum(self, nodes):
        """The leader crashes (losing what it did not sync) and comes back
        with a quorum of followers that lag: those are paused first while
        the leader and the others commit, then the up-to-date followers are
        paused while the lagging ones resume and the leader restarts. Every
        committed entry is durable on the leader, so the new quorum still
        holds it; a leader that counted its own entry before it was durable
        comes back without it, and the entries only the paused followers
        hold are overwritten when they resume."""
        l = self.cluster.wait_leader(5)
        if l is None:
            raise RuntimeError("no leader")
        others = [n for n in nodes if n is not l]
        self.rng.shuffle(others)
        q = len(nodes) // 2 + 1
        lagging, fresh = others[:q - 1], others[q - 1:]
        for n in lagging:
            n.pause()
        # Long enough for a few hundred writes that the lagging miss.
        self.stop_ev.wait(min(2.0, self.fault_s / 2))
        l.kill()
        l.lose_unsynced()
        for n in fresh:
            n.pause()
        for n in lagging:
            n.resume()
        l.start()
        ids = lambda ns: sorted(n.id for n in ns)  # noqa: E731

        def undo():
            for n in fresh:
                n.resume()
            return {"resumed": ids(fresh)}
        return {"crashed": l.id, "lagging": ids(lagging), "paused": ids(fresh)}, undo

    def learners_split(self, nodes):
        """Two voters (one with 3 nodes) are removed and added back as
        learners, keeping their data, and the remaining voters are split:
        the leader and the others on one side, one voter with the learners
        on the other. The learners' side has no majority of voters, so it
        must elect no one and commit nothing; where learners vote (or a
        removed member keeps voting) it elects a second leader. The heal
        joins the sides and promotes the learners back."""
        c = self.cluster
        l = c.wait_leader(5)
        if l is None:
            raise RuntimeError("no leader")
        others = [n for n in nodes if n is not l]
        self.rng.shuffle(others)
        learners = others[:len(nodes) // 2]
        voters = [l] + others[len(nodes) // 2:]
        for n in learners:
            member_change(c, ("REMOVE", n.id), lambda m, n=n: n.id not in m)
            member_change(c, ("ADDLEARNER", n.id), lambda m, n=n: m.get(n.id) == "learner")
        side = [voters[-1]] + learners
        self.net.partition(grudge_isolate([[n.host for n in voters[:-1]],
                                           [n.host for n in side]], [n.host for n in nodes]))

        def undo():
            self.net.heal()
            for n in learners:
                # Bounded: a cluster a broken build wedged never promotes.
                member_change(c, ("PROMOTE", n.id), lambda m, n=n: m.get(n.id) == "voter",
                              timeout=10.0)
            return {"promoted": sorted(n.id for n in learners)}
        return {"learners": sorted(n.id for n in learners),
                "sides": [sorted(n.id for n in voters[:-1]), sorted(n.id for n in side)]}, undo

    def do_start(self, kind):
        with self.lock:
            t0 = self.history.now()
            desc, undo = self.start_fault(kind)
            self.active = (kind, undo, t0)
            self.note("start-" + kind, desc)

    def do_heal(self):
        with self.lock:
            if self.active is None:
                return
            kind, undo, t0 = self.active
            self.active = None
            try:
                res = undo()
            except Exception as e:  # noqa: logged; the runner's clean-up still heals
                res = {"error": str(e)}
            t1 = self.history.now()
            self.intervals.append((t0, t1, kind))
            self.note("stop-" + kind, res)

    def run(self):
        while not self.stop_ev.wait(self.quiet_s):
            kind = self.rng.choice(self.faults)
            try:
                self.do_start(kind)
            except Exception as e:  # noqa: a fault that fails to start is logged, not fatal
                self.note("error", "%s: %s" % (kind, e))
                continue
            self.stop_ev.wait(self.fault_s)
            self.do_heal()

    def start(self):
        if not self.faults:
            return
        self.thread = threading.Thread(target=self.run, name="nemesis", daemon=True)
        self.thread.start()

    def stop(self):
        """Stops the schedule and heals what is active."""
        self.stop_ev.set()
        if self.thread is not None:
            self.thread.join()
        self.do_heal()
        self.log.close()
