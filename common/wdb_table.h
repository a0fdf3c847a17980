// wdb_table.h: WeensyDB's hash table, as in the source text: 1024 buckets,
// each a list of items whose keys hash to that bucket.
//
// These functions do no locking at all: which lock protects which bucket
// is exactly what lessons 04-10 are about, so each version's file says it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <list>
#include <string>
#include <string_view>

constexpr std::size_t NBUCKETS = 1024;

struct Item {
    std::string key;
    std::string value;
    std::uint32_t flags = 0;
};

using Bucket = std::list<Item>;

// The bucket a key lives in: FNV-1a, modulo NBUCKETS.
std::size_t bucket_of(std::string_view key);

// The item with this key in bucket, or nullptr.
Item* find_item(Bucket& bucket, std::string_view key);

// Stores value and flags under key, replacing an existing item.
void store_item(Bucket& bucket, std::string_view key, std::uint32_t flags, std::string value);

// Removes key from bucket; false if it was not there.
bool erase_item(Bucket& bucket, std::string_view key);

// Swaps the values (and flags) of two items, which may live in the same
// bucket or in two. False, and nothing changed, if either key is missing.
bool exchange_items(Bucket& bucket1, std::string_view key1, Bucket& bucket2, std::string_view key2);
