// c10k_report.h: what c10k_threads knows and how it says it. Provided:
// you do not need to edit this file.
//
// The lesson's idea, opening connections and measuring what the server's
// threads cost, is in c10k_threads.cc. This file holds the rest: the
// structures it fills, the command line, the table, and the words for a
// run that a limit stopped. The checker reads the formats printed here.
#pragma once

#include "common/errors.h"

#include <arpa/inet.h>
#include <cerrno>
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <dirent.h>
#include <getopt.h>
#include <netinet/in.h>
#include <string>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <unistd.h>
#include <vector>

constexpr int EXIT_LIMIT = 3;            // a limit stopped the run

constexpr long LIMIT_UNKNOWN = -1;       // read_limit() could not tell
constexpr long LIMIT_UNLIMITED = LONG_MAX;

// Each thread also has a stack inside the kernel, used while it is in a
// system call (our idle threads always are: in read()). It is THREAD_SIZE
// in the kernel's source, 16 KiB on x86-64 and arm64. It is not part of the
// process's VmRSS; `grep KernelStack /proc/meminfo` shows all of them.
constexpr long KERNEL_STACK_KIB = 16;

// What /proc/PID/status says about a process (sizes in KiB).
struct ServerStatus {
    bool readable = false;    // false: no such process any more
    char state = '?';         // R running, S sleeping, T stopped, Z dead (a zombie)...
    long threads = 0;
    long vm_size_kib = 0;     // VmSize: all of its address space, used or only reserved
    long vm_rss_kib = 0;      // VmRSS: the part that is in RAM
    long vm_pte_kib = 0;      // VmPTE: the kernel's page tables that map it
};

// The server's limits that decide how far the run can go (from /proc/PID/limits).
struct ServerLimits {
    long open_files = LIMIT_UNKNOWN;     // each connection is one more open file
    long stack_bytes = LIMIT_UNKNOWN;    // glibc makes this each thread's stack size
    long address_space = LIMIT_UNKNOWN;  // ulimit -v: a cap on VmSize
};

// What one run knows: where the server is, and the limits it may meet.
struct Run {
    pid_t server;
    sockaddr_in address;          // 127.0.0.1:PORT
    ServerStatus base;            // the server before any connection
    ServerLimits limits;          // the server's
    rlimit own;                   // this program's open-files limit
    std::vector<int> connections;
};

// What each connection added to the server since the baseline, in KiB.
struct CostEach {
    double virtual_kib;       // address space
    double rss_kib;           // pages in RAM: the stack pages the thread touched
    double pte_kib;           // page tables to map them
    double kernel_stack_kib;  // the thread's stack inside the kernel

    // Everything that takes RAM; VmSize does not.
    double in_memory_kib() const { return rss_kib + pte_kib + kernel_stack_kib; }
};

// ---- the command line ---------------------------------------------------

struct Options {
    int port = -1;
    pid_t server = -1;
    std::vector<long> steps{1000, 2000, 5000, 10000};   // connections open after each step
    bool hold = false;
};

[[noreturn]] inline void usage(const char* program) {
    std::fprintf(stderr, "usage: %s -p PORT -s SERVER_PID [-n 1000,2000,5000,10000] [--hold]\n",
                 program);
    std::exit(2);
}

// "1000,2000,5000": increasing numbers of connections.
inline bool parse_steps(const char* text, std::vector<long>& steps) {
    steps.clear();
    while (*text != '\0') {
        char* end = nullptr;
        long n = std::strtol(text, &end, 10);
        if (end == text || n <= 0 || (!steps.empty() && n <= steps.back()))
            return false;
        steps.push_back(n);
        if (*end == ',')
            ++end;
        else if (*end != '\0')
            return false;
        text = end;
    }
    return !steps.empty();
}

inline Options parse_options(int argc, char** argv) {
    Options options;
    const option long_options[] = {{"hold", no_argument, nullptr, 'H'}, {nullptr, 0, nullptr, 0}};
    int opt;
    while ((opt = getopt_long(argc, argv, "p:s:n:", long_options, nullptr)) != -1) {
        switch (opt) {
        case 'p': options.port = std::atoi(optarg); break;
        case 's': options.server = static_cast<pid_t>(std::atol(optarg)); break;
        case 'H': options.hold = true; break;
        case 'n':
            if (parse_steps(optarg, options.steps))
                break;
            std::fprintf(stderr, "%s: -n %s: want increasing numbers, e.g. 1000,2000,5000\n",
                         argv[0], optarg);
            usage(argv[0]);
        default: usage(argv[0]);
        }
    }
    if (options.port <= 0 || options.port > 65535 || options.server <= 0 || optind != argc)
        usage(argv[0]);
    return options;
}

// The run's starting point: the server's pid and address, no connection yet.
inline Run run_for(const Options& options) {
    Run run{};
    run.server = options.server;
    run.address.sin_family = AF_INET;
    run.address.sin_port = htons(static_cast<uint16_t>(options.port));
    run.address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    return run;
}

// ---- small helpers -------------------------------------------------------

// This process's limits on open files, soft and hard, as they are now.
inline rlimit own_open_files_limit() {
    rlimit limit{};
    if (getrlimit(RLIMIT_NOFILE, &limit) < 0)
        die("getrlimit");
    return limit;
}

// A limit as words; `unit` names what it counts ("KiB": bytes shown as KiB).
inline std::string limit_text(long value, const char* unit = "") {
    if (value == LIMIT_UNKNOWN)
        return "unknown";
    if (value == LIMIT_UNLIMITED)
        return "unlimited";
    if (std::strcmp(unit, "KiB") == 0)
        return std::to_string(value / 1024) + " KiB";
    return std::to_string(value);
}

// How many files the server has open now (-1: /proc/PID/fd is not ours to read).
inline long count_open_files(pid_t pid) {
    std::string path = "/proc/" + std::to_string(pid) + "/fd";
    DIR* dir = opendir(path.c_str());
    if (dir == nullptr)
        return -1;
    long count = 0;
    while (dirent* entry = readdir(dir))
        if (entry->d_name[0] != '.')
            ++count;
    closedir(dir);
    return count;
}

// The number in a one-number file such as /proc/sys/kernel/pid_max (-1: unreadable).
inline long read_number_file(const char* path) {
    long value = -1;
    if (std::FILE* file = std::fopen(path, "r")) {
        if (std::fscanf(file, "%ld", &value) != 1)
            value = -1;
        std::fclose(file);
    }
    return value;
}

inline long open_count(const Run& run) { return static_cast<long>(run.connections.size()); }

// A connected TCP socket to `server`, or -1 with errno saying why.
inline int open_idle_connection(const sockaddr_in& server) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0)
        return -1;
    if (connect(fd, reinterpret_cast<const sockaddr*>(&server), sizeof(server)) < 0) {
        int saved_errno = errno;         // close() must not hide why connect() failed
        close(fd);
        errno = saved_errno;
        return -1;
    }
    return fd;
}

// ---- why a run stopped ----------------------------------------------------

// This program cannot open one more connection without using the
// descriptors it keeps for /proc.
inline void explain_own_limit(const Run& run) {
    std::printf("stopped: this program's own open-files limit (RLIMIT_NOFILE) is %ld: it holds %ld\n"
                "  connections and keeps the other descriptors for /proc and its output. ",
                static_cast<long>(run.own.rlim_cur), open_count(run));
    if (run.own.rlim_cur < run.own.rlim_max)
        std::printf("setrlimit() can raise\n  the soft limit to the hard limit, %ld.\n",
                    static_cast<long>(run.own.rlim_max));
    else
        std::printf("That is its\n  hard limit: only root raises it (`ulimit -Hn`, limits.conf, "
                    "systemd's LimitNOFILE=).\n");
}

// The server is gone: most likely it could not create a thread.
inline void explain_death(const Run& run) {
    std::printf("stopped: the server (pid %d) died while this program held %ld connections to it.\n"
                "  A thread-per-connection server dies when it cannot create one more thread:\n"
                "  std::thread throws std::system_error (\"Resource temporarily unavailable\"),\n"
                "  nobody catches it, and the process aborts. Its standard error says so. What runs out:\n"
                "  its address space (ulimit -v: %s here) or memory for the stacks,\n"
                "  kernel.threads-max (%ld), kernel.pid_max (%ld), ulimit -u, or a cgroup's pids.max.\n",
                static_cast<int>(run.server), open_count(run),
                limit_text(run.limits.address_space, "KiB").c_str(),
                read_number_file("/proc/sys/kernel/threads-max"),
                read_number_file("/proc/sys/kernel/pid_max"));
    long space = run.limits.address_space;
    long stack = run.limits.stack_bytes;
    if (space > 0 && space != LIMIT_UNLIMITED && stack > 0 && stack != LIMIT_UNLIMITED) {
        long stack_kib = stack / 1024 + 4;   // and its guard page
        std::printf("  Its address space had room for about %ld stacks of %ld KiB.\n",
                    (space / 1024 - run.base.vm_size_kib) / stack_kib, stack_kib);
    }
}

// Why socket() or connect() failed for the next connection, the server
// being still there.
inline void explain_failed_connect(int error, const Run& run) {
    if (error == EMFILE) {               // (descriptors we inherited count too)
        explain_own_limit(run);
        return;
    }
    std::printf("stopped: connection %ld: %s\n", open_count(run) + 1, std::strerror(error));
    if (error == ENFILE)
        std::printf("  the whole system's limit on open files (/proc/sys/fs/file-max) is reached.\n");
    else if (error == EADDRNOTAVAIL)
        std::printf("  no local port is left for one more connection to this server\n"
                    "  (/proc/sys/net/ipv4/ip_local_port_range).\n");
}

// The thread count stayed at last.threads for `seconds`: is the server at
// its open-files limit? `limits` are the server's, read again just now.
inline void explain_stall(const ServerStatus& last, const Run& run, const ServerLimits& limits,
                          double seconds) {
    long files = count_open_files(run.server);
    long most = limits.open_files;
    bool finite = most != LIMIT_UNKNOWN && most != LIMIT_UNLIMITED;
    long raise_to = static_cast<long>(run.own.rlim_max);
    std::printf("stopped: the server's thread count stayed at %ld for %.0f s, with %ld connections open.\n",
                last.threads, seconds, open_count(run));
    if (finite && (files >= most || (files < 0 && last.threads + 4 >= most))) {
        std::printf("  the server is at its open-files limit: %ld (\"Max open files\" in /proc/%d/limits).\n"
                    "  Its accept() fails with EMFILE, so it starts no more threads. To raise it on the\n"
                    "  running server: prlimit --pid %d --nofile=%ld:%ld, or start it from a shell\n"
                    "  after `ulimit -n %ld`.\n",
                    most, static_cast<int>(run.server), static_cast<int>(run.server), raise_to,
                    raise_to, raise_to);
    } else if (last.threads <= 1) {
        std::printf("  does this server start a thread per connection?\n");
    } else {
        std::printf("  it has %s files open; its open-files limit is %s. Is it stopped (State %c)?\n",
                    files < 0 ? "an unknown number of" : std::to_string(files).c_str(),
                    limit_text(most).c_str(), last.state);
    }
}

// ---- what the run prints --------------------------------------------------------

inline double mib(long kib) { return static_cast<double>(kib) / 1024.0; }

// This program's open-files limit, now that it may have raised it.
inline void print_own_limit(long soft_at_start, const rlimit& now) {
    long soft = static_cast<long>(now.rlim_cur);
    long hard = static_cast<long>(now.rlim_max);
    std::printf("this program: may open %ld files (", soft);
    if (soft != soft_at_start || soft == hard)
        std::printf("its soft limit was %ld; ", soft_at_start);
    if (soft == hard)
        std::printf("this is its hard limit)\n");
    else
        std::printf("its hard limit is %ld)\n", hard);
}

// The server, its limits, and its memory before any connection.
inline void print_start(const Run& run, long most) {
    std::printf("server: pid %d on 127.0.0.1:%d; may open %s files; stack size limit %s\n",
                static_cast<int>(run.server), ntohs(run.address.sin_port),
                limit_text(run.limits.open_files).c_str(),
                limit_text(run.limits.stack_bytes, "KiB").c_str());
    long files = run.limits.open_files;
    if (files != LIMIT_UNKNOWN && files != LIMIT_UNLIMITED && files < most + 10)
        std::printf("warning: the server's open-files limit (%ld) allows about %ld connections, not %ld:\n"
                    "  prlimit --pid %d --nofile=%ld:%ld raises it\n",
                    files, files - 4, most, static_cast<int>(run.server),
                    static_cast<long>(run.own.rlim_max), static_cast<long>(run.own.rlim_max));
    std::printf("before any connection: %ld thread(s), VmSize %.1f MiB, VmRSS %.1f MiB, VmPTE %.1f MiB\n",
                run.base.threads, mib(run.base.vm_size_kib), mib(run.base.vm_rss_kib),
                mib(run.base.vm_pte_kib));
}

inline void print_header() {
    std::printf("\n%-82s | %s\n", "the server in all", "each connection added");
    std::printf("%11s %8s %12s %10s %9s %13s %13s | %16s %13s\n", "connections", "threads", "VmSize",
                "VmRSS", "VmPTE", "kernel stacks", "µs per thread", "virtual", "in memory");
}

// One row: the server's totals now, and what each connection added.
inline void print_row(long connections, const ServerStatus& now, const CostEach& each,
                      double micros_per_thread) {
    std::printf("%11ld %8ld %8.1f MiB %6.1f MiB %5.1f MiB %9.1f MiB %13.1f | %12.1f KiB %9.1f KiB\n",
                connections, now.threads, mib(now.vm_size_kib), mib(now.vm_rss_kib),
                mib(now.vm_pte_kib), mib(now.threads * KERNEL_STACK_KIB), micros_per_thread,
                each.virtual_kib, each.in_memory_kib());
}

// What one connection cost, split into its parts, and the source's figure
// for 10,000 threads beside what this machine shows.
inline void print_summary(long connections, const CostEach& each, const ServerLimits& limits) {
    std::printf("\none connection (one thread), measured over %ld:\n", connections);
    // glibc sizes a thread's stack by the stack limit (2 MiB if it is unlimited).
    std::printf("  virtual    %7.1f KiB  VmSize: the thread's stack, reserved (ulimit -s: %s),\n"
                "                         and a guard page\n",
                each.virtual_kib, limit_text(limits.stack_bytes, "KiB").c_str());
    std::printf("  in memory  %7.1f KiB  = %.1f stack pages touched (VmRSS) + %.1f page tables (VmPTE)\n"
                "                         + %.1f kernel stack\n",
                each.in_memory_kib(), each.rss_kib, each.pte_kib, each.kernel_stack_kib);
    std::printf("at this rate, 10,000 threads: %.1f GiB of address space (the source's \"~80 GB\"), "
                "%.0f MiB of memory\n",
                each.virtual_kib * 10000 / (1024.0 * 1024.0), each.in_memory_kib() * 10000 / 1024.0);
}

// Keeps the connections open until standard input closes.
inline void hold(long connections) {
    std::printf("holding %ld connections: press Enter or Ctrl-D to close them\n", connections);
    char c;
    while (read(STDIN_FILENO, &c, 1) < 0 && errno == EINTR) {
    }
}
