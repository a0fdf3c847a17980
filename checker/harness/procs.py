"""Starting, waiting for and always reaping the programs under test.

Every process the checker starts gets its own process group and dies with
the checker (PR_SET_PDEATHSIG), so nothing is left running after a pass, a
failure, a timeout or a Ctrl-C: kill_all() SIGKILLs every group at exit.

A program can leave its group (setsid) and its parent (a double fork), but not
the jail's PID namespace (sandbox.jail), whose end kills all it holds. Where there
is no jail, each program also carries a mark in its environment, NETCOURSE_OWNER,
which its children inherit, and killing it kills every process that carries its
mark; the checker is then the child subreaper, so orphans come back to it to be
reaped. What a program prints is kept bounded (its first bytes and its last), read
in one pass.
"""
import ctypes
import itertools
import os
import re
import selectors
import signal
import socket
import subprocess
import threading
import time
from dataclasses import dataclass

from . import procfs, sandbox
from .report import CheckFailed
from .timeouts import T
from .waiting import Deadline, wait_until

_live: set[subprocess.Popen] = set()
_libc = ctypes.CDLL(None, use_errno=True)
PR_SET_PDEATHSIG = 1
PR_SET_CHILD_SUBREAPER = 36
OWNER = "NETCOURSE_OWNER"
_spawned = itertools.count(1)

_subreaper_decided = False


def _adopt_orphans_unless_jailed():
    """Without the jail, the orphans of the programs under test (a double fork) are
    reparented to the checker, not to init, so that they can be found and reaped. In the
    jail they never leave its namespace, and the checker adopts nothing: the orphans of
    its own tools (gdb's helper process) go to init, which reaps them."""
    global _subreaper_decided
    if not _subreaper_decided:
        _subreaper_decided = True
        if not sandbox.jail.works() or os.environ.get("NETCOURSE_NO_SANDBOX"):
            _libc.prctl(PR_SET_CHILD_SUBREAPER, 1)


def _die_with_parent():
    # Runs in the child between fork and exec: if the checker dies, so does the child.
    _libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


def spawn(argv, **kwargs) -> subprocess.Popen:
    """Popen in a new process group, marked (NETCOURSE_OWNER) and registered for cleanup;
    a program under test runs in the sandbox (sandbox.wrap)."""
    kwargs.setdefault("stdin", subprocess.DEVNULL)
    mark = f"{os.getpid()}.{next(_spawned)}"
    kwargs["env"] = {**(os.environ if kwargs.get("env") is None else kwargs["env"]), OWNER: mark}
    _adopt_orphans_unless_jailed()
    argv, set_limits = sandbox.prepare([str(a) for a in argv])

    def in_the_child():
        _die_with_parent()
        if set_limits:
            set_limits()
    proc = subprocess.Popen(argv, start_new_session=True, preexec_fn=in_the_child, **kwargs)
    proc._nc_mark = mark
    proc._nc_jailed = str(sandbox.Jail.PATH) in argv
    _live.add(proc)
    return proc


def program_pid(proc: subprocess.Popen) -> int:
    """The pid of the program itself, to look at in /proc or to signal. In the jail
    (tools/programs/jail.cc) that is not the pid the checker started but its grandchild,
    pid 2 of the jail's namespace; found once it has been started, then remembered."""
    if not getattr(proc, "_nc_jailed", False):
        return proc.pid
    if getattr(proc, "_nc_program", None) is None:
        depth = len(procfs.namespace_pids(os.getpid())) + 1
        deadline = Deadline(T(5))
        while (pid := _second_in_namespace(proc.pid, depth)) is None:
            if proc.poll() is not None or deadline.passed():
                return proc.pid
            time.sleep(0.005)   # the jail forks twice: a few milliseconds
        proc._nc_program = pid
    return proc._nc_program


def _second_in_namespace(pid: int, depth: int) -> int | None:
    """The descendant of pid (through wrappers) that is pid 2 of a namespace `depth` deep."""
    generation = [pid]
    for _ in range(6):
        for candidate in generation:
            nspids = procfs.namespace_pids(candidate)
            if len(nspids) == depth and nspids[-1] == 2:
                return candidate
        generation = [child for parent in generation for child in procfs.children(parent)]
    return None


def marked(mark: str) -> list[int]:
    """The processes that carry this mark in their environment (a program and every
    descendant of it that kept its environment, however it forked)."""
    return procfs.with_environment(f"{OWNER}={mark}")


def kill_group(proc: subprocess.Popen, sig=signal.SIGKILL):
    inits = procfs.children(proc.pid) if sig == signal.SIGKILL and getattr(proc, "_nc_jailed", False) else []
    if inits:
        _end_jail_from_inside(proc, inits)
    try:
        os.killpg(proc.pid, sig)
    except (ProcessLookupError, PermissionError):
        pass
    if sig == signal.SIGKILL:
        _kill_marked(proc)
        try:
            proc.wait(timeout=T(5))
        except subprocess.TimeoutExpired:
            pass
        _reap_when_adopted(inits)
        _live.discard(proc)


def _end_jail_from_inside(proc: subprocess.Popen, inits: list[int]):
    """Kills the jail's init (pid 1 of its namespace: the kernel then kills everything in
    the namespace) and lets the jail, still alive, reap it and end. Killing the jail with
    it would orphan init, and its zombie would wait for this machine's pid 1 to reap it:
    measured here, 1.9 s per program stopped."""
    for pid in inits:
        try:
            os.kill(pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
    try:
        proc.wait(timeout=T(1))
    except subprocess.TimeoutExpired:
        pass   # a stopped jail (SIGSTOP to the group): killed with its group, as before


def _reap_when_adopted(pids: list[int]):
    """The jail's init outlives the jail killed under it: it first kills its namespace.
    Waits until it is gone, and reaps it if it came to the checker (a subreaper)."""
    deadline = Deadline(T(5))
    for pid in pids:
        while procfs.alive(pid) and not deadline.passed():
            if procfs.parent(pid) == os.getpid():
                try:
                    os.waitpid(pid, 0)
                except ChildProcessError:
                    pass
                break
            time.sleep(0.005)


def _kill_marked(proc: subprocess.Popen):
    """SIGKILLs whatever the program left behind outside its group, and reaps those the
    checker adopted (as their subreaper)."""
    mark = getattr(proc, "_nc_mark", None)
    if mark is None:
        return
    for _ in range(3):   # a fork bomb may fork again between the scan and the kill
        pids = [pid for pid in marked(mark) if pid != proc.pid]
        if not pids:
            break
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        for pid in pids:
            if procfs.parent(pid) == os.getpid():   # adopted: nobody else will reap it
                try:
                    os.waitpid(pid, 0)             # prompt: it was SIGKILLed
                except ChildProcessError:
                    pass
        # the others are init's to reap; a SIGKILL is delivered at once, but not in no time
        wait_until(lambda: all(procfs.state(pid) in ("Z", "X", "gone") for pid in pids), T(5),
                   "the killed processes gone")


def kill_all() -> list[str]:
    """SIGKILL every process group the checker started and has not reaped, and whatever
    runs as the sandbox's user; returns what was left behind, in words."""
    for proc in list(_live):
        kill_group(proc)
    return sandbox.sweep()


STDOUT_LIMIT = 32 << 20   # a check compares stdout byte for byte: lesson 01's 4 MiB page fits
STDERR_LIMIT = 1 << 20
TAIL = 256 << 10          # and the last bytes, where a crash report or a last error is


class Output:
    """What a program printed on one stream: its first `limit` bytes and its last TAIL
    bytes, with the total count. Memory stays bounded whatever it prints, and each
    byte is handled once."""

    def __init__(self, limit: int, initial: bytes = b""):
        self.limit, self.total = limit, 0
        self._head, self._tail = bytearray(), bytearray()
        self.add(initial)

    def add(self, chunk: bytes):
        self.total += len(chunk)
        room = self.limit - len(self._head)
        if room > 0:
            self._head += chunk[:room]
            chunk = chunk[room:]
        if chunk:
            self._tail += chunk
            if len(self._tail) > 2 * TAIL:
                del self._tail[:-TAIL]

    @property
    def truncated(self) -> bool:
        return self.total > self.limit

    def bytes(self) -> bytes:
        if not self.truncated:
            return bytes(self._head)
        tail = bytes(self._tail[-TAIL:])
        dropped = self.total - len(self._head) - len(tail)
        return bytes(self._head) + (f"\n[… {dropped} bytes not kept …]\n".encode() if dropped else b"") + tail

    def limit_text(self, stream: str) -> str:
        return (f"printed more than {self.limit >> 20} MiB on {stream} ({self.total:,} bytes in all): "
                f"shown truncated")


@dataclass
class RunResult:
    argv: list
    returncode: int | None   # None: killed after the timeout
    stdout: bytes
    stderr: bytes
    timed_out: bool
    seconds: float
    limits: tuple = ()       # the output limits it reached, in words
    activity: str | None = None   # what it was doing when it was killed (run's on_timeout)

    @property
    def command(self) -> str:
        return " ".join(str(a) for a in self.argv)

    def exit_description(self) -> str:
        text = self._how_it_ended()
        return f"{text}; it {' and '.join(self.limits)}" if self.limits else text

    def _how_it_ended(self) -> str:
        if self.timed_out:
            return f"still running after {self.seconds:.1f}s, so the checker killed it with all its children"
        if self.returncode is not None and self.returncode < 0:
            name = signal.Signals(-self.returncode).name
            why = {"SIGSEGV": " (a crash: bad memory access)",
                   "SIGPIPE": " (it wrote to a connection the other side had closed, or never had)",
                   "SIGABRT": " (abort(): a failed assertion or a sanitizer)",
                   "SIGXFSZ": f" (it wrote a file larger than the {sandbox.limits['file_mib']} MiB the "
                              "checker allows)",
                   "SIGXCPU": f" (it used more than the {sandbox.limits['cpu_seconds']} s of CPU the "
                              "checker allows)"}.get(name, "")
            if name == "SIGABRT" and b"std::bad_alloc" in self.stderr:
                why = (" (out of memory: new threw std::bad_alloc; the checker allows "
                       f"{sandbox.limits['address_space_mib']} MiB of address space)") if sandbox.active() \
                    else " (out of memory: new threw std::bad_alloc)"
            return f"killed by {name}{why}"
        return f"exit status {self.returncode}"

    def stderr_lines(self, limit=12) -> list[str]:
        """What it printed on stderr, and then the output limits it reached, if any."""
        return program_lines(self.stderr, limit) + [f"(your program {text})" for text in self.limits]


def program_lines(data: bytes, limit=12, label="your program") -> list[str]:
    """The program's own output, marked so it is never mistaken for the checker's."""
    rows = data.decode(errors="replace").splitlines()
    shown = [f"[{label}] {row[:500]}" for row in rows[:limit]]
    if len(rows) > limit:
        shown.append(f"[{label}] … ({len(rows) - limit} more lines)")
    return shown


def run(argv, timeout: float, input: bytes | None = None, cwd=None, env=None,
        on_timeout=None, grace: float = 0) -> RunResult:
    """Runs argv to completion (or kills it and all its descendants after `timeout` seconds).
    Its output is kept bounded (Output); once it has exited, a descendant that holds its
    output open is not waited for. on_timeout(pid), if given, looks at a program that is
    still running at the timeout, before it is killed; what it returns is the result's
    `activity` (None otherwise). grace: at the timeout, SIGTERM first, and SIGKILL only if
    it has not ended `grace` seconds later (for a program that cleans up after itself)."""
    start = time.monotonic()
    proc = spawn(argv, stdin=subprocess.PIPE if input is not None else subprocess.DEVNULL,
                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=cwd, env=env)
    out, err = Output(STDOUT_LIMIT), Output(STDERR_LIMIT)
    finished = _collect(proc, {proc.stdout.fileno(): out, proc.stderr.fileno(): err},
                        input, Deadline(timeout))
    activity = on_timeout(program_pid(proc)) if on_timeout and not finished else None
    crowd = len(marked(proc._nc_mark)) if not finished and sandbox.limits_processes() else 0
    if not finished and grace:
        kill_group(proc, signal.SIGTERM)
        try:
            proc.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            pass
    kill_group(proc)   # whatever it left behind, in its group or not
    for stream in (proc.stdin, proc.stdout, proc.stderr):
        if stream is not None:
            stream.close()
    limits = tuple(o.limit_text(name) for o, name in ((out, "stdout"), (err, "stderr")) if o.truncated)
    if crowd >= 0.9 * sandbox.limits["processes"]:
        limits += (f"ran {crowd} processes at once, up against the checker's limit of "
                   f"{sandbox.limits['processes']}",)
    if proc.returncode == -signal.SIGKILL and finished and sandbox.cgroups.memory_used_up():
        limits += (f"reached the memory limit ({sandbox.limits['memory_mib']} MiB for the checker's "
                   "programs together): killed by the kernel",)
    return RunResult(list(argv), proc.returncode if finished else None, out.bytes(), err.bytes(),
                     not finished, time.monotonic() - start, limits, activity)


AFTER_EXIT = 1.0   # how long a program's output is still read once it has exited


def _collect(proc, outputs: dict, input: bytes | None, deadline: Deadline) -> bool:
    """Feeds input to proc and reads its outputs until it has exited and its pipes are closed
    (True), or until the deadline (False). Pipes a descendant keeps open are read for
    AFTER_EXIT more seconds after the program exits, no longer."""
    pending = memoryview(input or b"")
    with selectors.DefaultSelector() as sel:
        for fd in outputs:
            sel.register(fd, selectors.EVENT_READ)
        if input is not None:
            os.set_blocking(proc.stdin.fileno(), False)
            sel.register(proc.stdin.fileno(), selectors.EVENT_WRITE)
        exited_at = None
        while sel.get_map():
            if exited_at is None and proc.poll() is not None:
                exited_at = time.monotonic()
            left = deadline.left() if exited_at is None else exited_at + AFTER_EXIT - time.monotonic()
            if left <= 0:
                break
            for key, _ in sel.select(min(left, 0.5)):
                if key.fd in outputs:
                    chunk = os.read(key.fd, 65536)
                    if chunk:
                        outputs[key.fd].add(chunk)
                    else:
                        sel.unregister(key.fd)
                    continue
                try:
                    pending = pending[os.write(key.fd, pending):]
                except BlockingIOError:
                    continue
                except BrokenPipeError:
                    pending = pending[:0]   # it stopped reading: the rest is dropped
                if not pending:
                    sel.unregister(key.fd)
                    proc.stdin.close()
    if exited_at is None:
        try:
            proc.wait(timeout=max(0.0, deadline.left()))
        except subprocess.TimeoutExpired:
            return False
    return True


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

    def __init__(self, proc, argv):
        self.proc, self.argv = proc, argv
        self.port: int | None = None
        self.out = Output(STDOUT_LIMIT)
        self.err = Output(STDERR_LIMIT)
        self.exit_code: int | None = None
        self._drains: list[threading.Thread] = []

    @property
    def stdout(self) -> bytes:
        self._caught_up()
        return self.out.bytes()

    def _caught_up(self):
        """Once the server has exited, what it printed is read to the end before it is shown."""
        if self.proc.poll() is not None:
            for thread in self._drains:
                thread.join(timeout=AFTER_EXIT)

    @property
    def command(self) -> str:
        return " ".join(str(a) for a in self.argv)

    def stderr(self) -> bytes:
        """What it printed on stderr so far (bounded: Output)."""
        self._caught_up()
        return self.err.bytes()

    def drain(self, stream, output: Output):
        """Keeps reading stream into output, so that the server never blocks on a full pipe."""
        thread = threading.Thread(target=_drain, args=(stream, output), daemon=True)
        thread.start()
        self._drains.append(thread)

    @property
    def pid(self) -> int:
        """The server's own pid (not the jail's: program_pid)."""
        return program_pid(self.proc)

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
        self._caught_up()   # (a descendant holding a pipe open is not waited for: killed by stop)
        if not any(thread.is_alive() for thread in self._drains):
            for stream in (self.proc.stdout, self.proc.stderr):
                stream.close()


def start_server(binary, args=(), port: int = 0, wrapper=(), timeout: float | None = None,
                 env: dict | None = None) -> Server:
    """Starts `binary -p PORT args…` and waits for its "port N" line.

    Raises CheckFailed, naming the cause, if the server exits first, prints
    something else, or stays silent for `timeout` seconds. `env`: its environment
    (default: the checker's own)."""
    timeout = T(5) if timeout is None else timeout
    argv = [*wrapper, str(binary), "-p", str(port), *map(str, args)]
    proc = spawn(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    server = Server(proc, argv)
    server.drain(proc.stderr, server.err)
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
        server.out.add(getattr(proc, "_nc_rest", b""))
        server.drain(proc.stdout, server.out)
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


def _drain(stream, output: Output):
    try:
        while chunk := os.read(stream.fileno(), 65536):
            output.add(chunk)
    except (OSError, ValueError):
        pass   # closed under it: the server is being stopped
