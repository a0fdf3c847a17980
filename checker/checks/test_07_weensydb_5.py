"""lesson 07 · weensydb-5: a mutex per bucket

Version 5 locks only the bucket a request uses. exch waits for lesson 08.
"""
from checker.checks import blocking, locks, protocol
from checker.checks.version import lesson_checks

globals().update(lesson_checks(
    "07-weensydb-5",
    protocol.test_build, protocol.test_protocol, protocol.test_bad_input, protocol.test_pymemcache,
    protocol.test_short_io,
    blocking.test_never_close, blocking.test_half_request, blocking.test_slow_reader,
    locks.test_no_lock_across_io, locks.test_bucket_locks, locks.test_races,
))
