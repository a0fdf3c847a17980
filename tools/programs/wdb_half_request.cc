// wdb_half_request: a WeensyDB client that sends half a request, then stalls.
//
//   usage: wdb_half_request HOST PORT
//
// It sends `set half 0 0 10\r\nhell`: the command line and 4 of the 10 data
// bytes, without the rest or the final \r\n, and then sends nothing more,
// ever. A server that reads a whole request while holding a lock (lesson 05),
// or that serves one connection at a time (lesson 03), now waits for bytes
// that never come, and every other client waits with it. A server that locks
// only once a request is complete (lesson 06) keeps serving the others.
//
// It stays connected until you press Ctrl-C, and says so if the server
// sends anything or closes the connection.
#include "common/client.h"
#include "common/errors.h"
#include "common/io.h"
#include "common/server.h"

#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <netdb.h>
#include <string>
#include <sys/socket.h>
#include <unistd.h>

// The whole request would be "set half 0 0 10\r\nhello worl\r\n".
static const char kHalf[] = "set half 0 0 10\r\nhell";
static const std::size_t kWholeSize = sizeof("set half 0 0 10\r\n") - 1 + 10 + 2;

[[noreturn]] static void usage() {
    std::fprintf(stderr, "usage: wdb_half_request HOST PORT\n");
    std::exit(2);
}

// Waits forever without sending. Reading (rather than sleeping) lets us
// tell the user if the server answers or gives up on us; a server that
// never does either just keeps this call blocked.
static void stall(int fd) {
    char buffer[4096];
    for (;;) {
        ssize_t n = read(fd, buffer, sizeof(buffer));
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            die("read");
        if (n == 0) {
            std::fprintf(stderr, "the server closed the connection (it gave up on the half request)\n");
            return;
        }
        std::fprintf(stderr, "the server sent %zd bytes: %.*s%s(still stalling)\n", n,
                     static_cast<int>(n), buffer, buffer[n - 1] == '\n' ? "" : "\n");
    }
}

int main(int argc, char** argv) {
    if (argc != 3 || parse_port(argv[2]) <= 0)
        usage();
    std::signal(SIGPIPE, SIG_IGN);   // a closed connection: report EPIPE, do not die silently
    std::string shown;
    int fd = connect_tcp(argv[1], argv[2], shown);
    if (!write_all(fd, kHalf, sizeof(kHalf) - 1))
        die("write");
    std::fprintf(stderr, "connected to %s; sent %zu of the %zu bytes of a set "
                         "(\"set half 0 0 10\\r\\nhell\") and will never send the rest "
                         "(Ctrl-C to stop)\n", shown.c_str(), sizeof(kHalf) - 1, kWholeSize);
    stall(fd);
    close(fd);
    return 0;
}
