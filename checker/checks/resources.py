"""Descriptors, the one resource every connection costs a server: each client it accepts is
a file descriptor until the server closes it. A server that forgets one close per client
runs out after about a thousand clients (the open-files limit, RLIMIT_NOFILE); a server
that is out of descriptors must keep serving the clients it has, and accept again once
some have left (accept() fails with EMFILE meanwhile: common/server.cc's accept_client).
What the server holds is read from /proc/PID/fd and /proc/net/tcp."""
import signal
import socket

from checker.harness import CheckFailed, LineClient, T, fail, note, procfs, show_bytes, start_server, wait_until
from checker.harness.procs import program_lines
from checker.checks import wdb
from checker.checks.blocking import blocked_hint
from checker.checks.version import check
from checker.checks.weensydb import PROGRAM, hang_hint, server, what_it_does

CLOSE_WAIT = "08"   # the st column of /proc/net/tcp (include/net/tcp_states.h: TCP_CLOSE_WAIT)
CLIENTS = 20


def close_wait(port: int) -> int:
    """The server's connections on `port` whose client has closed and the server not yet:
    the kernel has their FIN, the descriptor is still open."""
    return sum(1 for s in procfs.tcp_sockets(("tcp",)) if s.local_port == port and s.state == CLOSE_WAIT)


def ended(s) -> bool:
    """True if the server has exited (given a moment: a dying process closes its sockets,
    which the client sees, just before it can be reaped)."""
    return bool(wait_until(lambda: not s.alive(), T(0.3), "the server gone")) or not s.alive()


def settled(pid: int, want: int, timeout: float) -> int:
    """The server's descriptor count once it is down to `want` (or after `timeout`: a
    thread closes its client's socket a moment after the client hangs up)."""
    wait_until(lambda: procfs.fd_count(pid) <= want, timeout, "the descriptors closed")
    return procfs.fd_count(pid)


@check(f"{CLIENTS} clients, one after another, leave no descriptor open in the server",
       needs=["protocol"], when="own_connection_code")
def test_no_fd_leak(target, v):
    with server(target) as s:
        pid = s.pid
        before = procfs.fd_count(pid)
        for n in range(CLIENTS):
            with LineClient(s.port) as client:
                client.send(b"set leak 0 0 2\r\n%02d\r\n" % n)
                got = client.read_line("STORED")
                if got != b"STORED\r\n":
                    fail(f"client {n + 1} of {CLIENTS} got {show_bytes(got)}",
                         tried=f"{CLIENTS} clients one after another: connect, set, hang up",
                         expected="STORED\\r\\n", seen=show_bytes(got))
        after = settled(pid, before, T(2))
        waiting = close_wait(s.port)
    tried = (f"{CLIENTS} clients one after another, each: connect, `set leak`, read STORED, "
             f"hang up; then /proc/{pid}/fd")
    if after > before:
        fail(f"{after - before} descriptors still open after {CLIENTS} clients came and went",
             tried=tried, expected=f"{before} open descriptors, as before the clients came",
             seen=f"{after} open; /proc/net/tcp: {waiting} of its connections in CLOSE_WAIT "
                  f"(the client has hung up, the server has not closed its socket)",
             hint="close each client's socket when its client leaves, on every way out of "
                  "handle_connection (a return before close(client) skips it): a server that "
                  "keeps one descriptor per client stops accepting at the open-files limit")
    note(f"{CLIENTS} clients came and went; the server holds {after} descriptors, as before")


LIMIT = 24      # the server's open-files limit in the check below
EXTRA = 3       # clients beyond what it can accept
LEAVING = 6     # held clients that then hang up
SPIN_SHARE = 0.10   # of a core: common/server.cc's accept_client, retrying every 10 ms, uses ~0%


@check("out of descriptors (EMFILE), the server keeps serving and accepts again when clients leave",
       needs=["protocol"], when="own_accept_loop")
def test_out_of_descriptors(target, v):
    """The server is started with an open-files limit of 24 (prlimit): it can hold about 20
    clients. 3 more connect and wait in the listen backlog while accept() fails with
    EMFILE; the server must stay up, keep serving the clients it has without spinning, and
    serve the 3 once some clients hang up."""
    wrapper = ("prlimit", f"--nofile={LIMIT}:{LIMIT}", "--")
    held, extra = [], []
    with start_server(target.binary(PROGRAM), wrapper=wrapper) as s:
        pid = s.pid
        room = LIMIT - procfs.fd_count(pid)
        tried = (f"the server started with an open-files limit of {LIMIT} (prlimit), so room for "
                 f"{room} clients; {room} clients connected and were served, then {EXTRA} more "
                 f"connected and sent `get x`")
        try:
            try:
                for n in range(room):
                    client = LineClient(s.port)
                    held.append(client)
                    client.send(b"get x\r\n")
                    try:
                        client.read_line(f"client {n + 1}'s END")
                    except CheckFailed as failure:
                        if ended(s):
                            raise
                        hint, details = hang_hint(target, pid)
                        hint = blocked_hint(pid, hint)   # one thread, or main in join()
                        fail(f"client {n + 1} was not served while {n} others stayed connected",
                             tried=f"{n + 1} clients connected, one after another, each sent `get x` "
                                   f"and stayed (the server's open-files limit: {LIMIT}, room for "
                                   f"{room})", expected="END\\r\\n for each", seen=failure.what,
                             details=details,
                             hint=hint or "every client must be served at once, each on a thread of "
                                          "its own (the checks of the bad clients say more)")
                for _ in range(EXTRA):
                    sock = socket.create_connection(("127.0.0.1", s.port), timeout=T(5))
                    extra.append(sock)
                    sock.sendall(b"get x\r\n")
                # The extra clients wait in the backlog, and accept() fails: its CPU meanwhile.
                use = procfs.cpu_use(pid, seconds=0.5)
                doing = what_it_does(pid)
            except (CheckFailed, OSError):
                if not ended(s):
                    raise
            if not s.alive():
                code = s.proc.poll()
                fail("the server ended when accept() failed with EMFILE (out of descriptors)",
                     tried=tried, expected="the server to wait until a descriptor is free",
                     seen=(f"it exited with status {code}" if code >= 0 else
                           f"it was killed by {signal.Signals(-code).name}")
                          + f" with {len(held)} clients connected",
                     details=program_lines(s.stderr(), limit=4, label="the server"),
                     hint="EMFILE from accept() is a moment, not the end: the clients it has still "
                          "need it, and the next accept() works once one of them has left. Wait "
                          "a little and try again (accept_client in common/server.cc does)")
            if use.busy(SPIN_SHARE):
                said = s.stderr().splitlines()
                fail(f"the server used {use.share:.0%} of a core while out of descriptors", tried=tried,
                     expected=f"under {SPIN_SHARE:.0%}: a pause between accept() attempts while no "
                              f"descriptor is free",
                     seen=f"{use.words()} over 0.5 s; its main thread was {doing}",
                     details=[f"[the server] {said[-1].decode(errors='replace')}   "
                              f"({len(said):,} lines on stderr so far)"] if said else [],
                     hint="while the process is at its open-files limit, accept() fails at once, "
                          "every time (Linux takes the new descriptor's number before it waits for a "
                          "client), so a loop that only retries spins: wait a little after EMFILE "
                          "(accept_client in common/server.cc waits 10 ms)")
            client = held[0]
            client.send(b"set still 0 0 2\r\nok\r\n")
            if client.read_line("STORED") != b"STORED\r\n":
                fail("a client held before the server ran out was not served", tried=tried,
                     expected="STORED\\r\\n", seen=show_bytes(client.buffer))
            for client in held[:LEAVING]:
                client.close()
            served = [wdb.line_within(sock, T(3)) for sock in extra]
        finally:
            for client in held:
                client.close()
            for sock in extra:
                sock.close()
        fds = procfs.fd_count(pid)
        leaked = close_wait(s.port)
    if not all(ok for ok, _ in served):
        seen = "; ".join(f"client {room + n + 1}: {what}" for n, (ok, what) in enumerate(served) if not ok)
        fail(f"after {LEAVING} clients left, the {EXTRA} waiting clients were not all served",
             tried=tried + f"; then {LEAVING} of the first clients hung up", seen=seen,
             expected=f"their `get x` answered: {LEAVING} descriptors were free again",
             details=[f"the server holds {fds} descriptors; {leaked} of its connections are in "
                      f"CLOSE_WAIT"],
             hint="the descriptors of clients that left must be closed (close(client)) for accept() "
                  "to have them again, and the accept loop must keep trying after EMFILE"
             if leaked else "the accept loop must keep trying after EMFILE, and hand each client "
                            "it accepts to a thread as usual")
    note(f"open-files limit {LIMIT}: {room} clients held, {EXTRA} more waited while accept() "
         f"failed; {use.share:.0%} of a core meanwhile; after {LEAVING} left, the {EXTRA} were served")
