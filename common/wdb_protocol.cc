#include "common/wdb_protocol.h"

#include <charconv>
#include <climits>

// Splits a command line at runs of spaces.
static std::vector<std::string_view> split_words(std::string_view line) {
    std::vector<std::string_view> words;
    std::size_t i = 0;
    while (i < line.size()) {
        while (i < line.size() && line[i] == ' ')
            ++i;
        std::size_t start = i;
        while (i < line.size() && line[i] != ' ')
            ++i;
        if (i > start)
            words.push_back(line.substr(start, i - start));
    }
    return words;
}

// A whole-word unsigned decimal number no larger than max.
static bool parse_number(std::string_view word, unsigned long long max, unsigned long long& out) {
    if (word.empty())
        return false;
    auto [end, error] = std::from_chars(word.data(), word.data() + word.size(), out);
    return error == std::errc() && end == word.data() + word.size() && out <= max;
}

// exptime is accepted for memcached clients' sake, and ignored: nothing expires.
static bool valid_exptime(std::string_view word) {
    long long ignored;
    auto [end, error] = std::from_chars(word.data(), word.data() + word.size(), ignored);
    return !word.empty() && error == std::errc() && end == word.data() + word.size();
}

bool valid_key(std::string_view key) {
    if (key.empty() || key.size() > MAX_KEY)
        return false;
    for (unsigned char c : key)
        if (c <= ' ' || c == 0x7f)
            return false;
    return true;
}

static Request invalid(const char* reply_line) {
    Request request;
    request.error = reply_line;
    return request;
}

// A refused set whose size was readable: its data block must still be read
// (and dropped), or the data would be taken for the next command.
static Request invalid_set(const char* reply_line, unsigned long long bytes) {
    Request request = invalid(reply_line);
    request.bytes = bytes;
    request.discard_block = true;
    return request;
}

static const char* key_problem(std::string_view key) {
    return key.size() > MAX_KEY ? error_line::key_too_long : error_line::bad_key;
}

// get <key>...
static Request parse_get(const std::vector<std::string_view>& words) {
    if (words.size() < 2)
        return invalid(error_line::unknown_command);
    Request request;
    for (std::size_t i = 1; i < words.size(); ++i) {
        if (!valid_key(words[i]))
            return invalid(key_problem(words[i]));
        request.keys.emplace_back(words[i]);
    }
    request.command = Command::get;
    return request;
}

// set <key> <flags> <exptime> <bytes> [noreply]   or   set <key> <bytes>
static Request parse_set(const std::vector<std::string_view>& words) {
    bool short_form = words.size() == 3;
    bool noreply = words.size() == 6 && words[5] == "noreply";
    if (!short_form && words.size() != 5 && !noreply)
        return invalid(error_line::bad_format);

    unsigned long long flags = 0, bytes = 0;
    std::string_view size_word = short_form ? words[2] : words[4];
    // Sizes past INT_MAX are nonsense, not just large: no data block to skip.
    if (!parse_number(size_word, INT_MAX - 2, bytes))
        return invalid(error_line::bad_format);
    if (!short_form && (!parse_number(words[2], UINT32_MAX, flags) || !valid_exptime(words[3])))
        return invalid_set(error_line::bad_format, bytes);
    if (!valid_key(words[1]))
        return invalid_set(key_problem(words[1]), bytes);
    if (bytes > MAX_VALUE)
        return invalid_set(error_line::too_large, bytes);

    Request request;
    request.command = Command::set;
    request.keys.emplace_back(words[1]);
    request.flags = static_cast<std::uint32_t>(flags);
    request.bytes = bytes;
    return request;
}

// delete <key> [noreply]
static Request parse_delete(const std::vector<std::string_view>& words) {
    bool noreply = words.size() == 3 && words[2] == "noreply";
    if (words.size() != 2 && !noreply)
        return invalid(error_line::bad_format);
    if (!valid_key(words[1]))
        return invalid(key_problem(words[1]));
    Request request;
    request.command = Command::del;
    request.keys.emplace_back(words[1]);
    return request;
}

// exch <key1> <key2>
static Request parse_exch(const std::vector<std::string_view>& words) {
    if (words.size() != 3)
        return invalid(error_line::bad_format);
    for (std::size_t i = 1; i < 3; ++i)
        if (!valid_key(words[i]))
            return invalid(key_problem(words[i]));
    Request request;
    request.command = Command::exch;
    request.keys = {std::string(words[1]), std::string(words[2])};
    return request;
}

static Request parse_words(const std::vector<std::string_view>& words) {
    if (words.empty())
        return invalid(error_line::unknown_command);
    if (words[0] == "get")
        return parse_get(words);
    if (words[0] == "set")
        return parse_set(words);
    if (words[0] == "delete")
        return parse_delete(words);
    if (words[0] == "exch")
        return parse_exch(words);
    return invalid(error_line::unknown_command);
}

// noreply in its place: the 6th word of a set, the 3rd of a delete.
static bool says_noreply(const std::vector<std::string_view>& words) {
    return (words.size() == 6 && words[0] == "set" && words[5] == "noreply") ||
           (words.size() == 3 && words[0] == "delete" && words[2] == "noreply");
}

Request parse_request_line(std::string_view line) {
    std::vector<std::string_view> words = split_words(line);
    Request request = parse_words(words);
    // A client that said noreply reads no reply, so it must get none, whatever
    // went wrong: an error line would be read as the answer to its next request
    // (memcached does the same).
    request.noreply = says_noreply(words);
    return request;
}

void append_value(std::string& reply, std::string_view key, std::uint32_t flags,
                  std::string_view data) {
    reply += "VALUE ";
    reply += key;
    reply += ' ';
    reply += std::to_string(flags);
    reply += ' ';
    reply += std::to_string(data.size());
    reply += "\r\n";
    reply += data;
    reply += "\r\n";
}
