// wdb_bench: the course's load generator for WeensyDB, and for anything else
// that speaks the memcached text protocol (`set` and `get`), memcached included.
//
//   usage: wdb_bench -p PORT [-h HOST] [-c CONNECTIONS] [-d SECONDS] [-g GET_PERCENT]
//                    [-s VALUE_SIZE] [-k KEYS] [-t THREADS] [--reply-timeout SECONDS] [--tsv]
//
// Every connection runs a closed loop: send one request, read the whole reply,
// check it, note how long it took, send the next. The load therefore follows
// the server: a slow server is sent fewer requests, and ops/s says how much it
// serves with CONNECTIONS requests in flight.
//
// Before the clock starts, every key is stored with `set`. The timed run then
// sends `get` (GET_PERCENT of the requests) and `set` on random keys. A key
// always holds the same value, made from its number, so every `get` reply is
// checked byte for byte even while other connections overwrite the key: a
// server that tears or mixes up values is caught.
//
// Output: a summary for people and, with --tsv, one last line for scripts:
//   ops_per_sec <TAB> p50_us <TAB> p99_us <TAB> errors
// Exit status: 0; 1 if a reply was wrong or a connection broke; 2 on bad usage.
#include "common/errors.h"
#include "common/io.h"

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cinttypes>
#include <csignal>
#include <cstdarg>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <getopt.h>
#include <memory>
#include <mutex>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <random>
#include <string>
#include <sys/socket.h>
#include <sys/time.h>
#include <thread>
#include <unistd.h>
#include <vector>

using Clock = std::chrono::steady_clock;

static const char kUsage[] =
    "usage: wdb_bench -p PORT [-h HOST] [-c CONNECTIONS] [-d SECONDS] [-g GET_PERCENT]\n"
    "                 [-s VALUE_SIZE] [-k KEYS] [-t THREADS] [--reply-timeout SECONDS] [--tsv]\n";

// A server that stops answering must not hang the benchmark: a read or a
// write that waits this long is counted as an error. --reply-timeout sets it
// (tools/bench passes 5 s times NETCOURSE_TIMEOUT_SCALE), once, before any
// connection is made.
static double reply_timeout_seconds = 5;
// The longest reply line we accept ("VALUE <key> <flags> <bytes>" is short).
static const std::size_t kMaxLine = 1024;

// ---- options ----------------------------------------------------------------

struct Options {
    std::string host = "127.0.0.1";
    std::string port;          // required
    int connections = 8;
    double seconds = 3;
    int get_percent = 90;
    int value_size = 100;
    int keys = 1000;
    int threads = 0;           // 0: one thread per connection
    double reply_timeout = 5;  // seconds; see reply_timeout_seconds
    bool tsv = false;
};

[[noreturn]] static void usage_error(const std::string& problem) {
    std::fprintf(stderr, "wdb_bench: %s\n%s", problem.c_str(), kUsage);
    std::exit(2);
}

// A whole decimal number from min to max, or a usage error naming the option.
static long parse_integer(const char* text, long min, long max, char option) {
    char* end = nullptr;
    errno = 0;
    long n = std::strtol(text, &end, 10);
    if (errno != 0 || end == text || *end != '\0' || n < min || n > max)
        usage_error("-" + std::string(1, option) + " wants a number from " + std::to_string(min) +
                    " to " + std::to_string(max) + ", not '" + text + "'");
    return n;
}

static double parse_seconds(const char* text, const std::string& option) {
    char* end = nullptr;
    double seconds = std::strtod(text, &end);
    if (end == text || *end != '\0' || !(seconds > 0 && seconds <= 3600))
        usage_error(option + " wants seconds, more than 0 and at most 3600, not '" + text + "'");
    return seconds;
}

static Options parse_options(int argc, char** argv) {
    static const option long_options[] = {{"tsv", no_argument, nullptr, 'T'},
                                          {"reply-timeout", required_argument, nullptr, 'R'},
                                          {nullptr, 0, nullptr, 0}};
    Options o;
    opterr = 0;  // we print our own message, then the usage line
    int c;
    while ((c = getopt_long(argc, argv, ":h:p:c:d:g:s:k:t:", long_options, nullptr)) != -1) {
        switch (c) {
        case 'h': o.host = optarg; break;
        case 'p': o.port = std::to_string(parse_integer(optarg, 1, 65535, 'p')); break;
        case 'c': o.connections = static_cast<int>(parse_integer(optarg, 1, 1000, 'c')); break;
        case 'd': o.seconds = parse_seconds(optarg, "-d"); break;
        case 'g': o.get_percent = static_cast<int>(parse_integer(optarg, 0, 100, 'g')); break;
        case 's': o.value_size = static_cast<int>(parse_integer(optarg, 0, 1000000, 's')); break;
        case 'k': o.keys = static_cast<int>(parse_integer(optarg, 1, 10000000, 'k')); break;
        case 't': o.threads = static_cast<int>(parse_integer(optarg, 1, 1000, 't')); break;
        case 'T': o.tsv = true; break;
        case 'R': o.reply_timeout = parse_seconds(optarg, "--reply-timeout"); break;
        case ':':
            usage_error(std::string("option -") + static_cast<char>(optopt) + " needs a value");
        default:
            usage_error(optopt ? std::string("unknown option -") + static_cast<char>(optopt)
                               : std::string("unknown option ") + argv[optind - 1]);
        }
    }
    if (optind < argc)
        usage_error(std::string("unexpected argument '") + argv[optind] + "'");
    if (o.port.empty())
        usage_error("-p PORT is required");
    if (o.threads == 0 || o.threads > o.connections)
        o.threads = o.connections;
    return o;
}

// ---- reporting problems -------------------------------------------------------

// Many connections may fail at once (the server crashed): show the first few
// messages, count them all.
static std::mutex report_mutex;
static int reports_shown = 0;
static const int kMaxReports = 10;

__attribute__((format(printf, 1, 2))) static void report(const char* format, ...) {
    std::lock_guard<std::mutex> lock(report_mutex);
    if (++reports_shown > kMaxReports) {
        if (reports_shown == kMaxReports + 1)
            std::fprintf(stderr, "wdb_bench: (further errors are counted, not shown)\n");
        return;
    }
    std::va_list args;
    va_start(args, format);
    std::fputs("wdb_bench: ", stderr);
    std::vfprintf(stderr, format, args);
    std::fputc('\n', stderr);
    va_end(args);
}

// A reply as a short printable string: "\r\n" shown as such, long ones cut.
static std::string printable(const std::string& bytes) {
    std::string out;
    for (char c : bytes.substr(0, 60)) {
        if (c == '\r') out += "\\r";
        else if (c == '\n') out += "\\n";
        else if (c >= 32 && c < 127) out += c;
        else out += '?';
    }
    return bytes.size() > 60 ? out + "..." : out;
}

// Seconds as people write them: "5", "7.5".
static std::string seconds_text(double seconds) {
    char text[32];
    std::snprintf(text, sizeof(text), "%g", seconds);
    return text;
}

// ---- connecting -----------------------------------------------------------------

struct Target {
    std::string name;            // "HOST:PORT", for messages
    addrinfo* addresses = nullptr;
};

// Resolves HOST and PORT once; every connection, and reconnection, uses the result.
static Target resolve(const Options& o) {
    addrinfo hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    Target target;
    bool ipv6_address = o.host.find(':') != std::string::npos;
    target.name = (ipv6_address ? "[" + o.host + "]" : o.host) + ":" + o.port;
    int rc = getaddrinfo(o.host.c_str(), o.port.c_str(), &hints, &target.addresses);
    if (rc != 0)
        die_with("getaddrinfo", gai_strerror(rc));
    return target;
}

static void set_socket_options(int fd) {
    // Each request leaves in one write and we wait for its reply, so Nagle's
    // algorithm could only delay it, never save a packet.
    int yes = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &yes, sizeof(yes));
    timeval timeout{};
    timeout.tv_sec = static_cast<time_t>(reply_timeout_seconds);
    timeout.tv_usec = static_cast<suseconds_t>((reply_timeout_seconds - timeout.tv_sec) * 1e6);
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof(timeout));
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, sizeof(timeout));
}

// Tries each address of the target in turn. Returns a connected socket, or -1
// with errno set and failed_call naming the call that failed last.
static int open_connection(const Target& target, const char*& failed_call) {
    int saved_errno = 0;
    failed_call = "connect";
    for (const addrinfo* a = target.addresses; a != nullptr; a = a->ai_next) {
        int fd = socket(a->ai_family, a->ai_socktype, a->ai_protocol);
        if (fd < 0) {
            saved_errno = errno;
            failed_call = "socket";
            continue;
        }
        if (connect(fd, a->ai_addr, a->ai_addrlen) == 0) {
            set_socket_options(fd);
            return fd;
        }
        saved_errno = errno;
        failed_call = "connect";
        close(fd);
    }
    errno = saved_errno;
    return -1;
}

// ---- reading replies ------------------------------------------------------------

// Bytes read from a connection and not used yet. TCP delivers a stream, not
// messages: one read() may return half a line, or a line and part of the next.
class ReplyReader {
  public:
    void reset(int fd) {
        fd_ = fd;
        buffer_.clear();
        start_ = 0;
    }

    // The next line, without its "\r\n". False if the connection broke: see problem().
    bool read_line(std::string& line) {
        std::size_t end;
        while ((end = buffer_.find("\r\n", start_)) == std::string::npos) {
            if (buffer_.size() - start_ > kMaxLine) {
                problem_ = "a reply line of more than " + std::to_string(kMaxLine) +
                           " bytes without \\r\\n: " + printable(buffer_.substr(start_));
                return false;
            }
            if (!read_more())
                return false;
        }
        line.assign(buffer_, start_, end - start_);
        start_ = end + 2;
        return true;
    }

    // Exactly n bytes. False if the connection broke: see problem().
    bool read_exactly(std::size_t n, std::string& bytes) {
        while (buffer_.size() - start_ < n) {
            if (!read_more())
                return false;
        }
        bytes.assign(buffer_, start_, n);
        start_ += n;
        return true;
    }

    const std::string& problem() const { return problem_; }

  private:
    bool read_more() {
        // Drop what was used already, so the buffer does not grow without end.
        buffer_.erase(0, start_);
        start_ = 0;
        char chunk[16384];
        ssize_t n;
        do {
            n = read(fd_, chunk, sizeof(chunk));
        } while (n < 0 && errno == EINTR);
        if (n > 0) {
            buffer_.append(chunk, static_cast<std::size_t>(n));
            return true;
        }
        if (n == 0)
            problem_ = "the server closed the connection";
        else if (errno == EAGAIN || errno == EWOULDBLOCK)
            problem_ = "no reply within " + seconds_text(reply_timeout_seconds) + " s";
        else
            problem_ = std::string("read: ") + std::strerror(errno);
        return false;
    }

    int fd_ = -1;
    std::string buffer_;
    std::size_t start_ = 0;
    std::string problem_;
};

// ---- the workload -----------------------------------------------------------------

// Every value is a window into one long run of "abc...zabc...": key k's value
// starts at letter k % 26. Neighbouring keys hold different values, and no
// value has to be built or stored per key.
class Values {
  public:
    explicit Values(std::size_t size) : size_(size) {
        for (std::size_t i = 0; i < size + 26; i++)
            letters_ += static_cast<char>('a' + i % 26);
    }
    const char* of(int key) const { return letters_.data() + key % 26; }
    std::size_t size() const { return size_; }

  private:
    std::size_t size_;
    std::string letters_;
};

static std::string key_name(int key) { return "key" + std::to_string(key); }

enum class Op { get, set };

// What a reply turned out to be.
enum class Verdict {
    ok,
    wrong,   // a complete reply with the wrong content: the stream is still in step
    broken,  // closed, timed out or unparseable: where the next reply starts is unknown
};

struct Stats {
    std::uint64_t ops = 0;                // correct replies in the timed run
    std::uint64_t errors = 0;
    std::vector<std::int64_t> latencies;  // nanoseconds, one per correct reply
};

// One connection to the server and the one request it has in flight.
class Connection {
  public:
    Connection(const Target& target, const Values& values, int fd, unsigned seed)
        : target_(target), values_(values), fd_(fd), random_(seed) {
        reader_.reset(fd);
    }
    ~Connection() {
        if (fd_ >= 0)
            close(fd_);
    }
    Connection(const Connection&) = delete;
    Connection& operator=(const Connection&) = delete;

    bool alive() const { return fd_ >= 0; }
    bool waiting() const { return waiting_; }
    Stats& stats() { return stats_; }

    // A get or a set of a random key, as the workload's mix says.
    void send_random(int keys, int get_percent) {
        int key = static_cast<int>(random_() % static_cast<unsigned>(keys));
        bool is_get = static_cast<int>(random_() % 100) < get_percent;
        send(is_get ? Op::get : Op::set, key);
    }

    void send(Op op, int key) {
        op_ = op;
        key_ = key;
        request_.clear();
        if (op == Op::get) {
            request_ += "get " + key_name(key) + "\r\n";
        } else {
            request_ += "set " + key_name(key) + " 0 0 " + std::to_string(values_.size()) + "\r\n";
            request_.append(values_.of(key), values_.size());
            request_ += "\r\n";
        }
        sent_at_ = Clock::now();
        if (!write_all(fd_, request_.data(), request_.size())) {
            fail(std::string("write: ") + std::strerror(errno));
            return;
        }
        waiting_ = true;
    }

    // Reads and checks the reply to the request in flight. When timed, a
    // correct reply counts as an operation and its latency is kept.
    Verdict finish(bool timed) {
        waiting_ = false;
        Verdict verdict = op_ == Op::get ? check_get_reply() : check_set_reply();
        if (verdict == Verdict::ok && timed) {
            stats_.ops++;
            Clock::duration latency = Clock::now() - sent_at_;
            stats_.latencies.push_back(std::chrono::nanoseconds(latency).count());
        }
        return verdict;
    }

  private:
    Verdict check_set_reply() {
        std::string line;
        if (!reader_.read_line(line))
            return fail(reader_.problem());
        if (line != "STORED")
            return wrong("expected STORED, got " + printable(line));
        return Verdict::ok;
    }

    Verdict check_get_reply() {
        std::string header, data, end;
        if (!reader_.read_line(header))
            return fail(reader_.problem());
        if (header == "END")
            return wrong("a miss (END), though every key was stored before the run");
        std::string expected = "VALUE " + key_name(key_) + " 0 " + std::to_string(values_.size());
        if (header != expected)
            return fail("expected '" + expected + "', got " + printable(header));
        if (!reader_.read_exactly(values_.size() + 2, data))
            return fail(reader_.problem());
        if (data.compare(values_.size(), 2, "\r\n") != 0)
            return fail("the value is not followed by \\r\\n: " + printable(data));
        if (!reader_.read_line(end))
            return fail(reader_.problem());
        if (end != "END")
            return fail("expected END after the value, got " + printable(end));
        if (data.compare(0, values_.size(), values_.of(key_), values_.size()) != 0)
            return wrong("wrong value bytes: " + printable(data));
        return Verdict::ok;
    }

    std::string what() const { return (op_ == Op::get ? "get " : "set ") + key_name(key_); }

    Verdict wrong(const std::string& problem) {
        stats_.errors++;
        report("%s: %s: %s", target_.name.c_str(), what().c_str(), problem.c_str());
        return Verdict::wrong;
    }

    // After a broken reply we no longer know where the next one starts in the
    // byte stream, so this connection is closed and a fresh one opened.
    Verdict fail(const std::string& problem) {
        stats_.errors++;
        waiting_ = false;
        report("%s: %s: %s (opening a new connection)", target_.name.c_str(), what().c_str(),
               problem.c_str());
        close(fd_);
        const char* failed_call;
        fd_ = open_connection(target_, failed_call);
        if (fd_ < 0)
            report("reconnecting to %s: %s: %s; this connection stops", target_.name.c_str(),
                   failed_call, std::strerror(errno));
        else
            reader_.reset(fd_);
        return Verdict::broken;
    }

    const Target& target_;
    const Values& values_;
    int fd_;
    ReplyReader reader_;
    std::minstd_rand random_;
    std::string request_;
    Op op_ = Op::get;
    int key_ = 0;
    bool waiting_ = false;
    Clock::time_point sent_at_;
    Stats stats_;
};

// ---- running --------------------------------------------------------------------

// Stores keys first, first + step, first + 2 step... on one connection.
// Returns false if a set failed: a benchmark of a server that cannot even
// store its keys would measure nothing.
static bool preload(Connection& c, int first, int step, int keys) {
    for (int key = first; key < keys && c.alive(); key += step) {
        c.send(Op::set, key);
        if (c.waiting() && c.finish(false) == Verdict::ok)
            continue;
        return false;
    }
    return c.alive();
}

// One thread's share of the connections, in lockstep: send a request on
// each, then read each reply. With one connection per thread (the default)
// this is the plain closed loop.
static void run_until(std::vector<Connection*> mine, const Options& o, Clock::time_point deadline) {
    while (Clock::now() < deadline) {
        bool any_alive = false;
        for (Connection* c : mine) {
            if (c->alive()) {
                any_alive = true;
                c->send_random(o.keys, o.get_percent);
            }
        }
        if (!any_alive)
            return;
        for (Connection* c : mine) {
            if (c->waiting())
                c->finish(true);
        }
    }
}

// Connection i belongs to thread i % threads.
static std::vector<std::vector<Connection*>> share_out(
    const std::vector<std::unique_ptr<Connection>>& connections, int threads) {
    std::vector<std::vector<Connection*>> shares(static_cast<std::size_t>(threads));
    for (std::size_t i = 0; i < connections.size(); i++)
        shares[i % shares.size()].push_back(connections[i].get());
    return shares;
}

static std::vector<std::unique_ptr<Connection>> connect_all(const Options& o, const Target& target,
                                                            const Values& values) {
    std::vector<std::unique_ptr<Connection>> connections;
    for (int i = 0; i < o.connections; i++) {
        const char* failed_call;
        int fd = open_connection(target, failed_call);
        if (fd < 0)
            die(failed_call);
        connections.push_back(
            std::make_unique<Connection>(target, values, fd, static_cast<unsigned>(i + 1)));
    }
    return connections;
}

// Every connection stores its share of the keys, all at once.
static void preload_all(const Options& o, const Target& target,
                        const std::vector<std::unique_ptr<Connection>>& connections) {
    std::vector<char> loaded(connections.size());
    std::vector<std::thread> threads;
    int step = static_cast<int>(connections.size());
    for (int i = 0; i < step; i++) {
        auto slot = static_cast<std::size_t>(i);
        threads.emplace_back(
            [&, i, slot] { loaded[slot] = preload(*connections[slot], i, step, o.keys); });
    }
    for (std::thread& t : threads)
        t.join();
    if (std::find(loaded.begin(), loaded.end(), 0) != loaded.end())
        die_with("wdb_bench",
                 ("storing the keys on " + target.name + " failed before the timed run").c_str());
}

// The latency below which p percent of the requests finished, in microseconds.
static double percentile_us(std::vector<std::int64_t>& latencies, double p) {
    if (latencies.empty())
        return 0;
    auto rank = static_cast<std::size_t>(p / 100 * static_cast<double>(latencies.size()));
    rank = std::min(rank, latencies.size() - 1);
    auto nth = latencies.begin() + static_cast<std::ptrdiff_t>(rank);
    std::nth_element(latencies.begin(), nth, latencies.end());
    return static_cast<double>(*nth) / 1000;
}

struct Summary {
    std::uint64_t ops = 0, errors = 0;
    double ops_per_sec = 0, p50_us = 0, p99_us = 0, max_us = 0;
};

static Summary summarize(const std::vector<std::unique_ptr<Connection>>& connections,
                         double elapsed) {
    Summary s;
    std::vector<std::int64_t> latencies;
    for (const auto& c : connections) {
        s.ops += c->stats().ops;
        s.errors += c->stats().errors;
        latencies.insert(latencies.end(), c->stats().latencies.begin(), c->stats().latencies.end());
    }
    s.ops_per_sec = static_cast<double>(s.ops) / elapsed;
    s.p50_us = percentile_us(latencies, 50);
    s.p99_us = percentile_us(latencies, 99);
    s.max_us = percentile_us(latencies, 100);
    return s;
}

static const char* plural(int n) { return n == 1 ? "" : "s"; }

static void print_summary(const Options& o, const Target& target, const Summary& s,
                          double elapsed) {
    std::printf("wdb_bench: %s, %d connection%s on %d thread%s, %.1f s, %d%% get / %d%% set, "
                "%d keys of %d bytes\n",
                target.name.c_str(), o.connections, plural(o.connections), o.threads,
                plural(o.threads), o.seconds, o.get_percent, 100 - o.get_percent, o.keys,
                o.value_size);
    std::printf("  requests  %" PRIu64 " correct replies in %.2f s: %.0f ops/s\n", s.ops, elapsed,
                s.ops_per_sec);
    std::printf("  latency   p50 %.1f us, p99 %.1f us, max %.1f us\n", s.p50_us, s.p99_us,
                s.max_us);
    std::printf("  errors    %" PRIu64 "%s\n", s.errors,
                s.errors ? " (see the messages above)" : "");
    if (o.tsv)
        std::printf("%.0f\t%.1f\t%.1f\t%" PRIu64 "\n", s.ops_per_sec, s.p50_us, s.p99_us, s.errors);
}

int main(int argc, char** argv) {
    Options o = parse_options(argc, argv);
    reply_timeout_seconds = o.reply_timeout;
    // A write to a connection the server closed must be an error (EPIPE)
    // that we report, not a SIGPIPE that silently kills the benchmark.
    std::signal(SIGPIPE, SIG_IGN);

    Target target = resolve(o);
    Values values(static_cast<std::size_t>(o.value_size));
    std::vector<std::unique_ptr<Connection>> connections = connect_all(o, target, values);
    preload_all(o, target, connections);

    Clock::time_point start = Clock::now();
    auto deadline = start + std::chrono::duration_cast<Clock::duration>(
                                std::chrono::duration<double>(o.seconds));
    std::vector<std::thread> threads;
    for (std::vector<Connection*>& share : share_out(connections, o.threads))
        threads.emplace_back(run_until, share, std::cref(o), deadline);
    for (std::thread& t : threads)
        t.join();
    double elapsed = std::chrono::duration<double>(Clock::now() - start).count();

    Summary summary = summarize(connections, elapsed);
    print_summary(o, target, summary, elapsed);
    freeaddrinfo(target.addresses);
    return summary.errors == 0 ? 0 : 1;
}
