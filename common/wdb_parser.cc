#include "common/wdb_parser.h"

#include <algorithm>
#include <iterator>
#include <utility>

static Request refusal(const char* reply_line, bool noreply) {
    Request request;
    request.error = reply_line;
    request.noreply = noreply;
    return request;
}

RequestParser::RequestParser(std::size_t keys_per_part)
    : keys_per_part_(std::max<std::size_t>(keys_per_part, 1)) {}

void RequestParser::feed(const char* data, std::size_t n) {
    input_.erase(0, start_);   // drop what is used up before adding more
    start_ = 0;
    input_.append(data, n);
}

void RequestParser::consume(std::size_t n) {
    start_ += n;
    if (start_ == input_.size()) {   // all used up: start afresh, keeping the memory
        input_.clear();
        start_ = 0;
    }
}

bool RequestParser::next(Request& request) {
    if (next_key_ < get_keys_.size()) {   // a long get's next part
        take_get_part(request);
        return true;
    }
    Step step;
    while ((step = take_step(request)) == Step::went_on) {
    }
    if (step == Step::need_bytes)
        return false;
    if (request.command == Command::get && request.keys.size() > keys_per_part_)
        split_get(request);
    return true;
}

// One step of the parser over the bytes not yet used.
RequestParser::Step RequestParser::take_step(Request& request) {
    switch (stage_) {
    case Stage::command_line:
        return take_command_line(request);
    case Stage::data_block:
        return take_data_block(request);
    case Stage::skip_block:
        return skip_block();
    case Stage::skip_line:
        return skip_line(request);
    }
    return Step::need_bytes;
}

RequestParser::Step RequestParser::take_command_line(Request& request) {
    std::string_view buffered = unused();
    std::size_t newline = buffered.find('\n');
    if (newline == std::string_view::npos) {
        if (buffered.size() <= MAX_LINE + 1)   // (+1: a line may end in \r\n)
            return Step::need_bytes;
        pending_ = refusal(error_line::line_too_long, false);   // no end in sight:
        stage_ = Stage::skip_line;                               // stop keeping this line
        return Step::went_on;
    }
    std::string_view line = buffered.substr(0, newline);
    if (!line.empty() && line.back() == '\r')
        line.remove_suffix(1);
    Request parsed = line.size() > MAX_LINE ? refusal(error_line::line_too_long, false)
                                            : parse_request_line(line);
    consume(newline + 1);
    if (parsed.command == Command::set) {
        pending_ = std::move(parsed);
        stage_ = Stage::data_block;
        return Step::went_on;
    }
    if (parsed.discard_block) {
        pending_ = std::move(parsed);   // answered once its block is dropped
        skip_left_ = pending_.bytes;
        stage_ = Stage::skip_block;
        return Step::went_on;
    }
    request = std::move(parsed);
    return Step::request;
}

// A set's data block: `bytes` bytes, then an empty line ("\r\n" or "\n").
RequestParser::Step RequestParser::take_data_block(Request& request) {
    std::string_view buffered = unused();
    std::size_t bytes = pending_.bytes;
    if (buffered.size() < bytes)
        return Step::need_bytes;
    std::string_view after = buffered.substr(bytes);
    std::size_t newline = after.find('\n');
    if (newline == std::string_view::npos) {
        if (after.size() <= MAX_LINE + 1)
            return Step::need_bytes;
        // A line end that never ends: drop it as it comes, then refuse the set.
        pending_ = refusal(error_line::bad_data_chunk, pending_.noreply);
        consume(buffered.size());
        stage_ = Stage::skip_line;
        return Step::went_on;
    }
    bool clean = newline == 0 || (newline == 1 && after[0] == '\r');
    if (clean) {
        pending_.data.assign(buffered.substr(0, bytes));
        request = std::move(pending_);
    } else {
        // More bytes than the line said: store nothing, say so.
        request = refusal(error_line::bad_data_chunk, pending_.noreply);
    }
    consume(bytes + newline + 1);
    stage_ = Stage::command_line;
    return Step::request;
}

// A refused set's data block, dropped as it arrives.
RequestParser::Step RequestParser::skip_block() {
    std::size_t dropped = std::min(skip_left_, buffered());
    consume(dropped);
    skip_left_ -= dropped;
    if (skip_left_ > 0)
        return Step::need_bytes;
    stage_ = Stage::skip_line;   // the block's own line end, whatever it holds
    return Step::went_on;
}

// The rest of a line, dropped; then the refusal waiting in pending_.
RequestParser::Step RequestParser::skip_line(Request& request) {
    std::size_t newline = unused().find('\n');
    if (newline == std::string_view::npos) {
        consume(buffered());
        return Step::need_bytes;
    }
    consume(newline + 1);
    request = std::move(pending_);
    stage_ = Stage::command_line;
    return Step::request;
}

// Keeps a long get's keys, and hands out its first part in request.
void RequestParser::split_get(Request& request) {
    get_keys_ = std::move(request.keys);
    next_key_ = 0;
    take_get_part(request);
}

void RequestParser::take_get_part(Request& part) {
    std::size_t n = std::min(keys_per_part_, get_keys_.size() - next_key_);
    auto first = get_keys_.begin() + static_cast<std::ptrdiff_t>(next_key_);
    part = Request();
    part.command = Command::get;
    part.keys.assign(std::make_move_iterator(first), std::make_move_iterator(first + static_cast<std::ptrdiff_t>(n)));
    next_key_ += n;
    part.last_part = next_key_ == get_keys_.size();
    if (part.last_part) {
        get_keys_.clear();
        next_key_ = 0;
    }
}
