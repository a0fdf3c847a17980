#include "common/wdb_request.h"

#include <cerrno>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

RequestReader::RequestReader(int socket) : fd(socket), parser(GET_KEYS_PER_PART) {
    // The server writes each reply as soon as it is made, so several small
    // write()s can follow each other: the parts of a long get, the replies to
    // requests that came in one packet. Nagle's algorithm would hold each back
    // until the client has acknowledged the one before, and a client delays
    // its ACK: about 40 ms each time, here (lesson 15). TCP_NODELAY sends each
    // write at once, as memcached does. (A socket that is not TCP refuses it:
    // no matter.)
    int on = 1;
    setsockopt(socket, IPPROTO_TCP, TCP_NODELAY, &on, sizeof(on));
}

// One read() of whatever the client has sent, fed to the parser. False at the
// end of the stream or on an error: either way, no more requests will come.
static bool fill(RequestReader& in) {
    char chunk[16384];
    ssize_t n;
    do {
        n = read(in.fd, chunk, sizeof(chunk));
    } while (n < 0 && errno == EINTR);
    if (n <= 0)
        return false;
    in.parser.feed(chunk, static_cast<std::size_t>(n));
    return true;
}

bool read_request(RequestReader& in, Request& request) {
    while (!in.parser.next(request))
        if (!fill(in))
            return false;
    return true;
}
