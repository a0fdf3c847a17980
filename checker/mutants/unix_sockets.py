"""Mutants of lesson 18's prefork WeensyDB, dgram and boundaries: a passed socket kept open,
credentials read from the wrong socket, a peek that consumes, an unbound datagram client,
a worker left holding the listener, a dead worker never replaced."""
from . import Mutant

SERVER, TABLE, DGRAM, BOUNDARIES = "weensydb.cc", "shared_table.cc", "dgram.cc", "boundaries.cc"

CLOSE_COPY = "    //|\n    close(client);\n"
PEEK_ONE = "    ssize_t n = recv(client, first, 1, MSG_PEEK);\n"
CHILD_CLOSES_LISTENER = "static void close_acceptor_descriptors(const Acceptor& a) {\n    close(a.listener);\n"
RESTART = "            close(a.workers[i].channel);\n            start_worker(a, i);\n"
UNLINK_STATUS = "    unlink(path.c_str());\n"
AUTOBIND = """    sockaddr_un self = {};
    self.sun_family = AF_UNIX;
    if (bind(fd, reinterpret_cast<sockaddr*>(&self), sizeof(sa_family_t)) != 0)
        die("bind");
"""
ABSTRACT_LENGTH = "        length = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + 1 + o.name.size());\n"
PATH_BIND = "        std::strcpy(address.sun_path, o.path);\n        length = sizeof(address);\n"
SEQPACKET = '    int type = kind == "seqpacket" ? SOCK_SEQPACKET : SOCK_STREAM;\n'
WORKERS_STARTED = "    for (int i = 0; i < a.nworkers; i++)\n        start_worker(a, i);\n"
CONTROL = "    message.msg_control = control;\n    message.msg_controllen = sizeof(control);\n    cmsghdr* c = CMSG_FIRSTHDR(&message);\n"
GET_END = '        if (request.last_part)\n            reply += "END\\r\\n";\n'
NOREPLY = "            if (!request.noreply && !write_all(client, reply.data(), reply.size()))\n"
PEEK_TWICE = ("    ssize_t n = recv(client, first, 1, MSG_PEEK);\n    if (n != 1 || first[0] != 'G')\n"
              "        return false;\n    n = recv(client, first, 4, MSG_PEEK | MSG_WAITALL);\n")

MUTANTS = [
    Mutant("acceptor-keeps-copy", SERVER, [(CLOSE_COPY, "    //|\n")],
           {"handed_to_worker": "still holds the clients' sockets", "no_leaked_descriptors": "leaks descriptors"},
           "the acceptor keeps its copy of each passed socket open"),
    Mutant("credentials-of-listener", SERVER, [("    uid_t uid = peer_uid(client);\n",
                                                "    uid_t uid = peer_uid(a.admin);\n")],
           {"peercred": "answered a client of another uid"},
           "reads SO_PEERCRED of the listening admin socket (its own uid) instead of the client's"),
    Mutant("admin-one-read", SERVER,
           [("    while (line.size() < MAX_COMMAND && line.find('\\n') == std::string::npos) {\n",
             "    for (int once = 0; once < 1; once++) {   // one read() taken as the whole line\n")],
           {"peercred": "part of a command for the whole"},
           "takes one read() of the admin socket as the whole command line"),
    Mutant("peek-consumes", SERVER, [(PEEK_ONE, "    ssize_t n = recv(client, first, 1, 0);\n")],
           {"peek_routes": "consumed by the peek"},
           "the first look at a client's bytes is a recv() without MSG_PEEK: it eats the first byte"),
    Mutant("unbound-dgram-client", DGRAM, [(AUTOBIND, "")],
           {"dgram_bind": "got no answer"},
           "the datagram client never binds: the server cannot answer it"),
    Mutant("worker-keeps-listener", SERVER,
           [(CHILD_CLOSES_LISTENER, "static void close_acceptor_descriptors(const Acceptor& a) {\n")],
           {"no_leaked_descriptors": "holds the listening socket"},
           "a forked worker keeps the acceptor's listening socket"),
    Mutant("dead-worker-not-replaced", SERVER, [(RESTART, "            close(a.workers[i].channel);\n")],
           {"worker_replaced": "not replaced"},
           "a dead worker is reaped but never replaced"),
    Mutant("status-file-kept", SERVER, [(UNLINK_STATUS, "")],
           {"deleted_status_file": "still on disk"},
           "the status file is never deleted"),
    Mutant("no-end", TABLE, [(GET_END, "")],
           {"protocol": "never came whole", "pymemcache": "went wrong"},
           "a get reply without its END line"),
    Mutant("long-key", SERVER, [], {"bad_input": "CLIENT_ERROR key longer than 250 bytes"},
           "the parser takes a 300-byte key",
           common={"wdb_protocol.cc": [("if (key.empty() || key.size() > MAX_KEY)", "if (key.empty())")]}),
]

STUDENT = [
    Mutant("fd-as-plain-data", SERVER,
           [(CONTROL, "    cmsghdr* c = reinterpret_cast<cmsghdr*>(control);   // filled, never attached\n")],
           {"handed_to_worker": "got no STORED"},
           "builds the SCM_RIGHTS header but never attaches it to the msghdr: only the byte goes",
           student=True),
    Mutant("abstract-name-padded", SERVER,
           [(ABSTRACT_LENGTH, "        length = sizeof(address);\n")],
           {"abstract_single_instance": "padded"},
           "binds the abstract name with the whole sun_path's length: '\\0' padding is part of it",
           student=True),
    Mutant("unlink-before-bind", SERVER,
           [(PATH_BIND, "        std::strcpy(address.sun_path, o.path);\n        unlink(o.path);   // no stale file\n"
                        "        length = sizeof(address);\n")],
           {"path_socket_compared": "second instance started"},
           "removes the path before bind(), to get rid of stale files: a second instance steals it",
           student=True),
    Mutant("stream-for-seqpacket", BOUNDARIES, [(SEQPACKET, "    int type = SOCK_STREAM;\n")],
           {"boundaries": "did not give one message per read"},
           "uses SOCK_STREAM for both: reads take everything that has arrived", student=True),
    Mutant("status-closed-after-start", SERVER,
           [(WORKERS_STARTED, WORKERS_STARTED + "    close(a.status);   // passed to every worker now\n"
                                                "    a.status = -1;\n")],
           {"deleted_status_file": "does not show the deleted file's text"},
           "closes the status file once the first workers have it: a replacement gets none",
           student=True),
    Mutant("reply-to-noreply", SERVER,
           [(NOREPLY, "            if (!write_all(client, reply.data(), reply.size()))\n")],
           {"protocol": "noreply gets no reply", "pymemcache": "noreply"},
           "answers every request, noreply or not", student=True),
    Mutant("peek-four-without-waitall", SERVER,
           [(PEEK_TWICE, "    ssize_t n = recv(client, first, sizeof(first), MSG_PEEK);\n")],
           {"peek_routes": "whose `G` came alone"},
           "peeks at four bytes at once without MSG_WAITALL: an HTTP request whose first segment "
           "is shorter than `GET ` goes to the WeensyDB reader", student=True),
    Mutant("peek-waits-for-four", SERVER,
           [(PEEK_TWICE, "    ssize_t n = recv(client, first, sizeof(first), MSG_PEEK | MSG_WAITALL);\n")],
           {"peek_routes": "shorter than four bytes got no answer"},
           "peeks at four bytes with MSG_WAITALL for every client: a first request of fewer "
           "bytes (an empty line) waits forever", student=True),
    Mutant("dgram-client-fixed-name", DGRAM,
           [("    if (bind(fd, reinterpret_cast<sockaddr*>(&self), sizeof(sa_family_t)) != 0)\n",
             "    if (bind(fd, reinterpret_cast<sockaddr*>(&self), sizeof(self)) != 0)\n")],
           {"dgram_bind": "dgram clients at once"},
           "binds the client with the whole sockaddr_un's length: not autobind but the abstract "
           "name of 107 '\\0' bytes, the same for every client, so two cannot run at once",
           student=True),
]


SERIAL_MUTANT = Mutant(
    "serial-worker", SERVER,
    [("    int workers = 4;\n", "    int workers = 1;\n"),
     ("            std::thread(handle_connection, fd).detach();\n", "            handle_connection(fd);   // one client at a time\n")],
    {"never_close": "a second client got no answer", "half_request": "a second client got no answer",
     "slow_reader": "a second client got no answer"},
    "one worker by default, serving one client at a time: any client that stalls stalls all",
    student=True)
STUDENT.append(SERIAL_MUTANT)
MUTANTS.append(Mutant("short-write-taken-whole", SERVER, [], {"short_io": "the reply never came whole"},
                      "takes a write() that moved part of a reply for one that moved all of it",
                      common={"io.cc": [("        p += written;              // a short write: go round for the rest\n"
                                         "        n -= static_cast<std::size_t>(written);\n",
                                         "        break;                     // mutant: as if it took it all\n")]}))


def mutants_for(lesson: str) -> list[Mutant]:
    """The known-bad programs of the lesson (course.toml names this module for it)."""
    return MUTANTS + STUDENT
