"""Everything the checker and the benchmarks read from /proc, in one place.

/proc is how the checker sees a program from the outside without touching it:
a process's memory and threads (/proc/PID/status), its open descriptors
(/proc/PID/fd), and the kernel's view of every TCP socket (/proc/net/tcp),
including bytes queued but not yet read or acknowledged. See proc(5).

One reader stays elsewhere: what each thread of a hung process is blocked in, and the
mutex owners in its memory (/proc/PID/task/TID/syscall, /proc/PID/mem), are read by
deadlock.py's thread_states(), where the futex arithmetic is explained.
"""
import os
import resource
import time
from dataclasses import dataclass

KIB = 1024


# ---- one process ------------------------------------------------------------------

def status(pid: int, tid: int | None = None) -> dict[str, str]:
    """/proc/PID/status (or one thread's, /proc/PID/task/TID/status) as {field: value text},
    e.g. {"VmRSS": "1234 kB", "Threads": "3"}."""
    fields = {}
    with open(f"/proc/{pid}/status" if tid is None else f"/proc/{pid}/task/{tid}/status") as f:
        for line in f:
            name, _, value = line.partition(":")
            fields[name] = value.strip()
    return fields


def size_bytes(value: str) -> int:
    """A size as /proc prints it ("1234 kB") in bytes; 0 for an empty text."""
    words = value.split()
    return int(words[0]) * KIB if words else 0


def status_bytes(pid: int, name: str) -> int:
    """A size field of /proc/PID/status (VmRSS, VmHWM, VmSize, VmPTE…) in bytes; 0 if absent.
    Several fields read together: size_bytes() on one status() reading."""
    return size_bytes(status(pid).get(name, "0 kB"))


def vm_rss(pid: int) -> int:
    """Resident memory of the process, in bytes."""
    return status_bytes(pid, "VmRSS")


def threads(pid: int) -> int:
    return int(status(pid).get("Threads", "0"))


def cpu_seconds(pid: int) -> float:
    """User + system CPU time the process has used (/proc/PID/stat fields 14 and 15)."""
    with open(f"/proc/{pid}/stat") as f:
        # The command name (field 2) may hold spaces: split after its closing parenthesis.
        fields = f.read().rsplit(")", 1)[1].split()
    ticks = int(fields[11]) + int(fields[12])
    return ticks / os.sysconf("SC_CLK_TCK")


def cpu_share(pid: int, seconds: float) -> float:
    """The share of one core the process used over `seconds` of wall time (a measurement
    window, not a synchronisation)."""
    start, cpu = time.monotonic(), cpu_seconds(pid)
    time.sleep(seconds)
    return (cpu_seconds(pid) - cpu) / (time.monotonic() - start)


@dataclass
class CpuUse:
    """How busy a process was over a window of wall time, in shares of one core.

    `share` is the CPU time it got. `wanted` adds the time its threads were ready to
    run but waited for a free core: on a loaded machine a loop that never sleeps gets
    only part of a core, yet it still wants all of it. Whether a program sleeps is a
    question for `wanted`, which the machine's load does not change. A program that naps
    often waits for a core after each wake-up too (measured here: a loop of 10 ms naps
    wanted 15% of a core on two cores shared with 8 or 20 endless loops), so `wanted`
    decides only above one half."""
    share: float
    wanted: float
    wakeups: int = 0       # times its threads went to sleep in the window (and were woken)
    seconds: float = 1.0   # the window

    WANTED_LIMIT = 0.5

    def busy(self, limit: float) -> bool:
        """Did it use more than `limit` of a core, or want more than half of one?"""
        return self.share > limit or self.wanted > max(limit, self.WANTED_LIMIT)

    def words(self) -> str:
        if self.wanted - self.share < 0.05:
            return f"{self.share:.0%} of a core"
        wanted = 1.0 if 1.0 < self.wanted < 1.05 else self.wanted   # (the two clocks' reads differ)
        return (f"{self.share:.0%} of a core, and it was ready to run {wanted:.0%} of the "
                f"time (it waited for the busy machine's cores the rest)")


def _thread_run_ns(pid: int) -> dict[int, int] | None:
    """Per thread, nanoseconds on a CPU plus nanoseconds waiting in a run queue
    (/proc/PID/task/TID/schedstat, fields 1 and 2); None if this kernel does not keep them."""
    times = {}
    try:
        tids = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return None
    for tid in tids:
        try:
            with open(f"/proc/{pid}/task/{tid}/schedstat") as f:
                on_cpu, waiting, _ = f.read().split()
        except FileNotFoundError:
            if not os.path.exists(f"/proc/{pid}/task/{tid}"):
                continue     # the thread ended while we looked
            return None      # no schedstat in this kernel (CONFIG_SCHED_INFO off)
        except (OSError, ValueError):
            continue
        times[int(tid)] = int(on_cpu) + int(waiting)
    return times


def wakeups(pid: int) -> int:
    """How many times the process's threads have gone to sleep of their own accord: in a
    wait call, a sleep, a blocking read (voluntary_ctxt_switches, summed over
    /proc/PID/task/TID/status; the process's own status counts its main thread only)."""
    total = 0
    try:
        tids = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return total
    for tid in tids:
        try:
            total += int(status(pid, int(tid)).get("voluntary_ctxt_switches", "0"))
        except (OSError, ValueError):
            continue   # the thread ended while we looked
    return total


def cpu_use(pid: int, seconds: float) -> CpuUse:
    """How much of a core the process used, and wanted, over `seconds` of wall time (a
    measurement window, not a synchronisation). Where the kernel keeps no run-queue
    times, `wanted` is the CPU time alone."""
    start, cpu, runs, slept = time.monotonic(), cpu_seconds(pid), _thread_run_ns(pid), wakeups(pid)
    time.sleep(seconds)
    later, cpu_after, slept_after = _thread_run_ns(pid), cpu_seconds(pid), wakeups(pid)
    wall = time.monotonic() - start
    share = (cpu_after - cpu) / wall
    woken = max(0, slept_after - slept)
    if runs is None or later is None:
        return CpuUse(share, share, woken, wall)
    # A thread started in the window counts from 0; one that ended is lost, as with the CPU time.
    ran_ns = sum(ns - runs.get(tid, 0) for tid, ns in later.items())
    return CpuUse(share, max(share, ran_ns / 1e9 / wall), woken, wall)


def open_fds(pid: int) -> list[str]:
    """What each open descriptor of the process points to (readlink of /proc/PID/fd/N)."""
    targets = []
    try:
        names = os.listdir(f"/proc/{pid}/fd")
    except OSError:
        return targets
    for name in names:
        try:
            targets.append(os.readlink(f"/proc/{pid}/fd/{name}"))
        except OSError:
            pass   # closed while we looked
    return targets


def fd_count(pid: int) -> int:
    try:
        return len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return 0


def socket_fd_count(pid: int) -> int:
    """How many of the process's descriptors are sockets."""
    return sum(target.startswith("socket:") for target in open_fds(pid))


def state(pid: int) -> str:
    """Its state letter (R running, S asleep, T stopped, Z zombie…), or "gone". A program in
    the jail is reaped by the jail's init the moment it ends: its /proc entry goes with it."""
    try:
        return status(pid).get("State", "?")[:1]
    except OSError:
        return "gone"


def alive(pid: int) -> bool:
    return os.path.exists(f"/proc/{pid}")


def parent(pid: int) -> int | None:
    """The parent's pid (/proc/PID/stat's 4th field); None if the process is gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return int(f.read().rpartition(")")[2].split()[1])
    except (OSError, ValueError, IndexError):
        return None


def children(pid: int) -> list[int]:
    """The pids of its children (of every thread's)."""
    found = []
    try:
        for task in os.scandir(f"/proc/{pid}/task"):
            with open(f"{task.path}/children") as f:
                found += [int(word) for word in f.read().split()]
    except (OSError, ValueError):
        pass
    return found


def command_line(pid: int) -> str:
    """Its argv joined by spaces ("" if it is gone or a zombie)."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().replace(b"\0", b" ").decode(errors="replace").strip()
    except OSError:
        return ""


def namespace_pids(pid: int) -> list[int]:
    """Its pid in each PID namespace it is in, the outermost first (NSpid)."""
    try:
        return [int(word) for word in status(pid).get("NSpid", "").split()]
    except (OSError, ValueError):
        return []


# ---- every process -------------------------------------------------------------------

def pids() -> list[int]:
    return [int(entry.name) for entry in os.scandir("/proc") if entry.name.isdigit()]


def processes_of(uid: int) -> list[int]:
    """Every process whose real uid is `uid` (zombies included)."""
    found = []
    for pid in pids():
        try:
            if int(status(pid)["Uid"].split()[0]) == uid:
                found.append(pid)
        except (OSError, KeyError, ValueError, IndexError):
            pass
    return found


def with_environment(variable: str) -> list[int]:
    """Every process whose environment holds `variable` ("NAME=value") exactly."""
    needle = b"\0" + variable.encode() + b"\0"
    found = []
    for pid in pids():
        try:
            with open(f"/proc/{pid}/environ", "rb") as f:
                if needle in b"\0" + f.read() + b"\0":
                    found.append(pid)
        except OSError:
            pass
    return found


# ---- TCP sockets, as the kernel shows them -----------------------------------------

LISTEN = "0A"   # the st column of /proc/net/tcp (include/net/tcp_states.h: TCP_LISTEN = 10)


@dataclass
class TcpSocket:
    local_port: int
    remote_port: int
    state: str          # hex, as the kernel prints it ("01" established, "0A" listen)
    tx_queue: int       # bytes sent and not yet acknowledged (listen: the backlog limit)
    rx_queue: int       # bytes received and not yet read (listen: connections awaiting accept)
    local_address: str  # dotted quad, e.g. "127.0.0.1"
    inode: int = 0      # the socket's inode: /proc/PID/fd/N links to "socket:[INODE]"


def _address(hex_address: str) -> str:
    # /proc/net/tcp prints the IPv4 address as one little-endian 32-bit hex number.
    value = int(hex_address, 16)
    return ".".join(str((value >> shift) & 0xFF) for shift in (0, 8, 16, 24))


def _socket(cols: list[str], family: str) -> TcpSocket:
    local_addr, local_port = cols[1].rsplit(":", 1)
    tx, rx = cols[4].split(":")
    return TcpSocket(local_port=int(local_port, 16), remote_port=int(cols[2].rsplit(":", 1)[1], 16),
                     state=cols[3], tx_queue=int(tx, 16), rx_queue=int(rx, 16),
                     local_address=_address(local_addr) if family == "tcp" else local_addr,
                     inode=int(cols[9]))


def _rows(families):
    """(family, columns) of each row of /proc/net/tcp{,6}, read lazily: with 10,000
    connections the table has 20,000 rows, and a search should stop at its match."""
    for family in families:
        try:
            with open(f"/proc/net/{family}") as table:
                next(table)
                for line in table:
                    yield family, line.split()
        except OSError:
            continue


def tcp_sockets(families=("tcp", "tcp6")) -> list[TcpSocket]:
    """Every TCP socket of this network namespace (/proc/net/tcp and tcp6)."""
    return [_socket(cols, family) for family, cols in _rows(families)]


def tcp_queues(local_port: int, remote_port: int) -> tuple[int, int] | None:
    """(send queue, receive queue) of the IPv4 socket local_port <-> remote_port, or None."""
    want = (f"{local_port:04X}", f"{remote_port:04X}")
    for family, cols in _rows(("tcp",)):
        if (cols[1].rsplit(":", 1)[1], cols[2].rsplit(":", 1)[1]) == want:
            s = _socket(cols, family)
            return s.tx_queue, s.rx_queue
    return None


def tcp_sockets_of(pid: int) -> dict[int, TcpSocket]:
    """The process's TCP sockets by descriptor: {fd: TcpSocket} (its /proc/PID/fd links
    "socket:[INODE]" matched with the inode column of /proc/net/tcp)."""
    by_inode = {}
    for fd in os.listdir(f"/proc/{pid}/fd") if alive(pid) else []:
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue   # closed while we looked
        if target.startswith("socket:["):
            by_inode[int(target[8:-1])] = int(fd)
    return {by_inode[s.inode]: s for s in tcp_sockets() if s.inode in by_inode}


def listener(port: int) -> TcpSocket | None:
    """The listening socket on `port`, if any. Reading /proc sends no packet, unlike a
    test connection (which would also wake a TCP_DEFER_ACCEPT server)."""
    want = f"{port:04X}"
    for family, cols in _rows(("tcp", "tcp6")):
        if cols[3] == LISTEN and cols[1].rsplit(":", 1)[1] == want:
            return _socket(cols, family)
    return None


def listening(port: int) -> bool:
    return listener(port) is not None


def accept_queue(port: int) -> int:
    """Connections waiting in the listen backlog on `port`; -1 if nothing listens."""
    s = listener(port)
    return s.rx_queue if s else -1


# ---- limits and the machine ----------------------------------------------------------

def raise_open_files_limit(want: int | None = None) -> int:
    """Raises this process's soft RLIMIT_NOFILE towards `want` (default: the hard limit),
    which needs no privilege; programs it starts inherit it. Returns the new soft limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = hard if want is None else want
    if hard != resource.RLIM_INFINITY:
        target = min(target, hard)
    if soft != resource.RLIM_INFINITY and soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def open_files_limit() -> int:
    """This process's soft RLIMIT_NOFILE: the most descriptors it may hold open (ulimit -n)."""
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def hard_open_files_limit() -> int:
    return resource.getrlimit(resource.RLIMIT_NOFILE)[1]


def sysctl(name: str) -> str | None:
    """A kernel setting as `sysctl NAME` shows it, e.g. sysctl("kernel.pid_max") reads
    /proc/sys/kernel/pid_max; None if this kernel has no such setting (or hides it)."""
    try:
        with open("/proc/sys/" + name.replace(".", "/")) as f:
            return f.read().strip()
    except OSError:
        return None


def sysctl_int(name: str, default: int) -> int:
    """A numeric kernel setting (its first number), or `default` if it cannot be read."""
    try:
        return int(sysctl(name).split()[0])
    except (AttributeError, ValueError, IndexError):
        return default


def meminfo_bytes(name: str) -> int | None:
    """A field of /proc/meminfo (e.g. KernelStack, the whole machine's) in bytes."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                field, _, value = line.partition(":")
                if field == name:
                    return int(value.split()[0]) * KIB
    except OSError:
        pass
    return None


def cpu_times() -> tuple[int, int] | None:
    """(all, idle) clock ticks the machine's CPUs have spent since boot, from the first
    line of /proc/stat; idle counts iowait too. Two readings apart give how busy the
    CPUs were in between: 1 - Δidle / Δall."""
    try:
        with open("/proc/stat") as f:
            ticks = [int(v) for v in f.readline().split()[1:]]
        return sum(ticks), ticks[3] + ticks[4]
    except (OSError, ValueError, IndexError):
        return None


def cpu_model() -> str:
    """The CPU's name (/proc/cpuinfo's first `model name`), or "" where it has none (arm64)."""
    try:
        with open("/proc/cpuinfo") as f:
            return next((line.split(":", 1)[1].strip() for line in f
                         if line.startswith("model name")), "")
    except OSError:
        return ""
