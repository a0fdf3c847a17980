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
// fifo_load holds one read end and one write end of the FIFO itself, so that
// neither child ever blocks in open() (fifo(7): opening one end blocks until
// the other end is opened), and it decides when they let go:
//   - when the writer has exited, it closes its write end: the reader then
//     sees end-of-file once it has read everything;
//   - when the reader has exited, it closes its read end: the writer's next
//     write() fails with EPIPE and raises SIGPIPE, instead of blocking for
//     ever on a full pipe that nobody will empty.
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
    // BEGIN TODO 4: unlink() the FIFO, kill() both children (SIGTERM) if they
    // were started, then restore the default action of `sig` and raise() it,
    // so that our parent sees that we died of it.
    //| (void)sig;
    unlink(fifo_path);
    if (writer_pid > 0)
        kill(writer_pid, SIGTERM);
    if (reader_pid > 0)
        kill(reader_pid, SIGTERM);
    signal(sig, SIG_DFL);
    raise(sig);
    // END TODO 4
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
    // BEGIN TODO 1: make the FIFO at fifo_path with mkfifo(), mode 0600
    // (die("mkfifo") on failure), and say so: "fifo_load: FIFO PATH" on stderr.
    if (mkfifo(fifo_path, 0600) < 0)
        die("mkfifo");
    std::fprintf(stderr, "fifo_load: FIFO %s\n", fifo_path);
    // END TODO 1

    // BEGIN TODO 2: open the FIFO twice, for fifo_load itself: read_end with
    // O_RDONLY | O_NONBLOCK (a read open never waits), then write_end with
    // O_WRONLY (it does not block now: a reader, read_end, exists). Add
    // O_CLOEXEC to both: the children must not inherit them. Then start the
    // reader (sqlite3 DATABASE ".import --csv FIFO TABLE"), and the writer
    // (gzip -dc SOURCE), whose stdout is a third descriptor of the FIFO, opened
    // O_WRONLY and closed again here once the writer has it.
    //| int read_end = -1, write_end = -1;
    //| (void)source;
    //| (void)database;
    //| (void)table;
    int read_end = open(fifo_path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    if (read_end < 0)
        die("open FIFO for reading");
    int write_end = open(fifo_path, O_WRONLY | O_CLOEXEC);
    if (write_end < 0)
        die("open FIFO for writing");

    std::string import = std::string(".import --csv ") + fifo_path + " " + table;
    const char* reader_argv[] = {"sqlite3", database, import.c_str(), nullptr};
    reader_pid = start(reader_argv, -1);

    int writer_out = open(fifo_path, O_WRONLY);
    if (writer_out < 0)
        die("open FIFO for the writer");
    const char* writer_argv[] = {"gzip", "-dc", source, nullptr};
    writer_pid = start(writer_argv, writer_out);
    close(writer_out);
    // END TODO 2

    bool ok = true;
    for (int left = 2; left > 0; left--) {
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
        // BEGIN TODO 3: report the child ("fifo_load: gzip: exit status 0",
        // "fifo_load: sqlite3: killed by SIGPIPE"; describe() has the words).
        // Then let go of the FIFO on its side: the writer has ended, so close
        // write_end (the reader sees end-of-file); the reader has ended, so
        // close read_end (the writer gets EPIPE/SIGPIPE instead of blocking).
        if (pid == writer_pid) {
            std::fprintf(stderr, "fifo_load: gzip: %s\n", describe(status).c_str());
            close(write_end);
        } else {
            std::fprintf(stderr, "fifo_load: sqlite3: %s\n", describe(status).c_str());
            close(read_end);
        }
        // END TODO 3
    }
    if (unlink(fifo_path) < 0)
        die("unlink FIFO");
    if (!ok)
        std::fprintf(stderr, "fifo_load: failed: %s was not loaded whole into %s\n", source, database);
    return ok ? 0 : 1;
}
