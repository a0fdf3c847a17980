// WeensyDB version 2: a thread per connection.
//
//   usage: weensydb -p PORT [-b ADDRESS]   (-p 0: any free port; prints "port N")
//
// Version 1 served one client at a time. Here main() hands every client
// to a thread of its own and goes straight back to accept(), so a client
// that never hangs up no longer stops the others.
//
// The catch: all those threads read and change one table, with nothing to
// keep them apart. Two `set`s on the same bucket at the same moment can
// corrupt its list. ThreadSanitizer reports this data race; version 3
// (lesson 05) is the first fix.
#include "common/io.h"
#include "common/server.h"
#include "common/wdb_request.h"
#include "common/wdb_table.h"

#include <thread>
#include <unistd.h>

static Bucket table[NBUCKETS];   // every connection's thread uses it: unprotected!

static void do_get(const Request& request, std::string& reply) {
    for (const std::string& key : request.keys) {
        Bucket& bucket = table[bucket_of(key)];
        if (Item* item = find_item(bucket, key))
            append_value(reply, item->key, item->flags, item->value);
    }
    if (request.last_part)   // a long get comes in parts: END after the last
        reply += "END\r\n";
}

static void do_set(const Request& request, std::string& reply) {
    const std::string& key = request.keys[0];
    store_item(table[bucket_of(key)], key, request.flags, request.data);
    reply += "STORED\r\n";
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
    while (read_request(in, request)) {
        std::string reply;
        execute(request, reply);
        if (!request.noreply && !write_all(client, reply.data(), reply.size()))
            break;
    }
    close(client);
}

int main(int argc, char** argv) {
    ServerOptions options = parse_server_options(argc, argv);
    stop_on_signals();
    int listener = listen_tcp(options);
    announce_port(listener);
    while (true) {
        int client = accept_client(listener);
        // TODO 1: serve the client on a thread of its own (a std::thread
        // running handle_connection), and detach it: nobody waits for it to
        // end, and main() must go straight back to accept the next client.
        handle_connection(client);
    }
}
