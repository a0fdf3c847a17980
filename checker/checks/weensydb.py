"""The WeensyDB server under check: how the checks start it and look inside it.

Shared by the theme modules (protocol, blocking, locks, deadlocks, eventloop):
the server in each of its builds (plain, TSan, with the lock tracer), one
request and its exact reply, and what a server that does not answer is doing.
"""
import pathlib
import re
import signal
import tempfile

from checker.harness import (CheckFailed, LockTrace, diagnose_hang, fail, locktrace_env, note, procfs,
                             show_bytes, start_server, start_tsan_server, thread_states, T)
from checker.harness.procs import program_lines
from checker.harness.target import ROOT
from checker.harness.tsan import read_log_text
from checker.checks import wdb

PROGRAM = "weensydb"


def server(target, env=None):
    """The plain build, started with -p 0 (in the environment env, if given)."""
    return start_server(target.binary(PROGRAM), env=env)


def tsan_server(target, logs):
    """The TSan build, reporting into logs; retried under setarch -R if TSan cannot map."""
    s, retried = start_tsan_server(target.binary(PROGRAM, "tsan"), logs, timeout=T(15))
    if retried:
        note("this kernel randomises addresses more than TSan can handle (vm.mmap_rnd_bits > 28: "
             "'unexpected memory mapping'), so the TSan build ran under setarch -R")
    return s


class traced_server:
    """The plain build with the lock tracer preloaded: (server, LockTrace)."""

    def __init__(self, target):
        self.target = target
        self.dir = tempfile.TemporaryDirectory(prefix="locktrace-")

    def __enter__(self):
        path = pathlib.Path(self.dir.name) / "trace"
        self.server = start_server(self.target.binary(PROGRAM), env=locktrace_env(path))
        return self.server, LockTrace(path)

    def __exit__(self, *exc):
        self.server.__exit__(*exc)
        self.dir.cleanup()


def keep_tsan_output(target, logs, name) -> str:
    """Copies TSan's whole output to build/tsan/, where the student can read it after the run."""
    path = ROOT / "build" / "tsan" / f"{target.lesson}-{name}.txt"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(read_log_text(logs))
    return target.shown(path)


def expect_reply(target, client, request: bytes, reply: bytes, what: str | None = None, hint=None,
                 silent_hint=None, closed_hint=None, partial_hint=None, server=None):
    """Sends request on client; fails unless the whole reply comes back, exactly. The hint
    follows what happened: the server died (by which signal), the connection closed,
    nothing came (and, given the server, what its threads are doing), part of the reply
    came and then nothing, or other bytes came (line endings named only when they are the
    difference). `hint` may be a function of the bytes that came instead."""
    history = client.__dict__.setdefault("history", [])   # this connection's earlier exchanges
    client.send(request)
    try:
        got = wdb.read_reply(client)
    except CheckFailed as failure:
        seen = failure.seen or "(nothing)"
        partial = getattr(failure, "data", None)
        details = conversation(history)
        closed = "closed the connection" in failure.what or "reset the connection" in failure.what
        crash = server_gone(server, wait=closed)
        if crash:
            why, more = crash
            details += more
        elif closed:
            if callable(closed_hint):   # worked out now that the connection has ended
                closed_hint = closed_hint()
            why = closed_hint or hung_up_hint(history)
        elif failure.seen in (None, "", "(no bytes)"):
            if callable(silent_hint):   # worked out now, while the server still does not answer
                silent_hint = silent_hint()
            why = silent_hint
            if why is None and server is not None:
                why, more = hang_hint(target, server.pid, client)
                details += more
            why = why or ("not a byte came back: the server never wrote a reply to this "
                          "request (is it still waiting for more of it, or stuck?)")
        elif partial is not None and reply.startswith(partial):
            why = partial_hint or (f"the reply stopped after {len(partial)} of {len(reply)} bytes: "
                                   "a write() that moved fewer bytes than asked must be called "
                                   "again for the rest (write_all does)")
        else:
            why = line_ending_hint(partial, reply) or (hint(partial or b"") if callable(hint) else hint)
        fail(f"{what or 'the reply'} never came whole: {failure.what}",
             tried=f"sent {show_bytes(request, 80)}", expected=show_bytes(reply, 80),
             seen=seen, hint=why, details=details)
    if got != reply:
        fail(f"{what or 'the reply'} is not what the protocol says",
             tried=f"sent {show_bytes(request, 80)}",
             expected=show_bytes(reply, 80), seen=show_bytes(got, 80),
             hint=line_ending_hint(got, reply) or (hint(got) if callable(hint) else hint),
             details=conversation(history))
    history.append((request, got))


def hung_up_hint(history) -> str:
    """For a connection the server closed instead of answering."""
    if history:
        n = len(history)
        return (f"the server answered {n} request{'s' if n > 1 else ''} on this connection and then "
                f"hung up without answering the next: handle_connection must write each request's "
                f"reply, and loop until read_request returns false")
    return ("the server hung up without answering: does handle_connection write each request's "
            "reply, and loop until read_request returns false?")


def conversation(history, last: int = 4) -> list[str]:
    """The connection's earlier requests and their replies (the last few, abbreviated):
    a wrong reply often comes from an earlier request, e.g. the set before a get."""
    if not history:
        return []
    lines = [f"before it, on this connection ({len(history)} exchange{'s' if len(history) > 1 else ''}"
             f"{f', the last {last}' if len(history) > last else ''}):"]
    for request, reply in history[-last:]:
        lines.append(f"  sent {show_bytes(request, 48)}  →  {show_bytes(reply, 40)}")
    return lines


def line_ending_hint(got: bytes | None, reply: bytes) -> str | None:
    """The line-ending hint, when line endings are what differ."""
    if got is None:
        return None
    if got.replace(b"\r\n", b"\n") == reply.replace(b"\r\n", b"\n")[:len(got.replace(b"\r\n", b"\n"))] \
            and got != reply[:len(got)]:
        return "every reply line ends in \\r\\n (a bare \\n is not enough), a get reply with END\\r\\n"
    return None


# ---- a server that does not answer -------------------------------------------------

CRASH_HINTS = {
    "SIGABRT": "abort(): std::terminate (a std::thread destroyed while still joinable, an exception "
               "nobody caught), a failed assert, or glibc finding its heap corrupt; its last words "
               "on stderr, above, say which",
    "SIGSEGV": "it touched memory it does not own: a pointer or reference into something that was "
               "freed or went out of scope, or a list changed by two threads at once",
    "SIGBUS": "it touched memory it does not own",
    "SIGPIPE": "it wrote to a client that had gone: a server ignores SIGPIPE (stop_on_signals) and "
               "takes the EPIPE from write() as the end of that client",
}
TERMINATE = b"terminate called without an active exception"


def server_gone(server, wait: bool = False):
    """(hint, details) if the server has died, else None. wait: the connection just closed,
    and a dying process closes its sockets a moment before it can be reaped."""
    if server is None:
        return None
    if wait:
        try:
            server.proc.wait(timeout=T(0.3))
        except Exception:   # subprocess.TimeoutExpired: still running
            pass
    code = server.proc.poll()
    if code is None:
        return None
    stderr = server.stderr()
    lines = program_lines(stderr, limit=6, label="the server")
    if code < 0:
        name = signal.Signals(-code).name
        if name == "SIGABRT" and TERMINATE in stderr:
            return (f"the server died: killed by SIGABRT after \"terminate called without an active "
                    f"exception\": a std::thread object was destroyed while its thread still ran "
                    f"(neither joined nor detached). Detach it where it is made: "
                    f"std::thread(handle_connection, client).detach()", lines)
        return f"the server died: killed by {name}: {CRASH_HINTS.get(name, 'a signal ended it')}", lines
    return (f"the server exited (status {code}) in the middle of the conversation: a server "
            f"ends only when told to (SIGTERM); which call failed? Its stderr is above", lines)


def hang_hint(target, pid, client=None) -> tuple[str | None, list[str]]:
    """(hint, details) for a server that did not answer: what its threads are doing,
    read from /proc (and gdb, when a mutex is involved); given the client, whether the
    server has read all it sent (/proc/net/tcp)."""
    try:
        threads = [t for t in thread_states(pid) if t.state != "Z"]
    except OSError:
        return None, []
    tids = {t.tid for t in threads}
    waits = {t.tid: t.owner for t in threads if t.wait == "mutex"}
    if waits:
        details = watchdog(target, pid)
        if any(owner == tid for tid, owner in waits.items()):
            return ("a thread waits for a mutex it holds itself, so it waits for ever: it locked it "
                    "twice, in this request or in an earlier one that never unlocked it (a return "
                    "or break that skipped an unlock()?). A std::lock_guard unlocks on every way "
                    "out of its scope", details)
        if any(owner not in tids for owner in waits.values()):
            return ("a thread waits for a mutex whose holder ended without unlocking it: unlock on "
                    "every way out of a function (a std::lock_guard does it for you)", details)
        if any(waits.get(owner) == tid for tid, owner in waits.items()):
            return ("two threads each wait for the mutex the other holds (ABBA): take locks in "
                    "one global order", details)
        return ("a thread waits for a mutex held by a thread that waits for something else "
                "(a client?): no lock may be held while a thread waits", details)
    running = [t for t in threads if t.state == "R"]
    states = "; ".join(f"thread {t.tid}{' (main)' if t.tid == pid else ''} is {t.activity()}"
                       for t in threads[:6])
    if running:
        return ("a thread of the server is running flat out and never answers: a loop that never "
                "ends (one that never reaches read_request again, or waits by spinning)?",
                [f"the server's threads, from /proc: {states}"])
    readers = [t for t in threads if (t.activity() or "").startswith(("blocked in read", "blocked in recv"))]
    if readers:
        details = [f"the server's threads, from /proc: {states}"]
        if unread_by_server(client) == 0:
            details.append("/proc/net/tcp: the server's socket for this client holds no unread byte")
            if client.sent.startswith(b"set"):
                return ("the server has read every byte of this request and waits in read() for "
                        "more: it answered with no bytes at all, or it takes the data block as "
                        "unfinished (does it wait for more bytes than the set's size says?)", details)
            return ("the server has read all of this request and waits in read() for the next: "
                    "it answered this one with no bytes at all. Does every path append a reply "
                    "(a get that finds nothing still ends with END)?", details)
        return ("the server is waiting in read() for more from its clients: it did not take this "
                "request as complete, or it answered it with no bytes at all (an empty reply?)",
                details)
    return None, [f"the server's threads, from /proc: {states}"] if threads else []


def unread_by_server(client) -> int | None:
    """Bytes the client sent that wait unread in the server's socket; None if unknown."""
    if client is None:
        return None
    try:
        server_port, client_port = client.sock.getpeername()[1], client.sock.getsockname()[1]
    except OSError:
        return None
    queues = procfs.tcp_queues(server_port, client_port)
    return None if queues is None else queues[1]


def watchdog(target, pid) -> list[str]:
    """What a hung server's threads wait for; bucket mutexes named by bucket number."""
    size = 40   # sizeof(std::mutex) on Linux (a pthread_mutex_t)
    return [re.sub(r"'bucket_mutex \+ (\d+)'", lambda m: f"bucket_mutex[{int(m.group(1)) // size}]",
                   re.sub(r"'bucket_mutex'", "bucket_mutex[0]", line))
            for line in diagnose_hang(pid, source_dir=target.source_dir)]


def what_it_does(pid: int) -> str:
    """What a single-threaded server's thread is doing, e.g. "blocked in read()"."""
    try:
        thread = thread_states(pid)[0]
    except (OSError, IndexError):
        return "(gone)"
    if thread.state == "R":
        return "running (not in a system call)"
    return thread.activity() or "asleep in the kernel"
