"""lesson 02 · server-syscalls: an echo server from socket, bind, listen and accept

The student's program: `echo_server -p PORT` sends every byte back, one
client after another. Besides talking to it, the checker watches it with
strace (the system calls) and dumpcap/tshark (the packets on loopback).
"""
import os
import signal
import subprocess
import tempfile
import threading

from checker.harness import (Capture, CheckFailed, LineClient, T, check, describe_all, expect_bytes, fail, free_port,
                     note, show_bytes, start_server)
from checker.harness.client import connect
from checker.harness.faults import faults_env, read_faults
from checker.harness.procs import program_lines
from checker.harness.strace import read_trace_file, strace_prefix

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


def echo_roundtrip(target, client: LineClient, data: bytes, what: str, hint: str):
    client.send(data)
    got = client.read_exactly(len(data), what=what) if data else b""
    expect_bytes(got, data, what=f"{what} is not what was sent", tried=tried(target),
                 sent=data, hint=hint)


@check("echoes a line byte for byte", needs=["announces_port"])
def test_echo_line(target):
    with server(target) as s, LineClient(s.port) as client:
        echo_roundtrip(target, client, b"hello, echo\r\n", "the echo",
                       "write back exactly the n bytes read() returned")


@check("echoes several lines on one connection", needs=["echo_line"])
def test_echo_lines(target):
    with server(target) as s, LineClient(s.port) as client:
        for i, line in enumerate([b"one\n", b"two, a bit longer\n", b"3\n", b"\xff\x00binary\n"]):
            echo_roundtrip(target, client, line, f"the echo of line {i + 1}",
                           "keep reading in a loop until read() returns 0 (TODO 2)")


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
                                   "accept() the next client in a loop once one is done (TODO 3)")
            except CheckFailed:
                if n == 1 or not exits_soon(s):
                    raise
                fail("your server exited after its first client", tried=tried(target),
                     expected="each client served in turn, the server still running",
                     seen=f"exit status {s.proc.returncode}", details=program_lines(s.stderr()),
                     hint="after one client, go back to accept() (TODO 3): do not let main() return")


def exits_soon(s) -> bool:
    try:
        s.proc.wait(timeout=T(2))
        return True
    except subprocess.TimeoutExpired:
        return False


@check("closes the connection when the client has sent everything (read() returns 0)",
       needs=["echo_line"])
def test_closes_at_eof(target):
    with server(target) as s, LineClient(s.port) as client:
        client.send(b"last words\n")
        client.shutdown_write()          # our FIN: the server's read() will return 0
        data, closed = client.read_until_eof(timeout=T(5))
        if not closed:
            fail("the server kept the connection open after the client's end of stream",
                 tried="send `last words\\n`, then shutdown(SHUT_WR)",
                 expected="the echo, then the connection closed by the server",
                 seen=f"{show_bytes(data)}, and the connection still open after {T(5):.0f}s",
                 hint="read() returning 0 means the client is done: stop the loop and close() the socket")


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
             hint="close() the client's socket once read() returns 0: that sends the server's FIN")
    note(f"{len(packets)} packets: " + ", ".join(p.kind + ("+FIN" if p.fin and p.kind != "FIN" else "")
                                                  for p in packets))
