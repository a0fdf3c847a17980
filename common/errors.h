// errors.h: how every course program reports a failed system call.
//
// The convention: name the call that failed, let strerror explain why,
// and exit non-zero, e.g. "connect: Connection refused".
#pragma once

// Prints "CALL: <strerror(errno)>" to stderr and exits with status 1.
[[noreturn]] void die(const char* call);

// Prints "CONTEXT: MESSAGE" to stderr and exits with status 1, for errors
// that are not in errno (getaddrinfo's, bad command-line arguments).
[[noreturn]] void die_with(const char* context, const char* message);
