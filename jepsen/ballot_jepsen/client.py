"""A client of the whole cluster that follows the leader.

Outcomes, exactly as docs/protocol.md defines them and Jepsen treats them:
an error that says "not applied" (NOTLEADER, BUSY, DROPPED, TRYAGAIN,
SHUTDOWN, a superseded request id) is a definite failure, and the client
may retry it within the operation's deadline (nothing happened, so the
operation's window still holds); UNKNOWN, a timeout or a connection lost
after sending make the outcome unknown ("info").
"""
import time

from . import resp
from .cluster import CLIENT_PORT

NOT_APPLIED = ("NOTLEADER", "BUSY", "DROPPED", "TRYAGAIN", "SHUTDOWN", "EXECABORT")


class Failed(Exception):
    """Definitely not applied."""


class Unknown(Exception):
    """Maybe applied."""


def not_applied(err):
    return err.prefix in NOT_APPLIED or "superseded" in err.text


class ClusterClient:
    def __init__(self, cluster, home, timeout=1.0):
        self.cluster = cluster
        self.home = home  # the node this worker talks to first
        self.timeout = timeout
        self.conns = {}  # node id -> Conn, kept open between operations
        self.conn = None
        self.node = None
        self.use(home)

    def use(self, node):
        self.node = node
        if node.id not in self.conns:
            self.conns[node.id] = resp.Conn(node.host, CLIENT_PORT, timeout=self.timeout)
        self.conn = self.conns[node.id]

    def close(self):
        for c in self.conns.values():
            c.close()

    def follow(self, err):
        """On NOTLEADER with an address, switch to that node."""
        if err.prefix == "NOTLEADER" and " at " in err.text:
            n = self.cluster.by_addr(err.text.rsplit(" at ", 1)[1].strip())
            if n is not None and n is not self.node:
                # Closed, so that no MULTI or WATCH state outlives the
                # attempt that set it up.
                self.conn.close()
                self.use(n)
                return True
        return False

    def request(self, cmds, deadline, retry_unknown=False, check=None, read=False):
        """Sends the pipeline @cmds until it gets replies that are not a
        "not applied" error. @check(replies) picks the error reply that
        decides the outcome (default: the last reply's). A @read starts at
        the client's home node (any node serves reads; writes stay with
        the leader they found), so that reads keep coming from every
        node. Returns the replies; raises Failed or Unknown."""
        if read and self.node is not self.home:
            self.use(self.home)
        last = "no attempt"
        unknown = False
        while True:
            if time.monotonic() >= deadline:
                if unknown:
                    raise Unknown(last)
                raise Failed(last)
            left = deadline - time.monotonic()
            try:
                replies = self.conn.pipeline(cmds, timeout=min(self.timeout, left))
            except resp.NotSent as e:
                last = str(e)
                self.rotate()
                time.sleep(0.05)
                continue
            except resp.Indeterminate as e:
                last = "timeout: %s" % e
                # A node that does not answer may be dead, paused or cut
                # off: the next operation starts at another.
                self.rotate()
                if not retry_unknown:
                    raise Unknown(last)
                unknown = True
                continue
            err = check(replies) if check else replies[-1]
            if not isinstance(err, resp.RespError):
                return replies
            last = err.text
            if not_applied(err):
                if not self.follow(err):
                    # A connection that ran MULTI/WATCH keeps no state: a
                    # fresh one is clean.
                    self.conn.close()
                    time.sleep(0.05)
                continue
            if err.prefix == "UNKNOWN":
                if not retry_unknown:
                    raise Unknown(last)
                unknown = True
                self.rotate()
                continue
            raise Failed(last)

    def rotate(self):
        """After a dead or silent node, try the next one."""
        self.conn.close()
        nodes = self.cluster.nodes
        i = nodes.index(self.node)
        self.use(nodes[(i + 1) % len(nodes)])
