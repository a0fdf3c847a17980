#include "common/server.h"

#include "common/errors.h"

#include <arpa/inet.h>
#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

int parse_port(const char* text) {
    if (text == nullptr || *text == '\0')
        return -1;
    char* end = nullptr;
    long value = std::strtol(text, &end, 10);
    if (*end != '\0' || value < 0 || value > 65535)
        return -1;
    return static_cast<int>(value);
}

[[noreturn]] static void usage(const char* program) {
    std::fprintf(stderr, "usage: %s -p PORT [-b ADDRESS]   (-p 0: any free port; "
                 "-b: 127.0.0.1 unless given)\n", program);
    std::exit(2);
}

ServerOptions parse_server_options(int argc, char** argv) {
    ServerOptions options;
    int opt;
    while ((opt = getopt(argc, argv, "p:b:")) != -1) {
        if (opt == 'p') {
            options.port = parse_port(optarg);
            if (options.port < 0) {
                std::fprintf(stderr, "%s: bad port '%s' (want 0..65535)\n", argv[0], optarg);
                usage(argv[0]);
            }
        } else if (opt == 'b') {
            options.bind_address = optarg;
        } else {
            usage(argv[0]);
        }
    }
    if (options.port < 0 || optind != argc)
        usage(argv[0]);
    return options;
}

int listen_tcp(const ServerOptions& options) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0)
        die("socket");

    // Lets a restarted server bind its port while old connections linger in TIME_WAIT.
    int yes = 1;
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof(yes)) < 0)
        die("setsockopt");

    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_port = htons(static_cast<uint16_t>(options.port));
    if (inet_pton(AF_INET, options.bind_address, &address.sin_addr) != 1)
        die_with(options.bind_address, "not an IPv4 address");

    if (bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)) < 0)
        die("bind");
    if (listen(fd, SOMAXCONN) < 0)
        die("listen");
    return fd;
}

int accept_client(int listen_fd) {
    while (true) {
        int fd = accept(listen_fd, nullptr, nullptr);
        if (fd >= 0)
            return fd;
        switch (errno) {
        case EINTR: case ECONNABORTED: case EPROTO:
            continue;                    // that client is gone; wait for the next
        case EMFILE: case ENFILE: case ENOBUFS: case ENOMEM:
            std::perror("accept");       // out of resources: others must close first
            usleep(10000);
            continue;
        default:
            die("accept");
        }
    }
}

void set_nonblocking(int fd) {
    int flags = fcntl(fd, F_GETFL);
    if (flags < 0 || fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0)
        die("fcntl O_NONBLOCK");
}

void warn_out_of_descriptors() {
    static bool warned = false;
    if (!warned)
        std::perror("accept (out of descriptors: clients wait until some close; said once)");
    warned = true;
}

long raise_open_files_limit() {
    rlimit limit{};
    if (getrlimit(RLIMIT_NOFILE, &limit) < 0)
        die("getrlimit");
    rlim_t old_soft = limit.rlim_cur;
    if (limit.rlim_cur < limit.rlim_max) {
        limit.rlim_cur = limit.rlim_max;   // (an "unlimited" hard limit is refused: kept as is)
        if (setrlimit(RLIMIT_NOFILE, &limit) < 0) {
            std::perror("setrlimit RLIMIT_NOFILE");
            limit.rlim_cur = old_soft;
        }
    }
    return static_cast<long>(limit.rlim_cur);
}

void announce_port(int listen_fd) {
    sockaddr_in address{};
    socklen_t length = sizeof(address);
    if (getsockname(listen_fd, reinterpret_cast<sockaddr*>(&address), &length) < 0)
        die("getsockname");
    std::printf("port %d\n", ntohs(address.sin_port));
    std::fflush(stdout);   // stdout is a pipe under the checker: push the line out now
}

// _exit is async-signal-safe, and skipping destructors means no thread
// can touch a global that is being torn down.
static void exit_cleanly(int) { _exit(0); }

void stop_on_signals() {
    std::signal(SIGPIPE, SIG_IGN);
    struct sigaction action{};
    action.sa_handler = exit_cleanly;
    sigemptyset(&action.sa_mask);
    sigaction(SIGINT, &action, nullptr);
    sigaction(SIGTERM, &action, nullptr);
}
