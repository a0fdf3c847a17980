"""lesson 01 · raw-client: an HTTP client from socket, connect, send and recv

The student's program: `http_get HOST PORT [PATH]` prints the server's whole
reply, byte for byte. The server is the course's own (tools/programs/course_httpd.cc),
started here on a free port; the expected bytes are what it sends to the
checker's own careful client.
"""
import signal

import pytest

from checker.harness import (HeldBack, T, check, closed_port, expect_bytes, fail, note, run,
                             show_bytes, start_server, trace)
from checker.harness.client import LineClient
from checker.harness.faults import faults_env, read_faults
from checker.harness.resolver import HostsFile
from checker.harness.target import tool

PROGRAM = "http_get"
HINT_CRASH = ("a crash in a client this small is usually memory: does recv() write past the end "
              "of its buffer? Ask for at most sizeof(buffer) bytes (TODO 3)")
HINT_LOOP = ("one recv() returns what has arrived so far, not the whole reply: "
             "call it until it returns 0 (TODO 3)")


HINT_NO_EXIT = ("it printed the whole reply but did not exit: does your loop stop when recv() "
                "returns 0 (the server closed the connection)? (TODO 3)")

# A program that never exits fails every check that waits for it to end, each after its
# own timeout. The first such check names the cause; the others are held back behind it.
hung: dict = {}        # {"title": the check in which the program first had to be killed}
current: dict = {}     # {"title": the check running now}


@pytest.fixture(autouse=True)
def _remember_the_check(request):
    current["title"] = request.node.function._nc_check["title"]


def hold_back_if_hung():
    if hung:
        raise HeldBack(hung["title"])


def ran(result):
    """Notes a run that had to be killed; returns the result."""
    if result.timed_out and not hung:
        hung["title"] = current.get("title", "an earlier check")
    return result


@pytest.fixture(scope="module")
def httpd():
    with start_server(tool("course-httpd")) as server:
        yield server


def reference_reply(port: int, path: str, host: str = "127.0.0.1") -> bytes:
    """The reply as the checker's own client receives it: everything until EOF."""
    with LineClient(port, host, timeout=T(20)) as client:
        client.send(f"GET {path} HTTP/1.0\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode())
        data, closed = client.read_until_eof()
    if not closed:
        raise RuntimeError(f"course-httpd did not finish {path}")
    return data


def fetch(target, host, port, path, variant="plain", timeout=None, hold=True):
    """Runs the program to fetch path; held back (hold) if it never ended in an earlier check."""
    if hold:
        hold_back_if_hung()
    return ran(run([target.binary(PROGRAM, variant), host, port, path], timeout=timeout or T(10)))


def tried(result, target) -> str:
    return " ".join([target.shown(result.argv[0]), *map(str, result.argv[1:])])


def expect_reply(target, result, want: bytes, hint: str):
    """The program must exit 0 having printed exactly `want`."""
    details = result.stderr_lines()
    if result.returncode in (-signal.SIGSEGV, -signal.SIGBUS, -signal.SIGABRT):
        # A memory error: the AddressSanitizer build shows where. (It cannot show a SIGPIPE.)
        asan = target.shown(target.binary(PROGRAM, "asan"))
        path = result.argv[-1]
        details.append(f"to see where: start build/tools/course-httpd -p 0, then run {asan} 127.0.0.1 PORT {path}")
        hint = HINT_CRASH
    if result.timed_out and want.startswith(result.stdout) and result.stdout:
        hint = HINT_NO_EXIT if result.stdout == want else hint
        fail(f"your program did not exit: {result.exit_description()}", tried=tried(result, target),
             expected="exit status 0 and the whole reply on stdout",
             seen=f"{len(result.stdout)} of {len(want)} bytes on stdout, then nothing more, "
                  "and the program still running", details=details, hint=hint)
    if result.timed_out or result.returncode != 0:
        fail(f"your program ended: {result.exit_description()}", tried=tried(result, target),
             expected="exit status 0 and the whole reply on stdout",
             seen=f"{len(result.stdout)} bytes on stdout: {show_bytes(result.stdout, 40)}",
             details=details, hint=hint)
    expect_bytes(result.stdout, want, what="the reply on stdout is not the server's reply, byte for byte",
                 tried=tried(result, target), hint=hint, details=details)


@check("builds (plain, and with AddressSanitizer + UBSan)")
def test_build(target):
    target.build()   # http_get, plain and asan: the programs and variants in course.toml


@check("prints a short page byte for byte (/small)", needs=["build"])
def test_small(target, httpd):
    want = reference_reply(httpd.port, "/small")
    result = fetch(target, "127.0.0.1", httpd.port, "/small")
    expect_reply(target, result, want,
                 "print exactly the bytes recv() returned: fwrite/write with the count, "
                 "not puts (a reply is not a NUL-terminated string)")


@check("prints a 4 MiB page byte for byte (/big)", needs=["build"])
def test_big(target, httpd):
    want = reference_reply(httpd.port, "/big")
    expect_reply(target, fetch(target, "127.0.0.1", httpd.port, "/big"), want, HINT_LOOP)
    note(f"{len(want)} bytes, identical")


@check("prints a page that arrives one byte per write (/dribble)", needs=["build"])
def test_dribble(target, httpd):
    want = reference_reply(httpd.port, "/dribble")
    expect_reply(target, fetch(target, "127.0.0.1", httpd.port, "/dribble"), want, HINT_LOOP)


@check("sends the whole request and reads the whole reply when the kernel cuts calls short "
       "or interrupts them", needs=["build"])
def test_short_io(target, httpd, tmp_path):
    want = reference_reply(httpd.port, "/small")
    log = tmp_path / "faults"
    # Every send moves 1 byte, every recv asks for at most 7, every 3rd blocking call
    # fails with EINTR: all of it allowed by send(2), recv(2) and signal(7).
    hold_back_if_hung()
    result = ran(run([target.binary(PROGRAM), "127.0.0.1", httpd.port, "/small"], timeout=T(5),
                     env=faults_env(log, short_send=1, short_recv=7, eintr=3)))
    if result.returncode == 0 and result.stdout == want:
        note("every send() moved 1 byte, every recv() at most 7, every 3rd call was interrupted: "
             "same reply")
        return
    faults = read_faults(log)
    sends = [f for f in faults if f.call in ("send", "sendto", "write") and f.kind == "short"]
    stderr = result.stderr.decode(errors="replace")
    if "Interrupted system call" in stderr:
        hint = ("a call interrupted by a signal before it moved any data fails with EINTR: "
                "that is not an error, call it again (write_all in common/io.h does)")
    elif sends and not any(f.asked == sends[0].asked - sends[0].result for f in sends[1:]):
        hint = (f"send() took {sends[0].result} of {sends[0].asked} bytes and your program never sent "
                f"the other {sends[0].asked - sends[0].result}: send() may take fewer bytes than asked; "
                "call it again for the rest (common/io.h has write_all) (TODO 2)")
    else:
        hint = HINT_LOOP
    fail("under short and interrupted calls the reply is not the server's reply",
         tried=tried(result, target) + "   (under the course's fault injector: short sends, "
                                       "short receives, EINTR)",
         expected="exit status 0 and the whole reply on stdout, as without the faults",
         seen=f"{result.exit_description()}; {len(result.stdout)} of {len(want)} bytes on stdout",
         details=[f"[fault injector] {f}" for f in faults[:4]] + result.stderr_lines(), hint=hint)


@check("connects to the host it is given (a server on 127.0.0.2 only)", needs=["build"])
def test_uses_host_argument(target):
    with start_server(tool("course-httpd"), ["-b", "127.0.0.2"]) as other:
        want = reference_reply(other.port, "/small", host="127.0.0.2")
        result = fetch(target, "127.0.0.2", other.port, "/small")
        expect_reply(target, result, want,
                     "the address must come from the HOST argument, through getaddrinfo(): "
                     "a hard-coded 127.0.0.1 finds nobody here (TODO 1)")


@check("finds a server by name (localhost)", needs=["build"])
def test_resolves_names(target, httpd):
    want = reference_reply(httpd.port, "/small")
    result = fetch(target, "localhost", httpd.port, "/small")
    expect_reply(target, result, want,
                 "inet_addr() only reads dotted numbers: getaddrinfo() resolves names, and may "
                 "return several addresses (::1, 127.0.0.1): try each until connect() succeeds")


MULTI = "multi.netcourse.test"


@check(f"tries every address of a name ({MULTI}: 127.0.0.3, where nobody listens, "
       "then 127.0.0.1)", needs=["build"])
def test_every_address(target):
    with start_server(tool("course-httpd"), ["-b", "127.0.0.1"]) as server, \
            HostsFile({MULTI: ["127.0.0.3", "127.0.0.1"]}) as hosts:
        want = reference_reply(server.port, "/small")
        argv = [target.binary(PROGRAM), MULTI, server.port, "/small"]
        hold_back_if_hung()
        result = ran(run(hosts.wrap(argv), timeout=T(10)))
    result.argv = argv   # show the student's command, not the namespace wrapper
    expect_reply(target, result, want,
                 f"getaddrinfo() gave two addresses for {MULTI}, and connect() to the first is "
                 "refused: try the next one (loop over the list until connect() succeeds) (TODO 1)")


@check("reports a refused connection: `connect: Connection refused`, non-zero exit", needs=["build"])
def test_refused(target):
    with closed_port() as port:
        result = fetch(target, "127.0.0.1", port, "/small", hold=False)
    stderr = result.stderr.decode(errors="replace")
    ok = (not result.timed_out and result.returncode not in (0, None) and result.returncode > 0
          and "connect" in stderr and "refused" in stderr.lower() and not result.stdout)
    if not ok:
        fail("a failed connect() must be reported, not ignored",
             tried=f"{target.shown(result.argv[0])} 127.0.0.1 {port} /small   (nothing listens on that port)",
             expected="nothing on stdout, `connect: Connection refused` on stderr, an exit status > 0",
             seen=f"{result.exit_description()}; stdout: {show_bytes(result.stdout, 40)}",
             details=result.stderr_lines() or ["[your program] (nothing on stderr)"],
             hint="check what connect() returns; on -1, die(\"connect\") prints the call and errno's text")


@check("refuses bad arguments with a usage line, non-zero exit", needs=["build"])
def test_usage(target):
    result = run([target.binary(PROGRAM)], timeout=T(10))
    if (result.timed_out or result.returncode in (0, None) or result.returncode < 0
            or b"usage" not in result.stderr.lower()):
        fail("run without arguments, your program must say how to use it",
             tried=target.shown(result.argv[0]) + "   (no arguments)",
             expected="a `usage: …` line on stderr and an exit status > 0",
             seen=f"{result.exit_description()}; stderr: {show_bytes(result.stderr, 60)}",
             hint="check argc before touching argv[1] and argv[2]")


@check("AddressSanitizer finds no memory error (/big and /dribble)", needs=["build"])
def test_asan_clean(target, httpd):
    for path in ("/big", "/dribble"):
        result = fetch(target, "127.0.0.1", httpd.port, path, variant="asan", timeout=T(60))
        stderr = result.stderr.decode(errors="replace")
        if "Sanitizer" in stderr or "runtime error" in stderr or result.returncode != 0:
            report = [l for l in stderr.splitlines() if "ERROR" in l or "runtime error" in l or " #" in l]
            fail(f"the sanitizers stopped your program fetching {path}",
                 tried=tried(result, target),
                 expected="no report from AddressSanitizer or UBSan, exit status 0",
                 seen=result.exit_description(),
                 details=[f"[your program] {l}" for l in report[:8]],
                 hint="a recv() may write at most sizeof(buffer) bytes into the buffer: "
                      "pass sizeof(buffer), not a bigger number")


@check("strace: socket, connect, send, then recv until it returns 0", needs=["build"])
def test_strace(target, httpd):
    calls = ["socket", "connect", "sendto", "send", "write", "recvfrom", "recv", "read", "close"]
    hold_back_if_hung()
    t = trace([target.binary(PROGRAM), "127.0.0.1", httpd.port, "/dribble"], calls, timeout=T(10))
    if ran(t.run).timed_out:
        fail("your program did not exit, so its system calls prove nothing",
             tried=f"strace -f {tried(t.run, target)}", expected="the program ends by itself",
             seen=t.run.exit_description(), hint=HINT_NO_EXIT)
    # Skip the dynamic loader's reads and closes: start at the first socket().
    start = next((i for i, c in enumerate(t.calls) if c.name == "socket"), len(t.calls))
    net = t.calls[start:]
    t.calls = net
    names = [c.name for c in net]
    receives = [c for c in net if c.name in ("recvfrom", "recv", "read") and not c.args.startswith("0")]
    problems = []
    if "socket" not in names or "connect" not in names:
        problems.append("no socket() and connect()")
    elif names.index("socket") > names.index("connect"):
        problems.append("connect() before socket()")
    if not any(n in ("sendto", "send", "write") for n in names):
        problems.append("no send() of the request")
    if not receives:
        problems.append("no recv() at all")
    elif receives[-1].result != 0:
        problems.append(f"the last recv() returned {receives[-1].result}, not 0: "
                        "the reply was not read to its end")
    if problems:
        fail("the system calls do not read the whole reply", tried=f"strace -f {tried(t.run, target)}",
             expected="socket → connect → send(to) → recv(from) … → recv(from) = 0",
             seen="; ".join(problems), details=["[strace] " + l for l in t.summary()], hint=HINT_LOOP)
    note(f"{len(receives)} recv calls for one small /dribble page; the last returned 0 (end of stream)")
