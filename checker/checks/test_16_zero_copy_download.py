"""lesson 16 · zero-copy-download: buffer sizes, splice, sendfile, parallel ranges

The student's program: `fetch HOST PORT PATH OUT [--buffer SIZE] [--splice] [--parallel N]`
saves one object to OUT, by way of OUT.part renamed at the end. The server is the
course's own (tools/programs/course_httpd.cc: /bytes/N is N bytes of numbered text;
--sendfile, --rate MB/s, Range requests, and a log line per request with its Range);
for a body cut short and for a 416 the checker serves the object itself, from a small
Python server here that does exactly that. The expected bytes are made here, from the
text's definition, and compared by SHA-256 (the first difference is shown).
"""
import hashlib
import re
import signal
import socket
import threading
import time

from checker.harness import T, check, fail, note, procfs, sandbox, start_server, trace, wait_until
from checker.harness.report import first_difference
from checker.harness.strace import Syscall
from checker.harness.target import tool
from checker.harness.watch import run_watched

PROGRAM = "fetch"
LINE = 64
MiB = 1 << 20
ODD = 5_000_011          # a size that is a multiple of no buffer, nor of 3, 4 or 7 slices

_text_cache: dict = {}


def text(n: int) -> bytes:
    """The first n bytes of course-httpd's text: 64-byte numbered lines."""
    if n not in _text_cache:
        lines = b"".join(b"%08d the quick brown fox jumps over the lazy dog 0123456789\n" % (i + 1)
                         for i in range(n // LINE + 1))
        _text_cache[n] = lines[:n]
    return _text_cache[n]


def course_httpd(*args):
    return start_server(tool("course-httpd"), args=args)


class Place:
    """A directory the program may write to, and the final name OUT in it."""

    def __init__(self, tmp_path, name: str):
        self.dir = tmp_path / name
        self.dir.mkdir()
        sandbox.give(self.dir)
        self.out = self.dir / "object"
        self.partial = self.dir / "object.part"

    def files(self) -> list[str]:
        return sorted(p.name for p in self.dir.iterdir())


def argv(target, port, path, out, args=(), variant="plain") -> list:
    return [target.binary(PROGRAM, variant), "127.0.0.1", port, path, out, *args]


def tried(target, port, path, out, args=(), variant="plain") -> str:
    shown = [target.shown(target.binary(PROGRAM, variant)), "127.0.0.1", str(port), path, str(out), *args]
    return " ".join(map(str, shown))


def fetch(target, port, path, place, args=(), variant="plain", timeout=None):
    return run_watched(argv(target, port, path, place.out, args, variant), timeout=timeout or T(30))


def last_error(result) -> str:
    lines = [l for l in result.stderr.decode(errors="replace").splitlines() if l.strip()]
    return lines[-1].strip() if lines else ""


OVERFLOW_HINT = ("recv() was asked for more bytes than its buffer holds. Make the buffer options.buffer "
                 "bytes, and ask for at most buffer.size() (TODO 1)")
BAD_FD_HINT = ("a call was given a descriptor that is not open (EBADF): open_partial() must return "
               "OUT.part open for writing (TODO 3)")


def run_hint(result, args) -> str:
    """Why a download that should have worked did not, from how it ended."""
    said = last_error(result)
    if result.timed_out:
        return (f"it did not finish: when killed it was {result.activity or 'running'}. Does the loop "
                "stop once Content-Length bytes have arrived?")
    if result.returncode is not None and result.returncode < 0:
        return ("a crash: the AddressSanitizer check below names the line (is the buffer recv() "
                "fills as large as what you ask recv() for?)")
    if "Bad file descriptor" in said:
        return BAD_FD_HINT
    if "Bad address" in said:
        return "the kernel was told to write where the program has no memory (EFAULT): " + OVERFLOW_HINT
    if "splice" in said:
        return ("splice() failed: one end of every splice() must be a pipe. Socket -> pipe write "
                "end, then pipe read end -> file (TODO 2)")
    if "closed the connection" in said or "cut short" in said:
        # The servers of these checks send every byte: a count that falls short lost some.
        loop = "splice() loop (TODO 2)" if "--splice" in args else "recv() loop (TODO 1)"
        return ("the server sent the whole body, yet your program counted fewer bytes before the "
                "connection closed. Either body bytes that arrived with the header were lost (read_header() "
                "must take only the header: peek, then exactly the header's bytes), or the "
                f"{loop} does not add up every byte it moves")
    if "--parallel" in args:
        return "the check `ranges cover the object exactly once` below says which range (TODO 5)"
    return "read its message above: which call failed?"


def content_hint(got: bytes, want: bytes, args) -> str:
    if len(got) > len(want) and got.startswith(want):
        return ("the object is right, then more bytes follow: a file left by an earlier run was "
                "not emptied. Open OUT.part with O_TRUNC (TODO 3)")
    if len(got) < len(want) and want.startswith(got):
        return ("the file stops early, and the program said nothing: stop on Content-Length, and "
                "treat recv() returning 0 before it as an error (TODO 1)")
    at = first_difference(want, got)
    if at is not None and at < len(got) and got[at] == 0:
        return (f"a zero byte at {at}, where the object has none: a hole no range filled, or a pwrite at the wrong "
                "offset (TODO 5 slices, TODO 1 offset + received)")
    if "--splice" in args and "--parallel" in args:
        return ("the bytes differ, with --splice only: do the threads share one pipe? A pipe keeps bytes "
                "in order, not per socket, so each thread needs its own, made in splice_body() (TODO 2)")
    if "--splice" in args:
        return ("the bytes differ: did the body bytes that came with the header get lost? Take only "
                "the header off the socket, and let splice() move the whole body (TODO 2)")
    return ("the bytes differ: write exactly the n bytes recv() returned, at offset + received "
            "(TODO 1)")


def expect_saved(target, place, port, path, want: bytes, args=(), variant="plain", result=None,
                 old: bytes | None = None):
    """The program must exit 0 having left exactly `want` under the final name (where the file
    `old` was before, if given)."""
    if result is None:
        result = fetch(target, port, path, place, args, variant)
    how = tried(target, port, path, place.out, args, variant)
    if result.returncode != 0:
        fail(f"the download failed: {result.exit_description()}", tried=how,
             expected=f"exit status 0 and {len(want)} bytes in {place.out.name}",
             seen=f"files in its directory: {place.files() or 'none'}",
             details=result.stderr_lines(), hint=run_hint(result, args))
    if not place.out.exists():
        fail("exit status 0, but no file under the final name", tried=how,
             expected=f"{place.out.name} with {len(want)} bytes",
             seen=f"files in its directory: {place.files() or 'none'}",
             hint="once every byte is in OUT.part, rename() it to OUT (TODO 4)" if place.files() else
                  "it wrote no file at all: open OUT.part (TODO 3), receive the body into it (TODO 1), "
                  "then rename() it to OUT (TODO 4)")
    got = place.out.read_bytes()
    if hashlib.sha256(got).digest() != hashlib.sha256(want).digest():
        at = first_difference(want, got)
        fail("the file is not the object, byte for byte (SHA-256 differs)", tried=how,
             expected=f"{len(want)} bytes, SHA-256 {hashlib.sha256(want).hexdigest()[:16]}…",
             seen=f"{len(got)} bytes, SHA-256 {hashlib.sha256(got).hexdigest()[:16]}…, "
                  f"different from byte {at} on",
             details=[f"expected at {at}: {want[at:at + 24]!r}", f"got at {at}:      {got[at:at + 24]!r}"]
             if at is not None else [],
             hint=content_hint(got, want, args) if got != old else
                  "OUT is still the old file, untouched: the new object must replace it, by rename() of "
                  "OUT.part over it (TODO 3, TODO 4)")
    leftover = [f for f in place.files() if f != place.out.name]
    if leftover:
        fail("the download worked but left other files behind", tried=how,
             expected=f"only {place.out.name} in the directory", seen=", ".join(leftover),
             hint="OUT.part must become OUT (rename), not be copied to it (TODO 4)")


def expect_clean_failure(target, place, result, how, why: str, must_say: str | None = None):
    """A download that must fail: exit status not 0, in time, and no file under the final name;
    its message names the cause (must_say) if given."""
    if result.timed_out:
        fail(f"{why}, and your program did not end", tried=how,
             expected="an exit status other than 0, promptly",
             seen=f"{result.exit_description()}; it was {result.activity or 'running'}",
             details=result.stderr_lines(),
             hint="recv() returning 0 (or splice() returning 0) is the end: stop there, with an error "
                  "if the body is not complete (TODO 1, TODO 2)")
    if result.returncode == 0:
        have = f"{place.out.stat().st_size} bytes" if place.out.exists() else "no file"
        fail(f"{why}, yet your program exited with status 0", tried=how,
             expected="an exit status other than 0, and no file under the final name",
             seen=f"exit status 0; {place.out.name}: {have}", details=result.stderr_lines(),
             hint=("a reply that is not the object (its status is not 200, or 206 for a range) is an "
                   "error" if must_say else
                   "it wrote nothing, and said it succeeded: open OUT.part (TODO 3) and receive the body "
                   "into it (TODO 1); a download that did not happen must end with an error"
                   if not place.files() else
                   "recv() returned 0 before Content-Length bytes: the body was cut short, which is "
                   "an error, not the end (TODO 1)"))
    if place.out.exists():
        fail(f"{why}: your program exited {result.returncode}, but left a half file under the final name",
             tried=how, expected=f"no {place.out.name} (a failed download leaves nothing under OUT)",
             seen=f"{place.out.name}: {place.out.stat().st_size} bytes",
             details=result.stderr_lines(),
             hint="write to OUT.part and rename() it to OUT only when every byte is there; on failure "
                  "remove OUT.part (TODO 3, TODO 4)")
    said = result.stderr.decode(errors="replace")
    if not said.strip():
        fail(f"{why}: your program exited {result.returncode} without a word", tried=how,
             expected="an error message on stderr that says what went wrong", seen="nothing on stderr",
             hint="print what went wrong (fail_download) before exiting")
    if must_say and must_say not in said:
        fail(f"{why}: the error message does not say {must_say}", tried=how,
             expected=f"a message with the server's status ({must_say})",
             seen=last_error(result), details=result.stderr_lines(),
             hint=BAD_FD_HINT if "Bad file descriptor" in said else
                  f"say what the server answered: its status line, {must_say} and all (expect_status)")
    if place.partial.exists():
        note(f"(it left {place.partial.name} behind: harmless, but remove_partial() would tidy it)")


# ---- a check-side server: cut bodies and 416 ---------------------------------------------

class Misbehaving:
    """A tiny HTTP/1.0 server for one object of `size` bytes of the text. mode "short": every
    body (whole or range) stops at 60 % and the connection closes; mode "416": HEAD gives
    the size, and every range gets 416 (as if the object had shrunk in between); mode
    "together": all is well, but the header and the body leave in one send(), so the
    header's first recv() finds body bytes behind it (course-httpd writes them apart);
    mode "pieces": the header leaves in PIECES parts, 50 ms apart, the blank line that ends
    it cut in two; mode "at once": no range is answered until `ranges` range requests are
    waiting for their answer (or HOLD seconds have passed: then none is held any more), and
    most_at_once says how many ever waited together."""

    PIECES = 4
    HOLD = 5

    def __init__(self, size: int, mode: str, ranges: int = 0):
        self.size, self.mode, self.ranges = size, mode, ranges
        self.waiting = threading.Condition()
        self.open_ranges = 0           # range requests received and not yet answered
        self.most_at_once = 0
        self.held_in_vain = False      # HOLD seconds passed before `ranges` were waiting together
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.listener.settimeout(0.2)
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stopped.set()
        self.thread.join(timeout=T(5))
        self.listener.close()

    def _serve(self):
        while not self.stopped.is_set():
            try:
                conn, _ = self.listener.accept()
            except socket.timeout:
                continue
            threading.Thread(target=self._one, args=(conn,), daemon=True).start()

    def _one(self, conn):
        with conn:
            conn.settimeout(T(10))
            request = b""
            try:
                while b"\r\n\r\n" not in request:
                    chunk = conn.recv(4096)
                    if not chunk:
                        return
                    request += chunk
                method = request.split(b" ", 1)[0]
                m = re.search(rb"\r\nrange:\s*bytes=(\d+)-(\d+)\r\n", request, re.I)
                size = self.size
                if m and self.mode == "416":
                    conn.sendall(b"HTTP/1.0 416 Range Not Satisfiable\r\nContent-Range: bytes */%d\r\n"
                                 b"Content-Length: 0\r\n\r\n" % (size // 2))
                    return
                first, last = (int(m.group(1)), int(m.group(2))) if m else (0, size - 1)
                status = b"206 Partial Content" if m else b"200 OK"
                head = (b"HTTP/1.0 %s\r\nContent-Length: %d\r\n" % (status, last + 1 - first) +
                        (b"Content-Range: bytes %d-%d/%d\r\n" % (first, last, size) if m else b"") + b"\r\n")
                if method == b"HEAD":
                    conn.sendall(head)
                    return
                body = text(size)[first:last + 1]
                if self.mode == "pieces":
                    self._send_in_pieces(conn, head + body, len(head))
                    return
                if m and self.mode == "at once":
                    self._hold_until_all_ranges_wait()
                try:
                    conn.sendall(head + (body[:len(body) * 6 // 10] if self.mode == "short" else body))
                finally:
                    if m and self.mode == "at once":
                        with self.waiting:
                            self.open_ranges -= 1
            except OSError:
                pass

    def _hold_until_all_ranges_wait(self):
        with self.waiting:
            self.open_ranges += 1
            self.most_at_once = max(self.most_at_once, self.open_ranges)
            self.waiting.notify_all()
            if not self.waiting.wait_for(lambda: self.held_in_vain or self.most_at_once >= self.ranges,
                                         timeout=T(self.HOLD)):
                self.held_in_vain = True
                self.waiting.notify_all()

    def _send_in_pieces(self, conn, reply: bytes, header_length: int):
        """The header in PIECES parts, 50 ms apart: "HTTP/", up to the middle of the header, up
        to the last header line's CRLF, then the blank line's CRLF with the body behind it."""
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        cuts = [0, 5, header_length // 2, header_length - 2, len(reply)]
        for a, b in zip(cuts, cuts[1:]):
            conn.sendall(reply[a:b])
            if b < len(reply):
                time.sleep(0.05)


# ---- the checks ---------------------------------------------------------------------------

@check("builds (plain, and with AddressSanitizer + UBSan)")
def test_build(target):
    target.build()


@check("saves the object byte for byte with a 4 KiB, 64 KiB and 1 MiB buffer, from a read+write "
       "and a sendfile() server", needs=["build"])
def test_copy_identical(target, tmp_path):
    for server_args in ((), ("--sendfile",)):
        with course_httpd(*server_args) as httpd:
            for args in ((), ("--buffer", "4096"), ("--buffer", "64K"), ("--buffer", "1M")):
                place = Place(tmp_path, f"copy{len(server_args)}{args[-1] if args else ''}")
                expect_saved(target, place, httpd.port, f"/bytes/{ODD}", text(ODD), args)
    note(f"{ODD} bytes (a multiple of no buffer size), SHA-256 identical, 8 ways")


@check("--splice saves the object byte for byte (read+write and sendfile() server; header and "
       "body in one send(); a header that arrives in pieces)", needs=["build"])
def test_splice_identical(target, tmp_path):
    for server_args in ((), ("--sendfile",)):
        with course_httpd(*server_args) as httpd:
            place = Place(tmp_path, f"splice{len(server_args)}")
            expect_saved(target, place, httpd.port, f"/bytes/{ODD}", text(ODD), ["--splice"])
    with Misbehaving(ODD, "together") as server:
        for args in ([], ["--splice"]):
            place = Place(tmp_path, "together" + "".join(args).replace("-", ""))
            expect_saved(target, place, server.port, "/object", text(ODD), args)
    size = 100_000
    with Misbehaving(size, "pieces") as server:
        for args in ([], ["--splice"]):
            place = Place(tmp_path, "pieces" + "".join(args).replace("-", ""))
            result = fetch(target, server.port, "/object", place, args)
            if not result.timed_out and result.returncode is not None and result.returncode > 0:
                fail(f"a reply whose header arrived in pieces: the download failed ({result.exit_description()})",
                     tried=tried(target, server.port, "/object", place.out, args) +
                     f" (the checker's server: the header in {Misbehaving.PIECES} pieces, 50 ms apart, the "
                     "blank line that ends it cut in two: \\r\\n | \\r\\n)",
                     expected=f"exit status 0 and {size} bytes in {place.out.name}",
                     seen=last_error(result) or "nothing on stderr", details=result.stderr_lines(),
                     hint="one recv() (or one MSG_PEEK) returns what has arrived so far, which may be part "
                          "of the header: keep reading until the blank line has arrived, and look for "
                          "\\r\\n\\r\\n in everything read so far, not in the last piece alone (read_header)")
            expect_saved(target, place, server.port, "/object", text(size), args, result=result)
    note("also from a server that sends the header and the body in one send(): body bytes "
         "wait behind the header; and from one that sends the header in pieces")


@check("--parallel N saves the object byte for byte (N = 2, 3, 4, 7; and with --splice)", needs=["build"])
def test_parallel_identical(target, tmp_path):
    with course_httpd() as httpd:
        for args in (["--parallel", "2"], ["--parallel", "3"], ["--parallel", "4"], ["--parallel", "7"],
                     ["--parallel", "3", "--splice"]):
            place = Place(tmp_path, "parallel" + "".join(args[1:]).replace("-", ""))
            expect_saved(target, place, httpd.port, f"/bytes/{ODD}", text(ODD), args)


@check("tiny objects: 0, 1 and 2 bytes, every way (--parallel 4: more connections than bytes)",
       needs=["build"])
def test_tiny_objects(target, tmp_path):
    with course_httpd() as httpd:
        for n in (0, 1, 2):
            for args in ([], ["--buffer", "4096"], ["--splice"], ["--parallel", "4"]):
                place = Place(tmp_path, f"tiny{n}" + "".join(args).replace("-", ""))
                expect_saved(target, place, httpd.port, f"/bytes/{n}", text(n), args)


@check("a stale OUT.part and an old OUT, both longer, are replaced exactly", needs=["build"])
def test_stale_files(target, tmp_path):
    n = 1_000_003
    with course_httpd() as httpd:
        for args in ([], ["--splice"]):
            place = Place(tmp_path, "stale" + "".join(args).replace("-", ""))
            place.partial.write_bytes(b"X" * (3 * n))   # left by an earlier run that was killed
            old = b"old version\n" * n
            place.out.write_bytes(old)
            for path in (place.partial, place.out):
                sandbox.give(path)
            expect_saved(target, place, httpd.port, f"/bytes/{n}", text(n), args, old=old)


RECV_CALLS = ["recvfrom", "recv", "recvmsg", "read", "readv"]
ASKED = re.compile(r'^\d+, "(?:[^"\\]|\\.)*"(?:\.\.\.)?, (\d+)')


def after_connect(t):
    """The calls after the first connect(): the program's own work on the socket."""
    names = t.names()
    return t.calls[names.index("connect") + 1:] if "connect" in names else t.calls


def traced_fetch(target, place, port, n, args, extra=()):
    t = trace(argv(target, port, f"/bytes/{n}", place.out, args), ["connect", *RECV_CALLS, *extra],
              timeout=T(60))
    t.run.activity = None
    expect_saved(target, place, port, f"/bytes/{n}", text(n), args, result=t.run)
    return t


@check("strace: recv calls per MiB fall from 4 KiB to 64 KiB to 1 MiB buffers, each asking for "
       "the buffer's size", needs=["build"])
def test_syscalls_per_mib(target, tmp_path):
    n = 16 * MiB
    per_mib, rows = {}, []
    with course_httpd("--sendfile") as httpd:   # a sender fast enough to fill big buffers
        for size in (4096, 64 * 1024, MiB):
            place = Place(tmp_path, f"count{size}")
            args = ["--buffer", str(size)]
            t = traced_fetch(target, place, httpd.port, n, args)
            body = [c for c in after_connect(t) if c.name in RECV_CALLS and "MSG_PEEK" not in c.args
                    and (c.result or 0) > 0]
            asked = [int(m.group(1)) for c in body if (m := ASKED.match(c.args))]
            per_mib[size] = len(body) / (n / MiB)
            rows.append(f"--buffer {size:>7}: {len(body):5} recv/read calls, {per_mib[size]:7.1f} per MiB, "
                        f"largest asked {max(asked, default=0)}")
            how = f"strace -f -e trace={','.join(RECV_CALLS)} {tried(target, httpd.port, f'/bytes/{n}', place.out, args)}"
            if asked and max(asked) > size:
                fail(f"with --buffer {size}, recv() was asked for up to {max(asked)} bytes", tried=how,
                     expected=f"each call asks for at most {size} bytes", seen="\n".join(rows),
                     hint="ask recv() for the buffer's size (or what is left of the body), no more (TODO 1)")
            if size > 4096 and asked and max(asked) < size:
                fail(f"with --buffer {size}, recv() was never asked for more than {max(asked)} bytes",
                     tried=how, expected=f"calls that ask for {size} bytes", seen="\n".join(rows),
                     hint="the buffer must have the size --buffer says (options.buffer), not a fixed one (TODO 1)")
    falls = per_mib[4096] >= 200 and per_mib[64 * 1024] <= per_mib[4096] / 4 and \
        per_mib[MiB] <= per_mib[64 * 1024] / 2
    if not falls:
        fail("the number of recv calls per MiB does not fall as the buffer grows", tried="strace, as above",
             expected="4 KiB: at least 256 per MiB; 64 KiB: at most a quarter of that; 1 MiB: at most half "
                      "of 64 KiB's", seen="\n".join(rows),
             hint="one recv() per bufferful: a recv into a bigger buffer takes more of what is waiting (TODO 1)")
    for row in rows:
        note(row)


@check("strace: --splice moves the body with splice(), no recv/read of it into the program's memory",
       needs=["build"])
def test_splice_no_copy(target, tmp_path):
    n = 16 * MiB
    with course_httpd("--sendfile") as httpd:
        place = Place(tmp_path, "nocopy")
        t = traced_fetch(target, place, httpd.port, n, ["--splice"], extra=["splice"])
    calls = after_connect(t)
    taken = sum(c.result or 0 for c in calls if c.name in RECV_CALLS and (c.result or 0) > 0
                and "MSG_PEEK" not in c.args)
    peeked = sum(c.result or 0 for c in calls if c.name in RECV_CALLS and "MSG_PEEK" in c.args
                 and (c.result or 0) > 0)
    spliced = sum(c.result or 0 for c in calls if c.name == "splice" and (c.result or 0) > 0)
    recvs = [c for c in calls if c.name in RECV_CALLS]
    seen = (f"recv/read calls after connect(): {len(recvs)}, which took {taken} bytes (and peeked at "
            f"{peeked}); splice() calls: {t.count('splice')}, which moved {spliced} bytes in both hops")
    how = f"strace -f {tried(target, httpd.port, f'/bytes/{n}', place.out, ['--splice'])}"
    if taken + peeked > 16 * 1024:
        fail(f"--splice still copied {taken + peeked} bytes into the program with recv/read", tried=how,
             expected=f"recv/read take the header only (about 120 bytes); splice moves the {n} bytes of the body",
             seen=seen, details=[str(c) for c in recvs[:6]],
             hint=("take only the header with recv (peek to find its end, then take exactly that much); "
                   "every byte after it goes socket -> pipe -> file with splice() (TODO 2)"))
    if spliced < 2 * n:
        fail("--splice did not move the body with splice()", tried=how,
             expected=f"splice() calls moving {n} bytes socket -> pipe and {n} pipe -> file",
             seen=seen, hint="with --splice, receive_body must call splice_body (TODO 2)")
    note(seen)


RANGE_LOG = re.compile(r"^GET (\S+) \[bytes=(\d+)-(\d*)\] -> (\d+)", re.M)


def coverage_problems(ranges, size) -> list[str]:
    """What is wrong with these (first, last) ranges as a cover of [0, size): gaps, overlaps,
    ranges past the end. [] if they cover every byte exactly once."""
    problems, expect = [], 0
    for first, last in sorted(ranges):
        if last >= size:
            problems.append(f"bytes={first}-{last} reaches past the last byte, {size - 1}")
        if first > expect:
            problems.append(f"bytes {expect}-{first - 1} never requested (a gap)")
        elif first < expect:
            problems.append(f"bytes {first}-{min(last, expect - 1)} requested twice (an overlap)")
        expect = max(expect, last + 1)
    if expect < size:
        problems.append(f"bytes {expect}-{size - 1} never requested (the end is missing)")
    return problems


@check("--parallel N: the Range headers the server received cover the object exactly once "
       "(no gap, no overlap, the last range short)", needs=["build"])
def test_ranges_once(target, tmp_path):
    for size, n in ((ODD, 4), (ODD, 7), (1000, 3), (10, 4), (2, 4)):
        with course_httpd() as httpd:
            place = Place(tmp_path, f"ranges{size}x{n}")
            args = ["--parallel", str(n)]
            result = fetch(target, httpd.port, f"/bytes/{size}", place, args)
            # course-httpd logs a request once its body is sent, then closes the socket: the
            # client can finish first, so wait for the server's last connection to close
            wait_until(lambda: procfs.socket_fd_count(httpd.pid) <= 1, T(10), "course-httpd to log every request")
            httpd.stop()
            log = httpd.stderr().decode(errors="replace")
        ranges = [(int(a), int(b) if b else size - 1) for _, a, b, _ in RANGE_LOG.findall(log)]
        shown = [f"[server] {l}" for l in log.splitlines() if l.startswith(("GET", "HEAD"))][:12]
        how = tried(target, httpd.port, f"/bytes/{size}", place.out, args)
        problems = coverage_problems(ranges, size)
        if problems:
            fail(f"the ranges of --parallel {n} over {size} bytes do not cover it exactly once", tried=how,
                 expected=f"{min(n, size)} ranges that together request bytes 0-{size - 1}, each once",
                 seen="; ".join(problems[:4]), details=shown,
                 hint=("slice = ceil(size / N); range i is bytes=first-last with first = i * slice and "
                       "last = min(first + slice, size) - 1: both ends are included (TODO 5)"))
        if len(ranges) != min(n, size):
            fail(f"--parallel {n} over {size} bytes made {len(ranges)} range requests", tried=how,
                 expected=f"{min(n, size)} (N, or one per byte when there are fewer bytes than N)",
                 seen=f"{len(ranges)} ranges", details=shown,
                 hint="one range per connection, N of them, none empty (TODO 5)")
        expect_saved(target, place, httpd.port, f"/bytes/{size}", text(size), args, result=result)
    note(f"e.g. --parallel 7 over {ODD} bytes: slices of {-(-ODD // 7)} bytes, the last "
         f"{ODD - 6 * -(-ODD // 7)}")


PIPE_ENDS = re.compile(r"^\[(\d+), (\d+)\]")


def shared_pipes(calls: list[Syscall]) -> list[str]:
    """The pipes (made by pipe()/pipe2()) that more than one thread spliced through, as
    "pipe [r, w]: threads A, B"; [] if every pipe served one thread."""
    pipe_of, ends, users = {}, {}, {}     # fd -> pipe number; pipe -> its fds; pipe -> tids
    for c in calls:
        if c.name in ("pipe", "pipe2") and c.result == 0 and (m := PIPE_ENDS.match(c.args)):
            number = len(ends)
            ends[number] = [int(m.group(1)), int(m.group(2))]
            for fd in ends[number]:
                pipe_of[fd] = number
        elif c.name == "close" and c.result == 0 and c.args.strip().isdigit():
            pipe_of.pop(int(c.args), None)   # its number may come back, as another pipe or a socket
        elif c.name == "splice":
            parts = c.args.split(", ")
            for fd in (parts[0], parts[2] if len(parts) > 2 else ""):
                if fd.isdigit() and int(fd) in pipe_of:
                    users.setdefault(pipe_of[int(fd)], set()).add(c.pid)
    return [f"pipe {ends[p]}: threads {', '.join(map(str, sorted(tids)))}"
            for p, tids in sorted(users.items()) if len(tids) > 1]


@check("--parallel N: the N ranges are asked for at once, each on its own connection (and with "
       "--splice, each thread splices through a pipe of its own)", needs=["build"])
def test_parallel_at_once(target, tmp_path):
    size, n = 1_000_000, 4
    args = ["--parallel", str(n)]
    with Misbehaving(size, "at once", ranges=n) as server:
        place = Place(tmp_path, "atonce")
        result = fetch(target, server.port, "/object", place, args, timeout=T(60))
        most = server.most_at_once
        how = (tried(target, server.port, "/object", place.out, args) +
               f" (the checker's server: HEAD says {size} bytes; it answers no range until {n} range "
               f"requests are waiting, or {Misbehaving.HOLD} s have passed)")
    if most == 0:
        expect_saved(target, place, server.port, "/object", text(size), args, result=result)
        fail(f"--parallel {n} saved the object without one Range request", tried=how,
             expected=f"{n} GET requests with `Range: bytes=A-B`, at once", seen="no Range header reached the server",
             hint="after the HEAD, each slice is its own GET with a Range header: fetch_range() (TODO 5)")
    if most < n:
        fail(f"--parallel {n} never had its {n} ranges open at once: at most {most}", tried=how,
             expected=f"{n} connections, each with its Range request sent, at the same time",
             seen=("each range was asked for only after the one before it had been answered" if most == 1 else
                   f"at most {most} range requests waiting for their answer at the same time") +
                  f"; the server held the answers {Misbehaving.HOLD} s in vain, then gave in",
             details=result.stderr_lines(),
             hint="start a thread for every slice first, and only then join() them all: a join() inside the "
                  "loop that starts them waits for each slice before the next one is asked for, and N "
                  "connections take as long as one (TODO 5)")
    expect_saved(target, place, server.port, "/object", text(size), args, result=result)

    # --splice: one pipe per thread. A pipe holds bytes in order, not per socket: threads that
    # share one take each other's bytes whenever their splices interleave.
    args = ["--parallel", "3", "--splice"]
    with course_httpd() as httpd:
        place = Place(tmp_path, "pipes")
        t = trace(argv(target, httpd.port, f"/bytes/{ODD}", place.out, args),
                  ["pipe", "pipe2", "splice", "close"], timeout=T(60))
        t.run.activity = None
        how = f"strace -f -e trace=pipe,pipe2,splice,close {tried(target, httpd.port, f'/bytes/{ODD}', place.out, args)}"
        shared = shared_pipes(t.calls)
        if shared:
            got = place.out.read_bytes() if place.out.exists() else None
            at = first_difference(text(ODD), got) if got is not None else None
            fail("with --parallel and --splice, threads spliced through the same pipe", tried=how,
                 expected="each thread's splice() calls go through a pipe that thread alone uses",
                 seen="; ".join(shared[:3]) + (f"; the file differs from the object from byte {at} on"
                                               if at is not None else ""),
                 details=[f"[{c.pid}] {c}" for c in t.calls if c.name != "close"][:10],
                 hint="a pipe keeps bytes in order, not per socket: when two threads' splices interleave, "
                      "one takes the other's bytes and writes them at its own offset" +
                      (" (this time it happened)" if at is not None else ", so a file that comes out "
                       "right is luck") + ". Make the pipe inside splice_body() (a local, not static), "
                      "and close it at the end (TODO 2)")
        expect_saved(target, place, httpd.port, f"/bytes/{ODD}", text(ODD), args, result=t.run)
    note(f"{n} ranges waiting for their answer at once; with --splice, a pipe per thread")


def started_writing(place) -> bool:
    return any(p.stat().st_size > 0 for p in place.dir.iterdir())


@check("a server that dies mid-transfer: exit status not 0, and no file under the final name",
       needs=["build"])
def test_server_dies(target, tmp_path):
    size = 20_000_000
    for args in ([], ["--splice"], ["--parallel", "3"]):
        place = Place(tmp_path, "dies" + "".join(args).replace("-", ""))
        with course_httpd("--rate", "2") as httpd:   # 2 MB/s: 10 s for the whole, so it dies early
            how = tried(target, httpd.port, f"/bytes/{size}", place.out, args) + \
                "; the server killed (SIGKILL) once the download has begun"
            done = {}
            worker = threading.Thread(target=lambda: done.setdefault(
                "result", fetch(target, httpd.port, f"/bytes/{size}", place, args, timeout=T(20))))
            worker.start()
            # (if it wrote nothing within the time, the server is killed all the same)
            wait_until(lambda: started_writing(place) or not worker.is_alive(), T(10),
                       "the download to begin writing")
            httpd.stop(signal.SIGKILL)
            worker.join(T(30))
        expect_clean_failure(target, place, done["result"], how, "the server died mid-transfer")


@check("a short body (the server closes before Content-Length bytes): exit status not 0, no file "
       "under the final name", needs=["build"])
def test_short_body(target, tmp_path):
    size = 1_000_000
    with Misbehaving(size, "short") as server:
        for args in ([], ["--buffer", "4096"], ["--splice"], ["--parallel", "3"]):
            place = Place(tmp_path, "short" + "".join(args).replace("-", ""))
            result = fetch(target, server.port, "/object", place, args)
            how = tried(target, server.port, "/object", place.out, args) + \
                f" (the checker's server: Content-Length {size}, then 60 % of the body and a close)"
            expect_clean_failure(target, place, result, how, "the body was cut short")


@check("404: a clear error (the status in the message), exit status not 0, no file", needs=["build"])
def test_not_found(target, tmp_path):
    with course_httpd() as httpd:
        for args in ([], ["--parallel", "2"]):
            place = Place(tmp_path, "missing" + "".join(args).replace("-", ""))
            result = fetch(target, httpd.port, "/no/such/object", place, args)
            how = tried(target, httpd.port, "/no/such/object", place.out, args)
            expect_clean_failure(target, place, result, how, "the server answered 404 Not Found", "404")


@check("416 to a range (the object shrank after HEAD): a clear error, exit status not 0, no file",
       needs=["build"])
def test_range_not_satisfiable(target, tmp_path):
    with Misbehaving(1_000_000, "416") as server:
        place = Place(tmp_path, "shrank")
        args = ["--parallel", "4"]
        result = fetch(target, server.port, "/object", place, args)
        how = (tried(target, server.port, "/object", place.out, args) +
               " (the checker's server: HEAD says 1000000 bytes, every range gets 416)")
        expect_clean_failure(target, place, result, how, "the server answered 416 Range Not Satisfiable",
                             "416")


def sanitizer_hint(stderr: str) -> str:
    if "heap-buffer-overflow" in stderr or "stack-buffer-overflow" in stderr:
        return "recv() wrote past the end of its buffer: " + OVERFLOW_HINT
    return "the first report above names the line (its `#0` or `#1` frame in fetch.cc)"


@check("no report from AddressSanitizer or UBSan (1 MiB and 4 KiB buffers, --splice, --parallel 4)",
       needs=["build"])
def test_asan_clean(target, tmp_path):
    n = 3_000_017
    with course_httpd() as httpd:
        for args in (["--buffer", "1M"], ["--buffer", "4096"], ["--splice"], ["--parallel", "4"]):
            place = Place(tmp_path, "asan" + "".join(args).replace("-", ""))
            result = fetch(target, httpd.port, f"/bytes/{n}", place, args, variant="asan", timeout=T(60))
            stderr = result.stderr.decode(errors="replace")
            if "Sanitizer" in stderr or "runtime error" in stderr:
                report = [l for l in stderr.splitlines() if "ERROR" in l or "runtime error" in l or " #" in l]
                fail(f"the sanitizers stopped your program ({' '.join(args)})",
                     tried=tried(target, httpd.port, f"/bytes/{n}", place.out, args, "asan"),
                     expected="no report from AddressSanitizer or UBSan, exit status 0",
                     seen=result.exit_description(),
                     details=[f"[your program] {l}" for l in report[:8]], hint=sanitizer_hint(stderr))
            if "Bad address" in stderr:   # the kernel found no memory where the buffer was said to go on
                fail(f"recv() failed with EFAULT, Bad address ({' '.join(args)})",
                     tried=tried(target, httpd.port, f"/bytes/{n}", place.out, args, "asan"),
                     expected="no memory error, exit status 0", seen=result.exit_description(),
                     details=result.stderr_lines(), hint=OVERFLOW_HINT)
            expect_saved(target, place, httpd.port, f"/bytes/{n}", text(n), args, "asan", result=result)
