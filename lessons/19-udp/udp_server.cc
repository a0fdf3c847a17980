// udp_server: a key lookup service over UDP, in the spirit of DNS.
//
//   usage: udp_server -p PORT [--tcp] KEY=VALUE...
//
// One request is one datagram, one answer is one datagram, and each carries
// the id the client chose, so that the client can tell which question an
// answer belongs to (UDP keeps message boundaries; it does not keep order,
// and it may lose or duplicate a datagram):
//
//   request   "ID GET KEY"          e.g. "42 GET apple"
//   answers   "ID FOUND VALUE"      "42 FOUND red"
//             "ID MISSING"          no such key
//             "ID TRUNCATED N"      the request was N bytes, more than the
//                                   server's buffer (MAX_REQUEST): refused
//             "ID BAD"              not a request
//
// The answer goes to the address recvfrom() reported for the request: a UDP
// server has no connection that remembers who asked.
//
// With --tcp the server also listens on TCP, on the same port number: TCP
// and UDP have a port space each. A TCP client sends one line "GET KEY\n"
// and gets "FOUND VALUE\n" or "MISSING\n", then the server closes.
//
// It prints "port N" on stdout once bound (-p 0: any free port), and one line
// on stderr per truncated request:
//   udp_server: a request of 2000 bytes, more than 512: truncated
#include "common/errors.h"

#include <arpa/inet.h>
#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <netinet/in.h>
#include <poll.h>
#include <string>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

// DNS over UDP kept its messages to 512 bytes (RFC 1035, 4.2.1); so does this.
static constexpr size_t MAX_REQUEST = 512;

using Table = std::map<std::string, std::string>;

struct Options {
    int port = -1;
    bool tcp = false;
    Table table;
};

static Options parse_options(int argc, char** argv) {
    Options options;
    for (int i = 1; i < argc; i++) {
        std::string arg = argv[i];
        if (arg == "-p" && i + 1 < argc) {
            options.port = std::atoi(argv[++i]);
        } else if (arg == "--tcp") {
            options.tcp = true;
        } else if (auto eq = arg.find('='); eq != std::string::npos) {
            options.table[arg.substr(0, eq)] = arg.substr(eq + 1);
        } else {
            die_with("usage", "udp_server -p PORT [--tcp] KEY=VALUE...");
        }
    }
    if (options.port < 0 || options.port > 65535)
        die_with("usage", "udp_server -p PORT [--tcp] KEY=VALUE...");
    return options;
}

static sockaddr_in loopback(int port) {
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_port = htons(port);
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    return address;
}

static int bind_udp(int port) {
    int fd = socket(AF_INET, SOCK_DGRAM, 0);
    if (fd < 0)
        die("socket");
    sockaddr_in address = loopback(port);
    if (bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) < 0)
        die("bind UDP");
    return fd;
}

static int bound_port(int fd) {
    sockaddr_in address{};
    socklen_t length = sizeof address;
    if (getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length) < 0)
        die("getsockname");
    return ntohs(address.sin_port);
}

static int listen_tcp_on(int port) {
    int fd = -1;
    // TODO 2: make a TCP socket (SOCK_STREAM), set SO_REUSEADDR, bind it
    // to 127.0.0.1 and `port` (the port the UDP socket got: the same number)
    // and listen(). The bind succeeds although a UDP socket holds that port:
    // the two protocols do not share port numbers. Return the descriptor.
    (void)port;
    return fd;
}

// The answer to one request's text (without its id), e.g. "FOUND red".
static std::string lookup(const Table& table, const std::string& key) {
    auto found = table.find(key);
    return found == table.end() ? "MISSING" : "FOUND " + found->second;
}

// The answer to one datagram of `length` bytes, of which `kept` are in `text`.
static std::string answer(const Table& table, const char* text, size_t kept, size_t length) {
    std::string request(text, kept);
    unsigned long id = 0;
    int used = 0;
    if (std::sscanf(request.c_str(), "%lu%n", &id, &used) != 1)
        return "0 BAD";
    std::string head = std::to_string(id) + " ";
    if (length > kept) {
        std::fprintf(stderr, "udp_server: a request of %zu bytes, more than %zu: truncated\n",
                     length, MAX_REQUEST);
        return head + "TRUNCATED " + std::to_string(length);
    }
    std::string rest = request.substr(used);
    if (rest.rfind(" GET ", 0) != 0)
        return head + "BAD";
    return head + lookup(table, rest.substr(5));
}

static void serve_datagram(int fd, const Table& table) {
    char buffer[MAX_REQUEST];
    ssize_t length = 0;
    std::string reply;
    // TODO 1: receive one datagram with recvfrom() into `buffer`,
    // keeping the sender's address. Pass MSG_TRUNC: then recvfrom() returns
    // the datagram's real length even when it was longer than the buffer
    // (udp(7)), and the bytes beyond the buffer are lost. Then
    // reply = answer(table, buffer, bytes kept, real length), and send it
    // with sendto() to the address recvfrom() gave: each request's own.
    length = recv(fd, buffer, sizeof buffer, 0);   // read and drop it, for now
    (void)table, (void)length, (void)reply, (void)answer;
}

// One TCP client: one line "GET KEY\n", one line back, close.
static void serve_tcp_client(int listener, const Table& table) {
    int client = accept(listener, nullptr, nullptr);
    if (client < 0)
        return;
    timeval one_second{1, 0};   // a silent client must not stop the UDP service for long
    setsockopt(client, SOL_SOCKET, SO_RCVTIMEO, &one_second, sizeof one_second);
    std::string line;
    char c;
    while (line.size() < MAX_REQUEST && read(client, &c, 1) == 1 && c != '\n')
        line += c;
    std::string reply = (line.rfind("GET ", 0) == 0 ? lookup(table, line.substr(4)) : "BAD") + "\n";
    if (write(client, reply.data(), reply.size()) < 0)
        std::perror("write");
    close(client);
}

int main(int argc, char** argv) {
    Options options = parse_options(argc, argv);
    signal(SIGPIPE, SIG_IGN);
    int udp = bind_udp(options.port);
    int port = bound_port(udp);
    int tcp = options.tcp ? listen_tcp_on(port) : -1;
    std::printf("port %d\n", port);
    std::fflush(stdout);

    pollfd watched[2] = {{udp, POLLIN, 0}, {tcp, POLLIN, 0}};   // poll() skips fd -1
    while (true) {
        if (poll(watched, 2, -1) < 0) {
            if (errno == EINTR)
                continue;
            die("poll");
        }
        if (watched[0].revents & POLLIN)
            serve_datagram(udp, options.table);
        if (watched[1].revents & POLLIN)
            serve_tcp_client(tcp, options.table);
    }
}
