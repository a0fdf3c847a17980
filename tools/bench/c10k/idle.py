"""bench-c10k's idle phase: what one more idle connection costs a server in memory.

The benchmark opens IDLE[0] connections, then more up to IDLE[1]...; each one
sends `get x` and waits for its `END`, so the server has accepted it and built
all it needs to serve it. Then /proc/PID/status is read again: the growth of
VmRSS (user resident), of threads x 16 KiB kernel stacks plus VmPTE (page
tables), and of VmSize (virtual), per connection.
"""
import collections
import errno
import os
import selectors
import socket
import struct
import time
from dataclasses import dataclass, field

from checker.harness import procfs
from checker.harness.timeouts import T
from checker.harness.waiting import Deadline, wait_until
from tools.bench.toolkit import Running, fmt_bytes, say

from .plan import Server, start

IDLE_STALL = T(10)          # opening idle connections: give up after this long without progress
FD_RESERVE = 64             # descriptors the benchmark keeps for itself (/proc files, pipes)
IDLE_IN_FLIGHT = 200        # connections opened but not answered yet, at most (listen backlogs)
SETTLE_TIMEOUT = T(2)       # waiting for the server's memory figures to stop moving
KERNEL_STACK = 16 * 1024    # THREAD_SIZE: each thread's kernel stack on x86-64 and arm64
FD_SETSIZE = 1024           # glibc's; Python does not export it


@dataclass
class Idle:
    """The server's memory with `wanted` idle connections held."""
    wanted: int
    held: int = 0
    user: float = 0.0           # bytes per connection
    kernel: float = 0.0
    virtual: float = 0.0
    threads: int = 0            # the server's threads, in all
    pte: int = 0                # VmPTE growth, bytes
    kernel_stack_meminfo: float | None = None   # /proc/meminfo KernelStack growth per new thread
    failures: collections.Counter = field(default_factory=collections.Counter)
    limit: str = ""             # short: what stopped it ("FD_SETSIZE", "EMFILE"...)
    problem: str = ""           # long: what happened, for the notes

    def complete(self) -> bool:
        return self.held == self.wanted and not self.problem


# ---- the server's memory --------------------------------------------------------------

def memory(pid: int) -> dict:
    """VmRSS, VmSize, VmPTE in bytes, and Threads, from one reading of /proc/PID/status."""
    status = procfs.status(pid)
    figures = {name: procfs.size_bytes(status.get(name, "")) for name in ("VmRSS", "VmSize", "VmPTE")}
    figures["Threads"] = int(status.get("Threads", "0"))
    return figures


def settled_memory(pid: int) -> dict:
    """The server's figures once two readings 0.1 s apart agree (a thread may still be
    finishing the reply it just sent), or the last one after SETTLE_TIMEOUT."""
    readings = [None]

    def unchanged() -> bool:
        readings.append(memory(pid))
        return readings[-1] == readings[-2]
    wait_until(unchanged, SETTLE_TIMEOUT, "the server's memory figures stop moving", interval=0.1)
    return readings[-1]


# ---- holding idle connections ------------------------------------------------------

class Holder:
    """Idle connections to a server, each of which has sent `get x` and read `END`."""

    REQUEST = b"get x\r\n"

    def __init__(self, port: int):
        self.address = ("127.0.0.1", port)
        self.held: list[socket.socket] = []
        self.selector = selectors.DefaultSelector()

    def grow(self, wanted: int, idle: Idle, server: Running):
        """Opens connections until `wanted` are held, or something stops it: each
        failure is counted in idle.failures, the reason for stopping is idle.limit."""
        pending = {}        # socket -> bytes received so far; None while connecting
        tries_left = wanted - len(self.held)
        stall = Deadline(IDLE_STALL)
        out_of_descriptors = False
        # Descriptors we may still open, keeping a few for /proc files and pipes.
        soft = procfs.open_files_limit()
        room = soft - procfs.fd_count(os.getpid()) - FD_RESERVE
        while len(self.held) < wanted and (pending or (tries_left and not out_of_descriptors)):
            while tries_left and not out_of_descriptors and len(pending) < IDLE_IN_FLIGHT:
                try:
                    if room <= 0:
                        raise OSError(errno.EMFILE, "no descriptor left to spare")
                    s = socket.socket()
                    room -= 1
                except OSError as e:
                    if e.errno in (errno.EMFILE, errno.ENFILE):
                        out_of_descriptors = True
                        idle.limit = "EMFILE"
                        idle.problem = (f"the benchmark's own descriptor limit (ulimit -n: "
                                        f"{soft}) stopped it at {len(self.held) + len(pending):,} "
                                        "connections")
                        break
                    raise
                tries_left -= 1
                s.setblocking(False)
                # Closed with RST, not FIN: no TIME_WAIT left behind by 10,000 connections.
                s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                error = s.connect_ex(self.address)
                if error not in (0, errno.EINPROGRESS):
                    idle.failures[f"connect: {os.strerror(error)}"] += 1
                    s.close()
                    continue
                pending[s] = None
                self.selector.register(s, selectors.EVENT_WRITE)
            if not pending:
                break
            for key, _ in self.selector.select(timeout=1.0):
                s = key.fileobj
                outcome = self._step(s, pending)
                if outcome is None:
                    continue
                stall = Deadline(IDLE_STALL)
                self.selector.unregister(s)
                del pending[s]
                if outcome == "held":
                    self.held.append(s)
                else:
                    idle.failures[outcome] += 1
                    s.close()
            if server.died() is not None:
                idle.problem = (f"the server exited (status {server.died()}) while "
                                "connections were opened")
                break
            if stall.passed():
                idle.failures[f"no reply within {IDLE_STALL:.0f} s"] += len(pending)
                idle.problem = idle.problem or (
                    f"{len(pending)} connections got no reply for {IDLE_STALL:.0f} s: "
                    "the server stopped accepting or answering")
                break
        for s in pending:
            self.selector.unregister(s)
            s.close()
        idle.held = len(self.held)

    def _step(self, s: socket.socket, pending: dict) -> str | None:
        """Advances one connection: "held", a failure's description, or None (not done)."""
        if pending[s] is None:      # connecting: writable means connected, or failed
            error = s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
            if error:
                return f"connect: {os.strerror(error)}"
            try:
                s.send(self.REQUEST)    # 7 bytes into an empty socket buffer: all of it
            except OSError as e:
                return f"send: {e.strerror}"
            pending[s] = b""
            self.selector.modify(s, selectors.EVENT_READ)
            return None
        try:
            data = s.recv(4096)
        except OSError as e:
            return f"recv: {e.strerror}"
        if not data:
            first = pending[s].split(b"\r\n")[0].decode(errors="replace")
            return f"replied `{first}` and closed" if first else "closed without a reply"
        pending[s] += data
        if pending[s] == b"END\r\n":
            return "held"
        if b"\r\n" in pending[s]:
            line = pending[s].split(b"\r\n")[0].decode(errors="replace")
            if line.startswith(("SERVER_ERROR", "CLIENT_ERROR", "ERROR")):
                return f"replied `{line}`"
            return f"unexpected reply `{line[:60]}`"
        return None

    def close(self):
        for s in self.held:
            s.close()
        self.held.clear()
        if self.selector is not None:
            self.selector.close()
            self.selector = None


# ---- one server --------------------------------------------------------------------

def measure_idle(server: Server, counts: list[int]) -> tuple[list, bool]:
    """Idle results for each of `counts`, on one server started for it; and whether the
    server misbehaved (failed to start or died)."""
    running = start(server, max(counts) + 1024)
    if running is None:
        return [Idle(counts[0], limit="failed", problem="the server did not start")], True
    results, misbehaved = [], False
    pid = running.pid
    holder = Holder(running.port)
    try:
        # One connection first, gone before the baseline: one-time costs (the first
        # thread's malloc arena, buffers that are kept) are not counted per connection.
        threads_before = procfs.threads(pid)
        holder.grow(1, Idle(1), running)
        holder.close()
        wait_until(lambda: procfs.threads(pid) == threads_before, SETTLE_TIMEOUT,
                   "the probe connection's thread exits", interval=0.02)
        holder = Holder(running.port)
        base = settled_memory(pid)
        base_stack = procfs.meminfo_bytes("KernelStack")
        for wanted in counts:
            idle = Idle(wanted)
            started = time.monotonic()
            holder.grow(wanted, idle, running)
            if running.died() is not None:
                idle.problem = idle.problem or f"the server exited with status {running.died()}"
                say(f"{server.label}: {idle.problem}", running.output())
                misbehaved = True
                results.append(idle)
                break
            per_connection(idle, base, settled_memory(pid), base_stack,
                           procfs.meminfo_bytes("KernelStack"))
            classify(server, idle)
            took = time.monotonic() - started
            print(f"    {idle.held:,} of {wanted:,} idle connections held in {took:.1f} s: "
                  f"{fmt_bytes(idle.user)} user, {fmt_bytes(idle.kernel)} kernel, "
                  f"{fmt_bytes(idle.virtual)} virtual per connection; threads: {idle.threads:,}",
                  flush=True)
            for failure, count in idle.failures.most_common():
                print(f"      {count:,} × {failure}", flush=True)
            results.append(idle)
            if idle.held < wanted:
                break       # a bigger count would stop at the same limit
    finally:
        holder.close()
        running.stop()
    return results, misbehaved


def per_connection(idle: Idle, base: dict, now: dict, base_stack: int | None,
                   stack: int | None):
    """Fills in idle's figures: the growth from `base` to `now`, per connection held."""
    n = max(idle.held, 1)
    new_threads = now["Threads"] - base["Threads"]
    idle.threads = now["Threads"]
    idle.pte = now["VmPTE"] - base["VmPTE"]
    idle.user = (now["VmRSS"] - base["VmRSS"]) / n
    idle.kernel = (new_threads * KERNEL_STACK + idle.pte) / n
    idle.virtual = (now["VmSize"] - base["VmSize"]) / n
    if new_threads > 100 and stack is not None and base_stack is not None:
        idle.kernel_stack_meminfo = (stack - base_stack) / new_threads


def classify(server: Server, idle: Idle):
    """Names what stopped a measurement short, if anything did."""
    if idle.held == idle.wanted and not idle.failures:
        return
    refusals = [f for f in idle.failures if "too many" in f.lower()]
    if server.uses_select and refusals:
        idle.limit = "FD_SETSIZE"
        idle.problem = (f"held {idle.held:,} of {idle.wanted:,}: select() cannot watch a "
                        f"descriptor of {FD_SETSIZE} or more, and the server refused "
                        f"{sum(idle.failures[f] for f in refusals):,} connections ("
                        + "; ".join(refusals) + ")")
    elif not idle.limit:
        idle.limit = "server limit" if refusals else "failed"
        what = "; ".join(f"{n:,} × {f}" for f, n in idle.failures.most_common(3))
        idle.problem = idle.problem or f"held {idle.held:,} of {idle.wanted:,}: {what}"
