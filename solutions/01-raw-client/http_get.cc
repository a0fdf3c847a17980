// http_get: fetch one page over HTTP with nothing but socket system calls.
//
//   usage: http_get HOST PORT [PATH]
//
// Connects to HOST:PORT, sends "GET PATH", and copies the server's whole
// reply (status line, headers and body) to stdout, byte for byte.
//
// It begins as the client of a well-known blog post on the syscalls behind
// a download, bugs included; lesson 01's README walks through each bug.
#include "common/errors.h"
#include "common/io.h"

#include <arpa/inet.h>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <netdb.h>
#include <netinet/in.h>
#include <string>
#include <sys/socket.h>
#include <unistd.h>

// Returns a socket connected to host:port.
static int connect_to(const char* host, const char* port) {
    // BEGIN TODO 1: find the server with getaddrinfo() instead of a hard-coded
    // address, try each address it returns, and check every call: on failure,
    // die() with the name of the call that failed.
    //| int fd = socket(AF_INET, SOCK_STREAM, 0);
    //|
    //| sockaddr_in server{};
    //| server.sin_addr.s_addr = inet_addr("127.0.0.1");   // whatever host says
    //| server.sin_family = AF_INET;
    //| server.sin_port = htons(atoi(port));
    //| (void)host;
    //|
    //| connect(fd, (sockaddr*)&server, sizeof(server));
    //| return fd;
    addrinfo hints{};
    hints.ai_family = AF_UNSPEC;       // IPv4 or IPv6, whichever the name has
    hints.ai_socktype = SOCK_STREAM;
    addrinfo* addresses = nullptr;
    int status = getaddrinfo(host, port, &hints, &addresses);
    if (status != 0)
        die_with(host, gai_strerror(status));

    // A name may have several addresses (localhost: ::1 and 127.0.0.1);
    // the server may listen on only one of them, so try them in turn.
    int fd = -1;
    int saved_errno = 0;
    for (addrinfo* a = addresses; a != nullptr; a = a->ai_next) {
        fd = socket(a->ai_family, a->ai_socktype, a->ai_protocol);
        if (fd < 0)
            die("socket");
        if (connect(fd, a->ai_addr, a->ai_addrlen) == 0)
            break;
        saved_errno = errno;
        close(fd);
        fd = -1;
    }
    freeaddrinfo(addresses);
    if (fd < 0) {
        errno = saved_errno;
        die("connect");
    }
    return fd;
    // END TODO 1
}

// Sends the request: the blank line at its end tells the server it is complete.
static void send_request(int fd, const char* host, const char* path) {
    std::string request = std::string("GET ") + path + " HTTP/1.0\r\n" +
                          "Host: " + host + "\r\n" +
                          "Connection: close\r\n\r\n";
    // BEGIN TODO 2: send() may take fewer bytes than asked and may fail.
    // Send the whole request (common/io.h has write_all) and die("send") on error.
    //| send(fd, request.data(), request.size(), 0);
    if (!write_all(fd, request.data(), request.size()))
        die("send");
    // END TODO 2
}

// Copies everything the server sends to stdout, until it closes the connection.
static void copy_reply_to_stdout(int fd) {
    // BEGIN TODO 3: one recv() returns whatever has arrived so far, not the
    // whole reply. Call recv() until it returns 0 (the server closed the
    // connection), never ask for more bytes than the buffer holds, write
    // exactly the bytes received (a reply is not a C string), and check errors.
    //| char server_reply[10];
    //| recv(fd, server_reply, 6000, 0);
    //| puts(server_reply);
    char buffer[4096];
    while (true) {
        ssize_t received = recv(fd, buffer, sizeof(buffer), 0);
        if (received < 0 && errno == EINTR)
            continue;
        if (received < 0)
            die("recv");
        if (received == 0)
            break;                       // end of stream: the server closed
        if (!write_all(STDOUT_FILENO, buffer, static_cast<size_t>(received)))
            die("write");
    }
    // END TODO 3
}

int main(int argc, char** argv) {
    if (argc < 3 || argc > 4) {
        std::fprintf(stderr, "usage: %s HOST PORT [PATH]\n", argv[0]);
        return 2;
    }
    const char* host = argv[1];
    const char* port = argv[2];
    const char* path = argc == 4 ? argv[3] : "/";

    int fd = connect_to(host, port);
    send_request(fd, host, path);
    copy_reply_to_stdout(fd);
    close(fd);
    return 0;
}
