// wdb_parser.h: turning the bytes of a connection into WeensyDB requests.
//
// read() returns whatever has arrived: half a line, or three requests and a
// bit. A RequestParser is fed those bytes as they come and hands out whole
// requests; what does not make a whole request yet stays in its buffer:
//
//   read() --feed()--> buffer --next()--> Request
//
// It is the one parser of every version. The thread-per-connection servers
// (lessons 03-10) feed it from a blocking read() until next() has a request
// (wdb_request.h); the event-loop servers (lessons 12-14) feed it whatever
// each read() brings and run every request it has (wdb_connection.h).
//
// Of a request that is not whole yet it keeps at most a command line, or a
// set's data block (and the bytes of later requests that came with it). A
// line longer than MAX_LINE, and the data block of a refused set, are
// dropped as they arrive, never held whole.
//
// A get is handed out in parts of at most keys_per_part keys. One line of
// 2 KB can ask for a thousand copies of a 1 MiB value: a gigabyte of reply.
// A server that answers each part before it asks for the next holds a few
// values' worth of reply at a time instead. Every part but the last has
// last_part false: only the last part's reply ends with END.
#pragma once

#include "common/wdb_protocol.h"

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

class RequestParser {
public:
    explicit RequestParser(std::size_t keys_per_part);

    // n more bytes from the client.
    void feed(const char* data, std::size_t n);

    // The next whole request, or false if the bytes fed so far hold none:
    // then feed more. Bad requests come out as Command::invalid, with their
    // error line set (and their data block already thrown away).
    bool next(Request& request);

    // Bytes fed and not yet used up.
    std::size_t buffered() const { return input_.size() - start_; }

    // Nothing left over: no bytes, and no part of a get still to hand out.
    bool empty() const { return buffered() == 0 && next_key_ == get_keys_.size(); }

private:
    enum class Stage {
        command_line,   // waiting for a whole command line
        data_block,     // a set's line is parsed: waiting for its data and line end
        skip_block,     // a refused set: dropping skip_left_ bytes of its data
        skip_line,      // dropping bytes up to and including the next \n
    };

    // What one step of parsing did: needs more bytes to go on, went on (and
    // may take another step at once), or put a whole request out.
    enum class Step { need_bytes, went_on, request };

    std::string_view unused() const { return std::string_view(input_).substr(start_); }
    void consume(std::size_t n);
    Step take_step(Request& request);
    Step take_command_line(Request& request);
    Step take_data_block(Request& request);
    Step skip_block();
    Step skip_line(Request& request);
    void split_get(Request& request);
    void take_get_part(Request& part);

    std::size_t keys_per_part_;
    std::string input_;              // bytes fed; the first start_ of them are used up
    std::size_t start_ = 0;
    Stage stage_ = Stage::command_line;
    Request pending_;                // data_block: the set whose data is awaited;
                                     // skip_block, skip_line: the refusal to send after
    std::size_t skip_left_ = 0;      // skip_block: bytes still to drop
    std::vector<std::string> get_keys_;   // a get being handed out in parts
    std::size_t next_key_ = 0;            // the first of get_keys_ not handed out
};
