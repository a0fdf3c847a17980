// boundaries: does a socket keep the edges between messages?
//
//   usage: boundaries stream | boundaries seqpacket
//
// Writes three messages into one end of an AF_UNIX socket pair, closes it,
// and reads the other end with a buffer big enough for all three, printing
// each read() ("read 3 bytes: one"). SOCK_STREAM is a stream of bytes: the
// writes were only a way to put bytes in, and one read() takes all that has
// arrived. SOCK_SEQPACKET is connected and reliable like a stream, but each
// write is a record and each read() returns exactly one.
#include "common/errors.h"

#include <cstdio>
#include <cstring>
#include <string>
#include <sys/socket.h>
#include <unistd.h>

int main(int argc, char** argv) {
    std::string kind = argc == 2 ? argv[1] : "";
    if (kind != "stream" && kind != "seqpacket") {
        std::fprintf(stderr, "usage: boundaries stream|seqpacket\n");
        return 2;
    }
    // BEGIN TODO 9: the socket type that keeps each write a message of its own
    // when kind is "seqpacket" (SOCK_STREAM for "stream").
    //| int type = SOCK_STREAM;
    int type = kind == "seqpacket" ? SOCK_SEQPACKET : SOCK_STREAM;
    // END TODO 9
    int pair[2];
    if (socketpair(AF_UNIX, type, 0, pair) != 0)
        die("socketpair");
    for (const char* message : {"one", "two!", "three"})
        if (write(pair[0], message, std::strlen(message)) < 0)
            die("write");
    close(pair[0]);
    char buffer[256];
    ssize_t n;
    while ((n = read(pair[1], buffer, sizeof(buffer))) > 0)
        std::printf("read %zd bytes: %.*s\n", n, static_cast<int>(n), buffer);
    if (n < 0)
        die("read");
    return 0;
}
