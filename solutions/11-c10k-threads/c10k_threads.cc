// c10k_threads: what a thread per connection costs, measured.
//
//   usage: c10k_threads -p PORT -s SERVER_PID [-n 1000,2000,5000,10000] [--hold]
//
// A client. It opens idle TCP connections to a thread-per-connection server
// (WeensyDB v8 on 127.0.0.1:PORT, process SERVER_PID) in steps: 1000, then
// 2000, 5000, 10000 in all. After each step it waits until the server has
// one thread per connection, reads the server's memory from
// /proc/SERVER_PID/status, and prints one row: what the server holds in all,
// and what each connection added. The connections send nothing, so every
// server thread sits blocked in read(): this measures the threads themselves.
//
// This file is the measurement; c10k_report.h (provided: no need to edit it)
// holds the structures, the command line, the table and the words for a stop.
// Exit status 0: every step ran; 3: a limit stopped it; 1: a call failed; 2: bad usage.
#include "c10k_report.h"
#include "common/errors.h"
#include "common/server.h"

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <string>
#include <time.h>
#include <unistd.h>

using Clock = std::chrono::steady_clock;

// How long the server's thread count may stand still, while we wait for
// it to grow, before we call it stuck. Creating one thread takes tens of
// microseconds: three seconds is generous even on a busy machine.
constexpr double STALL_SECONDS = 3.0;

// Connections not yet accepted wait in the server's listen backlog (4096
// since Linux 5.4); once it is full, connect() blocks for minutes. Waiting
// for the server every 500 connections keeps us far from that.
constexpr long BATCH = 500;

// Descriptors kept free for standard input and output and the /proc files
// this program reads: with none left, it could not even look at the server.
constexpr long SPARE_FILES = 8;

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
        // BEGIN TODO 2: also read VmSize, VmRSS and VmPTE (in kB) into the
        // fields of the same names (struct ServerStatus, in c10k_report.h),
        // as Threads is read above.
        std::sscanf(line, "VmSize: %ld", &status.vm_size_kib);
        std::sscanf(line, "VmRSS: %ld", &status.vm_rss_kib);
        std::sscanf(line, "VmPTE: %ld", &status.vm_pte_kib);
        // END TODO 2
    }
    std::fclose(file);
    return status;
}

static bool server_gone(const ServerStatus& status) {
    return !status.readable || status.state == 'Z';
}

// What each of `connections` added to the server since `base`. Only
// VmRSS, VmPTE and the kernel stacks take memory; VmSize is addresses.
static CostEach cost_each(long connections, const ServerStatus& now, const ServerStatus& base) {
    double n = static_cast<double>(connections);
    return {static_cast<double>(now.vm_size_kib - base.vm_size_kib) / n,
            static_cast<double>(now.vm_rss_kib - base.vm_rss_kib) / n,
            static_cast<double>(now.vm_pte_kib - base.vm_pte_kib) / n,
            static_cast<double>((now.threads - base.threads) * KERNEL_STACK_KIB) / n};
}

enum class Wait { reached, server_gone, stalled };

// Waits until the server runs `want` threads (or more), and leaves its
// /proc status in `status`.
static Wait wait_for_threads(pid_t pid, long want, ServerStatus& status) {
    // BEGIN TODO 3: connect() returns once the kernel has finished the
    // handshake, before the server has accepted the connection and started
    // its thread. Read the status again and again, every 0.2 ms (nanosleep),
    // until status.threads >= want. Return Wait::server_gone as soon as
    // server_gone(status), and Wait::stalled when the thread count has not
    // grown for STALL_SECONDS: no loop here may run forever.
    //| status = read_status(pid);       // once, at once: too early
    //| (void)want;
    //| return Wait::reached;
    long last_count = -1;
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
    // END TODO 3
}

// ---- the server's limits ----------------------------------------------------

// The soft value of one line of /proc/PID/limits, e.g. "Max open files".
static long read_limit(pid_t pid, const char* name) {
    // BEGIN TODO 4: open /proc/PID/limits, find the line that starts with
    // `name`, and return its first number (the soft limit): LIMIT_UNLIMITED
    // if it says "unlimited", LIMIT_UNKNOWN if the file or the line is missing.
    //   Limit                     Soft Limit           Hard Limit           Units
    //   Max open files            1024                 524288               files
    //| (void)pid;
    //| (void)name;
    //| return LIMIT_UNKNOWN;
    std::string path = "/proc/" + std::to_string(pid) + "/limits";
    std::FILE* file = std::fopen(path.c_str(), "r");
    if (file == nullptr)
        return LIMIT_UNKNOWN;
    long value = LIMIT_UNKNOWN;
    std::size_t length = std::strlen(name);
    char line[256];
    while (std::fgets(line, sizeof(line), file) != nullptr) {
        if (std::strncmp(line, name, length) != 0 || line[length] != ' ')
            continue;
        const char* soft = line + length + std::strspn(line + length, " ");
        if (std::strncmp(soft, "unlimited", 9) == 0)
            value = LIMIT_UNLIMITED;
        else
            std::sscanf(soft, "%ld", &value);
        break;
    }
    std::fclose(file);
    return value;
    // END TODO 4
}

static ServerLimits read_server_limits(pid_t pid) {
    ServerLimits limits;
    limits.open_files = read_limit(pid, "Max open files");
    limits.stack_bytes = read_limit(pid, "Max stack size");
    limits.address_space = read_limit(pid, "Max address space");
    return limits;
}

// ---- the run ------------------------------------------------------------------

// Opens connections until `target` are open, and waits until the server
// has a thread for each; leaves the server's status in `now`. Returns
// false, once it has said why, if a limit stopped it.
static bool grow_to(Run& run, long target, ServerStatus& now) {
    while (open_count(run) < target) {
        long open = open_count(run);
        if (open + SPARE_FILES >= static_cast<long>(run.own.rlim_cur)) {
            explain_own_limit(run);
            return false;
        }
        int fd = open_idle_connection(run.address);
        if (fd < 0 && open == 0 && errno == ECONNREFUSED)
            die("connect");              // nothing listens there: a wrong -p
        if (fd < 0) {
            int error = errno;           // a refused connect() may mean the server died
            if (error != EMFILE && server_gone(read_status(run.server)))
                explain_death(run);
            else
                explain_failed_connect(error, run);
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
            explain_stall(now, run, read_server_limits(run.server), STALL_SECONDS);
            return false;
        }
    }
    return true;
}

int main(int argc, char** argv) {
    Options options = parse_options(argc, argv);
    std::setvbuf(stdout, nullptr, _IOLBF, 0);   // each line out at once, even into a pipe

    Run run = run_for(options);
    run.base = read_status(run.server);
    if (server_gone(run.base))
        die_with(("-s " + std::to_string(run.server)).c_str(), "no such process");
    run.limits = read_server_limits(run.server);

    long soft_at_start = static_cast<long>(own_open_files_limit().rlim_cur);
    // BEGIN TODO 1: every connection is an open file, and a shell starts us
    // with a soft limit of 1024 (`ulimit -n`). Raise it to the hard limit
    // before opening any: raise_open_files_limit() (common/server.h) does it
    // with setrlimit(). Only root may raise the hard limit itself.
    raise_open_files_limit();
    // END TODO 1
    run.own = own_open_files_limit();
    print_own_limit(soft_at_start, run.own);
    long most = options.steps.back();
    run.connections.reserve(static_cast<std::size_t>(most));
    print_start(run, most);

    print_header();
    long measured = 0;                   // connections in the last row printed
    CostEach measured_each{};
    for (long target : options.steps) {
        auto started = Clock::now();
        long added = target - open_count(run);
        ServerStatus now;
        if (!grow_to(run, target, now)) {
            if (measured > 0)
                print_summary(measured, measured_each, run.limits);
            return EXIT_LIMIT;
        }
        std::chrono::duration<double, std::micro> took = Clock::now() - started;
        measured = target;
        measured_each = cost_each(target, now, run.base);
        print_row(target, now, measured_each, took.count() / static_cast<double>(added));
    }
    print_summary(measured, measured_each, run.limits);
    if (options.hold)
        hold(most);
    for (int fd : run.connections)
        close(fd);
    return 0;
}
