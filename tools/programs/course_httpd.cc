// course-httpd: the course's own tiny HTTP/1.0 server, so that lesson 01's
// client never needs the internet.
//
//   usage: course-httpd -p PORT [-b ADDRESS] [--sendfile] [--rate MB/s]
//          (-p 0: any free port; 127.0.0.1 unless -b; an IPv6 address such as
//           -b ::1 works too)
//
//   --sendfile   (lesson 16) send the /big and /bytes/N bodies with sendfile()
//                from a file holding the text, instead of read()+write() through
//                a buffer of this program
//   --rate R     (lesson 16) at most R MB/s (10^6 bytes) per connection, a token
//                bucket: object stores cap each connection, and downloaders open
//                several to go faster
//
// Pages (every reply: status line and headers in one write, the body after):
//   /            a list of these pages
//   /small       a one-line body
//   /big         4 MiB of numbered text lines (/bytes/N: the first N bytes of it)
//   /dribble     a short body written one byte per write(), 2 ms apart, so a
//                client sees it arrive in many small pieces
//   /binary      512 bytes that are not text: every byte value 0..255, then
//                255..0 (a NUL first), for clients that treat a reply as a C string
// Any other path gets 404 with a short body. HEAD gets the same header without
// the body. /big and /bytes/N answer `Range: bytes=A-B` (or `bytes=A-`) with
// 206 and Content-Range; a range that starts past the end, or that the server
// cannot read, gets 416 with `Content-Range: bytes */SIZE`.
// Every request is logged on stderr, one line: method, path, range, status.
// Each connection is served by its own thread and closed after one reply.
//
// What clients cannot do to it, however many and however slow:
//   * keep a thread for ever: the whole request must arrive within
//     kRequestSeconds (else 408), and a reply the client stops reading for
//     kSendSeconds is given up;
//   * exhaust its memory: at most kMaxClients threads at once (the others wait
//     in the listen backlog), each with a small stack, and a body is made and
//     written a piece at a time;
//   * crash it: a thread that cannot be created costs that one client a 503;
//   * make it spin when it runs out of descriptors (see accept_with_reserve).
#include "common/errors.h"
#include "common/io.h"
#include "common/server.h"

#include <algorithm>
#include <arpa/inet.h>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <new>
#include <poll.h>
#include <mutex>
#include <pthread.h>
#include <semaphore>
#include <string>
#include <strings.h>
#include <sys/mman.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <thread>
#include <unistd.h>

static const std::size_t kBigSize = 4 * 1024 * 1024;
static const std::size_t kMaxBytes = 64 * 1024 * 1024;
static const std::size_t kMaxRequest = 8192;
static const int kRequestSeconds = 10;         // for the whole request, from accept()
static const int kSendSeconds = 30;            // without progress, while writing a reply
static const int kMaxClients = 64;             // connections served at once
static const std::size_t kThreadStack = 256 * 1024;   // instead of 8 MiB: serve() needs ~20 KiB

// ---- the /big text -------------------------------------------------------------

// 64-byte lines, each numbered, so a byte-level difference is easy to find by eye.
static const std::size_t kLineLength = 64;
static const std::size_t kPieceLines = 256;   // a piece of 16 KiB

// Fills piece with kPieceLines lines of the text, the first numbered first_line.
// (Numbers stay below 10^8, 8 digits: 64 MiB is 1,048,576 lines. The % says
// so to the compiler, which otherwise warns that a line might not fit.)
static void make_piece(char* piece, std::size_t first_line) {
    for (std::size_t i = 0; i < kPieceLines; i++)
        std::snprintf(piece + i * kLineLength, kLineLength + 1,   // + 1: snprintf's '\0'
                      "%08u the quick brown fox jumps over the lazy dog 0123456789\n",
                      static_cast<unsigned>((first_line + i) % 100000000));
}

static const std::size_t kPieceSize = kPieceLines * kLineLength;

// ---- lesson 16's switches: --rate and --sendfile ----------------------------------------

static double rate_bytes_per_second = 0;   // --rate, in bytes; 0: no limit
static bool use_sendfile = false;          // --sendfile

// A token bucket, one per connection: tokens (bytes that may be sent) flow in
// at the rate, up to a burst of kBurst; a piece waits until it has enough.
// A burst of 64 KiB: big enough for few wake-ups, small enough for a steady rate.
static const double kBurst = 64 * 1024;

struct Pacer {
    using Clock = std::chrono::steady_clock;
    double tokens = kBurst;
    Clock::time_point last = Clock::now();

    // The most bytes to send in one call (the burst, or everything unpaced).
    std::size_t chunk(std::size_t wanted) const {
        return rate_bytes_per_second > 0 ? std::min(wanted, static_cast<std::size_t>(kBurst)) : wanted;
    }

    // Waits until n bytes may be sent, and takes their tokens.
    void take(std::size_t n) {
        if (rate_bytes_per_second <= 0)
            return;
        refill();
        if (tokens < static_cast<double>(n)) {
            double wait = (static_cast<double>(n) - tokens) / rate_bytes_per_second;
            std::this_thread::sleep_for(std::chrono::duration<double>(wait));
            refill();
        }
        tokens -= static_cast<double>(n);
    }

    void refill() {
        Clock::time_point now = Clock::now();
        tokens = std::min(kBurst, tokens + std::chrono::duration<double>(now - last).count() *
                                               rate_bytes_per_second);
        last = now;
    }
};

// Writes bytes [start, end) of the text, a piece at a time: the memory used
// is one piece, whether the range is 10 bytes or 64 MiB.
static bool write_big_text(int fd, std::size_t start, std::size_t end) {
    char piece[kPieceSize + 1];
    Pacer pacer;
    for (std::size_t at = start; at < end;) {
        std::size_t first = at / kPieceSize * kPieceSize;   // the piece that holds `at`
        make_piece(piece, first / kLineLength + 1);
        std::size_t length = pacer.chunk(std::min(first + kPieceSize, end) - at);
        pacer.take(length);
        if (!write_all(fd, piece + (at - first), length))
            return false;
        at += length;
    }
    return true;
}

// The text as a file, for sendfile(), which sends from a file's page cache and
// not from a buffer: a memfd (a file in memory, memfd_create(2)) grown on demand
// to the longest text asked for so far, under a mutex (every connection shares it).
static int text_file = -1;
static std::size_t text_file_size = 0;
static std::mutex text_file_mutex;

// Returns the file, holding at least n bytes of the text; -1 if it cannot be made.
static int text_file_of(std::size_t n) {
    std::lock_guard<std::mutex> hold(text_file_mutex);
    if (text_file < 0)
        text_file = memfd_create("course-httpd-text", MFD_CLOEXEC);
    if (text_file < 0)
        return -1;
    char piece[kPieceSize + 1];
    while (text_file_size < n) {   // pieces are whole: the size stays a multiple of kPieceSize
        make_piece(piece, text_file_size / kLineLength + 1);
        if (pwrite(text_file, piece, kPieceSize, static_cast<off_t>(text_file_size)) !=
            static_cast<ssize_t>(kPieceSize))
            return -1;
        text_file_size += kPieceSize;
    }
    return text_file;
}

// Sends bytes [start, end) of the text with sendfile(): the kernel copies from
// the file to the socket, and no byte of the body passes through this program.
static bool sendfile_big_text(int fd, std::size_t start, std::size_t end) {
    int file = text_file_of(end);
    if (file < 0)
        return false;
    Pacer pacer;
    off_t offset = static_cast<off_t>(start);
    while (static_cast<std::size_t>(offset) < end) {
        std::size_t length = pacer.chunk(end - static_cast<std::size_t>(offset));
        pacer.take(length);
        ssize_t sent = sendfile(fd, file, &offset, length);   // advances offset
        if (sent < 0 && errno == EINTR)
            continue;
        if (sent <= 0)
            return false;
        // (a short count is fine: the loop sends the rest, and the unused tokens are lost)
    }
    return true;
}

// ---- one request, one reply --------------------------------------------------------

enum class Request { complete, timed_out, bad };

// Reads until the blank line that ends a request's headers. The whole request
// must arrive within kRequestSeconds: a client that connects and says nothing,
// or sends a byte now and then, would otherwise keep this thread for ever.
static Request read_request(int fd, std::string& request) {
    using Clock = std::chrono::steady_clock;
    const Clock::time_point deadline = Clock::now() + std::chrono::seconds(kRequestSeconds);
    char buffer[1024];
    while (request.find("\r\n\r\n") == std::string::npos &&
           request.find("\n\n") == std::string::npos) {
        if (request.size() > kMaxRequest)
            return Request::bad;
        auto left = std::chrono::ceil<std::chrono::milliseconds>(deadline - Clock::now()).count();
        pollfd ready{fd, POLLIN, 0};
        int n_ready = left > 0 ? poll(&ready, 1, static_cast<int>(left)) : 0;
        if (n_ready < 0 && errno == EINTR)
            continue;
        if (n_ready == 0)
            return Request::timed_out;
        ssize_t n = n_ready > 0 ? read(fd, buffer, sizeof(buffer)) : -1;
        if (n <= 0)
            return Request::bad;   // closed early, or the connection broke
        request.append(buffer, static_cast<std::size_t>(n));
    }
    return Request::complete;
}

struct Reply {
    int status = 200;
    std::string text;           // the body, unless big_text:
    bool big_text = false;      // the first `length` bytes of the /big text,
    std::size_t length = 0;
    std::size_t first = 0;      // of which bytes [first, last] are sent (a Range; 206)
    std::size_t last = 0;
    bool dribble = false;
    bool head = false;          // HEAD: the header only
    const char* type = "text/plain";
    std::string extra_headers;  // e.g. Content-Range

    std::size_t body_size() const { return big_text ? last + 1 - first : text.size(); }
};

static Reply big(std::size_t n) {
    Reply reply;
    reply.big_text = true;
    reply.length = n;
    reply.first = 0;
    reply.last = n - 1;   // n == 0: last + 1 - first wraps back to 0
    reply.extra_headers = "Accept-Ranges: bytes\r\n";
    return reply;
}

static Reply error_reply(int status, const char* text) {
    Reply reply;
    reply.status = status;
    reply.text = text;
    return reply;
}

static Reply route(const std::string& method, const std::string& path) {
    Reply reply;
    if (method != "GET" && method != "HEAD") {
        reply = error_reply(405, "only GET and HEAD are served here\n");
    } else if (path == "/") {
        reply.text = "pages: /small /big /bytes/N /dribble /binary\n";
    } else if (path == "/small") {
        reply.text = "Hello from the netcourse server!\n";
    } else if (path == "/big") {
        reply = big(kBigSize);
    } else if (path.rfind("/bytes/", 0) == 0) {
        const char* digits = path.c_str() + 7;
        char* end = nullptr;
        unsigned long long n = std::strtoull(digits, &end, 10);
        if (*digits == '\0' || *end != '\0' || n > kMaxBytes)
            reply = error_reply(400, "want /bytes/N with N from 0 to 67108864\n");
        else
            reply = big(static_cast<std::size_t>(n));
    } else if (path == "/binary") {
        reply.type = "application/octet-stream";
        for (int i = 0; i < 256; i++)
            reply.text += static_cast<char>(i);
        for (int i = 255; i >= 0; i--)
            reply.text += static_cast<char>(i);
    } else if (path == "/dribble") {
        reply.text = "This body arrives one byte per write: did you keep calling recv()?\n";
        reply.dribble = true;
    } else {
        reply = error_reply(404, "no such page: try /\n");
    }
    return reply;
}

static const char* reason(int status) {
    switch (status) {
    case 200: return "OK";
    case 206: return "Partial Content";
    case 400: return "Bad Request";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 416: return "Range Not Satisfiable";
    case 503: return "Service Unavailable";
    default: return "Error";
    }
}

// The value of the request's Range header ("bytes=0-99"), or "" if it has none.
static std::string range_header(const std::string& request) {
    std::size_t at = 0;
    while ((at = request.find('\n', at)) != std::string::npos) {
        at++;
        if (strncasecmp(request.c_str() + at, "range:", 6) != 0)
            continue;
        std::size_t start = request.find_first_not_of(" \t", at + 6);
        std::size_t end = request.find_first_of("\r\n", start);
        return start == std::string::npos ? "" : request.substr(start, end - start);
    }
    return "";
}

// Applies `Range: bytes=A-B` (or bytes=A-) to a /big or /bytes/N reply: 206
// with Content-Range, B clamped to the end (RFC 9110 14.1.2). A range this
// server cannot satisfy, or read, gets 416 (RFC 9110 15.5.17).
static Reply apply_range(Reply reply, const std::string& range) {
    if (range.empty() || !reply.big_text || reply.status != 200)
        return reply;   // a range on another page is ignored: the whole page, 200
    unsigned long long a = 0, b = 0;
    int consumed = 0;
    bool closed = std::sscanf(range.c_str(), "bytes=%llu-%llu%n", &a, &b, &consumed) == 2 &&
                  range.c_str()[consumed] == '\0';
    bool open = !closed && std::sscanf(range.c_str(), "bytes=%llu-%n", &a, &consumed) == 1 &&
                range.c_str()[consumed] == '\0';
    std::size_t size = reply.length;
    if ((!closed && !open) || (closed && b < a) || a >= size) {
        Reply refused = error_reply(416, "want Range: bytes=A-B with A <= B and A below the size\n");
        refused.extra_headers = "Content-Range: bytes */" + std::to_string(size) + "\r\n";
        return refused;
    }
    reply.status = 206;
    reply.first = a;
    reply.last = open ? size - 1 : std::min<std::size_t>(b, size - 1);
    reply.extra_headers += "Content-Range: bytes " + std::to_string(reply.first) + "-" +
                           std::to_string(reply.last) + "/" + std::to_string(size) + "\r\n";
    return reply;
}

static bool send_body(int fd, const Reply& reply) {
    if (reply.head)
        return true;
    if (reply.big_text && use_sendfile)
        return sendfile_big_text(fd, reply.first, reply.last + 1);
    if (reply.big_text)
        return write_big_text(fd, reply.first, reply.last + 1);
    if (!reply.dribble)
        return write_all(fd, reply.text.data(), reply.text.size());
    // TCP_NODELAY: send each byte at once instead of letting Nagle's
    // algorithm gather them into one segment.
    int yes = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &yes, sizeof(yes));
    for (char c : reply.text) {
        if (!write_all(fd, &c, 1))
            return false;
        std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
    return true;
}

static void serve(int fd) {
    // A client that stops reading makes write() wait; after kSendSeconds
    // without progress it fails (EAGAIN), and the thread is free again.
    timeval send_limit{kSendSeconds, 0};
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &send_limit, sizeof(send_limit));

    std::string request;
    Reply reply;
    std::string method = "?", path = "?", range;
    switch (read_request(fd, request)) {
    case Request::timed_out:
        reply = error_reply(408, "no whole request within the time allowed\n");
        break;
    case Request::bad:
        reply = error_reply(400, "incomplete or oversized request\n");
        break;
    case Request::complete:
        char m[16], p[1024];
        if (std::sscanf(request.c_str(), "%15s %1023s", m, p) == 2) {
            method = m;
            path = p;
            range = range_header(request);
            reply = apply_range(route(method, path), range);
            reply.head = method == "HEAD";
        } else {
            reply = error_reply(400, "malformed request line\n");
        }
        break;
    }
    std::string head = "HTTP/1.0 " + std::to_string(reply.status) + " " + reason(reply.status) +
                       "\r\nContent-Type: " + reply.type + "\r\nContent-Length: " +
                       std::to_string(reply.body_size()) + "\r\n" + reply.extra_headers +
                       "Connection: close\r\n\r\n";
    bool ok = write_all(fd, head.data(), head.size()) && send_body(fd, reply);
    // (lesson 16's checks read the range of each request from this line)
    std::string shown_range = range.empty() ? "" : " [" + range + "]";
    std::fprintf(stderr, "%s %s%s -> %d, %zu body bytes%s\n", method.c_str(), path.c_str(),
                 shown_range.c_str(), reply.status, reply.head ? 0 : reply.body_size(),
                 ok ? "" : " (client went away)");
}

// ---- connections: bounded threads, and refusals ----------------------------------------

// The accept loop takes a slot before each accept(). While none is free, new
// clients wait in the kernel's listen backlog (connected, not yet accepted)
// and are served in turn as threads finish.
static std::counting_semaphore<kMaxClients> free_slots(kMaxClients);

// Tells a client that it cannot be served now, and hangs up. One short
// write on a new connection fits in its empty socket buffer: it cannot block.
static void refuse(int client, const char* why) {
    char reply[256];
    int length = std::snprintf(reply, sizeof(reply),
                               "HTTP/1.0 503 Service Unavailable\r\nContent-Type: text/plain\r\n"
                               "Content-Length: %zu\r\nConnection: close\r\n\r\n%s\n",
                               std::strlen(why) + 1, why);
    send(client, reply, static_cast<std::size_t>(length), MSG_DONTWAIT | MSG_NOSIGNAL);
    close(client);
    std::fprintf(stderr, "refused a client (503): %s\n", why);
}

static void* connection_thread(void* arg) {
    int fd = static_cast<int>(reinterpret_cast<std::intptr_t>(arg));
    try {
        serve(fd);
    } catch (const std::bad_alloc&) {
        std::fprintf(stderr, "out of memory serving a client: closed\n");
    }
    close(fd);
    free_slots.release();
    return nullptr;
}

// Serves the client on a detached thread with a small stack. pthread_create
// rather than std::thread: it can choose the stack size, and it returns an
// error instead of throwing one. Returns false (errno set) if no thread could
// be created, e.g. when the address space is full.
static bool start_thread(int client) {
    pthread_attr_t attributes;
    pthread_attr_init(&attributes);
    pthread_attr_setstacksize(&attributes, kThreadStack);
    pthread_attr_setdetachstate(&attributes, PTHREAD_CREATE_DETACHED);
    pthread_t thread;
    int failure = pthread_create(&thread, &attributes, connection_thread,
                               reinterpret_cast<void*>(static_cast<std::intptr_t>(client)));
    pthread_attr_destroy(&attributes);
    errno = failure;
    return failure == 0;
}

// Out of descriptors, accept() fails at once with EMFILE, whether a client
// waits or not, so a loop that simply retried would spin at 100% of a core,
// logging every failure. Instead we keep one descriptor in reserve: give it
// up, and accept() blocks as usual until a client comes, which gets the
// reserve's number. If the reserve can be taken back, a connection has
// closed meanwhile and the client is served. If not, the client is told 503
// and closed, and the reserve taken back. (The other cure, to stop accepting
// until a connection closes, would leave those clients waiting without a
// word, and wait for ever if no connection is open.) Only this thread opens
// descriptors, so the number given up is still free for the reserve.
//
// Returns the client to serve, or -1 with errno set.
static int accept_with_reserve(int listener, int& reserve) {
    if (reserve < 0)
        reserve = open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (reserve < 0) {
        // The whole system is out of files (ENFILE): nothing to give up.
        // Pause rather than spin until some are free again.
        usleep(10000);
        return -1;
    }
    close(reserve);
    int client = accept(listener, nullptr, nullptr);
    int failure = errno;
    reserve = open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (client >= 0 && reserve < 0) {
        refuse(client, "out of file descriptors");
        reserve = open("/dev/null", O_RDONLY | O_CLOEXEC);
        failure = EMFILE;
        client = -1;
    }
    errno = failure;
    return client;
}

// listen_tcp() for an IPv6 address (-b ::1): common/server.cc's speaks IPv4 only,
// and lesson 01 checks that its client reaches a server by an IPv6 address too.
static int listen_tcp6(const ServerOptions& options) {
    sockaddr_in6 address{};
    address.sin6_family = AF_INET6;
    address.sin6_port = htons(static_cast<uint16_t>(options.port));
    if (inet_pton(AF_INET6, options.bind_address, &address.sin6_addr) != 1)
        die_with(options.bind_address, "not an IPv6 address");
    int fd = socket(AF_INET6, SOCK_STREAM, 0);
    if (fd < 0)
        die("socket");
    int yes = 1;
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof(yes)) < 0)
        die("setsockopt");
    if (bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)) < 0)
        die("bind");
    if (listen(fd, SOMAXCONN) < 0)
        die("listen");
    return fd;   // announce_port() reads the port: sin6_port lies where sin_port does
}

// Takes lesson 16's switches (--sendfile, --rate R) out of argv, leaving the
// rest to parse_server_options(). Exits 2 on a bad rate.
static void take_lesson_16_switches(int& argc, char** argv) {
    int kept = 1;
    for (int i = 1; i < argc; i++) {
        if (std::strcmp(argv[i], "--sendfile") == 0) {
            use_sendfile = true;
        } else if (std::strcmp(argv[i], "--rate") == 0 && i + 1 < argc) {
            char* end = nullptr;
            double mb = std::strtod(argv[++i], &end);
            if (*end != '\0' || !(mb > 0)) {
                std::fprintf(stderr, "course-httpd: --rate wants MB/s above 0, not %s\n", argv[i]);
                std::exit(2);
            }
            rate_bytes_per_second = mb * 1e6;
        } else {
            argv[kept++] = argv[i];
        }
    }
    argc = kept;
    argv[argc] = nullptr;
}

int main(int argc, char** argv) {
    take_lesson_16_switches(argc, argv);
    ServerOptions options = parse_server_options(argc, argv);
    stop_on_signals();
    bool ipv6 = std::strchr(options.bind_address, ':') != nullptr;
    int listener = ipv6 ? listen_tcp6(options) : listen_tcp(options);
    int reserve = open("/dev/null", O_RDONLY | O_CLOEXEC);
    announce_port(listener);
    while (true) {
        free_slots.acquire();
        int client = accept(listener, nullptr, nullptr);
        if (client < 0 && (errno == EMFILE || errno == ENFILE))
            client = accept_with_reserve(listener, reserve);
        if (client >= 0 && start_thread(client))
            continue;   // the thread gives the slot back when it is done
        int failure = errno;
        free_slots.release();
        if (client >= 0) {
            std::fprintf(stderr, "pthread_create: %s\n", std::strerror(failure));
            refuse(client, "no thread to serve it");
        } else if (failure == ENOBUFS || failure == ENOMEM) {
            // The kernel is short of memory: say so, and give it a moment
            // rather than spin. (EMFILE, ENFILE: dealt with above; EINTR,
            // ECONNABORTED, EPROTO: that client is gone, go on.)
            std::perror("accept");
            usleep(10000);
        }
    }
}
