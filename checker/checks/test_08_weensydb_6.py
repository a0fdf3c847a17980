"""lesson 08 · weensydb-6: exch, locking both buckets

Version 6 is expected to hang on an exch of two keys in one bucket, and
to deadlock under exch a b ∥ exch b a.
"""
from checker.checks.weensydb import Version, checks_for

globals().update(checks_for(Version(6, bucket_locks=True, self_deadlock="lesson 09", abba="lesson 10")))
