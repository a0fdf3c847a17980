// event_loop.cc: the connection handling of lessons 13 and 14, written once.
// What each step does and why is in event_loop.h; the waiting is in the
// lesson's poller.cc.
#include "common/event_loop.h"

#include "common/errors.h"
#include "common/poller.h"
#include "common/server.h"
#include "common/wdb_connection.h"

#include <cerrno>
#include <cstdio>
#include <string_view>
#include <sys/socket.h>
#include <unistd.h>
#include <unordered_map>

namespace {

struct EventLoop {
    Poller* poller = nullptr;
    int listener = -1;
    bool accepting = true;                        // is the listener watched? (pause_accepting)
    std::unordered_map<int, Connection> clients;  // by socket descriptor
};

}  // namespace

// A client that the poller cannot watch is told so and let go.
static void refuse(int fd) {
    static const char reply[] = "SERVER_ERROR too many connections\r\n";
    if (write(fd, reply, sizeof(reply) - 1) < 0) {
        // (it is being turned away: there is nothing more to tell it)
    }
    close(fd);
}

// Out of descriptors (EMFILE; ENFILE when the whole system is), accept()
// fails and leaves the client in the listen backlog, so the listener stays
// readable: a loop still watching it would wake at once, fail again, and
// spin at 100% of a core, silently, for as long as the shortage lasts.
// So the loop stops watching the listener until one of its clients closes
// and gives a descriptor back (resume_accepting). The waiting clients stay
// in the backlog, where the kernel has finished their handshakes, and are
// accepted then. We chose this over the other cure, a spare descriptor
// closed to accept-and-close the newcomer, because that turns away clients
// that a moment later could be served. (The price: ENFILE ended by another
// process's close goes unnoticed until one of our clients closes.)
static void pause_accepting(EventLoop& loop) {
    warn_out_of_descriptors();
    poller_unwatch(loop.poller, loop.listener);
    loop.accepting = false;
}

static void resume_accepting(EventLoop& loop) {
    if (!loop.accepting && poller_watch(loop.poller, loop.listener, READABLE))
        loop.accepting = true;
}

// Accepts every client waiting on the listener, makes its socket
// non-blocking and watches it for its first request.
static void accept_waiting(EventLoop& loop) {
    while (true) {
        int fd = accept(loop.listener, nullptr, nullptr);
        if (fd < 0) {
            // EAGAIN: nobody is waiting any more. ECONNABORTED: a client gave
            // up before we came; EINTR: a signal. Both: try again next turn.
            if (errno == EMFILE || errno == ENFILE)
                pause_accepting(loop);
            else if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR && errno != ECONNABORTED)
                std::perror("accept");
            return;
        }
        if (!poller_watch(loop.poller, fd, READABLE)) {
            refuse(fd);
            continue;
        }
        set_nonblocking(fd);
        loop.clients.emplace(fd, Connection(fd));
    }
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

// Serves a client the poller found ready. False when the connection is
// over and must be closed.
static bool serve_ready(Connection& c, bool readable, bool writable) {
    if (readable && !read_some(c))
        return false;
    // Replies just made are written at once: the socket usually has room.
    if ((writable || c.has_output()) && !write_some(c))
        return false;
    return !c.finished();
}

// What a client waits for: input while it may send more, and room to write
// only while replies wait. A socket with room in its send buffer is always
// writable: watched for writing with nothing to write, it would wake the
// loop at once, again and again. (An open client always waits for one of
// the two: with neither, Connection::finished() is true.)
static unsigned interest(const Connection& c) {
    unsigned wanted = 0;
    if (c.wants_input())
        wanted |= READABLE;
    if (c.has_output())
        wanted |= WRITABLE;
    return wanted;
}

static void close_client(EventLoop& loop, int fd) {
    poller_unwatch(loop.poller, fd);
    close(fd);
    loop.clients.erase(fd);
    resume_accepting(loop);   // a descriptor is free again
}

// Serves one ready client, then tells the poller what it waits for now
// (the poller passes it on to the kernel only if it changed).
static void serve(EventLoop& loop, const Ready& ready) {
    auto found = loop.clients.find(ready.fd);
    if (found == loop.clients.end())
        return;
    Connection& c = found->second;
    if (!serve_ready(c, ready.readable, ready.writable) || !poller_watch(loop.poller, ready.fd, interest(c)))
        close_client(loop, ready.fd);
}

void run_event_loop(int listener) {
    set_nonblocking(listener);
    EventLoop loop;
    loop.poller = poller_create();
    loop.listener = listener;
    if (!poller_watch(loop.poller, listener, READABLE))
        die_with("poller_watch", "cannot watch the listening socket");
    while (true) {
        for (const Ready& ready : poller_wait(loop.poller)) {
            if (ready.fd == listener)
                accept_waiting(loop);
            else
                serve(loop, ready);
        }
    }
}
