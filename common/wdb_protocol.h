// wdb_protocol.h: the WeensyDB protocol, parsed once for every version.
//
// WeensyDB speaks a subset of memcached's text protocol, so real memcached
// clients work against it, plus the course's own `exch`:
//
//   set <key> <flags> <exptime> <bytes> [noreply]\r\n<data>\r\n   -> STORED
//   set <key> <bytes>\r\n<data>\r\n                                -> STORED
//   get <key> [<key>...]\r\n      -> VALUE <key> <flags> <bytes>\r\n<data>\r\n per hit, END
//   delete <key> [noreply]\r\n    -> DELETED | NOT_FOUND
//   exch <key1> <key2>\r\n        -> EXCHANGED | NOT_FOUND
//
// A bare \n ends a line as well as \r\n. What goes wrong gets one line back
// and the connection stays usable (the table in README.md lists them all):
//   unknown command                -> ERROR
//   malformed command line         -> CLIENT_ERROR <why>
//   value larger than MAX_VALUE    -> SERVER_ERROR object too large for cache
//                                     (its data block is read and thrown away)
//
// Keys are never copied into fixed-size buffers: the parser only slices the
// line it is given (the source text's `sscanf("%s")` into char[] overflowed).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

constexpr std::size_t MAX_KEY = 250;           // memcached's limit
constexpr std::size_t MAX_VALUE = 1 << 20;     // 1 MiB
constexpr std::size_t MAX_LINE = 8192;         // a command line, without its data block

enum class Command { get, set, del, exch, invalid };

struct Request {
    Command command = Command::invalid;
    std::vector<std::string> keys;  // get: 1 or more; set, delete: 1; exch: 2
    std::uint32_t flags = 0;        // set: stored with the value, returned by get
    std::size_t bytes = 0;          // set: length of the data block that follows
    bool noreply = false;           // set, delete: the client wants no answer
    std::string data;               // set: the value (filled in by read_request)
    std::string error;              // invalid: the whole reply line, e.g. "ERROR\r\n"
    bool discard_block = false;     // invalid set: its data block (bytes long) is read and dropped
};

// Parses one command line (without its \r\n). For `set` the data block is
// not part of the line: the caller reads `bytes` more bytes, then "\r\n".
Request parse_request_line(std::string_view line);

// A key is 1..250 bytes with no spaces or control characters.
bool valid_key(std::string_view key);

// Appends "VALUE <key> <flags> <bytes>\r\n<data>\r\n" to reply.
void append_value(std::string& reply, std::string_view key, std::uint32_t flags,
                  std::string_view data);
