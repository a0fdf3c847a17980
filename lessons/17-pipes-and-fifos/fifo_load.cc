// fifo_load: loads a gzipped CSV file into SQLite with no temporary file.
//
//   usage: fifo_load [-d DIR] SOURCE.csv.gz DATABASE TABLE
//
// sqlite3's `.import` reads a file by its path: it cannot read a pipe from
// its stdin. A FIFO (a named pipe) is a pipe with a path, so it can stand in
// for the file:
//
//   writer:  gzip -dc SOURCE.csv.gz          (stdout: the FIFO)
//   reader:  sqlite3 DATABASE ".import --csv FIFO TABLE"
//
// The decompressed data only ever passes through the pipe's buffer in the
// kernel (64 KiB by default): nothing is written to disk but the database.
// The FIFO is made in DIR (default $TMPDIR, or /tmp), named fifo_load.PID,
// and removed at the end, on failure, and on SIGINT (Ctrl-C) or SIGTERM.
//
// The rendezvous (fifo(7)): opening a FIFO for writing blocks until a reader
// has opened it. If the reader fails before it opens the FIFO (no such
// database directory), a blocking open() would wait for ever. So fifo_load
// starts the reader first, and opens the write end with O_NONBLOCK, which
// fails with ENXIO while there is no reader, checking between tries that the
// reader is still alive. Once both ends are open, fifo_load holds neither:
//   - when the writer ends, the reader sees end-of-file;
//   - when the reader ends early, the writer's next write() fails with EPIPE
//     and raises SIGPIPE, instead of blocking for ever on a full pipe.
// Each child's end is reported on stderr ("fifo_load: gzip: killed by
// SIGPIPE"); the exit status is 0 only if both exited with status 0.
#include "common/errors.h"

#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fcntl.h>
#include <string>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

// What the signal handler needs: plain globals, set before it is installed.
static char fifo_path[4096];
static volatile pid_t writer_pid = 0, reader_pid = 0;

// SIGINT/SIGTERM: remove the FIFO, stop the children, then die of the same
// signal. Only async-signal-safe calls here (signal-safety(7)).
static void on_signal(int sig) {
    // TODO 4: unlink() the FIFO, kill() both children (SIGTERM) if they
    // were started, then restore the default action of `sig` and raise() it,
    // so that our parent sees that we died of it.
    (void)sig;
}

static void install_signal_handlers() {
    struct sigaction action {};
    action.sa_handler = on_signal;
    sigemptyset(&action.sa_mask);
    sigaction(SIGINT, &action, nullptr);
    sigaction(SIGTERM, &action, nullptr);
}

// Forks; the child runs argv with stdout on `out_fd` (if >= 0). Returns its pid.
static pid_t start(const char* const argv[], int out_fd) {
    pid_t pid = fork();
    if (pid < 0)
        die("fork");
    if (pid == 0) {
        signal(SIGINT, SIG_DFL);   // the children die of Ctrl-C the ordinary way
        signal(SIGTERM, SIG_DFL);
        if (out_fd >= 0) {
            if (dup2(out_fd, STDOUT_FILENO) < 0)
                die("dup2");
            close(out_fd);
        }
        execvp(argv[0], const_cast<char* const*>(argv));
        std::fprintf(stderr, "fifo_load: %s: %s\n", argv[0], std::strerror(errno));
        _exit(127);
    }
    return pid;
}

// "exit status N" or "killed by SIGNAME".
static std::string describe(int status) {
    if (WIFSIGNALED(status)) {
        const char* name = sigabbrev_np(WTERMSIG(status));
        return std::string("killed by SIG") + (name ? name : "?");
    }
    return "exit status " + std::to_string(WEXITSTATUS(status));
}

int main(int argc, char** argv) {
    const char* dir = std::getenv("TMPDIR");
    int first = 1;
    if (argc > 2 && std::strcmp(argv[1], "-d") == 0) {
        dir = argv[2];
        first = 3;
    }
    if (argc - first != 3) {
        std::fprintf(stderr, "usage: fifo_load [-d DIR] SOURCE.csv.gz DATABASE TABLE\n");
        return 2;
    }
    const char* source = argv[first];
    const char* database = argv[first + 1];
    const char* table = argv[first + 2];
    if (dir == nullptr || *dir == '\0')
        dir = "/tmp";
    std::snprintf(fifo_path, sizeof(fifo_path), "%s/fifo_load.%d", dir, (int)getpid());

    install_signal_handlers();
    // TODO 1: make the FIFO at fifo_path with mkfifo(), mode 0600
    // (die("mkfifo") on failure), and say so: "fifo_load: FIFO PATH" on stderr.

    std::string import = std::string(".import --csv ") + fifo_path + " " + table;
    const char* reader_argv[] = {"sqlite3", database, import.c_str(), nullptr};
    reader_pid = start(reader_argv, -1);

    bool ok = true;
    // TODO 2: wait until the reader has opened the FIFO: open it with
    // O_WRONLY | O_NONBLOCK, which fails with ENXIO as long as no reader has it
    // open (fifo(7)). Between tries, check with waitpid(WNOHANG) that the
    // reader still runs: if it has ended, report it and give up (the writer is
    // never started). Once open, clear O_NONBLOCK (fcntl F_SETFL) and start the
    // writer (gzip -dc SOURCE) with that descriptor as its stdout; then close it
    // here: fifo_load holds no end of the FIFO.
    (void)source;

    for (int left = writer_pid > 0 ? 2 : 1; left > 0; left--) {
        int status;
        pid_t pid = waitpid(-1, &status, 0);
        if (pid < 0) {
            if (errno == EINTR) {
                left++;
                continue;
            }
            die("waitpid");
        }
        ok = ok && WIFEXITED(status) && WEXITSTATUS(status) == 0;
        // TODO 3: report the child that ended on stderr: "fifo_load: gzip:
        // exit status 0" or "fifo_load: sqlite3: killed by SIGTERM" (describe()
        // has the words).
    }
    if (unlink(fifo_path) < 0)
        die("unlink FIFO");
    if (!ok)
        std::fprintf(stderr, "fifo_load: failed: %s was not loaded whole into %s\n", source, database);
    return ok ? 0 : 1;
}
