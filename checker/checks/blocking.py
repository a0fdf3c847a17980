"""Bad clients must not block good ones: a client that never hangs up, one that sent
half a request, one that never reads its replies (the wdb_* programs in tools/programs
do the same, for trying by hand). Versions 1 and 3 block on purpose."""
from checker.harness import T, fail, note, thread_states
from checker.checks import eventloop, wdb
from checker.checks.version import check
from checker.checks.weensydb import hang_hint, server, watchdog, what_it_does


@check("a second client is served while one client holds its connection open and idle",
       needs=["protocol"], bug=("blocks", "a client that never hangs up blocks a second client"))
def test_never_close(target, v):
    second_client_while(
        target, v, wdb.NeverClose, "one client holds its connection open and idle",
        try_it="build/tools/wdb_never_close",
        hint="a thread waiting in read() for its client must hold no lock: take it per request")


@check("a second client is served while one client has sent half a request",
       needs=["protocol"], bug=("blocks", "a client that sent half a request blocks a second client"))
def test_half_request(target, v):
    second_client_while(
        target, v, wdb.HalfRequest, "one client has sent half a request",
        try_it="build/tools/wdb_half_request",
        hint="read the whole request (data block too) before taking any lock")


@check("a second client is served while one client never reads the large replies it asked for",
       needs=["protocol"], bug=("blocks", "a client that never reads its replies blocks a second client"))
def test_slow_reader(target, v):
    second_client_while(
        target, v, lambda s: wdb.NeverRead(s, event_loop=v.event_loop),
        "one client never reads the large replies it asked for",
        try_it="build/tools/wdb_never_read",
        hint="write() blocks while the client does not read: release every lock before writing")


def second_client_while(target, v, bad_client, bad_title: str, try_it: str, hint: str):
    """A bad client connects, then a second client sends set and get: answered, or (in a
    version that blocks on purpose) not answered until the bad client hangs up."""
    with server(target) as s, bad_client(s) as bad:
        served, seen = wdb.second_client_served(s.port)
        if v.blocks:
            if served:
                fail(f"a second client was served while {bad_title}",
                     tried=f"{bad.describe()}, then a second client: set and get",
                     expected=f"version {v.number} to make the second client wait "
                              f"(that is this lesson's point)",
                     seen=seen,
                     hint=(f"version {v.number}'s threads each hold table_mutex until "
                           f"their client hangs up (a named lock_guard at the top of "
                           f"handle_connection), so the others wait: {v.blocks} changes that. "
                           f"If yours does, is it one mutex for every thread (a global beside "
                           f"the table, not a variable of handle_connection)?"
                           if v.threads else
                           f"version {v.number} serves one client at a time: main() calls "
                           f"handle_connection itself, with no thread; {v.blocks} changes that"))
            bad.close()
            after, seen_after = wdb.second_client_served(s.port)
            if not after:
                details = watchdog(target, s.pid) if v.threads else \
                    [f"the server's one thread is {what_it_does(s.pid)}"]
                fail("once the bad client hung up, the next client was still not served",
                     tried=f"{bad.describe()}, then a second client (made to wait, as expected); "
                           f"then the bad client hung up, and a third client sent set and get",
                     expected="the third client served: the bad client's thread has ended",
                     seen=seen_after, details=details,
                     hint=after_bad_client_hint(target, s.pid, v))
            note(f"the second client got no answer in {T(2):.0f}s while {bad_title}")
            note("once the bad client hung up, the next client was served at once")
            note(f"try it: {try_it} 127.0.0.1 PORT, then nc 127.0.0.1 PORT")
            return
        if not served:
            details = []
            if v.threads:
                details = watchdog(target, s.pid)
                hint = blocked_hint(s.pid, hint)
            elif v.event_loop:   # what it is doing, from /proc, and the hint that fits it
                there, fitting = eventloop.stuck(s, v)
                details = [there]
                hint = fitting or ("one thread serves everyone, so it must never wait for one "
                                   "client: non-blocking sockets, and on EAGAIN go on to the next")
            else:
                hint = "the accept loop must hand each client to a thread of its own"
            fail(f"a second client got no answer while {bad_title}",
                 tried=f"{bad.describe()}, then a second client: set and get",
                 expected="the second client's set and get answered",
                 seen=seen, hint=hint, details=details)
        note(f"the second client's set and get were answered while {bad_title}")


def after_bad_client_hint(target, pid, v) -> str:
    """Why nobody is served after the client that held everyone up has gone."""
    if not v.threads:
        return ("when its client hangs up, handle_connection must close the socket and return, "
                "so that main() accepts the next client")
    hint, _ = hang_hint(target, pid)
    return hint or ("the bad client's thread must release table_mutex when its client leaves, "
                    "whichever way it leaves (a std::lock_guard does)")


def blocked_hint(pid, hint: str) -> str:
    """The hint for a thread-per-connection server that served nobody else while a bad client
    was connected, from what its threads are doing: the check's own hint (a lock held while
    waiting for a client) unless the threads show another cause."""
    try:
        threads = [t for t in thread_states(pid) if t.state != "Z"]
    except OSError:
        return hint
    if len(threads) == 1:
        return ("the server has one thread: main() serves the client itself, and while it waits "
                "for one client, nobody accepts the next. Hand each client to a thread of its "
                "own, detached, and go straight back to accept")
    if any(t.wait == "join" for t in threads):
        return ("main() waits for the client's thread to end (join), so it accepts nobody "
                "meanwhile: detach() the thread instead")
    return hint
