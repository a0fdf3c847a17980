#include "common/line_reader.h"

#include <algorithm>
#include <cerrno>
#include <unistd.h>

bool LineReader::fill() {
    // Drop what was handed out before growing the buffer.
    if (start_ > 0) {
        buffer_.erase(0, start_);
        start_ = 0;
    }
    char chunk[16384];
    ssize_t n;
    do {
        n = read(fd_, chunk, sizeof(chunk));
    } while (n < 0 && errno == EINTR);
    if (n <= 0)
        return false;
    buffer_.append(chunk, static_cast<std::size_t>(n));
    return true;
}

void LineReader::consume(std::size_t n) {
    start_ += n;
    if (start_ == buffer_.size()) {
        buffer_.clear();
        start_ = 0;
    }
}

LineReader::Status LineReader::read_line(std::string& line) {
    std::size_t searched = 0;
    bool too_long = false;
    while (true) {
        std::size_t newline = buffer_.find('\n', start_ + searched);
        if (newline != std::string::npos) {
            std::size_t length = newline - start_;
            bool has_cr = length > 0 && buffer_[newline - 1] == '\r';
            if (too_long || length - has_cr > max_line_) {   // the \r does not count
                consume(length + 1);
                return Status::too_long;
            }
            line.assign(buffer_, start_, length);
            if (!line.empty() && line.back() == '\r')
                line.pop_back();
            consume(length + 1);
            return Status::line;
        }
        if (buffered() > max_line_ + 1) {   // no end in sight: stop storing this line
            too_long = true;
            consume(buffered());
        }
        searched = buffered();
        if (!fill())
            return Status::closed;
    }
}

bool LineReader::read_exactly(std::size_t n, std::string& out) {
    while (buffered() < n)
        if (!fill())
            return false;
    out.assign(buffer_, start_, n);
    consume(n);
    return true;
}

bool LineReader::skip(std::size_t n) {
    while (n > 0) {
        if (buffered() == 0 && !fill())
            return false;
        std::size_t step = std::min(n, buffered());
        consume(step);
        n -= step;
    }
    return true;
}
