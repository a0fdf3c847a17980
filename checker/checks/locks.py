"""Locks and races in the threaded versions: what the lock tracer (tools/programs/lock_trace.cc,
preloaded) sees the server lock and do while holding a lock, and what ThreadSanitizer
finds under concurrent clients. Version 2 races on purpose, version 3 holds its mutex
during network I/O on purpose."""
import re
import tempfile

from checker.harness import LineClient, fail, note, read_reports
from checker.checks import wdb
from checker.checks.version import check
from checker.checks.weensydb import expect_reply, keep_tsan_output, traced_server, tsan_server


@check("no mutex is held during network I/O", needs=["protocol"], when="mutexes",
       bug=("lock_across_io", "a mutex is held during network I/O"))
def test_no_lock_across_io(target, v):
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


@check("requests on keys in different buckets lock different mutexes",
       needs=["no_lock_across_io"], when="bucket_locks")
def test_bucket_locks(target, v):
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


@check("TSan finds no data race under 6 clients' set/get/delete{v.workload_extra}", needs=["protocol"],
       when="threads",
       bug=("races", "TSan finds the race in the table"))
def test_races(target, v):
    with tempfile.TemporaryDirectory(prefix="tsan-") as logs:
        with tsan_server(target, logs) as s:
            pairs = wdb.workload_exch_pairs(v.exch, bool(v.self_deadlock))
            errors = wdb.concurrent_workload(s.port, clients=6, rounds=150, exch_pairs=pairs)
            s.stop()
        reports = [r for r in read_reports(logs, source_dir=target.source_dir)
                   if r.kind != "thread leak"]
        saved = keep_tsan_output(target, logs, "races") if reports else None
    races = [r for r in reports if r.kind.startswith("data race")]
    summaries = list(dict.fromkeys(r.summary() for r in reports))[:4]   # distinct ones
    if v.races:
        if not races:
            fail("TSan found no data race",
                 tried=f"the TSan build, 6 clients at once doing set/get/delete{v.workload_extra}",
                 expected=f"version {v.number}'s unprotected table to race",
                 seen=("TSan reported: " + "; ".join(summaries)) if summaries
                 else "no report at all" + (f"; clients saw: {errors[0]}" if errors else ""),
                 hint=f"this version has no lock on purpose: {v.races} adds one. Are "
                      f"the clients really served by several threads at once?")
        handed = [r for r in races if in_main(r)]
        if handed:
            fail("TSan found a race on a variable of main(), besides the table's",
                 tried=f"the TSan build, 6 clients at once doing set/get/delete{v.workload_extra}",
                 expected="the races of this version to be in the table only",
                 seen=handed[0].summary(),
                 details=[f"the whole TSan output: {saved}"],
                 hint="the new thread reads main's `client` after main has moved on: the next "
                      "accept writes it again (and it lives only as long as one turn of the "
                      "loop). Give the thread its own copy, by value: "
                      "std::thread(handle_connection, client), or a lambda that captures [client], "
                      "not [&]")
        note(f"TSan: {len(races)} data race report(s), e.g.")
        note("  " + races[0].summary())
        note(f"the whole TSan output: {saved}")
        return
    if reports or errors:
        fail(f"TSan reported {len(reports)} problem(s)" if reports
             else "clients got wrong answers under concurrency",
             tried=f"the TSan build, 6 clients at once doing set/get/delete{v.workload_extra}",
             expected="no ThreadSanitizer report",
             seen="\n".join(summaries or errors[:3]),
             details=[f"the whole TSan output: {saved}"] if saved else [],
             hint=race_hint(reports, v))
    note("6 clients × 150 requests each, TSan silent")


def in_main(report) -> bool:
    """A race one of whose sides is main() itself (not a thread it started): in these
    servers main only accepts clients and starts their threads."""
    return any(site.frame is not None and site.frame.short_function == "main" for site in report.sites)


_MUTEXES = re.compile(r"^\s*(?:Previous )?(?:atomic )?(?:read|write) of size \d+ .*? by .+? "
                      r"\(mutexes: ([^)]*)\):$", re.IGNORECASE)
_ACCESS_LINE = re.compile(r"^\s*(?:Previous )?(?:atomic )?(?:read|write) of size \d+ ", re.IGNORECASE)


def held_mutexes(report) -> list[set[str]]:
    """The mutexes each access of a data race report held (TSan's "(mutexes: write M13)")."""
    held = []
    for line in report.lines:
        if _ACCESS_LINE.match(line):
            m = _MUTEXES.match(line)
            held.append({word for word in (m.group(1).replace(",", " ").split() if m else [])
                         if word.startswith("M")})
    return held


def race_hint(reports, v) -> str:
    """The hint for TSan's reports, from what they show: the mutexes each side held, an
    unlock of a mutex nobody held, or no mutex at all."""
    kinds = {r.kind for r in reports}
    if any(k.startswith("unlock of an unlocked mutex") for k in kinds):
        return ("a mutex was unlocked that this thread did not hold: an unlock() with no lock() "
                "before it (when both keys share a bucket, the one mutex is locked once: unlock "
                "it once)")
    races = [r for r in reports if r.kind.startswith("data race")]
    for r in races:
        held = held_mutexes(r)
        if len(held) == 2 and held[0] and held[1] and not held[0] & held[1]:
            if v.bucket_locks:
                return ("both threads held a mutex, but not the same one: an item of bucket b may "
                        "be touched only with bucket_mutex[b] held, the one that protects that "
                        "bucket, for every key a request touches. Is each key's bucket locked, "
                        "and still locked when its item is used? (A lock_guard declared inside "
                        "an if or a { } block unlocks at its closing brace)")
            return ("both threads held a mutex, but not the same one: a lock keeps threads apart "
                    "only if it is one mutex, the same for every thread (a global beside the "
                    "table, not a variable of the function each thread runs)")
    if any(len(held) == 2 and (held[0] or held[1]) and not (held[0] and held[1])
           for held in map(held_mutexes, races)):
        return ("one side of the race held the mutex and the other did not: every access to the "
                "table, reads included, and every use of an item found in it, must be inside the "
                "lock; look for a lock released too early, or a path that takes none")
    return ("two threads touch the table at once and neither holds a mutex there (the lines "
            "above are where): is a lock taken on that path at all, and does its guard live "
            "until the table work is done? A lock_guard declared inside an if or a { } block "
            "unlocks at the end of it")
