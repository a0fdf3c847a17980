"""Mutants of lesson 02's echo_server: each breaks one thing the lesson teaches."""
from . import Mutant


MUTANTS = [
    Mutant("eintr-ends-the-client", "echo_server.cc",
           [("        if (n < 0 && errno == EINTR)\n            continue;      // a signal came before any byte: nothing is wrong\n", "")],
           {"echo_short_io": "interrupted by a signal fails with EINTR"},
           "takes a read() interrupted by a signal (EINTR) for a broken connection"),
    Mutant("ignores-short-write", "echo_server.cc",
           [("        if (!write_all(client, buffer, static_cast<size_t>(n)))\n",
             "        if (write(client, buffer, static_cast<size_t>(n)) < 0)   // the count is ignored\n")],
           {"echo_short_io": "write the rest too"},
           "checks write() for an error but not for a short count"),
    Mutant("no-listen", "echo_server.cc",
           [("    if (listen(fd, SOMAXCONN) < 0)\n        die(\"listen\");\n", "")],
           {"refused_before_listen": "was not accepted", "handshake": "three-way handshake",
            "strace_order": "missing: listen", "fixed_port": "refused", "echo_line": "refused"},
           "binds but never listens"),
    Mutant("no-port-line", "echo_server.cc",
           [("    announce_port(listener);\n", "")],
           {"announces_port": "printed nothing"},
           "never prints `port N`"),
    Mutant("ignores-port-option", "echo_server.cc",
           [("htons(static_cast<uint16_t>(options.port))", "htons(0)")],
           {"fixed_port": "not `port N` for the port asked for"},
           "always binds a random port"),
    Mutant("one-read", "echo_server.cc",
           [("            return;        // e.g. EPIPE: the client stopped listening\n    }",
             "            return;        // e.g. EPIPE: the client stopped listening\n        return;   // one read() taken as everything\n    }")],
           {"echo_big": "cut short", "echo_lines": "cut short"},   # FIN or RST: a race, both right
           "echoes one read() and hangs up"),
    Mutant("single-client", "echo_server.cc",
           [("        echo(client);\n        close(client);", "        echo(client);\n        close(client);\n        break;   // one client, then main() returns")],
           {"second_client": "exited after its first client"},
           "serves one client and exits"),
    Mutant("no-close", "echo_server.cc",
           [("        close(client);   // our FIN: tells the client we are done too\n", "")],
           {"closes_at_eof": "kept the connection open", "two_way_stream": "no FIN from the server"},
           "never closes a finished connection"),
    Mutant("no-signal-handlers", "echo_server.cc",
           [("    stop_on_signals();\n", "")],
           {"stops_on_signals": "killed by SIGTERM"},
           "dies of SIGTERM instead of exiting 0"),
    Mutant("chatty-startup", "echo_server.cc",
           [("    announce_port(listener);\n",
             "    {   // \"checks\" that it is up by connecting to itself, before it says so\n"
             "        sockaddr_in self{};\n"
             "        socklen_t length = sizeof(self);\n"
             "        getsockname(listener, reinterpret_cast<sockaddr*>(&self), &length);\n"
             "        self.sin_addr.s_addr = htonl(INADDR_LOOPBACK);\n"
             "        int probe = socket(AF_INET, SOCK_STREAM, 0);\n"
             "        connect(probe, reinterpret_cast<sockaddr*>(&self), length);\n"
             "        close(probe);\n"
             "    }\n"
             "    announce_port(listener);\n")],
           {"listen_is_silent": "packets on the server's port"},
           "sends packets while starting up"),
]


# ---- student programs: wrong code of the kind a student writes in place of a TODO ----------

ECHO_LOOP = """    while (true) {
        ssize_t n = read(client, buffer, sizeof(buffer));
        if (n < 0 && errno == EINTR)
            continue;      // a signal came before any byte: nothing is wrong
        if (n <= 0)
            return;        // 0: the client is done; < 0: the connection broke
        if (!write_all(client, buffer, static_cast<size_t>(n)))
            return;        // e.g. EPIPE: the client stopped listening
    }
"""

ACCEPT_LOOP = """    while (true) {
        int client = accept(listener, nullptr, nullptr);
        if (client < 0) {
            perror("accept");
            continue;
        }
        echo(client);
        close(client);   // our FIN: tells the client we are done too
    }
"""

LISTENING_SOCKET = """static int open_listening_socket(const ServerOptions& options) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0)
        die("socket");

    // Without this, restarting the server on a fixed port fails with
    // "Address already in use" while the last connections sit in TIME_WAIT.
    int yes = 1;
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof(yes)) < 0)
        die("setsockopt");

    // The address: 127.0.0.1 (only this machine can connect) unless -b gave
    // another; "0.0.0.0" (INADDR_ANY) would mean every address of the machine.
    sockaddr_in address{};
    address.sin_family = AF_INET;
    if (inet_pton(AF_INET, options.bind_address, &address.sin_addr) != 1)
        die_with(options.bind_address, "not an IPv4 address");
    address.sin_port = htons(static_cast<uint16_t>(options.port));
    if (bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)) < 0)
        die("bind");
"""

STUDENT = [
    Mutant("no-reuseaddr", "echo_server.cc",
           [(LISTENING_SOCKET, """static int open_listening_socket(const ServerOptions& options) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0)
        die("socket");

    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_port = htons(static_cast<uint16_t>(options.port));
    if (inet_pton(AF_INET, options.bind_address, &address.sin_addr) != 1)
        die_with(options.bind_address, "not an IPv4 address");
    if (bind(fd, (sockaddr*)&address, sizeof(address)) < 0)
        die("bind");
""")],
           {"restart_in_time_wait": "SO_REUSEADDR"},
           "writes the socket/bind code without SO_REUSEADDR: a restart on the same port fails "
           "while the last connection is in TIME_WAIT", student=True),
    Mutant("closes-the-listener", "echo_server.cc",
           [(ACCEPT_LOOP, """    while (true) {
        int fd = accept(listener, nullptr, nullptr);
        if (fd < 0) {
            perror("accept");
            continue;
        }
        echo(fd);
        close(listener);   // done with this one
    }
""")],
           {"second_client": "closed its listening socket", "closes_at_eof": "listening socket"},
           "closes the listening socket instead of the client's after each client", student=True),
    Mutant("echoes-whole-buffer", "echo_server.cc",
           [(ECHO_LOOP, """    ssize_t n;
    while ((n = read(client, buffer, sizeof(buffer))) != 0) {
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return;
        }
        if (!write_all(client, buffer, sizeof(buffer)))
            return;
    }
""")],
           {"echo_line": "not sizeof(buffer)"},
           "writes back sizeof(buffer) bytes whatever read() returned", student=True),
    Mutant("dies-on-client-error", "echo_server.cc",
           [(ECHO_LOOP, """    while (true) {
        ssize_t n = read(client, buffer, sizeof(buffer));
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            die("read");   // check every call, report, exit
        if (n == 0)
            return;
        if (!write_all(client, buffer, static_cast<size_t>(n)))
            die("write");
    }
""")],
           {"client_reset": "ends that client only"},
           "exits the whole server (die) when one client's read() or write() fails", student=True),
    Mutant("eof-is-nothing-yet", "echo_server.cc",
           [(ECHO_LOOP, """    while (true) {
        ssize_t n = read(client, buffer, sizeof(buffer));
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return;
        }
        if (n == 0)
            continue;      // nothing has arrived yet: wait for more
        if (!write_all(client, buffer, static_cast<size_t>(n)))
            return;
    }
""")],
           {"closes_at_eof": "again and again"},
           "takes read() == 0 for \"nothing yet\" and reads again, for ever, at full speed",
           student=True),
]


def mutants_for(lesson: str) -> list[Mutant]:
    """The known-bad programs of the lesson (course.toml names this module for it)."""
    return MUTANTS + STUDENT
