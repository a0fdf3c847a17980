// poller.cc, lesson 13: the event loop sleeps in select().
//
// select() takes two sets of descriptors, those to watch for reading and
// those to watch for writing, sleeps until at least one of them is ready,
// and hands the sets back with only the ready ones left in. It remembers
// nothing from one call to the next: before every call the sets are filled
// again from what each descriptor is watched for (kept here, in interest),
// and after it they are scanned for the ready ones.
//
// The price: an fd_set is a bitmap of FD_SETSIZE (1024) bits, filled and
// scanned on every call, in the kernel and here, however few descriptors
// are ready; and select() cannot watch descriptor 1024 or above. Lesson 14
// removes both limits with epoll. The interface is common/poller.h.
#include "common/errors.h"
#include "common/poller.h"

#include <cerrno>
#include <cstddef>
#include <sys/select.h>
#include <vector>

struct Poller {
    std::vector<unsigned> interest;   // by descriptor: READABLE | WRITABLE; 0: not watched
};

Poller* poller_create() {
    return new Poller;
}

bool poller_watch(Poller* poller, int fd, unsigned interest) {
    // TODO 1: FD_SET(fd, ...) with fd >= FD_SETSIZE writes past the end
    // of the fd_set and corrupts memory. Such a descriptor cannot be watched:
    // return false (the event loop then refuses the client).
    if (poller->interest.size() <= static_cast<std::size_t>(fd))
        poller->interest.resize(fd + 1, 0);
    poller->interest[fd] = interest;
    return true;
}

void poller_unwatch(Poller* poller, int fd) {
    if (static_cast<std::size_t>(fd) < poller->interest.size())
        poller->interest[fd] = 0;
}

std::vector<Ready> poller_wait(Poller* poller) {
    std::vector<Ready> ready;
    fd_set readable, writable;
    FD_ZERO(&readable);
    FD_ZERO(&writable);
    int highest = -1;
    // TODO 2: put each watched descriptor in readable if it is watched
    // for READABLE and in writable if for WRITABLE (poller->interest[fd]),
    // and keep the highest one in highest.
    // TODO 3: sleep in select() until a descriptor is ready (nfds is
    // the highest descriptor + 1; no timeout: nullptr). If a signal came
    // first (-1, errno EINTR), return the empty list; any other error is
    // fatal: die("select"). Then add a Ready for each descriptor that
    // select() left in readable or writable (FD_ISSET).
    // Until then, the lines below do not wait: they say every watched
    // descriptor is ready, every time, as lesson 12's loop did. It works,
    // and it burns a core. Replace them.
    for (int fd = 0; fd < static_cast<int>(poller->interest.size()); ++fd)
        if (poller->interest[fd] != 0)
            ready.push_back({fd, (poller->interest[fd] & READABLE) != 0,
                             (poller->interest[fd] & WRITABLE) != 0});
    (void)highest;
    return ready;
}
