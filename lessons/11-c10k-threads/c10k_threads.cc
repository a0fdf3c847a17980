// c10k_threads: what a thread per connection costs, measured.
//
//   usage: c10k_threads -p PORT -s SERVER_PID [-n 1000,2000,5000,10000] [--hold]
//
// A client. It opens idle TCP connections to a thread-per-connection server
// (WeensyDB v8, listening on 127.0.0.1:PORT, process SERVER_PID) in steps:
// 1000 of them, then 1000 more, 3000 more, 5000 more. After each step it
// waits until the server has one thread per connection, reads the server's
// memory from /proc/SERVER_PID/status, and prints one row: what the server
// holds in all, and what each connection added. The connections send
// nothing, so every server thread sits blocked in read(): this measures
// the cost of the threads themselves, not of any work.
//
// --hold keeps the connections open at the end until standard input closes
// (Ctrl-D), so that you can look at the server yourself.
//
// Exit status: 0 every step ran; 3 a limit stopped the run (the rows it
// measured are printed, and the limit is named); 1 a system call failed;
// 2 bad arguments.
#include "common/errors.h"

#include <arpa/inet.h>
#include <cerrno>
#include <chrono>
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
#include <time.h>
#include <unistd.h>
#include <vector>

using Clock = std::chrono::steady_clock;

constexpr int EXIT_LIMIT = 3;            // a limit stopped the run

// Each thread also has a stack inside the kernel, used while it is in a
// system call (our idle threads always are: in read()). It is THREAD_SIZE
// in the kernel's source, 16 KiB on x86-64 and arm64. It is not part of the
// process's VmRSS; `grep KernelStack /proc/meminfo` shows all of them.
constexpr long KERNEL_STACK_KIB = 16;

// How long the server's thread count may stand still, while we wait for
// it to grow, before we call it stuck. Creating one thread takes tens of
// microseconds: three seconds is generous even on a busy machine.
constexpr double STALL_SECONDS = 3.0;

// Connections not yet accepted wait in the server's listen backlog (4096
// since Linux 5.4). A server that has stopped accepting lets it fill up,
// and then connect() blocks for minutes. Waiting for the server every 500
// connections keeps us far from that.
constexpr long BATCH = 500;

// Descriptors kept free for standard input and output and the /proc files
// this program reads: with none left, it could not even look at the server.
constexpr long SPARE_FILES = 8;

constexpr long LIMIT_UNKNOWN = -1;       // read_limit() could not tell
constexpr long LIMIT_UNLIMITED = LONG_MAX;

struct Options {
    int port = -1;
    pid_t server = -1;
    std::vector<long> steps{1000, 2000, 5000, 10000};   // connections open after each step
    bool hold = false;
};

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

// ---- the command line ---------------------------------------------------

[[noreturn]] static void usage(const char* program) {
    std::fprintf(stderr, "usage: %s -p PORT -s SERVER_PID [-n 1000,2000,5000,10000] [--hold]\n",
                 program);
    std::exit(2);
}

// "1000,2000,5000": increasing numbers of connections.
static bool parse_steps(const char* text, std::vector<long>& steps) {
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

static Options parse_options(int argc, char** argv) {
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

// ---- this program's open-files limit -------------------------------------

// Raises this process's soft limit on open files to its hard limit, and
// returns the limits as they are now.
static rlimit raise_open_files_limit() {
    rlimit limit{};
    if (getrlimit(RLIMIT_NOFILE, &limit) < 0)
        die("getrlimit");
    // TODO 1: every connection is an open file, and a shell starts us
    // with a soft limit of 1024 (`ulimit -n`). Raise the soft limit
    // (limit.rlim_cur) to the hard limit (limit.rlim_max) with setrlimit(),
    // and say so. (Only root may raise the hard limit itself.)
    std::printf("this program: may open %ld files\n", static_cast<long>(limit.rlim_cur));
    return limit;
}

// ---- the server's memory ----------------------------------------------------

// The server's state, threads and memory, as /proc/PID/status says now.
static ServerStatus read_status(pid_t pid) {
    ServerStatus status;
    std::string path = "/proc/" + std::to_string(pid) + "/status";
    std::FILE* file = std::fopen(path.c_str(), "r");
    if (file == nullptr && (errno == ENOENT || errno == ESRCH))
        return status;                   // the process is gone (and reaped)
    if (file == nullptr)
        die(path.c_str());
    status.readable = true;
    char line[256];
    while (std::fgets(line, sizeof(line), file) != nullptr) {
        // Each line is "Name:<tabs and spaces>value", sizes as "12345 kB".
        std::sscanf(line, "State: %c", &status.state);
        std::sscanf(line, "Threads: %ld", &status.threads);
        // TODO 2: also read VmSize, VmRSS and VmPTE (in kB) into the
        // fields of the same names, as Threads is read above.
    }
    std::fclose(file);
    return status;
}

static bool server_gone(const ServerStatus& status) {
    return !status.readable || status.state == 'Z';
}

enum class Wait { reached, server_gone, stalled };

// Waits until the server runs `want` threads (or more), and leaves its
// /proc status in `status`.
static Wait wait_for_threads(pid_t pid, long want, ServerStatus& status) {
    // TODO 3: connect() returns once the kernel has finished the
    // handshake, before the server has accepted the connection and started
    // its thread. Read the status again and again, every 0.2 ms (nanosleep),
    // until status.threads >= want. Return Wait::server_gone as soon as
    // server_gone(status), and Wait::stalled when the thread count has not
    // grown for STALL_SECONDS: no loop here may run forever.
    status = read_status(pid);       // once, at once: too early
    (void)want;
    return Wait::reached;
}

// ---- the server's limits ----------------------------------------------------

// The soft value of one line of /proc/PID/limits, e.g. "Max open files".
static long read_limit(pid_t pid, const char* name) {
    // TODO 4: open /proc/PID/limits, find the line that starts with
    // `name`, and return its first number (the soft limit): LIMIT_UNLIMITED
    // if it says "unlimited", LIMIT_UNKNOWN if the file or the line is missing.
    //   Limit                     Soft Limit           Hard Limit           Units
    //   Max open files            1024                 524288               files
    (void)pid;
    (void)name;
    return LIMIT_UNKNOWN;
}

static ServerLimits read_server_limits(pid_t pid) {
    ServerLimits limits;
    limits.open_files = read_limit(pid, "Max open files");
    limits.stack_bytes = read_limit(pid, "Max stack size");
    limits.address_space = read_limit(pid, "Max address space");
    return limits;
}

// A limit as words; `unit` names what it counts ("KiB": bytes shown as KiB).
static std::string limit_text(long value, const char* unit = "") {
    if (value == LIMIT_UNKNOWN)
        return "unknown";
    if (value == LIMIT_UNLIMITED)
        return "unlimited";
    if (std::strcmp(unit, "KiB") == 0)
        return std::to_string(value / 1024) + " KiB";
    return std::to_string(value);
}

// How many files the server has open now (-1: /proc/PID/fd is not ours to read).
static long count_open_files(pid_t pid) {
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
static long read_number_file(const char* path) {
    long value = -1;
    if (std::FILE* file = std::fopen(path, "r")) {
        if (std::fscanf(file, "%ld", &value) != 1)
            value = -1;
        std::fclose(file);
    }
    return value;
}

// ---- connections ------------------------------------------------------------

// A connected TCP socket to `server`, or -1 with errno saying why.
static int open_idle_connection(const sockaddr_in& server) {
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

static long open_count(const Run& run) { return static_cast<long>(run.connections.size()); }

// This program cannot open one more connection without using the
// descriptors it keeps for /proc.
static void explain_own_limit(const Run& run) {
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
static void explain_death(const Run& run) {
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

// Why socket() or connect() failed for the next connection.
static void explain_failed_connect(int error, const Run& run) {
    if (error == EMFILE) {               // (descriptors we inherited count too)
        explain_own_limit(run);
        return;
    }
    if (server_gone(read_status(run.server))) {
        explain_death(run);
        return;
    }
    std::printf("stopped: connection %ld: %s\n", open_count(run) + 1, std::strerror(error));
    if (error == ENFILE)
        std::printf("  the whole system's limit on open files (/proc/sys/fs/file-max) is reached.\n");
    else if (error == EADDRNOTAVAIL)
        std::printf("  no local port is left for one more connection to this server\n"
                    "  (/proc/sys/net/ipv4/ip_local_port_range).\n");
}

// The thread count stopped growing: is the server at its open-files limit?
static void explain_stall(const ServerStatus& last, const Run& run) {
    ServerLimits limits = read_server_limits(run.server);   // again: it may have changed
    long files = count_open_files(run.server);
    long most = limits.open_files;
    bool finite = most != LIMIT_UNKNOWN && most != LIMIT_UNLIMITED;
    long raise_to = static_cast<long>(run.own.rlim_max);
    std::printf("stopped: the server's thread count stayed at %ld for %.0f s, with %ld connections open.\n",
                last.threads, STALL_SECONDS, open_count(run));
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

// ---- the table ----------------------------------------------------------------

static double mib(long kib) { return static_cast<double>(kib) / 1024.0; }

static void print_header() {
    std::printf("\n%-82s | %s\n", "the server in all", "each connection added");
    std::printf("%11s %8s %12s %10s %9s %13s %13s | %16s %13s\n", "connections", "threads", "VmSize",
                "VmRSS", "VmPTE", "kernel stacks", "µs per thread", "virtual", "in memory");
}

// What each connection added to the server since the baseline, in KiB.
struct CostEach {
    double virtual_kib;       // address space
    double rss_kib;           // pages in RAM: the stack pages the thread touched
    double pte_kib;           // page tables to map them
    double kernel_stack_kib;  // the thread's stack inside the kernel

    // Everything that takes RAM; VmSize does not.
    double in_memory_kib() const { return rss_kib + pte_kib + kernel_stack_kib; }
};

static CostEach cost_each(long connections, const ServerStatus& now, const ServerStatus& base) {
    double n = static_cast<double>(connections);
    return {static_cast<double>(now.vm_size_kib - base.vm_size_kib) / n,
            static_cast<double>(now.vm_rss_kib - base.vm_rss_kib) / n,
            static_cast<double>(now.vm_pte_kib - base.vm_pte_kib) / n,
            static_cast<double>((now.threads - base.threads) * KERNEL_STACK_KIB) / n};
}

// One row: the server's totals now, and what each connection added.
static void print_row(long connections, const ServerStatus& now, const ServerStatus& base,
                      double micros_per_thread) {
    CostEach each = cost_each(connections, now, base);
    std::printf("%11ld %8ld %8.1f MiB %6.1f MiB %5.1f MiB %9.1f MiB %13.1f | %12.1f KiB %9.1f KiB\n",
                connections, now.threads, mib(now.vm_size_kib), mib(now.vm_rss_kib),
                mib(now.vm_pte_kib), mib(now.threads * KERNEL_STACK_KIB), micros_per_thread,
                each.virtual_kib, each.in_memory_kib());
}

// What one connection cost, split into its parts, and the source's figure
// for 10,000 threads beside what this machine shows.
static void print_summary(long connections, const ServerStatus& now, const ServerStatus& base,
                          const ServerLimits& limits) {
    CostEach each = cost_each(connections, now, base);
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

// ---- the run --------------------------------------------------------------------

static void print_start(const Run& run, long most) {
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

// Opens connections until `target` are open, and waits until the server
// has a thread for each; leaves the server's status in `now`. Returns
// false, once it has said why, if a limit stopped it.
static bool grow_to(Run& run, long target, ServerStatus& now) {
    while (static_cast<long>(run.connections.size()) < target) {
        long open = static_cast<long>(run.connections.size());
        if (open + SPARE_FILES >= static_cast<long>(run.own.rlim_cur)) {
            explain_own_limit(run);
            return false;
        }
        int fd = open_idle_connection(run.address);
        if (fd < 0 && open == 0 && errno == ECONNREFUSED)
            die("connect");              // nothing listens there: a wrong -p
        if (fd < 0) {
            explain_failed_connect(errno, run);
            return false;
        }
        run.connections.push_back(fd);
        open += 1;
        if (open % BATCH != 0 && open != target)
            continue;
        // One thread per connection, and the one that accepts them.
        Wait result = wait_for_threads(run.server, run.base.threads + open, now);
        if (result == Wait::server_gone) {
            explain_death(run);
            return false;
        }
        if (result == Wait::stalled) {
            explain_stall(now, run);
            return false;
        }
    }
    return true;
}

// Keeps the connections open until standard input closes.
static void hold(long connections) {
    std::printf("holding %ld connections: press Enter or Ctrl-D to close them\n", connections);
    char c;
    while (read(STDIN_FILENO, &c, 1) < 0 && errno == EINTR) {
    }
}

int main(int argc, char** argv) {
    Options options = parse_options(argc, argv);
    std::setvbuf(stdout, nullptr, _IOLBF, 0);   // each line out at once, even into a pipe

    Run run{};
    run.server = options.server;
    run.address.sin_family = AF_INET;
    run.address.sin_port = htons(static_cast<uint16_t>(options.port));
    run.address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    run.base = read_status(run.server);
    if (server_gone(run.base))
        die_with(("-s " + std::to_string(run.server)).c_str(), "no such process");
    run.limits = read_server_limits(run.server);
    run.own = raise_open_files_limit();
    long most = options.steps.back();
    run.connections.reserve(static_cast<std::size_t>(most));
    print_start(run, most);

    print_header();
    long measured = 0;                   // connections in the last row printed
    ServerStatus measured_status;
    for (long target : options.steps) {
        auto started = Clock::now();
        long added = target - static_cast<long>(run.connections.size());
        ServerStatus now;
        if (!grow_to(run, target, now)) {
            if (measured > 0)
                print_summary(measured, measured_status, run.base, run.limits);
            return EXIT_LIMIT;
        }
        std::chrono::duration<double, std::micro> took = Clock::now() - started;
        print_row(target, now, run.base, took.count() / static_cast<double>(added));
        measured = target;
        measured_status = now;
    }
    print_summary(measured, measured_status, run.base, run.limits);
    if (options.hold)
        hold(most);
    for (int fd : run.connections)
        close(fd);
    return 0;
}
