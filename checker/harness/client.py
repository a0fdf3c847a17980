"""A client for the checker's side of a conversation with a server.

Every call has a timeout; when it runs out the check fails saying what was
sent and what (if anything) came back, rather than hanging.
"""
import socket

from .report import CheckFailed, show_bytes
from .timeouts import T
from .waiting import Deadline


def connect(port: int, host: str = "127.0.0.1", timeout: float | None = None) -> socket.socket:
    """A TCP connection to host:port. ConnectionRefusedError propagates."""
    sock = socket.create_connection((host, port), timeout=T(5) if timeout is None else timeout)
    return sock


def ask(sock: socket.socket, request: bytes, ending: tuple[bytes, ...] | bytes) -> bytes:
    """Sends request, then reads until what came ends with `ending` (one of them), the peer
    closes, or the socket's timeout. Returns what came, however little: the caller judges."""
    sock.sendall(request)
    got = b""
    try:
        while not got.endswith(ending):
            chunk = sock.recv(65536)
            if not chunk:
                break
            got += chunk
    except OSError:
        pass
    return got


class LineClient:
    """Talks a line-based protocol: send bytes, read lines or exact byte counts back."""

    def __init__(self, port: int, host: str = "127.0.0.1", timeout: float | None = None):
        self.timeout = T(5) if timeout is None else timeout
        try:
            self.sock = connect(port, host, self.timeout)
        except ConnectionRefusedError:
            raise CheckFailed(f"the connection to {host}:{port} was refused",
                              expected="the server to accept it",
                              seen="ECONNREFUSED: the kernel answered the SYN with RST",
                              hint="nothing listens on that port: does your server call listen()? "
                                   "is it still running?") from None
        self.sock.settimeout(self.timeout)
        self.buffer = b""
        self.sent = b""    # everything sent since the last read, shown on failure

    def close(self):
        self.sock.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def send(self, data: bytes):
        self.sock.sendall(data)
        self.sent = data

    def shutdown_write(self):
        """Half-close: the server's read() returns 0, but we can still receive."""
        self.sock.shutdown(socket.SHUT_WR)

    def _fill(self, deadline: Deadline, want_more_than: int) -> bool:
        """Reads until the buffer is longer than want_more_than; False at EOF."""
        while len(self.buffer) <= want_more_than:
            left = deadline.left()
            if left <= 0:
                raise socket.timeout()
            self.sock.settimeout(left)
            chunk = self.sock.recv(65536)
            if not chunk:
                return False
            self.buffer += chunk
        return True

    def read_exactly(self, n: int, what: str = "the reply") -> bytes:
        """n bytes, or CheckFailed showing what arrived before the timeout or EOF."""
        deadline = Deadline(self.timeout)
        try:
            complete = self._fill(deadline, n - 1)
            why = "the server closed the connection" if not complete else None
        except socket.timeout:
            why = f"nothing more arrived within {self.timeout:.0f}s"
        except ConnectionResetError:
            why = "the server reset the connection (RST)"
        if len(self.buffer) >= n:
            data, self.buffer = self.buffer[:n], self.buffer[n:]
            return data
        raise CheckFailed(f"{what} was cut short: {why}", tried=f"sent {show_bytes(self.sent)}",
                          expected=f"{n} bytes", seen=f"{len(self.buffer)} bytes: {show_bytes(self.buffer)}")

    def read_line(self, what: str = "a reply line") -> bytes:
        """One line including its \\n, or CheckFailed on timeout/EOF."""
        deadline = Deadline(self.timeout)
        try:
            while b"\n" not in self.buffer:
                if not self._fill(deadline, len(self.buffer)):
                    raise CheckFailed(f"the server closed the connection before {what}",
                                      tried=f"sent {show_bytes(self.sent)}",
                                      seen=show_bytes(self.buffer))
        except socket.timeout:
            raise CheckFailed(f"no complete line within {self.timeout:.0f}s while waiting for {what}",
                              tried=f"sent {show_bytes(self.sent)}", seen=show_bytes(self.buffer)) from None
        except ConnectionResetError:
            raise CheckFailed(f"the server reset the connection (RST) before {what}",
                              tried=f"sent {show_bytes(self.sent)}", seen=show_bytes(self.buffer)) from None
        line, _, self.buffer = self.buffer.partition(b"\n")
        return line + b"\n"

    def read_until_eof(self, timeout: float | None = None) -> tuple[bytes, bool]:
        """Everything until the server closes. Returns (data, closed); closed is False
        if the timeout ran out first."""
        deadline = Deadline(self.timeout if timeout is None else timeout)
        try:
            while self._fill(deadline, len(self.buffer)):
                pass
            closed = True
        except socket.timeout:
            closed = False
        except ConnectionResetError:
            closed = True
        data, self.buffer = self.buffer, b""
        return data, closed
