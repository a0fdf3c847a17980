"""Hostile programs: student code that attacks the checker instead of solving the lesson.

Each one must be contained (its check ends within its timeout, however it forked),
reported in words that name what it did, and leave nothing behind: no process (the
self-test test_no_process_left_behind) and no file under /tmp (test_no_file_left_behind).
They are mutants of lesson 01's client and of WeensyDB version 1 (lesson 03).
"""
from . import Mutant

# Just before the client connects: the hostile part runs first, then (if it returns)
# the client does its job.
BEFORE_CONNECT = "    int fd = connect_to(host, port);\n"
TMP_FILE = "/tmp/netcourse-hostile-file"


def client(name: str, code: str, words: str, bug: str, check: str = "small") -> Mutant:
    return Mutant(name, "http_get.cc", [(BEFORE_CONNECT, code + BEFORE_CONNECT)], {check: words}, bug)


LESSON_01 = [
    client("hostile-fork-bomb",
           "    for (;;)                 // hostile: fork until no more processes can be made\n"
           "        if (fork() < 0)\n"
           "            pause();\n",
           "up against the checker's limit of 1024", "forks until the process limit"),
    client("hostile-setsid-double-fork",
           "    if (fork() == 0) {       // hostile: a grandchild in a session of its own\n"
           "        setsid();\n"
           "        if (fork() == 0)\n"
           "            for (;;)\n"
           "                pause();     // holding stdout open\n"
           "        _exit(0);\n"
           "    }\n"
           "    pause();\n",
           "killed it with all its children", "escapes its process group, keeps stdout open, and hangs"),
    client("hostile-floods-stdout",
           "    {                        // hostile: 2 GB on stdout first\n"
           "        static char junk[1 << 16];\n"
           "        for (int i = 0; i < (2 << 14); i++)\n"
           "            if (!write_all(STDOUT_FILENO, junk, sizeof(junk)))\n"
           "                break;\n"
           "    }\n",
           "printed more than 32 MiB on stdout", "prints 2 GB"),
    client("hostile-huge-file",
           "    {                        // hostile: a 10 GB file in /tmp\n"
           f"        std::FILE* out = std::fopen(\"{TMP_FILE}\", \"w\");\n"
           "        static char junk[1 << 20];\n"
           "        for (int i = 0; i < 10240 && out; i++)\n"
           "            if (std::fwrite(junk, 1, sizeof(junk), out) != sizeof(junk))\n"
           "                break;\n"
           "    }\n",
           "larger than the 256 MiB", "writes a 10 GB file under /tmp"),
    client("hostile-allocates-20-gb",
           "    {                        // hostile: 20 GB, every page touched\n"
           "        std::size_t size = std::size_t{20} << 30;\n"
           "        char* memory = new char[size];\n"
           "        for (std::size_t i = 0; i < size; i += 4096)\n"
           "            memory[i] = 1;\n"
           "    }\n",
           "out of memory", "allocates 20 GB"),
    client("hostile-spins",
           "    for (volatile long spin = 0;; spin++) {   // hostile: a CPU, for ever\n"
           "    }\n",
           "killed it with all its children", "spins for ever"),
    client("hostile-closes-stdout-and-hangs",
           "    close(STDOUT_FILENO);    // hostile: the checker sees EOF, but the program goes on\n"
           "    pause();\n",
           "killed it with all its children", "closes stdout, then hangs"),
    client("hostile-connects-out",
           "    host = \"192.0.2.1\";      // hostile: somewhere beyond loopback (TEST-NET-1)\n"
           "    port = \"80\";\n",
           "unreachable", "connects to an address beyond loopback"),
]

# WeensyDB version 1: the hostile part runs for every connection.
HANDLE = "static void handle_connection(int client) {\n"

LESSON_03 = [
    Mutant("hostile-fork-bomb", "weensydb.cc",
           [(HANDLE, HANDLE + "    for (;;)                 // hostile: fork until the process limit\n"
                              "        if (fork() < 0)\n"
                              "            pause();\n")],
           {"protocol": "not a byte came back"}, "forks until the process limit when a client connects"),
]


def mutants_for(lesson: str) -> list[Mutant]:
    return {"01-raw-client": LESSON_01, "03-weensydb-1": LESSON_03}.get(lesson, [])
