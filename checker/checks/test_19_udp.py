"""lesson 19 · udp: datagrams: boundaries, loss, retries

The student's programs:
  `udp_server -p PORT [--tcp] KEY=VALUE...` answers "ID GET KEY" datagrams with "ID FOUND VALUE",
    "ID MISSING" or, for a datagram longer than its 512-byte buffer, "ID TRUNCATED LENGTH", at the
    address recvfrom() gave; with --tcp it also serves "GET KEY\\n" lines over TCP on the same port;
  `udp_lookup [-t MS] [-r RETRIES] [--unconnected] HOST PORT KEY...` asks for every key at once,
    one id each, resends with a doubling timeout, ignores duplicate and stale answers, gives up
    after RETRIES resends (exit status 2), and stops at ECONNREFUSED on its connected socket;
  `mcast_send GROUP PORT` sends each stdin line to a multicast group via 127.0.0.1;
  `mcast_recv [--leave-after N] GROUP PORT` joins the group on 127.0.0.1 and prints what it gets.

The checker plays the other side where it must see or shape the datagrams: a client with two
sockets, a server that stays silent, answers twice or answers a stale id. Loss, duplication and
reordering come from the course's relay (tools/programs/lossy_relay.cc; this kernel has no netem),
whose seed every message names, so that a failure can be replayed by hand. Multicast runs on the
loopback of the checker's own network namespace (checker/run.py makes it).
"""
import socket
import struct
import subprocess
import threading
import time

from checker.harness import T, check, fail, note, run, show_bytes, spawn, start_server, wait_until
from checker.harness.procs import kill_group, program_lines
from checker.harness.target import tool

SERVER, LOOKUP, SEND, RECV = "udp_server", "udp_lookup", "mcast_send", "mcast_recv"
TABLE = {"apple": "red", "pear": "green", "plum": None}   # None: not in the server's table
GROUP = "239.1.2.3"
SO_TIMESTAMPNS = getattr(socket, "SO_TIMESTAMPNS", 35)   # asm-generic/socket.h; Python 3.11 lacks the name
RELAY_SEEDS = (7, 1919)
RELAY_RATES = ["--drop", "0.2", "--dup", "0.2", "--reorder", "0.3", "--delay-ms", "20"]


def tried(target, name, *args) -> str:
    return " ".join([target.shown(target.binary(name)), *map(str, args)])


def table_args(table=TABLE) -> list[str]:
    return [f"{k}={v}" for k, v in table.items() if v is not None]


def start_lookup_server(target, *extra):
    return start_server(target.binary(SERVER), [*extra, *table_args()])


def udp_socket(timeout: float = 2.0) -> socket.socket:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    s.settimeout(timeout)
    return s


def receive(s: socket.socket) -> tuple[bytes, tuple] | None:
    try:
        return s.recvfrom(65536)
    except socket.timeout:
        return None


def unused_udp_port() -> int:
    """A UDP port nothing is bound to (the kernel's pick, released at once)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def expected_line(key: str, table=TABLE) -> str:
    return f"{key} {table[key]}" if table[key] is not None else f"{key} (missing)"


# ---- the server ---------------------------------------------------------------------------

@check("builds")
def test_build(target):
    target.build()


@check("udp_lookup asks udp_server for apple, pear and plum, and prints each answer",
       needs=["build"])
def test_answers(target):
    with start_lookup_server(target) as server:
        args = ["127.0.0.1", server.port, *TABLE]
        result = run([target.binary(LOOKUP), *args], timeout=T(10))
    want = sorted(expected_line(k) for k in TABLE)
    seen = sorted(result.stdout.decode(errors="replace").splitlines())
    if result.returncode != 0 or seen != want:
        fail("udp_lookup did not print the three answers" if not result.timed_out
             else "udp_lookup never ended",
             tried=f"{tried(target, SERVER, '-p 0', *table_args())}; then "
                   f"{tried(target, LOOKUP, *args)}",
             expected=f"exit status 0 and the lines {want} (in any order)",
             seen=f"{result.exit_description()}; lines {seen}",
             details=result.stderr_lines() + program_lines(server.stderr(), label="udp_server"),
             hint="the server answers \"ID FOUND VALUE\" or \"ID MISSING\" to \"ID GET KEY\" (one space "
                  "each); the client prints \"KEY VALUE\" or \"KEY (missing)\". Try the server by hand: "
                  "`echo -n '1 GET apple' | nc -u -w1 127.0.0.1 PORT`")
    note("; ".join(want))


@check("the server answers each request at the address recvfrom() gave, one datagram per answer",
       needs=["build"])
def test_reply_to_sender(target):
    with start_lookup_server(target) as server, udp_socket() as a, udp_socket() as b:
        to = ("127.0.0.1", server.port)
        shown = f"socket A (port {a.getsockname()[1]}) and socket B (port {b.getsockname()[1]})"
        a.sendto(b"101 GET apple", to)
        first = receive(a)
        b.sendto(b"202 GET pear", to)
        second = receive(b)
        a.settimeout(0.2)
        strays = [got[0] for got in iter(lambda: receive(a), None)]
        if first is None or first[0] != b"101 FOUND red" or second is None or second[0] != b"202 FOUND green":
            where = (f"socket A got it: {strays}" if any(s.startswith(b"202 ") for s in strays)
                     else "nobody got it")
            fail("an answer did not come back to the socket that asked" if second is None
                 else "a wrong answer came back",
                 tried=f"from {shown}: A sends \"101 GET apple\", then B sends \"202 GET pear\"",
                 expected="A gets \"101 FOUND red\", B gets \"202 FOUND green\"",
                 seen=f"A got {show_bytes(first[0]) if first else 'nothing'}; B got "
                      f"{show_bytes(second[0]) if second else 'nothing'}" +
                      (f" (B's answer: {where})" if second is None else ""),
                 details=program_lines(server.stderr(), label="udp_server"),
                 hint="a UDP socket has no connection that remembers its peer: answer with sendto() to "
                      "the address recvfrom() filled in for THIS datagram, not one kept from an earlier "
                      "request or written in the code (TODO 1)")
        # three requests in a row: three datagrams back, one answer in each
        for i, key in enumerate(["apple", "pear", "plum"]):
            a.sendto(f"{300 + i} GET {key}".encode(), to)
        a.settimeout(2.0)
        got = []
        while len(got) < 3 and (answer := receive(a)) is not None:
            got.append(answer[0])
    want = [b"300 FOUND red", b"301 FOUND green", b"302 MISSING"]
    if sorted(got) != want:
        fail("three requests did not bring three answers, one per datagram",
             tried="socket A sends three datagrams in a row: 300 GET apple, 301 GET pear, 302 GET plum",
             expected=f"three datagrams: {[w.decode() for w in want]}",
             seen=f"{len(got)} datagram(s): {[show_bytes(g) for g in got]}",
             hint="each recvfrom() returns exactly one datagram, and each sendto() makes one: "
                  "answer each request with one sendto()")
    note("A and B each got their own answer; three requests, three datagrams")


@check("a 2000-byte request is refused as \"ID TRUNCATED 2000\" (MSG_TRUNC); an empty one stops nothing",
       needs=["build"])
def test_truncation(target):
    big = b"77 GET " + b"x" * (2000 - 7)
    with start_lookup_server(target) as server, udp_socket() as s:
        s.sendto(big, ("127.0.0.1", server.port))
        got = receive(s)
        s.sendto(b"78 GET apple", ("127.0.0.1", server.port))
        after = receive(s)
        # an empty datagram is a datagram: recvfrom() returns 0 for it, which on UDP is not the
        # end of anything (whatever the server answers it, "0 BAD" or nothing, it goes on)
        s.sendto(b"", ("127.0.0.1", server.port))
        s.sendto(b"79 GET pear", ("127.0.0.1", server.port))
        after_empty = []
        while not any(d.startswith(b"79 ") for d in after_empty) and (back := receive(s)) is not None:
            after_empty.append(back[0])
        alive = server.alive()
        stderr = server.stderr()
    if got is None or got[0] != b"77 TRUNCATED 2000":
        fail("the long request was not reported with its real length",
             tried=f"send one datagram of 2000 bytes (\"77 GET xxxx…\") to {tried(target, SERVER, '-p 0')}",
             expected="the answer \"77 TRUNCATED 2000\"",
             seen=f"{show_bytes(got[0], 60) if got else 'no answer'}",
             details=program_lines(stderr, label="udp_server"),
             hint="recvfrom() into a 512-byte buffer keeps 512 bytes and silently drops the rest; "
                  "with the flag MSG_TRUNC it still returns the datagram's real length (udp(7)): "
                  "compare it with the buffer's size (TODO 1)")
    if after is None or after[0] != b"78 FOUND red":
        fail("after the long request, the server stopped answering properly",
             tried="a 2000-byte request, then \"78 GET apple\"",
             expected="\"78 FOUND red\"", seen=show_bytes(after[0]) if after else "no answer",
             details=program_lines(stderr, label="udp_server"),
             hint="the truncated datagram is gone entirely once received: the next recvfrom() gets "
                  "the next datagram")
    if b"79 FOUND green" not in after_empty:
        fail("after an empty datagram, the server " + ("exited" if not alive else "stopped answering"),
             tried="an empty datagram (0 bytes), then \"79 GET pear\"",
             expected="the server goes on: \"79 FOUND green\" (whatever it answers the empty one)",
             seen=f"{'the server exited; ' if not alive else ''}datagrams back: "
                  f"{[show_bytes(d) for d in after_empty] or 'none'}",
             details=program_lines(stderr, label="udp_server"),
             hint="on UDP, recvfrom() returning 0 means a datagram of 0 bytes arrived, not that a "
                  "peer closed: there is no connection to close. Only a negative result is an "
                  "error; answer (or ignore) the empty datagram and receive the next (TODO 1)")
    note("77 TRUNCATED 2000, then 78 FOUND red; an empty datagram, then 79 FOUND green")


@check("with --tcp, the same port number serves TCP and UDP at once", needs=["build"])
def test_same_port_tcp_udp(target):
    with start_lookup_server(target, "--tcp") as server, udp_socket() as s:
        port = server.port
        s.sendto(b"5 GET pear", ("127.0.0.1", port))
        over_udp = receive(s)
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=2) as c:
                c.sendall(b"GET apple\n")
                over_tcp = c.recv(100)
        except OSError as e:
            over_tcp = f"connect/recv: {e.strerror or e}".encode()
    if over_udp is None or over_udp[0] != b"5 FOUND green" or over_tcp != b"FOUND red\n":
        fail("TCP and UDP were not both served on the port number udp_server printed",
             tried=f"{tried(target, SERVER, '-p 0', '--tcp', *table_args())}: UDP \"5 GET pear\" "
                   f"and TCP \"GET apple\\n\", both to port {port}",
             expected="UDP: \"5 FOUND green\"; TCP: \"FOUND red\\n\"",
             seen=f"UDP: {show_bytes(over_udp[0]) if over_udp else 'no answer'}; TCP: {show_bytes(over_tcp)}",
             details=program_lines(server.stderr(), label="udp_server"),
             hint="bind the TCP socket to the very port number the UDP socket got (getsockname): "
                  "TCP and UDP have separate port spaces, so the bind succeeds (TODO 2)")
    note(f"port {port}: UDP and TCP both answered")


# ---- the client, against a server the checker plays ------------------------------------------

class FakeServer:
    """A UDP server played by the checker: it records every datagram (time, text, address)
    and lets `respond(server, text, address)` answer as it likes, on a thread of its own."""

    def __init__(self, respond=None):
        self.sock = udp_socket(timeout=0.05)
        self.port = self.sock.getsockname()[1]
        self.respond = respond
        self.received: list[tuple[float, bytes, tuple]] = []
        self.stopping = False
        self.thread = threading.Thread(target=self._serve, daemon=True)

    def _serve(self):
        # the kernel's arrival time of each datagram (SO_TIMESTAMPNS), not this thread's,
        # which may be scheduled late on a busy machine
        self.sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
        while not self.stopping:
            try:
                data, ancillary, _, address = self.sock.recvmsg(65536, 256)
            except socket.timeout:
                continue
            got = (data, address)
            arrived = time.time()
            for level, kind, value in ancillary:
                if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS:
                    seconds, nanoseconds = struct.unpack("qq", value[:16])
                    arrived = seconds + nanoseconds / 1e9
            self.received.append((arrived, *got))
            if self.respond:
                self.respond(self, got[0], got[1])

    def send(self, text: str, address):
        self.sock.sendto(text.encode(), address)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stopping = True
        self.thread.join(timeout=5)
        self.sock.close()


def request_id(text: bytes) -> str:
    return text.split(b" ", 1)[0].decode(errors="replace")


@check("an answer with a stale id is ignored: the one with the request's id is printed",
       needs=["answers"])
def test_stale_reply_ignored(target):
    def respond(server, text, address):
        rid = request_id(text)
        stale = str(int(rid) - 1) if rid.isdigit() else "0"
        server.send(f"{stale} FOUND stale-value", address)   # late, for an earlier request
        server.send(f"{rid} FOUND red", address)

    with FakeServer(respond) as server:
        args = ["-t", "500", "-r", "2", "127.0.0.1", server.port, "apple"]
        result = run([target.binary(LOOKUP), *args], timeout=T(10))
    out = result.stdout.decode(errors="replace")
    if result.returncode != 0 or out != "apple red\n":
        fail("udp_lookup took a stale answer for the request's" if "stale-value" in out
             else "udp_lookup did not print the answer with the request's id",
             tried=f"{tried(target, LOOKUP, *args)}, against a checker server that answers "
                   "\"ID-1 FOUND stale-value\" and then \"ID FOUND red\"",
             expected="exit status 0 and one line: apple red",
             seen=f"{result.exit_description()}; stdout {show_bytes(result.stdout)}",
             details=result.stderr_lines(),
             hint="an answer belongs to the request whose id it carries: find the waiting request "
                  "with that id, and ignore an answer no waiting request has (TODO 5). A DNS "
                  "resolver does the same, or anyone could feed it old answers")
    note("the stale answer was ignored")


@check("a duplicated answer is counted once", needs=["answers"])
def test_duplicate_counted_once(target):
    ids = {}

    def respond(server, text, address):
        key = text.split(b" ")[-1].decode(errors="replace")
        ids[key] = (request_id(text), address)
        if {"apple", "pear"} <= set(ids) and not getattr(server, "answered", False):
            server.answered = True
            apple, pear = ids["apple"][0], ids["pear"][0]
            for line in (f"{apple} FOUND red", f"{apple} FOUND red", f"{pear} FOUND green"):
                server.send(line, address)

    with FakeServer(respond) as server:
        args = ["-t", "1000", "-r", "1", "127.0.0.1", server.port, "apple", "pear"]
        result = run([target.binary(LOOKUP), *args], timeout=T(10))
    lines = result.stdout.decode(errors="replace").splitlines()
    if result.returncode != 0 or sorted(lines) != ["apple red", "pear green"]:
        fail("apple's answer was counted twice" if lines.count("apple red") > 1
             else "udp_lookup did not print each answer exactly once",
             tried=f"{tried(target, LOOKUP, *args)}, against a checker server that sends apple's "
                   "answer twice, then pear's",
             expected="exit status 0 and two lines: apple red, pear green",
             seen=f"{result.exit_description()}; lines {lines}",
             details=result.stderr_lines(),
             hint="the network may deliver a datagram twice. Once a request is answered it no "
                  "longer waits: an answer for its id is then a duplicate to ignore (TODO 5)")
    note("the duplicate was ignored")


def silent_run(target, timeout_ms: int, retries: int, timeout: float, keys=("apple",), respond=None):
    with FakeServer(respond) as server:
        args = ["-t", timeout_ms, "-r", retries, "127.0.0.1", server.port, *keys]
        result = run([target.binary(LOOKUP), *map(str, args)], timeout=timeout)
    return args, result, server.received


@check("with no answer, udp_lookup resends the same request with a doubling timeout (backoff)",
       needs=["build"])
def test_backoff(target):
    args, result, received = silent_run(target, 100, 4, T(8))
    times = [round((t - received[0][0]) * 1000) for t, _, _ in received] if received else []
    gaps = [b - a for a, b in zip(times, times[1:])]
    ids = {request_id(text) for _, text, _ in received}
    shown = f"{len(received)} datagram(s) at {times} ms; ids {sorted(ids)}"
    # each wait at least (nearly) twice the one before: 100, 200, 400, 800 ms. A loaded
    # machine only makes a wait longer, never shorter, so the floor is safe to demand.
    floors = [0.85 * 100 * 2 ** i for i in range(4)]
    growing = len(gaps) == 4 and all(gap >= floor for gap, floor in zip(gaps, floors))
    # and the first wait is -t itself: 100 + 200 + 400 + 800 = 1500 ms in all. The ceiling leaves
    # a loaded machine 750 ms (scaled) of lateness, and still fails waits of 200, 400, 800, 1600
    ceiling = 1500 + round(T(0.75) * 1000)
    prompt = len(times) == 5 and times[-1] <= ceiling
    if not growing or not prompt or len(ids) != 1:
        fail("a resend carried a new id" if len(ids) > 1 else
             f"udp_lookup did not send 5 times (the first try and 4 resends): it sent {len(received)}"
             if len(received) != 5 else
             "the resends did not back off" if not growing else
             f"the resends came late: the last one {times[-1]} ms after the first try, not about 1500; "
             "the first wait must be the -t timeout itself",
             tried=f"{tried(target, LOOKUP, *args)}, against a checker server that never answers",
             expected="5 datagrams with one id, about 0, 100, 300, 700 and 1500 ms after the first: "
                      "the first wait -t, then each wait twice the one before (gaps of at least 85, "
                      f"170, 340, 680 ms; the last datagram at most {ceiling} ms after the first)",
             seen=shown + (f"; gaps {gaps} ms" if gaps else ""),
             details=result.stderr_lines(),
             hint="udp_lookup sent nothing: read its stderr above. Is the socket connect()ed, so "
                  "that a send() needs no address (TODO 3)?" if not received else
             "resend the same request with the same id: an answer to the first try that arrives "
             "late must still count" if len(ids) > 1 else
             "-r RETRIES is the number of resends: a request goes out 1 + RETRIES times, then is "
             "given up (TODO 4)" if len(received) != 5 else
             "a client that resends at a fixed pace keeps hammering a server that is slow "
             "because it is overloaded: double the timeout after each try (TODO 4)" if not growing else
             "the waits are -t, 2×-t, 4×-t…: the first one is the timeout the user gave. Compute it "
             "from the tries made before this one (count the try after, or shift by tries - 1) (TODO 4)")
    note(f"sent at {times} ms, one id")


@check("after its last resend, udp_lookup gives up with a clear error and exit status 2",
       needs=["build"])
def test_gives_up(target):
    def respond(server, text, address):   # pear is answered; apple and plum never are
        if text.split(b" ")[-1] == b"pear":
            server.send(f"{request_id(text)} FOUND green", address)

    args, result, received = silent_run(target, 100, 3, T(8), ("apple", "pear", "plum"), respond)
    stdout, stderr = result.stdout.decode(errors="replace"), result.stderr.decode(errors="replace")
    unnamed = [key for key in ("apple", "plum")
               if not any(key in line and "no answer" in line for line in stderr.splitlines())]
    counts = {key: sum(text.split(b" ")[-1] == key.encode() for _, text, _ in received)
              for key in ("apple", "pear", "plum")}
    if result.returncode != 2 or unnamed or stdout.splitlines() != ["pear green"]:
        fail("udp_lookup never gave up" if result.timed_out else
             f"udp_lookup gave up, but not every key it gave up was named: not {', '.join(unnamed)}"
             if result.returncode == 2 and len(unnamed) == 1 else
             "udp_lookup did not give up clearly",
             tried=f"{tried(target, LOOKUP, *args)}, against a checker server that answers pear at "
                   "once and never answers apple or plum",
             expected="\"pear green\" on stdout; after 4 tries each (about 1.5 s), on stderr "
                      "\"udp_lookup: apple: no answer after 4 tries …\" and the same for plum; "
                      "exit status 2",
             seen=f"{result.exit_description()} after {result.seconds:.1f}s; stdout "
                  f"{show_bytes(result.stdout)}; datagrams received by the checker: "
                  + ", ".join(f"{key} {n}" for key, n in counts.items()),
             details=result.stderr_lines(),
             hint="udp_lookup sent nothing: read its stderr above. Is the socket connect()ed, so "
                  "that a send() needs no address (TODO 3)?" if not received else
             "a request given up is one request done, not the end of the program: say which key "
             "had no answer, mark it done, and let the loop go on until nothing waits; the exit "
             "status 2 comes at the end (TODO 4)" if result.returncode == 2 and len(unnamed) == 1 else
             "count the tries of each request; after 1 + RETRIES of them, give it up: say which "
             "key had no answer, and exit with status 2 once nothing waits (TODO 4)")
    note(f"gave up after {result.seconds:.1f}s, {counts['apple']} tries each: "
         + "; ".join(stderr.strip().splitlines()))


# ---- ICMP port unreachable --------------------------------------------------------------------

@check("a connected socket learns ECONNREFUSED at once when nothing listens", needs=["build"])
def test_connected_refused(target):
    port = unused_udp_port()
    args = ["-t", "2000", "-r", "2", "127.0.0.1", port, "apple"]
    result = run([target.binary(LOOKUP), *map(str, args)], timeout=T(8))
    stderr = result.stderr.decode(errors="replace")
    if result.returncode != 1 or "refused" not in stderr.lower() or result.seconds > 1.5:
        fail("udp_lookup did not stop at the ICMP port unreachable",
             tried=f"{tried(target, LOOKUP, *args)} (nothing is bound to UDP port {port})",
             expected="exit status 1 at once (well before the first 2 s timeout), with "
                      "\"connection refused\" on stderr",
             seen=f"{result.exit_description()} after {result.seconds:.1f}s",
             details=result.stderr_lines(),
             hint="the kernel answers a datagram to a closed port with an ICMP port unreachable; on "
                  "a connect()ed UDP socket the next recv() fails with ECONNREFUSED (udp(7)). Take "
                  "it as the answer: nobody is there (TODO 3 and 6)")
    note(f"refused after {result.seconds * 1000:.0f} ms: {stderr.strip()}")


@check("an unconnected socket (sendto/recvfrom) never learns: it times out instead",
       needs=["build"])
def test_unconnected_never_learns(target):
    port = unused_udp_port()
    args = ["--unconnected", "-t", "100", "-r", "2", "127.0.0.1", port, "apple"]
    result = run([target.binary(LOOKUP), *map(str, args)], timeout=T(8))
    stderr = result.stderr.decode(errors="replace")
    if result.returncode != 2 or "refused" in stderr.lower() or result.seconds < 0.6:
        fail("with --unconnected, udp_lookup still learned of the refusal" if "refused" in stderr.lower()
             else "with --unconnected, udp_lookup did not wait out its tries",
             tried=f"{tried(target, LOOKUP, *args)} (nothing is bound to UDP port {port})",
             expected="3 tries over about 0.7 s, then exit status 2 with \"no answer\" on stderr: "
                      "an unconnected socket is never told of ICMP errors",
             seen=f"{result.exit_description()} after {result.seconds:.1f}s",
             details=result.stderr_lines(),
             hint="with --unconnected, do not connect(): send with sendto() and the server's address. "
                  "The kernel then has no peer to match the ICMP error with, and drops it (TODO 3)")
    note(f"no word of the refusal; gave up after {result.seconds:.1f}s")


# ---- loss, duplication, reordering -----------------------------------------------------------

RELAY_TABLE = {f"k{i:02d}": f"v{i:02d}" for i in range(60)}


@check("through the lossy relay (seeds 7, 1919), every answer comes exactly once and right",
       needs=["answers"])
def test_lossy_relay(target):
    relay_binary = tool("lossy_relay")
    notes = []
    for seed in RELAY_SEEDS:
        with start_server(target.binary(SERVER), table_args(RELAY_TABLE)) as server:
            relay = start_server(relay_binary, ["--to", f"127.0.0.1:{server.port}", "--seed", seed,
                                                *RELAY_RATES])
            try:
                args = ["-t", "50", "-r", "8", "127.0.0.1", relay.port, *RELAY_TABLE]
                result = run([target.binary(LOOKUP), *map(str, args)], timeout=T(20))
            finally:
                relay.stop()
            stats = relay.stderr().decode(errors="replace").strip()
        replay = (f"replay: {relay_binary.relative_to(relay_binary.parents[2])} -p 0 --to 127.0.0.1:SERVERPORT "
                  f"--seed {seed} {' '.join(RELAY_RATES)}; then udp_lookup -t 50 -r 8 127.0.0.1 RELAYPORT k00 … k59")
        lines = result.stdout.decode(errors="replace").splitlines()
        want = {k: f"{k} {v}" for k, v in RELAY_TABLE.items()}
        twice = sorted({line for line in lines if lines.count(line) > 1})
        wrong = [line for line in lines if line not in want.values()]
        missing = [k for k, line in want.items() if line not in lines]
        if result.returncode != 0 or twice or wrong or missing:
            fail(f"seed {seed}: " + ("an answer was printed twice" if twice else
                                     "a key got another key's answer" if wrong else
                                     "some keys got no answer"),
                 tried=f"udp_server with 60 keys behind build/tools/lossy_relay --seed {seed} "
                       f"{' '.join(RELAY_RATES)}; {tried(target, LOOKUP, '-t 50 -r 8 127.0.0.1 RELAYPORT k00 … k59')}",
                 expected="exit status 0 and 60 lines, \"kNN vNN\", each once",
                 seen=f"{result.exit_description()}; {len(lines)} lines; twice: {twice[:5]}; wrong: "
                      f"{wrong[:5]}; missing: {missing[:8]}; relay: {stats}",
                 details=[replay, *result.stderr_lines()],
                 hint="a duplicate must be ignored once its request is answered, an answer must go "
                      "to the request with its id (not the oldest waiting), and a lost one is sent "
                      "again (TODO 4 and 5)")
        notes.append(f"seed {seed}: 60/60 once each in {result.seconds:.1f}s ({stats})")
    for line in notes:
        note(line)


# ---- multicast ---------------------------------------------------------------------------------

class Member:
    """A running mcast_recv, its output in a file."""

    def __init__(self, target, tmp_path, name, args):
        self.name, self.args = name, args
        self.out, self.err = tmp_path / f"{name}.out", tmp_path / f"{name}.err"
        with open(self.out, "wb") as o, open(self.err, "wb") as e:
            self.proc = spawn([target.binary(RECV), *map(str, args)], stdout=o, stderr=e)

    def lines(self) -> list[str]:
        return self.out.read_text(errors="replace").splitlines()

    def got(self) -> list[str]:
        return [line[4:] for line in self.lines() if line.startswith("got ")]

    def stderr(self) -> list[str]:
        return program_lines(self.err.read_bytes(), label=self.name)


class MulticastScene:
    """Three receivers (the third leaves after 3 datagrams) and one sender fed line by line."""

    def __init__(self, target, tmp_path):
        self.target, self.port = target, unused_udp_port()
        self.members = [Member(target, tmp_path, f"receiver {i + 1}",
                               (["--leave-after", 3] if i == 2 else []) + [GROUP, self.port])
                        for i in range(3)]
        self.err = tmp_path / "sender.err"
        self.out = tmp_path / "sender.out"
        with open(self.out, "wb") as o, open(self.err, "wb") as e:
            self.sender = spawn([target.binary(SEND), GROUP, str(self.port)],
                                stdin=subprocess.PIPE, stdout=o, stderr=e)
        self.sent = 0
        self.tried = (f"{tried(target, RECV, GROUP, self.port)} twice, "
                      f"{tried(target, RECV, '--leave-after 3', GROUP, self.port)}, then "
                      f"{tried(target, SEND, GROUP, self.port)} fed lines one by one")

    def everyone_joined(self) -> bool:
        return all(any(line.startswith("joined") for line in m.lines()) for m in self.members)

    def send(self, text: str) -> bool:
        """Feeds one line to the sender; True once it has said "sent N"."""
        try:
            self.sender.stdin.write(text.encode() + b"\n")
            self.sender.stdin.flush()
        except OSError:
            return False
        self.sent += 1
        return bool(wait_until(lambda: f"sent {self.sent}" in self.out.read_text(errors="replace"),
                               T(3), f"sent {self.sent}"))

    def details(self) -> list[str]:
        rows = [f"{m.name}: {m.lines()}" for m in self.members]
        rows += program_lines(self.err.read_bytes(), label="mcast_send")
        for m in self.members:
            rows += m.stderr()
        return rows

    def close(self):
        for proc in [self.sender] + [m.proc for m in self.members]:
            kill_group(proc)
            proc.wait(timeout=5)
            if proc.stdin:
                proc.stdin.close()


def first_round(scene) -> None:
    """All three joined; "one", "two", "three" reach each of them."""
    if not wait_until(scene.everyone_joined, T(5), "three receivers joined"):
        fail("the three receivers did not all say \"joined\"", tried=scene.tried,
             expected=f"each receiver prints \"joined {GROUP}\" once it is a member",
             seen="; ".join(f"{m.name}: {m.lines()}" for m in scene.members), details=scene.details(),
             hint="join with IP_ADD_MEMBERSHIP and the interface 127.0.0.1 (INADDR_ANY needs a route "
                  "that a namespace with only lo lacks: ENODEV) (TODO 8)")
    words = ["one", "two", "three"]
    for word in words:
        if not scene.send(word):
            fail("mcast_send did not send", tried=scene.tried, expected="\"sent N\" after each line",
                 seen=scene.err.read_text(errors="replace").strip() or "nothing", details=scene.details(),
                 hint="a machine whose only interface is lo has no route for 224.0.0.0/4: sendto() "
                      "fails with \"Network is unreachable\" unless IP_MULTICAST_IF names 127.0.0.1 "
                      "(TODO 7)")
    if not wait_until(lambda: all(m.got()[:3] == words for m in scene.members), T(3), "three got three"):
        fail("not every receiver got every datagram", tried=scene.tried,
             expected="each of the three receivers prints got one, got two, got three",
             seen="; ".join(f"{m.name} got {m.got()}" for m in scene.members), details=scene.details(),
             hint="each receiver binds the group's port (SO_REUSEADDR lets all three) and joins the "
                  "group on 127.0.0.1 (TODO 8); the sender sends via 127.0.0.1 (TODO 7)")


@check(f"one sender, three receivers: every member of {GROUP} gets every datagram",
       needs=["build"])
def test_multicast_three_receivers(target, tmp_path):
    scene = MulticastScene(target, tmp_path)
    try:
        first_round(scene)
    finally:
        scene.close()
    note(f"three receivers on {GROUP}:{scene.port} via 127.0.0.1 got one, two, three")


@check("a receiver that leaves the group gets nothing more; the others still do",
       needs=["multicast_three_receivers"])
def test_multicast_leave(target, tmp_path):
    scene = MulticastScene(target, tmp_path)
    try:
        first_round(scene)
        leaver = scene.members[2]
        if not wait_until(lambda: any(line.startswith("left") for line in leaver.lines()), T(3), "left"):
            fail("receiver 3 did not say it left", tried=scene.tried,
                 expected=f"\"left {GROUP}\" after its third datagram", seen=str(leaver.lines()),
                 details=scene.details(), hint="IP_DROP_MEMBERSHIP with the same ip_mreq (TODO 9)")
        for word in ("four", "five", "end"):
            scene.send(word)
        stayers = scene.members[:2]
        wait_until(lambda: all(m.proc.poll() is not None for m in stayers), T(5), "receivers 1 and 2 ended")
        # the stayers have read "end": whatever the leaver was given is in its queue by now;
        # give it a moment to print, as a receiver that did not leave would
        wait_until(lambda: leaver.got()[3:], 0.5, "anything after leaving")
        after = leaver.got()[3:]
        stayers_ok = all(m.got() == ["one", "two", "three", "four", "five", "end"] for m in stayers)
        if after or not stayers_ok:
            fail("receiver 3 still got the group's datagrams after leaving" if after
                 else "receivers 1 and 2 did not get every datagram",
                 tried=scene.tried + "; after receiver 3 left: four, five, end",
                 expected="receiver 3: nothing after it left; receivers 1 and 2: one … five, end",
                 seen="; ".join(f"{m.name} got {m.got()}" for m in scene.members),
                 details=scene.details(),
                 hint="drop the membership (IP_DROP_MEMBERSHIP), and set IP_MULTICAST_ALL to 0 when "
                      "joining: with its default, 1, a socket bound to INADDR_ANY:PORT gets every "
                      "group's datagrams for that port as long as ANY socket of the machine is a "
                      "member (ip(7)) (TODO 8 and 9)")
    finally:
        scene.close()
    note("receiver 3 got nothing after leaving; 1 and 2 got everything")
