// lossy_relay: a UDP relay that loses, duplicates, delays and reorders
// datagrams on purpose, the way a real network may (this course's kernel
// has no netem qdisc to do it: `tc qdisc add dev lo root netem` says
// "Specified qdisc kind is unknown").
//
//   usage: lossy_relay -p PORT --to HOST:PORT [--seed N] [--drop P] [--dup P]
//                      [--reorder P] [--delay-ms MS]
//
// It listens on 127.0.0.1:PORT (-p 0: any free port; it prints "port N") and
// relays each datagram of a client to the server at --to, and each datagram
// of the server back to the client that sent last. Each datagram, either
// way, is
//   dropped            with probability --drop (default 0.1),
//   else sent twice    with probability --dup (default 0.1),
//   and held back      with probability --reorder (default 0.2) for
//                      --delay-ms (default 30) before it goes, so that
//                      datagrams behind it overtake it.
// The decisions come from a random generator seeded with --seed (default 1):
// the same seed and the same datagrams in the same order give the same
// losses, so a failure can be replayed by hand.
//
// On SIGTERM or SIGINT it prints what it did on stderr and exits 0:
//   lossy_relay: seed 7: 412 datagrams, 40 dropped, 37 duplicated, 80 delayed
#include "common/errors.h"

#include <arpa/inet.h>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <netinet/in.h>
#include <poll.h>
#include <string>
#include <sys/socket.h>
#include <unistd.h>

using Clock = std::chrono::steady_clock;

struct Options {
    int port = 0;
    sockaddr_in server{};
    uint64_t seed = 1;
    double drop = 0.1, dup = 0.1, reorder = 0.2;
    int delay_ms = 30;
};

// splitmix64: small, fast, and the same sequence on every machine for a seed.
struct Random {
    uint64_t state;
    uint64_t next() {
        uint64_t z = (state += 0x9e3779b97f4a7c15ULL);
        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
        z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
        return z ^ (z >> 31);
    }
    bool chance(double p) { return (next() >> 11) * 0x1.0p-53 < p; }
};

struct Held {                 // a datagram held back, to be sent later
    Clock::time_point when;
    int fd;
    sockaddr_in to;
    std::string data;
};

static volatile sig_atomic_t stopping = 0;
static void stop(int) { stopping = 1; }

[[noreturn]] static void usage() {
    die_with("usage", "lossy_relay -p PORT --to HOST:PORT [--seed N] [--drop P] [--dup P] "
                      "[--reorder P] [--delay-ms MS]");
}

static Options parse_options(int argc, char** argv) {
    Options options;
    bool have_server = false;
    for (int i = 1; i + 1 < argc; i += 2) {
        std::string name = argv[i], value = argv[i + 1];
        if (name == "-p") {
            options.port = std::atoi(value.c_str());
        } else if (name == "--to") {
            auto colon = value.rfind(':');
            if (colon == std::string::npos)
                usage();
            options.server.sin_family = AF_INET;
            options.server.sin_port = htons(std::atoi(value.c_str() + colon + 1));
            if (inet_pton(AF_INET, value.substr(0, colon).c_str(), &options.server.sin_addr) != 1)
                usage();
            have_server = true;
        } else if (name == "--seed") {
            options.seed = std::strtoull(value.c_str(), nullptr, 10);
        } else if (name == "--drop") {
            options.drop = std::atof(value.c_str());
        } else if (name == "--dup") {
            options.dup = std::atof(value.c_str());
        } else if (name == "--reorder") {
            options.reorder = std::atof(value.c_str());
        } else if (name == "--delay-ms") {
            options.delay_ms = std::atoi(value.c_str());
        } else {
            usage();
        }
    }
    if (argc % 2 == 0 || !have_server)
        usage();
    return options;
}

static int udp_socket(int port) {
    int fd = socket(AF_INET, SOCK_DGRAM, 0);
    if (fd < 0)
        die("socket");
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_port = htons(port);
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) < 0)
        die("bind");
    return fd;
}

static void send_now(const Held& datagram) {
    // A lost send is one more loss: the relay goes on.
    sendto(datagram.fd, datagram.data.data(), datagram.data.size(), 0,
           reinterpret_cast<const sockaddr*>(&datagram.to), sizeof datagram.to);
}

int main(int argc, char** argv) {
    Options options = parse_options(argc, argv);
    signal(SIGTERM, stop);
    signal(SIGINT, stop);
    Random random{options.seed};
    int front = udp_socket(options.port);   // the clients' side
    int back = udp_socket(0);               // the server's side
    sockaddr_in bound{};
    socklen_t bound_length = sizeof bound;
    getsockname(front, reinterpret_cast<sockaddr*>(&bound), &bound_length);
    std::printf("port %d\n", ntohs(bound.sin_port));
    std::fflush(stdout);

    sockaddr_in client{};
    bool have_client = false;
    std::deque<Held> held;   // in the order they are due: every delay is the same
    long datagrams = 0, dropped = 0, duplicated = 0, delayed = 0;
    while (!stopping) {
        int timeout = -1;
        if (!held.empty()) {
            auto left = std::chrono::duration_cast<std::chrono::milliseconds>(held.front().when - Clock::now());
            timeout = left.count() < 0 ? 0 : static_cast<int>(left.count()) + 1;
        }
        pollfd fds[2] = {{front, POLLIN, 0}, {back, POLLIN, 0}};
        if (poll(fds, 2, timeout) < 0 && errno != EINTR)
            die("poll");
        while (!held.empty() && held.front().when <= Clock::now()) {
            send_now(held.front());
            held.pop_front();
        }
        for (pollfd& ready : fds) {
            if (!(ready.revents & POLLIN))
                continue;
            char buffer[65536];
            sockaddr_in from{};
            socklen_t from_length = sizeof from;
            ssize_t length = recvfrom(ready.fd, buffer, sizeof buffer, 0,
                                      reinterpret_cast<sockaddr*>(&from), &from_length);
            if (length < 0)
                continue;
            Held datagram{Clock::now(), back, options.server, std::string(buffer, length)};
            if (ready.fd == front) {
                client = from;
                have_client = true;
            } else if (have_client) {
                datagram.fd = front;
                datagram.to = client;
            } else {
                continue;   // an answer with no client to go to
            }
            datagrams++;
            // Three decisions per datagram, always drawn, so that one seed
            // gives one sequence of fates whatever the rates are.
            bool drop = random.chance(options.drop);
            bool dup = random.chance(options.dup);
            bool hold = random.chance(options.reorder);
            if (drop) {
                dropped++;
                continue;
            }
            int copies = dup ? 2 : 1;
            duplicated += dup;
            if (hold) {
                delayed++;
                datagram.when = Clock::now() + std::chrono::milliseconds(options.delay_ms);
                for (int i = 0; i < copies; i++)
                    held.push_back(datagram);
            } else {
                for (int i = 0; i < copies; i++)
                    send_now(datagram);
            }
        }
    }
    std::fprintf(stderr, "lossy_relay: seed %llu: %ld datagrams, %ld dropped, %ld duplicated, %ld delayed\n",
                 static_cast<unsigned long long>(options.seed), datagrams, dropped, duplicated, delayed);
    return 0;
}
