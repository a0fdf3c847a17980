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
             "    announce_port(listener);\n"
             "    {   // \"checks\" that it is up by connecting to itself\n"
             "        sockaddr_in self{};\n"
             "        socklen_t length = sizeof(self);\n"
             "        getsockname(listener, reinterpret_cast<sockaddr*>(&self), &length);\n"
             "        self.sin_addr.s_addr = htonl(INADDR_LOOPBACK);\n"
             "        int probe = socket(AF_INET, SOCK_STREAM, 0);\n"
             "        connect(probe, reinterpret_cast<sockaddr*>(&self), length);\n"
             "        close(probe);\n"
             "    }\n")],
           {"listen_is_silent": "packets on the server's port"},
           "sends packets while starting up"),
]


def mutants_for(lesson: str) -> list[Mutant]:
    """The known-bad programs of the lesson (course.toml names this module for it)."""
    return MUTANTS
