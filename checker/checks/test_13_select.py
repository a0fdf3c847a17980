"""lesson 13 · select: a select() event loop over per-connection state machines

Version 10 sleeps in select() until a socket is ready, so an idle server
uses no CPU; descriptors select() cannot watch are refused cleanly.
"""
from checker.checks import blocking, eventloop, protocol
from checker.checks.version import lesson_checks

globals().update(lesson_checks(
    "13-select",
    protocol.test_build, protocol.test_protocol, protocol.test_bad_input, protocol.test_pymemcache,
    protocol.test_short_io,
    blocking.test_never_close, blocking.test_half_request, blocking.test_slow_reader,
    eventloop.test_idle_cpu, eventloop.test_big_value, eventloop.test_pipelined,
    eventloop.test_split_request, eventloop.test_leaves, eventloop.test_fd_setsize,
))
