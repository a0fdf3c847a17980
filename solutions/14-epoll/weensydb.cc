// WeensyDB version 11: one thread, non-blocking sockets, an epoll event loop.
//
//   usage: weensydb -p PORT      (-p 0: any free port; prints "port N")
//
// Version 10's select() takes the whole list of watched descriptors on
// every call and scans all of them, in the kernel and again in our loop,
// to find the few that are ready: with 10,000 idle clients and one busy
// one, each wake-up costs 10,000 steps. And it cannot watch a descriptor
// above 1023.
//
// epoll keeps the watch list in the kernel. epoll_ctl() adds, changes or
// removes one descriptor's entry, once, when what we wait for changes;
// epoll_wait() sleeps and returns only the descriptors that are ready. Its
// cost follows the number of ready descriptors, not the number watched
// (`make bench-pollers` measures both), and any descriptor number works.
//
// The Connection state machine is version 10's, unchanged: only the way
// of waiting differs.
#include "common/errors.h"
#include "common/server.h"
#include "common/wdb_connection.h"

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <string_view>
#include <sys/epoll.h>
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

// Serves a client that epoll found ready. False when the connection is
// over and must be closed.
static bool serve_ready(Connection& c, bool readable, bool writable) {
    if (readable && !read_some(c))
        return false;
    // Replies just made are written at once: the socket usually has room.
    if ((writable || c.has_output()) && !write_some(c))
        return false;
    return !c.finished();
}

// What a client waits for: input while it may send more, and room to
// write while replies wait (never both off while it is open).
static std::uint32_t interest(const Connection& c) {
    std::uint32_t events = 0;
    // BEGIN TODO 2: EPOLLIN while c.wants_input(); EPOLLOUT while
    // c.has_output(). Without EPOLLOUT, a reply larger than the socket's
    // buffer would stall half-written: nothing would wake us to go on.
    //| events |= EPOLLIN;
    //| (void)c;
    if (c.wants_input())
        events |= EPOLLIN;
    if (c.has_output())
        events |= EPOLLOUT;
    // END TODO 2
    return events;
}

// Adds (EPOLL_CTL_ADD), changes (EPOLL_CTL_MOD) or removes (EPOLL_CTL_DEL)
// fd's entry in the kernel's watch list.
static void watch(int epoll_fd, int op, int fd, std::uint32_t events) {
    epoll_event event{};
    event.events = events;
    event.data.fd = fd;
    if (epoll_ctl(epoll_fd, op, fd, &event) < 0)
        die("epoll_ctl");
}

int main(int argc, char** argv) {
    ServerOptions options = parse_server_options(argc, argv);
    stop_on_signals();
    raise_open_files_limit();   // one descriptor per client: 1024 is not enough
    int listener = listen_tcp(options);
    announce_port(listener);
    std::unordered_map<int, Connection> clients;   // by socket descriptor

    set_nonblocking(listener);
    // BEGIN TODO 1: create the epoll instance (epoll_create1(0); die on
    // failure) and watch the listener for EPOLLIN.
    //| int epoll_fd = -1;
    int epoll_fd = epoll_create1(0);
    if (epoll_fd < 0)
        die("epoll_create1");
    watch(epoll_fd, EPOLL_CTL_ADD, listener, EPOLLIN);
    // END TODO 1
    epoll_event ready[256];
    while (true) {
        // BEGIN TODO 3: sleep in epoll_wait() until some descriptors are
        // ready (up to 256 of them into ready[], timeout -1: no timeout) and
        // keep their number in n. On EINTR go round again; other errors are
        // fatal (die). The loop below then serves the n ready descriptors.
        //| int n = 0;
        //| (void)ready;
        int n = epoll_wait(epoll_fd, ready, 256, -1);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            die("epoll_wait");
        }
        // END TODO 3
        for (int i = 0; i < n; ++i) {
            int fd = ready[i].data.fd;
            if (fd == listener) {
                int client;
                while ((client = accept_waiting(listener)) >= 0) {
                    Connection& c = clients.emplace(client, Connection(client)).first->second;
                    watch(epoll_fd, EPOLL_CTL_ADD, client, interest(c));
                }
                continue;
            }
            Connection& c = clients.at(fd);
            std::uint32_t before = interest(c);
            if (!serve_ready(c, ready[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR),
                             ready[i].events & EPOLLOUT)) {
                close(fd);
                clients.erase(fd);
            } else if (interest(c) != before) {
                watch(epoll_fd, EPOLL_CTL_MOD, fd, interest(c));
            }
        }
    }
}
