"""The WeensyDB server under check: how the checks start it and look inside it.

Shared by the theme modules (protocol, blocking, locks, deadlocks, eventloop):
the server in each of its builds (plain, TSan, with the lock tracer), one
request and its exact reply, and what a server that does not answer is doing.
"""
import pathlib
import re
import tempfile

from checker.harness import (CheckFailed, LockTrace, diagnose_hang, fail, locktrace_env, note, show_bytes,
                             start_server, start_tsan_server, thread_states, T)
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
                 silent_hint=None, closed_hint=None, partial_hint=None):
    """Sends request on client; fails unless the whole reply comes back, exactly. The hint
    follows what happened: the connection closed, nothing came, part of the reply came and
    then nothing, or other bytes came (line endings named only when they are the difference)."""
    history = client.__dict__.setdefault("history", [])   # this connection's earlier exchanges
    client.send(request)
    try:
        got = wdb.read_reply(client)
    except CheckFailed as failure:
        seen = failure.seen or "(nothing)"
        partial = getattr(failure, "data", None)
        if "closed the connection" in failure.what or "reset the connection" in failure.what:
            if callable(closed_hint):   # worked out now that the connection has ended
                closed_hint = closed_hint()
            why = closed_hint or ("the server hung up without answering: does handle_connection "
                                  "write each request's reply, and loop until read_request "
                                  "returns false?")
        elif failure.seen in (None, "", "(no bytes)"):
            if callable(silent_hint):   # worked out now, while the server still does not answer
                silent_hint = silent_hint()
            why = silent_hint or ("not a byte came back: the server never wrote a reply to this "
                                  "request (is it still waiting for more of it, or stuck?)")
        elif partial is not None and reply.startswith(partial):
            why = partial_hint or (f"the reply stopped after {len(partial)} of {len(reply)} bytes: "
                                   "a write() that moved fewer bytes than asked must be called "
                                   "again for the rest (write_all does)")
        else:
            why = line_ending_hint(partial, reply) or hint
        fail(f"{what or 'the reply'} never came whole: {failure.what}",
             tried=f"sent {show_bytes(request, 80)}", expected=show_bytes(reply, 80),
             seen=seen, hint=why, details=conversation(history))
    if got != reply:
        fail(f"{what or 'the reply'} is not what the protocol says",
             tried=f"sent {show_bytes(request, 80)}",
             expected=show_bytes(reply, 80), seen=show_bytes(got, 80),
             hint=line_ending_hint(got, reply) or hint, details=conversation(history))
    history.append((request, got))


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
