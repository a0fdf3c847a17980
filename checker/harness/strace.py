"""strace, parsed: which system calls a program made, in order, and what they returned.

    t = trace([binary, "127.0.0.1", port], ["socket", "connect", "recvfrom", "read"])
    t.names()            ['socket', 'connect', 'recvfrom', 'recvfrom', …]
    t.count("recvfrom")  3
"""
import os
import re
import shutil
import tempfile
from dataclasses import dataclass

from . import sandbox
from .procs import RunResult, run
from .report import CannotCheck
from .timeouts import T

# "1234  connect(3, {...}, 16) = -1 ECONNREFUSED (Connection refused)"
LINE = re.compile(r"^(?:\[pid\s+)?(\d+)\]?\s+(\w+)\((.*)\)\s+=\s+(-?\d+|\?)(?:\s+(E[A-Z]+))?")
UNFINISHED = re.compile(r"^(\d+)\s+(\w+)\((.*) <unfinished \.\.\.>$")
RESUMED = re.compile(r"^(\d+)\s+<\.\.\. (\w+) resumed>(.*)\)\s+=\s+(-?\d+|\?)(?:\s+(E[A-Z]+))?")


@dataclass
class Syscall:
    pid: int
    name: str
    args: str
    result: int | None      # None: did not return (the process ended inside it)
    error: str | None       # e.g. "ECONNREFUSED"

    def __str__(self):
        ret = "?" if self.result is None else str(self.result)
        args = self.args if len(self.args) < 60 else self.args[:57] + "..."
        return f"{self.name}({args}) = {ret}{' ' + self.error if self.error else ''}"


@dataclass
class Trace:
    run: RunResult
    calls: list

    def names(self) -> list[str]:
        return [c.name for c in self.calls]

    def count(self, *names) -> int:
        return sum(1 for c in self.calls if c.name in names)

    def first(self, *names):
        return next((c for c in self.calls if c.name in names), None)

    def summary(self, limit=14) -> list[str]:
        """The calls as strace shows them, runs of the same call folded: recvfrom × 12."""
        rows, i = [], 0
        while i < len(self.calls):
            j = i
            while j + 1 < len(self.calls) and self.calls[j + 1].name == self.calls[i].name:
                j += 1
            if j > i:
                rows.append(f"{self.calls[i]}\n  … {self.calls[i].name} × {j - i + 1} in a row, "
                            f"the last: {self.calls[j]}")
            else:
                rows.append(str(self.calls[i]))
            i = j + 1
        lines = "\n".join(rows).splitlines()
        return lines[:limit] + ([f"… ({len(lines) - limit} more lines)"] if len(lines) > limit else [])


def parse(text: str) -> list[Syscall]:
    calls, pending = [], {}
    for line in text.splitlines():
        if m := UNFINISHED.match(line):
            pending[(int(m.group(1)), m.group(2))] = m.group(3)
        elif m := RESUMED.match(line):
            pid, name = int(m.group(1)), m.group(2)
            args = pending.pop((pid, name), "") + m.group(3)
            calls.append(_call(pid, name, args, m.group(4), m.group(5)))
        elif m := LINE.match(line):
            calls.append(_call(int(m.group(1)), m.group(2), m.group(3), m.group(4), m.group(5)))
    for (pid, name), args in pending.items():
        calls.append(Syscall(pid, name, args, None, None))
    return calls


def _call(pid, name, args, result, error) -> Syscall:
    return Syscall(pid, name, args, None if result == "?" else int(result), error)


def strace_prefix(out_path: str, syscalls) -> list[str]:
    """The argv prefix that runs a program under strace, writing to out_path (a file given
    to the sandbox: strace runs in it, with the program it traces)."""
    if shutil.which("strace") is None:
        raise CannotCheck("strace is not installed (Debian package: strace)", "make deps")
    sandbox.give_file(out_path)
    return ["strace", "-f", "-qq", "-s", "24", "-o", out_path, "-e", "trace=" + ",".join(syscalls), "--"]


def trace(argv, syscalls, timeout: float | None = None) -> Trace:
    """Runs argv under strace, tracing only `syscalls`; returns the parsed calls."""
    with tempfile.TemporaryDirectory(prefix="netcourse-strace-") as tmp:
        out = os.path.join(tmp, "trace")
        result = run(strace_prefix(out, syscalls) + [str(a) for a in argv],
                     timeout=T(20) if timeout is None else timeout)
        text = open(out).read() if os.path.exists(out) else ""
    if "ptrace" in result.stderr.decode(errors="replace") and not text:
        raise CannotCheck("strace cannot trace here: " + result.stderr.decode().strip()[:200])
    result.argv = list(argv)
    return Trace(result, parse(text))


def read_trace_file(path: str) -> list[Syscall]:
    return parse(open(path).read()) if os.path.exists(path) else []
