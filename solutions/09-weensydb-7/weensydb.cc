// WeensyDB version 7: exch takes a bucket's lock only once.
//
//   usage: weensydb -p PORT [-b ADDRESS]   (-p 0: any free port; prints "port N")
//
// Version 6 hung on `exch a b` when a and b share a bucket: its thread
// locked the same mutex twice. Here the second lock is skipped when both
// keys are in one bucket.
//
// Still wrong: `exch a b` locks a's bucket then b's, while `exch b a`
// locks b's then a's. Run both at once and each thread can end up holding
// the mutex the other waits for, for ever (ABBA). Lesson 10 fixes it.
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
    const std::string& key1 = request.keys[0];
    const std::string& key2 = request.keys[1];
    std::size_t b1 = bucket_of(key1);
    std::size_t b2 = bucket_of(key2);
    // BEGIN TODO 1: when b1 == b2 there is only one mutex to take: take
    // (and release) the second one only when the buckets differ.
    //| bucket_mutex[b1].lock();
    //| bucket_mutex[b2].lock();
    //| bool exchanged = exchange_items(table[b1], key1, table[b2], key2);
    //| bucket_mutex[b2].unlock();
    //| bucket_mutex[b1].unlock();
    bucket_mutex[b1].lock();
    if (b2 != b1)
        bucket_mutex[b2].lock();
    bool exchanged = exchange_items(table[b1], key1, table[b2], key2);
    if (b2 != b1)
        bucket_mutex[b2].unlock();
    bucket_mutex[b1].unlock();
    // END TODO 1
    reply += exchanged ? "EXCHANGED\r\n" : "NOT_FOUND\r\n";
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
