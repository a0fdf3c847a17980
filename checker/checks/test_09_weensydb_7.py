"""lesson 09 · weensydb-7: exch takes a bucket's lock only once

Version 7 handles one bucket; exch a b ∥ exch b a is still expected to
deadlock (ABBA), and ThreadSanitizer to report the lock-order inversion.
"""
from checker.checks.weensydb import Version, checks_for

globals().update(checks_for(Version(7, bucket_locks=True, abba="lesson 10")))
