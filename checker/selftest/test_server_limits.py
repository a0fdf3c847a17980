"""Limits the WeensyDB servers keep, whatever one client asks (issue 10, defects 1 and 6).

Two versions stand for the two ways of serving: version 8 (solutions/10, a
thread per connection, read_request) and the epoll server (solutions/14, one
thread for everyone, Connection). Both parse with common/'s one RequestParser.

- One `get` that names a 1 MiB value 1,000 times, a 2 KB line, asks for a
  gigabyte of reply. Served a few keys at a time, the server's memory stays
  bounded, and a second client keeps getting its answers meanwhile.
- `noreply` means no reply at all, errors included, as in memcached: a client
  that sets a value too large with noreply stays in step with its replies.
"""
import os
import pathlib
import signal
import socket
import threading
import time

import pytest

from checker.harness import T, procfs, run, start_server, waiting

ROOT = pathlib.Path(__file__).resolve().parents[2]
SERVERS = ["10-weensydb-8", "14-epoll"]
MAX_VALUE = 1 << 20
COPIES = 1000
MEMORY_LIMIT = 64 << 20     # the server's peak resident memory, bytes (about 10 MiB is usual)
KILL_ABOVE = 512 << 20      # a server this large has failed already: stop it before it grows on
ROUND_TRIP_LIMIT = 1.0      # seconds, before scaling: the other client's slowest answer


@pytest.fixture(scope="module", params=SERVERS)
def binary(request) -> pathlib.Path:
    target = f"build/solutions/{request.param}/weensydb"
    built = run(["make", "--no-print-directory", target], timeout=T(300), cwd=ROOT)
    assert built.returncode == 0, built.stderr.decode(errors="replace")
    return ROOT / target


def status_bytes(pid: int, field: str) -> int:
    """A memory figure from /proc/PID/status (VmRSS, VmHWM…), in bytes; 0 once the process is gone."""
    try:
        return procfs.status_bytes(pid, field)
    except (FileNotFoundError, ProcessLookupError):
        return 0


def wait_until(condition, timeout: float, what: str):
    assert waiting.wait_until(condition, timeout, what), f"timed out after {timeout:.0f}s waiting until {what}"


def read_exactly(sock: socket.socket, n: int) -> bytes:
    data = b""
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        if not chunk:
            raise ConnectionError(f"the server closed the connection after {len(data)} of {n} bytes")
        data += chunk
    return data


class MemoryWatch(threading.Thread):
    """Samples the server's resident memory until stopped; kills the server if it passes KILL_ABOVE."""

    def __init__(self, server):
        super().__init__(daemon=True)
        self.server, self.peak, self.killed = server, 0, False
        self.done = threading.Event()

    def run(self):
        pid = self.server.pid
        while not self.done.is_set():
            rss = status_bytes(pid, "VmRSS")
            self.peak = max(self.peak, rss, status_bytes(pid, "VmHWM"))
            if rss > KILL_ABOVE:
                self.killed = True
                os.killpg(pid, signal.SIGKILL)
                return
            self.done.wait(0.002)

    def stop(self) -> int:
        """The peak resident memory seen, in bytes (VmHWM: the kernel's own high-water mark)."""
        self.peak = max(self.peak, status_bytes(self.server.pid, "VmHWM"))
        self.done.set()
        self.join(T(5))
        return self.peak


class RoundTrips(threading.Thread):
    """Another client: set and get, again and again, timing each answer."""

    REQUEST = b"set other 0 0 5\r\nhello\r\nget other\r\n"
    REPLY = b"STORED\r\nVALUE other 0 5\r\nhello\r\nEND\r\n"

    def __init__(self, port: int):
        super().__init__(daemon=True)
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=T(30))
        self.rounds, self.worst, self.error = 0, 0.0, None
        self.done = threading.Event()

    def run(self):
        try:
            while not self.done.is_set():
                start = time.monotonic()
                self.sock.sendall(self.REQUEST)
                got = read_exactly(self.sock, len(self.REPLY))
                self.worst = max(self.worst, time.monotonic() - start)
                if got != self.REPLY:
                    raise AssertionError(f"a wrong reply: {got!r}")
                self.rounds += 1
        except (OSError, AssertionError) as error:
            self.error = f"{type(error).__name__}: {error}"
        finally:
            self.sock.close()

    def stop(self):
        self.done.set()
        self.join(T(60))


def serve_big_get(binary: pathlib.Path) -> dict:
    """Stores a 1 MiB value, asks for it COPIES times in one get while another client does
    round trips, and reads the whole reply. The figures: the server's peak resident memory,
    the other client's slowest round trip, the reply's length, and what went wrong."""
    with start_server(binary) as server:
        big = socket.create_connection(("127.0.0.1", server.port), timeout=T(30))
        big.sendall(b"set k 0 0 %d\r\n" % MAX_VALUE + b"v" * MAX_VALUE + b"\r\n")
        assert read_exactly(big, 8) == b"STORED\r\n"
        other = RoundTrips(server.port)
        other.start()
        wait_until(lambda: other.rounds >= 3 or other.error, T(10), "the other client is answered")
        watch = MemoryWatch(server)
        watch.start()
        header = b"VALUE k 0 %d\r\n" % MAX_VALUE
        expected = COPIES * (len(header) + MAX_VALUE + 2) + len(b"END\r\n")
        got, tail, problem = 0, b"", None
        started = time.monotonic()
        try:
            big.sendall(b"get" + b" k" * COPIES + b"\r\n")
            buffer = bytearray(1 << 20)
            while got < expected:
                n = big.recv_into(buffer)
                if n == 0:
                    problem = "the server closed the connection"
                    break
                if got == 0 and not bytes(buffer[:n]).startswith(header[:n]):
                    problem = f"the reply starts {bytes(buffer[:40])!r}"
                    break
                got += n
                tail = (tail + bytes(buffer[max(0, n - 8):n]))[-8:]
        except OSError as error:
            problem = f"{type(error).__name__}: {error}"
        seconds = time.monotonic() - started
        peak = watch.stop()
        other.stop()
        big.close()
        if watch.killed:
            problem = f"the server passed {KILL_ABOVE >> 20} MiB and was stopped"
        elif problem is None and not tail.endswith(b"\r\nEND\r\n"):
            problem = f"the reply ends {tail!r}"
        return {"peak": peak, "worst": other.worst, "rounds": other.rounds,
                "other_error": other.error, "got": got, "expected": expected,
                "seconds": seconds, "problem": problem}


def test_a_get_of_a_gigabyte_keeps_memory_bounded_and_others_served(binary):
    figures = serve_big_get(binary)
    print(f"{binary.parent.name}: peak {figures['peak'] / 2**20:.1f} MiB, other client's slowest "
          f"round trip {figures['worst'] * 1000:.0f} ms over {figures['rounds']} rounds, "
          f"{figures['got']:,} bytes in {figures['seconds']:.1f}s")
    assert figures["peak"] < MEMORY_LIMIT, (
        f"the server grew to {figures['peak'] >> 20} MiB serving one get of {COPIES} copies of a "
        f"1 MiB value (limit {MEMORY_LIMIT >> 20} MiB): is the whole reply built before it is sent?")
    assert figures["problem"] is None, figures["problem"]
    assert figures["got"] == figures["expected"]
    assert figures["other_error"] is None, f"the other client: {figures['other_error']}"
    assert figures["worst"] < T(ROUND_TRIP_LIMIT), (
        f"another client waited {figures['worst']:.1f}s for an answer while the big get was "
        f"served (limit {T(ROUND_TRIP_LIMIT):.1f}s)")


# ---- noreply -------------------------------------------------------------------------

QUIET_REFUSALS = [
    ("a value over 1 MiB", b"set q 0 0 2000000 noreply\r\n" + b"v" * 2000000 + b"\r\n"),
    ("bad flags", b"set q x 0 1 noreply\r\nv\r\n"),
    ("a 300-byte key", b"set " + b"k" * 300 + b" 0 0 1 noreply\r\nv\r\n"),
    ("a data block longer than its size", b"set q 0 0 1 noreply\r\nvvv\r\n"),
    ("a bad key in delete", b"delete q\x01 noreply\r\n"),
]


@pytest.mark.parametrize("what,request_bytes", QUIET_REFUSALS, ids=[w for w, _ in QUIET_REFUSALS])
def test_noreply_means_no_reply_even_to_an_error(binary, what, request_bytes):
    with start_server(binary) as server:
        with socket.create_connection(("127.0.0.1", server.port), timeout=T(10)) as sock:
            sock.sendall(request_bytes + b"get q\r\n")
            sock.shutdown(socket.SHUT_WR)
            got = b""
            while chunk := sock.recv(65536):
                got += chunk
    assert got == b"END\r\n", f"{what} with noreply, then `get q`: got {got!r}"


def test_pymemcache_stays_in_step_after_a_refused_noreply_set(binary):
    pymemcache = pytest.importorskip("pymemcache.client.base", reason="python3-pymemcache is not installed")
    with start_server(binary) as server:
        client = pymemcache.Client(("127.0.0.1", server.port), connect_timeout=T(3), timeout=T(3))
        try:
            client.set("big", b"x" * (2 * MAX_VALUE), noreply=True)   # refused, and silently
            assert client.set("small", b"v", noreply=False) is True
            assert client.get("small") == b"v"
            assert client.get("big") is None
            assert client.delete("small", noreply=False) is True
        finally:
            client.close()
