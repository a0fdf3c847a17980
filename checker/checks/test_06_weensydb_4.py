"""lesson 06 · weensydb-4: one mutex per request, never held across network I/O

Version 4 must be race-free, and no bad or slow client may block anyone.
"""
from checker.checks.weensydb import Version, checks_for

globals().update(checks_for(Version(4)))
