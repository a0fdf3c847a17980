"""Deadlocks in exch, which locks two buckets (versions 6-8, a mutex per bucket; with one
lock for the table, versions 1-4, exch cannot deadlock). Version 6 locks a shared bucket
twice on purpose, versions 6 and 7 lock in the keys' order (ABBA) on purpose. A hang
is diagnosed by the watchdog (checker/harness/deadlock.py), an ABBA order by TSan."""
import random
import tempfile

from checker.harness import LineClient, T, fail, note, read_reports, show_bytes
from checker.checks import wdb
from checker.checks.version import check
from checker.checks.weensydb import expect_reply, keep_tsan_output, server, tsan_server, watchdog


@check("exch of two keys in one bucket is answered", needs=["protocol"], when=("exch", "bucket_locks"),
       bug=("self_deadlock", "exch of two keys in one bucket hangs"))
def test_exch_same_bucket(target, v):
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
                     hint=f"version {v.number} holds both buckets' mutexes during the exchange, "
                          f"locking b1's and then b2's without asking whether they are the same "
                          f"mutex ({v.self_deadlock} asks): does yours hold both at once?")
            if seen != "EXCHANGED\\r\\n":
                fail("exch of two keys in one bucket got the wrong answer", tried=tried,
                     expected="EXCHANGED\\r\\n", seen=seen)
            note(f"exch {key1} {key2}: EXCHANGED (one bucket, locked once)")
            return
        diagnosis = watchdog(target, s.pid)
        if v.self_deadlock:
            note(f"no answer in {T(3):.0f}s; the watchdog looked inside:")
            for line in diagnosis:
                note("  " + line)
            return
        fail(f"exch of two keys in one bucket got no answer in {T(3):.0f}s: a deadlock",
             tried=tried, expected="EXCHANGED\\r\\n", seen="(nothing)", details=diagnosis,
             hint="a std::mutex locked twice by one thread never returns: when both "
                  "keys share a bucket, lock it once")


@check("exch a b ∥ exch b a never deadlocks, TSan silent", needs=["protocol"],
       when=("exch", "bucket_locks"), bug=("abba", "exch a b ∥ exch b a deadlocks (ABBA)"))
def test_exch_abba(target, v):
    key1, key2 = wdb.keys_in_different_buckets()
    with tempfile.TemporaryDirectory(prefix="tsan-") as logs:
        with tsan_server(target, logs) as s:
            stress = wdb.abba_stress(s.port, key1, key2, clients=4, rounds=150,
                                     stall=T(3))
            diagnosis = watchdog(target, s.pid) if stress.hung else []
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
        not_found = [e for e in stress.errors if "NOT_FOUND" in e]
        fail("exch under stress got wrong answers", tried=tried,
             expected="EXCHANGED\\r\\n every time", seen="\n".join(stress.errors[:3]),
             hint=("both keys exist, yet exch answered NOT_FOUND: is "
                   "exchange_items given each key with its own bucket, table[b1] with key1 and "
                   "table[b2] with key2? The lock order changes, not where each key lives")
             if not_found else "exch of two keys that exist must always answer EXCHANGED")
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


MANY_BUCKETS, KEYS_PER_BUCKET, PAIRS = 8, 6, 300


def many_pairs() -> tuple[list[str], list[tuple[str, str]]]:
    """48 keys, 6 in each of 8 buckets, and 300 exch of two of them, drawn with a fixed
    seed: most in two buckets, in either order, a few in one. Any order of locking that is
    not one order of the buckets (the keys' text, the first key, …) takes two buckets in
    both orders somewhere here."""
    groups = list(wdb.keys_by_bucket(MANY_BUCKETS, KEYS_PER_BUCKET).values())
    keys = [k for group in groups for k in group]
    pick = random.Random(8)
    pairs = []
    for n in range(PAIRS):
        g1 = pick.randrange(len(groups))
        g2 = g1 if n % 10 == 0 else pick.choice([g for g in range(len(groups)) if g != g1])
        k1 = pick.choice(groups[g1])
        k2 = pick.choice([k for k in groups[g2] if k != k1])
        pairs.append((k1, k2))
    return keys, pairs


@check(f"exch of {PAIRS} key pairs over {MANY_BUCKETS} buckets: TSan finds no lock-order inversion",
       needs=["exch_abba"], when="ordered_exch")
def test_exch_many_pairs(target, v):
    """The ABBA check uses one pair of keys, and an order that is right for one pair (the
    keys' alphabetical order, say) passes it. Here 300 pairs of 48 keys, 6 to a bucket: a
    lock order is only right if it is an order of the buckets themselves."""
    keys, pairs = many_pairs()
    tried = (f"the TSan build; {len(keys)} keys set, {KEYS_PER_BUCKET} in each of {MANY_BUCKETS} "
             f"buckets; then {PAIRS} exch of two of them, one after another on one connection, "
             f"e.g. `exch {pairs[1][0]} {pairs[1][1]}`, `exch {pairs[2][0]} {pairs[2][1]}`")
    with tempfile.TemporaryDirectory(prefix="tsan-") as logs:
        with tsan_server(target, logs) as s:
            with LineClient(s.port, timeout=T(5)) as client:
                for key in keys:
                    expect_reply(target, client, f"set {key} 0 0 1\r\nx\r\n".encode(), b"STORED\r\n")
                for k1, k2 in pairs:
                    expect_reply(target, client, f"exch {k1} {k2}\r\n".encode(), b"EXCHANGED\r\n",
                                 what=f"exch {k1} {k2} (buckets {wdb.bucket_of(k1)} and "
                                      f"{wdb.bucket_of(k2)})", server=s,
                                 hint="exch of two keys that exist answers EXCHANGED: is "
                                      "exchange_items given each key with its own bucket, "
                                      "table[b1] with key1 and table[b2] with key2?")
            s.stop()
        reports = read_reports(logs, source_dir=target.source_dir)
        saved = keep_tsan_output(target, logs, "exch-many-pairs") if reports else None
    inversions = [r for r in reports if "lock-order-inversion" in r.kind]
    others = [r for r in reports if r not in inversions and r.kind != "thread leak"]
    if inversions or others:
        fail("TSan reports a lock-order inversion (a deadlock waiting to happen)" if inversions
             else f"TSan reported {others[0].kind}",
             tried=tried, expected="TSan silent: every exch takes its two buckets in one global order",
             seen=f"{PAIRS} exch answered; " + "; ".join(r.summary() for r in (inversions + others)[:2]),
             details=[f"the whole TSan output: {saved}"],
             hint="an order that is right for one pair of keys is not enough: it must be one order "
                  "of the mutexes themselves, the same whichever keys lead to them. The bucket "
                  "number is such an order (lower first); the keys' text, or the first key, is "
                  "not: two keys can sort one way while their buckets sort the other")
    note(f"{PAIRS} exch over {len(keys)} keys in {MANY_BUCKETS} buckets, TSan silent")
