"""lesson 02 · server-syscalls: an echo server from socket, bind, listen and accept

The student's program: `echo_server -p PORT` sends every byte back, one
client after another. Besides talking to it, the checker watches it with
strace (the system calls) and dumpcap/tshark (the packets on loopback).
"""
import os
import signal
import socket
import struct
import subprocess
import tempfile
import threading
import time

from checker.harness import (Capture, CheckFailed, LineClient, T, check, describe_all, expect_bytes, fail, free_port,
                     note, procfs, show_bytes, start_server, wait_until)
from checker.harness.client import connect
from checker.harness.faults import faults_env, read_faults
from checker.harness.procs import program_lines
from checker.harness.report import caret_diff
from checker.harness.strace import read_trace_file, strace_prefix
from checker.harness.waiting import Deadline
from checker.harness.watch import activity

PROGRAM = "echo_server"


def server(target, **kwargs):
    return start_server(target.binary(PROGRAM), **kwargs)


def tried(target, port="0") -> str:
    return f"{target.shown(target.binary(PROGRAM))} -p {port}"


@check("builds")
def test_build(target):
    target.build()


@check("with -p 0, prints `port N` as its first line", needs=["build"])
def test_announces_port(target):
    with server(target) as s:
        note(f"it said `port {s.port}`")


@check("with -p P, listens on port P", needs=["announces_port"])
def test_fixed_port(target):
    port = free_port()
    with server(target, port=port) as s:
        with LineClient(s.port):
            pass


def conversation(history, last: int = 4) -> list[str]:
    """This connection's earlier exchanges (the last few, abbreviated): a wrong echo often
    comes from an earlier one, e.g. bytes left over from the line before."""
    if not history:
        return []
    lines = [f"before it, on this connection ({len(history)} echo{'es' if len(history) > 1 else ''}"
             f"{f', the last {last}' if len(history) > last else ''}):"]
    for sent, got in history[-last:]:
        lines.append(f"  sent {show_bytes(sent, 40)}  →  got back {show_bytes(got, 40)}")
    return lines


def server_doing(s) -> str | None:
    """What the server process is doing now, as /proc shows it, if it still runs."""
    if s is None or not s.alive():
        return None
    return activity(s.pid)


def spinning(doing: str | None) -> bool:
    """/proc showed the server running, not waiting for anything, and using the CPU. (An idle
    server waits in accept() or read(); the share is low on a busy machine, hence 20%.)"""
    if not doing or not doing.startswith("running"):
        return False
    share = doing.split(": ", 1)[-1].split("%")[0]
    return share.isdigit() and int(share) >= 20


HINT_SPIN = ("your server is running flat out, never waiting: at the end of a client's stream "
             "read() returns 0 at once, again and again. 0 means the client is done, not \"nothing "
             "yet\": stop the loop there, and close() the socket (TODO 2)")


def failure_hint(failure: CheckFailed, partial: bytes, wanted: int, hint: str | None,
                 doing: str | None) -> str:
    """The hint for an echo that did not come back whole, by what happened: the server spinning,
    a reset, a close, part of it then silence, or silence (`hint`: the check's own, for a close
    or for silence)."""
    if spinning(doing):
        return HINT_SPIN
    if "reset the connection" in failure.what:
        return ("the server reset the connection (RST): it closed the socket with bytes still "
                "unread, or closed a connection it never accepted")
    if "closed the connection" in failure.what:
        return hint or (f"the server closed the connection after {len(partial)} of {wanted} "
                        "bytes: keep reading and writing back until read() returns 0 (TODO 2)")
    if partial:
        return (f"{len(partial)} of {wanted} bytes came back, then nothing: a write() that moved "
                "fewer bytes than asked must be called again for the rest (write_all)")
    return hint or ("not a byte came back: the server is not reading this connection (still "
                    "busy with another?) or never writes back what it reads")


def echo_roundtrip(target, client: LineClient, data: bytes, what: str, hint: str, s=None):
    """Sends data, which must come back exactly; on failure the message shows this connection's
    conversation, and the hint follows what happened (closed, reset, silent, cut short, other
    bytes, more bytes). `s`: the server, to say what it is doing when nothing comes back."""
    history = client.__dict__.setdefault("history", [])
    client.send(data)
    try:
        got = client.read_exactly(len(data), what=what) if data else b""
    except CheckFailed as failure:
        doing = server_doing(s)
        why = failure_hint(failure, client.buffer, len(data), hint, doing)
        fail(failure.what, tried=f"{tried(target)}; on one connection, sent {show_bytes(data, 60)}",
             expected=f"the same {len(data)} bytes back", seen=failure.seen,
             details=conversation(history) + ([f"[/proc] your server is {doing}"] if doing else []),
             hint=why)
    if got != data:
        sent_so_far = sum(len(d) for d, _ in history) + len(data)
        never_sent = not all(bytes([b]) in b"".join(d for d, _ in history) + data for b in set(got))
        why = (f"bytes that were never sent came back (the echo has {len(got)} bytes where {len(data)} "
               "were sent, and others): write back the n bytes read() returned, not sizeof(buffer) "
               "(TODO 2)" if never_sent else hint)
        fail(f"{what} is not what was sent", tried=f"{tried(target)}; on one connection, "
             f"{sent_so_far} bytes sent so far", details=[f"sent      {show_bytes(data)}"]
             + caret_diff(data, got) + conversation(history), hint=why)
    history.append((data, got))
    if client.buffer:
        # More came back than was sent: a server writes one buffer per read() in one
        # write(), which loopback delivers whole, so the extra bytes arrived with the echo.
        extra = client.buffer
        fail(f"{what} came back with {len(extra)} bytes more than were sent",
             tried=f"{tried(target)}; on one connection, sent {show_bytes(data, 60)}",
             expected=f"the {len(data)} bytes sent, and nothing more",
             seen=f"{len(data) + len(extra)} bytes: {show_bytes(data + extra, 60)}",
             details=conversation(history),
             hint=f"your server sent back {len(extra)} bytes it never received: write back the n bytes "
                  "read() returned, not sizeof(buffer) (TODO 2)")


@check("echoes a line byte for byte", needs=["announces_port"])
def test_echo_line(target):
    with server(target) as s, LineClient(s.port) as client:
        echo_roundtrip(target, client, b"hello, echo\r\n", "the echo",
                       "write back exactly the n bytes read() returned", s)


@check("echoes several lines on one connection", needs=["echo_line"])
def test_echo_lines(target):
    with server(target) as s, LineClient(s.port) as client:
        for i, line in enumerate([b"one\n", b"two, a bit longer\n", b"3\n", b"\xff\x00binary\n"]):
            echo_roundtrip(target, client, line, f"the echo of line {i + 1}",
                           "keep reading in a loop until read() returns 0 (TODO 2)", s)


@check("echoes 1 MiB byte for byte", needs=["echo_line"])
def test_echo_big(target):
    data = bytes((i * 7 + i // 251) % 256 for i in range(1 << 20))
    with server(target) as s, LineClient(s.port, timeout=T(20)) as client:
        # Send from a thread while reading here: the server's echo would fill the
        # socket buffers and stall if nobody read until everything was sent.
        sender = threading.Thread(target=client.sock.sendall, args=(data,), daemon=True)
        sender.start()
        try:
            got = client.read_exactly(len(data), what="the echo of 1 MiB")
        except CheckFailed as failure:
            fail(failure.what, tried=f"{tried(target)}; 1 MiB sent (from a thread) while reading the echo",
                 expected=failure.expected, seen=failure.seen,
                 hint=failure_hint(failure, client.buffer, len(data), None, server_doing(s)))
        finally:
            sender.join(timeout=T(20))
        expect_bytes(got, data, what="the echo of 1 MiB is not what was sent", tried=tried(target),
                     hint="read() and write() move what fits, not what you ask: loop on both (write_all)")


@check("echoes 64 KiB byte for byte when the kernel cuts reads and writes short or interrupts them",
       needs=["echo_line"])
def test_echo_short_io(target, tmp_path):
    # First every read asks for at most 7 bytes and every write moves at most 3; then, as
    # well, every 4th call on a blocking socket fails with EINTR. All of it is allowed
    # (read(2), write(2), signal(7)); one kind at a time, so the hint names the one that hurt.
    data = bytes((i * 13 + i // 257) % 256 for i in range(64 << 10))
    total = 0
    for round, faults in enumerate(({"short_send": 3, "short_recv": 7},
                                    {"short_send": 3, "short_recv": 7, "eintr": 4})):
        log = tmp_path / f"faults-{round}"
        with server(target, env=faults_env(log, **faults)) as s, LineClient(s.port, timeout=T(5)) as client:
            got = echo_under_faults(target, client, data, log, "eintr" in faults)
        expect_bytes(got, data, what="the echo under short reads and writes is not what was sent",
                     tried=tried(target), hint="write back exactly the bytes each read() returned, "
                     "all of them (write_all)")
        total += len(read_faults(log))
    note(f"64 KiB echoed twice through {total}+ short or interrupted calls")


def echo_under_faults(target, client, data: bytes, log, with_eintr: bool) -> bytes:
    sender = threading.Thread(target=client.sock.sendall, args=(data,), daemon=True)
    sender.start()
    try:
        return client.read_exactly(len(data), what="the echo of 64 KiB")
    except CheckFailed as failure:
        faults = read_faults(log)
        short = next((f for f in faults if f.kind == "short" and f.call in ("write", "send")), None)
        if with_eintr and faults and faults[-1].kind == "eintr":   # it stopped right after one
            hint = ("a read() or write() interrupted by a signal fails with EINTR having moved "
                    "nothing: that is not the end of the connection, call it again")
        elif short:
            hint = (f"write() took {short.result} of {short.asked} bytes: write the rest too "
                    "(write_all in common/io.h loops until all of it is written)")
        else:
            hint = "read() and write() move what fits, not what you ask: loop on both"
        fail(failure.what, tried=tried(target) + "   (under the course's fault injector: short reads "
             "and writes" + (", EINTR" if with_eintr else "") + "), 64 KiB sent",
             expected="all 64 KiB back", seen=failure.seen,
             details=[f"[fault injector] {f}" for f in faults[-3:]], hint=hint)
    finally:
        sender.join(timeout=T(10))


@check("serves a second client after the first one leaves", needs=["echo_line"])
def test_second_client(target):
    with server(target) as s:
        for n in (1, 2):
            try:
                with LineClient(s.port) as client:
                    echo_roundtrip(target, client, f"client {n}\n".encode(), f"the echo to client {n}",
                                   "accept() the next client in a loop once one is done (TODO 3)", s)
            except CheckFailed as failure:
                # Not listening, and still running a while later (a server that is exiting
                # has closed its listener too, a moment before it is gone).
                if n == 2 and not procfs.listening(s.port) and not exits_soon(s, T(0.5)):
                    fail("your server closed its listening socket after the first client",
                         tried=f"{tried(target)}; client 1 echoed and left, then client 2 connected",
                         expected="client 2 accepted and echoed",
                         seen=f"{failure.what}; the server still runs, but nothing listens on port "
                              f"{s.port} any more", details=program_lines(s.stderr(), limit=4),
                         hint="close() the client's socket after echo(), not the listener: accept() "
                              "on a closed descriptor fails with EBADF, again and again (TODO 3)")
                if n == 1 or not exits_soon(s):
                    raise
                fail("your server exited after its first client", tried=tried(target),
                     expected="each client served in turn, the server still running",
                     seen=f"exit status {s.proc.returncode}", details=program_lines(s.stderr()),
                     hint="after one client, go back to accept() (TODO 3): do not let main() return")


def exits_soon(s, timeout: float | None = None) -> bool:
    try:
        s.proc.wait(timeout=T(2) if timeout is None else timeout)
        return True
    except subprocess.TimeoutExpired:
        return False


SPIN_CPU = 0.3   # seconds of CPU a server may use waiting for a closed connection: it needs ~0


def read_until_eof_or_spin(client: LineClient, s, timeout: float) -> tuple[bytes, bool]:
    """Everything until the server closes (data, True), or (data, False) after `timeout`, or
    sooner once the server has burnt SPIN_CPU seconds of CPU meanwhile (a server that spins
    instead of closing is caught in a fraction of a second, without burning the whole wait),
    or is back in accept() (one client at a time: it has left this connection for good)."""
    start, data = procfs.cpu_seconds(s.pid), b""
    deadline = Deadline(timeout)
    while not deadline.passed():
        chunk, closed = client.read_until_eof(timeout=min(0.1, deadline.left()))
        data += chunk
        if closed:
            return data, True
        try:
            if procfs.cpu_seconds(s.pid) - start >= SPIN_CPU:
                break
            if "accept" in (server_doing(s) or ""):
                break
        except (OSError, IndexError):
            break   # it has exited: the connection will say so
    return data, False


@check("closes the connection when the client has sent everything (read() returns 0)",
       needs=["echo_line"])
def test_closes_at_eof(target):
    with server(target) as s, LineClient(s.port) as client:
        client.send(b"last words\n")
        client.shutdown_write()          # our FIN: the server's read() will return 0
        started = time.monotonic()
        data, closed = read_until_eof_or_spin(client, s, T(5))
        waited = time.monotonic() - started
        if not closed:
            doing = server_doing(s)
            if not procfs.listening(s.port) and not exits_soon(s, T(0.5)):
                hint = ("your server no longer listens on its port: it closed its listening socket, "
                        "and this connection's socket stays open. After a client, close() the "
                        "client's socket, not the listener (TODO 3)")
            elif spinning(doing):
                hint = HINT_SPIN
            elif doing and "accept" in doing:
                hint = ("your server is back in accept(), and this connection was never closed: "
                        "close() the client's socket once echo() returns (TODO 3)")
            else:
                hint = "read() returning 0 means the client is done: stop the loop and close() the socket"
            fail("the server kept the connection open after the client's end of stream",
                 tried="send `last words\\n`, then shutdown(SHUT_WR)",
                 expected="the echo, then the connection closed by the server",
                 seen=f"{show_bytes(data)}, and the connection still open after {waited:.1f}s",
                 details=([f"[/proc] your server is {doing}"] if doing else [])
                         + program_lines(s.stderr(), limit=4), hint=hint)


def reset(sock: socket.socket):
    """Closes sock with an RST instead of a FIN: SO_LINGER on, with a time of 0 (socket(7))."""
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


def fill_until_blocked(sock: socket.socket, s, timeout: float) -> int:
    """Sends without reading until the server is blocked in write() (its echo fills our
    receive buffer, then its send buffer) and our own send() would block. Returns the bytes
    sent. A server that is not blocked in write() by the deadline is reset all the same."""
    sock.setblocking(False)
    chunk, sent = b"x" * 65536, 0

    def stuck() -> bool:
        nonlocal sent
        try:
            while True:
                sent += sock.send(chunk)
        except BlockingIOError:
            doing = server_doing(s) or ""
            return "write" in doing or "send" in doing
    wait_until(stuck, timeout, "the server blocked in write()", interval=0.02)
    return sent


@check("a client that resets its connection (RST) ends that client only, whether the server "
       "was reading or writing", needs=["echo_line"])
def test_client_reset(target):
    with server(target) as s:
        scenes = [("while your server waited in read()", "read"),
                  ("while your server was blocked in write() (the client sent a lot and read nothing)",
                   "write")]
        for when, call in scenes:
            if call == "read":
                with LineClient(s.port) as client:
                    echo_roundtrip(target, client, b"about to reset\n", "the echo", "", s)
                    reset(client.sock)
            else:
                sock = connect(s.port, timeout=T(5))
                sent = fill_until_blocked(sock, s, T(5))
                reset(sock)
            try:
                with LineClient(s.port) as client:
                    echo_roundtrip(target, client, b"next client\n", "the echo to the next client",
                                   "", s)
            except CheckFailed as failure:
                if s.alive() and not exits_soon(s):
                    raise
                code = s.proc.returncode
                seen = (f"killed by {signal.Signals(-code).name}" if code < 0 else f"exit status {code}")
                hint = ("SIGPIPE killed it: writing to a connection the peer has reset raises SIGPIPE "
                        "unless it is ignored (stop_on_signals() does) or the write passes MSG_NOSIGNAL"
                        if code == -signal.SIGPIPE else
                        f"a failed {call}() (ECONNRESET, EPIPE) means this client has gone: return from "
                        "echo() and accept the next one. It ends that client only, not the server: "
                        "no die() there (TODO 2)")
                fail(f"your server exited when a client reset its connection {when}",
                     tried=f"{tried(target)}; a client sent "
                           + ("a line, read its echo" if call == "read" else f"{sent} bytes without reading")
                           + ", then closed with RST (SO_LINGER 0); then a new client connected",
                     expected="the new client served, the server still running",
                     seen=f"{seen}; the new client: {failure.what}", details=program_lines(s.stderr()),
                     hint=hint)
    note("a reset while reading, then while writing: the next client was served each time")


TIME_WAIT = "06"   # the st column of /proc/net/tcp (include/net/tcp_states.h: TCP_TIME_WAIT = 6)


def in_time_wait(port: int) -> int:
    """How many connections on local port `port` are in TIME_WAIT."""
    return sum(1 for c in procfs.tcp_sockets(("tcp",)) if c.local_port == port and c.state == TIME_WAIT)


@check("restarts at once on the same port, while its last connection is in TIME_WAIT",
       needs=["fixed_port"])
def test_restart_in_time_wait(target):
    port = free_port()
    with server(target, port=port) as s, LineClient(port) as client:
        echo_roundtrip(target, client, b"then the server stops\n", "the echo", "", s)
        s.stop()                         # the server's side closes first: its FIN leaves first
        client.read_until_eof(timeout=T(5))
    # Our close answers the server's FIN: the server's end of the connection is in TIME_WAIT.
    lingering = wait_until(lambda: in_time_wait(port), T(5), "the server's end in TIME_WAIT")
    try:
        with server(target, port=port) as again, LineClient(port) as client:
            echo_roundtrip(target, client, b"back again\n", "the echo after the restart", "", again)
    except CheckFailed as failure:
        said = failure.details[-3:] if failure.details else []
        in_use = any("Address already in use" in line for line in failure.details)
        fail("your server could not start again on the port it had just used" if in_use
             else f"after a restart on the same port: {failure.what}",
             tried=f"{tried(target, port)}, one echo, SIGTERM (the server closes first), then at once "
                   f"{tried(target, port)} again",
             expected="the second server binds the port and echoes",
             seen=f"{failure.what}; {lingering} connection(s) on port {port} in TIME_WAIT "
                  "(/proc/net/tcp)", details=said,
             hint="set SO_REUSEADDR on the listening socket before bind(): without it, bind() fails with "
                  "EADDRINUSE while a connection on the port is in TIME_WAIT (about 60 s)"
             if in_use else failure.hint)
    note(f"restarted on port {port} with {lingering} connection in TIME_WAIT")


@check("exits with status 0 on SIGTERM and on SIGINT", needs=["announces_port"])
def test_stops_on_signals(target):
    for sig in (signal.SIGTERM, signal.SIGINT):
        with server(target) as s:
            try:   # a server serves until it is stopped: it must still be there now
                with LineClient(s.port) as client:
                    echo_roundtrip(target, client, b"still there?\n", "the echo", "")
            except CheckFailed:
                pass   # the echo checks report that; here only the exit status matters
            if not s.alive():
                fail(f"your server exited by itself, before the checker sent {sig.name}",
                     tried=tried(target), expected="a server that runs until SIGINT or SIGTERM",
                     seen=f"exit status {s.proc.returncode}", details=program_lines(s.stderr()),
                     hint="after a client, go back to accept(): main() must never return (TODO 3)")
            code = s.stop(sig, timeout=T(5))
            if code != 0:
                seen = "still running after 5s" if code is None else (
                    f"killed by {signal.Signals(-code).name}" if code < 0 else f"exit status {code}")
                fail(f"{sig.name} did not end the server with status 0", tried=f"kill -{sig.name[3:]} (pid)",
                     expected="exit status 0", seen=seen,
                     hint="call stop_on_signals() (common/server.h) at the start of main()")


@check("strace: socket → bind → listen → accept", needs=["announces_port"])
def test_strace_order(target):
    calls = ["socket", "bind", "listen", "accept", "accept4"]
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "trace")
        with server(target, wrapper=strace_prefix(path, calls)) as s:
            try:
                with LineClient(s.port) as client:
                    client.send(b"x\n")
                    client.read_exactly(2)
            except AssertionError:
                pass   # the order below says what went wrong
            s.stop()
        trace = read_trace_file(path)
    names = [c.name.replace("accept4", "accept") for c in trace if c.result is None or c.result >= 0]
    want = ["socket", "bind", "listen", "accept"]
    positions = [names.index(n) if n in names else None for n in want]
    if None in positions or positions != sorted(positions):
        missing = [n for n, p in zip(want, positions) if p is None]
        fail("the server's system calls are not socket → bind → listen → accept",
             tried=f"strace -f {tried(target)}, then one client",
             expected=" → ".join(want) + " (each succeeding)",
             seen=("missing: " + ", ".join(missing)) if missing else " → ".join(names),
             details=["[strace] " + str(c) for c in trace[:8]],
             hint="listen() turns the bound socket into one that accepts connections (TODO 1)")
    note(" → ".join(names[:5]))


# ---- what tshark sees ---------------------------------------------------------------

def packets_of(cap, port):
    return [p for p in cap.tcp_packets() if port in (p.src_port, p.dst_port)]


@check("tshark: starting the server (socket, bind, listen) sends no packet", needs=["announces_port"])
def test_listen_is_silent(target):
    port = free_port()
    with Capture([port]) as cap:
        with server(target, port=port) as s:
            pass   # started, printed its port: listen() has been called
        s.stop()
    packets = packets_of(cap, port)
    if packets:
        fail("packets on the server's port while it only started up",
             tried=f"capture `tcp port {port}` while running {tried(target, port)}, no client",
             expected="0 packets: listen() only changes state inside the kernel",
             seen=f"{len(packets)} packets", details=describe_all(packets, port),
             hint="your server should not connect anywhere by itself: only clients send SYNs")
    note("0 packets")


@check("tshark: a connect before listen() is refused (RST), after listen() accepted",
       needs=["announces_port"])
def test_refused_before_listen(target):
    port = free_port()
    with Capture([port]) as cap:
        try:
            connect(port).close()
            fail("the checker reached a port nobody had opened yet", tried=f"connect to {port}")
        except ConnectionRefusedError:
            pass
        with server(target, port=port) as s:
            try:
                connect(port).close()
                accepted = True
            except ConnectionRefusedError:
                accepted = False
            details = program_lines(s.stderr())
    packets = packets_of(cap, port)
    kinds = [p.kind for p in packets]
    before_ok = kinds[:2] == ["SYN", "RST"]
    if not (before_ok and accepted and kinds[2:5] == ["SYN", "SYN-ACK", "ACK"]):
        fail("after your server printed its port, a connection was not accepted" if not accepted
             else "the packets are not: SYN, RST (before), then SYN, SYN-ACK, ACK (after)",
             tried=f"connect to port {port} before starting {tried(target, port)}, then once after",
             expected="before: SYN → RST (ECONNREFUSED); after: SYN → SYN-ACK → ACK",
             seen="connect refused: the kernel answered the SYN with RST" if not accepted else " ".join(kinds),
             details=describe_all(packets, port) + details,
             hint="bind() alone does not accept connections: listen() does (TODO 1)")
    note("before: SYN → RST · after: SYN → SYN-ACK → ACK")


@check("tshark: the handshake is SYN, SYN-ACK, ACK", needs=["announces_port"])
def test_handshake(target):
    port = free_port()
    with server(target, port=port), Capture([port]) as cap:
        try:
            connect(port).close()
        except ConnectionRefusedError:
            pass
    packets = packets_of(cap, port)
    first = [(p.kind, p.from_client(port)) for p in packets[:3]]
    if first != [("SYN", True), ("SYN-ACK", False), ("ACK", True)]:
        fail("the connection did not open with the three-way handshake",
             tried=f"capture `tcp port {port}`, connect to {tried(target, port)}",
             expected="client → server SYN, server → client SYN-ACK, client → server ACK",
             seen=" ".join(k for k, _ in first) or "no packets", details=describe_all(packets, port),
             hint="a RST instead of SYN-ACK means nothing listens on the port: is listen() called?")
    note("SYN → SYN-ACK → ACK")


@check("tshark: a two-way stream: data both ways, then a FIN from each side", needs=["echo_line"])
def test_two_way_stream(target):
    port = free_port()
    with server(target, port=port) as s, Capture([port]) as cap:
        with LineClient(s.port) as client:
            client.send(b"ping\n")
            client.read_exactly(5, what="the echo of ping")
            client.shutdown_write()
            client.read_until_eof(timeout=T(5))
    packets = packets_of(cap, port)
    data_in = [p for p in packets if p.length and p.from_client(port)]
    data_out = [p for p in packets if p.length and not p.from_client(port)]
    fin_in = any(p.fin and p.from_client(port) for p in packets)
    fin_out = any(p.fin and not p.from_client(port) for p in packets)
    problems = [m for ok, m in ((data_in, "no data from the client"), (data_out, "no data from the server"),
                                (fin_in, "no FIN from the client"),
                                (fin_out, "no FIN from the server: it never closed the connection"))
                if not ok]
    if problems:
        fail("the capture does not show a complete two-way exchange",
             tried="send `ping\\n`, read the echo, shutdown(SHUT_WR), wait for the server to close",
             expected="client DATA, server DATA, FIN from the client, FIN from the server",
             seen="; ".join(problems), details=describe_all(packets, port),
             hint="the server sent no data: it must write back what it reads (TODO 2)" if not data_out
             else "close() the client's socket once read() returns 0: that sends the server's FIN")
    note(f"{len(packets)} packets: " + ", ".join(p.kind + ("+FIN" if p.fin and p.kind != "FIN" else "")
                                                  for p in packets))
