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


def mutants_for(lesson: str) -> list[Mutant]:
    """The known-bad programs of the lesson (course.toml names this module for it)."""
    return MUTANTS
