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
options also move later ACKs.
"""
import socket
import time

from checker.harness import (Capture, T, check, describe_all, fail, free_port, note, procfs, run, show_bytes,
                             start_server, wait_until)
from checker.harness.client import connect
from checker.harness.procs import program_lines

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
        result = run([target.binary(CLIENT), *client_args, "127.0.0.1", port, "/"], timeout=T(10))
    packets = [p for p in cap.tcp_packets() if port in (p.src_port, p.dst_port)]
    if result.returncode != 0:
        fail(f"http_get did not fetch the page: {result.exit_description()}",
             tried=f"{tried_server(target, server_args, port)}; {tried_client(target, client_args, port)}",
             expected="exit status 0 and the page's body on stdout",
             seen=show_bytes(result.stdout, 60), details=result.stderr_lines() + describe_all(packets, port),
             hint="the check `http_get fetches the page` says more")
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


def raw_get(port) -> bytes:
    with connect(port, timeout=T(5)) as sock:
        sock.sendall(REQUEST)
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    return data


@check("http_get fetches the page: header and body from httpd, the body on stdout", needs=["announces_port"])
def test_serves_page(target):
    with start_server(target.binary(SERVER)) as s:
        reply = raw_get(s.port)
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
                            "set TCP_DEFER_ACCEPT before connect(): connect() returns once the "
                            "handshake is done, and by then the ACK has left (TODO 1)")


@check("tshark: http_get --no-quickack: no bare ACK, the ACK rides on the request (3 packets)",
       needs=["serves_page"])
def test_client_no_quickack(target):
    client_without_bare_ack(target, "--no-quickack", "15-client-no-quickack",
                            "set TCP_QUICKACK to 0 before connect(), so that the socket starts "
                            "in delayed-ACK mode (TODO 1)")


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


@check("httpd --defer-accept: accept() waits for the request, and returns as soon as it comes",
       needs=["serves_page"])
def test_server_defer_accept(target):
    args = ["--defer-accept"]
    with start_server(target.binary(SERVER), args=args) as s:
        pid = s.proc.pid
        listening = sockets_of(pid)   # the listener: accept() has returned nothing yet
        t0 = time.monotonic()
        with connect(s.port, timeout=T(5)) as sock:
            connected = time.monotonic() - t0
            early = wait_for_sockets(pid, listening + 1, T(1))
            if early is not None:
                fail(f"accept() returned {early * 1000:.0f} ms after the client connected, before any data",
                     tried=f"{tried_server(target, args)}; connect, send nothing, watch the server's "
                           "sockets in /proc/PID/fd for 1 s",
                     expected=f"{listening} socket(s) (the listener) for 1 s: the kernel keeps the "
                              "connection until its first data",
                     seen=f"{listening + 1} sockets: accept() has returned a connection with no data",
                     details=program_lines(s.stderr()),
                     hint="set TCP_DEFER_ACCEPT on the listening socket, before the clients come; set on the "
                          "accepted socket it is too late (TODO 3)")
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
             tried=f"{tried_server(target, args)}; connect, wait 1 s, send {show_bytes(REQUEST)}",
             expected="the reply, at once", seen=show_bytes(first, 60) if first else f"nothing in {T(5):.0f}s",
             details=program_lines(s.stderr()),
             hint="TCP_DEFER_ACCEPT's value is in seconds: a large enough one, e.g. 10")
    if answered > T(0.5):
        fail(f"httpd answered {answered * 1000:.0f} ms after the request came",
             tried=f"{tried_server(target, args)}; connect, wait 1 s, send the request",
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


# ---- everything at once ----------------------------------------------------------------

ALL_SERVER = ["--defer-accept", "--cork", "--no-quickack"]
ALL_CLIENT = ["--defer-accept", "--no-quickack"]


def expect_whole_ladder(target, server_args, client_args, name: str, what: str, hint: str,
                        details=()) -> list[str]:
    """One transaction, captured, must draw the reference ladder captures/NAME; returns its steps."""
    packets, port, _ = transaction(target, server_args, client_args)
    got = steps(packets, port)
    want = reference_steps(name)
    if got != want:
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
