"""Mutants of lesson 16's fetch: each brings back one way a download goes wrong, among them
the issue's four (a buffer too small to recv into, a missing O_TRUNC, ranges off by one at a
boundary, a half file left on failure)."""
from . import Mutant


MUTANTS = [
    Mutant("buffer-too-small", "fetch.cc",
           [("    std::vector<char> buffer(options.buffer);\n",
             "    std::vector<char> buffer(4096);   // \"big enough\"\n"),
            ("std::min<std::uint64_t>(buffer.size(), length - received)",
             "std::min<std::uint64_t>(options.buffer, length - received)")],
           {"asan_clean": "more bytes than its buffer holds"},
           "recv() asked for --buffer bytes into a 4096-byte buffer"),
    Mutant("buffer-one-short", "fetch.cc",
           [("    std::vector<char> buffer(options.buffer);\n",
             "    std::vector<char> buffer(options.buffer - 1);   // one byte kept for a terminator\n"),
            ("std::min<std::uint64_t>(buffer.size(), length - received)",
             "std::min<std::uint64_t>(options.buffer, length - received)")],
           {"asan_clean": "more bytes than its buffer holds"},
           "recv() may fill --buffer bytes of a buffer one byte shorter: only AddressSanitizer sees it"),
    Mutant("no-trunc", "fetch.cc",
           [("O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC", "O_WRONLY | O_CREAT | O_CLOEXEC")],
           {"stale_files": "O_TRUNC"},
           "opens OUT.part without O_TRUNC: a longer stale one keeps its tail"),
    Mutant("ranges-overlap", "fetch.cc",
           [("std::uint64_t last = std::min(first + slice, size) - 1;",
             "std::uint64_t last = std::min(first + slice, size - 1);   // off by one: ends are included")],
           {"ranges_once": "requested twice"},
           "each range's last byte is the next range's first: one byte fetched twice at each boundary"),
    Mutant("ranges-gap", "fetch.cc",
           [("for (std::uint64_t first = 0; first < size; first += slice) {",
             "for (std::uint64_t first = 0; first < size; first += slice + 1) {")],
           {"ranges_once": "never requested", "parallel_identical": "a hole no range filled"},
           "steps one byte too far between ranges: a byte at each boundary is never fetched"),
    Mutant("half-file", "fetch.cc",
           [('    d.partial = d.out + ".part";\n', '    d.partial = d.out;   // straight into OUT\n'),
            ("    partial_to_remove = d.partial;\n", "")],
           {"server_dies": "half file", "short_body": "half file"},
           "writes straight into OUT and leaves it there when the download fails"),
    Mutant("splice-is-a-copy", "fetch.cc",
           [("    if (options.splice)\n        splice_body(sock, file, offset, length);\n    else\n"
             "        copy_body(sock, file, offset, length, options);\n",
             "    copy_body(sock, file, offset, length, options);   // --splice ignored\n")],
           {"splice_no_copy": "still copied"},
           "ignores --splice: the body goes through recv() and a buffer"),
    Mutant("no-rename", "fetch.cc",
           [("    if (rename(d.partial.c_str(), d.out.c_str()) < 0)\n        die(\"rename\");\n", "")],
           {"copy_identical": "no file under the final name"},
           "never renames OUT.part to OUT (and then removes it at exit)"),
    Mutant("pwrite-whole-buffer", "fetch.cc",
           [("            ssize_t w = pwrite(file, buffer.data() + written, static_cast<std::size_t>(n - written),",
             "            ssize_t w = pwrite(file, buffer.data() + written, buffer.size() - static_cast<std::size_t>(written),")],
           {"copy_identical": "not the object"},
           "writes the whole buffer, not the n bytes recv() returned"),
]


# ---- student programs: wrong code of the kind a student writes in place of a TODO ----------

COPY_LOOP_HEAD = """    std::vector<char> buffer(options.buffer);
    std::uint64_t received = 0;
    while (received < length) {
        std::size_t want = static_cast<std::size_t>(std::min<std::uint64_t>(buffer.size(), length - received));
        ssize_t n = recv(sock, buffer.data(), want, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            die("recv");
        if (n == 0)
            cut_short(received, length);
"""

SLICES = """    std::uint64_t n = static_cast<std::uint64_t>(d.options.parallel);
    std::uint64_t slice = (size + n - 1) / n;
    std::vector<std::thread> threads;
    for (std::uint64_t first = 0; first < size; first += slice) {
        std::uint64_t last = std::min(first + slice, size) - 1;
        threads.emplace_back(fetch_range, std::cref(d), file, first, last, size);
    }
"""

STUDENT = [
    Mutant("fixed-buffer", "fetch.cc",
           [(COPY_LOOP_HEAD, COPY_LOOP_HEAD.replace(
               "    std::vector<char> buffer(options.buffer);\n",
               "    (void)options;\n    static char storage[65536];   // one good size for everyone\n"
               "    std::vector<char> buffer(storage, storage + sizeof(storage));\n"))],
           {"syscalls_per_mib": "asked for up to 65536"},
           "uses a fixed 64 KiB buffer whatever --buffer says", student=True),
    Mutant("until-eof", "fetch.cc",
           [(COPY_LOOP_HEAD, COPY_LOOP_HEAD.replace(
               "    while (received < length) {", "    while (true) {   // the server closes when it is done").replace(
               "        if (n == 0)\n            cut_short(received, length);\n",
               "        if (n == 0)\n            break;   // end of the body\n").replace(
               "std::min<std::uint64_t>(buffer.size(), length - received)", "buffer.size()"))],
           {"short_body": "exited with status 0"},
           "reads until the server closes, as lesson 01 did: a body cut short looks complete",
           student=True),
    Mutant("stops-on-short-recv", "fetch.cc",
           [("        received += static_cast<std::uint64_t>(n);\n    }\n    // END TODO 1",
             "        received += static_cast<std::uint64_t>(n);\n"
             "        if (static_cast<std::size_t>(n) < want)   // less than asked: nothing more to come\n"
             "            break;\n    }\n    // END TODO 1")],
           {"copy_identical": "stops early"},
           "takes a recv() that fills less than it asked for as the end of the body", student=True),
    Mutant("header-with-body", "fetch.cc",
           [("        ssize_t got = recv(sock, peeked, take, MSG_WAITALL);\n",
             "        ssize_t got = recv(sock, peeked, sizeof(peeked), 0);   // the header, and whatever follows\n"
             "        got = got == n ? static_cast<ssize_t>(take) : -1;\n")],
           {"splice_identical": "arrived with the header were lost"},
           "reads the header with a plain recv() of 1 KiB: the body bytes that came with it are lost", student=True),
    Mutant("splice-socket-to-file", "fetch.cc",
           [("""        ssize_t in = splice(sock, nullptr, pipe_ends[1], nullptr,
                            static_cast<std::size_t>(std::min<std::uint64_t>(length - moved, 1 << 20)),
                            SPLICE_F_MOVE | SPLICE_F_MORE);
        if (in < 0 && errno == EINTR)
            continue;
        if (in < 0)
            die("splice");
        if (in == 0)
            cut_short(moved, length);
        for (ssize_t left = in; left > 0;) {   // empty the pipe into the file
            ssize_t out = splice(pipe_ends[0], nullptr, file, &at, static_cast<std::size_t>(left),
                                 SPLICE_F_MOVE);
            if (out < 0 && errno == EINTR)
                continue;
            if (out < 0)
                die("splice");
            left -= out;
        }
""", """        // Straight from the socket into the file: why go through a pipe?
        ssize_t in = splice(sock, nullptr, file, &at,
                            static_cast<std::size_t>(std::min<std::uint64_t>(length - moved, 1 << 20)),
                            SPLICE_F_MOVE);
        if (in < 0 && errno == EINTR)
            continue;
        if (in < 0)
            die("splice");
        if (in == 0)
            cut_short(moved, length);
""")],
           {"splice_identical": "one end of every splice() must be a pipe"},
           "splices the socket straight into the file: splice() needs a pipe at one end (EINVAL)",
           student=True),
    Mutant("status-unchecked", "fetch.cc",
           [("    if (h.status != want)\n", "    if (h.status != want && h.status < 400)   // an error page is a page\n")],
           {"not_found": "exited with status 0"},
           "saves a 404 page as if it were the object", student=True),
    Mutant("trusts-206", "fetch.cc",
           [("""    expect_status(h, 206, d, range);
    std::string want = "bytes " + std::to_string(first) + "-" + std::to_string(last) + "/" +
                       std::to_string(size);
    if (h.content_range != want || h.length != last + 1 - first)
        fail_download("asked for " + range + ", the server sent Content-Range: " + h.content_range);
""", """    if (h.length != last + 1 - first)   // the status line is not worth reading
        fail_download("a slice of the wrong length");
""")],
           {"range_not_satisfiable": "does not say 416"},
           "never reads a range's status: a 416 becomes \"a slice of the wrong length\"", student=True),
    Mutant("floor-slices", "fetch.cc",
           [(SLICES, """    std::uint64_t n = static_cast<std::uint64_t>(d.options.parallel);
    std::uint64_t slice = size / n;   // N equal slices
    std::vector<std::thread> threads;
    for (std::uint64_t i = 0; i < n && slice > 0; i++) {
        std::uint64_t first = i * slice;
        threads.emplace_back(fetch_range, std::cref(d), file, first, first + slice - 1, size);
    }
""")],
           {"ranges_once": "the end is missing", "tiny_objects": "a hole no range filled"},
           "slices of size / N rounded down: the last few bytes are never asked for", student=True),
    Mutant("empty-slices", "fetch.cc",
           [(SLICES, """    std::uint64_t n = static_cast<std::uint64_t>(d.options.parallel);
    std::uint64_t slice = (size + n - 1) / n;
    std::vector<std::thread> threads;
    for (std::uint64_t i = 0; i < n && size > 0; i++) {   // one thread per connection asked for
        std::uint64_t first = i * slice;
        std::uint64_t last = std::min(first + slice, size) - 1;
        threads.emplace_back(fetch_range, std::cref(d), file, first, last, size);
    }
""")],
           {"tiny_objects": "416"},
           "always starts N ranges: with more connections than bytes, some are empty (bytes=2-1: 416)",
           student=True),
    Mutant("header-in-one-recv", "fetch.cc",
           [("""    std::string head;
    char peeked[1024];
    while (true) {
        ssize_t n = recv(sock, peeked, sizeof(peeked), MSG_PEEK);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            die("recv");
        if (n == 0)
            fail_download("the server closed the connection before the end of the reply's header");
        std::string seen = head + std::string(peeked, static_cast<std::size_t>(n));
        std::size_t end = seen.find("\\r\\n\\r\\n", head.size() < 3 ? 0 : head.size() - 3);
        std::size_t take = end == std::string::npos ? static_cast<std::size_t>(n) : end + 4 - head.size();
        // take <= n bytes are waiting: MSG_WAITALL gets them all in one call
        ssize_t got = recv(sock, peeked, take, MSG_WAITALL);
        if (got != static_cast<ssize_t>(take))
            die("recv");
        head.append(peeked, take);
        if (end != std::string::npos)
            return parse_header(head);
        if (head.size() > 16384)
            fail_download("the reply's header is longer than 16 KiB");
    }
""", """    char peeked[1024];   // a header is short: it arrives in one piece
    ssize_t n;
    do
        n = recv(sock, peeked, sizeof(peeked), MSG_PEEK);
    while (n < 0 && errno == EINTR);
    if (n <= 0)
        fail_download("no reply");
    std::string seen(peeked, static_cast<std::size_t>(n));
    std::size_t end = seen.find("\\r\\n\\r\\n");
    if (end == std::string::npos)
        fail_download("the reply's header has no end");
    if (recv(sock, peeked, end + 4, MSG_WAITALL) != static_cast<ssize_t>(end + 4))
        die("recv");
    return parse_header(seen.substr(0, end + 4));
""")],
           {"splice_identical": "header arrived in pieces"},
           "peeks once and takes what it sees as the whole header: a header that arrives in pieces "
           "has \"no end\"", student=True),
    Mutant("one-range-at-a-time", "fetch.cc",
           [(SLICES + """    for (std::thread& t : threads)
        t.join();
""", """    std::uint64_t n = static_cast<std::uint64_t>(d.options.parallel);
    std::uint64_t slice = (size + n - 1) / n;
    for (std::uint64_t first = 0; first < size; first += slice) {
        std::uint64_t last = std::min(first + slice, size) - 1;
        std::thread worker(fetch_range, std::cref(d), file, first, last, size);
        worker.join();   // this slice is saved: on to the next
    }
""")],
           {"parallel_at_once": "never had its 4 ranges open at once"},
           "joins each slice's thread before starting the next: N connections, one after another, "
           "as slow as one", student=True),
    Mutant("shared-pipe", "fetch.cc",
           [("""    int pipe_ends[2];
    if (pipe2(pipe_ends, O_CLOEXEC) < 0)
        die("pipe2");
""", """    static int pipe_ends[2] = {-1, -1};   // one pipe is enough: make it once
    if (pipe_ends[0] < 0 && pipe2(pipe_ends, O_CLOEXEC) < 0)
        die("pipe2");
"""), ("""    close(pipe_ends[0]);
    close(pipe_ends[1]);
    // END TODO 2""", "    // END TODO 2")],
           {"parallel_at_once": "spliced through the same pipe"},
           "one static pipe for every splice_body(): with --parallel --splice the threads share it and, "
           "when their splices interleave, take each other's bytes", student=True),
]


def mutants_for(lesson: str) -> list[Mutant]:
    """The known-bad programs of the lesson (course.toml names this module for it)."""
    return MUTANTS + STUDENT
