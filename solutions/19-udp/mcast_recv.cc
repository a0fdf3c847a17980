// mcast_recv: joins a multicast group on the loopback interface and prints
// what arrives.
//
//   usage: mcast_recv [--leave-after N] GROUP PORT
//
// It prints "joined GROUP" once a member, then "got TEXT" for each datagram,
// and exits after one whose text is "end". With --leave-after N it leaves the
// group after its N-th datagram, prints "left GROUP", and goes on listening:
// it should then get nothing more (the checker sends more, and watches).
//
// Several receivers on one machine share the port: SO_REUSEADDR lets each
// bind it, and each gets its own copy of every datagram for the group.
#include "common/errors.h"

#include <arpa/inet.h>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <netinet/in.h>
#include <string>
#include <sys/socket.h>
#include <unistd.h>

static ip_mreq membership(const char* group_text) {
    ip_mreq request{};
    if (inet_pton(AF_INET, group_text, &request.imr_multiaddr) != 1)
        die_with(group_text, "not an IPv4 address");
    request.imr_interface.s_addr = htonl(INADDR_LOOPBACK);
    return request;
}

int main(int argc, char** argv) {
    long leave_after = -1;
    int i = 1;
    if (argc == 5 && std::strcmp(argv[1], "--leave-after") == 0) {
        leave_after = std::atol(argv[2]);
        i = 3;
    }
    if (argc - i != 2)
        die_with("usage", "mcast_recv [--leave-after N] GROUP PORT");
    const char* group_text = argv[i];
    ip_mreq group = membership(group_text);

    int fd = socket(AF_INET, SOCK_DGRAM, 0);
    if (fd < 0)
        die("socket");
    int one = 1;
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) < 0)
        die("setsockopt SO_REUSEADDR");
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_port = htons(std::atoi(argv[i + 1]));
    address.sin_addr.s_addr = htonl(INADDR_ANY);
    if (bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) < 0)
        die("bind");
    // BEGIN TODO 8: join the group: IP_ADD_MEMBERSHIP (level IPPROTO_IP) with
    // the ip_mreq `group` (the group's address, and 127.0.0.1 for the
    // interface: INADDR_ANY there asks for a route, and with lo alone the
    // join fails with ENODEV). Also set IP_MULTICAST_ALL to 0: its default, 1,
    // delivers to this socket the datagrams of every group any socket of the
    // machine joined on its port, so that after leaving it would still get
    // the group's traffic while another receiver is a member (ip(7); measured).
    //| (void)group;
    if (setsockopt(fd, IPPROTO_IP, IP_ADD_MEMBERSHIP, &group, sizeof group) < 0)
        die("setsockopt IP_ADD_MEMBERSHIP");
    int zero = 0;
    if (setsockopt(fd, IPPROTO_IP, IP_MULTICAST_ALL, &zero, sizeof zero) < 0)
        die("setsockopt IP_MULTICAST_ALL");
    // END TODO 8
    std::printf("joined %s\n", group_text);
    std::fflush(stdout);

    char buffer[1500];
    for (long received = 1;; received++) {
        ssize_t length = recv(fd, buffer, sizeof buffer, 0);
        if (length < 0)
            die("recv");
        std::printf("got %.*s\n", static_cast<int>(length), buffer);
        std::fflush(stdout);
        if (length == 3 && std::memcmp(buffer, "end", 3) == 0)
            return 0;
        if (received == leave_after) {
            // BEGIN TODO 9: leave the group: IP_DROP_MEMBERSHIP with the same ip_mreq.
            if (setsockopt(fd, IPPROTO_IP, IP_DROP_MEMBERSHIP, &group, sizeof group) < 0)
                die("setsockopt IP_DROP_MEMBERSHIP");
            // END TODO 9
            std::printf("left %s\n", group_text);
            std::fflush(stdout);
        }
    }
}
