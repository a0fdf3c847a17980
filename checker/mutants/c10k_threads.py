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


# ---- student programs: the TODOs written the wrong way, as students write them ----------

WAIT_TODO = """    long last_count = -1;
    Clock::time_point last_growth = Clock::now();
    while (true) {
        status = read_status(pid);
        if (server_gone(status))
            return Wait::server_gone;
        if (status.threads >= want)
            return Wait::reached;
        if (status.threads > last_count) {
            last_count = status.threads;
            last_growth = Clock::now();
        } else if (Clock::now() - last_growth > std::chrono::duration<double>(STALL_SECONDS)) {
            return Wait::stalled;
        }
        timespec pause{0, 200'000};      // /proc cannot tell us when it changes: look again
        nanosleep(&pause, nullptr);
    }
"""

LIMIT_LOOP = """    while (std::fgets(line, sizeof(line), file) != nullptr) {
        if (std::strncmp(line, name, length) != 0 || line[length] != ' ')
            continue;
        const char* soft = line + length + std::strspn(line + length, " ");
        if (std::strncmp(soft, "unlimited", 9) == 0)
            value = LIMIT_UNLIMITED;
        else
            std::sscanf(soft, "%ld", &value);
        break;
    }
"""

STUDENTS = [
    Mutant("gives-up-at-once", FILE,
           [(WAIT_TODO,
             "    ServerStatus before = read_status(pid);\n"
             "    while (true) {\n"
             "        status = read_status(pid);\n"
             "        if (server_gone(status))\n"
             "            return Wait::server_gone;\n"
             "        if (status.threads >= want)\n"
             "            return Wait::reached;\n"
             "        if (status.threads == before.threads)   // no new thread since the last look\n"
             "            return Wait::stalled;               // so the server is stuck\n"
             "        before = status;\n"
             "        timespec pause{0, 200'000};\n"
             "        nanosleep(&pause, nullptr);\n"
             "    }\n")],
           {"waits_for_threads": "slow to start its threads is not a limit"},
           "calls the server stuck as soon as two looks 0.2 ms apart see the same thread count",
           student=True),
    Mutant("fixed-pause", FILE,
           [(WAIT_TODO,
             "    // Give the server time to accept and start its threads, then look.\n"
             "    usleep(100'000);\n"
             "    status = read_status(pid);\n"
             "    (void)want;\n"
             "    return server_gone(status) ? Wait::server_gone : Wait::reached;\n")],
           {"waits_for_threads": "a fixed pause is a guess"},
           "sleeps 100 ms and measures, instead of waiting until the threads are there",
           student=True),
    Mutant("rlimit-not-read", FILE,
           [(RAISE,
             "    rlimit limit{};\n"
             "    limit.rlim_cur = limit.rlim_max;   // the soft limit up to the hard one\n"
             "    if (setrlimit(RLIMIT_NOFILE, &limit) < 0)\n"
             "        die(\"setrlimit\");\n")],
           {"own_limit": "lowered"},
           "fills an rlimit{} without getrlimit() first: sets both limits to 0", student=True),
    Mutant("rlimit-infinity", FILE,
           [(RAISE,
             "    rlimit limit = own_open_files_limit();\n"
             "    limit.rlim_cur = RLIM_INFINITY;   // no limit at all\n"
             "    if (setrlimit(RLIMIT_NOFILE, &limit) < 0)\n"
             "        die(\"setrlimit\");\n")],
           {"own_limit": "may not be above the hard limit"},
           "asks for an unlimited soft limit, above the hard limit: setrlimit() fails with EINVAL",
           student=True),
    Mutant("hard-limit-column", FILE,
           [(LIMIT_LOOP,
             "    while (std::fgets(line, sizeof(line), file) != nullptr) {\n"
             "        if (std::strstr(line, name) != line)\n"
             "            continue;\n"
             "        // Limit  Soft Limit  Hard Limit  Units: the hard one is the real limit\n"
             "        char soft[32], hard[32];\n"
             "        if (std::sscanf(line + length, \"%31s %31s\", soft, hard) == 2)\n"
             "            value = std::strcmp(hard, \"unlimited\") == 0 ? LIMIT_UNLIMITED\n"
             "                                                          : std::atol(hard);\n"
             "        break;\n"
             "    }\n")],
           {"server_fd_limit": "the soft limit"},
           "reads the hard limit from /proc/PID/limits: the soft one is what binds", student=True),
    Mutant("limits-file-left-open", FILE,
           [(LIMIT_LOOP + "    std::fclose(file);\n    return value;\n",
             "    while (std::fgets(line, sizeof(line), file) != nullptr) {\n"
             "        if (std::strncmp(line, name, length) != 0 || line[length] != ' ')\n"
             "            continue;\n"
             "        const char* soft = line + length + std::strspn(line + length, \" \");\n"
             "        if (std::strncmp(soft, \"unlimited\", 9) == 0)\n"
             "            return LIMIT_UNLIMITED;\n"
             "        return std::strtol(soft, nullptr, 10);   // found it\n"
             "    }\n"
             "    std::fclose(file);\n"
             "    return value;\n")],
           {"closes_files": "/limits"},
           "returns from inside its loop over /proc/PID/limits without fclose(): three files "
           "left open per reading", student=True),
]


def mutants_for(lesson: str) -> list[Mutant]:
    """The known-bad programs of the lesson (course.toml names this module for it)."""
    return MUTANTS + STUDENTS
