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
// line, half of a set's data block); `output` holds replies the socket
// would not take yet. The event loop does the read() and write() calls;
// this class only turns bytes into requests and requests into replies,
// so it parses exactly what read_request() (wdb_request.h) parses, in
// whatever pieces the bytes come.
#pragma once

#include "common/wdb_protocol.h"

#include <cstddef>
#include <string>
#include <string_view>

// A client whose unsent replies pass this size is not read from until they
// drain: a client that asks and never reads costs bounded memory.
constexpr std::size_t MAX_PENDING_OUTPUT = 4 << 20;

class Connection {
public:
    explicit Connection(int fd) : fd_(fd) {}

    int fd() const { return fd_; }

    // n bytes have arrived from the client.
    void received(const char* data, std::size_t n) { input_.append(data, n); }

    // The client has shut down its side: no more bytes will arrive.
    void end_of_input() { input_closed_ = true; }

    // Runs every whole request received so far and queues its reply. Stops
    // early while the output is over MAX_PENDING_OUTPUT; call it again once
    // some output has been written.
    void run_requests();

    // Is the server ready for more bytes from this client?
    bool wants_input() const { return !input_closed_ && pending_output() < MAX_PENDING_OUTPUT; }

    // The replies not written yet, and how to say that n of them went out.
    bool has_output() const { return pending_output() > 0; }
    std::string_view unsent_output() const;
    void sent(std::size_t n);

    // Bytes received and not yet used up: at most a command line, or a set's
    // line and data block (the tests use it to show nothing else is kept).
    std::size_t buffered_input() const { return input_.size(); }

    // Nothing more will come and nothing is left to send: close it.
    bool finished() const;

private:
    enum class Stage {
        command_line,   // waiting for a whole command line
        data_block,     // a set's line is parsed: waiting for its data and line end
        skip_block,     // a refused set: dropping skip_left bytes of its data
        skip_line,      // dropping bytes up to and including the next \n
    };

    std::size_t pending_output() const { return output_.size() - output_sent_; }
    bool step(std::string_view buffered, std::size_t& used);
    bool take_command_line(std::string_view buffered, std::size_t& used);
    bool take_data_block(std::string_view buffered, std::size_t& used);
    void finish(const Request& request);

    int fd_;
    std::string input_;              // received, not yet parsed
    std::string output_;             // replies; the first output_sent_ bytes are written
    std::size_t output_sent_ = 0;
    bool input_closed_ = false;
    bool held_back_ = false;         // whole requests wait in input_ for output to drain
    Stage stage_ = Stage::command_line;
    Request pending_;                // data_block: the set whose data is awaited
    std::size_t skip_left_ = 0;      // skip_block: bytes still to drop
};
