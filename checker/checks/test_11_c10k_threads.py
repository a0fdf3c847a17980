"""lesson 11 · c10k-threads: what a thread per connection costs, measured

The student's program: `c10k_threads -p PORT -s SERVER_PID [-n STEPS] [--hold]`
opens idle connections to a running WeensyDB v8 (the reference build, started
here) in steps, and prints one row per step from the server's
/proc/PID/status. The checker reads the same file itself while the program
holds its connections, pauses the server to see whether the program waits
for the threads, and starts the server under low limits (open files,
address space) to see the program stop cleanly and name the limit.
"""
import contextlib
import os
import re
import resource
import selectors
import signal
import subprocess
import time

from checker.harness import (Deadline, T, cannot_check, check, fail, note, procfs, run, spawn, start_server,
                             wait_until)
from checker.harness import sandbox
from checker.harness.procs import kill_group, program_lines, program_pid
from checker.harness.target import ROOT, make

PROGRAM = "c10k_threads"
SERVER = ROOT / "build" / "solutions" / "10-weensydb-8" / "weensydb"
EXIT_LIMIT = 3
KERNEL_STACK_KIB = 16
SHELL_SOFT_LIMIT = 1024            # what a shell gives a program: `ulimit -n`
MIB = 1 << 20

ROW = re.compile(r"^\s*(\d+)\s+(\d+)\s+([\d.]+) MiB\s+([\d.]+) MiB\s+([\d.]+) MiB\s+([\d.]+) MiB"
                 r"\s+([-\d.]+)\s+\|\s+([-\d.naif]+) KiB\s+([-\d.naif]+) KiB\s*$")
BASELINE = re.compile(r"before any connection: (\d+) thread\(s\), VmSize ([\d.]+) MiB, "
                      r"VmRSS ([\d.]+) MiB, VmPTE ([\d.]+) MiB")
NAMES_1500 = re.compile(r"open.files limit[^\d\n]{0,30}\b1500\b")
ROW_FORMAT = ("connections  threads  VmSize MiB  VmRSS MiB  VmPTE MiB  kernel-stacks MiB  "
              "µs-per-thread | virtual KiB  in-memory KiB")


# ---- the server and the program ---------------------------------------------

@contextlib.contextmanager
def server(open_files: int | None = None, stack_kib: int | None = None):
    """WeensyDB v8 (the reference), its limits set with prlimit: a soft limit on open
    files (default: the hard limit, so that the server is never what stops a run) under
    the checker's hard limit, no core dump, and optionally the stack size its threads get."""
    hard = procfs.hard_open_files_limit()
    files = open_files or hard
    wrapper = ["prlimit", f"--nofile={files}:{hard}", "--core=0"]
    if stack_kib:
        wrapper.append(f"--stack={stack_kib * 1024}")
    with start_server(SERVER, wrapper=wrapper) as s:
        yield s


def as_from_shell(argv) -> list:
    """argv run as a shell would start it: soft limit 1024 open files, hard limit as ours."""
    return ["prlimit", f"--nofile={SHELL_SOFT_LIMIT}:{procfs.hard_open_files_limit()}", *argv]


def program_argv(target, s, steps, hold=False) -> list:
    argv = [target.binary(PROGRAM), "-p", s.port, "-s", s.pid, "-n", steps]
    return [str(a) for a in argv] + (["--hold"] if hold else [])


def shown(target, argv) -> str:
    argv = [a for a in argv]
    if argv[0] == "prlimit":
        start = 2
        return " ".join([*argv[:start], target.shown(argv[start]), *argv[start + 1:]])
    return " ".join([target.shown(argv[0]), *argv[1:]])


def tried(target, argv, s) -> str:
    return f"{shown(target, argv)}   (the server: {target.shown(SERVER)}, pid {s.pid})"


def output_lines(text: str, limit=24) -> list[str]:
    return program_lines(text.encode(), limit=limit)


def parse_rows(text: str) -> dict[int, dict]:
    rows = {}
    for line in text.splitlines():
        m = ROW.match(line)
        if m:
            c, t, size, rss, pte, kstacks, micros, virt, res = m.groups()
            rows[int(c)] = {"threads": int(t), "size": float(size), "rss": float(rss),
                            "pte": float(pte), "kstacks": float(kstacks), "micros": float(micros),
                            "virtual_each": float(virt), "in_memory_each": float(res)}
    return rows


def parse_baseline(text: str) -> dict | None:
    m = BASELINE.search(text)
    if not m:
        return None
    t, size, rss, pte = m.groups()
    return {"threads": int(t), "size": float(size), "rss": float(rss), "pte": float(pte)}


def proc_status(pid: int) -> dict:
    """Threads and the Vm* fields of /proc/PID/status (one reading), sizes in MiB."""
    fields = procfs.status(pid)
    mib = lambda name: procfs.size_bytes(fields[name]) / MIB   # noqa: E731
    return {"threads": int(fields["Threads"]), "size": mib("VmSize"), "rss": mib("VmRSS"),
            "pte": mib("VmPTE")}


class Running:
    """The program started in the background, its stdout read as it comes."""

    def __init__(self, argv):
        self.argv = argv
        self.proc = spawn(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        self.text = ""

    @property
    def pid(self) -> int:
        return program_pid(self.proc)

    def read_until(self, pattern: str | None, timeout: float) -> bool:
        """Reads output until a line matches `pattern`; False at EOF or timeout.
        pattern None: reads to EOF, and says whether it got there."""
        deadline = Deadline(timeout)
        fd = self.proc.stdout.fileno()
        with selectors.DefaultSelector() as sel:
            sel.register(fd, selectors.EVENT_READ)
            while pattern is None or not re.search(pattern, self.text, re.M):
                left = deadline.left()
                if left <= 0 or not sel.select(left):
                    return False
                chunk = os.read(fd, 65536)
                if not chunk:
                    return pattern is None
                self.text += chunk.decode(errors="replace")
        return True

    def finish(self, timeout: float) -> int | None:
        """Closes its stdin, reads the rest; its exit status, or None if it had to be killed."""
        with contextlib.suppress(OSError):
            self.proc.stdin.close()
        self.read_until(None, timeout)
        try:
            code = self.proc.wait(timeout=max(0.1, T(1)))
        except subprocess.TimeoutExpired:
            code = None
        kill_group(self.proc)
        return code


def exit_text(code: int | None, timeout: float) -> str:
    if code is None:
        return f"still running after {timeout:.0f}s, so the checker killed it"
    if code < 0:
        return f"killed by {signal.Signals(-code).name}"
    return f"exit status {code}"


def table_lines(text: str) -> list[str]:
    """The program's table and summary, for a note."""
    lines = text.splitlines()
    start = next((i for i, l in enumerate(lines) if l.startswith("the server in all")), 0)
    return [l for l in lines[start:] if l.strip()]


# ---- the checks -----------------------------------------------------------------

@check("builds (and the reference WeensyDB v8 it measures)")
def test_build(target):
    target.build()
    make([str(SERVER.relative_to(ROOT))], what="the reference WeensyDB v8")


@check("raises its own open-files limit: 1100 connections from a shell's soft limit of 1024",
       needs=["build"])
def test_own_limit(target):
    hard = procfs.hard_open_files_limit()
    if hard < 1200:
        cannot_check(f"this machine's hard limit on open files is {hard}, below 1200",
                     "raise it (ulimit -Hn as root, or LimitNOFILE= in systemd)")
    with server() as s:
        argv = as_from_shell(program_argv(target, s, "1100"))
        result = run(argv, timeout=T(30))
    out = result.stdout.decode(errors="replace")
    rows = parse_rows(out)
    if result.returncode == 0 and 1100 in rows:
        note(next((l for l in out.splitlines() if l.startswith("this program")), "").strip())
        return
    own = "Too many open files" in out or "own open-files limit" in out
    fail("your program stopped at its own open-files limit" if own
         else "your program did not measure 1100 connections",
         tried=tried(target, argv, s),
         expected="exit status 0 and a row for 1100 connections",
         seen=result.exit_description() + ("" if 1100 in rows else "; no row for 1100"),
         details=output_lines(out) + program_lines(result.stderr, limit=4),
         hint=own_limit_hint(out + result.stderr.decode(errors="replace"), hard))


OWN_LIMIT = re.compile(r"this program: may open (\d+) files \(its soft limit was (\d+)")


def own_limit_hint(out: str, hard: int) -> str:
    """The hint for a program that did not raise its open-files limit, by what it did:
    setrlimit() refused, the limits lowered, or left as they were."""
    raise_it = (f"raise the soft limit to the hard limit ({hard} here): getrlimit(), then "
                "rlim_cur = rlim_max, then setrlimit(), before opening any (TODO 1)")
    if "setrlimit" in out and "Invalid argument" in out:
        return ("setrlimit() failed with EINVAL: the soft limit may not be above the hard limit "
                "(RLIM_INFINITY is above any finite one), and only a privileged process (root) may raise "
                "the hard one: "
                + raise_it)
    m = OWN_LIMIT.search(out)
    if m and int(m.group(1)) < int(m.group(2)):
        return (f"your setrlimit() lowered the limit, from {m.group(2)} to {m.group(1)} open files: "
                "an rlimit struct filled from nothing (rlimit{} is 0 and 0) sets both limits to "
                "what it holds, and only a privileged process (root) may raise a hard limit again. Read "
                "the current "
                "limits with getrlimit() first: " + raise_it)
    return (f"each connection is an open file, and a shell's soft limit is {SHELL_SOFT_LIMIT}: "
            + raise_it)


MATCH_HINTS = {
    "TODO 2": "each line of /proc/PID/status is `Name:<spaces>value kB`: "
              "sscanf(line, \"VmRSS: %ld\", …) reads one field (TODO 2)",
    "TODO 3": "connect() returns before the server has started the connection's thread: "
              "wait until Threads reaches 1 + connections before reading the rest (TODO 3)",
    "print_row": "what a connection costs in memory is its share of the growth of VmRSS, of VmPTE "
                 "and of the kernel stacks (16 KiB a thread), each since the baseline: see cost_each()",
}


def close_to(got: float, want: float, slack: float) -> bool:
    return abs(got - want) <= slack


@check("its numbers are the server's: the checker reads /proc/PID/status while it holds 200 connections",
       needs=["build"])
def test_matches_proc(target):
    with server() as s:
        before = proc_status(s.pid)
        argv = program_argv(target, s, "100,200", hold=True)
        prog = Running(argv)
        held = prog.read_until(r"^holding", T(20))
        # The truth: the server once it has a thread for each of the 200 connections.
        wait_until(lambda: procfs.threads(s.pid) >= 201, T(10), "a thread per connection")
        seen = proc_status(s.pid) if held else None
        code = prog.finish(T(10))
    text = prog.text
    if not held:
        fail("your program did not say it was holding its connections",
             tried=tried(target, argv, s),
             expected="two rows (100, 200 connections), then a line `holding 200 connections…`, "
                      "then a wait until stdin closes",
             seen=exit_text(code, T(10)), details=output_lines(text),
             hint="a limit stopped the run? Read its last lines above")
    rows = parse_rows(text)
    base = parse_baseline(text)
    if 200 not in rows or base is None:
        fail("no baseline line or no row for 200 connections in the expected format",
             tried=tried(target, argv, s),
             expected="`before any connection: 1 thread(s), VmSize X MiB, VmRSS X MiB, VmPTE X MiB`, "
                      f"then rows as: {ROW_FORMAT}",
             seen=f"{len(rows)} row(s) recognised", details=output_lines(text),
             hint="keep the output formats of c10k_report.h: the checker reads them")
    row = rows[200]
    problems, todos = [], set()

    def compare(what, got, want, slack, unit="MiB", todo="TODO 2"):
        if not close_to(got, want, slack):
            problems.append(f"{what}: you printed {got:.1f} {unit}, /proc says {want:.1f} {unit} ({todo})")
            todos.add(todo)

    if row["threads"] != seen["threads"]:
        problems.append(f"threads: your row says {row['threads']}, /proc says {seen['threads']} "
                        f"for 200 connections (TODO 3: wait for the thread count)")
        todos.add("TODO 3")
    compare("VmSize, after 200", row["size"], seen["size"], 0.15 + 0.002 * seen["size"])
    compare("VmRSS, after 200", row["rss"], seen["rss"], 0.5 + 0.05 * seen["rss"])
    compare("VmPTE, after 200", row["pte"], seen["pte"], 0.15 + 0.1 * seen["pte"])
    compare("VmSize, before", base["size"], before["size"], 0.15)
    compare("VmRSS, before", base["rss"], before["rss"], 0.5 + 0.1 * before["rss"])
    want_kstacks = seen["threads"] * KERNEL_STACK_KIB / 1024
    if not close_to(row["kstacks"], want_kstacks, 0.1):
        problems.append(f"kernel stacks: you printed {row['kstacks']:.1f} MiB, "
                        f"{seen['threads']} threads × 16 KiB = {want_kstacks:.1f} MiB")
        todos.add("print_row")
    # What one connection added: from the checker's own two readings.
    n = 200
    virtual_each = (seen["size"] - before["size"]) * 1024 / n
    in_memory_each = ((seen["rss"] - before["rss"]) + (seen["pte"] - before["pte"])) * 1024 / n \
        + (seen["threads"] - before["threads"]) * KERNEL_STACK_KIB / n
    compare("virtual per connection", row["virtual_each"], virtual_each, 2 + 0.01 * virtual_each, "KiB")
    compare("in memory per connection (VmRSS + VmPTE + kernel stack)", row["in_memory_each"],
            in_memory_each, 4 + 0.15 * in_memory_each, "KiB", todo="print_row")
    # A row measured too early is wrong in every field: then the wait is the first thing to fix,
    # unless the fields are not read at all.
    order = ["TODO 3", "TODO 2", "print_row"]
    if 0 in (row["size"], row["rss"], base["size"]):
        order = ["TODO 2", "TODO 3", "print_row"]
    if problems:
        fail("your row for 200 connections is not what the server's /proc/PID/status says",
             tried=tried(target, argv, s) + f"; then the checker read /proc/{s.pid}/status",
             expected="threads exactly; VmSize, VmRSS, VmPTE as /proc says (to rounding, and a little "
                      "drift); kernel stacks = threads × 16 KiB",
             seen=problems[0], details=problems[1:] + output_lines(text, limit=12),
             hint=MATCH_HINTS[next(t for t in order if t in todos)])
    note(f"/proc/{s.pid}/status with 200 connections: {seen['threads']} threads, "
         f"VmSize {seen['size']:.1f} MiB, VmRSS {seen['rss']:.1f} MiB, VmPTE {seen['pte']:.1f} MiB: "
         f"as in your row")


@check("keeps no file open but its connections (checked while it holds 100)", needs=["build"])
def test_closes_files(target):
    """Every /proc file the program opens must be closed again: it reads them thousands of
    times, and a file left open each time brings it to its own open-files limit."""
    with server() as s:
        argv = program_argv(target, s, "100", hold=True)
        prog = Running(argv)
        held = prog.read_until(r"^holding", T(20))
        files = open_files_of(prog.pid) if held else {}
        code = prog.finish(T(10))
    if not held:
        fail("your program did not say it was holding its connections",
             tried=tried(target, argv, s),
             expected="a row for 100 connections, then `holding 100 connections…`",
             seen=exit_text(code, T(10)), details=output_lines(prog.text),
             hint="a limit stopped the run? Read its last lines above")
    sockets = sum(n for target_, n in files.items() if target_.startswith("socket:"))
    others = {t: n for t, n in files.items() if not t.startswith(("socket:", "pipe:", "/dev/"))}
    if others:
        listed = "; ".join(f"{t}{f' ({n} times)' if n > 1 else ''}" for t, n in sorted(others.items()))
        fail(f"your program keeps {sum(others.values())} file(s) open besides its connections",
             tried=tried(target, argv, s) + f"; then the checker listed /proc/{prog.pid}/fd",
             expected="100 sockets, and standard input, output and error",
             seen=f"{sockets} sockets, and {listed}",
             hint="every fopen() needs its fclose(), on every way out of the function: a "
                  "`return` from inside the loop that reads the file skips the fclose() after it "
                  "(read_limit, TODO 4; read_status). Each file left open takes a descriptor, "
                  "and the program stops sooner at its own open-files limit")
    note(f"while holding: {sockets} sockets and standard input, output, error; nothing else open")


def open_files_of(pid: int) -> dict[str, int]:
    """{what a descriptor points to: how many of the process's descriptors do} (/proc/PID/fd)."""
    counts: dict[str, int] = {}
    for target_ in procfs.open_fds(pid):
        key = "socket:" if target_.startswith("socket:") else target_
        counts[key] = counts.get(key, 0) + 1
    return counts


@check("waits for the server's threads before it measures (the server is paused for 0.3 s)",
       needs=["build"])
def test_waits_for_threads(target):
    pause = 0.3
    with server() as s:
        argv = program_argv(target, s, "50")
        os.kill(s.pid, signal.SIGSTOP)
        try:
            prog = Running(argv)
            started = prog.read_until(r"^before any connection", T(10))
            queued = started and wait_until(lambda: procfs.accept_queue(s.port) >= 50, T(10),
                                            "50 connections in the listen queue")
            if queued:
                time.sleep(pause)
        finally:
            os.kill(s.pid, signal.SIGCONT)
        code = prog.finish(T(20))
    text = prog.text
    rows = parse_rows(text)
    what = ("with the server stopped (SIGSTOP), your program opened 50 connections; 0.3 s after the "
            "last one was queued, the checker let the server go on (SIGCONT)")
    if not queued:
        fail("your program did not open 50 connections", tried=tried(target, argv, s),
             expected="the baseline line, then 50 connections in the server's listen queue",
             seen=exit_text(code, T(20)), details=output_lines(text),
             hint="read the output above: which call failed?")
    if code != 0 or 50 not in rows:
        fail("your program did not measure the step of 50 connections", tried=what,
             expected="exit status 0 and a row for 50 connections", seen=exit_text(code, T(20)),
             details=output_lines(text),
             hint="a server that is slow to start its threads is not a limit: wait while the "
                  "count still grows")
    row = rows[50]
    took = row["micros"] * 50 / 1e6
    if row["threads"] != 51:
        waited = took >= 0.02   # it waited, but for a time of its own, not for the threads
        fail(f"your row says {row['threads']} thread(s) for 50 connections: it was measured "
             "before the server had started them", tried=what,
             expected="51 threads (one per connection, and main) in the row",
             seen=f"{row['threads']} thread(s)" + (f", after a step of {took * 1000:.0f} ms" if waited else ""),
             details=output_lines(text, limit=8),
             hint=(f"your program waited about {took * 1000:.0f} ms and then measured anyway: a fixed "
                   "pause is a guess, and here the server was paused longer. Read" if waited else
                   "connect() returns once the kernel has completed the handshake, before the server "
                   "accepts: read") + " /proc/PID/status again and again until Threads reaches "
                                      "1 + connections (TODO 3)")
    if took < pause * 0.8:
        fail(f"your µs per thread ({row['micros']:.1f}) says the 50 threads took {took * 1000:.1f} ms, "
             f"but the server was paused {pause * 1000:.0f} ms before it could start them",
             tried=what, expected=f"at least {pause * 0.8 * 1e6 / 50:.0f} µs per thread",
             seen=f"{row['micros']:.1f} µs per thread", details=output_lines(text, limit=8),
             hint="time the step from its first connect() to the moment the server's thread count "
                  "reaches the target, then divide by the connections it added")
    note(f"51 threads in the row, {row['micros']:.0f} µs per thread (the server was paused "
         f"{pause * 1000:.0f} ms)")


@check("measures 1,000 to 10,000 idle connections, started with a shell's limit of 1024 open files",
       needs=["own_limit", "waits_for_threads"])
def test_full_run(target):
    with server() as s:
        argv = as_from_shell(program_argv(target, s, "1000,2000,5000,10000"))
        result = run(argv, timeout=T(90))
    out = result.stdout.decode(errors="replace")
    rows = parse_rows(out)
    if result.returncode == 0 and set(rows) >= {1000, 2000, 5000, 10000}:
        wrong = [f"{c} connections, {r['threads']} threads" for c, r in rows.items() if r["threads"] != c + 1]
        if wrong:
            fail("a row's thread count is not one per connection (and main)",
                 tried=tried(target, argv, s), expected="threads = connections + 1 in every row",
                 seen="; ".join(wrong), details=output_lines(out),
                 hint="measure only once the server's thread count has reached its target (TODO 3)")
        note(f"every step ran in {result.seconds:.1f} s; your table:")
        for line in table_lines(out):
            note("  " + line)
        return
    stop = out[out.find("stopped:"):] if "stopped:" in out else ""
    own_limit = "own open-files limit" in stop or "socket: Too many open files" in out
    hard = procfs.hard_open_files_limit()
    machine = min(hard, procfs.sysctl_int("kernel.threads-max", 1 << 30),
                  procfs.sysctl_int("kernel.pid_max", 1 << 30))
    if result.returncode == EXIT_LIMIT and stop and machine < 10_100 and not own_limit:
        note(f"this machine's limits stop the run (hard open-files {hard}, threads-max and "
             "pid_max), and your program says which:")
        for line in table_lines(out):
            note("  " + line)
        return
    if own_limit:
        what = "your program stopped at its own open-files limit"
        hint = (f"raise the soft limit to the hard limit ({hard} here), "
                "not to a number of your own (TODO 1)")
    elif result.timed_out:
        what = f"your program did not finish in {T(90):.0f}s"
        hint = "every wait needs a deadline: the thread count may stop growing (TODO 3)"
    else:
        what = "your program did not measure all four steps"
        hint = "read its last lines above: what stopped it?"
    fail(what, tried=tried(target, argv, s),
         expected="exit status 0 and rows for 1000, 2000, 5000 and 10000 connections",
         seen=f"{result.exit_description()}; rows for {sorted(rows) or 'none'}",
         details=output_lines(out), hint=hint)


@check("stops at the server's open-files limit, and names it (the server's soft limit: 1500 files)",
       needs=["waits_for_threads"])
def test_server_fd_limit(target):
    with server(open_files=1500) as s:
        argv = program_argv(target, s, "1000,2000")
        result = run(argv, timeout=T(12))
    out = result.stdout.decode(errors="replace")
    rows = parse_rows(out)
    stop = out[out.find("stopped:"):] if "stopped:" in out else ""
    problems = []
    if result.timed_out:
        problems.append(result.exit_description())
    elif result.returncode != EXIT_LIMIT:
        problems.append(f"{result.exit_description()}, not {EXIT_LIMIT} (a limit stopped the run)")
    if 1000 not in rows:
        problems.append("no row for 1000 connections (the server can hold those)")
    if 2000 in rows:
        problems.append(f"a row for 2000 connections, with {rows[2000]['threads']} threads: "
                        "the server cannot hold that many")
    if not result.timed_out and not NAMES_1500.search(stop):
        problems.append("no `stopped:` line naming the server's open-files limit, 1500")
    hard = procfs.hard_open_files_limit()
    named_hard = re.search(rf"may open {hard} files|open-files limit is {hard}\b", out)
    if problems:
        fail("your program did not stop cleanly at the server's open-files limit",
             tried=tried(target, argv, s) + f", the server started under prlimit --nofile=1500:{hard}",
             expected=f"a row for 1000; then `stopped: …` naming the server's limit of 1500 "
                      f"open files (\"Max open files\" in /proc/PID/limits); exit status {EXIT_LIMIT}",
             seen=problems[0], details=problems[1:] + output_lines(out),
             hint=(f"your program says the server may open {hard} files: that is its hard limit, "
                   "the second number on the \"Max open files\" line. The soft limit, the first "
                   "number, is the one the kernel enforces (a process may raise it up to the hard "
                   "one): read_limit must return the soft limit (TODO 4)") if named_hard and not result.timed_out else
             "the thread count stops growing when the server's accept() fails with EMFILE: "
             "give up after STALL_SECONDS without growth (TODO 3); read the server's "
             "limit from /proc/PID/limits (TODO 4)")
    note(f"stopped after {result.seconds:.1f} s with exit status {EXIT_LIMIT}, saying:")
    for line in stop.split("\n\n")[0].splitlines():
        note("  " + line.strip())


@check("stops when the server dies for want of address space for one more stack, and says so",
       needs=["waits_for_threads"])
def test_server_dies(target):
    stacks = 20
    stack_kib = 8192
    with server(stack_kib=stack_kib) as s:
        base = proc_status(s.pid)
        # Room for `stacks` more stacks (each 8 MiB and a 4 KiB guard page), and not one more.
        room = int((base["size"] * 1024 + (stacks + 0.5) * (stack_kib + 4)) * 1024)
        sandbox.prlimit(s.pid, resource.RLIMIT_AS, (room, room))
        argv = program_argv(target, s, "60")
        os.kill(s.pid, signal.SIGSTOP)
        try:
            prog = Running(argv)
            started = prog.read_until(r"^before any connection", T(10))
            queued = started and wait_until(lambda: procfs.accept_queue(s.port) >= 60, T(10),
                                            "60 connections in the listen queue")
        finally:
            os.kill(s.pid, signal.SIGCONT)
        code = prog.finish(T(20))
        died = wait_until(lambda: not s.alive(), T(5), "the server's death")
        server_said = s.stderr().decode(errors="replace").strip().splitlines()
    text = prog.text
    what = (f"the server's address space (RLIMIT_AS) has room for {stacks} more thread stacks; your "
            "program opened 60 connections while the server was paused, then the server went on")
    if not queued:
        fail("your program did not open 60 connections", tried=tried(target, argv, s),
             expected="the baseline line, then 60 connections in the server's listen queue",
             seen=exit_text(code, T(20)), details=output_lines(text),
             hint="read the output above: which call failed?")
    if not died:
        cannot_check("the server did not die when its address space ran out",
                     "is the reference WeensyDB v8 built from solutions/10-weensydb-8?")
    stop = text[text.find("stopped:"):] if "stopped:" in text else ""
    if code != EXIT_LIMIT or "died" not in stop:
        fail("your program did not say that the server died", tried=what,
             expected=f"`stopped: the server (pid {s.pid}) died …` and exit status {EXIT_LIMIT}",
             seen=exit_text(code, T(20)) + ("; its `stopped:` line does not say that the server died"
                                           if stop else "; no `stopped:` line"),
             details=output_lines(text) + program_lines("\n".join(server_said[:2]).encode(),
                                                        label="the server"),
             hint="a dead server's /proc/PID/status is gone, or says `State: Z` (a zombie, until its "
                  "parent reaps it): stop waiting at once then (server_gone(), TODO 3)")
    note(f"the server said: {server_said[-1] if server_said else '(nothing)'}")
    note(f"your program: {stop.splitlines()[0].strip()}")
