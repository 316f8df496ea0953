"""A cluster of real ballotd processes on loopback addresses of the run's
own.

Every run holds a *slot* (an flock on /tmp/ballot-jepsen/slot-R.lock, so
concurrent runs never share one) and puts node i on 127.77.R.i, with the
ports CLIENT_PORT, PEER_PORT and METRICS_PORT. No other test uses the
127.77.0.0/16 block, so neither addresses nor firewall rules (net.py)
touch anyone else's processes. Pids are written to the slot's directory as
soon as a node starts, so a later run on the same slot can stop what a
killed runner left behind.
"""
import fcntl
import glob
import os
import shutil
import signal
import subprocess
import time

from . import resp

SLOT_DIR = "/tmp/ballot-jepsen"
SLOTS = range(1, 190)  # 190..250 only when BALLOT_JEPSEN_SLOTS asks
CLIENT_PORT = 27379
PEER_PORT = 27380
METRICS_PORT = 27381


def repo_root():
    return os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def default_ballotd():
    return os.environ.get("BALLOTD") or os.path.join(repo_root(), "build", "net", "ballotd")


def default_lazyfs():
    return os.environ.get("LAZYFS") or os.path.join(repo_root(), "build", "jepsen", "lazyfs")


class Slot:
    """An exclusive block of loopback addresses, 127.77.R.0/24."""

    def __init__(self):
        os.makedirs(SLOT_DIR, exist_ok=True)
        # BALLOT_JEPSEN_SLOTS=A-B narrows the range (a test that checks
        # what a run left on its slot keeps other runs off that range).
        slots = SLOTS
        if os.environ.get("BALLOT_JEPSEN_SLOTS"):
            a, b = os.environ["BALLOT_JEPSEN_SLOTS"].split("-")
            slots = range(int(a), int(b) + 1)
        for r in slots:
            path = os.path.join(SLOT_DIR, "slot-%d.lock" % r)
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                os.close(fd)
                continue
            self.r, self.fd = r, fd
            self.pidfile = os.path.join(SLOT_DIR, "slot-%d.pids" % r)
            self.mountfile = os.path.join(SLOT_DIR, "slot-%d.mounts" % r)
            self.reap_leftovers()
            return
        raise RuntimeError("no free slot in %s" % SLOT_DIR)

    def host(self, i):
        return "127.77.%d.%d" % (self.r, i)

    @property
    def cidr(self):
        return "127.77.%d.0/24" % self.r

    def record_mount(self, path):
        with open(self.mountfile, "a") as f:
            f.write(path + "\n")

    def record_pid(self, pid):
        with open(self.pidfile, "a") as f:
            f.write("%d\n" % pid)

    def reap_leftovers(self):
        """Kills the ballotd processes a runner that died left on this slot
        (only processes whose command line names this slot's addresses)."""
        try:
            with open(self.pidfile) as f:
                pids = [int(x) for x in f.read().split()]
        except (OSError, ValueError):
            pids = []
        for pid in pids:
            try:
                with open("/proc/%d/cmdline" % pid, "rb") as f:
                    cmd = f.read()
            except OSError:
                continue
            if (b"ballotd" in cmd and ("127.77.%d." % self.r).encode() in cmd) or (
                    b"lazyfs" in cmd and b"wal-mnt" in cmd):
                os.kill(pid, signal.SIGCONT)
                os.kill(pid, signal.SIGKILL)
        open(self.pidfile, "w").close()
        self.unmount_recorded()

    def unmount_recorded(self):
        """Unmounts the filesystems mounted for this slot's nodes."""
        try:
            with open(self.mountfile) as f:
                mounts = f.read().split("\n")
        except OSError:
            mounts = []
        for m in mounts:
            if m and os.path.ismount(m):
                subprocess.run(["umount", "-l", m], capture_output=True)
        open(self.mountfile, "w").close()

    def release(self):
        self.unmount_recorded()
        for f in (self.pidfile, self.mountfile):
            try:
                os.unlink(f)
            except OSError:
                pass
        os.close(self.fd)


class Node:
    def __init__(self, cluster, nid):
        self.cluster = cluster
        self.id = nid
        self.host = cluster.slot.host(nid)
        self.dir = os.path.join(cluster.dir, "n%d" % nid)
        self.data = os.path.join(self.dir, "data")
        self.disk = None  # a small filesystem of the node's own (disk faults)
        self.log = os.path.join(self.dir, "ballotd.log")
        self.proc = None
        self.paused = False
        # A node wiped and added back starts without --bootstrap: with an
        # empty directory it would otherwise form a cluster of its own.
        self.join = False
        os.makedirs(self.dir, exist_ok=True)
        if cluster.disk_mb:
            self.disk = os.path.join(self.dir, "disk")
            os.makedirs(self.disk, exist_ok=True)
            cluster.slot.record_mount(self.disk)
            r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=%dm" % cluster.disk_mb,
                                "ballot-jepsen", self.disk], capture_output=True, text=True)
            if r.returncode != 0:
                raise RuntimeError("mount tmpfs on %s: %s" % (self.disk, r.stderr.strip()))
            self.data = os.path.join(self.disk, "data")
        self.lazyfs = None  # the lazyfs process under DATA/wal
        if cluster.lazyfs:
            self.mount_lazyfs()

    @property
    def wal_mnt(self):
        return os.path.join(self.dir, "wal-mnt")

    def mount_lazyfs(self):
        """Puts DATA/wal on lazyfs (a symlink to its mount point), backed
        by a directory beside the node's."""
        backing = os.path.join(self.dir, "wal-backing")
        os.makedirs(backing, exist_ok=True)
        os.makedirs(self.wal_mnt, exist_ok=True)
        self.cluster.slot.record_mount(self.wal_mnt)
        with open(os.path.join(self.dir, "lazyfs.log"), "ab") as logf:
            self.lazyfs = subprocess.Popen([self.cluster.lazyfs, backing, self.wal_mnt],
                                           stdout=logf, stderr=logf, stdin=subprocess.DEVNULL,
                                           start_new_session=True)
        self.cluster.slot.record_pid(self.lazyfs.pid)
        end = time.monotonic() + 10
        while not os.path.ismount(self.wal_mnt):
            if time.monotonic() > end or self.lazyfs.poll() is not None:
                raise RuntimeError("lazyfs did not mount %s" % self.wal_mnt)
            time.sleep(0.02)
        os.makedirs(self.data, exist_ok=True)
        link = os.path.join(self.data, "wal")
        if not os.path.islink(link):
            os.symlink(self.wal_mnt, link)

    def lose_unsynced(self):
        """A machine crash, for a killed node: its WAL loses every write
        no fsync covered (lazyfs), and its store, if it had writes after
        its last checkpoint, is marked as written by another boot (so the
        node rebuilds it from its snapshot and log, as after a real
        machine crash)."""
        assert not self.alive()
        try:
            os.stat(os.path.join(self.wal_mnt, ".lazyfs-crash"))
        except FileNotFoundError:
            pass
        dirty = os.path.join(self.data, "kv", "DIRTY")
        if os.path.exists(dirty):
            with open(dirty, "w") as f:
                f.write("a-boot-before-the-simulated-crash\n")

    def fail_disk(self, on):
        """Makes every write and sync of the node's WAL fail with EIO (a
        failing disk; lazyfs), or work again."""
        try:
            os.stat(os.path.join(self.wal_mnt, ".lazyfs-eio-%s" % ("on" if on else "off")))
        except FileNotFoundError:
            pass

    @property
    def ballast(self):
        return os.path.join(self.disk, "ballast")

    def fill_disk(self):
        """Fills the node's filesystem: its next write fails with
        ENOSPC."""
        chunk = b"\0" * (1 << 20)
        fd = os.open(self.ballast, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        try:
            for size in (1 << 20, 65536, 4096, 512, 1):
                try:
                    while True:
                        os.write(fd, chunk[:size])
                except OSError:
                    pass
        finally:
            os.close(fd)

    def free_disk(self):
        try:
            os.unlink(self.ballast)
        except OSError:
            pass

    def unmount(self):
        if self.lazyfs is not None:
            subprocess.run(["umount", "-l", self.wal_mnt], capture_output=True)
            try:
                self.lazyfs.wait(5)
            except subprocess.TimeoutExpired:
                self.lazyfs.kill()
                self.lazyfs.wait()
            self.lazyfs = None
        if self.disk and os.path.ismount(self.disk):
            subprocess.run(["umount", "-l", self.disk], capture_output=True)

    @property
    def addr(self):
        return "%s:%d" % (self.host, CLIENT_PORT)

    def member_arg(self):
        return "%d=%s:%d:%d" % (self.id, self.host, CLIENT_PORT, PEER_PORT)

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    @property
    def clock_file(self):
        return os.path.join(self.dir, "faketime")

    def set_clock(self, offset_s):
        """Moves this node's clocks (wall and monotonic) to real time +
        @offset_s; the node reads the file at every clock call."""
        tmp = self.clock_file + ".tmp"
        with open(tmp, "w") as f:
            f.write("%+.3f\n" % offset_s)
        os.rename(tmp, self.clock_file)

    def start(self):
        if self.alive():
            return
        c = self.cluster
        args = [c.ballotd, "--id", str(self.id), "--data", self.data,
                "--metrics_port", str(METRICS_PORT), "--cluster_secret_file", c.secret]
        for n in c.nodes:
            args += ["--member", n.member_arg()]
        args += ([] if self.join else ["--bootstrap"]) + list(c.node_args)
        with open(self.log, "ab") as logf:
            self.log_start = logf.tell()
            logf.write(("=== %s start: %s\n" % (time.strftime("%H:%M:%S"), " ".join(args))).encode())
            logf.flush()
            # Its own session: a Ctrl-C at the terminal reaches the runner
            # only, which then stops every node itself, by pid.
            env = c.env
            if c.faketime:
                if not os.path.exists(self.clock_file):
                    self.set_clock(0)
                env = dict(env, LD_PRELOAD=c.faketime, FAKETIME_TIMESTAMP_FILE=self.clock_file,
                           FAKETIME_NO_CACHE="1",
                           # libfaketime is preloaded before ASan's runtime.
                           ASAN_OPTIONS=env.get("ASAN_OPTIONS", "") + ":verify_asan_link_order=0")
            self.proc = subprocess.Popen(args, stdout=logf, stderr=logf, stdin=subprocess.DEVNULL,
                                         start_new_session=True, env=env)
        c.slot.record_pid(self.proc.pid)
        self.paused = False

    def wipe(self):
        """Deletes the (stopped) node's data directory; it will join."""
        assert not self.alive()
        shutil.rmtree(self.data, ignore_errors=True)
        self.join = True

    def halting(self):
        """Whether the current process logged a storage halt."""
        try:
            with open(self.log, "rb") as f:
                f.seek(self.log_start)
                return b"halting:" in f.read()
        except OSError:
            return False

    def signal(self, sig):
        if self.alive():
            os.kill(self.proc.pid, sig)

    def kill(self):
        """SIGKILL, and waits for the process to be gone."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait()
        self.paused = False

    def pause(self):
        self.signal(signal.SIGSTOP)
        self.paused = True

    def resume(self):
        self.signal(signal.SIGCONT)
        self.paused = False

    def stop(self, timeout=10):
        """SIGTERM (a graceful stop), SIGKILL if it takes too long."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGCONT)
            os.kill(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill()
        return self.proc.returncode

    def info(self, timeout=0.5):
        """INFO raft as a dict, or None if the node does not answer."""
        c = resp.Conn(self.host, CLIENT_PORT, timeout=timeout)
        try:
            r = c.call("INFO", "raft")
        except (resp.NotSent, resp.Indeterminate):
            return None
        finally:
            c.close()
        if not isinstance(r, str):
            return None
        out = {}
        for line in r.splitlines():
            if ":" in line and not line.startswith("#"):
                k, v = line.split(":", 1)
                out[k.strip()] = v.strip()
        return out


class Cluster:
    def __init__(self, slot, n, run_dir, ballotd=None, node_args=(), env=None, faketime=False,
                 disk_mb=None, lazyfs=None):
        self.slot = slot
        self.dir = os.path.join(run_dir, "nodes")
        self.ballotd = ballotd or default_ballotd()
        if not os.access(self.ballotd, os.X_OK):
            raise RuntimeError("no ballotd at %s (build it, or set BALLOTD)" % self.ballotd)
        # Peers authenticate with a cluster secret (docs/security.md): one
        # per run, readable by its owner only, as `ballotd secret` makes it.
        os.makedirs(run_dir, exist_ok=True)
        secret = os.path.join(run_dir, "cluster.secret")
        if not os.path.exists(secret):
            fd = os.open(secret, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as f:
                f.write(os.urandom(32).hex() + "\n")
        self.node_args = ["--cluster_secret_file", secret] + list(node_args)
        self.env = dict(os.environ, **(env or {}))
        # Clock faults: every node runs under libfaketime (Debian's
        # libfaketime), its offset in a file the nemesis rewrites.
        self.faketime = None
        if faketime:
            found = glob.glob("/usr/lib/*/faketime/libfaketimeMT.so.1")
            if not found:
                raise RuntimeError("clock faults need libfaketime (scripts/deps.sh)")
            self.faketime = found[0]
        # Peers authenticate with a shared secret (docs/security.md): one
        # per run, made by ballotd itself.
        os.makedirs(self.dir, exist_ok=True)
        self.secret = os.path.join(self.dir, "cluster.secret")
        if not os.path.exists(self.secret):
            r = subprocess.run([self.ballotd, "secret", self.secret], capture_output=True, text=True)
            if r.returncode != 0:
                raise RuntimeError("ballotd secret: %s" % (r.stderr or r.stdout).strip())
        self.disk_mb = disk_mb
        self.lazyfs = lazyfs
        if lazyfs and not os.access(lazyfs, os.X_OK):
            raise RuntimeError("no lazyfs at %s (build it, or set LAZYFS)" % lazyfs)
        self.nodes = []
        for i in range(1, n + 1):
            self.nodes.append(Node(self, i))

    def node(self, nid):
        return self.nodes[nid - 1]

    def by_addr(self, addr):
        for n in self.nodes:
            if n.addr == addr:
                return n
        return None

    def by_host(self, host):
        for n in self.nodes:
            if n.host == host:
                return n
        return None

    def start(self):
        for n in self.nodes:
            n.start()

    def leader(self):
        """The node that says it leads with the highest term, or None."""
        best = None
        for n in self.nodes:
            if not n.alive() or n.paused:
                continue
            i = n.info()
            if i and i.get("role") == "leader":
                t = int(i.get("term", 0))
                if best is None or t > best[0]:
                    best = (t, n)
        return best[1] if best else None

    def wait_leader(self, timeout=20):
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            l = self.leader()
            if l is not None:
                return l
            time.sleep(0.1)
        return None

    def stop(self):
        """Stops every node by pid and unmounts their filesystems;
        returns {id: exit code}."""
        codes = {n.id: n.stop() for n in self.nodes}
        for n in self.nodes:
            n.unmount()
        return codes
