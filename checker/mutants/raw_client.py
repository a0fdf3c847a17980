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


# ---- student programs: wrong code of the kind a student writes in place of a TODO ----------

RECV_LOOP = """    char buffer[4096];
    while (true) {
        ssize_t received = recv(fd, buffer, sizeof(buffer), 0);
        if (received < 0 && errno == EINTR)
            continue;
        if (received < 0)
            die("recv");
        if (received == 0)
            break;                       // end of stream: the server closed
        if (!write_all(STDOUT_FILENO, buffer, static_cast<size_t>(received)))
            die("write");
    }
"""

RESOLVE = """    addrinfo hints{};
    hints.ai_family = AF_UNSPEC;       // IPv4 or IPv6, whichever the name has
    hints.ai_socktype = SOCK_STREAM;
    addrinfo* addresses = nullptr;
    int status = getaddrinfo(host, port, &hints, &addresses);
    if (status != 0)
        die_with(host, gai_strerror(status));
"""

ADDRESS_LOOP = """    // A name may have several addresses (localhost: ::1 and 127.0.0.1);
    // the server may listen on only one of them, so try them in turn.
    int fd = -1;
    int saved_errno = 0;
    for (addrinfo* a = addresses; a != nullptr; a = a->ai_next) {
        fd = socket(a->ai_family, a->ai_socktype, a->ai_protocol);
        if (fd < 0)
            die("socket");
        if (connect(fd, a->ai_addr, a->ai_addrlen) == 0)
            break;
        saved_errno = errno;
        close(fd);
        fd = -1;
    }
    freeaddrinfo(addresses);
    if (fd < 0) {
        errno = saved_errno;
        die("connect");
    }
    return fd;
"""

STUDENT = [
    Mutant("stops-on-short-read", "http_get.cc",
           [(RECV_LOOP, """    char buffer[4096];
    while (true) {
        ssize_t received = recv(fd, buffer, sizeof(buffer), 0);
        if (received < 0) {
            if (errno == EINTR)
                continue;
            die("recv");
        }
        if (!write_all(STDOUT_FILENO, buffer, static_cast<size_t>(received)))
            die("write");
        // Less than a full buffer: the server has nothing more to send.
        if (received < static_cast<ssize_t>(sizeof(buffer)))
            break;
    }
""")],
           {"dribble": "call it until it returns 0"},
           "takes a recv() that fills less than the buffer for the end of the reply", student=True),
    Mutant("c-string-output", "http_get.cc",
           [(RECV_LOOP, """    char buffer[4096];
    ssize_t received;
    while ((received = recv(fd, buffer, sizeof(buffer) - 1, 0)) != 0) {
        if (received < 0) {
            if (errno == EINTR)
                continue;
            die("recv");
        }
        buffer[received] = '\\0';         // sizeof - 1 above keeps room for it
        printf("%s", buffer);
    }
    fflush(stdout);
""")],
           {"binary": "not a C string"},
           "terminates each piece with a NUL and prints it with printf(\"%s\"): zero bytes cut it short",
           student=True),
    Mutant("error-ends-the-loop", "http_get.cc",
           [(RECV_LOOP, """    char buffer[4096];
    ssize_t received;
    while ((received = recv(fd, buffer, sizeof(buffer), 0)) > 0)
        fwrite(buffer, 1, static_cast<size_t>(received), stdout);
""")],
           {"short_io": "ended its loop on a recv() that failed with EINTR"},
           "the classic `while ((n = recv(...)) > 0)`: an interrupted recv() (EINTR) ends the reply, "
           "silently, with exit status 0", student=True),
    Mutant("status-is-checked", "http_get.cc",
           [(RECV_LOOP, """    char buffer[4096];
    bool status_checked = false;
    while (true) {
        ssize_t received = recv(fd, buffer, sizeof(buffer), 0);
        if (received < 0 && errno == EINTR)
            continue;
        if (received < 0)
            die("recv");
        if (received == 0)
            break;
        // The status line comes first: anything but 200 is an error.
        if (!status_checked && std::strncmp(buffer, "HTTP/1.0 200", 12) != 0)
            die_with("http_get", "the server did not answer 200 OK");
        status_checked = true;
        if (!write_all(STDOUT_FILENO, buffer, static_cast<size_t>(received)))
            die("write");
    }
""")],
           {"not_found": "a 404 reply is still the server's reply"},
           "exits 1 without printing anything when the status is not 200", student=True),
    Mutant("sizeof-request", "http_get.cc",
           [("""    if (!write_all(fd, request.data(), request.size()))
        die("send");
""", """    const char* data = request.c_str();
    size_t left = sizeof(request);       // how many bytes to send
    while (left > 0) {
        ssize_t sent = send(fd, data, left, 0);
        if (sent < 0 && errno == EINTR)
            continue;
        if (sent < 0)
            die("send");
        data += sent;
        left -= static_cast<size_t>(sent);
    }
""")],
           {"small": "a reply that never came"},
           "sends sizeof(request) bytes, the size of the std::string object (32), not of its text: "
           "the request never ends and the server waits", student=True),
    Mutant("freeaddrinfo-too-early", "http_get.cc",
           [(RESOLVE + "\n" + ADDRESS_LOOP, RESOLVE + """    freeaddrinfo(addresses);            // done with getaddrinfo(): free its list now

    for (addrinfo* a = addresses; a != nullptr; a = a->ai_next) {
        int fd = socket(a->ai_family, a->ai_socktype, a->ai_protocol);
        if (fd < 0)
            die("socket");
        if (connect(fd, a->ai_addr, a->ai_addrlen) == 0)
            return fd;
        close(fd);
    }
    die("connect");
""")],
           {"asan_clean": "freeaddrinfo() frees the whole list"},
           "frees the address list right after getaddrinfo(), then walks it", student=True),
    Mutant("one-socket-for-every-address", "http_get.cc",
           [(ADDRESS_LOOP, """    // One socket, tried against each address in turn until one answers.
    int fd = socket(addresses->ai_family, addresses->ai_socktype, addresses->ai_protocol);
    if (fd < 0)
        die("socket");
    addrinfo* a = addresses;
    while (a != nullptr && connect(fd, a->ai_addr, a->ai_addrlen) < 0)
        a = a->ai_next;                  // refused: try the next address
    freeaddrinfo(addresses);
    if (a == nullptr)
        die("connect");
    return fd;
""")],
           {"ipv6": "Make a new socket for each address"},
           "makes one socket, with the first address's family, and connects it to each address in turn",
           student=True),
    Mutant("starter-ipv4-socket", "http_get.cc",
           [(ADDRESS_LOOP, """    for (addrinfo* a = addresses; a != nullptr; a = a->ai_next) {
        int fd = socket(AF_INET, SOCK_STREAM, 0);   // as in the starter
        if (fd < 0)
            die("socket");
        if (connect(fd, a->ai_addr, a->ai_addrlen) == 0) {
            freeaddrinfo(addresses);
            return fd;
        }
        close(fd);
    }
    die("connect");
""")],
           {"ipv6": "not AF_INET"},
           "keeps the starter's socket(AF_INET, …) under a getaddrinfo() loop: IPv6 addresses fail",
           student=True),
]


def mutants_for(lesson: str) -> list[Mutant]:
    """The known-bad programs of the lesson (course.toml names this module for it)."""
    return MUTANTS + STUDENT
