// pipeline: runs `PRODUCER | FILTER` the way a shell does.
//
//   usage: pipeline [--pipe-size BYTES] 'PRODUCER' 'FILTER'
//
// Each command is one argument, split into words at spaces (no quoting, no
// globbing: `pipeline 'seq 1 100000' 'grep 7'`). The producer's stdout is the
// write end of a pipe, the filter's stdin its read end; the filter's stdout is
// ours. When both have ended, one line per child goes to stderr:
//
//   pipeline: seq 1 100000: exit status 0
//   pipeline: yes: killed by SIGPIPE
//
// and pipeline exits with the filter's status, as a shell does (128 + N when
// signal N killed it). --pipe-size asks the kernel for a pipe of BYTES with
// fcntl(F_SETPIPE_SZ), and says what F_GETPIPE_SZ gives before and after.
//
// The rule that makes it work: every process closes every pipe descriptor it
// does not use. A reader sees end-of-file only when *no* process holds a write
// end any more, its own included; a writer gets SIGPIPE only when no process
// holds a read end.
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

// Splits a command at spaces into the words execvp() wants.
static std::vector<std::string> words_of(const char* command) {
    std::vector<std::string> words;
    std::string word;
    for (const char* p = command;; p++) {
        if (*p == ' ' || *p == '\0') {
            if (!word.empty())
                words.push_back(word);
            word.clear();
            if (*p == '\0')
                return words;
        } else {
            word += *p;
        }
    }
}

// Replaces this (child) process with the command; never returns.
[[noreturn]] static void exec_command(const char* command) {
    std::vector<std::string> words = words_of(command);
    std::vector<char*> argv;
    for (std::string& w : words)
        argv.push_back(w.data());
    argv.push_back(nullptr);
    if (argv[0] == nullptr) {
        std::fprintf(stderr, "pipeline: empty command\n");
        _exit(127);
    }
    execvp(argv[0], argv.data());
    std::fprintf(stderr, "pipeline: %s: %s\n", argv[0], std::strerror(errno));
    _exit(127);   // what a shell returns for a command it cannot run
}

// Reads the pipe's capacity, asks for `wanted` bytes, and says what it got.
static void set_pipe_size(int fd, int wanted) {
    // TODO 1: print "pipeline: pipe capacity N bytes" with the capacity
    // fcntl(fd, F_GETPIPE_SZ) returns; then ask for `wanted` bytes with
    // F_SETPIPE_SZ (die("fcntl F_SETPIPE_SZ") if it fails: above
    // /proc/sys/fs/pipe-max-size it does, with EPERM), and print
    // "pipeline: pipe capacity now N bytes" with what F_GETPIPE_SZ says then.
    (void)fd;
    (void)wanted;
}

// Forks the producer: its stdout becomes the pipe's write end.
static pid_t start_producer(const char* command, int pipe_fds[2]) {
    pid_t pid = fork();
    if (pid < 0)
        die("fork");
    if (pid == 0) {
        // TODO 2: in the producer: make fd 1 the write end (dup2), then
        // close both of the pipe's original descriptors. A read end left open
        // here means the producer never gets SIGPIPE when the filter quits.
        exec_command(command);
    }
    return pid;
}

// Forks the filter: its stdin becomes the pipe's read end.
static pid_t start_filter(const char* command, int pipe_fds[2]) {
    pid_t pid = fork();
    if (pid < 0)
        die("fork");
    if (pid == 0) {
        // TODO 3: in the filter: make fd 0 the read end (dup2), then
        // close both of the pipe's original descriptors. A write end left open
        // here means the filter waits for ever for an end-of-file that only
        // it could cause.
        exec_command(command);
    }
    return pid;
}

// "exit status N" or "killed by SIGNAME", from a status waitpid() filled in.
static std::string describe(int status) {
    if (WIFEXITED(status))
        return "exit status " + std::to_string(WEXITSTATUS(status));
    if (WIFSIGNALED(status)) {
        const char* name = sigabbrev_np(WTERMSIG(status));
        return std::string("killed by SIG") + (name ? name : std::to_string(WTERMSIG(status)).c_str());
    }
    return "status " + std::to_string(status);
}

// Waits for both children, reports each, returns the shell's status of the filter.
static int wait_for_both(pid_t producer, const char* producer_command, pid_t filter,
                         const char* filter_command) {
    int filter_status = 0;
    // TODO 4: waitpid() for each child (retry on EINTR). For each, print
    // "pipeline: COMMAND: exit status N" or "pipeline: COMMAND: killed by SIGNAME"
    // on stderr (describe() does the words). Keep the filter's status in
    // filter_status.
    (void)producer;
    (void)producer_command;
    (void)filter;
    (void)filter_command;
    if (WIFSIGNALED(filter_status))
        return 128 + WTERMSIG(filter_status);
    return WEXITSTATUS(filter_status);
}

int main(int argc, char** argv) {
    int pipe_size = 0;
    int first = 1;
    if (argc == 5 && std::strcmp(argv[1], "--pipe-size") == 0) {
        pipe_size = std::atoi(argv[2]);
        first = 3;
    }
    if (argc - first != 2) {
        std::fprintf(stderr, "usage: pipeline [--pipe-size BYTES] 'PRODUCER' 'FILTER'\n");
        return 2;
    }
    const char* producer_command = argv[first];
    const char* filter_command = argv[first + 1];

    int pipe_fds[2];
    // Plain pipe(), not pipe2(O_CLOEXEC): closing what each process does not
    // use is this lesson's point (README: O_CLOEXEC is the safety net).
    if (pipe(pipe_fds) < 0)
        die("pipe");
    if (pipe_size > 0)
        set_pipe_size(pipe_fds[0], pipe_size);

    pid_t producer = start_producer(producer_command, pipe_fds);
    pid_t filter = start_filter(filter_command, pipe_fds);
    // TODO 5: the parent uses neither end: close both, now. Its write
    // end would keep the filter from ever seeing end-of-file.
    return wait_for_both(producer, producer_command, filter, filter_command);
}
