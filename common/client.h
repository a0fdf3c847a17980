// client.h: what every course client does the same way to reach a server.
//
// Lesson 01 writes this loop by hand (http_get.cc); later clients and the
// course's tools call it from here.
#pragma once

#include <functional>
#include <string>

// Connects to host:port over TCP, trying every address getaddrinfo gives.
// Dies with "connect: <reason>" if none accepts, or "HOST: <reason>" if the
// name does not resolve. Sets `shown` to the address that answered, as
// "127.0.0.1:4000", for the caller's messages. If given, before_connect(fd)
// runs on each new socket just before its connect(): the place for options
// that shape the handshake itself (lesson 15).
int connect_tcp(const char* host, const char* port, std::string& shown,
                const std::function<void(int fd)>& before_connect = {});
