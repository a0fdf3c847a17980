"""Mutants of lesson 01's http_get: each brings back one bug of the source text's client."""
from . import Mutant


MUTANTS = [
    Mutant("one-recv", "http_get.cc",
           [('            die("write");\n    }', '            die("write");\n        break;   // one recv() taken as the whole reply\n    }')],
           {"big": "got only the first", "dribble": "got only the first", "strace": "not 0"},
           "stops after the first recv()"),
    Mutant("overflow", "http_get.cc",
           [("recv(fd, buffer, sizeof(buffer), 0)", "recv(fd, buffer, 6000, 0)")],
           {"asan_clean": "sanitizers stopped"},
           "lets recv() write 6000 bytes into a 4096-byte buffer"),
    Mutant("ignores-connect-error", "http_get.cc",
           [("        if (connect(fd, a->ai_addr, a->ai_addrlen) == 0)\n            break;",
             "        connect(fd, a->ai_addr, a->ai_addrlen);   // result ignored\n        break;")],
           {"refused": "must be reported"},
           "never looks at what connect() returned"),
    Mutant("hardcoded-ip", "http_get.cc",
           [("getaddrinfo(host, port, &hints, &addresses)",
             'getaddrinfo("127.0.0.1", port, &hints, &addresses)')],
           {"uses_host_argument": "exit status"},
           "connects to 127.0.0.1 whatever host it is given"),
    Mutant("numbers-only", "http_get.cc",
           [("    hints.ai_socktype = SOCK_STREAM;\n",
             "    hints.ai_socktype = SOCK_STREAM;\n    hints.ai_flags = AI_NUMERICHOST;   // like inet_addr: no names\n")],
           {"resolves_names": "exit status"},
           "reads only dotted numbers, like inet_addr()"),
    Mutant("puts-output", "http_get.cc",
           [('        if (!write_all(STDOUT_FILENO, buffer, static_cast<size_t>(received)))\n            die("write");',
             '        buffer[received < 4096 ? received : 4095] = \'\\0\';   // as if a reply were a C string\n        puts(buffer);')],
           {"small": "not the server's reply"},
           "prints each piece with puts(), which adds a newline (and loses bytes)"),
    Mutant("ignores-short-send", "http_get.cc",
           [("    if (!write_all(fd, request.data(), request.size()))\n        die(\"send\");\n",
             "    if (send(fd, request.data(), request.size(), 0) < 0)   // the count is ignored\n"
             "        die(\"send\");\n")],
           {"short_io": "never sent the other"},
           "checks send() for an error but not for a short count"),
    Mutant("eintr-is-an-error", "http_get.cc",
           [("        if (received < 0 && errno == EINTR)\n            continue;\n", "")],
           {"short_io": "EINTR"},
           "dies when recv() is interrupted by a signal"),
    Mutant("first-address-only", "http_get.cc",
           [("        if (connect(fd, a->ai_addr, a->ai_addrlen) == 0)\n            break;\n",
             "        if (connect(fd, a->ai_addr, a->ai_addrlen) == 0 || true)   // only the first\n"
             "            break;\n")],
           {"every_address": "try the next one"},
           "connects only to the first address getaddrinfo() returns"),
    Mutant("never-exits", "http_get.cc",
           [("        if (received == 0)\n            break;                       // end of stream: the server closed\n",
             "        if (received == 0)\n            continue;   // as if more might come\n")],
           {"small": "did not exit"},   # (the later checks are held back behind it: see test_one_cause)
           "keeps calling recv() after it returned 0"),
    Mutant("no-usage", "http_get.cc",
           [("if (argc < 3 || argc > 4) {", "if (argc < 1) {")],
           {"usage": "how to use it"},
           "never checks its arguments"),
]


def mutants_for(lesson: str) -> list[Mutant]:
    """The known-bad programs of the lesson (course.toml names this module for it)."""
    return MUTANTS
