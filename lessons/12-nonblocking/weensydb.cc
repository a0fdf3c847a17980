// WeensyDB version 9: one thread for every client, non-blocking sockets, a polling loop.
//
//   usage: weensydb -p PORT [-b ADDRESS]   (-p 0: any free port; prints "port N")
//
// Versions 2-8 gave each client a thread so that a client that waits could
// only block its own thread. Threads cost memory and scheduling (lesson 11).
// Here one thread serves every client. It must never wait for any of them,
// so every socket is non-blocking: where read(), write() or accept() would
// wait, they return -1 with errno EAGAIN ("nothing now, try again later")
// and the loop moves on to the next client.
//
// Each client's half-read requests and unwritten replies live in its
// Connection (common/wdb_connection.h), between two visits of the loop.
//
// The flaw, on purpose: the loop never waits, even when no client has sent
// anything. It asks every socket again and again, burning a whole core
// while the server is idle. Lesson 13 fixes that with select().
#include "common/server.h"
#include "common/wdb_connection.h"

#include <cerrno>
#include <cstdio>
#include <string_view>
#include <sys/socket.h>
#include <unistd.h>
#include <unordered_map>

// Accepts one waiting client and makes its socket non-blocking too.
// Returns -1 when nobody is waiting.
static int accept_waiting(int listener) {
    int fd = accept(listener, nullptr, nullptr);
    if (fd < 0) {
        // EAGAIN: nobody is waiting. A client that gave up before we came
        // (ECONNABORTED), or no descriptor left (EMFILE): try again later.
        if (errno == EMFILE || errno == ENFILE)
            warn_out_of_descriptors();
        else if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR && errno != ECONNABORTED)
            std::perror("accept");
        return -1;
    }
    // TODO 1: make the client's socket non-blocking, like the listener
    // (set_nonblocking, common/server.h), so that read() and write() on it
    // return -1 with errno EAGAIN instead of waiting for this client.
    return fd;
}

// One read() of what the client has sent, if anything; runs the requests it
// completes. False when the connection is broken and must be closed.
static bool read_some(Connection& c) {
    char buffer[16384];
    ssize_t n = read(c.fd(), buffer, sizeof(buffer));
    // TODO 2: a non-blocking read() returns -1 with errno EAGAIN (or
    // EWOULDBLOCK, or EINTR) when nothing has arrived: that is not an error,
    // the connection goes on. Any other errno (ECONNRESET...) ends it.
    if (n < 0)
        return false;
    if (n == 0)
        c.end_of_input();    // the client has shut down its side: answer what it sent
    else
        c.received(buffer, static_cast<std::size_t>(n));
    c.run_requests();
    return true;
}

// Writes as much of the waiting output as the socket takes now. False when
// the connection is broken.
static bool write_some(Connection& c) {
    while (c.has_output()) {
        std::string_view output = c.unsent_output();
        ssize_t n = write(c.fd(), output.data(), output.size());
        // TODO 3: when the socket's buffer is full, write() returns -1
        // with errno EAGAIN: keep the rest for the next visit (return true).
        // And write() may take only part of the output: tell the connection
        // how much went (c.sent(n)), and loop to offer it the rest.
        if (n < 0)
            return false;
        c.sent(output.size());
    }
    // Requests held back while the output was full run now, once per visit:
    // run inside the loop, a client that reads as fast as we write would
    // keep this loop, and every other client waiting, until its get is done.
    c.run_requests();
    return true;
}

// One visit to a client: read if it may send, write if replies wait.
// False when the connection is over and must be closed.
static bool visit(Connection& c) {
    if (c.wants_input() && !read_some(c))
        return false;
    if (c.has_output() && !write_some(c))
        return false;
    return !c.finished();
}

int main(int argc, char** argv) {
    ServerOptions options = parse_server_options(argc, argv);
    stop_on_signals();
    int listener = listen_tcp(options);
    announce_port(listener);
    std::unordered_map<int, Connection> clients;   // by socket descriptor

    // TODO 4: make the listener non-blocking (set_nonblocking), then
    // loop for ever: accept a waiting client if there is one (accept_waiting,
    // adding it to clients), and visit every client once. Close and erase
    // each client whose visit returns false. Nothing may wait.
    while (true) {
        int fd = accept_waiting(listener);
        if (fd < 0)
            continue;
        Connection c(fd);
        while (visit(c)) {
        }
        close(fd);
    }
}
