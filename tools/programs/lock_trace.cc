// lock_trace: an LD_PRELOAD library that records which mutexes a program
// takes, and whether it does network I/O while holding one.
//
//   LD_PRELOAD=build/tools/liblocktrace.so LOCKTRACE_FILE=/tmp/trace ./server -p 0
//
// Why: "never hold a lock across network I/O" (WeensyDB, lessons 05-06) is
// hard to prove by timing: a slow client makes the bad server stall only if
// the race is lost at the right moment. This trace shows it directly: the
// checker reads which mutexes each request took, and every read/write on a
// socket made while a mutex was held.
//
// What it writes: one line per event, appended to the file named by
// LOCKTRACE_FILE (TID is the kernel thread id, ADDR the mutex's address):
//   lock TID 0xADDR                     after a thread acquired a mutex
//   unlock TID 0xADDR                   before it releases it
//   io TID CALL FD held=0xA,0xB         before CALL (read, send…) on a socket FD,
//                                       made while holding mutexes A and B
// I/O with no mutex held, or on something other than a socket, is not logged.
// Without LOCKTRACE_FILE the library only forwards every call.
//
// How: it defines pthread_mutex_lock, _trylock and _unlock and the socket
// I/O calls; the dynamic linker finds these before libc's, and each calls
// the real one, found with dlsym(RTLD_NEXT, ...). std::mutex works too:
// libstdc++'s std::mutex::lock is inline code that calls pthread_mutex_lock
// through the program's PLT, even at -O2.
//
// Limits:
//   * only calls that go through the dynamic linker are seen: calls inside
//     libc itself (stdio's writes, glibc's own locks), statically linked
//     programs and raw syscall() are invisible;
//   * only pthread_mutex_lock/trylock/unlock: timed locks, rwlocks, spin
//     locks and condition variables' internal relocking are not traced (a
//     mutex stays "held" across pthread_cond_wait, as the caller sees it);
//   * a thread tracks at most kMaxHeld mutexes at once (more are logged but
//     not listed in held=);
//   * not for sanitizer builds: TSan and ASan intercept the same functions
//     and want to be loaded first. Use it on plain (-O2) builds only;
//   * LD_PRELOAD only (its thread-local state uses the initial-exec TLS
//     model, which dlopen cannot always provide);
//   * if the program closes or dup2()s over the trace file's descriptor,
//     lines go wherever that descriptor now points.
//
// Rules this file keeps, because it runs inside every lock and I/O call:
// no allocation, no locks, no stdio, errno preserved; each line is written
// with ONE raw syscall(SYS_write) so lines from different threads never
// interleave and the interposed write() is never re-entered.

// _FORTIFY_SOURCE (on by default in some distributions) would turn read()
// and recv() into inline wrappers in the headers, clashing with ours.
#undef _FORTIFY_SOURCE

#include <atomic>
#include <cerrno>
#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <dlfcn.h>
#include <fcntl.h>
#include <pthread.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

namespace {

constexpr int kMaxHeld = 32;

// Per-thread state: plain zero-initialised data, so no TLS constructor runs
// and, with initial-exec, no __tls_get_addr (which may allocate) is called.
#define LOCKTRACE_TLS thread_local __attribute__((tls_model("initial-exec")))
LOCKTRACE_TLS void* t_held[kMaxHeld];   // addresses of the mutexes this thread holds
LOCKTRACE_TLS int t_nheld;              // how many of t_held are in use
LOCKTRACE_TLS int t_overflow;           // held mutexes that did not fit in t_held
LOCKTRACE_TLS bool t_resolving;         // inside dlsym: do not recurse into it

// The trace file: kUnopened until the first event looks at LOCKTRACE_FILE,
// then a descriptor, or kDisabled.
constexpr int kUnopened = -2;
constexpr int kDisabled = -1;
std::atomic<int> g_trace_fd{kUnopened};

// Restores errno on scope exit: tracing must never change what the caller sees.
struct KeepErrno {
    int saved = errno;
    ~KeepErrno() { errno = saved; }
};

void raw_write(int fd, const char* text, std::size_t n) {
    syscall(SYS_write, fd, text, n);
}

// Writes one line (already ending in \n, `length` bytes as snprintf counted
// them) in one write, so it cannot interleave with another thread's.
void emit(int fd, const char* line, int length) {
    if (length > 0)
        raw_write(fd, line, static_cast<std::size_t>(length));
}

// The trace file's descriptor, or kDisabled. Opened on first use (which may
// be before main, so nothing here relies on constructors having run). Two
// threads racing here may both open the file; one keeps its descriptor.
int trace_fd() {
    int fd = g_trace_fd.load(std::memory_order_acquire);
    if (fd != kUnopened)
        return fd;
    KeepErrno keep;
    const char* path = std::getenv("LOCKTRACE_FILE");
    int opened = kDisabled;
    if (path != nullptr && path[0] != '\0') {
        opened = static_cast<int>(syscall(SYS_openat, AT_FDCWD, path,
                                          O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644));
        if (opened < 0) {
            const char* why = strerrorname_np(errno);   // "ENOENT": a static string, no locale
            char message[512];
            int n = std::snprintf(message, sizeof(message),
                                  "locktrace: cannot open LOCKTRACE_FILE=%s (%s): not tracing\n", path,
                                  why != nullptr ? why : "?");
            if (n >= static_cast<int>(sizeof(message))) {   // a very long path: cut it short
                n = static_cast<int>(sizeof(message)) - 1;
                message[n - 1] = '\n';
            }
            emit(2, message, n);
            opened = kDisabled;
        }
    }
    int expected = kUnopened;
    if (!g_trace_fd.compare_exchange_strong(expected, opened, std::memory_order_acq_rel)) {
        if (opened >= 0)
            syscall(SYS_close, opened);   // another thread won: use its descriptor
        return expected;
    }
    return opened;
}

long thread_id() {
    return syscall(SYS_gettid);
}

void log_lock(const char* kind, void* mutex) {
    int fd = trace_fd();
    if (fd < 0)
        return;
    KeepErrno keep;
    char line[96];   // "unlock", a tid and an address need under 50
    int n = std::snprintf(line, sizeof(line), "%s %ld 0x%" PRIxPTR "\n", kind, thread_id(),
                          reinterpret_cast<std::uintptr_t>(mutex));
    emit(fd, line, n);
}

void remember_held(void* mutex) {
    if (t_nheld < kMaxHeld)
        t_held[t_nheld++] = mutex;
    else
        t_overflow++;
}

void forget_held(void* mutex) {
    // Search from the newest: locks are usually released in reverse order.
    for (int i = t_nheld - 1; i >= 0; i--) {
        if (t_held[i] == mutex) {
            std::memmove(&t_held[i], &t_held[i + 1],
                         static_cast<std::size_t>(t_nheld - i - 1) * sizeof(void*));
            t_nheld--;
            return;
        }
    }
    if (t_overflow > 0)
        t_overflow--;
    // Otherwise another thread locked it (or it was locked before tracing
    // began): nothing of ours to forget.
}

// Before an I/O call: if this thread holds a mutex and fd is a socket, log
// the call with the mutexes held. fstat each time: descriptors are reused.
void log_io(const char* call, int fd) {
    if (t_nheld == 0 && t_overflow == 0)
        return;
    int trace = trace_fd();
    if (trace < 0 || fd == trace)
        return;
    KeepErrno keep;
    struct stat st;
    if (syscall(SYS_fstat, fd, &st) != 0 || !S_ISSOCK(st.st_mode))
        return;
    // Room for every held address (at most 18 characters and a comma each),
    // so nothing below is ever cut short.
    char line[96 + kMaxHeld * 20];
    int n = std::snprintf(line, sizeof(line), "io %ld %s %d held=", thread_id(), call, fd);
    for (int i = 0; i < t_nheld; i++)
        n += std::snprintf(line + n, sizeof(line) - static_cast<std::size_t>(n), "%s0x%" PRIxPTR,
                           i > 0 ? "," : "", reinterpret_cast<std::uintptr_t>(t_held[i]));
    line[n++] = '\n';
    emit(trace, line, n);
}

// The next definition of `name` after this library (libc's), found once.
// t_resolving guards against dlsym itself calling one of our functions.
void* lookup(const char* name) {
    t_resolving = true;
    void* found = dlsym(RTLD_NEXT, name);
    t_resolving = false;
    if (found == nullptr) {
        static const char kMessage[] = "locktrace: dlsym(RTLD_NEXT) found no definition to forward to\n";
        raw_write(2, kMessage, sizeof(kMessage) - 1);
        std::abort();
    }
    return found;
}

template <typename Function>
Function real(std::atomic<Function>& slot, const char* name) {
    Function f = slot.load(std::memory_order_acquire);
    if (f == nullptr) {
        f = reinterpret_cast<Function>(lookup(name));
        slot.store(f, std::memory_order_release);
    }
    return f;
}

// One cached pointer per forwarded function. REAL(fn) is the real fn.
#define DEFINE_REAL(fn, type) std::atomic<type> real_##fn{nullptr};
#define REAL(fn) real(real_##fn, #fn)

using LockFn = int (*)(pthread_mutex_t*);
using ReadFn = ssize_t (*)(int, void*, size_t);
using WriteFn = ssize_t (*)(int, const void*, size_t);
using RecvFn = ssize_t (*)(int, void*, size_t, int);
using SendFn = ssize_t (*)(int, const void*, size_t, int);
using RecvfromFn = ssize_t (*)(int, void*, size_t, int, sockaddr*, socklen_t*);
using SendtoFn = ssize_t (*)(int, const void*, size_t, int, const sockaddr*, socklen_t);
using ReadvFn = ssize_t (*)(int, const iovec*, int);
using RecvmsgFn = ssize_t (*)(int, msghdr*, int);
using SendmsgFn = ssize_t (*)(int, const msghdr*, int);
using ReadChkFn = ssize_t (*)(int, void*, size_t, size_t);
using RecvChkFn = ssize_t (*)(int, void*, size_t, size_t, int);
using RecvfromChkFn = ssize_t (*)(int, void*, size_t, size_t, int, sockaddr*, socklen_t*);

DEFINE_REAL(pthread_mutex_lock, LockFn)
DEFINE_REAL(pthread_mutex_trylock, LockFn)
DEFINE_REAL(pthread_mutex_unlock, LockFn)
DEFINE_REAL(read, ReadFn)
DEFINE_REAL(write, WriteFn)
DEFINE_REAL(recv, RecvFn)
DEFINE_REAL(send, SendFn)
DEFINE_REAL(recvfrom, RecvfromFn)
DEFINE_REAL(sendto, SendtoFn)
DEFINE_REAL(readv, ReadvFn)
DEFINE_REAL(writev, ReadvFn)
DEFINE_REAL(recvmsg, RecvmsgFn)
DEFINE_REAL(sendmsg, SendmsgFn)
DEFINE_REAL(__read_chk, ReadChkFn)
DEFINE_REAL(__recv_chk, RecvChkFn)
DEFINE_REAL(__recvfrom_chk, RecvfromChkFn)

}  // namespace

// ---- the interposed functions ------------------------------------------------
//
// While this thread is inside dlsym (t_resolving), the real functions may not
// be known yet. glibc's dlsym takes only its own internal locks and does no
// socket I/O, so this never happens in practice; if it did, the mutex calls
// would pretend to succeed (the program is still single-threaded at that
// point) and the I/O calls go straight to the kernel.

extern "C" {

int pthread_mutex_lock(pthread_mutex_t* mutex) noexcept {
    if (t_resolving && real_pthread_mutex_lock.load() == nullptr)
        return 0;
    int rc = REAL(pthread_mutex_lock)(mutex);
    if (rc == 0 && trace_fd() >= 0) {
        remember_held(mutex);
        log_lock("lock", mutex);
    }
    return rc;
}

int pthread_mutex_trylock(pthread_mutex_t* mutex) noexcept {
    if (t_resolving && real_pthread_mutex_trylock.load() == nullptr)
        return 0;
    int rc = REAL(pthread_mutex_trylock)(mutex);
    if (rc == 0 && trace_fd() >= 0) {
        remember_held(mutex);
        log_lock("lock", mutex);
    }
    return rc;
}

int pthread_mutex_unlock(pthread_mutex_t* mutex) noexcept {
    if (t_resolving && real_pthread_mutex_unlock.load() == nullptr)
        return 0;
    if (trace_fd() >= 0) {
        // Logged before the release: once released, another thread's "lock"
        // line may follow at once, and the trace must show them in order.
        log_lock("unlock", mutex);
        forget_held(mutex);
    }
    return REAL(pthread_mutex_unlock)(mutex);
}

ssize_t read(int fd, void* buf, size_t n) {
    if (t_resolving && real_read.load() == nullptr)
        return syscall(SYS_read, fd, buf, n);
    log_io("read", fd);
    return REAL(read)(fd, buf, n);
}

ssize_t write(int fd, const void* buf, size_t n) {
    if (t_resolving && real_write.load() == nullptr)
        return syscall(SYS_write, fd, buf, n);
    log_io("write", fd);
    return REAL(write)(fd, buf, n);
}

ssize_t recv(int fd, void* buf, size_t n, int flags) {
    if (t_resolving && real_recv.load() == nullptr)
        return syscall(SYS_recvfrom, fd, buf, n, flags, nullptr, nullptr);
    log_io("recv", fd);
    return REAL(recv)(fd, buf, n, flags);
}

ssize_t send(int fd, const void* buf, size_t n, int flags) {
    if (t_resolving && real_send.load() == nullptr)
        return syscall(SYS_sendto, fd, buf, n, flags, nullptr, 0);
    log_io("send", fd);
    return REAL(send)(fd, buf, n, flags);
}

ssize_t recvfrom(int fd, void* buf, size_t n, int flags, sockaddr* from, socklen_t* from_len) {
    if (t_resolving && real_recvfrom.load() == nullptr)
        return syscall(SYS_recvfrom, fd, buf, n, flags, from, from_len);
    log_io("recvfrom", fd);
    return REAL(recvfrom)(fd, buf, n, flags, from, from_len);
}

ssize_t sendto(int fd, const void* buf, size_t n, int flags, const sockaddr* to, socklen_t to_len) {
    if (t_resolving && real_sendto.load() == nullptr)
        return syscall(SYS_sendto, fd, buf, n, flags, to, to_len);
    log_io("sendto", fd);
    return REAL(sendto)(fd, buf, n, flags, to, to_len);
}

ssize_t readv(int fd, const iovec* iov, int count) {
    if (t_resolving && real_readv.load() == nullptr)
        return syscall(SYS_readv, fd, iov, count);
    log_io("readv", fd);
    return REAL(readv)(fd, iov, count);
}

ssize_t writev(int fd, const iovec* iov, int count) {
    if (t_resolving && real_writev.load() == nullptr)
        return syscall(SYS_writev, fd, iov, count);
    log_io("writev", fd);
    return REAL(writev)(fd, iov, count);
}

ssize_t recvmsg(int fd, msghdr* message, int flags) {
    if (t_resolving && real_recvmsg.load() == nullptr)
        return syscall(SYS_recvmsg, fd, message, flags);
    log_io("recvmsg", fd);
    return REAL(recvmsg)(fd, message, flags);
}

ssize_t sendmsg(int fd, const msghdr* message, int flags) {
    if (t_resolving && real_sendmsg.load() == nullptr)
        return syscall(SYS_sendmsg, fd, message, flags);
    log_io("sendmsg", fd);
    return REAL(sendmsg)(fd, message, flags);
}

// With -D_FORTIFY_SOURCE (the default on Ubuntu), read, recv and recvfrom
// into a buffer of known size compile to these checked versions instead.
// They are logged under the name the programmer wrote.
ssize_t __read_chk(int fd, void* buf, size_t n, size_t buf_size) {
    log_io("read", fd);
    return REAL(__read_chk)(fd, buf, n, buf_size);
}

ssize_t __recv_chk(int fd, void* buf, size_t n, size_t buf_size, int flags) {
    log_io("recv", fd);
    return REAL(__recv_chk)(fd, buf, n, buf_size, flags);
}

ssize_t __recvfrom_chk(int fd, void* buf, size_t n, size_t buf_size, int flags, sockaddr* from,
                       socklen_t* from_len) {
    log_io("recvfrom", fd);
    return REAL(__recvfrom_chk)(fd, buf, n, buf_size, flags, from, from_len);
}

}  // extern "C"
