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
// A bare \n ends a line as well as \r\n. What goes wrong gets one error line
// back (error_line below names them all) and the connection stays usable. A
// set or delete that says noreply gets no reply at all, not even an error
// line, as in memcached: its client reads none.
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

// Every error line WeensyDB sends, named once (lesson 03's README has the table).
namespace error_line {
constexpr char unknown_command[] = "ERROR\r\n";   // also: an empty line, get without a key
constexpr char bad_format[] = "CLIENT_ERROR bad command line format\r\n";
constexpr char key_too_long[] = "CLIENT_ERROR key longer than 250 bytes\r\n";
constexpr char bad_key[] = "CLIENT_ERROR bad key (control characters)\r\n";
constexpr char line_too_long[] = "CLIENT_ERROR line too long\r\n";
constexpr char bad_data_chunk[] = "CLIENT_ERROR bad data chunk\r\n";
constexpr char too_large[] = "SERVER_ERROR object too large for cache\r\n";
}  // namespace error_line

enum class Command { get, set, del, exch, invalid };

struct Request {
    Command command = Command::invalid;
    std::vector<std::string> keys;  // get: 1 or more; set, delete: 1; exch: 2
    std::uint32_t flags = 0;        // set: stored with the value, returned by get
    std::size_t bytes = 0;          // set: length of the data block that follows
    bool noreply = false;           // set, delete: the client wants no answer, not even an error
    std::string data;               // set: the value (filled in by RequestParser)
    std::string error;              // invalid: the whole reply line, from error_line
    bool discard_block = false;     // invalid set: its data block (bytes long) is read and dropped
    bool last_part = true;          // get: false in every part of a long get but the last,
                                    // whose reply ends with END (see wdb_parser.h)
};

// Parses one command line (without its \r\n). For `set` the data block is
// not part of the line: the caller reads `bytes` more bytes, then "\r\n".
// A get comes back whole, with all its keys.
Request parse_request_line(std::string_view line);

// A key is 1..250 bytes with no spaces or control characters.
bool valid_key(std::string_view key);

// Appends "VALUE <key> <flags> <bytes>\r\n<data>\r\n" to reply.
void append_value(std::string& reply, std::string_view key, std::uint32_t flags,
                  std::string_view data);
