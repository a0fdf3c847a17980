// echo_server: the four server-side system calls, written out by hand.
//
//   usage: echo_server -p PORT [-b ADDRESS]   (-p 0: any free port; prints "port N")
//
// socket() makes an endpoint, bind() gives it an address, listen() tells
// the kernel to accept connections on it, accept() hands us each one.
// Every byte a client sends comes straight back. One client at a time.
#include "common/errors.h"
#include "common/io.h"
#include "common/server.h"

#include <arpa/inet.h>
#include <cerrno>
#include <cstdio>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

// Returns a socket listening on the address and port the options ask for.
static int open_listening_socket(const ServerOptions& options) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0)
        die("socket");

    // Without this, restarting the server on a fixed port fails with
    // "Address already in use" while the last connections sit in TIME_WAIT.
    int yes = 1;
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof(yes)) < 0)
        die("setsockopt");

    // The address: 127.0.0.1 (only this machine can connect) unless -b gave
    // another; "0.0.0.0" (INADDR_ANY) would mean every address of the machine.
    sockaddr_in address{};
    address.sin_family = AF_INET;
    if (inet_pton(AF_INET, options.bind_address, &address.sin_addr) != 1)
        die_with(options.bind_address, "not an IPv4 address");
    address.sin_port = htons(static_cast<uint16_t>(options.port));
    if (bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)) < 0)
        die("bind");

    // BEGIN TODO 1: until listen() is called, the kernel answers every
    // connection attempt with a reset. Make the socket a listening socket.
    if (listen(fd, SOMAXCONN) < 0)
        die("listen");
    // END TODO 1
    return fd;
}

// Sends back everything the client sends, until the client closes its side.
static void echo(int client) {
    char buffer[4096];
    // BEGIN TODO 2: read() returns what has arrived so far: keep reading and
    // writing back (all of it: write_all) until read() returns 0, the
    // client's end of stream. A read interrupted by a signal (errno EINTR)
    // moved nothing: read again. Any other failed read or write ends this
    // client only.
    //| ssize_t n = read(client, buffer, sizeof(buffer));
    //| if (n > 0)
    //|     write(client, buffer, n);
    while (true) {
        ssize_t n = read(client, buffer, sizeof(buffer));
        if (n < 0 && errno == EINTR)
            continue;      // a signal came before any byte: nothing is wrong
        if (n <= 0)
            return;        // 0: the client is done; < 0: the connection broke
        if (!write_all(client, buffer, static_cast<size_t>(n)))
            return;        // e.g. EPIPE: the client stopped listening
    }
    // END TODO 2
}

int main(int argc, char** argv) {
    ServerOptions options = parse_server_options(argc, argv);
    stop_on_signals();

    int listener = open_listening_socket(options);
    announce_port(listener);

    // BEGIN TODO 3: serve clients one after another, forever: accept() the
    // next connection, echo it, close it. A failed accept() is not fatal
    // for the server (the client may have gone already): report it, go on.
    //| int client = accept(listener, nullptr, nullptr);
    //| echo(client);
    while (true) {
        int client = accept(listener, nullptr, nullptr);
        if (client < 0) {
            perror("accept");
            continue;
        }
        echo(client);
        close(client);   // our FIN: tells the client we are done too
    }
    // END TODO 3
}
