"""lesson 14 · epoll: the same state machine over epoll

Version 11 keeps its watch list in the kernel: 10,000 idle connections cost
an active client nothing, and no descriptor is too high to watch.
"""
from checker.checks import blocking, eventloop, protocol
from checker.checks.version import lesson_checks

globals().update(lesson_checks(
    "14-epoll",
    protocol.test_build, protocol.test_protocol, protocol.test_bad_input, protocol.test_pymemcache,
    protocol.test_short_io,
    blocking.test_never_close, blocking.test_half_request, blocking.test_slow_reader,
    eventloop.test_idle_cpu, eventloop.test_big_value, eventloop.test_pipelined,
    eventloop.test_split_request, eventloop.test_leaves, eventloop.test_stop_continue,
    eventloop.test_many_connections,
))
