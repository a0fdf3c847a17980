#include "common/client.h"

#include "common/errors.h"

#include <cerrno>
#include <netdb.h>
#include <sys/socket.h>
#include <unistd.h>

int connect_tcp(const char* host, const char* port, std::string& shown,
                const std::function<void(int fd)>& before_connect) {
    addrinfo hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    addrinfo* found = nullptr;
    if (int rc = getaddrinfo(host, port, &hints, &found); rc != 0)
        die_with(host, gai_strerror(rc));
    int fd = -1;
    int saved_errno = 0;
    for (addrinfo* a = found; a != nullptr && fd < 0; a = a->ai_next) {
        fd = socket(a->ai_family, a->ai_socktype, a->ai_protocol);
        if (fd < 0) {
            saved_errno = errno;
            continue;
        }
        if (before_connect)
            before_connect(fd);
        if (connect(fd, a->ai_addr, a->ai_addrlen) == 0) {
            char name[NI_MAXHOST] = "?";
            getnameinfo(a->ai_addr, a->ai_addrlen, name, sizeof(name), nullptr, 0, NI_NUMERICHOST);
            shown = std::string(name) + ":" + port;
            break;
        }
        saved_errno = errno;   // close() must not hide why connect() failed
        close(fd);
        fd = -1;
    }
    freeaddrinfo(found);
    if (fd < 0) {
        errno = saved_errno;
        die("connect");
    }
    return fd;
}
