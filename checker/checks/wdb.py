"""The checker's side of WeensyDB: the protocol's script, bad clients, workloads.

Used by the WeensyDB checks (lessons 03-10, 12-14). Every network wait here
has a timeout; a client that gets no answer reports it rather than hanging.
"""
import pathlib
import shutil
import socket
import tempfile
import threading
from dataclasses import dataclass, field

from checker.harness import (CannotCheck, CheckFailed, Deadline, LineClient, T, procfs, run, show_bytes,
                             thread_states, wait_until)

NBUCKETS = 1024
MAX_VALUE = 1 << 20


def bucket_of(key: str) -> int:
    """The course's hash (common/wdb_table.cc): FNV-1a, 64 bits, modulo 1024."""
    h = 14695981039346656037
    for byte in key.encode():
        h ^= byte
        h = (h * 1099511628211) & 0xFFFFFFFFFFFFFFFF
    return h % NBUCKETS


def keys_in_same_bucket() -> tuple[str, str]:
    """Two different keys that hash to one bucket."""
    seen = {}
    for i in range(100000):
        key = f"k{i}"
        b = bucket_of(key)
        if b in seen:
            return seen[b], key
        seen[b] = key
    raise AssertionError("no two keys share a bucket")


def keys_by_bucket(buckets: int, per_bucket: int) -> dict[int, list[str]]:
    """{bucket: its keys}: the first `buckets` buckets to hold `per_bucket` of the keys m0, m1, …"""
    found: dict[int, list[str]] = {}
    for i in range(1_000_000):
        key = f"m{i}"
        keys = found.setdefault(bucket_of(key), [])
        if len(keys) < per_bucket:
            keys.append(key)
            full = [b for b, ks in found.items() if len(ks) == per_bucket]
            if len(full) == buckets:
                return {b: found[b] for b in full}
    raise AssertionError("not enough keys")


def keys_in_different_buckets() -> tuple[str, str]:
    assert bucket_of("apple") != bucket_of("pear")
    return "apple", "pear"


# ---- what the protocol says -------------------------------------------------------

def protocol_script(exch: bool) -> list[tuple[bytes, bytes]]:
    """(request, exact reply) pairs, run in order on one connection."""
    a, b = keys_in_different_buckets()
    script = [
        (b"get nothing\r\n", b"END\r\n"),
        (f"set {a} 5 0 3\r\nred\r\n".encode(), b"STORED\r\n"),
        (f"get {a}\r\n".encode(), f"VALUE {a} 5 3\r\nred\r\nEND\r\n".encode()),
        (f"set {b} 4\r\ngrey\r\n".encode(), b"STORED\r\n"),              # the short form
        (f"get {a} nothing {b} {a} {b} {a}\n".encode(),   # a bare \n ends it too; over 4 keys: in parts
         (f"VALUE {a} 5 3\r\nred\r\nVALUE {b} 0 4\r\ngrey\r\n" * 2 + f"VALUE {a} 5 3\r\nred\r\nEND\r\n").encode()),
        (f"set {a} 7 0 5\r\ngreen\r\n".encode(), b"STORED\r\n"),          # replaces
        (f"get {a}\r\n".encode(), f"VALUE {a} 7 5\r\ngreen\r\nEND\r\n".encode()),
        (b"set empty 0 0 0\r\n\r\n", b"STORED\r\n"),
        (b"get empty\r\n", b"VALUE empty 0 0\r\n\r\nEND\r\n"),
        (b"set bin 0 0 6\r\na\r\nb\x00c\r\n", b"STORED\r\n"),             # data is bytes, not lines
        (b"get bin\r\n", b"VALUE bin 0 6\r\na\r\nb\x00c\r\nEND\r\n"),
        (b"set quiet 0 0 2 noreply\r\nhi\r\nget quiet\r\n", b"VALUE quiet 0 2\r\nhi\r\nEND\r\n"),
    ]
    if exch:
        script += [
            (f"exch {a} {b}\r\n".encode(), b"EXCHANGED\r\n"),
            (f"get {a} {b}\r\n".encode(),
             f"VALUE {a} 0 4\r\ngrey\r\nVALUE {b} 7 5\r\ngreen\r\nEND\r\n".encode()),
            (f"exch {a} nothing\r\n".encode(), b"NOT_FOUND\r\n"),
        ]
    else:
        script += [(f"exch {a} {b}\r\n".encode(), b"SERVER_ERROR exch is not supported yet\r\n")]
    script += [
        (f"delete {a}\r\n".encode(), b"DELETED\r\n"),
        (f"delete {a}\r\n".encode(), b"NOT_FOUND\r\n"),
        (f"get {a}\r\n".encode(), b"END\r\n"),
        (f"delete {b} noreply\r\nget {b}\r\n".encode(), b"END\r\n"),
    ]
    return script


LONG_KEY = "k" * 300
BAD_INPUT = [
    ("an unknown command", b"frobnicate x\r\n", b"ERROR\r\n"),
    ("an empty line", b"\r\n", b"ERROR\r\n"),
    ("get with no key", b"get\r\n", b"ERROR\r\n"),
    ("a 300-byte key in get", f"get {LONG_KEY}\r\n".encode(), b"CLIENT_ERROR key longer than 250 bytes\r\n"),
    ("a 300-byte key in set (its data block is dropped)",
     f"set {LONG_KEY} 0 0 5\r\nhello\r\n".encode(), b"CLIENT_ERROR key longer than 250 bytes\r\n"),
    ("a key with a control character", b"get a\x01b\r\n", b"CLIENT_ERROR bad key (control characters)\r\n"),
    ("a size that is not a number", b"set k 0 0 five\r\n", b"CLIENT_ERROR bad command line format\r\n"),
    ("a negative size", b"set k 0 0 -1\r\n", b"CLIENT_ERROR bad command line format\r\n"),
    ("a size of 99999999999999999999", b"set k 0 0 99999999999999999999\r\n",
     b"CLIENT_ERROR bad command line format\r\n"),
    ("set with too few words", b"set k 0 0\r\n", b"CLIENT_ERROR bad command line format\r\n"),
    ("a value over 1 MiB (its data block is dropped)",
     b"set huge 0 0 1048577\r\n" + b"h" * 1048577 + b"\r\n", b"SERVER_ERROR object too large for cache\r\n"),
    ("a data block longer than its size", b"set k 0 0 2\r\nabc\r\n", b"CLIENT_ERROR bad data chunk\r\n"),
    ("a data block shorter than its size (the next request is taken as data)",
     b"set k 0 0 5\r\nab\r\nget k\r\n", b"CLIENT_ERROR bad data chunk\r\n"),
    ("a 9000-byte command line", b"get " + b"x" * 9000 + b"\r\n", b"CLIENT_ERROR line too long\r\n"),
    ("delete with an extra word", b"delete k now\r\n", b"CLIENT_ERROR bad command line format\r\n"),
    ("exch with one key", b"exch k\r\n", b"CLIENT_ERROR bad command line format\r\n"),
]


def read_reply(client: LineClient) -> bytes:
    """One whole reply: a line, or VALUE blocks up to END. A CheckFailed raised on the way
    carries what had come by then, as .data."""
    reply = b""
    try:
        line = client.read_line("the reply")
        reply = line
        while line.startswith(b"VALUE "):
            words = line.split()
            if len(words) != 4 or not words[3].isdigit():
                return reply
            reply += client.read_exactly(int(words[3]) + 2, what="the VALUE's data block")
            line = client.read_line("the rest of the get reply")
            reply += line
    except CheckFailed as failure:
        failure.data = reply + bytes(client.buffer)
        raise
    return reply


# ---- a real memcached client ------------------------------------------------------

def pymemcache_session(port: int):
    try:
        from pymemcache.client.base import Client
        from pymemcache.exceptions import MemcacheError
    except ImportError:
        raise CannotCheck("the Python memcached client pymemcache is not installed",
                          "sudo apt-get install python3-pymemcache (or: make deps)") from None
    client = Client(("127.0.0.1", port), connect_timeout=T(3), timeout=T(3))
    steps = [
        ("set('lang', 'C++')   (pymemcache sends noreply)", lambda: client.set("lang", "C++"), True),
        ("get('lang')", lambda: client.get("lang"), b"C++"),
        ("set('n', 42, noreply=False)", lambda: client.set("n", 42, noreply=False), True),
        ("get_many(['lang', 'n', 'missing'])", lambda: client.get_many(["lang", "n", "missing"]),
         {"lang": b"C++", "n": b"42"}),
        ("delete('lang', noreply=False)", lambda: client.delete("lang", noreply=False), True),
        ("get('lang')", lambda: client.get("lang"), None),
        ("delete('lang', noreply=False)", lambda: client.delete("lang", noreply=False), False),
    ]
    done = []
    try:
        for what, call, want in steps:
            try:
                got = call()
            except (MemcacheError, OSError) as error:
                got = f"{type(error).__name__}: {error or '(no message)'}"
                if "UnexpectedClose" in got:
                    got += " (the server closed the connection)"
            if got != want:
                raise CheckFailed(f"pymemcache's {what} went wrong",
                                  tried="; ".join(done + [what]), expected=repr(want), seen=repr(got),
                                  hint=pymemcache_hint(got, done))
            done.append(what.split("   ")[0])
    finally:
        client.close()


def pymemcache_hint(got, done: list[str]) -> str:
    """The hint for a step of the pymemcache session that went wrong, by what pymemcache met."""
    text = got if isinstance(got, str) else ""
    if "closed the connection" in text or "Connection reset" in text or "Broken pipe" in text:
        return ("the server closed the connection in the middle of pymemcache's session "
                f"(after {len(done)} step{'s' if len(done) != 1 else ''} went right): it must "
                "keep reading requests until the client hangs up")
    if "timed out" in text or "timeout" in text.lower():
        return ("pymemcache waited for a whole reply line and none came: every reply line must "
                "end in \\r\\n (pymemcache waits for the \\r\\n), and every request that is "
                "not noreply gets an answer")
    if any(answer in text for answer in ("STORED", "DELETED", "NOT_FOUND")):
        return ("pymemcache met an answer it did not ask for: its set sends noreply, and a "
                "noreply request must get no reply at all (it was read as the next request's)")
    if "SERVER_ERROR" in text or "CLIENT_ERROR" in text or "MemcacheServerError" in text \
            or "MemcacheClientError" in text:
        return "the server answered with an error line where memcached answers the request"
    if "MemcacheUnknownCommandError" in text:
        return "the server answered ERROR: does it dispatch every command (get, set, delete)?"
    return ("pymemcache compares with memcached's replies exactly: the value, the flags and "
            "the keys in each VALUE line must be the ones stored")


def libmemcached_session(port: int) -> str:
    """memccp, memccat and memcrm (Debian's libmemcached-tools) against the server.
    Returns what was done, for a note; CheckFailed if a tool got a wrong answer."""
    if not shutil.which("memccp"):
        return "libmemcached-tools is not installed: memccp/memccat/memcrm not tried"
    servers = f"--servers=127.0.0.1:{port}"
    with tempfile.TemporaryDirectory() as tmp:
        path = pathlib.Path(tmp) / "greeting"
        path.write_bytes(b"hello from memccp")
        steps = [(["memccp", servers, str(path)], 0, None),
                 (["memccat", servers, "greeting"], 0, b"hello from memccp"),
                 (["memcrm", servers, "greeting"], 0, None),
                 (["memccat", servers, "greeting"], 1, None)]   # gone: memccat fails
        for argv, want_code, want_out in steps:
            result = run(argv, timeout=T(5))
            if result.returncode != want_code or (want_out is not None and result.stdout.rstrip(b"\n") != want_out):
                raise CheckFailed(f"libmemcached's {argv[0]} went wrong",
                                  tried=" ".join(argv), expected=f"exit {want_code}" + (
                                      f" and {show_bytes(want_out)} printed" if want_out else ""),
                                  seen=f"{result.exit_description()}, printed "
                                       f"{show_bytes(result.stdout + result.stderr)}",
                                  hint=("the tool waited for an answer that never came: the server "
                                        "read its request and did not answer, or is stuck"
                                        if result.timed_out else
                                        "the tool printed what went wrong, above: it speaks the "
                                        "memcached protocol as memcached does"))
    return "libmemcached: memccp, memccat, memcrm, memccat of a deleted key: all as memcached"


# ---- bad clients (tools/programs/wdb_*.cc do the same, for trying by hand) --------------

class BadClient:
    what = ""

    def __init__(self, server):
        self.server = server
        self.sock = socket.create_connection(("127.0.0.1", server.port), timeout=T(5))
        self.start()

    def expect(self, request: bytes, reply: bytes, what: str):
        """Sends request; its answer must be exactly reply (else CheckFailed)."""
        self.sock.sendall(request)
        got = b""
        try:
            while len(got) < len(reply) and (chunk := self.sock.recv(4096)):
                got += chunk
        except OSError:
            pass                      # a timeout or a reset: `got` says what came
        if got != reply:
            raise CheckFailed(f"{what} was not answered", tried=show_bytes(request, 40),
                              expected=show_bytes(reply), seen=show_bytes(got))

    def served_once(self):
        """A first request answered: the server has accepted this client before the next."""
        self.expect(b"get warmup\r\n", b"END\r\n", "the bad client's first request")

    def describe(self) -> str:
        return self.what

    def close(self):
        self.sock.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class NeverClose(BadClient):
    what = "a client sent `get warmup`, read the answer, and then kept its connection open"

    def start(self):
        self.served_once()


class HalfRequest(BadClient):
    what = "a client sent `set half 0 0 10\\r\\nhell` (4 of 10 bytes) and stalled"

    def start(self):
        self.served_once()
        self.sock.sendall(b"set half 0 0 10\r\nhell")


class NeverRead(BadClient):
    what = "a client stored a 1 MiB value and sent `get big` 32 times, never reading a reply"

    def __init__(self, server, event_loop=False):
        self.server, self.event_loop = server, event_loop
        # A small receive buffer: the server's writes fill it (and its own send buffer) fast.
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        self.sock.settimeout(T(5))
        self.sock.connect(("127.0.0.1", server.port))
        self.start()

    def start(self):
        self.served_once()
        self.expect(b"set big 0 0 %d\r\n" % MAX_VALUE + b"b" * MAX_VALUE + b"\r\n", b"STORED\r\n",
                    "the 1 MiB set before the slow-reader test")
        self.sock.sendall(b"get big\r\n" * 32)
        if self.event_loop:   # its writes never block: wait for the replies to pile up
            wait_until_queued(self.server.port, self.sock.getsockname()[1], T(5))
        else:
            wait_until_writing(self.server.pid, T(5))


WRITE_CALLS = {"write", "sendto", "sendmsg", "writev"}


def wait_until_writing(pid: int, timeout: float):
    """Waits (bounded) until some thread of pid, or of a child (a prefork server's worker), is
    blocked in a write to a full socket. A server that never blocks is not failed here: the
    check that follows sees whether it still serves the others."""
    def writing(thread) -> bool:
        return thread.state == "S" and thread.syscall_name() in WRITE_CALLS

    def one_writing() -> bool:
        for process in [pid, *procfs.children(pid)]:
            try:
                if any(writing(t) for t in thread_states(process)):
                    return True
            except OSError:
                continue   # ended meanwhile
        return False
    wait_until(one_writing, timeout, "a thread blocked in write()", interval=0.02)


def wait_until_queued(server_port: int, client_port: int, timeout: float):
    """Waits (bounded) until the server's socket to this client holds unsent bytes:
    the client's receive buffer is full."""
    def queued():
        queues = procfs.tcp_queues(server_port, client_port)
        return queues and queues[0] > 0
    wait_until(queued, timeout, "reply bytes queued for the client", interval=0.02)


def wait_until_accepted(pid: int, timeout: float):
    """Waits (bounded) until a single-threaded server has accepted a client: it holds
    two sockets, its listener and that client's (or it is gone)."""
    wait_until(lambda: not procfs.alive(pid) or procfs.socket_fd_count(pid) >= 2, timeout,
               "the client accepted", interval=0.005)


def second_client_served(port: int) -> tuple[bool, str]:
    """A fresh client's set and get: (answered in time?, what it saw)."""
    try:
        with LineClient(port, timeout=T(2)) as client:
            client.send(b"set probe 0 0 2\r\nok\r\n")
            first = client.read_line("STORED")
            client.send(b"get probe\r\n")
            second = read_reply(client)
            return True, f"{show_bytes(first)}, then {show_bytes(second)}"
    except CheckFailed as failure:
        return False, failure.what


def line_within(sock: socket.socket, timeout: float) -> tuple[bool, str]:
    """A reply line on a connected socket whose request was sent: (came in time?, what came)."""
    deadline = Deadline(timeout)
    data = b""
    try:
        while b"\n" not in data and deadline.left() > 0:
            sock.settimeout(deadline.left())
            chunk = sock.recv(4096)
            if not chunk:
                return False, f"the server closed the connection after {show_bytes(data) or 'nothing'}"
            data += chunk
    except socket.timeout:
        pass
    except OSError as error:
        return False, f"{error.strerror or error}"
    if b"\n" in data:
        return True, show_bytes(data)
    return False, f"no answer in {timeout:.0f}s" + (f" (only {show_bytes(data)})" if data else "")


def answered_within(port: int, request: bytes, timeout: float) -> tuple[bool, str]:
    try:
        with LineClient(port, timeout=timeout) as client:
            client.send(request)
            return True, show_bytes(client.read_line())
    except CheckFailed as failure:
        return False, failure.what


# ---- workloads ----------------------------------------------------------------------

def concurrent_workload(port: int, clients: int, rounds: int, exch_pairs=()) -> list[str]:
    """`clients` connections at once, each doing set, get, delete, a get of 5 keys in 4
    buckets, and (for each pair in exch_pairs) exch, on a few shared keys: two of them in
    one bucket; beside them, one client sends the first pair's exch while another sets its
    two keys. Returns the wrong or missing answers seen (empty if none)."""
    k1, k2 = keys_in_same_bucket()
    keys = [k1, k2, "apple", "pear"]
    # A get of several keys, led by a key of the client's own (in a bucket no one else uses),
    # then the shared keys: its locks order it with nobody's but its own.
    taken = {bucket_of(k) for k in keys}
    own = []
    for i in range(1000):
        if len(own) == clients:
            break
        if bucket_of(f"own{i}") not in taken:
            own.append(f"own{i}")
            taken.add(bucket_of(f"own{i}"))
    exchanges = [f"exch {a} {b}\r\n".encode() for a, b in exch_pairs]
    kinds = 4 + len(exchanges)
    errors: list[str] = []

    def one_client(n):
        try:
            # (3 s: a request takes milliseconds even under TSan; a table whose list a race
            # has bent into a loop keeps a thread spinning, and the check waits no longer)
            with LineClient(port, timeout=T(3)) as client:
                for i in range(rounds):
                    key = keys[(n + i // kinds) % len(keys)]   # every op on every key
                    op = (n + i) % kinds
                    if op == 0:
                        client.send(f"set {key} 0 0 2\r\n{n:02d}\r\n".encode())
                        ok = read_reply(client) == b"STORED\r\n"
                    elif op == 1:
                        client.send(f"get {key}\r\n".encode())
                        ok = read_reply(client).endswith(b"END\r\n")
                    elif op == 2:
                        client.send(f"delete {key}\r\n".encode())
                        ok = read_reply(client) in (b"DELETED\r\n", b"NOT_FOUND\r\n")
                    elif op == 3:
                        client.send(f"get {own[n]} {k1} apple {k2} pear\r\n".encode())
                        ok = read_reply(client).endswith(b"END\r\n")
                    else:
                        client.send(exchanges[op - 4])
                        ok = read_reply(client) in (b"EXCHANGED\r\n", b"NOT_FOUND\r\n")
                    if not ok:
                        errors.append(f"client {n}: a wrong answer to {show_bytes(client.sent)}")
                        return
        except (CheckFailed, OSError) as error:
            errors.append(f"client {n}: {error}")

    def exch_beside_sets(n, a, b):
        """exch a b over and over, or sets of a and b: each exch then meets a set in both of
        its buckets, so a lock dropped too early (a guard inside an if) shows in TSan."""
        try:
            with LineClient(port, timeout=T(3)) as client:
                for i in range(rounds):
                    if n == 0:
                        client.send(f"exch {a} {b}\r\n".encode())
                        ok = read_reply(client) in (b"EXCHANGED\r\n", b"NOT_FOUND\r\n")
                    else:
                        client.send(f"set {(a, b)[i % 2]} 0 0 2\r\nxx\r\n".encode())
                        ok = read_reply(client) == b"STORED\r\n"
                    if not ok:
                        errors.append(f"client exch-{n}: a wrong answer to {show_bytes(client.sent)}")
                        return
        except (CheckFailed, OSError) as error:
            errors.append(f"client exch-{n}: {error}")

    threads = [threading.Thread(target=one_client, args=(n,), daemon=True) for n in range(clients)]
    threads += [threading.Thread(target=exch_beside_sets, args=(n, a, b), daemon=True)
                for a, b in exch_pairs[:1] for n in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(T(60))
    return errors


def workload_exch_pairs(exch: bool, self_deadlock: bool) -> list[tuple[str, str]]:
    """The exch requests the concurrent workload may send: two keys in two buckets, always in
    the same order (so a version that locks in the keys' order cannot deadlock here: that
    is the ABBA check's business), and two keys of one bucket, unless the version hangs on
    those on purpose (version 6)."""
    if not exch:
        return []
    return [keys_in_different_buckets()] + ([] if self_deadlock else [keys_in_same_bucket()])


@dataclass
class Stress:
    done: int = 0        # exch answered
    hung: bool = False   # a client waited `stall` seconds for an answer
    errors: list = field(default_factory=list)   # anything else that went wrong


def abba_stress(port: int, key1: str, key2: str, clients: int, rounds: int, stall: float) -> Stress:
    """Half the clients send `exch key1 key2`, half `exch key2 key1`, all at once."""
    with LineClient(port) as setup:
        for key in (key1, key2):
            setup.send(f"set {key} 0 0 1\r\n{key[0]}\r\n".encode())
            setup.read_line()
    result = Stress()
    lock = threading.Lock()
    start = threading.Barrier(clients)

    def one_client(n):
        request = (f"exch {key1} {key2}\r\n" if n % 2 == 0 else f"exch {key2} {key1}\r\n").encode()
        try:
            with LineClient(port, timeout=stall) as client:
                start.wait(timeout=T(10))
                for _ in range(rounds):
                    if result.hung:
                        return
                    client.send(request)
                    reply = client.read_line()
                    if reply != b"EXCHANGED\r\n":
                        result.errors.append(f"{show_bytes(request)} got {show_bytes(reply)}")
                        return
                    with lock:
                        result.done += 1
        except CheckFailed as failure:
            if "no complete line" in failure.what:   # waited `stall` seconds: stuck
                result.hung = True
            else:
                result.errors.append(failure.what)
        except (OSError, threading.BrokenBarrierError) as error:
            result.errors.append(str(error) or type(error).__name__)

    threads = [threading.Thread(target=one_client, args=(n,), daemon=True) for n in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(stall + T(60))
    return result
