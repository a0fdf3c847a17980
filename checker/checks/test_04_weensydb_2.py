"""lesson 04 · weensydb-2: a thread per connection

Version 2 serves every client on a thread of its own: bad clients block
nobody now, and ThreadSanitizer is expected to find the race on the table.
"""
from checker.checks.weensydb import Version, checks_for

globals().update(checks_for(Version(2, races="lesson 05", mutexes=False)))
