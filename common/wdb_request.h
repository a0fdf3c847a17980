// wdb_request.h: reading one whole WeensyDB request off a connection.
//
// A request is a command line and, for `set`, the data block after it.
// read_request() blocks until it has both, so when it returns the request
// is complete: a server can then take its locks, run the command, drop the
// locks, and only then write the reply (lesson 06).
//
// It is a loop around the one parser (wdb_parser.h): read() what has
// arrived, feed it to the parser, until the parser has a whole request.
#pragma once

#include "common/wdb_parser.h"

// A get of many keys comes out in parts of at most 4 keys (see wdb_parser.h).
// A server that writes each part's reply before it reads the next part holds
// at most 4 values of reply at once (4 MiB), however many keys the line names;
// a get of up to 4 keys is still one reply, one write().
constexpr std::size_t GET_KEYS_PER_PART = 4;

// One connection's parser, fed from its socket by read_request().
struct RequestReader {
    explicit RequestReader(int socket);
    int fd;
    RequestParser parser;
};

// Reads the next request. Bad requests come back as Command::invalid with
// their error line set (and their data block already thrown away); a long
// get comes back in parts. Returns false when the client has closed the
// connection.
bool read_request(RequestReader& in, Request& request);
