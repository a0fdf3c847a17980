// wdb_store.h: the WeensyDB table of the single-threaded servers (lessons 12-14).
//
// An event-loop server runs every request on its one thread, one after the
// other, so the table needs no lock at all: the locking story of lessons
// 04-10 ends here. Each request is run whole, as soon as it is complete.
#pragma once

#include "common/wdb_protocol.h"

#include <string>

// Runs one complete request against the table; appends its answer to reply.
// Not thread-safe, on purpose: call it from one thread only.
void run_request(const Request& request, std::string& reply);
