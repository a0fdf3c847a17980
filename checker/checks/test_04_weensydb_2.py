"""lesson 04 · weensydb-2: a thread per connection

Version 2 serves every client on a thread of its own: bad clients block
nobody now, and ThreadSanitizer is expected to find the race on the table.
"""
from checker.checks import blocking, locks, protocol, resources
from checker.checks.version import lesson_checks

globals().update(lesson_checks(
    "04-weensydb-2",
    protocol.test_build, protocol.test_protocol, protocol.test_bad_input, protocol.test_pymemcache,
    protocol.test_short_io, resources.test_no_fd_leak, resources.test_out_of_descriptors,
    blocking.test_never_close, blocking.test_half_request, blocking.test_slow_reader,
    locks.test_races,
))
