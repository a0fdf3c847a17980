#include "common/wdb_connection.h"

#include "common/wdb_store.h"

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
    Request request;
    while (pending_output() < MAX_PENDING_OUTPUT && input_.next(request))
        finish(request);
    // Stopped by the output limit, with something left: run it once output drains.
    held_back_ = pending_output() >= MAX_PENDING_OUTPUT && !input_.empty();
}

// Runs a whole request and queues its reply (unless the client said noreply).
void Connection::finish(const Request& request) {
    std::string reply;
    run_request(request, reply);
    if (!request.noreply)
        output_ += reply;
}
