"""What every WeensyDB version must do: build, speak the protocol, answer bad input with
its error line, and work with real memcached clients (pymemcache, libmemcached)."""
import tempfile
import pathlib

from checker.harness import CheckFailed, LineClient, T, fail, note
from checker.harness.faults import faults_env, read_faults
from checker.harness.target import make
from checker.checks import eventloop, wdb
from checker.checks.version import check
from checker.checks.weensydb import expect_reply, hang_hint, server, server_gone


@check("builds ({v.variant_names})")
def test_build(target, v):
    target.build()   # weensydb, in the variants course.toml lists for the lesson
    if v.mutexes:
        make(["build/tools/liblocktrace.so"], what="the course's lock tracer")


@check("{v.commands} answer as the protocol says", needs=["build"])
def test_protocol(target, v):
    with server(target) as s, LineClient(s.port) as client:
        # An event loop that does not answer: what it is doing, from /proc (eventloop.stuck).
        silent_hint = (lambda: eventloop.silent_hint(s, v)) if v.event_loop else None
        closed_hint = None
        if v.event_loop:   # a client that says nothing at first: read() gives EAGAIN
            wdb.wait_until_accepted(s.pid, T(5))
            closed_hint = ("this client was accepted and had sent nothing yet: a read() "
                           "that fails with EAGAIN means \"nothing now\", not an error, "
                           "so the connection must stay open")
        for request, reply in wdb.protocol_script(v.exch):
            expect_reply(target, client, request, reply, hint=reply_hint(request, reply, v),
                         silent_hint=silent_hint, closed_hint=closed_hint,
                         server=None if v.event_loop else s)
        note(f"{len(wdb.protocol_script(v.exch))} requests on one connection, every reply right")


NO_REPLY_ANSWERS = (b"STORED\r\n", b"DELETED\r\n", b"NOT_FOUND\r\n")


def reply_hint(request: bytes, reply: bytes, v):
    """The hint for a wrong reply, chosen by how it differs: a function of the bytes that came."""
    def hint(got: bytes) -> str:
        if b" noreply" in request and got.startswith(NO_REPLY_ANSWERS) and not reply.startswith(got):
            return ("a set or delete that says noreply gets no reply at all, not even STORED: its "
                    "client reads none, so this answer is taken for the next request's")
        if got.startswith(b"SERVER_ERROR") and not reply.startswith(b"SERVER_ERROR"):
            said = got.split(b"\r\n")[0].decode(errors="replace")
            return (f"the server answered `{said}` where the request should have been served: "
                    "that line is the server saying what failed on its side, before the table")
        if request.startswith(b"get"):
            keys, found = len(request.split()) - 1, reply.count(b"VALUE ")
            if got.count(b"VALUE ") < found:
                return (f"this get names {keys} keys and {found} of them are stored: a VALUE "
                        f"block for each key found, in the order asked (a loop over request.keys)")
            if got.count(b"END\r\n") != reply.count(b"END\r\n") and keys > GET_KEYS_PER_PART:
                return (f"a get of more than {GET_KEYS_PER_PART} keys reaches do_get in parts: END "
                        f"goes only after the last part (request.last_part)")
        if request.startswith(b"exch") and v.bucket_locks and v.exch:
            return ("do_exch must lock both keys' buckets, swap the items with "
                    "exchange_items and answer EXCHANGED or NOT_FOUND (its TODO)")
        if request.startswith(b"exch") and not v.exch:
            return ("with a mutex per bucket and none for the table, exch would race: "
                    "version 5 refuses it (TODO 6) until lesson 08 locks two buckets")
        return "the table in lesson 03's README lists every reply"
    return hint


GET_KEYS_PER_PART = 4   # common/wdb_request.h


@check("bad requests get their error line and the connection goes on", needs=["protocol"])
def test_bad_input(target, v):
    with server(target) as s, LineClient(s.port) as client:
        silent_hint = (lambda: eventloop.silent_hint(s, v)) if v.event_loop else None
        for what, request, reply in wdb.BAD_INPUT:
            expect_reply(target, client, request, reply, what=what,
                         hint="bad input must cost the client one error line, never the "
                              "connection: is the Command::invalid case answered with "
                              "request.error?", server=None if v.event_loop else s,
                         silent_hint=silent_hint)
            expect_reply(target, client, b"get fine\r\n", b"END\r\n",
                         what=f"after {what}, a good request",
                         hint="after an error line the connection must go on as before",
                         closed_hint=f"the server hung up after answering {what} with its error "
                                     f"line: bad input must cost the client that one line, never "
                                     f"the connection; keep reading requests",
                         server=None if v.event_loop else s, silent_hint=silent_hint)
        client.close()   # (versions 1 and 3 serve one client at a time)
        served, seen = wdb.second_client_served(s.port)
        if not served:
            there, hint = eventloop.stuck(s, v) if v.event_loop else ("", None)
            fail("after the bad requests, another client got no answer",
                 tried="the bad requests on one connection, then a second client: set and get",
                 expected="the second client served", seen=seen, details=[there] if there else [],
                 hint=hint or "one client's bad input must never stop the server")
        note(f"{len(wdb.BAD_INPUT)} kinds of bad request, each answered, connection kept; "
             f"another client served")


@check("real memcached clients (pymemcache, libmemcached) set, get and delete", needs=["build"])
def test_pymemcache(target, v):
    with server(target) as s:
        try:
            wdb.pymemcache_session(s.port)
            note("pymemcache: set (noreply and not), get, get_many, delete: all as memcached")
            note(wdb.libmemcached_session(s.port))
        except CheckFailed as failure:
            if not v.event_loop:
                with_server_state(failure, target, s)
            # An event loop that stopped answering: say what it is doing, not how strict
            # pymemcache's parser is (the failure is a timeout, not a malformed reply).
            elif any(w in (failure.seen or "") for w in ("Timeout", "timed out", "still running")):
                failure.hint = eventloop.silent_hint(s, v)
            raise


def with_server_state(failure, target, s):
    """A client's failure, told by what the server did: died (by which signal), or, when the
    client waited in vain, what its threads are doing (from /proc)."""
    crash = server_gone(s, wait=True)
    waited = any(words in (failure.seen or "") for words in ("timed out", "still running"))
    if crash:
        failure.hint, more = crash
        failure.details += more
    elif waited:
        hint, more = hang_hint(target, s.pid)
        if hint:
            failure.hint = hint
        failure.details += more


SHORT_IO_HINT = ("a read() may return fewer bytes than a whole request and a write() may take "
                 "fewer than asked: keep what was read, write the rest later")


EVENT_LOOP_PARTIAL_HINT = ("the reply stopped part-way: a write() that took part of the output "
                           "must be told to the connection (c.sent(n) with the n write returned), "
                           "and the rest written when the socket is writable again")


def closed_under_faults(log):
    """The hint for a connection that ended under the fault injector, worked out when it
    ended: an EINTR taken for the end of the connection, if the log shows one."""
    def hint():
        faults = read_faults(log)
        last = faults[-1] if faults else None
        if last is not None and last.kind == "eintr" and last.call in ("write", "send", "sendto"):
            return (f"the server hung up just after a {last.call}() failed with EINTR: a call "
                    f"interrupted by a signal moved nothing, and the client is still there: "
                    f"call it again (write_all does)")
        if any(f.kind == "eintr" and f.call in ("read", "recv") for f in faults):
            return ("the server hung up after a read() failed with EINTR: a call interrupted by a "
                    "signal moved nothing and is not the end of the connection: call it again")
        return "the server hung up in the middle of the conversation: " + SHORT_IO_HINT
    return hint


@check("answers the same when the kernel cuts its reads and writes short or interrupts them",
       needs=["protocol"])
def test_short_io(target, v):
    """The protocol script again, with the server under the fault injector: every read asks
    for at most 3 bytes, every write moves at most 5, and every 4th call on a blocking
    socket fails with EINTR. All of it the kernel may do (read(2), write(2), signal(7))."""
    with tempfile.TemporaryDirectory(prefix="netcourse-faults-") as tmp:
        log = pathlib.Path(tmp) / "faults"
        env = faults_env(log, short_send=5, short_recv=3, eintr=4)
        with server(target, env=env) as s, LineClient(s.port) as client:
            if v.event_loop:
                wdb.wait_until_accepted(s.pid, T(5))
            try:
                for request, reply in wdb.protocol_script(v.exch):
                    expect_reply(target, client, request, reply, hint=SHORT_IO_HINT,
                                 closed_hint=closed_under_faults(log),
                                 silent_hint=(lambda: eventloop.silent_hint(s, v)) if v.event_loop else None,
                                 partial_hint=EVENT_LOOP_PARTIAL_HINT if v.event_loop else None,
                                 server=None if v.event_loop else s)
            except Exception:
                faults = read_faults(log)
                if faults:
                    note("the fault injector had made: " + "; ".join(str(f) for f in faults[-3:]))
                raise
        faults = read_faults(log)
    kinds = sorted({f"{f.kind} {f.call}" for f in faults})
    note(f"{len(wdb.protocol_script(v.exch))} requests, every reply right, through "
         f"{len(faults)}{'+' if len(faults) >= 1000 else ''} faults ({', '.join(kinds)})")
