"""lesson 05 · weensydb-3: one mutex, held for a whole connection

Version 3 is race-free, and a bad client is expected to block everyone again:
its thread holds the mutex while it waits for the network.
"""
from checker.checks import blocking, locks, protocol, resources
from checker.checks.version import lesson_checks

globals().update(lesson_checks(
    "05-weensydb-3",
    protocol.test_build, protocol.test_protocol, protocol.test_bad_input, protocol.test_pymemcache,
    protocol.test_short_io, resources.test_no_fd_leak,
    blocking.test_never_close, blocking.test_half_request, blocking.test_slow_reader,
    locks.test_no_lock_across_io, locks.test_races,
))
