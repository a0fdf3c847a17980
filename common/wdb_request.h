// wdb_request.h: reading one whole WeensyDB request off a connection.
//
// A request is a command line and, for `set`, the data block after it.
// read_request() blocks until it has both, so when it returns the request
// is complete: a server can then take its locks, run the command, drop the
// locks, and only then write the reply (lesson 06).
#pragma once

#include "common/line_reader.h"
#include "common/wdb_protocol.h"

// A reader sized for WeensyDB command lines.
inline LineReader request_reader(int fd) { return LineReader(fd, MAX_LINE); }

// Reads the next request. Bad requests come back as Command::invalid with
// their error line set (and their data block already thrown away).
// Returns false when the client has closed the connection.
bool read_request(LineReader& in, Request& request);
