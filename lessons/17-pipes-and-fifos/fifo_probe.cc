// fifo_probe: two small experiments on a FIFO someone else made (mkfifo PATH).
//
//   usage: fifo_probe open FIFO
//          fifo_probe write FIFO WRITERS SIZE COUNT
//
// open: how open() for writing behaves with no reader (fifo(7)). First with
// O_NONBLOCK, which fails at once with ENXIO; then without, which blocks until
// a reader opens the FIFO. It prints, on stdout:
//
//   O_NONBLOCK: ENXIO
//   opening for writing...
//   opened
//
// then writes "hello\n" into the FIFO and exits.
//
// write: forks WRITERS processes that share the FIFO. Writer i writes COUNT
// records of SIZE bytes, each record one write() call: SIZE - 1 times the
// letter 'A' + i, then '\n'. pipe(7): a write of at most PIPE_BUF (4096)
// bytes is atomic, so such records never interleave; larger ones may. The
// writers ignore SIGPIPE: when the reader goes away, write() fails with EPIPE,
// and the writer says so on stderr and exits with status 3:
//
//   fifo_probe: writer 1: write: EPIPE (the reader closed the FIFO) after 17 records
//
// The parent waits for every writer and prints one line each:
// "fifo_probe: writer 1: exit status 3". It exits 0 if all exited with 0.
#include "common/errors.h"

#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fcntl.h>
#include <string>
#include <sys/wait.h>
#include <unistd.h>
#include <vector>

static int probe_open(const char* path) {
    // TODO 1: open `path` for writing with O_WRONLY | O_NONBLOCK. With no
    // reader that fails with ENXIO: print "O_NONBLOCK: ENXIO" (or, if it did
    // not fail that way, "O_NONBLOCK: " and what happened). Then print
    // "opening for writing..." (flush stdout: the checker waits for it), open
    // again with O_WRONLY alone, which blocks until a reader comes, and print
    // "opened". Return the descriptor of that second open.
    (void)path;
    return -1;
}

// Writer `index`: COUNT records of SIZE bytes, one write() each. Returns the
// exit status: 0, or 3 when the reader went away (EPIPE).
static int write_records(int fd, int index, std::size_t size, long count) {
    std::string record(size, static_cast<char>('A' + index));
    record.back() = '\n';
    for (long n = 0; n < count; n++) {
        // TODO 2: write the record with a single write() call (a record
        // cut into several calls can interleave with other writers). On EPIPE,
        // print "fifo_probe: writer INDEX: write: EPIPE (the reader closed the
        // FIFO) after N records" on stderr and return 3; on EINTR try again;
        // on another error, die("write"). A short write (only for records
        // larger than PIPE_BUF) goes on with the rest.
        (void)fd;
    }
    return 0;
}

static int probe_write(const char* path, int writers, std::size_t size, long count) {
    signal(SIGPIPE, SIG_IGN);   // EPIPE from write() instead of death by SIGPIPE
    int fd = open(path, O_WRONLY);   // blocks until the reader is there
    if (fd < 0)
        die("open");
    std::vector<pid_t> pids;
    for (int i = 0; i < writers; i++) {
        pid_t pid = fork();
        if (pid < 0)
            die("fork");
        if (pid == 0)
            _exit(write_records(fd, i, size, count));
        pids.push_back(pid);
    }
    close(fd);   // the writers hold it: the reader's end-of-file comes when they are done
    bool ok = true;
    for (int i = 0; i < writers; i++) {
        int status;
        while (waitpid(pids[i], &status, 0) < 0)
            if (errno != EINTR)
                die("waitpid");
        if (WIFEXITED(status))
            std::fprintf(stderr, "fifo_probe: writer %d: exit status %d\n", i, WEXITSTATUS(status));
        else
            std::fprintf(stderr, "fifo_probe: writer %d: killed by SIG%s\n", i,
                         sigabbrev_np(WTERMSIG(status)));
        ok = ok && WIFEXITED(status) && WEXITSTATUS(status) == 0;
    }
    return ok ? 0 : 1;
}

int main(int argc, char** argv) {
    if (argc == 3 && std::strcmp(argv[1], "open") == 0) {
        int fd = probe_open(argv[2]);
        if (fd < 0)
            return 1;
        const char hello[] = "hello\n";
        if (write(fd, hello, sizeof(hello) - 1) < 0)
            die("write");
        return 0;
    }
    if (argc == 6 && std::strcmp(argv[1], "write") == 0) {
        int writers = std::atoi(argv[3]);
        long size = std::atol(argv[4]), count = std::atol(argv[5]);
        if (writers < 1 || writers > 26 || size < 1 || count < 0)
            die_with("fifo_probe", "WRITERS 1..26, SIZE >= 1, COUNT >= 0");
        return probe_write(argv[2], writers, static_cast<std::size_t>(size), count);
    }
    std::fprintf(stderr, "usage: fifo_probe open FIFO\n"
                         "       fifo_probe write FIFO WRITERS SIZE COUNT\n");
    return 2;
}
