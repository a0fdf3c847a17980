"""Which mutexes a program takes, and whether it does network I/O holding one.

A program started with locktrace_env(path) as its environment (env= of run,
spawn or start_server) runs with build/tools/liblocktrace.so preloaded
(tools/programs/lock_trace.cc): every pthread mutex lock and unlock, and every socket read
or write made while a mutex is held, is appended to `path`. No timing is
involved, so a check can prove "the lock is never held across a write()" on any
machine:

    trace = LockTrace(tmp / "locks")
    with start_server(binary, env=locktrace_env(trace.path)) as server:
        ...send request 1, read its reply...
        taken = trace.read_new()          # the lock events request 1 caused
        bad = trace.io_while_locked()     # socket I/O made while holding a mutex

Plain builds only: sanitizer runtimes (ASan, TSan) must be preloaded first and
intercept the same calls.
"""
import os
import pathlib
from dataclasses import dataclass

from . import sandbox
from .target import tool

LIBRARY_NAME = "liblocktrace.so"


@dataclass(frozen=True)
class Event:
    kind: str                 # "lock", "unlock" or "io"
    tid: int                  # the kernel's thread id
    addr: int | None = None   # lock, unlock: the mutex's address
    call: str | None = None   # io: "read", "write", "send", "recvmsg"…
    fd: int | None = None     # io: the socket
    held: tuple[int, ...] = ()   # io: the mutexes the thread held, oldest first

    def describe(self) -> str:
        if self.kind == "io":
            held = ", ".join(hex(a) for a in self.held)
            return f"thread {self.tid}: {self.call}() on socket {self.fd}, holding mutex {held}"
        return f"thread {self.tid}: {self.kind} {hex(self.addr or 0)}"


def parse_line(line: str) -> Event | None:
    """One trace line as an Event; None for a line that is not one (never expected)."""
    fields = line.split()
    try:
        if len(fields) == 3 and fields[0] in ("lock", "unlock"):
            return Event(fields[0], int(fields[1]), addr=int(fields[2], 16))
        if len(fields) == 5 and fields[0] == "io" and fields[4].startswith("held="):
            held = tuple(int(a, 16) for a in fields[4][len("held="):].split(",") if a)
            return Event("io", int(fields[1]), call=fields[2], fd=int(fields[3]), held=held)
    except ValueError:
        pass
    return None


def library() -> pathlib.Path:
    """The preload library, built first if it is missing or out of date."""
    return tool(LIBRARY_NAME).resolve()


def locktrace_env(path, base: dict | None = None) -> dict:
    """An environment (os.environ, or `base`) that preloads the lock tracer, tracing to `path`.

    Pass it as env= to spawn/run/start_server. The file is appended to, so
    several runs may share it; LockTrace reads what each adds."""
    env = dict(os.environ if base is None else base)
    env["LD_PRELOAD"] = str(library())
    sandbox.give(pathlib.Path(path).resolve().parent)
    env["LOCKTRACE_FILE"] = str(pathlib.Path(path).resolve())
    return env


def locktrace_wrapper(path) -> tuple[str, ...]:
    """The same as a command prefix, `env LD_PRELOAD=… LOCKTRACE_FILE=…`, for a
    wrapper= argument, or to show a student the command to run by hand."""
    sandbox.give(pathlib.Path(path).resolve().parent)
    return ("env", f"LD_PRELOAD={library()}", f"LOCKTRACE_FILE={pathlib.Path(path).resolve()}")


class LockTrace:
    """Reads a lock trace file while the traced program is still running."""

    def __init__(self, path):
        self.path = pathlib.Path(path)
        self._offset = 0        # bytes of the file that read_new has already returned

    def read_new(self) -> list[Event]:
        """The events appended since the last call (all of them, the first time).

        Call it once the program has answered a request: every event of that
        request is in the file by then, since each line is written before the
        call it describes returns."""
        try:
            with open(self.path, "rb") as f:
                f.seek(self._offset)
                data = f.read()
        except FileNotFoundError:
            return []
        complete = data[:data.rfind(b"\n") + 1]   # a line is written whole, but be safe
        self._offset += len(complete)
        return _parse(complete)

    def all(self) -> list[Event]:
        """Every event in the file from its start (does not move read_new's place)."""
        try:
            data = self.path.read_bytes()
        except FileNotFoundError:
            return []
        return _parse(data[:data.rfind(b"\n") + 1])

    def io_while_locked(self, events: list[Event] | None = None) -> list[Event]:
        """The socket I/O calls made while holding a mutex: in `events`, or in the whole file."""
        return [e for e in (self.all() if events is None else events) if e.kind == "io"]


def mutexes(events: list[Event]) -> list[int]:
    """The distinct mutexes locked in `events`, in the order first locked."""
    seen: dict[int, None] = {}
    for e in events:
        if e.kind == "lock":
            seen.setdefault(e.addr, None)
    return list(seen)


def _parse(data: bytes) -> list[Event]:
    events = (parse_line(line) for line in data.decode(errors="replace").splitlines())
    return [e for e in events if e is not None]
