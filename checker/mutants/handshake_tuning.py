"""Mutants of lesson 15's httpd and http_get: each sets an option at the wrong moment, or
writes the reply in a way that changes the packets the lesson counts."""
from . import Mutant


MUTANTS = [
    Mutant("close-early-uncorked", "http_get.cc",
           [('    if (options.close_early)\n        set_option(fd, TCP_CORK, 1, "setsockopt TCP_CORK");   // hold the request back...\n', "")],
           {"close_early": "not 5"},
           "shuts its side down after the request without corking it: the FIN leaves alone"),
    Mutant("client-options-after-connect", "http_get.cc",
           [("    return connect_tcp(host, port, shown, [&](int fd) { tune_before_connect(fd, options); });\n",
             "    int fd = connect_tcp(host, port, shown);\n"
             "    tune_before_connect(fd, options);   // too late: the handshake is over\n"
             "    return fd;\n")],
           {"client_defer_accept": "still sent 1 bare ACK", "client_no_quickack": "still sent 1 bare ACK",
            "all_tuned": "not 6"},
           "sets TCP_DEFER_ACCEPT and TCP_QUICKACK after connect(), once the ACK has left"),
    Mutant("client-never-quickack", "http_get.cc",
           [("    if (options.no_quickack)\n        set_option(fd, TCP_QUICKACK, 0,",
             "    if (options.no_quickack || !options.no_quickack)\n        set_option(fd, TCP_QUICKACK, 0,")],
           {"plain_handshake": "not SYN, SYN-ACK, ACK"},
           "delays the handshake's ACK even without a switch"),
    Mutant("uncork-between", "httpd.cc",
           [("    if (!write_all(fd, header.data(), header.size()))\n        return;\n",
             "    if (!write_all(fd, header.data(), header.size()))\n        return;\n"
             "    if (options.cork)   // \"flush the header\": the cork comes out too early\n"
             "        set_option(fd, TCP_CORK, 0, \"setsockopt TCP_CORK\");\n")],
           {"cork_one_segment": "left in 2 segment(s), not 1", "all_tuned": "not 6"},
           "takes the cork out between the header and the body"),
    Mutant("one-write", "httpd.cc",
           [("    if (!write_all(fd, header.data(), header.size()))\n        return;\n"
             "    if (!write_all(fd, body.data(), body.size()))\n        return;\n",
             "    std::string reply = header + body;   // one write: nothing left to cork\n"
             "    if (!write_all(fd, reply.data(), reply.size()))\n        return;\n")],
           {"two_writes_two_segments": "left in 1 segment(s), not 2", "nodelay_two_segments": "not 2"},
           "writes header and body in one call"),
    Mutant("defer-accept-on-connection", "httpd.cc",
           [("    if (options.defer_accept)\n        set_option(listener, TCP_DEFER_ACCEPT,",
             "    if (false)\n        set_option(listener, TCP_DEFER_ACCEPT,"),
            ("        int client = accept_client(listener);\n",
             "        int client = accept_client(listener);\n"
             "        if (options.defer_accept)   // too late: accept() has returned already\n"
             "            set_option(client, TCP_DEFER_ACCEPT, DEFER_ACCEPT_SECONDS, \"setsockopt\");\n")],
           {"server_defer_accept": "before any data"},
           "sets TCP_DEFER_ACCEPT on the accepted socket instead of the listener"),
    Mutant("server-quick-ack", "httpd.cc",
           [("    if (options.no_quickack)\n        set_option(listener, TCP_QUICKACK, 0,",
             "    if (false)\n        set_option(listener, TCP_QUICKACK, 0,")],
           {"all_tuned": "took 7 packets"},
           "ignores --no-quickack: the server acknowledges the request on its own"),
    Mutant("no-port-line", "httpd.cc",
           [("    announce_port(listener);\n", "")],
           {"announces_port": "printed nothing"},
           "never prints `port N`"),
    Mutant("no-body", "httpd.cc",
           [("    if (!write_all(fd, body.data(), body.size()))\n        return;\n", "")],
           {"serves_page": "not a 200 with a body"},
           "sends the header only"),
]


# ---- student programs: wrong code of the kind a student writes in place of a TODO ----------

CLIENT_TUNING = """    if (options.defer_accept)
        set_option(fd, TCP_DEFER_ACCEPT, 1, "setsockopt TCP_DEFER_ACCEPT");
    if (options.no_quickack)
        set_option(fd, TCP_QUICKACK, 0, "setsockopt TCP_QUICKACK");
    if (options.nodelay)
        set_option(fd, TCP_NODELAY, 1, "setsockopt TCP_NODELAY");
"""

SERVER_TUNING = """    if (options.defer_accept)
        set_option(listener, TCP_DEFER_ACCEPT, DEFER_ACCEPT_SECONDS, "setsockopt TCP_DEFER_ACCEPT");
    if (options.nodelay)
        set_option(listener, TCP_NODELAY, 1, "setsockopt TCP_NODELAY");
    if (options.no_quickack)
        set_option(listener, TCP_QUICKACK, 0, "setsockopt TCP_QUICKACK");
"""

REPLY = """    if (options.cork)
        set_option(fd, TCP_CORK, 1, "setsockopt TCP_CORK");
    // END TODO 2
    if (!write_all(fd, header.data(), header.size()))
        return;
    if (!write_all(fd, body.data(), body.size()))
        return;
"""

STUDENT = [
    Mutant("socket-level-options", "http_get.cc",
           [(CLIENT_TUNING, """    int on = 1, off = 0;
    if (options.defer_accept && setsockopt(fd, SOL_SOCKET, TCP_DEFER_ACCEPT, &on, sizeof(on)) < 0)
        die("setsockopt TCP_DEFER_ACCEPT");
    if (options.no_quickack && setsockopt(fd, SOL_SOCKET, TCP_QUICKACK, &off, sizeof(off)) < 0)
        die("setsockopt TCP_QUICKACK");
    if (options.nodelay && setsockopt(fd, SOL_SOCKET, TCP_NODELAY, &on, sizeof(on)) < 0)
        die("setsockopt TCP_NODELAY");
""")],
           {"client_defer_accept": "still sent 1 bare ACK", "strace_client": "SOL_SOCKET"},
           "calls setsockopt() with level SOL_SOCKET: TCP_DEFER_ACCEPT (9) there is SO_KEEPALIVE, "
           "TCP_QUICKACK (12) SO_PRIORITY, and nothing fails", student=True),
    Mutant("quickack-after-connect", "http_get.cc",
           [(CLIENT_TUNING, """    if (options.defer_accept)
        set_option(fd, TCP_DEFER_ACCEPT, 1, "setsockopt TCP_DEFER_ACCEPT");
    if (options.nodelay)
        set_option(fd, TCP_NODELAY, 1, "setsockopt TCP_NODELAY");
    // TCP_QUICKACK is not permanent (tcp(7)): main() sets it once connected, next to the request.
"""),
            ("""    int fd = connect_to(host, positional[1], options);
""", """    int fd = connect_to(host, positional[1], options);
    if (options.no_quickack)   // right before the request, where it matters
        set_option(fd, TCP_QUICKACK, 0, "setsockopt TCP_QUICKACK");
""")],
           {"client_no_quickack": "still sent 1 bare ACK", "strace_client": "after connect()"},
           "sets TCP_QUICKACK = 0 after connect(), next to the request, since the option is not "
           "permanent: the handshake's ACK has left by then", student=True),
    Mutant("tunes-its-own-socket", "http_get.cc",
           [("""    std::string shown;
    return connect_tcp(host, port, shown, [&](int fd) { tune_before_connect(fd, options); });
""", """    // First the socket and its options, then the connection.
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0)
        die("socket");
    tune_before_connect(fd, options);
    std::string shown;
    return connect_tcp(host, port, shown);
""")],
           {"client_defer_accept": "still sent 1 bare ACK", "strace_client": "never connected"},
           "tunes a socket of its own, then lets connect_tcp() make and connect another one", student=True),
    Mutant("uncork-before-close", "httpd.cc",
           [(REPLY, """    if (options.cork)
        set_option(fd, TCP_CORK, 1, "setsockopt TCP_CORK");
    // END TODO 2
    if (!write_all(fd, header.data(), header.size()))
        return;
    if (!write_all(fd, body.data(), body.size()))
        return;
    if (options.cork)   // the reply is complete: take the cork out, send it
        set_option(fd, TCP_CORK, 0, "setsockopt TCP_CORK");
""")],
           {"all_tuned": "the server's FIN left alone"},
           "takes the cork out after the body, before close(): the reply leaves, then the FIN alone",
           student=True),
    Mutant("options-on-each-connection", "httpd.cc",
           [(SERVER_TUNING, """    if (options.defer_accept)
        set_option(listener, TCP_DEFER_ACCEPT, DEFER_ACCEPT_SECONDS, "setsockopt TCP_DEFER_ACCEPT");
    // --nodelay and --no-quickack are about connections: set on each one, in the loop below.
"""),
            ("""        int client = accept_client(listener);
        set_read_timeout(client);
""", """        int client = accept_client(listener);
        set_read_timeout(client);
        if (options.nodelay)
            set_option(client, TCP_NODELAY, 1, "setsockopt TCP_NODELAY");
        if (options.no_quickack)
            set_option(client, TCP_QUICKACK, 0, "setsockopt TCP_QUICKACK");
""")],
           {"all_tuned": "took 7 packets", "strace_server": "after accept()"},
           "sets TCP_NODELAY and TCP_QUICKACK on each accepted connection: with --defer-accept the "
           "request has arrived, and been acknowledged, before accept() returns", student=True),
    Mutant("defer-accept-as-switch", "httpd.cc",
           [(SERVER_TUNING, """    if (options.defer_accept)   // on, as in the client (TODO 1: TCP_DEFER_ACCEPT to 1)
        set_option(listener, TCP_DEFER_ACCEPT, 1, "setsockopt TCP_DEFER_ACCEPT");
    if (options.nodelay)
        set_option(listener, TCP_NODELAY, 1, "setsockopt TCP_NODELAY");
    if (options.no_quickack)
        set_option(listener, TCP_QUICKACK, 0, "setsockopt TCP_QUICKACK");
""")],
           {"server_defer_accept": "not an on/off switch"},
           "sets TCP_DEFER_ACCEPT to 1 on the listener, as if it were a switch: it defers for 1 s, "
           "until the first SYN-ACK retransmission, which the client answers, and accept() returns "
           "the silent connection at 1.01 s (the check used to watch for 1.00 s)", student=True),
    Mutant("server-nodelay-copy-paste", "httpd.cc",
           [(SERVER_TUNING, """    if (options.defer_accept)
        set_option(listener, TCP_DEFER_ACCEPT, DEFER_ACCEPT_SECONDS, "setsockopt TCP_DEFER_ACCEPT");
    if (options.defer_accept)   // the line above copied, the condition left as it was
        set_option(listener, TCP_NODELAY, 1, "setsockopt TCP_NODELAY");
    if (options.no_quickack)
        set_option(listener, TCP_QUICKACK, 0, "setsockopt TCP_QUICKACK");
""")],
           {"strace_server": "--nodelay alone: no TCP option"},
           "tests the wrong switch before TCP_NODELAY: --nodelay sets nothing and --defer-accept sets "
           "it too; no capture shows it, and the strace with every switch at once saw all four", student=True),
    Mutant("client-nodelay-copy-paste", "http_get.cc",
           [(CLIENT_TUNING, """    if (options.defer_accept)
        set_option(fd, TCP_DEFER_ACCEPT, 1, "setsockopt TCP_DEFER_ACCEPT");
    if (options.no_quickack)
        set_option(fd, TCP_QUICKACK, 0, "setsockopt TCP_QUICKACK");
    if (options.no_quickack)   // the line above copied, the condition left as it was
        set_option(fd, TCP_NODELAY, 1, "setsockopt TCP_NODELAY");
""")],
           {"strace_client": "--nodelay alone: no TCP option"},
           "tests the wrong switch before TCP_NODELAY: --nodelay sets nothing and --no-quickack sets "
           "it too; no capture shows it, and the strace with every switch at once saw all three", student=True),
]


def mutants_for(lesson: str) -> list[Mutant]:
    """The known-bad programs of the lesson (course.toml names this module for it)."""
    return MUTANTS + STUDENT
