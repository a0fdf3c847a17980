"""Mutants of lesson 19's UDP lookup service and multicast programs: a client without an id
check, retries without backoff, a server answering a fixed address, an ICMP error ignored, a
group never left; and the wrong programs students write (a short buffer without MSG_TRUNC,
a client that never gives up, a duplicate counted twice, a leave that still hears, an empty
datagram taken for a close, a first wait already doubled, a give-up that exits at once, -r
read as the number of tries)."""
from . import Mutant

RECVFROM = """    length = recvfrom(fd, buffer, sizeof buffer, MSG_TRUNC,
                      reinterpret_cast<sockaddr*>(&sender), &sender_length);
"""
SENDTO_SENDER = """    if (sendto(fd, reply.data(), reply.size(), 0, reinterpret_cast<sockaddr*>(&sender),
               sender_length) < 0)
"""
TCP_BIND = """    sockaddr_in address = loopback(port);
    if (bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) < 0)
        die("bind TCP");
"""
FIND_BY_ID = """    for (Request& request : requests)
        if (request.id == id && !request.done)
            return &request;
"""
BACKOFF = """    request.timeout_ms = request.tries == 0 ? options.timeout_ms : 2 * request.timeout_ms;
"""
GIVE_UP = """    if (request.tries == 1 + options.retries) {
"""
REFUSED = """        if (errno == ECONNREFUSED) {
            char host[INET_ADDRSTRLEN];
"""
CONNECT = """    if (options.connected &&
        connect(fd, reinterpret_cast<sockaddr*>(&options.server), sizeof options.server) < 0)
"""
MULTICAST_IF = """    if (setsockopt(fd, IPPROTO_IP, IP_MULTICAST_IF, &loopback, sizeof loopback) < 0)
        die("setsockopt IP_MULTICAST_IF");
"""
DROP = """            if (setsockopt(fd, IPPROTO_IP, IP_DROP_MEMBERSHIP, &group, sizeof group) < 0)
                die("setsockopt IP_DROP_MEMBERSHIP");
"""
MULTICAST_ALL = """    int zero = 0;
    if (setsockopt(fd, IPPROTO_IP, IP_MULTICAST_ALL, &zero, sizeof zero) < 0)
        die("setsockopt IP_MULTICAST_ALL");
"""

MUTANTS = [
    Mutant("no-id-check", "udp_lookup.cc",
           [(FIND_BY_ID, """    for (Request& request : requests)   // answers come back in order, don't they?
        if (!request.done)
            return &request;
    (void)id;
""")],
           {"stale_reply_ignored": "stale answer", "lossy_relay": "another key's answer"},
           "takes any answer for the oldest waiting request, whatever its id: a stale or reordered "
           "answer is taken for the wrong key"),
    Mutant("no-backoff", "udp_lookup.cc",
           [(BACKOFF, "    request.timeout_ms = options.timeout_ms;\n")],
           {"backoff": "did not back off"},
           "resends at a fixed pace: the timeout never grows"),
    Mutant("fixed-reply-address", "udp_server.cc",
           [(SENDTO_SENDER, """    static sockaddr_in first_client = sender;   // the client we answer
    if (sendto(fd, reply.data(), reply.size(), 0, reinterpret_cast<sockaddr*>(&first_client),
               sizeof first_client) < 0)
""")],
           {"reply_to_sender": "did not come back to the socket that asked"},
           "answers every request at the address of the first client, not recvfrom()'s"),
    Mutant("tcp-on-another-port", "udp_server.cc",
           [(TCP_BIND, TCP_BIND.replace("loopback(port)", "loopback(0)"))],
           {"same_port_tcp_udp": "not both served"},
           "binds the TCP socket to port 0: it gets a port number of its own"),
    Mutant("ignores-econnrefused", "udp_lookup.cc",
           [(REFUSED, "        if (false) {\n            char host[INET_ADDRSTRLEN];\n")],
           {"connected_refused": "did not stop at the ICMP port unreachable"},
           "takes ECONNREFUSED for a passing error and waits out its retries"),
    Mutant("always-connected", "udp_lookup.cc",
           [(CONNECT, "    if (connect(fd, reinterpret_cast<sockaddr*>(&options.server), "
                      "sizeof options.server) < 0)\n")],
           {"unconnected_never_learns": "still learned of the refusal"},
           "connects even with --unconnected"),
    Mutant("no-multicast-if", "mcast_send.cc",
           [(MULTICAST_IF, "    (void)loopback;\n")],
           {"multicast_three_receivers": "Network is unreachable"},
           "sends to the group without IP_MULTICAST_IF: no route with lo alone"),
    Mutant("never-leaves", "mcast_recv.cc",
           [(DROP, "")],
           {"multicast_leave": "still got the group's datagrams after leaving"},
           "says it left but never drops its membership"),
]

STUDENT = [
    Mutant("short-buffer-no-msg-trunc", "udp_server.cc",
           [(RECVFROM, """    length = recvfrom(fd, buffer, sizeof buffer, 0,
                      reinterpret_cast<sockaddr*>(&sender), &sender_length);
""")],
           {"truncation": "not reported with its real length"},
           "receives into the 512-byte buffer without MSG_TRUNC: a longer request looks 512 bytes "
           "long and is answered as if it were whole", student=True),
    Mutant("never-gives-up", "udp_lookup.cc",
           [(GIVE_UP, "    if (false) {   // keep trying: the answer will come\n")],
           {"gives_up": "never gave up"},
           "resends for ever: no limit on the tries", student=True),
    Mutant("counts-duplicate-twice", "udp_lookup.cc",
           [(FIND_BY_ID, """    for (Request& request : requests)
        if (request.id == id)   // the id is ours: it is an answer
            return &request;
""")],
           {"duplicate_counted_once": "counted twice", "lossy_relay": "printed twice"},
           "matches the id but not whether the request is already answered: a duplicate is "
           "printed again", student=True),
    Mutant("leave-with-multicast-all", "mcast_recv.cc",
           [(MULTICAST_ALL, "")],
           {"multicast_leave": "still got the group's datagrams after leaving"},
           "drops its membership but leaves IP_MULTICAST_ALL at 1: while the other receivers are "
           "members, it still gets the group's datagrams", student=True),
    Mutant("join-any-interface", "mcast_recv.cc",
           [("    request.imr_interface.s_addr = htonl(INADDR_LOOPBACK);\n",
             "    request.imr_interface.s_addr = htonl(INADDR_ANY);   // let the kernel choose\n")],
           {"multicast_three_receivers": "did not all say"},
           "joins on INADDR_ANY: with lo alone there is no route to choose by, and the join fails "
           "with ENODEV", student=True),
    Mutant("new-id-per-retry", "udp_lookup.cc",
           [(BACKOFF, BACKOFF + "    if (request.tries > 0)\n        request.id += 1000;   // a fresh id for a fresh try\n")],
           {"backoff": "a resend carried a new id"},
           "gives each resend a new id: an answer to an earlier try, arriving late, no longer counts",
           student=True),
    Mutant("get-parse-off-by-one", "udp_server.cc",
           [("    return head + lookup(table, rest.substr(5));\n",
             "    return head + lookup(table, rest.substr(4));   // after \"GET \"\n")],
           {"answers": "did not print the three answers"},
           "cuts the key one byte early: every key starts with a space, and none is found",
           student=True),
    Mutant("empty-datagram-ends-server", "udp_server.cc",
           [("""    if (length < 0) {
        if (errno != EINTR)
            std::perror("recvfrom");
        return;
    }
""", """    if (length <= 0) {   // an error, or the client is gone
        std::perror("recvfrom");
        std::exit(1);
    }
""")],
           {"truncation": "after an empty datagram"},
           "takes a recvfrom() of 0 for the end of the conversation, as read() on TCP: an empty "
           "datagram, which anyone may send, stops the server", student=True),
    Mutant("first-wait-doubled", "udp_lookup.cc",
           [(BACKOFF + "    request.tries++;\n",
             "    request.tries++;\n"
             "    request.timeout_ms = options.timeout_ms << request.tries;   // doubles each try\n")],
           {"backoff": "the first wait must be the -t timeout itself"},
           "doubles the timeout from the first try on (counted before the shift): it waits 200, 400, "
           "800 ms for -t 100, never the timeout it was given", student=True),
    Mutant("exits-at-first-give-up", "udp_lookup.cc",
           [("        request.done = true;\n        return false;\n",
             "        std::exit(2);   // give up: exit with status 2\n")],
           {"gives_up": "not every key it gave up was named"},
           "exits with status 2 as soon as one request is given up: the other keys given up at the "
           "same moment are never named", student=True),
    Mutant("retries-off-by-one", "udp_lookup.cc",
           [(GIVE_UP, "    if (request.tries == options.retries) {   // -r 4: four tries\n")],
           {"backoff": "did not send 5 times"},
           "reads -r RETRIES as the number of tries, not of resends: a request goes out once less "
           "than asked", student=True),
]


def mutants_for(lesson: str) -> list[Mutant]:
    """The known-bad programs of the lesson (course.toml names this module for it)."""
    return MUTANTS + STUDENT
