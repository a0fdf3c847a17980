#include "common/wdb_store.h"

#include "common/wdb_table.h"

static Bucket table[NBUCKETS];

static void do_get(const Request& request, std::string& reply) {
    for (const std::string& key : request.keys)
        if (Item* item = find_item(table[bucket_of(key)], key))
            append_value(reply, item->key, item->flags, item->value);
    if (request.last_part)
        reply += "END\r\n";
}

static void do_set(const Request& request, std::string& reply) {
    const std::string& key = request.keys[0];
    store_item(table[bucket_of(key)], key, request.flags, request.data);
    reply += "STORED\r\n";
}

static void do_delete(const Request& request, std::string& reply) {
    const std::string& key = request.keys[0];
    reply += erase_item(table[bucket_of(key)], key) ? "DELETED\r\n" : "NOT_FOUND\r\n";
}

static void do_exch(const Request& request, std::string& reply) {
    const std::string& key1 = request.keys[0];
    const std::string& key2 = request.keys[1];
    bool exchanged = exchange_items(table[bucket_of(key1)], key1, table[bucket_of(key2)], key2);
    reply += exchanged ? "EXCHANGED\r\n" : "NOT_FOUND\r\n";
}

void run_request(const Request& request, std::string& reply) {
    switch (request.command) {
    case Command::get: do_get(request, reply); break;
    case Command::set: do_set(request, reply); break;
    case Command::del: do_delete(request, reply); break;
    case Command::exch: do_exch(request, reply); break;
    case Command::invalid: reply += request.error; break;
    }
}
