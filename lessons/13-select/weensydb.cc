// WeensyDB version 10: one thread, non-blocking sockets, a select() event loop.
//
//   usage: weensydb -p PORT      (-p 0: any free port; prints "port N")
//
// Version 9 asked every socket "anything for me?" in a loop that never
// stopped, burning a core while nobody sent a byte. select() lets the one
// thread sleep until some socket is ready: it takes the sets of descriptors
// we want to read and to write, blocks, and hands them back with only the
// ready ones left in. An idle server now uses no CPU at all.
//
// A client is watched for reading while the server wants its input, and for
// writing only while replies wait: a socket with room in its buffer is
// always writable, so watching it with nothing to write would wake select()
// at once, again and again.
//
// The price: an fd_set is a bitmap of FD_SETSIZE (1024) bits, rebuilt and
// scanned on every call, and select() cannot watch descriptor 1024 or
// above. Lesson 14 removes both limits with epoll.
#include "common/errors.h"
#include "common/server.h"
#include "common/wdb_connection.h"

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <string_view>
#include <sys/select.h>
#include <sys/socket.h>
#include <unistd.h>
#include <unordered_map>

// A client that select() could not watch is told so and let go.
static void refuse(int fd) {
    static const char reply[] = "SERVER_ERROR too many connections\r\n";
    if (write(fd, reply, std::strlen(reply)) < 0) {
        // (it is being turned away: there is nothing more to tell it)
    }
    close(fd);
}

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
    // TODO 1: FD_SET(fd, ...) with fd >= FD_SETSIZE writes past the end
    // of the fd_set and corrupts memory. Such a client cannot be watched:
    // refuse it (refuse(fd)) and return -1.
    (void)refuse;   // (only keeps the compiler quiet until you call refuse)
    set_nonblocking(fd);
    return fd;
}

// One read() of what the client has sent, if anything; runs the requests it
// completes. False when the connection is broken and must be closed.
static bool read_some(Connection& c) {
    char buffer[16384];
    ssize_t n = read(c.fd(), buffer, sizeof(buffer));
    if (n < 0)
        return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR;
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
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return errno == EAGAIN || errno == EWOULDBLOCK;
        }
        c.sent(static_cast<std::size_t>(n));
    }
    // Requests held back while the output was full run now, once per visit:
    // run inside the loop, a client that reads as fast as we write would
    // keep this loop, and every other client waiting, until its get is done.
    c.run_requests();
    return true;
}

// Serves a client that select() found ready. False when the connection is
// over and must be closed.
static bool serve_ready(Connection& c, bool readable, bool writable) {
    if (readable && !read_some(c))
        return false;
    // Replies just made are written at once: the socket usually has room.
    if ((writable || c.has_output()) && !write_some(c))
        return false;
    return !c.finished();
}

// Fills the sets with what each descriptor waits for; returns the highest one.
static int watch_list(int listener, const std::unordered_map<int, Connection>& clients,
                      fd_set* readable, fd_set* writable) {
    FD_ZERO(readable);
    FD_ZERO(writable);
    FD_SET(listener, readable);
    int highest = listener;
    // TODO 2: put each client in readable while it wants input
    // (c.wants_input()) and in writable while replies wait (c.has_output()),
    // and keep track of the highest descriptor.
    (void)clients;
    return highest;
}

int main(int argc, char** argv) {
    ServerOptions options = parse_server_options(argc, argv);
    stop_on_signals();
    int listener = listen_tcp(options);
    announce_port(listener);
    std::unordered_map<int, Connection> clients;   // by socket descriptor

    set_nonblocking(listener);
    while (true) {
        fd_set readable, writable;
        int highest = watch_list(listener, clients, &readable, &writable);
        // TODO 3: sleep in select() until a descriptor is ready (no
        // timeout: nullptr). It returns -1 with EINTR if a signal came first:
        // just go round again; any other error is fatal (die("select")).
        // Then accept a client if the listener is readable (FD_ISSET), and
        // serve each client select() marked, closing and erasing those whose
        // serve_ready returns false.
        int fd = accept_waiting(listener);
        if (fd >= 0)
            clients.emplace(fd, Connection(fd));
        for (auto it = clients.begin(); it != clients.end();) {
            if (serve_ready(it->second, true, true)) {
                ++it;
                continue;
            }
            close(it->first);
            it = clients.erase(it);
        }
        (void)highest;
    }
}
