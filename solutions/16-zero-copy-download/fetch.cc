// fetch: saves one object from an HTTP server to a file, four ways.
//
//   usage: fetch HOST PORT PATH OUT [--buffer SIZE] [--splice] [--parallel N]
//
//   (default)       recv() into a buffer of --buffer bytes (64K unless told;
//                   4096, 64K, 1M ... up to 64M), write() it to the file
//   --splice        splice() socket -> pipe -> file: the body never enters
//                   this program's memory
//   --parallel N    a HEAD request for the size, then N connections at once,
//                   each asking for one slice with `Range: bytes=A-B` and
//                   writing it at its offset with pwrite()
//
// The download goes to OUT.part (in OUT's directory), renamed to OUT only once
// every byte has arrived: whatever fails (a 404, a server that dies, a body
// cut short), the program exits 1 and nothing is left under the name OUT.
#include "common/client.h"
#include "common/errors.h"
#include "common/io.h"

#include <algorithm>
#include <cerrno>
#include <cinttypes>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fcntl.h>
#include <mutex>
#include <string>
#include <sys/socket.h>
#include <thread>
#include <unistd.h>
#include <vector>

struct Options {
    std::size_t buffer = 64 * 1024;   // --buffer: bytes per recv()
    bool splice = false;              // --splice
    int parallel = 0;                 // --parallel N: N range requests at once (0: one GET)
};

// What the command line names: the server, the object, the file.
struct Download {
    const char* host;
    const char* port;
    const char* path;
    std::string out;       // the final name
    std::string partial;   // OUT.part: where the bytes go until they are all there
    Options options;
};

// ---- failing cleanly: exit 1, and no half file ------------------------------------------

static std::string partial_to_remove;   // set while OUT.part holds an unfinished download
static std::mutex failing;

// Runs at exit() (ours, or die()'s): an unfinished OUT.part goes away.
static void remove_partial() {
    if (!partial_to_remove.empty())
        unlink(partial_to_remove.c_str());
}

// Prints "fetch: WHAT" and exits 1. Safe from any thread: the first to fail
// takes the lock and exits; any other waits for ever, and dies with the process.
[[noreturn]] static void fail_download(const std::string& what) {
    failing.lock();
    std::fprintf(stderr, "fetch: %s\n", what.c_str());
    std::exit(1);
}

// ---- the command line --------------------------------------------------------------------

[[noreturn]] static void usage() {
    std::fprintf(stderr, "usage: fetch HOST PORT PATH OUT [--buffer SIZE] [--splice] [--parallel N]\n"
                         "       SIZE: bytes, or with K or M (4K, 64K, 1M), at most 64M\n");
    std::exit(2);
}

// "4096", "64K", "1M": a size in bytes, 1 to 64 MiB; 0 if text is not one.
static std::size_t parse_size(const char* text) {
    char* end = nullptr;
    unsigned long long n = std::strtoull(text, &end, 10);
    if (end == text)
        return 0;
    if (*end == 'K' || *end == 'k')
        n *= 1024, end++;
    else if (*end == 'M' || *end == 'm')
        n *= 1024 * 1024, end++;
    if (*end != '\0' || n == 0 || n > 64u * 1024 * 1024)
        return 0;
    return static_cast<std::size_t>(n);
}

static Download parse_command_line(int argc, char** argv) {
    Download d{};
    std::vector<const char*> positional;
    for (int i = 1; i < argc; i++) {
        std::string arg = argv[i];
        if (arg == "--buffer" && i + 1 < argc) {
            d.options.buffer = parse_size(argv[++i]);
            if (d.options.buffer == 0)
                usage();
        } else if (arg == "--splice") {
            d.options.splice = true;
        } else if (arg == "--parallel" && i + 1 < argc) {
            d.options.parallel = std::atoi(argv[++i]);
            if (d.options.parallel < 1 || d.options.parallel > 64)
                usage();
        } else if (arg.rfind("--", 0) == 0) {
            usage();
        } else {
            positional.push_back(argv[i]);
        }
    }
    if (positional.size() != 4)
        usage();
    d.host = positional[0];
    d.port = positional[1];
    d.path = positional[2];
    d.out = positional[3];
    d.partial = d.out + ".part";
    return d;
}

// ---- HTTP: one request, its header --------------------------------------------------------

struct Header {
    int status = 0;
    std::string status_line;           // "HTTP/1.0 404 Not Found", for messages
    std::uint64_t length = 0;          // Content-Length
    bool has_length = false;
    std::string content_range;         // "bytes 0-99/1000", or ""
};

// Sends `METHOD PATH HTTP/1.0`, with a Range header if range is not "".
static void send_request(int sock, const Download& d, const char* method, const std::string& range) {
    std::string request = std::string(method) + " " + d.path + " HTTP/1.0\r\nHost: " + d.host + "\r\n";
    if (!range.empty())
        request += "Range: " + range + "\r\n";
    request += "\r\n";
    if (!write_all(sock, request.data(), request.size()))
        die("send");
}

// The value of header `name` (lower case, with its colon) in head, or "".
static std::string header_value(const std::string& head, const char* name) {
    std::string lower = head;
    std::transform(lower.begin(), lower.end(), lower.begin(), [](unsigned char c) { return std::tolower(c); });
    std::size_t at = lower.find(std::string("\r\n") + name);
    if (at == std::string::npos)
        return "";
    std::size_t start = head.find_first_not_of(' ', at + 2 + std::strlen(name));
    return head.substr(start, head.find("\r\n", start) - start);
}

static Header parse_header(const std::string& head) {
    Header h;
    h.status_line = head.substr(0, head.find("\r\n"));
    if (std::sscanf(h.status_line.c_str(), "HTTP/%*d.%*d %d", &h.status) != 1)
        fail_download("not an HTTP reply: " + h.status_line);
    std::string length = header_value(head, "content-length:");
    h.has_length = !length.empty();
    h.length = std::strtoull(length.c_str(), nullptr, 10);
    h.content_range = header_value(head, "content-range:");
    return h;
}

// Takes the reply's header off the socket, and not one byte more: the body
// stays in the socket for recv() or splice() to move. A MSG_PEEK looks at what
// has arrived without taking it; then recv() takes exactly the header's bytes.
static Header read_header(int sock) {
    std::string head;
    char peeked[1024];
    while (true) {
        ssize_t n = recv(sock, peeked, sizeof(peeked), MSG_PEEK);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            die("recv");
        if (n == 0)
            fail_download("the server closed the connection before the end of the reply's header");
        std::string seen = head + std::string(peeked, static_cast<std::size_t>(n));
        std::size_t end = seen.find("\r\n\r\n", head.size() < 3 ? 0 : head.size() - 3);
        std::size_t take = end == std::string::npos ? static_cast<std::size_t>(n) : end + 4 - head.size();
        // take <= n bytes are waiting: MSG_WAITALL gets them all in one call
        ssize_t got = recv(sock, peeked, take, MSG_WAITALL);
        if (got != static_cast<ssize_t>(take))
            die("recv");
        head.append(peeked, take);
        if (end != std::string::npos)
            return parse_header(head);
        if (head.size() > 16384)
            fail_download("the reply's header is longer than 16 KiB");
    }
}

// ---- the body: recv() + write, or splice() -------------------------------------------------

[[noreturn]] static void cut_short(std::uint64_t got, std::uint64_t want) {
    fail_download("the server closed the connection after " + std::to_string(got) + " of the " +
                  std::to_string(want) + " bytes of the body");
}

// Moves `length` bytes of body from sock into file at offset, through a
// buffer of options.buffer bytes: one recv() and one pwrite() per bufferful.
static void copy_body(int sock, int file, std::uint64_t offset, std::uint64_t length,
                      const Options& options) {
    // BEGIN TODO 1: a loop of recv() into a buffer of options.buffer bytes (on the
    // heap: up to 64 MiB), each piece written to `file` at `offset + received`
    // with pwrite() (all of it: pwrite may write less). Stop after `length` bytes;
    // recv() returning 0 before then means the body was cut short: cut_short().
    // Retry on EINTR; any other error: die("recv") / die("pwrite").
    //| (void)sock; (void)file; (void)offset; (void)length; (void)options;
    std::vector<char> buffer(options.buffer);
    std::uint64_t received = 0;
    while (received < length) {
        std::size_t want = static_cast<std::size_t>(std::min<std::uint64_t>(buffer.size(), length - received));
        ssize_t n = recv(sock, buffer.data(), want, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            die("recv");
        if (n == 0)
            cut_short(received, length);
        for (ssize_t written = 0; written < n;) {
            ssize_t w = pwrite(file, buffer.data() + written, static_cast<std::size_t>(n - written),
                               static_cast<off_t>(offset + received) + written);
            if (w < 0 && errno == EINTR)
                continue;
            if (w < 0)
                die("pwrite");
            written += w;
        }
        received += static_cast<std::uint64_t>(n);
    }
    // END TODO 1
}

// Moves `length` bytes of body from sock into file at offset with splice(),
// which moves pages between a pipe and another descriptor inside the kernel.
// One end of every splice() must be a pipe, hence two hops:
// socket -> pipe (the pages are referenced, not copied), pipe -> file.
static void splice_body(int sock, int file, std::uint64_t offset, std::uint64_t length) {
    // BEGIN TODO 2: make a pipe; then, until `length` bytes have moved: splice()
    // from sock into the pipe's write end (at most what is left), then splice()
    // everything that entered the pipe from its read end into `file`, passing
    // a loff_t offset (splice advances it). 0 from the socket before the end:
    // cut_short(). EINTR: again. Other errors: die("splice"). No recv(), no read().
    //| (void)sock; (void)file; (void)offset; (void)length;
    int pipe_ends[2];
    if (pipe2(pipe_ends, O_CLOEXEC) < 0)
        die("pipe2");
    loff_t at = static_cast<loff_t>(offset);
    std::uint64_t moved = 0;
    while (moved < length) {
        ssize_t in = splice(sock, nullptr, pipe_ends[1], nullptr,
                            static_cast<std::size_t>(std::min<std::uint64_t>(length - moved, 1 << 20)),
                            SPLICE_F_MOVE | SPLICE_F_MORE);
        if (in < 0 && errno == EINTR)
            continue;
        if (in < 0)
            die("splice");
        if (in == 0)
            cut_short(moved, length);
        for (ssize_t left = in; left > 0;) {   // empty the pipe into the file
            ssize_t out = splice(pipe_ends[0], nullptr, file, &at, static_cast<std::size_t>(left),
                                 SPLICE_F_MOVE);
            if (out < 0 && errno == EINTR)
                continue;
            if (out < 0)
                die("splice");
            left -= out;
        }
        moved += static_cast<std::uint64_t>(in);
    }
    close(pipe_ends[0]);
    close(pipe_ends[1]);
    // END TODO 2
}

static void receive_body(int sock, int file, std::uint64_t offset, std::uint64_t length,
                         const Options& options) {
    if (options.splice)
        splice_body(sock, file, offset, length);
    else
        copy_body(sock, file, offset, length, options);
}

// ---- OUT.part, then OUT ---------------------------------------------------------------------

// Opens OUT.part for a new download, and arranges for it to be removed if the
// program exits before finish().
static int open_partial(const Download& d) {
    // BEGIN TODO 3: open d.partial for writing, created (mode 0644) if missing
    // and emptied if an earlier run left one behind; die("open") on failure.
    // Set partial_to_remove so that remove_partial() (atexit) deletes it if the
    // download fails.
    //| (void)d;
    //| return -1;
    int file = open(d.partial.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (file < 0)
        die("open");
    partial_to_remove = d.partial;
    return file;
    // END TODO 3
}

// Every byte is in OUT.part: it becomes OUT in one step. rename() replaces
// an existing OUT atomically: a reader sees the old file or the new, never half.
static void finish(int file, const Download& d) {
    // BEGIN TODO 4: close the file (its error counts: die("close")), then
    // rename() OUT.part to OUT (die("rename")), and clear partial_to_remove.
    //| (void)file; (void)d;
    if (close(file) < 0)
        die("close");
    if (rename(d.partial.c_str(), d.out.c_str()) < 0)
        die("rename");
    partial_to_remove.clear();
    // END TODO 4
}

// ---- one stream, or N ranges ------------------------------------------------------------------

static int connect_to(const Download& d) {
    std::string shown;
    return connect_tcp(d.host, d.port, shown);
}

static void expect_status(const Header& h, int want, const Download& d, const std::string& range) {
    if (h.status != want)
        fail_download(std::string(d.host) + ":" + d.port + " " + d.path +
                      (range.empty() ? "" : " (Range: " + range + ")") + ": the server answered `" +
                      h.status_line + "`, not " + std::to_string(want));
    if (!h.has_length)
        fail_download("the reply has no Content-Length: cannot tell a whole body from a cut one");
}

// One GET, its body into file.
static void fetch_whole(const Download& d, int file) {
    int sock = connect_to(d);
    send_request(sock, d, "GET", "");
    Header h = read_header(sock);
    expect_status(h, 200, d, "");
    receive_body(sock, file, 0, h.length, d.options);
    close(sock);
}

// One slice, bytes first..last of the object, into file at offset first.
static void fetch_range(const Download& d, int file, std::uint64_t first, std::uint64_t last,
                        std::uint64_t size) {
    int sock = connect_to(d);
    std::string range = "bytes=" + std::to_string(first) + "-" + std::to_string(last);
    send_request(sock, d, "GET", range);
    Header h = read_header(sock);
    expect_status(h, 206, d, range);
    std::string want = "bytes " + std::to_string(first) + "-" + std::to_string(last) + "/" +
                       std::to_string(size);
    if (h.content_range != want || h.length != last + 1 - first)
        fail_download("asked for " + range + ", the server sent Content-Range: " + h.content_range);
    receive_body(sock, file, first, h.length, d.options);
    close(sock);
}

// HEAD for the size, then the object in options.parallel slices at once.
static void fetch_parallel(const Download& d, int file) {
    int sock = connect_to(d);
    send_request(sock, d, "HEAD", "");
    Header h = read_header(sock);
    close(sock);
    expect_status(h, 200, d, "");
    std::uint64_t size = h.length;
    // BEGIN TODO 5: cut [0, size) into options.parallel slices of
    // ceil(size / N) bytes, the last one shorter, none empty (N may exceed
    // size); run fetch_range(d, file, first, last, size) for each on a thread
    // of its own (bytes first..last, both included), then join them all.
    //| (void)file; (void)size;
    std::uint64_t n = static_cast<std::uint64_t>(d.options.parallel);
    std::uint64_t slice = (size + n - 1) / n;
    std::vector<std::thread> threads;
    for (std::uint64_t first = 0; first < size; first += slice) {
        std::uint64_t last = std::min(first + slice, size) - 1;
        threads.emplace_back(fetch_range, std::cref(d), file, first, last, size);
    }
    for (std::thread& t : threads)
        t.join();
    // END TODO 5
    if (ftruncate(file, static_cast<off_t>(size)) < 0)   // (size 0: no slice wrote anything)
        die("ftruncate");
}

int main(int argc, char** argv) {
    Download d = parse_command_line(argc, argv);
    std::atexit(remove_partial);
    int file = open_partial(d);
    if (d.options.parallel > 0)
        fetch_parallel(d, file);
    else
        fetch_whole(d, file);
    finish(file, d);
    return 0;
}
