// course-httpd: the course's own tiny HTTP/1.0 server, so that lesson 01's
// client never needs the internet.
//
//   usage: course-httpd -p PORT [-b ADDRESS]     (-p 0: any free port)
//
// Pages (every reply: status line and headers in one write, the body after):
//   /            a list of these pages
//   /small       a one-line body
//   /big         4 MiB of numbered text lines (/bytes/N: the first N bytes of it)
//   /dribble     a short body written one byte per write(), 2 ms apart, so a
//                client sees it arrive in many small pieces
// Each connection is served by its own thread and closed after one reply.
#include "common/errors.h"
#include "common/io.h"
#include "common/server.h"

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <string>
#include <sys/socket.h>
#include <thread>
#include <unistd.h>

static const std::size_t kBigSize = 4 * 1024 * 1024;
static const std::size_t kMaxBytes = 64 * 1024 * 1024;
static const std::size_t kMaxRequest = 8192;

// The first n bytes of the /big text: 64-byte lines, each numbered, so a
// byte-level difference is easy to find by eye.
static std::string big_text(std::size_t n) {
    std::string text;
    text.reserve(n + 64);
    for (int line = 1; text.size() < n; line++) {
        char row[80];
        std::snprintf(row, sizeof(row), "%08d the quick brown fox jumps over the lazy dog 0123456789\n",
                      line);
        text += row;
    }
    text.resize(n);
    return text;
}

// Reads until the blank line that ends a request's headers.
// Returns false if the client closed early or sent too much.
static bool read_request(int fd, std::string& request) {
    char buffer[1024];
    while (request.find("\r\n\r\n") == std::string::npos &&
           request.find("\n\n") == std::string::npos) {
        if (request.size() > kMaxRequest)
            return false;
        ssize_t n = read(fd, buffer, sizeof(buffer));
        if (n <= 0)
            return false;
        request.append(buffer, static_cast<std::size_t>(n));
    }
    return true;
}

struct Reply {
    int status = 200;
    std::string body;
    bool dribble = false;
};

static Reply route(const std::string& method, const std::string& path) {
    Reply reply;
    if (method != "GET") {
        reply.status = 405;
        reply.body = "only GET is served here\n";
    } else if (path == "/") {
        reply.body = "pages: /small /big /bytes/N /dribble\n";
    } else if (path == "/small") {
        reply.body = "Hello from the netcourse server!\n";
    } else if (path == "/big") {
        reply.body = big_text(kBigSize);
    } else if (path.rfind("/bytes/", 0) == 0) {
        const char* digits = path.c_str() + 7;
        char* end = nullptr;
        unsigned long long n = std::strtoull(digits, &end, 10);
        if (*digits == '\0' || *end != '\0' || n > kMaxBytes) {
            reply.status = 400;
            reply.body = "want /bytes/N with N from 0 to 67108864\n";
        } else {
            reply.body = big_text(static_cast<std::size_t>(n));
        }
    } else if (path == "/dribble") {
        reply.body = "This body arrives one byte per write: did you keep calling recv()?\n";
        reply.dribble = true;
    } else {
        reply.status = 404;
        reply.body = "no such page: try /\n";
    }
    return reply;
}

static const char* reason(int status) {
    switch (status) {
    case 200: return "OK";
    case 400: return "Bad Request";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    default: return "Error";
    }
}

static bool send_body(int fd, const Reply& reply) {
    if (!reply.dribble)
        return write_all(fd, reply.body.data(), reply.body.size());
    // TCP_NODELAY: send each byte at once instead of letting Nagle's
    // algorithm gather them into one segment.
    int yes = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &yes, sizeof(yes));
    for (char c : reply.body) {
        if (!write_all(fd, &c, 1))
            return false;
        std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
    return true;
}

static void serve(int fd) {
    std::string request;
    Reply reply;
    std::string method = "?", path = "?";
    if (!read_request(fd, request)) {
        reply.status = 400;
        reply.body = "incomplete or oversized request\n";
    } else {
        char m[16], p[1024];
        if (std::sscanf(request.c_str(), "%15s %1023s", m, p) == 2) {
            method = m;
            path = p;
            reply = route(method, path);
        } else {
            reply.status = 400;
            reply.body = "malformed request line\n";
        }
    }
    std::string head = "HTTP/1.0 " + std::to_string(reply.status) + " " + reason(reply.status) +
                       "\r\nContent-Type: text/plain\r\nContent-Length: " +
                       std::to_string(reply.body.size()) + "\r\nConnection: close\r\n\r\n";
    bool ok = write_all(fd, head.data(), head.size()) && send_body(fd, reply);
    std::fprintf(stderr, "%s %s -> %d, %zu body bytes%s\n", method.c_str(), path.c_str(),
                 reply.status, reply.body.size(), ok ? "" : " (client went away)");
    close(fd);
}

int main(int argc, char** argv) {
    ServerOptions options = parse_server_options(argc, argv);
    stop_on_signals();
    int listener = listen_tcp(options);
    announce_port(listener);
    while (true) {
        int client = accept(listener, nullptr, nullptr);
        if (client < 0) {
            perror("accept");
            continue;
        }
        std::thread(serve, client).detach();
    }
}
