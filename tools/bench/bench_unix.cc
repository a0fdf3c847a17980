// bench_unix: AF_UNIX stream sockets against TCP over loopback (lesson 18).
//
//   usage: bench_unix [--round-trips N] [--mib M]
//
// For each transport, a forked child echoes what it reads, and this process
//   * times N ping-pong round trips of one byte (write, then read the byte
//     back): the latency of one exchange, p50 and p99;
//   * sends M MiB in 64 KiB writes to a child that reads and discards them,
//     then waits for its one-byte "done": the throughput.
// Both sockets are made the way a server makes them: a listener (an abstract
// AF_UNIX name, or 127.0.0.1 port 0), connect(), accept(). TCP gets
// TCP_NODELAY, or the one-byte pings would wait for Nagle's algorithm.
// Then one table, with the ratios TCP / AF_UNIX for latency and AF_UNIX / TCP
// for throughput: above 1 means AF_UNIX is better. Exit status 0; 1 if a call failed.
#include <algorithm>
#include <arpa/inet.h>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <string>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>
#include <vector>

using Clock = std::chrono::steady_clock;

[[noreturn]] static void fail(const char* call) {
    std::perror(call);
    std::exit(1);
}

struct Pair {
    int client;
    int server;
};

// A connected pair made through a listener, as a server would get it.
static Pair connect_pair(bool unix_domain) {
    int listener, client;
    if (unix_domain) {
        sockaddr_un address = {};
        address.sun_family = AF_UNIX;
        std::string name = "bench-unix-" + std::to_string(getpid());
        std::memcpy(address.sun_path + 1, name.data(), name.size());
        socklen_t length = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + 1 + name.size());
        listener = socket(AF_UNIX, SOCK_STREAM, 0);
        if (listener < 0 || bind(listener, reinterpret_cast<sockaddr*>(&address), length) != 0 ||
            listen(listener, 1) != 0)
            fail("AF_UNIX listener");
        client = socket(AF_UNIX, SOCK_STREAM, 0);
        if (client < 0 || connect(client, reinterpret_cast<sockaddr*>(&address), length) != 0)
            fail("AF_UNIX connect");
    } else {
        sockaddr_in address = {};
        address.sin_family = AF_INET;
        address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        socklen_t length = sizeof(address);
        listener = socket(AF_INET, SOCK_STREAM, 0);
        if (listener < 0 || bind(listener, reinterpret_cast<sockaddr*>(&address), length) != 0 ||
            listen(listener, 1) != 0 || getsockname(listener, reinterpret_cast<sockaddr*>(&address), &length) != 0)
            fail("TCP listener");
        client = socket(AF_INET, SOCK_STREAM, 0);
        if (client < 0 || connect(client, reinterpret_cast<sockaddr*>(&address), length) != 0)
            fail("TCP connect");
    }
    int server = accept(listener, nullptr, nullptr);
    if (server < 0)
        fail("accept");
    close(listener);
    if (!unix_domain) {
        int one = 1;
        setsockopt(client, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        setsockopt(server, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    }
    return {client, server};
}

static void read_exactly(int fd, char* buffer, std::size_t n) {
    while (n > 0) {
        ssize_t got = read(fd, buffer, n);
        if (got <= 0)
            fail("read");
        buffer += got;
        n -= static_cast<std::size_t>(got);
    }
}

// The child's side: echo one byte at a time (mode 'p'), or swallow `bytes`
// and answer one byte (mode 't').
static void child(int fd, char mode, long count, std::size_t bytes) {
    std::vector<char> buffer(1 << 16);
    if (mode == 'p') {
        for (long i = 0; i < count; i++) {
            read_exactly(fd, buffer.data(), 1);
            if (write(fd, buffer.data(), 1) != 1)
                fail("write");
        }
    } else {
        while (bytes > 0) {
            ssize_t got = read(fd, buffer.data(), std::min(buffer.size(), bytes));
            if (got <= 0)
                fail("read");
            bytes -= static_cast<std::size_t>(got);
        }
        if (write(fd, "k", 1) != 1)
            fail("write");
    }
    _exit(0);
}

struct Result {
    double p50_us, p99_us, mib_per_s;
};

static Result measure(bool unix_domain, long round_trips, std::size_t mib) {
    Result r = {};
    {   // latency
        Pair p = connect_pair(unix_domain);
        pid_t pid = fork();
        if (pid == 0) {
            close(p.client);
            child(p.server, 'p', round_trips, 0);
        }
        close(p.server);
        std::vector<double> us(static_cast<std::size_t>(round_trips));
        char byte = 'x';
        for (auto& sample : us) {
            auto start = Clock::now();
            if (write(p.client, &byte, 1) != 1)
                fail("write");
            read_exactly(p.client, &byte, 1);
            sample = std::chrono::duration<double, std::micro>(Clock::now() - start).count();
        }
        waitpid(pid, nullptr, 0);
        close(p.client);
        std::sort(us.begin(), us.end());
        r.p50_us = us[us.size() / 2];
        r.p99_us = us[us.size() * 99 / 100];
    }
    {   // throughput
        Pair p = connect_pair(unix_domain);
        std::size_t bytes = mib << 20;
        pid_t pid = fork();
        if (pid == 0) {
            close(p.client);
            child(p.server, 't', 0, bytes);
        }
        close(p.server);
        std::vector<char> chunk(1 << 16, 'y');
        auto start = Clock::now();
        for (std::size_t sent = 0; sent < bytes;) {
            ssize_t n = write(p.client, chunk.data(), std::min(chunk.size(), bytes - sent));
            if (n <= 0)
                fail("write");
            sent += static_cast<std::size_t>(n);
        }
        char done;
        read_exactly(p.client, &done, 1);
        double seconds = std::chrono::duration<double>(Clock::now() - start).count();
        waitpid(pid, nullptr, 0);
        close(p.client);
        r.mib_per_s = static_cast<double>(mib) / seconds;
    }
    return r;
}

int main(int argc, char** argv) {
    long round_trips = 20000;
    std::size_t mib = 1024;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (std::strcmp(argv[i], "--round-trips") == 0)
            round_trips = std::atol(argv[i + 1]);
        else if (std::strcmp(argv[i], "--mib") == 0)
            mib = static_cast<std::size_t>(std::atol(argv[i + 1]));
    }
    if (round_trips < 100 || mib < 1 || argc % 2 == 0) {
        std::fprintf(stderr, "usage: bench_unix [--round-trips N>=100] [--mib M>=1]\n");
        return 2;
    }
    Result u = measure(true, round_trips, mib);
    Result t = measure(false, round_trips, mib);
    std::printf("ping-pong of 1 byte (%ld round trips) and a %zu MiB transfer, each over a fresh connection\n\n",
                round_trips, mib);
    std::printf("%-22s %12s %12s %12s\n", "", "p50 (us)", "p99 (us)", "MiB/s");
    std::printf("%-22s %12.1f %12.1f %12.0f\n", "AF_UNIX stream", u.p50_us, u.p99_us, u.mib_per_s);
    std::printf("%-22s %12.1f %12.1f %12.0f\n", "TCP over loopback", t.p50_us, t.p99_us, t.mib_per_s);
    std::printf("%-22s %11.2fx %11.2fx %11.2fx\n", "AF_UNIX advantage", t.p50_us / u.p50_us,
                t.p99_us / u.p99_us, u.mib_per_s / t.mib_per_s);
    std::printf("\n(advantage: TCP's latency / AF_UNIX's, AF_UNIX's throughput / TCP's; above 1: AF_UNIX is better)\n");
    return 0;
}
