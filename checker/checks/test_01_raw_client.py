"""lesson 01 · raw-client: an HTTP client from socket, connect, send and recv

The student's program: `http_get HOST PORT [PATH]` prints the server's whole
reply, byte for byte. The server is the course's own (tools/programs/course_httpd.cc),
started here on a free port; the expected bytes are what it sends to the
checker's own careful client.
"""
import signal
import socket

import pytest

from checker.harness import (HeldBack, T, check, closed_port, expect_bytes, fail, note, run,
                             show_bytes, start_server, trace)
from checker.harness.client import LineClient
from checker.harness.faults import faults_env, read_faults
from checker.harness.report import CannotCheck, first_difference
from checker.harness.resolver import HostsFile
from checker.harness.target import tool
from checker.harness.watch import run_watched

PROGRAM = "http_get"
HINT_CRASH = ("a crash in a client this small is usually memory: does recv() write past the end "
              "of its buffer? Ask for at most sizeof(buffer) bytes (TODO 3)")
HINT_LOOP = ("one recv() returns what has arrived so far, not the whole reply: "
             "call it until it returns 0 (TODO 3)")
HINT_NO_EXIT = ("it printed the whole reply but did not exit: does your loop stop when recv() "
                "returns 0 (the server closed the connection)? (TODO 3)")
HINT_NO_REPLY = ("it waits in recv() for a reply that never came: the server answers once the whole "
                 "request has arrived, up to its blank line (\\r\\n\\r\\n). Did send() send every "
                 "byte of the request (its size is request.size(), not sizeof)? (TODO 2)")
HINT_408 = ("the server answered 408 Request Timeout: it waited 10 s for the rest of your request, "
            "up to its blank line (\\r\\n\\r\\n). Did send() send every byte of it (its size is "
            "request.size(), not sizeof)? (TODO 2)")
HINT_NOTHING = ("it exited 0 without printing a byte: its loop ended before the reply. recv() returns 0 "
                "at the end of the stream, and also when asked for 0 bytes: ask for sizeof(buffer) "
                "(TODO 3)")
HINT_NUL = ("the bytes from a zero byte (\\x00) on are missing: a reply is not a C string. printf(\"%s\"), "
            "puts, strlen and std::string(char*) stop at the first zero byte; write exactly the n bytes "
            "recv() returned (write_all, or fwrite with the count) (TODO 3)")
HINT_BYTES = "print exactly the bytes recv() returned, nothing added or changed (TODO 3)"
HINT_ERROR = ("your program reported an error (above) where the checker's own client got the page: "
              "which call failed, and with what arguments?")
HINT_SIGPIPE = ("it was killed by SIGPIPE: it sent on a socket that was not connected. ")

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
    """Runs the program to fetch path; held back (hold) if it never ended in an earlier check.
    A page this server sends in milliseconds: 5 s is a hang (and less than the server's own
    10 s wait for a whole request, so that a request without its end shows as one)."""
    if hold:
        hold_back_if_hung()
    return ran(run_watched([target.binary(PROGRAM, variant), host, port, path], timeout=timeout or T(5)))


def tried(result, target) -> str:
    return " ".join([target.shown(result.argv[0]), *map(str, result.argv[1:])])


def hang_hint(result, want: bytes, hint: str | None) -> str:
    """The hint for a program the checker had to kill, from what it printed and was doing."""
    doing = result.activity or ""
    if result.stdout == want:
        return HINT_NO_EXIT
    if not result.stdout and ("recvfrom" in doing or "read" in doing or "recvmsg" in doing):
        return HINT_NO_REPLY
    if "connect" in doing:
        return ("it waits in connect(), for an answer from an address where nothing answers: "
                "which address did it connect to? " + (hint or ""))
    if doing.startswith("running"):
        return ("it keeps running, using the CPU, without printing more: a loop that never ends. "
                "recv() returns 0 at the end of the stream, again and again: stop there (TODO 3)")
    return hint or HINT_LOOP


def last_error(result) -> str:
    """The last line the program wrote on stderr (its error message), or ""."""
    lines = [l for l in result.stderr.decode(errors="replace").splitlines() if l.strip()]
    return lines[-1].strip() if lines else ""


def error_hint(result, hint: str | None) -> str:
    """The hint for a program that exited with an error of its own. The check's hint is about
    finding and reaching the server: it fits when connect() or the name lookup failed (the
    message starts with `connect:` or with the host); a failed socket() or send() is another
    story."""
    said = last_error(result)
    host = str(result.argv[1]) if len(result.argv) > 1 else ""
    if said.startswith("socket:"):
        return ("socket() failed (above), so the program never reached the server. Its arguments come "
                "from the address getaddrinfo() returned (a->ai_family, a->ai_socktype, a->ai_protocol): "
                "nonsense there means the list is not what getaddrinfo() made (freed already?). The "
                "AddressSanitizer check below names the line (TODO 1)")
    if said.startswith(("connect:", f"{host}:")) or not said:
        return hint or HINT_ERROR
    return HINT_ERROR


def reply_hint(result, want: bytes, hint=None, bytes_hint: str | None = None) -> str:
    """The hint for a run that did not print `want` and exit 0, chosen by what happened: a
    crash (the signal), a hang (what /proc showed it doing), an error exit (`hint`, the
    check's own subject: an address, a name; a function of the result if it depends on the
    error: then it is used as it is for an error exit), a reply cut short, or other bytes
    (`bytes_hint`)."""
    chosen = callable(hint)
    if chosen:
        hint = hint(result)
    code = result.returncode
    if code == -signal.SIGPIPE:
        return HINT_SIGPIPE + (hint or "check what connect() returns (TODO 1)")
    if code is not None and code < 0:
        return HINT_CRASH
    if result.timed_out:
        return hang_hint(result, want, hint)
    if code != 0:
        return hint if chosen else error_hint(result, hint)
    if result.stdout.startswith(b"HTTP/1.0 408 ") and not want.startswith(b"HTTP/1.0 408 "):
        return HINT_408
    if not result.stdout and want:
        return HINT_NOTHING
    at = first_difference(want, result.stdout)
    if at is not None and at < len(want) and want[at] == 0:
        return HINT_NUL          # cut short, or changed, where the reply has a zero byte
    if want.startswith(result.stdout):
        return HINT_LOOP
    return bytes_hint or HINT_BYTES


def expect_reply(target, result, want: bytes, hint=None, bytes_hint: str | None = None):
    """The program must exit 0 having printed exactly `want`; the hint follows what happened
    (reply_hint)."""
    details = result.stderr_lines()
    if result.timed_out and getattr(result, "activity", None):
        details.append(f"[/proc] when the checker killed it, your program was {result.activity}")
    code = result.returncode
    if code in (-signal.SIGSEGV, -signal.SIGBUS, -signal.SIGABRT):
        # A memory error: the AddressSanitizer build shows where. (It cannot show a SIGPIPE.)
        asan = target.shown(target.binary(PROGRAM, "asan"))
        details.append(f"to see where: start build/tools/course-httpd -p 0, then run "
                       f"{asan} 127.0.0.1 PORT {result.argv[-1]}")
    why = reply_hint(result, want, hint, bytes_hint)
    if result.limits or code in (-signal.SIGXFSZ, -signal.SIGXCPU):
        why = ("your program ran into a limit the checker sets for every program it runs (named "
               "above): an HTTP client needs one process, a few descriptors and no files")
    if result.timed_out and want.startswith(result.stdout) and result.stdout:
        fail(f"your program did not exit: {result.exit_description()}", tried=tried(result, target),
             expected="exit status 0 and the whole reply on stdout",
             seen=f"{len(result.stdout)} of {len(want)} bytes on stdout, then nothing more, "
                  "and the program still running", details=details, hint=why)
    if result.timed_out or code != 0:
        fail(f"your program ended: {result.exit_description()}", tried=tried(result, target),
             expected="exit status 0 and the whole reply on stdout",
             seen=f"{len(result.stdout)} bytes on stdout: {show_bytes(result.stdout, 40)}",
             details=details, hint=why)
    expect_bytes(result.stdout, want, what="the reply on stdout is not the server's reply, byte for byte",
                 tried=tried(result, target), hint=why, details=details)


@check("builds (plain, and with AddressSanitizer + UBSan)")
def test_build(target):
    target.build()   # http_get, plain and asan: the programs and variants in course.toml


@check("prints a short page byte for byte (/small)", needs=["build"])
def test_small(target, httpd):
    want = reference_reply(httpd.port, "/small")
    result = fetch(target, "127.0.0.1", httpd.port, "/small")
    expect_reply(target, result, want,
                 bytes_hint="print exactly the bytes recv() returned: fwrite/write with the count, "
                            "not puts, which adds a newline (a reply is not a NUL-terminated string)")


@check("prints a 4 MiB page byte for byte (/big)", needs=["build"])
def test_big(target, httpd):
    want = reference_reply(httpd.port, "/big")
    expect_reply(target, fetch(target, "127.0.0.1", httpd.port, "/big"), want)
    note(f"{len(want)} bytes, identical")


@check("prints a page that arrives one byte per write (/dribble)", needs=["build"])
def test_dribble(target, httpd):
    want = reference_reply(httpd.port, "/dribble")
    expect_reply(target, fetch(target, "127.0.0.1", httpd.port, "/dribble"), want)


@check("prints a page of binary bytes byte for byte (/binary: zero bytes, bytes 0x80 to 0xff)",
       needs=["build"])
def test_binary(target, httpd):
    want = reference_reply(httpd.port, "/binary")
    expect_reply(target, fetch(target, "127.0.0.1", httpd.port, "/binary"), want)
    note(f"{len(want)} bytes, identical: every byte value 0 to 255 among them")


@check("prints a 404 reply byte for byte, and exits 0 (/missing)", needs=["build"])
def test_not_found(target, httpd):
    want = reference_reply(httpd.port, "/missing")
    expect_reply(target, fetch(target, "127.0.0.1", httpd.port, "/missing"), want, not_found_hint)


def not_found_hint(result) -> str:
    if last_error(result).startswith(("socket:", "connect:")):
        return error_hint(result, None)   # it never got the reply
    return ("a 404 reply is still the server's reply: print it as it came and exit 0. "
            "For this program only a failed call is an error, not an HTTP status (TODO 3)")


@check("sends the whole request and reads the whole reply when the kernel cuts calls short "
       "or interrupts them", needs=["build"])
def test_short_io(target, httpd, tmp_path):
    want = reference_reply(httpd.port, "/small")
    log = tmp_path / "faults"
    # Every send moves 1 byte, every recv asks for at most 7, every 3rd blocking call
    # fails with EINTR: all of it allowed by send(2), recv(2) and signal(7).
    hold_back_if_hung()
    result = ran(run_watched([target.binary(PROGRAM), "127.0.0.1", httpd.port, "/small"], timeout=T(5),
                             env=faults_env(log, short_send=1, short_recv=7, eintr=3)))
    if result.returncode == 0 and result.stdout == want:
        note("every send() moved 1 byte, every recv() at most 7, every 3rd call was interrupted: "
             "same reply")
        return
    faults = read_faults(log)
    sends = [f for f in faults if f.call in ("send", "sendto", "write") and f.kind == "short"]
    stderr = result.stderr.decode(errors="replace")
    receives = [f for f in faults if f.call in ("recv", "recvfrom", "read")]
    stopped_on_eintr = (result.returncode == 0 and want.startswith(result.stdout)
                        and receives and receives[-1].kind == "eintr")
    if "Interrupted system call" in stderr or stopped_on_eintr:
        ended = ("it ended its loop on a recv() that failed with EINTR, and exited 0 with "
                 f"{len(result.stdout)} of {len(want)} bytes: " if stopped_on_eintr else "")
        hint = (ended + "a call interrupted by a signal before it moved any data fails with EINTR: "
                "that is not an error, nor the end of the reply: call it again (write_all in "
                "common/io.h does)")
    elif sends and not any(f.asked == sends[0].asked - sends[0].result for f in sends[1:]):
        hint = (f"send() took {sends[0].result} of {sends[0].asked} bytes and your program never sent "
                f"the other {sends[0].asked - sends[0].result}: send() may take fewer bytes than asked; "
                "call it again for the rest (common/io.h has write_all) (TODO 2)")
    elif result.timed_out:
        hint = hang_hint(result, want, None)
    elif result.returncode not in (0, None) and result.returncode > 0 \
            and last_error(result).startswith(("socket:", "connect:")):
        hint = error_hint(result, None)   # it never got as far as sending
    elif result.returncode not in (0, None) and result.returncode > 0:
        hint = ("it reported an error (above) under the faults, where it succeeds without them: it "
                "depends on how the bytes are cut. A recv() may return any piece of the reply (here "
                "at most 7 bytes, even part of the status line), a send() take any part of the request")
    else:
        hint = reply_hint(result, want)
    fail("under short and interrupted calls the reply is not the server's reply",
         tried=tried(result, target) + "   (under the course's fault injector: short sends, "
                                       "short receives, EINTR)",
         expected="exit status 0 and the whole reply on stdout, as without the faults",
         seen=f"{result.exit_description()}; {len(result.stdout)} of {len(want)} bytes on stdout",
         details=[f"[fault injector] {f}" for f in faults[:3]]
                 + ([f"[fault injector] … the last: {faults[-1]}"] if len(faults) > 3 else [])
                 + result.stderr_lines(), hint=hint)


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
        result = ran(run_watched(hosts.wrap(argv), timeout=T(5)))
    result.argv = argv   # show the student's command, not the namespace wrapper
    expect_reply(target, result, want,
                 f"getaddrinfo() gave two addresses for {MULTI}, and connect() to the first is "
                 "refused: try the next one (loop over the list until connect() succeeds) (TODO 1)")


def ipv6_loopback_missing() -> str | None:
    """Why no server can listen on ::1 here (IPv6 off in this kernel or namespace), or None."""
    try:
        with socket.socket(socket.AF_INET6) as probe:
            probe.bind(("::1", 0))
    except OSError as e:
        return f"IPv6 is not available here ({e.strerror or e}): no server can listen on ::1"
    return None


BOTH = "both.netcourse.test"
HINT_FAMILY = ("make each socket with its address's own family, socket(a->ai_family, a->ai_socktype, "
               "a->ai_protocol), not AF_INET (TODO 1)")


def ipv6_hint(result) -> str:
    said = last_error(result)
    if said.startswith("socket:"):
        return error_hint(result, None)
    if "not supported" in said or "Invalid argument" in said:
        return f"getaddrinfo() gave an IPv6 address for ::1, and an IPv4 socket cannot connect to it: {HINT_FAMILY}"
    if "refused" in said:
        return ("the server listens on ::1 only: connect to the address getaddrinfo() gives for the HOST "
                "argument, not to one written in the code (TODO 1)")
    return ("::1 is an IPv6 address: getaddrinfo() with ai_family AF_UNSPEC returns it as it returns "
            "an IPv4 one (TODO 1)")


def both_families_hint(result) -> str:
    said = last_error(result)
    if said.startswith("socket:"):
        return error_hint(result, None)
    if result.returncode == -signal.SIGPIPE or "refused" in said:
        return (f"connect() to {BOTH}'s first address, ::1, is refused (nobody listens there): "
                "try the next one, 127.0.0.1 (TODO 1)")
    if "not supported" in said or "Invalid argument" in said:
        return (f"{BOTH} is ::1 (refused) and then 127.0.0.1: a socket made for IPv6 cannot connect "
                "to an IPv4 address. Make a new socket for each address, with its own family "
                "(socket(a->ai_family, …)), and close the one whose connect() failed (TODO 1)")
    if said.startswith(f"{BOTH}:"):
        return (f"{BOTH} was not resolved: getaddrinfo() with the name itself (no AI_NUMERICHOST) "
                "reads /etc/hosts and DNS (TODO 1)")
    return f"{BOTH} resolves to ::1, then 127.0.0.1, where the server is: try each in turn (TODO 1)"


@check(f"IPv6: reaches a server on ::1 (host ::1), and goes on from ::1 to 127.0.0.1 ({BOTH})",
       needs=["build"])
def test_ipv6(target):
    why = ipv6_loopback_missing()
    if why:
        raise CannotCheck(why, "enable IPv6 on the loopback interface (sysctl net.ipv6.conf.lo.disable_ipv6=0)")
    with start_server(tool("course-httpd"), ["-b", "::1"]) as six:
        want = reference_reply(six.port, "/small", host="::1")
        expect_reply(target, fetch(target, "::1", six.port, "/small"), want, ipv6_hint)
    # A name with an IPv6 address where nobody listens, then the IPv4 one of the server: as
    # `localhost` is on many machines (::1 first), with a server that listens on IPv4 only.
    with start_server(tool("course-httpd"), ["-b", "127.0.0.1"]) as four, \
            HostsFile({BOTH: ["::1", "127.0.0.1"]}) as hosts:
        want = reference_reply(four.port, "/small")
        argv = [target.binary(PROGRAM), BOTH, four.port, "/small"]
        hold_back_if_hung()
        result = ran(run_watched(hosts.wrap(argv), timeout=T(5)))
    result.argv = argv
    expect_reply(target, result, want, both_families_hint)
    note(f"::1 served; {BOTH}: ::1 refused, 127.0.0.1 served")


@check("reports a refused connection: `connect: Connection refused`, non-zero exit", needs=["build"])
def test_refused(target):
    with closed_port() as port:
        result = fetch(target, "127.0.0.1", port, "/small", hold=False)
    stderr = result.stderr.decode(errors="replace")
    ok = (not result.timed_out and result.returncode not in (0, None) and result.returncode > 0
          and "connect" in stderr and "refused" in stderr.lower() and not result.stdout)
    if not ok:
        said = last_error(result)
        if result.returncode == -signal.SIGPIPE:
            hint = ("it was killed by SIGPIPE: connect() failed, and the program went on to send() on a "
                    "socket that was never connected. Check what connect() returns; on -1, "
                    "die(\"connect\") prints the call and errno's text (TODO 1)")
        elif result.timed_out:
            hint = f"it did not end by itself ({result.activity or 'doing nothing /proc could tell'})"
        elif said and "connect" not in said:
            hint = (f"it stopped at another call before connect() could be refused (`{said}`): "
                    "the checks above say why")
        elif result.returncode == 0:
            hint = "it exited 0 after the failure: die(\"connect\") reports it and exits 1 (TODO 1)"
        else:
            hint = "check what connect() returns; on -1, die(\"connect\") prints the call and errno's text"
        fail("a failed connect() must be reported, not ignored",
             tried=f"{target.shown(result.argv[0])} 127.0.0.1 {port} /small   (nothing listens on that port)",
             expected="nothing on stdout, `connect: Connection refused` on stderr, an exit status > 0",
             seen=f"{result.exit_description()}; stdout: {show_bytes(result.stdout, 40)}",
             details=result.stderr_lines() or ["[your program] (nothing on stderr)"], hint=hint)


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


SANITIZER_HINTS = {
    "stack-buffer-overflow": "a recv() may write at most sizeof(buffer) bytes into the buffer: "
                             "pass sizeof(buffer), not a bigger number (TODO 3)",
    "heap-use-after-free": "it used memory after freeing it: freeaddrinfo() frees the whole list, "
                           "ai_addr included; free it once the loop over the addresses is done (TODO 1)",
    "heap-buffer-overflow": "it read or wrote past the end of a heap block: which pointer and which "
                            "length? (the report's first `#` lines name the line)",
    "stack-use-after-return": "it used a local variable of a function that had returned",
}


def sanitizer_hint(stderr: str) -> str:
    """The hint for what the sanitizers reported (the kind of error in their first line)."""
    for kind, hint in SANITIZER_HINTS.items():
        if f"AddressSanitizer: {kind}" in stderr:
            return hint
    if "runtime error" in stderr:
        return "UndefinedBehaviorSanitizer names the line and the operation above: fix that one"
    return "read the sanitizer's report above: its first `#` lines name the line of your code"


@check("AddressSanitizer finds no memory error (/big and /dribble)", needs=["build"])
def test_asan_clean(target, httpd):
    for path in ("/big", "/dribble"):
        result = fetch(target, "127.0.0.1", httpd.port, path, variant="asan", timeout=T(60))
        stderr = result.stderr.decode(errors="replace")
        if "Sanitizer" in stderr or "runtime error" in stderr:
            report = [l for l in stderr.splitlines() if "ERROR" in l or "runtime error" in l or " #" in l]
            fail(f"the sanitizers stopped your program fetching {path}",
                 tried=tried(result, target),
                 expected="no report from AddressSanitizer or UBSan, exit status 0",
                 seen=result.exit_description(),
                 details=[f"[your program] {l}" for l in report[:8]], hint=sanitizer_hint(stderr))
        if result.returncode != 0:
            fail(f"its AddressSanitizer build failed fetching {path}, with no sanitizer report",
                 tried=tried(result, target), expected="exit status 0",
                 seen=result.exit_description(), details=result.stderr_lines(),
                 hint="the checks of the plain build above say more: this is not a memory error "
                      "the sanitizers saw")


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
    connected = [c for c in net if c.name == "connect" and c.result == 0]
    hint = HINT_LOOP
    if "socket" not in names or not connected:
        problems.append("no socket() and connect() that succeeded")
        hint = (f"it never connected: `{last_error(t.run)}`; the checks above say why"
                if last_error(t.run) else "create a socket and connect() it (TODO 1)")
    elif names.index("socket") > names.index("connect"):
        problems.append("connect() before socket()")
    if not any(n in ("sendto", "send", "write") for n in names):
        problems.append("no send() of the request")
        hint = hint if problems[0] != "no send() of the request" else "send the request (TODO 2)"
    if not receives:
        problems.append("no recv() at all")
    elif receives[-1].result != 0:
        problems.append(f"the last recv() returned {receives[-1].result}, not 0: "
                        "the reply was not read to its end")
    if problems:
        fail("the system calls do not read the whole reply", tried=f"strace -f {tried(t.run, target)}",
             expected="socket → connect → send(to) → recv(from) … → recv(from) = 0",
             seen="; ".join(problems), details=["[strace] " + l for l in t.summary()], hint=hint)
    note(f"{len(receives)} recv calls for one small /dribble page; the last returned 0 (end of stream)")
