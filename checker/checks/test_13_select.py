"""lesson 13 · select: a select() event loop over per-connection state machines

Version 10 sleeps in select() until a socket is ready, so an idle server
uses no CPU; descriptors select() cannot watch are refused cleanly.
"""
from checker.checks import eventloop
from checker.checks.weensydb import Version, checks_for

VERSION = Version(10, threads=False, mutexes=False, event_loop=True, fd_setsize=True)
globals().update(checks_for(VERSION))
globals().update(eventloop.checks_for(VERSION))
