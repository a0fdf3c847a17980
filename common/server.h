// server.h: what every course server does the same way, so that each
// lesson's file shows only its own idea.
//
// The conventions (graders and later lessons rely on them):
//   * `-p PORT` chooses the port; `-p 0` asks the kernel for a free one;
//   * the server listens on 127.0.0.1 only, so that only programs on this
//     machine can reach it; `-b ADDRESS` chooses another address (`-b 0.0.0.0`:
//     every IPv4 address of the machine, for an instructor whose room connects);
//   * once listening, the server prints "port N" as its first line on stdout;
//   * SIGINT and SIGTERM end it with exit status 0;
//   * SIGPIPE is ignored: writing to a peer that went away is an error
//     (EPIPE) to handle, not a reason to die.
#pragma once

struct ServerOptions {
    int port = -1;                      // from -p; 0 means "any free port"
    const char* bind_address = "127.0.0.1";  // from -b: an IPv4 address, "0.0.0.0" for all
};

// Parses `-p PORT [-b ADDRESS]`. Prints a usage line and exits 2 on bad input.
// (It reads argv with getopt(), from where the global optind points: 1 at
// the start of a program.)
ServerOptions parse_server_options(int argc, char** argv);

// Parses a decimal port number 0..65535. Returns -1 if text is not one.
int parse_port(const char* text);

// socket + SO_REUSEADDR + bind + listen, for the servers of lessons after 02
// (lesson 02 writes these calls out by hand). Exits via die() on failure.
int listen_tcp(const ServerOptions& options);

// accept() that rides out what one client can cause: a connection reset
// before it was accepted, a signal, running out of descriptors for a moment.
// Returns the connected socket; exits via die() only if listen_fd is unusable.
int accept_client(int listen_fd);

// Puts fd in non-blocking mode (lessons 12-14): read(), write() and accept()
// on it then return -1 with errno EAGAIN instead of waiting.
void set_nonblocking(int fd);

// Says, once per process, that accept() has run out of descriptors
// (EMFILE/ENFILE). An event loop finds the listener ready again on every
// turn while that lasts, and would otherwise print it thousands of times.
void warn_out_of_descriptors();

// Raises this process's soft limit on open descriptors (RLIMIT_NOFILE) to
// its hard limit, the most an unprivileged process may have, and returns
// the new limit. Shells start programs with a soft limit of 1024: enough
// for an editor, not for 10,000 clients (lesson 14).
long raise_open_files_limit();

// Prints "port N" (the port fd is bound to) on stdout and flushes it.
void announce_port(int listen_fd);

// Installs the SIGINT/SIGTERM/SIGPIPE behaviour described above.
void stop_on_signals();
