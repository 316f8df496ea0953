"""A small blocking RESP2 client with a deadline on every call.

The suite needs to tell three outcomes apart for every request: a reply
(which may be an error reply), a failure before the request left (nothing
applied), and a failure after it left (outcome unknown). redis-py folds the
last two together, so the suite speaks RESP itself.
"""
import socket
import time


class RespError(Exception):
    """An error reply (-PREFIX message). It is a value, not a failure of
    the connection."""

    def __init__(self, text):
        super().__init__(text)
        self.text = text
        self.prefix = text.split(" ", 1)[0]


class NotSent(Exception):
    """The request never reached the server: nothing was applied."""


class Indeterminate(Exception):
    """The request was sent but no reply came (timeout, reset)."""


def encode(args):
    out = [b"*%d\r\n" % len(args)]
    for a in args:
        if isinstance(a, int):
            a = str(a)
        if isinstance(a, str):
            a = a.encode()
        out.append(b"$%d\r\n%s\r\n" % (len(a), a))
    return b"".join(out)


class Conn:
    def __init__(self, host, port, timeout=1.0, source=None):
        self.host, self.port = host, port
        self.timeout = timeout
        self.source = source
        self.sock = None
        self.buf = b""

    def connect(self, deadline=None):
        t = self.timeout if deadline is None else max(0.01, deadline - time.monotonic())
        try:
            s = socket.create_connection(
                (self.host, self.port), timeout=t,
                source_address=(self.source, 0) if self.source else None)
        except OSError as e:
            raise NotSent("connect %s:%d: %s" % (self.host, self.port, e))
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sock = s
        self.buf = b""

    def close(self):
        if self.sock is not None:
            try:
                self.sock.close()
            except OSError:
                pass
        self.sock = None
        self.buf = b""

    def call(self, *args, timeout=None):
        """Sends one command and returns its reply (RespError for an error
        reply). Raises NotSent or Indeterminate, after closing the
        connection, when no reply arrived."""
        return self.pipeline([args], timeout=timeout)[0]

    def pipeline(self, cmds, timeout=None):
        deadline = time.monotonic() + (timeout or self.timeout)
        if self.sock is None:
            self.connect(deadline)
        try:
            self.sock.settimeout(max(0.01, deadline - time.monotonic()))
            self.sock.sendall(b"".join(encode(c) for c in cmds))
        except OSError as e:
            # A partial send may have delivered a whole command.
            self.close()
            raise Indeterminate("send: %s" % e)
        replies = []
        try:
            for _ in cmds:
                replies.append(self._read(deadline))
        except (OSError, ValueError) as e:
            self.close()
            raise Indeterminate("reply: %s" % (e or "timeout"))
        return replies

    def read(self, timeout):
        """The next value the server sends unasked (a watch frame).
        Raises Indeterminate, after closing the connection, if none came
        within @timeout."""
        try:
            return self._read(time.monotonic() + timeout)
        except (OSError, ValueError) as e:
            self.close()
            raise Indeterminate("read: %s" % (e or "timeout"))

    def _fill(self, deadline):
        left = deadline - time.monotonic()
        if left <= 0:
            raise socket.timeout("timed out")
        self.sock.settimeout(left)
        chunk = self.sock.recv(65536)
        if not chunk:
            raise ConnectionResetError("connection closed by the server")
        self.buf += chunk

    def _line(self, deadline):
        while True:
            i = self.buf.find(b"\r\n")
            if i >= 0:
                line, self.buf = self.buf[:i], self.buf[i + 2:]
                return line
            self._fill(deadline)

    def _read(self, deadline):
        line = self._line(deadline)
        kind, rest = line[:1], line[1:]
        if kind == b"+":
            return rest.decode()
        if kind == b"-":
            return RespError(rest.decode(errors="replace"))
        if kind == b":":
            return int(rest)
        if kind == b"$":
            n = int(rest)
            if n < 0:
                return None
            while len(self.buf) < n + 2:
                self._fill(deadline)
            data, self.buf = self.buf[:n], self.buf[n + 2:]
            return data.decode(errors="surrogateescape")
        if kind == b"*":
            n = int(rest)
            if n < 0:
                return None
            return [self._read(deadline) for _ in range(n)]
        raise ValueError("bad reply line %r" % line[:40])
