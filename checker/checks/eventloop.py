"""The checks that only single-threaded event-loop servers get (lessons 12-14).

One thread serves every client, so on top of the checks every version gets
(protocol, blocking) these ask what a state machine per connection must get
right: an idle server sleeps; a reply larger than the socket's buffer leaves
in pieces and arrives whole; requests may come many in one packet or one over
many packets; and descriptor limits (select's FD_SETSIZE, the process's
RLIMIT_NOFILE) are met cleanly. Version 9 polls without sleeping on purpose.
"""
import os
import socket
import statistics
import time

from checker.harness import (LineClient, T, cannot_check, fail, note, procfs, show_bytes, start_server,
                             thread_states, wait_until)
from checker.checks import wdb
from checker.checks.version import check
from checker.checks.weensydb import PROGRAM, expect_reply, server, what_it_does

SET_BIG = b"set big 0 0 %d\r\n" % wdb.MAX_VALUE
FD_SETSIZE = 1024


@check("an idle server uses almost no CPU", needs=["never_close"], when="event_loop",
       bug=("idle_burn", "an idle server keeps a core busy"))
def test_idle_cpu(target, v):
    with server(target) as s, wdb.NeverClose(s), wdb.NeverClose(s), wdb.HalfRequest(s):
        share = procfs.cpu_share(s.proc.pid, seconds=1.0)
        doing = what_it_does(s.proc.pid)
    tried = "3 clients connected, served once, then silent; the server's CPU time over 1 s"
    if v.idle_burn:
        if share < 0.3:
            fail(f"the server used only {share:.0%} of a core while idle", tried=tried,
                 expected=f"version {v.number}'s polling loop to keep a core busy",
                 seen=f"{share:.0%} of a core; its thread was {doing}",
                 hint="this version never waits on purpose: its loop asks every socket again "
                      f"and again. Does main() loop without blocking? {v.idle_burn} fixes it")
        note(f"{share:.0%} of a core while nothing happened: the loop asks every socket again "
             f"and again ({v.idle_burn} lets it sleep)")
        return
    if share > 0.10:
        fail(f"the server used {share:.0%} of a core while idle", tried=tried,
             expected="under 10%: asleep until a socket is ready", seen=f"its thread was {doing}",
             hint="poller_wait (poller.cc) must sleep in select()/epoll_wait() with no "
                  "timeout, and watch a descriptor for writing only while poller_watch asked "
                  "for WRITABLE: a socket with room is always writable, so select() would "
                  "return at once, again and again")
    note(f"{share:.1%} of a core while idle; its thread was {doing}")

@check("a reply far larger than the socket buffers arrives whole", needs=["protocol"], when="event_loop")
def test_big_value(target, v):
    value = bytes((i * 7 + i // 251) % 256 for i in range(256)) * (wdb.MAX_VALUE // 256)
    copies = 8
    with server(target) as s:
        with LineClient(s.port) as setup:
            expect_reply(target, setup, SET_BIG + value + b"\r\n", b"STORED\r\n",
                         what="storing a 1 MiB value")
        request = b"get" + b" big" * copies + b"\r\n"
        reply = (b"VALUE big 0 %d\r\n" % len(value) + value + b"\r\n") * copies + b"END\r\n"
        got, stalled = read_slowly(s, request, len(reply))
    tried = (f"stored a 1 MiB value, then `get{' big' * copies}` on a connection with a 4 KiB "
             f"receive buffer: an {len(reply) >> 20} MiB reply, more than the socket buffers "
             f"hold, so the server's write() must take it in pieces")
    if got != reply[:len(got)]:
        at = next(i for i in range(len(got)) if got[i] != reply[i])
        fail(f"the reply is wrong from byte {at:,} on", tried=tried,
             expected=show_bytes(reply[at:at + 24]), seen=show_bytes(got[at:at + 24]),
             hint="write() may take only part of what it is given: the rest, from the byte "
                  "after the last one it took, must be written later (c.sent(n) with the n "
                  "write returned)")
    if stalled:
        fail(f"the reply stopped after {len(got):,} of {len(reply):,} bytes", tried=tried,
             expected="the whole reply", seen=f"nothing more for {T(5):.0f}s",
             hint="either the rest was dropped (after a partial write only the n bytes "
                  "write() returned are gone: c.sent(n)), or it waits for a wake-up that "
                  "never comes (watch the socket for writing while output waits: select's "
                  "write set, EPOLLOUT)")
    note(f"{len(reply):,} bytes through a 4 KiB receive buffer, every byte right")

@check("pipelined requests in one packet are all answered, in order", needs=["protocol"],
       when="event_loop")
def test_pipelined(target, v):
    requests, replies = pipeline()
    with server(target) as s:
        with socket.create_connection(("127.0.0.1", s.port), timeout=T(5)) as sock:
            sock.sendall(requests)
            sock.shutdown(socket.SHUT_WR)   # "that is all": replies must still come
            got, error = read_to_end(sock, len(replies))
    count = requests.count(b"\n") - 6   # (the refused blocks' line ends are not requests)
    tried = (f"{count} requests ({len(requests):,} bytes, bad ones among them) in one "
             f"send(), then shutdown(SHUT_WR)")
    if got != replies:
        at = next((i for i in range(min(len(got), len(replies))) if got[i] != replies[i]),
                  min(len(got), len(replies)))
        fail("the replies to pipelined requests are wrong" if got[:at] != replies[:at] or
             len(got) > len(replies) else f"the replies to pipelined requests stop after {at:,} "
             f"of {len(replies):,} bytes", tried=tried,
             expected=show_bytes(replies[at:at + 40]), seen=show_bytes(got[at:at + 40]) or error,
             hint="one read() may bring many requests: run every whole request in the "
                  "buffer, not only the first (run_requests does); after the client's "
                  "end of input, answer what it sent before closing")
    note(f"{count} requests in one packet: {len(replies):,} bytes of replies, in order")

@check("one request split over many packets is answered once, whole", needs=["protocol"],
       when="event_loop")
def test_split_request(target, v):
    request = b"set split 0 0 40\r\n" + b"0123456789" * 4 + b"\r\nget split\r\n"
    reply = b"STORED\r\nVALUE split 0 40\r\n" + b"0123456789" * 4 + b"\r\nEND\r\n"
    with server(target) as s:
        with socket.create_connection(("127.0.0.1", s.port), timeout=T(5)) as sock:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            local = sock.getsockname()[1]
            early = b""
            for i in range(len(request)):
                sock.sendall(request[i:i + 1])
                wait_until_read(s.port, local, T(3))   # the server has taken this byte
                if i < request.index(b"get") - 1:   # before the set's last byte
                    early += peek(sock)
            got, error = read_to_end(sock, len(reply), close_after=len(reply))
    tried = f"{show_bytes(request, 60)} sent one byte per packet, each read by the server"
    if early:
        fail("the server answered before the request was whole", tried=tried,
             expected="nothing until the data block's \\r\\n",
             seen=show_bytes(early),
             hint="keep what read() returned in the connection's input until a whole line "
                  "(and for set, the whole data block) is there")
    if got != reply:
        fail("a request that came in pieces got the wrong answer", tried=tried,
             expected=show_bytes(reply), seen=show_bytes(got) or error,
             hint="append what each read() returns to the connection's input; never take "
                  "one read() for one request")
    note(f"{len(request)} packets of 1 byte, one STORED and one VALUE…END")


@check("clients beyond FD_SETSIZE are refused cleanly; the others go on", needs=["protocol"],
       when=("event_loop", "fd_setsize"))
def test_fd_setsize(target, v):
    want = FD_SETSIZE + 76
    have = procfs.raise_open_files_limit(want + 64)
    if have < want + 64:
        cannot_check(f"this check needs {want + 64} open files and the hard limit "
                     f"is {have}", "raise it (ulimit -Hn, or /etc/security/limits.conf)")
    s = start_server(target.binary(PROGRAM, "asan"), env=asan_env())
    with s:
        socks, outcomes = open_and_ask(s.port, want)
        alive = s.alive()
        served = [i for i, o in enumerate(outcomes) if o == "served"]
        refused = [i for i, o in enumerate(outcomes) if o == "refused"]
        other = [(i, o) for i, o in enumerate(outcomes) if o not in ("served", "refused")]
        after = None
        if alive:
            for sock in socks[:100]:
                sock.close()
            wait_until(lambda: procfs.fd_count(s.proc.pid) < FD_SETSIZE - 50, T(5),
                       "the server closed the clients that left", interval=0.02)
            after, seen = wdb.second_client_served(s.port)
        for sock in socks:
            sock.close()
        stderr = s.stderr()
    tried = (f"{want} clients connected at once to the AddressSanitizer build, each sent "
             f"`get x`")
    if not alive:
        fail(f"the server died with {want} clients connected", tried=tried,
             expected="the server alive, refusing the clients it cannot watch",
             seen=f"it exited (status {s.proc.poll()}) while the clients connected",
             details=asan_lines(stderr),
             hint="FD_SET(fd, …) with fd >= FD_SETSIZE (1024) writes past the end of "
                  "the fd_set: poller_watch must refuse to watch such a descriptor "
                  "(return false; poller.cc, TODO 1)")
    if not refused or other:
        fail("clients beyond FD_SETSIZE were not refused cleanly", tried=tried,
             expected="`SERVER_ERROR too many connections` and a close for each client "
                      "select() cannot watch",
             seen=f"{len(served)} served, {len(refused)} refused"
                  + (f"; client {other[0][0]}: {other[0][1]}" if other else ""),
             hint="a client whose descriptor is >= FD_SETSIZE cannot be in an fd_set: "
                  "poller_watch must return false for it (poller.cc, TODO 1), and the "
                  "event loop then tells the client and closes it")
    if not after:
        fail("after 100 clients left, a new client was not served", tried=tried,
             expected="the freed descriptors used again", seen=seen,
             hint="close and forget each client whose connection ended")
    note(f"{len(served)} clients served, {len(refused)} refused with SERVER_ERROR; "
         f"after 100 left, a new client was served (ASan silent)")


@check("{v.many_connections:,} idle connections held; an active client stays fast", needs=["protocol"],
       when=("event_loop", "many_connections"))
def test_many_connections(target, v):
    n = v.many_connections
    have = procfs.raise_open_files_limit(n + 200)
    if have < n + 200:
        cannot_check(f"this check needs {n + 200} open files and the hard limit is {have}",
                     "raise it (ulimit -Hn, or /etc/security/limits.conf)")
    # Started the way a shell starts it: a soft limit of 1024 it must raise itself.
    wrapper = ("prlimit", f"--nofile=1024:{have}", "--")
    with start_server(target.binary(PROGRAM), wrapper=wrapper) as s:
        before = latencies(s.port, 300)
        rss_before = procfs.vm_rss(s.proc.pid)
        held, problem = hold_connections(s.port, n)
        try:
            during = latencies(s.port, 300) if not problem else []
            rss_during = procfs.vm_rss(s.proc.pid)
        finally:
            for sock in held:
                sock.close()
    tried = (f"the server started with a soft open-files limit of 1024 (as from a shell), "
             f"then {n:,} clients connected, each sent `get x` and stayed idle")
    if problem:
        fail(f"only {len(held):,} of {n:,} connections were served", tried=tried,
             expected=f"all {n:,} served and held", seen=problem,
             hint="a process may open only RLIMIT_NOFILE descriptors, 1024 by default: "
                  "raise the soft limit to the hard one first (raise_open_files_limit)"
             if 1000 <= len(held) <= 1030 else
             "accept every waiting client when the listener is ready, and watch each")
    p50_before, p50 = statistics.median(before), statistics.median(during)
    p99 = sorted(during)[int(len(during) * 0.99) - 1]
    note(f"{n:,} connections held; {(rss_during - rss_before) / n:,.0f} bytes of user "
         f"memory per idle connection")
    note(f"an active client's round trip: median {p50_before * 1e6:.0f} µs alone, "
         f"{p50 * 1e6:.0f} µs (p99 {p99 * 1e6:.0f} µs) beside {n:,} idle connections")
    if p50 > max(10 * p50_before, 0.002):
        fail(f"{n:,} idle connections slowed an active client down {p50 / p50_before:.0f}×",
             tried=tried + "; then 300 set/get round trips on one more connection",
             expected=f"a median round trip near {p50_before * 1e6:.0f} µs (under 10× or 2 ms)",
             seen=f"median {p50 * 1e3:.1f} ms",
             hint="idle connections must cost nothing per event: poller_wait (poller.cc) "
                  "must return only the descriptors epoll_wait returned, and poller_watch "
                  "call epoll_ctl only when a descriptor's interest changed, never for "
                  "every client on every turn")


# ---- measuring the server ------------------------------------------------------



def asan_env() -> dict:
    env = dict(os.environ)
    env["ASAN_OPTIONS"] = "detect_leaks=0:abort_on_error=0:exitcode=23"
    return env


def asan_lines(stderr: bytes) -> list[str]:
    lines = stderr.decode(errors="replace").splitlines()
    keep = [line for line in lines if "ERROR: AddressSanitizer" in line or " in " in line
            and ("weensydb.cc" in line or "poller.cc" in line or "fd_set" in line)]
    return (keep or lines)[:6]


# ---- TCP queues, as the kernel shows them ---------------------------------------

def wait_until_read(server_port: int, client_port: int, timeout: float):
    """Waits (bounded) until the server's socket has no unread bytes from this client."""
    def all_read():
        queues = procfs.tcp_queues(server_port, client_port)
        return queues is None or queues[1] == 0
    wait_until(all_read, timeout, "the server has read every byte", interval=0.001)


def wait_until_write_returned(server, client_port: int, timeout: float):
    """Waits (bounded) until the server has queued reply bytes for this client and its
    thread is asleep again (a polling server never sleeps: then 0.2 s after the bytes)."""
    queued_at = []

    def write_returned():
        queues = procfs.tcp_queues(server.port, client_port)
        if not queues or queues[0] == 0:
            return False
        if not queued_at:
            queued_at.append(time.monotonic())
        states = {t.state for t in thread_states(server.proc.pid)}
        return "R" not in states or time.monotonic() - queued_at[0] > 0.2
    wait_until(write_returned, timeout, "the server's write() is over")


def peek(sock) -> bytes:
    """What has arrived on sock and not been read, without waiting or reading it."""
    timeout = sock.gettimeout()
    sock.settimeout(0)        # (with a timeout, Python would first wait for data to come)
    try:
        return sock.recv(4096, socket.MSG_PEEK)
    except BlockingIOError:
        return b""
    finally:
        sock.settimeout(timeout)


# ---- clients ------------------------------------------------------------------------

def read_to_end(sock, want: int, close_after: int | None = None) -> tuple[bytes, str]:
    """Reads until EOF (or until close_after bytes came): (bytes, '' or the error that
    stopped it, e.g. a timeout)."""
    got, error = b"", ""
    try:
        while close_after is None or len(got) < close_after:
            chunk = sock.recv(65536)
            if not chunk:
                break
            got += chunk
    except OSError as e:
        error = f"after {len(got):,} bytes: {e.__class__.__name__} ({e})"
    return got, error


def read_slowly(server, request: bytes, size: int) -> tuple[bytes, bool]:
    """Sends request on a connection with a 4 KiB receive buffer and reads the reply,
    but only once the server's first write() is over: the kernel cannot hold a reply
    that large, so that write must have been partial. Returns (bytes read, stalled:
    nothing came for 5 s before size bytes)."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.settimeout(T(5))
    with sock:
        sock.connect(("127.0.0.1", server.port))
        sock.sendall(request)
        wait_until_write_returned(server, sock.getsockname()[1], T(5))
        got = bytearray()
        try:
            while len(got) < size:
                chunk = sock.recv(65536)
                if not chunk:
                    break
                got += chunk
        except socket.timeout:
            return bytes(got), True
        return bytes(got), len(got) < size


def pipeline() -> tuple[bytes, bytes]:
    """~300 requests, good and bad, and the replies they must get, in order."""
    requests, replies = [], []
    for i in range(60):
        requests.append(b"set pipe%d 0 0 %d\r\n%s\r\n" % (i, len(str(i)) + 2, b"v-%d" % i))
        replies.append(b"STORED\r\n")
    for i in range(3000):   # small requests: read() boundaries fall inside lines
        requests.append(b"get pipe%d\r\n" % (i % 60))
        replies.append(b"VALUE pipe%d 0 %d\r\nv-%d\r\nEND\r\n" % (i % 60, len(str(i % 60)) + 2, i % 60))
    for i in range(60):
        requests.append(b"get pipe%d nokey\r\n" % i)
        replies.append(b"VALUE pipe%d 0 %d\r\nv-%d\r\nEND\r\n" % (i, len(str(i)) + 2, i))
        if i % 10 == 0:
            requests.append(b"bogus %d\r\n" % i)
            replies.append(b"ERROR\r\n")
            requests.append(b"set toolong 0 0 2000000\r\n" + b"x" * 2000000 + b"\r\n")
            replies.append(b"SERVER_ERROR object too large for cache\r\n")
    for i in range(0, 60, 2):
        requests.append(b"exch pipe%d pipe%d\r\n" % (i, i + 1))
        replies.append(b"EXCHANGED\r\n")
    for i in range(60):
        requests.append(b"delete pipe%d\r\n" % i)
        replies.append(b"DELETED\r\n")
    return b"".join(requests), b"".join(replies)


def open_and_ask(port: int, n: int) -> tuple[list, list[str]]:
    """n connections at once, each asked `get x`: (sockets, 'served'/'refused'/what else)."""
    socks, outcomes = [], []
    for _ in range(n):
        sock = socket.socket()
        sock.settimeout(T(5))
        try:
            sock.connect(("127.0.0.1", port))
        except OSError as e:
            outcomes.append(f"connect failed: {e}")
            socks.append(sock)
            break
        socks.append(sock)
    for sock in socks[len(outcomes):]:
        outcomes.append(ask(sock))
    return socks, outcomes


def ask(sock) -> str:
    try:
        sock.sendall(b"get x\r\n")
        got = b""
        while not got.endswith(b"\n"):
            chunk = sock.recv(4096)
            if not chunk:
                break
            got += chunk
    except ConnectionResetError:
        return "refused"          # told and closed, the reset overtaking the line
    except OSError as e:
        return f"{e.__class__.__name__}: {e}"
    if got == b"END\r\n":
        return "served"
    if got in (b"SERVER_ERROR too many connections\r\n", b""):
        return "refused"
    return f"got {show_bytes(got)}"


def hold_connections(port: int, n: int) -> tuple[list, str]:
    """Opens n connections, each served once (`get x`), and keeps them open.
    Returns (the sockets, '' or what went wrong)."""
    held = []
    batch = 500
    try:
        for start in range(0, n, batch):
            socks = []
            for _ in range(min(batch, n - start)):
                sock = socket.socket()
                sock.settimeout(T(5))
                held.append(sock)
                sock.connect(("127.0.0.1", port))
                socks.append(sock)
            for sock in socks:
                sock.sendall(b"get x\r\n")
            for i, sock in enumerate(socks):
                outcome = ask_reply(sock)
                if outcome:
                    return held[:start + i], f"connection {start + i + 1:,}: {outcome}"
    except OSError as e:
        return held[:-1], f"connection {len(held):,}: {e.__class__.__name__} ({e})"
    return held, ""


def ask_reply(sock) -> str:
    got = b""
    try:
        while not got.endswith(b"\n"):
            chunk = sock.recv(4096)
            if not chunk:
                return f"closed after {show_bytes(got)}"
            got += chunk
    except socket.timeout:
        return f"no answer to `get x` in {T(5):.0f}s"
    except OSError as e:
        return f"{e.__class__.__name__} ({e})"
    return "" if got == b"END\r\n" else f"got {show_bytes(got)}"


def latencies(port: int, rounds: int) -> list[float]:
    """Round-trip times of `rounds` set+get pairs on one connection, in seconds."""
    times = []
    with LineClient(port, timeout=T(5)) as client:
        for i in range(rounds):
            start = time.perf_counter()
            client.send(b"set active 0 0 %d\r\n%d\r\n" % (len(str(i)), i))
            client.read_line("STORED")
            times.append(time.perf_counter() - start)
    return times
