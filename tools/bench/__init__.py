"""The course's benchmarks, each run as a module from the repository root (`make bench-NAME`):

    python3 -m tools.bench.weensydb    WeensyDB v4, v5, v8 and memcached under wdb_bench
    python3 -m tools.bench.c10k        v8, select, epoll, memcached: load and idle memory (a package)
    python3 -m tools.bench.pollers     one select(), poll(), epoll_wait() call, 10 to 10,000 fds
    python3 -m tools.bench.handshake   lesson 15's httpd beside nginx, packet by packet

toolkit.py holds what they share; wdb_bench.cc and bench_pollers.cc are the C++ load
generators (built to build/tools/).
"""
