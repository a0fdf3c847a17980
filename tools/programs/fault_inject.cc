// fault_inject: an LD_PRELOAD library that makes socket I/O short and
// interrupted, on purpose, the way the kernel is allowed to.
//
//   LD_PRELOAD=build/tools/libfaultinject.so NETCOURSE_FAULTS=short_send=1,eintr=3 ./prog
//
// Why: on loopback a blocking send() of a few kilobytes nearly always takes
// every byte, and a read() is rarely interrupted by a signal. Code that
// ignores a short count, or treats EINTR as an error, then passes by luck
// and fails on a real network. Both are in the contract: send(2) and
// write(2) may transfer fewer bytes than asked, recv(2) and read(2) return
// what has arrived, and a call interrupted by a signal handler before it
// moved any data fails with EINTR (signal(7)). This library makes them
// happen every time, at known points, so a check can test for them.
//
// What it does, on stream sockets only (files, pipes, terminals and datagram
// sockets are untouched),
// configured by NETCOURSE_FAULTS, a comma-separated list:
//   short_send=N   send, sendto and write move at most N bytes per call
//   short_recv=N   recv, recvfrom and read ask for at most N bytes per call
//   eintr=K        every K-th call on a blocking socket fails with EINTR
//                  before doing anything (a non-blocking socket never sleeps,
//                  so the kernel would not interrupt it: left alone)
// Every fault it makes is logged (the first 1,000), one line each, to the file
// named by NETCOURSE_FAULTS_LOG (if set):
//   short CALL FD ASKED GIVEN RESULT    e.g. "short send 3 60 1 1"
//   eintr CALL FD ASKED
// so a check can say "send() took 1 of 60 bytes, and your program never sent
// the other 59".
//
// Limits: only calls that go through the dynamic linker are seen (not libc's
// internal calls, static programs or raw syscall()); writev, sendmsg and
// their kind pass through unchanged; not for sanitizer builds, which
// intercept the same functions (as for the lock tracer, tools/programs/lock_trace.cc).
//
// Rules this file keeps, because it runs inside every I/O call: no
// allocation, no locks, no stdio after start-up, errno preserved where the
// caller could see it; each log line is one raw syscall(SYS_write).

// _FORTIFY_SOURCE would turn read() and recv() into inline header wrappers.
#undef _FORTIFY_SOURCE

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <dlfcn.h>
#include <fcntl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

namespace {

struct Settings {
    std::size_t short_send = 0;   // 0: no limit
    std::size_t short_recv = 0;
    long eintr_every = 0;         // 0: never
    int log_fd = -1;
};

Settings settings;
std::atomic<long> calls_on_blocking_sockets{0};
std::atomic<long> faults_logged{0};
constexpr long kMaxLogLines = 1000;   // a 4 MiB reply cut into 1-byte reads would log 4 million

// "name=value" at the start of s? Then value.
bool take(const char* s, const char* name, long& value) {
    std::size_t n = std::strlen(name);
    if (std::strncmp(s, name, n) != 0 || s[n] != '=')
        return false;
    value = std::strtol(s + n + 1, nullptr, 10);
    return true;
}

__attribute__((constructor)) void read_settings() {
    if (const char* spec = std::getenv("NETCOURSE_FAULTS")) {
        for (const char* s = spec; s && *s; s = std::strchr(s, ',') ? std::strchr(s, ',') + 1 : nullptr) {
            long value = 0;
            if (take(s, "short_send", value) && value > 0)
                settings.short_send = static_cast<std::size_t>(value);
            else if (take(s, "short_recv", value) && value > 0)
                settings.short_recv = static_cast<std::size_t>(value);
            else if (take(s, "eintr", value) && value > 0)
                settings.eintr_every = value;
        }
    }
    if (const char* path = std::getenv("NETCOURSE_FAULTS_LOG"))
        settings.log_fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
}

template <typename F>
F real(const char* name) {
    return reinterpret_cast<F>(dlsym(RTLD_NEXT, name));
}

// Only byte streams (TCP, AF_UNIX stream) may be cut short: a datagram is
// sent and received whole or not at all, so a short one would be a lie.
bool is_stream_socket(int fd) {
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISSOCK(st.st_mode))
        return false;
    int type = 0;
    socklen_t len = sizeof(type);
    return getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) == 0 && type == SOCK_STREAM;
}

bool is_blocking(int fd) {
    int flags = fcntl(fd, F_GETFL);
    return flags >= 0 && !(flags & O_NONBLOCK);
}

// Appends n as decimal to out; returns the new end.
char* put_number(char* out, long long n) {
    char digits[24];
    int len = 0;
    bool negative = n < 0;
    unsigned long long u = negative ? 0ULL - static_cast<unsigned long long>(n) : static_cast<unsigned long long>(n);
    do {
        digits[len++] = static_cast<char>('0' + u % 10);
        u /= 10;
    } while (u);
    if (negative)
        *out++ = '-';
    while (len)
        *out++ = digits[--len];
    return out;
}

char* put_text(char* out, const char* text) {
    while (*text)
        *out++ = *text++;
    return out;
}

void log_fault(const char* kind, const char* call, int fd, long long asked, long long given, long long result) {
    if (settings.log_fd < 0 || ++faults_logged > kMaxLogLines)
        return;
    int saved = errno;
    char line[160];
    char* p = put_text(line, kind);
    *p++ = ' ';
    p = put_text(p, call);
    for (long long n : {static_cast<long long>(fd), asked, given, result}) {
        if (n == -2)           // (not part of this kind of line)
            continue;
        *p++ = ' ';
        p = put_number(p, n);
    }
    *p++ = '\n';
    syscall(SYS_write, settings.log_fd, line, static_cast<std::size_t>(p - line));
    errno = saved;
}

// Should this call fail with EINTR before doing anything?
bool interrupt_now(int fd, const char* call, std::size_t asked) {
    if (settings.eintr_every <= 0 || !is_blocking(fd))
        return false;
    long n = ++calls_on_blocking_sockets;
    if (n % settings.eintr_every != 0)
        return false;
    log_fault("eintr", call, fd, static_cast<long long>(asked), -2, -2);
    errno = EINTR;
    return true;
}

std::size_t limited(std::size_t asked, std::size_t limit) {
    return limit && asked > limit ? limit : asked;
}

// One call on fd: maybe interrupted, maybe cut down to `limit` bytes, then the real call.
template <typename Call>
ssize_t with_faults(const char* name, int fd, std::size_t asked, std::size_t limit, Call call) {
    if (!is_stream_socket(fd))
        return call(asked);
    if (interrupt_now(fd, name, asked))
        return -1;
    std::size_t given = limited(asked, limit);
    ssize_t result = call(given);
    if (given < asked && result > 0)   // (-1, e.g. EAGAIN, or 0 at the end: nothing was cut)
        log_fault("short", name, fd, static_cast<long long>(asked), static_cast<long long>(given), result);
    return result;
}

template <typename Call>
ssize_t sending(const char* name, int fd, std::size_t asked, Call call) {
    return with_faults(name, fd, asked, settings.short_send, call);
}

template <typename Call>
ssize_t receiving(const char* name, int fd, std::size_t asked, Call call) {
    return with_faults(name, fd, asked, settings.short_recv, call);
}

using ReadFn = ssize_t (*)(int, void*, std::size_t);
using WriteFn = ssize_t (*)(int, const void*, std::size_t);
using RecvFn = ssize_t (*)(int, void*, std::size_t, int);
using SendFn = ssize_t (*)(int, const void*, std::size_t, int);
using RecvFromFn = ssize_t (*)(int, void*, std::size_t, int, sockaddr*, socklen_t*);
using SendToFn = ssize_t (*)(int, const void*, std::size_t, int, const sockaddr*, socklen_t);

}  // namespace

extern "C" {

ssize_t read(int fd, void* buf, std::size_t n) {
    static ReadFn next = real<ReadFn>("read");
    return receiving("read", fd, n, [&](std::size_t k) { return next(fd, buf, k); });
}

ssize_t write(int fd, const void* buf, std::size_t n) {
    static WriteFn next = real<WriteFn>("write");
    return sending("write", fd, n, [&](std::size_t k) { return next(fd, buf, k); });
}

ssize_t recv(int fd, void* buf, std::size_t n, int flags) {
    static RecvFn next = real<RecvFn>("recv");
    return receiving("recv", fd, n, [&](std::size_t k) { return next(fd, buf, k, flags); });
}

ssize_t send(int fd, const void* buf, std::size_t n, int flags) {
    static SendFn next = real<SendFn>("send");
    return sending("send", fd, n, [&](std::size_t k) { return next(fd, buf, k, flags); });
}

ssize_t recvfrom(int fd, void* buf, std::size_t n, int flags, sockaddr* from, socklen_t* len) {
    static RecvFromFn next = real<RecvFromFn>("recvfrom");
    return receiving("recvfrom", fd, n, [&](std::size_t k) { return next(fd, buf, k, flags, from, len); });
}

ssize_t sendto(int fd, const void* buf, std::size_t n, int flags, const sockaddr* to, socklen_t len) {
    static SendToFn next = real<SendToFn>("sendto");
    return sending("sendto", fd, n, [&](std::size_t k) { return next(fd, buf, k, flags, to, len); });
}

}  // extern "C"
