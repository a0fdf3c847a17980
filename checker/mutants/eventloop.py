"""Mutants of the event-loop servers, WeensyDB versions 9-11 (lessons 12-14).

The bugs of one thread serving everyone: a socket left blocking, a partial
write taken for a whole one, a loop that never sleeps (or one that sleeps
when it should not), FD_SET past FD_SETSIZE, an epoll server that forgets
EPOLLOUT or its open-files limit, or re-registers every client like select.
Lesson 12 writes its whole loop in weensydb.cc; lessons 13 and 14 share the
connection handling of common/event_loop.cc and write only poller.cc. A bug
in shared code (the event loop, the state machine, the table) is a mutated
copy of that common file.
"""
from . import Mutant

FILE = "weensydb.cc"
POLLER = "poller.cc"
LOOP = "event_loop.cc"

PARTIAL = "        c.sent(static_cast<std::size_t>(n));\n"
ALL_SENT = "        c.sent(output.size());   // mutant: as if write() always took it all\n"
BLOCKED = {"never_close": "got no answer", "half_request": "got no answer",
           "slow_reader": "got no answer"}
READ_ONCE = "    ssize_t n = read(c.fd(), buffer, sizeof(buffer));\n"
# Reads until read() says EAGAIN, but on a blocking socket, where it never does:
# the server then waits in read() for a client that has nothing more to say.
READ_UNTIL_EAGAIN = ("    ssize_t n;\n"
                     "    while ((n = read(c.fd(), buffer, sizeof(buffer))) > 0) {   // mutant\n"
                     "        c.received(buffer, static_cast<std::size_t>(n));\n"
                     "        c.run_requests();\n"
                     "        write_some(c);\n"
                     "    }\n")
READ_UNTIL_EAGAIN_FIRST = [("static bool read_some(Connection& c) {\n",
                            "static bool write_some(Connection& c);\n\nstatic bool read_some(Connection& c) {\n"),
                           (READ_ONCE, READ_UNTIL_EAGAIN)]


def everywhere() -> list[Mutant]:
    return [
        Mutant("no-end", FILE, [], {"protocol": "never came whole", "pymemcache": "went wrong"},
               "a get reply without its END line",
               common={"wdb_store.cc": [('    if (request.last_part)\n        reply += "END\\r\\n";\n', "")]}),
        Mutant("long-key", FILE, [], {"bad_input": "CLIENT_ERROR key longer than 250 bytes"},
               "the parser takes a 300-byte key",
               common={"wdb_protocol.cc": [("if (key.empty() || key.size() > MAX_KEY)",
                                            "if (key.empty())")]}),
        Mutant("one-read-one-request", FILE, [],
               {"pipelined": "replies to pipelined requests", "split_request": "before the request was whole"},
               "runs what one read() brought and throws the rest away",
               common={"wdb_parser.cc": [("    input_.erase(0, start_);   // drop what is used up before adding more\n",
                                          "    input_.clear();   // mutant: and what is not\n")]}),
    ]


def shared_loop() -> list[Mutant]:
    """Lessons 13 and 14: bugs in the connection handling they share (common/event_loop.cc)."""
    return [
        Mutant("no-partial-writes", FILE, [], {"big_value": "the reply is wrong from byte", "short_io": "the reply stopped part-way"},
               "takes a partial write for a whole one and drops the rest",
               common={LOOP: [(PARTIAL, ALL_SENT)]}),
        Mutant("read-until-eagain-blocking", FILE, [], BLOCKED,
               "reads until EAGAIN on sockets that were never made non-blocking",
               common={LOOP: READ_UNTIL_EAGAIN_FIRST + [
                   ("        set_nonblocking(fd);\n        loop.clients.emplace(fd, Connection(fd));\n",
                    "        loop.clients.emplace(fd, Connection(fd));\n")]}),
    ]


def by_lesson() -> dict[str, list[Mutant]]:
    return {
        "12-nonblocking": [
            Mutant("no-partial-writes", FILE, [(PARTIAL, ALL_SENT)],
                   {"big_value": "the reply is wrong from byte", "short_io": "the reply stopped part-way"},
                   "takes a partial write for a whole one and drops the rest"),
            Mutant("blocking-client", FILE, [("    set_nonblocking(fd);\n    // END TODO 1\n",
                                              "    // END TODO 1\n")],
                   {"never_close": "got no answer", "slow_reader": "got no answer"},
                   "leaves each client's socket blocking"),
            Mutant("finishes-half-requests", FILE,
                   [("        c.received(buffer, static_cast<std::size_t>(n));\n    c.run_requests();\n",
                     "        c.received(buffer, static_cast<std::size_t>(n));\n    c.run_requests();\n"
                     "    while (c.buffered_input() > 0 && (n = read(c.fd(), buffer, sizeof(buffer))) != 0)\n"
                     "        if (n > 0) {   // mutant: spins until the half request is whole\n"
                     "            c.received(buffer, static_cast<std::size_t>(n));\n"
                     "            c.run_requests();\n"
                     "        }\n")],
                   {"half_request": "got no answer"},
                   "stays with a client until its half request is whole"),
            Mutant("eagain-is-an-error", FILE,
                   [("        return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR;\n"
                     "    // END TODO 2\n", "        return false;\n    // END TODO 2\n")],
                   {"protocol": "never came whole"}, "closes a client whose read() says EAGAIN"),
            Mutant("sleeps", FILE,
                   [("        for (auto it = clients.begin(); it != clients.end();) {\n",
                     "        usleep(20000);   // mutant: a nap instead of a wait for events\n"
                     "        for (auto it = clients.begin(); it != clients.end();) {\n")],
                   {"idle_cpu": "used only"}, "naps between rounds, so the burn is not seen"),
        ],
        "13-select": shared_loop() + [
            Mutant("fd-set-overflow", POLLER, [("    if (fd >= FD_SETSIZE)\n        return false;\n", "")],
                   {"fd_setsize": "the server died"}, "FD_SETs descriptors past FD_SETSIZE"),
            Mutant("always-writable", POLLER,
                   [("        if (poller->interest[fd] & WRITABLE)\n            FD_SET(fd, &writable);\n",
                     "        if (poller->interest[fd] != 0)   // mutant: even with nothing to write\n"
                     "            FD_SET(fd, &writable);\n")],
                   {"idle_cpu": "of a core while idle"}, "watches every client for writing"),
        ],
        "14-epoll": shared_loop() + [
            Mutant("no-epollout", POLLER, [("    if (interest & WRITABLE)\n        events |= EPOLLOUT;\n", "")],
                   {"big_value": "the reply stopped"}, "never asks epoll for EPOLLOUT"),
            Mutant("always-epollout", POLLER,
                   [("    if (interest & WRITABLE)\n        events |= EPOLLOUT;\n",
                     "    events |= EPOLLOUT;   // mutant: even with nothing to write\n")],
                   {"idle_cpu": "of a core while idle"}, "asks for EPOLLOUT with nothing to write"),
            Mutant("no-raise-limit", FILE, [("    raise_open_files_limit();\n", "")],
                   {"many_connections": "connections were served"},
                   "keeps the soft open-files limit of 1024"),
            Mutant("rewatch-everyone", POLLER,
                   [("    int n = epoll_wait(poller->epoll_fd, events, 256, -1);\n",
                     "    for (int fd = 0; fd < static_cast<int>(poller->interest.size()); ++fd) {\n"
                     "        if (poller->interest[fd] == 0)   // mutant: the select habit, every\n"
                     "            continue;                    // client told again on every turn\n"
                     "        epoll_event event{};\n"
                     "        event.events = epoll_events(poller->interest[fd]);\n"
                     "        event.data.fd = fd;\n"
                     "        epoll_ctl(poller->epoll_fd, EPOLL_CTL_MOD, fd, &event);\n"
                     "    }\n"
                     "    int n = epoll_wait(poller->epoll_fd, events, 256, -1);\n")],
                   {"many_connections": "slowed an active client down"},
                   "re-registers every client on every turn, as select rebuilds its sets"),
        ],
    }


def mutants_for(lesson: str) -> list[Mutant]:
    """The known-bad programs of the lesson (course.toml names this module for it)."""
    return everywhere() + by_lesson()[lesson]
