"""lesson 09 · weensydb-7: exch takes a bucket's lock only once

Version 7 handles one bucket; exch a b ∥ exch b a is still expected to
deadlock (ABBA), and ThreadSanitizer to report the lock-order inversion.
"""
from checker.checks import blocking, deadlocks, locks, protocol
from checker.checks.version import lesson_checks

globals().update(lesson_checks(
    "09-weensydb-7",
    protocol.test_build, protocol.test_protocol, protocol.test_bad_input, protocol.test_pymemcache,
    protocol.test_short_io,
    blocking.test_never_close, blocking.test_half_request, blocking.test_slow_reader,
    locks.test_no_lock_across_io, locks.test_bucket_locks, locks.test_races,
    deadlocks.test_exch_same_bucket, deadlocks.test_exch_abba,
))
