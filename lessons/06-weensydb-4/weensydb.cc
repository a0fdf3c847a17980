// WeensyDB version 4: one mutex, held for one request at a time.
//
//   usage: weensydb -p PORT [-b ADDRESS]   (-p 0: any free port; prints "port N")
//
// Version 3 held the mutex while its thread waited for the client, so an
// idle or slow client blocked everyone. The rule this version follows:
// never hold a lock across network I/O. A thread reads a complete request
// (read_request blocks, but holds nothing), takes the mutex, runs the
// request against the table, releases the mutex, and only then writes the
// reply, which may block for as long as the client takes to read it.
#include "common/io.h"
#include "common/server.h"
#include "common/wdb_request.h"
#include "common/wdb_table.h"

#include <mutex>
#include <thread>
#include <unistd.h>

static Bucket table[NBUCKETS];
static std::mutex table_mutex;   // protects table

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
// The request is complete before the lock is taken, and the reply is
// written after it is released: no network I/O with the mutex held.
static void execute(const Request& request, std::string& reply) {
    // TODO 2: hold table_mutex while the request runs (a std::lock_guard).
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
    // TODO 1: a thread waiting for its client must not hold the
    // mutex: remove the lock from here (execute() will take it).
    std::lock_guard guard(table_mutex);   // held until this client hangs up
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
        std::thread(handle_connection, client).detach();
    }
}
