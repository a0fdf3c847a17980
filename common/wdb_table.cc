#include "common/wdb_table.h"

#include <utility>

std::size_t bucket_of(std::string_view key) {
    std::uint64_t hash = 14695981039346656037ull;   // FNV-1a, 64 bits
    for (unsigned char c : key) {
        hash ^= c;
        hash *= 1099511628211ull;
    }
    return hash % NBUCKETS;
}

Item* find_item(Bucket& bucket, std::string_view key) {
    for (Item& item : bucket)
        if (item.key == key)
            return &item;
    return nullptr;
}

void store_item(Bucket& bucket, std::string_view key, std::uint32_t flags, std::string value) {
    Item* item = find_item(bucket, key);
    if (item == nullptr)
        item = &bucket.emplace_back(Item{std::string(key), {}, 0});
    item->value = std::move(value);
    item->flags = flags;
}

bool erase_item(Bucket& bucket, std::string_view key) {
    for (auto it = bucket.begin(); it != bucket.end(); ++it) {
        if (it->key == key) {
            bucket.erase(it);
            return true;
        }
    }
    return false;
}

bool exchange_items(Bucket& bucket1, std::string_view key1, Bucket& bucket2, std::string_view key2) {
    Item* item1 = find_item(bucket1, key1);
    Item* item2 = find_item(bucket2, key2);
    if (item1 == nullptr || item2 == nullptr)
        return false;
    std::swap(item1->value, item2->value);
    std::swap(item1->flags, item2->flags);
    return true;
}
