// Unit tests for WeensyDB's shared code in common: the command-line parser
// (wdb_protocol), the request parser fed bytes directly (wdb_parser), whole
// requests off a stream through it (wdb_request, the threaded servers' way)
// and the hash table (wdb_table). The event-loop servers' way through the
// same parser is in test_connection.cc.
//
// Streams are socketpairs fed by a writer thread, often one byte per read(),
// so requests split over many reads are covered. The writer never asserts:
// every check runs in the main thread.
#include "common/wdb_parser.h"
#include "common/wdb_protocol.h"
#include "common/wdb_request.h"
#include "common/wdb_table.h"

#include <catch2/catch.hpp>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <climits>
#include <cstdlib>
#include <new>
#include <stdexcept>
#include <string>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <thread>
#include <unistd.h>
#include <vector>

// ---- the largest allocation, to show that big blocks are never held ---------

// Every plain new and delete of this program is replaced (the aligned ones,
// unused here, are not), so that all allocations go through allocate().
namespace {
thread_local bool tracking = false;
thread_local std::size_t largest = 0;

void* allocate(std::size_t size) noexcept {
    if (tracking && size > largest)
        largest = size;
    return std::malloc(size == 0 ? 1 : size);
}
}  // namespace

// noinline: inlined into callers, free() would look mismatched with new to g++.
#define REPLACED __attribute__((noinline))
REPLACED void* operator new(std::size_t size) {
    if (void* p = allocate(size))
        return p;
    throw std::bad_alloc();
}
REPLACED void* operator new[](std::size_t size) {
    if (void* p = allocate(size))
        return p;
    throw std::bad_alloc();
}
REPLACED void* operator new(std::size_t size, const std::nothrow_t&) noexcept {
    return allocate(size);
}
REPLACED void* operator new[](std::size_t size, const std::nothrow_t&) noexcept {
    return allocate(size);
}
REPLACED void operator delete(void* p) noexcept { std::free(p); }
REPLACED void operator delete[](void* p) noexcept { std::free(p); }
REPLACED void operator delete(void* p, std::size_t) noexcept { std::free(p); }
REPLACED void operator delete[](void* p, std::size_t) noexcept { std::free(p); }
REPLACED void operator delete(void* p, const std::nothrow_t&) noexcept { std::free(p); }
REPLACED void operator delete[](void* p, const std::nothrow_t&) noexcept { std::free(p); }
#undef REPLACED

namespace {

// Records the largest single allocation the calling thread makes while it lives.
struct AllocationWatch {
    AllocationWatch() { largest = 0; tracking = true; }
    ~AllocationWatch() { tracking = false; }
    std::size_t largest_so_far() const { return largest; }
};

// ---- a stream with a writer thread ------------------------------------------

// Writes bytes into one end of a socketpair from a thread, then closes it; the
// test reads the other end (fd()). piece == 0: as few send()s as possible.
// piece > 0: piece bytes at a time, each only once the reader has taken the
// last, so every read() returns at most piece bytes.
class Feed {
public:
    explicit Feed(std::string bytes, std::size_t piece = 0)
        : bytes_(std::move(bytes)), piece_(piece) {
        if (socketpair(AF_UNIX, SOCK_STREAM, 0, fds_) != 0)
            throw std::runtime_error("socketpair failed");
        writer_ = std::thread([this] { run(); });
    }
    Feed(const Feed&) = delete;
    Feed& operator=(const Feed&) = delete;

    ~Feed() {
        stop_ = true;
        char sink[65536];   // drain, so a writer blocked in send() finishes
        while (read(fds_[1], sink, sizeof(sink)) > 0) {
        }
        writer_.join();
        close(fds_[1]);
    }

    int fd() const { return fds_[1]; }

private:
    void run() {
        std::size_t sent = 0;
        while (sent < bytes_.size() && !stop_) {
            std::size_t left = bytes_.size() - sent;
            std::size_t n = piece_ == 0 ? left : std::min(piece_, left);
            ssize_t w = send(fds_[0], bytes_.data() + sent, n, MSG_NOSIGNAL);
            if (w < 0) {
                if (errno == EINTR)
                    continue;
                break;
            }
            sent += static_cast<std::size_t>(w);
            if (piece_ > 0)
                wait_until_drained();
        }
        close(fds_[0]);
    }

    void wait_until_drained() {
        int queued = 0;
        while (!stop_ && ioctl(fds_[1], FIONREAD, &queued) == 0 && queued > 0)
            std::this_thread::yield();
    }

    std::string bytes_;
    std::size_t piece_;
    int fds_[2] = {-1, -1};
    std::atomic<bool> stop_{false};
    std::thread writer_;
};

// Every request on the stream, in order, until read_request says it ended.
std::vector<Request> read_all(const std::string& input, std::size_t piece = 0) {
    Feed feed(input, piece);
    RequestReader in(feed.fd());
    std::vector<Request> requests;
    Request request;
    while (read_request(in, request))
        requests.push_back(request);
    return requests;
}

// ---- a miniature server, to check whole sessions reply by reply -------------

// What every lesson's execute() does, single-threaded.
class MiniDB {
public:
    std::string execute(const Request& request) {
        std::string reply;
        switch (request.command) {
        case Command::get:
            for (const std::string& key : request.keys)
                if (Item* item = find_item(bucket(key), key))
                    append_value(reply, key, item->flags, item->value);
            if (request.last_part)
                reply += "END\r\n";
            break;
        case Command::set:
            store_item(bucket(request.keys[0]), request.keys[0], request.flags, request.data);
            reply += "STORED\r\n";
            break;
        case Command::del:
            reply += erase_item(bucket(request.keys[0]), request.keys[0]) ? "DELETED\r\n"
                                                                          : "NOT_FOUND\r\n";
            break;
        case Command::exch: {
            const std::string& key1 = request.keys[0];
            const std::string& key2 = request.keys[1];
            reply += exchange_items(bucket(key1), key1, bucket(key2), key2) ? "EXCHANGED\r\n"
                                                                            : "NOT_FOUND\r\n";
            break;
        }
        case Command::invalid:
            reply += request.error;
            break;
        }
        return request.noreply ? std::string() : reply;
    }

private:
    Bucket& bucket(const std::string& key) { return table_[bucket_of(key)]; }
    std::vector<Bucket> table_ = std::vector<Bucket>(NBUCKETS);
};

// All the replies a fresh server writes for this input, fed piece bytes at a time.
std::string serve(const std::string& input, std::size_t piece = 0) {
    MiniDB db;
    Feed feed(input, piece);
    RequestReader in(feed.fd());
    std::string replies;
    Request request;
    while (read_request(in, request))
        replies += db.execute(request);
    return replies;
}

// The same input with bare "\n" line ends.
std::string bare_newlines(std::string text) {
    std::string out;
    for (std::size_t i = 0; i < text.size(); ++i)
        if (!(text[i] == '\r' && i + 1 < text.size() && text[i + 1] == '\n'))
            out += text[i];
    return out;
}

}  // namespace

// ---- parse_request_line -----------------------------------------------------

TEST_CASE("parse_request_line reads the long form of set", "[protocol]") {
    Request r = parse_request_line("set greeting 42 0 5");
    CHECK(r.command == Command::set);
    CHECK(r.keys == std::vector<std::string>{"greeting"});
    CHECK(r.flags == 42);
    CHECK(r.bytes == 5);
    CHECK_FALSE(r.noreply);
    CHECK(r.error.empty());
    CHECK(!r.discard_block);
}

TEST_CASE("parse_request_line reads the short form of set with zero flags", "[protocol]") {
    Request r = parse_request_line("set greeting 5");
    CHECK(r.command == Command::set);
    CHECK(r.keys == std::vector<std::string>{"greeting"});
    CHECK(r.flags == 0);
    CHECK(r.bytes == 5);
    CHECK_FALSE(r.noreply);
}

TEST_CASE("parse_request_line reads noreply on set and delete", "[protocol]") {
    Request set = parse_request_line("set k 7 0 1 noreply");
    CHECK(set.command == Command::set);
    CHECK(set.noreply);
    CHECK(set.flags == 7);
    CHECK(set.bytes == 1);

    Request del = parse_request_line("delete k noreply");
    CHECK(del.command == Command::del);
    CHECK(del.keys == std::vector<std::string>{"k"});
    CHECK(del.noreply);

    Request plain = parse_request_line("delete k");
    CHECK(plain.command == Command::del);
    CHECK_FALSE(plain.noreply);
}

TEST_CASE("parse_request_line keeps noreply on a set or delete it refuses", "[protocol]") {
    // noreply in its place means no reply at all, errors included, as in memcached.
    for (const char* line :
         {"set k x 0 3 noreply", "set k 0 0 2000000 noreply", "set k 0 0 abc noreply",
          "set k\x01 0 0 3 noreply", "delete k\x01 noreply"}) {
        INFO("line: \"" << line << "\"");
        Request r = parse_request_line(line);
        CHECK(r.command == Command::invalid);
        CHECK_FALSE(r.error.empty());
        CHECK(r.noreply);
    }
    CHECK(parse_request_line("set " + std::string(300, 'k') + " 0 0 3 noreply").noreply);
    // Not in its place: not a noreply, and the error is answered.
    for (const char* line : {"set k 0 0 3 noreply extra", "set k noreply", "delete noreply k",
                             "delete k noreply x", "bogus noreply", "get k noreply",
                             "exch a noreply"}) {
        INFO("line: \"" << line << "\"");
        CHECK_FALSE(parse_request_line(line).noreply);
    }
    CHECK(parse_request_line("get k noreply").keys == std::vector<std::string>{"k", "noreply"});
}

TEST_CASE("parse_request_line reads get with one or several keys", "[protocol]") {
    CHECK(parse_request_line("get a").keys == std::vector<std::string>{"a"});
    Request r = parse_request_line("get a bb ccc a");
    CHECK(r.command == Command::get);
    CHECK(r.keys == std::vector<std::string>{"a", "bb", "ccc", "a"});
}

TEST_CASE("parse_request_line reads exch with two keys", "[protocol]") {
    Request r = parse_request_line("exch left right");
    CHECK(r.command == Command::exch);
    CHECK(r.keys == std::vector<std::string>{"left", "right"});
    CHECK(parse_request_line("exch left").error == "CLIENT_ERROR bad command line format\r\n");
    CHECK(parse_request_line("exch a b c").error == "CLIENT_ERROR bad command line format\r\n");
}

TEST_CASE("parse_request_line treats runs of spaces as one separator", "[protocol]") {
    Request get = parse_request_line("   get    a     b   ");
    CHECK(get.command == Command::get);
    CHECK(get.keys == std::vector<std::string>{"a", "b"});

    Request set = parse_request_line("set  k   1    0     3      noreply  ");
    CHECK(set.command == Command::set);
    CHECK(set.flags == 1);
    CHECK(set.bytes == 3);
    CHECK(set.noreply);
}

TEST_CASE("parse_request_line answers ERROR for unknown commands and empty lines",
          "[protocol]") {
    for (const char* line : {"", "    ", "bogus", "GET k", "gets k", "get"}) {
        INFO("line: \"" << line << "\"");
        Request r = parse_request_line(line);
        CHECK(r.command == Command::invalid);
        CHECK(r.error == "ERROR\r\n");
        CHECK(!r.discard_block);
    }
}

TEST_CASE("parse_request_line accepts 250-byte keys and refuses 251-byte ones",
          "[protocol]") {
    std::string k250(250, 'k'), k251(251, 'k');
    CHECK(parse_request_line("get " + k250).keys == std::vector<std::string>{k250});
    CHECK(parse_request_line("get " + k251).error ==
          "CLIENT_ERROR key longer than 250 bytes\r\n");
    CHECK(parse_request_line("get ok " + k251).error ==
          "CLIENT_ERROR key longer than 250 bytes\r\n");
    CHECK(parse_request_line("delete " + k251).error ==
          "CLIENT_ERROR key longer than 250 bytes\r\n");
    CHECK(parse_request_line("exch ok " + k251).error ==
          "CLIENT_ERROR key longer than 250 bytes\r\n");

    Request set = parse_request_line("set " + k251 + " 0 0 10");
    CHECK(set.error == "CLIENT_ERROR key longer than 250 bytes\r\n");
    CHECK(set.discard_block);
    CHECK(set.bytes + 2 == 12);   // its data block and \r\n are thrown away
}

TEST_CASE("parse_request_line refuses keys with control characters", "[protocol]") {
    const char* reply = "CLIENT_ERROR bad key (control characters)\r\n";
    CHECK(parse_request_line(std::string("get a\x01z")).error == reply);
    CHECK(parse_request_line("get a\tb").error == reply);
    CHECK(parse_request_line("delete a\x7f").error == reply);
    CHECK(parse_request_line("exch a b\rc").error == reply);
    Request set = parse_request_line("set a\x1b 0 0 3");
    CHECK(set.error == reply);
    CHECK(set.discard_block);
    CHECK(set.bytes + 2 == 5);
}

TEST_CASE("parse_request_line refuses bad sizes without discarding anything",
          "[protocol]") {
    for (const char* line :
         {"set k 0 0 abc", "set k 0 0 -1", "set k 0 0 3x", "set k 0 0 0x3", "set k 0 0 +3",
          "set k abc", "set k -1", "set k 3x", "set k 2147483647", "set k 0 0 2147483648",
          "set k 0 0 99999999999999999999999", "set k 0 0 18446744073709551616"}) {
        INFO("line: \"" << line << "\"");
        Request r = parse_request_line(line);
        CHECK(r.command == Command::invalid);
        CHECK(r.error == "CLIENT_ERROR bad command line format\r\n");
        CHECK(!r.discard_block);
    }
}

TEST_CASE("parse_request_line refuses values over 1 MiB and discards them", "[protocol]") {
    Request max = parse_request_line("set k 0 0 1048576");
    CHECK(max.command == Command::set);
    CHECK(max.bytes == MAX_VALUE);

    Request over = parse_request_line("set k 0 0 1048577");
    CHECK(over.error == "SERVER_ERROR object too large for cache\r\n");
    CHECK(over.discard_block);
    CHECK(over.bytes + 2 == 1048579);

    Request short_form = parse_request_line("set k 2000000");
    CHECK(short_form.error == "SERVER_ERROR object too large for cache\r\n");
    CHECK(short_form.discard_block);
    CHECK(short_form.bytes + 2 == 2000002);

    // The largest size read at all: its discard still fits an int.
    Request largest_size = parse_request_line("set k 0 0 2147483645");
    CHECK(largest_size.error == "SERVER_ERROR object too large for cache\r\n");
    CHECK(largest_size.discard_block);
    CHECK(largest_size.bytes + 2 == static_cast<std::size_t>(INT_MAX));
}

TEST_CASE("parse_request_line refuses bad flags and exptime and discards the block",
          "[protocol]") {
    for (const char* line : {"set k x 0 3", "set k -1 0 3", "set k 4294967296 0 3",
                             "set k 0 never 3", "set k 0 1.5 3", "set k 1x 0 3"}) {
        INFO("line: \"" << line << "\"");
        Request r = parse_request_line(line);
        CHECK(r.error == "CLIENT_ERROR bad command line format\r\n");
        CHECK(r.discard_block);
    CHECK(r.bytes + 2 == 5);
    }
    CHECK(parse_request_line("set k 4294967295 0 3").flags == 4294967295u);
    CHECK(parse_request_line("set k 0 -1 3").command == Command::set);   // memcached allows it
}

TEST_CASE("parse_request_line refuses set and delete with the wrong number of words",
          "[protocol]") {
    for (const char* line : {"set", "set k", "set k 0 3", "set k 0 0 3 noreply extra",
                             "set k 0 0 3 NOREPLY", "delete", "delete k now", "delete k noreply x"}) {
        INFO("line: \"" << line << "\"");
        Request r = parse_request_line(line);
        CHECK(r.command == Command::invalid);
        CHECK(r.error == "CLIENT_ERROR bad command line format\r\n");
    }
}

TEST_CASE("a 300-byte key is refused whole, never copied into a fixed buffer",
          "[protocol]") {
    // The source text's sscanf("%s") into char key[251] overflowed here.
    std::string key(300, 'x');
    key[299] = 'y';
    CHECK(parse_request_line("get " + key).error ==
          "CLIENT_ERROR key longer than 250 bytes\r\n");
    Request set = parse_request_line("set " + key + " 0 0 1");
    CHECK(set.error == "CLIENT_ERROR key longer than 250 bytes\r\n");
    CHECK(set.discard_block);
    CHECK(set.bytes + 2 == 3);
    // A key far longer than any buffer, up to the longest line there can be.
    std::string huge(MAX_LINE - 4, 'z');
    CHECK(parse_request_line("get " + huge).error ==
          "CLIENT_ERROR key longer than 250 bytes\r\n");
}

TEST_CASE("valid_key allows 1..250 printable bytes", "[protocol]") {
    CHECK(valid_key("a"));
    CHECK(valid_key(std::string(250, 'a')));
    CHECK(valid_key("caf\xc3\xa9"));   // bytes above 0x7f are fine, as in memcached
    CHECK(valid_key("!~{}"));
    CHECK_FALSE(valid_key(""));
    CHECK_FALSE(valid_key(std::string(251, 'a')));
    CHECK_FALSE(valid_key("a b"));
    CHECK_FALSE(valid_key(std::string("a\0b", 3)));
    CHECK_FALSE(valid_key("a\nb"));
    CHECK_FALSE(valid_key("\x7f"));
}

TEST_CASE("append_value writes a VALUE block and appends to what is there",
          "[protocol]") {
    std::string reply;
    append_value(reply, "k", 0, "hello");
    CHECK(reply == "VALUE k 0 5\r\nhello\r\n");
    append_value(reply, "other", 4294967295u, std::string("a\r\n\0b", 5));
    CHECK(reply == "VALUE k 0 5\r\nhello\r\nVALUE other 4294967295 5\r\n" +
                       std::string("a\r\n\0b", 5) + "\r\n");
    std::string empty;
    append_value(empty, "e", 3, "");
    CHECK(empty == "VALUE e 3 0\r\n\r\n");
}

TEST_CASE("the protocol limits are memcached's", "[protocol]") {
    CHECK(MAX_KEY == 250);
    CHECK(MAX_VALUE == 1048576);
    CHECK(MAX_LINE == 8192);
}

// ---- RequestParser, fed directly ---------------------------------------------

namespace {

// Every request a parser hands out for input, fed `piece` bytes at a time
// (0: at once), asking for requests after every piece.
std::vector<Request> parse_all(const std::string& input, std::size_t piece = 0,
                               std::size_t keys_per_part = 4) {
    RequestParser parser(keys_per_part);
    std::vector<Request> requests;
    std::size_t step = piece == 0 ? std::max<std::size_t>(input.size(), 1) : piece;
    for (std::size_t at = 0; at < input.size(); at += step) {
        parser.feed(input.data() + at, std::min(step, input.size() - at));
        Request request;
        while (parser.next(request))
            requests.push_back(request);
    }
    return requests;
}

}  // namespace

TEST_CASE("the parser puts together lines that arrive one byte at a time", "[parser]") {
    const std::string input = "get a\r\nget bb\nget ccc\r\n";
    RequestParser parser(4);
    std::vector<std::string> keys;
    Request request;
    for (char c : input) {
        parser.feed(&c, 1);
        while (parser.next(request))
            keys.push_back(request.keys.at(0));
        if (c != '\n')
            CHECK(parser.buffered() > 0);   // half a line is kept, not dropped
    }
    CHECK(keys == std::vector<std::string>{"a", "bb", "ccc"});
    CHECK(parser.buffered() == 0);
    CHECK(parser.empty());
}

TEST_CASE("the parser hands out several requests that arrived in one read", "[parser]") {
    std::vector<Request> requests = parse_all("get one\r\nget two\n\r\n\nget three\r\n");
    REQUIRE(requests.size() == 5);
    CHECK(requests[0].keys == std::vector<std::string>{"one"});
    CHECK(requests[1].keys == std::vector<std::string>{"two"});
    CHECK(requests[2].error == "ERROR\r\n");   // the empty lines
    CHECK(requests[3].error == "ERROR\r\n");
    CHECK(requests[4].keys == std::vector<std::string>{"three"});
}

TEST_CASE("the parser strips only the last \\r of a line", "[parser]") {
    // A lone \r stays inside the line, where it is a control character in a key.
    for (const char* input : {"get a\rb\r\n", "get c\r\r\n"}) {
        INFO(input);
        std::vector<Request> requests = parse_all(input);
        REQUIRE(requests.size() == 1);
        CHECK(requests[0].error == "CLIENT_ERROR bad key (control characters)\r\n");
    }
}

TEST_CASE("the parser keeps a last line without its newline, and hands out nothing for it",
          "[parser]") {
    RequestParser parser(4);
    const std::string input = "get done\nget partial";
    parser.feed(input.data(), input.size());
    Request request;
    REQUIRE(parser.next(request));
    CHECK(request.keys == std::vector<std::string>{"done"});
    CHECK_FALSE(parser.next(request));
    CHECK_FALSE(parser.next(request));
    CHECK(parser.buffered() == std::string("get partial").size());
    CHECK_FALSE(parser.empty());
    parser.feed("\n", 1);
    REQUIRE(parser.next(request));
    CHECK(request.keys == std::vector<std::string>{"partial"});
}

TEST_CASE("the parser takes a data block across many reads, whatever bytes it holds",
          "[parser]") {
    // 40000 bytes is more than two of read_request's 16 KiB reads.
    std::string block(40000, '\0');
    for (std::size_t i = 0; i < block.size(); ++i)
        block[i] = static_cast<char>(i * 7 % 251);
    for (std::size_t piece : {0, 1, 4099}) {
        INFO("piece " << piece);
        std::vector<Request> requests =
            parse_all("set b 0 0 40000\r\n" + block + "\r\nset e 0\r\n\r\nset x 8\nx\r\n\r\nyz\n\n", piece);
        REQUIRE(requests.size() == 3);
        CHECK(requests[0].data == block);
        CHECK(requests[1].data.empty());
        CHECK(requests[2].data == "x\r\n\r\nyz\n");
    }
}

TEST_CASE("the parser drops a refused data block as it arrives", "[parser]") {
    const std::string refused = "set " + std::string(251, 'k') + " 0 0 50000\r\n";
    const std::string input = refused + std::string(50000, '\n') + "\r\nget after\r\n";
    for (std::size_t piece : {0, 1000}) {
        INFO("piece " << piece);
        RequestParser parser(4);
        std::vector<std::string> replies;
        std::size_t step = piece == 0 ? input.size() : piece;
        for (std::size_t at = 0; at < input.size(); at += step) {
            parser.feed(input.data() + at, std::min(step, input.size() - at));
            CHECK(parser.buffered() <= std::max(step, refused.size()));
            Request request;
            while (parser.next(request))
                replies.push_back(request.error.empty() ? request.keys.at(0) : request.error);
        }
        CHECK(replies == std::vector<std::string>{"CLIENT_ERROR key longer than 250 bytes\r\n",
                                                  "after"});
    }
}

TEST_CASE("the parser hands out a long get in parts, END-marked once", "[parser]") {
    std::vector<Request> parts = parse_all("get a b c d e f g h i j\r\nget k\r\n");
    REQUIRE(parts.size() == 4);
    CHECK(parts[0].keys == std::vector<std::string>{"a", "b", "c", "d"});
    CHECK(parts[1].keys == std::vector<std::string>{"e", "f", "g", "h"});
    CHECK(parts[2].keys == std::vector<std::string>{"i", "j"});
    CHECK(parts[3].keys == std::vector<std::string>{"k"});
    for (const Request& part : parts)
        CHECK(part.command == Command::get);
    CHECK_FALSE(parts[0].last_part);
    CHECK_FALSE(parts[1].last_part);
    CHECK(parts[2].last_part);
    CHECK(parts[3].last_part);
    // A get of exactly keys_per_part keys is one part.
    std::vector<Request> four = parse_all("get a b c d\r\n");
    REQUIRE(four.size() == 1);
    CHECK(four[0].last_part);
    // One key per part: as many parts as keys, repeats included.
    std::vector<Request> ones = parse_all("get x y x\r\n", 0, 1);
    REQUIRE(ones.size() == 3);
    CHECK(ones[2].keys == std::vector<std::string>{"x"});
    CHECK((!ones[0].last_part && !ones[1].last_part && ones[2].last_part));
}

TEST_CASE("the parser is not empty while a get still has parts to hand out", "[parser]") {
    RequestParser parser(1);
    const std::string input = "get a b c\r\n";
    parser.feed(input.data(), input.size());
    Request request;
    REQUIRE(parser.next(request));
    CHECK(parser.buffered() == 0);
    CHECK_FALSE(parser.empty());   // b and c are still to come
    REQUIRE(parser.next(request));
    REQUIRE(parser.next(request));
    CHECK(request.keys == std::vector<std::string>{"c"});
    CHECK(request.last_part);
    CHECK(parser.empty());
    CHECK_FALSE(parser.next(request));
}

TEST_CASE("a bad key anywhere in a get refuses the whole get, before any part",
          "[parser]") {
    std::vector<Request> requests =
        parse_all("get a b c d e f " + std::string(300, 'x') + "\r\n");
    REQUIRE(requests.size() == 1);
    CHECK(requests[0].error == "CLIENT_ERROR key longer than 250 bytes\r\n");
}

// ---- read_request: good requests --------------------------------------------

TEST_CASE("read_request reads every command, with \\r\\n and bare \\n, in any pieces",
          "[request]") {
    const std::string session =
        "set a 5 0 3\r\nabc\r\n"
        "set b 3\r\nxyz\r\n"
        "set c 9 0 0 noreply\r\n\r\n"
        "get a b c missing\r\n"
        "  get     b   a  \r\n"
        "get a b c missing a b c a\r\n"   // in parts: END only after the last
        "exch a b\r\n"
        "get a b\r\n"
        "exch a missing\r\n"
        "delete a\r\n"
        "delete a\r\n"
        "delete b noreply\r\n"
        "get a b c\r\n";
    const std::string replies =
        "STORED\r\n"
        "STORED\r\n"
        "VALUE a 5 3\r\nabc\r\nVALUE b 0 3\r\nxyz\r\nVALUE c 9 0\r\n\r\nEND\r\n"
        "VALUE b 0 3\r\nxyz\r\nVALUE a 5 3\r\nabc\r\nEND\r\n"
        "VALUE a 5 3\r\nabc\r\nVALUE b 0 3\r\nxyz\r\nVALUE c 9 0\r\n\r\n"
        "VALUE a 5 3\r\nabc\r\nVALUE b 0 3\r\nxyz\r\nVALUE c 9 0\r\n\r\n"
        "VALUE a 5 3\r\nabc\r\nEND\r\n"
        "EXCHANGED\r\n"
        "VALUE a 0 3\r\nxyz\r\nVALUE b 5 3\r\nabc\r\nEND\r\n"
        "NOT_FOUND\r\n"
        "DELETED\r\n"
        "NOT_FOUND\r\n"
        "VALUE c 9 0\r\n\r\nEND\r\n";
    for (std::size_t piece : {0, 1, 2, 5}) {
        INFO("piece " << piece);
        CHECK(serve(session, piece) == replies);
        CHECK(serve(bare_newlines(session), piece) == replies);
    }
}

TEST_CASE("read_request fills in every field of a set", "[request]") {
    std::vector<Request> requests =
        read_all("set k 17 0 4 noreply\r\nab\r\n\r\nset j 2\nhi\n", 1);
    REQUIRE(requests.size() == 2);
    CHECK(requests[0].command == Command::set);
    CHECK(requests[0].keys == std::vector<std::string>{"k"});
    CHECK(requests[0].flags == 17);
    CHECK(requests[0].bytes == 4);
    CHECK(requests[0].noreply);
    CHECK(requests[0].data == "ab\r\n");   // a data block may hold \r\n
    CHECK(requests[1].command == Command::set);
    CHECK(requests[1].keys == std::vector<std::string>{"j"});
    CHECK(requests[1].flags == 0);
    CHECK(requests[1].data == "hi");
    CHECK_FALSE(requests[1].noreply);
}

TEST_CASE("read_request reads a 1 MiB value whole", "[request]") {
    std::string value(MAX_VALUE, '\0');
    for (std::size_t i = 0; i < value.size(); ++i)
        value[i] = static_cast<char>('a' + i % 23);
    std::string input = "set big 1 0 1048576\r\n" + value + "\r\nget big\r\n";
    std::string expected = "STORED\r\nVALUE big 1 1048576\r\n" + value + "\r\nEND\r\n";
    CHECK(serve(input) == expected);
    CHECK(serve(input, 65521) == expected);
}

TEST_CASE("read_request mixes \\r\\n and bare \\n on one stream", "[request]") {
    CHECK(serve("set k 2\nhi\r\nget k\r\nset k 0 0 2\r\nho\nget k\n") ==
          "STORED\r\nVALUE k 0 2\r\nhi\r\nEND\r\nSTORED\r\nVALUE k 0 2\r\nho\r\nEND\r\n");
}

TEST_CASE("read_request drops a megabyte-long line without holding it", "[request]") {
    Feed feed(std::string(1 << 20, 'x') + "\nget after\n");
    RequestReader in(feed.fd());
    Request request;
    AllocationWatch watch;
    REQUIRE(read_request(in, request));
    CHECK(request.error == "CLIENT_ERROR line too long\r\n");
    REQUIRE(read_request(in, request));
    CHECK(request.keys == std::vector<std::string>{"after"});
    CHECK(watch.largest_so_far() < 64 * 1024);
}

TEST_CASE("read_request answers a long get in parts of a few values each", "[request]") {
    // One 2 KB line asks for 1,000 copies of a 1 MiB value. Served part by
    // part, as every threaded version does, no reply holds more than
    // GET_KEYS_PER_PART values; together they are the one reply memcached gives.
    std::string line = "get";
    for (int i = 0; i < 1000; ++i)
        line += " k";
    const std::string value(MAX_VALUE, 'v');
    MiniDB db;
    Feed feed("set k 0 0 1048576\r\n" + value + "\r\n" + line + "\r\nget k\r\n");
    RequestReader in(feed.fd());
    Request request;
    REQUIRE(read_request(in, request));
    CHECK(db.execute(request) == "STORED\r\n");
    const std::string one_value = "VALUE k 0 1048576\r\n" + value + "\r\n";
    std::size_t parts = 0, total = 0, largest = 0;
    bool ended = false;
    while (!ended && read_request(in, request)) {
        std::string reply = db.execute(request);
        ++parts;
        total += reply.size();
        largest = std::max(largest, reply.size());
        ended = reply.size() >= 5 && reply.compare(reply.size() - 5, 5, "END\r\n") == 0;
        CHECK(reply.find("END\r\n") == (ended ? reply.size() - 5 : std::string::npos));
    }
    CHECK(ended);
    CHECK(parts == 1000 / GET_KEYS_PER_PART);
    CHECK(total == 1000 * one_value.size() + 5);
    CHECK(largest <= GET_KEYS_PER_PART * one_value.size() + 5);
    REQUIRE(read_request(in, request));   // and the stream goes on
    CHECK(db.execute(request) == one_value + "END\r\n");
}

// ---- read_request: the bad-input catalogue ----------------------------------

namespace {

// The bad-input catalogue: each bad request with the one line it gets back.
struct BadRequest {
    const char* what;
    std::string input;
    std::string reply;
    bool discards;   // its data block is read and thrown away
};

std::vector<BadRequest> bad_requests() {
    const std::string k250(250, 'k');
    const std::string k251(251, 'k');
    const std::string k300(300, 'x');
    return {
        {"unknown command", "bogus k\r\n", "ERROR\r\n", false},
        {"empty line", "\r\n", "ERROR\r\n", false},
        {"only spaces", "     \r\n", "ERROR\r\n", false},
        {"get without key", "get\r\n", "ERROR\r\n", false},
        {"get with a 251-byte key", "get " + k251 + "\r\n",
         "CLIENT_ERROR key longer than 250 bytes\r\n", false},
        {"get with a 250-byte key (fine)", "get " + k250 + "\r\n", "END\r\n", false},
        {"set with a 250-byte key (fine)", "set " + k250 + " 1\r\nv\r\n", "STORED\r\n", false},
        {"set with a 251-byte key", "set " + k251 + " 0 0 4\r\nabcd\r\n",
         "CLIENT_ERROR key longer than 250 bytes\r\n", true},
        {"get with a 300-byte key", "get a " + k300 + " b\r\n",
         "CLIENT_ERROR key longer than 250 bytes\r\n", false},
        {"set with a 300-byte key", "set " + k300 + " 2\r\nzz\r\n",
         "CLIENT_ERROR key longer than 250 bytes\r\n", true},
        {"delete with a 300-byte key", "delete " + k300 + "\r\n",
         "CLIENT_ERROR key longer than 250 bytes\r\n", false},
        {"exch with a 300-byte key", "exch " + k300 + " ok\r\n",
         "CLIENT_ERROR key longer than 250 bytes\r\n", false},
        {"get key with a control character", "get a\x01z\r\n",
         "CLIENT_ERROR bad key (control characters)\r\n", false},
        {"set key with a control character", "set a\x02z 0 0 3\r\nabc\r\n",
         "CLIENT_ERROR bad key (control characters)\r\n", true},
        {"non-numeric size", "set k 0 0 abc\r\n", "CLIENT_ERROR bad command line format\r\n",
         false},
        {"negative size", "set k 0 0 -1\r\n", "CLIENT_ERROR bad command line format\r\n", false},
        {"size with trailing junk", "set k 0 0 3x\r\n",
         "CLIENT_ERROR bad command line format\r\n", false},
        {"short form size with trailing junk", "set k 3x\r\n",
         "CLIENT_ERROR bad command line format\r\n", false},
        {"size past INT_MAX", "set k 0 0 4294967296\r\n",
         "CLIENT_ERROR bad command line format\r\n", false},
        {"value over 1 MiB",
         "set k 0 0 1048577\r\n" + std::string(MAX_VALUE + 1, 'v') + "\r\n",
         "SERVER_ERROR object too large for cache\r\n", true},
        {"bad flags", "set k x 0 3\r\nabc\r\n", "CLIENT_ERROR bad command line format\r\n", true},
        {"flags past 32 bits", "set k 4294967296 0 3\r\nabc\r\n",
         "CLIENT_ERROR bad command line format\r\n", true},
        {"bad exptime", "set k 0 soon 3\r\nabc\r\n", "CLIENT_ERROR bad command line format\r\n",
         true},
        {"set with too few words", "set k 0 3\r\n", "CLIENT_ERROR bad command line format\r\n",
         false},
        {"delete with a stray word", "delete k now\r\n",
         "CLIENT_ERROR bad command line format\r\n", false},
        {"exch with one key", "exch k\r\n", "CLIENT_ERROR bad command line format\r\n", false},
        {"data block longer than its size", "set k 3\r\nabcdef\r\n",
         "CLIENT_ERROR bad data chunk\r\n", false},
        {"data block followed by junk", "set k 0 0 3\r\nabc\rx\r\n",
         "CLIENT_ERROR bad data chunk\r\n", false},
        {"data block followed by a very long line",
         "set k 1\r\na" + std::string(3 * MAX_LINE, 'j') + "\r\n",
         "CLIENT_ERROR bad data chunk\r\n", false},
        {"command line one byte too long", "get " + std::string(MAX_LINE - 3, 'g') + "\r\n",
         "CLIENT_ERROR line too long\r\n", false},
        {"command line far too long", std::string(100000, 'L') + "\r\n",
         "CLIENT_ERROR line too long\r\n", false},
    };
}

// The bad request, then a good one, twice over on one stream: every reply must
// be exact, so nothing before or after the bad request was lost or misread.
void check_bad_request(const BadRequest& c, bool bare) {
    const std::string good = "set ok 0 0 2\r\nhi\r\nget ok\r\n";
    const std::string good_replies = "STORED\r\nVALUE ok 0 2\r\nhi\r\nEND\r\n";
    // One byte per read for short inputs; long ones in odd-sized pieces.
    for (std::size_t piece : {std::size_t(0), c.input.size() < 2000 ? 1 : std::size_t(8191)}) {
        INFO(c.what << (bare ? ", bare \\n" : ", \\r\\n") << ", piece " << piece);
        std::string input = c.input + good + c.input + good;
        if (bare)
            input = bare_newlines(input);
        std::string replies = c.reply + good_replies + c.reply + good_replies;
        CHECK(serve(input, piece) == replies);
    }
}

}  // namespace

TEST_CASE("after every bad request the next good one on the stream still works",
          "[request]") {
    for (const BadRequest& c : bad_requests())
        check_bad_request(c, false);
}

TEST_CASE("after every bad request without a data block, bare \\n lines work as well",
          "[request]") {
    for (const BadRequest& c : bad_requests())
        if (!c.discards)
            check_bad_request(c, true);
}

TEST_CASE("a set or delete that says noreply gets nothing back, even when it is refused",
          "[request]") {
    // memcached sends nothing once it has read noreply: its client reads no
    // reply, so an error line would be taken for the answer to its next request.
    const std::string k300(300, 'x');
    const std::vector<BadRequest> quiet = {
        {"value over 1 MiB", "set k 0 0 1048577 noreply\r\n" + std::string(MAX_VALUE + 1, 'v') + "\r\n",
         "", true},
        {"bad flags", "set k x 0 3 noreply\r\nabc\r\n", "", true},
        {"a 300-byte key in set", "set " + k300 + " 0 0 3 noreply\r\nabc\r\n", "", true},
        {"a control character in set's key", "set a\x02z 0 0 3 noreply\r\nabc\r\n", "", true},
        {"data block longer than its size", "set k 0 0 3 noreply\r\nabcdef\r\n", "", false},
        {"data block followed by a very long line",
         "set k 0 0 1 noreply\r\na" + std::string(3 * MAX_LINE, 'j') + "\r\n", "", false},
        {"a 300-byte key in delete", "delete " + k300 + " noreply\r\n", "", false},
        {"a control character in delete's key", "delete a\x01 noreply\r\n", "", false},
    };
    for (const BadRequest& c : quiet) {
        check_bad_request(c, false);
        check_bad_request(c, true);
    }
}

TEST_CASE("a refused set's data block may end in a bare \\n, like a stored one's",
          "[request]") {
    // Skipping bytes + 2 would eat the first byte of the next request here
    // ("get k" read as "et k"): the block's end is read as a line instead.
    CHECK(serve("set k x 0 3\nabc\nget k\n") ==
          "CLIENT_ERROR bad command line format\r\nEND\r\n");
    for (const BadRequest& c : bad_requests())
        if (c.discards)
            check_bad_request(c, true);
}

TEST_CASE("a bad size discards nothing: the next line is read as a request",
          "[request]") {
    // Were "-1" or "3x" taken as a size, "get k" would vanish into a data block.
    for (const char* line : {"set k 0 0 -1\r\n", "set k 0 0 3x\r\n", "set k 0 0 2147483648\r\n"}) {
        INFO(line);
        std::vector<Request> requests = read_all(std::string(line) + "get k\r\n");
        REQUIRE(requests.size() == 2);
        CHECK(requests[0].error == "CLIENT_ERROR bad command line format\r\n");
        CHECK(requests[1].command == Command::get);
        CHECK(requests[1].keys == std::vector<std::string>{"k"});
    }
}

TEST_CASE("a value over 1 MiB is refused, thrown away unheld, and the stream goes on",
          "[request]") {
    const std::size_t size = 2 << 20;
    std::string blob(size, 'v');
    blob.replace(1000, 12, "\r\nget oops\r\n");   // request-like bytes inside are data
    for (std::size_t piece : {0, 65521}) {
        INFO("piece " << piece);
        Feed feed("set big 0 0 " + std::to_string(size) + "\r\n" + blob + "\r\nget ok\r\n",
                  piece);
        RequestReader in(feed.fd());
        Request request;
        {
            AllocationWatch watch;
            REQUIRE(read_request(in, request));
            CHECK(watch.largest_so_far() < 64 * 1024);
        }
        CHECK(request.command == Command::invalid);
        CHECK(request.error == "SERVER_ERROR object too large for cache\r\n");
        REQUIRE(read_request(in, request));
        CHECK(request.command == Command::get);
        CHECK(request.keys == std::vector<std::string>{"ok"});
        CHECK_FALSE(read_request(in, request));
    }
    CHECK(serve("set big " + std::to_string(MAX_VALUE + 1) + "\r\n" +
                std::string(MAX_VALUE + 1, 'w') + "\r\nset k 1\r\nv\r\nget big k\r\n") ==
          "SERVER_ERROR object too large for cache\r\nSTORED\r\nVALUE k 0 1\r\nv\r\nEND\r\n");
}

TEST_CASE("a bad data chunk stores nothing", "[request]") {
    CHECK(serve("set k 2\r\nold\r\nset k 3\r\nabcd\r\nget k\r\n") ==
          "CLIENT_ERROR bad data chunk\r\nCLIENT_ERROR bad data chunk\r\nEND\r\n");
    // A block shorter than its size swallows the next line: that line is the junk.
    CHECK(serve("set k 5\r\nabc\r\nget k\r\nget k\r\n") ==
          "CLIENT_ERROR bad data chunk\r\nEND\r\n");
}

TEST_CASE("a command line of exactly MAX_LINE bytes is not too long", "[request]") {
    std::string line = "get k";
    line.resize(MAX_LINE, ' ');   // runs of spaces separate nothing
    CHECK(serve(line + "\nget k\n") == "END\r\nEND\r\n");
    CHECK(serve(line + " \nget k\n") == "CLIENT_ERROR line too long\r\nEND\r\n");
}

TEST_CASE("a command line of exactly MAX_LINE bytes ending in \\r\\n is not too long",
          "[request]") {
    // The \r of "\r\n" does not count against max_line: the longest line is
    // MAX_LINE bytes whichever way it ends.
    std::string line = "get k";
    line.resize(MAX_LINE, ' ');
    CHECK(serve(line + "\r\nget k\r\n") == "END\r\nEND\r\n");
}

// ---- read_request: end of stream --------------------------------------------

TEST_CASE("read_request returns false when the stream ends mid-line or mid-block",
          "[request]") {
    struct Case {
        const char* what;
        std::string input;
        std::size_t complete;   // requests read before the end
    };
    const std::vector<Case> cases = {
        {"empty stream", "", 0},
        {"mid command line", "get a\r\nget b", 1},
        {"after the \\r of a command line", "get a\r\nget b\r", 1},
        {"right after a command line of a set", "set k 5\r\n", 0},
        {"mid data block", "get a\r\nset k 5\r\nab", 1},
        {"after the data block, before its \\r\\n", "set k 2\r\nab", 0},
        {"between the \\r and \\n after a data block", "set k 2\r\nab\r", 0},
        {"mid a discarded data block", "set k 0 0 2000000\r\n" + std::string(1000, 'd'), 0},
        {"mid a discarded block with a bad key", "set " + std::string(251, 'k') + " 10\r\nab",
         0},
        {"mid an over-long line", "get a\n" + std::string(3 * MAX_LINE, 'l'), 1},
    };
    for (const Case& c : cases) {
        for (std::size_t piece : {std::size_t(0), c.input.size() < 2000 ? 1 : std::size_t(997)}) {
            INFO(c.what << ", piece " << piece);
            Feed feed(c.input, piece);
            RequestReader in(feed.fd());
            Request request;
            for (std::size_t i = 0; i < c.complete; ++i)
                CHECK(read_request(in, request));
            CHECK_FALSE(read_request(in, request));
            CHECK_FALSE(read_request(in, request));
        }
    }
}

// ---- the table --------------------------------------------------------------

TEST_CASE("bucket_of is FNV-1a 64 modulo 1024, pinned for the Python checker", "[table]") {
    // Computed in C++ and in Python: h = 14695981039346656037; for each byte
    // h ^= b; h = h * 1099511628211 mod 2**64; bucket = h % 1024.
    CHECK(bucket_of("") == 805);
    CHECK(bucket_of("a") == 140);
    CHECK(bucket_of("foo") == 375);
    CHECK(bucket_of("weensydb") == 696);
    CHECK(bucket_of("k9") == 809);
    CHECK(bucket_of("k100") == 809);
    CHECK(NBUCKETS == 1024);
}

TEST_CASE("bucket_of spreads keys over every bucket", "[table]") {
    std::vector<int> load(NBUCKETS, 0);
    for (int i = 0; i < 10000; ++i) {
        std::size_t b = bucket_of("key" + std::to_string(i));
        REQUIRE(b < NBUCKETS);
        ++load[b];
    }
    CHECK(std::count(load.begin(), load.end(), 0) == 0);
    CHECK(*std::max_element(load.begin(), load.end()) <= 30);   // mean is about 10

    std::vector<bool> used(NBUCKETS, false);
    for (int i = 0; i < 1024; ++i)
        used[bucket_of("k" + std::to_string(i))] = true;
    CHECK(std::count(used.begin(), used.end(), true) >= 600);   // random would give ~647
}

TEST_CASE("store_item stores, replaces and find_item finds", "[table]") {
    Bucket bucket;
    CHECK(find_item(bucket, "a") == nullptr);
    store_item(bucket, "a", 1, "one");
    store_item(bucket, "b", 2, "two");
    REQUIRE(find_item(bucket, "a") != nullptr);
    CHECK(find_item(bucket, "a")->value == "one");
    CHECK(find_item(bucket, "a")->flags == 1);
    CHECK(find_item(bucket, "a")->key == "a");

    store_item(bucket, "a", 9, "uno");
    CHECK(bucket.size() == 2);
    CHECK(find_item(bucket, "a")->value == "uno");
    CHECK(find_item(bucket, "a")->flags == 9);
    CHECK(find_item(bucket, "b")->value == "two");
    CHECK(find_item(bucket, "ab") == nullptr);
    CHECK(find_item(bucket, "") == nullptr);
}

TEST_CASE("erase_item removes only its key and reports a missing one", "[table]") {
    Bucket bucket;
    store_item(bucket, "a", 0, "1");
    store_item(bucket, "b", 0, "2");
    store_item(bucket, "c", 0, "3");
    CHECK(erase_item(bucket, "b"));
    CHECK(bucket.size() == 2);
    CHECK(find_item(bucket, "b") == nullptr);
    CHECK(find_item(bucket, "a")->value == "1");
    CHECK(find_item(bucket, "c")->value == "3");
    CHECK_FALSE(erase_item(bucket, "b"));
    CHECK_FALSE(erase_item(bucket, "zzz"));
    CHECK(bucket.size() == 2);
}

TEST_CASE("exchange_items swaps values and flags within one bucket", "[table]") {
    REQUIRE(bucket_of("k9") == bucket_of("k100"));
    Bucket bucket;
    store_item(bucket, "k9", 1, "nine");
    store_item(bucket, "k100", 2, "hundred");
    CHECK(exchange_items(bucket, "k9", bucket, "k100"));
    CHECK(find_item(bucket, "k9")->value == "hundred");
    CHECK(find_item(bucket, "k9")->flags == 2);
    CHECK(find_item(bucket, "k100")->value == "nine");
    CHECK(find_item(bucket, "k100")->flags == 1);
    CHECK(bucket.size() == 2);

    CHECK(exchange_items(bucket, "k9", bucket, "k9"));   // with itself: no change
    CHECK(find_item(bucket, "k9")->value == "hundred");
    CHECK(find_item(bucket, "k9")->flags == 2);
}

TEST_CASE("exchange_items swaps values and flags across two buckets", "[table]") {
    REQUIRE(bucket_of("a") != bucket_of("foo"));
    std::vector<Bucket> table(NBUCKETS);
    Bucket& first = table[bucket_of("a")];
    Bucket& second = table[bucket_of("foo")];
    store_item(first, "a", 10, "apple");
    store_item(second, "foo", 20, "fig");
    CHECK(exchange_items(first, "a", second, "foo"));
    CHECK(find_item(first, "a")->value == "fig");
    CHECK(find_item(first, "a")->flags == 20);
    CHECK(find_item(second, "foo")->value == "apple");
    CHECK(find_item(second, "foo")->flags == 10);
    CHECK(exchange_items(second, "foo", first, "a"));   // and back
    CHECK(find_item(first, "a")->value == "apple");
    CHECK(find_item(second, "foo")->value == "fig");
}

TEST_CASE("exchange_items with a missing key changes nothing", "[table]") {
    Bucket first, second;
    store_item(first, "a", 1, "A");
    store_item(second, "b", 2, "B");
    CHECK_FALSE(exchange_items(first, "a", second, "missing"));
    CHECK_FALSE(exchange_items(first, "missing", second, "b"));
    CHECK_FALSE(exchange_items(first, "nope", second, "nada"));
    CHECK_FALSE(exchange_items(first, "b", second, "a"));   // each in the other's bucket
    CHECK(first.size() == 1);
    CHECK(second.size() == 1);
    CHECK(find_item(first, "a")->value == "A");
    CHECK(find_item(first, "a")->flags == 1);
    CHECK(find_item(second, "b")->value == "B");
    CHECK(find_item(second, "b")->flags == 2);
}
