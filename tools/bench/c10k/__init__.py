"""C10K side by side: WeensyDB v8 (threads), select and epoll against memcached -t 1.

    make bench-c10k                          (builds everything, then runs this)
    BENCH_SECONDS=10 BENCH_REPEAT=5 BENCH_CONNECTIONS=100 make bench-c10k
    BENCH_IDLE=1000,5000,10000 make bench-c10k
    /usr/bin/python3 -m tools.bench.c10k --seconds 2 --idle 1000 --no-doc

Every measurement is made on a freshly started server, on a free port:

1. Idle connections (idle.py): the benchmark opens IDLE[0] connections, then
   more up to IDLE[1]...; each one sends `get x` and waits for its `END`, so the
   server has accepted it and built all it needs to serve it. Then
   /proc/PID/status is read again: the growth of VmRSS (user resident), of
   threads x 16 KiB kernel stacks plus VmPTE (page tables), and of VmSize
   (virtual), per connection.
2. build/tools/wdb_bench, the course's load generator (load.py): CONNECTIONS
   closed-loop connections on CLIENT_THREADS threads for SECONDS, 90% get /
   10% set of 100-byte values, every reply checked: ops/s, p50 and p99 latency.
3. memcaslap (libmemcached-tools, memcaslap.py), a real memcached load
   generator, with the same connections, threads, seconds, mix and value size:
   ops/s, and p50/p99 estimated from its log2 latency histogram (within a
   factor of 2 at worst).
   Load runs go in REPEAT rounds, every server once per round; the table shows
   the median run.

One table (report.py), one row per server; ratios are to memcached's (ops/s ÷
memcached's in the same round; resident bytes, user + kernel, ÷ memcached's).
It is printed, and written between the markers in docs/c10k-bench.md (not with
--no-doc or --only). The servers and the workload are in plan.py; the command
line and the rounds in __main__.py.

This is a benchmark, not a test: numbers vary from run to run, and a limit
that stops a measurement (FD_SETSIZE, EMFILE, a server's own limit) is reported,
not failed. Every process it starts has a timeout and is killed with its whole
process group, Ctrl-C included. Exit status: 0, or 1 if the load generator is
missing or a server that exists failed to start, died, or answered wdb_bench wrongly.
"""
