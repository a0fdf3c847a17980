"""The checks that only single-threaded event-loop servers get (lessons 12-14).

One thread serves every client, so on top of the checks every version gets
(protocol, blocking) these ask what a state machine per connection must get
right: an idle server sleeps; a reply larger than the socket's buffer leaves
in pieces and arrives whole; requests may come many in one packet or one over
many packets; a client that leaves gives its descriptor back; an epoll loop
goes on after Ctrl-Z and fg; and descriptor limits (select's FD_SETSIZE, the
process's RLIMIT_NOFILE) are met cleanly. Version 9 polls without sleeping on
purpose.

When one fails, the hint follows what happened, not the check: a server that
died (by a signal, or ended itself), a connection it closed, a reply that
stalled, with what /proc shows the loop doing then (stuck(): the poller it
sleeps in, what it watches, and what waits unread that it does not watch), or
why it is busy (busy_hint(): its wait calls, seen with strace for 0.3 s).
"""
import collections
import os
import re
import signal
import socket
import statistics
import subprocess
import tempfile
import time

from checker.harness import (LineClient, T, cannot_check, fail, note, procfs, show_bytes, spawn, start_server,
                             thread_states, wait_until, watched)
from checker.harness.procs import kill_group, program_lines
from checker.checks import wdb
from checker.checks.version import check
from checker.checks.weensydb import PROGRAM, expect_reply, server, what_it_does

SET_BIG = b"set big 0 0 %d\r\n" % wdb.MAX_VALUE
FD_SETSIZE = 1024


WAKEUPS_PER_SECOND = 20   # an idle loop with no timer wakes 0 times (the solutions: 0)


@check("an idle server sleeps: almost no CPU, no wake-ups", needs=["never_close"], when="event_loop",
       bug=("idle_burn", "an idle server keeps a core busy"))
def test_idle_cpu(target, v):
    calls, hint = "", None
    with server(target) as s, wdb.NeverClose(s), wdb.NeverClose(s), wdb.HalfRequest(s):
        use = procfs.cpu_use(s.pid, seconds=1.0)
        doing = what_it_does(s.pid)
        wakes = use.wakeups / use.seconds
        if (use.busy(0.10) or wakes > WAKEUPS_PER_SECOND) and not v.idle_burn:
            calls, hint = busy_hint(s.pid, v)   # (only now: strace slows what it watches)
    tried = ("3 clients connected, served once, then silent; over 1 s, the server's CPU time, its "
             "time waiting for a core, and how often it went to sleep")
    if v.idle_burn:
        if not use.busy(0.3):
            fail(f"the server used only {use.share:.0%} of a core while idle", tried=tried,
                 expected=f"version {v.number}'s polling loop to keep a core busy",
                 seen=f"{use.words()}; its thread was {doing}",
                 hint="this version never waits on purpose: its loop asks every socket again "
                      f"and again. Does main() loop without blocking? {v.idle_burn} fixes it")
        note(f"{use.words()} while nothing happened: the loop asks every socket again "
             f"and again ({v.idle_burn} lets it sleep)")
        return
    if use.busy(0.10):
        fail(f"the server used {use.share:.0%} of a core while idle", tried=tried,
             expected="under 10%: asleep until a socket is ready",
             seen=f"{use.words()}; its thread was {doing}; {calls}", hint=hint)
    if wakes > WAKEUPS_PER_SECOND:
        fail(f"the idle server woke up {use.wakeups:,} times in {use.seconds:.1f} s", tried=tried,
             expected=f"asleep until a socket is ready: no wake-ups while nothing happens (at most "
                      f"{WAKEUPS_PER_SECOND} a second)",
             seen=f"{use.wakeups:,} sleeps ended (voluntary context switches, /proc/PID/task/*/status) "
                  f"and {use.share:.1%} of a core; {calls}", hint=hint)
    note(f"{use.share:.1%} of a core and {use.wakeups} wake-up{'' if use.wakeups == 1 else 's'} in "
         f"{use.seconds:.1f} s while idle; "
         f"its thread was {doing}")


@check("a reply far larger than the socket buffers arrives whole", needs=["protocol"], when="event_loop")
def test_big_value(target, v):
    value = bytes((i * 7 + i // 251) % 256 for i in range(256)) * (wdb.MAX_VALUE // 256)
    copies = 8
    with server(target) as s:
        with LineClient(s.port) as setup:
            expect_reply(target, setup, SET_BIG + value + b"\r\n", b"STORED\r\n",
                         what="storing a 1 MiB value", silent_hint=lambda: silent_hint(s, v))
        request = b"get" + b" big" * copies + b"\r\n"
        reply = (b"VALUE big 0 %d\r\n" % len(value) + value + b"\r\n") * copies + b"END\r\n"
        seen_stuck = []   # what the server was doing when the reply stopped coming
        got, error = read_slowly(s, request, len(reply),
                                 on_stall=lambda port: seen_stuck.append(stuck(s, v, port)))
        outcome = read_outcome(got, error, reply)
        if outcome == "stalled":
            there, fitting = seen_stuck[0] if seen_stuck else ("", None)
        elif outcome == "closed" and gone(s):
            there, fitting = (f"the server is gone ({exit_text(s.proc.poll())})",
                              died_hint(s, v, "before or during a long reply"))
        else:
            there, fitting = "", closed_early_hint(v)
        said = stderr_lines(s)
    tried = (f"stored a 1 MiB value, then `get{' big' * copies}` on a connection with a 4 KiB "
             f"receive buffer: an {len(reply) >> 20} MiB reply, more than the socket buffers "
             f"hold, so the server's write() must take it in pieces")
    if outcome == "wrong":
        at = next(i for i in range(len(got)) if got[i] != reply[i])
        fail(f"the reply is wrong from byte {at:,} on", tried=tried,
             expected=show_bytes(reply[at:at + 24]), seen=show_bytes(got[at:at + 24]),
             hint="write() may take only part of what it is given: the rest, from the byte "
                  "after the last one it took, must be written later (c.sent(n) with the n "
                  "write returned)")
    if outcome == "closed":
        fail(f"the reply stopped after {len(got):,} of {len(reply):,} bytes: the server closed "
             f"the connection", tried=tried, expected="the whole reply",
             seen=f"end of the connection ({error or 'EOF'})" + (f"; {there}" if there else ""),
             details=said, hint=fitting)
    if outcome == "stalled":
        fail(f"the reply stopped after {len(got):,} of {len(reply):,} bytes", tried=tried,
             expected="the whole reply", seen=f"nothing more for {T(5):.0f}s; {there}",
             hint=fitting or stalled_reply_hint(v, there))
    note(f"{len(reply):,} bytes through a 4 KiB receive buffer, every byte right")

@check("pipelined requests in one packet are all answered, in order", needs=["protocol"],
       when="event_loop")
def test_pipelined(target, v):
    requests, replies = pipeline()
    there, fitting, taken = "", None, len(requests)
    with server(target) as s:
        with socket.create_connection(("127.0.0.1", s.port), timeout=T(5)) as sock:
            client_port = sock.getsockname()[1]
            taken, error = send_all(sock, requests)
            if not error:
                sock.shutdown(socket.SHUT_WR)   # "that is all": replies must still come
                got, error = read_to_end(sock, len(replies))
                outcome = read_outcome(got, error, replies)
            else:
                got, outcome = b"", "stalled" if error.startswith("send() blocked") else "closed"
            if outcome == "stalled":
                there, fitting = stuck(s, v, client_port)
            elif outcome == "closed" and gone(s):
                there, fitting = (f"the server is gone ({exit_text(s.proc.poll())})",
                                  died_hint(s, v, "while it answered pipelined requests"))
        said = stderr_lines(s)
    count = requests.count(b"\n") - 6   # (the refused blocks' line ends are not requests)
    tried = (f"{count} requests ({len(requests):,} bytes, bad ones among them) in one "
             f"send(), then shutdown(SHUT_WR)")
    if taken < len(requests):
        fail(f"the server stopped reading the pipelined requests after {taken:,} of "
             f"{len(requests):,} bytes", tried=tried, expected="every request read and answered",
             seen=f"{error}; {there}" if there else error, details=said,
             hint=fitting or "one read() may bring many requests, and a read may leave more in "
                             "the socket: the loop must come back to read the rest")
    if got != replies:
        at = next((i for i in range(min(len(got), len(replies))) if got[i] != replies[i]),
                  min(len(got), len(replies)))
        wrong = got[:at] != replies[:at] or len(got) > len(replies)
        fail("the replies to pipelined requests are wrong" if wrong else
             f"the replies to pipelined requests stop after {at:,} of {len(replies):,} bytes"
             + (": the server closed the connection" if outcome == "closed" else ""), tried=tried,
             expected=show_bytes(replies[at:at + 40]),
             seen=(show_bytes(got[at:at + 40]) or error) + (f"; {there}" if there else ""),
             details=said if outcome != "wrong" else [],
             hint=fitting if outcome == "stalled" and fitting or outcome == "closed" and fitting else
             "one read() may bring many requests: run every whole request in the "
             "buffer, not only the first (run_requests does); after the client's "
             "end of input, answer what it sent before closing")
    note(f"{count} requests in one packet: {len(replies):,} bytes of replies, in order")


def send_all(sock, data: bytes) -> tuple[int, str]:
    """Sends data, as sendall() does; returns (bytes the kernel took, '' or what stopped
    it: a timeout, when the server stops reading and the socket buffers are full)."""
    view, sent = memoryview(data), 0
    try:
        while sent < len(data):
            sent += sock.send(view[sent:])
    except socket.timeout:
        return sent, f"send() blocked for {T(5):.0f}s: the server read nothing more"
    except OSError as e:
        return sent, f"{e.__class__.__name__} ({e})"
    return sent, ""


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
            outcome = read_outcome(got, error, reply)
            there, fitting = stuck(s, v, local) if outcome == "stalled" else ("", None)
    tried = f"{show_bytes(request, 60)} sent one byte per packet, each read by the server"
    if early:
        fail("the server answered before the request was whole", tried=tried,
             expected="nothing until the data block's \\r\\n",
             seen=show_bytes(early),
             hint="keep what read() returned in the connection's input until a whole line "
                  "(and for set, the whole data block) is there")
    if got != reply:
        fail("a request that came in pieces got the wrong answer" if outcome == "wrong" else
             f"a request that came in pieces got {'no' if not got else 'part of its'} answer"
             + (": the server closed the connection" if outcome == "closed" else ""),
             tried=tried, expected=show_bytes(reply),
             seen=(show_bytes(got) or error) + (f"; {there}" if there else ""),
             hint=fitting or "append what each read() returns to the connection's input; never "
                             "take one read() for one request")
    note(f"{len(request)} packets of 1 byte, one STORED and one VALUE…END")


LEAVERS = 40   # clients of each way of leaving


@check("clients that leave are closed: served, silent or reset, each gives its descriptor back",
       needs=["protocol"], when="event_loop")
def test_leaves(target, v):
    """3 × 40 clients come and go: served then closed (FIN), closed without a word, and
    reset (RST, from SO_LINGER 0) after a request. The server must close each socket:
    its descriptor count returns to what it was, and no socket of it stays in
    CLOSE_WAIT (the client has gone, the server has not closed its end)."""
    with server(target) as s:
        pid = s.pid
        with LineClient(s.port) as first:   # the loop is up and has served someone
            expect_reply(target, first, b"get x\r\n", b"END\r\n")
        problem = leave_in_three_ways(s.port)
        # A client that got no answer: what the server is doing, while it still is.
        there, fitting = stuck(s, v) if problem.endswith(NO_ANSWER_YET) else ("", None)
        # Of its sockets, only the listener is left once every client is closed.
        back = wait_until(lambda: not s.alive() or procfs.socket_fd_count(pid) <= 1, T(3),
                          "every client's descriptor given back")
        if problem or not procfs.listening(s.port):   # a crash: the core dump takes a moment
            wait_until(lambda: not s.alive(), T(2), "the server's end")
        alive = s.alive()
        held = procfs.socket_fd_count(pid) - 1 if alive else 0
        sockets = procfs.tcp_sockets_of(pid) if alive else {}
        close_wait = sum(1 for sock in sockets.values() if sock.state == CLOSE_WAIT)
        said = stderr_lines(s)
        code = s.proc.poll()
        crash = died_hint(s, v, "when clients closed or reset their connections") if not alive else ""
    tried = (f"{3 * LEAVERS + 1} clients, one after another: {LEAVERS + 1} sent `get x`, read END and "
             f"closed; {LEAVERS} connected and closed without a word; {LEAVERS} sent `get x` and "
             f"reset the connection (SO_LINGER 0)")
    if not alive:
        fail(f"the server died ({exit_text(code)}) as clients left", tried=tried,
             expected="the server alive, each client's socket closed", seen=exit_text(code),
             details=said,
             hint=crash +
             (". A crash when clients leave: is a client erased from `clients` inside a loop that "
              "walks that map (a range-for)? erase() frees the element the loop stands on: "
              "`it = clients.erase(it)` goes on from the next one" if not v.fd_setsize and
              not v.many_connections and code is not None and code < 0 else ""))
    if not back:
        fail(f"{held} descriptors of clients that left were never closed", tried=tried,
             expected="one socket left open in the server: its listener",
             seen=f"{held + 1} sockets open; {close_wait} of them in CLOSE_WAIT "
                  "(the client has gone, the server never closed its end)"
             + (f"; {problem}" if problem else ""), details=said,
             hint=("every descriptor a server opens must be closed once its client is done: when "
                   "a visit returns false (the client left, or its connection broke), close(fd) "
                   "before erasing it from clients. erase() forgets the Connection; the socket "
                   "stays open, and a server that leaks one per client stops at its open-files "
                   "limit" if the_file(v) == "weensydb.cc" else
                   "close_client must close the descriptor after poller_unwatch: otherwise each "
                   "client that leaves keeps one, until the open-files limit stops the server"))
    if there:
        fail("a client got no answer to `get x`", tried=tried,
             expected="every client served or let go", seen=f"{problem}; {there}", details=said,
             hint=fitting or "each client the loop accepts must be watched for reading, and served")
    if problem:
        fail("a client that left disturbed the server", tried=tried,
             expected="every client served or let go", seen=problem, details=said,
             hint="a client that resets its connection makes read() or write() fail with "
                  "ECONNRESET: close that one client and go on")
    note(f"{3 * LEAVERS} clients left (FIN, silent, RST): every descriptor given back")


CLOSE_WAIT = "08"   # /proc/net/tcp's st column (include/net/tcp_states.h: TCP_CLOSE_WAIT = 8)


def leave_in_three_ways(port: int) -> str:
    """LEAVERS clients of each way of leaving; '' or what went wrong for a client."""
    linger_zero = (1).to_bytes(4, "little") + (0).to_bytes(4, "little")   # struct linger {1, 0}
    for way in ("served", "silent", "reset"):
        for i in range(LEAVERS):
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=T(5)) as sock:
                    if way == "silent":
                        continue
                    sock.sendall(b"get x\r\n")
                    if way == "reset":
                        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, linger_zero)
                        continue
                    got = b""
                    while not got.endswith(b"END\r\n"):
                        chunk = sock.recv(4096)
                        if not chunk:
                            return f"a client ({way}, #{i + 1}) got {show_bytes(got)}, then EOF"
                        got += chunk
            except socket.timeout:
                return f"a client ({way}, #{i + 1}): {NO_ANSWER_YET}"
            except OSError as e:
                return f"a client ({way}, #{i + 1}): {e.__class__.__name__} ({e})"
    return ""


NO_ANSWER_YET = "no answer to `get x` in time"


@check("survives Ctrl-Z and fg (SIGSTOP, then SIGCONT) and goes on serving", needs=["protocol"],
       when=("event_loop", "epoll"))
def test_stop_continue(target, v):
    """Measured here (kernel 6.18): a process stopped in epoll_wait() and continued sees it
    return -1 with EINTR, even with no signal handler (signal(7) lists epoll_wait among the
    calls this happens to); select() and poll() are restarted by the kernel instead. So
    lesson 14's loop must take EINTR for "nothing yet" (lessons 12 and 13 never see it)."""
    with server(target) as s, LineClient(s.port) as client:
        pid = s.pid
        expect_reply(target, client, b"set stop 0 0 2\r\nok\r\n", b"STORED\r\n")
        asleep = wait_until(lambda: procfs.state(pid) == "S", T(3),
                            "the server asleep in its poller")
        os.kill(pid, signal.SIGSTOP)
        wait_until(lambda: procfs.state(pid) in ("T", "gone"), T(3),
                   "the server stopped")
        os.kill(pid, signal.SIGCONT)
        wait_until(lambda: procfs.state(pid) != "T", T(3),
                   "the server continued")
        tried = ("set stop, then the server (asleep: " + ("yes" if asleep else "not seen") +
                 ") was stopped with SIGSTOP and continued with SIGCONT, as Ctrl-Z and fg do; "
                 "then `get stop` on the same connection")
        try:
            expect_reply(target, client, b"get stop\r\n", b"VALUE stop 0 2\r\nok\r\nEND\r\n")
        except Exception:
            wait_until(lambda: not s.alive(), T(1), "the server's end")
            if s.alive():
                raise
            said = s.stderr().decode(errors="replace")
            fail(f"the server ended ({exit_text(s.proc.poll())}) after SIGSTOP and SIGCONT",
                 tried=tried, expected="the server to go on serving", seen=exit_text(s.proc.poll()),
                 details=stderr_lines(s),
                 hint=("on Linux a process stopped and continued (Ctrl-Z, then fg) sees "
                       "epoll_wait() return -1 with errno EINTR, even without a signal handler "
                       "(signal(7)). EINTR is not an error: return the empty list and wait "
                       "again (poller_wait, poller.cc, TODO 4)"
                       if "Interrupted" in said or "EINTR" in said else
                       died_hint(s, v, "after it was stopped and continued")))
    note("stopped and continued while asleep in its poller, then served the same client")


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
        silent = next((i for i, o in other if o.startswith(NO_ANSWER)), None)
        there, fitting = stuck(s, v) if silent is not None and alive else ("", None)
        after = None
        if alive and silent is None:
            for sock in socks[:100]:
                sock.close()
            wait_until(lambda: procfs.fd_count(s.pid) < FD_SETSIZE - 50, T(5),
                       "the server closed the clients that left", interval=0.02)
            after, seen = wdb.second_client_served(s.port)
        for sock in socks:
            sock.close()
        stderr = s.stderr()
    tried = (f"{want} clients connected at once to the AddressSanitizer build, each sent "
             f"`get x`")
    if not alive:
        code = s.proc.poll()
        own_exit = (code is not None and code > 0 and code != ASAN_EXIT and b"Sanitizer" not in stderr
                    and b"runtime error:" not in stderr)   # (UBSan: -fno-sanitize-recover)
        fail(f"the server died with {want} clients connected", tried=tried,
             expected="the server alive, refusing the clients it cannot watch",
             seen=f"it {'exited (status ' + str(code) + ')' if code is not None and code >= 0 else exit_text(code)} "
                  "while the clients connected",
             details=asan_lines(stderr),
             hint=f"your server ended itself (exit status {code}) when a descriptor reached "
                  "FD_SETSIZE: only that one client cannot be watched. poller_watch must return "
                  "false for it (poller.cc, TODO 1): the event loop then tells that client "
                  "`SERVER_ERROR too many connections`, closes it, and serves the others"
             if own_exit else
             "FD_SET(fd, …) with fd >= FD_SETSIZE (1024) writes past the end of "
             "the fd_set: poller_watch must refuse to watch such a descriptor "
             "(return false; poller.cc, TODO 1)")
    if silent is not None:
        fail(f"client {silent + 1} of {want} got no answer to `get x`", tried=tried,
             expected="each client served, or refused with SERVER_ERROR and closed",
             seen=f"{len(served)} served, {len(refused)} refused, then no answer in {T(5):.0f}s; "
                  f"{there}",
             hint=fitting or "every client the loop accepts must be watched and served, or "
                             "refused and closed")
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
        rss_before = procfs.vm_rss(s.pid)
        held, problem = hold_connections(s.port, n)
        try:
            during = latencies(s.port, 300) if not problem else []
            rss_during = procfs.vm_rss(s.pid)
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


# ---- a server that does not answer, closes, or dies: what happened, and the hint --------

def poller_call(v) -> str:
    """The call this version's loop sleeps in (version 9 sleeps in none)."""
    return "select()" if v.fd_setsize else "epoll_wait()" if v.many_connections else "nothing"


def the_file(v) -> str:
    """Where this version's student code is: lesson 12 writes the loop, 13 and 14 the poller."""
    return "poller.cc" if v.fd_setsize or v.many_connections else "weensydb.cc"


# Why a descriptor with something to read is not watched for reading (watched.Unseen.cause).
UNSEEN_HINTS = {
    "nfds": "select() looks only at the descriptors below its first argument, nfds: pass the "
            "highest watched descriptor + 1 (poller.cc, TODO 3)",
    "not_in_set": "select() overwrites its sets, leaving in them only the descriptors that were "
                  "ready: fill both sets again from poller->interest before every call "
                  "(poller.cc, TODO 2), never keep them from one call to the next",
    "not_in_pollfds": "every descriptor watched for READABLE must be in the pollfd array, with POLLIN",
    "not_in_list": "a descriptor is watched only once epoll_ctl(EPOLL_CTL_ADD) has put it in the "
                   "epoll list (poller_watch, poller.cc, TODO 3)",
    "no_epollin": "READABLE must ask epoll for EPOLLIN (epoll_events, poller.cc, TODO 2)",
    "edge_triggered": "with EPOLLET (edge-triggered) epoll reports new data once, when it arrives; "
                      "this event loop reads at most 16 KiB per report, so whatever one read() "
                      "leaves is never reported again. Leave EPOLLET out: level-triggered epoll "
                      "reports a socket for as long as data waits in it (poller.cc, TODO 2)",
    "oneshot": "EPOLLONESHOT disarms a descriptor after one event, and this loop calls epoll_ctl "
               "again only when a client's interest changes: leave EPOLLONESHOT out",
}


def exit_text(code: int | None) -> str:
    if code is None:
        return "still running"
    return f"killed by {signal.Signals(-code).name}" if code < 0 else f"exit status {code}"


def stderr_lines(s, limit=6) -> list[str]:
    return program_lines(s.stderr(), limit=limit, label="the server")


def died_hint(s, v, when: str) -> str:
    """The hint for a server that ended during a check: by signal, or by its own exit."""
    code = s.proc.poll()
    said = s.stderr().decode(errors="replace")
    if code is not None and code > 0:
        return (f"your server ended itself (exit status {code}) {when}: read what it printed above. "
                "An event loop ends only on SIGINT/SIGTERM: one client's trouble, or a call that "
                "returns -1 with EAGAIN or EINTR, must never end the server")
    if "AddressSanitizer" in said:
        return "AddressSanitizer names the bad access and its line above"
    return (f"your server crashed ({exit_text(code)}) {when}: memory used after it was freed, "
            f"or past its end? The AddressSanitizer build names the line: make "
            f"build/lessons/{v.lesson}/weensydb-asan, run it with -p 0, and do again what this check did")


def gone(s) -> bool:
    """Has the server ended? A server whose listener has vanished is ending (a crash closes
    every descriptor before the process is reaped): then wait a moment for its end."""
    if s.alive() and not procfs.listening(s.port):
        wait_until(lambda: not s.alive(), T(2), "the server's end")
    return not s.alive()


def stuck(s, v, client_port: int | None = None) -> tuple[str, str | None]:
    """What a server that did not answer is doing, from /proc, and the hint that fits it
    (None when nothing specific is seen). client_port names the checker's connection."""
    if gone(s):
        return (f"the server is gone ({exit_text(s.proc.poll())})",
                died_hint(s, v, "while a client waited for its answer"))
    w = watched.waiting(s.pid)
    unseen = w.unseen()
    if unseen:
        u = unseen[0]
        return f"the server is {w.describe()}, while fd {u.fd}, {u.what}, is {u.why}", UNSEEN_HINTS[u.cause]
    doing = f"the server's one thread is {w.activity}"
    if "accept" in w.activity:
        return doing, ("the listening socket is blocking: accept() waits for the next client while "
                       "the clients already there wait for it. Make the listener non-blocking too "
                       "(set_nonblocking(listener), TODO 4)")
    if re.search(r"\b(read|recvfrom|recvmsg|write|sendto|sendmsg)\(", w.activity):
        return doing, ("one thread serves everyone, so it must never wait for one client: make "
                       "each client's socket non-blocking, and on EAGAIN go on to the next one")
    if w.activity.startswith("running") and wait_until(lambda: not s.alive(), T(0.5), "a crash"):
        return (f"the server ended ({exit_text(s.proc.poll())}) a moment later",
                died_hint(s, v, "while a client waited for its answer"))
    if w.activity.startswith("running"):
        return doing, ("it is busy, not waiting: is it going round a loop that does not serve "
                       "this client (a loop that stays with one client until it is done)?")
    if client_port is not None and w.call:
        mine = next((fd for fd, sock in w.sockets.items() if sock.remote_port == client_port), None)
        if mine is not None and mine not in (w.writes or set()):
            sock = w.sockets[mine]
            return (f"the server is {w.describe()}: fd {mine}, this client's socket, is not "
                    f"watched for writing, and its send queue holds {sock.tx_queue:,} bytes"), None
    return f"the server is {w.describe()}", None


def stalled_reply_hint(v, there: str) -> str:
    """The hint for a long reply that stopped coming while the connection stayed open."""
    if "not watched for writing" in there:
        return ("while output waits, the socket must be watched for writing, so that the loop "
                "wakes when it has room again: " +
                ("in select()'s write set (poller.cc, TODO 2)" if v.fd_setsize else
                 "EPOLLOUT for WRITABLE (epoll_events, poller.cc, TODO 2)"))
    return ("either the rest was dropped (after a partial write only the n bytes write() "
            "returned are gone: c.sent(n)), or it waits for a wake-up that never comes (watch "
            "the socket for writing while output waits: " +
            ("select's write set)" if v.fd_setsize else "EPOLLOUT)" if v.many_connections
             else "visit every client with output on every turn)"))


def silent_hint(s, v) -> str:
    """The hint for a request that got not a byte back, from what the server is doing."""
    seen, hint = stuck(s, v)
    if hint and re.match(r"[a-z]+ ", hint):   # a word, not a function's name: a sentence
        hint = hint[0].upper() + hint[1:]
    return f"{seen}. {hint}" if hint else (
        f"not a byte came back, and {seen}: is this client's socket watched for reading?")


def closed_early_hint(v) -> str:
    """The hint for a connection the server closed in the middle of a long reply."""
    if v.many_connections:
        return ("the event loop closes a client when poller_watch returns false. While a reply "
                "waits, the loop asks for WRITABLE as well, and that change must reach the kernel "
                "as EPOLL_CTL_MOD: EPOLL_CTL_ADD of a descriptor already in the list fails with "
                "EEXIST (poller.cc, TODO 3)")
    if v.fd_setsize:
        return ("the event loop closes a client when poller_watch returns false: it may refuse "
                "only a descriptor >= FD_SETSIZE (poller.cc, TODO 1)")
    return ("a write() that fails with EAGAIN (or EWOULDBLOCK) moved nothing because the socket's "
            "send buffer is full, and a client that reads slowly fills it: that is not an error. "
            "Keep the rest and write it on a later visit (write_some, TODO 3)")


# The loop's wait calls, as strace names them.
WAIT_CALLS = ("select", "pselect6", "poll", "ppoll", "epoll_wait", "epoll_pwait", "epoll_pwait2")
STRACE_LINE = re.compile(r"^\d+\s+(\w+)\((.*)\)\s+=\s+(-?\d+)(.*)$")
ZERO_TIMEOUT = re.compile(r"tv_sec=0, tv_u?n?sec=0\}|, 0\)?$|, 0, (NULL|\{)")


def wait_calls(pid: int, seconds: float = 0.3) -> list[tuple[str, str, int, str]] | None:
    """The select/poll/epoll_wait calls the server makes in `seconds` (strace attached for
    that long): [(name, arguments, result, what strace added)]. None if strace cannot attach."""
    with tempfile.TemporaryDirectory(prefix="netcourse-strace-") as tmp:
        out = os.path.join(tmp, "trace")
        try:
            tracer = spawn(["strace", "-qq", "-f", "-p", str(pid), "-o", out,
                            "-e", "trace=" + ",".join(WAIT_CALLS)],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        except OSError:
            return None
        try:
            attached = wait_until(lambda: procfs.status(pid).get("TracerPid", "0") != "0"
                                  or tracer.poll() is not None, T(3), "strace attached")
            if not attached or tracer.poll() is not None:
                return None
            time.sleep(seconds)   # a measurement window, not a synchronisation
        finally:
            kill_group(tracer, signal.SIGINT)
            try:
                tracer.wait(timeout=T(3))
            except subprocess.TimeoutExpired:
                pass
            kill_group(tracer)
        text = open(out, errors="replace").read() if os.path.exists(out) else ""
    return [(m.group(1), m.group(2), int(m.group(3)), m.group(4))
            for m in map(STRACE_LINE.match, text.splitlines()) if m and m.group(1) in WAIT_CALLS]


def no_timeout(call: str) -> str:
    """How a program asks `call` for no timeout: -1 for poll and epoll_wait, nullptr for select."""
    return "-1" if "epoll" in call or call == "poll" else "nullptr"


def busy_hint(pid: int, v) -> tuple[str, str]:
    """Why an event loop that should sleep keeps a core busy, from its wait calls:
    (what strace showed, the hint)."""
    calls = wait_calls(pid)
    call = poller_call(v)
    generic = (f"poller_wait (poller.cc) must sleep in {call} with no timeout, and watch a "
               "descriptor for writing only while poller_watch asked for WRITABLE: a socket with "
               f"room is always writable, so {call} would return at once, again and again")
    if calls is None:
        return "(strace could not attach to see why)", generic
    if not calls:
        return ("in 0.3 s it did not call select(), poll() or epoll_wait() once",
                f"the loop never sleeps: poller_wait must wait in {call} until a descriptor is "
                f"ready (poller.cc, {'TODO 3' if v.fd_setsize else 'TODO 4'}), not report every "
                "watched descriptor as ready")
    zero = [c for c in calls if ZERO_TIMEOUT.search(c[1])]
    name = calls[0][0]
    if len(zero) * 2 > len(calls):
        example = f"{zero[0][0]}({zero[0][1]}) = {zero[0][2]}"
        nothing = no_timeout(name)
        return (f"{len(calls):,} {name}() calls in 0.3 s, each with a timeout of 0, e.g. {example}",
                f"a timeout of 0 means \"return at once\", so the loop never sleeps: to wait "
                f"until a descriptor is ready, pass {nothing} (no timeout)")
    timed_out = [c for c in calls if c[2] == 0]
    if len(timed_out) * 2 > len(calls):
        example = f"{timed_out[0][0]}({timed_out[0][1]}) = 0"
        nothing = no_timeout(name)
        return (f"{len(calls):,} {name}() calls in 0.3 s, {len(timed_out):,} of them ended by their "
                f"timeout with nothing ready, e.g. {example}",
                f"a timeout wakes the loop for nothing: with no timer to run, pass {nothing} (no "
                f"timeout) and {name}() returns only when a descriptor is ready")
    ready = collections.Counter()
    for _, args, result, tail in calls:
        if result <= 0:
            continue
        for events, fd in re.findall(r"events=([A-Z|]+), data=\{u32=(\d+)", args):
            for kind, bit in (("writable", "EPOLLOUT"), ("readable", "EPOLLIN")):
                if bit in events:
                    ready[(int(fd), kind)] += 1
        for kind, word in (("readable", "in"), ("writable", "out")):
            for fds in re.findall(rf"\b{word} \[([\d ]+)\]", tail):
                for fd in fds.split():
                    ready[(int(fd), kind)] += 1
    if ready:
        (fd, kind), times = ready.most_common(1)[0]
        seen = f"{len(calls):,} {name}() calls in 0.3 s; {times:,} of them reported fd {fd} {kind}"
        if kind == "writable":
            return seen, ("a socket with room in its send buffer is always writable: watch a "
                          "descriptor for writing only while poller_watch asked for WRITABLE "
                          + ("(select's write set, poller.cc, TODO 2)" if v.fd_setsize else
                             "(EPOLLOUT only then, poller.cc, TODO 2)"))
        return seen, (f"fd {fd} is reported readable again and again: whatever is there is not "
                      "being read. A client that has left (read() returns 0) must be closed")
    return f"{len(calls):,} {name}() calls in 0.3 s", generic


def read_outcome(got: bytes, error: str, want: bytes) -> str:
    """How a read of a reply ended: whole, wrong (other bytes), closed early, or stalled."""
    if got != want[:len(got)]:
        return "wrong"
    if len(got) >= len(want):
        return "whole"
    return "stalled" if "timeout" in error.lower() or "timed out" in error else "closed"


# ---- measuring the server ------------------------------------------------------



ASAN_EXIT = 23   # the exit status AddressSanitizer is told to use (asan_env)


def asan_env() -> dict:
    env = dict(os.environ)
    env["ASAN_OPTIONS"] = f"detect_leaks=0:abort_on_error=0:exitcode={ASAN_EXIT}"
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
        states = {t.state for t in thread_states(server.pid)}
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


def read_slowly(server, request: bytes, size: int, on_stall=None) -> tuple[bytes, str]:
    """Sends request on a connection with a 4 KiB receive buffer and reads the reply,
    but only once the server's first write() is over: the kernel cannot hold a reply
    that large, so that write must have been partial. Returns (bytes read, '' or what
    stopped the reading: a timeout (nothing came for 5 s), EOF, or a reset). On a
    timeout, on_stall(the client's port) runs first, while the connection is still open."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.settimeout(T(5))
    with sock:
        try:
            sock.connect(("127.0.0.1", server.port))
            sock.sendall(request)
        except OSError as e:
            return b"", f"{e.__class__.__name__} ({e})"
        wait_until_write_returned(server, sock.getsockname()[1], T(5))
        got = bytearray()
        try:
            while len(got) < size:
                chunk = sock.recv(65536)
                if not chunk:
                    return bytes(got), "EOF"
                got += chunk
        except socket.timeout:
            if on_stall:
                on_stall(sock.getsockname()[1])
            return bytes(got), "timed out"
        except OSError as e:
            return bytes(got), f"{e.__class__.__name__} ({e})"
        return bytes(got), ""


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
        # One client left without an answer: the others would wait as long (a deadline each).
        silent = outcomes and outcomes[-1].startswith(NO_ANSWER)
        outcomes.append(f"{NO_ANSWER} (not asked: an earlier client got none)" if silent else ask(sock))
    return socks, outcomes


NO_ANSWER = "no answer"


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
    except socket.timeout:
        return f"{NO_ANSWER} in {T(5):.0f}s"
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
