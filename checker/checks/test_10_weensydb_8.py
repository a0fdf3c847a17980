"""lesson 10 · weensydb-8: exch locks buckets in one global order

Version 8 must survive the same exch stress with no deadlock and TSan silent.
"""
from checker.checks import blocking, deadlocks, locks, protocol
from checker.checks.version import lesson_checks

globals().update(lesson_checks(
    "10-weensydb-8",
    protocol.test_build, protocol.test_protocol, protocol.test_bad_input, protocol.test_pymemcache,
    protocol.test_short_io,
    blocking.test_never_close, blocking.test_half_request, blocking.test_slow_reader,
    locks.test_no_lock_across_io, locks.test_bucket_locks, locks.test_races,
    deadlocks.test_exch_same_bucket, deadlocks.test_exch_abba, deadlocks.test_exch_many_pairs,
))
