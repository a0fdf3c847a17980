"""Mutants of lesson 11's c10k_threads: each gets one measurement or one limit wrong."""
from . import Mutant

FILE = "c10k_threads.cc"

RAISE = "    raise_open_files_limit();\n"

# What a student might write instead of raising the soft limit to the hard one.
RAISE_TO_4096 = """    rlimit limit = own_open_files_limit();
    limit.rlim_cur = 4096;   // "plenty"
    if (setrlimit(RLIMIT_NOFILE, &limit) < 0)
        die("setrlimit RLIMIT_NOFILE");
"""

WAIT_GONE = """        if (server_gone(status))
            return Wait::server_gone;
        if (status.threads >= want)
"""

STALL = """        } else if (Clock::now() - last_growth > std::chrono::duration<double>(STALL_SECONDS)) {
            return Wait::stalled;
        }
"""

MUTANTS = [
    Mutant("no-setrlimit", FILE,
           [(RAISE, "")],
           {"own_limit": "its own open-files limit"},
           "never raises its soft limit on open files (stops near 1024 connections)"),
    Mutant("limit-of-its-own", FILE,
           [(RAISE, RAISE_TO_4096)],
           {"full_run": "its own open-files limit"},
           "raises its soft limit to a number of its own, 4096, not to the hard limit"),
    Mutant("rss-is-vmsize", FILE,
           [('std::sscanf(line, "VmRSS: %ld", &status.vm_rss_kib);',
             'std::sscanf(line, "VmSize: %ld", &status.vm_rss_kib);')],
           {"matches_proc": "VmRSS"},
           "prints VmSize in the VmRSS column: virtual taken for resident"),
    Mutant("no-kernel-stacks", FILE,
           [("static_cast<double>((now.threads - base.threads) * KERNEL_STACK_KIB) / n};", "0.0};")],
           {"matches_proc": "in memory per connection"},
           "leaves the kernel stacks out of what a connection costs in memory"),
    Mutant("no-wait", FILE,
           [("    long last_count = -1;\n", "    status = read_status(pid);\n    return Wait::reached;\n"
                                             "    long last_count = -1;\n")],
           {"waits_for_threads": "before the server had started them"},
           "measures as soon as connect() returns, before the server has its threads"),
    Mutant("times-the-connects", FILE,
           [("static bool grow_to(", "static Clock::time_point last_connect;\n\nstatic bool grow_to("),
            ("        run.connections.push_back(fd);\n",
             "        run.connections.push_back(fd);\n        last_connect = Clock::now();\n"),
            ("took = Clock::now() - started;", "took = last_connect - started;")],
           {"waits_for_threads": "µs per thread"},
           "times the connect() calls only, not the server's threads"),
    Mutant("no-deadline", FILE,
           [(STALL, "        }\n")],
           {"server_fd_limit": "still running"},
           "waits for ever when the server's thread count stops growing"),
    Mutant("limit-not-named", FILE,
           [('    limits.open_files = read_limit(pid, "Max open files");\n', "")],
           {"server_fd_limit": "naming the server's open-files limit"},
           "stops at the server's open-files limit without naming it"),
    Mutant("ignores-death", FILE,
           [(WAIT_GONE, "        if (status.threads >= want)\n")],
           {"server_dies": "did not say that the server died"},
           "does not notice that the server died, and blames a stalled thread count"),
]


def mutants_for(lesson: str) -> list[Mutant]:
    """The known-bad programs of the lesson (course.toml names this module for it)."""
    return MUTANTS
