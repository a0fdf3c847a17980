"""Whole-program tests of the servers' hardening (issue 10), and of the checker's
temporary files. Each test reproduces a defect of the old code, and its message
(or the note under a passing test) gives the figure it measured: a wait, a
number of threads, memory, CPU time, entries left behind.

  course-httpd   a request deadline, at most 64 threads, a thread that cannot be
                 made costs one client a 503, bodies in pieces, no spin on EMFILE
  lesson 15      httpd's read timeout, and --defer-accept unchanged by it
  every server   127.0.0.1 unless -b ADDRESS
  the checker    no temporary file left by a capture, a failed check or a Ctrl-C

    /usr/bin/python3 checker/run.py selftest -k hardening

The programs come from build/ (`make programs`; `make selftest` builds them).
Every server is started by the harness: its own process group, killed at the
end of the test whatever happens, on a port the kernel chose.
"""
import contextlib
import os
import pathlib
import resource
import selectors
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

import pytest

from checker.harness import T, note, procfs, start_server, waiting
from checker.harness.capture import Capture, capture_unavailable_reason
from checker.harness.procs import spawn, kill_group

ROOT = pathlib.Path(__file__).resolve().parents[2]
BUILD = ROOT / "build"
COURSE_HTTPD = BUILD / "tools" / "course-httpd"
LESSON_15_HTTPD = BUILD / "solutions" / "15-handshake-tuning" / "httpd"

# The limits of tools/programs/course_httpd.cc and of lesson 15's httpd.cc (keep in step).
REQUEST_SECONDS = 10          # course_httpd: kRequestSeconds, a whole request's deadline
MAX_CLIENTS = 64              # course_httpd: kMaxClients, connections served at once
LESSON_15_READ_TIMEOUT = 5    # httpd.cc: READ_TIMEOUT_SECONDS
MiB = 1 << 20


# ---- helpers ---------------------------------------------------------------------------

def program(path: pathlib.Path) -> pathlib.Path:
    if not path.exists():
        pytest.fail(f"{path.relative_to(ROOT)} is missing: run `make programs` first")
    return path


def wait_until(condition, timeout: float, what: str):
    """condition()'s first true value, or AssertionError(what)."""
    value = waiting.wait_until(condition, timeout, what)
    if not value:
        raise AssertionError(f"{what}: not within {timeout:.1f}s")
    return value


def read_to_eof(sock: socket.socket, timeout: float) -> bytes | None:
    """Everything the peer sends until it closes (EOF or reset); None if it is still
    open after `timeout` seconds."""
    deadline = waiting.Deadline(timeout)
    chunks = []
    while True:
        left = deadline.left()
        if left <= 0:
            return None
        sock.settimeout(left)
        try:
            chunk = sock.recv(MiB)
        except socket.timeout:
            return None
        except ConnectionResetError:
            return b"".join(chunks)
        if not chunk:
            return b"".join(chunks)
        chunks.append(chunk)


def http_get(port: int, path: str, timeout: float) -> tuple[int | None, bytes]:
    """(status, body) of one HTTP/1.0 GET; status None if no whole reply came in time
    (or the connection was refused)."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
            sock.sendall(f"GET {path} HTTP/1.0\r\n\r\n".encode())
            reply = read_to_eof(sock, timeout)
    except OSError:
        return None, b""
    if not reply or not reply.startswith(b"HTTP/"):
        return None, reply or b""
    head, _, body = reply.partition(b"\r\n\r\n")
    return int(head.split()[1]), body


@contextlib.contextmanager
def idle_clients(port: int, count: int):
    """`count` connections that never send anything (closed at the end)."""
    socks = []
    try:
        for _ in range(count):
            socks.append(socket.create_connection(("127.0.0.1", port), timeout=T(5)))
        yield socks
    finally:
        for sock in socks:
            sock.close()


def listeners(port: int) -> list[tuple[str, int]]:
    """(address, accept-queue length) of each IPv4 socket listening on `port`."""
    return [(s.local_address, s.rx_queue) for s in procfs.tcp_sockets(("tcp",))
            if s.state == procfs.LISTEN and s.local_port == port]


def big_text(n: int) -> bytes:
    """The first n bytes of course-httpd's /big text: 64-byte numbered lines."""
    lines = n // 64 + 1
    text = "".join(f"{i:08d} the quick brown fox jumps over the lazy dog 0123456789\n"
                   for i in range(1, lines + 1))
    return text.encode()[:n]


def exit_text(server) -> str:
    code = server.proc.poll()
    if code is None:
        return "running"
    return f"killed by signal {-code}" if code < 0 else f"exit status {code}"


# ---- course-httpd ------------------------------------------------------------------------

def test_hardening_httpd_closes_silent_and_dribbling_clients_at_the_deadline():
    """A client that sends nothing, and one that sends its request a byte every 0.5 s,
    each lose their connection (408) once the request deadline has passed."""
    with start_server(program(COURSE_HTTPD)) as server:
        silent = socket.create_connection(("127.0.0.1", server.port), timeout=T(5))
        slow = socket.create_connection(("127.0.0.1", server.port), timeout=T(5))
        started = time.monotonic()
        stop = threading.Event()

        def dribble():   # a whole request would take a minute at this pace
            for byte in b"GET /small HTTP/1.0\r\nX-Padding: " + b"x" * 100 + b"\r\n\r\n":
                if stop.wait(0.5):
                    return
                try:
                    slow.send(bytes([byte]))
                except OSError:
                    return

        sender = threading.Thread(target=dribble, daemon=True)
        sender.start()
        try:
            limit = REQUEST_SECONDS + T(5)
            silent_reply = read_to_eof(silent, limit)
            silent_after = time.monotonic() - started
            slow_reply = read_to_eof(slow, max(0.1, started + limit - time.monotonic()))
            slow_after = time.monotonic() - started
        finally:
            stop.set()
            sender.join(timeout=T(5))
            silent.close()
            slow.close()
        assert silent_reply is not None, \
            f"a silent client was still connected after {silent_after:.1f}s: no request deadline"
        assert slow_reply is not None, \
            f"a client sending a byte every 0.5 s was still connected after {slow_after:.1f}s"
        assert silent_after >= REQUEST_SECONDS - 0.5, f"closed too early: after {silent_after:.1f}s"
        assert silent_reply.startswith(b"HTTP/1.0 408 "), silent_reply[:60]
        assert server.alive(), exit_text(server)
        note(f"silent client closed after {silent_after:.1f}s, dribbling one after {slow_after:.1f}s")


def test_hardening_httpd_serves_at_most_64_clients_at_once():
    """100 idle clients: 64 are served by a thread each, the others wait in the listen
    backlog; once they leave, the server answers at once."""
    count = MAX_CLIENTS + 36
    with start_server(program(COURSE_HTTPD)) as server:
        pid = server.pid
        with idle_clients(server.port, count):
            def settled():   # each client has its thread, or waits to be accepted
                waiting = sum(queue for _, queue in listeners(server.port))
                return procfs.threads(pid) - 1 + waiting >= count
            wait_until(settled, T(10), f"course-httpd to take in {count} clients")
            serving = procfs.threads(pid) - 1
            assert serving <= MAX_CLIENTS, \
                f"{serving} connection threads for {count} idle clients (want at most {MAX_CLIENTS})"
        started = time.monotonic()
        status, _ = http_get(server.port, "/small", T(10))
        waited = time.monotonic() - started
        assert status == 200, f"after the idle clients left: no reply within {waited:.1f}s"
        note(f"{serving} threads for {count} idle clients; /small after they left in {waited * 1000:.0f} ms")


def test_hardening_httpd_survives_idle_clients_under_a_200_MB_address_limit():
    """prlimit --as=200000000: 50 idle clients (the old server aborted at about 24, when a
    thread's stack could not be mapped), then a request."""
    wrapper = ["prlimit", "--as=200000000"]
    with start_server(program(COURSE_HTTPD), wrapper=wrapper) as server:
        connected = 0
        with contextlib.ExitStack() as stack:
            try:
                for _ in range(50):
                    stack.enter_context(socket.create_connection(("127.0.0.1", server.port), timeout=T(5)))
                    connected += 1
            except OSError:
                pass
            status, _ = http_get(server.port, "/small", T(10))
            peak = (procfs.status_bytes(server.pid, "VmPeak") // 1024) if server.alive() else None
        assert server.alive() and status == 200, \
            f"with {connected} idle clients: course-httpd {exit_text(server)}, /small got {status}"
        note(f"50 idle clients and /small served; VmPeak {peak / 1024:.0f} MiB")


def test_hardening_httpd_refuses_a_client_when_no_thread_can_be_made():
    """The address-space limit lowered under a running server to just above what it
    maps: idle clients take the few threads that fit, the next ones are refused (503),
    and the server goes on; with the limit lifted, it serves again."""
    with start_server(program(COURSE_HTTPD)) as server:
        pid = server.pid
        size = procfs.status_bytes(pid, "VmSize")
        hard = resource.prlimit(pid, resource.RLIMIT_AS)[1]
        resource.prlimit(pid, resource.RLIMIT_AS, (size + 2 * MiB, hard))
        held, refused = 0, False
        with contextlib.ExitStack() as stack:
            for _ in range(30):
                try:
                    sock = socket.create_connection(("127.0.0.1", server.port), timeout=T(5))
                except OSError:
                    break
                stack.enter_context(sock)
                held += 1
                # Served by a thread (open, silent) or refused (503, closed)?
                sock.settimeout(0.2)
                try:
                    refused = sock.recv(100).startswith(b"HTTP/1.0 503 ")
                except socket.timeout:
                    refused = False
                except OSError:
                    refused = True
                if refused or not server.alive():
                    break
            alive_then = server.alive()
            threads_then = procfs.threads(pid) - 1 if alive_then else 0
        assert alive_then and refused, \
            f"after {held} idle clients: course-httpd {exit_text(server)}, none refused"
        resource.prlimit(pid, resource.RLIMIT_AS, (hard, hard))
        status, _ = http_get(server.port, "/small", T(10))
        assert status == 200, f"once threads could be made again: {status}"
        note(f"{threads_then} threads fitted, client {held} was refused with 503; then served again")


def test_hardening_httpd_writes_a_64_MiB_body_in_constant_memory():
    """/bytes/67108864 is written piece by piece: the server's peak resident memory
    grows by far less than the body, and the bytes are still /big's."""
    with start_server(program(COURSE_HTTPD)) as server:
        pid = server.pid
        status, small = http_get(server.port, "/bytes/1000", T(10))
        assert status == 200 and small == big_text(1000)
        before = (procfs.status_bytes(pid, "VmHWM") // 1024)
        status, body = http_get(server.port, f"/bytes/{64 * MiB}", T(60))
        grown = ((procfs.status_bytes(pid, "VmHWM") // 1024) - before) / 1024
        assert status == 200 and len(body) == 64 * MiB, (status, len(body))
        assert body == big_text(64 * MiB), "the 64 MiB body is not /big's text"
        assert grown < 8, f"serving a 64 MiB body grew the server's peak memory by {grown:.1f} MiB"
        note(f"peak resident memory grew by {grown:.2f} MiB for a 64 MiB body")


def test_hardening_httpd_out_of_descriptors_does_not_spin():
    """prlimit --nofile=32:32 and 40 idle clients: the server refuses the clients it
    has no descriptor for, uses no CPU and writes a bounded log; then serves again."""
    wrapper = ["prlimit", "--nofile=32:32"]
    with start_server(program(COURSE_HTTPD), wrapper=wrapper) as server:
        pid = server.pid
        with idle_clients(server.port, 40):
            # At its limit (31 or 32 open: the fixed server may have given up its reserve).
            wait_until(lambda: procfs.fd_count(pid) >= 31, T(10), "course-httpd to use its 32 descriptors")
            cpu, log, started = procfs.cpu_seconds(pid), server.err.total, time.monotonic()
            time.sleep(1.0)   # the measuring window, not a synchronisation
            wall = time.monotonic() - started
            cpu = procfs.cpu_seconds(pid) - cpu
            log = server.err.total - log
            assert server.alive(), exit_text(server)
            assert cpu < 0.1 * wall and log < 10_000, \
                f"out of descriptors: {cpu:.2f}s of CPU in {wall:.2f}s, {log} bytes of log"
        status, _ = http_get(server.port, "/small", T(10))
        assert status == 200, f"once the idle clients left: {status}"
        note(f"out of descriptors: {cpu:.2f}s of CPU in {wall:.2f}s, {log} bytes of log; "
             f"{server.err.total} bytes of log in all")


# ---- lesson 15's httpd ---------------------------------------------------------------------

def test_hardening_lesson15_httpd_gives_up_on_a_silent_client():
    """One client at a time: a client that connects and sends nothing holds the next
    one back only until the read timeout, and is closed without a reply."""
    with start_server(program(LESSON_15_HTTPD)) as server:
        with socket.create_connection(("127.0.0.1", server.port), timeout=T(5)) as silent:
            started = time.monotonic()
            status, _ = http_get(server.port, "/", LESSON_15_READ_TIMEOUT + T(10))
            waited = time.monotonic() - started
            assert status == 200, f"the next client got no reply in {waited:.1f}s behind a silent one"
            assert waited < LESSON_15_READ_TIMEOUT + T(2), f"the next client waited {waited:.1f}s"
            assert read_to_eof(silent, T(2)) == b"", "the silent client got a reply, or stayed open"
        note(f"the next client was served after {waited:.1f}s")


def test_hardening_lesson15_httpd_defer_accept_still_serves_at_once():
    """With --defer-accept a silent client never reaches accept() (for its 10 s), so the
    next client is served at once: the read timeout is on the connected socket only."""
    with start_server(program(LESSON_15_HTTPD), args=["--defer-accept"]) as server:
        with socket.create_connection(("127.0.0.1", server.port), timeout=T(5)):
            started = time.monotonic()
            status, _ = http_get(server.port, "/", T(5))
            waited = time.monotonic() - started
        assert status == 200 and waited < T(1), f"status {status} after {waited:.1f}s"


# ---- every server: 127.0.0.1 unless -b -----------------------------------------------------

def servers():
    solutions = sorted((BUILD / "solutions").glob("[0-9][0-9]-*/weensydb"))
    return [COURSE_HTTPD, BUILD / "solutions/02-server-syscalls/echo_server", *solutions, LESSON_15_HTTPD]


@pytest.mark.parametrize("path", servers(), ids=lambda p: "/".join(p.parts[-2:]))
def test_hardening_servers_listen_on_loopback_unless_told(path):
    """Without -b a server listens on 127.0.0.1 only; with -b ADDRESS, on that address."""
    with start_server(program(path)) as server:
        seen = [ip for ip, _ in listeners(server.port)]
        assert seen == ["127.0.0.1"], f"{path.name} -p 0 listens on {seen}"
    with start_server(program(path), args=["-b", "127.0.0.2"]) as server:
        seen = [ip for ip, _ in listeners(server.port)]
        assert seen == ["127.0.0.2"], f"{path.name} -p 0 -b 127.0.0.2 listens on {seen}"


# ---- the checker's temporary files -------------------------------------------------------------

@pytest.fixture
def private_tmp(monkeypatch):
    """A temporary folder of this test's own, used by tempfile (and TMPDIR) meanwhile:
    other runs on the machine cannot add to it, so whatever is left there is ours."""
    folder = pathlib.Path(tempfile.mkdtemp(prefix="hardening-tmp-"))
    monkeypatch.setattr(tempfile, "tempdir", str(folder))
    monkeypatch.setenv("TMPDIR", str(folder))
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def test_hardening_capture_leaves_nothing_behind(private_tmp):
    """A capture that ends normally, one in a check that fails, and one interrupted by
    Ctrl-C: no directory is left, and dumpcap is gone."""
    reason = capture_unavailable_reason()
    if reason:
        pytest.skip(reason)
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        captures = []
        with Capture([port]) as cap:
            captures.append(cap)
            socket.create_connection(("127.0.0.1", port), timeout=T(5)).close()
        kinds = [p.kind for p in cap.tcp_packets()]
        assert kinds[:3] == ["SYN", "SYN-ACK", "ACK"], kinds
        for interruption in (AssertionError, KeyboardInterrupt):
            with pytest.raises(interruption):
                with Capture([port]) as cap:
                    captures.append(cap)
                    raise interruption()
    left = sorted(p.name for p in private_tmp.iterdir())
    assert not left, f"{len(left)} entries left in the temporary folder after 3 captures: {left}"
    running = [c for c in captures if c._proc is not None and c._proc.poll() is None]
    assert not running, f"{len(running)} dumpcap processes still running"


def test_hardening_lesson_02_capture_checks_leave_nothing_behind(private_tmp):
    """`run.py solutions 02` for two capture checks, with TMPDIR pointing at a folder of
    its own: afterwards that folder is empty."""
    if capture_unavailable_reason():
        pytest.skip(capture_unavailable_reason())
    argv = [sys.executable, str(ROOT / "checker" / "run.py"), "solutions", "02",
            "--only", "handshake", "--only", "refused_before_listen"]
    proc = spawn(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, cwd=ROOT)
    try:
        out, _ = proc.communicate(timeout=T(120))
    finally:
        kill_group(proc)
    text = out.decode(errors="replace")
    assert proc.returncode == 0 and "✓" in text, text[-2000:]
    left = sorted(p.name for p in private_tmp.iterdir())
    assert not left, f"{len(left)} entries left in TMPDIR by two capture checks: {left}"


def test_hardening_ctrl_c_leaves_nothing_behind(private_tmp):
    """Ctrl-C (SIGINT to the checker's process group) once lesson 02's first check has
    passed: the run ends saying how many checks did not run, with no traceback, no
    process left, and nothing left in its TMPDIR."""
    argv = [sys.executable, str(ROOT / "checker" / "run.py"), "solutions", "02"]
    proc = spawn(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, cwd=ROOT)
    out = b""
    try:
        with selectors.DefaultSelector() as sel:
            sel.register(proc.stdout, selectors.EVENT_READ)
            deadline = waiting.Deadline(T(60))
            while "✓".encode() not in out and not deadline.passed():
                if sel.select(deadline.left()):
                    chunk = os.read(proc.stdout.fileno(), 65536)
                    if not chunk:
                        break
                    out += chunk
        os.killpg(proc.pid, signal.SIGINT)
        rest, _ = proc.communicate(timeout=T(30))
        out += rest
    finally:
        kill_group(proc)
    text = out.decode(errors="replace")
    assert "checks did not run" in text and "Traceback" not in text, text[-1500:]
    left = sorted(p.name for p in private_tmp.iterdir())
    assert not left, f"{len(left)} entries left in TMPDIR after a Ctrl-C: {left}"
    note(next(line for line in text.splitlines() if "checks did not run" in line).strip())
