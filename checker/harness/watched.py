"""What a process asleep in select(), poll() or epoll_wait() waits for, read from /proc.

A single-threaded server that does not answer is usually asleep in its poller
while what it should see is already there: a client in the listen backlog,
request bytes unread in a socket. /proc shows both sides, without stopping it:

    /proc/PID/task/TID/syscall   the call it sleeps in and its arguments (select:
                                 nfds and the addresses of its fd_sets; poll: the
                                 pollfd array; epoll_wait: the epoll descriptor)
    /proc/PID/mem                the fd_sets and pollfds themselves: the kernel
                                 copied them in, and writes the ready ones back
                                 only when the call returns
    /proc/PID/fdinfo/EPFD        each descriptor in an epoll list, with its events
    /proc/PID/fd, /proc/net/tcp  which descriptor is which socket, and its queues

    w = waiting(pid)
    w.describe()   'asleep in select(nfds=4, read {3}, write {})'
    w.unseen()     [Unseen(fd=4, what='a client with 27 bytes unread', why='beyond nfds (4)', cause='nfds')]

Reading another process's memory needs ptrace rights (the checker's own children,
or root); without them the view says so and names nothing.
"""
import os
import platform
import re
import sys
from dataclasses import dataclass, field

from . import procfs
from .deadlock import SYSCALL_NAMES, thread_states

SELECTS = ("select", "pselect6")
POLLS = ("poll", "ppoll")
EPOLL_WAITS = ("epoll_wait", "epoll_pwait", "epoll_pwait2")
WAITS = SELECTS + POLLS + EPOLL_WAITS

# <sys/epoll.h> and <poll.h>
EPOLLIN, EPOLLOUT, EPOLLERR, EPOLLHUP, EPOLLRDHUP = 0x1, 0x4, 0x8, 0x10, 0x2000
EPOLLONESHOT, EPOLLET = 1 << 30, 1 << 31
EPOLL_NAMES = [(EPOLLIN, "EPOLLIN"), (EPOLLOUT, "EPOLLOUT"), (EPOLLRDHUP, "EPOLLRDHUP"),
               (EPOLLONESHOT, "EPOLLONESHOT"), (EPOLLET, "EPOLLET")]
POLLIN, POLLOUT = 0x1, 0x4
EPOLL_FDINFO = re.compile(r"^tfd:\s*(\d+)\s+events:\s*([0-9a-fA-F]+)", re.M)


def epoll_text(events: int) -> str:
    """An epoll event mask in words (EPOLLERR and EPOLLHUP, always reported, left out)."""
    names = [name for bit, name in EPOLL_NAMES if events & bit]
    return "|".join(names) or "no events (disarmed)"


@dataclass
class Unseen:
    """A descriptor with something to read that the sleeping poller does not watch for it."""
    fd: int
    what: str     # "the listener, with 1 client waiting to be accepted"
    why: str      # "not in the read set"
    cause: str    # nfds, not_in_set, not_in_list, no_epollin, edge_triggered, oneshot, not_in_pollfds


@dataclass
class Waiting:
    """What the process's first thread is doing, and if it sleeps in a poller, on what."""
    activity: str                       # "blocked in pselect6()", "running", …
    call: str | None = None             # the poller call it sleeps in, if any
    nfds: int | None = None             # select's first argument
    reads: set | None = None            # descriptors watched for reading
    writes: set | None = None           # descriptors watched for writing
    epoll: dict | None = None           # epoll: {fd: its events}
    sockets: dict = field(default_factory=dict)   # {fd: procfs.TcpSocket}
    problem: str | None = None          # why the watched sets could not be read

    def describe(self) -> str:
        if self.call is None:
            return self.activity
        if self.problem:
            return f"asleep in {self.call}() ({self.problem})"
        if self.call in SELECTS:
            return (f"asleep in select(nfds={self.nfds}, read {_set_text(self.reads)}, "
                    f"write {_set_text(self.writes)})")
        if self.call in POLLS:
            return f"asleep in poll() on {_set_text(self.reads | self.writes)}"
        listed = ", ".join(f"fd {fd} {epoll_text(ev)}" for fd, ev in sorted(self.epoll.items()))
        return f"asleep in {self.call}() on an epoll list of {len(self.epoll)}: {listed or 'empty'}"

    def pending(self) -> dict[int, str]:
        """{fd: what waits there to be read}: a listener with clients in its backlog, a
        client socket with unread bytes."""
        waiting = {}
        for fd, sock in self.sockets.items():
            if sock.state == procfs.LISTEN and sock.rx_queue > 0:
                waiting[fd] = (f"the listener, with {sock.rx_queue} client(s) waiting to be "
                               f"accepted in its backlog")
            elif sock.state != procfs.LISTEN and sock.rx_queue > 0:
                waiting[fd] = f"a client's socket, with {sock.rx_queue:,} bytes unread"
        return waiting

    def unseen(self) -> list[Unseen]:
        """The descriptors with something to read that this sleeping poller does not
        watch for reading (empty when it is not asleep in a poller, or cannot be read)."""
        if self.call is None or self.problem:
            return []
        found = []
        for fd, what in sorted(self.pending().items()):
            why = cause = None
            if self.call in SELECTS:
                if fd >= self.nfds:
                    why, cause = f"not below nfds ({self.nfds})", "nfds"
                elif fd not in self.reads:
                    why, cause = "not in the read set", "not_in_set"
            elif self.call in POLLS:
                if fd not in self.reads:
                    why, cause = "not in the pollfd array with POLLIN", "not_in_pollfds"
            else:
                events = self.epoll.get(fd)
                if events is None:
                    why, cause = "not in the epoll list", "not_in_list"
                elif events & EPOLLONESHOT and not events & (EPOLLIN | EPOLLOUT):
                    why, cause = ("in the epoll list with EPOLLONESHOT, disarmed since its last "
                                  "event"), "oneshot"
                elif not events & EPOLLIN:
                    why, cause = f"in the epoll list for {epoll_text(events)} only, not EPOLLIN", "no_epollin"
                elif events & EPOLLET:
                    why, cause = (f"in the epoll list as {epoll_text(events)}: edge-triggered, "
                                  "so epoll reported its data once, when it came"), "edge_triggered"
            if why:
                found.append(Unseen(fd, what, why, cause))
        return found


def _set_text(fds) -> str:
    return "{" + ", ".join(str(fd) for fd in sorted(fds or ())) + "}"


def _read_mem(pid: int, addr: int, size: int) -> bytes:
    fd = os.open(f"/proc/{pid}/mem", os.O_RDONLY)
    try:
        data = os.pread(fd, size, addr)
    finally:
        os.close(fd)
    if len(data) != size:
        raise OSError(f"could not read {size} bytes at {addr:#x}")
    return data


def _fd_set(pid: int, addr: int, nfds: int) -> set[int]:
    """The descriptors below nfds in the fd_set at addr (a bitmap: descriptor i is bit
    i % 64 of its i // 64-th long)."""
    if addr == 0 or nfds <= 0:
        return set()
    longs = (nfds + 63) // 64
    data = _read_mem(pid, addr, longs * 8)
    words = [int.from_bytes(data[i * 8:i * 8 + 8], sys.byteorder) for i in range(longs)]
    return {fd for fd in range(nfds) if words[fd // 64] >> (fd % 64) & 1}


def _pollfds(pid: int, addr: int, count: int) -> dict[int, int]:
    """{fd: events} of the pollfd array at addr (struct pollfd: int fd; short events, revents)."""
    data = _read_mem(pid, addr, count * 8) if count > 0 else b""
    found = {}
    for i in range(count):
        fd = int.from_bytes(data[i * 8:i * 8 + 4], sys.byteorder, signed=True)
        if fd >= 0:
            found[fd] = int.from_bytes(data[i * 8 + 4:i * 8 + 6], sys.byteorder)
    return found


def _epoll_list(pid: int, epfd: int) -> dict[int, int]:
    with open(f"/proc/{pid}/fdinfo/{epfd}") as f:
        return {int(fd): int(events, 16) for fd, events in EPOLL_FDINFO.findall(f.read())}


def waiting(pid: int) -> Waiting:
    """What the process's first thread is doing now; if it sleeps in select/poll/epoll_wait,
    what it watches. Raises nothing: what cannot be read becomes `problem`."""
    try:
        thread = thread_states(pid)[0]
    except (OSError, IndexError):
        return Waiting(activity="gone")
    try:
        sockets = procfs.tcp_sockets_of(pid)
    except OSError:
        sockets = {}
    w = Waiting(activity=thread.activity() if thread.state != "R" else "running (not in a system call)",
                sockets=sockets)
    name = SYSCALL_NAMES.get(platform.machine(), {}).get(thread.syscall)
    if name not in WAITS:
        return w
    w.call = name
    args = thread.args
    try:
        if name in SELECTS:
            w.nfds = args[0]
            w.reads, w.writes = _fd_set(pid, args[1], args[0]), _fd_set(pid, args[2], args[0])
        elif name in POLLS:
            fds = _pollfds(pid, args[0], args[1])
            w.reads = {fd for fd, ev in fds.items() if ev & POLLIN}
            w.writes = {fd for fd, ev in fds.items() if ev & POLLOUT}
        else:
            w.epoll = _epoll_list(pid, args[0])
            w.reads = {fd for fd, ev in w.epoll.items() if ev & EPOLLIN}
            w.writes = {fd for fd, ev in w.epoll.items() if ev & EPOLLOUT}
    except (OSError, IndexError) as e:
        w.problem = f"what it watches cannot be read: {getattr(e, 'strerror', None) or e}"
    return w

