// wdb_connection.h: one client of a single-threaded WeensyDB server (lessons 12-14).
//
// A thread-per-connection server keeps a client's state on its thread's
// stack and blocks until the next request is whole. A server with one
// thread for every client cannot block on anyone, so it keeps each
// client's state in an object instead and makes progress whenever some
// bytes arrive:
//
//   socket --read()--> input --run_requests()--> output --write()--> socket
//
// `input` holds what has arrived but is not a whole request yet (half a
// line, half of a set's data block): it is the parser that every version
// uses (wdb_parser.h), so a connection parses exactly what read_request()
// parses, in whatever pieces the bytes come. `output` holds replies the
// socket would not take yet. The event loop does the read() and write()
// calls; this class only turns bytes into requests and requests into
// replies.
#pragma once

#include "common/wdb_parser.h"
#include "common/wdb_protocol.h"

#include <cstddef>
#include <string>
#include <string_view>

// A client whose unsent replies pass this size is not read from until they
// drain, and its requests wait: a client that asks and never reads costs
// bounded memory. A get is run one key at a time, so one request adds at
// most one value's reply (MAX_VALUE and its VALUE line) past this size.
constexpr std::size_t MAX_PENDING_OUTPUT = 4 << 20;

class Connection {
public:
    explicit Connection(int fd) : fd_(fd), input_(1) {}   // (1: a get's keys one by one)

    int fd() const { return fd_; }

    // n bytes have arrived from the client.
    void received(const char* data, std::size_t n) { input_.feed(data, n); }

    // The client has shut down its side: no more bytes will arrive.
    void end_of_input() { input_closed_ = true; }

    // Runs every whole request received so far and queues its reply. Stops
    // early while the output is over MAX_PENDING_OUTPUT, even in the middle
    // of a get; call it again once some output has been written.
    void run_requests();

    // Is the server ready for more bytes from this client?
    bool wants_input() const { return !input_closed_ && pending_output() < MAX_PENDING_OUTPUT; }

    // The replies not written yet, and how to say that n of them went out.
    bool has_output() const { return pending_output() > 0; }
    std::string_view unsent_output() const;
    void sent(std::size_t n);

    // Bytes received and not yet used up: at most a command line, or a set's
    // line and data block (the tests use it to show nothing else is kept).
    std::size_t buffered_input() const { return input_.buffered(); }

    // Nothing more will come and nothing is left to send: close it.
    bool finished() const;

private:
    std::size_t pending_output() const { return output_.size() - output_sent_; }
    void finish(const Request& request);

    int fd_;
    RequestParser input_;            // received, not yet run
    std::string output_;             // replies; the first output_sent_ bytes are written
    std::size_t output_sent_ = 0;
    bool input_closed_ = false;
    bool held_back_ = false;         // requests wait in input_ for output to drain
};
