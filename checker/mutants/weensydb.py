"""Mutants of WeensyDB versions 1-8 (lessons 03-10).

Some bugs fit every version (a get reply without END, a parser that takes a
300-byte key); the rest bring back, or take away, the one thing a lesson is
about: each version's expected bug must disappear in a mutant that fixes it
(so the check that expects it fails), and each fixed version must be caught
when the bug comes back.
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
            eintr_ends_the_connection(),
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


def mutants_for(lesson: str) -> list[Mutant]:
    """The known-bad programs of the lesson (course.toml names this module for it)."""
    return everywhere() + by_lesson()[lesson]
