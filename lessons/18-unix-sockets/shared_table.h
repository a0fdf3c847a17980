// shared_table.h: WeensyDB's table in memory that every worker process shares.
//
// The prefork server hands whole connections to workers, never single
// requests, so any worker may get a `set` of any key and any other worker the
// `get` that must see it. Each worker owning a shard of the keys would need
// the acceptor to route by key, which it cannot: it passes a connection
// before a single request has arrived. So there is one table, in a
// MAP_SHARED mapping made before the first fork(): every worker sees the
// same pages at the same address. std::list and std::string allocate from
// each process's private heap, so the table here is built from offsets into
// the mapping, with a small allocator of its own.
//
// One process-shared, robust mutex guards it: process-shared so that it
// works across fork(), robust so that a worker killed with -9 while holding
// it does not hang every other worker (the next pthread_mutex_lock returns
// EOWNERDEAD instead).
#pragma once

#include "common/wdb_protocol.h"

#include <string>

// Maps the table (MIB mebibytes of address space, reserved lazily). Call it
// once, in the acceptor, before the workers are forked.
void shared_table_create(std::size_t mib);

// Runs one complete request against the shared table; appends its answer to reply.
void shared_table_run(const Request& request, std::string& reply);
