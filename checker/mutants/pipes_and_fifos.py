"""Mutants of lesson 17's pipeline, fifo_load and fifo_probe: a descriptor left open, a child
not waited for, a FIFO left on disk, an EPIPE not taken for an answer."""
from . import Mutant

FILTER_CLOSES = """        if (dup2(pipe_fds[0], STDIN_FILENO) < 0)
            die("dup2");
        close(pipe_fds[0]);
        close(pipe_fds[1]);
"""
PRODUCER_CLOSES = """        if (dup2(pipe_fds[1], STDOUT_FILENO) < 0)
            die("dup2");
        close(pipe_fds[0]);
        close(pipe_fds[1]);
"""
PARENT_CLOSES = """    close(pipe_fds[0]);
    close(pipe_fds[1]);
    // END TODO 5
    return wait_for_both(producer, producer_command, filter, filter_command);
"""
WAIT_LOOP_START = "    for (int left = 2; left > 0; left--) {\n        int status;\n        pid_t pid = waitpid(-1, &status, 0);\n"
REPORT = """        std::fprintf(stderr, "pipeline: %s: %s\\n", command, describe(status).c_str());
"""
WRITE_RECORD = """            ssize_t wrote = write(fd, record.data() + done, size - done);
"""
EPIPE_BRANCH = """            if (wrote < 0 && errno == EPIPE) {
                std::fprintf(stderr, "fifo_probe: writer %d: write: EPIPE (the reader closed the FIFO) "
                             "after %ld records\\n", index, n);
                return 3;
            }
"""
MEET_READER = """    int fifo_out;
    while ((fifo_out = open(fifo_path, O_WRONLY | O_NONBLOCK)) < 0) {
        if (errno != ENXIO && errno != EINTR)
            die("open FIFO for writing");
        int status;
        if (waitpid(reader_pid, &status, WNOHANG) == reader_pid) {
            std::fprintf(stderr, "fifo_load: sqlite3: %s, before it opened the FIFO\\n",
                         describe(status).c_str());
            unlink(fifo_path);
            return 1;
        }
        usleep(10000);   // 10 ms: sqlite3 opens the FIFO within milliseconds
    }
    fcntl(fifo_out, F_SETFL, fcntl(fifo_out, F_GETFL) & ~O_NONBLOCK);
"""

MUTANTS = [
    Mutant("reader-keeps-write-end", "pipeline.cc",
           [(FILTER_CLOSES, FILTER_CLOSES.replace("        close(pipe_fds[1]);\n", ""))],
           {"no_leaked_descriptors": "the write end", "pipeline_output": "never ended"},
           "the filter's child keeps the pipe's write end: it never sees end-of-file"),
    Mutant("no-waitpid", "pipeline.cc",
           [(WAIT_LOOP_START, "    for (int left = 0; left > 0; left--) {   // nobody waited for\n"
                              "        int status = 0;\n        pid_t pid = 0;\n")],
           {"pipeline_output": "waitpid() for both children"},
           "never calls waitpid(): no child is reported, the filter's status is never known"),
    Mutant("fifo-never-unlinked", "fifo_load.cc",
           [("    if (unlink(fifo_path) < 0)\n        die(\"unlink FIFO\");\n", "")],
           {"fifo_removed_at_end": "still there"},
           "never unlinks the FIFO at the end"),
    Mutant("ignored-epipe", "fifo_probe.cc",
           [(EPIPE_BRANCH, "            if (wrote < 0 && errno == EPIPE)\n"
                           "                continue;   // \"try again\"\n")],
           {"epipe_reported": "still ran 5 s"},
           "takes EPIPE for a passing error and writes again, for ever"),
    Mutant("no-signal-handler", "fifo_load.cc",
           [("    install_signal_handlers();\n", "")],
           {"fifo_removed_after_ctrl_c": "still there"},
           "installs no SIGINT/SIGTERM handler: Ctrl-C leaves the FIFO on disk"),
]

STUDENT = [
    Mutant("parent-closes-after-wait", "pipeline.cc",
           [(PARENT_CLOSES, """    // END TODO 5
    int status = wait_for_both(producer, producer_command, filter, filter_command);
    close(pipe_fds[0]);   // tidy up once the children are done
    close(pipe_fds[1]);
    return status;
""")],
           {"no_leaked_descriptors": "pipeline itself", "pipeline_output": "never ended"},
           "closes the parent's ends after waiting for the children: the filter waits for the "
           "parent's write end to close, the parent for the filter", student=True),
    Mutant("dup2-without-close", "pipeline.cc",
           [(PRODUCER_CLOSES, """        if (dup2(pipe_fds[1], STDOUT_FILENO) < 0)   // dup2 moves the descriptor
            die("dup2");
"""), (FILTER_CLOSES, """        if (dup2(pipe_fds[0], STDIN_FILENO) < 0)
            die("dup2");
""")],
           {"no_leaked_descriptors": "descriptor(s) of the pipe open", "pipeline_output": "never ended"},
           "believes dup2() moves the descriptor, and closes nothing in the children", student=True),
    Mutant("raw-wait-status", "pipeline.cc",
           [(REPORT, """        std::fprintf(stderr, "pipeline: %s: exit status %d\\n", command, status);
""")],
           {"exit_statuses": "no line `pipeline: false: exit status 1`",
            "sigpipe_named": "not reported killed by SIGPIPE"},
           "prints waitpid()'s raw status as the exit status: 256 for exit(1), 13 for SIGPIPE",
           student=True),
    Mutant("pipe-size-in-kib", "pipeline.cc",
           [("    if (fcntl(fd, F_SETPIPE_SZ, wanted) < 0)\n",
             "    if (fcntl(fd, F_SETPIPE_SZ, wanted / 1024) < 0)   // the size in KiB\n")],
           {"pipe_capacity": "holds 4096 bytes, not 262144"},
           "gives F_SETPIPE_SZ a size in KiB: the kernel rounds 256 up to one page", student=True),
    Mutant("open-read-write", "fifo_probe.cc",
           [("    fd = open(path, O_WRONLY);\n    if (fd < 0)\n        die(\"open\");\n    std::printf(\"opened\\n\");\n",
             "    fd = open(path, O_RDWR);   // O_RDWR: no waiting for a reader\n    if (fd < 0)\n"
             "        die(\"open\");\n    std::printf(\"opened\\n\");\n")],
           {"fifo_open_blocks": "did not block"},
           "opens the FIFO O_RDWR so as never to wait: it is its own reader", student=True),
    Mutant("records-in-pieces", "fifo_probe.cc",
           [(WRITE_RECORD, """            std::size_t piece = size - done < 1024 ? size - done : 1024;   // 1 KiB at a time
            ssize_t wrote = write(fd, record.data() + done, piece);
""")],
           {"pipe_buf_atomic": "came interleaved"},
           "writes each record in 1 KiB pieces: the pieces of several writers interleave", student=True),
    Mutant("import-without-csv", "fifo_load.cc",
           [('std::string(".import --csv ")', 'std::string(".import ")')],
           {"loads_rows": "does not hold the source's rows"},
           "runs .import without --csv: sqlite3 splits at `|`, each line lands in one column", student=True),
    Mutant("decompress-to-a-file", "fifo_load.cc",
           [("    const char* writer_argv[] = {\"gzip\", \"-dc\", source, nullptr};\n"
             "    writer_pid = start(writer_argv, fifo_out);\n",
             "    // Decompress to a file first, then copy it into the FIFO: simpler to debug.\n"
             "    std::string plain = std::string(fifo_path) + \".csv\";\n"
             "    int plain_fd = open(plain.c_str(), O_RDWR | O_CREAT | O_TRUNC, 0600);\n"
             "    const char* gunzip_argv[] = {\"gzip\", \"-dc\", source, nullptr};\n"
             "    int gz_status;\n"
             "    waitpid(start(gunzip_argv, plain_fd), &gz_status, 0);\n"
             "    close(plain_fd);\n"
             "    const char* writer_argv[] = {\"cat\", plain.c_str(), nullptr};\n"
             "    writer_pid = start(writer_argv, fifo_out);\n")],
           {"no_temp_file": "written to the regular file"},
           "decompresses into a temporary file, then copies that into the FIFO", student=True),
    Mutant("blocking-open", "fifo_load.cc",
           [(MEET_READER, """    int fifo_out = open(fifo_path, O_WRONLY);   // waits for sqlite3 to open it
    if (fifo_out < 0)
        die("open FIFO for writing");
""")],
           {"reader_failure_reported": "never ended"},
           "opens the FIFO for writing with a plain blocking open(): when sqlite3 fails before it "
           "opens the FIFO, that open() waits for ever", student=True),
    Mutant("status-of-last-to-end", "pipeline.cc",
           [("        if (pid == filter)\n            filter_status = status;\n",
             "        filter_status = status;   // the last child to end ends the pipeline\n")],
           {"exit_statuses": "not exit status 1 (false's)"},
           "keeps the status of the child that ended last, not the filter's: `pipeline 'sleep 0.5' "
           "false` exits 0, sleep's (with `true false` it depends on which ends last)", student=True),
    Mutant("handler-exits", "fifo_load.cc",
           [("    unlink(fifo_path);\n    if (writer_pid > 0)\n        kill(writer_pid, SIGTERM);\n"
             "    if (reader_pid > 0)\n        kill(reader_pid, SIGTERM);\n    signal(sig, SIG_DFL);\n"
             "    raise(sig);\n",
             "    (void)sig;\n    unlink(fifo_path);\n    _exit(130);   // 128 + SIGINT, as a shell says\n")],
           {"fifo_removed_after_ctrl_c": "not killed by SIGINT"},
           "its SIGINT handler unlinks the FIFO and _exit()s: the children are left running, and "
           "its parent sees exit status 130, not death by SIGINT", student=True),
    Mutant("fifo-left-nonblocking", "fifo_load.cc",
           [("    fcntl(fifo_out, F_SETFL, fcntl(fifo_out, F_GETFL) & ~O_NONBLOCK);\n", "")],
           {"loads_rows": "still has the O_NONBLOCK"},
           "leaves O_NONBLOCK on the FIFO's write end it gives gzip: gzip's write() fails with "
           "EAGAIN once the pipe is full", student=True),
]


def mutants_for(lesson: str) -> list[Mutant]:
    """The known-bad programs of the lesson (course.toml names this module for it)."""
    return MUTANTS + STUDENT
