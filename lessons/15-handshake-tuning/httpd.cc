// httpd: a tiny HTTP/1.0 server whose packets you can count.
//
//   usage: httpd -p PORT [-b ADDRESS] [--defer-accept] [--cork] [--nodelay] [--no-quickack]
//
// One client at a time: accept, read the request (up to its blank line),
// answer `GET /` with a small page and anything else with 404, close. A
// client that stays silent for READ_TIMEOUT_SECONDS is closed unanswered. Like
// many real servers it writes the reply in two calls, the header first and
// then the body, and that is the case the switches are about:
//
//   --defer-accept   TCP_DEFER_ACCEPT on the listening socket: accept() does
//                    not return a connection until its first data has arrived,
//                    so a client that connects and says nothing costs no
//                    process wake-up, and the handshake's bare ACK is ignored.
//   --cork           TCP_CORK around the two writes: the kernel holds partial
//                    segments until it is uncorked, so header and body leave
//                    as one segment (with the FIN, since we close corked).
//   --nodelay        TCP_NODELAY: no Nagle; each write leaves at once.
//   --no-quickack    TCP_QUICKACK=0: delay our ACKs, so that the ACK of the
//                    request rides on the reply instead of going out alone.
//
// All three of --defer-accept, --nodelay and --no-quickack are set once, on
// the listening socket: each connection accept() returns inherits them.
#include "common/errors.h"
#include "common/io.h"
#include "common/server.h"

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <string>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>
#include <vector>

struct TuningOptions {
    bool defer_accept = false;
    bool cork = false;
    bool nodelay = false;
    bool no_quickack = false;
};

// How long (seconds) the kernel keeps a connection that sent no data out of
// accept()'s reach. After that it is accepted anyway, data or not.
[[maybe_unused]] constexpr int DEFER_ACCEPT_SECONDS = 10;

// How long (seconds) read() waits for a client's next bytes. This server
// serves one client at a time: without a limit, a client that connected and
// said nothing would keep every other client waiting for ever.
constexpr int READ_TIMEOUT_SECONDS = 5;

static const char PAGE[] =
    "<!doctype html>\n"
    "<title>handshake tuning</title>\n"
    "<h1>Fewer packets</h1>\n"
    "<p>This page left the server in two write() calls: first the header,\n"
    "then this body. Without TCP_CORK they leave as two TCP segments; with it,\n"
    "as one. Count them with tshark.</p>\n"
    "<p>The connection that carried it may have opened with three packets\n"
    "or with two and a half: see lesson 15.</p>\n";

// setsockopt() at level IPPROTO_TCP, or die(what). For the TODOs: the starter
// does not call it yet, hence [[maybe_unused]].
[[maybe_unused]] static void set_option(int fd, int name, int value, const char* what) {
    if (setsockopt(fd, IPPROTO_TCP, name, &value, sizeof(value)) < 0)
        die(what);
}

// Makes a read() on fd that waits READ_TIMEOUT_SECONDS for data fail with
// EAGAIN. Set on each connection accept() returns: on the listening socket
// it would make accept() itself give up.
static void set_read_timeout(int fd) {
    timeval limit{READ_TIMEOUT_SECONDS, 0};
    if (setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &limit, sizeof(limit)) < 0)
        die("setsockopt SO_RCVTIMEO");
}

// Reads the request up to its blank line. Returns "" if the client sent none,
// or went silent before the end of it (timed out), or the connection broke.
static std::string read_request(int fd) {
    std::string request;
    char buffer[2048];
    while (request.find("\r\n\r\n") == std::string::npos && request.size() < 16384) {
        ssize_t n = read(fd, buffer, sizeof(buffer));
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return "";   // EAGAIN: READ_TIMEOUT_SECONDS of silence (or a broken connection)
        if (n == 0)
            break;       // the client has sent all it will
        request.append(buffer, static_cast<size_t>(n));
    }
    return request;
}

// Writes the reply: the header with one write(), the body with another.
static void respond(int fd, const std::string& request, const TuningOptions& options) {
    bool found = request.rfind("GET / ", 0) == 0;
    std::string body = found ? PAGE : "not found\n";
    std::string header = std::string(found ? "HTTP/1.0 200 OK" : "HTTP/1.0 404 Not Found") +
                         "\r\nContent-Type: text/html\r\nContent-Length: " +
                         std::to_string(body.size()) + "\r\nConnection: close\r\n\r\n";

    // TODO 2: with --cork, put the cork in (TCP_CORK = 1) before the
    // header, and take it out only after the body, so that the two writes
    // leave as one segment. Closing a corked socket sends what it holds,
    // with the FIN in the same segment.
    (void)options;
    if (!write_all(fd, header.data(), header.size()))
        return;
    if (!write_all(fd, body.data(), body.size()))
        return;
}

// Returns the options this file adds to the course's `-p PORT`, and removes
// them from argv so that parse_server_options() sees only its own.
static TuningOptions take_tuning_options(int& argc, char** argv) {
    TuningOptions options;
    int kept = 1;
    for (int i = 1; i < argc; i++) {
        if (std::strcmp(argv[i], "--defer-accept") == 0)
            options.defer_accept = true;
        else if (std::strcmp(argv[i], "--cork") == 0)
            options.cork = true;
        else if (std::strcmp(argv[i], "--nodelay") == 0)
            options.nodelay = true;
        else if (std::strcmp(argv[i], "--no-quickack") == 0)
            options.no_quickack = true;
        else
            argv[kept++] = argv[i];
    }
    argc = kept;
    argv[argc] = nullptr;
    return options;
}

int main(int argc, char** argv) {
    TuningOptions options = take_tuning_options(argc, argv);
    ServerOptions server = parse_server_options(argc, argv);
    stop_on_signals();

    int listener = listen_tcp(server);
    // TODO 3: set the switches' options on the listening socket, with
    // setsockopt() at level IPPROTO_TCP: --defer-accept: TCP_DEFER_ACCEPT,
    // whose value is a time in seconds (DEFER_ACCEPT_SECONDS); --nodelay:
    // TCP_NODELAY = 1; --no-quickack: TCP_QUICKACK = 0. Every connection
    // accept() returns inherits them. They must be set before the clients
    // come: a connection accept() has already returned is past deferring.
    announce_port(listener);

    while (true) {
        int client = accept_client(listener);
        set_read_timeout(client);
        std::string request = read_request(client);
        if (!request.empty())
            respond(client, request, options);
        close(client);   // with --cork: the corked reply leaves now, FIN included
    }
}
