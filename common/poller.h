// poller.h: how an event loop waits for its sockets (lessons 13 and 14).
//
// The event loop (event_loop.h) serves its clients the same way whatever
// the kernel's mechanism for waiting; only these few functions change.
// Each lesson links its own backend, poller.cc in the lesson's folder:
// lesson 13 writes it with select(), lesson 14 with epoll. (Redis is built
// the same way: ae.c over ae_select.c, ae_epoll.c, ae_kqueue.c.)
//
//   Poller* poller = poller_create();
//   poller_watch(poller, listener, READABLE);    // wake me when it can be read
//   while (true)
//       for (Ready r : poller_wait(poller))      // sleeps until something is ready
//           ... read r.fd if r.readable, write it if r.writable ...
//
// A backend keeps what each descriptor is watched for, and tells the
// kernel only what changes.
#pragma once

#include <vector>

// What a descriptor is watched for: READABLE, WRITABLE or READABLE | WRITABLE.
enum Interest : unsigned {
    READABLE = 1,   // bytes to read, a client to accept, or the peer's end of input
    WRITABLE = 2,   // room in the socket's send buffer
};

// One descriptor that is ready, as poller_wait found it.
struct Ready {
    int fd;
    bool readable;   // also set when the socket has an error or was hung up: read() says which
    bool writable;
};

struct Poller;   // each backend defines its own

// Makes a poller watching nothing. Exits via die() if the kernel refuses.
Poller* poller_create();

// Starts watching fd, or changes what it is watched for (interest:
// READABLE, WRITABLE or both, never neither). Returns false if this poller cannot watch
// fd (select cannot watch a descriptor >= FD_SETSIZE); fd is then not watched.
bool poller_watch(Poller* poller, int fd, unsigned interest);

// Stops watching fd. Call it before closing fd: the number will be reused.
void poller_unwatch(Poller* poller, int fd);

// Sleeps until at least one watched descriptor is ready, and returns the
// ready ones. Returns an empty list if a signal ended the wait.
std::vector<Ready> poller_wait(Poller* poller);
