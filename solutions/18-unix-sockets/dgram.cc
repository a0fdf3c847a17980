// dgram: an AF_UNIX datagram echo, and why its client must bind.
//
//   usage: dgram server PATH            answers each datagram to its sender
//          dgram client PATH MESSAGE    sends MESSAGE, prints the answer
//
// A datagram socket has no connection: each recvfrom() says who sent that
// datagram, and the server answers to that address. A TCP or UDP client is
// given an address by the kernel when it sends; an AF_UNIX datagram client
// is not. Unbound, its datagrams arrive from nobody: recvfrom() fills in
// only the address family (the length is sizeof(sa_family_t)), and the
// server has nowhere to send its answer.
#include "common/errors.h"

#include <cstddef>
#include <cstdio>
#include <cstring>
#include <string>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

static sockaddr_un address_of(const char* path) {
    sockaddr_un address = {};
    address.sun_family = AF_UNIX;
    if (std::strlen(path) >= sizeof(address.sun_path))
        die_with(path, "path too long for sun_path");
    std::strcpy(address.sun_path, path);
    return address;
}

// Describes a sender's address: a path, an abstract @name, or unbound.
static std::string describe(const sockaddr_un& from, socklen_t length) {
    std::size_t name = length - offsetof(sockaddr_un, sun_path);
    if (length <= offsetof(sockaddr_un, sun_path))
        return "unbound";
    if (from.sun_path[0] == '\0')
        return "@" + std::string(from.sun_path + 1, name - 1);
    return std::string(from.sun_path, strnlen(from.sun_path, name));
}

[[noreturn]] static void serve(const char* path) {
    int fd = socket(AF_UNIX, SOCK_DGRAM, 0);
    if (fd < 0)
        die("socket");
    sockaddr_un address = address_of(path);
    if (bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)) != 0)
        die("bind");
    std::printf("ready\n");
    std::fflush(stdout);
    while (true) {
        char message[4096];
        sockaddr_un from = {};
        socklen_t length = sizeof(from);
        ssize_t n = recvfrom(fd, message, sizeof(message), 0, reinterpret_cast<sockaddr*>(&from), &length);
        if (n < 0)
            die("recvfrom");
        std::string sender = describe(from, length);
        std::printf("from %s: %.*s\n", sender.c_str(), static_cast<int>(n), message);
        if (sender == "unbound") {
            std::printf("no address to answer to: the sender did not bind\n");
        } else {
            std::string answer = "echo: " + std::string(message, static_cast<std::size_t>(n));
            if (sendto(fd, answer.data(), answer.size(), 0, reinterpret_cast<sockaddr*>(&from), length) < 0)
                std::perror("sendto");
        }
        std::fflush(stdout);
    }
}

static int ask(const char* path, const char* text) {
    int fd = socket(AF_UNIX, SOCK_DGRAM, 0);
    if (fd < 0)
        die("socket");
    // BEGIN TODO 8: give this socket an address so the answer can come back.
    // The kernel picks an unused abstract name if bind() is given only the
    // family: a sockaddr_un with sun_family = AF_UNIX and a length of
    // sizeof(sa_family_t) ("autobind", unix(7)).
    sockaddr_un self = {};
    self.sun_family = AF_UNIX;
    if (bind(fd, reinterpret_cast<sockaddr*>(&self), sizeof(sa_family_t)) != 0)
        die("bind");
    // END TODO 8
    timeval patience = {2, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &patience, sizeof(patience));
    sockaddr_un server = address_of(path);
    if (sendto(fd, text, std::strlen(text), 0, reinterpret_cast<sockaddr*>(&server), sizeof(server)) < 0)
        die("sendto");
    char answer[4096];
    ssize_t n = recv(fd, answer, sizeof(answer), 0);
    if (n < 0) {
        std::fprintf(stderr, "dgram: no answer within 2 s\n");
        return 1;
    }
    std::printf("%.*s\n", static_cast<int>(n), answer);
    return 0;
}

int main(int argc, char** argv) {
    std::string mode = argc > 1 ? argv[1] : "";
    if (mode == "server" && argc == 3)
        serve(argv[2]);
    if (mode == "client" && argc == 4)
        return ask(argv[2], argv[3]);
    std::fprintf(stderr, "usage: dgram server PATH | dgram client PATH MESSAGE\n");
    return 2;
}
