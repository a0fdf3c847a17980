// udp_lookup: asks udp_server for the values of some keys, over UDP, as a
// DNS resolver asks a name server: it copes with lost, duplicated, delayed
// and reordered datagrams.
//
//   usage: udp_lookup [-t MS] [-r RETRIES] [--unconnected] HOST PORT KEY...
//
// Every key is a request with an id of its own ("ID GET KEY", see
// udp_server.cc), and every request is sent at once: the answers come back in
// any order, and the id says which is which. A request with no answer after
// its timeout (-t, default 200 ms) is sent again, with the same id, and its
// timeout doubles (exponential backoff: a server or a network that is slow
// because it is overloaded gets more room, not more traffic). After RETRIES
// resends (-r, default 4) the request is given up.
//
// An answer whose id is not a request still waiting (a duplicate of one
// already counted, or a stale answer to a request given up or from
// someone else) is ignored.
//
// The socket is connected (connect() on UDP only sets the default address and
// filters what arrives), so when nothing listens on PORT, the ICMP port
// unreachable that comes back makes the next recv() fail with ECONNREFUSED.
// With --unconnected it uses sendto()/recvfrom() and never learns.
//
// Output: one line per key on stdout, "KEY VALUE" or "KEY (missing)", in the
// order the answers came. On stderr, per key given up:
//   udp_lookup: KEY: no answer after 5 tries (last timeout 3200 ms)
// and when the port is closed:
//   udp_lookup: 127.0.0.1:PORT: connection refused (ICMP port unreachable): is the server running?
// Exit status: 0 all answered, 2 some given up, 1 refused or another error.
#include "common/errors.h"

#include <arpa/inet.h>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <netinet/in.h>
#include <poll.h>
#include <string>
#include <sys/socket.h>
#include <unistd.h>
#include <vector>

using Clock = std::chrono::steady_clock;
using Milliseconds = std::chrono::milliseconds;

struct Options {
    long timeout_ms = 200;
    int retries = 4;
    bool connected = true;
    sockaddr_in server{};
    std::vector<std::string> keys;
};

struct Request {
    unsigned long id;
    std::string key;
    int tries = 0;                 // datagrams sent so far
    long timeout_ms = 0;           // how long to wait after the last one
    Clock::time_point deadline;    // when to send again, or give up
    bool done = false;             // answered or given up
};

[[noreturn]] static void usage() {
    die_with("usage", "udp_lookup [-t MS] [-r RETRIES] [--unconnected] HOST PORT KEY...");
}

static Options parse_options(int argc, char** argv) {
    Options options;
    int i = 1;
    for (; i < argc && argv[i][0] == '-'; i++) {
        std::string arg = argv[i];
        if (arg == "-t" && i + 1 < argc)
            options.timeout_ms = std::atol(argv[++i]);
        else if (arg == "-r" && i + 1 < argc)
            options.retries = std::atoi(argv[++i]);
        else if (arg == "--unconnected")
            options.connected = false;
        else
            usage();
    }
    if (argc - i < 3 || options.timeout_ms <= 0 || options.retries < 0)
        usage();
    options.server.sin_family = AF_INET;
    options.server.sin_port = htons(std::atoi(argv[i + 1]));
    if (inet_pton(AF_INET, argv[i], &options.server.sin_addr) != 1)
        die_with(argv[i], "not an IPv4 address");
    for (i += 2; i < argc; i++)
        options.keys.push_back(argv[i]);
    return options;
}

static void send_request(int fd, const Options& options, const Request& request) {
    std::string text = std::to_string(request.id) + " GET " + request.key;
    const sockaddr* to = options.connected ? nullptr : reinterpret_cast<const sockaddr*>(&options.server);
    socklen_t to_length = options.connected ? 0 : sizeof options.server;
    if (sendto(fd, text.data(), text.size(), 0, to, to_length) < 0 && errno != ECONNREFUSED)
        die("sendto");
    // (a connected socket may report the ICMP error of an earlier datagram
    // here too: the receive below reports it again, so it is ignored here)
}

// Sends `request` (again), or gives it up when its tries are used up.
// Returns false when given up.
static bool send_or_give_up(int fd, const Options& options, Request& request) {
    // TODO 4: if the request has been sent 1 + options.retries times
    // already, give up: print "udp_lookup: KEY: no answer after N tries (last
    // timeout T ms)" on stderr, mark it done and return false. Otherwise send
    // it (send_request), count the try, set its timeout (options.timeout_ms the
    // first time, twice the previous one after that: backoff) and its
    // deadline (now + timeout), and return true.
    send_request(fd, options, request);
    request.tries++;
    request.timeout_ms = options.timeout_ms;
    request.deadline = Clock::now() + Milliseconds(request.timeout_ms);
    return true;
}

// The request still waiting whose id is `id`, or nullptr.
static Request* waiting_request(std::vector<Request>& requests, unsigned long id) {
    // TODO 5: find the request with this id that is not done yet. An
    // answer for any other id (one already answered: a duplicate; one given
    // up, or never asked: stale) must find nothing, so that it is ignored.
    for (Request& request : requests)
        if (!request.done)
            return &request;
    (void)id;
    return nullptr;
}

// Reads one answer and prints it if it is for a request still waiting.
// Returns how many requests it completed (0 or 1).
static int take_answer(int fd, const Options& options, std::vector<Request>& requests) {
    char buffer[2048];
    ssize_t length = recv(fd, buffer, sizeof buffer - 1, 0);
    if (length < 0) {
        // TODO 6: on a connected socket, recv() fails with ECONNREFUSED
        // when an ICMP port unreachable came back for a datagram we sent:
        // nothing listens on that port. Say so ("udp_lookup: HOST:PORT:
        // connection refused (ICMP port unreachable): is the server
        // running?") and exit with status 1, rather than wait for answers
        // that cannot come.
        (void)options;
        if (errno == EINTR || errno == ECONNREFUSED)
            return 0;
        die("recv");
    }
    buffer[length] = '\0';
    unsigned long id = 0;
    char status[16] = "";
    int used = 0;
    if (std::sscanf(buffer, "%lu %15s %n", &id, status, &used) < 2)
        return 0;   // not an answer at all
    Request* request = waiting_request(requests, id);
    if (request == nullptr)
        return 0;   // a duplicate, or stale
    if (std::strcmp(status, "FOUND") == 0)
        std::printf("%s %s\n", request->key.c_str(), buffer + used);
    else
        std::printf("%s (%s)\n", request->key.c_str(), status[0] == 'M' ? "missing" : status);
    std::fflush(stdout);
    request->done = true;
    return 1;
}

static int milliseconds_until(Clock::time_point when) {
    auto left = std::chrono::duration_cast<Milliseconds>(when - Clock::now()).count();
    return left < 0 ? 0 : static_cast<int>(left) + 1;
}

int main(int argc, char** argv) {
    Options options = parse_options(argc, argv);
    int fd = socket(AF_INET, SOCK_DGRAM, 0);
    if (fd < 0)
        die("socket");
    // TODO 3: unless --unconnected, connect() the socket to the server:
    // UDP sends nothing then, it only fixes the peer, so that send() needs no
    // address, only the server's datagrams are received, and ICMP errors
    // about them are reported (ECONNREFUSED).

    // Ids start at a random point, as DNS ids do: an answer to an earlier run
    // that arrives late must not match.
    srandom(static_cast<unsigned>(getpid() ^ time(nullptr)));
    unsigned long first_id = static_cast<unsigned long>(random()) % 1000000000UL;
    std::vector<Request> requests;
    for (size_t i = 0; i < options.keys.size(); i++) {
        Request request;
        request.id = first_id + i;
        request.key = options.keys[i];
        requests.push_back(request);
    }

    size_t waiting = requests.size(), given_up = 0;
    for (Request& request : requests)
        send_or_give_up(fd, options, request);
    while (waiting > 0) {
        // Wait for an answer until the earliest deadline of the requests still waiting.
        Clock::time_point next = Clock::time_point::max();
        for (const Request& request : requests)
            if (!request.done && request.deadline < next)
                next = request.deadline;
        pollfd readable{fd, POLLIN, 0};
        if (poll(&readable, 1, milliseconds_until(next)) < 0 && errno != EINTR)
            die("poll");
        if (readable.revents & (POLLIN | POLLERR))
            waiting -= take_answer(fd, options, requests);
        for (Request& request : requests) {
            if (request.done || Clock::now() < request.deadline)
                continue;
            if (!send_or_give_up(fd, options, request)) {
                waiting--;
                given_up++;
            }
        }
    }
    return given_up > 0 ? 2 : 0;
}
