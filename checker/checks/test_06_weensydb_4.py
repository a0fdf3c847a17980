"""lesson 06 · weensydb-4: one mutex per request, never held across network I/O

Version 4 must be race-free, and no bad or slow client may block anyone.
"""
from checker.checks import blocking, locks, protocol, resources
from checker.checks.version import lesson_checks

globals().update(lesson_checks(
    "06-weensydb-4",
    protocol.test_build, protocol.test_protocol, protocol.test_bad_input, protocol.test_pymemcache,
    protocol.test_short_io, resources.test_no_fd_leak,
    blocking.test_never_close, blocking.test_half_request, blocking.test_slow_reader,
    locks.test_no_lock_across_io, locks.test_races,
))
