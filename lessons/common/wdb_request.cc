#include "common/wdb_request.h"

// The data block of a set: `bytes` bytes, then an empty line.
static bool read_data_block(LineReader& in, Request& request) {
    if (!in.read_exactly(request.bytes, request.data))
        return false;
    std::string rest;
    LineReader::Status status = in.read_line(rest);
    if (status == LineReader::Status::closed)
        return false;
    if (status == LineReader::Status::too_long || !rest.empty()) {
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
    if (request.discard > 0)
        return in.skip(request.discard);
    return true;
}
