"""lesson 10 · weensydb-8: exch locks buckets in one global order

Version 8 must survive the same exch stress with no deadlock and TSan silent.
"""
from checker.checks.weensydb import Version, checks_for

globals().update(checks_for(Version(8, bucket_locks=True)))
