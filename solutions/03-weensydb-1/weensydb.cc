// WeensyDB version 1: a key-value server, one client at a time.
//
//   usage: weensydb -p PORT [-b ADDRESS]   (-p 0: any free port; prints "port N")
//
// It speaks a subset of memcached's text protocol (set, get, delete) plus
// the course's own exch; common/wdb_protocol.h has the details. The data
// lives in a hash table of 1024 buckets (common/wdb_table.h).
//
// main() accepts a client and serves it until it hangs up; only then does
// it accept the next one. A client that never hangs up stops everyone else.
#include "common/io.h"
#include "common/server.h"
#include "common/wdb_request.h"
#include "common/wdb_table.h"

#include <unistd.h>

static Bucket table[NBUCKETS];

static void do_get(const Request& request, std::string& reply) {
    // BEGIN TODO 1: for each key asked for, append a VALUE block if the table
    // has it (append_value); then "END\r\n" if this is the get's last part
    // (request.last_part). Missing keys are simply left out.
    //| (void)request;
    //| reply += "SERVER_ERROR get is not written yet\r\n";
    for (const std::string& key : request.keys) {
        Bucket& bucket = table[bucket_of(key)];
        if (Item* item = find_item(bucket, key))
            append_value(reply, item->key, item->flags, item->value);
    }
    if (request.last_part)   // a long get comes in parts: END after the last
        reply += "END\r\n";
    // END TODO 1
}

static void do_set(const Request& request, std::string& reply) {
    // BEGIN TODO 2: store request.data under request.keys[0] with
    // request.flags (store_item, in the key's bucket), reply "STORED\r\n".
    //| (void)request;
    //| reply += "SERVER_ERROR set is not written yet\r\n";
    const std::string& key = request.keys[0];
    store_item(table[bucket_of(key)], key, request.flags, request.data);
    reply += "STORED\r\n";
    // END TODO 2
}

static void do_delete(const Request& request, std::string& reply) {
    const std::string& key = request.keys[0];
    bool deleted = erase_item(table[bucket_of(key)], key);
    reply += deleted ? "DELETED\r\n" : "NOT_FOUND\r\n";
}

static void do_exch(const Request& request, std::string& reply) {
    const std::string& key1 = request.keys[0];
    const std::string& key2 = request.keys[1];
    bool exchanged = exchange_items(table[bucket_of(key1)], key1, table[bucket_of(key2)], key2);
    reply += exchanged ? "EXCHANGED\r\n" : "NOT_FOUND\r\n";
}

// Runs one complete request against the table; appends its answer to reply.
static void execute(const Request& request, std::string& reply) {
    switch (request.command) {
    case Command::get: do_get(request, reply); break;
    case Command::set: do_set(request, reply); break;
    case Command::del: do_delete(request, reply); break;
    case Command::exch: do_exch(request, reply); break;
    case Command::invalid: reply += request.error; break;
    }
}

// Serves one client until it closes the connection.
static void handle_connection(int client) {
    RequestReader in(client);
    Request request;
    // BEGIN TODO 3: read requests until the client hangs up (read_request
    // returns false); execute each and write its reply (write_all), unless
    // the request said noreply. A failed write means the client is gone.
    //| if (read_request(in, request)) {
    //|     std::string reply;
    //|     execute(request, reply);   // ...and the reply goes nowhere
    //| }
    while (read_request(in, request)) {
        std::string reply;
        execute(request, reply);
        if (!request.noreply && !write_all(client, reply.data(), reply.size()))
            break;
    }
    // END TODO 3
    close(client);
}

int main(int argc, char** argv) {
    ServerOptions options = parse_server_options(argc, argv);
    stop_on_signals();
    int listener = listen_tcp(options);
    announce_port(listener);
    while (true) {
        int client = accept_client(listener);
        handle_connection(client);
    }
}
