"""lesson 18 · unix-sockets: a prefork WeensyDB, and the tricks of AF_UNIX

The student's programs:
  `weensydb -p PORT [-w WORKERS] [-n NAME | -u PATH] [-s DIR]`: an acceptor that passes each
    TCP client to one of WORKERS processes (SCM_RIGHTS over a socket pair); an admin socket
    (@NAME, abstract, or PATH) that answers `stats` to its own uid only (SO_PEERCRED); one
    port for WeensyDB and an HTTP status page (MSG_PEEK); a status file made in DIR and
    deleted at once, passed to every worker;
  `boundaries stream|seqpacket`: three writes into a socket pair, and what each read gets;
  `dgram server PATH` / `dgram client PATH MESSAGE`: a datagram echo whose client binds
    (autobind: a name of its own, so two clients can wait for answers at once).

Everything is observed from outside: who holds the client's socket (/proc/PID/fd matched
with /proc/net/tcp), which names are bound (/proc/net/unix), which files the workers hold
((deleted) in /proc/PID/fd), and the answers. Programs run in the checker's jail, which has
user, PID and mount namespaces but not a network namespace of its own: abstract AF_UNIX
names belong to the network namespace, so the checker reaches @NAME from outside the jail.
"""
import itertools
import os
import select
import signal
import socket
import subprocess
import sys

from checker.harness import (CheckFailed, T, check, fail, note, procfs, run, sandbox, show_bytes,
                             start_server, thread_states, wait_until)
from checker.harness import ask as harness_ask
from checker.checks import blocking, protocol
from checker.checks.version import Version, bind

WEENSYDB, DGRAM, BOUNDARIES = "weensydb", "dgram", "boundaries"
WORKERS = 3
_names = itertools.count()

# The WeensyDB checks of lessons 03-14, bound to this server. Lesson 18 is not one of the
# numbered WeensyDB versions (course.toml gives it no [lesson.expect]): its Version is made
# here, a server with neither an event loop nor a bug on purpose.
PREFORK = Version(lesson="18-unix-sockets", number=12, threads=False, mutexes=False)
globals().update({f.__name__: bind(f, PREFORK) for f in (
    protocol.test_build, protocol.test_protocol, protocol.test_bad_input, protocol.test_pymemcache,
    protocol.test_short_io, blocking.test_never_close, blocking.test_half_request,
    blocking.test_slow_reader,
)})


# ---- helpers ----------------------------------------------------------------------------

def unique_name() -> str:
    """An abstract name no other run on this machine uses at the same time."""
    return f"netcourse-18-{os.getpid()}-{next(_names)}"


def tried(target, *args) -> str:
    return " ".join([target.shown(target.binary(WEENSYDB)), "-p 0", *map(str, args)])


def start(target, *args, hint=None):
    """The prefork server with WORKERS workers, once they are all running."""
    args = ["-w", WORKERS, *args]
    try:
        s = start_server(target.binary(WEENSYDB), args=args)
    except CheckFailed as failure:
        if hint:
            failure.hint = hint
        raise
    if not wait_until(lambda: len(procfs.children(s.pid)) == WORKERS, T(5), "workers forked"):
        kids = procfs.children(s.pid)
        s.stop(signal.SIGKILL)
        fail(f"the acceptor has {len(kids)} children, not the {WORKERS} workers asked for",
             tried=tried(target, *args), expected=f"{WORKERS} worker processes (children of the acceptor)",
             seen=f"children: {kids or 'none'}",
             hint="fork() the workers before announcing the port (start_worker)")
    return s


def workers(s) -> list[int]:
    return procfs.children(s.pid)


def connect(port: int) -> socket.socket:
    c = socket.create_connection(("127.0.0.1", port), timeout=T(5))
    c.settimeout(T(5))
    return c


REPLY_ENDS = (b"END\r\n", b"STORED\r\n", b"ERROR\r\n", b"DELETED\r\n", b"NOT_FOUND\r\n")


def ask(c: socket.socket, request: bytes, ending: tuple = REPLY_ENDS) -> bytes:
    """Sends request and returns what came back by the end of a WeensyDB reply."""
    return harness_ask(c, request, ending)


def holders(s, client: socket.socket) -> list[int]:
    """The pids (acceptor, workers) holding the server's end of this client's connection."""
    local_port = client.getsockname()[1]
    inodes = {t.inode for t in procfs.tcp_sockets(("tcp",))
              if t.local_port == s.port and t.remote_port == local_port}
    found = []
    for pid in [s.pid, *workers(s)]:
        for target in procfs.open_fds(pid):
            if target.startswith("socket:[") and int(target[8:-1]) in inodes:
                found.append(pid)
    return found


def client_sockets_of(s, pid: int) -> list[int]:
    """The connected TCP sockets on the server's port that pid holds, by descriptor."""
    return sorted(fd for fd, t in procfs.tcp_sockets_of(pid).items()
                  if t.local_port == s.port and t.state != procfs.LISTEN)


def unix_names() -> list[str]:
    """The bound names of /proc/net/unix (abstract ones start with @)."""
    names = []
    with open("/proc/net/unix") as table:
        next(table)
        for line in table:
            cols = line.split(maxsplit=7)
            if len(cols) == 8:
                names.append(cols[7].rstrip("\n"))
    return names


def admin_as(uid: int | None, name: str, command: str, pieces: int = 1) -> str:
    """Connects to @name as uid (None: as the checker itself), sends command and its newline,
    returns the answer (or what went wrong). With pieces > 1 the line goes in that many
    parts, each sent once the server has read the one before: SIOCOUTQ on an AF_UNIX socket
    counts what the peer has not read yet (polled, with a deadline)."""
    line = command + "\n"
    cuts = [len(line) * i // pieces for i in range(pieces + 1)]
    parts = [line[a:b] for a, b in zip(cuts, cuts[1:])]
    code = ("import fcntl,socket,struct,sys,termios,time\n"
            "s=socket.socket(socket.AF_UNIX,socket.SOCK_STREAM); s.settimeout(5)\n"
            f"s.connect('\\0'+{name!r})\n"
            "unread=lambda: struct.unpack('i', fcntl.ioctl(s, termios.TIOCOUTQ, bytes(4)))[0]\n"
            f"for i, part in enumerate({parts!r}):\n"
            "    if i:\n"
            f"        deadline=time.monotonic()+{T(3)}\n"
            "        while unread() and time.monotonic() < deadline: time.sleep(0.005)\n"
            "    try: s.sendall(part.encode())\n"
            "    except OSError: break\n"
            "data=b''\n"
            "while True:\n"
            "    chunk=s.recv(4096)\n"
            "    if not chunk: break\n"
            "    data+=chunk\n"
            "sys.stdout.write(data.decode(errors='replace'))\n")
    prefix = [] if uid is None else ["setpriv", f"--reuid={uid}", f"--regid={uid}", "--clear-groups"]
    done = subprocess.run([*prefix, sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=T(10))
    said = done.stdout.strip() or done.stderr.strip()
    return said.splitlines()[-1] if said else ""


# ---- the hand-off -----------------------------------------------------------------------

@check("each client is served by a worker; the acceptor keeps no copy of its socket", needs=["build"])
def test_handed_to_worker(target):
    with start(target) as s:
        kids = workers(s)
        clients = [connect(s.port) for _ in range(WORKERS)]
        try:
            for i, c in enumerate(clients):
                got = ask(c, f"set hand{i} 0 0 1\r\nx\r\n".encode())
                if got != b"STORED\r\n":
                    fail("a client of the prefork server got no STORED",
                         tried=f"{tried(target, '-w', WORKERS)}; set hand{i} on a new connection",
                         expected="STORED", seen=show_bytes(got, 60) or "(nothing)",
                         details=s.stderr().decode(errors="replace").splitlines()[-6:],
                         hint="the worker must receive the descriptor (recvmsg, SCM_RIGHTS: TODO 2) "
                              "that the acceptor sends (sendmsg: TODO 1)")
            held = {c.getsockname()[1]: holders(s, c) for c in clients}
            kept = client_sockets_of(s, s.pid)
            if kept:
                fail("the acceptor still holds the clients' sockets after passing them",
                     tried=f"{WORKERS} clients, each answered, then /proc/{s.pid}/fd of the acceptor",
                     expected="no connected TCP socket in the acceptor: only the listener",
                     seen=f"descriptors {kept} of the acceptor are client connections",
                     hint="sendmsg with SCM_RIGHTS gives the worker a new descriptor for the same "
                          "socket; the acceptor's own stays open until it closes it (TODO 4). Kept, "
                          "it leaks one descriptor per client, and a worker's close() no longer "
                          "ends the connection")
            by_worker = {port: [p for p in pids if p in kids] for port, pids in held.items()}
            unserved = [port for port, pids in by_worker.items() if not pids]
            if unserved:
                fail("a client's connection is held by no worker",
                     tried=f"{WORKERS} clients, then /proc/PID/fd of the workers {kids}",
                     expected="each client's socket in one worker's descriptors",
                     seen=f"clients from ports {unserved}: held by {[held[p] for p in unserved]}",
                     hint="each client must be passed to a worker, which serves it")
            used = sorted({p for pids in by_worker.values() for p in pids})
            note(f"{WORKERS} clients, served by workers {used}; the acceptor (pid {s.pid}) holds "
                 "none of their sockets")
        finally:
            for c in clients:
                c.close()


@check("no descriptor leaks: 40 clients later, every process holds what it held at the start",
       needs=["build"])
def test_no_leaked_descriptors(target):
    with start(target) as s:
        kids = workers(s)
        listen = procfs.listener(s.port)

        def holding_listener():
            return [pid for pid in kids if listen and f"socket:[{listen.inode}]" in procfs.open_fds(pid)]
        # (a worker just forked holds everything until it has run close_acceptor_descriptors)
        wait_until(lambda: not holding_listener(), T(3), "the workers closed the listener")
        if holding_listener():
            fail("a worker holds the listening socket",
                 tried=f"{tried(target, '-w', WORKERS)}; /proc/PID/fd of each worker",
                 expected="the listener only in the acceptor",
                 seen=f"workers {holding_listener()} hold socket:[{listen.inode}], the listener",
                 hint="a forked worker inherits every descriptor of the acceptor: close the listener, "
                      "the admin socket and the other workers' channels in the child "
                      "(close_acceptor_descriptors)")
        before = {pid: procfs.fd_count(pid) for pid in [s.pid, *kids]}
        for i in range(40):
            c = connect(s.port)
            got = ask(c, f"get leak{i}\r\n".encode())
            c.close()
            if got != b"END\r\n":
                fail("a client got no END for a get", tried=f"client {i + 1} of 40: get leak{i}",
                     expected="END", seen=show_bytes(got, 60) or "(nothing)",
                     hint="each new connection must be passed to a worker and served")
        settled = wait_until(lambda: all(procfs.fd_count(p) == n for p, n in before.items()), T(5),
                             "descriptors back to where they were")
        if not settled:
            grew = {pid: f"{n} -> {procfs.fd_count(pid)}" for pid, n in before.items()
                    if procfs.fd_count(pid) != n}
            who = "the acceptor" if s.pid in grew else "a worker"
            fail(f"{who} leaks descriptors: 40 closed clients later it holds more",
                 tried="40 clients, one after the other: connect, get, close; then /proc/PID/fd",
                 expected=f"the same number of descriptors as before: {before}",
                 seen=f"descriptor counts {grew} (acceptor {s.pid})",
                 hint="the acceptor must close its copy once it has passed the socket (TODO 4); "
                      "a worker closes a client when it has finished with it")
        note(f"40 clients later the acceptor and each worker hold exactly the descriptors they "
             f"started with ({before[s.pid]} in the acceptor)")


@check("a worker killed with -9 is replaced, and the other workers' clients do not notice",
       needs=["handed_to_worker"])
def test_worker_replaced(target):
    with start(target) as s:
        clients = [connect(s.port) for _ in range(2 * WORKERS)]
        try:
            for i, c in enumerate(clients):
                if ask(c, f"set kept{i} 0 0 2\r\nv{i}\r\n".encode()) != b"STORED\r\n":
                    fail("a client got no STORED", tried=f"set kept{i}", expected="STORED",
                         seen="something else", hint="every connection must be served")
            owner = {i: (holders(s, c) or [None])[0] for i, c in enumerate(clients)}
            victim = owner[0]
            os.kill(victim, signal.SIGKILL)
            def replaced() -> bool:   # one reading of the children: the victim may die between two
                now = workers(s)
                return len(now) == WORKERS and victim not in now
            back = wait_until(replaced, T(5), "a new worker in place of the killed one")
            if not back:
                fail("the killed worker was not replaced",
                     tried=f"kill -9 {victim} (a worker), then the acceptor's children",
                     expected=f"{WORKERS} workers again, a new pid in place of {victim}",
                     seen=f"children {workers(s)}; acceptor {'alive' if s.alive() else 'dead'}",
                     details=s.stderr().decode(errors="replace").splitlines()[-6:],
                     hint="the acceptor learns of a child's death by SIGCHLD: reap it with "
                          "waitpid(WNOHANG) and fork another (replace_dead_workers)")
            for i, c in enumerate(clients):
                if owner[i] == victim:
                    continue
                got = ask(c, f"get kept{i}\r\n".encode())
                want = f"VALUE kept{i} 0 2\r\nv{i}\r\nEND\r\n".encode()
                if got != want:
                    fail("a client of another worker noticed the kill",
                         tried=f"kill -9 {victim}; then on client {i} (worker {owner[i]}): get kept{i}",
                         expected=show_bytes(want, 60), seen=show_bytes(got, 60) or "(nothing)",
                         hint="workers are separate processes: one dying must not touch another's "
                              "clients, nor the shared table")
            c = connect(s.port)
            got = ask(c, b"get kept0\r\n")
            c.close()
            if got != b"VALUE kept0 0 2\r\nv0\r\nEND\r\n":
                fail("a new client after the kill does not see the table",
                     tried="get kept0 on a new connection", expected="VALUE kept0 0 2 / v0 / END",
                     seen=show_bytes(got, 60) or "(nothing)",
                     hint="the table is in shared memory, made before the first fork: a new worker "
                          "sees it too")
            note(f"worker {victim} killed; {workers(s)} serve now; "
                 f"{sum(o != victim for o in owner.values())} other clients went on as before")
        finally:
            for c in clients:
                c.close()


# ---- the admin socket: abstract names, a path, credentials ------------------------------

@check("an abstract name is a single-instance lock: EADDRINUSE while held, nothing left after kill -9",
       needs=["build"])
def test_abstract_single_instance(target):
    name = unique_name()
    first = start(target, "-n", name, hint="the admin socket's name is abstract: sun_path[0] is '\\0' "
                                          "and the length counts only the name (TODO 5)")
    with first:
        names = unix_names()
        if f"@{name}" not in names:
            near = [n for n in names if name in n]
            fail("the admin socket is not bound to the abstract name asked for",
                 tried=f"{tried(target, '-n', name)}; /proc/net/unix",
                 expected=f"@{name}", seen=f"{near or 'no name containing ' + name}",
                 hint=("the name is padded with '\\0' bytes (shown as @): the length passed to bind "
                        "must be offsetof(sockaddr_un, sun_path) + 1 + the name's size (TODO 5)")
                 if near else "sun_path[0] = '\\0', then the name (TODO 5)")
        second = run([target.binary(WEENSYDB), "-p", "0", "-w", "1", "-n", name], timeout=T(5))
        said = second.stderr.decode(errors="replace")
        if second.returncode != 1 or "EADDRINUSE" not in said:
            fail("a second instance with the same name did not stop with EADDRINUSE",
                 tried=f"{tried(target, '-n', name)} twice", expected="the second: exit status 1, "
                 "a message naming EADDRINUSE", seen=f"{second.exit_description()}; {said.strip()[:160]}",
                 hint="bind() of a name in use fails with EADDRINUSE: say so and exit 1 (claim_admin_socket)")
        os.kill(first.pid, signal.SIGKILL)
        gone = wait_until(lambda: f"@{name}" not in unix_names(), T(5), "the name released")
        if not gone:
            fail("the abstract name outlived its process", tried=f"kill -9 {first.pid}",
                 expected=f"@{name} gone from /proc/net/unix", seen="still there",
                 hint="a worker may still hold the admin socket: close it in every child")
    with start(target, "-n", name) as third:
        note(f"@{name}: a second instance got EADDRINUSE; after kill -9 a new one (pid {third.pid}) "
             "took the name at once, and no file was ever made")


@check("a path socket's file outlives kill -9 (compared), and still blocks a second instance while held",
       needs=["build"])
def test_path_socket_compared(target, tmp_path):
    sandbox.give(tmp_path)
    path = tmp_path / "admin.sock"
    first = start(target, "-u", path)
    with first:
        second = run([target.binary(WEENSYDB), "-p", "0", "-w", "1", "-u", str(path)], timeout=T(5))
        if second.returncode != 1:
            fail("a second instance started on the same path socket",
                 tried=f"{tried(target, '-u', path)} twice",
                 expected="the second: EADDRINUSE, exit status 1",
                 seen=f"the second instance: {second.exit_description()}; "
                      f"{second.stderr.decode(errors='replace').strip()[:120]}",
                 hint="unlinking the path before bind() \"fixes\" the stale file, and lets a second "
                      "instance steal the name of a live one: the first's clients are lost. The "
                      "abstract namespace has no stale files (TODO 5)")
        os.kill(first.pid, signal.SIGKILL)
        first.proc.wait(timeout=T(5))
    if not path.exists():
        fail("the socket file vanished with its process", tried=f"kill -9 of {tried(target, '-u', path)}",
             expected=f"{path.name} still there: nothing removes it when a process is killed",
             seen="no file", hint="bind the path given by -u, and do not unlink it at start-up")
    stale = run([target.binary(WEENSYDB), "-p", "0", "-w", "1", "-u", str(path)], timeout=T(5))
    note(f"after kill -9 the file {path.name} stays (a socket, {oct(path.stat().st_mode)[-3:]}); "
         f"a new instance: {stale.exit_description()}, "
         f"{'EADDRINUSE' if b'EADDRINUSE' in stale.stderr else 'no EADDRINUSE'}: a stale file "
         "blocks it until someone removes it")


@check("the admin socket answers its own uid only (SO_PEERCRED), whoever else connects",
       needs=["build"])
def test_peercred(target):
    name = unique_name()
    with start(target, "-n", name):
        own = sandbox.SANDBOX_UID if sandbox.active() else None
        answer = admin_as(own, name, "stats")
        if not answer.startswith(f"workers {WORKERS}"):
            fail("the admin socket did not answer `stats` to a client of its own uid",
                 tried=f"as uid {own if own is not None else os.geteuid()}: connect to @{name}, send stats",
                 expected=f"workers {WORKERS} pids ...", seen=answer or "(nothing)",
                 hint=f"nothing listens on exactly @{name}: is the abstract name bound with its exact "
                      "length (TODO 5)?" if "ConnectionRefused" in answer else
                      "SO_PEERCRED on the accepted socket gives the client's uid; compare it with "
                      "geteuid() (TODO 6)")
        split = admin_as(own, name, "stats", pieces=2)
        if not split.startswith(f"workers {WORKERS}"):
            fail("the admin socket took part of a command for the whole",
                 tried=f"as uid {own if own is not None else os.geteuid()}: connect to @{name}, send `st`, "
                       "then `ats\\n` once the server has read `st`",
                 expected=f"workers {WORKERS} pids ...", seen=split or "(nothing)",
                 hint="a read() of a stream socket returns what has arrived, which may be part of a "
                      "line: read until the newline (read_command in serve_admin does)")
        if not sandbox.active():
            note("not root: the checker cannot become another uid, so only the own-uid half ran")
            return
        other = sandbox.SANDBOX_UID + 100001
        refused = admin_as(other, name, "stats")
        if not refused.startswith("refused"):
            fail("the admin socket answered a client of another uid",
                 tried=f"as uid {other} (setpriv): connect to @{name}, send stats",
                 expected="refused: uid ... is not this server's", seen=refused or "(nothing)",
                 hint="read the credentials of the connected client socket (the one accept() "
                      "returned), not of the listening socket: on a listener SO_PEERCRED gives the "
                      "server's own uid (TODO 6)")
        note(f"uid {own} got `{answer}` (also with `stats` sent in two pieces); uid {other} got `{refused}`")


# ---- MSG_PEEK -------------------------------------------------------------------------

@check("one port, two protocols: MSG_PEEK routes HTTP to a status page and leaves WeensyDB's bytes",
       needs=["build"])
def test_peek_routes(target):
    with start(target) as s:
        c = connect(s.port)
        got = ask(c, b"get nothing\r\n")
        c.close()
        if got.startswith(b"SERVER_ERROR no worker"):
            fail("the connection was never handed to a worker, so the peek was not reached",
                 tried="get nothing (as the first request of a connection)", expected="END",
                 seen=show_bytes(got, 60),
                 hint="the check `each client is served by a worker…` comes first: the acceptor "
                      "sends the socket (sendmsg, TODO 1), a worker receives it (recvmsg, TODO 2)")
        if got != b"END\r\n":
            fail("the first bytes of a WeensyDB request were consumed by the peek",
                 tried="get nothing (as the first request of a connection)", expected="END",
                 seen=show_bytes(got, 60) or "(nothing)",
                 hint="recv() without MSG_PEEK takes the bytes away: the request reader then starts "
                      "in the middle of the command (TODO 3)")
        c = connect(s.port)
        got = ask(c, b"\r\n")
        c.close()
        if got != b"ERROR\r\n":
            fail("a first request shorter than four bytes got no answer" if not got else
                 "a first request shorter than four bytes did not get ERROR",
                 tried="an empty line, \\r\\n (2 bytes), as the first request of a connection",
                 expected="ERROR", seen=show_bytes(got, 60) if got else f"nothing within {T(5):g} s",
                 hint="a peek at four bytes with MSG_WAITALL waits until four have come: a client "
                      "that sent fewer waits for its answer forever. Peek at one byte; only a 'G' "
                      "is worth waiting for four (TODO 3)" if not got else
                      "the request reader must see the client's bytes untouched (TODO 3)")
        c = connect(s.port)
        page = ask(c, b"GET / HTTP/1.0\r\nHost: x\r\n\r\n", ending=())
        c.close()
        if not page.startswith(b"HTTP/1.0 200") or b"weensydb worker" not in page:
            fail("an HTTP request on the WeensyDB port did not get the status page",
                 tried="GET / HTTP/1.0", expected="HTTP/1.0 200 OK ... weensydb worker PID: ...",
                 seen=show_bytes(page, 80) or "(nothing)",
                 hint="peek at the first four bytes (MSG_PEEK | MSG_WAITALL) and compare them "
                      "with \"GET \" (TODO 3)")
        split = http_in_two_pieces(s)
        if not split.startswith(b"HTTP/1.0 200") or b"weensydb worker" not in split:
            fail("an HTTP request whose `G` came alone did not get the status page",
                 tried="`G` alone; once the worker had it and waited for more, "
                       "`ET / HTTP/1.0` and the blank line",
                 expected="HTTP/1.0 200 OK ... weensydb worker PID: ...",
                 seen=show_bytes(split, 80) or "(nothing)",
                 hint="a peek returns what has arrived, perhaps fewer than the four bytes asked "
                      "for, and then the request went to the WeensyDB reader, which took `G`. "
                      "After a 'G', peek with MSG_PEEK | MSG_WAITALL: it waits for all four (TODO 3)")
        note(f"`get nothing` -> END, `\\r\\n` -> ERROR, `GET /` (whole, and with its `G` alone) -> "
             f"{page.splitlines()[-1].decode(errors='replace')}")


def waits_on(s, c: socket.socket) -> bool:
    """True once a thread of the worker holding c's connection sleeps in a system call on
    that socket (its first argument is the worker's descriptor for it)."""
    port = c.getsockname()[1]
    for pid in workers(s):
        try:
            fds = [fd for fd, t in procfs.tcp_sockets_of(pid).items()
                   if t.local_port == s.port and t.remote_port == port]
            if fds and any(t.args and t.args[0] in fds for t in thread_states(pid)
                           if t.syscall is not None):
                return True
        except OSError:
            continue   # a process that ended while we looked
    return False


def http_in_two_pieces(s) -> bytes:
    """GET / with its first byte sent alone: the rest goes only once the server has
    acknowledged `G` and the worker sleeps on the socket (in a peek waiting for four bytes,
    or, having taken `G` for WeensyDB, in the request reader's read). Returns the answer."""
    c = connect(s.port)
    try:
        c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        c.sendall(b"G")
        port = c.getsockname()[1]
        wait_until(lambda: (procfs.tcp_queues(port, s.port) or (1, 0))[0] == 0, T(3),
                   "`G` acknowledged: in the server's socket")
        wait_until(lambda: waits_on(s, c), T(3), "the worker waits on the socket")
        return ask(c, b"ET / HTTP/1.0\r\n\r\n", ending=())
    finally:
        c.close()


# ---- the deleted status file ----------------------------------------------------------

@check("a deleted status file lives on in the workers: no name on disk, passed like a socket",
       needs=["handed_to_worker"])
def test_deleted_status_file(target, tmp_path):
    sandbox.give(tmp_path)
    with start(target, "-s", tmp_path) as s:
        left = [p.name for p in tmp_path.iterdir() if p.name.startswith("weensydb-status")]
        if left:
            fail("the status file is still on disk", tried=f"{tried(target, '-s', tmp_path)}; ls",
                 expected="no weensydb-status.* left: deleted once written",
                 seen=", ".join(left), hint="unlink() it once written (TODO 7): the open descriptor keeps "
                                           "the data")

        def pages_and_holders():
            held = {pid: [t for t in procfs.open_fds(pid) if "weensydb-status" in t] for pid in workers(s)}
            return held

        def check_page(when):
            c = connect(s.port)
            page = ask(c, b"GET / HTTP/1.0\r\n\r\n", ending=())
            c.close()
            if b"status written by acceptor" not in page:
                fail(f"the status page does not show the deleted file's text ({when})",
                     tried="GET / HTTP/1.0", expected="... status written by acceptor N, then deleted",
                     seen=show_bytes(page, 100) or "(nothing)",
                     hint="the acceptor passes the file's descriptor to each worker it starts, "
                          "replacements included (send_fd with 'S'); keep it open in the acceptor")
        def without_status():
            held = pages_and_holders()
            return [pid for pid, links in held.items() if not any(t.endswith("(deleted)") for t in links)]
        # (a worker just forked gets the file in its first message: give it a moment)
        wait_until(lambda: not without_status(), T(3), "every worker holds the status file")
        missing = without_status()
        if missing:
            fail("a worker holds no descriptor of the deleted status file",
                 tried="/proc/PID/fd of each worker", expected="…/weensydb-status.XXXXXX (deleted)",
                 seen=f"workers {missing}: none", hint="send it to each worker (send_fd, kind 'S')")
        check_page("at the start")
        victim = workers(s)[0]
        os.kill(victim, signal.SIGKILL)
        wait_until(lambda: len(workers(s)) == WORKERS and victim not in workers(s), T(5), "replaced")
        for _ in range(WORKERS):
            check_page(f"after worker {victim} was killed with -9 and replaced")
        wait_until(lambda: not without_status(), T(3), "the new worker holds the status file")
        missing = without_status()
        held = pages_and_holders()
        if missing:
            fail("a replacement worker got no descriptor of the deleted status file",
                 tried=f"kill -9 {victim}; /proc/PID/fd of the new worker",
                 expected="…/weensydb-status.XXXXXX (deleted)", seen=f"workers {missing}: none",
                 hint="the acceptor keeps its descriptor, so it can pass it to every new worker")
        link = next(t for links in held.values() for t in links)
        note(f"every worker holds {link}; the page still shows it after a replacement")


# ---- seqpacket and datagrams ------------------------------------------------------------

@check("SOCK_SEQPACKET keeps the three writes apart; SOCK_STREAM does not", needs=["build"])
def test_boundaries(target):
    results = {}
    for kind in ("seqpacket", "stream"):
        r = run([target.binary(BOUNDARIES), kind], timeout=T(5))
        results[kind] = r.stdout.decode(errors="replace").splitlines()
        if r.returncode != 0:
            fail(f"boundaries {kind} failed", tried=f"boundaries {kind}", expected="exit status 0",
                 seen=f"{r.exit_description()}", details=r.stderr_lines(), hint="read its stderr above")
    want = ["read 3 bytes: one", "read 4 bytes: two!", "read 5 bytes: three"]
    if results["seqpacket"] != want:
        fail("SOCK_SEQPACKET did not give one message per read",
             tried="boundaries seqpacket", expected=" | ".join(want),
             seen=" | ".join(results["seqpacket"]) or "(nothing)",
             hint="a socket pair of type SOCK_SEQPACKET keeps each write a record (TODO 9); a "
                  "SOCK_STREAM read takes every byte that has arrived")
    if len(results["stream"]) >= 3:
        fail("SOCK_STREAM kept the boundaries", tried="boundaries stream",
             expected="fewer reads than writes: a stream has no boundaries",
             seen=" | ".join(results["stream"]), hint="for `stream`, use SOCK_STREAM")
    note(f"seqpacket: {len(results['seqpacket'])} reads of 3, 4, 5 bytes; stream: "
         f"{' | '.join(results['stream'])}")


@check("a datagram client that binds gets its answer, two at once from names of their own; "
       "an unbound sender cannot be answered",
       needs=["build"])
def test_dgram_bind(target, tmp_path):
    sandbox.give(tmp_path)
    path = tmp_path / "echo.sock"
    from checker.harness import spawn
    from checker.harness.procs import kill_group
    server = spawn([str(target.binary(DGRAM)), "server", str(path)], stdout=subprocess.PIPE,
                   stderr=subprocess.PIPE)
    try:
        if not wait_until(path.exists, T(5), "the server's socket file"):
            fail("dgram server made no socket file", tried=f"dgram server {path}",
                 expected="a bound socket at the path", seen="no file", hint="bind it to the path")
        answer = run([target.binary(DGRAM), "client", str(path), "hello"], timeout=T(10))
        if answer.returncode != 0 or answer.stdout.strip() != b"echo: hello":
            fail("the datagram client got no answer",
                 tried=f"dgram client {path} hello", expected="echo: hello",
                 seen=f"{answer.exit_description()}; {answer.stdout.strip().decode(errors='replace')} "
                      f"{answer.stderr.strip().decode(errors='replace')}",
                 hint="an AF_UNIX datagram socket that never called bind() has no address: the "
                      "server's recvfrom() gets only the family, and has nowhere to send. bind() "
                      "it first (autobind: only sun_family, length sizeof(sa_family_t)) (TODO 8)")
        anonymous = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        anonymous.settimeout(T(0.5))
        anonymous.sendto(b"anonymous", str(path))
        try:
            reply = anonymous.recv(100)
        except OSError:
            reply = None
        anonymous.close()
        addresses = two_clients_at_once(target, tmp_path / "held.sock")
    finally:
        kill_group(server)
        server.wait(timeout=T(5))
        for stream in (server.stdout, server.stderr):
            stream.close()
    note(f"dgram client: `{answer.stdout.strip().decode()}`; the checker's unbound socket: "
         f"{'no answer' if reply is None else reply!r}; two clients at once sent from "
         f"{' and '.join(addresses)}")


def shown_address(address) -> str:
    """An AF_UNIX sender's address as /proc/net/unix shows it: @ for each '\\0' of an
    abstract name (a long run of them counted)."""
    if isinstance(address, str):
        return address or "(unbound)"
    text = "".join("@" if b == 0 else chr(b) for b in address)
    if len(text) <= 24:
        return text
    return f"{text[:8]}… ({len(address)} bytes, {address.count(0)} of them '\\0')"


def two_clients_at_once(target, path) -> list[str]:
    """Two `dgram client`s against the checker's own socket at path: the first's datagram is
    held unanswered while the second starts and sends. Each must send from an address of its
    own. Returns the two addresses, shown."""
    from checker.harness import spawn
    from checker.harness.procs import kill_group
    held = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    clients = []
    try:
        held.bind(str(path))
        os.chmod(path, 0o666)   # the sandboxed client sends to it
        held.settimeout(T(5))
        tried_here = (f"dgram client PATH first; while it waits for its answer, dgram client PATH "
                      f"second (PATH: {path}, the checker's socket)")
        senders = []
        for word in ("first", "second"):
            clients.append(spawn([str(target.binary(DGRAM)), "client", str(path), word],
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE))
            client = clients[-1]
            def sent() -> bool:
                return bool(select.select([held], [], [], 0)[0])
            wait_until(lambda: sent() or client.poll() is not None, T(5), f"the {word} client's datagram")
            if not sent():
                ended = client.poll() is not None
                said = client.stderr.read().decode(errors="replace").strip() if ended else ""
                fail(f"the {word} of two dgram clients at once sent nothing",
                     tried=tried_here, expected="a datagram from each, from two different addresses",
                     seen=f"the {word} client " + (f"ended ({said[:160] or 'no message'})" if ended
                                                   else f"sent no datagram within {T(5):g} s"),
                     hint="a client bound to one fixed name (a path, or sizeof(sockaddr_un) of zeros: "
                          "the abstract name of 107 '\\0' bytes) cannot bind while another client holds "
                          "it (EADDRINUSE). bind() with only the family, length sizeof(sa_family_t): the "
                          "kernel picks a new name for each socket (autobind, TODO 8)"
                          if word == "second" else
                          "it got its answer from dgram server above; here it sends to the checker's "
                          "socket at PATH: see what it said")
            message, sender = held.recvfrom(4096)
            senders.append((message, sender))
        shown = [shown_address(sender) for _, sender in senders]
        if senders[0][1] == senders[1][1]:
            fail("two dgram clients at once sent from the same address",
                 tried=tried_here, expected="two different sender addresses (autobind gives each "
                 "socket its own five-hex-digit abstract name)", seen=f"both from {shown[0]}",
                 hint="an answer to that address reaches only whichever client holds it now. bind() "
                      "with only the family, length sizeof(sa_family_t), not sizeof(sockaddr_un) nor "
                      "a fixed path: the kernel picks a new name for each socket (autobind, TODO 8)")
        for message, sender in senders:
            try:
                held.sendto(b"echo: " + message, sender)
            except OSError:
                pass   # (that client is gone: its own output says so)
        return shown
    finally:
        held.close()
        for client in clients:
            kill_group(client)
            client.wait(timeout=T(5))
            for stream in (client.stdout, client.stderr):
                stream.close()
