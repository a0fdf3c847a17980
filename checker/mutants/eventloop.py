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
        Mutant("close-forgotten", FILE, [], {"leaves": "never closed"},
               "stops watching a client that left and forgets it, but never closes its socket",
               common={LOOP: [("    poller_unwatch(loop.poller, fd);\n    close(fd);\n",
                               "    poller_unwatch(loop.poller, fd);\n")]}),
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
        ] + lesson_12_students(),
        "13-select": shared_loop() + [
            Mutant("fd-set-overflow", POLLER, [("    if (fd >= FD_SETSIZE)\n        return false;\n", "")],
                   {"fd_setsize": "writes past the end"}, "FD_SETs descriptors past FD_SETSIZE"),
            Mutant("always-writable", POLLER,
                   [("        if (poller->interest[fd] & WRITABLE)\n            FD_SET(fd, &writable);\n",
                     "        if (poller->interest[fd] != 0)   // mutant: even with nothing to write\n"
                     "            FD_SET(fd, &writable);\n")],
                   {"idle_cpu": "always writable"}, "watches every client for writing"),
        ] + lesson_13_students(),
        "14-epoll": shared_loop() + [
            Mutant("no-epollout", POLLER, [("    if (interest & WRITABLE)\n        events |= EPOLLOUT;\n", "")],
                   {"big_value": "EPOLLOUT"}, "never asks epoll for EPOLLOUT"),
            Mutant("always-epollout", POLLER,
                   [("    if (interest & WRITABLE)\n        events |= EPOLLOUT;\n",
                     "    events |= EPOLLOUT;   // mutant: even with nothing to write\n")],
                   {"idle_cpu": "always writable"}, "asks for EPOLLOUT with nothing to write"),
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
        ] + lesson_14_students(),
    }


def mutants_for(lesson: str) -> list[Mutant]:
    """The known-bad programs of the lesson (course.toml names this module for it)."""
    return everywhere() + by_lesson()[lesson]


# ---- student programs: wrong code of the kind students write in the TODOs --------------

WRITE_TODO_12 = """        if (n < 0) {
            if (errno == EINTR)
                continue;
            return errno == EAGAIN || errno == EWOULDBLOCK;
        }
        c.sent(static_cast<std::size_t>(n));
"""

LOOP_TODO_12 = """    set_nonblocking(listener);
    while (true) {
        int fd = accept_waiting(listener);
        if (fd >= 0)
            clients.emplace(fd, Connection(fd));
        for (auto it = clients.begin(); it != clients.end();) {
            if (visit(it->second)) {
                ++it;
                continue;
            }
            close(it->first);
            it = clients.erase(it);
        }
    }
"""


def lesson_12_students() -> list[Mutant]:
    return [
        Mutant("write-error-closes", FILE,
               [(WRITE_TODO_12,
                 "        if (n <= 0) {                // write failed: give up on this client\n"
                 "            std::perror(\"write\");\n"
                 "            return false;\n"
                 "        }\n"
                 "        c.sent(static_cast<std::size_t>(n));\n")],
               {"big_value": "EAGAIN"},
               "handles a partial write, but takes write()'s EAGAIN (the socket's buffer is full) "
               "for an error and closes the client", student=True),
        Mutant("erase-without-close", FILE,
               [(LOOP_TODO_12,
                 "    set_nonblocking(listener);\n"
                 "    while (true) {\n"
                 "        int fd = accept_waiting(listener);\n"
                 "        if (fd >= 0)\n"
                 "            clients.emplace(fd, Connection(fd));\n"
                 "        for (auto it = clients.begin(); it != clients.end();) {\n"
                 "            if (!visit(it->second))\n"
                 "                it = clients.erase(it);   // this client is done\n"
                 "            else\n"
                 "                ++it;\n"
                 "        }\n"
                 "    }\n")],
               {"leaves": "never closed"},
               "forgets a finished client without closing its socket: a descriptor leaks per "
               "connection", student=True),
        Mutant("blocking-listener", FILE,
               [(LOOP_TODO_12,
                 "    while (true) {\n"
                 "        int client = accept_waiting(listener);\n"
                 "        if (client != -1)\n"
                 "            clients.insert({client, Connection(client)});\n"
                 "        std::vector<int> done;\n"
                 "        for (auto& [fd, c] : clients)\n"
                 "            if (!visit(c))\n"
                 "                done.push_back(fd);\n"
                 "        for (int fd : done) {\n"
                 "            close(fd);\n"
                 "            clients.erase(fd);\n"
                 "        }\n"
                 "    }\n"),
                ("#include <unordered_map>\n", "#include <unordered_map>\n#include <vector>\n")],
               {"protocol": "blocked in accept()"},
               "makes every client non-blocking but leaves the listener blocking: accept() waits "
               "for the next client while the others wait", student=True),
        Mutant("erase-in-range-for", FILE,
               [(LOOP_TODO_12,
                 "    set_nonblocking(listener);\n"
                 "    while (true) {\n"
                 "        int fd = accept_waiting(listener);\n"
                 "        if (fd >= 0)\n"
                 "            clients.emplace(fd, Connection(fd));\n"
                 "        for (auto& [client_fd, c] : clients) {\n"
                 "            if (!visit(c)) {\n"
                 "                close(client_fd);\n"
                 "                clients.erase(client_fd);   // (the loop's iterator now points at nothing)\n"
                 "            }\n"
                 "        }\n"
                 "    }\n")],
               {"leaves": "range-for"},
               "erases a client from the map inside the range-for that walks it", student=True),
    ]


SETS_TODO_13 = """    for (int fd = 0; fd < static_cast<int>(poller->interest.size()); ++fd) {
        if (poller->interest[fd] & READABLE)
            FD_SET(fd, &readable);
        if (poller->interest[fd] & WRITABLE)
            FD_SET(fd, &writable);
        if (poller->interest[fd] != 0)
            highest = fd;
    }
"""

SELECT_TODO_13 = """    if (select(highest + 1, &readable, &writable, nullptr, nullptr) < 0) {
        if (errno == EINTR)
            return ready;
        die("select");
    }
    for (int fd = 0; fd <= highest; ++fd) {
        bool readable_now = FD_ISSET(fd, &readable);
        bool writable_now = FD_ISSET(fd, &writable);
        if (readable_now || writable_now)
            ready.push_back({fd, readable_now, writable_now});
    }
"""


def lesson_13_students() -> list[Mutant]:
    return [
        Mutant("nfds-is-highest", POLLER,
               [(SETS_TODO_13 + "    // END TODO 2\n", "    // END TODO 2\n"),
                (SELECT_TODO_13,
                 "    int max_fd = 0;\n"
                 "    for (std::size_t fd = 0; fd < poller->interest.size(); ++fd) {\n"
                 "        unsigned want = poller->interest[fd];\n"
                 "        if (want == 0)\n"
                 "            continue;\n"
                 "        if (want & READABLE)\n"
                 "            FD_SET(fd, &readable);\n"
                 "        if (want & WRITABLE)\n"
                 "            FD_SET(fd, &writable);\n"
                 "        max_fd = static_cast<int>(fd);   // the largest descriptor watched\n"
                 "    }\n"
                 "    (void)highest;\n"
                 "    int n = select(max_fd, &readable, &writable, nullptr, nullptr);\n"
                 "    if (n == -1) {\n"
                 "        if (errno == EINTR)\n"
                 "            return ready;\n"
                 "        die(\"select\");\n"
                 "    }\n"
                 "    for (int fd = 0; fd < max_fd && n > 0; ++fd) {\n"
                 "        bool r = FD_ISSET(fd, &readable), w = FD_ISSET(fd, &writable);\n"
                 "        if (r || w) {\n"
                 "            ready.push_back({fd, r, w});\n"
                 "            --n;\n"
                 "        }\n"
                 "    }\n")],
               {"protocol": "nfds"},
               "passes select() the highest descriptor as nfds, not the highest + 1: the newest "
               "one is never watched", student=True),
        Mutant("sets-kept-in-poller", POLLER,
               [("    std::vector<unsigned> interest;   // by descriptor: READABLE | WRITABLE; 0: not watched\n};\n",
                 "    std::vector<unsigned> interest;   // by descriptor: READABLE | WRITABLE; 0: not watched\n"
                 "    fd_set readable, writable;        // what select() watches, kept up to date here\n"
                 "    int highest = -1;\n"
                 "};\n"),
                ("    return new Poller;\n",
                 "    Poller* poller = new Poller;\n"
                 "    FD_ZERO(&poller->readable);\n"
                 "    FD_ZERO(&poller->writable);\n"
                 "    return poller;\n"),
                ("    poller->interest[fd] = interest;\n    return true;\n",
                 "    poller->interest[fd] = interest;\n"
                 "    // Keep the sets as they should be, instead of building them on every wait.\n"
                 "    if (interest & READABLE)\n"
                 "        FD_SET(fd, &poller->readable);\n"
                 "    else\n"
                 "        FD_CLR(fd, &poller->readable);\n"
                 "    if (interest & WRITABLE)\n"
                 "        FD_SET(fd, &poller->writable);\n"
                 "    else\n"
                 "        FD_CLR(fd, &poller->writable);\n"
                 "    if (fd > poller->highest)\n"
                 "        poller->highest = fd;\n"
                 "    return true;\n"),
                ("        poller->interest[fd] = 0;\n}\n",
                 "        poller->interest[fd] = 0;\n"
                 "    if (fd < FD_SETSIZE) {\n"
                 "        FD_CLR(fd, &poller->readable);\n"
                 "        FD_CLR(fd, &poller->writable);\n"
                 "    }\n"
                 "}\n"),
                (SETS_TODO_13, "    (void)highest;   // (the sets are kept up to date by poller_watch)\n"),
                (SELECT_TODO_13,
                 "    if (select(poller->highest + 1, &poller->readable, &poller->writable, nullptr, nullptr) < 0) {\n"
                 "        if (errno == EINTR)\n"
                 "            return ready;\n"
                 "        die(\"select\");\n"
                 "    }\n"
                 "    for (int fd = 0; fd <= poller->highest; ++fd) {\n"
                 "        bool r = FD_ISSET(fd, &poller->readable);\n"
                 "        bool w = FD_ISSET(fd, &poller->writable);\n"
                 "        if (r || w)\n"
                 "            ready.push_back({fd, r, w});\n"
                 "    }\n"
                 "    (void)readable;\n"
                 "    (void)writable;\n")],
               {"bad_input": "overwrites its sets", "never_close": "overwrites its sets"},
               "keeps its fd_sets in the poller and hands them to select(), which overwrites "
               "them: a descriptor not ready this time is no longer watched", student=True),
        Mutant("zero-timeout", POLLER,
               [("    if (select(highest + 1, &readable, &writable, nullptr, nullptr) < 0) {\n",
                 "    timeval no_timeout{0, 0};   // wait as long as it takes\n"
                 "    if (select(highest + 1, &readable, &writable, nullptr, &no_timeout) < 0) {\n")],
               {"idle_cpu": "timeout of 0"},
               "gives select() a zero timeval for \"no timeout\": select() returns at once, "
               "every time", student=True),
        Mutant("short-timeout", POLLER,
               [("    if (select(highest + 1, &readable, &writable, nullptr, nullptr) < 0) {\n",
                 "    timeval tick{0, 1000};   // wake up every millisecond, just in case\n"
                 "    if (select(highest + 1, &readable, &writable, nullptr, &tick) < 0) {\n")],
               {"idle_cpu": "woke up"},
               "gives select() a 1 ms timeout \"just in case\": little CPU, but a thousand "
               "wake-ups a second for nothing", student=True),
        Mutant("setsize-exits", POLLER,
               [("    if (fd >= FD_SETSIZE)\n        return false;\n",
                 "    if (fd >= FD_SETSIZE) {\n"
                 "        std::fprintf(stderr, \"descriptor %d: more than select() can watch\\n\", fd);\n"
                 "        std::exit(1);\n"
                 "    }\n"),
                ("#include <cstddef>\n", "#include <cstddef>\n#include <cstdio>\n#include <cstdlib>\n")],
               {"fd_setsize": "ended itself (exit status 1)"},
               "ends the server when a descriptor reaches FD_SETSIZE, instead of refusing that "
               "one client", student=True),
    ]


POLLER_WATCH_14 = """        int op = before == 0 ? EPOLL_CTL_ADD : EPOLL_CTL_MOD;
        if (epoll_ctl(poller->epoll_fd, op, fd, &event) < 0)
            return false;
"""

EPOLL_WAIT_14 = """    int n = epoll_wait(poller->epoll_fd, events, 256, -1);
    if (n < 0) {
        if (errno == EINTR)
            return ready;
        die("epoll_wait");
    }
"""


def lesson_14_students() -> list[Mutant]:
    return [
        Mutant("eintr-is-fatal", POLLER,
               [(EPOLL_WAIT_14,
                 "    int n = epoll_wait(poller->epoll_fd, events, 256, -1);\n"
                 "    if (n == -1)\n"
                 "        die(\"epoll_wait\");   // we have no signal handlers: cannot happen\n")],
               {"stop_continue": "EINTR"},
               "dies when epoll_wait() returns -1 with EINTR, as it does after Ctrl-Z and fg "
               "(SIGSTOP, SIGCONT)", student=True),
        Mutant("edge-triggered", POLLER,
               [("    if (interest & READABLE)\n        events |= EPOLLIN;\n",
                 "    // Edge-triggered: told once when something arrives, not again and again.\n"
                 "    events |= EPOLLET;\n"
                 "    if (interest & READABLE)\n        events |= EPOLLIN;\n")],
               {"pipelined": "EPOLLET"},
               "asks for edge-triggered events (EPOLLET) from a loop that reads once per event: "
               "what one read() leaves is never announced again", student=True),
        Mutant("add-never-mod", POLLER,
               [(POLLER_WATCH_14,
                 "        if (epoll_ctl(poller->epoll_fd, EPOLL_CTL_ADD, fd, &event) == -1)\n"
                 "            return false;   // tell the loop we cannot watch it\n")],
               {"big_value": "EEXIST"},
               "always calls EPOLL_CTL_ADD: when a client's interest changes, epoll_ctl fails "
               "with EEXIST and the loop closes the client", student=True),
        Mutant("timeout-zero", POLLER,
               [("    int n = epoll_wait(poller->epoll_fd, events, 256, -1);\n",
                 "    int n = epoll_wait(poller->epoll_fd, events, 256, 0);   // 0: no timeout\n")],
               {"idle_cpu": "timeout of 0"},
               "passes epoll_wait() a timeout of 0 (return at once) for \"no timeout\" (-1)",
               student=True),
        Mutant("timeout-ten-ms", POLLER,
               [("    int n = epoll_wait(poller->epoll_fd, events, 256, -1);\n",
                 "    int n = epoll_wait(poller->epoll_fd, events, 256, 10);   // look around every 10 ms\n")],
               {"idle_cpu": "woke up"},
               "passes epoll_wait() a 10 ms timeout: it returns 0 a hundred times a second with "
               "nothing to do", student=True),
    ]
