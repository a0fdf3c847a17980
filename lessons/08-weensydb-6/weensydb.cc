// WeensyDB version 6: exch, locking both buckets.
//
//   usage: weensydb -p PORT [-b ADDRESS]   (-p 0: any free port; prints "port N")
//
// exch swaps the values of two keys, which may live in two buckets, so it
// must hold both buckets' mutexes at once. This version simply locks the
// first key's bucket, then the second's.
//
// Two ways that goes wrong: `exch a b` where a and b share a bucket locks
// one mutex twice, and a std::mutex locked twice by the same thread never
// comes back; and `exch a b` at the same time as `exch b a` can leave each
// thread holding the mutex the other one waits for. Lessons 09 and 10.
#include "common/io.h"
#include "common/server.h"
#include "common/wdb_request.h"
#include "common/wdb_table.h"

#include <mutex>
#include <thread>
#include <unistd.h>

static Bucket table[NBUCKETS];
static std::mutex bucket_mutex[NBUCKETS];   // bucket_mutex[b] protects table[b]

static void do_get(const Request& request, std::string& reply) {
    for (const std::string& key : request.keys) {
        std::size_t b = bucket_of(key);
        std::lock_guard guard(bucket_mutex[b]);
        Bucket& bucket = table[b];
        if (Item* item = find_item(bucket, key))
            append_value(reply, item->key, item->flags, item->value);
    }
    if (request.last_part)   // a long get comes in parts: END after the last
        reply += "END\r\n";
}

static void do_set(const Request& request, std::string& reply) {
    const std::string& key = request.keys[0];
    std::size_t b = bucket_of(key);
    std::lock_guard guard(bucket_mutex[b]);
    store_item(table[b], key, request.flags, request.data);
    reply += "STORED\r\n";
}

static void do_delete(const Request& request, std::string& reply) {
    const std::string& key = request.keys[0];
    std::size_t b = bucket_of(key);
    std::lock_guard guard(bucket_mutex[b]);
    bool deleted = erase_item(table[b], key);
    reply += deleted ? "DELETED\r\n" : "NOT_FOUND\r\n";
}

static void do_exch(const Request& request, std::string& reply) {
    // TODO 1: lock the bucket of key 1, then the bucket of key 2
    // (bucket_mutex[b].lock()), exchange the items, unlock both, and reply
    // EXCHANGED or NOT_FOUND.
    (void)request;
    reply += "SERVER_ERROR exch is not supported yet\r\n";
}

// Runs one complete request against the table; appends its answer to reply.
// The request is complete before any lock is taken, and the reply is
// written after every lock is released: no network I/O with a mutex held.
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
        std::thread(handle_connection, client).detach();
    }
}
