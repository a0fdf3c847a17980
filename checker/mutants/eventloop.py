"""Mutants of the event-loop servers, WeensyDB versions 9-11 (lessons 12-14).

The bugs of one thread serving everyone: a socket left blocking, a partial
write taken for a whole one, a loop that never sleeps (or one that sleeps
when it should not), FD_SET past FD_SETSIZE, an epoll server that forgets
EPOLLOUT or its open-files limit, or rebuilds its watch list like select.
A few live in the shared state machine and table (common), so
they are mutated copies of those files.
"""
from . import Mutant

FILE = "weensydb.cc"
LESSONS = ["12-nonblocking", "13-select", "14-epoll"]

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
NONBLOCKING_CLIENT = "    set_nonblocking(fd);\n    return fd;\n"


def everywhere() -> list[Mutant]:
    return [
        Mutant("no-end", FILE, [], {"protocol": "never came whole", "pymemcache": "went wrong"},
               "a get reply without its END line",
               common={"wdb_store.cc": [('    if (request.last_part)\n        reply += "END\\r\\n";\n', "")]}),
        Mutant("long-key", FILE, [], {"bad_input": "CLIENT_ERROR key longer than 250 bytes"},
               "the parser takes a 300-byte key",
               common={"wdb_protocol.cc": [("if (key.empty() || key.size() > MAX_KEY)",
                                            "if (key.empty())")]}),
        # (The get runs a key at a time, so after the dropped bytes the next value comes.)
        Mutant("no-partial-writes", FILE, [(PARTIAL, ALL_SENT)],
               {"big_value": "the reply is wrong from byte"},
               "takes a partial write for a whole one and drops the rest"),
        Mutant("one-read-one-request", FILE, [],
               {"pipelined": "replies to pipelined requests", "split_request": "before the request was whole"},
               "runs what one read() brought and throws the rest away",
               common={"wdb_parser.cc": [("    input_.erase(0, start_);   // drop what is used up before adding more\n",
                                          "    input_.clear();   // mutant: and what is not\n")]}),
    ]


def drain_blocking(lesson_accept_tail: str) -> Mutant:
    return Mutant("read-until-eagain-blocking", FILE,
                  [("static bool read_some(Connection& c) {\n",
                    "static bool write_some(Connection& c);\n\nstatic bool read_some(Connection& c) {\n"),
                   (READ_ONCE, READ_UNTIL_EAGAIN), (lesson_accept_tail, "    return fd;\n")],
                  BLOCKED, "reads until EAGAIN on sockets that were never made non-blocking")


def by_lesson() -> dict[str, list[Mutant]]:
    return {
        "12-nonblocking": [
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
        "13-select": [
            drain_blocking("    set_nonblocking(fd);\n    return fd;\n"),
            Mutant("fd-set-overflow", FILE,
                   [("    if (fd >= FD_SETSIZE) {\n        refuse(fd);\n        return -1;\n    }\n", "")],
                   {"fd_setsize": "the server died"}, "FD_SETs descriptors past FD_SETSIZE"),
            Mutant("always-writable", FILE,
                   [("        if (c.has_output())\n            FD_SET(fd, writable);\n",
                     "        FD_SET(fd, writable);   // mutant: even with nothing to write\n")],
                   {"idle_cpu": "of a core while idle"}, "watches every client for writing"),
        ],
        "14-epoll": [
            drain_blocking("    set_nonblocking(fd);\n    return fd;\n"),
            Mutant("no-epollout", FILE, [("    if (c.has_output())\n        events |= EPOLLOUT;\n", "")],
                   {"big_value": "the reply stopped"}, "never asks epoll for EPOLLOUT"),
            Mutant("always-epollout", FILE,
                   [("    if (c.has_output())\n        events |= EPOLLOUT;\n", "    events |= EPOLLOUT;\n")],
                   {"idle_cpu": "of a core while idle"}, "asks for EPOLLOUT with nothing to write"),
            Mutant("no-raise-limit", FILE,
                   [("    raise_open_files_limit();   // one descriptor per client: 1024 is not enough\n", "")],
                   {"many_connections": "connections were served"},
                   "keeps the soft open-files limit of 1024"),
            Mutant("rewatch-everyone", FILE,
                   [("        for (int i = 0; i < n; ++i) {\n",
                     "        for (auto& [client, c] : clients)   // mutant: the select habit\n"
                     "            watch(epoll_fd, EPOLL_CTL_MOD, client, interest(c));\n"
                     "        for (int i = 0; i < n; ++i) {\n")],
                   {"many_connections": "slowed an active client down"},
                   "re-registers every client on every turn, as select rebuilds its sets"),
        ],
    }


def mutants_by_lesson() -> dict[str, list[Mutant]]:
    specific = by_lesson()
    return {lesson: everywhere() + specific[lesson] for lesson in LESSONS}
