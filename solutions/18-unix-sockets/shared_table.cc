// shared_table.cc: see shared_table.h. Nothing here is the lesson's topic;
// read it for how a table lives in shared memory, or skip it.
#include "shared_table.h"

#include "common/errors.h"
#include "common/wdb_table.h"   // bucket_of, NBUCKETS: the course's hash

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <pthread.h>
#include <sys/mman.h>

namespace {

using Offset = std::uint64_t;   // bytes from the start of the mapping; 0 = none

// Blocks come in sizes 64 << k: a freed block goes on the free list of its
// size and is used again for the next request of that size.
constexpr int NCLASSES = 16;                  // 64 B .. 2 MiB
constexpr std::size_t SMALLEST = 64;

struct Entry {
    Offset next;               // the next item of its bucket
    Offset value;              // the value's block
    std::uint32_t value_size;
    std::uint32_t flags;
    std::uint32_t key_size;
    char key[MAX_KEY];
};

struct Header {
    pthread_mutex_t lock;
    Offset bucket[NBUCKETS];   // the first item of each bucket
    Offset free_list[NCLASSES];
    Offset used;               // the first byte never handed out
    Offset size;               // the mapping's size
};

char* base = nullptr;

Header& header() { return *reinterpret_cast<Header*>(base); }
template <class T> T* at(Offset offset) { return reinterpret_cast<T*>(base + offset); }

int size_class(std::size_t bytes) {
    int k = 0;
    while ((SMALLEST << k) < bytes)
        ++k;
    return k;
}

// A block of at least `bytes`, or 0 when the mapping is full.
Offset allocate(std::size_t bytes) {
    int k = size_class(bytes);
    Header& h = header();
    if (Offset block = h.free_list[k]) {
        h.free_list[k] = *at<Offset>(block);
        return block;
    }
    if (h.used + (SMALLEST << k) > h.size)
        return 0;
    Offset block = h.used;
    h.used += SMALLEST << k;
    return block;
}

void release(Offset block, std::size_t bytes) {
    int k = size_class(bytes);
    *at<Offset>(block) = header().free_list[k];
    header().free_list[k] = block;
}

// The link that points at key's item (a bucket head or an item's next), or
// the null link at the end of the bucket.
Offset* find_link(std::string_view key) {
    Offset* link = &header().bucket[bucket_of(key)];
    while (*link) {
        Entry* item = at<Entry>(*link);
        if (std::string_view(item->key, item->key_size) == key)
            return link;
        link = &item->next;
    }
    return link;
}

Entry* find(std::string_view key) {
    Offset offset = *find_link(key);
    return offset ? at<Entry>(offset) : nullptr;
}

void remove(std::string_view key) {
    Offset* link = find_link(key);
    if (Offset offset = *link) {
        Entry* item = at<Entry>(offset);
        *link = item->next;
        release(item->value, item->value_size);
        release(offset, sizeof(Entry));
    }
}

bool store(const Request& request) {
    Offset offset = allocate(sizeof(Entry));
    Offset value = offset ? allocate(request.data.size()) : 0;
    if (!value) {
        if (offset)
            release(offset, sizeof(Entry));
        return false;
    }
    remove(request.keys[0]);
    Entry* item = at<Entry>(offset);
    std::memcpy(at<char>(value), request.data.data(), request.data.size());
    item->value = value;
    item->value_size = static_cast<std::uint32_t>(request.data.size());
    item->flags = request.flags;
    item->key_size = static_cast<std::uint32_t>(request.keys[0].size());
    std::memcpy(item->key, request.keys[0].data(), request.keys[0].size());
    Offset* head = &header().bucket[bucket_of(request.keys[0])];
    item->next = *head;
    *head = offset;     // linked last: a worker killed before this leaks a block, nothing worse
    return true;
}

// The table's one lock. A worker killed while holding it left it "owner
// dead": the next locker is told (EOWNERDEAD), marks it usable again and
// goes on. Every change above links its item in one store, so the table
// itself is whole.
struct TableLock {
    TableLock() {
        if (pthread_mutex_lock(&header().lock) == EOWNERDEAD)
            pthread_mutex_consistent(&header().lock);
    }
    ~TableLock() { pthread_mutex_unlock(&header().lock); }
};

}  // namespace

void shared_table_create(std::size_t mib) {
    std::size_t size = mib << 20;
    void* p = mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (p == MAP_FAILED)
        die("mmap");
    base = static_cast<char*>(p);   // zero-filled: every bucket and free list empty
    Header& h = header();
    h.size = size;
    h.used = (sizeof(Header) + SMALLEST - 1) / SMALLEST * SMALLEST;
    pthread_mutexattr_t attributes;
    pthread_mutexattr_init(&attributes);
    pthread_mutexattr_setpshared(&attributes, PTHREAD_PROCESS_SHARED);
    pthread_mutexattr_setrobust(&attributes, PTHREAD_MUTEX_ROBUST);
    pthread_mutex_init(&h.lock, &attributes);
    pthread_mutexattr_destroy(&attributes);
}

void shared_table_run(const Request& request, std::string& reply) {
    TableLock lock;
    switch (request.command) {
    case Command::get:
        for (const std::string& key : request.keys)
            if (Entry* item = find(key))
                append_value(reply, key, item->flags, std::string_view(at<char>(item->value), item->value_size));
        if (request.last_part)
            reply += "END\r\n";
        break;
    case Command::set:
        reply += store(request) ? "STORED\r\n" : "SERVER_ERROR out of memory storing object\r\n";
        break;
    case Command::del:
        if (find(request.keys[0])) {
            remove(request.keys[0]);
            reply += "DELETED\r\n";
        } else {
            reply += "NOT_FOUND\r\n";
        }
        break;
    case Command::exch: {
        Entry* a = find(request.keys[0]);
        Entry* b = find(request.keys[1]);
        if (a && b) {
            std::swap(a->value, b->value);
            std::swap(a->value_size, b->value_size);
            std::swap(a->flags, b->flags);
        }
        reply += a && b ? "EXCHANGED\r\n" : "NOT_FOUND\r\n";
        break;
    }
    case Command::invalid:
        reply += request.error;
        break;
    }
}
