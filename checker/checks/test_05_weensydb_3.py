"""lesson 05 · weensydb-3: one mutex, held for a whole connection

Version 3 is race-free, and a bad client is expected to block everyone again:
its thread holds the mutex while it waits for the network.
"""
from checker.checks.weensydb import Version, checks_for

globals().update(checks_for(Version(3, blocks="lesson 06", lock_across_io="lesson 06")))
