"""lesson 12 · nonblocking: one thread, non-blocking sockets, a polling loop

Version 9 serves every client from one thread that never waits: no client
can block another, but the loop burns a core while nothing happens.
"""
from checker.checks import blocking, eventloop, protocol
from checker.checks.version import lesson_checks

globals().update(lesson_checks(
    "12-nonblocking",
    protocol.test_build, protocol.test_protocol, protocol.test_bad_input, protocol.test_pymemcache,
    protocol.test_short_io,
    blocking.test_never_close, blocking.test_half_request, blocking.test_slow_reader,
    eventloop.test_idle_cpu, eventloop.test_big_value, eventloop.test_pipelined,
    eventloop.test_split_request, eventloop.test_leaves,
))
