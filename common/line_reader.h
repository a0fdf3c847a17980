// line_reader.h: reading a byte stream as lines and counted blocks.
//
// read() returns whatever has arrived: half a line, or three lines and a
// bit. LineReader keeps what it has read but not yet handed out in a
// buffer, so callers can ask for "the next line" or "the next n bytes".
// It blocks in read() until it has them: one thread per connection.
#pragma once

#include <cstddef>
#include <string>

class LineReader {
public:
    enum class Status { line, too_long, closed };

    explicit LineReader(int fd, std::size_t max_line) : fd_(fd), max_line_(max_line) {}

    // The next line without its "\n" or "\r\n". A line longer than max_line
    // is read to its end and dropped (too_long). closed: end of stream or error.
    Status read_line(std::string& line);

    // Exactly n bytes into out; false if the stream ends first.
    bool read_exactly(std::size_t n, std::string& out);

    // Reads n bytes and drops them, without holding them all in memory.
    bool skip(std::size_t n);

private:
    bool fill();                 // one read(); false at end of stream or error
    std::size_t buffered() const { return buffer_.size() - start_; }
    void consume(std::size_t n);

    int fd_;
    std::size_t max_line_;
    std::string buffer_;         // bytes read; those before start_ are handed out
    std::size_t start_ = 0;
};
