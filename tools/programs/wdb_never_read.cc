// wdb_never_read: a WeensyDB client that asks for a lot and never reads it.
//
//   usage: wdb_never_read HOST PORT [SIZE]     (SIZE in bytes, or with K or M
//                                               suffix; default 1M)
//
// It stores a SIZE-byte value under the key `big`, then sends `get big` 64
// times in one go (pipelined) and never reads a byte of the replies. The
// server's replies fill the client's receive buffer and the server's send
// buffer (a few MiB on loopback), and then the server's write() blocks, for
// as long as this client lives.
//
// That is harmless for a server that writes without holding a lock (lesson
// 06). A server that holds its table lock across write() (lesson 05) now
// blocks every other client too, until you press Ctrl-C here.
//
// The default, 1 MiB, is the largest value WeensyDB (and a stock memcached)
// stores: 64 replies of it are far more than any socket buffer holds.
#include "common/client.h"
#include "common/errors.h"
#include "common/io.h"
#include "common/server.h"

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <netdb.h>
#include <string>
#include <sys/socket.h>
#include <unistd.h>

static const std::size_t kDefaultSize = 1024 * 1024;
static const std::size_t kMaxSize = 1024 * 1024 * 1024;
static const int kGets = 64;

[[noreturn]] static void usage() {
    std::fprintf(stderr, "usage: wdb_never_read HOST PORT [SIZE]   "
                         "(bytes, or with a K or M suffix; default 1M)\n");
    std::exit(2);
}

// Parses "1000", "64K" or "8M" (K and M are 1024 and 1024*1024).
// Returns 0 if text is not a size from 1 byte to 1 GiB.
static std::size_t parse_size(const char* text) {
    char* end = nullptr;
    errno = 0;
    unsigned long long n = std::strtoull(text, &end, 10);
    if (errno != 0 || end == text || text[0] == '-' || n > kMaxSize)
        return 0;
    unsigned long long unit = 1;
    if (*end == 'K' || *end == 'k')
        unit = 1024;
    else if (*end == 'M' || *end == 'm')
        unit = 1024 * 1024;
    if (unit != 1)
        end++;
    n *= unit;   // cannot overflow: n <= 1 GiB before
    if (*end != '\0' || n == 0 || n > kMaxSize)
        return 0;
    return static_cast<std::size_t>(n);
}

// Sends `set big 0 0 SIZE` and its SIZE data bytes, a chunk at a time so
// that a large value never has to sit in memory whole.
static void send_set(int fd, std::size_t size) {
    std::string header = "set big 0 0 " + std::to_string(size) + "\r\n";
    if (!write_all(fd, header.data(), header.size()))
        die("write");
    static char chunk[64 * 1024];
    std::fill(std::begin(chunk), std::end(chunk), 'x');
    for (std::size_t left = size; left > 0;) {
        std::size_t n = std::min(left, sizeof(chunk));
        if (!write_all(fd, chunk, n))
            die("write");
        left -= n;
    }
    if (!write_all(fd, "\r\n", 2))
        die("write");
}

// Reads the one-line reply to the set; dies unless it is STORED.
static void expect_stored(int fd) {
    std::string line;
    char c;
    while (!line.ends_with("\r\n")) {
        ssize_t n = read(fd, &c, 1);   // byte by byte: the reply is one short line
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            die("read");
        if (n == 0)
            die_with("set big", "the server closed the connection instead of replying");
        line += c;
    }
    if (line != "STORED\r\n") {
        line.resize(line.size() - 2);
        die_with("set big", ("the server replied `" + line + "`, not STORED").c_str());
    }
}

int main(int argc, char** argv) {
    if (argc < 3 || argc > 4 || parse_port(argv[2]) <= 0)
        usage();
    std::size_t size = argc == 4 ? parse_size(argv[3]) : kDefaultSize;
    if (size == 0)
        usage();
    std::signal(SIGPIPE, SIG_IGN);   // a closed connection: report EPIPE, do not die silently
    std::string shown;
    int fd = connect_tcp(argv[1], argv[2], shown);
    std::fprintf(stderr, "connected to %s; storing a %zu-byte value under the key big\n",
                 shown.c_str(), size);
    send_set(fd, size);
    expect_stored(fd);

    // All the requests in one write: they are tiny, so this never blocks,
    // and the server finds them all waiting.
    std::string gets;
    for (int i = 0; i < kGets; i++)
        gets += "get big\r\n";
    if (!write_all(fd, gets.data(), gets.size()))
        die("write");
    unsigned long long requested = static_cast<unsigned long long>(size) * kGets;
    std::fprintf(stderr, "stored; sent %d pipelined `get big` requests, asking for %llu bytes "
                         "(%d x %zu); now never reading them (Ctrl-C to stop)\n",
                 kGets, requested, kGets, size);
    if (requested < 16 * 1024 * 1024)
        std::fprintf(stderr, "(that may fit in the socket buffers, so the server's write might "
                             "not block: try a larger SIZE)\n");
    for (;;)
        pause();   // hold the connection open, its replies unread
}
