"""The checks of lessons 03-10: WeensyDB versions 1 to 8.

Every version is checked by the same checks; what differs is what each
version is *expected* to show. Versions that are wrong on purpose (v1, v2,
v3, v6, v7) expect their bug, and the check passes when the bug is seen:

    ✓ TSan finds the race in the table (expected: lesson 05 fixes it)

A lesson's test module describes its version with a Version and calls
checks_for(version); the checks it returns become the module's tests.
"""
import pathlib
import re
import tempfile
from dataclasses import dataclass

from checker.harness import (CheckFailed, LineClient, LockTrace, T, check, diagnose_hang, fail, locktrace_env,
                     note, read_reports, show_bytes, start_server, start_tsan_server)
from checker.harness.target import ROOT, make
from checker.harness.tsan import read_log_text
from checker.checks import wdb

PROGRAM = "weensydb"


@dataclass
class Version:
    number: int                   # WeensyDB version, 1..8
    blocks: str | None = None     # a bad client blocks everyone: the lesson that fixes it
    races: str | None = None      # TSan finds a data race: the lesson that fixes it
    lock_across_io: str | None = None   # a mutex is held during network I/O: who fixes it
    self_deadlock: str | None = None    # exch in one bucket hangs: who fixes it
    abba: str | None = None       # exch a b ∥ exch b a deadlocks: who fixes it
    threads: bool = True          # one thread per connection (v1: none)
    mutexes: bool = True          # uses mutexes at all (v1, v2: no)
    bucket_locks: bool = False    # a mutex per bucket (v5 on)
    exch: bool = True             # answers exch (v5 refuses it: "SERVER_ERROR …")
    event_loop: bool = False      # one thread, non-blocking sockets (v9-v11, lessons 12-14)
    idle_burn: str | None = None  # the loop never sleeps (v9): the lesson that fixes it
    fd_setsize: bool = False      # refuses clients select() cannot watch (v10)
    many_connections: int = 0     # holds this many idle connections (v11: 10,000)


def expected(title: str, fixed_by: str | None, bug_title: str) -> str:
    return f"{bug_title} (expected: {fixed_by} fixes it)" if fixed_by else title


def checks_for(v: Version) -> dict:
    """The check functions for version v, keyed by test name (pytest collects them)."""
    checks = {}

    def add(function):
        checks[function.__name__] = function
        return function

    variants = ("plain", "tsan") if v.threads else ("plain", "asan") if v.fd_setsize else ("plain",)

    @add
    @check(f"builds ({', '.join(variants)})")
    def test_build(target):
        target.build([PROGRAM], variants=variants)
        if v.mutexes:
            make(["build/tools/liblocktrace.so"], what="the course's lock tracer")

    @add
    @check("set, get, delete" + (", exch" if v.exch else "") + " answer as the protocol says",
           needs=["build"])
    def test_protocol(target):
        silent_hint = ("not a byte came back: does the event loop wait for ready sockets "
                       "(select / epoll_wait) and serve the clients that are ready?"
                       if v.event_loop else None)
        with server(target) as s, LineClient(s.port) as client:
            closed_hint = None
            if v.event_loop:   # a client that says nothing at first: read() gives EAGAIN
                wdb.wait_until_accepted(s.proc.pid, T(5))
                closed_hint = ("this client was accepted and had sent nothing yet: a read() "
                               "that fails with EAGAIN means \"nothing now\", not an error, "
                               "so the connection must stay open")
            for request, reply in wdb.protocol_script(v.exch):
                hint = "the table in lesson 03's README lists every reply"
                if request.startswith(b"exch") and v.bucket_locks and v.exch:
                    hint = ("do_exch must lock both keys' buckets, swap the items with "
                            "exchange_items and answer EXCHANGED or NOT_FOUND (its TODO)")
                elif request.startswith(b"exch") and not v.exch:
                    hint = ("with a mutex per bucket and none for the table, exch would race: "
                            "version 5 refuses it (TODO 6) until lesson 08 locks two buckets")
                elif request.startswith(b"get") and request.count(b" ") > 4:
                    hint = ("a get of more than 4 keys reaches do_get in parts: END goes only "
                            "after the last part (request.last_part)")
                expect_reply(target, client, request, reply, hint=hint, silent_hint=silent_hint,
                             closed_hint=closed_hint)
            note(f"{len(wdb.protocol_script(v.exch))} requests on one connection, every reply right")

    @add
    @check("bad requests get their error line and the connection goes on", needs=["protocol"])
    def test_bad_input(target):
        with server(target) as s, LineClient(s.port) as client:
            for what, request, reply in wdb.BAD_INPUT:
                expect_reply(target, client, request, reply, what=what,
                             hint="bad input must cost the client one error line, never the "
                                  "connection: is the Command::invalid case answered with "
                                  "request.error?")
                expect_reply(target, client, b"get fine\r\n", b"END\r\n",
                             what=f"after {what}, a good request",
                             hint="after an error line the connection must go on as before")
            client.close()   # (versions 1 and 3 serve one client at a time)
            served, seen = wdb.second_client_served(s.port)
            if not served:
                fail("after the bad requests, another client got no answer",
                     tried="the bad requests on one connection, then a second client: set and get",
                     expected="the second client served", seen=seen,
                     hint="one client's bad input must never stop the server")
            note(f"{len(wdb.BAD_INPUT)} kinds of bad request, each answered, connection kept; "
                 f"another client served")

    @add
    @check("real memcached clients (pymemcache, libmemcached) set, get and delete", needs=["build"])
    def test_pymemcache(target):
        with server(target) as s:
            wdb.pymemcache_session(s.port)
            note("pymemcache: set (noreply and not), get, get_many, delete: all as memcached")
            note(wdb.libmemcached_session(s.port))

    # ---- blocking -------------------------------------------------------------

    blocked_hint = ("one thread serves everyone, so it must never wait for one client: "
                    "non-blocking sockets, and on EAGAIN go on to the next client"
                    if v.event_loop else
                    "the accept loop must hand each client to a thread of its own")

    def blocking_check(name, bad_title, bug_title, bad_client, try_it, hint):
        @check(expected(f"a second client is served while {bad_title}", v.blocks, bug_title),
               needs=["protocol"], id=name)
        def run_check(target):
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
                                   f"their client hangs up (a lock_guard at the top of "
                                   f"handle_connection), so the others wait: {v.blocks} changes that"
                                   if v.threads else
                                   f"version {v.number} serves one client at a time: main() calls "
                                   f"handle_connection itself, with no thread; {v.blocks} changes that"))
                    bad.close()
                    after, _ = wdb.second_client_served(s.port)
                    note(f"the second client got no answer in {T(2):.0f}s while {bad_title}")
                    if after:
                        note("once the bad client hung up, the next client was served at once")
                    note(f"try it: {try_it} 127.0.0.1 PORT, then nc 127.0.0.1 PORT")
                    return
                if not served:
                    details = []
                    if v.threads:
                        details = watchdog(target, s.proc.pid)
                    elif v.event_loop:
                        details = [f"the server's one thread is {what_it_does(s.proc.pid)}"]
                    fail(f"a second client got no answer while {bad_title}",
                         tried=f"{bad.describe()}, then a second client: set and get",
                         expected="the second client's set and get answered",
                         seen=seen, hint=hint if v.threads else blocked_hint, details=details)
                note(f"the second client's set and get were answered while {bad_title}")
        run_check.__name__ = f"test_{name}"
        checks[run_check.__name__] = run_check

    blocking_check(
        "never_close", "one client holds its connection open and idle",
        "a client that never hangs up blocks a second client",
        wdb.NeverClose, "build/tools/wdb_never_close",
        "a thread waiting in read() for its client must hold no lock: take it per request")
    blocking_check(
        "half_request", "one client has sent half a request",
        "a client that sent half a request blocks a second client",
        wdb.HalfRequest, "build/tools/wdb_half_request",
        "read the whole request (data block too) before taking any lock")
    blocking_check(
        "slow_reader", "one client never reads the large replies it asked for",
        "a client that never reads its replies blocks a second client",
        lambda s: wdb.NeverRead(s, event_loop=v.event_loop), "build/tools/wdb_never_read",
        "write() blocks while the client does not read: release every lock before writing")

    # ---- locks ----------------------------------------------------------------

    if v.mutexes:
        @add
        @check(expected("no mutex is held during network I/O", v.lock_across_io,
                        "a mutex is held during network I/O"), needs=["protocol"])
        def test_no_lock_across_io(target):
            with traced_server(target) as (s, trace):
                with LineClient(s.port) as client:
                    for request, reply in wdb.protocol_script(v.exch)[:8]:
                        expect_reply(target, client, request, reply)
                events = trace.read_new()
            io = [e for e in events if e.kind == "io"]
            locks = {e.addr for e in events if e.kind == "lock"}
            if not locks:
                fail("the lock tracer saw no mutex taken at all",
                     tried="8 requests with build/tools/liblocktrace.so preloaded",
                     expected="the table's mutex locked for each request",
                     seen="no pthread_mutex_lock calls",
                     hint="is the table protected by a std::mutex that every request locks?")
            shown = [e.describe() for e in io[:4]]
            if v.lock_across_io:
                if not io:
                    fail("no network I/O happened with a mutex held",
                         tried="8 requests with the lock tracer preloaded",
                         expected=f"version {v.number} to hold its mutex for the whole connection",
                         seen=f"{len(locks)} mutex(es) taken, none held during read() or write()",
                         hint=f"in this version the lock is taken once per connection; "
                              f"{v.lock_across_io} moves it")
                note(f"{len(io)} socket calls ran with the mutex held, e.g.")
                for line in shown[:2]:
                    note("  " + line)
                return
            if io:
                fail(f"{len(io)} socket calls ran while a mutex was held",
                     tried="8 requests with the lock tracer (build/tools/liblocktrace.so) preloaded",
                     expected="every mutex released before read() or write() on a socket",
                     seen="\n".join(shown),
                     hint="read the whole request first, then lock, run it, unlock, and only "
                          "then write the reply: a client can make read() or write() block "
                          "for ever")
            note(f"{len(locks)} mutex(es) taken, none held during a read() or write()")

    if v.bucket_locks:
        @add
        @check("requests on keys in different buckets lock different mutexes",
               needs=["no_lock_across_io"])
        def test_bucket_locks(target):
            key1, key2 = wdb.keys_in_different_buckets()
            with traced_server(target) as (s, trace), LineClient(s.port) as client:
                taken = []
                for key in (key1, key2):
                    trace.read_new()
                    expect_reply(target, client, f"set {key} 0 0 1\r\nx\r\n".encode(), b"STORED\r\n")
                    taken.append({e.addr for e in trace.read_new() if e.kind == "lock"})
            b1, b2 = wdb.bucket_of(key1), wdb.bucket_of(key2)
            tried = f"set {key1} (bucket {b1}), then set {key2} (bucket {b2}), lock tracer preloaded"
            if not taken[0] or not taken[1]:
                fail("a set took no mutex at all", tried=tried,
                     expected="each set to lock its bucket's mutex",
                     seen=f"mutexes taken: {len(taken[0])} and {len(taken[1])}",
                     hint="lock bucket_mutex[b] in do_set, do_get and do_delete")
            if taken[0] & taken[1]:
                fail("both sets locked the same mutex", tried=tried,
                     expected="two different mutexes: one per bucket",
                     seen=f"both took {', '.join(hex(a) for a in sorted(taken[0] & taken[1]))}",
                     hint="one mutex for the whole table lets one request at a time in; give "
                          "each bucket its own (bucket_mutex[NBUCKETS]) and lock only the key's")
            note(f"bucket {b1} and bucket {b2}: two different mutexes")

    # ---- races ----------------------------------------------------------------

    if v.threads:
        @add
        @check(expected("TSan finds no data race under 6 clients' set/get/delete", v.races,
                        "TSan finds the race in the table"), needs=["protocol"])
        def test_races(target):
            with tempfile.TemporaryDirectory(prefix="tsan-") as logs:
                with tsan_server(target, logs) as s:
                    errors = wdb.concurrent_workload(s.port, clients=6, rounds=150)
                    s.stop()
                reports = [r for r in read_reports(logs, source_dir=target.source_dir)
                           if r.kind != "thread leak"]
                saved = keep_tsan_output(target, logs, "races") if reports else None
            races = [r for r in reports if r.kind.startswith("data race")]
            summaries = list(dict.fromkeys(r.summary() for r in reports))[:4]   # distinct ones
            if v.races:
                if not races:
                    fail("TSan found no data race",
                         tried="the TSan build, 6 clients at once doing set/get/delete",
                         expected=f"version {v.number}'s unprotected table to race",
                         seen=("TSan reported: " + "; ".join(summaries)) if summaries
                         else "no report at all" + (f"; clients saw: {errors[0]}" if errors else ""),
                         hint=f"this version has no lock on purpose: {v.races} adds one. Are "
                              f"the clients really served by several threads at once?")
                note(f"TSan: {len(races)} data race report(s), e.g.")
                note("  " + races[0].summary())
                note(f"the whole TSan output: {saved}")
                return
            if reports or errors:
                fail(f"TSan reported {len(reports)} problem(s)" if reports
                     else "clients got wrong answers under concurrency",
                     tried="the TSan build, 6 clients at once doing set/get/delete",
                     expected="no ThreadSanitizer report",
                     seen="\n".join(summaries or errors[:3]),
                     details=[f"the whole TSan output: {saved}"] if saved else [],
                     hint="two threads touch the table at once with no mutex held by both; the "
                          "lines above are where")
            note("6 clients × 150 requests each, TSan silent")

    # ---- deadlocks ------------------------------------------------------------

    if v.exch and v.bucket_locks:   # with one lock for the table (v1-v4) exch cannot deadlock
        @add
        @check(expected("exch of two keys in one bucket is answered", v.self_deadlock,
                        "exch of two keys in one bucket hangs"), needs=["protocol"])
        def test_exch_same_bucket(target):
            key1, key2 = wdb.keys_in_same_bucket()
            with server(target) as s:
                with LineClient(s.port) as setup:
                    for key in (key1, key2):
                        expect_reply(target, setup, f"set {key} 0 0 1\r\n{key[-1]}\r\n".encode(),
                                     b"STORED\r\n")
                request = f"exch {key1} {key2}\r\n".encode()
                answered, seen = wdb.answered_within(s.port, request, T(3))
                tried = (f"set {key1} and {key2} (both in bucket {wdb.bucket_of(key1)}), "
                         f"then {show_bytes(request)}")
                if answered:
                    if v.self_deadlock:
                        fail("exch of two keys in one bucket was answered", tried=tried,
                             expected="the thread to lock the bucket's mutex twice, and hang",
                             seen=seen,
                             hint=f"version {v.number} locks b1 then b2 without asking whether "
                                  f"they are the same: {v.self_deadlock} does")
                    if seen != "EXCHANGED\\r\\n":
                        fail("exch of two keys in one bucket got the wrong answer", tried=tried,
                             expected="EXCHANGED\\r\\n", seen=seen)
                    note(f"exch {key1} {key2}: EXCHANGED (one bucket, locked once)")
                    return
                diagnosis = watchdog(target, s.proc.pid)
                if v.self_deadlock:
                    note(f"no answer in {T(3):.0f}s; the watchdog looked inside:")
                    for line in diagnosis:
                        note("  " + line)
                    return
                fail(f"exch of two keys in one bucket got no answer in {T(3):.0f}s: a deadlock",
                     tried=tried, expected="EXCHANGED\\r\\n", seen="(nothing)", details=diagnosis,
                     hint="a std::mutex locked twice by one thread never returns: when both "
                          "keys share a bucket, lock it once")

        @add
        @check(expected("exch a b ∥ exch b a never deadlocks, TSan silent", v.abba,
                        "exch a b ∥ exch b a deadlocks (ABBA)"), needs=["protocol"])
        def test_exch_abba(target):
            key1, key2 = wdb.keys_in_different_buckets()
            with tempfile.TemporaryDirectory(prefix="tsan-") as logs:
                with tsan_server(target, logs) as s:
                    stress = wdb.abba_stress(s.port, key1, key2, clients=4, rounds=150,
                                             stall=T(3))
                    diagnosis = watchdog(target, s.proc.pid) if stress.hung else []
                    s.stop()
                reports = read_reports(logs, source_dir=target.source_dir)
                saved = keep_tsan_output(target, logs, "exch-abba") if reports else None
            inversions = [r for r in reports if "lock-order-inversion" in r.kind]
            # Data races are the races check's business (v2 has them on purpose).
            others = [r for r in reports if r not in inversions and r.kind != "thread leak"
                      and not (v.races and r.kind.startswith("data race"))]
            tried = (f"the TSan build; 4 clients, 2 sending `exch {key1} {key2}` and 2 "
                     f"`exch {key2} {key1}` (buckets {wdb.bucket_of(key1)} and "
                     f"{wdb.bucket_of(key2)}), 150 times each")
            if v.abba:
                if not inversions and not stress.hung:   # (errors: shown below)
                    fail("no deadlock, and no lock-order-inversion from TSan", tried=tried,
                         expected="the two orders of locking to be caught",
                         seen=f"{stress.done} exch answered, TSan silent",
                         hint=f"this version locks in the order of the keys on purpose: "
                              f"{v.abba} fixes that")
                if inversions:
                    note("TSan: " + inversions[0].summary())
                if stress.hung:
                    note(f"and the server really hung after {stress.done} exch; the watchdog:")
                    for line in diagnosis:
                        note("  " + line)
                return
            if stress.errors and not stress.hung:
                fail("exch under stress got wrong answers", tried=tried,
                     expected="EXCHANGED\\r\\n every time", seen="\n".join(stress.errors[:3]),
                     hint="exch of two keys that exist must always answer EXCHANGED")
            if stress.hung or inversions or others:
                what = ("the server deadlocked" if stress.hung else
                        "TSan reports a lock-order inversion (a deadlock waiting to happen)"
                        if inversions else f"TSan reported {others[0].kind}")
                fail(what, tried=tried, expected="every exch answered, TSan silent",
                     seen=f"{stress.done} exch answered" + (f", then nothing for {T(3):.0f}s"
                                                            if stress.hung else ""),
                     details=diagnosis + [r.summary() for r in (inversions + others)[:3]]
                     + ([f"the whole TSan output: {saved}"] if saved else []),
                     hint="lock the two buckets in one global order (lower number first), "
                          "whatever the order of the keys")
            note(f"{stress.done} exch answered, no deadlock, no lock-order inversion"
                 + (" (the data races are the check above's)" if v.races else ", TSan silent"))

    return checks


# ---- helpers ------------------------------------------------------------------

def what_it_does(pid: int) -> str:
    from checker.checks.eventloop import what_it_does as describe   # (eventloop imports this module)
    return describe(pid)


def server(target):
    return start_server(target.binary(PROGRAM))


def watchdog(target, pid) -> list[str]:
    """What a hung server's threads wait for; bucket mutexes named by bucket number."""
    size = 40   # sizeof(std::mutex) on Linux (a pthread_mutex_t)
    return [re.sub(r"'bucket_mutex \+ (\d+)'", lambda m: f"bucket_mutex[{int(m.group(1)) // size}]",
                   re.sub(r"'bucket_mutex'", "bucket_mutex[0]", line))
            for line in diagnose_hang(pid, source_dir=target.source_dir)]


def keep_tsan_output(target, logs, name) -> str:
    """Copies TSan's whole output to build/tsan/, where the student can read it after the run."""
    path = ROOT / "build" / "tsan" / f"{target.lesson}-{name}.txt"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(read_log_text(logs))
    return target.shown(path)


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


def expect_reply(target, client, request: bytes, reply: bytes, what: str | None = None, hint=None,
                 silent_hint=None, closed_hint=None):
    client.send(request)
    try:
        got = wdb.read_reply(client)
    except CheckFailed as failure:
        fail(f"{what or 'the reply'} never came whole: {failure.what}",
             tried=f"sent {show_bytes(request, 80)}", expected=show_bytes(reply, 80),
             seen=failure.seen or "(nothing)",
             hint=(closed_hint or
                   "the server hung up without answering: does handle_connection write each "
                   "request's reply, and loop until read_request returns false?")
             if "closed the connection" in failure.what else
             silent_hint if silent_hint and failure.seen in (None, "", "(no bytes)") else
             "every reply line ends in \\r\\n, and a get reply with END\\r\\n")
    if got != reply:
        fail(f"{what or 'the reply'} is not what the protocol says",
             tried=f"sent {show_bytes(request, 80)}",
             expected=show_bytes(reply, 80), seen=show_bytes(got, 80), hint=hint)
