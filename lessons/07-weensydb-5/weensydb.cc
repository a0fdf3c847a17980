// WeensyDB version 5: a mutex per bucket.
//
//   usage: weensydb -p PORT [-b ADDRESS]   (-p 0: any free port; prints "port N")
//
// Version 4's one mutex lets one request at a time use the table, even
// when two requests could never meet: keys in different buckets live in
// different lists. Here bucket b has a mutex of its own, and a request
// locks only the bucket of its key, so requests on different buckets run
// at the same time (`make bench-weensydb` measures what that buys).
//
// exch needs two buckets locked at once. That is harder than it looks:
// lesson 08 takes it on. Until then this version refuses it.
#include "common/io.h"
#include "common/server.h"
#include "common/wdb_request.h"
#include "common/wdb_table.h"

#include <mutex>
#include <thread>
#include <unistd.h>

static Bucket table[NBUCKETS];
// TODO 1: one mutex per bucket instead of one for the table:
// bucket_mutex[b] protects table[b].
static std::mutex table_mutex;   // protects table

static void do_get(const Request& request, std::string& reply) {
    for (const std::string& key : request.keys) {
        // TODO 3: lock the key's bucket while looking in it.
        Bucket& bucket = table[bucket_of(key)];
        if (Item* item = find_item(bucket, key))
            append_value(reply, item->key, item->flags, item->value);
    }
    if (request.last_part)   // a long get comes in parts: END after the last
        reply += "END\r\n";
}

static void do_set(const Request& request, std::string& reply) {
    const std::string& key = request.keys[0];
    // TODO 4: lock the key's bucket while storing the item.
    store_item(table[bucket_of(key)], key, request.flags, request.data);
    reply += "STORED\r\n";
}

static void do_delete(const Request& request, std::string& reply) {
    const std::string& key = request.keys[0];
    // TODO 5: lock the key's bucket while removing the item.
    bool deleted = erase_item(table[bucket_of(key)], key);
    reply += deleted ? "DELETED\r\n" : "NOT_FOUND\r\n";
}

// exch must hold two buckets' locks at once: lesson 08.
static void do_exch(const Request& request, std::string& reply) {
    // TODO 6: without table_mutex, exch would race. Refuse it for now:
    // append "SERVER_ERROR exch is not supported yet\r\n" to the reply.
    const std::string& key1 = request.keys[0];
    const std::string& key2 = request.keys[1];
    bool exchanged = exchange_items(table[bucket_of(key1)], key1, table[bucket_of(key2)], key2);
    reply += exchanged ? "EXCHANGED\r\n" : "NOT_FOUND\r\n";
}

// Runs one complete request against the table; appends its answer to reply.
// The request is complete before any lock is taken, and the reply is
// written after every lock is released: no network I/O with a mutex held.
static void execute(const Request& request, std::string& reply) {
    // TODO 2: the table-wide lock goes: each do_ function locks the
    // bucket it uses (TODO 3-5).
    std::lock_guard guard(table_mutex);
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
        std::thread(handle_connection, client).detach();
    }
}
