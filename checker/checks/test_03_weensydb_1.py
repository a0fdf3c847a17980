"""lesson 03 · weensydb-1: a key-value server, one client at a time

The student's program: `weensydb -p PORT`, WeensyDB version 1. It must speak
the protocol; being single-threaded, a bad client is expected to block others.
"""
from checker.checks.weensydb import Version, checks_for

globals().update(checks_for(Version(1, blocks="lesson 04", threads=False, mutexes=False)))
