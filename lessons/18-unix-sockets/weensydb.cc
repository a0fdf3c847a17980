// WeensyDB, preforked: one acceptor process, N worker processes.
//
//   usage: weensydb -p PORT [-b ADDRESS] [-w WORKERS] [-n NAME | -u PATH] [-s DIR]
//
//   -w WORKERS  how many worker processes (default 4)
//   -n NAME     the admin socket's abstract name, @NAME (default weensydb-PORT)
//   -u PATH     the admin socket on a path in the file system instead (to compare)
//   -s DIR      make a status file for the HTTP page in DIR, and delete it at once
//
// The acceptor accepts every TCP client and hands the connected socket to a
// worker over an AF_UNIX socket pair, as SCM_RIGHTS ancillary data. The
// worker gets a new descriptor for the same socket; the acceptor closes its
// own, so from then on only the worker holds the connection. The worker
// serves it with the course's request reader (common/wdb_request.h), on a
// thread of its own, against a table in shared memory (shared_table.h).
//
// Around that core, the tricks of AF_UNIX:
//   * the admin socket has an abstract name: binding it twice fails with
//     EADDRINUSE, so it is also the "only one instance" lock, and it leaves
//     nothing behind when the process dies, even by kill -9;
//   * it answers `stats` and `shutdown` only to a client running as our own
//     uid, which the kernel tells us (SO_PEERCRED), no password needed;
//   * one TCP port serves WeensyDB and a one-line HTTP status page: the
//     worker looks at the first bytes with MSG_PEEK, which leaves them in
//     the socket for whoever reads next;
//   * the status file is deleted as soon as it is written: the name is gone,
//     the data stays while a descriptor refers to it, and that descriptor
//     is passed to each worker like a socket.
#include "shared_table.h"

#include "common/errors.h"
#include "common/io.h"
#include "common/server.h"
#include "common/wdb_request.h"

#include <arpa/inet.h>
#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstddef>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fcntl.h>
#include <poll.h>
#include <string>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>
#include <vector>

namespace {

constexpr int MAX_WORKERS = 64;
constexpr std::size_t TABLE_MIB = 256;   // address space; pages are used only as values arrive

struct Options {
    ServerOptions server;
    int workers = 4;
    std::string name;            // abstract admin name, without the leading '\0'
    const char* path = nullptr;  // or a path admin socket
    const char* status_dir = nullptr;   // where to make the status file
};

struct Worker {
    pid_t pid = -1;
    int channel = -1;            // the acceptor's end of the socket pair to this worker
};

// What the acceptor keeps. Every descriptor here is the acceptor's alone: a
// forked worker closes them all (close_acceptor_descriptors).
struct Acceptor {
    int listener = -1;
    int admin = -1;
    int status = -1;             // the deleted status file
    Worker workers[MAX_WORKERS];
    int nworkers = 0;
    int next = 0;                // round robin
    long handed_off = 0;
};

volatile sig_atomic_t child_ended = 0;

}  // namespace

// ---- passing descriptors ----------------------------------------------------

// Sends fd over the AF_UNIX socket `channel`, with one byte of ordinary data
// (`kind`: 'C' a client, 'S' the status file): ancillary data never travels
// alone. False if the worker is gone (EPIPE).
static bool send_fd(int channel, int fd, char kind) {
    // TODO 1: send fd as SCM_RIGHTS ancillary data: a msghdr whose one
    // iovec carries `kind`, and a control buffer (CMSG_SPACE(sizeof(int)))
    // with one cmsghdr, level SOL_SOCKET, type SCM_RIGHTS, the descriptor in
    // CMSG_DATA. sendmsg with MSG_NOSIGNAL.
    (void)channel; (void)fd; (void)kind;
    return false;
}

// Receives one descriptor sent by send_fd; its kind in *kind. Returns -1
// when the acceptor has gone (end of file) or sent no descriptor.
static int receive_fd(int channel, char* kind) {
    // TODO 2: recvmsg one byte with a control buffer of
    // CMSG_SPACE(sizeof(int)) (MSG_CMSG_CLOEXEC); the new descriptor is in
    // CMSG_DATA of the first cmsghdr, if it is SOL_SOCKET/SCM_RIGHTS.
    (void)kind;
    char byte;
    (void)!read(channel, &byte, 1);   // waits for a byte; takes no descriptor
    return -1;
}

// ---- a worker -----------------------------------------------------------------

static int status_fd = -1;   // the worker's descriptor of the deleted status file

// The one-line status page: the status file's text, read through the
// descriptor (the file has no name any more).
static void serve_status_page(int client) {
    char text[512] = "(no status file)";
    if (status_fd >= 0) {
        ssize_t n = pread(status_fd, text, sizeof(text) - 1, 0);
        text[n > 0 ? n : 0] = '\0';
        if (char* newline = std::strchr(text, '\n'))
            *newline = '\0';
    }
    char request[4096];
    if (read(client, request, sizeof(request)) < 0) {
        // (the page goes out whatever the request said)
    }
    std::string page = "HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\nConnection: close\r\n\r\n";
    page += "weensydb worker " + std::to_string(getpid()) + ": " + text + "\n";
    write_all(client, page.data(), page.size());
}

// Is this client speaking HTTP? No WeensyDB command starts with a capital
// G, so one byte usually decides; for a G, wait for four and compare with
// "GET ". MSG_PEEK leaves every byte in the socket for the real reader.
static bool looks_like_http(int client) {
    // TODO 3: peek (recv with MSG_PEEK) at the first byte; if it is 'G',
    // peek at four (MSG_PEEK | MSG_WAITALL) and compare them with "GET ".
    // Nothing may be consumed: the WeensyDB reader must still see every byte.
    (void)client;
    return false;
}

// Serves one client until it closes the connection (as lesson 10 does).
static void handle_connection(int client) {
    if (looks_like_http(client)) {
        serve_status_page(client);
    } else {
        RequestReader in(client);
        Request request;
        while (read_request(in, request)) {
            std::string reply;
            shared_table_run(request, reply);
            if (!request.noreply && !write_all(client, reply.data(), reply.size()))
                break;
        }
    }
    close(client);
}

// A worker's life: take whatever the acceptor passes, until it goes away.
[[noreturn]] static void worker_main(int channel) {
    prctl(PR_SET_PDEATHSIG, SIGKILL);   // the acceptor killed: we go too
    if (getppid() == 1)                  // (it died before the line above)
        _exit(0);
    while (true) {
        char kind = 0;
        int fd = receive_fd(channel, &kind);
        if (fd < 0)
            _exit(0);
        if (kind == 'S') {
            status_fd = fd;
        } else {
            std::thread(handle_connection, fd).detach();
        }
    }
}

// A new worker has every descriptor the acceptor had at fork(); it keeps
// only its own end of the pair (and 0, 1, 2).
static void close_acceptor_descriptors(const Acceptor& a) {
    close(a.listener);
    close(a.admin);
    close(a.status);
    for (int i = 0; i < a.nworkers; i++)
        if (a.workers[i].channel >= 0)
            close(a.workers[i].channel);
}

// Forks worker i, and passes it the status file.
static void start_worker(Acceptor& a, int i) {
    int pair[2];
    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, pair) != 0)
        die("socketpair");
    pid_t pid = fork();
    if (pid < 0)
        die("fork");
    if (pid == 0) {
        close(pair[0]);
        close_acceptor_descriptors(a);
        signal(SIGCHLD, SIG_DFL);
        worker_main(pair[1]);
    }
    close(pair[1]);
    a.workers[i] = {pid, pair[0]};
    if (a.status >= 0)
        send_fd(pair[0], a.status, 'S');
}

// Reaps every worker that ended and starts one in its place.
static void replace_dead_workers(Acceptor& a) {
    int status;
    pid_t pid;
    while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
        for (int i = 0; i < a.nworkers; i++) {
            if (a.workers[i].pid != pid)
                continue;
            std::fprintf(stderr, "weensydb: worker %d ended (%s %d); starting another\n", pid,
                         WIFSIGNALED(status) ? "signal" : "status",
                         WIFSIGNALED(status) ? WTERMSIG(status) : WEXITSTATUS(status));
            close(a.workers[i].channel);
            start_worker(a, i);
        }
    }
}

// Accepts one client and hands it to the next worker.
static void hand_off_client(Acceptor& a) {
    int client = accept4(a.listener, nullptr, nullptr, SOCK_CLOEXEC);
    if (client < 0)
        return;   // gone before we came, or a signal: poll again
    bool passed = false;
    for (int tries = 0; tries < a.nworkers && !passed; tries++) {
        Worker& w = a.workers[a.next];
        a.next = (a.next + 1) % a.nworkers;
        passed = send_fd(w.channel, client, 'C');
        // Not passed: that worker is gone (EPIPE); SIGCHLD will replace it. Try the next.
    }
    if (passed) {
        a.handed_off++;
    } else {   // no worker took it: say so, rather than leave the client waiting
        static const char refusal[] = "SERVER_ERROR no worker took the connection\r\n";
        write_all(client, refusal, sizeof(refusal) - 1);
    }
    // TODO 4: the worker has its own descriptor for the client now.
    // What does the acceptor do with its copy?

}

// ---- the admin socket -------------------------------------------------------

// Binds the admin socket: abstract (@name) or at a path. EADDRINUSE means
// another instance holds the name: say so and exit 1.
static int claim_admin_socket(const Options& o) {
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        die("socket");
    sockaddr_un address = {};
    address.sun_family = AF_UNIX;
    socklen_t length;
    if (o.path) {
        if (std::strlen(o.path) >= sizeof(address.sun_path))
            die_with("-u", "path too long for sun_path");
        std::strcpy(address.sun_path, o.path);
        length = sizeof(address);
    } else {
        // TODO 5: an abstract name starts with a '\0' byte, and its
        // length is exactly what `length` says: offsetof(sockaddr_un,
        // sun_path) + 1 + the name's size, no terminating '\0' counted.
        std::memcpy(address.sun_path + 1, o.name.data(), o.name.size());
        length = sizeof(address);
    }
    if (bind(fd, reinterpret_cast<sockaddr*>(&address), length) != 0) {
        if (errno == EADDRINUSE) {
            std::fprintf(stderr, "weensydb: another instance is running: %s%s is in use (EADDRINUSE)\n",
                         o.path ? "" : "@", o.path ? o.path : o.name.c_str());
            std::exit(1);
        }
        die("bind admin socket");
    }
    if (listen(fd, 16) != 0)
        die("listen admin socket");
    return fd;
}

// The uid of the process at the other end of an AF_UNIX connection, as the
// kernel recorded it when that process called connect().
static uid_t peer_uid(int client) {
    // TODO 6: getsockopt SO_PEERCRED (struct ucred) on the connected
    // client socket, and return its uid. (-1 if the call fails.)
    (void)client;
    return geteuid();
}

static void reply_line(int fd, const std::string& line) {
    write_all(fd, line.data(), line.size());
}

// One command line, read within a second in all (the acceptor must not wait long for
// anyone). A stream keeps no message boundaries: a read() may return part of the line,
// so read until its newline, the end, or a full buffer.
static std::string read_command(int fd) {
    constexpr std::size_t MAX_COMMAND = 63;
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(1);
    std::string line;
    while (line.size() < MAX_COMMAND && line.find('\n') == std::string::npos) {
        auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
            deadline - std::chrono::steady_clock::now());
        pollfd readable = {fd, POLLIN, 0};
        if (left.count() <= 0 || poll(&readable, 1, static_cast<int>(left.count())) <= 0)
            break;   // out of time (or poll failed): take what came
        char buf[MAX_COMMAND];
        ssize_t n = read(fd, buf, MAX_COMMAND - line.size());
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;   // the end, or an error: take what came
        line.append(buf, static_cast<std::size_t>(n));
    }
    line.resize(std::min(line.find('\n'), line.size()));
    if (!line.empty() && line.back() == '\r')
        line.pop_back();
    return line;
}

// One admin command, answered only to a client of our own uid. (The command
// is read first even from a stranger: closing a socket with unread data in
// it makes the peer's read fail with ECONNRESET, and the refusal is lost.)
static void serve_admin(Acceptor& a) {
    int client = accept4(a.admin, nullptr, nullptr, SOCK_CLOEXEC);
    if (client < 0)
        return;
    std::string command = read_command(client);
    uid_t uid = peer_uid(client);
    if (uid != geteuid()) {
        reply_line(client, "refused: uid " + std::to_string(uid) + " is not this server's (" +
                           std::to_string(geteuid()) + ")\n");
        close(client);
        return;
    }
    if (command == "stats") {
        std::string pids;
        for (int i = 0; i < a.nworkers; i++)
            pids += (i ? "," : "") + std::to_string(a.workers[i].pid);
        reply_line(client, "workers " + std::to_string(a.nworkers) + " pids " + pids +
                           " handed_off " + std::to_string(a.handed_off) + "\n");
    } else if (command == "shutdown") {
        reply_line(client, "bye\n");
        std::exit(0);   // the workers follow (PR_SET_PDEATHSIG)
    } else {
        reply_line(client, "unknown command (stats, shutdown)\n");
    }
    close(client);
}

// ---- the acceptor -------------------------------------------------------------

static Options parse_options(int argc, char** argv) {
    Options o;
    std::vector<char*> server_args = {argv[0]};
    for (int i = 1; i < argc; i++) {
        std::string word = argv[i];
        bool ours = word == "-w" || word == "-n" || word == "-u" || word == "-s";
        if (ours && i + 1 < argc) {
            const char* value = argv[++i];
            if (word == "-w")
                o.workers = std::atoi(value);
            else if (word == "-n")
                o.name = value;
            else if (word == "-u")
                o.path = value;
            else
                o.status_dir = value;
        } else {
            server_args.push_back(argv[i]);
        }
    }
    if (o.workers < 1 || o.workers > MAX_WORKERS)
        die_with("-w", "the number of workers must be 1..64");
    server_args.push_back(nullptr);
    o.server = parse_server_options(static_cast<int>(server_args.size()) - 1, server_args.data());
    return o;
}

// Makes the status file in directory dir, writes the status text in it,
// and deletes its name: what stays is a descriptor. (It deletes only a file
// it has just made itself, never a name it was given.)
static int make_status_file(const char* dir) {
    std::string path = std::string(dir) + "/weensydb-status.XXXXXX";
    int fd = mkostemp(path.data(), O_CLOEXEC);
    if (fd < 0)
        die(path.c_str());
    std::string text = "status written by acceptor " + std::to_string(getpid()) + ", then deleted\n";
    if (!write_all(fd, text.data(), text.size()))
        die("write status file");
    // TODO 7: remove the file's name now. The data stays as long as
    // some descriptor refers to it, and the workers read it through theirs.
    return fd;
}

static int bound_port(int listener) {
    sockaddr_in address = {};
    socklen_t length = sizeof(address);
    getsockname(listener, reinterpret_cast<sockaddr*>(&address), &length);
    return ntohs(address.sin_port);
}

static void on_child_ended(int) { child_ended = 1; }

int main(int argc, char** argv) {
    Options o = parse_options(argc, argv);
    stop_on_signals();
    Acceptor a;
    a.listener = listen_tcp(o.server);
    if (o.name.empty())
        o.name = "weensydb-" + std::to_string(bound_port(a.listener));
    a.admin = claim_admin_socket(o);
    if (o.status_dir)
        a.status = make_status_file(o.status_dir);
    shared_table_create(TABLE_MIB);

    // SIGCHLD is blocked except inside ppoll(): a worker that dies between
    // two polls is seen by the next one, never lost between a check and a wait.
    sigset_t blocked, during_poll;
    sigemptyset(&blocked);
    sigaddset(&blocked, SIGCHLD);
    sigprocmask(SIG_BLOCK, &blocked, &during_poll);
    struct sigaction action = {};
    action.sa_handler = on_child_ended;
    sigaction(SIGCHLD, &action, nullptr);

    a.nworkers = o.workers;
    for (int i = 0; i < a.nworkers; i++)
        start_worker(a, i);
    announce_port(a.listener);

    pollfd watched[2] = {{a.listener, POLLIN, 0}, {a.admin, POLLIN, 0}};
    while (true) {
        int ready = ppoll(watched, 2, nullptr, &during_poll);
        if (child_ended) {
            child_ended = 0;
            replace_dead_workers(a);
        }
        if (ready <= 0)
            continue;
        if (watched[0].revents & POLLIN)
            hand_off_client(a);
        if (watched[1].revents & POLLIN)
            serve_admin(a);
    }
}
