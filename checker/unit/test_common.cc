// Unit tests for common: the plumbing every lesson's program relies on.
#include "common/client.h"
#include "common/io.h"
#include "common/server.h"

#include <catch2/catch.hpp>

#include <algorithm>
#include <arpa/inet.h>
#include <cerrno>
#include <netinet/in.h>
#include <csignal>
#include <string>
#include <fcntl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <thread>
#include <unistd.h>
#include <vector>

TEST_CASE("parse_port accepts 0..65535 and nothing else", "[server]") {
    CHECK(parse_port("0") == 0);
    CHECK(parse_port("8080") == 8080);
    CHECK(parse_port("65535") == 65535);
    CHECK(parse_port("65536") == -1);
    CHECK(parse_port("-1") == -1);
    CHECK(parse_port("80x") == -1);
    CHECK(parse_port("") == -1);
    CHECK(parse_port(nullptr) == -1);
}

// parse_server_options() on a command line; getopt() starts again at argv[1].
static ServerOptions parse(std::vector<std::string> words) {
    std::vector<char*> argv;
    for (std::string& word : words)
        argv.push_back(word.data());
    argv.push_back(nullptr);
    optind = 1;
    return parse_server_options(static_cast<int>(words.size()), argv.data());
}

// The IPv4 address a listening socket is bound to, as text.
static std::string bound_address(int fd) {
    sockaddr_in address{};
    socklen_t length = sizeof(address);
    REQUIRE(getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length) == 0);
    char text[INET_ADDRSTRLEN];
    REQUIRE(inet_ntop(AF_INET, &address.sin_addr, text, sizeof(text)) != nullptr);
    return text;
}

TEST_CASE("servers listen on 127.0.0.1 unless -b names another address", "[server]") {
    ServerOptions plain = parse({"server", "-p", "0"});
    CHECK(plain.port == 0);
    REQUIRE(plain.bind_address != nullptr);
    CHECK(std::string(plain.bind_address) == "127.0.0.1");
    int listener = listen_tcp(plain);
    CHECK(bound_address(listener) == "127.0.0.1");
    close(listener);

    ServerOptions everywhere = parse({"server", "-b", "0.0.0.0", "-p", "0"});
    CHECK(std::string(everywhere.bind_address) == "0.0.0.0");
    listener = listen_tcp(everywhere);
    CHECK(bound_address(listener) == "0.0.0.0");
    close(listener);

    ServerOptions other = parse({"server", "-p", "0", "-b", "127.0.0.2"});
    listener = listen_tcp(other);
    CHECK(bound_address(listener) == "127.0.0.2");
    close(listener);
}

TEST_CASE("write_all delivers every byte even when the peer drains slowly", "[io]") {
    int fds[2];
    REQUIRE(socketpair(AF_UNIX, SOCK_STREAM, 0, fds) == 0);
    // A small send buffer forces many short writes for a 1 MiB payload.
    int small = 4096;
    REQUIRE(setsockopt(fds[0], SOL_SOCKET, SO_SNDBUF, &small, sizeof(small)) == 0);

    std::string payload(1 << 20, '\0');
    for (std::size_t i = 0; i < payload.size(); i++)
        payload[i] = static_cast<char>('a' + i % 26);

    std::string received;
    std::thread reader([&] {
        char buffer[1000];   // smaller than the writer's chunks, on purpose
        ssize_t n;
        while ((n = read(fds[1], buffer, sizeof(buffer))) > 0)
            received.append(buffer, static_cast<std::size_t>(n));
    });
    bool ok = write_all(fds[0], payload.data(), payload.size());
    close(fds[0]);
    reader.join();
    close(fds[1]);

    CHECK(ok);
    CHECK(received.size() == payload.size());
    CHECK(received == payload);
}

TEST_CASE("write_all reports an error instead of hiding it", "[io]") {
    std::signal(SIGPIPE, SIG_IGN);
    int fds[2];
    REQUIRE(socketpair(AF_UNIX, SOCK_STREAM, 0, fds) == 0);
    close(fds[1]);  // nobody will ever read
    const char message[] = "lost";
    errno = 0;
    CHECK_FALSE(write_all(fds[0], message, sizeof(message)));
    CHECK(errno == EPIPE);
    close(fds[0]);
}

TEST_CASE("write_all of zero bytes succeeds without writing", "[io]") {
    CHECK(write_all(-1, "", 0));   // never touches the (invalid) descriptor
}

TEST_CASE("connect_tcp reaches a listening server and names the address it used", "[client]") {
    ServerOptions options;
    options.port = 0;
    options.bind_address = "127.0.0.1";
    int listener = listen_tcp(options);
    sockaddr_in bound{};
    socklen_t length = sizeof(bound);
    REQUIRE(getsockname(listener, reinterpret_cast<sockaddr*>(&bound), &length) == 0);
    std::string port = std::to_string(ntohs(bound.sin_port));

    std::string shown;
    int fd = connect_tcp("localhost", port.c_str(), shown);
    CHECK(fd >= 0);
    CHECK(shown == "127.0.0.1:" + port);
    close(fd);
    close(listener);
}

TEST_CASE("set_nonblocking makes a read with nothing to read fail with EAGAIN", "[server]") {
    int fds[2];
    REQUIRE(socketpair(AF_UNIX, SOCK_STREAM, 0, fds) == 0);
    CHECK((fcntl(fds[0], F_GETFL) & O_NONBLOCK) == 0);
    set_nonblocking(fds[0]);
    CHECK((fcntl(fds[0], F_GETFL) & O_NONBLOCK) != 0);
    char byte;
    errno = 0;
    CHECK(read(fds[0], &byte, 1) == -1);
    CHECK((errno == EAGAIN || errno == EWOULDBLOCK));
    REQUIRE(write(fds[1], "x", 1) == 1);
    CHECK(read(fds[0], &byte, 1) == 1);   // and data still arrives as before
    close(fds[0]);
    close(fds[1]);
}

TEST_CASE("raise_open_files_limit lifts the soft limit to the hard one", "[server]") {
    rlimit before{};
    REQUIRE(getrlimit(RLIMIT_NOFILE, &before) == 0);
    rlimit lowered = before;
    lowered.rlim_cur = std::min<rlim_t>(before.rlim_max, 256);
    REQUIRE(setrlimit(RLIMIT_NOFILE, &lowered) == 0);
    long raised = raise_open_files_limit();
    rlimit after{};
    REQUIRE(getrlimit(RLIMIT_NOFILE, &after) == 0);
    CHECK(static_cast<rlim_t>(raised) == after.rlim_cur);
    if (before.rlim_max != RLIM_INFINITY)
        CHECK(after.rlim_cur == before.rlim_max);
    REQUIRE(setrlimit(RLIMIT_NOFILE, &before) == 0);
}
