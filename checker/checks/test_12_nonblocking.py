"""lesson 12 · nonblocking: one thread, non-blocking sockets, a polling loop

Version 9 serves every client from one thread that never waits: no client
can block another, but the loop burns a core while nothing happens.
"""
from checker.checks import eventloop
from checker.checks.weensydb import Version, checks_for

VERSION = Version(9, threads=False, mutexes=False, event_loop=True, idle_burn="lesson 13")
globals().update(checks_for(VERSION))
globals().update(eventloop.checks_for(VERSION))
