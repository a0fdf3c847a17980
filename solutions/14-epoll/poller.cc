// poller.cc, lesson 14: the event loop sleeps in epoll_wait().
//
// select() is handed the whole list of watched descriptors on every call,
// walks all of them, and the ready ones are found by walking them again:
// with 10,000 idle clients and one busy one, every wake-up costs 10,000
// steps. And it cannot watch a descriptor above 1023.
//
// epoll keeps the watch list in the kernel. epoll_ctl() adds, changes or
// removes one descriptor's entry, once, when what it is watched for
// changes; epoll_wait() sleeps and returns only the descriptors that are
// ready. Its cost follows the number of ready descriptors, not the number
// watched (`make bench-pollers` measures both), and any descriptor number
// works. The interface is common/poller.h, the same as lesson 13's.
#include "common/errors.h"
#include "common/poller.h"

#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <sys/epoll.h>
#include <vector>

struct Poller {
    int epoll_fd = -1;
    std::vector<unsigned> interest;   // by descriptor: what the kernel was told; 0: not watched
};

// The epoll events that stand for an interest.
static std::uint32_t epoll_events(unsigned interest) {
    std::uint32_t events = 0;
    // BEGIN TODO 2: EPOLLIN for READABLE; EPOLLOUT for WRITABLE, and only
    // then. The loop asks for WRITABLE only while replies wait: without
    // EPOLLOUT a reply larger than the socket's buffer would stall half
    // written, and with it always on, epoll_wait would never sleep (a socket
    // with room in its buffer is always writable).
    //| events |= EPOLLIN;
    //| (void)interest;
    if (interest & READABLE)
        events |= EPOLLIN;
    if (interest & WRITABLE)
        events |= EPOLLOUT;
    // END TODO 2
    return events;
}

Poller* poller_create() {
    Poller* poller = new Poller;
    // BEGIN TODO 1: create the epoll instance, poller->epoll_fd
    // (epoll_create1(0); die("epoll_create1") on failure).
    poller->epoll_fd = epoll_create1(0);
    if (poller->epoll_fd < 0)
        die("epoll_create1");
    // END TODO 1
    return poller;
}

bool poller_watch(Poller* poller, int fd, unsigned interest) {
    if (poller->interest.size() <= static_cast<std::size_t>(fd))
        poller->interest.resize(fd + 1, 0);
    unsigned before = poller->interest[fd];
    // BEGIN TODO 3: tell the kernel what changed, and only that. The loop
    // calls poller_watch after serving each ready client, and most of the
    // time nothing changed: then make no system call at all. Otherwise
    // epoll_ctl(): EPOLL_CTL_ADD for a descriptor not watched yet (before
    // is 0), EPOLL_CTL_MOD for one whose interest changed, with
    // event.events = epoll_events(interest) and event.data.fd = fd (epoll
    // hands data back with each event). If epoll_ctl fails, return false.
    //| (void)before;
    //| (void)epoll_events;   // (only keeps the compiler quiet until you call it)
    if (interest != before) {
        epoll_event event{};
        event.events = epoll_events(interest);
        event.data.fd = fd;
        int op = before == 0 ? EPOLL_CTL_ADD : EPOLL_CTL_MOD;
        if (epoll_ctl(poller->epoll_fd, op, fd, &event) < 0)
            return false;
    }
    // END TODO 3
    poller->interest[fd] = interest;
    return true;
}

void poller_unwatch(Poller* poller, int fd) {
    if (static_cast<std::size_t>(fd) >= poller->interest.size() || poller->interest[fd] == 0)
        return;
    // (Closing a descriptor removes it from the list by itself only if it was
    // the last descriptor for its open file: not after a dup() or a fork(),
    // epoll(7) Q6. And the loop also stops watching a listener it cannot
    // accept from for now, which stays open.)
    if (epoll_ctl(poller->epoll_fd, EPOLL_CTL_DEL, fd, nullptr) < 0) {
        // (it fails only where nothing was added: nothing to undo)
    }
    poller->interest[fd] = 0;
}

std::vector<Ready> poller_wait(Poller* poller) {
    std::vector<Ready> ready;
    epoll_event events[256];
    // BEGIN TODO 4: sleep in epoll_wait() until some descriptors are ready
    // (up to 256 events into events[]; timeout -1: none). If a signal came
    // first (-1, errno EINTR), return the empty list; any other error is
    // fatal: die("epoll_wait"). Then add a Ready for each event, for
    // events[i].data.fd: readable on EPOLLIN (and on EPOLLHUP or EPOLLERR,
    // which epoll always reports: the read() will say what happened),
    // writable on EPOLLOUT.
    //| // Until then, the lines below do not wait: they say every watched
    //| // descriptor is ready, every time, as lesson 12's loop did. It works,
    //| // and it burns a core. Replace them.
    //| for (int fd = 0; fd < static_cast<int>(poller->interest.size()); ++fd)
    //|     if (poller->interest[fd] != 0)
    //|         ready.push_back({fd, (poller->interest[fd] & READABLE) != 0,
    //|                          (poller->interest[fd] & WRITABLE) != 0});
    //| (void)events;
    int n = epoll_wait(poller->epoll_fd, events, 256, -1);
    if (n < 0) {
        if (errno == EINTR)
            return ready;
        die("epoll_wait");
    }
    for (int i = 0; i < n; ++i) {
        std::uint32_t what = events[i].events;
        ready.push_back({events[i].data.fd, (what & (EPOLLIN | EPOLLHUP | EPOLLERR)) != 0,
                         (what & EPOLLOUT) != 0});
    }
    // END TODO 4
    return ready;
}
