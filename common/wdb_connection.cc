#include "common/wdb_connection.h"

#include "common/wdb_store.h"

#include <algorithm>

static Request refusal(const char* reply_line) {
    Request request;
    request.error = reply_line;
    return request;
}

std::string_view Connection::unsent_output() const {
    return std::string_view(output_).substr(output_sent_);
}

void Connection::sent(std::size_t n) {
    output_sent_ += n;
    // Drop what is written: all of it at once, or a large prefix now and then.
    if (output_sent_ == output_.size() || output_sent_ > MAX_PENDING_OUTPUT) {
        output_.erase(0, output_sent_);
        output_sent_ = 0;
    }
}

bool Connection::finished() const {
    return input_closed_ && !has_output() && !held_back_;
}

void Connection::run_requests() {
    std::size_t used = 0;
    held_back_ = false;
    while (true) {
        if (pending_output() >= MAX_PENDING_OUTPUT) {
            held_back_ = used < input_.size();   // run the rest once output drains
            break;
        }
        if (!step(std::string_view(input_).substr(used), used))
            break;
    }
    input_.erase(0, used);
}

// One step of the parser over the bytes not yet used. Adds what it consumed
// to used; false when it needs more bytes to go on.
bool Connection::step(std::string_view buffered, std::size_t& used) {
    switch (stage_) {
    case Stage::command_line:
        return take_command_line(buffered, used);
    case Stage::data_block:
        return take_data_block(buffered, used);
    case Stage::skip_block: {
        std::size_t dropped = std::min(skip_left_, buffered.size());
        skip_left_ -= dropped;
        used += dropped;
        if (skip_left_ > 0)
            return false;
        stage_ = Stage::skip_line;   // the block's own line end, whatever it holds
        return true;
    }
    case Stage::skip_line: {
        std::size_t newline = buffered.find('\n');
        if (newline == std::string_view::npos) {
            used += buffered.size();
            return false;
        }
        used += newline + 1;
        finish(pending_);            // the error line for what was skipped
        stage_ = Stage::command_line;
        return true;
    }
    }
    return false;
}

// Without its \r, is the line from 0 to newline too long to be a command?
static bool too_long(std::string_view buffered, std::size_t newline) {
    bool has_cr = newline > 0 && buffered[newline - 1] == '\r';
    return newline - has_cr > MAX_LINE;
}

bool Connection::take_command_line(std::string_view buffered, std::size_t& used) {
    std::size_t newline = buffered.find('\n');
    if (newline == std::string_view::npos) {
        if (buffered.size() > MAX_LINE + 1) {   // no end in sight: stop keeping this line
            pending_ = refusal("CLIENT_ERROR line too long\r\n");
            stage_ = Stage::skip_line;
            return true;
        }
        return false;
    }
    used += newline + 1;
    if (too_long(buffered, newline)) {
        finish(refusal("CLIENT_ERROR line too long\r\n"));
        return true;
    }
    std::string_view line = buffered.substr(0, newline);
    if (!line.empty() && line.back() == '\r')
        line.remove_suffix(1);
    Request request = parse_request_line(line);
    if (request.command == Command::set) {
        pending_ = std::move(request);
        stage_ = Stage::data_block;
    } else if (request.discard_block) {
        pending_ = std::move(request);   // answered once its block is dropped
        skip_left_ = pending_.bytes;
        stage_ = Stage::skip_block;
    } else {
        finish(request);
    }
    return true;
}

// A set's data block: `bytes` bytes, then an empty line ("\r\n" or "\n").
bool Connection::take_data_block(std::string_view buffered, std::size_t& used) {
    std::size_t bytes = pending_.bytes;
    if (buffered.size() < bytes)
        return false;
    std::string_view after = buffered.substr(bytes);
    std::size_t newline = after.find('\n');
    if (newline == std::string_view::npos) {
        if (after.size() > MAX_LINE + 1) {      // a line end that never ends
            used += buffered.size();
            pending_ = refusal("CLIENT_ERROR bad data chunk\r\n");
            stage_ = Stage::skip_line;
            return true;
        }
        return false;
    }
    used += bytes + newline + 1;
    bool clean = newline == 0 || (newline == 1 && after[0] == '\r');
    if (clean) {
        pending_.data.assign(buffered.substr(0, bytes));
        finish(pending_);
    } else {
        finish(refusal("CLIENT_ERROR bad data chunk\r\n"));   // more bytes than it said
    }
    stage_ = Stage::command_line;
    return true;
}

// Runs a whole request and queues its reply (unless the client said noreply).
void Connection::finish(const Request& request) {
    std::string reply;
    run_request(request, reply);
    if (!request.noreply)
        output_ += reply;
}
