"""Starting, waiting for and always reaping the programs under test.

Every process the checker starts gets its own process group and dies with
the checker (PR_SET_PDEATHSIG), so nothing is left running after a pass, a
failure, a timeout or a Ctrl-C: kill_all() SIGKILLs every group at exit.
"""
import ctypes
import os
import re
import selectors
import signal
import socket
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass

from .report import CheckFailed
from .timeouts import T
from .waiting import Deadline

_live: set[subprocess.Popen] = set()
_libc = ctypes.CDLL(None, use_errno=True)
PR_SET_PDEATHSIG = 1


def _die_with_parent():
    # Runs in the child between fork and exec: if the checker dies, so does the child.
    _libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


def spawn(argv, **kwargs) -> subprocess.Popen:
    """Popen in a new process group, registered for cleanup."""
    kwargs.setdefault("stdin", subprocess.DEVNULL)
    proc = subprocess.Popen([str(a) for a in argv], start_new_session=True,
                            preexec_fn=_die_with_parent, **kwargs)
    _live.add(proc)
    return proc


def kill_group(proc: subprocess.Popen, sig=signal.SIGKILL):
    try:
        os.killpg(proc.pid, sig)
    except (ProcessLookupError, PermissionError):
        pass
    if sig == signal.SIGKILL:
        try:
            proc.wait(timeout=T(5))
        except subprocess.TimeoutExpired:
            pass
        _live.discard(proc)


def kill_all():
    """SIGKILL every process group the checker started and has not reaped."""
    for proc in list(_live):
        kill_group(proc)


@dataclass
class RunResult:
    argv: list
    returncode: int | None   # None: killed after the timeout
    stdout: bytes
    stderr: bytes
    timed_out: bool
    seconds: float

    @property
    def command(self) -> str:
        return " ".join(str(a) for a in self.argv)

    def exit_description(self) -> str:
        if self.timed_out:
            return f"still running after {self.seconds:.1f}s, so the checker killed it"
        if self.returncode is not None and self.returncode < 0:
            name = signal.Signals(-self.returncode).name
            why = {"SIGSEGV": " (a crash: bad memory access)",
                   "SIGPIPE": " (it wrote to a connection the other side had closed, or never had)",
                   "SIGABRT": " (abort(): a failed assertion or a sanitizer)"}.get(name, "")
            return f"killed by {name}{why}"
        return f"exit status {self.returncode}"

    def stderr_lines(self, limit=12) -> list[str]:
        return program_lines(self.stderr, limit)


def program_lines(data: bytes, limit=12, label="your program") -> list[str]:
    """The program's own output, marked so it is never mistaken for the checker's."""
    rows = data.decode(errors="replace").splitlines()
    shown = [f"[{label}] {row}" for row in rows[:limit]]
    if len(rows) > limit:
        shown.append(f"[{label}] … ({len(rows) - limit} more lines)")
    return shown


def run(argv, timeout: float, input: bytes | None = None, cwd=None, env=None) -> RunResult:
    """Runs argv to completion (or kills its group after `timeout` seconds)."""
    start = time.monotonic()
    proc = spawn(argv, stdin=subprocess.PIPE if input is not None else subprocess.DEVNULL,
                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=cwd, env=env)
    try:
        out, err = proc.communicate(input=input, timeout=timeout)
        timed_out = False
    except subprocess.TimeoutExpired:
        kill_group(proc)
        out, err = proc.communicate()
        timed_out = True
    kill_group(proc)   # reaps any child it left behind in its group
    return RunResult(list(argv), None if timed_out else proc.returncode, out, err, timed_out,
                     time.monotonic() - start)


# ---- ports ------------------------------------------------------------------

def free_port() -> int:
    """A TCP port nobody listens on right now (the kernel's pick)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class closed_port:
    """A port that is bound but not listening: the kernel refuses connections to it
    with RST. Holding the socket keeps anyone else from taking the port.

        with closed_port() as port: ...
    """

    def __enter__(self) -> int:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        return self.sock.getsockname()[1]

    def __exit__(self, *exc):
        self.sock.close()


# ---- servers ------------------------------------------------------------------

PORT_LINE = re.compile(rb"^port (\d{1,5})\n$")


class Server:
    """A server started with -p PORT that announced `port N` on its first stdout line."""

    def __init__(self, proc, argv, stderr_file):
        self.proc, self.argv, self._stderr_file = proc, argv, stderr_file
        self.port: int | None = None
        self.stdout = b""
        self.exit_code: int | None = None

    @property
    def command(self) -> str:
        return " ".join(str(a) for a in self.argv)

    def stderr(self) -> bytes:
        self._stderr_file.seek(0)
        return self._stderr_file.read()

    def alive(self) -> bool:
        return self.proc.poll() is None

    def stop(self, sig=signal.SIGTERM, timeout: float | None = None) -> int | None:
        """Sends sig to the server's process group; returns its exit code, or None if it
        had to be SIGKILLed after `timeout`."""
        if self.proc.poll() is None:
            kill_group(self.proc, sig)
            try:
                self.exit_code = self.proc.wait(timeout=T(5) if timeout is None else timeout)
            except subprocess.TimeoutExpired:
                self.exit_code = None
        else:
            self.exit_code = self.proc.returncode
        kill_group(self.proc)
        return self.exit_code

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop(signal.SIGKILL)
        self._stderr_file.close()


def start_server(binary, args=(), port: int = 0, wrapper=(), timeout: float | None = None,
                 env: dict | None = None) -> Server:
    """Starts `binary -p PORT args…` and waits for its "port N" line.

    Raises CheckFailed, naming the cause, if the server exits first, prints
    something else, or stays silent for `timeout` seconds. `env`: its environment
    (default: the checker's own)."""
    timeout = T(5) if timeout is None else timeout
    argv = [*wrapper, str(binary), "-p", str(port), *map(str, args)]
    stderr_file = tempfile.TemporaryFile()
    proc = spawn(argv, stdout=subprocess.PIPE, stderr=stderr_file, env=env)
    server = Server(proc, argv, stderr_file)
    line = _read_first_line(proc, timeout)
    tried = " ".join(argv[len(wrapper):])

    def give_up(what, seen, hint):
        details = program_lines(server.stderr())
        server.stop(signal.SIGKILL)
        raise CheckFailed(what, tried=tried, expected="a first line `port N` on stdout", seen=seen,
                          hint=hint, details=details)

    match = PORT_LINE.match(line or b"")
    if match and (port == 0 or int(match.group(1)) == port):
        server.port = int(match.group(1))
        threading.Thread(target=_drain, args=(server,), daemon=True).start()
        return server
    if line is None:
        give_up(f"your server printed nothing within {timeout:.0f}s", "(no output)",
                "print the port with announce_port() once listen() has succeeded "
                "(and flush stdout: it is a pipe here, not a terminal)")
    if line == b"":
        give_up("your server exited before it printed its port",
                f"(no output; {_exit_text(proc)})",
                "read what your program printed on stderr above: which call failed?")
    give_up("your server's first line is not `port N` for the port asked for" if match
            else "your server's first line is not `port N`",
            line.decode(errors="replace").rstrip("\n"),
            "the first line on stdout must be exactly `port N`: graders and later lessons read it")


def _exit_text(proc) -> str:
    code = proc.wait(timeout=T(5))
    return f"killed by {signal.Signals(-code).name}" if code < 0 else f"exit status {code}"


def _read_first_line(proc, timeout) -> bytes | None:
    """The first line of proc's stdout; b"" if it closed first; None on timeout."""
    fd = proc.stdout.fileno()
    data = b""
    deadline = Deadline(timeout)
    with selectors.DefaultSelector() as sel:
        sel.register(fd, selectors.EVENT_READ)
        while b"\n" not in data:
            left = deadline.left()
            if left <= 0 or not sel.select(left):
                return None
            chunk = os.read(fd, 4096)
            if not chunk:
                return data   # EOF before a full line: b"" or a partial line
            data += chunk
    first, _, rest = data.partition(b"\n")
    proc._nc_rest = rest
    return first + b"\n"


def _drain(server: Server):
    """Keeps reading the server's stdout so that it never blocks on a full pipe."""
    server.stdout = getattr(server.proc, "_nc_rest", b"")
    try:
        while chunk := os.read(server.proc.stdout.fileno(), 65536):
            server.stdout += chunk
    except OSError:
        pass
