// mcast_send: sends each line of its stdin as one datagram to a multicast
// group, on the loopback interface.
//
//   usage: mcast_send GROUP PORT          e.g. mcast_send 239.1.2.3 5000
//
// One send reaches every socket that joined GROUP on that interface, however
// many there are: the sender does not know them. It prints "sent N" on
// stdout after each datagram, and exits at the end of its input.
#include "common/errors.h"

#include <arpa/inet.h>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <netinet/in.h>
#include <string>
#include <sys/socket.h>
#include <unistd.h>

int main(int argc, char** argv) {
    if (argc != 3)
        die_with("usage", "mcast_send GROUP PORT");
    sockaddr_in group{};
    group.sin_family = AF_INET;
    group.sin_port = htons(std::atoi(argv[2]));
    if (inet_pton(AF_INET, argv[1], &group.sin_addr) != 1)
        die_with(argv[1], "not an IPv4 address");
    int fd = socket(AF_INET, SOCK_DGRAM, 0);
    if (fd < 0)
        die("socket");
    // BEGIN TODO 7: choose the interface the group's datagrams leave by:
    // IP_MULTICAST_IF (level IPPROTO_IP) with an in_addr of 127.0.0.1. Without
    // it the kernel looks for a route to 224.0.0.0/4, and a machine (or a
    // network namespace) whose only interface is lo has none: sendto() fails
    // with ENETUNREACH. (IP_MULTICAST_LOOP is on by default: the machine's
    // own members get a copy; IP_MULTICAST_TTL is 1: the group stays on this link.)
    in_addr loopback{};
    loopback.s_addr = htonl(INADDR_LOOPBACK);
    if (setsockopt(fd, IPPROTO_IP, IP_MULTICAST_IF, &loopback, sizeof loopback) < 0)
        die("setsockopt IP_MULTICAST_IF");
    // END TODO 7

    char* line = nullptr;
    size_t capacity = 0;
    ssize_t length;
    long sent = 0;
    while ((length = getline(&line, &capacity, stdin)) > 0) {
        if (line[length - 1] == '\n')
            length--;
        if (sendto(fd, line, length, 0, reinterpret_cast<sockaddr*>(&group), sizeof group) < 0)
            die("sendto");
        std::printf("sent %ld\n", ++sent);
        std::fflush(stdout);
    }
    free(line);
    return 0;
}
