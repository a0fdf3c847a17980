"""Naming what a hung process is stuck on: which thread waits for which mutex, held by whom.

    lines = diagnose_hang(server.pid, source_dir=lesson_dir)
    # thread 4243 waits for mutex A (0x55d0c1a2b8c0, global 'table_mutex'), which it holds
    #   itself: it locked the same mutex twice
    # thread 4243 is at weensydb.cc:131 in do_exch: std::lock_guard<std::mutex> g2(b.mu);

How: a thread blocked in pthread_mutex_lock sits in the futex system call on the
mutex's address (/proc/PID/task/TID/syscall: the call's number, then its arguments).
glibc keeps the owner's TID in the int at offset 8 of pthread_mutex_t, read from
/proc/PID/mem: that gives a wait-for graph, its self-loops (a mutex locked twice) and its
cycles (ABBA). A ThreadSanitizer build blocks in the same futex on the same mutex, so this
works for it too. gdb then names the source line each thread is at (~0.3 s).
Nothing here raises: every problem becomes a line of text.
"""
import linecache
import os
import platform
import re
import shutil
import sys
from dataclasses import dataclass

from . import procfs
from .procs import run
from .timeouts import T
from .tsan import Frame

# futex's system call number(s), by machine (32-bit ARM and x86 also have futex_time64)
FUTEX_SYSCALLS = {
    "x86_64": {202}, "aarch64": {98}, "arm64": {98}, "riscv64": {98}, "loongarch64": {98},
    "ppc64le": {221}, "ppc64": {221}, "s390x": {238},
    "i386": {240, 422}, "i686": {240, 422}, "armv7l": {240, 422}, "armv6l": {240, 422},
}
SYSCALL_NAMES = {
    "x86_64": {0: "read", 1: "write", 7: "poll", 17: "pread64", 23: "select", 34: "pause",
               35: "nanosleep", 42: "connect", 43: "accept", 44: "sendto", 45: "recvfrom",
               46: "sendmsg", 47: "recvmsg", 61: "wait4", 202: "futex", 230: "clock_nanosleep",
               232: "epoll_wait", 270: "pselect6", 271: "ppoll", 281: "epoll_pwait",
               288: "accept4", 441: "epoll_pwait2"},
    "aarch64": {22: "epoll_pwait", 63: "read", 64: "write", 72: "pselect6", 73: "ppoll",
                98: "futex", 101: "nanosleep", 115: "clock_nanosleep", 202: "accept",
                203: "connect", 206: "sendto", 207: "recvfrom", 212: "recvmsg", 242: "accept4",
                260: "wait4"},
}
FUTEX_WAIT, FUTEX_LOCK_PI, FUTEX_WAIT_BITSET, FUTEX_LOCK_PI2 = 0, 6, 9, 13
MUTEX_OWNER_OFFSET = 8   # glibc: struct __pthread_mutex_s { int __lock; unsigned __count; int __owner; …


@dataclass
class ThreadState:
    tid: int
    name: str                 # /proc/…/comm
    state: str                # R running, S sleeping, D disk, T stopped, Z zombie, …
    syscall: int | None       # the system call it is blocked in; None: running or unknown
    args: tuple               # that call's arguments
    wait: str | None = None   # "mutex", "join", "futex" (of an unknown kind) or None
    futex: int | None = None  # the futex's (the mutex's) address
    owner: int | None = None  # mutex: its holder's TID; join: the thread waited for
    problem: str | None = None   # why owner could not be read

    def syscall_name(self, machine=None) -> str | None:
        """`write`, `accept4`, …: the call it is in, if /proc says and the table knows it."""
        if self.syscall is None:
            return None
        return SYSCALL_NAMES.get(machine or platform.machine(), {}).get(self.syscall)

    def activity(self, machine=None) -> str:
        """`blocked in read()`, `running`, …"""
        if self.syscall is None and self.problem:
            return "in an unknown state (its system call cannot be read)"
        if self.syscall is None:
            return "running" if self.state == "R" else f"not in a system call (state {self.state})"
        name = self.syscall_name(machine)
        return f"blocked in {name}()" if name else f"blocked in system call {self.syscall}"


def _read(path) -> str:
    with open(path, errors="replace") as f:
        return f.read()


def _read_int(pid: int, addr: int, signed: bool) -> int:
    fd = os.open(f"/proc/{pid}/mem", os.O_RDONLY)
    try:
        data = os.pread(fd, 4, addr)
    finally:
        os.close(fd)
    if len(data) != 4:
        raise OSError(f"could not read 4 bytes at {addr:#x}")
    return int.from_bytes(data, sys.byteorder, signed=signed)


def thread_states(pid: int, machine: str | None = None) -> list[ThreadState]:
    """Every thread of pid, with what it is blocked in and, for futex waits, on what.
    Raises OSError if the process is gone or /proc cannot be read."""
    machine = machine or platform.machine()
    futex_calls = FUTEX_SYSCALLS.get(machine, set())
    tids = sorted(int(t) for t in os.listdir(f"/proc/{pid}/task") if t.isdigit())
    alive = own_tids(pid, tids)
    threads = []
    for tid in tids:
        base = f"/proc/{pid}/task/{tid}"
        try:
            stat = _read(f"{base}/stat")
            name = _read(f"{base}/comm").strip()
        except OSError:
            continue   # ended meanwhile
        state = stat.rsplit(")", 1)[1].split()[0] if ")" in stat else "?"
        syscall, args, problem = None, (), None
        try:
            fields = _read(f"{base}/syscall").split()
            if fields and fields[0].lstrip("-").isdigit() and int(fields[0]) >= 0:
                syscall, args = int(fields[0]), tuple(int(a, 16) for a in fields[1:7])
        except OSError as e:
            problem = f"cannot read {base}/syscall ({e.strerror or e})"
        except ValueError:
            pass
        t = ThreadState(tid, name, state, syscall, args, problem=problem)
        if syscall in futex_calls and len(args) >= 3:
            _classify_futex(pid, t, alive)
        threads.append(t)
    return threads


def own_tids(pid: int, tids: list[int]) -> dict[int, int]:
    """{the TID the program itself knows: ours} for each thread. A program in a PID namespace
    of its own (the checker's jail) writes its own TIDs into its mutexes (glibc's owner
    field) and thread words; the checker sees other numbers (NSpid: ours first, its last)."""
    found = {}
    for tid in tids:
        try:
            nspids = procfs.status(f"{pid}/task/{tid}").get("NSpid", "").split()
        except OSError:
            continue
        found[int(nspids[-1]) if nspids else tid] = tid
    return found


def _classify_futex(pid, t: ThreadState, alive: dict[int, int]):
    addr, op, expected = t.args[0], t.args[1], t.args[2]
    cmd = op & 0x7f
    t.wait, t.futex = "futex", addr
    try:
        if cmd in (FUTEX_LOCK_PI, FUTEX_LOCK_PI2):         # priority-inheritance mutex: the word is the owner
            owner = _read_int(pid, addr, False) & 0x3fffffff
            t.wait, t.owner = "mutex", alive.get(owner, owner)
        elif cmd == FUTEX_WAIT and expected == 2:           # glibc's __lll_lock_wait: a contended mutex
            owner = _read_int(pid, addr + MUTEX_OWNER_OFFSET, True)
            if owner > 0:
                t.wait, t.owner = "mutex", alive.get(owner, owner)
        elif cmd in (FUTEX_WAIT, FUTEX_WAIT_BITSET) and alive.get(expected, t.tid) != t.tid \
                and _read_int(pid, addr, False) == expected:
            t.wait, t.owner = "join", alive[expected]       # pthread_join waits on the thread's TID word
    except OSError as e:
        t.problem = f"cannot read its memory ({e.strerror or e})"


# ---- gdb ------------------------------------------------------------------------

_GDB_THREAD = re.compile(r"^Thread \d+ \(.*?LWP (\d+)")
_GDB_FRAME = re.compile(r"^#(\d+)\s+(.*)$")


def _parse_gdb_frame(index: int, rest: str) -> Frame:
    rest = re.sub(r"^0x[0-9a-fA-F]+ in ", "", rest.strip())
    file = line = module = None
    if m := re.search(r" at (\S.*):(\d+)$", rest):
        file, line, rest = m.group(1), int(m.group(2)), rest[:m.start()]
    elif m := re.search(r" from (\S+)$", rest):
        module, rest = m.group(1), rest[:m.start()]
    func = re.sub(r" \([^()]*\)$", "", rest)
    return Frame(index, func, file, line, module=module)


def parse_gdb_backtraces(text: str) -> tuple[dict, dict]:
    """`thread apply all bt` output (plus `@@SYM ADDR` markers each followed by `info symbol`)
    → ({tid: [Frame, innermost first]}, {address: symbol text})."""
    stacks: dict[int, list[Frame]] = {}
    symbols: dict[int, str] = {}
    current, pending = None, None
    for line in text.splitlines():
        if pending is not None:
            if line.strip():
                if not line.startswith("No symbol matches"):
                    symbols[pending] = line.strip()
                pending = None
            continue
        if line.startswith("@@SYM "):
            pending = int(line.split()[1], 16)
            continue
        if m := _GDB_THREAD.match(line):
            current = int(m.group(1))
            stacks[current] = []
        elif (m := _GDB_FRAME.match(line)) and current is not None:
            stacks[current].append(_parse_gdb_frame(int(m.group(1)), m.group(2)))
    return stacks, symbols


def gdb_backtraces(pid: int, addresses=(), timeout: float | None = None):
    """Attaches gdb to pid for a moment. Returns (stacks, symbols, problem): stacks maps
    TID → frames, symbols maps each of `addresses` gdb could name → e.g. "ma in section .bss",
    problem is None or one line saying why there are no stacks."""
    if shutil.which("gdb") is None:
        return {}, {}, "gdb is not installed, so the source lines are unknown (install gdb to see them)"
    timeout = T(15) if timeout is None else timeout
    argv = ["gdb", "-nx", "-batch", "-iex", "set debuginfod enabled off",
            "-iex", "set auto-load python-scripts off",
            "-ex", "set filename-display absolute", "-ex", "set print frame-arguments none",
            "-p", str(pid), "-ex", "thread apply all bt"]
    for addr in addresses:
        argv += ["-ex", f"echo @@SYM {addr:#x}\\n", "-ex", f"info symbol {addr:#x}"]
    result = run(argv, timeout=timeout)
    text = result.stdout.decode(errors="replace") + "\n" + result.stderr.decode(errors="replace")
    if result.timed_out:
        return {}, {}, f"gdb did not finish within {timeout:.0f}s, so the source lines are unknown"
    stacks, symbols = parse_gdb_backtraces(text)
    if not stacks:
        why = next((ln.strip() for ln in text.splitlines()
                    if "ptrace" in ln or "Could not attach" in ln or "not permitted" in ln), None)
        if why is None:
            return {}, symbols, "gdb showed no threads, so the source lines are unknown"
        scope = ""
        value = procfs.sysctl("kernel.yama.ptrace_scope")
        if value not in (None, "0"):
            scope = (f"; kernel.yama.ptrace_scope is {value}: "
                     "`sudo sysctl kernel.yama.ptrace_scope=0` lets gdb attach")
        return {}, symbols, f"gdb could not attach to process {pid} ({why}), so the source lines are unknown{scope}"
    return stacks, symbols, None


def own_frame(frames: list[Frame], source_dir=None) -> Frame | None:
    """The innermost frame in a file under source_dir, else the innermost in a source file
    that exists here and is not a system one (/usr/…, glibc, the sanitizer runtime)."""
    def own(f):
        return f.file and not f.is_runtime() and os.path.exists(f.file)
    if source_dir is not None:
        for f in frames:
            if f.file and f.under(source_dir) and os.path.exists(f.file):
                return f
    return next((f for f in frames if own(f)), None)


def source_text(frame: Frame, limit: int = 90) -> str:
    if not frame.file or not frame.line:
        return ""
    text = linecache.getline(frame.file, frame.line).strip()
    return text if len(text) <= limit else text[:limit - 1] + "…"


# ---- the diagnosis ------------------------------------------------------------------

def _cycles(waits: dict[int, int]) -> list[list[int]]:
    """Cycles of two or more threads in the wait-for graph tid → owner."""
    found, seen = [], set()
    for start in sorted(waits):
        path, node = [], start
        while node in waits and node not in path and node not in seen:
            path.append(node)
            node = waits[node]
        if node in path:
            cycle = path[path.index(node):]
            if len(cycle) > 1:
                i = cycle.index(min(cycle))
                found.append(cycle[i:] + cycle[:i])
        seen.update(path)
    return found


def diagnose_hang(pid: int, source_dir=None, use_gdb: bool = True, limit: int = 12) -> list[str]:
    """Lines for a student saying what each stuck thread of `pid` waits for: a mutex it holds
    itself, a lock-order cycle, a mutex held by a thread doing something else, a join; then
    (with gdb) the source line each of those threads is at. Never raises."""
    try:
        return _diagnose(pid, source_dir, use_gdb, limit)
    except Exception as e:   # a diagnosis must never turn into a crash of the check
        return [f"could not diagnose process {pid}: {type(e).__name__}: {e}"]


def _diagnose(pid, source_dir, use_gdb, limit) -> list[str]:
    lines: list[str] = []
    machine = platform.machine()
    if machine not in FUTEX_SYSCALLS:
        lines.append(f"cannot tell which mutex a thread waits for on this kind of machine ({machine})")
    try:
        threads = thread_states(pid, machine)
    except FileNotFoundError:
        return [f"process {pid} has already exited"]
    except OSError as e:
        threads = []
        lines.append(f"cannot read the threads of process {pid} in /proc ({e.strerror or e})")
    by_tid = {t.tid: t for t in threads}
    if threads and all(t.state == "Z" for t in threads):
        return [f"process {pid} has already exited (a zombie)"]
    main_name = by_tid[pid].name if pid in by_tid else None

    def who(tid):
        t = by_tid.get(tid)
        extra = "main thread" if tid == pid else (t.name if t and t.name != main_name else None)
        return f"thread {tid}" + (f" ({extra})" if extra else "")

    letters: dict[int, str] = {}
    described: set[int] = set()
    symbols: dict[int, str] = {}

    def mutex(addr):
        if addr not in letters:
            letters[addr] = chr(ord("A") + len(letters)) if len(letters) < 26 else f"#{len(letters) + 1}"
        name = f"mutex {letters[addr]}"
        if addr in described:
            return name
        described.add(addr)
        sym = symbols.get(addr)
        return f"{name} ({addr:#x}" + (f", {sym}" if sym else "") + ")"

    waits = {t.tid: t.owner for t in threads if t.wait == "mutex"}
    interesting: list[int] = []   # the threads whose source line is shown, in order of mention
    # gdb first (when asked): it names global mutexes, and the lines below can then use it
    stacks, problem = {}, None
    if use_gdb:
        stacks, symbols, problem = gdb_backtraces(pid, sorted({t.futex for t in threads if t.wait == "mutex"}))
        symbols = {a: _symbol_name(s) for a, s in symbols.items()}

    stuck: set[int] = set()
    for t in threads:
        if t.wait == "mutex" and t.owner == t.tid:
            lines.append(f"{who(t.tid)} waits for {mutex(t.futex)}, which it holds itself: "
                         f"it locked the same mutex twice")
            stuck.add(t.tid)
            interesting.append(t.tid)
    for cycle in _cycles(waits):
        parts = [f"{who(tid)} waits for {mutex(by_tid[tid].futex)} held by thread {waits[tid]}"
                 for tid in cycle]
        kind = "a lock-order cycle (ABBA)" if len(cycle) == 2 else f"a lock-order cycle of {len(cycle)} threads"
        lines.append("; ".join(parts) + f": {kind}")
        stuck.update(cycle)
        interesting += cycle
    groups: dict[tuple, list[int]] = {}
    for t in threads:
        if t.wait == "mutex" and t.tid not in stuck:
            groups.setdefault((t.futex, t.owner), []).append(t.tid)
    for (addr, owner), tids in groups.items():
        if owner in stuck:
            state = "which is itself stuck, see above"
        elif owner in waits:
            state = f"which itself waits for {mutex(by_tid[owner].futex)}"
        elif owner in by_tid:
            state = f"which is {by_tid[owner].activity(machine)}"
        else:
            state = "a thread that no longer exists: it ended without unlocking it"
        shown = ", ".join(who(tid) for tid in tids[:5]) + (f" and {len(tids) - 5} more" if len(tids) > 5 else "")
        verb = "waits" if len(tids) == 1 else "wait"
        lines.append(f"{shown} {verb} for {mutex(addr)} held by thread {owner} ({state})")
        interesting += tids + [owner]
    for t in threads:
        if t.wait == "join":
            lines.append(f"{who(t.tid)} waits for thread {t.owner} to finish (join)")
            interesting.append(t.tid)
        elif t.wait == "futex":
            why = f"; {t.problem}" if t.problem else ""
            lines.append(f"{who(t.tid)} waits on futex at {t.futex:#x} (owner unknown{why})")
            interesting.append(t.tid)
    unreadable = [t for t in threads if t.syscall is None and t.problem]
    if unreadable:
        lines.insert(0, f"cannot see what {len(unreadable)} of its {len(threads)} threads wait for: "
                        f"{unreadable[0].problem}")
    if threads and not waits:
        if machine in FUTEX_SYSCALLS and not unreadable:
            lines.insert(0, "no thread is waiting for a mutex")
        for t in threads:
            if t.wait is None and not _is_sanitizer_thread(stacks.get(t.tid, [])):
                lines.append(f"{who(t.tid)} is {t.activity(machine)}")
                interesting.append(t.tid)
    if not threads and not lines:
        lines.append(f"process {pid} has no threads to look at")

    if problem:
        lines.append(problem)
    elif use_gdb:
        shown = 0
        for tid in dict.fromkeys(interesting):
            if tid not in by_tid or _is_sanitizer_thread(stacks.get(tid, [])):
                continue
            if shown == limit:
                lines.append("… and more threads, not shown")
                break
            shown += 1
            frame = own_frame(stacks.get(tid, []), source_dir)
            if frame is None:
                inner = next((f.short_function for f in stacks.get(tid, []) if f.function != "??"), None)
                lines.append(f"thread {tid} is in no source file of yours"
                             + (f" (innermost: {inner})" if inner else ""))
                continue
            code = source_text(frame)
            lines.append(f"thread {tid} is at {frame.describe(source_dir)}" + (f": {code}" if code else ""))
    return lines


def _symbol_name(info: str) -> str:
    """gdb's `info symbol` → "global 'ma'" / "'buckets + 48'"."""
    m = re.match(r"^(.+?) in section \S+", info)
    if not m:
        return info
    name = m.group(1)
    return f"'{name}'" if "+" in name else f"global '{name}'"


def _is_sanitizer_thread(frames: list[Frame]) -> bool:
    """TSan's own background thread (it sleeps in nanosleep forever)."""
    return any("BackgroundThread" in f.function and ("__tsan" in f.function or "__sanitizer" in f.function)
               for f in frames)
