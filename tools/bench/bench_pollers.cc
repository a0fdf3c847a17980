// bench_pollers: what one select(), poll() or epoll_wait() call costs as the
// number of watched descriptors grows (lesson 14, "epoll").
//
//   usage: bench_pollers [--seconds S] [--no-wait] [--tsv]
//
// For N = 10, 100, 1000 and 10000 watched descriptors, exactly one of them
// (chosen at random, a new one every call) is readable, and we time the loop
// a real single-threaded server runs around each call:
//
//   select: rebuild the fd_set from the list of descriptors, select(), then
//           scan the set for the ready descriptor (FD_ISSET on every one);
//   poll:   rebuild the pollfd array, poll(), then scan it for the ready one;
//   epoll:  epoll_wait() only. The N descriptors were registered once with
//           epoll_ctl, before the clock started: that is the point of epoll.
//
// A server rebuilds its set on every turn of the loop because select and poll
// overwrite it (select) or because the set of connections changes (both), so
// that user-space work is part of what "one call" costs and is timed here.
//
// Every call is given a timeout, as in a server that sleeps until something
// happens. That matters for select and poll: the kernel hangs the caller on
// the wait queue of every descriptor it checks until it finds one ready, and
// takes it off again before returning. --no-wait passes a zero timeout
// instead (a pure "is anything ready?" check), which skips that bookkeeping.
//
// Each cell runs for about S seconds (default 0.3). Output: a table in
// microseconds per call, with the figures of the course's source beside;
// with --tsv, one line per N instead: n <TAB> select_us <TAB> poll_us <TAB> epoll_us.
// A size the descriptor limit does not allow is skipped, with a message on stderr.
// Exit status: 0; 1 if a system call failed; 2 on bad usage.
#include "common/errors.h"

#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/select.h>
#include <sys/socket.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <poll.h>
#include <random>
#include <string>
#include <unistd.h>
#include <vector>

using Clock = std::chrono::steady_clock;

static const int kSizes[] = {10, 100, 1000, 10000};

// The source's table (µs per call, as printed; it has no row for 1000).
struct SourceRow {
    int n;
    double select_us, epoll_us;
};
static const SourceRow kSource[] = {{10, 0.73, 0.41}, {100, 3.0, 0.42}, {10000, 930, 0.66}};

// Every call blocks like a server's would, but never forever: one descriptor
// is always ready, so a call that waits this long means a bug.
static const int kCallTimeoutSeconds = 5;
// --no-wait: zero timeouts instead (set once, in main).
static int call_timeout_seconds = kCallTimeoutSeconds;
// Descriptors we need besides the watched ones: stdin/out/err, the epoll
// instance, and some slack for whatever the C library opens.
static const int kSpareDescriptors = 16;
// At least this many timed calls per cell, however slow they are.
static const long kMinCalls = 50;
// Untimed calls first: the first calls fault in pages and warm the caches.
static const int kWarmupCalls = 20;

[[noreturn]] static void usage_error(const std::string& problem) {
    std::fprintf(stderr, "bench_pollers: %s\n%s", problem.c_str(),
                 "usage: bench_pollers [--seconds S] [--no-wait] [--tsv]\n");
    std::exit(2);
}

// ---- descriptors ----------------------------------------------------------------

// N watched descriptors, each of which we can make readable on demand.
//
// They are both ends of N/2 Unix socketpairs: a byte written to one end makes
// its peer readable. Watching both ends (rather than the read ends of N pipes)
// means N watched descriptors cost N open files, not 2N, so 10,000 fit under
// a limit of 20,000 with room to spare.
struct Watched {
    std::vector<int> fds;     // what select/poll/epoll watch
    std::vector<int> peers;   // peers[i]: write here to make fds[i] readable
    int max_fd = -1;
};

static Watched open_watched(int n) {
    Watched w;
    w.fds.resize(n);
    w.peers.resize(n);
    for (int i = 0; i < n; i += 2) {
        int pair[2];
        if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair) < 0) die("socketpair");
        w.fds[i] = pair[0];
        w.peers[i] = pair[1];
        w.fds[i + 1] = pair[1];
        w.peers[i + 1] = pair[0];
        w.max_fd = std::max({w.max_fd, pair[0], pair[1]});
    }
    return w;
}

static void close_watched(const Watched& w) {
    for (int fd : w.fds) close(fd);   // every descriptor is in fds exactly once
}

static void make_ready(const Watched& w, int i) {
    if (write(w.peers[i], "x", 1) != 1) die("write");
}

static void make_idle(const Watched& w, int i) {
    char byte;
    if (read(w.fds[i], &byte, 1) != 1) die("read");
}

// Raises the soft limit on open files to the hard limit (allowed without
// privileges) and returns the limit we end up with.
static long raise_descriptor_limit() {
    rlimit limit{};
    if (getrlimit(RLIMIT_NOFILE, &limit) < 0) die("getrlimit");
    if (limit.rlim_cur != limit.rlim_max) {
        limit.rlim_cur = limit.rlim_max;
        if (setrlimit(RLIMIT_NOFILE, &limit) < 0) die("setrlimit");
    }
    return limit.rlim_cur == RLIM_INFINITY ? 1L << 30 : static_cast<long>(limit.rlim_cur);
}

// ---- one call of each poller -------------------------------------------------------
//
// Each function does what a server does around one call and returns the
// descriptor it found ready, which the caller checks.

// select() beyond descriptor 1023. An fd_set is a fixed bitmap of FD_SETSIZE
// (1024) bits, and FD_SET(fd) with fd >= 1024 writes past its end: undefined
// behaviour, and with _FORTIFY_SOURCE (Debian's default for packages) an
// abort. The kernel itself has no such limit: it reads nfds bits from the
// pointer it is given. So we keep our own bitmap of fd_mask words, as long as
// the highest descriptor needs, and hand it to select() as if it were an
// fd_set. (A server should not do this; it should use poll or epoll. It lets
// us measure select where people stop using it.)
static void set_bit(std::vector<fd_mask>& bits, int fd) {
    bits[fd / NFDBITS] |= static_cast<fd_mask>(1UL << (fd % NFDBITS));
}

static bool bit_is_set(const std::vector<fd_mask>& bits, int fd) {
    return (bits[fd / NFDBITS] & static_cast<fd_mask>(1UL << (fd % NFDBITS))) != 0;
}

static int select_once(const Watched& w, std::vector<fd_mask>& bits) {
    std::fill(bits.begin(), bits.end(), 0);            // select overwrote last call's set
    for (int fd : w.fds) set_bit(bits, fd);
    timeval timeout{call_timeout_seconds, 0};
    int ready = select(w.max_fd + 1, reinterpret_cast<fd_set*>(bits.data()), nullptr, nullptr,
                       &timeout);
    if (ready < 0) die("select");
    if (ready == 0) die_with("select", "timed out, yet one descriptor was readable");
    for (int fd : w.fds)                                // which one? ask every descriptor
        if (bit_is_set(bits, fd)) return fd;
    return -1;
}

static int poll_once(const Watched& w, std::vector<pollfd>& fds) {
    fds.clear();                                        // capacity kept: no allocation
    for (int fd : w.fds) fds.push_back(pollfd{fd, POLLIN, 0});
    int ready = poll(fds.data(), fds.size(), call_timeout_seconds * 1000);
    if (ready < 0) die("poll");
    if (ready == 0) die_with("poll", "timed out, yet one descriptor was readable");
    for (const pollfd& p : fds)
        if (p.revents & POLLIN) return p.fd;
    return -1;
}

// The interest list lives in the kernel (filled once by watch_all_with_epoll);
// when a descriptor becomes ready, the kernel puts it on the instance's ready
// list, so epoll_wait only hands over that list, whatever N is.
static int epoll_once(int epoll_fd) {
    epoll_event events[8];
    int ready = epoll_wait(epoll_fd, events, 8, call_timeout_seconds * 1000);
    if (ready < 0) die("epoll_wait");
    if (ready == 0) die_with("epoll_wait", "timed out, yet one descriptor was readable");
    return events[0].data.fd;
}

static int watch_all_with_epoll(const Watched& w) {
    int epoll_fd = epoll_create1(EPOLL_CLOEXEC);
    if (epoll_fd < 0) die("epoll_create1");
    for (int fd : w.fds) {
        epoll_event event{};
        event.events = EPOLLIN;                         // level-triggered, like select and poll
        event.data.fd = fd;
        if (epoll_ctl(epoll_fd, EPOLL_CTL_ADD, fd, &event) < 0) die("epoll_ctl");
    }
    return epoll_fd;
}

// ---- timing ------------------------------------------------------------------------

// What reading the clock twice costs, averaged: subtracted from every timed call.
static double clock_overhead_ns() {
    const int rounds = 100000;
    Clock::duration total{};
    for (int i = 0; i < rounds; i++) {
        auto start = Clock::now();
        total += Clock::now() - start;
    }
    return std::chrono::duration<double, std::nano>(total).count() / rounds;
}

// The average cost of one_call(), in microseconds, over about `seconds`.
//
// Before each call one random descriptor is made ready (a byte written to its
// peer) and after it the byte is read back, so the next call again finds
// exactly one. Those two system calls stay OUTSIDE the timed region: the
// clock is read right before and right after one_call() only. Subtracting
// their cost instead would take a difference of two larger, noisier numbers.
// (The write does carry epoll's other half: it is what puts the descriptor on
// the epoll ready list. Untimed here, it is the same for every poller.)
template <typename OneCall>
static double microseconds_per_call(const Watched& w, double seconds, double overhead_ns,
                                    OneCall one_call) {
    std::mt19937 random(14);                            // same sequence for every poller
    std::uniform_int_distribution<int> pick(0, static_cast<int>(w.fds.size()) - 1);
    const auto budget = std::chrono::duration<double>(seconds);

    Clock::duration timed{};
    long calls = 0;
    const auto started = Clock::now();
    for (long round = 0;; round++) {
        int i = pick(random);
        make_ready(w, i);
        auto before = Clock::now();
        int found = one_call();
        auto after = Clock::now();
        make_idle(w, i);
        if (found != w.fds[i])
            die_with("bench_pollers", "the poller reported the wrong descriptor");

        if (round < kWarmupCalls) continue;
        timed += after - before;
        calls++;
        if (calls >= kMinCalls && after - started >= budget) break;
    }
    double ns = std::chrono::duration<double, std::nano>(timed).count() / calls - overhead_ns;
    return std::max(ns, 0.0) / 1000;
}

// ---- the table ---------------------------------------------------------------------

struct Row {
    int n;
    double select_us, poll_us, epoll_us;
};

static Row measure(int n, double seconds, double overhead_ns) {
    Watched w = open_watched(n);
    std::vector<fd_mask> bits(w.max_fd / NFDBITS + 1);
    std::vector<pollfd> fds;
    fds.reserve(n);
    int epoll_fd = watch_all_with_epoll(w);

    Row row{n, 0, 0, 0};
    row.select_us = microseconds_per_call(w, seconds, overhead_ns,
                                          [&] { return select_once(w, bits); });
    row.poll_us = microseconds_per_call(w, seconds, overhead_ns,
                                        [&] { return poll_once(w, fds); });
    row.epoll_us = microseconds_per_call(w, seconds, overhead_ns,
                                         [&] { return epoll_once(epoll_fd); });
    close(epoll_fd);
    close_watched(w);
    return row;
}

static std::string source_cell(int n, bool select) {
    for (const SourceRow& s : kSource)
        if (s.n == n) {
            char text[32];
            std::snprintf(text, sizeof text, "%g", select ? s.select_us : s.epoll_us);
            return text;
        }
    return "-";
}

static void print_header() {
    std::printf("One call with N watched descriptors, one of them ready (µs per call;\n"
                "select and poll include rebuilding and scanning their set):\n\n");
    std::printf("%7s %11s %11s %11s   %15s %14s\n", "N", "select", "poll", "epoll_wait",
                "source: select", "source: epoll");
}

static void print_row(const Row& r, bool tsv) {
    if (tsv) {
        std::printf("%d\t%.3f\t%.3f\t%.3f\n", r.n, r.select_us, r.poll_us, r.epoll_us);
    } else {
        std::printf("%7d %11.2f %11.2f %11.2f   %15s %14s\n", r.n, r.select_us, r.poll_us,
                    r.epoll_us, source_cell(r.n, true).c_str(), source_cell(r.n, false).c_str());
    }
    std::fflush(stdout);
}

int main(int argc, char** argv) {
    bool tsv = false;
    double seconds = 0.3;
    for (int i = 1; i < argc; i++) {
        std::string arg = argv[i];
        if (arg == "--tsv") {
            tsv = true;
        } else if (arg == "--no-wait") {
            call_timeout_seconds = 0;
        } else if (arg == "--seconds" && i + 1 < argc) {
            char* end = nullptr;
            seconds = std::strtod(argv[++i], &end);
            if (*end != '\0' || !(seconds > 0 && seconds <= 60))
                usage_error("--seconds wants a number of seconds from 0 to 60");
        } else {
            usage_error("unknown argument: " + arg);
        }
    }

    long limit = raise_descriptor_limit();
    double overhead_ns = clock_overhead_ns();
    if (!tsv) print_header();
    for (int n : kSizes) {
        if (n + kSpareDescriptors > limit) {
            std::fprintf(stderr,
                         "bench_pollers: skipping N=%d: it needs about %d open files and the "
                         "limit (RLIMIT_NOFILE, hard limit included) is %ld; raise it as root "
                         "(ulimit -Hn, /etc/security/limits.conf)\n",
                         n, n + kSpareDescriptors, limit);
            if (!tsv) std::printf("%7d %11s\n", n, "skipped");
            continue;
        }
        print_row(measure(n, seconds, overhead_ns), tsv);
    }
    if (!tsv) std::printf("\n(clock overhead %.0f ns per call, already subtracted)\n", overhead_ns);
    return 0;
}
