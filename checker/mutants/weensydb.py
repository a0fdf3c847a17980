"""Mutants of WeensyDB versions 1-8 (lessons 03-10).

Some bugs fit every version (a get reply without END, a parser that takes a
300-byte key); the rest bring back, or take away, the one thing a lesson is
about: each version's expected bug must disappear in a mutant that fixes it
(so the check that expects it fails), and each fixed version must be caught
when the bug comes back.

The student programs (student=True, at the end) are each version's TODOs written the
wrong way, as students write them when they do not copy the solution: a loop, a lock's
scope, an accept loop, an order of locks.
"""
from . import Mutant

FILE = "weensydb.cc"
GET_END = ('    if (request.last_part)   // a long get comes in parts: END after the last\n'
           '        reply += "END\\r\\n";\n')


def everywhere() -> list[Mutant]:
    return [
        Mutant("no-end", FILE, [(GET_END, "")],
               {"protocol": "never came whole", "pymemcache": "went wrong"},
               "a get reply without its END line"),
        Mutant("long-key", FILE, [], {"bad_input": "CLIENT_ERROR key longer than 250 bytes"},
               "the parser takes a 300-byte key",
               common={"wdb_protocol.cc": [("if (key.empty() || key.size() > MAX_KEY)",
                                            "if (key.empty())")]}),
        Mutant("short-write-taken-whole", FILE, [], {"short_io": "the reply never came whole"},
               "takes a write() that moved part of a reply for one that moved all of it",
               common={"io.cc": [("        p += written;              // a short write: go round for the rest\n"
                                  "        n -= static_cast<std::size_t>(written);\n",
                                  "        break;                     // mutant: as if it took it all\n")]}),
    ]


def eintr_ends_the_connection() -> Mutant:
    return Mutant("eintr-ends-the-connection", FILE, [], {"short_io": "failed with EINTR"},
                  "takes a read() interrupted by a signal (EINTR) for the end of the connection",
                  common={"wdb_request.cc": [("    } while (n < 0 && errno == EINTR);\n",
                                              "    } while (false);   // mutant: EINTR is the end\n")]})


V4_LOCK = "    std::lock_guard guard(table_mutex);\n    // END TODO 2\n"   # in execute()
V4_NO_LOCK = "    // END TODO 2\n"
HANDLE_CONNECTION = "static void handle_connection(int client) {\n"
BLOCKED = {"never_close": "got no answer", "half_request": "got no answer",
           "slow_reader": "got no answer"}


def no_close() -> Mutant:
    return Mutant("no-close", FILE, [("    close(client);\n", "")], {"no_fd_leak": "CLOSE_WAIT"},
                  "never closes a client's socket")


def lock_per_connection() -> Mutant:
    """A per-bucket (or per-request) version that also holds a mutex for the whole connection."""
    return Mutant("lock-per-connection", FILE,
                  [(HANDLE_CONNECTION, "static std::mutex connection_mutex;\n" + HANDLE_CONNECTION +
                    "    std::lock_guard whole_connection(connection_mutex);\n")],
                  {**BLOCKED, "no_lock_across_io": "socket calls ran while a mutex was held"},
                  "holds a mutex for as long as a client is connected")


def one_unlocked_path() -> Mutant:
    return Mutant("one-unlocked-path", FILE,
                  [("    std::lock_guard guard(bucket_mutex[b]);\n    bool deleted", "    bool deleted")],
                  {"races": "TSan reported"},
                  "delete changes its bucket without locking it")


def one_mutex() -> Mutant:
    return Mutant("one-mutex", FILE,
                  [("    std::lock_guard guard(bucket_mutex[b]);\n    store_item",
                    "    std::lock_guard guard(bucket_mutex[0]);\n    store_item")],
                  {"bucket_locks": "both sets locked the same mutex"},
                  "set locks bucket 0's mutex whatever the key's bucket")


# v6 -> v8's exch: lock the lower bucket first, once.
NAIVE_EXCH = ("    bucket_mutex[b1].lock();\n    bucket_mutex[b2].lock();\n"
              "    bool exchanged = exchange_items(table[b1], key1, table[b2], key2);\n"
              "    bucket_mutex[b2].unlock();\n    bucket_mutex[b1].unlock();\n")
SKIPPING_EXCH = ("    bucket_mutex[b1].lock();\n    if (b2 != b1)\n        bucket_mutex[b2].lock();\n"
                 "    bool exchanged = exchange_items(table[b1], key1, table[b2], key2);\n"
                 "    if (b2 != b1)\n        bucket_mutex[b2].unlock();\n    bucket_mutex[b1].unlock();\n")
ORDERED_EXCH = ("    std::size_t first = std::min(b1, b2);\n    std::size_t second = std::max(b1, b2);\n"
                "    bucket_mutex[first].lock();\n    if (second != first)\n"
                "        bucket_mutex[second].lock();\n"
                "    bool exchanged = exchange_items(table[b1], key1, table[b2], key2);\n"
                "    if (second != first)\n        bucket_mutex[second].unlock();\n"
                "    bucket_mutex[first].unlock();\n")
ORDERED = ORDERED_EXCH.replace("std::min(b1, b2)", "b1 < b2 ? b1 : b2").replace("std::max(b1, b2)", "b1 < b2 ? b2 : b1")


def by_lesson() -> dict[str, list[Mutant]]:
    def later():   # v5-v8 (fresh objects: each mutant belongs to one lesson)
        return [lock_per_connection(), one_unlocked_path(), one_mutex()]
    return {
        "03-weensydb-1": [
            eintr_ends_the_connection(),
            # do_get is lesson 03's TODO; the later versions carry it unchanged.
            Mutant("end-every-part", FILE, [(GET_END, '    reply += "END\\r\\n";\n')],
                   {"protocol": "is not what the protocol says"},
                   "ends every part of a long get with END, not only the last"),
            Mutant("threaded", FILE,
                   [("#include <unistd.h>\n", "#include <thread>\n#include <unistd.h>\n"),
                    ("        handle_connection(client);\n",
                     "        std::thread(handle_connection, client).detach();\n")],
                   {"never_close": "was served", "half_request": "was served", "slow_reader": "was served"},
                   "serves every client on its own thread already"),
        ],
        "04-weensydb-2": [
            no_close(),
            Mutant("no-thread", FILE,
                   [("        std::thread(handle_connection, client).detach();\n",
                     "        handle_connection(client);\n")],
                   BLOCKED, "serves one client at a time"),
            Mutant("locked", FILE,
                   [("static Bucket table[NBUCKETS];", "static Bucket table[NBUCKETS];\nstatic std::mutex m;"),
                    ("        std::string reply;\n        execute(request, reply);\n",
                     "        std::string reply;\n        {\n            std::lock_guard g(m);\n"
                     "            execute(request, reply);\n        }\n"),
                    ("#include <thread>\n", "#include <mutex>\n#include <thread>\n")],
                   {"races": "TSan found no data race"}, "already locks the table"),
        ],
        "05-weensydb-3": [
            no_close(),
            Mutant("lock-per-request", FILE,
                   [("    std::lock_guard guard(table_mutex);   // held until this client hangs up\n", ""),
                    ("static void execute(const Request& request, std::string& reply) {\n",
                     "static void execute(const Request& request, std::string& reply) {\n"
                     "    std::lock_guard guard(table_mutex);\n")],
                   {"never_close": "was served", "half_request": "was served", "slow_reader": "was served",
                    "no_lock_across_io": "no network I/O happened with a mutex held"},
                   "already takes the mutex per request"),
            Mutant("no-lock", FILE,
                   [("    std::lock_guard guard(table_mutex);   // held until this client hangs up\n", "")],
                   {"races": "TSan reported"}, "never locks the table"),
        ],
        "06-weensydb-4": [
            eintr_ends_the_connection(), no_close(),
            Mutant("lock-across-write", FILE,
                   [(V4_LOCK, V4_NO_LOCK),
                    ("        std::string reply;\n        execute(request, reply);\n",
                     "        std::lock_guard guard(table_mutex);   // held across write_all too\n"
                     "        std::string reply;\n        execute(request, reply);\n")],
                   {"slow_reader": "got no answer", "no_lock_across_io": "socket calls ran while a mutex was held"},
                   "holds the mutex while writing the reply"),
            Mutant("lock-per-connection", FILE,
                   [(V4_LOCK, V4_NO_LOCK),
                    (HANDLE_CONNECTION, HANDLE_CONNECTION + "    std::lock_guard guard(table_mutex);\n")],
                   {"never_close": "got no answer", "half_request": "got no answer"},
                   "holds the mutex for the whole connection (version 3)"),
            Mutant("no-lock", FILE,
                   [(V4_LOCK, V4_NO_LOCK)],
                   {"races": "TSan reported", "no_lock_across_io": "saw no mutex taken"},
                   "never locks the table"),
        ],
        "07-weensydb-5": later(),
        "08-weensydb-6": later() + [
            Mutant("global-order", FILE, [(NAIVE_EXCH, ORDERED)],
                   {"exch_same_bucket": "was answered", "exch_abba": "no deadlock"},
                   "exch already locks in bucket order, once"),
        ],
        "09-weensydb-7": later() + [
            Mutant("locks-twice", FILE, [(SKIPPING_EXCH, NAIVE_EXCH)],
                   {"exch_same_bucket": "a deadlock"}, "locks one bucket twice (version 6)"),
            Mutant("global-order", FILE, [(SKIPPING_EXCH, ORDERED)],
                   {"exch_abba": "no deadlock"}, "exch already locks in bucket order"),
        ],
        "10-weensydb-8": later() + [
            Mutant("order-by-argument", FILE,
                   [("    std::size_t first = std::min(b1, b2);\n    std::size_t second = std::max(b1, b2);\n",
                     "    std::size_t first = b1;    // the order of the keys, not of the buckets\n"
                     "    std::size_t second = b2;\n")],
                   {"exch_abba": "lock-order"}, "locks in the order the keys were given"),
            Mutant("locks-twice", FILE,
                   [("    if (second != first)\n        bucket_mutex[second].lock();\n",
                     "    bucket_mutex[second].lock();\n")],
                   {"exch_same_bucket": "a deadlock"}, "locks one bucket twice when both keys share it"),
        ],
    }


# ---- student programs: the TODOs written the wrong way, as students write them ----------

LOOP = ("    while (read_request(in, request)) {\n        std::string reply;\n"
        "        execute(request, reply);\n"
        "        if (!request.noreply && !write_all(client, reply.data(), reply.size()))\n"
        "            break;\n    }\n")
GET_LOOP = ("    for (const std::string& key : request.keys) {\n"
            "        Bucket& bucket = table[bucket_of(key)];\n"
            "        if (Item* item = find_item(bucket, key))\n"
            "            append_value(reply, item->key, item->flags, item->value);\n    }\n")
ACCEPT = "        int client = accept_client(listener);\n"
DETACH = "        std::thread(handle_connection, client).detach();\n"


def students_03() -> list[Mutant]:
    return [
        Mutant("reply-to-noreply", FILE, [(LOOP,
               "    for (;;) {\n"
               "        if (!read_request(in, request))\n"
               "            break;                      // the client hung up\n"
               "        std::string reply;\n"
               "        execute(request, reply);\n"
               "        if (!write_all(client, reply.data(), reply.size()))\n"
               "            break;                      // the client is gone\n"
               "    }\n")],
               {"protocol": "noreply gets no reply", "pymemcache": "noreply"},
               "answers every request, noreply or not", student=True),
        Mutant("one-write", FILE, [(LOOP,
               "    while (read_request(in, request)) {\n"
               "        std::string reply;\n"
               "        execute(request, reply);\n"
               "        if (request.noreply)\n"
               "            continue;\n"
               "        if (write(client, reply.data(), reply.size()) < 0) {\n"
               "            perror(\"write\");\n"
               "            break;\n"
               "        }\n"
               "    }\n")],
               {"short_io": "write_all"},
               "sends each reply with one write() and never looks at how much it took",
               student=True),
        Mutant("one-request", FILE, [(LOOP,
               "    if (read_request(in, request)) {\n"
               "        std::string reply;\n"
               "        execute(request, reply);\n"
               "        if (!request.noreply)\n"
               "            write_all(client, reply.data(), reply.size());\n"
               "    }\n")],
               {"protocol": "loop until read_request returns false"},
               "answers the first request, then hangs up (no loop)", student=True),
        Mutant("hang-up-on-error", FILE, [(LOOP, LOOP.replace(
               "            break;\n    }\n",
               "            break;\n"
               "        if (request.command == Command::invalid)\n"
               "            break;                      // a client that sends garbage: drop it\n"
               "    }\n"))],
               {"bad_input": "never the connection"},
               "hangs up on a client after answering its bad request", student=True),
        Mutant("return-skips-close", FILE, [(LOOP,
               "    while (true) {\n"
               "        if (!read_request(in, request))\n"
               "            return;                     // the client hung up: done\n"
               "        std::string reply;\n"
               "        execute(request, reply);\n"
               "        if (request.noreply)\n"
               "            continue;\n"
               "        if (!write_all(client, reply.data(), reply.size()))\n"
               "            return;                     // the client is gone\n"
               "    }\n")],
               {"no_fd_leak": "CLOSE_WAIT"},
               "returns from handle_connection before close(client): a descriptor per client",
               student=True),
        Mutant("end-only-when-found", FILE, [(GET_LOOP + GET_END,
               "    for (const std::string& key : request.keys) {\n"
               "        Bucket& bucket = table[bucket_of(key)];\n"
               "        if (Item* item = find_item(bucket, key)) {\n"
               "            append_value(reply, item->key, item->flags, item->value);\n"
               "            if (request.last_part)\n"
               "                reply += \"END\\r\\n\";\n"
               "        }\n"
               "    }\n")],
               {"protocol": "answered this one with no bytes at all"},
               "get writes END after each value found, and nothing at all for a missing key",
               student=True),
        Mutant("get-first-key", FILE, [(GET_LOOP,
               "    const std::string& key = request.keys[0];\n"
               "    if (Item* item = find_item(table[bucket_of(key)], key))\n"
               "        append_value(reply, item->key, item->flags, item->value);\n")],
               {"protocol": "a VALUE block for each key"},
               "get looks up only its first key, as set and delete do", student=True),
    ]


def students_04() -> list[Mutant]:
    return [
        Mutant("thread-not-detached", FILE, [(DETACH,
               "        // a thread of its own for this client; main goes back to accept()\n"
               "        std::thread worker(handle_connection, client);\n")],
               {"protocol": "neither joined nor detached"},
               "makes a std::thread and lets it be destroyed unjoined: std::terminate",
               student=True),
        Mutant("thread-joined", FILE, [(DETACH,
               "        std::thread worker(handle_connection, client);\n"
               "        worker.join();                  // a thread must be joined before it is destroyed\n")],
               {"never_close": "detach() the thread instead"},
               "joins each client's thread, so main waits for every client to leave", student=True),
        Mutant("client-by-reference", FILE, [(DETACH,
               "        std::thread worker([&] { handle_connection(client); });\n"
               "        worker.detach();                // it runs on its own now\n")],
               {"races": "by value"},
               "the thread's lambda reads main's `client` by reference, which the next "
               "accept overwrites", student=True),
        Mutant("accept-fails-exits", FILE, [
               ("#include <thread>\n", "#include <sys/socket.h>\n#include <thread>\n"),
               ('#include "common/io.h"\n', '#include "common/errors.h"\n#include "common/io.h"\n'),
               (ACCEPT, "        int client = accept(listener, nullptr, nullptr);\n"
                        "        if (client < 0)\n"
                        "            die(\"accept\");\n")],
               {"out_of_descriptors": "EMFILE from accept() is a moment"},
               "writes its own accept loop, which exits on the first failed accept (EMFILE)",
               student=True),
        Mutant("accept-fails-retries", FILE, [
               ("#include <thread>\n", "#include <cstdio>\n#include <sys/socket.h>\n#include <thread>\n"),
               (ACCEPT, "        int client = accept(listener, nullptr, nullptr);\n"
                        "        if (client < 0) {\n"
                        "            perror(\"accept\");\n"
                        "            continue;                   // try the next one\n"
                        "        }\n")],
               {"out_of_descriptors": "wait a little after EMFILE"},
               "writes its own accept loop, which retries a failed accept (EMFILE) at once, "
               "for ever", student=True),
    ]


V3_GUARD = "    std::lock_guard guard(table_mutex);   // held until this client hangs up\n"


def students_05() -> list[Mutant]:
    return [
        Mutant("mutex-per-thread", FILE, [
               ("static std::mutex table_mutex;   // protects table\n", ""),
               (V3_GUARD, "    std::mutex table_mutex;               // protects table\n"
                          "    std::lock_guard guard(table_mutex);   // held until this client hangs up\n")],
               {"races": "one mutex, the same for every thread", "never_close": "was served"},
               "declares the mutex inside handle_connection: each thread locks its own",
               student=True),
        Mutant("unlock-skipped-on-return", FILE, [
               (V3_GUARD, "    table_mutex.lock();                 // the table is ours until the client leaves\n"),
               (LOOP + "    close(client);\n",
                "    while (read_request(in, request)) {\n"
                "        std::string reply;\n"
                "        execute(request, reply);\n"
                "        if (!request.noreply && !write_all(client, reply.data(), reply.size())) {\n"
                "            close(client);              // the client is gone\n"
                "            return;\n"
                "        }\n"
                "    }\n"
                "    table_mutex.unlock();\n"
                "    close(client);\n")],
               {"slow_reader": "ended without unlocking"},
               "locks by hand and returns without unlocking when a write fails: once a client "
               "leaves in the middle of a reply, nobody is served again", student=True),
    ]


SWITCH = ("    switch (request.command) {\n"
          "    case Command::get: do_get(request, reply); break;\n"
          "    case Command::set: do_set(request, reply); break;\n"
          "    case Command::del: do_delete(request, reply); break;\n"
          "    case Command::exch: do_exch(request, reply); break;\n"
          "    case Command::invalid: reply += request.error; break;\n"
          "    }\n")


def students_06() -> list[Mutant]:
    return [
        Mutant("get-unlocked", FILE, [(V4_LOCK,
               "    // get only reads the table: only requests that change it need the lock\n"
               "    std::unique_lock guard(table_mutex, std::defer_lock);\n"
               "    if (request.command != Command::get)\n"
               "        guard.lock();\n"
               "    // END TODO 2\n")],
               {"races": "reads included"},
               "locks for set, delete and exch, but lets get read the table unlocked",
               student=True),
        Mutant("unlock-skipped-on-error", FILE, [(V4_LOCK + SWITCH,
               "    table_mutex.lock();\n"
               "    // END TODO 2\n"
               "    switch (request.command) {\n"
               "    case Command::get: do_get(request, reply); break;\n"
               "    case Command::set: do_set(request, reply); break;\n"
               "    case Command::del: do_delete(request, reply); break;\n"
               "    case Command::exch: do_exch(request, reply); break;\n"
               "    case Command::invalid:\n"
               "        reply += request.error;\n"
               "        return;                         // nothing ran: nothing to undo\n"
               "    }\n"
               "    table_mutex.unlock();\n")],
               {"bad_input": "holds itself"},
               "locks by hand and returns early for a bad request, leaving the mutex locked",
               student=True),
        Mutant("guard-in-if", FILE, [(V4_LOCK,
               "    // a bad request does not touch the table: lock only for the others\n"
               "    if (request.command != Command::invalid)\n"
               "        std::lock_guard guard(table_mutex);\n"
               "    // END TODO 2\n")],
               {"races": "declared inside an if"},
               "declares its lock_guard as the body of an if: it unlocks at once, at the end "
               "of that statement", student=True),
    ]


V5_GET = ("    for (const std::string& key : request.keys) {\n"
          "        // BEGIN TODO 3: lock the key's bucket while looking in it.\n"
          "        //| Bucket& bucket = table[bucket_of(key)];\n"
          "        std::size_t b = bucket_of(key);\n"
          "        std::lock_guard guard(bucket_mutex[b]);\n"
          "        Bucket& bucket = table[b];\n"
          "        // END TODO 3\n"
          "        if (Item* item = find_item(bucket, key))\n"
          "            append_value(reply, item->key, item->flags, item->value);\n"
          "    }\n")


def students_07() -> list[Mutant]:
    return [
        Mutant("value-read-after-unlock", FILE, [(V5_GET,
               "    for (const std::string& key : request.keys) {\n"
               "        std::size_t b = bucket_of(key);\n"
               "        Item* item;\n"
               "        {\n"
               "            std::lock_guard guard(bucket_mutex[b]);   // only while searching the list\n"
               "            item = find_item(table[b], key);\n"
               "        }\n"
               "        if (item)\n"
               "            append_value(reply, item->key, item->flags, item->value);\n"
               "    }\n")],
               {"races": "every use of an item found in it"},
               "get copies the item's value after its bucket's lock is released", student=True),
        Mutant("get-locks-first-key", FILE, [(V5_GET,
               "    // one lock for the whole get, as in set and delete\n"
               "    std::size_t b = bucket_of(request.keys[0]);\n"
               "    std::lock_guard guard(bucket_mutex[b]);\n"
               "    for (const std::string& key : request.keys) {\n"
               "        if (Item* item = find_item(table[bucket_of(key)], key))\n"
               "            append_value(reply, item->key, item->flags, item->value);\n"
               "    }\n")],
               {"races": "the one that protects that bucket"},
               "a get of several keys locks only the first key's bucket", student=True),
        Mutant("get-holds-every-bucket", FILE, [(V5_GET,
               "    // every bucket stays locked until the reply is built: one moment's values\n"
               "    std::vector<std::unique_lock<std::mutex>> held;\n"
               "    for (const std::string& key : request.keys) {\n"
               "        std::size_t b = bucket_of(key);\n"
               "        held.emplace_back(bucket_mutex[b]);\n"
               "        if (Item* item = find_item(table[b], key))\n"
               "            append_value(reply, item->key, item->flags, item->value);\n"
               "    }\n")],
               {"protocol": "holds itself"},
               "a get of several keys keeps each bucket locked as it goes: a key asked for twice "
               "locks its bucket twice", student=True),
    ]


EXCH_REPLY = '    reply += exchanged ? "EXCHANGED\\r\\n" : "NOT_FOUND\\r\\n";\n'


def students_08() -> list[Mutant]:
    return [
        Mutant("not-found-leaves-locked", FILE, [(NAIVE_EXCH + EXCH_REPLY,
               "    bucket_mutex[b1].lock();\n"
               "    bucket_mutex[b2].lock();\n"
               "    if (!exchange_items(table[b1], key1, table[b2], key2)) {\n"
               "        reply += \"NOT_FOUND\\r\\n\";\n"
               "        return;\n"
               "    }\n"
               "    bucket_mutex[b2].unlock();\n"
               "    bucket_mutex[b1].unlock();\n"
               "    reply += \"EXCHANGED\\r\\n\";\n")],
               {"protocol": "an earlier one that never unlocked it"},
               "returns NOT_FOUND with both buckets still locked: the next request on either "
               "bucket waits for ever", student=True),
        Mutant("one-lock-at-a-time", FILE, [(NAIVE_EXCH,
               "    // one bucket at a time: a thread that never holds two locks cannot deadlock\n"
               "    bucket_mutex[b1].lock();\n"
               "    Item* item1 = find_item(table[b1], key1);\n"
               "    bucket_mutex[b1].unlock();\n"
               "    bucket_mutex[b2].lock();\n"
               "    Item* item2 = find_item(table[b2], key2);\n"
               "    bucket_mutex[b2].unlock();\n"
               "    bool exchanged = item1 != nullptr && item2 != nullptr;\n"
               "    if (exchanged) {\n"
               "        std::swap(item1->value, item2->value);\n"
               "        std::swap(item1->flags, item2->flags);\n"
               "    }\n")],
               {"races": "every use of an item found in it", "exch_same_bucket": "was answered"},
               "exch looks each key up under its own lock, then swaps the items with no lock held",
               student=True),
    ]


def students_09() -> list[Mutant]:
    return [
        Mutant("no-lock-in-one-bucket", FILE, [(SKIPPING_EXCH,
               "    if (b1 != b2) {                     // one bucket: locking twice would hang\n"
               "        bucket_mutex[b1].lock();\n"
               "        bucket_mutex[b2].lock();\n"
               "    }\n"
               "    bool exchanged = exchange_items(table[b1], key1, table[b2], key2);\n"
               "    if (b1 != b2) {\n"
               "        bucket_mutex[b2].unlock();\n"
               "        bucket_mutex[b1].unlock();\n"
               "    }\n")],
               {"races": "a path that takes none"},
               "when both keys share a bucket, takes no lock at all", student=True),
        Mutant("unlocks-twice", FILE, [(SKIPPING_EXCH,
               "    bucket_mutex[b1].lock();\n"
               "    if (b2 != b1)\n"
               "        bucket_mutex[b2].lock();        // it is the same mutex otherwise\n"
               "    bool exchanged = exchange_items(table[b1], key1, table[b2], key2);\n"
               "    bucket_mutex[b2].unlock();\n"
               "    bucket_mutex[b1].unlock();\n")],
               {"races": "unlock it once"},
               "skips the second lock for one bucket but not the second unlock", student=True),
    ]


V8_ORDER = "    std::size_t first = std::min(b1, b2);\n    std::size_t second = std::max(b1, b2);\n"


def students_10() -> list[Mutant]:
    return [
        Mutant("order-by-key-text", FILE, [(V8_ORDER,
               "    // exch a b and exch b a must agree: go by the keys in alphabetical order\n"
               "    std::size_t first = key1 < key2 ? b1 : b2;\n"
               "    std::size_t second = key1 < key2 ? b2 : b1;\n")],
               {"exch_many_pairs": "the keys' text"},
               "locks in the keys' alphabetical order: right for any one pair, not for many",
               student=True),
        Mutant("buckets-follow-the-order", FILE, [(
               "    bool exchanged = exchange_items(table[b1], key1, table[b2], key2);\n",
               "    bool exchanged = exchange_items(table[first], key1, table[second], key2);\n")],
               {"exch_abba": "with its own bucket"},
               "after sorting the buckets, passes the sorted ones to exchange_items: key1 is "
               "then looked for in key2's bucket when b1 > b2", student=True),
        Mutant("second-guard-in-if", FILE, [(ORDERED_EXCH,
               "    std::size_t first = std::min(b1, b2);\n"
               "    std::size_t second = std::max(b1, b2);\n"
               "    std::lock_guard lock_first(bucket_mutex[first]);\n"
               "    if (second != first) {\n"
               "        std::lock_guard lock_second(bucket_mutex[second]);\n"
               "    }\n"
               "    bool exchanged = exchange_items(table[b1], key1, table[b2], key2);\n")],
               {"races": "unlocks at its closing brace"},
               "takes the second bucket's lock with a lock_guard inside the if: released at its "
               "closing brace, before the exchange", student=True),
    ]


STUDENTS = {"03-weensydb-1": students_03, "04-weensydb-2": students_04,
            "05-weensydb-3": students_05, "06-weensydb-4": students_06,
            "07-weensydb-5": students_07, "08-weensydb-6": students_08,
            "09-weensydb-7": students_09, "10-weensydb-8": students_10}


def mutants_for(lesson: str) -> list[Mutant]:
    """The known-bad programs of the lesson (course.toml names this module for it)."""
    return everywhere() + by_lesson()[lesson] + STUDENTS[lesson]()
