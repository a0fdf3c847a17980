// io.h: writing a whole buffer to a file descriptor.
//
// write() and send() may accept fewer bytes than asked (a full socket
// buffer, a signal). Every program that must deliver all of its bytes
// loops until they are gone; this is that loop, written once.
#pragma once

#include <cstddef>

// Writes all n bytes of buf to fd, retrying after short writes and EINTR.
// Returns true on success, false on error (errno says why).
bool write_all(int fd, const void* buf, std::size_t n);
