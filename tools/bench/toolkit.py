"""What every benchmark in tools/bench shares, so that each script keeps only its measurement.

    from tools.bench.toolkit import ...

    run_main(main, name)        SIGTERM and Ctrl-C stop every process started; exit status
    progress(name), say(...)    "[name] message" lines, and indented ones with a program's output
    BenchServer(label, binary)  a server to measure: a course program or memcached
      .missing(), .start()      why it cannot run (not built, package not installed); start it
    Running                     a started server: .proc, .port, .output(), .died(), .stop()
    start_course_server, start_memcached, wait_ready, stop
    run_wdb_bench(...) -> Load  the course's load generator, once, its --tsv line parsed
    run_program(argv, timeout)  (stdout, stderr, problem) of any other load generator
    text_table, markdown_table  a table of groups of columns, for the terminal and for docs
    fmt_bytes(b)                612, 9.6K, 8.0M
    GeneratedBlock              the "BEGIN ... do not edit by hand" block of a docs/*.md file

Processes are the checker's (checker.harness.procs): each in its own process
group, killed with it, and with this script if it dies. Every wait is
checker.harness.waiting.wait_until with a timeout scaled by
NETCOURSE_TIMEOUT_SCALE (checker.harness.timeouts.T); every /proc read is
checker.harness.procfs.
"""
import contextlib
import os
import pathlib
import shutil
import signal
import subprocess
import sys
import tempfile
from dataclasses import dataclass

from checker.harness import CheckFailed, procfs
from checker.harness.procs import free_port, kill_all, kill_group, program_pid, spawn, start_server
from checker.harness.timeouts import T
from checker.harness.waiting import wait_until

ROOT = pathlib.Path(__file__).resolve().parents[2]
WDB_BENCH = ROOT / "build/tools/wdb_bench"

START_TIMEOUT = T(5)    # from exec to `port N` / listening
STOP_TIMEOUT = T(5)     # from SIGTERM to exit, before SIGKILL
REPLY_TIMEOUT = T(5)    # wdb_bench counts a reply that takes longer as an error
RUN_SLACK = T(30)       # a load generator's setup, its reply timeouts and exit, beyond its run


# ---- running a benchmark -------------------------------------------------------------

def run_main(main, name: str):
    """Runs main() and exits with its status. make (or a CI runner) ends us with SIGTERM:
    it becomes an exception, so `finally` clauses still stop every server; so does Ctrl-C.
    Whatever happens, every process group started is killed before exiting."""
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    try:
        status = main()
    except KeyboardInterrupt:
        kill_all()
        print(f"\n{name}: interrupted; every process was stopped", file=sys.stderr)
        status = 130
    finally:
        kill_all()
    sys.exit(status)


def progress(name: str):
    """A function printing "[name] message" lines at once (they interleave with programs')."""
    def tell(message: str):
        print(f"[{name}] {message}", flush=True)
    return tell


def tail(output: bytes | str | None, count: int = 5) -> list[str]:
    """The last `count` lines a program wrote."""
    if isinstance(output, bytes):
        output = output.decode(errors="replace")
    return (output or "").strip().splitlines()[-count:]


def quoted(lines: list[str]) -> str:
    """A program's lines set off under a message: "\\n      | line" each."""
    return "".join(f"\n      | {line}" for line in lines)


def say(message: str, output: bytes | str | None = None):
    """A progress line and, if given, the last lines a program wrote."""
    print("    " + message + quoted(tail(output)), flush=True)


# ---- what is missing ---------------------------------------------------------------

def installed(name: str) -> str | None:
    """The path of the program `name`: on PATH, or in /usr/sbin (not on every user's PATH)."""
    found = shutil.which(name) or f"/usr/sbin/{name}"
    return found if os.access(found, os.X_OK) else None


def missing_package(name: str, package: str | None = None) -> str:
    """Why program `name` cannot be run ("not installed: apt-get install PACKAGE"), or ""."""
    return "" if installed(name) else f"not installed: apt-get install {package or name}"


def missing_build(binary: pathlib.Path) -> str:
    """Why the course program `binary` (build/DIR/NAME, built from DIR/NAME.cc, as the
    solutions are) cannot be run, or "" if it can: not built yet (make builds it), or
    not written yet (no source for it)."""
    if os.access(binary, os.X_OK):
        return ""
    if not binary.is_relative_to(ROOT / "build"):
        return f"not built yet: {binary} is missing"
    target = binary.relative_to(ROOT)
    source = binary.relative_to(ROOT / "build").with_suffix(".cc")
    if not (ROOT / source).exists():
        return f"not built yet: {source} does not exist"
    return f"not built yet: run `make {target}`"


# ---- servers ---------------------------------------------------------------------

class StartError(Exception):
    """A server could not be started; the message says why."""


def stop(proc: subprocess.Popen):
    """SIGTERM to the process group, then SIGKILL (and reaping) if it lingers."""
    if proc.poll() is None:
        kill_group(proc, signal.SIGTERM)
        try:
            proc.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            pass
    kill_group(proc)


class Running:
    """A server started for one measurement: its process, its port, what it wrote."""

    def __init__(self, proc: subprocess.Popen, port: int, output):
        self.proc, self.port, self._output = proc, port, output
        self.resources = contextlib.ExitStack()    # what stop() releases after the process

    @property
    def pid(self) -> int:
        """The server's own pid (a course server runs in the checker's jail: program_pid)."""
        return program_pid(self.proc)

    def output(self) -> bytes:
        """What the server wrote so far: stderr (a course server), or its log."""
        return self._output()

    def died(self) -> int | None:
        """The exit status, if it has exited."""
        return self.proc.poll()

    def stop(self):
        stop(self.proc)
        self.resources.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()


def wait_ready(running: Running, ready, doing: str, not_done: str,
               timeout: float = START_TIMEOUT):
    """Waits up to `timeout` for ready() (e.g. listening), for a server that cannot say
    so itself. StartError if it exits first ("exited with status N before DOING") or the
    time passes ("NOT_DONE within 5 s"); the server is then stopped."""
    proc = running.proc
    wait_until(lambda: proc.poll() is not None or ready(), timeout, doing)
    problem = (f"exited with status {proc.returncode} before {doing}" if proc.poll() is not None
               else "" if ready() else f"{not_done} within {timeout:.0f} s")
    if problem:
        said = tail(running.output())
        running.stop()
        raise StartError(problem + (f": {said[-1]}" if said else ""))


def start_course_server(binary: pathlib.Path, args=()) -> Running:
    """A course server (WeensyDB, lesson 15's httpd) started with -p 0 and `args`, once it
    has printed `port N`; StartError if it does not."""
    try:
        server = start_server(binary, args=args, timeout=START_TIMEOUT)
    except CheckFailed as failure:
        raise StartError(f"{failure.what} (saw: {failure.seen})" + quoted(failure.details)) \
            from None
    running = Running(server.proc, server.port, server.stderr)
    running.resources.enter_context(server)    # closes its stderr file
    return running


def start_memcached(max_connections: int | None = None) -> Running:
    """memcached -t 1 (one worker thread, like a single event loop) on a free port, once it
    listens. free_port() may be taken by another program before memcached binds it: that
    shows as memcached failing to start."""
    port = free_port()
    # -U 0: no UDP. -c: the connection limit (1024 by default); memcached sets its own
    # RLIMIT_NOFILE to it, and exits if it cannot. As root, memcached refuses to run
    # unless told which user to become.
    argv = [installed("memcached"), "-t", "1", "-l", "127.0.0.1", "-p", port, "-U", "0"]
    if max_connections:
        hard = procfs.hard_open_files_limit()
        argv += ["-c", max_connections if hard < 0 else min(max_connections, hard)]
    if os.geteuid() == 0:
        argv += ["-u", "nobody"]
    log = tempfile.TemporaryFile()

    def output() -> bytes:
        log.seek(0)
        return log.read()
    running = Running(spawn(argv, stdout=log, stderr=log), port, output)
    running.resources.callback(log.close)
    # Reading /proc sends no packet: memcached sees no connection before the measurement's.
    wait_ready(running, lambda: procfs.listening(port), "accepting connections",
               f"accepted no connection on port {port}")
    return running


@dataclass
class BenchServer:
    """A server to measure: a course program (binary, relative to ROOT), or memcached -t 1."""
    label: str
    binary: str | None = None       # None: memcached

    @property
    def is_memcached(self) -> bool:
        return self.binary is None

    def missing(self) -> str:
        """Why it cannot be run, or "" if it can."""
        return missing_package("memcached") if self.is_memcached \
            else missing_build(ROOT / self.binary)

    def start(self, max_connections: int | None = None) -> Running:
        """Started on a free port; StartError if it would not start."""
        return start_memcached(max_connections) if self.is_memcached \
            else start_course_server(ROOT / self.binary)


# ---- load generators -----------------------------------------------------------------

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


def run_program(argv, timeout: float) -> tuple[str, str, str]:
    """(stdout, stderr, problem) of a load generator run to its end; problem is "" if it
    exited 0 or 1 (1: it saw errors, and says so), else why it failed or was killed."""
    proc = spawn(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        return "", "", f"did not finish within {timeout:.0f} s (killed)"
    finally:
        stop(proc)
    if proc.returncode not in (0, 1):
        how = (f"killed by {signal.Signals(-proc.returncode).name}" if proc.returncode < 0
               else f"exit status {proc.returncode}")
        return out, err, f"failed ({how}): {(tail(err, 1) or [how])[0]}"
    return out, err, ""


def run_wdb_bench(port: int, *, connections: int, seconds: float, get_percent: int,
                  value_size: int, keys: int, threads: int | None = None) -> Load:
    """build/tools/wdb_bench once against 127.0.0.1:port; its messages are printed. It
    counts correct replies only, so its numbers stand even with errors (Load.errors)."""
    argv = [WDB_BENCH, "-p", port, "-c", connections, "-d", seconds, "-g", get_percent,
            "-s", value_size, "-k", keys, "--reply-timeout", f"{REPLY_TIMEOUT:g}", "--tsv"]
    if threads:
        argv += ["-t", threads]
    out, err, problem = run_program(argv, seconds + RUN_SLACK)
    for line in err.strip().splitlines()[:12]:
        say(line)
    if problem:
        return Load(problem=f"wdb_bench {problem}")
    # The last stdout line is the --tsv one: ops_per_sec p50_us p99_us errors.
    fields = (tail(out, 1) or [""])[0].split("\t")
    if len(fields) != 4:
        return Load(problem=f"wdb_bench failed: {(tail(err, 1) or ['no --tsv line'])[0]}")
    ops, p50, p99, errors = fields
    return Load(float(ops), float(p50), float(p99), errors=int(errors))


def missing_wdb_bench(name: str) -> str:
    """The message for a missing build/tools/wdb_bench, or ""."""
    if WDB_BENCH.exists():
        return ""
    return (f"{name}: {WDB_BENCH.relative_to(ROOT)} is missing: run `make {name}` "
            f"(or `make {WDB_BENCH.relative_to(ROOT)}`)")


# ---- tables ---------------------------------------------------------------------

def fmt_bytes(b: float) -> str:
    """612, 9.6K, 8.0M: bytes, KiB or MiB, about three significant figures."""
    sign, b = ("-" if b < 0 else ""), abs(b)
    if b < 10000:
        return f"{sign}{b:.0f}"
    if b < 1024 * 1024:
        return f"{sign}{b / 1024:.1f}K" if b < 100 * 1024 else f"{sign}{b / 1024:.0f}K"
    return f"{sign}{b / 1024 / 1024:.1f}M"



def text_table(labels: list[str], groups: list[tuple[str, tuple]], body: list[list[str]]) -> list[str]:
    """The lines of a plain-text table: left-aligned label columns (e.g. "server"), then
    groups of right-aligned columns, each group set off by "  | " under its title (a line
    of titles is printed if any group has one). A body row holding one cell after its
    labels is a note across the groups (e.g. why a server was not run)."""
    n = len(labels)
    columns = [c for _, cols in groups for c in cols]
    full = [r for r in body if len(r) > n + 1 or not columns]
    label_widths = [max(len(r[i]) for r in [labels] + body) + 1 for i in range(n)]
    widths, start = [], n
    for title, cols in groups:
        group = [max([len(c)] + [len(r[start + i]) for r in full]) for i, c in enumerate(cols)]
        spare = len(title) - (sum(group) + len(group) - 1)
        if spare > 0:                       # widen the group to fit its title
            group[0] += spare
        widths.append(group)
        start += len(cols)

    def line(cells) -> str:
        text = "".join(f"{cell:<{w}}" for cell, w in zip(cells, label_widths))
        if len(cells) == n + 1 and columns:
            return f"{text}  | {cells[n]}".rstrip()
        rest = iter(cells[n:])
        for group in widths:
            text += "  | " + " ".join(f"{next(rest):>{w}}" for w in group)
        return text.rstrip()

    lines = []
    if any(title for title, _ in groups):
        lines.append((" " * sum(label_widths) + "".join(
            "  | " + f"{title:^{sum(group) + len(group) - 1}}"
            for (title, _), group in zip(groups, widths))).rstrip())
    lines.append(line(labels + columns))
    lines += [line(r) for r in body]
    return lines


def markdown_table(labels: list[str], groups: list[tuple[str, tuple]], body: list[list[str]]) -> list[str]:
    """The same table in Markdown: each group's title heads its first column."""
    head = labels + [f"{title}: {c}" if i == 0 and title else c
                     for title, cols in groups for i, c in enumerate(cols)]
    lines = ["| " + " | ".join(head) + " |",
             "|" + "---|" * len(labels) + "---:|" * (len(head) - len(labels))]
    for r in body:
        cells = r + [""] * (len(head) - len(r))
        lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    return lines


# ---- docs -----------------------------------------------------------------------

@dataclass
class GeneratedBlock:
    """The part of a docs/*.md file a benchmark writes, between two markers:

        <!-- BEGIN NAME: written by WRITER, do not edit by hand -->
        ...
        <!-- END NAME -->

    write() replaces what is between them and leaves the rest of the file alone."""
    path: pathlib.Path
    name: str           # e.g. "bench-c10k"
    writer: str         # e.g. "tools/bench/c10k"
    title: str          # the file's first line, if it has to be created

    @property
    def begin(self) -> str:
        return f"<!-- BEGIN {self.name}: written by {self.writer}, do not edit by hand -->"

    @property
    def end(self) -> str:
        return f"<!-- END {self.name} -->"

    def write(self, text: str):
        block = f"{self.begin}\n{text}\n{self.end}"
        if self.path.exists():
            old = self.path.read_text()
            if self.begin in old and self.end in old:
                before, rest = old.split(self.begin, 1)
                self.path.write_text(before + block + rest.split(self.end, 1)[1])
            else:
                self.path.write_text(old.rstrip("\n") + "\n\n## The last run\n\n" + block + "\n")
        else:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.path.write_text(f"# {self.title}\n\nWritten by `make {self.name}` "
                                 f"({self.writer}).\n\n{block}\n")
