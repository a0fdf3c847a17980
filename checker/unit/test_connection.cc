// Unit tests for the connection state machine of the event-loop servers
// (common/wdb_connection): requests arriving in any pieces, replies
// held back while too much output is waiting, and the end of a connection.
//
// Connection does no I/O, so these tests hand it bytes directly and take its
// output as a socket would. The table behind it (wdb_store) is one global
// table, as in the servers: every session below deletes what it stores.
#include "common/wdb_connection.h"
#include "common/wdb_protocol.h"

#include <catch2/catch.hpp>

#include <algorithm>
#include <string>
#include <vector>

namespace {

// Takes up to `limit` bytes of c's output, as a socket with that much room would.
std::string drain(Connection& c, std::size_t limit = SIZE_MAX) {
    std::string_view unsent = c.unsent_output();
    std::string taken(unsent.substr(0, std::min(limit, unsent.size())));
    c.sent(taken.size());
    return taken;
}

// All the replies for input, handed over `piece` bytes at a time (0: at once),
// with the output drained after every piece, then the end of input.
std::string serve(const std::string& input, std::size_t piece = 0) {
    Connection c(-1);
    std::string replies;
    std::size_t step = piece == 0 ? std::max<std::size_t>(input.size(), 1) : piece;
    for (std::size_t at = 0; at < input.size(); at += step) {
        std::size_t n = std::min(step, input.size() - at);
        c.received(input.data() + at, n);
        c.run_requests();
        replies += drain(c);
    }
    c.end_of_input();
    c.run_requests();
    replies += drain(c);
    CHECK(c.finished());
    return replies;
}

const std::string session =
    "set a 5 0 3\r\nabc\r\n"
    "set b 3\nxyz\n"
    "set c 9 0 0 noreply\r\n\r\n"
    "get a b c missing\r\n"
    "exch a b\r\n"
    "get a b\n"
    "bogus\r\n"
    "set " + std::string(251, 'k') + " 0 0 3\r\nabc\r\n"
    "set k 0 0 3\r\nabcdef\r\n"
    "set k 0 0 2000000\r\n" + std::string(2000000, 'v') + "\r\n"
    + std::string(MAX_LINE + 10, 'L') + "\r\n"
    "delete a\r\n"
    "delete a\r\n"
    "delete b noreply\r\n"
    "delete c noreply\r\n"
    "get a b c\r\n";

const std::string replies =
    "STORED\r\n"
    "STORED\r\n"
    "VALUE a 5 3\r\nabc\r\nVALUE b 0 3\r\nxyz\r\nVALUE c 9 0\r\n\r\nEND\r\n"
    "EXCHANGED\r\n"
    "VALUE a 0 3\r\nxyz\r\nVALUE b 5 3\r\nabc\r\nEND\r\n"
    "ERROR\r\n"
    "CLIENT_ERROR key longer than 250 bytes\r\n"
    "CLIENT_ERROR bad data chunk\r\n"
    "SERVER_ERROR object too large for cache\r\n"
    "CLIENT_ERROR line too long\r\n"
    "DELETED\r\n"
    "NOT_FOUND\r\n"
    "END\r\n";

}  // namespace

TEST_CASE("a connection answers a whole session that arrives in one piece", "[connection]") {
    CHECK(serve(session) == replies);
}

TEST_CASE("a connection answers the same whatever the pieces the bytes arrive in",
          "[connection]") {
    for (std::size_t piece : {1, 2, 3, 7, 100, 4096, 65536, 1000003}) {
        INFO("piece " << piece);
        CHECK(serve(session, piece) == replies);
    }
}

TEST_CASE("a short session split at every byte gives the same replies", "[connection]") {
    const std::string input = "set s 2\r\nhi\r\nget s\r\nset t 0 0 1\nx\nexch s t\r\n"
                              "get s t\r\ndelete s\r\ndelete t\r\n";
    const std::string expected = "STORED\r\nVALUE s 0 2\r\nhi\r\nEND\r\nSTORED\r\nEXCHANGED\r\n"
                                 "VALUE s 0 1\r\nx\r\nVALUE t 0 2\r\nhi\r\nEND\r\n"
                                 "DELETED\r\nDELETED\r\n";
    for (std::size_t split = 0; split <= input.size(); ++split) {
        INFO("split at byte " << split);
        Connection c(-1);
        c.received(input.data(), split);
        c.run_requests();
        std::string got = drain(c);
        c.received(input.data() + split, input.size() - split);
        c.run_requests();
        got += drain(c);
        CHECK(got == expected);
    }
}

TEST_CASE("a connection answers nothing for half a request, and keeps it", "[connection]") {
    Connection c(-1);
    std::string half = "set h 0 0 10\r\nhell";
    c.received(half.data(), half.size());
    c.run_requests();
    CHECK_FALSE(c.has_output());
    CHECK(c.wants_input());
    std::string rest = "o worl\r\nget h\r\ndelete h\r\n";
    c.received(rest.data(), rest.size());
    c.run_requests();
    CHECK(drain(c) == "STORED\r\nVALUE h 0 10\r\nhello worl\r\nEND\r\nDELETED\r\n");
}

TEST_CASE("output is handed out in pieces and arrives whole", "[connection]") {
    const std::string value(300000, 'p');
    Connection c(-1);
    std::string input = "set p 0 0 300000\r\n" + value + "\r\nget p p\r\ndelete p\r\n";
    c.received(input.data(), input.size());
    c.run_requests();
    std::string got;
    while (c.has_output())
        got += drain(c, 4093);   // a socket that takes a little at a time
    CHECK(got == "STORED\r\nVALUE p 0 300000\r\n" + value + "\r\nVALUE p 0 300000\r\n" + value +
                     "\r\nEND\r\nDELETED\r\n");
}

TEST_CASE("a client that asks and never reads is not read from past MAX_PENDING_OUTPUT",
          "[connection]") {
    Connection c(-1);
    std::string set = "set big 0 0 1048576\r\n" + std::string(MAX_VALUE, 'b') + "\r\n";
    c.received(set.data(), set.size());
    c.run_requests();
    CHECK(drain(c) == "STORED\r\n");
    std::string gets;
    for (int i = 0; i < 32; ++i)
        gets += "get big\r\n";
    c.received(gets.data(), gets.size());
    c.run_requests();
    const std::size_t one_reply = std::string("VALUE big 0 1048576\r\n\r\nEND\r\n").size() + MAX_VALUE;
    // It stopped once the output passed the limit: bounded memory, the rest still queued.
    CHECK(c.unsent_output().size() >= MAX_PENDING_OUTPUT);
    CHECK(c.unsent_output().size() < MAX_PENDING_OUTPUT + one_reply);
    CHECK_FALSE(c.wants_input());
    c.end_of_input();
    CHECK_FALSE(c.finished());   // requests are still waiting to run
    std::size_t total = 0;
    while (c.has_output()) {
        total += drain(c, 65536).size();
        c.run_requests();        // what the servers do after each write
    }
    CHECK(total == 32 * one_reply);
    CHECK(c.finished());
    std::string cleanup = "delete big\r\n";
    Connection d(-1);
    d.received(cleanup.data(), cleanup.size());
    d.run_requests();
    CHECK(drain(d) == "DELETED\r\n");
}

TEST_CASE("a connection finishes only when its client is done and every reply is out",
          "[connection]") {
    Connection c(-1);
    CHECK_FALSE(c.finished());
    std::string input = "get nothing\r\n";
    c.received(input.data(), input.size());
    c.end_of_input();
    c.run_requests();
    CHECK_FALSE(c.wants_input());
    CHECK_FALSE(c.finished());   // END\r\n is not written yet
    CHECK(drain(c) == "END\r\n");
    CHECK(c.finished());
}

TEST_CASE("a half request left when the client hangs up is dropped, unanswered",
          "[connection]") {
    const std::vector<std::string> halves = {"get a", "set k 5\r\nab", "set k 0 0 9000000\r\nxx",
                                             std::string(3 * MAX_LINE, 'l')};
    for (const std::string& input : halves) {
        INFO(input.substr(0, 20));
        CHECK(serve(input).empty());
    }
}

TEST_CASE("a command line longer than MAX_LINE is never held whole", "[connection]") {
    Connection c(-1);
    const std::string chunk(16384, 'L');
    for (int i = 0; i < 200; ++i) {   // 3 MiB without a line end
        c.received(chunk.data(), chunk.size());
        c.run_requests();
        CHECK(c.buffered_input() <= MAX_LINE + 1);
        CHECK(c.unsent_output() == "");
    }
    std::string end = "\r\nget z\r\n";
    c.received(end.data(), end.size());
    c.run_requests();
    CHECK(drain(c) == "CLIENT_ERROR line too long\r\nEND\r\n");
}

TEST_CASE("a noreply set or delete gets nothing back, even when it is refused", "[connection]") {
    // As in memcached: the client reads no reply, so an error line would be
    // taken for the answer to its next request.
    const std::string input =
        "set q 0 0 2000000 noreply\r\n" + std::string(2000000, 'v') + "\r\n"
        "set q x 0 1 noreply\r\nv\r\n"
        "set " + std::string(251, 'k') + " 0 0 1 noreply\r\nv\r\n"
        "set q 0 0 1 noreply\r\nvvv\r\n"
        "delete q\x01 noreply\r\n"
        "set q 0 0 2 noreply\r\nok\r\n"
        "get q\r\n"
        "delete q noreply\r\n"
        "get q\r\n";
    for (std::size_t piece : {0, 1, 7, 4096}) {
        INFO("piece " << piece);
        CHECK(serve(input, piece) == "VALUE q 0 2\r\nok\r\nEND\r\nEND\r\n");
    }
}

TEST_CASE("a get of 1,000 copies of a 1 MiB value never holds more than the output limit "
          "and one value", "[connection]") {
    // One 2 KB request line asks for a gigabyte. The connection runs the get
    // a key at a time and stops at MAX_PENDING_OUTPUT until the socket has
    // taken some: its output stays bounded, and the get goes on where it stopped.
    Connection c(-1);
    const std::string set = "set big 0 0 1048576\r\n" + std::string(MAX_VALUE, 'b') + "\r\n";
    c.received(set.data(), set.size());
    c.run_requests();
    REQUIRE(drain(c) == "STORED\r\n");
    std::string get = "get";
    for (int i = 0; i < 1000; ++i)
        get += " big";
    get += "\r\ndelete big\r\n";   // answered after the get's END, in order
    c.received(get.data(), get.size());
    const std::size_t one_value = std::string("VALUE big 0 1048576\r\n\r\n").size() + MAX_VALUE;
    std::size_t total = 0, most = 0;
    std::string tail;
    c.run_requests();
    while (c.has_output()) {
        most = std::max(most, c.unsent_output().size());
        CHECK_FALSE(c.finished());
        std::string taken = drain(c, 256 << 10);   // a socket that takes 256 KiB at a time
        total += taken.size();
        tail += taken;
        tail.erase(0, tail.size() > 64 ? tail.size() - 64 : 0);   // the last 64 bytes
        c.run_requests();                          // what the servers do after each write
    }
    CHECK(most <= MAX_PENDING_OUTPUT + one_value);
    CHECK(total == 1000 * one_value + std::string("END\r\nDELETED\r\n").size());
    CHECK(tail.ends_with("\r\nEND\r\nDELETED\r\n"));
    CHECK(c.buffered_input() == 0);
}
