"""lesson 15 · handshake-tuning: TCP_DEFER_ACCEPT, TCP_QUICKACK, TCP_CORK and TCP_NODELAY, counted

The student's programs: `httpd -p PORT [--defer-accept] [--cork] [--nodelay]
[--no-quickack]` answers `GET /` with a header and a body written by two
write() calls, then closes; `http_get [--defer-accept] [--no-quickack]
[--nodelay] HOST PORT PATH` prints the body. Every packet check captures one
transaction on the server's port (a capture filter per port, inside the
checker's own network namespace, with a probe barrier) and compares the
packets' kinds and directions, in order, with the reference capture in
captures/ (`make captures` records them from the solution). Timestamps are
never compared; only the kinds this lesson changes are asserted, because these
options also move later ACKs. Two strace checks show where each option was set
(the socket, the level, the moment), and that each switch alone sets its own option
(TCP_NODELAY changes no packet here), which the packets cannot tell apart.
"""
import os
import re
import socket
import tempfile
import time

from checker.harness import (Capture, T, check, describe_all, fail, free_port, note, procfs, run, show_bytes,
                             start_server, trace, wait_until)
from checker.harness.client import connect
from checker.harness.procs import program_lines
from checker.harness.strace import read_trace_file, strace_prefix
from checker.harness.watch import activity, run_watched

from checker.checks.ladder import line, reference, reference_steps, steps

SERVER, CLIENT = "httpd", "http_get"
# The request http_get sends, and the checker's own client too.
REQUEST = b"GET / HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n"


def tried_server(target, args=(), port="0") -> str:
    return " ".join([target.shown(target.binary(SERVER)), "-p", str(port), *args])


def tried_client(target, args=(), port="PORT") -> str:
    return " ".join([target.shown(target.binary(CLIENT)), *args, "127.0.0.1", str(port), "/"])


def transaction(target, server_args=(), client_args=()):
    """One `http_get … /` against `httpd …`, captured. Returns (packets, port, client result)."""
    port = free_port()
    with start_server(target.binary(SERVER), args=server_args, port=port), Capture([port]) as cap:
        result = run_watched([target.binary(CLIENT), *client_args, "127.0.0.1", port, "/"], timeout=T(10))
    packets = [p for p in cap.tcp_packets() if port in (p.src_port, p.dst_port)]
    if result.returncode != 0:
        said = result.stderr.decode(errors="replace")
        if result.timed_out:
            hint = (f"it did not finish: when killed it was {result.activity or 'in a state /proc could not tell'}; "
                    "with these switches the same program must still fetch the page")
        elif "setsockopt" in said:
            hint = "a setsockopt() failed (its message above): which option, at which level, on which socket?"
        elif any(p.kind == "RST" and p.from_client(port) for p in packets):
            hint = ("the client reset the connection (RST) while the reply came: it had closed its "
                    "reading side (close(), or shutdown(SHUT_RD/SHUT_RDWR)) before reading the reply")
        else:
            hint = "the check `http_get fetches the page` says more"
        fail(f"http_get did not fetch the page: {result.exit_description()}",
             tried=f"{tried_server(target, server_args, port)}; {tried_client(target, client_args, port)}",
             expected="exit status 0 and the page's body on stdout",
             seen=show_bytes(result.stdout, 60), details=result.stderr_lines() + describe_all(packets, port),
             hint=hint)
    return packets, port, result


def before_first_data(packets, port):
    """The packets before the first one that carries data (the handshake, as sent)."""
    for i, p in enumerate(packets):
        if p.length:
            return packets[:i + 1]
    return packets


def show(packets, port, ref_name) -> list[str]:
    """The packets seen, one per line, then the reference ladder on one line."""
    return describe_all(packets, port, limit=20) + [
        f"reference (captures/{ref_name}.txt): {'  '.join(reference_steps(ref_name))}"]


# ---- the programs work ----------------------------------------------------------------

@check("builds")
def test_build(target):
    target.build()


@check("httpd -p 0 prints `port N` as its first line", needs=["build"])
def test_announces_port(target):
    with start_server(target.binary(SERVER)) as s:
        note(f"it said `port {s.port}`")


def raw_get(port, server=None, target=None, args=()) -> bytes:
    """The server's whole reply to REQUEST (until it closes). If the reply never ends, or the
    connection is refused or reset, fails saying which, and what /proc shows the server doing."""
    data, why = b"", None
    try:
        with connect(port, timeout=T(5)) as sock:
            sock.sendall(REQUEST)
            while chunk := sock.recv(65536):
                data += chunk
    except socket.timeout:
        why = f"the connection still open {T(5):.0f} s after the request"
    except ConnectionRefusedError:
        why = "the connection refused: nothing listens on the port"
    except ConnectionResetError:
        why = "the connection reset (RST) by the server"
    if why is None:
        return data
    doing = activity(server.pid) if server is not None and server.alive() else None
    fail("httpd's reply to `GET /` never came whole",
         tried=(f"{tried_server(target, args)}, then " if target is not None else "")
               + f"send {show_bytes(REQUEST)} and read until the server closes",
         expected="the reply, then the connection closed by the server",
         seen=f"{why}; {len(data)} bytes: {show_bytes(data, 60)}",
         details=[f"[/proc] your server is {doing}"] if doing else [],
         hint=("it still waits in read() for more of the request: read up to the blank line "
               "(\\r\\n\\r\\n) that ends it, then answer" if doing and "read" in doing and not data
               else "after the whole reply (write_all), close() the connection: the client reads "
                    "until then" if data else
               "accept(), read the request up to its blank line, write the reply, close()"))


@check("http_get fetches the page: header and body from httpd, the body on stdout", needs=["announces_port"])
def test_serves_page(target):
    with start_server(target.binary(SERVER)) as s:
        reply = raw_get(s.port, s, target)
        header, sep, body = reply.partition(b"\r\n\r\n")
        length = next((line.split(b":", 1)[1].strip() for line in header.split(b"\r\n")
                       if line.lower().startswith(b"content-length:")), None)
        if not reply.startswith(b"HTTP/1.0 200 ") or not sep or length != str(len(body)).encode():
            fail("httpd's reply to `GET /` is not a 200 with a body of Content-Length bytes",
                 tried=f"{tried_server(target)}, then send {show_bytes(REQUEST)} and read until the server closes",
                 expected="HTTP/1.0 200 OK, a Content-Length header, a blank line, then that many bytes",
                 seen=f"{len(reply)} bytes: {show_bytes(reply, 120)}"
                      + (f" (Content-Length {length.decode()}, body {len(body)} bytes)" if length else ""),
                 hint="write the whole header, then the whole body (write_all), then close()")
        result = run([target.binary(CLIENT), "127.0.0.1", s.port, "/"], timeout=T(10))
    if result.returncode != 0 or result.stdout != body:
        fail("http_get did not print the page's body", tried=tried_client(target, port=s.port),
             expected=f"exit status 0 and the {len(body)} bytes of the body",
             seen=f"{result.exit_description()}, {len(result.stdout)} bytes: {show_bytes(result.stdout, 60)}",
             details=result.stderr_lines(), hint="connect, send the request, read until 0, print after the blank line")
    note(f"{len(header) + 4}-byte header, {len(body)}-byte body")


# ---- the client's side of the handshake ----------------------------------------------

@check("tshark: plain http_get: SYN, SYN-ACK, a bare ACK, then the request (4 packets)",
       needs=["serves_page"])
def test_plain_handshake(target):
    packets, port, _ = transaction(target)
    got = steps(before_first_data(packets, port), port)
    want = steps(*reference("15-plain"))[:4]
    if got != want:
        fail("the plain client's handshake is not SYN, SYN-ACK, ACK before the request",
             tried=f"capture `tcp port {port}`: {tried_client(target, port=port)}",
             expected=f"{len(want)} packets up to the request: {'  '.join(want)}",
             seen=f"{len(got)} packets: {'  '.join(got)}", details=show(packets, port, "15-plain"),
             hint="without switches, http_get must set no option: the kernel acknowledges the SYN-ACK at once")
    note("  ".join(got) + f"  ({len(packets)} packets in all)")


def client_without_bare_ack(target, switch, ref_name, hint):
    packets, port, _ = transaction(target, client_args=[switch])
    got = steps(before_first_data(packets, port), port)
    want = steps(*reference(ref_name))[:3]
    if got != want:
        bare = sum(1 for s in got if s == "→ ACK")
        fail(f"with {switch}, the client still sent {bare} bare ACK(s) before its request" if bare
             else f"with {switch}, the handshake is not SYN, SYN-ACK, then the request",
             tried=f"capture `tcp port {port}`: {tried_client(target, [switch], port)}",
             expected=f"{len(want)} packets up to the request, no bare ACK: {'  '.join(want)}",
             seen=f"{len(got)} packets: {'  '.join(got)}", details=show(packets, port, ref_name), hint=hint)
    note("  ".join(got) + f": the ACK rides on the request ({len(packets)} packets in all)")


@check("tshark: http_get --defer-accept: no bare ACK, the ACK rides on the request (3 packets)",
       needs=["serves_page"])
def test_client_defer_accept(target):
    client_without_bare_ack(target, "--defer-accept", "15-client-defer-accept",
                            "TCP_DEFER_ACCEPT did not take effect: set it to 1 with setsockopt(fd, "
                            "IPPROTO_TCP, …) on the socket that connects, before connect(), which "
                            "returns once the handshake's ACK has left (TODO 1; the strace check "
                            "shows where it was set)")


@check("tshark: http_get --no-quickack: no bare ACK, the ACK rides on the request (3 packets)",
       needs=["serves_page"])
def test_client_no_quickack(target):
    client_without_bare_ack(target, "--no-quickack", "15-client-no-quickack",
                            "TCP_QUICKACK = 0 did not take effect: set it with setsockopt(fd, "
                            "IPPROTO_TCP, …) on the socket that connects, before connect(), so that "
                            "it starts in delayed-ACK mode (TODO 1; the strace check shows where it "
                            "was set)")


# ---- the server's accept -------------------------------------------------------------

def sockets_of(pid: int) -> int:
    """How many sockets the process holds (its descriptors that are sockets)."""
    return procfs.socket_fd_count(pid)


def wait_for_sockets(pid: int, want: int, timeout: float) -> float | None:
    """Seconds until the process holds `want` sockets, or None if it did not within timeout."""
    start = time.monotonic()
    if wait_until(lambda: sockets_of(pid) >= want, timeout, f"{want} sockets in the server", interval=0.002):
        return time.monotonic() - start
    return None


# How long a silent client is watched. Not scaled by T(): nothing may happen in it, so a
# longer window would only be stricter, and the solution's 10 s (the kernel makes it 15.5 s)
# must stay outside it. 2 s, because a TCP_DEFER_ACCEPT of 1 s ends at the first SYN-ACK
# retransmission, 1 s after the SYN: the client's kernel answers it and accept() returns at
# 1.0x s, without data (measured: 1.006 to 1.021 s), while 2 s or more lasts at least 3 s.
SILENT_WATCH = 2.0


@check("httpd --defer-accept: accept() waits for the request, and returns as soon as it comes",
       needs=["serves_page"])
def test_server_defer_accept(target):
    args = ["--defer-accept"]
    with start_server(target.binary(SERVER), args=args) as s:
        pid = s.pid
        listening = sockets_of(pid)   # the listener: accept() has returned nothing yet
        t0 = time.monotonic()
        with connect(s.port, timeout=T(5)) as sock:
            connected = time.monotonic() - t0
            early = wait_for_sockets(pid, listening + 1, SILENT_WATCH)
            if early is not None:
                deferred = early >= 0.5   # deferred, but only until the SYN-ACK's first retransmission
                fail(f"accept() returned {early * 1000:.0f} ms after the client connected, before any data",
                     tried=f"{tried_server(target, args)}; connect, send nothing, watch the server's "
                           f"sockets in /proc/PID/fd for {SILENT_WATCH:.0f} s",
                     expected=f"{listening} socket(s) (the listener) for {SILENT_WATCH:.0f} s: the kernel "
                              f"keeps the connection until its first data, up to DEFER_ACCEPT_SECONDS (10 s)",
                     seen=f"{listening + 1} sockets: accept() has returned a connection with no data",
                     details=program_lines(s.stderr()),
                     hint=("TCP_DEFER_ACCEPT's value is a time in seconds, not an on/off switch: 1 defers "
                           "only until the server's first SYN-ACK retransmission (1 s), which the client's "
                           "kernel answers, and then accept() returns the silent connection anyway; give "
                           "it DEFER_ACCEPT_SECONDS (TODO 3)" if deferred else
                           "set TCP_DEFER_ACCEPT on the listening socket, before the clients come; set on the "
                           "accepted socket it is too late (TODO 3)"))
            waited = time.monotonic() - t0
            sock.sendall(REQUEST)
            sent = time.monotonic()
            sock.settimeout(T(5))
            try:
                first = sock.recv(65536)
            except socket.timeout:
                first = b""
            answered = time.monotonic() - sent
    if not first.startswith(b"HTTP/1.0 200"):
        fail("httpd --defer-accept did not answer once the request came",
             tried=f"{tried_server(target, args)}; connect, wait {SILENT_WATCH:.0f} s, send {show_bytes(REQUEST)}",
             expected="the reply, at once", seen=show_bytes(first, 60) if first else f"nothing in {T(5):.0f}s",
             details=program_lines(s.stderr()),
             hint="TCP_DEFER_ACCEPT's value is in seconds: a large enough one, e.g. 10")
    if answered > T(0.5):
        fail(f"httpd answered {answered * 1000:.0f} ms after the request came",
             tried=f"{tried_server(target, args)}; connect, wait {SILENT_WATCH:.0f} s, send the request",
             expected="accept() to return as soon as the data arrives, the reply within 500 ms",
             seen=f"{answered * 1000:.0f} ms", hint="accept(), read, reply: nothing should wait in between")
    note(f"t=0: connected ({connected * 1000:.1f} ms); t=0…{waited:.2f} s: {listening} socket (not accepted); "
         f"t={waited:.2f} s: request sent; reply {answered * 1000:.1f} ms later")


# ---- the server's reply: header and body ----------------------------------------------

def server_segments(target, server_args, ref_name, want: int, hint: str, why: str):
    packets, port, _ = transaction(target, server_args=server_args)
    data = [p for p in packets if p.length and not p.from_client(port)]
    ref_packets, ref_port = reference(ref_name)
    ref_data = [p for p in ref_packets if p.length and not p.from_client(ref_port)]
    assert len(ref_data) == want, f"captures/{ref_name}.pcap has {len(ref_data)} server data segments"
    if len(data) != want:
        fail(f"the reply left in {len(data)} segment(s), not {want}",
             tried=f"capture `tcp port {port}`: {tried_server(target, server_args, port)}; "
                   f"{tried_client(target, port=port)}",
             expected=f"{want} server → client data segment(s): {why}",
             seen=f"{len(data)}: " + (", ".join(f"{p.length}" for p in data) or "none") + " bytes",
             details=show(packets, port, ref_name), hint=hint)
    note(f"{len(data)} segment(s) of " + " + ".join(f"{p.length}" for p in data) + " bytes: " + line(packets, port))


@check("tshark: httpd: header and body written separately leave as 2 segments", needs=["serves_page"])
def test_two_writes_two_segments(target):
    server_segments(target, [], "15-plain", 2,
                    "write the header and the body with two separate write() calls: the lesson counts "
                    "what that costs", "one per write()")


@check("tshark: httpd --cork: header and body leave as 1 segment", needs=["serves_page"])
def test_cork_one_segment(target):
    server_segments(target, ["--cork"], "15-server-cork", 1,
                    "put the cork in (TCP_CORK = 1) before the header and leave it in until the body is "
                    "written: uncorking in between sends the header alone (TODO 2)",
                    "the cork holds the header until the body joins it")


@check("tshark: httpd --nodelay (no cork): header and body still leave as 2 segments",
       needs=["serves_page"])
def test_nodelay_two_segments(target):
    server_segments(target, ["--nodelay"], "15-server-nodelay", 2,
                    "TCP_NODELAY only stops Nagle's wait: each write() still becomes its own segment",
                    "without Nagle, each write() leaves at once")


# ---- where each option is set: strace -------------------------------------------------
#
# The packet counts show that an option worked, not where it was set; strace shows the
# setsockopt() calls themselves, with the socket, the level and the moment.

SETSOCKOPT = re.compile(r"^(\d+), (\w+), (\w+), \[(-?\d+)\]")
# The same numbers at level SOL_SOCKET are other options (asm-generic/socket.h, netinet/tcp.h).
AT_SOCKET_LEVEL = {"TCP_NODELAY": "SO_DEBUG", "TCP_DEFER_ACCEPT": "SO_KEEPALIVE", "TCP_QUICKACK": "SO_PRIORITY",
                   "TCP_CORK": "SO_BROADCAST"}


def option_calls(calls):
    """[(index, fd, level, name, value, call)] of the setsockopt() calls whose value strace shows."""
    found = []
    for i, c in enumerate(calls):
        m = SETSOCKOPT.match(c.args) if c.name == "setsockopt" else None
        if m:
            found.append((i, int(m.group(1)), m.group(2), m.group(3), int(m.group(4)), c))
    return found


def where_set(calls, name: str, value_ok, fd: int, before: int, what_fd: str, moment: str):
    """The problem with how option `name` was set (None if it was set right): on fd, at level
    SOL_TCP, before calls[before], to a value value_ok() accepts, successfully."""
    options = option_calls(calls)
    mine = [o for o in options if o[3] == name and o[2] == "SOL_TCP"]
    if not mine:
        other = AT_SOCKET_LEVEL.get(name)
        wrong = next((o for o in options if o[2] == "SOL_SOCKET" and o[3] == other), None)
        if wrong:
            return "level", f"{name} set at level SOL_SOCKET, where its number is {other}"
        return "missing", f"{name} never set"
    right_fd = [o for o in mine if o[1] == fd]
    if not right_fd:
        return "socket", f"{name} set on fd {mine[0][1]}, not on {what_fd} (fd {fd})"
    index, _, _, _, value, call = right_fd[0]
    if call.result != 0:
        return "failed", f"`{call}` failed"
    if index > before:
        return "late", f"{name} set {moment}"
    if not value_ok(value):
        return "value", f"{name} set to {value}"
    return None


# Each switch sets its own option and no other. A value that leaves the option as it was
# (TCP_NODELAY 0, TCP_CORK 0, TCP_DEFER_ACCEPT 0, TCP_QUICKACK 1, the defaults) changes nothing
# and is not counted: `set_option(fd, TCP_NODELAY, options.nodelay)` is fine.
UNCHANGED = {"TCP_NODELAY": 0, "TCP_CORK": 0, "TCP_DEFER_ACCEPT": 0, "TCP_QUICKACK": 1}


def options_changed(calls) -> list[str]:
    """The TCP options (level SOL_TCP) the calls set to another value than the default, in order."""
    names = []
    for _, _, level, name, value, _ in option_calls(calls):
        if level == "SOL_TCP" and UNCHANGED.get(name) != value and name not in names:
            names.append(name)
    return names


def each_switch_alone(program: str, switches: dict, traced_alone, tried: str, todo: str):
    """Fails unless each switch, given alone, sets its own option and only that one.
    traced_alone(switch) returns the calls of a run with that switch only."""
    seen = {switch: options_changed(traced_alone(switch)) for switch in switches}
    wrong = {switch: names for switch, names in seen.items() if names != [switches[switch]]}
    if not wrong:
        return
    fail(f"{program}'s switches do not each set their own option",
         tried=tried,
         expected="; ".join(f"{switch} alone: {name} only" for switch, name in switches.items()),
         seen="; ".join(f"{switch} alone: {', '.join(names) or 'no TCP option'}" for switch, names in wrong.items()),
         hint="each setsockopt() belongs under the `if` of its own switch, and none outside them: a line "
              "copied from the one above keeps its old condition. The packets cannot tell: TCP_NODELAY "
              f"changes none of them here, and other switches can hide a missing one ({todo})")


@check("strace: http_get sets its options on its socket, at level IPPROTO_TCP, before connect()",
       needs=["serves_page"])
def test_strace_client(target):
    args = ["--defer-accept", "--no-quickack", "--nodelay"]
    with start_server(target.binary(SERVER)) as s:
        t = trace([target.binary(CLIENT), *args, "127.0.0.1", s.port, "/"], ["socket", "setsockopt", "connect"],
                  timeout=T(10))
    calls = t.calls
    # The connect() to the server (getaddrinfo may connect elsewhere: nscd, DNS).
    connecting = next(((i, c) for i, c in enumerate(calls)
                       if c.name == "connect" and f"htons({s.port})" in c.args), None)
    if connecting is not None:
        at, fd = connecting[0], int(connecting[1].args.split(",", 1)[0])
    elif option_calls(calls):
        # It set options, then stopped before connecting (a setsockopt() that failed?): say how.
        at, fd = len(calls), next((c.result for c in calls if c.name == "socket" and c.result is not None), -1)
    else:
        fail("strace shows no connect() to the server", tried="strace -f " + tried_client(target, args, s.port),
             expected=f"connect(FD, {{… sin_port=htons({s.port}) …}}) after the options",
             seen=t.run.exit_description(), details=["[strace] " + l for l in t.summary()] + t.run.stderr_lines(),
             hint="the check `http_get fetches the page` says more")
    want = {"TCP_DEFER_ACCEPT": lambda v: v > 0, "TCP_QUICKACK": lambda v: v == 0, "TCP_NODELAY": lambda v: v == 1}
    problems = [p for name, ok in want.items()
                if (p := where_set(calls, name, ok, fd, at, "the socket that connects",
                                   f"on fd {fd} after connect(), once the handshake was over"))]
    if problems:
        kinds = {kind for kind, _ in problems}
        hint = ("the level of a TCP option is IPPROTO_TCP (strace: SOL_TCP); at level SOL_SOCKET the same "
                "number names another option, and setsockopt() succeeds without a word (TODO 1)" if "level" in kinds
                else "set the options on the socket that connects: tune_before_connect() is handed it by "
                     "connect_tcp(), between socket() and connect(); a socket that never connected changes "
                     "nothing (TODO 1)" if "socket" in kinds
                else "set every option between socket() and connect(): connect() returns once the "
                     "handshake is over, and by then its ACK has left (TODO 1)" if "late" in kinds
                else "each switch sets its option with setsockopt(fd, IPPROTO_TCP, NAME, &value, …): "
                     "TCP_DEFER_ACCEPT 1, TCP_QUICKACK 0, TCP_NODELAY 1 (TODO 1)")
        if "socket" in kinds:
            problems.append(("socket", "that other socket never connected"))
        fail("http_get's options are not all set where they take effect",
             tried="strace -f " + tried_client(target, args, s.port),
             expected="setsockopt(FD, SOL_TCP, …) for TCP_DEFER_ACCEPT [1], TCP_QUICKACK [0], TCP_NODELAY [1], "
                      "then connect(FD, …)",
             seen="; ".join(text for _, text in problems),
             details=["[strace] " + str(c) for c in calls if c.name in ("socket", "setsockopt", "connect")][:10],
             hint=hint)
    switches = {"--defer-accept": "TCP_DEFER_ACCEPT", "--no-quickack": "TCP_QUICKACK", "--nodelay": "TCP_NODELAY"}
    with start_server(target.binary(SERVER)) as s:
        each_switch_alone(CLIENT, switches,
                          lambda switch: trace([target.binary(CLIENT), switch, "127.0.0.1", s.port, "/"],
                                               ["setsockopt"], timeout=T(10)).calls,
                          f"strace -f {tried_client(target, ['SWITCH'], s.port)}, once per switch", "TODO 1")
    note(f"fd {fd}: TCP_DEFER_ACCEPT, TCP_QUICKACK, TCP_NODELAY, then connect(); each switch alone sets "
         "its own option only")


SERVER_TRACED = ["socket", "setsockopt", "listen", "accept", "accept4", "write", "sendto", "writev"]


@check("strace: httpd sets its options on the listening socket before accept(), and the cork on the "
       "connection before the reply", needs=["serves_page"])
def test_strace_server(target):
    args = ["--defer-accept", "--nodelay", "--no-quickack", "--cork"]
    with tempfile.TemporaryDirectory(prefix="netcourse-strace-") as tmp:
        path = os.path.join(tmp, "trace")
        with start_server(target.binary(SERVER), args=args, wrapper=strace_prefix(path, SERVER_TRACED)) as s:
            reply = raw_get(s.port, s, target, args)
            s.stop()
        calls = read_trace_file(path)
    listening = next((c for c in calls if c.name == "listen" and c.result == 0), None)
    accepted = next(((i, c) for i, c in enumerate(calls)
                     if c.name in ("accept", "accept4") and c.result is not None and c.result >= 0), None)
    shown = ["[strace] " + str(c) for c in calls if c.name in ("listen", "setsockopt", "accept", "accept4")][:10]
    if listening is None or accepted is None:
        fail("strace shows no listen() and accept() of the checker's connection",
             tried=f"strace -f {tried_server(target, args)}; one GET /", expected="listen(), then accept()",
             seen=show_bytes(reply, 40), details=shown, hint="the check `http_get fetches the page` says more")
    listener = int(listening.args.split(",", 1)[0])
    at, call = accepted
    client = call.result
    wrote = next((i for i, c in enumerate(calls)
                  if c.name in ("write", "sendto", "writev") and c.args.startswith(f"{client},")), len(calls))
    problems = []
    for name, ok in (("TCP_DEFER_ACCEPT", lambda v: v > 0), ("TCP_NODELAY", lambda v: v == 1),
                     ("TCP_QUICKACK", lambda v: v == 0)):
        problem = where_set(calls, name, ok, listener, at, "the listening socket",
                            f"on the listener (fd {listener}) after accept() had returned a connection")
        late = next((o for o in option_calls(calls) if o[1] == client and o[3] == name and o[0] > at), None)
        if problem and problem[0] == "socket" and late:
            problem = ("connection", f"{name} set on the connection (fd {client}), after accept() returned it")
        if problem:
            problems.append(problem)
    cork = where_set(calls, "TCP_CORK", lambda v: v == 1, client, wrote, "the connection",
                     f"on the connection (fd {client}) after the reply's first write()")
    if problems or cork:
        if any(kind == "level" for kind, _ in problems + [cork or ("", "")]):
            hint = ("the level of a TCP option is IPPROTO_TCP (strace: SOL_TCP); at level SOL_SOCKET the "
                    "same number names another option, and setsockopt() succeeds without a word")
        elif any(kind in ("connection", "socket", "late") for kind, _ in problems):
            hint = ("set --defer-accept, --nodelay and --no-quickack on the listening socket, before the "
                    "first accept(): each connection inherits them. With --defer-accept the request is "
                    "in, and acknowledged, before accept() returns: set on the connection, they come "
                    "too late (TODO 3)")
        elif problems:
            hint = ("each switch sets its option with setsockopt(fd, IPPROTO_TCP, NAME, &value, …): "
                    "TCP_DEFER_ACCEPT (seconds, > 0), TCP_NODELAY 1, TCP_QUICKACK 0 (TODO 3)")
        else:
            hint = ("put the cork in (TCP_CORK = 1) on the connection before the header's write(), "
                    "and leave it in (--cork, TODO 2)")
        problems += [cork] if cork else []
        fail("httpd's options are not all set where they take effect",
             tried=f"strace -f {tried_server(target, args)}; one GET /",
             expected=f"on the listener (fd {listener}), before accept(): TCP_DEFER_ACCEPT, TCP_NODELAY, "
                      f"TCP_QUICKACK; on the connection, before the reply: TCP_CORK",
             seen="; ".join(text for _, text in problems), details=shown, hint=hint)
    switches = {"--defer-accept": "TCP_DEFER_ACCEPT", "--cork": "TCP_CORK", "--nodelay": "TCP_NODELAY",
                "--no-quickack": "TCP_QUICKACK"}

    def alone(switch):
        with tempfile.TemporaryDirectory(prefix="netcourse-strace-") as tmp:
            path = os.path.join(tmp, "trace")
            with start_server(target.binary(SERVER), args=[switch],
                              wrapper=strace_prefix(path, ["setsockopt"])) as s:
                raw_get(s.port, s, target, [switch])
                s.stop()
            return read_trace_file(path)

    each_switch_alone(SERVER, switches, alone, f"strace -f {tried_server(target, ['SWITCH'])}; one GET /, "
                      "once per switch", "TODO 2 and TODO 3")
    note(f"listener fd {listener}: TCP_DEFER_ACCEPT, TCP_NODELAY, TCP_QUICKACK before accept(); "
         f"connection fd {client}: TCP_CORK before the reply; each switch alone sets its own option only")


# ---- everything at once ----------------------------------------------------------------

def ladder_diagnosis(got: list[str], want: list[str]) -> list[str]:
    """What the extra packets of a tuned transaction say went wrong, one phrase per cause, in
    the ladder's order (empty if none of the known causes shows)."""
    found = []
    first_request = next((i for i, s in enumerate(got) if s.startswith("→ DATA")), len(got))
    first_reply = next((i for i, s in enumerate(got) if s.startswith("← DATA")), len(got))
    if "→ ACK" in got[:first_request] and "→ ACK" not in want[:3]:
        found.append("the client sent a bare ACK before its request: TCP_DEFER_ACCEPT and TCP_QUICKACK "
                     "= 0 must be set on its socket before connect() (TODO 1; the strace check says "
                     "where they were set)")
    if "← ACK" in got[first_request:first_reply]:
        found.append("the server acknowledged the request alone, before its reply: TCP_QUICKACK = 0 "
                     "must be on the listening socket before the client comes, so that the accepted "
                     "connection starts with delayed ACKs (--no-quickack, TODO 3)")
    replies = [s for s in got if s.startswith("← DATA")]
    if len(replies) > sum(1 for s in want if s.startswith("← DATA")):
        found.append(f"the reply left in {len(replies)} segments: the cork must stay in from before the "
                     "header until the body is written (--cork, TODO 2)")
    if "← FIN" in got and "← FIN" not in want:
        found.append("the server's FIN left alone, after its reply: close() while the cork is still in, "
                     "so that the FIN rides on the reply; taking the cork out first sends the reply "
                     "at once and leaves the FIN for a packet of its own (TODO 2)")
    if "→ FIN" in got and "→ FIN" not in want:
        found.append("the client's FIN left alone: with --close-early it rides on the request only "
                     "if the request is still corked when shutdown(SHUT_WR) is called (http_get.cc, main)")
    return found


ALL_SERVER = ["--defer-accept", "--cork", "--no-quickack"]
ALL_CLIENT = ["--defer-accept", "--no-quickack"]


def expect_whole_ladder(target, server_args, client_args, name: str, what: str, hint: str,
                        details=()) -> list[str]:
    """One transaction, captured, must draw the reference ladder captures/NAME; returns its steps."""
    packets, port, _ = transaction(target, server_args, client_args)
    got = steps(packets, port)
    want = reference_steps(name)
    if got != want:
        found = ladder_diagnosis(got, want)
        if found:
            hint = "; ".join(found)
        fail(f"{what} took {len(got)} packets, not {len(want)}",
             tried=f"capture `tcp port {port}`: {tried_server(target, server_args, port)}; "
                   f"{tried_client(target, client_args, port)}",
             expected=f"{len(want)} packets: {'  '.join(want)}",
             seen=f"{len(got)} packets: {'  '.join(got)}",
             details=show(packets, port, name) + list(details), hint=hint)
    note(f"{len(got)} packets: {'  '.join(got)}")
    return got


@check("tshark: everything combined: the whole transaction in 6 packets (default: 12)",
       needs=["serves_page"])
def test_all_tuned(target):
    default, dport, _ = transaction(target)
    compared = f"default, for comparison: {len(default)} packets: {line(default, dport)}"
    expect_whole_ladder(target, ALL_SERVER, ALL_CLIENT, "15-all-tuned", "the tuned transaction",
                        "the client's ACK rides on the request (TODO 1), the server's on the reply "
                        "(--no-quickack, TODO 3), and the FIN on the corked reply (close while "
                        "corked, TODO 2)", details=[compared])
    note(f"default: {len(default)} packets: {line(default, dport)}")


@check("tshark: going further: http_get --close-early (a corked request, then shutdown(SHUT_WR)) "
       "with everything else: 5 packets", needs=["all_tuned"])
def test_close_early(target):
    expect_whole_ladder(target, ALL_SERVER, [*ALL_CLIENT, "--close-early"], "15-close-early",
                        "the transaction with --close-early",
                        "the client's FIN rides on the request only while the request is still "
                        "corked when shutdown(SHUT_WR) sends it: TCP_CORK before the write, "
                        "shutdown() after (http_get.cc, main)")
