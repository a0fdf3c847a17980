"""lesson 07 · weensydb-5: a mutex per bucket

Version 5 locks only the bucket a request uses. exch waits for lesson 08.
"""
from checker.checks.weensydb import Version, checks_for

globals().update(checks_for(Version(5, bucket_locks=True, exch=False)))
