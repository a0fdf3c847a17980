// http_get: an HTTP/1.0 client that can skip the handshake's last, empty ACK.
//
//   usage: http_get [--defer-accept] [--no-quickack] [--nodelay] [--close-early] HOST PORT PATH
//
// Connects to HOST:PORT, sends one `GET PATH` request in a single write, and
// prints the body of the reply (everything after the blank line that ends the
// header) on stdout. It exits 1 if the status is not 200.
//
// The switches tune the connection, and each must be set *before* connect():
//
//   --defer-accept   TCP_DEFER_ACCEPT=1 on the client socket: the kernel holds
//                    back the ACK that completes the handshake, waiting for our
//                    first data to carry it (if none comes, the delayed-ACK
//                    timer sends it alone).
//   --no-quickack    TCP_QUICKACK=0: the socket starts in delayed-ACK mode, so
//                    the handshake's ACK is delayed too, and rides on the request.
//   --nodelay        TCP_NODELAY=1: no Nagle. Our request is one write, so it
//                    changes nothing here; it is here to compare with the server.
//   --close-early    (lesson 15's "Going further") cork the request and shut our
//                    side down right after it: the FIN rides on the request, and
//                    the whole transaction can take 5 packets.
//
// connect() is where the handshake happens: an option set after it returns
// comes too late for the SYN-ACK it was meant to answer.
#include "common/client.h"
#include "common/errors.h"
#include "common/io.h"

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <string>
#include <sys/socket.h>
#include <unistd.h>

struct ClientOptions {
    bool defer_accept = false;
    bool no_quickack = false;
    bool nodelay = false;
    bool close_early = false;
};

// setsockopt() at level IPPROTO_TCP, or die(what).
static void set_option(int fd, int name, int value, const char* what) {
    if (setsockopt(fd, IPPROTO_TCP, name, &value, sizeof(value)) < 0)
        die(what);
}

// Applies the switches to a socket that has not connected yet.
static void tune_before_connect(int fd, const ClientOptions& options) {
    // BEGIN TODO 1: set each option the switches ask for, with setsockopt() at
    // level IPPROTO_TCP: TCP_DEFER_ACCEPT to 1 for --defer-accept, TCP_QUICKACK
    // to 0 for --no-quickack, TCP_NODELAY to 1 for --nodelay. On failure,
    // die() with the option's name. (main() already calls this before connect.)
    //| (void)fd;
    //| (void)options;
    if (options.defer_accept)
        set_option(fd, TCP_DEFER_ACCEPT, 1, "setsockopt TCP_DEFER_ACCEPT");
    if (options.no_quickack)
        set_option(fd, TCP_QUICKACK, 0, "setsockopt TCP_QUICKACK");
    if (options.nodelay)
        set_option(fd, TCP_NODELAY, 1, "setsockopt TCP_NODELAY");
    // END TODO 1
}

// Returns a socket connected to host:port, tuned between socket() and
// connect(): before the SYN leaves.
static int connect_to(const char* host, const char* port, const ClientOptions& options) {
    std::string shown;
    return connect_tcp(host, port, shown, [&](int fd) { tune_before_connect(fd, options); });
}

// Reads the whole reply, until the server closes the connection.
static std::string read_reply(int fd) {
    std::string reply;
    char buffer[4096];
    while (true) {
        ssize_t n = read(fd, buffer, sizeof(buffer));
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            die("read");
        if (n == 0)
            return reply;
        reply.append(buffer, static_cast<size_t>(n));
    }
}

[[noreturn]] static void usage(const char* program) {
    std::fprintf(stderr, "usage: %s [--defer-accept] [--no-quickack] [--nodelay] [--close-early] HOST PORT PATH\n",
                 program);
    std::exit(2);
}

int main(int argc, char** argv) {
    ClientOptions options;
    const char* positional[3] = {};
    int count = 0;
    for (int i = 1; i < argc; i++) {
        if (std::strcmp(argv[i], "--defer-accept") == 0)
            options.defer_accept = true;
        else if (std::strcmp(argv[i], "--no-quickack") == 0)
            options.no_quickack = true;
        else if (std::strcmp(argv[i], "--nodelay") == 0)
            options.nodelay = true;
        else if (std::strcmp(argv[i], "--close-early") == 0)
            options.close_early = true;
        else if (argv[i][0] == '-' || count == 3)
            usage(argv[0]);
        else
            positional[count++] = argv[i];
    }
    if (count != 3)
        usage(argv[0]);
    const char* host = positional[0];
    const char* path = positional[2];

    int fd = connect_to(host, positional[1], options);
    // The whole request in one write: one segment, which also carries the
    // handshake's ACK when the options above delayed it.
    std::string request = std::string("GET ") + path + " HTTP/1.0\r\nHost: " + host + "\r\n\r\n";
    if (options.close_early)
        set_option(fd, TCP_CORK, 1, "setsockopt TCP_CORK");   // hold the request back...
    if (!write_all(fd, request.data(), request.size()))
        die("write");
    if (options.close_early && shutdown(fd, SHUT_WR) < 0)     // ...until the FIN joins it
        die("shutdown");

    std::string reply = read_reply(fd);
    close(fd);
    size_t end = reply.find("\r\n\r\n");
    if (end == std::string::npos)
        die_with("http_get", "the reply has no end of header");
    if (reply.compare(0, 13, "HTTP/1.0 200 ") != 0 && reply.compare(0, 13, "HTTP/1.1 200 ") != 0)
        die_with("http_get", reply.substr(0, reply.find("\r\n")).c_str());
    std::string body = reply.substr(end + 4);
    if (!write_all(STDOUT_FILENO, body.data(), body.size()))
        die("write");
    return 0;
}
