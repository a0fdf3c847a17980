// event_loop.h: WeensyDB on one thread, around a poller (lessons 13 and 14).
//
// One thread serves every client, so it must never wait for any one of
// them: every socket is non-blocking, and each client's half-read requests
// and unsent replies wait in its Connection (wdb_connection.h) until the
// next time its socket is ready. The loop sleeps in poller_wait (poller.h:
// select() in lesson 13, epoll in lesson 14), then, for each ready socket:
//
//   the listener   accept every waiting client and watch it for input;
//   a client       read what it sent and run the requests it completes,
//                  write as much of the replies as its socket takes,
//                  close it once it is done, or else tell the poller what
//                  it waits for next.
//
// Lesson 12 wrote these steps by hand in a loop that never sleeps; here
// they are written once, and only the poller changes from lesson to lesson.
#pragma once

// Serves the clients of `listener` (a listening socket) for ever.
[[noreturn]] void run_event_loop(int listener);
