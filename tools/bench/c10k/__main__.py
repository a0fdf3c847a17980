#!/usr/bin/env python3
"""C10K side by side: WeensyDB v8 (threads), select and epoll against memcached -t 1.

    make bench-c10k                          (builds everything, then runs this)
    BENCH_SECONDS=10 BENCH_REPEAT=5 BENCH_CONNECTIONS=100 make bench-c10k
    BENCH_IDLE=1000,5000,10000 make bench-c10k
    /usr/bin/python3 -m tools.bench.c10k --seconds 2 --idle 1000 --no-doc

Every measurement is made on a freshly started server, on a free port:

1. Idle connections: the benchmark opens IDLE[0] connections, then more up to
   IDLE[1]...; each one sends `get x` and waits for its `END`, so the server has
   accepted it and built all it needs to serve it. Then /proc/PID/status is read
   again: the growth of VmRSS (user resident), of threads x 16 KiB kernel stacks
   plus VmPTE (page tables), and of VmSize (virtual), per connection.
2. build/tools/wdb_bench, the course's load generator: CONNECTIONS closed-loop
   connections on CLIENT_THREADS threads for SECONDS, 90% get / 10% set of
   100-byte values, every reply checked: ops/s, p50 and p99 latency.
3. memcaslap (libmemcached-tools), a real memcached load generator, with the
   same connections, threads, seconds, mix and value size: ops/s, and p50/p99
   estimated from its log2 latency histogram (within a factor of 2 at worst).
   Load runs go in REPEAT rounds, every server once per round; the table shows
   the median run.

One table, one row per server; ratios are to memcached's (ops/s ÷ memcached's
in the same round; resident bytes, user + kernel, ÷ memcached's). It is printed,
and written between the markers in docs/c10k-bench.md (not with --no-doc or --only).

This is a benchmark, not a test: numbers vary from run to run, and a limit
that stops a measurement (FD_SETSIZE, EMFILE, a server's own limit) is reported,
not failed. Every process it starts has a timeout and is killed with its whole
process group, Ctrl-C included. Exit status: 0, or 1 if the load generator is
missing or a server that exists failed to start, died, or answered wdb_bench wrongly.
"""
import argparse
import collections
import datetime
import errno
import os
import pathlib
import platform
import re
import resource
import selectors
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field

ROOT = pathlib.Path(__file__).resolve().parents[2]
# The checker's process handling: own process groups, PDEATHSIG, `port N` read with a timeout.
from checker.harness import CheckFailed  # noqa: E402
from checker.harness.procs import free_port, kill_all, kill_group, spawn, start_server  # noqa: E402
from checker.harness.timeouts import SCALE  # noqa: E402  (NETCOURSE_TIMEOUT_SCALE, as the checker reads it)

BENCH = ROOT / "build/tools/wdb_bench"
MEMCACHED = "/usr/bin/memcached"
MEMCASLAP = "/usr/bin/memcaslap"
DOC = ROOT / "docs/c10k-bench.md"
DOC_BEGIN = "<!-- BEGIN bench-c10k: written by tools/bench/c10k.py, do not edit by hand -->"
DOC_END = "<!-- END bench-c10k -->"

START_TIMEOUT = 5 * SCALE   # from exec to `port N` / accepting connections
STOP_TIMEOUT = 5 * SCALE    # from SIGTERM to exit, before SIGKILL
RUN_SLACK = 30 * SCALE      # a load generator's setup, reply timeouts and exit
IDLE_STALL = 10 * SCALE     # opening idle connections: give up after this long without progress
FD_RESERVE = 64             # descriptors the benchmark keeps for itself (/proc files, pipes)
IDLE_IN_FLIGHT = 200        # connections opened but not answered yet, at most (listen backlogs)
SETTLE_TIMEOUT = 2 * SCALE  # waiting for the server's memory figures to stop moving
KERNEL_STACK = 16 * 1024    # THREAD_SIZE: each thread's kernel stack on x86-64 and arm64
GET_PERCENT = 90
VALUE_SIZE = 100
KEYS = 1000                 # wdb_bench's keys; memcaslap keeps its own window of keys


@dataclass
class Server:
    label: str
    binary: str                 # path relative to ROOT, or MEMCACHED
    is_memcached: bool = False
    uses_select: bool = False   # its descriptors must stay below FD_SETSIZE


SERVERS = [
    Server("WeensyDB v8 (threads)", "build/solutions/10-weensydb-8/weensydb"),
    Server("WeensyDB select", "build/solutions/13-select/weensydb", uses_select=True),
    Server("WeensyDB epoll", "build/solutions/14-epoll/weensydb"),
    Server("memcached -t 1", MEMCACHED, is_memcached=True),
]
MEMCACHED_LABEL = SERVERS[-1].label


@dataclass
class Load:
    """One load generator's run against one server."""
    ops_per_sec: float = 0.0
    p50_us: float = 0.0
    p99_us: float = 0.0
    approximate: bool = False   # percentiles read from a log2 histogram
    errors: int = 0             # wrong or error replies
    error_share: float = 0.0    # of all replies counted in ops_per_sec
    short: str = ""             # for the table's cell when its numbers are not to be trusted
    problem: str = ""           # why there are no (trustworthy) numbers, for the notes


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


@dataclass
class Row:
    wdb: Load | None = None
    memcaslap: Load | None = None
    idle: list = field(default_factory=list)      # Idle, one per count
    runs: dict = field(default_factory=dict)      # generator -> every Load, in order
    failed: bool = False                          # the server itself misbehaved
    messages: list = field(default_factory=list)  # notes for under the table


class StartError(Exception):
    """A server could not be started; the message says why."""


def say(message: str, output: bytes | str | None = None):
    """A progress line and, if given, the last lines a program wrote."""
    print("    " + message, flush=True)
    if isinstance(output, bytes):
        output = output.decode(errors="replace")
    for line in (output or "").strip().splitlines()[-5:]:
        print("      | " + line, flush=True)


# ---- processes ------------------------------------------------------------------

def stop(proc: subprocess.Popen):
    """SIGTERM to the process group, SIGKILL (and reaping) if it has not exited in time."""
    kill_group(proc, signal.SIGTERM)
    try:
        proc.wait(STOP_TIMEOUT)
    except subprocess.TimeoutExpired:
        pass
    kill_group(proc)


class Running:
    """A started server: its process, port, and what it wrote so far."""

    def __init__(self, server: Server, max_connections: int):
        self.server = server
        self.log = tempfile.TemporaryFile()
        self.weensydb = None
        try:
            if server.is_memcached:
                self._start_memcached(max_connections)
            else:
                try:
                    self.weensydb = start_server(ROOT / server.binary, timeout=START_TIMEOUT)
                except CheckFailed as failure:
                    raise StartError(f"{failure.what} (saw: {failure.seen})") from None
                self.proc, self.port = self.weensydb.proc, self.weensydb.port
        except BaseException:
            self.log.close()
            raise

    def _start_memcached(self, max_connections: int):
        # free_port() may be taken by another program before memcached binds it:
        # that shows as memcached failing to start.
        self.port = free_port()
        # memcached sets its own RLIMIT_NOFILE to -c, and exits if it cannot.
        _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        if hard != resource.RLIM_INFINITY:
            max_connections = min(max_connections, hard)
        # -t 1: one worker thread, like a single event loop. -U 0: no UDP. -c: the
        # connection limit (1024 by default). As root memcached refuses to run
        # unless told which user to become.
        cmd = [MEMCACHED, "-t", "1", "-l", "127.0.0.1", "-p", str(self.port), "-U", "0",
               "-c", str(max_connections)]
        if os.geteuid() == 0:
            cmd += ["-u", "nobody"]
        self.proc = spawn(cmd, stdout=self.log, stderr=self.log)
        # memcached cannot announce its port: poll it with connect(), boundedly.
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            if self.proc.poll() is not None:
                said = self.output().decode(errors="replace").strip().splitlines()
                raise StartError(f"exited with status {self.proc.returncode} before accepting "
                                 "connections" + (f": {said[-1]}" if said else ""))
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
                return
            except OSError:
                if time.monotonic() > deadline:
                    stop(self.proc)
                    raise StartError(f"accepted no connection on port {self.port} within "
                                     f"{START_TIMEOUT:.0f} s") from None
                time.sleep(0.05)

    def output(self) -> bytes:
        """memcached's stdout and stderr, or a WeensyDB's stderr."""
        if self.weensydb is not None:
            return self.weensydb.stderr()
        self.log.seek(0)
        return self.log.read()

    def died(self) -> int | None:
        return self.proc.poll()

    def stop(self):
        stop(self.proc)
        self.log.close()


def start(server: Server, max_connections: int) -> Running | None:
    try:
        return Running(server, max_connections)
    except StartError as e:
        say(f"{server.label} did not start: {e}")
        return None


# ---- load generators ------------------------------------------------------------

def run_wdb_bench(port: int, args) -> Load:
    cmd = [BENCH, "-p", port, "-c", args.connections, "-t", args.client_threads,
           "-d", args.seconds, "-g", GET_PERCENT, "-s", VALUE_SIZE, "-k", KEYS, "--tsv"]
    out, err, problem = communicate(cmd, args.seconds + RUN_SLACK)
    for line in err.strip().splitlines()[:12]:
        say(line)
    if problem:
        return Load(problem=f"wdb_bench {problem}")
    # The last stdout line is the --tsv one: ops_per_sec p50_us p99_us errors.
    lines = out.strip().splitlines()
    fields = lines[-1].split("\t") if lines else []
    if len(fields) != 4:
        why = err.strip().splitlines()[-1] if err.strip() else "no --tsv line"
        return Load(problem=f"wdb_bench failed: {why}")
    ops, p50, p99, errors = fields
    # wdb_bench counts correct replies only: its numbers stand, errors or not.
    load = Load(float(ops), float(p50), float(p99), errors=int(errors))
    if load.errors:
        load.problem = f"wdb_bench: {errors} wrong or broken replies (messages above)"
    return load


MEMCASLAP_CONFIG = f"""key
16 16 1
value
{VALUE_SIZE} {VALUE_SIZE} 1
cmd
0 {(100 - GET_PERCENT) / 100}
1 {GET_PERCENT / 100}
"""


def run_memcaslap(port: int, args) -> Load:
    """memcaslap, text protocol over TCP, with a configuration file of our own:
    without -F it writes its defaults to ~/.memslap.cnf (the passwd entry's home
    directory, whatever $HOME says)."""
    if not os.access(MEMCASLAP, os.X_OK):
        return Load(problem="memcaslap not installed (apt-get install libmemcached-tools)")
    with tempfile.TemporaryDirectory() as tmp:
        config = pathlib.Path(tmp) / "memcaslap.cnf"
        config.write_text(MEMCASLAP_CONFIG)
        # -S: print statistics (with the latency histogram) once, at the end.
        cmd = [MEMCASLAP, "-s", f"127.0.0.1:{port}", "-t", f"{args.seconds}s",
               "-S", f"{args.seconds}s", "-c", args.connections, "-T", args.client_threads,
               "-F", config]
        out, err, problem = communicate(cmd, args.seconds + RUN_SLACK)
    if problem:
        return Load(problem=f"memcaslap {problem}")
    return parse_memcaslap(out, err)


def parse_memcaslap(out: str, err: str) -> Load:
    """The last line says `Run time: 5.0s Ops: 612345 TPS: 122469 Net_rate: ...`; the
    `Total Statistics (N events)` block ends with `Log2 Dist:`, rows of counts where
    count i of row `r:` is for latencies in (2^(r+i-1), 2^(r+i)] µs. memcaslap prints
    each error reply on a line of its own: `<fd CLIENT_ERROR ...`."""
    tps = re.search(r"Run time: [\d.]+s Ops: \d+ TPS: (\d+)", out)
    if not tps:
        why = (err or out).strip().splitlines()[-1:] or ["no `Run time` line"]
        return Load(problem=f"memcaslap failed: {why[0]}")
    load = Load(float(tps.group(1)), approximate=True)
    histogram = {}
    block = out.split("Total Statistics (", 1)[-1].split("Log2 Dist:", 1)
    if len(block) == 2:
        for line in block[1].splitlines()[1:]:
            m = re.match(r"\s+(\d+):((?:\s+\d+)+)\s*$", line)
            if not m:
                break
            for i, count in enumerate(m.group(2).split()):
                histogram[int(m.group(1)) + i] = int(count)
    if histogram:
        load.p50_us = log2_percentile(histogram, 50)
        load.p99_us = log2_percentile(histogram, 99)
    errors = collections.Counter(line.split(" ", 1)[1].strip() for line in out.splitlines()
                                 if re.match(r"<\d+ \S", line))
    if errors:
        load.errors = sum(errors.values())
        ops = re.search(r"Run time: [\d.]+s Ops: (\d+)", out)
        load.error_share = load.errors / max(int(ops.group(1)), 1)
        common = ", ".join(f"{n:,} × `{text}`" for text, n in errors.most_common(2))
        load.problem = (f"memcaslap got {load.errors:,} error replies, "
                        f"{load.error_share:.0%} of all ({common})")
        # memcaslap counts error replies as operations: the numbers then measure errors.
        load.short = "keys refused" if "bad key" in common else "errors"
    return load


def log2_percentile(histogram: dict, p: float) -> float:
    """The p-th percentile of a log2 histogram, interpolated geometrically within
    its bucket (bucket b holds latencies in (2^(b-1), 2^b] µs)."""
    total = sum(histogram.values())
    rank = p / 100 * total
    seen = 0
    for bucket in sorted(histogram):
        count = histogram[bucket]
        if count and seen + count >= rank:
            low = 2.0 ** (bucket - 1) if bucket > 0 else 0.5
            return low * 2 ** ((rank - seen) / count)
        seen += count
    return 2.0 ** max(histogram)


def communicate(cmd, timeout: float, env=None) -> tuple[str, str, str]:
    """(stdout, stderr, problem) of a load generator; problem is "" if it exited 0 or 1."""
    proc = spawn(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        return "", "", f"did not finish within {timeout:.0f} s (killed)"
    finally:
        stop(proc)
    if proc.returncode not in (0, 1):
        how = (f"killed by {signal.Signals(-proc.returncode).name}" if proc.returncode < 0
               else f"exit status {proc.returncode}")
        why = err.strip().splitlines()[-1] if err.strip() else how
        return out, err, f"failed ({how}): {why}"
    return out, err, ""


# ---- idle connections -------------------------------------------------------------

def proc_status(pid: int) -> dict:
    """VmRSS, VmSize, VmPTE in bytes, and Threads, from /proc/PID/status."""
    values = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            name, _, value = line.partition(":")
            if name in ("VmRSS", "VmSize", "VmPTE"):
                values[name] = int(value.split()[0]) * 1024
            elif name == "Threads":
                values[name] = int(value)
    return values


def kernel_stack_total() -> int | None:
    """/proc/meminfo's KernelStack, the whole machine's, in bytes."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("KernelStack:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def settled_status(pid: int) -> dict:
    """The server's status once two readings 0.1 s apart agree (a thread may still be
    finishing the reply it just sent), or the last one after SETTLE_TIMEOUT."""
    deadline = time.monotonic() + SETTLE_TIMEOUT
    last = proc_status(pid)
    while time.monotonic() < deadline:
        time.sleep(0.1)
        now = proc_status(pid)
        if now == last:
            break
        last = now
    return last


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
        last_progress = time.monotonic()
        out_of_descriptors = False
        # Descriptors we may still open, keeping a few for /proc files and pipes.
        soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
        room = soft - len(os.listdir("/proc/self/fd")) - FD_RESERVE
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
            events = self.selector.select(timeout=1.0)
            for key, _ in events:
                s = key.fileobj
                outcome = self._step(s, pending)
                if outcome is None:
                    continue
                last_progress = time.monotonic()
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
            if time.monotonic() - last_progress > IDLE_STALL:
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


def measure_idle(server: Server, args) -> tuple[list, bool]:
    """Idle results for each count in args.idle, on one server started for it; and
    whether the server misbehaved (failed to start or died)."""
    running = start(server, max(args.idle) + 1024)
    if running is None:
        return [Idle(args.idle[0], limit="failed", problem="the server did not start")], True
    results, misbehaved = [], False
    holder = Holder(running.port)
    try:
        # One connection first, gone before the baseline: one-time costs (the first
        # thread's malloc arena, buffers that are kept) are not counted per connection.
        probe = Idle(1)
        first = proc_status(running.proc.pid)
        holder.grow(1, probe, running)
        holder.close()
        deadline = time.monotonic() + SETTLE_TIMEOUT
        while (proc_status(running.proc.pid)["Threads"] != first["Threads"]
               and time.monotonic() < deadline):
            time.sleep(0.02)
        holder = Holder(running.port)
        base = settled_status(running.proc.pid)
        base_stack = kernel_stack_total()
        for wanted in args.idle:
            idle = Idle(wanted)
            started = time.monotonic()
            holder.grow(wanted, idle, running)
            if running.died() is not None:
                idle.problem = idle.problem or f"the server exited with status {running.died()}"
                say(f"{server.label}: {idle.problem}", running.output())
                misbehaved = True
                results.append(idle)
                break
            now = settled_status(running.proc.pid)
            stack = kernel_stack_total()
            n = max(idle.held, 1)
            new_threads = now["Threads"] - base["Threads"]
            idle.threads = now["Threads"]
            idle.pte = now["VmPTE"] - base["VmPTE"]
            idle.user = (now["VmRSS"] - base["VmRSS"]) / n
            idle.kernel = (new_threads * KERNEL_STACK + idle.pte) / n
            idle.virtual = (now["VmSize"] - base["VmSize"]) / n
            if new_threads > 100 and stack is not None and base_stack is not None:
                idle.kernel_stack_meminfo = (stack - base_stack) / new_threads
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


def classify(server: Server, idle: Idle):
    """Names what stopped a measurement short, if anything did."""
    if idle.held == idle.wanted and not idle.failures:
        return
    refusals = [f for f in idle.failures if "too many" in f.lower()]
    if server.uses_select and refusals:
        idle.limit = "FD_SETSIZE"
        idle.problem = (f"held {idle.held:,} of {idle.wanted:,}: select() cannot watch a "
                        f"descriptor of {socket_fd_setsize()} or more, and the server refused "
                        f"{sum(idle.failures[f] for f in refusals):,} connections ("
                        + "; ".join(refusals) + ")")
    elif not idle.limit:
        idle.limit = "server limit" if refusals else "failed"
        what = "; ".join(f"{n:,} × {f}" for f, n in idle.failures.most_common(3))
        idle.problem = idle.problem or f"held {idle.held:,} of {idle.wanted:,}: {what}"


def socket_fd_setsize() -> int:
    return 1024     # glibc's FD_SETSIZE; Python does not export it


def raise_descriptor_limit() -> tuple[int, int]:
    """Soft RLIMIT_NOFILE up to the hard limit (no privilege needed). The servers
    inherit it; the select server is held back by FD_SETSIZE, not by this."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or soft < hard:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        except (ValueError, OSError):
            pass
    return resource.getrlimit(resource.RLIMIT_NOFILE)


# ---- one server -------------------------------------------------------------------

def load_run(server: Server, which: str, args) -> tuple[Load, bool]:
    """One load generator against a freshly started server; (result, misbehaved)."""
    running = start(server, max(args.connections, 1024) + 64)
    if running is None:
        return Load(problem="did not start"), True
    try:
        load = (run_wdb_bench if which == "wdb_bench" else run_memcaslap)(running.port, args)
        died = running.died()
        output = running.output()
    finally:
        running.stop()
    if died is not None:
        say(f"{server.label} exited with status {died} during the {which} run", output)
        load.problem = load.problem or f"the server exited with status {died} during the run"
        return load, True
    if load.problem:
        say(load.problem)
    # Wrong replies to wdb_bench are the server's fault; memcaslap's error
    # replies may be the protocol subset's (see the notes).
    return load, bool(load.problem) and which == "wdb_bench"


def measure_all(servers: list, args) -> dict:
    """{label: Row}. Idle memory first, server by server; then the load runs in rounds,
    every server once per round, so that a busy moment of the machine (another
    program, a noisy neighbour) falls on all of them alike; each cell is the median run."""
    rows = {s.label: Row() for s in servers}
    for server in servers if args.idle else []:
        print(f"[bench-c10k] {server.label}: {', '.join(f'{n:,}' for n in args.idle)} "
              "idle connections", flush=True)
        row = rows[server.label]
        row.idle, failed = measure_idle(server, args)
        row.failed |= failed
    runs = {(s.label, g): [] for s in servers for g in GENERATORS}
    for round_ in range(1, args.repeat + 1):
        for server in servers:
            for generator in GENERATORS:
                done = runs[(server.label, generator)]
                if done and done[-1].error_share > 0.01:
                    continue    # refused once (memcaslap's keys): it will be again
                load, failed = load_run(server, generator, args)
                result = (f"{load.ops_per_sec:,.0f} ops/s" if not load.problem
                          else "failed" if not load.errors
                          else f"{load.short}: not run again" if load.error_share > 0.01
                          else f"{load.ops_per_sec:,.0f} ops/s, error replies (above)")
                print(f"[bench-c10k] round {round_} of {args.repeat}: {server.label}, "
                      f"{generator}: {result}", flush=True)
                done.append(load)
                rows[server.label].failed |= failed
    for (label, generator), loads in runs.items():
        setattr(rows[label], "wdb" if generator == "wdb_bench" else "memcaslap", median(loads))
        rows[label].runs[generator] = loads
    return rows


GENERATORS = ("wdb_bench", "memcaslap")


def median(loads: list) -> Load | None:
    """The run with the median ops/s (its latencies with it); a failed run, if any failed."""
    if not loads:
        return None
    bad = [load for load in loads if load.problem and not load.errors]
    if bad:
        return bad[0]
    return sorted(loads, key=lambda load: load.ops_per_sec)[(len(loads) - 1) // 2]


def missing_reason(server: Server) -> str:
    """Why this server cannot be run, or "" if it can."""
    if server.is_memcached:
        return "" if os.access(MEMCACHED, os.X_OK) else \
            "not installed: apt-get install memcached"
    if (ROOT / server.binary).exists():
        return ""
    source = server.binary.replace("build/", "", 1) + ".cc"
    if not (ROOT / source).exists():
        return f"not built yet: {source} does not exist"
    return f"not built yet: run `make {server.binary}`"


# ---- the table -----------------------------------------------------------------

def fmt_bytes(b: float) -> str:
    """612, 9.6K, 8.0M: bytes, KiB or MiB, about three significant figures."""
    sign, b = ("-" if b < 0 else ""), abs(b)
    if b < 10000:
        return f"{sign}{b:.0f}"
    if b < 1024 * 1024:
        return f"{sign}{b / 1024:.1f}K" if b < 100 * 1024 else f"{sign}{b / 1024:.0f}K"
    return f"{sign}{b / 1024 / 1024:.1f}M"


def fmt_us(us: float, approximate: bool) -> str:
    text = f"{us:.0f}" if us >= 100 else f"{us:.1f}"
    return "~" + text if approximate else text


def ratio(value: float, reference: float | None) -> str:
    if reference is None or reference <= 0:
        return "-"
    r = value / reference
    return f"{r:.2f}x" if r < 10 else f"{r:.0f}x"


LOAD_COLUMNS = ("ops/s", "p50 µs", "p99 µs", "ratio")
IDLE_COLUMNS = ("user", "kernel", "virtual", "ratio")


def load_cells(runs: list, reference_runs: list) -> list[str]:
    """A server's runs under one generator, and memcached's, round by round."""
    load = median(runs)
    if load is None:
        return [""] * 4
    if load.problem and not load.ops_per_sec:
        return ["failed", "", "", ""]
    if load.error_share > 0.01:
        return [f"n/a ({load.short or 'errors'})", "", "", ""]
    mark = "!" if load.errors else ""   # numbers, but with a few error replies: see the notes
    return [f"{load.ops_per_sec:,.0f}{mark}", fmt_us(load.p50_us, load.approximate),
            fmt_us(load.p99_us, load.approximate), round_ratio(runs, reference_runs)]


def round_ratio(runs: list, reference_runs: list) -> str:
    """The median, over the rounds, of ops/s ÷ memcached's ops/s in the same round: a
    busy moment of the machine slows one round, and both sides of its ratio."""
    ratios = sorted(a.ops_per_sec / b.ops_per_sec for a, b in zip(runs, reference_runs)
                    if b.ops_per_sec > 0 and not b.problem and not (a.problem and not a.errors))
    if not ratios:
        return "-"
    r = ratios[(len(ratios) - 1) // 2] if len(ratios) % 2 else \
        (ratios[len(ratios) // 2 - 1] + ratios[len(ratios) // 2]) / 2
    return f"{r:.2f}x" if r < 10 else f"{r:.0f}x"


def idle_cells(idle: Idle | None, reference: Idle | None, limit: str = "") -> list[str]:
    if idle is None:
        return [f"n/a ({limit})" if limit else "", "", "", ""]
    if not idle.complete():
        return [f"n/a ({idle.limit or 'failed'})", "", "", ""]
    ref = (reference.user + reference.kernel) if reference and reference.complete() else None
    return [fmt_bytes(idle.user), fmt_bytes(idle.kernel), fmt_bytes(idle.virtual),
            ratio(idle.user + idle.kernel, ref)]


def table_rows(rows: dict, missing: dict, args) -> list[list[str]]:
    """[[server, cells...], ...] in SERVERS order; a missing server has one cell."""
    mc = rows.get(MEMCACHED_LABEL)
    out = []
    for server in SERVERS:
        if server.label in missing:
            out.append([server.label, missing[server.label]])
            continue
        row = rows[server.label]
        cells = [server.label]
        for generator in GENERATORS:
            cells += load_cells(row.runs.get(generator, []),
                                mc.runs.get(generator, []) if mc else [])
        by_count = {i.wanted: i for i in row.idle}
        # A count not tried because a smaller one already hit a limit shares its reason.
        stopped = next((i.limit or "failed" for i in row.idle if not i.complete()), "")
        for n in args.idle:
            ref = next((i for i in mc.idle if i.wanted == n), None) if mc else None
            cells += idle_cells(by_count.get(n), ref, stopped)
        out.append(cells)
    return out


def group_titles(args) -> list[tuple[str, tuple]]:
    threads = f"{args.client_threads} thread" + ("s" if args.client_threads != 1 else "")
    titles = [(f"wdb_bench, {args.connections} conns, {threads}", LOAD_COLUMNS),
              (f"memcaslap, {args.connections} conns, {threads}", LOAD_COLUMNS)]
    titles += [(f"{n:,} idle conns, bytes each", IDLE_COLUMNS) for n in args.idle]
    return titles


def print_table(rows: dict, missing: dict, args):
    body = table_rows(rows, missing, args)
    groups = group_titles(args)
    widths = [max(len(r[0]) for r in body) + 1]
    for g, (title, columns) in enumerate(groups):
        cols = [max([len(c)] + [len(r[1 + 4 * g + i]) for r in body if len(r) > 2])
                for i, c in enumerate(columns)]
        spare = len(title) - (sum(cols) + 3)
        if spare > 0:                       # widen the group to fit its title
            cols[0] += spare
        widths += cols

    def line(cells):
        text = f"{cells[0]:<{widths[0]}}"
        for i, cell in enumerate(cells[1:], 1):
            sep = "  | " if (i - 1) % 4 == 0 else " "
            text += sep + f"{cell:>{widths[i]}}"
        return text.rstrip()

    print()
    print(f"C10K: {args.seconds} s per load run, {GET_PERCENT}% get / {100 - GET_PERCENT}% set of "
          f"{VALUE_SIZE}-byte values; idle connections each answered one `get x`")
    header = " " * widths[0]
    for g, (title, _) in enumerate(groups):
        span = sum(widths[1 + 4 * g: 5 + 4 * g]) + 3
        header += "  | " + f"{title:^{span}}"
    print(header.rstrip())
    print(line(["server"] + [c for _, cols in groups for c in cols]))
    for r in body:
        print(line(r) if len(r) > 2 else f"{r[0]:<{widths[0]}}  | {r[1]}")
    print()
    for note in notes(rows, args):
        print("* " + note)


KEY_NOTE = ("memcaslap's keys begin with 8 binary bytes, each with bit 0x10 set "
            "(KEY_PREFIX_MASK 0x1010101010101010), so most hold control characters. memcached "
            "takes any byte in a key but space, CR, LF and NUL; WeensyDB refuses control "
            "characters (`CLIENT_ERROR bad key`), as memcached's protocol.txt says keys must "
            "not hold them. Every set then fails and memcaslap never sends a get: its numbers "
            "would count error replies, so the table leaves them out.")


def notes(rows: dict, args, for_doc: bool = False) -> list[str]:
    """What the table's cells cannot say: limits hit, errors, the kernel-stack check."""
    out = ["ratio: ops/s ÷ memcached's in the same round (the median over the rounds); for idle "
           "connections, resident bytes (user + kernel) ÷ memcached's. ~: estimated from "
           "memcaslap's log2 latency histogram."]
    refused = []
    for label, row in rows.items():
        for load, name in ((row.wdb, "wdb_bench"), (row.memcaslap, "memcaslap")):
            if load and "bad key (control characters)" in load.problem:
                refused.append(f"{label} ({load.errors:,}, {load.error_share:.0%})")
            elif load and load.problem:
                out.append(f"{label}, {name}: {load.problem}"
                           + (" (!: numbers shown, those replies left out)"
                              if load.errors and load.error_share <= 0.01 else ""))
        for idle in row.idle:
            if idle.problem:
                out.append(f"{label}, {idle.wanted:,} idle: {idle.problem}")
            if idle.complete() and idle.threads > idle.wanted:
                check, per_thread = "", idle.kernel_stack_meminfo
                if per_thread is not None and abs(per_thread - KERNEL_STACK) < KERNEL_STACK / 4:
                    check = (f"; /proc/meminfo's KernelStack agrees: "
                             f"+{fmt_bytes(per_thread)} per new thread")
                elif per_thread is not None:
                    check = (f"; /proc/meminfo's KernelStack moved by {fmt_bytes(per_thread)} "
                             "per new thread: other programs started or ended threads meanwhile")
                out.append(f"{label}, {idle.wanted:,} idle: {idle.threads:,} threads; kernel = "
                           f"{fmt_bytes(KERNEL_STACK)} stack per thread + page tables (VmPTE "
                           f"+{fmt_bytes(idle.pte / idle.held)} per connection){check}")
    for generator in GENERATORS if args.repeat > 1 else ():
        spread = [f"{label} " + " ".join(f"{load.ops_per_sec / 1000:.0f}k"
                                          for load in row.runs.get(generator, []))
                  for label, row in rows.items()
                  if row.runs.get(generator) and not row.runs[generator][0].problem]
        if spread:
            out.append(f"{generator}, ops/s of each run (the table shows the median): "
                       + "; ".join(spread))
    if refused:
        out.append("memcaslap got `CLIENT_ERROR bad key (control characters)` from "
                   f"{', '.join(refused)} (how many, and their share of all its replies). "
                   + ("Its keys hold control characters, which WeensyDB refuses: see "
                      "*Limits the benchmark meets* above." if for_doc else KEY_NOTE))
    return out


def markdown(rows: dict, missing: dict, args, machine: str) -> str:
    body = table_rows(rows, missing, args)
    groups = group_titles(args)
    head = ["server"] + [f"{title}: {c}" if i == 0 else c
                         for title, cols in groups for i, c in enumerate(cols)]
    lines = [machine, "",
             f"{args.seconds} s per load run, {GET_PERCENT}% get / {100 - GET_PERCENT}% set of "
             f"{VALUE_SIZE}-byte values, {args.connections} connections on "
             f"{args.client_threads} client thread{'s' if args.client_threads != 1 else ''}; "
             f"idle connections: "
             f"{', '.join(f'{n:,}' for n in args.idle)}.", ""]
    lines.append("| " + " | ".join(head) + " |")
    lines.append("|---|" + "---:|" * (len(head) - 1))
    for r in body:
        cells = r if len(r) > 2 else [r[0], r[1]] + [""] * (len(head) - 2)
        lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    lines.append("")
    lines += [f"- {note}" for note in notes(rows, args, for_doc=True)]
    return "\n".join(lines)


def cpu_busy(seconds: float = 0.5) -> float | None:
    """How busy the CPUs are right now, 0 to 1, from two readings of /proc/stat.
    (The load average would not do: it counts threads that merely woke up, and a
    thread server closing 10,000 connections wakes 10,000 of them.)"""
    def sample():
        with open("/proc/stat") as f:
            values = [int(v) for v in f.readline().split()[1:]]
        return sum(values), values[3] + values[4]     # all, idle + iowait
    try:
        total0, idle0 = sample()
        time.sleep(seconds)
        total1, idle1 = sample()
    except (OSError, ValueError, IndexError):
        return None
    return 1 - (idle1 - idle0) / max(total1 - total0, 1)


def machine_line(busy: float | None) -> str:
    model = ""
    try:
        with open("/proc/cpuinfo") as f:
            model = next((line.split(":", 1)[1].strip() for line in f
                          if line.startswith("model name")), "")
    except OSError:
        pass
    versions = []
    for name, cmd in (("memcached", [MEMCACHED, "-V"]), ("memcaslap", [MEMCASLAP, "-V"])):
        if os.access(cmd[0], os.X_OK):
            try:
                text = subprocess.run(cmd, capture_output=True, text=True, timeout=5).stdout
                versions.append(text.strip().splitlines()[0] if text.strip() else name)
            except (OSError, subprocess.TimeoutExpired):
                pass
    date = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    return (f"Machine: {os.cpu_count()} CPUs ({model or platform.machine()}), Linux "
            f"{platform.release()}, {date}"
            + (f", CPUs {busy:.0%} busy just before the start" if busy is not None else "")
            + "; "
            f"{', '.join(versions)}.")


def write_doc(text: str):
    block = f"{DOC_BEGIN}\n{text}\n{DOC_END}"
    if DOC.exists():
        old = DOC.read_text()
        if DOC_BEGIN in old and DOC_END in old:
            before, rest = old.split(DOC_BEGIN, 1)
            after = rest.split(DOC_END, 1)[1]
            DOC.write_text(before + block + after)
        else:
            DOC.write_text(old.rstrip("\n") + "\n\n## The last run\n\n" + block + "\n")
    else:
        DOC.parent.mkdir(parents=True, exist_ok=True)
        DOC.write_text("# C10K: WeensyDB servers against memcached\n\n"
                       "Written by `make bench-c10k` (tools/bench/c10k.py).\n\n" + block + "\n")
    print(f"[bench-c10k] table written to {DOC.relative_to(ROOT)}")


# ---- main -----------------------------------------------------------------------

def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("-d", "--seconds", type=int,
                        default=os.environ.get("BENCH_SECONDS", "3"),
                        help="length of each load run, in whole seconds "
                             "(default: $BENCH_SECONDS or 3)")
    parser.add_argument("-r", "--repeat", type=int, default=os.environ.get("BENCH_REPEAT", "3"),
                        help="load runs per server and generator; the table shows the median "
                             "(default: $BENCH_REPEAT or 3)")
    parser.add_argument("-c", "--connections", type=int,
                        default=os.environ.get("BENCH_CONNECTIONS", "50"),
                        help="connections per load run (default: $BENCH_CONNECTIONS or 50)")
    parser.add_argument("-t", "--client-threads", type=int,
                        default=os.environ.get("BENCH_CLIENT_THREADS", "1"),
                        help="threads of each load generator (default: $BENCH_CLIENT_THREADS or "
                             "1, so that on 2 CPUs client and single-threaded server get one each)")
    parser.add_argument("-i", "--idle", default=os.environ.get("BENCH_IDLE", "1000,10000"),
                        help="idle connection counts, comma-separated, or 0 for none "
                             "(default: $BENCH_IDLE or 1000,10000)")
    parser.add_argument("--only", action="append", metavar="NAME",
                        help="only the servers whose label contains NAME (repeatable); "
                             "memcached is always measured, for the ratios; the doc is not written")
    parser.add_argument("--no-doc", action="store_true", help=f"do not write {DOC.name}")
    args = parser.parse_args()
    try:
        args.idle = sorted({int(n) for n in str(args.idle).split(",") if int(n) > 0})
    except ValueError:
        parser.error(f"--idle wants counts like 1000,10000, not {args.idle!r}")
    if not 1 <= args.repeat <= 100:
        parser.error("--repeat wants 1 to 100")
    if not 1 <= args.seconds <= 3600:
        parser.error("--seconds wants 1 to 3600")
    if not 1 <= args.connections <= 1000:
        parser.error("--connections wants 1 to 1000 (wdb_bench's limit)")
    if not 1 <= args.client_threads <= args.connections:
        parser.error("--client-threads wants 1 to --connections")
    return args


def main() -> int:
    # make (or a CI runner) ends us with SIGTERM: turn it into an exception so
    # that the `finally` clauses still stop every server.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    args = parse_args()
    if not BENCH.exists():
        print(f"bench_c10k: {BENCH.relative_to(ROOT)} is missing: run `make bench-c10k`",
              file=sys.stderr)
        return 1
    soft, hard = raise_descriptor_limit()
    busy = cpu_busy()
    machine = machine_line(busy)
    print(f"[bench-c10k] {machine}")
    if busy is not None and busy > 0.25:
        print(f"[bench-c10k] other programs keep the CPUs {busy:.0%} busy: ops/s will be lower "
              "and vary more than on an idle machine; memory per connection does not depend "
              "on it", flush=True)
    need = max(args.idle, default=0) + 100
    if args.idle and soft < need:
        print(f"[bench-c10k] open files limited to {soft} (ulimit -n, hard limit {hard}): "
              f"{max(args.idle):,} idle connections need about {need}; the counts above the "
              "limit will say EMFILE", flush=True)
    if not shutil.which("memcaslap") and not os.access(MEMCASLAP, os.X_OK):
        print("[bench-c10k] memcaslap not installed (apt-get install libmemcached-tools): "
              "its columns will say so", flush=True)
    missing = {s.label: why for s in SERVERS if (why := missing_reason(s))}
    for label, why in missing.items():
        print(f"[bench-c10k] {label}: {why}", flush=True)
    chosen = [s for s in SERVERS if s.label not in missing and
              (not args.only or s.is_memcached or any(o.lower() in s.label.lower()
                                                      for o in args.only))]
    rows = {}
    started = time.monotonic()
    try:
        rows = measure_all(chosen, args)
    finally:
        kill_all()
    skipped = {s.label: "not measured (--only)" for s in SERVERS
               if s.label not in missing and s.label not in rows}
    print_table(rows, {**missing, **skipped}, args)
    print(f"\n[bench-c10k] {time.monotonic() - started:.0f} s")
    if args.only:
        print(f"[bench-c10k] --only: {DOC.relative_to(ROOT)} left as it was")
    elif not args.no_doc:
        write_doc(markdown(rows, {**missing, **skipped}, args, machine))
    failed = [label for label, row in rows.items() if row.failed and label != MEMCACHED_LABEL]
    return 1 if failed else 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        print("\nbench_c10k: interrupted; every server was stopped", file=sys.stderr)
        sys.exit(130)
