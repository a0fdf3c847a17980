// WeensyDB versions 10 and 11: one thread for every client, an event loop.
//
//   usage: weensydb -p PORT [-b ADDRESS]   (-p 0: any free port; prints "port N")
//
// This file is the same in lessons 13 and 14. Version 9 (lesson 12) asked
// every socket "anything for me?" in a loop that never stopped, burning a
// core. Here the loop sleeps until some socket is ready, then serves only
// the ready ones. The loop is written once, in common/event_loop.cc: it
// accepts, reads, runs requests, writes and closes, with each client's
// state in its Connection. How it sleeps is the lesson's own, poller.cc
// beside this file: select() in lesson 13 (version 10), epoll in lesson 14
// (version 11), behind the few functions of common/poller.h.
#include "common/event_loop.h"
#include "common/server.h"

int main(int argc, char** argv) {
    ServerOptions options = parse_server_options(argc, argv);
    stop_on_signals();
    // One descriptor per client, and a shell starts us with a soft limit of
    // 1024: raise it to the hard limit. (select cannot watch a descriptor
    // above 1023 anyway: lesson 13's poller refuses those clients.)
    raise_open_files_limit();
    int listener = listen_tcp(options);
    announce_port(listener);
    run_event_loop(listener);
}
