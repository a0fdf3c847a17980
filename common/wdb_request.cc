#include "common/wdb_request.h"

// The end of a data block: an empty line ("\r\n", or a bare "\n").
// False if the stream ends; *clean is false if other bytes came first.
static bool read_block_end(LineReader& in, bool* clean) {
    std::string rest;
    LineReader::Status status = in.read_line(rest);
    *clean = status == LineReader::Status::line && rest.empty();
    return status != LineReader::Status::closed;
}

// The data block of a set: `bytes` bytes, then an empty line.
static bool read_data_block(LineReader& in, Request& request) {
    bool clean;
    if (!in.read_exactly(request.bytes, request.data) || !read_block_end(in, &clean))
        return false;
    if (!clean) {
        // More bytes than the header said: store nothing, say so.
        request = Request();
        request.error = "CLIENT_ERROR bad data chunk\r\n";
    }
    return true;
}

bool read_request(LineReader& in, Request& request) {
    std::string line;
    LineReader::Status status = in.read_line(line);
    if (status == LineReader::Status::closed)
        return false;
    if (status == LineReader::Status::too_long) {
        request = Request();
        request.error = "CLIENT_ERROR line too long\r\n";
        return true;
    }
    request = parse_request_line(line);
    if (request.command == Command::set)
        return read_data_block(in, request);
    bool clean;   // (a refused block gets its error line whatever follows it)
    if (request.discard_block)
        return in.skip(request.bytes) && read_block_end(in, &clean);
    return true;
}
