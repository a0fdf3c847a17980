// wdb_never_close: a WeensyDB client that connects and never closes.
//
//   usage: wdb_never_close HOST PORT
//
// It sends `get never-close` once a second, reads each reply, and keeps the
// connection open until you press Ctrl-C. Each request is well-formed and
// answered at once; the harm is only that the connection never ends. A
// server that serves one connection at a time (lessons 03 and 05) is stuck
// with this client: every other client waits. Start it, then try a second
// client (e.g. `printf 'get x\r\n' | nc HOST PORT`) and watch it hang.
#include "common/client.h"
#include "common/errors.h"
#include "common/io.h"
#include "common/server.h"

#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <netdb.h>
#include <string>
#include <sys/socket.h>
#include <unistd.h>

static const char kRequest[] = "get never-close\r\n";

[[noreturn]] static void usage() {
    std::fprintf(stderr, "usage: wdb_never_close HOST PORT\n");
    std::exit(2);
}

// True once `reply` holds a whole reply to a get: it ends with END, or with
// an error line (the server may not know `get`).
static bool reply_complete(const std::string& reply) {
    if (reply.size() < 2 || reply.compare(reply.size() - 2, 2, "\r\n") != 0)
        return false;
    std::size_t start = reply.rfind("\r\n", reply.size() - 3);
    std::string last = reply.substr(start == std::string::npos ? 0 : start + 2);
    return last == "END\r\n" || last.starts_with("ERROR") || last.starts_with("CLIENT_ERROR") ||
           last.starts_with("SERVER_ERROR");
}

// Reads one reply. Dies if the server closes the connection: then the
// server, not this client, ended the conversation, which is worth knowing.
static std::string read_reply(int fd) {
    std::string reply;
    char buffer[4096];
    while (!reply_complete(reply)) {
        ssize_t n = read(fd, buffer, sizeof(buffer));
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            die("read");
        if (n == 0)
            die_with("read", "the server closed the connection");
        reply.append(buffer, static_cast<std::size_t>(n));
    }
    return reply;
}

// The last line of a reply, without its \r\n, for a one-line summary.
static std::string last_line(const std::string& reply) {
    std::string body = reply.substr(0, reply.size() - 2);
    std::size_t start = body.rfind("\r\n");
    return start == std::string::npos ? body : body.substr(start + 2);
}

int main(int argc, char** argv) {
    if (argc != 3 || parse_port(argv[2]) <= 0)
        usage();
    std::signal(SIGPIPE, SIG_IGN);   // a closed connection: report EPIPE, do not die silently
    std::string shown;
    int fd = connect_tcp(argv[1], argv[2], shown);
    std::fprintf(stderr, "connected to %s; holding the connection open and never closing it "
                         "(Ctrl-C to stop)\n", shown.c_str());
    for (long count = 1;; count++) {
        if (!write_all(fd, kRequest, sizeof(kRequest) - 1))
            die("write");
        // If the server is busy with someone else, this read waits: the
        // message below appears only once the server answers us.
        std::string reply = read_reply(fd);
        std::fprintf(stderr, "request %ld: get never-close -> %s (connection still open)\n", count,
                     last_line(reply).c_str());
        sleep(1);
    }
}
