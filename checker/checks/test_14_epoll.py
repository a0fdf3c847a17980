"""lesson 14 · epoll: the same state machine over epoll

Version 11 keeps its watch list in the kernel: 10,000 idle connections cost
an active client nothing, and no descriptor is too high to watch.
"""
from checker.checks import eventloop
from checker.checks.weensydb import Version, checks_for

VERSION = Version(11, threads=False, mutexes=False, event_loop=True, many_connections=10_000)
globals().update(checks_for(VERSION))
globals().update(eventloop.checks_for(VERSION))
