"""lesson 03 · weensydb-1: a key-value server, one client at a time

The student's program: `weensydb -p PORT`, WeensyDB version 1. It must speak
the protocol; being single-threaded, a bad client is expected to block others.
"""
from checker.checks import blocking, protocol, resources
from checker.checks.version import lesson_checks

globals().update(lesson_checks(
    "03-weensydb-1",
    protocol.test_build, protocol.test_protocol, protocol.test_bad_input, protocol.test_pymemcache,
    protocol.test_short_io, resources.test_no_fd_leak,
    blocking.test_never_close, blocking.test_half_request, blocking.test_slow_reader,
))
